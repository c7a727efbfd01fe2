#!/bin/sh
# blob.sh IMAGE OUT.S — writes an assembler file that embeds IMAGE (the guest
# ELF) as sl_guest_elf_start..sl_guest_elf_end in .rodata, so the workloads
# library carries its own guest and `sluice` needs no file path.
set -eu
img=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cat > "$2" <<EOT
	.section .rodata
	.balign 16
	.globl sl_guest_elf_start
sl_guest_elf_start:
	.incbin "$img"
	.globl sl_guest_elf_end
sl_guest_elf_end:
	.section .note.GNU-stack,"",@progbits
EOT

/* SPDX-License-Identifier: MIT */
/*
 * boot.S — multiboot v1 header and 32-bit entry of the sluice guest.
 *
 * Entered in 32-bit protected mode with flat segments, paging off and
 * interrupts off, either by a multiboot loader (QEMU -kernel: EAX =
 * 0x2BADB002, EBX = multiboot info) or by the mini-VMM (EAX = "SLVM",
 * ECX = vCPU index, parameters at SL_GUEST_PARAM_GPA). Each vCPU gets its own
 * 4 KiB stack in .bss, then guest_main(magic, info, cpu) runs.
 */
#define MB_MAGIC 0x1BADB002
#define MB_FLAGS 0x00000003 /* bit 0: page-align modules; bit 1: memory info */
#define MAX_VCPUS 32
#define STACK_SIZE 4096

	.section .multiboot, "a"
	.align 4
	.long MB_MAGIC
	.long MB_FLAGS
	.long -(MB_MAGIC + MB_FLAGS)

	.section .text
	.code32
	.globl _start
	.type _start, @function
_start:
	cli
	cld
	xorl %esi, %esi             /* stack slot */
	xorl %edi, %edi             /* vCPU index passed to guest_main */
	cmpl $0x534C564D, %eax      /* mini-VMM: vCPU index in ECX */
	jne 1f
	movl %ecx, %edi
	cmpl $MAX_VCPUS, %ecx
	jae 1f                      /* out of range: stack 0; guest_main reports it */
	movl %ecx, %esi
1:
	leal 1(%esi), %edx
	shll $12, %edx              /* (slot + 1) * STACK_SIZE */
	leal guest_stacks(%edx), %esp
	xorl %ebp, %ebp
	pushl %edi                  /* cpu */
	pushl %ebx                  /* multiboot info (or whatever the VMM set) */
	pushl %eax                  /* boot magic */
	call guest_main
3:
	cli
	hlt
	jmp 3b
	.size _start, . - _start

	.section .bss
	.align 16
	.globl guest_stacks
guest_stacks:
	.skip MAX_VCPUS * STACK_SIZE

	.section .note.GNU-stack, "", @progbits

/* SPDX-License-Identifier: MIT */
/*
 * test_guest_elf.c — build/bench/guest.elf is a valid multiboot v1 kernel:
 * parsed here independently of the VMM's checker (header magic, flags,
 * checksum, 4-byte aligned in the first 8 KiB, 32-bit i386 ELF loading in
 * [1 MiB, 2 MiB) with the entry inside), the embedded copy equals the file,
 * the checker refuses damaged copies, and — when qemu-system-x86_64 is
 * installed — QEMU boots it with -kernel and the guest reports its passes on
 * the debug console. Needs no KVM (QEMU runs with TCG).
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "sl_vmm.h"

extern char **environ;

static uint8_t *image;
static size_t image_len;
static char image_path[4096];

static int load_image(void **state)
{
	(void)state;
	const char *bd = getenv("SL_BUILD_DIR");
	snprintf(image_path, sizeof(image_path), "%s/bench/guest.elf", bd ? bd : ".");
	int fd = open(image_path, O_RDONLY);
	if (fd < 0) {
		fprintf(stderr, "cannot open %s\n", image_path);
		return -1;
	}
	struct stat st;
	if (fstat(fd, &st) < 0) {
		close(fd);
		return -1;
	}
	image_len = (size_t)st.st_size;
	image = malloc(image_len);
	ssize_t n = image ? read(fd, image, image_len) : -1;
	close(fd);
	return n == (ssize_t)image_len ? 0 : -1;
}

static int free_image(void **state)
{
	(void)state;
	free(image);
	return 0;
}

static void test_multiboot_header(void **state)
{
	(void)state;
	/* Multiboot v1 §3.1.1: magic 0x1BADB002, flags, checksum with
	 * magic + flags + checksum == 0 (mod 2^32), longword aligned, within
	 * the first 8192 bytes. */
	size_t found = SIZE_MAX;
	for (size_t off = 0; off + 12 <= image_len && off < 8192; off += 4) {
		uint32_t w[3];
		memcpy(w, image + off, 12);
		if (w[0] == 0x1BADB002u) {
			assert_int_equal((uint32_t)(w[0] + w[1] + w[2]), 0);
			/* Page-align modules + memory info, no a.out kludge
			 * (bit 16): the loader uses the ELF headers. */
			assert_int_equal(w[1], 0x3);
			found = off;
			break;
		}
	}
	assert_true(found != SIZE_MAX);

	Elf32_Ehdr eh;
	assert_true(image_len >= sizeof(eh));
	memcpy(&eh, image, sizeof(eh));
	assert_memory_equal(eh.e_ident, ELFMAG, SELFMAG);
	assert_int_equal(eh.e_ident[EI_CLASS], ELFCLASS32);
	assert_int_equal(eh.e_machine, EM_386);
	assert_int_equal(eh.e_type, ET_EXEC);
	bool entry_in = false;
	unsigned loads = 0;
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf32_Phdr ph;
		memcpy(&ph, image + eh.e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		loads++;
		assert_true(ph.p_paddr >= 0x100000);
		assert_true(ph.p_paddr + ph.p_memsz <= 0x200000);
		if (eh.e_entry >= ph.p_paddr && eh.e_entry < ph.p_paddr + ph.p_filesz)
			entry_in = true;
		/* The header sits at the start of the first segment: 1 MiB. */
		if (found >= ph.p_offset && found < ph.p_offset + ph.p_filesz)
			assert_int_equal(ph.p_paddr + (found - ph.p_offset), 0x100000);
	}
	assert_true(loads >= 1);
	assert_true(entry_in);

	uint32_t entry = 0;
	struct sl_errbuf eb;
	assert_int_equal(sl_vmm_guest_check(image, image_len, &entry, &eb), 0);
	assert_int_equal(entry, eh.e_entry);
}

static void test_embedded_equals_file(void **state)
{
	(void)state;
	const void *emb;
	size_t len;
	assert_int_equal(sl_vmm_guest_image(&emb, &len), 0);
	assert_int_equal(len, image_len);
	assert_memory_equal(emb, image, len);
}

static void test_checker_refuses_damage(void **state)
{
	(void)state;
	struct sl_errbuf eb;
	uint8_t *c = malloc(image_len);
	assert_non_null(c);
	size_t mb = 0;
	while (mb + 4 <= image_len && memcmp(image + mb, "\x02\xb0\xad\x1b", 4))
		mb += 4;

	memcpy(c, image, image_len); /* checksum off by one */
	c[mb + 8]++;
	assert_int_equal(sl_vmm_guest_check(c, image_len, NULL, &eb), -ENOEXEC);
	assert_non_null(strstr(eb.msg, "checksum"));
	memcpy(c, image, image_len); /* no header */
	memset(c + mb, 0, 12);
	assert_int_equal(sl_vmm_guest_check(c, image_len, NULL, &eb), -ENOEXEC);
	memcpy(c, image, image_len); /* 64-bit class */
	c[EI_CLASS] = ELFCLASS64;
	assert_int_equal(sl_vmm_guest_check(c, image_len, NULL, &eb), -ENOEXEC);
	memcpy(c, image, image_len); /* truncated */
	assert_int_equal(sl_vmm_guest_check(c, 40, NULL, &eb), -ENOEXEC);
	assert_int_equal(sl_vmm_guest_check(c, image_len / 2, NULL, &eb), -ENOEXEC);
	assert_int_equal(sl_vmm_guest_check(NULL, 0, NULL, &eb), -ENOEXEC);
	free(c);
}

static bool find_qemu(char *out, size_t len)
{
	const char *path = getenv("PATH");
	char buf[4096];
	snprintf(buf, sizeof(buf), "%s", path ? path : "/usr/bin:/bin");
	for (char *save = NULL, *d = strtok_r(buf, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		snprintf(out, len, "%s/qemu-system-x86_64", d);
		if (access(out, X_OK) == 0)
			return true;
	}
	return false;
}

static void test_boots_under_qemu(void **state)
{
	(void)state;
	char qemu[4200];
	if (!find_qemu(qemu, sizeof(qemu))) {
		/* Optional tool: this part needs it, the header checks above don't. */
		fprintf(stderr, "qemu-system-x86_64 not installed: boot check skipped\n");
		skip();
	}
	char con[] = "/tmp/sl_guest_debugcon_XXXXXX";
	int fd = mkstemp(con);
	assert_true(fd >= 0);
	close(fd);
	char conarg[128];
	snprintf(conarg, sizeof(conarg), "file:%s", con);
	char *argv[] = { qemu, "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "none",
			 "-accel", "tcg", "-m", "64", "-no-reboot", "-kernel", image_path,
			 "-append", "size=4M pattern=random passes=3", "-debugcon", conarg, NULL };
	pid_t pid;
	assert_int_equal(posix_spawn(&pid, qemu, NULL, NULL, argv, environ), 0);

	/* The guest prints "sluice-guest: pass N" per pass, then halts. */
	char text[4096] = { 0 };
	bool done = false;
	for (int i = 0; i < 150 && !done; i++) {
		struct timespec ts = { .tv_sec = 0, .tv_nsec = 100000000L };
		nanosleep(&ts, NULL);
		FILE *f = fopen(con, "r");
		if (f) {
			size_t n = fread(text, 1, sizeof(text) - 1, f);
			text[n] = 0;
			fclose(f);
		}
		done = strstr(text, "sluice-guest: pass 3\n") != NULL;
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	unlink(con);
	if (!done)
		fprintf(stderr, "debug console:\n%s\n", text);
	assert_true(done);
	assert_non_null(strstr(text, "sluice-guest: working set 1024 pages at page 512\n"));
	assert_non_null(strstr(text, "sluice-guest: pass 1\n"));
	assert_null(strstr(text, "sluice-guest: pass 4\n"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multiboot_header),
		cmocka_unit_test(test_embedded_equals_file),
		cmocka_unit_test(test_checker_refuses_damage),
		cmocka_unit_test(test_boots_under_qemu),
	};
	return cmocka_run_group_tests(tests, load_image, free_image);
}

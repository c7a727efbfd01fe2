/* SPDX-License-Identifier: MIT */
/*
 * test_api_example.c — the complete example of docs/api.md, built and run as
 * a test: a tiny "VMM" whose guest RAM is 64 MiB of this process, rewritten
 * by a "vCPU" thread and tracked with userfaultfd write-protection, live-
 * migrated to a destination process over loopback TCP. The destination
 * hashes what it received; the source compares it with its own memory at
 * stop. (Exit 0 = migrated and identical, 77 = no userfaultfd WP here.)
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sluice.h"

#define MEM_BYTES (64u << 20)
#define PAGE 4096u

static const uint8_t key[] = "example key: share it out of band";

/* ---- the VMM's side: memory, a vCPU, stop/resume, CPU state ------------- */

struct vm {
	uint8_t *mem;
	pthread_t vcpu;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stop_req, parked, quit;
	uint64_t counter; /* "CPU state": how many pages the vCPU wrote */
};

static void *vcpu_main(void *arg)
{
	struct vm *vm = arg;

	for (;;) {
		pthread_mutex_lock(&vm->lock);
		while (vm->stop_req && !vm->quit) {
			vm->parked = true;
			pthread_cond_broadcast(&vm->cond);
			pthread_cond_wait(&vm->cond, &vm->lock);
		}
		vm->parked = false;
		if (vm->quit) {
			pthread_mutex_unlock(&vm->lock);
			return NULL;
		}
		pthread_mutex_unlock(&vm->lock);
		/* Rewrite the first 16 MiB, page after page. */
		for (int i = 0; i < 64; i++, vm->counter++) {
			uint64_t *page = (uint64_t *)(vm->mem + (vm->counter % 4096) * PAGE);

			page[0] = vm->counter;
			page[PAGE / 8 - 1] = ~vm->counter;
		}
	}
}

static int vm_stop(void *vmm)
{
	struct vm *vm = vmm;

	pthread_mutex_lock(&vm->lock);
	vm->stop_req = true;
	while (!vm->parked)
		pthread_cond_wait(&vm->cond, &vm->lock);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

static int vm_resume(void *vmm)
{
	struct vm *vm = vmm;

	pthread_mutex_lock(&vm->lock);
	vm->stop_req = false;
	pthread_cond_broadcast(&vm->cond);
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

static ssize_t vm_save_state(void *vmm, void *buf, size_t cap)
{
	struct vm *vm = vmm;

	if (cap < sizeof(vm->counter))
		return -ENOSPC;
	memcpy(buf, &vm->counter, sizeof(vm->counter));
	return sizeof(vm->counter);
}

/* ---- destination: receive into fresh memory, load, resume --------------- */

struct dest_vm {
	uint64_t counter;
	bool resumed;
};

static int dest_load_state(void *vmm, uint32_t kind, const void *buf, size_t len)
{
	struct dest_vm *vm = vmm;

	(void)kind;
	if (len != sizeof(vm->counter))
		return -EINVAL;
	memcpy(&vm->counter, buf, len);
	return 0;
}

static int dest_resume(void *vmm)
{
	struct dest_vm *vm = vmm;

	vm->resumed = true; /* a real VMM starts its vCPUs here */
	return 0;
}

static int destination(int ready_fd)
{
	struct sl_dest_config cfg = {
		.size = sizeof(cfg), .listen = "tcp:127.0.0.1:0", .psk = key,
		.psk_len = sizeof(key), .hash_ram = true,
	};
	struct sl_dest_ops ops = { .size = sizeof(ops), .load_state = dest_load_state,
				   .resume = dest_resume };
	struct dest_vm vm = { 0 };
	struct sl_dest *d;
	struct sl_errbuf eb;
	void *mem = mmap(NULL, MEM_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct sl_ram_config ram = { .size = sizeof(ram), .host = mem, .gpa = 0, .length = MEM_BYTES };
	int port, ret;

	if (mem == MAP_FAILED || sl_dest_new(&cfg, &d, &eb) < 0) {
		fprintf(stderr, "destination: %s\n", mem == MAP_FAILED ? "mmap failed" : eb.msg);
		return 1;
	}
	sl_dest_add_ram(d, &ram);
	sl_dest_set_ops(d, &ops, &vm);
	port = sl_dest_port(d);
	if (write(ready_fd, &port, sizeof(port)) != sizeof(port))
		return 1;
	ret = sl_dest_run(d); /* accept, receive, load, resume, send RESUMED */
	if (ret < 0)
		fprintf(stderr, "destination: %s\n", sl_dest_last_error(d));
	sl_dest_free(&d);
	return ret == 0 && vm.resumed && vm.counter > 0 ? 0 : 1;
}

/* ---- source: the integration a VMM writes --------------------------------- */

int main(void)
{
	struct vm vm = { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER };
	struct sl_session_config cfg = {
		.size = sizeof(cfg), .channels = 2, .downtime_limit_ns = 300 * 1000000ull,
		.psk = key, .psk_len = sizeof(key),
	};
	struct sl_vm_ops ops = { .size = sizeof(ops), .stop = vm_stop, .resume = vm_resume,
				 .save_state = vm_save_state };
	struct sl_dirty_uffd_config uc = { .size = sizeof(uc) };
	struct sl_dirty_source *dirty = NULL;
	struct sl_migration_stats stats;
	struct sl_dest_report rep;
	struct sl_session *s = NULL;
	struct sl_errbuf eb;
	char url[64];
	int pipefd[2], port = 0, status, ret;
	pid_t child;

	if (sl_dirty_uffd_probe(&eb) < 0) {
		fprintf(stderr, "skipped: %s\n", eb.msg);
		return 77;
	}
	/* The destination: a separate process (a real VMM runs it elsewhere). */
	if (pipe(pipefd) < 0 || (child = fork()) < 0)
		return 1;
	if (child == 0)
		_exit(destination(pipefd[1]));
	if (read(pipefd[0], &port, sizeof(port)) != sizeof(port))
		return 1;
	snprintf(url, sizeof(url), "tcp:127.0.0.1:%d", port);

	/* Guest RAM, its dirty-log source, and the running "vCPU". */
	vm.mem = mmap(NULL, MEM_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (vm.mem == MAP_FAILED)
		return 1;
	uc.addr = vm.mem;
	uc.npages = MEM_BYTES / PAGE;
	if (sl_dirty_uffd_new(&uc, &dirty, &eb) < 0) {
		fprintf(stderr, "uffd: %s\n", eb.msg);
		return 1;
	}
	pthread_create(&vm.vcpu, NULL, vcpu_main, &vm);

	/* The migration. */
	struct sl_ram_config ram = { .size = sizeof(ram), .host = vm.mem, .gpa = 0,
				     .length = MEM_BYTES, .dirty = dirty, .name = "ram" };
	if (sl_session_new(&cfg, &s, &eb) < 0) {
		fprintf(stderr, "session: %s\n", eb.msg);
		return 1;
	}
	sl_session_add_ram(s, &ram);
	sl_session_set_vm_ops(s, &ops, &vm);
	ret = sl_session_connect(s, url);
	sl_stats_init(&stats);
	if (ret == 0)
		ret = sl_session_migrate(s, &stats); /* iterate → stop → final copy → RESUMED */
	if (ret < 0) {
		/* The VM was resumed by the session: it keeps running here. */
		fprintf(stderr, "migration failed: %s\n", sl_session_last_error(s));
	} else {
		sl_session_dest_report(s, &rep);
		printf("migrated: %u iterations, downtime %.2f ms (end to end %.2f ms), "
		       "%llu bytes, destination hash %s\n",
		       stats.iterations, stats.downtime_ns / 1e6, stats.e2e_downtime_ns / 1e6,
		       (unsigned long long)stats.transferred_bytes,
		       rep.has_hash && rep.ram_hash == sl_session_ram_hash(s) ? "matches" : "DIFFERS");
		if (!rep.has_hash || rep.ram_hash != sl_session_ram_hash(s))
			ret = -EIO;
	}

	/* The VM is stopped after a successful migration: shut it down. */
	pthread_mutex_lock(&vm.lock);
	vm.quit = true;
	pthread_cond_broadcast(&vm.cond);
	pthread_mutex_unlock(&vm.lock);
	pthread_join(vm.vcpu, NULL);
	sl_session_free(&s);
	sl_dirty_free(&dirty);
	sl_stats_exit(&stats);
	munmap(vm.mem, MEM_BYTES);
	waitpid(child, &status, 0);
	return ret == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}

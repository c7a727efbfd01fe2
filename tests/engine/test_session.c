/* SPDX-License-Identifier: MIT */
/*
 * test_session.c — the source session and the destination through the
 * public API (sluice.h): argument checks, the step API, cancel from another
 * thread, a failed destination (load_state) that leaves the VM running,
 * and a migration with SIMULATED VFIO devices whose state must arrive
 * intact. The destination always runs in a forked process over loopback TCP.
 * Dirty tracking here is the synthetic source (SIMULATED): these tests are
 * about the engine's control flow, not the kernel logs (e2e tests cover those).
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "sl_vfio.h"
#include "sluice.h"

#define MEM (16u << 20)
#define PAGE 4096u

static const uint8_t key[] = "test-session-key";

/* ---- a VM that is just memory and flags ------------------------------------ */

struct fake_vm {
	int stops, resumes;
	bool running;
	int fail_load; /* destination: load_state returns this */
	uint64_t state;
	uint64_t dev_hash; /* destination: device state hash after load */
	struct sl_devset *devs;
};

static int vm_stop(void *p)
{
	struct fake_vm *vm = p;

	vm->stops++;
	vm->running = false;
	return 0;
}

static int vm_resume(void *p)
{
	struct fake_vm *vm = p;

	vm->resumes++;
	vm->running = true;
	return 0;
}

static ssize_t vm_save(void *p, void *buf, size_t cap)
{
	struct fake_vm *vm = p;

	if (cap < 8)
		return -ENOSPC;
	memcpy(buf, &vm->state, 8);
	return 8;
}

static int vm_load(void *p, uint32_t kind, const void *buf, size_t len)
{
	struct fake_vm *vm = p;

	(void)kind;
	if (vm->fail_load)
		return vm->fail_load;
	if (len != 8)
		return -EINVAL;
	memcpy(&vm->state, buf, 8);
	return 0;
}

static void *map(void)
{
	void *p = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	assert_true(p != MAP_FAILED);
	return p;
}

static struct sl_dirty_source *synthetic(double pages_per_sec)
{
	struct sl_dirty_synthetic_config c = {
		.size = sizeof(c), .npages = MEM / PAGE, .wss_first = 0, .wss_pages = MEM / PAGE / 4,
		.pages_per_sec = pages_per_sec, .pattern = SL_SYNTH_UNIFORM, .seed = 7,
	};
	struct sl_dirty_source *s = NULL;
	struct sl_errbuf eb;

	assert_int_equal(sl_dirty_synthetic_new(&c, &s, &eb), 0);
	return s;
}

/* ---- destination process ------------------------------------------------------ */

struct dest_opts {
	int fail_load;
	unsigned ndev;
	unsigned nregions; /* 0 = 1 */
};

static struct sl_vfio_backend *sim(const char *name, uint64_t seed)
{
	struct sl_devsim_config c = {
		.size = sizeof(c), .name = name, .state_bytes = 2u << 20, .precopy_bytes = 1u << 20,
		.dirty_rate = 1u << 20, .seed = seed,
	};
	struct sl_vfio_backend *be = NULL;
	struct sl_errbuf eb;

	assert_int_equal(sl_devsim_new(&c, &be, &eb), 0);
	return be;
}

/* Child: receives one migration; writes its port, then the result record. */
struct dest_result {
	int ret;
	uint64_t state;
	uint64_t hash;
	uint64_t dev_hash[2];
	char err[256];
};

static void dest_child(const struct dest_opts *o, int fd)
{
	struct sl_dest_config cfg = { .size = sizeof(cfg), .listen = "tcp:127.0.0.1:0", .psk = key,
				      .psk_len = sizeof(key), .hash_ram = true,
				      .peer_timeout_ns = 3000000000ull };
	struct sl_dest_ops ops = { .size = sizeof(ops), .load_state = vm_load, .resume = vm_resume };
	struct fake_vm vm = { .fail_load = o->fail_load };
	struct sl_ram_config ram = { .size = sizeof(ram), .host = map(), .length = MEM };
	struct dest_result res = { 0 };
	struct sl_devset *ds = NULL;
	struct sl_dest_report rep;
	struct sl_dest *d = NULL;
	struct sl_errbuf eb;
	int port;

	if (sl_dest_new(&cfg, &d, &eb) < 0)
		_exit(2);
	if (o->ndev) {
		if (sl_devset_new(NULL, &ds) < 0)
			_exit(3);
		for (unsigned i = 0; i < o->ndev; i++)
			sl_devset_add(ds, sim(i ? "dev1" : "dev0", 100 + i));
		sl_dest_add_devices(d, ds);
	}
	if (sl_dest_add_ram(d, &ram) != 0 || sl_dest_set_ops(d, &ops, &vm) != 0)
		_exit(4);
	for (unsigned i = 1; i < o->nregions; i++) {
		ram.host = map();
		if (sl_dest_add_ram(d, &ram) != (int)i)
			_exit(4);
	}
	port = sl_dest_port(d);
	if (write(fd, &port, sizeof(port)) != sizeof(port))
		_exit(5);
	res.ret = sl_dest_run(d);
	res.state = vm.state;
	sl_dest_report(d, &rep);
	res.hash = rep.ram_hash;
	for (unsigned i = 0; i < o->ndev; i++)
		res.dev_hash[i] = sl_devsim_state_hash(sl_vfio_dev_backend(sl_devset_dev(ds, i)));
	snprintf(res.err, sizeof(res.err), "%s", sl_dest_last_error(d));
	if (write(fd, &res, sizeof(res)) != sizeof(res))
		_exit(6);
	sl_dest_free(&d);
	sl_devset_free(&ds);
	_exit(0);
}

struct dest_proc {
	pid_t pid;
	int fd;
	char url[64];
};

static void dest_start(struct dest_proc *p, const struct dest_opts *o)
{
	int fds[2], port = 0;

	assert_int_equal(pipe(fds), 0);
	p->pid = fork();
	assert_true(p->pid >= 0);
	if (p->pid == 0) {
		close(fds[0]);
		dest_child(o, fds[1]);
	}
	close(fds[1]);
	p->fd = fds[0];
	assert_int_equal(read(p->fd, &port, sizeof(port)), sizeof(port));
	assert_true(port > 0);
	snprintf(p->url, sizeof(p->url), "tcp:127.0.0.1:%d", port);
}

static void dest_finish(struct dest_proc *p, struct dest_result *res)
{
	int status;

	memset(res, 0, sizeof(*res));
	assert_int_equal(read(p->fd, res, sizeof(*res)), sizeof(*res));
	close(p->fd);
	assert_int_equal(waitpid(p->pid, &status, 0), p->pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static struct sl_session *new_session(uint64_t bw, uint64_t limit_ns, struct sl_policy_config *pol)
{
	struct sl_session_config cfg = {
		.size = sizeof(cfg), .channels = 2, .bandwidth_bps = bw, .downtime_limit_ns = limit_ns,
		.psk = key, .psk_len = sizeof(key), .peer_timeout_ns = 3000000000ull, .policy = pol,
	};
	struct sl_session *s = NULL;
	struct sl_errbuf eb;

	assert_int_equal(sl_session_new(&cfg, &s, &eb), 0);
	return s;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_bad_arguments(void **state)
{
	struct sl_session_config cfg = { .size = sizeof(cfg), .psk = key, .psk_len = sizeof(key) };
	struct sl_vm_ops ops = { .size = sizeof(ops), .stop = vm_stop, .resume = vm_resume };
	struct sl_session *s = NULL;
	struct sl_dirty_source *src = synthetic(1000);
	void *mem = map();
	struct sl_ram_config ram = { .size = sizeof(ram), .host = mem, .length = MEM, .dirty = src };
	struct sl_errbuf eb;
	struct fake_vm vm = { 0 };

	(void)state;
	assert_int_equal(sl_session_new(NULL, &s, &eb), -EINVAL);
	cfg.size = 4;
	assert_int_equal(sl_session_new(&cfg, &s, &eb), -EINVAL);
	cfg.size = sizeof(cfg);
	cfg.psk_len = 0;
	assert_int_equal(sl_session_new(&cfg, &s, &eb), -EINVAL);
	assert_non_null(strstr(eb.msg, "pre-shared key"));
	cfg.psk_len = sizeof(key);
	cfg.channels = 65;
	assert_int_equal(sl_session_new(&cfg, &s, &eb), -EINVAL);
	cfg.channels = 0;
	cfg.page_size = 3000;
	assert_int_equal(sl_session_new(&cfg, &s, &eb), -EINVAL);
	cfg.page_size = 0;
	assert_null(s);
	assert_int_equal(sl_session_new(&cfg, &s, &eb), 0);

	/* Regions: aligned, sized like their dirty source. */
	ram.host = (char *)mem + 1;
	assert_int_equal(sl_session_add_ram(s, &ram), -EINVAL);
	ram.host = mem;
	ram.length = MEM / 2;
	assert_int_equal(sl_session_add_ram(s, &ram), -EINVAL);
	assert_non_null(strstr(sl_session_last_error(s), "tracks"));
	ram.length = MEM;
	ram.dirty = NULL;
	assert_int_equal(sl_session_add_ram(s, &ram), -EINVAL);
	ram.dirty = src;

	/* connect needs RAM and VM ops; iterate needs a connection. */
	assert_int_equal(sl_session_connect(s, "tcp:127.0.0.1:1"), -EINVAL);
	assert_int_equal(sl_session_add_ram(s, &ram), 0);
	assert_int_equal(sl_session_connect(s, "tcp:127.0.0.1:1"), -EINVAL);
	assert_non_null(strstr(sl_session_last_error(s), "VM operations"));
	ops.resume = NULL;
	assert_int_equal(sl_session_set_vm_ops(s, &ops, &vm), -EINVAL);
	ops.resume = vm_resume;
	assert_int_equal(sl_session_set_vm_ops(s, &ops, &vm), 0);
	assert_int_equal(sl_session_iterate(s), -EINVAL);
	assert_int_equal(sl_session_switchover(s), -EINVAL);
	/* Nobody listens on port 1: a clear error naming the address. */
	assert_true(sl_session_connect(s, "tcp:127.0.0.1:1") < 0);
	assert_non_null(strstr(sl_session_last_error(s), "127.0.0.1:1"));
	assert_int_equal(sl_session_connect(s, "nonsense"), -EINVAL);
	assert_int_equal(vm.stops, 0);
	sl_session_free(&s);
	assert_null(s);
	sl_session_free(&s); /* NULL-safe */

	{
		struct sl_dest_config dc = { .size = sizeof(dc), .listen = "tcp:127.0.0.1:0" };
		struct sl_dest *d = NULL;

		assert_int_equal(sl_dest_new(&dc, &d, &eb), -EINVAL); /* no key */
		dc.psk = key;
		dc.psk_len = sizeof(key);
		dc.listen = "bogus:1";
		assert_int_equal(sl_dest_new(&dc, &d, &eb), -EINVAL);
		assert_null(d);
		dc.listen = "tcp:127.0.0.1:0";
		assert_int_equal(sl_dest_new(&dc, &d, &eb), 0);
		assert_int_equal(sl_dest_run(d), -EINVAL); /* no ops, no RAM */
		assert_true(sl_dest_port(d) > 0);
		sl_dest_free(&d);
		assert_null(d);
	}
	sl_dirty_free(&src);
	munmap(mem, MEM);
}

/* The step API: iterate until the policy says so, then switch over; the VM
 * is stopped once, never resumed, and memory + state arrive. */
static void test_step_api(void **state)
{
	struct dest_opts o = { 0 };
	struct dest_proc p;
	struct dest_result res;
	struct fake_vm vm = { .running = true, .state = 0x1234567890ull };
	struct sl_vm_ops ops = { .size = sizeof(ops), .stop = vm_stop, .resume = vm_resume,
				 .save_state = vm_save };
	struct sl_dirty_source *src = synthetic(2000);
	uint8_t *mem = map();
	struct sl_ram_config ram = { .size = sizeof(ram), .host = mem, .length = MEM, .dirty = src };
	struct sl_migration_stats st;
	struct sl_session *s;
	int ret, iters = 0;

	(void)state;
	for (uint32_t i = 0; i < MEM / PAGE / 2; i++)
		memcpy(mem + (size_t)i * PAGE, &i, sizeof(i));
	dest_start(&p, &o);
	s = new_session(0, 300000000ull, NULL);
	assert_int_equal(sl_session_add_ram(s, &ram), 0);
	assert_int_equal(sl_session_set_vm_ops(s, &ops, &vm), 0);
	assert_int_equal(sl_session_connect(s, p.url), 0);
	do {
		ret = sl_session_iterate(s);
		iters++;
	} while (ret == 0 && iters < 50);
	assert_int_equal(ret, 1);
	assert_int_equal(vm.stops, 0);
	assert_int_equal(sl_session_switchover(s), 0);
	assert_int_equal(vm.stops, 1);
	assert_int_equal(vm.resumes, 0);
	dest_finish(&p, &res);
	assert_int_equal(res.ret, 0);
	assert_int_equal(res.state, 0x1234567890ull);
	assert_true(res.hash == sl_session_ram_hash(s));
	sl_stats_init(&st);
	assert_int_equal(sl_session_get_stats(s, &st), 0);
	assert_string_equal(st.outcome, "completed");
	assert_int_equal((int)st.n_iter, iters);
	assert_int_equal(st.iter[0].index, 1);
	assert_int_equal(st.iter[0].dirty_bytes, MEM);
	/* Half the memory is zero: ZERO packets, not payload. */
	assert_true(st.zero_pages >= MEM / PAGE / 2);
	assert_true(st.downtime_ns > 0 && st.e2e_downtime_ns >= st.downtime_ns);
	assert_int_equal(st.remaining_bytes, 0);
	assert_true(st.total_ns > st.downtime_ns);
	sl_stats_exit(&st);
	/* After success the session is done. */
	assert_true(sl_session_iterate(s) < 0);
	sl_session_free(&s);
	sl_dirty_free(&src);
	munmap(mem, MEM);
}

struct canceller {
	struct sl_session *s;
	unsigned delay_ms;
};

static void *cancel_later(void *arg)
{
	struct canceller *c = arg;

	usleep(c->delay_ms * 1000);
	sl_session_cancel(c->s);
	return NULL;
}

/* Cancel from another thread while precopy cannot converge: migrate returns
 * -ECANCELED, the VM was never stopped, the destination sees the loss. */
static void test_cancel_from_other_thread(void **state)
{
	struct dest_opts o = { 0 };
	struct dest_proc p;
	struct dest_result res;
	struct fake_vm vm = { .running = true };
	struct sl_vm_ops ops = { .size = sizeof(ops), .stop = vm_stop, .resume = vm_resume };
	struct sl_policy_config pol = { .size = sizeof(pol), .kind = SL_POLICY_THRESHOLD,
					.stall_action = SL_STALL_CONTINUE };
	struct sl_dirty_source *src = synthetic(1e6);
	void *mem = map();
	struct sl_ram_config ram = { .size = sizeof(ram), .host = mem, .length = MEM, .dirty = src };
	struct sl_migration_stats st;
	struct canceller c;
	pthread_t t;
	struct sl_session *s;

	(void)state;
	dest_start(&p, &o);
	/* 1 µs limit at 8 MB/s: never converges by itself. */
	s = new_session(8u << 20, 1000, &pol);
	assert_int_equal(sl_session_add_ram(s, &ram), 0);
	assert_int_equal(sl_session_set_vm_ops(s, &ops, &vm), 0);
	assert_int_equal(sl_session_connect(s, p.url), 0);
	c.s = s;
	c.delay_ms = 300;
	pthread_create(&t, NULL, cancel_later, &c);
	sl_stats_init(&st);
	assert_int_equal(sl_session_migrate(s, &st), -ECANCELED);
	pthread_join(t, NULL);
	assert_string_equal(st.outcome, "cancelled");
	assert_int_equal(vm.stops, 0);
	assert_true(vm.running);
	dest_finish(&p, &res);
	assert_true(res.ret < 0);
	sl_stats_exit(&st);
	sl_session_free(&s);
	sl_dirty_free(&src);
	munmap(mem, MEM);
}

/* The destination fails to load the CPU state: the source gets its
 * message, resumes the VM once, and reports failure. */
static void test_dest_failure_resumes_vm(void **state)
{
	struct dest_opts o = { .fail_load = -EPROTO };
	struct dest_proc p;
	struct dest_result res;
	struct fake_vm vm = { .running = true };
	struct sl_vm_ops ops = { .size = sizeof(ops), .stop = vm_stop, .resume = vm_resume,
				 .save_state = vm_save };
	struct sl_dirty_source *src = synthetic(1000);
	void *mem = map();
	struct sl_ram_config ram = { .size = sizeof(ram), .host = mem, .length = MEM, .dirty = src };
	struct sl_session *s;
	int ret;

	(void)state;
	dest_start(&p, &o);
	s = new_session(0, 0, NULL);
	assert_int_equal(sl_session_add_ram(s, &ram), 0);
	assert_int_equal(sl_session_set_vm_ops(s, &ops, &vm), 0);
	assert_int_equal(sl_session_connect(s, p.url), 0);
	ret = sl_session_migrate(s, NULL);
	assert_true(ret < 0);
	assert_int_equal(vm.stops, 1);
	assert_int_equal(vm.resumes, 1);
	assert_true(vm.running);
	assert_non_null(strstr(sl_session_last_error(s), "load_state"));
	assert_non_null(strstr(sl_session_last_error(s), "source VM resumed"));
	dest_finish(&p, &res);
	assert_int_equal(res.ret, -EPROTO);
	sl_session_free(&s);
	sl_dirty_free(&src);
	munmap(mem, MEM);
}

/* Two SIMULATED VFIO devices: PRE_COPY during precopy, STOP_COPY at the
 * switchover; their state hashes match on the destination. */
static void test_devices(void **state)
{
	struct dest_opts o = { .ndev = 2 };
	struct dest_proc p;
	struct dest_result res;
	struct fake_vm vm = { .running = true, .state = 99 };
	struct sl_vm_ops ops = { .size = sizeof(ops), .stop = vm_stop, .resume = vm_resume,
				 .save_state = vm_save };
	struct sl_dirty_source *src = synthetic(1000);
	void *mem = map();
	struct sl_ram_config ram = { .size = sizeof(ram), .host = mem, .length = MEM, .dirty = src };
	struct sl_migration_stats st;
	struct sl_devset *ds = NULL;
	uint64_t want[2];
	struct sl_session *s;

	(void)state;
	dest_start(&p, &o);
	assert_int_equal(sl_devset_new(NULL, &ds), 0);
	assert_int_equal(sl_devset_add(ds, sim("dev0", 1)), 0);
	assert_int_equal(sl_devset_add(ds, sim("dev1", 2)), 1);
	s = new_session(0, 0, NULL);
	assert_int_equal(sl_session_add_ram(s, &ram), 0);
	assert_int_equal(sl_session_add_devices(s, ds), 0);
	assert_int_equal(sl_session_set_vm_ops(s, &ops, &vm), 0);
	assert_int_equal(sl_session_connect(s, p.url), 0);
	sl_stats_init(&st);
	if (sl_session_migrate(s, &st) != 0)
		fail_msg("migrate: %s", sl_session_last_error(s));
	for (unsigned i = 0; i < 2; i++) {
		want[i] = sl_devsim_state_hash(sl_vfio_dev_backend(sl_devset_dev(ds, i)));
		assert_int_equal(sl_vfio_dev_state(sl_devset_dev(ds, i)), SL_VFIO_STOP);
	}
	assert_true(st.device_bytes >= 2 * (2u << 20));
	dest_finish(&p, &res);
	assert_int_equal(res.ret, 0);
	assert_int_equal(res.state, 99);
	assert_true(res.dev_hash[0] == want[0]);
	assert_true(res.dev_hash[1] == want[1]);
	sl_stats_exit(&st);
	sl_session_free(&s);
	sl_devset_free(&ds);
	sl_dirty_free(&src);
	munmap(mem, MEM);
}

/* Several regions: region ids line up on both ends, and with more than one
 * scan job the bitmaps are scanned on the (NUMA-placed) worker pool. */
static void test_several_regions_parallel_scan(void **state)
{
	struct dest_opts o = { .nregions = 3 };
	struct dest_proc p;
	struct dest_result res;
	struct fake_vm vm = { .running = true, .state = 5 };
	struct sl_vm_ops ops = { .size = sizeof(ops), .stop = vm_stop, .resume = vm_resume,
				 .save_state = vm_save };
	struct sl_session_config cfg = { .size = sizeof(cfg), .channels = 3, .psk = key,
					 .psk_len = sizeof(key), .scan_workers = 2 };
	struct sl_dirty_source *src[3];
	uint8_t *mem[3];
	struct sl_migration_stats st;
	struct sl_session *s = NULL;
	struct sl_errbuf eb;

	(void)state;
	dest_start(&p, &o);
	assert_int_equal(sl_session_new(&cfg, &s, &eb), 0);
	for (int i = 0; i < 3; i++) {
		struct sl_ram_config ram = { .size = sizeof(ram), .length = MEM, .gpa = (uint64_t)i * MEM };

		mem[i] = map();
		/* Distinct contents per region: a region swap would change the hash. */
		for (uint32_t pg = 0; pg < MEM / PAGE; pg += 3)
			mem[i][(size_t)pg * PAGE + 8] = (uint8_t)(i + 1);
		src[i] = synthetic(500);
		ram.host = mem[i];
		ram.dirty = src[i];
		assert_int_equal(sl_session_add_ram(s, &ram), i);
	}
	assert_int_equal(sl_session_set_vm_ops(s, &ops, &vm), 0);
	assert_int_equal(sl_session_connect(s, p.url), 0);
	sl_stats_init(&st);
	assert_int_equal(sl_session_migrate(s, &st), 0);
	dest_finish(&p, &res);
	assert_int_equal(res.ret, 0);
	assert_true(res.hash == sl_session_ram_hash(s));
	assert_int_equal(st.total_bytes, 3ull * MEM);
	assert_int_equal(st.iter[0].dirty_bytes, 3ull * MEM);
	/* Two of three pages are zero in every region. */
	assert_true(st.zero_pages >= 2 * 3 * (MEM / PAGE / 3));
	sl_stats_exit(&st);
	sl_session_free(&s);
	for (int i = 0; i < 3; i++) {
		sl_dirty_free(&src[i]);
		munmap(mem[i], MEM);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bad_arguments),
		cmocka_unit_test(test_step_api),
		cmocka_unit_test(test_cancel_from_other_thread),
		cmocka_unit_test(test_dest_failure_resumes_vm),
		cmocka_unit_test(test_devices),
		cmocka_unit_test(test_several_regions_parallel_scan),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}

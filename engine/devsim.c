/* SPDX-License-Identifier: MIT */
/*
 * devsim.c — the SIMULATED VFIO migration device. It exists because no VFIO
 * migration hardware is available here: a thread implements the v2 device
 * semantics over a REAL data fd (a pipe), so the engine's data path, state
 * machine and recovery run exactly as they would against a driver.
 *
 * Device model: state_bytes of state in chunks. While running, the device
 * rewrites dirty_rate bytes/s of the first precopy_bytes (the part it lets
 * migrate early) and DMA-writes dma_rate bytes/s into guest RAM. The saving
 * stream is a sequence of records:
 *   {u32 magic, u32 type, u64 offset, u32 len, u32 0} + payload
 *   type DATA: len bytes of state at offset;
 *   type END:  offset = state_bytes, payload = XXH3-64 of every stream byte
 *              before this record.
 * PRE_COPY emits never-sent precopy chunks first (initial_bytes), then chunks
 * dirtied after sending (dirty_bytes). STOP_COPY emits every chunk not yet
 * sent or dirtied since, then END, then closes its end (read() returns 0).
 * RESUMING parses the stream into the state; leaving RESUMING fails (device
 * -> ERROR) unless END arrived, its hash matches and every chunk was loaded.
 * Records: devsim_stream.c; DMA and its log: devsim_dma.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "sl_kernel_compat.h"
#include "sl_vfio.h"
#include "devsim_internal.h"

static uint64_t rnd(struct devsim *s)
{
	/* xorshift64*: cheap, deterministic per seed. */
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 0x2545F4914F6CDD1DULL;
}

static bool running(enum sl_vfio_state st)
{
	return st == SL_VFIO_RUNNING || st == SL_VFIO_PRE_COPY || st == SL_VFIO_RUNNING_P2P ||
	       st == SL_VFIO_PRE_COPY_P2P;
}

static void kick(struct devsim *s)
{
	uint64_t one = 1;

	if (write(s->kick_fd, &one, sizeof(one)) < 0) {
		/* eventfd counter saturated: the thread is being woken anyway */
	}
	pthread_cond_broadcast(&s->cond);
}

/* Applies the device's own activity since the last call (lock held). */
void devsim_advance(struct devsim *s)
{
	uint64_t now = sl_now_ns(), dt = now - s->last_ns;

	s->last_ns = now;
	if (!running(s->state))
		return;
	if (s->cfg.dirty_rate && s->pre_chunks) {
		s->dirt_carry += (uint64_t)((double)s->cfg.dirty_rate * (double)dt / 1e9);
		while (s->dirt_carry >= s->chunk) {
			uint64_t c = rnd(s) % s->pre_chunks;
			uint64_t len = SL_MIN(s->chunk, s->cfg.state_bytes - c * s->chunk);
			uint64_t off = c * s->chunk + (rnd(s) % (len / 8 ? len / 8 : 1)) * 8;

			if (off + 8 <= s->cfg.state_bytes) {
				uint64_t v;
				memcpy(&v, s->mem + off, 8);
				v ^= rnd(s) | 1;
				memcpy(s->mem + off, &v, 8);
			}
			if (s->sent[c])
				s->dirty[c] = 1;
			s->dirt_carry -= s->chunk;
			s->mutations++;
		}
	}
	if (s->cfg.dma_rate && s->cfg.guest_ram && s->cfg.guest_bytes >= 4096) {
		s->dma_carry += (uint64_t)((double)s->cfg.dma_rate * (double)dt / 1e9);
		while (s->dma_carry >= 4096) {
			uint64_t page = rnd(s) % (s->cfg.guest_bytes / 4096);
			uint8_t *p = (uint8_t *)s->cfg.guest_ram + page * 4096;

			p[rnd(s) % 4096]++;
			if (s->dma_logging) {
				uint64_t bit = page * 4096 / s->dma_page;
				s->dma_bits[bit / 64] |= 1ull << (bit % 64);
			}
			s->dma_carry -= 4096;
		}
	}
}

/* ---- the device thread ------------------------------------------------------ */

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void wait_io(struct devsim *s, int fd, short ev)
{
	struct pollfd p[2] = { { .fd = fd, .events = ev }, { .fd = s->kick_fd, .events = POLLIN } };
	uint64_t v;

	if (poll(p, 2, 50) > 0 && (p[1].revents & POLLIN)) {
		if (read(s->kick_fd, &v, sizeof(v)) < 0) {
			/* nothing to drain */
		}
	}
}

static void *sim_thread(void *arg)
{
	struct devsim *s = arg;
	sigset_t set;

	/* A reader that closed its end must give EPIPE here, not kill the
	 * process: SIGPIPE is thread-directed, so blocking it here suffices. */
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, NULL);

	pthread_mutex_lock(&s->lock);
	while (!s->quit) {
		if (s->ack_seq != s->cmd_seq) {
			/* A state change is waiting: settle at this record boundary. */
			if (s->mode == M_DRAIN) {
				ssize_t n;
				while ((n = read(s->rfd, s->inbuf, 1 << 18)) > 0)
					devsim_parse(s, s->inbuf, (size_t)n);
				s->mode = M_NONE;
			}
			if (s->mode != M_SAVE)
				close_fd(&s->wfd);
			if (s->mode != M_LOAD)
				close_fd(&s->rfd);
			s->ack_seq = s->cmd_seq;
			pthread_cond_broadcast(&s->cond);
		}
		/* Idle, the device's activity is applied lazily by the next call
		 * (same result, and no background writes a caller cannot order). */
		if (s->mode == M_SAVE)
			devsim_advance(s);
		if (s->mode == M_SAVE && s->wfd >= 0) {
			if (s->out_off == s->out_len && !devsim_build_next(s)) {
				if (s->end_built) {
					close_fd(&s->wfd); /* reader sees the permanent end */
					continue;
				}
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_nsec += 5 * 1000 * 1000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&s->cond, &s->lock, &ts);
				continue;
			}
			int fd = s->wfd;
			pthread_mutex_unlock(&s->lock);
			struct iovec iov[2];
			int niov = 0;
			if (!s->pay) {
				iov[niov++] = (struct iovec){ s->out + s->out_off, s->out_len - s->out_off };
			} else {
				if (s->out_off < REC_HDR)
					iov[niov++] = (struct iovec){ s->out + s->out_off, REC_HDR - s->out_off };
				size_t po = s->out_off > REC_HDR ? s->out_off - REC_HDR : 0;
				iov[niov++] = (struct iovec){ (void *)(s->pay + po),
							      s->out_len - REC_HDR - po };
			}
			ssize_t n = writev(fd, iov, niov);
			if (n < 0 && errno == EAGAIN)
				wait_io(s, fd, POLLOUT);
			pthread_mutex_lock(&s->lock);
			if (n > 0) {
				s->out_off += (size_t)n;
				s->written += (uint64_t)n;
			} else if (n < 0 && errno != EAGAIN && errno != EINTR) {
				close_fd(&s->wfd); /* reader went away (EPIPE) */
			}
		} else if (s->mode == M_LOAD && s->rfd >= 0) {
			int fd = s->rfd;
			pthread_mutex_unlock(&s->lock);
			ssize_t n = read(fd, s->inbuf, 1 << 18);
			if (n < 0 && errno == EAGAIN)
				wait_io(s, fd, POLLIN);
			pthread_mutex_lock(&s->lock);
			if (n > 0)
				devsim_parse(s, s->inbuf, (size_t)n);
			else if (n == 0)
				wait_io(s, -1, 0); /* writer closed; wait for the state change */
		} else {
			pthread_cond_wait(&s->cond, &s->lock);
		}
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Caller side: asks the thread to settle and waits (lock held). */
static void sync_thread(struct devsim *s)
{
	uint64_t want = ++s->cmd_seq;

	kick(s);
	while (s->ack_seq < want)
		pthread_cond_wait(&s->cond, &s->lock);
}

static int open_pipe(struct devsim *s, int *caller_end, bool for_save)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	/* A bigger pipe = fewer wakeups and more data ready per read; not fatal
	 * when the limit refuses it (8 MiB needs CAP_SYS_RESOURCE). */
	if (fcntl(p[0], F_SETPIPE_SZ, 8 << 20) < 0)
		(void)fcntl(p[0], F_SETPIPE_SZ, 1 << 20);
	if (for_save) {
		s->wfd = p[1];
		s->rfd_peer = p[0];
		*caller_end = p[0];
	} else {
		s->rfd = p[0];
		*caller_end = p[1];
	}
	return 0;
}

static void start_save(struct devsim *s)
{
	s->written = 0;
	s->scan_pos = 0;
	s->end_built = false;
	s->corrupt_done = false;
	s->out_len = s->out_off = 0;
	memset(s->sent, 0, s->nchunks);
	memset(s->dirty, 0, s->nchunks);
	XXH3_64bits_reset(s->hs);
}

static int sim_set_state(struct sl_vfio_backend *be, enum sl_vfio_state to, int *data_fd)
{
	struct devsim *s = to_sim(be);
	enum sl_vfio_state from;
	int ret = 0;

	*data_fd = -1;
	pthread_mutex_lock(&s->lock);
	from = s->state;
	devsim_advance(s);
	if (!sl_vfio_arc_valid(from, to, be->caps)) {
		ret = sl_err(&be->err, -EINVAL, "%s: %s->%s is not a single arc", be->name,
			     sl_vfio_state_name(from), sl_vfio_state_name(to));
		goto out;
	}
	if (s->cfg.fail_from != s->cfg.fail_to && from == s->cfg.fail_from &&
	    to == s->cfg.fail_to) {
		if (s->cfg.fail_to_error) {
			s->state = SL_VFIO_ERROR;
			s->mode = M_NONE;
			sync_thread(s);
		}
		ret = sl_err(&be->err, -EIO, "%s: injected failure on %s->%s", be->name,
			     sl_vfio_state_name(from), sl_vfio_state_name(to));
		goto out;
	}
	if ((from == SL_VFIO_RUNNING && to == SL_VFIO_PRE_COPY) ||
	    (from == SL_VFIO_RUNNING_P2P && to == SL_VFIO_PRE_COPY_P2P) ||
	    (from == SL_VFIO_STOP && to == SL_VFIO_STOP_COPY)) {
		s->mode = M_NONE;
		sync_thread(s); /* closes any previous session */
		start_save(s);
		ret = open_pipe(s, data_fd, true);
		if (ret < 0)
			goto out;
		s->init_total = 0;
		if (to != SL_VFIO_STOP_COPY) {
			for (uint64_t c = 0; c < s->pre_chunks; c++)
				s->init_total += REC_HDR + chunk_len(s, c);
		}
		s->state = to;
		s->mode = M_SAVE;
		sync_thread(s);
	} else if (from == SL_VFIO_STOP && to == SL_VFIO_RESUMING) {
		s->mode = M_NONE;
		sync_thread(s);
		s->hdr_fill = 0;
		s->end_seen = s->load_bad = false;
		s->load_err[0] = 0;
		memset(s->loaded, 0, s->nchunks);
		XXH3_64bits_reset(s->ls);
		ret = open_pipe(s, data_fd, false);
		if (ret < 0)
			goto out;
		s->state = to;
		s->mode = M_LOAD;
		sync_thread(s);
	} else if (from == SL_VFIO_RESUMING) {
		/* Leaving RESUMING: take in everything written, then validate. */
		s->mode = M_DRAIN;
		sync_thread(s);
		if (!s->load_bad && !s->end_seen)
			devsim_load_fail(s, "stream ended before its end record");
		for (uint64_t c = 0; !s->load_bad && c < s->nchunks; c++)
			if (!s->loaded[c])
				devsim_load_fail(s, "stream did not cover the whole state");
		if (s->load_bad) {
			s->state = SL_VFIO_ERROR;
			ret = sl_err(&be->err, -EIO, "%s: device rejected the state: %s", be->name,
				     s->load_err);
			goto out;
		}
		s->loaded_hash = XXH3_64bits(s->mem, s->cfg.state_bytes);
		s->state = to;
	} else {
		s->state = to;
		if (!sl_vfio_state_saving(to)) {
			s->mode = M_NONE;
			sync_thread(s);
		} else {
			kick(s); /* e.g. PRE_COPY_P2P -> STOP_COPY: emit the rest */
		}
	}
out:
	/* A stopped device starts its activity afresh when it runs again. */
	if (!running(s->state))
		s->dirt_carry = s->dma_carry = 0;
	pthread_mutex_unlock(&s->lock);
	if (ret < 0 && *data_fd >= 0) {
		close(*data_fd);
		*data_fd = -1;
	}
	return ret;
}

static int sim_get_state(struct sl_vfio_backend *be, enum sl_vfio_state *st)
{
	struct devsim *s = to_sim(be);

	pthread_mutex_lock(&s->lock);
	*st = s->state;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

static int sim_reset(struct sl_vfio_backend *be)
{
	struct devsim *s = to_sim(be);

	pthread_mutex_lock(&s->lock);
	s->mode = M_NONE;
	sync_thread(s);
	s->state = SL_VFIO_RUNNING;
	s->last_ns = sl_now_ns();
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Stream bytes the reader has taken: written minus what still sits in the pipe. */
static uint64_t consumed(struct devsim *s, int data_fd)
{
	int inpipe = 0;

	if (ioctl(data_fd, FIONREAD, &inpipe) < 0 || inpipe < 0)
		inpipe = 0;
	return s->written > (uint64_t)inpipe ? s->written - (uint64_t)inpipe : 0;
}

static int sim_precopy_info(struct sl_vfio_backend *be, int data_fd, uint64_t *initial,
			    uint64_t *dirty)
{
	struct devsim *s = to_sim(be);
	int ret = 0;

	pthread_mutex_lock(&s->lock);
	devsim_advance(s);
	if (s->state != SL_VFIO_PRE_COPY && s->state != SL_VFIO_PRE_COPY_P2P) {
		ret = -EINVAL;
	} else {
		uint64_t c = consumed(s, data_fd), d = 0;

		*initial = c >= s->init_total ? 0 : s->init_total - c;
		for (uint64_t i = 0; i < s->pre_chunks; i++)
			if (s->dirty[i])
				d += REC_HDR + chunk_len(s, i);
		if (s->written > SL_MAX(c, s->init_total))
			d += s->written - SL_MAX(c, s->init_total);
		*dirty = d;
	}
	pthread_mutex_unlock(&s->lock);
	return ret;
}

static int sim_data_size(struct sl_vfio_backend *be, uint64_t *len)
{
	struct devsim *s = to_sim(be);
	uint64_t n = REC_HDR + 8;

	pthread_mutex_lock(&s->lock);
	devsim_advance(s);
	for (uint64_t c = 0; c < s->nchunks; c++)
		if (!s->sent[c] || s->dirty[c] || !sl_vfio_state_saving(s->state))
			n += REC_HDR + chunk_len(s, c);
	if (sl_vfio_state_saving(s->state) && s->rfd_peer >= 0 && s->wfd >= 0)
		n += s->written - consumed(s, s->rfd_peer);
	pthread_mutex_unlock(&s->lock);
	*len = n;
	return 0;
}

static void sim_destroy(struct sl_vfio_backend *be)
{
	struct devsim *s = to_sim(be);

	if (s->thread_started) {
		pthread_mutex_lock(&s->lock);
		s->quit = true;
		kick(s);
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->thread, NULL);
	}
	close_fd(&s->wfd);
	close_fd(&s->rfd);
	if (s->kick_fd >= 0)
		close(s->kick_fd);
	XXH3_freeState(s->hs);
	XXH3_freeState(s->ls);
	free(s->mem);
	free(s->sent);
	free(s->dirty);
	free(s->loaded);
	free(s->out);
	free(s->inbuf);
	free(s->dma_bits);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	free(s);
}

static const struct sl_vfio_backend_ops devsim_ops = {
	.kind = "simulated",
	.set_state = sim_set_state,
	.get_state = sim_get_state,
	.reset = sim_reset,
	.precopy_info = sim_precopy_info,
	.data_size = sim_data_size,
	.read = NULL, /* a real pipe: read with io_uring like a kernel data fd */
	.write = NULL,
	.destroy = sim_destroy,
};

bool devsim_is(const struct sl_vfio_backend *be)
{
	return be && be->ops == &devsim_ops;
}

/* ---- construction -------------------------------------------------------------- */

uint64_t sl_devsim_state_hash(struct sl_vfio_backend *be)
{
	struct devsim *s = to_sim(be);
	uint64_t h;

	if (!be || !devsim_is(be))
		return 0;
	pthread_mutex_lock(&s->lock);
	h = XXH3_64bits(s->mem, s->cfg.state_bytes);
	pthread_mutex_unlock(&s->lock);
	return h;
}

uint64_t sl_devsim_loaded_hash(struct sl_vfio_backend *be)
{
	struct devsim *s = to_sim(be);
	uint64_t h;

	if (!devsim_is(be))
		return 0;
	pthread_mutex_lock(&s->lock);
	h = s->loaded_hash;
	pthread_mutex_unlock(&s->lock);
	return h;
}

void sl_devsim_inject(struct sl_vfio_backend *be, enum sl_vfio_state from, enum sl_vfio_state to,
		      bool to_error)
{
	struct devsim *s = to_sim(be);

	if (!be || !devsim_is(be))
		return;
	pthread_mutex_lock(&s->lock);
	s->cfg.fail_from = from;
	s->cfg.fail_to = to;
	s->cfg.fail_to_error = to_error;
	pthread_mutex_unlock(&s->lock);
}

int sl_devsim_new(const struct sl_devsim_config *cfg, struct sl_vfio_backend **out,
		  struct sl_errbuf *eb)
{
	struct sl_errbuf dummy;
	struct devsim *s;

	if (!eb)
		eb = &dummy;
	if (!cfg || !out || cfg->size < sizeof(*cfg))
		return sl_err(eb, -EINVAL, "simulated device: missing or old config");
	if (!cfg->state_bytes || cfg->precopy_bytes > cfg->state_bytes)
		return sl_err(eb, -EINVAL, "simulated device: need state > 0 and precopy <= state");
	if (cfg->chunk_bytes && (cfg->chunk_bytes < 512 || cfg->chunk_bytes > (16u << 20)))
		return sl_err(eb, -EINVAL, "simulated device: chunk must be 512 B .. 16 MiB");
	uint32_t caps = cfg->caps ? cfg->caps : SL_VFIO_CAP_MASK;
	if (!(caps & SL_VFIO_CAP_STOP_COPY) || (caps & ~SL_VFIO_CAP_MASK))
		return sl_err(eb, -EINVAL, "simulated device: caps must include STOP_COPY");
	if (cfg->precopy_bytes && !(caps & SL_VFIO_CAP_PRE_COPY))
		return sl_err(eb, -EINVAL, "simulated device: precopy bytes without PRE_COPY");
	if (cfg->guest_ram && cfg->guest_bytes < 4096)
		return sl_err(eb, -EINVAL, "simulated device: guest RAM smaller than a page");

	s = calloc(1, sizeof(*s));
	if (!s)
		return sl_err(eb, -ENOMEM, "simulated device: out of memory");
	s->cfg = *cfg;
	s->be.ops = &devsim_ops;
	s->be.caps = caps;
	s->be.combination = false;
	snprintf(s->be.name, sizeof(s->be.name), "%s", cfg->name ? cfg->name : "sim");
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->wfd = s->rfd = s->rfd_peer = -1;
	s->state = SL_VFIO_RUNNING;
	s->chunk = cfg->chunk_bytes ? cfg->chunk_bytes : 65536;
	s->nchunks = SL_DIV_ROUND_UP(cfg->state_bytes, s->chunk);
	s->pre_chunks = SL_DIV_ROUND_UP(cfg->precopy_bytes, s->chunk);
	s->rng = cfg->seed * 0x9E3779B97F4A7C15ULL + 0x1234567ULL;
	s->last_ns = sl_now_ns();
	s->kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	s->mem = malloc(cfg->state_bytes);
	s->sent = calloc(s->nchunks, 1);
	s->dirty = calloc(s->nchunks, 1);
	s->loaded = calloc(s->nchunks, 1);
	s->out = malloc(REC_HDR + s->chunk);
	s->inbuf = malloc(1 << 18);
	s->hs = XXH3_createState();
	s->ls = XXH3_createState();
	devsim_sys_init(s);
	if (s->kick_fd < 0 || !s->mem || !s->sent || !s->dirty || !s->loaded || !s->out ||
	    !s->inbuf || !s->hs || !s->ls) {
		sim_destroy(&s->be);
		return sl_err(eb, -ENOMEM, "simulated device: out of memory");
	}
	for (uint64_t i = 0; i + 8 <= cfg->state_bytes; i += 8) {
		uint64_t v = rnd(s);
		memcpy(s->mem + i, &v, 8);
	}
	for (uint64_t i = cfg->state_bytes & ~7ull; i < cfg->state_bytes; i++)
		s->mem[i] = (uint8_t)rnd(s);
	if (pthread_create(&s->thread, NULL, sim_thread, s) != 0) {
		sim_destroy(&s->be);
		return sl_err(eb, -EAGAIN, "simulated device: cannot start its thread");
	}
	s->thread_started = true;
	*out = &s->be;
	return 0;
}

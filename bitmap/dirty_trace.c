/* SPDX-License-Identifier: MIT */
/*
 * dirty_trace.c — dirty traces: a writer, a recording source that wraps any
 * other source and writes each sync's pages to a trace, and a replay source
 * that reports the recorded syncs in order. Format: dirty_trace_format.h and
 * docs/dirty-sources.md. Every record carries an XXH64 over its header and
 * payload, so a truncated or mutated file is rejected with -EBADMSG (at
 * sl_dirty_trace_new, which checks the whole file) instead of being replayed
 * as something else.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <xxhash.h>
#include <zstd.h>

#include "dirty_trace_format.h"
#include "sl_bitmap.h"
#include "sl_dirty_internal.h"

/* ---- small I/O helpers ------------------------------------------------------ */

static int write_all(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		ssize_t n = writev(fd, iov, iovcnt);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		/* Short write: advance the iovec and go on. */
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (uint8_t *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return 0;
}

/* Reads exactly len bytes at off: 0, -EBADMSG at end of file, or -errno. */
static int pread_all(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EBADMSG;
		p += n;
		len -= (size_t)n;
		off += (uint64_t)n;
	}
	return 0;
}

/* Mask of the valid bits in the last word of an npages bitmap. */
static uint64_t tail_mask(uint64_t npages)
{
	return npages % 64 ? (UINT64_C(1) << (npages % 64)) - 1 : ~UINT64_C(0);
}

/* ---- writer ------------------------------------------------------------------ */

struct region_info {
	uint32_t id;
	uint64_t npages;
};

struct sl_trace_writer {
	int fd;
	pthread_mutex_t lock;
	ZSTD_CCtx *cctx;
	uint8_t *cbuf;
	size_t cbuf_cap;
	uint64_t t0_ns;
	uint64_t created_unix_ns;
	uint64_t records;
	struct region_info *regions;
	uint32_t nregions;
	int err; /* first write error: the file is then unusable */
	struct sl_errbuf eb;
};

static void encode_file_header(uint8_t *h, const struct sl_trace_writer *w, bool final)
{
	memset(h, 0, SL_TRACE_HDR_SIZE);
	memcpy(h, SL_TRACE_MAGIC, 8);
	sl_put_le32(h + 8, SL_TRACE_VERSION);
	sl_put_le32(h + 12, SL_TRACE_HDR_SIZE);
	sl_put_le32(h + 16, (uint32_t)sysconf(_SC_PAGESIZE));
	sl_put_le32(h + 20, final ? SL_TRACE_FLAG_FINALIZED : 0);
	sl_put_le64(h + 24, final ? w->records : 0);
	sl_put_le32(h + 32, final ? w->nregions : 0);
	sl_put_le64(h + 40, w->created_unix_ns);
	sl_put_le64(h + 56, XXH64(h, SL_TRACE_HDR_HASHED, 0));
}

SL_EXPORT int sl_trace_writer_open(const char *path, struct sl_trace_writer **out,
				   struct sl_errbuf *eb)
{
	struct sl_trace_writer *w;
	struct timespec ts;
	uint8_t hdr[SL_TRACE_HDR_SIZE];
	struct iovec iov = { hdr, sizeof(hdr) };
	int ret;

	if (!out)
		return sl_err(eb, -EINVAL, "trace writer: out is NULL");
	*out = NULL;
	if (!path || !*path)
		return sl_err(eb, -EINVAL, "trace writer: no path");
	w = calloc(1, sizeof(*w));
	if (!w)
		return sl_err(eb, -ENOMEM, "trace writer: out of memory");
	w->cctx = ZSTD_createCCtx();
	if (!w->cctx) {
		free(w);
		return sl_err(eb, -ENOMEM, "trace writer: out of memory (zstd context)");
	}
	w->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (w->fd < 0) {
		ret = -errno;
		ZSTD_freeCCtx(w->cctx);
		free(w);
		return sl_err(eb, ret, "trace writer: cannot create %s: %s", path, strerror(-ret));
	}
	pthread_mutex_init(&w->lock, NULL);
	clock_gettime(CLOCK_REALTIME, &ts);
	w->created_unix_ns = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	w->t0_ns = sl_now_ns();
	encode_file_header(hdr, w, false);
	ret = write_all(w->fd, &iov, 1);
	if (ret < 0) {
		sl_err(eb, ret, "trace writer: writing the header of %s: %s", path,
		       strerror(-ret));
		w->err = ret; /* close must not write to it again */
		sl_trace_writer_close(&w);
		return ret;
	}
	*out = w;
	return 0;
}

/* The region's entry, added on first sight; -EINVAL if npages changed. */
static int writer_region(struct sl_trace_writer *w, uint32_t id, uint64_t npages)
{
	struct region_info *r;

	for (uint32_t i = 0; i < w->nregions; i++) {
		if (w->regions[i].id != id)
			continue;
		if (w->regions[i].npages != npages)
			return sl_err(&w->eb, -EINVAL,
				      "trace writer: region %u had %llu pages, now %llu", id,
				      (unsigned long long)w->regions[i].npages,
				      (unsigned long long)npages);
		return 0;
	}
	r = realloc(w->regions, (w->nregions + 1) * sizeof(*r));
	if (!r)
		return sl_err(&w->eb, -ENOMEM, "trace writer: out of memory");
	w->regions = r;
	r[w->nregions].id = id;
	r[w->nregions].npages = npages;
	w->nregions++;
	return 0;
}

/* Compresses the bitmap (tail bits masked) into w->cbuf; returns the frame
 * length or a negative errno. */
static int64_t writer_compress(struct sl_trace_writer *w, const uint64_t *bitmap,
			       uint64_t npages)
{
	uint64_t nwords = sl_dirty_words(npages), full = npages / 64;
	uint64_t last = npages % 64 ? bitmap[full] & tail_mask(npages) : 0;
	size_t need = ZSTD_compressBound(nwords * 8), r;
	ZSTD_outBuffer ob;
	ZSTD_inBuffer ib;

	if (need > w->cbuf_cap) {
		uint8_t *nb = realloc(w->cbuf, need);

		if (!nb)
			return sl_err(&w->eb, -ENOMEM, "trace writer: out of memory (%zu bytes)",
				      need);
		w->cbuf = nb;
		w->cbuf_cap = need;
	}
	ZSTD_CCtx_reset(w->cctx, ZSTD_reset_session_only);
	ZSTD_CCtx_setParameter(w->cctx, ZSTD_c_compressionLevel, SL_TRACE_ZSTD_LEVEL);
	ZSTD_CCtx_setPledgedSrcSize(w->cctx, nwords * 8);
	ob = (ZSTD_outBuffer){ w->cbuf, w->cbuf_cap, 0 };
	ib = (ZSTD_inBuffer){ bitmap, full * 8, 0 };
	while (ib.pos < ib.size) {
		r = ZSTD_compressStream2(w->cctx, &ob, &ib, ZSTD_e_continue);
		if (ZSTD_isError(r))
			goto zerr;
	}
	ib = (ZSTD_inBuffer){ &last, npages % 64 ? 8 : 0, 0 };
	do {
		r = ZSTD_compressStream2(w->cctx, &ob, &ib, ZSTD_e_end);
		if (ZSTD_isError(r))
			goto zerr;
	} while (r);
	return (int64_t)ob.pos;
zerr:
	return sl_err(&w->eb, -EIO, "trace writer: zstd: %s", ZSTD_getErrorName(r));
}

SL_EXPORT int sl_trace_writer_add(struct sl_trace_writer *w, uint64_t t_ns, uint32_t region_id,
				  const uint64_t *bitmap, uint64_t npages)
{
	uint8_t rh[SL_TRACE_REC_SIZE] = { 0 };
	struct iovec iov[2];
	uint64_t ndirty;
	XXH64_state_t *hs;
	int64_t clen;
	int ret;

	if (!w || !bitmap || !npages || npages > SL_TRACE_MAX_NPAGES)
		return -EINVAL;
	pthread_mutex_lock(&w->lock);
	if (w->err) {
		ret = w->err;
		goto out;
	}
	ret = writer_region(w, region_id, npages);
	if (ret < 0)
		goto out;
	ndirty = (uint64_t)sl_bitmap_count(bitmap, npages);
	clen = writer_compress(w, bitmap, npages);
	if (clen < 0) {
		ret = (int)clen;
		goto out;
	}
	memcpy(rh, SL_TRACE_REC_MAGIC, 4);
	sl_put_le32(rh + 4, region_id);
	sl_put_le64(rh + 8, t_ns);
	sl_put_le64(rh + 16, npages);
	sl_put_le64(rh + 24, ndirty);
	sl_put_le32(rh + 32, (uint32_t)clen);
	hs = XXH64_createState();
	if (!hs) {
		ret = sl_err(&w->eb, -ENOMEM, "trace writer: out of memory");
		goto out;
	}
	XXH64_reset(hs, 0);
	XXH64_update(hs, rh, SL_TRACE_REC_HASHED);
	XXH64_update(hs, w->cbuf, (size_t)clen);
	sl_put_le64(rh + 40, XXH64_digest(hs));
	XXH64_freeState(hs);
	iov[0] = (struct iovec){ rh, sizeof(rh) };
	iov[1] = (struct iovec){ w->cbuf, (size_t)clen };
	ret = write_all(w->fd, iov, 2);
	if (ret < 0) {
		/* A partial record would make the rest of the file unreadable. */
		w->err = ret;
		sl_err(&w->eb, ret, "trace writer: write failed: %s", strerror(-ret));
		goto out;
	}
	w->records++;
out:
	pthread_mutex_unlock(&w->lock);
	return ret;
}

SL_EXPORT int sl_trace_writer_close(struct sl_trace_writer **wp)
{
	struct sl_trace_writer *w;
	uint8_t hdr[SL_TRACE_HDR_SIZE];
	int ret;

	if (!wp || !*wp)
		return 0;
	w = *wp;
	ret = w->err;
	if (!ret && w->fd >= 0) {
		encode_file_header(hdr, w, true);
		errno = 0;
		if (pwrite(w->fd, hdr, sizeof(hdr), 0) != (ssize_t)sizeof(hdr))
			ret = errno ? -errno : -EIO;
	}
	if (w->fd >= 0 && close(w->fd) < 0 && !ret)
		ret = -errno;
	pthread_mutex_destroy(&w->lock);
	ZSTD_freeCCtx(w->cctx);
	free(w->cbuf);
	free(w->regions);
	free(w);
	*wp = NULL;
	return ret;
}

/* ---- recording source ------------------------------------------------------- */

struct recording {
	struct sl_dirty_source base;
	struct sl_dirty_source *inner;
	struct sl_trace_writer *w;
	uint32_t region_id;
	uint64_t *scratch; /* inner reports here, so the trace gets only its bits */
};

static int rec_start(struct sl_dirty_source *src)
{
	struct recording *r = (struct recording *)src;
	int ret;

	if (src->log && !r->inner->log) { /* the inner source logs where we do */
		r->inner->log = src->log;
		r->inner->log_ctx = src->log_ctx;
	}
	ret = sl_dirty_start(r->inner);

	if (ret < 0)
		sl_err(&src->err, ret, "%s", sl_dirty_last_error(r->inner));
	return ret;
}

static int64_t rec_sync(struct sl_dirty_source *src, uint64_t *bitmap)
{
	struct recording *r = (struct recording *)src;
	uint64_t npages = src->npages;
	int64_t found;
	int ret;

	memset(r->scratch, 0, sl_dirty_words(npages) * 8);
	found = sl_dirty_sync(r->inner, r->scratch);
	if (found < 0)
		return sl_err(&src->err, (int)found, "%s", sl_dirty_last_error(r->inner));
	ret = sl_trace_writer_add(r->w, sl_now_ns() - r->w->t0_ns, r->region_id, r->scratch,
				  npages);
	if (ret < 0)
		return sl_err(&src->err, ret, "recording: %s", r->w->eb.msg[0] ? r->w->eb.msg :
			      strerror(-ret));
	sl_dirty_or_bits(bitmap, r->scratch, npages);
	return found;
}

static int rec_clear(struct sl_dirty_source *src, uint64_t first, uint64_t npages)
{
	struct recording *r = (struct recording *)src;
	int ret = sl_dirty_clear(r->inner, first, npages);

	src->counters.clear_calls = r->inner->counters.clear_calls;
	if (ret < 0)
		sl_err(&src->err, ret, "%s", sl_dirty_last_error(r->inner));
	return ret;
}

static int rec_stop(struct sl_dirty_source *src)
{
	struct recording *r = (struct recording *)src;

	return sl_dirty_stop(r->inner);
}

static void rec_destroy(struct sl_dirty_source *src)
{
	struct recording *r = (struct recording *)src;

	sl_dirty_free(&r->inner);
	free(r->scratch);
	free(r);
}

static const struct sl_dirty_ops rec_ops = {
	.name = "recording",
	.start = rec_start,
	.sync = rec_sync,
	.clear = rec_clear,
	.stop = rec_stop,
	.destroy = rec_destroy,
};

SL_EXPORT int sl_dirty_recording_new(struct sl_dirty_source *inner, struct sl_trace_writer *w,
				     uint32_t region_id, struct sl_dirty_source **out,
				     struct sl_errbuf *eb)
{
	struct recording *r;

	if (!out)
		return sl_err(eb, -EINVAL, "recording: out is NULL");
	*out = NULL;
	if (!inner || !w)
		return sl_err(eb, -EINVAL, "recording: %s is NULL", inner ? "writer" : "inner source");
	if (inner->started)
		return sl_err(eb, -EINVAL, "recording: wrap the source before starting it");
	if (inner->npages > SL_TRACE_MAX_NPAGES)
		return sl_err(eb, -EINVAL, "recording: %llu pages is over the trace limit of %llu",
			      (unsigned long long)inner->npages,
			      (unsigned long long)SL_TRACE_MAX_NPAGES);
	r = calloc(1, sizeof(*r));
	if (!r)
		return sl_err(eb, -ENOMEM, "recording: out of memory");
	r->scratch = malloc(sl_dirty_words(inner->npages) * 8);
	if (!r->scratch) {
		free(r);
		return sl_err(eb, -ENOMEM, "recording: no memory for a %llu-page bitmap",
			      (unsigned long long)inner->npages);
	}
	sl_dirty_source_init(&r->base, &rec_ops, inner->kind, inner->caps, inner->npages);
	r->inner = inner;
	r->w = w;
	r->region_id = region_id;
	*out = &r->base;
	return 0;
}

/* ---- replay source ------------------------------------------------------------ */

struct trace_rec {
	uint64_t off;      /* of the record header */
	uint32_t comp_len;
	uint64_t ndirty;
	uint64_t t_ns;
};

struct replay {
	struct sl_dirty_source base;
	int fd;
	char *path;
	bool loop;
	struct trace_rec *recs;
	uint64_t nrecs, next;
	uint8_t *buf;      /* one record, header + payload */
	size_t buf_cap;
	uint64_t *words;   /* the decompressed bitmap */
	ZSTD_DCtx *dctx;
};

static int replay_buf(struct replay *t, size_t need, struct sl_errbuf *eb)
{
	uint8_t *nb;

	if (need <= t->buf_cap)
		return 0;
	nb = realloc(t->buf, need);
	if (!nb)
		return sl_err(eb, -ENOMEM, "trace %s: out of memory (%zu bytes)", t->path, need);
	t->buf = nb;
	t->buf_cap = need;
	return 0;
}

/* Reads the record at off into t->buf and checks its checksum. */
static int read_record(struct replay *t, uint64_t off, uint64_t file_size, uint64_t idx,
		       struct sl_errbuf *eb)
{
	uint64_t clen, npages, ndirty;
	int ret;

	if (file_size - off < SL_TRACE_REC_SIZE)
		return sl_err(eb, -EBADMSG, "trace %s: truncated: record %llu at offset %llu has "
			      "%llu of %u header bytes", t->path, (unsigned long long)idx,
			      (unsigned long long)off, (unsigned long long)(file_size - off),
			      SL_TRACE_REC_SIZE);
	ret = replay_buf(t, SL_TRACE_REC_SIZE, eb);
	if (ret < 0)
		return ret;
	ret = pread_all(t->fd, t->buf, SL_TRACE_REC_SIZE, off);
	if (ret < 0)
		goto io;
	if (memcmp(t->buf, SL_TRACE_REC_MAGIC, 4) || sl_get_le32(t->buf + 36))
		return sl_err(eb, -EBADMSG, "trace %s: corrupt: record %llu at offset %llu has "
			      "no record magic", t->path, (unsigned long long)idx,
			      (unsigned long long)off);
	clen = sl_get_le32(t->buf + 32);
	npages = sl_get_le64(t->buf + 16);
	ndirty = sl_get_le64(t->buf + 24);
	if (clen > file_size - off - SL_TRACE_REC_SIZE)
		return sl_err(eb, -EBADMSG, "trace %s: truncated: record %llu at offset %llu "
			      "needs %llu payload bytes, file has %llu", t->path,
			      (unsigned long long)idx, (unsigned long long)off,
			      (unsigned long long)clen,
			      (unsigned long long)(file_size - off - SL_TRACE_REC_SIZE));
	ret = replay_buf(t, SL_TRACE_REC_SIZE + clen, eb);
	if (ret < 0)
		return ret;
	ret = pread_all(t->fd, t->buf + SL_TRACE_REC_SIZE, clen, off + SL_TRACE_REC_SIZE);
	if (ret < 0)
		goto io;
	{
		XXH64_state_t *hs = XXH64_createState();
		uint64_t h;

		if (!hs)
			return sl_err(eb, -ENOMEM, "trace %s: out of memory", t->path);
		XXH64_reset(hs, 0);
		XXH64_update(hs, t->buf, SL_TRACE_REC_HASHED);
		XXH64_update(hs, t->buf + SL_TRACE_REC_SIZE, clen);
		h = XXH64_digest(hs);
		XXH64_freeState(hs);
		if (h != sl_get_le64(t->buf + 40))
			return sl_err(eb, -EBADMSG, "trace %s: corrupt: record %llu at offset "
				      "%llu fails its checksum", t->path, (unsigned long long)idx,
				      (unsigned long long)off);
	}
	if (!npages || npages > SL_TRACE_MAX_NPAGES || ndirty > npages)
		return sl_err(eb, -EBADMSG, "trace %s: corrupt: record %llu has %llu pages, "
			      "%llu dirty", t->path, (unsigned long long)idx,
			      (unsigned long long)npages, (unsigned long long)ndirty);
	return 0;
io:
	if (ret == -EBADMSG)
		return sl_err(eb, ret, "trace %s: truncated while reading record %llu", t->path,
			      (unsigned long long)idx);
	return sl_err(eb, ret, "trace %s: read: %s", t->path, strerror(-ret));
}

static int check_file_header(struct replay *t, uint64_t file_size, uint32_t *flags,
			     uint64_t *nrecords, struct sl_errbuf *eb)
{
	uint8_t h[SL_TRACE_HDR_SIZE];
	int ret;

	if (file_size < SL_TRACE_HDR_SIZE)
		return sl_err(eb, -EBADMSG, "trace %s: truncated: %llu bytes, a header is %u",
			      t->path, (unsigned long long)file_size, SL_TRACE_HDR_SIZE);
	ret = pread_all(t->fd, h, sizeof(h), 0);
	if (ret < 0)
		return sl_err(eb, ret, "trace %s: read: %s", t->path, strerror(-ret));
	if (memcmp(h, SL_TRACE_MAGIC, 8))
		return sl_err(eb, -EBADMSG, "trace %s: not a sluice dirty trace (bad magic)",
			      t->path);
	if (XXH64(h, SL_TRACE_HDR_HASHED, 0) != sl_get_le64(h + 56))
		return sl_err(eb, -EBADMSG, "trace %s: corrupt: header checksum mismatch", t->path);
	if (sl_get_le32(h + 8) != SL_TRACE_VERSION)
		return sl_err(eb, -EBADMSG, "trace %s: version %u, this build reads version %u",
			      t->path, sl_get_le32(h + 8), SL_TRACE_VERSION);
	if (sl_get_le32(h + 12) != SL_TRACE_HDR_SIZE)
		return sl_err(eb, -EBADMSG, "trace %s: corrupt: header size %u", t->path,
			      sl_get_le32(h + 12));
	*flags = sl_get_le32(h + 20);
	*nrecords = sl_get_le64(h + 24);
	return 0;
}

/* Walks every record, checking each; indexes those of region_id. */
static int replay_index(struct replay *t, uint32_t region_id, struct sl_errbuf *eb)
{
	struct stat st;
	uint64_t off = SL_TRACE_HDR_SIZE, idx = 0, nrecords = 0, cap = 0, npages = 0;
	uint32_t flags = 0;
	int ret;

	if (fstat(t->fd, &st) < 0)
		return sl_err(eb, -errno, "trace %s: stat: %s", t->path, strerror(errno));
	ret = check_file_header(t, (uint64_t)st.st_size, &flags, &nrecords, eb);
	if (ret < 0)
		return ret;
	for (; off < (uint64_t)st.st_size; idx++) {
		uint64_t clen, rnp;

		ret = read_record(t, off, (uint64_t)st.st_size, idx, eb);
		if (ret < 0)
			return ret;
		clen = sl_get_le32(t->buf + 32);
		rnp = sl_get_le64(t->buf + 16);
		if (sl_get_le32(t->buf + 4) == region_id) {
			if (npages && rnp != npages)
				return sl_err(eb, -EBADMSG, "trace %s: region %u has %llu pages in "
					      "record %llu, %llu before", t->path, region_id,
					      (unsigned long long)rnp, (unsigned long long)idx,
					      (unsigned long long)npages);
			npages = rnp;
			if (t->nrecs == cap) {
				struct trace_rec *nr;

				cap = cap ? cap * 2 : 64;
				nr = realloc(t->recs, cap * sizeof(*nr));
				if (!nr)
					return sl_err(eb, -ENOMEM, "trace %s: out of memory", t->path);
				t->recs = nr;
			}
			t->recs[t->nrecs++] = (struct trace_rec){
				.off = off,
				.comp_len = (uint32_t)clen,
				.ndirty = sl_get_le64(t->buf + 24),
				.t_ns = sl_get_le64(t->buf + 8),
			};
		}
		off += SL_TRACE_REC_SIZE + clen;
	}
	if ((flags & SL_TRACE_FLAG_FINALIZED) && nrecords != idx)
		return sl_err(eb, -EBADMSG, "trace %s: truncated: header says %llu records, file "
			      "has %llu", t->path, (unsigned long long)nrecords,
			      (unsigned long long)idx);
	if (!t->nrecs)
		return sl_err(eb, -ENODATA, "trace %s: no record of region %u (%llu records)",
			      t->path, region_id, (unsigned long long)idx);
	t->base.npages = npages;
	return 0;
}

static int replay_start(struct sl_dirty_source *src)
{
	((struct replay *)src)->next = 0;
	return 0;
}

static int64_t replay_sync(struct sl_dirty_source *src, uint64_t *bitmap)
{
	struct replay *t = (struct replay *)src;
	uint64_t npages = src->npages, nwords = sl_dirty_words(npages), n;
	const struct trace_rec *rec;
	struct stat st;
	size_t r;
	int ret;

	if (t->next == t->nrecs) {
		if (!t->loop)
			return 0; /* the recorded guest has gone quiet */
		t->next = 0;
	}
	rec = &t->recs[t->next];
	/* The file was checked at open; check again in case it changed since. */
	if (fstat(t->fd, &st) < 0)
		return sl_err(&src->err, -errno, "trace %s: stat: %s", t->path, strerror(errno));
	ret = read_record(t, rec->off, (uint64_t)st.st_size, t->next, &src->err);
	if (ret < 0)
		return ret;
	r = ZSTD_decompressDCtx(t->dctx, t->words, nwords * 8, t->buf + SL_TRACE_REC_SIZE,
				rec->comp_len);
	if (ZSTD_isError(r))
		return sl_err(&src->err, -EBADMSG, "trace %s: corrupt: record at offset %llu: "
			      "zstd: %s", t->path, (unsigned long long)rec->off,
			      ZSTD_getErrorName(r));
	if (r != nwords * 8 || (t->words[nwords - 1] & ~tail_mask(npages)))
		return sl_err(&src->err, -EBADMSG, "trace %s: corrupt: record at offset %llu "
			      "holds %zu bytes for a %llu-page bitmap", t->path,
			      (unsigned long long)rec->off, r, (unsigned long long)npages);
	n = sl_dirty_or_bits(bitmap, t->words, npages);
	if (n != rec->ndirty)
		return sl_err(&src->err, -EBADMSG, "trace %s: corrupt: record at offset %llu has "
			      "%llu pages set, header says %llu", t->path,
			      (unsigned long long)rec->off, (unsigned long long)n,
			      (unsigned long long)rec->ndirty);
	t->next++;
	return (int64_t)n;
}

static void replay_destroy(struct sl_dirty_source *src)
{
	struct replay *t = (struct replay *)src;

	if (t->fd >= 0)
		close(t->fd);
	ZSTD_freeDCtx(t->dctx);
	free(t->recs);
	free(t->buf);
	free(t->words);
	free(t->path);
	free(t);
}

static const struct sl_dirty_ops replay_ops = {
	.name = "trace",
	.start = replay_start,
	.sync = replay_sync,
	.destroy = replay_destroy,
};

SL_EXPORT int sl_dirty_trace_new(const struct sl_dirty_trace_config *cfg,
				 struct sl_dirty_source **out, struct sl_errbuf *eb)
{
	struct replay *t;
	int ret;

	if (!out)
		return sl_err(eb, -EINVAL, "trace: out is NULL");
	*out = NULL;
	ret = sl_dirty_check_config(cfg, offsetof(struct sl_dirty_trace_config, loop) +
				    sizeof(bool), "trace", eb);
	if (ret < 0)
		return ret;
	if (!cfg->path || !*cfg->path)
		return sl_err(eb, -EINVAL, "trace: no path");
	t = calloc(1, sizeof(*t));
	if (!t)
		return sl_err(eb, -ENOMEM, "trace: out of memory");
	sl_dirty_source_init(&t->base, &replay_ops, SL_DIRTY_TRACE, SL_DIRTY_CAP_SIMULATED, 0);
	t->loop = cfg->loop;
	t->path = strdup(cfg->path);
	t->dctx = ZSTD_createDCtx();
	t->fd = open(cfg->path, O_RDONLY | O_CLOEXEC);
	if (!t->path || !t->dctx) {
		ret = sl_err(eb, -ENOMEM, "trace: out of memory");
		goto fail;
	}
	if (t->fd < 0) {
		ret = sl_err(eb, -errno, "trace %s: cannot open: %s", cfg->path, strerror(errno));
		goto fail;
	}
	ret = replay_index(t, cfg->region_id, eb);
	if (ret < 0)
		goto fail;
	t->words = malloc(sl_dirty_words(t->base.npages) * 8);
	if (!t->words) {
		ret = sl_err(eb, -ENOMEM, "trace %s: no memory for a %llu-page bitmap", t->path,
			     (unsigned long long)t->base.npages);
		goto fail;
	}
	*out = &t->base;
	return 0;
fail:
	replay_destroy(&t->base);
	return ret;
}

/* SPDX-License-Identifier: MIT */
/* sl_sockio.c — blocking socket helpers with timeouts, and the handshake. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sl_io_internal.h"

int sl_io_prepare_socket(int fd, int timeout_ms)
{
	int buf = SL_IO_SOCKBUF;
	struct timeval tv = { 0 };

	if (timeout_ms > 0) {
		tv.tv_sec = timeout_ms / 1000;
		tv.tv_usec = (timeout_ms % 1000) * 1000;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
		return -errno;
	/* Best effort: a smaller buffer only costs throughput. */
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &buf, sizeof(buf));
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof(buf));
	return 0;
}

static int map_errno(int e)
{
	return (e == EAGAIN || e == EWOULDBLOCK) ? -ETIMEDOUT : -e;
}

ssize_t sl_io_read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, (char *)buf + got, len - got, 0);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return map_errno(errno);
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

ssize_t sl_io_readv_full(int fd, struct iovec *iov, int iovcnt)
{
	size_t got = 0;

	while (iovcnt > 0) {
		ssize_t n = readv(fd, iov, iovcnt);

		if (n == 0)
			break;
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return map_errno(errno);
		}
		got += (size_t)n;
		/* Short read: advance the iovec and go on. */
		while (iovcnt > 0 && (size_t)n >= iov->iov_len) {
			n -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + n;
			iov->iov_len -= (size_t)n;
		}
	}
	return (ssize_t)got;
}

int sl_io_write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(fd, (const char *)buf + done, len - done, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return map_errno(errno);
		}
		done += (size_t)n;
	}
	return 0;
}

int sl_io_send_small_packet(int fd, struct sl_pkt *p, const void *payload, size_t len)
{
	uint8_t buf[SL_PKT_COMMON_LEN + 16 + SL_PKT_MAX_TEXT_PAYLOAD];
	int hl;

	if (len > SL_PKT_MAX_TEXT_PAYLOAD)
		return -EINVAL;
	p->payload_len = len;
	hl = sl_wire_encode_header(p, NULL, buf, sizeof(buf) - SL_PKT_MAX_TEXT_PAYLOAD);
	if (hl < 0)
		return hl;
	if (len)
		memcpy(buf + hl, payload, len);
	return sl_io_write_full(fd, buf, (size_t)hl + len);
}

void sl_io_log(sl_log_fn fn, void *ctx, enum sl_log_level lvl, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fn(ctx, lvl, msg);
}

/* ---- handshake ----------------------------------------------------------- */

int sl_hs_server_verdict(int fd, uint32_t status, const char *reason)
{
	struct sl_wire_verdict v = { .version = SL_WIRE_VERSION, .status = status };
	uint8_t out[SL_VERDICT_FIXED_LEN + SL_VERDICT_REASON_MAX];
	size_t n;

	reason = reason ? reason : "";
	sl_wire_verdict_set_reason(&v, (const uint8_t *)reason, strlen(reason));
	n = sl_wire_encode_verdict(&v, out);
	return sl_io_write_full(fd, out, n);
}

/* Refuses the peer with eb's text and returns err. */
static int refuse(int fd, int err, struct sl_errbuf *eb)
{
	sl_hs_server_verdict(fd, (uint32_t)-err, eb->msg);
	return err;
}

int sl_hs_server_begin(int fd, const uint8_t *psk, size_t psk_len, uint32_t page_size,
		       struct sl_wire_hello *hello, struct sl_errbuf *eb)
{
	struct sl_wire_challenge c = { .version = SL_WIRE_VERSION, .caps = SL_CAP_KNOWN };
	uint8_t cbuf[SL_CHALLENGE_LEN], hbuf[SL_HELLO_LEN], mac[SL_HMAC_LEN];
	ssize_t n;
	int ret;

	if (getrandom(c.nonce, sizeof(c.nonce), 0) != (ssize_t)sizeof(c.nonce))
		return sl_err(eb, -EIO, "no random bytes for the nonce");
	sl_wire_encode_challenge(&c, cbuf);
	ret = sl_io_write_full(fd, cbuf, sizeof(cbuf));
	if (ret)
		return sl_err(eb, ret, "handshake: sending challenge: %s", strerror(-ret));
	n = sl_io_read_full(fd, hbuf, sizeof(hbuf));
	if (n < 0)
		return sl_err(eb, (int)n, "handshake: reading hello: %s", strerror((int)-n));
	if (n < (ssize_t)sizeof(hbuf)) {
		/* Version-neutral refusal: a peer that sent less may speak another version. */
		sl_err(eb, -EPROTO, "handshake: hello truncated (%zd of %d bytes)", n, SL_HELLO_LEN);
		return refuse(fd, -EPROTO, eb);
	}
	ret = sl_wire_decode_hello(hbuf, sizeof(hbuf), hello, eb);
	if (ret)
		return refuse(fd, ret, eb);
	if (hello->version != SL_WIRE_VERSION) {
		sl_err(eb, -EPROTONOSUPPORT,
		       "unsupported protocol version %u (this receiver speaks %u)",
		       hello->version, SL_WIRE_VERSION);
		return refuse(fd, -EPROTONOSUPPORT, eb);
	}
	if (sl_wire_hello_mac(psk, psk_len, c.nonce, hbuf, mac))
		return sl_err(eb, -EIO, "handshake: HMAC computation failed");
	if (!sl_wire_mac_equal(mac, hello->hmac)) {
		sl_err(eb, -EACCES, "authentication failed: wrong pre-shared key (channel %u)",
		       hello->channel_index);
		return refuse(fd, -EACCES, eb);
	}
	if (!(hello->caps & SL_CAP_HDR_XXH32) || (hello->caps & ~SL_CAP_KNOWN)) {
		sl_err(eb, -EINVAL, "unsupported capability bits 0x%x", hello->caps);
		return refuse(fd, -EINVAL, eb);
	}
	if (hello->page_size != page_size) {
		sl_err(eb, -EINVAL, "page size %u differs from the receiver's %u",
		       hello->page_size, page_size);
		return refuse(fd, -EINVAL, eb);
	}
	if (!hello->channel_count || hello->channel_count > SL_MAX_CHANNELS ||
	    hello->channel_index >= hello->channel_count) {
		sl_err(eb, -EINVAL, "bad channel %u of %u", hello->channel_index,
		       hello->channel_count);
		return refuse(fd, -EINVAL, eb);
	}
	if (hello->granule_bytes < page_size || (hello->granule_bytes & (hello->granule_bytes - 1)) ||
	    hello->granule_bytes > (1ull << 40)) {
		sl_err(eb, -EINVAL, "bad granule size %llu", (unsigned long long)hello->granule_bytes);
		return refuse(fd, -EINVAL, eb);
	}
	return 0;
}

int sl_hs_client(int fd, const uint8_t *psk, size_t psk_len, struct sl_wire_hello *h,
		 struct sl_errbuf *eb)
{
	uint8_t cbuf[SL_CHALLENGE_LEN], hbuf[SL_HELLO_LEN], vbuf[SL_VERDICT_FIXED_LEN];
	uint8_t reason[SL_VERDICT_REASON_MAX];
	struct sl_wire_challenge c;
	struct sl_wire_verdict v;
	ssize_t n;
	int ret;

	n = sl_io_read_full(fd, cbuf, sizeof(cbuf));
	if (n != (ssize_t)sizeof(cbuf))
		return sl_err(eb, n < 0 ? (int)n : -ECONNRESET,
			      "channel %u: handshake: reading challenge: %s", h->channel_index,
			      n < 0 ? strerror((int)-n) : "connection closed");
	ret = sl_wire_decode_challenge(cbuf, sizeof(cbuf), &c, eb);
	if (ret)
		return ret;
	memset(h->hmac, 0, sizeof(h->hmac));
	sl_wire_encode_hello(h, hbuf);
	if (sl_wire_hello_mac(psk, psk_len, c.nonce, hbuf, h->hmac))
		return sl_err(eb, -EIO, "HMAC computation failed");
	memcpy(hbuf + SL_HELLO_SIGNED_LEN, h->hmac, SL_HMAC_LEN);
	ret = sl_io_write_full(fd, hbuf, sizeof(hbuf));
	if (ret)
		return sl_err(eb, ret, "channel %u: handshake: sending hello: %s", h->channel_index,
			      strerror(-ret));
	n = sl_io_read_full(fd, vbuf, sizeof(vbuf));
	if (n != (ssize_t)sizeof(vbuf))
		return sl_err(eb, n < 0 ? (int)n : -ECONNRESET,
			      "channel %u: handshake: reading verdict: %s", h->channel_index,
			      n < 0 ? strerror((int)-n) : "connection closed");
	ret = sl_wire_decode_verdict_fixed(vbuf, sizeof(vbuf), &v, eb);
	if (ret)
		return ret;
	n = sl_io_read_full(fd, reason, v.reason_len);
	if (n != (ssize_t)v.reason_len)
		return sl_err(eb, -ECONNRESET, "channel %u: handshake: verdict truncated",
			      h->channel_index);
	sl_wire_verdict_set_reason(&v, reason, v.reason_len);
	if (v.status) {
		int err = (v.status > 4095) ? -EPROTO : -(int)v.status;

		return sl_err(eb, err, "receiver refused channel %u: %s", h->channel_index,
			      v.reason);
	}
	return 0;
}

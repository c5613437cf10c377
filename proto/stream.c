/*
 * stream.c — plain TCP transport, the write queue and the end-of-iteration
 * hook shared by the RPC server and client.
 */
#include "stream.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

/* A write buffer that grew past this is released once written, so one
 * burst does not pin memory for the life of the connection. */
#define STREAM_KEEP_CAP (1u << 20)

/* ---- Plain TCP transport ------------------------------------------------ */

/* libuv calls alloc, reads, then calls read_cb before touching any other
 * stream, and on_read copies what it keeps, so one buffer per loop thread
 * serves every connection instead of 64 KiB each. */
static _Thread_local uint8_t tcp_rbuf[RPC_STREAM_READ_SIZE];

void rpc_stream__alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	buf->base = (char *)tcp_rbuf;
	buf->len = sizeof(tcp_rbuf);
}

bool rpc_stream__read_end(struct rpc_stream *s, ssize_t n)
{
	if (n == 0 || s->closing)
		return true;
	if (n > 0)
		return false;
	s->reading = false;
	uv_read_stop((uv_stream_t *)&s->tcp);
	s->cbs->on_read(s, NULL, 0,
			n == UV_EOF ? SETTLE_ECLOSED
				    : settle_err_from_uv((int)n));
	return true;
}

static void tcp_read_cb(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
	struct rpc_stream *s = h->data;

	if (!rpc_stream__read_end(s, n))
		s->cbs->on_read(s, (const uint8_t *)buf->base, (size_t)n, 0);
}

static int tcp_read_start(struct rpc_stream *s)
{
	return settle_err_from_uv(uv_read_start(
	    (uv_stream_t *)&s->tcp, rpc_stream__alloc_cb, tcp_read_cb));
}

static int tcp_read_stop(struct rpc_stream *s)
{
	return settle_err_from_uv(uv_read_stop((uv_stream_t *)&s->tcp));
}

static void tcp_write_cb(uv_write_t *req, int status)
{
	rpc_stream__write_done(req->data, status);
}

static int tcp_write(struct rpc_stream *s, const uint8_t *buf, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);

	s->wreq.data = s;
	return settle_err_from_uv(
	    uv_write(&s->wreq, (uv_stream_t *)&s->tcp, &b, 1, tcp_write_cb));
}

static int tcp_try_write(struct rpc_stream *s, const uint8_t *buf, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);

	return uv_try_write((uv_stream_t *)&s->tcp, &b, 1);
}

static void tcp_close_cb(uv_handle_t *h)
{
	rpc_stream__closed(h->data);
}

static void tcp_close(struct rpc_stream *s)
{
	uv_close((uv_handle_t *)&s->tcp, tcp_close_cb);
}

static const struct rpc_stream_ops tcp_ops = {
    .read_start = tcp_read_start,
    .read_stop = tcp_read_stop,
    .write = tcp_write,
    .try_write = tcp_try_write,
    .close = tcp_close,
};

int rpc_stream_tcp_init(uv_loop_t *loop, struct rpc_stream *s,
			const struct rpc_stream_cbs *cbs, void *data)
{
	int rv;

	memset(s, 0, sizeof(*s));
	rv = uv_tcp_init(loop, &s->tcp);
	if (rv != 0)
		return settle_err_from_uv(rv);
	s->tcp.data = s;
	s->ops = &tcp_ops;
	s->cbs = cbs;
	s->data = data;
	return 0;
}

void rpc_stream_tcp_ready(struct rpc_stream *s)
{
	/* Frames are written whole and coalesced already; Nagle would only
	 * add latency to small replies. */
	uv_tcp_nodelay(&s->tcp, 1);
}

void rpc_stream_peer(const struct rpc_stream *s, char *buf, size_t len)
{
	struct sockaddr_storage ss;
	int sslen = sizeof(ss);
	char ip[64];

	snprintf(buf, len, "?");
	if (uv_tcp_getpeername(&s->tcp, (struct sockaddr *)&ss, &sslen) != 0)
		return;
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const void *)&ss;
		uv_ip6_name(a, ip, sizeof(ip));
		snprintf(buf, len, "[%s]:%d", ip, ntohs(a->sin6_port));
	} else if (ss.ss_family == AF_INET) {
		const struct sockaddr_in *a = (const void *)&ss;
		uv_ip4_name(a, ip, sizeof(ip));
		snprintf(buf, len, "%s:%d", ip, ntohs(a->sin_port));
	}
}

/* ---- Generic stream ------------------------------------------------------ */

int rpc_stream_read_start(struct rpc_stream *s)
{
	int rv;

	if (s->closing)
		return SETTLE_ECLOSED;
	if (s->reading)
		return 0;
	rv = s->ops->read_start(s);
	if (rv == 0)
		s->reading = true;
	return rv;
}

int rpc_stream_read_stop(struct rpc_stream *s)
{
	if (!s->reading || s->closing)
		return 0;
	s->reading = false;
	return s->ops->read_stop(s);
}

int rpc_stream_queue(struct rpc_stream *s, const uint8_t *data, size_t len)
{
	if (s->closing)
		return SETTLE_ECLOSED;
	if (s->out_cap - s->out_len < len) {
		size_t cap = s->out_cap < 4096 ? 4096 : s->out_cap;
		uint8_t *p;

		while (cap - s->out_len < len) {
			if (cap > SIZE_MAX / 2)
				return SETTLE_ENOMEM;
			cap *= 2;
		}
		p = realloc(s->out, cap);
		if (p == NULL)
			return SETTLE_ENOMEM;
		s->out = p;
		s->out_cap = cap;
	}
	memcpy(s->out + s->out_len, data, len);
	s->out_len += len;
	return 0;
}

int rpc_stream_flush(struct rpc_stream *s)
{
	uint8_t *p;
	size_t cap;
	int rv;

	if (s->closing || s->writing || s->out_len == 0)
		return 0;
	/* Most flushes go out whole at once: then no write request, and no
	 * change to the loop's poll set (libuv re-arms a stream's watcher
	 * after every uv_write, one epoll_ctl each). */
	if (s->ops->try_write != NULL) {
		int n = s->ops->try_write(s, s->out, s->out_len);

		if (n > 0 && (size_t)n == s->out_len) {
			s->out_len = 0;
			return 0;
		}
		if (n > 0) {
			memmove(s->out, s->out + n, s->out_len - (size_t)n);
			s->out_len -= (size_t)n;
		}
	}
	/* Swap: the queue becomes the write in progress, and new replies
	 * go into the old write buffer. */
	p = s->busy;
	cap = s->busy_cap;
	s->busy = s->out;
	s->busy_cap = s->out_cap;
	s->busy_len = s->out_len;
	s->out = p;
	s->out_cap = cap;
	s->out_len = 0;
	s->writing = true;
	rv = s->ops->write(s, s->busy, s->busy_len);
	if (rv != 0) {
		s->writing = false;
		s->busy_len = 0;
	}
	return rv;
}

size_t rpc_stream_pending(const struct rpc_stream *s)
{
	return s->out_len + s->busy_len;
}

void rpc_stream__write_done(struct rpc_stream *s, int status)
{
	s->writing = false;
	s->busy_len = 0;
	if (s->busy_cap > STREAM_KEEP_CAP) {
		free(s->busy);
		s->busy = NULL;
		s->busy_cap = 0;
	}
	if (s->closing)
		return;
	if (status < 0) {
		s->cbs->on_write_error(s, settle_err_from_uv(status));
		return;
	}
	/* Whatever was queued meanwhile waited a whole write already. */
	status = rpc_stream_flush(s);
	if (status != 0) {
		s->cbs->on_write_error(s, status);
		return;
	}
	if (s->cbs->on_written != NULL && !s->closing)
		s->cbs->on_written(s);
}

void rpc_stream_close(struct rpc_stream *s)
{
	if (s->closing)
		return;
	s->closing = true;
	s->reading = false;
	s->ops->close(s);
}

void rpc_stream__closed(struct rpc_stream *s)
{
	free(s->out);
	free(s->busy);
	s->out = s->busy = NULL;
	s->out_len = s->out_cap = s->busy_len = s->busy_cap = 0;
	s->cbs->on_close(s);
}

/* ---- End-of-iteration hook ------------------------------------------------
 */

static void tick_run(struct rpc_tick *t)
{
	if (!t->armed)
		return;
	t->armed = false;
	uv_prepare_stop(&t->prepare);
	uv_check_stop(&t->check);
	t->cb(t);
}

static void tick_prepare_cb(uv_prepare_t *h)
{
	tick_run(h->data);
}

static void tick_check_cb(uv_check_t *h)
{
	tick_run(h->data);
}

int rpc_tick_init(uv_loop_t *loop, struct rpc_tick *t,
		  void (*cb)(struct rpc_tick *t), void *data)
{
	memset(t, 0, sizeof(*t));
	t->cb = cb;
	t->data = data;
	/* Neither can fail on unix: they only fill in the handle. */
	uv_prepare_init(loop, &t->prepare);
	uv_check_init(loop, &t->check);
	t->prepare.data = t;
	t->check.data = t;
	t->open = 2;
	return 0;
}

void rpc_tick_arm(struct rpc_tick *t)
{
	if (t->armed || t->closed)
		return;
	t->armed = true;
	uv_prepare_start(&t->prepare, tick_prepare_cb);
	uv_check_start(&t->check, tick_check_cb);
}

static void tick_close_cb(uv_handle_t *h)
{
	struct rpc_tick *t = h->data;

	if (--t->open == 0 && t->close_cb != NULL)
		t->close_cb(t);
}

void rpc_tick_close(struct rpc_tick *t, void (*close_cb)(struct rpc_tick *t))
{
	t->armed = false;
	/* Starting a handle that is closing would use it after free. */
	t->closed = true;
	t->close_cb = close_cb;
	uv_close((uv_handle_t *)&t->prepare, tick_close_cb);
	uv_close((uv_handle_t *)&t->check, tick_close_cb);
}

/* ---- Addresses ------------------------------------------------------------
 */

int rpc_addr_split(const char *address, char *host, size_t host_len, int *port)
{
	const char *h, *colon, *end;
	size_t n;
	long p;
	char *pend;

	if (address == NULL)
		return SETTLE_EINVAL;
	if (address[0] == '[') {
		h = address + 1;
		end = strchr(h, ']');
		if (end == NULL || end[1] != ':')
			return SETTLE_EINVAL;
		colon = end + 1;
	} else {
		h = address;
		colon = strrchr(address, ':');
		if (colon == NULL)
			return SETTLE_EINVAL;
		end = colon;
		/* A bare IPv6 address would split at its last colon. */
		if (memchr(h, ':', (size_t)(end - h)) != NULL)
			return SETTLE_EINVAL;
	}
	n = (size_t)(end - h);
	if (n == 0 || n >= host_len)
		return SETTLE_EINVAL;
	if (colon[1] < '0' || colon[1] > '9')
		return SETTLE_EINVAL;
	p = strtol(colon + 1, &pend, 10);
	if (*pend != '\0' || p < 0 || p > 65535)
		return SETTLE_EINVAL;
	memcpy(host, h, n);
	host[n] = '\0';
	*port = (int)p;
	return 0;
}

int rpc_addr_numeric(const char *host, int port, struct sockaddr_storage *sa)
{
	memset(sa, 0, sizeof(*sa));
	if (uv_ip4_addr(host, port, (struct sockaddr_in *)sa) == 0)
		return 0;
	if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)sa) == 0)
		return 0;
	return SETTLE_EINVAL;
}

int rpc_addr_resolve(uv_loop_t *loop, const char *address,
		     struct sockaddr_storage *sa, char *errmsg,
		     size_t errmsg_len)
{
	struct addrinfo hints, *res;
	uv_getaddrinfo_t req;
	char host[256];
	int port;
	int rv;

	if (rpc_addr_split(address, host, sizeof(host), &port) != 0) {
		snprintf(errmsg, errmsg_len,
			 "listen address '%s': want host:port or [v6]:port",
			 address != NULL ? address : "(null)");
		return SETTLE_EINVAL;
	}
	if (rpc_addr_numeric(host, port, sa) == 0)
		return 0;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rv = uv_getaddrinfo(loop, &req, NULL, host, NULL, &hints);
	if (rv != 0) {
		snprintf(errmsg, errmsg_len, "resolve '%s': %s", host,
			 uv_strerror(rv));
		return SETTLE_EINVAL;
	}
	res = req.addrinfo;
	memset(sa, 0, sizeof(*sa));
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	if (sa->ss_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
	uv_freeaddrinfo(res);
	return 0;
}

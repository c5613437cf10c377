/*
 * rawpeer.h — a bare uv TCP peer for the RPC tests: sends arbitrary bytes
 * (good frames or garbage) and decodes what comes back, without using the
 * rpc client under test.
 */
#ifndef SETTLE_TEST_RAWPEER_H
#define SETTLE_TEST_RAWPEER_H

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "error.h"
#include "rpc.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() __lsan_do_recoverable_leak_check()
#else
#define LEAK_CHECK() 0
#endif

#define RAW_MAX_FRAMES 4096

struct raw {
	uv_tcp_t tcp;
	uv_connect_t creq;
	struct rpc_decoder dec;
	Settle__V1__Frame *frames[RAW_MAX_FRAMES];
	int nframes;
	int connect_status;
	bool connected;
	bool ended;    /* the server closed (EOF or reset) */
	bool closed;   /* our handle closed */
	int decode_rv; /* sticky decoder error */
	char rbuf[65536];
};

static inline void raw_alloc(uv_handle_t *h, size_t hint, uv_buf_t *b)
{
	struct raw *r = h->data;
	(void)hint;
	b->base = r->rbuf;
	b->len = sizeof(r->rbuf);
}

static inline void raw_read(uv_stream_t *h, ssize_t n, const uv_buf_t *b)
{
	struct raw *r = h->data;
	Settle__V1__Frame *f;
	int rv;

	(void)b;
	if (n < 0) {
		r->ended = true;
		uv_read_stop(h);
		return;
	}
	cr_assert_eq(rpc_decoder_feed(&r->dec, (uint8_t *)r->rbuf, (size_t)n),
		     0);
	while ((rv = rpc_decoder_next(&r->dec, &f)) == 0) {
		cr_assert_lt(r->nframes, RAW_MAX_FRAMES);
		r->frames[r->nframes++] = f;
	}
	if (rv < 0)
		r->decode_rv = rv;
}

static inline void raw_connected(uv_connect_t *req, int status)
{
	struct raw *r = req->data;

	r->connect_status = status;
	r->connected = status == 0;
}

static inline void raw_connect(uv_loop_t *loop, struct raw *r, int port)
{
	struct sockaddr_in sa;

	memset(r, 0, sizeof(*r));
	rpc_decoder_init(&r->dec, 0);
	cr_assert_eq(uv_tcp_init(loop, &r->tcp), 0);
	r->tcp.data = r;
	r->creq.data = r;
	uv_ip4_addr("127.0.0.1", port, &sa);
	cr_assert_eq(uv_tcp_connect(&r->creq, &r->tcp, (struct sockaddr *)&sa,
				    raw_connected),
		     0);
}

static inline void raw_read_start(struct raw *r)
{
	cr_assert_eq(uv_read_start((uv_stream_t *)&r->tcp, raw_alloc, raw_read),
		     0);
}

static inline void raw_write_cb(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

/* Queue a copy of data. */
static inline void raw_send(struct raw *r, const void *data, size_t len)
{
	uv_write_t *req = malloc(sizeof(*req) + len);
	uv_buf_t b;

	memcpy(req + 1, data, len);
	b = uv_buf_init((char *)(req + 1), (unsigned)len);
	cr_assert_eq(uv_write(req, (uv_stream_t *)&r->tcp, &b, 1, raw_write_cb),
		     0);
}

static inline void raw_send_frame(struct raw *r, uint64_t id, int method,
				  const ProtobufCMessage *body)
{
	uint8_t *buf;
	size_t len;

	cr_assert_eq(
	    rpc_frame_encode(id, method, 0, body, 0, NULL, NULL, 0, &buf, &len),
	    0);
	raw_send(r, buf, len);
	free(buf);
}

static inline void raw_closed(uv_handle_t *h)
{
	((struct raw *)h->data)->closed = true;
}

static inline void raw_close(struct raw *r)
{
	for (int i = 0; i < r->nframes; i++)
		settle__v1__frame__free_unpacked(r->frames[i], NULL);
	r->nframes = 0;
	rpc_decoder_close(&r->dec);
	uv_close((uv_handle_t *)&r->tcp, raw_closed);
}

static inline void wake_cb(uv_timer_t *t)
{
	(void)t;
}

/* Run the loop until *flag or ms elapse; returns *flag. A short repeating
 * timer keeps each iteration from blocking forever. */
static inline bool run_until(uv_loop_t *loop, const bool *flag, unsigned ms)
{
	uv_timer_t wake;
	uint64_t end;

	uv_update_time(loop);
	end = uv_now(loop) + ms;
	uv_timer_init(loop, &wake);
	uv_timer_start(&wake, wake_cb, 5, 5);
	while (!*flag && uv_now(loop) < end)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&wake, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return *flag;
}

/* Run for ms regardless. */
static inline void run_for(uv_loop_t *loop, unsigned ms)
{
	bool never = false;
	run_until(loop, &never, ms);
}

/* Close the loop, failing if any handle is still open. */
static inline void loop_finish(uv_loop_t *loop)
{
	/* Up to 2 s: a resolve may still be finishing in the threadpool. */
	for (int i = 0; i < 2000 && uv_loop_alive(loop); i++) {
		uv_run(loop, UV_RUN_NOWAIT);
		if (uv_loop_alive(loop))
			uv_sleep(1);
	}
	cr_assert_eq(uv_loop_close(loop), 0, "handles left open");
	/* Criterion passes a test whose process leaks at exit, so check
	 * here, while the test can still fail. */
	cr_assert_eq(LEAK_CHECK(), 0,
		     "memory leaked (see LeakSanitizer above)");
}

#endif /* SETTLE_TEST_RAWPEER_H */

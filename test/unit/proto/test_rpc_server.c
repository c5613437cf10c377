#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "error.h"
#include "rpc.h"
#include "rawpeer.h"

/*
 * The handler under test: BEGIN echoes the request body, odd ids at once
 * and even ids from a timer later (so answers come out of order); COMMIT
 * fails with NOT_LEADER and a leader hint; QUERY is held until the test
 * answers; anything else is UNKNOWN_METHOD.
 */
struct fixture {
	uv_loop_t loop;
	struct rpc_server *srv;
	struct rpc_call *held[4096];
	int nheld;
	int calls;
	int reply_rv_closed; /* answers that returned SETTLE_ECLOSED */
	bool server_closed;
	uv_timer_t later;
	struct rpc_call *deferred[4096];
	int ndeferred;
	size_t big_reply; /* QUERY answered with this many bytes if > 0 */
};

static void answer_deferred(uv_timer_t *t)
{
	struct fixture *fx = t->data;

	/* Newest first: the reverse of arrival order. */
	while (fx->ndeferred > 0) {
		struct rpc_call *call = fx->deferred[--fx->ndeferred];
		size_t len;
		const uint8_t *body = rpc_call_body(call, &len);
		Settle__V1__BeginRequest *req =
		    settle__v1__begin_request__unpack(NULL, len, body);
		cr_assert_not_null(req);
		cr_assert_eq(rpc_call_reply(call, &req->base), 0);
		settle__v1__begin_request__free_unpacked(req, NULL);
	}
}

static void handler(void *data, struct rpc_call *call)
{
	struct fixture *fx = data;
	const uint8_t *body;
	size_t len;

	fx->calls++;
	switch (rpc_call_method(call)) {
	case SETTLE__V1__METHOD__BEGIN:
		if (rpc_call_id(call) % 2 == 0) {
			fx->deferred[fx->ndeferred++] = call;
			if (!uv_is_active((uv_handle_t *)&fx->later))
				uv_timer_start(&fx->later, answer_deferred, 20,
					       0);
			return;
		}
		body = rpc_call_body(call, &len);
		Settle__V1__BeginRequest *req =
		    settle__v1__begin_request__unpack(NULL, len, body);
		cr_assert_not_null(req);
		cr_assert_eq(rpc_call_reply(call, &req->base), 0);
		settle__v1__begin_request__free_unpacked(req, NULL);
		return;
	case SETTLE__V1__METHOD__COMMIT:
		rpc_call_fail(call, SETTLE_ENOTLEADER, "follower",
			      "127.0.0.9:7000");
		return;
	case SETTLE__V1__METHOD__QUERY:
		fx->held[fx->nheld++] = call;
		return;
	default:
		cr_assert_str_neq(rpc_call_peer(call), "");
		rpc_call_fail(call, SETTLE_ENOMETHOD, "no such method", NULL);
		return;
	}
}

static void start(struct fixture *fx, const struct rpc_opts *opts)
{
	char err[256];

	memset(fx, 0, sizeof(*fx));
	cr_assert_eq(uv_loop_init(&fx->loop), 0);
	uv_timer_init(&fx->loop, &fx->later);
	fx->later.data = fx;
	cr_assert_eq(rpc_server_start(&fx->loop, "127.0.0.1:0", opts, handler,
				      fx, &fx->srv, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_gt(rpc_server_port(fx->srv), 0);
}

static void server_closed(void *data)
{
	((struct fixture *)data)->server_closed = true;
}

static void set_flag(void *data)
{
	*(bool *)data = true;
}

static void stop(struct fixture *fx)
{
	if (!fx->server_closed)
		rpc_server_close(fx->srv, server_closed, fx);
	cr_assert(run_until(&fx->loop, &fx->server_closed, 2000));
	/* Calls the test still holds may be answered after the close. */
	for (int i = 0; i < fx->nheld; i++)
		cr_assert_eq(rpc_call_reply(fx->held[i], NULL), SETTLE_ECLOSED);
	fx->nheld = 0;
	uv_close((uv_handle_t *)&fx->later, NULL);
	loop_finish(&fx->loop);
}

static Settle__V1__Frame *find(struct raw *r, uint64_t id)
{
	for (int i = 0; i < r->nframes; i++)
		if (r->frames[i]->id == id)
			return r->frames[i];
	return NULL;
}

static bool has_n_frames_flag;
static struct raw *watch;
static int watch_n;
static void check_n(uv_timer_t *t)
{
	(void)t;
	has_n_frames_flag = watch->nframes >= watch_n;
}

/* Run until r holds n frames. */
static bool wait_frames(uv_loop_t *loop, struct raw *r, int n, unsigned ms)
{
	uv_timer_t t;
	bool ok;

	has_n_frames_flag = r->nframes >= n;
	watch = r;
	watch_n = n;
	uv_timer_init(loop, &t);
	uv_timer_start(&t, check_n, 1, 1);
	ok = run_until(loop, &has_n_frames_flag, ms);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
	return ok;
}

Test(rpc_server, thousand_in_flight_out_of_order)
{
	enum { N = 1000 };
	struct fixture fx;
	struct raw r;
	char gid[32];
	int pos_first_even = -1, pos_last_odd = -1;

	start(&fx, NULL);
	raw_connect(&fx.loop, &r, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &r.connected, 2000));
	raw_read_start(&r);
	for (uint64_t id = 1; id <= N; id++) {
		Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
		snprintf(gid, sizeof(gid), "gid-%llu", (unsigned long long)id);
		req.gid = gid;
		raw_send_frame(&r, id, SETTLE__V1__METHOD__BEGIN, &req.base);
	}
	cr_assert(wait_frames(&fx.loop, &r, N, 5000), "got %d", r.nframes);
	cr_assert_eq(fx.calls, N);
	for (uint64_t id = 1; id <= N; id++) {
		Settle__V1__Frame *f = find(&r, id);
		Settle__V1__BeginRequest *got;

		cr_assert_not_null(f, "no answer for %llu",
				   (unsigned long long)id);
		cr_assert(f->response);
		cr_assert_null(f->error);
		cr_assert_eq(f->method, SETTLE__V1__METHOD__BEGIN);
		got = settle__v1__begin_request__unpack(NULL, f->body.len,
							f->body.data);
		snprintf(gid, sizeof(gid), "gid-%llu", (unsigned long long)id);
		cr_assert_str_eq(got->gid, gid);
		settle__v1__begin_request__free_unpacked(got, NULL);
	}
	for (int i = 0; i < r.nframes; i++) {
		if (r.frames[i]->id % 2 == 0 && pos_first_even < 0)
			pos_first_even = i;
		if (r.frames[i]->id % 2 == 1)
			pos_last_odd = i;
	}
	/* Every even id was answered after every odd one. */
	cr_assert_gt(pos_first_even, pos_last_odd);
	raw_close(&r);
	stop(&fx);
}

Test(rpc_server, error_reply_carries_leader)
{
	struct fixture fx;
	struct raw r;
	Settle__V1__Frame *f;

	start(&fx, NULL);
	raw_connect(&fx.loop, &r, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &r.connected, 2000));
	raw_read_start(&r);
	raw_send_frame(&r, 77, SETTLE__V1__METHOD__COMMIT, NULL);
	cr_assert(wait_frames(&fx.loop, &r, 1, 2000));
	f = r.frames[0];
	cr_assert_eq(f->id, 77);
	cr_assert(f->response);
	cr_assert_not_null(f->error);
	cr_assert_eq(f->error->code, SETTLE__V1__CODE__NOT_LEADER);
	cr_assert_str_eq(f->error->message, "follower");
	cr_assert_str_eq(f->error->leader, "127.0.0.9:7000");
	raw_close(&r);
	stop(&fx);
}

Test(rpc_server, unknown_method_reaches_handler)
{
	struct fixture fx;
	struct raw r;
	Settle__V1__Frame *f;

	start(&fx, NULL);
	raw_connect(&fx.loop, &r, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &r.connected, 2000));
	raw_read_start(&r);
	raw_send_frame(&r, 5, 4242, NULL);
	cr_assert(wait_frames(&fx.loop, &r, 1, 2000));
	f = r.frames[0];
	cr_assert_eq(f->id, 5);
	cr_assert_eq((int)f->method, 4242);
	cr_assert_eq(f->error->code, SETTLE__V1__CODE__UNKNOWN_METHOD);
	raw_close(&r);
	stop(&fx);
}

static void garbage_closes_only_that_connection(const void *bytes, size_t len)
{
	struct fixture fx;
	struct raw bad, good;

	start(&fx, NULL);
	raw_connect(&fx.loop, &bad, rpc_server_port(fx.srv));
	raw_connect(&fx.loop, &good, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &bad.connected, 2000));
	cr_assert(run_until(&fx.loop, &good.connected, 2000));
	raw_read_start(&bad);
	raw_read_start(&good);
	/* A valid call first, then junk: the call is answered or dropped,
	 * but the connection must end. */
	raw_send_frame(&bad, 1, SETTLE__V1__METHOD__COMMIT, NULL);
	raw_send(&bad, bytes, len);
	cr_assert(run_until(&fx.loop, &bad.ended, 2000));
	raw_send_frame(&good, 3, SETTLE__V1__METHOD__BEGIN, NULL);
	cr_assert(wait_frames(&fx.loop, &good, 1, 2000));
	cr_assert_eq(good.frames[0]->id, 3);
	cr_assert_not(good.ended);
	raw_close(&bad);
	raw_close(&good);
	stop(&fx);
}

Test(rpc_server, garbage_frame_closes_connection)
{
	/* Length 3, then a varint that never ends. */
	const uint8_t junk[] = {0, 0, 0, 3, 0x08, 0xff, 0xff};
	garbage_closes_only_that_connection(junk, sizeof(junk));
}

Test(rpc_server, http_request_closes_connection)
{
	const char *http = "GET / HTTP/1.1\r\n\r\n";
	garbage_closes_only_that_connection(http, strlen(http));
}

/* A frame with response set is not a request: it is never served (the
 * handler would echo a BEGIN), and it ends its connection only. */
Test(rpc_server, response_frame_closes_connection)
{
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	uint8_t *buf;
	size_t len;

	req.gid = "g";
	cr_assert_eq(rpc_frame_encode(7, SETTLE__V1__METHOD__BEGIN, 1,
				      &req.base, 0, NULL, NULL, 0, &buf, &len),
		     0);
	garbage_closes_only_that_connection(buf, len);
	free(buf);
}

static void response_frame_is_not_served(int with_error)
{
	struct fixture fx;
	struct raw r;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(rpc_frame_encode(5, SETTLE__V1__METHOD__BEGIN, 1, NULL,
				      with_error ? SETTLE_EINVAL : 0, "x", NULL,
				      0, &buf, &len),
		     0);
	start(&fx, NULL);
	raw_connect(&fx.loop, &r, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &r.connected, 2000));
	raw_read_start(&r);
	raw_send(&r, buf, len);
	free(buf);
	cr_assert(run_until(&fx.loop, &r.ended, 2000));
	cr_assert_eq(fx.calls, 0, "a response frame reached the handler");
	cr_assert_eq(r.nframes, 0, "a response frame was answered");
	raw_close(&r);
	stop(&fx);
}

Test(rpc_server, response_frame_is_not_served)
{
	response_frame_is_not_served(0);
	response_frame_is_not_served(1);
}

Test(rpc_server, oversized_length_closes_connection)
{
	struct rpc_opts opts = {.max_frame = 1024};
	struct fixture fx;
	struct raw r;
	const uint8_t hdr[] = {0, 0, 4, 1}; /* 1025 */

	start(&fx, &opts);
	raw_connect(&fx.loop, &r, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &r.connected, 2000));
	raw_read_start(&r);
	raw_send(&r, hdr, sizeof(hdr));
	cr_assert(run_until(&fx.loop, &r.ended, 2000));
	cr_assert_eq(fx.calls, 0);
	raw_close(&r);
	stop(&fx);
}

Test(rpc_server, backpressure_pauses_reading)
{
	struct rpc_opts opts = {.max_inflight = 10};
	struct fixture fx;
	struct raw r;

	start(&fx, &opts);
	raw_connect(&fx.loop, &r, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &r.connected, 2000));
	raw_read_start(&r);
	for (uint64_t id = 1; id <= 35; id++)
		raw_send_frame(&r, id, SETTLE__V1__METHOD__QUERY, NULL);
	run_for(&fx.loop, 100);
	cr_assert_eq(fx.nheld, 10);
	for (int round = 0; round < 3; round++) {
		int n = fx.nheld;
		for (int i = 0; i < n; i++)
			cr_assert_eq(rpc_call_reply(fx.held[i], NULL), 0);
		fx.nheld = 0;
		run_for(&fx.loop, 50);
		cr_assert_eq(fx.nheld, round < 2 ? 10 : 5);
	}
	cr_assert(wait_frames(&fx.loop, &r, 30, 2000));
	raw_close(&r);
	stop(&fx);
}

static void answer_big(uv_timer_t *t)
{
	struct fixture *fx = t->data;
	Settle__V1__RegisterBranchRequest big =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	static uint8_t payload[256 * 1024];

	if (fx->nheld == 0)
		return;
	big.payload.data = payload;
	big.payload.len = sizeof(payload);
	if (rpc_call_reply(fx->held[--fx->nheld], &big.base) == SETTLE_ECLOSED)
		fx->reply_rv_closed++;
}

Test(rpc_server, client_that_never_reads_is_dropped)
{
	struct rpc_opts opts = {.max_queued = 1024 * 1024,
				.max_inflight = 4096};
	struct fixture fx;
	struct raw r;
	uv_timer_t t;
	bool dropped = false;

	start(&fx, &opts);
	raw_connect(&fx.loop, &r, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &r.connected, 2000));
	/* No read_start: the replies pile up in the kernel, then in the
	 * server's queue, until it gives up on us. */
	for (uint64_t id = 1; id <= 400; id++)
		raw_send_frame(&r, id, SETTLE__V1__METHOD__QUERY, NULL);
	uv_timer_init(&fx.loop, &t);
	t.data = &fx;
	uv_timer_start(&t, answer_big, 1, 1);
	for (int i = 0; i < 500 && !dropped; i++) {
		run_for(&fx.loop, 10);
		dropped = fx.reply_rv_closed > 0;
	}
	cr_assert(dropped, "server kept queueing for a peer that never reads");
	/* 400 * 256 KiB = 100 MiB: dropped long before all were sent. */
	cr_assert_gt(fx.nheld, 0);
	uv_close((uv_handle_t *)&t, NULL);
	raw_close(&r);
	stop(&fx);
}

Test(rpc_server, idle_connection_closed)
{
	struct rpc_opts opts = {.idle_close_ms = 50};
	struct fixture fx;
	struct raw r;

	start(&fx, &opts);
	raw_connect(&fx.loop, &r, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &r.connected, 2000));
	raw_read_start(&r);
	cr_assert(run_until(&fx.loop, &r.ended, 2000));
	raw_close(&r);
	stop(&fx);
}

/* More connections than allowed from one address: the last ones are
 * closed as soon as accepted, the first still served. */
Test(rpc_server, connections_over_the_limit_are_closed)
{
	struct rpc_opts opts = {.max_conns_per_addr = 3};
	struct fixture fx;
	struct raw r[5];
	int ended = 0;

	start(&fx, &opts);
	for (int i = 0; i < 5; i++) {
		raw_connect(&fx.loop, &r[i], rpc_server_port(fx.srv));
		cr_assert(run_until(&fx.loop, &r[i].connected, 2000));
		raw_read_start(&r[i]);
		run_for(&fx.loop, 20);
	}
	run_for(&fx.loop, 100);
	for (int i = 0; i < 5; i++)
		ended += r[i].ended;
	cr_assert_eq(ended, 2, "%d of 5 closed", ended);
	cr_assert(r[3].ended && r[4].ended, "the newest are refused");
	raw_send_frame(&r[0], 1, SETTLE__V1__METHOD__BEGIN, NULL);
	cr_assert(wait_frames(&fx.loop, &r[0], 1, 2000));
	/* One gone: room for a new one. */
	raw_close(&r[1]);
	run_for(&fx.loop, 50);
	struct raw again;
	raw_connect(&fx.loop, &again, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &again.connected, 2000));
	raw_read_start(&again);
	raw_send_frame(&again, 2, SETTLE__V1__METHOD__BEGIN, NULL);
	cr_assert(wait_frames(&fx.loop, &again, 1, 2000));
	for (int i = 0; i < 5; i++)
		if (i != 1)
			raw_close(&r[i]);
	raw_close(&again);
	stop(&fx);
}

/* Frames begun and never finished hold memory: past the limit (all
 * connections together) the connection that would pass it is closed, and
 * a whole frame on another connection is still served. */
Test(rpc_server, partial_frames_are_bounded)
{
	struct rpc_opts opts = {.max_partial = 1024 * 1024};
	struct fixture fx;
	struct raw r[6], ok;
	static uint8_t part[300 * 1024];
	const uint8_t hdr[] = {0, 0x20, 0, 0}; /* a 2 MiB frame */
	int ended = 0;

	start(&fx, &opts);
	for (int i = 0; i < 6; i++) {
		raw_connect(&fx.loop, &r[i], rpc_server_port(fx.srv));
		cr_assert(run_until(&fx.loop, &r[i].connected, 2000));
		raw_read_start(&r[i]);
		raw_send(&r[i], hdr, sizeof(hdr));
		raw_send(&r[i], part, sizeof(part));
		run_for(&fx.loop, 50);
	}
	run_for(&fx.loop, 200);
	for (int i = 0; i < 6; i++)
		ended += r[i].ended;
	/* 300 KiB each (512 KiB of buffer once doubled): 1 MiB holds two
	 * or three, never all six. */
	cr_assert_geq(ended, 3, "only %d of 6 closed", ended);
	cr_assert_eq(fx.calls, 0);
	raw_connect(&fx.loop, &ok, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &ok.connected, 2000));
	raw_read_start(&ok);
	raw_send_frame(&ok, 7, SETTLE__V1__METHOD__BEGIN, NULL);
	cr_assert(wait_frames(&fx.loop, &ok, 1, 2000));
	for (int i = 0; i < 6; i++)
		raw_close(&r[i]);
	raw_close(&ok);
	stop(&fx);
}

/* A sender that starts a frame and trickles it (or stops) is cut off
 * once the frame is older than frame_timeout_ms; a quiet connection with
 * no frame begun is not. */
Test(rpc_server, slow_frame_is_cut_off)
{
	struct rpc_opts opts = {.frame_timeout_ms = 200};
	struct fixture fx;
	struct raw slow, quiet;
	const uint8_t hdr[] = {0, 0, 0, 100};

	start(&fx, &opts);
	raw_connect(&fx.loop, &slow, rpc_server_port(fx.srv));
	raw_connect(&fx.loop, &quiet, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &slow.connected, 2000));
	cr_assert(run_until(&fx.loop, &quiet.connected, 2000));
	raw_read_start(&slow);
	raw_read_start(&quiet);
	raw_send(&slow, hdr, sizeof(hdr));
	for (int i = 0; i < 20 && !slow.ended; i++) {
		uint8_t b = 0;

		raw_send(&slow, &b, 1); /* a byte every 50 ms */
		run_for(&fx.loop, 50);
	}
	cr_assert(slow.ended, "the slow sender was not cut off");
	cr_assert_not(quiet.ended, "a connection with no frame was cut off");
	raw_send_frame(&quiet, 3, SETTLE__V1__METHOD__BEGIN, NULL);
	cr_assert(wait_frames(&fx.loop, &quiet, 1, 2000));
	raw_close(&slow);
	raw_close(&quiet);
	stop(&fx);
}

Test(rpc_server, close_with_calls_held)
{
	struct fixture fx;
	struct raw r;

	start(&fx, NULL);
	raw_connect(&fx.loop, &r, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &r.connected, 2000));
	raw_read_start(&r);
	for (uint64_t id = 1; id <= 5; id++)
		raw_send_frame(&r, id, SETTLE__V1__METHOD__QUERY, NULL);
	run_for(&fx.loop, 50);
	cr_assert_eq(fx.nheld, 5);
	/* Close while the connection is open and calls are held; the peer
	 * sees the end, and stop() answers the calls after the server is
	 * gone. */
	rpc_server_close(fx.srv, server_closed, &fx);
	cr_assert(run_until(&fx.loop, &r.ended, 2000));
	cr_assert(run_until(&fx.loop, &fx.server_closed, 2000));
	raw_close(&r);
	stop(&fx);
}

Test(rpc_server, bad_addresses)
{
	uv_loop_t loop;
	struct rpc_server *srv = NULL;
	char err[256];
	const char *bad[] = {
	    "",	    "127.0.0.1", "127.0.0.1:", "127.0.0.1:99999",
	    "[::1", "::1:80",	 ":80",	       "127.0.0.1:8x"};

	cr_assert_eq(uv_loop_init(&loop), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(rpc_server_start(&loop, bad[i], NULL, handler,
					      NULL, &srv, err, sizeof(err)),
			     SETTLE_EINVAL, "%s", bad[i]);
		cr_assert_str_neq(err, "");
	}
	loop_finish(&loop);
}

Test(rpc_server, ipv6_and_port_in_use)
{
	uv_loop_t loop;
	struct rpc_server *a, *b;
	char addr[64], err[256];
	bool closed = false;

	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(rpc_server_start(&loop, "[::1]:0", NULL, handler, NULL, &a,
				      err, sizeof(err)),
		     0, "%s", err);
	snprintf(addr, sizeof(addr), "[::1]:%d", rpc_server_port(a));
	cr_assert_lt(rpc_server_start(&loop, addr, NULL, handler, NULL, &b, err,
				      sizeof(err)),
		     0);
	cr_assert_str_neq(err, "");
	rpc_server_close(a, set_flag, &closed);
	cr_assert(run_until(&loop, &closed, 2000));
	loop_finish(&loop);
}

Test(rpc_server, peer_gone_before_answers)
{
	struct fixture fx;
	struct raw r;

	start(&fx, NULL);
	raw_connect(&fx.loop, &r, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &r.connected, 2000));
	raw_read_start(&r);
	for (uint64_t id = 1; id <= 3; id++)
		raw_send_frame(&r, id, SETTLE__V1__METHOD__QUERY, NULL);
	run_for(&fx.loop, 50);
	cr_assert_eq(fx.nheld, 3);
	raw_close(&r);
	run_for(&fx.loop, 50);
	/* The connection is closed but its calls are still valid. */
	for (int i = 0; i < fx.nheld; i++) {
		cr_assert_eq(rpc_call_id(fx.held[i]), (uint64_t)i + 1);
		cr_assert_str_neq(rpc_call_peer(fx.held[i]), "");
		cr_assert_eq(
		    rpc_call_fail(fx.held[i], SETTLE_EUNAVAIL, "late", NULL),
		    SETTLE_ECLOSED);
	}
	fx.nheld = 0;
	stop(&fx);
}

#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "error.h"
#include "rpc.h"
#include "rawpeer.h"

/*
 * Server side: BEGIN echoes its body (even ids from a timer, newest first,
 * so answers come back out of order); COMMIT fails NOT_LEADER with a
 * leader; QUERY is held; anything else UNKNOWN_METHOD.
 */
struct fixture {
	uv_loop_t loop;
	struct rpc_server *srv;
	char endpoint[64];
	uv_timer_t later;
	struct rpc_call *deferred[4096];
	int ndeferred;
	struct rpc_call *held[4096];
	int nheld;
	bool server_closed;
};

static void answer_deferred(uv_timer_t *t)
{
	struct fixture *fx = t->data;

	while (fx->ndeferred > 0) {
		struct rpc_call *call = fx->deferred[--fx->ndeferred];
		size_t len;
		const uint8_t *body = rpc_call_body(call, &len);
		Settle__V1__BeginRequest *req =
		    settle__v1__begin_request__unpack(NULL, len, body);
		rpc_call_reply(call, &req->base);
		settle__v1__begin_request__free_unpacked(req, NULL);
	}
}

static void handler(void *data, struct rpc_call *call)
{
	struct fixture *fx = data;
	Settle__V1__BeginRequest *req;
	const uint8_t *body;
	size_t len;

	switch (rpc_call_method(call)) {
	case SETTLE__V1__METHOD__BEGIN:
		body = rpc_call_body(call, &len);
		req = settle__v1__begin_request__unpack(NULL, len, body);
		cr_assert_not_null(req);
		if (req->timeout_ms % 2 == 0) {
			fx->deferred[fx->ndeferred++] = call;
			if (!uv_is_active((uv_handle_t *)&fx->later))
				uv_timer_start(&fx->later, answer_deferred, 20,
					       0);
		} else {
			rpc_call_reply(call, &req->base);
		}
		settle__v1__begin_request__free_unpacked(req, NULL);
		return;
	case SETTLE__V1__METHOD__COMMIT:
		rpc_call_fail(call, SETTLE_ENOTLEADER, "ask the leader",
			      "10.1.2.3:7001");
		return;
	case SETTLE__V1__METHOD__QUERY:
		fx->held[fx->nheld++] = call;
		return;
	default:
		rpc_call_fail(call, SETTLE_ENOMETHOD, "unknown method", NULL);
		return;
	}
}

static void start_server(struct fixture *fx, const char *addr,
			 const struct rpc_opts *opts)
{
	char err[256];

	cr_assert_eq(rpc_server_start(&fx->loop, addr, opts, handler, fx,
				      &fx->srv, err, sizeof(err)),
		     0, "%s", err);
	fx->server_closed = false;
	snprintf(fx->endpoint, sizeof(fx->endpoint), "127.0.0.1:%d",
		 rpc_server_port(fx->srv));
}

static void setup(struct fixture *fx, const struct rpc_opts *opts)
{
	memset(fx, 0, sizeof(*fx));
	cr_assert_eq(uv_loop_init(&fx->loop), 0);
	uv_timer_init(&fx->loop, &fx->later);
	fx->later.data = fx;
	start_server(fx, "127.0.0.1:0", opts);
}

static void server_closed(void *data)
{
	((struct fixture *)data)->server_closed = true;
}

static void stop_server(struct fixture *fx)
{
	rpc_server_close(fx->srv, server_closed, fx);
	cr_assert(run_until(&fx->loop, &fx->server_closed, 2000));
	for (int i = 0; i < fx->nheld; i++)
		rpc_call_reply(fx->held[i], NULL);
	fx->nheld = 0;
	answer_deferred(&fx->later);
}

static void teardown(struct fixture *fx)
{
	if (!fx->server_closed)
		stop_server(fx);
	uv_close((uv_handle_t *)&fx->later, NULL);
	loop_finish(&fx->loop);
}

/* One outcome per call. */
struct outcome {
	bool done;
	int err;
	int times;
	char msg[128];
	char leader[64];
	char gid[32];
	uint64_t order;
};

static bool inside_call;
static uint64_t finished;

static void on_reply(void *data, const struct rpc_result *res)
{
	struct outcome *o = data;

	cr_assert_not(inside_call, "callback ran inside rpc_client_call");
	cr_assert_not_null(res->msg);
	cr_assert_not_null(res->leader);
	o->times++;
	o->done = true;
	o->err = res->err;
	o->order = ++finished;
	snprintf(o->msg, sizeof(o->msg), "%s", res->msg);
	snprintf(o->leader, sizeof(o->leader), "%s", res->leader);
	if (res->err == 0 && res->len > 0) {
		Settle__V1__BeginRequest *got =
		    settle__v1__begin_request__unpack(NULL, res->len,
						      res->body);
		cr_assert_not_null(got);
		snprintf(o->gid, sizeof(o->gid), "%s", got->gid);
		settle__v1__begin_request__free_unpacked(got, NULL);
	}
}

static int call(struct rpc_client *c, int method, const char *gid, uint32_t tag,
		uint32_t timeout_ms, struct outcome *o)
{
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	int rv;

	req.gid = (char *)gid;
	req.timeout_ms = tag;
	inside_call = true;
	rv = rpc_client_call(c, method, &req.base, timeout_ms, on_reply, o);
	inside_call = false;
	return rv;
}

static struct rpc_client *client(struct fixture *fx, const char *endpoint)
{
	struct rpc_client *c;

	cr_assert_eq(rpc_client_init(&fx->loop, endpoint, NULL, &c), 0);
	cr_assert_str_eq(rpc_client_endpoint(c), endpoint);
	return c;
}

static struct rpc_client *client_on(uv_loop_t *loop, const char *endpoint)
{
	struct rpc_client *c;

	cr_assert_eq(rpc_client_init(loop, endpoint, NULL, &c), 0);
	return c;
}

static void set_flag_cb(void *data)
{
	*(bool *)data = true;
}

/* A peer that greets every connection with bytes that are no frame. */
static uv_tcp_t junk_conns[4];
static int njunk;

static void junk_write_cb(uv_write_t *req, int status)
{
	(void)status;
	free(req);
}

static void junk_on_connection(uv_stream_t *lst, int status)
{
	static const char junk[] = "\xff\xff\xff\xffjunk";
	uv_write_t *req = malloc(sizeof(*req));
	uv_buf_t b = uv_buf_init((char *)junk, sizeof(junk) - 1);
	uv_tcp_t *t = &junk_conns[njunk++];

	cr_assert_eq(status, 0);
	uv_tcp_init(lst->loop, t);
	cr_assert_eq(uv_accept(lst, (uv_stream_t *)t), 0);
	cr_assert_eq(uv_write(req, (uv_stream_t *)t, &b, 1, junk_write_cb), 0);
}

static void junk_close_all(void)
{
	for (int i = 0; i < njunk; i++)
		uv_close((uv_handle_t *)&junk_conns[i], NULL);
	njunk = 0;
}

Test(rpc_client, thousand_in_flight_out_of_order)
{
	enum { N = 1000 };
	static struct outcome o[N];
	struct fixture fx;
	struct rpc_client *c;
	char gid[32];
	bool all = false;

	setup(&fx, NULL);
	c = client(&fx, fx.endpoint);
	for (int i = 0; i < N; i++) {
		snprintf(gid, sizeof(gid), "g%d", i);
		cr_assert_eq(call(c, SETTLE__V1__METHOD__BEGIN, gid,
				  (uint32_t)i, 5000, &o[i]),
			     0);
	}
	for (int tries = 0; tries < 500 && !all; tries++) {
		run_for(&fx.loop, 10);
		all = true;
		for (int i = 0; i < N; i++)
			all = all && o[i].done;
	}
	cr_assert(all);
	for (int i = 0; i < N; i++) {
		snprintf(gid, sizeof(gid), "g%d", i);
		cr_assert_eq(o[i].times, 1);
		cr_assert_eq(o[i].err, 0, "%d: %s", i, o[i].msg);
		cr_assert_str_eq(o[i].gid, gid);
	}
	/* Deferred (even) answers arrived after the immediate ones. */
	cr_assert_gt(o[0].order, o[999].order);
	rpc_client_close(c);
	teardown(&fx);
}

Test(rpc_client, error_with_leader_hint)
{
	struct fixture fx;
	struct rpc_client *c;
	struct outcome o = {0};

	setup(&fx, NULL);
	c = client(&fx, fx.endpoint);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__COMMIT, "x", 1, 2000, &o), 0);
	cr_assert(run_until(&fx.loop, &o.done, 2000));
	cr_assert_eq(o.err, SETTLE_ENOTLEADER);
	cr_assert_str_eq(o.msg, "ask the leader");
	cr_assert_str_eq(o.leader, "10.1.2.3:7001");
	rpc_client_close(c);
	teardown(&fx);
}

Test(rpc_client, unknown_method)
{
	struct fixture fx;
	struct rpc_client *c;
	struct outcome o = {0};

	setup(&fx, NULL);
	c = client(&fx, fx.endpoint);
	cr_assert_eq(call(c, 777, "x", 1, 2000, &o), 0);
	cr_assert(run_until(&fx.loop, &o.done, 2000));
	cr_assert_eq(o.err, SETTLE_ENOMETHOD);
	rpc_client_close(c);
	teardown(&fx);
}

Test(rpc_client, timeouts_fire_in_deadline_order)
{
	struct fixture fx;
	struct rpc_client *c;
	struct outcome a = {0}, b = {0}, d = {0}, e = {0};

	setup(&fx, NULL);
	c = client(&fx, fx.endpoint);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__QUERY, "a", 1, 120, &a), 0);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__QUERY, "b", 1, 30, &b), 0);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__QUERY, "d", 1, 70, &d), 0);
	/* No timeout: still pending when the others gave up. */
	cr_assert_eq(call(c, SETTLE__V1__METHOD__QUERY, "e", 1, 0, &e), 0);
	cr_assert(run_until(&fx.loop, &a.done, 2000));
	cr_assert(b.done && d.done);
	cr_assert_eq(a.err, SETTLE_ETIMEOUT);
	cr_assert_eq(b.err, SETTLE_ETIMEOUT);
	cr_assert_eq(d.err, SETTLE_ETIMEOUT);
	cr_assert_lt(b.order, d.order);
	cr_assert_lt(d.order, a.order);
	cr_assert_not(e.done);
	cr_assert_eq(fx.nheld, 4);
	/* Late answers for timed-out calls are ignored; e completes. */
	for (int i = 0; i < fx.nheld; i++)
		rpc_call_reply(fx.held[i], NULL);
	fx.nheld = 0;
	cr_assert(run_until(&fx.loop, &e.done, 2000));
	cr_assert_eq(e.err, 0);
	cr_assert_eq(a.times + b.times + d.times + e.times, 4);
	rpc_client_close(c);
	teardown(&fx);
}

/* Many calls with mixed timeouts (the deadline heap), a third of them
 * answered before any expires (removed from inside the heap): the answered
 * ones succeed, the others time out in the order of their deadlines. */
Test(rpc_client, mixed_timeouts_expire_in_order)
{
	static struct outcome o[300];
	struct fixture fx;
	struct rpc_client *c;
	uint32_t timeout[300];
	uint64_t last = 0;
	int done;

	setup(&fx, NULL);
	c = client(&fx, fx.endpoint);
	for (int i = 0; i < 300; i++) {
		timeout[i] = 40 + (uint32_t)((i * 7919) % 13) * 15;
		cr_assert_eq(call(c, SETTLE__V1__METHOD__QUERY, "q", 1,
				  timeout[i], &o[i]),
			     0);
	}
	/* Every call has reached the server (it holds queries). */
	for (uint64_t end = uv_now(&fx.loop) + 2000;
	     fx.nheld < 300 && uv_now(&fx.loop) < end;)
		uv_run(&fx.loop, UV_RUN_ONCE);
	cr_assert_eq(fx.nheld, 300);
	for (int i = 0; i < fx.nheld; i += 3)
		rpc_call_reply(fx.held[i], NULL);
	for (uint64_t end = uv_now(&fx.loop) + 3000; uv_now(&fx.loop) < end;) {
		done = 0;
		for (int i = 0; i < 300; i++)
			done += o[i].done;
		if (done == 300)
			break;
		uv_run(&fx.loop, UV_RUN_ONCE);
	}
	for (int i = 0; i < 300; i++) {
		cr_assert_eq(o[i].times, 1, "call %d", i);
		cr_assert_eq(o[i].err, i % 3 == 0 ? 0 : SETTLE_ETIMEOUT,
			     "call %d", i);
	}
	/* Sent in one loop iteration: same start, so deadlines go with
	 * timeouts. Walk the timed-out calls in the order they ended. */
	for (uint64_t k = 1; k <= finished; k++)
		for (int i = 0; i < 300; i++)
			if (o[i].order == k && o[i].err == SETTLE_ETIMEOUT) {
				cr_assert_geq(timeout[i], last,
					      "call %d (%u ms) timed out after "
					      "one of %u ms",
					      i, timeout[i], (unsigned)last);
				last = timeout[i];
			}
	for (int i = 0; i < fx.nheld; i++)
		if (i % 3 != 0)
			rpc_call_reply(fx.held[i], NULL);
	fx.nheld = 0;
	rpc_client_close(c);
	teardown(&fx);
}

Test(rpc_client, connection_refused)
{
	struct fixture fx;
	struct rpc_client *c;
	struct outcome o1 = {0}, o2 = {0};
	char endpoint[64];

	setup(&fx, NULL);
	/* A port that was just ours and is closed now. */
	snprintf(endpoint, sizeof(endpoint), "%s", fx.endpoint);
	stop_server(&fx);
	c = client(&fx, endpoint);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__BEGIN, "x", 1, 2000, &o1), 0);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__BEGIN, "y", 1, 0, &o2), 0);
	cr_assert_not(o1.done);
	cr_assert(run_until(&fx.loop, &o2.done, 2000));
	cr_assert(o1.done);
	cr_assert_eq(o1.err, SETTLE_ECONNECT);
	cr_assert_eq(o2.err, SETTLE_ECONNECT);
	cr_assert_str_neq(o1.msg, "");
	rpc_client_close(c);
	teardown(&fx);
}

Test(rpc_client, reconnects_after_server_restart)
{
	struct fixture fx;
	struct rpc_client *c;
	struct outcome o1 = {0}, o2 = {0}, o3 = {0};
	char addr[64];

	setup(&fx, NULL);
	c = client(&fx, fx.endpoint);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__BEGIN, "a", 1, 2000, &o1), 0);
	cr_assert(run_until(&fx.loop, &o1.done, 2000));
	cr_assert_eq(o1.err, 0);
	/* A held call dies with the connection. */
	cr_assert_eq(call(c, SETTLE__V1__METHOD__QUERY, "b", 1, 2000, &o2), 0);
	run_for(&fx.loop, 30);
	cr_assert_eq(fx.nheld, 1);
	stop_server(&fx);
	cr_assert(run_until(&fx.loop, &o2.done, 2000));
	cr_assert_eq(o2.err, SETTLE_ECLOSED);
	/* Same port again; the next call reconnects. */
	snprintf(addr, sizeof(addr), "%s", fx.endpoint);
	start_server(&fx, addr, NULL);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__BEGIN, "c", 1, 2000, &o3), 0);
	cr_assert(run_until(&fx.loop, &o3.done, 2000));
	cr_assert_eq(o3.err, 0, "%s", o3.msg);
	cr_assert_str_eq(o3.gid, "c");
	rpc_client_close(c);
	teardown(&fx);
}

Test(rpc_client, localhost_and_ipv6)
{
	struct fixture fx;
	struct rpc_server *v6;
	struct rpc_client *c4, *c6;
	struct outcome o4 = {0}, o6 = {0};
	char ep[64], err[256];
	bool closed = false;

	setup(&fx, NULL);
	cr_assert_eq(rpc_server_start(&fx.loop, "[::1]:0", NULL, handler, &fx,
				      &v6, err, sizeof(err)),
		     0, "%s", err);
	/* localhost may resolve to ::1 first; the v4 server must still be
	 * reached through the next address. */
	snprintf(ep, sizeof(ep), "localhost:%d", rpc_server_port(fx.srv));
	c4 = client(&fx, ep);
	snprintf(ep, sizeof(ep), "[::1]:%d", rpc_server_port(v6));
	c6 = client(&fx, ep);
	cr_assert_eq(call(c4, SETTLE__V1__METHOD__BEGIN, "l", 1, 2000, &o4), 0);
	cr_assert_eq(call(c6, SETTLE__V1__METHOD__BEGIN, "s", 1, 2000, &o6), 0);
	cr_assert(run_until(&fx.loop, &o4.done, 2000));
	cr_assert(run_until(&fx.loop, &o6.done, 2000));
	cr_assert_eq(o4.err, 0, "%s", o4.msg);
	cr_assert_eq(o6.err, 0, "%s", o6.msg);
	rpc_client_close(c4);
	rpc_client_close(c6);
	rpc_server_close(v6, set_flag_cb, &closed);
	cr_assert(run_until(&fx.loop, &closed, 2000));
	teardown(&fx);
}

Test(rpc_client, close_cancels_pending)
{
	struct fixture fx;
	struct rpc_client *c;
	struct outcome o1 = {0}, o2 = {0}, o3 = {0};

	setup(&fx, NULL);
	c = client(&fx, fx.endpoint);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__QUERY, "a", 1, 0, &o1), 0);
	run_for(&fx.loop, 30);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__QUERY, "b", 1, 500, &o2), 0);
	rpc_client_close(c);
	cr_assert(o1.done && o2.done);
	cr_assert_eq(o1.err, SETTLE_ECANCELED);
	cr_assert_eq(o2.err, SETTLE_ECANCELED);
	run_for(&fx.loop, 50);
	cr_assert_eq(o1.times + o2.times, 2);
	(void)o3;
	teardown(&fx);
}

Test(rpc_client, close_while_connecting)
{
	struct fixture fx;
	struct rpc_client *c;
	struct outcome o = {0};
	char ep[64];

	setup(&fx, NULL);
	snprintf(ep, sizeof(ep), "localhost:%d", rpc_server_port(fx.srv));
	c = client(&fx, ep);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__BEGIN, "a", 1, 0, &o), 0);
	uv_run(&fx.loop, UV_RUN_NOWAIT); /* resolving now */
	rpc_client_close(c);
	cr_assert_eq(o.err, SETTLE_ECANCELED);
	teardown(&fx);
}

static struct rpc_client *reentrant_client;
static struct outcome reentrant_next;

static void on_reply_then_call(void *data, const struct rpc_result *res)
{
	on_reply(data, res);
	/* A callback may call again: it goes out on a new connection. */
	cr_assert_eq(call(reentrant_client, SETTLE__V1__METHOD__BEGIN, "again",
			  1, 2000, &reentrant_next),
		     0);
}

Test(rpc_client, call_from_failure_callback)
{
	struct fixture fx;
	struct rpc_client *c;
	struct outcome o = {0};
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;

	setup(&fx, NULL);
	c = client(&fx, fx.endpoint);
	reentrant_client = c;
	req.gid = "held";
	cr_assert_eq(rpc_client_call(c, SETTLE__V1__METHOD__QUERY, &req.base, 0,
				     on_reply_then_call, &o),
		     0);
	run_for(&fx.loop, 30);
	cr_assert_eq(fx.nheld, 1);
	/* Kill the connection from the server side, and listen again on
	 * the same port before the loop runs, so the new call finds it. */
	{
		struct rpc_server *old = fx.srv;
		bool old_closed = false;
		char addr[64];

		snprintf(addr, sizeof(addr), "%s", fx.endpoint);
		rpc_server_close(old, set_flag_cb, &old_closed);
		start_server(&fx, addr, NULL);
		cr_assert(run_until(&fx.loop, &old_closed, 2000));
	}
	cr_assert(run_until(&fx.loop, &o.done, 2000));
	cr_assert_eq(o.err, SETTLE_ECLOSED);
	cr_assert(run_until(&fx.loop, &reentrant_next.done, 2000));
	cr_assert_eq(reentrant_next.err, 0, "%s", reentrant_next.msg);
	rpc_client_close(c);
	teardown(&fx);
}

Test(rpc_client, bad_endpoint_and_oversized_request)
{
	struct rpc_opts opts = {.max_frame = 100};
	uv_loop_t loop;
	struct rpc_client *c;
	struct outcome o = {0};
	char big[200];

	cr_assert_eq(uv_loop_init(&loop), 0);
	cr_assert_eq(rpc_client_init(&loop, "nope", NULL, &c), SETTLE_EINVAL);
	cr_assert_eq(rpc_client_init(&loop, "1.2.3.4:0", NULL, &c),
		     SETTLE_EINVAL);
	cr_assert_eq(rpc_client_init(&loop, "127.0.0.1:1", &opts, &c), 0);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(call(c, SETTLE__V1__METHOD__BEGIN, big, 1, 0, &o),
		     SETTLE_ETOOBIG);
	rpc_client_close(c);
	cr_assert_not(o.done);
	loop_finish(&loop);
}

Test(rpc_client, garbage_from_server_fails_calls)
{
	/* A "server" that answers any request with junk. */
	uv_loop_t loop;
	uv_tcp_t lst;
	struct sockaddr_in sa;
	struct sockaddr_storage bound;
	int blen = sizeof(bound);
	struct rpc_client *c;
	struct outcome o = {0};
	char ep[64];

	cr_assert_eq(uv_loop_init(&loop), 0);
	uv_tcp_init(&loop, &lst);
	uv_ip4_addr("127.0.0.1", 0, &sa);
	cr_assert_eq(uv_tcp_bind(&lst, (struct sockaddr *)&sa, 0), 0);
	cr_assert_eq(uv_listen((uv_stream_t *)&lst, 8, junk_on_connection), 0);
	uv_tcp_getsockname(&lst, (struct sockaddr *)&bound, &blen);
	snprintf(ep, sizeof(ep), "127.0.0.1:%d",
		 ntohs(((struct sockaddr_in *)&bound)->sin_port));
	c = client_on(&loop, ep);
	cr_assert_eq(call(c, SETTLE__V1__METHOD__BEGIN, "x", 1, 2000, &o), 0);
	cr_assert(run_until(&loop, &o.done, 2000));
	cr_assert_eq(o.err, SETTLE_ECLOSED);
	rpc_client_close(c);
	junk_close_all();
	uv_close((uv_handle_t *)&lst, NULL);
	loop_finish(&loop);
}

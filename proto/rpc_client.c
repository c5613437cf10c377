/*
 * rpc_client.c — one endpoint, many calls in flight, answers matched by id.
 *
 * A client owns at most one connection at a time. Calls made without one
 * are encoded into a holding buffer and a connection is started from the
 * end-of-iteration tick (never inside rpc_client_call, so callbacks never
 * run there). When a connection fails every pending call fails with it and
 * the connection is dropped; the next call starts a new one.
 *
 * Pending calls sit in a hash by id and, when they have a timeout, in a
 * binary min-heap by deadline served by one timer: a caller mixing short
 * and long timeouts (the asynchronous client: a Begin's 5 s beside a
 * Commit's 35 s) costs O(log n) per call, where a sorted list walked from
 * its tail cost O(n) with a thousand calls in flight.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "rpc.h"
#include "stream.h"
#include "tls.h"

#define INITIAL_BUCKETS 64u

struct cli_call {
	struct cli_call *hnext;
	size_t hidx; /* place in the deadline heap */
	uint64_t id;
	uint64_t deadline; /* uv_now() ms; 0: none */
	uint32_t timeout_ms;
	rpc_reply_cb cb;
	void *data;
};

struct cli_conn {
	struct rpc_stream s;
	struct rpc_client *c;	  /* NULL once detached */
	struct rpc_client *owner; /* kept: it waits for this stream's close */
	uv_connect_t creq;
	uv_getaddrinfo_t gai;
	struct addrinfo *ai_head, *ai_cur; /* resolved, not yet connected */
	struct rpc_decoder dec;
	int refs; /* the stream handle, and a resolve in flight */
	bool connected;
};

struct rpc_client {
	uv_loop_t *loop;
	char *endpoint;
	char host[256];
	int port;
	struct rpc_opts opts;
	struct cli_conn *conn;
	uint64_t next_id;
	struct cli_call **buckets;
	size_t nbuckets;
	size_t ncalls;
	struct cli_call **heap; /* calls with a deadline, earliest first */
	size_t nheap, capheap;
	/* Frames encoded while not connected, sent once connected. */
	uint8_t *held;
	size_t held_len, held_cap;
	uv_timer_t timer;
	struct rpc_tick tick;
	int open; /* handles not yet closed: timer, tick, connections */
	bool closing;
};

static void client_connect(struct rpc_client *c);
static void conn_fail(struct cli_conn *conn, int err, const char *msg);

/* ---- Pending calls --------------------------------------------------- */

static int calls_grow(struct rpc_client *c)
{
	size_t n = c->nbuckets == 0 ? INITIAL_BUCKETS : c->nbuckets * 2;
	struct cli_call **b = calloc(n, sizeof(*b));

	if (b == NULL)
		return SETTLE_ENOMEM;
	for (size_t i = 0; i < c->nbuckets; i++) {
		struct cli_call *call = c->buckets[i];
		while (call != NULL) {
			struct cli_call *next = call->hnext;
			size_t j = (size_t)call->id & (n - 1);
			call->hnext = b[j];
			b[j] = call;
			call = next;
		}
	}
	free(c->buckets);
	c->buckets = b;
	c->nbuckets = n;
	return 0;
}

static void timer_rearm(struct rpc_client *c);

static void heap_set(struct rpc_client *c, size_t i, struct cli_call *call)
{
	c->heap[i] = call;
	call->hidx = i;
}

static void heap_up(struct rpc_client *c, size_t i)
{
	struct cli_call *call = c->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (c->heap[parent]->deadline <= call->deadline)
			break;
		heap_set(c, i, c->heap[parent]);
		i = parent;
	}
	heap_set(c, i, call);
}

static void heap_down(struct rpc_client *c, size_t i)
{
	struct cli_call *call = c->heap[i];

	for (;;) {
		size_t kid = 2 * i + 1;
		if (kid >= c->nheap)
			break;
		if (kid + 1 < c->nheap &&
		    c->heap[kid + 1]->deadline < c->heap[kid]->deadline)
			kid++;
		if (call->deadline <= c->heap[kid]->deadline)
			break;
		heap_set(c, i, c->heap[kid]);
		i = kid;
	}
	heap_set(c, i, call);
}

/* Room for one more deadline, made before anything of a call is queued. */
static int heap_reserve(struct rpc_client *c)
{
	size_t cap;
	struct cli_call **h;

	if (c->nheap < c->capheap)
		return 0;
	cap = c->capheap == 0 ? 64 : c->capheap * 2;
	h = realloc(c->heap, cap * sizeof(*h));
	if (h == NULL)
		return SETTLE_ENOMEM;
	c->heap = h;
	c->capheap = cap;
	return 0;
}

/* call->deadline set; heap_reserve() made room. */
static void deadline_insert(struct rpc_client *c, struct cli_call *call)
{
	c->heap[c->nheap++] = call;
	heap_up(c, c->nheap - 1);
	if (c->heap[0] == call)
		timer_rearm(c);
}

static void deadline_remove(struct rpc_client *c, struct cli_call *call)
{
	size_t i = call->hidx;
	struct cli_call *last;

	if (call->deadline == 0)
		return;
	call->deadline = 0;
	last = c->heap[--c->nheap];
	if (i == c->nheap)
		return;
	heap_set(c, i, last);
	heap_up(c, i);
	heap_down(c, last->hidx);
}

/* Remove and return the call for id, or NULL. */
static struct cli_call *calls_take(struct rpc_client *c, uint64_t id)
{
	struct cli_call **p;

	if (c->nbuckets == 0)
		return NULL;
	for (p = &c->buckets[(size_t)id & (c->nbuckets - 1)]; *p != NULL;
	     p = &(*p)->hnext) {
		struct cli_call *call = *p;
		if (call->id == id) {
			*p = call->hnext;
			c->ncalls--;
			deadline_remove(c, call);
			return call;
		}
	}
	return NULL;
}

/* Detach every pending call into a list (linked by hnext), so callbacks
 * may add new calls or close the client while the list is failed. */
static struct cli_call *calls_take_all(struct rpc_client *c)
{
	struct cli_call *list = NULL;

	for (size_t i = 0; i < c->nbuckets; i++) {
		while (c->buckets[i] != NULL) {
			struct cli_call *call = c->buckets[i];
			c->buckets[i] = call->hnext;
			call->hnext = list;
			list = call;
		}
	}
	c->ncalls = 0;
	c->nheap = 0;
	return list;
}

static void calls_fail_list(struct cli_call *list, int err, const char *msg)
{
	struct rpc_result res = {.err = err, .msg = msg, .leader = ""};

	while (list != NULL) {
		struct cli_call *call = list;
		list = call->hnext;
		call->cb(call->data, &res);
		free(call);
	}
}

/* ---- Timeouts ------------------------------------------------------------ */

static void client_timeout_cb(uv_timer_t *t)
{
	struct rpc_client *c = t->data;
	uint64_t now = uv_now(c->loop);
	struct cli_call *expired = NULL, **tail = &expired;
	struct cli_call *call;

	while (c->nheap > 0 && (call = c->heap[0])->deadline <= now) {
		calls_take(c, call->id);
		call->hnext = NULL;
		*tail = call;
		tail = &call->hnext;
	}
	timer_rearm(c);
	while ((call = expired) != NULL) {
		char msg[64];
		struct rpc_result res = {
		    .err = SETTLE_ETIMEOUT, .msg = msg, .leader = ""};

		expired = call->hnext;
		snprintf(msg, sizeof(msg), "no answer within %u ms",
			 call->timeout_ms);
		call->cb(call->data, &res);
		free(call);
	}
}

static void timer_rearm(struct rpc_client *c)
{
	uint64_t now = uv_now(c->loop);

	if (c->closing)
		return;
	if (c->nheap == 0) {
		uv_timer_stop(&c->timer);
		return;
	}
	uv_timer_start(
	    &c->timer, client_timeout_cb,
	    c->heap[0]->deadline > now ? c->heap[0]->deadline - now : 0, 0);
}

/* ---- Connection -------------------------------------------------------- */

static void client_maybe_free(struct rpc_client *c)
{
	if (--c->open > 0)
		return;
	free(c->buckets);
	free(c->heap);
	free(c->held);
	free(c->endpoint);
	free(c);
}

static void conn_unref(struct cli_conn *conn)
{
	if (--conn->refs > 0)
		return;
	rpc_decoder_close(&conn->dec);
	if (conn->ai_head != NULL)
		uv_freeaddrinfo(conn->ai_head);
	free(conn);
}

/* Drop conn from its client and close it; pending calls are not touched. */
static void conn_detach(struct cli_conn *conn)
{
	if (conn->c == NULL)
		return;
	if (conn->c->conn == conn)
		conn->c->conn = NULL;
	conn->c = NULL;
	/* A resolve in flight only needs its callback to free its result. */
	if (conn->refs > 1)
		uv_cancel((uv_req_t *)&conn->gai);
	rpc_stream_close(&conn->s);
}

static void conn_fail(struct cli_conn *conn, int err, const char *msg)
{
	struct rpc_client *c = conn->c;
	struct cli_call *list;

	if (c == NULL)
		return;
	conn_detach(conn);
	/* The held frames belonged to the calls failing now. */
	c->held_len = 0;
	list = calls_take_all(c);
	timer_rearm(c);
	if (list != NULL)
		settle_tracef("rpc", "%s: %s", c->endpoint, msg);
	calls_fail_list(list, err, msg);
}

static void conn_deliver(struct cli_conn *conn, Settle__V1__Frame *f)
{
	struct rpc_client *c = conn->c;
	struct rpc_result res = {.msg = "", .leader = ""};
	struct cli_call *call;

	if (!f->response)
		return; /* servers do not call clients */
	call = calls_take(c, f->id);
	if (call == NULL)
		return; /* timed out already */
	if (f->error != NULL && f->error->code != SETTLE__V1__CODE__OK) {
		res.err = settle_err_from_wire((int)f->error->code);
		if (f->error->message != NULL)
			res.msg = f->error->message;
		if (f->error->leader != NULL)
			res.leader = f->error->leader;
	} else {
		res.body = f->body.data;
		res.len = f->body.len;
	}
	call->cb(call->data, &res);
	free(call);
}

static void conn_on_read(struct rpc_stream *st, const uint8_t *data, size_t len,
			 int err)
{
	struct cli_conn *conn = st->data;
	Settle__V1__Frame *f;
	char msg[400];
	int rv;

	if (conn->c == NULL)
		return;
	if (err == SETTLE_ETLS) {
		snprintf(msg, sizeof(msg), "TLS with %s: %s", conn->c->endpoint,
			 rpc_stream_tls_error(st));
		conn_fail(conn, SETTLE_ETLS, msg);
		return;
	}
	if (err != 0) {
		snprintf(msg, sizeof(msg), "connection to %s lost: %s",
			 conn->c->endpoint, settle_strerror(err));
		conn_fail(conn, SETTLE_ECLOSED, msg);
		return;
	}
	rv = rpc_decoder_feed(&conn->dec, data, len);
	while (rv == 0 && conn->c != NULL) {
		rv = rpc_decoder_next(&conn->dec, &f);
		if (rv != 0)
			break;
		/* The callback may close the client or make new calls;
		 * conn stays allocated until its stream closes. */
		conn_deliver(conn, f);
		settle__v1__frame__free_unpacked(f, NULL);
	}
	if (rv < 0 && conn->c != NULL) {
		snprintf(msg, sizeof(msg), "bad frame from %s: %s",
			 conn->c->endpoint, settle_strerror(rv));
		settle_log(SETTLE_LOG_WARN, "rpc", "%s", msg);
		conn_fail(conn, SETTLE_ECLOSED, msg);
	}
}

static void conn_on_write_error(struct rpc_stream *st, int err)
{
	struct cli_conn *conn = st->data;
	char msg[160];

	if (conn->c == NULL)
		return;
	snprintf(msg, sizeof(msg), "write to %s: %s", conn->c->endpoint,
		 settle_strerror(err));
	conn_fail(conn, SETTLE_ECLOSED, msg);
}

static void conn_on_close(struct rpc_stream *st);

static const struct rpc_stream_cbs conn_cbs = {
    .on_read = conn_on_read,
    .on_write_error = conn_on_write_error,
    .on_close = conn_on_close,
};

static struct cli_conn *conn_new(struct rpc_client *c);
static void conn_start_connect(struct cli_conn *conn,
			       const struct sockaddr *sa);

/* The resolver gave several addresses ("localhost" is often ::1 then
 * 127.0.0.1): move on to the next one with a fresh handle, since a socket
 * whose connect failed cannot be reused. Returns false if none is left. */
static bool conn_try_next(struct cli_conn *conn)
{
	struct rpc_client *c = conn->c;
	struct cli_conn *next;

	if (conn->ai_cur == NULL || conn->ai_cur->ai_next == NULL)
		return false;
	conn_detach(conn);
	next = conn_new(c);
	if (next == NULL)
		return true; /* conn_new failed the calls */
	next->ai_head = conn->ai_head;
	next->ai_cur = conn->ai_cur->ai_next;
	conn->ai_head = conn->ai_cur = NULL;
	conn_start_connect(next, next->ai_cur->ai_addr);
	return true;
}

static void conn_on_connect(uv_connect_t *req, int status)
{
	struct cli_conn *conn = req->data;
	struct rpc_client *c = conn->c;
	char msg[160];
	int rv;

	if (c == NULL)
		return;
	if (status != 0) {
		if (conn_try_next(conn))
			return;
		snprintf(msg, sizeof(msg), "connect to %s: %s", c->endpoint,
			 uv_strerror(status));
		conn_fail(conn, SETTLE_ECONNECT, msg);
		return;
	}
	conn->connected = true;
	if (conn->ai_head != NULL) {
		uv_freeaddrinfo(conn->ai_head);
		conn->ai_head = conn->ai_cur = NULL;
	}
	rpc_stream_tcp_ready(&conn->s);
	rv = rpc_stream_read_start(&conn->s);
	if (rv == 0 && c->held_len > 0) {
		rv = rpc_stream_queue(&conn->s, c->held, c->held_len);
		c->held_len = 0;
	}
	if (rv == 0)
		rv = rpc_stream_flush(&conn->s);
	if (rv != 0) {
		snprintf(msg, sizeof(msg), "connect to %s: %s", c->endpoint,
			 settle_strerror(rv));
		conn_fail(conn, SETTLE_ECONNECT, msg);
	}
}

static void conn_start_connect(struct cli_conn *conn, const struct sockaddr *sa)
{
	char msg[160];
	int rv;

	conn->creq.data = conn;
	rv = uv_tcp_connect(&conn->creq, &conn->s.tcp, sa, conn_on_connect);
	if (rv != 0) {
		if (conn_try_next(conn))
			return;
		snprintf(msg, sizeof(msg), "connect to %s: %s",
			 conn->c->endpoint, uv_strerror(rv));
		conn_fail(conn, SETTLE_ECONNECT, msg);
	}
}

static void conn_on_resolved(uv_getaddrinfo_t *req, int status,
			     struct addrinfo *res)
{
	struct cli_conn *conn = req->data;
	char msg[300];

	if (conn->c == NULL || status != 0 || res == NULL) {
		if (conn->c != NULL) {
			snprintf(msg, sizeof(msg), "resolve %s: %s",
				 conn->c->endpoint,
				 status != 0 ? uv_strerror(status)
					     : "no address");
			conn_fail(conn, SETTLE_ECONNECT, msg);
		}
		uv_freeaddrinfo(res);
	} else {
		/* Kept until connected, to fall back on the next address. */
		conn->ai_head = conn->ai_cur = res;
		conn_start_connect(conn, res->ai_addr);
	}
	conn_unref(conn);
}

static void conn_on_close(struct rpc_stream *st)
{
	struct cli_conn *conn = st->data;

	client_maybe_free(conn->owner);
	conn_unref(conn);
}

/* A new connection object for c, made current. NULL when out of resources,
 * after failing the pending calls. */
static struct cli_conn *conn_new(struct rpc_client *c)
{
	struct cli_conn *conn;
	int rv;

	conn = calloc(1, sizeof(*conn));
	if (conn == NULL) {
		rv = SETTLE_ENOMEM;
		goto err;
	}
	rv = c->opts.tls != NULL
		 ? rpc_stream_tls_init(c->loop, &conn->s, &conn_cbs, conn,
				       c->opts.tls, c->host)
		 : rpc_stream_tcp_init(c->loop, &conn->s, &conn_cbs, conn);
	if (rv != 0)
		goto err_after_alloc;
	rpc_decoder_init(&conn->dec, c->opts.max_frame);
	conn->c = c;
	conn->owner = c;
	conn->refs = 1;
	c->conn = conn;
	c->open++;
	return conn;

err_after_alloc:
	free(conn);
err:
	c->held_len = 0;
	calls_fail_list(calls_take_all(c), rv, settle_strerror(rv));
	return NULL;
}

/* Start a connection; failures fail the pending calls (we are in a loop
 * callback here, never inside rpc_client_call). */
static void client_connect(struct rpc_client *c)
{
	struct sockaddr_storage sa;
	struct addrinfo hints;
	struct cli_conn *conn;
	char port[8];
	int rv;

	conn = conn_new(c);
	if (conn == NULL)
		return;
	if (rpc_addr_numeric(c->host, c->port, &sa) == 0) {
		conn_start_connect(conn, (struct sockaddr *)&sa);
		return;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof(port), "%d", c->port);
	conn->gai.data = conn;
	conn->refs++;
	rv = uv_getaddrinfo(c->loop, &conn->gai, conn_on_resolved, c->host,
			    port, &hints);
	if (rv != 0) {
		char msg[300];
		conn->refs--;
		snprintf(msg, sizeof(msg), "resolve %s: %s", c->endpoint,
			 uv_strerror(rv));
		conn_fail(conn, SETTLE_ECONNECT, msg);
	}
}

/* ---- Client ----------------------------------------------------------------
 */

static void client_tick_cb(struct rpc_tick *t)
{
	struct rpc_client *c = t->data;
	int rv;

	if (c->closing)
		return;
	if (c->conn == NULL) {
		if (c->ncalls > 0)
			client_connect(c);
		else
			c->held_len = 0; /* every call already timed out */
		return;
	}
	if (!c->conn->connected)
		return; /* the connect callback sends what is held */
	rv = rpc_stream_flush(&c->conn->s);
	if (rv != 0) {
		char msg[160];
		snprintf(msg, sizeof(msg), "write to %s: %s", c->endpoint,
			 settle_strerror(rv));
		conn_fail(c->conn, SETTLE_ECLOSED, msg);
	}
}

int rpc_client_init(uv_loop_t *loop, const char *endpoint,
		    const struct rpc_opts *opts, struct rpc_client **out)
{
	struct rpc_client *c;

	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return SETTLE_ENOMEM;
	if (rpc_addr_split(endpoint, c->host, sizeof(c->host), &c->port) != 0 ||
	    c->port == 0) {
		free(c);
		return SETTLE_EINVAL;
	}
	c->endpoint = strdup(endpoint);
	if (c->endpoint == NULL) {
		free(c);
		return SETTLE_ENOMEM;
	}
	c->loop = loop;
	if (opts != NULL)
		c->opts = *opts;
	if (c->opts.max_frame == 0)
		c->opts.max_frame = RPC_DEFAULT_MAX_FRAME;
	c->next_id = 1;
	/* Neither init can fail on unix. */
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	rpc_tick_init(loop, &c->tick, client_tick_cb, c);
	c->open = 2;
	*out = c;
	return 0;
}

const char *rpc_client_endpoint(const struct rpc_client *c)
{
	return c->endpoint;
}

static int held_append(struct rpc_client *c, const uint8_t *buf, size_t len)
{
	if (c->held_cap - c->held_len < len) {
		size_t cap = c->held_cap < 4096 ? 4096 : c->held_cap;
		uint8_t *p;

		while (cap - c->held_len < len)
			cap *= 2;
		p = realloc(c->held, cap);
		if (p == NULL)
			return SETTLE_ENOMEM;
		c->held = p;
		c->held_cap = cap;
	}
	memcpy(c->held + c->held_len, buf, len);
	c->held_len += len;
	return 0;
}

/* Queue an encoded frame (buf, taken) as call c->next_id. */
static int call_queue(struct rpc_client *c, uint8_t *buf, size_t len,
		      uint32_t timeout_ms, rpc_reply_cb cb, void *data)
{
	struct cli_call *call;
	size_t slot;
	int rv;

	call = calloc(1, sizeof(*call));
	if (call == NULL || (timeout_ms > 0 && heap_reserve(c) != 0)) {
		free(call);
		free(buf);
		return SETTLE_ENOMEM;
	}
	if (c->conn != NULL && c->conn->connected)
		rv = rpc_stream_queue(&c->conn->s, buf, len);
	else
		rv = held_append(c, buf, len);
	free(buf);
	if (rv != 0) {
		free(call);
		return rv;
	}
	call->id = c->next_id++;
	call->cb = cb;
	call->data = data;
	slot = (size_t)call->id & (c->nbuckets - 1);
	call->hnext = c->buckets[slot];
	c->buckets[slot] = call;
	c->ncalls++;
	if (timeout_ms > 0) {
		call->timeout_ms = timeout_ms;
		call->deadline = uv_now(c->loop) + timeout_ms;
		deadline_insert(c, call);
	}
	rpc_tick_arm(&c->tick);
	return 0;
}

int rpc_client_call(struct rpc_client *c, int method,
		    const ProtobufCMessage *req, uint32_t timeout_ms,
		    rpc_reply_cb cb, void *data)
{
	uint8_t *body;
	size_t len;
	int rv = rpc_body_pack(req, c->opts.max_frame, &body, &len);

	if (rv != 0)
		return rv;
	rv = rpc_client_call_body(c, method, body, len, timeout_ms, cb, data);
	free(body);
	return rv;
}

int rpc_client_call_body(struct rpc_client *c, int method, const uint8_t *body,
			 size_t len, uint32_t timeout_ms, rpc_reply_cb cb,
			 void *data)
{
	uint8_t *buf;
	size_t flen;
	int rv;

	if (c->closing)
		return SETTLE_ECANCELED;
	if (cb == NULL)
		return SETTLE_EINVAL;
	if (c->ncalls >= c->nbuckets * 2 && (rv = calls_grow(c)) != 0)
		return rv;
	rv = rpc_frame_encode_body(c->next_id, method, 0, body, len, 0, NULL,
				   NULL, c->opts.max_frame, &buf, &flen);
	if (rv != 0)
		return rv;
	return call_queue(c, buf, flen, timeout_ms, cb, data);
}

static void client_handle_closed(uv_handle_t *h)
{
	client_maybe_free(h->data);
}

static void client_tick_closed(struct rpc_tick *t)
{
	client_maybe_free(t->data);
}

void rpc_client_close(struct rpc_client *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->conn != NULL)
		conn_detach(c->conn);
	c->held_len = 0;
	uv_close((uv_handle_t *)&c->timer, client_handle_closed);
	rpc_tick_close(&c->tick, client_tick_closed);
	/* Last, so the callbacks see a client that refuses new calls. */
	calls_fail_list(calls_take_all(c), SETTLE_ECANCELED, "client closed");
}

/*
 * rpc_server.c — accept connections, decode request frames, hand each to
 * the handler as an rpc_call, and write the answers back coalesced.
 *
 * Lifetimes: a connection is referenced once while its stream is open and
 * once per unanswered call, and freed at zero, so a handler may answer long
 * after the peer went away. The server itself is freed when its listener,
 * tick, idle timer and every connection stream have closed; connections
 * outliving that (unanswered calls) no longer point at it.
 *
 * Limits (rpc_opts): connections at once, in all and per source address
 * (more are closed as soon as accepted); the bytes held for frames not yet
 * whole, all connections together (the connection that would pass it is
 * closed); a frame begun must be whole within frame_timeout_ms (a sender of
 * a byte a second is cut off). Closes for a limit are logged at most once
 * a second, with how many there were.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "rpc.h"
#include "stream.h"
#include "tls.h"

#define DEFAULT_MAX_INFLIGHT 1024u
/* What a connection may hold for a frame not yet whole without it
 * counting against max_partial: requests are mostly far smaller. */
#define PARTIAL_FREE	   (16u * 1024u)
#define DEFAULT_MAX_QUEUED (64u * 1024u * 1024u)

/* Under TLS the connections' certificates are looked at this often for
 * one that expired while connected. */
#define RPC_EXPIRY_SWEEP_MS 10000u

struct srv_conn {
	struct rpc_stream s;
	struct rpc_server *srv; /* NULL once the stream closed */
	struct srv_conn *prev, *next;
	struct srv_conn *dirty_next;
	struct rpc_decoder dec;
	uint64_t last_active; /* settle_mono_ms() */
	uint64_t frame_since; /* when the frame not yet whole began; 0 */
	uint64_t accepted;    /* settle_mono_ms() at accept */
	size_t held;	      /* rpc_decoder_held(), as counted in srv->held */
	char addr[64];	      /* the peer's address without its port */
	uint32_t inflight;
	int refs;
	bool closing;
	bool dirty;
	bool paused;  /* reading stopped: too many calls in flight */
	bool counted; /* in srv->n_conns */
	char peer[64];
};

struct rpc_call {
	struct srv_conn *conn;
	Settle__V1__Frame *frame;
};

struct rpc_server {
	uv_loop_t *loop;
	uv_tcp_t listener;
	uv_timer_t idle;
	struct rpc_tick tick;
	struct rpc_opts opts;
	rpc_handler_cb handler;
	void *data;
	struct srv_conn *conns;
	struct srv_conn *dirty;	 /* conns to flush or resume, each holding a
				    reference */
	uint32_t n_conns;	 /* open, not closing */
	size_t held;		 /* bytes the connections' decoders hold */
	uint64_t limit_log_ms;	 /* last limit close logged */
	uint32_t limit_unlogged; /* limit closes since */
	int port;
	int open; /* handles not yet closed */
	bool closing;
	void (*close_cb)(void *data);
	void *close_data;
};

static void conn_close(struct srv_conn *c, const char *why);
static void conn_drain(struct srv_conn *c);

/* A close for a limit: logged at most once a second, with the count. */
static void limit_close(struct srv_conn *c, const char *why)
{
	struct rpc_server *s = c->srv;
	uint64_t now = settle_mono_ms();

	if (now - s->limit_log_ms >= 1000) {
		if (s->limit_unlogged > 0)
			settle_log(SETTLE_LOG_WARN, "rpc",
				   "closing connection from %s: %s (and %u "
				   "more for a limit in the last %llu ms)",
				   c->peer, why, s->limit_unlogged,
				   (unsigned long long)(now - s->limit_log_ms));
		else
			settle_log(SETTLE_LOG_WARN, "rpc",
				   "closing connection from %s: %s", c->peer,
				   why);
		s->limit_log_ms = now;
		s->limit_unlogged = 0;
	} else {
		s->limit_unlogged++;
	}
	conn_close(c, NULL);
}

/* After the decoder changed: count what it holds past what any
 * connection may hold (PARTIAL_FREE), give back a large empty buffer,
 * note when a frame began. */
static void conn_account(struct srv_conn *c)
{
	struct rpc_server *s = c->srv;
	size_t held;

	rpc_decoder_trim(&c->dec);
	held = rpc_decoder_held(&c->dec);
	held = held > PARTIAL_FREE ? held - PARTIAL_FREE : 0;
	s->held = s->held - c->held + held;
	c->held = held;
	if (rpc_decoder_partial(&c->dec) == 0)
		c->frame_since = 0;
	else if (c->frame_since == 0)
		c->frame_since = settle_mono_ms();
}

static void conn_unref(struct srv_conn *c)
{
	if (--c->refs > 0)
		return;
	rpc_decoder_close(&c->dec);
	free(c);
}

/* Ask the tick to flush c's writes and maybe resume reading. */
static void conn_mark(struct srv_conn *c)
{
	struct rpc_server *s = c->srv;

	if (c->dirty || c->closing || s == NULL)
		return;
	c->dirty = true;
	c->refs++;
	c->dirty_next = s->dirty;
	s->dirty = c;
	rpc_tick_arm(&s->tick);
}

static void server_maybe_free(struct rpc_server *s)
{
	if (--s->open > 0)
		return;
	if (s->close_cb != NULL)
		s->close_cb(s->close_data);
	free(s);
}

static void server_tick_cb(struct rpc_tick *t)
{
	struct rpc_server *s = t->data;
	struct srv_conn *c;
	int rv;

	while ((c = s->dirty) != NULL) {
		s->dirty = c->dirty_next;
		c->dirty = false;
		if (!c->closing && c->paused &&
		    c->inflight < s->opts.max_inflight) {
			c->paused = false;
			/* Frames already buffered first; reading resumes only
			 * if they leave room. */
			conn_drain(c);
			conn_account(c);
			if (!c->closing && !c->paused) {
				rv = rpc_stream_read_start(&c->s);
				if (rv != 0)
					conn_close(c, settle_strerror(rv));
			}
		}
		if (!c->closing) {
			rv = rpc_stream_flush(&c->s);
			if (rv != 0)
				conn_close(c, settle_strerror(rv));
		}
		conn_unref(c);
	}
}

/* Turn buffered frames into calls while the in-flight budget allows. */
static void conn_drain(struct srv_conn *c)
{
	struct rpc_server *s = c->srv;
	Settle__V1__Frame *f;
	struct rpc_call *call;
	int rv;

	while (!c->closing && c->inflight < s->opts.max_inflight) {
		rv = rpc_decoder_next(&c->dec, &f);
		if (rv == 1)
			return;
		if (rv != 0) {
			conn_close(c, settle_strerror(rv));
			return;
		}
		if (f->response) {
			/* A server is sent requests only: a response here is a
			 * peer that mistook its role or a frame it built
			 * wrong. Serving it would act on a stray answer; like
			 * any malformed frame, it ends the connection. */
			settle__v1__frame__free_unpacked(f, NULL);
			conn_close(c, "protocol error: a frame with response "
				      "set, sent to a server");
			return;
		}
		call = malloc(sizeof(*call));
		if (call == NULL) {
			settle__v1__frame__free_unpacked(f, NULL);
			conn_close(c, "out of memory");
			return;
		}
		call->conn = c;
		call->frame = f;
		c->inflight++;
		c->refs++;
		s->handler(s->data, call);
	}
	if (!c->closing && c->inflight >= s->opts.max_inflight && !c->paused) {
		c->paused = true;
		rpc_stream_read_stop(&c->s);
	}
}

/*
 * Frames not yet whole hold more than max_partial: close the connections
 * holding the most until under it. A client sending small requests holds
 * nothing counted, so it is not the one closed.
 */
static void shed_partial(struct rpc_server *s)
{
	char why[160];

	while (s->held > s->opts.max_partial) {
		struct srv_conn *big = NULL;

		for (struct srv_conn *o = s->conns; o != NULL; o = o->next)
			if (!o->closing && (big == NULL || o->held > big->held))
				big = o;
		if (big == NULL || big->held == 0)
			return;
		snprintf(why, sizeof why,
			 "frames not yet whole hold %zu KiB, over the %u KiB "
			 "limit; this one %zu KiB",
			 s->held / 1024, s->opts.max_partial / 1024,
			 big->held / 1024);
		/* Counted out now: its stream closes later. */
		s->held -= big->held;
		big->held = 0;
		limit_close(big, why);
	}
}

static void conn_on_read(struct rpc_stream *st, const uint8_t *data, size_t len,
			 int err)
{
	struct srv_conn *c = st->data;
	struct rpc_server *s = c->srv;
	int rv;

	if (err == SETTLE_ETLS) {
		/* Someone without the right certificate: logged with the
		 * peer and OpenSSL's reason, at most once a second. */
		char why[320];

		snprintf(why, sizeof(why), "TLS: %s", rpc_stream_tls_error(st));
		limit_close(c, why);
		return;
	}
	if (err != 0) {
		conn_close(c,
			   err == SETTLE_ECLOSED ? NULL : settle_strerror(err));
		return;
	}
	c->last_active = settle_mono_ms();
	rv = rpc_decoder_feed(&c->dec, data, len);
	if (rv != 0) {
		conn_close(c, settle_strerror(rv));
		return;
	}
	if (!c->paused)
		conn_drain(c);
	if (c->closing)
		return;
	conn_account(c);
	if (s->opts.max_partial != 0 && s->held > s->opts.max_partial)
		shed_partial(s);
}

static void conn_on_write_error(struct rpc_stream *st, int err)
{
	conn_close(st->data, settle_strerror(err));
}

static void conn_on_close(struct rpc_stream *st)
{
	struct srv_conn *c = st->data;
	struct rpc_server *s = c->srv;

	s->held -= c->held;
	c->held = 0;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	c->srv = NULL;
	server_maybe_free(s);
	conn_unref(c);
}

static const struct rpc_stream_cbs conn_cbs = {
    .on_read = conn_on_read,
    .on_write_error = conn_on_write_error,
    .on_close = conn_on_close,
};

/* why NULL: an orderly close, not worth a warning. */
static void conn_close(struct srv_conn *c, const char *why)
{
	if (c->closing)
		return;
	if (why != NULL)
		settle_log(SETTLE_LOG_WARN, "rpc",
			   "closing connection from %s: %s", c->peer, why);
	c->closing = true;
	if (c->counted) {
		c->counted = false;
		c->srv->n_conns--;
	}
	rpc_stream_close(&c->s);
}

/* "1.2.3.4:5" -> "1.2.3.4"; "[::1]:5" -> "::1". */
static void peer_addr(const char *peer, char *out, size_t cap)
{
	const char *end;

	if (peer[0] == '[' && (end = strchr(peer, ']')) != NULL)
		snprintf(out, cap, "%.*s", (int)(end - peer - 1), peer + 1);
	else if ((end = strrchr(peer, ':')) != NULL)
		snprintf(out, cap, "%.*s", (int)(end - peer), peer);
	else
		snprintf(out, cap, "%s", peer);
}

/* c just accepted (and counted): closed when over a connection limit. */
static bool over_conn_limit(struct rpc_server *s, struct srv_conn *c)
{
	char why[128];
	uint32_t same = 0;

	if (s->opts.max_conns != 0 && s->n_conns > s->opts.max_conns) {
		snprintf(why, sizeof why, "over %u connections",
			 s->opts.max_conns);
		limit_close(c, why);
		return true;
	}
	if (s->opts.max_conns_per_addr == 0)
		return false;
	for (struct srv_conn *o = s->conns; o != NULL; o = o->next)
		same += !o->closing && strcmp(o->addr, c->addr) == 0;
	if (same <= s->opts.max_conns_per_addr)
		return false;
	snprintf(why, sizeof why, "over %u connections from %s",
		 s->opts.max_conns_per_addr, c->addr);
	limit_close(c, why);
	return true;
}

static void scratch_closed(uv_handle_t *h)
{
	free(h);
}

/* A connection that cannot be served (no memory for it): accept it and
 * close it at once, or libuv stops polling the listener while one waits. */
static void refuse_pending(uv_stream_t *listener)
{
	uv_tcp_t *t = malloc(sizeof *t);

	if (t == NULL || uv_tcp_init(listener->loop, t) != 0) {
		free(t);
		return;
	}
	(void)uv_accept(listener, (uv_stream_t *)t);
	uv_close((uv_handle_t *)t, scratch_closed);
}

static void server_on_connection(uv_stream_t *listener, int status)
{
	struct rpc_server *s = listener->data;
	struct srv_conn *c;
	int rv;

	if (status < 0) {
		settle_log(SETTLE_LOG_WARN, "rpc", "accept: %s",
			   uv_strerror(status));
		return;
	}
	if (s->closing)
		return;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		goto err;
	rv = s->opts.tls != NULL
		 ? rpc_stream_tls_init(s->loop, &c->s, &conn_cbs, c,
				       s->opts.tls, NULL)
		 : rpc_stream_tcp_init(s->loop, &c->s, &conn_cbs, c);
	if (rv != 0)
		goto err_after_alloc;
	/* From here the stream handle exists and only its close callback
	 * may free c. */
	c->srv = s;
	c->refs = 1;
	c->last_active = settle_mono_ms();
	c->accepted = c->last_active;
	rpc_decoder_init(&c->dec, s->opts.max_frame);
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->open++;
	rv = uv_accept(listener, (uv_stream_t *)&c->s.tcp);
	if (rv != 0) {
		conn_close(c, uv_strerror(rv));
		return;
	}
	rpc_stream_tcp_ready(&c->s);
	rpc_stream_peer(&c->s, c->peer, sizeof(c->peer));
	peer_addr(c->peer, c->addr, sizeof(c->addr));
	s->n_conns++;
	c->counted = true;
	if (over_conn_limit(s, c))
		return;
	rv = rpc_stream_read_start(&c->s);
	if (rv != 0)
		conn_close(c, settle_strerror(rv));
	settle_tracef("rpc", "connection from %s", c->peer);
	return;

err_after_alloc:
	free(c);
err:
	refuse_pending(listener);
	settle_log(SETTLE_LOG_WARN, "rpc", "accept: out of memory");
}

static void server_idle_cb(uv_timer_t *t)
{
	struct rpc_server *s = t->data;
	uint64_t now = settle_mono_ms();
	time_t wall = time(NULL);
	struct srv_conn *c;

	for (c = s->conns; c != NULL; c = c->next) {
		if (c->closing)
			continue;
		/* A certificate good at the handshake and past its end
		 * since: as if the client had come back with it. */
		if (rpc_stream_tls_expired(&c->s, wall)) {
			conn_close(c, "its certificate has expired");
			continue;
		}
		/* A paused connection is not read: its frame waits on us. */
		if (s->opts.frame_timeout_ms != 0 && c->frame_since != 0 &&
		    !c->paused &&
		    now - c->frame_since >= s->opts.frame_timeout_ms) {
			char why[128];

			snprintf(why, sizeof why,
				 "a frame not whole after %u ms (a slow "
				 "sender)",
				 s->opts.frame_timeout_ms);
			limit_close(c, why);
			continue;
		}
		/* A TLS handshake is held to the same bound as a frame: a
		 * connection that never finishes it is a slow sender too. */
		if (s->opts.frame_timeout_ms != 0 &&
		    !rpc_stream_tls_done(&c->s) &&
		    now - c->accepted >= s->opts.frame_timeout_ms) {
			char why[128];

			snprintf(why, sizeof why,
				 "TLS handshake not done after %u ms",
				 s->opts.frame_timeout_ms);
			limit_close(c, why);
			continue;
		}
		if (s->opts.idle_close_ms == 0 || c->inflight > 0 ||
		    rpc_stream_pending(&c->s) > 0)
			continue;
		if (now - c->last_active >= s->opts.idle_close_ms)
			conn_close(c, NULL);
	}
}

static void server_handle_closed(uv_handle_t *h)
{
	server_maybe_free(h->data);
}

static void server_tick_closed(struct rpc_tick *t)
{
	server_maybe_free(t->data);
}

static void server_close_handles(struct rpc_server *s)
{
	uv_close((uv_handle_t *)&s->listener, server_handle_closed);
	uv_close((uv_handle_t *)&s->idle, server_handle_closed);
	rpc_tick_close(&s->tick, server_tick_closed);
}

int rpc_server_start(uv_loop_t *loop, const char *address,
		     const struct rpc_opts *opts, rpc_handler_cb handler,
		     void *data, struct rpc_server **out, char *errmsg,
		     size_t errmsg_len)
{
	struct sockaddr_storage sa, bound;
	int namelen = sizeof(bound);
	struct rpc_server *s;
	char scratch[8];
	int rv;

	if (errmsg == NULL) {
		errmsg = scratch;
		errmsg_len = sizeof(scratch);
	}
	if (errmsg_len > 0)
		errmsg[0] = '\0';
	if (handler == NULL || out == NULL) {
		snprintf(errmsg, errmsg_len, "no handler");
		return SETTLE_EINVAL;
	}
	rv = rpc_addr_resolve(loop, address, &sa, errmsg, errmsg_len);
	if (rv != 0)
		return rv;
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		snprintf(errmsg, errmsg_len, "out of memory");
		return SETTLE_ENOMEM;
	}
	s->loop = loop;
	s->handler = handler;
	s->data = data;
	if (opts != NULL)
		s->opts = *opts;
	if (s->opts.max_frame == 0)
		s->opts.max_frame = RPC_DEFAULT_MAX_FRAME;
	if (s->opts.max_inflight == 0)
		s->opts.max_inflight = DEFAULT_MAX_INFLIGHT;
	if (s->opts.max_queued == 0)
		s->opts.max_queued = DEFAULT_MAX_QUEUED;

	/* None of these inits can fail on unix; after them every exit goes
	 * through server_close_handles(), which frees s from the loop. */
	uv_tcp_init(loop, &s->listener);
	uv_timer_init(loop, &s->idle);
	rpc_tick_init(loop, &s->tick, server_tick_cb, s);
	s->listener.data = s;
	s->idle.data = s;
	s->open = 3;

	rv = uv_tcp_bind(&s->listener, (struct sockaddr *)&sa, 0);
	if (rv == 0)
		rv = uv_listen((uv_stream_t *)&s->listener, 511,
			       server_on_connection);
	if (rv != 0) {
		snprintf(errmsg, errmsg_len, "listen on %s: %s", address,
			 uv_strerror(rv));
		goto err_after_handles;
	}
	rv = uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound,
				&namelen);
	if (rv != 0) {
		snprintf(errmsg, errmsg_len, "getsockname: %s",
			 uv_strerror(rv));
		goto err_after_handles;
	}
	s->port = ntohs(bound.ss_family == AF_INET6
			    ? ((struct sockaddr_in6 *)&bound)->sin6_port
			    : ((struct sockaddr_in *)&bound)->sin_port);
	if (s->opts.idle_close_ms > 0 || s->opts.frame_timeout_ms > 0 ||
	    s->opts.tls != NULL) {
		uint64_t every = UINT64_MAX;

		if (s->opts.idle_close_ms > 0)
			every = s->opts.idle_close_ms / 2 + 1;
		if (s->opts.frame_timeout_ms > 0 &&
		    s->opts.frame_timeout_ms / 4 + 1 < every)
			every = s->opts.frame_timeout_ms / 4 + 1;
		/* Under TLS, certificates that expire while connected are
		 * found within this. */
		if (s->opts.tls != NULL && RPC_EXPIRY_SWEEP_MS < every)
			every = RPC_EXPIRY_SWEEP_MS;
		uv_timer_start(&s->idle, server_idle_cb, every, every);
		/* The sweep alone must not keep a loop running. */
		uv_unref((uv_handle_t *)&s->idle);
	}
	*out = s;
	return 0;

err_after_handles:
	s->closing = true;
	server_close_handles(s);
	return rv == UV_EADDRINUSE ? SETTLE_EUNAVAIL : settle_err_from_uv(rv);
}

int rpc_server_port(const struct rpc_server *s)
{
	return s->port;
}

void rpc_server_close(struct rpc_server *s, void (*cb)(void *data), void *data)
{
	struct srv_conn *c;

	if (s->closing)
		return;
	s->closing = true;
	s->close_cb = cb;
	s->close_data = data;
	/* Replies still queued die with their connections; the tick will
	 * not run again, so release the references it held. */
	while ((c = s->dirty) != NULL) {
		s->dirty = c->dirty_next;
		c->dirty = false;
		conn_unref(c);
	}
	for (c = s->conns; c != NULL; c = c->next)
		conn_close(c, NULL);
	server_close_handles(s);
}

int rpc_call_method(const struct rpc_call *call)
{
	return (int)call->frame->method;
}

uint64_t rpc_call_id(const struct rpc_call *call)
{
	return call->frame->id;
}

const uint8_t *rpc_call_body(const struct rpc_call *call, size_t *len)
{
	*len = call->frame->body.len;
	return call->frame->body.data;
}

const char *rpc_call_peer(const struct rpc_call *call)
{
	return call->conn->peer;
}

const char *rpc_call_peer_addr(const struct rpc_call *call)
{
	return call->conn->addr;
}

void rpc_server_set_tls(struct rpc_server *s, struct rpc_tls *t)
{
	char why[160], msg[200];

	s->opts.tls = t;
	for (struct srv_conn *c = s->conns; c != NULL; c = c->next) {
		if (c->closing ||
		    rpc_stream_tls_still_valid(&c->s, t, why, sizeof why))
			continue;
		snprintf(msg, sizeof msg,
			 "its certificate fails the reloaded TLS files: %s",
			 why);
		conn_close(c, msg);
	}
}

const char *rpc_call_peer_name(const struct rpc_call *call)
{
	return rpc_stream_peer_name(&call->conn->s);
}

void rpc_call_peer_id(const struct rpc_call *call, struct rpc_peer_id *out)
{
	rpc_stream_peer_id(&call->conn->s, out);
}

static void call_free(struct rpc_call *call)
{
	struct srv_conn *c = call->conn;
	struct rpc_server *s = c->srv;

	settle__v1__frame__free_unpacked(call->frame, NULL);
	free(call);
	c->inflight--;
	if (!c->closing && c->paused && c->inflight < s->opts.max_inflight)
		conn_mark(c);
	conn_unref(c);
}

static int call_answer(struct rpc_call *call, const ProtobufCMessage *body,
		       int err, const char *msg, const char *leader)
{
	struct srv_conn *c = call->conn;
	const Settle__V1__Frame *f = call->frame;
	uint8_t *buf;
	size_t len;
	int rv;

	if (c->closing) {
		call_free(call);
		return SETTLE_ECLOSED;
	}
	rv = rpc_frame_encode(f->id, (int)f->method, 1, body, err, msg, leader,
			      c->srv->opts.max_frame, &buf, &len);
	if (rv == SETTLE_ETOOBIG && body != NULL) {
		/* The requester must still hear something for this id. */
		int rv2 =
		    rpc_frame_encode(f->id, (int)f->method, 1, NULL,
				     SETTLE_ETOOBIG, "reply too large", NULL,
				     c->srv->opts.max_frame, &buf, &len);
		if (rv2 != 0)
			rv = rv2;
	}
	if (rv != 0 && rv != SETTLE_ETOOBIG) {
		conn_close(c, settle_strerror(rv));
		call_free(call);
		return rv;
	}
	if (rpc_stream_queue(&c->s, buf, len) != 0) {
		free(buf);
		conn_close(c, "out of memory");
		call_free(call);
		return SETTLE_ENOMEM;
	}
	free(buf);
	c->last_active = settle_mono_ms();
	if (rpc_stream_pending(&c->s) > c->srv->opts.max_queued) {
		/* The peer does not read its replies; holding them all
		 * would let one client exhaust our memory. */
		conn_close(c, "write queue full, peer not reading");
	} else {
		conn_mark(c);
	}
	call_free(call);
	return rv;
}

int rpc_call_reply(struct rpc_call *call, const ProtobufCMessage *body)
{
	return call_answer(call, body, 0, NULL, NULL);
}

int rpc_call_fail(struct rpc_call *call, int err, const char *msg,
		  const char *leader)
{
	if (err >= 0)
		err = SETTLE_EINTERNAL;
	return call_answer(call, NULL, err, msg, leader);
}

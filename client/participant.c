/*
 * participant.c — the participant SDK: an RPC server answering TRY,
 * CONFIRM, CANCEL, ACTION and COMPENSATE with the application's handlers, each
 * run inside the barrier in one LMDB write txn with its business effect.
 */
#include "error.h"

#include "settle_participant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "client_int.h"
#include "rpc.h"
#include "tls.h"
#include "xa/xid.h"

#define GC_BATCH_DEFAULT       1000
#define GC_INTERVAL_DEFAULT_MS 60000

struct settle_participant {
	struct settle_participant_config cfg;
	char *listen;
	struct rpc_tls *tls; /* settle_participant_set_tls(); NULL: plain */
	/* settle_participant_set_coordinators(): who may call phase 2. */
	struct rpc_peer_match *coords; /* set_coordinators */
	size_t n_coords;
	settle_barrier *barrier;
	struct rpc_server *server;
	uv_loop_t *loop;
	int port;
	char errmsg[256];
	/* Barrier cleanup. */
	uv_timer_t gc_timer;
	bool gc_open; /* gc_timer initialized and not closed yet */
	/* Closing: p is freed once the server, the timer and every pending
	 * call are gone (own-thread mode frees after the join instead). */
	bool closing;
	bool server_open;
	size_t pending; /* calls handed to on_call_async, not completed */
	/* Own-thread mode. */
	bool threaded;
	uv_loop_t own_loop;
	uv_thread_t thread;
	uv_async_t stop;
	uv_sem_t ready;
	int start_rv;
};

struct settle_call {
	settle_participant *p;
	struct rpc_call *rpc;
	Settle__V1__BranchRequest *req; /* owns what b points to */
	struct settle_branch b;
};

static void participant_free(settle_participant *p);
static bool caller_may(settle_participant *p, struct rpc_call *rpc, int op);

/* Free p in start() mode once nothing refers to it any more. */
static void maybe_free(settle_participant *p)
{
	if (p->closing && !p->threaded && !p->server_open && !p->gc_open &&
	    p->pending == 0)
		participant_free(p);
}

int settle_participant_init(const struct settle_participant_config *cfg,
			    settle_participant **out)
{
	struct settle_participant *p;
	int rv;

	if (cfg == NULL || out == NULL || cfg->listen == NULL ||
	    cfg->listen[0] == '\0' ||
	    (cfg->on_try == NULL && cfg->on_confirm == NULL &&
	     cfg->on_cancel == NULL && cfg->on_action == NULL &&
	     cfg->on_compensate == NULL))
		return SETTLE_EINVAL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return SETTLE_ENOMEM;
	p->cfg = *cfg;
	p->port = -1;
	p->listen = strdup(cfg->listen);
	if (p->listen == NULL) {
		rv = SETTLE_ENOMEM;
		goto err_after_alloc;
	}
	p->cfg.listen = p->listen;
	if (p->cfg.barrier_retention_ms == 0)
		p->cfg.barrier_retention_ms =
		    SETTLE_BARRIER_RETENTION_DEFAULT_MS;
	if (p->cfg.barrier_gc_batch == 0)
		p->cfg.barrier_gc_batch = GC_BATCH_DEFAULT;
	if (p->cfg.barrier_gc_interval_ms == 0) {
		/* Often enough that rows outlive their retention by a
		 * quarter at most. */
		uint64_t ms = p->cfg.barrier_retention_ms / 4;
		p->cfg.barrier_gc_interval_ms = ms > GC_INTERVAL_DEFAULT_MS
						    ? GC_INTERVAL_DEFAULT_MS
						: ms < 10 ? 10
							  : (uint32_t)ms;
	}
	if (cfg->env != NULL) {
		rv = settle_barrier_open(cfg->env, &p->barrier);
		if (rv != 0)
			goto err_after_listen;
	}
	*out = p;
	return 0;

err_after_listen:
	free(p->listen);
err_after_alloc:
	free(p);
	return rv;
}

const char *settle_participant_errmsg(const settle_participant *p)
{
	return p != NULL ? p->errmsg : "";
}

int settle_participant_port(const settle_participant *p)
{
	return p != NULL ? p->port : -1;
}

uv_loop_t *settle_participant_loop(const settle_participant *p)
{
	return p != NULL ? p->loop : NULL;
}

static int method_op(int method)
{
	switch (method) {
	case SETTLE__V1__METHOD__TRY:
		return SETTLE_OP_TRY;
	case SETTLE__V1__METHOD__CONFIRM:
		return SETTLE_OP_CONFIRM;
	case SETTLE__V1__METHOD__CANCEL:
		return SETTLE_OP_CANCEL;
	case SETTLE__V1__METHOD__ACTION:
		return SETTLE_OP_ACTION;
	case SETTLE__V1__METHOD__COMPENSATE:
		return SETTLE_OP_COMPENSATE;
	}
	return 0;
}

static const char *op_name(int op)
{
	switch (op) {
	case SETTLE_OP_TRY:
		return "try";
	case SETTLE_OP_CONFIRM:
		return "confirm";
	case SETTLE_OP_CANCEL:
		return "cancel";
	case SETTLE_OP_ACTION:
		return "action";
	case SETTLE_OP_COMPENSATE:
		return "compensate";
	}
	return "?";
}

/* Ops whose refusal by the barrier is an ordinary late delivery, answered
 * REFUSED, rather than a protocol violation answered FAILURE. */
static bool op_refusable(int op)
{
	return op == SETTLE_OP_TRY || op == SETTLE_OP_ACTION;
}

static settle_branch_fn handler_for(const settle_participant *p, int op)
{
	switch (op) {
	case SETTLE_OP_TRY:
		return p->cfg.on_try;
	case SETTLE_OP_CONFIRM:
		return p->cfg.on_confirm;
	case SETTLE_OP_CANCEL:
		return p->cfg.on_cancel;
	case SETTLE_OP_ACTION:
		return p->cfg.on_action;
	case SETTLE_OP_COMPENSATE:
		return p->cfg.on_compensate;
	}
	return NULL;
}

/* Map a handler's answer onto the wire: FAILURE stays FAILURE, everything
 * else is worth another attempt. */
static int handler_err(int rv)
{
	return rv == SETTLE_EFAILURE ? SETTLE_EFAILURE : SETTLE_ERETRY;
}

/*
 * Run one call. Returns 0 (answer OK) or an error to answer, with text in
 * err.
 */
static int run_call(settle_participant *p, settle_branch_fn fn, void *data,
		    const struct settle_branch *b, char *err, size_t errlen)
{
	MDB_txn *txn = NULL;
	int action = SETTLE_BARRIER_RUN;
	int rc;
	int rv;

	if (p->cfg.env == NULL) {
		rv = fn(data, b, NULL, err, errlen);
		return rv == 0 ? 0 : handler_err(rv);
	}
	rc = mdb_txn_begin(p->cfg.env, NULL, 0, &txn);
	if (rc != 0) {
		snprintf(err, errlen, "storage: %s", mdb_strerror(rc));
		return SETTLE_ERETRY;
	}
	rv = settle_barrier_enter(p->barrier, txn, b->gid, b->branch_id, b->op,
				  &action);
	if (rv != 0) {
		snprintf(err, errlen, "barrier: %s", settle_strerror(rv));
		rv = rv == SETTLE_EINVAL ? SETTLE_EINVAL : SETTLE_ERETRY;
		goto err_after_txn;
	}
	switch (action) {
	case SETTLE_BARRIER_REFUSE:
		if (op_refusable(b->op)) {
			snprintf(err, errlen, "%s",
				 b->op == SETTLE_OP_TRY
				     ? "try after cancel"
				     : "action after compensate");
			rv = SETTLE_EREFUSED;
		} else {
			snprintf(err, errlen, "%s: branch already %s",
				 op_name(b->op),
				 b->op == SETTLE_OP_CONFIRM ? "cancelled"
							    : "confirmed");
			rv = SETTLE_EFAILURE;
		}
		goto err_after_txn;
	case SETTLE_BARRIER_SKIP:
		settle_tracef("participant", "%s %s/%u: barrier skip",
			      op_name(b->op), b->gid, b->branch_id);
		break;
	default:
		rv = fn(data, b, txn, err, errlen);
		if (rv != 0) {
			rv = handler_err(rv);
			goto err_after_txn;
		}
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		snprintf(err, errlen, "storage commit: %s", mdb_strerror(rc));
		return SETTLE_ERETRY;
	}
	return 0;

err_after_txn:
	mdb_txn_abort(txn);
	return rv;
}

const struct settle_branch *settle_call_branch(const settle_call *call)
{
	return &call->b;
}

static void call_answer(settle_call *call, int rv, const char *err)
{
	const struct settle_branch *b = &call->b;

	settle_tracef("participant", "%s %s/%u attempt %u: %s", op_name(b->op),
		      b->gid, b->branch_id, b->attempt, settle_errname(rv));
	if (rv == 0)
		rpc_call_reply(call->rpc, NULL);
	else
		rpc_call_fail(call->rpc, rv,
			      err != NULL && err[0] != '\0' ? err : NULL, NULL);
}

static void call_free(settle_call *call, bool was_pending)
{
	settle_participant *p = call->p;

	settle__v1__branch_request__free_unpacked(call->req, NULL);
	free(call);
	if (was_pending) {
		p->pending--;
		maybe_free(p);
	}
}

static void call_complete(settle_call *call, settle_branch_fn fn, void *data,
			  bool was_pending)
{
	settle_participant *p = call->p;
	char err[256] = "";
	int rv;

	if (p->closing) {
		/* The env may be closing with us: write nothing, the caller
		 * retries against the next incarnation. */
		call_answer(call, SETTLE_ERETRY, "participant stopping");
	} else {
		if (fn == NULL) {
			fn = handler_for(p, call->b.op);
			data = p->cfg.data;
		}
		rv = run_call(p, fn, data, &call->b, err, sizeof(err));
		call_answer(call, rv, err);
	}
	call_free(call, was_pending);
}

void settle_call_run(settle_call *call, settle_branch_fn fn, void *data)
{
	if (call != NULL)
		call_complete(call, fn, data, true);
}

void settle_call_fail(settle_call *call, int err, const char *msg)
{
	if (call == NULL)
		return;
	if (err != SETTLE_EFAILURE &&
	    !(err == SETTLE_EREFUSED && op_refusable(call->b.op)))
		err = SETTLE_ERETRY;
	call_answer(call, err, msg);
	call_free(call, true);
}

static void on_call(void *data, struct rpc_call *rpc)
{
	settle_participant *p = data;
	int op = method_op(rpc_call_method(rpc));
	settle_branch_fn fn = handler_for(p, op);
	Settle__V1__BranchRequest *req;
	struct settle_call *call;
	const uint8_t *body;
	size_t len;

	if (op == 0 || fn == NULL) {
		rpc_call_fail(rpc, SETTLE_ENOMETHOD, "unknown method", NULL);
		return;
	}
	if (!caller_may(p, rpc, op))
		return;
	body = rpc_call_body(rpc, &len);
	req = settle__v1__branch_request__unpack(NULL, len, body);
	if (req == NULL) {
		rpc_call_fail(rpc, SETTLE_EINVAL, "undecodable BranchRequest",
			      NULL);
		return;
	}
	if (req->gid == NULL || req->gid[0] == '\0' ||
	    strlen(req->gid) > SETTLE_GID_MAX) {
		rpc_call_fail(rpc, SETTLE_EINVAL, "gid missing or too long",
			      NULL);
		goto err_after_req;
	}
	/* The TM's XID reaches handlers only well formed: one that does not
	 * decode (too long, lengths that do not add up) came from no
	 * coordinator, and a handler must not have to check it. */
	if (req->xid.len > 0) {
		struct xa_xid x;

		if (req->xid.len > SETTLE_XID_WIRE_MAX ||
		    xa_xid_decode(req->xid.data, req->xid.len, &x) != 0) {
			rpc_call_fail(rpc, SETTLE_EINVAL,
				      "xid is not a valid XID wire encoding",
				      NULL);
			goto err_after_req;
		}
	}
	/* A Try its initiator gave up on must not reserve anything: it may
	 * already be cancelled, and past the deadline nobody waits for it. */
	if (op == SETTLE_OP_TRY && req->deadline_ms != 0 &&
	    req->deadline_ms < settle_now_ms()) {
		rpc_call_fail(rpc, SETTLE_EREFUSED, "try after its deadline",
			      NULL);
		goto err_after_req;
	}
	call = calloc(1, sizeof(*call));
	if (call == NULL) {
		rpc_call_fail(rpc, SETTLE_ERETRY, "out of memory", NULL);
		goto err_after_req;
	}
	call->p = p;
	call->rpc = rpc;
	call->req = req;
	call->b.op = op;
	call->b.gid = req->gid;
	call->b.branch_id = req->branch_id;
	call->b.resource = req->resource != NULL ? req->resource : "";
	call->b.payload = req->payload.data;
	call->b.len = req->payload.len;
	call->b.attempt = req->attempt;
	call->b.deadline_ms = req->deadline_ms;
	call->b.xid = req->xid.len > 0 ? req->xid.data : NULL;
	call->b.xid_len = req->xid.len;
	if (p->cfg.on_call_async != NULL) {
		p->pending++;
		p->cfg.on_call_async(p->cfg.data, call);
		return;
	}
	call_complete(call, fn, p->cfg.data, false);
	return;

err_after_req:
	settle__v1__branch_request__free_unpacked(req, NULL);
}

/* ---- Barrier cleanup ---------------------------------------------------- */

static void gc_tick(uv_timer_t *t)
{
	settle_participant *p = t->data;
	uint64_t next = p->cfg.barrier_gc_interval_ms;
	size_t removed = 0;
	MDB_txn *txn;
	int rc;
	int rv;

	/* Small batches: the write txn blocks every call meanwhile. */
	rc = mdb_txn_begin(p->cfg.env, NULL, 0, &txn);
	if (rc != 0) {
		settle_log(SETTLE_LOG_WARN, "participant", "barrier gc: %s",
			   mdb_strerror(rc));
		goto out;
	}
	rv = settle_barrier_gc(p->barrier, txn, p->cfg.barrier_retention_ms,
			       p->cfg.barrier_gc_batch, &removed);
	if (rv != 0) {
		mdb_txn_abort(txn);
		settle_log(SETTLE_LOG_WARN, "participant", "barrier gc: %s",
			   settle_strerror(rv));
		goto out;
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		settle_log(SETTLE_LOG_WARN, "participant",
			   "barrier gc commit: %s", mdb_strerror(rc));
		goto out;
	}
	settle_tracef("participant", "barrier gc: %zu rows removed", removed);
	/* A full batch means more are due: go on at the next iteration. */
	if (removed == p->cfg.barrier_gc_batch)
		next = 0;
out:
	uv_timer_start(t, gc_tick, next, 0);
}

static void on_gc_closed(uv_handle_t *h)
{
	settle_participant *p = h->data;
	p->gc_open = false;
	maybe_free(p);
}

static int gc_start(settle_participant *p, uv_loop_t *loop)
{
	int rv;

	if (p->barrier == NULL ||
	    p->cfg.barrier_retention_ms == SETTLE_BARRIER_KEEP_FOREVER)
		return 0;
	rv = uv_timer_init(loop, &p->gc_timer);
	if (rv != 0)
		return settle_err_from_uv(rv);
	p->gc_timer.data = p;
	p->gc_open = true;
	/* The timer alone must not keep the application's loop alive. */
	uv_unref((uv_handle_t *)&p->gc_timer);
	/* A first pass soon after start catches up after a long stop. */
	uv_timer_start(&p->gc_timer, gc_tick, 0, 0);
	return 0;
}

static void gc_stop(settle_participant *p)
{
	if (p->gc_open && !uv_is_closing((uv_handle_t *)&p->gc_timer))
		uv_close((uv_handle_t *)&p->gc_timer, on_gc_closed);
}

int settle_participant_start(settle_participant *p, uv_loop_t *loop)
{
	struct rpc_opts opts = {0};
	int rv;

	if (p == NULL || loop == NULL || p->server != NULL || p->closing)
		return SETTLE_EINVAL;
	opts.tls = p->tls;
	rv = rpc_server_start(loop, p->listen, &opts, on_call, p, &p->server,
			      p->errmsg, sizeof(p->errmsg));
	if (rv != 0) {
		p->server = NULL;
		return rv;
	}
	p->server_open = true;
	p->loop = loop;
	p->port = rpc_server_port(p->server);
	rv = gc_start(p, loop);
	if (rv != 0) {
		snprintf(p->errmsg, sizeof(p->errmsg), "barrier gc timer: %s",
			 settle_strerror(rv));
		return rv;
	}
	return 0;
}

static void participant_free(settle_participant *p)
{
	settle_barrier_close(p->barrier);
	rpc_tls_free(p->tls);
	free(p->coords);
	free(p->listen);
	free(p);
}

/* "NAME" (a CN, as before the other forms), or one of rpc.h's peer
 * matchers: cn:NAME, fp:HEX, san:NAME. */
static int coord_name_parse(const char *s, struct rpc_peer_match *out)
{
	char cn[RPC_PEER_CN_MAX + 8];

	if (strncmp(s, "cn:", 3) == 0 || strncmp(s, "fp:", 3) == 0 ||
	    strncmp(s, "san:", 4) == 0)
		return rpc_peer_match_parse(s, out);
	if (strlen(s) > RPC_PEER_CN_MAX)
		return -1;
	snprintf(cn, sizeof cn, "cn:%s", s);
	return rpc_peer_match_parse(cn, out);
}

int settle_participant_set_coordinators(settle_participant *p,
					const char *const *names, size_t n)
{
	struct rpc_peer_match *c;

	if (p == NULL || p->tls == NULL || p->server != NULL ||
	    (n > 0 && names == NULL))
		return SETTLE_EINVAL;
	c = n > 0 ? calloc(n, sizeof *c) : NULL;
	if (n > 0 && c == NULL)
		return SETTLE_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (names[i] == NULL ||
		    coord_name_parse(names[i], &c[i]) != 0) {
			free(c);
			return SETTLE_EINVAL;
		}
	free(p->coords);
	p->coords = c;
	p->n_coords = n;
	return 0;
}

/* Phase 2 (all but Try) only from the coordinators' certificates, once
 * they are named. */
static bool caller_may(settle_participant *p, struct rpc_call *rpc, int op)
{
	struct rpc_peer_id id;
	const char *name;
	char msg[200];

	if (p->n_coords == 0 || op == SETTLE_OP_TRY)
		return true;
	rpc_call_peer_id(rpc, &id);
	for (size_t i = 0; i < p->n_coords; i++)
		if (rpc_peer_match_is(&p->coords[i], &id))
			return true;
	name = id.name[0] != '\0' ? id.name : id.fingerprint;
	snprintf(msg, sizeof msg,
		 "%s from certificate '%s': only the coordinators may call it",
		 op_name(op), name);
	rpc_call_fail(rpc, SETTLE_EDENIED, msg, NULL);
	return false;
}

int settle_participant_set_tls(settle_participant *p,
			       const struct settle_tls *tls)
{
	if (p == NULL || tls == NULL || p->server != NULL)
		return SETTLE_EINVAL;
	return client__tls_set(&p->tls, tls, true, p->errmsg,
			       sizeof(p->errmsg));
}

static void on_server_closed(void *data)
{
	settle_participant *p = data;
	p->server_open = false;
	maybe_free(p);
}

/* Stop serving and cleaning, on the loop thread. */
static void participant_stop(settle_participant *p)
{
	p->closing = true;
	if (p->server != NULL) {
		struct rpc_server *s = p->server;
		p->server = NULL;
		rpc_server_close(s, on_server_closed, p);
	}
	gc_stop(p);
}

static void on_stop(uv_async_t *a)
{
	settle_participant *p = a->data;
	participant_stop(p);
	uv_close((uv_handle_t *)&p->stop, NULL);
}

static void thread_main(void *arg)
{
	settle_participant *p = arg;

	p->start_rv = settle_participant_start(p, &p->own_loop);
	uv_sem_post(&p->ready);
	/* On failure the loop still runs: it releases what start made, and
	 * the stop handle keeps it alive until close. */
	uv_run(&p->own_loop, UV_RUN_DEFAULT);
}

int settle_participant_start_thread(settle_participant *p)
{
	int rv;

	if (p == NULL || p->server != NULL || p->threaded || p->closing)
		return SETTLE_EINVAL;
	rv = uv_loop_init(&p->own_loop);
	if (rv != 0)
		return settle_err_from_uv(rv);
	rv = uv_async_init(&p->own_loop, &p->stop, on_stop);
	if (rv != 0)
		goto err_after_loop;
	p->stop.data = p;
	rv = uv_sem_init(&p->ready, 0);
	if (rv != 0)
		goto err_after_async;
	p->threaded = true;
	rv = uv_thread_create(&p->thread, thread_main, p);
	if (rv != 0) {
		p->threaded = false;
		uv_sem_destroy(&p->ready);
		goto err_after_async;
	}
	uv_sem_wait(&p->ready);
	uv_sem_destroy(&p->ready);
	return p->start_rv;

err_after_async:
	uv_close((uv_handle_t *)&p->stop, NULL);
err_after_loop:
	uv_run(&p->own_loop, UV_RUN_DEFAULT);
	uv_loop_close(&p->own_loop);
	return settle_err_from_uv(rv);
}

void settle_participant_close(settle_participant *p)
{
	if (p == NULL)
		return;
	if (p->threaded) {
		uv_async_send(&p->stop);
		uv_thread_join(&p->thread);
		if (uv_loop_close(&p->own_loop) != 0)
			settle_log(SETTLE_LOG_WARN, "participant",
				   "loop closed with handles left open");
		if (p->pending != 0) {
			/* Calls still refer to p: leaking beats a dangling
			 * pointer. */
			settle_log(SETTLE_LOG_ERROR, "participant",
				   "%zu calls never completed", p->pending);
			return;
		}
		participant_free(p);
		return;
	}
	participant_stop(p);
	maybe_free(p);
}

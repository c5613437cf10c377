/*
 * participant.c — the participant SDK: an RPC server answering TRY,
 * CONFIRM and CANCEL with the application's handlers, each run inside the
 * barrier in one LMDB write txn with its business effect.
 */
#include "error.h"

#include "settle_participant.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rpc.h"

struct settle_participant {
	struct settle_participant_config cfg;
	char *listen;
	settle_barrier *barrier;
	struct rpc_server *server;
	uv_loop_t *loop;
	int port;
	char errmsg[256];
	/* Own-thread mode. */
	bool threaded;
	uv_loop_t own_loop;
	uv_thread_t thread;
	uv_async_t stop;
	uv_sem_t ready;
	int start_rv;
};

int settle_participant_init(const struct settle_participant_config *cfg,
			    settle_participant **out)
{
	struct settle_participant *p;
	int rv;

	if (cfg == NULL || out == NULL || cfg->listen == NULL ||
	    cfg->listen[0] == '\0' ||
	    (cfg->on_try == NULL && cfg->on_confirm == NULL &&
	     cfg->on_cancel == NULL))
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

static int method_op(int method)
{
	switch (method) {
	case SETTLE__V1__METHOD__TRY:
		return SETTLE_OP_TRY;
	case SETTLE__V1__METHOD__CONFIRM:
		return SETTLE_OP_CONFIRM;
	case SETTLE__V1__METHOD__CANCEL:
		return SETTLE_OP_CANCEL;
	}
	return 0;
}

static const char *op_name(int op)
{
	return op == SETTLE_OP_TRY	 ? "try"
	       : op == SETTLE_OP_CONFIRM ? "confirm"
					 : "cancel";
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
static int run_call(settle_participant *p, settle_branch_fn fn,
		    const struct settle_branch *b, char *err, size_t errlen)
{
	MDB_txn *txn = NULL;
	int action = SETTLE_BARRIER_RUN;
	int rc;
	int rv;

	if (p->cfg.env == NULL) {
		rv = fn(p->cfg.data, b, NULL, err, errlen);
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
		if (b->op == SETTLE_OP_TRY) {
			snprintf(err, errlen, "try after cancel");
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
		rv = fn(p->cfg.data, b, txn, err, errlen);
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

static void on_call(void *data, struct rpc_call *call)
{
	settle_participant *p = data;
	int op = method_op(rpc_call_method(call));
	settle_branch_fn fn = handler_for(p, op);
	Settle__V1__BranchRequest *req;
	struct settle_branch b;
	const uint8_t *body;
	size_t len;
	char err[256] = "";
	int rv;

	if (op == 0 || fn == NULL) {
		rpc_call_fail(call, SETTLE_ENOMETHOD, "unknown method", NULL);
		return;
	}
	body = rpc_call_body(call, &len);
	req = settle__v1__branch_request__unpack(NULL, len, body);
	if (req == NULL) {
		rpc_call_fail(call, SETTLE_EINVAL, "undecodable BranchRequest",
			      NULL);
		return;
	}
	if (req->gid == NULL || req->gid[0] == '\0' ||
	    strlen(req->gid) > SETTLE_GID_MAX) {
		rpc_call_fail(call, SETTLE_EINVAL, "gid missing or too long",
			      NULL);
		goto out;
	}
	/* A Try its initiator gave up on must not reserve anything: it may
	 * already be cancelled, and past the deadline nobody waits for it. */
	if (op == SETTLE_OP_TRY && req->deadline_ms != 0 &&
	    req->deadline_ms < settle_now_ms()) {
		rpc_call_fail(call, SETTLE_EREFUSED, "try after its deadline",
			      NULL);
		goto out;
	}
	b.op = op;
	b.gid = req->gid;
	b.branch_id = req->branch_id;
	b.resource = req->resource != NULL ? req->resource : "";
	b.payload = req->payload.data;
	b.len = req->payload.len;
	b.attempt = req->attempt;
	b.deadline_ms = req->deadline_ms;
	rv = run_call(p, fn, &b, err, sizeof(err));
	settle_tracef("participant", "%s %s/%u attempt %u: %s", op_name(op),
		      b.gid, b.branch_id, b.attempt, settle_errname(rv));
	if (rv == 0)
		rpc_call_reply(call, NULL);
	else
		rpc_call_fail(call, rv, err[0] != '\0' ? err : NULL, NULL);
out:
	settle__v1__branch_request__free_unpacked(req, NULL);
}

int settle_participant_start(settle_participant *p, uv_loop_t *loop)
{
	int rv;

	if (p == NULL || loop == NULL || p->server != NULL)
		return SETTLE_EINVAL;
	rv = rpc_server_start(loop, p->listen, NULL, on_call, p, &p->server,
			      p->errmsg, sizeof(p->errmsg));
	if (rv != 0) {
		p->server = NULL;
		return rv;
	}
	p->loop = loop;
	p->port = rpc_server_port(p->server);
	return 0;
}

static void participant_free(settle_participant *p)
{
	settle_barrier_close(p->barrier);
	free(p->listen);
	free(p);
}

static void on_server_closed(void *data)
{
	settle_participant *p = data;
	if (!p->threaded)
		participant_free(p);
}

static void on_stop(uv_async_t *a)
{
	settle_participant *p = a->data;
	if (p->server != NULL)
		rpc_server_close(p->server, on_server_closed, p);
	p->server = NULL;
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

	if (p == NULL || p->server != NULL || p->threaded)
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
		participant_free(p);
		return;
	}
	if (p->server != NULL) {
		struct rpc_server *s = p->server;
		p->server = NULL;
		rpc_server_close(s, on_server_closed, p);
		return;
	}
	participant_free(p);
}

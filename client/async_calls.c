/*
 * async_calls.c — the operations of libsettle's asynchronous client
 * (settle_async.h): what each sends, checked as the blocking client checks
 * it, and what it makes of its answer. async.c carries them.
 */
#include "error.h"

#include "settle_async.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "async_int.h"
#include "conn.h"

/* ---- Answers ------------------------------------------------------------- */

/* Start over with another request (a registration after a begin): a
 * fresh budget, attempts and backoff. */
static void op_restart(struct aop *op, int method, const ProtobufCMessage *req)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *body = malloc(len > 0 ? len : 1);

	if (body == NULL) {
		async__op_fail(op, SETTLE_ENOMEM, "%s: %s: out of memory",
			       client__method_name(method), op->gid);
		return;
	}
	protobuf_c_message_pack(req, body);
	free(op->body);
	op->body = body;
	op->len = len;
	op->method = method;
	op->attempts = 0;
	op->follows = 0;
	op->backoff = 10;
	op->budget_end = uv_now(op->a->loop) + op->a->opts.retry_budget_ms;
	async__attempt_or_fail(op);
}

/* Register declared branch op->nreg of op->decl. */
static void register_next(struct aop *op)
{
	Settle__V1__RegisterBranchRequest req =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	const Settle__V1__BranchDecl *d = op->decl->branches[op->nreg];
	uint8_t id[16];

	if (settle_cmd_id(id) != 0) {
		async__op_fail(op, SETTLE_EIO, "register: %s: getrandom failed",
			       op->gid);
		return;
	}
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.gid = op->gid;
	req.endpoint = d->endpoint;
	req.resource = d->resource;
	req.payload = d->payload;
	op_restart(op, SETTLE__V1__METHOD__REGISTER_BRANCH, &req.base);
}

void async__done_register(struct aop *op, const struct rpc_result *res)
{
	struct settle_async_result r = {0};
	Settle__V1__RegisterBranchResponse *g =
	    settle__v1__register_branch_response__unpack(NULL, res->len,
							 res->body);

	if (g == NULL) {
		async__op_fail(op, SETTLE_EPROTO,
			       "register: %s: undecodable response; roll the "
			       "transaction back",
			       op->gid);
		return;
	}
	op->ids[op->nreg++] = g->branch_id;
	settle__v1__register_branch_response__free_unpacked(g, NULL);
	if (op->nreg < op->ndecl) {
		register_next(op);
		return;
	}
	r.branch_ids = op->ids;
	r.n_branch_ids = op->ndecl;
	async__op_finish(op, &r);
}

void async__done_begin(struct aop *op, const struct rpc_result *res)
{
	struct settle_async_result r = {0};
	Settle__V1__BeginResponse *b =
	    settle__v1__begin_response__unpack(NULL, res->len, res->body);
	char msg[512];

	if (b == NULL) {
		async__op_fail(op, SETTLE_EPROTO,
			       "begin: undecodable response");
		return;
	}
	snprintf(op->gid, sizeof(op->gid), "%s", b->gid != NULL ? b->gid : "");
	if (b->n_branch_ids == 0 && op->ndecl > 0) {
		/* A coordinator older than BEGIN with branches, or a cluster
		 * not yet at feature level 2, began it without them. */
		settle__v1__begin_response__free_unpacked(b, NULL);
		op->decl =
		    settle__v1__begin_request__unpack(NULL, op->len, op->body);
		op->ids = calloc(op->ndecl, sizeof(*op->ids));
		if (op->decl == NULL || op->ids == NULL ||
		    op->decl->n_branches != op->ndecl) {
			async__op_fail(
			    op, SETTLE_ENOMEM,
			    "begin: %s: out of memory registering its "
			    "branches; roll the transaction back",
			    op->gid);
			return;
		}
		register_next(op);
		return;
	}
	if (b->n_branch_ids != op->ndecl) {
		snprintf(msg, sizeof(msg),
			 "begin: %s: the coordinator registered %zu of %zu "
			 "declared branches; roll the transaction back",
			 op->gid, b->n_branch_ids, op->ndecl);
		r.err = SETTLE_EPROTO;
		r.errmsg = msg;
	} else {
		r.branch_ids = b->branch_ids;
		r.n_branch_ids = b->n_branch_ids;
	}
	async__op_finish(op, &r);
	settle__v1__begin_response__free_unpacked(b, NULL);
}

void async__done_decide(struct aop *op, const struct rpc_result *res)
{
	struct settle_async_result r = {0};
	Settle__V1__DecisionResponse *d =
	    settle__v1__decision_response__unpack(NULL, res->len, res->body);

	if (d == NULL) {
		async__op_fail(op, SETTLE_EPROTO, "%s: undecodable response",
			       client__method_name(op->method));
		return;
	}
	r.state = (int)d->state;
	r.finished = d->finished;
	r.heuristic = (int)d->heuristic;
	settle__v1__decision_response__free_unpacked(d, NULL);
	async__op_finish(op, &r);
}

void async__done_saga(struct aop *op, const struct rpc_result *res)
{
	struct settle_async_result r = {0};
	Settle__V1__SubmitSagaResponse *s =
	    settle__v1__submit_saga_response__unpack(NULL, res->len, res->body);

	if (s == NULL) {
		async__op_fail(op, SETTLE_EPROTO,
			       "submit saga: undecodable response");
		return;
	}
	snprintf(op->gid, sizeof(op->gid), "%s", s->gid != NULL ? s->gid : "");
	settle__v1__submit_saga_response__free_unpacked(s, NULL);
	async__op_finish(op, &r);
}

void async__done_wait(struct aop *op, const struct rpc_result *res)
{
	struct settle_async_result r = {0};
	Settle__V1__QueryResponse *q =
	    settle__v1__query_response__unpack(NULL, res->len, res->body);
	const Settle__V1__TxInfo *tx = q != NULL ? q->tx : NULL;
	uint64_t now = uv_now(op->a->loop);
	char msg[512];

	if (tx == NULL) {
		if (q != NULL)
			settle__v1__query_response__free_unpacked(q, NULL);
		async__op_fail(
		    op, SETTLE_EPROTO,
		    "wait: undecodable response, or no transaction in "
		    "it");
		return;
	}
	r.state = (int)tx->state;
	if (settle_tx_state_final((int)tx->state)) {
		r.finished = true;
	} else if (tx->failed > 0) {
		client__stuck_text(tx, msg, sizeof(msg));
		r.err = SETTLE_ESTATE;
		r.errmsg = msg;
	} else if (now >= op->wait_end) {
		snprintf(msg, sizeof(msg), "wait: %s not final in time",
			 op->gid);
		r.err = SETTLE_ETIMEOUT;
		r.errmsg = msg;
	} else {
		/* Not yet: ask again at once if the leader held the Query,
		 * else after a pause (a server that answers at once). */
		uint32_t slice = op->wait_end - op->asked > WAIT_SLICE_MS
				     ? WAIT_SLICE_MS
				     : (uint32_t)(op->wait_end - op->asked);
		uint32_t pause = op->wait_poll;

		settle__v1__query_response__free_unpacked(q, NULL);
		op->attempts = 0;
		op->backoff = 10;
		op->budget_end = now + op->a->opts.retry_budget_ms;
		if (now - op->asked >= slice / 2) {
			async__attempt_or_fail(op);
			return;
		}
		if (pause > op->wait_end - now)
			pause = (uint32_t)(op->wait_end - now);
		op->wait_poll = op->wait_poll * 2 > WAIT_POLL_MAX_MS
				    ? WAIT_POLL_MAX_MS
				    : op->wait_poll * 2;
		async__op_sleep(op, pause);
		return;
	}
	async__op_finish(op, &r);
	settle__v1__query_response__free_unpacked(q, NULL);
}

/* ---- Typed calls --------------------------------------------------------- */

/* 0 if a can take an operation with callback cb, else the code to refuse
 * it with. */
static int usable(struct settle_async *a, settle_async_cb cb)
{
	if (a == NULL)
		return SETTLE_EINVAL;
	if (a->closing) {
		async__refuse(a, "the handle is closing");
		return SETTLE_ECANCELED;
	}
	if (cb == NULL) {
		async__refuse(a, "a callback is required");
		return SETTLE_EINVAL;
	}
	return 0;
}

static int new_cmd_id(struct settle_async *a, const char *op, uint8_t id[16])
{
	int rv = settle_cmd_id(id);

	if (rv != 0)
		async__refuse(a, "%s: getrandom failed", op);
	return rv;
}

int settle_async_begin(settle_async *a, const char *gid, uint32_t timeout_ms,
		       const struct settle_branch_decl *decls, size_t n,
		       settle_async_cb cb, void *data)
{
	Settle__V1__BeginRequest req;
	Settle__V1__BranchDecl *bd = NULL, **bp = NULL;
	struct aop *op;
	uint8_t id[16];
	int rv;

	if ((rv = usable(a, cb)) != 0)
		return rv;
	rv = new_cmd_id(a, "begin", id);
	if (rv != 0)
		return rv;
	rv = client__begin_request(gid, timeout_ms, decls, n, id, &req, &bd,
				   &bp, a->errmsg, sizeof(a->errmsg));
	if (rv != 0)
		return rv;
	rv = async__op_new(a, AOP_BEGIN, SETTLE__V1__METHOD__BEGIN, &req.base,
			   cb, data, &op);
	free(bd);
	free(bp);
	if (rv != 0)
		return rv;
	op->ndecl = n;
	snprintf(op->gid, sizeof(op->gid), "%s", gid != NULL ? gid : "");
	return async__op_start(op);
}

static int decide(settle_async *a, int method, const char *gid,
		  const char *reason, uint32_t wait_ms, settle_async_cb cb,
		  void *data)
{
	Settle__V1__CommitRequest creq = SETTLE__V1__COMMIT_REQUEST__INIT;
	Settle__V1__RollbackRequest rreq = SETTLE__V1__ROLLBACK_REQUEST__INIT;
	const ProtobufCMessage *req;
	const char *name = client__method_name(method);
	struct aop *op;
	uint8_t id[16];
	int rv;

	if ((rv = usable(a, cb)) != 0)
		return rv;
	rv = client__gid_check(name, gid, false, a->errmsg, sizeof(a->errmsg));
	if (rv == 0)
		rv = new_cmd_id(a, name, id);
	if (rv != 0)
		return rv;
	req = client__decide_request(method, gid, reason, false, wait_ms, id,
				     &creq, &rreq);
	rv = async__op_new(a, AOP_DECIDE, method, req, cb, data, &op);
	if (rv != 0)
		return rv;
	op->extra_ms = wait_ms;
	snprintf(op->gid, sizeof(op->gid), "%s", gid);
	return async__op_start(op);
}

int settle_async_commit(settle_async *a, const char *gid, uint32_t wait_ms,
			settle_async_cb cb, void *data)
{
	return decide(a, SETTLE__V1__METHOD__COMMIT, gid, NULL, wait_ms, cb,
		      data);
}

int settle_async_rollback(settle_async *a, const char *gid, const char *reason,
			  uint32_t wait_ms, settle_async_cb cb, void *data)
{
	return decide(a, SETTLE__V1__METHOD__ROLLBACK, gid, reason, wait_ms, cb,
		      data);
}

int settle_async_submit_saga(settle_async *a, const char *gid,
			     const struct settle_saga_opts *opts,
			     const struct settle_saga_step *steps, size_t n,
			     settle_async_cb cb, void *data)
{
	Settle__V1__SubmitSagaRequest req;
	Settle__V1__SagaStep *wire = NULL, **ptrs = NULL;
	struct aop *op;
	uint8_t id[16];
	int rv;

	if ((rv = usable(a, cb)) != 0)
		return rv;
	rv = new_cmd_id(a, "submit saga", id);
	if (rv != 0)
		return rv;
	rv = client__saga_request(gid, opts, steps, n, id, &req, &wire, &ptrs,
				  a->errmsg, sizeof(a->errmsg));
	if (rv != 0)
		return rv;
	rv = async__op_new(a, AOP_SAGA, SETTLE__V1__METHOD__SUBMIT_SAGA,
			   &req.base, cb, data, &op);
	free(ptrs);
	free(wire);
	if (rv != 0)
		return rv;
	snprintf(op->gid, sizeof(op->gid), "%s", gid != NULL ? gid : "");
	return async__op_start(op);
}

int settle_async_wait(settle_async *a, const char *gid, uint32_t wait_ms,
		      settle_async_cb cb, void *data)
{
	struct aop *op;
	int rv;

	if ((rv = usable(a, cb)) != 0)
		return rv;
	rv =
	    client__gid_check("wait", gid, false, a->errmsg, sizeof(a->errmsg));
	if (rv != 0)
		return rv;
	rv = async__op_new(a, AOP_WAIT, SETTLE__V1__METHOD__QUERY, NULL, cb,
			   data, &op);
	if (rv != 0)
		return rv;
	snprintf(op->gid, sizeof(op->gid), "%s", gid);
	op->wait_end = uv_now(a->loop) + wait_ms;
	op->wait_poll = WAIT_POLL_FIRST_MS;
	return async__op_start(op);
}

int settle_async_call(settle_async *a, int method, const ProtobufCMessage *req,
		      settle_async_cb cb, void *data)
{
	struct aop *op;
	int rv;

	if ((rv = usable(a, cb)) != 0)
		return rv;
	rv = async__op_new(a, AOP_CALL, method, req, cb, data, &op);
	if (rv != 0)
		return rv;
	return async__op_start(op);
}

int settle_async_call_at(settle_async *a, const char *endpoint, int method,
			 const ProtobufCMessage *req, settle_async_cb cb,
			 void *data)
{
	struct aop *op;
	int rv;

	if ((rv = usable(a, cb)) != 0)
		return rv;
	if (endpoint == NULL || endpoint[0] == '\0' ||
	    strlen(endpoint) >= CLIENT_ENDPOINT_MAX) {
		async__refuse(a,
			      "call: endpoint is required (at most %d bytes)",
			      CLIENT_ENDPOINT_MAX - 1);
		return SETTLE_EINVAL;
	}
	{
		char host[256], port[16];
		if (client_conn_parse_endpoint(endpoint, host, sizeof(host),
					       port, sizeof(port)) != 0) {
			async__refuse(a, "call: malformed endpoint '%s'",
				      endpoint);
			return SETTLE_EINVAL;
		}
	}
	rv = async__op_new(a, AOP_CALL_AT, method, req, cb, data, &op);
	if (rv != 0)
		return rv;
	snprintf(op->target, sizeof(op->target), "%s", endpoint);
	return async__op_start(op);
}

/*
 * async.c — the asynchronous initiator client (settle_async.h): the
 * blocking client's leader discovery and retries, with every operation an
 * object on the loop instead of a thread waiting in poll().
 *
 * An operation (struct aop) holds its request packed once, so that every
 * attempt sends the same bytes (and the same cmd_id). Attempts go through
 * rpc_client, one per endpoint, kept in a small pool: calls on it are
 * pipelined and coalesced into one write per loop iteration. The target
 * node is shared by the whole handle; a failed attempt moves it only if the
 * target has not moved since the attempt went out (its generation), so a
 * lost connection with 500 calls on it moves the target once, not 500
 * times. Operations waiting for their backoff sit on one list under one
 * timer.
 */
#include "error.h"

#include "settle_async.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "client_int.h"
#include "conn.h"
#include "log.h"
#include "rpc.h"

/* Connections kept to endpoints (nodes and participants). */
#define POOL_MAX 64
/* settle_async_wait(): one Query holds at most this long on the leader,
 * and a server that answers at once is polled from 5 ms up to 250 ms. */
#define WAIT_SLICE_MS	   10000
#define WAIT_POLL_FIRST_MS 5
#define WAIT_POLL_MAX_MS   250

enum aop_kind {
	AOP_BEGIN,
	AOP_DECIDE, /* commit, rollback */
	AOP_SAGA,
	AOP_WAIT,
	AOP_CALL,    /* settle_async_call() */
	AOP_CALL_AT, /* settle_async_call_at(): one attempt */
};

struct pool_ent {
	char ep[CLIENT_ENDPOINT_MAX];
	struct rpc_client *rc;
	size_t inflight; /* attempts whose callback has not run */
	uint64_t used;
};

struct aop {
	struct settle_async *a;
	struct aop *prev, *next; /* a->ops */
	struct aop *snext;	 /* a->sleeping */
	enum aop_kind kind;
	int method;
	uint8_t *body; /* the request, packed once */
	size_t len;
	uint32_t extra_ms;   /* server-side wait inside one attempt */
	uint64_t budget_end; /* uv_now(): no new attempt after this */
	uint64_t due;	     /* sleeping: uv_now() of the next attempt */
	uint32_t backoff;
	unsigned attempts;
	unsigned follows;
	unsigned gen;	     /* a->gen the attempt went out under */
	struct pool_ent *pe; /* where the attempt went */
	size_t ndecl;	     /* begin: branches declared */
	/* begin on a cluster that began without the branches: they are
	 * registered one by one, as the blocking client does. */
	Settle__V1__BeginRequest *decl; /* the request, unpacked again */
	uint32_t *ids;
	size_t nreg;	    /* registered so far */
	uint64_t wait_end;  /* wait: uv_now() of its end */
	uint32_t wait_poll; /* wait: next polling pause */
	uint64_t asked;	    /* wait: uv_now() the Query went out */
	char gid[SETTLE_GID_BUFSIZE];
	char target[CLIENT_ENDPOINT_MAX]; /* call_at */
	settle_async_cb cb;
	void *data;
};

struct settle_async {
	uv_loop_t *loop;
	struct settle_client_opts opts;
	char *eps_buf;
	const char *eps[CLIENT_MAX_ENDPOINTS];
	size_t n_eps;
	size_t cur; /* endpoint tried when there is no hint */
	char hint[CLIENT_ENDPOINT_MAX]; /* the leader, as last named */
	unsigned gen;			/* bumped when the target moves */
	struct pool_ent *pool[POOL_MAX];
	size_t npool;
	uint64_t clock;
	struct aop *ops; /* under way */
	size_t nops;
	struct aop *sleeping; /* waiting for their next attempt */
	uv_timer_t timer;
	bool timer_open;
	bool closing;
	char errmsg[512];
};

static int attempt(struct aop *op, char *why, size_t whylen);
static void attempt_or_fail(struct aop *op);
static void op_free(struct aop *op);

/* ---- Handle ------------------------------------------------------------- */

int settle_async_open(uv_loop_t *loop, const char *endpoints,
		      const struct settle_client_opts *opts, settle_async **out)
{
	struct settle_async *a;
	int rv;

	if (loop == NULL || endpoints == NULL || out == NULL)
		return SETTLE_EINVAL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return SETTLE_ENOMEM;
	rv = client__endpoints(endpoints, &a->eps_buf, a->eps,
			       CLIENT_MAX_ENDPOINTS, &a->n_eps);
	if (rv != 0) {
		free(a);
		return rv;
	}
	if (opts != NULL)
		a->opts = *opts;
	client__opts_defaults(&a->opts);
	a->loop = loop;
	uv_timer_init(loop, &a->timer); /* cannot fail on unix */
	a->timer.data = a;
	a->timer_open = true;
	*out = a;
	return 0;
}

const char *settle_async_errmsg(const settle_async *a)
{
	return a != NULL ? a->errmsg : "";
}

size_t settle_async_pending(const settle_async *a)
{
	return a != NULL ? a->nops : 0;
}

static void refuse(struct settle_async *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void refuse(struct settle_async *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->errmsg, sizeof(a->errmsg), fmt, ap);
	va_end(ap);
}

/* The pooled client for ep in *out, opened if needed: 0, SETTLE_EINVAL (a
 * malformed endpoint), SETTLE_ENOMEM, SETTLE_EUNAVAIL (every pooled
 * endpoint has calls in flight). */
static int pool_get(struct settle_async *a, const char *ep,
		    struct pool_ent **out)
{
	struct pool_ent *pe = NULL;
	size_t i, lru = POOL_MAX;
	int rv;

	for (i = 0; i < a->npool; i++) {
		if (strcmp(a->pool[i]->ep, ep) == 0) {
			pe = a->pool[i];
			goto out;
		}
		if (a->pool[i]->inflight == 0 &&
		    (lru == POOL_MAX || a->pool[i]->used < a->pool[lru]->used))
			lru = i;
	}
	if (a->npool == POOL_MAX) {
		if (lru == POOL_MAX)
			return SETTLE_EUNAVAIL;
		/* Idle: closing it cancels nothing. */
		rpc_client_close(a->pool[lru]->rc);
		free(a->pool[lru]);
		a->pool[lru] = a->pool[--a->npool];
	}
	pe = calloc(1, sizeof(*pe));
	if (pe == NULL)
		return SETTLE_ENOMEM;
	snprintf(pe->ep, sizeof(pe->ep), "%s", ep);
	struct rpc_opts ro = {.max_frame = a->opts.max_frame};
	rv = rpc_client_init(a->loop, ep, &ro, &pe->rc);
	if (rv != 0) {
		free(pe);
		return rv;
	}
	a->pool[a->npool++] = pe;
out:
	pe->used = ++a->clock;
	*out = pe;
	return 0;
}

/* ---- Operations ---------------------------------------------------------- */

static struct aop *op_new(struct settle_async *a, enum aop_kind kind,
			  int method, const ProtobufCMessage *req,
			  settle_async_cb cb, void *data)
{
	struct aop *op;
	size_t len = req != NULL ? protobuf_c_message_get_packed_size(req) : 0;

	op = calloc(1, sizeof(*op));
	if (op == NULL)
		return NULL;
	if (len > 0) {
		op->body = malloc(len);
		if (op->body == NULL) {
			free(op);
			return NULL;
		}
		protobuf_c_message_pack(req, op->body);
	}
	op->len = len;
	op->a = a;
	op->kind = kind;
	op->method = method;
	op->cb = cb;
	op->data = data;
	op->backoff = 10;
	return op;
}

/* Start op (taken in every case): 0, or the code it was refused with. */
static int op_start(struct aop *op)
{
	struct settle_async *a = op->a;
	int rv;

	op->budget_end =
	    uv_now(a->loop) + a->opts.retry_budget_ms + op->extra_ms;
	op->next = a->ops;
	if (a->ops != NULL)
		a->ops->prev = op;
	a->ops = op;
	a->nops++;
	a->errmsg[0] = '\0';
	rv = attempt(op, a->errmsg, sizeof(a->errmsg));
	if (rv != 0)
		/* Refused before anything was sent: no callback. */
		op_free(op);
	return rv;
}

static void op_free(struct aop *op)
{
	struct settle_async *a = op->a;

	if (op->prev != NULL)
		op->prev->next = op->next;
	else
		a->ops = op->next;
	if (op->next != NULL)
		op->next->prev = op->prev;
	a->nops--;
	if (op->decl != NULL)
		settle__v1__begin_request__free_unpacked(op->decl, NULL);
	free(op->ids);
	free(op->body);
	free(op);
}

/* Run op's callback with r (err and text filled) and free it. */
static void op_finish(struct aop *op, struct settle_async_result *r)
{
	if (r->errmsg == NULL)
		r->errmsg = "";
	if (r->gid == NULL)
		r->gid = op->gid;
	op->cb(op->data, r);
	op_free(op);
}

static void op_fail(struct aop *op, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void op_fail(struct aop *op, int err, const char *fmt, ...)
{
	struct settle_async_result r = {.err = err};
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r.errmsg = msg;
	op_finish(op, &r);
}

/* ---- Sleeping: backoff and polling -------------------------------------- */

static void timer_arm(struct settle_async *a);

static void timer_cb(uv_timer_t *t)
{
	struct settle_async *a = t->data;
	uint64_t now = uv_now(a->loop);
	struct aop **pp = &a->sleeping, *ready = NULL;

	/* Take the due ones first: an attempt may put one back. */
	while (*pp != NULL) {
		struct aop *op = *pp;
		if (op->due <= now) {
			*pp = op->snext;
			op->snext = ready;
			ready = op;
		} else {
			pp = &op->snext;
		}
	}
	while (ready != NULL) {
		struct aop *op = ready;
		ready = op->snext;
		op->snext = NULL;
		attempt_or_fail(op);
	}
	timer_arm(a);
}

static void timer_arm(struct settle_async *a)
{
	uint64_t first = UINT64_MAX, now = uv_now(a->loop);

	if (a->closing)
		return;
	for (struct aop *op = a->sleeping; op != NULL; op = op->snext)
		if (op->due < first)
			first = op->due;
	if (first == UINT64_MAX)
		uv_timer_stop(&a->timer);
	else
		uv_timer_start(&a->timer, timer_cb,
			       first > now ? first - now : 0, 0);
}

static void op_sleep(struct aop *op, uint32_t ms)
{
	struct settle_async *a = op->a;

	op->due = uv_now(a->loop) + ms;
	op->snext = a->sleeping;
	a->sleeping = op;
	timer_arm(a);
}

/* ---- Attempts ------------------------------------------------------------ */

static void on_reply(void *data, const struct rpc_result *res);

/* The endpoint the handle sends to now. */
static const char *target(const struct settle_async *a)
{
	return a->hint[0] != '\0' ? a->hint : a->eps[a->cur];
}

/* Send op's next attempt: 0, or the code and text of why it could not
 * go (op untouched otherwise). */
static int attempt(struct aop *op, char *why, size_t whylen)
{
	struct settle_async *a = op->a;
	const char *ep = op->kind == AOP_CALL_AT ? op->target : target(a);
	uint32_t timeout = a->opts.call_timeout_ms + op->extra_ms;
	const char *name = client__method_name(op->method);
	int rv;

	op->attempts++;
	op->gen = a->gen;
	rv = pool_get(a, ep, &op->pe);
	if (rv != 0) {
		snprintf(why, whylen, "%s: %s: %s", name, ep,
			 rv == SETTLE_EUNAVAIL
			     ? "no connection: every pooled endpoint is busy"
			     : settle_strerror(rv));
		return rv;
	}
	if (op->kind == AOP_WAIT) {
		/* Each Query asks the leader to hold it until the end of the
		 * wait, a slice at a time. */
		Settle__V1__QueryRequest q = SETTLE__V1__QUERY_REQUEST__INIT;
		uint64_t now = uv_now(a->loop);
		uint64_t left = op->wait_end > now ? op->wait_end - now : 0;
		uint8_t buf[SETTLE_GID_BUFSIZE + 32];

		q.gid = op->gid;
		q.wait_ms =
		    left > WAIT_SLICE_MS ? WAIT_SLICE_MS : (uint32_t)left;
		op->asked = now;
		timeout += q.wait_ms;
		rv = rpc_client_call_body(
		    op->pe->rc, op->method, buf,
		    settle__v1__query_request__pack(&q, buf), timeout, on_reply,
		    op);
	} else {
		rv = rpc_client_call_body(op->pe->rc, op->method, op->body,
					  op->len, timeout, on_reply, op);
	}
	if (rv != 0) {
		snprintf(why, whylen, "%s: %s: %s", name, ep,
			 settle_strerror(rv));
		return rv;
	}
	op->pe->inflight++;
	return 0;
}

/* A later attempt (after a reply or a pause): its failure ends op. */
static void attempt_or_fail(struct aop *op)
{
	char why[512];
	int rv = attempt(op, why, sizeof(why));

	if (rv != 0)
		op_fail(op, rv, "%s", why);
}

/*
 * A transient failure of op's attempt: move the target as the blocking
 * client does (a fresh hint at once, else down the list) if no other
 * attempt moved it already, then try again after the backoff, or give up
 * once the budget is spent.
 */
static void retry(struct aop *op, const struct rpc_result *res)
{
	struct settle_async *a = op->a;
	const char *sent = op->pe->ep;
	uint64_t now = uv_now(a->loop);
	uint32_t jitter = 0, pause;

	settle_tracef("client", "%s attempt %u on %s: %s",
		      client__method_name(op->method), op->attempts, sent,
		      settle_errname(res->err));
	if (op->gen != a->gen) {
		/* The target moved while this attempt was out: go there. */
		attempt_or_fail(op);
		return;
	}
	a->gen++;
	if (res->err == SETTLE_ENOTLEADER && res->leader[0] != '\0' &&
	    strcmp(res->leader, sent) != 0 &&
	    strlen(res->leader) < sizeof(a->hint) &&
	    op->follows < CLIENT_MAX_FOLLOWS) {
		op->follows++;
		snprintf(a->hint, sizeof(a->hint), "%s", res->leader);
		attempt_or_fail(op);
		return;
	}
	op->follows = 0;
	if (a->hint[0] != '\0')
		a->hint[0] = '\0';
	else
		a->cur = (a->cur + 1) % a->n_eps;
	if (res->err == SETTLE_ENOTLEADER && res->leader[0] != '\0' &&
	    strlen(res->leader) < sizeof(a->hint))
		snprintf(a->hint, sizeof(a->hint), "%s", res->leader);
	if (now + op->backoff >= op->budget_end) {
		op_fail(op, res->err, "%s: %s: %s (gave up after %u attempts)",
			client__method_name(op->method), sent,
			res->msg[0] ? res->msg : settle_strerror(res->err),
			op->attempts);
		return;
	}
	/* Jitter keeps many operations from retrying in lockstep. */
	if (getrandom(&jitter, sizeof(jitter), GRND_NONBLOCK) < 0)
		jitter = 0;
	pause = op->backoff / 2 + jitter % (op->backoff / 2 + 1);
	op->backoff = op->backoff * 2 > a->opts.backoff_max_ms
			  ? a->opts.backoff_max_ms
			  : op->backoff * 2;
	op_sleep(op, pause);
}

/* Start over with another request (a registration after a begin): a
 * fresh budget, attempts and backoff. */
static void op_restart(struct aop *op, int method, const ProtobufCMessage *req)
{
	size_t len = protobuf_c_message_get_packed_size(req);
	uint8_t *body = malloc(len > 0 ? len : 1);

	if (body == NULL) {
		op_fail(op, SETTLE_ENOMEM, "%s: %s: out of memory",
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
	attempt_or_fail(op);
}

/* Register declared branch op->nreg of op->decl. */
static void register_next(struct aop *op)
{
	Settle__V1__RegisterBranchRequest req =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	const Settle__V1__BranchDecl *d = op->decl->branches[op->nreg];
	uint8_t id[16];

	if (settle_cmd_id(id) != 0) {
		op_fail(op, SETTLE_EIO, "register: %s: getrandom failed",
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

static void done_register(struct aop *op, const struct rpc_result *res)
{
	struct settle_async_result r = {0};
	Settle__V1__RegisterBranchResponse *g =
	    settle__v1__register_branch_response__unpack(NULL, res->len,
							 res->body);

	if (g == NULL) {
		op_fail(op, SETTLE_EPROTO,
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
	op_finish(op, &r);
}

static void done_begin(struct aop *op, const struct rpc_result *res)
{
	struct settle_async_result r = {0};
	Settle__V1__BeginResponse *b =
	    settle__v1__begin_response__unpack(NULL, res->len, res->body);
	char msg[512];

	if (b == NULL) {
		op_fail(op, SETTLE_EPROTO, "begin: undecodable response");
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
			op_fail(op, SETTLE_ENOMEM,
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
	op_finish(op, &r);
	settle__v1__begin_response__free_unpacked(b, NULL);
}

static void done_decide(struct aop *op, const struct rpc_result *res)
{
	struct settle_async_result r = {0};
	Settle__V1__DecisionResponse *d =
	    settle__v1__decision_response__unpack(NULL, res->len, res->body);

	if (d == NULL) {
		op_fail(op, SETTLE_EPROTO, "%s: undecodable response",
			client__method_name(op->method));
		return;
	}
	r.state = (int)d->state;
	r.finished = d->finished;
	r.heuristic = (int)d->heuristic;
	settle__v1__decision_response__free_unpacked(d, NULL);
	op_finish(op, &r);
}

static void done_saga(struct aop *op, const struct rpc_result *res)
{
	struct settle_async_result r = {0};
	Settle__V1__SubmitSagaResponse *s =
	    settle__v1__submit_saga_response__unpack(NULL, res->len, res->body);

	if (s == NULL) {
		op_fail(op, SETTLE_EPROTO, "submit saga: undecodable response");
		return;
	}
	snprintf(op->gid, sizeof(op->gid), "%s", s->gid != NULL ? s->gid : "");
	settle__v1__submit_saga_response__free_unpacked(s, NULL);
	op_finish(op, &r);
}

static void done_wait(struct aop *op, const struct rpc_result *res)
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
		op_fail(op, SETTLE_EPROTO,
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
			attempt_or_fail(op);
			return;
		}
		if (pause > op->wait_end - now)
			pause = (uint32_t)(op->wait_end - now);
		op->wait_poll = op->wait_poll * 2 > WAIT_POLL_MAX_MS
				    ? WAIT_POLL_MAX_MS
				    : op->wait_poll * 2;
		op_sleep(op, pause);
		return;
	}
	op_finish(op, &r);
	settle__v1__query_response__free_unpacked(q, NULL);
}

static void on_reply(void *data, const struct rpc_result *res)
{
	struct aop *op = data;
	struct settle_async *a = op->a;

	op->pe->inflight--;
	if (res->err != 0) {
		if (op->kind != AOP_CALL_AT && client__transient(res->err) &&
		    !a->closing) {
			retry(op, res);
			return;
		}
		if (res->err == SETTLE_ECANCELED)
			op_fail(op, res->err, "%s: canceled",
				client__method_name(op->method));
		else
			op_fail(op, res->err, "%s: %s: %s",
				client__method_name(op->method),
				client__wire_name(res->err),
				res->msg[0] ? res->msg
					    : settle_strerror(res->err));
		return;
	}
	switch (op->kind) {
	case AOP_BEGIN:
		if (op->method == SETTLE__V1__METHOD__REGISTER_BRANCH)
			done_register(op, res);
		else
			done_begin(op, res);
		return;
	case AOP_DECIDE:
		done_decide(op, res);
		return;
	case AOP_SAGA:
		done_saga(op, res);
		return;
	case AOP_WAIT:
		done_wait(op, res);
		return;
	case AOP_CALL:
	case AOP_CALL_AT: {
		struct settle_async_result r = {.body = res->body,
						.len = res->len};
		op_finish(op, &r);
		return;
	}
	}
}

/* ---- Close --------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
	struct settle_async *a = h->data;

	free(a->eps_buf);
	free(a);
}

void settle_async_close(settle_async *a)
{
	if (a == NULL || a->closing)
		return;
	a->closing = true;
	/* Attempts out: rpc_client_close fails them (ECANCELED, not
	 * retried now), which finishes their operations. */
	for (size_t i = 0; i < a->npool; i++) {
		rpc_client_close(a->pool[i]->rc);
		free(a->pool[i]);
	}
	a->npool = 0;
	while (a->sleeping != NULL) {
		struct aop *op = a->sleeping;
		a->sleeping = op->snext;
		op_fail(op, SETTLE_ECANCELED, "%s: canceled",
			client__method_name(op->method));
	}
	uv_close((uv_handle_t *)&a->timer, on_timer_closed);
}

/* ---- Typed calls --------------------------------------------------------- */

/* 0 if a can take an operation with callback cb, else the code to refuse
 * it with. */
static int usable(struct settle_async *a, settle_async_cb cb)
{
	if (a == NULL)
		return SETTLE_EINVAL;
	if (a->closing) {
		refuse(a, "the handle is closing");
		return SETTLE_ECANCELED;
	}
	if (cb == NULL) {
		refuse(a, "a callback is required");
		return SETTLE_EINVAL;
	}
	return 0;
}

static int new_cmd_id(struct settle_async *a, const char *op, uint8_t id[16])
{
	int rv = settle_cmd_id(id);

	if (rv != 0)
		refuse(a, "%s: getrandom failed", op);
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
	op = op_new(a, AOP_BEGIN, SETTLE__V1__METHOD__BEGIN, &req.base, cb,
		    data);
	free(bd);
	free(bp);
	if (op == NULL)
		return SETTLE_ENOMEM;
	op->ndecl = n;
	snprintf(op->gid, sizeof(op->gid), "%s", gid != NULL ? gid : "");
	return op_start(op);
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
	op = op_new(a, AOP_DECIDE, method, req, cb, data);
	if (op == NULL)
		return SETTLE_ENOMEM;
	op->extra_ms = wait_ms;
	snprintf(op->gid, sizeof(op->gid), "%s", gid);
	return op_start(op);
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
	op = op_new(a, AOP_SAGA, SETTLE__V1__METHOD__SUBMIT_SAGA, &req.base, cb,
		    data);
	free(ptrs);
	free(wire);
	if (op == NULL)
		return SETTLE_ENOMEM;
	snprintf(op->gid, sizeof(op->gid), "%s", gid != NULL ? gid : "");
	return op_start(op);
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
	op = op_new(a, AOP_WAIT, SETTLE__V1__METHOD__QUERY, NULL, cb, data);
	if (op == NULL)
		return SETTLE_ENOMEM;
	snprintf(op->gid, sizeof(op->gid), "%s", gid);
	op->wait_end = uv_now(a->loop) + wait_ms;
	op->wait_poll = WAIT_POLL_FIRST_MS;
	return op_start(op);
}

int settle_async_call(settle_async *a, int method, const ProtobufCMessage *req,
		      settle_async_cb cb, void *data)
{
	struct aop *op;
	int rv;

	if ((rv = usable(a, cb)) != 0)
		return rv;
	op = op_new(a, AOP_CALL, method, req, cb, data);
	if (op == NULL)
		return SETTLE_ENOMEM;
	return op_start(op);
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
		refuse(a, "call: endpoint is required (at most %d bytes)",
		       CLIENT_ENDPOINT_MAX - 1);
		return SETTLE_EINVAL;
	}
	{
		char host[256], port[16];
		if (client_conn_parse_endpoint(endpoint, host, sizeof(host),
					       port, sizeof(port)) != 0) {
			refuse(a, "call: malformed endpoint '%s'", endpoint);
			return SETTLE_EINVAL;
		}
	}
	op = op_new(a, AOP_CALL_AT, method, req, cb, data);
	if (op == NULL)
		return SETTLE_ENOMEM;
	snprintf(op->target, sizeof(op->target), "%s", endpoint);
	return op_start(op);
}

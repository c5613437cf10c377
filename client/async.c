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
 * timer. What each operation sends and makes of its answer is in
 * async_calls.c; this file is how an operation travels.
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

#include "async_int.h"
#include "tls.h"

static int attempt(struct aop *op, char *why, size_t whylen);
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

void async__refuse(struct settle_async *a, const char *fmt, ...)
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
	struct rpc_opts ro = {.max_frame = a->opts.max_frame, .tls = a->tls};
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

int async__op_new(struct settle_async *a, enum aop_kind kind, int method,
		  const ProtobufCMessage *req, settle_async_cb cb, void *data,
		  struct aop **out)
{
	struct aop *op = calloc(1, sizeof(*op));
	int rv;

	if (op == NULL)
		return SETTLE_ENOMEM;
	rv = rpc_body_pack(req, a->opts.max_frame, &op->body, &op->len);
	if (rv != 0) {
		async__refuse(a, "%s: %s", client__method_name(method),
			      settle_strerror(rv));
		free(op);
		return rv;
	}
	op->a = a;
	op->kind = kind;
	op->method = method;
	op->cb = cb;
	op->data = data;
	op->backoff = 10;
	*out = op;
	return 0;
}

/* Start op (taken in every case): 0, or the code it was refused with. */
int async__op_start(struct aop *op)
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
void async__op_finish(struct aop *op, struct settle_async_result *r)
{
	if (r->errmsg == NULL)
		r->errmsg = "";
	if (r->gid == NULL)
		r->gid = op->gid;
	op->cb(op->data, r);
	op_free(op);
}

void async__op_fail(struct aop *op, int err, const char *fmt, ...)
{
	struct settle_async_result r = {.err = err};
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r.errmsg = msg;
	async__op_finish(op, &r);
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
		if (op->retrying) {
			op->retrying = false;
			a->nretrying--;
		}
		async__attempt_or_fail(op);
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

void async__op_sleep(struct aop *op, uint32_t ms)
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
		q.brief = true; /* the state is what a wait needs */
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
void async__attempt_or_fail(struct aop *op)
{
	char why[512];
	int rv = attempt(op, why, sizeof(why));

	if (rv != 0)
		async__op_fail(op, rv, "%s", why);
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
		async__attempt_or_fail(op);
		return;
	}
	a->gen++;
	if (res->err == SETTLE_ENOTLEADER && res->leader[0] != '\0' &&
	    strcmp(res->leader, sent) != 0 &&
	    strlen(res->leader) < sizeof(a->hint) &&
	    op->follows < CLIENT_MAX_FOLLOWS) {
		op->follows++;
		snprintf(a->hint, sizeof(a->hint), "%s", res->leader);
		async__attempt_or_fail(op);
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
		async__op_fail(
		    op, res->err, "%s: %s: %s (gave up after %u attempts)",
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
	op->retrying = true;
	a->nretrying++;
	async__op_sleep(op, pause);
}

/*
 * An answer came from the target: operations sleeping in a retry's
 * backoff (a lost leader, an election) go now rather than at the end of
 * their pauses, up to 500 ms each, so a failover costs them the election
 * and not the election plus a backoff.
 */
static void wake_retries(struct settle_async *a)
{
	uint64_t now = uv_now(a->loop);

	/* Woken ones are no longer counted: later answers of this turn do
	 * not walk the list again. */
	for (struct aop *op = a->sleeping; op != NULL; op = op->snext)
		if (op->retrying) {
			op->retrying = false;
			a->nretrying--;
			op->due = now;
		}
	timer_arm(a);
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
		if (op->kind == AOP_CALL_AT && res->err == SETTLE_ECLOSED &&
		    op->attempts == 1 && !a->closing) {
			/* The participant closed the connection with the call
			 * on it (a restart, a lost reply): once more on a new
			 * one, as the blocking client does. Every participant
			 * method is safe to repeat (the barrier). */
			async__attempt_or_fail(op);
			return;
		}
		if (res->err == SETTLE_ECANCELED)
			async__op_fail(op, res->err, "%s: canceled",
				       client__method_name(op->method));
		else
			async__op_fail(op, res->err, "%s: %s: %s",
				       client__method_name(op->method),
				       client__wire_name(res->err),
				       res->msg[0] ? res->msg
						   : settle_strerror(res->err));
		return;
	}
	if (a->nretrying > 0 && op->kind != AOP_CALL_AT && op->gen == a->gen)
		wake_retries(a);
	switch (op->kind) {
	case AOP_BEGIN:
		if (op->method == SETTLE__V1__METHOD__REGISTER_BRANCH)
			async__done_register(op, res);
		else
			async__done_begin(op, res);
		return;
	case AOP_DECIDE:
		async__done_decide(op, res);
		return;
	case AOP_SAGA:
		async__done_saga(op, res);
		return;
	case AOP_WAIT:
		async__done_wait(op, res);
		return;
	case AOP_CALL:
	case AOP_CALL_AT: {
		struct settle_async_result r = {.body = res->body,
						.len = res->len};
		async__op_finish(op, &r);
		return;
	}
	}
}

/* ---- Close --------------------------------------------------------------- */

static void on_timer_closed(uv_handle_t *h)
{
	struct settle_async *a = h->data;

	free(a->eps_buf);
	rpc_tls_free(a->tls);
	free(a);
}

int settle_async_set_tls(settle_async *a, const struct settle_tls *tls)
{
	if (a == NULL || tls == NULL || a->closing || a->npool > 0) {
		if (a != NULL)
			snprintf(a->errmsg, sizeof(a->errmsg),
				 "set_tls: only before the first operation");
		return SETTLE_EINVAL;
	}
	return client__tls_set(&a->tls, tls, false, a->errmsg,
			       sizeof(a->errmsg));
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
		async__op_fail(op, SETTLE_ECANCELED, "%s: canceled",
			       client__method_name(op->method));
	}
	uv_close((uv_handle_t *)&a->timer, on_timer_closed);
}

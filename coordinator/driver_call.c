/*
 * driver_call.c — the phase-2 driver's calls: to participants (Confirm,
 * Cancel; a saga step's Action and Compensate) over a kept rpc_client per
 * endpoint, and what their answers become: a result recorded through raft,
 * batched per turn of the loop (see driver.c for when to call and the
 * in-flight set that keeps one call per branch).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "coordinator/driver_int.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "propose.h"
#include "wal/entry.h"

/* Answers in one CmdResults (at most WAL_RESULTS_MAX). */
#define RESULTS_PER_CMD 256

/* ---- Participants -------------------------------------------------------- */

static struct participant *participant_find(struct coord_driver *d,
					    const char *endpoint)
{
	for (struct participant *p = d->participants; p != NULL; p = p->next)
		if (strcmp(rpc_client_endpoint(p->client), endpoint) == 0)
			return p;
	return NULL;
}

static struct participant *participant_get(struct coord_driver *d,
					   const char *endpoint)
{
	struct participant *p = participant_find(d, endpoint);

	if (p != NULL)
		return p;
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return NULL;
	if (rpc_client_init(d->c->loop, endpoint, &d->c->client_opts,
			    &p->client) != 0) {
		free(p);
		return NULL;
	}
	p->metrics_slot = coord_metrics_endpoint(&d->c->metrics, endpoint);
	p->next = d->participants;
	d->participants = p;
	return p;
}

static struct coord_breaker_cfg breaker_cfg(const struct coord_config *cfg)
{
	struct coord_breaker_cfg b = {
	    .failures = cfg->breaker_failures,
	    .pause_ms = cfg->breaker_pause_ms,
	    .max_pause_ms = cfg->retry_max_ms,
	};

	return b;
}

/* Tell o's endpoint's breaker how its call ended. */
static void breaker_result(struct op *o, bool answered)
{
	struct coord *c = o->d->c;
	struct participant *p = participant_find(o->d, o->endpoint);
	struct coord_breaker_cfg cfg = breaker_cfg(&c->cfg);
	int moved;

	if (p == NULL)
		return; /* closed meanwhile (a TLS reload): a new breaker */
	moved =
	    coord_breaker_result(&p->breaker, &cfg, answered, uv_now(c->loop));
	coord_metrics_breaker(&c->metrics, p->metrics_slot, p->breaker.state,
			      moved == COORD_BREAKER_OPENED);
	if (moved == COORD_BREAKER_OPENED)
		settle_log(
		    SETTLE_LOG_WARN, "driver",
		    "participant %s: %u calls in a row unanswered, "
		    "circuit open for %llu ms (its branches wait)",
		    o->endpoint, p->breaker.fails,
		    (unsigned long long)coord_breaker_pause(&p->breaker, &cfg));
	else if (moved == COORD_BREAKER_CLOSED_AGAIN)
		settle_log(SETTLE_LOG_INFO, "driver",
			   "participant %s answers again: circuit closed",
			   o->endpoint);
}

/* Whether the participant answered (anything it said, RETRY too), as
 * opposed to no answer: a timeout, a connection refused or lost, a TLS
 * handshake that failed. */
static bool answered(int err)
{
	return err != SETTLE_ETIMEOUT && err != SETTLE_ECONNECT &&
	       err != SETTLE_ECLOSED && err != SETTLE_ETLS;
}

/* Past the retry budget (--retry-attempts): a Confirm, Cancel or
 * Compensate that got no answer that often gives up; its branch is FAILED
 * and waits for an operator (tx retry). */
static bool budget_spent(const struct coord *c, const struct op *o)
{
	return c->cfg.retry_attempts != 0 && o->deferred_until == 0 &&
	       o->attempt >= c->cfg.retry_attempts &&
	       !(o->saga && o->phase == SETTLE__V1__SAGA_PHASE__PHASE_ACTION);
}

/*
 * A call that did not succeed and was not refused: RETRY at backoff_at
 * (at the end of the breaker's pause for one put off), or FAILURE once
 * its retry budget is spent; the reason in o->err.
 */
static Settle__V1__Outcome not_done(struct op *o, const struct rpc_result *res,
				    uint64_t backoff_at,
				    uint64_t *next_retry_ms)
{
	const char *sep = res->msg[0] != '\0' ? ": " : "";

	if (budget_spent(o->d->c, o)) {
		snprintf(o->err, sizeof o->err,
			 "retry budget spent: %u attempts, the last %s%s%s",
			 o->attempt, settle_errname(res->err), sep, res->msg);
		return SETTLE__V1__OUTCOME__OUTCOME_FAILURE;
	}
	*next_retry_ms =
	    o->deferred_until != 0 ? o->deferred_until : backoff_at;
	snprintf(o->err, sizeof o->err, "%s%s%s", settle_errname(res->err), sep,
		 res->msg);
	return SETTLE__V1__OUTCOME__OUTCOME_RETRY;
}

/* Count o's call: outcome 0 ok, 1 refused, 2 no answer (metrics.h). */
static void call_counted(struct op *o, int outcome)
{
	uint64_t now = uv_hrtime();

	coord_metrics_call(&o->d->c->metrics, o->metrics_slot, o->metrics_kind,
			   outcome,
			   now > o->sent_ns ? (now - o->sent_ns) / 1000 : 0);
}

void coord_drv_participants_close(struct coord_driver *d)
{
	while (d->participants != NULL) {
		struct participant *p = d->participants;
		d->participants = p->next;
		rpc_client_close(p->client);
		free(p);
	}
}

/* ---- Recording answers --------------------------------------------------- */

void coord_drv_queue_drop(struct coord_driver *d)
{
	for (size_t i = 0; i < d->n_queue; i++)
		free(d->queue[i]);
	d->n_queue = 0;
}

/* A CmdResults: the ops whose answers it carries. */
struct batch {
	struct coord_driver *d;
	uint64_t epoch;
	size_t n;
	struct op *ops[];
};

static void batch_applied(struct coord *c, void *data, int err,
			  const Settle__V1__CmdResult *res)
{
	struct batch *b = data;
	struct coord_driver *d = b->d;

	(void)c;
	(void)res;
	if (b->epoch == d->epoch && err != 0)
		settle_log(SETTLE_LOG_WARN, "driver",
			   "recording %zu answers: %s; the scan of `due` "
			   "calls those branches again",
			   b->n, settle_strerror(err));
	for (size_t i = 0; i < b->n; i++) {
		if (b->epoch == d->epoch)
			coord_drv_flight_del(d, b->ops[i]->gid,
					     b->ops[i]->branch_id);
		free(b->ops[i]);
	}
	free(b);
}

/* Propose the queued answers as one CmdResults. */
void coord_drv_queue_flush(struct coord_driver *d)
{
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdResults r = SETTLE__V1__CMD_RESULTS__INIT;
	Settle__V1__CmdBranchResult *br[RESULTS_PER_CMD];
	Settle__V1__CmdStepResult *sr[RESULTS_PER_CMD];
	size_t n = d->n_queue;
	struct batch *b;

	if (n == 0)
		return;
	b = malloc(sizeof *b + n * sizeof b->ops[0]);
	if (b == NULL) {
		/* Their branches stay in phase: the scan calls them again. */
		for (size_t i = 0; i < n; i++)
			coord_drv_flight_del(d, d->queue[i]->gid,
					     d->queue[i]->branch_id);
		coord_drv_queue_drop(d);
		return;
	}
	b->d = d;
	b->epoch = d->epoch;
	b->n = n;
	memcpy(b->ops, d->queue, n * sizeof b->ops[0]);
	d->n_queue = 0;
	for (size_t i = 0; i < n; i++) {
		if (b->ops[i]->saga)
			sr[r.n_steps++] = &b->ops[i]->sr;
		else
			br[r.n_branches++] = &b->ops[i]->br;
	}
	r.branches = br;
	r.steps = sr;
	cmd.time_ms = coord_wall_now(d->c);
	cmd.op_case = SETTLE__V1__COMMAND__OP_RESULTS;
	cmd.results = &r;
	int rv = coord_propose(d->c, &cmd, batch_applied, b);
	if (rv != 0)
		batch_applied(d->c, b, rv, NULL);
}

/* Record o's answer (o->br or o->sr): in the next CmdResults, or below
 * feature level 2 as a command of its own. o is freed once applied. */
static void record_result(struct coord_driver *d, struct op *o)
{
	if (fsm_level(&d->c->fsm) < FSM_LEVEL_BATCH) {
		Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;

		cmd.time_ms = coord_wall_now(d->c);
		if (o->saga) {
			cmd.op_case = SETTLE__V1__COMMAND__OP_STEP_RESULT;
			cmd.step_result = &o->sr;
		} else {
			cmd.op_case = SETTLE__V1__COMMAND__OP_BRANCH_RESULT;
			cmd.branch_result = &o->br;
		}
		coord_drv_propose(d, o, &cmd);
		return;
	}
	if (d->n_queue == d->cap_queue) {
		size_t cap = d->cap_queue != 0 ? d->cap_queue * 2 : 64;
		struct op **q = realloc(d->queue, cap * sizeof *q);

		if (q == NULL) {
			coord_drv_flight_del(d, o->gid, o->branch_id);
			free(o);
			return;
		}
		d->queue = q;
		d->cap_queue = cap;
	}
	d->queue[d->n_queue++] = o;
	if (d->n_queue >= RESULTS_PER_CMD)
		coord_drv_queue_flush(d);
	else
		coord_drv_kick(d);
}

/* A saga step's participant answered (or the call failed). */
static void step_answered(struct op *o, const struct rpc_result *res)
{
	struct coord_driver *d = o->d;
	Settle__V1__CmdStepResult *sr = &o->sr;
	uint64_t now = coord_wall_now(d->c);

	settle__v1__cmd_step_result__init(sr);
	sr->gid = o->gid;
	sr->step = o->branch_id;
	sr->phase = o->phase;
	sr->attempt = o->attempt;
	o->err[0] = '\0';
	if (res->err == 0) {
		sr->outcome = SETTLE__V1__OUTCOME__OUTCOME_OK;
	} else if (res->err == SETTLE_EFAILURE ||
		   (res->err == SETTLE_EREFUSED &&
		    o->phase == SETTLE__V1__SAGA_PHASE__PHASE_ACTION)) {
		/* REFUSED from an Action: its Compensate already ran there,
		 * so the action never took effect. */
		sr->outcome = SETTLE__V1__OUTCOME__OUTCOME_FAILURE;
		snprintf(o->err, sizeof o->err, "%s",
			 res->msg[0] != '\0' ? res->msg : "business failure");
	} else {
		sr->outcome =
		    not_done(o, res,
			     now + coord_drv_backoff_ms(&d->c->cfg, o->attempt,
							o->retry_base_ms,
							o->retry_max_ms),
			     &sr->next_retry_ms);
	}
	sr->error = o->err;
	settle_tracef_tx("driver", o->gid, o->branch_id, "%s attempt %u: %s",
			 o->phase == SETTLE__V1__SAGA_PHASE__PHASE_ACTION
			     ? "action"
			     : "compensate",
			 o->attempt, res->err == 0 ? "ok" : o->err);
	if (sr->outcome == SETTLE__V1__OUTCOME__OUTCOME_OK &&
	    o->phase == SETTLE__V1__SAGA_PHASE__PHASE_ACTION) {
		char gid[WAL_GID_MAX + 1];
		uint32_t step = o->branch_id;

		/* o may be gone once recorded; its result goes first. */
		wal_gid_copy(gid, o->gid);
		record_result(d, o);
		coord_drv_call_early(d, gid, step, now);
		return;
	}
	record_result(d, o);
}

static void participant_answered(void *data, const struct rpc_result *res)
{
	struct op *o = data;
	struct coord_driver *d = o->d;
	Settle__V1__CmdBranchResult *br = &o->br;
	uint64_t now = coord_wall_now(d->c);

	if (o->epoch != d->epoch || !d->active) {
		free(o);
		return;
	}
	/* A refused Action is a failure too (step_answered()). */
	if (o->deferred_until == 0) {
		int outcome =
		    res->err == 0 ? 0
		    : res->err == SETTLE_EFAILURE ||
			    (o->saga && res->err == SETTLE_EREFUSED &&
			     o->phase == SETTLE__V1__SAGA_PHASE__PHASE_ACTION)
			? 1
			: 2;

		call_counted(o, outcome);
		breaker_result(o, answered(res->err));
	}
	if (o->saga) {
		step_answered(o, res);
		return;
	}
	settle__v1__cmd_branch_result__init(br);
	br->gid = o->gid;
	br->branch_id = o->branch_id;
	br->phase = o->phase;
	br->attempt = o->attempt;
	o->err[0] = '\0';
	if (res->err == 0) {
		br->outcome = SETTLE__V1__OUTCOME__OUTCOME_OK;
	} else if (res->err == SETTLE_EFAILURE) {
		br->outcome = SETTLE__V1__OUTCOME__OUTCOME_FAILURE;
		snprintf(o->err, sizeof o->err, "%s",
			 res->msg[0] != '\0' ? res->msg : "business failure");
	} else {
		br->outcome = not_done(
		    o, res,
		    now + coord_drv_backoff_ms(&d->c->cfg, o->attempt, 0, 0),
		    &br->next_retry_ms);
	}
	br->error = o->err;
	settle_tracef_tx("driver", o->gid, o->branch_id, "attempt %u: %s",
			 o->attempt, res->err == 0 ? "ok" : o->err);
	record_result(d, o);
}

/*
 * The op of a call of branch b, or NULL when one of it is in flight
 * already (or no memory: b is retried by a later scan).
 */
static struct op *call_op(struct coord_driver *d,
			  const Settle__V1__BranchRecord *b)
{
	struct op *o;

	if (!coord_drv_flight_add(d, b->gid, b->branch_id))
		return NULL;
	o = coord_drv_op_new(d, b->gid, b->branch_id);
	if (o == NULL)
		coord_drv_flight_del(d, b->gid, b->branch_id);
	return o;
}

/* Send req to the participant at endpoint for o; a call that cannot go
 * is recorded as a failed attempt, so it is retried later. */
static void call_send(struct coord_driver *d, struct op *o,
		      const char *endpoint, int method,
		      const Settle__V1__BranchRequest *req, uint32_t timeout)
{
	struct participant *p = participant_get(d, endpoint);
	struct coord_breaker_cfg cfg = breaker_cfg(&d->c->cfg);
	/* The loop's cached time: breaker pauses are in ms and seconds. */
	uint64_t mono = uv_now(d->c->loop);
	size_t elen = strnlen(endpoint, sizeof o->endpoint - 1);
	int rv;

	/* Not snprintf: this runs for every call. */
	memcpy(o->endpoint, endpoint, elen);
	o->endpoint[elen] = '\0';
	if (p != NULL && !coord_breaker_allow(&p->breaker, &cfg, mono)) {
		/* Open: no call. The branch waits for the end of the pause
		 * and a little more (not all come back at once), without
		 * spending an attempt. */
		uint64_t left = p->breaker.until_ms > mono
				    ? p->breaker.until_ms - mono
				    : cfg.pause_ms;
		struct rpc_result r = {.err = SETTLE_EUNAVAIL,
				       .msg = "not called: circuit open, calls "
					      "in a row unanswered",
				       .leader = ""};

		o->deferred_until = coord_wall_now(d->c) + left +
				    coord_drv_backoff_ms(
					&d->c->cfg, 1, (uint32_t)(left / 4 + 1),
					(uint32_t)(left / 4 + 1));
		o->attempt = o->attempt > 0 ? o->attempt - 1 : 0;
		coord_metrics_deferred(&d->c->metrics, p->metrics_slot);
		participant_answered(o, &r);
		return;
	}
	o->metrics_slot = p != NULL ? p->metrics_slot : COORD_METRICS_ENDPOINTS;
	o->metrics_kind = method == SETTLE__V1__METHOD__CONFIRM	 ? 0
			  : method == SETTLE__V1__METHOD__CANCEL ? 1
			  : method == SETTLE__V1__METHOD__ACTION ? 2
								 : 3;
	o->sent_ns = uv_hrtime();
	rv = p == NULL ? SETTLE_ENOMEM
		       : rpc_client_call(p->client, method, &req->base, timeout,
					 participant_answered, o);

	if (rv != 0) {
		struct rpc_result r = {.err = rv, .msg = "", .leader = ""};
		participant_answered(o, &r);
	}
}

void coord_drv_call_branch(struct coord_driver *d,
			   const Settle__V1__TxRecord *tx,
			   const Settle__V1__BranchRecord *b, int phase,
			   uint64_t now)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	uint32_t timeout = d->c->cfg.call_timeout_ms;
	struct op *o = call_op(d, b);

	if (o == NULL)
		return;
	o->phase = phase;
	o->attempt = b->attempts + 1;
	req.gid = b->gid;
	req.branch_id = b->branch_id;
	req.resource = b->resource;
	req.payload = b->payload;
	req.attempt = o->attempt;
	req.deadline_ms = now + timeout;
	/* A legacy TM's transaction: its participants see its XID. */
	req.xid = tx->xid;
	call_send(d, o, b->endpoint,
		  phase == SETTLE__V1__BRANCH_STATE__CONFIRMING
		      ? SETTLE__V1__METHOD__CONFIRM
		      : SETTLE__V1__METHOD__CANCEL,
		  &req, timeout);
}

/* Call a saga step's ACTION or COMPENSATE (phase is a SagaPhase). */
void coord_drv_call_step(struct coord_driver *d,
			 const Settle__V1__BranchRecord *b, int phase,
			 uint64_t now)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	uint32_t timeout = b->call_timeout_ms != 0 ? b->call_timeout_ms
						   : d->c->cfg.call_timeout_ms;
	bool action = phase == SETTLE__V1__SAGA_PHASE__PHASE_ACTION;
	struct op *o = call_op(d, b);

	if (o == NULL)
		return;
	o->saga = true;
	o->phase = phase;
	o->attempt = b->attempts + 1;
	o->retry_base_ms = b->retry_base_ms;
	o->retry_max_ms = b->retry_max_ms;
	req.gid = b->gid;
	req.branch_id = b->branch_id;
	req.resource = b->name;
	req.payload = action ? b->payload : b->compensate_payload;
	req.attempt = o->attempt;
	req.deadline_ms = now + timeout;
	call_send(d, o, b->endpoint,
		  action ? SETTLE__V1__METHOD__ACTION
			 : SETTLE__V1__METHOD__COMPENSATE,
		  &req, timeout);
}

/* While a saga compensates, an action step still marked ACTING with no
 * call in flight was never (re)called: say so, so the FSM can settle it
 * and go on compensating. */
void coord_drv_step_not_called(struct coord_driver *d,
			       const Settle__V1__BranchRecord *b)
{
	struct rpc_result r = {.err = SETTLE_ECANCELED,
			       .msg = "not called: the saga is compensating",
			       .leader = ""};
	struct op *o = call_op(d, b);

	if (o == NULL)
		return;
	o->saga = true;
	o->phase = SETTLE__V1__SAGA_PHASE__PHASE_ACTION;
	o->attempt = b->attempts;
	o->retry_base_ms = b->retry_base_ms;
	o->retry_max_ms = b->retry_max_ms;
	step_answered(o, &r);
}

/*
 * saga.c — Saga commands of the FSM (semantics in saga.h): validation,
 * CmdSagaBegin, CmdStepResult, CmdDecide on a saga, and an operator's
 * CmdRetry / CmdResolve on a saga (wal/operator.h).
 *
 * Every apply works on shallow copies of all the saga's steps (at most
 * WAL_MAX_BRANCHES), moves them, then writes back those that changed and
 * recomputes the tx's due_ms and pending from them: simple, and the cost
 * is bounded by the step limit.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "wal/entry.h"
#include "wal/fsm_int.h"
#include "wal/saga.h"
#include "wal/sm.h"

#define ST(x) SETTLE__V1__BRANCH_STATE__##x
#define TX(x) SETTLE__V1__TX_STATE__##x

static int bad(char *errmsg, size_t errmsg_len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(char *errmsg, size_t errmsg_len, int err, const char *fmt, ...)
{
	if (errmsg != NULL && errmsg_len > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(errmsg, errmsg_len, fmt, ap);
		va_end(ap);
	}
	return err;
}

#define BAD(err, ...) bad(errmsg, errmsg_len, err, __VA_ARGS__)

int wal_saga_steps_validate(Settle__V1__SagaStep *const *steps, size_t n,
			    bool dag, char *errmsg, size_t errmsg_len)
{
	if (n == 0)
		return BAD(SETTLE_EINVAL, "a saga needs at least one step");
	if (n > WAL_MAX_BRANCHES)
		return BAD(SETTLE_ETOOBIG, "%zu steps: at most %d", n,
			   WAL_MAX_BRANCHES);
	/* seen[d] == i + 1: step i already listed d (duplicates). */
	size_t *seen = calloc(n, sizeof *seen);
	if (seen == NULL)
		return BAD(SETTLE_ENOMEM, "out of memory");
	uint64_t payload = 0;
	int rv = 0;
	for (size_t i = 0; i < n && rv == 0; i++) {
		const Settle__V1__SagaStep *st = steps[i];
		if (st == NULL) {
			rv = BAD(SETTLE_EINVAL, "step %zu missing", i);
			break;
		}
		if (st->name != NULL &&
		    strnlen(st->name, WAL_RESOURCE_MAX + 1) > WAL_RESOURCE_MAX)
			rv = BAD(SETTLE_ETOOBIG,
				 "step %zu: name longer than %d bytes", i,
				 WAL_RESOURCE_MAX);
		else if (wal_endpoint_validate(st->endpoint) != 0)
			rv = BAD(SETTLE_EINVAL,
				 "step %zu: endpoint must be host:port", i);
		else if (st->retry_base_ms != 0 && st->retry_max_ms != 0 &&
			 st->retry_base_ms > st->retry_max_ms)
			rv =
			    BAD(SETTLE_EINVAL,
				"step %zu: retry_base_ms over retry_max_ms", i);
		else if (!dag && st->n_depends_on != 0)
			rv = BAD(SETTLE_EINVAL,
				 "step %zu: depends_on needs a dag saga "
				 "(ordered steps depend on the previous one)",
				 i);
		if (rv != 0)
			break;
		payload += st->action_payload.len + st->compensate_payload.len;
		if (payload > WAL_PAYLOAD_MAX) {
			rv = BAD(SETTLE_ETOOBIG,
				 "payloads of the steps over %u bytes in all",
				 WAL_PAYLOAD_MAX);
			break;
		}
		for (size_t k = 0; k < st->n_depends_on; k++) {
			uint32_t d = st->depends_on[k];
			/* Only earlier steps: no cycle can form. */
			if (d >= i) {
				rv = BAD(SETTLE_EINVAL,
					 "step %zu: depends_on %u must name an "
					 "earlier step",
					 i, d);
				break;
			}
			if (seen[d] == i + 1) {
				rv = BAD(SETTLE_EINVAL,
					 "step %zu: depends_on %u twice", i, d);
				break;
			}
			seen[d] = i + 1;
		}
	}
	free(seen);
	return rv;
}

int wal_saga_begin_validate(const Settle__V1__CmdSagaBegin *c, char *errmsg,
			    size_t errmsg_len)
{
	if (wal_gid_validate(c->gid) != 0)
		return BAD(SETTLE_EINVAL,
			   "gid must be 1..%d printable ASCII characters "
			   "without spaces",
			   WAL_GID_MAX);
	if (c->deadline_ms == 0)
		return BAD(SETTLE_EINVAL, "deadline_ms missing");
	if (strlen(c->owner) > WAL_OWNER_MAX)
		return BAD(SETTLE_EINVAL, "owner longer than %d bytes",
			   WAL_OWNER_MAX);
	if (c->recovery != SETTLE__V1__SAGA_RECOVERY__BACKWARD &&
	    c->recovery != SETTLE__V1__SAGA_RECOVERY__FORWARD)
		return BAD(SETTLE_EINVAL, "unknown recovery %d", c->recovery);
	return wal_saga_steps_validate(c->steps, c->n_steps, c->dag, errmsg,
				       errmsg_len);
}

int wal_step_result_validate(const Settle__V1__CmdStepResult *c, char *errmsg,
			     size_t errmsg_len)
{
	if (wal_gid_validate(c->gid) != 0)
		return BAD(SETTLE_EINVAL,
			   "gid must be 1..%d printable ASCII characters "
			   "without spaces",
			   WAL_GID_MAX);
	if (c->step == 0)
		return BAD(SETTLE_EINVAL, "step missing");
	if (c->phase != SETTLE__V1__SAGA_PHASE__PHASE_ACTION &&
	    c->phase != SETTLE__V1__SAGA_PHASE__PHASE_COMPENSATE)
		return BAD(SETTLE_EINVAL, "phase must be ACTION or COMPENSATE");
	if (c->outcome != SETTLE__V1__OUTCOME__OUTCOME_OK &&
	    c->outcome != SETTLE__V1__OUTCOME__OUTCOME_RETRY &&
	    c->outcome != SETTLE__V1__OUTCOME__OUTCOME_FAILURE)
		return BAD(SETTLE_EINVAL, "unknown outcome %d", c->outcome);
	if (c->error != NULL &&
	    strnlen(c->error, WAL_TEXT_MAX + 1) > WAL_TEXT_MAX)
		return BAD(SETTLE_ETOOBIG, "error longer than %d bytes",
			   WAL_TEXT_MAX);
	return 0;
}

/* The steps of the saga being applied: working copies of a->branches. */
struct saga {
	struct apply *a;
	size_t n;
	Settle__V1__BranchRecord *st; /* shallow copies */
	bool *dirty;
	/* Error texts built during this apply (a step's last_error points
	 * here until it is written). */
	char err[WAL_TEXT_MAX + 64];
	char bad[WAL_GID_MAX + 128]; /* the first illegal move, if any */
	/* A step whose action was given up after max_attempts in this
	 * apply: it may have acted for all we know (SIZE_MAX: none). */
	size_t gave_up;
};

static int saga_load(struct apply *a, struct saga *sg)
{
	memset(sg, 0, sizeof *sg);
	sg->a = a;
	sg->gave_up = SIZE_MAX;
	int rv = store_branches_list_in(a->s, a->txn, a->tx.gid, fsm__rec(a),
					&a->branches, &a->n_branches);
	a->branches_in_arena = true;
	if (rv != 0)
		return fsm__store_fail(a, rv, "list steps");
	sg->n = a->n_branches;
	if (sg->n != a->tx.branches)
		return fsm__fail(a, SETTLE_EINTERNAL,
				 "saga %s counts %u steps, %zu stored",
				 a->tx.gid, a->tx.branches, sg->n);
	sg->st = calloc(sg->n, sizeof *sg->st);
	sg->dirty = calloc(sg->n, sizeof *sg->dirty);
	if (sg->st == NULL || sg->dirty == NULL)
		return fsm__fail(a, SETTLE_ENOMEM, "saga: out of memory");
	for (size_t i = 0; i < sg->n; i++) {
		if (a->branches[i]->branch_id != i + 1)
			return fsm__fail(a, SETTLE_EINTERNAL,
					 "saga %s: step %zu stored as %u",
					 a->tx.gid, i + 1,
					 a->branches[i]->branch_id);
		sg->st[i] = *a->branches[i];
	}
	return 0;
}

static void saga_free(struct saga *sg)
{
	free(sg->st);
	free(sg->dirty);
}

/* A step may move more than once in one apply (ACTING -> ACTION_FAILED
 * -> COMPENSATING): each move is checked here, and the first illegal one
 * fails the apply in saga_flush. */
static void move(struct saga *sg, size_t i, int to)
{
	int from = (int)sg->st[i].state;
	if (!wal_step_can_move(from, to) && sg->bad[0] == 0)
		snprintf(sg->bad, sizeof sg->bad,
			 "illegal step move %s -> %s (gid %s step %zu)",
			 wal_branch_state_name(from), wal_branch_state_name(to),
			 sg->a->tx.gid, i + 1);
	sg->st[i].state = to;
	sg->dirty[i] = true;
}

static const char *step_name(const Settle__V1__BranchRecord *b)
{
	return b->name != NULL ? b->name : "";
}

/* The step's action ended (DONE or ACTION_FAILED): its place in the
 * order of compensation. */
static void end_action(struct saga *sg, size_t i, int to)
{
	Settle__V1__BranchRecord *b = &sg->st[i];
	move(sg, i, to);
	b->completion = sg->a->tx.next_completion++;
	b->completed_ms = sg->a->time;
	b->next_retry_ms = 0;
}

/* RUNNING: PENDING steps whose dependencies are all DONE become ACTING,
 * due now. */
static void unblock(struct saga *sg)
{
	for (size_t i = 0; i < sg->n; i++) {
		Settle__V1__BranchRecord *b = &sg->st[i];
		if (b->state != ST(STEP_PENDING))
			continue;
		bool ready = true;
		for (size_t k = 0; k < b->n_depends_on && ready; k++) {
			uint32_t d = b->depends_on[k];
			ready = d >= 1 && d <= sg->n &&
				sg->st[d - 1].state == ST(STEP_DONE);
		}
		if (ready) {
			move(sg, i, ST(STEP_ACTING));
			b->attempts = 0;
			b->next_retry_ms = sg->a->time;
		}
	}
}

static int finish(struct saga *sg, int final)
{
	Settle__V1__TxRecord *tx = &sg->a->tx;
	tx->state = final;
	tx->finished_ms = sg->a->time;
	tx->due_ms = 0;
	tx->pending = 0;
	if (final == TX(SAGA_COMPENSATED))
		for (size_t i = 0; i < sg->n; i++)
			if (sg->st[i].state == ST(STEP_PENDING))
				move(sg, i, ST(STEP_SKIPPED));
	return fsm__add_event(
	    sg->a, final == TX(SAGA_SUCCEEDED) ? "succeeded" : "compensated", 0,
	    "finished");
}

/* An action that ended and is not compensated yet. */
static bool to_compensate(const Settle__V1__BranchRecord *b)
{
	return b->state == ST(STEP_DONE) || b->state == ST(STEP_ACTION_FAILED);
}

/* Level 9: waits[i] for each step i that a step still to be compensated
 * depends on (one pass over the dependencies); i is compensated after
 * it. A step called early (saga.h) may have ended before the step it
 * depends on. NULL below level 9 (the order of completion alone). */
static int dependents_first(struct saga *sg, bool **waits)
{
	*waits = NULL;
	if (fsm_level(sg->a->f) < FSM_LEVEL_SAGA_EARLY)
		return 0;
	*waits = calloc(sg->n, sizeof **waits);
	if (*waits == NULL)
		return fsm__fail(sg->a, SETTLE_ENOMEM, "saga: out of memory");
	for (size_t k = 0; k < sg->n; k++) {
		const Settle__V1__BranchRecord *b = &sg->st[k];
		if (!to_compensate(b))
			continue;
		for (size_t j = 0; j < b->n_depends_on; j++) {
			uint32_t d = b->depends_on[j];
			if (d >= 1 && d <= sg->n)
				(*waits)[d - 1] = true;
		}
	}
	return 0;
}

/* COMPENSATING: start the next compensation when nothing is in flight,
 * or finish. */
static int advance_compensation(struct saga *sg)
{
	size_t best = sg->n;
	for (size_t i = 0; i < sg->n; i++) {
		int st = (int)sg->st[i].state;
		/* Actions still in flight, a compensation under way, or
		 * one that failed for good: nothing more to start. */
		if (st == ST(STEP_ACTING) || st == ST(STEP_COMPENSATING) ||
		    st == ST(FAILED))
			return 0;
	}
	bool *waits;
	int rv = dependents_first(sg, &waits);
	if (rv != 0)
		return rv;
	for (size_t i = 0; i < sg->n; i++)
		if (to_compensate(&sg->st[i]) && (waits == NULL || !waits[i]) &&
		    (best == sg->n ||
		     sg->st[i].completion > sg->st[best].completion))
			best = i;
	free(waits);
	if (best == sg->n)
		return finish(sg, TX(SAGA_COMPENSATED));
	Settle__V1__BranchRecord *b = &sg->st[best];
	move(sg, best, ST(STEP_COMPENSATING));
	b->attempts = 0;
	/* last_error keeps the action's error for Query until a
	 * compensation call answers otherwise. */
	b->next_retry_ms = sg->a->time;
	return 0;
}

unsigned wal_saga_early_depth(uint32_t level)
{
	return level >= FSM_LEVEL_SAGA_DEEP    ? WAL_SAGA_EARLY_DEPTH
	       : level >= FSM_LEVEL_SAGA_EARLY ? 1
					       : 0;
}

/* Level 9 on: a PENDING step within the early-call depth (saga.h) of
 * DONE or ACTING steps (or of the step given up just now: it may have
 * answered OK to an earlier leader) may have been called early: awaited
 * like an ACTING one, so that it ends and is compensated (a null
 * compensation if it never acted). Depths are read before any moves, in
 * one pass: dependencies name earlier steps. */
static int await_early(struct saga *sg)
{
	unsigned max = wal_saga_early_depth(fsm_level(sg->a->f));
	if (max == 0)
		return 0;
	unsigned *depth = calloc(sg->n, sizeof *depth); /* 0: not awaited */
	if (depth == NULL)
		return fsm__fail(sg->a, SETTLE_ENOMEM, "saga: out of memory");
	for (size_t i = 0; i < sg->n; i++) {
		const Settle__V1__BranchRecord *b = &sg->st[i];
		if (b->state != ST(STEP_PENDING))
			continue;
		unsigned at = 1;
		for (size_t k = 0; k < b->n_depends_on && at != 0; k++) {
			uint32_t d = b->depends_on[k];
			if (d < 1 || d > sg->n) {
				at = 0;
				continue;
			}
			int st = (int)sg->st[d - 1].state;
			if (st == ST(STEP_DONE) || st == ST(STEP_ACTING) ||
			    d - 1 == sg->gave_up)
				continue;
			if (depth[d - 1] == 0)
				at = 0; /* in no reach of an early call */
			else if (depth[d - 1] + 1 > at)
				at = depth[d - 1] + 1;
		}
		depth[i] = at <= max ? at : 0;
	}
	int rv = 0;
	for (size_t i = 0; i < sg->n && rv == 0; i++) {
		if (depth[i] == 0)
			continue;
		move(sg, i, ST(STEP_ACTING));
		sg->st[i].attempts = 0;
		sg->st[i].next_retry_ms = sg->a->time;
		rv = fsm__add_event(sg->a, "action", sg->st[i].branch_id,
				    "awaited: may have been called early");
	}
	free(depth);
	return rv;
}

/* RUNNING -> COMPENSATING. reason is copied. */
static int start_compensation(struct saga *sg, const char *reason)
{
	struct apply *a = sg->a;
	snprintf(a->reason, sizeof a->reason, "%s", reason);
	a->tx.reason = a->reason;
	a->tx.state = TX(SAGA_COMPENSATING);
	/* Steps that may be in flight are awaited: due now, so that the
	 * driver reports each one (its call's result, or "not called"). */
	for (size_t i = 0; i < sg->n; i++)
		if (sg->st[i].state == ST(STEP_ACTING)) {
			sg->st[i].next_retry_ms = a->time;
			sg->dirty[i] = true;
		}
	int rv = fsm__add_event(a, "compensating", 0, "%s", a->reason);
	if (rv == 0)
		rv = await_early(sg);
	if (rv == 0)
		rv = advance_compensation(sg);
	return rv;
}

/* Write the changed steps, recompute due_ms and pending, write the tx. */
static int saga_flush(struct saga *sg, int tx_from)
{
	struct apply *a = sg->a;
	Settle__V1__TxRecord *tx = &a->tx;
	uint64_t due = 0;
	uint32_t pending = 0;
	if (sg->bad[0] != 0)
		return fsm__fail(a, SETTLE_EINTERNAL, "%s", sg->bad);
	for (size_t i = 0; i < sg->n; i++) {
		Settle__V1__BranchRecord *b = &sg->st[i];
		if (sg->dirty[i]) {
			/* Moves were checked one by one in move(). */
			int rv = fsm__write_branch(a, (int)b->state, b);
			if (rv != 0)
				return rv;
		}
		if (b->state == ST(STEP_ACTING) ||
		    b->state == ST(STEP_COMPENSATING)) {
			pending++;
			if (due == 0 || b->next_retry_ms < due)
				due = b->next_retry_ms;
		}
	}
	if (!wal_tx_state_final((int)tx->state)) {
		if (tx->state == TX(SAGA_RUNNING) &&
		    tx->recovery == SETTLE__V1__SAGA_RECOVERY__BACKWARD &&
		    (due == 0 || tx->deadline_ms < due))
			due = tx->deadline_ms;
		tx->due_ms = due;
		tx->pending = pending;
	}
	return fsm__write_tx(a, tx_from);
}

int wal_saga_begin_apply(struct apply *a, const Settle__V1__CmdSagaBegin *c)
{
	Settle__V1__TxRecord *old;
	int rv = store_tx_get(a->s, a->txn, c->gid, &old);
	if (rv == 0) {
		fsm__result_tx(a, old);
		settle__v1__tx_record__free_unpacked(old, NULL);
		a->res.gid = c->gid;
		return fsm__reject(a, SETTLE__V1__CODE__ALREADY_EXISTS,
				   "transaction %s already exists", c->gid);
	}
	if (rv != SETTLE_ENOTFOUND)
		return fsm__store_fail(a, rv, "get tx");
	Settle__V1__TxRecord *tx = &a->tx;
	settle__v1__tx_record__init(tx);
	tx->gid = c->gid;
	tx->mode = SETTLE__V1__TX_MODE__SAGA;
	tx->state = TX(SAGA_RUNNING);
	tx->created_ms = a->time;
	tx->deadline_ms = c->deadline_ms;
	fsm__set_expiry(a, tx, c->timeout_ms);
	tx->owner = c->owner;
	tx->recovery = c->recovery;
	tx->next_event_seq = 1;
	tx->next_completion = 1;
	tx->branches = (uint32_t)c->n_steps;
	tx->next_branch_id = tx->branches + 1;

	uint64_t due = 0;
	uint32_t ready = 0;
	for (size_t i = 0; i < c->n_steps; i++) {
		const Settle__V1__SagaStep *st = c->steps[i];
		Settle__V1__BranchRecord b;
		settle__v1__branch_record__init(&b);
		b.gid = c->gid;
		b.branch_id = (uint32_t)i + 1;
		b.endpoint = st->endpoint;
		b.name = st->name;
		b.payload = st->action_payload;
		b.compensate_payload = st->compensate_payload;
		b.max_attempts = st->max_attempts;
		b.retry_base_ms = st->retry_base_ms;
		b.retry_max_ms = st->retry_max_ms;
		b.call_timeout_ms = st->call_timeout_ms;
		/* Dependencies as branch ids; an ordered step depends on the
		 * one before it. */
		uint32_t prev = (uint32_t)i; /* branch id of step i - 1 */
		uint32_t *deps = NULL;
		if (c->dag && st->n_depends_on > 0) {
			deps = malloc(st->n_depends_on * sizeof *deps);
			if (deps == NULL)
				return fsm__fail(a, SETTLE_ENOMEM,
						 "saga begin: out of memory");
			for (size_t k = 0; k < st->n_depends_on; k++)
				deps[k] = st->depends_on[k] + 1;
			b.n_depends_on = st->n_depends_on;
			b.depends_on = deps;
		} else if (!c->dag && i > 0) {
			b.n_depends_on = 1;
			b.depends_on = &prev;
		}
		if (b.n_depends_on == 0) {
			b.state = ST(STEP_ACTING);
			b.next_retry_ms = a->time;
			due = a->time;
			ready++;
		} else {
			b.state = ST(STEP_PENDING);
		}
		rv = fsm__write_branch(a, ST(BRANCH_STATE_UNSPECIFIED), &b);
		free(deps);
		if (rv != 0)
			return rv;
	}
	tx->pending = ready;
	tx->due_ms = due < c->deadline_ms ? due : c->deadline_ms;
	if (c->recovery == SETTLE__V1__SAGA_RECOVERY__FORWARD)
		tx->due_ms = due;
	rv = fsm__add_event(
	    a, "saga", 0, "%zu steps, %s, %s recovery, deadline %llu",
	    c->n_steps, c->dag ? "dag" : "ordered",
	    c->recovery == SETTLE__V1__SAGA_RECOVERY__FORWARD ? "forward"
							      : "backward",
	    (unsigned long long)c->deadline_ms);
	if (rv != 0)
		return rv;
	return fsm__write_tx(a, TX(TX_STATE_UNSPECIFIED));
}

/* Load the saga named gid into a->tx. 1: rejected, 0: loaded, < 0. */
static int load_saga(struct apply *a, const char *gid)
{
	int rv = fsm__load_tx(a, gid);
	if (rv != 0)
		return rv;
	if (a->tx.mode != SETTLE__V1__TX_MODE__SAGA) {
		fsm__result_tx(a, &a->tx);
		fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
			    "transaction %s is not a saga", gid);
		return 1;
	}
	return 0;
}

static uint32_t max_attempts(const Settle__V1__BranchRecord *b)
{
	return b->max_attempts != 0 ? b->max_attempts
				    : WAL_SAGA_DEFAULT_ATTEMPTS;
}

/* An action result while RUNNING. */
static int action_running(struct saga *sg, size_t i,
			  const Settle__V1__CmdStepResult *c, const char *err)
{
	struct apply *a = sg->a;
	Settle__V1__BranchRecord *b = &sg->st[i];
	bool forward = a->tx.recovery == SETTLE__V1__SAGA_RECOVERY__FORWARD;
	int out = c->outcome;
	int rv;

	if (out == SETTLE__V1__OUTCOME__OUTCOME_OK) {
		end_action(sg, i, ST(STEP_DONE));
		b->last_error = "";
		rv = fsm__add_event(a, "action", b->branch_id, "ok attempt %u",
				    b->attempts);
		if (rv != 0)
			return rv;
		unblock(sg);
		for (size_t k = 0; k < sg->n; k++)
			if (sg->st[k].state != ST(STEP_DONE))
				return 0;
		return finish(sg, TX(SAGA_SUCCEEDED));
	}
	if (out == SETTLE__V1__OUTCOME__OUTCOME_RETRY && !forward &&
	    b->attempts >= max_attempts(b)) {
		snprintf(sg->err, sizeof sg->err,
			 "gave up after %u attempts: %s", b->attempts, err);
		err = sg->err;
		out = SETTLE__V1__OUTCOME__OUTCOME_FAILURE;
		sg->gave_up = i;
	}
	if (out == SETTLE__V1__OUTCOME__OUTCOME_RETRY || forward) {
		b->next_retry_ms =
		    c->next_retry_ms != 0 ? c->next_retry_ms : a->time;
		b->last_error = (char *)err;
		sg->dirty[i] = true;
		return fsm__add_event(
		    a, "action", b->branch_id, "%s attempt %u: %s",
		    out == SETTLE__V1__OUTCOME__OUTCOME_RETRY
			? "retry"
			: "failure, retried (forward recovery)",
		    b->attempts, err);
	}
	end_action(sg, i, ST(STEP_ACTION_FAILED));
	b->last_error = (char *)err;
	rv = fsm__add_event(a, "action", b->branch_id, "failure: %s", err);
	if (rv != 0)
		return rv;
	char why[WAL_TEXT_MAX + 400];
	snprintf(why, sizeof why, "step %u (%s) failed: %s", b->branch_id,
		 step_name(b), err);
	return start_compensation(sg, why);
}

int wal_step_result_apply(struct apply *a, const Settle__V1__CmdStepResult *c)
{
	int rv = load_saga(a, c->gid);
	if (rv != 0)
		return rv < 0 ? rv : 0;
	Settle__V1__TxRecord *tx = &a->tx;
	if (c->step > tx->branches) {
		fsm__result_tx(a, tx);
		return fsm__reject(a, SETTLE__V1__CODE__NOT_FOUND,
				   "step %u of %s not found", c->step, c->gid);
	}
	a->res.branch_id = c->step;
	struct saga sg;
	rv = saga_load(a, &sg);
	if (rv != 0)
		goto out;
	size_t i = c->step - 1;
	Settle__V1__BranchRecord *b = &sg.st[i];
	bool action = c->phase == SETTLE__V1__SAGA_PHASE__PHASE_ACTION;
	int want = action ? ST(STEP_ACTING) : ST(STEP_COMPENSATING);
	if ((int)b->state != want) {
		/* Late or repeated: the step moved on already. */
		fsm__result_tx(a, tx);
		goto out;
	}
	const char *err = c->error != NULL ? c->error : "";
	int tx_from = (int)tx->state;
	b->attempts = c->attempt != 0 ? c->attempt : b->attempts + 1;
	sg.dirty[i] = true;
	if (action && tx->state == TX(SAGA_RUNNING)) {
		rv = action_running(&sg, i, c, err);
	} else if (action) {
		/* An awaited action while compensating: whatever it says,
		 * it ended, and is compensated if it may have acted. */
		bool ok = c->outcome == SETTLE__V1__OUTCOME__OUTCOME_OK;
		end_action(&sg, i, ok ? ST(STEP_DONE) : ST(STEP_ACTION_FAILED));
		b->last_error = ok ? "" : (char *)err;
		rv = fsm__add_event(a, "action", b->branch_id,
				    ok ? "ok attempt %u%s%s"
				       : "ended attempt %u%s%s",
				    b->attempts, ok ? "" : ": ", ok ? "" : err);
		if (rv == 0)
			rv = advance_compensation(&sg);
	} else if (c->outcome == SETTLE__V1__OUTCOME__OUTCOME_OK) {
		move(&sg, i, ST(STEP_COMPENSATED));
		b->next_retry_ms = 0;
		rv = fsm__add_event(a, "compensate", b->branch_id,
				    "ok attempt %u", b->attempts);
		if (rv == 0)
			rv = advance_compensation(&sg);
	} else if (c->outcome == SETTLE__V1__OUTCOME__OUTCOME_RETRY) {
		b->next_retry_ms =
		    c->next_retry_ms != 0 ? c->next_retry_ms : a->time;
		b->last_error = (char *)err;
		rv = fsm__add_event(a, "compensate", b->branch_id,
				    "retry attempt %u: %s", b->attempts, err);
	} else {
		move(&sg, i, ST(FAILED));
		b->next_retry_ms = 0;
		b->last_error = (char *)err;
		tx->failed++;
		snprintf(a->reason, sizeof a->reason,
			 "step %u (%.300s) compensation failed: %s",
			 b->branch_id, step_name(b), err);
		tx->reason = a->reason;
		rv = fsm__add_event(a, "compensate", b->branch_id,
				    "failure: %s", err);
	}
	if (rv == 0)
		rv = saga_flush(&sg, tx_from);
out:
	saga_free(&sg);
	return rv;
}

int wal_saga_decide_apply(struct apply *a, const Settle__V1__CmdDecide *c)
{
	Settle__V1__TxRecord *tx = &a->tx;
	if (c->decision == SETTLE__V1__DECISION__DECIDE_COMMIT) {
		fsm__result_tx(a, tx);
		return fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
				   "saga %s commits by itself", tx->gid);
	}
	if (tx->state == TX(SAGA_COMPENSATING) ||
	    tx->state == TX(SAGA_COMPENSATED)) {
		fsm__result_tx(a, tx); /* a repeated rollback */
		return 0;
	}
	if (tx->state != TX(SAGA_RUNNING))
		return fsm__wrong_state(a);
	if (c->timeout && tx->recovery == SETTLE__V1__SAGA_RECOVERY__FORWARD) {
		fsm__result_tx(a, tx);
		return fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
				   "saga %s recovers forward: no deadline",
				   tx->gid);
	}
	if (c->timeout && !fsm__expired(a, tx)) {
		fsm__result_tx(a, tx);
		return fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
				   "transaction %s: deadline not reached",
				   tx->gid);
	}
	struct saga sg;
	int rv = saga_load(a, &sg);
	if (rv == 0) {
		int from = (int)tx->state;
		const char *why = c->reason != NULL && c->reason[0] != 0
				      ? c->reason
				  : c->timeout ? "deadline"
					       : "rollback";
		rv = start_compensation(&sg, why);
		if (rv == 0)
			rv = saga_flush(&sg, from);
	}
	saga_free(&sg);
	return rv;
}

/* An operator's move out of FAILED (sm.h: wal_step_operator_can_move),
 * checked like move(). */
static void operator_move(struct saga *sg, size_t i, int to)
{
	int from = (int)sg->st[i].state;
	if (!wal_step_operator_can_move(from, to) && sg->bad[0] == 0)
		snprintf(sg->bad, sizeof sg->bad,
			 "illegal operator move %s -> %s (gid %s step %zu)",
			 wal_branch_state_name(from), wal_branch_state_name(to),
			 sg->a->tx.gid, i + 1);
	sg->st[i].state = to;
	sg->dirty[i] = true;
}

/* With no step FAILED any more, the reason says what the operator did
 * (the history keeps every earlier one). */
static void operator_reason(struct apply *a, const char *verb, const char *why)
{
	if (a->tx.failed != 0)
		return;
	snprintf(a->reason, sizeof a->reason, "%s by operator: %s", verb, why);
	a->tx.reason = a->reason;
}

int wal_saga_retry_apply(struct apply *a, uint32_t branch_id, const char *why)
{
	Settle__V1__TxRecord *tx = &a->tx;
	struct saga sg;
	int rv = saga_load(a, &sg);
	if (rv != 0)
		goto out;
	int tx_from = (int)tx->state;
	uint32_t count = 0;
	for (size_t i = 0; i < sg.n; i++) {
		Settle__V1__BranchRecord *b = &sg.st[i];
		int st = (int)b->state;
		if (branch_id != 0 && b->branch_id != branch_id)
			continue;
		if (st == ST(FAILED)) {
			operator_move(&sg, i, ST(STEP_COMPENSATING));
			b->attempts = 0;
			b->next_retry_ms = a->time;
			tx->failed--;
			rv = fsm__add_event(a, "retry", b->branch_id,
					    "FAILED -> STEP_COMPENSATING: %s",
					    why);
		} else if (st == ST(STEP_ACTING) ||
			   st == ST(STEP_COMPENSATING)) {
			if (b->next_retry_ms > a->time)
				b->next_retry_ms = a->time;
			sg.dirty[i] = true;
			rv = fsm__add_event(a, "retry", b->branch_id,
					    "%s, due now: %s",
					    wal_branch_state_name(st), why);
		} else if (branch_id != 0) {
			/* Nothing written yet: the one step named. */
			rv = fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
					 "step %u of %s is %s: only a FAILED "
					 "step or one being retried can be "
					 "retried",
					 branch_id, tx->gid,
					 wal_branch_state_name(st));
			goto out;
		} else {
			continue;
		}
		if (rv != 0)
			goto out;
		count++;
	}
	if (count == 0) {
		rv = fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
				 "saga %s has no FAILED step and none being "
				 "retried",
				 tx->gid);
		goto out;
	}
	operator_reason(a, "retried", why);
	rv = saga_flush(&sg, tx_from);
	a->res.count = count;
out:
	saga_free(&sg);
	return rv;
}

int wal_saga_resolve_apply(struct apply *a, uint32_t branch_id, const char *why)
{
	Settle__V1__TxRecord *tx = &a->tx;
	struct saga sg;
	int rv = saga_load(a, &sg);
	if (rv != 0)
		goto out;
	size_t i = branch_id - 1;
	Settle__V1__BranchRecord *b = &sg.st[i];
	if (b->state != ST(FAILED)) {
		rv = fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
				 "step %u of %s is %s, not FAILED: only a "
				 "FAILED step can be resolved",
				 branch_id, tx->gid,
				 wal_branch_state_name(b->state));
		goto out;
	}
	int tx_from = (int)tx->state;
	operator_move(&sg, i, ST(STEP_COMPENSATED));
	b->next_retry_ms = 0;
	tx->failed--;
	rv = fsm__add_event(a, "resolve", b->branch_id,
			    "FAILED -> STEP_COMPENSATED: %s", why);
	if (rv != 0)
		goto out;
	operator_reason(a, "resolved", why);
	/* As if Compensate had answered OK: the next step, or the end. */
	rv = advance_compensation(&sg);
	if (rv == 0)
		rv = saga_flush(&sg, tx_from);
	a->res.branch_state = ST(STEP_COMPENSATED);
out:
	saga_free(&sg);
	return rv;
}

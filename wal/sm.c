/*
 * sm.c — transition tables of the TCC transaction and branch.
 *
 * One bitmask per state: bit `to` is set when the move from -> to is
 * allowed. Index 0 (UNSPECIFIED) is the "not yet created" pseudo-state.
 */
#include <stdio.h>

#include "wal/sm.h"

/* 64-bit masks: the XA branch states reach 37. */
#define BIT(s) ((uint64_t)1 << (s))

typedef uint64_t mask;

enum {
	TX_NEW = SETTLE__V1__TX_STATE__TX_STATE_UNSPECIFIED,
	TX_ACTIVE = SETTLE__V1__TX_STATE__ACTIVE,
	TX_COMMITTING = SETTLE__V1__TX_STATE__COMMITTING,
	TX_COMMITTED = SETTLE__V1__TX_STATE__COMMITTED,
	TX_ROLLING_BACK = SETTLE__V1__TX_STATE__ROLLING_BACK,
	TX_ROLLED_BACK = SETTLE__V1__TX_STATE__ROLLED_BACK,
	TX_RUNNING = SETTLE__V1__TX_STATE__SAGA_RUNNING,
	TX_COMPENSATING = SETTLE__V1__TX_STATE__SAGA_COMPENSATING,
	TX_SUCCEEDED = SETTLE__V1__TX_STATE__SAGA_SUCCEEDED,
	TX_COMPENSATED = SETTLE__V1__TX_STATE__SAGA_COMPENSATED,
	TX_XA_PREPARED = SETTLE__V1__TX_STATE__XA_PREPARED,
	TX_N
};

static const mask tx_moves[TX_N] = {
    [TX_NEW] = BIT(TX_ACTIVE),
    [TX_ACTIVE] = BIT(TX_COMMITTING) | BIT(TX_COMMITTED) |
		  BIT(TX_ROLLING_BACK) | BIT(TX_ROLLED_BACK),
    [TX_COMMITTING] = BIT(TX_COMMITTED),
    [TX_COMMITTED] = 0,
    [TX_ROLLING_BACK] = BIT(TX_ROLLED_BACK),
    [TX_ROLLED_BACK] = 0,
};

/* Saga transactions: a table of their own, so that neither kind can
 * wander into the other's states. */
static const mask saga_moves[TX_N] = {
    [TX_NEW] = BIT(TX_RUNNING),
    [TX_RUNNING] = BIT(TX_COMPENSATING) | BIT(TX_SUCCEEDED),
    [TX_COMPENSATING] = BIT(TX_COMPENSATED),
    [TX_SUCCEEDED] = 0,
    [TX_COMPENSATED] = 0,
};

/*
 * XA transactions (mode XA): the TCC states plus XA_PREPARED, entered by
 * XA_PREPARE and left only by a decision. COMMITTING -> ROLLED_BACK is the
 * one-phase commit of a lone RM branch that the RM rolled back instead.
 */
static const mask xa_moves[TX_N] = {
    [TX_NEW] = BIT(TX_ACTIVE),
    [TX_ACTIVE] = BIT(TX_XA_PREPARED) | BIT(TX_COMMITTING) | BIT(TX_COMMITTED) |
		  BIT(TX_ROLLING_BACK) | BIT(TX_ROLLED_BACK),
    [TX_XA_PREPARED] = BIT(TX_COMMITTING) | BIT(TX_COMMITTED) |
		       BIT(TX_ROLLING_BACK) | BIT(TX_ROLLED_BACK),
    [TX_COMMITTING] = BIT(TX_COMMITTED) | BIT(TX_ROLLED_BACK),
    [TX_ROLLING_BACK] = BIT(TX_ROLLED_BACK),
};

static const char *const tx_names[TX_N] = {
    [TX_NEW] = "NEW",
    [TX_ACTIVE] = "ACTIVE",
    [TX_COMMITTING] = "COMMITTING",
    [TX_COMMITTED] = "COMMITTED",
    [TX_ROLLING_BACK] = "ROLLING_BACK",
    [TX_ROLLED_BACK] = "ROLLED_BACK",
    [TX_RUNNING] = "SAGA_RUNNING",
    [TX_COMPENSATING] = "SAGA_COMPENSATING",
    [TX_SUCCEEDED] = "SAGA_SUCCEEDED",
    [TX_COMPENSATED] = "SAGA_COMPENSATED",
    [TX_XA_PREPARED] = "XA_PREPARED",
};

enum {
	BR_NEW = SETTLE__V1__BRANCH_STATE__BRANCH_STATE_UNSPECIFIED,
	BR_REGISTERED = SETTLE__V1__BRANCH_STATE__REGISTERED,
	BR_CONFIRMING = SETTLE__V1__BRANCH_STATE__CONFIRMING,
	BR_CONFIRMED = SETTLE__V1__BRANCH_STATE__CONFIRMED,
	BR_CANCELLING = SETTLE__V1__BRANCH_STATE__CANCELLING,
	BR_CANCELLED = SETTLE__V1__BRANCH_STATE__CANCELLED,
	BR_FAILED = SETTLE__V1__BRANCH_STATE__FAILED,
	BR_PENDING = SETTLE__V1__BRANCH_STATE__STEP_PENDING,
	BR_ACTING = SETTLE__V1__BRANCH_STATE__STEP_ACTING,
	BR_DONE = SETTLE__V1__BRANCH_STATE__STEP_DONE,
	BR_ACTION_FAILED = SETTLE__V1__BRANCH_STATE__STEP_ACTION_FAILED,
	BR_COMPENSATING = SETTLE__V1__BRANCH_STATE__STEP_COMPENSATING,
	BR_COMPENSATED = SETTLE__V1__BRANCH_STATE__STEP_COMPENSATED,
	BR_SKIPPED = SETTLE__V1__BRANCH_STATE__STEP_SKIPPED,
	BR_XA_ACTIVE = SETTLE__V1__BRANCH_STATE__XA_BRANCH_ACTIVE,
	BR_XA_PREPARED = SETTLE__V1__BRANCH_STATE__XA_BRANCH_PREPARED,
	BR_XA_READ_ONLY = SETTLE__V1__BRANCH_STATE__XA_BRANCH_READ_ONLY,
	BR_XA_COMMITTING = SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING,
	BR_XA_COMMITTED = SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTED,
	BR_XA_ROLLING_BACK = SETTLE__V1__BRANCH_STATE__XA_BRANCH_ROLLING_BACK,
	BR_XA_ROLLED_BACK = SETTLE__V1__BRANCH_STATE__XA_BRANCH_ROLLED_BACK,
	BR_XA_ONE_PHASE = SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE,
	BR_N
};

static const mask branch_moves[BR_N] = {
    [BR_NEW] = BIT(BR_REGISTERED),
    [BR_REGISTERED] = BIT(BR_CONFIRMING) | BIT(BR_CANCELLING),
    [BR_CONFIRMING] = BIT(BR_CONFIRMED) | BIT(BR_FAILED),
    [BR_CONFIRMED] = 0,
    [BR_CANCELLING] = BIT(BR_CANCELLED) | BIT(BR_FAILED),
    [BR_CANCELLED] = 0,
    [BR_FAILED] = 0,
};

static const mask step_moves[BR_N] = {
    [BR_NEW] = BIT(BR_PENDING) | BIT(BR_ACTING),
    [BR_PENDING] = BIT(BR_ACTING) | BIT(BR_SKIPPED),
    [BR_ACTING] = BIT(BR_DONE) | BIT(BR_ACTION_FAILED),
    [BR_DONE] = BIT(BR_COMPENSATING),
    [BR_ACTION_FAILED] = BIT(BR_COMPENSATING),
    [BR_COMPENSATING] = BIT(BR_COMPENSATED) | BIT(BR_FAILED),
    [BR_COMPENSATED] = 0,
    [BR_SKIPPED] = 0,
    [BR_FAILED] = 0,
};

/*
 * An RM branch of an XA transaction. ACTIVE -> ROLLED_BACK is a rollback
 * vote (the RM rolled it back itself); ONE_PHASE is the initiator's
 * one-phase commit, whose outcome it reports (or the leader gives up on).
 */
static const mask xa_branch_moves[BR_N] = {
    [BR_NEW] = BIT(BR_XA_ACTIVE),
    [BR_XA_ACTIVE] = BIT(BR_XA_PREPARED) | BIT(BR_XA_READ_ONLY) |
		     BIT(BR_XA_ROLLED_BACK) | BIT(BR_XA_ROLLING_BACK) |
		     BIT(BR_XA_ONE_PHASE) | BIT(BR_XA_COMMITTING),
    [BR_XA_PREPARED] = BIT(BR_XA_COMMITTING) | BIT(BR_XA_ROLLING_BACK),
    [BR_XA_COMMITTING] = BIT(BR_XA_COMMITTED) | BIT(BR_FAILED),
    [BR_XA_ROLLING_BACK] = BIT(BR_XA_ROLLED_BACK) | BIT(BR_FAILED),
    [BR_XA_ONE_PHASE] = BIT(BR_XA_COMMITTED) | BIT(BR_XA_ROLLED_BACK),
};

/*
 * Moves only an operator's TX_RETRY / TX_RESOLVE may make (wal/operator.h):
 * a FAILED branch goes back to the call of its phase, or its phase is
 * declared done by hand. Kept out of the tables above so that no
 * participant result can ever take them.
 */
static const mask branch_operator_moves[BR_N] = {
    [BR_FAILED] = BIT(BR_CONFIRMING) | BIT(BR_CANCELLING) | BIT(BR_CONFIRMED) |
		  BIT(BR_CANCELLED),
};

static const mask xa_branch_operator_moves[BR_N] = {
    [BR_FAILED] = BIT(BR_XA_COMMITTING) | BIT(BR_XA_ROLLING_BACK) |
		  BIT(BR_XA_COMMITTED) | BIT(BR_XA_ROLLED_BACK),
};

static const mask step_operator_moves[BR_N] = {
    [BR_FAILED] = BIT(BR_COMPENSATING) | BIT(BR_COMPENSATED),
};

static const char *const branch_names[BR_N] = {
    [BR_NEW] = "NEW",
    [BR_REGISTERED] = "REGISTERED",
    [BR_CONFIRMING] = "CONFIRMING",
    [BR_CONFIRMED] = "CONFIRMED",
    [BR_CANCELLING] = "CANCELLING",
    [BR_CANCELLED] = "CANCELLED",
    [BR_FAILED] = "FAILED",
    [BR_PENDING] = "STEP_PENDING",
    [BR_ACTING] = "STEP_ACTING",
    [BR_DONE] = "STEP_DONE",
    [BR_ACTION_FAILED] = "STEP_ACTION_FAILED",
    [BR_COMPENSATING] = "STEP_COMPENSATING",
    [BR_COMPENSATED] = "STEP_COMPENSATED",
    [BR_SKIPPED] = "STEP_SKIPPED",
    [BR_XA_ACTIVE] = "XA_BRANCH_ACTIVE",
    [BR_XA_PREPARED] = "XA_BRANCH_PREPARED",
    [BR_XA_READ_ONLY] = "XA_BRANCH_READ_ONLY",
    [BR_XA_COMMITTING] = "XA_BRANCH_COMMITTING",
    [BR_XA_COMMITTED] = "XA_BRANCH_COMMITTED",
    [BR_XA_ROLLING_BACK] = "XA_BRANCH_ROLLING_BACK",
    [BR_XA_ROLLED_BACK] = "XA_BRANCH_ROLLED_BACK",
    [BR_XA_ONE_PHASE] = "XA_BRANCH_ONE_PHASE",
};

const char *wal_tx_state_name(int state)
{
	/* The saga and XA states leave gaps (6..19, 24..29): no name
	 * there. */
	return state >= 0 && state < TX_N && tx_names[state] != NULL
		   ? tx_names[state]
		   : "?";
}

const char *wal_branch_state_name(int state)
{
	return state >= 0 && state < BR_N && branch_names[state] != NULL
		   ? branch_names[state]
		   : "?";
}

bool wal_tx_can_move(int from, int to)
{
	if (from < 0 || from >= TX_N || to <= TX_NEW || to >= TX_N)
		return false;
	return (tx_moves[from] & BIT(to)) != 0;
}

bool wal_branch_can_move(int from, int to)
{
	if (from < 0 || from >= BR_N || to <= BR_NEW || to >= BR_N)
		return false;
	return (branch_moves[from] & BIT(to)) != 0;
}

bool wal_saga_can_move(int from, int to)
{
	if (from < 0 || from >= TX_N || to <= TX_NEW || to >= TX_N)
		return false;
	return (saga_moves[from] & BIT(to)) != 0;
}

bool wal_step_can_move(int from, int to)
{
	if (from < 0 || from >= BR_N || to <= BR_NEW || to >= BR_N)
		return false;
	return (step_moves[from] & BIT(to)) != 0;
}

bool wal_xa_tx_can_move(int from, int to)
{
	if (from < 0 || from >= TX_N || to <= TX_NEW || to >= TX_N)
		return false;
	return (xa_moves[from] & BIT(to)) != 0;
}

bool wal_xa_branch_can_move(int from, int to)
{
	if (from < 0 || from >= BR_N || to <= BR_NEW || to >= BR_N)
		return false;
	return (xa_branch_moves[from] & BIT(to)) != 0;
}

bool wal_xa_branch_operator_can_move(int from, int to)
{
	if (from < 0 || from >= BR_N || to <= BR_NEW || to >= BR_N)
		return false;
	return (xa_branch_operator_moves[from] & BIT(to)) != 0;
}

bool wal_branch_operator_can_move(int from, int to)
{
	if (from < 0 || from >= BR_N || to <= BR_NEW || to >= BR_N)
		return false;
	return (branch_operator_moves[from] & BIT(to)) != 0;
}

bool wal_step_operator_can_move(int from, int to)
{
	if (from < 0 || from >= BR_N || to <= BR_NEW || to >= BR_N)
		return false;
	return (step_operator_moves[from] & BIT(to)) != 0;
}

bool wal_tx_state_final(int state)
{
	return state == TX_COMMITTED || state == TX_ROLLED_BACK ||
	       state == TX_SUCCEEDED || state == TX_COMPENSATED;
}

#define FAIL(...)                                                              \
	do {                                                                   \
		if (errmsg != NULL)                                            \
			snprintf(errmsg, errmsg_len, __VA_ARGS__);             \
		return false;                                                  \
	} while (0)

bool wal_tx_invariants(const Settle__V1__TxRecord *tx, char *errmsg,
		       size_t errmsg_len)
{
	int st = (int)tx->state;
	if (st <= TX_NEW || st >= TX_N || tx_names[st] == NULL)
		FAIL("tx %s: bad state %d", tx->gid, st);
	bool saga_state = st >= TX_RUNNING && st <= TX_COMPENSATED;
	if (saga_state != (tx->mode == SETTLE__V1__TX_MODE__SAGA))
		FAIL("tx %s: state %s in mode %d", tx->gid, tx_names[st],
		     (int)tx->mode);
	bool xa = tx->mode == SETTLE__V1__TX_MODE__XA;
	if (st == TX_XA_PREPARED && !xa)
		FAIL("tx %s: XA_PREPARED in mode %d", tx->gid, (int)tx->mode);
	if (!xa && (tx->xid.len != 0 ||
		    tx->heuristic != SETTLE__V1__HEURISTIC__HEURISTIC_NONE))
		FAIL("tx %s: xid or heuristic outside mode XA", tx->gid);
	if (wal_tx_state_final(st)) {
		if (tx->finished_ms == 0 || tx->due_ms != 0)
			FAIL("tx %s: final state %s with finished_ms %llu, "
			     "due_ms %llu",
			     tx->gid, tx_names[st],
			     (unsigned long long)tx->finished_ms,
			     (unsigned long long)tx->due_ms);
	} else if (tx->finished_ms != 0) {
		FAIL("tx %s: %s but finished", tx->gid, tx_names[st]);
	}
	if (st == TX_ACTIVE && tx->due_ms != tx->deadline_ms)
		FAIL("tx %s: ACTIVE with due_ms != deadline_ms", tx->gid);
	/* In doubt with a legacy TM's xid: only the TM decides, never a
	 * timer. Without one (Settle's own XA tx): presumed abort at the
	 * deadline. */
	if (st == TX_XA_PREPARED &&
	    tx->due_ms != (tx->xid.len != 0 ? 0 : tx->deadline_ms))
		FAIL("tx %s: XA_PREPARED %s an xid due at %llu", tx->gid,
		     tx->xid.len != 0 ? "with" : "without",
		     (unsigned long long)tx->due_ms);
	if (tx->pending + tx->failed > tx->branches ||
	    tx->branches >= tx->next_branch_id)
		FAIL("tx %s: counters pending %u failed %u branches %u next "
		     "%u",
		     tx->gid, tx->pending, tx->failed, tx->branches,
		     tx->next_branch_id);
	return true;
}

/*
 * operator.c — CmdRetry and CmdResolve (semantics in operator.h): the
 * checks shared by every kind of transaction, and the TCC side; a saga's
 * steps are moved by saga.c, which owns the order of compensation, and an
 * XA transaction's branches (RM and TCC) by xa.c, which recomputes the
 * transaction from all of them.
 *
 * The moves out of FAILED are in tables of their own (sm.h): only these
 * handlers set a->operator_moves, so a participant's result can never
 * take them.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "wal/entry.h"
#include "wal/fsm_int.h"
#include "wal/operator.h"
#include "wal/saga.h"
#include "wal/sm.h"
#include "wal/xa.h"

#define ST(x) SETTLE__V1__BRANCH_STATE__##x
#define TX(x) SETTLE__V1__TX_STATE__##x

static int bad(char *errmsg, size_t errmsg_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *errmsg, size_t errmsg_len, const char *fmt, ...)
{
	if (errmsg != NULL && errmsg_len > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(errmsg, errmsg_len, fmt, ap);
		va_end(ap);
	}
	return SETTLE_EINVAL;
}

static int check_common(const char *gid, const char *reason, char *errmsg,
			size_t errmsg_len)
{
	if (wal_gid_validate(gid) != 0)
		return bad(errmsg, errmsg_len,
			   "gid must be 1..%d printable ASCII characters "
			   "without spaces",
			   WAL_GID_MAX);
	if (reason != NULL && strnlen(reason, WAL_TEXT_MAX + 1) > WAL_TEXT_MAX)
		return bad(errmsg, errmsg_len, "reason longer than %d bytes",
			   WAL_TEXT_MAX);
	return 0;
}

int wal_retry_validate(const Settle__V1__CmdRetry *c, char *errmsg,
		       size_t errmsg_len)
{
	return check_common(c->gid, c->reason, errmsg, errmsg_len);
}

int wal_resolve_validate(const Settle__V1__CmdResolve *c, char *errmsg,
			 size_t errmsg_len)
{
	int rv = check_common(c->gid, c->reason, errmsg, errmsg_len);
	if (rv != 0)
		return rv;
	if (c->branch_id == 0)
		return bad(errmsg, errmsg_len,
			   "branch_id missing: resolve names one FAILED "
			   "branch");
	if (c->reason == NULL || c->reason[0] == 0)
		return bad(errmsg, errmsg_len,
			   "reason missing: say who decided and why");
	return 0;
}

/*
 * Load gid and refuse what no verb can act on: a finished transaction, an
 * undecided TCC one, a branch it never had. 0: go on, 1: rejected, < 0.
 */
static int load(struct apply *a, const char *gid, uint32_t branch_id,
		const char *verb)
{
	int rv = fsm__load_tx(a, gid);
	if (rv != 0)
		return rv;
	Settle__V1__TxRecord *tx = &a->tx;
	fsm__result_tx(a, tx);
	a->res.branch_id = branch_id;
	if (wal_tx_state_final((int)tx->state)) {
		fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
			    "transaction %s is %s: finished, nothing to %s",
			    gid, wal_tx_state_name(tx->state), verb);
		return 1;
	}
	if (tx->state == TX(ACTIVE)) {
		fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
			    "transaction %s is ACTIVE: not decided yet, "
			    "nothing to %s",
			    gid, verb);
		return 1;
	}
	if (branch_id >= tx->next_branch_id) {
		fsm__reject(a, SETTLE__V1__CODE__NOT_FOUND,
			    "branch %u of %s not found", branch_id, gid);
		return 1;
	}
	return 0;
}

/* The branch state a TCC transaction's phase calls (COMMITTING:
 * CONFIRMING), and the one an OK answer leads to. */
static int tcc_phase(const Settle__V1__TxRecord *tx)
{
	return tx->state == TX(COMMITTING) ? ST(CONFIRMING) : ST(CANCELLING);
}

static int tcc_done(const Settle__V1__TxRecord *tx)
{
	return tx->state == TX(COMMITTING) ? ST(CONFIRMED) : ST(CANCELLED);
}

/*
 * After branches moved: the tx is due at the earliest retry among the
 * branches still called, and its reason names the first branch still
 * FAILED, else what the operator did. Does not write the tx.
 */
static int tcc_settle(struct apply *a, const char *verb, const char *why)
{
	Settle__V1__TxRecord *tx = &a->tx;
	Settle__V1__BranchRecord **all;
	size_t n;
	int phase = tcc_phase(tx);
	int rv = store_branches_list(a->s, a->txn, tx->gid, &all, &n);
	if (rv != 0)
		return fsm__store_fail(a, rv, "list branches");
	uint64_t due = 0;
	const Settle__V1__BranchRecord *failed = NULL;
	for (size_t i = 0; i < n; i++) {
		const Settle__V1__BranchRecord *b = all[i];
		if ((int)b->state == phase &&
		    (due == 0 || b->next_retry_ms < due))
			due = b->next_retry_ms;
		if (b->state == ST(FAILED) && failed == NULL)
			failed = b;
	}
	tx->due_ms = due;
	if (failed != NULL)
		snprintf(a->reason, sizeof a->reason, "branch %u failed: %s",
			 failed->branch_id,
			 failed->last_error != NULL ? failed->last_error : "");
	else
		snprintf(a->reason, sizeof a->reason, "%s by operator: %s",
			 verb, why);
	tx->reason = a->reason;
	store_branches_free(all, n);
	return 0;
}

static int tcc_retry(struct apply *a, const Settle__V1__CmdRetry *c,
		     const char *why)
{
	Settle__V1__TxRecord *tx = &a->tx;
	int phase = tcc_phase(tx);
	int rv = store_branches_list_in(a->s, a->txn, tx->gid, fsm__rec(a),
					&a->branches, &a->n_branches);
	a->branches_in_arena = true;
	if (rv != 0)
		return fsm__store_fail(a, rv, "list branches");
	uint32_t count = 0;
	for (size_t i = 0; i < a->n_branches; i++) {
		const Settle__V1__BranchRecord *old = a->branches[i];
		if (c->branch_id != 0 && old->branch_id != c->branch_id)
			continue;
		Settle__V1__BranchRecord b = *old;
		if (old->state == ST(FAILED)) {
			b.state = phase;
			b.attempts = 0;
			b.next_retry_ms = a->time;
			tx->failed--;
			tx->pending++;
			rv = fsm__add_event(a, "retry", b.branch_id,
					    "FAILED -> %s: %s",
					    wal_branch_state_name(phase), why);
		} else if ((int)old->state == phase) {
			if (b.next_retry_ms > a->time)
				b.next_retry_ms = a->time;
			rv = fsm__add_event(a, "retry", b.branch_id,
					    "%s, due now: %s",
					    wal_branch_state_name(phase), why);
		} else if (c->branch_id != 0) {
			/* Nothing written yet: the one branch named. */
			return fsm__reject(
			    a, SETTLE__V1__CODE__WRONG_STATE,
			    "branch %u of %s is %s: only a FAILED branch or "
			    "one being retried can be retried",
			    old->branch_id, tx->gid,
			    wal_branch_state_name(old->state));
		} else {
			continue;
		}
		if (rv == 0)
			rv = fsm__write_branch(a, old->state, &b);
		if (rv != 0)
			return rv;
		count++;
	}
	if (count == 0)
		return fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
				   "transaction %s has no FAILED branch and "
				   "none being retried",
				   tx->gid);
	rv = tcc_settle(a, "retried", why);
	if (rv == 0)
		rv = fsm__write_tx(a, tx->state);
	a->res.count = count;
	return rv;
}

int wal_retry_apply(struct apply *a, const Settle__V1__CmdRetry *c)
{
	int rv = load(a, c->gid, c->branch_id, "retry");
	if (rv != 0)
		return rv < 0 ? rv : 0;
	a->operator_moves = true;
	const char *why =
	    c->reason != NULL && c->reason[0] != 0 ? c->reason : WAL_NO_REASON;
	if (a->tx.mode == SETTLE__V1__TX_MODE__SAGA)
		return wal_saga_retry_apply(a, c->branch_id, why);
	if (a->tx.mode == SETTLE__V1__TX_MODE__XA)
		return wal_xa_retry_apply(a, c->branch_id, why);
	return tcc_retry(a, c, why);
}

static int tcc_resolve(struct apply *a, const Settle__V1__CmdResolve *c)
{
	Settle__V1__TxRecord *tx = &a->tx;
	Settle__V1__BranchRecord *old;
	int rv = store_branch_get(a->s, a->txn, tx->gid, c->branch_id, &old);
	if (rv == SETTLE_ENOTFOUND)
		return fsm__reject(a, SETTLE__V1__CODE__NOT_FOUND,
				   "branch %u of %s not found", c->branch_id,
				   tx->gid);
	if (rv != 0)
		return fsm__store_fail(a, rv, "get branch");
	/* Owned by the apply from here: freed after the hook. */
	a->branches = malloc(sizeof *a->branches);
	if (a->branches == NULL) {
		settle__v1__branch_record__free_unpacked(old, NULL);
		return fsm__fail(a, SETTLE_ENOMEM, "resolve: out of memory");
	}
	a->branches[0] = old;
	a->n_branches = 1;
	if (old->state != ST(FAILED))
		return fsm__reject(
		    a, SETTLE__V1__CODE__WRONG_STATE,
		    "branch %u of %s is %s, not FAILED: only a FAILED branch "
		    "can be resolved",
		    c->branch_id, tx->gid, wal_branch_state_name(old->state));
	Settle__V1__BranchRecord b = *old;
	b.state = tcc_done(tx);
	b.next_retry_ms = 0;
	tx->failed--;
	rv = fsm__add_event(a, "resolve", b.branch_id, "FAILED -> %s: %s",
			    wal_branch_state_name(b.state), c->reason);
	if (rv == 0)
		rv = fsm__write_branch(a, old->state, &b);
	if (rv != 0)
		return rv;
	a->res.branch_state = b.state;
	int from = tx->state;
	if (tx->pending == 0 && tx->failed == 0) {
		/* As if the participant had answered OK: the end. */
		snprintf(a->reason, sizeof a->reason,
			 "resolved by operator: %s", c->reason);
		tx->reason = a->reason;
		rv = fsm__finish(a, tx->state == TX(COMMITTING)
					? TX(COMMITTED)
					: TX(ROLLED_BACK));
	} else {
		rv = tcc_settle(a, "resolved", c->reason);
	}
	if (rv == 0)
		rv = fsm__write_tx(a, from);
	return rv;
}

int wal_resolve_apply(struct apply *a, const Settle__V1__CmdResolve *c)
{
	int rv = load(a, c->gid, c->branch_id, "resolve");
	if (rv != 0)
		return rv < 0 ? rv : 0;
	a->operator_moves = true;
	if (a->tx.mode == SETTLE__V1__TX_MODE__SAGA)
		return wal_saga_resolve_apply(a, c->branch_id, c->reason);
	if (a->tx.mode == SETTLE__V1__TX_MODE__XA)
		return wal_xa_resolve_apply(a, c->branch_id, c->reason);
	return tcc_resolve(a, c);
}

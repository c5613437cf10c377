/*
 * fsm.c — deterministic apply of replicated commands (TCC).
 *
 * begin{gid, deadline_ms, timeout_ms, mode}: a new tx ACTIVE, due at its
 *   deadline (wall, `due` index); expires on the cluster clock at the
 *   entry's clock + timeout_ms (fsm__set_expiry).
 *   ALREADY_EXISTS if the gid is taken.
 *   With branches (TCC only): the tx and its K branches REGISTERED, ids
 *   1..K in order, each with the event a register adds; res.count = K.
 * register{gid, endpoint, resource, payload}: tx ACTIVE (else WRONG_STATE,
 *   NOT_FOUND), at most WAL_MAX_BRANCHES (TOO_LARGE). New branch
 *   REGISTERED with id next_branch_id++ (from 1).
 * decide{gid, decision, reason, timeout}: ACTIVE -> COMMITTING (branches
 *   CONFIRMING) or ROLLING_BACK (branches CANCELLING), due now; with no
 *   branch straight to COMMITTED / ROLLED_BACK. A timeout decision needs
 *   the tx expired (fsm__expired: the entry's cluster clock has reached
 *   expires_clock_ms). A COMMIT of an ACTIVE tx that has expired at its
 *   entry loses to the deadline: that entry rolls the tx back (reason
 *   "deadline") and answers WRONG_STATE. The same decision again answers
 *   OK with the current state; the opposite one WRONG_STATE.
 * clock{}: nothing but the cluster clock moving on (every entry does).
 * branch_result{gid, branch_id, phase, outcome, ...}: ignored (OK) unless
 *   the branch is still in phase. OK -> CONFIRMED / CANCELLED; RETRY keeps
 *   it with a new next_retry_ms; FAILURE -> FAILED: the tx waits for an
 *   operator. The tx finishes when no branch is pending and none failed.
 *   tx.due_ms = min next_retry_ms of the branches still in the phase.
 * gc{finished_before_ms, limit}: forget up to limit finished txs and up to
 *   limit command ids older than finished_before_ms.
 * results{branches, steps}: each branch_result, then each step_result,
 *   applied in order exactly as the command of its own would be (checked,
 *   then applied in the entry's write transaction, with its time and
 *   clock); a rejected one changes nothing and the others go on. The hook
 *   runs once per answer that changed a transaction. res.count = the
 *   answers not rejected.
 * batch{commands}: each command applied as the entry of its own would be
 *   (its cmd_id, stamps, clock, result under its cmd_id), in order; one
 *   that does not decode, or a batch inside, is skipped. res.count = the
 *   commands applied or answered from their cmd_id. The batch's own
 *   cmd_id is kept like any other: the same batch again is answered from
 *   it and applies nothing.
 * features{level}: the cluster's feature level becomes max(stored, level);
 *   a level above FSM_LEVEL fails the apply: this binary cannot apply the
 *   commands of that level, so the node stops rather than diverge.
 * saga_begin, step_result, and decide on a saga: wal/saga.h.
 * Mode XA (begin with mode XA and xid, register with rm, decide and
 * branch_result on an XA tx, xa_vote, xa_prepare, xa_result, xa_forget,
 * xa_heuristic):
 *   wal/xa.h.
 * retry, resolve (an operator's verbs): wal/operator.h.
 *
 * Handlers return 0 (the command was applied, possibly as a rejected no-op
 * with res.code set) or a negative storage/bug error that aborts the apply.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "wal/arena.h"
#include "wal/entry.h"
#include "wal/fsm.h"
#include "wal/fsm_int.h"
#include "wal/members.h"
#include "wal/operator.h"
#include "wal/saga.h"
#include "wal/sm.h"
#include "wal/xa.h"

int fsm__fail(struct apply *a, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->f->errmsg, sizeof a->f->errmsg, fmt, ap);
	va_end(ap);
	return err;
}

/* A storage call failed: keep the store's message. */
int fsm__store_fail(struct apply *a, int rv, const char *what)
{
	return fsm__fail(a, rv, "%s: %s", what, store_errmsg(a->s));
}

/* Reject the command: applied as a no-op whose result says why. */
int fsm__reject(struct apply *a, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(a->msg, sizeof a->msg, fmt, ap);
	va_end(ap);
	a->res.code = code;
	a->res.message = a->msg;
	return 0;
}

void fsm__result_tx(struct apply *a, const Settle__V1__TxRecord *tx)
{
	a->res.gid = tx->gid;
	a->res.state = tx->state;
	a->res.deadline_ms = tx->deadline_ms;
	/* A TM's later Commit / Rollback learns a heuristic decision from
	 * it (the switch library's XA_HEUR* codes). */
	a->res.heuristic = tx->heuristic;
}

void fsm__stored_rows(struct apply *a, const Settle__V1__TxRecord *tx)
{
	if (tx == NULL) {
		a->stored = (struct store_tx_rows){0};
	} else {
		store_tx_rows_of(tx, &a->stored);
		wal_gid_copy(a->stored_gid, tx->gid);
	}
	a->stored_known = true;
}

/* The arenas of an FSM (wal/arena.h): the entry's command (reset once it
 * is applied), a command of a batch (reset after each), the records one
 * apply reads (reset by apply_free()). */
struct fsm_arenas {
	struct wal_arena cmd, one, rec;
};

ProtobufCAllocator *fsm__rec(struct apply *a)
{
	return &a->f->arenas->rec.pb;
}

/* Load the tx into a->old and a working copy a->tx. 1: not found (the
 * command is rejected), 0: loaded, < 0: storage failure. */
int fsm__load_tx(struct apply *a, const char *gid)
{
	int rv = store_tx_get_in(a->s, a->txn, gid, fsm__rec(a), &a->old);
	a->old_in_arena = true;
	if (rv == SETTLE_ENOTFOUND) {
		a->res.gid = (char *)gid;
		fsm__reject(a, SETTLE__V1__CODE__NOT_FOUND,
			    "transaction %s not found", gid);
		return 1;
	}
	if (rv != 0)
		return fsm__store_fail(a, rv, "get tx");
	a->tx = *a->old;
	fsm__stored_rows(a, a->old);
	return 0;
}

/* Write the working tx after checking the move from `from` and the
 * record's invariants: an illegal move is a bug and is never stored. */
int fsm__write_tx(struct apply *a, int from)
{
	Settle__V1__TxRecord *tx = &a->tx;
	bool legal;
	switch (tx->mode) {
	case SETTLE__V1__TX_MODE__SAGA:
		legal = wal_saga_can_move(from, (int)tx->state);
		break;
	case SETTLE__V1__TX_MODE__XA:
		legal = wal_xa_tx_can_move(from, (int)tx->state);
		break;
	default:
		legal = wal_tx_can_move(from, (int)tx->state);
		break;
	}
	if (from != (int)tx->state && !legal)
		return fsm__fail(a, SETTLE_EINTERNAL,
				 "illegal transaction move %s -> %s (gid %s)",
				 wal_tx_state_name(from),
				 wal_tx_state_name(tx->state), tx->gid);
	char why[200];
	if (!wal_tx_invariants(tx, why, sizeof why))
		return fsm__fail(a, SETTLE_EINTERNAL, "invariant broken: %s",
				 why);
	tx->updated_ms = a->time;
	int rv = a->stored_known && strcmp(a->stored_gid, tx->gid) == 0
		     ? store_tx_put_over(a->s, a->txn, tx, &a->stored)
		     : store_tx_put(a->s, a->txn, tx);
	if (rv != 0)
		return fsm__store_fail(a, rv, "put tx");
	fsm__stored_rows(a, tx);
	a->changed = true;
	fsm__result_tx(a, tx);
	return 0;
}

int fsm__write_branch(struct apply *a, int from, Settle__V1__BranchRecord *b)
{
	bool saga = a->tx.mode == SETTLE__V1__TX_MODE__SAGA;
	bool rm = a->tx.mode == SETTLE__V1__TX_MODE__XA && wal_xa_is_rm(b);
	int to = (int)b->state;
	bool legal = saga ? wal_step_can_move(from, to)
		     : rm ? wal_xa_branch_can_move(from, to)
			  : wal_branch_can_move(from, to);
	if (!legal && a->operator_moves)
		legal = saga ? wal_step_operator_can_move(from, to)
			: rm ? wal_xa_branch_operator_can_move(from, to)
			     : wal_branch_operator_can_move(from, to);
	if (from != (int)b->state && !legal)
		return fsm__fail(
		    a, SETTLE_EINTERNAL,
		    "illegal branch move %s -> %s (gid %s branch %u)",
		    wal_branch_state_name(from),
		    wal_branch_state_name(b->state), b->gid, b->branch_id);
	b->updated_ms = a->time;
	int rv = store_branch_put(a->s, a->txn, b);
	if (rv != 0)
		return fsm__store_fail(a, rv, "put branch");
	return 0;
}

int fsm__add_event(struct apply *a, const char *kind, uint32_t branch_id,
		   const char *fmt, ...)
{
	char detail[WAL_TEXT_MAX + 128];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(detail, sizeof detail, fmt, ap);
	va_end(ap);
	Settle__V1__Event ev;
	settle__v1__event__init(&ev);
	ev.seq = a->tx.next_event_seq++;
	ev.time_ms = a->time;
	ev.kind = (char *)kind;
	ev.branch_id = branch_id;
	ev.detail = detail;
	/* Held until the command is applied: one write for all its events
	 * (a Begin with two branches has three). */
	if (a->ev_len > 0 && strcmp(a->evgid, a->tx.gid) != 0) {
		int rv = fsm__flush_events(a);
		if (rv != 0)
			return rv;
	}
	if (a->ev_len == 0)
		wal_gid_copy(a->evgid, a->tx.gid);
	if (store_event_frame(&ev, &a->ev, &a->ev_len, &a->ev_cap) != 0)
		return fsm__fail(a, SETTLE_ENOMEM, "event: out of memory");
	return 0;
}

int fsm__flush_events(struct apply *a)
{
	int rv;

	if (a->ev_len == 0)
		return 0;
	rv = store_events_append(a->s, a->txn, a->evgid, a->ev, a->ev_len);
	a->ev_len = 0;
	if (rv != 0)
		return fsm__store_fail(a, rv, "put events");
	return 0;
}

/*
 * A new REGISTERED branch of the ACTIVE TCC tx a->tx with the next id
 * (*id, may be NULL), and its `register` event; a->tx is counted but not
 * written. Branch limits are the caller's. 0 or < 0.
 */
static int add_tcc_branch(struct apply *a, const char *endpoint,
			  const char *resource, ProtobufCBinaryData payload,
			  uint32_t *id)
{
	Settle__V1__TxRecord *tx = &a->tx;
	Settle__V1__BranchRecord b;
	settle__v1__branch_record__init(&b);
	b.gid = tx->gid;
	b.branch_id = tx->next_branch_id++;
	b.endpoint = (char *)endpoint;
	b.resource = (char *)resource;
	b.payload = payload;
	b.state = SETTLE__V1__BRANCH_STATE__REGISTERED;
	int rv = fsm__write_branch(
	    a, SETTLE__V1__BRANCH_STATE__BRANCH_STATE_UNSPECIFIED, &b);
	if (rv != 0)
		return rv;
	tx->branches++;
	if (id != NULL)
		*id = b.branch_id;
	/* Endpoint and resource only: the payload never reaches history. */
	return fsm__add_event(a, "register", b.branch_id, "%s %s", endpoint,
			      resource);
}

static int do_begin(struct apply *a, const Settle__V1__CmdBegin *c)
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
	fsm__stored_rows(a, NULL);
	wal_gid_copy(a->stored_gid, c->gid);
	Settle__V1__TxRecord *tx = &a->tx;
	settle__v1__tx_record__init(tx);
	tx->gid = c->gid;
	bool xa = c->mode == SETTLE__V1__TX_MODE__XA;
	tx->mode = xa ? SETTLE__V1__TX_MODE__XA : SETTLE__V1__TX_MODE__TCC;
	tx->xid = c->xid; /* validated: empty unless mode XA */
	tx->state = SETTLE__V1__TX_STATE__ACTIVE;
	tx->created_ms = a->time;
	tx->deadline_ms = c->deadline_ms;
	tx->due_ms = c->deadline_ms;
	fsm__set_expiry(a, tx, c->timeout_ms);
	tx->owner = c->owner; /* "" unless level 7 under TLS */
	tx->next_branch_id = 1;
	tx->next_event_seq = 1;
	char xid[XA_XID_TEXT_MAX + 8] = "";
	if (c->xid.len != 0) {
		struct xa_xid x;
		memcpy(xid, " xid ", 6);
		/* Validated already: decodes. */
		if (xa_xid_decode(c->xid.data, c->xid.len, &x) != 0 ||
		    xa_xid_format(&x, xid + 5, sizeof xid - 5) != 0)
			return fsm__fail(a, SETTLE_EINTERNAL,
					 "begin %s: xid does not decode",
					 c->gid);
	}
	rv = fsm__add_event(a, "begin", 0, "deadline %llu%s%s",
			    (unsigned long long)c->deadline_ms,
			    xa ? " mode XA" : "", xid);
	/* Declared branches (validated: TCC ones, or RM ones in mode XA):
	 * ids 1..K, each with the event a REGISTER_BRANCH would have added,
	 * all in this apply. */
	for (size_t i = 0; rv == 0 && i < c->n_branches; i++) {
		const Settle__V1__BranchDecl *d = c->branches[i];
		rv = xa ? wal_xa_add_rm_branch(a, d->rm, c->xa_format_id)
			: add_tcc_branch(a, d->endpoint, d->resource,
					 d->payload, NULL);
		if (rv == 0 && a->res.code != 0)
			return 0; /* refused (a gid no XID can carry) */
	}
	if (rv != 0)
		return rv;
	a->res.count = (uint32_t)c->n_branches;
	return fsm__write_tx(a, SETTLE__V1__TX_STATE__TX_STATE_UNSPECIFIED);
}

bool fsm__expired(const struct apply *a, const Settle__V1__TxRecord *tx)
{
	if (tx->expires_clock_ms != 0)
		return a->clock >= tx->expires_clock_ms;
	return a->time >= tx->deadline_ms;
}

void fsm__set_expiry(struct apply *a, Settle__V1__TxRecord *tx,
		     uint32_t timeout_ms)
{
	tx->timeout_ms = timeout_ms;
	tx->expires_clock_ms = timeout_ms != 0 ? a->clock + timeout_ms : 0;
}

int fsm__wrong_state(struct apply *a)
{
	fsm__result_tx(a, &a->tx);
	return fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
			   "transaction %s is %s", a->tx.gid,
			   wal_tx_state_name(a->tx.state));
}

static int do_register(struct apply *a, const Settle__V1__CmdRegister *c)
{
	if (c->rm != NULL && c->rm[0] != 0)
		return wal_xa_register_apply(a, c);
	int rv = fsm__load_tx(a, c->gid);
	if (rv != 0)
		return rv < 0 ? rv : 0;
	Settle__V1__TxRecord *tx = &a->tx;
	if (tx->state != SETTLE__V1__TX_STATE__ACTIVE)
		return fsm__wrong_state(a);
	if (tx->branches >= WAL_MAX_BRANCHES) {
		fsm__result_tx(a, tx);
		return fsm__reject(a, SETTLE__V1__CODE__TOO_LARGE,
				   "transaction %s has %d branches already",
				   tx->gid, WAL_MAX_BRANCHES);
	}
	uint32_t id = 0;
	rv = add_tcc_branch(a, c->endpoint, c->resource, c->payload, &id);
	if (rv == 0)
		rv = fsm__write_tx(a, tx->state);
	a->res.branch_id = id;
	return rv;
}

/* The transaction reached its final state. */
int fsm__finish(struct apply *a, int final)
{
	a->tx.state = final;
	a->tx.finished_ms = a->time;
	a->tx.due_ms = 0;
	a->tx.pending = 0;
	return fsm__add_event(a,
			      final == SETTLE__V1__TX_STATE__COMMITTED
				  ? "committed"
				  : "rolled_back",
			      0, "finished");
}

static int do_decide(struct apply *a, const Settle__V1__CmdDecide *c)
{
	int rv = fsm__load_tx(a, c->gid);
	if (rv != 0)
		return rv < 0 ? rv : 0;
	Settle__V1__TxRecord *tx = &a->tx;
	if (tx->mode == SETTLE__V1__TX_MODE__SAGA)
		return wal_saga_decide_apply(a, c);
	if (tx->mode == SETTLE__V1__TX_MODE__XA)
		return wal_xa_decide_apply(a, c);
	bool commit = c->decision == SETTLE__V1__DECISION__DECIDE_COMMIT;
	/* The deadline wins over a COMMIT stamped at or after it: which one
	 * an entry is follows from the log alone (its cluster clock), so
	 * every node and every replay agree. Records without a cluster
	 * expiry keep the rule they were applied with. */
	bool late = commit && tx->state == SETTLE__V1__TX_STATE__ACTIVE &&
		    tx->expires_clock_ms != 0 && fsm__expired(a, tx);
	if (late)
		commit = false;
	int going = commit ? SETTLE__V1__TX_STATE__COMMITTING
			   : SETTLE__V1__TX_STATE__ROLLING_BACK;
	int final = commit ? SETTLE__V1__TX_STATE__COMMITTED
			   : SETTLE__V1__TX_STATE__ROLLED_BACK;
	int bstate = commit ? SETTLE__V1__BRANCH_STATE__CONFIRMING
			    : SETTLE__V1__BRANCH_STATE__CANCELLING;
	if ((int)tx->state == going || (int)tx->state == final) {
		/* A retried decision: answer with where it stands. */
		fsm__result_tx(a, tx);
		return 0;
	}
	if (tx->state != SETTLE__V1__TX_STATE__ACTIVE)
		return fsm__wrong_state(a);
	if (c->timeout && !fsm__expired(a, tx)) {
		fsm__result_tx(a, tx);
		return fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
				   "transaction %s: deadline not reached",
				   tx->gid);
	}
	int from = tx->state;
	rv = store_branches_list_in(a->s, a->txn, tx->gid, fsm__rec(a),
				    &a->branches, &a->n_branches);
	a->branches_in_arena = true;
	if (rv != 0)
		return fsm__store_fail(a, rv, "list branches");
	for (size_t i = 0; i < a->n_branches; i++) {
		Settle__V1__BranchRecord b = *a->branches[i];
		b.state = bstate;
		b.attempts = 0;
		b.next_retry_ms = a->time;
		b.last_error = "";
		rv = fsm__write_branch(a, a->branches[i]->state, &b);
		if (rv != 0)
			return rv;
	}
	const char *why = late ? "deadline (passed before the commit)"
			  : c->reason != NULL && c->reason[0] != 0 ? c->reason
			  : c->timeout				   ? "deadline"
								   : "";
	if (!commit) {
		snprintf(a->reason, sizeof a->reason, "%s", why);
		tx->reason = a->reason;
	}
	rv = fsm__add_event(a, commit ? "commit" : "rollback", 0, "%s", why);
	if (rv != 0)
		return rv;
	if (a->n_branches != tx->branches)
		return fsm__fail(a, SETTLE_EINTERNAL,
				 "tx %s counts %u branches, %zu stored",
				 tx->gid, tx->branches, a->n_branches);
	if (a->n_branches == 0) {
		rv = fsm__finish(a, final);
	} else {
		tx->state = going;
		tx->pending = tx->branches;
		tx->due_ms = a->time;
	}
	if (rv == 0)
		rv = fsm__write_tx(a, from);
	if (rv == 0 && late)
		return fsm__reject(a, SETTLE__V1__CODE__WRONG_STATE,
				   "transaction %s: its deadline passed before "
				   "this commit; rolled back",
				   tx->gid);
	return rv;
}

static int do_branch_result(struct apply *a,
			    const Settle__V1__CmdBranchResult *c)
{
	int rv = fsm__load_tx(a, c->gid);
	if (rv != 0)
		return rv < 0 ? rv : 0;
	Settle__V1__TxRecord *tx = &a->tx;
	if (tx->mode == SETTLE__V1__TX_MODE__XA)
		return wal_xa_branch_result_apply(a, c);
	Settle__V1__BranchRecord *old;
	rv = store_branch_get_in(a->s, a->txn, c->gid, c->branch_id,
				 fsm__rec(a), &old);
	if (rv == SETTLE_ENOTFOUND) {
		fsm__result_tx(a, tx);
		return fsm__reject(a, SETTLE__V1__CODE__NOT_FOUND,
				   "branch %u of %s not found", c->branch_id,
				   c->gid);
	}
	if (rv != 0)
		return fsm__store_fail(a, rv, "get branch");
	/* Keep old with the other owned records, freed after the hook. */
	a->branches = malloc(sizeof *a->branches);
	a->branches_in_arena = true;
	if (a->branches == NULL)
		return fsm__fail(a, SETTLE_ENOMEM,
				 "branch result: out of memory");
	a->branches[0] = old;
	a->n_branches = 1;
	a->res.branch_id = c->branch_id;
	if (old->state != c->phase) {
		/* A late or repeated result: the branch moved on already. */
		fsm__result_tx(a, tx);
		return 0;
	}
	bool confirm = c->phase == SETTLE__V1__BRANCH_STATE__CONFIRMING;
	const char *kind = confirm ? "confirm" : "cancel";
	const char *err = c->error != NULL ? c->error : "";
	Settle__V1__BranchRecord b = *old;
	b.attempts = c->attempt != 0 ? c->attempt : old->attempts + 1;
	switch (c->outcome) {
	case SETTLE__V1__OUTCOME__OUTCOME_OK:
		b.state = confirm ? SETTLE__V1__BRANCH_STATE__CONFIRMED
				  : SETTLE__V1__BRANCH_STATE__CANCELLED;
		b.next_retry_ms = 0;
		b.last_error = "";
		tx->pending--;
		rv = fsm__add_event(a, kind, b.branch_id, "ok attempt %u",
				    b.attempts);
		break;
	case SETTLE__V1__OUTCOME__OUTCOME_RETRY:
		b.next_retry_ms =
		    c->next_retry_ms != 0 ? c->next_retry_ms : a->time;
		b.last_error = (char *)err;
		rv = fsm__add_event(a, kind, b.branch_id,
				    "retry attempt %u: %s", b.attempts, err);
		break;
	default:
		b.state = SETTLE__V1__BRANCH_STATE__FAILED;
		b.next_retry_ms = 0;
		b.last_error = (char *)err;
		tx->pending--;
		tx->failed++;
		snprintf(a->reason, sizeof a->reason, "branch %u failed: %s",
			 b.branch_id, err);
		tx->reason = a->reason;
		rv = fsm__add_event(a, kind, b.branch_id, "failure: %s", err);
		break;
	}
	if (rv == 0)
		rv = fsm__write_branch(a, old->state, &b);
	if (rv != 0)
		return rv;

	int from = tx->state;
	if (tx->pending == 0 && tx->failed == 0) {
		rv =
		    fsm__finish(a, confirm ? SETTLE__V1__TX_STATE__COMMITTED
					   : SETTLE__V1__TX_STATE__ROLLED_BACK);
		if (rv == 0)
			rv = fsm__write_tx(a, from);
		return rv;
	}
	/* Next action: the earliest retry among branches still callable
	 * (their state and retry time: read in brief). */
	struct store_branch_brief *all;
	size_t n;
	rv = store_branches_brief_list(a->s, a->txn, tx->gid, &all, &n);
	if (rv != 0)
		return fsm__store_fail(a, rv, "list branches");
	uint64_t due = 0;
	for (size_t i = 0; i < n; i++)
		if (all[i].state == (int)c->phase &&
		    (due == 0 || all[i].next_retry_ms < due))
			due = all[i].next_retry_ms;
	free(all);
	tx->due_ms = due;
	return fsm__write_tx(a, from);
}

static int do_gc(struct apply *a, const Settle__V1__CmdGc *c)
{
	size_t txs, cmds;
	int rv =
	    store_tx_gc(a->s, a->txn, c->finished_before_ms, c->limit, &txs);
	if (rv != 0)
		return fsm__store_fail(a, rv, "gc txs");
	rv = store_cmd_gc(a->s, a->txn, c->finished_before_ms, c->limit, &cmds);
	if (rv != 0)
		return fsm__store_fail(a, rv, "gc cmds");
	a->res.deleted = txs;
	a->res.deleted_cmds = cmds;
	return 0;
}

/* The transactions the answers of a CmdResults changed, packed, for the
 * hook once the whole entry is applied. */
struct fsm_changed {
	struct fsm_changed_tx {
		uint8_t *buf; /* the record, packed */
		size_t len;
		struct fsm_was was;
	} * v;
	size_t n, cap;
};

static void changed_free(struct fsm_changed *ch)
{
	for (size_t i = 0; i < ch->n; i++)
		free(ch->v[i].buf);
	free(ch->v);
}

static int dispatch(struct apply *a);
static int apply_batch(struct apply *a, const Settle__V1__Command *cmd);
static int changed_add(struct apply *a, struct fsm_changed *ch,
		       const struct apply *sub);

/* A sub-apply of a (one command of a CmdResults or a CmdBatch): the same
 * FSM, store and write transaction, nothing else yet. */
static void sub_init(struct apply *sub, const struct apply *a)
{
	memset(sub, 0, sizeof *sub);
	sub->f = a->f;
	sub->s = a->s;
	sub->txn = a->txn;
	settle__v1__cmd_result__init(&sub->res);
}

/* What an apply loaded and owns (its branches and old record). Only one
 * apply at a time reads records (a batch or a results entry reads none
 * itself, its commands and answers do, one after the other), so the
 * record arena is reset here. */
static void apply_free(struct apply *a)
{
	free(a->ev);
	if (a->branches_in_arena)
		free(a->branches);
	else
		store_branches_free(a->branches, a->n_branches);
	if (a->old != NULL && !a->old_in_arena)
		settle__v1__tx_record__free_unpacked(a->old, NULL);
	if (a->old_in_arena || a->branches_in_arena)
		wal_arena_reset(&a->f->arenas->rec);
}

/* Apply one answer of a CmdResults: `one` is the entry's command with op
 * set to that answer, in a sub-apply sharing the entry's write
 * transaction. */
static int apply_one(struct apply *a, const Settle__V1__Command *one,
		     struct fsm_changed *ch, uint32_t *applied)
{
	struct apply sub;
	sub_init(&sub, a);
	sub.cmd = one;
	sub.time = a->time;
	sub.clock = a->clock;
	int rv = dispatch(&sub);
	if (rv == 0)
		rv = fsm__flush_events(&sub);
	if (rv == 0 && sub.res.code == 0)
		(*applied)++;
	if (rv == 0 && sub.changed && a->f->on_tx_change != NULL)
		rv = changed_add(a, ch, &sub);
	apply_free(&sub);
	return rv;
}

static int do_results(struct apply *a, const Settle__V1__CmdResults *c,
		      struct fsm_changed *ch)
{
	Settle__V1__Command one = *a->cmd;
	uint32_t applied = 0;
	int rv = 0;

	one.op_case = SETTLE__V1__COMMAND__OP_BRANCH_RESULT;
	for (size_t i = 0; rv == 0 && i < c->n_branches; i++) {
		one.branch_result = c->branches[i];
		rv = apply_one(a, &one, ch, &applied);
	}
	one.op_case = SETTLE__V1__COMMAND__OP_STEP_RESULT;
	for (size_t i = 0; rv == 0 && i < c->n_steps; i++) {
		one.step_result = c->steps[i];
		rv = apply_one(a, &one, ch, &applied);
	}
	a->res.count = applied;
	return rv;
}

static int do_features(struct apply *a, const Settle__V1__CmdFeatures *c)
{
	uint64_t level;
	int rv = store_level_get(a->s, a->txn, &level);
	if (rv != 0)
		return fsm__store_fail(a, rv, "get feature level");
	if (c->level > FSM_LEVEL)
		return fsm__fail(a, SETTLE_ESTATE,
				 "the cluster moved to feature level %u; this "
				 "node applies up to level %d: upgrade it",
				 c->level, FSM_LEVEL);
	if (c->level > level) {
		rv = store_level_put(a->s, a->txn, c->level);
		if (rv != 0)
			return fsm__store_fail(a, rv, "put feature level");
		a->f->level = c->level;
		a->f->level_known = true;
	}
	a->res.count = (uint32_t)(c->level > level ? c->level : level);
	return 0;
}

uint32_t fsm_level(struct fsm *f)
{
	if (!f->level_known) {
		uint64_t level = 0;
		if (store_level_get(f->store, NULL, &level) != 0)
			return FSM_LEVEL_BASE;
		f->level = (uint32_t)level;
		f->level_known = true;
	}
	return f->level > FSM_LEVEL_BASE ? f->level : FSM_LEVEL_BASE;
}

void fsm_forget_level(struct fsm *f)
{
	f->level_known = false;
}

static int dispatch(struct apply *a)
{
	const Settle__V1__Command *cmd = a->cmd;
	int rv = wal_command_validate(cmd, a->msg, sizeof a->msg);
	if (rv != 0) {
		a->res.code = SETTLE__V1__CODE__INVALID_ARGUMENT;
		a->res.message = a->msg;
		return 0;
	}
	switch (cmd->op_case) {
	case SETTLE__V1__COMMAND__OP_BEGIN:
		return do_begin(a, cmd->begin);
	case SETTLE__V1__COMMAND__OP_REGISTER:
		return do_register(a, cmd->register_);
	case SETTLE__V1__COMMAND__OP_DECIDE:
		return do_decide(a, cmd->decide);
	case SETTLE__V1__COMMAND__OP_BRANCH_RESULT:
		return do_branch_result(a, cmd->branch_result);
	case SETTLE__V1__COMMAND__OP_GC:
		return do_gc(a, cmd->gc);
	case SETTLE__V1__COMMAND__OP_SAGA_BEGIN:
		return wal_saga_begin_apply(a, cmd->saga_begin);
	case SETTLE__V1__COMMAND__OP_STEP_RESULT:
		return wal_step_result_apply(a, cmd->step_result);
	case SETTLE__V1__COMMAND__OP_RETRY:
		return wal_retry_apply(a, cmd->retry);
	case SETTLE__V1__COMMAND__OP_RESOLVE:
		return wal_resolve_apply(a, cmd->resolve);
	case SETTLE__V1__COMMAND__OP_XA_VOTE:
		return wal_xa_vote_apply(a, cmd->xa_vote);
	case SETTLE__V1__COMMAND__OP_XA_PREPARE:
		return wal_xa_prepare_apply(a, cmd->xa_prepare);
	case SETTLE__V1__COMMAND__OP_XA_RESULT:
		return wal_xa_result_apply(a, cmd->xa_result);
	case SETTLE__V1__COMMAND__OP_XA_FORGET:
		return wal_xa_forget_apply(a, cmd->xa_forget);
	case SETTLE__V1__COMMAND__OP_XA_HEURISTIC:
		return wal_xa_heuristic_apply(a, cmd->xa_heuristic);
	case SETTLE__V1__COMMAND__OP_CLOCK:
		return 0;
	case SETTLE__V1__COMMAND__OP_RESULTS:
		if (a->changed_txs == NULL)
			return fsm__fail(a, SETTLE_EINTERNAL,
					 "results inside results");
		return do_results(a, cmd->results, a->changed_txs);
	case SETTLE__V1__COMMAND__OP_FEATURES:
		return do_features(a, cmd->features);
	case SETTLE__V1__COMMAND__OP_BATCH:
		/* apply_batch() refuses a batch inside a batch. */
		return apply_batch(a, cmd);
	case SETTLE__V1__COMMAND__OP_MEMBER:
		return wal_member_apply(a->s, a->txn, a->time, cmd->member,
					&a->res, a->f->errmsg,
					sizeof a->f->errmsg);
	default:
		/* validate() refuses commands without an op. */
		return fsm__fail(a, SETTLE_EINTERNAL, "unhandled op %d",
				 cmd->op_case);
	}
}

/* Hand the caller a self-contained copy of r. */
static int give_result(struct fsm *f, const Settle__V1__CmdResult *r,
		       Settle__V1__CmdResult **out)
{
	if (out == NULL)
		return 0;
	size_t n = settle__v1__cmd_result__get_packed_size(r);
	uint8_t *buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		goto oom;
	settle__v1__cmd_result__pack(r, buf);
	*out = settle__v1__cmd_result__unpack(NULL, n, buf);
	free(buf);
	if (*out == NULL)
		goto oom;
	return 0;
oom:
	snprintf(f->errmsg, sizeof f->errmsg, "result: out of memory");
	return SETTLE_ENOMEM;
}

uint64_t fsm_entry_checksum(const void *buf, size_t len)
{
	/* FNV-1a 64: catches any accidental difference between two entries
	 * (not an adversary: whoever writes the raft log owns the node). */
	const uint8_t *p = buf;
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int fsm_prune_applied_log(struct fsm *f, uint64_t below_index)
{
	MDB_txn *txn;
	int rv = store_write_begin(f->store, &txn);
	if (rv == 0) {
		rv = store_applied_log_prune(f->store, txn, below_index);
		if (rv == 0)
			rv = store_write_commit(f->store, txn);
		else
			store_write_abort(txn);
	}
	if (rv != 0)
		snprintf(f->errmsg, sizeof f->errmsg, "prune applied_log: %s",
			 store_errmsg(f->store));
	return rv;
}

int fsm_init(struct fsm *f, struct store *store)
{
	memset(f, 0, sizeof *f);
	f->store = store;
	f->applied_log_keep = FSM_APPLIED_LOG_KEEP;
	f->arenas = malloc(sizeof *f->arenas);
	if (f->arenas == NULL)
		return SETTLE_ENOMEM;
	wal_arena_init(&f->arenas->cmd);
	wal_arena_init(&f->arenas->one);
	wal_arena_init(&f->arenas->rec);
	return 0;
}

void fsm_close(struct fsm *f)
{
	if (f->arenas == NULL)
		return;
	wal_arena_close(&f->arenas->cmd);
	wal_arena_close(&f->arenas->one);
	wal_arena_close(&f->arenas->rec);
	free(f->arenas);
	f->arenas = NULL;
}

/* The end of an apply that went well: commit it, unless batched (then it
 * stays in the open batch, committed with the run). keep false: nothing
 * was written (a replayed entry). */
static int end_txn(struct apply *a, bool keep)
{
	MDB_txn *txn = a->txn;

	a->txn = NULL;
	if (a->f->batched)
		return 0;
	if (!keep) {
		store_write_abort(txn);
		return 0;
	}
	return store_write_commit(a->s, txn);
}

/* The end of an apply that failed half-way: its writes must go, and in
 * batched mode they cannot be told from the rest of the batch. */
static void drop_txn(struct apply *a)
{
	if (a->txn == NULL)
		return;
	/* A feature level set by the dropped writes is gone with them. */
	fsm_forget_level(a->f);
	if (a->f->batched)
		store_batch_abort(a->s);
	else
		store_write_abort(a->txn);
	a->txn = NULL;
}

/*
 * Apply the decoded command cmd (an entry's, or one of a batch's) in a's
 * open write transaction: its stamps and cluster clock, its cmd_id (a
 * repeat gets the stored result in *stored, owned by the caller, and *out
 * points at it; another request under a used id is refused), its effect,
 * and its result stored under its cmd_id. *out is &a->res otherwise.
 * 0, or < 0 (storage, bug) and the apply must be dropped.
 */
static int apply_cmd(struct apply *a, const Settle__V1__Command *cmd,
		     Settle__V1__CmdResult **stored,
		     const Settle__V1__CmdResult **out)
{
	struct fsm *f = a->f;
	int rv;

	*out = &a->res;
	a->cmd = cmd;
	a->time = cmd->time_ms;
	f->last_wall_ms = cmd->wall_ms != 0 ? cmd->wall_ms : cmd->time_ms;
	if (cmd->time_ms > f->max_time_ms)
		f->max_time_ms = cmd->time_ms;
	if (!f->clock_read) {
		rv = store_clock_get(a->s, a->txn, &f->clock);
		if (rv != 0)
			return fsm__store_fail(a, rv, "cluster clock");
		f->clock_read = true;
	}
	if (cmd->clock_ms > f->clock) {
		f->clock = cmd->clock_ms;
		f->clock_raised = true;
	}
	a->clock = f->clock;
	bool has_id = cmd->cmd_id.len == WAL_CMD_ID_LEN;
	if (has_id) {
		rv = store_cmd_get(a->s, a->txn, cmd->cmd_id.data, stored);
		if (rv == 0 && wal_cmd_id_reused((*stored)->request_digest,
						 cmd->request_digest))
			/* Another request under a used id (a client's bug):
			 * refused, the stored answer stays for the first. */
			return fsm__reject(
			    a, SETTLE__V1__CODE__CMD_ID_REUSED,
			    "cmd_id already used by another request");
		if (rv == 0) {
			/* Applied before (a client retry): same answer. */
			*out = *stored;
			return 0;
		}
		if (rv != SETTLE_ENOTFOUND)
			return fsm__store_fail(a, rv, "get cmd");
	}
	rv = dispatch(a);
	if (rv == 0)
		rv = fsm__flush_events(a);
	if (rv != 0)
		return rv;
	if (has_id) {
		a->res.request_digest = cmd->request_digest;
		if (fsm_level(f) >= FSM_LEVEL_CMD_IDS &&
		    store_cmd_id_timed(cmd->cmd_id.data, a->time))
			rv = store_cmd_put_timed(a->s, a->txn, cmd->cmd_id.data,
						 &a->res);
		else
			rv = store_cmd_put(a->s, a->txn, cmd->cmd_id.data,
					   a->time, &a->res);
		if (rv != 0)
			return fsm__store_fail(a, rv, "put cmd");
	}
	return 0;
}

/* What a's transaction was before a's command. */
static struct fsm_was was_of(const struct apply *a)
{
	struct fsm_was w = {0, 0};

	if (a->old != NULL) {
		w.state = (int)a->old->state;
		w.failed = a->old->failed;
	}
	return w;
}

/* Tell the hook about sub's transaction: at once in batched mode, else
 * keep it, packed, and what it was, for the hook once the entry is
 * applied (and committed). */
static int changed_add(struct apply *a, struct fsm_changed *ch,
		       const struct apply *sub)
{
	const Settle__V1__TxRecord *tx = &sub->tx;
	size_t n;
	uint8_t *buf;

	if (a->f->batched) {
		/* The command is in the open batch already, as every entry
		 * before it whose hooks ran; a failure later in this entry
		 * drops the batch and stops the node (fsm_apply()). So the
		 * hook hears now, from the record in hand: no copy to pack
		 * and unpack after the entry. */
		struct fsm_was was = was_of(sub);

		a->f->on_tx_change(a->f->data, tx, &was);
		return 0;
	}
	n = settle__v1__tx_record__get_packed_size(tx);
	if (ch->n == ch->cap) {
		size_t cap = ch->cap != 0 ? 2 * ch->cap : 16;
		struct fsm_changed_tx *v = realloc(ch->v, cap * sizeof *v);

		if (v == NULL)
			return fsm__fail(a, SETTLE_ENOMEM,
					 "apply: out of memory");
		ch->v = v;
		ch->cap = cap;
	}
	buf = malloc(n > 0 ? n : 1);
	if (buf == NULL)
		return fsm__fail(a, SETTLE_ENOMEM, "apply: out of memory");
	settle__v1__tx_record__pack(tx, buf);
	ch->v[ch->n].buf = buf;
	ch->v[ch->n].len = n;
	ch->v[ch->n++].was = was_of(sub);
	return 0;
}

/*
 * A batch: each command decoded and applied as the entry of its own would
 * be (apply_cmd()), in a sub-apply sharing the entry's write transaction;
 * the transactions they change go to the hook (changed_add()). One that
 * does not decode, or a batch inside, is refused (nothing stored: it has
 * no cmd_id one could trust) and the others go on. res.count: the
 * commands applied or answered from their cmd_id.
 */
static int apply_batch(struct apply *a, const Settle__V1__Command *cmd)
{
	const Settle__V1__CmdBatch *b = cmd->batch;
	uint32_t applied = 0;

	for (size_t i = 0; i < b->n_commands; i++) {
		Settle__V1__Command *one = settle__v1__command__unpack(
		    &a->f->arenas->one.pb, b->commands[i].len,
		    b->commands[i].data);
		Settle__V1__CmdResult *stored = NULL;
		const Settle__V1__CmdResult *out = NULL;
		struct apply sub;
		int rv = 0;

		sub_init(&sub, a);
		sub.changed_txs = a->changed_txs;
		sub.res.index = a->res.index;
		if (one != NULL &&
		    one->op_case != SETTLE__V1__COMMAND__OP_BATCH) {
			rv = apply_cmd(&sub, one, &stored, &out);
			if (rv == 0 && (out != &sub.res || sub.res.code == 0))
				applied++;
			if (rv == 0 && sub.changed && out == &sub.res &&
			    a->f->on_tx_change != NULL)
				rv = changed_add(a, a->changed_txs, &sub);
		}
		if (stored != NULL)
			settle__v1__cmd_result__free_unpacked(stored, NULL);
		apply_free(&sub);
		wal_arena_reset(&a->f->arenas->one);
		if (rv != 0)
			return rv;
	}
	a->res.count = applied;
	return 0;
}

int fsm_apply(struct fsm *f, uint64_t raft_index, const void *buf, size_t len,
	      Settle__V1__CmdResult **result)
{
	struct apply a;
	struct fsm_changed changed = {NULL, 0, 0};
	memset(&a, 0, sizeof a);
	a.f = f;
	a.changed_txs = &changed;
	a.s = f->store;
	f->errmsg[0] = 0;
	f->clock_read = f->clock_raised = false;
	if (result != NULL)
		*result = NULL;
	settle__v1__cmd_result__init(&a.res);
	a.res.index = raft_index;

	int rv = f->batched ? store_batch_txn(a.s, &a.txn)
			    : store_write_begin(a.s, &a.txn);
	if (rv != 0)
		return fsm__store_fail(&a, rv, "apply");
	uint64_t applied;
	rv = store_applied_get(a.s, a.txn, &applied);
	if (rv != 0) {
		fsm__store_fail(&a, rv, "apply");
		goto err_after_txn;
	}
	uint64_t sum = fsm_entry_checksum(buf, len);
	if (raft_index <= applied) {
		/* Replay of an entry already in LMDB: nothing to do, if it
		 * is the same entry. Other bytes at an applied index mean
		 * this node applied an entry the cluster did not keep (raft
		 * 0.15's figure 8): skipping would hide a fork for good. */
		uint64_t had;
		rv = store_applied_log_get(a.s, a.txn, raft_index, &had);
		end_txn(&a, false);
		if (rv == 0 && had != sum)
			return fsm__fail(
			    &a, SETTLE_EDIVERGED,
			    "entry %llu differs from the one applied "
			    "before: this node's state diverged from "
			    "the cluster; rebuild it from a snapshot "
			    "(docs/OPERATIONS.md)",
			    (unsigned long long)raft_index);
		/* No row: pruned, or applied before the table existed. */
		if (rv != 0 && rv != SETTLE_ENOTFOUND)
			return fsm__store_fail(&a, rv, "get applied_log");
		a.res.index = applied;
		return give_result(f, &a.res, result);
	}

	Settle__V1__Command *cmd = NULL;
	Settle__V1__CmdResult *stored = NULL;
	const Settle__V1__CmdResult *out = &a.res;
	if (wal_entry_decode_in(buf, len, &f->arenas->cmd.pb, &cmd) != 0) {
		fsm__reject(&a, SETTLE__V1__CODE__INVALID_ARGUMENT,
			    "undecodable entry of %zu bytes", len);
		goto applied;
	}
	rv = apply_cmd(&a, cmd, &stored, &out);
	if (rv != 0)
		goto err_after_cmd;

applied:
	rv = f->clock_raised ? store_clock_put(a.s, a.txn, f->clock) : 0;
	if (rv != 0) {
		fsm__store_fail(&a, rv, "cluster clock");
		goto err_after_cmd;
	}
	rv = store_applied_log_put(a.s, a.txn, raft_index, sum);
	if (rv == 0 && raft_index > f->applied_log_keep)
		rv = store_applied_log_prune(a.s, a.txn,
					     raft_index - f->applied_log_keep);
	if (rv != 0) {
		fsm__store_fail(&a, rv, "put applied_log");
		goto err_after_cmd;
	}
	rv = store_applied_put(a.s, a.txn, raft_index);
	if (rv != 0) {
		fsm__store_fail(&a, rv, "put applied");
		goto err_after_cmd;
	}
	rv = end_txn(&a, true);
	if (rv != 0) {
		fsm__store_fail(&a, rv, "apply");
		goto err_after_cmd;
	}
	/* Never the payload: op, gid and outcome only. */
	settle_tracef("fsm", "apply %llu op %d gid %s: %s %s",
		      (unsigned long long)raft_index,
		      cmd != NULL ? (int)cmd->op_case : -1,
		      out->gid != NULL ? out->gid : "",
		      settle_errname(settle_err_from_wire((int)out->code)),
		      out->message != NULL ? out->message : "");
	if (a.changed && out == &a.res && f->on_tx_change != NULL) {
		struct fsm_was was = was_of(&a);

		f->on_tx_change(f->data, &a.tx, &was);
	}
	for (size_t i = 0; i < changed.n && out == &a.res; i++) {
		Settle__V1__TxRecord *tx = settle__v1__tx_record__unpack(
		    NULL, changed.v[i].len, changed.v[i].buf);
		if (tx == NULL) {
			/* Committed already: the leader's periodic scan of
			 * `due` finds what the hook would have said. */
			settle_log(SETTLE_LOG_WARN, "fsm",
				   "apply %llu: no memory to report a change",
				   (unsigned long long)raft_index);
			continue;
		}
		f->on_tx_change(f->data, tx, &changed.v[i].was);
		settle__v1__tx_record__free_unpacked(tx, NULL);
	}
	rv = give_result(f, out, result);
	/* The apply is committed: a failure to copy the result is reported
	 * but nothing is rolled back. */
	goto out;

err_after_cmd:
	drop_txn(&a);
out:
	changed_free(&changed);
	if (stored != NULL)
		settle__v1__cmd_result__free_unpacked(stored, NULL);
	apply_free(&a);
	wal_arena_reset(&f->arenas->cmd);
	return rv;

err_after_txn:
	drop_txn(&a);
	changed_free(&changed);
	return rv;
}

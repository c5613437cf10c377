/*
 * xa.c — the XA commands of the FSM (semantics in xa.h).
 *
 * Every command that moves branches loads all of them into a working set,
 * changes the copies, and flush() writes the changed ones (each move
 * checked against its table by fsm__write_branch(): an RM branch's or a
 * TCC branch's), recomputes the tx's pending / failed / due_ms from the
 * branches, finishes it when nothing is left, and writes it (move checked
 * against the XA table). A branch moves at most once per apply, so the
 * stored state is always the "from" of its move.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "wal/entry.h"
#include "wal/fsm_int.h"
#include "wal/sm.h"
#include "wal/xa.h"

#define ST(x)	SETTLE__V1__BRANCH_STATE__##x
#define TX(x)	SETTLE__V1__TX_STATE__##x
#define HEUR(x) SETTLE__V1__HEURISTIC__##x
#define VOTE(x) SETTLE__V1__XA_VOTE__##x
#define CODE(x) SETTLE__V1__CODE__##x
#define OUT(x)	SETTLE__V1__OUTCOME__OUTCOME_##x
#define XA_MODE SETTLE__V1__TX_MODE__XA

/* ---- Names, XIDs, heuristics -------------------------------------------- */

bool wal_xa_is_rm(const Settle__V1__BranchRecord *b)
{
	return b->rm != NULL && b->rm[0] != 0;
}

int wal_xa_rm_validate(const char *rm)
{
	if (rm == NULL || rm[0] == 0)
		return SETTLE_EINVAL;
	for (size_t i = 0; rm[i] != 0; i++) {
		char c = rm[i];
		if (i >= WAL_XA_RM_MAX)
			return SETTLE_EINVAL;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return SETTLE_EINVAL;
	}
	return 0;
}

int wal_xa_branch_xid(uint32_t format_id, const char *gid, uint32_t branch_id,
		      struct xa_xid *x)
{
	char bq[16];
	int n = snprintf(bq, sizeof bq, "%" PRIu32, branch_id);
	if (gid == NULL || branch_id == 0) {
		memset(x, 0, sizeof *x);
		return SETTLE_EINVAL;
	}
	return xa_xid_init(x, format_id, gid, strlen(gid), bq, (size_t)n);
}

int wal_xa_xid_branch(const struct xa_xid *x, char gid[WAL_XA_GID_MAX + 1],
		      uint32_t *branch_id)
{
	if (xa_xid_validate(x) != 0)
		return SETTLE_EINVAL;
	memcpy(gid, xa_xid_gtrid(x), x->gtrid_len);
	gid[x->gtrid_len] = 0;
	/* A NUL inside the gtrid would hide the rest of it. */
	if (strlen(gid) != x->gtrid_len || wal_gid_validate(gid) != 0)
		return SETTLE_EINVAL;
	const uint8_t *b = xa_xid_bqual(x);
	if (x->bqual_len > 10 || b[0] == '0')
		return SETTLE_EINVAL;
	uint64_t v = 0;
	for (size_t i = 0; i < x->bqual_len; i++) {
		if (b[i] < '0' || b[i] > '9')
			return SETTLE_EINVAL;
		v = v * 10 + (uint64_t)(b[i] - '0');
	}
	if (v == 0 || v > UINT32_MAX)
		return SETTLE_EINVAL;
	*branch_id = (uint32_t)v;
	return 0;
}

int wal_xa_heuristic_merge(int tx, int branch)
{
	if (branch == HEUR(HEURISTIC_NONE))
		return tx;
	if (tx == HEUR(HEURISTIC_NONE) || tx == branch)
		return branch;
	/* Two different outcomes (an unknown one included): nobody can
	 * say the transaction ended one way. */
	return HEUR(HEUR_MIXED);
}

const char *wal_xa_vote_name(int vote)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &settle__v1__xa_vote__descriptor, vote);
	return v != NULL ? v->name : "?";
}

const char *wal_xa_heuristic_name(int heuristic)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &settle__v1__heuristic__descriptor, heuristic);
	return v != NULL ? v->name : "?";
}

/* ---- Validation --------------------------------------------------------- */

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

static int check_gid(const char *gid, char *errmsg, size_t errmsg_len)
{
	if (wal_gid_validate(gid) != 0)
		return BAD(SETTLE_EINVAL,
			   "gid must be 1..%d printable ASCII characters "
			   "without spaces",
			   WAL_GID_MAX);
	return 0;
}

static int check_text(const char *text, const char *field, char *errmsg,
		      size_t errmsg_len)
{
	if (text != NULL && strnlen(text, WAL_TEXT_MAX + 1) > WAL_TEXT_MAX)
		return BAD(SETTLE_ETOOBIG, "%s longer than %d bytes", field,
			   WAL_TEXT_MAX);
	return 0;
}

int wal_xa_register_validate(const Settle__V1__CmdRegister *c, char *errmsg,
			     size_t errmsg_len)
{
	int rv = check_gid(c->gid, errmsg, errmsg_len);
	if (rv != 0)
		return rv;
	if (wal_xa_rm_validate(c->rm) != 0)
		return BAD(SETTLE_EINVAL,
			   "rm must be 1..%d characters of A-Z a-z 0-9 _ . -",
			   WAL_XA_RM_MAX);
	if ((c->endpoint != NULL && c->endpoint[0] != 0) ||
	    (c->resource != NULL && c->resource[0] != 0) || c->payload.len)
		return BAD(SETTLE_EINVAL, "an RM branch (rm) has no endpoint, "
					  "resource or payload");
	if (c->xa_format_id > INT32_MAX)
		return BAD(SETTLE_EINVAL, "xa_format_id over 2^31-1");
	return 0;
}

int wal_xa_vote_validate(const Settle__V1__CmdXaVote *c, char *errmsg,
			 size_t errmsg_len)
{
	int rv = check_gid(c->gid, errmsg, errmsg_len);
	if (rv != 0)
		return rv;
	if (c->vote < VOTE(VOTE_OK) || c->vote > VOTE(PHASE2_NOT_DONE))
		return BAD(SETTLE_EINVAL, "unknown vote %d", (int)c->vote);
	if (c->branch_id == 0 && c->vote < VOTE(PHASE2_COMMITTED))
		return BAD(SETTLE_EINVAL,
			   "branch_id missing (0 is for PHASE2_* votes)");
	return check_text(c->error, "error", errmsg, errmsg_len);
}

int wal_xa_prepare_validate(const Settle__V1__CmdXaPrepare *c, char *errmsg,
			    size_t errmsg_len)
{
	return check_gid(c->gid, errmsg, errmsg_len);
}

int wal_xa_result_validate(const Settle__V1__CmdXaResult *c, char *errmsg,
			   size_t errmsg_len)
{
	int rv = check_gid(c->gid, errmsg, errmsg_len);
	if (rv != 0)
		return rv;
	if (c->branch_id == 0)
		return BAD(SETTLE_EINVAL, "branch_id missing");
	if (c->phase != ST(XA_BRANCH_COMMITTING) &&
	    c->phase != ST(XA_BRANCH_ROLLING_BACK) &&
	    c->phase != ST(XA_BRANCH_ONE_PHASE))
		return BAD(SETTLE_EINVAL,
			   "phase must be XA_BRANCH_COMMITTING, "
			   "XA_BRANCH_ROLLING_BACK or XA_BRANCH_ONE_PHASE");
	if (c->outcome != OUT(OK) && c->outcome != OUT(RETRY) &&
	    c->outcome != OUT(FAILURE))
		return BAD(SETTLE_EINVAL, "unknown outcome %d",
			   (int)c->outcome);
	if (c->phase == ST(XA_BRANCH_ONE_PHASE) && c->outcome == OUT(FAILURE))
		return BAD(SETTLE_EINVAL,
			   "a one-phase branch cannot fail: its outcome is "
			   "OK (with a heuristic) or awaited (RETRY)");
	if (c->heuristic < HEUR(HEURISTIC_NONE) ||
	    c->heuristic > HEUR(HEUR_MIXED))
		return BAD(SETTLE_EINVAL, "unknown heuristic %d",
			   (int)c->heuristic);
	return check_text(c->error, "error", errmsg, errmsg_len);
}

int wal_xa_forget_validate(const Settle__V1__CmdXaForget *c, char *errmsg,
			   size_t errmsg_len)
{
	return check_gid(c->gid, errmsg, errmsg_len);
}

int wal_xa_heuristic_validate(const Settle__V1__CmdXaHeuristic *c, char *errmsg,
			      size_t errmsg_len)
{
	int rv = check_gid(c->gid, errmsg, errmsg_len);
	if (rv != 0)
		return rv;
	if (c->decision != SETTLE__V1__DECISION__DECIDE_COMMIT &&
	    c->decision != SETTLE__V1__DECISION__DECIDE_ROLLBACK)
		return BAD(SETTLE_EINVAL,
			   "decision must be DECIDE_COMMIT or DECIDE_ROLLBACK");
	if (c->reason == NULL || c->reason[0] == 0)
		return BAD(SETTLE_EINVAL,
			   "reason required: who decided heuristically and "
			   "why");
	return check_text(c->reason, "reason", errmsg, errmsg_len);
}

/* ---- The working set ---------------------------------------------------- */

struct xa {
	struct apply *a;
	size_t n;
	Settle__V1__BranchRecord *br; /* shallow copies of a->branches */
	bool *dirty;
};

static int xa_load(struct apply *a, struct xa *x)
{
	memset(x, 0, sizeof *x);
	x->a = a;
	int rv = store_branches_list_in(a->s, a->txn, a->tx.gid, fsm__rec(a),
					&a->branches, &a->n_branches);
	a->branches_in_arena = true;
	if (rv != 0)
		return fsm__store_fail(a, rv, "list branches");
	x->n = a->n_branches;
	if (x->n != a->tx.branches)
		return fsm__fail(a, SETTLE_EINTERNAL,
				 "tx %s counts %u branches, %zu stored",
				 a->tx.gid, a->tx.branches, x->n);
	x->br = calloc(x->n + 1, sizeof *x->br);
	x->dirty = calloc(x->n + 1, sizeof *x->dirty);
	if (x->br == NULL || x->dirty == NULL)
		return fsm__fail(a, SETTLE_ENOMEM, "xa: out of memory");
	for (size_t i = 0; i < x->n; i++) {
		if (a->branches[i]->branch_id != i + 1)
			return fsm__fail(a, SETTLE_EINTERNAL,
					 "tx %s: branch %zu stored as %u",
					 a->tx.gid, i + 1,
					 a->branches[i]->branch_id);
		x->br[i] = *a->branches[i];
	}
	return 0;
}

static void xa_free(struct xa *x)
{
	free(x->br);
	free(x->dirty);
}

/* Index of branch id, or x->n when the tx has no such branch. */
static size_t xa_find(const struct xa *x, uint32_t id)
{
	return id >= 1 && id <= x->n ? id - 1 : x->n;
}

/* The branch goes to state `to`; checked when flushed. */
static void set(struct xa *x, size_t i, int to)
{
	x->br[i].state = to;
	x->dirty[i] = true;
}

/* A call of phase 2 starts: due now, counted afresh. */
static void start_call(struct xa *x, size_t i, int to)
{
	set(x, i, to);
	x->br[i].attempts = 0;
	x->br[i].next_retry_ms = x->a->time;
	x->br[i].phase2_index = x->a->res.index;
	x->br[i].last_error = "";
}

static bool in_phase2(int st)
{
	return st == ST(XA_BRANCH_COMMITTING) ||
	       st == ST(XA_BRANCH_ROLLING_BACK) ||
	       st == ST(XA_BRANCH_ONE_PHASE) || st == ST(CONFIRMING) ||
	       st == ST(CANCELLING);
}

/*
 * Write the changed branches, recompute the tx's derived fields from its
 * branches, finish it when its phase 2 is over, and write it.
 */
static int flush(struct xa *x, int tx_from)
{
	struct apply *a = x->a;
	Settle__V1__TxRecord *tx = &a->tx;
	uint32_t pending = 0, failed = 0;
	uint64_t due = 0;
	bool rolled_back = false;
	for (size_t i = 0; i < x->n; i++) {
		Settle__V1__BranchRecord *b = &x->br[i];
		if (x->dirty[i]) {
			int rv =
			    fsm__write_branch(a, (int)a->branches[i]->state, b);
			if (rv != 0)
				return rv;
		}
		if (in_phase2((int)b->state)) {
			pending++;
			if (due == 0 || b->next_retry_ms < due)
				due = b->next_retry_ms;
		}
		failed += b->state == ST(FAILED);
		rolled_back |=
		    wal_xa_is_rm(b) && b->state == ST(XA_BRANCH_ROLLED_BACK);
	}
	switch (tx->state) {
	case TX(ACTIVE):
		tx->due_ms = tx->deadline_ms;
		break;
	case TX(XA_PREPARED):
		tx->due_ms = tx->xid.len != 0 ? 0 : tx->deadline_ms;
		break;
	case TX(COMMITTING):
	case TX(ROLLING_BACK):
		tx->pending = pending;
		tx->failed = failed;
		tx->due_ms = due;
		if (pending == 0 && failed == 0) {
			/* A COMMITTING tx holds a rolled-back RM branch only
			 * when its one-phase commit was rolled back. */
			int final = tx->state == TX(COMMITTING) && !rolled_back
					? TX(COMMITTED)
					: TX(ROLLED_BACK);
			int rv = fsm__finish(a, final);
			if (rv != 0)
				return rv;
		}
		break;
	default:
		break;
	}
	return fsm__write_tx(a, tx_from);
}

/* Record heuristic h (not NONE) on branch i and merge it into the tx. */
static int record_heuristic(struct xa *x, size_t i, int h, const char *text)
{
	struct apply *a = x->a;
	x->br[i].heuristic = h;
	x->dirty[i] = true;
	a->tx.heuristic = wal_xa_heuristic_merge((int)a->tx.heuristic, h);
	return fsm__add_event(a, "heuristic", x->br[i].branch_id, "%s: %s",
			      wal_xa_heuristic_name(h), text);
}

/* Load gid, refusing a tx of another mode. 0: loaded, 1: rejected, < 0. */
static int load_xa(struct apply *a, const char *gid)
{
	int rv = fsm__load_tx(a, gid);
	if (rv != 0)
		return rv;
	if (a->tx.mode != XA_MODE) {
		fsm__result_tx(a, &a->tx);
		fsm__reject(a, CODE(WRONG_STATE),
			    "transaction %s is not an XA transaction", gid);
		return 1;
	}
	return 0;
}

/* Reject: branch id of the loaded tx does not exist. Returns 0. */
static int no_branch(struct apply *a, uint32_t id)
{
	fsm__result_tx(a, &a->tx);
	return fsm__reject(a, CODE(NOT_FOUND), "branch %u of %s not found", id,
			   a->tx.gid);
}

/* ---- Decisions ---------------------------------------------------------- */

/* -> COMMITTING: PREPARED RM branches and REGISTERED TCC branches start
 * their phase 2; flush() finishes at once when there is none. */
/* -> COMMITTING. initiator_ms > 0: the prepared RM branches are the
 * initiator's to commit for that long (phase 2 by the initiator). */
static int start_commit(struct xa *x, const char *what, uint32_t initiator_ms)
{
	uint32_t left = 0;
	for (size_t i = 0; i < x->n; i++) {
		int st = (int)x->br[i].state;
		if (st == ST(XA_BRANCH_PREPARED)) {
			start_call(x, i, ST(XA_BRANCH_COMMITTING));
			if (initiator_ms > 0) {
				x->br[i].initiator_phase2 = true;
				x->br[i].next_retry_ms =
				    x->a->time + initiator_ms;
				left++;
			}
		} else if (st == ST(REGISTERED)) {
			start_call(x, i, ST(CONFIRMING));
		}
	}
	x->a->tx.state = TX(COMMITTING);
	if (left > 0)
		return fsm__add_event(x->a, "commit", 0,
				      "%s%sphase 2 of %u branch(es) by the "
				      "initiator, %u ms",
				      what, what[0] ? "; " : "", left,
				      initiator_ms);
	return fsm__add_event(x->a, "commit", 0, "%s", what);
}

/* -> ROLLING_BACK with reason (copied). */
static int start_rollback(struct xa *x, const char *reason)
{
	struct apply *a = x->a;
	for (size_t i = 0; i < x->n; i++) {
		int st = (int)x->br[i].state;
		if (st == ST(XA_BRANCH_ACTIVE) || st == ST(XA_BRANCH_PREPARED))
			start_call(x, i, ST(XA_BRANCH_ROLLING_BACK));
		else if (st == ST(REGISTERED))
			start_call(x, i, ST(CANCELLING));
	}
	if (reason != a->reason)
		snprintf(a->reason, sizeof a->reason, "%s", reason);
	a->tx.reason = a->reason;
	a->tx.state = TX(ROLLING_BACK);
	return fsm__add_event(a, "rollback", 0, "%s", a->reason);
}

/* Counts of an ACTIVE tx's branches for the commit decisions. */
struct tally {
	uint32_t unvoted, prepared, tcc;
	size_t first_unvoted; /* index, or n */
};

static void count(const struct xa *x, struct tally *t)
{
	memset(t, 0, sizeof *t);
	t->first_unvoted = x->n;
	for (size_t i = 0; i < x->n; i++) {
		const Settle__V1__BranchRecord *b = &x->br[i];
		if (!wal_xa_is_rm(b)) {
			t->tcc++;
		} else if (b->state == ST(XA_BRANCH_ACTIVE)) {
			if (t->unvoted++ == 0)
				t->first_unvoted = i;
		} else if (b->state == ST(XA_BRANCH_PREPARED)) {
			t->prepared++;
		}
	}
}

static int decide_commit(struct apply *a, struct xa *x,
			 const Settle__V1__CmdDecide *c)
{
	Settle__V1__TxRecord *tx = &a->tx;
	if (tx->state == TX(XA_PREPARED))
		return start_commit(x, "", c->initiator_phase2_ms);
	/* ACTIVE: one phase only. */
	if (!c->one_phase)
		return fsm__reject(a, CODE(WRONG_STATE),
				   "transaction %s is ACTIVE: prepare it first "
				   "(or commit one_phase)",
				   tx->gid);
	struct tally t;
	count(x, &t);
	if (t.unvoted == 0)
		return start_commit(x, "one phase, every branch voted",
				    c->initiator_phase2_ms);
	if (t.unvoted == 1 && t.prepared == 0 && t.tcc == 0) {
		/* The initiator commits its lone branch itself, on the
		 * connection that did the work, and reports; the leader
		 * waits for that report until the grace runs out. */
		size_t i = t.first_unvoted;
		set(x, i, ST(XA_BRANCH_ONE_PHASE));
		x->br[i].attempts = 0;
		x->br[i].next_retry_ms = a->time + WAL_XA_ONE_PHASE_GRACE_MS;
		tx->state = TX(COMMITTING);
		return fsm__add_event(a, "commit", x->br[i].branch_id,
				      "one phase");
	}
	return fsm__reject(a, CODE(WRONG_STATE),
			   "transaction %s: branch %u has not voted (one "
			   "phase commits a lone unvoted branch only)",
			   tx->gid, x->br[t.first_unvoted].branch_id);
}

static int commit_votes(struct apply *a, struct xa *x,
			const Settle__V1__CmdDecide *c);

int wal_xa_decide_apply(struct apply *a, const Settle__V1__CmdDecide *c)
{
	Settle__V1__TxRecord *tx = &a->tx;
	bool commit = c->decision == SETTLE__V1__DECISION__DECIDE_COMMIT;
	int st = (int)tx->state;
	fsm__result_tx(a, tx);
	if (commit ? st == TX(COMMITTING) || st == TX(COMMITTED)
		   : st == TX(ROLLING_BACK) || st == TX(ROLLED_BACK))
		return 0; /* a retried decision: where it stands */
	if (st != TX(ACTIVE) && st != TX(XA_PREPARED)) {
		if (tx->heuristic != HEUR(HEURISTIC_NONE))
			/* The result carries the heuristic: the TM's
			 * XA_HEURCOM / XA_HEURRB / XA_HEURMIX / XA_HEURHAZ. */
			return fsm__reject(
			    a, CODE(WRONG_STATE),
			    "transaction %s is %s with heuristic %s (forget "
			    "it once dealt with)",
			    tx->gid, wal_tx_state_name(tx->state),
			    wal_xa_heuristic_name((int)tx->heuristic));
		if (st == TX(COMMITTING))
			return fsm__reject(a, CODE(WRONG_STATE),
					   "transaction %s is COMMITTING: the "
					   "commit decision is made",
					   tx->gid);
		return fsm__wrong_state(a);
	}
	/* As in TCC (wal/fsm.c): a COMMIT stamped at or past the deadline
	 * loses to it, except in doubt with a TM's xid (no deadline). */
	bool late = commit && tx->expires_clock_ms != 0 &&
		    fsm__expired(a, tx) &&
		    (st == TX(ACTIVE) || tx->xid.len == 0);
	if (late)
		commit = false;
	if (!commit && c->timeout) {
		if (!fsm__expired(a, tx))
			return fsm__reject(a, CODE(WRONG_STATE),
					   "transaction %s: deadline not "
					   "reached",
					   tx->gid);
		if (st == TX(XA_PREPARED) && tx->xid.len != 0)
			return fsm__reject(a, CODE(WRONG_STATE),
					   "transaction %s is XA_PREPARED and "
					   "in doubt: only its transaction "
					   "manager decides",
					   tx->gid);
	}
	struct xa x;
	int rv = xa_load(a, &x);
	if (rv == 0 && commit && c->n_votes > 0)
		rv = commit_votes(a, &x, c);
	if (rv == 0 && a->res.code == 0) {
		if (commit && tx->state == TX(ROLLING_BACK)) {
			/* A vote with it was a rollback: answered OK with
			 * that state, nothing more to decide. */
		} else if (commit) {
			rv = decide_commit(a, &x, c);
		} else {
			const char *why =
			    late ? "deadline (passed before the commit)"
			    : c->reason != NULL && c->reason[0] ? c->reason
			    : c->timeout			? "deadline"
								: "";
			rv = start_rollback(&x, why);
		}
	}
	if (rv == 0 && a->res.code == 0)
		rv = flush(&x, st);
	xa_free(&x);
	if (rv == 0 && late)
		return fsm__reject(a, CODE(WRONG_STATE),
				   "transaction %s: its deadline passed before "
				   "this commit; rolled back",
				   tx->gid);
	return rv;
}

/* ---- Register, vote, prepare -------------------------------------------- */

int wal_xa_register_apply(struct apply *a, const Settle__V1__CmdRegister *c)
{
	int rv = fsm__load_tx(a, c->gid);
	if (rv != 0)
		return rv < 0 ? rv : 0;
	Settle__V1__TxRecord *tx = &a->tx;
	fsm__result_tx(a, tx);
	if (tx->mode != XA_MODE)
		return fsm__reject(a, CODE(WRONG_STATE),
				   "transaction %s is not an XA transaction: "
				   "only those have RM branches",
				   tx->gid);
	if (tx->state != TX(ACTIVE))
		return fsm__wrong_state(a);
	if (tx->branches >= WAL_MAX_BRANCHES)
		return fsm__reject(a, CODE(TOO_LARGE),
				   "transaction %s has %d branches already",
				   tx->gid, WAL_MAX_BRANCHES);
	rv = wal_xa_add_rm_branch(a, c->rm, c->xa_format_id);
	if (rv == 0 && a->res.code == 0)
		rv = fsm__write_tx(a, tx->state);
	return rv;
}

int wal_xa_add_rm_branch(struct apply *a, const char *rm, uint32_t format_id)
{
	Settle__V1__TxRecord *tx = &a->tx;
	Settle__V1__BranchRecord b;
	settle__v1__branch_record__init(&b);
	b.gid = tx->gid;
	b.branch_id = tx->next_branch_id++;
	b.rm = (char *)rm;
	b.state = ST(XA_BRANCH_ACTIVE);
	struct xa_xid xid;
	size_t len;
	char text[XA_XID_TEXT_MAX];
	if (wal_xa_branch_xid(format_id, tx->gid, b.branch_id, &xid) != 0 ||
	    xa_xid_encode(&xid, a->xid, sizeof a->xid, &len) != 0 ||
	    xa_xid_format(&xid, text, sizeof text) != 0)
		/* Only a gid over 64 bytes (a tx from before validation
		 * checked it) gets here. */
		return fsm__reject(a, CODE(INVALID_ARGUMENT),
				   "transaction %s: its gid cannot be an XID's "
				   "gtrid",
				   tx->gid);
	b.xid.data = a->xid;
	b.xid.len = len;
	int rv = fsm__write_branch(a, ST(BRANCH_STATE_UNSPECIFIED), &b);
	if (rv != 0)
		return rv;
	tx->branches++;
	a->res.branch_id = b.branch_id;
	a->res.xid = b.xid;
	return fsm__add_event(a, "register", b.branch_id, "rm %s xid %s", rm,
			      text);
}

/* The state a vote leads the branch to. */
static int vote_target(int vote)
{
	switch (vote) {
	case VOTE(VOTE_OK):
		return ST(XA_BRANCH_PREPARED);
	case VOTE(VOTE_READ_ONLY):
		return ST(XA_BRANCH_READ_ONLY);
	case VOTE(VOTE_ROLLBACK):
	case VOTE(ONE_PHASE_ROLLED_BACK):
		return ST(XA_BRANCH_ROLLED_BACK);
	case VOTE(PHASE2_NOT_DONE):
		return ST(XA_BRANCH_COMMITTING);
	default: /* ONE_PHASE_COMMITTED, ONE_PHASE_UNKNOWN, PHASE2_COMMITTED */
		return ST(XA_BRANCH_COMMITTED);
	}
}

/*
 * PHASE2_COMMITTED / PHASE2_NOT_DONE on branch i, which the commit left to
 * the initiator. 1: a repeat, or the leader committed it first (answered
 * as it stands); 0: applied; else a rejection or failure.
 */
static int phase2_vote(struct apply *a, struct xa *x, size_t i,
		       const Settle__V1__CmdXaVote *c)
{
	Settle__V1__BranchRecord *b = &x->br[i];
	const char *err = c->error != NULL ? c->error : "";
	if (b->initiator_phase2 && b->state == ST(XA_BRANCH_COMMITTED))
		return 1;
	if (!b->initiator_phase2 || b->state != ST(XA_BRANCH_COMMITTING))
		return fsm__reject(
		    a, CODE(WRONG_STATE), "branch %u of %s is %s%s: no %s now",
		    b->branch_id, a->tx.gid, wal_branch_state_name(b->state),
		    b->initiator_phase2 ? "" : ", not left to the initiator",
		    wal_xa_vote_name(c->vote));
	if (c->vote == VOTE(PHASE2_NOT_DONE)) {
		/* The leader commits it now. */
		b->next_retry_ms = a->time;
		x->dirty[i] = true;
	} else {
		set(x, i, ST(XA_BRANCH_COMMITTED));
		b->next_retry_ms = 0;
	}
	b->last_error = (char *)err;
	return fsm__add_event(a, "vote", b->branch_id, "%s%s%s",
			      wal_xa_vote_name(c->vote), err[0] ? ": " : "",
			      err);
}

static int vote(struct apply *a, struct xa *x, size_t i,
		const Settle__V1__CmdXaVote *c)
{
	Settle__V1__TxRecord *tx = &a->tx;
	Settle__V1__BranchRecord *b = &x->br[i];
	const char *err = c->error != NULL ? c->error : "";
	int target = vote_target(c->vote);
	bool one_phase = c->vote >= VOTE(ONE_PHASE_COMMITTED);
	int need = one_phase ? ST(XA_BRANCH_ONE_PHASE) : ST(XA_BRANCH_ACTIVE);
	if ((int)b->state == target)
		return 1; /* a repeat: answered as it stands */
	if ((int)b->state != need || (!one_phase && tx->state != TX(ACTIVE)))
		return fsm__reject(
		    a, CODE(WRONG_STATE),
		    "branch %u of %s is %s (transaction %s): "
		    "no %s now",
		    b->branch_id, tx->gid, wal_branch_state_name(b->state),
		    wal_tx_state_name(tx->state), wal_xa_vote_name(c->vote));
	set(x, i, target);
	b->next_retry_ms = 0;
	b->last_error = (char *)err;
	int rv =
	    fsm__add_event(a, "vote", b->branch_id, "%s%s%s",
			   wal_xa_vote_name(c->vote), err[0] ? ": " : "", err);
	if (rv != 0)
		return rv;
	switch (c->vote) {
	case VOTE(VOTE_ROLLBACK):
		snprintf(a->reason, sizeof a->reason,
			 "branch %u voted rollback: %s", b->branch_id, err);
		return start_rollback(x, a->reason);
	case VOTE(ONE_PHASE_ROLLED_BACK):
		snprintf(a->reason, sizeof a->reason,
			 "branch %u: the one-phase commit rolled back: %s",
			 b->branch_id, err);
		tx->reason = a->reason;
		return 0;
	case VOTE(ONE_PHASE_UNKNOWN):
		return record_heuristic(
		    x, i, HEUR(HEUR_HAZARD),
		    err[0] ? err : "the one-phase commit's outcome is unknown");
	default:
		return 0;
	}
}

/*
 * The votes a commit carries (CmdDecide.votes), each as XA_VOTE would
 * record it, on the ACTIVE tx a->tx: all checked before any is applied,
 * so that a refusal changes nothing. A rollback vote rolls the tx back
 * and ends the list. 0 or a failure; a refusal in a->res.code.
 */
static int commit_votes(struct apply *a, struct xa *x,
			const Settle__V1__CmdDecide *c)
{
	Settle__V1__CmdXaVote v = SETTLE__V1__CMD_XA_VOTE__INIT;
	for (size_t k = 0; k < c->n_votes; k++) {
		const Settle__V1__XaBranchVote *bv = c->votes[k];
		size_t i = xa_find(x, bv->branch_id);
		if (i == x->n)
			return no_branch(a, bv->branch_id);
		const Settle__V1__BranchRecord *b = &x->br[i];
		if (!wal_xa_is_rm(b) ||
		    ((int)b->state != vote_target(bv->vote) &&
		     (b->state != ST(XA_BRANCH_ACTIVE) ||
		      a->tx.state != TX(ACTIVE))))
			return fsm__reject(
			    a, CODE(WRONG_STATE),
			    "branch %u of %s is %s (transaction %s): no %s "
			    "now",
			    b->branch_id, a->tx.gid,
			    wal_branch_state_name(b->state),
			    wal_tx_state_name(a->tx.state),
			    wal_xa_vote_name(bv->vote));
	}
	v.gid = a->tx.gid;
	for (size_t k = 0; k < c->n_votes; k++) {
		v.branch_id = c->votes[k]->branch_id;
		v.vote = c->votes[k]->vote;
		v.error = c->votes[k]->error;
		int rv = vote(a, x, xa_find(x, v.branch_id), &v);
		if (rv < 0 || a->res.code != 0)
			return rv;
		if (a->tx.state != TX(ACTIVE))
			break; /* a rollback vote */
	}
	return 0;
}

/* PHASE2_* votes: on branch c->branch_id, or (0) on every branch left to
 * the initiator. */
static int phase2_votes(struct apply *a, struct xa *x,
			const Settle__V1__CmdXaVote *c)
{
	int from = (int)a->tx.state, rv = 0;
	bool applied = false, any = false;
	for (size_t i = 0; i < x->n && rv == 0 && a->res.code == 0; i++) {
		if (c->branch_id != 0 ? x->br[i].branch_id != c->branch_id
				      : !x->br[i].initiator_phase2)
			continue;
		any = true;
		rv = phase2_vote(a, x, i, c);
		if (rv == 1)
			rv = 0;
		else if (rv == 0 && a->res.code == 0)
			applied = true;
		if (c->branch_id != 0)
			a->res.branch_state = x->br[i].state;
	}
	if (rv != 0 || a->res.code != 0)
		return rv;
	if (!any)
		return c->branch_id != 0
			   ? no_branch(a, c->branch_id)
			   : fsm__reject(a, CODE(WRONG_STATE),
					 "transaction %s has no branch left "
					 "to the initiator",
					 a->tx.gid);
	if (!applied)
		return 0;
	rv = flush(x, from);
	fsm__result_tx(a, &a->tx);
	return rv;
}

int wal_xa_vote_apply(struct apply *a, const Settle__V1__CmdXaVote *c)
{
	int rv = load_xa(a, c->gid);
	if (rv != 0)
		return rv < 0 ? rv : 0;
	int from = (int)a->tx.state;
	struct xa x;
	rv = xa_load(a, &x);
	if (rv != 0)
		goto out;
	a->res.branch_id = c->branch_id;
	fsm__result_tx(a, &a->tx);
	if (c->vote >= VOTE(PHASE2_COMMITTED)) {
		rv = phase2_votes(a, &x, c);
		goto out;
	}
	size_t i = xa_find(&x, c->branch_id);
	if (i == x.n) {
		rv = no_branch(a, c->branch_id);
		goto out;
	}
	if (!wal_xa_is_rm(&x.br[i])) {
		rv = fsm__reject(a, CODE(WRONG_STATE),
				 "branch %u of %s is not an RM branch: it has "
				 "nothing to vote",
				 c->branch_id, a->tx.gid);
		goto out;
	}
	rv = vote(a, &x, i, c);
	if (rv == 0 && a->res.code == 0)
		rv = flush(&x, from);
	else if (rv == 1)
		rv = 0;
	a->res.branch_state = x.br[i].state;
out:
	xa_free(&x);
	return rv;
}

int wal_xa_prepare_apply(struct apply *a, const Settle__V1__CmdXaPrepare *c)
{
	int rv = load_xa(a, c->gid);
	if (rv != 0)
		return rv < 0 ? rv : 0;
	Settle__V1__TxRecord *tx = &a->tx;
	int from = (int)tx->state;
	fsm__result_tx(a, tx);
	switch (from) {
	case TX(XA_PREPARED):
	case TX(ROLLING_BACK):
	case TX(ROLLED_BACK):
		/* A repeat, or a rollback the TM hears as XA_RB*. */
		return 0;
	case TX(ACTIVE):
	case TX(COMMITTED):
		break;
	default:
		return fsm__wrong_state(a);
	}
	struct xa x;
	rv = xa_load(a, &x);
	if (rv != 0)
		goto out;
	bool phase2 = false;
	for (size_t i = 0; i < x.n; i++) {
		const Settle__V1__BranchRecord *b = &x.br[i];
		int st = (int)b->state;
		if (!wal_xa_is_rm(b) || (st != ST(XA_BRANCH_READ_ONLY)))
			phase2 = true;
		if (from == TX(ACTIVE) && wal_xa_is_rm(b) &&
		    st != ST(XA_BRANCH_PREPARED) &&
		    st != ST(XA_BRANCH_READ_ONLY)) {
			rv = fsm__reject(a, CODE(WRONG_STATE),
					 "transaction %s: branch %u has not "
					 "voted",
					 tx->gid, b->branch_id);
			goto out;
		}
	}
	if (from == TX(COMMITTED)) {
		/* A repeated prepare of a read-only transaction answers
		 * the same; a committed one that had work is another
		 * story. */
		if (phase2)
			rv = fsm__wrong_state(a);
		else
			a->res.read_only = true;
		goto out;
	}
	if (!phase2) {
		rv = fsm__add_event(a, "prepare", 0, "read-only");
		if (rv == 0)
			rv = fsm__finish(a, TX(COMMITTED));
		if (rv == 0)
			rv = fsm__write_tx(a, from);
		a->res.read_only = true;
		goto out;
	}
	tx->state = TX(XA_PREPARED);
	rv = fsm__add_event(a, "prepare", 0, "%s",
			    tx->xid.len != 0 ? "in doubt until the TM decides"
					     : "until the deadline");
	if (rv == 0)
		rv = flush(&x, from);
out:
	xa_free(&x);
	return rv;
}

/* ---- Phase 2 results ---------------------------------------------------- */

/* What one phase-2 call of branch i answered. */
struct answer {
	int phase; /* the branch state the call was made in */
	int outcome;
	int heuristic;
	const char *error;
	uint32_t attempt;
	uint64_t next_retry_ms;
};

static int phase_done(int phase)
{
	switch (phase) {
	case ST(XA_BRANCH_ROLLING_BACK):
		return ST(XA_BRANCH_ROLLED_BACK);
	case ST(CONFIRMING):
		return ST(CONFIRMED);
	case ST(CANCELLING):
		return ST(CANCELLED);
	default: /* XA_BRANCH_COMMITTING, XA_BRANCH_ONE_PHASE */
		return ST(XA_BRANCH_COMMITTED);
	}
}

static const char *phase_kind(int phase)
{
	switch (phase) {
	case ST(XA_BRANCH_ROLLING_BACK):
		return "xa_rollback";
	case ST(CONFIRMING):
		return "confirm";
	case ST(CANCELLING):
		return "cancel";
	default:
		return "xa_commit";
	}
}

static int answer(struct xa *x, size_t i, const struct answer *an)
{
	struct apply *a = x->a;
	Settle__V1__BranchRecord *b = &x->br[i];
	const char *kind = phase_kind(an->phase);
	const char *err = an->error != NULL ? an->error : "";
	int rv;
	b->attempts = an->attempt != 0 ? an->attempt : b->attempts + 1;
	x->dirty[i] = true;
	switch (an->outcome) {
	case OUT(OK):
		set(x, i, phase_done(an->phase));
		b->next_retry_ms = 0;
		/* The error explains a heuristic; otherwise it is over. */
		b->last_error =
		    an->heuristic != HEUR(HEURISTIC_NONE) ? (char *)err : "";
		rv = fsm__add_event(a, kind, b->branch_id, "ok attempt %u",
				    b->attempts);
		if (rv == 0 && an->heuristic != HEUR(HEURISTIC_NONE))
			rv = record_heuristic(x, i, an->heuristic, err);
		return rv;
	case OUT(RETRY):
		b->next_retry_ms =
		    an->next_retry_ms != 0 ? an->next_retry_ms : a->time;
		b->last_error = (char *)err;
		return fsm__add_event(a, kind, b->branch_id,
				      "retry attempt %u: %s", b->attempts, err);
	default:
		set(x, i, ST(FAILED));
		b->next_retry_ms = 0;
		b->last_error = (char *)err;
		snprintf(a->reason, sizeof a->reason, "branch %u failed: %s",
			 b->branch_id, err);
		a->tx.reason = a->reason;
		return fsm__add_event(a, kind, b->branch_id, "failure: %s",
				      err);
	}
}

/* Load gid and its branches, then apply answer an of branch id when it
 * is still in an->phase (rm: an RM branch's). */
static int result(struct apply *a, const char *gid, uint32_t id, bool rm,
		  const struct answer *an)
{
	int from = (int)a->tx.state;
	struct xa x;
	int rv = xa_load(a, &x);
	if (rv != 0)
		goto out;
	size_t i = xa_find(&x, id);
	a->res.branch_id = id;
	fsm__result_tx(a, &a->tx);
	if (i == x.n) {
		rv = no_branch(a, id);
		goto out;
	}
	/* A late or repeated result: the branch moved on already. */
	if (wal_xa_is_rm(&x.br[i]) != rm || (int)x.br[i].state != an->phase)
		goto out;
	rv = answer(&x, i, an);
	if (rv == 0)
		rv = flush(&x, from);
out:
	(void)gid;
	xa_free(&x);
	return rv;
}

int wal_xa_result_apply(struct apply *a, const Settle__V1__CmdXaResult *c)
{
	int rv = load_xa(a, c->gid);
	if (rv != 0)
		return rv < 0 ? rv : 0;
	struct answer an = {
	    .phase = (int)c->phase,
	    .outcome = (int)c->outcome,
	    .heuristic = (int)c->heuristic,
	    .error = c->error,
	    .attempt = c->attempt,
	    .next_retry_ms = c->next_retry_ms,
	};
	return result(a, c->gid, c->branch_id, true, &an);
}

int wal_xa_branch_result_apply(struct apply *a,
			       const Settle__V1__CmdBranchResult *c)
{
	struct answer an = {
	    .phase = (int)c->phase,
	    .outcome = (int)c->outcome,
	    .heuristic = HEUR(HEURISTIC_NONE),
	    .error = c->error,
	    .attempt = c->attempt,
	    .next_retry_ms = c->next_retry_ms,
	};
	return result(a, c->gid, c->branch_id, false, &an);
}

int wal_xa_forget_apply(struct apply *a, const Settle__V1__CmdXaForget *c)
{
	int rv = load_xa(a, c->gid);
	if (rv != 0)
		return rv < 0 ? rv : 0;
	Settle__V1__TxRecord *tx = &a->tx;
	fsm__result_tx(a, tx);
	if (!wal_tx_state_final((int)tx->state))
		return fsm__reject(a, CODE(WRONG_STATE),
				   "transaction %s is %s: only a finished "
				   "transaction's heuristic can be forgotten",
				   tx->gid, wal_tx_state_name(tx->state));
	if (tx->heuristic == HEUR(HEURISTIC_NONE))
		return fsm__reject(a, CODE(WRONG_STATE),
				   "transaction %s has no heuristic outcome to "
				   "forget",
				   tx->gid);
	int h = (int)tx->heuristic;
	tx->heuristic = HEUR(HEURISTIC_NONE);
	rv = fsm__add_event(a, "forget", 0, "%s", wal_xa_heuristic_name(h));
	if (rv == 0)
		rv = fsm__write_tx(a, tx->state);
	return rv;
}

/* ---- An operator's heuristic decision ----------------------------------- */

int wal_xa_heuristic_apply(struct apply *a, const Settle__V1__CmdXaHeuristic *c)
{
	int rv = load_xa(a, c->gid);
	if (rv != 0)
		return rv < 0 ? rv : 0;
	Settle__V1__TxRecord *tx = &a->tx;
	bool commit = c->decision == SETTLE__V1__DECISION__DECIDE_COMMIT;
	int h = commit ? HEUR(HEUR_COMMIT) : HEUR(HEUR_ROLLBACK);
	int from = (int)tx->state;
	fsm__result_tx(a, tx);
	if ((int)tx->heuristic == h &&
	    (commit ? from == TX(COMMITTING) || from == TX(COMMITTED)
		    : from == TX(ROLLING_BACK) || from == TX(ROLLED_BACK)))
		return 0; /* decided so already: where it stands */
	if (from != TX(XA_PREPARED))
		return fsm__reject(a, CODE(WRONG_STATE),
				   "transaction %s is %s: only an XA_PREPARED "
				   "transaction can be decided heuristically",
				   tx->gid, wal_tx_state_name(tx->state));
	struct xa x;
	rv = xa_load(a, &x);
	if (rv != 0)
		goto out;
	if (commit) {
		rv = start_commit(&x, "heuristic, by operator", 0);
	} else {
		snprintf(a->reason, sizeof a->reason,
			 "heuristic rollback by operator: %s", c->reason);
		rv = start_rollback(&x, a->reason);
	}
	if (rv != 0)
		goto out;
	tx->heuristic = wal_xa_heuristic_merge((int)tx->heuristic, h);
	rv = fsm__add_event(a, "heuristic", 0, "%s: operator: %s",
			    wal_xa_heuristic_name(h), c->reason);
	if (rv == 0)
		rv = flush(&x, from);
out:
	xa_free(&x);
	return rv;
}

/* ---- An operator's verbs ------------------------------------------------ */

/* The state branch b is called in, by the tx's decision. */
static int call_state(const Settle__V1__TxRecord *tx,
		      const Settle__V1__BranchRecord *b)
{
	bool commit = tx->state == TX(COMMITTING);
	if (wal_xa_is_rm(b))
		return commit ? ST(XA_BRANCH_COMMITTING)
			      : ST(XA_BRANCH_ROLLING_BACK);
	return commit ? ST(CONFIRMING) : ST(CANCELLING);
}

/* tx.reason: the first branch still FAILED, else what the operator did. */
static void operator_reason(struct xa *x, const char *verb, const char *why)
{
	struct apply *a = x->a;
	const Settle__V1__BranchRecord *failed = NULL;
	for (size_t i = 0; i < x->n && failed == NULL; i++)
		if (x->br[i].state == ST(FAILED))
			failed = &x->br[i];
	if (failed != NULL)
		snprintf(a->reason, sizeof a->reason, "branch %u failed: %s",
			 failed->branch_id,
			 failed->last_error != NULL ? failed->last_error : "");
	else
		snprintf(a->reason, sizeof a->reason, "%s by operator: %s",
			 verb, why);
	a->tx.reason = a->reason;
}

static int undecided(struct apply *a, const char *verb)
{
	return fsm__reject(a, CODE(WRONG_STATE),
			   "transaction %s is XA_PREPARED: not decided yet, "
			   "nothing to %s",
			   a->tx.gid, verb);
}

int wal_xa_retry_apply(struct apply *a, uint32_t branch_id, const char *why)
{
	Settle__V1__TxRecord *tx = &a->tx;
	if (tx->state == TX(XA_PREPARED))
		return undecided(a, "retry");
	int from = (int)tx->state;
	struct xa x;
	int rv = xa_load(a, &x);
	if (rv != 0)
		goto out;
	uint32_t n = 0;
	for (size_t i = 0; i < x.n; i++) {
		Settle__V1__BranchRecord *b = &x.br[i];
		if (branch_id != 0 && b->branch_id != branch_id)
			continue;
		int phase = call_state(tx, b);
		if (b->state == ST(FAILED)) {
			set(&x, i, phase);
			b->attempts = 0;
			b->next_retry_ms = a->time;
			rv = fsm__add_event(a, "retry", b->branch_id,
					    "FAILED -> %s: %s",
					    wal_branch_state_name(phase), why);
		} else if ((int)b->state == phase) {
			if (b->next_retry_ms > a->time)
				b->next_retry_ms = a->time;
			x.dirty[i] = true;
			rv = fsm__add_event(a, "retry", b->branch_id,
					    "%s, due now: %s",
					    wal_branch_state_name(phase), why);
		} else if (branch_id != 0) {
			rv = fsm__reject(
			    a, CODE(WRONG_STATE),
			    "branch %u of %s is %s: only a FAILED branch or "
			    "one being retried can be retried",
			    b->branch_id, tx->gid,
			    wal_branch_state_name(b->state));
			goto out;
		} else {
			continue;
		}
		if (rv != 0)
			goto out;
		n++;
	}
	if (n == 0) {
		rv = fsm__reject(a, CODE(WRONG_STATE),
				 "transaction %s has no FAILED branch and "
				 "none being retried",
				 tx->gid);
		goto out;
	}
	operator_reason(&x, "retried", why);
	rv = flush(&x, from);
	a->res.count = n;
out:
	xa_free(&x);
	return rv;
}

int wal_xa_resolve_apply(struct apply *a, uint32_t branch_id, const char *why)
{
	Settle__V1__TxRecord *tx = &a->tx;
	if (tx->state == TX(XA_PREPARED))
		return undecided(a, "resolve");
	int from = (int)tx->state;
	struct xa x;
	int rv = xa_load(a, &x);
	if (rv != 0)
		goto out;
	size_t i = xa_find(&x, branch_id);
	if (i == x.n) {
		rv = no_branch(a, branch_id);
		goto out;
	}
	Settle__V1__BranchRecord *b = &x.br[i];
	if (b->state != ST(FAILED)) {
		rv = fsm__reject(
		    a, CODE(WRONG_STATE),
		    "branch %u of %s is %s, not FAILED: only a FAILED branch "
		    "can be resolved",
		    branch_id, tx->gid, wal_branch_state_name(b->state));
		goto out;
	}
	int to = phase_done(call_state(tx, b));
	set(&x, i, to);
	b->next_retry_ms = 0;
	rv = fsm__add_event(a, "resolve", b->branch_id, "FAILED -> %s: %s",
			    wal_branch_state_name(to), why);
	if (rv != 0)
		goto out;
	a->res.branch_state = to;
	operator_reason(&x, "resolved", why);
	rv = flush(&x, from);
out:
	xa_free(&x);
	return rv;
}

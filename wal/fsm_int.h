/*
 * fsm_int.h — internal to wal/: the context of one apply and the helpers
 * that fsm.c shares with the command files that apply into transactions
 * (saga.c, xa.c, operator.c). Not for use outside wal/.
 */
#ifndef SETTLE_WAL_FSM_INT_H
#define SETTLE_WAL_FSM_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "settle.pb-c.h"
#include "storage/store.h"
#include "wal/entry.h"
#include "wal/fsm.h"
#include "xa/xid.h"

struct fsm_changed;

struct apply {
	struct fsm *f;
	struct store *s;
	MDB_txn *txn;
	const Settle__V1__Command *cmd;
	uint64_t time;
	/* The cluster clock of this entry: max(the clock applied before,
	 * cmd->clock_ms). Deadlines are decided by it, never by time. */
	uint64_t clock;
	Settle__V1__CmdResult res;
	char msg[WAL_TEXT_MAX + 128];
	/* The tx record to report through on_tx_change after commit. */
	bool changed;
	Settle__V1__TxRecord tx;
	char reason[WAL_TEXT_MAX + 64];
	/* Set by the operator's verbs only (wal/operator.c): branch writes
	 * may also take the moves of wal_branch_operator_can_move(). */
	bool operator_moves;
	/* Wire XID of an RM branch registered by this apply (res.xid). */
	uint8_t xid[XA_XID_WIRE_MAX];
	/* The index rows of a->tx's record as stored now, once known (a
	 * load, a Begin finding none, a write): writes then skip reading
	 * it again and leave rows that do not change. */
	struct store_tx_rows stored;
	bool stored_known;
	char stored_gid[WAL_GID_MAX + 1]; /* whose rows they are */
	/* Events added and not yet written, framed for
	 * store_events_append(), all of transaction evgid: written in one
	 * go when the command is applied (fsm__flush_events()). */
	uint8_t *ev;
	size_t ev_len, ev_cap;
	char evgid[WAL_GID_MAX + 1];
	/* Owned by the apply, freed after the hook ran. Records read with
	 * fsm__rec() come from the FSM's record arena (old_in_arena,
	 * branches_in_arena: then only the branches array is malloc'd),
	 * and the arena is reset once the apply is done. */
	Settle__V1__TxRecord *old;
	Settle__V1__BranchRecord **branches;
	size_t n_branches;
	bool old_in_arena, branches_in_arena;
	/* A CmdResults: the transactions its answers changed (fsm.c). */
	struct fsm_changed *changed_txs;
};

/* Remember the index rows of tx as stored now (NULL: none is stored;
 * set a->stored_gid then). */
void fsm__stored_rows(struct apply *a, const Settle__V1__TxRecord *tx);

/* The allocator for the records apply a reads and owns (a->old,
 * a->branches): the FSM's record arena. A caller that sets a->branches
 * from it sets a->branches_in_arena. */
ProtobufCAllocator *fsm__rec(struct apply *a);

/* Write the events a->ev holds (a no-op when none). 0 or < 0. */
int fsm__flush_events(struct apply *a);

/* A storage failure or bug: f->errmsg set, returns err (aborts apply). */
int fsm__fail(struct apply *a, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A storage call failed with rv: keep the store's message; returns rv. */
int fsm__store_fail(struct apply *a, int rv, const char *what);
/* Reject the command (a no-op whose result has code and message).
 * Returns 0. */
int fsm__reject(struct apply *a, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Copy gid, state and deadline of tx into the result. */
void fsm__result_tx(struct apply *a, const Settle__V1__TxRecord *tx);
/* Load gid into a->old (owned by the apply) and the working copy a->tx.
 * 1: not found (rejected NOT_FOUND), 0: loaded, < 0: storage failure. */
int fsm__load_tx(struct apply *a, const char *gid);
/* Write a->tx after checking the move from `from` (table of its mode)
 * and the invariants; stamps updated_ms. 0 or < 0 (bug, storage). */
int fsm__write_tx(struct apply *a, int from);
/* Write b after checking the move from `from` (table of a->tx.mode; in
 * an XA transaction the RM table for a branch with rm set, else the TCC
 * one); stamps updated_ms. 0 or < 0. */
int fsm__write_branch(struct apply *a, int from, Settle__V1__BranchRecord *b);
/* TCC: a->tx reached final (COMMITTED or ROLLED_BACK): finished_ms,
 * due 0, pending 0, and its event. Does not write the tx. 0 or < 0. */
int fsm__finish(struct apply *a, int final);
/* Append an event to a->tx's history (a->tx.next_event_seq++). The
 * detail must never hold a payload. 0 or < 0. */
int fsm__add_event(struct apply *a, const char *kind, uint32_t branch_id,
		   const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* Whether tx is past its deadline at this entry: by the cluster clock
 * (a->clock >= expires_clock_ms), or for a record begun before the
 * cluster clock existed (expires_clock_ms 0) by the leader's wall stamp
 * (a->time >= deadline_ms), as applied then. */
bool fsm__expired(const struct apply *a, const Settle__V1__TxRecord *tx);
/* Set a new tx's time limit from its begin: timeout_ms and the cluster
 * clock at which it runs out (0 / 0 when the command has none). */
void fsm__set_expiry(struct apply *a, Settle__V1__TxRecord *tx,
		     uint32_t timeout_ms);
/* Reject WRONG_STATE naming a->tx's state. Returns 0. */
int fsm__wrong_state(struct apply *a);

#endif /* SETTLE_WAL_FSM_INT_H */

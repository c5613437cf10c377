/*
 * sm.h — the TCC state machines of a global transaction and of a branch,
 * as transition tables (in the spirit of dqlite's src/lib/sm.h).
 *
 * The saga and its steps have tables of their own (wal_saga_can_move,
 * wal_step_can_move), and so do XA transactions and their RM branches
 * (wal_xa_tx_can_move, wal_xa_branch_can_move). The FSM checks every state
 * change against these tables before writing a record: an illegal move is a
 * bug, never stored; apply then fails with SETTLE_EINTERNAL and a message
 * naming both states.
 */
#ifndef SETTLE_WAL_SM_H
#define SETTLE_WAL_SM_H

#include <stdbool.h>
#include <stdint.h>

#include "settle.pb-c.h"

/* Names for messages ("COMMITTING"); "?" for values outside the enum. */
const char *wal_tx_state_name(int state);
const char *wal_branch_state_name(int state);

/*
 * Whether a transaction may move from state from to state to. from ==
 * TX_STATE_UNSPECIFIED means "created". A record rewritten in the same
 * state is not a move (always allowed); the tables list real moves only:
 *   (new) -> ACTIVE
 *   ACTIVE -> COMMITTING | COMMITTED | ROLLING_BACK | ROLLED_BACK
 *   COMMITTING -> COMMITTED;  ROLLING_BACK -> ROLLED_BACK
 *   COMMITTED, ROLLED_BACK: final
 */
bool wal_tx_can_move(int from, int to);

/*
 *   (new) -> REGISTERED
 *   REGISTERED -> CONFIRMING | CANCELLING
 *   CONFIRMING -> CONFIRMED | FAILED;  CANCELLING -> CANCELLED | FAILED
 *   CONFIRMED, CANCELLED, FAILED: final for participants' results (an
 *   operator's verbs have a table of their own, below)
 */
bool wal_branch_can_move(int from, int to);

/*
 * The same for a saga (TxRecord.mode SAGA):
 *   (new) -> SAGA_RUNNING
 *   SAGA_RUNNING -> SAGA_COMPENSATING | SAGA_SUCCEEDED
 *   SAGA_COMPENSATING -> SAGA_COMPENSATED
 *   SAGA_SUCCEEDED, SAGA_COMPENSATED: final
 */
bool wal_saga_can_move(int from, int to);

/*
 * A saga step (a branch of a SAGA transaction):
 *   (new) -> STEP_PENDING | STEP_ACTING
 *   STEP_PENDING -> STEP_ACTING | STEP_SKIPPED
 *   STEP_ACTING -> STEP_DONE | STEP_ACTION_FAILED
 *   STEP_DONE, STEP_ACTION_FAILED -> STEP_COMPENSATING
 *   STEP_COMPENSATING -> STEP_COMPENSATED | FAILED
 *   STEP_COMPENSATED, STEP_SKIPPED, FAILED: final (but see below)
 */
bool wal_step_can_move(int from, int to);

/*
 * An XA transaction (TxRecord.mode XA, wal/xa.h):
 *   (new) -> ACTIVE
 *   ACTIVE -> XA_PREPARED | COMMITTING | COMMITTED | ROLLING_BACK |
 *             ROLLED_BACK
 *   XA_PREPARED -> COMMITTING | COMMITTED | ROLLING_BACK | ROLLED_BACK
 *   COMMITTING -> COMMITTED | ROLLED_BACK (the latter only when the lone
 *             branch committed in one phase was rolled back by its RM)
 *   ROLLING_BACK -> ROLLED_BACK
 *   COMMITTED, ROLLED_BACK: final
 */
bool wal_xa_tx_can_move(int from, int to);

/*
 * An RM branch of an XA transaction (BranchRecord.rm set). The TCC
 * branches of an XA transaction use wal_branch_can_move().
 *   (new) -> XA_BRANCH_ACTIVE
 *   XA_BRANCH_ACTIVE -> XA_BRANCH_PREPARED | XA_BRANCH_READ_ONLY |
 *             XA_BRANCH_ROLLED_BACK (voted rollback) |
 *             XA_BRANCH_ROLLING_BACK | XA_BRANCH_ONE_PHASE |
 *             XA_BRANCH_COMMITTING (voted OK with the commit, level 6)
 *   XA_BRANCH_PREPARED -> XA_BRANCH_COMMITTING | XA_BRANCH_ROLLING_BACK
 *   XA_BRANCH_COMMITTING -> XA_BRANCH_COMMITTED | FAILED
 *   XA_BRANCH_ROLLING_BACK -> XA_BRANCH_ROLLED_BACK | FAILED
 *   XA_BRANCH_ONE_PHASE -> XA_BRANCH_COMMITTED | XA_BRANCH_ROLLED_BACK
 *   XA_BRANCH_READ_ONLY, XA_BRANCH_COMMITTED, XA_BRANCH_ROLLED_BACK: final
 *   FAILED: final but for an operator (below)
 */
bool wal_xa_branch_can_move(int from, int to);

/*
 * The moves only an operator's TX_RETRY / TX_RESOLVE make (wal/operator.h),
 * never a participant's result:
 *   TCC branch: FAILED -> CONFIRMING | CANCELLING (retry)
 *               FAILED -> CONFIRMED | CANCELLED (resolve)
 *   saga step:  FAILED -> STEP_COMPENSATING (retry)
 *               FAILED -> STEP_COMPENSATED (resolve)
 * Which one of each pair applies depends on the transaction's phase; the
 * caller picks it.
 */
bool wal_branch_operator_can_move(int from, int to);
bool wal_step_operator_can_move(int from, int to);
/*   RM branch:  FAILED -> XA_BRANCH_COMMITTING | XA_BRANCH_ROLLING_BACK
 *               (retry), FAILED -> XA_BRANCH_COMMITTED |
 *               XA_BRANCH_ROLLED_BACK (resolve) */
bool wal_xa_branch_operator_can_move(int from, int to);

/* Final transaction states (COMMITTED, ROLLED_BACK, SAGA_SUCCEEDED,
 * SAGA_COMPENSATED). */
bool wal_tx_state_final(int state);

/*
 * Invariants of one TxRecord: a final state has finished_ms != 0 and
 * due_ms == 0; any other state has finished_ms == 0; ACTIVE has due_ms ==
 * deadline_ms; XA_PREPARED has due_ms == 0 when it has an xid (in doubt:
 * only its TM decides) and due_ms == deadline_ms otherwise; saga states
 * only in mode SAGA, XA_PREPARED, xid and heuristic only in mode XA;
 * pending + failed <= branches < next_branch_id. Returns true when
 * they hold; otherwise false and why in errmsg (may be NULL).
 */
bool wal_tx_invariants(const Settle__V1__TxRecord *tx, char *errmsg,
		       size_t errmsg_len);

#endif /* SETTLE_WAL_SM_H */

/*
 * fsm.h — the deterministic state machine that applies raft entries
 * (settle.v1.Command, see entry.h) into the store.
 *
 * Rules, relied on by every node producing identical LMDB contents:
 * - apply never reads a clock (Command.time_ms is the leader's stamp) nor
 *   any other node-local input;
 * - apply never fails for business reasons: a rejected command (unknown
 *   gid, wrong state, invalid fields, undecodable entry) is applied as a
 *   no-op whose CmdResult carries the error code and message;
 * - the effect, the command's result (under its cmd_id) and the applied
 *   raft index are written in one LMDB write transaction;
 * - the only failures are storage failures (SETTLE_EFULL, SETTLE_ESTORE,
 *   SETTLE_ENOMEM) and bugs (SETTLE_EINTERNAL: an illegal state move); the
 *   caller must then stop the node, since the entry was not applied.
 *
 * TCC semantics of each command are documented in docs/ARCHITECTURE.md and
 * at the top of fsm.c.
 */
#ifndef SETTLE_WAL_FSM_H
#define SETTLE_WAL_FSM_H

#include <stdint.h>

#include "settle.pb-c.h"
#include "storage/store.h"

struct fsm {
	struct store *store; /* not owned */
	/*
	 * Called after a successful commit, once per apply that changed a
	 * transaction (not for no-ops, rejected commands, or gc), with the
	 * transaction as stored. tx is valid only during the call. May be
	 * NULL. Must not call fsm_apply().
	 */
	void (*on_tx_change)(void *data, const Settle__V1__TxRecord *tx);
	void *data;
	char errmsg[256]; /* why the last apply failed */
};

/* Initialize f over an open store (not owned; must outlive f). Hooks are
 * NULL; set them after. Returns 0. */
int fsm_init(struct fsm *f, struct store *store);

/* Release f's resources (none today; the store is not closed). */
void fsm_close(struct fsm *f);

/*
 * Apply the entry buf/len (as produced by wal_entry_encode(); not kept)
 * stored at raft_index.
 *
 * - raft_index <= applied index: skipped, result OK with index = the
 *   stored applied index, nothing written (replay after a restart).
 * - undecodable entry: no-op, result INVALID_ARGUMENT; the applied index
 *   still advances.
 * - cmd_id already applied: the stored result, no effect; the applied
 *   index advances.
 * - otherwise the command's effect; the result is stored under cmd_id.
 *
 * result may be NULL (followers); otherwise *result receives the result,
 * owned by the caller: settle__v1__cmd_result__free_unpacked(*result,
 * NULL). CmdResult.index is the raft index the command was first applied
 * at. Business errors are in (*result)->code, never in the return value.
 *
 * Returns 0, or on a storage failure or bug a negative SETTLE_E* code with
 * f->errmsg set; nothing was written and *result is NULL.
 */
int fsm_apply(struct fsm *f, uint64_t raft_index, const void *buf, size_t len,
	      Settle__V1__CmdResult **result);

#endif /* SETTLE_WAL_FSM_H */

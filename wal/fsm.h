/*
 * fsm.h — the deterministic state machine that applies raft entries
 * (settle.v1.Command, see entry.h) into the store.
 *
 * Rules, relied on by every node producing identical LMDB contents:
 * - apply never reads a clock (Command.time_ms is the leader's stamp) nor
 *   any other node-local input;
 * - deadlines are decided by the cluster clock: each entry's is the
 *   highest Command.clock_ms applied so far (itself included), kept in the
 *   store's meta; a transaction expires when it reaches the clock of its
 *   begin + its timeout_ms (docs/ARCHITECTURE.md, "Clocks");
 * - apply never fails for business reasons: a rejected command (unknown
 *   gid, wrong state, invalid fields, undecodable entry) is applied as a
 *   no-op whose CmdResult carries the error code and message;
 * - the effect, the command's result (under its cmd_id) and the applied
 *   raft index are written in one LMDB write transaction;
 * - the only failures are storage failures (SETTLE_EFULL, SETTLE_ESTORE,
 *   SETTLE_ENOMEM), bugs (SETTLE_EINTERNAL: an illegal state move) and a
 *   divergence (SETTLE_EDIVERGED, below); the caller must then stop the
 *   node, since the entry was not applied.
 * - each applied index's entry checksum goes into the store's applied_log
 *   in the same transaction, so that an entry delivered again at an
 *   applied index (a replay after restart, or raft re-delivering) is
 *   compared with what was applied there instead of trusted.
 *
 * TCC semantics of each command are documented in docs/ARCHITECTURE.md and
 * at the top of fsm.c.
 */
#ifndef SETTLE_WAL_FSM_H
#define SETTLE_WAL_FSM_H

#include <stddef.h>
#include <stdint.h>

#include "settle.pb-c.h"
#include "storage/store.h"

/* A transaction before the command that changed it (fsm.on_tx_change). */
struct fsm_was {
	int state;	 /* a settle.v1.TxState; 0: it did not exist */
	uint32_t failed; /* its FAILED branches */
};

struct fsm_arenas;

struct fsm {
	struct store *store; /* not owned */
	/*
	 * Called after a successful apply (committed, or in batched mode
	 * written to the open batch), once per apply that changed a
	 * transaction (not for no-ops, rejected commands, or gc), with the
	 * transaction as stored and what it was before that command (state
	 * 0: the command made it). A command of a batch or an answer of a
	 * results entry is such an apply: in batched mode its hook runs as
	 * soon as it is written, before the rest of the entry; otherwise
	 * after the entry. tx is valid only during the call. May be NULL.
	 * Must not call fsm_apply().
	 */
	void (*on_tx_change)(void *data, const Settle__V1__TxRecord *tx,
			     const struct fsm_was *was);
	void *data;
	/*
	 * Entries whose checksum apply keeps in applied_log at least (the
	 * row applied_log_keep indexes back goes with each apply): bounds the
	 * table even if nobody calls fsm_prune_applied_log(). fsm_init() sets
	 * FSM_APPLIED_LOG_KEEP.
	 */
	uint64_t applied_log_keep;
	/* Read by the node, never by apply: the proposer's wall clock
	 * (wall_ms, else time_ms) of the last command applied, to estimate
	 * this node's clock offset from the leader's; the highest time_ms
	 * applied since start, where a new leader's stamps go on from. */
	uint64_t last_wall_ms;
	uint64_t max_time_ms;
	char errmsg[256]; /* why the last apply failed */
	/* The cluster clock during one fsm_apply(): read from the store by
	 * its first command, raised by the stamps of the others, written
	 * back once at the end of the entry (a batch of 200 commands read
	 * and wrote it 200 times). */
	uint64_t clock;
	bool clock_read;
	bool clock_raised;
	/*
	 * Batched mode (the coordinator): entries are applied into the
	 * store's apply batch (store_batch_txn()), which its owner commits
	 * with store_batch_commit() once per run of entries, not one LMDB
	 * commit per entry. Off (fsm_init()): each apply commits.
	 */
	bool batched;
	/* fsm_level()'s cache of the store's feature level. */
	uint32_t level;
	bool level_known;
	/* Where an entry's command is unpacked, each command of a batch
	 * in it, and the records one apply reads (wal/arena.h; fsm.c).
	 * On the heap, made by fsm_init(): a copy of the struct shares
	 * them. */
	struct fsm_arenas *arenas;
};

/*
 * Feature levels (docs/ARCHITECTURE.md, "Feature levels"): what commands
 * the cluster's nodes may be sent. Level 1: every command kind up to
 * CmdClock. Level 2: CmdResults, and CmdBegin with branches. Level 3:
 * CmdBatch (many proposers' commands in one entry). Level 4: no new
 * command, but a command id that begins with its time is kept in cmd_ids
 * and collected by that time (storage/cmds.c), which a node of an older
 * release would not do alike. Level 5: no new command either, but a
 * leader may send a delta snapshot (a base and a journal of entries,
 * wal/journal.h), which an older release cannot restore. Level 6: phase
 * 2 by the initiator (CmdDecide.initiator_phase2_ms, CmdXaVote
 * PHASE2_*, branch_id 0 with those). Level 7: CmdBegin.owner and
 * CmdSagaBegin.owner, kept in the TxRecord (who may act on it). Level 8:
 * CmdMember.asked_by, kept in the members table, and a removal that says
 * who asked leaves the row as its record (wal/members.h). Level 9: no
 * new command, but the leader may call a saga step's action before the
 * result of the step it depends on is applied (wal/saga.h), so a saga
 * that starts compensating awaits and compensates such a step too. Level
 * 10: no new command, but a step called early may itself release an early
 * call, up to WAL_SAGA_EARLY_DEPTH steps ahead of the store, and a saga
 * that starts compensating awaits every step that far ahead. A binary
 * applies every level up to FSM_LEVEL; the leader raises the cluster's
 * level (CmdFeatures) once every member says it runs that level.
 */
#define FSM_LEVEL_BASE		1
#define FSM_LEVEL_BATCH		2
#define FSM_LEVEL_PROPOSE_BATCH 3
#define FSM_LEVEL_CMD_IDS	4
#define FSM_LEVEL_JOURNAL	5
#define FSM_LEVEL_XA_PHASE2	6
#define FSM_LEVEL_OWNER		7
#define FSM_LEVEL_MEMBER_AUDIT	8
#define FSM_LEVEL_SAGA_EARLY	9
#define FSM_LEVEL_SAGA_DEEP	10
#define FSM_LEVEL		10

/* Twice the most entries the coordinator lets pass between snapshots
 * (2^20): raft replays at most that many at a start. */
#define FSM_APPLIED_LOG_KEEP ((uint64_t)1 << 21)

/* Initialize f over an open store (not owned; must outlive f). Hooks are
 * NULL; set them after. Returns 0 or SETTLE_ENOMEM. */
int fsm_init(struct fsm *f, struct store *store);

/* The cluster's feature level as applied (FSM_LEVEL_BASE before any
 * CmdFeatures), cached; a storage error reads as FSM_LEVEL_BASE. */
uint32_t fsm_level(struct fsm *f);
/* Drop the cache: the store was replaced (a snapshot restored). */
void fsm_forget_level(struct fsm *f);

/* Release f's resources (its arenas; the store is not closed). */
void fsm_close(struct fsm *f);

/*
 * Apply the entry buf/len (as produced by wal_entry_encode(); not kept)
 * stored at raft_index.
 *
 * - raft_index <= applied index: skipped, result OK with index = the
 *   stored applied index, nothing written (replay after a restart) when
 *   the bytes are those applied at raft_index, or when no checksum is
 *   kept for it (pruned, or applied by a format 1 store). With other
 *   bytes: SETTLE_EDIVERGED, nothing written, f->errmsg "entry N differs
 *   from the one applied before: this node's state diverged from the
 *   cluster; rebuild it from a snapshot (docs/OPERATIONS.md)".
 * - undecodable entry: no-op, result INVALID_ARGUMENT; the applied index
 *   still advances.
 * - cmd_id already applied: the stored result, no effect; the applied
 *   index advances. Unless the stored result and the command both carry a
 *   request digest and they differ (wal_cmd_id_reused()): then no effect,
 *   result CMD_ID_REUSED, nothing stored under cmd_id (the first result
 *   stays); the applied index advances.
 * - otherwise the command's effect; the result is stored under cmd_id.
 *
 * result may be NULL (followers); otherwise *result receives the result,
 * owned by the caller: settle__v1__cmd_result__free_unpacked(*result,
 * NULL). CmdResult.index is the raft index the command was first applied
 * at. Business errors are in (*result)->code, never in the return value.
 *
 * Returns 0, or on a storage failure or bug a negative SETTLE_E* code with
 * f->errmsg set; nothing was written and *result is NULL. In batched mode
 * a failure drops the whole open batch (the entries applied into it since
 * its last commit, which the raft log still holds): the caller must stop
 * applying, as a node does by exiting.
 */
int fsm_apply(struct fsm *f, uint64_t raft_index, const void *buf, size_t len,
	      Settle__V1__CmdResult **result);

/* The checksum applied_log keeps of an entry's raw bytes (FNV-1a 64,
 * padding included). buf may be NULL when len is 0. */
uint64_t fsm_entry_checksum(const void *buf, size_t len);

/*
 * Forget the checksums of indexes below below_index, in a write
 * transaction of its own (store_applied_log_prune()). The coordinator
 * calls it after each snapshot is stored, with the index of the snapshot
 * before it, so that the table holds about two snapshot intervals instead
 * of applied_log_keep entries; never from inside an apply. Returns 0, or
 * a storage error with f->errmsg set (nothing changed; the node may go
 * on).
 */
int fsm_prune_applied_log(struct fsm *f, uint64_t below_index);

#endif /* SETTLE_WAL_FSM_H */

/*
 * store.h — the LMDB environment holding Settle's replicated state.
 *
 * One LMDB environment in one directory, opened with MDB_NOSYNC|MDB_NOTLS:
 * durability comes from the raft log (LMDB writes lost in a crash are
 * replayed from it because the applied index is stored in the same LMDB
 * transaction as the effect). The coordinator's snapshots are checkpoint
 * files of their own (store_snapshot_fd()), synced, that rebuild a store
 * left behind them; store_sync() is for a clean stop.
 *
 * Named databases (all keys are byte strings, integers big-endian so that
 * LMDB's memcmp order is numeric order):
 *   meta      "applied" -> u64 BE applied raft index; "version" -> u32 BE;
 *             "clock" -> u64 BE the cluster clock (wal/fsm.h), absent
 *             until a command carried one; "level" -> the feature level;
 *             "final" -> 4 × u64 BE, transactions COMMITTED, ROLLED_BACK,
 *             SAGA_SUCCEEDED and SAGA_COMPENSATED (storage/counts.c)
 *   txs       gid -> TxRecord (packed protobuf)
 *   branches  gid \0 branch_id(u32 BE) -> BranchRecord
 *             (both stored without their gid since format 3: the key
 *             holds it, and every read puts it back in the record)
 *   history   gid \0 chunk(u32 BE) -> some of the tx's events, each a
 *             varint length then a packed Event, in seq order: one chunk
 *             for most txs (storage/history.c; format 2 kept a row per
 *             event in events: gid \0 seq(u64 BE) -> Event)
 *   due       due_ms(u64 BE) gid -> empty: one row per tx with due_ms != 0
 *   by_state  state(u8) gid -> empty: one row per live tx (format 4:
 *             a finished one is counted in meta's "final" row instead)
 *   finished  finished_ms(u64 BE) gid -> empty: one row per finished tx
 *   cmds      cmd_id(16) -> time_ms(u64 BE) + CmdResult (packed; its
 *             request_digest tells a retry from a reused id)
 *   cmd_time  time_ms(u64 BE) cmd_id(16) -> empty (garbage collection order)
 *   cmd_ids   cmd_id(16) -> CmdResult, for an id that begins with its own
 *             time near the command's (store_cmd_id_timed()): its key is
 *             the collection's order, so it needs no cmd_time row (format
 *             4, used from feature level 4)
 *   applied_log  raft index(u64 BE) -> u64 BE checksum of the entry's bytes
 *             applied there (wal/fsm.c): a replay with other bytes is a
 *             divergence, not a no-op. Bounded by store_applied_log_prune().
 *   members   node id(u64 BE) -> MemberRecord: endpoints of cluster members
 *
 * Only the FSM (wal/fsm.c) writes transaction state: the store_*_put and
 * store_*_delete functions below exist for it and for tests. Everybody else
 * reads, inside a read transaction from store_read_begin(), or with txn NULL
 * (an internal read transaction is used for that single call).
 *
 * Records returned to callers are unpacked protobuf-c messages owned by the
 * caller: free them with the matching settle__v1__*__free_unpacked(p, NULL)
 * or with the array helpers below. Strings inside them never point into
 * LMDB memory, so they outlive the read transaction.
 *
 * Nothing here is thread-safe per struct store except that read
 * transactions may be used from other threads (MDB_NOTLS); the coordinator
 * uses the store from its single uv loop thread.
 *
 * Errors: SETTLE_ENOTFOUND (missing record), SETTLE_EFULL (map full),
 * SETTLE_ENOSPACE (the disk is full: ENOSPC, or the EIO LMDB reports for a
 * short write when the file system has no space left), SETTLE_ENOMEM,
 * SETTLE_EPROTO (a stored record does not decode), SETTLE_ESTORE (other LMDB
 * failures), SETTLE_EINVAL (bad arguments). The text of the last failure is in
 * store_errmsg().
 */
#ifndef SETTLE_STORE_H
#define SETTLE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#include "settle.pb-c.h"

/* On-disk format version, stored in meta and in snapshots. 2 added
 * applied_log; 3 keeps a transaction's events in one row (history)
 * instead of a row per event (events); 4 counts finished transactions
 * instead of indexing them by state, and adds cmd_ids. An older store is
 * upgraded in place at open (applied_log starts empty, events rows are
 * converted, by_state rows of final states become counts) and snapshots
 * of formats 1 to 3 are still restored. */
#define STORE_FORMAT_VERSION 4u
/* Default map size: 8 GiB (twice settled's default budget). */
#define STORE_DEFAULT_MAPSIZE ((size_t)8 << 30)
/* Length of a command id. */
#define STORE_CMD_ID_LEN 16

struct store;

/*
 * mapsize is the LMDB map, set at open: the data file grows by itself page
 * by page up to it (LMDB does not extend the file to the map without
 * MDB_WRITEMAP), and MDB_MAP_FULL means it is spent. The map is not grown
 * later with mdb_env_set_mapsize(): LMDB demands that no transaction of
 * this process be open then, and a snapshot's read view is held on a
 * worker thread for as long as serializing the store takes, so a growth
 * could be put off until the map filled, and a full map fails apply on
 * every node at the same entry. The coordinator maps twice its budget
 * (settled --store-budget) and keeps the data under the budget by refusing
 * new work (store_usage()): the rest is room for what LMDB needs beside
 * the data, pages pinned by a snapshot's read view and a restore, which
 * writes the new content before the old pages are free. A larger map takes
 * effect at the next open; a smaller one than the file is raised to it by
 * LMDB.
 */
struct store_opts {
	size_t mapsize; /* 0: STORE_DEFAULT_MAPSIZE */
};

/* ---- Environment -------------------------------------------------------- */

/*
 * Open (creating if needed) the environment in directory dir, which must
 * exist. opts may be NULL. On success *out is a new store to release with
 * store_close(). On failure returns a SETTLE_E* code and, if errmsg is not
 * NULL, a message in errmsg (errmsg_len bytes). A store with a different
 * format version fails with SETTLE_ESTORE.
 */
int store_open(const char *dir, const struct store_opts *opts,
	       struct store **out, char *errmsg, size_t errmsg_len);

/* Close the environment. Every transaction must have ended. NULL is ok. */
void store_close(struct store *s);

/* Text of the last failure on this store ("" if none). Valid until the
 * next call on the store. */
const char *store_errmsg(const struct store *s);

/* Flush LMDB's data to disk (mdb_env_sync with force). Returns 0,
 * SETTLE_EIO or SETTLE_ESTORE, with the text in store_work_errmsg() (not
 * store_errmsg()): it may run on a worker thread. */
int store_sync(struct store *s);

/*
 * Text of the last failure of store_sync() or store_snapshot_txn(), which
 * may run on a worker thread while the loop thread uses the store: they
 * write only this buffer, never store_errmsg()'s. Read it on the thread
 * that made the call, or after the worker's completion is handed back
 * (uv_queue_work's after_work orders it). Valid until the next such call.
 */
const char *store_work_errmsg(const struct store *s);

/* The LMDB environment, for statistics only. */
/*
 * Start writeback of the pages of the store dirty in the page cache,
 * without waiting for it (sync_file_range): the store runs without fsync,
 * and the kernel would otherwise write what a busy node dirtied in bursts
 * every 30 s. Any thread (it may wait for the disk's queue: not the
 * loop's).
 */
void store_writeback_start(struct store *s);

MDB_env *store_env(struct store *s);

/* Space of the store (store_usage()). */
struct store_usage {
	uint64_t map_bytes;  /* the map (store_opts.mapsize) */
	uint64_t file_bytes; /* pages ever written: the data file's size */
	uint64_t free_bytes; /* of those, free for reuse (LMDB's freelist) */
	uint64_t used_bytes; /* file_bytes - free_bytes: what the data holds */
	/* Bytes the file system holding the store still offers (statvfs
	 * f_bavail), UINT64_MAX if it cannot say. */
	uint64_t disk_free_bytes;
};

/*
 * Measure the store in a read transaction of its own: the last page
 * written (mdb_env_info), the pages in LMDB's freelist (a walk of its
 * records: one per write transaction that freed pages and whose pages are
 * not reused yet) and the file system's free space. Pages freed by
 * deleting records count as free: LMDB reuses them before growing the
 * file, so used_bytes falls when retention deletes. Cheap enough to call
 * every few milliseconds. Returns 0 or SETTLE_ESTORE (store_errmsg()).
 */
int store_usage(struct store *s, struct store_usage *u);

/* ---- Transactions ------------------------------------------------------- */

/* Begin a read-only transaction (a consistent view). End it with
 * store_read_end(). On the thread that holds the apply batch open, the
 * view is the batch itself: what it applied, committed to LMDB or not;
 * store_read_end() then leaves it open. */
int store_read_begin(struct store *s, MDB_txn **txn);
void store_read_end(MDB_txn *txn);

/* Begin the single write transaction; end it with store_write_commit()
 * (which always ends it, even on failure) or store_write_abort(). Only the
 * FSM and snapshot restore write. On the batch's thread an open batch is
 * committed first (store_batch_commit()): LMDB has one writer. */
int store_write_begin(struct store *s, MDB_txn **txn);
int store_write_commit(struct store *s, MDB_txn *txn);
void store_write_abort(MDB_txn *txn);

/*
 * The apply batch: one write transaction for a run of applied entries
 * (the FSM's batched mode), committed once per loop iteration rather than
 * once per entry. What it holds is already decided by the raft log, which
 * replays it after a crash, so leaving it uncommitted for a while loses
 * nothing. store_batch_txn() hands out the open batch or begins one (the
 * calling thread becomes its owner); store_batch_commit() commits it (0
 * when none is open; on failure it is ended, nothing of it kept, and the
 * error returned with store_errmsg()); store_batch_abort() drops it.
 * Readers on the owner thread see it (store_read_begin()); other threads
 * see the last commit. store_close() commits an open batch.
 */
int store_batch_txn(struct store *s, MDB_txn **txn);
int store_batch_commit(struct store *s);
void store_batch_abort(struct store *s);
bool store_batch_open(const struct store *s);

/* ---- Meta --------------------------------------------------------------- */

/* Applied raft index (0 for a fresh store). txn may be NULL. */
int store_applied_get(struct store *s, MDB_txn *txn, uint64_t *index);
/* Set the applied index inside write transaction txn. */
int store_applied_put(struct store *s, MDB_txn *txn, uint64_t index);
/* The cluster clock the FSM reached (0 when never set). txn may be NULL. */
int store_clock_get(struct store *s, MDB_txn *txn, uint64_t *clock_ms);
/* Set it inside write transaction txn. */
int store_clock_put(struct store *s, MDB_txn *txn, uint64_t clock_ms);
/* The cluster's feature level (applied CmdFeatures; 0 when never set,
 * which means level 1). txn may be NULL. */
int store_level_get(struct store *s, MDB_txn *txn, uint64_t *level);
/* Set it inside write transaction txn. */
int store_level_put(struct store *s, MDB_txn *txn, uint64_t level);

/* ---- Applied log ---------------------------------------------------------
 * One row per raft index the FSM applied a command at (barriers and
 * configuration entries never reach it), written in the FSM's write
 * transaction with the effect. */

/* Checksum stored for index. SETTLE_ENOTFOUND if none (never applied,
 * pruned, or applied by a format 1 store). txn may be NULL. */
int store_applied_log_get(struct store *s, MDB_txn *txn, uint64_t index,
			  uint64_t *sum);

/* Record sum for index (> 0, else SETTLE_EINVAL) in write txn txn. */
int store_applied_log_put(struct store *s, MDB_txn *txn, uint64_t index,
			  uint64_t sum);

/* Lowest index still recorded, 0 when the table is empty. txn may be
 * NULL. */
int store_applied_log_first(struct store *s, MDB_txn *txn, uint64_t *index);

/*
 * Delete every row with an index < below_index, in write txn txn. Keeps
 * the table bounded: raft only ever replays entries after its last
 * snapshot, so rows below it are never compared again. The coordinator
 * calls it after each snapshot is stored, with the index of the snapshot
 * before that one, so that a start from either still finds its rows; rows
 * pruned too eagerly only weaken the check (an index with no row is
 * skipped as before), they never stop a node.
 * Pruning changes no transaction state and is not replicated: nodes may
 * hold different ranges.
 */
int store_applied_log_prune(struct store *s, MDB_txn *txn,
			    uint64_t below_index);

/* ---- Reads -------------------------------------------------------------- */

/*
 * Get the transaction gid (NUL-terminated). *out is owned by the caller
 * (settle__v1__tx_record__free_unpacked). SETTLE_ENOTFOUND if unknown.
 * txn may be NULL.
 */
int store_tx_get(struct store *s, MDB_txn *txn, const char *gid,
		 Settle__V1__TxRecord **out);
/* The same, the record unpacked with allocator al (NULL: malloc's, as
 * store_tx_get()): free it with free_unpacked(*out, al), or let al take
 * it back all at once (an arena, wal/arena.h). So for the _in getters
 * below: their records come from al, a list's array from malloc. */
int store_tx_get_in(struct store *s, MDB_txn *txn, const char *gid,
		    ProtobufCAllocator *al, Settle__V1__TxRecord **out);

/* Get one branch. SETTLE_ENOTFOUND if unknown. txn may be NULL. */
int store_branch_get(struct store *s, MDB_txn *txn, const char *gid,
		     uint32_t branch_id, Settle__V1__BranchRecord **out);
int store_branch_get_in(struct store *s, MDB_txn *txn, const char *gid,
			uint32_t branch_id, ProtobufCAllocator *al,
			Settle__V1__BranchRecord **out);

/*
 * A few fields of a stored record, read from its wire form without
 * unpacking it: for a caller that checks a state before it reads more
 * (a tenth of the cost of a full read). Absent fields read as 0.
 * SETTLE_ENOTFOUND if unknown, SETTLE_EPROTO if the record does not
 * decode. txn may be NULL.
 */
struct store_tx_brief {
	int mode;  /* Settle__V1__TxMode */
	int state; /* Settle__V1__TxState */
	uint32_t branches;
	uint32_t next_branch_id;
	uint32_t pending;
	int recovery; /* Settle__V1__SagaRecovery */
	uint64_t deadline_ms;
	uint64_t expires_clock_ms;
};
int store_tx_brief_get(struct store *s, MDB_txn *txn, const char *gid,
		       struct store_tx_brief *out);

struct store_branch_brief {
	uint32_t branch_id;
	int state; /* Settle__V1__BranchState */
	uint64_t next_retry_ms;
	size_t n_depends_on;
	uint32_t depends_on_first; /* when n_depends_on > 0 */
};
int store_branch_brief_get(struct store *s, MDB_txn *txn, const char *gid,
			   uint32_t branch_id, struct store_branch_brief *out);
/* Every branch of gid in brief, in branch_id order: a malloc'd array
 * (NULL and 0 when there is none), freed with free(). */
int store_branches_brief_list(struct store *s, MDB_txn *txn, const char *gid,
			      struct store_branch_brief **out, size_t *n);

/*
 * Every branch of gid, in branch_id order, in a malloc'd array *out of *n
 * records (NULL and 0 when there are none; an unknown gid is not an error).
 * Free with store_branches_free(). txn may be NULL.
 */
int store_branches_list(struct store *s, MDB_txn *txn, const char *gid,
			Settle__V1__BranchRecord ***out, size_t *n);
int store_branches_list_in(struct store *s, MDB_txn *txn, const char *gid,
			   ProtobufCAllocator *al,
			   Settle__V1__BranchRecord ***out, size_t *n);
void store_branches_free(Settle__V1__BranchRecord **arr, size_t n);

/* Every event of gid in seq order; same ownership as branches. */
int store_events_list(struct store *s, MDB_txn *txn, const char *gid,
		      Settle__V1__Event ***out, size_t *n);
void store_events_free(Settle__V1__Event **arr, size_t n);

/*
 * Visit the `due` rows with due_ms <= now_ms, earliest first, at most limit
 * of them (0: no limit). cb returns 0 to go on, non-zero to stop (that
 * value is not an error). gid is valid only during the callback. Returns
 * the number of rows visited, or a negative SETTLE_E* code. txn may be NULL.
 */
typedef int (*store_due_cb)(void *data, const char *gid, uint64_t due_ms);
int store_due_scan(struct store *s, MDB_txn *txn, uint64_t now_ms, size_t limit,
		   store_due_cb cb, void *data);

/* Smallest due_ms of all transactions, 0 if no transaction is due ever
 * (so the leader arms one timer). txn may be NULL. */
int store_due_min(struct store *s, MDB_txn *txn, uint64_t *due_ms);

/* Smallest finished_ms of the finished transactions still kept, 0 if there
 * are none: tells the leader, without a scan, whether GC has work. */
int store_finished_min(struct store *s, MDB_txn *txn, uint64_t *finished_ms);

/* Smallest time_ms of the command ids still kept (cmd_time; of cmd_ids,
 * an id's time plus STORE_CMD_SKEW_MS), 0 if there are none: command ids expire
 * by their own time, not with a transaction (the driver's results, a Begin
 * refused as a duplicate...), so the GC looks at both. */
int store_cmd_min(struct store *s, MDB_txn *txn, uint64_t *time_ms);

/*
 * List transactions in gid order, starting after after_gid (NULL or "":
 * from the start). state 0 (TX_STATE_UNSPECIFIED) lists every state,
 * otherwise only that state (a live one through the by_state index, a
 * final one by reading every record: it has no index). filter, when not
 * NULL, returns true to keep a record. At most limit records (0: 1000) go
 * into the malloc'd array *out of *n (free with store_txs_free()); *more
 * (may be NULL) tells whether another kept record follows, so paging
 * continues with after_gid = the last gid returned. txn may be NULL.
 */
typedef bool (*store_tx_filter)(void *data, const Settle__V1__TxRecord *tx);
int store_tx_list(struct store *s, MDB_txn *txn, int state,
		  const char *after_gid, size_t limit, store_tx_filter filter,
		  void *data, Settle__V1__TxRecord ***out, size_t *n,
		  bool *more);
void store_txs_free(Settle__V1__TxRecord **arr, size_t n);

struct store_counts {
	uint64_t by_state[32]; /* indexed by Settle__V1__TxState */
	/* non-terminal: ACTIVE, COMMITTING, ROLLING_BACK, XA_PREPARED, and
	 * the saga's RUNNING and COMPENSATING */
	uint64_t active;
	uint64_t finished; /* COMMITTED + ROLLED_BACK still kept */
	uint64_t stuck;	   /* non-terminal with a FAILED branch (due 0) */
};

/* Count transactions by state. txn may be NULL. */
int store_counts_get(struct store *s, MDB_txn *txn, struct store_counts *c);

/*
 * Build the wire TxInfo for tx: with its branches (never their payload)
 * when branches is true, with its event history when history is true.
 * XA fields: TxInfo.xid and BranchInfo.xid in text form
 * (xa_xid_format()), BranchInfo.rm, and both heuristics.
 * TxInfo.stuck is true when a branch is FAILED (the coordinator may OR in
 * its own age threshold). *out is owned by the caller: free with
 * settle__v1__tx_info__free_unpacked(*out, NULL). txn may be NULL.
 */
int store_tx_info(struct store *s, MDB_txn *txn, const Settle__V1__TxRecord *tx,
		  bool branches, bool history, Settle__V1__TxInfo **out);

/* BranchInfo for one branch, without the payload; same ownership rule
 * (settle__v1__branch_info__free_unpacked). */
int store_branch_info(const Settle__V1__BranchRecord *b,
		      Settle__V1__BranchInfo **out);

/* ---- Writes (FSM only) ---------------------------------------------------
 * Each takes a write transaction from store_write_begin(). */

/*
 * Write tx (insert or replace) and keep the due, by_state and finished
 * index rows in step with it: the previous record, if any, is read to
 * remove its rows first. tx is not modified; nothing is kept.
 */
int store_tx_put(struct store *s, MDB_txn *txn, const Settle__V1__TxRecord *tx);

/* What of a stored tx record its index rows depend on. */
struct store_tx_rows {
	bool present; /* a record is stored */
	int state;
	uint64_t due_ms;
	uint64_t finished_ms;
};

/* The rows of tx (present). */
void store_tx_rows_of(const Settle__V1__TxRecord *tx, struct store_tx_rows *r);

/*
 * store_tx_put() for a caller that knows the rows of the record stored
 * now (old, present false for none): nothing is read, and only the index
 * rows that change are deleted and written (a Confirm's result that
 * leaves state and deadline as they were touches none).
 */
int store_tx_put_over(struct store *s, MDB_txn *txn,
		      const Settle__V1__TxRecord *tx,
		      const struct store_tx_rows *old);

/* Delete tx with its branches, events and index rows.
 * SETTLE_ENOTFOUND if it does not exist. */
int store_tx_delete(struct store *s, MDB_txn *txn, const char *gid);

/* Write one branch (insert or replace), keyed by b->gid and b->branch_id. */
int store_branch_put(struct store *s, MDB_txn *txn,
		     const Settle__V1__BranchRecord *b);

/* Append one event of gid under ev->seq. */
int store_event_put(struct store *s, MDB_txn *txn, const char *gid,
		    const Settle__V1__Event *ev);

/*
 * Frame one event for store_events_append(): its varint length then the
 * packed Event, appended to *buf (grown with realloc; *len and *cap
 * kept). SETTLE_ENOMEM.
 */
int store_event_frame(const Settle__V1__Event *ev, uint8_t **buf, size_t *len,
		      size_t *cap);

/* Append a run of framed events of gid (in seq order) with one search of
 * its history and one write per chunk touched: the rows come out as if
 * each event had been put by itself. */
int store_events_append(struct store *s, MDB_txn *txn, const char *gid,
			const uint8_t *run, size_t len);

/* Stored result of command id (STORE_CMD_ID_LEN bytes), SETTLE_ENOTFOUND
 * if never applied. *out owned by the caller. txn may be NULL. */
int store_cmd_get(struct store *s, MDB_txn *txn, const uint8_t *cmd_id,
		  Settle__V1__CmdResult **out);

/* Record the result of command id applied with leader time time_ms, in
 * cmds with a cmd_time row. */
int store_cmd_put(struct store *s, MDB_txn *txn, const uint8_t *cmd_id,
		  uint64_t time_ms, const Settle__V1__CmdResult *r);

/* How far an id's own time may be from the command's for cmd_ids. */
#define STORE_CMD_SKEW_MS (10 * 60 * 1000)

/* Whether cmd_id begins with a time (unix ms, 6 bytes big-endian) within
 * STORE_CMD_SKEW_MS of time_ms, so that store_cmd_put_timed() may keep it. */
bool store_cmd_id_timed(const uint8_t *cmd_id, uint64_t time_ms);

/* Record the result of command id, one that store_cmd_id_timed() accepts
 * for the command's time, in cmd_ids: collected by its own time. */
int store_cmd_put_timed(struct store *s, MDB_txn *txn, const uint8_t *cmd_id,
			const Settle__V1__CmdResult *r);

/* Delete up to limit command ids recorded with time_ms < before_ms, oldest
 * first (of cmd_ids: whose own time is STORE_CMD_SKEW_MS before it);
 * *deleted (may be NULL) gets how many. */
int store_cmd_gc(struct store *s, MDB_txn *txn, uint64_t before_ms,
		 size_t limit, size_t *deleted);

/* Delete up to limit finished transactions (with branches, events, index
 * rows) whose finished_ms < before_ms, oldest first; *deleted gets how
 * many. */
int store_tx_gc(struct store *s, MDB_txn *txn, uint64_t before_ms, size_t limit,
		size_t *deleted);

/* ---- Members (storage/members.c) -----------------------------------------
 * A directory of the cluster's members (id -> raft address, client
 * endpoint), written by the FSM from CmdMember so that every node knows
 * every member's client endpoint. Raft's own configuration says who is a
 * member; this table only says where to reach them. */

/* Insert or replace the row of m->id (not 0); nothing kept. */
int store_member_put(struct store *s, MDB_txn *txn,
		     const Settle__V1__MemberRecord *m);

/* Delete the row of id; SETTLE_ENOTFOUND if there is none. */
int store_member_delete(struct store *s, MDB_txn *txn, uint64_t id);

/* The row of member id, SETTLE_ENOTFOUND if none (or if it records a
 * removal: removed_ms != 0). *out owned by the caller
 * (settle__v1__member_record__free_unpacked). txn may be NULL. */
int store_member_get(struct store *s, MDB_txn *txn, uint64_t id,
		     Settle__V1__MemberRecord **out);
/* The same, a removal's record too. */
int store_member_get_any(struct store *s, MDB_txn *txn, uint64_t id,
			 Settle__V1__MemberRecord **out);

/* Every member's row in id order, in a malloc'd array *out of *n (NULL
 * and 0 when empty); free with store_members_free(). txn may be NULL. */
int store_members_list(struct store *s, MDB_txn *txn,
		       Settle__V1__MemberRecord ***out, size_t *n);
/* The rows that record a removal (feature level 8), the same way. */
int store_members_removed(struct store *s, MDB_txn *txn,
			  Settle__V1__MemberRecord ***out, size_t *n);
void store_members_free(Settle__V1__MemberRecord **arr, size_t n);

/* ---- Snapshots ----------------------------------------------------------
 *
 * Format (all integers little-endian):
 *   "STLSNAP1" magic (8) | u32 format version | u32 number of DBs |
 *   u64 applied index |
 *   per DB: u32 name length, name, u64 count,
 *           count x (u32 key length, key, u32 value length, value) |
 *   u64 FNV-1a 64 checksum of every byte before it.
 * Compressed (STORE_SNAPSHOT_LZ4), that whole plain snapshot is one LZ4
 * frame in a container:
 *   "STLSNAPZ" magic (8) | u64 applied index | u64 length of the plain
 *   snapshot | LZ4 frame.
 * store_restore() takes either form; the coordinator writes the second.
 */

/*
 * Serialize every DB from one read transaction into a buffer allocated with
 * raft_malloc() (*buf, *len; free with raft_free(), or hand it to raft).
 * The snapshot's applied index is max(applied_index, the stored one): raft
 * advances its index over entries that never reach the FSM (configuration
 * changes), and after a restore those must not be replayed either.
 */
int store_snapshot(struct store *s, uint64_t applied_index, uint8_t **buf,
		   size_t *len);

/*
 * Replace the whole content with a snapshot. The buffer is validated
 * completely first, nothing changed on failure (SETTLE_EPROTO): magic,
 * version, DB names and order, lengths, strictly increasing keys in every
 * DB, checksum, and every row against its record (storage/snapshot_check.c):
 * records decode with known enum values, valid gids and keys that match
 * their content; meta holds only its known rows; every index row (due,
 * by_state, finished, cmd_time) names a record that implies exactly it,
 * and the counts match; applied_log rows lie in 1..the snapshot's index.
 * A format 1 snapshot (no applied_log) is accepted. Then every DB is emptied
 * and refilled in one write transaction (SETTLE_EFULL if it does not fit: the
 * old content stays) and the applied index is set to the snapshot's.
 * If the store's applied index is already >= the snapshot's, nothing is
 * done (raft 0.15 restores its last snapshot at every start, then replays
 * the log after it). buf is not owned: the caller frees it.
 */
int store_restore(struct store *s, const uint8_t *buf, size_t len);

/*
 * The same from read transaction txn, which the caller began and ends: the
 * coordinator opens it on the loop thread (fixing the view) and serializes
 * from a worker thread (MDB_NOTLS allows it), so the loop keeps applying.
 * flags: STORE_SNAPSHOT_LZ4 compresses as it goes (the plain snapshot is
 * never held whole in memory). Errors go to store_work_errmsg().
 */
#define STORE_SNAPSHOT_LZ4 1u
int store_snapshot_txn(struct store *s, MDB_txn *txn, uint64_t applied_index,
		       unsigned flags, uint8_t **buf, size_t *len);

/*
 * The same, compressed, streamed into fd: a new empty file written from
 * offset 0, the container header last (pwrite). Writeback starts as it
 * goes and at most a few megabytes wait dirty; the caller fdatasync()s.
 * *len: the file's length. Errors go to store_work_errmsg() (SETTLE_EIO,
 * SETTLE_ENOSPACE for a failed write). cancel may be NULL; once another
 * thread sets *cancel (atomically) the write stops within about a
 * megabyte with SETTLE_EIO ("Operation canceled").
 */
int store_snapshot_fd(struct store *s, MDB_txn *txn, uint64_t applied_index,
		      int fd, const int *cancel, uint64_t *len);

/*
 * A manifest stands for a compressed snapshot kept in a file of its own
 * (the coordinator's checkpoint): raft stores and loads these 32 bytes
 * instead of the snapshot.
 *   "STLSNAPM" magic (8) | u64 applied index | u64 length of the file |
 *   u64 FNV-1a 64 of the 24 bytes before.
 * store_manifest_get(): SETTLE_EPROTO unless buf is exactly one.
 * store_restore() refuses a manifest: the file is the snapshot.
 */
#define STORE_MANIFEST_LEN 32
void store_manifest_put(uint8_t out[STORE_MANIFEST_LEN], uint64_t index,
			uint64_t len);
int store_manifest_get(const uint8_t *buf, size_t len, uint64_t *index,
		       uint64_t *file_len);

/* Applied index recorded in a snapshot buffer (any form, a manifest too),
 * without full validation. SETTLE_EPROTO if the header is not a
 * snapshot's. */
int store_snapshot_index(const uint8_t *buf, size_t len, uint64_t *index);

#endif /* SETTLE_STORE_H */

/*
 * coord.h — one coordinator node: raft, the FSM over LMDB, the client RPC
 * server, and the phase-2 driver, all on one uv loop thread.
 *
 * Everything that changes transaction state goes through coord_propose():
 * a settle.v1.Command appended with raft_apply and applied by the FSM
 * (wal/fsm.h) on every node. Only the leader answers clients that change
 * state and only the leader calls participants.
 */
#ifndef SETTLE_COORD_H
#define SETTLE_COORD_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "config.h"
#include "quota.h"
#include "raft_tcp.h"
#include "rpc.h"
#include "settle.pb-c.h"
#include "storage/store.h"
#include "wal/fsm.h"

struct coord_driver;

/* The cluster clock (leader) and the offset estimate (clock.c). */
struct coord_clock {
	bool running;		    /* a ready leader: stamps clock_ms */
	uint64_t base;		    /* cluster clock when it became ready */
	uint64_t mono_base;	    /* monotonic ms then */
	uint64_t wall_base;	    /* the leader's wall ms then */
	uint64_t last_propose_mono; /* the last command stamped */
	bool idle_in_flight;	    /* a clock entry is proposed */
	/* Smallest (own wall - leader's stamp) of the current window [0]
	 * (from win_start, monotonic) and the one before [1]. */
	int64_t win_min[2];
	bool win_has[2];
	uint64_t win_start;
	uint64_t warned_mono; /* when the offset was last warned about */
};
struct coord_waiter;
#define COORD_WAITER_BUCKETS 4096
struct pending;

/* Commands proposed during this turn of the loop (propose.c). */
struct coord_batch {
	struct pending *items;
	size_t n, cap;
};

/* The leader's rounds that raise the feature level (features.c). */
struct coord_features {
	uint64_t round;	     /* id of the last round */
	bool running;	     /* its STATUS calls are out */
	bool proposing;	     /* a CmdFeatures is in flight */
	uint32_t want;	     /* the level the round asks about */
	unsigned asked;	     /* members asked */
	unsigned answered;   /* of them, answered or failed */
	unsigned agreed;     /* of them, claiming want or more */
	uint64_t conf_index; /* the configuration the round asked */
	uint64_t next_ms;    /* monotonic: the next round */
	uint64_t warned_ms;  /* monotonic: last "stays at level" */
	struct rpc_client *clients[COORD_MAX_PEERS];
	unsigned n_clients;
};

/*
 * The writing of one checkpoint, the whole store at index from read view
 * txn, on a thread of its own at a low priority (snapshot_base.c). In:
 * c, txn, index, cancel (may be NULL). Out: len (the file's), raised (its
 * disk I/O went from idle to best-effort), rv and errmsg.
 */
struct ckpt_job {
	struct coord *c;
	MDB_txn *txn;
	uint64_t index;
	const int *cancel;
	uint64_t len;
	pid_t tid; /* set by the thread (atomic) */
	bool raised;
	int rv;
	char errmsg[300];
};

struct coord {
	uv_loop_t *loop;
	struct coord_config cfg;

	struct raft_tcp transport; /* raft_uv's TCP, without Nagle */
	struct coord_quota quota;  /* open transactions per client */
	struct raft_io io;
	struct raft_fsm raft_fsm;
	struct raft raft;
	bool raft_started;

	struct store *store;
	struct fsm fsm;

	/* A snapshot being taken: the read view fixed on the loop thread,
	 * serialized on a worker thread, released in snapshot_finalize. */
	struct {
		bool busy;
		MDB_txn *txn;
		uint64_t index;
		size_t len;	     /* bytes of the last snapshot */
		uint64_t prev_index; /* index of the snapshot before */
		uint64_t log_bytes;  /* applied since the last snapshot */
		uint64_t log_entries;
		bool log_full; /* log_bytes reached --snapshot-log */
		/* Timing of the one being taken (uv_hrtime, ns): begun on
		 * the loop, how long the loop held it, when the worker
		 * started and was done. */
		uint64_t t_begin, t_loop, t_work, t_done;
		bool raised; /* its disk I/O raised to best-effort */
		/* raft_uv's own snapshot_get and close, wrapped; reads of a
		 * checkpoint for raft under way, and raft's close waiting
		 * for them. */
		int (*io_get)(struct raft_io *, struct raft_io_snapshot_get *,
			      raft_io_snapshot_get_cb);
		void (*io_close)(struct raft_io *, raft_io_close_cb);
		unsigned gets;
		raft_io_close_cb close_cb;
		/* Old checkpoints being removed, off the loop; the base whose
		 * journal is being written, kept whatever raft keeps. */
		uv_work_t prune;
		bool pruning;
		uint64_t prune_keep[2];
		/* The journal of entries applied after the base checkpoint
		 * (wal/journal.h; snapshot_journal.c): its file (-1: none,
		 * and the next snapshot is full), base index and length,
		 * and the base's length. */
		struct {
			int fd;
			uint64_t base;
			uint64_t len;
			uint64_t base_len;
			uint64_t kicked; /* bytes handed to writeback */
		} journal;
		/* The snapshot being taken: its kind (snapshot.c) and, for
		 * a delta, its base and the base's length, the journal's
		 * length at its index and a descriptor of the journal for
		 * the worker to sync. */
		int kind;
		uint64_t delta_base, delta_base_len, delta_len;
		int delta_fd;
		/* A new checkpoint being written in the background for the
		 * next deltas to stand on (snapshot_base.c), at index, and
		 * the journal after it, written alongside the current. */
		struct {
			bool busy;
			bool dropped; /* given up: not to be switched to */
			int cancel;   /* set: the writer stops (atomic) */
			MDB_txn *txn;
			uint64_t index;
			int journal_fd;
			uint64_t journal_len;
			uint64_t t_begin;
			struct ckpt_job job;
			uv_work_t work;
		} base;
	} snap;

	/* Writeback of the store's dirty pages started on libuv's pool
	 * every second (node.c). */
	struct {
		uv_work_t work;
		bool busy;
		uint64_t at;
	} writeback;

	struct rpc_server *server;
	struct coord_driver *driver;
	struct coord_features features;
	struct coord_batch batch;
	struct coord_waiter *waiters; /* Commit/Rollback waiting for phase 2 */
	unsigned lost_waiters;	      /* of them, held since leadership moved */
	/* The same waiters by a hash of their gid (dispatch.c), so that a
	 * transaction's change finds its own among thousands. */
	struct coord_waiter *waiter_index[COORD_WAITER_BUCKETS];

	uv_signal_t sigterm;
	uv_signal_t sigint;
	uv_prepare_t watch; /* leadership, checked every loop iteration */
	uv_check_t commit;  /* applied entries to LMDB, every 20 ms at most */
	uint64_t committed_ms; /* uv_now() of the last commit by commit */
	uv_timer_t tick;       /* driver heartbeat */
	uv_timer_t drain;      /* stopping: waits for raft's writes to end */
	uint64_t drain_until;  /* monotonic ms: close raft anyway after this */

	/* Leadership as the watch last saw it. A leader is *ready* once a
	 * barrier entry of its own term is committed and applied: only then
	 * does it answer clients and call participants (see node.c). */
	bool leader;
	raft_term leader_term;
	raft_term ready_term;
	raft_term barrier_term;
	struct raft_barrier barrier;
	bool barrier_pending;
	bool closing;
	int exit_code;
	uint64_t started_ms;
	uint64_t proposals; /* in flight */
	struct coord_clock clock;

	/* The store against --store-budget (budget.c): the last measure,
	 * when it was taken (monotonic ms, 0: never), the bytes of entries
	 * admitted since, and whether new transactions are refused. */
	struct {
		struct store_usage u;
		uint64_t at_ms;
		uint64_t admitted;
		bool refusing;
	} budget;

	/* Status: transactions with a heuristic not forgotten. Counting them
	 * is a scan of every kept transaction, so the count is redone only
	 * when the log moved and it is older than COORD_HEUR_RECOUNT_MS. */
	struct {
		bool valid;
		uint64_t count;
		uint64_t applied; /* raft's applied index at the count */
		uint64_t at_ms;	  /* monotonic ms of the count */
	} heur;
	char errmsg[512];
};

/* Least age of the heuristic count before Status recounts. */
#define COORD_HEUR_RECOUNT_MS 5000

/*
 * Open everything (LMDB, raft, RPC server) and start. On failure returns a
 * SETTLE_E* code with a message in c->errmsg, having released what it
 * acquired. c->cfg must be filled in before.
 */
int coord_start(struct coord *c, uv_loop_t *loop);

/* Begin a clean stop: stop serving, let raft finish the writes it has in
 * flight (bounded), then close raft; the loop ends once every handle is
 * closed. */
void coord_stop(struct coord *c, int exit_code);

/* Release what remains after the loop ended. */
void coord_close(struct coord *c);

/* The leader's feature-level rounds (features.c): called from the node's
 * tick; closed with the driver. */
void coord_features_tick(struct coord *c);
void coord_features_close(struct coord *c);

/* Whether this node is the raft leader right now. */
bool coord_is_leader(struct coord *c);

/* Leader, and the barrier of its current term has been applied: it may
 * answer clients and act on the outside world. */
bool coord_is_ready(struct coord *c);

/* Client endpoint of the current leader, "" if unknown. */
const char *coord_leader_endpoint(struct coord *c);

/* ---- Proposals ----------------------------------------------------------- */

/*
 * Called once a proposal is committed and applied (err 0, res the FSM's
 * result, valid only during the call) or failed (err SETTLE_ENOTLEADER when
 * leadership was lost or never held — the entry may still commit, so a
 * client must retry with the same cmd_id; other SETTLE_E* codes).
 */
typedef void (*coord_propose_cb)(struct coord *c, void *data, int err,
				 const Settle__V1__CmdResult *res);

/*
 * Append cmd through raft. cmd->time_ms is stamped with the leader's clock
 * when 0; an empty cmd_id gets 16 random bytes. cmd is encoded at once and
 * not kept. cb fires later, never from inside this call. From feature
 * level 3 the command waits for the end of this turn of the loop
 * (coord_propose_flush()), and the commands of a turn go into one entry
 * (a CmdBatch): one raft round for all of them. Fails at once with
 * SETTLE_ENOTLEADER, SETTLE_EUNAVAIL (stopping), SETTLE_ETOOBIG,
 * SETTLE_EINVAL (cmd_id), SETTLE_ENOMEM.
 */
int coord_propose(struct coord *c, Settle__V1__Command *cmd,
		  coord_propose_cb cb, void *data);
/* Append the commands waiting (node.c: before the loop polls, and after
 * the I/O callbacks of a turn). Their callbacks may run from here. */
void coord_propose_flush(struct coord *c);
/* Answer every waiting command with err instead (stopping). */
void coord_propose_drop(struct coord *c, int err);

/* Fill buf with 16 random bytes (loop thread only). */
void coord_random_id(uint8_t buf[16]);
/* now_ms << 16 plus a count, strictly increasing over the process's
 * calls (past now_ms << 16 only when called more than 2^16 times a ms,
 * or when the clock went back): what the leader's gids and command ids
 * begin with, so that they come in order (loop thread only). */
uint64_t coord_stamp(uint64_t now_ms);
/* A command id the leader makes (a batch's, the driver's results): unix
 * ms in the first 6 bytes and a count in the next 2 (coord_stamp()),
 * big-endian, then random bytes, like libsettle's settle_cmd_id(). */
void coord_cmd_id(uint8_t buf[16]);

/* ---- Clocks (clock.c) -----------------------------------------------------
 */

/* This node became a ready leader: its cluster clock starts from the
 * highest one applied. */
void coord_clock_start(struct coord *c);
/* No longer a ready leader: stop stamping (clock_ms 0). */
void coord_clock_stop(struct coord *c);
/* The cluster clock now, in ms; 0 when this node is not a ready leader. */
uint64_t coord_clock_now(const struct coord *c);
/* The leader's wall ms (stamps, retry times): the real wall clock unless
 * this node is a ready leader, then the wall clock (or the latest stamp
 * applied, if later) when it became ready advanced by its monotonic
 * clock, so that a step of the wall clock changes nothing. */
uint64_t coord_wall_now(const struct coord *c);
/* Stamp cmd->clock_ms (coord_propose does it for every command). */
void coord_clock_stamp(struct coord *c, Settle__V1__Command *cmd);
/* A ready leader that proposed nothing for a second (and has no clock
 * entry in flight). */
bool coord_clock_idle(const struct coord *c);
/* Periodic, while some transaction can expire: an idle leader appends a
 * clock entry, so that the cluster clock in the log stays recent. */
void coord_clock_tick(struct coord *c);
/* A command stamped by the leader at wall time stamp_ms was just applied
 * here (0: none): a sample for the offset estimate; warns in the log
 * when the offset is past a second (at most once a minute). */
void coord_clock_applied(struct coord *c, uint64_t stamp_ms);
/* This node's wall clock minus the leader's, estimated over the last
 * 5-10 s of entries; 0 on the ready leader. False when unknown (no entry
 * applied lately). */
bool coord_clock_offset(struct coord *c, int64_t *offset_ms);

/* ---- Client requests (dispatch.c) ---------------------------------------- */

void coord_dispatch(void *data, struct rpc_call *call);

/* Answer call with an error; NOT_LEADER carries the leader's endpoint (or
 * becomes UNAVAILABLE when no leader is known). msg may be NULL. */
void coord_fail(struct coord *c, struct rpc_call *call, int err,
		const char *msg);

/* COMMITTED or ROLLED_BACK. */
bool coord_tx_final(int state);

/* Reads (query.c): body is the request's protobuf body. */
void coord_do_query(struct coord *c, struct rpc_call *call, const uint8_t *b,
		    size_t n);
void coord_do_list(struct coord *c, struct rpc_call *call, const uint8_t *b,
		   size_t n);
void coord_do_status(struct coord *c, struct rpc_call *call);
/* XA_RECOVER: the XA transactions of a legacy TM (begun with an xid) that
 * are XA_PREPARED or final with a heuristic not forgotten, in gid order. */
void coord_do_xa_recover(struct coord *c, struct rpc_call *call,
			 const uint8_t *b, size_t n);
/* Answer a QUERY of gid now, from this node's store (brief:
 * QueryRequest.brief). */
void coord_query_answer(struct coord *c, struct rpc_call *call, const char *gid,
			bool history, bool brief);

/* A QUERY with wait_ms (1..60000): answered by coord_query_answer() once
 * gid is final or has a FAILED branch, after wait_ms, or when the waiters
 * are flushed. Returns 0, or SETTLE_ENOMEM (call not answered). */
int coord_query_wait(struct coord *c, struct rpc_call *call, const char *gid,
		     bool history, bool brief, uint32_t wait_ms);
/* Tell waiters that tx changed (wakes Commit/Rollback/Query that wait). */
void coord_waiters_notify(struct coord *c, const Settle__V1__TxRecord *tx);
/*
 * At shutdown (err SETTLE_EUNAVAIL): answer every waiter now, from the
 * store. At a loss of leadership (SETTLE_ENOTLEADER): every waiter is
 * answered NOT_LEADER with the new leader's endpoint once one is known
 * (coord_waiters_redirect()), or UNAVAILABLE if none is known when its
 * own wait ends. Proposals that fail because leadership moved are held the
 * same way (their wait_ms; two election timeouts for calls that do not
 * wait).
 */
void coord_waiters_flush(struct coord *c, int err);
/* Answer the waiters held since leadership moved, if a leader is known now.
 * Cheap when there are none; the leadership watch calls it every loop
 * iteration. */
void coord_waiters_redirect(struct coord *c);

/* ---- Store budget (budget.c) -------------------------------------------- */

/*
 * Whether cmd, about to be proposed for call, fits the store's budget:
 * Begin and SubmitSaga are refused from the high-water mark on (90% of the
 * budget, or of what the disk allows), RegisterBranch from 95%, everything
 * else passes. False after answering call with RESOURCE_EXHAUSTED and a
 * message naming --store-budget (or the disk). Leader only.
 */
bool coord_budget_admit(struct coord *c, struct rpc_call *call,
			const Settle__V1__Command *cmd);
/* Measure the store now and then (every node), logging when refusal
 * starts or ends. */
void coord_budget_tick(struct coord *c);
/* For STATUS: bytes in use, the budget, and whether this node (leading)
 * refuses new transactions. */
void coord_budget_status(struct coord *c, uint64_t *used, uint64_t *budget,
			 bool *refusing);

/* ---- Node (node.c) and its snapshots (snapshot.c) ------------------------ */

/* Commit the apply batch now (store_batch_commit); a failure stops the
 * node (exit 70). */
void coord_commit_applied(struct coord *c);
/* Between raft_uv_init and raft_init: the FSM's snapshot hooks, the
 * checkpoint directory (left-overs of a crash removed), and the raft_io
 * wrappers. Fills c->errmsg on failure. */
int coord_snapshot_init(struct coord *c);
/* No snapshot being taken, no checkpoint being read for raft or being
 * removed. */
bool coord_snapshot_idle(const struct coord *c);
/* The node stops: give up a checkpoint being written in the background. */
void coord_snapshot_stop(struct coord *c);
/* Entry buf/len, applied at index, to the journal of delta snapshots
 * (snapshot_journal.c; nothing when none is written). */
void coord_journal_append(struct coord *c, uint64_t index, const void *buf,
			  size_t len);
/* Close the journal: the next snapshot is a full one. */
void coord_journal_stop(struct coord *c);
/* How long a leader waits for a follower to take a snapshot of len bytes
 * before sending it again (raft_set_install_snapshot_timeout). */
unsigned coord_install_timeout_ms(uint64_t len);

/* ---- Phase-2 driver (driver.c) ------------------------------------------- */

int coord_driver_init(struct coord *c);
/* Ready leader or not: start or stop calling participants. */
void coord_driver_set_active(struct coord *c, bool active);
/* A transaction changed: act on it soon if it is due. */
void coord_driver_notify(struct coord *c, const Settle__V1__TxRecord *tx);
/* Periodic work: due transactions, deadlines, retries, GC. */
void coord_driver_tick(struct coord *c);
void coord_driver_close(struct coord *c);

/* XA as transaction manager (xa_drive.c, docs/XA.md): the phase-2 calls,
 * recovery scans and heuristics of this node since it started; zeros on a
 * node that never led. */
struct coord_xa_stats;
void coord_xa_stats_get(struct coord *c, struct coord_xa_stats *out);

#endif /* SETTLE_COORD_H */

/*
 * coord.h — the state of one coordinator node (struct coord). Functions
 * are not declared here but in the header of the stage that owns them.
 *
 * Requests flow one way through the node, each stage a file or a few
 * behind a header of its own, all on one uv loop thread:
 *
 *   proto/ rpc server: frames read per connection
 *     -> dispatch.h   check, admit (quota.h, budget.h), answer reads,
 *                     membership verbs (admin.h)
 *     -> propose.h    the turn's commands as one raft entry
 *     -> raft         canonical/raft 0.15 and raft_uv (node.h runs it)
 *     -> apply.h      the FSM into the store's apply batch; snapshot.h
 *     -> waiters.h    answer calls, now or when their transaction moves
 *        driver.h     on the leader: call participants, then propose
 *                     their answers (a second producer into propose.h)
 *   proto/ rpc server: replies written once per connection per turn
 *
 * Beside the stages: role.h (leader? ready? where is the leader?) and
 * clock.h (the cluster clock), read by all of them; features.h, a
 * producer like the driver. node.h assembles the stages, runs the loop's
 * handles and ticks, and follows leadership. scripts/check-layers keeps
 * the includes to this order.
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
#include "metrics.h"
#include "notify.h"
#include "quota.h"
#include "raft_tcp.h"
#include "roles.h"
#include "rpc.h"
#include "settle.pb-c.h"
#include "storage/store.h"
#include "wal/fsm.h"

struct admin_op;
struct coord_driver;
struct coord_waiter;
struct pending;
struct rpc_client;

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

/* Buckets of the index of waiters by gid (struct coord). */
#define COORD_WAITER_BUCKETS 4096

/*
 * The writing of one checkpoint, the whole store at index from read view
 * txn, on a thread of its own at a low priority (snapshot_base.c). In:
 * c, txn, index, cancel (may be NULL). Out: len (the file's), raised (its
 * disk I/O went from idle to best-effort), rv and errmsg.
 */
struct ckpt_job {
	struct coord *c;
	/* Where: NULL for DATA/checkpoints, else this directory. */
	const char *dir;
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

	struct raft_tcp transport;    /* raft_uv's TCP, without Nagle */
	struct coord_quota quota;     /* open transactions per client */
	struct coord_metrics metrics; /* --metrics: what operators read */
	struct coord_http *http;      /* its HTTP port, NULL without */
	struct coord_notify notify;   /* systemd (notify.h) */
	struct raft_io io;
	struct raft_fsm raft_fsm;
	struct raft raft;
	bool raft_started;
	/* raft closed: raft_uv and the transport are freed by coord_close(),
	 * once the loop has run every callback they still had. */
	bool raft_io_closed;

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
		/* raft's close callback, passed on once (snapshot_send.c). */
		raft_io_close_cb raft_close_cb;
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

	/* An operator's backup (backup.c): a checkpoint written to
	 * DATA/backups on a worker while the node serves, then read in
	 * chunks; deleted once unread for a while. */
	struct {
		bool busy;  /* being written */
		bool ready; /* written: path holds it */
		uint64_t index, term, len, time_ms;
		uint64_t read_ms; /* monotonic ms of the last read */
		char dir[600], path[700];
		MDB_txn *txn;
		struct ckpt_job job;
		uv_work_t work;
		struct rpc_call *call; /* waiting for it to be written */
	} backup;

	/* Writeback of the store's dirty pages started on libuv's pool
	 * every second (node.c). */
	struct {
		uv_work_t work;
		bool busy;
		uint64_t at;
	} writeback;

	struct rpc_server *server;
	/* Mutual TLS (proto/tls.h; --tls-*): the client port's context, and
	 * the one for this node's calls to other nodes and participants,
	 * which pass client_opts to rpc_client_init. NULL: plaintext. */
	struct rpc_tls *tls_server;
	struct rpc_tls *tls_client;
	struct rpc_opts client_opts;
	/* Contexts replaced by a reload (SIGHUP), kept until the node closes:
	 * connections and clients made before still use them. */
	struct rpc_tls **tls_retired;
	size_t n_tls_retired;
	/* --roles, loaded at start and on SIGHUP (roles.h); enforced by
	 * dispatch when roles_on. */
	struct coord_roles roles;
	bool roles_on;
	uv_signal_t sighup;
	uv_signal_t sigusr[2]; /* log level: SIGUSR1 more, SIGUSR2 less */
	struct coord_driver *driver;
	struct coord_features features;
	struct admin_op *admin_op; /* the membership change under way */
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

#endif /* SETTLE_COORD_H */

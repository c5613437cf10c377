/*
 * settle_participant.h — libsettle's participant side: the barrier that
 * makes TCC and Saga calls safe to repeat and to reorder, and the
 * participant SDK, an RPC server answering TRY / CONFIRM / CANCEL and
 * ACTION / COMPENSATE with the application's handlers inside the barrier.
 * docs/BARRIER.md explains the algorithm.
 *
 * Errors: 0 or a negative SETTLE_E* code (see settle.h).
 */
#ifndef SETTLE_PARTICIPANT_H
#define SETTLE_PARTICIPANT_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>
#include <uv.h>

#include "settle.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The three TCC operations and the two Saga ones, as stored in barrier
 * keys (so the values never change). */
enum settle_op {
	SETTLE_OP_TRY = 1,
	SETTLE_OP_CONFIRM = 2,
	SETTLE_OP_CANCEL = 3,
	SETTLE_OP_ACTION = 4,	  /* a saga step's action, method ACTION */
	SETTLE_OP_COMPENSATE = 5, /* its compensation, method COMPENSATE */
};

/* ---- Barrier ------------------------------------------------------------ */

typedef struct settle_barrier settle_barrier;

/* What settle_barrier_enter() decided. */
enum settle_barrier_action {
	/* First time: run the business effect in the same txn. */
	SETTLE_BARRIER_RUN = 0,
	/* A repeat, or a Cancel with no Try / a Compensate with no Action
	 * before it (null compensation): do nothing and answer success. */
	SETTLE_BARRIER_SKIP = 1,
	/* Refuse: a Try after its Cancel (hanging Try), an Action after its
	 * Compensate, or a Confirm after a Cancel / a Cancel after a Confirm
	 * of the same branch (a protocol violation: the coordinator decides
	 * once). Nothing was written. */
	SETTLE_BARRIER_REFUSE = 2,
};

/*
 * Open (creating if needed) the barrier tables "settle_barrier" and
 * "settle_barrier_time" in env, which the application owns and keeps open
 * longer than the barrier. env needs room for two named databases
 * (mdb_env_set_maxdbs). Runs its own write txn: the calling thread must not
 * hold one. Returns 0 and *out (free with settle_barrier_close()),
 * SETTLE_ESTORE / SETTLE_EFULL from LMDB, SETTLE_ENOMEM.
 */
int settle_barrier_open(MDB_env *env, settle_barrier **out);

/* Free the handle (the tables stay in env). NULL is a no-op. */
void settle_barrier_close(settle_barrier *b);

/*
 * Enter the barrier for (gid, branch_id, op) inside txn, the application's
 * write txn that also carries the business effect: the barrier row and the
 * effect commit or abort together, so a crash leaves neither.
 *   TRY:     a cancel row exists -> REFUSE (nothing written: the cancel row
 *            keeps refusing); a try row exists -> SKIP; else write it, RUN.
 *   CONFIRM: a confirm row exists -> SKIP; a cancel row -> REFUSE; else
 *            write it, RUN.
 *   CANCEL:  a cancel row exists -> SKIP; a confirm row -> REFUSE; else
 *            write it, and RUN if a try row exists, SKIP if not (null
 *            compensation: the Try never took effect).
 *   ACTION:  a compensate row exists -> REFUSE (nothing written); an
 *            action row exists -> SKIP; else write it, RUN.
 *   COMPENSATE: a compensate row exists -> SKIP; else write it, and RUN
 *            if an action row exists, SKIP if not (null compensation).
 * TCC and Saga rows of one (gid, branch_id) are independent of each other.
 * gid: 1..SETTLE_GID_MAX bytes, not kept. *action receives the decision.
 * Errors: SETTLE_EINVAL (bad gid or op), SETTLE_ESTORE / SETTLE_EFULL
 * (LMDB; the caller should abort txn).
 */
int settle_barrier_enter(settle_barrier *b, MDB_txn *txn, const char *gid,
			 uint32_t branch_id, int op, int *action);

/*
 * Delete up to limit rows (0: no limit) written more than older_than_ms
 * ago, oldest first, in txn (a write txn). *removed (may be NULL) gets the
 * count. Keep older_than_ms well above the longest time a late request can
 * still arrive (the coordinator's retry horizon): once the cancel row of a
 * branch is gone, a very late Try can no longer be refused.
 * Errors: SETTLE_ESTORE, SETTLE_EFULL.
 */
int settle_barrier_gc(settle_barrier *b, MDB_txn *txn, uint64_t older_than_ms,
		      size_t limit, size_t *removed);

/* ---- Participant SDK ---------------------------------------------------- */

/* One call, as the handler sees it. Pointers valid during the call only. */
struct settle_branch {
	int op; /* enum settle_op */
	const char *gid;
	uint32_t branch_id;
	const char *resource;
	const uint8_t *payload; /* never log it */
	size_t len;
	uint32_t attempt;     /* 1 on the first call */
	uint64_t deadline_ms; /* unix ms the caller gives up; 0: none */
	/*
	 * The XID a legacy TM began the transaction with (settle_xa_begin()
	 * with an xid: Settle as its resource manager), in its wire encoding
	 * (4-byte big-endian formatID, gtrid length, bqual length, gtrid,
	 * bqual; at most SETTLE_XID_WIRE_MAX bytes), so that a handler can tie
	 * its work to the TM's transaction. Empty (xid NULL, xid_len 0) unless
	 * the transaction was begun with an xid. A request whose xid does not
	 * decode is refused with INVALID_ARGUMENT before any handler runs.
	 */
	const uint8_t *xid;
	size_t xid_len;
};

/*
 * A business handler. txn is the write txn holding the barrier row (NULL
 * when no env is attached): make the effect in it, never commit or abort
 * it. Return 0 on success, SETTLE_EFAILURE for a business failure
 * (retrying will not help: insufficient funds), SETTLE_ERETRY for a
 * transient one; any other code is answered as RETRY too. On error, write
 * a one-line reason into err (errlen bytes; sent to the caller, so no
 * payload data); the txn is aborted, barrier row included.
 */
typedef int (*settle_branch_fn)(void *data, const struct settle_branch *b,
				MDB_txn *txn, char *err, size_t errlen);

/*
 * A call answered later (see on_call_async below). Opaque; owned by the SDK
 * until it is completed with settle_call_run() or settle_call_fail().
 */
typedef struct settle_call settle_call;

/*
 * An asynchronous gate in front of the handlers: it receives every call
 * whose op has a handler, before any store access, and must complete it
 * exactly once, now or later, from the loop thread the participant runs
 * on (arm a uv timer on settle_participant_loop(), say). Nothing is
 * written before completion: no LMDB write txn is held while the call
 * waits, so other calls go on meanwhile.
 */
typedef void (*settle_branch_async_fn)(void *data, settle_call *call);

/* Barrier rows are kept 7 days by default; see barrier_retention_ms. */
#define SETTLE_BARRIER_RETENTION_DEFAULT_MS (7ull * 24 * 3600 * 1000)
/* barrier_retention_ms value that turns the cleanup off. */
#define SETTLE_BARRIER_KEEP_FOREVER UINT64_MAX

struct settle_participant_config {
	const char *listen;	 /* "host:port"; port 0 picks one; copied */
	MDB_env *env;		 /* NULL: no barrier, handlers get txn NULL */
	settle_branch_fn on_try; /* NULL: TRY answers UNKNOWN_METHOD */
	settle_branch_fn on_confirm;
	settle_branch_fn on_cancel;
	/*
	 * Saga steps: ACTION and COMPENSATE (NULL: UNKNOWN_METHOD). The
	 * branch's branch_id is the step number, resource the step name,
	 * payload the action's or the compensation's. An Action's effect is
	 * final once committed; Compensate must undo it. A Compensate whose
	 * Action never took effect, and repeats, are answered OK without a
	 * call; an Action after its Compensate is answered REFUSED without
	 * one. An Action has no deadline check: the barrier alone decides.
	 */
	settle_branch_fn on_action;
	settle_branch_fn on_compensate;
	void *data; /* handed to every handler */
	/*
	 * Barrier cleanup (with env only): a timer on the participant's loop
	 * deletes rows older than barrier_retention_ms, at most
	 * barrier_gc_batch per write txn, every barrier_gc_interval_ms (at
	 * once again while a batch comes back full). 0 picks the defaults:
	 * SETTLE_BARRIER_RETENTION_DEFAULT_MS, 1000 rows, and a quarter of
	 * the retention within 10 ms..60 s.
	 * SETTLE_BARRIER_KEEP_FOREVER turns the cleanup off.
	 *
	 * The retention must exceed the longest time a call for a branch can
	 * still arrive, or a late repeat runs twice: a Try until its
	 * transaction's deadline (settled --max-timeout, 24h by default), a
	 * Confirm/Cancel as long as the coordinator keeps the transaction
	 * (unfinished: retried, perhaps by an operator days later; finished:
	 * --retention, 24h). docs/BARRIER.md has the reasoning.
	 */
	uint64_t barrier_retention_ms;
	uint32_t barrier_gc_batch;
	uint32_t barrier_gc_interval_ms;
	/* NULL: handlers answer at once (synchronously). */
	settle_branch_async_fn on_call_async;
};

typedef struct settle_participant settle_participant;

/*
 * The call's request; pointers valid until the call is completed. The
 * payload is never to be logged.
 */
const struct settle_branch *settle_call_branch(const settle_call *call);

/*
 * Complete call: in one LMDB write txn, enter the barrier and, when it says
 * RUN, call fn(data, ...) (fn NULL: the op's configured handler with the
 * configured data), commit, and answer as a synchronous handler would. fn
 * runs before this returns. After settle_participant_close() the call is
 * answered RETRY and nothing is written (the caller retries later). Frees
 * call.
 */
void settle_call_run(settle_call *call, settle_branch_fn fn, void *data);

/*
 * Complete call with an error, writing nothing: err SETTLE_EFAILURE (a
 * business failure), SETTLE_EREFUSED (Try and Action only), anything else
 * is answered
 * RETRY. msg (may be NULL) is sent to the caller: no payload data. Frees
 * call.
 */
void settle_call_fail(settle_call *call, int err, const char *msg);

/*
 * Create a participant (not listening yet). cfg is copied; env stays the
 * application's. With env set, the barrier tables are opened now (so the
 * calling thread must not hold a write txn). Returns 0 and *out,
 * SETTLE_EINVAL (no listen address, no handler at all), SETTLE_ENOMEM,
 * barrier errors.
 */
int settle_participant_init(const struct settle_participant_config *cfg,
			    settle_participant **out);

/*
 * Listen and serve on the application's loop. Handlers then run on that
 * loop's thread, one at a time. Returns 0 or the listen error (text in
 * settle_participant_errmsg()).
 */
int settle_participant_start(settle_participant *p, uv_loop_t *loop);

/*
 * Listen and serve on a loop of its own, on a new thread. Returns once the
 * server listens (0) or failed to. Handlers run on that thread.
 */
int settle_participant_start_thread(settle_participant *p);

/* The loop handlers run on (the application's, or the participant's own
 * thread's), NULL before start. For timers of an on_call_async gate. */
uv_loop_t *settle_participant_loop(const settle_participant *p);

/* Port listened on (useful with port 0), or -1 before start. */
int settle_participant_port(const settle_participant *p);

/*
 * Serve over mutual TLS (struct settle_tls, settle.h): only callers whose
 * certificate chains to tls->ca are served, which for a participant means
 * the cluster's nodes. Before start. 0, or SETTLE_EINVAL (a file that
 * cannot be read, a key that does not match; the error text names it).
 */
int settle_participant_set_tls(settle_participant *p,
			       const struct settle_tls *tls);

/*
 * Under TLS, the certificates of the cluster's nodes, each "NAME" or
 * "cn:NAME" (its subject CN), "fp:HEX" (its SHA-256 fingerprint, colons
 * allowed) or "san:NAME" (one of its DNS, URI or e-mail subjectAltNames),
 * as settled --roles names them: Confirm,
 * Cancel, Action and Compensate are then served only to them (answered
 * PERMISSION_DENIED to any other certificate, the handler not called),
 * so that an initiator's certificate cannot confirm a branch itself; Try
 * stays open to every certificate the CA signed. n names (copied), before
 * start. 0, SETTLE_EINVAL (no TLS set, a CN empty or over 64 bytes, a
 * SAN over 255, a fingerprint not of 64 hex digits),
 * SETTLE_ENOMEM.
 */
int settle_participant_set_coordinators(settle_participant *p,
					const char *const *names, size_t n);

/* Last error text, "" if none. */
const char *settle_participant_errmsg(const settle_participant *p);

/*
 * Stop serving. After start(): closes the server and the cleanup timer;
 * the loop must run on for the close to finish, and p is freed then (once
 * every call handed to on_call_async has also been completed). After
 * start_thread(): stops the server and joins the thread, which ends once
 * its loop has no handles left (an on_call_async gate must complete its
 * calls and close its own handles), then frees p. Before any start: frees
 * p. Calls completed after close are answered RETRY without touching the
 * store. NULL is a no-op.
 */
void settle_participant_close(settle_participant *p);

#ifdef __cplusplus
}
#endif

#endif /* SETTLE_PARTICIPANT_H */

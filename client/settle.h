/*
 * settle.h — libsettle, the client library of the Settle transaction
 * coordinator: the initiator API (begin, register, commit, rollback, query,
 * sagas, waiting for an outcome), the operator verbs (retry, resolve) and a
 * generic call for any method of settle.v1 (settlectl, benchmarks).
 * The participant SDK and the barrier are in settle_participant.h.
 *
 * Link with `pkg-config --cflags --libs settle`.
 *
 * Errors: every function returns 0 or a negative SETTLE_E* code (listed
 * below; the same table as the rest of Settle). When a call fails,
 * settle_client_errmsg() tells why in one line, e.g.
 * "commit: WRONG_STATE: transaction is ROLLED_BACK".
 *
 * Threads: a settle_client handle runs one request at a time and is not
 * thread-safe. Use one handle per thread; handles share nothing.
 *
 * Messages: the request and response types are the protobuf-c types of
 * settle.proto (package settle.v1), from the installed header settle.pb-c.h,
 * which this header includes. settle_query() hands out the decoded
 * Settle__V1__TxInfo itself rather than a copy into a C struct, so that
 * fields added to the protocol reach callers without an API change.
 */
#ifndef SETTLE_H
#define SETTLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "settle.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Error codes. Inside the Settle tree proto/error.h defines them (with
 * internal mapping helpers): include "error.h" BEFORE settle.h there, or
 * this public copy takes its include guard. Applications only see this
 * copy; test/unit/client/test_errors.c checks that both tables agree.
 */
#ifndef SETTLE_ERROR_H
#define SETTLE_ERROR_H
enum {
	SETTLE_EINVAL = -1,	/* invalid argument */
	SETTLE_ENOTFOUND = -2,	/* unknown gid */
	SETTLE_ESTATE = -3,	/* wrong state for this call */
	SETTLE_ENOTLEADER = -4, /* not the leader (retried internally) */
	SETTLE_EUNAVAIL = -5,	/* transient: no leader yet, overloaded */
	SETTLE_ETIMEOUT = -6,	/* the wait ended before the outcome */
	SETTLE_EINTERNAL = -7,	/* bug or storage failure on the server */
	SETTLE_ENOMETHOD = -8,	/* unknown method */
	SETTLE_ETOOBIG = -9,	/* a frame or field over its limit */
	SETTLE_EEXISTS = -10,	/* Begin with a gid that is taken */
	SETTLE_EFAILURE = -11,	/* participant: business failure */
	SETTLE_ERETRY = -12,	/* participant: transient, call again */
	SETTLE_EREFUSED = -13,	/* participant barrier: Try after Cancel */
	/* The coordinator's store is near its budget (settled --store-budget):
	 * new transactions are refused, those begun finish. Not retried. */
	SETTLE_EEXHAUSTED = -14,
	SETTLE_EREUSED = -15,	 /* cmd_id already used by another request */
	SETTLE_EDENIED = -16,	 /* the certificate's roles do not allow it */
	SETTLE_ENOMEM = -100,	 /* out of memory */
	SETTLE_EIO = -101,	 /* I/O error */
	SETTLE_EPROTO = -102,	 /* protocol error: undecodable data */
	SETTLE_ECLOSED = -103,	 /* connection closed */
	SETTLE_ESTORE = -104,	 /* storage error */
	SETTLE_ERAFT = -105,	 /* raft error */
	SETTLE_ECONNECT = -106,	 /* connection failed */
	SETTLE_ECANCELED = -107, /* canceled */
	SETTLE_EFULL = -108,	 /* storage full */
	SETTLE_EDIVERGED = -109, /* a node's state diverged from the cluster */
	SETTLE_ENOSPACE = -110,	 /* no space left on device */
	/* A TLS handshake or record failed: a certificate refused by either
	 * side, or a peer that does not speak TLS (the message says which). */
	SETTLE_ETLS = -111,
};
/* Static text for a code ("unknown error" for others). */
const char *settle_strerror(int err);
/* Symbolic name ("NOTFOUND"); "OK" for 0. */
const char *settle_errname(int err);
#endif /* SETTLE_ERROR_H */

/* ---- Client handle ------------------------------------------------------ */

typedef struct settle_client settle_client;

/* Longest gid accepted by Settle, plus room for the terminating NUL. */
#define SETTLE_GID_MAX	   128
#define SETTLE_GID_BUFSIZE (SETTLE_GID_MAX + 1)

struct settle_client_opts {
	/* Time allowed for one attempt (connect, send, answer), on top of the
	 * wait_ms of Commit/Rollback. 0: 5000. */
	uint32_t call_timeout_ms;
	/* Connecting alone may take this long. 0: 1000. */
	uint32_t connect_timeout_ms;
	/* Total time a logical call may spend retrying after connection
	 * errors, UNAVAILABLE, NOT_LEADER and TIMEOUT. 0: 10000. */
	uint32_t retry_budget_ms;
	/* Backoff between retries doubles from 10 ms up to this. 0: 500. */
	uint32_t backoff_max_ms;
	/* Largest frame accepted. 0: 4 MiB. */
	uint32_t max_frame;
};

/*
 * Mutual TLS 1.3 (docs/SECURITY.md): PEM files of this side's certificate
 * and key, the CA every peer's certificate must chain to, and optionally
 * a CRL (NULL: none). Given to settle_async_set_tls() and
 * settle_participant_set_tls(); the files are read then.
 */
struct settle_tls {
	const char *cert;
	const char *key;
	const char *ca;
	const char *crl;
};

/*
 * Open a handle on a coordinator cluster. endpoints is a comma-separated
 * list "host:port,host:port" (IPv6 as [addr]:port), copied. opts may be
 * NULL for the defaults; it is copied. No connection is made yet: the
 * first call connects, trying endpoints in order and following the leader
 * hints the nodes give.
 *
 * Returns 0 and *out (close with settle_client_close()), SETTLE_EINVAL for
 * an empty or malformed endpoint list, SETTLE_ENOMEM.
 */
int settle_client_open(const char *endpoints,
		       const struct settle_client_opts *opts,
		       settle_client **out);

/* Close the connection and free the handle. NULL is a no-op. */
void settle_client_close(settle_client *c);

/*
 * Talk to the cluster, and to the endpoints of settle_client_call_at(),
 * over mutual TLS (struct settle_tls) from the next connection on. 0, or
 * SETTLE_EINVAL (a file that cannot be read, a key that does not match;
 * settle_client_errmsg() names it). A refused handshake fails calls with
 * SETTLE_ETLS.
 */
int settle_client_set_tls(settle_client *c, const struct settle_tls *tls);

/*
 * Text of the last error on this handle ("" after a success), e.g.
 * "commit: WRONG_STATE: transaction is ROLLED_BACK". Valid until the next
 * call on the handle. Never NULL; c may be NULL (gives "").
 */
const char *settle_client_errmsg(const settle_client *c);

/* Endpoint the handle currently talks to (the last known leader), or ""
 * before the first call. Valid until the next call on the handle. */
const char *settle_client_endpoint(const settle_client *c);

/* Fill out with a fresh cmd_id for one logical mutating request: the
 * time in unix ms (6 bytes, big-endian), a count within that ms (2 bytes,
 * so the ids of one process are strictly increasing), then 8 random bytes
 * (getrandom()): ids of one cluster grow with time and the coordinator's
 * table of them is written at its end. Thread-safe. SETTLE_EIO if the
 * kernel gives no entropy. */
int settle_cmd_id(uint8_t out[16]);

/* ---- Initiator API ------------------------------------------------------ */
/*
 * Each mutating call draws one cmd_id and reuses it on every retry, so a
 * retry after a lost reply or a leader change is applied at most once (the
 * coordinator answers a repeated cmd_id with the first answer).
 */

/*
 * Begin a TCC global transaction.
 *   gid         the gid to use (copied; at most SETTLE_GID_MAX bytes), or
 *               NULL/"" to let the coordinator choose one.
 *   timeout_ms  the transaction rolls back if not committed by then;
 *               0: the coordinator's default.
 *   gid_out     receives the gid (NUL-terminated); may be NULL.
 *   gid_out_len its size; SETTLE_GID_BUFSIZE always suffices.
 * Errors: SETTLE_EEXISTS (gid taken), SETTLE_EINVAL, SETTLE_ETOOBIG
 * (gid_out too small; the transaction was begun all the same), and the
 * transport errors of settle_client_call().
 */
int settle_begin(settle_client *c, const char *gid, uint32_t timeout_ms,
		 char *gid_out, size_t gid_out_len);

/* Most branches one transaction may have (declared and registered). */
#define SETTLE_MAX_BRANCHES 1000

/* A TCC branch declared at begin: what settle_register_branch() takes.
 * Nothing is kept after the call returns. */
struct settle_branch_decl {
	const char *endpoint; /* the participant, "host:port"; required */
	const char *resource; /* may be NULL ("") */
	const void *payload;  /* handed to Confirm/Cancel; never logged; */
	size_t len;	      /* NULL only with a len of 0 */
};

/*
 * Begin a TCC global transaction with its branches registered in the same
 * request: one raft command instead of 1 + n, so the transaction costs
 * the cluster n fewer commits. Branch decls[i] gets the id ids_out[i]
 * (1..n in order; ids_out may be NULL, else it holds n). Either the
 * transaction and all n branches exist or nothing was created; one
 * cmd_id covers the whole request, so a retry cannot register a branch
 * twice. A coordinator that begins without them (older than this call,
 * or a cluster not yet at feature level 2: docs/PROTOCOL.md) answers
 * with no branch ids; this call then registers them one by one itself,
 * as settle_register_branch() would, with the same ids.
 * settle_register_branch() may add more branches later (ids go on from n + 1).
 * gid, timeout_ms, gid_out as for settle_begin(); n == 0 is settle_begin().
 * Checked locally first (SETTLE_EINVAL, nothing sent): n over
 * SETTLE_MAX_BRANCHES, a missing endpoint, a NULL payload with a length.
 * Errors: those of settle_begin(); SETTLE_ETOOBIG (a resource or payload
 * over its limit, or all of them over one log entry: 1 MiB + 64 KiB);
 * those of settle_register_branch() when registering them one by one
 * failed (the transaction gid_out exists with the branches registered
 * before the failure: roll it back); SETTLE_EPROTO when the answer holds
 * another number of branch ids than declared.
 */
int settle_begin_branches(settle_client *c, const char *gid,
			  uint32_t timeout_ms,
			  const struct settle_branch_decl *decls, size_t n,
			  char *gid_out, size_t gid_out_len, uint32_t *ids_out);

/*
 * Register a branch of gid. endpoint is the participant's RPC server
 * ("host:port"), resource names what the branch touches in it; payload
 * (len bytes, may be NULL when len is 0) is handed to Confirm/Cancel
 * unchanged and is never logged. All copied. *branch_id receives the id
 * the coordinator gave the branch (may be NULL).
 * Errors: SETTLE_ENOTFOUND, SETTLE_ESTATE (not ACTIVE), SETTLE_EINVAL,
 * SETTLE_ETOOBIG, transport errors.
 */
int settle_register_branch(settle_client *c, const char *gid,
			   const char *endpoint, const char *resource,
			   const void *payload, size_t len,
			   uint32_t *branch_id);

/*
 * Commit gid. wait_ms > 0: the coordinator answers once phase two has
 * finished or after wait_ms, whichever is first; 0: it answers once the
 * decision is durable. *state receives the Settle__V1__TxState at reply
 * time and *finished whether phase two is complete (either may be NULL).
 * Committing an already COMMITTING/COMMITTED transaction succeeds.
 * Errors: SETTLE_ENOTFOUND, SETTLE_ESTATE (it is rolling back or rolled
 * back), transport errors.
 */
int settle_commit(settle_client *c, const char *gid, uint32_t wait_ms,
		  int *state, bool *finished);

/*
 * Roll gid back; reason (may be NULL) is recorded in its history.
 * wait_ms, state and finished as for settle_commit().
 * Errors: SETTLE_ENOTFOUND, SETTLE_ESTATE (already committing/committed),
 * transport errors.
 */
int settle_rollback(settle_client *c, const char *gid, const char *reason,
		    uint32_t wait_ms, int *state, bool *finished);

/*
 * Read gid's state, branches and, when history is true, its event history.
 * *out receives the decoded TxInfo, owned by the caller: free it with
 * settle_tx_info_free(). Errors: SETTLE_ENOTFOUND, transport errors.
 */
int settle_query(settle_client *c, const char *gid, bool history,
		 Settle__V1__TxInfo **out);

void settle_tx_info_free(Settle__V1__TxInfo *tx);

/* ---- Sagas --------------------------------------------------------------- */

/* What a saga does when an action fails for good (SagaRecovery). */
#define SETTLE_SAGA_BACKWARD SETTLE__V1__SAGA_RECOVERY__BACKWARD
#define SETTLE_SAGA_FORWARD  SETTLE__V1__SAGA_RECOVERY__FORWARD

/* Most steps in one saga, longest step name (as the coordinator). */
#define SETTLE_SAGA_MAX_STEPS 1000
#define SETTLE_SAGA_NAME_MAX  256

/*
 * One step of a saga. Step i (0-based here) is branch i + 1 everywhere
 * else (Query, settlectl, events). Nothing is kept after the call returns.
 */
struct settle_saga_step {
	/* For people (Query, settlectl); NULL or at most
	 * SETTLE_SAGA_NAME_MAX bytes. */
	const char *name;
	/* The participant's RPC server, "host:port"; required. */
	const char *endpoint;
	/* Handed to the participant's Action, and to its Compensate; opaque
	 * and never logged. NULL only with a length of 0. */
	const void *action;
	size_t action_len;
	const void *compensate;
	size_t compensate_len;
	/* dag sagas only: 0-based indexes of EARLIER steps that must be done
	 * first (none: a root, started at once). NULL only with 0. */
	const uint32_t *depends_on;
	size_t n_depends_on;
	/* BACKWARD sagas: action calls before giving up (0: 5). */
	uint32_t max_attempts;
	/* The coordinator's backoff between calls: base and cap (0: its
	 * defaults; base must not exceed cap). */
	uint32_t retry_base_ms;
	uint32_t retry_max_ms;
	/* Deadline of one participant call (0: the coordinator's). */
	uint32_t call_timeout_ms;
};

struct settle_saga_opts {
	/* A BACKWARD saga still running then is compensated (FORWARD sagas
	 * have no deadline to enforce); 0: the coordinator's default. */
	uint32_t timeout_ms;
	/* SETTLE_SAGA_BACKWARD (compensate what may have taken effect) or
	 * SETTLE_SAGA_FORWARD (retry failed actions until they succeed). */
	int recovery;
	/* false: ordered, step i starts once step i - 1 is done (depends_on
	 * must be empty); true: each step's depends_on gives the order, and
	 * independent steps run concurrently. */
	bool dag;
};

/*
 * Submit a whole saga in one call; the coordinator runs it from then on
 * (follow it with settle_wait() or settle_query(); settle_rollback() on a
 * running saga compensates it). One cmd_id is drawn and reused on every
 * retry, so the saga is started at most once.
 *   gid         as for settle_begin(): copied, NULL/"" lets the
 *               coordinator choose.
 *   opts        may be NULL: ordered, BACKWARD, default timeout.
 *   steps, n    1..SETTLE_SAGA_MAX_STEPS steps; read during the call only.
 *   gid_out     receives the gid (NUL-terminated); may be NULL.
 * Checked locally first (SETTLE_EINVAL, nothing sent, the reason in
 * settle_client_errmsg()): gid length, n, a missing endpoint, a NULL
 * payload or depends_on with a length, depends_on in an ordered saga or
 * naming a step that is not earlier or twice, a retry base over its cap,
 * an unknown recovery, a name too long. The coordinator validates again.
 * Errors: SETTLE_EEXISTS (gid taken by another submit), SETTLE_EINVAL,
 * SETTLE_ETOOBIG (payloads over the limit, or gid_out too small: then the
 * saga was submitted all the same), SETTLE_ENOMEM, transport errors.
 */
int settle_submit_saga(settle_client *c, const char *gid,
		       const struct settle_saga_opts *opts,
		       const struct settle_saga_step *steps, size_t n,
		       char *gid_out, size_t gid_out_len);

/*
 * Wait until gid is final (COMMITTED, ROLLED_BACK, SAGA_SUCCEEDED or
 * SAGA_COMPENSATED), never past wait_ms (0: look once). Each Query asks
 * the leader to hold its answer until then (QueryRequest.wait_ms, in
 * slices of at most 10 s), so the outcome is seen as soon as it is
 * applied; a server that answers at once is polled instead: after 5 ms,
 * the pause doubling up to 250 ms. *state
 * receives the last state seen and *finished whether it is final (either
 * may be NULL).
 *
 * A transaction with a FAILED branch waits for an operator and would
 * never become final on its own: settle_wait() then returns
 * SETTLE_ESTATE at once, *finished false, and settle_client_errmsg() names
 * the branch and its error, e.g. "wait: g1 is stuck: branch 2 (credit)
 * FAILED: injected failure; waiting for an operator (settlectl tx show
 * g1)". Call again after the operator acted (settle_tx_retry(),
 * settle_tx_resolve()).
 * Errors: SETTLE_ETIMEOUT (not final after wait_ms), SETTLE_ESTATE
 * (stuck), SETTLE_ENOTFOUND, SETTLE_EINVAL, transport errors of Query.
 */
int settle_wait(settle_client *c, const char *gid, uint32_t wait_ms, int *state,
		bool *finished);

/* ---- Operator verbs ----------------------------------------------------- */

/* Longest operator reason accepted by TX_RETRY and TX_RESOLVE. */
#define SETTLE_REASON_MAX 1024

/*
 * Retry gid's FAILED branch branch_id (0: every FAILED branch), or make a
 * branch still being retried due now (docs/OPERATIONS.md). reason (may be
 * NULL, at most 1024 bytes, copied) is recorded in the history. *retried
 * receives how many branches were made due and *state the transaction's
 * state (either may be NULL). Errors: SETTLE_ENOTFOUND, SETTLE_ESTATE
 * (nothing to retry), SETTLE_EINVAL, SETTLE_ENOMETHOD (a coordinator
 * without operator verbs), transport errors.
 */
int settle_tx_retry(settle_client *c, const char *gid, uint32_t branch_id,
		    const char *reason, uint32_t *retried, int *state);

/*
 * Declare that the FAILED branch branch_id (>= 1) of gid had its phase done
 * by hand: it becomes CONFIRMED, CANCELLED or STEP_COMPENSATED and the
 * transaction goes on. reason (who decided and why) is required, at most
 * 1024 bytes, copied. *branch_state receives the branch's new state and
 * *state the transaction's (either may be NULL). Errors: SETTLE_ENOTFOUND,
 * SETTLE_ESTATE (that branch is not FAILED), SETTLE_EINVAL,
 * SETTLE_ENOMETHOD, transport errors.
 */
int settle_tx_resolve(settle_client *c, const char *gid, uint32_t branch_id,
		      const char *reason, int *branch_state, int *state);

/* True for the states a transaction ends in (COMMITTED, ROLLED_BACK,
 * SAGA_SUCCEEDED, SAGA_COMPENSATED). */
bool settle_tx_state_final(int state);

/* "ACTIVE", "COMMITTED", "SAGA_COMPENSATED", ... for a Settle__V1__TxState;
 * "UNKNOWN" else. */
const char *settle_tx_state_name(int state);
/* "REGISTERED", "CONFIRMED", "STEP_DONE", ... for a
 * Settle__V1__BranchState; "UNKNOWN" else. */
const char *settle_branch_state_name(int state);

/* ---- XA (docs/XA.md) ----------------------------------------------------- */
/*
 * Two uses. As the transaction manager of XA resource managers (PostgreSQL,
 * MariaDB): settle_xa_begin() without an xid, settle_xa_register_rm() per
 * branch, the initiator's own work at each RM under the branch's XID,
 * prepare there and settle_xa_vote(), then settle_xa_commit() with
 * one_phase (the votes are the prepare; the commit decision is made durable
 * and the leader commits every prepared branch itself, and recovers them
 * after any crash). As a resource manager of a legacy TM (the switch
 * library): settle_xa_begin() with the TM's xid, TCC branches, then
 * settle_xa_prepare() and settle_xa_commit() / settle_rollback().
 * XIDs travel in their wire encoding (xa/xid.h): 4-byte big-endian
 * formatID, gtrid length, bqual length, gtrid, bqual; at most
 * SETTLE_XID_WIRE_MAX bytes.
 */
#define SETTLE_XID_WIRE_MAX 134

/*
 * Begin an XA transaction. xid (xid_len bytes, wire) NULL: a transaction of
 * Settle's own, gid as for settle_begin() but at most 64 bytes (it is the
 * gtrid of its RM branches). xid given: gid must be NULL or ""; the gid is
 * derived from the xid (xa_xid_gid(): "xa-" and 40 hex digits); join true
 * joins the ACTIVE transaction of that xid (TMJOIN / TMRESUME from another
 * process) instead of creating one, and *joined (may be NULL) says it
 * existed. timeout_ms as for settle_begin() (ignored by a join). gid_out
 * (gid_out_len bytes, SETTLE_GID_BUFSIZE suffices; may be NULL) receives
 * the gid. Everything is copied; one cmd_id is reused on every retry.
 * Checked locally first (SETTLE_EINVAL, nothing sent): a gid with an xid,
 * an xid that does not decode, a NULL xid with a length, join without an
 * xid, a gid over 64 bytes.
 * Errors: SETTLE_EEXISTS (xid or gid taken, !join), SETTLE_ENOTFOUND
 * (join, no such transaction), SETTLE_ESTATE (join, not ACTIVE),
 * SETTLE_EINVAL, SETTLE_ETOOBIG (gid_out too small: begun all the same),
 * transport errors.
 */
int settle_xa_begin(settle_client *c, const char *gid, const uint8_t *xid,
		    size_t xid_len, bool join, uint32_t timeout_ms,
		    char *gid_out, size_t gid_out_len, bool *joined);

/* An RM branch declared by settle_xa_begin_rms(). */
struct settle_xa_rm_branch {
	const char *rm;	    /* in: the RM's name (settled --xa-rm) */
	uint32_t branch_id; /* out */
	uint8_t xid[SETTLE_XID_WIRE_MAX]; /* out: its XID, wire encoding */
	size_t xid_len;			  /* out */
};

/*
 * Begin an XA transaction of Settle's own (gid as settle_xa_begin() takes
 * it without an xid) with n RM branches (1..SETTLE_XA_VOTES_MAX) in one
 * command: each br[i].rm gets its branch id (1..n) and XID, as
 * settle_xa_register_rm() would answer. On a cluster below feature level
 * 6 it begins, then registers each branch (n + 1 round trips, same
 * outcome). Errors as settle_xa_begin() and settle_xa_register_rm(),
 * SETTLE_EPROTO (an answer without every id and XID).
 */
int settle_xa_begin_rms(settle_client *c, const char *gid, uint32_t timeout_ms,
			struct settle_xa_rm_branch *br, size_t n, char *gid_out,
			size_t gid_out_len);

/*
 * Register a branch of XA transaction gid on the resource manager named rm
 * (1-64 bytes of [A-Za-z0-9_.-], configured on the coordinators: settled
 * --xa-rm). *branch_id gets its id (may be NULL); xid_out (cap xid_cap,
 * SETTLE_XID_WIRE_MAX suffices; may be NULL) gets its XID, wire encoding,
 * and *xid_len (may be NULL) its size: start the branch's work at the RM
 * under exactly that XID. Errors: SETTLE_ENOTFOUND (gid, or rm not
 * configured), SETTLE_ESTATE (not ACTIVE, or not an XA transaction),
 * SETTLE_EINVAL, SETTLE_ETOOBIG (xid_cap too small: *xid_len tells the
 * size, the branch was registered all the same), SETTLE_EPROTO (the
 * answer carried no XID), transport errors.
 */
int settle_xa_register_rm(settle_client *c, const char *gid, const char *rm,
			  uint32_t *branch_id, uint8_t *xid_out, size_t xid_cap,
			  size_t *xid_len);

/*
 * Report what the RM answered for branch_id: vote is a Settle__V1__XaVote
 * (VOTE_OK, VOTE_READ_ONLY, VOTE_ROLLBACK after prepare; ONE_PHASE_* after
 * a one-phase commit; PHASE2_COMMITTED / PHASE2_NOT_DONE for a branch
 * left to the initiator by settle_xa_commit_by_initiator(), where
 * branch_id 0 means all of them). error (may be NULL, at most 1024 bytes,
 * copied) is the RM's text, never SQL data. *state and *branch_state (may
 * be NULL) receive the states after. The same vote again answers OK.
 * Errors: SETTLE_ENOTFOUND, SETTLE_ESTATE (e.g. the transaction already
 * rolled back: its deadline passed; another vote), SETTLE_EINVAL (branch
 * 0 with another vote, a vote out of range, error too long: nothing
 * sent), SETTLE_ENOMETHOD (PHASE2_* on a cluster below feature level 6),
 * transport errors.
 */
int settle_xa_vote(settle_client *c, const char *gid, uint32_t branch_id,
		   int vote, const char *error, int *state, int *branch_state);

/*
 * The initiator's report that it committed every branch
 * settle_xa_commit_by_initiator() left to it (settle_xa_vote() with branch
 * 0 and PHASE2_COMMITTED), sent without waiting for its answer: the
 * transaction is decided already, and a report that never arrives only
 * leaves the leader to commit the branches itself once the initiator's
 * time is up (their RMs then answer that the XIDs are gone, and that is
 * taken as committed). Saves the initiator a round trip of the cluster.
 * It goes to the node that answered the handle's last call (the leader,
 * after settle_xa_commit_by_initiator()), on that call's connection; with
 * no such connection still open, or if sending fails, the report is made
 * as settle_xa_vote() makes it, waiting for the answer. The answer of a
 * report not waited for is skipped by the handle's next call, so use it
 * on a handle that goes on calling. Errors: SETTLE_EINVAL (nothing sent);
 * those of settle_xa_vote() when it waited.
 */
int settle_xa_report_committed(settle_client *c, const char *gid);

/*
 * XA_PREPARE: make gid's prepared state durable. *state gets the state
 * after (XA_PREPARED; COMMITTED with *read_only true when nothing is left
 * for phase 2; ROLLING_BACK/ROLLED_BACK when a branch voted rollback or the
 * deadline passed). Errors: SETTLE_ENOTFOUND, SETTLE_ESTATE (a branch has
 * not voted, or already decided), transport errors.
 */
int settle_xa_prepare(settle_client *c, const char *gid, int *state,
		      bool *read_only);

/*
 * Commit an XA transaction: from XA_PREPARED, or from ACTIVE with
 * one_phase. wait_ms, state and finished as for settle_commit(). A lone
 * unvoted RM branch with one_phase: the answer's state is COMMITTING and
 * that branch XA_BRANCH_ONE_PHASE: commit it at the RM in one phase and
 * report the outcome with settle_xa_vote(ONE_PHASE_*).
 * Errors as settle_commit(), and SETTLE_ESTATE when a branch has not voted.
 */
int settle_xa_commit(settle_client *c, const char *gid, bool one_phase,
		     uint32_t wait_ms, int *state, bool *finished);

/*
 * Phase 2 by the initiator (cluster feature level 6): commit XA transaction
 * gid, XA_PREPARED or ACTIVE with every RM branch voted (as one_phase),
 * leaving its prepared RM branches to the caller for phase2_ms (1..
 * SETTLE_XA_PHASE2_MAX_MS). Answered once the decision is durable:
 * *state (may be NULL) COMMITTING. The caller then commits each branch at
 * its RM on the session that prepared it (no second session, so no wait
 * for the first to end: docs/XA.md) and reports with settle_xa_vote(gid,
 * 0, PHASE2_COMMITTED) for all of them, or per branch; PHASE2_NOT_DONE
 * (or silence for phase2_ms) hands a branch back to the leader, which
 * commits it from its own session. A decision made already answers its
 * state; check it is COMMITTING before committing anything.
 * Errors as settle_commit(), SETTLE_ESTATE (a branch has not voted), and
 * SETTLE_ENOMETHOD (a member runs an older release: commit with
 * settle_xa_commit() instead).
 */
#define SETTLE_XA_PHASE2_MAX_MS 60000
/* The most RM branches one call of the two below takes. */
#define SETTLE_XA_VOTES_MAX 64

/* A branch's vote carried by settle_xa_commit_by_initiator(). */
struct settle_xa_branch_vote {
	uint32_t branch_id;
	int vote;	   /* VOTE_OK, VOTE_READ_ONLY or VOTE_ROLLBACK */
	const char *error; /* the RM's text (ROLLBACK), may be NULL, copied */
};

/*
 * As above, with the votes of branches not voted yet (n_votes, at most
 * SETTLE_XA_VOTES_MAX; votes may be NULL when 0): recorded with the
 * decision in one command, as settle_xa_vote() would record each. A
 * rollback vote rolls the transaction back instead: 0 with *state
 * ROLLING_BACK. One vote refused (WRONG_STATE, NOT_FOUND) refuses all and
 * decides nothing.
 */
int settle_xa_commit_by_initiator(settle_client *c, const char *gid,
				  const struct settle_xa_branch_vote *votes,
				  size_t n_votes, uint32_t phase2_ms,
				  int *state);

/*
 * A TM's decision on XA transaction gid that also tells the remembered
 * heuristic: commit true is settle_xa_commit() (one_phase, reason
 * ignored), false is settle_rollback() with reason (may be NULL, copied).
 * wait_ms, state and finished as for settle_commit(). *heuristic (may be
 * NULL) gets the transaction's Settle__V1__Heuristic at reply time:
 * HEUR_COMMIT / HEUR_ROLLBACK after an operator's heuristic decision
 * (settle_xa_heuristic()), or a branch that ended otherwise; NONE from a
 * coordinator that predates the field. Deciding the way a heuristic
 * decision went answers 0; the opposite way SETTLE_ESTATE (query the
 * transaction for its heuristic). Errors as settle_commit().
 */
int settle_xa_decide(settle_client *c, const char *gid, bool commit,
		     bool one_phase, const char *reason, uint32_t wait_ms,
		     int *state, bool *finished, int *heuristic);

/*
 * XA_HEURISTIC (an operator): decide XA_PREPARED transaction gid
 * heuristically because its transaction manager is gone for good. commit
 * true: committed as by the commit decision, remembered as HEUR_COMMIT;
 * false: rolled back, HEUR_ROLLBACK. reason (required, 1..1024 bytes,
 * copied) says who decided and why; it goes into the history. The TM's
 * later xa_commit / xa_rollback is answered XA_HEURCOM / XA_HEURRB, and
 * XA_RECOVER lists the transaction once final, until XA_FORGET. *state
 * and *heuristic (may be NULL) get the state after (COMMITTING /
 * COMMITTED, ROLLING_BACK / ROLLED_BACK) and the remembered heuristic.
 * The same decision again answers 0. Errors: SETTLE_ENOTFOUND,
 * SETTLE_ESTATE (not XA_PREPARED, or not an XA transaction), SETTLE_EINVAL
 * (reason missing or gid malformed: nothing sent), SETTLE_ETOOBIG (reason
 * over 1024 bytes: nothing sent), transport errors.
 */
int settle_xa_heuristic(settle_client *c, const char *gid, bool commit,
			const char *reason, int *state, int *heuristic);

/* One entry of settle_xa_recover(). */
struct settle_xa_recovered {
	char gid[SETTLE_GID_BUFSIZE];
	uint8_t xid[SETTLE_XID_WIRE_MAX];
	size_t xid_len;
	int state;     /* XA_PREPARED, or final with a heuristic */
	int heuristic; /* Settle__V1__Heuristic */
};

/*
 * XA_RECOVER: up to cap transactions begun with an xid that are
 * XA_PREPARED or final with a remembered heuristic, in gid order after
 * after_gid (NULL or "": from the start), into out (cap entries, filled
 * from the first). *n gets the count, *more (may be NULL) whether more
 * follow: page on with after_gid = out[*n - 1].gid. A read, retried like
 * Query. Errors: SETTLE_EINVAL (out or n NULL, cap 0), SETTLE_EPROTO (an
 * entry that does not fit), transport errors.
 */
int settle_xa_recover(settle_client *c, const char *after_gid,
		      struct settle_xa_recovered *out, size_t cap, size_t *n,
		      bool *more);

/* XA_FORGET: clear gid's remembered heuristic. Errors: SETTLE_ENOTFOUND,
 * SETTLE_ESTATE (none to forget), transport errors. */
int settle_xa_forget(settle_client *c, const char *gid);

/* "VOTE_OK", ... / "HEUR_HAZARD", ...; "UNKNOWN" else. */
const char *settle_xa_vote_name(int vote);
const char *settle_heuristic_name(int heuristic);

/* ---- Generic calls ------------------------------------------------------ */

/*
 * Call any method of settle.v1 on the cluster, with leader discovery and
 * retries. method is a Settle__V1__Method value; req is the request
 * message (NULL: empty body). For a mutating request, put a cmd_id from
 * settle_cmd_id() in req: it is sent unchanged on every retry.
 * resp_desc is the descriptor of the expected response type (e.g.
 * &settle__v1__status_response__descriptor); *resp receives the decoded
 * response, owned by the caller: free it with
 * protobuf_c_message_free_unpacked(*resp, NULL). resp_desc and resp may be
 * NULL to discard the body.
 *
 * Retried (same request bytes, capped backoff, within retry_budget_ms):
 * connection errors, SETTLE_EUNAVAIL, SETTLE_ENOTLEADER (following the
 * leader hint when there is one) and SETTLE_ETIMEOUT.
 * Errors: the server's code (SETTLE_ENOTFOUND, SETTLE_ESTATE, ...), or the
 * last transient one when the budget ran out (SETTLE_ECONNECT,
 * SETTLE_ECLOSED, SETTLE_EUNAVAIL, SETTLE_ETIMEOUT, SETTLE_ENOTLEADER),
 * SETTLE_EPROTO for an undecodable response, SETTLE_ENOMEM, SETTLE_EINVAL.
 */
int settle_client_call(settle_client *c, int method,
		       const ProtobufCMessage *req,
		       const ProtobufCMessageDescriptor *resp_desc,
		       ProtobufCMessage **resp);

/*
 * Like settle_client_call(), but once, to the given endpoint only, with no
 * leader following and no retry: for asking one node (Status on each
 * member) or calling a participant (TRY). endpoint is copied; the handle's
 * leader connection is left alone. The connection is kept for the next
 * call to the same endpoint (up to 8 endpoints a handle; closed by
 * settle_client_close()); one the peer closed meanwhile is reopened
 * before the call is sent, and a call that found it closed as it went out
 * is sent once more on a new connection (Settle's methods are safe to
 * repeat). Same errors.
 */
int settle_client_call_at(settle_client *c, const char *endpoint, int method,
			  const ProtobufCMessage *req,
			  const ProtobufCMessageDescriptor *resp_desc,
			  ProtobufCMessage **resp);

#ifdef __cplusplus
}
#endif

#endif /* SETTLE_H */

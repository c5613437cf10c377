/*
 * settle_async.h — libsettle's asynchronous initiator client: many
 * transactions in flight on one connection to the cluster, on the
 * application's libuv loop, each call answered by a callback.
 *
 * The blocking client (settle.h) runs one request at a time per handle, so
 * an initiator with many transactions in flight needs as many threads and
 * connections. Here every call is written to the leader's connection at the
 * end of the loop iteration with the others made in it, and answers come
 * back in any order, matched by frame id (docs/PROTOCOL.md). Behaviour is
 * the blocking client's: the same leader discovery (endpoints in order,
 * NOT_LEADER hints followed), the same retries with backoff and jitter
 * after connection errors, UNAVAILABLE, NOT_LEADER and TIMEOUT, within the
 * same settle_client_opts budgets, and one cmd_id per logical call reused
 * on every retry, so a retried Begin or Commit is applied at most once.
 *
 * Threads: a handle belongs to its loop; call it from the loop's thread
 * only. Callbacks run on that thread, never from inside the call that
 * started the operation.
 *
 * Calls return 0 when the operation is under way (its callback then fires
 * exactly once), or a negative SETTLE_E* code and no callback:
 * SETTLE_EINVAL (a bad argument; settle_async_errmsg() says which),
 * SETTLE_ENOMEM, SETTLE_ECANCELED (the handle is closing).
 */
#ifndef SETTLE_ASYNC_H
#define SETTLE_ASYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "settle.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct settle_async settle_async;

/* What an operation ended with. Pointers are valid only during the
 * callback. */
struct settle_async_result {
	int err;	    /* 0 or a negative SETTLE_E* code */
	const char *errmsg; /* why, in one line; "" when err is 0 */
	/* begin, submit saga: the transaction's gid (also when err is
	 * SETTLE_EPROTO after a begin: roll it back); commit, rollback,
	 * wait: the gid asked about. */
	const char *gid;
	/* begin: the ids of the declared branches, in order. */
	const uint32_t *branch_ids;
	size_t n_branch_ids;
	/* commit, rollback, wait: the transaction's state, and whether it
	 * is final (phase two done). */
	int state;
	bool finished;
	int heuristic; /* commit, rollback: DecisionResponse.heuristic */
	/* settle_async_call(), settle_async_call_at(): the response body
	 * (decode it with the method's response type). */
	const uint8_t *body;
	size_t len;
};

typedef void (*settle_async_cb)(void *data,
				const struct settle_async_result *r);

/*
 * A handle on a cluster (endpoints and opts as settle_client_open(); both
 * copied) on loop. Nothing connects until the first call. Returns 0 and
 * *out, SETTLE_EINVAL, SETTLE_ENOMEM.
 */
int settle_async_open(uv_loop_t *loop, const char *endpoints,
		      const struct settle_client_opts *opts,
		      settle_async **out);

/*
 * Fail every operation still under way with SETTLE_ECANCELED (their
 * callbacks run before this returns; calls made from them are refused) and
 * close the handle; its memory goes once the loop has run its handles'
 * close callbacks. NULL is a no-op.
 */
void settle_async_close(settle_async *a);

/*
 * Talk to the cluster over mutual TLS (struct settle_tls, settle.h) from
 * now on; before the first operation. 0, or SETTLE_EINVAL (a file that
 * cannot be read, a key that does not match; settle_async_errmsg() names
 * it). A node that refuses the certificate, or whose own the CA did not
 * sign or that does not name its address, fails operations with
 * SETTLE_ETLS.
 */
int settle_async_set_tls(settle_async *a, const struct settle_tls *tls);

/* Why the last call on the handle was refused ("" if it was not). */
const char *settle_async_errmsg(const settle_async *a);

/* Operations under way (begun, callback not yet run). */
size_t settle_async_pending(const settle_async *a);

/* settle_begin_branches(): gid may be NULL/"" (the coordinator picks
 * one), n may be 0. A coordinator that begins without the branches (older,
 * or a cluster not yet at feature level 2) gets them registered one by one
 * before the callback, with the same ids; if that fails, the result's gid
 * names the transaction to roll back. */
int settle_async_begin(settle_async *a, const char *gid, uint32_t timeout_ms,
		       const struct settle_branch_decl *decls, size_t n,
		       settle_async_cb cb, void *data);

/* settle_commit() and settle_rollback() (reason may be NULL): the result's
 * state and finished after waiting up to wait_ms for phase two. */
int settle_async_commit(settle_async *a, const char *gid, uint32_t wait_ms,
			settle_async_cb cb, void *data);
int settle_async_rollback(settle_async *a, const char *gid, const char *reason,
			  uint32_t wait_ms, settle_async_cb cb, void *data);

/* settle_submit_saga(): the same checks (SETTLE_EINVAL before anything is
 * sent); the result's gid names the saga. */
int settle_async_submit_saga(settle_async *a, const char *gid,
			     const struct settle_saga_opts *opts,
			     const struct settle_saga_step *steps, size_t n,
			     settle_async_cb cb, void *data);

/* settle_wait(): the result comes when gid is final (finished true), when
 * it is stuck (SETTLE_ESTATE, errmsg names the FAILED branch) or after
 * wait_ms (SETTLE_ETIMEOUT). */
int settle_async_wait(settle_async *a, const char *gid, uint32_t wait_ms,
		      settle_async_cb cb, void *data);

/* settle_client_call(): any method to the leader, retried as above (a
 * mutating request must carry its own cmd_id). req is packed at once. */
int settle_async_call(settle_async *a, int method, const ProtobufCMessage *req,
		      settle_async_cb cb, void *data);

/*
 * settle_client_call_at(): one call to endpoint (a participant, for an
 * initiator's TRY), sent once more only if the connection closed with it
 * on it (the barrier makes every participant method safe to repeat). The
 * handle keeps a connection to each endpoint it calls (the least recently
 * used goes past 64), on which calls are pipelined too.
 */
int settle_async_call_at(settle_async *a, const char *endpoint, int method,
			 const ProtobufCMessage *req, settle_async_cb cb,
			 void *data);

#ifdef __cplusplus
}
#endif

#endif /* SETTLE_ASYNC_H */

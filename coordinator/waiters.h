/*
 * waiters.h — the answer stage (waiters.c): calls answered from the store,
 * at once or once their transaction moves. The apply stage tells it what
 * changed (coord_waiters_notify); dispatch and the reads hand it the calls
 * that wait. It answers and calls nothing further up the node.
 */
#ifndef SETTLE_COORD_WAITERS_H
#define SETTLE_COORD_WAITERS_H

#include <stdbool.h>
#include <stdint.h>

#include "settle.pb-c.h"

struct coord;
struct coord_waiter;
struct rpc_call;

/* Longest wait a call may ask the leader for (Commit/Rollback wait_ms,
 * Query wait_ms). */
#define COORD_WAIT_MAX_MS 60000

/* Answer call with an error; NOT_LEADER carries the leader's endpoint (or
 * becomes UNAVAILABLE when no leader is known). msg may be NULL. */
void coord_fail(struct coord *c, struct rpc_call *call, int err,
		const char *msg);

/* Whether tx waits for an operator (STATUS, LIST --stuck, TxInfo.stuck):
 * a branch FAILED, nothing will move it, or it is older than
 * --stuck-after. now is wall ms. */
bool coord_tx_stuck(const struct coord *c, const Settle__V1__TxRecord *tx,
		    uint64_t now);

/* Answer a QUERY of gid now, from this node's store (brief:
 * QueryRequest.brief). */
void coord_query_answer(struct coord *c, struct rpc_call *call, const char *gid,
			bool history, bool brief);
/* Answer a Commit/Rollback with gid's state as stored now. */
void coord_answer_decision(struct coord *c, struct rpc_call *call,
			   const char *gid);

/* Hold call until gid is final (a Commit/Rollback's wait) or wait_ms pass;
 * NULL when out of memory (nothing held). */
struct coord_waiter *coord_waiter_add(struct coord *c, struct rpc_call *call,
				      const char *gid, uint32_t wait_ms);
/* w's proposal lost leadership: it is answered NOT_LEADER with the new
 * leader once one is known (coord_waiters_redirect()). */
void coord_waiter_set_lost(struct coord *c, struct coord_waiter *w);
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

#endif /* SETTLE_COORD_WAITERS_H */

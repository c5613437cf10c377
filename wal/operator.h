/*
 * operator.h — an operator's verbs through the log: CmdRetry (TX_RETRY)
 * and CmdResolve (TX_RESOLVE), which unstick a transaction whose Confirm,
 * Cancel or Compensate answered FAILURE (its branch FAILED, tx.failed > 0,
 * tx.due_ms 0: the driver leaves it alone).
 *
 * retry{gid, branch_id, reason}:
 *   - a FAILED branch goes back to the call of its phase: TCC COMMITTING
 *     -> CONFIRMING, ROLLING_BACK -> CANCELLING, a saga's step ->
 *     STEP_COMPENSATING; attempts 0, next_retry_ms = time_ms (due now),
 *     tx.failed--, tx.pending++; last_error is kept until a call answers;
 *   - a branch still being retried (CONFIRMING, CANCELLING, STEP_ACTING,
 *     STEP_COMPENSATING) gets next_retry_ms = min(next_retry_ms, time_ms):
 *     its backoff is skipped;
 *   - branch_id 0 does this to every such branch of gid; a branch_id
 *     names one, and any other state of it is WRONG_STATE.
 *   CmdResult.count: branches made due (WRONG_STATE when none).
 * resolve{gid, branch_id, reason}: the operator says the FAILED branch's
 *   phase was done by hand (or needs nothing): CONFIRMED, CANCELLED or
 *   STEP_COMPENSATED, tx.failed--, and the transaction goes on exactly as
 *   if the participant had answered OK: a TCC transaction with nothing
 *   pending or failed finishes; a saga compensates its next step (reverse
 *   order of completion) or ends SAGA_COMPENSATED.
 *   CmdResult.branch_state: the branch's new state.
 *
 * Both: NOT_FOUND for an unknown gid or branch; WRONG_STATE for a finished
 * transaction, an ACTIVE (undecided) one, or a branch in another state.
 * Each branch moved adds an event (kind "retry" or "resolve", with the
 * operator's reason; never a payload). tx.reason then names the first
 * branch still FAILED, or, with none left, the verb and the reason.
 * Apply reads no clock: "now" is the command's time_ms.
 */
#ifndef SETTLE_WAL_OPERATOR_H
#define SETTLE_WAL_OPERATOR_H

#include <stddef.h>

#include "settle.pb-c.h"

struct apply;

/* What an event says when a retry gives no reason. */
#define WAL_NO_REASON "no reason given"

/*
 * CmdRetry: gid valid; reason <= WAL_TEXT_MAX bytes (may be empty).
 * Returns 0 or SETTLE_EINVAL (never SETTLE_ETOOBIG: a long reason is an
 * invalid argument of these verbs), with a message naming the field in
 * errmsg (may be NULL).
 */
int wal_retry_validate(const Settle__V1__CmdRetry *c, char *errmsg,
		       size_t errmsg_len);

/* CmdResolve: gid valid, branch_id != 0, reason 1..WAL_TEXT_MAX bytes.
 * Same returns. */
int wal_resolve_validate(const Settle__V1__CmdResolve *c, char *errmsg,
			 size_t errmsg_len);

/*
 * Apply a validated command inside the FSM's apply a (wal/fsm_int.h).
 * Refusals are rejected no-ops (a->res.code); returns 0, or a storage
 * failure / bug (illegal move) that aborts the whole apply.
 */
int wal_retry_apply(struct apply *a, const Settle__V1__CmdRetry *c);
int wal_resolve_apply(struct apply *a, const Settle__V1__CmdResolve *c);

#endif /* SETTLE_WAL_OPERATOR_H */

/*
 * saga.h — the Saga commands of the FSM: CmdSagaBegin, CmdStepResult and
 * CmdDecide on a saga. The driver (coordinator/) calls participants; the
 * FSM only records outcomes and says which call is due next.
 *
 * A saga is a transaction of mode SAGA whose branches are its steps: step
 * i of the request (0-based) is branch i + 1. Its record says what the
 * leader must do next:
 *   - a step in STEP_ACTING whose next_retry_ms has come: call its Action
 *     (attempt = attempts + 1), then propose CmdStepResult{phase ACTION};
 *   - a step in STEP_COMPENSATING likewise: call Compensate, then propose
 *     CmdStepResult{phase COMPENSATE};
 *   - SAGA_RUNNING, BACKWARD, time >= deadline_ms: propose
 *     CmdDecide{ROLLBACK, timeout};
 *   - tx.due_ms: the earliest of these times; 0 when nothing is callable
 *     (finished, or stuck on a FAILED compensation: tx.failed > 0).
 *
 * Step results (a result for a step not in the phase's state is late or
 * repeated: ignored, OK):
 *   action OK: STEP_DONE with the next completion ordinal; every PENDING
 *     step whose dependencies are all DONE becomes ACTING (due now); all
 *     DONE: SAGA_SUCCEEDED.
 *   action RETRY: attempts and next_retry_ms recorded. BACKWARD: once
 *     attempts reach max_attempts (0: WAL_SAGA_DEFAULT_ATTEMPTS), a
 *     FAILURE. FORWARD: retried for ever.
 *   action FAILURE: BACKWARD: STEP_ACTION_FAILED (with an ordinal: it may
 *     have taken effect; the barrier makes its compensation a no-op when
 *     it did not) and the saga starts compensating. FORWARD: a RETRY
 *     whose error is recorded.
 * Compensation (SAGA_COMPENSATING), entered by a BACKWARD failure or a
 * rollback decision: steps still ACTING are awaited first. Their
 * next_retry_ms is set to now: the driver must, for each, either wait for
 * its call in flight and propose its result, or, with none in flight,
 * propose CmdStepResult{ACTION, RETRY, "not called"}. An action result
 * while compensating ends the step: OK -> STEP_DONE, RETRY or FAILURE ->
 * STEP_ACTION_FAILED, each with an ordinal. Once no step is ACTING, the
 * DONE or ACTION_FAILED step of highest ordinal becomes
 * STEP_COMPENSATING (due now), one at a time: reverse order of
 * completion. Compensate OK -> STEP_COMPENSATED and the next one starts;
 * RETRY -> retried for ever at next_retry_ms; FAILURE -> FAILED,
 * tx.failed++, tx.reason says why, and the saga stays COMPENSATING,
 * stuck (due 0) for an operator. Nothing left to compensate:
 * SAGA_COMPENSATED, and steps never started become STEP_SKIPPED.
 *
 * Early calls (feature level 9): while the saga runs, the leader may
 * call the action of a PENDING step as soon as the ACTING step it waits
 * for answered OK, before that result is applied, if its other
 * dependencies are DONE (never while the saga compensates); its result is
 * proposed after the one it waited for (a result that still finds it
 * PENDING is ignored). So a step may have acted while PENDING in the
 * store: when compensation starts, every PENDING step whose dependencies
 * are all DONE or ACTING (or the step given up after max_attempts that
 * starts it: it may have answered OK to an earlier leader) is awaited as
 * if ACTING (event "awaited: may have been called early"), and a step is
 * compensated only after the steps that depend on it, highest ordinal
 * first among those free to go.
 *
 * Deeper early calls (feature level 10): a step called early that
 * answers OK may release the next one early in turn, while its own
 * result and those before it are still unapplied: up to
 * WAL_SAGA_EARLY_DEPTH PENDING steps in a row ahead of the last step the
 * store has ACTING (an ordered saga of that many steps + 1 calls them
 * back to back, no raft round between two calls). The depth of a PENDING
 * step is 1 + the largest depth among its dependencies, where a DONE or
 * ACTING dependency (or the one just given up) counts 0 and any other
 * state makes it unreachable; when compensation starts, every PENDING
 * step of depth <= WAL_SAGA_EARLY_DEPTH is awaited (at level 9, depth 1:
 * the rule above). The leader calls a step early only at a depth the FSM
 * awaits, and a step's depth never grows while the saga runs, so whatever
 * it called early is awaited. The price: a saga that compensates may
 * await and null-compensate up to that many steps that never acted.
 *
 * CmdDecide on a saga: COMMIT is refused (a saga commits by itself);
 * ROLLBACK starts compensation of a RUNNING saga (FORWARD sagas refuse a
 * timeout rollback: they have no deadline to enforce); repeated on a
 * compensating or compensated saga it answers OK.
 * Every outcome adds an event (kind "action" or "compensate", with the
 * participant's error text, never a payload).
 */
#ifndef SETTLE_WAL_SAGA_H
#define SETTLE_WAL_SAGA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "settle.pb-c.h"

struct apply;

/* Action attempts of a BACKWARD step whose max_attempts is 0. */
#define WAL_SAGA_DEFAULT_ATTEMPTS 5

/* How many PENDING steps in a row the leader may call ahead of the store
 * from feature level 10 (above). Replicated behaviour: changing it needs
 * a new feature level. */
#define WAL_SAGA_EARLY_DEPTH 4

/* The early-call depth at cluster feature level `level`: 0 below 9 (no
 * early calls), 1 at 9, WAL_SAGA_EARLY_DEPTH from 10. */
unsigned wal_saga_early_depth(uint32_t level);

/*
 * Check the steps of a saga (SubmitSagaRequest or CmdSagaBegin): 1 to
 * WAL_MAX_BRANCHES steps; each name <= WAL_RESOURCE_MAX bytes, endpoint
 * host:port, retry_base_ms <= retry_max_ms when both are set; all
 * payloads (action and compensation) together <= WAL_PAYLOAD_MAX bytes;
 * !dag: no depends_on; dag: depends_on names earlier steps only (which
 * makes the graph acyclic), each once.
 * Returns 0, SETTLE_EINVAL or SETTLE_ETOOBIG with a message naming the
 * step and field in errmsg (may be NULL; never payload bytes).
 */
int wal_saga_steps_validate(Settle__V1__SagaStep *const *steps, size_t n,
			    bool dag, char *errmsg, size_t errmsg_len);

/* CmdSagaBegin: gid, deadline_ms != 0, recovery BACKWARD or FORWARD, and
 * the steps as above. Same returns. */
int wal_saga_begin_validate(const Settle__V1__CmdSagaBegin *c, char *errmsg,
			    size_t errmsg_len);

/* CmdStepResult: gid, step != 0, phase ACTION or COMPENSATE, outcome
 * OK/RETRY/FAILURE, error <= WAL_TEXT_MAX bytes. Same returns. */
int wal_step_result_validate(const Settle__V1__CmdStepResult *c, char *errmsg,
			     size_t errmsg_len);

/*
 * Apply a validated command inside the FSM's apply a (wal/fsm_int.h).
 * Business refusals are rejected no-ops (a->res.code); returns 0, or a
 * storage failure / bug (illegal move) that aborts the whole apply.
 */
int wal_saga_begin_apply(struct apply *a, const Settle__V1__CmdSagaBegin *c);
int wal_step_result_apply(struct apply *a, const Settle__V1__CmdStepResult *c);
/* CmdDecide on a loaded saga (a->tx, mode SAGA). */
int wal_saga_decide_apply(struct apply *a, const Settle__V1__CmdDecide *c);

/*
 * CmdRetry / CmdResolve on a loaded saga (a->tx, mode SAGA, not final,
 * branch_id checked against next_branch_id), as wal/operator.h says:
 * retry moves FAILED -> STEP_COMPENSATING and makes STEP_ACTING /
 * STEP_COMPENSATING steps due now (branch_id 0: all of them); resolve
 * moves FAILED -> STEP_COMPENSATED and starts the next compensation, or
 * finishes SAGA_COMPENSATED. why is the operator's reason for the events
 * (not kept). Same returns as above.
 */
int wal_saga_retry_apply(struct apply *a, uint32_t branch_id, const char *why);
int wal_saga_resolve_apply(struct apply *a, uint32_t branch_id,
			   const char *why);

#endif /* SETTLE_WAL_SAGA_H */

/*
 * xa.h — the XA commands of the FSM (transactions of mode XA): begin and
 * register of an RM branch, xa_vote, xa_prepare, decide, xa_result and
 * branch_result on an XA transaction, xa_forget, xa_heuristic (an
 * operator's heuristic decision), and an operator's retry
 * and resolve of its FAILED branches. docs/XA.md and docs/ARCHITECTURE.md
 * tell the whole story; the tables are in wal/sm.h.
 *
 * An XA transaction has two kinds of branch:
 *   - RM branches (BranchRecord.rm set): an XA resource manager's branch,
 *     whose XID the FSM builds at register (formatID = CmdRegister
 *     .xa_format_id, gtrid = the gid's bytes, bqual = the branch id in
 *     decimal ASCII) and stores in BranchRecord.xid. The initiator
 *     prepares it and votes (xa_vote); the leader commits or rolls it back
 *     at the RM (phase 2) and reports with xa_result.
 *   - TCC branches (endpoint set), as in a TCC transaction: Confirm or
 *     Cancel in phase 2, reported with branch_result.
 *
 * Commands (rejections are no-op results; apply never fails for business
 * reasons):
 * begin{mode XA, xid}: as TCC, mode XA; xid (a legacy TM's XID) kept in
 *   TxRecord.xid.
 * register{rm, xa_format_id}: tx ACTIVE mode XA (a tx of another mode:
 *   WRONG_STATE). New branch XA_BRANCH_ACTIVE with its XID; result
 *   branch_id and xid. A register with endpoint on an XA tx is a TCC
 *   branch (fsm.c).
 * xa_vote{branch, vote, error}: branch an RM branch (else WRONG_STATE).
 *   VOTE_OK / VOTE_READ_ONLY / VOTE_ROLLBACK need tx ACTIVE and the branch
 *   XA_BRANCH_ACTIVE: -> PREPARED / READ_ONLY / ROLLED_BACK; a rollback
 *   vote then rolls the whole transaction back (reason "branch N voted
 *   rollback: ERROR"). ONE_PHASE_COMMITTED / _ROLLED_BACK / _UNKNOWN need
 *   the branch XA_BRANCH_ONE_PHASE: -> COMMITTED / ROLLED_BACK / COMMITTED
 *   with HEUR_HAZARD, and the tx ends COMMITTED (ROLLED_BACK when the RM
 *   rolled the one-phase commit back). PHASE2_COMMITTED / PHASE2_NOT_DONE
 *   need the branch left to the initiator (initiator_phase2) and
 *   XA_BRANCH_COMMITTING: -> XA_BRANCH_COMMITTED, or due now (the leader
 *   commits it); branch_id 0 applies the vote to every such branch (none
 *   at all: WRONG_STATE), one the leader committed already counting as a
 *   repeat. A vote whose state the branch is in already answers OK (a
 *   repeat). Otherwise WRONG_STATE. Result: tx state and branch_state.
 * xa_prepare: tx ACTIVE, every RM branch PREPARED or READ_ONLY (else
 *   WRONG_STATE "branch N has not voted"). Nothing for phase 2 (no
 *   PREPARED RM branch, no TCC branch): COMMITTED at once, result
 *   read_only. Else XA_PREPARED. Repeated: XA_PREPARED answers OK, a
 *   read-only COMMITTED answers OK read_only. ROLLING_BACK / ROLLED_BACK
 *   answer OK with that state (the TM's XA_RB*). Otherwise WRONG_STATE.
 * begin with branches (level 6): each an RM branch as register adds it,
 *   ids 1..K, XIDs with CmdBegin.xa_format_id.
 * decide COMMIT with votes (level 6): first each vote as xa_vote records
 *   it (all checked first: one refused refuses the whole command); a
 *   rollback vote rolls the tx back and the commit answers OK with
 *   ROLLING_BACK. Then as below.
 * decide COMMIT: from XA_PREPARED -> COMMITTING: PREPARED RM branches ->
 *   XA_BRANCH_COMMITTING, REGISTERED TCC branches -> CONFIRMING (due now);
 *   READ_ONLY untouched; nothing to do: COMMITTED. From ACTIVE only with
 *   one_phase (else WRONG_STATE "prepare first"): every RM branch voted:
 *   the same; exactly one RM branch unvoted, no other PREPARED RM branch,
 *   no TCC branch: that branch -> XA_BRANCH_ONE_PHASE, next_retry_ms =
 *   time + WAL_XA_ONE_PHASE_GRACE_MS, tx COMMITTING; else WRONG_STATE
 *   naming an unvoted branch. With initiator_phase2_ms (phase 2 by the
 *   initiator): the RM branches going XA_BRANCH_COMMITTING are marked
 *   initiator_phase2 and due at time + initiator_phase2_ms instead of now
 *   (ignored by the one-phase case, whose branch is the initiator's
 *   already).
 * decide ROLLBACK: from ACTIVE or XA_PREPARED -> ROLLING_BACK: RM branches
 *   ACTIVE or PREPARED -> XA_BRANCH_ROLLING_BACK, REGISTERED TCC branches
 *   -> CANCELLING; nothing to do: ROLLED_BACK. A timeout needs time_ms >=
 *   deadline_ms, and is refused for XA_PREPARED with an xid (in doubt:
 *   only its TM decides). Refused while COMMITTING (one phase included).
 *   Either decision repeated answers OK; the opposite one WRONG_STATE.
 * xa_result{branch, phase, outcome, heuristic, error, attempt, next_retry}
 *   and branch_result on a TCC branch: ignored (OK) unless the branch is
 *   still in phase. OK -> XA_BRANCH_COMMITTED / _ROLLED_BACK (CONFIRMED /
 *   CANCELLED) with the heuristic, if any, on the branch and merged into
 *   the tx (wal_xa_heuristic_merge); RETRY -> attempts, next_retry_ms,
 *   last_error; FAILURE -> FAILED, the tx waits for an operator. Phase
 *   XA_BRANCH_ONE_PHASE: OK (the leader gave up waiting for the
 *   initiator: HEUR_HAZARD) -> COMMITTED, RETRY postpones.
 * xa_forget: tx final, mode XA, heuristic not NONE -> heuristic NONE
 *   (branches keep theirs). Else WRONG_STATE (NOT_FOUND: unknown gid).
 * xa_heuristic{decision, reason} (an operator, when the TM of an in-doubt
 *   transaction is gone): tx XA_PREPARED (with or without xid). COMMIT:
 *   as decide COMMIT from XA_PREPARED, and tx.heuristic HEUR_COMMIT;
 *   ROLLBACK: as decide ROLLBACK, reason "heuristic rollback by operator:
 *   REASON", and HEUR_ROLLBACK. Event "heuristic" (kind, "operator:
 *   REASON"). The same heuristic decision again (tx decided that way and
 *   still remembering that heuristic) answers OK; otherwise WRONG_STATE.
 *   Result: state and heuristic.
 *   A TM's later decision then: the same one answers OK as any repeated
 *   decision, the opposite one WRONG_STATE naming the heuristic; either
 *   result carries the tx's heuristic (CmdResult.heuristic, set on every
 *   tx result), so the TM hears XA_HEURCOM / XA_HEURRB until xa_forget.
 *
 * Derived fields, recomputed by every XA command from the branches: while
 * COMMITTING / ROLLING_BACK, pending = branches in a phase-2 state
 * (XA_BRANCH_COMMITTING, _ROLLING_BACK, _ONE_PHASE, CONFIRMING,
 * CANCELLING), failed = FAILED branches, due_ms = their earliest
 * next_retry_ms (0 when only FAILED ones are left); the tx finishes when
 * neither is left. ACTIVE: due_ms = deadline_ms. XA_PREPARED: due_ms 0
 * with an xid, deadline_ms without (presumed abort).
 *
 * Events (never a payload): "register" (detail "rm NAME xid TEXT"),
 * "vote" (the vote and error text), "prepare", "commit" / "rollback" (the
 * decision), "xa_commit" / "xa_rollback" per RM result, "confirm" /
 * "cancel" per TCC result, "heuristic" (kind and text) whenever a
 * heuristic is recorded, "forget", "retry" / "resolve", and "committed" /
 * "rolled_back" at the end.
 */
#ifndef SETTLE_WAL_XA_H
#define SETTLE_WAL_XA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "settle.pb-c.h"
#include "xa/xid.h"

struct apply;

/* How long after a one-phase commit decision the leader waits for the
 * initiator's outcome before it records the branch COMMITTED with
 * HEUR_HAZARD (CmdXaResult phase XA_BRANCH_ONE_PHASE). */
#define WAL_XA_ONE_PHASE_GRACE_MS 60000
/* The most a commit may leave its branches to the initiator
 * (CmdDecide.initiator_phase2_ms). */
#define WAL_XA_PHASE2_MAX_MS 60000
/* The gid of an XA transaction is its RM branches' gtrid. */
#define WAL_XA_GID_MAX XA_XID_PART_MAX
/* A resource manager's name: [A-Za-z0-9_.-]{1,64}. */
#define WAL_XA_RM_MAX 64

/* True when b is an RM branch (rm set), false for a TCC branch. */
bool wal_xa_is_rm(const Settle__V1__BranchRecord *b);

/* 0 when rm is a valid resource manager name, else SETTLE_EINVAL (NULL
 * included). */
int wal_xa_rm_validate(const char *rm);

/*
 * The XID of RM branch branch_id of gid: formatID format_id (0..INT32_MAX),
 * gtrid = gid's bytes (1..64), bqual = branch_id in decimal ASCII. Nothing
 * kept. Returns 0 or SETTLE_EINVAL (x zeroed).
 */
int wal_xa_branch_xid(uint32_t format_id, const char *gid, uint32_t branch_id,
		      struct xa_xid *x);

/*
 * The reverse, for the leader's recovery scan: gid (NUL terminated, out
 * holds WAL_XA_GID_MAX + 1 bytes) and branch id named by an XID found at
 * an RM. SETTLE_EINVAL when the gtrid is not a valid gid or the bqual is
 * not the canonical decimal of 1..UINT32_MAX (then it is not one of
 * ours). The formatID is not checked.
 */
int wal_xa_xid_branch(const struct xa_xid *x, char gid[WAL_XA_GID_MAX + 1],
		      uint32_t *branch_id);

/*
 * Combine a transaction's heuristic with a branch's: NONE adds nothing;
 * the same kind twice stays that kind; two different kinds (HAZARD
 * included) make HEUR_MIXED, which stays. Values are Settle__V1__Heuristic.
 */
int wal_xa_heuristic_merge(int tx, int branch);

/* "VOTE_OK", "HEUR_HAZARD"...; "?" outside the enums. */
const char *wal_xa_vote_name(int vote);
const char *wal_xa_heuristic_name(int heuristic);

/*
 * Validation of the XA commands (called by wal_command_validate()):
 * register with rm: rm valid, endpoint, resource and payload empty;
 * xa_vote: gid, vote 1..8, branch_id != 0 (0 allowed for PHASE2_*), error
 * <= WAL_TEXT_MAX;
 * xa_prepare, xa_forget: gid; xa_result: gid, branch_id != 0, phase
 * XA_BRANCH_COMMITTING / _ROLLING_BACK / _ONE_PHASE, outcome OK / RETRY /
 * FAILURE (not FAILURE for ONE_PHASE), heuristic in the enum, error <=
 * WAL_TEXT_MAX. Returns 0, SETTLE_EINVAL or SETTLE_ETOOBIG with a message
 * naming the field in errmsg (may be NULL).
 */
int wal_xa_register_validate(const Settle__V1__CmdRegister *c, char *errmsg,
			     size_t errmsg_len);
int wal_xa_vote_validate(const Settle__V1__CmdXaVote *c, char *errmsg,
			 size_t errmsg_len);
int wal_xa_prepare_validate(const Settle__V1__CmdXaPrepare *c, char *errmsg,
			    size_t errmsg_len);
int wal_xa_result_validate(const Settle__V1__CmdXaResult *c, char *errmsg,
			   size_t errmsg_len);
int wal_xa_forget_validate(const Settle__V1__CmdXaForget *c, char *errmsg,
			   size_t errmsg_len);
/* xa_heuristic: gid, decision DECIDE_COMMIT or DECIDE_ROLLBACK, reason
 * 1..WAL_TEXT_MAX bytes (required: who decided and why). */
int wal_xa_heuristic_validate(const Settle__V1__CmdXaHeuristic *c, char *errmsg,
			      size_t errmsg_len);

/*
 * Apply a validated command inside the FSM's apply a (wal/fsm_int.h).
 * Refusals are rejected no-ops (a->res.code); returns 0, or a storage
 * failure / bug (illegal move) that aborts the whole apply.
 * register: CmdRegister with rm set (loads the tx itself).
 * decide, branch_result: on a loaded tx of mode XA (a->tx).
 */
int wal_xa_register_apply(struct apply *a, const Settle__V1__CmdRegister *c);
/* A new XA_BRANCH_ACTIVE RM branch of the ACTIVE XA tx a->tx on rm with
 * the next id and its XID (formatID format_id; a->res.branch_id and
 * a->res.xid), and its `register` event; a->tx is counted but not
 * written. Limits are the caller's. 0, a refusal, or < 0. */
int wal_xa_add_rm_branch(struct apply *a, const char *rm, uint32_t format_id);
int wal_xa_vote_apply(struct apply *a, const Settle__V1__CmdXaVote *c);
int wal_xa_prepare_apply(struct apply *a, const Settle__V1__CmdXaPrepare *c);
int wal_xa_decide_apply(struct apply *a, const Settle__V1__CmdDecide *c);
int wal_xa_result_apply(struct apply *a, const Settle__V1__CmdXaResult *c);
int wal_xa_branch_result_apply(struct apply *a,
			       const Settle__V1__CmdBranchResult *c);
int wal_xa_forget_apply(struct apply *a, const Settle__V1__CmdXaForget *c);
int wal_xa_heuristic_apply(struct apply *a,
			   const Settle__V1__CmdXaHeuristic *c);

/*
 * CmdRetry / CmdResolve on a loaded XA tx (a->tx, mode XA, neither final
 * nor ACTIVE; branch_id below next_branch_id), as wal/operator.h says,
 * by the transaction's decision: retry moves a FAILED RM branch to
 * XA_BRANCH_COMMITTING / _ROLLING_BACK (a TCC one to CONFIRMING /
 * CANCELLING) and makes branches in those states due now (branch_id 0:
 * all); resolve moves a FAILED branch to XA_BRANCH_COMMITTED /
 * _ROLLED_BACK (CONFIRMED / CANCELLED) and finishes the tx when nothing
 * is left. XA_PREPARED is refused (not decided). why is the operator's
 * reason (not kept). Same returns as above.
 */
int wal_xa_retry_apply(struct apply *a, uint32_t branch_id, const char *why);
int wal_xa_resolve_apply(struct apply *a, uint32_t branch_id, const char *why);

#endif /* SETTLE_WAL_XA_H */

/*
 * assoc.h — thread-of-control and branch state machine of Settle's XA switch.
 *
 * The XA specification (chapter 6, state tables) gives every (thread, rmid)
 * a state and every transaction branch a state:
 *
 *   thread   T0 not associated, T1 associated, T2 association suspended
 *   branch   S0 non-existent, S1 active, S2 idle, S3 prepared,
 *            S4 rollback-only, S5 heuristically completed
 *
 * and says which verb is legal in which state. This module keeps those
 * states (and each thread's xa_recover scan) for the switch library, not
 * written yet, and answers, for each verb, the XA return code the verb must
 * give. Every state change is checked
 * against the two transition tables below (xa_assoc_*_can_move); a move the
 * tables forbid is a bug in this module: it is refused with XAER_RMERR and
 * nothing changes, never silently stored.
 *
 *   thread:  T0 -> T1;  T1 -> T0 | T2;  T2 -> T0 | T1
 *   branch:  S0 -> S1
 *            S1 -> S2 | S4
 *            S2 -> S0 | S1 | S3 | S4 | S5
 *            S3 -> S0 | S5
 *            S4 -> S0
 *            S5 -> S0
 *   (S1 stays S1 while threads join or suspend; S4 may still have threads
 *   associated until they end.)
 *
 * Decisions where the specification leaves room:
 *  - A thread holds at most one association per rmid, current (T1) or
 *    suspended (T2). In T2 only xa_start(TMRESUME) of that XID and xa_end
 *    (TMSUCCESS or TMFAIL) of that XID are legal; anything else is
 *    XAER_PROTO.
 *  - No migration (the switch will advertise TMNOMIGRATE): only the thread
 *    that suspended an association may resume or end it. xa_end(TMSUSPEND |
 *    TMMIGRATE) suspends and answers XA_NOMIGRATE, as the specification
 *    allows; TMMIGRATE without TMSUSPEND is XAER_INVAL. xa_start(TMRESUME) by
 *    a thread that did not suspend the branch, while another thread has it
 *    suspended, answers XA_NOMIGRATE and changes nothing.
 *  - No asynchronous mode (no TMUSEASYNC): TMASYNC on any verb is
 *    XAER_INVAL, as is any flag the verb does not define, TMJOIN|TMRESUME,
 *    and an xa_end without exactly one of TMSUSPEND, TMSUCCESS, TMFAIL.
 *    TMNOWAIT is accepted and ignored: nothing here blocks.
 *  - xa_end(TMFAIL) makes the branch rollback-only and answers XA_RBROLLBACK.
 *    On a rollback-only branch, xa_start(TMJOIN/TMRESUME), xa_end, xa_prepare
 *    and one-phase xa_commit answer its XA_RB* code; xa_end still ends the
 *    caller's association (the thread goes to T0), xa_start associates
 *    nothing.
 *  - Every verb on an rmid the thread has not opened is XAER_PROTO; an
 *    invalid XID (null, bad lengths) is XAER_INVAL; an XID unknown here is
 *    XAER_NOTA. For commit, rollback and forget, NOTA means "unknown to
 *    this process": the switch will ask the coordinator for branches
 *    prepared by another process (recovery) before answering NOTA.
 *
 * Completion verbs run in two steps, because their outcome comes from the
 * coordinator: xa_assoc_prepare/commit/rollback/forget check the state and
 * answer XA_OK ("go ahead", the branch is then busy: any other verb on it is
 * XAER_PROTO) or the code to return at once; xa_assoc_complete() then records
 * the coordinator's answer. xa_assoc_start and xa_assoc_end move at once.
 *
 * Thread safety: one mutex per struct xa_assoc guards everything; a thread
 * is named by the caller's tid (xa_assoc_self() for the calling thread), so
 * the tests can act as several threads from one.
 *
 * All verbs return XA return codes (xa/settle_xa.h), not SETTLE_E* codes:
 * they are what the switch hands back to the transaction manager.
 */
#ifndef SETTLE_XA_ASSOC_H
#define SETTLE_XA_ASSOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xa/settle_xa.h"
#include "xa/xid.h"

enum xa_assoc_tstate {
	XA_ASSOC_T0, /* not associated */
	XA_ASSOC_T1, /* associated */
	XA_ASSOC_T2, /* association suspended */
	XA_ASSOC_T_N
};

enum xa_assoc_bstate {
	XA_ASSOC_S0, /* non-existent */
	XA_ASSOC_S1, /* active: one or more associations, current or suspended
		      */
	XA_ASSOC_S2, /* idle: all associations ended */
	XA_ASSOC_S3, /* prepared */
	XA_ASSOC_S4, /* rollback-only */
	XA_ASSOC_S5, /* heuristically completed */
	XA_ASSOC_S_N
};

/* The completion verbs, for xa_assoc_complete(). */
enum xa_assoc_verb {
	XA_ASSOC_PREPARE = 1,
	XA_ASSOC_COMMIT,
	XA_ASSOC_ROLLBACK,
	XA_ASSOC_FORGET,
};

struct xa_assoc;

/*
 * Create an empty table in *out, freed with xa_assoc_free().
 * Errors: SETTLE_EINVAL (out NULL), SETTLE_ENOMEM, SETTLE_EINTERNAL (the
 * mutex could not be created).
 */
int xa_assoc_new(struct xa_assoc **out);

/* Free a table and everything in it, once no thread uses it. NULL is allowed.
 */
void xa_assoc_free(struct xa_assoc *a);

/* The calling thread's id (Linux gettid), unique among live threads. */
uint64_t xa_assoc_self(void);

/*
 * Field-by-field conversion of a TM's XID. XA_OK, or XAER_INVAL for NULL,
 * the null XID, a formatID outside 0..INT32_MAX or lengths outside 1..64.
 */
int xa_assoc_xid(const XID *in, struct xa_xid *out);

/*
 * xa_open / xa_close for thread tid on rmid. Opening twice is XA_OK.
 * Closing with an association (T1 or T2) is XAER_PROTO; closing an unopened
 * rmid is XA_OK. Flags other than TMNOFLAGS: XAER_INVAL.
 * XAER_RMERR when memory runs out.
 */
int xa_assoc_open(struct xa_assoc *a, uint64_t tid, int rmid, long flags);
int xa_assoc_close(struct xa_assoc *a, uint64_t tid, int rmid, long flags);

/*
 * xa_start: TMNOFLAGS creates the branch (XAER_DUPID if it is known in any
 * state), TMJOIN joins an active or idle one, TMRESUME resumes the caller's
 * suspended association. The XID is copied. See the top of this file for
 * the codes. XAER_RMERR when memory runs out.
 */
int xa_assoc_start(struct xa_assoc *a, uint64_t tid, int rmid,
		   const struct xa_xid *xid, long flags);

/*
 * xa_end with TMSUCCESS, TMFAIL or TMSUSPEND [| TMMIGRATE] on the caller's
 * association with xid. The branch goes idle when its last association ends
 * with success.
 */
int xa_assoc_end(struct xa_assoc *a, uint64_t tid, int rmid,
		 const struct xa_xid *xid, long flags);

/*
 * Checks of the completion verbs. XA_OK: proceed, the branch is now busy
 * until xa_assoc_complete(). Anything else: return that code, nothing
 * changed. When the answer is an XA_RB* code the branch is rollback-only:
 * the switch must roll it back at the coordinator (xa_assoc_rollback, then
 * xa_assoc_complete) before returning the code.
 *   prepare:  S2; commit: S3, or S2 with TMONEPHASE; rollback: S2, S3, or S4
 *   without associations; forget: S5. Heuristically completed branches
 *   answer their XA_HEUR* code to commit and rollback.
 */
int xa_assoc_prepare(struct xa_assoc *a, uint64_t tid, int rmid,
		     const struct xa_xid *xid, long flags);
int xa_assoc_commit(struct xa_assoc *a, uint64_t tid, int rmid,
		    const struct xa_xid *xid, long flags);
int xa_assoc_rollback(struct xa_assoc *a, uint64_t tid, int rmid,
		      const struct xa_xid *xid, long flags);
int xa_assoc_forget(struct xa_assoc *a, uint64_t tid, int rmid,
		    const struct xa_xid *xid, long flags);

/*
 * Record the outcome rc of a completion verb that its check let proceed,
 * and clear busy. rc is the XA code the coordinator gave:
 *   prepare   XA_OK -> S3; XA_RDONLY, XA_RB*, XAER_RMERR, XAER_NOTA -> S0
 *   commit    XA_OK, XA_RB*, XAER_NOTA -> S0; XA_HEUR* -> S5
 *   rollback  XA_OK, XA_RB*, XAER_NOTA -> S0; XA_HEUR* -> S5
 *   forget    XA_OK, XAER_NOTA -> S0
 *   anything else (XAER_RMFAIL, XA_RETRY...): state unchanged.
 * Returns rc, or XAER_PROTO when the branch is not busy with that verb,
 * XAER_RMERR when the move is illegal (a bug), XAER_INVAL for bad args.
 */
int xa_assoc_complete(struct xa_assoc *a, int rmid, const struct xa_xid *xid,
		      enum xa_assoc_verb verb, int rc);

/*
 * The coordinator made a known, not yet prepared branch rollback-only (a
 * deadline passed, the RM failed): S1 or S2 -> S4, remembering rb
 * (XA_RBBASE..XA_RBEND, else XAER_INVAL). XAER_NOTA when unknown,
 * XAER_PROTO in S3, S5 or when busy; XA_OK when already rollback-only.
 */
int xa_assoc_rollback_only(struct xa_assoc *a, int rmid,
			   const struct xa_xid *xid, int rb);

/*
 * The coordinator finished a branch this process still tracks (its
 * deadline rolled it back, an operator decided it, another process
 * completed it): forget it here, S2, S3, S4 or S5 -> S0. XA_OK;
 * XAER_NOTA when unknown; XAER_PROTO when busy or still associated (S1,
 * or S4 with threads on it): the local answer stands then.
 */
int xa_assoc_drop(struct xa_assoc *a, int rmid, const struct xa_xid *xid);

/* Current states, for the switch's tracing and the tests. */
enum xa_assoc_tstate xa_assoc_thread_state(struct xa_assoc *a, uint64_t tid,
					   int rmid);
enum xa_assoc_bstate xa_assoc_branch_state(struct xa_assoc *a, int rmid,
					   const struct xa_xid *xid);

/*
 * xa_recover's per-thread scan. The check validates the call the way the
 * specification does and answers where the scan stands:
 *   XAER_INVAL  count < 0, xids NULL with count > 0, a flag other than
 *               TMSTARTRSCAN / TMENDRSCAN, or no scan open and no
 *               TMSTARTRSCAN (nothing changes)
 *   XAER_PROTO  the thread has not opened rmid
 *   XA_OK       *pos (may be NULL) gets the index of the next XID to hand
 *               out: 0 after TMSTARTRSCAN, which (re)opens the scan
 * After handing out n XIDs (0..count), the switch calls
 * xa_assoc_recover_done(n, flags) with the same flags: pos advances by n,
 * and TMENDRSCAN, or n < count (the list is exhausted), closes the scan.
 * It answers XAER_PROTO without an open scan, XAER_INVAL for n < 0.
 */
int xa_assoc_recover(struct xa_assoc *a, uint64_t tid, int rmid,
		     const XID *xids, long count, long flags, uint64_t *pos);
int xa_assoc_recover_done(struct xa_assoc *a, uint64_t tid, int rmid, long n,
			  long count, long flags);

/*
 * Invariants of the whole table: an active branch (S1) has an association;
 * idle, prepared and heuristic branches (S2, S3, S5) have none; every
 * associated or suspended thread is on a known S1 or S4 branch; a busy
 * branch is not active. True when they hold; otherwise false and why in
 * errmsg (may be NULL). For the tests and the switch's debug checks.
 */
bool xa_assoc_invariants(struct xa_assoc *a, char *errmsg, size_t errmsg_len);

/* The transition tables above; out-of-range states are never allowed. */
bool xa_assoc_thread_can_move(int from, int to);
bool xa_assoc_branch_can_move(int from, int to);

/* "T1", "S3"...; "?" out of range. */
const char *xa_assoc_thread_name(int state);
const char *xa_assoc_branch_name(int state);

#endif /* SETTLE_XA_ASSOC_H */

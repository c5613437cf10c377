/*
 * xa.h — the leader as transaction manager of XA resource managers
 * (docs/XA.md): the decisions it takes (xa_logic.c, pure and unit-tested),
 * and the hooks of the phase-2 driver that carry them out (xa_drive.c,
 * through the RM pool of xa_pool.h).
 */
#ifndef SETTLE_COORD_XA_H
#define SETTLE_COORD_XA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "settle.pb-c.h"
#include "wal/entry.h"
#include "xa/xid.h"

/* How long a branch the initiator commits in one phase may stay
 * unreported before the leader records its outcome as unknown (the FSM's
 * WAL_XA_ONE_PHASE_GRACE_MS makes the transaction due then). */
#define COORD_XA_ONE_PHASE_GRACE_MS 60000

/* ---- Pure decisions (xa_logic.c) ----------------------------------------- */

/* One phase-2 call of the leader to an RM. */
struct coord_xa_call {
	int phase;	  /* BranchState XA_BRANCH_COMMITTING / _ROLLING_BACK */
	uint32_t attempt; /* 1 for the first call of this branch */
	bool voted_ok;	  /* the branch was prepared (voted OK) */
	/* The decision was applied before this leader became ready: an
	 * earlier leader may have made a call whose answer it never
	 * recorded, so NOTA at this leader's first call is no sign of work
	 * finished outside Settle. */
	bool inherited;
};

/*
 * Turn an RM's answer to a phase-2 call into the CmdXaResult to propose.
 * rv is what xa_rm_commit/xa_rm_rollback returned (0 or XA_RM_E*),
 * rm_errmsg its text ("" or NULL when none). retry_at is the time of the
 * next attempt should the answer call for one; max_attempts bounds retries
 * of RM errors that are not a lost connection (0: no bound).
 * Sets out->phase, outcome, heuristic, error (pointing into err, which
 * gets a NUL-terminated text of at most errcap bytes), attempt and
 * next_retry_ms; gid and branch_id are left to the caller.
 *   0, and NOTA on a rollback  -> OK
 *   NOTA at the first call for a branch that voted OK -> OK + HEUR_HAZARD
 *       (it was finished outside Settle, or a previous leader's call
 *       succeeded without being recorded: the residual false alarm)
 *   XA_RM_ETRANSIENT           -> RETRY, forever
 *   XA_RM_EROLLBACK on commit  -> OK + HEUR_ROLLBACK
 *   anything else              -> RETRY, FAILURE once attempt reaches
 *                                 max_attempts (an operator must look)
 */
void coord_xa_classify(const struct coord_xa_call *call, int rv,
		       const char *rm_errmsg, uint32_t max_attempts,
		       uint64_t retry_at, Settle__V1__CmdXaResult *out,
		       char *err, size_t errcap);

/* The CmdXaResult for a one-phase branch whose initiator never reported
 * its outcome within the grace: OK with HEUR_HAZARD. gid/branch_id and
 * attempt are left to the caller. */
void coord_xa_one_phase_unknown(Settle__V1__CmdXaResult *out);

/*
 * Whose XID is it: one of this cluster's RM branches when its formatID is
 * format_id, its gtrid a valid gid (1..64 printable ASCII bytes, no space)
 * and its bqual a branch id in decimal (1..4294967295, no leading zero).
 * Then gid (NUL-terminated) and *branch_id are set and 0 is returned, else
 * SETTLE_EINVAL.
 */
int coord_xa_xid_owner(const struct xa_xid *x, uint32_t format_id,
		       char gid[WAL_GID_MAX + 1], uint32_t *branch_id);

/* What the recovery scan does with a prepared XID of ours. */
enum coord_xa_recover_act {
	COORD_XA_REC_LEAVE = 0, /* the log or an operator decides it */
	COORD_XA_REC_COMMIT,
	COORD_XA_REC_ROLLBACK,
};

/*
 * Decide an in-doubt XID found prepared at an RM, from its transaction tx
 * (NULL: none in the log) and branch b (NULL: tx has no such branch).
 * Presumed abort: no transaction is a rollback. A final transaction, or a
 * branch the log has nothing left to do for, follows the transaction's
 * decision. Whatever the driver or the deadline still drives (branches in
 * phase 2, ACTIVE or XA_PREPARED transactions), FAILED branches (the
 * operator's) and XIDs that name no branch are left alone. *why (never
 * NULL on return) gets a short static text for the log.
 */
enum coord_xa_recover_act
coord_xa_recover_decide(const Settle__V1__TxRecord *tx,
			const Settle__V1__BranchRecord *b, const char **why);

/*
 * The conninfo the leader connects with: conninfo as configured, and for
 * PostgreSQL (kind 1) in key=value form, bounds in front of it that the
 * operator's own keys override: connect_timeout=5, TCP keepalives and a
 * 30 s statement_timeout, so that a worker never waits forever on a dead
 * or hung server (the MariaDB adapter has its own: 10 s connect, 30 s
 * read/write). Errors: SETTLE_EINVAL when buf is too small.
 */
int coord_xa_conninfo(int kind, const char *conninfo, char *buf, size_t cap);

/* ---- Driver hooks (xa_drive.c; loop thread, driver.c calls them) --------- */

struct coord_driver;

/* Commit or roll back an RM branch in XA_BRANCH_COMMITTING / _ROLLING_BACK
 * at its RM, unless a call for it is in flight; the answer is proposed as
 * a CmdXaResult. */
void coord_xa_drive_branch(struct coord_driver *d,
			   const Settle__V1__TxRecord *tx,
			   const Settle__V1__BranchRecord *b, uint64_t now);

/* A branch XA_BRANCH_ONE_PHASE whose grace has passed: propose its outcome
 * as unknown (coord_xa_one_phase_unknown). */
void coord_xa_one_phase_expired(struct coord_driver *d,
				const Settle__V1__BranchRecord *b);

/* The driver became active (true) or stopped (false): start or stop the
 * recovery scans and drop queued RM calls. */
void coord_xa_set_active(struct coord_driver *d, bool active);

/* Heartbeat: a recovery scan when one is due. */
void coord_xa_tick(struct coord_driver *d, uint64_t now);

/* Counters since the node started, for Status and tests. */
struct coord_xa_stats {
	uint64_t calls;		     /* phase-2 calls made */
	uint64_t scans;		     /* recovery scans finished */
	uint64_t recovered_commit;   /* in-doubt XIDs committed by a scan */
	uint64_t recovered_rollback; /* in-doubt XIDs rolled back by a scan */
	uint64_t heuristics;	     /* results proposed with a heuristic */
};

#endif /* SETTLE_COORD_XA_H */

/*
 * xa_drive.c — XA phase 2 and recovery in the leader's driver.
 *
 * Phase 2: a branch XA_BRANCH_COMMITTING or _ROLLING_BACK is committed or
 * rolled back at its RM on a worker (xa_pool.h); the answer, classified by
 * coord_xa_classify(), goes through raft as a CmdXaResult before anything
 * moves on. A one-phase branch whose initiator stays silent past the grace
 * is recorded with an unknown (hazard) outcome.
 *
 * Recovery: when the node becomes a ready leader, then every
 * --xa-recover-interval, each RM lists the XIDs it holds prepared with our
 * formatID. Where the log still drives the branch (phase 2 under way, or
 * the transaction not decided yet) the scan leaves it; where the log has
 * nothing left to do (a final transaction, a missing one: presumed abort)
 * the scan itself commits or rolls back, as the log's decision says, and
 * records nothing in raft: a log line and a counter.
 *
 * Like the rest of the driver, every call carries the epoch it was made
 * in: answers of an older epoch (leadership lost or regained meanwhile)
 * are dropped, and one (gid, branch) has one call at a time, recovery
 * included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "driver.h"
#include "coordinator/driver_int.h"
#include "error.h"
#include "log.h"
#include "wal/xa.h"
#include "coordinator/xa.h"
#include "xa/rm.h"
#include "coordinator/xa_pool.h"

_Static_assert(COORD_XA_ONE_PHASE_GRACE_MS == WAL_XA_ONE_PHASE_GRACE_MS,
	       "the driver waits as long as the FSM's due time says");

/* A recovery scan of one RM. */
struct scan_op {
	struct coord_driver *d;
	uint64_t epoch;
	char rm[COORD_XA_RM_NAME_MAX + 1];
};

static const char *heuristic_name(int h)
{
	switch (h) {
	case SETTLE__V1__HEURISTIC__HEUR_HAZARD:
		return "HAZARD";
	case SETTLE__V1__HEURISTIC__HEUR_COMMIT:
		return "COMMIT";
	case SETTLE__V1__HEURISTIC__HEUR_ROLLBACK:
		return "ROLLBACK";
	case SETTLE__V1__HEURISTIC__HEUR_MIXED:
		return "MIXED";
	}
	return "NONE";
}

static bool current(const struct op *o)
{
	return o->epoch == o->d->epoch && o->d->active;
}

/* Drop an op whose answer no longer counts. */
static void drop(struct op *o)
{
	if (o->epoch == o->d->epoch)
		coord_drv_flight_del(o->d, o->gid, o->branch_id);
	free(o);
}

static void propose_result(struct op *o, Settle__V1__CmdXaResult *r)
{
	struct coord_driver *d = o->d;
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;

	r->gid = o->gid;
	r->branch_id = o->branch_id;
	if (r->heuristic != SETTLE__V1__HEURISTIC__HEURISTIC_NONE) {
		d->xa_stats.heuristics++;
		settle_log_tx(SETTLE_LOG_WARN, "xa", o->gid, o->branch_id,
			      "at %s: heuristic outcome %s: %s", o->rm,
			      heuristic_name(r->heuristic), r->error);
	} else if (r->outcome == SETTLE__V1__OUTCOME__OUTCOME_FAILURE) {
		settle_log_tx(SETTLE_LOG_WARN, "xa", o->gid, o->branch_id,
			      "at %s: giving up after %u attempts, the "
			      "branch waits for an operator: %s",
			      o->rm, r->attempt, r->error);
	}
	settle_tracef("xa", "%s/%u at %s %s attempt %u: outcome %d %s", o->gid,
		      o->branch_id, o->rm,
		      r->phase == SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING
			  ? "commit"
			  : "rollback",
		      r->attempt, (int)r->outcome, r->error);
	cmd.time_ms = coord_wall_now(o->d->c);
	cmd.op_case = SETTLE__V1__COMMAND__OP_XA_RESULT;
	cmd.xa_result = r;
	coord_drv_propose(d, o, &cmd);
}

/* A RETRY (or, past max attempts, FAILURE) that did not reach the RM. */
static void propose_not_called(struct op *o, int rv, const char *text)
{
	struct coord_driver *d = o->d;
	Settle__V1__CmdXaResult r = SETTLE__V1__CMD_XA_RESULT__INIT;
	struct coord_xa_call call = {.phase = o->phase, .attempt = o->attempt};
	char err[WAL_TEXT_MAX / 2];

	coord_xa_classify(
	    &call, rv, text, d->c->cfg.xa_max_attempts,
	    coord_wall_now(o->d->c) +
		coord_drv_backoff_ms(&d->c->cfg, o->attempt, 0, 0),
	    &r, err, sizeof err);
	propose_result(o, &r);
}

/* Whether branch bid of gid voted (its "vote" event): only a branch that
 * voted OK can be rolled back after a vote. */
static bool branch_voted(struct coord_driver *d, const char *gid, uint32_t bid)
{
	Settle__V1__Event **ev = NULL;
	size_t n = 0;
	bool voted = false;

	if (store_events_list(d->c->store, NULL, gid, &ev, &n) != 0)
		return false;
	for (size_t i = 0; i < n && !voted; i++)
		voted =
		    ev[i]->branch_id == bid && strcmp(ev[i]->kind, "vote") == 0;
	store_events_free(ev, n);
	return voted;
}

static void recovery_answered(struct op *o, const struct coord_xa_answer *a);

static void branch_answered(void *data, const struct coord_xa_answer *a)
{
	struct op *o = data;
	struct coord_driver *d = o->d;
	Settle__V1__CmdXaResult r = SETTLE__V1__CMD_XA_RESULT__INIT;
	struct coord_xa_call call = {.phase = o->phase, .attempt = o->attempt};
	char err[WAL_TEXT_MAX / 2];

	if (a->rv == SETTLE_ECANCELED) {
		drop(o);
		return;
	}
	if (!current(o)) {
		/* Planned by an older epoch, but what the RM did is a fact:
		 * a done commit or rollback is still recorded, so that the
		 * next call does not find NOTA and cry hazard. The FSM
		 * ignores it unless the branch is still in that phase. */
		if (!d->active || o->xa_recovery || a->rv != 0 ||
		    !coord_drv_flight_add(d, o->gid, o->branch_id)) {
			free(o);
			return;
		}
		o->epoch = d->epoch;
	}
	if (o->xa_recovery) {
		recovery_answered(o, a);
		return;
	}
	call.voted_ok = o->xa_voted_ok;
	call.inherited = o->xa_inherited;
	/* Only NOTA at the first rollback needs to know (events are read
	 * from LMDB, so only then). */
	if (a->rv == XA_RM_ENOTA && o->attempt <= 1 && !call.voted_ok)
		call.voted_ok = branch_voted(d, o->gid, o->branch_id);
	coord_xa_classify(
	    &call, a->rv, a->errmsg, d->c->cfg.xa_max_attempts,
	    coord_wall_now(o->d->c) +
		coord_drv_backoff_ms(&d->c->cfg, o->attempt, 0, 0),
	    &r, err, sizeof err);
	propose_result(o, &r);
}

void coord_xa_drive_branch(struct coord_driver *d,
			   const Settle__V1__TxRecord *tx,
			   const Settle__V1__BranchRecord *b, uint64_t now)
{
	bool commit =
	    b->state == SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING;
	struct xa_xid xid;
	struct op *o;
	char text[256];
	int rv;

	(void)tx;
	(void)now;
	if (!coord_drv_flight_add(d, b->gid, b->branch_id))
		return;
	o = coord_drv_op_new(d, b->gid, b->branch_id);
	if (o == NULL) {
		coord_drv_flight_del(d, b->gid, b->branch_id);
		return;
	}
	o->phase = b->state;
	o->attempt = b->attempts + 1;
	/* Commit is decided only once every RM branch voted OK. */
	o->xa_voted_ok = commit;
	/* Decided before this leader was ready: by raft index, exact. A
	 * branch written before phase2_index existed falls back to its
	 * updated_ms, which until a first answer is recorded is the time
	 * the deciding leader stamped on its decision. */
	o->xa_inherited = b->phase2_index != 0
			      ? b->phase2_index <= d->active_since_index
			      : b->updated_ms < d->active_since_ms;
	/* Left to the initiator first, which may have committed it. */
	o->xa_inherited = o->xa_inherited || b->initiator_phase2;
	snprintf(o->rm, sizeof o->rm, "%s", b->rm);
	if (xa_xid_decode(b->xid.data, b->xid.len, &xid) != 0) {
		/* The FSM built it: a bug, for an operator to see. */
		propose_not_called(o, XA_RM_EINVAL,
				   "the branch's XID in the log does not "
				   "decode");
		return;
	}
	d->xa_stats.calls++;
	rv = d->xa_pool == NULL
		 ? SETTLE_ENOTFOUND
		 : coord_xa_pool_submit(d->xa_pool, b->rm,
					commit ? COORD_XA_COMMIT
					       : COORD_XA_ROLLBACK,
					&xid, 0, branch_answered, o);
	if (rv == 0)
		return;
	if (rv == SETTLE_EEXISTS) {
		/* An older epoch's call of this XID is still running: its
		 * answer is recorded, or the next tick calls again. */
		d->xa_stats.calls--;
		coord_drv_flight_del(d, o->gid, o->branch_id);
		free(o);
		return;
	}
	if (rv == SETTLE_ENOTFOUND) {
		/* Another node may have it: retry (forever) until a leader
		 * that knows the RM takes over or the config is fixed. */
		snprintf(text, sizeof text,
			 "resource manager %s not configured on node %llu",
			 b->rm, (unsigned long long)d->c->cfg.id);
		propose_not_called(o, XA_RM_ETRANSIENT, text);
		return;
	}
	propose_not_called(o, XA_RM_ETRANSIENT, settle_strerror(rv));
}

void coord_xa_one_phase_expired(struct coord_driver *d,
				const Settle__V1__BranchRecord *b)
{
	Settle__V1__CmdXaResult r = SETTLE__V1__CMD_XA_RESULT__INIT;
	struct op *o;

	if (!coord_drv_flight_add(d, b->gid, b->branch_id))
		return;
	o = coord_drv_op_new(d, b->gid, b->branch_id);
	if (o == NULL) {
		coord_drv_flight_del(d, b->gid, b->branch_id);
		return;
	}
	o->phase = SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE;
	o->attempt = b->attempts + 1;
	snprintf(o->rm, sizeof o->rm, "%s", b->rm);
	coord_xa_one_phase_unknown(&r);
	r.attempt = o->attempt;
	propose_result(o, &r);
}

/* ---- Recovery ------------------------------------------------------------ */

static void recovery_answered(struct op *o, const struct coord_xa_answer *a)
{
	struct coord_driver *d = o->d;
	bool commit =
	    o->phase == SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING;

	if (a->rv == 0) {
		if (commit)
			d->xa_stats.recovered_commit++;
		else
			d->xa_stats.recovered_rollback++;
		settle_log(SETTLE_LOG_INFO, "xa", "recovery: %s/%u at %s %s",
			   o->gid, o->branch_id, o->rm,
			   commit ? "committed" : "rolled back");
	} else if (a->rv == XA_RM_ENOTA) {
		settle_tracef("xa", "recovery: %s/%u at %s was gone already",
			      o->gid, o->branch_id, o->rm);
	} else {
		settle_log(SETTLE_LOG_WARN, "xa",
			   "recovery: %s %s/%u at %s failed (the next scan "
			   "tries again): %s",
			   commit ? "commit of" : "rollback of", o->gid,
			   o->branch_id, o->rm, a->errmsg);
	}
	drop(o);
}

/* Decide one XID an RM holds prepared and act on it if the log says so. */
static void recover_xid(struct coord_driver *d, MDB_txn *txn, const char *rm,
			const struct xa_xid *xid)
{
	char gid[WAL_GID_MAX + 1];
	char text[XA_XID_TEXT_MAX];
	uint32_t bid;
	Settle__V1__TxRecord *tx = NULL;
	Settle__V1__BranchRecord *b = NULL;
	enum coord_xa_recover_act act;
	const char *why;
	struct op *o;
	bool commit;
	int rv;

	if (xa_xid_format(xid, text, sizeof text) != 0)
		snprintf(text, sizeof text, "?");
	if (coord_xa_xid_owner(xid, d->c->cfg.xa_format_id, gid, &bid) != 0) {
		settle_tracef("xa", "recovery: %s at %s is not ours", text, rm);
		return;
	}
	rv = store_tx_get(d->c->store, txn, gid, &tx);
	if (rv != 0 && rv != SETTLE_ENOTFOUND) {
		/* Only a transaction known to be absent is an orphan. */
		settle_log(SETTLE_LOG_WARN, "xa", "recovery: reading %s: %s",
			   gid, settle_strerror(rv));
		return;
	}
	if (tx != NULL) {
		rv = store_branch_get(d->c->store, txn, gid, bid, &b);
		if (rv != 0 && rv != SETTLE_ENOTFOUND) {
			settle__v1__tx_record__free_unpacked(tx, NULL);
			return;
		}
	}
	act = coord_xa_recover_decide(tx, b, &why);
	if (tx != NULL)
		settle__v1__tx_record__free_unpacked(tx, NULL);
	if (b != NULL)
		settle__v1__branch_record__free_unpacked(b, NULL);
	if (act == COORD_XA_REC_LEAVE) {
		settle_tracef("xa", "recovery: %s/%u at %s left: %s", gid, bid,
			      rm, why);
		return;
	}
	commit = act == COORD_XA_REC_COMMIT;
	if (!coord_drv_flight_add(d, gid, bid))
		return; /* a call for it is under way */
	o = coord_drv_op_new(d, gid, bid);
	if (o == NULL) {
		coord_drv_flight_del(d, gid, bid);
		return;
	}
	o->xa_recovery = true;
	o->phase = commit ? SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING
			  : SETTLE__V1__BRANCH_STATE__XA_BRANCH_ROLLING_BACK;
	snprintf(o->rm, sizeof o->rm, "%s", rm);
	settle_log(SETTLE_LOG_INFO, "xa",
		   "recovery: %s/%u (xid %s) at %s: %s: %s", gid, bid, text, rm,
		   why, commit ? "committing" : "rolling back");
	if (coord_xa_pool_submit(d->xa_pool, rm,
				 commit ? COORD_XA_COMMIT : COORD_XA_ROLLBACK,
				 xid, 0, branch_answered, o) != 0)
		drop(o);
}

static void scan_answered(void *data, const struct coord_xa_answer *a)
{
	struct scan_op *s = data;
	struct coord_driver *d = s->d;
	const struct coord_xa_rm_cfg *rm;
	MDB_txn *txn;

	if (s->epoch != d->epoch || !d->active) {
		free(s);
		return;
	}
	d->xa_scans_running--;
	rm = coord_config_xa_rm(&d->c->cfg, s->rm);
	if (a->rv != 0) {
		if (a->rv != SETTLE_ECANCELED)
			settle_log(SETTLE_LOG_WARN, "xa",
				   "recovery scan of %s (%s) failed: %s", s->rm,
				   coord_config_xa_kind_name(rm ? rm->kind : 0),
				   a->errmsg);
		free(s);
		return;
	}
	d->xa_stats.scans++;
	settle_tracef("xa", "recovery scan of %s: %zu in doubt", s->rm,
		      a->n_xids);
	if (a->n_xids > 0 && store_read_begin(d->c->store, &txn) == 0) {
		for (size_t i = 0; i < a->n_xids && d->active; i++)
			recover_xid(d, txn, s->rm, &a->xids[i]);
		store_read_end(txn);
	}
	free(s);
}

static void start_scans(struct coord_driver *d)
{
	const struct coord_config *cfg = &d->c->cfg;

	for (unsigned i = 0; i < cfg->n_xa_rms; i++) {
		struct scan_op *s = calloc(1, sizeof *s);

		if (s == NULL)
			return;
		s->d = d;
		s->epoch = d->epoch;
		snprintf(s->rm, sizeof s->rm, "%s", cfg->xa_rms[i].name);
		if (coord_xa_pool_submit(d->xa_pool, s->rm, COORD_XA_RECOVER,
					 NULL, cfg->xa_format_id, scan_answered,
					 s) != 0) {
			free(s);
			continue;
		}
		d->xa_scans_running++;
	}
}

void coord_xa_set_active(struct coord_driver *d, bool active)
{
	/* Queued calls were planned by the previous epoch: a new leader
	 * (maybe us again) plans anew from the log. */
	coord_xa_pool_cancel(d->xa_pool);
	d->xa_scans_running = 0;
	d->xa_next_scan_ms = 0;
	if (active && d->xa_pool != NULL)
		d->xa_next_scan_ms =
		    coord_wall_now(d->c); /* at the next tick */
}

void coord_xa_tick(struct coord_driver *d, uint64_t now)
{
	if (d->xa_pool == NULL || !d->active || d->xa_next_scan_ms == 0 ||
	    now < d->xa_next_scan_ms || d->xa_scans_running > 0)
		return;
	d->xa_next_scan_ms = now + d->c->cfg.xa_recover_interval_ms;
	start_scans(d);
}

void coord_xa_stats_get(struct coord *c, struct coord_xa_stats *out)
{
	memset(out, 0, sizeof *out);
	if (c->driver != NULL)
		*out = c->driver->xa_stats;
}

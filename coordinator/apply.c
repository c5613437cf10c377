/*
 * apply.c — the apply stage (apply.h): raft's FSM callback, the store's
 * apply batch and its commits, and where each change of a transaction
 * goes next.
 */
#include <unistd.h>

#include "apply.h"
#include "clock.h"
#include "coord.h"
#include "driver.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "quota.h"
#include "snapshot.h"
#include "waiters.h"

/* Least time between two commits of the apply batch (coord_apply_turn). */
#define COMMIT_EVERY_MS 20

/*
 * Entries are applied into one LMDB write transaction, the store's apply
 * batch, committed here at the end of a loop iteration once COMMIT_EVERY_MS
 * passed since the last commit (an idle loop still turns for the 50 ms
 * tick), and wherever the store must be whole: before a snapshot reads it,
 * before a restore or a prune writes it, at close. The loop thread reads
 * through the open batch; nothing else reads the store before a commit.
 * Committing less often writes each hot page (meta, the tails of the
 * applied log and command tables) once for many iterations instead of
 * once each. A batch that cannot commit has lost applied entries: stop
 * like a failed apply; the raft log replays them at restart.
 */
void coord_commit_applied(struct coord *c)
{
	int rv = store_batch_commit(c->store);

	if (rv == 0)
		return;
	settle_log(SETTLE_LOG_ERROR, "fsm",
		   "commit of applied entries failed: %s (%s); stopping%s",
		   settle_strerror(rv), store_errmsg(c->store),
		   rv == SETTLE_EFULL ? ": restart with a larger --store-budget"
		   : rv == SETTLE_ENOSPACE
		       ? ": free space on the disk, then restart"
		       : "");
	_exit(70);
}

void coord_apply_turn(struct coord *c, uint64_t now)
{
	if (now - c->committed_ms < COMMIT_EVERY_MS)
		return;
	c->committed_ms = now;
	coord_commit_applied(c);
}

static int raft_apply_fsm(struct raft_fsm *rf, const struct raft_buffer *buf,
			  void **result)
{
	struct coord *c = rf->data;
	/* canonical/raft 0.15 sets last_applied right after each entry, and
	 * barriers and configuration entries advance it too, so the entry in
	 * hand is the next one. */
	uint64_t index = raft_last_applied(&c->raft) + 1;
	int rv;

	*result = NULL; /* results are read back from LMDB by cmd_id */
	c->snap.log_bytes += buf->len;
	c->snap.log_entries++;
	if (!c->snap.log_full &&
	    c->snap.log_bytes >= coord_snapshot_log_cap(c)) {
		/* raft holds all of it in memory: a snapshot after this
		 * entry (snapshot_pace() sets the pace again after it). */
		raft_set_snapshot_threshold(&c->raft, 1);
		c->snap.log_full = true;
	}
	/* First, so that an entry in the store is in the journal too. */
	coord_journal_append(c, index, buf->base, buf->len);
	c->fsm.last_wall_ms = 0;
	rv = fsm_apply(&c->fsm, index, buf->base, buf->len, NULL);
	if (rv != 0) {
		/* Only storage failures get here. Applying past a lost
		 * effect would fork this node's state from the others':
		 * stop hard, the log replays everything on restart. */
		settle_log(SETTLE_LOG_ERROR, "fsm",
			   "apply of entry %llu failed: %s (%s); stopping%s",
			   (unsigned long long)index, settle_strerror(rv),
			   c->fsm.errmsg,
			   rv == SETTLE_EFULL
			       ? ": restart with a larger --store-budget"
			   : rv == SETTLE_ENOSPACE
			       ? ": free space on the disk, then restart"
			       : "");
		_exit(70);
	}
	coord_clock_applied(c, c->fsm.last_wall_ms);
	return 0;
}

static void on_tx_change(void *data, const Settle__V1__TxRecord *tx,
			 const struct fsm_was *was)
{
	struct coord *c = data;

	coord_metrics_tx(&c->metrics, tx, was);
	coord_quota_tx(&c->quota, tx);
	coord_waiters_notify(c, tx);
	coord_driver_notify(c, tx);
}

void coord_apply_init(struct coord *c)
{
	c->fsm.on_tx_change = on_tx_change;
	c->fsm.data = c;
	c->fsm.batched = true;
	c->raft_fsm.data = c;
	c->raft_fsm.apply = raft_apply_fsm;
}

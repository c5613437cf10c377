/*
 * driver.c — the phase-2 driver: the leader's loop that moves decided
 * transactions to their end.
 *
 * The schedule is LMDB's `due` index (one row per transaction with the next
 * time the leader must act), so a new leader needs no rebuild: it scans the
 * index it already has. The driver keeps only what is in flight: calls to
 * participants and proposals not yet applied, keyed (gid, branch), so one
 * branch never has two calls at once. Results go through raft before the
 * transaction moves on; nothing here writes state.
 *
 * A change of leadership bumps `epoch`: answers that arrive for an older
 * epoch are dropped, since the new leader (maybe this node again) plans
 * from the applied state.
 *
 * Calling participants and recording their answers is driver_call.c.
 *
 * Answers are recorded in batches once the cluster runs at feature level 2
 * (wal/fsm.h): those that arrive in one turn of the loop wait in `queue`
 * and go into one CmdResults at the start of the next turn (kick_cb), so
 * a busy leader proposes one command for many branches instead of one
 * each. Below level 2, each answer is its own command as before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "driver.h"
#include "coordinator/driver_int.h"
#include "error.h"
#include "log.h"
#include "propose.h"
#include "wal/sm.h"
#include "wal/entry.h"
#include "wal/saga.h"
#include "coordinator/xa.h"
#include "coordinator/xa_pool.h"

#define SCAN_LIMIT  1024
#define HOT_MAX	    4096
#define GC_EVERY_MS 5000
#define GC_LIMIT    1000

/* ---- In-flight set ------------------------------------------------------- */

static size_t flight_hash(const char *gid, uint32_t bid)
{
	uint64_t h = 1469598103934665603ull;

	for (const char *p = gid; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ull;
	h = (h ^ bid) * 1099511628211ull;
	return (size_t)(h % FLIGHT_BUCKETS);
}

static struct flight **flight_find(struct coord_driver *d, const char *gid,
				   uint32_t bid)
{
	struct flight **pp = &d->flights[flight_hash(gid, bid)];

	for (; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->branch_id == bid && strcmp((*pp)->gid, gid) == 0)
			return pp;
	return pp;
}

bool coord_drv_flight_add(struct coord_driver *d, const char *gid, uint32_t bid)
{
	struct flight **pp = flight_find(d, gid, bid);
	struct flight *f;

	if (*pp != NULL)
		return false;
	f = malloc(sizeof *f);
	if (f == NULL)
		return false;
	f->next = NULL;
	f->branch_id = bid;
	wal_gid_copy(f->gid, gid);
	*pp = f;
	d->n_flights++;
	return true;
}

void coord_drv_flight_del(struct coord_driver *d, const char *gid, uint32_t bid)
{
	struct flight **pp = flight_find(d, gid, bid);
	struct flight *f = *pp;

	if (f == NULL)
		return;
	*pp = f->next;
	free(f);
	d->n_flights--;
}

static void flights_clear(struct coord_driver *d)
{
	for (size_t i = 0; i < FLIGHT_BUCKETS; i++) {
		while (d->flights[i] != NULL) {
			struct flight *f = d->flights[i];
			d->flights[i] = f->next;
			free(f);
		}
	}
	d->n_flights = 0;
}

/* ---- Backoff ------------------------------------------------------------- */

/* Capped exponential backoff with jitter: a delay drawn in [d/2, d], where
 * d = base * 2^(attempt-1) capped at max. Jitter keeps retries of many
 * branches against one recovering participant from arriving in lockstep. */
uint64_t coord_drv_backoff_ms(const struct coord_config *cfg, uint32_t attempt,
			      uint32_t base_ms, uint32_t max_ms)
{
	uint64_t base = base_ms != 0 ? base_ms : cfg->retry_base_ms;
	uint64_t max = max_ms != 0 ? max_ms : cfg->retry_max_ms;
	uint64_t d = base;
	uint8_t r[16];
	uint32_t x;

	if (max < base)
		max = base;
	for (uint32_t i = 1; i < attempt && d < max; i++)
		d *= 2;
	if (d > max)
		d = max;
	coord_random_id(r);
	memcpy(&x, r, sizeof x);
	return d / 2 + (d / 2 + 1 > 0 ? x % (d / 2 + 1) : 0);
}

/* ---- Acting on one transaction ------------------------------------------- */

struct op *coord_drv_op_new(struct coord_driver *d, const char *gid,
			    uint32_t bid)
{
	struct op *o = calloc(1, sizeof *o);

	if (o == NULL)
		return NULL;
	o->d = d;
	o->epoch = d->epoch;
	o->branch_id = bid;
	wal_gid_copy(o->gid, gid);
	return o;
}

static void result_applied(struct coord *c, void *data, int err,
			   const Settle__V1__CmdResult *res)
{
	struct op *o = data;
	struct coord_driver *d = o->d;

	(void)c;
	(void)res;
	if (o->epoch == d->epoch) {
		coord_drv_flight_del(d, o->gid, o->branch_id);
		if (err != 0)
			settle_log(SETTLE_LOG_WARN, "driver",
				   "recording a result for %s/%u: %s", o->gid,
				   o->branch_id, settle_strerror(err));
	}
	free(o);
}

void coord_drv_propose(struct coord_driver *d, struct op *o,
		       Settle__V1__Command *cmd)
{
	int rv = coord_propose(d->c, cmd, result_applied, o);

	if (rv != 0) {
		coord_drv_flight_del(d, o->gid, o->branch_id);
		free(o);
	}
}

/* Past its deadline: on the cluster clock, which only this leader's
 * monotonic clock advances (the FSM checks the same against the stamp of
 * the rollback it is sent); a record begun before the cluster clock by
 * the wall clock as before. */
static bool expired(struct coord_driver *d, uint64_t expires_clock_ms,
		    uint64_t deadline_ms, uint64_t now)
{
	if (expires_clock_ms != 0) {
		uint64_t clock = coord_clock_now(d->c);
		return clock != 0 && clock >= expires_clock_ms;
	}
	return deadline_ms <= now;
}

static bool tx_expired(struct coord_driver *d, const Settle__V1__TxRecord *tx,
		       uint64_t now)
{
	return expired(d, tx->expires_clock_ms, tx->deadline_ms, now);
}

static void roll_back_expired(struct coord_driver *d,
			      const Settle__V1__TxRecord *tx)
{
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdDecide op = SETTLE__V1__CMD_DECIDE__INIT;
	struct op *o;

	if (!coord_drv_flight_add(d, tx->gid, 0))
		return;
	o = coord_drv_op_new(d, tx->gid, 0);
	if (o == NULL) {
		coord_drv_flight_del(d, tx->gid, 0);
		return;
	}
	op.gid = tx->gid;
	op.decision = SETTLE__V1__DECISION__DECIDE_ROLLBACK;
	op.reason = "deadline passed";
	op.timeout = true;
	cmd.op_case = SETTLE__V1__COMMAND__OP_DECIDE;
	cmd.decide = &op;
	settle_log_tx(SETTLE_LOG_INFO, "driver", tx->gid, 0,
		      "deadline passed, rolling back");
	coord_drv_propose(d, o, &cmd);
}

/* Most branch ids whose calls all_in_flight() looks up. */
#define IN_FLIGHT_SCAN_MAX 64

/* Whether a call (or its result) is in flight for at least `pending` of
 * branches 1..ids of gid: then nothing of it is due, and act() need not
 * read its branches. Every turn of the scan of `due` finds each
 * transaction whose calls are out. A step called early counts too,
 * which may put a due step off until the result before it is applied. */
static bool all_in_flight(struct coord_driver *d, const char *gid, uint32_t ids,
			  uint32_t pending)
{
	uint32_t n = 0;

	if (pending == 0 || ids > IN_FLIGHT_SCAN_MAX)
		return false;
	for (uint32_t id = 1; id <= ids && n < pending; id++)
		n += *flight_find(d, gid, id) != NULL;
	return n >= pending;
}

/* Read in brief (store_tx_brief_get()), whether nothing of gid is due:
 * it is finished, or every call it waits for is out (a TCC transaction's
 * phase 2 or a running saga's actions) and a running saga's deadline has
 * not come. Not from the FSM's hook: a result being applied keeps its
 * flight until after the entry, though its branch is no longer pending. */
static bool nothing_due(struct coord_driver *d, const char *gid,
			const struct store_tx_brief *t, uint64_t now)
{
	switch (t->state) {
	case SETTLE__V1__TX_STATE__COMMITTING:
	case SETTLE__V1__TX_STATE__ROLLING_BACK:
		return t->mode == SETTLE__V1__TX_MODE__TCC &&
		       all_in_flight(d, gid, t->next_branch_id - 1, t->pending);
	case SETTLE__V1__TX_STATE__SAGA_RUNNING:
		if (t->recovery == SETTLE__V1__SAGA_RECOVERY__BACKWARD &&
		    expired(d, t->expires_clock_ms, t->deadline_ms, now))
			return false;
		return all_in_flight(d, gid, t->branches, t->pending);
	default:
		return wal_tx_state_final(t->state);
	}
}

/* What is due for a saga: actions while it runs, compensations (in the
 * order the FSM released them) once it compensates. The steps are read
 * in brief, and in full only those called. */
static void act_saga(struct coord_driver *d, MDB_txn *txn,
		     const Settle__V1__TxRecord *tx, uint64_t now)
{
	struct store_branch_brief *bs = NULL;
	size_t n = 0;
	bool running = tx->state == SETTLE__V1__TX_STATE__SAGA_RUNNING;

	if (running && tx->recovery == SETTLE__V1__SAGA_RECOVERY__BACKWARD &&
	    tx_expired(d, tx, now)) {
		roll_back_expired(d, tx);
		return;
	}
	if (store_branches_brief_list(d->c->store, txn, tx->gid, &bs, &n) != 0)
		return;
	for (size_t i = 0; i < n && d->active; i++) {
		const struct store_branch_brief *st = &bs[i];
		bool acting =
		    st->state == SETTLE__V1__BRANCH_STATE__STEP_ACTING;
		Settle__V1__BranchRecord *b;

		if (!acting &&
		    st->state != SETTLE__V1__BRANCH_STATE__STEP_COMPENSATING)
			continue;
		if (st->next_retry_ms > now ||
		    *flight_find(d, tx->gid, st->branch_id) != NULL)
			continue;
		if (store_branch_get(d->c->store, txn, tx->gid, st->branch_id,
				     &b) != 0)
			continue;
		if (acting && running)
			coord_drv_call_step(
			    d, b, SETTLE__V1__SAGA_PHASE__PHASE_ACTION, now);
		else if (acting)
			coord_drv_step_not_called(d, b);
		else
			coord_drv_call_step(
			    d, b, SETTLE__V1__SAGA_PHASE__PHASE_COMPENSATE,
			    now);
		settle__v1__branch_record__free_unpacked(b, NULL);
	}
	free(bs);
}

void coord_drv_call_early(struct coord_driver *d, const char *gid,
			  uint32_t step, uint64_t now)
{
	struct coord *c = d->c;
	unsigned max = wal_saga_early_depth(fsm_level(&c->fsm));
	struct store_tx_brief tx;
	struct store_branch_brief b, next;
	Settle__V1__BranchRecord *rec = NULL;
	MDB_txn *txn;

	if (!d->active || max == 0)
		return;
	if (store_read_begin(c->store, &txn) != 0)
		return;
	/* Only while the saga runs: once it compensates, a step it awaits
	 * may answer OK while the steps behind it stay PENDING for good:
	 * those must not be called. Only the next step, and only if it
	 * waits for this one alone (an ordered saga's next step; in a DAG,
	 * others start when released). */
	if (store_tx_brief_get(c->store, txn, gid, &tx) != 0 ||
	    tx.state != SETTLE__V1__TX_STATE__SAGA_RUNNING ||
	    step >= tx.branches)
		goto out;
	if (store_branch_brief_get(c->store, txn, gid, step + 1, &next) != 0 ||
	    next.state != SETTLE__V1__BRANCH_STATE__STEP_PENDING ||
	    next.n_depends_on != 1 || next.depends_on_first != step)
		goto out;
	/* And only as far ahead of the store as the FSM awaits if the saga
	 * compensates (wal/saga.h, "Early calls"): the next step's depth is
	 * 1 + this one's, found by walking back through PENDING steps that
	 * wait for one step each to one the store has ACTING (or DONE). All
	 * brief reads, then the whole record of the step called. */
	for (unsigned at = 1;; at++) {
		if (store_branch_brief_get(c->store, txn, gid, step, &b) != 0)
			goto out;
		if (b.state == SETTLE__V1__BRANCH_STATE__STEP_ACTING ||
		    b.state == SETTLE__V1__BRANCH_STATE__STEP_DONE)
			break;
		if (b.state != SETTLE__V1__BRANCH_STATE__STEP_PENDING ||
		    at >= max || b.n_depends_on != 1 ||
		    b.depends_on_first >= step)
			goto out;
		step = b.depends_on_first;
	}
	if (store_branch_get(c->store, txn, gid, next.branch_id, &rec) == 0) {
		coord_drv_call_step(d, rec,
				    SETTLE__V1__SAGA_PHASE__PHASE_ACTION, now);
		settle__v1__branch_record__free_unpacked(rec, NULL);
	}
out:
	store_read_end(txn);
}

/* Do what is due for gid now. */
static void act(struct coord_driver *d, MDB_txn *txn, const char *gid,
		uint64_t now)
{
	struct coord *c = d->c;
	Settle__V1__TxRecord *tx = NULL;
	Settle__V1__BranchRecord **bs = NULL;
	size_t n = 0;
	struct store_tx_brief brief;
	int phase;

	/* Most changes a leader hears of leave nothing to do: the brief
	 * says so for a tenth of the full read. */
	if (store_tx_brief_get(c->store, txn, gid, &brief) != 0 ||
	    nothing_due(d, gid, &brief, now))
		return;
	if (store_tx_get(c->store, txn, gid, &tx) != 0)
		return;
	switch (tx->state) {
	case SETTLE__V1__TX_STATE__ACTIVE:
		if (tx_expired(d, tx, now))
			roll_back_expired(d, tx);
		goto out;
	case SETTLE__V1__TX_STATE__COMMITTING:
		phase = SETTLE__V1__BRANCH_STATE__CONFIRMING;
		break;
	case SETTLE__V1__TX_STATE__ROLLING_BACK:
		phase = SETTLE__V1__BRANCH_STATE__CANCELLING;
		break;
	case SETTLE__V1__TX_STATE__SAGA_RUNNING:
	case SETTLE__V1__TX_STATE__SAGA_COMPENSATING:
		act_saga(d, txn, tx, now);
		goto out;
	case SETTLE__V1__TX_STATE__XA_PREPARED:
		/* Prepared for a legacy TM (an xid): in doubt, only the TM
		 * decides. Prepared by an initiator: its deadline stands
		 * (presumed abort). */
		if (tx->xid.len == 0 && tx_expired(d, tx, now))
			roll_back_expired(d, tx);
		goto out;
	default:
		goto out;
	}
	if (store_branches_list(c->store, txn, gid, &bs, &n) != 0)
		goto out;
	/* Branches are called in parallel: each has its own call. An XA
	 * transaction may hold RM branches and TCC branches side by side. */
	for (size_t i = 0; i < n && d->active; i++) {
		const Settle__V1__BranchRecord *b = bs[i];

		if (b->next_retry_ms > now)
			continue;
		if ((int)b->state == phase)
			coord_drv_call_branch(d, tx, b, phase, now);
		else if (b->state ==
			     SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING ||
			 b->state ==
			     SETTLE__V1__BRANCH_STATE__XA_BRANCH_ROLLING_BACK)
			coord_xa_drive_branch(d, tx, b, now);
		else if (b->state ==
			     SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE &&
			 b->updated_ms + COORD_XA_ONE_PHASE_GRACE_MS <= now)
			coord_xa_one_phase_expired(d, b);
	}
	store_branches_free(bs, n);
out:
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

struct scan {
	char (*gids)[WAL_GID_MAX + 1];
	size_t n;
};

static int collect(void *data, const char *gid, uint64_t due_ms)
{
	struct scan *s = data;

	(void)due_ms;
	wal_gid_copy(s->gids[s->n++], gid);
	return 0;
}

static void scan_due(struct coord_driver *d, uint64_t now)
{
	struct coord *c = d->c;
	struct scan s;
	MDB_txn *txn;

	s.gids = malloc(SCAN_LIMIT * sizeof *s.gids);
	s.n = 0;
	if (s.gids == NULL)
		return;
	if (store_read_begin(c->store, &txn) == 0) {
		store_due_scan(c->store, txn, now, SCAN_LIMIT, collect, &s);
		for (size_t i = 0; i < s.n && d->active; i++)
			act(d, txn, s.gids[i], now);
		store_read_end(txn);
	}
	free(s.gids);
}

static void gc_applied(struct coord *c, void *data, int err,
		       const Settle__V1__CmdResult *res)
{
	struct coord_driver *d = data;

	(void)c;
	d->gc_in_flight = false;
	/* A full batch: more has expired than one command takes. Go on at
	 * the next tick instead of GC_EVERY_MS later, or a load faster than
	 * GC_LIMIT per GC_EVERY_MS outgrows retention (and the budget). */
	if (err == 0 && res != NULL &&
	    (res->deleted >= GC_LIMIT || res->deleted_cmds >= GC_LIMIT))
		d->last_gc_ms = 0;
}

static void maybe_gc(struct coord_driver *d, uint64_t now)
{
	struct coord *c = d->c;
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdGc op = SETTLE__V1__CMD_GC__INIT;
	uint64_t oldest = 0, oldest_cmd = 0;
	uint64_t before = now - c->cfg.retention_ms;

	if (d->gc_in_flight || now < d->last_gc_ms + GC_EVERY_MS ||
	    now < c->cfg.retention_ms)
		return;
	d->last_gc_ms = now;
	/* Two cursor seeks, so an idle leader proposes nothing. Command ids
	 * expire on their own: the driver's results keep theirs after the
	 * transaction is gone, refused commands never had one. */
	if (store_finished_min(c->store, NULL, &oldest) != 0 ||
	    store_cmd_min(c->store, NULL, &oldest_cmd) != 0)
		return;
	if ((oldest == 0 || oldest >= before) &&
	    (oldest_cmd == 0 || oldest_cmd >= before))
		return;
	op.finished_before_ms = before;
	op.limit = GC_LIMIT;
	cmd.op_case = SETTLE__V1__COMMAND__OP_GC;
	cmd.gc = &op;
	if (coord_propose(c, &cmd, gc_applied, d) == 0)
		d->gc_in_flight = true;
}

/* ---- Scheduling ---------------------------------------------------------- */

static void kick_cb(uv_timer_t *t)
{
	struct coord_driver *d = t->data;
	struct coord *c = d->c;
	uint64_t now = coord_wall_now(c);
	MDB_txn *txn;

	d->kick_armed = false;
	if (!d->active) {
		d->n_hot = 0;
		coord_drv_queue_drop(d);
		return;
	}
	/* The answers of the last turn, before acting on more. */
	coord_drv_queue_flush(d);
	if (store_read_begin(c->store, &txn) != 0)
		return;
	for (size_t i = 0; i < d->n_hot && d->active; i++)
		act(d, txn, d->hot[i], now);
	d->n_hot = 0;
	store_read_end(txn);
}

/* Act on the transactions whose cluster-clock deadline came. */
static void expire_due(struct coord_driver *d, uint64_t now)
{
	uint64_t clock = coord_clock_now(d->c);
	char gid[WAL_GID_MAX + 1];
	MDB_txn *txn;

	if (clock == 0 || d->n_exp == 0 || d->exp[0].at > clock)
		return;
	if (store_read_begin(d->c->store, &txn) != 0)
		return;
	while (d->active && coord_drv_expiry_pop(d, clock, gid))
		act(d, txn, gid, now);
	store_read_end(txn);
}

void coord_drv_kick(struct coord_driver *d)
{
	if (d->kick_armed)
		return;
	d->kick_armed = true;
	uv_timer_start(&d->kick, kick_cb, 0, 0);
}

void coord_driver_notify(struct coord *c, const Settle__V1__TxRecord *tx)
{
	struct coord_driver *d = c->driver;

	if (d == NULL || !d->active)
		return;
	/* Its begin (the first event is the only one): schedule its
	 * deadline. Later changes need nothing, see expiry.c. */
	if (tx->next_event_seq == 2 && coord_drv_can_expire(tx) &&
	    coord_drv_expiry_add(d, tx->gid, tx->expires_clock_ms) != 0)
		settle_log_tx(SETTLE_LOG_WARN, "driver", tx->gid, 0,
			      "no memory to schedule its deadline; the scan "
			      "of `due` will find it");
	if (tx->due_ms == 0 || tx->due_ms > coord_wall_now(c))
		return;
	/* Called from inside the FSM apply: only note the gid and act from
	 * the loop, outside raft's apply path. A full hot list is fine: the
	 * periodic scan picks the rest up. */
	if (d->n_hot < HOT_MAX)
		wal_gid_copy(d->hot[d->n_hot++], tx->gid);
	coord_drv_kick(d);
}

void coord_driver_set_active(struct coord *c, bool active)
{
	struct coord_driver *d = c->driver;

	coord_clock_stop(c);
	if (d == NULL)
		return;
	d->epoch++;
	d->active = false;
	coord_drv_expiry_clear(d);
	d->n_hot = 0;
	coord_drv_queue_drop(d);
	flights_clear(d);
	coord_drv_participants_close(d);
	d->gc_in_flight = false;
	coord_xa_set_active(d, false);
	if (!active)
		return;
	/* The barrier of this term is applied: everything committed before
	 * it is in LMDB, so plans made from here on see every decision. */
	d->active = true;
	d->active_since_index = raft_last_applied(&c->raft);
	d->active_since_ms = coord_wall_now(c);
	/* Every deadline counts on from the highest cluster clock applied,
	 * on this node's monotonic clock: never the wall clock's offset
	 * from the leader before, and never more than the timeout. */
	coord_clock_start(c);
	coord_drv_expiry_load(d);
	settle_log(SETTLE_LOG_INFO, "driver",
		   "resuming phase 2 as leader (cluster clock %llu, %zu "
		   "deadlines)",
		   (unsigned long long)coord_clock_now(c), d->n_exp);
	scan_due(d, coord_wall_now(c));
	coord_xa_set_active(d, true);
}

void coord_driver_tick(struct coord *c)
{
	struct coord_driver *d = c->driver;
	uint64_t now = coord_wall_now(c);

	if (d == NULL || !d->active)
		return;
	expire_due(d, now);
	scan_due(d, now);
	maybe_gc(d, now);
	/* The cluster clock in the log matters only to transactions that
	 * can expire: an idle cluster appends nothing. */
	coord_drv_clock_entry(d);
	coord_xa_tick(d, now);
}

int coord_driver_init(struct coord *c)
{
	struct coord_driver *d = calloc(1, sizeof *d);

	if (d == NULL)
		return SETTLE_ENOMEM;
	d->hot = malloc(HOT_MAX * sizeof *d->hot);
	if (d->hot == NULL) {
		free(d);
		return SETTLE_ENOMEM;
	}
	d->c = c;
	if (c->cfg.n_xa_rms > 0) {
		int rv = coord_xa_pool_init(c->loop, &c->cfg, &d->xa_pool);

		if (rv != 0) {
			free(d->hot);
			free(d);
			return rv;
		}
		for (unsigned i = 0; i < c->cfg.n_xa_rms; i++)
			settle_log(
			    SETTLE_LOG_INFO, "xa", "resource manager %s (%s)",
			    c->cfg.xa_rms[i].name,
			    coord_config_xa_kind_name(c->cfg.xa_rms[i].kind));
	}
	uv_timer_init(c->loop, &d->kick);
	d->kick.data = d;
	c->driver = d;
	return 0;
}

static void driver_closed(uv_handle_t *h)
{
	struct coord_driver *d = h->data;

	free(d->queue);
	free(d->hot);
	free(d);
}

void coord_driver_tls_changed(struct coord *c)
{
	if (c->driver != NULL)
		coord_drv_participants_close(c->driver);
}

void coord_driver_close(struct coord *c)
{
	struct coord_driver *d = c->driver;

	if (d == NULL)
		return;
	c->driver = NULL;
	d->active = false;
	d->epoch++;
	coord_drv_queue_drop(d);
	flights_clear(d);
	coord_drv_participants_close(d);
	coord_drv_expiry_clear(d);
	/* Answers every RM call still queued or running now (they are
	 * dropped: a new leader plans from the log); the pool itself goes
	 * once its workers are back. */
	coord_xa_pool_close(d->xa_pool);
	d->xa_pool = NULL;
	uv_close((uv_handle_t *)&d->kick, driver_closed);
}

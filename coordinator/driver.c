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
 * Answers are recorded in batches once the cluster runs at feature level 2
 * (wal/fsm.h): those that arrive in one turn of the loop wait in `queue`
 * and go into one CmdResults at the start of the next turn (kick_cb), so
 * a busy leader proposes one command for many branches instead of one
 * each. Below level 2, each answer is its own command as before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "error.h"
#include "log.h"
#include "coordinator/driver_int.h"
#include "coordinator/xa.h"
#include "coordinator/xa_pool.h"
#include "wal/entry.h"

#define SCAN_LIMIT  1024
#define HOT_MAX	    4096
#define GC_EVERY_MS 5000
#define GC_LIMIT    1000
/* Answers in one CmdResults (at most WAL_RESULTS_MAX). */
#define RESULTS_PER_CMD 256

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
	snprintf(f->gid, sizeof f->gid, "%s", gid);
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

/* ---- Participants -------------------------------------------------------- */

static struct rpc_client *participant_get(struct coord_driver *d,
					  const char *endpoint)
{
	struct participant *p;

	for (p = d->participants; p != NULL; p = p->next)
		if (strcmp(rpc_client_endpoint(p->client), endpoint) == 0)
			return p->client;
	p = calloc(1, sizeof *p);
	if (p == NULL)
		return NULL;
	if (rpc_client_init(d->c->loop, endpoint, NULL, &p->client) != 0) {
		free(p);
		return NULL;
	}
	p->next = d->participants;
	d->participants = p;
	return p->client;
}

static void participants_close(struct coord_driver *d)
{
	while (d->participants != NULL) {
		struct participant *p = d->participants;
		d->participants = p->next;
		rpc_client_close(p->client);
		free(p);
	}
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
	snprintf(o->gid, sizeof o->gid, "%s", gid);
	return o;
}

static void kick(struct coord_driver *d);

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

/* ---- Recording answers --------------------------------------------------- */

static void queue_drop(struct coord_driver *d)
{
	for (size_t i = 0; i < d->n_queue; i++)
		free(d->queue[i]);
	d->n_queue = 0;
}

/* A CmdResults: the ops whose answers it carries. */
struct batch {
	struct coord_driver *d;
	uint64_t epoch;
	size_t n;
	struct op *ops[];
};

static void batch_applied(struct coord *c, void *data, int err,
			  const Settle__V1__CmdResult *res)
{
	struct batch *b = data;
	struct coord_driver *d = b->d;

	(void)c;
	(void)res;
	if (b->epoch == d->epoch && err != 0)
		settle_log(SETTLE_LOG_WARN, "driver",
			   "recording %zu answers: %s; the scan of `due` "
			   "calls those branches again",
			   b->n, settle_strerror(err));
	for (size_t i = 0; i < b->n; i++) {
		if (b->epoch == d->epoch)
			coord_drv_flight_del(d, b->ops[i]->gid,
					     b->ops[i]->branch_id);
		free(b->ops[i]);
	}
	free(b);
}

/* Propose the queued answers as one CmdResults. */
static void queue_flush(struct coord_driver *d)
{
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdResults r = SETTLE__V1__CMD_RESULTS__INIT;
	Settle__V1__CmdBranchResult *br[RESULTS_PER_CMD];
	Settle__V1__CmdStepResult *sr[RESULTS_PER_CMD];
	size_t n = d->n_queue;
	struct batch *b;

	if (n == 0)
		return;
	b = malloc(sizeof *b + n * sizeof b->ops[0]);
	if (b == NULL) {
		/* Their branches stay in phase: the scan calls them again. */
		for (size_t i = 0; i < n; i++)
			coord_drv_flight_del(d, d->queue[i]->gid,
					     d->queue[i]->branch_id);
		queue_drop(d);
		return;
	}
	b->d = d;
	b->epoch = d->epoch;
	b->n = n;
	memcpy(b->ops, d->queue, n * sizeof b->ops[0]);
	d->n_queue = 0;
	for (size_t i = 0; i < n; i++) {
		if (b->ops[i]->saga)
			sr[r.n_steps++] = &b->ops[i]->sr;
		else
			br[r.n_branches++] = &b->ops[i]->br;
	}
	r.branches = br;
	r.steps = sr;
	cmd.time_ms = coord_wall_now(d->c);
	cmd.op_case = SETTLE__V1__COMMAND__OP_RESULTS;
	cmd.results = &r;
	int rv = coord_propose(d->c, &cmd, batch_applied, b);
	if (rv != 0)
		batch_applied(d->c, b, rv, NULL);
}

/* Record o's answer (o->br or o->sr): in the next CmdResults, or below
 * feature level 2 as a command of its own. o is freed once applied. */
static void record_result(struct coord_driver *d, struct op *o)
{
	if (fsm_level(&d->c->fsm) < FSM_LEVEL_BATCH) {
		Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;

		cmd.time_ms = coord_wall_now(d->c);
		if (o->saga) {
			cmd.op_case = SETTLE__V1__COMMAND__OP_STEP_RESULT;
			cmd.step_result = &o->sr;
		} else {
			cmd.op_case = SETTLE__V1__COMMAND__OP_BRANCH_RESULT;
			cmd.branch_result = &o->br;
		}
		coord_drv_propose(d, o, &cmd);
		return;
	}
	if (d->n_queue == d->cap_queue) {
		size_t cap = d->cap_queue != 0 ? d->cap_queue * 2 : 64;
		struct op **q = realloc(d->queue, cap * sizeof *q);

		if (q == NULL) {
			coord_drv_flight_del(d, o->gid, o->branch_id);
			free(o);
			return;
		}
		d->queue = q;
		d->cap_queue = cap;
	}
	d->queue[d->n_queue++] = o;
	if (d->n_queue >= RESULTS_PER_CMD)
		queue_flush(d);
	else
		kick(d);
}

/* A saga step's participant answered (or the call failed). */
static void step_answered(struct op *o, const struct rpc_result *res)
{
	struct coord_driver *d = o->d;
	Settle__V1__CmdStepResult *sr = &o->sr;
	uint64_t now = coord_wall_now(d->c);

	settle__v1__cmd_step_result__init(sr);
	sr->gid = o->gid;
	sr->step = o->branch_id;
	sr->phase = o->phase;
	sr->attempt = o->attempt;
	o->err[0] = '\0';
	if (res->err == 0) {
		sr->outcome = SETTLE__V1__OUTCOME__OUTCOME_OK;
	} else if (res->err == SETTLE_EFAILURE ||
		   (res->err == SETTLE_EREFUSED &&
		    o->phase == SETTLE__V1__SAGA_PHASE__PHASE_ACTION)) {
		/* REFUSED from an Action: its Compensate already ran there,
		 * so the action never took effect. */
		sr->outcome = SETTLE__V1__OUTCOME__OUTCOME_FAILURE;
		snprintf(o->err, sizeof o->err, "%s",
			 res->msg[0] != '\0' ? res->msg : "business failure");
	} else {
		sr->outcome = SETTLE__V1__OUTCOME__OUTCOME_RETRY;
		sr->next_retry_ms =
		    now + coord_drv_backoff_ms(&d->c->cfg, o->attempt,
					       o->retry_base_ms,
					       o->retry_max_ms);
		snprintf(o->err, sizeof o->err, "%s%s%s",
			 settle_errname(res->err),
			 res->msg[0] != '\0' ? ": " : "", res->msg);
	}
	sr->error = o->err;
	settle_tracef("driver", "%s/%u %s attempt %u: %s", o->gid, o->branch_id,
		      o->phase == SETTLE__V1__SAGA_PHASE__PHASE_ACTION
			  ? "action"
			  : "compensate",
		      o->attempt, res->err == 0 ? "ok" : o->err);
	record_result(d, o);
}

static void participant_answered(void *data, const struct rpc_result *res)
{
	struct op *o = data;
	struct coord_driver *d = o->d;
	Settle__V1__CmdBranchResult *br = &o->br;
	uint64_t now = coord_wall_now(d->c);

	if (o->epoch != d->epoch || !d->active) {
		free(o);
		return;
	}
	if (o->saga) {
		step_answered(o, res);
		return;
	}
	settle__v1__cmd_branch_result__init(br);
	br->gid = o->gid;
	br->branch_id = o->branch_id;
	br->phase = o->phase;
	br->attempt = o->attempt;
	o->err[0] = '\0';
	if (res->err == 0) {
		br->outcome = SETTLE__V1__OUTCOME__OUTCOME_OK;
	} else if (res->err == SETTLE_EFAILURE) {
		br->outcome = SETTLE__V1__OUTCOME__OUTCOME_FAILURE;
		snprintf(o->err, sizeof o->err, "%s",
			 res->msg[0] != '\0' ? res->msg : "business failure");
	} else {
		br->outcome = SETTLE__V1__OUTCOME__OUTCOME_RETRY;
		br->next_retry_ms =
		    now + coord_drv_backoff_ms(&d->c->cfg, o->attempt, 0, 0);
		snprintf(o->err, sizeof o->err, "%s%s%s",
			 settle_errname(res->err),
			 res->msg[0] != '\0' ? ": " : "", res->msg);
	}
	br->error = o->err;
	settle_tracef("driver", "%s/%u attempt %u: %s", o->gid, o->branch_id,
		      o->attempt, res->err == 0 ? "ok" : o->err);
	record_result(d, o);
}

static void call_branch(struct coord_driver *d, const Settle__V1__TxRecord *tx,
			const Settle__V1__BranchRecord *b, int phase,
			uint64_t now)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	struct rpc_client *client;
	struct op *o;
	uint32_t timeout = d->c->cfg.call_timeout_ms;
	int rv;

	if (!coord_drv_flight_add(d, b->gid, b->branch_id))
		return;
	o = coord_drv_op_new(d, b->gid, b->branch_id);
	if (o == NULL) {
		coord_drv_flight_del(d, b->gid, b->branch_id);
		return;
	}
	o->phase = phase;
	o->attempt = b->attempts + 1;
	client = participant_get(d, b->endpoint);
	req.gid = b->gid;
	req.branch_id = b->branch_id;
	req.resource = b->resource;
	req.payload = b->payload;
	req.attempt = o->attempt;
	req.deadline_ms = now + timeout;
	/* A legacy TM's transaction: its participants see its XID. */
	req.xid = tx->xid;
	rv = client == NULL
		 ? SETTLE_ENOMEM
		 : rpc_client_call(client,
				   phase == SETTLE__V1__BRANCH_STATE__CONFIRMING
				       ? SETTLE__V1__METHOD__CONFIRM
				       : SETTLE__V1__METHOD__CANCEL,
				   &req.base, timeout, participant_answered, o);
	if (rv != 0) {
		/* Record it as a failed attempt so it is retried later. */
		struct rpc_result r = {.err = rv, .msg = "", .leader = ""};
		participant_answered(o, &r);
	}
}

/* Past its deadline: on the cluster clock, which only this leader's
 * monotonic clock advances (the FSM checks the same against the stamp of
 * the rollback it is sent); a record begun before the cluster clock by
 * the wall clock as before. */
static bool tx_expired(struct coord_driver *d, const Settle__V1__TxRecord *tx,
		       uint64_t now)
{
	if (tx->expires_clock_ms != 0) {
		uint64_t clock = coord_clock_now(d->c);
		return clock != 0 && clock >= tx->expires_clock_ms;
	}
	return tx->deadline_ms <= now;
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
	settle_log(SETTLE_LOG_INFO, "driver",
		   "%s: deadline passed, rolling back", tx->gid);
	coord_drv_propose(d, o, &cmd);
}

/* Call a saga step's ACTION or COMPENSATE (phase is a SagaPhase). */
static void call_step(struct coord_driver *d, const Settle__V1__BranchRecord *b,
		      int phase, uint64_t now)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	struct rpc_client *client;
	struct op *o;
	uint32_t timeout = b->call_timeout_ms != 0 ? b->call_timeout_ms
						   : d->c->cfg.call_timeout_ms;
	bool action = phase == SETTLE__V1__SAGA_PHASE__PHASE_ACTION;
	int rv;

	if (!coord_drv_flight_add(d, b->gid, b->branch_id))
		return;
	o = coord_drv_op_new(d, b->gid, b->branch_id);
	if (o == NULL) {
		coord_drv_flight_del(d, b->gid, b->branch_id);
		return;
	}
	o->saga = true;
	o->phase = phase;
	o->attempt = b->attempts + 1;
	o->retry_base_ms = b->retry_base_ms;
	o->retry_max_ms = b->retry_max_ms;
	client = participant_get(d, b->endpoint);
	req.gid = b->gid;
	req.branch_id = b->branch_id;
	req.resource = b->name;
	req.payload = action ? b->payload : b->compensate_payload;
	req.attempt = o->attempt;
	req.deadline_ms = now + timeout;
	rv = client == NULL
		 ? SETTLE_ENOMEM
		 : rpc_client_call(client,
				   action ? SETTLE__V1__METHOD__ACTION
					  : SETTLE__V1__METHOD__COMPENSATE,
				   &req.base, timeout, participant_answered, o);
	if (rv != 0) {
		struct rpc_result r = {.err = rv, .msg = "", .leader = ""};
		participant_answered(o, &r);
	}
}

/* While a saga compensates, an action step still marked ACTING with no
 * call in flight was never (re)called: say so, so the FSM can settle it
 * and go on compensating. */
static void settle_uncalled_action(struct coord_driver *d,
				   const Settle__V1__BranchRecord *b)
{
	struct rpc_result r = {.err = SETTLE_ECANCELED,
			       .msg = "not called: the saga is compensating",
			       .leader = ""};
	struct op *o;

	if (!coord_drv_flight_add(d, b->gid, b->branch_id))
		return;
	o = coord_drv_op_new(d, b->gid, b->branch_id);
	if (o == NULL) {
		coord_drv_flight_del(d, b->gid, b->branch_id);
		return;
	}
	o->saga = true;
	o->phase = SETTLE__V1__SAGA_PHASE__PHASE_ACTION;
	o->attempt = b->attempts;
	o->retry_base_ms = b->retry_base_ms;
	o->retry_max_ms = b->retry_max_ms;
	step_answered(o, &r);
}

/* What is due for a saga: actions while it runs, compensations (in the
 * order the FSM released them) once it compensates. */
static void act_saga(struct coord_driver *d, MDB_txn *txn,
		     const Settle__V1__TxRecord *tx, uint64_t now)
{
	Settle__V1__BranchRecord **bs = NULL;
	size_t n = 0;
	bool running = tx->state == SETTLE__V1__TX_STATE__SAGA_RUNNING;

	if (running && tx->recovery == SETTLE__V1__SAGA_RECOVERY__BACKWARD &&
	    tx_expired(d, tx, now)) {
		roll_back_expired(d, tx);
		return;
	}
	if (store_branches_list(d->c->store, txn, tx->gid, &bs, &n) != 0)
		return;
	for (size_t i = 0; i < n && d->active; i++) {
		const Settle__V1__BranchRecord *b = bs[i];

		if (b->next_retry_ms > now)
			continue;
		if (b->state == SETTLE__V1__BRANCH_STATE__STEP_ACTING) {
			if (running)
				call_step(d, b,
					  SETTLE__V1__SAGA_PHASE__PHASE_ACTION,
					  now);
			else
				settle_uncalled_action(d, b);
		} else if (b->state ==
			   SETTLE__V1__BRANCH_STATE__STEP_COMPENSATING) {
			call_step(d, b,
				  SETTLE__V1__SAGA_PHASE__PHASE_COMPENSATE,
				  now);
		}
	}
	store_branches_free(bs, n);
}

/* Do what is due for gid now. */
static void act(struct coord_driver *d, MDB_txn *txn, const char *gid,
		uint64_t now)
{
	struct coord *c = d->c;
	Settle__V1__TxRecord *tx = NULL;
	Settle__V1__BranchRecord **bs = NULL;
	size_t n = 0;
	int phase;

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
			call_branch(d, tx, b, phase, now);
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
	snprintf(s->gids[s->n++], WAL_GID_MAX + 1, "%s", gid);
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
		queue_drop(d);
		return;
	}
	/* The answers of the last turn, before acting on more. */
	queue_flush(d);
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

static void kick(struct coord_driver *d)
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
		settle_log(SETTLE_LOG_WARN, "driver",
			   "%s: no memory to schedule its deadline; the scan "
			   "of `due` will find it",
			   tx->gid);
	if (tx->due_ms == 0 || tx->due_ms > coord_wall_now(c))
		return;
	/* Called from inside the FSM apply: only note the gid and act from
	 * the loop, outside raft's apply path. A full hot list is fine: the
	 * periodic scan picks the rest up. */
	if (d->n_hot < HOT_MAX)
		snprintf(d->hot[d->n_hot++], WAL_GID_MAX + 1, "%s", tx->gid);
	kick(d);
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
	queue_drop(d);
	flights_clear(d);
	participants_close(d);
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
	if (coord_clock_idle(c) && coord_drv_expiry_pending(d))
		coord_clock_tick(c);
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

void coord_driver_close(struct coord *c)
{
	struct coord_driver *d = c->driver;

	if (d == NULL)
		return;
	c->driver = NULL;
	d->active = false;
	d->epoch++;
	queue_drop(d);
	flights_clear(d);
	participants_close(d);
	coord_drv_expiry_clear(d);
	/* Answers every RM call still queued or running now (they are
	 * dropped: a new leader plans from the log); the pool itself goes
	 * once its workers are back. */
	coord_xa_pool_close(d->xa_pool);
	d->xa_pool = NULL;
	uv_close((uv_handle_t *)&d->kick, driver_closed);
}

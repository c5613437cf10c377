/*
 * bench_async.c — settle-bench's TCC and saga initiators on libsettle's
 * asynchronous client (settle_async.h): one loop thread keeps
 * --concurrency transactions in flight over one connection to the leader
 * and one to the participant, where the blocking client needs a thread and
 * a connection per transaction (--client sync, bench.c).
 *
 * A slot is one transaction in flight. TCC: Begin with the branches
 * declared, TRY each branch on the participant (all at once), then Commit
 * (Rollback for --rollback-ratio, or after a failed TRY) waiting for phase
 * two. Saga: SubmitSaga, then wait until it is final. A tick every
 * millisecond fills free slots: at once in a closed loop, on the --rate
 * schedule in an open one (a transaction due while every slot is busy
 * waits for one, and its latency still counts from when it was due).
 * TCC transactions that end also add the time of their three phases to
 * the worker (begin: from when it was due; try; commit: the decision and
 * phase two), so a run shows which one grows with load.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "settle_async.h"

struct atx {
	struct arun *run;
	struct atx *next_free;
	uint64_t t0; /* monotonic us it was due (started) */
	char gid[SETTLE_GID_BUFSIZE];
	uint32_t ids[BENCH_MAX_BRANCHES];
	unsigned tries_left;
	bool rollback;
	uint64_t t_phase; /* monotonic us the current phase began */
};

struct arun {
	struct bench *b;
	struct bench_worker *w;
	uv_loop_t loop;
	settle_async *c;
	uv_timer_t tick;
	struct atx *slots;
	struct atx *free;
	unsigned inflight;
	uint64_t k; /* open loop: the next transaction of the schedule */
	bool over;  /* no more starts */
};

static const uint8_t payload[16] = "bench-payload-01";

static void pump(struct arun *run);

static void tx_end(struct atx *tx)
{
	struct arun *run = tx->run;

	tx->next_free = run->free;
	run->free = tx;
	run->inflight--;
	pump(run);
}

static void tx_error(struct atx *tx, const char *what, const char *msg)
{
	bench_fail(tx->run->w, "%s: %s", what, msg);
	tx_end(tx);
}

static void on_decided(void *data, const struct settle_async_result *r)
{
	struct atx *tx = data;
	struct bench_worker *w = tx->run->w;

	if (r->err != 0) {
		/* The text names the call: "commit: ...", "wait: ...". */
		bench_fail(w, "%s", r->errmsg);
		tx_end(tx);
		return;
	}
	if (!r->finished) {
		bench_fail(w, "%s: phase two not finished after 30 s", tx->gid);
		tx_end(tx);
		return;
	}
	if (tx->run->b->mode == BENCH_TCC)
		w->phase_us[BENCH_PH_COMMIT] += bench_mono_us() - tx->t_phase;
	bench_record(w, tx->t0);
	if (r->state == SETTLE__V1__TX_STATE__COMMITTED ||
	    r->state == SETTLE__V1__TX_STATE__SAGA_SUCCEEDED)
		w->committed++;
	else
		w->aborted++;
	tx_end(tx);
}

static void decide(struct atx *tx)
{
	struct arun *run = tx->run;
	int rv = tx->rollback ? settle_async_rollback(run->c, tx->gid, "bench",
						      30000, on_decided, tx)
			      : settle_async_commit(run->c, tx->gid, 30000,
						    on_decided, tx);

	if (rv != 0)
		tx_error(tx, tx->rollback ? "rollback" : "commit",
			 settle_async_errmsg(run->c));
}

static void on_try(void *data, const struct settle_async_result *r)
{
	struct atx *tx = data;

	if (r->err != 0) {
		bench_fail(tx->run->w, "try: %s", r->errmsg);
		/* A failed Try means rollback, as a real initiator does. */
		tx->rollback = true;
	}
	if (--tx->tries_left == 0) {
		uint64_t now = bench_mono_us();

		tx->run->w->phase_us[BENCH_PH_PREPARE] += now - tx->t_phase;
		tx->t_phase = now;
		decide(tx);
	}
}

static void on_begun(void *data, const struct settle_async_result *r)
{
	struct atx *tx = data;
	struct arun *run = tx->run;
	unsigned k, n = run->b->branches;
	char resource[8];

	if (r->err != 0) {
		tx_error(tx, "begin", r->errmsg);
		return;
	}
	tx->t_phase = bench_mono_us();
	run->w->phase_us[BENCH_PH_BEGIN] += tx->t_phase - tx->t0;
	snprintf(tx->gid, sizeof(tx->gid), "%s", r->gid);
	memcpy(tx->ids, r->branch_ids, n * sizeof(tx->ids[0]));
	tx->tries_left = n;
	for (k = 0; k < n; k++) {
		Settle__V1__BranchRequest req =
		    SETTLE__V1__BRANCH_REQUEST__INIT;
		snprintf(resource, sizeof(resource), "r%u", k);
		req.gid = tx->gid;
		req.branch_id = tx->ids[k];
		req.resource = resource;
		req.payload.data = (uint8_t *)payload;
		req.payload.len = sizeof(payload);
		req.attempt = 1;
		if (settle_async_call_at(run->c, run->b->participant,
					 SETTLE__V1__METHOD__TRY, &req.base,
					 on_try, tx) != 0) {
			bench_fail(run->w, "try: %s",
				   settle_async_errmsg(run->c));
			tx->rollback = true;
			/* The calls already out still answer: the last
			 * one decides. None out: decide now. */
			tx->tries_left -= n - k;
			if (tx->tries_left == 0)
				decide(tx);
			return;
		}
	}
}

static void on_waited(void *data, const struct settle_async_result *r)
{
	on_decided(data, r);
}

static void on_submitted(void *data, const struct settle_async_result *r)
{
	struct atx *tx = data;

	if (r->err != 0) {
		tx_error(tx, "submit saga", r->errmsg);
		return;
	}
	snprintf(tx->gid, sizeof(tx->gid), "%s", r->gid);
	if (settle_async_wait(tx->run->c, tx->gid, 30000, on_waited, tx) != 0)
		tx_error(tx, "wait", settle_async_errmsg(tx->run->c));
}

/* Start one transaction due at t0 in a free slot: false if it could not
 * start (counted; the slot stays free). */
static bool tx_start(struct arun *run, uint64_t t0)
{
	struct bench *b = run->b;
	struct atx *tx = run->free;
	struct bench_worker *w = run->w;
	unsigned n = b->branches;
	char gidbuf[33];
	int rv;

	run->free = tx->next_free;
	run->inflight++;
	tx->t0 = t0;
	tx->rollback = b->rollback_ratio > 0 &&
		       (double)rand_r(&w->seed) / RAND_MAX < b->rollback_ratio;
	if (b->mode == BENCH_SAGA) {
		struct settle_saga_step steps[BENCH_MAX_BRANCHES];
		char names[BENCH_MAX_BRANCHES][8];

		bench_saga_steps(b, tx->rollback, steps, names);
		tx->rollback = false; /* the saga decides, not the bench */
		rv = settle_async_submit_saga(run->c, bench_gid(b, gidbuf),
					      NULL, steps, n, on_submitted, tx);
	} else {
		struct settle_branch_decl d[BENCH_MAX_BRANCHES];
		char resource[BENCH_MAX_BRANCHES][8];

		bench_decls(b, payload, sizeof(payload), d, resource);
		rv = settle_async_begin(run->c, bench_gid(b, gidbuf), 30000, d,
					n, on_begun, tx);
	}
	if (rv != 0) {
		/* Not started: counted, and the slot is free for the next
		 * tick (not at once: a start failing at once every time
		 * must not recurse). */
		bench_fail(w, "%s: %s",
			   b->mode == BENCH_SAGA ? "submit saga" : "begin",
			   settle_async_errmsg(run->c));
		tx->next_free = run->free;
		run->free = tx;
		run->inflight--;
		return false;
	}
	return true;
}

static void tick_cb(uv_timer_t *t)
{
	pump(t->data);
}

/* Fill free slots with the transactions due now; close down at the end. */
static void pump(struct arun *run)
{
	struct bench *b = run->b;
	uint64_t now = bench_mono_us();

	if (!run->over && now / 1000 >= b->end_ms)
		run->over = true;
	while (!run->over && run->free != NULL) {
		if (b->rate <= 0) {
			if (!tx_start(run, now))
				break; /* starts fail: again next tick */
			continue;
		}
		uint64_t at =
		    b->start_us + (uint64_t)((double)run->k * 1e6 / b->rate);
		if (at / 1000 >= b->end_ms) {
			run->over = true;
			break;
		}
		if (at > now)
			break;
		if (now - at > 1000)
			run->w->late++;
		run->k++;
		tx_start(run, at);
	}
	if (run->over && run->inflight == 0 && run->c != NULL) {
		settle_async_close(run->c);
		run->c = NULL;
		uv_close((uv_handle_t *)&run->tick, NULL);
	}
}

void bench_async_run(struct bench_worker *w)
{
	struct bench *b = w->b;
	struct arun run = {.b = b, .w = w};
	int rv;

	run.slots = calloc(b->concurrency, sizeof(*run.slots));
	if (run.slots == NULL) {
		bench_fail(w, "out of memory");
		return;
	}
	for (unsigned i = 0; i < b->concurrency; i++) {
		run.slots[i].run = &run;
		run.slots[i].next_free = run.free;
		run.free = &run.slots[i];
	}
	rv = uv_loop_init(&run.loop);
	if (rv != 0) {
		bench_fail(w, "uv_loop_init: %s", uv_strerror(rv));
		free(run.slots);
		return;
	}
	rv = settle_async_open(&run.loop, b->cluster, NULL, &run.c);
	if (rv == 0 && b->tls.cert != NULL &&
	    settle_async_set_tls(run.c, &b->tls) != 0) {
		bench_fail(w, "TLS: %s", settle_async_errmsg(run.c));
		settle_async_close(run.c);
		uv_run(&run.loop, UV_RUN_DEFAULT);
	} else if (rv != 0) {
		bench_fail(w, "open: %s", settle_strerror(rv));
	} else {
		uv_timer_init(&run.loop, &run.tick);
		run.tick.data = &run;
		uv_timer_start(&run.tick, tick_cb, 0, 1);
		uv_run(&run.loop, UV_RUN_DEFAULT);
	}
	uv_loop_close(&run.loop);
	free(run.slots);
}

/*
 * bench_sync.c — settle-bench's TCC and saga initiators on the blocking
 * client (--client sync; the only way for --register-branches): a thread
 * and a libsettle handle per transaction in flight. bench_async.c runs
 * the same transactions on the asynchronous client.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"

static void note_error(struct bench_worker *w, const char *what,
		       settle_client *c)
{
	bench_fail(w, "%s: %s", what, settle_client_errmsg(c));
}

/*
 * When the worker's next transaction starts, in *t0 (monotonic us); false
 * once the run is over. Closed loop: now. Open loop (--rate): the next
 * slot of the shared schedule, waited for if it is ahead; a slot already
 * past starts at once and keeps its scheduled time, so the wait for a
 * free worker is part of its latency.
 */
static bool next_start(struct bench_worker *w, uint64_t *t0)
{
	struct bench *b = w->b;
	uint64_t k, at, now = bench_mono_us();
	struct timespec ts;

	if (b->rate <= 0) {
		*t0 = now;
		return now / 1000 < b->end_ms;
	}
	k = atomic_fetch_add(&b->next_start, 1);
	at = b->start_us + (uint64_t)((double)k * 1e6 / b->rate);
	if (at / 1000 >= b->end_ms)
		return false;
	if (at > now) {
		ts.tv_sec = (time_t)(at / 1000000);
		ts.tv_nsec = (long)(at % 1000000) * 1000;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts,
				       NULL) == EINTR)
			;
	} else if (now - at > 1000) {
		w->late++;
	}
	*t0 = at;
	return true;
}

/* Begin with the K branches declared (bench_decls()). */
static int begin_declared(struct bench_worker *w, settle_client *c,
			  const uint8_t *payload, size_t len, char *gid,
			  uint32_t *ids)
{
	struct settle_branch_decl d[BENCH_MAX_BRANCHES];
	char resource[BENCH_MAX_BRANCHES][8];

	bench_decls(w->b, payload, len, d, resource);
	char own[33];

	return settle_begin_branches(c, bench_gid(w->b, own), 30000, d,
				     w->b->branches, gid, SETTLE_GID_BUFSIZE,
				     ids);
}

/* One transaction. Returns 0 when it reached a final state. */
static int one_tx(struct bench_worker *w, settle_client *c, uint64_t t0)
{
	struct bench *b = w->b;
	char gid[SETTLE_GID_BUFSIZE];
	uint32_t ids[BENCH_MAX_BRANCHES];
	char resource[32];
	uint8_t payload[16] = "bench-payload-01";
	char own[33];
	bool finished = false;
	int state = 0, rv;
	unsigned k;
	bool rollback = b->rollback_ratio > 0 &&
			(double)rand_r(&w->seed) / RAND_MAX < b->rollback_ratio;

	rv = b->declare
		 ? begin_declared(w, c, payload, sizeof(payload), gid, ids)
		 : settle_begin(c, bench_gid(b, own), 30000, gid, sizeof(gid));
	if (rv != 0) {
		note_error(w, "begin", c);
		return rv;
	}
	for (k = 0; !b->declare && k < b->branches; k++) {
		snprintf(resource, sizeof(resource), "r%u", k);
		rv = settle_register_branch(c, gid, b->participant, resource,
					    payload, sizeof(payload), &ids[k]);
		if (rv != 0) {
			note_error(w, "register", c);
			return rv;
		}
	}
	for (k = 0; k < b->branches; k++) {
		Settle__V1__BranchRequest req =
		    SETTLE__V1__BRANCH_REQUEST__INIT;
		snprintf(resource, sizeof(resource), "r%u", k);
		req.gid = gid;
		req.branch_id = ids[k];
		req.resource = resource;
		req.payload.data = payload;
		req.payload.len = sizeof(payload);
		req.attempt = 1;
		rv = settle_client_call_at(c, b->participant,
					   SETTLE__V1__METHOD__TRY, &req.base,
					   NULL, NULL);
		if (rv != 0) {
			note_error(w, "try", c);
			/* A failed Try means rollback, as a real initiator
			 * would do. */
			rollback = true;
			break;
		}
	}
	if (rollback)
		rv = settle_rollback(c, gid, "bench", 30000, &state, &finished);
	else
		rv = settle_commit(c, gid, 30000, &state, &finished);
	if (rv != 0) {
		note_error(w, rollback ? "rollback" : "commit", c);
		return rv;
	}
	if (!finished) {
		w->errors++;
		if (w->first_error[0] == '\0')
			snprintf(w->first_error, sizeof(w->first_error),
				 "%s: phase two not finished after 30 s", gid);
		return SETTLE_ETIMEOUT;
	}
	bench_record(w, t0);
	if (state == SETTLE__V1__TX_STATE__COMMITTED)
		w->committed++;
	else
		w->aborted++;
	return 0;
}

/* One saga of b->branches ordered steps. Returns 0 when it ended. */
static int one_saga(struct bench_worker *w, settle_client *c, uint64_t t0)
{
	struct bench *b = w->b;
	struct settle_saga_step steps[BENCH_MAX_BRANCHES];
	char gid[SETTLE_GID_BUFSIZE];
	char names[BENCH_MAX_BRANCHES][8];
	char own[33];
	bool finished = false;
	int state = 0, rv;
	bool fail = b->rollback_ratio > 0 &&
		    (double)rand_r(&w->seed) / RAND_MAX < b->rollback_ratio;

	bench_saga_steps(b, fail, steps, names);
	rv = settle_submit_saga(c, bench_gid(b, own), NULL, steps, b->branches,
				gid, sizeof(gid));
	if (rv != 0) {
		note_error(w, "submit saga", c);
		return rv;
	}
	rv = settle_wait(c, gid, 30000, &state, &finished);
	if (rv != 0 || !finished) {
		note_error(w, "wait", c);
		return rv != 0 ? rv : SETTLE_ETIMEOUT;
	}
	bench_record(w, t0);
	if (state == SETTLE__V1__TX_STATE__SAGA_SUCCEEDED)
		w->committed++;
	else
		w->aborted++;
	return 0;
}

void *bench_sync_worker(void *arg)
{
	struct bench_worker *w = arg;
	struct settle_client_opts co = {0};
	settle_client *c = NULL;
	uint64_t t0;
	int rv;

	if (w->b->mode == BENCH_XA_LOCAL) {
		bench_xa_worker(w, NULL);
		return NULL;
	}
	/* A libsettle handle is not thread-safe: one per worker. */
	rv = settle_client_open(w->b->cluster, &co, &c);
	if (rv != 0) {
		bench_fail(w, "open: %s", settle_strerror(rv));
		return NULL;
	}
	if (w->b->mode == BENCH_XA)
		bench_xa_worker(w, c);
	else
		while (next_start(w, &t0)) {
			if (w->b->mode == BENCH_SAGA)
				one_saga(w, c, t0);
			else
				one_tx(w, c, t0);
		}
	settle_client_close(c);
	return NULL;
}

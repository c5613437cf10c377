/*
 * Failover measurements (scripts/failover-bench), in the fault test
 * program so that they use the same cluster machinery. Skipped unless
 * SETTLE_FAILOVER_KILLS=N (N >= 1) is set.
 *
 * Each round, on a 3-node cluster under a light commit load (load.h, two
 * threads, Commit answered once the decision is durable):
 *  1. a transaction with one branch on an in-process participant is
 *     committed; the participant holds its first Confirm unanswered, as a
 *     slow database would;
 *  2. once that Confirm has arrived, the leader is SIGKILLed and reaped
 *     (t0);
 *  3. measured: t0 to the first Commit acknowledged by the cluster
 *     ("commit"), and t0 to the arrival of the next Confirm of the held
 *     transaction, sent by the new leader ("phase 2");
 *  4. the killed node is restarted and allowed to catch up.
 * Prints one line per kill and the median and worst of each.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load.h"
#include "settle_participant.h"
#include "tcc_util.h"
#include "test_faults_util.h"

#define HOLD_MS 4000

/* What the participant saw, shared with the test thread. */
static struct {
	pthread_mutex_t mu;
	char slow_gid[64];
	unsigned arrivals;	/* Confirms of slow_gid so far */
	uint64_t arrival_ms[2]; /* first two, load_mono_ms() */
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* Set before the participant starts serving; read on its thread. */
static settle_participant *part;

struct held {
	uv_timer_t timer;
	settle_call *call;
};

static void held_closed(uv_handle_t *h)
{
	free(h);
}

static void held_done(uv_timer_t *t)
{
	struct held *h = (struct held *)t;

	/* The leader that sent it is long dead; the answer is dropped. */
	settle_call_fail(h->call, SETTLE_ERETRY, "held by the benchmark");
	uv_close((uv_handle_t *)&h->timer, held_closed);
}

static int answer_ok(void *data, const struct settle_branch *b, MDB_txn *txn,
		     char *err, size_t errlen)
{
	(void)data;
	(void)b;
	(void)txn;
	(void)err;
	(void)errlen;
	return 0;
}

/* Runs on the participant's loop thread. */
static void gate(void *data, settle_call *call)
{
	const struct settle_branch *b = settle_call_branch(call);
	bool hold = false;
	struct held *h;

	(void)data;
	pthread_mutex_lock(&seen.mu);
	if (b->op == SETTLE_OP_CONFIRM && strcmp(b->gid, seen.slow_gid) == 0) {
		if (seen.arrivals < 2)
			seen.arrival_ms[seen.arrivals] = load_mono_ms();
		hold = seen.arrivals++ == 0;
	}
	pthread_mutex_unlock(&seen.mu);
	if (!hold) {
		settle_call_run(call, NULL, NULL);
		return;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		settle_call_fail(call, SETTLE_ERETRY, "out of memory");
		return;
	}
	h->call = call;
	uv_timer_init(settle_participant_loop(part), &h->timer);
	uv_timer_start(&h->timer, held_done, HOLD_MS, 0);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof(*v), cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

TestSuite(bench, .init = it_setup, .fini = it_teardown, .timeout = 3600);

Test(bench, failover)
{
	const char *env = getenv("SETTLE_FAILOVER_KILLS");
	struct settle_participant_config cfg = {0};
	struct fu_cluster c;
	struct it_bank a, b;
	struct load_opts o = {0};
	load *l;
	settle_client *sc;
	struct settle_client_opts co = {0};
	char part_ep[64], prefix[32];
	uint64_t *dc, *dp;
	int kills, k;

	if (env == NULL || (kills = atoi(env)) <= 0)
		cr_skip_test(
		    "set SETTLE_FAILOVER_KILLS (scripts/failover-bench)");
	dc = calloc((size_t)kills, sizeof(*dc));
	dp = calloc((size_t)kills, sizeof(*dp));
	cr_assert(dc && dp);

	cfg.listen = "127.0.0.1:0";
	cfg.on_confirm = answer_ok;
	cfg.on_cancel = answer_ok;
	cfg.on_call_async = gate;
	cr_assert_eq(settle_participant_init(&cfg, &part), 0);
	cr_assert_eq(settle_participant_start_thread(part), 0);
	snprintf(part_ep, sizeof(part_ep), "127.0.0.1:%d",
		 settle_participant_port(part));

	fu_cluster_start(&c, 3, NULL);
	fu_bank_start(&a, NULL, "bank-a", "alice=1000000", NULL);
	fu_bank_start(&b, NULL, "bank-b", "bob=1000000", NULL);
	snprintf(prefix, sizeof(prefix), "fb%d", (int)getpid());
	o.cluster = c.endpoints;
	o.bank_a = a.endpoint;
	o.bank_b = b.endpoint;
	o.account_a = "alice";
	o.account_b = "bob";
	o.prefix = prefix;
	o.threads = 2;
	o.max_tx = 1000000;
	o.max_amount = 10;
	o.tx_timeout_ms = 10000;
	o.commit_wait_ms = 0;
	o.retry_budget_ms = 20000;
	o.pause_ms = 5;
	cr_assert_eq(load_start(&o, &l), 0);

	co.retry_budget_ms = 20000;
	cr_assert_eq(settle_client_open(c.endpoints, &co, &sc), 0);

	for (k = 0; k < kills; k++) {
		char gid[SETTLE_GID_BUFSIZE];
		uint64_t t0, first_ack = 0, second = 0, end;
		int ld = fu_leader(&c, 20000), rv;

		cr_assert_geq(ld, 0, "no leader");
		snprintf(gid, sizeof(gid), "slow-%d-%d", (int)getpid(), k);
		pthread_mutex_lock(&seen.mu);
		snprintf(seen.slow_gid, sizeof(seen.slow_gid), "%s", gid);
		seen.arrivals = 0;
		pthread_mutex_unlock(&seen.mu);
		rv = settle_begin(sc, gid, 60000, NULL, 0);
		cr_assert_eq(rv, 0, "begin: %s", settle_client_errmsg(sc));
		rv =
		    settle_register_branch(sc, gid, part_ep, "r", "x", 1, NULL);
		cr_assert_eq(rv, 0, "register: %s", settle_client_errmsg(sc));
		rv = settle_commit(sc, gid, 0, NULL, NULL);
		cr_assert_eq(rv, 0, "commit: %s", settle_client_errmsg(sc));
		/* The leader that decided may have changed meanwhile; the
		 * one that sends the first Confirm is the one to kill. */
		end = load_mono_ms() + 10000;
		for (;;) {
			unsigned n;
			pthread_mutex_lock(&seen.mu);
			n = seen.arrivals;
			pthread_mutex_unlock(&seen.mu);
			if (n >= 1)
				break;
			cr_assert_lt(load_mono_ms(), end,
				     "the first Confirm never came");
			tu_sleep_ms(5);
		}
		ld = fu_leader(&c, 5000);
		cr_assert_geq(ld, 0);
		/* From the moment the old leader is reaped: until then it may
		 * still answer a call or two. */
		fu_kill(&c, ld);
		t0 = load_mono_ms();
		end = t0 + 30000;
		while (first_ack == 0 || second == 0) {
			if (first_ack == 0)
				first_ack = load_first_ack_after(l, t0);
			pthread_mutex_lock(&seen.mu);
			if (seen.arrivals >= 2)
				second = seen.arrival_ms[1];
			pthread_mutex_unlock(&seen.mu);
			cr_assert_lt(load_mono_ms(), end,
				     "kill %d: no recovery in 30 s (commit "
				     "%d, phase 2 %d)",
				     k, first_ack != 0, second != 0);
			tu_sleep_ms(2);
		}
		dc[k] = first_ack - t0;
		dp[k] = second - t0;
		fprintf(stderr,
			"kill %d (node %d): first commit after %llu ms, "
			"phase 2 resumed after %llu ms\n",
			k + 1, c.nodes[ld].id, (unsigned long long)dc[k],
			(unsigned long long)dp[k]);
		fu_restart(&c, ld);
		cr_assert(fu_wait_caught_up(&c, 30000),
			  "the restarted node did not catch up");
		/* Let the held call's timer pass so it never overlaps. */
		tu_sleep_ms(1000);
	}
	load_stop(l);
	load_join(l);
	{
		uint64_t mc = median(dc, kills), mp = median(dp, kills);
		fprintf(stderr,
			"FAILOVER %d kills: first commit median %llu ms worst "
			"%llu ms; phase 2 median %llu ms worst %llu ms\n",
			kills, (unsigned long long)mc,
			(unsigned long long)dc[kills - 1],
			(unsigned long long)mp,
			(unsigned long long)dp[kills - 1]);
	}
	settle_client_close(sc);
	settle_participant_close(part);
	load_free(l);
	free(dc);
	free(dp);
}

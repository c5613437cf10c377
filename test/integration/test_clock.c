/*
 * Clocks decide nothing (docs/ARCHITECTURE.md, "Clocks"): a 3-node cluster
 * of real settled processes, each under libfaketime (its wall clock read
 * from a file the test rewrites; the monotonic clock left real), under a
 * TCC load between two settle-bank processes.
 *
 * - leadership moves to a node whose clock is 10 minutes ahead, or 10
 *   minutes behind; or the leader's clock steps 10 minutes ahead and then
 *   20 minutes back while it leads: no transaction of the load is rolled
 *   back by a deadline (their limit is 30 s), and transactions left ACTIVE
 *   on purpose roll back by their own limit, no sooner, and no later than
 *   the limit plus one election;
 * - a follower's status shows its offset from the leader;
 * - a COMMIT racing the deadline: whichever the log holds first wins, the
 *   client's answer says which, and QUERY agrees with it on every node
 *   (each made leader in turn: QUERY is answered by the leader).
 *
 * One test at a time (main() below): three ASan nodes, two banks and the
 * load are what two cores can take.
 */
#include <criterion/criterion.h>
#include <criterion/options.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coord_util.h"
#include "load.h"
#include "tcc_util.h"
#include "test_faults_util.h"

#define FAKETIME_LIB	"/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"
#define LOAD_TIMEOUT_MS 30000 /* load transactions never reach it */
#define HELD_TIMEOUT_MS 5000  /* the ones left ACTIVE do */
#define HELD		3
/* One election (700 ms timeout, pre-vote), the transfer, and the idle
 * clock entry (1 s) a new leader may start behind by, with room for a
 * loaded machine. */
#define STRETCH_MAX_MS 3000
#define TEN_MINUTES_MS 600000LL

static struct fu_cluster cluster;

static void setup(void)
{
	it_setup();
	cu_setup();
	memset(&cluster, 0, sizeof(cluster));
}

static void teardown(void)
{
	fu_cluster_teardown(&cluster);
	it_teardown();
}

TestSuite(clock, .init = setup, .fini = teardown, .timeout = 120);

/* ---- Faked clocks ------------------------------------------------------- */

static void clock_file(int i, char *path, size_t len)
{
	snprintf(path, len, "%s/faketime%d", it_dir(), i);
}

/* Node i's wall clock from now on (within faketime's 1 s cache): "+0s",
 * "+600s", "-600s". */
static void set_offset(int i, const char *offset)
{
	char path[600];
	FILE *f;

	clock_file(i, path, sizeof(path));
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	fprintf(f, "%s\n", offset);
	fclose(f);
}

/* Three nodes, each restarted under libfaketime at offset +0s. */
static void cluster_start(void)
{
	char asan[600], kv[1400], path[600];

	if (access(FAKETIME_LIB, R_OK) != 0)
		cr_skip_test("libfaketime is not installed "
			     "(scripts/install-deps)");
	it_asan_preload(asan, sizeof(asan));
	fu_cluster_start(&cluster, 3, NULL);
	for (int i = 0; i < cluster.n; i++) {
		struct it_proc *p = cluster.nodes[i].proc;

		set_offset(i, "+0s");
		clock_file(i, path, sizeof(path));
		snprintf(kv, sizeof(kv), "LD_PRELOAD=%s%s", asan, FAKETIME_LIB);
		it_setenv(p, kv);
		snprintf(kv, sizeof(kv), "FAKETIME_TIMESTAMP_FILE=%s", path);
		it_setenv(p, kv);
		it_setenv(p, "FAKETIME_CACHE_DURATION=1");
		it_setenv(p, "FAKETIME_DONT_FAKE_MONOTONIC=1");
		if (asan[0] != '\0') {
			/* ASan's allocator reads CLOCK_MONOTONIC through
			 * clock_gettime() when it first maps a size class,
			 * holding that class's lock, to schedule releasing
			 * memory to the OS. Under libfaketime that call is
			 * libfaketime's, whose first call initialises itself
			 * (dlsym, realloc) and so asks the same allocator,
			 * maybe for the same class: the process waits on
			 * itself forever before main. Whether it does depends
			 * on the sizes allocated first (the environment, the
			 * locale), so some machines always hang and others
			 * never; no release interval, no clock call. */
			const char *o = getenv("ASAN_OPTIONS");

			snprintf(kv, sizeof(kv),
				 "ASAN_OPTIONS=%s%sallocator_release_to_os_"
				 "interval_ms=-1",
				 o != NULL ? o : "",
				 o != NULL && o[0] != '\0' ? ":" : "");
			it_setenv(p, kv);
		}
		fu_kill(&cluster, i);
		fu_restart(&cluster, i);
		it_wait_port(p, cluster.nodes[i].port, 20000);
	}
	cr_assert_geq(fu_leader(&cluster, 30000), 0, "no leader");
}

/* ---- Calls -------------------------------------------------------------- */

static Settle__V1__StatusResponse *status_of(int i)
{
	struct cu_conn c;
	Settle__V1__StatusResponse *st;

	cu_connect(&c, cluster.nodes[i].endpoint, 5000);
	st = cu_status(&c);
	cu_close(&c);
	return st;
}

/* Transactions begun and left ACTIVE, with when (monotonic) each was
 * asked for: they must roll back at their own limit. */
struct held {
	char gid[HELD][64];
	uint64_t asked_ms[HELD];
};

static void held_begin(struct held *h)
{
	uint8_t id[16];
	struct cu_conn c;
	int l = fu_leader(&cluster, 10000);

	cr_assert_geq(l, 0);
	cu_connect(&c, cluster.nodes[l].endpoint, 5000);
	for (int k = 0; k < HELD; k++) {
		snprintf(h->gid[k], sizeof(h->gid[k]), "held-%d-%d",
			 (int)getpid(), k);
		cu_cmd_id(id);
		h->asked_ms[k] = load_mono_ms();
		cr_assert_eq(
		    cu_begin(&c, id, h->gid[k], HELD_TIMEOUT_MS, NULL, NULL), 0,
		    "begin %s", h->gid[k]);
	}
	cu_close(&c);
}

static int query_state(int node, const char *gid, char *reason, size_t len)
{
	Settle__V1__TxInfo *tx;
	struct cu_conn c;
	int state;

	cu_connect(&c, cluster.nodes[node].endpoint, 5000);
	cr_assert_eq(cu_query(&c, gid, &tx), 0, "query %s", gid);
	cu_close(&c);
	state = (int)tx->state;
	if (reason != NULL)
		snprintf(reason, len, "%s", tx->reason);
	settle_tx_info_free(tx);
	return state;
}

/* Each held transaction rolls back by its deadline: not before its limit
 * from when it was asked for, not after the limit plus STRETCH_MAX_MS. */
static void held_check(const struct held *h)
{
	for (int k = 0; k < HELD; k++) {
		char reason[256];
		uint64_t took;

		for (;;) {
			int l = fu_leader(&cluster, 10000);
			int st = query_state(l >= 0 ? l : 0, h->gid[k], reason,
					     sizeof(reason));

			took = load_mono_ms() - h->asked_ms[k];
			if (st == SETTLE__V1__TX_STATE__ROLLED_BACK)
				break;
			cr_assert_eq(st, SETTLE__V1__TX_STATE__ACTIVE,
				     "%s: state %d", h->gid[k], st);
			cr_assert_leq(took, HELD_TIMEOUT_MS + STRETCH_MAX_MS,
				      "%s still ACTIVE %llu ms after its "
				      "begin (limit %d ms)",
				      h->gid[k], (unsigned long long)took,
				      HELD_TIMEOUT_MS);
			tu_sleep_ms(20);
		}
		fprintf(stderr, "%s rolled back %llu ms after its begin\n",
			h->gid[k], (unsigned long long)took);
		cr_assert_leq(took, HELD_TIMEOUT_MS + STRETCH_MAX_MS,
			      "%s rolled back %llu ms after its begin (limit "
			      "%d ms)",
			      h->gid[k], (unsigned long long)took,
			      HELD_TIMEOUT_MS);
		cr_assert(strncmp(reason, "deadline", 8) == 0, "%s: reason %s",
			  h->gid[k], reason);
		cr_assert_geq(took, HELD_TIMEOUT_MS,
			      "%s rolled back %llu ms after its begin, before "
			      "its %d ms limit",
			      h->gid[k], (unsigned long long)took,
			      HELD_TIMEOUT_MS);
	}
}

/* ---- Load --------------------------------------------------------------- */

struct rig {
	struct it_bank a, b;
	load *l;
	struct fu_books books;
};

static void rig_start(struct rig *r)
{
	struct load_opts o = {0};
	char prefix[32];

	memset(r, 0, sizeof(*r));
	fu_bank_start(&r->a, NULL, "bank-a", "alice=1000000", NULL);
	fu_bank_start(&r->b, NULL, "bank-b", "bob=1000000", NULL);
	snprintf(prefix, sizeof(prefix), "ck%d", (int)getpid());
	o.cluster = cluster.endpoints;
	o.bank_a = r->a.endpoint;
	o.bank_b = r->b.endpoint;
	o.account_a = "alice";
	o.account_b = "bob";
	o.prefix = prefix;
	o.threads = 4;
	o.max_tx = 100000;
	o.duration_ms = 40000;
	o.max_amount = 100;
	o.tx_timeout_ms = LOAD_TIMEOUT_MS;
	o.commit_wait_ms = 2000;
	o.retry_budget_ms = 8000;
	o.pause_ms = 5;
	cr_assert_eq(load_start(&o, &r->l), 0);
	r->books =
	    (struct fu_books){&r->a, &r->b, "alice", "bob", 1000000, 1000000};
}

/* Stop the load; every invariant holds and no transaction of it was
 * rolled back by a deadline. */
static void rig_finish(struct rig *r)
{
	size_t n, by_deadline = 0;
	const struct load_tx *t;
	struct load_stats s;
	int l;

	load_stop(r->l);
	load_join(r->l);
	s = load_stats(r->l);
	fprintf(stderr,
		"load: %zu attempted, %zu commits acknowledged, %zu commits "
		"failed, %zu rolled back early, %zu begins failed\n",
		s.attempted, s.commit_acked, s.commit_failed, s.rolled_back,
		s.begin_failed);
	cr_assert_gt(s.commit_acked, 0, "no commit at all");
	cr_assert_eq(
	    fu_check(&cluster, &r->books, r->l, load_mono_ms() + 30000), 0,
	    "invariant violations, see above");
	l = fu_leader(&cluster, 10000);
	cr_assert_geq(l, 0);
	t = load_txs(r->l, &n);
	for (size_t i = 0; i < n; i++) {
		char reason[256];

		if (t[i].stage < LOAD_BEGUN)
			continue;
		if (query_state(l, t[i].gid, reason, sizeof(reason)) ==
			SETTLE__V1__TX_STATE__ROLLED_BACK &&
		    strncmp(reason, "deadline", 8) == 0) {
			fprintf(stderr, "%s rolled back: %s\n", t[i].gid,
				reason);
			by_deadline++;
		}
	}
	cr_assert_eq(by_deadline, 0,
		     "%zu load transactions rolled back by a deadline",
		     by_deadline);
	load_free(r->l);
	fu_assert_no_sanitizer_reports(&cluster);
}

/* A follower's status shows its offset from the leader: want_ms, within
 * a second. */
static void expect_offset(int i, long long want_ms)
{
	for (int tries = 0;; tries++) {
		Settle__V1__StatusResponse *st = status_of(i);
		bool ok =
		    st->clock_offset_known &&
		    llabs((long long)st->clock_offset_ms - want_ms) < 1000;
		long long got = st->clock_offset_ms;
		bool known = st->clock_offset_known;

		settle__v1__status_response__free_unpacked(st, NULL);
		if (ok)
			return;
		cr_assert(tries < 60,
			  "node %d: offset %s%lld ms, want about %lld", i + 1,
			  known ? "" : "unknown, ", got, want_ms);
		tu_sleep_ms(250);
	}
}

/* Leadership moves to a node whose clock is off by offset (seconds). */
static void leadership_to_skewed_node(const char *offset, long long off_ms)
{
	struct rig r;
	struct held h;
	int leader, target;

	cluster_start();
	leader = fu_leader(&cluster, 10000);
	target = (leader + 1) % cluster.n;
	set_offset(target, offset);
	rig_start(&r);
	tu_sleep_ms(1500);
	expect_offset(target, off_ms);
	held_begin(&h);
	tu_sleep_ms(1000);
	fu_transfer_to(&cluster, target);
	fprintf(stderr, "node %d (clock %s) leads\n", target + 1, offset);
	held_check(&h);
	/* The old leader now measures itself against the skewed one. */
	expect_offset(leader, -off_ms);
	rig_finish(&r);
}

Test(clock, leadership_to_a_node_10_minutes_ahead)
{
	leadership_to_skewed_node("+600s", TEN_MINUTES_MS);
}

Test(clock, leadership_to_a_node_10_minutes_behind)
{
	leadership_to_skewed_node("-600s", -TEN_MINUTES_MS);
}

Test(clock, the_leaders_clock_steps_mid_load)
{
	struct rig r;
	struct held h;
	int leader;

	cluster_start();
	leader = fu_leader(&cluster, 10000);
	rig_start(&r);
	tu_sleep_ms(1000);
	held_begin(&h);
	tu_sleep_ms(1000);
	set_offset(leader, "+600s");
	fprintf(stderr, "node %d's clock stepped 10 minutes ahead\n",
		leader + 1);
	tu_sleep_ms(2000);
	set_offset(leader, "-600s");
	fprintf(stderr, "node %d's clock stepped 20 minutes back\n",
		leader + 1);
	held_check(&h);
	cr_assert_eq(fu_leader(&cluster, 10000), leader,
		     "leadership moved: this test is about one leader");
	rig_finish(&r);
}

/* COMMITs sent from well before to well after the deadline of a
 * transaction without branches: each answer is OK (then COMMITTED on every
 * node) or WRONG_STATE (then ROLLED_BACK by the deadline on every node);
 * the early ones commit and the late ones do not. */
Test(clock, a_commit_racing_the_deadline_has_one_outcome_everywhere)
{
	static const int offsets[] = {-200, -12, -8, -4, -2, 0,
				      2,    4,	 8,  12, 20, 300};
	enum { N = sizeof(offsets) / sizeof(offsets[0]) };
	char gids[N][64];
	int codes[N];
	struct cu_conn c;
	uint8_t id[16];
	int l;

	fu_cluster_start(&cluster, 3, NULL);
	l = fu_leader(&cluster, 30000);
	cr_assert_geq(l, 0);
	cu_connect(&c, cluster.nodes[l].endpoint, 5000);
	for (int k = 0; k < N; k++) {
		uint64_t t0;
		int state;
		bool finished;
		int rc, tries = 0;

		snprintf(gids[k], sizeof(gids[k]), "race-%d-%d", (int)getpid(),
			 k);
		cu_cmd_id(id);
		t0 = load_mono_ms();
		/* A leader just elected is ready once its barrier applies. */
		while ((rc = cu_begin(&c, id, gids[k], 300, NULL, NULL)) ==
			   SETTLE__V1__CODE__UNAVAILABLE &&
		       tries++ < 100) {
			tu_sleep_ms(20);
			t0 = load_mono_ms();
		}
		cr_assert_eq(rc, 0, "begin %s: code %d", gids[k], rc);
		while (load_mono_ms() < t0 + (uint64_t)(300 + offsets[k]))
			usleep(200);
		cu_cmd_id(id);
		codes[k] = cu_decide(&c, true, id, gids[k], false, 0, &state,
				     &finished);
		fprintf(stderr, "commit %+d ms: code %d\n", offsets[k],
			codes[k]);
	}
	cu_close(&c);
	cr_assert_eq(codes[0], 0, "a commit 200 ms early was refused");
	cr_assert_eq(codes[N - 1], SETTLE__V1__CODE__WRONG_STATE,
		     "a commit 300 ms late was accepted");
	for (int k = 0; k < N; k++)
		cr_assert(codes[k] == 0 ||
			      codes[k] == SETTLE__V1__CODE__WRONG_STATE,
			  "commit %+d ms: code %d", offsets[k], codes[k]);
	/* QUERY is the leader's: each node in turn leads and answers from
	 * its own store. */
	for (int n = 0; n < cluster.n; n++) {
		int i = (l + n) % cluster.n;

		fu_transfer_to(&cluster, i);
		for (int k = 0; k < N; k++) {
			char reason[256];
			int st =
			    query_state(i, gids[k], reason, sizeof(reason));

			if (codes[k] == 0) {
				cr_assert_eq(st,
					     SETTLE__V1__TX_STATE__COMMITTED,
					     "node %d: %s answered OK, is %d",
					     i + 1, gids[k], st);
				continue;
			}
			cr_assert_eq(st, SETTLE__V1__TX_STATE__ROLLED_BACK,
				     "node %d: %s refused, is %d", i + 1,
				     gids[k], st);
			cr_assert(strncmp(reason, "deadline", 8) == 0,
				  "node %d: %s: reason %s", i + 1, gids[k],
				  reason);
		}
	}
	fu_assert_no_sanitizer_reports(&cluster);
}

int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	criterion_options.jobs = 1;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}

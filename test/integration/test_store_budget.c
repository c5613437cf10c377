/*
 * The store's budget (settled --store-budget, coordinator/budget.c) on
 * 3-node clusters of real settled processes: a small budget is filled with
 * large branch payloads while a TCC load moves money between two
 * settle-banks, and
 *  - no node stops (a full store used to fail apply on every node at the
 *    same entry: exit 70, and again at every restart);
 *  - new Begins are refused with RESOURCE_EXHAUSTED naming --store-budget,
 *    and settlectl status says so;
 *  - nothing acknowledged is lost and every transaction begun finishes
 *    (fu_check: terminal, committed ones confirmed, money conserved);
 *  - Begins succeed again once retention has freed space, or once the
 *    nodes are restarted with a larger budget.
 * Also: a payload over the 1 MiB limit is refused at the dispatch with
 * TOO_LARGE and changes nothing.
 */
#include <criterion/criterion.h>
#include <criterion/options.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load.h"
#include "settle_participant.h"
#include "tcc_util.h"
#include "test_faults_util.h"

#define INITIAL	  1000000LL
#define BUDGET	  "8" /* MiB: the least settled takes */
#define PAYLOAD	  (256u * 1024u)
#define FILL_MS	  60000
#define SETTLE_MS 30000

static struct fu_cluster cluster;
static settle_participant *part;
static char part_ep[64];

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

static void setup(void)
{
	struct settle_participant_config cfg = {0};

	it_setup();
	memset(&cluster, 0, sizeof(cluster));
	/* Confirms and Cancels of the filler's branches: always OK. */
	cfg.listen = "127.0.0.1:0";
	cfg.on_confirm = answer_ok;
	cfg.on_cancel = answer_ok;
	cr_assert_eq(settle_participant_init(&cfg, &part), 0);
	cr_assert_eq(settle_participant_start_thread(part), 0);
	snprintf(part_ep, sizeof(part_ep), "127.0.0.1:%d",
		 settle_participant_port(part));
}

static void teardown(void)
{
	fu_cluster_teardown(&cluster);
	it_teardown();
	settle_participant_close(part);
	part = NULL;
}

TestSuite(budget, .init = setup, .fini = teardown, .timeout = 240);

static settle_client *client(void)
{
	struct settle_client_opts co = {0};
	settle_client *sc;

	co.retry_budget_ms = 10000;
	cr_assert_eq(settle_client_open(cluster.endpoints, &co, &sc), 0);
	return sc;
}

/*
 * One filler transaction: Begin, one branch of PAYLOAD bytes on the test's
 * participant, Commit. Returns the first error (0 if all went through),
 * *at_begin telling whether it was the Begin's; a transaction left ACTIVE
 * rolls back at its deadline.
 */
static int fill_one(settle_client *sc, const char *gid, const uint8_t *payload,
		    bool *at_begin)
{
	uint32_t bid;
	int rv = settle_begin(sc, gid, 10000, NULL, 0);

	*at_begin = rv != 0;
	if (rv != 0)
		return rv;
	rv = settle_register_branch(sc, gid, part_ep, "fill", payload, PAYLOAD,
				    &bid);
	if (rv == 0)
		rv = settle_commit(sc, gid, 0, NULL, NULL);
	return rv;
}

/* Fill until a Begin is refused; check the refusal's error. Returns how
 * many filler transactions committed. */
static int fill_until_refused(settle_client *sc, const char *tag)
{
	uint8_t *payload = malloc(PAYLOAD);
	uint64_t end = load_mono_ms() + FILL_MS;
	char gid[64];
	bool at_begin = false;
	int n = 0, ok = 0, rv;

	cr_assert_not_null(payload);
	memset(payload, 'x', PAYLOAD);
	for (;;) {
		cr_assert_lt(load_mono_ms(), end,
			     "no Begin refused after %d fillers of %u bytes", n,
			     PAYLOAD);
		snprintf(gid, sizeof(gid), "fill-%s-%d-%d", tag, (int)getpid(),
			 n++);
		rv = fill_one(sc, gid, payload, &at_begin);
		if (rv == 0) {
			ok++;
			continue;
		}
		/* Registers are cut later than Begins (95% against 90%):
		 * only a refused Begin ends the fill. */
		cr_assert_eq(rv, SETTLE_EEXHAUSTED, "filler %d: %s (%s)", n,
			     settle_errname(rv), settle_client_errmsg(sc));
		if (at_begin)
			break;
	}
	cr_assert_not_null(strstr(settle_client_errmsg(sc), "--store-budget"),
			   "the refusal does not name the setting: %s",
			   settle_client_errmsg(sc));
	free(payload);
	return ok;
}

static void assert_all_alive(const char *when)
{
	for (int i = 0; i < cluster.n; i++) {
		if (!it_alive(cluster.nodes[i].proc)) {
			it_show_log(cluster.nodes[i].proc);
			cr_assert_fail("node %d stopped %s", i + 1, when);
		}
	}
}

/* settlectl --json status of the leader's endpoint. */
static char *status_json(int node)
{
	char *out = NULL, *err = NULL;
	int st =
	    it_run((char *const[]){(char *)it_bin("settlectl"), "--cluster",
				   cluster.nodes[node].endpoint, "--json",
				   "status", NULL},
		   &out, &err, 20000);

	cr_assert_eq(st, 0, "settlectl status: %s", err);
	free(err);
	return out;
}

/* Begin (and roll back) until one succeeds, within timeout_ms. */
static void begin_succeeds(settle_client *sc, const char *tag, int timeout_ms)
{
	uint64_t end = load_mono_ms() + (uint64_t)timeout_ms;
	char gid[64];
	int rv, n = 0;

	for (;;) {
		snprintf(gid, sizeof(gid), "again-%s-%d-%d", tag, (int)getpid(),
			 n++);
		rv = settle_begin(sc, gid, 10000, NULL, 0);
		if (rv == 0)
			break;
		cr_assert_eq(rv, SETTLE_EEXHAUSTED, "begin: %s (%s)",
			     settle_errname(rv), settle_client_errmsg(sc));
		cr_assert_lt(load_mono_ms(), end,
			     "begins still refused after %d ms: %s", timeout_ms,
			     settle_client_errmsg(sc));
		tu_sleep_ms(250);
	}
	cr_assert_eq(settle_rollback(sc, gid, "test", 0, NULL, NULL), 0);
}

/* Replace the value after --store-budget in a node's saved arguments. */
static void set_budget(struct it_proc *p, const char *mib)
{
	for (int i = 0; p->argv[i] != NULL && p->argv[i + 1] != NULL; i++) {
		if (strcmp(p->argv[i], "--store-budget") == 0) {
			free(p->argv[i + 1]);
			p->argv[i + 1] = strdup(mib);
			cr_assert_not_null(p->argv[i + 1]);
			return;
		}
	}
	cr_assert_fail("--store-budget not in the arguments of %s", p->name);
}

Test(budget, fill_under_load_then_raise_the_budget)
{
	static const char *const args[] = {"--store-budget",
					   BUDGET,
					   "--snapshot-threshold",
					   "256",
					   "--snapshot-trailing",
					   "64",
					   NULL};
	struct it_bank a, b;
	struct load_opts o = {0};
	struct fu_books books = {0};
	struct load_stats s;
	settle_client *sc;
	load *l;
	char prefix[32], *js;
	size_t n, i, refused = 0;
	const struct load_tx *t;
	int filled, ld, violations;

	fu_cluster_start(&cluster, 3, args);
	fu_bank_start(&a, NULL, "bank-a", "alice=1000000", NULL);
	fu_bank_start(&b, NULL, "bank-b", "bob=1000000", NULL);
	snprintf(prefix, sizeof(prefix), "bl%d", (int)getpid());
	o.cluster = cluster.endpoints;
	o.bank_a = a.endpoint;
	o.bank_b = b.endpoint;
	o.account_a = "alice";
	o.account_b = "bob";
	o.prefix = prefix;
	o.threads = 3;
	o.max_tx = 200000;
	o.duration_ms = FILL_MS + 20000;
	o.max_amount = 100;
	o.tx_timeout_ms = 5000;
	o.commit_wait_ms = 2000;
	o.retry_budget_ms = 8000;
	o.pause_ms = 10;
	cr_assert_eq(load_start(&o, &l), 0);
	books.bank_a = &a;
	books.bank_b = &b;
	books.account_a = "alice";
	books.account_b = "bob";
	books.initial_a = INITIAL;
	books.initial_b = INITIAL;

	sc = client();
	tu_sleep_ms(1000);
	filled = fill_until_refused(sc, "raise");
	fprintf(stderr, "budget: %d fillers of %u bytes, then refused: %s\n",
		filled, PAYLOAD, settle_client_errmsg(sc));
	/* The load keeps coming against a full store for a while, and
	 * fills what the refused filler left free: the leader then refuses
	 * new transactions (status says so). How soon depends on how many
	 * pages its snapshots' read views pinned: up to 15 s. */
	tu_sleep_ms(2000);
	for (int waited = 0;; waited += 250) {
		ld = fu_leader(&cluster, 10000);
		cr_assert_geq(ld, 0, "no leader");
		js = status_json(ld);
		if (strstr(js, "\"refusing\":true") != NULL || waited >= 15000)
			break;
		free(js);
		tu_sleep_ms(250);
	}
	assert_all_alive("while its store was full");
	cr_assert_not_null(strstr(js, "\"refusing\":true"), "%s", js);
	cr_assert_not_null(strstr(js, "\"budget_bytes\":8388608,"), "%s", js);
	free(js);
	load_stop(l);
	load_join(l);
	s = load_stats(l);
	t = load_txs(l, &n);
	for (i = 0; i < n; i++)
		refused += t[i].err == SETTLE_EEXHAUSTED;
	fprintf(stderr,
		"load: %zu attempted, %zu commits acknowledged, %zu begins "
		"failed, %zu refused for the budget\n",
		s.attempted, s.commit_acked, s.begin_failed, refused);
	cr_assert_gt(s.commit_acked, 0, "no commit at all");
	cr_assert_gt(refused, 0, "the load never met the refusal");
	assert_all_alive("after the load");

	/* Everything begun before the refusal finishes, nothing acked is
	 * lost, no branch ran both ways, money is conserved. */
	violations = fu_check(&cluster, &books, l, load_mono_ms() + SETTLE_MS);
	if (violations != 0) {
		for (int k = 0; k < cluster.n; k++)
			it_show_log(cluster.nodes[k].proc);
		setenv("SETTLE_KEEP_TEST_DIR", "1", 1);
	}
	cr_assert_eq(violations, 0, "%d invariant violation(s), see above",
		     violations);
	load_free(l);

	/* A larger budget, one node at a time: a clean stop, a restart
	 * over the same store. */
	for (int k = 0; k < cluster.n; k++) {
		it_stop(cluster.nodes[k].proc);
		set_budget(cluster.nodes[k].proc, "64");
		fu_restart(&cluster, k);
		cr_assert_geq(fu_leader(&cluster, 30000), 0,
			      "no leader after restarting node %d", k + 1);
	}
	cr_assert(fu_wait_caught_up(&cluster, 30000));
	begin_succeeds(sc, "raise", 20000);
	assert_all_alive("after the restarts");
	settle_client_close(sc);
	fu_assert_no_sanitizer_reports(&cluster);
}

Test(budget, retention_frees_space)
{
	static const char *const args[] = {"--store-budget", BUDGET,
					   "--retention", "3s", NULL};
	uint8_t *big = calloc(1, (1u << 20) + 1);
	settle_client *sc;
	char gid[64], *js;
	uint32_t bid;
	int ld;

	cr_assert_not_null(big);
	fu_cluster_start(&cluster, 3, args);
	sc = client();

	/* Over the payload limit: refused before it is proposed. */
	snprintf(gid, sizeof(gid), "big-%d", (int)getpid());
	cr_assert_eq(settle_begin(sc, gid, 10000, NULL, 0), 0, "%s",
		     settle_client_errmsg(sc));
	cr_assert_eq(settle_register_branch(sc, gid, part_ep, "big", big,
					    (1u << 20) + 1, &bid),
		     SETTLE_ETOOBIG, "%s", settle_client_errmsg(sc));
	cr_assert_eq(settle_rollback(sc, gid, "test", 0, NULL, NULL), 0);
	free(big);

	fill_until_refused(sc, "ret");
	assert_all_alive("while its store was full");
	/* Finished fillers expire after 3 s; the GC deletes them, the
	 * leader measures the space freed and takes Begins again. */
	begin_succeeds(sc, "ret", 30000);
	ld = fu_leader(&cluster, 10000);
	cr_assert_geq(ld, 0, "no leader");
	js = status_json(ld);
	cr_assert_not_null(strstr(js, "\"refusing\":false"), "%s", js);
	free(js);
	assert_all_alive("after retention freed space");
	settle_client_close(sc);
	fu_assert_no_sanitizer_reports(&cluster);
}

/* One test at a time: each runs three ASan nodes (and the first two banks
 * and a load), which is all two cores can take. */
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

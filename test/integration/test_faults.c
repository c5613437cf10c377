/*
 * Fault tests: a 3-node cluster of real settled processes under
 * continuous TCC load between two settle-bank processes (load.h), while
 * nodes are SIGKILLed, stopped, restarted all at once or cut off from the
 * others. Once the faults stop and the load has ended, fu_check() verifies
 * that no acknowledged decision was lost, no branch took effect both ways,
 * money is conserved and every transaction ends within 30 s.
 *
 * The tests run one at a time (main() below): each runs three ASan nodes,
 * two banks and the load, which is all two cores can take.
 *
 * SETTLE_CHAOS_SECONDS=N runs chaos/random (scripts/chaos): the same
 * faults in a randomized loop for N seconds. Unset, it is skipped.
 */
#include <criterion/criterion.h>
#include <criterion/options.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "load.h"
#include "tcc_util.h"
#include "test_faults_util.h"

/* Each transaction must be terminal this long after the faults stop. */
#define SETTLE_BOUND_MS 30000
/* Transactions left ACTIVE by a failed Commit roll back by this deadline. */
#define TX_TIMEOUT_MS 5000

#define INITIAL 1000000LL

static struct fu_cluster cluster;

static void setup(void)
{
	it_setup();
	memset(&cluster, 0, sizeof(cluster));
}

static void teardown(void)
{
	fu_cluster_teardown(&cluster);
	it_teardown();
}

TestSuite(faults, .init = setup, .fini = teardown, .timeout = 150);

/* Frequent snapshots, so restarts go through snapshot restore too. */
static const char *const node_args[] = {"--snapshot-threshold", "256",
					"--snapshot-trailing", "64", NULL};

struct rig {
	struct it_bank a, b;
	load *l;
	struct fu_books books;
};

/* Banks (on host, NULL for loopback) and the load, for duration_ms. */
static void rig_start(struct rig *r, const char *host, unsigned threads,
		      unsigned impatient, uint32_t duration_ms)
{
	struct load_opts o = {0};
	char prefix[32];

	memset(r, 0, sizeof(*r));
	fu_bank_start(&r->a, host, "bank-a", "alice=1000000", NULL);
	/* A slow-ish phase two on one side keeps Confirms in flight when a
	 * fault lands. */
	fu_bank_start(&r->b, host, "bank-b", "bob=1000000",
		      (const char *const[]){"--confirm-delay-ms", "30", NULL});
	snprintf(prefix, sizeof(prefix), "ld%d", (int)getpid());
	o.cluster = cluster.endpoints;
	o.bank_a = r->a.endpoint;
	o.bank_b = r->b.endpoint;
	o.account_a = "alice";
	o.account_b = "bob";
	o.prefix = prefix;
	o.threads = threads;
	o.max_tx = 200000;
	o.duration_ms = duration_ms;
	o.max_amount = 100;
	o.tx_timeout_ms = TX_TIMEOUT_MS;
	o.commit_wait_ms = 2000;
	o.retry_budget_ms = 8000;
	o.impatient = impatient;
	cr_assert_eq(load_start(&o, &r->l), 0);
	r->books.bank_a = &r->a;
	r->books.bank_b = &r->b;
	r->books.account_a = "alice";
	r->books.account_b = "bob";
	r->books.initial_a = INITIAL;
	r->books.initial_b = INITIAL;
}

/* The faults are over at faults_end: let the load run on a little (the
 * cluster must serve again), stop it, and check everything. */
static void rig_finish(struct rig *r, uint64_t faults_end)
{
	struct load_stats s;
	uint64_t deadline = faults_end + SETTLE_BOUND_MS;
	int violations;

	tu_sleep_ms(2000);
	load_stop(r->l);
	load_join(r->l);
	s = load_stats(r->l);
	fprintf(stderr,
		"load: %zu attempted, %zu commits acknowledged, %zu commits "
		"failed, %zu rolled back early, %zu begins failed\n",
		s.attempted, s.commit_acked, s.commit_failed, s.rolled_back,
		s.begin_failed);
	{
		size_t n, i, slow = 0;
		const struct load_tx *t = load_txs(r->l, &n);
		uint64_t longest = 0;
		for (i = 0; i < n; i++) {
			uint64_t d = t[i].end_ms - t[i].start_ms;
			longest = d > longest ? d : longest;
			slow += d > 1000;
		}
		fprintf(stderr,
			"load: longest transaction %llu ms, %zu over 1 s\n",
			(unsigned long long)longest, slow);
	}
	cr_assert_gt(s.commit_acked, 0, "no commit at all");
	cr_assert_neq(load_first_ack_after(r->l, faults_end), 0,
		      "no commit was acknowledged after the faults stopped");
	violations = fu_check(&cluster, &r->books, r->l, deadline);
	if (violations != 0) {
		for (int i = 0; i < cluster.n; i++)
			it_show_log(cluster.nodes[i].proc);
		fprintf(stderr, "test files kept in %s\n", it_dir());
		setenv("SETTLE_KEEP_TEST_DIR", "1", 1);
	}
	cr_assert_eq(violations, 0, "%d invariant violation(s), see above",
		     violations);
	load_free(r->l);
	fu_assert_no_sanitizer_reports(&cluster);
}

static int leader_or_fail(int skip)
{
	int ld = fu_leader_except(&cluster, skip, 20000);

	if (ld < 0) {
		for (int i = 0; i < cluster.n; i++)
			it_show_log(cluster.nodes[i].proc);
		cr_assert_fail("no leader within 20 s");
	}
	return ld;
}

Test(faults, kill_leader_three_times)
{
	struct rig r;
	int round;

	fu_cluster_start(&cluster, 3, node_args);
	rig_start(&r, NULL, 4, 2, 60000);
	tu_sleep_ms(1500);
	for (round = 0; round < 3; round++) {
		int ld = leader_or_fail(-1);

		fprintf(stderr, "round %d: SIGKILL leader node %d\n", round,
			cluster.nodes[ld].id);
		fu_kill(&cluster, ld);
		/* Another node must take over while the old one is down. */
		leader_or_fail(ld);
		tu_sleep_ms(1500);
		fu_restart(&cluster, ld);
		tu_sleep_ms(1500);
	}
	rig_finish(&r, load_mono_ms());
}

Test(faults, kill_follower)
{
	struct rig r;
	int ld, f;

	fu_cluster_start(&cluster, 3, node_args);
	rig_start(&r, NULL, 4, 2, 60000);
	tu_sleep_ms(1500);
	ld = leader_or_fail(-1);
	f = (ld + 1) % cluster.n;
	fprintf(stderr, "SIGKILL follower node %d\n", cluster.nodes[f].id);
	fu_kill(&cluster, f);
	tu_sleep_ms(3000);
	/* The leader still has a majority: it must go on committing. */
	{
		uint64_t since = load_mono_ms();
		tu_sleep_ms(1500);
		cr_assert_neq(load_first_ack_after(r.l, since), 0,
			      "no commit while one follower was down");
	}
	fu_restart(&cluster, f);
	tu_sleep_ms(1500);
	rig_finish(&r, load_mono_ms());
	cr_assert(fu_wait_caught_up(&cluster, 20000),
		  "the restarted follower did not catch up");
}

/* Every node restarted with killshim.c preloaded (disarmed): its signal then
 * kills it at a chosen LMDB write. */
static void preload_killshim(void)
{
	for (int i = 0; i < cluster.n; i++) {
		it_preload_killshim(cluster.nodes[i].proc);
		fu_kill(&cluster, i);
		fu_restart(&cluster, i);
	}
}

/* Whether node i's log says killshim killed it. */
static bool killed_by_shim(int i, char *line, size_t len)
{
	FILE *f = fopen(cluster.nodes[i].proc->log, "r");
	bool found = false;

	line[0] = '\0';
	if (f == NULL)
		return false;
	while (!found && fgets(line, (int)len, f) != NULL)
		found = strncmp(line, "killshim: ", 10) == 0;
	fclose(f);
	return found;
}

/*
 * SIGKILL in the middle of a batched apply: entries are applied into one
 * LMDB write transaction per loop iteration (docs/ARCHITECTURE.md, "Apply
 * batch"), and killshim.c kills a node at its Nth LMDB write after its signal
 * (N random, 5..200): a follower, then the leader, under load. Each comes
 * back, replays what its store lacked from the raft log and catches up;
 * nothing acknowledged is lost, no branch goes both ways.
 */
Test(faults, kill_mid_batch)
{
	struct rig r;
	char line[256];
	unsigned seed = (unsigned)getpid();

	fu_cluster_start(&cluster, 3, node_args);
	preload_killshim();
	leader_or_fail(-1);
	rig_start(&r, NULL, 4, 2, 60000);
	tu_sleep_ms(1500);
	for (int round = 0; round < 2; round++) {
		int ld = leader_or_fail(-1);
		int v = round == 0 ? (ld + 1) % cluster.n : ld;
		struct it_proc *p = cluster.nodes[v].proc;
		char kv[64];
		uint64_t end;

		snprintf(kv, sizeof(kv), "SETTLE_KILL_AFTER_PUTS=%d",
			 5 + (int)(rand_r(&seed) % 196));
		fprintf(stderr,
			"round %d: %s node %d dies at an LMDB write (%s)\n",
			round, v == ld ? "leader" : "follower",
			cluster.nodes[v].id, kv);
		/* The count is read at start: restart it with it, then arm. */
		it_setenv(p, kv);
		fu_kill(&cluster, v);
		fu_restart(&cluster, v);
		it_wait_port(p, cluster.nodes[v].port, 20000);
		if (round == 1) /* leadership back to it, to kill a leader */
			fu_transfer_to(&cluster, v);
		tu_sleep_ms(500);
		/* killshim.c's KILLSHIM_ARM: settled keeps SIGUSR1 and
		 * SIGUSR2 for its log level. */
		cr_assert_eq(kill(p->pid, SIGRTMIN + 4), 0);
		end = load_mono_ms() + 20000;
		while (it_alive(p) && load_mono_ms() < end)
			tu_sleep_ms(20);
		cr_assert_not(it_alive(p),
			      "node %d still alive 20 s after "
			      "the shim's signal",
			      cluster.nodes[v].id);
		cr_assert(killed_by_shim(v, line, sizeof(line)),
			  "node %d died, but not by killshim",
			  cluster.nodes[v].id);
		fprintf(stderr, "node %d: %s", cluster.nodes[v].id, line);
		/* Back without a kill pending; the first lines it applies
		 * are the ones its store lost. */
		it_setenv(p, "SETTLE_KILL_AFTER_PUTS=0");
		leader_or_fail(v);
		fu_restart(&cluster, v);
		tu_sleep_ms(1500);
	}
	rig_finish(&r, load_mono_ms());
	/* 60 s, as in test_catchup: a killed leader restarted behind the
	 * new leader's snapshot gets an InstallSnapshot, ignored by raft
	 * 0.15 if the node is writing a snapshot of its own, as a node
	 * catching up under load often is; it comes again after the install
	 * timeout (coord_install_timeout_ms()). With raft's default of
	 * 30 s, two ignored sends missed the 60 s: the likely cause of this
	 * test's failures in CI. */
	cr_assert(fu_wait_caught_up(&cluster, 60000),
		  "the killed nodes did not catch up");
}

/*
 * settle-bench on libsettle's asynchronous client, 128 transactions in
 * flight on one connection, while the leader is SIGKILLed: every
 * operation on the dead connection moves to the new leader and ends (no
 * error), and none is applied twice: Begin and Commit retried with their
 * cmd_id, the participant's business handler ran exactly 4 times per
 * transaction (2 Tries, 2 Confirms or Cancels), as many as the bench
 * counted.
 */
Test(faults, async_client_rides_out_a_leader_kill)
{
	char *argv[] = {(char *)it_bin("settle-bench"),
			"--cluster",
			cluster.endpoints,
			"--concurrency",
			"128",
			"--duration",
			"8",
			"--rollback-ratio",
			"0.2",
			"--interval",
			"1",
			"--json",
			NULL};
	struct it_proc *bench;
	char *out = NULL;
	size_t len = 0;
	FILE *f;
	uint64_t end;

	fu_cluster_start(&cluster, 3, node_args);
	int ld = leader_or_fail(-1);
	bench = it_spawn("bench", argv);
	tu_sleep_ms(3000);
	cr_assert(it_alive(bench), "settle-bench ended early");
	fprintf(stderr, "SIGKILL leader node %d under the bench\n",
		cluster.nodes[ld].id);
	fu_kill(&cluster, ld);
	leader_or_fail(ld);
	end = load_mono_ms() + 60000;
	while (it_alive(bench) && load_mono_ms() < end)
		tu_sleep_ms(50);
	cr_assert_not(it_alive(bench), "settle-bench still running");
	f = fopen(bench->log, "r");
	cr_assert_not_null(f);
	cr_assert_geq(getdelim(&out, &len, '\0', f), 0);
	fclose(f);
	fprintf(stderr, "%s", out);
	cr_assert_eq(it_json_num(out, "errors"), 0, "%s", out);
	long long done =
	    it_json_num(out, "committed") + it_json_num(out, "aborted");
	cr_assert_gt(it_json_num(out, "committed"), 0, "%s", out);
	cr_assert_gt(it_json_num(out, "aborted"), 0, "%s", out);
	cr_assert_eq(it_json_num(out, "participant_calls"), 4 * done, "%s",
		     out);
	cr_assert_not_null(strstr(out, "\"client\":\"async\""), "%s", out);
	free(out);
	fu_restart(&cluster, ld);
	cr_assert(fu_wait_caught_up(&cluster, 60000),
		  "the killed node did not catch up");
	fu_assert_no_sanitizer_reports(&cluster);
}

Test(faults, power_loss)
{
	struct rig r;
	int i;

	fu_cluster_start(&cluster, 3, node_args);
	rig_start(&r, NULL, 4, 2, 60000);
	tu_sleep_ms(2000);
	fprintf(stderr, "SIGKILL every node\n");
	for (i = 0; i < cluster.n; i++)
		fu_kill(&cluster, i);
	tu_sleep_ms(1000);
	for (i = 0; i < cluster.n; i++)
		fu_restart(&cluster, i);
	leader_or_fail(-1);
	tu_sleep_ms(1000);
	rig_finish(&r, load_mono_ms());
}

Test(faults, pause_leader_past_election)
{
	struct rig r;
	int ld, nl;

	fu_cluster_start(&cluster, 3, node_args);
	rig_start(&r, NULL, 4, 2, 60000);
	tu_sleep_ms(1500);
	ld = leader_or_fail(-1);
	fprintf(stderr, "SIGSTOP leader node %d\n", cluster.nodes[ld].id);
	fu_pause(&cluster, ld);
	nl = leader_or_fail(ld);
	cr_assert_neq(nl, ld);
	/* Well past the election: the others have moved on by a term or
	 * more when the old leader wakes up with its stale view. */
	tu_sleep_ms(3 * FU_ELECTION_TIMEOUT_MS);
	fprintf(stderr, "SIGCONT node %d (new leader node %d)\n",
		cluster.nodes[ld].id, cluster.nodes[nl].id);
	fu_resume(&cluster, ld);
	tu_sleep_ms(3000);
	rig_finish(&r, load_mono_ms());
}

Test(faults, partition_leader_netns)
{
	char why[256];
	struct rig r;
	int ld, nl, round;

	if (!fu_netns_available(why, sizeof(why)))
		cr_skip_test("network partition test skipped: %s", why);
	fu_cluster_start_netns(&cluster, 3, node_args);
	rig_start(&r, cluster.host, 4, 2, 60000);
	tu_sleep_ms(1500);
	for (round = 0; round < 2; round++) {
		ld = leader_or_fail(-1);
		fprintf(stderr, "round %d: cut leader node %d off\n", round,
			cluster.nodes[ld].id);
		fu_isolate(&cluster, ld);
		nl = leader_or_fail(ld);
		cr_assert_neq(nl, ld);
		/* The old leader still reaches clients and banks; it must
		 * not decide or drive anything meanwhile. */
		tu_sleep_ms(3000);
		fprintf(stderr, "heal node %d\n", cluster.nodes[ld].id);
		fu_heal(&cluster, ld);
		tu_sleep_ms(2000);
	}
	rig_finish(&r, load_mono_ms());
}

/* ---- chaos/random: scripts/chaos ----------------------------------------- */

static int rnd(int n)
{
	return (int)(load_mono_ms() * 2654435761u % (uint64_t)n);
}

TestSuite(chaos, .init = setup, .fini = teardown, .timeout = 86400);

Test(chaos, random)
{
	const char *env = getenv("SETTLE_CHAOS_SECONDS");
	bool netns = getenv("SETTLE_CHAOS_NETNS") != NULL;
	char why[256];
	uint64_t end;
	struct rig r;
	int seconds, faults = 0;

	if (env == NULL || (seconds = atoi(env)) <= 0)
		cr_skip_test("set SETTLE_CHAOS_SECONDS (scripts/chaos)");
	if (netns && !fu_netns_available(why, sizeof(why))) {
		fprintf(stderr, "chaos: no partitions: %s\n", why);
		netns = false;
	}
	if (netns)
		fu_cluster_start_netns(&cluster, 3, node_args);
	else
		fu_cluster_start(&cluster, 3, node_args);
	rig_start(&r, netns ? cluster.host : NULL, 4, 2,
		  (uint32_t)seconds * 1000 + 60000);
	end = load_mono_ms() + (uint64_t)seconds * 1000;
	while (load_mono_ms() < end) {
		int ld = leader_or_fail(-1), kind = rnd(netns ? 5 : 4), i;
		int other = (ld + 1 + rnd(cluster.n - 1)) % cluster.n;

		tu_sleep_ms(500 + rnd(2500));
		faults++;
		switch (kind) {
		case 0:
			fprintf(stderr, "chaos %d: SIGKILL leader %d\n", faults,
				cluster.nodes[ld].id);
			fu_kill(&cluster, ld);
			tu_sleep_ms(500 + rnd(3000));
			fu_restart(&cluster, ld);
			break;
		case 1:
			fprintf(stderr, "chaos %d: SIGKILL follower %d\n",
				faults, cluster.nodes[other].id);
			fu_kill(&cluster, other);
			tu_sleep_ms(500 + rnd(3000));
			fu_restart(&cluster, other);
			break;
		case 2:
			fprintf(stderr, "chaos %d: power loss\n", faults);
			for (i = 0; i < cluster.n; i++)
				fu_kill(&cluster, i);
			tu_sleep_ms(200 + rnd(1500));
			for (i = 0; i < cluster.n; i++)
				fu_restart(&cluster, i);
			break;
		case 3:
			fprintf(stderr, "chaos %d: SIGSTOP leader %d\n", faults,
				cluster.nodes[ld].id);
			fu_pause(&cluster, ld);
			tu_sleep_ms(FU_ELECTION_TIMEOUT_MS + rnd(3000));
			fu_resume(&cluster, ld);
			break;
		default:
			fprintf(stderr, "chaos %d: partition leader %d\n",
				faults, cluster.nodes[ld].id);
			fu_isolate(&cluster, ld);
			tu_sleep_ms(FU_ELECTION_TIMEOUT_MS + rnd(3000));
			fu_heal(&cluster, ld);
			break;
		}
	}
	fprintf(stderr, "chaos: %d faults in %d s; checking\n", faults,
		seconds);
	rig_finish(&r, load_mono_ms());
}

/* One test at a time: each is a whole cluster with its load. */
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

/*
 * Sagas under faults, with real settled and settle-bank processes:
 *  - duplicate and late deliveries, made deterministic by a frame-aware
 *    proxy in front of a bank (saga_util.h): a lost reply makes the
 *    coordinator repeat a call the bank already applied; an Action held
 *    in the network past its call timeout, or sent by a coordinator that
 *    was then killed, arrives after its Compensate;
 *  - a compensation that cannot undo yet (the credit was spent), retried;
 *  - SIGKILL of the coordinator between steps and while compensations
 *    are in flight, then restart;
 *  - leader failover on a 3-node cluster while sagas run: SIGKILL, a
 *    leadership transfer, SIGKILL; and the leader cut off from its peers
 *    (network namespaces, as root; skipped elsewhere).
 * In each, the banks' logs show every action and compensation applied at
 * most once (settle-bank logs a line each time its handler runs; the
 * barrier stops repeats before it) and the balances add up.
 *
 * One test at a time (main() below): the cluster test alone is three ASan
 * nodes and two banks, which is all two cores can take.
 */
#include <criterion/criterion.h>
#include <criterion/options.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_util.h"
#include "saga_util.h"
#include "tcc_util.h"
#include "test_faults_util.h"
#include "wal/fsm.h"
#include "wal/saga.h"

#define WAIT_MS 30000
/* How long a client keeps retrying across a leader's death: an election
 * takes a second or two, but on a loaded 2-core machine (make -j2 check
 * beside database-backed XA tests) it took over 20 s once. */
#define FO_RETRY_BUDGET_MS 45000
#define ST		   SU_ST
#define TX		   SU_TX
#define M(x)		   SETTLE__V1__METHOD__##x

static struct fu_cluster cluster;

static void setup(void)
{
	cu_setup();
	memset(&cluster, 0, sizeof(cluster));
}

static void teardown(void)
{
	fu_cluster_teardown(&cluster);
	it_teardown();
}

TestSuite(saga_faults, .init = setup, .fini = teardown, .timeout = 90);

static const char *const node_args[] = {"--retry-base", "50ms", "--retry-max",
					"200ms", NULL};

#define CHECK(tx, cond, ...)                                                   \
	do {                                                                   \
		if (!(cond)) {                                                 \
			su_show_tx(tx);                                        \
			cr_assert_fail(__VA_ARGS__);                           \
		}                                                              \
	} while (0)

struct world {
	struct it_node node;
	struct it_bank a, b;
	settle_client *c;
};

/* A node, bank-a (alice) and bank-b (bob); SETTLE_TRACE on bank-b when
 * trace_b, so that its barrier's skips and refusals show in its log. */
static void world_start(struct world *w, const char *const *a_args,
			const char *const *b_args, bool trace_b)
{
	it_node_start(&w->node, 1, node_args);
	it_bank_start(&w->a, "bank-a", "alice=1000", a_args);
	if (trace_b)
		setenv("SETTLE_TRACE", "1", 1);
	it_bank_start(&w->b, "bank-b", "bob=500", b_args);
	unsetenv("SETTLE_TRACE");
	w->c = su_client(w->node.endpoint, 5000);
}

/* SIGTERM: a clean exit and no sanitizer report in the node's log. */
static void stop_clean(struct it_proc *node)
{
	char report[512];

	it_stop(node);
	cr_assert(
	    !cu_log_has_sanitizer_report(node->log, report, sizeof(report)),
	    "sanitizer report: %s", report);
}

static void world_stop(struct world *w)
{
	settle_client_close(w->c);
	stop_clean(w->node.proc);
}

static void expect_money(const struct world *w, long long alice, long long bob)
{
	long long a = su_balance(&w->a, "alice");
	long long b = su_balance(&w->b, "bob");

	cr_assert_eq(a, alice, "alice has %lld, want %lld", a, alice);
	cr_assert_eq(b, bob, "bob has %lld, want %lld", b, bob);
	cr_assert_eq(a + b, 1500, "money created or lost");
}

/* SIGKILL the node and start it again; a fresh client. */
static void kill_and_restart(struct world *w)
{
	settle_client_close(w->c);
	it_kill(w->node.proc);
	it_restart(w->node.proc);
	it_node_wait_leader(&w->node, 20000);
	w->c = su_client(w->node.endpoint, 5000);
}

/* ---- 4. Duplicate and late deliveries ----------------------------------- */

Test(saga_faults, lost_replies_make_repeats_that_change_nothing)
{
	struct world w;
	struct su_proxy *px;
	struct su_step s[3];
	Settle__V1__TxInfo *tx;
	char skip[128];
	int calls;

	world_start(&w, NULL, NULL, true);
	px = su_proxy_start(w.b.endpoint);
	/* "ok": the Action's answer is lost once; "undo": step 3 fails and
	 * the answer to step 2's Compensate is lost once. */
	su_proxy_drop_reply(px, M(ACTION), "dup-ok", 2, 1);
	su_proxy_drop_reply(px, M(COMPENSATE), "dup-undo", 2, 1);
	memset(s, 0, sizeof(s));
	s[0] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "debit-alice",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = su_proxy_endpoint(px),
				.name = "credit-bob",
				.payload = "account=bob;amount=100",
				.call_timeout_ms = 800};
	su_submit(w.c, "dup-ok", SETTLE_SAGA_BACKWARD, false, s, 2);
	s[2] = (struct su_step){.endpoint = w.b.endpoint,
				.name = "debit-bob-too-much",
				.payload = "account=bob;amount=-999999"};
	su_submit(w.c, "dup-undo", SETTLE_SAGA_BACKWARD, false, s, 3);

	tx = su_wait_final(w.c, "dup-ok", TX(SAGA_SUCCEEDED), WAIT_MS,
			   w.node.proc);
	su_expect_step(tx, 2, ST(STEP_DONE));
	/* Called again: the first answer never came back. */
	CHECK(tx, su_step(tx, 2)->attempts >= 2, "step 2 attempts %u",
	      su_step(tx, 2)->attempts);
	CHECK(tx, su_event_seq(tx, "action", 2, "retry attempt 1") != 0,
	      "no timed-out first attempt in the history");
	settle_tx_info_free(tx);
	calls = su_proxy_forwarded(px, M(ACTION), "dup-ok", 2);
	cr_assert_geq(calls, 2);
	cr_assert_eq(su_proxy_answer(px, M(ACTION), "dup-ok", 2, 0), 0);
	cr_assert_eq(su_proxy_answer(px, M(ACTION), "dup-ok", 2, 1), 0);
	/* Every call answered OK and the handler ran once: each repeat was
	 * a barrier skip. */
	cr_assert_eq(su_bank_count(&w.b, "action", "dup-ok", 2, NULL), 1);
	snprintf(skip, sizeof(skip), "action %s/%u: barrier skip", "dup-ok", 2);
	cr_assert_eq(su_log_count(w.b.proc->log, skip), calls - 1);

	tx = su_wait_final(w.c, "dup-undo", TX(SAGA_COMPENSATED), WAIT_MS,
			   w.node.proc);
	su_expect_step(tx, 2, ST(STEP_COMPENSATED));
	su_expect_step(tx, 1, ST(STEP_COMPENSATED));
	CHECK(tx, su_step(tx, 2)->attempts >= 2,
	      "step 2 compensation attempts %u", su_step(tx, 2)->attempts);
	settle_tx_info_free(tx);
	calls = su_proxy_forwarded(px, M(COMPENSATE), "dup-undo", 2);
	cr_assert_geq(calls, 2);
	cr_assert_eq(su_bank_count(&w.b, "compensate", "dup-undo", 2, NULL), 1);
	snprintf(skip, sizeof(skip), "compensate %s/%u: barrier skip",
		 "dup-undo", 2);
	cr_assert_eq(su_log_count(w.b.proc->log, skip), calls - 1);
	cr_assert_eq(su_bank_count(&w.a, "compensate", "dup-undo", 1, "ok"), 1);

	/* dup-ok moved 100; dup-undo moved nothing. */
	expect_money(&w, 900, 600);
	world_stop(&w);
}

Test(saga_faults, action_overtaken_by_its_compensate_is_refused)
{
	struct world w;
	struct su_proxy *px;
	struct su_step s[2];
	Settle__V1__TxInfo *tx;
	const Settle__V1__BranchInfo *b2;
	int code = -1;

	world_start(&w, NULL, NULL, true);
	px = su_proxy_start(w.b.endpoint);
	/* The network holds the first Action of step 2 until we let it go:
	 * the call times out, and one attempt is all the step may take. */
	su_proxy_hold(px, M(ACTION), "late", 2, 1, 600000);
	memset(s, 0, sizeof(s));
	s[0] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "debit-alice",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = su_proxy_endpoint(px),
				.name = "credit-bob",
				.payload = "account=bob;amount=100",
				.max_attempts = 1,
				.call_timeout_ms = 400};
	su_submit(w.c, "late", SETTLE_SAGA_BACKWARD, false, s, 2);

	tx = su_wait_final(w.c, "late", TX(SAGA_COMPENSATED), WAIT_MS,
			   w.node.proc);
	b2 = su_step(tx, 2);
	su_expect_step(tx, 2, ST(STEP_COMPENSATED));
	su_expect_step(tx, 1, ST(STEP_COMPENSATED));
	CHECK(tx, strstr(b2->last_error, "gave up") != NULL,
	      "step 2 error '%s'", b2->last_error);
	/* The Compensate reached bank-b; the Action still has not. */
	cr_assert_eq(su_proxy_forwarded(px, M(ACTION), "late", 2), 0);
	cr_assert_eq(su_proxy_forwarded(px, M(COMPENSATE), "late", 2), 1);
	cr_assert_eq(su_proxy_answer(px, M(COMPENSATE), "late", 2, 0), 0);
	settle_tx_info_free(tx);
	/* A null compensation: nothing to undo, the handler never ran. */
	cr_assert_eq(su_bank_count(&w.b, "compensate", "late", 2, NULL), 0);
	expect_money(&w, 1000, 500);

	/* Now the Action arrives, after its Compensate: refused. */
	su_proxy_release(px);
	for (int i = 0; i < 500 && code < 0; i++) {
		code = su_proxy_answer(px, M(ACTION), "late", 2, 0);
		if (code < 0)
			tu_sleep_ms(20);
	}
	cr_assert_eq(code, SETTLE__V1__CODE__REFUSED,
		     "the late action was answered %d", code);
	cr_assert_eq(su_bank_count(&w.b, "action", "late", 2, NULL), 0,
		     "the late action ran the handler");
	cr_assert_eq(su_log_count(w.b.proc->log, "action late/2 attempt 1: "
						 "REFUSED"),
		     1);
	/* And nothing moved for it. */
	expect_money(&w, 1000, 500);
	tx = su_wait_final(w.c, "late", TX(SAGA_COMPENSATED), WAIT_MS,
			   w.node.proc);
	settle_tx_info_free(tx);
	world_stop(&w);
}

static bool awaiting_held_branch(const Settle__V1__TxInfo *tx, void *arg)
{
	(void)arg;
	return tx->n_branches == 3 && tx->state == TX(SAGA_COMPENSATING) &&
	       tx->branches[1]->state == ST(STEP_ACTING) &&
	       tx->branches[2]->state == ST(STEP_ACTION_FAILED);
}

Test(saga_faults, stale_action_of_a_killed_coordinator_is_refused)
{
	struct world w;
	struct su_proxy *px;
	struct su_step s[3];
	Settle__V1__TxInfo *tx;
	uint32_t ids[4];
	int code = -1;

	world_start(&w, NULL, NULL, true);
	px = su_proxy_start(w.b.endpoint);
	su_proxy_hold(px, M(ACTION), "stale", 2, 1, 600000);
	memset(s, 0, sizeof(s));
	/* 0 -> {1, 2}: branch 1's Action is stuck in the network, branch 2
	 * fails; the coordinator awaits branch 1's call. */
	s[0] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "root",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = su_proxy_endpoint(px),
				.name = "held-left",
				.payload = "account=bob;amount=100",
				.deps = {0},
				.n_deps = 1,
				.call_timeout_ms = 60000};
	s[2] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "failing-right",
				.payload = "account=alice;amount=-999999",
				.deps = {0},
				.n_deps = 1};
	su_submit(w.c, "stale", SETTLE_SAGA_BACKWARD, true, s, 3);
	tx = su_wait(w.c, "stale", awaiting_held_branch, NULL,
		     "awaiting the held branch", 10000, w.node.proc);
	settle_tx_info_free(tx);

	/* The coordinator dies with that call outstanding. Restarted, it
	 * has no call in flight: the branch is ended, as it may have
	 * acted, and compensated (a null compensation at bank-b). */
	kill_and_restart(&w);
	tx = su_wait_final(w.c, "stale", TX(SAGA_COMPENSATED), WAIT_MS,
			   w.node.proc);
	su_expect_step(tx, 1, ST(STEP_COMPENSATED));
	su_expect_step(tx, 2, ST(STEP_COMPENSATED));
	su_expect_step(tx, 3, ST(STEP_COMPENSATED));
	su_expect_reverse_completion(tx);
	CHECK(tx, su_events(tx, "compensate", "ok", ids, 4) == 3 && ids[2] == 1,
	      "compensations");
	CHECK(tx, su_event_seq(tx, "action", 2, "ended") != 0,
	      "branch 1 was not ended after the restart");
	settle_tx_info_free(tx);
	cr_assert_eq(su_proxy_forwarded(px, M(ACTION), "stale", 2), 0);
	cr_assert_eq(su_proxy_forwarded(px, M(COMPENSATE), "stale", 2), 1);
	cr_assert_eq(su_bank_count(&w.b, "compensate", "stale", 2, NULL), 0);

	/* The dead coordinator's Action finally arrives: refused. */
	su_proxy_release(px);
	for (int i = 0; i < 500 && code < 0; i++) {
		code = su_proxy_answer(px, M(ACTION), "stale", 2, 0);
		if (code < 0)
			tu_sleep_ms(20);
	}
	cr_assert_eq(code, SETTLE__V1__CODE__REFUSED,
		     "the stale action was answered %d", code);
	cr_assert_eq(su_bank_count(&w.b, "action", "stale", 2, NULL), 0);
	expect_money(&w, 1000, 500);
	world_stop(&w);
}

/* ---- Compensation that cannot undo yet --------------------------------- */

static bool step_done(const Settle__V1__TxInfo *tx, void *arg)
{
	uint32_t step = *(uint32_t *)arg;

	return tx->n_branches >= step &&
	       tx->branches[step - 1]->state == ST(STEP_DONE);
}

static bool undo_blocked(const Settle__V1__TxInfo *tx, void *arg)
{
	(void)arg;
	return tx->state == TX(SAGA_COMPENSATING) &&
	       tx->branches[0]->state == ST(STEP_COMPENSATING) &&
	       tx->branches[0]->attempts >= 2 &&
	       strstr(tx->branches[0]->last_error, "already spent") != NULL;
}

Test(saga_faults, compensation_retried_until_it_can_undo)
{
	static const char *const slow[] = {"--confirm-delay-ms", "800", NULL};
	struct it_node node;
	struct it_bank a, b;
	struct su_step x[2], y[2], z[2];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	uint32_t one = 1;

	it_node_start(&node, 1, node_args);
	it_bank_start(&a, "bank-a", "alice=1000", slow);
	it_bank_start(&b, "bank-b", "bob=0,carol=300", NULL);
	c = su_client(node.endpoint, 5000);
	memset(x, 0, sizeof(x));
	memset(y, 0, sizeof(y));
	memset(z, 0, sizeof(z));
	/* x: bob gets 100, then a step at the slow bank fails. */
	x[0] = (struct su_step){.endpoint = b.endpoint,
				.name = "credit-bob",
				.payload = "account=bob;amount=100"};
	x[1] = (struct su_step){.endpoint = a.endpoint,
				.name = "debit-alice-too-much",
				.payload = "account=alice;amount=-999999"};
	/* y: meanwhile bob spends those 100 (sagas are not isolated). */
	y[0] = (struct su_step){.endpoint = b.endpoint,
				.name = "debit-bob",
				.payload = "account=bob;amount=-100"};
	y[1] = (struct su_step){.endpoint = a.endpoint,
				.name = "credit-alice",
				.payload = "account=alice;amount=100"};
	/* z: carol gives bob 100 again. */
	z[0] = (struct su_step){.endpoint = b.endpoint,
				.name = "debit-carol",
				.payload = "account=carol;amount=-100"};
	z[1] = (struct su_step){.endpoint = b.endpoint,
				.name = "credit-bob",
				.payload = "account=bob;amount=100"};

	su_submit(c, "undo-x", SETTLE_SAGA_BACKWARD, false, x, 2);
	tx = su_wait(c, "undo-x", step_done, &one, "x step 1 done", 10000,
		     node.proc);
	settle_tx_info_free(tx);
	su_submit(c, "undo-y", SETTLE_SAGA_BACKWARD, false, y, 2);
	tx = su_wait(c, "undo-y", step_done, &one, "y step 1 done", 10000,
		     node.proc);
	settle_tx_info_free(tx);

	/* x cannot take bob's 100 back: its compensation answers RETRY,
	 * is retried, and Query says why. */
	tx = su_wait(c, "undo-x", undo_blocked, NULL,
		     "x's compensation retried", WAIT_MS, node.proc);
	settle_tx_info_free(tx);
	cr_assert_eq(su_bank_count(&b, "compensate", "undo-x", 1, "ok"), 0);

	su_submit(c, "undo-z", SETTLE_SAGA_BACKWARD, false, z, 2);
	tx = su_wait_final(c, "undo-x", TX(SAGA_COMPENSATED), WAIT_MS,
			   node.proc);
	su_expect_step(tx, 1, ST(STEP_COMPENSATED));
	su_expect_step(tx, 2, ST(STEP_COMPENSATED));
	su_expect_reverse_completion(tx);
	CHECK(tx, su_event_seq(tx, "compensate", 1, "retry") != 0,
	      "no retried compensation in the history");
	settle_tx_info_free(tx);
	settle_tx_info_free(
	    su_wait_final(c, "undo-y", TX(SAGA_SUCCEEDED), WAIT_MS, node.proc));
	settle_tx_info_free(
	    su_wait_final(c, "undo-z", TX(SAGA_SUCCEEDED), WAIT_MS, node.proc));
	cr_assert_eq(su_bank_count(&b, "compensate", "undo-x", 1, "ok"), 1);
	cr_assert_eq(su_balance(&a, "alice"), 1100);
	cr_assert_eq(su_balance(&b, "bob"), 0);
	cr_assert_eq(su_balance(&b, "carol"), 200);
	settle_client_close(c);
	stop_clean(node.proc);
}

/* ---- 5. SIGKILL of the coordinator -------------------------------------- */

/* Wait until the proxy has passed a call of method for gid/step (count
 * calls in all), i.e. it is at the bank. */
static void wait_forwarded(struct su_proxy *px, int method, const char *gid,
			   uint32_t step, int count)
{
	for (int i = 0; i < 1000; i++) {
		if (su_proxy_forwarded(px, method, gid, step) >= count)
			return;
		tu_sleep_ms(10);
	}
	cr_assert_fail("%s/%u: call %d of method %d never reached the bank",
		       gid, step, count, method);
}

Test(saga_faults, coordinator_killed_between_steps)
{
	static const char *const slow[] = {"--confirm-delay-ms", "1000", NULL};
	struct world w;
	struct su_proxy *pb;
	struct su_step s[3];
	Settle__V1__TxInfo *tx;

	world_start(&w, NULL, slow, false);
	pb = su_proxy_start(w.b.endpoint);
	memset(s, 0, sizeof(s));
	s[0] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "debit-alice",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = su_proxy_endpoint(pb),
				.name = "credit-bob",
				.payload = "account=bob;amount=130"};
	s[2] = (struct su_step){.endpoint = su_proxy_endpoint(pb),
				.name = "fee-bob",
				.payload = "account=bob;amount=-30"};
	su_submit(w.c, "kill-steps", SETTLE_SAGA_BACKWARD, false, s, 3);

	/* Step 1 recorded, step 2 called (held at the slow bank): kill.
	 * Then again once step 2 is recorded and step 3 called. */
	wait_forwarded(pb, M(ACTION), "kill-steps", 2, 1);
	kill_and_restart(&w);
	wait_forwarded(pb, M(ACTION), "kill-steps", 3, 1);
	kill_and_restart(&w);

	tx = su_wait_final(w.c, "kill-steps", TX(SAGA_SUCCEEDED), WAIT_MS,
			   w.node.proc);
	for (uint32_t j = 1; j <= 3; j++) {
		su_expect_step(tx, j, ST(STEP_DONE));
		CHECK(tx, su_step(tx, j)->completion == j, "completion");
	}
	CHECK(tx, cu_events(tx, "compensate") == 0, "compensated");
	settle_tx_info_free(tx);
	/* Delivered again after each kill, applied once. */
	cr_assert_geq(su_proxy_forwarded(pb, M(ACTION), "kill-steps", 2), 2);
	cr_assert_geq(su_proxy_forwarded(pb, M(ACTION), "kill-steps", 3), 2);
	cr_assert_eq(su_bank_count(&w.a, "action", "kill-steps", 1, "ok"), 1);
	cr_assert_eq(su_bank_count(&w.b, "action", "kill-steps", 2, "ok"), 1);
	cr_assert_eq(su_bank_count(&w.b, "action", "kill-steps", 3, "ok"), 1);
	expect_money(&w, 900, 600);
	world_stop(&w);
}

static bool compensating_step(const Settle__V1__TxInfo *tx, void *arg)
{
	uint32_t step = *(uint32_t *)arg;

	return tx->state == TX(SAGA_COMPENSATING) &&
	       tx->branches[step - 1]->state == ST(STEP_COMPENSATING);
}

Test(saga_faults, coordinator_killed_during_compensation)
{
	static const char *const slow[] = {"--confirm-delay-ms", "1000", NULL};
	struct world w;
	struct su_proxy *pa, *pb;
	struct su_step s[3];
	Settle__V1__TxInfo *tx;
	uint32_t ids[8], step;
	size_t n;

	world_start(&w, slow, slow, false);
	pa = su_proxy_start(w.a.endpoint);
	pb = su_proxy_start(w.b.endpoint);
	memset(s, 0, sizeof(s));
	s[0] = (struct su_step){.endpoint = su_proxy_endpoint(pa),
				.name = "debit-alice",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = su_proxy_endpoint(pb),
				.name = "credit-bob",
				.payload = "account=bob;amount=100"};
	s[2] = (struct su_step){.endpoint = su_proxy_endpoint(pb),
				.name = "debit-bob-too-much",
				.payload = "account=bob;amount=-999999"};
	su_submit(w.c, "kill-undo", SETTLE_SAGA_BACKWARD, false, s, 3);

	/* Kill while step 2's compensation is at the bank, then again
	 * while step 1's is. */
	step = 2;
	tx = su_wait(w.c, "kill-undo", compensating_step, &step,
		     "step 2 compensating", WAIT_MS, w.node.proc);
	settle_tx_info_free(tx);
	wait_forwarded(pb, M(COMPENSATE), "kill-undo", 2, 1);
	kill_and_restart(&w);
	step = 1;
	tx = su_wait(w.c, "kill-undo", compensating_step, &step,
		     "step 1 compensating", WAIT_MS, w.node.proc);
	settle_tx_info_free(tx);
	wait_forwarded(pa, M(COMPENSATE), "kill-undo", 1, 1);
	kill_and_restart(&w);

	tx = su_wait_final(w.c, "kill-undo", TX(SAGA_COMPENSATED), WAIT_MS,
			   w.node.proc);
	for (uint32_t j = 1; j <= 3; j++)
		su_expect_step(tx, j, ST(STEP_COMPENSATED));
	n = su_events(tx, "compensate", "ok", ids, 8);
	CHECK(tx, n == 3 && ids[0] == 3 && ids[1] == 2 && ids[2] == 1,
	      "compensation order");
	settle_tx_info_free(tx);
	/* Each compensation delivered again after its kill, applied once. */
	cr_assert_geq(su_proxy_forwarded(pb, M(COMPENSATE), "kill-undo", 2), 2);
	cr_assert_geq(su_proxy_forwarded(pa, M(COMPENSATE), "kill-undo", 1), 2);
	cr_assert_eq(su_bank_count(&w.b, "compensate", "kill-undo", 2, "ok"),
		     1);
	cr_assert_eq(su_bank_count(&w.a, "compensate", "kill-undo", 1, "ok"),
		     1);
	cr_assert_eq(su_bank_count(&w.b, "compensate", "kill-undo", 3, NULL),
		     0);
	cr_assert_eq(su_bank_count(&w.b, "action", "kill-undo", 2, "ok"), 1);
	cr_assert_eq(su_bank_count(&w.a, "action", "kill-undo", 1, "ok"), 1);
	expect_money(&w, 1000, 500);
	world_stop(&w);
}

/* ---- 6. Leader failover on a 3-node cluster ----------------------------- */

/* Faults of the failover test; SETTLE_SAGA_FAILOVER_ROUNDS=N runs N
 * (a soak: every third round is a transfer, the others SIGKILLs). */
#define FO_ROUNDS 3
#define FO_START  100000LL

/* Saga i: alice -10, bob +10, bob -4, alice +4; every third one's third
 * step asks bob for more than he has, and the saga compensates. */
static bool fo_fails(int i)
{
	return i % 3 == 2;
}

static void fo_submit(settle_client *c, const struct it_bank *a,
		      const struct it_bank *b, int i)
{
	struct su_step s[4];
	char gid[32];

	memset(s, 0, sizeof(s));
	s[0] = (struct su_step){.endpoint = a->endpoint,
				.name = "debit-alice",
				.payload = "account=alice;amount=-10"};
	s[1] = (struct su_step){.endpoint = b->endpoint,
				.name = "credit-bob",
				.payload = "account=bob;amount=10"};
	s[2] = (struct su_step){.endpoint = b->endpoint,
				.name = "debit-bob",
				.payload = fo_fails(i)
					       ? "account=bob;amount=-99999999"
					       : "account=bob;amount=-4"};
	s[3] = (struct su_step){.endpoint = a->endpoint,
				.name = "credit-alice",
				.payload = "account=alice;amount=4"};
	snprintf(gid, sizeof(gid), "fo-%d", i);
	su_submit(c, gid, SETTLE_SAGA_BACKWARD, false, s, 4);
}

static int fo_leader(int skip)
{
	int ld = fu_leader_except(&cluster, skip, 20000);

	if (ld < 0) {
		for (int i = 0; i < cluster.n; i++)
			it_show_log(cluster.nodes[i].proc);
		cr_assert_fail("no leader within 20 s");
	}
	return ld;
}

/* How many of sagas first..last-1 are not final yet. */
static int fo_unfinished(settle_client *c, int first, int last)
{
	int n = 0;

	for (int i = first; i < last; i++) {
		Settle__V1__TxInfo *tx;
		char gid[32];

		snprintf(gid, sizeof(gid), "fo-%d", i);
		cr_assert_eq(settle_query(c, gid, false, &tx), 0,
			     "query %s: %s", gid, settle_client_errmsg(c));
		n += !settle_tx_state_final(tx->state);
		settle_tx_info_free(tx);
	}
	return n;
}

/* Ask the leader to hand leadership to another voter: it stays up, and
 * its driver stops with calls in flight. */
static void fo_transfer(settle_client *c)
{
	Settle__V1__ClusterTransferRequest req =
	    SETTLE__V1__CLUSTER_TRANSFER_REQUEST__INIT;
	int rv = settle_client_call(c, SETTLE__V1__METHOD__CLUSTER_TRANSFER,
				    &req.base, NULL, NULL);

	cr_assert_eq(rv, 0, "transfer: %s", settle_client_errmsg(c));
}

static void fo_check(settle_client *c, const struct it_bank *a,
		     const struct it_bank *b, int i)
{
	char gid[32];
	Settle__V1__TxInfo *tx;
	bool fails = fo_fails(i);

	snprintf(gid, sizeof(gid), "fo-%d", i);
	tx = su_wait_final(c, gid,
			   fails ? TX(SAGA_COMPENSATED) : TX(SAGA_SUCCEEDED),
			   WAIT_MS, NULL);
	su_expect_reverse_completion(tx);
	CHECK(tx,
	      su_events(tx, "compensate", "ok", NULL, 0) == (fails ? 3u : 0u),
	      "%s: compensations", gid);
	for (uint32_t j = 1; j <= 4; j++) {
		const struct it_bank *bk = j == 1 || j == 4 ? a : b;
		int acted = su_bank_count(bk, "action", gid, j, "ok");
		int undone = su_bank_count(bk, "compensate", gid, j, NULL);

		if (!fails) {
			su_expect_step(tx, j, ST(STEP_DONE));
			cr_assert_eq(acted, 1, "%s step %u acted %d times", gid,
				     j, acted);
			cr_assert_eq(undone, 0);
		} else if (j <= 2) {
			su_expect_step(tx, j, ST(STEP_COMPENSATED));
			cr_assert_eq(acted, 1, "%s step %u acted %d times", gid,
				     j, acted);
			cr_assert_eq(undone, 1,
				     "%s step %u compensated %d times", gid, j,
				     undone);
		} else if (j == 3) {
			su_expect_step(tx, j, ST(STEP_COMPENSATED));
			cr_assert_eq(acted, 0);
			cr_assert_eq(undone, 0,
				     "%s: null compensation ran the handler",
				     gid);
		} else {
			su_expect_step(tx, j, ST(STEP_SKIPPED));
			cr_assert_eq(acted + undone, 0);
		}
	}
	settle_tx_info_free(tx);
}

Test(saga_faults, leader_failover_mid_saga)
{
	/* Slow steps keep calls in flight when the leader goes. */
	static const char *const slow[] = {"--confirm-delay-ms", "250", NULL};
	struct it_bank a, b;
	settle_client *c;
	const char *env = getenv("SETTLE_SAGA_FAILOVER_ROUNDS");
	int rounds = env != NULL && atoi(env) > 0 ? atoi(env) : FO_ROUNDS;
	int next = 0, succeeded = 0;

	fu_cluster_start(&cluster, 3, node_args);
	fu_bank_start(&a, NULL, "bank-a", "alice=100000", slow);
	fu_bank_start(&b, NULL, "bank-b", "bob=100000", slow);
	c = su_client(cluster.endpoints, FO_RETRY_BUDGET_MS);

	/* SIGKILL, a graceful transfer, SIGKILL again. */
	for (int round = 0; round < rounds; round++) {
		int first = next, ld;

		for (int k = 0; k < 5; k++)
			fo_submit(c, &a, &b, next++);
		tu_sleep_ms(300);
		ld = fo_leader(-1);
		cr_assert_gt(fo_unfinished(c, first, next), 0,
			     "round %d: every saga ended before the fault",
			     round);
		if (round % 3 == 1) {
			fprintf(stderr, "round %d: leader node %d transfers\n",
				round, cluster.nodes[ld].id);
			fo_transfer(c);
			fo_submit(c, &a, &b, next++);
			continue;
		}
		fprintf(stderr, "round %d: SIGKILL leader node %d\n", round,
			cluster.nodes[ld].id);
		fu_kill(&cluster, ld);
		/* Submitted while the cluster elects: the client finds the
		 * new leader. */
		fo_submit(c, &a, &b, next++);
		fo_leader(ld);
		fu_restart(&cluster, ld);
	}
	cr_assert_eq(next, rounds * 6);

	for (int i = 0; i < next; i++) {
		fo_check(c, &a, &b, i);
		succeeded += !fo_fails(i);
	}
	settle_client_close(c);
	/* Each success moved 6 from alice to bob; the rest moved nothing. */
	cr_assert_eq(su_balance(&a, "alice"), FO_START - 6 * succeeded);
	cr_assert_eq(su_balance(&b, "bob"), FO_START + 6 * succeeded);
	/* Every node stops cleanly (a former leader included): nothing the
	 * driver held when it lost leadership leaks. */
	fu_wait_caught_up(&cluster, 10000);
	for (int i = 0; i < cluster.n; i++)
		it_stop(cluster.nodes[i].proc);
	fu_assert_no_sanitizer_reports(&cluster);
}

/*
 * Early calls whose reason never reached the log (wal/saga.h "Early
 * calls"). The leader calls step 2 as soon as step 1 answers OK, before
 * step 1's result is committed: here it can never be (both followers
 * were SIGKILLed first). At feature level 10 it calls each next step as
 * soon as the one before answers OK too, up to WAL_SAGA_EARLY_DEPTH (4)
 * steps ahead of step 1, and the sixth step never; at level 9 it calls
 * step 2 alone. The leader is SIGKILLed once bob's bank applied the last
 * step called. The next leader finds
 * step 1 ACTING and the others PENDING; its calls of step 1 are held in
 * the network until it gives up, and the saga compensates. Every step
 * that acted must be compensated too, the later ones first: no money
 * created.
 */
static void early_steps_of_a_dead_leader(uint32_t level)
{
	/* A long election timeout: the leader alone keeps leading (raft
	 * steps down after it without a quorum) while step 1 answers. */
	char lv[16];
	const char *args[] = {"--retry-base",
			      "50ms",
			      "--retry-max",
			      "200ms",
			      "--election-timeout",
			      "3s",
			      "--feature-level",
			      lv,
			      NULL};
	/* Level 10: six steps, of which 2 to 5 are called early (4 ahead of
	 * step 1, ACTING in the store) and 6 is not; level 9: three, of
	 * which only 2 is. */
	bool deep = level >= FSM_LEVEL_SAGA_DEEP;
	uint32_t n = deep ? 2 + WAL_SAGA_EARLY_DEPTH : 3;
	uint32_t last = deep ? 1 + WAL_SAGA_EARLY_DEPTH : 2; /* called */
	static const char *const fees[] = {"fee-1", "fee-2", "fee-3", "fee-4"};
	struct it_bank a, b;
	struct su_proxy *pa, *pb;
	struct su_step s[2 + WAL_SAGA_EARLY_DEPTH];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	int ld;

	snprintf(lv, sizeof lv, "%u", level);
	fu_cluster_start(&cluster, 3, args);
	cr_assert(fu_wait_level(&cluster, level, 30000),
		  "the cluster never ran at feature level %u", level);
	fu_bank_start(&a, NULL, "bank-a", "alice=1000", NULL);
	fu_bank_start(&b, NULL, "bank-b", "bob=500", NULL);
	pa = su_proxy_start(a.endpoint);
	pb = su_proxy_start(b.endpoint);
	c = su_client(cluster.endpoints, FO_RETRY_BUDGET_MS);
	memset(s, 0, sizeof(s));
	s[0] = (struct su_step){.endpoint = su_proxy_endpoint(pa),
				.name = "debit-alice",
				.payload = "account=alice;amount=-100",
				.max_attempts = 3,
				.call_timeout_ms = 1000};
	s[1] = (struct su_step){.endpoint = su_proxy_endpoint(pb),
				.name = "credit-bob",
				.payload = "account=bob;amount=100"};
	for (uint32_t k = 2; k < n; k++)
		s[k] = (struct su_step){.endpoint = su_proxy_endpoint(pb),
					.name = fees[k - 2],
					.payload = "account=bob;amount=-1"};
	su_proxy_hold(pa, M(ACTION), "early", 1, 1, 60000);
	su_submit(c, "early", SETTLE_SAGA_BACKWARD, false, s, n);
	ld = fo_leader(-1);
	for (int i = 0; i < 500 && su_proxy_held(pa) == 0; i++)
		tu_sleep_ms(10);
	cr_assert_eq(su_proxy_held(pa), 1, "step 1 never reached the proxy");

	/* The leader alone: nothing it proposes from now on commits. */
	for (int i = 0; i < cluster.n; i++)
		if (i != ld)
			fu_kill(&cluster, i);
	su_proxy_release(pa);
	wait_forwarded(pb, M(ACTION), "early", last, 1);
	for (int i = 0; i < 500; i++) {
		if (su_bank_count(&b, "action", "early", last, "ok") == 1)
			break;
		tu_sleep_ms(10);
	}
	cr_assert_eq(su_bank_count(&a, "action", "early", 1, "ok"), 1);
	for (uint32_t k = 2; k <= last; k++)
		cr_assert_eq(su_bank_count(&b, "action", "early", k, "ok"), 1,
			     "step %u was not called early", k);
	/* Past the depth of this level: never called. */
	tu_sleep_ms(200);
	for (uint32_t k = last + 1; k <= n; k++)
		cr_assert_eq(su_proxy_forwarded(pb, M(ACTION), "early", k), 0,
			     "step %u was called at level %u", k, level);
	fu_kill(&cluster, ld);

	/* The next leader's calls of step 1 never arrive in time. */
	su_proxy_hold(pa, M(ACTION), "early", 1, 100, 60000);
	for (int i = 0; i < cluster.n; i++)
		if (i != ld)
			fu_restart(&cluster, i);
	fo_leader(ld);
	fu_restart(&cluster, ld);

	tx = su_wait_final(c, "early", TX(SAGA_COMPENSATED), 60000, NULL);
	su_expect_step(tx, 1, ST(STEP_COMPENSATED));
	for (uint32_t k = 2; k <= n; k++) {
		if (k > last) {
			su_expect_step(tx, k, ST(STEP_SKIPPED));
			continue;
		}
		CHECK(tx,
		      su_event_seq(tx, "action", k,
				   "awaited: may have been called "
				   "early") != 0,
		      "step %u was not awaited", k);
		su_expect_step(tx, k, ST(STEP_COMPENSATED));
		/* A step's compensation ran before the one it waited
		 * for. */
		CHECK(tx,
		      su_event_seq(tx, "compensate", k, "ok") <
			  su_event_seq(tx, "compensate", k - 1, "ok"),
		      "step %u compensated out of order", k);
	}
	settle_tx_info_free(tx);
	for (uint32_t k = 2; k <= last; k++)
		cr_assert_eq(su_bank_count(&b, "compensate", "early", k, "ok"),
			     1);
	cr_assert_eq(su_bank_count(&a, "compensate", "early", 1, "ok"), 1);
	settle_client_close(c);
	cr_assert_eq(su_balance(&a, "alice"), 1000);
	cr_assert_eq(su_balance(&b, "bob"), 500);
	for (int i = 0; i < cluster.n; i++)
		it_stop(cluster.nodes[i].proc);
	fu_assert_no_sanitizer_reports(&cluster);
}

Test(saga_faults, early_step_of_a_dead_leader_is_compensated)
{
	early_steps_of_a_dead_leader(FSM_LEVEL_SAGA_EARLY);
}

Test(saga_faults, deep_early_steps_of_a_dead_leader_are_compensated)
{
	early_steps_of_a_dead_leader(FSM_LEVEL_SAGA_DEEP);
}

Test(saga_faults, leader_partitioned_mid_saga)
{
	static const char *const slow[] = {"--confirm-delay-ms", "250", NULL};
	struct it_bank a, b;
	settle_client *c;
	char why[256];
	int next = 0, succeeded = 0;

	if (!fu_netns_available(why, sizeof(why)))
		cr_skip_test("network partition test skipped: %s", why);
	fu_cluster_start_netns(&cluster, 3, node_args);
	fu_bank_start(&a, cluster.host, "bank-a", "alice=100000", slow);
	fu_bank_start(&b, cluster.host, "bank-b", "bob=100000", slow);
	c = su_client(cluster.endpoints, FO_RETRY_BUDGET_MS);

	for (int round = 0; round < 2; round++) {
		int first = next, ld;

		for (int k = 0; k < 5; k++)
			fo_submit(c, &a, &b, next++);
		tu_sleep_ms(300);
		ld = fo_leader(-1);
		cr_assert_gt(fo_unfinished(c, first, next), 0,
			     "round %d: every saga ended before the fault",
			     round);
		/* Cut off from its peers but not from the banks: until it
		 * steps down it may still call them, while the new leader
		 * drives the same sagas. The barrier must absorb both. */
		fprintf(stderr, "round %d: cut leader node %d off\n", round,
			cluster.nodes[ld].id);
		fu_isolate(&cluster, ld);
		cr_assert_neq(fo_leader(ld), ld);
		fo_submit(c, &a, &b, next++);
		tu_sleep_ms(1500);
		fu_heal(&cluster, ld);
	}
	for (int i = 0; i < next; i++) {
		fo_check(c, &a, &b, i);
		succeeded += !fo_fails(i);
	}
	settle_client_close(c);
	cr_assert_eq(su_balance(&a, "alice"), FO_START - 6 * succeeded);
	cr_assert_eq(su_balance(&b, "bob"), FO_START + 6 * succeeded);
	fu_wait_caught_up(&cluster, 10000);
	for (int i = 0; i < cluster.n; i++)
		it_stop(cluster.nodes[i].proc);
	fu_assert_no_sanitizer_reports(&cluster);
}

/* One test at a time: see the top of the file. */
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

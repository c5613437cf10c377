/*
 * Sagas against a real settled and real settle-banks, beyond the basics of
 * test_saga.c: the order of compensation for a failure at every position
 * of an ordered saga; DAG sagas whose branches run concurrently, one
 * branch failing while the other is in flight or its participant is
 * down; the saga deadline; a step's own retry policy; many sagas at once;
 * and forward recovery.
 *
 * Each test checks the final saga and step states and completion
 * ordinals from Query, the order compensations ran from the history (seq
 * order) and the banks' logs (what each bank's handler applied, once per
 * effect: repeats and null compensations are barrier skips and leave no
 * line), and the balances, whose total never changes.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_util.h"
#include "saga_util.h"
#include "tcc_util.h"

/* cu_setup: tests run two at a time, and must not pick the same ports. */
TestSuite(saga_dag, .init = cu_setup, .fini = it_teardown, .timeout = 60);

#define WAIT_MS 30000
#define ST	SU_ST
#define TX	SU_TX

static const char *const node_args[] = {"--retry-base", "50ms", "--retry-max",
					"200ms", NULL};

struct world {
	struct it_node node;
	struct it_bank a, b;
	settle_client *c;
};

static void world_start(struct world *w, const char *a_accounts,
			const char *const *a_args, const char *b_accounts,
			const char *const *b_args)
{
	it_node_start(&w->node, 1, node_args);
	it_bank_start(&w->a, "bank-a", a_accounts, a_args);
	it_bank_start(&w->b, "bank-b", b_accounts, b_args);
	w->c = su_client(w->node.endpoint, 5000);
}

static void world_stop(struct world *w)
{
	char report[512];

	settle_client_close(w->c);
	it_stop(w->node.proc);
	cr_assert(!cu_log_has_sanitizer_report(w->node.proc->log, report,
					       sizeof(report)),
		  "sanitizer report: %s", report);
}

/* Fail with the record shown unless cond. */
#define CHECK(tx, cond, ...)                                                   \
	do {                                                                   \
		if (!(cond)) {                                                 \
			su_show_tx(tx);                                        \
			cr_assert_fail(__VA_ARGS__);                           \
		}                                                              \
	} while (0)

/* ---- 1. Compensation order for a failure at each position -------------- */

/*
 * alice -100 (bank-a), bob +100 (bank-b), bob -50 (bank-b), alice +50
 * (bank-a): a transfer there and part of it back. Step k is replaced by a
 * debit no account can pay: a business FAILURE.
 */
static void order_steps(const struct world *w, int k, struct su_step s[4])
{
	static const char *const pay[4] = {
	    "account=alice;amount=-100", "account=bob;amount=100",
	    "account=bob;amount=-50", "account=alice;amount=50"};
	static const char *const fail[4] = {
	    "account=alice;amount=-999999", "account=bob;amount=-999999",
	    "account=bob;amount=-999999", "account=alice;amount=-999999"};
	static const char *const names[4] = {"debit-alice", "credit-bob",
					     "debit-bob", "credit-alice"};

	memset(s, 0, 4 * sizeof(*s));
	for (int i = 0; i < 4; i++) {
		s[i].endpoint =
		    i == 0 || i == 3 ? w->a.endpoint : w->b.endpoint;
		s[i].name = names[i];
		s[i].payload = i + 1 == k ? fail[i] : pay[i];
	}
}

static const struct it_bank *bank_of(const struct world *w, uint32_t step)
{
	return step == 1 || step == 4 ? &w->a : &w->b;
}

Test(saga_dag, compensation_order_for_a_failure_at_each_position)
{
	struct world w;
	struct su_step s[4];
	char gid[4][32];

	world_start(&w, "alice=1000", NULL, "bob=500", NULL);
	/* The four sagas run at once: they only race on balances none of
	 * their failures depends on. */
	for (int k = 1; k <= 4; k++) {
		snprintf(gid[k - 1], sizeof(gid[k - 1]), "order-fail-%d", k);
		order_steps(&w, k, s);
		su_submit(w.c, gid[k - 1], SETTLE_SAGA_BACKWARD, false, s, 4);
	}
	for (uint32_t k = 1; k <= 4; k++) {
		const char *g = gid[k - 1];
		Settle__V1__TxInfo *tx = su_wait_final(
		    w.c, g, TX(SAGA_COMPENSATED), WAIT_MS, w.node.proc);
		uint32_t ids[16];
		size_t n;
		int64_t prev_ms = -1;

		for (uint32_t j = 1; j <= 4; j++) {
			const Settle__V1__BranchInfo *b = su_step(tx, j);
			const struct it_bank *bk = bank_of(&w, j);

			if (j < k) {
				/* Took effect, undone once. */
				su_expect_step(tx, j, ST(STEP_COMPENSATED));
				CHECK(tx, b->completion == j,
				      "%s step %u completion %u", g, j,
				      b->completion);
				cr_assert_eq(
				    su_bank_count(bk, "action", g, j, "ok"), 1,
				    "%s step %u: action applied "
				    "other than once",
				    g, j);
				cr_assert_eq(
				    su_bank_count(bk, "compensate", g, j, "ok"),
				    1,
				    "%s step %u: compensation "
				    "applied other than once",
				    g, j);
			} else if (j == k) {
				/* Failed, then a null compensation: the
				 * barrier skips it before the handler, which
				 * would have credited 999999. */
				su_expect_step(tx, j, ST(STEP_COMPENSATED));
				CHECK(tx, b->completion == j,
				      "%s step %u completion %u", g, j,
				      b->completion);
				CHECK(tx,
				      strstr(b->last_error,
					     "insufficient funds") != NULL,
				      "%s step %u error '%s'", g, j,
				      b->last_error);
				cr_assert_eq(su_bank_count(bk, "action", g, j,
							   "FAILURE"),
					     1);
				cr_assert_eq(
				    su_bank_count(bk, "action", g, j, NULL), 1);
				cr_assert_eq(
				    su_bank_count(bk, "compensate", g, j, NULL),
				    0,
				    "%s step %u: compensation ran "
				    "the handler",
				    g, j);
			} else {
				/* Never started. */
				su_expect_step(tx, j, ST(STEP_SKIPPED));
				CHECK(tx, b->completion == 0,
				      "%s step %u completion %u", g, j,
				      b->completion);
				cr_assert_eq(
				    su_bank_count(bk, "action", g, j, NULL) +
					su_bank_count(bk, "compensate", g, j,
						      NULL),
				    0, "%s step %u was called", g, j);
			}
		}
		/* Reverse order of completion: k (null), k-1, ..., 1. */
		n = su_events(tx, "compensate", "ok", ids, 16);
		CHECK(tx, n == k, "%s: %zu compensations, want %u", g, n, k);
		for (uint32_t i = 0; i < k; i++)
			CHECK(tx, ids[i] == k - i,
			      "%s: compensation %u was step %u, want %u", g, i,
			      ids[i], k - i);
		n = su_events(tx, "action", "ok", ids, 16);
		CHECK(tx, n == k - 1, "%s: %zu actions ok", g, n);
		n = su_events(tx, "action", "failure", ids, 16);
		CHECK(tx, n == 1 && ids[0] == k, "%s: failures", g);
		CHECK(tx, strstr(tx->reason, "insufficient funds") != NULL,
		      "%s: reason '%s'", g, tx->reason);
		/* And the banks ran them in that order too. */
		for (uint32_t j = k - 1; j >= 1; j--) {
			int64_t t =
			    su_bank_time(bank_of(&w, j), "compensate", g, j);
			cr_assert_geq(t, prev_ms,
				      "%s: step %u compensated at %lld, "
				      "before step %u",
				      g, j, (long long)t, j + 1);
			prev_ms = t;
		}
		settle_tx_info_free(tx);
	}
	cr_assert_eq(su_balance(&w.a, "alice"), 1000);
	cr_assert_eq(su_balance(&w.b, "bob"), 500);
	world_stop(&w);
}

/* ---- 2. DAG: concurrent branches ---------------------------------------- */

static bool both_branches_acting(const Settle__V1__TxInfo *tx, void *arg)
{
	(void)arg;
	return tx->n_branches == 4 && tx->state == TX(SAGA_RUNNING) &&
	       tx->branches[0]->state == ST(STEP_DONE) &&
	       tx->branches[1]->state == ST(STEP_ACTING) &&
	       tx->branches[2]->state == ST(STEP_ACTING);
}

Test(saga_dag, independent_branches_run_concurrently)
{
	/* Each action at bank-b takes DELAY ms: run one after the other,
	 * the two branches would end DELAY apart. */
	enum { DELAY = 1200 };
	static const char *const slow[] = {"--confirm-delay-ms", "1200", NULL};
	struct world w;
	struct su_step s[4];
	Settle__V1__TxInfo *tx;
	const Settle__V1__BranchInfo *b2, *b3, *b4;
	int64_t t2, t3;
	uint64_t gap;

	world_start(&w, "alice=1000", NULL, "bob=500,carol=300", slow);
	memset(s, 0, sizeof(s));
	/* 0 -> {1, 2} -> 3: alice pays 100, bob gets 70 and carol 50 at
	 * the same time, then alice pays 20 more. */
	s[0] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "root",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = w.b.endpoint,
				.name = "left",
				.payload = "account=bob;amount=70",
				.deps = {0},
				.n_deps = 1};
	s[2] = (struct su_step){.endpoint = w.b.endpoint,
				.name = "right",
				.payload = "account=carol;amount=50",
				.deps = {0},
				.n_deps = 1};
	s[3] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "join",
				.payload = "account=alice;amount=-20",
				.deps = {1, 2},
				.n_deps = 2};
	su_submit(w.c, "dag-ok", SETTLE_SAGA_BACKWARD, true, s, 4);

	tx = su_wait(w.c, "dag-ok", both_branches_acting, NULL,
		     "both branches acting", 10000, w.node.proc);
	settle_tx_info_free(tx);
	tx = su_wait_final(w.c, "dag-ok", TX(SAGA_SUCCEEDED), WAIT_MS,
			   w.node.proc);
	for (uint32_t j = 1; j <= 4; j++)
		su_expect_step(tx, j, ST(STEP_DONE));
	b2 = su_step(tx, 2);
	b3 = su_step(tx, 3);
	b4 = su_step(tx, 4);
	CHECK(tx,
	      su_step(tx, 1)->completion == 1 && b4->completion == 4 &&
		  b2->completion + b3->completion == 5,
	      "completions %u %u %u %u", su_step(tx, 1)->completion,
	      b2->completion, b3->completion, b4->completion);
	/* Both ended within much less than one action's delay: they were
	 * in flight together. */
	gap = b2->completed_ms > b3->completed_ms
		  ? b2->completed_ms - b3->completed_ms
		  : b3->completed_ms - b2->completed_ms;
	CHECK(tx, gap < DELAY / 2, "branches ended %llu ms apart",
	      (unsigned long long)gap);
	t2 = su_bank_time(&w.b, "action", "dag-ok", 2);
	t3 = su_bank_time(&w.b, "action", "dag-ok", 3);
	cr_assert(t2 > 0 && t3 > 0);
	cr_assert_lt(llabs(t2 - t3), DELAY / 2,
		     "bank-b applied the branches %lld ms apart",
		     (long long)llabs(t2 - t3));
	/* The join ran after both. */
	CHECK(tx,
	      su_event_seq(tx, "action", 4, "ok") >
		      su_event_seq(tx, "action", 2, "ok") &&
		  su_event_seq(tx, "action", 4, "ok") >
		      su_event_seq(tx, "action", 3, "ok"),
	      "join before a branch");
	CHECK(tx,
	      b4->completed_ms >= b2->completed_ms &&
		  b4->completed_ms >= b3->completed_ms,
	      "join completed before a branch");
	cr_assert_eq(cu_events(tx, "compensate"), 0);
	settle_tx_info_free(tx);
	for (uint32_t j = 1; j <= 4; j++)
		cr_assert_eq(su_bank_count(bank_of(&w, j == 4 ? 1 : j),
					   "action", "dag-ok", j, "ok"),
			     1, "step %u applied other than once", j);
	cr_assert_eq(su_balance(&w.a, "alice"), 880);
	cr_assert_eq(su_balance(&w.b, "bob"), 570);
	cr_assert_eq(su_balance(&w.b, "carol"), 350);
	world_stop(&w);
}

static bool failed_while_other_in_flight(const Settle__V1__TxInfo *tx,
					 void *arg)
{
	(void)arg;
	return tx->n_branches == 4 && tx->state == TX(SAGA_COMPENSATING) &&
	       tx->branches[1]->state == ST(STEP_ACTING) &&
	       tx->branches[2]->state == ST(STEP_ACTION_FAILED);
}

Test(saga_dag, failure_in_one_branch_awaits_the_other_then_compensates)
{
	static const char *const slow[] = {"--confirm-delay-ms", "1500", NULL};
	struct world w;
	struct su_step s[4];
	Settle__V1__TxInfo *tx;
	uint32_t ids[8];
	size_t n;
	uint64_t compensating, left_done, first_comp;

	/* bank-a (fast): alice and carol; bank-b (slow): bob. */
	world_start(&w, "alice=1000,carol=300", NULL, "bob=500", slow);
	memset(s, 0, sizeof(s));
	s[0] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "root",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = w.b.endpoint,
				.name = "slow-left",
				.payload = "account=bob;amount=100",
				.deps = {0},
				.n_deps = 1};
	s[2] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "failing-right",
				.payload = "account=carol;amount=-999999",
				.deps = {0},
				.n_deps = 1};
	s[3] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "join",
				.payload = "account=alice;amount=-20",
				.deps = {1, 2},
				.n_deps = 2};
	su_submit(w.c, "dag-fail", SETTLE_SAGA_BACKWARD, true, s, 4);

	/* The right branch has failed; the left one is still at bank-b. */
	tx = su_wait(w.c, "dag-fail", failed_while_other_in_flight, NULL,
		     "compensating while the left branch is in flight", 10000,
		     w.node.proc);
	CHECK(tx, su_events(tx, "compensate", "", ids, 8) == 0,
	      "a compensation started before the left branch ended");
	settle_tx_info_free(tx);

	tx = su_wait_final(w.c, "dag-fail", TX(SAGA_COMPENSATED), WAIT_MS,
			   w.node.proc);
	su_expect_step(tx, 1, ST(STEP_COMPENSATED));
	su_expect_step(tx, 2, ST(STEP_COMPENSATED));
	su_expect_step(tx, 3, ST(STEP_COMPENSATED));
	su_expect_step(tx, 4, ST(STEP_SKIPPED));
	/* Completion: root, the failure, then the awaited left branch. */
	CHECK(tx,
	      su_step(tx, 1)->completion == 1 &&
		  su_step(tx, 3)->completion == 2 &&
		  su_step(tx, 2)->completion == 3 &&
		  su_step(tx, 4)->completion == 0,
	      "completion ordinals");
	/* The left branch's action ended (OK) while compensating, before
	 * any compensation was called. */
	compensating = su_event_seq(tx, "compensating", 0, "");
	left_done = su_event_seq(tx, "action", 2, "ok");
	first_comp = su_event_seq(tx, "compensate", 3, "");
	CHECK(tx,
	      compensating != 0 && left_done > compensating &&
		  first_comp > left_done,
	      "compensating #%llu, left done #%llu, first compensation "
	      "#%llu",
	      (unsigned long long)compensating, (unsigned long long)left_done,
	      (unsigned long long)first_comp);
	/* Reverse order of completion: left (3), right (2, null), root. */
	n = su_events(tx, "compensate", "ok", ids, 8);
	CHECK(tx, n == 3 && ids[0] == 2 && ids[1] == 3 && ids[2] == 1,
	      "compensation order");
	settle_tx_info_free(tx);

	cr_assert_eq(su_bank_count(&w.b, "action", "dag-fail", 2, "ok"), 1);
	cr_assert_eq(su_bank_count(&w.b, "compensate", "dag-fail", 2, "ok"), 1);
	cr_assert_eq(su_bank_count(&w.a, "action", "dag-fail", 3, "FAILURE"),
		     1);
	cr_assert_eq(
	    su_bank_count(&w.a, "compensate", "dag-fail", 3, NULL), 0,
	    "the failed branch's compensation was not a null compensation");
	cr_assert_eq(su_bank_count(&w.a, "action", "dag-fail", 1, "ok"), 1);
	cr_assert_eq(su_bank_count(&w.a, "compensate", "dag-fail", 1, "ok"), 1);
	cr_assert_eq(su_bank_count(&w.a, "action", "dag-fail", 4, NULL), 0);
	cr_assert_geq(su_bank_time(&w.a, "compensate", "dag-fail", 1),
		      su_bank_time(&w.b, "compensate", "dag-fail", 2));
	cr_assert_eq(su_balance(&w.a, "alice"), 1000);
	cr_assert_eq(su_balance(&w.a, "carol"), 300);
	cr_assert_eq(su_balance(&w.b, "bob"), 500);
	world_stop(&w);
}

static bool compensating_down_branch(const Settle__V1__TxInfo *tx, void *arg)
{
	(void)arg;
	return tx->n_branches == 4 && tx->state == TX(SAGA_COMPENSATING) &&
	       tx->branches[1]->state == ST(STEP_COMPENSATING) &&
	       tx->branches[1]->attempts >= 2 &&
	       tx->branches[1]->last_error[0] != '\0';
}

Test(saga_dag, branch_whose_participant_is_down_is_compensated_when_back)
{
	struct world w;
	struct it_bank c;
	struct su_step s[4];
	Settle__V1__TxInfo *tx;

	world_start(&w, "alice=1000,carol=300", NULL, "bob=500", NULL);
	/* bank-c exists but is down when the saga runs. */
	it_bank_start(&c, "bank-c", "dave=100", NULL);
	it_stop(c.proc);
	memset(s, 0, sizeof(s));
	s[0] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "root",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = c.endpoint,
				.name = "down-left",
				.payload = "account=dave;amount=100",
				.deps = {0},
				.n_deps = 1,
				.max_attempts = 1000};
	s[2] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "failing-right",
				.payload = "account=carol;amount=-999999",
				.deps = {0},
				.n_deps = 1};
	s[3] = (struct su_step){.endpoint = w.b.endpoint,
				.name = "join",
				.payload = "account=bob;amount=1",
				.deps = {1, 2},
				.n_deps = 2};
	su_submit(w.c, "dag-down", SETTLE_SAGA_BACKWARD, true, s, 4);

	/* The left branch never got through: it is ended (it may have
	 * acted, for all the coordinator knows) and its compensation is
	 * retried, with the reason in Query, until bank-c is back. */
	tx = su_wait(w.c, "dag-down", compensating_down_branch, NULL,
		     "left branch compensating against a down bank", 10000,
		     w.node.proc);
	CHECK(tx, su_step(tx, 1)->state == ST(STEP_DONE),
	      "root compensated before the left branch");
	settle_tx_info_free(tx);
	it_restart(c.proc);
	it_wait_port(c.proc, c.port, 10000);

	tx = su_wait_final(w.c, "dag-down", TX(SAGA_COMPENSATED), WAIT_MS,
			   w.node.proc);
	for (uint32_t j = 1; j <= 3; j++)
		su_expect_step(tx, j, ST(STEP_COMPENSATED));
	su_expect_step(tx, 4, ST(STEP_SKIPPED));
	su_expect_reverse_completion(tx);
	CHECK(tx, su_events(tx, "compensate", "ok", NULL, 0) == 3,
	      "compensations");
	settle_tx_info_free(tx);
	/* Nothing ever ran at bank-c: a null compensation. */
	cr_assert_eq(su_bank_count(&c, "action", "dag-down", 2, NULL) +
			 su_bank_count(&c, "compensate", "dag-down", 2, NULL),
		     0);
	cr_assert_eq(su_balance(&c, "dave"), 100);
	cr_assert_eq(su_balance(&w.a, "alice"), 1000);
	cr_assert_eq(su_balance(&w.a, "carol"), 300);
	world_stop(&w);
}

static bool past_deadline_compensating(const Settle__V1__TxInfo *tx, void *arg)
{
	(void)arg;
	return tx->n_branches == 2 && tx->state == TX(SAGA_COMPENSATING) &&
	       tx->branches[1]->state == ST(STEP_COMPENSATING);
}

Test(saga_dag, deadline_compensates_a_step_that_keeps_retrying)
{
	struct world w;
	struct it_bank c;
	struct su_step s[2];
	Settle__V1__TxInfo *tx;
	uint64_t started;

	world_start(&w, "alice=1000", NULL, "bob=500", NULL);
	it_bank_start(&c, "bank-c", "dave=100", NULL);
	it_stop(c.proc);
	memset(s, 0, sizeof(s));
	s[0] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "debit-alice",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = c.endpoint,
				.name = "credit-dave",
				.payload = "account=dave;amount=100",
				.max_attempts = 100000};
	su_submit_timeout(w.c, "deadline", SETTLE_SAGA_BACKWARD, false, s, 2,
			  1500);

	/* Its participant is down: step 2 retries until the deadline, then
	 * the saga compensates it (it may have acted) and step 1. */
	tx = su_wait(w.c, "deadline", past_deadline_compensating, NULL,
		     "compensating after the deadline", 10000, w.node.proc);
	started = 0;
	CHECK(tx, su_step(tx, 2)->completion == 2, "step 2 completion %u",
	      su_step(tx, 2)->completion);
	CHECK(tx, strstr(tx->reason, "deadline") != NULL, "reason '%s'",
	      tx->reason);
	for (size_t i = 0; i < tx->n_history; i++)
		if (strcmp(tx->history[i]->kind, "compensating") == 0)
			started = tx->history[i]->time_ms;
	CHECK(tx, started >= tx->deadline_ms,
	      "compensation started at %llu, before the deadline %llu",
	      (unsigned long long)started, (unsigned long long)tx->deadline_ms);
	settle_tx_info_free(tx);
	it_restart(c.proc);
	it_wait_port(c.proc, c.port, 10000);

	tx = su_wait_final(w.c, "deadline", TX(SAGA_COMPENSATED), WAIT_MS,
			   w.node.proc);
	su_expect_step(tx, 1, ST(STEP_COMPENSATED));
	su_expect_step(tx, 2, ST(STEP_COMPENSATED));
	su_expect_reverse_completion(tx);
	settle_tx_info_free(tx);
	cr_assert_eq(su_bank_count(&w.a, "compensate", "deadline", 1, "ok"), 1);
	cr_assert_eq(su_bank_count(&c, "compensate", "deadline", 2, NULL), 0);
	cr_assert_eq(su_balance(&w.a, "alice"), 1000);
	cr_assert_eq(su_balance(&c, "dave"), 100);
	world_stop(&w);
}

/* ---- Per-step retry policy --------------------------------------------- */

/* time_ms of the events about step of kind whose detail starts with
 * prefix, in order, into t (at most max); returns how many. */
static size_t event_times(const Settle__V1__TxInfo *tx, const char *kind,
			  uint32_t step, const char *prefix, uint64_t *t,
			  size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < tx->n_history && n < max; i++) {
		const Settle__V1__Event *e = tx->history[i];
		if (e->branch_id == step && strcmp(e->kind, kind) == 0 &&
		    strncmp(e->detail, prefix, strlen(prefix)) == 0)
			t[n++] = e->time_ms;
	}
	return n;
}

Test(saga_dag, a_steps_own_backoff_spaces_its_retries)
{
	static const char *const flaky[] = {"--retry-first", "2", NULL};
	struct world w;
	struct su_step s[2];
	Settle__V1__TxInfo *tx;
	uint64_t r[4], ok;
	size_t n;

	/* The node retries within 50..200 ms; this step asks for 800. */
	world_start(&w, "alice=1000", NULL, "bob=500", flaky);
	memset(s, 0, sizeof(s));
	s[0] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "debit-alice",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = w.b.endpoint,
				.name = "credit-bob",
				.payload = "account=bob;amount=100",
				.retry_base_ms = 800,
				.retry_max_ms = 800};
	su_submit(w.c, "backoff", SETTLE_SAGA_BACKWARD, false, s, 2);
	tx = su_wait_final(w.c, "backoff", TX(SAGA_SUCCEEDED), WAIT_MS,
			   w.node.proc);
	CHECK(tx, su_step(tx, 2)->attempts == 3, "step 2 attempts %u",
	      su_step(tx, 2)->attempts);
	n = event_times(tx, "action", 2, "retry", r, 4);
	CHECK(tx, n == 2 && event_times(tx, "action", 2, "ok", &ok, 1) == 1,
	      "retries of step 2");
	/* Jitter draws each delay from [400, 800] ms. */
	CHECK(tx, r[1] - r[0] >= 400 && ok - r[1] >= 400,
	      "retries %llu and %llu ms apart",
	      (unsigned long long)(r[1] - r[0]),
	      (unsigned long long)(ok - r[1]));
	settle_tx_info_free(tx);
	cr_assert_eq(su_balance(&w.a, "alice"), 900);
	cr_assert_eq(su_balance(&w.b, "bob"), 600);
	world_stop(&w);
}

Test(saga_dag, a_step_gives_up_after_its_max_attempts)
{
	static const char *const flaky[] = {"--retry-first", "5", NULL};
	struct world w;
	struct su_step s[2];
	Settle__V1__TxInfo *tx;
	const Settle__V1__BranchInfo *b2;

	world_start(&w, "alice=1000", NULL, "bob=500", flaky);
	memset(s, 0, sizeof(s));
	s[0] = (struct su_step){.endpoint = w.a.endpoint,
				.name = "debit-alice",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = w.b.endpoint,
				.name = "credit-bob",
				.payload = "account=bob;amount=100",
				.max_attempts = 2};
	su_submit(w.c, "give-up", SETTLE_SAGA_BACKWARD, false, s, 2);
	tx = su_wait_final(w.c, "give-up", TX(SAGA_COMPENSATED), WAIT_MS,
			   w.node.proc);
	b2 = su_step(tx, 2);
	su_expect_step(tx, 1, ST(STEP_COMPENSATED));
	su_expect_step(tx, 2, ST(STEP_COMPENSATED));
	CHECK(tx, strstr(b2->last_error, "gave up after 2 attempts") != NULL,
	      "step 2 error '%s'", b2->last_error);
	CHECK(tx, su_events(tx, "action", "retry", NULL, 0) == 1,
	      "one retry before giving up");
	CHECK(tx, strstr(tx->reason, "gave up") != NULL, "reason '%s'",
	      tx->reason);
	settle_tx_info_free(tx);
	/* Two RETRY answers, nothing applied, nothing to undo at bank-b. */
	cr_assert_eq(su_bank_count(&w.b, "action", "give-up", 2, NULL), 0);
	cr_assert_eq(su_bank_count(&w.b, "compensate", "give-up", 2, NULL), 0);
	cr_assert_eq(su_balance(&w.a, "alice"), 1000);
	cr_assert_eq(su_balance(&w.b, "bob"), 500);
	world_stop(&w);
}

/* ---- Many at once -------------------------------------------------------- */

#define MANY 200

Test(saga_dag, many_dag_sagas_at_once_all_end_and_the_books_balance)
{
	static const char *const slow[] = {"--confirm-delay-ms", "20", NULL};
	struct world w;
	struct su_step s[4];
	int ok = 0;

	world_start(&w, "alice=1000000,carol=1000000", NULL, "bob=1000000",
		    slow);
	/* 0 -> {1, 2} -> 3; every fourth saga's branch 2 fails. */
	for (int i = 0; i < MANY; i++) {
		char gid[32];

		memset(s, 0, sizeof(s));
		s[0] = (struct su_step){.endpoint = w.a.endpoint,
					.payload = "account=alice;amount=-10"};
		s[1] = (struct su_step){.endpoint = w.b.endpoint,
					.payload = "account=bob;amount=10",
					.deps = {0},
					.n_deps = 1};
		s[2] = (struct su_step){
		    .endpoint = w.a.endpoint,
		    .payload = i % 4 == 3 ? "account=carol;amount=-99999999"
					  : "account=carol;amount=-3",
		    .deps = {0},
		    .n_deps = 1};
		s[3] = (struct su_step){.endpoint = w.b.endpoint,
					.payload = "account=bob;amount=3",
					.deps = {1, 2},
					.n_deps = 2};
		snprintf(gid, sizeof(gid), "many-%d", i);
		su_submit(w.c, gid, SETTLE_SAGA_BACKWARD, true, s, 4);
	}
	for (int i = 0; i < MANY; i++) {
		char gid[32];
		bool fails = i % 4 == 3;
		Settle__V1__TxInfo *tx;

		snprintf(gid, sizeof(gid), "many-%d", i);
		tx = su_wait_final(
		    w.c, gid, fails ? TX(SAGA_COMPENSATED) : TX(SAGA_SUCCEEDED),
		    WAIT_MS, w.node.proc);
		su_expect_reverse_completion(tx);
		if (fails)
			su_expect_step(tx, 4, ST(STEP_SKIPPED));
		ok += !fails;
		settle_tx_info_free(tx);
	}
	/* Every action ran once (a failed branch's too, answering
	 * FAILURE); one compensation per step that took effect. */
	cr_assert_eq(su_log_count(w.a.proc->log, "bank: action many-"),
		     2 * MANY);
	cr_assert_eq(su_log_count(w.b.proc->log, "bank: action many-"),
		     MANY + ok);
	cr_assert_eq(su_log_count(w.a.proc->log, "bank: compensate many-"),
		     MANY - ok);
	cr_assert_eq(su_log_count(w.b.proc->log, "bank: compensate many-"),
		     MANY - ok);
	cr_assert_eq(su_balance(&w.a, "alice"), 1000000 - 10 * ok);
	cr_assert_eq(su_balance(&w.a, "carol"), 1000000 - 3 * ok);
	cr_assert_eq(su_balance(&w.b, "bob"), 1000000 + 13 * ok);
	world_stop(&w);
}

/* ---- 3. Forward recovery ------------------------------------------------ */

static bool failing_forward(const Settle__V1__TxInfo *tx, void *arg)
{
	(void)arg;
	return tx->n_branches == 2 && tx->state == TX(SAGA_RUNNING) &&
	       tx->branches[0]->state == ST(STEP_DONE) &&
	       tx->branches[1]->state == ST(STEP_ACTING) &&
	       tx->branches[1]->attempts >= 3 &&
	       strstr(tx->branches[1]->last_error, "injected failure") != NULL;
}

static void transfer(const struct world *w, struct su_step s[2])
{
	memset(s, 0, 2 * sizeof(*s));
	s[0] = (struct su_step){.endpoint = w->a.endpoint,
				.name = "debit-alice",
				.payload = "account=alice;amount=-100"};
	s[1] = (struct su_step){.endpoint = w->b.endpoint,
				.name = "credit-bob",
				.payload = "account=bob;amount=100",
				/* Ignored by forward recovery. */
				.max_attempts = 1};
}

static void expect_forward_success(struct world *w, const char *gid)
{
	Settle__V1__TxInfo *tx =
	    su_wait_final(w->c, gid, TX(SAGA_SUCCEEDED), WAIT_MS, w->node.proc);

	cr_assert_eq(tx->recovery, SETTLE__V1__SAGA_RECOVERY__FORWARD);
	su_expect_step(tx, 1, ST(STEP_DONE));
	su_expect_step(tx, 2, ST(STEP_DONE));
	CHECK(tx,
	      cu_events(tx, "compensating") == 0 &&
		  cu_events(tx, "compensate") == 0,
	      "a forward saga compensated");
	CHECK(tx, su_step(tx, 2)->attempts >= 4, "step 2 attempts %u",
	      su_step(tx, 2)->attempts);
	settle_tx_info_free(tx);
	/* Every action applied once, none undone. */
	cr_assert_eq(su_bank_count(&w->a, "action", gid, 1, "ok"), 1);
	cr_assert_eq(su_bank_count(&w->b, "action", gid, 2, "ok"), 1);
	cr_assert_eq(su_bank_count(&w->a, "compensate", gid, 1, NULL), 0);
	cr_assert_eq(su_bank_count(&w->b, "compensate", gid, 2, NULL), 0);
	cr_assert_eq(su_balance(&w->a, "alice"), 900);
	cr_assert_eq(su_balance(&w->b, "bob"), 600);
}

Test(saga_dag, forward_recovery_retries_failures_until_success)
{
	static const char *const broken[] = {"--fail-action", NULL};
	struct world w;
	struct su_step s[2];
	Settle__V1__TxInfo *tx;

	world_start(&w, "alice=1000", NULL, "bob=500", broken);
	transfer(&w, s);
	su_submit(w.c, "fwd-fail", SETTLE_SAGA_FORWARD, false, s, 2);

	/* FAILURE answers are retried, and Query shows why. */
	tx = su_wait(w.c, "fwd-fail", failing_forward, NULL,
		     "step 2 retried with its error", 10000, w.node.proc);
	CHECK(tx, su_events(tx, "action", "failure, retried", NULL, 0) >= 2,
	      "failures not recorded as retried");
	CHECK(tx, cu_events(tx, "compensating") == 0, "compensating");
	settle_tx_info_free(tx);
	cr_assert_eq(su_balance(&w.a, "alice"), 900);

	/* The participant is repaired: the saga ends by itself. */
	su_bank_restart_without(&w.b, "--fail-action", false);
	expect_forward_success(&w, "fwd-fail");
	world_stop(&w);
}

Test(saga_dag, forward_recovery_outlasts_max_attempts)
{
	static const char *const flaky[] = {"--retry-first", "3", NULL};
	struct world w;
	struct su_step s[2];

	world_start(&w, "alice=1000", NULL, "bob=500", flaky);
	transfer(&w, s);
	su_submit(w.c, "fwd-retry", SETTLE_SAGA_FORWARD, false, s, 2);
	expect_forward_success(&w, "fwd-retry");
	world_stop(&w);
}

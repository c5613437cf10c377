/*
 * What a node counts for operators (coordinator/metrics.h): transactions
 * by the moves the FSM reports, their latencies, participant calls, and
 * the Prometheus text of them.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coordinator/metrics.h"

static struct coord_metrics m;

static void init(void)
{
	cr_assert_eq(coord_metrics_init(&m), 0);
}

static void fini(void)
{
	coord_metrics_close(&m);
}

TestSuite(metrics, .init = init, .fini = fini);

/* gid moved from state `was` to `state` at `at` ms (begun at 1000), with
 * `failed` FAILED branches after, as many before as `failed_was`. */
static void move_f(const char *gid, int mode, int was, int state, uint64_t at,
		   uint32_t failed_was, uint32_t failed)
{
	Settle__V1__TxRecord tx = SETTLE__V1__TX_RECORD__INIT;
	struct fsm_was w = {.state = was, .failed = failed_was};

	tx.gid = (char *)gid;
	tx.mode = (Settle__V1__TxMode)mode;
	tx.state = (Settle__V1__TxState)state;
	tx.created_ms = 1000;
	tx.updated_ms = at;
	tx.failed = failed;
	switch (state) {
	case SETTLE__V1__TX_STATE__COMMITTED:
	case SETTLE__V1__TX_STATE__ROLLED_BACK:
	case SETTLE__V1__TX_STATE__SAGA_SUCCEEDED:
	case SETTLE__V1__TX_STATE__SAGA_COMPENSATED:
		tx.finished_ms = at;
		break;
	default:
		break;
	}
	coord_metrics_tx(&m, &tx, &w);
}

static void move(const char *gid, int mode, int was, int state, uint64_t at,
		 uint32_t failed)
{
	move_f(gid, mode, was, state, at, 0, failed);
}

static char *render(void)
{
	char *text = NULL;
	size_t len = 0;

	cr_assert_eq(coord_metrics_render(&m, &text, &len), 0);
	cr_assert_eq(strlen(text), len);
	return text;
}

static void expect_line(const char *text, const char *line)
{
	char want[512];

	snprintf(want, sizeof want, "\n%s\n", line);
	cr_expect_not_null(strstr(text, want), "no line '%s' in:\n%s", line,
			   text);
}

#define TCC    SETTLE__V1__TX_MODE__TCC
#define SAGA   SETTLE__V1__TX_MODE__SAGA
#define ACTIVE SETTLE__V1__TX_STATE__ACTIVE

Test(metrics, transactions_counted_once_by_their_moves)
{
	char *t;

	/* TCC: begun, decided at 1,004 ms, done at 1,010. */
	move("a", TCC, 0, ACTIVE, 1000, 0);
	move("a", TCC, ACTIVE, ACTIVE, 1002, 0); /* a branch registered */
	move("a", TCC, ACTIVE, SETTLE__V1__TX_STATE__COMMITTING, 1004, 0);
	move("a", TCC, SETTLE__V1__TX_STATE__COMMITTING,
	     SETTLE__V1__TX_STATE__COMMITTING, 1007, 0);
	move("a", TCC, SETTLE__V1__TX_STATE__COMMITTING,
	     SETTLE__V1__TX_STATE__COMMITTED, 1010, 0);
	/* TCC rolled back with no branch: decided and done at once. */
	move("b", TCC, 0, ACTIVE, 1000, 0);
	move("b", TCC, ACTIVE, SETTLE__V1__TX_STATE__ROLLED_BACK, 3000, 0);
	/* A saga that compensates, one step FAILED on the way. */
	move("s", SAGA, 0, SETTLE__V1__TX_STATE__SAGA_RUNNING, 1000, 0);
	move("s", SAGA, SETTLE__V1__TX_STATE__SAGA_RUNNING,
	     SETTLE__V1__TX_STATE__SAGA_COMPENSATING, 1100, 1);
	move_f("s", SAGA, SETTLE__V1__TX_STATE__SAGA_COMPENSATING,
	       SETTLE__V1__TX_STATE__SAGA_COMPENSATED, 1600, 1, 1);

	t = render();
	expect_line(t, "settle_transactions_begun_total{mode=\"tcc\"} 2");
	expect_line(t, "settle_transactions_begun_total{mode=\"saga\"} 1");
	expect_line(t, "settle_transactions_begun_total{mode=\"xa\"} 0");
	expect_line(t, "settle_transactions_committed_total{mode=\"tcc\"} 1");
	expect_line(t, "settle_transactions_rolled_back_total{mode=\"tcc\"} 1");
	expect_line(t,
		    "settle_transactions_rolled_back_total{mode=\"saga\"} 1");
	expect_line(t, "settle_transactions_failed_total{mode=\"saga\"} 1");
	/* Decisions: a after 4 ms, b after 2 s. */
	expect_line(t, "settle_transaction_decision_seconds_bucket{mode="
		       "\"tcc\",le=\"0.0025\"} 0");
	expect_line(t, "settle_transaction_decision_seconds_bucket{mode="
		       "\"tcc\",le=\"0.005\"} 1");
	expect_line(t, "settle_transaction_decision_seconds_bucket{mode="
		       "\"tcc\",le=\"1\"} 1");
	expect_line(t, "settle_transaction_decision_seconds_bucket{mode="
		       "\"tcc\",le=\"2.5\"} 2");
	expect_line(t, "settle_transaction_decision_seconds_bucket{mode="
		       "\"tcc\",le=\"+Inf\"} 2");
	expect_line(t, "settle_transaction_decision_seconds_sum{mode=\"tcc\"} "
		       "2.004000");
	expect_line(
	    t, "settle_transaction_decision_seconds_count{mode=\"tcc\"} 2");
	/* Completion: a 6 ms after its decision, b at once; s 500 ms. */
	expect_line(t, "settle_transaction_completion_seconds_sum{mode="
		       "\"tcc\"} 0.006000");
	expect_line(t, "settle_transaction_completion_seconds_count{mode="
		       "\"tcc\"} 2");
	expect_line(t, "settle_transaction_completion_seconds_sum{mode="
		       "\"saga\"} 0.500000");
	expect_line(t, "settle_transaction_completion_unmeasured_total 0");
	cr_expect_eq(m.n_decided, 0, "every decision taken out once done");
	free(t);
}

/* Decisions never done do not grow the table past its bound. */
Test(metrics, the_decision_table_stays_bounded)
{
	char gid[32];

	for (int i = 0; i < COORD_METRICS_DECIDED * 2; i++) {
		snprintf(gid, sizeof gid, "g%d", i);
		move(gid, TCC, ACTIVE, SETTLE__V1__TX_STATE__COMMITTING, 1005,
		     0);
	}
	cr_expect_lt(m.n_decided, COORD_METRICS_DECIDED);
	cr_expect_gt(atomic_load(&m.decided_lost), 0);
	/* The last one is still there, and found. */
	move(gid, TCC, SETTLE__V1__TX_STATE__COMMITTING,
	     SETTLE__V1__TX_STATE__COMMITTED, 1010, 0);
	cr_expect_eq(atomic_load(&m.to_done[TCC].count), 1);
	cr_expect_eq(atomic_load(&m.to_done[TCC].sum_us), 5000);
}

Test(metrics, participant_calls_by_endpoint)
{
	size_t a = coord_metrics_endpoint(&m, "127.0.0.1:7001");
	size_t b = coord_metrics_endpoint(&m, "bank\"x\\:1");
	char *t;

	cr_expect_eq(coord_metrics_endpoint(&m, "127.0.0.1:7001"), a);
	cr_expect_neq(a, b);
	coord_metrics_call(&m, a, 0, 0, 800);
	coord_metrics_call(&m, a, 0, 2, 2000000);
	coord_metrics_call(&m, b, 3, 1, 100);
	coord_metrics_call(&m, b, 9, 0, 100); /* no such kind: ignored */
	t = render();
	expect_line(t, "settle_participant_calls_total{endpoint=\"127.0.0.1:"
		       "7001\",kind=\"confirm\",outcome=\"ok\"} 1");
	expect_line(t, "settle_participant_calls_total{endpoint=\"127.0.0.1:"
		       "7001\",kind=\"confirm\",outcome=\"error\"} 1");
	/* Quotes and backslashes escaped as the text format wants. */
	expect_line(t, "settle_participant_calls_total{endpoint=\"bank\\\"x\\"
		       "\\:1\",kind=\"compensate\",outcome=\"failure\"} 1");
	expect_line(t, "settle_participant_call_seconds_count{endpoint="
		       "\"127.0.0.1:7001\",kind=\"confirm\"} 2");
	expect_line(t, "settle_participant_retries_total 1");
	free(t);
}

/* Past COORD_METRICS_ENDPOINTS, endpoints share the slot "other". */
Test(metrics, endpoints_past_the_bound_are_other)
{
	char ep[32];
	size_t slot = 0;

	for (int i = 0; i <= COORD_METRICS_ENDPOINTS; i++) {
		snprintf(ep, sizeof ep, "10.0.0.%d:1", i);
		slot = coord_metrics_endpoint(&m, ep);
	}
	cr_expect_eq(slot, COORD_METRICS_ENDPOINTS);
	coord_metrics_call(&m, slot, 1, 0, 10);
	char *t = render();
	expect_line(t, "settle_participant_calls_total{endpoint=\"other\","
		       "kind=\"cancel\",outcome=\"ok\"} 1");
	free(t);
}

Test(metrics, readiness_and_health)
{
	cr_expect_not(coord_metrics_alive(&m, 10000), "never ticked");
	atomic_store(&m.beat_ms, 10000);
	cr_expect(coord_metrics_alive(&m, 10000 + COORD_HEALTH_STALL_MS));
	cr_expect_not(coord_metrics_alive(&m, 10001 + COORD_HEALTH_STALL_MS));
	atomic_store(&m.not_ready, COORD_NOT_READY_NO_LEADER);
	char *t = render();
	expect_line(t, "settle_ready 0");
	free(t);
	cr_expect_str_eq(coord_metrics_not_ready_text(coord_metrics_ready(&m)),
			 "no leader known: not part of a quorum");
}

/*
 * What Commit's wait promises, and what retention forgets, on a real
 * settled with settle-bank participants.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "coord_util.h"
#include "harness.h"
#include "tcc_util.h"

TestSuite(coord_wait, .init = cu_setup, .fini = it_teardown, .timeout = 60);

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

Test(coord_wait, commit_waits_for_phase_two)
{
	struct it_node n;
	struct it_bank a, b;
	settle_client *c;
	char gid[SETTLE_GID_BUFSIZE];
	int state = 0;
	bool finished = false;
	Settle__V1__TxInfo *tx;
	struct cu_conn raw;

	it_node_start(&n, 1, NULL);
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(&b, "bank-b", "bob=500", NULL);
	c = tu_client(&n);
	tu_begin_and_try(c, 30000, &a, "alice", &b, "bob", 100, gid);
	cr_assert_eq(settle_commit(c, gid, 10000, &state, &finished), 0,
		     "commit: %s", settle_client_errmsg(c));
	cr_assert(finished, "commit with wait answered before phase two");
	cr_assert_eq(state, SETTLE__V1__TX_STATE__COMMITTED);

	/* finished means every branch is confirmed, right now. */
	cu_connect(&raw, n.endpoint, 5000);
	cr_assert_eq(cu_query(&raw, gid, &tx), 0);
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_assert_eq(tx->n_branches, 2);
	for (size_t i = 0; i < tx->n_branches; i++)
		cr_assert_eq(tx->branches[i]->state,
			     SETTLE__V1__BRANCH_STATE__CONFIRMED);
	cr_assert_neq(tx->finished_ms, 0);
	settle_tx_info_free(tx);
	cu_close(&raw);
	cr_assert_eq(it_bank_account(&a, "alice").balance, 900);
	cr_assert_eq(it_bank_account(&b, "bob").balance, 600);
	settle_client_close(c);
}

Test(coord_wait, short_wait_answers_unfinished)
{
	static const char *const slow[] = {"--confirm-delay-ms", "2000", NULL};
	struct it_node n;
	struct it_bank a, b;
	settle_client *c;
	char gid[SETTLE_GID_BUFSIZE];
	int state = 0;
	bool finished = true;
	uint64_t t0, took;
	Settle__V1__TxInfo *tx;

	it_node_start(&n, 1, NULL);
	it_bank_start(&a, "bank-a", "alice=1000", slow);
	it_bank_start(&b, "bank-b", "bob=500", slow);
	c = tu_client(&n);
	tu_begin_and_try(c, 30000, &a, "alice", &b, "bob", 100, gid);
	t0 = now_ms();
	cr_assert_eq(settle_commit(c, gid, 300, &state, &finished), 0,
		     "commit: %s", settle_client_errmsg(c));
	took = now_ms() - t0;
	cr_assert_not(finished, "phase two finished despite slow Confirms");
	cr_assert_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_assert_geq(took, 250, "answered after %llu ms, before wait_ms",
		      (unsigned long long)took);
	cr_assert_lt(took, 1800, "answered after %llu ms, not at wait_ms",
		     (unsigned long long)took);

	/* The decision holds; phase two ends on its own. */
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__COMMITTED, 20000);
	settle_tx_info_free(tx);
	cr_assert_eq(it_bank_account(&a, "alice").balance, 900);
	cr_assert_eq(it_bank_account(&b, "bob").balance, 600);
	settle_client_close(c);
}

Test(coord_wait, retention_forgets_only_finished)
{
	static const char *const args[] = {
	    "--retention", "1s", "--retry-base", "100ms", "--retry-max",
	    "500ms",	   NULL};
	struct it_node n;
	struct cu_conn c;
	uint8_t id[16];
	int state = 0, code = 0;
	Settle__V1__TxInfo *tx;
	uint64_t end;

	it_node_start(&n, 1, args);
	cu_connect(&c, n.endpoint, 5000);

	/* done: committed with no branch, finished at once. */
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&c, id, "ret-done", 60000, NULL, NULL), 0);
	cu_cmd_id(id);
	cr_assert_eq(
	    cu_decide(&c, true, id, "ret-done", false, 0, &state, NULL), 0);
	cr_assert_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	/* active: never decided. */
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&c, id, "ret-active", 60000, NULL, NULL), 0);
	/* open: committed, its participant never answers. */
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&c, id, "ret-open", 60000, NULL, NULL), 0);
	cu_cmd_id(id);
	cr_assert_eq(
	    cu_register(&c, id, "ret-open", "127.0.0.1:9", "p", 1, NULL), 0);
	cu_cmd_id(id);
	cr_assert_eq(
	    cu_decide(&c, true, id, "ret-open", false, 0, &state, NULL), 0);
	cr_assert_eq(state, SETTLE__V1__TX_STATE__COMMITTING);

	end = now_ms() + 12000;
	for (;;) {
		code = cu_query(&c, "ret-done", &tx);
		if (code != 0)
			break;
		settle_tx_info_free(tx);
		cr_assert_lt(now_ms(), end,
			     "finished transaction still kept after 12 s");
		tu_sleep_ms(200);
	}
	cr_assert_eq(code, SETTLE__V1__CODE__NOT_FOUND);

	cr_assert_eq(cu_query(&c, "ret-active", &tx), 0);
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__ACTIVE);
	settle_tx_info_free(tx);
	cr_assert_eq(cu_query(&c, "ret-open", &tx), 0);
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_assert_gt(tx->branches[0]->attempts, 0, "never called");
	settle_tx_info_free(tx);
	cu_close(&c);
}

/* QUERY with wait_ms, raw: the answer and how long it took. */
static Settle__V1__TxInfo *query_wait_as(struct cu_conn *c, const char *gid,
					 uint32_t wait_ms, bool brief,
					 uint64_t *took)
{
	Settle__V1__QueryRequest req = SETTLE__V1__QUERY_REQUEST__INIT;
	Settle__V1__QueryResponse *resp;
	Settle__V1__TxInfo *tx;
	struct cu_reply r;
	uint64_t t0 = now_ms();

	req.gid = (char *)gid;
	req.wait_ms = wait_ms;
	req.brief = brief;
	cr_assert_eq(cu_call(c, SETTLE__V1__METHOD__QUERY, &req.base, &r), 0,
		     "query %s failed", gid);
	*took = now_ms() - t0;
	resp = cu_unpack(&r, &settle__v1__query_response__descriptor);
	cu_reply_free(&r);
	cr_assert_not_null(resp);
	cr_assert_not_null(resp->tx);
	tx = resp->tx;
	resp->tx = NULL;
	settle__v1__query_response__free_unpacked(resp, NULL);
	return tx;
}

static Settle__V1__TxInfo *query_wait(struct cu_conn *c, const char *gid,
				      uint32_t wait_ms, uint64_t *took)
{
	return query_wait_as(c, gid, wait_ms, false, took);
}

Test(coord_wait, query_waits_for_the_outcome)
{
	static const char *const slow[] = {"--confirm-delay-ms", "1000", NULL};
	static const char *const broken[] = {"--fail-confirm", NULL};
	struct it_node n;
	struct it_bank a, b, bad;
	settle_client *c;
	char gid[SETTLE_GID_BUFSIZE], stuck[SETTLE_GID_BUFSIZE];
	uint8_t id[16];
	int state = 0;
	bool finished = true;
	uint64_t took;
	Settle__V1__TxInfo *tx;
	struct cu_conn raw;

	it_node_start(&n, 1, NULL);
	it_bank_start(&a, "bank-a", "alice=1000", slow);
	it_bank_start(&b, "bank-b", "bob=500", slow);
	it_bank_start(&bad, "bank-bad", "carol=500", broken);
	c = tu_client(&n);
	cu_connect(&raw, n.endpoint, 5000);

	/* Committing with slow Confirms: the query is held until phase two
	 * ends, and answers COMMITTED, not the COMMITTING of the moment. */
	tu_begin_and_try(c, 30000, &a, "alice", &b, "bob", 100, gid);
	cr_assert_eq(settle_commit(c, gid, 0, &state, &finished), 0);
	cr_assert_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	tx = query_wait(&raw, gid, 20000, &took);
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTED,
		     "query answered %d after %llu ms", tx->state,
		     (unsigned long long)took);
	cr_assert_geq(took, 500, "answered after %llu ms, before phase two",
		      (unsigned long long)took);
	cr_assert_lt(took, 15000);
	cr_assert_eq(tx->n_branches, 2);
	settle_tx_info_free(tx);
	/* Final already: answered at once; brief, without its branches. */
	tx = query_wait(&raw, gid, 20000, &took);
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_assert_lt(took, 1000);
	settle_tx_info_free(tx);
	tx = query_wait_as(&raw, gid, 20000, true, &took);
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_assert_str_eq(tx->gid, gid);
	cr_assert_eq(tx->n_branches, 0, "a brief answer has no branches");
	cr_assert_eq(tx->n_history, 0);
	settle_tx_info_free(tx);

	/* A Confirm that fails for good: the query wakes as soon as the
	 * branch is FAILED, it does not sit out its wait. */
	tu_begin_and_try(c, 30000, &a, "alice", &bad, "carol", 10, stuck);
	cr_assert_eq(settle_commit(c, stuck, 0, &state, &finished), 0);
	tx = query_wait(&raw, stuck, 30000, &took);
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_assert_eq(tx->failed, 1, "failed %u after %llu ms", tx->failed,
		     (unsigned long long)took);
	cr_assert_lt(took, 15000);
	settle_tx_info_free(tx);
	/* Brief, a stuck one still names its branches: which one failed. */
	tx = query_wait_as(&raw, stuck, 30000, true, &took);
	cr_assert_eq(tx->failed, 1);
	cr_assert_eq(tx->n_branches, 2, "a stuck one keeps its branches");
	settle_tx_info_free(tx);
	/* And settle_wait reports it rather than waiting. */
	cr_assert_eq(settle_wait(c, stuck, 30000, &state, &finished),
		     SETTLE_ESTATE);

	/* Undecided: the query answers ACTIVE once its wait ends. */
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&raw, id, "wait-active", 60000, NULL, NULL), 0);
	tx = query_wait(&raw, "wait-active", 400, &took);
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__ACTIVE);
	cr_assert_geq(took, 350, "answered after %llu ms, before wait_ms",
		      (unsigned long long)took);
	cr_assert_lt(took, 3000);
	settle_tx_info_free(tx);
	cu_close(&raw);
	settle_client_close(c);
}

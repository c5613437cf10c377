/*
 * Sagas end to end: SUBMIT_SAGA on a real settled, whose driver calls
 * ACTION and COMPENSATE on two real settle-banks. Each test checks the
 * final state and the steps in Query, the balances the banks hold, and
 * that no money was created or lost (alice + bob stays 1500).
 *
 * The node retries fast (--retry-base 50ms --retry-max 200ms) so that
 * RETRY answers and re-drives after a restart settle within the test's
 * bounded waits.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "coord_util.h"
#include "harness.h"
#include "tcc_util.h"

TestSuite(saga, .init = cu_setup, .fini = it_teardown, .timeout = 90);

#define ST(x) SETTLE__V1__BRANCH_STATE__##x
#define TX(x) SETTLE__V1__TX_STATE__##x

#define ALICE_START 1000
#define BOB_START   500
#define WAIT_MS	    30000

static const char *const node_args[] = {"--retry-base", "50ms", "--retry-max",
					"200ms", NULL};

/* One node and the two banks every test uses. */
struct world {
	struct it_node node;
	struct it_bank a; /* bank-a: alice */
	struct it_bank b; /* bank-b: bob */
	struct cu_conn c;
};

static void world_start(struct world *w, const char *const *bank_b_args)
{
	it_node_start(&w->node, 1, node_args);
	it_bank_start(&w->a, "bank-a", "alice=1000", NULL);
	it_bank_start(&w->b, "bank-b", "bob=500", bank_b_args);
	cu_connect(&w->c, w->node.endpoint, 5000);
}

/* One step of a saga to submit. */
struct step {
	const struct it_bank *bank;
	const char *name;
	const char *action;
	const char *compensate;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * SUBMIT_SAGA of an ordered, BACKWARD saga with the given steps under
 * cmd_id id; returns the wire code, and on OK the answer's deadline in
 * *deadline_ms after checking that the node kept our gid.
 */
static int submit(struct cu_conn *c, const uint8_t id[16], const char *gid,
		  const struct step *s, size_t n, uint64_t *deadline_ms)
{
	Settle__V1__SubmitSagaRequest req =
	    SETTLE__V1__SUBMIT_SAGA_REQUEST__INIT;
	Settle__V1__SagaStep steps[4], *ptrs[4];
	Settle__V1__SubmitSagaResponse *resp;
	struct cu_reply r;
	int code;

	cr_assert_leq(n, 4);
	for (size_t i = 0; i < n; i++) {
		settle__v1__saga_step__init(&steps[i]);
		steps[i].name = (char *)s[i].name;
		steps[i].endpoint = (char *)s[i].bank->endpoint;
		steps[i].action_payload.data = (uint8_t *)s[i].action;
		steps[i].action_payload.len = strlen(s[i].action);
		steps[i].compensate_payload.data = (uint8_t *)s[i].compensate;
		steps[i].compensate_payload.len = strlen(s[i].compensate);
		ptrs[i] = &steps[i];
	}
	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	req.timeout_ms = 60000;
	req.recovery = SETTLE__V1__SAGA_RECOVERY__BACKWARD;
	req.dag = false;
	req.n_steps = n;
	req.steps = ptrs;

	cr_assert_eq(cu_call(c, SETTLE__V1__METHOD__SUBMIT_SAGA, &req.base, &r),
		     0, "submit %s: connection lost", gid);
	code = r.code;
	if (code == 0) {
		resp = cu_unpack(&r,
				 &settle__v1__submit_saga_response__descriptor);
		cr_assert_str_eq(resp->gid, gid, "submit answered gid %s",
				 resp->gid);
		if (deadline_ms != NULL)
			*deadline_ms = resp->deadline_ms;
		settle__v1__submit_saga_response__free_unpacked(resp, NULL);
	} else {
		cr_log_info("submit %s: code %d (%s)", gid, code, r.msg);
	}
	cu_reply_free(&r);
	return code;
}

static void submit_ok(struct cu_conn *c, const char *gid, const struct step *s,
		      size_t n)
{
	uint8_t id[16];
	uint64_t deadline = 0, before = now_ms();

	cu_cmd_id(id);
	cr_assert_eq(submit(c, id, gid, s, n, &deadline), 0, "submit %s", gid);
	cr_assert_gt(deadline, before, "deadline %llu before the submit",
		     (unsigned long long)deadline);
}

static bool is_final(int state)
{
	return state == TX(SAGA_SUCCEEDED) || state == TX(SAGA_COMPENSATED);
}

static void show_tx(const Settle__V1__TxInfo *tx)
{
	fprintf(stderr, "tx %s state %d finished_ms %llu reason '%s'\n",
		tx->gid, tx->state, (unsigned long long)tx->finished_ms,
		tx->reason);
	for (size_t i = 0; i < tx->n_branches; i++) {
		const Settle__V1__BranchInfo *b = tx->branches[i];
		fprintf(stderr, "  step %u state %d attempts %u error '%s'\n",
			b->branch_id, b->state, b->attempts, b->last_error);
	}
	for (size_t i = 0; i < tx->n_history; i++)
		fprintf(stderr, "  event %s step %u: %s\n",
			tx->history[i]->kind, tx->history[i]->branch_id,
			tx->history[i]->detail);
}

/* Poll Query until pred(tx) holds or timeout_ms passes (then fail,
 * showing the last record and the node's log). Returns the record (free
 * with settle_tx_info_free). */
static Settle__V1__TxInfo *wait_for(struct world *w, const char *gid,
				    bool (*pred)(const Settle__V1__TxInfo *),
				    const char *what, int timeout_ms)
{
	Settle__V1__TxInfo *tx = NULL;
	int code = -1;

	for (int waited = 0;; waited += 20) {
		code = cu_query(&w->c, gid, &tx);
		if (code == 0 && pred(tx))
			return tx;
		if (waited >= timeout_ms)
			break;
		if (code == 0)
			settle_tx_info_free(tx);
		tx = NULL;
		tu_sleep_ms(20);
	}
	if (tx != NULL)
		show_tx(tx);
	it_show_log(w->node.proc);
	cr_assert_fail("%s: not reached in %d ms (query code %d)", what,
		       timeout_ms, code);
	return NULL;
}

static bool final_pred(const Settle__V1__TxInfo *tx)
{
	return is_final(tx->state) && tx->finished_ms != 0;
}

static Settle__V1__TxInfo *wait_final(struct world *w, const char *gid,
				      int want)
{
	Settle__V1__TxInfo *tx =
	    wait_for(w, gid, final_pred, "final state", WAIT_MS);

	if ((int)tx->state != want) {
		show_tx(tx);
		cr_assert_fail("%s ended in state %d, want %d", gid, tx->state,
			       want);
	}
	cr_assert_eq(tx->mode, SETTLE__V1__TX_MODE__SAGA);
	return tx;
}

static const Settle__V1__BranchInfo *step_of(const Settle__V1__TxInfo *tx,
					     uint32_t step)
{
	for (size_t i = 0; i < tx->n_branches; i++)
		if (tx->branches[i]->branch_id == step)
			return tx->branches[i];
	show_tx(tx);
	cr_assert_fail("%s: no step %u in Query", tx->gid, step);
	return NULL;
}

static void expect_step(const Settle__V1__TxInfo *tx, uint32_t step, int state)
{
	const Settle__V1__BranchInfo *b = step_of(tx, step);

	if ((int)b->state != state) {
		show_tx(tx);
		cr_assert_fail("%s step %u in state %d, want %d", tx->gid, step,
			       b->state, state);
	}
}

/* Events of kind about one step. */
static size_t step_events(const Settle__V1__TxInfo *tx, const char *kind,
			  uint32_t step)
{
	size_t n = 0;

	for (size_t i = 0; i < tx->n_history; i++)
		if (tx->history[i]->branch_id == step &&
		    strcmp(tx->history[i]->kind, kind) == 0)
			n++;
	return n;
}

/* Balances as the banks hold them, and the books still add up. */
static void expect_money(const struct world *w, long long alice, long long bob)
{
	struct it_account a = it_bank_account(&w->a, "alice");
	struct it_account b = it_bank_account(&w->b, "bob");

	cr_assert_eq(a.balance, alice, "alice has %lld, want %lld", a.balance,
		     alice);
	cr_assert_eq(b.balance, bob, "bob has %lld, want %lld", b.balance, bob);
	cr_assert_eq(a.frozen, 0, "alice has %lld frozen", a.frozen);
	cr_assert_eq(b.frozen, 0, "bob has %lld frozen", b.frozen);
	cr_assert_eq(a.balance + b.balance, ALICE_START + BOB_START,
		     "money created or lost: alice %lld + bob %lld", a.balance,
		     b.balance);
}

/* SIGTERM the node: exit status 0 and no sanitizer report in its log. */
static void stop_clean(struct world *w)
{
	char report[1024];

	cu_close(&w->c);
	it_stop(w->node.proc);
	if (cu_log_has_sanitizer_report(w->node.proc->log, report,
					sizeof(report))) {
		it_show_log(w->node.proc);
		cr_assert_fail("sanitizer report: %s", report);
	}
}

/*
 * alice -100 on bank-a, then bob +100 on bank-b. settle-bank's Compensate
 * applies the opposite of the amount it is given (examples/README.md: "the
 * same payload serves saga steps"), so each step's compensation payload
 * is its action's: an inverted one would move the money a second time.
 */
static void transfer_steps(const struct world *w, struct step s[2])
{
	s[0] = (struct step){&w->a, "debit-alice", "account=alice;amount=-100",
			     "account=alice;amount=-100"};
	s[1] = (struct step){&w->b, "credit-bob", "account=bob;amount=100",
			     "account=bob;amount=100"};
}

Test(saga, two_steps_succeed)
{
	struct world w;
	struct step s[2];
	Settle__V1__TxInfo *tx;
	uint8_t id[16];
	uint64_t d1 = 0, d2 = 0;

	world_start(&w, NULL);
	transfer_steps(&w, s);
	cu_cmd_id(id);
	cr_assert_eq(submit(&w.c, id, "saga-ok", s, 2, &d1), 0);

	tx = wait_final(&w, "saga-ok", TX(SAGA_SUCCEEDED));
	cr_assert_eq(tx->n_branches, 2);
	expect_step(tx, 1, ST(STEP_DONE));
	expect_step(tx, 2, ST(STEP_DONE));
	cr_assert_str_eq(step_of(tx, 2)->endpoint, w.b.endpoint);
	cr_assert_eq(cu_events(tx, "succeeded"), 1);
	cr_assert_eq(cu_events(tx, "compensate"), 0);
	settle_tx_info_free(tx);
	expect_money(&w, 900, 600);

	/* The submit retried with its cmd_id answers as the first time and
	 * starts no second saga: the money moved once. */
	cr_assert_eq(submit(&w.c, id, "saga-ok", s, 2, &d2), 0);
	cr_assert_eq(d1, d2, "retried submit got deadline %llu, first %llu",
		     (unsigned long long)d2, (unsigned long long)d1);
	tu_sleep_ms(300);
	tx = wait_final(&w, "saga-ok", TX(SAGA_SUCCEEDED));
	cr_assert_eq(cu_events(tx, "succeeded"), 1);
	settle_tx_info_free(tx);
	expect_money(&w, 900, 600);

	stop_clean(&w);
}

Test(saga, second_step_fails_and_first_is_compensated)
{
	struct world w;
	struct step s[2];
	Settle__V1__TxInfo *tx;
	const Settle__V1__BranchInfo *b2;

	world_start(&w, NULL);
	transfer_steps(&w, s);
	/* bob has 500: taking 5000 is a business failure, not retried. */
	s[1] = (struct step){&w.b, "debit-bob", "account=bob;amount=-5000",
			     "account=bob;amount=-5000"};
	submit_ok(&w.c, "saga-fail", s, 2);

	tx = wait_final(&w, "saga-fail", TX(SAGA_COMPENSATED));
	expect_step(tx, 1, ST(STEP_COMPENSATED));
	b2 = step_of(tx, 2);
	if (strstr(b2->last_error, "insufficient funds") == NULL) {
		show_tx(tx);
		cr_assert_fail("step 2 last_error '%s'", b2->last_error);
	}
	/* A FAILURE is not retried: one action call, and step 2 (which
	 * may have acted) gets its compensation, a barrier no-op. */
	cr_assert_eq(step_events(tx, "action", 2), 1);
	expect_step(tx, 2, ST(STEP_COMPENSATED));
	cr_assert_eq(cu_events(tx, "compensated"), 1);
	cr_assert_str_neq(tx->reason, "", "no reason for the compensation");
	settle_tx_info_free(tx);
	expect_money(&w, ALICE_START, BOB_START);

	stop_clean(&w);
}

Test(saga, transient_failures_are_retried)
{
	static const char *const flaky[] = {"--retry-first", "2", NULL};
	struct world w;
	struct step s[2];
	Settle__V1__TxInfo *tx;
	const Settle__V1__BranchInfo *b2;

	world_start(&w, flaky);
	transfer_steps(&w, s);
	submit_ok(&w.c, "saga-retry", s, 2);

	tx = wait_final(&w, "saga-retry", TX(SAGA_SUCCEEDED));
	expect_step(tx, 1, ST(STEP_DONE));
	expect_step(tx, 2, ST(STEP_DONE));
	b2 = step_of(tx, 2);
	if (b2->attempts < 3) {
		show_tx(tx);
		cr_assert_fail("step 2 took %u attempts, want >= 3 (two RETRY)",
			       b2->attempts);
	}
	cr_assert_eq(step_of(tx, 1)->attempts, 1);
	settle_tx_info_free(tx);
	expect_money(&w, 900, 600);

	stop_clean(&w);
}

static bool step2_in_flight(const Settle__V1__TxInfo *tx)
{
	return tx->n_branches == 2 && tx->state == TX(SAGA_RUNNING) &&
	       tx->branches[0]->state == ST(STEP_DONE) &&
	       tx->branches[1]->state == ST(STEP_ACTING);
}

Test(saga, coordinator_killed_mid_saga)
{
	/* bank-b answers actions 1.5 s late: the kill lands while step 2's
	 * action is in flight (and may still take effect afterwards). */
	static const char *const slow[] = {"--confirm-delay-ms", "1500", NULL};
	struct world w;
	struct step s[2];
	Settle__V1__TxInfo *tx;

	world_start(&w, slow);
	transfer_steps(&w, s);
	submit_ok(&w.c, "saga-kill", s, 2);

	tx = wait_for(&w, "saga-kill", step2_in_flight, "step 2 in flight",
		      10000);
	settle_tx_info_free(tx);
	tu_sleep_ms(300);
	cu_close(&w.c);
	it_kill(w.node.proc);

	it_restart(w.node.proc);
	it_node_wait_leader(&w.node, 20000);
	cu_connect(&w.c, w.node.endpoint, 5000);

	tx = wait_final(&w, "saga-kill", TX(SAGA_SUCCEEDED));
	expect_step(tx, 1, ST(STEP_DONE));
	expect_step(tx, 2, ST(STEP_DONE));
	cr_assert_eq(cu_events(tx, "compensate"), 0);
	settle_tx_info_free(tx);
	/* Action called twice (before and after the kill), applied once. */
	expect_money(&w, 900, 600);

	stop_clean(&w);
}

/* Expect a submit to be refused with code and a message, and to create
 * nothing under gid. */
static void expect_refused(struct world *w, const char *gid,
			   const struct step *s, size_t n, int code,
			   const char *what)
{
	Settle__V1__TxInfo *tx = NULL;
	uint8_t id[16];

	cu_cmd_id(id);
	cr_assert_eq(submit(&w->c, id, gid, s, n, NULL), code,
		     "%s: not refused with code %d", what, code);
	/* A gid that is itself invalid cannot be queried. */
	if (strchr(gid, ' ') == NULL)
		cr_assert_eq(cu_query(&w->c, gid, &tx),
			     SETTLE__V1__CODE__NOT_FOUND,
			     "%s: a saga was created", what);
}

Test(saga, bad_submits_are_refused)
{
	struct world w;
	struct step s[2], bad[2];
	struct cu_reply r;
	uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};

	world_start(&w, NULL);
	transfer_steps(&w, s);

	expect_refused(&w, "saga-empty", s, 0,
		       SETTLE__V1__CODE__INVALID_ARGUMENT, "no step");
	memcpy(bad, s, sizeof(bad));
	bad[1].bank = &(struct it_bank){.endpoint = "nohostport"};
	expect_refused(&w, "saga-ep", bad, 2,
		       SETTLE__V1__CODE__INVALID_ARGUMENT, "bad endpoint");
	expect_refused(&w, "bad gid", s, 2, SETTLE__V1__CODE__INVALID_ARGUMENT,
		       "gid with a space");

	cr_assert_eq(cu_call_raw(&w.c, SETTLE__V1__METHOD__SUBMIT_SAGA, junk,
				 sizeof(junk), &r),
		     0, "junk body: connection lost");
	cr_assert_eq(r.code, SETTLE__V1__CODE__INVALID_ARGUMENT,
		     "junk body: code %d (%s)", r.code, r.msg);
	cr_assert_str_neq(r.msg, "", "junk body: error without a message");
	cu_reply_free(&r);

	/* The gid is taken once a saga holds it (another cmd_id). */
	submit_ok(&w.c, "saga-taken", s, 2);
	{
		uint8_t id[16];
		cu_cmd_id(id);
		cr_assert_eq(submit(&w.c, id, "saga-taken", s, 2, NULL),
			     SETTLE__V1__CODE__ALREADY_EXISTS);
	}
	Settle__V1__TxInfo *tx =
	    wait_final(&w, "saga-taken", TX(SAGA_SUCCEEDED));
	settle_tx_info_free(tx);
	/* Only the accepted saga moved money. */
	expect_money(&w, 900, 600);

	stop_clean(&w);
}

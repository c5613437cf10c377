/*
 * An operator unsticks transactions, end to end: a real settled drives
 * real settle-banks that refuse Compensate, Confirm or Cancel
 * (--fail-compensate, --fail-confirm, --fail-cancel), and the test speaks
 * TX_RETRY / TX_RESOLVE as raw frames (coord_util), as settlectl would.
 *
 * What is checked: after a retry the node's driver calls the branch again
 * by itself (no driver change: the FSM makes it due now); a resolve ends
 * the transaction as if the participant had answered OK, with the
 * operator's reason in the history; money is conserved; refusals are
 * clear and change nothing; a request repeated with its cmd_id acts once.
 *
 * The node retries fast (--retry-base 50ms --retry-max 200ms) so that the
 * bounded waits below hold.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_util.h"
#include "harness.h"
#include "tcc_util.h"

TestSuite(operator, .init = cu_setup, .fini = it_teardown, .timeout = 120);

#define ST(x)	SETTLE__V1__BRANCH_STATE__##x
#define TX(x)	SETTLE__V1__TX_STATE__##x
#define CODE(x) SETTLE__V1__CODE__##x

#define ALICE_START 1000
#define BOB_START   500
#define WAIT_MS	    30000

static const char *const node_args[] = {"--retry-base", "50ms", "--retry-max",
					"200ms", NULL};

struct world {
	struct it_node node;
	struct it_bank a; /* bank-a: alice */
	struct it_bank b; /* bank-b: bob, the one that refuses */
	struct cu_conn c;
};

static void world_start(struct world *w, const char *bank_b_flag)
{
	const char *const args[] = {bank_b_flag, NULL};

	it_node_start(&w->node, 1, node_args);
	it_bank_start(&w->a, "bank-a", "alice=1000", NULL);
	it_bank_start(&w->b, "bank-b", "bob=500",
		      bank_b_flag != NULL ? args : NULL);
	cu_connect(&w->c, w->node.endpoint, 5000);
}

/* The operator "fixed the participant": bank-b restarts on the same port
 * and data without its failure flag. */
static void bank_b_fixed(struct world *w, const char *flag)
{
	struct it_proc *p = w->b.proc;
	int j = 0;

	it_kill(p);
	for (int i = 0; p->argv[i] != NULL; i++) {
		if (strcmp(p->argv[i], flag) == 0) {
			free(p->argv[i]);
			continue;
		}
		p->argv[j++] = p->argv[i];
	}
	p->argv[j] = NULL;
	it_restart(p);
	it_wait_port(p, w->b.port, 10000);
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

static void show_tx(const Settle__V1__TxInfo *tx)
{
	fprintf(stderr, "tx %s state %d failed %u stuck %d reason '%s'\n",
		tx->gid, tx->state, tx->failed, tx->stuck, tx->reason);
	for (size_t i = 0; i < tx->n_branches; i++) {
		const Settle__V1__BranchInfo *b = tx->branches[i];
		fprintf(stderr, "  branch %u state %d attempts %u error '%s'\n",
			b->branch_id, b->state, b->attempts, b->last_error);
	}
	for (size_t i = 0; i < tx->n_history; i++)
		fprintf(stderr, "  event %s branch %u: %s\n",
			tx->history[i]->kind, tx->history[i]->branch_id,
			tx->history[i]->detail);
}

static Settle__V1__TxInfo *query(struct world *w, const char *gid)
{
	Settle__V1__TxInfo *tx = NULL;
	int code = cu_query(&w->c, gid, &tx);

	cr_assert_eq(code, 0, "query %s: code %d", gid, code);
	return tx;
}

/* Poll Query until pred(tx); fails showing the last record and the
 * node's log. Free the result with settle_tx_info_free. */
static Settle__V1__TxInfo *wait_for(struct world *w, const char *gid,
				    bool (*pred)(const Settle__V1__TxInfo *),
				    const char *what)
{
	Settle__V1__TxInfo *tx = NULL;

	for (int waited = 0;; waited += 20) {
		tx = query(w, gid);
		if (pred(tx))
			return tx;
		if (waited >= WAIT_MS)
			break;
		settle_tx_info_free(tx);
		tu_sleep_ms(20);
	}
	show_tx(tx);
	it_show_log(w->node.proc);
	cr_assert_fail("%s: %s not reached in %d ms", gid, what, WAIT_MS);
	return NULL;
}

static bool is_stuck(const Settle__V1__TxInfo *tx)
{
	return tx->failed > 0 && tx->stuck;
}

static bool is_finished(const Settle__V1__TxInfo *tx)
{
	return tx->finished_ms != 0;
}

static const Settle__V1__BranchInfo *branch(const Settle__V1__TxInfo *tx,
					    uint32_t id)
{
	for (size_t i = 0; i < tx->n_branches; i++)
		if (tx->branches[i]->branch_id == id)
			return tx->branches[i];
	show_tx(tx);
	cr_assert_fail("%s: no branch %u", tx->gid, id);
	return NULL;
}

/* Events of kind about one branch. */
static size_t events_of(const Settle__V1__TxInfo *tx, const char *kind,
			uint32_t id)
{
	size_t n = 0;

	for (size_t i = 0; i < tx->n_history; i++)
		if (tx->history[i]->branch_id == id &&
		    strcmp(tx->history[i]->kind, kind) == 0)
			n++;
	return n;
}

static void expect_event(const Settle__V1__TxInfo *tx, const char *kind,
			 uint32_t id, const char *detail)
{
	for (size_t i = 0; i < tx->n_history; i++)
		if (tx->history[i]->branch_id == id &&
		    strcmp(tx->history[i]->kind, kind) == 0 &&
		    strstr(tx->history[i]->detail, detail) != NULL)
			return;
	show_tx(tx);
	cr_assert_fail("%s: no %s event on branch %u saying '%s'", tx->gid,
		       kind, id, detail);
}

/* ---- The two verbs as raw calls ----------------------------------------- */

struct answer {
	int code;
	char msg[512];
	int state;
	uint32_t retried;
	int branch_state;
};

static struct answer tx_retry(struct world *w, const uint8_t *id,
			      const char *gid, uint32_t branch_id,
			      const char *reason)
{
	Settle__V1__TxRetryRequest req = SETTLE__V1__TX_RETRY_REQUEST__INIT;
	struct answer a = {0};
	uint8_t fresh[16];
	struct cu_reply r;

	if (id == NULL) {
		cu_cmd_id(fresh);
		id = fresh;
	}
	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	req.branch_id = branch_id;
	req.reason = (char *)(reason != NULL ? reason : "");
	cr_assert_eq(
	    cu_call(&w->c, SETTLE__V1__METHOD__TX_RETRY, &req.base, &r), 0,
	    "TX_RETRY %s: connection lost", gid);
	a.code = r.code;
	snprintf(a.msg, sizeof a.msg, "%s", r.msg);
	if (r.code == 0) {
		Settle__V1__TxRetryResponse *resp =
		    cu_unpack(&r, &settle__v1__tx_retry_response__descriptor);
		a.state = resp->state;
		a.retried = resp->retried;
		settle__v1__tx_retry_response__free_unpacked(resp, NULL);
	}
	cu_reply_free(&r);
	return a;
}

static struct answer tx_resolve(struct world *w, const uint8_t *id,
				const char *gid, uint32_t branch_id,
				const char *reason)
{
	Settle__V1__TxResolveRequest req = SETTLE__V1__TX_RESOLVE_REQUEST__INIT;
	struct answer a = {0};
	uint8_t fresh[16];
	struct cu_reply r;

	if (id == NULL) {
		cu_cmd_id(fresh);
		id = fresh;
	}
	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	req.branch_id = branch_id;
	req.reason = (char *)(reason != NULL ? reason : "");
	cr_assert_eq(
	    cu_call(&w->c, SETTLE__V1__METHOD__TX_RESOLVE, &req.base, &r), 0,
	    "TX_RESOLVE %s: connection lost", gid);
	a.code = r.code;
	snprintf(a.msg, sizeof a.msg, "%s", r.msg);
	if (r.code == 0) {
		Settle__V1__TxResolveResponse *resp =
		    cu_unpack(&r, &settle__v1__tx_resolve_response__descriptor);
		a.state = resp->state;
		a.branch_state = resp->branch_state;
		settle__v1__tx_resolve_response__free_unpacked(resp, NULL);
	}
	cu_reply_free(&r);
	return a;
}

static void expect_refused(struct answer a, int code, const char *text)
{
	cr_assert_eq(a.code, code, "code %d (%s), want %d", a.code, a.msg,
		     code);
	cr_assert(strstr(a.msg, text) != NULL, "message '%s' lacks '%s'", a.msg,
		  text);
}

/* ---- Scenarios ---------------------------------------------------------- */

/* An ordered saga alice -100, bob +100, then bob -5000 (a business
 * failure): compensation runs 3, 2, 1; 2 is the first that reaches the
 * bank's Compensate handler. Compensate's payload is the
 * action's (settle-bank applies its opposite). */
static void submit_saga(struct world *w, const char *gid)
{
	Settle__V1__SubmitSagaRequest req =
	    SETTLE__V1__SUBMIT_SAGA_REQUEST__INIT;
	Settle__V1__SagaStep st[3], *p[3];
	const struct it_bank *bank[3] = {&w->a, &w->b, &w->b};
	const char *name[3] = {"debit-alice", "credit-bob", "debit-bob"};
	const char *pay[3] = {"account=alice;amount=-100",
			      "account=bob;amount=100",
			      "account=bob;amount=-5000"};
	uint8_t id[16];
	struct cu_reply r;

	for (int i = 0; i < 3; i++) {
		settle__v1__saga_step__init(&st[i]);
		st[i].name = (char *)name[i];
		st[i].endpoint = (char *)bank[i]->endpoint;
		st[i].action_payload.data = (uint8_t *)pay[i];
		st[i].action_payload.len = strlen(pay[i]);
		st[i].compensate_payload = st[i].action_payload;
		p[i] = &st[i];
	}
	cu_cmd_id(id);
	req.cmd_id.data = id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	req.timeout_ms = 60000;
	req.recovery = SETTLE__V1__SAGA_RECOVERY__BACKWARD;
	req.n_steps = 3;
	req.steps = p;
	cr_assert_eq(
	    cu_call(&w->c, SETTLE__V1__METHOD__SUBMIT_SAGA, &req.base, &r), 0);
	cr_assert_eq(r.code, 0, "submit: %d %s", r.code, r.msg);
	cu_reply_free(&r);
}

static bool compensation_failed_twice(const Settle__V1__TxInfo *tx)
{
	return is_stuck(tx) && events_of(tx, "compensate", 2) >= 2;
}

static void expect_money(const struct world *w, long long alice, long long bob)
{
	struct it_account a = it_bank_account(&w->a, "alice");
	struct it_account b = it_bank_account(&w->b, "bob");

	cr_assert_eq(a.balance, alice, "alice has %lld, want %lld", a.balance,
		     alice);
	cr_assert_eq(b.balance, bob, "bob has %lld, want %lld", b.balance, bob);
	cr_assert_eq(a.frozen + b.frozen, 0, "money still frozen");
	cr_assert_eq(a.balance + b.balance, ALICE_START + BOB_START,
		     "money created or lost: alice %lld + bob %lld", a.balance,
		     b.balance);
}

Test(operator, retry_unsticks_a_saga_whose_compensation_failed)
{
	struct world w;
	Settle__V1__TxInfo *tx;
	struct answer a;

	world_start(&w, "--fail-compensate");
	submit_saga(&w, "saga-stuck");
	/* Step 3's action never took effect: the barrier answers its
	 * Compensate without calling the bank's handler. Step 2's is
	 * refused. */
	tx = wait_for(&w, "saga-stuck", is_stuck, "stuck");
	cr_assert_eq(tx->state, TX(SAGA_COMPENSATING));
	cr_assert_eq(branch(tx, 3)->state, ST(STEP_COMPENSATED));
	cr_assert_eq(branch(tx, 2)->state, ST(FAILED));
	cr_assert_eq(branch(tx, 1)->state, ST(STEP_DONE));
	settle_tx_info_free(tx);

	/* Retried while the bank still refuses: the driver calls it again
	 * (a second compensate event), and it is stuck again. */
	a = tx_retry(&w, NULL, "saga-stuck", 0, "first try");
	cr_assert_eq(a.code, 0, "retry: %s", a.msg);
	cr_assert_eq(a.retried, 1);
	cr_assert_eq(a.state, TX(SAGA_COMPENSATING));
	tx = wait_for(&w, "saga-stuck", compensation_failed_twice,
		      "a second refused compensation");
	settle_tx_info_free(tx);

	bank_b_fixed(&w, "--fail-compensate");
	a = tx_retry(&w, NULL, "saga-stuck", 2, "bank-b fixed, INC-7");
	cr_assert_eq(a.code, 0, "retry: %s", a.msg);
	cr_assert_eq(a.retried, 1);

	tx = wait_for(&w, "saga-stuck", is_finished, "the end");
	if (tx->state != TX(SAGA_COMPENSATED))
		show_tx(tx);
	cr_assert_eq(tx->state, TX(SAGA_COMPENSATED));
	for (uint32_t i = 1; i <= 3; i++)
		cr_assert_eq(branch(tx, i)->state, ST(STEP_COMPENSATED),
			     "step %u", i);
	cr_assert_eq(tx->failed, 0);
	cr_assert(!tx->stuck);
	expect_event(tx, "retry", 2, "FAILED -> STEP_COMPENSATING: first try");
	expect_event(tx, "retry", 2,
		     "FAILED -> STEP_COMPENSATING: bank-b fixed, INC-7");
	settle_tx_info_free(tx);
	expect_money(&w, ALICE_START, BOB_START);

	/* Finished: nothing to retry any more. */
	expect_refused(tx_retry(&w, NULL, "saga-stuck", 0, "again"),
		       CODE(WRONG_STATE), "finished");
	stop_clean(&w);
}

Test(operator, resolve_ends_a_commit_stuck_on_a_refused_confirm)
{
	struct world w;
	char gid[SETTLE_GID_BUFSIZE];
	Settle__V1__TxInfo *tx;
	struct answer a;
	uint8_t id[16];
	size_t confirms;

	world_start(&w, "--fail-confirm");
	cr_assert_eq(it_transfer(&w.node, &w.a, "alice", &w.b, "bob", 100, NULL,
				 gid, sizeof(gid)),
		     0);
	tx = wait_for(&w, gid, is_stuck, "stuck");
	cr_assert_eq(tx->state, TX(COMMITTING));
	cr_assert_eq(branch(tx, 1)->state, ST(CONFIRMED));
	cr_assert_eq(branch(tx, 2)->state, ST(FAILED));
	confirms = events_of(tx, "confirm", 2);
	settle_tx_info_free(tx);

	/* Refusals first: each changes nothing. */
	expect_refused(tx_resolve(&w, NULL, gid, 1, "wrong branch"),
		       CODE(WRONG_STATE), "not FAILED");
	expect_refused(tx_resolve(&w, NULL, gid, 2, ""), CODE(INVALID_ARGUMENT),
		       "reason");
	expect_refused(tx_resolve(&w, NULL, gid, 0, "which one?"),
		       CODE(INVALID_ARGUMENT), "branch_id");
	expect_refused(tx_resolve(&w, NULL, gid, 7, "no such"), CODE(NOT_FOUND),
		       "branch 7");
	expect_refused(tx_resolve(&w, NULL, "no-such-gid", 1, "x"),
		       CODE(NOT_FOUND), "no-such-gid");
	expect_refused(tx_retry(&w, NULL, "no-such-gid", 0, "x"),
		       CODE(NOT_FOUND), "no-such-gid");
	{
		char big[1100];
		memset(big, 'x', sizeof big - 1);
		big[sizeof big - 1] = 0;
		expect_refused(tx_retry(&w, NULL, gid, 0, big),
			       CODE(INVALID_ARGUMENT), "reason");
	}
	tx = query(&w, gid);
	cr_assert_eq(tx->state, TX(COMMITTING));
	cr_assert_eq(branch(tx, 2)->state, ST(FAILED));
	cr_assert_eq(cu_events(tx, "resolve") + cu_events(tx, "retry"), 0);
	settle_tx_info_free(tx);

	/* bob's credit was applied by hand: the operator says so. */
	cu_cmd_id(id);
	a = tx_resolve(&w, id, gid, 2, "credited bob by hand, INC-42");
	cr_assert_eq(a.code, 0, "resolve: %s", a.msg);
	cr_assert_eq(a.branch_state, ST(CONFIRMED));
	cr_assert_eq(a.state, TX(COMMITTED));
	/* The same request again (a lost reply): the same answer, once. */
	a = tx_resolve(&w, id, gid, 2, "credited bob by hand, INC-42");
	cr_assert_eq(a.code, 0, "repeated resolve: %s", a.msg);
	cr_assert_eq(a.branch_state, ST(CONFIRMED));

	tx = query(&w, gid);
	cr_assert_eq(tx->state, TX(COMMITTED));
	cr_assert_neq(tx->finished_ms, 0);
	cr_assert_eq(branch(tx, 2)->state, ST(CONFIRMED));
	cr_assert(!tx->stuck);
	cr_assert_eq(cu_events(tx, "resolve"), 1);
	expect_event(tx, "resolve", 2,
		     "FAILED -> CONFIRMED: credited bob by hand, INC-42");
	settle_tx_info_free(tx);

	/* Resolve calls nobody: no Confirm reaches bank-b afterwards, and
	 * its reservation is left for the operator's own books. */
	tu_sleep_ms(500);
	tx = query(&w, gid);
	cr_assert_eq(events_of(tx, "confirm", 2), confirms);
	settle_tx_info_free(tx);
	cr_assert_eq(it_bank_account(&w.a, "alice").balance, 900);
	cr_assert_eq(it_bank_account(&w.b, "bob").incoming, 100);

	expect_refused(tx_retry(&w, NULL, gid, 2, "too late"),
		       CODE(WRONG_STATE), "finished");
	expect_refused(tx_resolve(&w, NULL, gid, 2, "too late"),
		       CODE(WRONG_STATE), "finished");
	stop_clean(&w);
}

Test(operator, retry_finishes_a_rollback_stuck_on_a_refused_cancel)
{
	struct world w;
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *cl;
	Settle__V1__TxInfo *tx;
	struct answer a;
	uint8_t id[16];
	int state = 0;

	world_start(&w, "--fail-cancel");
	cl = tu_client(&w.node);
	tu_begin_and_try(cl, 60000, &w.a, "alice", &w.b, "bob", 100, gid);
	settle_client_close(cl);
	cu_cmd_id(id);
	cr_assert_eq(cu_decide(&w.c, false, id, gid, false, 0, &state, NULL),
		     0);
	tx = wait_for(&w, gid, is_stuck, "stuck");
	cr_assert_eq(tx->state, TX(ROLLING_BACK));
	cr_assert_eq(branch(tx, 2)->state, ST(FAILED));
	settle_tx_info_free(tx);

	bank_b_fixed(&w, "--fail-cancel");
	a = tx_retry(&w, NULL, gid, 2, "");
	cr_assert_eq(a.code, 0, "retry: %s", a.msg);
	cr_assert_eq(a.retried, 1);
	cr_assert_eq(a.state, TX(ROLLING_BACK));

	tx = wait_for(&w, gid, is_finished, "the end");
	cr_assert_eq(tx->state, TX(ROLLED_BACK));
	cr_assert_eq(branch(tx, 2)->state, ST(CANCELLED));
	expect_event(tx, "retry", 2, "FAILED -> CANCELLING");
	settle_tx_info_free(tx);
	/* Both reservations released: nothing moved. */
	struct it_account al = it_bank_account(&w.a, "alice");
	struct it_account bo = it_bank_account(&w.b, "bob");
	cr_assert_eq(al.balance, ALICE_START);
	cr_assert_eq(al.frozen, 0);
	cr_assert_eq(bo.balance, BOB_START);
	cr_assert_eq(bo.incoming, 0);
	stop_clean(&w);
}

Test(operator, hostile_requests_are_refused_clearly)
{
	struct world w;
	struct cu_reply r;
	uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	Settle__V1__TxRetryRequest req = SETTLE__V1__TX_RETRY_REQUEST__INIT;

	world_start(&w, NULL);
	cr_assert_eq(cu_call_raw(&w.c, SETTLE__V1__METHOD__TX_RETRY, junk,
				 sizeof junk, &r),
		     0);
	cr_assert_eq(r.code, CODE(INVALID_ARGUMENT), "junk: %d %s", r.code,
		     r.msg);
	cr_assert_str_neq(r.msg, "");
	cu_reply_free(&r);
	cr_assert_eq(cu_call_raw(&w.c, SETTLE__V1__METHOD__TX_RESOLVE, junk,
				 sizeof junk, &r),
		     0);
	cr_assert_eq(r.code, CODE(INVALID_ARGUMENT), "junk: %d %s", r.code,
		     r.msg);
	cu_reply_free(&r);

	/* No cmd_id: refused before anything is proposed. */
	req.gid = "g";
	cr_assert_eq(cu_call(&w.c, SETTLE__V1__METHOD__TX_RETRY, &req.base, &r),
		     0);
	cr_assert_eq(r.code, CODE(INVALID_ARGUMENT));
	cr_assert(strstr(r.msg, "cmd_id") != NULL, "%s", r.msg);
	cu_reply_free(&r);

	expect_refused(tx_retry(&w, NULL, "bad gid", 0, "x"),
		       CODE(INVALID_ARGUMENT), "gid");
	/* An ACTIVE transaction is not decided: nothing to retry. */
	{
		uint8_t id[16];
		char gid[SETTLE_GID_BUFSIZE];

		cu_cmd_id(id);
		cr_assert_eq(cu_begin(&w.c, id, "op-active", 60000, gid, NULL),
			     0);
		expect_refused(tx_retry(&w, NULL, "op-active", 0, "x"),
			       CODE(WRONG_STATE), "not decided");
	}
	/* The node still serves. */
	Settle__V1__StatusResponse *st = cu_status(&w.c);
	settle__v1__status_response__free_unpacked(st, NULL);
	stop_clean(&w);
}

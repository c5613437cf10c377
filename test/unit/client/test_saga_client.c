/* libsettle's saga and operator calls against a scripted fake coordinator:
 * what settle_submit_saga() refuses locally and what it sends, how
 * settle_wait() polls and reports a stuck transaction, and the operator
 * verbs' requests and answers. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>

#include "error.h"

#include "settle.h"

#include "fake_server.h"
#include "log.h"

static struct settle_client_opts fast = {
    .call_timeout_ms = 1000,
    .connect_timeout_ms = 500,
    .retry_budget_ms = 3000,
    .backoff_max_ms = 20,
};

/* The last decoded SubmitSagaRequest and the number of Query calls. */
static Settle__V1__SubmitSagaRequest *last_submit;
static atomic_int queries;

static ProtobufCMessage *query_resp(int state, uint32_t failed)
{
	Settle__V1__QueryResponse *r = malloc(sizeof(*r));
	Settle__V1__BranchInfo *b = malloc(sizeof(*b));

	settle__v1__query_response__init(r);
	r->tx = malloc(sizeof(*r->tx));
	settle__v1__tx_info__init(r->tx);
	r->tx->gid = strdup("sg-1");
	r->tx->mode = SETTLE__V1__TX_MODE__SAGA;
	r->tx->state = state;
	r->tx->failed = failed;
	settle__v1__branch_info__init(b);
	b->branch_id = 2;
	b->name = strdup("credit");
	b->state = failed ? SETTLE__V1__BRANCH_STATE__FAILED
			  : SETTLE__V1__BRANCH_STATE__STEP_DONE;
	b->last_error = strdup(failed ? "FAILURE: injected failure" : "");
	r->tx->branches = malloc(sizeof(*r->tx->branches));
	r->tx->branches[0] = b;
	r->tx->n_branches = 1;
	return &r->base;
}

/*
 * SUBMIT_SAGA: the first attempt loses its reply, the retry is answered.
 * QUERY: data is the script, "R" running, "S" succeeded, "F" stuck; past
 * its end the last letter repeats. TX_RETRY / TX_RESOLVE echo the branch.
 */
static bool saga_fake(struct fake_server *s, int n, const Settle__V1__Frame *f,
		      int *err, const char **msg, const char **leader,
		      ProtobufCMessage **body)
{
	switch ((int)f->method) {
	case SETTLE__V1__METHOD__SUBMIT_SAGA: {
		if (n == 0)
			return false;
		if (last_submit != NULL)
			settle__v1__submit_saga_request__free_unpacked(
			    last_submit, NULL);
		last_submit = settle__v1__submit_saga_request__unpack(
		    NULL, f->body.len, f->body.data);
		cr_assert_not_null(last_submit);
		Settle__V1__SubmitSagaResponse *r = malloc(sizeof(*r));
		settle__v1__submit_saga_response__init(r);
		r->gid = strdup(last_submit->gid[0] ? last_submit->gid
						    : "chosen-by-server");
		r->deadline_ms = 99;
		*body = &r->base;
		return true;
	}
	case SETTLE__V1__METHOD__QUERY: {
		const char *script = s->data;
		int q = atomic_fetch_add(&queries, 1);
		size_t len = strlen(script);
		char c = script[(size_t)q < len ? (size_t)q : len - 1];
		if (c == 'N') {
			*err = SETTLE_ENOTFOUND;
			*msg = "no such transaction";
			return true;
		}
		*body =
		    query_resp(c == 'S'	  ? SETTLE__V1__TX_STATE__SAGA_SUCCEEDED
			       : c == 'C' ? SETTLE__V1__TX_STATE__COMMITTED
					  : SETTLE__V1__TX_STATE__SAGA_RUNNING,
			       c == 'F' ? 1 : 0);
		return true;
	}
	case SETTLE__V1__METHOD__TX_RETRY: {
		Settle__V1__TxRetryRequest *q =
		    settle__v1__tx_retry_request__unpack(NULL, f->body.len,
							 f->body.data);
		cr_assert_not_null(q);
		if (strcmp(q->gid, "nothing") == 0) {
			*err = SETTLE_ESTATE;
			*msg = "nothing to retry";
		} else {
			Settle__V1__TxRetryResponse *r = malloc(sizeof(*r));
			settle__v1__tx_retry_response__init(r);
			/* The answer encodes what was asked. */
			r->retried = q->branch_id == 0 ? 2 : 1;
			r->state = strcmp(q->reason, "fixed the account") == 0
				       ? SETTLE__V1__TX_STATE__SAGA_COMPENSATING
				       : SETTLE__V1__TX_STATE__COMMITTING;
			*body = &r->base;
		}
		settle__v1__tx_retry_request__free_unpacked(q, NULL);
		return true;
	}
	case SETTLE__V1__METHOD__TX_RESOLVE: {
		Settle__V1__TxResolveRequest *q =
		    settle__v1__tx_resolve_request__unpack(NULL, f->body.len,
							   f->body.data);
		cr_assert_not_null(q);
		cr_expect_eq(q->cmd_id.len, 16);
		cr_expect_str_eq(q->reason, "refunded by hand (ops-42)");
		Settle__V1__TxResolveResponse *r = malloc(sizeof(*r));
		settle__v1__tx_resolve_response__init(r);
		r->branch_state =
		    q->branch_id == 2
			? SETTLE__V1__BRANCH_STATE__STEP_COMPENSATED
			: SETTLE__V1__BRANCH_STATE__CANCELLED;
		r->state = SETTLE__V1__TX_STATE__SAGA_COMPENSATED;
		*body = &r->base;
		settle__v1__tx_resolve_request__free_unpacked(q, NULL);
		return true;
	}
	}
	*err = SETTLE_ENOMETHOD;
	*msg = "fake: no such method";
	return true;
}

static struct settle_saga_step two_steps[2];
static const uint32_t dep0[] = {0};

static void init_steps(void)
{
	memset(two_steps, 0, sizeof(two_steps));
	two_steps[0] = (struct settle_saga_step){
	    .name = "debit",
	    .endpoint = "127.0.0.1:7101",
	    .action = "account=alice;amount=-5",
	    .action_len = 23,
	    .compensate = "account=alice;amount=-5",
	    .compensate_len = 23,
	    .max_attempts = 3,
	    .retry_base_ms = 10,
	    .retry_max_ms = 100,
	    .call_timeout_ms = 700,
	};
	two_steps[1] = (struct settle_saga_step){
	    .name = "credit",
	    .endpoint = "127.0.0.1:7102",
	    .action = "account=bob;amount=5",
	    .action_len = 20,
	};
}

static void saga_setup(void)
{
	init_steps();
	atomic_store(&queries, 0);
	last_submit = NULL;
}

static void saga_teardown(void)
{
	if (last_submit != NULL)
		settle__v1__submit_saga_request__free_unpacked(last_submit,
							       NULL);
	last_submit = NULL;
}

TestSuite(saga_client, .init = saga_setup, .fini = saga_teardown,
	  .timeout = 30);

Test(saga_client, submit_sends_every_field_and_one_cmd_id)
{
	struct fake_server a;
	struct settle_saga_opts o = {
	    .timeout_ms = 30000, .recovery = SETTLE_SAGA_FORWARD, .dag = true};
	settle_client *c;
	char gid[SETTLE_GID_BUFSIZE];

	two_steps[1].depends_on = dep0;
	two_steps[1].n_depends_on = 1;
	fake_server_start(&a, saga_fake, "S");
	cr_assert_eq(settle_client_open(a.endpoint, &fast, &c), 0);
	cr_assert_eq(
	    settle_submit_saga(c, "sg-1", &o, two_steps, 2, gid, sizeof(gid)),
	    0, "%s", settle_client_errmsg(c));
	cr_expect_str_eq(gid, "sg-1");
	/* The lost reply was retried with the same cmd_id. */
	cr_assert_eq(a.requests, 2);
	cr_expect_eq(a.methods[0], SETTLE__V1__METHOD__SUBMIT_SAGA);
	cr_assert_eq(a.cmd_id_lens[0], 16);
	cr_expect_eq(memcmp(a.cmd_ids[0], a.cmd_ids[1], 16), 0);

	Settle__V1__SubmitSagaRequest *q = last_submit;
	cr_assert_not_null(q);
	cr_expect_eq(q->timeout_ms, 30000);
	cr_expect_eq(q->recovery, SETTLE__V1__SAGA_RECOVERY__FORWARD);
	cr_expect(q->dag);
	cr_assert_eq(q->n_steps, 2);
	cr_expect_str_eq(q->steps[0]->name, "debit");
	cr_expect_str_eq(q->steps[0]->endpoint, "127.0.0.1:7101");
	cr_expect_eq(q->steps[0]->action_payload.len, 23);
	cr_expect_eq(memcmp(q->steps[0]->action_payload.data,
			    "account=alice;amount=-5", 23),
		     0);
	cr_expect_eq(q->steps[0]->compensate_payload.len, 23);
	cr_expect_eq(q->steps[0]->max_attempts, 3);
	cr_expect_eq(q->steps[0]->retry_base_ms, 10);
	cr_expect_eq(q->steps[0]->retry_max_ms, 100);
	cr_expect_eq(q->steps[0]->call_timeout_ms, 700);
	cr_expect_eq(q->steps[0]->n_depends_on, 0);
	cr_expect_str_eq(q->steps[1]->name, "credit");
	cr_expect_eq(q->steps[1]->compensate_payload.len, 0);
	cr_assert_eq(q->steps[1]->n_depends_on, 1);
	cr_expect_eq(q->steps[1]->depends_on[0], 0);

	/* Defaults: no opts is ordered BACKWARD; the server picks the gid;
	 * a new logical call draws a new cmd_id. */
	two_steps[1].depends_on = NULL;
	two_steps[1].n_depends_on = 0;
	cr_assert_eq(
	    settle_submit_saga(c, NULL, NULL, two_steps, 2, gid, sizeof(gid)),
	    0, "%s", settle_client_errmsg(c));
	cr_expect_str_eq(gid, "chosen-by-server");
	cr_expect_eq(last_submit->recovery,
		     SETTLE__V1__SAGA_RECOVERY__BACKWARD);
	cr_expect_not(last_submit->dag);
	cr_expect_eq(last_submit->timeout_ms, 0);
	cr_expect_neq(memcmp(a.cmd_ids[0], a.cmd_ids[2], 16), 0);

	/* A gid buffer too small: submitted all the same, and said so. */
	char tiny[4];
	cr_expect_eq(
	    settle_submit_saga(c, NULL, NULL, two_steps, 2, tiny, sizeof(tiny)),
	    SETTLE_ETOOBIG);
	cr_expect_eq(a.requests, 4);
	settle_client_close(c);
	fake_server_stop(&a);
}

Test(saga_client, submit_refuses_misuse_locally)
{
	struct settle_saga_opts dag = {.dag = true};
	struct settle_saga_opts bad_rec = {.recovery = 7};
	static const uint32_t later[] = {1}, twice[] = {0, 0};
	settle_client *c;
	char big[SETTLE_SAGA_NAME_MAX + 2];

	/* Nothing listens here: any call that got through would fail with a
	 * connection error, not SETTLE_EINVAL. */
	cr_assert_eq(settle_client_open("127.0.0.1:1", &fast, &c), 0);
	cr_expect_eq(settle_submit_saga(NULL, "g", NULL, two_steps, 2, NULL, 0),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_submit_saga(c, "g", NULL, two_steps, 0, NULL, 0),
		     SETTLE_EINVAL);
	cr_expect_str_eq(settle_client_errmsg(c),
			 "submit saga: a saga needs at least one step");
	cr_expect_eq(settle_submit_saga(c, "g", NULL, NULL, 2, NULL, 0),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_submit_saga(c, "g", NULL, two_steps,
					SETTLE_SAGA_MAX_STEPS + 1, NULL, 0),
		     SETTLE_EINVAL);
	cr_expect_eq(
	    settle_submit_saga(c, "g", &bad_rec, two_steps, 2, NULL, 0),
	    SETTLE_EINVAL);
	cr_expect_not_null(strstr(settle_client_errmsg(c), "recovery 7"));

	memset(big, 'g', SETTLE_GID_MAX + 1);
	big[SETTLE_GID_MAX + 1] = '\0';
	cr_expect_eq(settle_submit_saga(c, big, NULL, two_steps, 2, NULL, 0),
		     SETTLE_EINVAL);

	two_steps[1].endpoint = "";
	cr_expect_eq(settle_submit_saga(c, "g", NULL, two_steps, 2, NULL, 0),
		     SETTLE_EINVAL);
	cr_expect_str_eq(settle_client_errmsg(c),
			 "submit saga: step 1: endpoint is required");
	init_steps();
	two_steps[0].action = NULL;
	cr_expect_eq(settle_submit_saga(c, "g", NULL, two_steps, 2, NULL, 0),
		     SETTLE_EINVAL);
	init_steps();
	two_steps[1].compensate_len = 3;
	cr_expect_eq(settle_submit_saga(c, "g", NULL, two_steps, 2, NULL, 0),
		     SETTLE_EINVAL);
	init_steps();
	memset(big, 'n', SETTLE_SAGA_NAME_MAX + 1);
	big[SETTLE_SAGA_NAME_MAX + 1] = '\0';
	two_steps[0].name = big;
	cr_expect_eq(settle_submit_saga(c, "g", NULL, two_steps, 2, NULL, 0),
		     SETTLE_EINVAL);
	init_steps();
	two_steps[0].retry_base_ms = 500;
	cr_expect_eq(settle_submit_saga(c, "g", NULL, two_steps, 2, NULL, 0),
		     SETTLE_EINVAL);

	/* depends_on: only in a dag, only earlier steps, once each. */
	init_steps();
	two_steps[1].depends_on = dep0;
	two_steps[1].n_depends_on = 1;
	cr_expect_eq(settle_submit_saga(c, "g", NULL, two_steps, 2, NULL, 0),
		     SETTLE_EINVAL);
	cr_expect_not_null(strstr(settle_client_errmsg(c), "needs a dag"));
	two_steps[1].depends_on = later;
	cr_expect_eq(settle_submit_saga(c, "g", &dag, two_steps, 2, NULL, 0),
		     SETTLE_EINVAL);
	cr_expect_str_eq(settle_client_errmsg(c),
			 "submit saga: step 1: depends_on 1 must name an "
			 "earlier step");
	two_steps[1].depends_on = twice;
	two_steps[1].n_depends_on = 2;
	cr_expect_eq(settle_submit_saga(c, "g", &dag, two_steps, 2, NULL, 0),
		     SETTLE_EINVAL);
	two_steps[1].depends_on = NULL;
	cr_expect_eq(settle_submit_saga(c, "g", &dag, two_steps, 2, NULL, 0),
		     SETTLE_EINVAL);

	/* Operator verbs: gid, branch and reason checked before sending. */
	char reason[SETTLE_REASON_MAX + 2];
	memset(reason, 'r', sizeof(reason) - 1);
	reason[sizeof(reason) - 1] = '\0';
	cr_expect_eq(settle_tx_retry(c, "", 0, NULL, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_tx_retry(c, "g", 0, reason, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_tx_resolve(c, "g", 0, "why", NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_str_eq(settle_client_errmsg(c),
			 "tx resolve: a branch id (>= 1) is required");
	cr_expect_eq(settle_tx_resolve(c, "g", 1, "", NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_tx_resolve(c, "g", 1, NULL, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_tx_resolve(c, "g", 1, reason, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_wait(c, NULL, 0, NULL, NULL), SETTLE_EINVAL);
	cr_expect_eq(settle_wait(NULL, "g", 0, NULL, NULL), SETTLE_EINVAL);
	settle_client_close(c);
}

Test(saga_client, wait_polls_until_final)
{
	struct fake_server a;
	settle_client *c;
	int state = 0;
	bool finished = false;

	fake_server_start(&a, saga_fake, "RRRS");
	cr_assert_eq(settle_client_open(a.endpoint, &fast, &c), 0);
	cr_assert_eq(settle_wait(c, "sg-1", 5000, &state, &finished), 0, "%s",
		     settle_client_errmsg(c));
	cr_expect_eq(state, SETTLE__V1__TX_STATE__SAGA_SUCCEEDED);
	cr_expect(finished);
	cr_expect_eq(atomic_load(&queries), 4);
	settle_client_close(c);
	fake_server_stop(&a);
}

Test(saga_client, wait_gives_up_after_wait_ms)
{
	struct fake_server a;
	settle_client *c;
	int state = 0;
	bool finished = true;

	fake_server_start(&a, saga_fake, "R");
	cr_assert_eq(settle_client_open(a.endpoint, &fast, &c), 0);
	uint64_t t0 = settle_mono_ms();
	cr_expect_eq(settle_wait(c, "sg-1", 600, &state, &finished),
		     SETTLE_ETIMEOUT);
	uint64_t took = settle_mono_ms() - t0;
	cr_expect_geq(took, 600);
	cr_expect_lt(took, 1500, "took %llu ms", (unsigned long long)took);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__SAGA_RUNNING);
	cr_expect_not(finished);
	cr_expect_str_eq(settle_client_errmsg(c),
			 "wait: sg-1 not final after 600 ms");
	/* Polls back off: far fewer than one per 20 ms. */
	cr_expect_lt(atomic_load(&queries), 12, "%d queries",
		     atomic_load(&queries));

	/* wait_ms 0 looks once. */
	atomic_store(&queries, 0);
	cr_expect_eq(settle_wait(c, "sg-1", 0, &state, &finished),
		     SETTLE_ETIMEOUT);
	cr_expect_eq(atomic_load(&queries), 1);
	settle_client_close(c);
	fake_server_stop(&a);
}

Test(saga_client, wait_reports_a_stuck_transaction)
{
	struct fake_server a;
	settle_client *c;
	int state = 0;
	bool finished = true;

	fake_server_start(&a, saga_fake, "RF");
	cr_assert_eq(settle_client_open(a.endpoint, &fast, &c), 0);
	cr_expect_eq(settle_wait(c, "sg-1", 20000, &state, &finished),
		     SETTLE_ESTATE);
	cr_expect_eq(atomic_load(&queries), 2, "returned at once");
	cr_expect_eq(state, SETTLE__V1__TX_STATE__SAGA_RUNNING);
	cr_expect_not(finished);
	cr_expect_str_eq(settle_client_errmsg(c),
			 "wait: sg-1 is stuck: branch 2 (credit) FAILED: "
			 "FAILURE: injected failure; waiting for an operator "
			 "(settlectl tx show sg-1)");
	settle_client_close(c);
	fake_server_stop(&a);
}

Test(saga_client, wait_on_tcc_and_unknown_gids)
{
	struct fake_server a, b;
	settle_client *c;
	int state = 0;

	fake_server_start(&a, saga_fake, "C");
	cr_assert_eq(settle_client_open(a.endpoint, &fast, &c), 0);
	cr_expect_eq(settle_wait(c, "tcc-1", 1000, &state, NULL), 0);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	settle_client_close(c);
	fake_server_start(&b, saga_fake, "N");
	cr_assert_eq(settle_client_open(b.endpoint, &fast, &c), 0);
	cr_expect_eq(settle_wait(c, "gone", 1000, &state, NULL),
		     SETTLE_ENOTFOUND);
	settle_client_close(c);
	fake_server_stop(&a);
	fake_server_stop(&b);
}

Test(saga_client, operator_verbs)
{
	struct fake_server a;
	settle_client *c;
	uint32_t retried = 0;
	int state = 0, bstate = 0;

	fake_server_start(&a, saga_fake, "R");
	cr_assert_eq(settle_client_open(a.endpoint, &fast, &c), 0);
	cr_assert_eq(settle_tx_retry(c, "sg-1", 0, "fixed the account",
				     &retried, &state),
		     0, "%s", settle_client_errmsg(c));
	cr_expect_eq(retried, 2);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__SAGA_COMPENSATING);
	cr_assert_eq(settle_tx_retry(c, "sg-1", 3, NULL, &retried, NULL), 0);
	cr_expect_eq(retried, 1);
	cr_expect_eq(a.cmd_id_lens[0], 16);
	cr_expect_neq(memcmp(a.cmd_ids[0], a.cmd_ids[1], 16), 0);
	cr_expect_eq(settle_tx_retry(c, "nothing", 0, NULL, NULL, NULL),
		     SETTLE_ESTATE);
	cr_expect_str_eq(settle_client_errmsg(c),
			 "tx retry: WRONG_STATE: nothing to retry");
	cr_assert_eq(settle_tx_resolve(c, "sg-1", 2,
				       "refunded by hand (ops-42)", &bstate,
				       &state),
		     0, "%s", settle_client_errmsg(c));
	cr_expect_eq(bstate, SETTLE__V1__BRANCH_STATE__STEP_COMPENSATED);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__SAGA_COMPENSATED);
	settle_client_close(c);
	fake_server_stop(&a);
}

Test(saga_client, state_names_know_sagas)
{
	cr_expect_str_eq(
	    settle_tx_state_name(SETTLE__V1__TX_STATE__SAGA_RUNNING),
	    "SAGA_RUNNING");
	cr_expect_str_eq(
	    settle_tx_state_name(SETTLE__V1__TX_STATE__SAGA_COMPENSATED),
	    "SAGA_COMPENSATED");
	cr_expect_str_eq(settle_tx_state_name(6), "UNKNOWN");
	cr_expect_str_eq(settle_branch_state_name(
			     SETTLE__V1__BRANCH_STATE__STEP_ACTION_FAILED),
			 "STEP_ACTION_FAILED");
	cr_expect_str_eq(settle_branch_state_name(14), "UNKNOWN");
	cr_expect(settle_tx_state_final(SETTLE__V1__TX_STATE__COMMITTED));
	cr_expect(settle_tx_state_final(SETTLE__V1__TX_STATE__ROLLED_BACK));
	cr_expect(settle_tx_state_final(SETTLE__V1__TX_STATE__SAGA_SUCCEEDED));
	cr_expect(
	    settle_tx_state_final(SETTLE__V1__TX_STATE__SAGA_COMPENSATED));
	cr_expect_not(settle_tx_state_final(SETTLE__V1__TX_STATE__COMMITTING));
	cr_expect_not(
	    settle_tx_state_final(SETTLE__V1__TX_STATE__SAGA_COMPENSATING));
	cr_expect_not(settle_tx_state_final(0));
}

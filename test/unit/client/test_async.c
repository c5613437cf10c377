/* The asynchronous initiator client against coordinator nodes faked with
 * the real RPC server on the test's own loop: pipelining on one
 * connection, answers out of order, leader following, retries with one
 * cmd_id, budgets, waiting, closing with operations under way. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "error.h"

#include "settle_async.h"

#include "rpc.h"

#define MANY 200

static struct settle_client_opts fast = {
    .call_timeout_ms = 1000,
    .connect_timeout_ms = 500,
    .retry_budget_ms = 3000,
    .backoff_max_ms = 20,
};

/* A fake node: what it answers is up to its test's handler. */
struct node {
	struct rpc_server *srv;
	char endpoint[64];
	int requests;
	struct rpc_call *held[MANY];
	int nheld;
	char peers[4][64];
	int npeers;
	uint8_t cmd_ids[MANY][16];
	int mode; /* the test's script */
	char leader[64];
};

static uv_loop_t loop;

static void node_start(struct node *n, rpc_handler_cb h)
{
	char err[128];

	cr_assert_eq(rpc_server_start(&loop, "127.0.0.1:0", NULL, h, n, &n->srv,
				      err, sizeof(err)),
		     0, "%s", err);
	snprintf(n->endpoint, sizeof(n->endpoint), "127.0.0.1:%d",
		 rpc_server_port(n->srv));
}

/* Note the request (its peer, and the cmd_id of a Begin or Commit). */
static void node_see(struct node *n, struct rpc_call *call)
{
	const char *peer = rpc_call_peer(call);
	size_t len;
	const uint8_t *body = rpc_call_body(call, &len);
	int i;

	for (i = 0; i < n->npeers; i++)
		if (strcmp(n->peers[i], peer) == 0)
			break;
	if (i == n->npeers && n->npeers < 4)
		snprintf(n->peers[n->npeers++], sizeof(n->peers[0]), "%s",
			 peer);
	if (n->requests < MANY) {
		if (rpc_call_method(call) == SETTLE__V1__METHOD__BEGIN) {
			Settle__V1__BeginRequest *q =
			    settle__v1__begin_request__unpack(NULL, len, body);
			cr_assert_not_null(q);
			cr_assert_eq(q->cmd_id.len, 16);
			memcpy(n->cmd_ids[n->requests], q->cmd_id.data, 16);
			settle__v1__begin_request__free_unpacked(q, NULL);
		} else if (rpc_call_method(call) ==
			   SETTLE__V1__METHOD__COMMIT) {
			Settle__V1__CommitRequest *q =
			    settle__v1__commit_request__unpack(NULL, len, body);
			cr_assert_not_null(q);
			cr_assert_eq(q->cmd_id.len, 16);
			memcpy(n->cmd_ids[n->requests], q->cmd_id.data, 16);
			settle__v1__commit_request__free_unpacked(q, NULL);
		}
	}
	n->requests++;
}

/* Answer a Begin: the gid asked for, one id per declared branch. */
static void answer_begin(struct rpc_call *call)
{
	Settle__V1__BeginResponse r = SETTLE__V1__BEGIN_RESPONSE__INIT;
	size_t len;
	const uint8_t *body = rpc_call_body(call, &len);
	Settle__V1__BeginRequest *q =
	    settle__v1__begin_request__unpack(NULL, len, body);
	uint32_t ids[8];

	cr_assert_not_null(q);
	r.gid = q->gid;
	for (size_t i = 0; i < q->n_branches && i < 8; i++)
		ids[i] = (uint32_t)i + 1;
	r.branch_ids = ids;
	r.n_branch_ids = q->n_branches;
	cr_assert_eq(rpc_call_reply(call, &r.base), 0);
	settle__v1__begin_request__free_unpacked(q, NULL);
}

static void answer_decision(struct rpc_call *call)
{
	Settle__V1__DecisionResponse r = SETTLE__V1__DECISION_RESPONSE__INIT;

	r.state = SETTLE__V1__TX_STATE__COMMITTED;
	r.finished = true;
	cr_assert_eq(rpc_call_reply(call, &r.base), 0);
}

/* Results as the callbacks saw them. */
struct seen {
	int calls;
	int err;
	char errmsg[512];
	char gid[SETTLE_GID_BUFSIZE];
	size_t nids;
	int state;
	bool finished;
	int wrong; /* begin results that were not the operation's own */
};

static void on_result(void *data, const struct settle_async_result *r)
{
	struct seen *s = data;

	s->calls++;
	s->err = r->err;
	snprintf(s->errmsg, sizeof(s->errmsg), "%s", r->errmsg);
	snprintf(s->gid, sizeof(s->gid), "%s", r->gid);
	s->nids = r->n_branch_ids;
	s->state = r->state;
	s->finished = r->finished;
}

/* Run the loop until *count reaches want or ms pass. */
static void run_until(const int *count, int want, uint64_t ms)
{
	uint64_t end = uv_now(&loop) + ms;

	while (*count < want && uv_now(&loop) < end)
		uv_run(&loop, UV_RUN_ONCE);
}

static void setup(void)
{
	cr_assert_eq(uv_loop_init(&loop), 0);
}

/* Close what is left and drain the loop's close callbacks. */
static void finish(settle_async *a, struct node *n1, struct node *n2)
{
	if (a != NULL)
		settle_async_close(a);
	if (n1 != NULL && n1->srv != NULL)
		rpc_server_close(n1->srv, NULL, NULL);
	if (n2 != NULL && n2->srv != NULL)
		rpc_server_close(n2->srv, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	cr_expect_eq(uv_loop_close(&loop), 0, "handles left open");
}

static const uint8_t pay[3] = "abc";
static const struct settle_branch_decl decls[2] = {
    {"127.0.0.1:1", "r0", pay, sizeof(pay)},
    {"127.0.0.1:1", "r1", NULL, 0},
};

/* ---- Pipelining ----------------------------------------------------------
 */

/* Hold every Begin; once all MANY are in, answer them last first. */
static void hold_then_reverse(void *data, struct rpc_call *call)
{
	struct node *n = data;

	node_see(n, call);
	n->held[n->nheld++] = call;
	if (n->nheld < MANY)
		return;
	while (n->nheld > 0)
		answer_begin(n->held[--n->nheld]);
}

struct begin_ctx {
	struct seen *all;
	int index;
	int *done;
};

static void on_begun(void *data, const struct settle_async_result *r)
{
	struct begin_ctx *ctx = data;
	char want[32];

	snprintf(want, sizeof(want), "g%d", ctx->index);
	on_result(&ctx->all[ctx->index], r);
	if (r->err != 0 || strcmp(r->gid, want) != 0 || r->n_branch_ids != 2 ||
	    r->branch_ids[0] != 1 || r->branch_ids[1] != 2)
		ctx->all[ctx->index].wrong++;
	(*ctx->done)++;
}

Test(async, pipelines_calls_on_one_connection_answered_in_any_order,
     .init = setup)
{
	static struct seen all[MANY];
	static struct begin_ctx ctx[MANY];
	struct node n = {0};
	settle_async *a;
	int done = 0;
	char gid[32];

	node_start(&n, hold_then_reverse);
	cr_assert_eq(settle_async_open(&loop, n.endpoint, &fast, &a), 0);
	for (int i = 0; i < MANY; i++) {
		ctx[i] = (struct begin_ctx){all, i, &done};
		snprintf(gid, sizeof(gid), "g%d", i);
		cr_assert_eq(
		    settle_async_begin(a, gid, 0, decls, 2, on_begun, &ctx[i]),
		    0, "%s", settle_async_errmsg(a));
	}
	/* Callbacks never run inside the call that started them. */
	cr_assert_eq(done, 0);
	cr_assert_eq(settle_async_pending(a), MANY);
	run_until(&done, MANY, 5000);
	cr_assert_eq(done, MANY);
	for (int i = 0; i < MANY; i++)
		cr_expect_eq(all[i].wrong, 0, "begin %d got another's answer",
			     i);
	/* All on one connection, each with its own cmd_id, none retried. */
	cr_expect_eq(n.npeers, 1);
	cr_expect_eq(n.requests, MANY);
	for (int i = 1; i < MANY; i++)
		cr_expect_neq(memcmp(n.cmd_ids[i], n.cmd_ids[0], 16), 0);
	cr_expect_eq(settle_async_pending(a), 0);
	finish(a, &n, NULL);
}

/* ---- Leader following and retries ------------------------------------------
 */

/* mode 0: NOT_LEADER naming n->leader. mode 1: UNAVAILABLE once, then
 * answers. */
static void scripted(void *data, struct rpc_call *call)
{
	struct node *n = data;
	int k = n->requests;

	node_see(n, call);
	if (n->mode == 0) {
		rpc_call_fail(call, SETTLE_ENOTLEADER, "not the leader",
			      n->leader);
		return;
	}
	if (n->mode == 1 && k == 0) {
		rpc_call_fail(call, SETTLE_EUNAVAIL, "no leader yet", NULL);
		return;
	}
	if (n->mode == 2) {
		rpc_call_fail(call, SETTLE_EUNAVAIL, "no leader yet", NULL);
		return;
	}
	if (n->mode == 3) {
		rpc_call_fail(call, SETTLE_ESTATE, "transaction is ROLLED_BACK",
			      NULL);
		return;
	}
	if (rpc_call_method(call) == SETTLE__V1__METHOD__BEGIN)
		answer_begin(call);
	else
		answer_decision(call);
}

Test(async, follows_the_leader_hint_and_retries_with_the_same_cmd_id,
     .init = setup)
{
	struct node f = {0}, l = {0};
	struct seen s = {0}, s2 = {0};
	settle_async *a;

	node_start(&f, scripted);
	node_start(&l, scripted);
	f.mode = 0;
	snprintf(f.leader, sizeof(f.leader), "%s", l.endpoint);
	l.mode = 1;
	cr_assert_eq(settle_async_open(&loop, f.endpoint, &fast, &a), 0);
	cr_assert_eq(settle_async_commit(a, "g1", 100, on_result, &s), 0);
	run_until(&s.calls, 1, 5000);
	cr_assert_eq(s.calls, 1);
	cr_assert_eq(s.err, 0, "%s", s.errmsg);
	cr_expect(s.finished);
	cr_expect_eq(s.state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_str_eq(s.gid, "g1");
	cr_expect_str_eq(s.errmsg, "");
	/* An UNAVAILABLE leader sends the retry back to the list (as the
	 * blocking client does), whose follower names it again. */
	cr_assert_geq(f.requests, 1);
	cr_assert_eq(l.requests, 2); /* UNAVAILABLE, then the answer */
	for (int i = 0; i < f.requests; i++)
		cr_expect_eq(memcmp(f.cmd_ids[i], f.cmd_ids[0], 16), 0);
	cr_expect_eq(memcmp(l.cmd_ids[0], f.cmd_ids[0], 16), 0);
	cr_expect_eq(memcmp(l.cmd_ids[1], f.cmd_ids[0], 16), 0);
	int f_before = f.requests;

	/* The next operation goes straight to the leader, new cmd_id. */
	cr_assert_eq(settle_async_commit(a, "g2", 100, on_result, &s2), 0);
	run_until(&s2.calls, 1, 5000);
	cr_assert_eq(s2.err, 0, "%s", s2.errmsg);
	cr_expect_eq(f.requests, f_before);
	cr_assert_eq(l.requests, 3);
	cr_expect_neq(memcmp(l.cmd_ids[2], l.cmd_ids[0], 16), 0);
	finish(a, &f, &l);
}

Test(async, moves_past_a_dead_endpoint, .init = setup)
{
	struct node l = {0};
	static struct seen s[50];
	int done = 0;
	settle_async *a;
	char eps[160];

	node_start(&l, scripted);
	l.mode = 4; /* answers */
	/* Port 1 on loopback: refused. */
	snprintf(eps, sizeof(eps), "127.0.0.1:1,%s", l.endpoint);
	cr_assert_eq(settle_async_open(&loop, eps, &fast, &a), 0);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(settle_async_commit(a, "g", 0, on_result, &s[i]),
			     0);
	for (uint64_t end = uv_now(&loop) + 5000; uv_now(&loop) < end;) {
		done = 0;
		for (int i = 0; i < 50; i++)
			done += s[i].calls;
		if (done == 50)
			break;
		uv_run(&loop, UV_RUN_ONCE);
	}
	cr_assert_eq(done, 50);
	for (int i = 0; i < 50; i++)
		cr_expect_eq(s[i].err, 0, "%d: %s", i, s[i].errmsg);
	cr_expect_eq(l.requests, 50);
	finish(a, &l, NULL);
}

Test(async, gives_up_when_the_budget_is_spent, .init = setup)
{
	struct settle_client_opts o = fast;
	struct node n = {0};
	struct seen s = {0};
	settle_async *a;

	o.retry_budget_ms = 300;
	node_start(&n, scripted);
	n.mode = 2; /* always UNAVAILABLE */
	cr_assert_eq(settle_async_open(&loop, n.endpoint, &o, &a), 0);
	uint64_t t0 = uv_now(&loop);
	cr_assert_eq(settle_async_begin(a, NULL, 0, NULL, 0, on_result, &s), 0);
	run_until(&s.calls, 1, 5000);
	cr_assert_eq(s.calls, 1);
	cr_expect_eq(s.err, SETTLE_EUNAVAIL);
	cr_expect(strstr(s.errmsg, "gave up after") != NULL, "%s", s.errmsg);
	cr_expect(strstr(s.errmsg, "no leader yet") != NULL, "%s", s.errmsg);
	cr_expect_gt(n.requests, 2);
	cr_expect_lt(uv_now(&loop) - t0, 2000);
	finish(a, &n, NULL);
}

Test(async, reports_a_refusal_without_retrying, .init = setup)
{
	struct node n = {0};
	struct seen s = {0};
	settle_async *a;

	node_start(&n, scripted);
	n.mode = 3; /* WRONG_STATE */
	cr_assert_eq(settle_async_open(&loop, n.endpoint, &fast, &a), 0);
	cr_assert_eq(settle_async_rollback(a, "g9", "why", 0, on_result, &s),
		     0);
	run_until(&s.calls, 1, 5000);
	cr_assert_eq(s.err, SETTLE_ESTATE);
	cr_expect_str_eq(s.errmsg,
			 "rollback: WRONG_STATE: transaction is ROLLED_BACK");
	cr_expect_str_eq(s.gid, "g9");
	cr_expect_eq(n.requests, 1);
	finish(a, &n, NULL);
}

/* ---- Waiting --------------------------------------------------------------
 */

/* Query: "done" is RUNNING at first, SUCCEEDED from the third look;
 * "stuck" has a FAILED step. Answers at once (an old server). */
static void queries(void *data, struct rpc_call *call)
{
	struct node *n = data;
	Settle__V1__QueryResponse r = SETTLE__V1__QUERY_RESPONSE__INIT;
	Settle__V1__TxInfo tx = SETTLE__V1__TX_INFO__INIT;
	Settle__V1__BranchInfo b = SETTLE__V1__BRANCH_INFO__INIT;
	Settle__V1__BranchInfo *bs[1] = {&b};
	size_t len;
	const uint8_t *body = rpc_call_body(call, &len);
	Settle__V1__QueryRequest *q =
	    settle__v1__query_request__unpack(NULL, len, body);

	cr_assert_not_null(q);
	cr_assert_eq(rpc_call_method(call), SETTLE__V1__METHOD__QUERY);
	cr_expect_gt(q->wait_ms, 0);
	tx.gid = q->gid;
	n->requests++;
	if (strcmp(q->gid, "stuck") == 0) {
		tx.state = SETTLE__V1__TX_STATE__SAGA_COMPENSATING;
		tx.failed = 1;
		b.branch_id = 2;
		b.name = "credit";
		b.state = SETTLE__V1__BRANCH_STATE__FAILED;
		b.last_error = "account closed";
		tx.branches = bs;
		tx.n_branches = 1;
	} else {
		tx.state = n->requests >= 3
			       ? SETTLE__V1__TX_STATE__SAGA_SUCCEEDED
			       : SETTLE__V1__TX_STATE__SAGA_RUNNING;
	}
	r.tx = &tx;
	cr_assert_eq(rpc_call_reply(call, &r.base), 0);
	settle__v1__query_request__free_unpacked(q, NULL);
}

Test(async, wait_polls_until_final_and_names_a_stuck_branch, .init = setup)
{
	struct node n = {0};
	struct seen s = {0}, t = {0};
	settle_async *a;

	node_start(&n, queries);
	cr_assert_eq(settle_async_open(&loop, n.endpoint, &fast, &a), 0);
	cr_assert_eq(settle_async_wait(a, "done", 5000, on_result, &s), 0);
	run_until(&s.calls, 1, 5000);
	cr_assert_eq(s.err, 0, "%s", s.errmsg);
	cr_expect(s.finished);
	cr_expect_eq(s.state, SETTLE__V1__TX_STATE__SAGA_SUCCEEDED);
	cr_expect_eq(n.requests, 3);

	cr_assert_eq(settle_async_wait(a, "stuck", 5000, on_result, &t), 0);
	run_until(&t.calls, 1, 5000);
	cr_assert_eq(t.err, SETTLE_ESTATE);
	cr_expect(!t.finished);
	cr_expect(strstr(t.errmsg, "stuck: branch 2 (credit) FAILED: account "
				   "closed") != NULL,
		  "%s", t.errmsg);
	finish(a, &n, NULL);
}

/* ---- Closing and bad arguments --------------------------------------------
 */

static void hold_all(void *data, struct rpc_call *call)
{
	struct node *n = data;

	node_see(n, call);
	n->held[n->nheld++] = call;
}

Test(async, close_cancels_what_is_under_way_before_it_returns, .init = setup)
{
	static struct seen s[10];
	struct node n = {0};
	settle_async *a;

	node_start(&n, hold_all);
	cr_assert_eq(settle_async_open(&loop, n.endpoint, &fast, &a), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(settle_async_commit(a, "g", 0, on_result, &s[i]),
			     0);
	run_until(&n.requests, 10, 5000);
	cr_assert_eq(n.requests, 10);
	settle_async_close(a);
	for (int i = 0; i < 10; i++) {
		cr_expect_eq(s[i].calls, 1);
		cr_expect_eq(s[i].err, SETTLE_ECANCELED);
	}
	/* The held calls are answered into a closed connection. */
	while (n.nheld > 0)
		rpc_call_fail(n.held[--n.nheld], SETTLE_EUNAVAIL, "late", NULL);
	finish(NULL, &n, NULL);
	for (int i = 0; i < 10; i++)
		cr_expect_eq(s[i].calls, 1);
}

Test(async, refuses_bad_arguments_with_no_callback, .init = setup)
{
	struct seen s = {0};
	settle_async *a;
	char longgid[SETTLE_GID_MAX + 2];
	const struct settle_branch_decl bad = {NULL, "r", NULL, 0};

	memset(longgid, 'x', sizeof(longgid) - 1);
	longgid[sizeof(longgid) - 1] = '\0';
	cr_assert_eq(settle_async_open(&loop, "nonsense", &fast, &a),
		     SETTLE_EINVAL);
	cr_assert_eq(settle_async_open(&loop, "127.0.0.1:9", &fast, &a), 0);
	cr_expect_eq(settle_async_begin(a, longgid, 0, NULL, 0, on_result, &s),
		     SETTLE_EINVAL);
	cr_expect(strstr(settle_async_errmsg(a), "gid longer than") != NULL,
		  "%s", settle_async_errmsg(a));
	cr_expect_eq(settle_async_begin(a, NULL, 0, &bad, 1, on_result, &s),
		     SETTLE_EINVAL);
	cr_expect(strstr(settle_async_errmsg(a), "endpoint is required") !=
		      NULL,
		  "%s", settle_async_errmsg(a));
	cr_expect_eq(settle_async_commit(a, "", 0, on_result, &s),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_async_commit(a, "g", 0, NULL, NULL), SETTLE_EINVAL);
	cr_expect_eq(
	    settle_async_submit_saga(a, NULL, NULL, NULL, 0, on_result, &s),
	    SETTLE_EINVAL);
	cr_expect(strstr(settle_async_errmsg(a), "at least one step") != NULL,
		  "%s", settle_async_errmsg(a));
	cr_expect_eq(settle_async_call_at(a, "no-port", SETTLE__V1__METHOD__TRY,
					  NULL, on_result, &s),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_async_pending(a), 0);
	uv_run(&loop, UV_RUN_NOWAIT);
	cr_expect_eq(s.calls, 0);
	finish(a, NULL, NULL);
	cr_expect_eq(s.calls, 0);
}

/* ---- A cluster below feature level 2 ----------------------------------------
 */

/* Begin answers without branch ids; REGISTER_BRANCH gives 1, 2, ... and
 * checks it carries the declared branch in order. */
static void old_cluster(void *data, struct rpc_call *call)
{
	struct node *n = data;
	size_t len;
	const uint8_t *body = rpc_call_body(call, &len);

	node_see(n, call);
	if (rpc_call_method(call) == SETTLE__V1__METHOD__BEGIN) {
		Settle__V1__BeginResponse r = SETTLE__V1__BEGIN_RESPONSE__INIT;
		r.gid = "old-1";
		cr_assert_eq(rpc_call_reply(call, &r.base), 0);
		return;
	}
	cr_assert_eq(rpc_call_method(call),
		     SETTLE__V1__METHOD__REGISTER_BRANCH);
	Settle__V1__RegisterBranchRequest *q =
	    settle__v1__register_branch_request__unpack(NULL, len, body);
	cr_assert_not_null(q);
	int k = n->nheld++;
	cr_expect_str_eq(q->gid, "old-1");
	cr_expect_str_eq(q->resource, decls[k].resource);
	cr_expect_str_eq(q->endpoint, decls[k].endpoint);
	cr_expect_eq(q->payload.len, decls[k].len);
	cr_expect_eq(q->cmd_id.len, 16);
	memcpy(n->cmd_ids[n->requests - 1], q->cmd_id.data, 16);
	settle__v1__register_branch_request__free_unpacked(q, NULL);
	Settle__V1__RegisterBranchResponse r =
	    SETTLE__V1__REGISTER_BRANCH_RESPONSE__INIT;
	r.branch_id = (uint32_t)k + 1;
	cr_assert_eq(rpc_call_reply(call, &r.base), 0);
}

static void on_old_begin(void *data, const struct settle_async_result *r)
{
	struct seen *s = data;

	on_result(s, r);
	if (r->err == 0 && (r->n_branch_ids != 2 || r->branch_ids[0] != 1 ||
			    r->branch_ids[1] != 2))
		s->wrong++;
}

Test(async, registers_declared_branches_one_by_one_on_an_older_cluster,
     .init = setup)
{
	struct node n = {0};
	struct seen s = {0};
	settle_async *a;

	node_start(&n, old_cluster);
	cr_assert_eq(settle_async_open(&loop, n.endpoint, &fast, &a), 0);
	cr_assert_eq(settle_async_begin(a, NULL, 0, decls, 2, on_old_begin, &s),
		     0);
	run_until(&s.calls, 1, 5000);
	cr_assert_eq(s.calls, 1);
	cr_assert_eq(s.err, 0, "%s", s.errmsg);
	cr_expect_str_eq(s.gid, "old-1");
	cr_expect_eq(s.nids, 2);
	cr_expect_eq(s.wrong, 0);
	cr_assert_eq(n.requests, 3); /* BEGIN, then 2 REGISTER_BRANCH */
	cr_expect_neq(memcmp(n.cmd_ids[0], n.cmd_ids[1], 16), 0);
	cr_expect_neq(memcmp(n.cmd_ids[1], n.cmd_ids[2], 16), 0);
	finish(a, &n, NULL);
}

/* ---- Waking retries when the leader is back --------------------------------
 */

/* UNAVAILABLE while n->mode is 5 (an election), answers after. */
static void electing(void *data, struct rpc_call *call)
{
	struct node *n = data;

	node_see(n, call);
	if (n->mode == 5) {
		rpc_call_fail(call, SETTLE_EUNAVAIL, "no leader yet", NULL);
		return;
	}
	answer_decision(call);
}

/* Operations deep in their backoff (pauses of 320 ms and more) retry as
 * soon as another operation gets an answer from the target, not at the
 * end of their pauses. */
Test(async, an_answer_wakes_the_operations_waiting_to_retry, .init = setup)
{
	struct settle_client_opts o = fast;
	static struct seen s[20];
	struct seen fresh = {0};
	struct node n = {0};
	settle_async *a;
	int done = 0;

	o.retry_budget_ms = 20000;
	o.backoff_max_ms = 5000;
	node_start(&n, electing);
	n.mode = 5;
	cr_assert_eq(settle_async_open(&loop, n.endpoint, &o, &a), 0);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(settle_async_commit(a, "g", 0, on_result, &s[i]),
			     0);
	/* Seven attempts each: 10 + 20 + ... + 640 ms of backoff at most. */
	uint64_t until = uv_now(&loop) + 1500;
	while (uv_now(&loop) < until)
		uv_run(&loop, UV_RUN_ONCE);
	cr_assert_geq(n.requests, 20 * 6, "%d requests", n.requests);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(s[i].calls, 0);
	n.mode = 4; /* a leader again */
	cr_assert_eq(settle_async_commit(a, "g", 0, on_result, &fresh), 0);
	run_until(&fresh.calls, 1, 2000);
	cr_assert_eq(fresh.err, 0, "%s", fresh.errmsg);
	uint64_t t0 = uv_now(&loop);
	for (uint64_t end = t0 + 3000; uv_now(&loop) < end;) {
		done = 0;
		for (int i = 0; i < 20; i++)
			done += s[i].calls;
		if (done == 20)
			break;
		uv_run(&loop, UV_RUN_ONCE);
	}
	cr_assert_eq(done, 20);
	cr_expect_lt(uv_now(&loop) - t0, 150,
		     "the sleeping ones took %llu ms after the answer",
		     (unsigned long long)(uv_now(&loop) - t0));
	for (int i = 0; i < 20; i++)
		cr_expect_eq(s[i].err, 0, "%d: %s", i, s[i].errmsg);
	finish(a, &n, NULL);
}

/* ---- A participant that closes the connection -----------------------------
 */

#include "fake_server.h"

/* Drops the connection without answering the first `data` requests. */
static bool drop_first(struct fake_server *s, int n, const Settle__V1__Frame *f,
		       int *err, const char **msg, const char **leader,
		       ProtobufCMessage **body)
{
	(void)f;
	(void)err;
	(void)msg;
	(void)leader;
	(void)body;
	return n >= *(int *)s->data;
}

static void try_once(struct fake_server *p, struct seen *s)
{
	settle_async *a;
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;

	req.gid = "g";
	req.branch_id = 1;
	cr_assert_eq(settle_async_open(&loop, "127.0.0.1:9", &fast, &a), 0);
	cr_assert_eq(settle_async_call_at(a, p->endpoint,
					  SETTLE__V1__METHOD__TRY, &req.base,
					  on_result, s),
		     0);
	run_until(&s->calls, 1, 5000);
	cr_assert_eq(s->calls, 1);
	finish(a, NULL, NULL);
}

Test(async, a_participant_call_lost_with_its_connection_goes_once_more,
     .init = setup)
{
	struct fake_server p;
	struct seen s = {0};
	int drops = 1;

	fake_server_start(&p, drop_first, &drops);
	try_once(&p, &s);
	cr_expect_eq(s.err, 0, "%s", s.errmsg);
	cr_expect_eq(p.requests, 2);
	cr_expect_eq(p.accepts, 2);
	fake_server_stop(&p);
}

Test(async, a_participant_call_goes_at_most_twice, .init = setup)
{
	struct fake_server p;
	struct seen s = {0};
	int drops = 100;

	fake_server_start(&p, drop_first, &drops);
	try_once(&p, &s);
	cr_expect_eq(s.err, SETTLE_ECLOSED, "%s", s.errmsg);
	cr_expect_eq(p.requests, 2);
	fake_server_stop(&p);
}

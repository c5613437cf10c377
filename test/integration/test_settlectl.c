/*
 * settlectl as a real process against a fake coordinator: an rpc_server on
 * its own thread answering STATUS, LIST and QUERY with fixed data. Checks
 * the requests settlectl sends, what it prints, and its exit codes.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rpc.h"

#include "harness.h"

struct fake {
	uv_loop_t loop;
	uv_async_t stop;
	struct rpc_server *srv;
	pthread_t thread;
	int port;
	char endpoint[32];
	atomic_int calls;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int ready; /* 1 listening, -1 failed */
};

static struct fake fk;

static void reply_status(struct rpc_call *call)
{
	Settle__V1__StatusResponse st = SETTLE__V1__STATUS_RESPONSE__INIT;

	st.node_id = 1;
	st.role = "leader";
	st.address = "127.0.0.1:1";
	st.client_endpoint = fk.endpoint;
	st.leader = fk.endpoint;
	st.term = 7;
	st.last_index = 99;
	st.applied_index = 98;
	st.active = 3;
	st.stuck = 1;
	rpc_call_reply(call, &st.base);
}

/* The filters come back in the reason, so a test sees what was asked. */
static void reply_list(struct rpc_call *call)
{
	Settle__V1__ListResponse resp = SETTLE__V1__LIST_RESPONSE__INIT;
	Settle__V1__TxInfo tx = SETTLE__V1__TX_INFO__INIT, *txs[1] = {&tx};
	Settle__V1__ListRequest *req;
	const uint8_t *body;
	size_t len;
	char reason[256];

	body = rpc_call_body(call, &len);
	req = settle__v1__list_request__unpack(NULL, len, body);
	if (req == NULL) {
		rpc_call_fail(call, SETTLE_EINVAL, "bad list request", NULL);
		return;
	}
	snprintf(reason, sizeof(reason),
		 "state=%d stuck=%d older=%llu limit=%u after=%s", req->state,
		 req->stuck_only, (unsigned long long)req->older_than_ms,
		 req->limit, req->after_gid);
	tx.gid = "g-list";
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	tx.state = SETTLE__V1__TX_STATE__COMMITTING;
	tx.created_ms = 1700000000000ull;
	tx.reason = reason;
	tx.stuck = 1;
	resp.n_txs = 1;
	resp.txs = txs;
	rpc_call_reply(call, &resp.base);
	settle__v1__list_request__free_unpacked(req, NULL);
}

static void reply_query(struct rpc_call *call)
{
	Settle__V1__QueryResponse resp = SETTLE__V1__QUERY_RESPONSE__INIT;
	Settle__V1__TxInfo tx = SETTLE__V1__TX_INFO__INIT;
	Settle__V1__BranchInfo b = SETTLE__V1__BRANCH_INFO__INIT, *bp[1] = {&b};
	Settle__V1__Event e = SETTLE__V1__EVENT__INIT, *ep[1] = {&e};
	Settle__V1__QueryRequest *req;
	const uint8_t *body;
	size_t len;

	body = rpc_call_body(call, &len);
	req = settle__v1__query_request__unpack(NULL, len, body);
	if (req == NULL) {
		rpc_call_fail(call, SETTLE_EINVAL, "bad query request", NULL);
		return;
	}
	if (strcmp(req->gid, "missing") == 0) {
		rpc_call_fail(call, SETTLE_ENOTFOUND, "no such transaction",
			      NULL);
	} else if (strcmp(req->gid, "garbage") == 0) {
		/* A StatusResponse where a QueryResponse belongs: field 1 is
		 * a varint instead of a message, so decoding must fail. */
		Settle__V1__StatusResponse st =
		    SETTLE__V1__STATUS_RESPONSE__INIT;
		st.node_id = 5;
		rpc_call_reply(call, &st.base);
	} else {
		tx.gid = req->gid;
		tx.mode = SETTLE__V1__TX_MODE__TCC;
		tx.state = SETTLE__V1__TX_STATE__COMMITTING;
		tx.created_ms = 1700000000000ull;
		tx.stuck = 1;
		tx.reason = "branch 1: confirm: FAILURE: closed account";
		b.branch_id = 1;
		b.endpoint = "127.0.0.1:9";
		b.resource = "acct-7";
		b.state = SETTLE__V1__BRANCH_STATE__FAILED;
		b.attempts = 1;
		b.last_error = "FAILURE: closed account";
		tx.n_branches = 1;
		tx.branches = bp;
		e.seq = 4;
		e.time_ms = 1700000001000ull;
		e.kind = "confirm";
		e.branch_id = 1;
		e.detail = req->history ? "FAILURE: closed account"
					: "history was not asked for";
		tx.n_history = 1;
		tx.history = ep;
		resp.tx = &tx;
		rpc_call_reply(call, &resp.base);
	}
	settle__v1__query_request__free_unpacked(req, NULL);
}

static void handler(void *data, struct rpc_call *call)
{
	atomic_fetch_add(&fk.calls, 1);
	switch (rpc_call_method(call)) {
	case SETTLE__V1__METHOD__STATUS:
		reply_status(call);
		break;
	case SETTLE__V1__METHOD__LIST:
		reply_list(call);
		break;
	case SETTLE__V1__METHOD__QUERY:
		reply_query(call);
		break;
	default:
		rpc_call_fail(call, SETTLE_ENOMETHOD, "fake: no such method",
			      NULL);
	}
}

static void on_stop(uv_async_t *a)
{
	rpc_server_close(fk.srv, NULL, NULL);
	uv_close((uv_handle_t *)a, NULL);
}

static void *fake_main(void *arg)
{
	char err[256];
	int rv;

	uv_loop_init(&fk.loop);
	uv_async_init(&fk.loop, &fk.stop, on_stop);
	rv = rpc_server_start(&fk.loop, "127.0.0.1:0", NULL, handler, NULL,
			      &fk.srv, err, sizeof(err));
	pthread_mutex_lock(&fk.mu);
	fk.ready = rv == 0 ? 1 : -1;
	if (rv == 0)
		fk.port = rpc_server_port(fk.srv);
	pthread_cond_signal(&fk.cv);
	pthread_mutex_unlock(&fk.mu);
	if (rv != 0) {
		fprintf(stderr, "fake: %s\n", err);
		uv_close((uv_handle_t *)&fk.stop, NULL);
	}
	uv_run(&fk.loop, UV_RUN_DEFAULT);
	uv_loop_close(&fk.loop);
	return NULL;
}

static void fake_start(void)
{
	it_setup();
	memset(&fk, 0, sizeof(fk));
	pthread_mutex_init(&fk.mu, NULL);
	pthread_cond_init(&fk.cv, NULL);
	cr_assert_eq(pthread_create(&fk.thread, NULL, fake_main, NULL), 0);
	pthread_mutex_lock(&fk.mu);
	while (fk.ready == 0)
		pthread_cond_wait(&fk.cv, &fk.mu);
	pthread_mutex_unlock(&fk.mu);
	cr_assert_eq(fk.ready, 1, "fake coordinator did not start");
	snprintf(fk.endpoint, sizeof(fk.endpoint), "127.0.0.1:%d", fk.port);
}

static void fake_stop(void)
{
	uv_async_send(&fk.stop);
	pthread_join(fk.thread, NULL);
	it_teardown();
}

TestSuite(settlectl, .init = fake_start, .fini = fake_stop, .timeout = 60);

/* Run settlectl with up to 12 arguments after the program name. */
static int ctl(char **out, char **err, const char *const *args)
{
	char *argv[16];
	int i = 0;

	argv[i++] = (char *)it_bin("settlectl");
	while (*args && i < 15)
		argv[i++] = (char *)*args++;
	argv[i] = NULL;
	return it_run(argv, out, err, 30000);
}

#define CTL(out, err, ...)                                                     \
	ctl(out, err, (const char *const[]){__VA_ARGS__, NULL})

Test(settlectl, status_table_and_json)
{
	char *out, *err;

	cr_assert_eq(CTL(&out, &err, "--cluster", fk.endpoint, "status"), 0,
		     "stderr: %s", err);
	cr_assert_not_null(strstr(out, "ROLE"), "%s", out);
	cr_assert_not_null(strstr(out, "leader"), "%s", out);
	cr_assert_not_null(strstr(out, "  7  "), "term 7 missing: %s", out);
	free(out);
	free(err);
	cr_assert_eq(
	    CTL(&out, &err, "--cluster", fk.endpoint, "--json", "status"), 0);
	cr_assert_not_null(strstr(out, "\"role\":\"leader\""), "%s", out);
	cr_assert_not_null(strstr(out, "\"term\":7,"), "%s", out);
	free(out);
	free(err);
}

Test(settlectl, status_shows_unreachable_nodes)
{
	char eps[128], *out, *err;
	int dead = it_free_port_pair();

	snprintf(eps, sizeof(eps), "%s,127.0.0.1:%d", fk.endpoint, dead);
	cr_assert_eq(
	    CTL(&out, &err, "--cluster", eps, "--timeout", "2s", "status"), 0,
	    "one node answering is enough: %s", err);
	cr_assert_not_null(strstr(out, "unreachable"), "%s", out);
	cr_assert_not_null(strstr(out, "leader"), "%s", out);
	free(out);
	free(err);
}

Test(settlectl, list_sends_filters)
{
	char *out, *err;

	cr_assert_eq(CTL(&out, &err, "--cluster", fk.endpoint, "tx", "list",
			 "--state", "committing", "--stuck", "--older-than",
			 "5m", "--limit", "10", "--after", "g0"),
		     0, "stderr: %s", err);
	cr_assert_not_null(
	    strstr(out, "state=2 stuck=1 older=300000 limit=10 after=g0"), "%s",
	    out);
	cr_assert_not_null(strstr(out, "STUCK"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(
	    CTL(&out, &err, "--cluster", fk.endpoint, "--json", "tx", "list"),
	    0);
	cr_assert_not_null(strstr(out, "\"reason\":\"state=0 stuck=0 older=0 "
				       "limit=0 after=\""),
			   "%s", out);
	cr_assert_not_null(strstr(out, "\"more\":false}"), "%s", out);
	free(out);
	free(err);
}

Test(settlectl, show_prints_branches_and_history)
{
	char *out, *err;

	cr_assert_eq(
	    CTL(&out, &err, "--cluster", fk.endpoint, "tx", "show", "g-7"), 0,
	    "stderr: %s", err);
	cr_assert_not_null(strstr(out, "gid:       g-7\n"), "%s", out);
	cr_assert_not_null(strstr(out, "STUCK"), "%s", out);
	cr_assert_not_null(strstr(out, "acct-7"), "%s", out);
	cr_assert_not_null(strstr(out, "confirm  1       FAILURE: closed "
				       "account"),
			   "history must be asked for and shown: %s", out);
	free(out);
	free(err);
	cr_assert_eq(CTL(&out, &err, "--cluster", fk.endpoint, "--json", "tx",
			 "show", "g-7"),
		     0);
	cr_assert_not_null(strstr(out, "\"state\":\"failed\""), "%s", out);
	cr_assert_not_null(strstr(out, "\"kind\":\"confirm\""), "%s", out);
	free(out);
	free(err);
}

Test(settlectl, show_unknown_gid_exits_1)
{
	char *out, *err;

	cr_assert_eq(
	    CTL(&out, &err, "--cluster", fk.endpoint, "tx", "show", "missing"),
	    1);
	cr_assert_not_null(strstr(err, "no transaction with gid 'missing'"),
			   "%s", err);
	cr_assert_str_eq(out, "");
	free(out);
	free(err);
}

Test(settlectl, undecodable_answer_is_an_error_not_a_crash)
{
	char *out, *err;

	cr_assert_eq(
	    CTL(&out, &err, "--cluster", fk.endpoint, "tx", "show", "garbage"),
	    1, "stderr: %s", err);
	cr_assert_not_null(strstr(err, "tx show:"), "%s", err);
	free(out);
	free(err);
}

Test(settlectl, bad_input_exits_2_and_sends_nothing)
{
	static const char *const cases[][8] = {
	    {"bogus"},
	    {"tx"},
	    {"tx", "drop"},
	    {"tx", "show"},
	    {"tx", "show", "a", "b"},
	    {"status", "now"},
	    {"tx", "list", "--state", "done"},
	    {"tx", "list", "--older-than", "30"},
	    {"tx", "list", "--older-than", "-5s"},
	    {"tx", "list", "--limit", "0"},
	    {"tx", "list", "--limit", "ten"},
	    {"--stuck", "status"},
	    {"--frobnicate", "status"},
	    {"--timeout", "forever", "status"},
	    {"tx", "list", "--state"},
	    {"cluster"},
	    {"cluster", "grow"},
	    {"cluster", "members", "now"},
	    {"cluster", "add", "4", "127.0.0.1:7407"},
	    {"cluster", "add", "0", "127.0.0.1:7407", "127.0.0.1:7406"},
	    {"cluster", "add", "4", "127.0.0.1", "127.0.0.1:7406"},
	    {"cluster", "add", "4", "127.0.0.1:7407", "127.0.0.1:99999"},
	    {"cluster", "add", "4", "a:1", "b:2", "--role", "boss"},
	    {"cluster", "remove"},
	    {"cluster", "remove", "-3"},
	    {"cluster", "remove", "3", "4"},
	    {"cluster", "transfer", "x"},
	    {"cluster", "transfer", "1", "2"},
	    {"--role", "voter", "cluster", "remove", "3"},
	    {"--state", "active", "cluster", "members"},
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *args[12] = {"--cluster", fk.endpoint};
		char *out, *err;
		int j, rc;

		for (j = 0; cases[i][j]; j++)
			args[2 + j] = cases[i][j];
		rc = ctl(&out, &err, args);
		cr_assert_eq(rc, 2, "case %zu (%s ...) exited %d: %s", i,
			     cases[i][0], rc, err);
		cr_assert_not_null(strstr(err, "settlectl: "), "%s", err);
		cr_assert_str_eq(out, "", "case %zu printed: %s", i, out);
		free(out);
		free(err);
	}
	cr_assert_eq(atomic_load(&fk.calls), 0,
		     "a rejected command line reached the server");
}

Test(settlectl, unreachable_cluster_exits_1)
{
	char ep[32], *out, *err;

	snprintf(ep, sizeof(ep), "127.0.0.1:%d", it_free_port_pair());
	cr_assert_eq(CTL(&out, &err, "--cluster", ep, "--timeout", "300ms",
			 "tx", "list"),
		     1);
	cr_assert_not_null(strstr(err, "refused"), "%s", err);
	free(out);
	free(err);
}

Test(settlectl, help_exits_0)
{
	char *out, *err;

	cr_assert_eq(CTL(&out, &err, "--help"), 0);
	cr_assert_not_null(strstr(out, "tx show GID"), "%s", out);
	cr_assert_not_null(strstr(out, "cluster add ID"), "%s", out);
	free(out);
	free(err);
}

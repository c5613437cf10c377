/*
 * The coordinator's request guarantees, through raw frames on a real
 * settled: a request repeated with its cmd_id takes effect once and gets
 * the first answer; hostile or malformed requests get the documented
 * error code and leave the node serving; a node that does not lead says so.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_util.h"
#include "harness.h"
#include "tcc_util.h"

TestSuite(coord_once, .init = cu_setup, .fini = it_teardown, .timeout = 60);

#define DEAD_EP "127.0.0.1:9" /* discard port: nothing listens there */

static size_t count_txs(struct cu_conn *c)
{
	Settle__V1__ListRequest req = SETTLE__V1__LIST_REQUEST__INIT;
	Settle__V1__ListResponse *resp;
	struct cu_reply r;
	size_t n;

	cr_assert_eq(cu_call(c, SETTLE__V1__METHOD__LIST, &req.base, &r), 0);
	resp = cu_unpack(&r, &settle__v1__list_response__descriptor);
	n = resp->n_txs;
	settle__v1__list_response__free_unpacked(resp, NULL);
	cu_reply_free(&r);
	return n;
}

Test(coord_once, begin_twice_is_one_transaction)
{
	struct it_node n;
	struct cu_conn c;
	uint8_t id[16], other[16];
	char g1[SETTLE_GID_BUFSIZE], g2[SETTLE_GID_BUFSIZE];
	uint64_t d1 = 0, d2 = 0;

	it_node_start(&n, 1, NULL);
	cu_connect(&c, n.endpoint, 5000);

	/* A caller-chosen gid: the retry answers as the first did. */
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&c, id, "once-a", 30000, g1, &d1), 0);
	tu_sleep_ms(20); /* a re-applied Begin would get a later deadline */
	cr_assert_eq(cu_begin(&c, id, "once-a", 30000, g2, &d2), 0);
	cr_assert_str_eq(g1, "once-a");
	cr_assert_str_eq(g2, "once-a");
	cr_assert_eq(d1, d2, "retry got deadline %llu, first %llu",
		     (unsigned long long)d2, (unsigned long long)d1);

	/* Another request (another cmd_id) for the same gid is refused. */
	cu_cmd_id(other);
	cr_assert_eq(cu_begin(&c, other, "once-a", 30000, NULL, NULL),
		     SETTLE__V1__CODE__ALREADY_EXISTS);

	/* The coordinator chooses the gid: a retry must not make a second
	 * transaction, though the node draws a new gid for each request. */
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&c, id, NULL, 30000, g1, &d1), 0);
	tu_sleep_ms(20);
	cr_assert_eq(cu_begin(&c, id, NULL, 30000, g2, &d2), 0);
	cr_assert_str_eq(g1, g2, "retry made a new transaction");
	cr_assert_eq(d1, d2);
	cr_assert_str_neq(g1, "once-a");

	cr_assert_eq(count_txs(&c), 2, "want exactly 2 transactions");
	cu_close(&c);
}

Test(coord_once, register_and_decide_twice)
{
	struct it_node n;
	struct cu_conn c;
	uint8_t ib[16], ir[16], ir2[16], ic[16], ic2[16], irb[16];
	uint32_t b1 = 0, b2 = 0, b3 = 0;
	int state = 0;
	bool finished = true;
	Settle__V1__TxInfo *tx;
	const char *pay = "account=x;amount=1";

	it_node_start(&n, 1, NULL);
	cu_connect(&c, n.endpoint, 5000);

	cu_cmd_id(ib);
	cr_assert_eq(cu_begin(&c, ib, "reg-a", 30000, NULL, NULL), 0);

	/* REGISTER_BRANCH twice with one cmd_id: one branch, same id. */
	cu_cmd_id(ir);
	cr_assert_eq(
	    cu_register(&c, ir, "reg-a", DEAD_EP, pay, strlen(pay), &b1), 0);
	cr_assert_eq(
	    cu_register(&c, ir, "reg-a", DEAD_EP, pay, strlen(pay), &b2), 0);
	cr_assert_eq(b1, 1);
	cr_assert_eq(b2, 1, "retried register got branch %u", b2);
	cu_cmd_id(ir2);
	cr_assert_eq(
	    cu_register(&c, ir2, "reg-a", DEAD_EP, pay, strlen(pay), &b3), 0);
	cr_assert_eq(b3, 2);

	/* COMMIT twice with one cmd_id: one decision. The participant is
	 * unreachable, so phase two stays open. */
	cu_cmd_id(ic);
	cr_assert_eq(
	    cu_decide(&c, true, ic, "reg-a", false, 0, &state, &finished), 0);
	cr_assert_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_assert_not(finished);
	cr_assert_eq(
	    cu_decide(&c, true, ic, "reg-a", false, 0, &state, &finished), 0);
	cr_assert_eq(state, SETTLE__V1__TX_STATE__COMMITTING);

	/* The same decision under a new cmd_id is harmless; the opposite
	 * one is refused. */
	cu_cmd_id(ic2);
	cr_assert_eq(cu_decide(&c, true, ic2, "reg-a", false, 0, &state, NULL),
		     0);
	cu_cmd_id(irb);
	cr_assert_eq(cu_decide(&c, false, irb, "reg-a", false, 0, NULL, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);

	/* The register retried after the decision still answers as the
	 * first time, while a new register is refused. */
	cr_assert_eq(
	    cu_register(&c, ir, "reg-a", DEAD_EP, pay, strlen(pay), &b2), 0);
	cr_assert_eq(b2, 1);
	cu_cmd_id(ir2);
	cr_assert_eq(
	    cu_register(&c, ir2, "reg-a", DEAD_EP, pay, strlen(pay), NULL),
	    SETTLE__V1__CODE__WRONG_STATE);

	/* One effect each: the history says so. */
	cr_assert_eq(cu_query(&c, "reg-a", &tx), 0);
	cr_assert_eq(tx->n_branches, 2);
	cr_assert_eq(cu_events(tx, "begin"), 1);
	cr_assert_eq(cu_events(tx, "register"), 2);
	cr_assert_eq(cu_events(tx, "commit"), 1);
	cr_assert_eq(cu_events(tx, "rollback"), 0);
	settle_tx_info_free(tx);

	/* A transaction with no branch finishes at its decision; a retried
	 * Commit says so, and Rollback is refused. */
	cu_cmd_id(ib);
	cr_assert_eq(cu_begin(&c, ib, "reg-b", 30000, NULL, NULL), 0);
	cu_cmd_id(ic);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(cu_decide(&c, true, ic, "reg-b", true, 1000,
				       &state, &finished),
			     0);
		cr_assert_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
		cr_assert(finished);
	}
	cu_cmd_id(irb);
	cr_assert_eq(cu_decide(&c, false, irb, "reg-b", false, 0, NULL, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	cr_assert_eq(cu_query(&c, "reg-b", &tx), 0);
	cr_assert_eq(cu_events(tx, "commit"), 1);
	cr_assert_eq(cu_events(tx, "committed"), 1);
	settle_tx_info_free(tx);
	cu_close(&c);

	/* Calls to the dead participant are in flight: the stop must still
	 * be clean. */
	cu_stop_clean(&n);
}

/*
 * A cmd_id reused for another request is a client's bug: it is refused
 * with CMD_ID_REUSED and changes nothing, while true retries (even with
 * another wait) still get the first answer.
 */
Test(coord_once, reused_cmd_id_is_refused)
{
	struct it_node n;
	struct cu_conn c;
	uint8_t ib[16], ica[16], icb[16], ir[16];
	uint32_t b1 = 0;
	int state = 0;
	Settle__V1__TxInfo *tx;
	const char *pay = "account=y;amount=2";
	Settle__V1__RegisterBranchRequest reg =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	struct cu_reply r;

	it_node_start(&n, 1, NULL);
	cu_connect(&c, n.endpoint, 5000);

	/* REGISTER_BRANCH under the id of the BEGIN before it. */
	cu_cmd_id(ib);
	cr_assert_eq(cu_begin(&c, ib, "reuse-a", 30000, NULL, NULL), 0);
	reg.cmd_id.data = ib;
	reg.cmd_id.len = 16;
	reg.gid = "reuse-a";
	reg.endpoint = DEAD_EP;
	reg.resource = "accounts";
	reg.payload.data = (uint8_t *)pay;
	reg.payload.len = strlen(pay);
	cr_assert_eq(
	    cu_call(&c, SETTLE__V1__METHOD__REGISTER_BRANCH, &reg.base, &r), 0);
	cr_assert_eq(r.code, SETTLE__V1__CODE__CMD_ID_REUSED, "code %d: %s",
		     r.code, r.msg);
	cr_assert_not_null(strstr(r.msg, "cmd_id already used"), "%s", r.msg);
	cr_assert_eq(r.len, 0, "a refusal carries no RegisterBranchResponse");
	cu_reply_free(&r);
	cr_assert_eq(cu_query(&c, "reuse-a", &tx), 0);
	cr_assert_eq(tx->n_branches, 0, "a branch was registered");
	cr_assert_eq(cu_events(tx, "register"), 0);
	settle_tx_info_free(tx);
	/* The BEGIN's own retry still answers OK. */
	cr_assert_eq(cu_begin(&c, ib, "reuse-a", 30000, NULL, NULL), 0);

	/* COMMIT of B under the id of A's COMMIT. */
	cu_cmd_id(ib);
	cr_assert_eq(cu_begin(&c, ib, "reuse-b", 30000, NULL, NULL), 0);
	cu_cmd_id(ir);
	cr_assert_eq(
	    cu_register(&c, ir, "reuse-a", DEAD_EP, pay, strlen(pay), &b1), 0);
	cu_cmd_id(ica);
	cr_assert_eq(
	    cu_decide(&c, true, ica, "reuse-a", false, 0, &state, NULL), 0);
	cr_assert_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_assert_eq(cu_decide(&c, true, ica, "reuse-b", true, 500, NULL, NULL),
		     SETTLE__V1__CODE__CMD_ID_REUSED);
	/* ROLLBACK of A under the same id: another method, refused too,
	 * although its gid matches. */
	cr_assert_eq(cu_decide(&c, false, ica, "reuse-a", false, 0, NULL, NULL),
		     SETTLE__V1__CODE__CMD_ID_REUSED);
	cr_assert_eq(cu_query(&c, "reuse-b", &tx), 0);
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__ACTIVE,
		     "B moved to state %d", tx->state);
	cr_assert_eq(cu_events(tx, "commit"), 0);
	settle_tx_info_free(tx);
	cr_assert_eq(cu_query(&c, "reuse-a", &tx), 0);
	cr_assert_eq(cu_events(tx, "commit"), 1);
	cr_assert_eq(cu_events(tx, "rollback"), 0);
	settle_tx_info_free(tx);

	/* A's commit retried with a wait is still the same request... */
	cr_assert_eq(
	    cu_decide(&c, true, ica, "reuse-a", true, 200, &state, NULL), 0);
	cr_assert_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	/* ...and B commits under an id of its own. */
	cu_cmd_id(icb);
	cr_assert_eq(
	    cu_decide(&c, true, icb, "reuse-b", false, 0, &state, NULL), 0);
	cr_assert_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	cu_close(&c);
	cu_stop_clean(&n);
}

/* Expect the raw request to be answered with code. */
static void expect_raw(struct cu_conn *c, int method, const void *body,
		       size_t len, int code, const char *what)
{
	struct cu_reply r;

	cr_assert_eq(cu_call_raw(c, method, body, len, &r), 0,
		     "%s: connection lost", what);
	cr_assert_eq(r.code, code, "%s: code %d (%s), want %d", what, r.code,
		     r.msg, code);
	cr_assert_str_neq(r.msg, "", "%s: error without a message", what);
	cu_reply_free(&r);
}

static void expect(struct cu_conn *c, int method, const ProtobufCMessage *m,
		   int code, const char *what)
{
	struct cu_reply r;

	cr_assert_eq(cu_call(c, method, m, &r), 0, "%s: connection lost", what);
	cr_assert_eq(r.code, code, "%s: code %d (%s), want %d", what, r.code,
		     r.msg, code);
	cu_reply_free(&r);
}

/*
 * A frame with response set is not a request: the coordinator must not
 * serve it (a stray BEGIN "response" would begin a transaction). Like any
 * malformed frame it ends that connection, with a warning in the log, and
 * nothing else.
 */
Test(coord_once, response_frame_is_refused)
{
	struct it_node n;
	struct cu_conn c, bad;
	struct cu_reply r;
	uint8_t id[16];
	Settle__V1__BeginRequest b = SETTLE__V1__BEGIN_REQUEST__INIT;
	Settle__V1__TxInfo *tx;
	uint8_t *body;
	size_t len;

	it_node_start(&n, 1, NULL);
	cu_connect(&c, n.endpoint, 5000);
	cu_cmd_id(id);
	b.cmd_id.data = id;
	b.cmd_id.len = 16;
	b.gid = "resp-a";
	b.timeout_ms = 30000;
	len = protobuf_c_message_get_packed_size(&b.base);
	body = malloc(len);
	cr_assert_not_null(body);
	protobuf_c_message_pack(&b.base, body);

	cu_connect(&bad, n.endpoint, 5000);
	cr_assert_eq(
	    cu_send_frame(&bad, 1, SETTLE__V1__METHOD__BEGIN, true, body, len),
	    0);
	/* No answer: the node closes the connection (EOF well before the
	 * 15 s receive timeout). */
	cr_assert_eq(cu_recv(&bad, 1, &r), SETTLE_ECLOSED,
		     "a response frame was answered: code %d %s", r.code,
		     r.msg);
	cu_close(&bad);
	cr_assert(cu_log_has(n.proc->log, "a frame with response set"),
		  "no warning in the node's log");

	/* Nothing was begun; the other connection and the node serve on,
	 * and the same request as a request is served. */
	cr_assert_eq(cu_query(&c, "resp-a", &tx), SETTLE__V1__CODE__NOT_FOUND);
	cr_assert_eq(count_txs(&c), 0);
	cr_assert_eq(cu_call_raw(&c, SETTLE__V1__METHOD__BEGIN, body, len, &r),
		     0);
	cr_assert_eq(r.code, 0, "begin: %d %s", r.code, r.msg);
	cu_reply_free(&r);
	cr_assert_eq(count_txs(&c), 1);
	free(body);
	cu_close(&c);
	cu_stop_clean(&n);
}

Test(coord_once, bad_requests_get_their_code)
{
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
	struct it_node n;
	struct cu_conn c;
	uint8_t id[17];
	char longgid[SETTLE_GID_MAX + 2];
	Settle__V1__BeginRequest b = SETTLE__V1__BEGIN_REQUEST__INIT;
	Settle__V1__RegisterBranchRequest rb =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	Settle__V1__CommitRequest cm = SETTLE__V1__COMMIT_REQUEST__INIT;
	Settle__V1__QueryRequest q = SETTLE__V1__QUERY_REQUEST__INIT;
	Settle__V1__StatusResponse *st;
	uint8_t *big;
	uint32_t bid = 0;
	int code, code2;

	it_node_start(&n, 1, NULL);
	cu_connect(&c, n.endpoint, 5000);
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&c, id, "bad-a", 30000, NULL, NULL), 0);

	/* Bodies that are not the request message. */
	expect_raw(&c, SETTLE__V1__METHOD__BEGIN, junk, sizeof(junk),
		   SETTLE__V1__CODE__INVALID_ARGUMENT, "junk begin");
	expect_raw(&c, SETTLE__V1__METHOD__REGISTER_BRANCH, junk, sizeof(junk),
		   SETTLE__V1__CODE__INVALID_ARGUMENT, "junk register");
	expect_raw(&c, SETTLE__V1__METHOD__COMMIT, junk, sizeof(junk),
		   SETTLE__V1__CODE__INVALID_ARGUMENT, "junk commit");
	expect_raw(&c, SETTLE__V1__METHOD__QUERY, junk, sizeof(junk),
		   SETTLE__V1__CODE__INVALID_ARGUMENT, "junk query");
	expect_raw(&c, SETTLE__V1__METHOD__LIST, junk, sizeof(junk),
		   SETTLE__V1__CODE__INVALID_ARGUMENT, "junk list");

	/* Methods a coordinator does not serve. */
	expect_raw(&c, 99, NULL, 0, SETTLE__V1__CODE__UNKNOWN_METHOD,
		   "method 99");
	expect_raw(&c, SETTLE__V1__METHOD__METHOD_UNSPECIFIED, NULL, 0,
		   SETTLE__V1__CODE__UNKNOWN_METHOD, "method 0");
	expect_raw(&c, SETTLE__V1__METHOD__CONFIRM, NULL, 0,
		   SETTLE__V1__CODE__UNKNOWN_METHOD, "CONFIRM");

	/* cmd_id of the wrong length, or none. */
	for (size_t len = 0; len <= 17; len += 1) {
		char what[64];

		if (len == 16)
			continue;
		b.cmd_id.data = id;
		b.cmd_id.len = len;
		b.gid = "";
		snprintf(what, sizeof(what), "begin with a %zu-byte cmd_id",
			 len);
		expect(&c, SETTLE__V1__METHOD__BEGIN, &b.base,
		       SETTLE__V1__CODE__INVALID_ARGUMENT, what);
	}
	cm.cmd_id.data = id;
	cm.cmd_id.len = 15;
	cm.gid = "bad-a";
	expect(&c, SETTLE__V1__METHOD__COMMIT, &cm.base,
	       SETTLE__V1__CODE__INVALID_ARGUMENT, "commit, short cmd_id");
	rb.cmd_id.data = id;
	rb.cmd_id.len = 0;
	rb.gid = "bad-a";
	rb.endpoint = DEAD_EP;
	expect(&c, SETTLE__V1__METHOD__REGISTER_BRANCH, &rb.base,
	       SETTLE__V1__CODE__INVALID_ARGUMENT, "register, no cmd_id");

	/* gid over 128 bytes, and gids that are not printable. */
	memset(longgid, 'g', sizeof(longgid) - 1);
	longgid[sizeof(longgid) - 1] = '\0';
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&c, id, longgid, 0, NULL, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_assert_eq(cu_begin(&c, id, "has space", 0, NULL, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_assert_eq(cu_register(&c, id, longgid, DEAD_EP, "p", 1, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	q.gid = longgid;
	expect(&c, SETTLE__V1__METHOD__QUERY, &q.base,
	       SETTLE__V1__CODE__INVALID_ARGUMENT, "query, long gid");
	longgid[SETTLE_GID_MAX] = '\0'; /* exactly 128: fine */
	cr_assert_eq(cu_begin(&c, id, longgid, 0, NULL, NULL), 0);

	/* Timeout over the maximum (24 h by default). */
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&c, id, NULL, 25u * 3600 * 1000, NULL, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);

	/* Payload: 1 MiB is the limit, one byte more is TOO_LARGE. */
	big = calloc(1, (1u << 20) + 1);
	cr_assert_not_null(big);
	cu_cmd_id(id);
	code = cu_register(&c, id, "bad-a", DEAD_EP, big, (1u << 20) + 1, NULL);
	code2 = cu_register(&c, id, "bad-a", DEAD_EP, big, 1u << 20, &bid);
	free(big);
	cr_assert_eq(code, SETTLE__V1__CODE__TOO_LARGE,
		     "payload over 1 MiB: %d", code);
	cr_assert_eq(code2, 0, "payload of 1 MiB: %d", code2);
	cr_assert_eq(bid, 1);

	/* Unknown gids. */
	cu_cmd_id(id);
	cr_assert_eq(
	    cu_decide(&c, true, id, "no-such-gid", false, 0, NULL, NULL),
	    SETTLE__V1__CODE__NOT_FOUND);
	q.gid = "no-such-gid";
	expect(&c, SETTLE__V1__METHOD__QUERY, &q.base,
	       SETTLE__V1__CODE__NOT_FOUND, "query, unknown gid");

	/* Still serving, on the same connection and on a new one. */
	st = cu_status(&c);
	cr_assert_str_eq(st->role, "leader");
	settle__v1__status_response__free_unpacked(st, NULL);
	cu_close(&c);
	cu_connect(&c, n.endpoint, 5000);
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&c, id, "bad-b", 30000, NULL, NULL), 0);
	cu_close(&c);
	cu_stop_clean(&n);
}

/* ---- A node that does not lead ------------------------------------------ */

struct member {
	int port;
	char endpoint[32];
	char data[512];
	struct it_proc *proc;
};

static void member_start(struct member *m, int id, const char *peers)
{
	char ids[8], raft[32], name[16];
	char *argv[] = {(char *)it_bin("settled"),
			"--id",
			ids,
			"--data",
			m->data,
			"--listen",
			m->endpoint,
			"--raft",
			raft,
			"--peers",
			(char *)peers,
			NULL};

	snprintf(ids, sizeof(ids), "%d", id);
	snprintf(raft, sizeof(raft), "127.0.0.1:%d", m->port + 1);
	snprintf(name, sizeof(name), "member%d", id);
	m->proc = it_spawn(name, argv);
	it_wait_port(m->proc, m->port, 20000);
}

static char *role_of(struct member *m)
{
	struct cu_conn c;
	Settle__V1__StatusResponse *st;
	static char role[32];

	cu_connect(&c, m->endpoint, 5000);
	st = cu_status(&c);
	snprintf(role, sizeof(role), "%s", st->role);
	settle__v1__status_response__free_unpacked(st, NULL);
	cu_close(&c);
	return role;
}

Test(coord_once, follower_points_at_leader)
{
	struct member m[3];
	char peers[512] = "";
	struct cu_conn c;
	uint8_t id[16];
	struct cu_reply r;
	Settle__V1__QueryRequest q = SETTLE__V1__QUERY_REQUEST__INIT;
	int leader = -1, follower = -1;

	for (int i = 0; i < 3; i++) {
		m[i].port = it_free_port_pair();
		snprintf(m[i].endpoint, sizeof(m[i].endpoint), "127.0.0.1:%d",
			 m[i].port);
		snprintf(m[i].data, sizeof(m[i].data), "%s/member%d", it_dir(),
			 i + 1);
		snprintf(peers + strlen(peers), sizeof(peers) - strlen(peers),
			 "%s%d=127.0.0.1:%d=127.0.0.1:%d", i ? "," : "", i + 1,
			 m[i].port + 1, m[i].port);
	}

	/* One member of three: no quorum, no leader. Writes and reads are
	 * UNAVAILABLE (retry later), STATUS still answers. */
	member_start(&m[0], 1, peers);
	cu_connect(&c, m[0].endpoint, 5000);
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&c, id, NULL, 0, NULL, NULL),
		     SETTLE__V1__CODE__UNAVAILABLE);
	q.gid = "anything";
	cr_assert_eq(cu_call(&c, SETTLE__V1__METHOD__QUERY, &q.base, &r), 0);
	cr_assert_eq(r.code, SETTLE__V1__CODE__UNAVAILABLE, "code %d: %s",
		     r.code, r.msg);
	cu_reply_free(&r);
	cr_assert_str_neq(role_of(&m[0]), "leader");
	cu_close(&c);

	/* A second member makes a quorum: one of the two leads, the other
	 * answers NOT_LEADER with the leader's client endpoint. */
	member_start(&m[1], 2, peers);
	for (int tries = 0; leader < 0; tries++) {
		cr_assert_lt(tries, 200, "no leader elected in 20 s");
		for (int i = 0; i < 2; i++)
			if (strcmp(role_of(&m[i]), "leader") == 0)
				leader = i;
		if (leader < 0)
			tu_sleep_ms(100);
	}
	follower = 1 - leader;
	cu_connect(&c, m[follower].endpoint, 5000);
	cu_cmd_id(id);
	q.gid = "anything";
	cr_assert_eq(cu_call(&c, SETTLE__V1__METHOD__QUERY, &q.base, &r), 0);
	cr_assert_eq(r.code, SETTLE__V1__CODE__NOT_LEADER, "code %d: %s",
		     r.code, r.msg);
	cr_assert_str_eq(r.leader, m[leader].endpoint);
	cu_reply_free(&r);
	cr_assert_eq(cu_begin(&c, id, "via-leader", 0, NULL, NULL),
		     SETTLE__V1__CODE__NOT_LEADER);
	cu_close(&c);

	/* The request retried at the leader, same cmd_id, works once. */
	cu_connect(&c, m[leader].endpoint, 5000);
	/* Just elected, it answers UNAVAILABLE until its term's barrier
	 * is applied; clients retry that with the same cmd_id. */
	for (int tries = 0;; tries++) {
		int code = cu_begin(&c, id, "via-leader", 0, NULL, NULL);

		if (code != SETTLE__V1__CODE__UNAVAILABLE) {
			cr_assert_eq(code, 0, "begin at the leader: %d", code);
			break;
		}
		cr_assert_lt(tries, 100, "leader never ready");
		tu_sleep_ms(50);
	}
	cr_assert_eq(cu_begin(&c, id, "via-leader", 0, NULL, NULL), 0);
	cu_close(&c);
}

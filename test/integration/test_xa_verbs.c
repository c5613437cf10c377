/*
 * The XA verbs over RPC on a real settled, through raw frames: Begin with
 * mode XA (a gid of Settle's own, or a legacy TM's xid, and TMJOIN),
 * RegisterBranch on a resource manager, XA_VOTE, XA_PREPARE, Commit with
 * one_phase, XA_RECOVER, XA_FORGET and an operator's XA_HEURISTIC; their
 * refusals, junk bodies, and
 * requests repeated with their cmd_id (applied once, the first answer).
 *
 * No database is needed: the node's resource manager "pgdead" points at a
 * PostgreSQL that does not exist (port 1), so phase 2 of an RM branch
 * never ends and the tests look at the states the verbs leave. Votes and
 * one-phase outcomes are what an initiator reports, so they can be given
 * without a database; legacy-TM transactions use TCC branches on a dead
 * endpoint.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_util.h"
#include "harness.h"
#include "tcc_util.h"
#include "wal/fsm.h"
#include "xa/xid.h"

TestSuite(xa_verbs, .init = cu_setup, .fini = it_teardown, .timeout = 90);

#define DEAD_EP	  "127.0.0.1:9" /* discard port: nothing listens there */
#define FORMAT_ID 1234

static struct it_node node;
static struct cu_conn conn;

/* One settled with one (unreachable) RM and formatID FORMAT_ID, plus more
 * arguments (NULL-terminated, may be NULL). */
static void start_id(int id, const char *const *more);

static void start_with(const char *const *more)
{
	start_id(1, more);
}

/* The same as node id (a fresh data directory per id). */
static void start_id(int id, const char *const *more)
{
	const char *extra[16] = {
	    "--xa-rm", "pgdead=pg:host=127.0.0.1 port=1 connect_timeout=1",
	    "--xa-format-id", "1234"};
	int i = 4;

	while (more != NULL && *more != NULL && i < 15)
		extra[i++] = *more++;
	extra[i] = NULL;
	it_node_start(&node, id, extra);
	cu_connect(&conn, node.endpoint, 5000);
}

static void start(void)
{
	start_with(NULL);
}

/* SIGTERM: exit status 0 and no sanitizer report in the node's log. */
static void stop_clean(void)
{
	char report[1024];

	cu_close(&conn);
	it_stop(node.proc);
	if (cu_log_has_sanitizer_report(node.proc->log, report,
					sizeof(report))) {
		it_show_log(node.proc);
		cr_assert_fail("sanitizer report: %s", report);
	}
}

/* Call and keep the reply's code, message and body in *r. */
static int call(int method, const ProtobufCMessage *req, struct cu_reply *r)
{
	cr_assert_eq(cu_call(&conn, method, req, r), 0,
		     "connection to the node broke");
	return r->code;
}

/* Call; return the code and free the reply (msg copied to last_msg). */
static char last_msg[512];
static int call_code(int method, const ProtobufCMessage *req)
{
	struct cu_reply r;
	int code = call(method, req, &r);

	snprintf(last_msg, sizeof(last_msg), "%s", r.msg);
	cu_reply_free(&r);
	return code;
}

/* ---- Requests ------------------------------------------------------------ */

static int xa_begin(const uint8_t id[16], const char *gid, const uint8_t *xid,
		    size_t xid_len, bool join, Settle__V1__BeginResponse **out)
{
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	struct cu_reply r;
	int code;

	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)(gid != NULL ? gid : "");
	req.timeout_ms = 60000;
	req.mode = SETTLE__V1__TX_MODE__XA;
	req.xid.data = (uint8_t *)xid;
	req.xid.len = xid_len;
	req.join = join;
	code = call(SETTLE__V1__METHOD__BEGIN, &req.base, &r);
	snprintf(last_msg, sizeof(last_msg), "%s", r.msg);
	if (code == 0 && out != NULL)
		*out = cu_unpack(&r, &settle__v1__begin_response__descriptor);
	cu_reply_free(&r);
	return code;
}

/* Begin gid (mode XA, own gid) with a fresh cmd_id; fail unless OK. */
static void xa_begin_ok(const char *gid)
{
	uint8_t id[16];

	cu_cmd_id(id);
	cr_assert_eq(xa_begin(id, gid, NULL, 0, false, NULL), 0, "begin %s: %s",
		     gid, last_msg);
}

static int reg_rm(const uint8_t id[16], const char *gid, const char *rm,
		  Settle__V1__RegisterBranchResponse **out)
{
	Settle__V1__RegisterBranchRequest req =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	struct cu_reply r;
	int code;

	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	req.rm = (char *)rm;
	code = call(SETTLE__V1__METHOD__REGISTER_BRANCH, &req.base, &r);
	snprintf(last_msg, sizeof(last_msg), "%s", r.msg);
	if (code == 0 && out != NULL)
		*out = cu_unpack(
		    &r, &settle__v1__register_branch_response__descriptor);
	cu_reply_free(&r);
	return code;
}

/* Register an RM branch with a fresh cmd_id; its id. */
static uint32_t reg_rm_ok(const char *gid)
{
	Settle__V1__RegisterBranchResponse *resp = NULL;
	uint8_t id[16];
	uint32_t bid;

	cu_cmd_id(id);
	cr_assert_eq(reg_rm(id, gid, "pgdead", &resp), 0, "register: %s",
		     last_msg);
	bid = resp->branch_id;
	settle__v1__register_branch_response__free_unpacked(resp, NULL);
	return bid;
}

static int vote(const uint8_t id[16], const char *gid, uint32_t branch, int v,
		const char *error, int *state, int *bstate)
{
	Settle__V1__XaVoteRequest req = SETTLE__V1__XA_VOTE_REQUEST__INIT;
	struct cu_reply r;
	int code;

	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	req.branch_id = branch;
	req.vote = v;
	req.error = (char *)(error != NULL ? error : "");
	code = call(SETTLE__V1__METHOD__XA_VOTE, &req.base, &r);
	snprintf(last_msg, sizeof(last_msg), "%s", r.msg);
	if (code == 0) {
		Settle__V1__XaVoteResponse *resp =
		    cu_unpack(&r, &settle__v1__xa_vote_response__descriptor);
		if (state != NULL)
			*state = resp->state;
		if (bstate != NULL)
			*bstate = resp->branch_state;
		settle__v1__xa_vote_response__free_unpacked(resp, NULL);
	}
	cu_reply_free(&r);
	return code;
}

static int vote_new(const char *gid, uint32_t branch, int v, int *state,
		    int *bstate)
{
	uint8_t id[16];

	cu_cmd_id(id);
	return vote(id, gid, branch, v, NULL, state, bstate);
}

static int prepare(const uint8_t id[16], const char *gid, int *state, bool *ro)
{
	Settle__V1__XaPrepareRequest req = SETTLE__V1__XA_PREPARE_REQUEST__INIT;
	struct cu_reply r;
	int code;

	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	code = call(SETTLE__V1__METHOD__XA_PREPARE, &req.base, &r);
	snprintf(last_msg, sizeof(last_msg), "%s", r.msg);
	if (code == 0) {
		Settle__V1__XaPrepareResponse *resp =
		    cu_unpack(&r, &settle__v1__xa_prepare_response__descriptor);
		if (state != NULL)
			*state = resp->state;
		if (ro != NULL)
			*ro = resp->read_only;
		settle__v1__xa_prepare_response__free_unpacked(resp, NULL);
	}
	cu_reply_free(&r);
	return code;
}

static int prepare_new(const char *gid, int *state, bool *ro)
{
	uint8_t id[16];

	cu_cmd_id(id);
	return prepare(id, gid, state, ro);
}

static int commit(const uint8_t id[16], const char *gid, bool one_phase,
		  int *state)
{
	Settle__V1__CommitRequest req = SETTLE__V1__COMMIT_REQUEST__INIT;
	struct cu_reply r;
	int code;

	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	req.one_phase = one_phase;
	code = call(SETTLE__V1__METHOD__COMMIT, &req.base, &r);
	snprintf(last_msg, sizeof(last_msg), "%s", r.msg);
	if (code == 0) {
		Settle__V1__DecisionResponse *resp =
		    cu_unpack(&r, &settle__v1__decision_response__descriptor);
		if (state != NULL)
			*state = resp->state;
		settle__v1__decision_response__free_unpacked(resp, NULL);
	}
	cu_reply_free(&r);
	return code;
}

static int commit_new(const char *gid, bool one_phase, int *state)
{
	uint8_t id[16];

	cu_cmd_id(id);
	return commit(id, gid, one_phase, state);
}

static int forget(const uint8_t id[16], const char *gid)
{
	Settle__V1__XaForgetRequest req = SETTLE__V1__XA_FORGET_REQUEST__INIT;

	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	return call_code(SETTLE__V1__METHOD__XA_FORGET, &req.base);
}

static Settle__V1__XaRecoverResponse *recover(uint32_t limit, const char *after)
{
	Settle__V1__XaRecoverRequest req = SETTLE__V1__XA_RECOVER_REQUEST__INIT;
	Settle__V1__XaRecoverResponse *resp;
	struct cu_reply r;

	req.limit = limit;
	req.after_gid = (char *)(after != NULL ? after : "");
	cr_assert_eq(call(SETTLE__V1__METHOD__XA_RECOVER, &req.base, &r), 0,
		     "recover: %s", r.msg);
	resp = cu_unpack(&r, &settle__v1__xa_recover_response__descriptor);
	cu_reply_free(&r);
	return resp;
}

static Settle__V1__TxInfo *query(const char *gid)
{
	Settle__V1__TxInfo *tx = NULL;

	cr_assert_eq(cu_query(&conn, gid, &tx), 0, "query %s", gid);
	return tx;
}

/* A legacy TM's XID and its wire encoding. */
static size_t tm_xid(const char *gtrid, const char *bqual, uint8_t *wire)
{
	struct xa_xid x;
	size_t len = 0;

	cr_assert_eq(
	    xa_xid_init(&x, 1, gtrid, strlen(gtrid), bqual, strlen(bqual)), 0);
	cr_assert_eq(xa_xid_encode(&x, wire, XA_XID_WIRE_MAX, &len), 0);
	return len;
}

static void gid_of(const uint8_t *wire, size_t len,
		   char gid[XA_XID_GID_LEN + 1])
{
	struct xa_xid x;

	cr_assert_eq(xa_xid_decode(wire, len, &x), 0);
	cr_assert_eq(xa_xid_gid(&x, gid), 0);
}

/* "1234:<hex of s>:<hex of b>" */
static void xid_text(int fid, const char *s, const char *b, char *out,
		     size_t cap)
{
	size_t off = (size_t)snprintf(out, cap, "%d:", fid);

	for (const char *p = s; *p; p++)
		off += (size_t)snprintf(out + off, cap - off, "%02x",
					(unsigned char)*p);
	off += (size_t)snprintf(out + off, cap - off, ":");
	for (const char *p = b; *p; p++)
		off += (size_t)snprintf(out + off, cap - off, "%02x",
					(unsigned char)*p);
}

static int cmp_gid(const void *a, const void *b)
{
	return strcmp(a, b);
}

/* ---- Begin ----------------------------------------------------------------
 */

Test(xa_verbs, begin_own_gid_and_refusals)
{
	Settle__V1__BeginResponse *b1 = NULL, *b2 = NULL;
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	uint8_t id[16], xid[XA_XID_WIRE_MAX];
	size_t xl = tm_xid("tm-1", "b", xid);
	char g64[65], g65[66];
	Settle__V1__TxInfo *tx;

	start();
	/* Repeated with its cmd_id: one transaction, the first answer. */
	cu_cmd_id(id);
	cr_assert_eq(xa_begin(id, "xa-own-1", NULL, 0, false, &b1), 0, "%s",
		     last_msg);
	tu_sleep_ms(20);
	cr_assert_eq(xa_begin(id, "xa-own-1", NULL, 0, false, &b2), 0);
	cr_expect_str_eq(b1->gid, "xa-own-1");
	cr_expect_eq(b1->deadline_ms, b2->deadline_ms);
	cr_expect_not(b1->joined);
	settle__v1__begin_response__free_unpacked(b1, NULL);
	settle__v1__begin_response__free_unpacked(b2, NULL);
	tx = query("xa-own-1");
	cr_expect_eq(tx->mode, SETTLE__V1__TX_MODE__XA);
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ACTIVE);
	cr_expect_str_eq(tx->xid, "");
	cr_expect_eq(tx->heuristic, 0);
	settle_tx_info_free(tx);
	cu_cmd_id(id);
	cr_expect_eq(xa_begin(id, "xa-own-1", NULL, 0, false, NULL),
		     SETTLE__V1__CODE__ALREADY_EXISTS);

	/* The coordinator's gid fits a gtrid. */
	cu_cmd_id(id);
	cr_assert_eq(xa_begin(id, NULL, NULL, 0, false, &b1), 0);
	cr_expect_leq(strlen(b1->gid), 64);
	settle__v1__begin_response__free_unpacked(b1, NULL);

	/* gid <= 64 bytes in mode XA only. */
	memset(g65, 'g', 65);
	g65[65] = '\0';
	memcpy(g64, g65, 64);
	g64[64] = '\0';
	cu_cmd_id(id);
	cr_expect_eq(xa_begin(id, g65, NULL, 0, false, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_not_null(strstr(last_msg, "64 bytes"), "%s", last_msg);
	cr_expect_eq(xa_begin(id, g64, NULL, 0, false, NULL), 0, "%s",
		     last_msg);

	/* Refusals answer at once and propose nothing. */
	cu_cmd_id(id);
	cr_expect_eq(xa_begin(id, "with-xid", xid, xl, false, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_not_null(strstr(last_msg, "gid must be empty"), "%s",
			   last_msg);
	cr_expect_eq(xa_begin(id, NULL, xid, xl - 1, false, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_not_null(strstr(last_msg, "not a valid XID"), "%s", last_msg);
	cr_expect_eq(
	    xa_begin(id, NULL, (const uint8_t *)"junk", 4, false, NULL),
	    SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_eq(xa_begin(id, NULL, NULL, 0, true, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_not_null(strstr(last_msg, "join needs"), "%s", last_msg);
	req.cmd_id.data = id;
	req.cmd_id.len = 16;
	req.gid = "";
	req.mode = SETTLE__V1__TX_MODE__SAGA;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__BEGIN, &req.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	req.mode = 77;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__BEGIN, &req.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	req.mode = SETTLE__V1__TX_MODE__TCC;
	req.xid.data = xid;
	req.xid.len = xl;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__BEGIN, &req.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_not_null(strstr(last_msg, "need mode XA"), "%s", last_msg);
	req.xid.len = 0;
	req.join = true;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__BEGIN, &req.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	/* cmd_id is required in mode XA too. */
	Settle__V1__BeginRequest nocmd = SETTLE__V1__BEGIN_REQUEST__INIT;
	nocmd.mode = SETTLE__V1__TX_MODE__XA;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__BEGIN, &nocmd.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	/* The same id, unused by any refusal, still begins. */
	cr_expect_eq(xa_begin(id, "after-refusals", NULL, 0, false, NULL), 0,
		     "%s", last_msg);
	stop_clean();
}

Test(xa_verbs, begin_with_xid_and_join)
{
	Settle__V1__BeginResponse *b1 = NULL, *b2 = NULL;
	uint8_t id[16], xid[XA_XID_WIRE_MAX], other[XA_XID_WIRE_MAX];
	size_t xl = tm_xid("tm-global-1", "tm-branch", xid);
	size_t ol = tm_xid("tm-global-2", "tm-branch", other);
	char gid[XA_XID_GID_LEN + 1], text[300];
	Settle__V1__TxInfo *tx;

	start();
	gid_of(xid, xl, gid);
	cu_cmd_id(id);
	cr_assert_eq(xa_begin(id, NULL, xid, xl, false, &b1), 0, "%s",
		     last_msg);
	cr_expect_str_eq(b1->gid, gid);
	cr_expect_not(b1->joined);
	/* The retry: same gid, same deadline. */
	tu_sleep_ms(20);
	cr_assert_eq(xa_begin(id, NULL, xid, xl, false, &b2), 0);
	cr_expect_str_eq(b2->gid, gid);
	cr_expect_eq(b2->deadline_ms, b1->deadline_ms);
	settle__v1__begin_response__free_unpacked(b2, NULL);
	/* Another begin of the same xid is a duplicate (XAER_DUPID). */
	cu_cmd_id(id);
	cr_expect_eq(xa_begin(id, NULL, xid, xl, false, NULL),
		     SETTLE__V1__CODE__ALREADY_EXISTS);

	tx = query(gid);
	xid_text(1, "tm-global-1", "tm-branch", text, sizeof(text));
	cr_expect_str_eq(tx->xid, text);
	cr_expect_eq(tx->mode, SETTLE__V1__TX_MODE__XA);
	settle_tx_info_free(tx);

	/* TMJOIN: nothing proposed, the existing transaction answered; a
	 * repeated join too. */
	cu_cmd_id(id);
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(xa_begin(id, NULL, xid, xl, true, &b2), 0, "%s",
			     last_msg);
		cr_expect(b2->joined);
		cr_expect_str_eq(b2->gid, gid);
		cr_expect_eq(b2->deadline_ms, b1->deadline_ms);
		settle__v1__begin_response__free_unpacked(b2, NULL);
	}
	settle__v1__begin_response__free_unpacked(b1, NULL);
	/* ... and then its cmd_id is still free for a real command. */
	cr_expect_eq(xa_begin(id, "join-id-reused", NULL, 0, false, NULL), 0,
		     "%s", last_msg);
	cu_cmd_id(id);
	cr_expect_eq(xa_begin(id, NULL, other, ol, true, NULL),
		     SETTLE__V1__CODE__NOT_FOUND);
	/* Joining a transaction no longer ACTIVE. */
	cu_cmd_id(id);
	cr_assert_eq(cu_decide(&conn, false, id, gid, false, 0, NULL, NULL), 0);
	cu_cmd_id(id);
	cr_expect_eq(xa_begin(id, NULL, xid, xl, true, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	cr_expect_not_null(strstr(last_msg, "ACTIVE"), "%s", last_msg);
	/* A TCC transaction that took the name is not the xid's. */
	cu_cmd_id(id);
	gid_of(other, ol, gid);
	cr_assert_eq(cu_begin(&conn, id, gid, 0, NULL, NULL), 0);
	cu_cmd_id(id);
	cr_expect_eq(xa_begin(id, NULL, other, ol, true, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	stop_clean();
}

/* ---- RM branches ----------------------------------------------------------
 */

Test(xa_verbs, register_rm_answers_the_xid)
{
	Settle__V1__RegisterBranchResponse *r1 = NULL, *r2 = NULL;
	Settle__V1__RegisterBranchRequest req =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	uint8_t id[16];
	struct xa_xid x;
	char text[300];
	Settle__V1__TxInfo *tx;
	uint32_t bid;

	start();
	xa_begin_ok("xa-reg");
	cu_cmd_id(id);
	cr_assert_eq(reg_rm(id, "xa-reg", "pgdead", &r1), 0, "%s", last_msg);
	cr_assert_eq(reg_rm(id, "xa-reg", "pgdead", &r2), 0);
	cr_expect_eq(r1->branch_id, 1);
	cr_expect_eq(r2->branch_id, 1, "a retry registered another branch");
	cr_assert_eq(xa_xid_decode(r1->xid.data, r1->xid.len, &x), 0);
	cr_expect_eq(x.format_id, FORMAT_ID);
	cr_expect_eq(x.gtrid_len, 6);
	cr_expect_eq(memcmp(xa_xid_gtrid(&x), "xa-reg", 6), 0);
	cr_expect_eq(x.bqual_len, 1);
	cr_expect_eq(xa_xid_bqual(&x)[0], '1');
	cr_expect_eq(r2->xid.len, r1->xid.len);
	cr_expect_eq(memcmp(r2->xid.data, r1->xid.data, r1->xid.len), 0);
	settle__v1__register_branch_response__free_unpacked(r1, NULL);
	settle__v1__register_branch_response__free_unpacked(r2, NULL);

	/* A second RM branch, and a TCC branch in the same transaction. */
	bid = reg_rm_ok("xa-reg");
	cr_expect_eq(bid, 2);
	cu_cmd_id(id);
	cr_assert_eq(cu_register(&conn, id, "xa-reg", DEAD_EP, "p", 1, &bid),
		     0);
	cr_expect_eq(bid, 3);

	/* Refusals propose nothing. */
	cu_cmd_id(id);
	cr_expect_eq(reg_rm(id, "xa-reg", "nope", NULL),
		     SETTLE__V1__CODE__NOT_FOUND);
	cr_expect_str_eq(last_msg, "resource manager nope is not configured");
	cr_expect_eq(reg_rm(id, "xa-reg", "bad name", NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	req.cmd_id.data = id;
	req.cmd_id.len = 16;
	req.gid = "xa-reg";
	req.rm = "pgdead";
	req.endpoint = DEAD_EP;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__REGISTER_BRANCH, &req.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	req.endpoint = "";
	req.payload.data = (uint8_t *)"x";
	req.payload.len = 1;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__REGISTER_BRANCH, &req.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	req.payload.len = 0;
	req.resource = "table";
	cr_expect_eq(call_code(SETTLE__V1__METHOD__REGISTER_BRANCH, &req.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_eq(reg_rm(id, "no-such-gid", "pgdead", NULL),
		     SETTLE__V1__CODE__NOT_FOUND);
	/* An RM branch only in an XA transaction. (The FSM refused that
	 * last one: its answer is kept under its cmd_id, so a new one.) */
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&conn, id, "tcc-1", 0, NULL, NULL), 0);
	cu_cmd_id(id);
	int code = reg_rm(id, "tcc-1", "pgdead", NULL);
	cr_expect(code == SETTLE__V1__CODE__WRONG_STATE ||
		      code == SETTLE__V1__CODE__INVALID_ARGUMENT,
		  "code %d: %s", code, last_msg);

	tx = query("xa-reg");
	cr_assert_eq(tx->n_branches, 3);
	cr_expect_str_eq(tx->branches[0]->rm, "pgdead");
	xid_text(FORMAT_ID, "xa-reg", "1", text, sizeof(text));
	cr_expect_str_eq(tx->branches[0]->xid, text);
	cr_expect_eq(tx->branches[0]->state,
		     SETTLE__V1__BRANCH_STATE__XA_BRANCH_ACTIVE);
	xid_text(FORMAT_ID, "xa-reg", "2", text, sizeof(text));
	cr_expect_str_eq(tx->branches[1]->xid, text);
	cr_expect_str_eq(tx->branches[2]->rm, "");
	cr_expect_str_eq(tx->branches[2]->xid, "");
	cr_expect_str_eq(tx->branches[2]->endpoint, DEAD_EP);
	cr_expect_eq(tx->branches[2]->state,
		     SETTLE__V1__BRANCH_STATE__REGISTERED);
	settle_tx_info_free(tx);
	stop_clean();
}

/* ---- Votes, prepare, commit ---------------------------------------------- */

Test(xa_verbs, votes_prepare_and_two_phase_commit)
{
	uint8_t id[16];
	int state = 0, bstate = 0, s2 = 0, b2 = 0;
	bool ro = true;
	Settle__V1__TxInfo *tx;

	start();
	xa_begin_ok("xa-2pc");
	cr_assert_eq(reg_rm_ok("xa-2pc"), 1);
	cr_assert_eq(reg_rm_ok("xa-2pc"), 2);

	cr_expect_eq(prepare_new("xa-2pc", NULL, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	cr_expect_not_null(strstr(last_msg, "not voted"), "%s", last_msg);
	cr_expect_eq(commit_new("xa-2pc", false, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);

	/* A vote repeated with its cmd_id: the first answer. */
	cu_cmd_id(id);
	cr_assert_eq(vote(id, "xa-2pc", 1, SETTLE__V1__XA_VOTE__VOTE_OK, NULL,
			  &state, &bstate),
		     0, "%s", last_msg);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__ACTIVE);
	cr_expect_eq(bstate, SETTLE__V1__BRANCH_STATE__XA_BRANCH_PREPARED);
	cr_assert_eq(
	    vote(id, "xa-2pc", 1, SETTLE__V1__XA_VOTE__VOTE_OK, NULL, &s2, &b2),
	    0);
	cr_expect_eq(s2, state);
	cr_expect_eq(b2, bstate);
	/* The same vote again (a new request): OK; another vote: no. */
	cr_expect_eq(
	    vote_new("xa-2pc", 1, SETTLE__V1__XA_VOTE__VOTE_OK, NULL, &b2), 0,
	    "%s", last_msg);
	cr_expect_eq(b2, SETTLE__V1__BRANCH_STATE__XA_BRANCH_PREPARED);
	cr_expect_eq(vote_new("xa-2pc", 1, SETTLE__V1__XA_VOTE__VOTE_READ_ONLY,
			      NULL, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	cr_expect_eq(vote_new("xa-2pc", 1,
			      SETTLE__V1__XA_VOTE__ONE_PHASE_COMMITTED, NULL,
			      NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	cr_expect_eq(
	    vote_new("xa-2pc", 9, SETTLE__V1__XA_VOTE__VOTE_OK, NULL, NULL),
	    SETTLE__V1__CODE__NOT_FOUND);
	cr_expect_eq(
	    vote_new("nope", 1, SETTLE__V1__XA_VOTE__VOTE_OK, NULL, NULL),
	    SETTLE__V1__CODE__NOT_FOUND);
	cr_assert_eq(vote_new("xa-2pc", 2, SETTLE__V1__XA_VOTE__VOTE_READ_ONLY,
			      NULL, &bstate),
		     0, "%s", last_msg);
	cr_expect_eq(bstate, SETTLE__V1__BRANCH_STATE__XA_BRANCH_READ_ONLY);

	/* Prepare, repeated: the same answer; a new request: OK too. */
	cu_cmd_id(id);
	cr_assert_eq(prepare(id, "xa-2pc", &state, &ro), 0, "%s", last_msg);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__XA_PREPARED);
	cr_expect_not(ro);
	cr_assert_eq(prepare(id, "xa-2pc", &state, &ro), 0);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__XA_PREPARED);
	cr_assert_eq(prepare_new("xa-2pc", &state, &ro), 0, "%s", last_msg);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__XA_PREPARED);
	/* Once prepared, the same vote again is still answered (the
	 * initiator's late retry), another one is not. */
	cr_expect_eq(
	    vote_new("xa-2pc", 1, SETTLE__V1__XA_VOTE__VOTE_OK, NULL, &b2), 0,
	    "%s", last_msg);
	cr_expect_eq(b2, SETTLE__V1__BRANCH_STATE__XA_BRANCH_PREPARED);
	cr_expect_eq(vote_new("xa-2pc", 1, SETTLE__V1__XA_VOTE__VOTE_ROLLBACK,
			      NULL, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	/* Not begun with an xid: not the TM's to recover. */
	Settle__V1__XaRecoverResponse *rec = recover(0, NULL);
	cr_expect_eq(rec->n_txs, 0);
	settle__v1__xa_recover_response__free_unpacked(rec, NULL);

	/* Commit, repeated: one decision. The RM is unreachable, so the
	 * prepared branch stays XA_BRANCH_COMMITTING. */
	cu_cmd_id(id);
	cr_assert_eq(commit(id, "xa-2pc", false, &state), 0, "%s", last_msg);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_assert_eq(commit(id, "xa-2pc", false, &state), 0);
	cu_cmd_id(id);
	cr_expect_eq(
	    cu_decide(&conn, false, id, "xa-2pc", false, 0, NULL, NULL),
	    SETTLE__V1__CODE__WRONG_STATE);
	tx = query("xa-2pc");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_assert_eq(tx->n_branches, 2);
	cr_expect_eq(tx->branches[0]->state,
		     SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING);
	cr_expect_eq(tx->branches[1]->state,
		     SETTLE__V1__BRANCH_STATE__XA_BRANCH_READ_ONLY);
	cr_expect_eq(cu_events(tx, "vote"), 2);
	cr_expect_eq(cu_events(tx, "prepare"), 1);
	settle_tx_info_free(tx);
	stop_clean();
}

Test(xa_verbs, rollback_vote_read_only_and_one_phase)
{
	int state = 0, bstate = 0;
	bool ro = false;
	Settle__V1__TxInfo *tx;
	uint8_t id[16];

	start();
	/* A rollback vote rolls the whole transaction back; prepare then
	 * answers that state (the TM's XA_RB*), not an error. */
	xa_begin_ok("xa-rb");
	reg_rm_ok("xa-rb");
	reg_rm_ok("xa-rb");
	cu_cmd_id(id);
	cr_assert_eq(vote(id, "xa-rb", 1, SETTLE__V1__XA_VOTE__VOTE_ROLLBACK,
			  "deadlock detected", &state, &bstate),
		     0, "%s", last_msg);
	cr_expect(state == SETTLE__V1__TX_STATE__ROLLING_BACK ||
		      state == SETTLE__V1__TX_STATE__ROLLED_BACK,
		  "state %d", state);
	cr_expect_eq(bstate, SETTLE__V1__BRANCH_STATE__XA_BRANCH_ROLLED_BACK);
	cr_assert_eq(prepare_new("xa-rb", &state, &ro), 0, "%s", last_msg);
	cr_expect(state == SETTLE__V1__TX_STATE__ROLLING_BACK ||
		      state == SETTLE__V1__TX_STATE__ROLLED_BACK,
		  "state %d", state);
	cr_expect_eq(commit_new("xa-rb", true, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	tx = query("xa-rb");
	cr_expect_not_null(strstr(tx->reason, "deadlock detected"), "%s",
			   tx->reason);
	settle_tx_info_free(tx);

	/* Every branch read-only: prepare ends it, nothing for phase 2. */
	xa_begin_ok("xa-ro");
	reg_rm_ok("xa-ro");
	cr_assert_eq(vote_new("xa-ro", 1, SETTLE__V1__XA_VOTE__VOTE_READ_ONLY,
			      NULL, NULL),
		     0, "%s", last_msg);
	cr_assert_eq(prepare_new("xa-ro", &state, &ro), 0, "%s", last_msg);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect(ro);

	/* One phase: a lone unvoted RM branch is the initiator's to commit;
	 * it reports the outcome, repeated with its cmd_id. */
	xa_begin_ok("xa-1pc");
	reg_rm_ok("xa-1pc");
	cr_expect_eq(commit_new("xa-1pc", false, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	cr_assert_eq(commit_new("xa-1pc", true, &state), 0, "%s", last_msg);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	tx = query("xa-1pc");
	cr_expect_eq(tx->branches[0]->state,
		     SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE);
	settle_tx_info_free(tx);
	cr_expect_eq(
	    vote_new("xa-1pc", 1, SETTLE__V1__XA_VOTE__VOTE_OK, NULL, NULL),
	    SETTLE__V1__CODE__WRONG_STATE);
	cu_cmd_id(id);
	cr_assert_eq(vote(id, "xa-1pc", 1,
			  SETTLE__V1__XA_VOTE__ONE_PHASE_COMMITTED, NULL,
			  &state, &bstate),
		     0, "%s", last_msg);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(bstate, SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTED);
	cr_assert_eq(vote(id, "xa-1pc", 1,
			  SETTLE__V1__XA_VOTE__ONE_PHASE_COMMITTED, NULL,
			  &state, &bstate),
		     0);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	/* Two unvoted RM branches cannot go one-phase. */
	xa_begin_ok("xa-1pc-2");
	reg_rm_ok("xa-1pc-2");
	reg_rm_ok("xa-1pc-2");
	cr_expect_eq(commit_new("xa-1pc-2", true, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	stop_clean();
}

/* ---- The legacy TM's side: recover and forget ---------------------------- */

Test(xa_verbs, recover_pages_and_forget_clears_a_heuristic)
{
	uint8_t id[16], xid[3][XA_XID_WIRE_MAX];
	size_t xl[3];
	char gids[3][XA_XID_GID_LEN + 1], sorted[3][XA_XID_GID_LEN + 1];
	int state = 0;
	uint32_t bid;
	Settle__V1__XaRecoverResponse *rec;
	Settle__V1__TxInfo *tx;

	start_with((const char *const[]){"--stuck-after", "300ms", NULL});
	/* Three TM transactions with a TCC branch each, prepared. */
	for (int i = 0; i < 3; i++) {
		char gtrid[16];

		snprintf(gtrid, sizeof(gtrid), "tm-rec-%d", i);
		xl[i] = tm_xid(gtrid, "b", xid[i]);
		gid_of(xid[i], xl[i], gids[i]);
		cu_cmd_id(id);
		cr_assert_eq(xa_begin(id, NULL, xid[i], xl[i], false, NULL), 0,
			     "%s", last_msg);
		cu_cmd_id(id);
		cr_assert_eq(
		    cu_register(&conn, id, gids[i], DEAD_EP, "p", 1, &bid), 0);
		cr_assert_eq(prepare_new(gids[i], &state, NULL), 0, "%s",
			     last_msg);
		cr_expect_eq(state, SETTLE__V1__TX_STATE__XA_PREPARED);
	}
	memcpy(sorted, gids, sizeof(sorted));
	qsort(sorted, 3, sizeof(sorted[0]), cmp_gid);

	rec = recover(2, NULL);
	cr_assert_eq(rec->n_txs, 2);
	cr_expect(rec->more);
	cr_expect_str_eq(rec->txs[0]->gid, sorted[0]);
	cr_expect_str_eq(rec->txs[1]->gid, sorted[1]);
	cr_expect_eq(rec->txs[0]->state, SETTLE__V1__TX_STATE__XA_PREPARED);
	cr_expect_eq(rec->txs[0]->heuristic, 0);
	for (int i = 0; i < 3; i++)
		if (strcmp(gids[i], sorted[0]) == 0) {
			cr_assert_eq(rec->txs[0]->xid.len, xl[i]);
			cr_expect_eq(
			    memcmp(rec->txs[0]->xid.data, xid[i], xl[i]), 0);
		}
	settle__v1__xa_recover_response__free_unpacked(rec, NULL);
	rec = recover(2, sorted[1]);
	cr_assert_eq(rec->n_txs, 1);
	cr_expect_not(rec->more);
	cr_expect_str_eq(rec->txs[0]->gid, sorted[2]);
	settle__v1__xa_recover_response__free_unpacked(rec, NULL);

	/* The TM decides: rolled back and committed ones leave the list
	 * (no heuristic). */
	cu_cmd_id(id);
	cr_assert_eq(cu_decide(&conn, false, id, gids[0], false, 0, NULL, NULL),
		     0);
	cr_assert_eq(commit_new(gids[1], false, &state), 0, "%s", last_msg);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	rec = recover(0, NULL);
	cr_assert_eq(rec->n_txs, 1);
	cr_expect_str_eq(rec->txs[0]->gid, gids[2]);
	settle__v1__xa_recover_response__free_unpacked(rec, NULL);

	/* Forget: nothing to forget on a prepared or unknown one. */
	cu_cmd_id(id);
	cr_expect_eq(forget(id, gids[2]), SETTLE__V1__CODE__WRONG_STATE);
	cu_cmd_id(id);
	cr_expect_eq(forget(id, "nope"), SETTLE__V1__CODE__NOT_FOUND);

	/* A heuristic: a one-phase RM branch whose outcome the initiator
	 * could not learn. The TM's transaction is listed with it until
	 * forgotten. */
	uint8_t hx[XA_XID_WIRE_MAX];
	size_t hl = tm_xid("tm-heur", "b", hx);
	char hg[XA_XID_GID_LEN + 1];

	gid_of(hx, hl, hg);
	cu_cmd_id(id);
	cr_assert_eq(xa_begin(id, NULL, hx, hl, false, NULL), 0, "%s",
		     last_msg);
	reg_rm_ok(hg);
	cr_assert_eq(commit_new(hg, true, &state), 0, "%s", last_msg);
	cr_assert_eq(
	    vote_new(hg, 1, SETTLE__V1__XA_VOTE__ONE_PHASE_UNKNOWN, NULL, NULL),
	    0, "%s", last_msg);
	tx = query(hg);
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(tx->heuristic, SETTLE__V1__HEURISTIC__HEUR_HAZARD);
	cr_expect_eq(tx->branches[0]->heuristic,
		     SETTLE__V1__HEURISTIC__HEUR_HAZARD);
	settle_tx_info_free(tx);
	rec = recover(0, NULL);
	bool seen = false;
	for (size_t i = 0; i < rec->n_txs; i++)
		if (strcmp(rec->txs[i]->gid, hg) == 0) {
			seen = true;
			cr_expect_eq(rec->txs[i]->state,
				     SETTLE__V1__TX_STATE__COMMITTED);
			cr_expect_eq(rec->txs[i]->heuristic,
				     SETTLE__V1__HEURISTIC__HEUR_HAZARD);
		}
	cr_expect(seen, "the heuristic transaction is not recovered");
	settle__v1__xa_recover_response__free_unpacked(rec, NULL);

	cu_cmd_id(id);
	cr_assert_eq(forget(id, hg), 0, "%s", last_msg);
	cr_assert_eq(forget(id, hg), 0, "the retry got another answer");
	uint8_t id2[16];
	cu_cmd_id(id2);
	cr_expect_eq(forget(id2, hg), SETTLE__V1__CODE__WRONG_STATE);
	tx = query(hg);
	cr_expect_eq(tx->heuristic, 0);
	cr_expect_eq(tx->branches[0]->heuristic,
		     SETTLE__V1__HEURISTIC__HEUR_HAZARD,
		     "the branch keeps its heuristic");
	cr_expect_eq(cu_events(tx, "forget"), 1);
	settle_tx_info_free(tx);
	rec = recover(0, NULL);
	for (size_t i = 0; i < rec->n_txs; i++)
		cr_expect_str_neq(rec->txs[i]->gid, hg);
	settle__v1__xa_recover_response__free_unpacked(rec, NULL);

	/* Left in doubt past --stuck-after: stuck, in Query, LIST and
	 * STATUS. */
	tu_sleep_ms(400);
	tx = query(gids[2]);
	cr_expect(tx->stuck, "an in-doubt transaction is not stuck");
	settle_tx_info_free(tx);
	Settle__V1__StatusResponse *st = cu_status(&conn);
	cr_expect_geq(st->stuck, 1);
	settle__v1__status_response__free_unpacked(st, NULL);

	/* LIST shows XA_PREPARED by state. */
	Settle__V1__ListRequest lr = SETTLE__V1__LIST_REQUEST__INIT;
	struct cu_reply r;
	lr.state = SETTLE__V1__TX_STATE__XA_PREPARED;
	cr_assert_eq(call(SETTLE__V1__METHOD__LIST, &lr.base, &r), 0, "%s",
		     r.msg);
	Settle__V1__ListResponse *list =
	    cu_unpack(&r, &settle__v1__list_response__descriptor);
	cr_assert_eq(list->n_txs, 1);
	cr_expect_str_eq(list->txs[0]->gid, gids[2]);
	cr_expect_neq(list->txs[0]->xid[0], '\0');
	settle__v1__list_response__free_unpacked(list, NULL);
	cu_reply_free(&r);
	stop_clean();
}

/* ---- Hostile input --------------------------------------------------------
 */

Test(xa_verbs, junk_and_out_of_range_requests)
{
	static const int methods[] = {
	    SETTLE__V1__METHOD__XA_VOTE, SETTLE__V1__METHOD__XA_PREPARE,
	    SETTLE__V1__METHOD__XA_RECOVER, SETTLE__V1__METHOD__XA_FORGET};
	static const uint8_t junk[] = {0xff, 0xff, 0xff, 0x0f, 0x12};
	Settle__V1__XaVoteRequest v = SETTLE__V1__XA_VOTE_REQUEST__INIT;
	Settle__V1__XaRecoverRequest rr = SETTLE__V1__XA_RECOVER_REQUEST__INIT;
	Settle__V1__XaPrepareRequest pr = SETTLE__V1__XA_PREPARE_REQUEST__INIT;
	char *big = malloc(2000);
	struct cu_reply r;
	uint8_t id[16];
	Settle__V1__TxInfo *tx;

	start();
	xa_begin_ok("xa-junk");
	reg_rm_ok("xa-junk");
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		cr_assert_eq(
		    cu_call_raw(&conn, methods[i], junk, sizeof(junk), &r), 0);
		cr_expect_eq(r.code, SETTLE__V1__CODE__INVALID_ARGUMENT,
			     "method %d: code %d: %s", methods[i], r.code,
			     r.msg);
		cu_reply_free(&r);
	}
	/* Mutating verbs without a cmd_id. */
	pr.gid = "xa-junk";
	cr_expect_eq(call_code(SETTLE__V1__METHOD__XA_PREPARE, &pr.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	v.gid = "xa-junk";
	v.branch_id = 1;
	v.vote = SETTLE__V1__XA_VOTE__VOTE_OK;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__XA_VOTE, &v.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	/* Out of range: vote, branch 0, error text, gid. */
	cu_cmd_id(id);
	v.cmd_id.data = id;
	v.cmd_id.len = 16;
	v.vote = 99;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__XA_VOTE, &v.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	v.vote = 0;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__XA_VOTE, &v.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	v.vote = SETTLE__V1__XA_VOTE__VOTE_ROLLBACK;
	v.branch_id = 0;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__XA_VOTE, &v.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	v.branch_id = 1;
	memset(big, 'e', 1999);
	big[1999] = '\0';
	v.error = big;
	int code = call_code(SETTLE__V1__METHOD__XA_VOTE, &v.base);
	cr_expect(code == SETTLE__V1__CODE__INVALID_ARGUMENT ||
		      code == SETTLE__V1__CODE__TOO_LARGE,
		  "code %d", code);
	v.error = "";
	v.gid = "has space";
	cr_expect_eq(call_code(SETTLE__V1__METHOD__XA_VOTE, &v.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	rr.after_gid = "has space";
	cr_expect_eq(call_code(SETTLE__V1__METHOD__XA_RECOVER, &rr.base),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	free(big);

	/* None of it changed anything, and the node still serves. */
	tx = query("xa-junk");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ACTIVE);
	cr_expect_eq(tx->branches[0]->state,
		     SETTLE__V1__BRANCH_STATE__XA_BRANCH_ACTIVE);
	cr_expect_eq(cu_events(tx, "vote"), 0);
	settle_tx_info_free(tx);
	/* The id of the refused vote is still unused. */
	v.gid = "xa-junk";
	v.vote = SETTLE__V1__XA_VOTE__VOTE_OK;
	cr_expect_eq(call_code(SETTLE__V1__METHOD__XA_VOTE, &v.base), 0, "%s",
		     last_msg);
	stop_clean();
}

/* ---- A node that does not lead -------------------------------------------
 */

static void member_start(int id, int port, const char *peers,
			 struct it_proc **p)
{
	char ids[8], data[512], raft[32], ep[32], name[16];
	char *argv[] = {(char *)it_bin("settled"),
			"--id",
			ids,
			"--data",
			data,
			"--listen",
			ep,
			"--raft",
			raft,
			"--peers",
			(char *)peers,
			NULL};

	snprintf(ids, sizeof(ids), "%d", id);
	snprintf(data, sizeof(data), "%s/member%d", it_dir(), id);
	snprintf(raft, sizeof(raft), "127.0.0.1:%d", port + 1);
	snprintf(ep, sizeof(ep), "127.0.0.1:%d", port);
	snprintf(name, sizeof(name), "member%d", id);
	*p = it_spawn(name, argv);
	it_wait_port(*p, port, 20000);
}

/* Every XA verb at a node that does not lead: code, and the leader's
 * endpoint in the error (NULL: none expected). */
static void expect_refused(const char *ep, int code, const char *leader)
{
	static const int methods[] = {
	    SETTLE__V1__METHOD__XA_VOTE, SETTLE__V1__METHOD__XA_PREPARE,
	    SETTLE__V1__METHOD__XA_RECOVER, SETTLE__V1__METHOD__XA_FORGET};
	Settle__V1__XaForgetRequest req = SETTLE__V1__XA_FORGET_REQUEST__INIT;
	uint8_t id[16];

	cu_connect(&conn, ep, 5000);
	cu_cmd_id(id);
	req.cmd_id.data = id;
	req.cmd_id.len = 16;
	req.gid = "g";
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		struct cu_reply r;

		cr_assert_eq(cu_call(&conn, methods[i], &req.base, &r), 0);
		cr_expect_eq(r.code, code, "method %d: code %d: %s", methods[i],
			     r.code, r.msg);
		if (leader != NULL)
			cr_expect_str_eq(r.leader, leader);
		cu_reply_free(&r);
	}
	cr_expect_eq(xa_begin(id, NULL, (const uint8_t *)"", 0, true, NULL),
		     code == SETTLE__V1__CODE__NOT_LEADER
			 ? SETTLE__V1__CODE__NOT_LEADER
			 : SETTLE__V1__CODE__UNAVAILABLE);
	cu_close(&conn);
}

static const char *role_at(int port)
{
	static char role[32];
	char ep[32];
	struct cu_conn c;
	Settle__V1__StatusResponse *st;

	snprintf(ep, sizeof(ep), "127.0.0.1:%d", port);
	cu_connect(&c, ep, 5000);
	st = cu_status(&c);
	snprintf(role, sizeof(role), "%s", st->role);
	settle__v1__status_response__free_unpacked(st, NULL);
	cu_close(&c);
	return role;
}

Test(xa_verbs, only_the_leader_serves_xa)
{
	int ports[3] = {it_free_port_pair(), it_free_port_pair(),
			it_free_port_pair()};
	char peers[256], eps[2][32];
	struct it_proc *p[2];
	int leader = -1;

	snprintf(peers, sizeof(peers),
		 "1=127.0.0.1:%d=127.0.0.1:%d,2=127.0.0.1:%d=127.0.0.1:%d,"
		 "3=127.0.0.1:%d=127.0.0.1:%d",
		 ports[0] + 1, ports[0], ports[1] + 1, ports[1], ports[2] + 1,
		 ports[2]);
	for (int i = 0; i < 2; i++)
		snprintf(eps[i], sizeof(eps[i]), "127.0.0.1:%d", ports[i]);
	/* One member of three: no quorum, no leader: UNAVAILABLE. */
	member_start(1, ports[0], peers, &p[0]);
	expect_refused(eps[0], SETTLE__V1__CODE__UNAVAILABLE, NULL);
	/* Two: one leads, the other points at it. */
	member_start(2, ports[1], peers, &p[1]);
	for (int tries = 0; leader < 0; tries++) {
		cr_assert_lt(tries, 200, "no leader elected in 20 s");
		for (int i = 0; i < 2; i++)
			if (strcmp(role_at(ports[i]), "leader") == 0)
				leader = i;
		if (leader < 0)
			tu_sleep_ms(100);
	}
	expect_refused(eps[1 - leader], SETTLE__V1__CODE__NOT_LEADER,
		       eps[leader]);
}

/* ---- libsettle and settlectl on a real node ------------------------------ */

/*
 * The initiator's fast path with libsettle on a real node: the branches
 * declared at Begin (one call; the XIDs those register would answer), the
 * votes carried by the commit, phase 2 left to the initiator (the dead
 * RM is never called: the leader would wait 60 s) and reported at once.
 * Then a node held at feature level 5: Begin with RM branches falls back
 * to registering them, and the rest is refused UNIMPLEMENTED without a
 * change.
 */
Test(xa_verbs, initiator_fast_path_and_an_older_cluster)
{
	static const char *const level5[] = {"--feature-level", "5", NULL};
	struct settle_xa_rm_branch br[2] = {{.rm = "pgdead"}, {.rm = "pgdead"}};
	struct settle_xa_branch_vote votes[2] = {
	    {.branch_id = 1, .vote = SETTLE__V1__XA_VOTE__VOTE_OK},
	    {.branch_id = 2, .vote = SETTLE__V1__XA_VOTE__VOTE_OK},
	};
	char gid[SETTLE_GID_BUFSIZE], *out, *err;
	Settle__V1__TxInfo *info = NULL;
	settle_client *c;
	struct xa_xid x, want;
	int state = 0;

	char level[48];

	start();
	c = tu_client(&node);
	/* Phase 2 by the initiator needs level 6; the node claims them all. */
	snprintf(level, sizeof(level), "runs at feature level %d", FSM_LEVEL);
	cr_assert(cu_wait_log(node.proc->log, level, 20000));
	cr_assert_eq(
	    settle_xa_begin_rms(c, NULL, 60000, br, 2, gid, sizeof(gid)), 0,
	    "%s", settle_client_errmsg(c));
	for (uint32_t i = 0; i < 2; i++) {
		char bq[4];

		snprintf(bq, sizeof(bq), "%u", i + 1);
		cr_expect_eq(br[i].branch_id, i + 1);
		cr_assert_eq(xa_xid_decode(br[i].xid, br[i].xid_len, &x), 0);
		cr_assert_eq(xa_xid_init(&want, FORMAT_ID, gid, strlen(gid), bq,
					 strlen(bq)),
			     0);
		cr_expect(xa_xid_equal(&x, &want), "branch %u's XID", i + 1);
	}
	/* An RM the leader does not know: nothing begun. */
	br[1].rm = "nope";
	cr_expect_eq(
	    settle_xa_begin_rms(c, "xa-unknown-rm", 60000, br, 2, NULL, 0),
	    SETTLE_ENOTFOUND);
	cr_expect_eq(settle_query(c, "xa-unknown-rm", false, &info),
		     SETTLE_ENOTFOUND);
	br[1].rm = "pgdead";
	cr_assert_eq(
	    settle_xa_commit_by_initiator(c, gid, votes, 2, 60000, &state), 0,
	    "%s", settle_client_errmsg(c));
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	/* The same again (a retry): where it stands. */
	cr_assert_eq(
	    settle_xa_commit_by_initiator(c, gid, votes, 2, 60000, &state), 0,
	    "%s", settle_client_errmsg(c));
	/* An operator sees who commits them. */
	cr_assert_eq(tu_ctl(&node, &out, &err,
			    (const char *const[]){"tx", "show", gid, NULL}),
		     0, "%s", err);
	cr_expect_not_null(strstr(out, "pgdead (initiator commits)"), "%s",
			   out);
	free(out);
	free(err);
	cr_assert_eq(
	    tu_ctl(&node, &out, &err,
		   (const char *const[]){"tx", "show", gid, "--json", NULL}),
	    0, "%s", err);
	cr_expect_not_null(strstr(out, "\"initiator_phase2\":true"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(settle_xa_vote(c, gid, 0,
				    SETTLE__V1__XA_VOTE__PHASE2_COMMITTED, NULL,
				    &state, NULL),
		     0, "%s", settle_client_errmsg(c));
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_assert_eq(settle_query(c, gid, true, &info), 0);
	cr_expect_eq(info->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE);
	cr_expect_eq(info->branches[0]->attempts, 0, "the leader never called");
	settle_tx_info_free(info);
	settle_client_close(c);
	stop_clean();

	start_id(2, level5);
	c = tu_client(&node);
	br[0].branch_id = br[1].branch_id = 0;
	cr_assert_eq(
	    settle_xa_begin_rms(c, NULL, 60000, br, 2, gid, sizeof(gid)), 0,
	    "%s", settle_client_errmsg(c));
	cr_expect_eq(br[0].branch_id, 1);
	cr_expect_eq(br[1].branch_id, 2);
	cr_assert_eq(xa_xid_decode(br[1].xid, br[1].xid_len, &x), 0);
	cr_assert_eq(xa_xid_init(&want, FORMAT_ID, gid, strlen(gid), "2", 1),
		     0);
	cr_expect(xa_xid_equal(&x, &want));
	cr_expect_eq(
	    settle_xa_commit_by_initiator(c, gid, votes, 2, 60000, &state),
	    SETTLE_ENOMETHOD);
	cr_expect(strstr(settle_client_errmsg(c), "feature level 6") != NULL,
		  "%s", settle_client_errmsg(c));
	cr_expect_eq(settle_xa_vote(c, gid, 0,
				    SETTLE__V1__XA_VOTE__PHASE2_COMMITTED, NULL,
				    NULL, NULL),
		     SETTLE_ENOMETHOD);
	cr_assert_eq(settle_query(c, gid, false, &info), 0);
	cr_expect_eq(info->state, SETTLE__V1__TX_STATE__ACTIVE);
	cr_expect_eq(info->branches[0]->state,
		     SETTLE__V1__BRANCH_STATE__XA_BRANCH_ACTIVE);
	settle_tx_info_free(info);
	settle_client_close(c);
	stop_clean();
}

Test(xa_verbs, libsettle_and_settlectl_end_to_end)
{
	settle_client *c;
	char gid[SETTLE_GID_BUFSIZE], tgid[SETTLE_GID_BUFSIZE], *out, *err;
	uint8_t bx[SETTLE_XID_WIRE_MAX], tx_xid[XA_XID_WIRE_MAX];
	size_t bxl = 0, txl = tm_xid("tm-ctl", "b1", tx_xid);
	uint32_t b1 = 0, b2 = 0;
	int state = 0, bstate = 0;
	bool ro = true, fin = true, joined = true;
	struct settle_xa_recovered rec[4];
	size_t n = 0;
	bool more = true;
	struct xa_xid x;

	start();
	c = tu_client(&node);
	/* Settle as TM: two RM branches, both voted, one-phase commit. */
	cr_assert_eq(settle_xa_begin(c, NULL, NULL, 0, false, 60000, gid,
				     sizeof(gid), &joined),
		     0, "%s", settle_client_errmsg(c));
	cr_expect_not(joined);
	cr_assert_eq(
	    settle_xa_register_rm(c, gid, "pgdead", &b1, bx, sizeof(bx), &bxl),
	    0, "%s", settle_client_errmsg(c));
	cr_assert_eq(xa_xid_decode(bx, bxl, &x), 0);
	cr_expect_eq(x.format_id, FORMAT_ID);
	cr_expect_eq(x.gtrid_len, strlen(gid));
	cr_assert_eq(
	    settle_xa_register_rm(c, gid, "pgdead", &b2, NULL, 0, NULL), 0);
	cr_expect_eq(settle_xa_register_rm(c, gid, "nope", NULL, NULL, 0, NULL),
		     SETTLE_ENOTFOUND);
	cr_assert_eq(settle_xa_vote(c, gid, b1, SETTLE__V1__XA_VOTE__VOTE_OK,
				    NULL, &state, &bstate),
		     0, "%s", settle_client_errmsg(c));
	cr_expect_eq(bstate, SETTLE__V1__BRANCH_STATE__XA_BRANCH_PREPARED);
	cr_assert_eq(settle_xa_vote(c, gid, b2,
				    SETTLE__V1__XA_VOTE__VOTE_READ_ONLY, NULL,
				    NULL, NULL),
		     0);
	cr_assert_eq(settle_xa_commit(c, gid, true, 0, &state, &fin), 0, "%s",
		     settle_client_errmsg(c));
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_expect_not(fin);

	cr_assert_eq(tu_ctl(&node, &out, &err,
			    (const char *const[]){"tx", "show", gid, NULL}),
		     0, "%s", err);
	cr_expect_not_null(strstr(out, "mode:      xa\n"), "%s", out);
	cr_expect_not_null(strstr(out, "xa_committing"), "%s", out);
	cr_expect_not_null(strstr(out, "xa_read_only"), "%s", out);
	cr_expect_not_null(strstr(out, "pgdead"), "%s", out);
	free(out);
	free(err);

	/* Settle as RM of a legacy TM: begin with its xid, join, a TCC
	 * branch, prepare: in doubt until the TM decides. */
	cr_assert_eq(settle_xa_begin(c, NULL, tx_xid, txl, false, 0, tgid,
				     sizeof(tgid), &joined),
		     0, "%s", settle_client_errmsg(c));
	cr_assert_eq(
	    settle_xa_begin(c, NULL, tx_xid, txl, true, 0, NULL, 0, &joined),
	    0);
	cr_expect(joined);
	cr_assert_eq(
	    settle_register_branch(c, tgid, DEAD_EP, "acct", "p", 1, &b1), 0);
	cr_assert_eq(settle_xa_prepare(c, tgid, &state, &ro), 0, "%s",
		     settle_client_errmsg(c));
	cr_expect_eq(state, SETTLE__V1__TX_STATE__XA_PREPARED);
	cr_expect_not(ro);
	cr_assert_eq(settle_xa_recover(c, NULL, rec, 4, &n, &more), 0, "%s",
		     settle_client_errmsg(c));
	cr_assert_eq(n, 1);
	cr_expect_not(more);
	cr_expect_str_eq(rec[0].gid, tgid);
	cr_assert_eq(rec[0].xid_len, txl);
	cr_expect_eq(memcmp(rec[0].xid, tx_xid, txl), 0);

	cr_assert_eq(tu_ctl(&node, &out, &err,
			    (const char *const[]){"xa", "recover", NULL}),
		     0, "%s", err);
	cr_expect_not_null(strstr(out, tgid), "%s", out);
	cr_expect_not_null(strstr(out, "xa_prepared"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(
	    tu_ctl(&node, &out, &err,
		   (const char *const[]){"--json", "tx", "list", "--state",
					 "xa_prepared", NULL}),
	    0, "%s", err);
	cr_expect_not_null(strstr(out, tgid), "%s", out);
	cr_expect_not_null(strstr(out, "\"xid\":\"1:"), "%s", out);
	free(out);
	free(err);

	/* A heuristic, seen and forgotten through settlectl. */
	cr_assert_eq(
	    settle_xa_begin(c, "xa-heur", NULL, 0, false, 0, NULL, 0, NULL), 0);
	cr_assert_eq(
	    settle_xa_register_rm(c, "xa-heur", "pgdead", &b1, NULL, 0, NULL),
	    0);
	cr_assert_eq(settle_xa_commit(c, "xa-heur", true, 0, &state, NULL), 0);
	cr_assert_eq(settle_xa_vote(c, "xa-heur", b1,
				    SETTLE__V1__XA_VOTE__ONE_PHASE_UNKNOWN,
				    "connection lost during COMMIT", &state,
				    NULL),
		     0, "%s", settle_client_errmsg(c));
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_assert_eq(tu_ctl(&node, &out, &err,
			    (const char *const[]){"tx", "list", NULL}),
		     0, "%s", err);
	cr_expect_not_null(strstr(out, "HEURISTIC"), "%s", out);
	cr_expect_not_null(strstr(out, "hazard"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(
	    tu_ctl(&node, &out, &err,
		   (const char *const[]){"xa", "forget", "xa-heur", NULL}),
	    0, "%s", err);
	free(out);
	free(err);
	cr_assert_eq(
	    tu_ctl(&node, &out, &err,
		   (const char *const[]){"xa", "forget", "xa-heur", NULL}),
	    1);
	cr_expect_not_null(strstr(err, "WRONG_STATE"), "%s", err);
	free(out);
	free(err);
	cr_expect_eq(settle_xa_forget(c, "xa-heur"), SETTLE_ESTATE);
	settle_client_close(c);
	stop_clean();
}

/* ---- An operator's heuristic decision (XA_HEURISTIC) -------------------- */

static int heuristic(const uint8_t id[16], const char *gid, int decision,
		     const char *reason, int *state, int *heur)
{
	Settle__V1__XaHeuristicRequest req =
	    SETTLE__V1__XA_HEURISTIC_REQUEST__INIT;
	struct cu_reply r;
	int code;

	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = id != NULL ? 16 : 0;
	req.gid = (char *)gid;
	req.decision = decision;
	req.reason = (char *)(reason != NULL ? reason : "");
	code = call(SETTLE__V1__METHOD__XA_HEURISTIC, &req.base, &r);
	snprintf(last_msg, sizeof(last_msg), "%s", r.msg);
	if (code == 0) {
		Settle__V1__XaHeuristicResponse *resp = cu_unpack(
		    &r, &settle__v1__xa_heuristic_response__descriptor);
		if (state != NULL)
			*state = resp->state;
		if (heur != NULL)
			*heur = resp->heuristic;
		settle__v1__xa_heuristic_response__free_unpacked(resp, NULL);
	}
	cu_reply_free(&r);
	return code;
}

/* The TM's Commit: code, and state and heuristic of its answer. */
static int tm_commit(const char *gid, int *state, int *heur)
{
	Settle__V1__CommitRequest req = SETTLE__V1__COMMIT_REQUEST__INIT;
	uint8_t id[16];
	struct cu_reply r;
	int code;

	cu_cmd_id(id);
	req.cmd_id.data = id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	code = call(SETTLE__V1__METHOD__COMMIT, &req.base, &r);
	snprintf(last_msg, sizeof(last_msg), "%s", r.msg);
	if (code == 0) {
		Settle__V1__DecisionResponse *resp =
		    cu_unpack(&r, &settle__v1__decision_response__descriptor);
		*state = resp->state;
		*heur = resp->heuristic;
		settle__v1__decision_response__free_unpacked(resp, NULL);
	}
	cu_reply_free(&r);
	return code;
}

Test(xa_verbs, heuristic_decision_of_an_in_doubt_transaction)
{
	uint8_t id[16], xid[XA_XID_WIRE_MAX];
	char gid[XA_XID_GID_LEN + 1];
	size_t xl;
	uint32_t bid;
	int state = 0, heur = 0;
	Settle__V1__TxInfo *tx;

	start();
	xl = tm_xid("tm-gone", "b", xid);
	gid_of(xid, xl, gid);
	cu_cmd_id(id);
	cr_assert_eq(xa_begin(id, NULL, xid, xl, false, NULL), 0, "%s",
		     last_msg);
	cu_cmd_id(id);
	cr_assert_eq(cu_register(&conn, id, gid, DEAD_EP, "p", 1, &bid), 0);
	/* ACTIVE: not in doubt, nothing to decide by hand. */
	cu_cmd_id(id);
	cr_expect_eq(heuristic(id, gid, SETTLE__V1__DECISION__DECIDE_COMMIT,
			       "too early", NULL, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	cr_assert_eq(prepare_new(gid, &state, NULL), 0, "%s", last_msg);

	/* Refusals: no reason, no decision, no cmd_id, unknown gid. */
	cu_cmd_id(id);
	cr_expect_eq(heuristic(id, gid, SETTLE__V1__DECISION__DECIDE_COMMIT, "",
			       NULL, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect(strstr(last_msg, "reason") != NULL, "%s", last_msg);
	cr_expect_eq(heuristic(id, gid, 0, "r", NULL, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_eq(heuristic(NULL, gid, SETTLE__V1__DECISION__DECIDE_COMMIT,
			       "r", NULL, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_eq(heuristic(id, "nope", SETTLE__V1__DECISION__DECIDE_COMMIT,
			       "r", NULL, NULL),
		     SETTLE__V1__CODE__NOT_FOUND);
	tx = query(gid);
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__XA_PREPARED);
	settle_tx_info_free(tx);

	/* The operator commits it: as the commit decision (the TCC branch
	 * is being confirmed), remembered as HEUR_COMMIT. */
	cu_cmd_id(id);
	cr_assert_eq(heuristic(id, gid, SETTLE__V1__DECISION__DECIDE_COMMIT,
			       "TM lost for good, ticket 42", &state, &heur),
		     0, "%s", last_msg);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_expect_eq(heur, SETTLE__V1__HEURISTIC__HEUR_COMMIT);
	/* Its retry (same cmd_id) gets the same answer. */
	state = heur = 0;
	cr_assert_eq(heuristic(id, gid, SETTLE__V1__DECISION__DECIDE_COMMIT,
			       "TM lost for good, ticket 42", &state, &heur),
		     0, "%s", last_msg);
	cr_expect_eq(heur, SETTLE__V1__HEURISTIC__HEUR_COMMIT);
	tx = query(gid);
	cr_expect_eq(tx->heuristic, SETTLE__V1__HEURISTIC__HEUR_COMMIT);
	cr_expect_eq(cu_events(tx, "heuristic"), 1);
	cr_expect_eq(tx->branches[0]->state,
		     SETTLE__V1__BRANCH_STATE__CONFIRMING);
	settle_tx_info_free(tx);

	/* The TM comes back. Its commit answers OK with the heuristic
	 * (the switch's XA_HEURCOM); its rollback is refused, naming it. */
	cr_assert_eq(tm_commit(gid, &state, &heur), 0, "%s", last_msg);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_expect_eq(heur, SETTLE__V1__HEURISTIC__HEUR_COMMIT);
	cu_cmd_id(id);
	cr_expect_eq(cu_decide(&conn, false, id, gid, false, 0, NULL, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	/* Decided already: no second heuristic decision either way. */
	cu_cmd_id(id);
	cr_expect_eq(heuristic(id, gid, SETTLE__V1__DECISION__DECIDE_ROLLBACK,
			       "r", NULL, NULL),
		     SETTLE__V1__CODE__WRONG_STATE);
	cr_expect(strstr(last_msg, "XA_PREPARED") != NULL, "%s", last_msg);
	/* Still in phase two (the endpoint is dead): nothing to forget. */
	cu_cmd_id(id);
	cr_expect_eq(forget(id, gid), SETTLE__V1__CODE__WRONG_STATE);
	stop_clean();
}

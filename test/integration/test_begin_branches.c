/*
 * BEGIN with declared branches (issue 12) on a 3-node cluster of real
 * settled processes with two settle-banks: the transaction and its
 * branches in one command, then Try, Commit or Rollback as ever.
 *  - begin with 2 branches -> Try both -> commit: both CONFIRMED, money
 *    moved once;
 *  - begin with branches, REGISTER_BRANCH goes on from there, rollback
 *    with no Try: every branch CANCELLED (the banks' barrier takes it as a
 *    null compensation), nothing moved, a late Try refused;
 *  - through the raw protocol: the same BEGIN again (same cmd_id) answers
 *    the same gid and ids and creates nothing more; another request under
 *    that cmd_id is CMD_ID_REUSED; too many branches, an oversized
 *    payload, payloads over one entry, XA mode or a bad endpoint are
 *    refused with nothing created;
 *  - the leader SIGKILLed between BEGIN and COMMIT: the new leader has the
 *    branches, and the commit confirms both.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_util.h"
#include "tcc_util.h"
#include "test_faults_util.h"

static struct fu_cluster cl;
static struct it_bank bank_a, bank_b;

static void setup(void)
{
	cu_setup();
	memset(&cl, 0, sizeof(cl));
	fu_cluster_start(&cl, 3, NULL);
	/* Declared branches are kept from feature level 2 on, which the
	 * leader raises to in its first round (coordinator/features.c). */
	cr_assert(fu_wait_level(&cl, 2, 30000), "the cluster stays below "
						"feature level 2");
	fu_bank_start(&bank_a, NULL, "bank-a", "alice=1000", NULL);
	fu_bank_start(&bank_b, NULL, "bank-b", "bob=500", NULL);
}

static void teardown(void)
{
	fu_cluster_teardown(&cl);
	it_teardown();
}

TestSuite(begin_branches, .init = setup, .fini = teardown, .timeout = 180);

/* Node i seen as the harness's one-node record (tu_wait() takes one; the
 * client it opens follows the leader from there). */
static struct it_node node_of(int i)
{
	struct it_node n;

	memset(&n, 0, sizeof(n));
	n.proc = cl.nodes[i].proc;
	n.port = cl.nodes[i].port;
	snprintf(n.endpoint, sizeof(n.endpoint), "%s", cl.nodes[i].endpoint);
	return n;
}

static settle_client *cluster_client(void)
{
	struct settle_client_opts co = {0};
	settle_client *c;

	co.call_timeout_ms = 5000;
	co.connect_timeout_ms = 500;
	co.retry_budget_ms = 15000;
	cr_assert_eq(settle_client_open(cl.endpoints, &co, &c), 0);
	return c;
}

/* The transfer's two branches: amount from alice, to bob. */
struct transfer {
	char pf[64], pt[64];
	struct settle_branch_decl d[2];
};

static void transfer_decls(struct transfer *t, int amount)
{
	snprintf(t->pf, sizeof(t->pf), "account=alice;amount=%d", -amount);
	snprintf(t->pt, sizeof(t->pt), "account=bob;amount=%d", amount);
	t->d[0] = (struct settle_branch_decl){bank_a.endpoint, TU_RESOURCE,
					      t->pf, strlen(t->pf)};
	t->d[1] = (struct settle_branch_decl){bank_b.endpoint, TU_RESOURCE,
					      t->pt, strlen(t->pt)};
}

static bool is_active(const Settle__V1__TxInfo *tx)
{
	return tx->state == SETTLE__V1__TX_STATE__ACTIVE;
}

/* Begin the transfer with its branches declared (ids to ids), and Try
 * both unless try is false. */
static void begin_transfer(settle_client *c, struct transfer *t, int amount,
			   bool try, char *gid, uint32_t *ids)
{
	transfer_decls(t, amount);
	cr_assert_eq(settle_begin_branches(c, NULL, 60000, t->d, 2, gid,
					   SETTLE_GID_BUFSIZE, ids),
		     0, "%s", settle_client_errmsg(c));
	cr_expect_eq(ids[0], 1);
	cr_expect_eq(ids[1], 2);
	if (!try)
		return;
	tu_try(c, gid, ids[0], &bank_a, t->pf);
	tu_try(c, gid, ids[1], &bank_b, t->pt);
}

static void assert_branches(const Settle__V1__TxInfo *tx, size_t n, int state)
{
	cr_assert_eq(tx->n_branches, n, "%s has %zu branches, want %zu",
		     tx->gid, tx->n_branches, n);
	for (size_t i = 0; i < n; i++) {
		cr_expect_eq(tx->branches[i]->branch_id, i + 1);
		cr_expect_eq(tx->branches[i]->state, state, "branch %zu is %s",
			     i + 1,
			     settle_branch_state_name(tx->branches[i]->state));
	}
}

/* Commit gid (waiting for phase two) and see it COMMITTED with both
 * branches CONFIRMED on n and the money moved: alice 900, bob 600. */
static void commit_transfer(settle_client *c, const struct it_node *n,
			    const char *gid)
{
	int state = 0;
	bool finished = false;
	Settle__V1__TxInfo *tx;

	cr_assert_eq(settle_commit(c, gid, 20000, &state, &finished), 0, "%s",
		     settle_client_errmsg(c));
	tx = tu_wait_final(n, gid, SETTLE__V1__TX_STATE__COMMITTED, 30000);
	assert_branches(tx, 2, SETTLE__V1__BRANCH_STATE__CONFIRMED);
	settle_tx_info_free(tx);
	tu_assert_balances(&bank_a, &bank_b, 900, 600);
}

Test(begin_branches, commit_and_rollback)
{
	struct it_node n0 = node_of(0);
	settle_client *c = cluster_client();
	char gid[SETTLE_GID_BUFSIZE];
	uint32_t ids[3] = {0, 0, 0};
	struct transfer t;
	int state = 0;
	bool finished = false;
	Settle__V1__TxInfo *tx;

	/* Begin{2 branches} -> Try each -> Commit(wait). */
	begin_transfer(c, &t, 100, true, gid, ids);
	cr_assert_eq(settle_query(c, gid, true, &tx), 0);
	assert_branches(tx, 2, SETTLE__V1__BRANCH_STATE__REGISTERED);
	cr_expect_eq(cu_events(tx, "begin"), 1);
	cr_expect_eq(cu_events(tx, "register"), 2);
	cr_expect_str_eq(tx->branches[0]->endpoint, bank_a.endpoint);
	settle_tx_info_free(tx);
	commit_transfer(c, &n0, gid);

	/* Begin{2} + REGISTER_BRANCH (id 3), rollback with no Try at all:
	 * each Cancel reaches a bank that never saw the Try. */
	begin_transfer(c, &t, 50, false, gid, ids);
	cr_assert_eq(settle_register_branch(c, gid, bank_a.endpoint,
					    TU_RESOURCE, t.pf, strlen(t.pf),
					    &ids[2]),
		     0, "%s", settle_client_errmsg(c));
	cr_expect_eq(ids[2], 3);
	cr_assert_eq(settle_rollback(c, gid, "changed my mind", 20000, &state,
				     &finished),
		     0, "%s", settle_client_errmsg(c));
	tx = tu_wait_final(&n0, gid, SETTLE__V1__TX_STATE__ROLLED_BACK, 20000);
	assert_branches(tx, 3, SETTLE__V1__BRANCH_STATE__CANCELLED);
	settle_tx_info_free(tx);
	tu_assert_balances(&bank_a, &bank_b, 900, 600);
	/* The Try that never came arrives late: the barrier refuses it. */
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	req.gid = gid;
	req.branch_id = 1;
	req.resource = TU_RESOURCE;
	req.payload.data = (uint8_t *)t.pf;
	req.payload.len = strlen(t.pf);
	req.attempt = 1;
	cr_expect_eq(settle_client_call_at(c, bank_a.endpoint,
					   SETTLE__V1__METHOD__TRY, &req.base,
					   NULL, NULL),
		     SETTLE_EREFUSED, "%s", settle_client_errmsg(c));
	tu_assert_balances(&bank_a, &bank_b, 900, 600);
	settle_client_close(c);
}

/* A raw BeginRequest of n branches of payload_len bytes each. */
static int raw_begin(struct cu_conn *conn, const uint8_t id[16],
		     const char *gid, int mode, size_t n, const char *endpoint,
		     size_t payload_len, struct cu_reply *r)
{
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	Settle__V1__BranchDecl d = SETTLE__V1__BRANCH_DECL__INIT;
	Settle__V1__BranchDecl **dp = calloc(n + 1, sizeof(*dp));
	uint8_t *payload = calloc(1, payload_len + 1);
	int rv;

	cr_assert(dp != NULL && payload != NULL);
	memset(payload, 'p', payload_len);
	d.endpoint = (char *)endpoint;
	d.resource = TU_RESOURCE;
	d.payload.data = payload;
	d.payload.len = payload_len;
	for (size_t i = 0; i < n; i++)
		dp[i] = &d;
	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	req.mode = mode;
	req.n_branches = n;
	req.branches = dp;
	rv = cu_call(conn, SETTLE__V1__METHOD__BEGIN, &req.base, r);
	free(dp);
	free(payload);
	return rv;
}

/* The gid is unknown to the leader: nothing was created. */
static void assert_absent(struct cu_conn *conn, const char *gid)
{
	Settle__V1__TxInfo *tx = NULL;

	cr_expect_eq(cu_query(conn, gid, &tx), SETTLE__V1__CODE__NOT_FOUND,
		     "%s exists", gid);
	if (tx != NULL)
		settle_tx_info_free(tx);
}

Test(begin_branches, retries_reuse_and_limits)
{
	int ld = fu_leader(&cl, 20000);
	struct cu_conn conn;
	struct cu_reply r;
	uint8_t id[16], id2[16];
	Settle__V1__BeginResponse *resp;
	Settle__V1__TxInfo *tx;

	cr_assert_geq(ld, 0, "no leader");
	cu_connect(&conn, cl.nodes[ld].endpoint, 5000);
	cu_cmd_id(id);
	cr_assert_eq(
	    raw_begin(&conn, id, "bb-1", 0, 2, bank_a.endpoint, 10, &r), 0);
	resp = cu_unpack(&r, &settle__v1__begin_response__descriptor);
	cr_assert_eq(resp->n_branch_ids, 2);
	cr_expect_eq(resp->branch_ids[0], 1);
	cr_expect_eq(resp->branch_ids[1], 2);
	uint64_t deadline = resp->deadline_ms;
	settle__v1__begin_response__free_unpacked(resp, NULL);
	cu_reply_free(&r);

	/* The retry: the same answer, nothing more created. */
	cr_assert_eq(
	    raw_begin(&conn, id, "bb-1", 0, 2, bank_a.endpoint, 10, &r), 0);
	resp = cu_unpack(&r, &settle__v1__begin_response__descriptor);
	cr_expect_str_eq(resp->gid, "bb-1");
	cr_expect_eq(resp->deadline_ms, deadline);
	cr_assert_eq(resp->n_branch_ids, 2);
	cr_expect_eq(resp->branch_ids[1], 2);
	settle__v1__begin_response__free_unpacked(resp, NULL);
	cu_reply_free(&r);
	cr_assert_eq(cu_query(&conn, "bb-1", &tx), SETTLE__V1__CODE__OK);
	assert_branches(tx, 2, SETTLE__V1__BRANCH_STATE__REGISTERED);
	cr_expect_eq(cu_events(tx, "register"), 2);
	settle_tx_info_free(tx);

	/* Other branches (one more; another payload) under that cmd_id. */
	cr_assert_eq(
	    raw_begin(&conn, id, "bb-1", 0, 3, bank_a.endpoint, 10, &r), 0);
	cr_expect_eq(r.code, SETTLE__V1__CODE__CMD_ID_REUSED, "%d %s", r.code,
		     r.msg);
	cu_reply_free(&r);
	cr_assert_eq(
	    raw_begin(&conn, id, "bb-1", 0, 2, bank_a.endpoint, 11, &r), 0);
	cr_expect_eq(r.code, SETTLE__V1__CODE__CMD_ID_REUSED, "%d %s", r.code,
		     r.msg);
	cu_reply_free(&r);
	cr_assert_eq(cu_query(&conn, "bb-1", &tx), SETTLE__V1__CODE__OK);
	assert_branches(tx, 2, SETTLE__V1__BRANCH_STATE__REGISTERED);
	settle_tx_info_free(tx);

	/* Refused before anything is proposed, each with its reason. */
	struct {
		const char *gid;
		int mode;
		size_t n;
		const char *endpoint;
		size_t payload;
		int code;
		const char *says;
	} bad[] = {
	    {"bb-many", 0, 1001, "h:1", 0, SETTLE__V1__CODE__TOO_LARGE,
	     "branches"},
	    {"bb-big", 0, 1, "h:1", (1u << 20) + 1, SETTLE__V1__CODE__TOO_LARGE,
	     "branches[0].payload"},
	    {"bb-sum", 0, 2, "h:1", 700u * 1024u, SETTLE__V1__CODE__TOO_LARGE,
	     "entry"},
	    {"bb-xa", SETTLE__V1__TX_MODE__XA, 1, "h:1", 0,
	     SETTLE__V1__CODE__INVALID_ARGUMENT, "branches"},
	    {"bb-ep", 0, 2, "no-port", 0, SETTLE__V1__CODE__INVALID_ARGUMENT,
	     "branches[0].endpoint"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cu_cmd_id(id2);
		cr_assert_eq(raw_begin(&conn, id2, bad[i].gid, bad[i].mode,
				       bad[i].n, bad[i].endpoint,
				       bad[i].payload, &r),
			     0, "%s: connection closed", bad[i].gid);
		cr_expect_eq(r.code, bad[i].code, "%s: code %d: %s", bad[i].gid,
			     r.code, r.msg);
		cr_expect_neq(strstr(r.msg, bad[i].says), NULL, "%s: %s",
			      bad[i].gid, r.msg);
		cu_reply_free(&r);
		assert_absent(&conn, bad[i].gid);
	}
	cu_close(&conn);
}

Test(begin_branches, leader_killed_between_begin_and_commit)
{
	settle_client *c = cluster_client();
	char gid[SETTLE_GID_BUFSIZE];
	uint32_t ids[2];
	struct transfer t;
	Settle__V1__TxInfo *tx;

	begin_transfer(c, &t, 100, true, gid, ids);
	int ld = fu_leader(&cl, 10000);
	cr_assert_geq(ld, 0, "no leader");
	fu_kill(&cl, ld);
	int nl = fu_leader_except(&cl, ld, 20000);
	cr_assert_geq(nl, 0, "no new leader after the kill");
	struct it_node n = node_of(nl);
	/* The new leader has both branches from the one entry. */
	tx = tu_wait(&n, gid, is_active, 20000);
	assert_branches(tx, 2, SETTLE__V1__BRANCH_STATE__REGISTERED);
	settle_tx_info_free(tx);
	commit_transfer(c, &n, gid);
	/* The killed node comes back with the same state. */
	fu_restart(&cl, ld);
	cr_expect(fu_wait_caught_up(&cl, 20000), "the restarted node lags");
	settle_client_close(c);
	fu_assert_no_sanitizer_reports(&cl);
}

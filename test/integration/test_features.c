/*
 * Feature levels (coordinator/features.c) on real settled processes: a
 * node started with --feature-level 1 acts as a release before CmdResults
 * and declared branches would.
 *  - 3 nodes, one at level 1: the cluster stays at level 1; a BEGIN with
 *    branches is answered without branch ids (nothing a level-1 node
 *    cannot apply goes into the log) and libsettle registers them itself,
 *    so a transfer commits all the same. Restarted without the flag, the
 *    node lets the leader raise the cluster to level 2: BEGIN keeps the
 *    branches, and transfers commit with their answers batched.
 *  - a cluster at level 2 refuses to add a --join node that runs level 1
 *    (WRONG_STATE naming both levels, nothing changed), and adds it once
 *    it is restarted at level 2.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "coord_util.h"
#include "tcc_util.h"
#include "test_faults_util.h"
#include "wal/fsm.h"

static struct fu_cluster cl;
static struct it_bank bank_a, bank_b;

static void setup(void)
{
	cu_setup();
	memset(&cl, 0, sizeof(cl));
}

static void teardown(void)
{
	fu_cluster_teardown(&cl);
	it_teardown();
}

TestSuite(features, .init = setup, .fini = teardown, .timeout = 240);

static Settle__V1__StatusResponse *status_at(const char *endpoint)
{
	struct cu_conn c;
	Settle__V1__StatusResponse *st;

	cu_connect(&c, endpoint, 5000);
	st = cu_status(&c);
	cu_close(&c);
	return st;
}

/* Remove "flag value" from p's arguments (for its next start). */
static void drop_arg(struct it_proc *p, const char *flag)
{
	for (int i = 0; p->argv[i] != NULL; i++) {
		if (strcmp(p->argv[i], flag) != 0)
			continue;
		free(p->argv[i]);
		free(p->argv[i + 1]);
		for (int j = i; p->argv[j] != NULL; j++)
			p->argv[j] = p->argv[j + 2];
		return;
	}
	cr_assert_fail("%s not among %s's arguments", flag, p->name);
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

/* Move 10 from alice to bob with the branches declared at begin: ids 1
 * and 2 whichever way the coordinator took them. */
static void transfer(settle_client *c, int *alice, int *bob)
{
	char pf[64], pt[64], gid[SETTLE_GID_BUFSIZE];
	uint32_t ids[2] = {0, 0};
	int state = 0;
	bool finished = false;
	struct it_node n0;
	Settle__V1__TxInfo *tx;

	snprintf(pf, sizeof(pf), "account=alice;amount=-10");
	snprintf(pt, sizeof(pt), "account=bob;amount=10");
	struct settle_branch_decl d[2] = {
	    {bank_a.endpoint, TU_RESOURCE, pf, strlen(pf)},
	    {bank_b.endpoint, TU_RESOURCE, pt, strlen(pt)},
	};
	cr_assert_eq(
	    settle_begin_branches(c, NULL, 60000, d, 2, gid, sizeof(gid), ids),
	    0, "%s", settle_client_errmsg(c));
	cr_expect_eq(ids[0], 1);
	cr_expect_eq(ids[1], 2);
	tu_try(c, gid, ids[0], &bank_a, pf);
	tu_try(c, gid, ids[1], &bank_b, pt);
	cr_assert_eq(settle_commit(c, gid, 20000, &state, &finished), 0, "%s",
		     settle_client_errmsg(c));
	memset(&n0, 0, sizeof(n0));
	n0.proc = cl.nodes[0].proc;
	n0.port = cl.nodes[0].port;
	snprintf(n0.endpoint, sizeof(n0.endpoint), "%s", cl.nodes[0].endpoint);
	tx = tu_wait_final(&n0, gid, SETTLE__V1__TX_STATE__COMMITTED, 30000);
	cr_expect_eq(tx->n_branches, 2);
	cr_expect_eq(cu_events(tx, "register"), 2);
	settle_tx_info_free(tx);
	*alice -= 10;
	*bob += 10;
	tu_assert_balances(&bank_a, &bank_b, *alice, *bob);
}

/* How many branch ids a raw BEGIN declaring one branch is answered with. */
static size_t raw_begin_ids(void)
{
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	Settle__V1__BranchDecl d = SETTLE__V1__BRANCH_DECL__INIT;
	Settle__V1__BranchDecl *dp[1] = {&d};
	Settle__V1__BeginResponse *resp;
	struct cu_reply r;
	struct cu_conn c;
	uint8_t id[16];
	size_t n;

	cu_cmd_id(id);
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.timeout_ms = 30000;
	d.endpoint = bank_a.endpoint;
	d.resource = TU_RESOURCE;
	req.branches = dp;
	req.n_branches = 1;
	cu_connect(&c, cl.nodes[fu_leader(&cl, 20000)].endpoint, 5000);
	cr_assert_eq(cu_call(&c, SETTLE__V1__METHOD__BEGIN, &req.base, &r), 0);
	cr_assert_eq(r.code, SETTLE__V1__CODE__OK, "%s", r.msg);
	resp = cu_unpack(&r, &settle__v1__begin_response__descriptor);
	n = resp->n_branch_ids;
	settle__v1__begin_response__free_unpacked(resp, NULL);
	cu_reply_free(&r);
	cu_close(&c);
	return n;
}

Test(features, a_level_1_member_holds_the_cluster_back_until_upgraded)
{
	const char *const old[] = {"--feature-level", "1", NULL};
	const char *const *const own[3] = {NULL, NULL, old};
	int alice = 1000, bob = 500;

	fu_cluster_start_with(&cl, 3, NULL, own);
	fu_bank_start(&bank_a, NULL, "bank-a", "alice=1000", NULL);
	fu_bank_start(&bank_b, NULL, "bank-b", "bob=500", NULL);
	/* Rounds run every 2 s: several have asked node 3 by now. */
	tu_sleep_ms(5000);
	for (int i = 0; i < 3; i++) {
		Settle__V1__StatusResponse *st =
		    status_at(cl.nodes[i].endpoint);
		cr_expect_eq(st->cluster_feature_level, 1, "node %d", i + 1);
		cr_expect_eq(st->feature_level, i == 2 ? 1u : FSM_LEVEL,
			     "node %d", i + 1);
		settle__v1__status_response__free_unpacked(st, NULL);
	}
	cr_expect_eq(raw_begin_ids(), 0, "branches kept below level 2");
	settle_client *c = cluster_client();
	transfer(c, &alice, &bob);
	transfer(c, &alice, &bob);

	/* The upgrade: node 3 restarted as a level-2 release. */
	it_stop(cl.nodes[2].proc);
	drop_arg(cl.nodes[2].proc, "--feature-level");
	it_restart(cl.nodes[2].proc);
	cr_assert(fu_wait_level(&cl, FSM_LEVEL, 30000),
		  "the cluster did not reach feature level %d", FSM_LEVEL);
	cr_expect_eq(raw_begin_ids(), 1, "branches kept at level 2");
	for (int k = 0; k < 5; k++)
		transfer(c, &alice, &bob);
	settle_client_close(c);
	cr_assert(fu_wait_caught_up(&cl, 30000));
	/* Every node applied the level-2 commands: each has the same
	 * transactions as the leader (a node that skipped them would not
	 * have the last transfers finished). */
	for (int i = 0; i < 3; i++) {
		Settle__V1__StatusResponse *st =
		    status_at(cl.nodes[i].endpoint);
		cr_expect_eq(st->cluster_feature_level, FSM_LEVEL, "node %d",
			     i + 1);
		settle__v1__status_response__free_unpacked(st, NULL);
	}
	fu_assert_no_sanitizer_reports(&cl);
}

static int add_node(const char *at, uint64_t id, const char *raft,
		    const char *client, char *msg, size_t len)
{
	Settle__V1__ClusterAddRequest req =
	    SETTLE__V1__CLUSTER_ADD_REQUEST__INIT;
	static const struct timeval wait = {60, 0};
	struct cu_reply r;
	struct cu_conn c;
	int code;

	req.id = id;
	req.raft_address = (char *)raft;
	req.client_endpoint = (char *)client;
	cu_connect(&c, at, 5000);
	setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
	cr_assert_eq(
	    cu_call(&c, SETTLE__V1__METHOD__CLUSTER_ADD, &req.base, &r), 0);
	code = r.code;
	snprintf(msg, len, "%s", r.msg);
	cu_reply_free(&r);
	cu_close(&c);
	return code;
}

/* Members of the raft configuration, as the first node sees them. */
static size_t members(void)
{
	Settle__V1__ClusterMembersRequest req =
	    SETTLE__V1__CLUSTER_MEMBERS_REQUEST__INIT;
	Settle__V1__ClusterMembersResponse *resp;
	struct cu_reply r;
	struct cu_conn c;
	size_t n;

	cu_connect(&c, cl.nodes[0].endpoint, 5000);
	cr_assert_eq(
	    cu_call(&c, SETTLE__V1__METHOD__CLUSTER_MEMBERS, &req.base, &r), 0);
	cr_assert_eq(r.code, SETTLE__V1__CODE__OK, "%s", r.msg);
	resp = cu_unpack(&r, &settle__v1__cluster_members_response__descriptor);
	n = resp->n_members;
	settle__v1__cluster_members_response__free_unpacked(resp, NULL);
	cu_reply_free(&r);
	cu_close(&c);
	return n;
}

Test(features, a_joiner_below_the_cluster_level_is_refused)
{
	char data[600], ep[64], raft[64], msg[512];
	int port = it_free_port_pair();

	fu_cluster_start(&cl, 1, NULL);
	cr_assert(fu_wait_level(&cl, FSM_LEVEL, 30000));
	snprintf(data, sizeof(data), "%s/joiner", it_dir());
	cr_assert_eq(mkdir(data, 0755), 0);
	snprintf(ep, sizeof(ep), "127.0.0.1:%d", port);
	snprintf(raft, sizeof(raft), "127.0.0.1:%d", port + 1);
	char *argv[] = {(char *)it_bin("settled"),
			"--id",
			"2",
			"--data",
			data,
			"--listen",
			ep,
			"--raft",
			raft,
			"--join",
			"--feature-level",
			"1",
			NULL};
	struct it_proc *j = it_spawn("joiner", argv);
	it_wait_port(j, port, 20000);

	int code =
	    add_node(cl.nodes[0].endpoint, 2, raft, ep, msg, sizeof(msg));
	cr_expect_eq(code, SETTLE__V1__CODE__WRONG_STATE, "%s", msg);
	char want[32];
	snprintf(want, sizeof(want), "level %d", FSM_LEVEL);
	cr_expect(strstr(msg, "feature level 1") != NULL &&
		      strstr(msg, want) != NULL,
		  "%s", msg);
	cr_expect_eq(members(), 1, "nothing was added");

	it_stop(j);
	drop_arg(j, "--feature-level");
	it_restart(j);
	it_wait_port(j, port, 20000);
	code = add_node(cl.nodes[0].endpoint, 2, raft, ep, msg, sizeof(msg));
	cr_expect_eq(code, SETTLE__V1__CODE__OK, "%s", msg);
	cr_expect_eq(members(), 2);
	uint32_t level = 0;
	for (int tries = 0; tries < 100 && level < FSM_LEVEL; tries++) {
		Settle__V1__StatusResponse *st = status_at(ep);
		level = st->cluster_feature_level;
		settle__v1__status_response__free_unpacked(st, NULL);
		if (level < FSM_LEVEL)
			tu_sleep_ms(100);
	}
	cr_expect_eq(level, FSM_LEVEL,
		     "the joiner applied the cluster's level");
}

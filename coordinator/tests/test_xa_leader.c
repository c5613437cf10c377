/*
 * The leader as transaction manager of real XA resource managers: a
 * settled with --xa-rm-file for the PostgreSQL and MariaDB test servers
 * (scripts/xa-servers), and this program as the initiator. It checks what
 * coordinator/xa_drive.c does: phase 2 at both RMs after a one-phase
 * Commit, the deadline's rollback of branches prepared but never voted,
 * and the recovery scan (orphans of our formatID rolled back, foreign
 * XIDs left alone). The SIGKILL suite is test/integration/test_xa_tm.c.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "servers.h"
#include "settle.h"
#include "xa/rm.h"
#include "xa/xid.h"

#define FID 0x53544c45 /* settled's default formatID */
#define PG  XA_RM_POSTGRESQL
#define MY  XA_RM_MARIADB

TestSuite(xa_leader, .timeout = 120);

static unsigned seq;

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

static struct xa_rm *rm_open(enum xa_rm_kind k)
{
	char err[512];
	struct xa_rm *rm = NULL;
	int rv = xa_rm_open(k, xt_conninfo(k), &rm, err, sizeof err);

	cr_assert_eq(rv, 0, "open %s: %s", k == PG ? "pg" : "mariadb", err);
	return rm;
}

#define RM_OK(rm, call)                                                        \
	do {                                                                   \
		int rv_ = (call);                                              \
		cr_assert_eq(rv_, 0, "%s: %s (%s)", #call,                     \
			     settle_strerror(rv_), xa_rm_errmsg(rm));          \
	} while (0)

/* A tag unique to this test: gids, tables. */
static void tag(char *buf, size_t cap)
{
	snprintf(buf, cap, "xl%ld%d%u", (long)time(NULL) % 100000,
		 (int)getpid(), seq++);
}

/* Start settled with the two RMs (from a 0600 file) and extra args. */
static void node_start(struct it_node *n, const char *const *extra)
{
	static char path[600]; /* argv of the node, kept for restarts */
	const char *args[IT_MAX_ARGS];
	int i = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/rms.conf", it_dir());
	f = fopen(path, "w");
	cr_assert_not_null(f);
	/* One call per line: xt_conninfo() may reuse its buffer. */
	/* The PostgreSQL test server trusts local users: the password is
	 * ignored there, and must never reach the node's log. */
	fprintf(f, "# the test servers\npg=pg:%s password=s3cret\n",
		xt_conninfo(PG));
	fprintf(f, "my=mariadb:%s\n", xt_conninfo(MY));
	fclose(f);
	cr_assert_eq(chmod(path, 0600), 0);
	args[i++] = "--xa-rm-file";
	args[i++] = path;
	while (extra != NULL && *extra != NULL)
		args[i++] = *extra++;
	args[i] = NULL;
	it_node_start(n, 1, args);
}

/* Whether the process's log holds text. */
static bool log_has(const struct it_proc *p, const char *text)
{
	FILE *f = fopen(p->log, "r");
	char line[4096];
	bool found = false;

	cr_assert_not_null(f, "%s", p->log);
	while (!found && fgets(line, sizeof line, f) != NULL)
		found = strstr(line, text) != NULL;
	fclose(f);
	return found;
}

static settle_client *client(const struct it_node *n)
{
	settle_client *c = NULL;

	cr_assert_eq(settle_client_open(n->endpoint, NULL, &c), 0);
	return c;
}

/* The node's own STATUS; free with protobuf_c_message_free_unpacked. */
static Settle__V1__StatusResponse *status(const struct it_node *n)
{
	Settle__V1__StatusRequest req = SETTLE__V1__STATUS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	settle_client *c = client(n);

	cr_assert_eq(settle_client_call_at(
			 c, n->endpoint, SETTLE__V1__METHOD__STATUS, &req.base,
			 &settle__v1__status_response__descriptor, &resp),
		     0, "%s", settle_client_errmsg(c));
	settle_client_close(c);
	return (Settle__V1__StatusResponse *)resp;
}

/* Status's heuristic_txs once it equals want (it is recounted at most
 * every 5 s), or its last value after 15 s. */
static uint64_t wait_heuristic_txs(const struct it_node *n, uint64_t want)
{
	uint64_t got = UINT64_MAX;

	for (int i = 0; i < 60 && got != want; i++) {
		Settle__V1__StatusResponse *st = status(n);

		got = st->heuristic_txs;
		protobuf_c_message_free_unpacked(&st->base, NULL);
		if (got != want)
			sleep_ms(250);
	}
	return got;
}

/* Is xid prepared at the RM? */
static bool in_doubt(enum xa_rm_kind k, const struct xa_xid *xid)
{
	struct xa_rm *rm = rm_open(k);
	struct xa_xid *xs = NULL;
	size_t n = 0;
	bool found = false;

	RM_OK(rm, xa_rm_recover(rm, XA_RM_ANY_FORMAT, &xs, &n));
	for (size_t i = 0; i < n; i++)
		found = found || xa_xid_equal(&xs[i], xid);
	free(xs);
	xa_rm_close(rm);
	return found;
}

static bool wait_gone(enum xa_rm_kind k, const struct xa_xid *xid,
		      int timeout_ms)
{
	for (int t = 0; t < timeout_ms; t += 100) {
		if (!in_doubt(k, xid))
			return true;
		sleep_ms(100);
	}
	return false;
}

static int64_t balance(enum xa_rm_kind k, const char *table, const char *id)
{
	struct xa_rm *rm = rm_open(k);
	char sql[256];
	int64_t v = -1;

	snprintf(sql, sizeof sql, "SELECT bal FROM %s WHERE id = '%s'", table,
		 id);
	RM_OK(rm, xa_rm_query_int(rm, sql, &v));
	xa_rm_close(rm);
	return v;
}

static void make_table(enum xa_rm_kind k, const char *table, int64_t bal)
{
	struct xa_rm *rm = rm_open(k);
	char sql[256];

	snprintf(sql, sizeof sql,
		 "CREATE TABLE %s (id VARCHAR(16) PRIMARY KEY, bal BIGINT)%s",
		 table, k == MY ? " ENGINE=InnoDB" : "");
	RM_OK(rm, xa_rm_exec(rm, sql));
	snprintf(sql, sizeof sql, "INSERT INTO %s VALUES ('a', %lld)", table,
		 (long long)bal);
	RM_OK(rm, xa_rm_exec(rm, sql));
	xa_rm_close(rm);
}

/* Register an RM branch of gid; its XID into xid. */
static uint32_t reg(settle_client *c, const char *gid, const char *rm,
		    struct xa_xid *xid)
{
	uint8_t wire[SETTLE_XID_WIRE_MAX];
	size_t len = 0;
	uint32_t bid = 0;
	int rv =
	    settle_xa_register_rm(c, gid, rm, &bid, wire, sizeof wire, &len);

	cr_assert_eq(rv, 0, "register %s: %s", rm, settle_client_errmsg(c));
	cr_assert_eq(xa_xid_decode(wire, len, xid), 0);
	cr_assert_eq(xid->format_id, FID);
	return bid;
}

/* Start xid at rm, run sql, prepare: the initiator's part of a branch. */
static void work_and_prepare(struct xa_rm *rm, const struct xa_xid *xid,
			     const char *sql)
{
	enum xa_rm_vote vote;

	RM_OK(rm, xa_rm_start(rm, xid));
	RM_OK(rm, xa_rm_exec(rm, sql));
	RM_OK(rm, xa_rm_end(rm, xid));
	RM_OK(rm, xa_rm_prepare(rm, xid, &vote));
	cr_assert_eq(vote, XA_RM_VOTE_OK);
}

static int tx_state(settle_client *c, const char *gid)
{
	Settle__V1__TxInfo *tx = NULL;
	int st;

	cr_assert_eq(settle_query(c, gid, false, &tx), 0, "query %s: %s", gid,
		     settle_client_errmsg(c));
	st = tx->state;
	settle_tx_info_free(tx);
	return st;
}

Test(xa_leader, pg_to_mariadb_transfer_committed_by_the_leader)
{
	struct it_node n;
	char t[32], gid[64], sql[256];
	struct xa_xid xp, xm;
	uint32_t bp, bm;
	struct xa_rm *p, *m;
	settle_client *c;
	int state = 0;
	bool finished = false;

	it_setup();
	node_start(&n, NULL);
	tag(t, sizeof t);
	make_table(PG, t, 100);
	make_table(MY, t, 100);
	c = client(&n);
	snprintf(gid, sizeof gid, "g-%s", t);
	cr_assert_eq(
	    settle_xa_begin(c, gid, NULL, 0, false, 30000, NULL, 0, NULL), 0,
	    "%s", settle_client_errmsg(c));
	bp = reg(c, gid, "pg", &xp);
	bm = reg(c, gid, "my", &xm);
	cr_expect_neq(bp, bm);

	p = rm_open(PG);
	m = rm_open(MY);
	snprintf(sql, sizeof sql, "UPDATE %s SET bal = bal - 30 WHERE id='a'",
		 t);
	work_and_prepare(p, &xp, sql);
	snprintf(sql, sizeof sql, "UPDATE %s SET bal = bal + 30 WHERE id='a'",
		 t);
	work_and_prepare(m, &xm, sql);
	cr_assert_eq(settle_xa_vote(c, gid, bp, SETTLE__V1__XA_VOTE__VOTE_OK,
				    NULL, NULL, NULL),
		     0, "%s", settle_client_errmsg(c));
	cr_assert_eq(settle_xa_vote(c, gid, bm, SETTLE__V1__XA_VOTE__VOTE_OK,
				    NULL, NULL, NULL),
		     0, "%s", settle_client_errmsg(c));
	/* MariaDB lets another session commit a prepared branch only once
	 * the session that prepared it is gone. */
	xa_rm_close(p);
	xa_rm_close(m);
	cr_assert(in_doubt(PG, &xp) && in_doubt(MY, &xm));

	cr_assert_eq(settle_xa_commit(c, gid, true, 20000, &state, &finished),
		     0, "%s", settle_client_errmsg(c));
	cr_expect(finished, "phase 2 did not finish (state %d)", state);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(tx_state(c, gid), SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(balance(PG, t, "a"), 70);
	cr_expect_eq(balance(MY, t, "a"), 130);
	cr_expect(!in_doubt(PG, &xp), "pg branch still prepared");
	cr_expect(!in_doubt(MY, &xm), "mariadb branch still prepared");
	settle_client_close(c);
	it_stop(n.proc);
	cr_expect(!log_has(n.proc, "s3cret"), "a password reached the log");
	cr_expect(!log_has(n.proc, "dbname="), "a conninfo reached the log");
	cr_expect(log_has(n.proc, "resource manager my (mariadb)"));
	it_teardown();
}

Test(xa_leader, prepared_but_never_voted_is_rolled_back_by_the_deadline)
{
	struct it_node n;
	char t[32], gid[64], sql[256];
	struct xa_xid xp, xm;
	struct xa_rm *p, *m;
	settle_client *c;

	it_setup();
	node_start(&n, NULL);
	tag(t, sizeof t);
	make_table(PG, t, 100);
	make_table(MY, t, 100);
	c = client(&n);
	snprintf(gid, sizeof gid, "g-%s", t);
	cr_assert_eq(
	    settle_xa_begin(c, gid, NULL, 0, false, 1500, NULL, 0, NULL), 0,
	    "%s", settle_client_errmsg(c));
	reg(c, gid, "pg", &xp);
	reg(c, gid, "my", &xm);
	p = rm_open(PG);
	m = rm_open(MY);
	snprintf(sql, sizeof sql, "UPDATE %s SET bal = 0 WHERE id='a'", t);
	work_and_prepare(p, &xp, sql);
	work_and_prepare(m, &xm, sql);
	/* The initiator dies here: no vote, no commit. */
	xa_rm_close(p);
	xa_rm_close(m);
	cr_expect(wait_gone(PG, &xp, 20000), "pg branch still prepared");
	cr_expect(wait_gone(MY, &xm, 20000), "mariadb branch still prepared");
	cr_expect_eq(tx_state(c, gid), SETTLE__V1__TX_STATE__ROLLED_BACK);
	cr_expect_eq(balance(PG, t, "a"), 100);
	cr_expect_eq(balance(MY, t, "a"), 100);
	settle_client_close(c);
	it_stop(n.proc);
	it_teardown();
}

Test(xa_leader, recovery_rolls_back_orphans_and_leaves_foreign_xids)
{
	static const char *const extra[] = {"--xa-recover-interval", "500ms",
					    NULL};
	struct it_node n;
	char t[32], sql[256];
	struct xa_xid orphan_p, orphan_m, foreign;
	struct xa_rm *p, *m, *f;
	Settle__V1__StatusResponse *st;

	it_setup();
	tag(t, sizeof t);
	make_table(PG, t, 100);
	make_table(MY, t, 100);
	/* Prepared with our formatID for a gid the log never saw. */
	cr_assert_eq(xa_xid_init(&orphan_p, FID, t, strlen(t), "1", 1), 0);
	cr_assert_eq(xa_xid_init(&orphan_m, FID, t, strlen(t), "2", 1), 0);
	cr_assert_eq(xa_xid_init(&foreign, 4242, t, strlen(t), "1", 1), 0);
	p = rm_open(PG);
	m = rm_open(MY);
	f = rm_open(PG);
	snprintf(sql, sizeof sql, "UPDATE %s SET bal = 1 WHERE id='a'", t);
	work_and_prepare(p, &orphan_p, sql);
	work_and_prepare(m, &orphan_m, sql);
	snprintf(sql, sizeof sql, "INSERT INTO %s VALUES ('f', 5)", t);
	work_and_prepare(f, &foreign, sql);
	xa_rm_close(p);
	xa_rm_close(m);
	xa_rm_close(f);

	node_start(&n, extra);
	cr_expect(wait_gone(PG, &orphan_p, 20000), "pg orphan still there");
	cr_expect(wait_gone(MY, &orphan_m, 20000),
		  "mariadb orphan still there");
	cr_expect_eq(balance(PG, t, "a"), 100);
	cr_expect_eq(balance(MY, t, "a"), 100);
	/* Another TM's XID: several scans later, still prepared. */
	sleep_ms(1500);
	cr_expect(in_doubt(PG, &foreign), "foreign XID was touched");
	/* The scans record nothing in the log: Status is their trace. Other
	 * tests' leftovers on the shared servers may add to the counts. */
	st = status(&n);
	cr_expect_geq(st->xa_scans, 2, "scans %" PRIu64, st->xa_scans);
	cr_expect_geq(st->xa_recovered_rollback, 2,
		      "the two orphans rolled back, Status says %" PRIu64,
		      st->xa_recovered_rollback);
	cr_expect_eq(st->heuristic_txs, 0);
	protobuf_c_message_free_unpacked(&st->base, NULL);
	f = rm_open(PG);
	RM_OK(f, xa_rm_rollback(f, &foreign));
	xa_rm_close(f);
	it_stop(n.proc);
	it_teardown();
}

/* The branch bid of gid as the leader shows it. */
static Settle__V1__BranchInfo branch(settle_client *c, const char *gid,
				     uint32_t bid, char *err, size_t cap)
{
	Settle__V1__TxInfo *tx = NULL;
	Settle__V1__BranchInfo b = SETTLE__V1__BRANCH_INFO__INIT;

	cr_assert_eq(settle_query(c, gid, false, &tx), 0, "query %s: %s", gid,
		     settle_client_errmsg(c));
	for (size_t i = 0; i < tx->n_branches; i++) {
		if (tx->branches[i]->branch_id == bid) {
			b.state = tx->branches[i]->state;
			b.attempts = tx->branches[i]->attempts;
			b.heuristic = tx->branches[i]->heuristic;
			snprintf(err, cap, "%s", tx->branches[i]->last_error);
		}
	}
	settle_tx_info_free(tx);
	return b;
}

Test(xa_leader, rm_down_during_phase_two_and_a_clean_stop_meanwhile)
{
	static const char *const extra[] = {"--retry-max", "500ms", NULL};
	struct it_node n;
	char t[32], gid[64], sql[256], err[1100];
	struct xa_xid xp, xm;
	uint32_t bp, bm;
	struct xa_rm *p, *m;
	settle_client *c;
	Settle__V1__BranchInfo b;
	int state = 0;
	bool finished = true;

	it_setup();
	node_start(&n, extra);
	tag(t, sizeof t);
	make_table(PG, t, 100);
	make_table(MY, t, 100);
	c = client(&n);
	snprintf(gid, sizeof gid, "g-%s", t);
	cr_assert_eq(
	    settle_xa_begin(c, gid, NULL, 0, false, 30000, NULL, 0, NULL), 0,
	    "%s", settle_client_errmsg(c));
	bp = reg(c, gid, "pg", &xp);
	bm = reg(c, gid, "my", &xm);
	p = rm_open(PG);
	m = rm_open(MY);
	snprintf(sql, sizeof sql, "UPDATE %s SET bal = bal - 7 WHERE id='a'",
		 t);
	work_and_prepare(p, &xp, sql);
	snprintf(sql, sizeof sql, "UPDATE %s SET bal = bal + 7 WHERE id='a'",
		 t);
	work_and_prepare(m, &xm, sql);
	cr_assert_eq(settle_xa_vote(c, gid, bp, SETTLE__V1__XA_VOTE__VOTE_OK,
				    NULL, NULL, NULL),
		     0);
	cr_assert_eq(settle_xa_vote(c, gid, bm, SETTLE__V1__XA_VOTE__VOTE_OK,
				    NULL, NULL, NULL),
		     0);
	xa_rm_close(p);
	xa_rm_close(m);

	cr_assert_eq(xt_server_kill(MY), 0);
	cr_assert_eq(settle_xa_commit(c, gid, true, 1500, &state, &finished), 0,
		     "%s", settle_client_errmsg(c));
	cr_expect(!finished);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	sleep_ms(1000);
	b = branch(c, gid, bm, err, sizeof err);
	cr_expect_eq(b.state, SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING);
	cr_expect_geq(b.attempts, 1);
	cr_expect(strstr(err, "RMFAIL") != NULL, "last error: %s", err);
	b = branch(c, gid, bp, err, sizeof err);
	cr_expect_eq(b.state, SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTED);

	/* A clean stop does not wait on the dead database. */
	settle_client_close(c);
	it_stop(n.proc);
	cr_assert_eq(xt_servers_start(), 0);
	it_restart(n.proc);
	it_node_wait_leader(&n, 20000);
	c = client(&n);
	cr_assert_eq(settle_wait(c, gid, 20000, &state, &finished), 0, "%s",
		     settle_client_errmsg(c));
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	b = branch(c, gid, bm, err, sizeof err);
	cr_expect_eq(b.state, SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTED);
	cr_expect_eq(b.heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE);
	cr_expect_eq(balance(PG, t, "a"), 93);
	cr_expect_eq(balance(MY, t, "a"), 107);
	cr_expect(!in_doubt(MY, &xm));
	settle_client_close(c);
	it_stop(n.proc);
	it_teardown();
}

Test(xa_leader, read_only_pg_branch_skips_phase_two)
{
	struct it_node n;
	char t[32], gid[64], sql[256], err[1100];
	struct xa_xid xp, xm;
	uint32_t bp, bm;
	struct xa_rm *p, *m;
	settle_client *c;
	enum xa_rm_vote vote;
	Settle__V1__BranchInfo b;
	int state = 0;
	bool finished = false;

	it_setup();
	node_start(&n, NULL);
	tag(t, sizeof t);
	make_table(PG, t, 100);
	make_table(MY, t, 100);
	c = client(&n);
	snprintf(gid, sizeof gid, "g-%s", t);
	cr_assert_eq(
	    settle_xa_begin(c, gid, NULL, 0, false, 30000, NULL, 0, NULL), 0);
	bp = reg(c, gid, "pg", &xp);
	bm = reg(c, gid, "my", &xm);
	p = rm_open(PG);
	RM_OK(p, xa_rm_start(p, &xp));
	snprintf(sql, sizeof sql, "SELECT bal FROM %s WHERE id='a'", t);
	RM_OK(p, xa_rm_exec(p, sql));
	RM_OK(p, xa_rm_prepare(p, &xp, &vote));
	cr_assert_eq(vote, XA_RM_VOTE_RDONLY);
	m = rm_open(MY);
	snprintf(sql, sizeof sql, "UPDATE %s SET bal = 5 WHERE id='a'", t);
	work_and_prepare(m, &xm, sql);
	xa_rm_close(p);
	xa_rm_close(m);
	cr_assert_eq(settle_xa_vote(c, gid, bp,
				    SETTLE__V1__XA_VOTE__VOTE_READ_ONLY, NULL,
				    NULL, NULL),
		     0, "%s", settle_client_errmsg(c));
	cr_assert_eq(settle_xa_vote(c, gid, bm, SETTLE__V1__XA_VOTE__VOTE_OK,
				    NULL, NULL, NULL),
		     0);
	cr_assert_eq(settle_xa_commit(c, gid, true, 20000, &state, &finished),
		     0, "%s", settle_client_errmsg(c));
	cr_expect(finished);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	b = branch(c, gid, bp, err, sizeof err);
	cr_expect_eq(b.state, SETTLE__V1__BRANCH_STATE__XA_BRANCH_READ_ONLY);
	cr_expect_eq(b.attempts, 0, "the leader called a read-only branch");
	cr_expect_eq(balance(MY, t, "a"), 5);
	settle_client_close(c);
	it_stop(n.proc);
	it_teardown();
}

/* The initiator commits its lone branch in one phase and dies before it
 * reports: after the grace (60 s) the leader records the outcome as
 * unknown, and an operator forgets the heuristic once checked. */
Test(xa_leader, one_phase_branch_never_reported_becomes_a_hazard,
     .timeout = 180)
{
	struct it_node n;
	char t[32], gid[64], sql[256], err[1100];
	struct xa_xid xp;
	uint32_t bp;
	struct xa_rm *p;
	settle_client *c;
	Settle__V1__TxInfo *tx = NULL;
	Settle__V1__BranchInfo b;
	int state = 0;
	bool finished = true;

	it_setup();
	node_start(&n, NULL);
	tag(t, sizeof t);
	make_table(PG, t, 100);
	c = client(&n);
	snprintf(gid, sizeof gid, "g-%s", t);
	cr_assert_eq(
	    settle_xa_begin(c, gid, NULL, 0, false, 120000, NULL, 0, NULL), 0);
	bp = reg(c, gid, "pg", &xp);
	p = rm_open(PG);
	RM_OK(p, xa_rm_start(p, &xp));
	snprintf(sql, sizeof sql, "UPDATE %s SET bal = 42 WHERE id='a'", t);
	RM_OK(p, xa_rm_exec(p, sql));
	cr_assert_eq(settle_xa_commit(c, gid, true, 0, &state, &finished), 0,
		     "%s", settle_client_errmsg(c));
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	b = branch(c, gid, bp, err, sizeof err);
	cr_assert_eq(b.state, SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE);
	RM_OK(p, xa_rm_commit(p, &xp, true));
	xa_rm_close(p);
	/* ... and the initiator is gone: no ONE_PHASE_COMMITTED vote. */
	for (int i = 0;
	     i < 90 && tx_state(c, gid) != SETTLE__V1__TX_STATE__COMMITTED; i++)
		sleep_ms(1000);
	cr_assert_eq(tx_state(c, gid), SETTLE__V1__TX_STATE__COMMITTED);
	b = branch(c, gid, bp, err, sizeof err);
	cr_expect_eq(b.state, SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTED);
	cr_expect_eq(b.heuristic, SETTLE__V1__HEURISTIC__HEUR_HAZARD);
	cr_expect_eq(balance(PG, t, "a"), 42);
	cr_assert_eq(settle_query(c, gid, false, &tx), 0);
	cr_expect_eq(tx->heuristic, SETTLE__V1__HEURISTIC__HEUR_HAZARD);
	settle_tx_info_free(tx);
	/* Status counts it until it is forgotten. */
	cr_expect_eq(wait_heuristic_txs(&n, 1), 1);
	cr_expect_eq(settle_xa_forget(c, gid), 0, "%s",
		     settle_client_errmsg(c));
	cr_assert_eq(settle_query(c, gid, false, &tx), 0);
	cr_expect_eq(tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE);
	settle_tx_info_free(tx);
	cr_expect_eq(wait_heuristic_txs(&n, 0), 0);
	settle_client_close(c);
	it_stop(n.proc);
	it_teardown();
}

/* A "database" that accepts TCP connections and never says a word: the
 * leader's scan of it blocks in connect for its whole connect_timeout. */
static int silent_listener(int *port)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t len = sizeof a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(fd, 16), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

Test(xa_leader, a_hung_database_does_not_hold_up_a_clean_stop)
{
	struct it_node n;
	char spec[160];
	const char *extra[] = {"--xa-rm", spec, NULL};
	int port, fd = silent_listener(&port);

	snprintf(spec, sizeof spec,
		 "hung=pg:host=127.0.0.1 port=%d dbname=x connect_timeout=120",
		 port);
	it_setup();
	node_start(&n, extra);
	sleep_ms(500);	 /* the first recovery scan is stuck in connect */
	it_stop(n.proc); /* SIGTERM; asserts a clean exit within 10 s */
	cr_expect(log_has(n.proc, "abandoned"));
	close(fd);
	it_teardown();
}

/* Servers started once by the runner, tests one at a time. */
int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	criterion_options.jobs = 1;
	if (criterion_handle_args(argc, argv, true)) {
		if (xt_servers_setup() != 0) {
			fprintf(stderr,
				"xa leader tests: FAIL: no XA servers\n");
			xt_servers_teardown();
			criterion_finalize(tests);
			return 1;
		}
		result = !criterion_run_all_tests(tests);
		xt_servers_teardown();
	}
	criterion_finalize(tests);
	return result;
}

/*
 * test_xa_tm.c — Settle as the transaction manager of real XA resource
 * managers: a real settled (--xa-rm pg=pg:..., maria=mariadb:...) drives
 * the PostgreSQL 15 and MariaDB 10.11 test servers (xa/tests/servers.h,
 * started once by this runner through scripts/xa-servers: missing servers
 * fail the run, never skip it), and the demo initiator settle-xa-transfer
 * moves money between an account in each (examples/xa_transfer.c).
 *
 * This file: the flows (transfers, rollbacks, one-phase and read-only
 * branches, the recovery scan's orphans, many transfers at once,
 * settlectl's view); test_xa_tm_faults.c: crashes of settled, of the
 * initiator and of the databases. Every test checks the outcome at the
 * databases themselves: balances, and that no XID of the transaction is
 * left prepared (pg_prepared_xacts, XA RECOVER). docs/RELIABILITY.md lists
 * what each test does and checks.
 *
 * One test at a time: some kill and restart the shared servers.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xa_util.h"

#define TX(s)	  SETTLE__V1__TX_STATE__##s
#define BR(s)	  SETTLE__V1__BRANCH_STATE__XA_BRANCH_##s
#define ARGS(...) XU_ARGS(__VA_ARGS__)

static void init(void)
{
	xu_setup();
}

static void fini(void)
{
	xu_teardown();
}

TestSuite(xa_tm, .init = init, .fini = fini, .timeout = 60);

/*
 * PG -> MariaDB and back, each committed on both sides by the leader;
 * the XIDs are the cluster's (formatID, gtrid = gid, bqual = branch id).
 */
Test(xa_tm, transfer_both_ways)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE], gid2[SETTLE_GID_BUFSIZE];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	char want[XA_XID_TEXT_MAX];
	struct xa_xid x;
	const Settle__V1__BranchInfo *b;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);

	xu_transfer_ok(n.endpoint, &a, true, "30", gid);
	xu_expect_balances(&a, 70, 130);
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->mode, SETTLE__V1__TX_MODE__XA);
	cr_assert_eq((int)tx->state, TX(COMMITTED), "%s", xu_describe(tx));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	xu_expect_branch(tx, XU_RM_PG, BR(COMMITTED));
	xu_expect_branch(tx, XU_RM_MY, BR(COMMITTED));
	/* The XID the leader committed is the one built from the gid. */
	b = xu_branch(tx, XU_RM_PG);
	cr_assert_eq(xa_xid_init(&x, XU_FORMAT_ID, gid, strlen(gid), "1", 1),
		     0);
	cr_assert_eq(xa_xid_format(&x, want, sizeof(want)), 0);
	cr_assert_eq(b->branch_id, 1);
	cr_assert_str_eq(b->xid, want, "branch 1's XID");
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);

	xu_transfer_ok(n.endpoint, &a, false, "10", gid2);
	cr_assert_str_neq(gid, gid2);
	xu_expect_balances(&a, 80, 120);
	tx = xu_query(c, gid2);
	cr_assert_eq((int)tx->state, TX(COMMITTED), "%s", xu_describe(tx));
	xu_expect_branch(tx, XU_RM_PG, BR(COMMITTED));
	xu_expect_branch(tx, XU_RM_MY, BR(COMMITTED));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid2);
	xu_assert_clean(n.proc);
}

/*
 * Phase 2 by the initiator (--phase2-ms): each branch committed on the
 * session that prepared it and reported. The leader would wait 30 s
 * before committing anything itself, so a transaction COMMITTED as soon
 * as the initiator exits was committed by the initiator. Then a
 * read-only transfer of that kind: nothing is left for phase 2.
 */
Test(xa_tm, phase_two_by_the_initiator)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	int st;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);
	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "30", "--phase2-ms", "30000"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->state, TX(COMMITTED), "%s", xu_describe(tx));
	xu_expect_branch(tx, XU_RM_PG, BR(COMMITTED));
	xu_expect_branch(tx, XU_RM_MY, BR(COMMITTED));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 70, 130);

	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "30", "--read-only", "--phase2-ms",
			      "30000"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->state, TX(COMMITTED), "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_balances(&a, 70, 130);
	xu_assert_clean(n.proc);
}

/* The same asked of a cluster below feature level 6: the initiator lets
 * go of its sessions and the leader commits, as before. */
Test(xa_tm, phase_two_on_an_older_cluster)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	int st;

	xu_node_start(&n, 1, ARGS("--feature-level", "5"));
	c = xu_client(n.endpoint);
	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "30", "--phase2-ms", "30000"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 15000);
	tx = xu_query(c, gid);
	xu_expect_branch(tx, XU_RM_PG, BR(COMMITTED));
	xu_expect_branch(tx, XU_RM_MY, BR(COMMITTED));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 70, 130);
	xu_assert_clean(n.proc);
}

/*
 * Transfers that must not happen: not enough money (the debit branch
 * votes rollback: exit 3), --abort (the credit branch votes rollback after
 * the debit branch prepared: the leader rolls the prepared one back) and
 * --rollback (both prepared and voted, then Rollback).
 */
Test(xa_tm, rollbacks)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	int st;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);

	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "500"),
			 gid, NULL);
	cr_assert_eq(st, 3, "insufficient funds: exit %d", st);
	xu_wait_state(c, n.proc, gid, TX(ROLLED_BACK), 10000);
	tx = xu_query(c, gid);
	cr_assert(strstr(tx->reason, "insufficient funds"), "%s",
		  xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_balances(&a, 100, 100);
	xu_expect_nothing_in_doubt(gid);

	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "40", "--abort"),
			 gid, NULL);
	cr_assert_eq(st, 0, "--abort: exit %d", st);
	xu_wait_state(c, n.proc, gid, TX(ROLLED_BACK), 10000);
	tx = xu_query(c, gid);
	/* Branch 1 (PostgreSQL) had prepared: the leader rolled it back. */
	xu_expect_branch(tx, XU_RM_PG, BR(ROLLED_BACK));
	xu_expect_branch(tx, XU_RM_MY, BR(ROLLED_BACK));
	settle_tx_info_free(tx);
	xu_expect_balances(&a, 100, 100);
	xu_expect_nothing_in_doubt(gid);

	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "40", "--rollback"),
			 gid, NULL);
	cr_assert_eq(st, 0, "--rollback: exit %d", st);
	xu_wait_state(c, n.proc, gid, TX(ROLLED_BACK), 10000);
	xu_expect_balances(&a, 100, 100);
	xu_expect_nothing_in_doubt(gid);
	xu_assert_clean(n.proc);
}

/* Wait for each of the n runs; each must end with exit 0 or 1, and its
 * transaction committed or rolled back as it said, with nothing left in
 * doubt. Returns how many committed; committed[i] says which. */
static int finish_runs(settle_client *c, const struct it_node *n,
		       struct xu_run *runs, int count, bool *committed)
{
	int i, ok = 0;

	for (i = 0; i < count; i++) {
		char gid[SETTLE_GID_BUFSIZE];
		Settle__V1__TxInfo *tx;
		int st = xu_transfer_wait(&runs[i], gid, 40000);

		cr_assert(st == 0 || st == 1, "transfer %d: exit %d (%s)", i,
			  st, runs[i].out);
		cr_assert(gid[0] != '\0', "transfer %d began nothing (%s)", i,
			  runs[i].out);
		xu_wait_state(c, n->proc, gid,
			      st == 0 ? TX(COMMITTED) : TX(ROLLED_BACK), 20000);
		tx = xu_query(c, gid);
		cr_assert_eq((int)tx->heuristic,
			     SETTLE__V1__HEURISTIC__HEURISTIC_NONE, "%s",
			     xu_describe(tx));
		settle_tx_info_free(tx);
		xu_expect_nothing_in_doubt(gid);
		committed[i] = st == 0;
		ok += st == 0;
	}
	return ok;
}

/*
 * Transfers at once. Twelve on twelve pairs of accounts: the leader's RM
 * pools serve their branches together, and every one commits. Then six on
 * one pair, half in each direction: those that deadlock across the two
 * databases (each holds the row the other waits for, a cycle neither
 * database sees) end by their lock timeout and roll back; every
 * transaction ends as its initiator said, the balances match the
 * committed ones, and no lock is left behind.
 */
Test(xa_tm, concurrent_transfers)
{
	enum { N = 12, M = 6 };
	struct it_node n;
	struct xu_accounts pairs[N], a;
	struct xu_run runs[N];
	bool committed[N];
	int i, ok, pg_delta = 0;
	settle_client *c;

	for (i = 0; i < N; i++) {
		snprintf(pairs[i].pg, sizeof(pairs[i].pg), "a%d_%s", i,
			 xu_tag());
		snprintf(pairs[i].my, sizeof(pairs[i].my), "b%d_%s", i,
			 xu_tag());
		xu_account(XU_PG, pairs[i].pg, 100);
		xu_account(XU_MY, pairs[i].my, 100);
	}
	a = xu_open_accounts(1000, 1000);
	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);

	for (i = 0; i < N; i++) {
		bool from_pg = i % 2 == 0;
		const struct xu_accounts *p = &pairs[i];

		xu_transfer_start(&runs[i], n.endpoint,
				  ARGS("--from", from_pg ? "pg" : "mariadb",
				       "--from-account",
				       from_pg ? p->pg : p->my, "--to-account",
				       from_pg ? p->my : p->pg, "--amount",
				       "10", "--timeout-ms", "20000"));
	}
	ok = finish_runs(c, &n, runs, N, committed);
	cr_assert_eq(ok, N, "only %d of %d independent transfers committed", ok,
		     N);
	for (i = 0; i < N; i++) {
		int64_t d = i % 2 == 0 ? -10 : 10;

		xu_expect_balances(&pairs[i], 100 + d, 100 - d);
	}

	for (i = 0; i < M; i++) {
		bool from_pg = i % 2 == 0;

		xu_transfer_start(&runs[i], n.endpoint,
				  ARGS("--from", from_pg ? "pg" : "mariadb",
				       "--from-account", from_pg ? a.pg : a.my,
				       "--to-account", from_pg ? a.my : a.pg,
				       "--amount", from_pg ? "10" : "1",
				       "--lock-timeout-ms", "1000",
				       "--timeout-ms", "20000"));
	}
	ok = finish_runs(c, &n, runs, M, committed);
	fprintf(stderr, "contended transfers: %d of %d committed\n", ok, M);
	for (i = 0; i < M; i++)
		if (committed[i])
			pg_delta += i % 2 == 0 ? -10 : 1;
	xu_expect_balances(&a, 1000 + pg_delta, 1000 - pg_delta);
	/* Nothing was left locked: a transfer alone goes through. */
	{
		char gid[SETTLE_GID_BUFSIZE];

		xu_transfer_ok(n.endpoint, &a, true, "100", gid);
		xu_expect_balances(&a, 900 + pg_delta, 1100 - pg_delta);
	}
	xu_assert_clean(n.proc);
}

/* Prepare a branch inserting key into the account table, outside Settle,
 * and leave it prepared (the connection closes). */
static void prepare_outside(enum xa_rm_kind kind, const struct xa_xid *xid,
			    const char *key)
{
	struct xa_rm *rm = xu_rm(kind);
	enum xa_rm_vote v = XA_RM_VOTE_ROLLBACK;
	char sql[300];
	int rv;

	xu_table(kind);
	cr_assert_eq(xa_rm_start(rm, xid), 0, "%s", xa_rm_errmsg(rm));
	snprintf(sql, sizeof(sql),
		 "INSERT INTO settle_xa_accounts (name, balance) "
		 "VALUES ('%s', 7)",
		 key);
	cr_assert_eq(xa_rm_exec(rm, sql), 0, "%s", xa_rm_errmsg(rm));
	rv = xa_rm_prepare(rm, xid, &v);
	cr_assert(rv == 0 && v == XA_RM_VOTE_OK, "prepare: %s",
		  xa_rm_errmsg(rm));
	xa_rm_close(rm);
}

static bool wait_gone(enum xa_rm_kind kind, const struct xa_xid *xid,
		      int timeout_ms)
{
	int waited;

	for (waited = 0; waited < timeout_ms; waited += 100) {
		if (!xu_prepared(kind, xid))
			return true;
		xu_sleep_ms(100);
	}
	return !xu_prepared(kind, xid);
}

/*
 * In-doubt XIDs that Settle's log does not account for: with the
 * cluster's formatID and an unknown gid they are orphans of a crashed
 * initiator or coordinator, rolled back by the leader's recovery scan
 * (presumed abort). Left alone: another formatID or a PostgreSQL gid not
 * in Settle's encoding (another TM's), and an XID naming a branch that a
 * known transaction never registered (nobody decided anything for it: an
 * operator's business).
 */
Test(xa_tm, recovery_scan_orphans)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	struct xa_xid orphan, foreign, stray;
	char gtrid[64], fgtrid[64], okey[64], fkey[64], skey[64], pgfgid[80];
	char gid[SETTLE_GID_BUFSIZE], sql[300];
	struct xa_rm *rm;
	int64_t cnt = -1;

	snprintf(gtrid, sizeof(gtrid), "orphan-%s", xu_tag());
	snprintf(fgtrid, sizeof(fgtrid), "foreign-%s", xu_tag());
	snprintf(okey, sizeof(okey), "o_%s", xu_tag());
	snprintf(fkey, sizeof(fkey), "f_%s", xu_tag());
	snprintf(skey, sizeof(skey), "s_%s", xu_tag());
	snprintf(pgfgid, sizeof(pgfgid), "foreign-%s", xu_tag());
	cr_assert_eq(
	    xa_xid_init(&orphan, XU_FORMAT_ID, gtrid, strlen(gtrid), "1", 1),
	    0);
	cr_assert_eq(
	    xa_xid_init(&foreign, 0x1234, fgtrid, strlen(fgtrid), "1", 1), 0);
	prepare_outside(XU_PG, &orphan, okey);
	prepare_outside(XU_MY, &orphan, okey);
	prepare_outside(XU_MY, &foreign, fkey);
	/* PostgreSQL: a gid another TM chose, not "settle:...". */
	rm = xu_rm(XU_PG);
	snprintf(sql, sizeof(sql),
		 "BEGIN; INSERT INTO settle_xa_accounts (name, balance) "
		 "VALUES ('%s', 7); PREPARE TRANSACTION '%s'",
		 fkey, pgfgid);
	cr_assert_eq(xa_rm_exec(rm, sql), 0, "%s", xa_rm_errmsg(rm));
	xa_rm_close(rm);

	xu_node_start(&n, 1, NULL);
	/* Branch 7 of a committed transaction that has two. */
	xu_transfer_ok(n.endpoint, &a, true, "1", gid);
	cr_assert_eq(
	    xa_xid_init(&stray, XU_FORMAT_ID, gid, strlen(gid), "7", 1), 0);
	prepare_outside(XU_MY, &stray, skey);

	/* Scanned when the node became leader, then every second. */
	cr_assert(wait_gone(XU_PG, &orphan, 8000),
		  "the orphan is still prepared in PostgreSQL");
	cr_assert(wait_gone(XU_MY, &orphan, 8000),
		  "the orphan is still prepared in MariaDB");
	cr_assert_eq(xu_balance(XU_PG, okey), -1, "orphan rolled back");
	cr_assert_eq(xu_balance(XU_MY, okey), -1, "orphan rolled back");

	/* Two more scans: the others are still there. */
	xu_sleep_ms(2500);
	cr_assert(it_alive(n.proc));
	cr_assert(xu_prepared(XU_MY, &foreign),
		  "a foreign formatID's XID was touched");
	cr_assert(xu_prepared(XU_MY, &stray),
		  "an XID naming no branch of its transaction was touched");
	rm = xu_rm(XU_PG);
	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(*) FROM pg_prepared_xacts WHERE gid = '%s'",
		 pgfgid);
	cr_assert_eq(xa_rm_query_int(rm, sql, &cnt), 0, "%s", xa_rm_errmsg(rm));
	cr_assert_eq(cnt, 1, "a foreign PostgreSQL gid was touched");
	snprintf(sql, sizeof(sql), "ROLLBACK PREPARED '%s'", pgfgid);
	cr_assert_eq(xa_rm_exec(rm, sql), 0, "%s", xa_rm_errmsg(rm));
	xa_rm_close(rm);
	rm = xu_rm(XU_MY);
	cr_assert_eq(xa_rm_rollback(rm, &foreign), 0, "%s", xa_rm_errmsg(rm));
	cr_assert_eq(xa_rm_rollback(rm, &stray), 0, "%s", xa_rm_errmsg(rm));
	xa_rm_close(rm);
	xu_assert_clean(n.proc);
}

/* One branch: Commit(one_phase) before any prepare, the initiator commits
 * it in one phase and reports ONE_PHASE_COMMITTED. */
Test(xa_tm, single_branch_one_phase)
{
	struct it_node n;
	char p1[64], p2[64], m1[64], m2[64], gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	const Settle__V1__BranchInfo *b;
	int st;

	snprintf(p1, sizeof(p1), "p1_%s", xu_tag());
	snprintf(p2, sizeof(p2), "p2_%s", xu_tag());
	snprintf(m1, sizeof(m1), "m1_%s", xu_tag());
	snprintf(m2, sizeof(m2), "m2_%s", xu_tag());
	xu_account(XU_PG, p1, 50);
	xu_account(XU_PG, p2, 0);
	xu_account(XU_MY, m1, 50);
	xu_account(XU_MY, m2, 0);
	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);

	st = xu_transfer(n.endpoint,
			 ARGS("--single", "pg", "--from-account", p1,
			      "--to-account", p2, "--amount", "20"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->state, TX(COMMITTED), "%s", xu_describe(tx));
	cr_assert_eq(tx->n_branches, 1);
	b = xu_branch(tx, XU_RM_PG);
	cr_assert_eq((int)b->state, BR(COMMITTED), "%s", xu_describe(tx));
	/* The leader never called the database for it. */
	cr_assert_eq(b->attempts, 0, "%s", xu_describe(tx));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE);
	settle_tx_info_free(tx);
	cr_assert_eq(xu_balance(XU_PG, p1), 30);
	cr_assert_eq(xu_balance(XU_PG, p2), 20);
	xu_expect_nothing_in_doubt(gid);

	st = xu_transfer(n.endpoint,
			 ARGS("--single", "mariadb", "--from-account", m1,
			      "--to-account", m2, "--amount", "50"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 5000);
	cr_assert_eq(xu_balance(XU_MY, m1), 0);
	cr_assert_eq(xu_balance(XU_MY, m2), 50);
	xu_expect_nothing_in_doubt(gid);

	/* Not enough left: the lone branch votes rollback. */
	st = xu_transfer(n.endpoint,
			 ARGS("--single", "mariadb", "--from-account", m1,
			      "--to-account", m2, "--amount", "1"),
			 gid, NULL);
	cr_assert_eq(st, 3, "exit %d", st);
	xu_wait_state(c, n.proc, gid, TX(ROLLED_BACK), 5000);
	cr_assert_eq(xu_balance(XU_MY, m2), 50);
	xu_assert_clean(n.proc);
}

/* Begin, register one branch on rm, start it on a fresh connection and
 * move amount from account from to account to, inside it. */
static struct xa_rm *one_branch(settle_client *c, enum xa_rm_kind kind,
				const char *rm_name, const char *from,
				const char *to, int amount, char *gid,
				uint32_t *bid, struct xa_xid *xid)
{
	uint8_t wire[SETTLE_XID_WIRE_MAX];
	size_t len = 0;
	char sql[300];
	struct xa_rm *rm;

	cr_assert_eq(settle_xa_begin(c, NULL, NULL, 0, false, 30000, gid,
				     SETTLE_GID_BUFSIZE, NULL),
		     0, "begin: %s", settle_client_errmsg(c));
	cr_assert_eq(settle_xa_register_rm(c, gid, rm_name, bid, wire,
					   sizeof(wire), &len),
		     0, "register: %s", settle_client_errmsg(c));
	cr_assert_eq(xa_xid_decode(wire, len, xid), 0);
	rm = xu_rm(kind);
	cr_assert_eq(xa_rm_start(rm, xid), 0, "%s", xa_rm_errmsg(rm));
	snprintf(sql, sizeof(sql),
		 "UPDATE settle_xa_accounts SET balance = balance + "
		 "(CASE WHEN name = '%s' THEN -%d ELSE %d END) "
		 "WHERE name IN ('%s', '%s')",
		 from, amount, amount, from, to);
	cr_assert_eq(xa_rm_exec(rm, sql), 0, "%s", xa_rm_errmsg(rm));
	return rm;
}

/*
 * The one-phase path by hand: a branch XA_BRANCH_ONE_PHASE survives a
 * restart of settled (the leader never touches it: the initiator commits
 * it), and the initiator's report then finishes the transaction; a
 * repeated report is answered the same. An initiator that cannot tell how
 * its one-phase commit ended reports ONE_PHASE_UNKNOWN: committed, with a
 * heuristic hazard shown. A branch on an RM the cluster does not know is
 * refused.
 */
Test(xa_tm, one_phase_across_restart)
{
	struct it_node n;
	char p1[64], p2[64], gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	struct xa_rm *rm;
	struct xa_xid xid;
	uint8_t wire[SETTLE_XID_WIRE_MAX];
	size_t len = 0;
	uint32_t bid = 0;
	int state = 0, bstate = 0;
	bool finished = true;

	snprintf(p1, sizeof(p1), "p1_%s", xu_tag());
	snprintf(p2, sizeof(p2), "p2_%s", xu_tag());
	xu_account(XU_PG, p1, 50);
	xu_account(XU_PG, p2, 0);
	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);

	cr_assert_eq(settle_xa_begin(c, NULL, NULL, 0, false, 30000, gid,
				     sizeof(gid), NULL),
		     0);
	cr_assert_eq(settle_xa_register_rm(c, gid, "nosuch", &bid, wire,
					   sizeof(wire), &len),
		     SETTLE_ENOTFOUND, "an unknown RM: %s",
		     settle_client_errmsg(c));
	cr_assert(strstr(settle_client_errmsg(c), "not configured"), "%s",
		  settle_client_errmsg(c));
	cr_assert_eq(settle_rollback(c, gid, "test", 5000, NULL, NULL), 0);

	rm = one_branch(c, XU_PG, XU_RM_PG, p1, p2, 20, gid, &bid, &xid);
	cr_assert_eq(settle_xa_commit(c, gid, true, 0, &state, &finished), 0,
		     "commit: %s", settle_client_errmsg(c));
	cr_assert_eq(state, TX(COMMITTING));
	it_kill(n.proc);
	it_restart(n.proc);
	it_node_wait_leader(&n, 20000);
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->state, TX(COMMITTING), "%s", xu_describe(tx));
	xu_expect_branch(tx, XU_RM_PG, BR(ONE_PHASE));
	settle_tx_info_free(tx);
	cr_assert_eq(xa_rm_commit(rm, &xid, true), 0, "%s", xa_rm_errmsg(rm));
	xa_rm_close(rm);
	cr_assert_eq(settle_xa_vote(c, gid, bid,
				    SETTLE__V1__XA_VOTE__ONE_PHASE_COMMITTED,
				    NULL, &state, &bstate),
		     0, "vote: %s", settle_client_errmsg(c));
	cr_assert_eq(state, TX(COMMITTED));
	cr_assert_eq(bstate, BR(COMMITTED));
	cr_assert_eq(settle_xa_vote(c, gid, bid,
				    SETTLE__V1__XA_VOTE__ONE_PHASE_COMMITTED,
				    NULL, &state, &bstate),
		     0, "the same report again: %s", settle_client_errmsg(c));
	cr_assert_eq(state, TX(COMMITTED));
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	cr_assert_eq(xu_balance(XU_PG, p1), 30);
	cr_assert_eq(xu_balance(XU_PG, p2), 20);

	/* The connection dies before the commit's answer: unknown. (Here it
	 * really rolled back: the hazard is what the operator must check.) */
	rm = one_branch(c, XU_PG, XU_RM_PG, p1, p2, 5, gid, &bid, &xid);
	cr_assert_eq(settle_xa_commit(c, gid, true, 0, &state, &finished), 0,
		     "commit: %s", settle_client_errmsg(c));
	xa_rm_close(rm);
	cr_assert_eq(settle_xa_vote(
			 c, gid, bid, SETTLE__V1__XA_VOTE__ONE_PHASE_UNKNOWN,
			 "connection lost during the commit", &state, &bstate),
		     0, "vote: %s", settle_client_errmsg(c));
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 5000);
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEUR_HAZARD,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	cr_assert_eq(xu_balance(XU_PG, p1), 30);
	xu_expect_nothing_in_doubt(gid);
	xu_assert_clean(n.proc);
}

/*
 * The two-step way, for an initiator that wants the prepared state
 * durable before it decides: after the votes, XA_PREPARE (XA_PREPARED),
 * then Commit without one_phase. Commit without one_phase before the
 * prepare is refused. A transaction of Settle's own (no xid) that stays
 * XA_PREPARED past its deadline is rolled back (presumed abort), and a
 * vote that comes too late is refused.
 */
Test(xa_tm, explicit_prepare_then_commit)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE], gid2[SETTLE_GID_BUFSIZE];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	int st, state = 0;
	bool read_only = true, finished = false;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);
	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "8", "--timeout-ms", "30000",
			      "--stop-after", "vote", "--stop-how", "exit"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	cr_assert_eq(settle_xa_commit(c, gid, false, 0, &state, &finished),
		     SETTLE_ESTATE, "commit before prepare: %s",
		     settle_client_errmsg(c));
	cr_assert_eq(settle_xa_prepare(c, gid, &state, &read_only), 0,
		     "prepare: %s", settle_client_errmsg(c));
	cr_assert_eq(state, TX(XA_PREPARED));
	cr_assert(!read_only);
	cr_assert_eq(settle_xa_commit(c, gid, false, 10000, &state, &finished),
		     0, "commit: %s", settle_client_errmsg(c));
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 10000);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 92, 108);

	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "8", "--timeout-ms", "2500",
			      "--stop-after", "vote", "--stop-how", "exit"),
			 gid2, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	cr_assert_eq(settle_xa_prepare(c, gid2, &state, &read_only), 0,
		     "prepare: %s", settle_client_errmsg(c));
	cr_assert_eq(state, TX(XA_PREPARED));
	xu_wait_state(c, n.proc, gid2, TX(ROLLED_BACK), 15000);
	tx = xu_query(c, gid2);
	xu_expect_branch(tx, XU_RM_PG, BR(ROLLED_BACK));
	xu_expect_branch(tx, XU_RM_MY, BR(ROLLED_BACK));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid2);
	xu_expect_balances(&a, 92, 108);
	cr_assert_eq(settle_xa_commit(c, gid2, false, 0, &state, &finished),
		     SETTLE_ESTATE, "commit after the rollback: %s",
		     settle_client_errmsg(c));
	xu_assert_clean(n.proc);
}

/*
 * Read-only branches skip phase 2. --read-only: both branches only read
 * and vote READ_ONLY: the transaction is committed at Commit with nothing
 * left to do. By hand, a transaction whose PostgreSQL branch only reads
 * and whose MariaDB branch writes: the leader commits MariaDB's and never
 * calls PostgreSQL.
 */
Test(xa_tm, read_only_branch_skips_phase2)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE], m2[64], sql[300];
	uint8_t wire[SETTLE_XID_WIRE_MAX];
	char *out = NULL;
	settle_client *c;
	Settle__V1__TxInfo *tx;
	const Settle__V1__BranchInfo *b;
	struct xa_rm *pg, *my;
	struct xa_xid xp, xm;
	enum xa_rm_vote vp = XA_RM_VOTE_OK, vm = XA_RM_VOTE_RDONLY;
	uint32_t bp = 0, bm = 0;
	size_t len = 0;
	int st, state = 0;
	bool finished = false;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);
	st = xu_transfer(n.endpoint,
			 ARGS("--read-only", "--from-account", a.pg,
			      "--to-account", a.my, "--amount", "100"),
			 gid, &out);
	cr_assert_eq(st, 0, "exit %d", st);
	cr_assert(strstr(out, "VOTE_READ_ONLY"), "no read-only vote: %s", out);
	free(out);
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 5000);
	tx = xu_query(c, gid);
	b = xu_branch(tx, XU_RM_PG);
	cr_assert_eq((int)b->state, BR(READ_ONLY), "%s", xu_describe(tx));
	cr_assert_eq(b->attempts, 0, "phase 2 skipped: %s", xu_describe(tx));
	b = xu_branch(tx, XU_RM_MY);
	cr_assert_eq((int)b->state, BR(READ_ONLY), "%s", xu_describe(tx));
	cr_assert_eq(b->attempts, 0, "phase 2 skipped: %s", xu_describe(tx));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 100, 100);

	/* A check that fails: exit 3, rolled back, nothing moved. */
	st = xu_transfer(n.endpoint,
			 ARGS("--read-only", "--from-account", a.pg,
			      "--to-account", a.my, "--amount", "101"),
			 gid, NULL);
	cr_assert_eq(st, 3, "exit %d", st);
	xu_wait_state(c, n.proc, gid, TX(ROLLED_BACK), 5000);
	xu_expect_nothing_in_doubt(gid);

	/* Mixed: PostgreSQL reads, MariaDB moves 5 from a.my to m2. */
	snprintf(m2, sizeof(m2), "m2_%s", xu_tag());
	xu_account(XU_MY, m2, 0);
	cr_assert_eq(settle_xa_begin(c, NULL, NULL, 0, false, 30000, gid,
				     sizeof(gid), NULL),
		     0, "begin: %s", settle_client_errmsg(c));
	cr_assert_eq(settle_xa_register_rm(c, gid, XU_RM_PG, &bp, wire,
					   sizeof(wire), &len),
		     0, "%s", settle_client_errmsg(c));
	cr_assert_eq(xa_xid_decode(wire, len, &xp), 0);
	cr_assert_eq(settle_xa_register_rm(c, gid, XU_RM_MY, &bm, wire,
					   sizeof(wire), &len),
		     0, "%s", settle_client_errmsg(c));
	cr_assert_eq(xa_xid_decode(wire, len, &xm), 0);
	pg = xu_rm(XU_PG);
	my = xu_rm(XU_MY);
	cr_assert_eq(xa_rm_start(pg, &xp), 0, "%s", xa_rm_errmsg(pg));
	snprintf(sql, sizeof(sql),
		 "SELECT balance FROM settle_xa_accounts WHERE name = '%s'",
		 a.pg);
	{
		int64_t v = 0;

		cr_assert_eq(xa_rm_query_int(pg, sql, &v), 0, "%s",
			     xa_rm_errmsg(pg));
	}
	cr_assert_eq(xa_rm_start(my, &xm), 0, "%s", xa_rm_errmsg(my));
	snprintf(sql, sizeof(sql),
		 "UPDATE settle_xa_accounts SET balance = balance + "
		 "(CASE WHEN name = '%s' THEN -5 ELSE 5 END) "
		 "WHERE name IN ('%s', '%s')",
		 a.my, a.my, m2);
	cr_assert_eq(xa_rm_exec(my, sql), 0, "%s", xa_rm_errmsg(my));
	cr_assert_eq(xa_rm_prepare(pg, &xp, &vp), 0, "%s", xa_rm_errmsg(pg));
	cr_assert_eq(xa_rm_prepare(my, &xm, &vm), 0, "%s", xa_rm_errmsg(my));
	cr_assert_eq(vp, XA_RM_VOTE_RDONLY);
	cr_assert_eq(vm, XA_RM_VOTE_OK);
	xa_rm_close(pg);
	xa_rm_close(my);
	cr_assert_eq(settle_xa_vote(c, gid, bp,
				    SETTLE__V1__XA_VOTE__VOTE_READ_ONLY, NULL,
				    NULL, NULL),
		     0, "%s", settle_client_errmsg(c));
	cr_assert_eq(settle_xa_vote(c, gid, bm, SETTLE__V1__XA_VOTE__VOTE_OK,
				    NULL, NULL, NULL),
		     0, "%s", settle_client_errmsg(c));
	cr_assert_eq(settle_xa_commit(c, gid, true, 10000, &state, &finished),
		     0, "commit: %s", settle_client_errmsg(c));
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 10000);
	tx = xu_query(c, gid);
	b = xu_branch(tx, XU_RM_PG);
	cr_assert_eq((int)b->state, BR(READ_ONLY), "%s", xu_describe(tx));
	cr_assert_eq(b->attempts, 0, "phase 2 skipped: %s", xu_describe(tx));
	b = xu_branch(tx, XU_RM_MY);
	cr_assert_eq((int)b->state, BR(COMMITTED), "%s", xu_describe(tx));
	cr_assert(b->attempts >= 1, "%s", xu_describe(tx));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	cr_assert_eq(xu_balance(XU_MY, a.my), 95);
	cr_assert_eq(xu_balance(XU_MY, m2), 5);
	xu_assert_clean(n.proc);
}

/* settlectl tx show names each branch's RM and XID. */
Test(xa_tm, settlectl_shows_rm_and_xid)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(10, 10);
	char gid[SETTLE_GID_BUFSIZE], want[XA_XID_TEXT_MAX];
	char *out = NULL, *err = NULL;
	struct xa_xid x;
	int st;

	xu_node_start(&n, 1, NULL);
	xu_transfer_ok(n.endpoint, &a, true, "1", gid);
	cr_assert_eq(xa_xid_init(&x, XU_FORMAT_ID, gid, strlen(gid), "2", 1),
		     0);
	cr_assert_eq(xa_xid_format(&x, want, sizeof(want)), 0);
	{
		char *argv[] = {(char *)it_bin("settlectl"),
				"--cluster",
				n.endpoint,
				"tx",
				"show",
				gid,
				NULL};

		st = it_run(argv, &out, &err, 10000);
	}
	cr_assert_eq(st, 0, "settlectl: %s", err);
	cr_assert(strstr(out, "mode:      xa\n"), "mode XA: %s", out);
	cr_assert(strstr(out, XU_RM_MY), "the RM name: %s", out);
	cr_assert(strstr(out, want), "branch 2's XID %s: %s", want, out);
	free(out);
	free(err);
	{
		char json_rm[64], json_xid[XA_XID_TEXT_MAX + 16];
		char *argv[] = {(char *)it_bin("settlectl"),
				"--cluster",
				n.endpoint,
				"--json",
				"tx",
				"show",
				gid,
				NULL};

		st = it_run(argv, &out, &err, 10000);
		cr_assert_eq(st, 0, "settlectl --json: %s", err);
		snprintf(json_rm, sizeof(json_rm), "\"rm\":\"%s\"", XU_RM_MY);
		snprintf(json_xid, sizeof(json_xid), "\"xid\":\"%s\"", want);
		cr_assert(strstr(out, json_rm), "%s in %s", json_rm, out);
		cr_assert(strstr(out, json_xid), "%s in %s", json_xid, out);
		free(out);
		free(err);
	}
	xu_assert_clean(n.proc);
}

/* One test at a time (some restart the servers the others use); the
 * servers are started once, by this runner, before its tests. */
int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	criterion_options.jobs = 1;
	if (criterion_handle_args(argc, argv, true)) {
		if (xt_servers_setup() != 0) {
			fprintf(stderr, "xa tests: FAIL: no XA test servers\n");
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

/*
 * test_xa_tm_faults.c — Settle as the XA transaction manager under
 * crashes (part of the test_xa_tm program, see test_xa_tm.c): settled
 * SIGKILLed before and after the commit decision, a database down during
 * phase 2 or a rollback, the initiator killed before its vote and after
 * Commit, a branch finished by hand (heuristic), a branch the leader cannot
 * commit (an operator retries it), and a leader failover on 3 nodes.
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_faults_util.h"
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

TestSuite(xa_faults, .init = init, .fini = fini, .timeout = 60);

/*
 * settled SIGKILLed after every branch prepared and voted, before Commit:
 * after its restart the deadline rolls both back.
 */
Test(xa_faults, coordinator_killed_before_commit)
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
			      "--amount", "25", "--timeout-ms", "4000",
			      "--stop-after", "vote", "--stop-how", "exit"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->state, TX(ACTIVE), "%s", xu_describe(tx));
	xu_expect_branch(tx, XU_RM_PG, BR(PREPARED));
	xu_expect_branch(tx, XU_RM_MY, BR(PREPARED));
	settle_tx_info_free(tx);
	cr_assert_eq(xu_in_doubt(XU_PG, gid), 1);
	cr_assert_eq(xu_in_doubt(XU_MY, gid), 1);

	it_kill(n.proc);
	it_restart(n.proc);
	it_node_wait_leader(&n, 20000);
	xu_wait_state(c, n.proc, gid, TX(ROLLED_BACK), 15000);
	tx = xu_query(c, gid);
	xu_expect_branch(tx, XU_RM_PG, BR(ROLLED_BACK));
	xu_expect_branch(tx, XU_RM_MY, BR(ROLLED_BACK));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 100, 100);
	xu_assert_clean(n.proc);
}

/*
 * settled SIGKILLed after the commit decision, phase 2 half done: MariaDB
 * is down when Commit is answered, so the leader commits PostgreSQL's
 * branch and keeps retrying MariaDB's; then settled dies, MariaDB comes
 * back, settled restarts and finishes the commit. (A dead RM rather than a
 * slow one: a commit stuck in a stopped server's socket could still run
 * after the coordinator died, and the new leader would rightly report that
 * as a hazard.)
 */
Test(xa_faults, coordinator_killed_after_decision)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	int st, state = 0;
	bool finished = true;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);
	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "60", "--timeout-ms", "30000",
			      "--stop-after", "vote", "--stop-how", "exit"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);

	cr_assert_eq(xt_server_kill(XU_MY), 0, "SIGKILL MariaDB");
	/* What the initiator would have done next. */
	cr_assert_eq(settle_xa_commit(c, gid, true, 0, &state, &finished), 0,
		     "commit: %s", settle_client_errmsg(c));
	cr_assert(state == TX(COMMITTING), "commit answered %s",
		  settle_tx_state_name(state));
	cr_assert(!finished);
	xu_wait_branch(c, n.proc, gid, XU_RM_PG, BR(COMMITTED), 0, 10000);
	xu_wait_branch(c, n.proc, gid, XU_RM_MY, BR(COMMITTING), 1, 10000);

	it_kill(n.proc);
	cr_assert_eq(xt_servers_start(), 0, "restart MariaDB");
	cr_assert_eq(xu_in_doubt(XU_MY, gid), 1,
		     "MariaDB's prepared branch survived its crash");
	it_restart(n.proc);
	it_node_wait_leader(&n, 20000);
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 20000);
	tx = xu_query(c, gid);
	xu_expect_branch(tx, XU_RM_PG, BR(COMMITTED));
	xu_expect_branch(tx, XU_RM_MY, BR(COMMITTED));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 40, 160);
	xu_assert_clean(n.proc);
}

/*
 * Phase 2 by the initiator, which is SIGKILLed the moment the decision is
 * answered, before it committed anything: its sessions end, the branches
 * stay prepared, and once its 2 s are up the leader commits both from its
 * own sessions, with no heuristic (the initiator might have committed
 * them: a NOTA would be its work, not work done outside Settle).
 */
Test(xa_faults, initiator_killed_after_deciding_phase_two)
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
			      "--amount", "40", "--phase2-ms", "2000",
			      "--stop-after", "commit", "--stop-how", "kill"),
			 gid, NULL);
	cr_assert_eq(st, 128 + SIGKILL, "exit %d", st);
	cr_assert(gid[0] != '\0', "no gid printed");
	/* Decided, and left to the initiator for now. */
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->state, TX(COMMITTING), "%s", xu_describe(tx));
	xu_expect_branch(tx, XU_RM_PG, BR(COMMITTING));
	xu_expect_branch(tx, XU_RM_MY, BR(COMMITTING));
	settle_tx_info_free(tx);
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 15000);
	tx = xu_query(c, gid);
	xu_expect_branch(tx, XU_RM_PG, BR(COMMITTED));
	xu_expect_branch(tx, XU_RM_MY, BR(COMMITTED));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 60, 140);
	xu_assert_clean(n.proc);
}

/*
 * settled SIGKILLed the moment Commit is answered, both databases up: the
 * race that test above avoids. Phase 2 may have run at either database or
 * not; whatever the old leader did, after the restart both are committed,
 * nothing is in doubt, and no heuristic is reported: a NOTA at the new
 * leader's first call of a decision it inherited is the old leader's
 * unrecorded commit, not work finished outside Settle.
 */
Test(xa_faults, coordinator_killed_right_after_commit)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	int round, st, state = 0;
	bool finished = true;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);
	for (round = 1; round <= 3; round++) {
		Settle__V1__TxInfo *tx;

		st = xu_transfer(n.endpoint,
				 ARGS("--from-account", a.pg, "--to-account",
				      a.my, "--amount", "10", "--timeout-ms",
				      "30000", "--stop-after", "vote",
				      "--stop-how", "exit"),
				 gid, NULL);
		cr_assert_eq(st, 0, "exit %d", st);
		cr_assert_eq(
		    settle_xa_commit(c, gid, true, 0, &state, &finished), 0,
		    "commit: %s", settle_client_errmsg(c));
		it_kill(n.proc);
		it_restart(n.proc);
		it_node_wait_leader(&n, 20000);
		xu_wait_state(c, n.proc, gid, TX(COMMITTED), 20000);
		tx = xu_query(c, gid);
		xu_expect_branch(tx, XU_RM_PG, BR(COMMITTED));
		xu_expect_branch(tx, XU_RM_MY, BR(COMMITTED));
		cr_assert_eq((int)tx->heuristic,
			     SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
			     "round %d: %s", round, xu_describe(tx));
		settle_tx_info_free(tx);
		xu_expect_nothing_in_doubt(gid);
		xu_expect_balances(&a, 100 - 10 * round, 100 + 10 * round);
	}
	xu_assert_clean(n.proc);
}

/*
 * PostgreSQL SIGKILLed after the votes; the commit decision is made while
 * it is down: the leader commits MariaDB's branch, retries PostgreSQL's
 * until the server is back, then commits it.
 */
Test(xa_faults, rm_down_during_phase2)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	int st, state = 0;
	bool finished = true;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);
	st = xu_transfer(n.endpoint,
			 ARGS("--from", "mariadb", "--from-account", a.my,
			      "--to-account", a.pg, "--amount", "15",
			      "--timeout-ms", "30000", "--stop-after", "vote",
			      "--stop-how", "exit"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	cr_assert_eq(xt_server_kill(XU_PG), 0, "SIGKILL PostgreSQL");
	cr_assert_eq(settle_xa_commit(c, gid, true, 0, &state, &finished), 0,
		     "commit: %s", settle_client_errmsg(c));
	xu_wait_branch(c, n.proc, gid, XU_RM_MY, BR(COMMITTED), 0, 10000);
	/* Two failed attempts: the leader retries, it does not give up. */
	xu_wait_branch(c, n.proc, gid, XU_RM_PG, BR(COMMITTING), 2, 10000);
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->state, TX(COMMITTING), "%s", xu_describe(tx));
	settle_tx_info_free(tx);

	cr_assert_eq(xt_servers_start(), 0, "restart PostgreSQL");
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 20000);
	tx = xu_query(c, gid);
	xu_expect_branch(tx, XU_RM_PG, BR(COMMITTED));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 115, 85);
	xu_assert_clean(n.proc);
}

/*
 * MariaDB SIGKILLed after the votes, and the deadline passes without a
 * Commit: the rollback decision waits for MariaDB like a commit would; its
 * prepared branch is rolled back once the server is back.
 */
Test(xa_faults, rollback_waits_for_rm)
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
			      "--amount", "9", "--timeout-ms", "2000",
			      "--stop-after", "vote", "--stop-how", "exit"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	cr_assert_eq(xt_server_kill(XU_MY), 0, "SIGKILL MariaDB");
	xu_wait_branch(c, n.proc, gid, XU_RM_PG, BR(ROLLED_BACK), 0, 10000);
	xu_wait_branch(c, n.proc, gid, XU_RM_MY, BR(ROLLING_BACK), 2, 10000);
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->state, TX(ROLLING_BACK), "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	cr_assert_eq(xt_servers_start(), 0, "restart MariaDB");
	xu_wait_state(c, n.proc, gid, TX(ROLLED_BACK), 20000);
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 100, 100);
	xu_assert_clean(n.proc);
}

/* Write the RM file of settled --xa-rm-file: owner-only, as settled
 * requires; pg_conninfo replaces the PostgreSQL server's. */
static void write_rm_file(const char *path, const char *pg_conninfo)
{
	char my[1024];
	FILE *f;

	/* xt_conninfo() answers in one static buffer. */
	snprintf(my, sizeof(my), "%s", xt_conninfo(XU_MY));
	unlink(path);
	f = fopen(path, "w");
	cr_assert_not_null(f, "%s", path);
	cr_assert_eq(chmod(path, 0600), 0);
	fprintf(f,
		"# the test's databases\n" XU_RM_PG "=pg:%s\n" XU_RM_MY
		"=mariadb:%s\n",
		pg_conninfo, my);
	cr_assert_eq(fclose(f), 0);
}

/*
 * The operator's case: the leader logs into PostgreSQL as a role that may
 * not finish other roles' prepared transactions (a wrong user in its RM
 * file). The commit of that branch fails with an error the leader does not
 * understand; it retries, then, after --xa-max-attempts, the branch is
 * FAILED and the transaction waits for an operator, who fixes the file,
 * restarts settled and retries the branch.
 */
Test(xa_faults, failed_branch_retried_by_operator)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE], path[600], bad[1200];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	const Settle__V1__BranchInfo *b;
	struct xa_rm *rm;
	uint32_t retried = 0;
	int st, state = 0;
	bool finished = true;

	rm = xu_rm(XU_PG);
	cr_assert_eq(xa_rm_exec(rm, "DO $$BEGIN CREATE ROLE settle_xa_other "
				    "LOGIN; EXCEPTION WHEN duplicate_object "
				    "THEN NULL; END$$"),
		     0, "%s", xa_rm_errmsg(rm));
	xa_rm_close(rm);
	snprintf(path, sizeof(path), "%s/xa-rms", it_dir());
	snprintf(bad, sizeof(bad), "%s user=settle_xa_other",
		 xt_conninfo(XU_PG));
	write_rm_file(path, bad);
	it_node_start(&n, 1,
		      ARGS("--xa-rm-file", path, "--xa-recover-interval", "1s",
			   "--retry-base", "100ms", "--retry-max", "300ms",
			   "--xa-max-attempts", "3"));
	c = xu_client(n.endpoint);
	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "12", "--timeout-ms", "30000",
			      "--stop-after", "vote", "--stop-how", "exit"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	cr_assert_eq(settle_xa_commit(c, gid, true, 0, &state, &finished), 0,
		     "commit: %s", settle_client_errmsg(c));
	xu_wait_branch(c, n.proc, gid, XU_RM_PG,
		       SETTLE__V1__BRANCH_STATE__FAILED, 3, 15000);
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->state, TX(COMMITTING), "%s", xu_describe(tx));
	cr_assert_eq(tx->failed, 1, "%s", xu_describe(tx));
	xu_expect_branch(tx, XU_RM_MY, BR(COMMITTED));
	b = xu_branch(tx, XU_RM_PG);
	cr_assert(b->last_error != NULL && b->last_error[0] != '\0', "%s",
		  xu_describe(tx));
	settle_tx_info_free(tx);
	cr_assert_eq(settle_wait(c, gid, 1000, &state, &finished),
		     SETTLE_ESTATE, "stuck for an operator");
	cr_assert_eq(xu_in_doubt(XU_PG, gid), 1, "still prepared");

	snprintf(bad, sizeof(bad), "%s", xt_conninfo(XU_PG));
	write_rm_file(path, bad);
	it_kill(n.proc);
	it_restart(n.proc);
	it_node_wait_leader(&n, 20000);
	cr_assert_eq(settle_tx_retry(c, gid, 0, "fixed the PostgreSQL user",
				     &retried, &state),
		     0, "retry: %s", settle_client_errmsg(c));
	cr_assert_eq(retried, 1);
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 10000);
	tx = xu_query(c, gid);
	xu_expect_branch(tx, XU_RM_PG, BR(COMMITTED));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 88, 112);
	xu_assert_clean(n.proc);
}

/*
 * The initiator SIGKILLed after both branches prepared at the databases,
 * before it voted: the deadline rolls the transaction back and the leader
 * rolls the prepared branches back at the databases.
 */
Test(xa_faults, initiator_killed_before_vote)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE], gid2[SETTLE_GID_BUFSIZE];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	int st;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);
	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "5", "--timeout-ms", "3000",
			      "--stop-after", "prepare"),
			 gid, NULL);
	cr_assert_eq(st, 128 + SIGKILL, "the initiator died by SIGKILL: %d",
		     st);
	cr_assert_eq(xu_in_doubt(XU_PG, gid), 1);
	cr_assert_eq(xu_in_doubt(XU_MY, gid), 1);
	/* Killed earlier, during the work: the databases undo the branches
	 * with the connections; the leader's rollbacks find nothing. */
	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "6", "--timeout-ms", "3000",
			      "--stop-after", "work"),
			 gid2, NULL);
	cr_assert_eq(st, 128 + SIGKILL, "the initiator died by SIGKILL: %d",
		     st);

	xu_wait_state(c, n.proc, gid, TX(ROLLED_BACK), 15000);
	tx = xu_query(c, gid);
	xu_expect_branch(tx, XU_RM_PG, BR(ROLLED_BACK));
	xu_expect_branch(tx, XU_RM_MY, BR(ROLLED_BACK));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);

	xu_wait_state(c, n.proc, gid2, TX(ROLLED_BACK), 15000);
	tx = xu_query(c, gid2);
	xu_expect_branch(tx, XU_RM_PG, BR(ROLLED_BACK));
	xu_expect_branch(tx, XU_RM_MY, BR(ROLLED_BACK));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid2);
	xu_expect_balances(&a, 100, 100);
	xu_assert_clean(n.proc);
}

/*
 * Branches prepared, the initiator gone before its votes, the deadline far
 * off: the recovery scans (every second) must leave the prepared branches
 * of a transaction still ACTIVE alone. Another process then votes for them
 * and commits (an initiator restarted from its own log would).
 */
Test(xa_faults, scan_leaves_undecided_branches)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	int st, state = 0, bstate = 0;
	uint32_t b;
	bool finished = false;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);
	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "3", "--timeout-ms", "30000",
			      "--stop-after", "prepare"),
			 gid, NULL);
	cr_assert_eq(st, 128 + SIGKILL, "exit %d", st);
	xu_sleep_ms(2500);
	cr_assert_eq(xu_in_doubt(XU_PG, gid), 1, "a scan rolled back PG's");
	cr_assert_eq(xu_in_doubt(XU_MY, gid), 1,
		     "a scan rolled back MariaDB's");
	for (b = 1; b <= 2; b++)
		cr_assert_eq(settle_xa_vote(c, gid, b,
					    SETTLE__V1__XA_VOTE__VOTE_OK, NULL,
					    &state, &bstate),
			     0, "vote %u: %s", b, settle_client_errmsg(c));
	cr_assert_eq(settle_xa_commit(c, gid, true, 10000, &state, &finished),
		     0, "commit: %s", settle_client_errmsg(c));
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 10000);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 97, 103);
	xu_assert_clean(n.proc);
}

/* The initiator SIGKILLed right after Commit was answered: the leader
 * needs nothing more from it. */
Test(xa_faults, initiator_killed_after_commit)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	int st;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);
	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "45", "--stop-after", "commit"),
			 gid, NULL);
	cr_assert_eq(st, 128 + SIGKILL, "exit %d", st);
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 10000);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 55, 145);
	xu_assert_clean(n.proc);
}

/*
 * Somebody rolls PostgreSQL's prepared branch back by hand (ROLLBACK
 * PREPARED) before the commit decision: at the leader's first commit the
 * database does not know the XID. The branch is done, but the outcome is
 * recorded as a heuristic hazard, shown on the branch and the transaction
 * until XA_FORGET; MariaDB's branch is committed as decided.
 */
Test(xa_faults, heuristic_when_finished_outside)
{
	struct it_node n;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE], pggid[XA_XID_PG_MAX], sql[300];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	const Settle__V1__BranchInfo *b;
	struct xa_xid x;
	struct xa_rm *rm;
	int st, state = 0;
	bool finished = false;

	xu_node_start(&n, 1, NULL);
	c = xu_client(n.endpoint);
	st = xu_transfer(n.endpoint,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "20", "--timeout-ms", "30000",
			      "--stop-after", "vote", "--stop-how", "exit"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	cr_assert_eq(xa_xid_init(&x, XU_FORMAT_ID, gid, strlen(gid), "1", 1),
		     0);
	cr_assert_eq(xa_xid_to_pg_gid(&x, pggid, sizeof(pggid)), 0);
	rm = xu_rm(XU_PG);
	snprintf(sql, sizeof(sql), "ROLLBACK PREPARED '%s'", pggid);
	cr_assert_eq(xa_rm_exec(rm, sql), 0, "%s", xa_rm_errmsg(rm));
	xa_rm_close(rm);

	cr_assert_eq(settle_xa_commit(c, gid, true, 10000, &state, &finished),
		     0, "commit: %s", settle_client_errmsg(c));
	xu_wait_state(c, n.proc, gid, TX(COMMITTED), 10000);
	tx = xu_query(c, gid);
	b = xu_branch(tx, XU_RM_PG);
	cr_assert_eq((int)b->heuristic, SETTLE__V1__HEURISTIC__HEUR_HAZARD,
		     "%s", xu_describe(tx));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEUR_HAZARD,
		     "%s", xu_describe(tx));
	b = xu_branch(tx, XU_RM_MY);
	cr_assert_eq((int)b->state, BR(COMMITTED), "%s", xu_describe(tx));
	cr_assert_eq((int)b->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	/* What really happened: the debit was undone, the credit was not. */
	xu_expect_balances(&a, 100, 120);

	{
		/* The operator sees it. */
		char *out = NULL, *err = NULL;
		char *argv[] = {(char *)it_bin("settlectl"),
				"--cluster",
				n.endpoint,
				"tx",
				"show",
				gid,
				NULL};

		cr_assert_eq(it_run(argv, &out, &err, 10000), 0, "%s", err);
		cr_assert(strstr(out, "heuristic: hazard"), "%s", out);
		free(out);
		free(err);
	}
	cr_assert_eq(settle_xa_forget(c, gid), 0, "forget: %s",
		     settle_client_errmsg(c));
	tx = xu_query(c, gid);
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	/* The branch keeps its record. */
	b = xu_branch(tx, XU_RM_PG);
	cr_assert_eq((int)b->heuristic, SETTLE__V1__HEURISTIC__HEUR_HAZARD,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	cr_assert_eq(settle_xa_forget(c, gid), SETTLE_ESTATE,
		     "nothing left to forget");
	xu_assert_clean(n.proc);
}

/*
 * A 3-node cluster, every node configured with both databases: the
 * leader is SIGKILLed after the votes, before Commit; the initiator's
 * Commit reaches the new leader, which commits both branches over its own
 * connections. Then a leader is SIGKILLed in phase 2 while PostgreSQL is
 * down, and the next one finishes the commit once it is back.
 */
Test(xa_faults, cluster_leader_killed_between_vote_and_commit, .timeout = 120)
{
	struct fu_cluster cl;
	struct xu_accounts a = xu_open_accounts(100, 100);
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	Settle__V1__TxInfo *tx;
	int st, leader, state = 0;
	bool finished = false;

	fu_cluster_start(&cl, 3, xu_node_args(NULL));
	leader = fu_leader(&cl, 10000);
	cr_assert(leader >= 0, "no leader");
	c = xu_client(cl.endpoints);
	st = xu_transfer(cl.endpoints,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "33", "--timeout-ms", "30000",
			      "--stop-after", "vote", "--stop-how", "exit"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);

	fu_kill(&cl, leader);
	cr_assert_eq(settle_xa_commit(c, gid, true, 15000, &state, &finished),
		     0, "commit after the failover: %s",
		     settle_client_errmsg(c));
	xu_wait_state(c, NULL, gid, TX(COMMITTED), 20000);
	tx = xu_query(c, gid);
	xu_expect_branch(tx, XU_RM_PG, BR(COMMITTED));
	xu_expect_branch(tx, XU_RM_MY, BR(COMMITTED));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 67, 133);

	/* The old leader comes back as a follower and catches up. */
	fu_restart(&cl, leader);
	cr_assert(fu_wait_caught_up(&cl, 20000), "the cluster caught up");

	/* Then the new leader dies in phase 2, while it retries a database
	 * that is down: the next leader takes the retries over. */
	st = xu_transfer(cl.endpoints,
			 ARGS("--from-account", a.pg, "--to-account", a.my,
			      "--amount", "7", "--timeout-ms", "30000",
			      "--stop-after", "vote", "--stop-how", "exit"),
			 gid, NULL);
	cr_assert_eq(st, 0, "exit %d", st);
	cr_assert_eq(xt_server_kill(XU_PG), 0, "SIGKILL PostgreSQL");
	cr_assert_eq(settle_xa_commit(c, gid, true, 0, &state, &finished), 0,
		     "commit: %s", settle_client_errmsg(c));
	xu_wait_branch(c, NULL, gid, XU_RM_MY, BR(COMMITTED), 0, 10000);
	xu_wait_branch(c, NULL, gid, XU_RM_PG, BR(COMMITTING), 1, 10000);
	leader = fu_leader(&cl, 10000);
	cr_assert(leader >= 0, "no leader");
	fu_kill(&cl, leader);
	cr_assert_eq(xt_servers_start(), 0, "restart PostgreSQL");
	xu_wait_state(c, NULL, gid, TX(COMMITTED), 30000);
	tx = xu_query(c, gid);
	xu_expect_branch(tx, XU_RM_PG, BR(COMMITTED));
	cr_assert_eq((int)tx->heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		     "%s", xu_describe(tx));
	settle_tx_info_free(tx);
	xu_expect_nothing_in_doubt(gid);
	xu_expect_balances(&a, 60, 140);
	fu_restart(&cl, leader);
	cr_assert(fu_wait_caught_up(&cl, 20000), "the cluster caught up");
	fu_assert_no_sanitizer_reports(&cl);
	fu_cluster_teardown(&cl);
}

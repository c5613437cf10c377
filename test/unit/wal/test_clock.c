/* Deadlines on the cluster clock (wal/fsm.h): the FSM decides them by the
 * clock stamped into the log, never by the wall time of the entries. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "error.h"
#include "fsm_helpers.h"

#define COMMIT	   SETTLE__V1__DECISION__DECIDE_COMMIT
#define ROLLBACK   SETTLE__V1__DECISION__DECIDE_ROLLBACK
#define C_OK	   SETTLE__V1__CODE__OK
#define C_WRONG	   SETTLE__V1__CODE__WRONG_STATE
#define WALL_AHEAD 4000000000000ull /* year 2096 */

static struct tfsm F;

static void setup(void)
{
	tfsm_open(&F);
}

static void teardown(void)
{
	tfsm_close(&F);
}

TestSuite(fsm_clock, .init = setup, .fini = teardown);

static Settle__V1__TxRecord *tx_of(const char *gid)
{
	Settle__V1__TxRecord *tx;
	cr_assert_eq(store_tx_get(F.t.s, NULL, gid, &tx), 0);
	return tx;
}

/* Begin gid at cluster clock 5000 with a 1000 ms limit; its wall
 * deadline (1100) is far behind every wall stamp used after. */
static void begin(int id, const char *gid, bool branch)
{
	cr_assert_eq(tfsm_code(&F, ent_clocked(ent_begin(id, 100, gid, 1100),
					       5000, 1000)),
		     C_OK);
	if (branch)
		cr_assert_eq(
		    tfsm_code(&F, ent_clocked(ent_register(id + 100, 100, gid,
							   "h:1", "acct", "p"),
					      5001, 0)),
		    C_OK);
	Settle__V1__TxRecord *tx = tx_of(gid);
	cr_expect_eq(tx->timeout_ms, 1000);
	cr_expect_eq(tx->expires_clock_ms, 6000);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

Test(fsm_clock, a_wall_clock_ahead_does_not_expire_a_transaction)
{
	begin(1, "g", true);
	/* Wall time decades past the deadline, cluster clock before it. */
	cr_expect_eq(tfsm_code(&F, ent_clocked(ent_decide(2, WALL_AHEAD, "g",
							  ROLLBACK, "", 1),
					       5999, 0)),
		     C_WRONG);
	Settle__V1__CmdResult *r = tfsm_res(
	    &F, ent_clocked(ent_decide(3, WALL_AHEAD, "g", COMMIT, "", 0), 5999,
			    0));
	cr_expect_eq(r->code, C_OK, "%s", r->message);
	cr_expect_eq(r->state, SETTLE__V1__TX_STATE__COMMITTING);
	settle__v1__cmd_result__free_unpacked(r, NULL);
}

Test(fsm_clock, a_wall_clock_behind_does_not_stretch_a_deadline)
{
	begin(1, "g", false);
	/* Wall time before the begin, cluster clock at the limit. */
	cr_expect_eq(
	    tfsm_code(&F, ent_clocked(ent_decide(2, 50, "g", ROLLBACK, "", 1),
				      6000, 0)),
	    C_OK);
	Settle__V1__TxRecord *tx = tx_of("g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ROLLED_BACK);
	cr_expect_str_eq(tx->reason, "deadline");
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

Test(fsm_clock, a_commit_stamped_at_the_deadline_rolls_back)
{
	begin(1, "g", true);
	Settle__V1__CmdResult *r = tfsm_res(
	    &F, ent_clocked(ent_decide(2, 150, "g", COMMIT, "", 0), 6000, 0));
	cr_expect_eq(r->code, C_WRONG);
	cr_expect_neq(strstr(r->message, "deadline passed before this commit"),
		      NULL, "%s", r->message);
	cr_expect_eq(r->state, SETTLE__V1__TX_STATE__ROLLING_BACK);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx = tx_of("g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ROLLING_BACK);
	cr_expect_str_eq(tx->reason, "deadline (passed before the commit)");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	/* The same COMMIT again (a client retry) gets the same answer; the
	 * driver's timeout rollback after it is a repeated rollback. */
	cr_expect_eq(
	    tfsm_code(&F, ent_clocked(ent_decide(2, 150, "g", COMMIT, "", 0),
				      6000, 0)),
	    C_WRONG);
	cr_expect_eq(
	    tfsm_code(&F, ent_clocked(ent_decide(3, 160, "g", ROLLBACK, "", 1),
				      6010, 0)),
	    C_OK);
	tfsm_check_indexes(&F);
}

Test(fsm_clock, the_timeout_first_in_the_log_wins_over_a_commit)
{
	begin(1, "g", true);
	cr_expect_eq(
	    tfsm_code(&F, ent_clocked(ent_decide(2, 150, "g", ROLLBACK, "", 1),
				      6000, 0)),
	    C_OK);
	Settle__V1__CmdResult *r = tfsm_res(
	    &F, ent_clocked(ent_decide(3, 150, "g", COMMIT, "", 0), 5990, 0));
	cr_expect_eq(r->code, C_WRONG);
	cr_expect_eq(r->state, SETTLE__V1__TX_STATE__ROLLING_BACK);
	settle__v1__cmd_result__free_unpacked(r, NULL);
}

Test(fsm_clock, the_clock_never_goes_back)
{
	begin(1, "g", false);
	/* A clock entry moves it on; entries stamped lower (a leader that
	 * started behind, or none) are decided at the highest clock. */
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdClock op = SETTLE__V1__CMD_CLOCK__INIT;
	uint8_t idb[16] = {9};
	c.cmd_id.data = idb;
	c.cmd_id.len = sizeof idb;
	c.time_ms = 200;
	c.clock_ms = 7000;
	c.op_case = SETTLE__V1__COMMAND__OP_CLOCK;
	c.clock = &op;
	cr_expect_eq(tfsm_code(&F, ent_cmd(&c)), C_OK);
	uint64_t clock;
	cr_assert_eq(store_clock_get(F.t.s, NULL, &clock), 0);
	cr_expect_eq(clock, 7000);
	cr_expect_eq(
	    tfsm_code(
		&F, ent_clocked(ent_decide(2, 150, "g", COMMIT, "", 0), 10, 0)),
	    C_WRONG);
	Settle__V1__TxRecord *tx = tx_of("g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ROLLED_BACK);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_assert_eq(store_clock_get(F.t.s, NULL, &clock), 0);
	cr_expect_eq(clock, 7000);
}

Test(fsm_clock, a_record_without_a_limit_keeps_the_wall_rule)
{
	/* Begun by an older version: no timeout_ms, so deadline_ms and the
	 * wall stamps decide, as they did when it was applied. */
	cr_assert_eq(tfsm_code(&F, ent_begin(1, 100, "g", 1100)), C_OK);
	cr_expect_eq(
	    tfsm_code(&F, ent_clocked(ent_decide(2, 1099, "g", ROLLBACK, "", 1),
				      99999, 0)),
	    C_WRONG);
	cr_expect_eq(
	    tfsm_code(&F, ent_clocked(ent_decide(3, 1200, "g", COMMIT, "", 0),
				      99999, 0)),
	    C_OK);
}

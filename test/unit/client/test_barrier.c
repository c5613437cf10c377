/* The barrier: the three TCC anomalies, repeats, crash safety, gc. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "error.h"

#include "settle_participant.h"

static char dir[64];
static MDB_env *env;
static settle_barrier *bar;

static void setup(void)
{
	strcpy(dir, "/tmp/settle-barrier-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 4), 0);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(settle_barrier_open(env, &bar), 0);
}

static void teardown(void)
{
	char cmd[128];
	settle_barrier_close(bar);
	mdb_env_close(env);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(barrier, .init = setup, .fini = teardown);

/* Enter in a txn of its own and commit it: one participant call. */
static int call(const char *gid, uint32_t branch, int op)
{
	MDB_txn *txn;
	int action = -1;
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(settle_barrier_enter(bar, txn, gid, branch, op, &action),
		     0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	return action;
}

Test(barrier, normal_commit_path_and_repeats)
{
	cr_expect_eq(call("g1", 1, SETTLE_OP_TRY), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("g1", 1, SETTLE_OP_TRY), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("g1", 1, SETTLE_OP_CONFIRM), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("g1", 1, SETTLE_OP_CONFIRM), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("g1", 1, SETTLE_OP_CONFIRM), SETTLE_BARRIER_SKIP);
	/* The coordinator decides once: a Cancel after Confirm is refused. */
	cr_expect_eq(call("g1", 1, SETTLE_OP_CANCEL), SETTLE_BARRIER_REFUSE);
}

Test(barrier, rollback_path_and_repeats)
{
	cr_expect_eq(call("g1", 1, SETTLE_OP_TRY), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("g1", 1, SETTLE_OP_CANCEL), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("g1", 1, SETTLE_OP_CANCEL), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("g1", 1, SETTLE_OP_CONFIRM), SETTLE_BARRIER_REFUSE);
	/* Try after Cancel is refused even though a try row exists. */
	cr_expect_eq(call("g1", 1, SETTLE_OP_TRY), SETTLE_BARRIER_REFUSE);
}

Test(barrier, null_compensation_then_hanging_try)
{
	/* Cancel with no Try: recorded, nothing to undo. */
	cr_expect_eq(call("g2", 3, SETTLE_OP_CANCEL), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("g2", 3, SETTLE_OP_CANCEL), SETTLE_BARRIER_SKIP);
	/* The Try that was overtaken arrives: hanging, refused, every time. */
	cr_expect_eq(call("g2", 3, SETTLE_OP_TRY), SETTLE_BARRIER_REFUSE);
	cr_expect_eq(call("g2", 3, SETTLE_OP_TRY), SETTLE_BARRIER_REFUSE);
}

Test(barrier, branches_and_gids_are_independent)
{
	cr_expect_eq(call("g", 1, SETTLE_OP_CANCEL), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("g", 2, SETTLE_OP_TRY), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("gg", 1, SETTLE_OP_TRY), SETTLE_BARRIER_RUN);
	/* "g"+branch and a longer gid never share a key. */
	cr_expect_eq(call("g\x01", 0, SETTLE_OP_TRY), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("g", 1, SETTLE_OP_TRY), SETTLE_BARRIER_REFUSE);
}

Test(barrier, aborted_txn_leaves_no_row)
{
	MDB_txn *txn;
	int action;

	/* A crash (or a failing handler) aborts the business txn: the
	 * barrier row goes with it and the call runs again next time. */
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(
	    settle_barrier_enter(bar, txn, "g3", 1, SETTLE_OP_TRY, &action), 0);
	cr_expect_eq(action, SETTLE_BARRIER_RUN);
	mdb_txn_abort(txn);
	cr_expect_eq(call("g3", 1, SETTLE_OP_TRY), SETTLE_BARRIER_RUN);

	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(
	    settle_barrier_enter(bar, txn, "g4", 1, SETTLE_OP_CANCEL, &action),
	    0);
	mdb_txn_abort(txn);
	/* The aborted Cancel left nothing: a Try is not hanging. */
	cr_expect_eq(call("g4", 1, SETTLE_OP_TRY), SETTLE_BARRIER_RUN);
}

Test(barrier, rows_survive_reopen)
{
	cr_expect_eq(call("g5", 9, SETTLE_OP_CANCEL), SETTLE_BARRIER_SKIP);
	settle_barrier_close(bar);
	mdb_env_close(env);
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 4), 0);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(settle_barrier_open(env, &bar), 0);
	cr_expect_eq(call("g5", 9, SETTLE_OP_TRY), SETTLE_BARRIER_REFUSE);
}

Test(barrier, rejects_bad_input)
{
	MDB_txn *txn;
	int action;
	char big[SETTLE_GID_MAX + 2];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_expect_eq(
	    settle_barrier_enter(bar, txn, "", 1, SETTLE_OP_TRY, &action),
	    SETTLE_EINVAL);
	cr_expect_eq(
	    settle_barrier_enter(bar, txn, big, 1, SETTLE_OP_TRY, &action),
	    SETTLE_EINVAL);
	cr_expect_eq(settle_barrier_enter(bar, txn, "g", 1, 7, &action),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_barrier_enter(bar, txn, NULL, 1, 1, &action),
		     SETTLE_EINVAL);
	big[SETTLE_GID_MAX] = '\0';
	cr_expect_eq(settle_barrier_enter(bar, txn, big, UINT32_MAX,
					  SETTLE_OP_TRY, &action),
		     0);
	mdb_txn_abort(txn);
}

Test(barrier, gc_removes_old_rows_oldest_first)
{
	MDB_txn *txn;
	size_t removed = 99;

	call("old", 1, SETTLE_OP_TRY);
	call("old", 1, SETTLE_OP_CONFIRM);
	call("old", 2, SETTLE_OP_CANCEL);
	/* Wide margins: on a loaded machine the steps below can take tens
	 * of ms, and "new" must stay younger than the cutoff throughout. */
	usleep(600 * 1000);
	call("new", 1, SETTLE_OP_TRY);

	/* Nothing is a minute old. */
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(settle_barrier_gc(bar, txn, 60000, 0, &removed), 0);
	cr_expect_eq(removed, 0);
	/* With a limit, only part of the old rows. */
	cr_assert_eq(settle_barrier_gc(bar, txn, 300, 2, &removed), 0);
	cr_expect_eq(removed, 2);
	cr_assert_eq(settle_barrier_gc(bar, txn, 300, 0, &removed), 0);
	cr_expect_eq(removed, 1);
	cr_assert_eq(mdb_txn_commit(txn), 0);

	/* The old branches are forgotten; the new one is remembered. */
	cr_expect_eq(call("old", 2, SETTLE_OP_TRY), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("new", 1, SETTLE_OP_TRY), SETTLE_BARRIER_SKIP);

	MDB_stat st;
	MDB_dbi dbi;
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "settle_barrier", 0, &dbi), 0);
	cr_assert_eq(mdb_stat(txn, dbi, &st), 0);
	cr_expect_eq(st.ms_entries, 2);
	cr_assert_eq(mdb_dbi_open(txn, "settle_barrier_time", 0, &dbi), 0);
	cr_assert_eq(mdb_stat(txn, dbi, &st), 0);
	cr_expect_eq(st.ms_entries, 2);
	mdb_txn_abort(txn);
}

/* ---- Saga: Action and Compensate ---------------------------------------- */

Test(barrier, saga_action_repeats_then_compensation_runs_once)
{
	cr_expect_eq(call("s1", 1, SETTLE_OP_ACTION), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("s1", 1, SETTLE_OP_ACTION), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("s1", 1, SETTLE_OP_COMPENSATE), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("s1", 1, SETTLE_OP_COMPENSATE), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("s1", 1, SETTLE_OP_COMPENSATE), SETTLE_BARRIER_SKIP);
	/* A late copy of the Action, after its compensation, is refused even
	 * though its own row exists: running it would redo the undone. */
	cr_expect_eq(call("s1", 1, SETTLE_OP_ACTION), SETTLE_BARRIER_REFUSE);
}

Test(barrier, saga_null_compensation_then_late_action_is_refused)
{
	cr_expect_eq(call("s2", 4, SETTLE_OP_COMPENSATE), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("s2", 4, SETTLE_OP_COMPENSATE), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("s2", 4, SETTLE_OP_ACTION), SETTLE_BARRIER_REFUSE);
	cr_expect_eq(call("s2", 4, SETTLE_OP_ACTION), SETTLE_BARRIER_REFUSE);
	/* Still nothing to compensate: the refused Action wrote no row. */
	cr_expect_eq(call("s2", 4, SETTLE_OP_COMPENSATE), SETTLE_BARRIER_SKIP);
}

Test(barrier, saga_aborted_action_leaves_a_null_compensation)
{
	MDB_txn *txn;
	int action = -1;

	/* The handler failed: the SDK aborts the txn with the row in it. */
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(
	    settle_barrier_enter(bar, txn, "s3", 2, SETTLE_OP_ACTION, &action),
	    0);
	cr_expect_eq(action, SETTLE_BARRIER_RUN);
	mdb_txn_abort(txn);
	cr_expect_eq(call("s3", 2, SETTLE_OP_COMPENSATE), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("s3", 2, SETTLE_OP_ACTION), SETTLE_BARRIER_REFUSE);
}

Test(barrier, saga_steps_and_tcc_rows_are_independent)
{
	cr_expect_eq(call("s4", 1, SETTLE_OP_ACTION), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("s4", 2, SETTLE_OP_COMPENSATE), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("s4", 2, SETTLE_OP_ACTION), SETTLE_BARRIER_REFUSE);
	cr_expect_eq(call("s4", 1, SETTLE_OP_ACTION), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("s5", 1, SETTLE_OP_ACTION), SETTLE_BARRIER_RUN);
	/* A TCC Cancel of the same gid and branch is a different row: it
	 * neither compensates nor blocks the saga step. */
	cr_expect_eq(call("s4", 1, SETTLE_OP_CANCEL), SETTLE_BARRIER_SKIP);
	cr_expect_eq(call("s4", 1, SETTLE_OP_COMPENSATE), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("s4", 1, SETTLE_OP_TRY), SETTLE_BARRIER_REFUSE);
}

Test(barrier, saga_rows_are_collected_like_tcc_ones)
{
	MDB_txn *txn;
	size_t removed = 0;

	cr_expect_eq(call("s6", 1, SETTLE_OP_ACTION), SETTLE_BARRIER_RUN);
	cr_expect_eq(call("s6", 1, SETTLE_OP_COMPENSATE), SETTLE_BARRIER_RUN);
	usleep(5000);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(settle_barrier_gc(bar, txn, 1, 0, &removed), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	cr_expect_eq(removed, 2);
	/* Collected: the Action is a first call again (why the retention
	 * must outlast late deliveries). */
	cr_expect_eq(call("s6", 1, SETTLE_OP_ACTION), SETTLE_BARRIER_RUN);
}

Test(barrier, unknown_ops_are_rejected)
{
	MDB_txn *txn;
	int action = -1;

	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_expect_eq(settle_barrier_enter(bar, txn, "s7", 1, 0, &action),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_barrier_enter(bar, txn, "s7", 1, 6, &action),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_barrier_enter(bar, txn, "s7", 1, 255, &action),
		     SETTLE_EINVAL);
	mdb_txn_abort(txn);
}

/*
 * test_assoc.c — the XA thread/branch state machine (xa/assoc.c).
 *
 * Threads are named by explicit tids (A, B) so one test can act as several
 * threads; the last tests use real pthreads and xa_assoc_self().
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "xa/assoc.h"

#define RM 7
#define A  1001
#define B  1002

static struct xa_assoc *a;

static void setup(void)
{
	cr_assert_eq(xa_assoc_new(&a), 0);
	cr_assert_eq(xa_assoc_open(a, A, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(xa_assoc_open(a, B, RM, TMNOFLAGS), XA_OK);
}

static void teardown(void)
{
	char why[128] = "";

	cr_assert(xa_assoc_invariants(a, why, sizeof(why)), "%s", why);
	xa_assoc_free(a);
	a = NULL;
}

TestSuite(assoc, .init = setup, .fini = teardown, .timeout = 30);

static struct xa_xid X(int64_t fmt, const char *g, const char *q) {
	struct xa_xid x;

	cr_assert_eq(xa_xid_init(&x, fmt, g, strlen(g), q, strlen(q)), 0);
	return x;
}

static enum xa_assoc_bstate
bs(const struct xa_xid *x)
{
	return xa_assoc_branch_state(a, RM, x);
}

static enum xa_assoc_tstate ts(uint64_t tid)
{
	return xa_assoc_thread_state(a, tid, RM);
}

/* --- the tables ---------------------------------------------------------- */

Test(assoc, thread_table)
{
	/* want[from][to], from the XA specification's thread table. */
	static const bool want[3][3] = {
	    /* T0 */ {false, true, false},
	    /* T1 */ {true, false, true},
	    /* T2 */ {true, true, false},
	};
	for (int f = -1; f <= 3; f++)
		for (int t = -1; t <= 3; t++) {
			bool w =
			    f >= 0 && f < 3 && t >= 0 && t < 3 && want[f][t];
			cr_assert_eq(xa_assoc_thread_can_move(f, t), w,
				     "%d -> %d", f, t);
		}
	cr_assert_str_eq(xa_assoc_thread_name(XA_ASSOC_T2), "T2");
	cr_assert_str_eq(xa_assoc_thread_name(3), "?");
	cr_assert_str_eq(xa_assoc_thread_name(-1), "?");
}

Test(assoc, branch_table)
{
	static const bool want[6][6] = {
	    /*        S0     S1     S2     S3     S4     S5 */
	    /* S0 */ {false, true, false, false, false, false},
	    /* S1 */ {false, false, true, false, true, false},
	    /* S2 */ {true, true, false, true, true, true},
	    /* S3 */ {true, false, false, false, false, true},
	    /* S4 */ {true, false, false, false, false, false},
	    /* S5 */ {true, false, false, false, false, false},
	};
	for (int f = -1; f <= 6; f++)
		for (int t = -1; t <= 6; t++) {
			bool w =
			    f >= 0 && f < 6 && t >= 0 && t < 6 && want[f][t];
			cr_assert_eq(xa_assoc_branch_can_move(f, t), w,
				     "%d -> %d", f, t);
		}
	cr_assert_str_eq(xa_assoc_branch_name(XA_ASSOC_S5), "S5");
	cr_assert_str_eq(xa_assoc_branch_name(6), "?");
}

/* --- every legal branch move, through the verbs -------------------------- */

/* Bring x to state s with thread A (S1: A stays associated). */
static void reach(const struct xa_xid *x, enum xa_assoc_bstate s)
{
	if (s == XA_ASSOC_S0)
		return;
	cr_assert_eq(xa_assoc_start(a, A, RM, x, TMNOFLAGS), XA_OK);
	if (s == XA_ASSOC_S1)
		goto done;
	if (s == XA_ASSOC_S4) {
		cr_assert_eq(xa_assoc_end(a, A, RM, x, TMFAIL), XA_RBROLLBACK);
		goto done;
	}
	cr_assert_eq(xa_assoc_end(a, A, RM, x, TMSUCCESS), XA_OK);
	if (s == XA_ASSOC_S2)
		goto done;
	cr_assert_eq(xa_assoc_prepare(a, A, RM, x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, x, XA_ASSOC_PREPARE, XA_OK),
		     XA_OK);
	if (s == XA_ASSOC_S3)
		goto done;
	cr_assert_eq(xa_assoc_commit(a, A, RM, x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, x, XA_ASSOC_COMMIT, XA_HEURCOM),
		     XA_HEURCOM);
done:
	cr_assert_eq(bs(x), s, "reached %s, wanted %s",
		     xa_assoc_branch_name(bs(x)), xa_assoc_branch_name(s));
}

Test(assoc, legal_moves)
{
	struct xa_xid x = X(1, "g", "b");

	/* S0 -> S1 -> S2 -> S1 -> S2 -> S3 -> S0 (commit) */
	reach(&x, XA_ASSOC_S2);
	cr_assert_eq(xa_assoc_start(a, B, RM, &x, TMJOIN), XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S1);
	cr_assert_eq(xa_assoc_end(a, B, RM, &x, TMSUCCESS), XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S2);
	cr_assert_eq(xa_assoc_prepare(a, B, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_PREPARE, XA_OK),
		     XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S3);
	cr_assert_eq(xa_assoc_commit(a, B, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_COMMIT, XA_OK),
		     XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S0);

	/* S3 -> S0 (rollback), S3 -> S5 -> S0 */
	reach(&x, XA_ASSOC_S3);
	cr_assert_eq(xa_assoc_rollback(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_ROLLBACK, XA_OK),
		     XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S0);
	reach(&x, XA_ASSOC_S5);
	cr_assert_eq(xa_assoc_forget(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_FORGET, XA_OK),
		     XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S0);

	/* S2 -> S0: read-only, rolled back at prepare, one phase, rollback */
	int prep[] = {XA_RDONLY, XA_RBDEADLOCK, XAER_RMERR, XAER_NOTA};
	for (size_t i = 0; i < 4; i++) {
		reach(&x, XA_ASSOC_S2);
		cr_assert_eq(xa_assoc_prepare(a, A, RM, &x, 0), XA_OK);
		cr_assert_eq(
		    xa_assoc_complete(a, RM, &x, XA_ASSOC_PREPARE, prep[i]),
		    prep[i]);
		cr_assert_eq(bs(&x), XA_ASSOC_S0, "prepare -> %d", prep[i]);
	}
	reach(&x, XA_ASSOC_S2);
	cr_assert_eq(xa_assoc_commit(a, A, RM, &x, TMONEPHASE), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_COMMIT, XA_RBOTHER),
		     XA_RBOTHER);
	cr_assert_eq(bs(&x), XA_ASSOC_S0);
	reach(&x, XA_ASSOC_S2);
	cr_assert_eq(xa_assoc_rollback(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_ROLLBACK, XA_OK),
		     XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S0);

	/* S2 -> S5 (one phase, heuristic), its code is remembered */
	reach(&x, XA_ASSOC_S2);
	cr_assert_eq(xa_assoc_commit(a, A, RM, &x, TMONEPHASE), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_COMMIT, XA_HEURMIX),
		     XA_HEURMIX);
	cr_assert_eq(bs(&x), XA_ASSOC_S5);
	cr_assert_eq(xa_assoc_rollback(a, A, RM, &x, 0), XA_HEURMIX);
	cr_assert_eq(xa_assoc_commit(a, A, RM, &x, 0), XA_HEURMIX);
	cr_assert_eq(xa_assoc_forget(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_FORGET, XAER_NOTA),
		     XAER_NOTA);
	cr_assert_eq(bs(&x), XA_ASSOC_S0);

	/* S1 -> S4 (TMFAIL) -> S0; S2 -> S4 (coordinator) -> S0 */
	reach(&x, XA_ASSOC_S4);
	cr_assert_eq(ts(A), XA_ASSOC_T0);
	cr_assert_eq(xa_assoc_rollback(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_ROLLBACK, XA_OK),
		     XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S0);
	reach(&x, XA_ASSOC_S2);
	cr_assert_eq(xa_assoc_rollback_only(a, RM, &x, XA_RBTIMEOUT), XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S4);
	cr_assert_eq(xa_assoc_prepare(a, A, RM, &x, 0), XA_RBTIMEOUT);
	cr_assert_eq(bs(&x), XA_ASSOC_S4);
}

/* The coordinator finished a branch: dropped when no thread is on it and
 * no verb is in flight; kept (XAER_PROTO) otherwise. */
Test(assoc, drop_finished_branches)
{
	static const enum xa_assoc_bstate idle[] = {XA_ASSOC_S2, XA_ASSOC_S3,
						    XA_ASSOC_S4, XA_ASSOC_S5};
	struct xa_xid x = X(1, "g", "b"), y = X(1, "g", "c");

	for (size_t i = 0; i < sizeof(idle) / sizeof(idle[0]); i++) {
		reach(&x, idle[i]);
		cr_assert_eq(xa_assoc_drop(a, RM, &x), XA_OK, "%s",
			     xa_assoc_branch_name(idle[i]));
		cr_assert_eq(bs(&x), XA_ASSOC_S0);
	}
	cr_assert_eq(xa_assoc_drop(a, RM, &x), XAER_NOTA);
	/* Associated (S1, S4 before its xa_end) or busy: kept. */
	reach(&x, XA_ASSOC_S1);
	cr_assert_eq(xa_assoc_drop(a, RM, &x), XAER_PROTO);
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUCCESS), XA_OK);
	cr_assert_eq(xa_assoc_prepare(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_drop(a, RM, &x), XAER_PROTO);
	cr_assert_eq(bs(&x), XA_ASSOC_S2);
	cr_assert_eq(xa_assoc_start(a, B, RM, &y, TMNOFLAGS), XA_OK);
	cr_assert_eq(xa_assoc_rollback_only(a, RM, &y, XA_RBTIMEOUT), XA_OK);
	cr_assert_eq(xa_assoc_drop(a, RM, &y), XAER_PROTO);
	cr_assert(xa_assoc_invariants(a, NULL, 0));
}

/* --- every verb in every state -------------------------------------------- */

enum probe {
	P_START,
	P_JOIN,
	P_RESUME,
	P_END,
	P_PREPARE,
	P_COMMIT,
	P_COMMIT1,
	P_ROLLBACK,
	P_FORGET,
	P_N
};

static int probe(enum probe p, const struct xa_xid *x)
{
	switch (p) {
	case P_START:
		return xa_assoc_start(a, B, RM, x, TMNOFLAGS);
	case P_JOIN:
		return xa_assoc_start(a, B, RM, x, TMJOIN);
	case P_RESUME:
		return xa_assoc_start(a, B, RM, x, TMRESUME);
	case P_END:
		return xa_assoc_end(a, B, RM, x, TMSUCCESS);
	case P_PREPARE:
		return xa_assoc_prepare(a, B, RM, x, 0);
	case P_COMMIT:
		return xa_assoc_commit(a, B, RM, x, 0);
	case P_COMMIT1:
		return xa_assoc_commit(a, B, RM, x, TMONEPHASE);
	case P_ROLLBACK:
		return xa_assoc_rollback(a, B, RM, x, 0);
	case P_FORGET:
		return xa_assoc_forget(a, B, RM, x, 0);
	default:
		return 1;
	}
}

/* The answer to thread B (opened, not associated) in each branch state. */
#define OK XA_OK
#define PR XAER_PROTO
#define RB XA_RBROLLBACK
#define HC XA_HEURCOM
static const int want_code[XA_ASSOC_S_N][P_N] = {
    /*         start  join   resume end    prep   commit 1phase rollbk forget */
    [XA_ASSOC_S0] = {OK, XAER_NOTA, XAER_NOTA, XAER_NOTA, XAER_NOTA, XAER_NOTA,
		     XAER_NOTA, XAER_NOTA, XAER_NOTA},
    [XA_ASSOC_S1] = {XAER_DUPID, OK, PR, PR, PR, PR, PR, PR, PR},
    [XA_ASSOC_S2] = {XAER_DUPID, OK, PR, PR, OK, PR, OK, OK, PR},
    [XA_ASSOC_S3] = {XAER_DUPID, PR, PR, PR, PR, OK, PR, OK, PR},
    [XA_ASSOC_S4] = {XAER_DUPID, RB, PR, PR, RB, PR, RB, OK, PR},
    [XA_ASSOC_S5] = {XAER_DUPID, PR, PR, PR, PR, HC, HC, HC, OK},
};

Test(assoc, every_verb_in_every_state)
{
	for (int s = 0; s < XA_ASSOC_S_N; s++)
		for (int p = 0; p < P_N; p++) {
			struct xa_xid x = X(3, "state", "probe");

			teardown();
			setup();
			reach(&x, (enum xa_assoc_bstate)s);
			int rc = probe((enum probe)p, &x);
			char why[128] = "";
			cr_assert(xa_assoc_invariants(a, why, sizeof(why)),
				  "%s probe %d: %s", xa_assoc_branch_name(s), p,
				  why);
			cr_assert_eq(
			    rc, want_code[s][p], "%s probe %d: got %d, want %d",
			    xa_assoc_branch_name(s), p, rc, want_code[s][p]);
			if (rc != XA_OK)
				/* A refused verb changes nothing. */
				cr_assert_eq(bs(&x), s, "%s probe %d",
					     xa_assoc_branch_name(s), p);
		}
}

/* --- thread states -------------------------------------------------------- */

Test(assoc, thread_moves)
{
	struct xa_xid x = X(1, "t", "1"), y = X(1, "t", "2");

	cr_assert_eq(ts(A), XA_ASSOC_T0);
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUCCESS), XAER_NOTA);
	cr_assert_eq(xa_assoc_start(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(ts(A), XA_ASSOC_T1);
	/* T1: no second association, not even another branch */
	cr_assert_eq(xa_assoc_start(a, A, RM, &y, 0), XAER_PROTO);
	cr_assert_eq(bs(&y), XA_ASSOC_S0);
	cr_assert_eq(xa_assoc_start(a, A, RM, &x, TMJOIN), XAER_PROTO);
	cr_assert_eq(xa_assoc_start(a, A, RM, &x, TMRESUME), XAER_PROTO);
	/* T1 -> T2 */
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUSPEND), XA_OK);
	cr_assert_eq(ts(A), XA_ASSOC_T2);
	cr_assert_eq(bs(&x), XA_ASSOC_S1); /* suspended is still active */
	cr_assert_eq(xa_assoc_prepare(a, A, RM, &x, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_rollback(a, A, RM, &x, 0), XAER_PROTO);
	/* T2: only resume or end of that XID */
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUSPEND), XAER_PROTO);
	cr_assert_eq(xa_assoc_start(a, A, RM, &y, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_start(a, A, RM, &x, TMJOIN), XAER_PROTO);
	cr_assert_eq(xa_assoc_start(a, A, RM, &x, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_close(a, A, RM, 0), XAER_PROTO);
	/* T2 -> T1 -> T2 -> T0 */
	cr_assert_eq(xa_assoc_start(a, A, RM, &x, TMRESUME), XA_OK);
	cr_assert_eq(ts(A), XA_ASSOC_T1);
	cr_assert_eq(xa_assoc_close(a, A, RM, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUSPEND), XA_OK);
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUCCESS), XA_OK);
	cr_assert_eq(ts(A), XA_ASSOC_T0);
	cr_assert_eq(bs(&x), XA_ASSOC_S2);
	/* T0: end is a protocol error for a known branch */
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUCCESS), XAER_PROTO);
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUSPEND), XAER_PROTO);
	/* a suspended association can end with TMFAIL too */
	cr_assert_eq(xa_assoc_start(a, A, RM, &y, 0), XA_OK);
	cr_assert_eq(xa_assoc_end(a, A, RM, &y, TMSUSPEND), XA_OK);
	cr_assert_eq(xa_assoc_end(a, A, RM, &y, TMFAIL), XA_RBROLLBACK);
	cr_assert_eq(ts(A), XA_ASSOC_T0);
	cr_assert_eq(bs(&y), XA_ASSOC_S4);
}

Test(assoc, open_close)
{
	struct xa_xid x = X(1, "o", "c");
	const uint64_t C = 1003;

	/* never opened: every verb is a protocol error */
	cr_assert_eq(xa_assoc_start(a, C, RM, &x, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_start(a, A, RM + 1, &x, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_start(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_end(a, C, RM, &x, TMSUCCESS), XAER_PROTO);
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUCCESS), XA_OK);
	cr_assert_eq(xa_assoc_prepare(a, C, RM, &x, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_commit(a, C, RM, &x, TMONEPHASE), XAER_PROTO);
	cr_assert_eq(xa_assoc_rollback(a, C, RM, &x, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_forget(a, C, RM, &x, 0), XAER_PROTO);
	/* open twice is fine; close forgets the thread, not the branch */
	cr_assert_eq(xa_assoc_open(a, C, RM, 0), XA_OK);
	cr_assert_eq(xa_assoc_open(a, C, RM, 0), XA_OK);
	cr_assert_eq(xa_assoc_close(a, A, RM, 0), XA_OK);
	cr_assert_eq(xa_assoc_close(a, A, RM, 0), XA_OK);
	cr_assert_eq(xa_assoc_prepare(a, A, RM, &x, 0), XAER_PROTO);
	cr_assert_eq(bs(&x), XA_ASSOC_S2);
	cr_assert_eq(xa_assoc_prepare(a, C, RM, &x, 0), XA_OK);
}

/* --- several threads on one branch ---------------------------------------- */

Test(assoc, joined_by_two_threads)
{
	struct xa_xid x = X(1, "join", "b");

	cr_assert_eq(xa_assoc_start(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_start(a, B, RM, &x, TMJOIN), XA_OK);
	cr_assert_eq(ts(A), XA_ASSOC_T1);
	cr_assert_eq(ts(B), XA_ASSOC_T1);
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUCCESS), XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S1, "B still works in it");
	cr_assert_eq(xa_assoc_prepare(a, A, RM, &x, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_end(a, B, RM, &x, TMSUSPEND), XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S1, "B's suspension keeps it active");
	cr_assert_eq(xa_assoc_end(a, B, RM, &x, TMSUCCESS), XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S2);
}

Test(assoc, one_thread_fails_a_joined_branch)
{
	struct xa_xid x = X(1, "join", "f");

	cr_assert_eq(xa_assoc_start(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_start(a, B, RM, &x, TMJOIN), XA_OK);
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMFAIL), XA_RBROLLBACK);
	cr_assert_eq(bs(&x), XA_ASSOC_S4);
	/* B still holds it: no rollback yet, and a rejoin is refused */
	cr_assert_eq(xa_assoc_rollback(a, A, RM, &x, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_start(a, A, RM, &x, TMJOIN), XA_RBROLLBACK);
	cr_assert_eq(ts(A), XA_ASSOC_T0);
	/* B's end, even TMSUCCESS or TMSUSPEND, reports the rollback */
	cr_assert_eq(xa_assoc_end(a, B, RM, &x, TMSUSPEND), XA_RBROLLBACK);
	cr_assert_eq(ts(B), XA_ASSOC_T0);
	cr_assert_eq(xa_assoc_rollback(a, A, RM, &x, 0), XA_OK);
}

Test(assoc, rollback_only_from_coordinator)
{
	struct xa_xid x = X(1, "rbo", "1"), u = X(1, "unknown", "1");

	cr_assert_eq(xa_assoc_start(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_start(a, B, RM, &x, TMJOIN), XA_OK);
	cr_assert_eq(xa_assoc_end(a, B, RM, &x, TMSUSPEND), XA_OK);
	cr_assert_eq(xa_assoc_rollback_only(a, RM, &x, XA_OK), XAER_INVAL);
	cr_assert_eq(xa_assoc_rollback_only(a, RM, &x, XA_RBEND + 1),
		     XAER_INVAL);
	cr_assert_eq(xa_assoc_rollback_only(a, RM, &u, XA_RBTIMEOUT),
		     XAER_NOTA);
	cr_assert_eq(xa_assoc_rollback_only(a, RM, &x, XA_RBTIMEOUT), XA_OK);
	cr_assert_eq(xa_assoc_rollback_only(a, RM, &x, XA_RBOTHER), XA_OK);
	/* the resume of a suspended association reports it, stays T2 */
	cr_assert_eq(xa_assoc_start(a, B, RM, &x, TMRESUME), XA_RBTIMEOUT);
	cr_assert_eq(ts(B), XA_ASSOC_T2);
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUCCESS), XA_RBTIMEOUT);
	cr_assert_eq(xa_assoc_end(a, B, RM, &x, TMSUCCESS), XA_RBTIMEOUT);
	cr_assert_eq(xa_assoc_commit(a, A, RM, &x, TMONEPHASE), XA_RBTIMEOUT);
	cr_assert_eq(xa_assoc_rollback(a, A, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_ROLLBACK, XA_OK),
		     XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S0);

	/* prepared and heuristic branches cannot become rollback-only */
	reach(&x, XA_ASSOC_S3);
	cr_assert_eq(xa_assoc_rollback_only(a, RM, &x, XA_RBOTHER), XAER_PROTO);
	cr_assert_eq(bs(&x), XA_ASSOC_S3);
}

/* --- suspension and migration --------------------------------------------- */

Test(assoc, no_migration)
{
	struct xa_xid x = X(1, "mig", "1");

	cr_assert_eq(xa_assoc_start(a, A, RM, &x, 0), XA_OK);
	/* TMMIGRATE: suspended anyway, but it may not migrate */
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUSPEND | TMMIGRATE),
		     XA_NOMIGRATE);
	cr_assert_eq(ts(A), XA_ASSOC_T2);
	/* B may not resume nor end A's suspended association */
	cr_assert_eq(xa_assoc_start(a, B, RM, &x, TMRESUME), XA_NOMIGRATE);
	cr_assert_eq(ts(B), XA_ASSOC_T0);
	cr_assert_eq(xa_assoc_end(a, B, RM, &x, TMSUCCESS), XAER_PROTO);
	cr_assert_eq(xa_assoc_end(a, B, RM, &x, TMFAIL), XAER_PROTO);
	cr_assert_eq(bs(&x), XA_ASSOC_S1);
	/* but B may join the branch as itself */
	cr_assert_eq(xa_assoc_start(a, B, RM, &x, TMJOIN), XA_OK);
	cr_assert_eq(xa_assoc_end(a, B, RM, &x, TMSUCCESS), XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S1);
	cr_assert_eq(xa_assoc_start(a, A, RM, &x, TMRESUME), XA_OK);
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUCCESS), XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S2);
	/* nobody suspended: resume is a protocol error */
	cr_assert_eq(xa_assoc_start(a, B, RM, &x, TMRESUME), XAER_PROTO);
}

struct peer {
	const struct xa_xid *x;
	int resume, end, join, endjoin;
	uint64_t tid;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;

	p->tid = xa_assoc_self();
	xa_assoc_open(a, p->tid, RM, 0);
	p->resume = xa_assoc_start(a, p->tid, RM, p->x, TMRESUME);
	p->end = xa_assoc_end(a, p->tid, RM, p->x, TMSUCCESS);
	p->join = xa_assoc_start(a, p->tid, RM, p->x, TMJOIN);
	p->endjoin = xa_assoc_end(a, p->tid, RM, p->x, TMSUCCESS);
	xa_assoc_close(a, p->tid, RM, 0);
	return NULL;
}

Test(assoc, suspend_resume_across_real_threads)
{
	struct xa_xid x = X(1, "real", "t");
	uint64_t me = xa_assoc_self();
	struct peer p = {.x = &x};
	pthread_t th;

	cr_assert_eq(xa_assoc_open(a, me, RM, 0), XA_OK);
	cr_assert_eq(xa_assoc_start(a, me, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_end(a, me, RM, &x, TMSUSPEND), XA_OK);
	cr_assert_eq(pthread_create(&th, NULL, peer_main, &p), 0);
	cr_assert_eq(pthread_join(th, NULL), 0);
	cr_assert_neq(p.tid, me);
	cr_assert_eq(p.resume, XA_NOMIGRATE);
	cr_assert_eq(p.end, XAER_PROTO);
	cr_assert_eq(p.join, XA_OK);
	cr_assert_eq(p.endjoin, XA_OK);
	cr_assert_eq(xa_assoc_start(a, me, RM, &x, TMRESUME), XA_OK);
	cr_assert_eq(xa_assoc_end(a, me, RM, &x, TMSUCCESS), XA_OK);
	cr_assert_eq(bs(&x), XA_ASSOC_S2);
}

/* Many threads, each its own branches and one shared joined branch. */
#define NTHREADS 4
#define ROUNDS	 300

static struct xa_xid shared;

static void *worker(void *arg)
{
	long id = (long)(intptr_t)arg, bad = 0;
	uint64_t me = xa_assoc_self();
	char g[16];

	if (xa_assoc_open(a, me, RM, 0) != XA_OK)
		return (void *)1;
	for (int i = 0; i < ROUNDS; i++) {
		struct xa_xid x;

		snprintf(g, sizeof(g), "w%ld-%d", id, i);
		xa_xid_init(&x, 9, g, strlen(g), "b", 1);
		bad += xa_assoc_start(a, me, RM, &x, 0) != XA_OK;
		bad += xa_assoc_end(a, me, RM, &x, TMSUSPEND) != XA_OK;
		bad += xa_assoc_start(a, me, RM, &x, TMRESUME) != XA_OK;
		bad += xa_assoc_end(a, me, RM, &x, TMSUCCESS) != XA_OK;
		bad += xa_assoc_prepare(a, me, RM, &x, 0) != XA_OK;
		bad += xa_assoc_complete(a, RM, &x, XA_ASSOC_PREPARE, XA_OK) !=
		       XA_OK;
		bad += xa_assoc_commit(a, me, RM, &x, 0) != XA_OK;
		bad += xa_assoc_complete(a, RM, &x, XA_ASSOC_COMMIT, XA_OK) !=
		       XA_OK;
		bad += xa_assoc_start(a, me, RM, &shared, TMJOIN) != XA_OK;
		bad += xa_assoc_end(a, me, RM, &shared, TMSUCCESS) != XA_OK;
		bad += !xa_assoc_invariants(a, NULL, 0);
	}
	bad += xa_assoc_close(a, me, RM, 0) != XA_OK;
	return (void *)(intptr_t)bad;
}

Test(assoc, concurrent_threads)
{
	pthread_t th[NTHREADS];

	shared = X(1, "shared", "s");
	cr_assert_eq(xa_assoc_start(a, A, RM, &shared, 0), XA_OK);
	for (long i = 0; i < NTHREADS; i++)
		cr_assert_eq(
		    pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i),
		    0);
	for (int i = 0; i < NTHREADS; i++) {
		void *bad;

		cr_assert_eq(pthread_join(th[i], &bad), 0);
		cr_assert_eq((intptr_t)bad, 0, "worker %d", i);
	}
	cr_assert_eq(bs(&shared), XA_ASSOC_S1); /* A is still in it */
	cr_assert_eq(xa_assoc_end(a, A, RM, &shared, TMSUCCESS), XA_OK);
	cr_assert_eq(bs(&shared), XA_ASSOC_S2);
}

/* --- completion bookkeeping ----------------------------------------------- */

Test(assoc, busy_and_complete)
{
	struct xa_xid x = X(1, "busy", "1");

	reach(&x, XA_ASSOC_S2);
	/* complete without a check */
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_PREPARE, XA_OK),
		     XAER_PROTO);
	cr_assert_eq(bs(&x), XA_ASSOC_S2);
	cr_assert_eq(xa_assoc_prepare(a, A, RM, &x, 0), XA_OK);
	/* busy: every other verb waits its turn */
	cr_assert_eq(xa_assoc_prepare(a, B, RM, &x, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_rollback(a, B, RM, &x, 0), XAER_PROTO);
	cr_assert_eq(xa_assoc_commit(a, B, RM, &x, TMONEPHASE), XAER_PROTO);
	cr_assert_eq(xa_assoc_start(a, B, RM, &x, TMJOIN), XAER_PROTO);
	cr_assert_eq(xa_assoc_rollback_only(a, RM, &x, XA_RBOTHER), XAER_PROTO);
	/* the wrong verb's outcome is refused */
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_COMMIT, XA_OK),
		     XAER_PROTO);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, 0, XA_OK), XAER_INVAL);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, 99, XA_OK), XAER_INVAL);
	/* a failure leaves the state, and the verb can be retried */
	cr_assert_eq(
	    xa_assoc_complete(a, RM, &x, XA_ASSOC_PREPARE, XAER_RMFAIL),
	    XAER_RMFAIL);
	cr_assert_eq(bs(&x), XA_ASSOC_S2);
	cr_assert_eq(xa_assoc_prepare(a, B, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_PREPARE, XA_OK),
		     XA_OK);
	cr_assert_eq(xa_assoc_commit(a, B, RM, &x, 0), XA_OK);
	cr_assert_eq(xa_assoc_complete(a, RM, &x, XA_ASSOC_COMMIT, XA_RETRY),
		     XA_RETRY);
	cr_assert_eq(bs(&x), XA_ASSOC_S3);
}

/* --- hostile input -------------------------------------------------------- */

Test(assoc, hostile_flags)
{
	struct xa_xid x = X(1, "flags", "1");
	static const long bad_start[] = {
	    TMJOIN | TMRESUME,
	    TMASYNC,
	    TMASYNC | TMJOIN,
	    TMSUSPEND,
	    TMSUCCESS,
	    TMFAIL,
	    TMONEPHASE,
	    TMMIGRATE,
	    TMREGISTER,
	    0x8,
	    -1L,
	    TMSTARTRSCAN,
	};
	static const long bad_end[] = {
	    TMNOFLAGS,
	    TMSUSPEND | TMFAIL,
	    TMSUCCESS | TMFAIL,
	    TMSUSPEND | TMSUCCESS,
	    TMMIGRATE,
	    TMSUCCESS | TMMIGRATE,
	    TMFAIL | TMMIGRATE,
	    TMASYNC | TMSUCCESS,
	    TMJOIN,
	    TMRESUME,
	    TMNOWAIT | TMSUCCESS,
	    -1L,
	};
	static const long bad_other[] = {TMASYNC, TMFAIL, TMJOIN, -1L, 0x10};

	for (size_t i = 0; i < sizeof(bad_start) / sizeof(long); i++)
		cr_assert_eq(xa_assoc_start(a, A, RM, &x, bad_start[i]),
			     XAER_INVAL, "start %#lx", bad_start[i]);
	cr_assert_eq(bs(&x), XA_ASSOC_S0);
	cr_assert_eq(ts(A), XA_ASSOC_T0);
	cr_assert_eq(xa_assoc_start(a, A, RM, &x, TMNOWAIT), XA_OK);
	for (size_t i = 0; i < sizeof(bad_end) / sizeof(long); i++)
		cr_assert_eq(xa_assoc_end(a, A, RM, &x, bad_end[i]), XAER_INVAL,
			     "end %#lx", bad_end[i]);
	cr_assert_eq(ts(A), XA_ASSOC_T1);
	cr_assert_eq(xa_assoc_end(a, A, RM, &x, TMSUCCESS), XA_OK);
	for (size_t i = 0; i < sizeof(bad_other) / sizeof(long); i++) {
		long f = bad_other[i];

		cr_assert_eq(xa_assoc_prepare(a, A, RM, &x, f), XAER_INVAL);
		cr_assert_eq(xa_assoc_commit(a, A, RM, &x, f), XAER_INVAL);
		cr_assert_eq(xa_assoc_rollback(a, A, RM, &x, f), XAER_INVAL);
		cr_assert_eq(xa_assoc_forget(a, A, RM, &x, f), XAER_INVAL);
		cr_assert_eq(xa_assoc_open(a, A, RM, f), XAER_INVAL);
		cr_assert_eq(xa_assoc_close(a, A, RM, f), XAER_INVAL);
	}
	cr_assert_eq(xa_assoc_prepare(a, A, RM, &x, TMONEPHASE), XAER_INVAL);
	cr_assert_eq(xa_assoc_commit(a, A, RM, &x, TMONEPHASE | TMASYNC),
		     XAER_INVAL);
	cr_assert_eq(bs(&x), XA_ASSOC_S2);
	/* TMNOWAIT on commit is accepted and ignored */
	cr_assert_eq(xa_assoc_commit(a, A, RM, &x, TMONEPHASE | TMNOWAIT),
		     XA_OK);
}

Test(assoc, hostile_xids_and_handles)
{
	struct xa_xid good = X(1, "g", "b"), bad = good;

	cr_assert_eq(xa_assoc_start(NULL, A, RM, &good, 0), XAER_INVAL);
	cr_assert_eq(xa_assoc_start(a, A, RM, NULL, 0), XAER_INVAL);
	cr_assert_eq(xa_assoc_end(a, A, RM, NULL, TMSUCCESS), XAER_INVAL);
	cr_assert_eq(xa_assoc_prepare(a, A, RM, NULL, 0), XAER_INVAL);
	cr_assert_eq(xa_assoc_complete(a, RM, NULL, XA_ASSOC_PREPARE, 0),
		     XAER_INVAL);
	cr_assert_eq(xa_assoc_rollback_only(a, RM, NULL, XA_RBOTHER),
		     XAER_INVAL);
	cr_assert_eq(xa_assoc_open(NULL, A, RM, 0), XAER_INVAL);
	cr_assert_eq(xa_assoc_new(NULL), SETTLE_EINVAL);
	cr_assert_eq(xa_assoc_branch_state(NULL, RM, &good), XA_ASSOC_S0);
	cr_assert_eq(xa_assoc_thread_state(NULL, A, RM), XA_ASSOC_T0);
	cr_assert(!xa_assoc_invariants(NULL, NULL, 0));
	xa_assoc_free(NULL);

	bad.format_id = -1;
	cr_assert_eq(xa_assoc_start(a, A, RM, &bad, 0), XAER_INVAL);
	bad = good;
	bad.gtrid_len = 0;
	cr_assert_eq(xa_assoc_start(a, A, RM, &bad, 0), XAER_INVAL);
	bad = good;
	bad.bqual_len = 65;
	cr_assert_eq(xa_assoc_start(a, A, RM, &bad, 0), XAER_INVAL);
	cr_assert_eq(ts(A), XA_ASSOC_T0);
}

Test(assoc, xid_from_tm)
{
	XID in;
	struct xa_xid out, want = X(42, "gt", "bq");

	memset(&in, 0x5a, sizeof(in)); /* garbage past the used bytes */
	in.formatID = 42;
	in.gtrid_length = 2;
	in.bqual_length = 2;
	memcpy(in.data, "gtbq", 4);
	cr_assert_eq(xa_assoc_xid(&in, &out), XA_OK);
	cr_assert(xa_xid_equal(&out, &want));

	long bad[][3] = {{-1, 2, 2},
			 {42, 0, 2},
			 {42, 2, 0},
			 {42, 65, 2},
			 {42, 2, 65},
			 {42, -1, 2},
			 {(long)INT32_MAX + 1, 2, 2},
			 {42, 64, 64 + 1}};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		in.formatID = bad[i][0];
		in.gtrid_length = bad[i][1];
		in.bqual_length = bad[i][2];
		cr_assert_eq(xa_assoc_xid(&in, &out), XAER_INVAL, "row %zu", i);
	}
	cr_assert_eq(xa_assoc_xid(NULL, &out), XAER_INVAL);
	cr_assert_eq(xa_assoc_xid(&in, NULL), XAER_INVAL);
}

Test(assoc, xids_compared_field_by_field)
{
	/* the same three bytes, split differently: two branches */
	struct xa_xid ab_c = X(1, "ab", "c"), a_bc = X(1, "a", "bc");
	struct xa_xid f2 = X(2, "ab", "c"), same = X(1, "ab", "c");

	same.data[100] = 0x77; /* unused bytes are not part of the XID */
	cr_assert_eq(xa_assoc_start(a, A, RM, &ab_c, 0), XA_OK);
	cr_assert_eq(xa_assoc_start(a, B, RM, &a_bc, 0), XA_OK);
	cr_assert_eq(xa_assoc_end(a, A, RM, &a_bc, TMSUCCESS), XAER_PROTO);
	cr_assert_eq(xa_assoc_end(a, A, RM, &f2, TMSUCCESS), XAER_NOTA);
	cr_assert_eq(xa_assoc_end(a, A, RM, &same, TMSUCCESS), XA_OK);
	cr_assert_eq(bs(&ab_c), XA_ASSOC_S2);
	cr_assert_eq(bs(&a_bc), XA_ASSOC_S1);
	cr_assert_eq(bs(&f2), XA_ASSOC_S0);
	cr_assert_eq(xa_assoc_start(a, A, RM, &f2, 0), XA_OK);
	cr_assert_eq(xa_assoc_start(a, A, RM, &same, TMJOIN), XAER_PROTO);
	/* the same XID under another rmid is another branch */
	cr_assert_eq(xa_assoc_open(a, A, RM + 1, 0), XA_OK);
	cr_assert_eq(xa_assoc_start(a, A, RM + 1, &ab_c, 0), XA_OK);
	cr_assert_eq(xa_assoc_branch_state(a, RM + 1, &ab_c), XA_ASSOC_S1);
	cr_assert_eq(bs(&ab_c), XA_ASSOC_S2);
}

/* --- recovery scan -------------------------------------------------------- */

Test(assoc, recover_scan)
{
	XID xids[4];
	uint64_t pos = 99;

	/* hostile arguments */
	cr_assert_eq(xa_assoc_recover(a, A, RM, NULL, 1, TMSTARTRSCAN, &pos),
		     XAER_INVAL);
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, -1, TMSTARTRSCAN, &pos),
		     XAER_INVAL);
	cr_assert_eq(
	    xa_assoc_recover(a, A, RM, xids, 4, TMSTARTRSCAN | TMASYNC, &pos),
	    XAER_INVAL);
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, 4, TMJOIN, &pos),
		     XAER_INVAL);
	cr_assert_eq(xa_assoc_recover(NULL, A, RM, xids, 4, TMSTARTRSCAN, &pos),
		     XAER_INVAL);
	/* no scan open and no TMSTARTRSCAN */
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, 4, TMNOFLAGS, &pos),
		     XAER_INVAL);
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, 4, TMENDRSCAN, &pos),
		     XAER_INVAL);
	cr_assert_eq(xa_assoc_recover_done(a, A, RM, 0, 4, 0), XAER_PROTO);
	/* not opened */
	cr_assert_eq(xa_assoc_recover(a, 1003, RM, xids, 4, TMSTARTRSCAN, &pos),
		     XAER_PROTO);
	cr_assert_eq(pos, 99u);

	/* a scan in pages of 4: 4, 4, then 1 ends it */
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, 4, TMSTARTRSCAN, &pos),
		     XA_OK);
	cr_assert_eq(pos, 0u);
	cr_assert_eq(xa_assoc_recover_done(a, A, RM, 5, 4, 0), XAER_INVAL);
	cr_assert_eq(xa_assoc_recover_done(a, A, RM, -1, 4, 0), XAER_INVAL);
	cr_assert_eq(xa_assoc_recover_done(a, A, RM, 4, 4, 0), XA_OK);
	/* B has a scan of its own, or none */
	cr_assert_eq(xa_assoc_recover(a, B, RM, xids, 4, TMNOFLAGS, &pos),
		     XAER_INVAL);
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, 4, TMNOFLAGS, &pos),
		     XA_OK);
	cr_assert_eq(pos, 4u);
	cr_assert_eq(xa_assoc_recover_done(a, A, RM, 4, 4, 0), XA_OK);
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, 4, TMNOFLAGS, &pos),
		     XA_OK);
	cr_assert_eq(pos, 8u);
	cr_assert_eq(xa_assoc_recover_done(a, A, RM, 1, 4, 0), XA_OK);
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, 4, TMNOFLAGS, &pos),
		     XAER_INVAL, "a short page ends the scan");

	/* TMENDRSCAN ends it; TMSTARTRSCAN restarts from 0 */
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, 4, TMSTARTRSCAN, &pos),
		     XA_OK);
	cr_assert_eq(xa_assoc_recover_done(a, A, RM, 4, 4, 0), XA_OK);
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, 4, TMSTARTRSCAN, NULL),
		     XA_OK);
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, 4, TMENDRSCAN, &pos),
		     XA_OK);
	cr_assert_eq(pos, 0u);
	cr_assert_eq(xa_assoc_recover_done(a, A, RM, 4, 4, TMENDRSCAN), XA_OK);
	cr_assert_eq(xa_assoc_recover(a, A, RM, xids, 4, TMNOFLAGS, &pos),
		     XAER_INVAL);
	/* count 0 with NULL is a valid (empty) call; close drops a scan */
	cr_assert_eq(xa_assoc_recover(a, A, RM, NULL, 0,
				      TMSTARTRSCAN | TMENDRSCAN, &pos),
		     XA_OK);
	cr_assert_eq(xa_assoc_recover(a, B, RM, xids, 4, TMSTARTRSCAN, &pos),
		     XA_OK);
	cr_assert_eq(xa_assoc_close(a, B, RM, 0), XA_OK);
	cr_assert_eq(xa_assoc_open(a, B, RM, 0), XA_OK);
	cr_assert_eq(xa_assoc_recover(a, B, RM, xids, 4, TMNOFLAGS, &pos),
		     XAER_INVAL);
}

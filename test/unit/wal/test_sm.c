#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "wal/sm.h"

/* The expected tables, written out independently of wal/sm.c. */
enum { N = 0, A, CG, CD, RB, RD };
static const char *const TX_LEGAL[] = {"N>A",  "A>CG",	"A>CD", "A>RB",
				       "A>RD", "CG>CD", "RB>RD"};
static const char *const tx_short[] = {"N", "A", "CG", "CD", "RB", "RD"};

static bool listed(const char *const *legal, size_t n, const char *a,
		   const char *b)
{
	char m[16];
	snprintf(m, sizeof m, "%s>%s", a, b);
	for (size_t i = 0; i < n; i++)
		if (strcmp(legal[i], m) == 0)
			return true;
	return false;
}

Test(sm, every_tx_move_legal_or_illegal)
{
	int legal = 0;
	for (int from = -1; from <= 6; from++)
		for (int to = -1; to <= 6; to++) {
			bool want =
			    from >= 0 && from <= 5 && to >= 0 && to <= 5 &&
			    listed(TX_LEGAL, 7, tx_short[from], tx_short[to]);
			cr_expect_eq(wal_tx_can_move(from, to), want,
				     "%d -> %d", from, to);
			legal += want;
		}
	cr_expect_eq(legal, 7);
}

static const char *const BR_LEGAL[] = {"N>RG", "RG>CG", "RG>NG", "CG>CD",
				       "CG>F", "NG>ND", "NG>F"};
static const char *const br_short[] = {"N", "RG", "CG", "CD", "NG", "ND", "F"};

Test(sm, every_branch_move_legal_or_illegal)
{
	int legal = 0;
	for (int from = -1; from <= 7; from++)
		for (int to = -1; to <= 7; to++) {
			bool want =
			    from >= 0 && from <= 6 && to >= 0 && to <= 6 &&
			    listed(BR_LEGAL, 7, br_short[from], br_short[to]);
			cr_expect_eq(wal_branch_can_move(from, to), want,
				     "%d -> %d", from, to);
			legal += want;
		}
	cr_expect_eq(legal, 7);
}

Test(sm, names_and_finals)
{
	cr_expect_str_eq(wal_tx_state_name(SETTLE__V1__TX_STATE__COMMITTING),
			 "COMMITTING");
	cr_expect_str_eq(wal_tx_state_name(42), "?");
	cr_expect_str_eq(
	    wal_branch_state_name(SETTLE__V1__BRANCH_STATE__FAILED), "FAILED");
	cr_expect_str_eq(wal_branch_state_name(-1), "?");
	for (int s = 0; s <= 5; s++)
		cr_expect_eq(wal_tx_state_final(s), s == CD || s == RD);
}

Test(sm, invariants)
{
	Settle__V1__TxRecord tx;
	settle__v1__tx_record__init(&tx);
	tx.gid = "g";
	tx.state = SETTLE__V1__TX_STATE__ACTIVE;
	tx.deadline_ms = tx.due_ms = 10;
	tx.next_branch_id = 1;
	char why[128];
	cr_expect(wal_tx_invariants(&tx, why, sizeof why), "%s", why);
	tx.due_ms = 11;
	cr_expect(!wal_tx_invariants(&tx, why, sizeof why));
	tx.due_ms = 10;
	tx.finished_ms = 5;
	cr_expect(!wal_tx_invariants(&tx, why, sizeof why));
	tx.state = SETTLE__V1__TX_STATE__COMMITTED;
	cr_expect(!wal_tx_invariants(&tx, why, sizeof why), "due set");
	tx.due_ms = 0;
	cr_expect(wal_tx_invariants(&tx, why, sizeof why), "%s", why);
	tx.finished_ms = 0;
	cr_expect(!wal_tx_invariants(&tx, why, sizeof why));
	tx.state = SETTLE__V1__TX_STATE__COMMITTING;
	tx.branches = 2;
	tx.next_branch_id = 3;
	tx.pending = 2;
	tx.failed = 1;
	cr_expect(!wal_tx_invariants(&tx, why, sizeof why));
	tx.pending = 1;
	cr_expect(wal_tx_invariants(&tx, why, sizeof why), "%s", why);
	tx.state = 9;
	cr_expect(!wal_tx_invariants(&tx, why, sizeof why));
	tx.state = 99;
	cr_expect(!wal_tx_invariants(&tx, why, sizeof why));
	/* Saga states only in mode SAGA, and the other way round. */
	tx.state = SETTLE__V1__TX_STATE__SAGA_RUNNING;
	cr_expect(!wal_tx_invariants(&tx, why, sizeof why));
	tx.mode = SETTLE__V1__TX_MODE__SAGA;
	cr_expect(wal_tx_invariants(&tx, why, sizeof why), "%s", why);
	tx.state = SETTLE__V1__TX_STATE__COMMITTING;
	cr_expect(!wal_tx_invariants(&tx, why, sizeof why));
	cr_expect_str_eq(wal_tx_state_name(9), "?");
}

/* The saga machines share the checked-move discipline. */
Test(sm, saga_tables_allow_only_the_documented_moves)
{
	cr_expect(wal_saga_can_move(SETTLE__V1__TX_STATE__TX_STATE_UNSPECIFIED,
				    SETTLE__V1__TX_STATE__SAGA_RUNNING));
	cr_expect(wal_saga_can_move(SETTLE__V1__TX_STATE__SAGA_RUNNING,
				    SETTLE__V1__TX_STATE__SAGA_COMPENSATING));
	cr_expect(!wal_saga_can_move(SETTLE__V1__TX_STATE__SAGA_SUCCEEDED,
				     SETTLE__V1__TX_STATE__SAGA_COMPENSATING));
	cr_expect(!wal_saga_can_move(SETTLE__V1__TX_STATE__SAGA_RUNNING,
				     SETTLE__V1__TX_STATE__COMMITTED));
	cr_expect(!wal_tx_can_move(SETTLE__V1__TX_STATE__ACTIVE,
				   SETTLE__V1__TX_STATE__SAGA_RUNNING));
	cr_expect(wal_tx_state_final(SETTLE__V1__TX_STATE__SAGA_COMPENSATED));
	cr_expect(wal_step_can_move(SETTLE__V1__BRANCH_STATE__STEP_ACTING,
				    SETTLE__V1__BRANCH_STATE__STEP_DONE));
	cr_expect(!wal_step_can_move(SETTLE__V1__BRANCH_STATE__STEP_PENDING,
				     SETTLE__V1__BRANCH_STATE__STEP_DONE));
	cr_expect(!wal_step_can_move(SETTLE__V1__BRANCH_STATE__STEP_COMPENSATED,
				     SETTLE__V1__BRANCH_STATE__STEP_ACTING));
	cr_expect(!wal_branch_can_move(SETTLE__V1__BRANCH_STATE__REGISTERED,
				       SETTLE__V1__BRANCH_STATE__STEP_ACTING));
	cr_expect_str_eq(wal_tx_state_name(SETTLE__V1__TX_STATE__SAGA_RUNNING),
			 "SAGA_RUNNING");
}

/*
 * Crash tests: SIGKILL settled at the awkward moments of a TCC
 * transaction, restart it on the same data, and check that every
 * transaction reaches the right final state, that each branch's effect was
 * applied exactly once, and that no money appeared or vanished.
 *
 * Phase two is made slow with settle-bank --confirm-delay-ms (it delays
 * Confirm and Cancel alike), so the kill lands while calls are in flight.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "tcc_util.h"

TestSuite(crash, .init = it_setup, .fini = it_teardown, .timeout = 120);

static void restart_node(struct it_node *n)
{
	it_restart(n->proc);
	it_node_wait_leader(n, 20000);
}

static void assert_books(const struct it_bank *a, const struct it_bank *b,
			 long long alice, long long bob)
{
	cr_assert_eq(alice + bob, 1500, "money not conserved");
	tu_assert_balances(a, b, alice, bob);
}

/* settle-transfer waits for phase two by default; these tests kill the
 * coordinator in the middle of it. */
static const char *const no_wait[] = {"--wait-ms", "0", NULL};

/* (a) The commit decision is durable; phase two has barely started. */
Test(crash, kill_after_decision_before_phase_two_ends)
{
	/* Long enough that no Confirm finishes between the kill and the
	 * balance check, which spawns a process: seconds on a loaded
	 * machine under ASan. */
	static const char *const slow[] = {"--confirm-delay-ms", "3000", NULL};
	struct it_node n;
	struct it_bank a, b;
	char gids[3][SETTLE_GID_BUFSIZE];
	Settle__V1__TxInfo *tx;
	int i;

	it_node_start(&n, 1, NULL);
	it_bank_start(&a, "bank-a", "alice=1000", slow);
	it_bank_start(&b, "bank-b", "bob=500", slow);

	/* --wait-ms 0: settle-transfer returns once the decision is
	 * durable, before any Confirm has finished. */
	for (i = 0; i < 3; i++)
		cr_assert_eq(it_transfer(&n, &a, "alice", &b, "bob", 100,
					 no_wait, gids[i], sizeof(gids[i])),
			     0);
	it_kill(n.proc);
	/* At most one Confirm per bank can have finished by now. */
	cr_assert_gt(it_bank_account(&a, "alice").frozen, 0,
		     "phase two finished before the kill: test too slow");

	restart_node(&n);
	for (i = 0; i < 3; i++) {
		tx = tu_wait_final(&n, gids[i], SETTLE__V1__TX_STATE__COMMITTED,
				   40000);
		settle_tx_info_free(tx);
	}
	assert_books(&a, &b, 700, 800);
}

/* (b) One branch confirmed, the other's Confirm in flight. */
Test(crash, kill_between_branch_confirmations)
{
	struct it_node n;
	struct it_bank a, b;
	char gid[SETTLE_GID_BUFSIZE];
	Settle__V1__TxInfo *tx;
	int waited = 0;

	/* Bob's Confirm is held 6 s, past the default 5 s call timeout. */
	it_node_start(&n, 1,
		      (const char *const[]){"--call-timeout", "15s", NULL});
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(
	    &b, "bank-b", "bob=500",
	    (const char *const[]){"--confirm-delay-ms", "6000", NULL});

	cr_assert_eq(it_transfer(&n, &a, "alice", &b, "bob", 100, no_wait, gid,
				 sizeof(gid)),
		     0);
	/* Kill once alice's side is confirmed and bob's is not. Each poll
	 * spawns settle-bank, which takes seconds on a loaded machine under
	 * ASan: bob's Confirm is held 6 s so that it cannot finish first. */
	while (it_bank_account(&a, "alice").balance != 900) {
		cr_assert_lt(waited, 10000, "alice's confirm never came");
		tu_sleep_ms(20);
		waited += 20;
	}
	cr_assert_eq(it_bank_account(&b, "bob").balance, 500,
		     "bob's confirm finished before the kill: test too slow");
	it_kill(n.proc);

	restart_node(&n);
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__COMMITTED, 40000);
	cr_assert_eq(tx->branches[0]->state,
		     SETTLE__V1__BRANCH_STATE__CONFIRMED);
	cr_assert_eq(tx->branches[1]->state,
		     SETTLE__V1__BRANCH_STATE__CONFIRMED);
	settle_tx_info_free(tx);
	assert_books(&a, &b, 900, 600);
}

/* (c) The deadline passed and the rollback is under way. */
Test(crash, kill_during_deadline_rollback)
{
	static const char *const slow[] = {"--confirm-delay-ms", "1000", NULL};
	struct it_node n;
	struct it_bank a, b;
	char gid[SETTLE_GID_BUFSIZE];
	Settle__V1__TxInfo *tx;
	settle_client *c;

	it_node_start(&n, 1, NULL);
	it_bank_start(&a, "bank-a", "alice=1000", slow);
	it_bank_start(&b, "bank-b", "bob=500", slow);
	c = tu_client(&n);
	tu_begin_and_try(c, 800, &a, "alice", &b, "bob", 100, gid);
	settle_client_close(c);

	tx = tu_wait(&n, gid, tu_is_rolling_back, 20000);
	cr_assert_eq(tx->finished_ms, 0,
		     "the rollback finished before the kill: test too slow");
	settle_tx_info_free(tx);
	it_kill(n.proc);

	restart_node(&n);
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__ROLLED_BACK, 40000);
	cr_assert_eq(tx->branches[0]->state,
		     SETTLE__V1__BRANCH_STATE__CANCELLED);
	cr_assert_eq(tx->branches[1]->state,
		     SETTLE__V1__BRANCH_STATE__CANCELLED);
	settle_tx_info_free(tx);
	assert_books(&a, &b, 1000, 500);
}

/* A clean stop and start in the middle of phase two loses nothing
 * either (SIGTERM, then the same data). */
Test(crash, clean_restart_resumes_phase_two)
{
	struct it_node n;
	struct it_bank a, b;
	char gid[SETTLE_GID_BUFSIZE];
	Settle__V1__TxInfo *tx;

	it_node_start(&n, 1, NULL);
	it_bank_start(&a, "bank-a", "alice=1000",
		      (const char *const[]){"--confirm-delay-ms", "500", NULL});
	it_bank_start(&b, "bank-b", "bob=500", NULL);
	cr_assert_eq(it_transfer(&n, &a, "alice", &b, "bob", 100, NULL, gid,
				 sizeof(gid)),
		     0);
	it_stop(n.proc);
	restart_node(&n);
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__COMMITTED, 40000);
	settle_tx_info_free(tx);
	assert_books(&a, &b, 900, 600);
}

/* The demo bank's ledger: payload parsing and TCC arithmetic. The total of
 * balances is conserved by every complete transfer, and available money
 * never goes negative. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#include "settle_participant.h"

#include "bank_ledger.h"

static char dir[64];
static struct bank bank;

static void setup(void)
{
	char err[256];
	strcpy(dir, "/tmp/settle-bank-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(bank_open(&bank, dir, 0, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(
	    bank_seed(&bank, "alice=1000,bob=500,carol=0", err, sizeof(err)), 0,
	    "%s", err);
}

static void teardown(void)
{
	char cmd[128];
	bank_close(&bank);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(bank, .init = setup, .fini = teardown);

static int apply(int op, const char *acct, int64_t amount, char *err)
{
	MDB_txn *txn;
	char buf[128];
	cr_assert_eq(mdb_txn_begin(bank.env, NULL, 0, &txn), 0);
	int rv = bank_apply(&bank, txn, op, acct, amount, err ? err : buf,
			    sizeof(buf));
	if (rv == 0)
		cr_assert_eq(mdb_txn_commit(txn), 0);
	else
		mdb_txn_abort(txn);
	return rv;
}

static struct bank_account get(const char *acct)
{
	MDB_txn *txn;
	struct bank_account a;
	cr_assert_eq(mdb_txn_begin(bank.env, NULL, MDB_RDONLY, &txn), 0);
	cr_assert_eq(bank_get(&bank, txn, acct, &a), 0);
	mdb_txn_abort(txn);
	return a;
}

static int sum_fn(void *data, const struct bank_account *a)
{
	int64_t *s = data;
	s[0] += a->balance;
	s[1] += a->frozen;
	s[2] += a->incoming;
	cr_expect_geq(a->balance - a->frozen, 0, "%s overdrawn", a->name);
	cr_expect_geq(a->frozen, 0);
	cr_expect_geq(a->incoming, 0);
	return 0;
}

static void totals(int64_t s[3])
{
	MDB_txn *txn;
	s[0] = s[1] = s[2] = 0;
	cr_assert_eq(mdb_txn_begin(bank.env, NULL, MDB_RDONLY, &txn), 0);
	cr_assert_eq(bank_each(&bank, txn, sum_fn, s), 0);
	mdb_txn_abort(txn);
}

Test(bank, transfer_confirmed_moves_money_and_keeps_total)
{
	int64_t t[3];
	cr_assert_eq(apply(SETTLE_OP_TRY, "alice", -300, NULL), 0);
	cr_assert_eq(apply(SETTLE_OP_TRY, "bob", 300, NULL), 0);
	cr_expect_eq(get("alice").frozen, 300);
	cr_expect_eq(get("alice").balance, 1000);
	cr_expect_eq(get("bob").incoming, 300);
	totals(t);
	cr_expect_eq(t[0], 1500);
	cr_assert_eq(apply(SETTLE_OP_CONFIRM, "alice", -300, NULL), 0);
	cr_assert_eq(apply(SETTLE_OP_CONFIRM, "bob", 300, NULL), 0);
	totals(t);
	cr_expect_eq(t[0], 1500);
	cr_expect_eq(t[1], 0);
	cr_expect_eq(t[2], 0);
	cr_expect_eq(get("alice").balance, 700);
	cr_expect_eq(get("bob").balance, 800);
}

Test(bank, transfer_cancelled_restores_everything)
{
	int64_t t[3];
	cr_assert_eq(apply(SETTLE_OP_TRY, "alice", -1000, NULL), 0);
	cr_assert_eq(apply(SETTLE_OP_TRY, "carol", 1000, NULL), 0);
	cr_assert_eq(apply(SETTLE_OP_CANCEL, "alice", -1000, NULL), 0);
	cr_assert_eq(apply(SETTLE_OP_CANCEL, "carol", 1000, NULL), 0);
	totals(t);
	cr_expect_eq(t[0], 1500);
	cr_expect_eq(t[1] + t[2], 0);
	cr_expect_eq(get("alice").balance, 1000);
	cr_expect_eq(get("carol").balance, 0);
}

Test(bank, frozen_money_cannot_be_spent_twice)
{
	char err[128];
	cr_assert_eq(apply(SETTLE_OP_TRY, "bob", -400, NULL), 0);
	cr_expect_eq(apply(SETTLE_OP_TRY, "bob", -101, err), SETTLE_EFAILURE);
	cr_expect_str_eq(err, "insufficient funds");
	cr_expect_eq(apply(SETTLE_OP_TRY, "bob", -100, NULL), 0);
	/* Incoming money is not spendable before its Confirm. */
	cr_assert_eq(apply(SETTLE_OP_TRY, "carol", 50, NULL), 0);
	cr_expect_eq(apply(SETTLE_OP_TRY, "carol", -1, err), SETTLE_EFAILURE);
}

Test(bank, phase_two_without_reservation_fails)
{
	char err[128];
	cr_expect_eq(apply(SETTLE_OP_CONFIRM, "alice", -10, err),
		     SETTLE_EFAILURE);
	cr_expect_str_eq(err, "no reservation to confirm");
	cr_expect_eq(apply(SETTLE_OP_CANCEL, "bob", 10, err), SETTLE_EFAILURE);
	cr_expect_eq(apply(SETTLE_OP_TRY, "nobody", 10, err), SETTLE_EFAILURE);
	cr_expect_str_eq(err, "unknown account");
	cr_expect_eq(get("alice").balance, 1000);
}

Test(bank, random_transfer_sequences_conserve_the_total)
{
	const char *names[] = {"alice", "bob", "carol"};
	int64_t t[3];
	srand(7);
	for (int i = 0; i < 300; i++) {
		const char *from = names[rand() % 3];
		const char *to = names[rand() % 3];
		int64_t amount = 1 + rand() % 400;
		bool ok_from = apply(SETTLE_OP_TRY, from, -amount, NULL) == 0;
		bool ok_to = apply(SETTLE_OP_TRY, to, amount, NULL) == 0;
		bool commit = ok_from && ok_to && rand() % 4 != 0;
		int op = commit ? SETTLE_OP_CONFIRM : SETTLE_OP_CANCEL;
		/* Phase two touches only the legs whose Try took effect (the
		 * barrier turns the others into null compensation). */
		if (ok_from)
			cr_assert_eq(apply(op, from, -amount, NULL), 0);
		if (ok_to)
			cr_assert_eq(apply(op, to, amount, NULL), 0);
		totals(t);
		cr_assert_eq(t[0], 1500, "step %d", i);
		cr_assert_eq(t[1], 0);
		cr_assert_eq(t[2], 0);
	}
}

Test(bank, payloads_parse_strictly)
{
	char acct[BANK_ACCOUNT_MAX + 1];
	char buf[128];
	int64_t amount;
	const char *ok = "account=alice;amount=-100";

	cr_assert_eq(bank_payload_parse((const uint8_t *)ok, strlen(ok), acct,
					sizeof(acct), &amount),
		     0);
	cr_expect_str_eq(acct, "alice");
	cr_expect_eq(amount, -100);
	const char *bad[] = {
	    "",
	    "account=alice",
	    "account=;amount=5",
	    "account=al ice;amount=5",
	    "account=alice;amount=",
	    "account=alice;amount=0",
	    "account=alice;amount=5x",
	    "account=alice;amount=99999999999999999999",
	    "amount=5;account=alice",
	    "account=alice;amount=-",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(bank_payload_parse((const uint8_t *)bad[i],
						strlen(bad[i]), acct,
						sizeof(acct), &amount),
			     SETTLE_EINVAL, "%s", bad[i]);
	/* Not NUL-terminated: the parser stays inside len. */
	cr_expect_eq(bank_payload_parse((const uint8_t *)ok, 10, acct,
					sizeof(acct), &amount),
		     SETTLE_EINVAL);
	cr_assert_gt(bank_payload_format(buf, sizeof(buf), "bob", 42), 0);
	cr_expect_str_eq(buf, "account=bob;amount=42");
	cr_expect_eq(bank_payload_format(buf, 5, "bob", 42), -1);
}

Test(bank, seed_keeps_existing_accounts_and_rejects_garbage)
{
	char err[256];
	cr_assert_eq(apply(SETTLE_OP_TRY, "alice", -1, NULL), 0);
	cr_assert_eq(bank_seed(&bank, "alice=5,dave=9", err, sizeof(err)), 0);
	cr_expect_eq(get("alice").balance, 1000);
	cr_expect_eq(get("alice").frozen, 1);
	cr_expect_eq(get("dave").balance, 9);
	cr_expect_eq(bank_seed(&bank, "eve", err, sizeof(err)), SETTLE_EINVAL);
	cr_expect_eq(bank_seed(&bank, "eve=-1", err, sizeof(err)),
		     SETTLE_EINVAL);
	cr_expect_eq(bank_seed(&bank, "e;ve=1", err, sizeof(err)),
		     SETTLE_EINVAL);
}

/* ---- Saga steps ---------------------------------------------------------- */

Test(bank, saga_action_moves_money_at_once_and_compensate_reverses_it)
{
	char err[128];
	int64_t t[3];

	cr_assert_eq(apply(SETTLE_OP_ACTION, "alice", -100, NULL), 0);
	cr_expect_eq(get("alice").balance, 900);
	cr_expect_eq(get("alice").frozen, 0);
	cr_assert_eq(apply(SETTLE_OP_ACTION, "bob", 100, NULL), 0);
	cr_expect_eq(get("bob").balance, 600);
	cr_expect_eq(get("bob").incoming, 0);
	totals(t);
	cr_expect_eq(t[0], 1500);
	/* A later step failed: both legs are compensated, any order. */
	cr_assert_eq(apply(SETTLE_OP_COMPENSATE, "bob", 100, err), 0, "%s",
		     err);
	cr_assert_eq(apply(SETTLE_OP_COMPENSATE, "alice", -100, NULL), 0);
	cr_expect_eq(get("alice").balance, 1000);
	cr_expect_eq(get("bob").balance, 500);
	totals(t);
	cr_expect_eq(t[0], 1500);
	cr_expect_eq(t[1] + t[2], 0);
}

Test(bank, saga_debit_beyond_available_is_a_failure)
{
	char err[128];

	cr_expect_eq(apply(SETTLE_OP_ACTION, "carol", -1, err),
		     SETTLE_EFAILURE);
	cr_expect_str_eq(err, "insufficient funds");
	/* Money frozen by a TCC Try is not available to a saga either. */
	cr_assert_eq(apply(SETTLE_OP_TRY, "bob", -450, NULL), 0);
	cr_expect_eq(apply(SETTLE_OP_ACTION, "bob", -51, err), SETTLE_EFAILURE);
	cr_expect_eq(apply(SETTLE_OP_ACTION, "bob", -50, NULL), 0);
	cr_expect_eq(get("bob").balance, 450);
	cr_expect_eq(get("bob").frozen, 450);
	cr_expect_eq(apply(SETTLE_OP_ACTION, "nobody", 5, err),
		     SETTLE_EFAILURE);
	cr_expect_str_eq(err, "unknown account");
	cr_expect_eq(apply(SETTLE_OP_ACTION, "bob", 0, err), SETTLE_EFAILURE);
}

Test(bank, saga_taking_back_a_spent_credit_waits)
{
	char err[128];

	cr_assert_eq(apply(SETTLE_OP_ACTION, "carol", 200, NULL), 0);
	cr_assert_eq(apply(SETTLE_OP_ACTION, "carol", -150, NULL), 0);
	/* The credit's compensation cannot happen yet: RETRY, not FAILURE,
	 * since a compensation must eventually succeed. */
	cr_expect_eq(apply(SETTLE_OP_COMPENSATE, "carol", 200, err),
		     SETTLE_ERETRY);
	cr_expect_str_eq(err, "credit to take back already spent");
	cr_expect_eq(get("carol").balance, 50);
	cr_assert_eq(apply(SETTLE_OP_COMPENSATE, "carol", -150, NULL), 0);
	cr_expect_eq(apply(SETTLE_OP_COMPENSATE, "carol", 200, NULL), 0);
	cr_expect_eq(get("carol").balance, 0);
}

/* One participant call as the SDK makes it: barrier and effect in one txn,
 * aborted together unless both succeed. Returns the answer. */
static int saga_call(settle_barrier *bar, const char *gid, uint32_t step,
		     int op, const char *acct, int64_t amount)
{
	MDB_txn *txn;
	char err[128];
	int action = -1;
	int rv;

	cr_assert_eq(mdb_txn_begin(bank.env, NULL, 0, &txn), 0);
	cr_assert_eq(settle_barrier_enter(bar, txn, gid, step, op, &action), 0);
	if (action == SETTLE_BARRIER_REFUSE) {
		mdb_txn_abort(txn);
		return SETTLE_EREFUSED;
	}
	if (action == SETTLE_BARRIER_RUN) {
		rv = bank_apply(&bank, txn, op, acct, amount, err, sizeof(err));
		if (rv != 0) {
			mdb_txn_abort(txn);
			return rv;
		}
	}
	cr_assert_eq(mdb_txn_commit(txn), 0);
	return 0;
}

struct delivery {
	int op;
	int leg; /* 0: debit of from, 1: credit of to */
};

static void shuffle(struct delivery *d, int n)
{
	for (int i = n - 1; i > 0; i--) {
		int j = rand() % (i + 1);
		struct delivery t = d[i];
		d[i] = d[j];
		d[j] = t;
	}
}

/*
 * Random saga transfers (debit step 1, credit step 2) delivered the way a
 * network delivers them: duplicated, and with compensations overtaking
 * their actions. Whatever the order, once a saga is over either both legs
 * took effect or neither did, and the total never changes.
 */
Test(bank, random_saga_deliveries_conserve_the_total)
{
	const char *names[] = {"alice", "bob", "carol"};
	settle_barrier *bar;
	int64_t t[3];
	int done = 0, undone = 0;

	cr_assert_eq(settle_barrier_open(bank.env, &bar), 0);
	srand(11);
	for (int i = 0; i < 400; i++) {
		const char *acct[2] = {names[rand() % 3], names[rand() % 3]};
		int64_t amount = 1 + rand() % 600;
		int64_t leg_amount[2] = {-amount, amount};
		bool compensate = rand() % 3 == 0;
		struct delivery d[8];
		bool failed = false;
		char gid[32];
		int n = 0;

		snprintf(gid, sizeof(gid), "saga-%d", i);
		for (int leg = 0; leg < 2; leg++) {
			int copies = 1 + rand() % 2;
			for (int c = 0; c < copies; c++)
				d[n++] =
				    (struct delivery){SETTLE_OP_ACTION, leg};
			if (compensate)
				d[n++] = (struct delivery){SETTLE_OP_COMPENSATE,
							   leg};
		}
		shuffle(d, n);
		for (int k = 0; k < n; k++) {
			int rv =
			    saga_call(bar, gid, (uint32_t)d[k].leg + 1, d[k].op,
				      acct[d[k].leg], leg_amount[d[k].leg]);
			if (d[k].op == SETTLE_OP_ACTION &&
			    rv == SETTLE_EFAILURE)
				failed = true;
			/* Only a retry-able compensation may fail here. */
			if (d[k].op == SETTLE_OP_COMPENSATE)
				cr_assert(rv == 0 || rv == SETTLE_ERETRY);
			else
				cr_assert(rv == 0 || rv == SETTLE_EFAILURE ||
					  rv == SETTLE_EREFUSED);
		}
		/* The coordinator's side: a failed action (or the chosen
		 * rollback) means compensating both steps until done; a
		 * stale copy of an action may still come after. */
		if (failed || compensate) {
			for (int round = 0; round < 4; round++) {
				int left = 0;
				for (int leg = 0; leg < 2; leg++)
					if (saga_call(bar, gid, leg + 1,
						      SETTLE_OP_COMPENSATE,
						      acct[leg],
						      leg_amount[leg]) != 0)
						left++;
				if (left == 0)
					break;
				cr_assert_lt(round, 3, "compensation stuck");
			}
			cr_expect_eq(saga_call(bar, gid, 1, SETTLE_OP_ACTION,
					       acct[0], leg_amount[0]),
				     SETTLE_EREFUSED);
			undone++;
		} else {
			/* A repeat after the saga ended changes nothing. */
			cr_expect_eq(saga_call(bar, gid, 2, SETTLE_OP_ACTION,
					       acct[1], leg_amount[1]),
				     0);
			done++;
		}
		totals(t);
		cr_assert_eq(t[0], 1500, "saga %d", i);
		cr_assert_eq(t[1] + t[2], 0);
	}
	/* Both outcomes were exercised, and not just trivially. */
	cr_expect_gt(done, 50);
	cr_expect_gt(undone, 50);
	settle_barrier_close(bar);
}

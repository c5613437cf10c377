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

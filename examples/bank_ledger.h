/*
 * bank_ledger.h — the demo bank's accounts and their TCC and Saga arithmetic,
 * kept apart from the server so that tests can check the sums without sockets.
 *
 * An account holds balance, frozen (reserved by Trys of outgoing money) and
 * incoming (announced by Trys of incoming money). Money moves on Confirm,
 * and at once on a saga Action or Compensate; available = balance - frozen
 * never goes below zero.
 */
#ifndef BANK_LEDGER_H
#define BANK_LEDGER_H

#include <stddef.h>
#include <stdint.h>

#include <lmdb.h>

#define BANK_ACCOUNT_MAX 64
/* Amounts are whole units; this bound keeps every sum inside int64. */
#define BANK_AMOUNT_MAX 1000000000000000LL

struct bank_account {
	char name[BANK_ACCOUNT_MAX + 1];
	int64_t balance;
	int64_t frozen;
	int64_t incoming;
};

struct bank {
	MDB_env *env;
	MDB_dbi accounts;
};

/* Account names: 1..64 of [A-Za-z0-9_.-], so they print and quote safely. */
int bank_account_name_ok(const char *name, size_t len);

/*
 * Parse a branch payload "account=NAME;amount=N" (N a nonzero integer,
 * negative when money leaves). SETTLE_EINVAL when malformed; the payload is
 * not kept and never echoed into errors.
 */
int bank_payload_parse(const uint8_t *p, size_t len, char *account,
		       size_t account_len, int64_t *amount);

/* Format a payload; returns its length, or -1 if buf is too small. */
int bank_payload_format(char *buf, size_t len, const char *account,
			int64_t amount);

/*
 * Open (creating) the bank's LMDB env in dir, which must exist. readonly:
 * for reading balances next to a running server. Room is left for the
 * barrier's tables. SETTLE_ESTORE with text in err.
 */
int bank_open(struct bank *b, const char *dir, int readonly, char *err,
	      size_t errlen);
void bank_close(struct bank *b);

/*
 * Create the accounts of spec "alice=1000,bob=500" that do not exist yet
 * (existing ones keep their state, so a restart with the same flags is
 * harmless). SETTLE_EINVAL for a malformed spec.
 */
int bank_seed(struct bank *b, const char *spec, char *err, size_t errlen);

/*
 * Apply one TCC or Saga op (enum settle_op) of amount on account, in txn:
 *   Try(<0)     needs balance - frozen >= -amount, then frozen += -amount
 *   Confirm(<0) balance -= -amount, frozen -= -amount
 *   Cancel(<0)  frozen -= -amount
 *   Try(>0)     incoming += amount
 *   Confirm(>0) balance += amount, incoming -= amount
 *   Cancel(>0)  incoming -= amount
 *   Action      balance += amount, at once; a debit needs
 *               balance - frozen >= -amount
 *   Compensate  balance -= amount; taking a credit back needs
 *               balance - frozen >= amount
 * Returns 0, SETTLE_EFAILURE with the reason in err ("insufficient funds",
 * "unknown account", or a Confirm/Cancel finding no reservation to use),
 * or SETTLE_ERETRY for a storage error or a Compensate that cannot happen
 * yet (the credit it takes back was spent: retry later, never give up).
 */
int bank_apply(struct bank *b, MDB_txn *txn, int op, const char *account,
	       int64_t amount, char *err, size_t errlen);

/* Read one account. SETTLE_ENOTFOUND if absent. */
int bank_get(struct bank *b, MDB_txn *txn, const char *account,
	     struct bank_account *out);

/* Call fn for every account in name order. Stops at the first nonzero
 * return of fn and returns it. */
int bank_each(struct bank *b, MDB_txn *txn,
	      int (*fn)(void *data, const struct bank_account *a), void *data);

#endif /* BANK_LEDGER_H */

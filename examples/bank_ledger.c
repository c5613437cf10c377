#include "error.h"

#include "bank_ledger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settle_participant.h"

/* Value: balance, frozen, incoming as big-endian two's complement. */
#define BANK_VALUE_LEN 24

static void put_i64(uint8_t *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)u;
		u >>= 8;
	}
}

static int64_t get_i64(const uint8_t *p)
{
	uint64_t u = 0;
	for (int i = 0; i < 8; i++)
		u = (u << 8) | p[i];
	return (int64_t)u;
}

int bank_account_name_ok(const char *name, size_t len)
{
	if (len == 0 || len > BANK_ACCOUNT_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = name[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		      ch == '-'))
			return 0;
	}
	return 1;
}

/* Parse a decimal integer of exactly len bytes, bounded by
 * BANK_AMOUNT_MAX. */
static int parse_amount(const char *s, size_t len, int64_t *out)
{
	int64_t v = 0;
	size_t i = 0;
	int neg = 0;

	if (len > 0 && (s[0] == '-' || s[0] == '+')) {
		neg = s[0] == '-';
		i = 1;
	}
	if (i == len)
		return SETTLE_EINVAL;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SETTLE_EINVAL;
		v = v * 10 + (s[i] - '0');
		if (v > BANK_AMOUNT_MAX)
			return SETTLE_EINVAL;
	}
	*out = neg ? -v : v;
	return 0;
}

int bank_payload_parse(const uint8_t *p, size_t len, char *account,
		       size_t account_len, int64_t *amount)
{
	static const char a_key[] = "account=";
	static const char m_key[] = ";amount=";
	const char *s = (const char *)p;
	const char *semi;
	size_t al;

	if (p == NULL || len < sizeof(a_key) - 1 ||
	    memcmp(s, a_key, sizeof(a_key) - 1) != 0)
		return SETTLE_EINVAL;
	s += sizeof(a_key) - 1;
	len -= sizeof(a_key) - 1;
	semi = memchr(s, ';', len);
	if (semi == NULL)
		return SETTLE_EINVAL;
	al = (size_t)(semi - s);
	if (!bank_account_name_ok(s, al) || al >= account_len)
		return SETTLE_EINVAL;
	if (len - al < sizeof(m_key) - 1 ||
	    memcmp(semi, m_key, sizeof(m_key) - 1) != 0)
		return SETTLE_EINVAL;
	if (parse_amount(semi + sizeof(m_key) - 1,
			 len - al - (sizeof(m_key) - 1), amount) != 0 ||
	    *amount == 0)
		return SETTLE_EINVAL;
	memcpy(account, s, al);
	account[al] = '\0';
	return 0;
}

int bank_payload_format(char *buf, size_t len, const char *account,
			int64_t amount)
{
	int n = snprintf(buf, len, "account=%s;amount=%lld", account,
			 (long long)amount);
	return n < 0 || (size_t)n >= len ? -1 : n;
}

int bank_open(struct bank *b, const char *dir, int readonly, char *err,
	      size_t errlen)
{
	MDB_txn *txn;
	int rc;

	memset(b, 0, sizeof(*b));
	rc = mdb_env_create(&b->env);
	if (rc != 0)
		goto err;
	/* accounts + the barrier's two tables. */
	mdb_env_set_maxdbs(b->env, 8);
	mdb_env_set_mapsize(b->env, 256u << 20);
	rc = mdb_env_open(b->env, dir, readonly ? MDB_RDONLY : 0, 0600);
	if (rc != 0)
		goto err_after_env;
	rc = mdb_txn_begin(b->env, NULL, readonly ? MDB_RDONLY : 0, &txn);
	if (rc != 0)
		goto err_after_env;
	rc = mdb_dbi_open(txn, "accounts", readonly ? 0 : MDB_CREATE,
			  &b->accounts);
	if (rc != 0) {
		mdb_txn_abort(txn);
		goto err_after_env;
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0)
		goto err_after_env;
	return 0;

err_after_env:
	mdb_env_close(b->env);
	b->env = NULL;
err:
	snprintf(err, errlen, "%s: %s", dir,
		 rc == MDB_NOTFOUND ? "no bank here" : mdb_strerror(rc));
	return SETTLE_ESTORE;
}

void bank_close(struct bank *b)
{
	if (b->env != NULL)
		mdb_env_close(b->env);
	b->env = NULL;
}

int bank_get(struct bank *b, MDB_txn *txn, const char *account,
	     struct bank_account *out)
{
	MDB_val k = {strlen(account), (void *)account};
	MDB_val v;
	int rc = mdb_get(txn, b->accounts, &k, &v);
	if (rc != 0)
		return settle_err_from_mdb(rc);
	if (v.mv_size != BANK_VALUE_LEN || k.mv_size > BANK_ACCOUNT_MAX)
		return SETTLE_ESTORE;
	snprintf(out->name, sizeof(out->name), "%s", account);
	out->balance = get_i64(v.mv_data);
	out->frozen = get_i64((uint8_t *)v.mv_data + 8);
	out->incoming = get_i64((uint8_t *)v.mv_data + 16);
	return 0;
}

static int bank_put(struct bank *b, MDB_txn *txn, const struct bank_account *a,
		    unsigned flags)
{
	uint8_t buf[BANK_VALUE_LEN];
	MDB_val k = {strlen(a->name), (void *)a->name};
	MDB_val v = {sizeof(buf), buf};
	put_i64(buf, a->balance);
	put_i64(buf + 8, a->frozen);
	put_i64(buf + 16, a->incoming);
	return mdb_put(txn, b->accounts, &k, &v, flags);
}

int bank_seed(struct bank *b, const char *spec, char *err, size_t errlen)
{
	MDB_txn *txn;
	const char *s = spec;
	int rc;

	rc = mdb_txn_begin(b->env, NULL, 0, &txn);
	if (rc != 0) {
		snprintf(err, errlen, "accounts: %s", mdb_strerror(rc));
		return SETTLE_ESTORE;
	}
	while (*s != '\0') {
		const char *end = strchr(s, ',');
		size_t len = end != NULL ? (size_t)(end - s) : strlen(s);
		const char *eq = memchr(s, '=', len);
		struct bank_account a = {0};
		if (eq == NULL || !bank_account_name_ok(s, (size_t)(eq - s)) ||
		    parse_amount(eq + 1, len - (size_t)(eq - s) - 1,
				 &a.balance) != 0 ||
		    a.balance < 0) {
			snprintf(err, errlen,
				 "--accounts: want name=amount[,...] with "
				 "names of [A-Za-z0-9_.-] and amounts >= 0");
			mdb_txn_abort(txn);
			return SETTLE_EINVAL;
		}
		memcpy(a.name, s, (size_t)(eq - s));
		rc = bank_put(b, txn, &a, MDB_NOOVERWRITE);
		if (rc != 0 && rc != MDB_KEYEXIST) {
			snprintf(err, errlen, "accounts: %s", mdb_strerror(rc));
			mdb_txn_abort(txn);
			return SETTLE_ESTORE;
		}
		s += len;
		if (*s == ',')
			s++;
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0) {
		snprintf(err, errlen, "accounts: %s", mdb_strerror(rc));
		return SETTLE_ESTORE;
	}
	return 0;
}

/*
 * A saga step moves money at once, with no reservation: an Action applies
 * the amount, its Compensate applies the opposite. Either may find the
 * money gone (a debit beyond what is available, or a credit already spent
 * when it is to be taken back); only the Action may give up for good.
 */
static int saga_apply(struct bank_account *a, int op, int64_t amount, char *err,
		      size_t errlen)
{
	int64_t delta = op == SETTLE_OP_ACTION ? amount : -amount;

	if (delta > 0) {
		if (a->balance > BANK_AMOUNT_MAX * 1000) {
			snprintf(err, errlen, "account too large");
			/* A compensation has to happen: wait, do not give
			 * up. */
			return op == SETTLE_OP_ACTION ? SETTLE_EFAILURE
						      : SETTLE_ERETRY;
		}
	} else if (a->balance - a->frozen < -delta) {
		if (op == SETTLE_OP_ACTION) {
			snprintf(err, errlen, "insufficient funds");
			return SETTLE_EFAILURE;
		}
		/* The credit was spent (saga steps are not isolated): the
		 * coordinator retries until the money is back, and the
		 * saga shows why it waits. */
		snprintf(err, errlen, "credit to take back already spent");
		return SETTLE_ERETRY;
	}
	a->balance += delta;
	return 0;
}

int bank_apply(struct bank *b, MDB_txn *txn, int op, const char *account,
	       int64_t amount, char *err, size_t errlen)
{
	struct bank_account a;
	int64_t m = amount < 0 ? -amount : amount;
	int rv;

	if (amount == 0 || m > BANK_AMOUNT_MAX) {
		snprintf(err, errlen, "bad amount");
		return SETTLE_EFAILURE;
	}
	rv = bank_get(b, txn, account, &a);
	if (rv == SETTLE_ENOTFOUND) {
		snprintf(err, errlen, "unknown account");
		return SETTLE_EFAILURE;
	}
	if (rv != 0) {
		snprintf(err, errlen, "storage: %s", settle_strerror(rv));
		return SETTLE_ERETRY;
	}
	if (op == SETTLE_OP_ACTION || op == SETTLE_OP_COMPENSATE) {
		rv = saga_apply(&a, op, amount, err, errlen);
		if (rv != 0)
			return rv;
	} else if (amount < 0) {
		switch (op) {
		case SETTLE_OP_TRY:
			if (a.balance - a.frozen < m) {
				snprintf(err, errlen, "insufficient funds");
				return SETTLE_EFAILURE;
			}
			a.frozen += m;
			break;
		case SETTLE_OP_CONFIRM:
		case SETTLE_OP_CANCEL:
			/* Money reserved by the Try must still be there;
			 * without it the books would go negative. */
			if (a.frozen < m) {
				snprintf(err, errlen, "no reservation to %s",
					 op == SETTLE_OP_CONFIRM ? "confirm"
								 : "cancel");
				return SETTLE_EFAILURE;
			}
			a.frozen -= m;
			if (op == SETTLE_OP_CONFIRM)
				a.balance -= m;
			break;
		default:
			snprintf(err, errlen, "bad operation");
			return SETTLE_EFAILURE;
		}
	} else {
		switch (op) {
		case SETTLE_OP_TRY:
			if (a.incoming > BANK_AMOUNT_MAX * 1000 ||
			    a.balance > BANK_AMOUNT_MAX * 1000) {
				snprintf(err, errlen, "account too large");
				return SETTLE_EFAILURE;
			}
			a.incoming += m;
			break;
		case SETTLE_OP_CONFIRM:
		case SETTLE_OP_CANCEL:
			if (a.incoming < m) {
				snprintf(err, errlen, "no incoming to %s",
					 op == SETTLE_OP_CONFIRM ? "confirm"
								 : "cancel");
				return SETTLE_EFAILURE;
			}
			a.incoming -= m;
			if (op == SETTLE_OP_CONFIRM)
				a.balance += m;
			break;
		default:
			snprintf(err, errlen, "bad operation");
			return SETTLE_EFAILURE;
		}
	}
	rv = bank_put(b, txn, &a, 0);
	if (rv != 0) {
		snprintf(err, errlen, "storage: %s", mdb_strerror(rv));
		return SETTLE_ERETRY;
	}
	return 0;
}

int bank_each(struct bank *b, MDB_txn *txn,
	      int (*fn)(void *data, const struct bank_account *a), void *data)
{
	MDB_cursor *cur;
	MDB_val k, v;
	int rc = mdb_cursor_open(txn, b->accounts, &cur);
	int rv = 0;

	if (rc != 0)
		return settle_err_from_mdb(rc);
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		struct bank_account a;
		if (k.mv_size > BANK_ACCOUNT_MAX ||
		    v.mv_size != BANK_VALUE_LEN) {
			rv = SETTLE_ESTORE;
			break;
		}
		memcpy(a.name, k.mv_data, k.mv_size);
		a.name[k.mv_size] = '\0';
		a.balance = get_i64(v.mv_data);
		a.frozen = get_i64((uint8_t *)v.mv_data + 8);
		a.incoming = get_i64((uint8_t *)v.mv_data + 16);
		rv = fn(data, &a);
	}
	mdb_cursor_close(cur);
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = settle_err_from_mdb(rc);
	return rv;
}

/*
 * counts.c — how many transactions each state holds.
 *
 * A live transaction has a row in by_state (state, gid), which the
 * driver, expiry and STATUS walk. A finished one has none since format 4:
 * finished transactions are most of a store, and their rows cost 76 bytes
 * each for nothing but a count. The meta row "final" counts them per final
 * state instead, moved with the same index changes (write.c).
 */
#include <stdlib.h>

#include "error.h"
#include "storage/store_int.h"

const int store__final_states[STORE__FINAL_N] = {
    SETTLE__V1__TX_STATE__COMMITTED,
    SETTLE__V1__TX_STATE__ROLLED_BACK,
    SETTLE__V1__TX_STATE__SAGA_SUCCEEDED,
    SETTLE__V1__TX_STATE__SAGA_COMPENSATED,
};

static const MDB_val final_key = {sizeof STORE__META_FINAL - 1,
				  (void *)STORE__META_FINAL};

int store__final_get(struct store *s, MDB_txn *txn, uint64_t n[STORE__FINAL_N])
{
	MDB_val k = final_key, v;
	memset(n, 0, STORE__FINAL_N * sizeof n[0]);
	int rc = mdb_get(txn, s->dbi[STORE_DB_META], &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store__mdb_fail(s, rc, "get final counts");
	if (v.mv_size != 8 * STORE__FINAL_N)
		return store__fail(s, SETTLE_EPROTO,
				   "final counts of %zu bytes", v.mv_size);
	for (int i = 0; i < STORE__FINAL_N; i++)
		n[i] = store__get_be64((uint8_t *)v.mv_data + 8 * i);
	return 0;
}

static int final_put(struct store *s, MDB_txn *txn,
		     const uint64_t n[STORE__FINAL_N])
{
	uint8_t buf[8 * STORE__FINAL_N];
	for (int i = 0; i < STORE__FINAL_N; i++)
		store__be64(buf + 8 * i, n[i]);
	MDB_val k = final_key, v = {sizeof buf, buf};
	int rc = mdb_put(txn, s->dbi[STORE_DB_META], &k, &v, 0);
	if (rc != 0)
		return store__mdb_fail(s, rc, "put final counts");
	return 0;
}

int store__final_add(struct store *s, MDB_txn *txn, int state, int64_t delta)
{
	uint64_t n[STORE__FINAL_N];
	int slot = store__final_slot(state);
	if (slot < 0)
		return store__fail(s, SETTLE_EINVAL, "state %d is not final",
				   state);
	int rv = store__final_get(s, txn, n);
	if (rv != 0)
		return rv;
	if (delta < 0 && n[slot] < (uint64_t)-delta)
		return store__fail(s, SETTLE_EPROTO,
				   "final count of state %d below zero", state);
	n[slot] += (uint64_t)delta;
	return final_put(s, txn, n);
}

int store__final_upgrade(struct store *s, MDB_txn *txn)
{
	uint64_t n[STORE__FINAL_N] = {0};
	MDB_cursor *c;
	int rv = 0;
	int rc = mdb_cursor_open(txn, s->dbi[STORE_DB_BY_STATE], &c);
	if (rc != 0)
		return store__mdb_fail(s, rc, "cursor_open");
	MDB_val k, v;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == 0) {
		if (k.mv_size < 2) {
			rv = store__fail(s, SETTLE_EPROTO, "by_state: bad key");
			break;
		}
		int slot = store__final_slot(((uint8_t *)k.mv_data)[0]);
		if (slot < 0) {
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
			continue;
		}
		n[slot]++;
		rc = mdb_cursor_del(c, 0);
		if (rc == 0)
			/* After a delete, MDB_NEXT lands on the next row. */
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = store__mdb_fail(s, rc, "by_state upgrade");
	if (rv == 0)
		rv = final_put(s, txn, n);
	return rv;
}

int store_counts_get(struct store *s, MDB_txn *txn, struct store_counts *cn)
{
	memset(cn, 0, sizeof *cn);
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	uint64_t fin[STORE__FINAL_N];
	rv = store__final_get(s, t, fin);
	if (rv != 0)
		goto out;
	for (int i = 0; i < STORE__FINAL_N; i++)
		cn->by_state[store__final_states[i]] = fin[i];
	MDB_cursor *c;
	int rc = mdb_cursor_open(t, s->dbi[STORE_DB_BY_STATE], &c);
	if (rc != 0) {
		rv = store__mdb_fail(s, rc, "cursor_open");
		goto out;
	}
	MDB_val k, v;
	char gid[STORE__GID_MAX + 1];
	/* One pass over the state index (live transactions only); the tx
	 * records are read only for the phase-two states, to count the
	 * stuck ones. */
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < 2 || k.mv_size > 1 + STORE__GID_MAX) {
			rv = store__fail(s, SETTLE_EPROTO, "by_state: bad key");
			break;
		}
		uint8_t st = ((uint8_t *)k.mv_data)[0];
		if (st < sizeof cn->by_state / sizeof cn->by_state[0])
			cn->by_state[st]++;
		if (st == SETTLE__V1__TX_STATE__COMMITTING ||
		    st == SETTLE__V1__TX_STATE__ROLLING_BACK ||
		    st == SETTLE__V1__TX_STATE__SAGA_COMPENSATING) {
			Settle__V1__TxRecord *tx;
			memcpy(gid, (uint8_t *)k.mv_data + 1, k.mv_size - 1);
			gid[k.mv_size - 1] = 0;
			rv = store_tx_get(s, t, gid, &tx);
			if (rv != 0)
				break;
			if (tx->failed > 0)
				cn->stuck++;
			settle__v1__tx_record__free_unpacked(tx, NULL);
		}
	}
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = store__mdb_fail(s, rc, "cursor_get");
	mdb_cursor_close(c);
	cn->active = cn->by_state[SETTLE__V1__TX_STATE__ACTIVE] +
		     cn->by_state[SETTLE__V1__TX_STATE__COMMITTING] +
		     cn->by_state[SETTLE__V1__TX_STATE__ROLLING_BACK] +
		     cn->by_state[SETTLE__V1__TX_STATE__SAGA_RUNNING] +
		     cn->by_state[SETTLE__V1__TX_STATE__SAGA_COMPENSATING] +
		     cn->by_state[SETTLE__V1__TX_STATE__XA_PREPARED];
	cn->finished = 0;
	for (int i = 0; i < STORE__FINAL_N; i++)
		cn->finished += fin[i];
out:
	store_read_end(own);
	return rv;
}

/*
 * applied_log.c — the checksum of every entry applied, by raft index, so
 * that a replay or a second delivery of an index with other bytes is
 * caught instead of silently skipped (see wal/fsm.c).
 */
#include "error.h"
#include "storage/store_int.h"

int store_applied_log_get(struct store *s, MDB_txn *txn, uint64_t index,
			  uint64_t *sum)
{
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	uint8_t key[8];
	store__be64(key, index);
	MDB_val k = {sizeof key, key}, v;
	int rc = mdb_get(t, s->dbi[STORE_DB_APPLIED_LOG], &k, &v);
	if (rc == MDB_NOTFOUND)
		rv = SETTLE_ENOTFOUND;
	else if (rc != 0)
		rv = store__mdb_fail(s, rc, "get applied_log");
	else if (v.mv_size != 8)
		rv = store__fail(s, SETTLE_EPROTO,
				 "applied_log %llu: bad size %zu",
				 (unsigned long long)index, v.mv_size);
	else
		*sum = store__get_be64(v.mv_data);
	store_read_end(own);
	return rv;
}

int store_applied_log_put(struct store *s, MDB_txn *txn, uint64_t index,
			  uint64_t sum)
{
	if (index == 0)
		return store__fail(s, SETTLE_EINVAL, "applied_log: index 0");
	uint8_t key[8], val[8];
	store__be64(key, index);
	store__be64(val, sum);
	MDB_val k = {sizeof key, key}, v = {sizeof val, val};
	int rc = mdb_put(txn, s->dbi[STORE_DB_APPLIED_LOG], &k, &v, 0);
	if (rc != 0)
		return store__mdb_fail(s, rc, "put applied_log");
	return 0;
}

int store_applied_log_first(struct store *s, MDB_txn *txn, uint64_t *index)
{
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	MDB_cursor *c;
	int rc = mdb_cursor_open(t, s->dbi[STORE_DB_APPLIED_LOG], &c);
	if (rc != 0) {
		rv = store__mdb_fail(s, rc, "cursor_open");
		goto out;
	}
	MDB_val k, v;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	if (rc == MDB_NOTFOUND)
		*index = 0;
	else if (rc != 0)
		rv = store__mdb_fail(s, rc, "applied_log first");
	else if (k.mv_size != 8)
		rv = store__fail(s, SETTLE_EPROTO, "applied_log: bad key");
	else
		*index = store__get_be64(k.mv_data);
	mdb_cursor_close(c);
out:
	store_read_end(own);
	return rv;
}

int store_applied_log_prune(struct store *s, MDB_txn *txn, uint64_t below_index)
{
	MDB_cursor *c;
	int rv = 0;
	int rc = mdb_cursor_open(txn, s->dbi[STORE_DB_APPLIED_LOG], &c);
	if (rc != 0)
		return store__mdb_fail(s, rc, "cursor_open");
	MDB_val k, v;
	/* Keys are big-endian indexes: LMDB's order is numeric order, so
	 * the rows to drop are a prefix of the table. */
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != 8) {
			rv = store__fail(s, SETTLE_EPROTO,
					 "applied_log: bad key");
			break;
		}
		if (store__get_be64(k.mv_data) >= below_index)
			break;
		rc = mdb_cursor_del(c, 0);
		if (rc != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = store__mdb_fail(s, rc, "applied_log prune");
	return rv;
}

/*
 * write.c — record writes with their index rows, deletions and garbage
 * collection. Called by the FSM inside its write transaction only.
 */
#include <stdlib.h>

#include "error.h"
#include "storage/store_int.h"

static int put(struct store *s, MDB_txn *txn, int db, const void *key,
	       size_t klen, const void *val, size_t vlen, const char *what)
{
	MDB_val k = {klen, (void *)key}, v = {vlen, (void *)val};
	int rc = mdb_put(txn, s->dbi[db], &k, &v, 0);
	if (rc != 0)
		return store__mdb_fail(s, rc, what);
	return 0;
}

/* Put record m, packed (on the stack when it fits), under key. */
static int put_record(struct store *s, MDB_txn *txn, int db, const void *key,
		      size_t klen, const ProtobufCMessage *m, const char *what)
{
	uint8_t stack[STORE__PACK_STACK], *buf;
	size_t len;
	int rv = store__pack_into(s, m, stack, sizeof stack, &buf, &len);
	if (rv != 0)
		return rv;
	rv = put(s, txn, db, key, klen, buf, len, what);
	if (buf != stack)
		free(buf);
	return rv;
}

/* Delete one row; a missing row is fine when missing_ok. */
static int del(struct store *s, MDB_txn *txn, int db, const void *key,
	       size_t klen, bool missing_ok, const char *what)
{
	MDB_val k = {klen, (void *)key};
	int rc = mdb_del(txn, s->dbi[db], &k, NULL);
	if (rc == MDB_NOTFOUND && missing_ok)
		return 0;
	if (rc == MDB_NOTFOUND)
		return store__fail(s, SETTLE_EPROTO,
				   "lmdb del %s: index row "
				   "missing",
				   what);
	if (rc != 0)
		return store__mdb_fail(s, rc, what);
	return 0;
}

void store_tx_rows_of(const Settle__V1__TxRecord *tx, struct store_tx_rows *r)
{
	r->present = true;
	r->state = (int)tx->state;
	r->due_ms = tx->due_ms;
	r->finished_ms = tx->finished_ms;
}

/*
 * Move gid's index rows from those of old to those of new (either may be
 * absent): a row both have stays as it is.
 */
static int index_move(struct store *s, MDB_txn *txn, const char *gid,
		      size_t glen, const struct store_tx_rows *old,
		      const struct store_tx_rows *new)
{
	uint8_t key[STORE__KEY_MAX];
	size_t klen;
	int rv = 0;

	/* due and finished: keyed by time, no row for 0. */
	if (old->present && old->due_ms != 0 &&
	    !(new->present &&new->due_ms == old->due_ms)) {
		klen = store__key_u64_gid(key, old->due_ms, gid, glen);
		rv = del(s, txn, STORE_DB_DUE, key, klen, false, "due");
	}
	if (rv == 0 && new->present &&new->due_ms != 0 &&
	    !(old->present && old->due_ms == new->due_ms)) {
		klen = store__key_u64_gid(key, new->due_ms, gid, glen);
		rv = put(s, txn, STORE_DB_DUE, key, klen, "", 0, "put due");
	}
	if (rv == 0 && old->present && old->finished_ms != 0 &&
	    !(new->present &&new->finished_ms == old->finished_ms)) {
		klen = store__key_u64_gid(key, old->finished_ms, gid, glen);
		rv = del(s, txn, STORE_DB_FINISHED, key, klen, false,
			 "finished");
	}
	if (rv == 0 && new->present &&new->finished_ms != 0 &&
	    !(old->present && old->finished_ms == new->finished_ms)) {
		klen = store__key_u64_gid(key, new->finished_ms, gid, glen);
		rv = put(s, txn, STORE_DB_FINISHED, key, klen, "", 0,
			 "put finished");
	}
	/* by_state: state then gid, for a live state; a final state is a
	 * count in meta (counts.c). */
	bool same = old->present && new->present &&new->state == old->state;
	memcpy(key + 1, gid, glen);
	klen = glen + 1;
	if (rv == 0 && old->present && !same) {
		if (store__final_slot(old->state) >= 0) {
			rv = store__final_add(s, txn, old->state, -1);
		} else {
			key[0] = (uint8_t)old->state;
			rv = del(s, txn, STORE_DB_BY_STATE, key, klen, false,
				 "by_state");
		}
	}
	if (rv == 0 && new->present && !same) {
		if (store__final_slot(new->state) >= 0) {
			rv = store__final_add(s, txn, new->state, 1);
		} else {
			key[0] = (uint8_t) new->state;
			rv = put(s, txn, STORE_DB_BY_STATE, key, klen, "", 0,
				 "put by_state");
		}
	}
	return rv;
}

int store_tx_put_over(struct store *s, MDB_txn *txn,
		      const Settle__V1__TxRecord *tx,
		      const struct store_tx_rows *old)
{
	int glen = store__gid_len(tx->gid);
	struct store_tx_rows new;

	if (glen < 0)
		return store__fail(s, SETTLE_EINVAL, "tx put: bad gid");
	if (tx->state < 0 || tx->state > 255)
		return store__fail(s, SETTLE_EINVAL, "tx put: bad state");
	/* The key holds the gid: the stored record goes without it, and
	 * the readers put it back (format 3). */
	Settle__V1__TxRecord bare = *tx;
	bare.gid = (char *)"";
	int rv = put_record(s, txn, STORE_DB_TXS, tx->gid, (size_t)glen,
			    &bare.base, "put tx");
	if (rv != 0)
		return rv;
	store_tx_rows_of(tx, &new);
	return index_move(s, txn, tx->gid, (size_t)glen, old, &new);
}

int store_tx_put(struct store *s, MDB_txn *txn, const Settle__V1__TxRecord *tx)
{
	struct store_tx_rows old = {0};
	Settle__V1__TxRecord *rec;

	if (store__gid_len(tx->gid) < 0)
		return store__fail(s, SETTLE_EINVAL, "tx put: bad gid");
	int rv = store_tx_get(s, txn, tx->gid, &rec);
	if (rv == 0) {
		store_tx_rows_of(rec, &old);
		settle__v1__tx_record__free_unpacked(rec, NULL);
	} else if (rv != SETTLE_ENOTFOUND) {
		return rv;
	}
	return store_tx_put_over(s, txn, tx, &old);
}

/* Delete every row of db whose key starts with gid \0. */
static int del_prefix(struct store *s, MDB_txn *txn, int db, const char *gid,
		      size_t glen)
{
	uint8_t prefix[STORE__KEY_MAX];
	memcpy(prefix, gid, glen);
	prefix[glen] = 0;
	size_t plen = glen + 1;
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, s->dbi[db], &c);
	if (rc != 0)
		return store__mdb_fail(s, rc, "cursor_open");
	MDB_val k = {plen, prefix}, v;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	while (rc == 0) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		rc = mdb_cursor_del(c, 0);
		if (rc != 0)
			break;
		/* After a delete, MDB_NEXT lands on the row that followed. */
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store__mdb_fail(s, rc, "delete rows");
	return 0;
}

int store_tx_delete(struct store *s, MDB_txn *txn, const char *gid)
{
	Settle__V1__TxRecord *old;
	int rv = store_tx_get(s, txn, gid, &old);
	if (rv != 0)
		return rv;
	size_t glen = strlen(gid);
	struct store_tx_rows rows, none = {0};
	store_tx_rows_of(old, &rows);
	settle__v1__tx_record__free_unpacked(old, NULL);
	rv = index_move(s, txn, gid, glen, &rows, &none);
	if (rv == 0)
		rv = del(s, txn, STORE_DB_TXS, gid, glen, false, "tx");
	if (rv == 0)
		rv = del_prefix(s, txn, STORE_DB_BRANCHES, gid, glen);
	if (rv == 0)
		rv = del_prefix(s, txn, STORE_DB_HISTORY, gid, glen);
	return rv;
}

int store_branch_put(struct store *s, MDB_txn *txn,
		     const Settle__V1__BranchRecord *b)
{
	int glen = store__gid_len(b->gid);
	if (glen < 0)
		return store__fail(s, SETTLE_EINVAL, "branch put: bad gid");
	uint8_t key[STORE__KEY_MAX];
	size_t klen =
	    store__key_gid_u32(key, b->gid, (size_t)glen, b->branch_id);
	/* Without its gid, as a tx record (store_tx_put()). */
	Settle__V1__BranchRecord bare = *b;
	bare.gid = (char *)"";
	return put_record(s, txn, STORE_DB_BRANCHES, key, klen, &bare.base,
			  "put branch");
}

int store_tx_gc(struct store *s, MDB_txn *txn, uint64_t before_ms, size_t limit,
		size_t *deleted)
{
	size_t cnt = 0;
	int rv = 0;
	char gid[STORE__GID_MAX + 1];
	/* Re-open the cursor for every victim: store_tx_delete() changes the
	 * finished index under it. */
	while (cnt < limit) {
		MDB_cursor *c;
		int rc = mdb_cursor_open(txn, s->dbi[STORE_DB_FINISHED], &c);
		if (rc != 0) {
			rv = store__mdb_fail(s, rc, "cursor_open");
			break;
		}
		MDB_val k, v;
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		if (rc == 0 &&
		    (k.mv_size <= 8 || k.mv_size > 8 + STORE__GID_MAX)) {
			mdb_cursor_close(c);
			rv = store__fail(s, SETTLE_EPROTO, "finished: bad key");
			break;
		}
		bool victim = rc == 0 && store__get_be64(k.mv_data) < before_ms;
		if (victim) {
			memcpy(gid, (uint8_t *)k.mv_data + 8, k.mv_size - 8);
			gid[k.mv_size - 8] = 0;
		}
		mdb_cursor_close(c);
		if (rc != 0 && rc != MDB_NOTFOUND) {
			rv = store__mdb_fail(s, rc, "tx gc");
			break;
		}
		if (!victim)
			break;
		rv = store_tx_delete(s, txn, gid);
		if (rv == SETTLE_ENOTFOUND)
			rv = store__fail(s, SETTLE_EPROTO,
					 "finished row without tx");
		if (rv != 0)
			break;
		cnt++;
	}
	if (deleted != NULL)
		*deleted = cnt;
	return rv;
}

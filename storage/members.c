/*
 * members.c — the `members` table: node id -> MemberRecord.
 *
 * Keys are the id as 8 bytes big-endian, so rows come out in id order.
 */
#include <stdlib.h>

#include "error.h"
#include "storage/store_int.h"

int store_member_put(struct store *s, MDB_txn *txn,
		     const Settle__V1__MemberRecord *m)
{
	uint8_t key[8];
	uint8_t *buf;
	size_t len;
	int rv, rc;

	if (m == NULL || m->id == 0)
		return store__fail(s, SETTLE_EINVAL, "member put: id 0");
	rv = store__pack(s, &m->base, &buf, &len);
	if (rv != 0)
		return rv;
	store__be64(key, m->id);
	MDB_val k = {sizeof key, key}, v = {len, buf};
	rc = mdb_put(txn, s->dbi[STORE_DB_MEMBERS], &k, &v, 0);
	free(buf);
	if (rc != 0)
		return store__mdb_fail(s, rc, "put member");
	return 0;
}

int store_member_delete(struct store *s, MDB_txn *txn, uint64_t id)
{
	uint8_t key[8];
	int rc;

	store__be64(key, id);
	MDB_val k = {sizeof key, key};
	rc = mdb_del(txn, s->dbi[STORE_DB_MEMBERS], &k, NULL);
	if (rc == MDB_NOTFOUND)
		return SETTLE_ENOTFOUND;
	if (rc != 0)
		return store__mdb_fail(s, rc, "del member");
	return 0;
}

static int unpack_member(struct store *s, const MDB_val *v,
			 Settle__V1__MemberRecord **out)
{
	*out = settle__v1__member_record__unpack(NULL, v->mv_size, v->mv_data);
	if (*out == NULL)
		return store__fail(s, SETTLE_EPROTO,
				   "stored MemberRecord does not decode");
	return 0;
}

/* The row of id, removed ones too. */
static int member_get(struct store *s, MDB_txn *txn, uint64_t id,
		      Settle__V1__MemberRecord **out)
{
	uint8_t key[8];
	MDB_txn *t, *own;
	int rv, rc;

	rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	store__be64(key, id);
	MDB_val k = {sizeof key, key}, v;
	rc = mdb_get(t, s->dbi[STORE_DB_MEMBERS], &k, &v);
	if (rc == MDB_NOTFOUND)
		rv = SETTLE_ENOTFOUND;
	else if (rc != 0)
		rv = store__mdb_fail(s, rc, "get member");
	else
		rv = unpack_member(s, &v, out);
	store_read_end(own);
	return rv;
}

int store_member_get(struct store *s, MDB_txn *txn, uint64_t id,
		     Settle__V1__MemberRecord **out)
{
	int rv = member_get(s, txn, id, out);

	if (rv == 0 && (*out)->removed_ms != 0) {
		settle__v1__member_record__free_unpacked(*out, NULL);
		*out = NULL;
		rv = SETTLE_ENOTFOUND;
	}
	return rv;
}

int store_member_get_any(struct store *s, MDB_txn *txn, uint64_t id,
			 Settle__V1__MemberRecord **out)
{
	return member_get(s, txn, id, out);
}

void store_members_free(Settle__V1__MemberRecord **arr, size_t n)
{
	for (size_t i = 0; i < n; i++)
		settle__v1__member_record__free_unpacked(arr[i], NULL);
	free(arr);
}

/* The rows of members (removed false) or of former members (true). */
static int members_list(struct store *s, MDB_txn *txn, bool removed,
			Settle__V1__MemberRecord ***out, size_t *n)
{
	Settle__V1__MemberRecord **arr = NULL;
	size_t cnt = 0, cap = 0;
	MDB_cursor *cur;
	MDB_txn *t, *own;
	MDB_val k, v;
	int rv, rc;

	*out = NULL;
	*n = 0;
	rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	rc = mdb_cursor_open(t, s->dbi[STORE_DB_MEMBERS], &cur);
	if (rc != 0) {
		rv = store__mdb_fail(s, rc, "members cursor");
		goto out;
	}
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (cnt == cap) {
			size_t ncap = cap ? 2 * cap : 8;
			void *p = realloc(arr, ncap * sizeof *arr);
			if (p == NULL) {
				rv = store__fail(s, SETTLE_ENOMEM,
						 "members: out of memory");
				break;
			}
			arr = p;
			cap = ncap;
		}
		rv = unpack_member(s, &v, &arr[cnt]);
		if (rv != 0)
			break;
		if ((arr[cnt]->removed_ms != 0) != removed) {
			settle__v1__member_record__free_unpacked(arr[cnt],
								 NULL);
			continue;
		}
		cnt++;
	}
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = store__mdb_fail(s, rc, "members cursor_get");
	mdb_cursor_close(cur);
out:
	store_read_end(own);
	if (rv != 0) {
		store_members_free(arr, cnt);
		return rv;
	}
	*out = arr;
	*n = cnt;
	return 0;
}

int store_members_list(struct store *s, MDB_txn *txn,
		       Settle__V1__MemberRecord ***out, size_t *n)
{
	return members_list(s, txn, false, out, n);
}

int store_members_removed(struct store *s, MDB_txn *txn,
			  Settle__V1__MemberRecord ***out, size_t *n)
{
	return members_list(s, txn, true, out, n);
}

/* The `members` table: put, get, list, delete, and its place in snapshots. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "error.h"
#include "helpers.h"
#include "storage/store.h"

static struct tstore A, B;

static void setup(void)
{
	tstore_open(&A, 0);
	tstore_open(&B, 0);
}

static void teardown(void)
{
	tstore_close(&A);
	tstore_close(&B);
}

TestSuite(members_table, .init = setup, .fini = teardown);

static void put(struct store *s, uint64_t id, const char *raft,
		const char *client)
{
	Settle__V1__MemberRecord m = SETTLE__V1__MEMBER_RECORD__INIT;
	MDB_txn *txn;

	m.id = id;
	m.raft_address = (char *)raft;
	m.client_endpoint = (char *)client;
	m.updated_ms = 1000 + id;
	cr_assert_eq(store_write_begin(s, &txn), 0);
	cr_assert_eq(store_member_put(s, txn, &m), 0, "%s", store_errmsg(s));
	cr_assert_eq(store_write_commit(s, txn), 0);
}

Test(members_table, put_get_replace)
{
	Settle__V1__MemberRecord *m = NULL;

	cr_assert_eq(store_member_get(A.s, NULL, 4, &m), SETTLE_ENOTFOUND);
	put(A.s, 4, "10.0.0.4:7401", "10.0.0.4:7400");
	cr_assert_eq(store_member_get(A.s, NULL, 4, &m), 0);
	cr_assert_eq(m->id, 4);
	cr_assert_str_eq(m->raft_address, "10.0.0.4:7401");
	cr_assert_str_eq(m->client_endpoint, "10.0.0.4:7400");
	cr_assert_eq(m->updated_ms, 1004);
	settle__v1__member_record__free_unpacked(m, NULL);

	/* A node re-added elsewhere: the row follows. */
	put(A.s, 4, "10.0.0.9:7401", "10.0.0.9:7400");
	cr_assert_eq(store_member_get(A.s, NULL, 4, &m), 0);
	cr_assert_str_eq(m->client_endpoint, "10.0.0.9:7400");
	settle__v1__member_record__free_unpacked(m, NULL);
}

Test(members_table, list_in_id_order_and_delete)
{
	Settle__V1__MemberRecord **all = NULL;
	MDB_txn *txn;
	size_t n = 99;

	cr_assert_eq(store_members_list(A.s, NULL, &all, &n), 0);
	cr_assert_eq(n, 0);
	cr_assert_null(all);
	/* Big-endian keys: 256 sorts after 3, not before. */
	put(A.s, 256, "h:1", "h:2");
	put(A.s, 3, "c:1", "c:2");
	put(A.s, 1, "a:1", "a:2");
	cr_assert_eq(store_members_list(A.s, NULL, &all, &n), 0);
	cr_assert_eq(n, 3);
	cr_assert_eq(all[0]->id, 1);
	cr_assert_eq(all[1]->id, 3);
	cr_assert_eq(all[2]->id, 256);
	store_members_free(all, n);

	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(store_member_delete(A.s, txn, 3), 0);
	cr_assert_eq(store_member_delete(A.s, txn, 3), SETTLE_ENOTFOUND);
	cr_assert_eq(store_member_delete(A.s, txn, 77), SETTLE_ENOTFOUND);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	cr_assert_eq(store_members_list(A.s, NULL, &all, &n), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(all[0]->id, 1);
	cr_assert_eq(all[1]->id, 256);
	store_members_free(all, n);
}

Test(members_table, refuses_id_zero)
{
	Settle__V1__MemberRecord m = SETTLE__V1__MEMBER_RECORD__INIT;
	MDB_txn *txn;

	m.raft_address = "a:1";
	m.client_endpoint = "a:2";
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(store_member_put(A.s, txn, &m), SETTLE_EINVAL);
	cr_assert_eq(store_member_put(A.s, txn, NULL), SETTLE_EINVAL);
	store_write_abort(txn);
}

/* A node restored from a snapshot knows every member's endpoint. */
Test(members_table, travels_in_snapshots)
{
	Settle__V1__MemberRecord *m = NULL;
	Settle__V1__MemberRecord **all = NULL;
	uint8_t *buf;
	size_t len, n;

	put(A.s, 2, "b:1", "b:2");
	put(A.s, 5, "e:1", "e:2");
	put(B.s, 9, "stale:1", "stale:2");
	cr_assert_eq(store_snapshot(A.s, 10, &buf, &len), 0);
	cr_assert_eq(store_restore(B.s, buf, len), 0, "%s", store_errmsg(B.s));
	raft_free(buf);
	cr_assert_eq(store_members_list(B.s, NULL, &all, &n), 0);
	cr_assert_eq(n, 2);
	store_members_free(all, n);
	cr_assert_eq(store_member_get(B.s, NULL, 5, &m), 0);
	cr_assert_str_eq(m->client_endpoint, "e:2");
	settle__v1__member_record__free_unpacked(m, NULL);
	cr_assert_eq(store_member_get(B.s, NULL, 9, &m), SETTLE_ENOTFOUND);
}

/* A row that is not a MemberRecord makes the snapshot invalid. */
Test(members_table, snapshot_refuses_garbage_row)
{
	uint8_t *buf;
	size_t len;
	MDB_txn *txn;
	MDB_dbi dbi;
	uint8_t key[8] = {0, 0, 0, 0, 0, 0, 0, 7};
	/* Field 1 as a length-delimited value running past the end. */
	uint8_t junk[] = {0x0a, 0x7f, 0x01};

	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "members", 0, &dbi), 0);
	MDB_val k = {sizeof key, key}, v = {sizeof junk, junk};
	cr_assert_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	cr_assert_eq(store_snapshot(A.s, 10, &buf, &len), 0);
	cr_assert_eq(store_restore(B.s, buf, len), SETTLE_EPROTO);
	raft_free(buf);
}

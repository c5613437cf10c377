/* The applied_log table, format 1 compatibility, and where the snapshot
 * writer puts its error text. */
#include <stdio.h>
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

TestSuite(applied_log, .init = setup, .fini = teardown);

/* Rows first..last with checksum index * 7, and applied = last. */
static void log_rows(struct store *s, uint64_t first, uint64_t last)
{
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(s, &txn), 0);
	for (uint64_t i = first; i <= last; i++)
		cr_assert_eq(store_applied_log_put(s, txn, i, i * 7), 0);
	cr_assert_eq(store_applied_put(s, txn, last), 0);
	cr_assert_eq(store_write_commit(s, txn), 0);
}

static uint64_t first_row(struct store *s)
{
	uint64_t first;
	cr_assert_eq(store_applied_log_first(s, NULL, &first), 0);
	return first;
}

Test(applied_log, put_get_and_missing)
{
	uint64_t sum;
	cr_expect_eq(store_applied_log_get(A.s, NULL, 3, &sum),
		     SETTLE_ENOTFOUND);
	cr_expect_eq(first_row(A.s), 0);
	log_rows(A.s, 1, 5);
	cr_assert_eq(store_applied_log_get(A.s, NULL, 3, &sum), 0);
	cr_expect_eq(sum, 21);
	cr_expect_eq(store_applied_log_get(A.s, NULL, 6, &sum),
		     SETTLE_ENOTFOUND);
	cr_expect_eq(first_row(A.s), 1);

	MDB_txn *txn;
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_expect_eq(store_applied_log_put(A.s, txn, 0, 1), SETTLE_EINVAL);
	store_write_abort(txn);
}

Test(applied_log, prune_drops_only_rows_below)
{
	log_rows(A.s, 1, 300);
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(store_applied_log_prune(A.s, txn, 201), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	cr_expect_eq(first_row(A.s), 201);
	uint64_t sum;
	cr_expect_eq(store_applied_log_get(A.s, NULL, 200, &sum),
		     SETTLE_ENOTFOUND);
	cr_assert_eq(store_applied_log_get(A.s, NULL, 201, &sum), 0);
	cr_expect_eq(sum, 201 * 7);
	cr_assert_eq(store_applied_log_get(A.s, NULL, 300, &sum), 0);

	/* Below the first row: nothing to do; past the last: all gone. */
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(store_applied_log_prune(A.s, txn, 5), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	cr_expect_eq(first_row(A.s), 201);
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(store_applied_log_prune(A.s, txn, 1000), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	cr_expect_eq(first_row(A.s), 0);
	/* The applied index is not the log's business. */
	uint64_t applied;
	cr_assert_eq(store_applied_get(A.s, NULL, &applied), 0);
	cr_expect_eq(applied, 300);
}

Test(applied_log, snapshot_round_trip_keeps_the_rows)
{
	log_rows(A.s, 10, 40);
	uint8_t *a, *b;
	size_t alen, blen;
	cr_assert_eq(store_snapshot(A.s, 0, &a, &alen), 0);
	cr_assert_eq(store_restore(B.s, a, alen), 0, "%s", store_errmsg(B.s));
	cr_assert_eq(store_snapshot(B.s, 0, &b, &blen), 0);
	cr_assert_eq(alen, blen);
	cr_expect_eq(memcmp(a, b, alen), 0);
	uint64_t sum;
	cr_assert_eq(store_applied_log_get(B.s, NULL, 40, &sum), 0);
	cr_expect_eq(sum, 280);
	cr_expect_eq(first_row(B.s), 10);
	raft_free(a);
	raft_free(b);
}

/* Recompute the trailing checksum after an edit. */
Test(applied_log, rows_past_the_snapshot_index_are_refused)
{
	log_rows(A.s, 1, 9);
	uint8_t *a;
	size_t alen;
	cr_assert_eq(store_snapshot(A.s, 0, &a, &alen), 0);
	/* Lower the header's index to 8: meta's applied row (9) is past
	 * it, and so is applied_log's row 9. */
	for (int i = 0; i < 8; i++)
		a[16 + i] = (uint8_t)((uint64_t)8 >> (8 * i));
	tstore_reseal(a, alen);
	cr_expect_eq(store_restore(B.s, a, alen), SETTLE_EPROTO);
	cr_expect_neq(strstr(store_errmsg(B.s), "meta"), NULL, "%s",
		      store_errmsg(B.s));
	raft_free(a);

	/* Same with applied 0 in meta, so that applied_log itself is
	 * what is wrong. */
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(store_applied_put(A.s, txn, 0), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	cr_assert_eq(store_snapshot(A.s, 8, &a, &alen), 0);
	cr_expect_eq(store_restore(B.s, a, alen), SETTLE_EPROTO);
	cr_expect_neq(strstr(store_errmsg(B.s), "applied_log"), NULL, "%s",
		      store_errmsg(B.s));
	raft_free(a);
}

Test(applied_log, format1_snapshot_is_restored_as_the_current_format)
{
	MDB_txn *txn;
	Settle__V1__TxRecord tx;
	settle__v1__tx_record__init(&tx);
	tx.gid = "g1";
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	tx.state = SETTLE__V1__TX_STATE__ACTIVE;
	tx.due_ms = 77;
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(store_tx_put(A.s, txn, &tx), 0);
	cr_assert_eq(store_applied_put(A.s, txn, 12), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	uint8_t *a;
	size_t alen;
	cr_assert_eq(store_snapshot(A.s, 0, &a, &alen), 0);
	size_t len1;
	uint8_t *a1 = tstore_snap_old(a, alen, 1, NULL, 0, 0, &len1);
	raft_free(a);
	cr_assert_eq(store_restore(B.s, a1, len1), 0, "%s", store_errmsg(B.s));
	free(a1);
	Settle__V1__TxRecord *got;
	cr_assert_eq(store_tx_get(B.s, NULL, "g1", &got), 0);
	cr_expect_eq(got->due_ms, 77);
	settle__v1__tx_record__free_unpacked(got, NULL);
	/* The restored store is the current format: it opens again and
	 * snapshots as such. */
	char dir[64];
	snprintf(dir, sizeof dir, "%s", B.dir);
	store_close(B.s);
	char err[256];
	cr_assert_eq(store_open(dir, NULL, &B.s, err, sizeof err), 0, "%s",
		     err);
	cr_assert_eq(store_snapshot(B.s, 0, &a, &alen), 0);
	cr_expect_eq(a[8], STORE_FORMAT_VERSION);
	raft_free(a);
}

Test(applied_log, format1_store_is_upgraded_at_open)
{
	MDB_txn *txn;
	MDB_dbi meta;
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	uint8_t one[4] = {0, 0, 0, 1};
	MDB_val k = {7, "version"}, v = {4, one};
	cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	char dir[64];
	snprintf(dir, sizeof dir, "%s", A.dir);
	store_close(A.s);
	char err[256];
	cr_assert_eq(store_open(dir, NULL, &A.s, err, sizeof err), 0, "%s",
		     err);
	/* The current version now, and the table works. */
	cr_assert_eq(store_read_begin(A.s, &txn), 0);
	cr_assert_eq(mdb_get(txn, meta, &k, &v), 0);
	cr_expect_eq(v.mv_size, 4);
	cr_expect_eq(((uint8_t *)v.mv_data)[3], STORE_FORMAT_VERSION);
	store_read_end(txn);
	log_rows(A.s, 1, 2);

	/* An unknown version still refuses to open. */
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	uint8_t nine[4] = {0, 0, 0, 9};
	v.mv_data = nine;
	v.mv_size = 4;
	cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	store_close(A.s);
	A.s = NULL;
	cr_expect_eq(store_open(dir, NULL, &A.s, err, sizeof err),
		     SETTLE_ESTORE);
	cr_expect_neq(strstr(err, "version 9"), NULL, "%s", err);
	/* A.s is NULL: teardown only removes the directory. */
}

Test(applied_log, snapshot_errors_leave_store_errmsg_alone)
{
	MDB_txn *txn;
	MDB_dbi meta;
	/* An applied row of the wrong size makes the writer fail. */
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	MDB_val k = {7, "applied"}, v = {3, "abc"};
	cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);

	/* Something the loop thread would have left in errmsg. */
	Settle__V1__TxRecord *tx;
	cr_assert_eq(store_tx_get(A.s, NULL, "", &tx), SETTLE_EINVAL);
	char before[256];
	snprintf(before, sizeof before, "%s", store_errmsg(A.s));
	cr_assert_neq(before[0], 0);

	uint8_t *buf;
	size_t len;
	cr_assert_eq(store_read_begin(A.s, &txn), 0);
	cr_expect_eq(store_snapshot_txn(A.s, txn, 0, 0, &buf, &len),
		     SETTLE_EPROTO);
	store_read_end(txn);
	cr_expect_str_eq(store_errmsg(A.s), before);
	cr_expect_neq(strstr(store_work_errmsg(A.s), "applied"), NULL, "%s",
		      store_work_errmsg(A.s));
	/* store_snapshot() runs on the caller's thread: text in both. */
	cr_expect_eq(store_snapshot(A.s, 0, &buf, &len), SETTLE_EPROTO);
	cr_expect_neq(strstr(store_errmsg(A.s), "applied"), NULL, "%s",
		      store_errmsg(A.s));
}

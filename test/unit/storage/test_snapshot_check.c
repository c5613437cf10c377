/* Restore checks every row against its record: stores made inconsistent
 * behind the store's back must not snapshot into anything restorable, and
 * the snapshots the fuzzer found must be refused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "error.h"
#include "helpers.h"
#include "storage/store.h"
#include "xa/xid.h"

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

TestSuite(snapshot_check, .init = setup, .fini = teardown);

/* One consistent transaction "a" (ACTIVE, due 5) with a branch, an event
 * and a command, at applied index 9. */
static void fill(void)
{
	MDB_txn *txn;
	Settle__V1__TxRecord tx;
	settle__v1__tx_record__init(&tx);
	tx.gid = "a";
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	tx.state = SETTLE__V1__TX_STATE__ACTIVE;
	tx.due_ms = 5;
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(store_tx_put(A.s, txn, &tx), 0);
	Settle__V1__BranchRecord b;
	settle__v1__branch_record__init(&b);
	b.gid = "a";
	b.branch_id = 1;
	b.state = SETTLE__V1__BRANCH_STATE__REGISTERED;
	cr_assert_eq(store_branch_put(A.s, txn, &b), 0);
	Settle__V1__Event ev;
	settle__v1__event__init(&ev);
	ev.seq = 1;
	ev.kind = "begin";
	cr_assert_eq(store_event_put(A.s, txn, "a", &ev), 0);
	uint8_t id[16] = {1};
	Settle__V1__CmdResult r;
	settle__v1__cmd_result__init(&r);
	cr_assert_eq(store_cmd_put(A.s, txn, id, 33, &r), 0);
	cr_assert_eq(store_applied_put(A.s, txn, 9), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
}

static MDB_dbi dbi(MDB_txn *txn, const char *name)
{
	MDB_dbi d;
	cr_assert_eq(mdb_dbi_open(txn, name, 0, &d), 0);
	return d;
}

static void raw_put(const char *db, const void *k, size_t klen, const void *v,
		    size_t vlen)
{
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	MDB_val key = {klen, (void *)k}, val = {vlen, (void *)v};
	cr_assert_eq(mdb_put(txn, dbi(txn, db), &key, &val, 0), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
}

static void raw_del(const char *db, const void *k, size_t klen)
{
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	MDB_val key = {klen, (void *)k};
	cr_assert_eq(mdb_del(txn, dbi(txn, db), &key, NULL), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
}

/* Replace tx "a"'s record (key key/klen) by tx, packed as is. */
static void raw_tx(const char *key, const Settle__V1__TxRecord *tx)
{
	uint8_t buf[512];
	size_t n = settle__v1__tx_record__pack(tx, buf);
	raw_put("txs", key, strlen(key), buf, n);
}

static Settle__V1__TxRecord tx_a(void)
{
	Settle__V1__TxRecord tx;
	settle__v1__tx_record__init(&tx);
	tx.gid = "a";
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	tx.state = SETTLE__V1__TX_STATE__ACTIVE;
	tx.due_ms = 5;
	return tx;
}

/* A's snapshot is refused by B, which stays as it was, with a message
 * holding want. */
static void expect_refused(const char *want)
{
	uint8_t *a, *before, *after;
	size_t alen, blen, nlen;
	cr_assert_eq(store_snapshot(A.s, 0, &a, &alen), 0);
	cr_assert_eq(store_snapshot(B.s, 0, &before, &blen), 0);
	cr_expect_eq(store_restore(B.s, a, alen), SETTLE_EPROTO);
	cr_expect_neq(strstr(store_errmsg(B.s), want), NULL,
		      "want \"%s\" in \"%s\"", want, store_errmsg(B.s));
	cr_assert_eq(store_snapshot(B.s, 0, &after, &nlen), 0);
	cr_assert_eq(nlen, blen);
	cr_expect_eq(memcmp(after, before, nlen), 0);
	raft_free(a);
	raft_free(before);
	raft_free(after);
}

Test(snapshot_check, the_consistent_store_is_accepted)
{
	fill();
	uint8_t *a;
	size_t alen;
	cr_assert_eq(store_snapshot(A.s, 0, &a, &alen), 0);
	cr_expect_eq(store_restore(B.s, a, alen), 0, "%s", store_errmsg(B.s));
	raft_free(a);
}

Test(snapshot_check, by_state_row_of_another_state)
{
	fill();
	raw_del("by_state",
		"\x01"
		"a",
		2);
	raw_put("by_state",
		"\x03"
		"a",
		2, "", 0);
	expect_refused("by_state");
}

Test(snapshot_check, due_row_with_another_time)
{
	fill();
	raw_del("due",
		"\0\0\0\0\0\0\0\x05"
		"a",
		9);
	raw_put("due",
		"\0\0\0\0\0\0\0\x06"
		"a",
		9, "", 0);
	expect_refused("due");
}

Test(snapshot_check, due_row_of_a_missing_tx)
{
	fill();
	raw_del("due",
		"\0\0\0\0\0\0\0\x05"
		"a",
		9);
	raw_put("due",
		"\0\0\0\0\0\0\0\x05"
		"b",
		9, "", 0);
	expect_refused("no tx record");
}

Test(snapshot_check, cmd_time_row_with_another_time)
{
	fill();
	uint8_t k[24] = {0};
	k[7] = 33;
	k[8] = 1;
	raw_del("cmd_time", k, sizeof k);
	k[7] = 34;
	raw_put("cmd_time", k, sizeof k, "", 0);
	expect_refused("cmd_time");
}

Test(snapshot_check, unknown_meta_row)
{
	fill();
	raw_put("meta", "junk", 4, "x", 1);
	expect_refused("meta");
}

Test(snapshot_check, meta_version_row_differs_from_the_header)
{
	fill();
	/* The fuzzer's store that would not open again. */
	raw_put("meta", "version", 7, "\x3a\x00\x00\x01", 4);
	expect_refused("version");
}

Test(snapshot_check, tx_state_out_of_range)
{
	fill();
	Settle__V1__TxRecord tx = tx_a();
	tx.state = 6;
	raw_tx("a", &tx);
	raw_del("by_state",
		"\x01"
		"a",
		2);
	raw_put("by_state",
		"\x06"
		"a",
		2, "", 0);
	expect_refused("tx state 6");
}

Test(snapshot_check, tx_mode_out_of_range)
{
	fill();
	Settle__V1__TxRecord tx = tx_a();
	tx.mode = 42;
	raw_tx("a", &tx);
	expect_refused("mode");
}

Test(snapshot_check, tx_gid_differs_from_its_key)
{
	fill();
	Settle__V1__TxRecord tx = tx_a();
	tx.gid = "b";
	raw_tx("a", &tx);
	expect_refused("gid");
}

Test(snapshot_check, invalid_gid)
{
	fill();
	/* A gid with a space, consistent everywhere else. */
	Settle__V1__TxRecord tx = tx_a();
	tx.gid = "a b";
	tx.due_ms = 0;
	raw_tx("a b", &tx);
	raw_put("by_state",
		"\x01"
		"a b",
		4, "", 0);
	expect_refused("gid");
}

Test(snapshot_check, unfinished_tx_with_a_finish_time)
{
	fill();
	Settle__V1__TxRecord tx = tx_a();
	tx.finished_ms = 7;
	raw_tx("a", &tx);
	raw_put("finished",
		"\0\0\0\0\0\0\0\x07"
		"a",
		9, "", 0);
	expect_refused("finish");
}

Test(snapshot_check, branch_of_a_missing_tx)
{
	fill();
	uint8_t buf[128];
	Settle__V1__BranchRecord b;
	settle__v1__branch_record__init(&b);
	b.gid = "z";
	b.branch_id = 1;
	b.state = SETTLE__V1__BRANCH_STATE__REGISTERED;
	size_t n = settle__v1__branch_record__pack(&b, buf);
	raw_put("branches", "z\0\0\0\0\x01", 6, buf, n);
	expect_refused("no tx record");
}

Test(snapshot_check, branch_id_or_state_wrong)
{
	fill();
	uint8_t buf[128];
	Settle__V1__BranchRecord b;
	settle__v1__branch_record__init(&b);
	b.gid = "a";
	b.branch_id = 2;
	b.state = SETTLE__V1__BRANCH_STATE__REGISTERED;
	size_t n = settle__v1__branch_record__pack(&b, buf);
	raw_put("branches", "a\0\0\0\0\x01", 6, buf, n);
	expect_refused("branch id");

	b.branch_id = 1;
	b.state = 0;
	n = settle__v1__branch_record__pack(&b, buf);
	raw_put("branches", "a\0\0\0\0\x01", 6, buf, n);
	expect_refused("branch state");
}

/* A history chunk of key (klen bytes) holding one event of seq. */
static void put_chunk(const char *key, size_t klen, uint64_t seq)
{
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	Settle__V1__Event ev;
	settle__v1__event__init(&ev);
	ev.seq = seq;
	cr_assert_eq(store_event_frame(&ev, &buf, &n, &cap), 0);
	raw_put("history", key, klen, buf, n);
	free(buf);
}

/* a's history: events of seq 2 then seq (each framed as stored: a varint
 * length before it), less the last cut bytes. */
static void put_history(uint64_t seq, size_t cut)
{
	uint8_t *buf = NULL;
	size_t n = 0, cap = 0;
	Settle__V1__Event ev;
	settle__v1__event__init(&ev);
	ev.seq = 2;
	ev.kind = "begin";
	cr_assert_eq(store_event_frame(&ev, &buf, &n, &cap), 0);
	ev.seq = seq;
	cr_assert_eq(store_event_frame(&ev, &buf, &n, &cap), 0);
	raw_put("history", "a\0\0\0\0\0", 6, buf, n - cut);
	free(buf);
}

Test(snapshot_check, event_seqs_go_up)
{
	fill();
	put_history(3, 0);
	uint8_t *a;
	size_t alen;
	cr_assert_eq(store_snapshot(A.s, 0, &a, &alen), 0);
	cr_expect_eq(store_restore(B.s, a, alen), 0, "%s", store_errmsg(B.s));
	raft_free(a);
	put_history(2, 0);
	expect_refused("seq 2 after 2");
}

Test(snapshot_check, event_seqs_go_up_across_chunks)
{
	fill();
	put_history(3, 0);
	put_chunk("a\0\0\0\0\1", 6, 3);
	expect_refused("seq 3 after 3");
}

Test(snapshot_check, history_cut_short)
{
	fill();
	put_history(3, 1);
	expect_refused("cut short");
}

Test(snapshot_check, history_of_no_tx)
{
	fill();
	put_chunk("nobody\0\0\0\0\0", 11, 1);
	expect_refused("no tx record");
}

/* ---- XA rows ------------------------------------------------------------ */

static uint8_t xid_wire[XA_XID_WIRE_MAX];
static size_t xid_len;

/* Tx "a" becomes an XA tx and its branch 1 an RM branch, both valid. */
static void fill_xa(Settle__V1__TxRecord *tx, Settle__V1__BranchRecord *b)
{
	fill();
	struct xa_xid x;
	cr_assert_eq(xa_xid_init(&x, 1, "a", 1, "1", 1), 0);
	cr_assert_eq(xa_xid_encode(&x, xid_wire, sizeof xid_wire, &xid_len), 0);
	*tx = tx_a();
	tx->mode = SETTLE__V1__TX_MODE__XA;
	tx->heuristic = SETTLE__V1__HEURISTIC__HEUR_HAZARD;
	settle__v1__branch_record__init(b);
	b->gid = "a";
	b->branch_id = 1;
	b->state = SETTLE__V1__BRANCH_STATE__XA_BRANCH_PREPARED;
	b->rm = "pg.main";
	b->xid.data = xid_wire;
	b->xid.len = xid_len;
	b->heuristic = SETTLE__V1__HEURISTIC__HEUR_MIXED;
}

static void raw_branch(const Settle__V1__BranchRecord *b)
{
	uint8_t buf[512];
	size_t n = settle__v1__branch_record__pack(b, buf);
	raw_put("branches", "a\0\0\0\0\x01", 6, buf, n);
}

Test(snapshot_check, xa_rows_are_accepted)
{
	Settle__V1__TxRecord tx;
	Settle__V1__BranchRecord b;
	fill_xa(&tx, &b);
	tx.xid.data = xid_wire;
	tx.xid.len = xid_len;
	raw_tx("a", &tx);
	raw_branch(&b);
	/* A TCC branch of an XA tx, and an RM branch FAILED. */
	b.state = SETTLE__V1__BRANCH_STATE__FAILED;
	raw_branch(&b);
	uint8_t *a;
	size_t alen;
	cr_assert_eq(store_snapshot(A.s, 0, &a, &alen), 0);
	cr_expect_eq(store_restore(B.s, a, alen), 0, "%s", store_errmsg(B.s));
	raft_free(a);
	Settle__V1__BranchRecord *got;
	cr_assert_eq(store_branch_get(B.s, NULL, "a", 1, &got), 0);
	cr_expect_str_eq(got->rm, "pg.main");
	cr_expect_eq(got->xid.len, xid_len);
	settle__v1__branch_record__free_unpacked(got, NULL);
}

Test(snapshot_check, xa_tx_fields_checked)
{
	Settle__V1__TxRecord tx;
	Settle__V1__BranchRecord b;
	fill_xa(&tx, &b);
	uint8_t junk[4] = {0, 0, 0, 1};
	tx.xid.data = junk;
	tx.xid.len = sizeof junk;
	raw_tx("a", &tx);
	expect_refused("tx xid does not decode");
	tx.xid.len = 0;
	tx.heuristic = 7;
	raw_tx("a", &tx);
	expect_refused("tx heuristic unknown");
	/* XA fields or state on a TCC tx. */
	tx.heuristic = SETTLE__V1__HEURISTIC__HEUR_HAZARD;
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	raw_tx("a", &tx);
	expect_refused("XA fields or state on a tx of another mode");
	tx.heuristic = 0;
	tx.state = SETTLE__V1__TX_STATE__XA_PREPARED;
	raw_tx("a", &tx);
	raw_del("by_state",
		"\x01"
		"a",
		2);
	raw_put("by_state",
		"\x1e"
		"a",
		2, "", 0);
	expect_refused("XA fields or state on a tx of another mode");
}

Test(snapshot_check, rm_branch_fields_checked)
{
	Settle__V1__TxRecord tx;
	Settle__V1__BranchRecord b;
	fill_xa(&tx, &b);
	raw_tx("a", &tx);
	b.xid.len = 3;
	raw_branch(&b);
	expect_refused("branch xid does not decode");
	b.xid.len = 0;
	raw_branch(&b);
	expect_refused("branch xid does not decode");
	b.xid.len = xid_len;
	b.heuristic = 5;
	raw_branch(&b);
	expect_refused("branch heuristic unknown");
	b.heuristic = 0;
	b.rm = "pg main";
	raw_branch(&b);
	expect_refused("branch rm is not a valid name");
	b.rm = "pg";
	b.state = SETTLE__V1__BRANCH_STATE__CONFIRMING;
	raw_branch(&b);
	expect_refused("RM branch in a non-XA state");
	/* A valid RM branch, but of a TCC transaction. */
	b.state = SETTLE__V1__BRANCH_STATE__XA_BRANCH_ACTIVE;
	raw_branch(&b);
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	tx.heuristic = 0;
	raw_tx("a", &tx);
	expect_refused("RM branch of a transaction of another mode");
	tx.mode = SETTLE__V1__TX_MODE__XA;
	raw_tx("a", &tx);
	/* An XA state, an xid or a heuristic without rm. */
	b.rm = "";
	b.state = SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTED;
	raw_branch(&b);
	expect_refused("XA state or fields on a branch without rm");
	b.state = SETTLE__V1__BRANCH_STATE__CONFIRMED;
	raw_branch(&b);
	expect_refused("XA state or fields on a branch without rm");
}

Test(snapshot_check, xa_command_result_checked)
{
	fill();
	uint8_t id[16] = {1}, buf[256];
	Settle__V1__CmdResult r;
	settle__v1__cmd_result__init(&r);
	r.branch_state = 99;
	memset(buf, 0, 8);
	buf[7] = 33; /* the time cmd_time holds */
	size_t n = settle__v1__cmd_result__pack(&r, buf + 8);
	raw_put("cmds", id, 16, buf, n + 8);
	expect_refused("unknown code or state");
	r.branch_state = SETTLE__V1__BRANCH_STATE__XA_BRANCH_ACTIVE;
	uint8_t junk[3] = {1, 2, 3};
	r.xid.data = junk;
	r.xid.len = sizeof junk;
	n = settle__v1__cmd_result__pack(&r, buf + 8);
	raw_put("cmds", id, 16, buf, n + 8);
	expect_refused("result xid does not decode");
}

/* The snapshots the fuzzer saved (format 1, checksums valid) that were
 * accepted and left a store that did not read back. */
static void finding(const char *name, const char *want)
{
	char path[512];
	snprintf(path, sizeof path, "%s/%s", STORE_TEST_DATA, name);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	static uint8_t buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	cr_assert_gt(n, 0);
	uint8_t *before, *after;
	size_t blen, alen;
	cr_assert_eq(store_snapshot(B.s, 0, &before, &blen), 0);
	cr_expect_eq(store_restore(B.s, buf, n), SETTLE_EPROTO, "%s", name);
	cr_expect_neq(strstr(store_errmsg(B.s), want), NULL,
		      "%s: want \"%s\" in \"%s\"", name, want,
		      store_errmsg(B.s));
	cr_assert_eq(store_snapshot(B.s, 0, &after, &alen), 0);
	cr_assert_eq(alen, blen);
	cr_expect_eq(memcmp(after, before, alen), 0);
	raft_free(before);
	raft_free(after);
}

Test(snapshot_check, fuzz_findings_are_refused)
{
	finding("finding-1-21.bin", "gid differs from its key");
	finding("finding-1-582.bin", "version row");
	finding("finding-1-1779.bin", "db by_state");
	finding("finding-1-3357.bin", "db due");
	finding("finding-1-13588.bin", "tx state 6");
}

/* Its tx record had an empty gid, which restored and then did not read
 * back. Format 3 stores every record so (the key holds the gid): it is
 * restored, and reads back with the gid of its key. */
Test(snapshot_check, a_record_without_its_gid_reads_back_with_its_key)
{
	char path[512];
	snprintf(path, sizeof path, "%s/finding-1-50543.bin", STORE_TEST_DATA);
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s", path);
	static uint8_t buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf, f);
	fclose(f);
	cr_assert_eq(store_restore(B.s, buf, n), 0, "%s", store_errmsg(B.s));
	Settle__V1__TxRecord **txs;
	size_t ntx;
	cr_assert_eq(store_tx_list(B.s, NULL, 0, NULL, 100, NULL, NULL, &txs,
				   &ntx, NULL),
		     0);
	cr_assert_gt(ntx, 0);
	for (size_t i = 0; i < ntx; i++) {
		Settle__V1__TxRecord *one;
		cr_assert_neq(txs[i]->gid[0], 0);
		cr_assert_eq(store_tx_get(B.s, NULL, txs[i]->gid, &one), 0);
		cr_expect_str_eq(one->gid, txs[i]->gid);
		settle__v1__tx_record__free_unpacked(one, NULL);
	}
	store_txs_free(txs, ntx);
}

/* Put tx gid in state st through the store (index rows and counts as
 * apply leaves them); a final state gets finished_ms 7. */
static void put_state(const char *gid, int st)
{
	MDB_txn *txn;
	Settle__V1__TxRecord tx = tx_a();
	tx.gid = (char *)gid;
	tx.state = st;
	if (st == SETTLE__V1__TX_STATE__COMMITTED) {
		tx.due_ms = 0;
		tx.finished_ms = 7;
	}
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(store_tx_put(A.s, txn, &tx), 0, "%s", store_errmsg(A.s));
	cr_assert_eq(store_write_commit(A.s, txn), 0);
}

/* Format 4: a finished transaction has no by_state row, even when the
 * row count would match (b's row traded for one of a). */
Test(snapshot_check, by_state_row_of_a_finished_tx)
{
	fill();
	put_state("a", SETTLE__V1__TX_STATE__COMMITTED);
	put_state("b", SETTLE__V1__TX_STATE__ACTIVE);
	raw_del("by_state",
		"\x01"
		"b",
		2);
	raw_put("by_state",
		"\x03"
		"a",
		2, "", 0);
	expect_refused("by_state row of a finished tx");
}

/* The counts of finished transactions in meta must be the records'. */
Test(snapshot_check, final_counts_differ_from_the_records)
{
	fill();
	put_state("a", SETTLE__V1__TX_STATE__COMMITTED);
	uint8_t *a;
	size_t alen;
	cr_assert_eq(store_snapshot(A.s, 0, &a, &alen), 0);
	cr_expect_eq(store_restore(B.s, a, alen), 0, "%s", store_errmsg(B.s));
	raft_free(a);
	uint8_t counts[32] = {0};
	counts[7] = 2; /* COMMITTED: 2, the records hold 1 */
	raw_put("meta", "final", 5, counts, sizeof counts);
	expect_refused("meta counts 2 transactions in state 3");
	raw_put("meta", "final", 5, counts, 31);
	expect_refused("final counts of 31 bytes");
}

/* cmd_ids: 16-byte ids, results that decode, none also in cmds. */
Test(snapshot_check, cmd_ids_rows_checked)
{
	fill();
	uint8_t id[16] = {2}, buf[64];
	Settle__V1__CmdResult r;
	settle__v1__cmd_result__init(&r);
	size_t n = settle__v1__cmd_result__pack(&r, buf);
	raw_put("cmd_ids", id, 15, buf, n);
	expect_refused("command id of 15 bytes");
	raw_del("cmd_ids", id, 15);
	raw_put("cmd_ids", id, 16, "\xff\xff", 2);
	expect_refused("CmdResult does not decode");
	raw_del("cmd_ids", id, 16);
	r.code = 999;
	n = settle__v1__cmd_result__pack(&r, buf);
	raw_put("cmd_ids", id, 16, buf, n);
	expect_refused("unknown code");
	raw_del("cmd_ids", id, 16);
	r.code = 0;
	n = settle__v1__cmd_result__pack(&r, buf);
	id[0] = 1; /* fill()'s id, in cmds */
	raw_put("cmd_ids", id, 16, buf, n);
	expect_refused("command id also in cmds");
	raw_del("cmd_ids", id, 16);
	id[0] = 2;
	raw_put("cmd_ids", id, 16, buf, n);
	uint8_t *a;
	size_t alen;
	cr_assert_eq(store_snapshot(A.s, 0, &a, &alen), 0);
	cr_expect_eq(store_restore(B.s, a, alen), 0, "%s", store_errmsg(B.s));
	raft_free(a);
	Settle__V1__CmdResult *got;
	cr_assert_eq(store_cmd_get(B.s, NULL, id, &got), 0);
	settle__v1__cmd_result__free_unpacked(got, NULL);
}

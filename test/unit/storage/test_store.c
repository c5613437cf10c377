#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "error.h"
#include "helpers.h"
#include "storage/store.h"
#include "storage/store_int.h"
#include "xa/xid.h"

static struct tstore T;

static void setup(void)
{
	tstore_open(&T, 0);
}

static void teardown(void)
{
	tstore_close(&T);
}

TestSuite(store, .init = setup, .fini = teardown);

static void put_tx(const char *gid, int state, uint64_t due, uint64_t finished)
{
	Settle__V1__TxRecord tx;
	settle__v1__tx_record__init(&tx);
	tx.gid = (char *)gid;
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	tx.state = state;
	tx.created_ms = 1000;
	tx.deadline_ms = 5000;
	tx.due_ms = due;
	tx.finished_ms = finished;
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_tx_put(T.s, txn, &tx), 0, "%s", store_errmsg(T.s));
	cr_assert_eq(store_write_commit(T.s, txn), 0);
}

static int collect_due(void *data, const char *gid, uint64_t due)
{
	char *acc = data;
	char item[200];
	snprintf(item, sizeof item, "%s@%llu ", gid, (unsigned long long)due);
	strcat(acc, item);
	return 0;
}

static size_t db_entries(const char *name)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st;
	cr_assert_eq(store_read_begin(T.s, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, name, 0, &dbi), 0);
	cr_assert_eq(mdb_stat(txn, dbi, &st), 0);
	store_read_end(txn);
	return st.ms_entries;
}

/* Transactions in state st, as store_counts_get() says. */
static uint64_t count_of(int st)
{
	struct store_counts cn;
	cr_assert_eq(store_counts_get(T.s, NULL, &cn), 0, "%s",
		     store_errmsg(T.s));
	return cn.by_state[st];
}

Test(store, fresh_store_is_empty_at_index_0)
{
	uint64_t idx = 99, due = 99;
	cr_assert_eq(store_applied_get(T.s, NULL, &idx), 0);
	cr_expect_eq(idx, 0);
	cr_assert_eq(store_due_min(T.s, NULL, &due), 0);
	cr_expect_eq(due, 0);
	cr_assert_eq(store_finished_min(T.s, NULL, &due), 0);
	cr_expect_eq(due, 0);
	Settle__V1__TxRecord *tx;
	cr_expect_eq(store_tx_get(T.s, NULL, "nope", &tx), SETTLE_ENOTFOUND);
	cr_expect_eq(store_tx_get(T.s, NULL, "", &tx), SETTLE_EINVAL);
}

Test(store, applied_index_persists_across_reopen)
{
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_applied_put(T.s, txn, 42), 0);
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	store_close(T.s);
	char msg[128];
	cr_assert_eq(store_open(T.dir, NULL, &T.s, msg, sizeof msg), 0);
	uint64_t idx;
	cr_assert_eq(store_applied_get(T.s, NULL, &idx), 0);
	cr_expect_eq(idx, 42);
}

Test(store, open_fails_cleanly_on_missing_dir)
{
	struct store *s = NULL;
	char msg[256] = "";
	int rv =
	    store_open("/nonexistent/settle/dir", NULL, &s, msg, sizeof msg);
	cr_expect_lt(rv, 0);
	cr_expect_null(s);
	cr_expect_neq(strstr(msg, "/nonexistent/settle/dir"), NULL, "%s", msg);
}

Test(store, tx_put_keeps_one_index_row_per_tx)
{
	put_tx("a", SETTLE__V1__TX_STATE__ACTIVE, 5000, 0);
	put_tx("b", SETTLE__V1__TX_STATE__ACTIVE, 3000, 0);
	cr_expect_eq(db_entries("due"), 2);
	cr_expect_eq(db_entries("by_state"), 2);
	/* Move a: new due, new state. The old rows must go. */
	put_tx("a", SETTLE__V1__TX_STATE__COMMITTING, 7000, 0);
	cr_expect_eq(db_entries("due"), 2);
	cr_expect_eq(db_entries("by_state"), 2);
	put_tx("a", SETTLE__V1__TX_STATE__COMMITTED, 0, 8000);
	cr_expect_eq(db_entries("due"), 1);
	cr_expect_eq(db_entries("finished"), 1);
	/* Finished: counted, not indexed. */
	cr_expect_eq(db_entries("by_state"), 1);
	cr_expect_eq(count_of(SETTLE__V1__TX_STATE__COMMITTED), 1);
	uint64_t min;
	cr_assert_eq(store_due_min(T.s, NULL, &min), 0);
	cr_expect_eq(min, 3000);
	cr_assert_eq(store_finished_min(T.s, NULL, &min), 0);
	cr_expect_eq(min, 8000);
	put_tx("b", SETTLE__V1__TX_STATE__ROLLED_BACK, 0, 6000);
	cr_assert_eq(store_finished_min(T.s, NULL, &min), 0);
	cr_expect_eq(min, 6000);
	Settle__V1__TxRecord *tx;
	cr_assert_eq(store_tx_get(T.s, NULL, "a", &tx), 0);
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(tx->finished_ms, 8000);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

/* store_tx_put_over(): with the rows of the record stored, the index rows
 * that change move and those that do not stay (a rewrite with the same
 * state and due writes no index row: the row count and the keys hold). */
Test(store, tx_put_over_moves_only_the_rows_that_change)
{
	struct store_tx_rows rows = {0};
	Settle__V1__TxRecord tx;
	MDB_txn *txn;
	uint64_t min;

	settle__v1__tx_record__init(&tx);
	tx.gid = "a";
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	tx.state = SETTLE__V1__TX_STATE__ACTIVE;
	tx.due_ms = 5000;
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_tx_put_over(T.s, txn, &tx, &rows), 0, "%s",
		     store_errmsg(T.s));
	store_tx_rows_of(&tx, &rows);
	/* Same state and due: a rewrite of the record only. */
	tx.next_event_seq = 9;
	cr_assert_eq(store_tx_put_over(T.s, txn, &tx, &rows), 0, "%s",
		     store_errmsg(T.s));
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	cr_expect_eq(db_entries("due"), 1);
	cr_expect_eq(db_entries("by_state"), 1);
	cr_assert_eq(store_due_min(T.s, NULL, &min), 0);
	cr_expect_eq(min, 5000);

	/* A new due, same state: by_state stays, due moves. */
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	tx.due_ms = 7000;
	cr_assert_eq(store_tx_put_over(T.s, txn, &tx, &rows), 0, "%s",
		     store_errmsg(T.s));
	store_tx_rows_of(&tx, &rows);
	/* Final: due and the by_state row gone, finished in, counted. */
	tx.state = SETTLE__V1__TX_STATE__COMMITTED;
	tx.due_ms = 0;
	tx.finished_ms = 8000;
	cr_assert_eq(store_tx_put_over(T.s, txn, &tx, &rows), 0, "%s",
		     store_errmsg(T.s));
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	cr_expect_eq(db_entries("due"), 0);
	cr_expect_eq(db_entries("by_state"), 0);
	cr_expect_eq(count_of(SETTLE__V1__TX_STATE__COMMITTED), 1);
	cr_expect_eq(db_entries("finished"), 1);
	cr_assert_eq(store_finished_min(T.s, NULL, &min), 0);
	cr_expect_eq(min, 8000);
	Settle__V1__TxRecord *got;
	cr_assert_eq(store_tx_get(T.s, NULL, "a", &got), 0);
	cr_expect_eq(got->state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(got->next_event_seq, 9);
	settle__v1__tx_record__free_unpacked(got, NULL);
	/* Wrong rows given (a caller's bug): the stale row is missing, and
	 * the put fails rather than leave an index out of step. */
	struct store_tx_rows stale = rows;
	stale.state = SETTLE__V1__TX_STATE__ACTIVE;
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_expect_neq(store_tx_put_over(T.s, txn, &tx, &stale), 0);
	store_write_abort(txn);
}

Test(store, due_scan_in_time_order_up_to_now_and_limit)
{
	put_tx("x", SETTLE__V1__TX_STATE__ACTIVE, 300, 0);
	put_tx("y", SETTLE__V1__TX_STATE__ACTIVE, 100, 0);
	put_tx("z", SETTLE__V1__TX_STATE__ACTIVE, 200, 0);
	put_tx("w", SETTLE__V1__TX_STATE__ACTIVE, 900, 0);
	char acc[512] = "";
	cr_expect_eq(store_due_scan(T.s, NULL, 300, 0, collect_due, acc), 3);
	cr_expect_str_eq(acc, "y@100 z@200 x@300 ");
	acc[0] = 0;
	cr_expect_eq(store_due_scan(T.s, NULL, 1000, 2, collect_due, acc), 2);
	cr_expect_str_eq(acc, "y@100 z@200 ");
	cr_expect_eq(store_due_scan(T.s, NULL, 99, 0, collect_due, acc), 0);
}

static bool only_b(void *data, const Settle__V1__TxRecord *tx)
{
	(void)data;
	return tx->gid[0] == 'b';
}

Test(store, list_pages_by_gid_and_state)
{
	const char *gids[] = {"a1", "a2", "b1", "b2", "b3", "c1"};
	for (int i = 0; i < 6; i++)
		put_tx(gids[i],
		       i % 2 ? SETTLE__V1__TX_STATE__ACTIVE
			     : SETTLE__V1__TX_STATE__ROLLING_BACK,
		       100 + i, 0);
	Settle__V1__TxRecord **arr;
	size_t n;
	bool more;
	cr_assert_eq(
	    store_tx_list(T.s, NULL, 0, NULL, 4, NULL, NULL, &arr, &n, &more),
	    0);
	cr_assert_eq(n, 4);
	cr_expect(more);
	cr_expect_str_eq(arr[3]->gid, "b2");
	store_txs_free(arr, n);
	cr_assert_eq(
	    store_tx_list(T.s, NULL, 0, "b2", 4, NULL, NULL, &arr, &n, &more),
	    0);
	cr_assert_eq(n, 2);
	cr_expect(!more);
	cr_expect_str_eq(arr[0]->gid, "b3");
	store_txs_free(arr, n);
	/* ACTIVE: a2, b2, c1. */
	cr_assert_eq(store_tx_list(T.s, NULL, SETTLE__V1__TX_STATE__ACTIVE,
				   "a2", 10, NULL, NULL, &arr, &n, &more),
		     0);
	cr_assert_eq(n, 2);
	cr_expect_str_eq(arr[0]->gid, "b2");
	cr_expect_str_eq(arr[1]->gid, "c1");
	store_txs_free(arr, n);
	cr_assert_eq(
	    store_tx_list(T.s, NULL, 0, "", 1, only_b, NULL, &arr, &n, &more),
	    0);
	cr_assert_eq(n, 1);
	cr_expect(more);
	cr_expect_str_eq(arr[0]->gid, "b1");
	store_txs_free(arr, n);
	/* An after_gid that is not a key resumes at the next one. */
	cr_assert_eq(
	    store_tx_list(T.s, NULL, 0, "b", 10, only_b, NULL, &arr, &n, &more),
	    0);
	cr_expect_eq(n, 3);
	store_txs_free(arr, n);
	cr_assert_eq(store_tx_list(T.s, NULL, SETTLE__V1__TX_STATE__COMMITTED,
				   NULL, 10, NULL, NULL, &arr, &n, &more),
		     0);
	cr_expect_eq(n, 0);
	cr_expect_null(arr);
}

static void put_branch(const char *gid, uint32_t id, int state, int failed)
{
	Settle__V1__BranchRecord b;
	settle__v1__branch_record__init(&b);
	b.gid = (char *)gid;
	b.branch_id = id;
	b.endpoint = "127.0.0.1:7000";
	b.resource = "acct";
	b.payload.data = (uint8_t *)"SECRET";
	b.payload.len = 6;
	b.state = failed ? SETTLE__V1__BRANCH_STATE__FAILED : state;
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_branch_put(T.s, txn, &b), 0);
	Settle__V1__Event ev;
	settle__v1__event__init(&ev);
	ev.seq = id;
	ev.kind = "register";
	ev.branch_id = id;
	cr_assert_eq(store_event_put(T.s, txn, gid, &ev), 0);
	cr_assert_eq(store_write_commit(T.s, txn), 0);
}

Test(store, branches_and_events_are_per_gid_in_order)
{
	put_tx("g", SETTLE__V1__TX_STATE__ACTIVE, 10, 0);
	put_tx("g1", SETTLE__V1__TX_STATE__ACTIVE, 10, 0);
	for (uint32_t i = 300; i >= 1; i--)
		put_branch("g", i, SETTLE__V1__BRANCH_STATE__REGISTERED, 0);
	put_branch("g1", 1, SETTLE__V1__BRANCH_STATE__REGISTERED, 0);
	Settle__V1__BranchRecord **br;
	size_t n;
	cr_assert_eq(store_branches_list(T.s, NULL, "g", &br, &n), 0);
	cr_assert_eq(n, 300);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(br[i]->branch_id, i + 1);
	store_branches_free(br, n);
	Settle__V1__Event **ev;
	cr_assert_eq(store_events_list(T.s, NULL, "g1", &ev, &n), 0);
	cr_assert_eq(n, 1);
	store_events_free(ev, n);
	/* One history row per gid, its events in the order they came. */
	cr_assert_eq(store_events_list(T.s, NULL, "g", &ev, &n), 0);
	cr_assert_eq(n, 300);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ev[i]->seq, 300 - i);
	store_events_free(ev, n);
	cr_expect_gt(db_entries("history"), 2, "g's 300 events in chunks");
	cr_assert_eq(store_events_list(T.s, NULL, "zz", &ev, &n), 0);
	cr_expect_eq(n, 0);
	cr_expect_null(ev);
	cr_assert_eq(store_branches_list(T.s, NULL, "zz", &br, &n), 0);
	cr_expect_eq(n, 0);
	Settle__V1__BranchRecord *b;
	cr_assert_eq(store_branch_get(T.s, NULL, "g", 17, &b), 0);
	cr_expect_eq(b->branch_id, 17);
	settle__v1__branch_record__free_unpacked(b, NULL);
	cr_expect_eq(store_branch_get(T.s, NULL, "g", 301, &b),
		     SETTLE_ENOTFOUND);

	/* Deleting g leaves g1 alone, and removes every row of g. */
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_tx_delete(T.s, txn, "g"), 0, "%s",
		     store_errmsg(T.s));
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	cr_expect_eq(db_entries("branches"), 1);
	cr_expect_eq(db_entries("history"), 1);
	cr_expect_eq(db_entries("due"), 1);
	cr_expect_eq(db_entries("by_state"), 1);
	cr_expect_eq(db_entries("txs"), 1);
}

/* The brief reads agree with a full unpack of the same records. */
Test(store, brief_reads_match_the_records)
{
	Settle__V1__TxRecord tx;
	settle__v1__tx_record__init(&tx);
	tx.gid = "saga-1";
	tx.mode = SETTLE__V1__TX_MODE__SAGA;
	tx.state = SETTLE__V1__TX_STATE__SAGA_RUNNING;
	tx.branches = 3;
	tx.reason = "a reason before the fields read";
	tx.deadline_ms = 1ull << 40;
	tx.next_branch_id = 4;
	tx.pending = 2;
	tx.recovery = SETTLE__V1__SAGA_RECOVERY__FORWARD;
	tx.expires_clock_ms = 123456789;
	tx.xid.data = (uint8_t *)"xid";
	tx.xid.len = 3;
	uint32_t deps[] = {4, 7};
	Settle__V1__BranchRecord b;
	settle__v1__branch_record__init(&b);
	b.gid = "saga-1";
	b.branch_id = 2;
	b.endpoint = "127.0.0.1:7000";
	b.payload.data = (uint8_t *)"SECRET";
	b.payload.len = 6;
	b.state = SETTLE__V1__BRANCH_STATE__STEP_PENDING;
	b.n_depends_on = 2;
	b.depends_on = deps;
	b.next_retry_ms = 99;
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_tx_put(T.s, txn, &tx), 0, "%s", store_errmsg(T.s));
	cr_assert_eq(store_branch_put(T.s, txn, &b), 0);
	b.branch_id = 1;
	b.n_depends_on = 0;
	b.state = SETTLE__V1__BRANCH_STATE__STEP_DONE;
	cr_assert_eq(store_branch_put(T.s, txn, &b), 0);
	cr_assert_eq(store_write_commit(T.s, txn), 0);

	struct store_tx_brief tb;
	cr_assert_eq(store_tx_brief_get(T.s, NULL, "saga-1", &tb), 0);
	cr_expect_eq(tb.mode, SETTLE__V1__TX_MODE__SAGA);
	cr_expect_eq(tb.state, SETTLE__V1__TX_STATE__SAGA_RUNNING);
	cr_expect_eq(tb.branches, 3);
	cr_expect_eq(tb.next_branch_id, 4);
	cr_expect_eq(tb.pending, 2);
	cr_expect_eq(tb.recovery, SETTLE__V1__SAGA_RECOVERY__FORWARD);
	cr_expect_eq(tb.deadline_ms, 1ull << 40);
	cr_expect_eq(tb.expires_clock_ms, 123456789);
	cr_expect_eq(store_tx_brief_get(T.s, NULL, "saga-2", &tb),
		     SETTLE_ENOTFOUND);

	struct store_branch_brief bb;
	cr_assert_eq(store_branch_brief_get(T.s, NULL, "saga-1", 2, &bb), 0);
	cr_expect_eq(bb.state, SETTLE__V1__BRANCH_STATE__STEP_PENDING);
	cr_expect_eq(bb.n_depends_on, 2);
	cr_expect_eq(bb.depends_on_first, 4);
	cr_assert_eq(store_branch_brief_get(T.s, NULL, "saga-1", 1, &bb), 0);
	cr_expect_eq(bb.state, SETTLE__V1__BRANCH_STATE__STEP_DONE);
	cr_expect_eq(bb.n_depends_on, 0);
	cr_expect_eq(store_branch_brief_get(T.s, NULL, "saga-1", 3, &bb),
		     SETTLE_ENOTFOUND);

	/* Listed in branch_id order, with their ids from the keys; a gid
	 * that is a prefix of another lists only its own. */
	put_branch("saga-10", 1, SETTLE__V1__BRANCH_STATE__REGISTERED, 0);
	struct store_branch_brief *list;
	size_t n;
	cr_assert_eq(store_branches_brief_list(T.s, NULL, "saga-1", &list, &n),
		     0);
	cr_assert_eq(n, 2);
	cr_expect_eq(list[0].branch_id, 1);
	cr_expect_eq(list[0].state, SETTLE__V1__BRANCH_STATE__STEP_DONE);
	cr_expect_eq(list[0].next_retry_ms, 99);
	cr_expect_eq(list[1].branch_id, 2);
	cr_expect_eq(list[1].state, SETTLE__V1__BRANCH_STATE__STEP_PENDING);
	cr_expect_eq(list[1].n_depends_on, 2);
	free(list);
	cr_assert_eq(store_branches_brief_list(T.s, NULL, "saga-2", &list, &n),
		     0);
	cr_expect_eq(n, 0);
	cr_expect_null(list);
}

/* The wire scanner reads what a decoder reads, and refuses what no
 * decoder would take. */
Test(store, wire_scan_reads_like_a_decoder)
{
	uint64_t vals[4];
	struct store__wire w = {.vals = vals, .nvals = 4, .rep = 13};
	/* field 3 = 5, field 3 = 300 (last wins), field 13 unpacked 9,
	 * then packed {1, 2}, a 64-bit and a 32-bit field skipped. */
	const uint8_t msg[] = {0x18, 5, 0x18, 0xac, 0x02, 0x68, 9, 0x6a, 2,
			       1,    2, 0x09, 1,    2,	  3,	4, 5,	 6,
			       7,    8, 0x15, 1,    2,	  3,	4};
	memset(vals, 0, sizeof vals);
	cr_assert_eq(store__wire_scan(msg, sizeof msg, &w), 0);
	cr_expect_eq(vals[3], 300);
	cr_expect_eq(w.rep_n, 3);
	cr_expect_eq(w.rep_first, 9);
	/* Every truncation of it is refused or read as a shorter message;
	 * none reads past its end (ASan watches the copy). */
	for (size_t n = 0; n < sizeof msg; n++) {
		uint8_t *cut = malloc(n + 1);
		cr_assert_not_null(cut);
		memcpy(cut, msg, n);
		w.rep_n = 0;
		(void)store__wire_scan(cut, n, &w);
		free(cut);
	}
	const uint8_t half_varint[] = {0x18, 0x80};
	cr_expect_eq(store__wire_scan(half_varint, 2, &w), -1);
	const uint8_t long_bytes[] = {0x22, 5, 'a'};
	cr_expect_eq(store__wire_scan(long_bytes, 3, &w), -1);
	const uint8_t field_0[] = {0x00, 1};
	cr_expect_eq(store__wire_scan(field_0, 2, &w), -1);
	const uint8_t group[] = {0x1b, 0x1c};
	cr_expect_eq(store__wire_scan(group, 2, &w), -1);
	const uint8_t short_fixed[] = {0x09, 1, 2};
	cr_expect_eq(store__wire_scan(short_fixed, 3, &w), -1);
}

Test(store, tx_info_never_carries_payload)
{
	put_tx("g", SETTLE__V1__TX_STATE__COMMITTING, 10, 0);
	put_branch("g", 1, SETTLE__V1__BRANCH_STATE__CONFIRMING, 1);
	Settle__V1__TxRecord *tx;
	cr_assert_eq(store_tx_get(T.s, NULL, "g", &tx), 0);
	tx->failed = 1;
	Settle__V1__TxInfo *info;
	cr_assert_eq(store_tx_info(T.s, NULL, tx, true, true, &info), 0);
	cr_expect_str_eq(info->gid, "g");
	cr_assert_eq(info->n_branches, 1);
	cr_expect_str_eq(info->branches[0]->endpoint, "127.0.0.1:7000");
	cr_expect_eq(info->n_history, 1);
	cr_expect(info->stuck);
	size_t len = settle__v1__tx_info__get_packed_size(info);
	uint8_t *buf = malloc(len);
	settle__v1__tx_info__pack(info, buf);
	cr_expect_null(memmem(buf, len, "SECRET", 6));
	free(buf);
	settle__v1__tx_info__free_unpacked(info, NULL);
	cr_assert_eq(store_tx_info(T.s, NULL, tx, false, false, &info), 0);
	cr_expect_eq(info->n_branches, 0);
	cr_expect_eq(info->n_history, 0);
	settle__v1__tx_info__free_unpacked(info, NULL);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

Test(store, tx_info_carries_xa_fields)
{
	put_tx("x", SETTLE__V1__TX_STATE__COMMITTING, 10, 0);
	Settle__V1__TxRecord *tx;
	cr_assert_eq(store_tx_get(T.s, NULL, "x", &tx), 0);
	struct xa_xid x;
	uint8_t wire[XA_XID_WIRE_MAX];
	size_t len;
	cr_assert_eq(xa_xid_init(&x, 5, "x", 1, "1", 1), 0);
	cr_assert_eq(xa_xid_encode(&x, wire, sizeof wire, &len), 0);
	Settle__V1__BranchRecord b;
	settle__v1__branch_record__init(&b);
	b.gid = "x";
	b.branch_id = 1;
	b.state = SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTED;
	b.rm = "pg";
	b.xid.data = wire;
	b.xid.len = len;
	b.heuristic = SETTLE__V1__HEURISTIC__HEUR_HAZARD;
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_branch_put(T.s, txn, &b), 0);
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	tx->mode = SETTLE__V1__TX_MODE__XA;
	tx->xid.data = wire;
	tx->xid.len = len;
	tx->heuristic = SETTLE__V1__HEURISTIC__HEUR_MIXED;
	Settle__V1__TxInfo *info;
	cr_assert_eq(store_tx_info(T.s, NULL, tx, true, false, &info), 0);
	cr_expect_str_eq(info->xid, "5:78:31");
	cr_expect_eq(info->heuristic, SETTLE__V1__HEURISTIC__HEUR_MIXED);
	cr_assert_eq(info->n_branches, 1);
	cr_expect_str_eq(info->branches[0]->rm, "pg");
	cr_expect_str_eq(info->branches[0]->xid, "5:78:31");
	cr_expect_eq(info->branches[0]->heuristic,
		     SETTLE__V1__HEURISTIC__HEUR_HAZARD);
	settle__v1__tx_info__free_unpacked(info, NULL);
	Settle__V1__BranchInfo *bi;
	cr_assert_eq(store_branch_info(&b, &bi), 0);
	cr_expect_str_eq(bi->xid, "5:78:31");
	settle__v1__branch_info__free_unpacked(bi, NULL);
	/* No xid: empty text. */
	tx->xid.len = 0;
	cr_assert_eq(store_tx_info(T.s, NULL, tx, false, false, &info), 0);
	cr_expect_str_eq(info->xid, "");
	settle__v1__tx_info__free_unpacked(info, NULL);
	tx->xid.data = NULL; /* wire is not the record's to free */
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

Test(store, counts_by_state)
{
	put_tx("a", SETTLE__V1__TX_STATE__ACTIVE, 10, 0);
	put_tx("b", SETTLE__V1__TX_STATE__COMMITTING, 10, 0);
	put_tx("c", SETTLE__V1__TX_STATE__COMMITTED, 0, 10);
	put_tx("d", SETTLE__V1__TX_STATE__ROLLED_BACK, 0, 10);
	put_tx("e", SETTLE__V1__TX_STATE__ROLLED_BACK, 0, 11);
	put_tx("f", SETTLE__V1__TX_STATE__XA_PREPARED, 0, 0);
	struct store_counts c;
	cr_assert_eq(store_counts_get(T.s, NULL, &c), 0);
	cr_expect_eq(c.active, 3);
	cr_expect_eq(c.by_state[SETTLE__V1__TX_STATE__XA_PREPARED], 1);
	cr_expect_eq(c.finished, 3);
	cr_expect_eq(c.by_state[SETTLE__V1__TX_STATE__ROLLED_BACK], 2);
	cr_expect_eq(c.stuck, 0);
}

static void cmd_id(uint8_t *id, int n)
{
	memset(id, 0, 16);
	id[0] = (uint8_t)n;
	id[15] = 0xab;
}

Test(store, cmd_results_round_trip_and_gc_oldest_first)
{
	MDB_txn *txn;
	uint8_t id[16];
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	for (int i = 1; i <= 10; i++) {
		Settle__V1__CmdResult r;
		settle__v1__cmd_result__init(&r);
		r.code = SETTLE__V1__CODE__WRONG_STATE;
		r.index = (uint64_t)i;
		cmd_id(id, i);
		cr_assert_eq(store_cmd_put(T.s, txn, id, 100 * (uint64_t)i, &r),
			     0);
	}
	/* The same id twice is refused (the FSM checks before). */
	Settle__V1__CmdResult r0;
	settle__v1__cmd_result__init(&r0);
	cmd_id(id, 3);
	cr_expect_eq(store_cmd_put(T.s, txn, id, 1, &r0), SETTLE_EEXISTS);
	size_t del;
	cr_assert_eq(store_cmd_gc(T.s, txn, 450, 2, &del), 0);
	cr_expect_eq(del, 2);
	cr_assert_eq(store_cmd_gc(T.s, txn, 450, 100, &del), 0);
	cr_expect_eq(del, 2);
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	Settle__V1__CmdResult *r;
	cmd_id(id, 4);
	cr_expect_eq(store_cmd_get(T.s, NULL, id, &r), SETTLE_ENOTFOUND);
	cmd_id(id, 5);
	cr_assert_eq(store_cmd_get(T.s, NULL, id, &r), 0);
	cr_expect_eq(r->index, 5);
	cr_expect_eq(r->code, SETTLE__V1__CODE__WRONG_STATE);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(db_entries("cmds"), 6);
	cr_expect_eq(db_entries("cmd_time"), 6);
}

/* A long history goes into chunks of at most 1.5 KiB, read back whole
 * and in order, carried by a snapshot, deleted with its tx. */
Test(store, a_long_history_is_chunked)
{
	put_tx("g", SETTLE__V1__TX_STATE__ACTIVE, 10, 0);
	put_tx("g0", SETTLE__V1__TX_STATE__ACTIVE, 10, 0);
	MDB_txn *txn;
	char detail[64];
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	for (uint64_t i = 1; i <= 1000; i++) {
		Settle__V1__Event ev;
		settle__v1__event__init(&ev);
		ev.seq = i;
		ev.time_ms = 5000 + i;
		ev.kind = "confirm";
		snprintf(detail, sizeof detail, "retry attempt %llu: timeout",
			 (unsigned long long)i);
		ev.detail = detail;
		cr_assert_eq(store_event_put(T.s, txn, "g", &ev), 0);
		if (i % 100 == 0)
			cr_assert_eq(store_event_put(T.s, txn, "g0", &ev), 0);
	}
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	size_t rows = db_entries("history");
	cr_expect_gt(rows, 20);
	/* No chunk past the bound. */
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_val k, v;
	cr_assert_eq(store_read_begin(T.s, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "history", 0, &dbi), 0);
	cr_assert_eq(mdb_cursor_open(txn, dbi, &c), 0);
	while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0)
		cr_expect_leq(v.mv_size, 1536);
	mdb_cursor_close(c);
	store_read_end(txn);
	Settle__V1__Event **ev;
	size_t n;
	cr_assert_eq(store_events_list(T.s, NULL, "g", &ev, &n), 0);
	cr_assert_eq(n, 1000);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ev[i]->seq, i + 1);
	cr_expect_str_eq(ev[999]->detail, "retry attempt 1000: timeout");
	store_events_free(ev, n);
	cr_assert_eq(store_events_list(T.s, NULL, "g0", &ev, &n), 0);
	cr_expect_eq(n, 10, "g's chunks are not g0's");
	store_events_free(ev, n);

	struct tstore U;
	tstore_open(&U, 0);
	uint8_t *snap;
	size_t len;
	cr_assert_eq(store_snapshot(T.s, 3, &snap, &len), 0);
	cr_assert_eq(store_restore(U.s, snap, len), 0, "%s", store_errmsg(U.s));
	raft_free(snap);
	cr_assert_eq(store_events_list(U.s, NULL, "g", &ev, &n), 0);
	cr_expect_eq(n, 1000);
	store_events_free(ev, n);
	tstore_close(&U);

	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_tx_delete(T.s, txn, "g"), 0);
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	cr_expect_eq(db_entries("history"), 1, "only g0's chunk is left");
}

/* The rows of gid's history (chunk number, then value), in order. */
static size_t history_rows(MDB_txn *txn, const char *gid, uint32_t *chunk,
			   MDB_val *val, size_t max)
{
	MDB_dbi dbi;
	MDB_cursor *c;
	MDB_val k, v;
	size_t n = 0, glen = strlen(gid);

	cr_assert_eq(mdb_dbi_open(txn, "history", 0, &dbi), 0);
	cr_assert_eq(mdb_cursor_open(txn, dbi, &c), 0);
	while (mdb_cursor_get(c, &k, &v, MDB_NEXT) == 0) {
		const uint8_t *key = k.mv_data;
		if (k.mv_size != glen + 5 || memcmp(key, gid, glen) != 0 ||
		    key[glen] != 0)
			continue;
		cr_assert_lt(n, max);
		chunk[n] = (uint32_t)key[glen + 1] << 24 |
			   (uint32_t)key[glen + 2] << 16 |
			   (uint32_t)key[glen + 3] << 8 | key[glen + 4];
		val[n++] = v;
	}
	mdb_cursor_close(c);
	return n;
}

/* Events appended in runs (the FSM: all of one command's at once) make
 * the very rows they make one by one, chunk boundaries included, with
 * details from a few bytes to more than a chunk. */
Test(store, events_appended_in_runs_land_as_one_by_one)
{
	static char detail[3000];
	uint8_t *run = NULL;
	size_t rlen = 0, rcap = 0;
	unsigned seed = 7;
	MDB_txn *txn;

	memset(detail, 'x', sizeof detail - 1);
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	for (uint64_t i = 1; i <= 400; i++) {
		Settle__V1__Event ev;
		size_t dl = i % 97 == 0 ? 2000 : (size_t)(rand_r(&seed) % 300);

		settle__v1__event__init(&ev);
		ev.seq = i;
		ev.time_ms = 5000 + i;
		ev.kind = "confirm";
		detail[dl] = '\0';
		ev.detail = detail;
		cr_assert_eq(store_event_put(T.s, txn, "one", &ev), 0);
		cr_assert_eq(store_event_frame(&ev, &run, &rlen, &rcap), 0);
		detail[dl] = 'x';
		/* A run ends every 1 to 7 events. */
		if (rand_r(&seed) % 7 == 0 || i == 400) {
			cr_assert_eq(
			    store_events_append(T.s, txn, "run", run, rlen), 0,
			    "%s", store_errmsg(T.s));
			rlen = 0;
		}
	}
	free(run);
	static uint32_t ca[400], cb[400];
	static MDB_val va[400], vb[400];
	size_t na = history_rows(txn, "one", ca, va, 400);
	size_t nb = history_rows(txn, "run", cb, vb, 400);
	cr_assert_gt(na, 10);
	cr_assert_eq(na, nb);
	for (size_t i = 0; i < na; i++) {
		cr_assert_eq(ca[i], cb[i]);
		cr_assert_eq(va[i].mv_size, vb[i].mv_size, "chunk %zu", i);
		cr_assert_eq(
		    memcmp(va[i].mv_data, vb[i].mv_data, va[i].mv_size), 0,
		    "chunk %zu", i);
	}
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	Settle__V1__Event **ev;
	size_t n;
	cr_assert_eq(store_events_list(T.s, NULL, "run", &ev, &n), 0);
	cr_assert_eq(n, 400);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ev[i]->seq, i + 1);
	store_events_free(ev, n);
}

Test(store, tx_gc_deletes_oldest_finished_only)
{
	char gid[16];
	for (int i = 0; i < 50; i++) {
		snprintf(gid, sizeof gid, "f%02d", i);
		put_tx(gid, SETTLE__V1__TX_STATE__COMMITTED, 0,
		       1000 + (uint64_t)i);
		put_branch(gid, 1, SETTLE__V1__BRANCH_STATE__CONFIRMED, 0);
	}
	put_tx("live", SETTLE__V1__TX_STATE__ACTIVE, 5, 0);
	MDB_txn *txn;
	size_t del;
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_tx_gc(T.s, txn, 1030, 20, &del), 0);
	cr_expect_eq(del, 20);
	cr_assert_eq(store_tx_gc(T.s, txn, 1030, 20, &del), 0);
	cr_expect_eq(del, 10);
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	cr_expect_eq(db_entries("txs"), 21);
	cr_expect_eq(db_entries("finished"), 20);
	cr_expect_eq(db_entries("branches"), 20);
	cr_expect_eq(db_entries("history"), 20);
	/* The live one has its row; the 20 left finished are a count. */
	cr_expect_eq(db_entries("by_state"), 1);
	cr_expect_eq(count_of(SETTLE__V1__TX_STATE__COMMITTED), 20);
	Settle__V1__TxRecord *tx;
	cr_expect_eq(store_tx_get(T.s, NULL, "f29", &tx), SETTLE_ENOTFOUND);
	cr_assert_eq(store_tx_get(T.s, NULL, "f30", &tx), 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

/* store_usage(): the used part grows with what is written and falls when
 * it is deleted (LMDB's freelist), while the file keeps its size. */
Test(store, usage_counts_freed_pages_as_free)
{
	struct store_usage u0, u1, u2;
	Settle__V1__BranchRecord b;
	static uint8_t payload[64 * 1024];
	MDB_txn *txn;

	cr_assert_eq(store_usage(T.s, &u0), 0, "%s", store_errmsg(T.s));
	cr_expect_eq(u0.map_bytes, STORE_DEFAULT_MAPSIZE);
	cr_expect_eq(u0.used_bytes + u0.free_bytes, u0.file_bytes);
	cr_expect_gt(u0.disk_free_bytes, 0);
	put_tx("big", SETTLE__V1__TX_STATE__ACTIVE, 5000, 0);
	settle__v1__branch_record__init(&b);
	b.gid = "big";
	b.payload.data = payload;
	b.payload.len = sizeof payload;
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	for (uint32_t i = 1; i <= 32; i++) {
		b.branch_id = i;
		cr_assert_eq(store_branch_put(T.s, txn, &b), 0);
	}
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	cr_assert_eq(store_usage(T.s, &u1), 0);
	cr_expect_geq(u1.used_bytes, u0.used_bytes + 32 * sizeof payload,
		      "%llu then %llu", (unsigned long long)u0.used_bytes,
		      (unsigned long long)u1.used_bytes);
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_tx_delete(T.s, txn, "big"), 0, "%s",
		     store_errmsg(T.s));
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	cr_assert_eq(store_usage(T.s, &u2), 0);
	cr_expect_geq(u2.file_bytes, u1.file_bytes);
	cr_expect_leq(u2.used_bytes + 32 * sizeof payload, u1.used_bytes,
		      "%llu then %llu", (unsigned long long)u1.used_bytes,
		      (unsigned long long)u2.used_bytes);
}

/* store_cmd_min(): the oldest command id's time, 0 when none. */
Test(store, cmd_min_is_the_oldest_time)
{
	Settle__V1__CmdResult r;
	uint8_t id[STORE_CMD_ID_LEN] = {1};
	uint64_t t = 99;
	MDB_txn *txn;

	cr_assert_eq(store_cmd_min(T.s, NULL, &t), 0);
	cr_expect_eq(t, 0);
	settle__v1__cmd_result__init(&r);
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_cmd_put(T.s, txn, id, 700, &r), 0);
	id[0] = 2;
	cr_assert_eq(store_cmd_put(T.s, txn, id, 300, &r), 0);
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	cr_assert_eq(store_cmd_min(T.s, NULL, &t), 0);
	cr_expect_eq(t, 300);
}

/* An id that begins with unix ms t (6 bytes BE), then n. */
static void timed_id(uint8_t *id, uint64_t t, uint8_t n)
{
	memset(id, 0x5a, STORE_CMD_ID_LEN);
	for (int i = 0; i < 6; i++)
		id[i] = (uint8_t)(t >> (40 - 8 * i));
	id[15] = n;
}

/* Only an id whose own time is within STORE_CMD_SKEW_MS of the command's
 * may go to cmd_ids. */
Test(store, cmd_id_timed_only_near_the_commands_time)
{
	uint8_t id[STORE_CMD_ID_LEN];
	uint64_t now = 1796608900118ull, w = STORE_CMD_SKEW_MS;
	timed_id(id, now, 1);
	cr_expect(store_cmd_id_timed(id, now));
	timed_id(id, now - w, 1);
	cr_expect(store_cmd_id_timed(id, now));
	timed_id(id, now + w, 1);
	cr_expect(store_cmd_id_timed(id, now));
	timed_id(id, now - w - 1, 1);
	cr_expect_not(store_cmd_id_timed(id, now));
	timed_id(id, now + w + 1, 1);
	cr_expect_not(store_cmd_id_timed(id, now));
	memset(id, 0xff, sizeof id); /* a random id, far in the future */
	cr_expect_not(store_cmd_id_timed(id, now));
	memset(id, 0, sizeof id);
	cr_expect_not(store_cmd_id_timed(id, now));
}

/* Timed ids: one row each in cmd_ids and none in cmd_time, read back
 * beside ids of cmds, refused twice, collected by their own time (plus
 * the skew) together with cmds' within one limit, and counted by
 * store_cmd_min(). */
Test(store, timed_cmd_ids_are_kept_and_collected_by_their_time)
{
	MDB_txn *txn;
	uint8_t id[STORE_CMD_ID_LEN];
	uint64_t base = 1796608900000ull, w = STORE_CMD_SKEW_MS;
	Settle__V1__CmdResult r;
	settle__v1__cmd_result__init(&r);
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	for (uint8_t i = 1; i <= 5; i++) {
		r.index = i;
		timed_id(id, base + 1000 * i, i);
		cr_assert_eq(store_cmd_put_timed(T.s, txn, id, &r), 0, "%s",
			     store_errmsg(T.s));
	}
	r.index = 77;
	cmd_id(id, 7);
	cr_assert_eq(store_cmd_put(T.s, txn, id, base + w + 2500, &r), 0);
	timed_id(id, base + 3000, 3);
	cr_expect_eq(store_cmd_put_timed(T.s, txn, id, &r), SETTLE_EEXISTS);
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	cr_expect_eq(db_entries("cmd_ids"), 5);
	cr_expect_eq(db_entries("cmds"), 1);
	cr_expect_eq(db_entries("cmd_time"), 1);

	Settle__V1__CmdResult *got;
	timed_id(id, base + 2000, 2);
	cr_assert_eq(store_cmd_get(T.s, NULL, id, &got), 0);
	cr_expect_eq(got->index, 2);
	settle__v1__cmd_result__free_unpacked(got, NULL);
	cmd_id(id, 7);
	cr_assert_eq(store_cmd_get(T.s, NULL, id, &got), 0);
	cr_expect_eq(got->index, 77);
	settle__v1__cmd_result__free_unpacked(got, NULL);
	uint64_t min;
	cr_assert_eq(store_cmd_min(T.s, NULL, &min), 0);
	cr_expect_eq(min, base + 1000 + w);

	/* Before base + w + 2500 + 1: ids 1 and 2 (their time + w is
	 * earlier), then the cmds row (its time is earlier); 3 stays. With
	 * a limit of 2 the cmds row goes first, then id 1. */
	size_t del;
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_eq(store_cmd_gc(T.s, txn, base + w + 2501, 2, &del), 0);
	cr_expect_eq(del, 2);
	cr_assert_eq(store_cmd_gc(T.s, txn, base + w + 2501, 100, &del), 0);
	cr_expect_eq(del, 1);
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	cr_expect_eq(db_entries("cmd_ids"), 3);
	cr_expect_eq(db_entries("cmds"), 0);
	cr_expect_eq(db_entries("cmd_time"), 0);
	timed_id(id, base + 2000, 2);
	cr_expect_eq(store_cmd_get(T.s, NULL, id, &got), SETTLE_ENOTFOUND);
	timed_id(id, base + 3000, 3);
	cr_assert_eq(store_cmd_get(T.s, NULL, id, &got), 0);
	settle__v1__cmd_result__free_unpacked(got, NULL);
	cr_assert_eq(store_cmd_min(T.s, NULL, &min), 0);
	cr_expect_eq(min, base + 3000 + w);
}

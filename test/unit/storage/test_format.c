/* Format 3 (a transaction's events in one history row) beside stores and
 * snapshots of format 2 (a row per event, in a table named events). */
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

TestSuite(format, .init = setup, .fini = teardown);

static void put_tx(struct store *s, const char *gid)
{
	MDB_txn *txn;
	Settle__V1__TxRecord tx;
	settle__v1__tx_record__init(&tx);
	tx.gid = (char *)gid;
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	tx.state = SETTLE__V1__TX_STATE__ACTIVE;
	tx.due_ms = 5;
	cr_assert_eq(store_write_begin(s, &txn), 0);
	cr_assert_eq(store_tx_put(s, txn, &tx), 0);
	cr_assert_eq(store_write_commit(s, txn), 0);
}

/* A format 2 events row: key gid \0 seq(u64 BE), value an Event. */
static size_t old_key(uint8_t *key, const char *gid, uint64_t seq)
{
	size_t n = strlen(gid);
	memcpy(key, gid, n);
	key[n] = 0;
	for (int i = 0; i < 8; i++)
		key[n + 1 + i] = (uint8_t)(seq >> (56 - 8 * i));
	return n + 9;
}

static size_t old_event(uint8_t *buf, uint64_t seq, const char *kind)
{
	Settle__V1__Event ev;
	settle__v1__event__init(&ev);
	ev.seq = seq;
	ev.time_ms = 1000 + seq;
	ev.kind = (char *)kind;
	ev.detail = "ok attempt 1";
	return settle__v1__event__pack(&ev, buf);
}

static void expect_events(struct store *s, const char *gid, size_t n,
			  const char *const *kinds)
{
	Settle__V1__Event **ev;
	size_t got;
	cr_assert_eq(store_events_list(s, NULL, gid, &ev, &got), 0, "%s",
		     store_errmsg(s));
	cr_assert_eq(got, n, "%s: %zu events", gid, got);
	for (size_t i = 0; i < n; i++) {
		cr_expect_eq(ev[i]->seq, i + 1);
		cr_expect_eq(ev[i]->time_ms, 1001 + i);
		cr_expect_str_eq(ev[i]->kind, kinds[i]);
		cr_expect_str_eq(ev[i]->detail, "ok attempt 1");
	}
	store_events_free(ev, got);
}

static const char *const g_kinds[] = {"begin", "register", "commit"};

/* Close t's store and open it again, as a restart does. */
static void reopen(struct tstore *t)
{
	char dir[64], err[256];
	snprintf(dir, sizeof dir, "%s", t->dir);
	store_close(t->s);
	cr_assert_eq(store_open(dir, NULL, &t->s, err, sizeof err), 0, "%s",
		     err);
}

/* A history row as format 3 kept it: a varint length then a packed Event,
 * for each of g_kinds, in row (512 bytes); its length. */
static size_t v3_history_row(uint8_t *row)
{
	uint8_t ev[128];
	size_t n = 0;
	for (uint64_t i = 1; i <= 3; i++) {
		size_t m = old_event(ev, i, g_kinds[i - 1]);
		row[n++] = (uint8_t)m;
		memcpy(row + n, ev, m);
		n += m;
	}
	return n;
}

Test(format, format2_store_is_upgraded_at_open)
{
	MDB_txn *txn;
	MDB_dbi meta, events;
	uint8_t key[64], val[128];
	put_tx(A.s, "g");
	put_tx(A.s, "h");
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	uint8_t two[4] = {0, 0, 0, 2};
	MDB_val k = {7, "version"}, v = {4, two};
	cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
	cr_assert_eq(mdb_dbi_open(txn, "events", MDB_CREATE, &events), 0);
	for (uint64_t i = 1; i <= 3; i++) {
		MDB_val ek = {old_key(key, "g", i), key};
		MDB_val ev = {old_event(val, i, g_kinds[i - 1]), val};
		cr_assert_eq(mdb_put(txn, events, &ek, &ev, 0), 0);
	}
	MDB_val hk = {old_key(key, "h", 1), key};
	MDB_val hv = {old_event(val, 1, "begin"), val};
	cr_assert_eq(mdb_put(txn, events, &hk, &hv, 0), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);

	reopen(&A);
	expect_events(A.s, "g", 3, g_kinds);
	expect_events(A.s, "h", 1, g_kinds);
	cr_assert_eq(store_read_begin(A.s, &txn), 0);
	cr_expect_eq(mdb_dbi_open(txn, "events", 0, &events), MDB_NOTFOUND,
		     "the old table is gone");
	cr_assert_eq(mdb_get(txn, meta, &k, &v), 0);
	cr_expect_eq(((uint8_t *)v.mv_data)[3], STORE_FORMAT_VERSION);
	store_read_end(txn);
	/* New events go after the converted ones. */
	Settle__V1__Event ev;
	settle__v1__event__init(&ev);
	ev.seq = 4;
	ev.kind = "committed";
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(store_event_put(A.s, txn, "g", &ev), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	Settle__V1__Event **evs;
	size_t n;
	cr_assert_eq(store_events_list(A.s, NULL, "g", &evs, &n), 0);
	cr_assert_eq(n, 4);
	cr_expect_str_eq(evs[3]->kind, "committed");
	store_events_free(evs, n);
	/* And the upgraded store's snapshot restores elsewhere. */
	uint8_t *a;
	size_t alen;
	cr_assert_eq(store_snapshot(A.s, 5, &a, &alen), 0);
	cr_expect_eq(store_restore(B.s, a, alen), 0, "%s", store_errmsg(B.s));
	raft_free(a);
	expect_events(B.s, "h", 1, g_kinds);
}

/* Rows of a format 2 events db in snapshot form (u32 LE lengths). */
static size_t add_row(uint8_t *p, const uint8_t *k, size_t kl, const uint8_t *v,
		      size_t vl)
{
	size_t n = 0;
	for (int i = 0; i < 4; i++)
		p[n++] = (uint8_t)(kl >> (8 * i));
	memcpy(p + n, k, kl);
	n += kl;
	for (int i = 0; i < 4; i++)
		p[n++] = (uint8_t)(vl >> (8 * i));
	memcpy(p + n, v, vl);
	return n + vl;
}

static uint8_t *format2_snapshot(size_t *len, const char *bad_gid)
{
	uint8_t rows[1024], key[64], val[128];
	size_t n = 0;
	put_tx(A.s, "g");
	put_tx(A.s, "h");
	for (uint64_t i = 1; i <= 3; i++)
		n += add_row(rows + n, key, old_key(key, "g", i), val,
			     old_event(val, i, g_kinds[i - 1]));
	n += add_row(rows + n, key, old_key(key, bad_gid, 1), val,
		     old_event(val, 1, "begin"));
	uint8_t *a;
	size_t alen;
	cr_assert_eq(store_snapshot(A.s, 7, &a, &alen), 0);
	uint8_t *old = tstore_snap_old(a, alen, 2, rows, n, 4, len);
	raft_free(a);
	return old;
}

Test(format, format2_snapshot_is_restored_as_histories)
{
	size_t len;
	uint8_t *old = format2_snapshot(&len, "h");
	cr_assert_eq(store_restore(B.s, old, len), 0, "%s", store_errmsg(B.s));
	free(old);
	expect_events(B.s, "g", 3, g_kinds);
	expect_events(B.s, "h", 1, g_kinds);
	uint64_t applied;
	cr_assert_eq(store_applied_get(B.s, NULL, &applied), 0);
	cr_expect_eq(applied, 7);
	uint8_t *a;
	size_t alen;
	cr_assert_eq(store_snapshot(B.s, 0, &a, &alen), 0);
	cr_expect_eq(a[8], STORE_FORMAT_VERSION);
	raft_free(a);
}

Test(format, format2_snapshot_is_still_checked)
{
	size_t len;
	uint8_t *old = format2_snapshot(&len, "nobody");
	cr_expect_eq(store_restore(B.s, old, len), SETTLE_EPROTO);
	cr_expect_neq(strstr(store_errmsg(B.s), "no tx record"), NULL, "%s",
		      store_errmsg(B.s));
	free(old);
	Settle__V1__TxRecord *tx;
	cr_expect_eq(store_tx_get(B.s, NULL, "g", &tx), SETTLE_ENOTFOUND,
		     "nothing restored");
}

/* Format 3 records go without their gid (the key holds it) and read back
 * with it, alone, listed, or among a tx's branches. */
Test(format, records_are_stored_without_their_gid)
{
	MDB_txn *txn;
	MDB_dbi txs, branches;
	const char *gid = "gid-stored-once";
	put_tx(A.s, gid);
	Settle__V1__BranchRecord b;
	settle__v1__branch_record__init(&b);
	b.gid = (char *)gid;
	b.branch_id = 1;
	b.endpoint = "127.0.0.1:7000";
	b.state = SETTLE__V1__BRANCH_STATE__REGISTERED;
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(store_branch_put(A.s, txn, &b), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);

	cr_assert_eq(store_read_begin(A.s, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "txs", 0, &txs), 0);
	cr_assert_eq(mdb_dbi_open(txn, "branches", 0, &branches), 0);
	MDB_cursor *c;
	MDB_val k, v;
	cr_assert_eq(mdb_cursor_open(txn, txs, &c), 0);
	cr_assert_eq(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
	cr_expect_null(memmem(v.mv_data, v.mv_size, gid, strlen(gid)));
	mdb_cursor_close(c);
	cr_assert_eq(mdb_cursor_open(txn, branches, &c), 0);
	cr_assert_eq(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
	cr_expect_null(memmem(v.mv_data, v.mv_size, gid, strlen(gid)));
	mdb_cursor_close(c);
	store_read_end(txn);

	Settle__V1__TxRecord *tx, **list;
	size_t n;
	cr_assert_eq(store_tx_get(A.s, NULL, gid, &tx), 0);
	cr_expect_str_eq(tx->gid, gid);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_assert_eq(
	    store_tx_list(A.s, NULL, 0, NULL, 10, NULL, NULL, &list, &n, NULL),
	    0);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(list[0]->gid, gid);
	store_txs_free(list, n);
	cr_assert_eq(store_tx_list(A.s, NULL, SETTLE__V1__TX_STATE__ACTIVE,
				   NULL, 10, NULL, NULL, &list, &n, NULL),
		     0);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(list[0]->gid, gid);
	store_txs_free(list, n);
	Settle__V1__BranchRecord *one, **bs;
	cr_assert_eq(store_branch_get(A.s, NULL, gid, 1, &one), 0);
	cr_expect_str_eq(one->gid, gid);
	settle__v1__branch_record__free_unpacked(one, NULL);
	cr_assert_eq(store_branches_list(A.s, NULL, gid, &bs, &n), 0);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(bs[0]->gid, gid);
	store_branches_free(bs, n);
}

/* Format 3 as an older release left it: "done" COMMITTED and "live"
 * ACTIVE, each with a by_state row, no counts, version 3. */
static void make_format3(struct store *s)
{
	MDB_txn *txn;
	MDB_dbi meta, by_state;
	Settle__V1__TxRecord tx;
	put_tx(s, "live");
	settle__v1__tx_record__init(&tx);
	tx.gid = "done";
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	tx.state = SETTLE__V1__TX_STATE__COMMITTED;
	tx.finished_ms = 9;
	cr_assert_eq(store_write_begin(s, &txn), 0);
	cr_assert_eq(store_tx_put(s, txn, &tx), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	cr_assert_eq(mdb_dbi_open(txn, "by_state", 0, &by_state), 0);
	MDB_val fk = {5, "final"};
	cr_assert_eq(mdb_del(txn, meta, &fk, NULL), 0);
	uint8_t three[4] = {0, 0, 0, 3};
	MDB_val k = {7, "version"}, v = {4, three};
	cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
	MDB_val bk = {5, "\x03"
			 "done"},
		bv = {0, ""};
	cr_assert_eq(mdb_put(txn, by_state, &bk, &bv, 0), 0);
	/* done's history as format 3 kept it: a varint length then a
	 * packed Event, for each of g_kinds. */
	MDB_dbi history;
	uint8_t row[512];
	size_t n = v3_history_row(row);
	cr_assert_eq(mdb_dbi_open(txn, "history", 0, &history), 0);
	MDB_val hk = {9, "done\0\0\0\0\0"}, hv = {n, row};
	cr_assert_eq(mdb_put(txn, history, &hk, &hv, 0), 0);
	cr_assert_eq(store_write_commit(s, txn), 0);
}

/* What format 4 makes of make_format3()'s content. */
static void expect_format4(struct store *s)
{
	struct store_counts cn;
	cr_assert_eq(store_counts_get(s, NULL, &cn), 0, "%s", store_errmsg(s));
	cr_expect_eq(cn.by_state[SETTLE__V1__TX_STATE__COMMITTED], 1);
	cr_expect_eq(cn.by_state[SETTLE__V1__TX_STATE__ACTIVE], 1);
	cr_expect_eq(cn.finished, 1);
	cr_expect_eq(cn.active, 1);
	MDB_txn *txn;
	MDB_dbi by_state, meta;
	MDB_stat st;
	cr_assert_eq(store_read_begin(s, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "by_state", 0, &by_state), 0);
	cr_assert_eq(mdb_stat(txn, by_state, &st), 0);
	cr_expect_eq(st.ms_entries, 1, "only the live tx keeps its row");
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	MDB_val k = {7, "version"}, v;
	cr_assert_eq(mdb_get(txn, meta, &k, &v), 0);
	cr_expect_eq(((uint8_t *)v.mv_data)[3], STORE_FORMAT_VERSION);
	store_read_end(txn);
	/* Listing a final state still finds it, without an index. */
	Settle__V1__TxRecord **list;
	size_t n;
	cr_assert_eq(store_tx_list(s, NULL, SETTLE__V1__TX_STATE__COMMITTED,
				   NULL, 10, NULL, NULL, &list, &n, NULL),
		     0);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(list[0]->gid, "done");
	store_txs_free(list, n);
	/* The packed Events were rewritten, and read back the same. */
	expect_events(s, "done", 3, g_kinds);
	cr_assert_eq(store_read_begin(s, &txn), 0);
	MDB_dbi history;
	cr_assert_eq(mdb_dbi_open(txn, "history", 0, &history), 0);
	MDB_val hk = {9, "done\0\0\0\0\0"};
	cr_assert_eq(mdb_get(txn, history, &hk, &v), 0);
	cr_expect_null(memmem(v.mv_data, v.mv_size, "commit", 6),
		       "kinds stored by their code");
	store_read_end(txn);
}

Test(format, format3_store_counts_finished_transactions_at_open)
{
	make_format3(A.s);
	reopen(&A);
	expect_format4(A.s);
}

Test(format, format3_snapshot_is_restored_with_counts)
{
	make_format3(A.s);
	uint8_t *a;
	size_t alen;
	cr_assert_eq(store_snapshot(A.s, 5, &a, &alen), 0);
	/* Written as format 4 from a store that is format 3 inside: make the
	 * header say 3 and drop the (empty, last) cmd_ids db. */
	const uint8_t *ids = memmem(a, alen,
				    "\x07\x00\x00\x00"
				    "cmd_ids"
				    "\x00\x00\x00\x00\x00\x00\x00\x00",
				    19);
	cr_assert_not_null(ids);
	cr_assert_eq((size_t)(ids - a) + 19 + 8, alen);
	size_t len = alen - 19;
	memmove((uint8_t *)ids, ids + 19, 8);
	a[8] = 3;
	a[12] = 11;
	tstore_reseal(a, len);
	cr_assert_eq(store_restore(B.s, a, len), 0, "%s", store_errmsg(B.s));
	raft_free(a);
	expect_format4(B.s);
}

/* Events round-trip through the stored form: known kinds by code, others
 * spelt out, empty fields, large numbers; an event that does not decode
 * is an error, not a crash. */
Test(format, events_round_trip_and_bad_ones_are_refused)
{
	static const char *const kinds[] = {"begin", "a-kind-of-its-own",
					    "xa_rollback", ""};
	static const char *const details[] = {"deadline 1796608900118", "",
					      "ok attempt 1", "x"};
	static const uint64_t seqs[] = {1, 2, 300, (uint64_t)1 << 40};
	static const uint64_t times[] = {0, 1796608900118ull, 1, UINT64_MAX};
	static const uint32_t branches[] = {0, 1, UINT32_MAX, 7};
	MDB_txn *txn;
	put_tx(A.s, "e");
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	for (int i = 0; i < 4; i++) {
		Settle__V1__Event ev;
		settle__v1__event__init(&ev);
		ev.seq = seqs[i];
		ev.time_ms = times[i];
		ev.kind = (char *)kinds[i];
		ev.branch_id = branches[i];
		ev.detail = (char *)details[i];
		cr_assert_eq(store_event_put(A.s, txn, "e", &ev), 0, "%s",
			     store_errmsg(A.s));
	}
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	Settle__V1__Event **got;
	size_t n;
	cr_assert_eq(store_events_list(A.s, NULL, "e", &got, &n), 0);
	cr_assert_eq(n, 4);
	for (int i = 0; i < 4; i++) {
		cr_expect_eq(got[i]->seq, seqs[i]);
		cr_expect_eq(got[i]->time_ms, times[i]);
		cr_expect_str_eq(got[i]->kind, kinds[i]);
		cr_expect_eq(got[i]->branch_id, branches[i]);
		cr_expect_str_eq(got[i]->detail, details[i]);
	}
	store_events_free(got, n);

	/* Rows that do not decode: an unknown code, a kind cut short, a
	 * branch id over 32 bits, a varint that never ends. */
	static const uint8_t bad[][10] = {
	    {3, 200, 1, 1},
	    {4, 0, 9, 'a', 'b'},
	    {8, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x1f},
	    {7, 1, 1, 0xff, 0xff, 0xff, 0xff, 0xff},
	};
	static const size_t bad_len[] = {4, 5, 9, 8};
	for (int i = 0; i < 4; i++) {
		MDB_dbi history;
		put_tx(A.s, "bad");
		cr_assert_eq(store_write_begin(A.s, &txn), 0);
		cr_assert_eq(mdb_dbi_open(txn, "history", 0, &history), 0);
		MDB_val k = {8, "bad\0\0\0\0\0"},
			v = {bad_len[i], (void *)bad[i]};
		cr_assert_eq(mdb_put(txn, history, &k, &v, 0), 0);
		cr_assert_eq(store_write_commit(A.s, txn), 0);
		cr_expect_eq(store_events_list(A.s, NULL, "bad", &got, &n),
			     SETTLE_EPROTO, "row %d", i);
	}
}

/* A format 3 store of many pages: every history row is rewritten in
 * place while the cursor walks the table, and all of them read back
 * under their own keys (a put through the cursor with the key LMDB
 * handed out, pointing into the page, garbled every key after the
 * first). */
Test(format, a_large_format3_history_is_rewritten_whole)
{
	enum { N = 3000 };
	MDB_txn *txn;
	MDB_dbi meta, history;
	uint8_t row[512];
	char gid[16];
	for (int t = 0; t < N; t++) {
		snprintf(gid, sizeof gid, "g%05d", t);
		put_tx(A.s, gid);
	}
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "meta", 0, &meta), 0);
	cr_assert_eq(mdb_dbi_open(txn, "history", 0, &history), 0);
	size_t n = v3_history_row(row);
	for (int t = 0; t < N; t++) {
		uint8_t key[16];
		snprintf(gid, sizeof gid, "g%05d", t);
		memcpy(key, gid, 6);
		memset(key + 6, 0, 5);
		MDB_val hk = {11, key}, hv = {n, row};
		cr_assert_eq(mdb_put(txn, history, &hk, &hv, 0), 0);
	}
	uint8_t three[4] = {0, 0, 0, 3};
	MDB_val k = {7, "version"}, v = {4, three};
	cr_assert_eq(mdb_put(txn, meta, &k, &v, 0), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);

	reopen(&A);
	for (int t = 0; t < N; t++) {
		snprintf(gid, sizeof gid, "g%05d", t);
		expect_events(A.s, gid, 3, g_kinds);
	}
}

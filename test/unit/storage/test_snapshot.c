#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

TestSuite(snapshot, .init = setup, .fini = teardown);

/* A little of everything: txs in several states, branches, events, cmds. */
static void fill(struct store *s, int n, uint64_t applied)
{
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(s, &txn), 0);
	for (int i = 0; i < n; i++) {
		char gid[32];
		snprintf(gid, sizeof gid, "tx-%04d", i);
		Settle__V1__TxRecord tx;
		settle__v1__tx_record__init(&tx);
		tx.gid = gid;
		tx.mode = SETTLE__V1__TX_MODE__TCC;
		tx.state = i % 3 ? SETTLE__V1__TX_STATE__ACTIVE
				 : SETTLE__V1__TX_STATE__COMMITTED;
		tx.due_ms = i % 3 ? 1000 + (uint64_t)i : 0;
		tx.finished_ms = i % 3 ? 0 : 500 + (uint64_t)i;
		cr_assert_eq(store_tx_put(s, txn, &tx), 0);
		Settle__V1__BranchRecord b;
		settle__v1__branch_record__init(&b);
		b.gid = gid;
		b.branch_id = 1;
		b.endpoint = "h:1";
		b.state = SETTLE__V1__BRANCH_STATE__REGISTERED;
		cr_assert_eq(store_branch_put(s, txn, &b), 0);
		Settle__V1__Event ev;
		settle__v1__event__init(&ev);
		ev.seq = 1;
		ev.kind = "begin";
		cr_assert_eq(store_event_put(s, txn, gid, &ev), 0);
		uint8_t id[16] = {0};
		memcpy(id, &i, sizeof i);
		Settle__V1__CmdResult r;
		settle__v1__cmd_result__init(&r);
		r.gid = gid;
		cr_assert_eq(store_cmd_put(s, txn, id, (uint64_t)i, &r), 0);
	}
	cr_assert_eq(store_applied_put(s, txn, applied), 0);
	cr_assert_eq(store_write_commit(s, txn), 0);
}

static void snap(struct store *s, uint64_t idx, uint8_t **buf, size_t *len)
{
	cr_assert_eq(store_snapshot(s, idx, buf, len), 0, "%s",
		     store_errmsg(s));
}

Test(snapshot, restore_into_fresh_store_gives_identical_content)
{
	fill(A.s, 200, 77);
	uint8_t *a, *b;
	size_t alen, blen;
	snap(A.s, 0, &a, &alen);
	uint64_t idx;
	cr_assert_eq(store_snapshot_index(a, alen, &idx), 0);
	cr_expect_eq(idx, 77);
	cr_assert_eq(store_restore(B.s, a, alen), 0, "%s", store_errmsg(B.s));
	snap(B.s, 0, &b, &blen);
	cr_assert_eq(alen, blen);
	cr_expect_eq(memcmp(a, b, alen), 0);
	uint64_t applied;
	cr_assert_eq(store_applied_get(B.s, NULL, &applied), 0);
	cr_expect_eq(applied, 77);
	uint64_t min;
	cr_assert_eq(store_due_min(B.s, NULL, &min), 0);
	cr_expect_eq(min, 1001);
	raft_free(a);
	raft_free(b);
}

Test(snapshot, index_is_raft_index_when_higher)
{
	fill(A.s, 3, 10);
	uint8_t *a;
	size_t alen;
	snap(A.s, 12, &a, &alen);
	cr_assert_eq(store_restore(B.s, a, alen), 0);
	uint64_t applied;
	cr_assert_eq(store_applied_get(B.s, NULL, &applied), 0);
	cr_expect_eq(applied, 12);
	raft_free(a);
}

Test(snapshot, restore_replaces_older_content_and_skips_newer_store)
{
	fill(A.s, 5, 50);
	fill(B.s, 9, 20);
	uint8_t *a, *b;
	size_t alen, blen;
	snap(A.s, 0, &a, &alen);
	cr_assert_eq(store_restore(B.s, a, alen), 0);
	snap(B.s, 0, &b, &blen);
	cr_assert_eq(alen, blen);
	cr_expect_eq(memcmp(a, b, alen), 0);
	raft_free(b);
	/* B is now at 50: an older snapshot (index 40) is ignored. */
	struct tstore C;
	tstore_open(&C, 0);
	fill(C.s, 2, 40);
	uint8_t *c;
	size_t clen;
	snap(C.s, 0, &c, &clen);
	cr_assert_eq(store_restore(B.s, c, clen), 0);
	snap(B.s, 0, &b, &blen);
	cr_assert_eq(alen, blen);
	cr_expect_eq(memcmp(a, b, alen), 0);
	raft_free(a);
	raft_free(b);
	raft_free(c);
	tstore_close(&C);
}

static void expect_rejected(uint8_t *buf, size_t len, const uint8_t *before,
			    size_t before_len)
{
	cr_expect_eq(store_restore(B.s, buf, len), SETTLE_EPROTO);
	uint8_t *now;
	size_t nlen;
	snap(B.s, 0, &now, &nlen);
	cr_assert_eq(nlen, before_len);
	cr_assert_eq(memcmp(now, before, nlen), 0);
	raft_free(now);
}

Test(snapshot, corrupted_buffers_are_rejected_without_change)
{
	fill(A.s, 4, 30);
	fill(B.s, 1, 1);
	uint8_t *a, *before;
	size_t alen, blen;
	snap(A.s, 0, &a, &alen);
	snap(B.s, 0, &before, &blen);
	uint8_t *copy = malloc(alen);
	/* Every truncation. */
	for (size_t n = 0; n < alen; n++) {
		memcpy(copy, a, n);
		cr_expect_eq(store_restore(B.s, copy, n), SETTLE_EPROTO,
			     "truncated at %zu", n);
	}
	/* Every single flipped byte. */
	for (size_t i = 0; i < alen; i++) {
		memcpy(copy, a, alen);
		copy[i] ^= 0x5a;
		cr_expect_eq(store_restore(B.s, copy, alen), SETTLE_EPROTO,
			     "flip at %zu", i);
	}
	expect_rejected(copy, alen, before, blen);
	cr_expect_eq(store_restore(B.s, NULL, 0), SETTLE_EPROTO);
	free(copy);
	raft_free(a);
	raft_free(before);
}

Test(snapshot, restore_into_a_full_map_fails_without_change)
{
	struct tstore small;
	tstore_open(&small, 64 * 1024);
	fill(small.s, 1, 3);
	uint8_t *before, *a;
	size_t blen, alen;
	snap(small.s, 0, &before, &blen);
	fill(A.s, 3000, 90);
	snap(A.s, 0, &a, &alen);
	cr_expect_eq(store_restore(small.s, a, alen), SETTLE_EFULL, "%s",
		     store_errmsg(small.s));
	uint8_t *now;
	size_t nlen;
	snap(small.s, 0, &now, &nlen);
	cr_assert_eq(nlen, blen);
	cr_expect_eq(memcmp(now, before, nlen), 0);
	raft_free(before);
	raft_free(a);
	raft_free(now);
	tstore_close(&small);
}

/* Edited snapshots are resealed (tstore_reseal()) so that the structural
 * checks, not the checksum, must catch the edit. */
Test(snapshot, structurally_wrong_but_checksummed_is_rejected)
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
	tx.gid = "b";
	cr_assert_eq(store_tx_put(A.s, txn, &tx), 0);
	cr_assert_eq(store_applied_put(A.s, txn, 9), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	uint8_t *a, *before;
	size_t alen, blen;
	snap(A.s, 0, &a, &alen);
	snap(B.s, 0, &before, &blen);
	uint8_t *copy = malloc(alen);

	/* Swap the keys "a" and "b" of txs: out of order. */
	memcpy(copy, a, alen);
	uint8_t *ka = memmem(copy, alen,
			     "\x01\x00\x00\x00"
			     "a",
			     5);
	cr_assert_not_null(ka);
	ka[4] = 'c';
	tstore_reseal(copy, alen);
	expect_rejected(copy, alen, before, blen);

	/* A row count that does not match the rows that follow. */
	memcpy(copy, a, alen);
	uint8_t *bs = memmem(copy, alen, "by_state", 8);
	cr_assert_not_null(bs);
	bs[8] = 1; /* count 2 -> 1 */
	tstore_reseal(copy, alen);
	expect_rejected(copy, alen, before, blen);

	/* A tx value that is not a TxRecord. */
	memcpy(copy, a, alen);
	uint8_t *tv = memmem(copy, alen, "txs", 3);
	cr_assert_not_null(tv);
	/* name(3) count(8) klen(4) key(1) vlen(4) value... */
	uint8_t *val = tv + 3 + 8 + 4 + 1 + 4;
	val[0] = 0xff;
	tstore_reseal(copy, alen);
	expect_rejected(copy, alen, before, blen);

	/* The untouched buffer is fine. */
	cr_expect_eq(store_restore(B.s, a, alen), 0);
	free(copy);
	raft_free(a);
	raft_free(before);
}

Test(snapshot, index_rows_must_match_the_records)
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
	cr_assert_eq(store_applied_put(A.s, txn, 9), 0);
	/* Lose the due row behind the store's back. */
	MDB_dbi due;
	cr_assert_eq(mdb_dbi_open(txn, "due", 0, &due), 0);
	cr_assert_eq(mdb_drop(txn, due, 0), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	uint8_t *a, *before;
	size_t alen, blen;
	snap(A.s, 0, &a, &alen);
	snap(B.s, 0, &before, &blen);
	expect_rejected(a, alen, before, blen);
	cr_expect_neq(strstr(store_errmsg(B.s), "due"), NULL, "%s",
		      store_errmsg(B.s));
	raft_free(a);
	raft_free(before);
}

/* The coordinator's form: the same snapshot as one LZ4 frame. */
static void snap_lz4(struct store *s, uint64_t idx, uint8_t **buf, size_t *len)
{
	MDB_txn *txn;

	cr_assert_eq(store_read_begin(s, &txn), 0);
	cr_assert_eq(
	    store_snapshot_txn(s, txn, idx, STORE_SNAPSHOT_LZ4, buf, len), 0,
	    "%s", store_work_errmsg(s));
	store_read_end(txn);
}

/* A's compressed snapshot restored into B gives B A's plain snapshot;
 * its compressed and plain sizes in *zlen and *alen. */
static void lz4_round_trip(size_t *zlen, size_t *alen, uint64_t *idx)
{
	uint8_t *a, *z, *b;
	size_t blen;

	snap(A.s, 0, &a, alen);
	snap_lz4(A.s, 0, &z, zlen);
	cr_assert_eq(memcmp(z, "STLSNAPZ", 8), 0);
	cr_assert_eq(store_snapshot_index(z, *zlen, idx), 0);
	cr_assert_eq(store_restore(B.s, z, *zlen), 0, "%s", store_errmsg(B.s));
	snap(B.s, 0, &b, &blen);
	cr_assert_eq(*alen, blen);
	cr_expect_eq(memcmp(a, b, blen), 0);
	raft_free(a);
	raft_free(z);
	raft_free(b);
}

Test(snapshot, compressed_restores_the_same_content_and_is_smaller)
{
	size_t alen, zlen;
	uint64_t idx;

	fill(A.s, 2000, 91);
	lz4_round_trip(&zlen, &alen, &idx);
	cr_assert_lt(zlen, alen / 2, "%zu of %zu", zlen, alen);
	cr_expect_eq(idx, 91);
}

/* A value larger than the compressor's staging buffer goes through whole,
 * between staged bytes, and comes back the same. */
Test(snapshot, compressed_carries_a_value_larger_than_its_stage)
{
	size_t big = 600 * 1024;
	uint8_t *payload = malloc(big);
	size_t alen, zlen;
	uint64_t idx;
	Settle__V1__BranchRecord br;
	MDB_txn *txn;

	for (size_t i = 0; i < big; i++)
		payload[i] = (uint8_t)(i * 7 + i / 251);
	fill(A.s, 30, 12);
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	settle__v1__branch_record__init(&br);
	br.gid = "tx-0001";
	br.branch_id = 2;
	br.endpoint = "h:1";
	br.state = SETTLE__V1__BRANCH_STATE__REGISTERED;
	br.payload.data = payload;
	br.payload.len = big;
	cr_assert_eq(store_branch_put(A.s, txn, &br), 0);
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	lz4_round_trip(&zlen, &alen, &idx);
	cr_expect_gt(alen, big);
	free(payload);
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

Test(snapshot, corrupted_compressed_buffers_are_rejected_without_change)
{
	struct tstore C;
	uint8_t *z, *before, *copy, *a, *c;
	size_t zlen, blen, alen, clen;
	uint64_t plain;

	fill(A.s, 4, 30);
	fill(B.s, 1, 1);
	snap_lz4(A.s, 0, &z, &zlen);
	snap(B.s, 0, &before, &blen);
	copy = malloc(zlen + 16);
	for (size_t n = 0; n < zlen; n++) {
		memcpy(copy, z, n);
		cr_expect_eq(store_restore(B.s, copy, n), SETTLE_EPROTO,
			     "truncated at %zu", n);
	}
	/* A flipped byte is refused, or decodes to the very same snapshot:
	 * in repetitive data a match may copy equal bytes from elsewhere.
	 * Never a different content. C takes the ones that pass. */
	tstore_open(&C, 0);
	snap(A.s, 0, &a, &alen);
	for (size_t i = 0; i < zlen; i++) {
		int rv;

		memcpy(copy, z, zlen);
		copy[i] ^= 0x5a;
		rv = store_restore(C.s, copy, zlen);
		if (rv == 0) {
			snap(C.s, 0, &c, &clen);
			cr_assert(clen == alen && memcmp(c, a, alen) == 0,
				  "flip at %zu restored other content", i);
			raft_free(c);
			continue;
		}
		cr_expect_eq(rv, SETTLE_EPROTO, "flip at %zu: %d %s", i, rv,
			     store_errmsg(C.s));
	}
	tstore_close(&C);
	raft_free(a);
	/* Bytes after the frame. */
	memcpy(copy, z, zlen);
	memset(copy + zlen, 0, 16);
	cr_expect_eq(store_restore(B.s, copy, zlen + 16), SETTLE_EPROTO);
	/* A plain length one off either way, or far beyond what LZ4 can
	 * expand to (refused before any allocation). */
	plain = 0;
	for (int i = 7; i >= 0; i--)
		plain = (plain << 8) | z[16 + i];
	for (int d = -1; d <= 1; d += 2) {
		memcpy(copy, z, zlen);
		put_le64(copy + 16, plain + (uint64_t)d);
		cr_expect_eq(store_restore(B.s, copy, zlen), SETTLE_EPROTO,
			     "plain length %+d", d);
	}
	memcpy(copy, z, zlen);
	put_le64(copy + 16, UINT64_MAX / 2);
	cr_expect_eq(store_restore(B.s, copy, zlen), SETTLE_EPROTO);
	cr_expect_not_null(strstr(store_errmsg(B.s), "cannot hold"), "%s",
			   store_errmsg(B.s));
	expect_rejected(copy, zlen, before, blen);
	free(copy);
	raft_free(z);
	raft_free(before);
}

/* ---- Streamed to a file, and manifests ---------------------------------- */

/* Bytes that LZ4 cannot shrink (xorshift). */
static void noise(uint8_t *p, size_t n, uint64_t seed)
{
	uint64_t x = seed | 1;

	for (size_t i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (uint8_t)x;
	}
}

/* Into fresh file path: the file's bytes in *out (malloc'd), *len. */
static int snap_file(struct store *s, const char *path, uint8_t **out,
		     uint64_t *len)
{
	MDB_txn *txn;
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
	int rv;

	cr_assert_geq(fd, 0, "%s", path);
	cr_assert_eq(store_read_begin(s, &txn), 0);
	rv = store_snapshot_fd(s, txn, 0, fd, NULL, len);
	store_read_end(txn);
	if (rv == 0) {
		*out = malloc(*len);
		cr_assert_eq(pread(fd, *out, *len, 0), (ssize_t)*len);
		cr_assert_eq(lseek(fd, 0, SEEK_END), (off_t)*len);
	}
	close(fd);
	return rv;
}

/* More than SNAPZ_DIRTY_MAX (8 MiB) of compressed bytes, so the writer
 * drains many times and waits on writeback: the file holds exactly the
 * bytes the in-memory compressed snapshot has, and restores. */
Test(snapshot, streamed_to_a_file_is_the_compressed_snapshot_byte_for_byte)
{
	size_t chunk = 512 * 1024, zlen;
	uint8_t *payload = malloc(chunk), *z, *f;
	uint64_t flen;
	char path[128];
	MDB_txn *txn;

	fill(A.s, 500, 33);
	cr_assert_eq(store_write_begin(A.s, &txn), 0);
	for (uint32_t i = 0; i < 20; i++) {
		Settle__V1__BranchRecord br;

		noise(payload, chunk, i + 1);
		settle__v1__branch_record__init(&br);
		br.gid = "tx-0001";
		br.branch_id = 10 + i;
		br.endpoint = "h:1";
		br.state = SETTLE__V1__BRANCH_STATE__REGISTERED;
		br.payload.data = payload;
		br.payload.len = chunk;
		cr_assert_eq(store_branch_put(A.s, txn, &br), 0);
	}
	cr_assert_eq(store_write_commit(A.s, txn), 0);
	free(payload);

	snap_lz4(A.s, 0, &z, &zlen);
	snprintf(path, sizeof path, "%s/ckpt", A.dir);
	cr_assert_eq(snap_file(A.s, path, &f, &flen), 0, "%s",
		     store_work_errmsg(A.s));
	cr_assert_gt(flen, 8u * 1024 * 1024, "only %llu bytes",
		     (unsigned long long)flen);
	cr_assert_eq(flen, zlen);
	cr_assert_eq(memcmp(f, z, zlen), 0);
	cr_assert_eq(store_restore(B.s, f, flen), 0, "%s", store_errmsg(B.s));
	raft_free(z);
	free(f);
	snap(A.s, 0, &z, &zlen);
	snap(B.s, 0, &f, &flen);
	cr_assert_eq(flen, zlen);
	cr_assert_eq(memcmp(f, z, zlen), 0);
	raft_free(z);
	raft_free(f);
}

Test(snapshot, a_write_that_fails_is_an_error)
{
	char path[128];
	MDB_txn *txn;
	uint64_t len;
	int fd, rv;

	fill(A.s, 3000, 5);
	snprintf(path, sizeof path, "%s/ro", A.dir);
	fd = open(path, O_RDONLY | O_CREAT, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(store_read_begin(A.s, &txn), 0);
	rv = store_snapshot_fd(A.s, txn, 0, fd, NULL, &len);
	store_read_end(txn);
	close(fd);
	cr_assert_eq(rv, SETTLE_EIO);
	cr_assert(strstr(store_work_errmsg(A.s), "write") != NULL, "%s",
		  store_work_errmsg(A.s));

	fd = open("/dev/full", O_WRONLY);
	if (fd < 0)
		return; /* no /dev/full here */
	cr_assert_eq(store_read_begin(A.s, &txn), 0);
	rv = store_snapshot_fd(A.s, txn, 0, fd, NULL, &len);
	store_read_end(txn);
	close(fd);
	cr_assert_eq(rv, SETTLE_ENOSPACE, "%d: %s", rv, store_work_errmsg(A.s));
}

/* A write another thread cancels stops with an error (the coordinator
 * cancels a checkpoint being written when the node stops). */
Test(snapshot, cancelled_write_fails)
{
	char path[128];
	MDB_txn *txn;
	uint64_t len;
	int fd, rv, cancel = 1;

	fill(A.s, 3000, 5);
	snprintf(path, sizeof path, "%s/cancelled", A.dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(store_read_begin(A.s, &txn), 0);
	rv = store_snapshot_fd(A.s, txn, 0, fd, &cancel, &len);
	store_read_end(txn);
	close(fd);
	cr_assert_eq(rv, SETTLE_EIO);
	cr_assert(strstr(store_work_errmsg(A.s), "canceled") != NULL, "%s",
		  store_work_errmsg(A.s));
	cancel = 0;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	cr_assert_eq(store_read_begin(A.s, &txn), 0);
	rv = store_snapshot_fd(A.s, txn, 0, fd, &cancel, &len);
	store_read_end(txn);
	close(fd);
	cr_assert_eq(rv, 0, "%s", store_work_errmsg(A.s));
	cr_assert_gt(len, 0);
}

Test(snapshot, manifests_name_their_snapshot_and_are_never_restored)
{
	uint8_t m[STORE_MANIFEST_LEN], bad[STORE_MANIFEST_LEN + 1];
	uint8_t *before, *after;
	size_t blen, alen;
	uint64_t idx, len;

	store_manifest_put(m, 4242, 123456789);
	cr_assert_eq(store_manifest_get(m, sizeof m, &idx, &len), 0);
	cr_assert_eq(idx, 4242);
	cr_assert_eq(len, 123456789);
	idx = 0;
	cr_assert_eq(store_snapshot_index(m, sizeof m, &idx), 0);
	cr_assert_eq(idx, 4242);
	for (size_t i = 0; i < sizeof m; i++) {
		memcpy(bad, m, sizeof m);
		bad[i] ^= 0x20;
		cr_assert_eq(store_manifest_get(bad, sizeof m, &idx, &len),
			     SETTLE_EPROTO, "byte %zu flipped", i);
	}
	memcpy(bad, m, sizeof m);
	bad[sizeof m] = 0;
	cr_assert_eq(store_manifest_get(bad, sizeof m + 1, &idx, &len),
		     SETTLE_EPROTO);
	cr_assert_eq(store_manifest_get(m, sizeof m - 1, &idx, &len),
		     SETTLE_EPROTO);
	cr_assert_eq(store_manifest_get(NULL, 0, &idx, &len), SETTLE_EPROTO);

	fill(A.s, 50, 9);
	snap(A.s, 0, &before, &blen);
	cr_assert_eq(store_restore(A.s, m, sizeof m), SETTLE_EPROTO);
	cr_assert(strstr(store_errmsg(A.s), "manifest") != NULL, "%s",
		  store_errmsg(A.s));
	snap(A.s, 0, &after, &alen);
	cr_assert_eq(alen, blen);
	cr_assert_eq(memcmp(before, after, alen), 0);
	raft_free(before);
	raft_free(after);
}

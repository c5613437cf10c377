/* Test helpers shared by the storage and wal suites: a store in a fresh
 * temporary directory, removed afterwards. */
#ifndef SETTLE_TEST_STORE_HELPERS_H
#define SETTLE_TEST_STORE_HELPERS_H

#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"

struct tstore {
	char dir[64];
	struct store *s;
};

/* mkdtemp a directory under $TMPDIR (or /tmp) and open a store in it;
 * aborts the test on failure. mapsize 0: default. */
void tstore_open(struct tstore *t, size_t mapsize);
/* Close the store and remove the directory with its files. */
void tstore_close(struct tstore *t);

/* Recompute the checksum at the end of a snapshot of len bytes. */
void tstore_reseal(uint8_t *buf, size_t len);
/* A format 4 snapshot whose history db is empty and that has no finished
 * transaction, rewritten as format version (1 or 2): an events db of nrows
 * rows (rows_len bytes of u32 key length, key, u32 value length, value) in
 * its place, meta's version row, without cmd_ids, and for format 1 without
 * applied_log and members either. malloc'd. */
uint8_t *tstore_snap_old(const uint8_t *buf, size_t len, uint32_t version,
			 const uint8_t *rows, size_t rows_len, uint64_t nrows,
			 size_t *out_len);

#endif

/* Test helpers shared by the storage and wal suites: a store in a fresh
 * temporary directory, removed afterwards. */
#ifndef SETTLE_TEST_STORE_HELPERS_H
#define SETTLE_TEST_STORE_HELPERS_H

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

#endif

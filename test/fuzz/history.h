/*
 * history.h — a small transaction history for the fuzz targets that need
 * a realistic store: transactions in every state (committed, rolled back
 * by a client and by the deadline, active, committing with a retrying and
 * a failed branch; XA ones committed with a heuristic, prepared with and
 * without a legacy TM's xid, awaiting a one-phase outcome, rolled back by
 * a vote), with branches, events and command results.
 */
#ifndef SETTLE_FUZZ_HISTORY_H
#define SETTLE_FUZZ_HISTORY_H

#include <stddef.h>
#include <stdint.h>

#include "storage/store.h"
#include "wal/fsm.h"

/* The history as encoded raft entries, built once. Entry i is
 * history_entry(i, &len) for i < history_count(); owned by this module. */
size_t history_count(void);
const uint8_t *history_entry(size_t i, size_t *len);

/*
 * Open a store in a fresh temporary directory (removed at exit) with a
 * map of mapsize bytes (0: 64 MiB), and apply the whole history through
 * an FSM at raft indexes 1..history_count(). *f is initialized over the
 * store (may be NULL). Aborts on any failure.
 */
struct store *history_store(size_t mapsize, struct fsm *f);

/* The directory of a store from history_store(). */
const char *history_store_dir(const struct store *s);

/* Tell the module that old was closed and its directory opened again as
 * s (old is only compared, never used). */
void history_store_reopened(struct store *old, struct store *s);

/* Close a store from history_store() and remove its directory. */
void history_store_close(struct store *s, struct fsm *f);

#endif /* SETTLE_FUZZ_HISTORY_H */

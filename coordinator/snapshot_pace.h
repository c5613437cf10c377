/*
 * snapshot_pace.h — when the next snapshot comes, and how many entries
 * raft keeps behind it (coordinator/snapshot_pace.c).
 */
#ifndef SETTLE_COORD_SNAPSHOT_PACE_H
#define SETTLE_COORD_SNAPSHOT_PACE_H

#include <stdbool.h>
#include <stdint.h>

#include "coordinator/config.h"

/* The most entries between two snapshots, whatever the store's size: raft
 * 0.15 loads every entry after the last snapshot into memory at start. */
#define COORD_SNAPSHOT_THRESHOLD_MAX (1u << 20)
/* The fewest entries raft keeps behind a snapshot for a follower that
 * lags a little, however large the entries. */
#define COORD_SNAPSHOT_TRAILING_MIN 64u

struct coord_snapshot_pace {
	unsigned threshold; /* entries after the last snapshot */
	unsigned trailing;  /* entries kept behind the next one */
};

/*
 * The pace after a snapshot of snap_len bytes, with log_bytes in the
 * log_entries applied since the one before (0: nothing known yet, the
 * configured values). The next comes once the log has grown by about as
 * many bytes as the snapshot holds, so writing snapshots costs about what
 * the log costs; but never later than --snapshot-log bytes of log, which
 * raft 0.15 holds in memory until a snapshot lets it go (entries of a busy
 * leader hold a hundred transactions: 16,384 of them were 490 MB), and
 * never sooner than --snapshot-threshold entries unless that cap says so.
 * Raft keeps --snapshot-trailing entries behind a snapshot, at most a
 * quarter of --snapshot-log in bytes.
 */
struct coord_snapshot_pace coord_snapshot_pace(const struct coord_config *cfg,
					       uint64_t snap_len,
					       uint64_t log_bytes,
					       uint64_t log_entries);

/* The least journal a delta snapshot may add to its base before the next
 * is full, whatever the base's size: a small store is cheap to copy, but
 * not at every snapshot. */
#define COORD_SNAPSHOT_JOURNAL_MIN ((uint64_t)8 << 20)

/*
 * Whether the next snapshot is a full one (a new base) rather than a
 * delta (wal/journal.h), with journal_len bytes of journal written after
 * a base of base_len bytes. Deltas cost little each, but the journal is
 * replayed entry by entry after the base when a snapshot is restored: a
 * new base comes once the journal is as large as the base (writing bases
 * then costs at most what the journal does), at least
 * COORD_SNAPSHOT_JOURNAL_MIN, and never later than --snapshot-journal.
 */
bool coord_snapshot_full(const struct coord_config *cfg, uint64_t base_len,
			 uint64_t journal_len);

#endif /* SETTLE_COORD_SNAPSHOT_PACE_H */

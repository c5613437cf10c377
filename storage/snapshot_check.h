/*
 * snapshot_check.h — validation of every row of a snapshot against the
 * records it belongs to, before store_restore() changes anything. Internal
 * to storage/.
 *
 * A snapshot comes from disk or from the leader over the network; one that
 * passes the checksum may still be wrong (a bug, or a buffer with a
 * recomputed checksum). Restoring it must not leave a store whose indexes
 * disagree with its records, or that does not open again: rows are checked
 * one by one, in snapshot order (records before the indexes over them).
 */
#ifndef SETTLE_STORE_SNAPSHOT_CHECK_H
#define SETTLE_STORE_SNAPSHOT_CHECK_H

#include "storage/store_int.h"

/* What the tx and cmd records seen so far say, to check later rows. */
struct snap_tx {
	const uint8_t *gid; /* into the snapshot buffer */
	size_t glen;
	uint64_t due_ms;
	uint64_t finished_ms;
	int state;
	int mode; /* an RM branch belongs to an XA transaction only */
};

struct snap_cmd {
	const uint8_t *id; /* STORE_CMD_ID_LEN bytes, into the buffer */
	uint64_t time_ms;
};

struct snap_check {
	uint32_t version; /* snapshot format */
	uint64_t index;	  /* the snapshot's applied index */
	/* Index rows the records imply, per DB. */
	uint64_t rows[STORE_DB_N];
	struct snap_tx *txs; /* in key order */
	size_t n_txs, cap_txs;
	struct snap_cmd *cmds; /* in key order */
	size_t n_cmds, cap_cmds;
	/* The last history row's gid (into the buffer) and its last event's
	 * seq: seqs go up across a gid's chunks too. */
	const uint8_t *hist_gid;
	size_t hist_glen;
	uint64_t hist_seq;
	/* Format 4: finished transactions per final state, as the meta row
	 * says and as the records say. */
	uint64_t final_said[STORE__FINAL_N];
	uint64_t final_seen[STORE__FINAL_N];
	char why[160]; /* what is wrong with the last refused row */
};

/* Start checking a snapshot of format version at index. */
void snap_check_init(struct snap_check *c, uint32_t version, uint64_t index);

/*
 * Check row (k, v) of db; rows must come in snapshot order and, within a
 * DB, in strictly increasing key order (the caller checks that). k and v
 * must stay valid until snap_check_close(). Returns 0, SETTLE_EPROTO with
 * c->why set, or SETTLE_ENOMEM.
 */
int snap_check_row(struct snap_check *c, int db, const MDB_val *k,
		   const MDB_val *v);

/* After the last row: what the rows said of each other as a whole holds.
 * Returns 0, or SETTLE_EPROTO with c->why set. */
int snap_check_end(struct snap_check *c);

/* Release c's memory. */
void snap_check_close(struct snap_check *c);

#endif /* SETTLE_STORE_SNAPSHOT_CHECK_H */

/*
 * journal.h — the journal of applied entries, and the two snapshot forms
 * built on it (wal/journal.c).
 *
 * A full snapshot copies the whole store; as history grows, each one costs
 * more. So most snapshots are deltas: a base (a full snapshot at index B,
 * the coordinator's checkpoint file) and the journal of every entry the FSM
 * was handed after B, in order, which the coordinator appends as it
 * applies. A delta snapshot at N costs an fdatasync of the journal; what
 * raft stores for it is a delta manifest naming B, the base's length and
 * the journal's length at N. Restoring it is restoring the base, then
 * applying the journal's entries through the FSM (deterministic: the same
 * state as the node that took it).
 *
 * Journal file: "STLJRNL1" (8) | u64 base index | records, each:
 *   u64 raft index | u32 length | u32 zero | u64 check | the entry's
 *   bytes | zeros to a multiple of 8.
 * The check: fsm_entry_checksum() of the record's first 16 bytes, rotated
 * left by one bit, XOR that of the entry's bytes.
 * Integers little-endian. Indexes increase strictly and are above the base.
 *
 * Delta manifest (raft's snapshot file, 48 bytes): "STLSNAPD" (8) | u64
 * index | u64 base index | u64 base length | u64 journal length | u64
 * FNV-1a 64 of the 40 bytes before.
 *
 * Delta snapshot as sent to a follower: "STLSNAPJ" (8) | u64 index | u64
 * base length | u64 journal length | u64 FNV-1a 64 of the 32 bytes before
 * | the base (a full snapshot container) | the journal (as in its file, up
 * to the manifest's length).
 */
#ifndef SETTLE_WAL_JOURNAL_H
#define SETTLE_WAL_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#define JOURNAL_HEADER_LEN	    16
#define JOURNAL_RECORD_HEADER_LEN   24
#define JOURNAL_MANIFEST_LEN	    48
#define JOURNAL_SNAPSHOT_HEADER_LEN 40

/* The journal file's header for base index base. */
void journal_header_put(uint8_t out[JOURNAL_HEADER_LEN], uint64_t base);

/* A record's header for entry buf/len at index (its checksum computed),
 * and the zero bytes that follow the entry (0-7). */
void journal_record_header_put(uint8_t out[JOURNAL_RECORD_HEADER_LEN],
			       uint64_t index, const void *buf, size_t len);
size_t journal_record_pad(size_t len);

/* Walks a journal held in memory (a file read whole, or the tail of a
 * snapshot sent by a leader). */
struct journal_reader {
	const uint8_t *p;
	size_t len;
	size_t at;
	uint64_t base;
	uint64_t last; /* index of the last record read (base at first) */
};

/*
 * Begin reading journal p/len: checks the header. SETTLE_EPROTO (errmsg
 * set) if it is not a journal, or not the one after base index base.
 */
int journal_read_begin(struct journal_reader *r, const uint8_t *p, size_t len,
		       uint64_t base, char *errmsg, size_t errlen);

/*
 * The next record: 0 with *index, *buf, *len set; 1 at the end; or
 * SETTLE_EPROTO (errmsg set) for a record that is cut short, out of order,
 * at or above upto + 1 (past the snapshot) or whose checksum is wrong.
 */
int journal_read_next(struct journal_reader *r, uint64_t upto, uint64_t *index,
		      const uint8_t **buf, size_t *len, char *errmsg,
		      size_t errlen);

/* Delta manifests: journal_manifest_get() returns SETTLE_EPROTO unless buf
 * is exactly a valid one. */
struct journal_manifest {
	uint64_t index;
	uint64_t base;
	uint64_t base_len;
	uint64_t journal_len;
};
void journal_manifest_put(uint8_t out[JOURNAL_MANIFEST_LEN],
			  const struct journal_manifest *m);
int journal_manifest_get(const uint8_t *buf, size_t len,
			 struct journal_manifest *m);

/* The header of a delta snapshot sent whole; journal_snapshot_get() checks
 * the header and that buf holds exactly what it announces, and points
 * *base and *journal into buf. SETTLE_EPROTO otherwise. */
void journal_snapshot_header_put(uint8_t out[JOURNAL_SNAPSHOT_HEADER_LEN],
				 uint64_t index, uint64_t base_len,
				 uint64_t journal_len);
int journal_snapshot_get(const uint8_t *buf, size_t len, uint64_t *index,
			 const uint8_t **base, size_t *base_len,
			 const uint8_t **journal, size_t *journal_len);

#endif /* SETTLE_WAL_JOURNAL_H */

/*
 * snapshot_int.h — what snapshot.c (taking, restoring and keeping
 * checkpoints) shares with snapshot_send.c (a leader sending one to a
 * follower). Not part of the coordinator's interface (coord.h).
 */
#ifndef SETTLE_SNAPSHOT_INT_H
#define SETTLE_SNAPSHOT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord.h"

/* Checkpoint file names: CKPT_PREFIX INDEX, and CKPT_TMP after it while
 * being written. */
#define CKPT_PREFIX "ckpt-"
#define CKPT_TMP    ".tmp"

/* The checkpoint of the snapshot at index: DATA/checkpoints/ckpt-INDEX,
 * with tmp its temporary name (".tmp"). */
void ckpt_path(const struct coord *c, uint64_t index, bool tmp, char *out,
	       size_t len);

/*
 * Read checkpoint fd (of the snapshot at index, len bytes by its manifest)
 * into *data (raft_malloc'd) and check that it is that snapshot's
 * container; errors in errmsg. Closes fd. Any thread.
 */
int ckpt_read(int fd, uint64_t index, uint64_t len, uint8_t **data,
	      char *errmsg, size_t errlen);
/* The same into p, which holds len bytes. */
int ckpt_read_into(int fd, uint64_t index, uint64_t len, uint8_t *p,
		   char *errmsg, size_t errlen);

/* Remove, on libuv's pool, the checkpoints and journals no snapshot of
 * raft's stands on (but those being written). */
void coord_snapshot_prune(struct coord *c);

/* fsync directory dir, so that a rename or an unlink in it is durable. */
int ckpt_sync_dir(const char *dir);

/* ---- Writing checkpoints (snapshot_base.c) --------------------------------
 */

/* Run job (struct ckpt_job, coord.h) to its end: checkpoints/ckpt-INDEX
 * written and synced, or job->rv and job->errmsg set. Blocks; any thread
 * but the loop's. */
void ckpt_job_run(struct ckpt_job *job);

/*
 * Begin writing a new checkpoint in the background at the applied index,
 * with the journal after it, unless one is being written. The next delta
 * snapshot after it is durable stands on it. Loop thread.
 */
void coord_base_start(struct coord *c);
/* Give up the checkpoint being written, if any: the store it reads is
 * being replaced, or its journal failed. */
void coord_base_drop(struct coord *c);

/* ---- The journal of entries after a base (snapshot_journal.c) ---------- */

#define JOURNAL_PREFIX "journal-"

/* DATA/checkpoints/journal-BASE. */
void journal_path(const struct coord *c, uint64_t base, char *out, size_t len);

/*
 * Write the journal after base checkpoint ckpt-BASE (base_len bytes) from
 * now on. keep 0: a new base, a new file. Otherwise the file exists and
 * its first keep bytes are what the last snapshot covers: the rest is cut
 * (the raft log replays it). On failure (logged) no journal is written
 * and SETTLE_EIO returned: the next snapshot is a full one.
 */
int coord_journal_start(struct coord *c, uint64_t base, uint64_t base_len,
			uint64_t keep);

/* Create the journal after the checkpoint being written at base
 * (c->snap.base.journal_fd). SETTLE_EIO (logged) if it cannot be. */
int coord_journal_next(struct coord *c, uint64_t base);
/* That checkpoint is durable: its journal becomes the one written, and the
 * next deltas stand on it. */
void coord_journal_switch(struct coord *c);

/* The first len bytes of journal file fd into out; errors in errmsg.
 * Closes fd. Any thread. */
int coord_journal_read(int fd, uint64_t len, uint8_t *out, char *errmsg,
		       size_t errlen);

/* Wrap c->io's snapshot_get (the checkpoint's bytes in place of the
 * manifest) and close (which waits for such reads). */
void snapshot_send_init(struct coord *c);

#endif /* SETTLE_SNAPSHOT_INT_H */

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

/* Wrap c->io's snapshot_get (the checkpoint's bytes in place of the
 * manifest) and close (which waits for such reads). */
void snapshot_send_init(struct coord *c);

#endif /* SETTLE_SNAPSHOT_INT_H */

/*
 * snapshot.h — the FSM's snapshots (snapshot.c and the files it leads:
 * checkpoints written in the background, the journal of entries applied
 * after one, checkpoints sent to followers). Part of the apply stage: it
 * reads the store the apply stage writes, and raft calls it.
 */
#ifndef SETTLE_COORD_SNAPSHOT_H
#define SETTLE_COORD_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct coord;

/* Between raft_uv_init and raft_init: the FSM's snapshot hooks, the
 * checkpoint directory (left-overs of a crash removed), and the raft_io
 * wrappers. Fills c->errmsg on failure. */
int coord_snapshot_init(struct coord *c);
/* The first snapshot's threshold, staggered by node id (node.c sets it). */
unsigned coord_snapshot_first_threshold(const struct coord *c);
/* The bytes of log after which this node takes a snapshot at the latest
 * (--snapshot-log, staggered the same way). */
uint64_t coord_snapshot_log_cap(const struct coord *c);
/* No snapshot being taken, no checkpoint being read for raft or being
 * removed. */
bool coord_snapshot_idle(const struct coord *c);
/* The node stops: give up a checkpoint being written in the background. */
void coord_snapshot_stop(struct coord *c);
/* A clean stop, raft closed: remove the checkpoint files no snapshot of
 * raft's stands on any more, now rather than at the next start. */
void coord_snapshot_close(struct coord *c);
/* Entry buf/len, applied at index, to the journal of delta snapshots
 * (snapshot_journal.c; nothing when none is written). */
void coord_journal_append(struct coord *c, uint64_t index, const void *buf,
			  size_t len);
/* Close the journal: the next snapshot is a full one. */
void coord_journal_stop(struct coord *c);
/* How long a leader waits for a follower to take a snapshot of len bytes
 * before sending it again (raft_set_install_snapshot_timeout). */
unsigned coord_install_timeout_ms(uint64_t len);

#endif /* SETTLE_COORD_SNAPSHOT_H */

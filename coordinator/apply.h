/*
 * apply.h — the apply stage (apply.c): raft hands each committed entry to
 * the FSM (wal/fsm.h), which applies it into the store's apply batch, one
 * LMDB write transaction for a run of entries. Each transaction it changes
 * goes on to the answer stage (waiters.h), the driver (driver.h) and the
 * open-transaction counts (quota.h); nothing flows back.
 */
#ifndef SETTLE_COORD_APPLY_H
#define SETTLE_COORD_APPLY_H

#include <stdint.h>

struct coord;

/* After fsm_init: raft's FSM apply and the FSM's change hook. */
void coord_apply_init(struct coord *c);
/* Commit the apply batch now (store_batch_commit): before a snapshot reads
 * the store, before a restore or a prune writes it, at close. A failure
 * stops the node (exit 70). */
void coord_commit_applied(struct coord *c);
/* End of a loop turn (now: uv_now): commit the apply batch if the last
 * commit is old enough. */
void coord_apply_turn(struct coord *c, uint64_t now);

#endif /* SETTLE_COORD_APPLY_H */

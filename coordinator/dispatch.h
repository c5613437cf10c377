/*
 * dispatch.h — the dispatch stage: each client request the RPC server
 * reads (proto/rpc.h) is checked, admitted (quota.h, budget.h), answered
 * from the store when it only reads (query.c), handed to the membership
 * verbs (admin.c), or made a command for the propose stage (propose.h);
 * calls that wait go to the answer stage (waiters.h).
 */
#ifndef SETTLE_COORD_DISPATCH_H
#define SETTLE_COORD_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct coord;
struct rpc_call;

/* The RPC server's handler; data is the struct coord. */
void coord_dispatch(void *data, struct rpc_call *call);

/* Transactions an operator must look at (a FAILED branch, or older than
 * --stuck-after) as STATUS counts them at now (wall ms); the unfinished
 * and finished ones kept in *active and *finished (query.c). */
uint64_t coord_stuck_count(struct coord *c, uint64_t now, uint64_t *active,
			   uint64_t *finished);

/* BACKUP (backup.c): delete a backup unread for a minute (the tick);
 * whether none is being written (the stop waits for it); delete the one
 * kept (the close). */
void coord_backup_tick(struct coord *c, uint64_t now_ms);
bool coord_backup_idle(const struct coord *c);
void coord_backup_close(struct coord *c);
/* settled --restore FILE: load a backup into the empty store of a new
 * node (before raft starts; --join). 0, or an error in errmsg. */
int coord_backup_restore(struct coord *c, const char *path, char *errmsg,
			 size_t errmsg_len);

#endif /* SETTLE_COORD_DISPATCH_H */

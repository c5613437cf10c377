/*
 * dispatch.h — the dispatch stage: each client request the RPC server
 * reads (proto/rpc.h) is checked, admitted (quota.h, budget.h), answered
 * from the store when it only reads (query.c), handed to the membership
 * verbs (admin.c), or made a command for the propose stage (propose.h);
 * calls that wait go to the answer stage (waiters.h).
 */
#ifndef SETTLE_COORD_DISPATCH_H
#define SETTLE_COORD_DISPATCH_H

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

#endif /* SETTLE_COORD_DISPATCH_H */

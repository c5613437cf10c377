/*
 * budget.h — the store against --store-budget (budget.c;
 * docs/ARCHITECTURE.md, "Store budget"): measured on every node, applied
 * by dispatch to what it admits.
 */
#ifndef SETTLE_COORD_BUDGET_H
#define SETTLE_COORD_BUDGET_H

#include <stdbool.h>
#include <stdint.h>

#include "settle.pb-c.h"

struct coord;
struct rpc_call;

/*
 * Whether cmd, about to be proposed for call, fits the store's budget:
 * Begin and SubmitSaga are refused from the high-water mark on (90% of the
 * budget, or of what the disk allows), RegisterBranch from 95%, everything
 * else passes. False after answering call with RESOURCE_EXHAUSTED and a
 * message naming --store-budget (or the disk). Leader only.
 */
bool coord_budget_admit(struct coord *c, struct rpc_call *call,
			const Settle__V1__Command *cmd);
/* Measure the store now and then (every node), logging when refusal
 * starts or ends. */
void coord_budget_tick(struct coord *c);
/* For STATUS: bytes in use, the budget, and whether this node (leading)
 * refuses new transactions. */
void coord_budget_status(struct coord *c, uint64_t *used, uint64_t *budget,
			 bool *refusing);

#endif /* SETTLE_COORD_BUDGET_H */

/*
 * ctl_bulk.h — settlectl's bulk `tx retry` (over a filter: --stuck,
 * --state, --older-than, --participant) and the plans that --dry-run and
 * the confirmation prompt show: which transactions and branches would be
 * called again. Pure: no I/O but the printing.
 */
#ifndef SETTLE_CTL_BULK_H
#define SETTLE_CTL_BULK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "settle.pb-c.h"

/* One retry to make: branch_id 0 is every FAILED or retried branch. */
struct ctl_retry_pick {
	char gid[129];
	uint32_t branch_id;
	int tx_state;	    /* settle.v1.TxState */
	int branch_state;   /* settle.v1.BranchState; 0 with branch_id 0 */
	char endpoint[256]; /* "" with branch_id 0 */
	char last_error[160];
};

/* Whether branch b would be called again by a retry: FAILED, or waiting
 * for its next attempt after one that did not succeed. */
bool ctl_branch_retryable(const Settle__V1__BranchInfo *b);

/*
 * The picks of one LIST answer, appended to *picks (*n of them, *cap
 * allocated; grows it): with participant NULL, each listed transaction
 * with a retryable branch, whole; else each retryable branch at that
 * endpoint. Returns 0 or -1 (out of memory).
 */
int ctl_retry_select(const Settle__V1__ListResponse *list,
		     const char *participant, struct ctl_retry_pick **picks,
		     size_t *n, size_t *cap);

/* The plan: a table of the picks, or JSON ({"dry_run":..,"retries":[..]}),
 * and a last line saying what it comes to. */
void ctl_print_retry_plan(FILE *f, const struct ctl_retry_pick *picks, size_t n,
			  bool dry_run, bool json);

#endif /* SETTLE_CTL_BULK_H */

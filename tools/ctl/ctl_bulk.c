/*
 * ctl_bulk.c — settlectl's bulk retry plans (ctl_bulk.h).
 */
#include <stdlib.h>
#include <string.h>

#include "ctl_bulk.h"
#include "ctl_fmt.h"
#include "ctl_int.h"

bool ctl_branch_retryable(const Settle__V1__BranchInfo *b)
{
	switch (b->state) {
	case SETTLE__V1__BRANCH_STATE__FAILED:
		return true;
	case SETTLE__V1__BRANCH_STATE__CONFIRMING:
	case SETTLE__V1__BRANCH_STATE__CANCELLING:
	case SETTLE__V1__BRANCH_STATE__STEP_ACTING:
	case SETTLE__V1__BRANCH_STATE__STEP_COMPENSATING:
	case SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING:
	case SETTLE__V1__BRANCH_STATE__XA_BRANCH_ROLLING_BACK:
		/* Being retried: an attempt that did not succeed. */
		return b->attempts > 0 && b->last_error != NULL &&
		       b->last_error[0] != '\0';
	default:
		return false;
	}
}

static struct ctl_retry_pick *pick_new(struct ctl_retry_pick **picks, size_t *n,
				       size_t *cap)
{
	if (*n == *cap) {
		size_t c = *cap != 0 ? *cap * 2 : 64;
		struct ctl_retry_pick *p = realloc(*picks, c * sizeof *p);

		if (p == NULL)
			return NULL;
		*picks = p;
		*cap = c;
	}
	memset(&(*picks)[*n], 0, sizeof **picks);
	return &(*picks)[(*n)++];
}

int ctl_retry_select(const Settle__V1__ListResponse *list,
		     const char *participant, struct ctl_retry_pick **picks,
		     size_t *n, size_t *cap)
{
	for (size_t i = 0; i < list->n_txs; i++) {
		const Settle__V1__TxInfo *tx = list->txs[i];
		const Settle__V1__BranchInfo *first = NULL;

		for (size_t j = 0; j < tx->n_branches; j++) {
			const Settle__V1__BranchInfo *b = tx->branches[j];
			struct ctl_retry_pick *p;

			if (!ctl_branch_retryable(b))
				continue;
			if (participant == NULL) {
				if (first == NULL)
					first = b;
				continue;
			}
			if (b->endpoint == NULL ||
			    strcmp(b->endpoint, participant) != 0)
				continue;
			p = pick_new(picks, n, cap);
			if (p == NULL)
				return -1;
			snprintf(p->gid, sizeof p->gid, "%s", tx->gid);
			p->branch_id = b->branch_id;
			p->tx_state = (int)tx->state;
			p->branch_state = (int)b->state;
			snprintf(p->endpoint, sizeof p->endpoint, "%s",
				 b->endpoint);
			ctl__one_line(b->last_error, p->last_error,
				      sizeof p->last_error);
		}
		if (first != NULL) {
			struct ctl_retry_pick *p = pick_new(picks, n, cap);

			if (p == NULL)
				return -1;
			snprintf(p->gid, sizeof p->gid, "%s", tx->gid);
			p->tx_state = (int)tx->state;
			ctl__one_line(first->last_error, p->last_error,
				      sizeof p->last_error);
		}
	}
	return 0;
}

void ctl_print_retry_plan(FILE *f, const struct ctl_retry_pick *picks, size_t n,
			  bool dry_run, bool json)
{
	struct table t;
	char branch[16], ep[160];

	if (json) {
		json_t *doc = json_object(), *retries = json_array();

		ctl__set_bool(doc, "dry_run", dry_run);
		json_object_set_new(doc, "retries", retries);
		for (size_t i = 0; i < n; i++) {
			json_t *o = json_object();

			json_array_append_new(retries, o);
			ctl__set_str(o, "gid", picks[i].gid);
			ctl__set_uint(o, "branch_id", picks[i].branch_id);
			ctl__set_str(o, "state",
				     ctl_tx_state_name(picks[i].tx_state));
			ctl__set_str(o, "endpoint", picks[i].endpoint);
			ctl__set_str(o, "last_error", picks[i].last_error);
		}
		ctl__json_print(f, doc);
		return;
	}
	if (n > 0) {
		ctl__table_init(&t, 5);
		ctl__table_row(&t,
			       (const char *const[]){"GID", "STATE", "BRANCH",
						     "ENDPOINT", "LAST ERROR"});
		for (size_t i = 0; i < n; i++) {
			if (picks[i].branch_id != 0)
				snprintf(branch, sizeof branch, "%u",
					 picks[i].branch_id);
			else
				snprintf(branch, sizeof branch, "all");
			ctl__one_line(picks[i].endpoint, ep, sizeof ep);
			ctl__table_row(&t,
				       (const char *const[]){
					   picks[i].gid,
					   ctl_tx_state_name(picks[i].tx_state),
					   branch, ep, picks[i].last_error});
		}
		ctl__table_print(f, &t, "");
		ctl__table_free(&t);
	}
	fprintf(f, "%s %zu retr%s\n", dry_run ? "would make" : "to make", n,
		n == 1 ? "y" : "ies");
}

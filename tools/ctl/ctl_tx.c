/*
 * ctl_tx.c — settlectl's transaction printers: tx list, tx show (a TCC
 * transaction's branches, a saga's steps, an XA transaction's RM and TCC
 * branches) and the answers of tx retry and tx resolve; see ctl_fmt.h.
 */
#include <inttypes.h>
#include <string.h>

#include "ctl_fmt.h"
#include "ctl_int.h"

/* ---- tx list ------------------------------------------------------------ */

static json_t *json_branch(const Settle__V1__BranchInfo *b, bool saga, bool xa)
{
	json_t *o = json_object(), *deps;

	ctl__set_uint(o, "branch_id", b->branch_id);
	ctl__set_str(o, "endpoint", b->endpoint);
	ctl__set_str(o, "resource", b->resource);
	ctl__set_str(o, "state", ctl_branch_state_name(b->state));
	ctl__set_uint(o, "attempts", b->attempts);
	ctl__set_uint(o, "next_retry_ms", b->next_retry_ms);
	ctl__set_uint(o, "updated_ms", b->updated_ms);
	ctl__set_str(o, "last_error", b->last_error);
	if (saga) {
		ctl__set_str(o, "name", b->name);
		deps = json_array();
		json_object_set_new(o, "depends_on", deps);
		for (size_t k = 0; k < b->n_depends_on; k++)
			json_array_append_new(deps,
					      json_integer(b->depends_on[k]));
		ctl__set_uint(o, "completion", b->completion);
		ctl__set_uint(o, "completed_ms", b->completed_ms);
		ctl__set_uint(o, "max_attempts", b->max_attempts);
	}
	if (xa) {
		ctl__set_str(o, "rm", b->rm);
		ctl__set_str(o, "xid", b->xid);
		ctl__set_str(o, "heuristic", ctl_heuristic_name(b->heuristic));
		ctl__set_bool(o, "initiator_phase2", b->initiator_phase2);
	}
	return o;
}

static json_t *json_tx(const Settle__V1__TxInfo *tx, bool with_detail)
{
	bool saga = tx->mode == SETTLE__V1__TX_MODE__SAGA;
	bool xa = tx->mode == SETTLE__V1__TX_MODE__XA;
	json_t *o = json_object(), *branches, *history;
	size_t i;

	ctl__set_str(o, "gid", tx->gid);
	ctl__set_str(o, "mode", ctl_mode_name(tx->mode));
	ctl__set_str(o, "state", ctl_tx_state_name(tx->state));
	ctl__set_bool(o, "stuck", tx->stuck);
	ctl__set_uint(o, "failed", tx->failed);
	ctl__set_uint(o, "created_ms", tx->created_ms);
	ctl__set_uint(o, "deadline_ms", tx->deadline_ms);
	ctl__set_uint(o, "updated_ms", tx->updated_ms);
	ctl__set_uint(o, "finished_ms", tx->finished_ms);
	if (saga)
		ctl__set_str(o, "recovery", ctl_recovery_name(tx->recovery));
	if (xa) {
		ctl__set_str(o, "xid", tx->xid);
		ctl__set_str(o, "heuristic", ctl_heuristic_name(tx->heuristic));
	}
	ctl__set_str(o, "reason", tx->reason);
	branches = json_array();
	json_object_set_new(o, "branches", branches);
	for (i = 0; i < tx->n_branches; i++)
		json_array_append_new(branches,
				      json_branch(tx->branches[i], saga, xa));
	if (with_detail) {
		history = json_array();
		json_object_set_new(o, "history", history);
		for (i = 0; i < tx->n_history; i++) {
			const Settle__V1__Event *e = tx->history[i];
			json_t *ev = json_object();

			json_array_append_new(history, ev);
			ctl__set_uint(ev, "seq", e->seq);
			ctl__set_uint(ev, "time_ms", e->time_ms);
			ctl__set_str(ev, "kind", e->kind);
			ctl__set_uint(ev, "branch_id", e->branch_id);
			ctl__set_str(ev, "detail", e->detail);
		}
	}
	return o;
}

/* Count branches by state, e.g. "2 confirmed, 1 failed". */
static void branch_summary(const Settle__V1__TxInfo *tx, char *buf, size_t len)
{
	/* States are small numbers; the last slot counts unknown ones. */
	enum { MAX_STATE = 48 };
	size_t counts[MAX_STATE + 1] = {0};
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < tx->n_branches; i++) {
		int s = tx->branches[i]->state;
		bool known = s >= 0 && s < MAX_STATE &&
			     strcmp(ctl_branch_state_name(s), "unknown") != 0;
		counts[known ? (size_t)s : MAX_STATE]++;
	}
	for (i = 0; i <= MAX_STATE && off < len; i++) {
		int w;
		if (counts[i] == 0)
			continue;
		w = snprintf(buf + off, len - off, "%s%zu %s", off ? ", " : "",
			     counts[i],
			     i < MAX_STATE ? ctl_branch_state_name((int)i)
					   : "unknown");
		if (w < 0)
			break;
		off += (size_t)w;
	}
	if (tx->n_branches == 0)
		snprintf(buf, len, "none");
}

void ctl_print_list(FILE *f, const Settle__V1__ListResponse *resp,
		    uint64_t now_ms, bool json)
{
	struct table t;
	char age[32], dl[48], br[128], reason[256];
	bool heur = false;
	size_t i;

	if (json) {
		json_t *doc = json_object(), *txs = json_array();

		json_object_set_new(doc, "txs", txs);
		for (i = 0; i < resp->n_txs; i++)
			json_array_append_new(txs,
					      json_tx(resp->txs[i], false));
		ctl__set_bool(doc, "more", resp->more);
		ctl__json_print(f, doc);
		return;
	}
	if (resp->n_txs == 0) {
		fputs("no matching transactions\n", f);
		return;
	}
	/* Heuristics are rare and must not be missed: a column of their own,
	 * only when a listed transaction has one. */
	for (i = 0; i < resp->n_txs; i++)
		heur = heur || resp->txs[i]->heuristic !=
				   SETTLE__V1__HEURISTIC__HEURISTIC_NONE;
	ctl__table_init(&t, heur ? 8 : 7);
	if (heur)
		ctl__table_row(&t, (const char *const[]){"GID", "STATE",
							 "STUCK", "HEURISTIC",
							 "AGE", "DEADLINE",
							 "BRANCHES", "REASON"});
	else
		ctl__table_row(&t, (const char *const[]){
				       "GID", "STATE", "STUCK", "AGE",
				       "DEADLINE", "BRANCHES", "REASON"});
	for (i = 0; i < resp->n_txs; i++) {
		const Settle__V1__TxInfo *tx = resp->txs[i];
		ctl_span_str(now_ms > tx->created_ms ? now_ms - tx->created_ms
						     : 0,
			     age, sizeof(age));
		/* The deadline only matters until the decision. */
		if (tx->finished_ms ||
		    (tx->state != SETTLE__V1__TX_STATE__ACTIVE &&
		     tx->state != SETTLE__V1__TX_STATE__SAGA_RUNNING))
			snprintf(dl, sizeof(dl), "-");
		else if (tx->deadline_ms > now_ms)
			ctl_span_str(tx->deadline_ms - now_ms, dl, sizeof(dl));
		else if (tx->deadline_ms) {
			char ago[32];
			snprintf(dl, sizeof(dl), "passed %s ago",
				 ctl_span_str(now_ms - tx->deadline_ms, ago,
					      sizeof(ago)));
		} else
			snprintf(dl, sizeof(dl), "-");
		branch_summary(tx, br, sizeof(br));
		ctl__one_line(tx->reason, reason, sizeof(reason));
		if (heur)
			ctl__table_row(
			    &t, (const char *const[]){
				    tx->gid, ctl_tx_state_name(tx->state),
				    tx->stuck ? "STUCK" : "-",
				    tx->heuristic
					? ctl_heuristic_name(tx->heuristic)
					: "-",
				    age, dl, br, reason});
		else
			ctl__table_row(&t, (const char *const[]){
					       tx->gid,
					       ctl_tx_state_name(tx->state),
					       tx->stuck ? "STUCK" : "-", age,
					       dl, br, reason});
	}
	ctl__table_print(f, &t, "");
	ctl__table_free(&t);
	if (resp->more)
		fputs("(more transactions match: raise --limit, or page with "
		      "--after GID)\n",
		      f);
}

/* ---- tx show ------------------------------------------------------------ */

static const char *next_retry_str(uint64_t next_ms, uint64_t now_ms, char *buf,
				  size_t len)
{
	char c[48];

	if (next_ms == 0)
		snprintf(buf, len, "-");
	else if (next_ms > now_ms)
		snprintf(buf, len, "in %s",
			 ctl_span_str(next_ms - now_ms, c, sizeof(c)));
	else
		snprintf(buf, len, "due");
	return buf;
}

static void print_branches(FILE *f, const Settle__V1__TxInfo *tx,
			   uint64_t now_ms)
{
	struct table t;
	char a[48], b[48];
	size_t i;

	fprintf(f, "\nbranches (%zu):\n", tx->n_branches);
	if (tx->n_branches == 0)
		return;
	ctl__table_init(&t, 8);
	ctl__table_row(&t, (const char *const[]){"ID", "STATE", "ENDPOINT",
						 "RESOURCE", "ATTEMPTS",
						 "NEXT RETRY", "UPDATED",
						 "LAST ERROR"});
	for (i = 0; i < tx->n_branches; i++) {
		const Settle__V1__BranchInfo *br = tx->branches[i];
		char id[16], att[16], err[256], ep[128], res[128];
		snprintf(id, sizeof(id), "%" PRIu32, br->branch_id);
		snprintf(att, sizeof(att), "%" PRIu32, br->attempts);
		ctl__table_row(
		    &t,
		    (const char *const[]){
			id, ctl_branch_state_name(br->state),
			ctl__one_line(br->endpoint, ep, sizeof(ep)),
			ctl__one_line(br->resource, res, sizeof(res)), att,
			next_retry_str(br->next_retry_ms, now_ms, b, sizeof(b)),
			ctl_time_str(br->updated_ms, a, sizeof(a)),
			ctl__one_line(br->last_error, err, sizeof(err))});
	}
	ctl__table_print(f, &t, "  ");
	ctl__table_free(&t);
}

/* An XA transaction's branches: RM branches show their resource manager
 * and XID, TCC branches (a legacy TM's work) their endpoint and resource,
 * in the same columns. */
static void print_xa_branches(FILE *f, const Settle__V1__TxInfo *tx,
			      uint64_t now_ms)
{
	struct table t;
	char a[48], b[48];
	size_t i;

	fprintf(f, "\nbranches (%zu):\n", tx->n_branches);
	if (tx->n_branches == 0)
		return;
	ctl__table_init(&t, 9);
	ctl__table_row(&t, (const char *const[]){"ID", "STATE", "RM / ENDPOINT",
						 "XID / RESOURCE", "HEURISTIC",
						 "ATTEMPTS", "NEXT RETRY",
						 "UPDATED", "LAST ERROR"});
	for (i = 0; i < tx->n_branches; i++) {
		const Settle__V1__BranchInfo *br = tx->branches[i];
		bool rm = br->rm != NULL && br->rm[0] != '\0';
		char id[16], att[16], err[256], who[128], what[300];

		snprintf(id, sizeof(id), "%" PRIu32, br->branch_id);
		snprintf(att, sizeof(att), "%" PRIu32, br->attempts);
		ctl__one_line(rm ? br->rm : br->endpoint, who, sizeof(who));
		/* Its next retry is when the leader takes it over. */
		if (br->initiator_phase2)
			snprintf(who + strlen(who), sizeof(who) - strlen(who),
				 " (initiator commits)");
		ctl__one_line(rm ? br->xid : br->resource, what, sizeof(what));
		ctl__table_row(
		    &t,
		    (const char *const[]){
			id, ctl_branch_state_name(br->state), who,
			what[0] ? what : "-",
			br->heuristic ? ctl_heuristic_name(br->heuristic) : "-",
			att,
			next_retry_str(br->next_retry_ms, now_ms, b, sizeof(b)),
			ctl_time_str(br->updated_ms, a, sizeof(a)),
			ctl__one_line(br->last_error, err, sizeof(err))});
	}
	ctl__table_print(f, &t, "  ");
	ctl__table_free(&t);
}

/* "1,2" for depends_on; "-" for a root. */
static const char *deps_str(const Settle__V1__BranchInfo *br, char *buf,
			    size_t len)
{
	size_t off = 0, k;

	snprintf(buf, len, "-");
	for (k = 0; k < br->n_depends_on && off < len; k++) {
		int w = snprintf(buf + off, len - off, "%s%" PRIu32,
				 k ? "," : "", br->depends_on[k]);
		if (w < 0)
			break;
		off += (size_t)w;
	}
	return buf;
}

/* A saga's steps: their shape (AFTER: the steps each waits for), how far
 * each got, and ORDER, the order in which actions ended, whose reverse is
 * the order of compensation. */
static void print_steps(FILE *f, const Settle__V1__TxInfo *tx, uint64_t now_ms)
{
	struct table t;
	bool any_order = false;
	size_t i;

	fprintf(f, "\nsteps (%zu):\n", tx->n_branches);
	if (tx->n_branches == 0)
		return;
	ctl__table_init(&t, 9);
	ctl__table_row(&t,
		       (const char *const[]){"ID", "NAME", "STATE", "ATTEMPTS",
					     "AFTER", "ORDER", "ENDPOINT",
					     "NEXT RETRY", "LAST ERROR"});
	for (i = 0; i < tx->n_branches; i++) {
		const Settle__V1__BranchInfo *br = tx->branches[i];
		char id[16], att[32], deps[64], ord[16], nr[48], name[128],
		    ep[128], err[256];

		snprintf(id, sizeof(id), "%" PRIu32, br->branch_id);
		if (br->max_attempts)
			snprintf(att, sizeof(att), "%" PRIu32 "/%" PRIu32,
				 br->attempts, br->max_attempts);
		else
			snprintf(att, sizeof(att), "%" PRIu32, br->attempts);
		if (br->completion) {
			snprintf(ord, sizeof(ord), "%" PRIu32, br->completion);
			any_order = true;
		} else {
			snprintf(ord, sizeof(ord), "-");
		}
		ctl__one_line(br->name && *br->name ? br->name : "-", name,
			      sizeof(name));
		ctl__table_row(
		    &t, (const char *const[]){
			    id, name, ctl_branch_state_name(br->state), att,
			    deps_str(br, deps, sizeof(deps)), ord,
			    ctl__one_line(br->endpoint, ep, sizeof(ep)),
			    next_retry_str(br->next_retry_ms, now_ms, nr,
					   sizeof(nr)),
			    ctl__one_line(br->last_error, err, sizeof(err))});
	}
	ctl__table_print(f, &t, "  ");
	ctl__table_free(&t);
	if (any_order)
		fputs("  (ORDER: the order in which actions ended; "
		      "compensation runs in reverse)\n",
		      f);
}

void ctl_print_tx(FILE *f, const Settle__V1__TxInfo *tx, uint64_t now_ms,
		  bool json)
{
	bool saga = tx->mode == SETTLE__V1__TX_MODE__SAGA;
	struct table t;
	char a[48], b[48], d[320];
	size_t i;

	if (json) {
		json_t *doc = json_object();

		json_object_set_new(doc, "tx", json_tx(tx, true));
		ctl__json_print(f, doc);
		return;
	}
	fprintf(f, "gid:       %s\n", ctl__one_line(tx->gid, d, sizeof(d)));
	fprintf(f, "mode:      %s\n", ctl_mode_name(tx->mode));
	if (tx->xid != NULL && tx->xid[0] != '\0')
		fprintf(f, "xid:       %s\n",
			ctl__one_line(tx->xid, d, sizeof(d)));
	if (saga)
		fprintf(f, "recovery:  %s\n", ctl_recovery_name(tx->recovery));
	fprintf(f, "state:     %s%s\n", ctl_tx_state_name(tx->state),
		tx->stuck
		    ? "  (STUCK: needs an operator, see docs/OPERATIONS.md)"
		    : "");
	if (tx->failed)
		fprintf(f,
			"failed:    %" PRIu32 " branch%s FAILED, waiting for "
			"an operator (settlectl tx retry / tx resolve)\n",
			tx->failed, tx->failed == 1 ? "" : "es");
	if (tx->heuristic != SETTLE__V1__HEURISTIC__HEURISTIC_NONE) {
		bool by_branch = false;

		for (size_t k = 0; k < tx->n_branches; k++)
			by_branch = by_branch ||
				    tx->branches[k]->heuristic !=
					SETTLE__V1__HEURISTIC__HEURISTIC_NONE;
		/* No branch carries one: an operator decided the in-doubt
		 * transaction (settlectl xa commit|rollback). */
		fprintf(f,
			by_branch
			    ? "heuristic: %s  (a branch did not end as "
			      "decided, or its outcome is unknown: see "
			      "docs/XA.md, then settlectl xa forget %s)\n"
			    : "heuristic: %s  (decided by an operator; the "
			      "TM is told so until it forgets it, or "
			      "settlectl xa forget %s)\n",
			ctl_heuristic_name(tx->heuristic),
			ctl__one_line(tx->gid, d, sizeof(d)));
	}
	fprintf(
	    f, "created:   %s (%s ago)\n",
	    ctl_time_str(tx->created_ms, a, sizeof(a)),
	    ctl_span_str(now_ms > tx->created_ms ? now_ms - tx->created_ms : 0,
			 b, sizeof(b)));
	fprintf(f, "deadline:  %s\n",
		ctl_time_str(tx->deadline_ms, a, sizeof(a)));
	fprintf(f, "updated:   %s\n",
		ctl_time_str(tx->updated_ms, a, sizeof(a)));
	fprintf(f, "finished:  %s\n",
		ctl_time_str(tx->finished_ms, a, sizeof(a)));
	if (tx->reason && *tx->reason)
		fprintf(f, "reason:    %s\n",
			ctl__one_line(tx->reason, d, sizeof(d)));

	if (saga)
		print_steps(f, tx, now_ms);
	else if (tx->mode == SETTLE__V1__TX_MODE__XA)
		print_xa_branches(f, tx, now_ms);
	else
		print_branches(f, tx, now_ms);

	fprintf(f, "\nhistory (%zu events):\n", tx->n_history);
	if (tx->n_history) {
		ctl__table_init(&t, 5);
		ctl__table_row(&t, (const char *const[]){"SEQ", "TIME", "EVENT",
							 "BRANCH", "DETAIL"});
		for (i = 0; i < tx->n_history; i++) {
			const Settle__V1__Event *e = tx->history[i];
			char seq[24], bid[16], kind[64];
			snprintf(seq, sizeof(seq), "%" PRIu64, e->seq);
			if (e->branch_id)
				snprintf(bid, sizeof(bid), "%" PRIu32,
					 e->branch_id);
			else
				snprintf(bid, sizeof(bid), "-");
			ctl__table_row(
			    &t,
			    (const char *const[]){
				seq, ctl_time_str(e->time_ms, a, sizeof(a)),
				ctl__one_line(e->kind, kind, sizeof(kind)), bid,
				ctl__one_line(e->detail, d, sizeof(d))});
		}
		ctl__table_print(f, &t, "  ");
		ctl__table_free(&t);
	}
}

/* ---- tx retry / resolve ------------------------------------------------- */

void ctl_print_retry(FILE *f, const char *gid, uint32_t branch_id,
		     uint32_t retried, int state, bool json)
{
	char g[256];

	if (json) {
		json_t *doc = json_object();

		ctl__set_str(doc, "gid", gid);
		ctl__set_uint(doc, "branch_id", branch_id);
		ctl__set_uint(doc, "retried", retried);
		ctl__set_str(doc, "state", ctl_tx_state_name(state));
		ctl__json_print(f, doc);
		return;
	}
	fprintf(f, "%s: %" PRIu32 " branch%s made due now; state %s\n",
		ctl__one_line(gid, g, sizeof(g)), retried,
		retried == 1 ? "" : "es", ctl_tx_state_name(state));
}

void ctl_print_resolve(FILE *f, const char *gid, uint32_t branch_id,
		       int branch_state, int state, bool json)
{
	char g[256];

	if (json) {
		json_t *doc = json_object();

		ctl__set_str(doc, "gid", gid);
		ctl__set_uint(doc, "branch_id", branch_id);
		ctl__set_str(doc, "branch_state",
			     ctl_branch_state_name(branch_state));
		ctl__set_str(doc, "state", ctl_tx_state_name(state));
		ctl__json_print(f, doc);
		return;
	}
	fprintf(f, "%s: branch %" PRIu32 " resolved as %s; state %s\n",
		ctl__one_line(gid, g, sizeof(g)), branch_id,
		ctl_branch_state_name(branch_state), ctl_tx_state_name(state));
}

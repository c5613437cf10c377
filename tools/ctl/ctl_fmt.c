/*
 * ctl_fmt.c — settlectl's parsing, names, tables, and the status and
 * membership printers; see ctl_fmt.h. Transactions print in ctl_tx.c.
 */
#include "ctl_fmt.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "error.h"
#include "ctl_int.h"

/* status: a clock offset from the leader worth a line under the table. */
#define CTL_CLOCK_SHOW_MS 100

int ctl_duration_parse(const char *text, uint64_t *out_ms)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {
	    {"ms", 1},		{"s", 1000},	     {"m", 60 * 1000},
	    {"h", 3600 * 1000}, {"d", 86400 * 1000},
	};
	uint64_t v = 0;
	const char *p = text;
	size_t i;

	if (text == NULL || !isdigit((unsigned char)*p))
		return SETTLE_EINVAL;
	while (isdigit((unsigned char)*p)) {
		unsigned d = (unsigned)(*p - '0');
		if (v > (UINT64_MAX - d) / 10)
			return SETTLE_EINVAL;
		v = v * 10 + d;
		p++;
	}
	for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].unit) != 0)
			continue;
		if (v > UINT64_MAX / units[i].ms)
			return SETTLE_EINVAL;
		*out_ms = v * units[i].ms;
		return 0;
	}
	return SETTLE_EINVAL;
}

/* Indexed by the wire value; gaps (6..19 are kept free for TCC) are NULL
 * and print as "unknown". */
static const char *const tx_states[] = {
    [SETTLE__V1__TX_STATE__TX_STATE_UNSPECIFIED] = "unspecified",
    [SETTLE__V1__TX_STATE__ACTIVE] = "active",
    [SETTLE__V1__TX_STATE__COMMITTING] = "committing",
    [SETTLE__V1__TX_STATE__COMMITTED] = "committed",
    [SETTLE__V1__TX_STATE__ROLLING_BACK] = "rolling_back",
    [SETTLE__V1__TX_STATE__ROLLED_BACK] = "rolled_back",
    [SETTLE__V1__TX_STATE__SAGA_RUNNING] = "saga_running",
    [SETTLE__V1__TX_STATE__SAGA_COMPENSATING] = "saga_compensating",
    [SETTLE__V1__TX_STATE__SAGA_SUCCEEDED] = "saga_succeeded",
    [SETTLE__V1__TX_STATE__SAGA_COMPENSATED] = "saga_compensated",
    [SETTLE__V1__TX_STATE__XA_PREPARED] = "xa_prepared",
};
#define N_TX_STATES (sizeof(tx_states) / sizeof(tx_states[0]))

static const char *const branch_states[] = {
    [SETTLE__V1__BRANCH_STATE__BRANCH_STATE_UNSPECIFIED] = "unspecified",
    [SETTLE__V1__BRANCH_STATE__REGISTERED] = "registered",
    [SETTLE__V1__BRANCH_STATE__CONFIRMING] = "confirming",
    [SETTLE__V1__BRANCH_STATE__CONFIRMED] = "confirmed",
    [SETTLE__V1__BRANCH_STATE__CANCELLING] = "cancelling",
    [SETTLE__V1__BRANCH_STATE__CANCELLED] = "cancelled",
    [SETTLE__V1__BRANCH_STATE__FAILED] = "failed",
    [SETTLE__V1__BRANCH_STATE__STEP_PENDING] = "step_pending",
    [SETTLE__V1__BRANCH_STATE__STEP_ACTING] = "step_acting",
    [SETTLE__V1__BRANCH_STATE__STEP_DONE] = "step_done",
    [SETTLE__V1__BRANCH_STATE__STEP_ACTION_FAILED] = "step_action_failed",
    [SETTLE__V1__BRANCH_STATE__STEP_COMPENSATING] = "step_compensating",
    [SETTLE__V1__BRANCH_STATE__STEP_COMPENSATED] = "step_compensated",
    [SETTLE__V1__BRANCH_STATE__STEP_SKIPPED] = "step_skipped",
    [SETTLE__V1__BRANCH_STATE__XA_BRANCH_ACTIVE] = "xa_active",
    [SETTLE__V1__BRANCH_STATE__XA_BRANCH_PREPARED] = "xa_prepared",
    [SETTLE__V1__BRANCH_STATE__XA_BRANCH_READ_ONLY] = "xa_read_only",
    [SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING] = "xa_committing",
    [SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTED] = "xa_committed",
    [SETTLE__V1__BRANCH_STATE__XA_BRANCH_ROLLING_BACK] = "xa_rolling_back",
    [SETTLE__V1__BRANCH_STATE__XA_BRANCH_ROLLED_BACK] = "xa_rolled_back",
    [SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE] = "xa_one_phase",
};
#define N_BRANCH_STATES (sizeof(branch_states) / sizeof(branch_states[0]))

int ctl_state_parse(const char *text, Settle__V1__TxState *out)
{
	char norm[32];
	size_t i, n;

	if (text == NULL)
		return SETTLE_EINVAL;
	n = strlen(text);
	if (n == 0 || n >= sizeof(norm))
		return SETTLE_EINVAL;
	for (i = 0; i <= n; i++)
		norm[i] = text[i] == '-'
			      ? '_'
			      : (char)tolower((unsigned char)text[i]);
	/* Index 0 ("unspecified") is not something to filter on. */
	for (i = 1; i < N_TX_STATES; i++) {
		if (tx_states[i] != NULL && strcmp(norm, tx_states[i]) == 0) {
			*out = (Settle__V1__TxState)i;
			return 0;
		}
	}
	return SETTLE_EINVAL;
}

const char *ctl_tx_state_name(int state)
{
	if (state < 0 || (size_t)state >= N_TX_STATES ||
	    tx_states[state] == NULL)
		return "unknown";
	return tx_states[state];
}

const char *ctl_branch_state_name(int state)
{
	if (state < 0 || (size_t)state >= N_BRANCH_STATES ||
	    branch_states[state] == NULL)
		return "unknown";
	return branch_states[state];
}

const char *ctl_mode_name(int mode)
{
	switch (mode) {
	case SETTLE__V1__TX_MODE__TCC:
		return "tcc";
	case SETTLE__V1__TX_MODE__SAGA:
		return "saga";
	case SETTLE__V1__TX_MODE__XA:
		return "xa";
	}
	return "unknown";
}

const char *ctl_heuristic_name(int heuristic)
{
	switch (heuristic) {
	case SETTLE__V1__HEURISTIC__HEURISTIC_NONE:
		return "none";
	case SETTLE__V1__HEURISTIC__HEUR_HAZARD:
		return "hazard";
	case SETTLE__V1__HEURISTIC__HEUR_COMMIT:
		return "commit";
	case SETTLE__V1__HEURISTIC__HEUR_ROLLBACK:
		return "rollback";
	case SETTLE__V1__HEURISTIC__HEUR_MIXED:
		return "mixed";
	}
	return "unknown";
}

const char *ctl_recovery_name(int recovery)
{
	switch (recovery) {
	case SETTLE__V1__SAGA_RECOVERY__BACKWARD:
		return "backward";
	case SETTLE__V1__SAGA_RECOVERY__FORWARD:
		return "forward";
	}
	return "unknown";
}

int ctl_branch_id_parse(const char *text, uint32_t *out)
{
	uint64_t v;

	if (ctl_node_id_parse(text, &v) != 0 || v > UINT32_MAX)
		return SETTLE_EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int ctl_reason_check(const char *text, bool required)
{
	if (text == NULL || text[0] == '\0')
		return required ? SETTLE_EINVAL : 0;
	return strlen(text) <= CTL_REASON_MAX ? 0 : SETTLE_EINVAL;
}

char *ctl_time_str(uint64_t ms, char *buf, size_t len)
{
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	char tmp[32];

	if (ms == 0 || gmtime_r(&secs, &tm) == NULL) {
		snprintf(buf, len, "-");
		return buf;
	}
	strftime(tmp, sizeof(tmp), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(buf, len, "%s.%03uZ", tmp, (unsigned)(ms % 1000));
	return buf;
}

char *ctl_span_str(uint64_t ms, char *buf, size_t len)
{
	uint64_t s = ms / 1000;

	if (ms < 1000)
		snprintf(buf, len, "%" PRIu64 "ms", ms);
	else if (s < 60)
		snprintf(buf, len, "%" PRIu64 "s", s);
	else if (s < 3600)
		snprintf(buf, len, "%" PRIu64 "m%02" PRIu64 "s", s / 60,
			 s % 60);
	else if (s < 86400)
		snprintf(buf, len, "%" PRIu64 "h%02" PRIu64 "m", s / 3600,
			 (s % 3600) / 60);
	else
		snprintf(buf, len, "%" PRIu64 "d%" PRIu64 "h", s / 86400,
			 (s % 86400) / 3600);
	return buf;
}

/* ---- Aligned tables ----------------------------------------------------- */

void ctl__table_init(struct table *t, size_t ncols)
{
	/* The widths have room for CTL_TABLE_MAX_COLS: a wider table is a
	 * bug of its caller, better stopped here than overflowing later. */
	if (ncols > CTL_TABLE_MAX_COLS)
		abort();
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

/* Add one row of ncols strings; on allocation failure the row is dropped
 * and a marker row says so, rather than printing a partial lie. */
void ctl__table_row(struct table *t, const char *const *cols)
{
	size_t i, w;
	char **cells;

	if (t->nrows == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 16;
		cells = realloc(t->cells, cap * t->ncols * sizeof(*cells));
		if (cells == NULL)
			return;
		t->cells = cells;
		t->cap = cap;
	}
	cells = t->cells + t->nrows * t->ncols;
	for (i = 0; i < t->ncols; i++) {
		cells[i] = strdup(cols[i] ? cols[i] : "");
		if (cells[i] == NULL) {
			while (i > 0)
				free(cells[--i]);
			return;
		}
		w = strlen(cells[i]);
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
}

/* Print with two spaces between columns; the last column is not padded. */
void ctl__table_print(FILE *f, struct table *t, const char *indent)
{
	size_t r, c;

	for (r = 0; r < t->nrows; r++) {
		char **row = t->cells + r * t->ncols;
		fputs(indent, f);
		for (c = 0; c < t->ncols; c++) {
			if (c + 1 == t->ncols)
				fprintf(f, "%s\n", row[c]);
			else
				fprintf(f, "%-*s  ", (int)t->width[c], row[c]);
		}
	}
}

void ctl__table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
}

/* A single line of operator text: newlines and tabs from a peer would
 * break the table layout, so they are shown as spaces. */
const char *ctl__one_line(const char *s, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "%s", s ? s : "");
	for (i = 0; buf[i]; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
	return buf;
}

/* ---- JSON --------------------------------------------------------------- */

json_t *ctl__json_text(const char *s)
{
	json_t *j;
	char *copy;

	j = json_string(s != NULL ? s : "");
	if (j != NULL || s == NULL)
		return j;
	/* Not UTF-8: keep the line, and valid JSON, rather than drop it. */
	copy = strdup(s);
	if (copy == NULL)
		return NULL;
	for (char *p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

void ctl__set_str(json_t *o, const char *key, const char *s)
{
	json_object_set_new(o, key, ctl__json_text(s));
}

void ctl__set_uint(json_t *o, const char *key, uint64_t v)
{
	json_object_set_new(o, key, json_integer((json_int_t)v));
}

void ctl__set_bool(json_t *o, const char *key, bool b)
{
	json_object_set_new(o, key, json_boolean(b));
}

void ctl__json_print(FILE *f, json_t *doc)
{
	if (doc == NULL)
		return;
	if (json_dumpf(doc, f,
		       JSON_COMPACT | JSON_PRESERVE_ORDER |
			   JSON_REAL_PRECISION(15)) == 0)
		fputc('\n', f);
	json_decref(doc);
}

/* ---- status ------------------------------------------------------------- */

/* {"nodes":[...]}: an unreachable node carries its error instead. */
static json_t *json_status(const struct ctl_node_status *nodes, size_t n)
{
	json_t *doc = json_object(), *arr = json_array();

	json_object_set_new(doc, "nodes", arr);
	for (size_t i = 0; i < n; i++) {
		const Settle__V1__StatusResponse *st = nodes[i].st;
		json_t *o = json_object(), *xa, *store;

		json_array_append_new(arr, o);
		ctl__set_str(o, "endpoint", nodes[i].endpoint);
		if (nodes[i].err != 0 || st == NULL) {
			ctl__set_bool(o, "ok", false);
			ctl__set_str(o, "error", nodes[i].errmsg);
			ctl__set_str(o, "code", settle_errname(nodes[i].err));
			continue;
		}
		ctl__set_bool(o, "ok", true);
		ctl__set_uint(o, "node_id", st->node_id);
		ctl__set_str(o, "role", st->role);
		ctl__set_str(o, "raft_address", st->address);
		ctl__set_str(o, "client_endpoint", st->client_endpoint);
		ctl__set_str(o, "leader", st->leader);
		ctl__set_uint(o, "term", st->term);
		ctl__set_uint(o, "last_index", st->last_index);
		ctl__set_uint(o, "applied_index", st->applied_index);
		ctl__set_uint(o, "active", st->active);
		ctl__set_uint(o, "stuck", st->stuck);
		ctl__set_uint(o, "finished", st->finished);
		ctl__set_uint(o, "uptime_ms", st->uptime_ms);
		ctl__set_uint(o, "heuristic_txs", st->heuristic_txs);
		xa = json_object();
		json_object_set_new(o, "xa", xa);
		ctl__set_uint(xa, "calls", st->xa_calls);
		ctl__set_uint(xa, "scans", st->xa_scans);
		ctl__set_uint(xa, "recovered_commit", st->xa_recovered_commit);
		ctl__set_uint(xa, "recovered_rollback",
			      st->xa_recovered_rollback);
		ctl__set_uint(xa, "heuristic_results",
			      st->xa_heuristic_results);
		store = json_object();
		json_object_set_new(o, "store", store);
		ctl__set_uint(store, "used_bytes", st->store_used_bytes);
		ctl__set_uint(store, "budget_bytes", st->store_budget_bytes);
		ctl__set_bool(store, "refusing", st->store_refusing);
		ctl__set_uint(o, "feature_level", st->feature_level);
		ctl__set_uint(o, "cluster_feature_level",
			      st->cluster_feature_level);
		/* Unknown (no leader heard yet) is null, not 0. */
		json_object_set_new(o, "clock_offset_ms",
				    st->clock_offset_known
					? json_integer(st->clock_offset_ms)
					: json_null());
	}
	return doc;
}

void ctl_print_status(FILE *f, const struct ctl_node_status *nodes, size_t n,
		      bool json)
{
	struct table t;
	char id[24], term[24], last[24], applied[24], active[24], stuck[24],
	    fin[24], leader[128], err[256];
	size_t i;

	if (json) {
		ctl__json_print(f, json_status(nodes, n));
		return;
	}

	ctl__table_init(&t, 10);
	ctl__table_row(&t, (const char *const[]){"ENDPOINT", "NODE", "ROLE",
						 "TERM", "LAST", "APPLIED",
						 "ACTIVE", "STUCK", "FINISHED",
						 "LEADER / ERROR"});
	for (i = 0; i < n; i++) {
		const Settle__V1__StatusResponse *st = nodes[i].st;
		if (nodes[i].err != 0 || st == NULL) {
			ctl__one_line(nodes[i].errmsg, err, sizeof(err));
			ctl__table_row(
			    &t, (const char *const[]){nodes[i].endpoint, "-",
						      "unreachable", "-", "-",
						      "-", "-", "-", "-", err});
			continue;
		}
		snprintf(id, sizeof(id), "%" PRIu64, st->node_id);
		snprintf(term, sizeof(term), "%" PRIu64, st->term);
		snprintf(last, sizeof(last), "%" PRIu64, st->last_index);
		snprintf(applied, sizeof(applied), "%" PRIu64,
			 st->applied_index);
		snprintf(active, sizeof(active), "%" PRIu64, st->active);
		snprintf(stuck, sizeof(stuck), "%" PRIu64, st->stuck);
		snprintf(fin, sizeof(fin), "%" PRIu64, st->finished);
		ctl__one_line(st->leader && *st->leader ? st->leader : "(none)",
			      leader, sizeof(leader));
		ctl__table_row(&t, (const char *const[]){nodes[i].endpoint, id,
							 st->role, term, last,
							 applied, active, stuck,
							 fin, leader});
	}
	ctl__table_print(f, &t, "");
	ctl__table_free(&t);
	/* The store against its budget (a node too old to say: nothing). */
	for (i = 0; i < n; i++) {
		const Settle__V1__StatusResponse *st = nodes[i].st;

		if (nodes[i].err != 0 || st == NULL ||
		    st->store_budget_bytes == 0)
			continue;
		fprintf(f, "%s: store %.1f MiB of %.0f MiB budget (%.0f%%)%s\n",
			nodes[i].endpoint,
			(double)st->store_used_bytes / (1 << 20),
			(double)st->store_budget_bytes / (1 << 20),
			100.0 * (double)st->store_used_bytes /
			    (double)st->store_budget_bytes,
			st->store_refusing ? "; refusing new transactions (see "
					     "docs/OPERATIONS.md)"
					   : "");
	}
	/* XA only where there is something to see: a TCC-only cluster's
	 * status stays one table. */
	for (i = 0; i < n; i++) {
		const Settle__V1__StatusResponse *st = nodes[i].st;
		bool xa;

		if (nodes[i].err != 0 || st == NULL)
			continue;
		xa =
		    (st->xa_calls | st->xa_scans | st->xa_recovered_commit |
		     st->xa_recovered_rollback | st->xa_heuristic_results) != 0;
		if (!xa && st->heuristic_txs == 0)
			continue;
		fprintf(f, "%s:", nodes[i].endpoint);
		if (st->heuristic_txs != 0)
			fprintf(f, " %" PRIu64 " heuristics not forgotten%s",
				st->heuristic_txs, xa ? ";" : "");
		if (xa)
			fprintf(f,
				" xa %" PRIu64 " phase-2 calls, %" PRIu64
				" recovery scans (in doubt: %" PRIu64
				" committed, %" PRIu64 " rolled back), %" PRIu64
				" heuristic outcomes",
				st->xa_calls, st->xa_scans,
				st->xa_recovered_commit,
				st->xa_recovered_rollback,
				st->xa_heuristic_results);
		fputc('\n', f);
	}
	/* A clock off the leader's by more than noise: deadlines ignore it,
	 * but logs and wall times shown do not (docs/OPERATIONS.md). */
	for (i = 0; i < n; i++) {
		const Settle__V1__StatusResponse *st = nodes[i].st;
		int64_t off;

		if (nodes[i].err != 0 || st == NULL || !st->clock_offset_known)
			continue;
		off = st->clock_offset_ms;
		if (off > -CTL_CLOCK_SHOW_MS && off < CTL_CLOCK_SHOW_MS)
			continue;
		fprintf(f, "%s: clock about %" PRId64 " ms %s the leader's\n",
			nodes[i].endpoint, off < 0 ? -off : off,
			off < 0 ? "behind" : "ahead of");
	}
	/* A cluster held below what its nodes could run: some member runs
	 * an older release (docs/OPERATIONS.md, "Upgrading a cluster"). */
	for (i = 0; i < n; i++) {
		const Settle__V1__StatusResponse *st = nodes[i].st;

		if (nodes[i].err != 0 || st == NULL ||
		    st->cluster_feature_level == 0 ||
		    st->cluster_feature_level >= st->feature_level)
			continue;
		fprintf(f,
			"%s: the cluster runs at feature level %u; this node "
			"runs %u (every member must, before it is raised)\n",
			nodes[i].endpoint, st->cluster_feature_level,
			st->feature_level);
	}
}

/* ---- participants ----------------------------------------------------------
 */

static const char *breaker_name(uint32_t state)
{
	return state == 1 ? "open" : state == 2 ? "half-open" : "closed";
}

static json_t *json_participants(const Settle__V1__ParticipantsResponse *resp)
{
	json_t *doc = json_object(), *arr = json_array();

	json_object_set_new(doc, "participants", arr);
	for (size_t i = 0; i < resp->n_participants; i++) {
		const Settle__V1__ParticipantInfo *p = resp->participants[i];
		json_t *o = json_object(), *mean;

		json_array_append_new(arr, o);
		ctl__set_str(o, "endpoint", p->endpoint);
		ctl__set_str(o, "breaker", breaker_name(p->breaker));
		ctl__set_uint(o, "breaker_opens", p->breaker_opens);
		ctl__set_uint(o, "calls_ok", p->calls_ok);
		ctl__set_uint(o, "calls_failure", p->calls_failure);
		ctl__set_uint(o, "calls_error", p->calls_error);
		ctl__set_uint(o, "deferred", p->deferred);
		ctl__set_uint(o, "waiting", p->waiting);
		ctl__set_uint(o, "failed", p->failed);
		/* json_real() refuses NaN and infinities: null, not no key. */
		mean = json_real(p->mean_call_ms);
		json_object_set_new(o, "mean_call_ms",
				    mean != NULL ? mean : json_null());
	}
	ctl__set_bool(doc, "partial", resp->partial);
	return doc;
}

void ctl_print_participants(FILE *f,
			    const Settle__V1__ParticipantsResponse *resp,
			    bool json)
{
	struct table t;
	char ep[160], ok[24], failure[24], error[24], deferred[24], waiting[24],
	    failed[24], mean[32];

	if (json) {
		ctl__json_print(f, json_participants(resp));
		return;
	}
	if (resp->n_participants == 0) {
		fputs("no participant called by this leader and no branch "
		      "waiting\n",
		      f);
		return;
	}
	ctl__table_init(&t, 9);
	ctl__table_row(&t, (const char *const[]){
			       "ENDPOINT", "BREAKER", "OK", "FAILED", "ERRORS",
			       "DEFERRED", "WAITING", "STUCK", "MEAN MS"});
	for (size_t i = 0; i < resp->n_participants; i++) {
		const Settle__V1__ParticipantInfo *p = resp->participants[i];

		ctl__one_line(p->endpoint, ep, sizeof(ep));
		snprintf(ok, sizeof(ok), "%" PRIu64, p->calls_ok);
		snprintf(failure, sizeof(failure), "%" PRIu64,
			 p->calls_failure);
		snprintf(error, sizeof(error), "%" PRIu64, p->calls_error);
		snprintf(deferred, sizeof(deferred), "%" PRIu64, p->deferred);
		snprintf(waiting, sizeof(waiting), "%" PRIu64, p->waiting);
		snprintf(failed, sizeof(failed), "%" PRIu64, p->failed);
		snprintf(mean, sizeof(mean), "%.1f", p->mean_call_ms);
		ctl__table_row(
		    &t, (const char *const[]){ep, breaker_name(p->breaker), ok,
					      failure, error, deferred, waiting,
					      failed, mean});
	}
	ctl__table_print(f, &t, "");
	ctl__table_free(&t);
	fputs("(calls since the leader started; STUCK: branches FAILED, "
	      "waiting for an operator)\n",
	      f);
	if (resp->partial)
		fputs("(waiting and stuck counted over the first 10,000 "
		      "unfinished transactions)\n",
		      f);
}

/* ---- cluster membership ------------------------------------------------- */

static const char *const roles[] = {
    [SETTLE__V1__MEMBER_ROLE__ROLE_VOTER] = "voter",
    [SETTLE__V1__MEMBER_ROLE__ROLE_STANDBY] = "standby",
    [SETTLE__V1__MEMBER_ROLE__ROLE_SPARE] = "spare",
};

int ctl_role_parse(const char *text, Settle__V1__MemberRole *out)
{
	for (int r = SETTLE__V1__MEMBER_ROLE__ROLE_VOTER;
	     r <= SETTLE__V1__MEMBER_ROLE__ROLE_SPARE; r++) {
		if (text != NULL && strcasecmp(text, roles[r]) == 0) {
			*out = (Settle__V1__MemberRole)r;
			return 0;
		}
	}
	return SETTLE_EINVAL;
}

const char *ctl_role_name(int role)
{
	if (role >= SETTLE__V1__MEMBER_ROLE__ROLE_VOTER &&
	    role <= SETTLE__V1__MEMBER_ROLE__ROLE_SPARE)
		return roles[role];
	return "unknown";
}

int ctl_node_id_parse(const char *text, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (text == NULL || text[0] < '0' || text[0] > '9')
		return SETTLE_EINVAL;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno != 0 || *end != '\0' || v == 0)
		return SETTLE_EINVAL;
	*out = v;
	return 0;
}

int ctl_address_check(const char *text)
{
	const char *port, *c;
	unsigned long v = 0;

	if (text == NULL || text[0] == '\0' || strlen(text) > 255)
		return SETTLE_EINVAL;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || close == text + 1 || close[1] != ':')
			return SETTLE_EINVAL;
		for (c = text + 1; c < close; c++)
			if (!isxdigit((unsigned char)*c) && *c != ':' &&
			    *c != '.')
				return SETTLE_EINVAL;
		port = close + 2;
	} else {
		const char *colon = strrchr(text, ':');
		if (colon == NULL || colon == text)
			return SETTLE_EINVAL;
		for (c = text; c < colon; c++)
			if (!isalnum((unsigned char)*c) && *c != '.' &&
			    *c != '-' && *c != '_')
				return SETTLE_EINVAL;
		port = colon + 1;
	}
	if (port[0] == '\0' || port[0] == '0' || strlen(port) > 5)
		return SETTLE_EINVAL;
	for (c = port; *c; c++) {
		if (*c < '0' || *c > '9')
			return SETTLE_EINVAL;
		v = v * 10 + (unsigned long)(*c - '0');
	}
	return v >= 1 && v <= 65535 ? 0 : SETTLE_EINVAL;
}

static json_t *json_member(const Settle__V1__Member *m)
{
	json_t *o = json_object();

	ctl__set_uint(o, "id", m->id);
	ctl__set_str(o, "role", ctl_role_name(m->role));
	ctl__set_str(o, "raft_address", m->raft_address);
	ctl__set_str(o, "client_endpoint", m->client_endpoint);
	ctl__set_bool(o, "leader", m->leader);
	if (m->added_by != NULL && m->added_by[0] != '\0') {
		ctl__set_str(o, "added_by", m->added_by);
		ctl__set_uint(o, "added_ms", m->added_ms);
	}
	if (m->removed_ms != 0) {
		ctl__set_str(o, "removed_by", m->removed_by);
		ctl__set_uint(o, "removed_ms", m->removed_ms);
	}
	return o;
}

void ctl_print_members(FILE *f, const Settle__V1__ClusterMembersResponse *resp,
		       bool json)
{
	struct table t;
	char id[24], raft[128], client[128], by[160], when[64];
	size_t i;

	if (json) {
		json_t *doc = json_object(), *members = json_array(),
		       *removed = json_array();

		ctl__set_uint(doc, "leader_id", resp->leader_id);
		json_object_set_new(doc, "members", members);
		for (i = 0; i < resp->n_members; i++)
			json_array_append_new(members,
					      json_member(resp->members[i]));
		json_object_set_new(doc, "removed", removed);
		for (i = 0; i < resp->n_removed; i++)
			json_array_append_new(removed,
					      json_member(resp->removed[i]));
		ctl__json_print(f, doc);
		return;
	}
	ctl__table_init(&t, 6);
	ctl__table_row(&t, (const char *const[]){"NODE", "ROLE", "RAFT ADDRESS",
						 "CLIENT ENDPOINT", "LEADER",
						 "ADDED BY"});
	for (i = 0; i < resp->n_members; i++) {
		const Settle__V1__Member *m = resp->members[i];

		snprintf(id, sizeof(id), "%" PRIu64, m->id);
		ctl__one_line(m->raft_address, raft, sizeof(raft));
		ctl__one_line(m->client_endpoint && *m->client_endpoint
				  ? m->client_endpoint
				  : "(unknown)",
			      client, sizeof(client));
		ctl__one_line(m->added_by != NULL ? m->added_by : "", by,
			      sizeof(by));
		ctl__table_row(&t, (const char *const[]){
				       id, ctl_role_name(m->role), raft, client,
				       m->leader ? "*" : "", by});
	}
	ctl__table_print(f, &t, "");
	ctl__table_free(&t);
	/* Who removed whom, as the members' table recorded it. */
	for (i = 0; i < resp->n_removed; i++) {
		const Settle__V1__Member *m = resp->removed[i];

		fprintf(f, "removed: node %" PRIu64 " (raft %s) at %s by %s\n",
			m->id,
			ctl__one_line(m->raft_address, raft, sizeof(raft)),
			ctl_time_str(m->removed_ms, when, sizeof(when)),
			ctl__one_line(m->removed_by, by, sizeof(by)));
	}
}

void ctl_print_member(FILE *f, const Settle__V1__Member *m, bool json)
{
	char raft[128], client[128];

	if (json) {
		json_t *doc = json_object();

		json_object_set_new(doc, "member", json_member(m));
		ctl__json_print(f, doc);
		return;
	}
	fprintf(f, "node %" PRIu64 ": %s, raft %s, clients %s%s\n", m->id,
		ctl_role_name(m->role),
		ctl__one_line(m->raft_address, raft, sizeof(raft)),
		ctl__one_line(m->client_endpoint && *m->client_endpoint
				  ? m->client_endpoint
				  : "(unknown)",
			      client, sizeof(client)),
		m->leader ? ", leader" : "");
}

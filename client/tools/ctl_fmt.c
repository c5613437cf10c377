/*
 * ctl_fmt.c — settlectl's parsing and printing; see ctl_fmt.h.
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

static const char *const tx_states[] = {
    "unspecified", "active",	   "committing",
    "committed",   "rolling_back", "rolled_back",
};
static const char *const branch_states[] = {
    "unspecified", "registered", "confirming", "confirmed",
    "cancelling",  "cancelled",	 "failed",
};

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
	for (i = 1; i < sizeof(tx_states) / sizeof(tx_states[0]); i++) {
		if (strcmp(norm, tx_states[i]) == 0) {
			*out = (Settle__V1__TxState)i;
			return 0;
		}
	}
	return SETTLE_EINVAL;
}

const char *ctl_tx_state_name(int state)
{
	if (state < 0 ||
	    (size_t)state >= sizeof(tx_states) / sizeof(*tx_states))
		return "unknown";
	return tx_states[state];
}

const char *ctl_branch_state_name(int state)
{
	if (state < 0 ||
	    (size_t)state >= sizeof(branch_states) / sizeof(*branch_states))
		return "unknown";
	return branch_states[state];
}

const char *ctl_mode_name(int mode)
{
	return mode == SETTLE__V1__TX_MODE__TCC ? "tcc" : "unknown";
}

/* Length of the valid UTF-8 sequence at s, or 0 if it is not one. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if ((s[0] & 0xe0) == 0xc0) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if ((s[0] & 0xf0) == 0xe0) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if ((s[0] & 0xf8) == 0xf0) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		/* A NUL here also fails the test: no read past the end. */
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Reject overlong forms, surrogates and values past U+10FFFF. */
	if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
	    (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

void ctl_json_str(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t n;

	fputc('"', f);
	while (*p) {
		switch (*p) {
		case '"':
			fputs("\\\"", f);
			p++;
			continue;
		case '\\':
			fputs("\\\\", f);
			p++;
			continue;
		case '\n':
			fputs("\\n", f);
			p++;
			continue;
		case '\r':
			fputs("\\r", f);
			p++;
			continue;
		case '\t':
			fputs("\\t", f);
			p++;
			continue;
		default:
			break;
		}
		if (*p < 0x20 || *p == 0x7f) {
			fprintf(f, "\\u%04x", *p);
			p++;
			continue;
		}
		n = utf8_len(p);
		if (n == 0) {
			fputs("\\ufffd", f);
			p++;
			continue;
		}
		fwrite(p, 1, n, f);
		p += n;
	}
	fputc('"', f);
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

#define TABLE_MAX_COLS 10

/* Cells are copied; a table is printed once and freed. */
struct table {
	size_t ncols;
	size_t nrows;
	size_t cap;
	char **cells; /* nrows * ncols */
	size_t width[TABLE_MAX_COLS];
};

static void table_init(struct table *t, size_t ncols)
{
	memset(t, 0, sizeof(*t));
	t->ncols = ncols;
}

/* Add one row of ncols strings; on allocation failure the row is dropped
 * and a marker row says so, rather than printing a partial lie. */
static void table_row(struct table *t, const char *const *cols)
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
static void table_print(FILE *f, struct table *t, const char *indent)
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

static void table_free(struct table *t)
{
	size_t i;

	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	t->cells = NULL;
}

/* A single line of operator text: newlines and tabs from a peer would
 * break the table layout, so they are shown as spaces. */
static const char *one_line(const char *s, char *buf, size_t len)
{
	size_t i;

	snprintf(buf, len, "%s", s ? s : "");
	for (i = 0; buf[i]; i++)
		if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
			buf[i] = ' ';
	return buf;
}

/* ---- status ------------------------------------------------------------- */

void ctl_print_status(FILE *f, const struct ctl_node_status *nodes, size_t n,
		      bool json)
{
	struct table t;
	char id[24], term[24], last[24], applied[24], active[24], stuck[24],
	    fin[24], leader[128], err[256];
	size_t i;

	if (json) {
		fputs("{\"nodes\":[", f);
		for (i = 0; i < n; i++) {
			const Settle__V1__StatusResponse *st = nodes[i].st;
			fputs(i ? ",{" : "{", f);
			fputs("\"endpoint\":", f);
			ctl_json_str(f, nodes[i].endpoint);
			if (nodes[i].err != 0 || st == NULL) {
				fputs(",\"ok\":false,\"error\":", f);
				ctl_json_str(f, nodes[i].errmsg);
				fputs(",\"code\":", f);
				ctl_json_str(f, settle_errname(nodes[i].err));
				fputc('}', f);
				continue;
			}
			fprintf(f, ",\"ok\":true,\"node_id\":%" PRIu64,
				st->node_id);
			fputs(",\"role\":", f);
			ctl_json_str(f, st->role);
			fputs(",\"raft_address\":", f);
			ctl_json_str(f, st->address);
			fputs(",\"client_endpoint\":", f);
			ctl_json_str(f, st->client_endpoint);
			fputs(",\"leader\":", f);
			ctl_json_str(f, st->leader);
			fprintf(
			    f,
			    ",\"term\":%" PRIu64 ",\"last_index\":%" PRIu64
			    ",\"applied_index\":%" PRIu64 ",\"active\":%" PRIu64
			    ",\"stuck\":%" PRIu64 ",\"finished\":%" PRIu64
			    ",\"uptime_ms\":%" PRIu64 "}",
			    st->term, st->last_index, st->applied_index,
			    st->active, st->stuck, st->finished, st->uptime_ms);
		}
		fputs("]}\n", f);
		return;
	}

	table_init(&t, 10);
	table_row(&t, (const char *const[]){
			  "ENDPOINT", "NODE", "ROLE", "TERM", "LAST", "APPLIED",
			  "ACTIVE", "STUCK", "FINISHED", "LEADER / ERROR"});
	for (i = 0; i < n; i++) {
		const Settle__V1__StatusResponse *st = nodes[i].st;
		if (nodes[i].err != 0 || st == NULL) {
			one_line(nodes[i].errmsg, err, sizeof(err));
			table_row(&t, (const char *const[]){
					  nodes[i].endpoint, "-", "unreachable",
					  "-", "-", "-", "-", "-", "-", err});
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
		one_line(st->leader && *st->leader ? st->leader : "(none)",
			 leader, sizeof(leader));
		table_row(&t, (const char *const[]){
				  nodes[i].endpoint, id, st->role, term, last,
				  applied, active, stuck, fin, leader});
	}
	table_print(f, &t, "");
	table_free(&t);
}

/* ---- tx list ------------------------------------------------------------ */

static void json_tx(FILE *f, const Settle__V1__TxInfo *tx, bool with_detail)
{
	size_t i;

	fputs("{\"gid\":", f);
	ctl_json_str(f, tx->gid);
	fputs(",\"mode\":", f);
	ctl_json_str(f, ctl_mode_name(tx->mode));
	fputs(",\"state\":", f);
	ctl_json_str(f, ctl_tx_state_name(tx->state));
	fprintf(f,
		",\"stuck\":%s,\"created_ms\":%" PRIu64
		",\"deadline_ms\":%" PRIu64 ",\"updated_ms\":%" PRIu64
		",\"finished_ms\":%" PRIu64,
		tx->stuck ? "true" : "false", tx->created_ms, tx->deadline_ms,
		tx->updated_ms, tx->finished_ms);
	fputs(",\"reason\":", f);
	ctl_json_str(f, tx->reason);
	fputs(",\"branches\":[", f);
	for (i = 0; i < tx->n_branches; i++) {
		const Settle__V1__BranchInfo *b = tx->branches[i];
		fprintf(f, "%s{\"branch_id\":%" PRIu32 ",\"endpoint\":",
			i ? "," : "", b->branch_id);
		ctl_json_str(f, b->endpoint);
		fputs(",\"resource\":", f);
		ctl_json_str(f, b->resource);
		fputs(",\"state\":", f);
		ctl_json_str(f, ctl_branch_state_name(b->state));
		fprintf(f,
			",\"attempts\":%" PRIu32 ",\"next_retry_ms\":%" PRIu64
			",\"updated_ms\":%" PRIu64 ",\"last_error\":",
			b->attempts, b->next_retry_ms, b->updated_ms);
		ctl_json_str(f, b->last_error);
		fputc('}', f);
	}
	fputc(']', f);
	if (with_detail) {
		fputs(",\"history\":[", f);
		for (i = 0; i < tx->n_history; i++) {
			const Settle__V1__Event *e = tx->history[i];
			fprintf(f,
				"%s{\"seq\":%" PRIu64 ",\"time_ms\":%" PRIu64
				",\"kind\":",
				i ? "," : "", e->seq, e->time_ms);
			ctl_json_str(f, e->kind);
			fprintf(f, ",\"branch_id\":%" PRIu32 ",\"detail\":",
				e->branch_id);
			ctl_json_str(f, e->detail);
			fputc('}', f);
		}
		fputc(']', f);
	}
	fputc('}', f);
}

/* Count branches by state, e.g. "2 confirmed, 1 failed". */
static void branch_summary(const Settle__V1__TxInfo *tx, char *buf, size_t len)
{
	size_t counts[8] = {0};
	size_t i, off = 0;

	buf[0] = '\0';
	for (i = 0; i < tx->n_branches; i++) {
		int s = tx->branches[i]->state;
		counts[s >= 0 && s < 7 ? s : 7]++;
	}
	for (i = 0; i < 8 && off < len; i++) {
		int w;
		if (counts[i] == 0)
			continue;
		w = snprintf(buf + off, len - off, "%s%zu %s", off ? ", " : "",
			     counts[i], i < 7 ? branch_states[i] : "unknown");
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
	size_t i;

	if (json) {
		fputs("{\"txs\":[", f);
		for (i = 0; i < resp->n_txs; i++) {
			if (i)
				fputc(',', f);
			json_tx(f, resp->txs[i], false);
		}
		fprintf(f, "],\"more\":%s}\n", resp->more ? "true" : "false");
		return;
	}
	if (resp->n_txs == 0) {
		fputs("no matching transactions\n", f);
		return;
	}
	table_init(&t, 7);
	table_row(&t, (const char *const[]){"GID", "STATE", "STUCK", "AGE",
					    "DEADLINE", "BRANCHES", "REASON"});
	for (i = 0; i < resp->n_txs; i++) {
		const Settle__V1__TxInfo *tx = resp->txs[i];
		ctl_span_str(now_ms > tx->created_ms ? now_ms - tx->created_ms
						     : 0,
			     age, sizeof(age));
		/* The deadline only matters until the decision. */
		if (tx->finished_ms ||
		    tx->state != SETTLE__V1__TX_STATE__ACTIVE)
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
		one_line(tx->reason, reason, sizeof(reason));
		table_row(&t,
			  (const char *const[]){
			      tx->gid, ctl_tx_state_name(tx->state),
			      tx->stuck ? "STUCK" : "-", age, dl, br, reason});
	}
	table_print(f, &t, "");
	table_free(&t);
	if (resp->more)
		fputs("(more transactions match: raise --limit, or page with "
		      "--after GID)\n",
		      f);
}

/* ---- tx show ------------------------------------------------------------ */

void ctl_print_tx(FILE *f, const Settle__V1__TxInfo *tx, uint64_t now_ms,
		  bool json)
{
	struct table t;
	char a[48], b[48], c[48], d[256];
	size_t i;

	if (json) {
		fputs("{\"tx\":", f);
		json_tx(f, tx, true);
		fputs("}\n", f);
		return;
	}
	fprintf(f, "gid:       %s\n", one_line(tx->gid, d, sizeof(d)));
	fprintf(f, "mode:      %s\n", ctl_mode_name(tx->mode));
	fprintf(f, "state:     %s%s\n", ctl_tx_state_name(tx->state),
		tx->stuck
		    ? "  (STUCK: needs an operator, see docs/OPERATIONS.md)"
		    : "");
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
			one_line(tx->reason, d, sizeof(d)));

	fprintf(f, "\nbranches (%zu):\n", tx->n_branches);
	if (tx->n_branches) {
		table_init(&t, 8);
		table_row(&t, (const char *const[]){"ID", "STATE", "ENDPOINT",
						    "RESOURCE", "ATTEMPTS",
						    "NEXT RETRY", "UPDATED",
						    "LAST ERROR"});
		for (i = 0; i < tx->n_branches; i++) {
			const Settle__V1__BranchInfo *br = tx->branches[i];
			char id[16], att[16], err[256], ep[128], res[128];
			snprintf(id, sizeof(id), "%" PRIu32, br->branch_id);
			snprintf(att, sizeof(att), "%" PRIu32, br->attempts);
			if (br->next_retry_ms == 0)
				snprintf(b, sizeof(b), "-");
			else if (br->next_retry_ms > now_ms)
				snprintf(
				    b, sizeof(b), "in %s",
				    ctl_span_str(br->next_retry_ms - now_ms, c,
						 sizeof(c)));
			else
				snprintf(b, sizeof(b), "due");
			table_row(
			    &t,
			    (const char *const[]){
				id, ctl_branch_state_name(br->state),
				one_line(br->endpoint, ep, sizeof(ep)),
				one_line(br->resource, res, sizeof(res)), att,
				b, ctl_time_str(br->updated_ms, a, sizeof(a)),
				one_line(br->last_error, err, sizeof(err))});
		}
		table_print(f, &t, "  ");
		table_free(&t);
	}

	fprintf(f, "\nhistory (%zu events):\n", tx->n_history);
	if (tx->n_history) {
		table_init(&t, 5);
		table_row(&t, (const char *const[]){"SEQ", "TIME", "EVENT",
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
			table_row(
			    &t, (const char *const[]){
				    seq, ctl_time_str(e->time_ms, a, sizeof(a)),
				    one_line(e->kind, kind, sizeof(kind)), bid,
				    one_line(e->detail, d, sizeof(d))});
		}
		table_print(f, &t, "  ");
		table_free(&t);
	}
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

static void json_member(FILE *f, const Settle__V1__Member *m)
{
	fprintf(f, "{\"id\":%" PRIu64 ",\"role\":", m->id);
	ctl_json_str(f, ctl_role_name(m->role));
	fputs(",\"raft_address\":", f);
	ctl_json_str(f, m->raft_address);
	fputs(",\"client_endpoint\":", f);
	ctl_json_str(f, m->client_endpoint);
	fprintf(f, ",\"leader\":%s}", m->leader ? "true" : "false");
}

void ctl_print_members(FILE *f, const Settle__V1__ClusterMembersResponse *resp,
		       bool json)
{
	struct table t;
	char id[24], raft[128], client[128];
	size_t i;

	if (json) {
		fprintf(f, "{\"leader_id\":%" PRIu64 ",\"members\":[",
			resp->leader_id);
		for (i = 0; i < resp->n_members; i++) {
			if (i)
				fputc(',', f);
			json_member(f, resp->members[i]);
		}
		fputs("]}\n", f);
		return;
	}
	table_init(&t, 5);
	table_row(&t, (const char *const[]){"NODE", "ROLE", "RAFT ADDRESS",
					    "CLIENT ENDPOINT", "LEADER"});
	for (i = 0; i < resp->n_members; i++) {
		const Settle__V1__Member *m = resp->members[i];

		snprintf(id, sizeof(id), "%" PRIu64, m->id);
		one_line(m->raft_address, raft, sizeof(raft));
		one_line(m->client_endpoint && *m->client_endpoint
			     ? m->client_endpoint
			     : "(unknown)",
			 client, sizeof(client));
		table_row(&t, (const char *const[]){id, ctl_role_name(m->role),
						    raft, client,
						    m->leader ? "*" : ""});
	}
	table_print(f, &t, "");
	table_free(&t);
}

void ctl_print_member(FILE *f, const Settle__V1__Member *m, bool json)
{
	char raft[128], client[128];

	if (json) {
		fputs("{\"member\":", f);
		json_member(f, m);
		fputs("}\n", f);
		return;
	}
	fprintf(f, "node %" PRIu64 ": %s, raft %s, clients %s%s\n", m->id,
		ctl_role_name(m->role),
		one_line(m->raft_address, raft, sizeof(raft)),
		one_line(m->client_endpoint && *m->client_endpoint
			     ? m->client_endpoint
			     : "(unknown)",
			 client, sizeof(client)),
		m->leader ? ", leader" : "");
}

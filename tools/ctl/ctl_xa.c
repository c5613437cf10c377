/*
 * ctl_xa.c — settlectl's XA printers: the XID text form, xa recover, the
 * answer of xa forget (ctl_fmt.h), and an operator's heuristic decision,
 * xa commit / xa rollback (ctl_xa.h).
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "error.h"

#include "ctl_fmt.h"
#include "ctl_int.h"
#include "ctl_xa.h"
#include "xa/xid.h"

const char *ctl_xid_text(const uint8_t *xid, size_t len, char *buf, size_t cap)
{
	struct xa_xid x;

	if (len == 0) {
		snprintf(buf, cap, "-");
		return buf;
	}
	/* A peer's bytes: shown only once they decode as an XID. */
	if (xa_xid_decode(xid, len, &x) != 0 ||
	    xa_xid_format(&x, buf, cap) != 0)
		snprintf(buf, cap, "(invalid xid of %zu bytes)", len);
	return buf;
}

void ctl_print_xa_recover(FILE *f, const Settle__V1__XaRecoverResponse *resp,
			  bool json)
{
	char xid[XA_XID_TEXT_MAX + 32], gid[256];
	struct table t;
	size_t i;

	if (json) {
		json_t *doc = json_object(), *txs = json_array();

		json_object_set_new(doc, "txs", txs);
		for (i = 0; i < resp->n_txs; i++) {
			const Settle__V1__XaRecovered *r = resp->txs[i];
			json_t *o = json_object();

			json_array_append_new(txs, o);
			ctl__set_str(o, "gid", r->gid);
			ctl__set_str(o, "state", ctl_tx_state_name(r->state));
			ctl__set_str(o, "heuristic",
				     ctl_heuristic_name(r->heuristic));
			ctl__set_str(o, "xid",
				     ctl_xid_text(r->xid.data, r->xid.len, xid,
						  sizeof(xid)));
		}
		ctl__set_bool(doc, "more", resp->more);
		ctl__json_print(f, doc);
		return;
	}
	if (resp->n_txs == 0) {
		fputs("no XA transaction is prepared or has a heuristic to "
		      "forget\n",
		      f);
		return;
	}
	ctl__table_init(&t, 4);
	ctl__table_row(
	    &t, (const char *const[]){"GID", "STATE", "HEURISTIC", "XID"});
	for (i = 0; i < resp->n_txs; i++) {
		const Settle__V1__XaRecovered *r = resp->txs[i];

		ctl__table_row(
		    &t,
		    (const char *const[]){
			ctl__one_line(r->gid, gid, sizeof(gid)),
			ctl_tx_state_name(r->state),
			r->heuristic ? ctl_heuristic_name(r->heuristic) : "-",
			ctl_xid_text(r->xid.data, r->xid.len, xid,
				     sizeof(xid))});
	}
	ctl__table_print(f, &t, "");
	ctl__table_free(&t);
	if (resp->more)
		fputs("(more follow: raise --limit, or page with --after "
		      "GID)\n",
		      f);
}

void ctl_print_xa_forget(FILE *f, const char *gid, bool json)
{
	char g[256];

	if (json) {
		json_t *doc = json_object();

		ctl__set_str(doc, "gid", gid);
		ctl__set_bool(doc, "forgotten", true);
		ctl__json_print(f, doc);
		return;
	}
	fprintf(f,
		"%s: heuristic forgotten (its history keeps the record; the "
		"branches keep theirs)\n",
		ctl__one_line(gid, g, sizeof(g)));
}

/* ---- xa commit / xa rollback (a heuristic decision) --------------------- */

/* settle.h's CTL_XA_GID_MAX; this library does not include libsettle. */
#define CTL_XA_GID_MAX 128

static int ctl_xa_bad(char *err, size_t err_len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int ctl_xa_bad(char *err, size_t err_len, const char *fmt, ...)
{
	va_list ap;

	if (err != NULL && err_len > 0) {
		va_start(ap, fmt);
		vsnprintf(err, err_len, fmt, ap);
		va_end(ap);
	}
	return SETTLE_EINVAL;
}

int ctl_xa_decide_check(char *const *pos, int npos, const char *reason,
			bool *commit, char *err, size_t err_len)
{
	const char *sub = npos > 1 ? pos[1] : "";
	const char *gid;

	if (strcmp(sub, "commit") != 0 && strcmp(sub, "rollback") != 0)
		return ctl_xa_bad(err, err_len,
				  "xa: '%s' is not commit or rollback", sub);
	if (npos != 3)
		return ctl_xa_bad(err, err_len,
				  "xa %s needs exactly one GID (and --reason "
				  "TEXT)",
				  sub);
	gid = pos[2];
	if (gid[0] == '\0' || strlen(gid) > CTL_XA_GID_MAX)
		return ctl_xa_bad(err, err_len, "bad gid '%s': 1 to %d bytes",
				  gid, CTL_XA_GID_MAX);
	if (reason == NULL || reason[0] == '\0')
		return ctl_xa_bad(err, err_len,
				  "xa %s needs --reason TEXT: a heuristic "
				  "decision says who took it and why",
				  sub);
	if (ctl_reason_check(reason, true) != 0)
		return ctl_xa_bad(err, err_len,
				  "--reason is longer than %d bytes",
				  CTL_REASON_MAX);
	*commit = strcmp(sub, "commit") == 0;
	return 0;
}

const char *ctl_xa_heuristic_code(int heuristic)
{
	switch (heuristic) {
	case SETTLE__V1__HEURISTIC__HEUR_HAZARD:
		return "XA_HEURHAZ";
	case SETTLE__V1__HEURISTIC__HEUR_COMMIT:
		return "XA_HEURCOM";
	case SETTLE__V1__HEURISTIC__HEUR_ROLLBACK:
		return "XA_HEURRB";
	case SETTLE__V1__HEURISTIC__HEUR_MIXED:
		return "XA_HEURMIX";
	}
	return "XA_OK";
}

void ctl_print_xa_heuristic(FILE *f, const char *gid, int state, int heuristic,
			    bool json)
{
	const char *code = ctl_xa_heuristic_code(heuristic);
	char g[256];

	if (json) {
		json_t *doc = json_object();

		ctl__set_str(doc, "gid", gid);
		ctl__set_str(doc, "state", ctl_tx_state_name(state));
		ctl__set_str(doc, "heuristic", ctl_heuristic_name(heuristic));
		ctl__set_str(doc, "tm_told", code);
		ctl__json_print(f, doc);
		return;
	}
	ctl__one_line(gid, g, sizeof(g));
	fprintf(f, "%s: %s, heuristic %s\n", g, ctl_tx_state_name(state),
		ctl_heuristic_name(heuristic));
	fprintf(f,
		"its transaction manager's xa_commit or xa_rollback will get "
		"%s; xa_recover lists it once phase two ended, until "
		"'settlectl xa forget %s' (or the TM's xa_forget)\n",
		code, g);
}

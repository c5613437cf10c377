/*
 * ctl_xa.c — settlectl's XA printers: the XID text form, xa recover and
 * the answer of xa forget; see ctl_fmt.h.
 */
#include <inttypes.h>
#include <string.h>

#include "ctl_fmt.h"
#include "ctl_int.h"
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
		fputs("{\"txs\":[", f);
		for (i = 0; i < resp->n_txs; i++) {
			const Settle__V1__XaRecovered *r = resp->txs[i];

			fputs(i ? ",{\"gid\":" : "{\"gid\":", f);
			ctl_json_str(f, r->gid);
			fputs(",\"state\":", f);
			ctl_json_str(f, ctl_tx_state_name(r->state));
			fputs(",\"heuristic\":", f);
			ctl_json_str(f, ctl_heuristic_name(r->heuristic));
			fputs(",\"xid\":", f);
			ctl_json_str(f, ctl_xid_text(r->xid.data, r->xid.len,
						     xid, sizeof(xid)));
			fputc('}', f);
		}
		fprintf(f, "],\"more\":%s}\n", resp->more ? "true" : "false");
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
		fputs("{\"gid\":", f);
		ctl_json_str(f, gid);
		fputs(",\"forgotten\":true}\n", f);
		return;
	}
	fprintf(f,
		"%s: heuristic forgotten (its history keeps the record; the "
		"branches keep theirs)\n",
		ctl__one_line(gid, g, sizeof(g)));
}

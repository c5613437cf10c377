/*
 * switch_recover.c — xa_recover of Settle's switch: the coordinator's
 * XA_RECOVER pages behind the specification's TMSTARTRSCAN / TMENDRSCAN
 * cursor.
 *
 * The cursor is the gid of the last XID handed out, kept per (thread,
 * rmid), rather than a position: transactions that end between two calls
 * do not make the scan skip or repeat the others. xa/assoc.c checks the
 * call and knows whether a scan is open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xa/assoc.h"
#include "xa/switch_int.h"

/* Entries fetched per XA_RECOVER call. */
#define SW_RECOVER_PAGE 64

/* Field by field into the TM's XID (its `long`s are the TM's ABI). */
static int sw_to_xopen(const uint8_t *wire, size_t len, XID *out)
{
	struct xa_xopen_xid o;
	struct xa_xid x;

	if (xa_xid_decode(wire, len, &x) != 0 || xa_xid_to_xopen(&x, &o) != 0)
		return XAER_RMERR;
	memset(out, 0, sizeof(*out));
	out->formatID = o.formatID;
	out->gtrid_length = o.gtrid_length;
	out->bqual_length = o.bqual_length;
	memcpy(out->data, o.data, sizeof(out->data));
	return XA_OK;
}

int sw_xa_recover(XID *xids, long count, int rmid, long flags)
{
	uint64_t tid = xa_assoc_self();
	struct settle_xa_recovered *page = NULL;
	char before[SETTLE_GID_BUFSIZE];
	struct sw_session *s;
	long n = 0;
	int rc;

	s = sw_session(rmid); /* first: it initializes the library */
	rc = xa_assoc_recover(sw_assoc, tid, rmid, xids, count, flags, NULL);
	if (rc != XA_OK || s == NULL)
		return sw_ret("xa_recover", rmid, NULL,
			      rc != XA_OK ? rc : XAER_PROTO);
	s->errmsg[0] = '\0';
	if (flags & TMSTARTRSCAN)
		s->scan_after[0] = '\0';
	memcpy(before, s->scan_after, sizeof(before));
	if (count > 0) {
		page = calloc(SW_RECOVER_PAGE, sizeof(*page));
		if (page == NULL)
			return sw_ret("xa_recover", rmid, NULL, XAER_RMERR);
	}
	while (n < count) {
		size_t want = (size_t)(count - n), got = 0;
		bool more = false;
		int rv;

		if (want > SW_RECOVER_PAGE)
			want = SW_RECOVER_PAGE;
		rv = settle_xa_recover(s->c, s->scan_after, page, want, &got,
				       &more);
		if (rv != 0) {
			/* The scan stays where it was: the TM may call again
			 * without TMSTARTRSCAN once the cluster is back. */
			free(page);
			memcpy(s->scan_after, before, sizeof(before));
			rc = sw_fail(s, "xa_recover", rv);
			return sw_ret("xa_recover", rmid, NULL, rc);
		}
		/* A row that does not decode (no coordinator sends one) is
		 * passed over rather than handed to the TM half-made. */
		for (size_t i = 0; i < got && i < want; i++) {
			snprintf(s->scan_after, sizeof(s->scan_after), "%s",
				 page[i].gid);
			if (sw_to_xopen(page[i].xid, page[i].xid_len,
					&xids[n]) == XA_OK)
				n++;
		}
		if (!more || got < want)
			break;
	}
	free(page);
	xa_assoc_recover_done(sw_assoc, tid, rmid, n, count, flags);
	return sw_ret("xa_recover", rmid, NULL, (int)n);
}

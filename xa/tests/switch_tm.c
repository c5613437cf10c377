/*
 * switch_tm.c — "another process" of a TM for the switch's answer table
 * (xa/tests/test_switch_cluster.c): a process that did not begin the
 * branch, so the switch in it tracks nothing of it, opens the RM and calls
 * one verb through settle_xa_switch.
 *
 *   switch_tm INFO VERB FORMATID GTRID BQUAL
 *
 * VERB: commit, commit1 (TMONEPHASE), rollback, prepare, forget, end
 * (TMSUCCESS), or listed (xa_recover: 1 when the XID is listed, else 0).
 * Prints the XA return code in decimal on stdout, the switch's reason on
 * stderr; exits 0, or 2 on bad arguments or a failed xa_open.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xa/settle_xa.h"
#include "xa/settle_xa_ext.h"

#define TM_RMID 1

static int tm_listed(const XID *x)
{
	long flags = TMSTARTRSCAN;
	XID out[32];
	int n;

	do {
		n = settle_xa_switch.xa_recover_entry(out, 32, TM_RMID, flags);
		for (int i = 0; i < n; i++)
			if (out[i].formatID == x->formatID &&
			    out[i].gtrid_length == x->gtrid_length &&
			    out[i].bqual_length == x->bqual_length &&
			    memcmp(out[i].data, x->data,
				   (size_t)(x->gtrid_length +
					    x->bqual_length)) == 0)
				return 1;
		flags = TMNOFLAGS;
	} while (n == 32);
	return n < 0 ? n : 0;
}

int main(int argc, char *argv[])
{
	struct xa_switch_t *sw = &settle_xa_switch;
	const char *verb;
	size_t g, q;
	XID x;
	int rc;

	if (argc != 6) {
		fprintf(stderr, "usage: switch_tm INFO VERB FORMATID GTRID "
				"BQUAL\n");
		return 2;
	}
	verb = argv[2];
	g = strlen(argv[4]);
	q = strlen(argv[5]);
	if (g == 0 || q == 0 || g + q > XIDDATASIZE) {
		fprintf(stderr, "switch_tm: bad gtrid or bqual\n");
		return 2;
	}
	memset(&x, 0, sizeof(x));
	x.formatID = strtol(argv[3], NULL, 0);
	x.gtrid_length = (long)g;
	x.bqual_length = (long)q;
	memcpy(x.data, argv[4], g);
	memcpy(x.data + g, argv[5], q);

	rc = sw->xa_open_entry(argv[1], TM_RMID, TMNOFLAGS);
	if (rc != XA_OK) {
		fprintf(stderr, "switch_tm: xa_open: %d %s\n", rc,
			settle_xa_errmsg(TM_RMID));
		return 2;
	}
	if (strcmp(verb, "commit") == 0)
		rc = sw->xa_commit_entry(&x, TM_RMID, TMNOFLAGS);
	else if (strcmp(verb, "commit1") == 0)
		rc = sw->xa_commit_entry(&x, TM_RMID, TMONEPHASE);
	else if (strcmp(verb, "rollback") == 0)
		rc = sw->xa_rollback_entry(&x, TM_RMID, TMNOFLAGS);
	else if (strcmp(verb, "prepare") == 0)
		rc = sw->xa_prepare_entry(&x, TM_RMID, TMNOFLAGS);
	else if (strcmp(verb, "forget") == 0)
		rc = sw->xa_forget_entry(&x, TM_RMID, TMNOFLAGS);
	else if (strcmp(verb, "end") == 0)
		rc = sw->xa_end_entry(&x, TM_RMID, TMSUCCESS);
	else if (strcmp(verb, "listed") == 0)
		rc = tm_listed(&x);
	else {
		fprintf(stderr, "switch_tm: unknown verb %s\n", verb);
		return 2;
	}
	printf("%d\n", rc);
	fprintf(stderr, "%s\n", settle_xa_errmsg(TM_RMID));
	sw->xa_close_entry(argv[1], TM_RMID, TMNOFLAGS);
	return 0;
}

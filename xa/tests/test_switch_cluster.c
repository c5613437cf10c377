/*
 * test_switch_cluster.c — the switch library as a legacy TM uses it,
 * against a real 3-node settled cluster (issue 5).
 *
 * The program does what a TP monitor does: dlopen() the shared library
 * (the build's xa/.libs/libsettle_xa.so), look up "settle_xa_switch" with
 * dlsym() and call only through the switch's function pointers. The
 * application side registers TCC branches (two demo banks) under the gid
 * settle_xa_current_gid() gives. Checked:
 *  - begin / prepare / commit moves the money, rollback after prepare
 *    moves none, a transaction without branches prepares XA_RDONLY, a
 *    one-phase commit works; the cluster keeps the TM's XID unchanged and
 *    hands it, byte for byte, to the participants' Confirm and Cancel;
 *  - SIGKILL of the leader between xa_prepare and xa_commit: the prepared
 *    transaction survives on the new leader and the commit completes it;
 *  - a "TM restart": the first TM thread dies after preparing, a fresh
 *    thread opens the RM again and xa_recover lists exactly the prepared
 *    XIDs (with the TMSTARTRSCAN cursor over several calls), which it then
 *    commits or rolls back;
 *  - an operator's heuristic decision of a prepared XID (the TM gone):
 *    the TM's later xa_commit hears XA_HEURCOM / XA_HEURRB, xa_recover
 *    lists the XID until xa_forget clears it.
 * One test at a time (main() below): each runs three ASan settled nodes.
 */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord_util.h"
#include "switch_participant.h"
#include "tcc_util.h"
#include "test_faults_util.h"
#include "xa/settle_xa.h"
#include "xa/xid.h"

#define RM	 1
#define START	 1000
#define RESOURCE "accounts"

static struct fu_cluster cluster;
static struct it_bank bank_a, bank_b;
static struct sp recorder; /* a third participant: what reaches it */
static bool recorder_on;
static void *lib;
static struct xa_switch_t *sw;
static int (*current_gid)(int rmid, char *buf, size_t cap);
static const char *(*errmsg)(int rmid);
static char info[MAXINFOSIZE];

static const char *const node_args[] = {"--retry-base", "50ms", "--retry-max",
					"200ms", NULL};

/* The library as a TM finds it: by path, with dlopen. */
static void load_switch(void)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/xa/.libs/libsettle_xa.so",
		 it_build_dir());
	lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	cr_assert_not_null(lib, "dlopen %s: %s", path, dlerror());
	sw = dlsym(lib, "settle_xa_switch");
	cr_assert_not_null(sw, "dlsym settle_xa_switch: %s", dlerror());
	*(void **)&current_gid = dlsym(lib, "settle_xa_current_gid");
	*(void **)&errmsg = dlsym(lib, "settle_xa_errmsg");
	cr_assert_not_null(current_gid);
	cr_assert_not_null(errmsg);
	/* The switch's state machine stays inside the library. */
	cr_assert_null(dlsym(lib, "xa_assoc_new"));
	cr_assert_str_eq(sw->name, "settle");
	cr_assert_eq(sw->version, 0);
}

static void setup(void)
{
	cu_setup();
	memset(&cluster, 0, sizeof(cluster));
	load_switch();
}

static void teardown(void)
{
	if (recorder_on)
		sp_stop(&recorder);
	recorder_on = false;
	fu_cluster_teardown(&cluster);
	it_teardown();
}

TestSuite(xa_switch_cluster, .init = setup, .fini = teardown, .timeout = 180);

static void world_start(void)
{
	fu_cluster_start(&cluster, 3, node_args);
	fu_bank_start(&bank_a, NULL, "bank-a", "alice=1000", NULL);
	fu_bank_start(&bank_b, NULL, "bank-b", "bob=1000", NULL);
	sp_start(&recorder);
	recorder_on = true;
	/* A leader failover takes a few seconds under ASan: the budget
	 * covers it, so the TM sees no XAER_RMFAIL. */
	snprintf(info, sizeof(info),
		 "endpoints=%s;timeout_ms=120000;retry_budget_ms=30000",
		 cluster.endpoints);
}

static settle_client *app_client(void)
{
	struct settle_client_opts o = {.retry_budget_ms = 30000};
	settle_client *c;

	cr_assert_eq(settle_client_open(cluster.endpoints, &o, &c), 0);
	return c;
}

static XID mkxid(long fmt, const char *g, const char *q)
{
	XID x;

	memset(&x, 0, sizeof(x));
	x.formatID = fmt;
	x.gtrid_length = (long)strlen(g);
	x.bqual_length = (long)strlen(q);
	memcpy(x.data, g, strlen(g));
	memcpy(x.data + strlen(g), q, strlen(q));
	return x;
}

static bool xid_eq(const XID *a, const XID *b)
{
	return a->formatID == b->formatID &&
	       a->gtrid_length == b->gtrid_length &&
	       a->bqual_length == b->bqual_length &&
	       memcmp(a->data, b->data,
		      (size_t)(a->gtrid_length + a->bqual_length)) == 0;
}

static void xid_gid(const XID *x, char gid[XA_XID_GID_LEN + 1],
		    char text[XA_XID_TEXT_MAX])
{
	struct xa_xid y;

	cr_assert_eq(
	    xa_xid_init(&y, x->formatID, x->data, (size_t)x->gtrid_length,
			x->data + x->gtrid_length, (size_t)x->bqual_length),
	    0);
	cr_assert_eq(xa_xid_gid(&y, gid), 0);
	if (text != NULL)
		cr_assert_eq(xa_xid_format(&y, text, XA_XID_TEXT_MAX), 0);
}

static void try_branch(settle_client *c, const char *gid, uint32_t id,
		       const struct it_bank *b, const char *payload)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	int rv;

	req.gid = (char *)gid;
	req.branch_id = id;
	req.resource = RESOURCE;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = strlen(payload);
	req.attempt = 1;
	rv = settle_client_call_at(
	    c, b->endpoint, SETTLE__V1__METHOD__TRY, &req.base,
	    &settle__v1__branch_response__descriptor, NULL);
	cr_assert_eq(rv, 0, "try on %s: %s", b->endpoint,
		     settle_client_errmsg(c));
}

/*
 * The application's work inside the global transaction x: xa_start, a
 * transfer of amount from alice to bob as two TCC branches of the gid
 * the switch names, and a third branch on the recorder (no Try needed:
 * it only records Confirm and Cancel), xa_end(TMSUCCESS). amount 0: no
 * branches.
 */
static void app_work(const XID *x0, int amount, char *gid)
{
	XID x = *x0;
	char pf[64], pt[64];
	settle_client *c;
	uint32_t bf, bt, br;
	int rc;

	rc = sw->xa_start_entry(&x, RM, TMNOFLAGS);
	cr_assert_eq(rc, XA_OK, "xa_start: %d %s", rc, errmsg(RM));
	cr_assert_eq(current_gid(RM, gid, SETTLE_GID_BUFSIZE), 0);
	if (amount != 0) {
		c = app_client();
		snprintf(pf, sizeof(pf), "account=alice;amount=%d", -amount);
		snprintf(pt, sizeof(pt), "account=bob;amount=%d", amount);
		cr_assert_eq(settle_register_branch(c, gid, bank_a.endpoint,
						    RESOURCE, pf, strlen(pf),
						    &bf),
			     0, "%s", settle_client_errmsg(c));
		cr_assert_eq(settle_register_branch(c, gid, bank_b.endpoint,
						    RESOURCE, pt, strlen(pt),
						    &bt),
			     0, "%s", settle_client_errmsg(c));
		cr_assert_eq(settle_register_branch(c, gid, recorder.endpoint,
						    "rec", "r", 1, &br),
			     0, "%s", settle_client_errmsg(c));
		try_branch(c, gid, bf, &bank_a, pf);
		try_branch(c, gid, bt, &bank_b, pt);
		settle_client_close(c);
	}
	rc = sw->xa_end_entry(&x, RM, TMSUCCESS);
	cr_assert_eq(rc, XA_OK, "xa_end: %d %s", rc, errmsg(RM));
}

/* Wait until gid is final; returns its state. */
static int wait_final(const char *gid)
{
	settle_client *c = app_client();
	bool fin = false;
	int st = 0, rv;

	rv = settle_wait(c, gid, 60000, &st, &fin);
	cr_assert_eq(rv, 0, "wait %s: %s", gid, settle_client_errmsg(c));
	cr_assert(fin);
	settle_client_close(c);
	return st;
}

static int tx_state(const char *gid, char *xid_text, size_t cap)
{
	settle_client *c = app_client();
	Settle__V1__TxInfo *tx = NULL;
	int st;

	cr_assert_eq(settle_query(c, gid, false, &tx), 0, "query %s: %s", gid,
		     settle_client_errmsg(c));
	st = (int)tx->state;
	if (xid_text != NULL)
		snprintf(xid_text, cap, "%s", tx->xid);
	settle_tx_info_free(tx);
	settle_client_close(c);
	return st;
}

static void expect_money(long long alice, long long bob)
{
	struct it_account a = it_bank_account(&bank_a, "alice");
	struct it_account b = it_bank_account(&bank_b, "bob");

	cr_assert_eq(a.balance, alice, "alice %lld, want %lld", a.balance,
		     alice);
	cr_assert_eq(b.balance, bob, "bob %lld, want %lld", b.balance, bob);
	cr_assert_eq(a.frozen, 0, "alice has %lld frozen", a.frozen);
	cr_assert_eq(b.incoming, 0, "bob has %lld incoming", b.incoming);
}

/* The participants received x itself, byte for byte, with method. */
static void expect_xid_at_participant(const XID *x, const char *gid, int method)
{
	uint8_t want[XA_XID_WIRE_MAX], got[XA_XID_WIRE_MAX];
	size_t wlen, glen = 0;
	struct xa_xid y;

	cr_assert_eq(
	    xa_xid_init(&y, x->formatID, x->data, (size_t)x->gtrid_length,
			x->data + x->gtrid_length, (size_t)x->bqual_length),
	    0);
	cr_assert_eq(xa_xid_encode(&y, want, sizeof(want), &wlen), 0);
	cr_assert(sp_wait(&recorder, method, gid, got, &glen, 30000),
		  "no %s of %s reached the participant",
		  method == SETTLE__V1__METHOD__CONFIRM ? "Confirm" : "Cancel",
		  gid);
	cr_assert_eq(glen, wlen, "xid of %zu bytes, want %zu", glen, wlen);
	cr_assert_arr_eq(got, want, wlen, "the participant got another XID");
}

static int open_rm(void)
{
	return sw->xa_open_entry(info, RM, TMNOFLAGS);
}

Test(xa_switch_cluster, begin_prepare_commit_rollback)
{
	XID c1 = mkxid(0x4a544d, "tm-commit", "rm1");
	XID r1 = mkxid(0x4a544d, "tm-rollback", "rm1");
	XID ro = mkxid(0x4a544d, "tm-readonly", "rm1");
	XID op = mkxid(0x4a544d, "tm-onephase", "rm1");
	char gid[SETTLE_GID_BUFSIZE], want[XA_XID_GID_LEN + 1];
	char text[XA_XID_TEXT_MAX], seen[XA_XID_TEXT_MAX];
	int rc;

	world_start();
	cr_assert_eq(open_rm(), XA_OK, "%s", errmsg(RM));

	/* Two-phase commit: the TCC branches are confirmed. */
	app_work(&c1, 10, gid);
	xid_gid(&c1, want, text);
	cr_assert_str_eq(gid, want);
	rc = sw->xa_prepare_entry(&c1, RM, TMNOFLAGS);
	cr_assert_eq(rc, XA_OK, "xa_prepare: %d %s", rc, errmsg(RM));
	cr_assert_eq(tx_state(gid, seen, sizeof(seen)),
		     SETTLE__V1__TX_STATE__XA_PREPARED);
	/* The cluster holds the TM's XID byte for byte. */
	cr_assert_str_eq(seen, text);
	rc = sw->xa_commit_entry(&c1, RM, TMNOFLAGS);
	cr_assert_eq(rc, XA_OK, "xa_commit: %d %s", rc, errmsg(RM));
	cr_assert_eq(wait_final(gid), SETTLE__V1__TX_STATE__COMMITTED);
	expect_money(START - 10, START + 10);
	expect_xid_at_participant(&c1, gid, SETTLE__V1__METHOD__CONFIRM);

	/* Rollback after prepare: cancelled, no money moves. */
	app_work(&r1, 7, gid);
	cr_assert_eq(sw->xa_prepare_entry(&r1, RM, TMNOFLAGS), XA_OK, "%s",
		     errmsg(RM));
	rc = sw->xa_rollback_entry(&r1, RM, TMNOFLAGS);
	cr_assert_eq(rc, XA_OK, "xa_rollback: %d %s", rc, errmsg(RM));
	cr_assert_eq(wait_final(gid), SETTLE__V1__TX_STATE__ROLLED_BACK);
	expect_money(START - 10, START + 10);
	expect_xid_at_participant(&r1, gid, SETTLE__V1__METHOD__CANCEL);

	/* Nothing registered: read-only, already complete. */
	app_work(&ro, 0, gid);
	cr_assert_eq(sw->xa_prepare_entry(&ro, RM, TMNOFLAGS), XA_RDONLY, "%s",
		     errmsg(RM));
	cr_assert_eq(tx_state(gid, NULL, 0), SETTLE__V1__TX_STATE__COMMITTED);

	/* One phase. */
	app_work(&op, 5, gid);
	rc = sw->xa_commit_entry(&op, RM, TMONEPHASE);
	cr_assert_eq(rc, XA_OK, "xa_commit(TMONEPHASE): %d %s", rc, errmsg(RM));
	cr_assert_eq(wait_final(gid), SETTLE__V1__TX_STATE__COMMITTED);
	expect_money(START - 15, START + 15);

	/* The same XID again is a duplicate; an unknown one is NOTA. */
	cr_assert_eq(sw->xa_start_entry(&c1, RM, TMNOFLAGS), XAER_DUPID);
	XID nobody = mkxid(0x4a544d, "never-begun", "rm1");
	cr_assert_eq(sw->xa_commit_entry(&nobody, RM, TMNOFLAGS), XAER_NOTA);
	cr_assert_eq(sw->xa_close_entry(info, RM, TMNOFLAGS), XA_OK);
}

Test(xa_switch_cluster, leader_failover_between_prepare_and_commit)
{
	XID x = mkxid(0x4a544d, "tm-failover", "rm1");
	char gid[SETTLE_GID_BUFSIZE];
	int ld, rc;

	world_start();
	cr_assert_eq(open_rm(), XA_OK, "%s", errmsg(RM));
	app_work(&x, 25, gid);
	rc = sw->xa_prepare_entry(&x, RM, TMNOFLAGS);
	cr_assert_eq(rc, XA_OK, "xa_prepare: %d %s", rc, errmsg(RM));

	ld = fu_leader(&cluster, 20000);
	cr_assert_geq(ld, 0, "no leader");
	fprintf(stderr, "SIGKILL leader node %d between prepare and commit\n",
		cluster.nodes[ld].id);
	fu_kill(&cluster, ld);
	cr_assert_geq(fu_leader_except(&cluster, ld, 30000), 0,
		      "no new leader");

	/* The prepared state was durable on a majority: it is still there
	 * on the new leader, and the TM's commit completes it. */
	cr_assert_eq(tx_state(gid, NULL, 0), SETTLE__V1__TX_STATE__XA_PREPARED);
	rc = sw->xa_commit_entry(&x, RM, TMNOFLAGS);
	cr_assert_eq(rc, XA_OK, "xa_commit after failover: %d %s", rc,
		     errmsg(RM));
	cr_assert_eq(wait_final(gid), SETTLE__V1__TX_STATE__COMMITTED);
	expect_money(START - 25, START + 25);
	expect_xid_at_participant(&x, gid, SETTLE__V1__METHOD__CONFIRM);

	/* The old leader comes back and agrees. */
	fu_restart(&cluster, ld);
	cr_assert(fu_wait_caught_up(&cluster, 20000));
	cr_assert_eq(sw->xa_close_entry(info, RM, TMNOFLAGS), XA_OK);
	for (int i = 0; i < cluster.n; i++)
		it_stop(cluster.nodes[i].proc);
	fu_assert_no_sanitizer_reports(&cluster);
}

/* ---- a TM restart -------------------------------------------------------- */

#define N_PREPARED 3

struct tm_life {
	XID prepared[N_PREPARED];
	XID committed;
	int rc;
	char why[256];
};

/* The TM's first life: prepares N_PREPARED transactions, commits one
 * more, then its thread ends with no xa_close (it "crashed"). */
static void *first_life(void *p)
{
	struct tm_life *t = p;
	char gid[SETTLE_GID_BUFSIZE];

	t->rc = open_rm();
	for (int i = 0; i < N_PREPARED && t->rc == XA_OK; i++) {
		app_work(&t->prepared[i], 1, gid);
		t->rc = sw->xa_prepare_entry(&t->prepared[i], RM, TMNOFLAGS);
	}
	if (t->rc == XA_OK) {
		app_work(&t->committed, 1, gid);
		t->rc = sw->xa_commit_entry(&t->committed, RM, TMONEPHASE);
	}
	snprintf(t->why, sizeof(t->why), "%s", errmsg(RM));
	return NULL;
}

/* The second life: a fresh thread opens the RM and recovers, two XIDs
 * per xa_recover call, then commits the first prepared XID and rolls
 * back the others. */
static void *second_life(void *p)
{
	struct tm_life *t = p;
	XID found[2 * N_PREPARED + 2];
	int n = 0, got;
	long flags = TMSTARTRSCAN;

	t->rc = open_rm();
	if (t->rc != XA_OK)
		goto out;
	do {
		got = sw->xa_recover_entry(found + n, 2, RM, flags);
		flags = TMNOFLAGS;
		if (got < 0) {
			t->rc = got;
			goto out;
		}
		n += got;
	} while (got == 2 && n + 2 <= (int)(sizeof(found) / sizeof(*found)));
	t->rc = n; /* checked by the test: exactly the prepared ones */
	for (int i = 0; i < n; i++) {
		int rc;

		if (xid_eq(&found[i], &t->prepared[0]))
			rc = sw->xa_commit_entry(&found[i], RM, TMNOFLAGS);
		else
			rc = sw->xa_rollback_entry(&found[i], RM, TMNOFLAGS);
		if (rc != XA_OK) {
			t->rc = -1000 + rc;
			break;
		}
	}
	/* What is left to recover: nothing. */
	if (t->rc == n &&
	    sw->xa_recover_entry(found, 8, RM, TMSTARTRSCAN | TMENDRSCAN) != 0)
		t->rc = -2000;
out:
	snprintf(t->why, sizeof(t->why), "%s", errmsg(RM));
	sw->xa_close_entry(info, RM, TMNOFLAGS);
	return NULL;
}

Test(xa_switch_cluster, recover_after_tm_restart)
{
	struct tm_life t;
	char gid[XA_XID_GID_LEN + 1];
	pthread_t th;
	XID found[8];
	int n;

	memset(&t, 0, sizeof(t));
	for (int i = 0; i < N_PREPARED; i++) {
		char g[32];

		snprintf(g, sizeof(g), "tm-restart-%d", i);
		t.prepared[i] = mkxid(0x4a544d, g, "rm1");
	}
	t.committed = mkxid(0x4a544d, "tm-restart-done", "rm1");
	world_start();

	cr_assert_eq(pthread_create(&th, NULL, first_life, &t), 0);
	pthread_join(th, NULL);
	cr_assert_eq(t.rc, XA_OK, "first life: %d %s", t.rc, t.why);

	/* The main thread never opened the RM: it may not recover. */
	cr_assert_eq(sw->xa_recover_entry(found, 8, RM, TMSTARTRSCAN),
		     XAER_PROTO);

	/* Restart the leader too: recovery reads what the log kept. */
	n = fu_leader(&cluster, 20000);
	cr_assert_geq(n, 0);
	fu_kill(&cluster, n);
	fu_restart(&cluster, n);

	cr_assert_eq(pthread_create(&th, NULL, second_life, &t), 0);
	pthread_join(th, NULL);
	cr_assert_eq(t.rc, N_PREPARED, "second life: %d %s", t.rc, t.why);

	xid_gid(&t.prepared[0], gid, NULL);
	cr_assert_eq(wait_final(gid), SETTLE__V1__TX_STATE__COMMITTED);
	for (int i = 1; i < N_PREPARED; i++) {
		xid_gid(&t.prepared[i], gid, NULL);
		cr_assert_eq(wait_final(gid),
			     SETTLE__V1__TX_STATE__ROLLED_BACK);
	}
	/* The one-phase commit and the recovered commit moved 1 each. */
	expect_money(START - 2, START + 2);
}

/* How many XIDs xa_recover lists, and whether x is one of them. */
static int recover_has(const XID *x, bool *found)
{
	XID out[16];
	int n = sw->xa_recover_entry(out, 16, RM, TMSTARTRSCAN | TMENDRSCAN);

	cr_assert_geq(n, 0, "xa_recover: %d %s", n, errmsg(RM));
	*found = false;
	for (int i = 0; i < n; i++)
		*found |= xid_eq(&out[i], x);
	return n;
}

/* The TM is gone with a prepared XID; an operator decides it by hand
 * (settlectl xa commit|rollback does settle_xa_heuristic()). The TM comes
 * back: it hears the heuristic, recovers the XID, and forgets it. */
Test(xa_switch_cluster, operators_heuristic_decision_reaches_the_tm)
{
	XID hc = mkxid(0x4a544d, "tm-heur-commit", "rm1");
	XID hr = mkxid(0x4a544d, "tm-heur-rollback", "rm1");
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *op;
	bool found;
	int rc, state = 0, heur = 0;

	world_start();
	cr_assert_eq(open_rm(), XA_OK, "%s", errmsg(RM));

	/* Committed by hand: the money moves; the TM's commit hears
	 * XA_HEURCOM, then again from the switch's memory (S5). */
	app_work(&hc, 10, gid);
	cr_assert_eq(sw->xa_prepare_entry(&hc, RM, TMNOFLAGS), XA_OK, "%s",
		     errmsg(RM));
	cr_assert(recover_has(&hc, &found) == 1 && found);
	op = app_client();
	cr_assert_eq(settle_xa_heuristic(op, gid, true,
					 "TM host lost for good (test)", &state,
					 &heur),
		     0, "%s", settle_client_errmsg(op));
	cr_assert_eq(heur, SETTLE__V1__HEURISTIC__HEUR_COMMIT);
	cr_assert_eq(wait_final(gid), SETTLE__V1__TX_STATE__COMMITTED);
	expect_money(START - 10, START + 10);
	rc = sw->xa_commit_entry(&hc, RM, TMNOFLAGS);
	cr_assert_eq(rc, XA_HEURCOM, "xa_commit: %d %s", rc, errmsg(RM));
	cr_assert_eq(sw->xa_rollback_entry(&hc, RM, TMNOFLAGS), XA_HEURCOM);
	/* Listed (final, heuristic not forgotten) until xa_forget. */
	recover_has(&hc, &found);
	cr_assert(found, "xa_recover does not list the heuristic XID");
	rc = sw->xa_forget_entry(&hc, RM, TMNOFLAGS);
	cr_assert_eq(rc, XA_OK, "xa_forget: %d %s", rc, errmsg(RM));
	recover_has(&hc, &found);
	cr_assert_not(found, "xa_recover lists a forgotten XID");

	/* Rolled back by hand: no money moves; the TM's commit hears
	 * XA_HEURRB (the coordinator refuses the commit and says why). */
	app_work(&hr, 7, gid);
	cr_assert_eq(sw->xa_prepare_entry(&hr, RM, TMNOFLAGS), XA_OK, "%s",
		     errmsg(RM));
	cr_assert_eq(settle_xa_heuristic(op, gid, false,
					 "TM host lost for good (test)", &state,
					 &heur),
		     0, "%s", settle_client_errmsg(op));
	cr_assert_eq(heur, SETTLE__V1__HEURISTIC__HEUR_ROLLBACK);
	/* Not XA_PREPARED any more: a second opposite decision is refused. */
	cr_assert_eq(
	    settle_xa_heuristic(op, gid, true, "changed my mind", NULL, NULL),
	    SETTLE_ESTATE);
	cr_assert_eq(wait_final(gid), SETTLE__V1__TX_STATE__ROLLED_BACK);
	expect_money(START - 10, START + 10);
	expect_xid_at_participant(&hr, gid, SETTLE__V1__METHOD__CANCEL);
	rc = sw->xa_commit_entry(&hr, RM, TMNOFLAGS);
	cr_assert_eq(rc, XA_HEURRB, "xa_commit: %d %s", rc, errmsg(RM));
	recover_has(&hr, &found);
	cr_assert(found);
	cr_assert_eq(sw->xa_forget_entry(&hr, RM, TMNOFLAGS), XA_OK, "%s",
		     errmsg(RM));
	recover_has(&hr, &found);
	cr_assert_not(found);
	settle_client_close(op);
	cr_assert_eq(sw->xa_close_entry(info, RM, TMNOFLAGS), XA_OK);
}

/* ---- The answer table (docs/XA.md "Answers") -------------------------- */

/* Branch states a verb can meet, as the TM sees them. */
enum tab_state {
	T_UNKNOWN,     /* never started */
	T_ACTIVE,      /* xa_start, the thread still associated */
	T_IDLE,	       /* xa_end(TMSUCCESS) */
	T_PREPARED,    /* xa_prepare: XA_OK */
	T_READ_ONLY,   /* xa_prepare: XA_RDONLY (no branch) */
	T_COMMITTED,   /* prepared, xa_commit */
	T_RB_CLIENT,   /* idle, xa_rollback */
	T_RB_DEADLINE, /* idle, rolled back by its deadline */
	T_HEUR_COMMIT, /* prepared, committed by an operator */
	T_HEUR_RB,     /* prepared, rolled back by an operator */
	T_N
};
static const char *const tab_state_name[T_N] = {"unknown",
						"active",
						"idle",
						"prepared",
						"read-only",
						"committed",
						"rolled back by the client",
						"rolled back by the deadline",
						"heuristically committed",
						"heuristically rolled back"};

/* Verbs with their flags; the names are switch_tm's. */
enum tab_verb { V_COMMIT, V_COMMIT1, V_ROLLBACK, V_PREPARE, V_FORGET, V_END };
static const char *const tab_verb_name[] = {"commit",  "commit1", "rollback",
					    "prepare", "forget",  "end"};
#define V_N 6

/* The expected answer in the process that began the branch and in
 * another one, and whether xa_recover lists the XID afterwards there. */
struct tab_cell {
	int self, other;
	bool listed_self, listed_other;
};

#define SAME(rc, l)                                                            \
	{                                                                      \
		rc, rc, l, l                                                   \
	}
/* Every row: docs/XA.md's table, cell for cell. */
static const struct tab_cell tab[T_N][V_N] = {
    [T_UNKNOWN] = {SAME(XAER_NOTA, false), SAME(XAER_NOTA, false),
		   SAME(XAER_NOTA, false), SAME(XAER_NOTA, false),
		   SAME(XAER_NOTA, false), SAME(XAER_NOTA, false)},
    /* The coordinator does not know associations: another process's
     * verb acts on a branch a thread still works on (docs/XA.md). */
    [T_ACTIVE] = {SAME(XAER_PROTO, false),
		  {XAER_PROTO, XA_OK, false, false},
		  {XAER_PROTO, XA_OK, false, false},
		  {XAER_PROTO, XA_OK, false, true},
		  SAME(XAER_PROTO, false),
		  {XA_OK, XAER_PROTO, false, false}},
    [T_IDLE] = {SAME(XAER_PROTO, false), SAME(XA_OK, false), SAME(XA_OK, false),
		SAME(XA_OK, true), SAME(XAER_PROTO, false),
		SAME(XAER_PROTO, false)},
    [T_PREPARED] = {SAME(XA_OK, false), SAME(XAER_PROTO, true),
		    SAME(XA_OK, false), SAME(XAER_PROTO, true),
		    SAME(XAER_PROTO, true), SAME(XAER_PROTO, true)},
    [T_READ_ONLY] = {SAME(XAER_NOTA, false), SAME(XAER_NOTA, false),
		     SAME(XAER_NOTA, false), SAME(XA_RDONLY, false),
		     SAME(XAER_NOTA, false), SAME(XAER_NOTA, false)},
    [T_COMMITTED] = {SAME(XA_OK, false), SAME(XA_OK, false),
		     SAME(XAER_NOTA, false), SAME(XAER_NOTA, false),
		     SAME(XAER_NOTA, false), SAME(XAER_NOTA, false)},
    [T_RB_CLIENT] = {SAME(XAER_NOTA, false), SAME(XA_RBROLLBACK, false),
		     SAME(XA_OK, false), SAME(XA_RBROLLBACK, false),
		     SAME(XAER_NOTA, false), SAME(XAER_NOTA, false)},
    [T_RB_DEADLINE] = {SAME(XAER_NOTA, false), SAME(XA_RBROLLBACK, false),
		       SAME(XA_OK, false), SAME(XA_RBROLLBACK, false),
		       SAME(XAER_NOTA, false), SAME(XAER_NOTA, false)},
    [T_HEUR_COMMIT] = {SAME(XA_HEURCOM, true), SAME(XA_HEURCOM, true),
		       SAME(XA_HEURCOM, true), SAME(XAER_PROTO, true),
		       SAME(XA_OK, false), SAME(XAER_PROTO, true)},
    [T_HEUR_RB] = {SAME(XA_HEURRB, true), SAME(XA_HEURRB, true),
		   SAME(XA_HEURRB, true), SAME(XAER_PROTO, true),
		   SAME(XA_OK, false), SAME(XAER_PROTO, true)},
};

#define RM_SHORT 2 /* this process's rmid whose transactions time out */
static char info_short[MAXINFOSIZE];
static settle_client *tab_app;

static XID tab_xid(int st, int v, int other)
{
	char g[32];

	snprintf(g, sizeof(g), "tab-%d-%d-%d", st, v, other);
	return mkxid(0x544142, g, "b1");
}

/* Drive x (on rmid rm of this thread) to state st, up to its wait. */
static void tab_build(XID *x, int rm, enum tab_state st)
{
	char gid[SETTLE_GID_BUFSIZE];
	uint32_t id;
	int rc;

	if (st == T_UNKNOWN)
		return;
	rc = sw->xa_start_entry(x, rm, TMNOFLAGS);
	cr_assert_eq(rc, XA_OK, "xa_start: %d %s", rc, errmsg(rm));
	cr_assert_eq(current_gid(rm, gid, sizeof(gid)), 0);
	/* A branch to confirm or cancel, so that prepare is not read-only. */
	if (st != T_READ_ONLY)
		cr_assert_eq(settle_register_branch(tab_app, gid,
						    recorder.endpoint, "rec",
						    "r", 1, &id),
			     0, "%s", settle_client_errmsg(tab_app));
	if (st == T_ACTIVE)
		return;
	cr_assert_eq(sw->xa_end_entry(x, rm, TMSUCCESS), XA_OK, "%s",
		     errmsg(rm));
	if (st == T_IDLE || st == T_RB_DEADLINE)
		return;
	if (st == T_RB_CLIENT) {
		cr_assert_eq(sw->xa_rollback_entry(x, rm, TMNOFLAGS), XA_OK);
		return;
	}
	rc = sw->xa_prepare_entry(x, rm, TMNOFLAGS);
	cr_assert_eq(rc, st == T_READ_ONLY ? XA_RDONLY : XA_OK, "prepare: %d",
		     rc);
	if (st == T_COMMITTED) {
		cr_assert_eq(sw->xa_commit_entry(x, rm, TMNOFLAGS), XA_OK);
		cr_assert_eq(wait_final(gid), SETTLE__V1__TX_STATE__COMMITTED);
	} else if (st == T_HEUR_COMMIT || st == T_HEUR_RB) {
		cr_assert_eq(
		    settle_xa_heuristic(tab_app, gid, st == T_HEUR_COMMIT,
					"answer table (test)", NULL, NULL),
		    0, "%s", settle_client_errmsg(tab_app));
		wait_final(gid);
	}
}

/* verb on x in this process (rmid rm). */
static int tab_self(XID *x, int rm, enum tab_verb v)
{
	switch (v) {
	case V_COMMIT:
		return sw->xa_commit_entry(x, rm, TMNOFLAGS);
	case V_COMMIT1:
		return sw->xa_commit_entry(x, rm, TMONEPHASE);
	case V_ROLLBACK:
		return sw->xa_rollback_entry(x, rm, TMNOFLAGS);
	case V_PREPARE:
		return sw->xa_prepare_entry(x, rm, TMNOFLAGS);
	case V_FORGET:
		return sw->xa_forget_entry(x, rm, TMNOFLAGS);
	default:
		return sw->xa_end_entry(x, rm, TMSUCCESS);
	}
}

/* verb ("listed": xa_recover) on x in a fresh process: xa/tests/switch_tm. */
static int tab_other(const XID *x, const char *verb)
{
	char path[1024], fmt[32], g[XIDDATASIZE + 1], q[XIDDATASIZE + 1];
	char *out = NULL, *err = NULL;
	int status, rc;

	snprintf(path, sizeof(path), "%s/xa/tests/switch_tm", it_build_dir());
	snprintf(fmt, sizeof(fmt), "%ld", x->formatID);
	snprintf(g, sizeof(g), "%.*s", (int)x->gtrid_length, x->data);
	snprintf(q, sizeof(q), "%.*s", (int)x->bqual_length,
		 x->data + x->gtrid_length);
	char *const argv[] = {path, info, (char *)verb, fmt, g, q, NULL};
	status = it_run(argv, &out, &err, 60000);
	cr_assert_eq(status, 0, "switch_tm %s: status %d: %s", verb, status,
		     err ? err : "");
	rc = atoi(out);
	free(out);
	free(err);
	return rc;
}

/* Whether xa_recover lists x in this process (all pages). */
static bool tab_listed_self(const XID *x)
{
	long flags = TMSTARTRSCAN;
	XID out[16];
	int n;

	do {
		n = sw->xa_recover_entry(out, 16, RM, flags);
		cr_assert_geq(n, 0, "xa_recover: %d %s", n, errmsg(RM));
		for (int i = 0; i < n; i++)
			if (xid_eq(&out[i], x))
				return true;
		flags = TMNOFLAGS;
	} while (n == 16);
	return false;
}

/*
 * Every (branch state x verb x flags x calling process) against a real
 * cluster: this process began each branch (its switch tracks it); the
 * other process is xa/tests/switch_tm, exec'd fresh for each verb. Each
 * cell gets its own XID; after the verb, xa_recover says whether the XID
 * is still to be resolved (prepared, or a heuristic not forgotten).
 */
Test(xa_switch_cluster, answer_table, .timeout = 600)
{
	XID dl[V_N][2];
	int failures = 0;

	world_start();
	snprintf(info_short, sizeof(info_short),
		 "endpoints=%s;timeout_ms=1500;retry_budget_ms=30000",
		 cluster.endpoints);
	cr_assert_eq(open_rm(), XA_OK, "%s", errmsg(RM));
	cr_assert_eq(sw->xa_open_entry(info_short, RM_SHORT, TMNOFLAGS), XA_OK,
		     "%s", errmsg(RM_SHORT));
	tab_app = app_client();

	/* The deadline rows first, all at once, then one wait. */
	for (int v = 0; v < V_N; v++)
		for (int o = 0; o < 2; o++) {
			dl[v][o] = tab_xid(T_RB_DEADLINE, v, o);
			tab_build(&dl[v][o], RM_SHORT, T_RB_DEADLINE);
		}
	for (int v = 0; v < V_N; v++)
		for (int o = 0; o < 2; o++) {
			char gid[XA_XID_GID_LEN + 1];

			xid_gid(&dl[v][o], gid, NULL);
			cr_assert_eq(wait_final(gid),
				     SETTLE__V1__TX_STATE__ROLLED_BACK);
		}

	for (int st = 0; st < T_N; st++)
		for (int v = 0; v < V_N; v++)
			for (int o = 0; o < 2; o++) {
				const struct tab_cell *c = &tab[st][v];
				int rm = st == T_RB_DEADLINE ? RM_SHORT : RM;
				XID x = st == T_RB_DEADLINE ? dl[v][o]
							    : tab_xid(st, v, o);
				int want = o ? c->other : c->self;
				bool lwant =
				    o ? c->listed_other : c->listed_self;
				int rc;
				bool listed;

				if (st != T_RB_DEADLINE)
					tab_build(&x, rm, (enum tab_state)st);
				rc = o ? tab_other(&x, tab_verb_name[v])
				       : tab_self(&x, rm, (enum tab_verb)v);
				/* Listed for every process alike. */
				listed = tab_listed_self(&x);
				cr_expect_eq(
				    listed, tab_other(&x, "listed") == 1,
				    "%s / %s: xa_recover differs "
				    "between processes",
				    tab_state_name[st], tab_verb_name[v]);
				if (rc != want || listed != lwant) {
					failures++;
					cr_log_error(
					    "%s / %s / %s process: %d, want "
					    "%d; listed %d, want %d (%s)",
					    tab_state_name[st],
					    tab_verb_name[v],
					    o ? "another" : "the same", rc,
					    want, listed, lwant,
					    o ? "" : errmsg(rm));
				}
				/* Leave nothing behind: no association, no
				 * prepared or heuristic XID. */
				if (st == T_ACTIVE)
					sw->xa_end_entry(&x, rm, TMSUCCESS);
				sw->xa_rollback_entry(&x, rm, TMNOFLAGS);
				sw->xa_forget_entry(&x, rm, TMNOFLAGS);
			}
	cr_assert_eq(failures, 0, "%d cells differ from the table", failures);
	settle_client_close(tab_app);
	cr_assert_eq(sw->xa_close_entry(info_short, RM_SHORT, TMNOFLAGS),
		     XA_OK);
	cr_assert_eq(sw->xa_close_entry(info, RM, TMNOFLAGS), XA_OK);
}

int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	criterion_options.jobs = 1;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}

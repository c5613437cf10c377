/*
 * test_switch.c — Settle's xa_switch_t (xa/switch.c) driven the way a
 * transaction manager drives it, against the in-memory coordinator of
 * switch_fake.c: every verb and flag, the XA codes of every coordinator
 * answer, the xa_recover cursor across calls and pages, a TM restart in a
 * fresh thread, and hostile arguments.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "client/settle.h"

#include "switch_fake.h"
#include "xa/settle_xa.h"
#include "xa/settle_xa_ext.h"
#include "xa/xid.h"

#define RM	3
#define SW	(&settle_xa_switch)
#define TX(x)	SETTLE__V1__TX_STATE__##x
#define HEUR(x) SETTLE__V1__HEURISTIC__##x

static struct sf fake;
static char info[256];

static void setup(void)
{
	sf_start(&fake);
	/* Short budgets: a down coordinator answers XAER_RMFAIL quickly. */
	snprintf(info, sizeof(info),
		 "endpoints=%s;retry_budget_ms=300;call_timeout_ms=1000;"
		 "connect_timeout_ms=200;timeout_ms=60000",
		 fake.endpoint);
}

static void teardown(void)
{
	SW->xa_close_entry(info, RM, TMNOFLAGS);
	sf_stop(&fake);
}

TestSuite(xa_switch, .init = setup, .fini = teardown, .timeout = 60);

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

/* The gid the coordinator (and the library) derive from x. */
static void gid_of(const XID *x, char gid[XA_XID_GID_LEN + 1])
{
	struct xa_xid y;

	cr_assert_eq(
	    xa_xid_init(&y, x->formatID, x->data, (size_t)x->gtrid_length,
			x->data + x->gtrid_length, (size_t)x->bqual_length),
	    0);
	cr_assert_eq(xa_xid_gid(&y, gid), 0);
}

static void wire_of(const XID *x, uint8_t *wire, size_t *len)
{
	struct xa_xid y;

	cr_assert_eq(
	    xa_xid_init(&y, x->formatID, x->data, (size_t)x->gtrid_length,
			x->data + x->gtrid_length, (size_t)x->bqual_length),
	    0);
	cr_assert_eq(xa_xid_encode(&y, wire, XA_XID_WIRE_MAX, len), 0);
}

static void open_rm(void)
{
	cr_assert_eq(SW->xa_open_entry(info, RM, TMNOFLAGS), XA_OK, "%s",
		     settle_xa_errmsg(RM));
}

/* xa_start .. xa_end(TMSUCCESS) with one TCC branch registered through
 * libsettle under the gid the library hands out. */
static void work(XID *x)
{
	char gid[64];
	settle_client *c;
	uint32_t id;

	cr_assert_eq(SW->xa_start_entry(x, RM, TMNOFLAGS), XA_OK, "%s",
		     settle_xa_errmsg(RM));
	cr_assert_eq(settle_xa_current_gid(RM, gid, sizeof(gid)), 0);
	cr_assert_eq(settle_client_open(fake.endpoint, NULL, &c), 0);
	cr_assert_eq(
	    settle_register_branch(c, gid, "127.0.0.1:9", "r", "p", 1, &id), 0,
	    "%s", settle_client_errmsg(c));
	settle_client_close(c);
	cr_assert_eq(SW->xa_end_entry(x, RM, TMSUCCESS), XA_OK, "%s",
		     settle_xa_errmsg(RM));
}

/* ---- the switch itself -------------------------------------------------- */

Test(xa_switch, switch_fields)
{
	cr_assert_str_eq(SW->name, "settle");
	cr_assert_eq(SW->flags, TMNOMIGRATE);
	cr_assert_eq(SW->version, 0);
	cr_assert_not_null(SW->xa_open_entry);
	cr_assert_not_null(SW->xa_close_entry);
	cr_assert_not_null(SW->xa_start_entry);
	cr_assert_not_null(SW->xa_end_entry);
	cr_assert_not_null(SW->xa_rollback_entry);
	cr_assert_not_null(SW->xa_prepare_entry);
	cr_assert_not_null(SW->xa_commit_entry);
	cr_assert_not_null(SW->xa_recover_entry);
	cr_assert_not_null(SW->xa_forget_entry);
	cr_assert_not_null(SW->xa_complete_entry);
}

/* ---- xa_open / xa_close ------------------------------------------------- */

Test(xa_switch, open_refuses_bad_info)
{
	static const char *const bad[] = {
	    "",
	    "junk",
	    "endpoints",
	    "=x",
	    "endpoints=",
	    "timeout_ms=5",
	    "endpoints=127.0.0.1:1;colour=blue",
	    "endpoints=127.0.0.1:1;endpoints=127.0.0.1:2",
	    "endpoints=127.0.0.1:1;timeout_ms=-1",
	    "endpoints=127.0.0.1:1;timeout_ms=4294967296",
	    "endpoints=127.0.0.1:1;timeout_ms=12x",
	    "endpoints=127.0.0.1:1;timeout_ms=",
	    "endpoints=no-port-here",
	    "endpoints=127.0.0.1:99999",
	};
	char longinfo[400];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_expect_eq(SW->xa_open_entry((char *)bad[i], RM, TMNOFLAGS),
			     XAER_INVAL, "info \"%s\"", bad[i]);
		cr_expect_neq(settle_xa_errmsg(RM)[0], '\0', "no reason for %s",
			      bad[i]);
	}
	cr_assert_eq(SW->xa_open_entry(NULL, RM, TMNOFLAGS), XAER_INVAL);
	memset(longinfo, 'a', sizeof(longinfo) - 1);
	longinfo[sizeof(longinfo) - 1] = '\0';
	memcpy(longinfo, "endpoints=", 10);
	cr_assert_eq(SW->xa_open_entry(longinfo, RM, TMNOFLAGS), XAER_INVAL);
	cr_assert(strstr(settle_xa_errmsg(RM), "longer") != NULL, "%s",
		  settle_xa_errmsg(RM));
	/* Nothing was opened by the failures. */
	XID x = mkxid(1, "g", "b");
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XAER_PROTO);
}

Test(xa_switch, open_flags_and_twice)
{
	cr_assert_eq(SW->xa_open_entry(info, RM, TMASYNC), XAER_INVAL);
	cr_assert_eq(SW->xa_open_entry(info, RM, TMJOIN), XAER_INVAL);
	open_rm();
	open_rm(); /* again: fine */
	cr_assert_eq(SW->xa_close_entry(info, RM, TMASYNC), XAER_INVAL);
	cr_assert_eq(SW->xa_close_entry(info, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_close_entry(info, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_close_entry(NULL, 42, TMNOFLAGS), XA_OK);
}

Test(xa_switch, open_with_every_key)
{
	char all[256];

	snprintf(all, sizeof(all),
		 "endpoints=%s;timeout_ms=1000;commit_wait_ms=0;;"
		 "call_timeout_ms=1000;connect_timeout_ms=100;"
		 "retry_budget_ms=200;",
		 fake.endpoint);
	cr_assert_eq(SW->xa_open_entry(all, RM, TMNOFLAGS), XA_OK, "%s",
		     settle_xa_errmsg(RM));
	XID x = mkxid(7, "all", "1");
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XA_OK);
}

Test(xa_switch, every_verb_needs_open)
{
	XID x = mkxid(1, "g", "b"), xs[4];
	int h, r;

	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XAER_PROTO);
	cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_commit_entry(&x, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_rollback_entry(&x, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_forget_entry(&x, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_recover_entry(xs, 4, RM, TMSTARTRSCAN), XAER_PROTO);
	cr_assert_eq(SW->xa_complete_entry(&h, &r, RM, TMNOFLAGS), XAER_PROTO);
	/* Another rmid than the one opened. */
	open_rm();
	cr_assert_eq(SW->xa_start_entry(&x, RM + 1, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_prepare_entry(&x, -5, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(sf_calls(&fake, SETTLE__V1__METHOD__BEGIN), 0);
}

Test(xa_switch, bad_xids_and_flags)
{
	XID ok = mkxid(1, "g", "b"), bad = ok, xs[2];

	open_rm();
	cr_assert_eq(SW->xa_start_entry(NULL, RM, TMNOFLAGS), XAER_INVAL);
	cr_assert_eq(SW->xa_end_entry(NULL, RM, TMSUCCESS), XAER_INVAL);
	cr_assert_eq(SW->xa_prepare_entry(NULL, RM, 0), XAER_INVAL);
	cr_assert_eq(SW->xa_commit_entry(NULL, RM, 0), XAER_INVAL);
	cr_assert_eq(SW->xa_rollback_entry(NULL, RM, 0), XAER_INVAL);
	cr_assert_eq(SW->xa_forget_entry(NULL, RM, 0), XAER_INVAL);
	bad.formatID = -1; /* the null XID */
	cr_assert_eq(SW->xa_start_entry(&bad, RM, TMNOFLAGS), XAER_INVAL);
	bad = ok;
	bad.gtrid_length = 0;
	cr_assert_eq(SW->xa_start_entry(&bad, RM, TMNOFLAGS), XAER_INVAL);
	bad = ok;
	bad.bqual_length = 65;
	cr_assert_eq(SW->xa_start_entry(&bad, RM, TMNOFLAGS), XAER_INVAL);
	bad = ok;
	bad.gtrid_length = -3;
	cr_assert_eq(SW->xa_prepare_entry(&bad, RM, TMNOFLAGS), XAER_INVAL);
	bad = ok;
	bad.formatID = (long)INT32_MAX + 1;
	cr_assert_eq(SW->xa_commit_entry(&bad, RM, TMNOFLAGS), XAER_INVAL);

	cr_assert_eq(SW->xa_start_entry(&ok, RM, TMJOIN | TMRESUME),
		     XAER_INVAL);
	cr_assert_eq(SW->xa_start_entry(&ok, RM, TMASYNC), XAER_INVAL);
	cr_assert_eq(SW->xa_start_entry(&ok, RM, TMSUCCESS), XAER_INVAL);
	cr_assert_eq(sf_calls(&fake, SETTLE__V1__METHOD__BEGIN), 0);
	cr_assert_eq(SW->xa_start_entry(&ok, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&ok, RM, TMNOFLAGS), XAER_INVAL);
	cr_assert_eq(SW->xa_end_entry(&ok, RM, TMSUCCESS | TMFAIL), XAER_INVAL);
	cr_assert_eq(SW->xa_end_entry(&ok, RM, TMSUCCESS | TMMIGRATE),
		     XAER_INVAL);
	cr_assert_eq(SW->xa_end_entry(&ok, RM, TMSUCCESS), XA_OK);
	cr_assert_eq(SW->xa_prepare_entry(&ok, RM, TMONEPHASE), XAER_INVAL);
	cr_assert_eq(SW->xa_commit_entry(&ok, RM, TMASYNC), XAER_INVAL);
	cr_assert_eq(SW->xa_rollback_entry(&ok, RM, TMJOIN), XAER_INVAL);
	cr_assert_eq(SW->xa_forget_entry(&ok, RM, TMONEPHASE), XAER_INVAL);
	cr_assert_eq(SW->xa_recover_entry(NULL, 3, RM, TMSTARTRSCAN),
		     XAER_INVAL);
	cr_assert_eq(SW->xa_recover_entry(xs, -1, RM, TMSTARTRSCAN),
		     XAER_INVAL);
	cr_assert_eq(SW->xa_recover_entry(xs, 2, RM, TMJOIN), XAER_INVAL);
	cr_assert_eq(SW->xa_complete_entry(NULL, NULL, RM, 0), XAER_INVAL);
	/* Still a sane branch after all that. */
	cr_assert_eq(SW->xa_rollback_entry(&ok, RM, TMNOFLAGS), XA_OK);
}

Test(xa_switch, close_while_associated)
{
	XID x = mkxid(1, "busy", "1");

	open_rm();
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_close_entry(info, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XA_OK);
	cr_assert_eq(SW->xa_rollback_entry(&x, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_close_entry(info, RM, TMNOFLAGS), XA_OK);
}

/* ---- xa_start / xa_end -------------------------------------------------- */

Test(xa_switch, start_begins_the_xid_transaction)
{
	XID x = mkxid(0x1234, "global-1", "branch-1");
	char want[XA_XID_GID_LEN + 1], got[64];

	open_rm();
	gid_of(&x, want);
	cr_assert_eq(settle_xa_current_gid(RM, got, sizeof(got)),
		     SETTLE_ESTATE);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(sf_state(&fake, want), TX(ACTIVE));
	cr_assert_eq(settle_xa_current_gid(RM, got, sizeof(got)), 0);
	cr_assert_str_eq(got, want);
	cr_assert_eq(settle_xa_current_gid(RM, got, 10), SETTLE_ETOOBIG);
	cr_assert_str_eq(got, "");
	cr_assert_eq(settle_xa_current_gid(RM, NULL, 10), SETTLE_EINVAL);
	cr_assert_eq(settle_xa_current_gid(RM + 1, got, sizeof(got)),
		     SETTLE_ESTATE);
	cr_assert_str_eq(settle_xa_errmsg(RM), "");

	/* Already associated: a second start is a protocol error. */
	XID y = mkxid(0x1234, "global-2", "branch-1");
	cr_assert_eq(SW->xa_start_entry(&y, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(sf_calls(&fake, SETTLE__V1__METHOD__BEGIN), 1);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XA_OK);
	cr_assert_eq(settle_xa_current_gid(RM, got, sizeof(got)),
		     SETTLE_ESTATE);
	/* Known here: a duplicate without asking the coordinator. */
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XAER_DUPID);
	cr_assert_eq(sf_calls(&fake, SETTLE__V1__METHOD__BEGIN), 1);
}

Test(xa_switch, start_of_an_xid_the_coordinator_knows_is_dupid)
{
	XID x = mkxid(1, "elsewhere", "1");
	uint8_t w[XA_XID_WIRE_MAX];
	size_t len;

	open_rm();
	wire_of(&x, w, &len);
	sf_add(&fake, w, len, TX(ACTIVE), 0, NULL);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XAER_DUPID);
	cr_assert(strstr(settle_xa_errmsg(RM), "EXISTS") != NULL, "%s",
		  settle_xa_errmsg(RM));
	/* Nothing associated: a new start works. */
	XID y = mkxid(1, "fresh", "1");
	cr_assert_eq(SW->xa_start_entry(&y, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&y, RM, TMSUCCESS), XA_OK);
}

Test(xa_switch, join_local_and_remote)
{
	XID x = mkxid(1, "joined", "1"), r = mkxid(1, "remote", "1");
	XID u = mkxid(1, "unknown", "1"), d = mkxid(1, "dead", "1");
	uint8_t w[XA_XID_WIRE_MAX];
	char gid[64];
	size_t len;

	open_rm();
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XA_OK);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMJOIN), XA_OK);
	cr_assert_eq(settle_xa_current_gid(RM, gid, sizeof(gid)), 0);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XA_OK);
	cr_assert_eq(sf_calls(&fake, SETTLE__V1__METHOD__BEGIN), 1);

	/* Begun by another process: joined at the coordinator. */
	wire_of(&r, w, &len);
	sf_add(&fake, w, len, TX(ACTIVE), 0, NULL);
	cr_assert_eq(SW->xa_start_entry(&r, RM, TMJOIN), XA_OK, "%s",
		     settle_xa_errmsg(RM));
	cr_assert_eq(sf_calls(&fake, SETTLE__V1__METHOD__BEGIN), 2);
	cr_assert_eq(SW->xa_end_entry(&r, RM, TMSUCCESS), XA_OK);
	cr_assert_eq(SW->xa_prepare_entry(&r, RM, TMNOFLAGS), XA_RDONLY);

	cr_assert_eq(SW->xa_start_entry(&u, RM, TMJOIN), XAER_NOTA);
	wire_of(&d, w, &len);
	sf_add(&fake, w, len, TX(ROLLED_BACK), 0, NULL);
	cr_assert_eq(SW->xa_start_entry(&d, RM, TMJOIN), XA_RBROLLBACK);
	/* TMRESUME of nothing suspended. */
	cr_assert_eq(SW->xa_start_entry(&u, RM, TMRESUME), XAER_NOTA);
	cr_assert_eq(SW->xa_rollback_entry(&x, RM, TMNOFLAGS), XA_OK);
}

Test(xa_switch, suspend_and_resume)
{
	XID x = mkxid(1, "susp", "1");
	char gid[64];

	open_rm();
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUSPEND), XA_OK);
	cr_assert_eq(settle_xa_current_gid(RM, gid, sizeof(gid)),
		     SETTLE_ESTATE);
	/* Suspended: only resume or end of that XID. */
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUSPEND), XAER_PROTO);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMJOIN), XAER_PROTO);
	cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMRESUME), XA_OK);
	cr_assert_eq(settle_xa_current_gid(RM, gid, sizeof(gid)), 0);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUSPEND | TMMIGRATE),
		     XA_NOMIGRATE);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMRESUME), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XA_OK);
	cr_assert_eq(SW->xa_commit_entry(&x, RM, TMONEPHASE), XA_OK);
	gid_of(&x, gid);
	cr_assert_eq(sf_state(&fake, gid), TX(COMMITTED));
}

/* ---- prepare / commit / rollback ---------------------------------------- */

Test(xa_switch, two_phase_commit)
{
	XID x = mkxid(42, "tpc", "b1");
	char gid[64];

	open_rm();
	gid_of(&x, gid);
	work(&x);
	/* Not prepared yet: a two-phase commit is out of order. */
	cr_assert_eq(SW->xa_commit_entry(&x, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS), XA_OK, "%s",
		     settle_xa_errmsg(RM));
	cr_assert_eq(sf_state(&fake, gid), TX(XA_PREPARED));
	cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_commit_entry(&x, RM, TMONEPHASE), XAER_PROTO);
	cr_assert_eq(SW->xa_commit_entry(&x, RM, TMNOFLAGS), XA_OK, "%s",
		     settle_xa_errmsg(RM));
	cr_assert_eq(sf_state(&fake, gid), TX(COMMITTED));
	/* Forgotten locally; the coordinator answers a repeat as done. */
	cr_assert_eq(SW->xa_commit_entry(&x, RM, TMNOFLAGS), XA_OK);
}

Test(xa_switch, read_only_prepare)
{
	XID x = mkxid(42, "ro", "b1");
	char gid[64];

	open_rm();
	gid_of(&x, gid);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XA_OK);
	cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS), XA_RDONLY);
	cr_assert_eq(sf_state(&fake, gid), TX(COMMITTED));
	/* RDONLY ended the branch here; the coordinator's transaction is
	 * over, so joining it is out of order. */
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMJOIN), XAER_PROTO);
	/* After XA_RDONLY the branch does not exist: no decision is a
	 * heuristic (XA_HEURCOM was answered here once), nothing to forget;
	 * a repeated prepare hears XA_RDONLY again. */
	cr_assert_eq(SW->xa_rollback_entry(&x, RM, TMNOFLAGS), XAER_NOTA);
	cr_assert_eq(SW->xa_commit_entry(&x, RM, TMNOFLAGS), XAER_NOTA);
	cr_assert_eq(SW->xa_commit_entry(&x, RM, TMONEPHASE), XAER_NOTA);
	cr_assert_eq(SW->xa_forget_entry(&x, RM, TMNOFLAGS), XAER_NOTA);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XAER_NOTA);
	cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS), XA_RDONLY);
	cr_assert_eq(sf_state(&fake, gid), TX(COMMITTED));
}

Test(xa_switch, one_phase_and_rollbacks)
{
	XID a = mkxid(1, "op", "1"), b = mkxid(1, "rb", "1");
	XID c = mkxid(1, "prb", "1");
	char ga[64], gb[64], gc[64];

	open_rm();
	gid_of(&a, ga);
	gid_of(&b, gb);
	gid_of(&c, gc);
	work(&a);
	cr_assert_eq(SW->xa_commit_entry(&a, RM, TMONEPHASE | TMNOWAIT), XA_OK);
	cr_assert_eq(sf_state(&fake, ga), TX(COMMITTED));

	work(&b);
	cr_assert_eq(SW->xa_rollback_entry(&b, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(sf_state(&fake, gb), TX(ROLLED_BACK));

	work(&c);
	cr_assert_eq(SW->xa_prepare_entry(&c, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_rollback_entry(&c, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(sf_state(&fake, gc), TX(ROLLED_BACK));

	/* Rolling back an associated branch is out of order. */
	XID d = mkxid(1, "assoc", "1");
	cr_assert_eq(SW->xa_start_entry(&d, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_rollback_entry(&d, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_end_entry(&d, RM, TMSUCCESS), XA_OK);
	cr_assert_eq(SW->xa_rollback_entry(&d, RM, TMNOFLAGS), XA_OK);
}

Test(xa_switch, tmfail_makes_rollback_only)
{
	XID x = mkxid(5, "fail", "1"), y = mkxid(5, "fail", "2");
	char gx[64], gy[64];

	open_rm();
	gid_of(&x, gx);
	gid_of(&y, gy);
	work(&x);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMJOIN), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMFAIL), XA_RBROLLBACK);
	/* Cancelled at once at the coordinator. */
	cr_assert_eq(sf_state(&fake, gx), TX(ROLLED_BACK));
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMJOIN), XA_RBROLLBACK);
	cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS), XA_RBROLLBACK);
	/* The XA_RB* of prepare ended the branch here. */
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMRESUME), XAER_NOTA);

	/* TMFAIL then the TM's own xa_rollback. */
	work(&y);
	cr_assert_eq(SW->xa_start_entry(&y, RM, TMJOIN), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&y, RM, TMFAIL), XA_RBROLLBACK);
	cr_assert_eq(SW->xa_commit_entry(&y, RM, TMONEPHASE), XA_RBROLLBACK);
	cr_assert_eq(sf_state(&fake, gy), TX(ROLLED_BACK));
}

Test(xa_switch, coordinator_rolled_back_before_prepare)
{
	XID x = mkxid(5, "deadline", "1"), y = mkxid(5, "deadline", "2");
	char gx[64], gy[64];

	open_rm();
	gid_of(&x, gx);
	gid_of(&y, gy);
	work(&x);
	sf_set(&fake, gx, TX(ROLLED_BACK), 0); /* the deadline passed */
	cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS), XA_RBROLLBACK);
	cr_assert(strstr(settle_xa_errmsg(RM), "ROLLED_BACK") != NULL, "%s",
		  settle_xa_errmsg(RM));
	work(&y);
	sf_set(&fake, gy, TX(ROLLING_BACK), 0);
	cr_assert_eq(SW->xa_commit_entry(&y, RM, TMONEPHASE), XA_RBROLLBACK);
}

Test(xa_switch, unknown_xids_are_nota)
{
	XID x = mkxid(9, "never", "1");

	open_rm();
	cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS), XAER_NOTA);
	cr_assert_eq(SW->xa_commit_entry(&x, RM, TMNOFLAGS), XAER_NOTA);
	cr_assert_eq(SW->xa_commit_entry(&x, RM, TMONEPHASE), XAER_NOTA);
	cr_assert_eq(SW->xa_rollback_entry(&x, RM, TMNOFLAGS), XAER_NOTA);
	cr_assert_eq(SW->xa_forget_entry(&x, RM, TMNOFLAGS), XAER_NOTA);
	cr_assert(strstr(settle_xa_errmsg(RM), "no transaction") != NULL, "%s",
		  settle_xa_errmsg(RM));
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XAER_NOTA);
}

Test(xa_switch, completes_what_another_process_prepared)
{
	XID a = mkxid(9, "other", "1"), b = mkxid(9, "other", "2");
	XID c = mkxid(9, "other", "3");
	uint8_t w[XA_XID_WIRE_MAX];
	char ga[64], gb[64], gc[64];
	size_t len;

	open_rm();
	wire_of(&a, w, &len);
	sf_add(&fake, w, len, TX(XA_PREPARED), 0, ga);
	wire_of(&b, w, &len);
	sf_add(&fake, w, len, TX(XA_PREPARED), 0, gb);
	wire_of(&c, w, &len);
	sf_add(&fake, w, len, TX(ACTIVE), 0, gc);
	cr_assert_eq(SW->xa_commit_entry(&a, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(sf_state(&fake, ga), TX(COMMITTED));
	cr_assert_eq(SW->xa_rollback_entry(&b, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(sf_state(&fake, gb), TX(ROLLED_BACK));
	/* Not prepared anywhere: a two-phase commit is out of order. */
	cr_assert_eq(SW->xa_commit_entry(&c, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_prepare_entry(&c, RM, TMNOFLAGS), XA_RDONLY);
}

Test(xa_switch, heuristic_outcomes)
{
	static const struct {
		int heur;
		int commit_rc;
	} cases[] = {
	    {HEUR(HEUR_HAZARD), XA_HEURHAZ},
	    {HEUR(HEUR_MIXED), XA_HEURMIX},
	    {HEUR(HEUR_ROLLBACK), XA_HEURRB},
	    /* Committed by a heuristic decision: reported although the
	     * TM commits too (it must forget it). */
	    {HEUR(HEUR_COMMIT), XA_HEURCOM},
	};
	uint8_t w[XA_XID_WIRE_MAX];
	char gid[64];
	size_t len;

	open_rm();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char g[8];
		XID x;

		snprintf(g, sizeof(g), "h%zu", i);
		x = mkxid(3, g, "1");
		wire_of(&x, w, &len);
		sf_add(&fake, w, len, TX(COMMITTED), cases[i].heur, gid);
		cr_expect_eq(SW->xa_commit_entry(&x, RM, TMNOFLAGS),
			     cases[i].commit_rc, "heuristic %d", cases[i].heur);
	}
	/* A rollback the coordinator refuses because it committed without
	 * a heuristic (another process committed it): no heuristic
	 * decision exists, so XAER_NOTA, and the branch is over here. */
	XID y = mkxid(3, "hc", "1");
	char gy[64];
	work(&y);
	gid_of(&y, gy);
	cr_assert_eq(SW->xa_prepare_entry(&y, RM, TMNOFLAGS), XA_OK);
	sf_set(&fake, gy, TX(COMMITTED), 0);
	cr_assert_eq(SW->xa_rollback_entry(&y, RM, TMNOFLAGS), XAER_NOTA, "%s",
		     settle_xa_errmsg(RM));
	cr_assert_eq(SW->xa_forget_entry(&y, RM, TMNOFLAGS), XAER_NOTA);
	cr_assert_eq(SW->xa_commit_entry(&y, RM, TMNOFLAGS), XA_OK);

	/* Committed with a heuristic after the prepare: S5 then forget. */
	XID z = mkxid(3, "hz", "1");
	char gz[64];
	work(&z);
	gid_of(&z, gz);
	cr_assert_eq(SW->xa_prepare_entry(&z, RM, TMNOFLAGS), XA_OK);
	sf_set(&fake, gz, TX(COMMITTED), HEUR(HEUR_MIXED));
	cr_assert_eq(SW->xa_commit_entry(&z, RM, TMNOFLAGS), XA_HEURMIX);
	/* Remembered here (S5): answered again without the coordinator. */
	int before = sf_calls(&fake, SETTLE__V1__METHOD__ROLLBACK);
	cr_assert_eq(SW->xa_rollback_entry(&z, RM, TMNOFLAGS), XA_HEURMIX);
	cr_assert_eq(sf_calls(&fake, SETTLE__V1__METHOD__ROLLBACK), before);
	cr_assert_eq(SW->xa_prepare_entry(&z, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_forget_entry(&z, RM, TMNOFLAGS), XA_OK);
	pthread_mutex_lock(&fake.lock);
	cr_assert_eq(sf_find(&fake, gz)->heuristic, 0);
	pthread_mutex_unlock(&fake.lock);
	cr_assert_eq(SW->xa_forget_entry(&z, RM, TMNOFLAGS), XAER_NOTA);
}

/* Rolled back without a heuristic decision, after the prepare (the TM's
 * own xa_rollback from another process) or before it (the deadline, while
 * idle in the process that began it, which used to answer XAER_PROTO
 * there and XA_HEURRB elsewhere): no XA_HEUR*, the same answers in both. */
Test(xa_switch, rolled_back_elsewhere_is_not_heuristic)
{
	open_rm();
	for (int prepared = 0; prepared < 2; prepared++) {
		XID x = mkxid(3, prepared ? "op-rb" : "dl", "1");
		char gx[64];

		work(&x);
		gid_of(&x, gx);
		if (prepared)
			cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS),
				     XA_OK);
		sf_set(&fake, gx, TX(ROLLED_BACK), 0);
		cr_assert_eq(SW->xa_commit_entry(&x, RM, TMNOFLAGS), XAER_NOTA,
			     "%s", settle_xa_errmsg(RM));
		cr_assert_eq(SW->xa_forget_entry(&x, RM, TMNOFLAGS), XAER_NOTA);
		cr_assert_eq(SW->xa_commit_entry(&x, RM, TMONEPHASE),
			     XA_RBROLLBACK);
		cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS),
			     XA_RBROLLBACK);
		cr_assert_eq(SW->xa_rollback_entry(&x, RM, TMNOFLAGS), XA_OK);
	}
}

/* An operator decides a prepared branch heuristically (the TM is gone),
 * through libsettle as settlectl does; then the TM comes back. */
static void operator_decides(const XID *x, bool commit)
{
	char g[XA_XID_GID_LEN + 1];
	settle_client *c;
	int state = -1, heur = -1;

	gid_of(x, g);
	cr_assert_eq(settle_client_open(fake.endpoint, NULL, &c), 0);
	cr_assert_eq(
	    settle_xa_heuristic(c, g, commit, "TM gone (test)", &state, &heur),
	    0, "%s", settle_client_errmsg(c));
	cr_assert_eq(heur, commit ? HEUR(HEUR_COMMIT) : HEUR(HEUR_ROLLBACK));
	settle_client_close(c);
}

/* Every TM verb on every heuristic decision: the spec's code, the branch
 * S5 (answered again without the coordinator) until xa_forget, then
 * forgotten at the coordinator too. */
Test(xa_switch, tm_hears_an_operators_heuristic_decision)
{
	static const struct {
		bool op_commit;
		bool tm_commit;
		int rc;
	} cases[] = {
	    {true, true, XA_HEURCOM},
	    {true, false, XA_HEURCOM},
	    {false, true, XA_HEURRB},
	    {false, false, XA_HEURRB},
	};

	open_rm();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char q[8], g[XA_XID_GID_LEN + 1];
		XID x;
		int rc;

		snprintf(q, sizeof(q), "%zu", i);
		x = mkxid(5, "heur-op", q);
		gid_of(&x, g);
		work(&x);
		cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS), XA_OK);
		operator_decides(&x, cases[i].op_commit);
		rc = cases[i].tm_commit
			 ? SW->xa_commit_entry(&x, RM, TMNOFLAGS)
			 : SW->xa_rollback_entry(&x, RM, TMNOFLAGS);
		cr_expect_eq(rc, cases[i].rc, "case %zu: %d", i, rc);
		cr_expect(strstr(settle_xa_errmsg(RM), "heuristic") != NULL,
			  "%s", settle_xa_errmsg(RM));
		/* S5: the same answer again, from memory. */
		int before = sf_calls(&fake, SETTLE__V1__METHOD__COMMIT) +
			     sf_calls(&fake, SETTLE__V1__METHOD__ROLLBACK);
		cr_expect_eq(SW->xa_commit_entry(&x, RM, TMNOFLAGS),
			     cases[i].rc);
		cr_expect_eq(SW->xa_rollback_entry(&x, RM, TMNOFLAGS),
			     cases[i].rc);
		cr_expect_eq(sf_calls(&fake, SETTLE__V1__METHOD__COMMIT) +
				 sf_calls(&fake, SETTLE__V1__METHOD__ROLLBACK),
			     before);
		cr_expect_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS),
			     XAER_PROTO);
		/* Listed by xa_recover until forgotten. */
		XID out[8];
		int n = SW->xa_recover_entry(out, 8, RM, TMSTARTRSCAN);
		cr_expect_eq(n, 1);
		cr_expect_eq(SW->xa_forget_entry(&x, RM, TMNOFLAGS), XA_OK);
		pthread_mutex_lock(&fake.lock);
		cr_expect_eq(sf_find(&fake, g)->heuristic, 0);
		pthread_mutex_unlock(&fake.lock);
		n = SW->xa_recover_entry(out, 8, RM, TMSTARTRSCAN | TMENDRSCAN);
		cr_expect_eq(n, 0);
		cr_expect_eq(SW->xa_forget_entry(&x, RM, TMNOFLAGS), XAER_NOTA);
	}
}

/* xa_rollback of every remembered heuristic, in either final state: the
 * code says how the work ended, whichever way the TM asks (a refused
 * rollback of a committed one included). */
Test(xa_switch, rollback_reports_every_heuristic)
{
	static const struct {
		int state;
		int heur;
		int rc;
	} cases[] = {
	    {TX(ROLLED_BACK), HEUR(HEUR_MIXED), XA_HEURMIX},
	    {TX(ROLLED_BACK), HEUR(HEUR_HAZARD), XA_HEURHAZ},
	    {TX(ROLLED_BACK), HEUR(HEUR_ROLLBACK), XA_HEURRB},
	    {TX(ROLLED_BACK), HEUR(HEUR_COMMIT), XA_HEURCOM},
	    {TX(COMMITTED), HEUR(HEUR_HAZARD), XA_HEURHAZ},
	    {TX(COMMITTED), HEUR(HEUR_MIXED), XA_HEURMIX},
	    {TX(COMMITTED), HEUR(HEUR_COMMIT), XA_HEURCOM},
	};
	uint8_t w[XA_XID_WIRE_MAX];
	char gid[64];
	size_t len;

	open_rm();
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char g[8];
		XID x;

		snprintf(g, sizeof(g), "r%zu", i);
		x = mkxid(3, g, "1");
		wire_of(&x, w, &len);
		sf_add(&fake, w, len, cases[i].state, cases[i].heur, gid);
		cr_expect_eq(SW->xa_rollback_entry(&x, RM, TMNOFLAGS),
			     cases[i].rc, "case %zu", i);
		cr_expect_eq(SW->xa_forget_entry(&x, RM, TMNOFLAGS), XA_OK,
			     "case %zu: %s", i, settle_xa_errmsg(RM));
	}
}

/* A TM restarted in another process: the branch is unknown here, the
 * coordinator remembers the heuristic. */
Test(xa_switch, recovered_heuristic_decision_from_another_process)
{
	uint8_t w[XA_XID_WIRE_MAX];
	char g[XA_XID_GID_LEN + 1];
	size_t len;
	XID x = mkxid(5, "heur-rec", "1");

	open_rm();
	wire_of(&x, w, &len);
	sf_add(&fake, w, len, TX(XA_PREPARED), 0, g);
	operator_decides(&x, false);
	cr_expect_eq(SW->xa_commit_entry(&x, RM, TMNOFLAGS), XA_HEURRB);
	cr_expect_eq(SW->xa_forget_entry(&x, RM, TMNOFLAGS), XA_OK);
	cr_expect_eq(SW->xa_forget_entry(&x, RM, TMNOFLAGS), XAER_NOTA);
	/* Decided while phase two still runs: reported at once, forget
	 * waits for its end (XAER_RMFAIL: the TM tries again). */
	XID y = mkxid(5, "heur-run", "1");
	char gy[XA_XID_GID_LEN + 1];
	wire_of(&y, w, &len);
	sf_add(&fake, w, len, TX(COMMITTING), HEUR(HEUR_COMMIT), gy);
	cr_expect_eq(SW->xa_rollback_entry(&y, RM, TMNOFLAGS), XA_HEURCOM);
	cr_expect_eq(SW->xa_commit_entry(&y, RM, TMNOFLAGS), XA_HEURCOM);
	cr_expect_eq(SW->xa_forget_entry(&y, RM, TMNOFLAGS), XAER_RMFAIL);
	cr_expect(strstr(settle_xa_errmsg(RM), "COMMITTING") != NULL, "%s",
		  settle_xa_errmsg(RM));
	sf_set(&fake, gy, TX(COMMITTED), HEUR(HEUR_COMMIT));
	cr_expect_eq(SW->xa_forget_entry(&y, RM, TMNOFLAGS), XA_OK);
}

/* ---- an unreachable coordinator ----------------------------------------- */

Test(xa_switch, unreachable_cluster_is_rmfail)
{
	XID x = mkxid(8, "down", "1"), y = mkxid(8, "down", "2");
	char gy[64];

	open_rm();
	gid_of(&y, gy);
	work(&y);
	sf_down(&fake, true);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XAER_RMFAIL);
	cr_assert(strstr(settle_xa_errmsg(RM), "unreachable") != NULL, "%s",
		  settle_xa_errmsg(RM));
	cr_assert_eq(SW->xa_prepare_entry(&y, RM, TMNOFLAGS), XAER_RMFAIL);
	sf_down(&fake, false);
	/* Nothing changed by the failures: both go on. */
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XA_OK, "%s",
		     settle_xa_errmsg(RM));
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XA_OK);
	cr_assert_eq(SW->xa_prepare_entry(&y, RM, TMNOFLAGS), XA_OK);
	sf_down(&fake, true);
	cr_assert_eq(SW->xa_commit_entry(&y, RM, TMNOFLAGS), XAER_RMFAIL);
	sf_down(&fake, false);
	cr_assert_eq(SW->xa_commit_entry(&y, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(sf_state(&fake, gy), TX(COMMITTED));
	cr_assert_eq(SW->xa_rollback_entry(&x, RM, TMNOFLAGS), XA_OK);
}

Test(xa_switch, coordinator_errors_map)
{
	XID x = mkxid(8, "map", "1");

	open_rm();
	sf_fail_next(&fake, SETTLE__V1__METHOD__BEGIN, SETTLE_EINTERNAL);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XAER_RMERR);
	sf_fail_next(&fake, SETTLE__V1__METHOD__BEGIN, SETTLE_EINVAL);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XAER_INVAL);
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XA_OK);
	sf_fail_next(&fake, SETTLE__V1__METHOD__XA_PREPARE, SETTLE_ENOTFOUND);
	cr_assert_eq(SW->xa_prepare_entry(&x, RM, TMNOFLAGS), XAER_NOTA);
	/* NOTA forgot the branch here. */
	cr_assert_eq(SW->xa_start_entry(&x, RM, TMJOIN), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&x, RM, TMSUCCESS), XA_OK);
	sf_fail_next(&fake, SETTLE__V1__METHOD__ROLLBACK, SETTLE_EINTERNAL);
	cr_assert_eq(SW->xa_rollback_entry(&x, RM, TMNOFLAGS), XAER_RMERR);
	cr_assert_eq(SW->xa_rollback_entry(&x, RM, TMNOFLAGS), XA_OK);
}

/* ---- xa_recover --------------------------------------------------------- */

static void add_prepared(int n, int first)
{
	uint8_t w[XA_XID_WIRE_MAX];
	size_t len;

	for (int i = first; i < first + n; i++) {
		char g[16];
		XID x;

		snprintf(g, sizeof(g), "rec-%d", i);
		x = mkxid(77, g, "1");
		wire_of(&x, w, &len);
		sf_add(&fake, w, len, TX(XA_PREPARED), 0, NULL);
	}
}

static bool seen_once(const XID *xs, int n, const char *g)
{
	int hits = 0;

	for (int i = 0; i < n; i++)
		if (xs[i].formatID == 77 &&
		    xs[i].gtrid_length == (long)strlen(g) &&
		    xs[i].bqual_length == 1 &&
		    memcmp(xs[i].data, g, strlen(g)) == 0 &&
		    xs[i].data[strlen(g)] == '1')
			hits++;
	return hits == 1;
}

Test(xa_switch, recover_cursor_across_calls)
{
	uint8_t w[XA_XID_WIRE_MAX];
	XID xs[16], other;
	int n, total = 0;
	size_t len;

	open_rm();
	add_prepared(5, 0);
	/* Neither an ACTIVE one nor a final one without heuristic. */
	other = mkxid(77, "active", "1");
	wire_of(&other, w, &len);
	sf_add(&fake, w, len, TX(ACTIVE), 0, NULL);
	other = mkxid(77, "done", "1");
	wire_of(&other, w, &len);
	sf_add(&fake, w, len, TX(COMMITTED), 0, NULL);
	/* A heuristically completed one is listed. */
	other = mkxid(77, "heur", "1");
	wire_of(&other, w, &len);
	sf_add(&fake, w, len, TX(COMMITTED), HEUR(HEUR_HAZARD), NULL);

	cr_assert_eq(SW->xa_recover_entry(xs, 2, RM, TMNOFLAGS), XAER_INVAL,
		     "no scan open");
	n = SW->xa_recover_entry(xs, 2, RM, TMSTARTRSCAN);
	cr_assert_eq(n, 2);
	total += n;
	n = SW->xa_recover_entry(xs + total, 2, RM, TMNOFLAGS);
	cr_assert_eq(n, 2);
	total += n;
	n = SW->xa_recover_entry(xs + total, 2, RM, TMNOFLAGS);
	cr_assert_eq(n, 2);
	total += n;
	n = SW->xa_recover_entry(xs + total, 2, RM, TMNOFLAGS);
	cr_assert_eq(n, 0, "exhausted");
	cr_assert_eq(SW->xa_recover_entry(xs, 2, RM, TMNOFLAGS), XAER_INVAL,
		     "the short answer closed the scan");
	for (int i = 0; i < 5; i++) {
		char g[16];

		snprintf(g, sizeof(g), "rec-%d", i);
		cr_assert(seen_once(xs, total, g), "%s not listed once", g);
	}
	cr_assert(seen_once(xs, total, "heur"));

	/* All at once, and TMENDRSCAN closes. */
	n = SW->xa_recover_entry(xs, 16, RM, TMSTARTRSCAN | TMENDRSCAN);
	cr_assert_eq(n, 6);
	cr_assert_eq(SW->xa_recover_entry(xs, 16, RM, TMNOFLAGS), XAER_INVAL);
	/* A restart in the middle starts over. */
	cr_assert_eq(SW->xa_recover_entry(xs, 4, RM, TMSTARTRSCAN), 4);
	cr_assert_eq(SW->xa_recover_entry(xs, 4, RM, TMSTARTRSCAN), 4);
	cr_assert_eq(SW->xa_recover_entry(xs, 4, RM, TMENDRSCAN), 2);
	/* count 0 is legal. */
	cr_assert_eq(SW->xa_recover_entry(xs, 0, RM, TMSTARTRSCAN | TMENDRSCAN),
		     0);
}

Test(xa_switch, recover_pages_and_outage)
{
	XID *xs = calloc(200, sizeof(*xs));
	int n;

	open_rm();
	add_prepared(150, 0);
	/* Over several coordinator pages in one call. */
	n = SW->xa_recover_entry(xs, 200, RM, TMSTARTRSCAN);
	cr_assert_eq(n, 150);
	for (int i = 0; i < 150; i += 7) {
		char g[16];

		snprintf(g, sizeof(g), "rec-%d", i);
		cr_assert(seen_once(xs, n, g), "%s", g);
	}
	/* An outage in mid-scan: RMFAIL, and the cursor did not move. */
	cr_assert_eq(SW->xa_recover_entry(xs, 100, RM, TMSTARTRSCAN), 100);
	sf_down(&fake, true);
	cr_assert_eq(SW->xa_recover_entry(xs + 100, 30, RM, TMNOFLAGS),
		     XAER_RMFAIL);
	sf_down(&fake, false);
	n = SW->xa_recover_entry(xs + 100, 100, RM, TMNOFLAGS);
	cr_assert_eq(n, 50, "%s", settle_xa_errmsg(RM));
	for (int i = 0; i < 150; i++) {
		char g[16];

		snprintf(g, sizeof(g), "rec-%d", i);
		cr_assert(seen_once(xs, 150, g), "%s", g);
	}
	free(xs);
}

/* ---- a TM restart: another thread of control --------------------------- */

struct tm_arg {
	XID x;
	int rc;
};

/* The TM's first life: prepares, then its thread ends without xa_close
 * (the library must still release the handle). */
static void *first_life(void *p)
{
	struct tm_arg *a = p;

	open_rm();
	work(&a->x);
	a->rc = SW->xa_prepare_entry(&a->x, RM, TMNOFLAGS);
	return NULL;
}

static void *second_life(void *p)
{
	struct tm_arg *a = p;
	XID xs[8];
	int n;

	open_rm();
	n = SW->xa_recover_entry(xs, 8, RM, TMSTARTRSCAN | TMENDRSCAN);
	a->rc = XAER_NOTA;
	for (int i = 0; i < n; i++)
		if (xs[i].formatID == a->x.formatID &&
		    xs[i].gtrid_length == a->x.gtrid_length &&
		    xs[i].bqual_length == a->x.bqual_length &&
		    memcmp(xs[i].data, a->x.data,
			   (size_t)(a->x.gtrid_length + a->x.bqual_length)) ==
			0)
			a->rc = SW->xa_commit_entry(&xs[i], RM, TMNOFLAGS);
	SW->xa_close_entry(info, RM, TMNOFLAGS);
	return NULL;
}

Test(xa_switch, tm_restart_recovers_in_a_new_thread)
{
	struct tm_arg a = {.x = mkxid(11, "restart", "b")};
	char gid[64];
	pthread_t t;

	gid_of(&a.x, gid);
	cr_assert_eq(pthread_create(&t, NULL, first_life, &a), 0);
	pthread_join(t, NULL);
	cr_assert_eq(a.rc, XA_OK);
	cr_assert_eq(sf_state(&fake, gid), TX(XA_PREPARED));
	cr_assert_eq(pthread_create(&t, NULL, second_life, &a), 0);
	pthread_join(t, NULL);
	cr_assert_eq(a.rc, XA_OK);
	cr_assert_eq(sf_state(&fake, gid), TX(COMMITTED));
}

/* Threads are independent: each its own association. */
static void *one_tx(void *p)
{
	long i = (long)(intptr_t)p;
	char g[16];
	XID x;
	int rc;

	if (SW->xa_open_entry(info, RM, TMNOFLAGS) != XA_OK)
		return (void *)(intptr_t)-1;
	snprintf(g, sizeof(g), "thr-%ld", i);
	x = mkxid(12, g, "1");
	rc = SW->xa_start_entry(&x, RM, TMNOFLAGS);
	if (rc == XA_OK)
		rc = SW->xa_end_entry(&x, RM, TMSUCCESS);
	if (rc == XA_OK)
		rc = SW->xa_commit_entry(&x, RM, TMONEPHASE);
	SW->xa_close_entry(info, RM, TMNOFLAGS);
	return (void *)(intptr_t)rc;
}

Test(xa_switch, threads_each_their_own)
{
	pthread_t t[8];

	for (long i = 0; i < 8; i++)
		cr_assert_eq(
		    pthread_create(&t[i], NULL, one_tx, (void *)(intptr_t)i),
		    0);
	for (int i = 0; i < 8; i++) {
		void *rc;

		pthread_join(t[i], &rc);
		cr_assert_eq((intptr_t)rc, XA_OK, "thread %d", i);
	}
	cr_assert_eq(sf_calls(&fake, SETTLE__V1__METHOD__BEGIN), 8);
}

Test(xa_switch, complete_has_nothing_async)
{
	int h = 0, r = 0;

	open_rm();
	cr_assert_eq(SW->xa_complete_entry(&h, &r, RM, TMNOFLAGS), XAER_PROTO);
	cr_assert_eq(SW->xa_complete_entry(&h, &r, RM, TMMULTIPLE), XAER_PROTO);
	cr_assert_eq(SW->xa_complete_entry(&h, &r, RM, TMSUCCESS), XAER_INVAL);
}

Test(xa_switch, two_rmids_in_one_thread)
{
	XID a = mkxid(4, "rm-a", "1"), b = mkxid(4, "rm-b", "1");
	char ga[64], gb[64], want[64];

	open_rm();
	cr_assert_eq(SW->xa_open_entry(info, RM + 1, TMNOFLAGS), XA_OK);
	/* One association per rmid: both at once. */
	cr_assert_eq(SW->xa_start_entry(&a, RM, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_start_entry(&b, RM + 1, TMNOFLAGS), XA_OK);
	cr_assert_eq(settle_xa_current_gid(RM, ga, sizeof(ga)), 0);
	cr_assert_eq(settle_xa_current_gid(RM + 1, gb, sizeof(gb)), 0);
	gid_of(&a, want);
	cr_assert_str_eq(ga, want);
	gid_of(&b, want);
	cr_assert_str_eq(gb, want);
	/* Each rmid holds only its own associations: the cluster knows a
	 * (one cluster behind both), this thread is not on it for RM + 1. */
	cr_assert_eq(SW->xa_end_entry(&a, RM + 1, TMSUCCESS), XAER_PROTO);
	cr_assert_eq(SW->xa_end_entry(&a, RM, TMSUCCESS), XA_OK);
	cr_assert_eq(SW->xa_end_entry(&b, RM + 1, TMSUCCESS), XA_OK);
	cr_assert_eq(SW->xa_commit_entry(&a, RM, TMONEPHASE), XA_OK);
	cr_assert_eq(SW->xa_rollback_entry(&b, RM + 1, TMNOFLAGS), XA_OK);
	cr_assert_eq(SW->xa_close_entry(info, RM + 1, TMNOFLAGS), XA_OK);
	cr_assert_eq(sf_state(&fake, ga), TX(COMMITTED));
	cr_assert_eq(sf_state(&fake, gb), TX(ROLLED_BACK));
}

/* Every code a verb may answer (xa_recover: also counts >= 0). */
static bool legal(int rc)
{
	return rc == XA_OK || rc == XA_RDONLY || rc == XA_NOMIGRATE ||
	       rc == XA_HEURHAZ || rc == XA_HEURCOM || rc == XA_HEURRB ||
	       rc == XA_HEURMIX || (rc >= XA_RBBASE && rc <= XA_RBEND) ||
	       rc == XAER_RMERR || rc == XAER_NOTA || rc == XAER_INVAL ||
	       rc == XAER_PROTO || rc == XAER_RMFAIL || rc == XAER_DUPID;
}

/*
 * A TM gone mad: random verbs, flags (legal or not), XIDs (NULL and
 * invalid ones included), rmids, with the coordinator meddling (states
 * changed under the switch, injected errors). Every answer must be a code
 * of the specification, and ASan/UBSan must stay quiet. Then everything
 * still winds down cleanly.
 */
Test(xa_switch, random_verbs_never_crash)
{
	static const long flagset[] = {
	    TMNOFLAGS,
	    TMJOIN,
	    TMRESUME,
	    TMSUCCESS,
	    TMSUSPEND,
	    TMFAIL,
	    TMONEPHASE,
	    TMNOWAIT,
	    TMSTARTRSCAN,
	    TMENDRSCAN,
	    TMMIGRATE,
	    TMASYNC,
	    TMMULTIPLE,
	    -1L,
	    TMSUSPEND | TMMIGRATE,
	    TMJOIN | TMRESUME,
	    TMSTARTRSCAN | TMENDRSCAN,
	    0x7fffffffL,
	};
	XID xids[5], recovered[8];
	unsigned seed = 12345;
	int counts[16] = {0};

	xids[0] = mkxid(20, "r0", "1");
	xids[1] = mkxid(20, "r1", "1");
	xids[2] = mkxid(20, "r1", "2");
	xids[3] = mkxid(20, "r3", "1");
	xids[4] = mkxid(20, "r3", "1");
	xids[4].gtrid_length = 99; /* invalid */
	open_rm();
	for (int i = 0; i < 1500; i++) {
		int verb = (int)(rand_r(&seed) % 10);
		long flags = flagset[rand_r(&seed) %
				     (sizeof(flagset) / sizeof(flagset[0]))];
		int rmid = rand_r(&seed) % 8 == 0 ? RM + 1 : RM;
		unsigned k = rand_r(&seed) % 6;
		XID *x = k == 5 ? NULL : &xids[k];
		int rc = 0, h = 0, r = 0;

		if (rand_r(&seed) % 50 == 0) {
			char gid[64];

			gid_of(&xids[rand_r(&seed) % 4], gid);
			pthread_mutex_lock(&fake.lock);
			struct sf_tx *t = sf_find(&fake, gid);
			if (t != NULL) {
				static const int st[] = {
				    TX(ACTIVE), TX(XA_PREPARED), TX(COMMITTED),
				    TX(ROLLED_BACK), TX(ROLLING_BACK)};
				t->state = st[rand_r(&seed) % 5];
				t->heuristic = (int)(rand_r(&seed) % 5);
			}
			pthread_mutex_unlock(&fake.lock);
		}
		if (rand_r(&seed) % 40 == 0)
			sf_fail_next(&fake,
				     rand_r(&seed) % 2
					 ? SETTLE__V1__METHOD__COMMIT
					 : SETTLE__V1__METHOD__BEGIN,
				     SETTLE_EINTERNAL);
		switch (verb) {
		case 0:
			rc = SW->xa_start_entry(x, rmid, flags);
			break;
		case 1:
		case 2:
			rc = SW->xa_end_entry(x, rmid, flags);
			break;
		case 3:
			rc = SW->xa_prepare_entry(x, rmid, flags);
			break;
		case 4:
			rc = SW->xa_commit_entry(x, rmid, flags);
			break;
		case 5:
			rc = SW->xa_rollback_entry(x, rmid, flags);
			break;
		case 6:
			rc = SW->xa_forget_entry(x, rmid, flags);
			break;
		case 7:
			rc = SW->xa_recover_entry(
			    k == 5 ? NULL : recovered,
			    (long)(rand_r(&seed) % 10) - 1, rmid, flags);
			if (rc >= 0)
				rc = XA_OK;
			break;
		case 8:
			rc = SW->xa_complete_entry(&h, &r, rmid, flags);
			break;
		default: {
			char gid[64];

			rc = settle_xa_current_gid(rmid, gid, sizeof(gid));
			rc = rc == 0 || rc == SETTLE_ESTATE ? XA_OK : -999;
			break;
		}
		}
		cr_assert(legal(rc), "step %d: verb %d flags 0x%lx -> %d", i,
			  verb, flags, rc);
		counts[verb]++;
	}
	/* Wind down: end whatever is associated, roll back the rest. */
	for (int k = 0; k < 4; k++) {
		SW->xa_start_entry(&xids[k], RM, TMRESUME);
		SW->xa_end_entry(&xids[k], RM, TMSUCCESS);
	}
	for (int k = 0; k < 4; k++) {
		int rc = SW->xa_rollback_entry(&xids[k], RM, TMNOFLAGS);

		cr_assert(legal(rc));
		if (rc >= XA_HEURMIX && rc <= XA_HEURHAZ)
			SW->xa_forget_entry(&xids[k], RM, TMNOFLAGS);
	}
	cr_assert_eq(SW->xa_close_entry(info, RM, TMNOFLAGS), XA_OK, "%s",
		     settle_xa_errmsg(RM));
	for (int v = 0; v < 10; v++)
		cr_assert_gt(counts[v], 50);
}

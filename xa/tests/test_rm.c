/*
 * test_rm.c — the XA resource-manager adapters against real PostgreSQL 15
 * and MariaDB 10.11 servers: two-phase commit and rollback across
 * connections, recovery, restarts of the server, one-phase commit, the
 * error classes the coordinator relies on, and a transfer between the two.
 * One test at a time: a test restarts the servers that the others use.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "servers.h"
#include "xa/rm.h"

#define PG XA_RM_POSTGRESQL
#define MY XA_RM_MARIADB

/* Our formatID in these tests ("SET"). */
#define XT_FID 0x534554

static unsigned xt_seq;

/* A hung server fails its test instead of hanging make check. */
TestSuite(postgresql, .timeout = 60);
TestSuite(mariadb, .timeout = 60);
TestSuite(both, .timeout = 60);

static struct xa_rm *xt_open(enum xa_rm_kind k)
{
	char err[512];
	struct xa_rm *rm = NULL;
	int rv = xa_rm_open(k, xt_conninfo(k), &rm, err, sizeof(err));

	/* An earlier test that failed between killing and restarting a
	 * server left it down: start it again for this one. */
	if (rv == XA_RM_ETRANSIENT && xt_servers_start() == 0)
		rv = xa_rm_open(k, xt_conninfo(k), &rm, err, sizeof(err));
	cr_assert_eq(rv, 0, "open %s: %s (%s)",
		     k == PG ? "postgresql" : "mariadb", settle_strerror(rv),
		     err);
	return rm;
}

/* A unique tag for this test's XIDs and rows. */
static void xt_tag(char *buf, size_t cap)
{
	snprintf(buf, cap, "t%ld-%d-%u", (long)time(NULL) % 100000,
		 (int)getpid(), xt_seq++);
}

static void xt_xid(struct xa_xid *x, const char *tag, const char *bqual)
{
	cr_assert_eq(
	    xa_xid_init(x, XT_FID, tag, strlen(tag), bqual, strlen(bqual)), 0);
}

#define XT_OK(rm, call)                                                        \
	do {                                                                   \
		int xt_rv_ = (call);                                           \
		cr_assert_eq(xt_rv_, 0, "%s: %s: %s", #call,                   \
			     settle_strerror(xt_rv_), xa_rm_errmsg(rm));       \
	} while (0)

static void xt_table(struct xa_rm *rm)
{
	XT_OK(rm, xa_rm_exec(rm, "CREATE TABLE IF NOT EXISTS xa_t ("
				 "k VARCHAR(100) PRIMARY KEY, v BIGINT)"));
}

/* Value of row key, -1 when absent; read outside any branch. */
static int64_t xt_get(struct xa_rm *rm, const char *key)
{
	char sql[256];
	int64_t v = -2;

	snprintf(sql, sizeof(sql),
		 "SELECT COALESCE((SELECT v FROM xa_t WHERE k = '%s'), -1)",
		 key);
	XT_OK(rm, xa_rm_query_int(rm, sql, &v));
	return v;
}

static void xt_put(struct xa_rm *rm, const char *key, int64_t v)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "INSERT INTO xa_t (k, v) VALUES ('%s', %lld)", key,
		 (long long)v);
	XT_OK(rm, xa_rm_exec(rm, sql));
}

static void xt_add(struct xa_rm *rm, const char *key, int64_t d)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "UPDATE xa_t SET v = v + %lld WHERE k = '%s'", (long long)d,
		 key);
	XT_OK(rm, xa_rm_exec(rm, sql));
}

/* Is xid among the RM's in-doubt XIDs? */
static bool xt_listed(struct xa_rm *rm, const struct xa_xid *xid)
{
	struct xa_xid *all;
	size_t n, i;
	bool found = false;

	XT_OK(rm, xa_rm_recover(rm, XT_FID, &all, &n));
	for (i = 0; i < n; i++) {
		cr_assert_eq(all[i].format_id, XT_FID);
		if (xa_xid_equal(&all[i], xid))
			found = true;
	}
	free(all);
	return found;
}

/* Work in a branch (insert key=v), end it, prepare it: vote OK. */
static struct xa_rm *xt_prepared(enum xa_rm_kind k, const struct xa_xid *xid,
				 const char *key, int64_t v)
{
	struct xa_rm *rm = xt_open(k);
	enum xa_rm_vote vote = XA_RM_VOTE_ROLLBACK;

	xt_table(rm);
	XT_OK(rm, xa_rm_start(rm, xid));
	xt_put(rm, key, v);
	XT_OK(rm, xa_rm_end(rm, xid));
	XT_OK(rm, xa_rm_prepare(rm, xid, &vote));
	cr_assert_eq(vote, XA_RM_VOTE_OK, "vote %s: %s", xa_rm_vote_name(vote),
		     xa_rm_errmsg(rm));
	return rm;
}

/*
 * MariaDB hands a prepared branch to other sessions only once its own
 * session is gone; until then another session is told to retry (and never
 * NOTA, which would read as "already done").
 */
static void xt_finish_elsewhere(enum xa_rm_kind k, struct xa_rm *a,
				struct xa_rm *b, const struct xa_xid *xid,
				bool commit)
{
	int rv = commit ? xa_rm_commit(b, xid, false) : xa_rm_rollback(b, xid);

	if (k == MY) {
		cr_assert_eq(rv, XA_RM_ETRANSIENT, "attached branch: %s (%s)",
			     settle_strerror(rv), xa_rm_errmsg(b));
		xa_rm_close(a);
		usleep(100 * 1000);
		rv = commit ? xa_rm_commit(b, xid, false)
			    : xa_rm_rollback(b, xid);
	} else {
		xa_rm_close(a);
	}
	cr_assert_eq(rv, 0, "%s: %s (%s)", commit ? "commit" : "rollback",
		     settle_strerror(rv), xa_rm_errmsg(b));
}

static void prepare_commit_elsewhere(enum xa_rm_kind k)
{
	char tag[64];
	struct xa_xid xid;
	struct xa_rm *a, *b;

	xt_tag(tag, sizeof(tag));
	xt_xid(&xid, tag, "b1");
	a = xt_prepared(k, &xid, tag, 11);
	b = xt_open(k);
	cr_assert(xt_listed(b, &xid), "a new connection sees the branch");
	cr_assert_eq(xt_get(b, tag), -1, "prepared work is not visible yet");
	xt_finish_elsewhere(k, a, b, &xid, true);
	cr_assert_eq(xt_get(b, tag), 11, "committed work is visible");
	cr_assert(!xt_listed(b, &xid));
	/* Committing again: the RM knows it no more. */
	cr_assert_eq(xa_rm_commit(b, &xid, false), XA_RM_ENOTA);
	xa_rm_close(b);
}

static void prepare_rollback_elsewhere(enum xa_rm_kind k)
{
	char tag[64];
	struct xa_xid xid;
	struct xa_rm *a, *b;

	xt_tag(tag, sizeof(tag));
	xt_xid(&xid, tag, "b1");
	a = xt_prepared(k, &xid, tag, 12);
	b = xt_open(k);
	cr_assert(xt_listed(b, &xid));
	xt_finish_elsewhere(k, a, b, &xid, false);
	cr_assert_eq(xt_get(b, tag), -1, "rolled back work is gone");
	cr_assert(!xt_listed(b, &xid));
	cr_assert_eq(xa_rm_rollback(b, &xid), XA_RM_ENOTA);
	xa_rm_close(b);
}

static void unknown_xid_is_nota(enum xa_rm_kind k)
{
	char tag[64];
	struct xa_xid xid;
	struct xa_rm *rm = xt_open(k);

	xt_tag(tag, sizeof(tag));
	xt_xid(&xid, tag, "never");
	cr_assert_eq(xa_rm_commit(rm, &xid, false), XA_RM_ENOTA, "%s",
		     xa_rm_errmsg(rm));
	cr_assert_eq(xa_rm_rollback(rm, &xid), XA_RM_ENOTA, "%s",
		     xa_rm_errmsg(rm));
	xa_rm_close(rm);
}

static void one_phase_commit(enum xa_rm_kind k)
{
	char tag[64];
	struct xa_xid xid;
	struct xa_rm *rm = xt_open(k), *c;

	xt_table(rm);
	xt_tag(tag, sizeof(tag));
	xt_xid(&xid, tag, "b1");
	XT_OK(rm, xa_rm_start(rm, &xid));
	xt_put(rm, tag, 13);
	/* Still active: commit ends it first. */
	XT_OK(rm, xa_rm_commit(rm, &xid, true));
	c = xt_open(k);
	cr_assert_eq(xt_get(c, tag), 13);
	cr_assert(!xt_listed(c, &xid), "nothing left in doubt");
	xa_rm_close(c);
	/* The handle is free for the next branch. */
	xt_xid(&xid, tag, "b2");
	XT_OK(rm, xa_rm_start(rm, &xid));
	XT_OK(rm, xa_rm_rollback(rm, &xid));
	xa_rm_close(rm);
}

static void survives_server_crash(enum xa_rm_kind k)
{
	char tag[64];
	struct xa_xid xid;
	struct xa_rm *a, *b;
	int rv;

	xt_tag(tag, sizeof(tag));
	xt_xid(&xid, tag, "b1");
	a = xt_prepared(k, &xid, tag, 14);
	cr_assert_eq(xt_server_kill(k), 0, "kill the server");
	/* Phase 2 while the RM is down: transient, to be retried. */
	rv = xa_rm_commit(a, &xid, false);
	cr_assert_eq(rv, XA_RM_ETRANSIENT, "commit with the server down: %s",
		     settle_strerror(rv));
	cr_assert_eq(xt_servers_start(), 0, "restart the server");
	b = xt_open(k);
	cr_assert(xt_listed(b, &xid), "the prepared branch survived SIGKILL");
	cr_assert_eq(xt_get(b, tag), -1);
	XT_OK(b, xa_rm_commit(b, &xid, false));
	cr_assert_eq(xt_get(b, tag), 14);
	cr_assert(!xt_listed(b, &xid));
	/* The handle of the dead connection reconnects on its next verb. */
	{
		int64_t v = 0;

		rv = xa_rm_query_int(a, "SELECT 1", &v);
		if (rv == XA_RM_ETRANSIENT)
			rv = xa_rm_query_int(a, "SELECT 1", &v);
		cr_assert_eq(rv, 0, "reconnect: %s", xa_rm_errmsg(a));
		cr_assert_eq(v, 1);
	}
	xa_rm_close(a);
	xa_rm_close(b);
}

static void protocol_errors(enum xa_rm_kind k)
{
	char tag[64];
	struct xa_xid x1, x2;
	struct xa_rm *rm = xt_open(k);
	enum xa_rm_vote vote;
	struct xa_xid *all;
	size_t n;

	xt_tag(tag, sizeof(tag));
	xt_xid(&x1, tag, "b1");
	xt_xid(&x2, tag, "b2");
	cr_assert_eq(xa_rm_prepare(rm, &x1, &vote), XA_RM_EPROTO,
		     "prepare of a branch never started here");
	cr_assert_eq(xa_rm_end(rm, &x1), XA_RM_EPROTO);
	cr_assert_eq(xa_rm_commit(rm, &x1, true), XA_RM_EPROTO);
	XT_OK(rm, xa_rm_start(rm, &x1));
	cr_assert_eq(xa_rm_start(rm, &x2), XA_RM_EPROTO,
		     "one branch at a time");
	cr_assert_eq(xa_rm_end(rm, &x2), XA_RM_EPROTO);
	cr_assert_eq(xa_rm_commit(rm, &x2, false), XA_RM_EPROTO,
		     "phase 2 while a branch is active");
	cr_assert_eq(xa_rm_recover(rm, XT_FID, &all, &n), XA_RM_EPROTO);
	cr_assert_eq(xa_rm_recover(rm, -5, &all, &n), XA_RM_EINVAL);
	XT_OK(rm, xa_rm_rollback(rm, &x1));
	/* An invalid XID never reaches the server. */
	memset(&x2, 0, sizeof(x2));
	cr_assert_eq(xa_rm_start(rm, &x2), XA_RM_EINVAL);
	cr_assert_eq(xa_rm_commit(rm, &x2, false), XA_RM_EINVAL);
	xa_rm_close(rm);
}

static void duplicate_xid(enum xa_rm_kind k)
{
	char tag[64];
	struct xa_xid xid;
	struct xa_rm *a, *b;
	enum xa_rm_vote vote;
	int rv;

	xt_tag(tag, sizeof(tag));
	xt_xid(&xid, tag, "b1");
	a = xt_prepared(k, &xid, tag, 15);
	xa_rm_close(a);
	b = xt_open(k);
	rv = xa_rm_start(b, &xid);
	if (k == MY) {
		cr_assert_eq(rv, XA_RM_EDUPID, "%s", xa_rm_errmsg(b));
	} else {
		/* PostgreSQL learns of the duplicate only at PREPARE (of a
		 * branch that wrote: an empty one commits as read-only). */
		char key[80];

		cr_assert_eq(rv, 0);
		snprintf(key, sizeof(key), "%s-dup", tag);
		xt_put(b, key, 1);
		cr_assert_eq(xa_rm_prepare(b, &xid, &vote), XA_RM_EDUPID, "%s",
			     xa_rm_errmsg(b));
		/* ... which did not touch the first branch. */
	}
	cr_assert(xt_listed(b, &xid));
	XT_OK(b, xa_rm_commit(b, &xid, false));
	cr_assert_eq(xt_get(b, tag), 15);
	xa_rm_close(b);
}

static void recover_filters_format(enum xa_rm_kind k)
{
	char tag[64];
	struct xa_xid x1, x2;
	struct xa_rm *a, *b, *c;
	struct xa_xid *all;
	size_t n, i;
	bool seen1 = false, seen2 = false;

	xt_tag(tag, sizeof(tag));
	xt_xid(&x1, tag, "b1");
	cr_assert_eq(xa_xid_init(&x2, XT_FID + 1, tag, strlen(tag), "b2", 2),
		     0);
	a = xt_prepared(k, &x1, tag, 1);
	{
		char key[80];

		snprintf(key, sizeof(key), "%s-2", tag);
		b = xt_prepared(k, &x2, key, 2);
	}
	xa_rm_close(a);
	xa_rm_close(b);
	c = xt_open(k);
	cr_assert(xt_listed(c, &x1));
	cr_assert(!xt_listed(c, &x2), "formatID filter");
	XT_OK(c, xa_rm_recover(c, XA_RM_ANY_FORMAT, &all, &n));
	for (i = 0; i < n; i++) {
		seen1 |= xa_xid_equal(&all[i], &x1);
		seen2 |= xa_xid_equal(&all[i], &x2);
	}
	free(all);
	cr_assert(seen1 && seen2);
	XT_OK(c, xa_rm_rollback(c, &x1));
	XT_OK(c, xa_rm_rollback(c, &x2));
	xa_rm_close(c);
}

/*
 * The branch's connection is killed by the server mid-work: the server
 * rolled the branch back, and prepare says so (the work is gone).
 */
static void connection_killed_mid_branch(enum xa_rm_kind k)
{
	char tag[64], sql[128];
	struct xa_xid xid;
	struct xa_rm *a = xt_open(k), *b = xt_open(k);
	enum xa_rm_vote vote = XA_RM_VOTE_OK;
	int64_t id;
	int rv;

	xt_table(a);
	xt_tag(tag, sizeof(tag));
	xt_xid(&xid, tag, "b1");
	XT_OK(a, xa_rm_query_int(a,
				 k == PG ? "SELECT pg_backend_pid()"
					 : "SELECT CONNECTION_ID()",
				 &id));
	XT_OK(a, xa_rm_start(a, &xid));
	xt_put(a, tag, 16);
	snprintf(sql, sizeof(sql),
		 k == PG ? "SELECT pg_terminate_backend(%lld)"
			 : "KILL CONNECTION %lld",
		 (long long)id);
	XT_OK(b, xa_rm_exec(b, sql));
	usleep(200 * 1000);
	rv = xa_rm_exec(a, "SELECT 1");
	cr_assert_eq(rv, XA_RM_ETRANSIENT, "work on a killed connection: %s",
		     settle_strerror(rv));
	XT_OK(a, xa_rm_prepare(a, &xid, &vote));
	cr_assert_eq(vote, XA_RM_VOTE_ROLLBACK);
	cr_assert(!xt_listed(b, &xid));
	cr_assert_eq(xt_get(b, tag), -1);
	/* The handle is usable again, on a new connection. */
	cr_assert_eq(xt_get(a, tag), -1);
	xa_rm_close(a);
	xa_rm_close(b);
}

/* Malformed conninfo: invalid, not a connection failure. */
static void bad_conninfo(enum xa_rm_kind k)
{
	const char *bad[] = {"host='127.0.0.1", "nosuchkey=1", "=x",
			     "port=abc"};
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct xa_rm *rm = NULL;
		int rv = xa_rm_open(k, bad[i], &rm, err, sizeof(err));

		cr_assert_eq(rv, XA_RM_EINVAL, "%s: %s (%s)", bad[i],
			     settle_strerror(rv), err);
		cr_assert_null(rm);
	}
	cr_assert_eq(xa_rm_open(k, NULL, NULL, err, sizeof(err)), XA_RM_EINVAL);
	cr_assert_eq(
	    xa_rm_open((enum xa_rm_kind)99, "", NULL, err, sizeof(err)),
	    XA_RM_EINVAL);
}

/* A server that is not there: transient, never anything else. */
static void unreachable_is_transient(enum xa_rm_kind k)
{
	char err[256];
	struct xa_rm *rm = (struct xa_rm *)1;
	int rv = xa_rm_open(k,
			    "host=127.0.0.1 port=1 user=x dbname=x "
			    "connect_timeout=2",
			    &rm, err, sizeof(err));

	cr_assert_eq(rv, XA_RM_ETRANSIENT, "%s", err);
	cr_assert_null(rm);
	cr_assert_neq(err[0], '\0');
}

Test(postgresql, prepare_then_commit_from_new_connection)
{
	prepare_commit_elsewhere(PG);
}
Test(mariadb, prepare_then_commit_from_new_connection)
{
	prepare_commit_elsewhere(MY);
}
Test(postgresql, prepare_then_rollback_from_new_connection)
{
	prepare_rollback_elsewhere(PG);
}
Test(mariadb, prepare_then_rollback_from_new_connection)
{
	prepare_rollback_elsewhere(MY);
}
Test(postgresql, unknown_xid_is_nota)
{
	unknown_xid_is_nota(PG);
}
Test(mariadb, unknown_xid_is_nota)
{
	unknown_xid_is_nota(MY);
}
Test(postgresql, one_phase_commit)
{
	one_phase_commit(PG);
}
Test(mariadb, one_phase_commit)
{
	one_phase_commit(MY);
}
Test(postgresql, prepared_branch_survives_sigkill)
{
	survives_server_crash(PG);
}
Test(mariadb, prepared_branch_survives_sigkill)
{
	survives_server_crash(MY);
}
Test(postgresql, protocol_errors)
{
	protocol_errors(PG);
}
Test(mariadb, protocol_errors)
{
	protocol_errors(MY);
}
Test(postgresql, duplicate_xid)
{
	duplicate_xid(PG);
}
Test(mariadb, duplicate_xid)
{
	duplicate_xid(MY);
}
Test(postgresql, recover_filters_format)
{
	recover_filters_format(PG);
}
Test(mariadb, recover_filters_format)
{
	recover_filters_format(MY);
}
/* A server that answers but refuses the login (unknown role): ERMERR, so
 * the coordinator's phase 2 does not retry it silently for ever. */
static void refused_login_is_rmerr(enum xa_rm_kind k)
{
	char conninfo[600], err[512];
	struct xa_rm *rm = (struct xa_rm *)1;
	const char *ours = xt_conninfo(k);
	const char *u = strstr(ours, "user=settle");
	int rv;

	cr_assert_not_null(u, "conninfo without user=settle");
	snprintf(conninfo, sizeof conninfo, "%.*suser=nobody_here%s",
		 (int)(u - ours), ours, u + strlen("user=settle"));
	rv = xa_rm_open(k, conninfo, &rm, err, sizeof(err));
	cr_assert_eq(rv, XA_RM_ERMERR, "%s: %s", settle_strerror(rv), err);
	cr_assert_null(rm);
	cr_assert_not_null(strstr(err, "nobody_here"), "%s", err);
}

Test(postgresql, refused_login_is_rmerr)
{
	refused_login_is_rmerr(PG);
}
Test(mariadb, refused_login_is_rmerr)
{
	refused_login_is_rmerr(MY);
}

Test(postgresql, unreachable_is_transient)
{
	unreachable_is_transient(PG);
}
Test(mariadb, unreachable_is_transient)
{
	unreachable_is_transient(MY);
}

Test(postgresql, connection_killed_mid_branch)
{
	connection_killed_mid_branch(PG);
}
Test(mariadb, connection_killed_mid_branch)
{
	connection_killed_mid_branch(MY);
}
Test(postgresql, bad_conninfo)
{
	bad_conninfo(PG);
}
Test(mariadb, bad_conninfo)
{
	bad_conninfo(MY);
}

Test(postgresql, read_only_branch_votes_rdonly)
{
	char tag[64];
	struct xa_xid xid;
	struct xa_rm *rm = xt_open(PG);
	enum xa_rm_vote vote = XA_RM_VOTE_OK;
	int64_t v;

	xt_table(rm);
	xt_tag(tag, sizeof(tag));
	xt_xid(&xid, tag, "ro");
	XT_OK(rm, xa_rm_start(rm, &xid));
	XT_OK(rm, xa_rm_query_int(rm, "SELECT count(*) FROM xa_t", &v));
	XT_OK(rm, xa_rm_prepare(rm, &xid, &vote));
	cr_assert_eq(vote, XA_RM_VOTE_RDONLY);
	cr_assert(!xt_listed(rm, &xid), "no phase 2 for a read-only branch");
	xa_rm_close(rm);
}

/* MariaDB prepares a branch that changed no row and then answers
 * XA_RBROLLBACK to its commit: the adapter votes RDONLY instead. A branch
 * whose UPDATE matched but changed nothing is read-only too; one insert is
 * not. */
Test(mariadb, read_only_branch_votes_rdonly)
{
	char tag[64], sql[256];
	struct xa_xid ro, rw;
	struct xa_rm *rm = xt_open(MY);
	enum xa_rm_vote vote = XA_RM_VOTE_OK;
	int64_t v;

	xt_table(rm);
	xt_tag(tag, sizeof(tag));
	xt_xid(&ro, tag, "ro");
	XT_OK(rm, xa_rm_start(rm, &ro));
	XT_OK(rm, xa_rm_query_int(rm, "SELECT count(*) FROM xa_t", &v));
	XT_OK(rm, xa_rm_exec(rm, "UPDATE xa_t SET v = v WHERE 1 = 0"));
	XT_OK(rm, xa_rm_prepare(rm, &ro, &vote));
	cr_assert_eq(vote, XA_RM_VOTE_RDONLY);
	cr_assert(!xt_listed(rm, &ro), "no phase 2 for a read-only branch");

	xt_xid(&rw, tag, "rw");
	XT_OK(rm, xa_rm_start(rm, &rw));
	snprintf(sql, sizeof sql, "INSERT INTO xa_t VALUES ('%s-rw', 1)", tag);
	XT_OK(rm, xa_rm_exec(rm, sql));
	XT_OK(rm, xa_rm_prepare(rm, &rw, &vote));
	cr_assert_eq(vote, XA_RM_VOTE_OK, "a branch that inserted a row");
	cr_assert(xt_listed(rm, &rw));
	XT_OK(rm, xa_rm_rollback(rm, &rw));
	xa_rm_close(rm);
}

Test(postgresql, failed_statement_votes_rollback)
{
	char tag[64];
	struct xa_xid xid;
	struct xa_rm *rm = xt_open(PG);
	enum xa_rm_vote vote = XA_RM_VOTE_OK;

	xt_table(rm);
	xt_tag(tag, sizeof(tag));
	xt_xid(&xid, tag, "b1");
	XT_OK(rm, xa_rm_start(rm, &xid));
	xt_put(rm, tag, 1);
	cr_assert_eq(xa_rm_exec(rm, "SELECT 1/0"), XA_RM_ERMERR);
	XT_OK(rm, xa_rm_prepare(rm, &xid, &vote));
	cr_assert_eq(vote, XA_RM_VOTE_ROLLBACK);
	cr_assert(!xt_listed(rm, &xid));
	cr_assert_eq(xt_get(rm, tag), -1);
	xa_rm_close(rm);
}

Test(postgresql, foreign_gids_are_ignored)
{
	char tag[64], sql[256];
	struct xa_xid xid;
	struct xa_rm *a, *b;
	struct xa_xid *all;
	size_t n, i;
	/* Another TM's gid, and two with our prefix but not our encoding. */
	const char *foreign[] = {"foreign-gid-", "settle:bad-",
				 "settle:1:AR:AQ-"};

	xt_tag(tag, sizeof(tag));
	b = xt_open(PG);
	xt_table(b);
	for (i = 0; i < 3; i++) {
		char gid[100];

		snprintf(gid, sizeof(gid), "%s%s", foreign[i], tag);
		snprintf(sql, sizeof(sql),
			 "BEGIN; INSERT INTO xa_t VALUES ('%s-%zu', 1); "
			 "PREPARE TRANSACTION '%s'",
			 tag, i, gid);
		XT_OK(b, xa_rm_exec(b, sql));
	}
	xt_xid(&xid, tag, "ours");
	a = xt_prepared(PG, &xid, tag, 3);
	XT_OK(b, xa_rm_recover(b, XA_RM_ANY_FORMAT, &all, &n));
	for (i = 0; i < n; i++) {
		char text[XA_XID_TEXT_MAX];

		cr_assert_eq(xa_xid_format(&all[i], text, sizeof(text)), 0);
	}
	cr_assert(xt_listed(b, &xid));
	free(all);
	XT_OK(b, xa_rm_rollback(b, &xid));
	for (i = 0; i < 3; i++) {
		char gid[100];

		snprintf(gid, sizeof(gid), "%s%s", foreign[i], tag);
		snprintf(sql, sizeof(sql), "ROLLBACK PREPARED '%s'", gid);
		XT_OK(b, xa_rm_exec(b, sql));
	}
	xa_rm_close(a);
	xa_rm_close(b);
}

/*
 * Money moves from a PostgreSQL account to a MariaDB account under one
 * global transaction: both branches prepared, then both committed from
 * fresh connections; a second transfer is prepared on both and rolled back
 * on both. The total never changes.
 */
Test(both, transfer_between_postgresql_and_mariadb)
{
	char tag[64], pk[80], mk[80];
	struct xa_xid xp, xm;
	struct xa_rm *p, *m;
	enum xa_rm_vote vote;
	int round;

	xt_tag(tag, sizeof(tag));
	snprintf(pk, sizeof(pk), "%s-pg", tag);
	snprintf(mk, sizeof(mk), "%s-my", tag);
	p = xt_open(PG);
	m = xt_open(MY);
	xt_table(p);
	xt_table(m);
	xt_put(p, pk, 100);
	xt_put(m, mk, 100);
	xa_rm_close(p);
	xa_rm_close(m);

	for (round = 0; round < 2; round++) {
		char gtrid[80];
		bool commit = round == 0;
		int64_t amount = commit ? 30 : 50;

		snprintf(gtrid, sizeof(gtrid), "%s-r%d", tag, round);
		cr_assert_eq(
		    xa_xid_init(&xp, XT_FID, gtrid, strlen(gtrid), "pg", 2), 0);
		cr_assert_eq(
		    xa_xid_init(&xm, XT_FID, gtrid, strlen(gtrid), "my", 2), 0);
		p = xt_open(PG);
		m = xt_open(MY);
		XT_OK(p, xa_rm_start(p, &xp));
		XT_OK(m, xa_rm_start(m, &xm));
		xt_add(p, pk, -amount);
		xt_add(m, mk, amount);
		XT_OK(p, xa_rm_prepare(p, &xp, &vote));
		cr_assert_eq(vote, XA_RM_VOTE_OK);
		XT_OK(m, xa_rm_prepare(m, &xm, &vote));
		cr_assert_eq(vote, XA_RM_VOTE_OK);
		/* The coordinator of the later sessions uses new
		 * connections, as after its own restart. */
		xa_rm_close(p);
		xa_rm_close(m);
		p = xt_open(PG);
		m = xt_open(MY);
		cr_assert(xt_listed(p, &xp));
		cr_assert(xt_listed(m, &xm));
		if (commit) {
			XT_OK(p, xa_rm_commit(p, &xp, false));
			XT_OK(m, xa_rm_commit(m, &xm, false));
		} else {
			XT_OK(p, xa_rm_rollback(p, &xp));
			XT_OK(m, xa_rm_rollback(m, &xm));
		}
		cr_assert(!xt_listed(p, &xp));
		cr_assert(!xt_listed(m, &xm));
		cr_assert_eq(xt_get(p, pk), 70, "round %d", round);
		cr_assert_eq(xt_get(m, mk), 130, "round %d", round);
		cr_assert_eq(xt_get(p, pk) + xt_get(m, mk), 200,
			     "balances conserved");
		xa_rm_close(p);
		xa_rm_close(m);
	}
}

/* One test at a time (a test restarts the servers), servers started once
 * by the runner, before its tests. */
int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	criterion_options.jobs = 1;
	if (criterion_handle_args(argc, argv, true)) {
		if (xt_servers_setup() != 0) {
			fprintf(stderr, "xa tests: FAIL: no XA test servers\n");
			xt_servers_teardown();
			criterion_finalize(tests);
			return 1;
		}
		result = !criterion_run_all_tests(tests);
		xt_servers_teardown();
	}
	criterion_finalize(tests);
	return result;
}

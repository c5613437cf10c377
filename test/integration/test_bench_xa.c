/*
 * test_bench_xa.c — settle-bench's XA modes against the real PostgreSQL
 * and MariaDB test servers (xa/tests/servers.h, started once by this
 * runner; missing servers fail the run): --mode xa-local (the bench as its
 * own TM) and --mode xa (a real settled with --xa-rm as the TM) commit,
 * and the databases agree: the bench's account rows moved by exactly the
 * commits it counted, and nothing is left prepared. Checked here at the
 * databases, not only through the bench's own balances_ok.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "xa/rm.h"
#include "xa/tests/servers.h"

#define TABLE "settle_bench_xa"

static void init(void)
{
	it_setup();
}

static void fini(void)
{
	it_teardown();
}

TestSuite(bench_xa, .init = init, .fini = fini, .timeout = 120);

static struct xa_rm *db(enum xa_rm_kind kind)
{
	char err[512] = "";
	struct xa_rm *rm = NULL;
	int rv = xa_rm_open(kind, xt_conninfo(kind), &rm, err, sizeof(err));

	cr_assert_eq(rv, 0, "connect: %s (%s)", settle_strerror(rv), err);
	return rm;
}

/* Sum of the bench's account rows 1..rows in the database of kind (the
 * table is created as the bench does when it is missing, so that a first
 * run starts from a known sum). */
static int64_t accounts(enum xa_rm_kind kind, unsigned rows)
{
	struct xa_rm *rm = db(kind);
	char sql[128];
	int64_t sum = -1;

	cr_assert_eq(
	    xa_rm_exec(rm, kind == XA_RM_POSTGRESQL
			       ? "CREATE TABLE IF NOT EXISTS " TABLE
				 " (id integer PRIMARY KEY,"
				 " balance bigint NOT NULL)"
			       : "CREATE TABLE IF NOT EXISTS " TABLE
				 " (id INT PRIMARY KEY,"
				 " balance BIGINT NOT NULL) ENGINE=InnoDB"),
	    0, "%s", xa_rm_errmsg(rm));
	snprintf(sql, sizeof(sql),
		 "SELECT COALESCE(SUM(balance), 0) FROM " TABLE
		 " WHERE id <= %u",
		 rows);
	cr_assert_eq(xa_rm_query_int(rm, sql, &sum), 0, "%s", xa_rm_errmsg(rm));
	xa_rm_close(rm);
	return sum;
}

/* How many XIDs are prepared in the database of kind, of any formatID. */
static size_t prepared(enum xa_rm_kind kind)
{
	struct xa_rm *rm = db(kind);
	struct xa_xid *xids = NULL;
	size_t n = 0;

	cr_assert_eq(xa_rm_recover(rm, XA_RM_ANY_FORMAT, &xids, &n), 0, "%s",
		     xa_rm_errmsg(rm));
	free(xids);
	xa_rm_close(rm);
	return n;
}

/* Neither database's conninfo (host and port) appears in text. */
static void no_conninfo(const char *text)
{
	enum xa_rm_kind kinds[2] = {XA_RM_POSTGRESQL, XA_RM_MARIADB};

	for (int i = 0; i < 2; i++) {
		const char *port = strstr(xt_conninfo(kinds[i]), "port=");

		cr_assert_not_null(port);
		cr_assert_null(strstr(text, xt_conninfo(kinds[i])), "%s", text);
		/* "port=NNNNN" alone would already leak where it is. */
		char needle[32];
		snprintf(needle, sizeof(needle), "%.*s",
			 (int)strcspn(port, " "), port);
		cr_assert_null(strstr(text, needle), "%s", text);
	}
}

/*
 * Run settle-bench in mode for 1 s with conc workers on rows account rows
 * (cluster may be NULL for xa-local, rm_pg the PostgreSQL RM's name);
 * check its exit status and that the databases moved by its count of
 * commits. Returns that count.
 */
static long long run_bench(const char *cluster, const char *mode, unsigned conc,
			   unsigned rows, const char *rm_pg, int want_status)
{
	char sconc[16], srows[16];
	char *argv[24];
	char *out = NULL, *err = NULL;
	int64_t pg0 = accounts(XA_RM_POSTGRESQL, rows);
	int64_t my0 = accounts(XA_RM_MARIADB, rows);
	long long committed;
	int a = 0, st;

	snprintf(sconc, sizeof(sconc), "%u", conc);
	snprintf(srows, sizeof(srows), "%u", rows);
	argv[a++] = (char *)it_bin("settle-bench");
	if (cluster) {
		argv[a++] = "--cluster";
		argv[a++] = (char *)cluster;
	}
	argv[a++] = "--mode";
	argv[a++] = (char *)mode;
	argv[a++] = "--concurrency";
	argv[a++] = sconc;
	argv[a++] = "--xa-rows";
	argv[a++] = srows;
	argv[a++] = "--duration";
	argv[a++] = "1";
	argv[a++] = "--json";
	if (rm_pg) {
		argv[a++] = "--xa-pg-rm";
		argv[a++] = (char *)rm_pg;
	}
	argv[a] = NULL;
	/* The conninfo strings come from $SETTLE_TEST_PG and
	 * $SETTLE_TEST_MARIADB, exported by xt_servers_setup(). */
	st = it_run(argv, &out, &err, 60000);
	cr_assert_eq(st, want_status, "status %d\nstdout: %s\nstderr: %s", st,
		     out, err);
	no_conninfo(out);
	no_conninfo(err);
	committed = it_json_num(out, "committed");
	cr_assert_eq(it_json_num(out, "aborted"), 0, "%s", out);
	if (want_status == 0) {
		cr_assert_gt(committed, 0, "%s", out);
		cr_assert_eq(it_json_num(out, "errors"), 0, "%s\n%s", out, err);
		cr_assert(strstr(out, "\"balances_ok\":true"), "%s\n%s", out,
			  err);
	}
	cr_assert(strstr(out, "{\"mode\":\"") == out, "%s", out);
	cr_assert_eq(it_json_num(out, "rows"), rows, "%s", out);
	/* What the databases say, whatever the bench said. */
	cr_assert_eq(accounts(XA_RM_POSTGRESQL, rows), pg0 - committed, "%s",
		     out);
	cr_assert_eq(accounts(XA_RM_MARIADB, rows), my0 + committed, "%s", out);
	cr_assert_eq(prepared(XA_RM_POSTGRESQL), 0);
	cr_assert_eq(prepared(XA_RM_MARIADB), 0);
	free(out);
	free(err);
	return committed;
}

/* The settled arguments: both test servers as RMs pg and maria. */
/* A node with both RMs, claiming feature level level (NULL: its own). */
static void node_start_at(struct it_node *n, const char *level)
{
	static char pg[1200], my[1200];

	snprintf(pg, sizeof(pg), "pg=pg:%s", xt_conninfo(XA_RM_POSTGRESQL));
	snprintf(my, sizeof(my), "maria=mariadb:%s",
		 xt_conninfo(XA_RM_MARIADB));
	it_node_start(
	    n, 1,
	    (const char *const[]){"--xa-rm", pg, "--xa-rm", my,
				  level != NULL ? "--feature-level" : NULL,
				  level, NULL});
}

static void node_start(struct it_node *n)
{
	node_start_at(n, NULL);
}

/* A cluster below feature level 6 (an older release, or one just
 * started): the bench falls back to votes one by one and the leader
 * committing; every transaction still commits at both databases. */
Test(bench_xa, an_older_cluster_commits_through_the_leader)
{
	struct it_node n;

	node_start_at(&n, "5");
	run_bench(n.endpoint, "xa", 2, 2, NULL, 0);
	it_stop(n.proc);
}

Test(bench_xa, local_commits_both_databases)
{
	run_bench(NULL, "xa-local", 2, 2, NULL, 0);
}

/* The transactions the node has not finished (settlectl status). */
static long long active_on(const struct it_node *n)
{
	char *argv[] = {(char *)it_bin("settlectl"),
			"--cluster",
			(char *)n->endpoint,
			"--json",
			"status",
			NULL};
	char *out = NULL, *err = NULL;
	long long active;

	cr_assert_eq(it_run(argv, &out, &err, 10000), 0, "%s%s", out, err);
	active = it_json_num(out, "active");
	free(out);
	free(err);
	return active;
}

/*
 * The initiators report their commits without waiting for the answers
 * (settle_xa_report_committed()); the reports still arrive, long before
 * the leader would commit in their place (the bench leaves it 5 s). Each
 * worker sends its last report again, waited for, as it stops.
 */
static void reports_arrive(const struct it_node *n)
{
	long long active = -1;

	for (int i = 0; i < 30; i++) {
		active = active_on(n);
		if (active == 0)
			return;
		usleep(100 * 1000);
	}
	cr_assert_fail("%lld transactions still unfinished 3 s after the "
		       "bench: the reports did not arrive",
		       active);
}

Test(bench_xa, settled_commits_both_databases)
{
	struct it_node n;

	node_start(&n);
	run_bench(n.endpoint, "xa", 2, 2, NULL, 0);
	reports_arrive(&n);
	/* One shared row: the workers wait for each other's row locks,
	 * held until the leader has committed; still all commit. */
	run_bench(n.endpoint, "xa", 3, 1, NULL, 0);
	it_stop(n.proc);
}

/* An RM name the cluster does not know: every Register fails, nothing
 * commits, nothing is touched or left prepared, exit 1. */
Test(bench_xa, unknown_rm_commits_nothing)
{
	struct it_node n;

	node_start(&n);
	cr_assert_eq(run_bench(n.endpoint, "xa", 1, 1, "nosuch", 1), 0);
	it_stop(n.proc);
}

/* No conninfo at all: a clear error, exit 1, nothing run. */
Test(bench_xa, needs_both_databases)
{
	char *argv[] = {"/usr/bin/env",
			"-u",
			"SETTLE_TEST_PG",
			"-u",
			"SETTLE_TEST_MARIADB",
			(char *)it_bin("settle-bench"),
			"--mode",
			"xa-local",
			"--xa-mariadb",
			(char *)xt_conninfo(XA_RM_MARIADB),
			"--duration",
			"1",
			NULL};
	char *out, *err;

	cr_assert_eq(it_run(argv, &out, &err, 10000), 1, "%s", err);
	cr_assert(strstr(err, "--xa-pg"), "%s", err);
	no_conninfo(out);
	no_conninfo(err);
	free(out);
	free(err);
}

/* One test at a time on the shared servers, started by this runner. */
int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	criterion_options.jobs = 1;
	if (criterion_handle_args(argc, argv, true)) {
		if (xt_servers_setup() != 0) {
			fprintf(stderr, "bench xa tests: FAIL: no XA test "
					"servers\n");
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

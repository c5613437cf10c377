/*
 * mariadb_race.c — a standalone reproducer of the MariaDB branch that is
 * lost between the end of the session that prepared it and another
 * session's XA COMMIT of it (docs/BENCHMARKS.md, "A MariaDB branch lost
 * between disconnect and commit"). Not a test: it runs until its deadline
 * or the first loss, for people (ours and MariaDB's) to study the race.
 *
 *   mariadb_race [--threads N] [--seconds S] [--retry-ms MS] [--continue]
 *                [--mitigate M] [CONNINFO]
 *
 * CONNINFO is xa/rm.h's MariaDB conninfo, else SETTLE_TEST_MARIADB. Each
 * thread owns one row of race_rows and loops: session A (a new connection)
 * XA START, UPDATE of its row +1, XA END, XA PREPARE, close A; then XA
 * COMMIT of that XID on the thread's long-lived session B, retried while
 * the adapter answers "still attached to another session" (every MS ms,
 * default 1); then a plain SELECT on B checks that the row equals the
 * number of commits that answered OK. M (one hypothesis at a time) runs between
 * close and commit: none          nothing (the default) recover       wait
 * until XA RECOVER on B lists the XID sleep=MS      sleep MS milliseconds
 *   processlist   wait until A's id has left information_schema.PROCESSLIST
 * --continue: count the losses instead of stopping at the first (each
 * thread goes on with a new row, the lost branch holding the old one).
 * Exit 0: no loss until the deadline. 1: a loss (a committed row that did
 * not move, or A's UPDATE timing out on a lock); what was seen is printed.
 * 2: usage or another error. The conninfo is never printed.
 */
#include <errno.h>
#include <inttypes.h>
#include <mysql.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "xa/rm.h"
#include "xa/rm_int.h"
#include "xa/xid.h"

#define RACE_FORMAT_ID 0x52414345 /* "RACE" */
/* A's lock waits end long before the adapter's 30 s read timeout. */
#define RACE_LOCK_WAIT_S 5
/* How long a wait (attached retries, a mitigation) may last. */
#define RACE_WAIT_MAX_MS 20000

enum race_mitigation {
	RACE_M_NONE,
	RACE_M_RECOVER,
	RACE_M_SLEEP,
	RACE_M_PROCESSLIST,
};

static const char *race_conninfo;
static enum race_mitigation race_mitigate = RACE_M_NONE;
static long race_sleep_ms;
static long race_retry_ms = 1; /* between "attached" answers */
static struct timespec race_deadline;

static atomic_bool race_stop;
static atomic_int race_status; /* 0, or the exit status of the first failure */
static bool race_continue;     /* --continue */
static atomic_uint race_next_row; /* --continue: rows after the first ones */
static atomic_ulong race_losses;
static atomic_ulong race_txns, race_attached, race_attached_txns,
    race_mitigation_waits;
static pthread_mutex_t race_print_lock = PTHREAD_MUTEX_INITIALIZER;

struct race_thread {
	pthread_t tid;
	unsigned id; /* its row in race_rows */
};

static long race_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 +
	       (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static bool race_past_deadline(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > race_deadline.tv_sec ||
	       (now.tv_sec == race_deadline.tv_sec &&
		now.tv_nsec >= race_deadline.tv_nsec);
}

static void race_nap(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Record the first failure (status 1 or 2) and make every thread stop. */
static void race_fail(int status)
{
	int zero = 0;

	atomic_compare_exchange_strong(&race_status, &zero, status);
	atomic_store(&race_stop, true);
}

/*
 * A raw libmariadb connection for the diagnostics: xa/rm.h runs only
 * integer queries, and the rows of innodb_trx and XA RECOVER are wanted as
 * they are. NULL (reason printed) on failure.
 */
static MYSQL *race_raw_connect(void)
{
	char key[32] = "", val[256], host[256] = "", user[128] = "",
	     pass[256] = "", db[128] = "", sock[256] = "";
	unsigned port = 0, timeout = 10;
	const char *p = race_conninfo;
	MYSQL *c;
	int r;

	while ((r = xa_rm__conninfo_next(&p, key, sizeof(key), val,
					 sizeof(val))) == 1) {
		char *dst = NULL;
		size_t cap = 0;

		if (strcmp(key, "host") == 0)
			dst = host, cap = sizeof(host);
		else if (strcmp(key, "user") == 0)
			dst = user, cap = sizeof(user);
		else if (strcmp(key, "password") == 0)
			dst = pass, cap = sizeof(pass);
		else if (strcmp(key, "dbname") == 0)
			dst = db, cap = sizeof(db);
		else if (strcmp(key, "unix_socket") == 0)
			dst = sock, cap = sizeof(sock);
		else if (strcmp(key, "port") == 0)
			port = (unsigned)strtoul(val, NULL, 10);
		else if (strcmp(key, "connect_timeout") == 0)
			timeout = (unsigned)strtoul(val, NULL, 10);
		if (dst != NULL)
			snprintf(dst, cap, "%s", val);
	}
	if (r < 0) {
		fprintf(stderr, "diagnostics: bad conninfo near key '%s'\n",
			key);
		return NULL;
	}
	c = mysql_init(NULL);
	if (c == NULL)
		return NULL;
	mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	if (mysql_real_connect(c, host[0] ? host : NULL, user[0] ? user : NULL,
			       pass, db[0] ? db : NULL, port,
			       sock[0] ? sock : NULL, 0) == NULL) {
		fprintf(stderr, "diagnostics: connect: %u %s\n", mysql_errno(c),
			mysql_error(c));
		mysql_close(c);
		return NULL;
	}
	return c;
}

/* Print the result of sql as "name=value ..." lines under a title. */
static void race_dump(MYSQL *c, const char *title, const char *sql)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	MYSQL_FIELD *f;
	unsigned i, nf;
	unsigned long rows = 0;

	fprintf(stderr, "-- %s\n", title);
	if (mysql_query(c, sql) != 0) {
		fprintf(stderr, "   failed: %u %s\n", mysql_errno(c),
			mysql_error(c));
		return;
	}
	res = mysql_store_result(c);
	if (res == NULL) {
		fprintf(stderr, "   no result: %u %s\n", mysql_errno(c),
			mysql_error(c));
		return;
	}
	nf = mysql_num_fields(res);
	f = mysql_fetch_fields(res);
	while ((row = mysql_fetch_row(res)) != NULL) {
		fprintf(stderr, "  ");
		for (i = 0; i < nf; i++)
			fprintf(stderr, " %s=%s", f[i].name,
				row[i] ? row[i] : "NULL");
		fprintf(stderr, "\n");
		rows++;
	}
	fprintf(stderr, "   (%lu rows)\n", rows);
	mysql_free_result(res);
}

/*
 * Print everything seen about a loss: the XID, the value against the
 * commits, the sessionless InnoDB transactions, XA RECOVER, and the row
 * again a little later (a loss that lasts is not a visibility lag).
 */
static void race_report(unsigned id, const struct xa_xid *xid, const char *what,
			int64_t seen, uint64_t expected, unsigned long n,
			unsigned attempts, long close_ms)
{
	char xtext[XA_XID_TEXT_MAX], sql[160];
	MYSQL *c;

	atomic_fetch_add(&race_losses, 1);
	pthread_mutex_lock(&race_print_lock);
	if (xa_xid_format(xid, xtext, sizeof(xtext)) != 0)
		snprintf(xtext, sizeof(xtext), "(unprintable)");
	fprintf(stderr,
		"LOST BRANCH: row %u, transaction %lu, xid %s: %s\n"
		"  row %u: value %" PRId64 ", commits that answered OK %" PRIu64
		"\n"
		"  XA COMMIT attempts %u (the ones before the last answered "
		"\"attached\"), OK %ld ms after A's close\n",
		id, n, xtext, what, id, seen, expected, attempts, close_ms);
	/* --continue measures a rate: the short form, and no pause. */
	c = race_continue ? NULL : race_raw_connect();
	if (c != NULL) {
		race_dump(c, "innodb_trx without a session",
			  "SELECT trx_id, trx_state, trx_started, "
			  "trx_mysql_thread_id, trx_rows_modified, "
			  "trx_rows_locked, trx_lock_structs, trx_query "
			  "FROM information_schema.innodb_trx "
			  "WHERE trx_mysql_thread_id = 0");
		race_dump(c, "XA RECOVER", "XA RECOVER FORMAT='SQL'");
		race_dump(c, "sessions",
			  "SELECT ID, COMMAND, STATE, TIME "
			  "FROM information_schema.PROCESSLIST "
			  "WHERE COMMAND <> 'Daemon'");
		race_nap(2000);
		snprintf(sql, sizeof(sql),
			 "SELECT id, v FROM race_rows WHERE id = %u", id);
		race_dump(c, "the row 2 s later", sql);
		race_dump(c, "innodb_trx without a session 2 s later",
			  "SELECT trx_id, trx_state, trx_mysql_thread_id, "
			  "trx_rows_modified, trx_rows_locked "
			  "FROM information_schema.innodb_trx "
			  "WHERE trx_mysql_thread_id = 0");
		mysql_close(c);
	}
	fflush(stderr);
	pthread_mutex_unlock(&race_print_lock);
}

static void race_error(unsigned id, const char *what, int rv,
		       const struct xa_rm *rm)
{
	pthread_mutex_lock(&race_print_lock);
	fprintf(stderr, "thread %u: %s: %s (%d): %s\n", id, what,
		settle_strerror(rv), rv, rm ? xa_rm_errmsg(rm) : "");
	pthread_mutex_unlock(&race_print_lock);
}

/* Is xid among B's XA RECOVER? 1 yes, 0 no, < 0 error. */
static int race_listed(struct xa_rm *b, const struct xa_xid *xid)
{
	struct xa_xid *all = NULL;
	size_t n = 0, i;
	int rv, found = 0;

	rv = xa_rm_recover(b, RACE_FORMAT_ID, &all, &n);
	if (rv != 0)
		return rv;
	for (i = 0; i < n; i++)
		if (xa_xid_equal(&all[i], xid))
			found = 1;
	free(all);
	return found;
}

/* The mitigation under test, between A's close and B's commit. 0, or an
 * error of B; a wait past RACE_WAIT_MAX_MS is reported as -ETIMEDOUT. */
static int race_mitigation(struct xa_rm *b, const struct xa_xid *xid,
			   int64_t a_conn_id)
{
	struct timespec t0;
	char sql[128];
	int64_t count;
	int rv = 0;
	bool waited = false;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	switch (race_mitigate) {
	case RACE_M_NONE:
		return 0;
	case RACE_M_SLEEP:
		race_nap(race_sleep_ms);
		return 0;
	case RACE_M_RECOVER:
		while ((rv = race_listed(b, xid)) == 0) {
			waited = true;
			if (race_ms_since(&t0) > RACE_WAIT_MAX_MS)
				return -ETIMEDOUT;
			race_nap(1);
		}
		break;
	case RACE_M_PROCESSLIST:
		snprintf(sql, sizeof(sql),
			 "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
			 "WHERE ID = %" PRId64,
			 a_conn_id);
		while ((rv = xa_rm_query_int(b, sql, &count)) == 0 &&
		       count > 0) {
			waited = true;
			if (race_ms_since(&t0) > RACE_WAIT_MAX_MS)
				return -ETIMEDOUT;
			race_nap(1);
		}
		break;
	}
	if (waited)
		atomic_fetch_add(&race_mitigation_waits, 1);
	return rv < 0 ? rv : 0;
}

/* Point the thread's statements at row. */
static void race_use_row(unsigned row, char *sql, size_t sql_cap, char *check,
			 size_t check_cap)
{
	snprintf(sql, sql_cap, "UPDATE race_rows SET v = v + 1 WHERE id = %u",
		 row);
	snprintf(check, check_cap, "SELECT v FROM race_rows WHERE id = %u",
		 row);
}

/*
 * --continue: go on with a new row of the thread's own
 * (the lost branch keeps the old one locked). 0, or an error of B.
 */
static int race_next(struct xa_rm *b, unsigned *row, char *sql, size_t sql_cap,
		     char *check, size_t check_cap, int64_t *base, uint64_t *ok)
{
	char ins[96];
	int rv;

	*row = atomic_fetch_add(&race_next_row, 1);
	snprintf(ins, sizeof(ins), "INSERT INTO race_rows VALUES (%u, 0)",
		 *row);
	rv = xa_rm_exec(b, ins);
	if (rv != 0)
		return rv;
	race_use_row(*row, sql, sql_cap, check, check_cap);
	*base = 0;
	*ok = 0;
	return 0;
}

static void *race_run(void *arg)
{
	struct race_thread *t = arg;
	unsigned row = t->id;
	struct xa_rm *a = NULL, *b = NULL;
	char errbuf[256], gtrid[64], sql[128], check[128], lock_wait[64];
	uint64_t ok = 0;
	int64_t base, v = -1, a_conn_id = 0;
	unsigned long n = 0;
	int rv;

	rv = xa_rm_open(XA_RM_MARIADB, race_conninfo, &b, errbuf,
			sizeof(errbuf));
	if (rv != 0) {
		fprintf(stderr, "thread %u: open B: %s\n", t->id, errbuf);
		race_fail(2);
		return NULL;
	}
	race_use_row(row, sql, sizeof(sql), check, sizeof(check));
	snprintf(lock_wait, sizeof(lock_wait),
		 "SET SESSION innodb_lock_wait_timeout = %d", RACE_LOCK_WAIT_S);
	rv = xa_rm_query_int(b, check, &base);
	if (rv != 0) {
		race_error(t->id, "read the row", rv, b);
		race_fail(2);
		goto out;
	}
	while (!atomic_load(&race_stop) && !race_past_deadline()) {
		struct xa_xid xid;
		enum xa_rm_vote vote;
		struct timespec t0, closed;
		unsigned attempts = 1;
		long close_ms = 0;

		n++;
		snprintf(gtrid, sizeof(gtrid), "race-%ld-%u-%lu",
			 (long)getpid(), t->id, n);
		xa_xid_init(&xid, RACE_FORMAT_ID, gtrid, strlen(gtrid), "b", 1);

		rv = xa_rm_open(XA_RM_MARIADB, race_conninfo, &a, errbuf,
				sizeof(errbuf));
		if (rv != 0) {
			fprintf(stderr, "thread %u: open A: %s\n", t->id,
				errbuf);
			race_fail(2);
			break;
		}
		rv = xa_rm_exec(a, lock_wait);
		if (rv == 0 && race_mitigate == RACE_M_PROCESSLIST)
			rv = xa_rm_query_int(a, "SELECT CONNECTION_ID()",
					     &a_conn_id);
		if (rv == 0)
			rv = xa_rm_start(a, &xid);
		if (rv != 0) {
			race_error(t->id, "A start", rv, a);
			race_fail(2);
			break;
		}
		rv = xa_rm_exec(a, sql);
		if (rv != 0) {
			/* Most likely the row is locked by a branch nobody
			 * holds: a commit answered OK but did not happen. */
			race_error(t->id, "A update", rv, a);
			(void)xa_rm_query_int(b, check, &v);
			race_report(row, &xid,
				    "the UPDATE of the thread's own row "
				    "timed out on a lock",
				    v, base + ok, n, 0, -1);
			race_fail(1);
			break;
		}
		rv = xa_rm_end(a, &xid);
		if (rv == 0)
			rv = xa_rm_prepare(a, &xid, &vote);
		if (rv == 0 && vote != XA_RM_VOTE_OK)
			rv = XA_RM_ERMERR;
		if (rv != 0) {
			race_error(t->id, "A end/prepare", rv, a);
			race_fail(2);
			break;
		}
		xa_rm_close(a);
		a = NULL;
		clock_gettime(CLOCK_MONOTONIC, &closed);

		rv = race_mitigation(b, &xid, a_conn_id);
		if (rv != 0) {
			race_error(t->id, "mitigation wait", rv, b);
			race_fail(2);
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while ((rv = xa_rm_commit(b, &xid, false)) ==
			   XA_RM_ETRANSIENT &&
		       strstr(xa_rm_errmsg(b), "still attached") != NULL &&
		       race_ms_since(&t0) < RACE_WAIT_MAX_MS) {
			atomic_fetch_add(&race_attached, 1);
			attempts++;
			race_nap(race_retry_ms);
		}
		close_ms = race_ms_since(&closed);
		if (attempts > 1)
			atomic_fetch_add(&race_attached_txns, 1);
		if (rv != 0) {
			race_error(t->id, "B commit", rv, b);
			race_fail(2);
			break;
		}
		ok++;
		atomic_fetch_add(&race_txns, 1);
		rv = xa_rm_query_int(b, check, &v);
		if (rv != 0) {
			race_error(t->id, "B check", rv, b);
			race_fail(2);
			break;
		}
		if ((uint64_t)(v - base) != ok) {
			race_report(row, &xid,
				    "XA COMMIT answered OK but the row did "
				    "not move",
				    v, base + ok, n, attempts, close_ms);
			if (race_continue) {
				rv = race_next(b, &row, sql, sizeof(sql), check,
					       sizeof(check), &base, &ok);
				if (rv == 0)
					continue;
				race_error(t->id, "new row", rv, b);
				race_fail(2);
				break;
			}
			race_fail(1);
			break;
		}
	}
out:
	xa_rm_close(a);
	xa_rm_close(b);
	return NULL;
}

/* A fresh table, one row per thread, and no prepared XID of an earlier run
 * in the way. */
static int race_setup(unsigned threads)
{
	struct xa_rm *rm;
	struct xa_xid *old = NULL;
	char errbuf[256], sql[128];
	size_t n = 0, i;
	unsigned t;
	int rv;

	rv = xa_rm_open(XA_RM_MARIADB, race_conninfo, &rm, errbuf,
			sizeof(errbuf));
	if (rv != 0) {
		fprintf(stderr, "mariadb_race: connect: %s\n", errbuf);
		return rv;
	}
	rv = xa_rm_recover(rm, RACE_FORMAT_ID, &old, &n);
	for (i = 0; rv == 0 && i < n; i++)
		rv = xa_rm_rollback(rm, &old[i]);
	free(old);
	if (rv == 0)
		rv = xa_rm_exec(rm, "DROP TABLE IF EXISTS race_rows");
	if (rv == 0)
		rv = xa_rm_exec(rm, "CREATE TABLE race_rows (id INT PRIMARY "
				    "KEY, v BIGINT NOT NULL) ENGINE=InnoDB");
	for (t = 0; rv == 0 && t < threads; t++) {
		snprintf(sql, sizeof(sql),
			 "INSERT INTO race_rows VALUES (%u, 0)", t);
		rv = xa_rm_exec(rm, sql);
	}
	if (rv != 0)
		fprintf(stderr, "mariadb_race: setup: %s\n", xa_rm_errmsg(rm));
	xa_rm_close(rm);
	return rv;
}

static void race_usage(void)
{
	fprintf(stderr, "usage: mariadb_race [--threads N] [--seconds S] "
			"[--retry-ms MS] [--continue]\n"
			"       [--mitigate none|recover|sleep=MS|processlist] "
			"[CONNINFO]\n"
			"CONNINFO defaults to $SETTLE_TEST_MARIADB.\n");
	exit(2);
}

static long race_number(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = s ? strtol(s, &end, 10) : 0;
	if (s == NULL || errno != 0 || end == s || *end != '\0' || v < min ||
	    v > max)
		race_usage();
	return v;
}

int main(int argc, char **argv)
{
	struct race_thread *threads;
	const char *mname = "none";
	long nthreads = 8, seconds = 60;
	struct timespec t0;
	int i, status;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0) {
			nthreads = race_number(argv[++i], 1, 25);
		} else if (strcmp(argv[i], "--seconds") == 0) {
			seconds = race_number(argv[++i], 1, 86400);
		} else if (strcmp(argv[i], "--continue") == 0) {
			race_continue = true;
		} else if (strcmp(argv[i], "--retry-ms") == 0) {
			race_retry_ms = race_number(argv[++i], 0, 10000);
		} else if (strcmp(argv[i], "--mitigate") == 0) {
			mname = argv[++i];
			if (mname == NULL)
				race_usage();
			else if (strcmp(mname, "none") == 0)
				race_mitigate = RACE_M_NONE;
			else if (strcmp(mname, "recover") == 0)
				race_mitigate = RACE_M_RECOVER;
			else if (strcmp(mname, "processlist") == 0)
				race_mitigate = RACE_M_PROCESSLIST;
			else if (strncmp(mname, "sleep=", 6) == 0) {
				race_mitigate = RACE_M_SLEEP;
				race_sleep_ms =
				    race_number(mname + 6, 0, 10000);
			} else
				race_usage();
		} else if (argv[i][0] == '-' || race_conninfo != NULL) {
			race_usage();
		} else {
			race_conninfo = argv[i];
		}
	}
	if (race_conninfo == NULL)
		race_conninfo = getenv("SETTLE_TEST_MARIADB");
	if (race_conninfo == NULL || race_conninfo[0] == '\0') {
		fprintf(stderr, "mariadb_race: no conninfo (argument or "
				"SETTLE_TEST_MARIADB)\n");
		return 2;
	}
	if (mysql_library_init(0, NULL, NULL) != 0) {
		fprintf(stderr, "mariadb_race: client library init failed\n");
		return 2;
	}
	if (race_setup((unsigned)nthreads) != 0)
		return 2;
	race_next_row = (unsigned)nthreads;

	threads = calloc((size_t)nthreads, sizeof(*threads));
	if (threads == NULL)
		return 2;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	race_deadline = t0;
	race_deadline.tv_sec += seconds;
	for (i = 0; i < nthreads; i++) {
		threads[i].id = (unsigned)i;
		if (pthread_create(&threads[i].tid, NULL, race_run,
				   &threads[i]) != 0) {
			fprintf(stderr,
				"mariadb_race: pthread_create failed\n");
			race_fail(2);
			nthreads = i;
			break;
		}
	}
	for (i = 0; i < nthreads; i++)
		pthread_join(threads[i].tid, NULL);
	free(threads);

	status = atomic_load(&race_status);
	if (status == 0 && atomic_load(&race_losses) > 0)
		status = 1;
	printf("mariadb_race: %ld threads, %.1f s, mitigation %s: %lu commits "
	       "OK, %lu lost, %lu answered \"attached\" first (%lu retries), "
	       "%lu mitigation waits: %s\n",
	       nthreads, race_ms_since(&t0) / 1000.0, mname,
	       atomic_load(&race_txns), atomic_load(&race_losses),
	       atomic_load(&race_attached_txns), atomic_load(&race_attached),
	       atomic_load(&race_mitigation_waits),
	       status == 0   ? "no loss"
	       : status == 1 ? "LOST A BRANCH"
			     : "error");
	mysql_library_end();
	return status;
}

/*
 * rm_mariadb.c — MariaDB as an XA resource manager, through libmariadb.
 *
 * MariaDB speaks XA in SQL: XA START / END / PREPARE / COMMIT [ONE PHASE] /
 * ROLLBACK take the xid as X'<hex gtrid>',X'<hex bqual>',<formatID>
 * (xa_xid_to_mysql): hex, so binary XIDs survive any connection character
 * set. XA RECOVER returns formatID, the two lengths and the raw bytes.
 * Since 10.5 a prepared branch outlives its connection and can be finished
 * from another one.
 */
#include "xa/rm_int.h"

#include <errno.h>
#include <limits.h>
#include <mysql.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Server and client error numbers we classify (mysqld_error.h, errmsg.h). */
enum {
	XA_MY_ER_CON_COUNT = 1040,
	XA_MY_ER_ACCESS_DENIED = 1045,
	XA_MY_ER_SHUTDOWN = 1053,
	XA_MY_ER_LOCK_WAIT = 1205,
	XA_MY_ER_DEADLOCK = 1213,
	XA_MY_ER_XAER_NOTA = 1397,
	XA_MY_ER_XAER_INVAL = 1398,
	XA_MY_ER_XAER_RMFAIL = 1399, /* "cannot be executed in state X" */
	XA_MY_ER_XAER_OUTSIDE = 1400,
	XA_MY_ER_XAER_RMERR = 1401,
	XA_MY_ER_XA_RBROLLBACK = 1402,
	XA_MY_ER_XAER_DUPID = 1440,
	XA_MY_ER_XA_RBTIMEOUT = 1613,
	XA_MY_ER_XA_RBDEADLOCK = 1614,
	XA_MY_ER_CONN_KILLED = 1927,
};

/* Per-statement read/write timeout: a hung server is a transient error,
 * not a stuck coordinator thread. */
#define XA_MY_IO_TIMEOUT_S 30

static bool xa_my__is_rb(unsigned e)
{
	return e == XA_MY_ER_XA_RBROLLBACK || e == XA_MY_ER_XA_RBTIMEOUT ||
	       e == XA_MY_ER_XA_RBDEADLOCK;
}

/* Client errors (2000..2999) are about the connection, as are a server in
 * shutdown and a killed session. */
static bool xa_my__is_lost(unsigned e)
{
	return (e >= 2000 && e < 3000) || e == XA_MY_ER_SHUTDOWN ||
	       e == XA_MY_ER_CONN_KILLED;
}

static int xa_my__classify(unsigned e)
{
	switch (e) {
	case XA_MY_ER_XAER_NOTA:
		return XA_RM_ENOTA;
	case XA_MY_ER_XAER_RMFAIL:
	case XA_MY_ER_XAER_OUTSIDE:
		return XA_RM_EPROTO;
	case XA_MY_ER_XAER_DUPID:
		return XA_RM_EDUPID;
	case XA_MY_ER_XAER_INVAL:
		return XA_RM_EINVAL;
	case XA_MY_ER_CON_COUNT:
	case XA_MY_ER_LOCK_WAIT:
		return XA_RM_ETRANSIENT;
	default:
		if (xa_my__is_rb(e))
			return XA_RM_EROLLBACK;
		return XA_RM_ERMERR;
	}
}

static int xa_my__fail(struct xa_rm *rm, const char *what)
{
	MYSQL *c = rm->conn;
	unsigned e = mysql_errno(c);

	snprintf(rm->sqlstate, sizeof(rm->sqlstate), "%u", e);
	if (xa_my__is_lost(e))
		return xa_rm__lost(rm, what, mysql_error(c));
	xa_rm__seterr(rm, "%s: %u %s", what, e, mysql_error(c));
	return xa_my__classify(e);
}

/* mysql_init() initializes the library on first use, which is not
 * thread-safe: do it once, up front. */
static pthread_once_t xa_my__once = PTHREAD_ONCE_INIT;
static int xa_my__lib_rc;

static void xa_my__lib_init(void)
{
	xa_my__lib_rc = mysql_library_init(0, NULL, NULL);
}

static int xa_my_connect(struct xa_rm *rm)
{
	char host[256] = "", user[128] = "", pass[256] = "", db[128] = "",
	     sock[256] = "", key[32] = "", val[256];
	unsigned port = 0, timeout = 10, io = XA_MY_IO_TIMEOUT_S;
	const char *p = rm->conninfo;
	MYSQL *c;
	int r;

	while ((r = xa_rm__conninfo_next(&p, key, sizeof(key), val,
					 sizeof(val))) == 1) {
		char *dst = NULL, *end;
		unsigned long num;

		if (strcmp(key, "host") == 0)
			dst = host;
		else if (strcmp(key, "user") == 0)
			dst = user;
		else if (strcmp(key, "password") == 0)
			dst = pass;
		else if (strcmp(key, "dbname") == 0)
			dst = db;
		else if (strcmp(key, "unix_socket") == 0)
			dst = sock;
		if (dst != NULL) {
			/* All the buffers hold val's 256 bytes but user and
			 * db: snprintf truncation is refused below. */
			size_t cap = (dst == user || dst == db) ? 128 : 256;

			if (strlen(val) >= cap)
				goto bad;
			memcpy(dst, val, strlen(val) + 1);
			continue;
		}
		errno = 0;
		num = strtoul(val, &end, 10);
		if (errno != 0 || end == val || *end != '\0' || num > 65535)
			goto bad;
		if (strcmp(key, "port") == 0 && num > 0)
			port = (unsigned)num;
		else if (strcmp(key, "connect_timeout") == 0 && num > 0)
			timeout = (unsigned)num;
		else
			goto bad;
	}
	if (r < 0)
		goto bad;

	pthread_once(&xa_my__once, xa_my__lib_init);
	if (xa_my__lib_rc != 0) {
		xa_rm__seterr(rm, "mariadb: client library init failed");
		return XA_RM_ERMERR;
	}
	c = mysql_init(NULL);
	if (c == NULL) {
		xa_rm__seterr(rm, "mariadb connect: out of memory");
		return SETTLE_ENOMEM;
	}
	mysql_options(c, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	mysql_options(c, MYSQL_OPT_READ_TIMEOUT, &io);
	mysql_options(c, MYSQL_OPT_WRITE_TIMEOUT, &io);
	/*
	 * No option files are read (libmariadb reads none unless asked) and
	 * auto-reconnect stays off: a silent reconnect would lose the branch
	 * without telling us.
	 */
	if (mysql_real_connect(c, host[0] ? host : NULL, user[0] ? user : NULL,
			       pass, db[0] ? db : NULL, port,
			       sock[0] ? sock : NULL,
			       CLIENT_MULTI_STATEMENTS) == NULL) {
		unsigned e = mysql_errno(c);

		xa_rm__seterr(rm, "mariadb connect: %u %s", e, mysql_error(c));
		mysql_close(c);
		return xa_my__is_lost(e) || e == XA_MY_ER_CON_COUNT
			   ? XA_RM_ETRANSIENT
			   : XA_RM_ERMERR;
	}
	rm->conn = c;
	return 0;
bad:
	xa_rm__seterr(rm, "mariadb connect: bad conninfo near key '%s'", key);
	return XA_RM_EINVAL;
}

/*
 * How long the end of a session that prepared a branch is given before
 * anyone may commit that branch from another session. MariaDB 10.11.19 has
 * a race there: an XA COMMIT that arrives within about a millisecond of the
 * preparing session's end can answer OK and yet leave the branch prepared,
 * unlisted by XA RECOVER and holding its locks until the server restarts
 * (docs/XA.md, "Known issue"; xa/tests/mariadb_race.c reproduces it, about
 * one branch in 300 at 8 threads). With 5 to 10 ms between the end and the
 * commit, about 300,000 commits lost none. The wait cannot prove the race
 * away; it keeps our own initiators out of its window. The coordinator's
 * commit comes after the vote, which the initiator sends only once
 * xa_rm_close() returned.
 */
#define XA_MY_DETACH_WAIT_MS 10

static void xa_my_disconnect(struct xa_rm *rm)
{
	bool wait = rm->conn != NULL && rm->my_prepared;

	if (rm->conn != NULL)
		mysql_close(rm->conn);
	rm->conn = NULL;
	rm->my_prepared = false;
	if (wait) {
		struct timespec ts = {0, XA_MY_DETACH_WAIT_MS * 1000000L};

		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

/*
 * Run sql (one or more statements). When resp is given, the first result
 * set is kept there for the caller (mysql_free_result); the others are
 * drained so the connection is ready for the next command.
 */
static int xa_my__run(struct xa_rm *rm, const char *sql, const char *what,
		      MYSQL_RES **resp)
{
	MYSQL *c = rm->conn;
	int more;

	if (resp != NULL)
		*resp = NULL;
	if (mysql_real_query(c, sql, strlen(sql)) != 0)
		return xa_my__fail(rm, what);
	do {
		MYSQL_RES *res = mysql_store_result(c);

		if (res == NULL && mysql_field_count(c) != 0) {
			if (resp != NULL && *resp != NULL) {
				mysql_free_result(*resp);
				*resp = NULL;
			}
			return xa_my__fail(rm, what);
		}
		if (res != NULL) {
			if (resp != NULL && *resp == NULL)
				*resp = res;
			else
				mysql_free_result(res);
		}
		more = mysql_next_result(c);
		if (more > 0) {
			if (resp != NULL && *resp != NULL) {
				mysql_free_result(*resp);
				*resp = NULL;
			}
			return xa_my__fail(rm, what);
		}
	} while (more == 0);
	return 0;
}

/* Run "XA <verb> <xid> <tail>"; the xid is hex and digits only. */
static int xa_my__xa(struct xa_rm *rm, const char *verb,
		     const struct xa_xid *xid, const char *tail)
{
	char x[XA_XID_MY_MAX], sql[XA_XID_MY_MAX + 64];

	if (xa_xid_to_mysql(xid, x, sizeof(x)) != 0) {
		xa_rm__seterr(rm, "%s: invalid XID", verb);
		return XA_RM_EINVAL;
	}
	snprintf(sql, sizeof(sql), "XA %s %s%s", verb, x, tail);
	return xa_my__run(rm, sql, verb, NULL);
}

static int xa_my_exec(struct xa_rm *rm, const char *sql)
{
	return xa_my__run(rm, sql, "exec", NULL);
}

static int xa_my_query_int(struct xa_rm *rm, const char *sql, int64_t *out)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	char *end;
	long long x;
	int rv;

	rv = xa_my__run(rm, sql, "query", &res);
	if (rv != 0)
		return rv;
	row = res ? mysql_fetch_row(res) : NULL;
	if (row == NULL || mysql_num_fields(res) < 1 || row[0] == NULL) {
		if (res != NULL)
			mysql_free_result(res);
		xa_rm__seterr(rm, "query: no value");
		return XA_RM_ERMERR;
	}
	errno = 0;
	x = strtoll(row[0], &end, 10);
	if (errno != 0 || end == row[0] || *end != '\0') {
		mysql_free_result(res);
		xa_rm__seterr(rm, "query: the value is not an integer");
		return XA_RM_ERMERR;
	}
	mysql_free_result(res);
	*out = x;
	return 0;
}

/*
 * The rows this session has written, changed or deleted so far. MariaDB
 * prepares a branch that changed nothing like any other, and then answers
 * XA_RBROLLBACK to its XA COMMIT from another session: the coordinator would
 * report a false heuristic rollback. So the adapter counts the session's row
 * changes across the branch and votes RDONLY when there were none. (An
 * UPDATE that matched rows but changed none counts nothing: it changed
 * nothing. Writes to internal temporary tables are Handler_tmp_*, not
 * counted.) Reading SHOW STATUS changes no counter.
 */
static int xa_my__writes(struct xa_rm *rm, uint64_t *out)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	uint64_t sum = 0;
	unsigned seen = 0;
	int rv =
	    xa_my__run(rm,
		       "SHOW SESSION STATUS WHERE Variable_name IN "
		       "('Handler_write','Handler_update','Handler_delete')",
		       "status", &res);

	if (rv != 0)
		return rv;
	while (res != NULL && (row = mysql_fetch_row(res)) != NULL) {
		char *end;
		unsigned long long v;

		if (row[1] == NULL)
			continue;
		v = strtoull(row[1], &end, 10);
		if (*end != '\0')
			continue;
		sum += v;
		seen++;
	}
	if (res != NULL)
		mysql_free_result(res);
	if (seen != 3) {
		xa_rm__seterr(rm, "status: Handler counters missing");
		return XA_RM_ERMERR;
	}
	*out = sum;
	return 0;
}

static int xa_my_start(struct xa_rm *rm, const struct xa_xid *xid)
{
	int rv = xa_my__xa(rm, "START", xid, "");

	rm->my_read_only = false;
	rm->my_writes_known = false;
	rm->my_prepared = false;
	/* Without the counters the branch is simply prepared (vote OK). */
	if (rv == 0 && xa_my__writes(rm, &rm->my_writes) == 0)
		rm->my_writes_known = true;
	return rv;
}

/* The branch was rolled back by the server but its xid may linger in a
 * rollback-only state: forget it, whatever the answer. */
static void xa_my__forget(struct xa_rm *rm, const struct xa_xid *xid)
{
	char keep[sizeof(rm->errmsg)];

	memcpy(keep, rm->errmsg, sizeof(keep));
	(void)xa_my__xa(rm, "ROLLBACK", xid, "");
	memcpy(rm->errmsg, keep, sizeof(keep));
}

static int xa_my_end(struct xa_rm *rm, const struct xa_xid *xid)
{
	uint64_t now;
	int rv;

	/* Counted before XA END: an IDLE branch takes no statement. */
	rm->my_read_only = rm->my_writes_known &&
			   xa_my__writes(rm, &now) == 0 && now == rm->my_writes;
	rm->my_writes_known = false;
	rv = xa_my__xa(rm, "END", xid, "");

	if (rv == XA_RM_EROLLBACK)
		xa_my__forget(rm, xid);
	return rv;
}

static int xa_my_prepare(struct xa_rm *rm, const struct xa_xid *xid,
			 enum xa_rm_vote *vote)
{
	int rv;

	if (rm->my_read_only) {
		/* It changed no row: finish it now, nothing for phase 2. */
		rm->my_read_only = false;
		rv = xa_my__xa(rm, "COMMIT", xid, " ONE PHASE");
		if (rv == 0) {
			*vote = XA_RM_VOTE_RDONLY;
			return 0;
		}
	} else {
		rv = xa_my__xa(rm, "PREPARE", xid, "");
		if (rv == 0) {
			rm->my_prepared = true;
			*vote = XA_RM_VOTE_OK;
			return 0;
		}
	}
	if (rv == XA_RM_EROLLBACK) {
		xa_my__forget(rm, xid);
		*vote = XA_RM_VOTE_ROLLBACK;
		return 0;
	}
	return rv;
}

static int xa_my_commit_one(struct xa_rm *rm, const struct xa_xid *xid)
{
	int rv = xa_my__xa(rm, "COMMIT", xid, " ONE PHASE");

	if (rv == XA_RM_EROLLBACK)
		xa_my__forget(rm, xid);
	return rv;
}

static int xa_my_rollback_branch(struct xa_rm *rm, const struct xa_xid *xid)
{
	int rv;

	if (rm->bstate == XA_RM_B_ACTIVE) {
		rv = xa_my__xa(rm, "END", xid, "");
		if (rv != 0 && rv != XA_RM_EROLLBACK)
			return rv;
	}
	rv = xa_my__xa(rm, "ROLLBACK", xid, "");
	/* XA_RB*: "the branch was rolled back", which is what we asked. */
	return rv == XA_RM_EROLLBACK ? 0 : rv;
}

static int xa_my_recover(struct xa_rm *rm, int64_t format_id,
			 struct xa_xid **xids, size_t *n)
{
	MYSQL_RES *res;
	MYSQL_ROW row;
	size_t cap = 0;
	int rv;

	/*
	 * Plain XA RECOVER: data holds the raw gtrid and bqual bytes, which
	 * the length columns must account for exactly. (FORMAT='SQL' is a
	 * display form: quoted text for printable XIDs, formatID 1 left out.)
	 */
	rv = xa_my__run(rm, "XA RECOVER", "recover", &res);
	if (rv != 0)
		return rv;
	if (res == NULL || mysql_num_fields(res) < 4) {
		if (res != NULL)
			mysql_free_result(res);
		xa_rm__seterr(rm, "recover: unexpected XA RECOVER result");
		return XA_RM_ERMERR;
	}
	while ((row = mysql_fetch_row(res)) != NULL) {
		unsigned long *len = mysql_fetch_lengths(res);
		struct xa_xid x;

		if (len == NULL ||
		    xa_xid_from_mysql_row(row[0], row[1], row[2], row[3],
					  row[3] ? len[3] : 0, &x) != 0)
			continue; /* not an XID we could have written */
		if (format_id != XA_RM_ANY_FORMAT && x.format_id != format_id)
			continue;
		rv = xa_rm__push(xids, n, &cap, &x);
		if (rv != 0)
			break;
	}
	mysql_free_result(res);
	return rv;
}

/* Is xid among the server's prepared XIDs? 1 yes, 0 no, < 0 error. */
static int xa_my__listed(struct xa_rm *rm, const struct xa_xid *xid)
{
	struct xa_xid *all = NULL;
	size_t n = 0, i;
	int rv, found = 0;

	rv = xa_my_recover(rm, xid->format_id, &all, &n);
	if (rv != 0) {
		free(all);
		return rv;
	}
	for (i = 0; i < n; i++)
		if (xa_xid_equal(&all[i], xid))
			found = 1;
	free(all);
	return found;
}

/*
 * MariaDB answers XAER_NOTA for a prepared branch still attached to the
 * session that prepared it. NOTA means "done" to the coordinator, so it is
 * only passed on when XA RECOVER confirms the XID is not there.
 */
static int xa_my__finish(struct xa_rm *rm, const char *verb,
			 const struct xa_xid *xid)
{
	int rv = xa_my__xa(rm, verb, xid, "");
	int listed;

	if (rv != XA_RM_ENOTA)
		return rv;
	listed = xa_my__listed(rm, xid);
	if (listed < 0)
		return listed;
	if (listed) {
		xa_rm__seterr(rm,
			      "%s: the branch is prepared but still "
			      "attached to another session",
			      verb);
		return XA_RM_ETRANSIENT;
	}
	xa_rm__seterr(rm, "%s: unknown XID", verb);
	return XA_RM_ENOTA;
}

static int xa_my_commit_prepared(struct xa_rm *rm, const struct xa_xid *xid)
{
	return xa_my__finish(rm, "COMMIT", xid);
}

static int xa_my_rollback_prepared(struct xa_rm *rm, const struct xa_xid *xid)
{
	int rv = xa_my__finish(rm, "ROLLBACK", xid);

	return rv == XA_RM_EROLLBACK ? 0 : rv;
}

const struct xa_rm_ops xa_rm_mariadb_ops = {
    .name = "mariadb",
    .connect = xa_my_connect,
    .disconnect = xa_my_disconnect,
    .exec = xa_my_exec,
    .query_int = xa_my_query_int,
    .start = xa_my_start,
    .end = xa_my_end,
    .prepare = xa_my_prepare,
    .commit_one = xa_my_commit_one,
    .rollback_branch = xa_my_rollback_branch,
    .commit_prepared = xa_my_commit_prepared,
    .rollback_prepared = xa_my_rollback_prepared,
    .recover = xa_my_recover,
};

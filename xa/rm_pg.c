/*
 * rm_pg.c — PostgreSQL as an XA resource manager, through libpq.
 *
 * PostgreSQL has no XA START: a branch is the connection's transaction
 * (BEGIN ... PREPARE TRANSACTION 'gid'), and the gid is the XID in Settle's
 * encoding (xa_xid_to_pg_gid). COMMIT PREPARED / ROLLBACK PREPARED finish it
 * from any session of the same database; pg_prepared_xacts lists them.
 */
#include "xa/rm_int.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Notices (e.g. "there is no transaction in progress") are not errors and
 * must not reach stderr: drop them. */
static void xa_pg__notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/*
 * Why a connection failed. libpq gives no SQLSTATE for a failed startup, only
 * the text. A server that answered FATAL refused us (unknown role or
 * database, bad password, no pg_hba entry): ERMERR, so that phase 2 turns
 * FAILED after its attempts and an operator sees it instead of a silent
 * retry for ever. A server starting, stopping, in recovery or out of
 * connection slots will take us later, as will one that never answered.
 * (Only the server's English messages are recognized; a localized server's
 * refusals are then read as outages: retried until the attempts run out.)
 */
static int xa_pg__connect_class(const char *msg)
{
	static const char *const later[] = {
	    "starting up",	"shutting down",
	    "recovery mode",	"not yet accepting",
	    "too many clients", "remaining connection slots",
	};

	if (msg == NULL || strstr(msg, "FATAL:") == NULL)
		return XA_RM_ETRANSIENT;
	for (size_t i = 0; i < sizeof later / sizeof later[0]; i++)
		if (strstr(msg, later[i]) != NULL)
			return XA_RM_ETRANSIENT;
	return XA_RM_ERMERR;
}

static int xa_pg_connect(struct xa_rm *rm)
{
	PQconninfoOption *opts, *o;
	char *perr = NULL;
	PGconn *c;

	/* A malformed conninfo is the caller's error, not a server down. */
	opts = PQconninfoParse(rm->conninfo, &perr);
	if (opts == NULL) {
		int rv = perr ? XA_RM_EINVAL : SETTLE_ENOMEM;

		xa_rm__seterr(rm, "postgresql conninfo: %s",
			      perr ? perr : "out of memory");
		PQfreemem(perr);
		return rv;
	}
	for (o = opts; o->keyword != NULL; o++) {
		/* libpq checks the port only when it connects. */
		if (strcmp(o->keyword, "port") == 0 && o->val != NULL &&
		    strspn(o->val, "0123456789,") != strlen(o->val)) {
			PQconninfoFree(opts);
			xa_rm__seterr(rm, "postgresql conninfo: bad port");
			return XA_RM_EINVAL;
		}
	}
	PQconninfoFree(opts);
	c = PQconnectdb(rm->conninfo);
	if (c == NULL) {
		xa_rm__seterr(rm, "postgresql connect: out of memory");
		return SETTLE_ENOMEM;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		int rv = xa_pg__connect_class(PQerrorMessage(c));

		xa_rm__seterr(rm, "postgresql connect: %s", PQerrorMessage(c));
		PQfinish(c);
		return rv;
	}
	PQsetNoticeProcessor(c, xa_pg__notice, NULL);
	rm->conn = c;
	return 0;
}

static void xa_pg_disconnect(struct xa_rm *rm)
{
	if (rm->conn != NULL)
		PQfinish(rm->conn);
	rm->conn = NULL;
}

static const char *xa_pg__state(const PGresult *res)
{
	const char *s = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	return s ? s : "";
}

/*
 * Classify a failed result. Class 08 and a dead connection: lost.
 * 53 (insufficient resources), 57P03 (starting up), 55006 (prepared
 * transaction busy in another session): transient. 42704 on the PREPARED
 * verbs: NOTA. 42710: the gid is in use. Anything else: RMERR.
 */
static int xa_pg__fail(struct xa_rm *rm, PGresult *res, const char *what)
{
	PGconn *c = rm->conn;
	const char *st = xa_pg__state(res);
	int rv;

	snprintf(rm->sqlstate, sizeof(rm->sqlstate), "%s", st);
	if (PQstatus(c) == CONNECTION_BAD || strncmp(st, "08", 2) == 0 ||
	    strncmp(st, "57P0", 4) == 0) {
		rv = xa_rm__lost(rm, what, PQerrorMessage(c));
		goto out;
	}
	xa_rm__seterr(rm, "%s: %s", what,
		      res ? PQresultErrorMessage(res) : PQerrorMessage(c));
	if (strncmp(st, "53", 2) == 0 || strcmp(st, "55006") == 0)
		rv = XA_RM_ETRANSIENT;
	else if (strcmp(st, "42704") == 0)
		rv = XA_RM_ENOTA;
	else if (strcmp(st, "42710") == 0)
		rv = XA_RM_EDUPID;
	else
		rv = XA_RM_ERMERR;
out:
	PQclear(res);
	return rv;
}

/* Run sql; *res gets the result when it succeeded (caller clears it). */
static int xa_pg__run(struct xa_rm *rm, const char *sql, const char *what,
		      PGresult **resp)
{
	PGresult *res = PQexec(rm->conn, sql);
	ExecStatusType st = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;

	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		return xa_pg__fail(rm, res, what);
	if (resp != NULL)
		*resp = res;
	else
		PQclear(res);
	return 0;
}

/* Run "VERB 'gid'" with the gid quoted by libpq. */
static int xa_pg__gid_cmd(struct xa_rm *rm, const char *verb,
			  const struct xa_xid *xid, PGresult **resp)
{
	char gid[XA_XID_PG_MAX], sql[2 * XA_XID_PG_MAX + 64];
	char *lit;
	int rv;

	rv = xa_xid_to_pg_gid(xid, gid, sizeof(gid));
	if (rv != 0) {
		xa_rm__seterr(rm, "%s: invalid XID", verb);
		return XA_RM_EINVAL;
	}
	/* The gid is our own base64url text; quoted all the same. */
	lit = PQescapeLiteral(rm->conn, gid, strlen(gid));
	if (lit == NULL)
		return xa_pg__fail(rm, NULL, verb);
	snprintf(sql, sizeof(sql), "%s %s", verb, lit);
	PQfreemem(lit);
	return xa_pg__run(rm, sql, verb, resp);
}

static int xa_pg_exec(struct xa_rm *rm, const char *sql)
{
	return xa_pg__run(rm, sql, "exec", NULL);
}

static int xa_pg_query_int(struct xa_rm *rm, const char *sql, int64_t *out)
{
	PGresult *res = NULL;
	const char *v;
	char *end;
	long long x;
	int rv;

	rv = xa_pg__run(rm, sql, "query", &res);
	if (rv != 0)
		return rv;
	if (PQntuples(res) < 1 || PQnfields(res) < 1 ||
	    PQgetisnull(res, 0, 0)) {
		PQclear(res);
		xa_rm__seterr(rm, "query: no value");
		return XA_RM_ERMERR;
	}
	v = PQgetvalue(res, 0, 0);
	errno = 0;
	x = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0') {
		PQclear(res);
		xa_rm__seterr(rm, "query: the value is not an integer");
		return XA_RM_ERMERR;
	}
	PQclear(res);
	*out = x;
	return 0;
}

static int xa_pg_start(struct xa_rm *rm, const struct xa_xid *xid)
{
	(void)xid;
	if (PQtransactionStatus(rm->conn) != PQTRANS_IDLE) {
		xa_rm__seterr(rm, "start: a transaction is already open on "
				  "this connection");
		return XA_RM_EPROTO;
	}
	return xa_pg__run(rm, "BEGIN", "start", NULL);
}

static int xa_pg_end(struct xa_rm *rm, const struct xa_xid *xid)
{
	/* Nothing to send: the transaction simply receives no more work. */
	(void)rm;
	(void)xid;
	return 0;
}

/* The branch's transaction failed or vanished: roll it back, vote so. */
static int xa_pg__rolled_back(struct xa_rm *rm, const char *why)
{
	int rv;

	if (PQtransactionStatus(rm->conn) != PQTRANS_IDLE) {
		rv = xa_pg__run(rm, "ROLLBACK", "rollback", NULL);
		if (rv != 0)
			return rv;
	}
	xa_rm__seterr(rm, "%s", why);
	return XA_RM_EROLLBACK;
}

static int xa_pg_prepare(struct xa_rm *rm, const struct xa_xid *xid,
			 enum xa_rm_vote *vote)
{
	PGresult *res = NULL;
	int64_t ro;
	int rv;

	switch (PQtransactionStatus(rm->conn)) {
	case PQTRANS_INTRANS:
		break;
	case PQTRANS_INERROR:
		rv = xa_pg__rolled_back(rm, "prepare: a statement of the "
					    "branch failed; rolled back");
		goto vote_rollback;
	default:
		xa_rm__seterr(rm, "prepare: the branch's transaction was "
				  "ended by the caller");
		return XA_RM_EPROTO;
	}
	/*
	 * A transaction that was given no transaction id wrote nothing:
	 * commit it now and spare the coordinator the second phase.
	 */
	rv = xa_pg_query_int(rm,
			     "SELECT (pg_current_xact_id_if_assigned() IS "
			     "NULL)::int",
			     &ro);
	if (rv != 0)
		return rv;
	if (ro == 1) {
		rv = xa_pg__run(rm, "COMMIT", "prepare (read-only commit)",
				&res);
		if (rv != 0)
			return rv;
		*vote = strcmp(PQcmdStatus(res), "COMMIT") == 0
			    ? XA_RM_VOTE_RDONLY
			    : XA_RM_VOTE_ROLLBACK;
		PQclear(res);
		return 0;
	}
	rv = xa_pg__gid_cmd(rm, "PREPARE TRANSACTION", xid, &res);
	if (rv == 0) {
		/* An aborted transaction answers PREPARE with ROLLBACK. */
		*vote = strcmp(PQcmdStatus(res), "ROLLBACK") == 0
			    ? XA_RM_VOTE_ROLLBACK
			    : XA_RM_VOTE_OK;
		PQclear(res);
		return 0;
	}
	/* A PREPARE that fails ends the transaction as a ROLLBACK would. */
	if (rv == XA_RM_ERMERR && strncmp(rm->sqlstate, "40", 2) == 0)
		rv = XA_RM_EROLLBACK;
vote_rollback:
	if (rv == XA_RM_EROLLBACK) {
		*vote = XA_RM_VOTE_ROLLBACK;
		return 0;
	}
	return rv;
}

static int xa_pg_commit_one(struct xa_rm *rm, const struct xa_xid *xid)
{
	PGresult *res = NULL;
	int rv;

	(void)xid;
	if (PQtransactionStatus(rm->conn) == PQTRANS_INERROR)
		return xa_pg__rolled_back(rm, "commit one phase: a statement "
					      "of the branch failed; rolled "
					      "back");
	if (PQtransactionStatus(rm->conn) != PQTRANS_INTRANS) {
		xa_rm__seterr(rm, "commit one phase: the branch's transaction "
				  "was ended by the caller");
		return XA_RM_EPROTO;
	}
	rv = xa_pg__run(rm, "COMMIT", "commit one phase", &res);
	if (rv != 0) {
		/* A failed COMMIT (deferred constraint, serialization) is a
		 * rollback; only a lost connection leaves the outcome open. */
		if (rv != XA_RM_ETRANSIENT &&
		    PQtransactionStatus(rm->conn) == PQTRANS_IDLE)
			rv = XA_RM_EROLLBACK;
		return rv;
	}
	rv = strcmp(PQcmdStatus(res), "ROLLBACK") == 0 ? XA_RM_EROLLBACK : 0;
	if (rv != 0)
		xa_rm__seterr(rm, "commit one phase: rolled back");
	PQclear(res);
	return rv;
}

static int xa_pg_rollback_branch(struct xa_rm *rm, const struct xa_xid *xid)
{
	(void)xid;
	if (PQtransactionStatus(rm->conn) == PQTRANS_IDLE)
		return 0;
	return xa_pg__run(rm, "ROLLBACK", "rollback", NULL);
}

static int xa_pg_commit_prepared(struct xa_rm *rm, const struct xa_xid *xid)
{
	return xa_pg__gid_cmd(rm, "COMMIT PREPARED", xid, NULL);
}

static int xa_pg_rollback_prepared(struct xa_rm *rm, const struct xa_xid *xid)
{
	return xa_pg__gid_cmd(rm, "ROLLBACK PREPARED", xid, NULL);
}

static int xa_pg_recover(struct xa_rm *rm, int64_t format_id,
			 struct xa_xid **xids, size_t *n)
{
	PGresult *res = NULL;
	size_t cap = 0;
	int i, rv;

	/* Only this database's: COMMIT PREPARED must run in the database of
	 * the transaction. The prefix test is repeated by the parser. */
	rv = xa_pg__run(rm,
			"SELECT gid FROM pg_prepared_xacts WHERE database = "
			"current_database() AND left(gid, 7) = 'settle:' "
			"ORDER BY prepared",
			"recover", &res);
	if (rv != 0)
		return rv;
	for (i = 0; i < PQntuples(res); i++) {
		struct xa_xid x;

		/* Foreign or damaged gids are someone else's: skip them. */
		if (xa_xid_from_pg_gid(PQgetvalue(res, i, 0), &x) != 0)
			continue;
		if (format_id != XA_RM_ANY_FORMAT && x.format_id != format_id)
			continue;
		rv = xa_rm__push(xids, n, &cap, &x);
		if (rv != 0)
			break;
	}
	PQclear(res);
	return rv;
}

const struct xa_rm_ops xa_rm_pg_ops = {
    .name = "postgresql",
    .connect = xa_pg_connect,
    .disconnect = xa_pg_disconnect,
    .exec = xa_pg_exec,
    .query_int = xa_pg_query_int,
    .start = xa_pg_start,
    .end = xa_pg_end,
    .prepare = xa_pg_prepare,
    .commit_one = xa_pg_commit_one,
    .rollback_branch = xa_pg_rollback_branch,
    .commit_prepared = xa_pg_commit_prepared,
    .rollback_prepared = xa_pg_rollback_prepared,
    .recover = xa_pg_recover,
};

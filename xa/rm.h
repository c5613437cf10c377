/*
 * rm.h — an XA resource manager (a database) that Settle drives as the
 * transaction manager: one connection, the X/Open verbs, errors classified
 * for the coordinator. Two adapters: PostgreSQL (libpq, rm_pg.c) and
 * MariaDB (libmariadb, rm_mariadb.c).
 *
 * A handle is one database connection and is used by one thread at a time.
 * It holds at most one active branch: start() associates the connection's
 * work with an XID, end() dissociates it, prepare() makes it durable. The
 * phase-2 verbs (commit, rollback) and recover() work on any connection, for
 * XIDs prepared by this or another connection, before or after a crash.
 *
 * Errors (all functions return 0 or one of these, negative):
 *   XA_RM_ETRANSIENT  XAER_RMFAIL: connection lost, server down or busy.
 *                     The outcome of the verb is unknown; retry it later on
 *                     a reconnected handle (every verb reconnects first).
 *   XA_RM_ENOTA       XAER_NOTA: the RM knows no such XID (not prepared, or
 *                     already committed or rolled back). Under presumed abort
 *                     the coordinator reads it so: for commit, when the
 *                     commit decision is logged, the branch was committed by
 *                     an earlier attempt whose reply was lost (a branch that
 *                     prepared can only leave the prepared state through our
 *                     own commit or rollback, or a heuristic decision that
 *                     the operator must report); for rollback, the branch is
 *                     gone or never prepared: rolled back. Either way the
 *                     branch is done. The adapters never answer NOTA for an
 *                     XID that recover() still lists (MariaDB does so for a
 *                     branch attached to a live session: that is TRANSIENT).
 *   XA_RM_EPROTO      XAER_PROTO: the verb is illegal in the branch's or the
 *                     handle's state (prepare of an XID this handle did not
 *                     start, commit while a branch is active, ...). A bug in
 *                     the caller; the branch is left as it was.
 *   XA_RM_EDUPID      XAER_DUPID: start or prepare of an XID already in use.
 *   XA_RM_EINVAL      XAER_INVAL: invalid XID or argument.
 *   XA_RM_EROLLBACK   XA_RB*: the branch was rolled back (one-phase commit of
 *                     a branch that failed); prepare reports it as a vote.
 *   XA_RM_ERMERR      XAER_RMERR: any other error of the RM; the text is in
 *                     xa_rm_errmsg(). Not retried as is.
 *   SETTLE_ENOMEM     out of memory.
 */
#ifndef SETTLE_XA_RM_H
#define SETTLE_XA_RM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "xa/xid.h"

#define XA_RM_ETRANSIENT SETTLE_EUNAVAIL
#define XA_RM_ENOTA	 SETTLE_ENOTFOUND
#define XA_RM_EPROTO	 SETTLE_ESTATE
#define XA_RM_EDUPID	 SETTLE_EEXISTS
#define XA_RM_EINVAL	 SETTLE_EINVAL
#define XA_RM_EROLLBACK	 SETTLE_EFAILURE
#define XA_RM_ERMERR	 SETTLE_EINTERNAL

/* Outcome of prepare(). */
enum xa_rm_vote {
	XA_RM_VOTE_OK = 0,     /* prepared, durable: waits for phase 2 */
	XA_RM_VOTE_RDONLY = 1, /* wrote nothing: already finished, no phase 2 */
	XA_RM_VOTE_ROLLBACK = 2, /* the RM rolled the branch back (XA_RB*) */
};

enum xa_rm_kind {
	XA_RM_POSTGRESQL = 1,
	XA_RM_MARIADB = 2,
};

/* recover() filter: every XID of ours, whatever its formatID. */
#define XA_RM_ANY_FORMAT (-1)

struct xa_rm;

/*
 * Connect. conninfo is "key=value ..." as libpq reads it; for MariaDB the
 * keys host, port, user, password, dbname, unix_socket and connect_timeout
 * are understood, values optionally in single quotes with \' and \\.
 * conninfo is copied, and kept to reconnect. *out is set only on success
 * and owns the connection (xa_rm_close). On failure the reason is written
 * to errbuf (NUL terminated) when errbuf_cap > 0.
 * Errors: XA_RM_EINVAL (unknown kind, bad conninfo), XA_RM_ETRANSIENT
 * (server unreachable), XA_RM_ERMERR (refused, e.g. authentication),
 * SETTLE_ENOMEM.
 */
int xa_rm_open(enum xa_rm_kind kind, const char *conninfo, struct xa_rm **out,
	       char *errbuf, size_t errbuf_cap);

/* Close the connection and free rm. A branch still active or not yet
 * prepared is rolled back by the server when the connection ends; prepared
 * branches stay prepared. NULL is ignored. */
void xa_rm_close(struct xa_rm *rm);

/* Last error text of rm (never NULL, "" when none); valid until the next
 * call on rm. Never contains branch data, only the server's message. */
const char *xa_rm_errmsg(const struct xa_rm *rm);

/* Kind name: "postgresql" or "mariadb". */
const char *xa_rm_name(const struct xa_rm *rm);

/*
 * Start a branch on this connection: its work until end() belongs to xid.
 * Errors: XA_RM_EPROTO (a branch is already active on this handle),
 * XA_RM_EDUPID (MariaDB: xid in use), XA_RM_ETRANSIENT, XA_RM_ERMERR.
 */
int xa_rm_start(struct xa_rm *rm, const struct xa_xid *xid);

/*
 * Run statements of the caller inside the active branch (or outside any,
 * autocommit). sql is sent as is: never build it from untrusted strings.
 * On PostgreSQL a failing statement aborts the whole branch (prepare then
 * votes ROLLBACK); MariaDB undoes only the statement, unless it was a
 * deadlock or lock timeout that made the branch rollback-only.
 * Errors: XA_RM_ETRANSIENT, XA_RM_ERMERR.
 */
int xa_rm_exec(struct xa_rm *rm, const char *sql);

/* Run a query whose first row's first column is an integer; *out gets it.
 * Errors: as xa_rm_exec, and XA_RM_ERMERR when there is no such value. */
int xa_rm_query_int(struct xa_rm *rm, const char *sql, int64_t *out);

/* End the active branch xid (TMSUCCESS). Errors: XA_RM_EPROTO (xid is not
 * the active branch), XA_RM_ETRANSIENT, XA_RM_ERMERR. */
int xa_rm_end(struct xa_rm *rm, const struct xa_xid *xid);

/*
 * Prepare the branch xid that this handle started (ended or still active:
 * it is ended first). *vote gets the outcome; the function returns 0 for all
 * three votes. After VOTE_OK the branch is durable in the RM and survives a
 * crash of the server or of the caller. VOTE_RDONLY: a branch that wrote
 * nothing (PostgreSQL: no transaction id was assigned; MariaDB: the
 * session's Handler_write/_update/_delete counters did not move between
 * start and end) is committed at once and needs no phase 2.
 * Errors: XA_RM_EPROTO (xid not started here), XA_RM_EDUPID (PostgreSQL: the
 * gid is already prepared; the branch is rolled back), XA_RM_ETRANSIENT
 * (connection lost: the branch may or may not be prepared, the in-doubt
 * case: the coordinator decides abort and rolls it back), XA_RM_ERMERR.
 */
int xa_rm_prepare(struct xa_rm *rm, const struct xa_xid *xid,
		  enum xa_rm_vote *vote);

/*
 * Commit. one_phase: the branch this handle started and has not prepared is
 * committed at once (TMONEPHASE; XA_RM_EROLLBACK if the RM rolled it back
 * instead). Otherwise xid must be prepared, by any connection.
 * Errors: XA_RM_ENOTA, XA_RM_EPROTO (a branch is active on this handle, or
 * one_phase for an XID not started here), XA_RM_EROLLBACK,
 * XA_RM_ETRANSIENT, XA_RM_ERMERR.
 */
int xa_rm_commit(struct xa_rm *rm, const struct xa_xid *xid, bool one_phase);

/*
 * Roll back xid: the branch this handle started (not yet prepared), or a
 * prepared one of any connection. Errors: XA_RM_ENOTA, XA_RM_EPROTO,
 * XA_RM_ETRANSIENT, XA_RM_ERMERR.
 */
int xa_rm_rollback(struct xa_rm *rm, const struct xa_xid *xid);

/*
 * List the prepared (in-doubt) XIDs whose formatID is format_id (or all of
 * ours with XA_RM_ANY_FORMAT). PostgreSQL: only gids in Settle's encoding,
 * in this connection's database; other gids are ignored. MariaDB: every XID
 * the server reports that parses. On success *xids is a malloc'ed array of
 * *n entries (NULL when 0) owned by the caller (free()).
 * Errors: XA_RM_EPROTO (a branch is active), XA_RM_ETRANSIENT,
 * XA_RM_ERMERR, SETTLE_ENOMEM.
 */
int xa_rm_recover(struct xa_rm *rm, int64_t format_id, struct xa_xid **xids,
		  size_t *n);

/* Human name of a vote: "OK", "RDONLY", "ROLLBACK". */
const char *xa_rm_vote_name(enum xa_rm_vote vote);

#endif /* SETTLE_XA_RM_H */

/*
 * rm_int.h — what the generic layer (rm.c) and the adapters share. The
 * generic layer owns the branch state of a handle and checks every verb
 * against it; an adapter only speaks its database's SQL and classifies its
 * errors into the XA_RM_E* codes of rm.h.
 */
#ifndef SETTLE_XA_RM_INT_H
#define SETTLE_XA_RM_INT_H

#include "xa/rm.h"

enum xa_rm_bstate {
	XA_RM_B_NONE = 0, /* no branch on this connection */
	XA_RM_B_ACTIVE,	  /* started, work goes into it */
	XA_RM_B_ENDED,	  /* ended, not yet prepared */
};

/* Adapter entry points. Branch verbs are called only in the right state. */
struct xa_rm_ops {
	const char *name;
	/* Connect with rm->conninfo; rm->conn set on success. */
	int (*connect)(struct xa_rm *rm);
	/* Close rm->conn (may be NULL) and set it to NULL. */
	void (*disconnect)(struct xa_rm *rm);
	int (*exec)(struct xa_rm *rm, const char *sql);
	int (*query_int)(struct xa_rm *rm, const char *sql, int64_t *out);
	/* NONE -> ACTIVE */
	int (*start)(struct xa_rm *rm, const struct xa_xid *xid);
	/* ACTIVE -> ENDED; XA_RM_EROLLBACK: the RM rolled the branch back. */
	int (*end)(struct xa_rm *rm, const struct xa_xid *xid);
	/* ENDED -> NONE */
	int (*prepare)(struct xa_rm *rm, const struct xa_xid *xid,
		       enum xa_rm_vote *vote);
	int (*commit_one)(struct xa_rm *rm, const struct xa_xid *xid);
	int (*rollback_branch)(struct xa_rm *rm, const struct xa_xid *xid);
	/* NONE -> NONE, any prepared XID */
	int (*commit_prepared)(struct xa_rm *rm, const struct xa_xid *xid);
	int (*rollback_prepared)(struct xa_rm *rm, const struct xa_xid *xid);
	int (*recover)(struct xa_rm *rm, int64_t format_id,
		       struct xa_xid **xids, size_t *n);
};

struct xa_rm {
	const struct xa_rm_ops *ops;
	char *conninfo;
	void *conn;	/* PGconn * or MYSQL *; NULL when disconnected */
	bool conn_lost; /* set by an adapter that saw the connection die */
	enum xa_rm_bstate bstate;
	bool branch_lost;  /* the connection died under the branch: the server
			      rolled it back */
	struct xa_xid xid; /* the branch, when bstate != NONE */
	/* MariaDB: the session's row writes (Handler_write + _update +
	 * _delete) when the branch started, and whether the branch changed
	 * no row by the time it ended (then prepare votes RDONLY). */
	uint64_t my_writes;
	bool my_writes_known;
	bool my_read_only;
	/* MariaDB: this session prepared a branch that stays attached to it
	 * until the session ends (then disconnect waits, see rm_mariadb.c). */
	bool my_prepared;
	char sqlstate[8]; /* of the last server error, for the adapters */
	char errmsg[512];
};

extern const struct xa_rm_ops xa_rm_pg_ops;
extern const struct xa_rm_ops xa_rm_mariadb_ops;

/* Set rm->errmsg, printf style. */
void xa_rm__seterr(struct xa_rm *rm, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* An adapter saw the connection die: record it, answer ETRANSIENT. */
int xa_rm__lost(struct xa_rm *rm, const char *what, const char *msg);

/* Append xid to a growing array (recover). Errors: SETTLE_ENOMEM. */
int xa_rm__push(struct xa_xid **xids, size_t *n, size_t *cap,
		const struct xa_xid *xid);

/*
 * The next "key=value" pair of a libpq-style conninfo at *p: key and value
 * copied NUL terminated into kbuf/vbuf. Returns 1 when a pair was read, 0 at
 * the end, SETTLE_EINVAL on bad syntax or a too long key or value.
 */
int xa_rm__conninfo_next(const char **p, char *kbuf, size_t kcap, char *vbuf,
			 size_t vcap);

#endif /* SETTLE_XA_RM_INT_H */

/*
 * rm.c — the generic side of a resource-manager handle: the branch state,
 * checked before every verb, reconnection, and what a lost connection means
 * for the branch it carried.
 */
#include "xa/rm_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void xa_rm__seterr(struct xa_rm *rm, const char *fmt, ...)
{
	va_list ap;
	size_t n;

	va_start(ap, fmt);
	vsnprintf(rm->errmsg, sizeof(rm->errmsg), fmt, ap);
	va_end(ap);
	/* Server messages end in a newline; the log adds its own. */
	n = strlen(rm->errmsg);
	while (n > 0 && (rm->errmsg[n - 1] == '\n' || rm->errmsg[n - 1] == ' '))
		rm->errmsg[--n] = '\0';
}

int xa_rm__lost(struct xa_rm *rm, const char *what, const char *msg)
{
	rm->conn_lost = true;
	xa_rm__seterr(rm, "%s: connection lost: %s", what, msg ? msg : "");
	return XA_RM_ETRANSIENT;
}

int xa_rm__push(struct xa_xid **xids, size_t *n, size_t *cap,
		const struct xa_xid *xid)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct xa_xid *p = realloc(*xids, ncap * sizeof(*p));

		if (p == NULL)
			return SETTLE_ENOMEM;
		*xids = p;
		*cap = ncap;
	}
	/* Field by field, as everywhere: no struct copy of foreign layouts. */
	xa_xid_init(&(*xids)[*n], xid->format_id, xa_xid_gtrid(xid),
		    xid->gtrid_len, xa_xid_bqual(xid), xid->bqual_len);
	(*n)++;
	return 0;
}

int xa_rm__conninfo_next(const char **p, char *kbuf, size_t kcap, char *vbuf,
			 size_t vcap)
{
	const char *s = *p;
	size_t k = 0, v = 0;

	while (*s == ' ' || *s == '\t' || *s == '\n')
		s++;
	if (*s == '\0') {
		*p = s;
		return 0;
	}
	while (*s != '\0' && *s != '=' && *s != ' ' && *s != '\t') {
		if (k + 1 >= kcap)
			return SETTLE_EINVAL;
		kbuf[k++] = *s++;
	}
	kbuf[k] = '\0';
	while (*s == ' ' || *s == '\t')
		s++;
	if (k == 0 || *s != '=')
		return SETTLE_EINVAL;
	s++;
	while (*s == ' ' || *s == '\t')
		s++;
	if (*s == '\'') {
		s++;
		for (;;) {
			if (*s == '\0')
				return SETTLE_EINVAL; /* unterminated quote */
			if (*s == '\'') {
				s++;
				break;
			}
			if (*s == '\\' && s[1] != '\0')
				s++;
			if (v + 1 >= vcap)
				return SETTLE_EINVAL;
			vbuf[v++] = *s++;
		}
	} else {
		while (*s != '\0' && *s != ' ' && *s != '\t' && *s != '\n') {
			if (*s == '\\' && s[1] != '\0')
				s++;
			if (v + 1 >= vcap)
				return SETTLE_EINVAL;
			vbuf[v++] = *s++;
		}
	}
	vbuf[v] = '\0';
	*p = s;
	return 1;
}

int xa_rm_open(enum xa_rm_kind kind, const char *conninfo, struct xa_rm **out,
	       char *errbuf, size_t errbuf_cap)
{
	struct xa_rm *rm;
	int rv;

	if (errbuf_cap > 0)
		errbuf[0] = '\0';
	if (out == NULL)
		return XA_RM_EINVAL;
	*out = NULL;
	if (conninfo == NULL)
		return XA_RM_EINVAL;
	rm = calloc(1, sizeof(*rm));
	if (rm == NULL)
		return SETTLE_ENOMEM;
	switch (kind) {
	case XA_RM_POSTGRESQL:
		rm->ops = &xa_rm_pg_ops;
		break;
	case XA_RM_MARIADB:
		rm->ops = &xa_rm_mariadb_ops;
		break;
	default:
		rv = XA_RM_EINVAL;
		snprintf(rm->errmsg, sizeof(rm->errmsg), "unknown RM kind %d",
			 (int)kind);
		goto err_after_alloc;
	}
	rm->conninfo = strdup(conninfo);
	if (rm->conninfo == NULL) {
		rv = SETTLE_ENOMEM;
		goto err_after_alloc;
	}
	rv = rm->ops->connect(rm);
	if (rv != 0)
		goto err_after_conninfo;
	*out = rm;
	return 0;

err_after_conninfo:
	free(rm->conninfo);
err_after_alloc:
	if (errbuf_cap > 0)
		snprintf(errbuf, errbuf_cap, "%s", rm->errmsg);
	free(rm);
	return rv;
}

void xa_rm_close(struct xa_rm *rm)
{
	if (rm == NULL)
		return;
	rm->ops->disconnect(rm);
	free(rm->conninfo);
	free(rm);
}

const char *xa_rm_errmsg(const struct xa_rm *rm)
{
	return rm->errmsg;
}

const char *xa_rm_name(const struct xa_rm *rm)
{
	return rm->ops->name;
}

const char *xa_rm_vote_name(enum xa_rm_vote vote)
{
	switch (vote) {
	case XA_RM_VOTE_OK:
		return "OK";
	case XA_RM_VOTE_RDONLY:
		return "RDONLY";
	case XA_RM_VOTE_ROLLBACK:
		return "ROLLBACK";
	}
	return "?";
}

/*
 * After an adapter call: a dead connection is closed so that the next verb
 * reconnects. A branch that was only active or ended on it is gone: the
 * server rolls back the open work of a connection that ends.
 */
static int xa_rm__after(struct xa_rm *rm, int rv)
{
	if (!rm->conn_lost)
		return rv;
	rm->ops->disconnect(rm);
	rm->conn_lost = false;
	if (rm->bstate != XA_RM_B_NONE)
		rm->branch_lost = true;
	return rv;
}

/* Reconnect when needed. A lost branch stays lost: no work reconnects. */
static int xa_rm__ensure(struct xa_rm *rm)
{
	if (rm->conn != NULL)
		return 0;
	return xa_rm__after(rm, rm->ops->connect(rm));
}

static void xa_rm__clear_branch(struct xa_rm *rm)
{
	rm->bstate = XA_RM_B_NONE;
	rm->branch_lost = false;
	memset(&rm->xid, 0, sizeof(rm->xid));
}

/* Is xid the branch of this handle? */
static bool xa_rm__is_mine(struct xa_rm *rm, const struct xa_xid *xid)
{
	return rm->bstate != XA_RM_B_NONE && xa_xid_equal(&rm->xid, xid);
}

static int xa_rm__check_xid(struct xa_rm *rm, const struct xa_xid *xid)
{
	if (xa_xid_validate(xid) != 0) {
		xa_rm__seterr(rm, "invalid XID");
		return XA_RM_EINVAL;
	}
	return 0;
}

static int xa_rm__proto(struct xa_rm *rm, const char *what)
{
	xa_rm__seterr(rm, "%s: not allowed in this branch state", what);
	return XA_RM_EPROTO;
}

int xa_rm_start(struct xa_rm *rm, const struct xa_xid *xid)
{
	int rv = xa_rm__check_xid(rm, xid);

	if (rv != 0)
		return rv;
	if (rm->bstate != XA_RM_B_NONE)
		return xa_rm__proto(rm, "start");
	rv = xa_rm__ensure(rm);
	if (rv != 0)
		return rv;
	rv = xa_rm__after(rm, rm->ops->start(rm, xid));
	if (rv != 0)
		return rv;
	rm->bstate = XA_RM_B_ACTIVE;
	rm->branch_lost = false;
	xa_xid_init(&rm->xid, xid->format_id, xa_xid_gtrid(xid), xid->gtrid_len,
		    xa_xid_bqual(xid), xid->bqual_len);
	return 0;
}

int xa_rm_exec(struct xa_rm *rm, const char *sql)
{
	int rv;

	if (sql == NULL)
		return XA_RM_EINVAL;
	if (rm->branch_lost) {
		xa_rm__seterr(rm, "exec: the branch's connection was lost");
		return XA_RM_ETRANSIENT;
	}
	rv = xa_rm__ensure(rm);
	if (rv != 0)
		return rv;
	return xa_rm__after(rm, rm->ops->exec(rm, sql));
}

int xa_rm_query_int(struct xa_rm *rm, const char *sql, int64_t *out)
{
	int rv;

	if (sql == NULL || out == NULL)
		return XA_RM_EINVAL;
	if (rm->branch_lost) {
		xa_rm__seterr(rm, "query: the branch's connection was lost");
		return XA_RM_ETRANSIENT;
	}
	rv = xa_rm__ensure(rm);
	if (rv != 0)
		return rv;
	return xa_rm__after(rm, rm->ops->query_int(rm, sql, out));
}

/* End the active branch. EROLLBACK: the RM already rolled it back. */
static int xa_rm__end(struct xa_rm *rm, const struct xa_xid *xid)
{
	int rv;

	if (rm->bstate != XA_RM_B_ACTIVE || rm->branch_lost) {
		if (rm->bstate == XA_RM_B_ACTIVE)
			rm->bstate = XA_RM_B_ENDED;
		return 0;
	}
	rv = xa_rm__after(rm, rm->ops->end(rm, xid));
	if (rv == 0 || rv == XA_RM_EROLLBACK)
		rm->bstate = XA_RM_B_ENDED;
	if (rv == XA_RM_EROLLBACK)
		rm->branch_lost = true; /* nothing left to prepare */
	return rv;
}

int xa_rm_end(struct xa_rm *rm, const struct xa_xid *xid)
{
	int rv = xa_rm__check_xid(rm, xid);

	if (rv != 0)
		return rv;
	if (rm->bstate != XA_RM_B_ACTIVE || !xa_xid_equal(&rm->xid, xid))
		return xa_rm__proto(rm, "end");
	rv = xa_rm__end(rm, xid);
	/* A branch the RM rolled back is still ended: prepare will say so. */
	return rv == XA_RM_EROLLBACK ? 0 : rv;
}

int xa_rm_prepare(struct xa_rm *rm, const struct xa_xid *xid,
		  enum xa_rm_vote *vote)
{
	int rv = xa_rm__check_xid(rm, xid);

	if (rv != 0)
		return rv;
	if (!xa_rm__is_mine(rm, xid))
		return xa_rm__proto(rm, "prepare");
	rv = xa_rm__end(rm, xid);
	if (rv != 0 && rv != XA_RM_EROLLBACK)
		goto out;
	if (rm->branch_lost) {
		*vote = XA_RM_VOTE_ROLLBACK;
		if (rm->errmsg[0] == '\0')
			xa_rm__seterr(rm,
				      "prepare: the branch was rolled back");
		xa_rm__clear_branch(rm);
		return 0;
	}
	rv = xa_rm__after(rm, rm->ops->prepare(rm, xid, vote));
out:
	/*
	 * Whatever happened, this connection no longer carries the branch:
	 * prepared, rolled back, or (connection lost) in doubt.
	 */
	if (rv != XA_RM_EPROTO)
		xa_rm__clear_branch(rm);
	return rv;
}

int xa_rm_commit(struct xa_rm *rm, const struct xa_xid *xid, bool one_phase)
{
	int rv = xa_rm__check_xid(rm, xid);

	if (rv != 0)
		return rv;
	if (one_phase) {
		if (!xa_rm__is_mine(rm, xid))
			return xa_rm__proto(rm, "commit one phase");
		rv = xa_rm__end(rm, xid);
		if (rv == 0 && !rm->branch_lost)
			rv = xa_rm__after(rm, rm->ops->commit_one(rm, xid));
		else if (rv == 0 || rv == XA_RM_EROLLBACK) {
			xa_rm__seterr(rm, "commit one phase: the branch was "
					  "rolled back");
			rv = XA_RM_EROLLBACK;
		}
		if (rv != XA_RM_EPROTO)
			xa_rm__clear_branch(rm);
		return rv;
	}
	if (rm->bstate != XA_RM_B_NONE)
		return xa_rm__proto(rm, "commit");
	rv = xa_rm__ensure(rm);
	if (rv != 0)
		return rv;
	return xa_rm__after(rm, rm->ops->commit_prepared(rm, xid));
}

int xa_rm_rollback(struct xa_rm *rm, const struct xa_xid *xid)
{
	int rv = xa_rm__check_xid(rm, xid);

	if (rv != 0)
		return rv;
	if (xa_rm__is_mine(rm, xid)) {
		if (rm->branch_lost) {
			xa_rm__clear_branch(rm);
			return 0;
		}
		rv = xa_rm__after(rm, rm->ops->rollback_branch(rm, xid));
		/* A connection that died took its open branch with it. */
		if (rv == XA_RM_ETRANSIENT && rm->branch_lost)
			rv = 0;
		if (rv != XA_RM_EPROTO)
			xa_rm__clear_branch(rm);
		return rv;
	}
	if (rm->bstate != XA_RM_B_NONE)
		return xa_rm__proto(rm, "rollback");
	rv = xa_rm__ensure(rm);
	if (rv != 0)
		return rv;
	return xa_rm__after(rm, rm->ops->rollback_prepared(rm, xid));
}

int xa_rm_recover(struct xa_rm *rm, int64_t format_id, struct xa_xid **xids,
		  size_t *n)
{
	int rv;

	*xids = NULL;
	*n = 0;
	if (format_id != XA_RM_ANY_FORMAT &&
	    (format_id < 0 || format_id > INT32_MAX)) {
		xa_rm__seterr(rm, "recover: invalid formatID filter");
		return XA_RM_EINVAL;
	}
	if (rm->bstate != XA_RM_B_NONE)
		return xa_rm__proto(rm, "recover");
	rv = xa_rm__ensure(rm);
	if (rv != 0)
		return rv;
	rv = xa_rm__after(rm, rm->ops->recover(rm, format_id, xids, n));
	if (rv != 0) {
		free(*xids);
		*xids = NULL;
		*n = 0;
	}
	return rv;
}

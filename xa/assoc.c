/*
 * assoc.c — XA thread and branch states, as transition tables.
 *
 * One bitmask per state: bit `to` is set when from -> to is allowed. The
 * verbs decide where to go; move_thread()/move_branch() check the tables
 * before any change, so a wrong decision is refused, not stored.
 *
 * Threads and branches live in two small arrays: a process has few threads
 * and branches at once, and a linear scan under the mutex is cheaper than a
 * hash table to get right.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* gettid */
#endif
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proto/error.h"
#include "xa/assoc.h"

#define BIT(s) (1u << (s))

enum {
	T0 = XA_ASSOC_T0,
	T1 = XA_ASSOC_T1,
	T2 = XA_ASSOC_T2,
	T_N = XA_ASSOC_T_N
};
enum {
	S0 = XA_ASSOC_S0,
	S1 = XA_ASSOC_S1,
	S2 = XA_ASSOC_S2,
	S3 = XA_ASSOC_S3,
	S4 = XA_ASSOC_S4,
	S5 = XA_ASSOC_S5,
	S_N = XA_ASSOC_S_N
};

static const unsigned thread_moves[T_N] = {
    [T0] = BIT(T1),
    [T1] = BIT(T0) | BIT(T2),
    [T2] = BIT(T0) | BIT(T1),
};

static const unsigned branch_moves[S_N] = {
    [S0] = BIT(S1),
    [S1] = BIT(S2) | BIT(S4),
    [S2] = BIT(S0) | BIT(S1) | BIT(S3) | BIT(S4) | BIT(S5),
    [S3] = BIT(S0) | BIT(S5),
    [S4] = BIT(S0),
    [S5] = BIT(S0),
};

static const char *const thread_names[T_N] = {"T0", "T1", "T2"};
static const char *const branch_names[S_N] = {"S0", "S1", "S2",
					      "S3", "S4", "S5"};

struct thr {
	uint64_t tid;
	int rmid;
	int state;	   /* T0..T2; an entry exists while the rmid is open */
	struct xa_xid xid; /* the association's branch, in T1 and T2 */
	bool scanning;	   /* an xa_recover scan is open */
	uint64_t scan_pos; /* its next index */
};

struct branch {
	int rmid;
	struct xa_xid xid;
	int state; /* S1..S5; S0 branches are removed */
	int code;  /* S4: its XA_RB* code; S5: its XA_HEUR* code */
	int busy;  /* enum xa_assoc_verb in flight, or 0 */
};

struct xa_assoc {
	pthread_mutex_t mu;
	struct thr *th;
	size_t nth, capth;
	struct branch *br;
	size_t nbr, capbr;
};

bool xa_assoc_thread_can_move(int from, int to)
{
	if (from < 0 || from >= T_N || to < 0 || to >= T_N)
		return false;
	return (thread_moves[from] & BIT(to)) != 0;
}

bool xa_assoc_branch_can_move(int from, int to)
{
	if (from < 0 || from >= S_N || to < 0 || to >= S_N)
		return false;
	return (branch_moves[from] & BIT(to)) != 0;
}

const char *xa_assoc_thread_name(int state)
{
	return state >= 0 && state < T_N ? thread_names[state] : "?";
}

const char *xa_assoc_branch_name(int state)
{
	return state >= 0 && state < S_N ? branch_names[state] : "?";
}

int xa_assoc_new(struct xa_assoc **out)
{
	struct xa_assoc *a;

	if (out == NULL)
		return SETTLE_EINVAL;
	*out = NULL;
	a = calloc(1, sizeof(*a));
	if (a == NULL)
		return SETTLE_ENOMEM;
	if (pthread_mutex_init(&a->mu, NULL) != 0)
		goto err_after_alloc;
	*out = a;
	return 0;

err_after_alloc:
	free(a);
	return SETTLE_EINTERNAL;
}

void xa_assoc_free(struct xa_assoc *a)
{
	if (a == NULL)
		return;
	pthread_mutex_destroy(&a->mu);
	free(a->th);
	free(a->br);
	free(a);
}

uint64_t xa_assoc_self(void)
{
	return (uint64_t)gettid();
}

int xa_assoc_xid(const XID *in, struct xa_xid *out)
{
	struct xa_xopen_xid x;

	if (in == NULL || out == NULL)
		return XAER_INVAL;
	/* Field by field: XID and xa_xopen_xid are distinct types. */
	x.formatID = in->formatID;
	x.gtrid_length = in->gtrid_length;
	x.bqual_length = in->bqual_length;
	memcpy(x.data, in->data, sizeof(x.data));
	return xa_xid_from_xopen(&x, out) == 0 ? XA_OK : XAER_INVAL;
}

/* --- lookups (mutex held) ------------------------------------------------ */

static struct thr *thr_find(struct xa_assoc *a, uint64_t tid, int rmid)
{
	for (size_t i = 0; i < a->nth; i++)
		if (a->th[i].tid == tid && a->th[i].rmid == rmid)
			return &a->th[i];
	return NULL;
}

static struct branch *br_find(struct xa_assoc *a, int rmid,
			      const struct xa_xid *xid)
{
	for (size_t i = 0; i < a->nbr; i++)
		if (a->br[i].rmid == rmid && xa_xid_equal(&a->br[i].xid, xid))
			return &a->br[i];
	return NULL;
}

/* Threads in state st on branch b. */
static size_t br_count(struct xa_assoc *a, const struct branch *b, int st)
{
	size_t n = 0;

	for (size_t i = 0; i < a->nth; i++)
		if (a->th[i].rmid == b->rmid && a->th[i].state == st &&
		    xa_xid_equal(&a->th[i].xid, &b->xid))
			n++;
	return n;
}

static bool thr_on(const struct thr *t, const struct xa_xid *xid)
{
	return t->state != T0 && xa_xid_equal(&t->xid, xid);
}

/* --- moves, checked against the tables (mutex held) ---------------------- */

static int move_thread(struct thr *t, int to)
{
	if (t->state == to)
		return XA_OK;
	if (!xa_assoc_thread_can_move(t->state, to))
		return XAER_RMERR;
	t->state = to;
	return XA_OK;
}

/* S0 removes the branch: b is invalid afterwards. */
static int move_branch(struct xa_assoc *a, struct branch *b, int to)
{
	if (b->state == to)
		return XA_OK;
	if (!xa_assoc_branch_can_move(b->state, to))
		return XAER_RMERR;
	if (to == S0) {
		*b = a->br[--a->nbr];
		return XA_OK;
	}
	b->state = to;
	return XA_OK;
}

static struct branch *br_add(struct xa_assoc *a, int rmid,
			     const struct xa_xid *xid)
{
	if (a->nbr == a->capbr) {
		size_t cap = a->capbr ? 2 * a->capbr : 8;
		struct branch *n = realloc(a->br, cap * sizeof(*n));

		if (n == NULL)
			return NULL;
		a->br = n;
		a->capbr = cap;
	}
	struct branch *b = &a->br[a->nbr++];
	memset(b, 0, sizeof(*b));
	b->rmid = rmid;
	b->xid = *xid;
	b->state = S0;
	return b;
}

/* The branch a thread that just left it (by end) leaves behind. */
static int br_after_end(struct xa_assoc *a, struct branch *b)
{
	if (b->state == S1 && br_count(a, b, T1) + br_count(a, b, T2) == 0)
		return move_branch(a, b, S2);
	return XA_OK;
}

/* --- flags --------------------------------------------------------------- */

static bool flags_only(long flags, long allowed)
{
	return (flags & ~allowed) == 0;
}

static bool start_flags_ok(long flags)
{
	if (!flags_only(flags, TMJOIN | TMRESUME | TMNOWAIT))
		return false;
	return (flags & (TMJOIN | TMRESUME)) != (TMJOIN | TMRESUME);
}

static bool end_flags_ok(long flags)
{
	long how = flags & (TMSUSPEND | TMSUCCESS | TMFAIL);

	if (!flags_only(flags, TMSUSPEND | TMSUCCESS | TMFAIL | TMMIGRATE))
		return false;
	if (how != TMSUSPEND && how != TMSUCCESS && how != TMFAIL)
		return false;
	return !(flags & TMMIGRATE) || how == TMSUSPEND;
}

/* --- open/close ---------------------------------------------------------- */

int xa_assoc_open(struct xa_assoc *a, uint64_t tid, int rmid, long flags)
{
	int rc = XA_OK;

	if (a == NULL || flags != TMNOFLAGS)
		return XAER_INVAL;
	pthread_mutex_lock(&a->mu);
	if (thr_find(a, tid, rmid) != NULL)
		goto out;
	if (a->nth == a->capth) {
		size_t cap = a->capth ? 2 * a->capth : 8;
		struct thr *n = realloc(a->th, cap * sizeof(*n));

		if (n == NULL) {
			rc = XAER_RMERR;
			goto out;
		}
		a->th = n;
		a->capth = cap;
	}
	memset(&a->th[a->nth], 0, sizeof(a->th[0]));
	a->th[a->nth].tid = tid;
	a->th[a->nth].rmid = rmid;
	a->th[a->nth].state = T0;
	a->nth++;
out:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int xa_assoc_close(struct xa_assoc *a, uint64_t tid, int rmid, long flags)
{
	struct thr *t;
	int rc = XA_OK;

	if (a == NULL || flags != TMNOFLAGS)
		return XAER_INVAL;
	pthread_mutex_lock(&a->mu);
	t = thr_find(a, tid, rmid);
	if (t == NULL)
		goto out;
	if (t->state != T0) {
		rc = XAER_PROTO;
		goto out;
	}
	*t = a->th[--a->nth];
out:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* --- start/end ----------------------------------------------------------- */

static int start_locked(struct xa_assoc *a, uint64_t tid, int rmid,
			const struct xa_xid *xid, long flags)
{
	struct thr *t = thr_find(a, tid, rmid);
	struct branch *b;
	int rc;

	if (t == NULL)
		return XAER_PROTO; /* not opened by this thread */
	b = br_find(a, rmid, xid);

	if (t->state == T1)
		return XAER_PROTO;
	if (t->state == T2) {
		/* Only the caller's own suspended association may resume. */
		if (!(flags & TMRESUME) || !thr_on(t, xid))
			return XAER_PROTO;
		if (b == NULL)
			return XAER_RMERR; /* an association without branch */
		if (b->state == S4)
			return b->code;
		return move_thread(t, T1);
	}

	/* T0 */
	if (!(flags & (TMJOIN | TMRESUME))) {
		if (b != NULL)
			return XAER_DUPID;
		b = br_add(a, rmid, xid);
		if (b == NULL)
			return XAER_RMERR;
		rc = move_branch(a, b, S1);
		if (rc != XA_OK)
			return rc;
		t->xid = *xid;
		return move_thread(t, T1);
	}
	if (b == NULL)
		return XAER_NOTA;
	if (flags & TMRESUME)
		/* The branch is suspended elsewhere: no migration. */
		return br_count(a, b, T2) > 0 ? XA_NOMIGRATE : XAER_PROTO;

	/* TMJOIN */
	if (b->busy)
		return XAER_PROTO;
	if (b->state == S4)
		return b->code;
	if (b->state != S1 && b->state != S2)
		return XAER_PROTO;
	rc = move_branch(a, b, S1);
	if (rc != XA_OK)
		return rc;
	t->xid = *xid;
	return move_thread(t, T1);
}

int xa_assoc_start(struct xa_assoc *a, uint64_t tid, int rmid,
		   const struct xa_xid *xid, long flags)
{
	int rc;

	if (a == NULL || !start_flags_ok(flags) || xid == NULL ||
	    xa_xid_validate(xid) != 0)
		return XAER_INVAL;
	pthread_mutex_lock(&a->mu);
	rc = start_locked(a, tid, rmid, xid, flags);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

static int end_locked(struct xa_assoc *a, uint64_t tid, int rmid,
		      const struct xa_xid *xid, long flags)
{
	struct thr *t = thr_find(a, tid, rmid);
	struct branch *b;
	int rc;

	if (t == NULL)
		return XAER_PROTO;
	b = br_find(a, rmid, xid);
	if (b == NULL)
		return XAER_NOTA;
	if (!thr_on(t, xid))
		return XAER_PROTO; /* not this thread's association */
	if (t->state == T2 && (flags & TMSUSPEND))
		return XAER_PROTO; /* already suspended */

	if (b->state == S4) {
		/* Rollback-only: every end dissociates and reports it. */
		rc = move_thread(t, T0);
		return rc != XA_OK ? rc : b->code;
	}
	if (flags & TMSUSPEND) {
		rc = move_thread(t, T2);
		if (rc != XA_OK)
			return rc;
		return (flags & TMMIGRATE) ? XA_NOMIGRATE : XA_OK;
	}
	rc = move_thread(t, T0);
	if (rc != XA_OK)
		return rc;
	if (flags & TMFAIL) {
		rc = move_branch(a, b, S4);
		if (rc != XA_OK)
			return rc;
		b->code = XA_RBROLLBACK;
		return b->code;
	}
	return br_after_end(a, b);
}

int xa_assoc_end(struct xa_assoc *a, uint64_t tid, int rmid,
		 const struct xa_xid *xid, long flags)
{
	int rc;

	if (a == NULL || !end_flags_ok(flags) || xid == NULL ||
	    xa_xid_validate(xid) != 0)
		return XAER_INVAL;
	pthread_mutex_lock(&a->mu);
	rc = end_locked(a, tid, rmid, xid, flags);
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* --- completion verbs ---------------------------------------------------- */

/* The answer of a completion verb's check in state s (busy aside). */
static int check_state(struct xa_assoc *a, struct branch *b,
		       enum xa_assoc_verb verb, long flags)
{
	switch (verb) {
	case XA_ASSOC_PREPARE:
		if (b->state == S4)
			return b->code;
		return b->state == S2 ? XA_OK : XAER_PROTO;
	case XA_ASSOC_COMMIT:
		if (b->state == S5)
			return b->code;
		if (flags & TMONEPHASE) {
			if (b->state == S4)
				return b->code;
			return b->state == S2 ? XA_OK : XAER_PROTO;
		}
		return b->state == S3 ? XA_OK : XAER_PROTO;
	case XA_ASSOC_ROLLBACK:
		if (b->state == S5)
			return b->code;
		if (b->state == S4)
			return br_count(a, b, T1) + br_count(a, b, T2) == 0
				   ? XA_OK
				   : XAER_PROTO;
		return b->state == S2 || b->state == S3 ? XA_OK : XAER_PROTO;
	case XA_ASSOC_FORGET:
		return b->state == S5 ? XA_OK : XAER_PROTO;
	}
	return XAER_INVAL;
}

static int check(struct xa_assoc *a, uint64_t tid, int rmid,
		 const struct xa_xid *xid, long flags, long allowed,
		 enum xa_assoc_verb verb)
{
	struct branch *b;
	int rc;

	if (a == NULL || !flags_only(flags, allowed) || xid == NULL ||
	    xa_xid_validate(xid) != 0)
		return XAER_INVAL;
	pthread_mutex_lock(&a->mu);
	if (thr_find(a, tid, rmid) == NULL) {
		rc = XAER_PROTO;
		goto out;
	}
	b = br_find(a, rmid, xid);
	if (b == NULL) {
		rc = XAER_NOTA;
		goto out;
	}
	if (b->busy) {
		rc = XAER_PROTO;
		goto out;
	}
	rc = check_state(a, b, verb, flags);
	if (rc == XA_OK)
		b->busy = verb;
out:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int xa_assoc_prepare(struct xa_assoc *a, uint64_t tid, int rmid,
		     const struct xa_xid *xid, long flags)
{
	return check(a, tid, rmid, xid, flags, TMNOFLAGS, XA_ASSOC_PREPARE);
}

int xa_assoc_commit(struct xa_assoc *a, uint64_t tid, int rmid,
		    const struct xa_xid *xid, long flags)
{
	return check(a, tid, rmid, xid, flags, TMONEPHASE | TMNOWAIT,
		     XA_ASSOC_COMMIT);
}

int xa_assoc_rollback(struct xa_assoc *a, uint64_t tid, int rmid,
		      const struct xa_xid *xid, long flags)
{
	return check(a, tid, rmid, xid, flags, TMNOFLAGS, XA_ASSOC_ROLLBACK);
}

int xa_assoc_forget(struct xa_assoc *a, uint64_t tid, int rmid,
		    const struct xa_xid *xid, long flags)
{
	return check(a, tid, rmid, xid, flags, TMNOFLAGS, XA_ASSOC_FORGET);
}

static bool is_rb(int rc)
{
	return rc >= XA_RBBASE && rc <= XA_RBEND;
}

static bool is_heur(int rc)
{
	return rc == XA_HEURHAZ || rc == XA_HEURCOM || rc == XA_HEURRB ||
	       rc == XA_HEURMIX;
}

/* Where an outcome rc of verb takes a branch in state from. */
static int outcome_state(enum xa_assoc_verb verb, int from, int rc)
{
	switch (verb) {
	case XA_ASSOC_PREPARE:
		if (rc == XA_OK)
			return S3;
		if (rc == XA_RDONLY || is_rb(rc) || rc == XAER_RMERR ||
		    rc == XAER_NOTA)
			return S0;
		break;
	case XA_ASSOC_COMMIT:
	case XA_ASSOC_ROLLBACK:
		if (rc == XA_OK || is_rb(rc) || rc == XAER_NOTA)
			return S0;
		if (is_heur(rc))
			return S5;
		break;
	case XA_ASSOC_FORGET:
		if (rc == XA_OK || rc == XAER_NOTA)
			return S0;
		break;
	}
	return from;
}

int xa_assoc_complete(struct xa_assoc *a, int rmid, const struct xa_xid *xid,
		      enum xa_assoc_verb verb, int rc)
{
	struct branch *b;
	int ret, to;

	if (a == NULL || xid == NULL || verb < XA_ASSOC_PREPARE ||
	    verb > XA_ASSOC_FORGET)
		return XAER_INVAL;
	pthread_mutex_lock(&a->mu);
	b = br_find(a, rmid, xid);
	if (b == NULL || b->busy != (int)verb) {
		ret = XAER_PROTO;
		goto out;
	}
	b->busy = 0;
	to = outcome_state(verb, b->state, rc);
	ret = move_branch(a, b, to);
	if (ret != XA_OK)
		goto out;
	if (to == S5)
		b->code = rc;
	ret = rc;
out:
	pthread_mutex_unlock(&a->mu);
	return ret;
}

int xa_assoc_rollback_only(struct xa_assoc *a, int rmid,
			   const struct xa_xid *xid, int rb)
{
	struct branch *b;
	int rc;

	if (a == NULL || xid == NULL || !is_rb(rb))
		return XAER_INVAL;
	pthread_mutex_lock(&a->mu);
	b = br_find(a, rmid, xid);
	if (b == NULL) {
		rc = XAER_NOTA;
		goto out;
	}
	if (b->state == S4) {
		rc = XA_OK;
		goto out;
	}
	if (b->busy || (b->state != S1 && b->state != S2)) {
		rc = XAER_PROTO;
		goto out;
	}
	rc = move_branch(a, b, S4);
	if (rc == XA_OK)
		b->code = rb;
out:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int xa_assoc_drop(struct xa_assoc *a, int rmid, const struct xa_xid *xid)
{
	struct branch *b;
	int rc;

	if (a == NULL || xid == NULL)
		return XAER_INVAL;
	pthread_mutex_lock(&a->mu);
	b = br_find(a, rmid, xid);
	if (b == NULL) {
		rc = XAER_NOTA;
		goto out;
	}
	if (b->busy || b->state == S1 ||
	    br_count(a, b, T1) + br_count(a, b, T2) != 0) {
		rc = XAER_PROTO;
		goto out;
	}
	rc = move_branch(a, b, S0);
out:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

/* --- recovery scan ------------------------------------------------------- */

int xa_assoc_recover(struct xa_assoc *a, uint64_t tid, int rmid,
		     const XID *xids, long count, long flags, uint64_t *pos)
{
	struct thr *t;
	int rc = XA_OK;

	if (a == NULL || count < 0 || (xids == NULL && count > 0) ||
	    !flags_only(flags, TMSTARTRSCAN | TMENDRSCAN))
		return XAER_INVAL;
	pthread_mutex_lock(&a->mu);
	t = thr_find(a, tid, rmid);
	if (t == NULL) {
		rc = XAER_PROTO;
		goto out;
	}
	if (flags & TMSTARTRSCAN) {
		t->scanning = true;
		t->scan_pos = 0;
	} else if (!t->scanning) {
		rc = XAER_INVAL;
		goto out;
	}
	if (pos != NULL)
		*pos = t->scan_pos;
out:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

int xa_assoc_recover_done(struct xa_assoc *a, uint64_t tid, int rmid, long n,
			  long count, long flags)
{
	struct thr *t;
	int rc = XA_OK;

	if (a == NULL || n < 0 || n > count)
		return XAER_INVAL;
	pthread_mutex_lock(&a->mu);
	t = thr_find(a, tid, rmid);
	if (t == NULL || !t->scanning) {
		rc = XAER_PROTO;
		goto out;
	}
	t->scan_pos += (uint64_t)n;
	if ((flags & TMENDRSCAN) || n < count)
		t->scanning = false;
out:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

enum xa_assoc_tstate xa_assoc_thread_state(struct xa_assoc *a, uint64_t tid,
					   int rmid)
{
	struct thr *t;
	int st = T0;

	if (a == NULL)
		return XA_ASSOC_T0;
	pthread_mutex_lock(&a->mu);
	t = thr_find(a, tid, rmid);
	if (t != NULL)
		st = t->state;
	pthread_mutex_unlock(&a->mu);
	return (enum xa_assoc_tstate)st;
}

enum xa_assoc_bstate xa_assoc_branch_state(struct xa_assoc *a, int rmid,
					   const struct xa_xid *xid)
{
	struct branch *b;
	int st = S0;

	if (a == NULL || xid == NULL)
		return XA_ASSOC_S0;
	pthread_mutex_lock(&a->mu);
	b = br_find(a, rmid, xid);
	if (b != NULL)
		st = b->state;
	pthread_mutex_unlock(&a->mu);
	return (enum xa_assoc_bstate)st;
}

#define FAIL(...)                                                              \
	do {                                                                   \
		if (errmsg != NULL)                                            \
			snprintf(errmsg, errmsg_len, __VA_ARGS__);             \
		ok = false;                                                    \
		goto out;                                                      \
	} while (0)

bool xa_assoc_invariants(struct xa_assoc *a, char *errmsg, size_t errmsg_len)
{
	bool ok = true;

	if (a == NULL)
		return false;
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < a->nbr; i++) {
		struct branch *b = &a->br[i];
		size_t n = br_count(a, b, T1) + br_count(a, b, T2);

		if (b->state <= S0 || b->state >= S_N)
			FAIL("branch %zu in state %d", i, b->state);
		if (b->state == S1 && n == 0)
			FAIL("branch %zu S1 without association", i);
		if ((b->state == S2 || b->state == S3 || b->state == S5) &&
		    n != 0)
			FAIL("branch %zu %s with %zu associations", i,
			     branch_names[b->state], n);
		if (b->busy && b->state == S1)
			FAIL("branch %zu busy while active", i);
		for (size_t j = i + 1; j < a->nbr; j++)
			if (a->br[j].rmid == b->rmid &&
			    xa_xid_equal(&a->br[j].xid, &b->xid))
				FAIL("branches %zu and %zu: same XID", i, j);
	}
	for (size_t i = 0; i < a->nth; i++) {
		struct thr *t = &a->th[i];
		struct branch *b;

		if (t->state < T0 || t->state >= T_N)
			FAIL("thread %zu in state %d", i, t->state);
		if (t->state == T0)
			continue;
		b = br_find(a, t->rmid, &t->xid);
		if (b == NULL || (b->state != S1 && b->state != S4))
			FAIL("thread %zu %s on a branch in %s", i,
			     thread_names[t->state],
			     b == NULL ? "S0" : branch_names[b->state]);
	}
out:
	pthread_mutex_unlock(&a->mu);
	return ok;
}

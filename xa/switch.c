/*
 * switch.c — Settle as a resource manager of a legacy XA transaction
 * manager: the X/Open struct xa_switch_t settle_xa_switch.
 *
 * Each XID the TM hands in names one Settle transaction of mode XA, whose
 * gid is xa_xid_gid(xid): any process holding the XID finds it, so a TM
 * may prepare, commit or recover from another process than the one that
 * did the work (a TP monitor's TMS process does exactly that).
 *
 * Two layers of state:
 *  - xa/assoc.c, shared by the whole process: the specification's thread
 *    (T0..T2) and branch (S0..S5) states, and which verb is legal when.
 *    It answers the codes that need no coordinator (XAER_PROTO, XA_RB* of
 *    a rollback-only branch, XA_HEUR* of a remembered heuristic).
 *  - the coordinator cluster, through libsettle: the durable truth. One
 *    settle_client per (thread, rmid), opened by xa_open, because the
 *    specification ties xa_open to a thread of control and a libsettle
 *    handle serves one thread.
 * A completion verb (or xa_end) on a branch this process does not track
 * (assoc says XAER_NOTA), or whose record here went stale, is answered from
 * the coordinator's state (sw_answer()): that is recovery, or a TM that
 * completes in another process, and every process hears the same code.
 *
 * Return codes are the XA specification's; SETTLE_E* codes never leak.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xa/assoc.h"
#include "xa/settle_xa_ext.h"
#include "xa/switch_int.h"

/* Not an XA code: the verb goes to the coordinator. */
#define SW_GO 0x7fff
/* xa_end, for sw_answer() (not a completion verb of xa/assoc.h). */
#define SW_END 0

/* A thread's sessions (the list head is its pthread key value) and the
 * reason of its last failed xa_open. */
struct sw_thread {
	struct sw_session *sessions;
	char open_err[SW_ERRMSG_MAX];
};

static pthread_once_t sw_once = PTHREAD_ONCE_INIT;
static pthread_key_t sw_key;
struct xa_assoc *sw_assoc; /* NULL if initialization failed */
static bool sw_trace;

/* A thread that exits without xa_close still releases its handles. */
static void sw_thread_free(void *arg)
{
	struct sw_thread *t = arg;
	uint64_t tid = xa_assoc_self();

	while (t->sessions != NULL) {
		struct sw_session *s = t->sessions;

		t->sessions = s->next;
		xa_assoc_close(sw_assoc, tid, s->rmid, TMNOFLAGS);
		settle_client_close(s->c);
		free(s);
	}
	free(t);
}

static void sw_init(void)
{
	const char *tr = getenv("SETTLE_TRACE");

	sw_trace = tr != NULL && tr[0] != '\0' && strcmp(tr, "0") != 0;
	if (pthread_key_create(&sw_key, sw_thread_free) != 0)
		return;
	if (xa_assoc_new(&sw_assoc) != 0)
		sw_assoc = NULL;
}

/* The calling thread's record; NULL (and no record made) if create is
 * false and it has none, or memory runs out. */
static struct sw_thread *sw_thread(bool create)
{
	struct sw_thread *t;

	pthread_once(&sw_once, sw_init);
	if (sw_assoc == NULL)
		return NULL;
	t = pthread_getspecific(sw_key);
	if (t == NULL && create) {
		t = calloc(1, sizeof(*t));
		if (t != NULL && pthread_setspecific(sw_key, t) != 0) {
			free(t);
			t = NULL;
		}
	}
	return t;
}

struct sw_session *sw_session(int rmid)
{
	struct sw_thread *t = sw_thread(false);

	for (struct sw_session *s = t ? t->sessions : NULL; s; s = s->next)
		if (s->rmid == rmid)
			return s;
	return NULL;
}

static void sw_errf(struct sw_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sw_errf(struct sw_session *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof(s->errmsg), fmt, ap);
	va_end(ap);
}

static const char *sw_code_name(int rc)
{
	switch (rc) {
	case XA_OK:
		return "XA_OK";
	case XA_RDONLY:
		return "XA_RDONLY";
	case XA_RETRY:
		return "XA_RETRY";
	case XA_HEURMIX:
		return "XA_HEURMIX";
	case XA_HEURRB:
		return "XA_HEURRB";
	case XA_HEURCOM:
		return "XA_HEURCOM";
	case XA_HEURHAZ:
		return "XA_HEURHAZ";
	case XA_NOMIGRATE:
		return "XA_NOMIGRATE";
	case XAER_ASYNC:
		return "XAER_ASYNC";
	case XAER_RMERR:
		return "XAER_RMERR";
	case XAER_NOTA:
		return "XAER_NOTA";
	case XAER_INVAL:
		return "XAER_INVAL";
	case XAER_PROTO:
		return "XAER_PROTO";
	case XAER_RMFAIL:
		return "XAER_RMFAIL";
	case XAER_DUPID:
		return "XAER_DUPID";
	case XAER_OUTSIDE:
		return "XAER_OUTSIDE";
	}
	return rc >= XA_RBBASE && rc <= XA_RBEND ? "XA_RB*" : "?";
}

int sw_ret(const char *verb, int rmid, const struct xa_xid *x, int rc)
{
	if (sw_trace) {
		char text[XA_XID_TEXT_MAX] = "-";

		if (x != NULL && xa_xid_format(x, text, sizeof(text)) != 0)
			strcpy(text, "?");
		fprintf(stderr, "settle_xa: %s rmid %d xid %s -> %d %s\n", verb,
			rmid, text, rc,
			strcmp(verb, "xa_recover") == 0 && rc >= 0
			    ? "XIDs"
			    : sw_code_name(rc));
	}
	return rc;
}

/* Transport trouble (the cluster unreachable, no leader within the retry
 * budget) is XAER_RMFAIL: the TM may xa_close/xa_open and try again. */
int sw_fail(struct sw_session *s, const char *verb, int err)
{
	int rc;

	switch (err) {
	case SETTLE_ENOTFOUND:
		rc = XAER_NOTA;
		break;
	case SETTLE_EEXISTS:
		rc = XAER_DUPID;
		break;
	case SETTLE_ESTATE:
		rc = XAER_PROTO;
		break;
	case SETTLE_EINVAL:
	case SETTLE_ETOOBIG:
		rc = XAER_INVAL;
		break;
	case SETTLE_ENOTLEADER:
	case SETTLE_EUNAVAIL:
	case SETTLE_ETIMEOUT:
	case SETTLE_EIO:
	case SETTLE_ECLOSED:
	case SETTLE_ECONNECT:
	case SETTLE_ECANCELED:
		rc = XAER_RMFAIL;
		break;
	default:
		rc = XAER_RMERR;
		break;
	}
	sw_errf(s, "%s: %s%s: %s", verb,
		rc == XAER_RMFAIL ? "coordinator unreachable: " : "",
		settle_errname(err), settle_client_errmsg(s->c));
	return rc;
}

/* The state of gid at the coordinator, or a negative SETTLE_E* code. */
static int sw_tx_state(struct sw_session *s, const char *gid, int *heuristic)
{
	Settle__V1__TxInfo *tx = NULL;
	int rv = settle_query(s->c, gid, false, &tx);

	if (rv != 0)
		return rv;
	rv = (int)tx->state;
	if (heuristic != NULL)
		*heuristic = (int)tx->heuristic;
	settle_tx_info_free(tx);
	return rv;
}

static bool sw_rolled_back(int state)
{
	return state == SETTLE__V1__TX_STATE__ROLLING_BACK ||
	       state == SETTLE__V1__TX_STATE__ROLLED_BACK;
}

static bool sw_committed(int state)
{
	return state == SETTLE__V1__TX_STATE__COMMITTING ||
	       state == SETTLE__V1__TX_STATE__COMMITTED;
}

/* The XID's gid and wire encoding (both may be NULL). */
static int sw_ids(const struct xa_xid *x, char gid[XA_XID_GID_LEN + 1],
		  uint8_t wire[XA_XID_WIRE_MAX], size_t *wire_len)
{
	char g[XA_XID_GID_LEN + 1];

	if (xa_xid_gid(x, gid ? gid : g) != 0)
		return XAER_RMERR;
	if (wire != NULL &&
	    xa_xid_encode(x, wire, XA_XID_WIRE_MAX, wire_len) != 0)
		return XAER_RMERR;
	return XA_OK;
}

/* ---- xa_open / xa_close ------------------------------------------------- */

static int sw_open(char *xa_info, int rmid, long flags)
{
	struct sw_thread *t = sw_thread(true);
	struct sw_session *s;
	uint64_t tid = xa_assoc_self();
	int rv;

	if (t == NULL)
		return sw_ret("xa_open", rmid, NULL, XAER_RMERR);
	t->open_err[0] = '\0';
	if (flags != TMNOFLAGS) {
		snprintf(t->open_err, sizeof(t->open_err),
			 "xa_open: flags 0x%lx: only TMNOFLAGS (no "
			 "asynchronous mode)",
			 (unsigned long)flags);
		return sw_ret("xa_open", rmid, NULL, XAER_INVAL);
	}
	if (sw_session(rmid) != NULL)
		return sw_ret("xa_open", rmid, NULL, XA_OK); /* again: fine */
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return sw_ret("xa_open", rmid, NULL, XAER_RMERR);
	s->rmid = rmid;
	if (sw_info_parse(xa_info, &s->info, t->open_err,
			  sizeof(t->open_err)) != 0) {
		rv = XAER_INVAL;
		goto err_after_alloc;
	}
	/* No connection yet: libsettle connects on the first call, so a TM
	 * may open before the cluster is up; the first verb then answers
	 * XAER_RMFAIL until it is. */
	rv = settle_client_open(s->info.endpoints, &s->info.opts, &s->c);
	if (rv != 0) {
		snprintf(t->open_err, sizeof(t->open_err),
			 "xa_open: endpoints \"%s\": %s", s->info.endpoints,
			 settle_strerror(rv));
		rv = rv == SETTLE_EINVAL ? XAER_INVAL : XAER_RMERR;
		goto err_after_alloc;
	}
	rv = xa_assoc_open(sw_assoc, tid, rmid, TMNOFLAGS);
	if (rv != XA_OK)
		goto err_after_client;
	s->next = t->sessions;
	t->sessions = s;
	return sw_ret("xa_open", rmid, NULL, XA_OK);

err_after_client:
	settle_client_close(s->c);
err_after_alloc:
	free(s);
	return sw_ret("xa_open", rmid, NULL, rv);
}

static int sw_close(char *xa_info, int rmid, long flags)
{
	struct sw_thread *t = sw_thread(false);
	struct sw_session **pp;
	int rc;

	(void)xa_info; /* the spec passes it again; nothing to do with it */
	if (flags != TMNOFLAGS)
		return sw_ret("xa_close", rmid, NULL, XAER_INVAL);
	if (t == NULL)
		return sw_ret("xa_close", rmid, NULL,
			      sw_assoc ? XA_OK : XAER_RMERR);
	for (pp = &t->sessions; *pp != NULL; pp = &(*pp)->next)
		if ((*pp)->rmid == rmid)
			break;
	if (*pp == NULL)
		return sw_ret("xa_close", rmid, NULL, XA_OK); /* not open */
	rc = xa_assoc_close(sw_assoc, xa_assoc_self(), rmid, TMNOFLAGS);
	if (rc != XA_OK) {
		sw_errf(*pp, "xa_close: the thread is still associated with "
			     "a transaction (xa_end first)");
		return sw_ret("xa_close", rmid, NULL, rc);
	}
	struct sw_session *s = *pp;
	*pp = s->next;
	settle_client_close(s->c);
	free(s);
	return sw_ret("xa_close", rmid, NULL, XA_OK);
}

/* ---- xa_start / xa_end -------------------------------------------------- */

/* Keep the association's gid for settle_xa_current_gid(). */
static void sw_note_assoc(struct sw_session *s, const struct xa_xid *x)
{
	s->assoc_gid_ok = sw_ids(x, s->assoc_gid, NULL, NULL) == XA_OK;
}

/* Begin (or join) the transaction of x at the coordinator. */
static int sw_begin_at(struct sw_session *s, const struct xa_xid *x, bool join,
		       const char *verb)
{
	uint8_t wire[XA_XID_WIRE_MAX];
	char gid[XA_XID_GID_LEN + 1];
	size_t len = 0;
	bool joined = false;
	int rv = sw_ids(x, gid, wire, &len);

	if (rv != XA_OK)
		return rv;
	rv = settle_xa_begin(s->c, NULL, wire, len, join, s->info.timeout_ms,
			     NULL, 0, &joined);
	if (rv == 0)
		return XA_OK;
	if (rv == SETTLE_ESTATE && join) {
		/* Not ACTIVE: rolled back (the deadline, TMFAIL elsewhere)
		 * is the TM's XA_RB*, anything later a protocol error. */
		int st = sw_tx_state(s, gid, NULL);

		if (st >= 0 && sw_rolled_back(st)) {
			sw_errf(s, "%s: transaction %s is %s", verb, gid,
				settle_tx_state_name(st));
			return XA_RBROLLBACK;
		}
	}
	return sw_fail(s, verb, rv);
}

static bool sw_start_flags_ok(long flags)
{
	if ((flags & ~(TMJOIN | TMRESUME | TMNOWAIT)) != 0)
		return false;
	return (flags & (TMJOIN | TMRESUME)) != (TMJOIN | TMRESUME);
}

static int sw_start(XID *xid, int rmid, long flags)
{
	uint64_t tid = xa_assoc_self();
	struct sw_session *s;
	struct xa_xid x;
	int rc;

	s = sw_session(rmid); /* first: it initializes the library */
	if (xa_assoc_xid(xid, &x) != XA_OK || !sw_start_flags_ok(flags))
		return sw_ret("xa_start", rmid, NULL, XAER_INVAL);
	if (s == NULL)
		return sw_ret("xa_start", rmid, &x, XAER_PROTO);
	s->errmsg[0] = '\0';

	if (flags & TMRESUME) {
		rc = xa_assoc_start(sw_assoc, tid, rmid, &x, flags);
	} else if (xa_assoc_thread_state(sw_assoc, tid, rmid) != XA_ASSOC_T0) {
		sw_errf(s, "xa_start: the thread is already associated");
		rc = XAER_PROTO;
	} else if (xa_assoc_branch_state(sw_assoc, rmid, &x) != XA_ASSOC_S0) {
		/* Known here: a join is local, a new start a duplicate. */
		rc = (flags & TMJOIN)
			 ? xa_assoc_start(sw_assoc, tid, rmid, &x, flags)
			 : XAER_DUPID;
	} else {
		/* Unknown here: begin it, or join what another process
		 * began; then this process tracks it as its own branch. */
		rc = sw_begin_at(s, &x, (flags & TMJOIN) != 0, "xa_start");
		if (rc == XA_OK) {
			rc = xa_assoc_start(sw_assoc, tid, rmid, &x,
					    flags & TMNOWAIT);
			if (rc != XA_OK && !(flags & TMJOIN)) {
				/* Another thread raced us to the same XID
				 * after our begin: nothing of ours to keep. */
				char gid[XA_XID_GID_LEN + 1];

				if (sw_ids(&x, gid, NULL, NULL) == XA_OK)
					settle_rollback(s->c, gid,
							"xa_start raced", 0,
							NULL, NULL);
			}
		}
	}
	if (rc == XA_OK)
		sw_note_assoc(s, &x);
	return sw_ret("xa_start", rmid, &x, rc);
}

/* Roll the transaction back at the coordinator, best effort: when this
 * fails the transaction's deadline rolls it back anyway (presumed
 * abort), and a later xa_rollback asks again. */
static void sw_rollback_quietly(struct sw_session *s, const char *gid,
				const char *why)
{
	int rv = settle_rollback(s->c, gid, why, 0, NULL, NULL);

	if (rv != 0 && rv != SETTLE_ESTATE && rv != SETTLE_ENOTFOUND)
		sw_fail(s, "rollback", rv);
}

/* The coordinator's view of a branch, below. */
static int sw_answer_now(struct sw_session *s, const char *verb,
			 const char *gid, int v, long flags, int *out);
static bool sw_stale(struct sw_session *s, const char *verb, int rmid,
		     const struct xa_xid *x, const char *gid);

static int sw_end(XID *xid, int rmid, long flags)
{
	uint64_t tid = xa_assoc_self();
	struct sw_session *s;
	struct xa_xid x;
	int rc;

	s = sw_session(rmid); /* first: it initializes the library */
	if (xa_assoc_xid(xid, &x) != XA_OK)
		return sw_ret("xa_end", rmid, NULL, XAER_INVAL);
	rc = xa_assoc_end(sw_assoc, tid, rmid, &x, flags);
	if (s == NULL)
		return sw_ret("xa_end", rmid, &x,
			      rc == XAER_INVAL ? rc : XAER_PROTO);
	s->errmsg[0] = '\0';
	if (xa_assoc_thread_state(sw_assoc, tid, rmid) != XA_ASSOC_T1)
		s->assoc_gid_ok = false;
	if (rc == XAER_NOTA || rc == XAER_PROTO) {
		/* Not tracked here, or finished by the coordinator: an XID
		 * the coordinator knows unfinished is the wrong context
		 * for this thread, anything else not a branch at all. */
		char gid[XA_XID_GID_LEN + 1];
		int out = rc;

		if (sw_ids(&x, gid, NULL, NULL) == XA_OK &&
		    (rc == XAER_NOTA || sw_stale(s, "xa_end", rmid, &x, gid)) &&
		    sw_answer_now(s, "xa_end", gid, SW_END, flags, &out) ==
			XA_OK)
			rc = out;
	}
	if ((flags & TMFAIL) && rc >= XA_RBBASE && rc <= XA_RBEND) {
		/* Rollback-only now: cancel the TCC branches at once rather
		 * than at the TM's xa_rollback; the branch stays S4 here
		 * until that xa_rollback. */
		char gid[XA_XID_GID_LEN + 1];

		if (sw_ids(&x, gid, NULL, NULL) == XA_OK)
			sw_rollback_quietly(s, gid, "xa_end(TMFAIL)");
	}
	return sw_ret("xa_end", rmid, &x, rc);
}

/* ---- completion verbs --------------------------------------------------- */

/*
 * The XA code of a remembered heuristic, whichever way the TM decided:
 * the specification's XA_HEUR* codes say how the work was completed, not
 * whether that matches the TM's verb, so a commit of a heuristically
 * committed branch is XA_HEURCOM too, and the TM must xa_forget it.
 * XA_OK for HEURISTIC_NONE.
 */
static int sw_heuristic(int heuristic)
{
	switch (heuristic) {
	case SETTLE__V1__HEURISTIC__HEUR_HAZARD:
		return XA_HEURHAZ;
	case SETTLE__V1__HEURISTIC__HEUR_MIXED:
		return XA_HEURMIX;
	case SETTLE__V1__HEURISTIC__HEUR_COMMIT:
		return XA_HEURCOM;
	case SETTLE__V1__HEURISTIC__HEUR_ROLLBACK:
		return XA_HEURRB;
	}
	return XA_OK;
}

/* The errmsg of a heuristic answer: what was decided and how. */
static int sw_heur_ret(struct sw_session *s, const char *verb, const char *gid,
		       int state, int heuristic)
{
	sw_errf(s,
		"%s: transaction %s is %s with heuristic %s (decided by "
		"hand, or a branch ended otherwise): xa_forget it once "
		"dealt with",
		verb, gid, settle_tx_state_name(state),
		settle_heuristic_name(heuristic));
	return sw_heuristic(heuristic);
}

/*
 * ---- the coordinator's view of a branch --------------------------------
 *
 * A process that does not track a branch (it did not begin it here, or it
 * completed already) and a process whose tracking went stale (the deadline
 * rolled the branch back, an operator decided it, another process
 * completed it) answer from the coordinator's state, so that every process
 * of the TM hears the same code. XA_HEUR* only when a heuristic decision
 * exists (TxInfo.heuristic: an operator's, or one an RM reported); a branch
 * completed without one is XAER_NOTA to any verb but a repeat of its own
 * decision. docs/XA.md has the whole table.
 */
struct sw_branch {
	int state;	/* Settle__V1__TxState; -1: no such transaction */
	int heuristic;	/* Settle__V1__Heuristic */
	bool read_only; /* committed by a read-only prepare (XA_RDONLY) */
};

/* The branch of gid at the coordinator into *b (state -1 when unknown
 * there). XA_OK, or the XA code of a transport failure. */
static int sw_branch_get(struct sw_session *s, const char *verb,
			 const char *gid, struct sw_branch *b)
{
	Settle__V1__TxInfo *tx = NULL;
	bool prepared = false, decided = false;
	int rv = settle_query(s->c, gid, true, &tx);

	b->state = -1;
	b->heuristic = SETTLE__V1__HEURISTIC__HEURISTIC_NONE;
	b->read_only = false;
	if (rv == SETTLE_ENOTFOUND)
		return XA_OK;
	if (rv != 0)
		return sw_fail(s, verb, rv);
	b->state = (int)tx->state;
	b->heuristic = (int)tx->heuristic;
	/* Read-only: prepared, then COMMITTED with no commit decision
	 * (PROTOCOL.md's history: a decision is a "commit" event). */
	for (size_t i = 0; i < tx->n_history; i++) {
		const char *kind = tx->history[i]->kind;

		prepared |= strcmp(kind, "prepare") == 0;
		decided |= strcmp(kind, "commit") == 0;
	}
	b->read_only =
	    b->state == SETTLE__V1__TX_STATE__COMMITTED && prepared && !decided;
	settle_tx_info_free(tx);
	return XA_OK;
}

/*
 * The answer of verb (an enum xa_assoc_verb, or SW_END) with flags to a
 * branch the coordinator sees as *b: an XA code, or SW_GO when the verb
 * must go to the coordinator.
 */
static int sw_answer(const struct sw_branch *b, int verb, long flags)
{
	bool one_phase = (flags & TMONEPHASE) != 0;
	bool decide = verb == XA_ASSOC_COMMIT || verb == XA_ASSOC_ROLLBACK;

	if (b->state < 0)
		return XAER_NOTA;
	if (b->heuristic != SETTLE__V1__HEURISTIC__HEURISTIC_NONE) {
		/* Heuristically completed (S5): both decisions hear how;
		 * xa_forget once phase two is over (XAER_RMFAIL: again
		 * later). */
		if (decide)
			return sw_heuristic(b->heuristic);
		if (verb != XA_ASSOC_FORGET)
			return XAER_PROTO;
		return b->state == SETTLE__V1__TX_STATE__COMMITTED ||
			       b->state == SETTLE__V1__TX_STATE__ROLLED_BACK
			   ? SW_GO
			   : XAER_RMFAIL;
	}
	switch (b->state) {
	case SETTLE__V1__TX_STATE__ACTIVE: /* S1 or S2 somewhere */
		if (verb == XA_ASSOC_PREPARE || verb == XA_ASSOC_ROLLBACK ||
		    (verb == XA_ASSOC_COMMIT && one_phase))
			return SW_GO;
		return XAER_PROTO;
	case SETTLE__V1__TX_STATE__XA_PREPARED: /* S3 */
		if (verb == XA_ASSOC_ROLLBACK ||
		    (verb == XA_ASSOC_COMMIT && !one_phase))
			return SW_GO;
		return XAER_PROTO;
	case SETTLE__V1__TX_STATE__COMMITTING:
	case SETTLE__V1__TX_STATE__COMMITTED:
		/* Completed (S0): only a repeated commit is the same
		 * answer again (a TM's retry after XAER_RMFAIL); after
		 * XA_RDONLY there was no commit, and a repeated prepare
		 * hears XA_RDONLY again. */
		if (b->read_only)
			return verb == XA_ASSOC_PREPARE ? XA_RDONLY : XAER_NOTA;
		return verb == XA_ASSOC_COMMIT ? SW_GO : XAER_NOTA;
	case SETTLE__V1__TX_STATE__ROLLING_BACK:
	case SETTLE__V1__TX_STATE__ROLLED_BACK:
		/* The work is rolled back: what would commit it hears
		 * XA_RB* where the specification allows it (prepare,
		 * one-phase commit), XAER_NOTA where it does not. */
		if (verb == XA_ASSOC_ROLLBACK)
			return SW_GO;
		if (verb == XA_ASSOC_PREPARE ||
		    (verb == XA_ASSOC_COMMIT && one_phase))
			return XA_RBROLLBACK;
		return XAER_NOTA;
	}
	return XAER_PROTO;
}

/*
 * sw_answer() of the branch's current state at the coordinator into *out
 * (the reason in s->errmsg unless SW_GO). Returns XA_OK, or the XA code of
 * a failed query (then *out is untouched).
 */
static int sw_answer_now(struct sw_session *s, const char *verb,
			 const char *gid, int v, long flags, int *out)
{
	struct sw_branch b;
	int rc = sw_branch_get(s, verb, gid, &b);

	if (rc != XA_OK)
		return rc;
	*out = sw_answer(&b, v, flags);
	if (*out == SW_GO)
		return XA_OK;
	if (*out >= XA_HEURMIX && *out <= XA_HEURHAZ)
		sw_heur_ret(s, verb, gid, b.state, b.heuristic);
	else if (b.state < 0)
		sw_errf(s, "%s: no transaction %s", verb, gid);
	else if (*out == XAER_RMFAIL)
		sw_errf(s,
			"%s: transaction %s is still %s: forget it again "
			"once phase two ended",
			verb, gid, settle_tx_state_name(b.state));
	else
		sw_errf(s, "%s: transaction %s is %s%s%s", verb, gid,
			settle_tx_state_name(b.state),
			b.read_only ? " (read-only)" : "",
			b.heuristic != SETTLE__V1__HEURISTIC__HEURISTIC_NONE
			    ? " with a heuristic outcome"
			    : "");
	return XA_OK;
}

/*
 * A verb the coordinator refused (SETTLE_ESTATE): its state now answers.
 * 1 when the caller should report the refusal itself (the query failed,
 * or the state lets the verb go ahead: a refusal for another reason).
 */
static int sw_refused(struct sw_session *s, const char *verb, const char *gid,
		      int v, long flags, int *rc)
{
	int out = SW_GO;

	if (sw_answer_now(s, verb, gid, v, flags, &out) != XA_OK ||
	    out == SW_GO)
		return 1;
	*rc = out;
	return 0;
}

static int sw_prepare_at(struct sw_session *s, const char *gid)
{
	bool read_only = false;
	int state = 0;
	int rc, rv = settle_xa_prepare(s->c, gid, &state, &read_only);

	if (rv == SETTLE_ESTATE &&
	    sw_refused(s, "xa_prepare", gid, XA_ASSOC_PREPARE, TMNOFLAGS,
		       &rc) == 0)
		return rc;
	if (rv != 0)
		return sw_fail(s, "xa_prepare", rv);
	if (state == SETTLE__V1__TX_STATE__XA_PREPARED)
		return XA_OK;
	if (state == SETTLE__V1__TX_STATE__COMMITTED && read_only)
		return XA_RDONLY;
	sw_errf(s, "xa_prepare: transaction %s is %s", gid,
		settle_tx_state_name(state));
	if (sw_rolled_back(state))
		return XA_RBROLLBACK;
	return XAER_PROTO;
}

/* Commit (commit true) or roll back gid as the TM decided. */
static int sw_decide_at(struct sw_session *s, const char *gid, bool commit,
			bool one_phase)
{
	const char *verb = commit ? "xa_commit" : "xa_rollback";
	bool finished = false;
	int state = 0, heuristic = 0, rc = XA_OK;
	int rv = settle_xa_decide(s->c, gid, commit, one_phase, verb,
				  s->info.commit_wait_ms, &state, &finished,
				  &heuristic);

	if (rv == SETTLE_ESTATE &&
	    sw_refused(s, verb, gid,
		       commit ? XA_ASSOC_COMMIT : XA_ASSOC_ROLLBACK,
		       one_phase ? TMONEPHASE : TMNOFLAGS, &rc) == 0)
		return rc;
	if (rv != 0)
		return sw_fail(s, verb, rv);
	if (commit && !sw_committed(state)) {
		sw_errf(s, "xa_commit: transaction %s is %s", gid,
			settle_tx_state_name(state));
		return XAER_RMERR;
	}
	/* An operator's heuristic decision is known at once; a branch
	 * that ended otherwise only once phase two ended. */
	if (heuristic == SETTLE__V1__HEURISTIC__HEURISTIC_NONE && finished &&
	    sw_tx_state(s, gid, &heuristic) < 0)
		return XA_OK;
	if (heuristic != SETTLE__V1__HEURISTIC__HEURISTIC_NONE)
		return sw_heur_ret(s, verb, gid, state, heuristic);
	return XA_OK;
}

static int sw_forget_at(struct sw_session *s, const char *gid)
{
	int rc, rv = settle_xa_forget(s->c, gid);

	if (rv == SETTLE_ESTATE &&
	    sw_refused(s, "xa_forget", gid, XA_ASSOC_FORGET, TMNOFLAGS, &rc) ==
		0)
		return rc;
	return rv == 0 ? XA_OK : sw_fail(s, "xa_forget", rv);
}

/* The verb at the coordinator (sw_answer() said SW_GO). */
static int sw_go(struct sw_session *s, const char *gid, enum xa_assoc_verb v,
		 long flags)
{
	switch (v) {
	case XA_ASSOC_PREPARE:
		return sw_prepare_at(s, gid);
	case XA_ASSOC_COMMIT:
		return sw_decide_at(s, gid, true, (flags & TMONEPHASE) != 0);
	case XA_ASSOC_ROLLBACK:
		return sw_decide_at(s, gid, false, false);
	default:
		return sw_forget_at(s, gid);
	}
}

/*
 * The local table answered XAER_PROTO for a branch this process tracks.
 * That answer is stale when the coordinator finished the branch without
 * this process: then the branch is forgotten here (true) and the caller
 * answers as for a branch it does not know. A branch still associated
 * here keeps its XAER_PROTO.
 */
static bool sw_stale(struct sw_session *s, const char *verb, int rmid,
		     const struct xa_xid *x, const char *gid)
{
	struct sw_branch b;

	if (sw_branch_get(s, verb, gid, &b) != XA_OK)
		return false;
	/* Unfinished, as here (a branch idle here may have been prepared
	 * by another process: that one is stale too). */
	if (b.state == SETTLE__V1__TX_STATE__ACTIVE ||
	    (b.state == SETTLE__V1__TX_STATE__XA_PREPARED &&
	     xa_assoc_branch_state(sw_assoc, rmid, x) == XA_ASSOC_S3))
		return false;
	return xa_assoc_drop(sw_assoc, rmid, x) == XA_OK;
}

/*
 * The common shape of prepare, commit, rollback and forget: the local
 * check, then the coordinator, then the local outcome. A rollback-only
 * branch answers its XA_RB* code after being rolled back (the TM will not
 * call xa_rollback after an XA_RB* from prepare or a one-phase commit).
 */
static int sw_complete(const char *verb, XID *xid, int rmid, long flags,
		       enum xa_assoc_verb v)
{
	uint64_t tid = xa_assoc_self();
	char gid[XA_XID_GID_LEN + 1];
	struct sw_session *s;
	struct xa_xid x;
	int rc, out;

	s = sw_session(rmid); /* first: it initializes the library */
	if (xa_assoc_xid(xid, &x) != XA_OK)
		return sw_ret(verb, rmid, NULL, XAER_INVAL);
	switch (v) {
	case XA_ASSOC_PREPARE:
		rc = xa_assoc_prepare(sw_assoc, tid, rmid, &x, flags);
		break;
	case XA_ASSOC_COMMIT:
		rc = xa_assoc_commit(sw_assoc, tid, rmid, &x, flags);
		break;
	case XA_ASSOC_ROLLBACK:
		rc = xa_assoc_rollback(sw_assoc, tid, rmid, &x, flags);
		break;
	default:
		rc = xa_assoc_forget(sw_assoc, tid, rmid, &x, flags);
		break;
	}
	if (s == NULL) /* assoc knows the thread did not open rmid */
		return sw_ret(verb, rmid, &x,
			      rc == XAER_INVAL ? rc : XAER_PROTO);
	s->errmsg[0] = '\0';
	if (sw_ids(&x, gid, NULL, NULL) != XA_OK) {
		if (rc == XA_OK)
			xa_assoc_complete(sw_assoc, rmid, &x, v, XAER_RMFAIL);
		return sw_ret(verb, rmid, &x, XAER_RMERR);
	}
	if (rc >= XA_RBBASE && rc <= XA_RBEND) {
		sw_errf(s, "%s: the branch is rollback-only", verb);
		sw_rollback_quietly(s, gid, "rollback-only (xa_end TMFAIL)");
		if (xa_assoc_rollback(sw_assoc, tid, rmid, &x, TMNOFLAGS) ==
		    XA_OK)
			xa_assoc_complete(sw_assoc, rmid, &x, XA_ASSOC_ROLLBACK,
					  XA_OK);
		return sw_ret(verb, rmid, &x, rc);
	}
	if (rc == XAER_PROTO && sw_stale(s, verb, rmid, &x, gid))
		rc = XAER_NOTA;
	if (rc == XAER_NOTA) {
		/* Not tracked here (another process's, completed, or
		 * unknown): the coordinator's state answers. */
		int q = sw_answer_now(s, verb, gid, v, flags, &out);

		if (q != XA_OK)
			return sw_ret(verb, rmid, &x, q);
		if (out == SW_GO)
			out = sw_go(s, gid, v, flags);
		return sw_ret(verb, rmid, &x, out);
	}
	if (rc != XA_OK)
		return sw_ret(verb, rmid, &x, rc);
	out = sw_go(s, gid, v, flags);
	/* The local branch follows the coordinator's answer. */
	return sw_ret(verb, rmid, &x,
		      xa_assoc_complete(sw_assoc, rmid, &x, v, out));
}

static int sw_prepare(XID *xid, int rmid, long flags)
{
	return sw_complete("xa_prepare", xid, rmid, flags, XA_ASSOC_PREPARE);
}

static int sw_commit(XID *xid, int rmid, long flags)
{
	return sw_complete("xa_commit", xid, rmid, flags, XA_ASSOC_COMMIT);
}

static int sw_rollback(XID *xid, int rmid, long flags)
{
	return sw_complete("xa_rollback", xid, rmid, flags, XA_ASSOC_ROLLBACK);
}

static int sw_forget(XID *xid, int rmid, long flags)
{
	return sw_complete("xa_forget", xid, rmid, flags, XA_ASSOC_FORGET);
}

/* No asynchronous mode (TMUSEASYNC is not advertised): nothing can be
 * outstanding. */
static int sw_complete_async(int *handle, int *retval, int rmid, long flags)
{
	if (handle == NULL || retval == NULL ||
	    (flags & ~(TMMULTIPLE | TMNOWAIT)) != 0)
		return sw_ret("xa_complete", rmid, NULL, XAER_INVAL);
	return sw_ret("xa_complete", rmid, NULL, XAER_PROTO);
}

/* ---- exported ----------------------------------------------------------- */

struct xa_switch_t settle_xa_switch = {
    .name = "settle",
    /* Associations do not migrate between threads (xa/assoc.h). */
    .flags = TMNOMIGRATE,
    .version = 0,
    .xa_open_entry = sw_open,
    .xa_close_entry = sw_close,
    .xa_start_entry = sw_start,
    .xa_end_entry = sw_end,
    .xa_rollback_entry = sw_rollback,
    .xa_prepare_entry = sw_prepare,
    .xa_commit_entry = sw_commit,
    .xa_recover_entry = sw_xa_recover,
    .xa_forget_entry = sw_forget,
    .xa_complete_entry = sw_complete_async,
};

int settle_xa_current_gid(int rmid, char *buf, size_t cap)
{
	struct sw_session *s;

	if (buf == NULL)
		return SETTLE_EINVAL;
	if (cap > 0)
		buf[0] = '\0';
	s = sw_session(rmid);
	if (s == NULL || !s->assoc_gid_ok ||
	    xa_assoc_thread_state(sw_assoc, xa_assoc_self(), rmid) !=
		XA_ASSOC_T1)
		return SETTLE_ESTATE;
	if (cap < sizeof(s->assoc_gid))
		return SETTLE_ETOOBIG;
	memcpy(buf, s->assoc_gid, sizeof(s->assoc_gid));
	return 0;
}

const char *settle_xa_errmsg(int rmid)
{
	struct sw_session *s = sw_session(rmid);
	struct sw_thread *t;

	if (s != NULL)
		return s->errmsg;
	t = sw_thread(false);
	return t != NULL ? t->open_err : "";
}

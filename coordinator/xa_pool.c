/*
 * xa_pool.c — RM connections and the jobs that use them (see xa_pool.h).
 *
 * Everything but the body of a job runs on the loop thread: the queues,
 * the idle connections, the counters. A connection is taken off its RM's
 * idle list when a job is handed to uv_queue_work and put back by the
 * job's after-work callback, so one connection is used by one worker at a
 * time without a lock. A job may open its connection on the worker (the
 * first use, or after a failed open); the adapters reconnect a handle
 * whose connection died on their own, at its next verb.
 */
#include "coordinator/xa_pool.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "log.h"
#include "coordinator/xa.h"
#include "xa/rm.h"

_Static_assert(XA_RM_POSTGRESQL == 1 && XA_RM_MARIADB == 2,
	       "config.c spells the RM kinds as 1 and 2");

struct pool_rm;

struct job {
	uv_work_t work;
	struct job *next; /* queue, then running list */
	struct coord_xa_pool *p;
	struct pool_rm *prm;
	enum coord_xa_verb verb;
	struct xa_xid xid;
	int64_t format_id;
	coord_xa_pool_cb cb;
	void *data;
	bool answered;	    /* cb already ran (cancelled while running) */
	struct xa_rm *conn; /* given at dispatch, or opened by the worker */
	/* Written by the worker, read after it. */
	int rv;
	char errmsg[512];
	struct xa_xid *xids;
	size_t n_xids;
};

struct pool_rm {
	const struct coord_xa_rm_cfg *cfg;
	char conninfo[1536]; /* with the leader's bounds (coord_xa_conninfo) */
	struct job *head, *tail;
	unsigned running;
	struct xa_rm *idle[COORD_XA_POOL_PER_RM];
	unsigned n_idle;
	bool down; /* the last job could not reach it: log the way back */
};

struct coord_xa_pool {
	uv_loop_t *loop;
	struct pool_rm rms[COORD_XA_RM_MAX];
	unsigned n_rms;
	unsigned rr; /* round robin over the RMs */
	unsigned running;
	unsigned max_running;
	size_t queued;
	struct job *running_jobs;
	bool closing;
	uv_work_t close_work;
	/* Closing with calls still running: how long the loop waits. */
	uv_timer_t give_up;
	bool give_up_armed;
	unsigned closes; /* of give_up and close_work still to come */
};

/* Pools given up on at shutdown, kept reachable: their workers still run
 * (and the leak checker must not call that a leak). */
static struct coord_xa_pool *volatile abandoned;

/* ---- Worker side --------------------------------------------------------- */

static void job_work(uv_work_t *w)
{
	struct job *j = w->data;
	const struct pool_rm *prm = j->prm;
	int rv;

	j->errmsg[0] = '\0';
	if (j->conn == NULL) {
		rv = xa_rm_open(prm->cfg->kind, prm->conninfo, &j->conn,
				j->errmsg, sizeof j->errmsg);
		if (rv != 0) {
			j->rv = rv;
			return;
		}
	}
	switch (j->verb) {
	case COORD_XA_COMMIT:
		rv = xa_rm_commit(j->conn, &j->xid, false);
		break;
	case COORD_XA_ROLLBACK:
		rv = xa_rm_rollback(j->conn, &j->xid);
		break;
	case COORD_XA_RECOVER:
		rv = xa_rm_recover(j->conn, j->format_id, &j->xids, &j->n_xids);
		break;
	default:
		rv = SETTLE_EINVAL;
		break;
	}
	if (rv != 0)
		snprintf(j->errmsg, sizeof j->errmsg, "%s",
			 xa_rm_errmsg(j->conn));
	j->rv = rv;
}

/* Server messages span lines ("...\n\tIs the server running"): one line
 * for the log and the branch's last error. */
static void one_line(char *s)
{
	for (; *s != '\0'; s++)
		if (*s == '\n' || *s == '\t' || *s == '\r')
			*s = ' ';
}

static void close_work(uv_work_t *w)
{
	struct coord_xa_pool *p = w->data;

	for (unsigned i = 0; i < p->n_rms; i++) {
		struct pool_rm *prm = &p->rms[i];

		while (prm->n_idle > 0)
			xa_rm_close(prm->idle[--prm->n_idle]);
	}
}

static void pool_release(struct coord_xa_pool *p)
{
	if (--p->closes == 0)
		free(p);
}

static void close_done(uv_work_t *w, int status)
{
	(void)status;
	pool_release(w->data);
}

static void give_up_closed(uv_handle_t *h)
{
	pool_release(h->data);
}

/* ---- Loop side ----------------------------------------------------------- */

static void job_done(uv_work_t *w, int status);

static void answer(struct job *j, int rv, const char *errmsg)
{
	struct coord_xa_answer a = {
	    .rv = rv,
	    .errmsg = errmsg != NULL ? errmsg : "",
	    .xids = j->xids,
	    .n_xids = j->n_xids,
	};

	if (j->answered)
		return;
	j->answered = true;
	j->cb(j->data, &a);
}

/* Start queued jobs while the limits allow, RMs in turn. */
static void pump(struct coord_xa_pool *p)
{
	while (!p->closing && p->running < p->max_running && p->queued > 0) {
		struct pool_rm *prm = NULL;
		struct job *j;

		for (unsigned k = 0; k < p->n_rms; k++) {
			struct pool_rm *r = &p->rms[(p->rr + k) % p->n_rms];

			if (r->head != NULL &&
			    r->running < COORD_XA_POOL_PER_RM) {
				prm = r;
				p->rr = (p->rr + k + 1) % p->n_rms;
				break;
			}
		}
		if (prm == NULL)
			return;
		j = prm->head;
		prm->head = j->next;
		if (prm->head == NULL)
			prm->tail = NULL;
		p->queued--;
		j->conn = prm->n_idle > 0 ? prm->idle[--prm->n_idle] : NULL;
		j->work.data = j;
		j->next = p->running_jobs;
		p->running_jobs = j;
		prm->running++;
		p->running++;
		/* Only fails for a NULL work callback. */
		uv_queue_work(p->loop, &j->work, job_work, job_done);
	}
}

static void maybe_free(struct coord_xa_pool *p)
{
	if (!p->closing || p->running > 0)
		return;
	p->closes = 1;
	if (p->give_up_armed) {
		p->closes++;
		uv_close((uv_handle_t *)&p->give_up, give_up_closed);
	}
	/* Idle connections are closed on a worker too: closing one talks
	 * to the server. */
	p->close_work.data = p;
	uv_queue_work(p->loop, &p->close_work, close_work, close_done);
}

static void job_done(uv_work_t *w, int status)
{
	struct job *j = w->data;
	struct coord_xa_pool *p = j->p;
	struct pool_rm *prm = j->prm;
	bool unreachable;

	(void)status; /* never cancelled: jobs reach uv only to run */
	for (struct job **pp = &p->running_jobs; *pp != NULL;
	     pp = &(*pp)->next) {
		if (*pp == j) {
			*pp = j->next;
			break;
		}
	}
	prm->running--;
	p->running--;
	/* At most COORD_XA_POOL_PER_RM jobs of an RM run at once and each
	 * holds at most one connection: the idle list has room. */
	if (j->conn != NULL && prm->n_idle < COORD_XA_POOL_PER_RM)
		prm->idle[prm->n_idle++] = j->conn;
	else if (j->conn != NULL)
		xa_rm_close(j->conn);
	one_line(j->errmsg);
	unreachable = j->rv == XA_RM_ETRANSIENT;
	if (unreachable && !prm->down)
		settle_log(
		    SETTLE_LOG_WARN, "xa",
		    "resource manager %s (%s) unreachable: %s", prm->cfg->name,
		    coord_config_xa_kind_name(prm->cfg->kind), j->errmsg);
	else if (!unreachable && prm->down)
		settle_log(SETTLE_LOG_INFO, "xa",
			   "resource manager %s (%s) reachable again",
			   prm->cfg->name,
			   coord_config_xa_kind_name(prm->cfg->kind));
	prm->down = unreachable;
	answer(j, j->rv, j->errmsg);
	free(j->xids);
	free(j);
	pump(p);
	maybe_free(p);
}

/* Every RM its COORD_XA_POOL_PER_RM, as far as libuv's pool has workers
 * beyond COORD_XA_POOL_SPARE (half of them when it has no more). */
static unsigned max_running(unsigned n_rms)
{
	const char *env = getenv("UV_THREADPOOL_SIZE");
	unsigned long size = env != NULL ? strtoul(env, NULL, 10) : 0;
	unsigned want = COORD_XA_POOL_PER_RM * n_rms;
	unsigned long room;

	if (size == 0)
		size = 4; /* libuv's default */
	room =
	    size > COORD_XA_POOL_SPARE ? size - COORD_XA_POOL_SPARE : size / 2;
	if (room == 0)
		room = 1;
	return want < room ? want : (unsigned)room;
}

int coord_xa_pool_init(uv_loop_t *loop, const struct coord_config *cfg,
		       struct coord_xa_pool **out)
{
	struct coord_xa_pool *p = calloc(1, sizeof *p);

	if (p == NULL)
		return SETTLE_ENOMEM;
	p->loop = loop;
	for (unsigned i = 0; i < cfg->n_xa_rms; i++) {
		struct pool_rm *prm = &p->rms[i];

		prm->cfg = &cfg->xa_rms[i];
		if (coord_xa_conninfo(prm->cfg->kind, prm->cfg->conninfo,
				      prm->conninfo,
				      sizeof prm->conninfo) != 0) {
			free(p);
			return SETTLE_EINVAL;
		}
	}
	p->n_rms = cfg->n_xa_rms;
	p->max_running = max_running(p->n_rms);
	*out = p;
	return 0;
}

static bool xid_busy(const struct coord_xa_pool *p, const struct pool_rm *prm,
		     const struct xa_xid *xid)
{
	for (const struct job *j = p->running_jobs; j != NULL; j = j->next)
		if (j->prm == prm && j->verb != COORD_XA_RECOVER &&
		    xa_xid_equal(&j->xid, xid))
			return true;
	for (const struct job *j = prm->head; j != NULL; j = j->next)
		if (j->verb != COORD_XA_RECOVER && xa_xid_equal(&j->xid, xid))
			return true;
	return false;
}

int coord_xa_pool_submit(struct coord_xa_pool *p, const char *rm,
			 enum coord_xa_verb verb, const struct xa_xid *xid,
			 int64_t format_id, coord_xa_pool_cb cb, void *data)
{
	struct pool_rm *prm = NULL;
	struct job *j;

	if (p->closing)
		return SETTLE_ECANCELED;
	for (unsigned i = 0; i < p->n_rms; i++)
		if (strcmp(p->rms[i].cfg->name, rm) == 0)
			prm = &p->rms[i];
	if (prm == NULL)
		return SETTLE_ENOTFOUND;
	/* Leadership lost and regained drops the driver's plans but not a
	 * call already on a worker: never send a second one for that XID
	 * beside it (the second would find it busy, or gone: NOTA). */
	if (verb != COORD_XA_RECOVER && xid_busy(p, prm, xid))
		return SETTLE_EEXISTS;
	j = calloc(1, sizeof *j);
	if (j == NULL)
		return SETTLE_ENOMEM;
	j->p = p;
	j->prm = prm;
	j->verb = verb;
	if (xid != NULL)
		xa_xid_init(&j->xid, xid->format_id, xa_xid_gtrid(xid),
			    xid->gtrid_len, xa_xid_bqual(xid), xid->bqual_len);
	j->format_id = format_id;
	j->cb = cb;
	j->data = data;
	if (prm->tail != NULL)
		prm->tail->next = j;
	else
		prm->head = j;
	prm->tail = j;
	p->queued++;
	pump(p);
	return 0;
}

void coord_xa_pool_cancel(struct coord_xa_pool *p)
{
	struct job *all = NULL;

	if (p == NULL)
		return;
	/* Unlink first: a callback may submit again. */
	for (unsigned i = 0; i < p->n_rms; i++) {
		struct pool_rm *prm = &p->rms[i];

		if (prm->tail != NULL) {
			prm->tail->next = all;
			all = prm->head;
		}
		prm->head = prm->tail = NULL;
	}
	p->queued = 0;
	while (all != NULL) {
		struct job *j = all;

		all = j->next;
		answer(j, SETTLE_ECANCELED, "cancelled");
		free(j);
	}
}

size_t coord_xa_pool_pending(const struct coord_xa_pool *p)
{
	return p != NULL ? p->queued + p->running : 0;
}

/*
 * A call still blocked on a database when the node stops: a hung server
 * (alive, answering TCP, silent) can hold libpq past every timeout. Stop
 * the loop anyway so that the node exits; the process's end takes the
 * workers with it. Nothing of the call is lost: the log still says what
 * to do, and the next leader does it.
 */
static void give_up_cb(uv_timer_t *t)
{
	struct coord_xa_pool *p = t->data;

	settle_log(SETTLE_LOG_WARN, "xa",
		   "stopping with %u resource-manager call(s) still blocked "
		   "on a database after %d ms: abandoned",
		   p->running, COORD_XA_POOL_CLOSE_WAIT_MS);
	abandoned = p;
	uv_stop(p->loop);
}

void coord_xa_pool_close(struct coord_xa_pool *p)
{
	if (p == NULL || p->closing)
		return;
	p->closing = true; /* first: a callback cannot queue anew */
	coord_xa_pool_cancel(p);
	for (struct job *j = p->running_jobs; j != NULL; j = j->next)
		answer(j, SETTLE_ECANCELED, "the node is stopping");
	if (p->running > 0) {
		/* Unreferenced: it never keeps the loop alive by itself. */
		uv_timer_init(p->loop, &p->give_up);
		p->give_up.data = p;
		uv_timer_start(&p->give_up, give_up_cb,
			       COORD_XA_POOL_CLOSE_WAIT_MS, 0);
		uv_unref((uv_handle_t *)&p->give_up);
		p->give_up_armed = true;
	}
	maybe_free(p);
}

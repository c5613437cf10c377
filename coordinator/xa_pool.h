/*
 * xa_pool.h — the leader's connections to its XA resource managers.
 *
 * libpq and libmariadb block, and the uv loop thread must never wait on a
 * database, so every RM verb runs on libuv's worker pool (uv_queue_work).
 * Each configured RM has a small set of connections; a connection is handed
 * to one job at a time, on the loop thread, and comes back to the RM's idle
 * list when the job is done, so no lock is needed. Jobs wait in a FIFO per
 * RM: at most COORD_XA_POOL_PER_RM run per RM, so a hung database delays
 * only its own calls, and in all at most what libuv's pool has beyond the
 * 4 workers left to raft_uv (UV_THREADPOOL_SIZE, which settled's main()
 * sizes for its RMs; at least 1).
 *
 * Conninfo is never logged; messages name the RM and its kind.
 */
#ifndef SETTLE_COORD_XA_POOL_H
#define SETTLE_COORD_XA_POOL_H

#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "config.h"
#include "xa/xid.h"

#define COORD_XA_POOL_PER_RM 2
/* Workers of libuv's pool that RM calls never take (raft_uv's). */
#define COORD_XA_POOL_SPARE 4
/* At close, how long running calls may hold the loop (coord_xa_pool_close). */
#define COORD_XA_POOL_CLOSE_WAIT_MS 5000

struct coord_xa_pool;

enum coord_xa_verb {
	COORD_XA_COMMIT = 1, /* xa_rm_commit(xid, one_phase = false) */
	COORD_XA_ROLLBACK,   /* xa_rm_rollback(xid) */
	COORD_XA_RECOVER,    /* xa_rm_recover(format_id) */
};

/* What a job answered; valid only during the callback. */
struct coord_xa_answer {
	int rv;		    /* 0, XA_RM_E* (xa/rm.h), or SETTLE_ECANCELED */
	const char *errmsg; /* the RM's error text, "" when none */
	const struct xa_xid *xids; /* recover: the in-doubt XIDs */
	size_t n_xids;
};

/* Called on the loop thread exactly once per submitted job. rv
 * SETTLE_ECANCELED: the job was dropped (coord_xa_pool_cancel, or the pool
 * closed: then it may or may not have run). */
typedef void (*coord_xa_pool_cb)(void *data, const struct coord_xa_answer *a);

/*
 * Set up the pool for every RM of cfg (read, and must outlive the pool).
 * Connects to nothing yet: connections are opened by the first jobs.
 * Errors: SETTLE_ENOMEM, SETTLE_EINVAL (a conninfo too long with the
 * leader's bounds added).
 */
int coord_xa_pool_init(uv_loop_t *loop, const struct coord_config *cfg,
		       struct coord_xa_pool **out);

/*
 * Queue verb on resource manager rm (its name). xid is copied (unused by
 * RECOVER), format_id is RECOVER's filter. cb runs later, never from inside
 * this call. Errors: SETTLE_ENOTFOUND (rm is not configured), SETTLE_EEXISTS
 * (a commit or rollback of that XID is queued or running: try later),
 * SETTLE_ENOMEM, SETTLE_ECANCELED (the pool is closing); cb is not called
 * then.
 */
int coord_xa_pool_submit(struct coord_xa_pool *p, const char *rm,
			 enum coord_xa_verb verb, const struct xa_xid *xid,
			 int64_t format_id, coord_xa_pool_cb cb, void *data);

/* Drop every job not yet running: their callbacks run now with
 * SETTLE_ECANCELED. Running jobs finish and answer as usual. */
void coord_xa_pool_cancel(struct coord_xa_pool *p);

/* Jobs queued or running. */
size_t coord_xa_pool_pending(const struct coord_xa_pool *p);

/*
 * Close: every job still queued or running gets its callback now with
 * SETTLE_ECANCELED and none fires later. Running jobs end on their workers
 * (bounded by the connect and statement timeouts), then the idle
 * connections are closed on a worker and the pool is freed; the loop
 * ends only after that. A job still blocked COORD_XA_POOL_CLOSE_WAIT_MS
 * after close (a hung database) makes the pool log it and uv_stop() the
 * loop, so that the process can exit; the pool is then never freed.
 * NULL is ignored.
 */
void coord_xa_pool_close(struct coord_xa_pool *p);

#endif /* SETTLE_COORD_XA_POOL_H */

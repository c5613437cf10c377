/*
 * snapshot_base.c — writing a checkpoint: the whole store, compressed, to
 * DATA/checkpoints/ckpt-INDEX, on a thread of its own at a low priority.
 *
 * Two callers. Below feature level 5 (or with --snapshot-journal 0) every
 * snapshot is full, written in raft's snapshot cycle (snapshot.c). From
 * level 5 snapshots are deltas on the last checkpoint, and a new one is
 * written here in the background once the journal has grown as large as
 * the last (coord_snapshot_full()): raft keeps taking deltas on the old
 * checkpoint meanwhile, so a large store no longer holds raft's snapshot,
 * and with it the log in memory, for the seconds the copy takes. Entries
 * applied after the new checkpoint's index go to its own journal as well
 * (snapshot_journal.c); once the checkpoint is durable, that journal
 * replaces the current one.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/ioprio.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "apply.h"
#include "coord.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "snapshot_int.h"

int ckpt_sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int rv;

	if (fd < 0)
		return -1;
	rv = fsync(fd);
	close(fd);
	return rv;
}

/*
 * Write the snapshot of read view txn to checkpoints/ckpt-INDEX: to a
 * temporary name, fdatasync'd, renamed, the directory synced. This file,
 * not LMDB, is what lets raft drop the log entries it replaces: the store
 * is not synced here (a restart with a store behind it restores it). That
 * flush of every page dirtied since the last one took 100-300 ms of the
 * disk at each snapshot, in front of the raft log's fsyncs.
 */
static int ckpt_write(struct ckpt_job *j)
{
	struct coord *c = j->c;
	char tmp[PATH_MAX], path[PATH_MAX], dir[PATH_MAX];
	size_t errlen = sizeof j->errmsg;
	char *errmsg = j->errmsg;
	int fd, rv;

	if (j->dir != NULL) {
		snprintf(tmp, sizeof tmp, "%s/" CKPT_PREFIX "%llu%s", j->dir,
			 (unsigned long long)j->index, CKPT_TMP);
		snprintf(path, sizeof path, "%s/" CKPT_PREFIX "%llu", j->dir,
			 (unsigned long long)j->index);
	} else {
		ckpt_path(c, j->index, true, tmp, sizeof tmp);
		ckpt_path(c, j->index, false, path, sizeof path);
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(errmsg, errlen, "open %s: %s", tmp, strerror(errno));
		return errno == ENOSPC ? SETTLE_ENOSPACE : SETTLE_EIO;
	}
	rv = store_snapshot_fd(c->store, j->txn, j->index, fd, j->cancel,
			       &j->len);
	if (rv != 0)
		snprintf(errmsg, errlen, "%s", store_work_errmsg(c->store));
	else {
		uint64_t t0 = uv_hrtime();

		if (fdatasync(fd) != 0) {
			snprintf(errmsg, errlen, "fdatasync %s: %s", tmp,
				 strerror(errno));
			rv = errno == ENOSPC ? SETTLE_ENOSPACE : SETTLE_EIO;
		} else {
			/* An atomic add: safe from this worker thread. */
			coord_metrics_observe(&c->metrics.ckpt_sync,
					      (uv_hrtime() - t0) / 1000);
		}
	}
	if (close(fd) != 0 && rv == 0) {
		snprintf(errmsg, errlen, "close %s: %s", tmp, strerror(errno));
		rv = SETTLE_EIO;
	}
	if (rv == 0 && rename(tmp, path) != 0) {
		snprintf(errmsg, errlen, "rename %s: %s", tmp, strerror(errno));
		rv = SETTLE_EIO;
	}
	if (j->dir != NULL)
		snprintf(dir, sizeof dir, "%s", j->dir);
	else
		snprintf(dir, sizeof dir, "%s/checkpoints", c->cfg.data_dir);
	if (rv == 0 && ckpt_sync_dir(dir) != 0) {
		snprintf(errmsg, errlen, "fsync %s: %s", dir, strerror(errno));
		rv = SETTLE_EIO;
	}
	if (rv != 0)
		unlink(tmp);
	return rv;
}

/*
 * Compressing and writing a large store takes seconds.
 * At full load on a small machine that time came out of the loop's and
 * the raft writer's share, and every transaction in flight waited for it.
 * So the work runs on a thread of its own at a lower priority (nice
 * CKPT_NICE) and gets what the node's own work leaves.
 */
#define CKPT_NICE 10

/*
 * Its disk I/O starts in the idle class, which lets the raft log's fsyncs
 * go first. But a disk that other programs keep busy may give idle I/O
 * nothing for a long time (mq-deadline serves it only past its 10 s
 * aging), and a node in the middle of its own snapshot cannot install
 * the leader's: raft 0.15 ignores the InstallSnapshot and the leader
 * sends it again only after its install timeout. So a checkpoint still
 * being written after CKPT_IDLE_MS goes on in the best-effort class.
 */
#define CKPT_IDLE_MS 1000

static void *ckpt_thread(void *arg)
{
	struct ckpt_job *j = arg;
	pid_t tid = (pid_t)syscall(SYS_gettid);

	/* On Linux a nice value is a thread's own. Lowering one's priority
	 * needs no privilege; failing to is harmless. The same for the disk
	 * (where the I/O scheduler knows classes, as mq-deadline and BFQ
	 * do). */
	(void)setpriority(PRIO_PROCESS, (id_t)tid, CKPT_NICE);
	(void)syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid,
		      IOPRIO_PRIO_VALUE(IOPRIO_CLASS_IDLE, 0));
	__atomic_store_n(&j->tid, tid, __ATOMIC_RELEASE);
	j->rv = ckpt_write(j);
	return NULL;
}

void ckpt_job_run(struct ckpt_job *j)
{
	struct timespec until;
	pthread_t t;
	pid_t tid;

	j->raised = false;
	j->tid = 0;
	j->len = 0;
	if (pthread_create(&t, NULL, ckpt_thread, j) != 0) {
		ckpt_thread(j); /* no thread to spare: at our priority */
		return;
	}
	/* Past CKPT_IDLE_MS, raise its disk I/O to the best-effort class
	 * (the lowest level of it). */
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += CKPT_IDLE_MS / 1000;
	until.tv_nsec += (CKPT_IDLE_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	if (pthread_timedjoin_np(t, NULL, &until) == 0)
		return;
	tid = __atomic_load_n(&j->tid, __ATOMIC_ACQUIRE);
	if (tid != 0 && syscall(SYS_ioprio_set, IOPRIO_WHO_PROCESS, tid,
				IOPRIO_PRIO_VALUE(IOPRIO_CLASS_BE, 7)) == 0)
		j->raised = true;
	pthread_join(t, NULL);
}

/* ---- In the background --------------------------------------------------- */

/* On libuv's pool: the pool thread waits for the writer's own thread. */
static void base_work(uv_work_t *w)
{
	struct coord *c = w->data;

	ckpt_job_run(&c->snap.base.job);
}

static void base_done(uv_work_t *w, int status)
{
	struct coord *c = w->data;
	struct ckpt_job *j = &c->snap.base.job;

	(void)status; /* never cancelled: uv_cancel is not used */
	store_read_end(c->snap.base.txn);
	c->snap.base.txn = NULL;
	c->snap.base.busy = false;
	if (j->rv == 0 && !c->snap.base.dropped) {
		coord_journal_switch(c);
		settle_log(SETTLE_LOG_INFO, "fsm",
			   "checkpoint at %llu: %llu bytes written in the "
			   "background in %.0f ms%s; the next snapshots stand "
			   "on it",
			   (unsigned long long)c->snap.base.index,
			   (unsigned long long)j->len,
			   (double)(uv_hrtime() - c->snap.base.t_begin) / 1e6,
			   j->raised ? " (its disk I/O raised from idle to "
				       "best-effort after 1 s)"
				     : "");
	} else {
		if (c->snap.base.journal_fd >= 0)
			close(c->snap.base.journal_fd);
		c->snap.base.journal_fd = -1;
		if (!c->snap.base.dropped)
			settle_log(SETTLE_LOG_ERROR, "fsm",
				   "checkpoint at %llu failed: %s (%s); the "
				   "next snapshot tries again",
				   (unsigned long long)c->snap.base.index,
				   settle_strerror(j->rv), j->errmsg);
	}
	/* The files of a checkpoint given up, and those no snapshot stands
	 * on any more. */
	if (!c->closing)
		coord_snapshot_prune(c);
}

void coord_base_start(struct coord *c)
{
	struct ckpt_job *j = &c->snap.base.job;
	uint64_t index;
	int rv;

	if (c->snap.base.busy || c->closing)
		return;
	coord_commit_applied(c);
	index = raft_last_applied(&c->raft);
	if (index == 0)
		return;
	rv = store_read_begin(c->store, &c->snap.base.txn);
	if (rv != 0) {
		settle_log(SETTLE_LOG_ERROR, "fsm", "checkpoint: %s",
			   store_errmsg(c->store));
		return;
	}
	c->snap.base.index = index;
	if (coord_journal_next(c, index) != 0) {
		store_read_end(c->snap.base.txn);
		c->snap.base.txn = NULL;
		return;
	}
	memset(j, 0, sizeof *j);
	j->c = c;
	j->txn = c->snap.base.txn;
	j->index = index;
	j->cancel = &c->snap.base.cancel;
	c->snap.base.cancel = 0;
	c->snap.base.dropped = false;
	c->snap.base.t_begin = uv_hrtime();
	c->snap.base.work.data = c;
	if (uv_queue_work(c->loop, &c->snap.base.work, base_work, base_done) !=
	    0) {
		store_read_end(c->snap.base.txn);
		c->snap.base.txn = NULL;
		close(c->snap.base.journal_fd);
		c->snap.base.journal_fd = -1;
		return;
	}
	c->snap.base.busy = true;
	settle_tracef("fsm", "checkpoint at %llu: writing in the background",
		      (unsigned long long)index);
}

void coord_base_drop(struct coord *c)
{
	if (!c->snap.base.busy)
		return;
	c->snap.base.dropped = true;
	__atomic_store_n(&c->snap.base.cancel, 1, __ATOMIC_RELAXED);
	if (c->snap.base.journal_fd >= 0)
		close(c->snap.base.journal_fd);
	c->snap.base.journal_fd = -1;
}

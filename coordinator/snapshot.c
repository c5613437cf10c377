/*
 * snapshot.c — the node's snapshots: raft's FSM snapshot hooks, and the
 * checkpoint files that hold them.
 *
 * raft_uv 0.15 holds every log append while it writes a snapshot file (a
 * barrier, also for snapshots that keep trailing entries), so a snapshot
 * as big as the store paused commits for as long as its write took. Here
 * the snapshot of the store goes to a checkpoint file of our own,
 * <data>/checkpoints/ckpt-INDEX, written and synced on a thread of its own
 * at a low priority while the node keeps committing; raft gets only a
 * 32-byte manifest that names it (storage/store.h), so its barrier covers
 * a tiny write. Two places need the snapshot itself instead:
 *
 * - the leader sending InstallSnapshot to a follower: io->snapshot_get is
 *   wrapped, and the manifest raft_uv loaded is swapped for the checkpoint's
 *   bytes (read on libuv's pool) before raft sees it; the follower gets and
 *   stores the whole compressed snapshot, as before (snapshot_send.c);
 * - a start where LMDB is behind the manifest's index: restore reads the
 *   checkpoint. LMDB runs without fsync and is not synced for a snapshot
 *   either: after a process crash the page cache still holds all of it,
 *   after a power loss it may be behind, and the checkpoint (synced) and
 *   the raft log after it bring it forward.
 *
 * From feature level 5 most snapshots are deltas instead: a checkpoint
 * written earlier (in the background, snapshot_base.c) plus the journal of
 * entries applied since (snapshot_journal.c, wal/journal.h); raft's
 * manifest of a delta names both.
 *
 * A checkpoint and its journal are kept while raft keeps a snapshot that
 * stands on them (raft_uv keeps its last two), or while they are being
 * written; the others, and any left half-written by a crash, are removed
 * at start and after each snapshot.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "clock.h"
#include "coord.h"
#include "error.h"
#include "log.h"
#include "snapshot.h"
#include "snapshot_int.h"
#include "snapshot_pace.h"
#include "wal/fsm.h"
#include "wal/journal.h"

/* raft_uv's snapshot metadata files: snapshot-TERM-INDEX-MS.meta. */
#define RAFT_META_SUFFIX ".meta"
/* The most raft snapshots looked at when deciding what to keep. */
#define KEEP_MAX 16

void ckpt_path(const struct coord *c, uint64_t index, bool tmp, char *out,
	       size_t len)
{
	snprintf(out, len, "%s/checkpoints/" CKPT_PREFIX "%llu%s",
		 c->cfg.data_dir, (unsigned long long)index,
		 tmp ? CKPT_TMP : "");
}

/* ---- Reading one --------------------------------------------------------- */

/* Declared in snapshot_int.h. */
int ckpt_read_into(int fd, uint64_t index, uint64_t len, uint8_t *p,
		   char *errmsg, size_t errlen)
{
	struct stat st;
	uint64_t at = 0, got_index;
	int rv = 0;

	if (fstat(fd, &st) != 0) {
		snprintf(errmsg, errlen, "fstat: %s", strerror(errno));
		rv = SETTLE_EIO;
	} else if ((uint64_t)st.st_size != len) {
		snprintf(errmsg, errlen, "%llu bytes, its manifest says %llu",
			 (unsigned long long)st.st_size,
			 (unsigned long long)len);
		rv = SETTLE_EPROTO;
	}
	while (rv == 0 && at < len) {
		ssize_t n = pread(fd, p + at, (size_t)(len - at), (off_t)at);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(errmsg, errlen, "read: %s",
				 n < 0 ? strerror(errno) : "file got shorter");
			rv = SETTLE_EIO;
		} else
			at += (uint64_t)n;
	}
	close(fd);
	/* The container may say more: a store ahead of raft (replaying the
	 * log after a start) is snapshotted at its own applied index. */
	if (rv == 0 && (store_snapshot_index(p, (size_t)len, &got_index) != 0 ||
			got_index < index)) {
		snprintf(errmsg, errlen, "not the snapshot at %llu",
			 (unsigned long long)index);
		rv = SETTLE_EPROTO;
	}
	return rv;
}

/* Declared in snapshot_int.h. */
int ckpt_read(int fd, uint64_t index, uint64_t len, uint8_t **data,
	      char *errmsg, size_t errlen)
{
	uint8_t *p = NULL;
	int rv;

	if (len > SIZE_MAX ||
	    (p = raft_malloc(len > 0 ? (size_t)len : 1)) == NULL) {
		snprintf(errmsg, errlen, "out of memory for %llu bytes",
			 (unsigned long long)len);
		close(fd);
		return SETTLE_ENOMEM;
	}
	rv = ckpt_read_into(fd, index, len, p, errmsg, errlen);
	if (rv != 0) {
		raft_free(p);
		return rv;
	}
	*data = p;
	return 0;
}

/* ---- Keeping what raft keeps -------------------------------------------- */

/*
 * The base checkpoints raft's snapshots (complete: with their .meta file)
 * stand on: a full manifest's own index, a delta manifest's base. A
 * snapshot held whole in raft's file (sent by a leader) needs none.
 */
static int raft_snapshot_bases(const struct coord *c, uint64_t *base,
			       unsigned *n)
{
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *e;
	DIR *d;

	snprintf(dir, sizeof dir, "%s/raft", c->cfg.data_dir);
	d = opendir(dir);
	if (d == NULL)
		return -1;
	*n = 0;
	while ((e = readdir(d)) != NULL) {
		unsigned long long term, index, ms;
		uint8_t head[JOURNAL_MANIFEST_LEN];
		struct journal_manifest m;
		uint64_t i, len;
		ssize_t got;
		int end = 0, fd;

		if (sscanf(e->d_name, "snapshot-%llu-%llu-%llu%n", &term,
			   &index, &ms, &end) != 3 ||
		    strcmp(e->d_name + end, RAFT_META_SUFFIX) != 0)
			continue;
		if (*n == KEEP_MAX) {
			closedir(d);
			return -1; /* unexpected: keep everything */
		}
		snprintf(path, sizeof path, "%s/%.*s", dir, end, e->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		got = fd < 0 ? -1 : pread(fd, head, sizeof head, 0);
		if (fd >= 0)
			close(fd);
		if (got < 0) {
			closedir(d);
			return -1; /* cannot tell: keep everything */
		}
		if (store_manifest_get(head, (size_t)got, &i, &len) == 0)
			base[(*n)++] = i;
		else if (journal_manifest_get(head, (size_t)got, &m) == 0)
			base[(*n)++] = m.base;
	}
	closedir(d);
	return 0;
}

/*
 * Remove the checkpoints and journals that no snapshot of raft's stands
 * on (but the journal being written, keep_too), and temporary files left
 * by a write that a crash interrupted. at_start: say so at INFO (a crash
 * left them); later it is routine.
 */
static void ckpt_prune(struct coord *c, bool at_start,
		       const uint64_t keep_too[2])
{
	uint64_t keep[KEEP_MAX + 2];
	unsigned n_keep;
	char dir[PATH_MAX], path[PATH_MAX + 256];
	struct dirent *e;
	bool removed = false;
	DIR *d;

	if (raft_snapshot_bases(c, keep, &n_keep) != 0)
		return;
	for (int i = 0; i < 2; i++)
		if (keep_too[i] != 0)
			keep[n_keep++] = keep_too[i];
	snprintf(dir, sizeof dir, "%s/checkpoints", c->cfg.data_dir);
	d = opendir(dir);
	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		unsigned long long index;
		int end = 0;
		bool tmp = false, kept = false;

		if (sscanf(e->d_name, CKPT_PREFIX "%llu%n", &index, &end) == 1)
			tmp = strcmp(e->d_name + end, CKPT_TMP) == 0;
		else if (sscanf(e->d_name, JOURNAL_PREFIX "%llu%n", &index,
				&end) != 1)
			continue;
		if (!tmp && e->d_name[end] != '\0')
			continue; /* not ours */
		for (unsigned i = 0; i < n_keep; i++)
			kept = kept || keep[i] == index;
		/* A temporary file is kept only while it is being written. */
		if (tmp)
			kept = keep_too[1] != 0 && keep_too[1] == index;
		if (kept)
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		if (unlink(path) != 0) {
			settle_log(SETTLE_LOG_WARN, "fsm", "remove %s: %s",
				   path, strerror(errno));
			continue;
		}
		removed = true;
		if (at_start)
			settle_log(SETTLE_LOG_INFO, "fsm", "removed %s: %s",
				   e->d_name,
				   tmp ? "a write the last run did not finish"
				       : "no snapshot of raft's stands on it");
		else
			settle_tracef("fsm", "removed %s", e->d_name);
	}
	closedir(d);
	if (removed)
		(void)ckpt_sync_dir(dir);
}

/* On a mount with online discard an unlink discards the whole file before
 * it returns: ~50 ms for a checkpoint of 50 MB here, too long for the loop.
 * Routine pruning runs on libuv's pool, one at a time. A snapshot_get that
 * raft_uv began just before raft dropped that snapshot may then find its
 * checkpoint gone: it fails, and raft sends the next snapshot instead. */
static void prune_work(uv_work_t *w)
{
	struct coord *c = w->data;

	ckpt_prune(c, false, c->snap.prune_keep);
}

static void prune_done(uv_work_t *w, int status)
{
	struct coord *c = w->data;

	(void)status;
	c->snap.pruning = false;
}

void coord_snapshot_prune(struct coord *c)
{
	if (c->snap.pruning)
		return; /* the one under way sees this snapshot's state */
	/* Read by the worker; not changed until it is done (a snapshot
	 * waits for the prune). */
	c->snap.prune_keep[0] =
	    c->snap.journal.fd >= 0 ? c->snap.journal.base : 0;
	c->snap.prune_keep[1] = c->snap.base.busy ? c->snap.base.index : 0;
	c->snap.prune.data = c;
	if (uv_queue_work(c->loop, &c->snap.prune, prune_work, prune_done) == 0)
		c->snap.pruning = true;
}

/* ---- When ---------------------------------------------------------------- */

/*
 * Every node applies the same entries, so with one threshold all of them
 * snapshot at the same index, at the same moment: three snapshot threads
 * on the same cores, and raft_uv holding each node's appends for its
 * snapshot's barrier (40-70 ms under load) at once, which stalls commits
 * (the slowest transaction of a second with a snapshot in it: 120-140 ms,
 * against 15-40 ms in the others, at 3,000 tx/s on 3 nodes). Node i takes
 * its first snapshot a quarter of the threshold per id later ((i - 1)
 * mod 4); the snapshots after it come a paced number of entries after the
 * last (snapshot.c), so the nodes stay apart, and at any time at most one
 * of three, or two of five, is in its snapshot: a quorum of the others
 * commits.
 */
unsigned coord_snapshot_first_threshold(const struct coord *c)
{
	uint64_t t = c->cfg.snapshot_threshold;

	t += t * ((c->cfg.id - 1) % 4) / 4;
	return t > UINT_MAX ? UINT_MAX : (unsigned)t;
}

/* --snapshot-log staggered like the first threshold, so that the nodes of
 * a busy cluster do not all reach it at the same entry. */
uint64_t coord_snapshot_log_cap(const struct coord *c)
{
	uint64_t t = c->cfg.snapshot_log_bytes;

	return t + t * ((c->cfg.id - 1) % 4) / 4;
}

/* ---- Taking a snapshot (raft_fsm version 3) ------------------------------ */

/* What the snapshot being taken is (c->snap.kind). */
enum {
	SNAP_FULL,  /* the whole store, written in raft's snapshot cycle */
	SNAP_DELTA, /* the journal after the last checkpoint, synced */
	SNAP_BASE,  /* the checkpoint just written at this very index */
};

/* Whether snapshots are deltas: the cluster restores them everywhere
 * (feature level 5), and --snapshot-journal allows them. */
static bool deltas_allowed(struct coord *c)
{
	return c->cfg.snapshot_journal_bytes > 0 &&
	       fsm_level(&c->fsm) >= FSM_LEVEL_JOURNAL;
}

/*
 * A full snapshot copies the whole store, so taking one every N entries
 * would cost more and more as history grows; holding the log for longer
 * costs memory. coord_snapshot_pace() weighs the two. A delta costs about
 * nothing more than the journal already did: the next one may come as
 * soon as --snapshot-threshold and --snapshot-log say.
 */
static void snapshot_pace(struct coord *c)
{
	struct coord_snapshot_pace p;

	if (c->snap.len == 0 || c->snap.log_entries == 0)
		return;
	p = coord_snapshot_pace(&c->cfg,
				c->snap.kind == SNAP_FULL ? c->snap.len : 0,
				c->snap.log_bytes, c->snap.log_entries);
	raft_set_snapshot_threshold(&c->raft, p.threshold);
	raft_set_snapshot_trailing(&c->raft, p.trailing);
	settle_tracef("fsm",
		      "snapshot of %zu bytes; next after %u entries, %u kept",
		      c->snap.len, p.threshold, p.trailing);
	c->snap.log_bytes = 0;
	c->snap.log_entries = 0;
	c->snap.log_full = false;
}

/*
 * Snapshots are taken in three steps so that the loop never serializes the
 * whole store: snapshot() fixes what the snapshot holds at the applied
 * index, snapshot_async() makes it durable on raft's worker thread while
 * the loop keeps applying, snapshot_finalize() frees it all.
 *
 * From feature level 5 a snapshot is a delta: it notes how long the
 * journal after the last checkpoint is and syncs it (wal/journal.h). A
 * new checkpoint is written in the background (snapshot_base.c) when the
 * journal has grown as large as the last, or when there is none to stand
 * on; raft is told to come back later (RAFT_BUSY) only in that last case.
 * Below level 5 a snapshot is full: a consistent LMDB read view written
 * to a checkpoint within the cycle.
 */
static int raft_snapshot_fsm(struct raft_fsm *rf, struct raft_buffer *bufs[],
			     unsigned *n_bufs)
{
	struct coord *c = rf->data;
	int rv;

	if (c->snap.busy || c->snap.pruning)
		return RAFT_BUSY; /* raft tries again later */
	c->snap.t_begin = uv_hrtime();
	/* Every entry up to the applied index in the store and in the
	 * journal's file. */
	coord_commit_applied(c);
	c->snap.index = raft_last_applied(&c->raft);
	/* Read on raft's worker, while the loop may switch the journal to
	 * a new checkpoint (snapshot_base.c) or append to it. */
	c->snap.delta_base = c->snap.journal.base;
	c->snap.delta_base_len = c->snap.journal.base_len;
	c->snap.delta_len = c->snap.journal.len;
	c->snap.delta_fd = -1;
	if (deltas_allowed(c) && c->snap.journal.fd < 0) {
		coord_base_start(c);
		if (c->snap.base.busy)
			return RAFT_BUSY; /* nothing to stand on yet */
		/* None can be written in the background: a full one. */
	}
	if (!deltas_allowed(c) || c->snap.journal.fd < 0) {
		coord_journal_stop(c);
		c->snap.kind = SNAP_FULL;
		/* The view must be a read transaction of its own: it goes
		 * to raft's worker thread. */
		rv = store_read_begin(c->store, &c->snap.txn);
		if (rv != 0) {
			settle_log(SETTLE_LOG_ERROR, "fsm", "snapshot: %s",
				   store_errmsg(c->store));
			return RAFT_IOERR;
		}
	} else {
		if (coord_snapshot_full(&c->cfg, c->snap.journal.base_len,
					c->snap.journal.len))
			coord_base_start(c); /* this one still a delta */
		if (c->snap.index == c->snap.journal.base)
			c->snap.kind = SNAP_BASE;
		else if ((c->snap.delta_fd = dup(c->snap.journal.fd)) >= 0)
			/* The worker syncs its own descriptor: a failing
			 * append may close the journal's meanwhile. */
			c->snap.kind = SNAP_DELTA;
		else {
			settle_log(SETTLE_LOG_ERROR, "fsm", "snapshot: dup: %s",
				   strerror(errno));
			return RAFT_IOERR;
		}
	}
	c->snap.busy = true;
	c->snap.len = 0;
	c->snap.raised = false;
	c->snap.t_work = c->snap.t_done = 0;
	c->snap.t_loop = uv_hrtime() - c->snap.t_begin;
	*bufs = NULL;
	*n_bufs = 0;
	return 0;
}

/* A delta: the journal synced up to its length at the snapshot's index
 * (and beyond: the loop goes on appending). */
static int snapshot_delta(struct coord *c, char *errmsg, size_t errlen)
{
	char path[PATH_MAX];
	int rv = 0;

	if (fdatasync(c->snap.delta_fd) != 0) {
		journal_path(c, c->snap.delta_base, path, sizeof path);
		snprintf(errmsg, errlen, "fdatasync %s: %s", path,
			 strerror(errno));
		rv = SETTLE_EIO;
	}
	close(c->snap.delta_fd);
	c->snap.delta_fd = -1;
	return rv;
}

static int raft_snapshot_async_fsm(struct raft_fsm *rf,
				   struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct coord *c = rf->data;
	struct ckpt_job j = {
	    .c = c, .txn = c->snap.txn, .index = c->snap.index};
	bool delta = c->snap.kind == SNAP_DELTA;
	size_t len = delta ? JOURNAL_MANIFEST_LEN : STORE_MANIFEST_LEN;

	c->snap.t_work = uv_hrtime();
	if (c->snap.kind == SNAP_FULL) {
		ckpt_job_run(&j);
		c->snap.raised = j.raised;
	} else if (delta)
		j.rv = snapshot_delta(c, j.errmsg, sizeof j.errmsg);
	if (j.rv != 0) {
		settle_log(SETTLE_LOG_ERROR, "fsm", "snapshot failed: %s (%s)",
			   settle_strerror(j.rv), j.errmsg);
		return RAFT_IOERR;
	}
	*bufs = raft_malloc(sizeof **bufs);
	if (*bufs == NULL)
		return RAFT_NOMEM;
	(*bufs)[0].base = raft_malloc(len);
	if ((*bufs)[0].base == NULL) {
		raft_free(*bufs);
		*bufs = NULL;
		return RAFT_NOMEM;
	}
	if (delta) {
		struct journal_manifest m = {c->snap.index, c->snap.delta_base,
					     c->snap.delta_base_len,
					     c->snap.delta_len};

		journal_manifest_put((*bufs)[0].base, &m);
		j.len = c->snap.delta_len;
	} else if (c->snap.kind == SNAP_BASE)
		j.len = c->snap.delta_base_len;
	if (!delta)
		store_manifest_put((*bufs)[0].base, c->snap.index, j.len);
	(*bufs)[0].len = len;
	*n_bufs = 1;
	c->snap.len = (size_t)j.len;
	c->snap.t_done = uv_hrtime();
	return 0;
}

static void snapshot_log_taken(struct coord *c)
{
	double work = (double)(c->snap.t_done - c->snap.t_work) / 1e6;

	if (c->snap.kind == SNAP_FULL)
		settle_log(
		    SETTLE_LOG_INFO, "fsm",
		    "snapshot at %llu: %zu bytes; the loop held it "
		    "%.1f ms, a worker wrote the checkpoint in %.0f ms%s, "
		    "raft had its manifest after %.0f ms more",
		    (unsigned long long)c->snap.index, c->snap.len,
		    (double)c->snap.t_loop / 1e6, work,
		    c->snap.raised ? " (its disk I/O raised from idle "
				     "to best-effort after 1 s)"
				   : "",
		    (double)(uv_hrtime() - c->snap.t_done) / 1e6);
	else if (c->snap.kind == SNAP_DELTA)
		settle_log(SETTLE_LOG_INFO, "fsm",
			   "snapshot at %llu: a delta, the journal of %zu "
			   "bytes after checkpoint %llu; the loop held it "
			   "%.1f ms, a worker synced it in %.0f ms",
			   (unsigned long long)c->snap.index, c->snap.len,
			   (unsigned long long)c->snap.delta_base,
			   (double)c->snap.t_loop / 1e6, work);
	else
		settle_log(SETTLE_LOG_INFO, "fsm",
			   "snapshot at %llu: checkpoint %llu itself",
			   (unsigned long long)c->snap.index,
			   (unsigned long long)c->snap.delta_base);
}

static int raft_snapshot_finalize_fsm(struct raft_fsm *rf,
				      struct raft_buffer *bufs[],
				      unsigned *n_bufs)
{
	struct coord *c = rf->data;

	if (*bufs != NULL) {
		for (unsigned i = 0; i < *n_bufs; i++)
			raft_free((*bufs)[i].base);
		raft_free(*bufs);
	}
	*bufs = NULL;
	*n_bufs = 0;
	if (c->snap.txn != NULL)
		store_read_end(c->snap.txn);
	c->snap.txn = NULL;
	if (c->snap.delta_fd >= 0)
		close(c->snap.delta_fd); /* the work never ran */
	c->snap.delta_fd = -1;
	c->snap.busy = false;
	if (c->snap.t_done != 0) {
		snapshot_log_taken(c);
		coord_metrics_snapshot(&c->metrics, c->snap.index, c->snap.len,
				       (c->snap.t_done - c->snap.t_begin) /
					   1000);
	}
	if (c->snap.len > 0) {
		/* Checksums of applied entries guard replays of the log; the
		 * log before the previous snapshot is gone for good. */
		coord_commit_applied(c);
		if (c->snap.prev_index > 0 &&
		    fsm_prune_applied_log(&c->fsm, c->snap.prev_index) != 0)
			settle_log(SETTLE_LOG_WARN, "fsm",
				   "pruning applied_log: %s", c->fsm.errmsg);
		c->snap.prev_index = c->snap.index;
	}
	/* raft has its manifest now, or failed to store it. */
	coord_snapshot_prune(c);
	snapshot_pace(c);
	return 0;
}

/* ---- Restore ------------------------------------------------------------- */

/*
 * Apply the journal p/len after base index base, up to the snapshot's
 * index, over a store just restored to the base: the entries the node
 * that took the snapshot applied, in order. The store ends at index (the
 * entries after the last record carried no command). Errors in why.
 */
static int journal_replay(struct coord *c, const uint8_t *p, size_t len,
			  uint64_t base, uint64_t index, char *why,
			  size_t whylen)
{
	struct journal_reader r;
	const uint8_t *e;
	uint64_t i, n = 0;
	size_t elen;
	MDB_txn *txn;
	int rv;

	rv = journal_read_begin(&r, p, len, base, why, whylen);
	while (rv == 0 && (rv = journal_read_next(&r, index, &i, &e, &elen, why,
						  whylen)) == 0) {
		c->fsm.last_wall_ms = 0;
		rv = fsm_apply(&c->fsm, i, e, elen, NULL);
		if (rv != 0) {
			snprintf(why, whylen, "apply of entry %llu: %s",
				 (unsigned long long)i, c->fsm.errmsg);
			return rv;
		}
		coord_clock_applied(c, c->fsm.last_wall_ms);
		/* A write transaction of bounded size. */
		if (++n % 1024 == 0)
			coord_commit_applied(c);
	}
	if (rv != 1)
		return rv;
	rv = store_batch_txn(c->store, &txn);
	if (rv == 0)
		rv = store_applied_put(c->store, txn, index);
	if (rv != 0) {
		snprintf(why, whylen, "%s", store_errmsg(c->store));
		store_batch_abort(c->store);
		return rv;
	}
	coord_commit_applied(c);
	return 0;
}

/* Restore base checkpoint ckpt-BASE (len bytes) into the store. */
static int restore_base(struct coord *c, uint64_t base, uint64_t len, char *why,
			size_t whylen)
{
	char path[PATH_MAX];
	uint8_t *data = NULL;
	int fd, rv;

	ckpt_path(c, base, false, path, sizeof path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return SETTLE_EIO;
	}
	rv = ckpt_read(fd, base, len, &data, why, whylen);
	if (rv == 0) {
		rv = store_restore(c->store, data, (size_t)len);
		if (rv != 0)
			snprintf(why, whylen, "%s", store_errmsg(c->store));
		raft_free(data);
	}
	fsm_forget_level(&c->fsm);
	return rv;
}

/* The base and, for a delta, the journal after it (read whole). */
static int restore_files(struct coord *c, uint64_t index, uint64_t base,
			 uint64_t base_len, uint64_t journal_len, char *why,
			 size_t whylen)
{
	char path[PATH_MAX];
	uint8_t *j = NULL;
	int fd, rv = restore_base(c, base, base_len, why, whylen);

	if (rv != 0 || journal_len == 0)
		return rv;
	if (journal_len > SIZE_MAX ||
	    (j = malloc((size_t)journal_len)) == NULL) {
		snprintf(why, whylen,
			 "out of memory for a journal of %llu "
			 "bytes",
			 (unsigned long long)journal_len);
		return SETTLE_ENOMEM;
	}
	journal_path(c, base, path, sizeof path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		rv = SETTLE_EIO;
	} else
		rv = coord_journal_read(fd, journal_len, j, why, whylen);
	if (rv == 0)
		rv = journal_replay(c, j, (size_t)journal_len, base, index, why,
				    whylen);
	free(j);
	return rv;
}

/*
 * A manifest, full (journal_len 0: base is index) or delta: raft 0.15
 * restores its last snapshot at every start. After a clean stop or a
 * process crash the store is at or past it (the log after it replays over
 * the store; entries already in it are skipped). Only a store that is
 * behind (a power loss, a store lost or replaced) needs the files. Then
 * the journal goes on after what the snapshot covers.
 */
static int restore_manifest(struct coord *c, uint64_t index, uint64_t base,
			    uint64_t base_len, uint64_t journal_len)
{
	char path[PATH_MAX], why[300];
	uint64_t applied = 0;
	int rv;

	coord_commit_applied(c);
	rv = store_applied_get(c->store, NULL, &applied);
	if (rv != 0) {
		settle_log(SETTLE_LOG_ERROR, "fsm", "restore: %s",
			   store_errmsg(c->store));
		return RAFT_IOERR;
	}
	ckpt_path(c, base, false, path, sizeof path);
	if (applied >= index) {
		if (access(path, R_OK) != 0)
			settle_log(SETTLE_LOG_WARN, "fsm",
				   "snapshot at %llu: %s: %s; this node "
				   "cannot send it to a follower until it "
				   "takes its next snapshot",
				   (unsigned long long)index, path,
				   strerror(errno));
		settle_log(SETTLE_LOG_INFO, "fsm",
			   "snapshot at %llu: the store is at %llu already",
			   (unsigned long long)index,
			   (unsigned long long)applied);
	} else {
		rv = restore_files(c, index, base, base_len, journal_len, why,
				   sizeof why);
		if (rv != 0) {
			settle_log(SETTLE_LOG_ERROR, "fsm",
				   "the store is at %llu, behind raft's "
				   "snapshot at %llu, and its checkpoint %s%s "
				   "cannot restore it: %s",
				   (unsigned long long)applied,
				   (unsigned long long)index, path,
				   journal_len > 0 ? " with its journal" : "",
				   why);
			return RAFT_CORRUPT;
		}
		settle_log(SETTLE_LOG_INFO, "fsm",
			   "restored snapshot at %llu from checkpoint %s%s",
			   (unsigned long long)index, path,
			   journal_len > 0 ? " and its journal" : "");
	}
	if (deltas_allowed(c))
		(void)coord_journal_start(c, base, base_len,
					  journal_len > 0 ? journal_len
							  : JOURNAL_HEADER_LEN);
	return 0;
}

/* A delta snapshot sent whole by a leader (or kept so by raft since). */
static int restore_sent_delta(struct coord *c, const uint8_t *buf, size_t len)
{
	const uint8_t *base, *journal;
	size_t base_len, journal_len;
	uint64_t index, base_index = 0, applied = 0;
	char why[300] = "";
	int rv;

	if (journal_snapshot_get(buf, len, &index, &base, &base_len, &journal,
				 &journal_len) != 0)
		return 1; /* not one */
	coord_commit_applied(c);
	rv = store_applied_get(c->store, NULL, &applied);
	if (rv == 0 && applied >= index) {
		settle_log(SETTLE_LOG_INFO, "fsm",
			   "snapshot at %llu: the store is at %llu already",
			   (unsigned long long)index,
			   (unsigned long long)applied);
		return 0;
	}
	if (rv == 0 && store_snapshot_index(base, base_len, &base_index) != 0)
		rv = SETTLE_EPROTO;
	if (rv == 0 && (rv = store_restore(c->store, base, base_len)) != 0)
		snprintf(why, sizeof why, "%s", store_errmsg(c->store));
	fsm_forget_level(&c->fsm);
	if (rv == 0)
		rv = journal_replay(c, journal, journal_len, base_index, index,
				    why, sizeof why);
	if (rv != 0) {
		settle_log(SETTLE_LOG_ERROR, "fsm",
			   "restore of snapshot at %llu (a base at %llu and "
			   "its journal) failed: %s (%s)",
			   (unsigned long long)index,
			   (unsigned long long)base_index, settle_strerror(rv),
			   why);
		return RAFT_CORRUPT;
	}
	settle_log(SETTLE_LOG_INFO, "fsm",
		   "restored snapshot at %llu: a base at %llu and %zu bytes "
		   "of journal",
		   (unsigned long long)index, (unsigned long long)base_index,
		   journal_len);
	return 0;
}

/* A full snapshot held whole: sent by a leader, or an older release's. */
static int restore_whole(struct coord *c, const struct raft_buffer *buf)
{
	uint64_t index = 0;
	int rv;

	store_snapshot_index(buf->base, buf->len, &index);
	coord_commit_applied(c);
	rv = store_restore(c->store, buf->base, buf->len);
	fsm_forget_level(&c->fsm);
	if (rv != 0) {
		settle_log(SETTLE_LOG_ERROR, "fsm",
			   "restore of snapshot at %llu failed: %s (%s)",
			   (unsigned long long)index, settle_strerror(rv),
			   store_errmsg(c->store));
		return RAFT_CORRUPT;
	}
	settle_log(SETTLE_LOG_INFO, "fsm", "restored snapshot at %llu",
		   (unsigned long long)index);
	return 0;
}

static int raft_restore_fsm(struct raft_fsm *rf, struct raft_buffer *buf)
{
	struct coord *c = rf->data;
	struct journal_manifest m;
	uint64_t index = 0, len;
	int rv;

	if (store_manifest_get(buf->base, buf->len, &index, &len) == 0)
		rv = restore_manifest(c, index, index, len, 0);
	else if (journal_manifest_get(buf->base, buf->len, &m) == 0)
		rv = restore_manifest(c, m.index, m.base, m.base_len,
				      m.journal_len);
	else {
		/* Sent by a leader (or an older release's file): this
		 * node has no base of its own for it, and what its journal
		 * holds is not what the store now holds; nor what a
		 * checkpoint being written would hold. */
		coord_journal_stop(c);
		coord_base_drop(c);
		rv = restore_sent_delta(c, buf->base, buf->len);
		if (rv == 1)
			rv = restore_whole(c, buf);
	}
	if (rv == 0)
		raft_free(buf->base); /* on success it is ours to release */
	return rv;
}

/* ---- Setup --------------------------------------------------------------- */

int coord_snapshot_init(struct coord *c)
{
	char dir[PATH_MAX];

	snprintf(dir, sizeof dir, "%s/checkpoints", c->cfg.data_dir);
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		snprintf(c->errmsg, sizeof c->errmsg, "mkdir %s: %s", dir,
			 strerror(errno));
		return SETTLE_EIO;
	}
	c->snap.journal.fd = -1;
	c->snap.delta_fd = -1;
	c->snap.base.journal_fd = -1;
	ckpt_prune(c, true, (uint64_t[2]){0, 0});
	c->raft_fsm.version = 3;
	c->raft_fsm.snapshot = raft_snapshot_fsm;
	c->raft_fsm.restore = raft_restore_fsm;
	c->raft_fsm.snapshot_finalize = raft_snapshot_finalize_fsm;
	c->raft_fsm.snapshot_async = raft_snapshot_async_fsm;
	snapshot_send_init(c);
	return 0;
}

bool coord_snapshot_idle(const struct coord *c)
{
	return !c->snap.busy && c->snap.gets == 0 && !c->snap.pruning &&
	       !c->snap.base.busy;
}

void coord_snapshot_close(struct coord *c)
{
	/* What the next start would remove, removed now: the checkpoints
	 * and journals no snapshot of raft's stands on. A routine prune
	 * keeps the journal being written, which may be a checkpoint's
	 * written in the background that no snapshot took yet, and lists
	 * raft's snapshots when it runs (raft may drop one just after).
	 * With raft closed the list is final, and the journal is needed
	 * no more: a restart restores raft's last snapshot and replays the
	 * log after it. Not while a prune still runs on the pool (a drain
	 * that timed out): the next start cleans up then. */
	if (c->snap.pruning)
		return;
	ckpt_prune(c, false, (uint64_t[2]){0, 0});
}

void coord_snapshot_stop(struct coord *c)
{
	/* Stops within a megabyte of writing (the store is about to
	 * close); the files are removed at the next start. */
	coord_base_drop(c);
}

/*
 * snapshot_send.c — a leader sending a snapshot to a follower.
 *
 * raft holds a 32-byte manifest in place of each snapshot (snapshot.c).
 * When the leader sends InstallSnapshot, raft_uv loads that manifest;
 * io->snapshot_get is wrapped here so that raft gets the checkpoint's
 * bytes instead, opened on the loop thread (where checkpoints are
 * removed) and read on libuv's pool. The follower receives and stores the
 * whole compressed snapshot. io->close is wrapped too: raft_uv does not
 * know about those reads, and must not close under them.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "coord.h"
#include "error.h"
#include "log.h"
#include "snapshot.h"
#include "snapshot_int.h"
#include "wal/journal.h"

/*
 * How long a leader waits for a follower to take a snapshot before it
 * sends it again (raft's default is 30 s). A follower in the middle of its
 * own snapshot ignores an InstallSnapshot (raft 0.15), and a lagging
 * follower under load often is; then it waits out this whole time. So it
 * is short for a small snapshot, and grows with the snapshot's size to
 * cover reading, sending, writing and restoring it: a resend that comes
 * while the follower still installs the first is ignored, only wasted.
 */
unsigned coord_install_timeout_ms(uint64_t len)
{
	uint64_t ms = 5000 + len / (4u << 20) * 1000;

	return ms > 120000 ? 120000 : (unsigned)ms;
}

/* A snapshot_get of raft's, passed on to raft_uv's. */
struct snap_get {
	struct raft_io_snapshot_get inner;  /* ours, to raft_uv */
	struct raft_io_snapshot_get *outer; /* raft's */
	raft_io_snapshot_get_cb cb;	    /* raft's */
	struct coord *c;
	struct raft_snapshot *snapshot;
	uv_work_t work;
	int fd;
	uint64_t index, len;
	/* A delta: its base's index and the journal's file and length. */
	uint64_t base;
	int journal_fd;
	uint64_t journal_len;
	uint8_t *data;
	uint64_t t_begin;
	int rv;
	char errmsg[300];
};

static struct coord *coord_of_io(struct raft_io *io)
{
	return (struct coord *)((char *)io - offsetof(struct coord, io));
}

static void snapshot_release(struct raft_snapshot *s)
{
	raft_configuration_close(&s->configuration);
	for (unsigned i = 0; i < s->n_bufs; i++)
		raft_free(s->bufs[i].base);
	raft_free(s->bufs);
	raft_free(s);
}

/*
 * raft_uv 0.15 may fire its close callback twice: a log segment's writer
 * that finishes closing after the callback fired calls it again
 * (upstream raft#341; a second raft_closed() on freed memory, seen as a
 * SEGV at stop under ASan). raft's callback goes through this one, which
 * passes it on once.
 */
static void io_closed_once(struct raft_io *io)
{
	struct coord *c = coord_of_io(io);
	raft_io_close_cb cb = c->snap.raft_close_cb;

	if (cb == NULL) {
		settle_log(SETTLE_LOG_INFO, "raft",
			   "raft_uv closed twice (upstream raft#341): the "
			   "second time ignored");
		return;
	}
	c->snap.raft_close_cb = NULL;
	cb(io);
}

static void io_close_now(struct coord *c, raft_io_close_cb cb)
{
	c->snap.raft_close_cb = cb;
	c->snap.io_close(&c->io, io_closed_once);
}

static void get_done(struct snap_get *g, struct raft_snapshot *s, int status)
{
	struct coord *c = g->c;

	g->cb(g->outer, s, status);
	raft_free(g);
	if (--c->snap.gets == 0 && c->snap.close_cb != NULL) {
		raft_io_close_cb cb = c->snap.close_cb;

		c->snap.close_cb = NULL;
		io_close_now(c, cb);
	}
}

/* A delta goes as one buffer: its header, the base, the journal
 * (wal/journal.h). */
static void get_read_delta(struct snap_get *g)
{
	uint64_t total = JOURNAL_SNAPSHOT_HEADER_LEN + g->len + g->journal_len;
	uint8_t *p = total <= SIZE_MAX ? raft_malloc((size_t)total) : NULL;
	int fd = g->journal_fd;

	g->journal_fd = -1;
	if (p == NULL) {
		snprintf(g->errmsg, sizeof g->errmsg,
			 "out of memory for %llu bytes",
			 (unsigned long long)total);
		close(g->fd);
		close(fd);
		g->rv = SETTLE_ENOMEM;
		return;
	}
	journal_snapshot_header_put(p, g->index, g->len, g->journal_len);
	g->rv = ckpt_read_into(g->fd, g->base, g->len,
			       p + JOURNAL_SNAPSHOT_HEADER_LEN, g->errmsg,
			       sizeof g->errmsg);
	if (g->rv == 0)
		g->rv =
		    coord_journal_read(fd, g->journal_len,
				       p + JOURNAL_SNAPSHOT_HEADER_LEN + g->len,
				       g->errmsg, sizeof g->errmsg);
	else
		close(fd);
	if (g->rv != 0) {
		raft_free(p);
		return;
	}
	g->data = p;
	g->len = total;
}

static void get_read(uv_work_t *w)
{
	struct snap_get *g = w->data;

	if (g->journal_fd >= 0)
		get_read_delta(g);
	else
		g->rv = ckpt_read(g->fd, g->index, g->len, &g->data, g->errmsg,
				  sizeof g->errmsg);
}

static void get_read_done(uv_work_t *w, int status)
{
	struct snap_get *g = w->data;
	struct raft_snapshot *s = g->snapshot;

	(void)status; /* never cancelled: uv_cancel is not used */
	if (g->rv != 0) {
		settle_log(SETTLE_LOG_ERROR, "fsm",
			   "snapshot at %llu for a follower: checkpoint: %s",
			   (unsigned long long)g->index, g->errmsg);
		snapshot_release(s);
		get_done(g, NULL, RAFT_IOERR);
		return;
	}
	raft_free(s->bufs[0].base);
	s->bufs[0].base = g->data;
	s->bufs[0].len = (size_t)g->len;
	raft_set_install_snapshot_timeout(&g->c->raft,
					  coord_install_timeout_ms(g->len));
	settle_log(SETTLE_LOG_INFO, "fsm",
		   "snapshot at %llu for a follower: %llu bytes read from "
		   "its checkpoint%s in %.0f ms",
		   (unsigned long long)g->index, (unsigned long long)g->len,
		   g->base != 0 ? " and journal" : "",
		   (double)(uv_hrtime() - g->t_begin) / 1e6);
	get_done(g, s, 0);
}

/*
 * The files of the snapshot raft loaded are gone (a disk error, an
 * operator's mistake). No snapshot can be sent until the next is taken:
 * let it come after --snapshot-threshold entries, not after the paced
 * number (up to a million), and be a full one (a delta would stand on
 * the same base).
 */
static void missing(struct coord *c, struct snap_get *g,
		    struct raft_snapshot *s, const char *path, int err)
{
	settle_log(SETTLE_LOG_ERROR, "fsm",
		   "snapshot at %llu for a follower: %s: %s; the next "
		   "snapshot, a full one, comes within %u entries",
		   (unsigned long long)g->index, path, strerror(err),
		   c->cfg.snapshot_threshold);
	raft_set_snapshot_threshold(&c->raft, c->cfg.snapshot_threshold);
	coord_journal_stop(c);
	snapshot_release(s);
	get_done(g, NULL, RAFT_IOERR);
}

static void get_loaded(struct raft_io_snapshot_get *inner,
		       struct raft_snapshot *s, int status)
{
	struct snap_get *g = (struct snap_get *)inner;
	struct coord *c = g->c;
	struct journal_manifest m;
	char path[PATH_MAX];

	if (status == 0 && s->n_bufs == 1 &&
	    journal_manifest_get(s->bufs[0].base, s->bufs[0].len, &m) == 0) {
		g->index = m.index;
		g->base = m.base;
		g->len = m.base_len;
		g->journal_len = m.journal_len;
		journal_path(c, m.base, path, sizeof path);
		g->journal_fd = open(path, O_RDONLY | O_CLOEXEC);
		if (g->journal_fd < 0) {
			missing(c, g, s, path, errno);
			return;
		}
	} else if (status != 0 || s->n_bufs != 1 ||
		   store_manifest_get(s->bufs[0].base, s->bufs[0].len,
				      &g->index, &g->len) != 0) {
		if (status == 0 && s->n_bufs == 1) /* a whole snapshot */
			raft_set_install_snapshot_timeout(
			    &c->raft, coord_install_timeout_ms(s->bufs[0].len));
		get_done(g, s, status); /* or a failure */
		return;
	}
	/* Opened here on the loop thread, where checkpoints are removed:
	 * once open, the file stays readable whatever happens to it. */
	ckpt_path(c, g->journal_fd >= 0 ? g->base : g->index, false, path,
		  sizeof path);
	g->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (g->fd < 0) {
		int err = errno;

		if (g->journal_fd >= 0)
			close(g->journal_fd);
		missing(c, g, s, path, err);
		return;
	}
	g->snapshot = s;
	g->work.data = g;
	if (uv_queue_work(c->loop, &g->work, get_read, get_read_done) != 0) {
		close(g->fd);
		if (g->journal_fd >= 0)
			close(g->journal_fd);
		snapshot_release(s);
		get_done(g, NULL, RAFT_IOERR);
	}
}

static int snapio_get(struct raft_io *io, struct raft_io_snapshot_get *req,
		      raft_io_snapshot_get_cb cb)
{
	struct coord *c = coord_of_io(io);
	struct snap_get *g = raft_calloc(1, sizeof *g);
	int rv;

	if (g == NULL)
		return RAFT_NOMEM;
	g->outer = req;
	g->cb = cb;
	g->c = c;
	g->fd = -1;
	g->journal_fd = -1;
	g->t_begin = uv_hrtime();
	c->snap.gets++;
	rv = c->snap.io_get(io, &g->inner, get_loaded);
	if (rv != 0) {
		c->snap.gets--;
		raft_free(g);
	}
	return rv;
}

/* raft_uv waits for its own requests at close, not for our reads of a
 * checkpoint: close it once they are done too. */
static void snapio_close(struct raft_io *io, raft_io_close_cb cb)
{
	struct coord *c = coord_of_io(io);

	if (c->snap.gets > 0) {
		c->snap.close_cb = cb;
		return;
	}
	io_close_now(c, cb);
}

void snapshot_send_init(struct coord *c)
{
	c->snap.io_get = c->io.snapshot_get;
	c->io.snapshot_get = snapio_get;
	c->snap.io_close = c->io.close;
	c->io.close = snapio_close;
}

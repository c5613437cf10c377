/*
 * snapshot_journal.c — the journal file behind delta snapshots
 * (wal/journal.h has the format and why): DATA/checkpoints/journal-BASE,
 * the entries applied after the checkpoint ckpt-BASE.
 *
 * Written on the loop thread as entries are applied: one writev each, into
 * the page cache. A delta snapshot fdatasync()s it on raft's worker.
 * While a new checkpoint is written in the background (snapshot_base.c),
 * the journal after it is written alongside, and replaces the current one
 * once the checkpoint is durable. A journal that cannot be written is
 * dropped, and snapshots wait for a new checkpoint: nothing durable
 * depends on a journal before a snapshot's manifest names it, and until
 * then the raft log holds every entry.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "coord.h"
#include "error.h"
#include "log.h"
#include "snapshot.h"
#include "snapshot_int.h"
#include "wal/journal.h"

void journal_path(const struct coord *c, uint64_t base, char *out, size_t len)
{
	snprintf(out, len, "%s/checkpoints/" JOURNAL_PREFIX "%llu",
		 c->cfg.data_dir, (unsigned long long)base);
}

void coord_journal_stop(struct coord *c)
{
	if (c->snap.journal.fd >= 0)
		close(c->snap.journal.fd);
	c->snap.journal.fd = -1;
}

static void journal_fail(struct coord *c, const char *what, int err)
{
	char path[PATH_MAX];

	journal_path(c, c->snap.journal.base, path, sizeof path);
	settle_log(SETTLE_LOG_WARN, "fsm",
		   "%s %s: %s; snapshots wait for a new checkpoint", what, path,
		   strerror(err));
	coord_journal_stop(c);
}

/* Write all of iov (a short write goes on where it stopped). */
static int write_all(int fd, struct iovec *iov, int n)
{
	while (n > 0) {
		ssize_t w = writev(fd, iov, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return errno;
		while (n > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			n--;
		}
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* Create journal-BASE afresh, its header written: the fd, or -1 (logged). */
static int journal_create(struct coord *c, uint64_t base)
{
	char path[PATH_MAX];
	uint8_t head[JOURNAL_HEADER_LEN];
	struct iovec iov = {head, sizeof head};
	int fd, err;

	journal_path(c, base, path, sizeof path);
	journal_header_put(head, base);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || (err = write_all(fd, &iov, 1)) != 0) {
		err = fd < 0 ? errno : err;
		if (fd >= 0)
			close(fd);
		settle_log(SETTLE_LOG_WARN, "fsm", "create %s: %s", path,
			   strerror(err));
		return -1;
	}
	return fd;
}

int coord_journal_start(struct coord *c, uint64_t base, uint64_t base_len,
			uint64_t keep)
{
	char path[PATH_MAX];
	uint8_t head[JOURNAL_HEADER_LEN], had[JOURNAL_HEADER_LEN];
	struct stat st;
	int fd, err;

	coord_journal_stop(c);
	c->snap.journal.base = base;
	journal_path(c, base, path, sizeof path);
	journal_header_put(head, base);
	/* Go on after what the last snapshot covers: what came after it is
	 * in the raft log, which replays it through here. */
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT) {
		/* A snapshot of an older release, or taken below level 5. */
		settle_log(SETTLE_LOG_INFO, "fsm",
			   "no journal after checkpoint %llu: snapshots wait "
			   "for a new checkpoint",
			   (unsigned long long)base);
		return SETTLE_EIO;
	}
	if (fd < 0) {
		journal_fail(c, "open", errno);
		return SETTLE_EIO;
	}
	errno = 0; /* a short read sets none */
	if (fstat(fd, &st) != 0 ||
	    pread(fd, had, sizeof had, 0) != (ssize_t)sizeof had) {
		err = errno != 0 ? errno : EILSEQ;
		close(fd);
		journal_fail(c, "read", err);
		return SETTLE_EIO;
	}
	if ((uint64_t)st.st_size < keep ||
	    memcmp(had, head, sizeof head) != 0) {
		/* Shorter than the snapshot says, or another checkpoint's. */
		close(fd);
		journal_fail(c, "check", EILSEQ);
		return SETTLE_EIO;
	}
	if (ftruncate(fd, (off_t)keep) != 0 ||
	    lseek(fd, (off_t)keep, SEEK_SET) < 0) {
		err = errno;
		close(fd);
		journal_fail(c, "truncate", err);
		return SETTLE_EIO;
	}
	c->snap.journal.fd = fd;
	c->snap.journal.len = keep;
	c->snap.journal.kicked = keep;
	c->snap.journal.base_len = base_len;
	return 0;
}

int coord_journal_next(struct coord *c, uint64_t base)
{
	int fd = journal_create(c, base);

	if (fd < 0)
		return SETTLE_EIO;
	c->snap.base.journal_fd = fd;
	c->snap.base.journal_len = JOURNAL_HEADER_LEN;
	return 0;
}

void coord_journal_switch(struct coord *c)
{
	coord_journal_stop(c);
	c->snap.journal.fd = c->snap.base.journal_fd;
	c->snap.journal.base = c->snap.base.index;
	c->snap.journal.len = c->snap.base.journal_len;
	c->snap.journal.kicked = 0;
	c->snap.journal.base_len = c->snap.base.job.len;
	c->snap.base.journal_fd = -1;
}

/* One record onto fd: 0 or an errno. */
static int append(int fd, uint64_t index, const void *buf, size_t len)
{
	static const uint8_t zeros[8];
	uint8_t head[JOURNAL_RECORD_HEADER_LEN];
	size_t pad = journal_record_pad(len);
	struct iovec iov[3] = {
	    {head, sizeof head}, {(void *)buf, len}, {(void *)zeros, pad}};

	journal_record_header_put(head, index, buf, len);
	return write_all(fd, iov, pad > 0 ? 3 : 2);
}

/*
 * A delta's fdatasync of all the journal written since the last one, up
 * to --snapshot-log bytes, went to the disk in one burst in front of the
 * raft log's own fsyncs: 60-90 ms stalls of every commit at each delta,
 * with 5,000 transactions a second offered to 3 nodes. So writeback of
 * each JOURNAL_KICK bytes appended is started at once, on libuv's pool
 * (sync_file_range can wait for the disk's queue): the journal reaches
 * the disk as steadily as it is written, and a delta syncs only the tail.
 */
#define JOURNAL_KICK ((uint64_t)1 << 20)

struct kick {
	uv_work_t work;
	int fd;
	uint64_t from, len;
};

static void kick_work(uv_work_t *w)
{
	struct kick *k = w->data;

	(void)sync_file_range(k->fd, (off64_t)k->from, (off64_t)k->len,
			      SYNC_FILE_RANGE_WRITE);
}

static void kick_done(uv_work_t *w, int status)
{
	struct kick *k = w->data;

	(void)status;
	close(k->fd);
	free(k);
}

static void journal_kick(struct coord *c)
{
	struct kick *k;

	if (c->snap.journal.len - c->snap.journal.kicked < JOURNAL_KICK)
		return;
	k = malloc(sizeof *k);
	if (k == NULL)
		return;
	k->fd = dup(c->snap.journal.fd); /* the journal's may be closed */
	k->from = c->snap.journal.kicked;
	k->len = c->snap.journal.len - c->snap.journal.kicked;
	k->work.data = k;
	if (k->fd < 0 ||
	    uv_queue_work(c->loop, &k->work, kick_work, kick_done) != 0) {
		if (k->fd >= 0)
			close(k->fd);
		free(k);
		return;
	}
	c->snap.journal.kicked = c->snap.journal.len;
}

void coord_journal_append(struct coord *c, uint64_t index, const void *buf,
			  size_t len)
{
	uint64_t rec =
	    JOURNAL_RECORD_HEADER_LEN + len + journal_record_pad(len);
	int err;

	if (c->snap.journal.fd >= 0 && index > c->snap.journal.base) {
		err = append(c->snap.journal.fd, index, buf, len);
		if (err != 0)
			journal_fail(c, "append to", err);
		else {
			c->snap.journal.len += rec;
			journal_kick(c);
		}
	}
	/* The journal after the checkpoint being written gets it too. */
	if (c->snap.base.journal_fd >= 0 && index > c->snap.base.index) {
		err = append(c->snap.base.journal_fd, index, buf, len);
		if (err != 0) {
			settle_log(SETTLE_LOG_WARN, "fsm",
				   "append to the journal after checkpoint "
				   "%llu: %s; that checkpoint is given up",
				   (unsigned long long)c->snap.base.index,
				   strerror(err));
			coord_base_drop(c);
		} else
			c->snap.base.journal_len += rec;
	}
}

int coord_journal_read(int fd, uint64_t len, uint8_t *out, char *errmsg,
		       size_t errlen)
{
	uint64_t at = 0;

	while (at < len) {
		ssize_t n = pread(fd, out + at, (size_t)(len - at), (off_t)at);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(errmsg, errlen, "journal: %s",
				 n < 0 ? strerror(errno)
				       : "shorter than its manifest says");
			close(fd);
			return SETTLE_EIO;
		}
		at += (uint64_t)n;
	}
	close(fd);
	return 0;
}

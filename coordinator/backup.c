/*
 * backup.c — BACKUP (settlectl backup): an online, consistent copy of this
 * node's store. The first call commits the apply batch, fixes a read view
 * of the store at the applied index, and has a worker write it as a
 * checkpoint (the snapshot container: every table, checksummed,
 * compressed; snapshot_base.c) to DATA/backups while the node goes on
 * serving; it is answered once the file is synced, with its first bytes.
 * Later calls read the file on in chunks. One backup at a time; a backup
 * nobody read for BACKUP_KEEP_MS is deleted (coord_backup_tick).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "apply.h"
#include "coord.h"
#include "dispatch.h"
#include "dispatch_int.h"
#include "error.h"
#include "log.h"
#include "snapshot_int.h"
#include "waiters.h"

#define BACKUP_CHUNK   (1024 * 1024)
#define BACKUP_KEEP_MS 60000

static void backup_forget(struct coord *c)
{
	if (c->backup.ready)
		unlink(c->backup.path);
	c->backup.ready = false;
}

/* Answer call with the bytes of the backup from offset. */
static void answer(struct coord *c, struct rpc_call *call, uint64_t offset)
{
	Settle__V1__BackupResponse resp = SETTLE__V1__BACKUP_RESPONSE__INIT;
	static uint8_t buf[BACKUP_CHUNK];
	size_t want;
	ssize_t n = 0;
	int fd;

	if (offset > c->backup.len) {
		coord_fail(c, call, SETTLE_EINVAL,
			   "offset past the end of the backup");
		return;
	}
	want = c->backup.len - offset < BACKUP_CHUNK
		   ? (size_t)(c->backup.len - offset)
		   : BACKUP_CHUNK;
	fd = open(c->backup.path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = pread(fd, buf, want, (off_t)offset);
		close(fd);
	}
	if (fd < 0 || n != (ssize_t)want) {
		char why[300];

		snprintf(why, sizeof why, "reading the backup: %s",
			 fd < 0 || n < 0 ? strerror(errno) : "short read");
		coord_fail(c, call, SETTLE_EIO, why);
		return;
	}
	c->backup.read_ms = settle_mono_ms();
	resp.index = c->backup.index;
	resp.term = c->backup.term;
	resp.total = c->backup.len;
	resp.offset = offset;
	resp.data.data = buf;
	resp.data.len = want;
	resp.node_id = c->cfg.id;
	resp.feature_level = fsm_level(&c->fsm);
	resp.time_ms = c->backup.time_ms;
	rpc_call_reply(call, &resp.base);
}

static void backup_work(uv_work_t *w)
{
	struct coord *c = w->data;

	ckpt_job_run(&c->backup.job);
}

static void backup_done(uv_work_t *w, int status)
{
	struct coord *c = w->data;
	struct ckpt_job *j = &c->backup.job;
	struct rpc_call *call = c->backup.call;

	(void)status;
	store_read_end(c->backup.txn);
	c->backup.txn = NULL;
	c->backup.busy = false;
	c->backup.call = NULL;
	if (j->rv != 0) {
		settle_log(SETTLE_LOG_ERROR, "backup",
			   "backup at %llu failed: %s (%s)",
			   (unsigned long long)c->backup.index,
			   settle_strerror(j->rv), j->errmsg);
		coord_fail(c, call, j->rv, j->errmsg);
		return;
	}
	c->backup.ready = true;
	c->backup.len = j->len;
	settle_log(SETTLE_LOG_INFO, "backup",
		   "backup at %llu: %llu bytes in %s, read it within %d s",
		   (unsigned long long)c->backup.index,
		   (unsigned long long)j->len, c->backup.path,
		   BACKUP_KEEP_MS / 1000);
	if (c->closing) {
		coord_fail(c, call, SETTLE_EUNAVAIL, "the node is stopping");
		return;
	}
	answer(c, call, 0);
}

/* A new backup at the applied index; call is answered when it is
 * written. */
static void backup_start(struct coord *c, struct rpc_call *call)
{
	struct ckpt_job *j = &c->backup.job;
	uint64_t index;
	int rv;

	if (c->backup.busy) {
		coord_fail(c, call, SETTLE_EUNAVAIL,
			   "a backup is being written: ask again when it is "
			   "done");
		return;
	}
	backup_forget(c);
	coord_commit_applied(c);
	index = raft_last_applied(&c->raft);
	snprintf(c->backup.dir, sizeof c->backup.dir, "%s/backups",
		 c->cfg.data_dir);
	if (index == 0 ||
	    (mkdir(c->backup.dir, 0700) != 0 && errno != EEXIST)) {
		coord_fail(c, call, index == 0 ? SETTLE_EUNAVAIL : SETTLE_EIO,
			   index == 0 ? "nothing applied yet"
				      : "cannot make DATA/backups");
		return;
	}
	rv = store_read_begin(c->store, &c->backup.txn);
	if (rv != 0) {
		coord_fail(c, call, rv, store_errmsg(c->store));
		return;
	}
	memset(j, 0, sizeof *j);
	j->c = c;
	j->dir = c->backup.dir;
	j->txn = c->backup.txn;
	j->index = index;
	c->backup.index = index;
	c->backup.term = c->raft.current_term;
	c->backup.time_ms = settle_now_ms();
	snprintf(c->backup.path, sizeof c->backup.path,
		 "%s/" CKPT_PREFIX "%llu", c->backup.dir,
		 (unsigned long long)index);
	c->backup.work.data = c;
	c->backup.call = call;
	if (uv_queue_work(c->loop, &c->backup.work, backup_work, backup_done) !=
	    0) {
		store_read_end(c->backup.txn);
		c->backup.txn = NULL;
		c->backup.call = NULL;
		coord_fail(c, call, SETTLE_EIO, "no worker for the backup");
		return;
	}
	c->backup.busy = true;
	settle_log(SETTLE_LOG_INFO, "backup",
		   "backup at %llu asked by %s: writing",
		   (unsigned long long)index, rpc_call_peer(call));
}

void coord_do_backup(struct coord *c, struct rpc_call *call, const uint8_t *b,
		     size_t n)
{
	Settle__V1__BackupRequest *req =
	    settle__v1__backup_request__unpack(NULL, n, b);

	if (req == NULL) {
		coord_fail(c, call, SETTLE_EINVAL, "invalid BackupRequest");
		return;
	}
	if (c->closing)
		coord_fail(c, call, SETTLE_EUNAVAIL, "the node is stopping");
	else if (req->index == 0)
		backup_start(c, call);
	else if (!c->backup.ready || req->index != c->backup.index)
		coord_fail(c, call, SETTLE_ENOTFOUND,
			   "no such backup here (deleted once unread for "
			   "60 s): ask for a new one");
	else
		answer(c, call, req->offset);
	settle__v1__backup_request__free_unpacked(req, NULL);
}

void coord_backup_tick(struct coord *c, uint64_t now_ms)
{
	if (c->backup.ready && !c->backup.busy &&
	    now_ms - c->backup.read_ms > BACKUP_KEEP_MS) {
		settle_log(SETTLE_LOG_INFO, "backup",
			   "backup at %llu unread for %d s: deleted",
			   (unsigned long long)c->backup.index,
			   BACKUP_KEEP_MS / 1000);
		backup_forget(c);
	}
}

bool coord_backup_idle(const struct coord *c)
{
	return !c->backup.busy;
}

void coord_backup_close(struct coord *c)
{
	backup_forget(c);
}

int coord_backup_restore(struct coord *c, const char *path, char *errmsg,
			 size_t errmsg_len)
{
	uint64_t applied = 0, index = 0;
	struct stat st;
	uint8_t *data;
	int fd, rv;

	rv = store_applied_get(c->store, NULL, &applied);
	if (rv != 0) {
		snprintf(errmsg, errmsg_len, "--restore: %s",
			 store_errmsg(c->store));
		return rv;
	}
	if (applied != 0) {
		snprintf(errmsg, errmsg_len,
			 "--restore: the store in --data is not empty (applied "
			 "index %llu): a backup goes into a new node's empty "
			 "--data",
			 (unsigned long long)applied);
		return SETTLE_EINVAL;
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
		snprintf(errmsg, errmsg_len, "--restore %s: %s", path,
			 fd < 0 ? strerror(errno) : "empty or unreadable");
		if (fd >= 0)
			close(fd);
		return SETTLE_EIO;
	}
	data = raft_malloc((size_t)st.st_size);
	if (data == NULL) {
		close(fd);
		snprintf(errmsg, errmsg_len, "--restore: out of memory");
		return SETTLE_ENOMEM;
	}
	/* ckpt_read_into checks it is a snapshot container (of any index
	 * from 1) and closes fd. */
	rv = ckpt_read_into(fd, 1, (uint64_t)st.st_size, data, errmsg,
			    errmsg_len);
	if (rv == 0 &&
	    store_snapshot_index(data, (size_t)st.st_size, &index) != 0)
		rv = SETTLE_EPROTO;
	if (rv == 0) {
		rv = store_restore(c->store, data, (size_t)st.st_size);
		if (rv != 0)
			snprintf(errmsg, errmsg_len, "--restore %s: %s", path,
				 store_errmsg(c->store));
	} else {
		char why[300];

		snprintf(why, sizeof why, "%s", errmsg);
		snprintf(errmsg, errmsg_len,
			 "--restore %s: not a Settle backup: %s", path, why);
	}
	raft_free(data);
	fsm_forget_level(&c->fsm);
	if (rv == 0)
		settle_log(
		    SETTLE_LOG_INFO, "backup",
		    "restored the backup %s: the store is at index %llu; "
		    "the leader's log brings the rest once this node is "
		    "added",
		    path, (unsigned long long)index);
	return rv;
}

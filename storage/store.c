/*
 * store.c — the LMDB environment: open/close, transactions, meta, helpers.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sync_file_range */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/statvfs.h>
#include <string.h>

#include "error.h"
#include "storage/store_int.h"

const char *const store__db_names[STORE_DB_N] = {
    [STORE_DB_META] = "meta",	      [STORE_DB_TXS] = "txs",
    [STORE_DB_BRANCHES] = "branches", [STORE_DB_HISTORY] = "history",
    [STORE_DB_DUE] = "due",	      [STORE_DB_BY_STATE] = "by_state",
    [STORE_DB_FINISHED] = "finished", [STORE_DB_CMDS] = "cmds",
    [STORE_DB_CMD_TIME] = "cmd_time", [STORE_DB_APPLIED_LOG] = "applied_log",
    [STORE_DB_MEMBERS] = "members",   [STORE_DB_CMD_IDS] = "cmd_ids",
};

static const char meta_applied[] = STORE__META_APPLIED;
static const char meta_version[] = STORE__META_VERSION;

int store__fail(struct store *s, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->errmsg, sizeof s->errmsg, fmt, ap);
	va_end(ap);
	return err;
}

int store__fail_buf(char *buf, size_t len, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	return err;
}

/* Free bytes for us on the file system holding the store, UINT64_MAX when
 * statvfs cannot tell. */
static uint64_t disk_free(const struct store *s)
{
	struct statvfs v;
	if (s->dir[0] == '\0' || statvfs(s->dir, &v) != 0)
		return UINT64_MAX;
	return (uint64_t)v.f_bavail * v.f_frsize;
}

/* LMDB answers a short write with EIO ("short write, filesystem full?" in
 * its source), so a full disk reads "Input/output error". Name it when the
 * disk is in fact (nearly) full. */
#define STORE__DISK_LOW ((uint64_t)1 << 20)

static int mdb_fail_to(const struct store *s, char *buf, size_t len, int rc,
		       const char *what)
{
	if (rc == EIO && disk_free(s) < STORE__DISK_LOW)
		return store__fail_buf(buf, len, SETTLE_ENOSPACE,
				       "lmdb %s: no space left on device "
				       "(a short write, which LMDB reports "
				       "as an I/O error) in %s",
				       what, s->dir);
	return store__fail_buf(buf, len, settle_err_from_mdb(rc), "lmdb %s: %s",
			       what, mdb_strerror(rc));
}

int store__mdb_fail(struct store *s, int rc, const char *what)
{
	return mdb_fail_to(s, s->errmsg, sizeof s->errmsg, rc, what);
}

int store__read_txn(struct store *s, MDB_txn *txn, MDB_txn **txn_out,
		    MDB_txn **own)
{
	*own = NULL;
	if (txn != NULL) {
		*txn_out = txn;
		return 0;
	}
	int rv = store_read_begin(s, own);
	if (rv != 0)
		return rv;
	*txn_out = *own;
	return 0;
}

size_t store__key_u64_gid(uint8_t *buf, uint64_t v, const char *gid,
			  size_t glen)
{
	store__be64(buf, v);
	memcpy(buf + 8, gid, glen);
	return 8 + glen;
}

size_t store__key_gid_u32(uint8_t *buf, const char *gid, size_t glen,
			  uint32_t v)
{
	memcpy(buf, gid, glen);
	buf[glen] = 0;
	store__be32(buf + glen + 1, v);
	return glen + 5;
}

size_t store__key_gid_u64(uint8_t *buf, const char *gid, size_t glen,
			  uint64_t v)
{
	memcpy(buf, gid, glen);
	buf[glen] = 0;
	store__be64(buf + glen + 1, v);
	return glen + 9;
}

int store__pack(struct store *s, const ProtobufCMessage *m, uint8_t **buf,
		size_t *len)
{
	return store__pack_into(s, m, NULL, 0, buf, len);
}

int store__version_put(struct store *s, MDB_txn *txn)
{
	uint8_t ver[4];
	store__be32(ver, STORE_FORMAT_VERSION);
	MDB_val k = {sizeof meta_version - 1, (void *)meta_version};
	MDB_val v = {sizeof ver, ver};
	int rc = mdb_put(txn, s->dbi[STORE_DB_META], &k, &v, 0);
	if (rc != 0)
		return store__mdb_fail(s, rc, "put version");
	return 0;
}

/* Format 1 or 2: the rows of the old events table go into the history
 * rows (storage/history.c), and the old table is deleted. */
static int upgrade_events(struct store *s, MDB_txn *txn)
{
	MDB_dbi old;
	MDB_cursor *c;
	int rc = mdb_dbi_open(txn, "events", 0, &old);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return store__mdb_fail(s, rc, "open format 2 events");
	rc = mdb_cursor_open(txn, old, &c);
	if (rc != 0)
		return store__mdb_fail(s, rc, "cursor_open");
	int rv = store__history_convert(s, txn, c);
	mdb_cursor_close(c);
	if (rv != 0)
		return rv;
	rc = mdb_drop(txn, old, 1);
	if (rc != 0)
		return store__mdb_fail(s, rc, "drop format 2 events");
	return 0;
}

static int open_dbs(struct store *s)
{
	MDB_txn *txn;
	int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
	if (rc != 0)
		return store__mdb_fail(s, rc, "txn_begin");
	for (int i = 0; i < STORE_DB_N; i++) {
		rc = mdb_dbi_open(txn, store__db_names[i], MDB_CREATE,
				  &s->dbi[i]);
		if (rc != 0) {
			store__mdb_fail(s, rc, "dbi_open");
			goto err_after_txn;
		}
	}
	MDB_val k = {sizeof meta_version - 1, (void *)meta_version};
	MDB_val v;
	rc = mdb_get(txn, s->dbi[STORE_DB_META], &k, &v);
	uint32_t had =
	    rc == 0 && v.mv_size == 4 ? store__get_be32(v.mv_data) : 0;
	if (rc == MDB_NOTFOUND || (had >= 1 && had <= 3)) {
		/* A new store, or an older format: 1 lacked applied_log (just
		 * created empty: entries applied before have no checksum to
		 * compare); 1 and 2 kept a row per event, converted here; 3
		 * stored packed Events, rewritten here; up to 3 finished
		 * transactions had by_state rows. */
		int rv = 0;
		if (rc == 0 && had < 3)
			rv = upgrade_events(s, txn);
		else if (rc == 0)
			rv = store__history_upgrade(s, txn);
		if (rv == 0 && rc == 0)
			rv = store__final_upgrade(s, txn);
		if (rv == 0)
			rv = store__version_put(s, txn);
		if (rv != 0) {
			mdb_txn_abort(txn);
			return rv;
		}
	} else if (rc != 0) {
		store__mdb_fail(s, rc, "get version");
		goto err_after_txn;
	} else if (v.mv_size != 4 ||
		   store__get_be32(v.mv_data) != STORE_FORMAT_VERSION) {
		store__fail(s, SETTLE_ESTORE,
			    "store format version %u, this build reads %u",
			    v.mv_size == 4 ? store__get_be32(v.mv_data) : 0,
			    STORE_FORMAT_VERSION);
		rc = -1;
		goto err_after_txn;
	}
	rc = mdb_txn_commit(txn);
	if (rc != 0)
		return store__mdb_fail(s, rc, "commit");
	return 0;

err_after_txn:
	mdb_txn_abort(txn);
	return rc == -1 ? SETTLE_ESTORE : settle_err_from_mdb(rc);
}

int store_open(const char *dir, const struct store_opts *opts,
	       struct store **out, char *errmsg, size_t errmsg_len)
{
	int rv;
	struct store *s = calloc(1, sizeof *s);
	if (s == NULL) {
		if (errmsg != NULL)
			snprintf(errmsg, errmsg_len, "store: out of memory");
		return SETTLE_ENOMEM;
	}
	size_t mapsize = opts != NULL && opts->mapsize != 0
			     ? opts->mapsize
			     : STORE_DEFAULT_MAPSIZE;
	snprintf(s->dir, sizeof s->dir, "%s", dir);
	int rc = mdb_env_create(&s->env);
	if (rc != 0) {
		rv = store__mdb_fail(s, rc, "env_create");
		goto err_after_alloc;
	}
	rc = mdb_env_set_maxdbs(s->env, STORE_DB_N + 4);
	if (rc == 0)
		rc = mdb_env_set_mapsize(s->env, mapsize);
	if (rc != 0) {
		rv = store__mdb_fail(s, rc, "env_set");
		goto err_after_env;
	}
	/* NOSYNC: the raft log is the durable record; anything LMDB loses
	 * is above the stored applied index and gets replayed. WRITEMAP: a
	 * commit writes into the map instead of copying every dirty page
	 * with pwrite (the largest system-call cost of a busy node). The
	 * file is then as large as the map, sparse; a page the disk cannot
	 * back faults with SIGBUS, which settled reports (main.c).
	 * NORDAHEAD: the store grows into holes of that file, and the
	 * kernel's readahead of a fault in a hole zero-fills a large folio
	 * at once: 20-25 ms of memset on the loop thread about once a second
	 * per node at 5,000 tx/s, the largest of its stalls. Without it
	 * each fault fills the page it needs. */
	rc = mdb_env_open(s->env, dir,
			  MDB_NOSYNC | MDB_NOTLS | MDB_WRITEMAP | MDB_NORDAHEAD,
			  0644);
	if (rc != 0) {
		rv = store__fail(s, settle_err_from_mdb(rc),
				 "lmdb env_open %s: %s", dir, mdb_strerror(rc));
		goto err_after_env;
	}
	/* A crashed process leaves its reader slots behind; they would pin
	 * old pages and make the map grow until MAP_FULL. */
	int dead;
	mdb_reader_check(s->env, &dead);
	rv = open_dbs(s);
	if (rv != 0)
		goto err_after_env;
	/* store_read_end() finds the store of a txn through it. */
	mdb_env_set_userctx(s->env, s);
	*out = s;
	return 0;

err_after_env:
	mdb_env_close(s->env);
err_after_alloc:
	if (errmsg != NULL)
		snprintf(errmsg, errmsg_len, "%s", s->errmsg);
	free(s);
	return rv;
}

void store_close(struct store *s)
{
	if (s == NULL)
		return;
	if (store_batch_commit(s) != 0)
		fprintf(stderr,
			"store: closing with an apply batch that did "
			"not commit (%s); the raft log replays it\n",
			s->errmsg);
	mdb_env_close(s->env);
	free(s);
}

const char *store_errmsg(const struct store *s)
{
	return s->errmsg;
}

const char *store_work_errmsg(const struct store *s)
{
	return s->work_errmsg;
}

int store_sync(struct store *s)
{
	int rc = mdb_env_sync(s->env, 1);
	if (rc == 0)
		return 0;
	int rv = mdb_fail_to(s, s->work_errmsg, sizeof s->work_errmsg, rc,
			     "env_sync");
	return rc == EIO && rv != SETTLE_ENOSPACE ? SETTLE_EIO : rv;
}

void store_writeback_start(struct store *s)
{
	mdb_filehandle_t fd;

	if (mdb_env_get_fd(s->env, &fd) == 0)
		(void)sync_file_range(fd, 0, 0, SYNC_FILE_RANGE_WRITE);
}

MDB_env *store_env(struct store *s)
{
	return s->env;
}

/* Pages in LMDB's freelist: its records (DB 0) are arrays of page
 * numbers, the first element being their count (as mdb_stat counts). */
static int free_pages(struct store *s, MDB_txn *txn, uint64_t *pages)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, 0, &c);
	if (rc != 0)
		return store__mdb_fail(s, rc, "freelist cursor_open");
	MDB_val k, v;
	*pages = 0;
	while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		if (v.mv_size < sizeof(size_t))
			continue;
		size_t n;
		memcpy(&n, v.mv_data, sizeof n);
		*pages += n;
	}
	mdb_cursor_close(c);
	if (rc != MDB_NOTFOUND)
		return store__mdb_fail(s, rc, "freelist");
	return 0;
}

int store_usage(struct store *s, struct store_usage *u)
{
	MDB_envinfo info;
	MDB_stat st;
	MDB_txn *txn;
	uint64_t nfree = 0;
	memset(u, 0, sizeof *u);
	/* A read txn of its own even beside an open apply batch: LMDB opens
	 * no cursor on its freelist in a write txn. */
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
	if (rc != 0)
		return store__mdb_fail(s, rc, "read txn_begin");
	/* The info after the read view begins: the file only grows, so
	 * its last page covers every page the view's freelist names. */
	rc = mdb_env_info(s->env, &info);
	if (rc == 0)
		rc = mdb_env_stat(s->env, &st);
	if (rc != 0) {
		mdb_txn_abort(txn);
		return store__mdb_fail(s, rc, "env_info");
	}
	int rv = free_pages(s, txn, &nfree);
	mdb_txn_abort(txn);
	if (rv != 0)
		return rv;
	uint64_t psize = st.ms_psize;
	u->map_bytes = info.me_mapsize;
	u->file_bytes = ((uint64_t)info.me_last_pgno + 1) * psize;
	u->free_bytes = nfree * psize;
	if (u->free_bytes > u->file_bytes)
		u->free_bytes = u->file_bytes;
	u->used_bytes = u->file_bytes - u->free_bytes;
	u->disk_free_bytes = disk_free(s);
	return 0;
}

static bool batch_mine(const struct store *s)
{
	return s->batch != NULL &&
	       pthread_equal(s->batch_owner, pthread_self());
}

int store_read_begin(struct store *s, MDB_txn **txn)
{
	if (batch_mine(s)) {
		*txn = s->batch;
		return 0;
	}
	int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
	if (rc != 0)
		return store__mdb_fail(s, rc, "read txn_begin");
	return 0;
}

void store_read_end(MDB_txn *txn)
{
	if (txn == NULL)
		return;
	const struct store *s = mdb_env_get_userctx(mdb_txn_env(txn));
	if (s != NULL && txn == s->batch)
		return; /* a view through the batch: it stays open */
	mdb_txn_abort(txn);
}

int store_batch_txn(struct store *s, MDB_txn **txn)
{
	if (s->batch == NULL) {
		int rc = mdb_txn_begin(s->env, NULL, 0, &s->batch);
		if (rc != 0) {
			s->batch = NULL;
			return store__mdb_fail(s, rc, "batch txn_begin");
		}
		s->batch_owner = pthread_self();
	}
	*txn = s->batch;
	return 0;
}

int store_batch_commit(struct store *s)
{
	MDB_txn *txn = s->batch;

	if (txn == NULL)
		return 0;
	s->batch = NULL;
	return store_write_commit(s, txn);
}

void store_batch_abort(struct store *s)
{
	MDB_txn *txn = s->batch;

	s->batch = NULL;
	store_write_abort(txn);
}

bool store_batch_open(const struct store *s)
{
	return s->batch != NULL;
}

int store_write_begin(struct store *s, MDB_txn **txn)
{
	if (batch_mine(s)) {
		int rv = store_batch_commit(s);
		if (rv != 0)
			return rv;
	}
	int rc = mdb_txn_begin(s->env, NULL, 0, txn);
	if (rc != 0)
		return store__mdb_fail(s, rc, "write txn_begin");
	return 0;
}

int store_write_commit(struct store *s, MDB_txn *txn)
{
	int rc = mdb_txn_commit(txn);
	if (rc != 0)
		return store__mdb_fail(s, rc, "commit");
	return 0;
}

void store_write_abort(MDB_txn *txn)
{
	if (txn != NULL)
		mdb_txn_abort(txn);
}

/* A u64 BE row of meta; 0 when absent. */
static int meta_u64_get(struct store *s, MDB_txn *txn, const char *key,
			uint64_t *out)
{
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	MDB_val k = {strlen(key), (void *)key};
	MDB_val v;
	int rc = mdb_get(t, s->dbi[STORE_DB_META], &k, &v);
	if (rc == MDB_NOTFOUND) {
		*out = 0;
	} else if (rc != 0) {
		rv = store__mdb_fail(s, rc, "get meta");
	} else if (v.mv_size != 8) {
		rv = store__fail(s, SETTLE_EPROTO, "meta %s: bad size %zu", key,
				 v.mv_size);
	} else {
		*out = store__get_be64(v.mv_data);
	}
	store_read_end(own);
	return rv;
}

static int meta_u64_put(struct store *s, MDB_txn *txn, const char *key,
			uint64_t value)
{
	uint8_t buf[8];
	store__be64(buf, value);
	MDB_val k = {strlen(key), (void *)key};
	MDB_val v = {8, buf};
	int rc = mdb_put(txn, s->dbi[STORE_DB_META], &k, &v, 0);
	if (rc != 0)
		return store__mdb_fail(s, rc, "put meta");
	return 0;
}

int store_applied_get(struct store *s, MDB_txn *txn, uint64_t *index)
{
	return meta_u64_get(s, txn, meta_applied, index);
}

int store_applied_put(struct store *s, MDB_txn *txn, uint64_t index)
{
	return meta_u64_put(s, txn, meta_applied, index);
}

int store_clock_get(struct store *s, MDB_txn *txn, uint64_t *clock_ms)
{
	return meta_u64_get(s, txn, STORE__META_CLOCK, clock_ms);
}

int store_clock_put(struct store *s, MDB_txn *txn, uint64_t clock_ms)
{
	return meta_u64_put(s, txn, STORE__META_CLOCK, clock_ms);
}

int store_level_get(struct store *s, MDB_txn *txn, uint64_t *level)
{
	return meta_u64_get(s, txn, STORE__META_LEVEL, level);
}

int store_level_put(struct store *s, MDB_txn *txn, uint64_t level)
{
	return meta_u64_put(s, txn, STORE__META_LEVEL, level);
}

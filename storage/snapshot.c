/*
 * snapshot.c — serialize every DB from one read view, and restore it.
 *
 * Layout in store.h. Integers are little-endian here (unlike keys) since
 * nothing sorts them; the checksum is FNV-1a 64 over everything before it.
 *
 * The coordinator's snapshots are compressed as they are written (LZ4
 * frame, STORE_SNAPSHOT_LZ4): the serializer fills a small staging buffer
 * and each full one is compressed onto the output, so a snapshot never
 * holds the plain copy of the store in memory. store_snapshot_fd() goes
 * one step further: the compressed bytes go on to a file a megabyte at a
 * time, so the snapshot is never whole in memory in any form.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* sync_file_range */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <lz4frame.h>
#include <raft.h>

#include "error.h"
#include "storage/snapshot_check.h"
#include "storage/store_int.h"

static const char snap_magic[8] = {'S', 'T', 'L', 'S', 'N', 'A', 'P', '1'};
#define SNAP_HEADER (8 + 4 + 4 + 8)
/* LMDB's default maximum key size. */
#define SNAP_KEY_MAX 511
/* The compressed container: magic, applied index, plain length, frame. */
static const char snapz_magic[8] = {'S', 'T', 'L', 'S', 'N', 'A', 'P', 'Z'};
#define SNAPZ_HEADER (8 + 8 + 8)
/* Plain bytes compressed at a time. */
#define SNAPZ_STAGE (256 * 1024)
/* LZ4 never shrinks data by more than 255:1: a header claiming more than
 * this much plain per compressed byte lies. */
#define SNAPZ_MAX_RATIO 256
/* Written to a file: compressed bytes handed to the kernel at a time, and
 * how much of them may wait dirty in the page cache (see wb_drain). */
#define SNAPZ_SINK	(1024 * 1024)
#define SNAPZ_DIRTY_MAX (8 * 1024 * 1024)
static const char manifest_magic[8] = {'S', 'T', 'L', 'S', 'N', 'A', 'P', 'M'};

/*
 * The snapshot being written. Plain: p holds it all. Compressed: p stages
 * plain bytes and wb_flush() compresses them onto out; with a file (fd >=
 * 0) wb_drain() moves out to it whenever a megabyte is there. fnv and
 * plain hash and count every plain byte either way.
 */
struct wbuf {
	uint8_t *p;
	size_t len;
	size_t cap;
	bool oom;
	uint64_t fnv;
	uint64_t plain;
	LZ4F_cctx *z;
	LZ4F_preferences_t prefs;
	uint8_t *out;
	size_t out_len;
	size_t out_cap;
	LZ4F_errorCode_t zerr; /* the first LZ4 failure, 0 if none */
	int fd;		       /* the file written to, or -1 */
	uint64_t out_off;      /* bytes of out already in the file */
	int ioerr;	       /* errno of the first failed write, 0 if none */
	const int *cancel;     /* set by another thread: stop (ECANCELED) */
};

/* Room for n more bytes after len in *p of capacity *cap. */
static bool wb_room(uint8_t **p, size_t len, size_t *cap, size_t n)
{
	size_t c = *cap ? *cap : 4096;
	uint8_t *q;

	if (len + n <= *cap)
		return true;
	while (c < len + n)
		c *= 2;
	q = raft_realloc(*p, c);
	if (q == NULL)
		return false;
	*p = q;
	*cap = c;
	return true;
}

/*
 * Move out to the file. Writeback of each megabyte starts at once, and the
 * writer waits for what it wrote SNAPZ_DIRTY_MAX earlier to be on disk: a
 * snapshot of the whole store goes to disk at the pace the disk takes it,
 * instead of piling up in the page cache until one fdatasync() flushes it
 * all at once, in front of the raft log's own small fsyncs.
 */
static void wb_drain(struct wbuf *b)
{
	size_t at = 0;

	if (b->cancel != NULL && __atomic_load_n(b->cancel, __ATOMIC_RELAXED))
		b->ioerr = ECANCELED;
	while (at < b->out_len && b->ioerr == 0) {
		ssize_t n = write(b->fd, b->out + at, b->out_len - at);
		if (n < 0 && errno != EINTR)
			b->ioerr = errno;
		else if (n > 0)
			at += (size_t)n;
	}
	if (b->ioerr != 0)
		return;
	(void)sync_file_range(b->fd, (off64_t)b->out_off, (off64_t)at,
			      SYNC_FILE_RANGE_WRITE);
	if (b->out_off >= SNAPZ_DIRTY_MAX)
		(void)sync_file_range(
		    b->fd, 0, (off64_t)(b->out_off - SNAPZ_DIRTY_MAX + at),
		    SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
			SYNC_FILE_RANGE_WAIT_AFTER);
	b->out_off += at;
	b->out_len = 0;
}

/* Compress n plain bytes onto out. */
static void wb_deflate(struct wbuf *b, const void *data, size_t n)
{
	size_t r;

	if (b->oom || b->zerr)
		return;
	if (!wb_room(&b->out, b->out_len, &b->out_cap,
		     LZ4F_compressBound(n, &b->prefs))) {
		b->oom = true;
		return;
	}
	r = LZ4F_compressUpdate(b->z, b->out + b->out_len,
				b->out_cap - b->out_len, data, n, NULL);
	if (LZ4F_isError(r))
		b->zerr = r;
	else
		b->out_len += r;
	if (b->fd >= 0 && b->out_len >= SNAPZ_SINK)
		wb_drain(b);
}

static void wb_flush(struct wbuf *b)
{
	if (b->len > 0)
		wb_deflate(b, b->p, b->len);
	b->len = 0;
}

static void wb_put(struct wbuf *b, const void *data, size_t n)
{
	if (b->oom)
		return;
	b->fnv = store__fnv1a_more(b->fnv, data, n);
	b->plain += n;
	if (b->z != NULL && b->len + n > b->cap) {
		wb_flush(b);
		if (n > b->cap) { /* a large value goes through whole */
			wb_deflate(b, data, n);
			return;
		}
	}
	if (!wb_room(&b->p, b->len, &b->cap, n)) {
		b->oom = true;
		return;
	}
	memcpy(b->p + b->len, data, n);
	b->len += n;
}

static void wb_u32(struct wbuf *b, uint32_t v)
{
	uint8_t x[4];
	for (int i = 0; i < 4; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	wb_put(b, x, 4);
}

static void wb_u64(struct wbuf *b, uint64_t v)
{
	uint8_t x[8];
	for (int i = 0; i < 8; i++)
		x[i] = (uint8_t)(v >> (8 * i));
	wb_put(b, x, 8);
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) |
	       ((uint32_t)p[3] << 24);
}

/* The writer may run on a worker thread: its errors go to work_errmsg,
 * never to errmsg, which the loop thread may be writing meanwhile. */
static int wfail(struct store *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int wfail(struct store *s, int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(s->work_errmsg, sizeof s->work_errmsg, fmt, ap);
	va_end(ap);
	return err;
}

static int wfail_mdb(struct store *s, int rc, const char *what)
{
	return wfail(s, settle_err_from_mdb(rc), "lmdb %s: %s", what,
		     mdb_strerror(rc));
}

static int dump_db(struct store *s, MDB_txn *txn, int db, struct wbuf *b)
{
	MDB_stat st;
	int rc = mdb_stat(txn, s->dbi[db], &st);
	if (rc != 0)
		return wfail_mdb(s, rc, "stat");
	const char *name = store__db_names[db];
	wb_u32(b, (uint32_t)strlen(name));
	wb_put(b, name, strlen(name));
	wb_u64(b, st.ms_entries);
	MDB_cursor *c;
	rc = mdb_cursor_open(txn, s->dbi[db], &c);
	if (rc != 0)
		return wfail_mdb(s, rc, "cursor_open");
	MDB_val k, v;
	size_t n = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && !b->ioerr;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		wb_u32(b, (uint32_t)k.mv_size);
		wb_put(b, k.mv_data, k.mv_size);
		wb_u32(b, (uint32_t)v.mv_size);
		wb_put(b, v.mv_data, v.mv_size);
		n++;
	}
	mdb_cursor_close(c);
	if (b->ioerr)
		return wfail(s, SETTLE_EIO, "snapshot: write: %s",
			     strerror(b->ioerr));
	if (rc != MDB_NOTFOUND)
		return wfail_mdb(s, rc, "cursor_get");
	if (n != st.ms_entries)
		return wfail(s, SETTLE_ESTORE,
			     "snapshot %s: %zu rows, stat says %zu", name, n,
			     (size_t)st.ms_entries);
	return 0;
}

/* The applied index in txn, read without store_applied_get(), which would
 * write errmsg. */
static int applied_in(struct store *s, MDB_txn *txn, uint64_t *index)
{
	MDB_val k = {sizeof STORE__META_APPLIED - 1, STORE__META_APPLIED}, v;
	int rc = mdb_get(txn, s->dbi[STORE_DB_META], &k, &v);
	*index = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return wfail_mdb(s, rc, "get applied");
	if (v.mv_size != 8)
		return wfail(s, SETTLE_EPROTO, "meta applied: bad size %zu",
			     v.mv_size);
	*index = store__get_be64(v.mv_data);
	return 0;
}

static void le64_put(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void snapz_header(uint8_t *h, uint64_t index, uint64_t plain)
{
	memcpy(h, snapz_magic, sizeof snapz_magic);
	le64_put(h + 8, index);
	le64_put(h + 16, plain);
}

/* Start a compressed snapshot: the staging buffer, room for the container
 * header, the frame's header. */
static int wb_begin_z(struct store *s, struct wbuf *b)
{
	size_t r;

	if (LZ4F_isError(LZ4F_createCompressionContext(&b->z, LZ4F_VERSION)))
		return wfail(s, SETTLE_ENOMEM, "snapshot: out of memory");
	memset(&b->prefs, 0, sizeof b->prefs);
	b->prefs.frameInfo.blockSizeID = LZ4F_max256KB;
	if (!wb_room(&b->p, 0, &b->cap, SNAPZ_STAGE) ||
	    !wb_room(&b->out, 0, &b->out_cap,
		     SNAPZ_HEADER + LZ4F_HEADER_SIZE_MAX))
		return wfail(s, SETTLE_ENOMEM, "snapshot: out of memory");
	memset(b->out, 0, SNAPZ_HEADER); /* filled in at the end */
	b->out_len = SNAPZ_HEADER;
	r = LZ4F_compressBegin(b->z, b->out + b->out_len,
			       b->out_cap - b->out_len, &b->prefs);
	if (LZ4F_isError(r))
		return wfail(s, SETTLE_ESTORE, "snapshot: lz4: %s",
			     LZ4F_getErrorName(r));
	b->out_len += r;
	return 0;
}

/* End the frame and fill the container header in. */
static void wb_end_z(struct wbuf *b, uint64_t index)
{
	size_t r;

	wb_flush(b);
	if (b->oom || b->zerr)
		return;
	if (!wb_room(&b->out, b->out_len, &b->out_cap,
		     LZ4F_compressBound(0, &b->prefs))) {
		b->oom = true;
		return;
	}
	r = LZ4F_compressEnd(b->z, b->out + b->out_len, b->out_cap - b->out_len,
			     NULL);
	if (LZ4F_isError(r)) {
		b->zerr = r;
		return;
	}
	b->out_len += r;
	if (b->fd < 0) {
		snapz_header(b->out, index, b->plain);
		return;
	}
	uint8_t h[SNAPZ_HEADER];
	snapz_header(h, index, b->plain);
	wb_drain(b);
	while (b->ioerr == 0 && pwrite(b->fd, h, sizeof h, 0) != sizeof h)
		if (errno != EINTR)
			b->ioerr = errno ? errno : EIO;
}

/* Serialize txn into b, set up by the caller (compressed when b->z is
 * set, into b->fd when it is >= 0). */
static int snapshot_write(struct store *s, MDB_txn *txn, uint64_t applied_index,
			  bool lz4, struct wbuf *b)
{
	uint64_t stored, index;
	int rv = applied_in(s, txn, &stored);

	if (rv != 0)
		return rv;
	index = applied_index > stored ? applied_index : stored;
	if (lz4 && (rv = wb_begin_z(s, b)) != 0)
		return rv;
	wb_put(b, snap_magic, sizeof snap_magic);
	wb_u32(b, STORE_FORMAT_VERSION);
	wb_u32(b, STORE_DB_N);
	wb_u64(b, index);
	for (int i = 0; i < STORE_DB_N && rv == 0; i++)
		rv = dump_db(s, txn, i, b);
	if (rv != 0)
		return rv;
	wb_u64(b, b->fnv);
	if (b->z != NULL)
		wb_end_z(b, index);
	if (b->zerr)
		return wfail(s, SETTLE_ESTORE, "snapshot: lz4: %s",
			     LZ4F_getErrorName(b->zerr));
	if (b->oom)
		return wfail(s, SETTLE_ENOMEM, "snapshot: out of memory");
	if (b->ioerr)
		return wfail(s,
			     b->ioerr == ENOSPC ? SETTLE_ENOSPACE : SETTLE_EIO,
			     "snapshot: write: %s", strerror(b->ioerr));
	return 0;
}

int store_snapshot_txn(struct store *s, MDB_txn *txn, uint64_t applied_index,
		       unsigned flags, uint8_t **buf, size_t *len)
{
	struct wbuf b = {.fnv = STORE__FNV_INIT, .fd = -1};
	int rv = snapshot_write(s, txn, applied_index,
				(flags & STORE_SNAPSHOT_LZ4) != 0, &b);

	if (rv == 0 && b.z != NULL) {
		raft_free(b.p);
		b.p = b.out;
		b.len = b.out_len;
		b.out = NULL;
	}
	LZ4F_freeCompressionContext(b.z);
	if (rv != 0) {
		raft_free(b.p);
		raft_free(b.out);
		return rv;
	}
	*buf = b.p;
	*len = b.len;
	return 0;
}

int store_snapshot_fd(struct store *s, MDB_txn *txn, uint64_t applied_index,
		      int fd, const int *cancel, uint64_t *len)
{
	struct wbuf b = {.fnv = STORE__FNV_INIT, .fd = fd, .cancel = cancel};
	int rv = snapshot_write(s, txn, applied_index, true, &b);

	raft_free(b.p);
	raft_free(b.out);
	LZ4F_freeCompressionContext(b.z);
	if (rv == 0)
		*len = b.out_off;
	return rv;
}

int store_snapshot(struct store *s, uint64_t applied_index, uint8_t **buf,
		   size_t *len)
{
	MDB_txn *txn;
	int rv = store_read_begin(s, &txn);
	if (rv != 0)
		return rv;
	rv = store_snapshot_txn(s, txn, applied_index, 0, buf, len);
	store_read_end(txn);
	/* On the caller's thread: the usual place for the text too. */
	if (rv != 0)
		store__fail(s, rv, "%s", s->work_errmsg);
	return rv;
}

void store_manifest_put(uint8_t out[STORE_MANIFEST_LEN], uint64_t index,
			uint64_t len)
{
	memcpy(out, manifest_magic, sizeof manifest_magic);
	le64_put(out + 8, index);
	le64_put(out + 16, len);
	le64_put(out + 24, store__fnv1a(out, 24));
}

int store_manifest_get(const uint8_t *buf, size_t len, uint64_t *index,
		       uint64_t *file_len)
{
	if (buf == NULL || len != STORE_MANIFEST_LEN ||
	    memcmp(buf, manifest_magic, sizeof manifest_magic) != 0 ||
	    store__fnv1a(buf, 24) != le64(buf + 24))
		return SETTLE_EPROTO;
	*index = le64(buf + 8);
	*file_len = le64(buf + 16);
	return 0;
}

int store_snapshot_index(const uint8_t *buf, size_t len, uint64_t *index)
{
	uint64_t ignored;

	if (store_manifest_get(buf, len, index, &ignored) == 0)
		return 0;
	if (buf != NULL && len >= SNAPZ_HEADER &&
	    memcmp(buf, snapz_magic, sizeof snapz_magic) == 0) {
		*index = le64(buf + 8);
		return 0;
	}
	if (buf == NULL || len < SNAP_HEADER + 8 ||
	    memcmp(buf, snap_magic, sizeof snap_magic) != 0)
		return SETTLE_EPROTO;
	*index = le64(buf + 16);
	return 0;
}

/* Reads length-prefixed items out of a snapshot buffer. */
struct rbuf {
	const uint8_t *p;
	size_t left;
};

static bool rb_u32(struct rbuf *r, uint32_t *v)
{
	if (r->left < 4)
		return false;
	*v = le32(r->p);
	r->p += 4;
	r->left -= 4;
	return true;
}

static bool rb_u64(struct rbuf *r, uint64_t *v)
{
	if (r->left < 8)
		return false;
	*v = le64(r->p);
	r->p += 8;
	r->left -= 8;
	return true;
}

static bool rb_bytes(struct rbuf *r, uint32_t n, MDB_val *out)
{
	if (r->left < n)
		return false;
	out->mv_size = n;
	out->mv_data = (void *)r->p;
	r->p += n;
	r->left -= n;
	return true;
}

static bool rb_item(struct rbuf *r, MDB_val *k, MDB_val *v)
{
	uint32_t n;
	return rb_u32(r, &n) && rb_bytes(r, n, k) && rb_u32(r, &n) &&
	       rb_bytes(r, n, v);
}

/* LMDB's default order: memcmp over the common length, shorter first. */
static int key_cmp(const MDB_val *a, const MDB_val *b)
{
	size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
	int c = memcmp(a->mv_data, b->mv_data, n);
	if (c != 0)
		return c;
	return a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
}

/* DBs in a snapshot of a format version, 0 for an unknown version. */
static uint32_t dbs_of_version(uint32_t version)
{
	if (version == STORE_FORMAT_VERSION)
		return STORE_DB_N;
	if (version == 2 || version == 3)
		return STORE__DB_N_V3;
	if (version == 1)
		return STORE__DB_N_V1;
	return 0;
}

/* The name of db in a snapshot of format version: the events table had a
 * row per event, named events, before format 3. */
static const char *db_name(int db, uint32_t version)
{
	if (db == STORE_DB_HISTORY && version < 3)
		return "events";
	return store__db_names[db];
}

/* Load one row of db from a snapshot of format version. */
static int load_row(struct store *s, MDB_txn *txn, int db, uint32_t version,
		    MDB_val *k, MDB_val *v)
{
	if (db == STORE_DB_HISTORY && version < 3) {
		/* gid \0 seq -> Event, checked: added to gid's history. */
		return store__history_append(s, txn, k->mv_data, k->mv_size - 9,
					     v->mv_data, v->mv_size);
	}
	if (db == STORE_DB_HISTORY && version == 3) {
		/* Packed Events: stored the way of format 4. */
		uint8_t *chunk;
		size_t n;
		int rv =
		    store__history_chunk_v3(v->mv_data, v->mv_size, &chunk, &n);
		if (rv != 0)
			return store__fail(s, rv, "restore: format 3 history");
		MDB_val nv = {n, chunk};
		int rc = mdb_put(txn, s->dbi[db], k, &nv, MDB_APPEND);
		free(chunk);
		if (rc != 0)
			return store__mdb_fail(s, rc, "restore put");
		return 0;
	}
	int rc = mdb_put(txn, s->dbi[db], k, v, MDB_APPEND);
	if (rc != 0)
		return store__mdb_fail(s, rc, "restore put");
	return 0;
}

static bool index_db(int db)
{
	return db == STORE_DB_DUE || db == STORE_DB_BY_STATE ||
	       db == STORE_DB_FINISHED || db == STORE_DB_CMD_TIME;
}

/* Walk the whole buffer of ndb DBs; with txn NULL only validate (with c),
 * else also load. */
static int walk(struct store *s, const uint8_t *buf, size_t len, int ndb,
		uint32_t version, MDB_txn *txn, struct snap_check *c)
{
	struct rbuf r = {buf + SNAP_HEADER, len - SNAP_HEADER - 8};
	for (int db = 0; db < ndb; db++) {
		MDB_val prev = {0, NULL};
		uint32_t nlen;
		uint64_t count;
		MDB_val name;
		const char *want = db_name(db, version);
		if (!rb_u32(&r, &nlen) || !rb_bytes(&r, nlen, &name) ||
		    nlen != strlen(want) || memcmp(name.mv_data, want, nlen) ||
		    !rb_u64(&r, &count))
			return store__fail(s, SETTLE_EPROTO,
					   "snapshot: bad header of db %s",
					   want);
		if (txn == NULL && index_db(db) && count != c->rows[db])
			return store__fail(s, SETTLE_EPROTO,
					   "snapshot: db %s has %llu rows, its "
					   "records imply %llu",
					   want, (unsigned long long)count,
					   (unsigned long long)c->rows[db]);
		for (uint64_t i = 0; i < count; i++) {
			MDB_val k, v;
			if (!rb_item(&r, &k, &v) || k.mv_size == 0 ||
			    k.mv_size > SNAP_KEY_MAX)
				return store__fail(s, SETTLE_EPROTO,
						   "snapshot: bad row %llu "
						   "of db %s",
						   (unsigned long long)i, want);
			/* Strictly increasing keys: no duplicates, and the
			 * count is the number of rows LMDB will hold. */
			if (i > 0 && key_cmp(&prev, &k) >= 0)
				return store__fail(
				    s, SETTLE_EPROTO,
				    "snapshot: db %s out of order "
				    "at row %llu",
				    want, (unsigned long long)i);
			prev = k;
			if (txn == NULL) {
				int rv = snap_check_row(c, db, &k, &v);
				if (rv == SETTLE_ENOMEM)
					return store__fail(
					    s, rv, "snapshot: out of memory");
				if (rv != 0)
					return store__fail(
					    s, rv,
					    "snapshot: row %llu of db %s: %s",
					    (unsigned long long)i, want,
					    c->why);
				continue;
			}
			int rv = load_row(s, txn, db, version, &k, &v);
			if (rv != 0)
				return rv;
		}
	}
	if (r.left != 0)
		return store__fail(s, SETTLE_EPROTO,
				   "snapshot: %zu trailing bytes", r.left);
	return 0;
}

static int restore_plain(struct store *s, const uint8_t *buf, size_t len)
{
	if (buf == NULL || len < SNAP_HEADER + 8 ||
	    memcmp(buf, snap_magic, sizeof snap_magic) != 0)
		return store__fail(s, SETTLE_EPROTO,
				   len == STORE_MANIFEST_LEN &&
					   memcmp(buf, manifest_magic, 8) == 0
				       ? "snapshot: a checkpoint's manifest, "
					 "not a snapshot"
				       : "snapshot: bad magic");
	uint64_t index = le64(buf + 16);
	uint32_t version = le32(buf + 8);
	uint32_t ndb = dbs_of_version(version);
	if (ndb == 0)
		return store__fail(s, SETTLE_EPROTO,
				   "snapshot: format version %u, want %u",
				   version, STORE_FORMAT_VERSION);
	if (le32(buf + 12) != ndb)
		return store__fail(s, SETTLE_EPROTO,
				   "snapshot: %u dbs, format %u has %u",
				   le32(buf + 12), version, ndb);
	if (store__fnv1a(buf, len - 8) != le64(buf + len - 8))
		return store__fail(s, SETTLE_EPROTO, "snapshot: bad checksum");
	struct snap_check check;
	snap_check_init(&check, version, index);
	int rv = walk(s, buf, len, (int)ndb, version, NULL, &check);
	if (rv == 0 && snap_check_end(&check) != 0)
		rv = store__fail(s, SETTLE_EPROTO, "snapshot: %s", check.why);
	snap_check_close(&check);
	if (rv != 0)
		return rv;

	uint64_t applied;
	rv = store_applied_get(s, NULL, &applied);
	if (rv != 0)
		return rv;
	if (applied >= index)
		return 0;

	MDB_txn *txn;
	rv = store_write_begin(s, &txn);
	if (rv != 0)
		return rv;
	for (int db = 0; db < STORE_DB_N; db++) {
		int rc = mdb_drop(txn, s->dbi[db], 0);
		if (rc != 0) {
			rv = store__mdb_fail(s, rc, "restore drop");
			goto err_after_txn;
		}
	}
	rv = walk(s, buf, len, (int)ndb, version, txn, NULL);
	if (rv == 0 && version < 4)
		rv = store__final_upgrade(s, txn);
	if (rv == 0)
		rv = store_applied_put(s, txn, index);
	/* An older snapshot carries its own version: this store is the current
	 * format whatever it was restored from. */
	if (rv == 0)
		rv = store__version_put(s, txn);
	if (rv != 0)
		goto err_after_txn;
	return store_write_commit(s, txn);

err_after_txn:
	store_write_abort(txn);
	return rv;
}

/* The plain snapshot inside a compressed one, in a malloc'd *plain. */
static int unpack(struct store *s, const uint8_t *buf, size_t len,
		  uint8_t **plain, size_t *plen)
{
	uint64_t want = le64(buf + 16);
	size_t in_at = SNAPZ_HEADER, out_at = 0, r = 1;
	LZ4F_dctx *d;

	if (want < SNAP_HEADER + 8 || want / SNAPZ_MAX_RATIO > len ||
	    want > SIZE_MAX)
		return store__fail(s, SETTLE_EPROTO,
				   "snapshot: %zu compressed bytes cannot "
				   "hold the %llu its header says",
				   len, (unsigned long long)want);
	*plain = malloc((size_t)want);
	if (*plain == NULL)
		return store__fail(s, SETTLE_ENOMEM, "snapshot: out of memory");
	if (LZ4F_isError(LZ4F_createDecompressionContext(&d, LZ4F_VERSION))) {
		free(*plain);
		return store__fail(s, SETTLE_ENOMEM, "snapshot: out of memory");
	}
	while (r != 0) {
		size_t src = len - in_at, dst = (size_t)want - out_at;
		r = LZ4F_decompress(d, *plain + out_at, &dst, buf + in_at, &src,
				    NULL);
		if (LZ4F_isError(r))
			break;
		in_at += src;
		out_at += dst;
		if (r != 0 && src == 0 && dst == 0)
			break; /* cut short, or longer than its header says */
	}
	LZ4F_freeDecompressionContext(d);
	if (r != 0 || in_at != len || out_at != want) {
		free(*plain);
		if (LZ4F_isError(r))
			return store__fail(s, SETTLE_EPROTO,
					   "snapshot: lz4: %s",
					   LZ4F_getErrorName(r));
		return store__fail(s, SETTLE_EPROTO,
				   "snapshot: compressed data gives %zu "
				   "bytes and leaves %zu, its header says "
				   "%llu and 0",
				   out_at, len - in_at,
				   (unsigned long long)want);
	}
	*plen = (size_t)want;
	return 0;
}

int store_restore(struct store *s, const uint8_t *buf, size_t len)
{
	uint8_t *plain = NULL;
	size_t plen = 0;
	int rv;

	if (buf == NULL || len < SNAPZ_HEADER ||
	    memcmp(buf, snapz_magic, sizeof snapz_magic) != 0)
		return restore_plain(s, buf, len);
	rv = unpack(s, buf, len, &plain, &plen);
	if (rv != 0)
		return rv;
	/* The container's index is what store_snapshot_index() reports. */
	if (le64(plain + 16) != le64(buf + 8))
		rv = store__fail(s, SETTLE_EPROTO,
				 "snapshot: index %llu inside, %llu outside",
				 (unsigned long long)le64(plain + 16),
				 (unsigned long long)le64(buf + 8));
	else
		rv = restore_plain(s, plain, plen);
	free(plain);
	return rv;
}

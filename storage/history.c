/*
 * history.c — a transaction's events in few rows (format 3).
 *
 *   history  gid \0 chunk(u32 BE) -> event*, each event a varint length
 *            then a packed Event; the chunks of a gid in order, 0 first,
 *            and the events in seq order within and across them
 *
 * Up to format 2 every event was a row of its own (gid \0 seq(u64 BE) ->
 * Event): seven rows of about 80 bytes for a TCC transaction with two
 * branches, each with its own copy of the gid and its share of a page
 * split. One chunk holds them all in about a third of the space. An event
 * is added by rewriting the gid's last chunk while that stays under
 * HISTORY_CHUNK bytes, else in a new chunk: a transaction that collects
 * thousands of events (a branch retried for days) costs a bounded rewrite
 * per event, and a chunk stays small enough to live inside a B-tree page.
 * The old rows are converted when a format 1 or 2 store is opened and
 * when a snapshot of those formats is restored.
 */
#include <stdint.h>
#include <stdlib.h>

#include "error.h"
#include "storage/store_int.h"

/* Longest varint of a size_t. */
#define VARINT_MAX 10
/* A chunk is rewritten while it stays within this many bytes (a node of
 * up to about half a 4 KiB page stays inside the B-tree page). */
#define HISTORY_CHUNK 1536

static size_t put_varint(uint8_t *p, size_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

int store__history_next(const uint8_t **p, const uint8_t *end,
			const uint8_t **ev, size_t *len)
{
	const uint8_t *q = *p;
	uint64_t v = 0;
	if (q == end)
		return 0;
	for (int shift = 0;; shift += 7) {
		if (q == end || shift > 28)
			return -1;
		v |= (uint64_t)(*q & 0x7f) << shift;
		if ((*q++ & 0x80) == 0)
			break;
	}
	if (v > (uint64_t)(end - q))
		return -1;
	*ev = q;
	*len = (size_t)v;
	*p = q + v;
	return 1;
}

/* gid \0 chunk(u32 BE) into key; its length. */
static size_t chunk_key(uint8_t *key, const void *gid, size_t glen,
			uint32_t chunk)
{
	memcpy(key, gid, glen);
	key[glen] = 0;
	store__be32(key + glen + 1, chunk);
	return glen + 5;
}

/*
 * Append the framed events run[0..len) to gid's history: into its last
 * chunk while that stays within HISTORY_CHUNK, then into new ones, one
 * put per chunk touched. An event starts a new chunk when it would take
 * a non-empty one past the limit, exactly as when they come one by one.
 */
static int history_append_run(struct store *s, MDB_txn *txn, const void *gid,
			      size_t glen, const uint8_t *run, size_t len)
{
	MDB_cursor *c;
	uint8_t key[STORE__KEY_MAX];
	int rc = mdb_cursor_open(txn, s->dbi[STORE_DB_HISTORY], &c);
	if (rc != 0)
		return store__mdb_fail(s, rc, "cursor_open");
	/* The gid's last chunk: the row before gid \0 ff ff ff ff. */
	MDB_val k = {chunk_key(key, gid, glen, UINT32_MAX), key}, v;
	rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
	if (rc == 0)
		rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
	else if (rc == MDB_NOTFOUND)
		rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
	uint32_t chunk = 0;
	size_t had = 0;
	const uint8_t *old = NULL;
	if (rc == 0 && k.mv_size == glen + 5 &&
	    memcmp(k.mv_data, key, glen + 1) == 0) {
		chunk = store__get_be32((const uint8_t *)k.mv_data + glen + 1);
		had = v.mv_size;
		old = v.mv_data;
	} else if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_cursor_close(c);
		return store__mdb_fail(s, rc, "find events");
	}
	/* The old value is copied out first: it may live on the very page
	 * a put rewrites. */
	size_t cap = (had > HISTORY_CHUNK ? had : HISTORY_CHUNK) + len;
	uint8_t *buf = malloc(cap);
	if (buf == NULL) {
		mdb_cursor_close(c);
		return store__fail(s, SETTLE_ENOMEM, "events: out of memory");
	}
	if (had > 0)
		memcpy(buf, old, had);
	mdb_cursor_close(c);
	const uint8_t *p = run, *end = run + len, *ev;
	size_t n = had, base = had, evlen; /* base: what the row holds */
	rc = 0;
	int more;
	while (rc == 0 &&
	       (more = store__history_next(&p, end, &ev, &evlen)) == 1) {
		if (n > 0 && n + VARINT_MAX + evlen > HISTORY_CHUNK) {
			MDB_val nk = {chunk_key(key, gid, glen, chunk), key},
				nv = {n, buf};
			if (n > base)
				rc = mdb_put(txn, s->dbi[STORE_DB_HISTORY], &nk,
					     &nv, 0);
			chunk++;
			n = base = 0;
		}
		n += put_varint(buf + n, evlen);
		memcpy(buf + n, ev, evlen);
		n += evlen;
	}
	if (rc == 0 && more < 0) {
		free(buf);
		return store__fail(s, SETTLE_EPROTO, "events: a bad run");
	}
	if (rc == 0 && n > base) {
		MDB_val nk = {chunk_key(key, gid, glen, chunk), key},
			nv = {n, buf};
		rc = mdb_put(txn, s->dbi[STORE_DB_HISTORY], &nk, &nv, 0);
	}
	free(buf);
	if (rc != 0)
		return store__mdb_fail(s, rc, "put events");
	return 0;
}

int store__history_append(struct store *s, MDB_txn *txn, const void *gid,
			  size_t glen, const uint8_t *ev, size_t len)
{
	uint8_t head[VARINT_MAX];
	size_t h = put_varint(head, len);
	uint8_t *run = malloc(h + len);
	int rv;

	if (run == NULL)
		return store__fail(s, SETTLE_ENOMEM, "events: out of memory");
	memcpy(run, head, h);
	memcpy(run + h, ev, len);
	rv = history_append_run(s, txn, gid, glen, run, h + len);
	free(run);
	return rv;
}

int store_event_frame(const Settle__V1__Event *ev, uint8_t **buf, size_t *len,
		      size_t *cap)
{
	size_t n = settle__v1__event__get_packed_size(ev);

	if (*cap - *len < VARINT_MAX + n) {
		size_t c = *cap < 512 ? 512 : *cap;
		uint8_t *p;

		while (c - *len < VARINT_MAX + n)
			c *= 2;
		p = realloc(*buf, c);
		if (p == NULL)
			return SETTLE_ENOMEM;
		*buf = p;
		*cap = c;
	}
	*len += put_varint(*buf + *len, n);
	settle__v1__event__pack(ev, *buf + *len);
	*len += n;
	return 0;
}

int store_events_append(struct store *s, MDB_txn *txn, const char *gid,
			const uint8_t *run, size_t len)
{
	int glen = store__gid_len(gid);

	if (glen < 0)
		return store__fail(s, SETTLE_EINVAL, "events: bad gid");
	if (len == 0)
		return 0;
	return history_append_run(s, txn, gid, (size_t)glen, run, len);
}

int store__history_convert(struct store *s, MDB_txn *txn, MDB_cursor *c)
{
	MDB_val k, v;
	int rc;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		/* gid \0 seq(8): the gid is the key less its last 9 bytes. */
		if (k.mv_size < 10 ||
		    ((const uint8_t *)k.mv_data)[k.mv_size - 9] != 0)
			return store__fail(s, SETTLE_EPROTO,
					   "format 2 events row with a key of "
					   "%zu bytes",
					   k.mv_size);
		int rv = store__history_append(s, txn, k.mv_data, k.mv_size - 9,
					       v.mv_data, v.mv_size);
		if (rv != 0)
			return rv;
	}
	if (rc != MDB_NOTFOUND)
		return store__mdb_fail(s, rc, "read format 2 events");
	return 0;
}

int store_event_put(struct store *s, MDB_txn *txn, const char *gid,
		    const Settle__V1__Event *ev)
{
	int glen = store__gid_len(gid);
	if (glen < 0)
		return store__fail(s, SETTLE_EINVAL, "event put: bad gid");
	uint8_t *buf;
	size_t len;
	int rv = store__pack(s, &ev->base, &buf, &len);
	if (rv != 0)
		return rv;
	rv = store__history_append(s, txn, gid, (size_t)glen, buf, len);
	free(buf);
	return rv;
}

/* Append the events of one chunk to *arr. */
static int unpack_chunk(struct store *s, const MDB_val *v, const char *gid,
			Settle__V1__Event ***arr, size_t *cnt, size_t *cap)
{
	const uint8_t *p = v->mv_data, *end = p + v->mv_size, *ev;
	size_t len;
	int r;
	while ((r = store__history_next(&p, end, &ev, &len)) == 1) {
		if (*cnt == *cap) {
			size_t ncap = *cap ? *cap * 2 : 8;
			void *q = realloc(*arr, ncap * sizeof **arr);
			if (q == NULL)
				return store__fail(s, SETTLE_ENOMEM,
						   "events: out of memory");
			*arr = q;
			*cap = ncap;
		}
		(*arr)[*cnt] = settle__v1__event__unpack(NULL, len, ev);
		if ((*arr)[*cnt] == NULL)
			return store__fail(s, SETTLE_EPROTO,
					   "stored Event does not decode");
		(*cnt)++;
	}
	if (r != 0)
		return store__fail(s, SETTLE_EPROTO,
				   "stored events of %s are cut short", gid);
	return 0;
}

int store_events_list(struct store *s, MDB_txn *txn, const char *gid,
		      Settle__V1__Event ***out, size_t *n)
{
	int glen = store__gid_len(gid);
	*out = NULL;
	*n = 0;
	if (glen < 0)
		return store__fail(s, SETTLE_EINVAL, "events: bad gid");
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	MDB_cursor *c;
	int rc = mdb_cursor_open(t, s->dbi[STORE_DB_HISTORY], &c);
	if (rc != 0) {
		rv = store__mdb_fail(s, rc, "cursor_open");
		store_read_end(own);
		return rv;
	}
	uint8_t key[STORE__KEY_MAX];
	size_t plen = (size_t)glen + 1;
	MDB_val k = {chunk_key(key, gid, (size_t)glen, 0), key}, v;
	Settle__V1__Event **arr = NULL;
	size_t cnt = 0, cap = 0;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size != plen + 4 || memcmp(k.mv_data, key, plen) != 0)
			break;
		rv = unpack_chunk(s, &v, gid, &arr, &cnt, &cap);
	}
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = store__mdb_fail(s, rc, "read events");
	mdb_cursor_close(c);
	store_read_end(own);
	if (rv != 0) {
		store_events_free(arr, cnt);
		return rv;
	}
	*out = arr;
	*n = cnt;
	return 0;
}

void store_events_free(Settle__V1__Event **arr, size_t n)
{
	for (size_t i = 0; i < n; i++)
		settle__v1__event__free_unpacked(arr[i], NULL);
	free(arr);
}

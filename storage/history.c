/*
 * history.c — a transaction's events in few rows (format 3).
 *
 *   history  gid \0 chunk(u32 BE) -> event*, each event a varint length
 *            then the event (below); the chunks of a gid in order, 0
 *            first, and the events in seq order within and across them
 *
 * An event is stored (format 4) as its kind's code in one byte (0: the
 * kind follows as a varint length and its bytes), then seq, time_ms and
 * branch_id as varints, then the detail to the end: about 13 bytes less
 * than a packed Event (tags, and kind names spelt out in every event),
 * a tenth of a finished transaction's stored bytes. Format 3 stored the
 * packed Event; its rows are rewritten when such a store is opened or
 * such a snapshot restored.
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

/* The kinds the state machine writes, by code. A code, once given, is
 * never reused or moved: stored events hold it. New kinds go at the end
 * (or are stored spelt out, code 0). */
static const char *const kinds[] = {
    NULL,	 "begin",	"register",  "commit",	    "rollback",
    "confirm",	 "cancel",	"committed", "rolled_back", "retry",
    "resolve",	 "saga",	"action",    "compensate",  "compensating",
    "succeeded", "compensated", "heuristic", "vote",	    "prepare",
    "xa_commit", "xa_rollback",
};
#define N_KINDS (sizeof kinds / sizeof kinds[0])

static uint8_t kind_code(const char *kind)
{
	for (size_t i = 1; i < N_KINDS; i++)
		if (strcmp(kinds[i], kind) == 0)
			return (uint8_t)i;
	return 0;
}

static const char *str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

/* Bytes event_encode() writes for ev. */
static size_t event_size(const Settle__V1__Event *ev, uint8_t code)
{
	size_t klen = strlen(str_or_empty(ev->kind));
	return 1 + (code == 0 ? store__varint_len(klen) + klen : 0) +
	       store__varint_len(ev->seq) + store__varint_len(ev->time_ms) +
	       store__varint_len(ev->branch_id) +
	       strlen(str_or_empty(ev->detail));
}

static size_t event_encode(const Settle__V1__Event *ev, uint8_t code,
			   uint8_t *out)
{
	const char *kind = str_or_empty(ev->kind);
	const char *detail = str_or_empty(ev->detail);
	size_t n = 0, klen = strlen(kind), dlen = strlen(detail);
	out[n++] = code;
	if (code == 0) {
		n += store__put_varint(out + n, klen);
		memcpy(out + n, kind, klen);
		n += klen;
	}
	n += store__put_varint(out + n, ev->seq);
	n += store__put_varint(out + n, ev->time_ms);
	n += store__put_varint(out + n, ev->branch_id);
	memcpy(out + n, detail, dlen);
	return n + dlen;
}

/* A malloc'd copy of n bytes at p as a string, or NULL. */
static char *dup_str(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s != NULL) {
		memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

int store__event_decode(const uint8_t *p, size_t len, Settle__V1__Event **out)
{
	const uint8_t *end = p + len;
	uint64_t klen = 0, seq, time_ms, branch;
	const uint8_t *kind = NULL;
	*out = NULL;
	if (len == 0)
		return SETTLE_EPROTO;
	uint8_t code = *p++;
	if (code >= N_KINDS)
		return SETTLE_EPROTO;
	if (code == 0) {
		if (!store__get_varint(&p, end, &klen) ||
		    klen > (uint64_t)(end - p))
			return SETTLE_EPROTO;
		kind = p;
		p += klen;
	}
	if (!store__get_varint(&p, end, &seq) ||
	    !store__get_varint(&p, end, &time_ms) ||
	    !store__get_varint(&p, end, &branch) || branch > UINT32_MAX)
		return SETTLE_EPROTO;
	/* Freed by settle__v1__event__free_unpacked(): the message and its
	 * strings, each malloc'd, as protobuf-c's own unpack leaves them. */
	Settle__V1__Event *ev = malloc(sizeof *ev);
	if (ev == NULL)
		return SETTLE_ENOMEM;
	settle__v1__event__init(ev);
	ev->seq = seq;
	ev->time_ms = time_ms;
	ev->branch_id = (uint32_t)branch;
	ev->kind = code == 0 ? dup_str(kind, (size_t)klen)
			     : dup_str((const uint8_t *)kinds[code],
				       strlen(kinds[code]));
	ev->detail = dup_str(p, (size_t)(end - p));
	if (ev->kind == NULL || ev->detail == NULL) {
		settle__v1__event__free_unpacked(ev, NULL);
		return SETTLE_ENOMEM;
	}
	*out = ev;
	return 0;
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
		n += store__put_varint(buf + n, evlen);
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
	Settle__V1__Event *e = settle__v1__event__unpack(NULL, len, ev);
	uint8_t *run = NULL;
	size_t n = 0, cap = 0;
	int rv;

	if (e == NULL)
		return store__fail(s, SETTLE_EPROTO, "Event does not decode");
	rv = store_event_frame(e, &run, &n, &cap);
	settle__v1__event__free_unpacked(e, NULL);
	if (rv != 0)
		return store__fail(s, rv, "events: out of memory");
	rv = history_append_run(s, txn, gid, glen, run, n);
	free(run);
	return rv;
}

int store_event_frame(const Settle__V1__Event *ev, uint8_t **buf, size_t *len,
		      size_t *cap)
{
	uint8_t code = kind_code(str_or_empty(ev->kind));
	size_t n = event_size(ev, code);

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
	*len += store__put_varint(*buf + *len, n);
	*len += event_encode(ev, code, *buf + *len);
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
	uint8_t *run = NULL;
	size_t n = 0, cap = 0;
	int rv = store_event_frame(ev, &run, &n, &cap);
	if (rv != 0)
		return store__fail(s, rv, "events: out of memory");
	rv = history_append_run(s, txn, gid, (size_t)glen, run, n);
	free(run);
	return rv;
}

int store__history_chunk_v3(const uint8_t *old, size_t len, uint8_t **out,
			    size_t *out_len)
{
	const uint8_t *p = old, *end = old + len, *ev;
	size_t evlen, cap = 0;
	int r, rv = 0;
	*out = NULL;
	*out_len = 0;
	while ((r = store__history_next(&p, end, &ev, &evlen)) == 1) {
		Settle__V1__Event *e =
		    settle__v1__event__unpack(NULL, evlen, ev);
		if (e == NULL)
			break;
		rv = store_event_frame(e, out, out_len, &cap);
		settle__v1__event__free_unpacked(e, NULL);
		if (rv != 0)
			break;
	}
	if (rv == 0 && (r != 0 || p != end))
		rv = SETTLE_EPROTO;
	if (rv != 0) {
		free(*out);
		*out = NULL;
	}
	return rv;
}

int store__history_upgrade(struct store *s, MDB_txn *txn)
{
	MDB_cursor *c;
	MDB_val k, v;
	int rv = 0;
	int rc = mdb_cursor_open(txn, s->dbi[STORE_DB_HISTORY], &c);
	if (rc != 0)
		return store__mdb_fail(s, rc, "cursor_open");
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		uint8_t *chunk;
		size_t n;
		rv = store__history_chunk_v3(v.mv_data, v.mv_size, &chunk, &n);
		if (rv != 0) {
			rv = store__fail(s, rv, "format 3 history row: %s",
					 rv == SETTLE_ENOMEM ? "out of memory"
							     : "bad events");
			break;
		}
		/* The key is copied out first: k points into the page, and a
		 * put of another size moves the node it points at. */
		uint8_t key[STORE__KEY_MAX];
		if (k.mv_size > sizeof key) {
			free(chunk);
			rv = store__fail(s, SETTLE_EPROTO,
					 "history key of %zu bytes", k.mv_size);
			break;
		}
		memcpy(key, k.mv_data, k.mv_size);
		MDB_val nk = {k.mv_size, key}, nv = {n, chunk};
		rc = mdb_cursor_put(c, &nk, &nv, MDB_CURRENT);
		free(chunk);
		if (rc != 0)
			break;
	}
	mdb_cursor_close(c);
	if (rv == 0 && rc != MDB_NOTFOUND)
		rv = store__mdb_fail(s, rc, "history upgrade");
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
		int rv = store__event_decode(ev, len, &(*arr)[*cnt]);
		if (rv != 0)
			return store__fail(
			    s, rv,
			    rv == SETTLE_ENOMEM
				? "events: out of memory"
				: "stored event does not decode");
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

/*
 * read.c — lookups and scans over the store's tables and indexes.
 */
#include <stdlib.h>

#include "error.h"
#include "storage/store_int.h"

#define LIST_DEFAULT_LIMIT 1000

static int unpack(struct store *s, const ProtobufCMessageDescriptor *d,
		  const MDB_val *v, ProtobufCAllocator *al,
		  ProtobufCMessage **out)
{
	*out = store__unpack_in(d, v->mv_data, v->mv_size, al);
	if (*out == NULL)
		return store__fail(s, SETTLE_EPROTO,
				   "stored %s does not decode", d->short_name);
	return 0;
}

/* Records are stored without their gid since format 3 (the key holds
 * it): give the caller's copy its gid, glen bytes at key. A record of an
 * older store still has its own. */
static int fill_gid(struct store *s, char **gid, const void *key, size_t glen,
		    ProtobufCAllocator *al)
{
	if (*gid != NULL && (*gid)[0] != 0)
		return 0;
	char *p = store__al_alloc(al, glen + 1);
	if (p == NULL)
		return store__fail(s, SETTLE_ENOMEM, "read: out of memory");
	memcpy(p, key, glen);
	p[glen] = 0;
	/* What it replaces is protobuf-c's static empty string, or (a field
	 * present with no characters before a NUL) one of its own. */
	if (*gid != NULL && *gid != protobuf_c_empty_string)
		store__al_free(al, *gid);
	*gid = p;
	return 0;
}

static int unpack_tx(struct store *s, const MDB_val *k, const MDB_val *v,
		     ProtobufCAllocator *al, Settle__V1__TxRecord **out)
{
	int rv = unpack(s, &settle__v1__tx_record__descriptor, v, al,
			(ProtobufCMessage **)out);
	if (rv == 0 &&
	    (rv = fill_gid(s, &(*out)->gid, k->mv_data, k->mv_size, al)) != 0) {
		settle__v1__tx_record__free_unpacked(*out, al);
		*out = NULL;
	}
	return rv;
}

static int unpack_branch(struct store *s, const char *gid, const MDB_val *v,
			 ProtobufCAllocator *al, Settle__V1__BranchRecord **out)
{
	int rv = unpack(s, &settle__v1__branch_record__descriptor, v, al,
			(ProtobufCMessage **)out);
	if (rv == 0 &&
	    (rv = fill_gid(s, &(*out)->gid, gid, strlen(gid), al)) != 0) {
		settle__v1__branch_record__free_unpacked(*out, al);
		*out = NULL;
	}
	return rv;
}

/* The row of key in db, handed to decode while the read transaction that
 * found it is open (v points into the map). */
typedef int (*decode_fn)(struct store *s, const MDB_val *k, const MDB_val *v,
			 void *arg);

static int get_row(struct store *s, MDB_txn *txn, int db, MDB_val *k,
		   const char *what, decode_fn decode, void *arg)
{
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	MDB_val v;
	int rc = mdb_get(t, s->dbi[db], k, &v);
	if (rc == MDB_NOTFOUND)
		rv = SETTLE_ENOTFOUND;
	else if (rc != 0)
		rv = store__mdb_fail(s, rc, what);
	else
		rv = decode(s, k, &v, arg);
	store_read_end(own);
	return rv;
}

struct tx_out {
	ProtobufCAllocator *al;
	Settle__V1__TxRecord **out;
};

static int decode_tx(struct store *s, const MDB_val *k, const MDB_val *v,
		     void *arg)
{
	struct tx_out *o = arg;
	return unpack_tx(s, k, v, o->al, o->out);
}

int store_tx_get(struct store *s, MDB_txn *txn, const char *gid,
		 Settle__V1__TxRecord **out)
{
	return store_tx_get_in(s, txn, gid, NULL, out);
}

int store_tx_get_in(struct store *s, MDB_txn *txn, const char *gid,
		    ProtobufCAllocator *al, Settle__V1__TxRecord **out)
{
	struct tx_out o = {al, out};
	int glen = store__gid_len(gid);
	if (glen < 0)
		return store__fail(s, SETTLE_EINVAL, "tx get: bad gid");
	MDB_val k = {(size_t)glen, (void *)gid};
	return get_row(s, txn, STORE_DB_TXS, &k, "get tx", decode_tx, &o);
}

/* Field numbers in proto/settle.proto. */
enum {
	TX_MODE = 2,
	TX_STATE = 3,
	TX_DEADLINE = 5,
	TX_NEXT_BRANCH = 9,
	TX_BRANCHES = 11,
	TX_PENDING = 12,
	TX_RECOVERY = 15,
	TX_EXPIRES_CLOCK = 20,
	TX_FIELDS
};
enum { BR_STATE = 6, BR_NEXT_RETRY = 8, BR_FIELDS, BR_DEPENDS_ON = 13 };

static int decode_tx_brief(struct store *s, const MDB_val *k, const MDB_val *v,
			   void *arg)
{
	struct store_tx_brief *out = arg;
	uint64_t vals[TX_FIELDS] = {0};
	struct store__wire w = {.vals = vals, .nvals = TX_FIELDS};
	if (store__wire_scan(v->mv_data, v->mv_size, &w) != 0)
		return store__fail(s, SETTLE_EPROTO,
				   "stored TxRecord of %.*s does not decode",
				   (int)k->mv_size, (const char *)k->mv_data);
	out->mode = (int)(uint32_t)vals[TX_MODE];
	out->state = (int)(uint32_t)vals[TX_STATE];
	out->branches = (uint32_t)vals[TX_BRANCHES];
	out->next_branch_id = (uint32_t)vals[TX_NEXT_BRANCH];
	out->pending = (uint32_t)vals[TX_PENDING];
	out->recovery = (int)(uint32_t)vals[TX_RECOVERY];
	out->deadline_ms = vals[TX_DEADLINE];
	out->expires_clock_ms = vals[TX_EXPIRES_CLOCK];
	return 0;
}

int store_tx_brief_get(struct store *s, MDB_txn *txn, const char *gid,
		       struct store_tx_brief *out)
{
	int glen = store__gid_len(gid);
	if (glen < 0)
		return store__fail(s, SETTLE_EINVAL, "tx brief: bad gid");
	MDB_val k = {(size_t)glen, (void *)gid};
	return get_row(s, txn, STORE_DB_TXS, &k, "get tx", decode_tx_brief,
		       out);
}

/* A branch's brief from its stored bytes v: -1 if they do not decode. */
static int branch_brief(const MDB_val *v, uint32_t branch_id,
			struct store_branch_brief *out)
{
	uint64_t vals[BR_FIELDS] = {0};
	struct store__wire w = {
	    .vals = vals, .nvals = BR_FIELDS, .rep = BR_DEPENDS_ON};
	int rv = store__wire_scan(v->mv_data, v->mv_size, &w);
	out->branch_id = branch_id;
	out->state = (int)(uint32_t)vals[BR_STATE];
	out->next_retry_ms = vals[BR_NEXT_RETRY];
	out->n_depends_on = w.rep_n;
	out->depends_on_first = (uint32_t)w.rep_first;
	return rv;
}

/* The branch id at the end of a branch key (gid, NUL, big-endian id). */
static uint32_t key_branch_id(const MDB_val *k)
{
	return store__get_be32((const uint8_t *)k->mv_data + k->mv_size - 4);
}

static int decode_branch_brief(struct store *s, const MDB_val *k,
			       const MDB_val *v, void *arg)
{
	if (k->mv_size < 6) /* a gid, a NUL, 4 bytes of id */
		return store__fail(s, SETTLE_EPROTO, "branch key of %zu bytes",
				   k->mv_size);
	if (branch_brief(v, key_branch_id(k), arg) != 0)
		return store__fail(s, SETTLE_EPROTO,
				   "stored BranchRecord of %.*s does not "
				   "decode",
				   (int)k->mv_size - 5,
				   (const char *)k->mv_data);
	return 0;
}

/* The key of gid's branch_id in buf (STORE__KEY_MAX bytes), or an
 * error for a bad gid. */
static int branch_key(struct store *s, const char *gid, uint32_t branch_id,
		      uint8_t *buf, MDB_val *k, const char *what)
{
	int glen = store__gid_len(gid);
	if (glen < 0)
		return store__fail(s, SETTLE_EINVAL, "%s: bad gid", what);
	k->mv_size = store__key_gid_u32(buf, gid, (size_t)glen, branch_id);
	k->mv_data = buf;
	return 0;
}

int store_branch_brief_get(struct store *s, MDB_txn *txn, const char *gid,
			   uint32_t branch_id, struct store_branch_brief *out)
{
	uint8_t key[STORE__KEY_MAX];
	MDB_val k;
	int rv = branch_key(s, gid, branch_id, key, &k, "branch brief");
	if (rv != 0)
		return rv;
	return get_row(s, txn, STORE_DB_BRANCHES, &k, "get branch",
		       decode_branch_brief, out);
}

struct branch_out {
	const char *gid;
	ProtobufCAllocator *al;
	Settle__V1__BranchRecord **out;
};

static int decode_branch(struct store *s, const MDB_val *k, const MDB_val *v,
			 void *arg)
{
	struct branch_out *o = arg;
	(void)k;
	return unpack_branch(s, o->gid, v, o->al, o->out);
}

int store_branch_get(struct store *s, MDB_txn *txn, const char *gid,
		     uint32_t branch_id, Settle__V1__BranchRecord **out)
{
	return store_branch_get_in(s, txn, gid, branch_id, NULL, out);
}

int store_branch_get_in(struct store *s, MDB_txn *txn, const char *gid,
			uint32_t branch_id, ProtobufCAllocator *al,
			Settle__V1__BranchRecord **out)
{
	uint8_t key[STORE__KEY_MAX];
	MDB_val k;
	struct branch_out o = {gid, al, out};
	int rv = branch_key(s, gid, branch_id, key, &k, "branch get");
	if (rv != 0)
		return rv;
	return get_row(s, txn, STORE_DB_BRANCHES, &k, "get branch",
		       decode_branch, &o);
}

static void free_msgs(ProtobufCMessage **arr, size_t n)
{
	for (size_t i = 0; i < n; i++)
		protobuf_c_message_free_unpacked(arr[i], NULL);
	free(arr);
}

/* Call row(s, k, v, arg) for every row of db whose key starts with gid
 * and a NUL, in key order, while the read transaction that found it is
 * open; the first non-zero return stops the scan and is returned. */
static int scan_gid(struct store *s, MDB_txn *txn, int db, const char *gid,
		    decode_fn row, void *arg)
{
	int glen = store__gid_len(gid);
	if (glen < 0)
		return store__fail(s, SETTLE_EINVAL, "list: bad gid");
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	MDB_cursor *c;
	int rc = mdb_cursor_open(t, s->dbi[db], &c);
	if (rc != 0) {
		rv = store__mdb_fail(s, rc, "cursor_open");
		store_read_end(own);
		return rv;
	}
	uint8_t prefix[STORE__KEY_MAX];
	memcpy(prefix, gid, (size_t)glen);
	prefix[glen] = 0;
	size_t plen = (size_t)glen + 1;
	MDB_val k = {plen, prefix}, v;
	for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && rv == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
			break;
		rv = row(s, &k, &v, arg);
	}
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = store__mdb_fail(s, rc, "cursor_get");
	mdb_cursor_close(c);
	store_read_end(own);
	return rv;
}

/* Room in *arr (cap elements of size bytes) for element n: doubled from
 * 8 when full. */
static int grow(struct store *s, void **arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap != 0 ? *cap * 2 : 8;
	void *p = realloc(*arr, ncap * size);
	if (p == NULL)
		return store__fail(s, SETTLE_ENOMEM, "list: out of memory");
	*arr = p;
	*cap = ncap;
	return 0;
}

struct branch_list {
	const char *gid;
	ProtobufCAllocator *al;
	Settle__V1__BranchRecord **arr;
	size_t n, cap;
};

static int add_branch(struct store *s, const MDB_val *k, const MDB_val *v,
		      void *arg)
{
	struct branch_list *l = arg;
	int rv = grow(s, (void **)&l->arr, &l->cap, l->n, sizeof *l->arr);
	(void)k;
	if (rv == 0)
		rv = unpack_branch(s, l->gid, v, l->al, &l->arr[l->n]);
	if (rv == 0)
		l->n++;
	return rv;
}

int store_branches_list(struct store *s, MDB_txn *txn, const char *gid,
			Settle__V1__BranchRecord ***out, size_t *n)
{
	return store_branches_list_in(s, txn, gid, NULL, out, n);
}

int store_branches_list_in(struct store *s, MDB_txn *txn, const char *gid,
			   ProtobufCAllocator *al,
			   Settle__V1__BranchRecord ***out, size_t *n)
{
	struct branch_list l = {.gid = gid, .al = al};
	int rv = scan_gid(s, txn, STORE_DB_BRANCHES, gid, add_branch, &l);
	if (rv != 0) {
		for (size_t i = 0; i < l.n; i++)
			settle__v1__branch_record__free_unpacked(l.arr[i], al);
		free(l.arr);
		l.arr = NULL;
		l.n = 0;
	}
	*out = l.arr;
	*n = l.n;
	return rv;
}

struct brief_list {
	struct store_branch_brief *arr;
	size_t n, cap;
};

static int add_brief(struct store *s, const MDB_val *k, const MDB_val *v,
		     void *arg)
{
	struct brief_list *l = arg;
	int rv = grow(s, (void **)&l->arr, &l->cap, l->n, sizeof *l->arr);
	if (rv == 0)
		rv = decode_branch_brief(s, k, v, &l->arr[l->n]);
	if (rv == 0)
		l->n++;
	return rv;
}

int store_branches_brief_list(struct store *s, MDB_txn *txn, const char *gid,
			      struct store_branch_brief **out, size_t *n)
{
	struct brief_list l = {0};
	int rv = scan_gid(s, txn, STORE_DB_BRANCHES, gid, add_brief, &l);
	if (rv != 0) {
		free(l.arr);
		l.arr = NULL;
		l.n = 0;
	}
	*out = l.arr;
	*n = l.n;
	return rv;
}

void store_branches_free(Settle__V1__BranchRecord **arr, size_t n)
{
	free_msgs((ProtobufCMessage **)arr, n);
}

int store_due_scan(struct store *s, MDB_txn *txn, uint64_t now_ms, size_t limit,
		   store_due_cb cb, void *data)
{
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	MDB_cursor *c;
	int rc = mdb_cursor_open(t, s->dbi[STORE_DB_DUE], &c);
	if (rc != 0) {
		rv = store__mdb_fail(s, rc, "cursor_open");
		store_read_end(own);
		return rv;
	}
	MDB_val k, v;
	int visited = 0;
	char gid[STORE__GID_MAX + 1];
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (limit != 0 && (size_t)visited >= limit)
			break;
		if (k.mv_size <= 8 || k.mv_size > 8 + STORE__GID_MAX) {
			rv = store__fail(s, SETTLE_EPROTO,
					 "due: bad key size %zu", k.mv_size);
			break;
		}
		uint64_t due = store__get_be64(k.mv_data);
		if (due > now_ms)
			break;
		memcpy(gid, (uint8_t *)k.mv_data + 8, k.mv_size - 8);
		gid[k.mv_size - 8] = 0;
		visited++;
		if (cb != NULL && cb(data, gid, due) != 0)
			break;
	}
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = store__mdb_fail(s, rc, "cursor_get");
	mdb_cursor_close(c);
	store_read_end(own);
	return rv != 0 ? rv : visited;
}

/* First key of a time-ordered index (u64 BE time then gid), 0 if empty. */
static int first_time(struct store *s, MDB_txn *txn, int db, const char *what,
		      uint64_t *ms)
{
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	MDB_cursor *c;
	int rc = mdb_cursor_open(t, s->dbi[db], &c);
	if (rc != 0) {
		rv = store__mdb_fail(s, rc, "cursor_open");
		store_read_end(own);
		return rv;
	}
	MDB_val k, v;
	*ms = 0;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	if (rc == 0 && k.mv_size > 8)
		*ms = store__get_be64(k.mv_data);
	else if (rc == 0)
		rv = store__fail(s, SETTLE_EPROTO, "%s: bad key", what);
	else if (rc != MDB_NOTFOUND)
		rv = store__mdb_fail(s, rc, "cursor_get");
	mdb_cursor_close(c);
	store_read_end(own);
	return rv;
}

int store_due_min(struct store *s, MDB_txn *txn, uint64_t *due_ms)
{
	return first_time(s, txn, STORE_DB_DUE, "due", due_ms);
}

int store_finished_min(struct store *s, MDB_txn *txn, uint64_t *finished_ms)
{
	return first_time(s, txn, STORE_DB_FINISHED, "finished", finished_ms);
}

void store_txs_free(Settle__V1__TxRecord **arr, size_t n)
{
	free_msgs((ProtobufCMessage **)arr, n);
}

/* Position c on the first row after (prefix, after_gid); the key bytes
 * after skip are the gid. */
static int list_seek(MDB_cursor *c, const uint8_t *prefix, size_t skip,
		     const char *after, MDB_val *k, MDB_val *v)
{
	uint8_t key[STORE__KEY_MAX];
	size_t alen = after != NULL ? strnlen(after, STORE__GID_MAX + 1) : 0;
	if (alen > STORE__GID_MAX)
		alen = STORE__GID_MAX;
	memcpy(key, prefix, skip);
	memcpy(key + skip, after != NULL ? after : "", alen);
	if (skip + alen == 0) {
		return mdb_cursor_get(c, k, v, MDB_FIRST);
	}
	k->mv_size = skip + alen;
	k->mv_data = key;
	int rc = mdb_cursor_get(c, k, v, MDB_SET_RANGE);
	if (rc == 0 && alen > 0 && k->mv_size == skip + alen &&
	    memcmp(k->mv_data, key, skip + alen) == 0)
		rc = mdb_cursor_get(c, k, v, MDB_NEXT);
	return rc;
}

int store_tx_list(struct store *s, MDB_txn *txn, int state,
		  const char *after_gid, size_t limit, store_tx_filter filter,
		  void *data, Settle__V1__TxRecord ***out, size_t *n,
		  bool *more)
{
	*out = NULL;
	*n = 0;
	if (more != NULL)
		*more = false;
	if (state < 0 || state > 255)
		return store__fail(s, SETTLE_EINVAL, "list: bad state %d",
				   state);
	if (limit == 0)
		limit = LIST_DEFAULT_LIMIT;
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	/* A live state has its index; a final one has only a count (format
	 * 4), so the records are read in gid order and filtered. */
	bool final = state != 0 && store__final_slot(state) >= 0;
	int db = state != 0 && !final ? STORE_DB_BY_STATE : STORE_DB_TXS;
	size_t skip = db == STORE_DB_BY_STATE ? 1 : 0;
	uint8_t prefix[1] = {(uint8_t)state};
	MDB_cursor *c;
	int rc = mdb_cursor_open(t, s->dbi[db], &c);
	if (rc != 0) {
		rv = store__mdb_fail(s, rc, "cursor_open");
		goto err_after_txn;
	}
	Settle__V1__TxRecord **arr = calloc(limit, sizeof *arr);
	if (arr == NULL) {
		rv = store__fail(s, SETTLE_ENOMEM, "list: out of memory");
		goto err_after_cursor;
	}
	size_t cnt = 0;
	MDB_val k, v;
	char gid[STORE__GID_MAX + 1];
	for (rc = list_seek(c, prefix, skip, after_gid, &k, &v); rc == 0;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		if (skip != 0 && ((uint8_t *)k.mv_data)[0] != prefix[0])
			break;
		size_t glen = k.mv_size - skip;
		if (k.mv_size <= skip || glen > STORE__GID_MAX) {
			rv = store__fail(s, SETTLE_EPROTO, "list: bad key");
			goto err_after_arr;
		}
		Settle__V1__TxRecord *tx;
		if (skip != 0) {
			memcpy(gid, (uint8_t *)k.mv_data + skip, glen);
			gid[glen] = 0;
			rv = store_tx_get(s, t, gid, &tx);
			if (rv == SETTLE_ENOTFOUND)
				rv = store__fail(s, SETTLE_EPROTO,
						 "by_state row without tx");
		} else {
			rv = unpack_tx(s, &k, &v, NULL, &tx);
		}
		if (rv != 0)
			goto err_after_arr;
		if ((final && (int)tx->state != state) ||
		    (filter != NULL && !filter(data, tx))) {
			settle__v1__tx_record__free_unpacked(tx, NULL);
			continue;
		}
		if (cnt == limit) {
			settle__v1__tx_record__free_unpacked(tx, NULL);
			if (more != NULL)
				*more = true;
			break;
		}
		arr[cnt++] = tx;
	}
	if (rc != 0 && rc != MDB_NOTFOUND) {
		rv = store__mdb_fail(s, rc, "cursor_get");
		goto err_after_arr;
	}
	mdb_cursor_close(c);
	store_read_end(own);
	if (cnt == 0) {
		free(arr);
		arr = NULL;
	}
	*out = arr;
	*n = cnt;
	return 0;

err_after_arr:
	store_txs_free(arr, cnt);
err_after_cursor:
	mdb_cursor_close(c);
err_after_txn:
	store_read_end(own);
	return rv;
}

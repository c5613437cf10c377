/*
 * snapshot_check.c — every row of a snapshot checked against its record.
 *
 * Row counts alone are not enough (fuzzing found snapshots with the right
 * counts and the wrong rows): each index row must name a record that
 * implies exactly it, and since the count is checked too and keys are
 * unique, the index rows and the records then match one to one.
 */
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "storage/snapshot_check.h"
#include "xa/xid.h"

static int bad(struct snap_check *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int bad(struct snap_check *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof c->why, fmt, ap);
	va_end(ap);
	return SETTLE_EPROTO;
}

void snap_check_init(struct snap_check *c, uint32_t version, uint64_t index)
{
	memset(c, 0, sizeof *c);
	c->version = version;
	c->index = index;
}

int snap_check_end(struct snap_check *c)
{
	for (int i = 0; c->version >= 4 && i < STORE__FINAL_N; i++)
		if (c->final_said[i] != c->final_seen[i])
			return bad(c,
				   "meta counts %llu transactions in state %d, "
				   "the records %llu",
				   (unsigned long long)c->final_said[i],
				   store__final_states[i],
				   (unsigned long long)c->final_seen[i]);
	return 0;
}

void snap_check_close(struct snap_check *c)
{
	free(c->txs);
	free(c->cmds);
	c->txs = NULL;
	c->cmds = NULL;
}

/* A value of a known enum, and not its UNSPECIFIED zero unless zero_ok. */
static bool enum_ok(const ProtobufCEnumDescriptor *d, int v, bool zero_ok)
{
	if (v == 0)
		return zero_ok;
	return protobuf_c_enum_descriptor_get_value(d, v) != NULL;
}

static bool terminal(int state)
{
	return state == SETTLE__V1__TX_STATE__COMMITTED ||
	       state == SETTLE__V1__TX_STATE__ROLLED_BACK ||
	       state == SETTLE__V1__TX_STATE__SAGA_SUCCEEDED ||
	       state == SETTLE__V1__TX_STATE__SAGA_COMPENSATED;
}

/* An XID's wire encoding, as the FSM stores it. */
static bool xid_ok(const ProtobufCBinaryData *xid)
{
	struct xa_xid x;
	return xa_xid_decode(xid->data, xid->len, &x) == 0;
}

/* A resource manager's name: [A-Za-z0-9_.-]{1,64} (wal/xa.h). */
static bool rm_ok(const char *rm)
{
	size_t i;
	for (i = 0; rm[i] != 0; i++) {
		char c = rm[i];
		if (i >= 64 ||
		    !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_' || c == '.' ||
		      c == '-'))
			return false;
	}
	return i > 0;
}

/* XA's own transaction fields: only in mode XA, and well formed. */
static const char *tx_xa_fields(const Settle__V1__TxRecord *tx)
{
	bool xa = tx->mode == SETTLE__V1__TX_MODE__XA;
	if (!enum_ok(&settle__v1__heuristic__descriptor, (int)tx->heuristic,
		     true))
		return "tx heuristic unknown";
	if (!xa && (tx->xid.len != 0 || tx->heuristic != 0 ||
		    tx->state == SETTLE__V1__TX_STATE__XA_PREPARED))
		return "XA fields or state on a tx of another mode";
	if (tx->xid.len != 0 && !xid_ok(&tx->xid))
		return "tx xid does not decode";
	return NULL;
}

/* An RM branch (rm set) has an XA state (or FAILED) and an XID; any
 * other branch has neither. */
static const char *branch_xa_fields(const Settle__V1__BranchRecord *b)
{
	int st = (int)b->state;
	bool xa_state = st >= SETTLE__V1__BRANCH_STATE__XA_BRANCH_ACTIVE &&
			st <= SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE;
	if (!enum_ok(&settle__v1__heuristic__descriptor, (int)b->heuristic,
		     true))
		return "branch heuristic unknown";
	if (b->rm == NULL || b->rm[0] == 0) {
		if (xa_state || b->xid.len != 0 || b->heuristic != 0)
			return "XA state or fields on a branch without rm";
		return NULL;
	}
	if (!rm_ok(b->rm))
		return "branch rm is not a valid name";
	if (!xa_state && st != SETTLE__V1__BRANCH_STATE__FAILED)
		return "RM branch in a non-XA state";
	if (!xid_ok(&b->xid))
		return "branch xid does not decode";
	return NULL;
}

/* memcmp order, shorter first: the order of LMDB keys. */
static int bytes_cmp(const uint8_t *a, size_t alen, const uint8_t *b,
		     size_t blen)
{
	int r = memcmp(a, b, alen < blen ? alen : blen);
	if (r != 0)
		return r;
	return alen < blen ? -1 : alen > blen;
}

/* The tx record with this gid seen earlier in the snapshot, or NULL. */
static const struct snap_tx *find_tx(const struct snap_check *c,
				     const uint8_t *gid, size_t glen)
{
	size_t lo = 0, hi = c->n_txs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct snap_tx *t = &c->txs[mid];
		int r = bytes_cmp(t->gid, t->glen, gid, glen);
		if (r == 0)
			return t;
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static const struct snap_cmd *find_cmd(const struct snap_check *c,
				       const uint8_t *id)
{
	size_t lo = 0, hi = c->n_cmds;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = memcmp(c->cmds[mid].id, id, STORE_CMD_ID_LEN);
		if (r == 0)
			return &c->cmds[mid];
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* Grow *arr (of *cap elements of size) to hold one more. */
static int grow(void **arr, size_t *cap, size_t n, size_t size)
{
	if (n < *cap)
		return 0;
	size_t ncap = *cap ? *cap * 2 : 256;
	void *p = realloc(*arr, ncap * size);
	if (p == NULL)
		return SETTLE_ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

static ProtobufCMessage *unpack(const ProtobufCMessageDescriptor *d,
				const void *data, size_t len)
{
	return protobuf_c_message_unpack(d, NULL, len, data);
}

static int check_meta(struct snap_check *c, const MDB_val *k, const MDB_val *v)
{
	const char *key = k->mv_data;
	if (k->mv_size == sizeof STORE__META_APPLIED - 1 &&
	    memcmp(key, STORE__META_APPLIED, k->mv_size) == 0) {
		if (v->mv_size != 8)
			return bad(c, "applied index of %zu bytes", v->mv_size);
		if (store__get_be64(v->mv_data) > c->index)
			return bad(c, "applied index past the snapshot's");
		return 0;
	}
	if (k->mv_size == sizeof STORE__META_VERSION - 1 &&
	    memcmp(key, STORE__META_VERSION, k->mv_size) == 0) {
		if (v->mv_size != 4 ||
		    store__get_be32(v->mv_data) != c->version)
			return bad(c, "format version row differs from the "
				      "header's");
		return 0;
	}
	if (k->mv_size == sizeof STORE__META_CLOCK - 1 &&
	    memcmp(key, STORE__META_CLOCK, k->mv_size) == 0)
		return v->mv_size == 8
			   ? 0
			   : bad(c, "cluster clock of %zu bytes", v->mv_size);
	if (k->mv_size == sizeof STORE__META_LEVEL - 1 &&
	    memcmp(key, STORE__META_LEVEL, k->mv_size) == 0)
		return v->mv_size == 8
			   ? 0
			   : bad(c, "feature level of %zu bytes", v->mv_size);
	if (c->version >= 4 && k->mv_size == sizeof STORE__META_FINAL - 1 &&
	    memcmp(key, STORE__META_FINAL, k->mv_size) == 0) {
		if (v->mv_size != 8 * STORE__FINAL_N)
			return bad(c, "final counts of %zu bytes", v->mv_size);
		for (int i = 0; i < STORE__FINAL_N; i++)
			c->final_said[i] =
			    store__get_be64((uint8_t *)v->mv_data + 8 * i);
		return 0;
	}
	return bad(c, "unknown meta row");
}

static int check_tx(struct snap_check *c, const MDB_val *k, const MDB_val *v)
{
	if (!store__gid_ok(k->mv_data, k->mv_size))
		return bad(c, "key is not a valid gid");
	Settle__V1__TxRecord *tx = (Settle__V1__TxRecord *)unpack(
	    &settle__v1__tx_record__descriptor, v->mv_data, v->mv_size);
	if (tx == NULL)
		return bad(c, "TxRecord does not decode");
	int rv = 0;
	const char *why;
	/* Format 3 stores records without their gid; an older record (in a
	 * store upgraded in place) still has it, equal to its key. */
	if (tx->gid != NULL && tx->gid[0] != 0 &&
	    (strlen(tx->gid) != k->mv_size ||
	     memcmp(tx->gid, k->mv_data, k->mv_size) != 0))
		rv = bad(c, "record gid differs from its key");
	else if (!enum_ok(&settle__v1__tx_state__descriptor, (int)tx->state,
			  false))
		rv = bad(c, "tx state %d", (int)tx->state);
	else if (!enum_ok(&settle__v1__tx_mode__descriptor, (int)tx->mode,
			  false))
		rv = bad(c, "tx mode %d", (int)tx->mode);
	else if (tx->finished_ms != 0 && !terminal((int)tx->state))
		/* GC deletes by the finished index: it must never hold an
		 * unfinished transaction. */
		rv = bad(c, "unfinished tx with a finish time");
	else if ((why = tx_xa_fields(tx)) != NULL)
		rv = bad(c, "%s", why);
	else if (grow((void **)&c->txs, &c->cap_txs, c->n_txs,
		      sizeof *c->txs) != 0)
		rv = SETTLE_ENOMEM;
	if (rv == 0) {
		c->txs[c->n_txs++] = (struct snap_tx){
		    .gid = k->mv_data,
		    .glen = k->mv_size,
		    .due_ms = tx->due_ms,
		    .finished_ms = tx->finished_ms,
		    .state = (int)tx->state,
		    .mode = (int)tx->mode,
		};
		int slot = store__final_slot((int)tx->state);
		if (slot >= 0)
			c->final_seen[slot]++;
		/* Format 4 indexes live transactions only. */
		c->rows[STORE_DB_BY_STATE] += c->version < 4 || slot < 0;
		c->rows[STORE_DB_DUE] += tx->due_ms != 0;
		c->rows[STORE_DB_FINISHED] += tx->finished_ms != 0;
	}
	settle__v1__tx_record__free_unpacked(tx, NULL);
	return rv;
}

/*
 * Split a key gid \0 suffix(n) and find its tx. Returns 0 with *suffix set,
 * or SETTLE_EPROTO.
 */
static int split_gid_key(struct snap_check *c, const MDB_val *k, size_t n,
			 const uint8_t **gid, size_t *glen,
			 const uint8_t **suffix)
{
	const uint8_t *p = k->mv_data;
	if (k->mv_size < n + 2 || p[k->mv_size - n - 1] != 0)
		return bad(c, "key is not gid, 0, %zu bytes", n);
	*gid = p;
	*glen = k->mv_size - n - 1;
	*suffix = p + *glen + 1;
	if (!store__gid_ok(*gid, *glen))
		return bad(c, "key holds an invalid gid");
	if (find_tx(c, *gid, *glen) == NULL)
		return bad(c, "no tx record for its gid");
	return 0;
}

static bool same_gid(const char *s, const uint8_t *gid, size_t glen)
{
	return s != NULL && strlen(s) == glen && memcmp(s, gid, glen) == 0;
}

static int check_branch(struct snap_check *c, const MDB_val *k,
			const MDB_val *v)
{
	const uint8_t *gid, *suffix;
	size_t glen;
	int rv = split_gid_key(c, k, 4, &gid, &glen, &suffix);
	if (rv != 0)
		return rv;
	Settle__V1__BranchRecord *b = (Settle__V1__BranchRecord *)unpack(
	    &settle__v1__branch_record__descriptor, v->mv_data, v->mv_size);
	if (b == NULL)
		return bad(c, "BranchRecord does not decode");
	const char *why;
	if (b->gid != NULL && b->gid[0] != 0 && !same_gid(b->gid, gid, glen))
		rv = bad(c, "record gid differs from its key");
	else if (b->branch_id == 0 || b->branch_id != store__get_be32(suffix))
		rv = bad(c, "branch id differs from its key");
	else if (!enum_ok(&settle__v1__branch_state__descriptor, (int)b->state,
			  false))
		rv = bad(c, "branch state %d", (int)b->state);
	else if ((why = branch_xa_fields(b)) != NULL)
		rv = bad(c, "%s", why);
	else if (b->rm != NULL && b->rm[0] != 0 &&
		 find_tx(c, gid, glen)->mode != SETTLE__V1__TX_MODE__XA)
		/* The FSM would move it by another mode's table. */
		rv = bad(c, "RM branch of a transaction of another mode");
	settle__v1__branch_record__free_unpacked(b, NULL);
	return rv;
}

static int check_event(struct snap_check *c, const MDB_val *k, const MDB_val *v)
{
	const uint8_t *gid, *suffix;
	size_t glen;
	int rv = split_gid_key(c, k, 8, &gid, &glen, &suffix);
	if (rv != 0)
		return rv;
	Settle__V1__Event *ev = (Settle__V1__Event *)unpack(
	    &settle__v1__event__descriptor, v->mv_data, v->mv_size);
	if (ev == NULL)
		return bad(c, "Event does not decode");
	if (ev->seq != store__get_be64(suffix))
		rv = bad(c, "event seq differs from its key");
	settle__v1__event__free_unpacked(ev, NULL);
	return rv;
}

/* Formats 3 and 4: gid \0 chunk -> events (storage/history.c; packed
 * Events in format 3), each decoding,
 * seqs strictly increasing across the gid's chunks. */
static int check_history(struct snap_check *c, const MDB_val *k,
			 const MDB_val *v)
{
	const uint8_t *gid, *suffix;
	size_t glen;
	int rv = split_gid_key(c, k, 4, &gid, &glen, &suffix);
	if (rv != 0)
		return rv;
	bool same = c->hist_gid != NULL && c->hist_glen == glen &&
		    memcmp(c->hist_gid, gid, glen) == 0;
	bool first = !same;
	uint64_t last = same ? c->hist_seq : 0;
	const uint8_t *p = v->mv_data, *end = p + v->mv_size, *ev;
	size_t len;
	int r;
	if (v->mv_size == 0)
		return bad(c, "history chunk without events");
	while ((r = store__history_next(&p, end, &ev, &len)) == 1) {
		Settle__V1__Event *e = NULL;
		if (c->version >= 4) {
			int rv4 = store__event_decode(ev, len, &e);
			if (rv4 == SETTLE_ENOMEM)
				return rv4;
		} else {
			e = (Settle__V1__Event *)unpack(
			    &settle__v1__event__descriptor, ev, len);
		}
		if (e == NULL)
			return bad(c, "Event does not decode");
		uint64_t seq = e->seq;
		settle__v1__event__free_unpacked(e, NULL);
		if (!first && seq <= last)
			return bad(c, "event seq %llu after %llu",
				   (unsigned long long)seq,
				   (unsigned long long)last);
		last = seq;
		first = false;
	}
	if (r != 0)
		return bad(c, "history cut short");
	c->hist_gid = gid;
	c->hist_glen = glen;
	c->hist_seq = last;
	return 0;
}

/* due and finished: time(8) gid -> empty, time == the tx's field. */
static int check_time_index(struct snap_check *c, int db, const MDB_val *k,
			    const MDB_val *v)
{
	const uint8_t *p = k->mv_data;
	if (v->mv_size != 0)
		return bad(c, "index row with a value");
	if (k->mv_size < 9 || !store__gid_ok(p + 8, k->mv_size - 8))
		return bad(c, "key is not time, gid");
	const struct snap_tx *t = find_tx(c, p + 8, k->mv_size - 8);
	if (t == NULL)
		return bad(c, "no tx record for its gid");
	uint64_t want = db == STORE_DB_DUE ? t->due_ms : t->finished_ms;
	if (want == 0 || want != store__get_be64(p))
		return bad(c, "time differs from its tx record's");
	return 0;
}

static int check_by_state(struct snap_check *c, const MDB_val *k,
			  const MDB_val *v)
{
	const uint8_t *p = k->mv_data;
	if (v->mv_size != 0)
		return bad(c, "index row with a value");
	if (k->mv_size < 2 || !store__gid_ok(p + 1, k->mv_size - 1))
		return bad(c, "key is not state, gid");
	const struct snap_tx *t = find_tx(c, p + 1, k->mv_size - 1);
	if (t == NULL)
		return bad(c, "no tx record for its gid");
	if (t->state != p[0])
		return bad(c, "state differs from its tx record's");
	if (c->version >= 4 && store__final_slot(t->state) >= 0)
		return bad(c, "by_state row of a finished tx");
	return 0;
}

/* What is wrong with a stored result (an unknown enum value, an xid that
 * does not decode), or NULL. */
static const char *result_wrong(const Settle__V1__CmdResult *r)
{
	if (!enum_ok(&settle__v1__code__descriptor, (int)r->code, true) ||
	    !enum_ok(&settle__v1__tx_state__descriptor, (int)r->state, true) ||
	    !enum_ok(&settle__v1__branch_state__descriptor,
		     (int)r->branch_state, true))
		return "result with an unknown code or state";
	if (r->xid.len != 0 && !xid_ok(&r->xid))
		return "result xid does not decode";
	return NULL;
}

/* A stored CmdResult (n bytes at p) decodes and holds nothing unknown. */
static int check_result(struct snap_check *c, const uint8_t *p, size_t n)
{
	Settle__V1__CmdResult *r = (Settle__V1__CmdResult *)unpack(
	    &settle__v1__cmd_result__descriptor, p, n);
	if (r == NULL)
		return bad(c, "CmdResult does not decode");
	const char *why = result_wrong(r);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	return why != NULL ? bad(c, "%s", why) : 0;
}

static int check_cmd(struct snap_check *c, const MDB_val *k, const MDB_val *v)
{
	if (k->mv_size != STORE_CMD_ID_LEN)
		return bad(c, "command id of %zu bytes", k->mv_size);
	if (v->mv_size < 8)
		return bad(c, "value shorter than its time");
	const uint8_t *p = v->mv_data;
	int rv = check_result(c, p + 8, v->mv_size - 8);
	if (rv != 0)
		return rv;
	if (grow((void **)&c->cmds, &c->cap_cmds, c->n_cmds, sizeof *c->cmds) !=
	    0)
		return SETTLE_ENOMEM;
	c->cmds[c->n_cmds++] = (struct snap_cmd){
	    .id = k->mv_data,
	    .time_ms = store__get_be64(p),
	};
	c->rows[STORE_DB_CMD_TIME]++;
	return 0;
}

/* Format 4's cmd_ids: a command id that begins with its time -> the
 * CmdResult alone. */
static int check_cmd_id(struct snap_check *c, const MDB_val *k,
			const MDB_val *v)
{
	if (k->mv_size != STORE_CMD_ID_LEN)
		return bad(c, "command id of %zu bytes", k->mv_size);
	int rv = check_result(c, v->mv_data, v->mv_size);
	if (rv == 0 && find_cmd(c, k->mv_data) != NULL)
		rv = bad(c, "command id also in cmds");
	return rv;
}

static int check_cmd_time(struct snap_check *c, const MDB_val *k,
			  const MDB_val *v)
{
	const uint8_t *p = k->mv_data;
	if (v->mv_size != 0)
		return bad(c, "index row with a value");
	if (k->mv_size != 8 + STORE_CMD_ID_LEN)
		return bad(c, "key is not time, command id");
	const struct snap_cmd *cmd = find_cmd(c, p + 8);
	if (cmd == NULL)
		return bad(c, "no command for its id");
	if (cmd->time_ms != store__get_be64(p))
		return bad(c, "time differs from its command's");
	return 0;
}

static int check_applied_log(struct snap_check *c, const MDB_val *k,
			     const MDB_val *v)
{
	if (k->mv_size != 8 || v->mv_size != 8)
		return bad(c, "not index -> checksum");
	uint64_t index = store__get_be64(k->mv_data);
	/* An entry past the snapshot's index cannot have been applied in
	 * it; after the restore raft would deliver that index again. */
	if (index == 0 || index > c->index)
		return bad(c, "index %llu outside 1..%llu",
			   (unsigned long long)index,
			   (unsigned long long)c->index);
	return 0;
}

static int check_member(struct snap_check *c, const MDB_val *k,
			const MDB_val *v)
{
	if (k->mv_size != 8)
		return bad(c, "key is not a node id");
	Settle__V1__MemberRecord *m = (Settle__V1__MemberRecord *)unpack(
	    &settle__v1__member_record__descriptor, v->mv_data, v->mv_size);
	if (m == NULL)
		return bad(c, "MemberRecord does not decode");
	int rv = 0;
	if (m->id == 0 || m->id != store__get_be64(k->mv_data))
		rv = bad(c, "member id differs from its key");
	settle__v1__member_record__free_unpacked(m, NULL);
	return rv;
}

int snap_check_row(struct snap_check *c, int db, const MDB_val *k,
		   const MDB_val *v)
{
	switch (db) {
	case STORE_DB_META:
		return check_meta(c, k, v);
	case STORE_DB_TXS:
		return check_tx(c, k, v);
	case STORE_DB_BRANCHES:
		return check_branch(c, k, v);
	case STORE_DB_HISTORY:
		return c->version < 3 ? check_event(c, k, v)
				      : check_history(c, k, v);
	case STORE_DB_DUE:
	case STORE_DB_FINISHED:
		return check_time_index(c, db, k, v);
	case STORE_DB_BY_STATE:
		return check_by_state(c, k, v);
	case STORE_DB_CMDS:
		return check_cmd(c, k, v);
	case STORE_DB_CMD_TIME:
		return check_cmd_time(c, k, v);
	case STORE_DB_APPLIED_LOG:
		return check_applied_log(c, k, v);
	case STORE_DB_MEMBERS:
		return check_member(c, k, v);
	case STORE_DB_CMD_IDS:
		return check_cmd_id(c, k, v);
	}
	return bad(c, "unknown db %d", db);
}

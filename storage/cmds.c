/*
 * cmds.c — command ids and the results recorded under them, kept for
 * retries until the garbage collection forgets them.
 *
 * Two tables. cmd_ids (format 4) holds ids that begin with the time they
 * were made (settle_cmd_id(): unix ms in 6 bytes big-endian) close to the
 * leader's time of the command: the key is its own time order, so the
 * collection walks it from the start and no second row is needed. Any
 * other id goes to cmds, with its time in the value and a cmd_time row
 * giving the collection its order.
 */
#include <stdlib.h>

#include "error.h"
#include "storage/store_int.h"

static uint64_t id_time(const uint8_t *cmd_id)
{
	uint64_t t = 0;
	for (int i = 0; i < 6; i++)
		t = (t << 8) | cmd_id[i];
	return t;
}

bool store_cmd_id_timed(const uint8_t *cmd_id, uint64_t time_ms)
{
	uint64_t t = id_time(cmd_id);
	return t + STORE_CMD_SKEW_MS >= time_ms &&
	       t <= time_ms + STORE_CMD_SKEW_MS;
}

int store_cmd_get(struct store *s, MDB_txn *txn, const uint8_t *cmd_id,
		  Settle__V1__CmdResult **out)
{
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	MDB_val k = {STORE_CMD_ID_LEN, (void *)cmd_id}, v;
	size_t skip = 0;
	int rc = mdb_get(t, s->dbi[STORE_DB_CMD_IDS], &k, &v);
	if (rc == MDB_NOTFOUND) {
		rc = mdb_get(t, s->dbi[STORE_DB_CMDS], &k, &v);
		skip = 8;
	}
	if (rc == MDB_NOTFOUND) {
		rv = SETTLE_ENOTFOUND;
	} else if (rc != 0) {
		rv = store__mdb_fail(s, rc, "get cmd");
	} else if (v.mv_size < skip) {
		rv = store__fail(s, SETTLE_EPROTO, "cmds: short value");
	} else {
		*out = settle__v1__cmd_result__unpack(
		    NULL, v.mv_size - skip, (uint8_t *)v.mv_data + skip);
		if (*out == NULL)
			rv = store__fail(s, SETTLE_EPROTO,
					 "stored CmdResult does not decode");
	}
	store_read_end(own);
	return rv;
}

int store_cmd_put(struct store *s, MDB_txn *txn, const uint8_t *cmd_id,
		  uint64_t time_ms, const Settle__V1__CmdResult *r)
{
	size_t n = protobuf_c_message_get_packed_size(&r->base);
	uint8_t *buf = malloc(8 + n);
	if (buf == NULL)
		return store__fail(s, SETTLE_ENOMEM, "cmd put: out of memory");
	store__be64(buf, time_ms);
	protobuf_c_message_pack(&r->base, buf + 8);
	/* A command id is recorded once; replacing it would leave a stale
	 * cmd_time row behind, so refuse (the FSM checks first). */
	MDB_val k = {STORE_CMD_ID_LEN, (void *)cmd_id}, v = {8 + n, buf};
	int rc = mdb_put(txn, s->dbi[STORE_DB_CMDS], &k, &v, MDB_NOOVERWRITE);
	free(buf);
	if (rc != 0)
		return store__mdb_fail(s, rc, "put cmd");
	uint8_t key[8 + STORE_CMD_ID_LEN];
	store__be64(key, time_ms);
	memcpy(key + 8, cmd_id, STORE_CMD_ID_LEN);
	MDB_val tk = {sizeof key, key}, tv = {0, ""};
	rc = mdb_put(txn, s->dbi[STORE_DB_CMD_TIME], &tk, &tv, 0);
	if (rc != 0)
		return store__mdb_fail(s, rc, "put cmd_time");
	return 0;
}

int store_cmd_put_timed(struct store *s, MDB_txn *txn, const uint8_t *cmd_id,
			const Settle__V1__CmdResult *r)
{
	uint8_t stack[256], *buf = stack;
	size_t n = protobuf_c_message_get_packed_size(&r->base);
	if (n > sizeof stack && (buf = malloc(n)) == NULL)
		return store__fail(s, SETTLE_ENOMEM, "cmd put: out of memory");
	protobuf_c_message_pack(&r->base, buf);
	MDB_val k = {STORE_CMD_ID_LEN, (void *)cmd_id}, v = {n, buf};
	int rc =
	    mdb_put(txn, s->dbi[STORE_DB_CMD_IDS], &k, &v, MDB_NOOVERWRITE);
	if (buf != stack)
		free(buf);
	if (rc != 0)
		return store__mdb_fail(s, rc, "put cmd");
	return 0;
}

/* Forget cmds rows whose cmd_time is before before_ms, up to *left. */
static int gc_by_time(struct store *s, MDB_txn *txn, uint64_t before_ms,
		      size_t *left)
{
	MDB_cursor *c;
	int rv = 0;
	int rc = mdb_cursor_open(txn, s->dbi[STORE_DB_CMD_TIME], &c);
	if (rc != 0)
		return store__mdb_fail(s, rc, "cursor_open");
	MDB_val k, v;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == 0 && *left > 0) {
		if (k.mv_size != 8 + STORE_CMD_ID_LEN) {
			rv = store__fail(s, SETTLE_EPROTO, "cmd_time: bad key");
			break;
		}
		if (store__get_be64(k.mv_data) >= before_ms)
			break;
		MDB_val id = {STORE_CMD_ID_LEN, (uint8_t *)k.mv_data + 8};
		rc = mdb_del(txn, s->dbi[STORE_DB_CMDS], &id, NULL);
		if (rc == MDB_NOTFOUND) {
			rv = store__fail(s, SETTLE_EPROTO,
					 "cmd_time row without its command");
			break;
		}
		if (rc == 0)
			rc = mdb_cursor_del(c, 0);
		if (rc != 0)
			break;
		(*left)--;
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = store__mdb_fail(s, rc, "cmd gc");
	return rv;
}

/* Forget cmd_ids rows made STORE_CMD_SKEW_MS before before_ms, up to
 * *left: each was applied at most that long after its own time. */
static int gc_by_id(struct store *s, MDB_txn *txn, uint64_t before_ms,
		    size_t *left)
{
	MDB_cursor *c;
	int rc = mdb_cursor_open(txn, s->dbi[STORE_DB_CMD_IDS], &c);
	if (rc != 0)
		return store__mdb_fail(s, rc, "cursor_open");
	MDB_val k, v;
	rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
	while (rc == 0 && *left > 0) {
		if (k.mv_size != STORE_CMD_ID_LEN) {
			mdb_cursor_close(c);
			return store__fail(s, SETTLE_EPROTO,
					   "cmd_ids: bad key");
		}
		if (id_time(k.mv_data) + STORE_CMD_SKEW_MS >= before_ms)
			break;
		rc = mdb_cursor_del(c, 0);
		if (rc != 0)
			break;
		(*left)--;
		/* After a delete, MDB_NEXT lands on the row that followed. */
		rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
	}
	mdb_cursor_close(c);
	if (rc != 0 && rc != MDB_NOTFOUND)
		return store__mdb_fail(s, rc, "cmd gc");
	return 0;
}

int store_cmd_gc(struct store *s, MDB_txn *txn, uint64_t before_ms,
		 size_t limit, size_t *deleted)
{
	size_t left = limit;
	int rv = gc_by_time(s, txn, before_ms, &left);
	if (rv == 0)
		rv = gc_by_id(s, txn, before_ms, &left);
	if (deleted != NULL)
		*deleted = limit - left;
	return rv;
}

int store_cmd_min(struct store *s, MDB_txn *txn, uint64_t *time_ms)
{
	MDB_txn *t, *own;
	int rv = store__read_txn(s, txn, &t, &own);
	if (rv != 0)
		return rv;
	*time_ms = 0;
	MDB_cursor *c;
	MDB_val k, v;
	int rc = mdb_cursor_open(t, s->dbi[STORE_DB_CMD_TIME], &c);
	if (rc == 0) {
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		if (rc == 0 && k.mv_size == 8 + STORE_CMD_ID_LEN)
			*time_ms = store__get_be64(k.mv_data);
		else if (rc == 0)
			rv = store__fail(s, SETTLE_EPROTO, "cmd_time: bad key");
		mdb_cursor_close(c);
	}
	if (rv == 0 && (rc == 0 || rc == MDB_NOTFOUND))
		rc = mdb_cursor_open(t, s->dbi[STORE_DB_CMD_IDS], &c);
	if (rv == 0 && rc == 0) {
		rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
		if (rc == 0 && k.mv_size == STORE_CMD_ID_LEN) {
			uint64_t at = id_time(k.mv_data) + STORE_CMD_SKEW_MS;
			if (*time_ms == 0 || at < *time_ms)
				*time_ms = at;
		} else if (rc == 0) {
			rv = store__fail(s, SETTLE_EPROTO, "cmd_ids: bad key");
		}
		mdb_cursor_close(c);
	}
	if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
		rv = store__mdb_fail(s, rc, "cmd min");
	store_read_end(own);
	return rv;
}

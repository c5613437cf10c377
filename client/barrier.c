/*
 * barrier.c — the TCC and Saga barrier in the participant's LMDB env.
 *
 * Table "settle_barrier": key  [u8 gid length][gid][u32 BE branch][u8 op]
 *                         value [u64 BE unix ms written]
 * Table "settle_barrier_time": key [u64 BE ms][barrier key], empty value;
 * ordered by time so that gc walks the oldest rows first.
 *
 * The ops of one branch share a key prefix, so they sit side by side.
 */
#include "error.h"

#include "settle_participant.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

#define BARRIER_KEY_MAX (1 + SETTLE_GID_MAX + 4 + 1)

struct settle_barrier {
	MDB_env *env;
	MDB_dbi rows;
	MDB_dbi times;
};

static void put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

int settle_barrier_open(MDB_env *env, settle_barrier **out)
{
	struct settle_barrier *b;
	MDB_txn *txn;
	int rc;

	if (env == NULL || out == NULL)
		return SETTLE_EINVAL;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return SETTLE_ENOMEM;
	b->env = env;
	rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc != 0)
		goto err_after_alloc;
	rc = mdb_dbi_open(txn, "settle_barrier", MDB_CREATE, &b->rows);
	if (rc != 0)
		goto err_after_txn;
	rc = mdb_dbi_open(txn, "settle_barrier_time", MDB_CREATE, &b->times);
	if (rc != 0)
		goto err_after_txn;
	/* The handles become usable by other txns only once committed. */
	rc = mdb_txn_commit(txn);
	if (rc != 0)
		goto err_after_alloc;
	*out = b;
	return 0;

err_after_txn:
	mdb_txn_abort(txn);
err_after_alloc:
	free(b);
	settle_log(SETTLE_LOG_ERROR, "barrier", "open: %s", mdb_strerror(rc));
	return settle_err_from_mdb(rc);
}

void settle_barrier_close(settle_barrier *b)
{
	/* The DBI handles belong to the env; LMDB closes them with it. */
	free(b);
}

static size_t make_key(uint8_t *k, const char *gid, size_t gl,
		       uint32_t branch_id, int op)
{
	k[0] = (uint8_t)gl;
	memcpy(k + 1, gid, gl);
	k[1 + gl] = (uint8_t)(branch_id >> 24);
	k[2 + gl] = (uint8_t)(branch_id >> 16);
	k[3 + gl] = (uint8_t)(branch_id >> 8);
	k[4 + gl] = (uint8_t)branch_id;
	k[5 + gl] = (uint8_t)op;
	return gl + 6;
}

/* 1 if the row exists, 0 if not, <0 on error. */
static int has_row(settle_barrier *b, MDB_txn *txn, uint8_t *k, size_t kl,
		   int op)
{
	MDB_val key = {kl, k};
	MDB_val val;

	k[kl - 1] = (uint8_t)op;
	int rc = mdb_get(txn, b->rows, &key, &val);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != 0)
		return settle_err_from_mdb(rc);
	return 1;
}

static int put_row(settle_barrier *b, MDB_txn *txn, uint8_t *k, size_t kl,
		   int op)
{
	uint8_t tk[8 + BARRIER_KEY_MAX];
	uint8_t when[8];
	uint64_t now = settle_now_ms();
	MDB_val key = {kl, k};
	MDB_val val = {sizeof(when), when};
	MDB_val tkey = {8 + kl, tk};
	MDB_val empty = {0, NULL};
	int rc;

	k[kl - 1] = (uint8_t)op;
	put_u64(when, now);
	rc = mdb_put(txn, b->rows, &key, &val, MDB_NOOVERWRITE);
	if (rc != 0)
		return settle_err_from_mdb(rc);
	put_u64(tk, now);
	memcpy(tk + 8, k, kl);
	rc = mdb_put(txn, b->times, &tkey, &empty, 0);
	if (rc != 0)
		return settle_err_from_mdb(rc);
	return 0;
}

/*
 * The rules of every op, in the order they are checked: a row of `refuse`
 * refuses the call (a Try or Action after its Cancel or Compensate, a
 * Confirm after a Cancel and the reverse); a row of the op itself makes it
 * a repeat, answered without running. A compensating op (`undoes` set) is
 * always recorded, so that a late Try or Action is refused, but runs only
 * if what it undoes took effect: otherwise it is a null compensation.
 * A hanging Try writes nothing: the cancel row alone keeps refusing it.
 * 0 stands for "no such row".
 */
static const struct barrier_rule {
	int refuse;
	int undoes;
} rules[] = {
    [SETTLE_OP_TRY] = {SETTLE_OP_CANCEL, 0},
    [SETTLE_OP_CONFIRM] = {SETTLE_OP_CANCEL, 0},
    [SETTLE_OP_CANCEL] = {SETTLE_OP_CONFIRM, SETTLE_OP_TRY},
    /* A saga Action is a Try that takes effect at once. */
    [SETTLE_OP_ACTION] = {SETTLE_OP_COMPENSATE, 0},
    [SETTLE_OP_COMPENSATE] = {0, SETTLE_OP_ACTION},
};

int settle_barrier_enter(settle_barrier *b, MDB_txn *txn, const char *gid,
			 uint32_t branch_id, int op, int *action)
{
	const struct barrier_rule *r;
	uint8_t k[BARRIER_KEY_MAX];
	size_t gl;
	size_t kl;
	int run = 1;
	int rv;

	if (b == NULL || txn == NULL || gid == NULL || action == NULL)
		return SETTLE_EINVAL;
	gl = strlen(gid);
	if (gl == 0 || gl > SETTLE_GID_MAX)
		return SETTLE_EINVAL;
	if (op != SETTLE_OP_TRY && op != SETTLE_OP_CONFIRM &&
	    op != SETTLE_OP_CANCEL && op != SETTLE_OP_ACTION &&
	    op != SETTLE_OP_COMPENSATE)
		return SETTLE_EINVAL;
	r = &rules[op];
	kl = make_key(k, gid, gl, branch_id, op);

	if (r->refuse != 0) {
		rv = has_row(b, txn, k, kl, r->refuse);
		if (rv < 0)
			return rv;
		if (rv > 0) {
			*action = SETTLE_BARRIER_REFUSE;
			return 0;
		}
	}
	rv = has_row(b, txn, k, kl, op);
	if (rv < 0)
		return rv;
	if (rv > 0) {
		*action = SETTLE_BARRIER_SKIP;
		return 0;
	}
	if (r->undoes != 0) {
		run = has_row(b, txn, k, kl, r->undoes);
		if (run < 0)
			return run;
	}
	rv = put_row(b, txn, k, kl, op);
	if (rv != 0)
		return rv;
	*action = run ? SETTLE_BARRIER_RUN : SETTLE_BARRIER_SKIP;
	return 0;
}

int settle_barrier_gc(settle_barrier *b, MDB_txn *txn, uint64_t older_than_ms,
		      size_t limit, size_t *removed)
{
	uint64_t now = settle_now_ms();
	uint64_t cutoff = now > older_than_ms ? now - older_than_ms : 0;
	MDB_cursor *cur;
	size_t n = 0;
	int rc;

	if (removed != NULL)
		*removed = 0;
	if (b == NULL || txn == NULL)
		return SETTLE_EINVAL;
	rc = mdb_cursor_open(txn, b->times, &cur);
	if (rc != 0)
		return settle_err_from_mdb(rc);
	while (limit == 0 || n < limit) {
		MDB_val tkey, tval;
		rc = mdb_cursor_get(cur, &tkey, &tval, MDB_FIRST);
		if (rc == MDB_NOTFOUND) {
			rc = 0;
			break;
		}
		if (rc != 0)
			break;
		if (tkey.mv_size < 8 + 6) {
			rc = MDB_CORRUPTED;
			break;
		}
		if (get_u64(tkey.mv_data) >= cutoff)
			break;
		MDB_val key = {tkey.mv_size - 8, (uint8_t *)tkey.mv_data + 8};
		rc = mdb_del(txn, b->rows, &key, NULL);
		if (rc != 0 && rc != MDB_NOTFOUND)
			break;
		rc = mdb_cursor_del(cur, 0);
		if (rc != 0)
			break;
		n++;
	}
	mdb_cursor_close(cur);
	if (removed != NULL)
		*removed = n;
	return settle_err_from_mdb(rc);
}

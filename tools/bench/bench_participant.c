/*
 * bench_participant.c — settle-bench's in-process participant for the tcc
 * and saga modes: libsettle's participant SDK on its own thread, with the
 * LMDB barrier and one small business write per call in a temporary
 * directory (removed at stop).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "settle_participant.h"

/* ---- The participant ---------------------------------------------------- */

/*
 * The business write: one small record per (gid, branch, op), inside the
 * barrier's txn, like a real participant reserving or moving funds.
 */
static int bench_write(void *data, const struct settle_branch *br, MDB_txn *txn,
		       char *err, size_t errlen)
{
	struct bench *b = data;
	char key[SETTLE_GID_BUFSIZE + 16];
	uint64_t val = (uint64_t)br->len;
	MDB_val k, v;
	int rc;

	atomic_fetch_add(&b->handler_calls, 1);
	/* A saga step told to fail does so before writing anything, like a
	 * bank refusing a debit. */
	if (br->op == SETTLE_OP_ACTION && br->len >= sizeof(BENCH_FAIL) - 1 &&
	    memcmp(br->payload, BENCH_FAIL, sizeof(BENCH_FAIL) - 1) == 0) {
		snprintf(err, errlen, "bench: injected failure");
		return SETTLE_EFAILURE;
	}
	if (txn == NULL)
		return 0;
	k.mv_size = (size_t)snprintf(key, sizeof(key), "%s/%" PRIu32 "/%d",
				     br->gid, br->branch_id, br->op);
	if (k.mv_size >= sizeof(key))
		k.mv_size = sizeof(key) - 1;
	k.mv_data = key;
	v.mv_size = sizeof(val);
	v.mv_data = &val;
	rc = mdb_put(txn, b->dbi, &k, &v, 0);
	if (rc != 0) {
		snprintf(err, errlen, "bench write: %s", mdb_strerror(rc));
		return SETTLE_ERETRY;
	}
	return 0;
}

int bench_participant_start(struct bench *b, struct bench_participant *pt,
			    const char *listen)
{
	struct settle_participant_config cfg = {0};
	MDB_txn *txn;
	int rc;

	snprintf(pt->dir, sizeof(pt->dir), "/tmp/settle-bench-part.XXXXXX");
	if (mkdtemp(pt->dir) == NULL) {
		fprintf(stderr, "settle-bench: mkdtemp: %s\n", strerror(errno));
		return -1;
	}
	if ((rc = mdb_env_create(&pt->env)) != 0)
		goto err_lmdb;
	mdb_env_set_maxdbs(pt->env, 4);
	/* Barrier rows are kept 7 days and the bench's own row per call for
	 * the run: about 1 GiB per million transactions, and a 10-minute run
	 * does several million. The file is sparse (WRITEMAP): only what is
	 * written takes disk. 1 GiB ended a 10-minute run at 3 minutes with
	 * MDB_MAP_FULL in the participant. */
	mdb_env_set_mapsize(pt->env, (size_t)64 << 30);
	/* The participant's own fsyncs are not what is measured: the
	 * coordinator's raft log is. NOSYNC keeps the participant out of
	 * the way, and WRITEMAP its page writes: on a machine shared with
	 * the cluster, the load generator's CPU is the cluster's loss
	 * (docs/BENCHMARKS.md says so). NORDAHEAD: no zero-filled
	 * readahead stalls as the file grows (storage/store.c). */
	rc = mdb_env_open(
	    pt->env, pt->dir,
	    MDB_NOSYNC | MDB_NOMETASYNC | MDB_WRITEMAP | MDB_NORDAHEAD, 0644);
	if (rc != 0)
		goto err_lmdb;
	if ((rc = mdb_txn_begin(pt->env, NULL, 0, &txn)) != 0)
		goto err_lmdb;
	rc = mdb_dbi_open(txn, "bench", MDB_CREATE, &b->dbi);
	if (rc != 0) {
		mdb_txn_abort(txn);
		goto err_lmdb;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		goto err_lmdb;

	cfg.listen = listen;
	cfg.env = pt->env;
	cfg.on_try = bench_write;
	cfg.on_confirm = bench_write;
	cfg.on_cancel = bench_write;
	cfg.on_action = bench_write;
	cfg.on_compensate = bench_write;
	cfg.data = b;
	rc = settle_participant_init(&cfg, &pt->p);
	if (rc != 0) {
		fprintf(stderr, "settle-bench: participant: %s\n",
			settle_strerror(rc));
		return -1;
	}
	if (b->tls.cert != NULL &&
	    settle_participant_set_tls(pt->p, &b->tls) != 0) {
		fprintf(stderr, "settle-bench: participant TLS: %s\n",
			settle_participant_errmsg(pt->p));
		return -1;
	}
	rc = settle_participant_start_thread(pt->p);
	if (rc != 0) {
		fprintf(stderr, "settle-bench: participant listen %s: %s\n",
			listen, settle_participant_errmsg(pt->p));
		return -1;
	}
	/* The coordinator calls the participant at the host it listens on;
	 * a wildcard address is no use to it, so loopback stands in. */
	{
		const char *colon = strrchr(listen, ':');
		int hl = colon ? (int)(colon - listen) : 0;
		if (hl == 0 || strncmp(listen, "0.0.0.0", (size_t)hl) == 0 ||
		    strncmp(listen, "[::]", (size_t)hl) == 0) {
			listen = "127.0.0.1:";
			hl = 9;
		}
		snprintf(b->participant, sizeof(b->participant), "%.*s:%d", hl,
			 listen, settle_participant_port(pt->p));
	}
	return 0;

err_lmdb:
	fprintf(stderr, "settle-bench: participant store in %s: %s\n", pt->dir,
		mdb_strerror(rc));
	return -1;
}

void bench_participant_stop(struct bench_participant *pt)
{
	char cmd[128];

	settle_participant_close(pt->p);
	if (pt->env)
		mdb_env_close(pt->env);
	if (pt->dir[0] && strchr(pt->dir, '\'') == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", pt->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "settle-bench: could not remove %s\n",
				pt->dir);
	}
}

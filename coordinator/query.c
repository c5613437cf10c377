/*
 * query.c — the read side of the client API: QUERY, LIST, XA_RECOVER and
 * STATUS, answered from this node's LMDB (all but STATUS on the ready
 * leader only).
 */
#include <stdlib.h>
#include <string.h>

#include "budget.h"
#include "clock.h"
#include "coord.h"
#include "dispatch_int.h"
#include "driver.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "role.h"
#include "waiters.h"
#include "wal/entry.h"
#include "wal/sm.h"
#include "xa.h"

#define LIST_DEFAULT 1000
#define LIST_MAX     10000

/* Whether a QUERY with wait_ms should wait: gid exists, is not final and
 * has no FAILED branch. Anything else (unknown gid, a read error) is
 * answered at once by coord_query_answer(), which reports it. */
static bool query_should_wait(struct coord *c, const char *gid)
{
	Settle__V1__TxRecord *tx = NULL;
	bool wait;

	if (store_tx_get(c->store, NULL, gid, &tx) != 0)
		return false;
	wait = !wal_tx_state_final(tx->state) && tx->failed == 0;
	settle__v1__tx_record__free_unpacked(tx, NULL);
	return wait;
}

void coord_do_query(struct coord *c, struct rpc_call *call, const uint8_t *b,
		    size_t n)
{
	Settle__V1__QueryRequest *req;

	req = settle__v1__query_request__unpack(NULL, n, b);
	if (req == NULL) {
		coord_fail(c, call, SETTLE_EINVAL, "invalid QueryRequest");
		return;
	}
	if (wal_gid_validate(req->gid) != 0) {
		coord_fail(c, call, SETTLE_EINVAL, "invalid gid");
		goto out;
	}
	if (!dispatch__owner_ok(c, call, req->gid, false))
		goto out;
	if (req->wait_ms > 0 && query_should_wait(c, req->gid) &&
	    coord_query_wait(c, call, req->gid, req->history, req->brief,
			     req->wait_ms) == 0)
		goto out;
	coord_query_answer(c, call, req->gid, req->history, req->brief);
out:
	settle__v1__query_request__free_unpacked(req, NULL);
}

struct list_filter {
	const struct coord *c;
	const Settle__V1__ListRequest *req;
	uint64_t now;
	const char *owner; /* dispatch__owner_filter(); NULL: all */
};

static bool list_keep(void *data, const Settle__V1__TxRecord *tx)
{
	struct list_filter *f = data;

	if (!dispatch__owns(f->owner, tx->owner))
		return false;
	if (f->req->older_than_ms != 0 &&
	    tx->created_ms + f->req->older_than_ms > f->now)
		return false;
	if (f->req->stuck_only && !coord_tx_stuck(f->c, tx, f->now))
		return false;
	return true;
}

void coord_do_list(struct coord *c, struct rpc_call *call, const uint8_t *b,
		   size_t n)
{
	Settle__V1__ListRequest *req;
	Settle__V1__ListResponse resp = SETTLE__V1__LIST_RESPONSE__INIT;
	Settle__V1__TxRecord **txs = NULL;
	Settle__V1__TxInfo **infos = NULL;
	struct list_filter f;
	char owner[WAL_OWNER_MAX + 1];
	size_t count = 0, done = 0;
	bool more = false;
	MDB_txn *txn;
	size_t limit;
	int rv;

	req = settle__v1__list_request__unpack(NULL, n, b);
	if (req == NULL) {
		coord_fail(c, call, SETTLE_EINVAL, "invalid ListRequest");
		return;
	}
	if (req->state != SETTLE__V1__TX_STATE__TX_STATE_UNSPECIFIED &&
	    protobuf_c_enum_descriptor_get_value(
		&settle__v1__tx_state__descriptor, req->state) == NULL) {
		coord_fail(c, call, SETTLE_EINVAL, "unknown state");
		goto out;
	}
	limit = req->limit == 0
		    ? LIST_DEFAULT
		    : (req->limit > LIST_MAX ? LIST_MAX : req->limit);
	f.c = c;
	f.req = req;
	f.now = settle_now_ms();
	f.owner = dispatch__owner_filter(c, call, owner, sizeof owner);
	rv = store_read_begin(c->store, &txn);
	if (rv != 0) {
		coord_fail(c, call, rv, store_errmsg(c->store));
		goto out;
	}
	rv = store_tx_list(c->store, txn, req->state, req->after_gid, limit,
			   list_keep, &f, &txs, &count, &more);
	if (rv == 0 && count > 0) {
		infos = calloc(count, sizeof *infos);
		if (infos == NULL)
			rv = SETTLE_ENOMEM;
	}
	for (; rv == 0 && done < count; done++) {
		rv = store_tx_info(c->store, txn, txs[done], true, false,
				   &infos[done]);
		if (rv == 0)
			infos[done]->stuck =
			    infos[done]->stuck ||
			    coord_tx_stuck(c, txs[done], f.now);
	}
	store_read_end(txn);
	if (rv != 0) {
		coord_fail(c, call, rv, store_errmsg(c->store));
	} else {
		resp.n_txs = count;
		resp.txs = infos;
		resp.more = more;
		rpc_call_reply(call, &resp.base);
	}
	for (size_t i = 0; i < done; i++)
		if (infos[i] != NULL)
			settle__v1__tx_info__free_unpacked(infos[i], NULL);
	free(infos);
	store_txs_free(txs, count);
out:
	settle__v1__list_request__free_unpacked(req, NULL);
}

/* XA_RECOVER: what a legacy TM must still decide (XA_PREPARED) or forget
 * (a remembered heuristic, also while an operator's heuristic decision is
 * still in phase 2: the TM must hear of it as soon as it recovers), among
 * the transactions begun with its xid. */
static bool xa_recover_keep(void *data, const Settle__V1__TxRecord *tx)
{
	if (!dispatch__owns(data, tx->owner))
		return false;
	if (tx->mode != SETTLE__V1__TX_MODE__XA || tx->xid.len == 0)
		return false;
	return tx->state == SETTLE__V1__TX_STATE__XA_PREPARED ||
	       tx->heuristic != SETTLE__V1__HEURISTIC__HEURISTIC_NONE;
}

void coord_do_xa_recover(struct coord *c, struct rpc_call *call,
			 const uint8_t *b, size_t n)
{
	Settle__V1__XaRecoverRequest *req;
	Settle__V1__XaRecoverResponse resp =
	    SETTLE__V1__XA_RECOVER_RESPONSE__INIT;
	Settle__V1__TxRecord **txs = NULL;
	Settle__V1__XaRecovered *rows = NULL, **ptrs = NULL;
	size_t count = 0, limit;
	char owner[WAL_OWNER_MAX + 1];
	bool more = false;
	int rv;

	req = settle__v1__xa_recover_request__unpack(NULL, n, b);
	if (req == NULL) {
		coord_fail(c, call, SETTLE_EINVAL, "invalid XaRecoverRequest");
		return;
	}
	if (req->after_gid[0] != '\0' &&
	    wal_gid_validate(req->after_gid) != 0) {
		coord_fail(c, call, SETTLE_EINVAL, "invalid after_gid");
		goto out;
	}
	limit = req->limit == 0
		    ? LIST_DEFAULT
		    : (req->limit > LIST_MAX ? LIST_MAX : req->limit);
	/* Every state, in gid order: the prepared ones and the final ones
	 * with a heuristic interleave, and paging is by gid. */
	rv = store_tx_list(
	    c->store, NULL, 0, req->after_gid, limit, xa_recover_keep,
	    (void *)dispatch__owner_filter(c, call, owner, sizeof owner), &txs,
	    &count, &more);
	if (rv != 0) {
		coord_fail(c, call, rv, store_errmsg(c->store));
		goto out;
	}
	if (count > 0) {
		rows = calloc(count, sizeof *rows);
		ptrs = calloc(count, sizeof *ptrs);
		if (rows == NULL || ptrs == NULL) {
			coord_fail(c, call, SETTLE_ENOMEM, NULL);
			goto out_free;
		}
	}
	/* The rows point into the records, which outlive the reply. */
	for (size_t i = 0; i < count; i++) {
		settle__v1__xa_recovered__init(&rows[i]);
		rows[i].gid = txs[i]->gid;
		rows[i].xid = txs[i]->xid;
		rows[i].state = txs[i]->state;
		rows[i].heuristic = txs[i]->heuristic;
		ptrs[i] = &rows[i];
	}
	resp.n_txs = count;
	resp.txs = ptrs;
	resp.more = more;
	rpc_call_reply(call, &resp.base);
out_free:
	free(ptrs);
	free(rows);
	store_txs_free(txs, count);
out:
	settle__v1__xa_recover_request__free_unpacked(req, NULL);
}

static const char *role_name(int state)
{
	switch (state) {
	case RAFT_LEADER:
		return "leader";
	case RAFT_FOLLOWER:
		return "follower";
	case RAFT_CANDIDATE:
		return "candidate";
	}
	return "unavailable";
}

/* A filter that keeps nothing: it counts the heuristics it sees. */
static bool count_heuristic(void *data, const Settle__V1__TxRecord *tx)
{
	uint64_t *n = data;

	if (tx->heuristic != SETTLE__V1__HEURISTIC__HEURISTIC_NONE)
		(*n)++;
	return false;
}

/* Transactions whose heuristic is not forgotten, any state, recounted
 * only when stale (see coord.h: the scan reads every kept record). A
 * failed scan keeps the previous count. */
static uint64_t heuristic_txs(struct coord *c)
{
	uint64_t applied = c->raft_started ? raft_last_applied(&c->raft) : 0;
	uint64_t now = settle_mono_ms();
	Settle__V1__TxRecord **txs = NULL;
	size_t n = 0;
	uint64_t count = 0;

	if (c->heur.valid && (c->heur.applied == applied ||
			      now - c->heur.at_ms < COORD_HEUR_RECOUNT_MS))
		return c->heur.count;
	if (store_tx_list(c->store, NULL, 0, NULL, 1, count_heuristic, &count,
			  &txs, &n, NULL) != 0) {
		settle_log(SETTLE_LOG_WARN, "status", "counting heuristics: %s",
			   store_errmsg(c->store));
		return c->heur.count;
	}
	store_txs_free(txs, n);
	c->heur.valid = true;
	c->heur.count = count;
	c->heur.applied = applied;
	c->heur.at_ms = now;
	return count;
}

uint64_t coord_stuck_count(struct coord *c, uint64_t now, uint64_t *active,
			   uint64_t *finished)
{
	struct store_counts counts;
	uint64_t stuck = 0;

	*active = *finished = 0;
	if (store_counts_get(c->store, NULL, &counts) == 0) {
		*active = counts.active;
		*finished = counts.finished;
		stuck = counts.stuck;
	}
	/* Transactions past the age threshold count as stuck too. */
	if (*active > stuck) {
		struct list_filter f;
		Settle__V1__ListRequest lr = SETTLE__V1__LIST_REQUEST__INIT;
		Settle__V1__TxRecord **txs = NULL;
		size_t n = 0;

		stuck = 0;
		lr.stuck_only = true;
		f.c = c;
		f.req = &lr;
		f.now = now;
		f.owner = NULL;
		/* Every unfinished state: this count replaces the store's. */
		static const int unfinished[] = {
		    SETTLE__V1__TX_STATE__ACTIVE,
		    SETTLE__V1__TX_STATE__COMMITTING,
		    SETTLE__V1__TX_STATE__ROLLING_BACK,
		    SETTLE__V1__TX_STATE__SAGA_RUNNING,
		    SETTLE__V1__TX_STATE__SAGA_COMPENSATING,
		    SETTLE__V1__TX_STATE__XA_PREPARED};

		for (size_t i = 0; i < sizeof unfinished / sizeof *unfinished;
		     i++) {
			if (store_tx_list(c->store, NULL, unfinished[i], NULL,
					  LIST_MAX, list_keep, &f, &txs, &n,
					  NULL) == 0) {
				stuck += n;
				store_txs_free(txs, n);
			}
		}
	}
	return stuck;
}

void coord_do_status(struct coord *c, struct rpc_call *call)
{
	Settle__V1__StatusResponse resp = SETTLE__V1__STATUS_RESPONSE__INIT;
	struct coord_xa_stats xa;
	struct coord_metrics_summary sum;
	uint64_t le[COORD_METRICS_BUCKETS + 1];
	uint64_t now = settle_now_ms();
	bool refusing;

	resp.node_id = c->cfg.id;
	resp.address = c->cfg.raft;
	resp.client_endpoint = c->cfg.listen;
	resp.role = (char *)role_name(c->raft_started && !c->closing
					  ? raft_state(&c->raft)
					  : RAFT_UNAVAILABLE);
	resp.term = c->raft.current_term;
	resp.last_index = raft_last_index(&c->raft);
	resp.applied_index = raft_last_applied(&c->raft);
	resp.leader = (char *)coord_leader_endpoint(c);
	resp.stuck = coord_stuck_count(c, now, &resp.active, &resp.finished);
	resp.uptime_ms = settle_mono_ms() - c->started_ms;
	coord_xa_stats_get(c, &xa);
	resp.xa_calls = xa.calls;
	resp.xa_scans = xa.scans;
	resp.xa_recovered_commit = xa.recovered_commit;
	resp.xa_recovered_rollback = xa.recovered_rollback;
	resp.xa_heuristic_results = xa.heuristics;
	resp.heuristic_txs = heuristic_txs(c);
	coord_budget_status(c, &resp.store_used_bytes, &resp.store_budget_bytes,
			    &refusing);
	resp.store_refusing = refusing;
	resp.clock_offset_known = coord_clock_offset(c, &resp.clock_offset_ms);
	resp.feature_level = c->cfg.feature_level;
	resp.cluster_feature_level = fsm_level(&c->fsm);
	coord_metrics_summarize(&c->metrics, &sum);
	resp.txs_begun = sum.begun;
	resp.txs_committed = sum.committed;
	resp.txs_rolled_back = sum.rolled_back;
	resp.txs_failed = sum.failed;
	resp.ready = coord_metrics_ready(&c->metrics) == COORD_READY;
	for (size_t i = 0; i <= COORD_METRICS_BUCKETS; i++)
		le[i] = coord_metrics_bucket_us(i);
	resp.n_decision_bucket_counts = COORD_METRICS_BUCKETS + 1;
	resp.decision_bucket_counts = sum.decision;
	resp.n_decision_bucket_le_us = COORD_METRICS_BUCKETS + 1;
	resp.decision_bucket_le_us = le;
	rpc_call_reply(call, &resp.base);
}

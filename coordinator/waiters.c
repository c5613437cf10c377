/*
 * waiters.c — the answer stage (waiters.h): calls answered from the store,
 * at once (errors, a QUERY, a decision) or once their transaction moves.
 *
 * The leader holds a Commit or Rollback with wait (until phase 2 ends), a
 * Query with wait_ms (until the transaction is final or stuck), and calls
 * whose proposal lost leadership (until a new leader can be named). Each
 * has a timer for the wait it asked for. They sit on one doubly linked list
 * and in an index by a hash of their gid, so a transaction's change finds
 * its own among thousands.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "error.h"
#include "log.h"
#include "role.h"
#include "waiters.h"
#include "wal/entry.h"
#include "wal/sm.h"

struct coord_waiter {
	struct coord_waiter *next, *prev;   /* c->waiters */
	struct coord_waiter *hnext, *hprev; /* c->waiter_index[bucket] */
	size_t bucket;
	struct coord *c;
	struct rpc_call *call;
	uv_timer_t timer;
	char gid[WAL_GID_MAX + 1];
	bool query;   /* a QUERY with wait_ms, else Commit/Rollback */
	bool history; /* query: include the history */
	bool brief;   /* query: QueryRequest.brief */
	/* This node stopped leading while the call was held: it is answered
	 * NOT_LEADER with the new leader once one is known (a node that just
	 * stepped down knows none until the new leader's first heartbeat),
	 * or, none known by its timer, UNAVAILABLE. */
	bool lost;
};

/* ---- Answers now --------------------------------------------------------- */

void coord_fail(struct coord *c, struct rpc_call *call, int err,
		const char *msg)
{
	const char *leader = NULL;

	if (err == SETTLE_ENOTLEADER) {
		leader = coord_leader_endpoint(c);
		if (msg == NULL)
			msg = leader[0] != '\0' ? "not the leader; see leader"
						: "no leader yet; retry";
		if (leader[0] == '\0')
			err = SETTLE_EUNAVAIL;
	}
	rpc_call_fail(call, err, msg != NULL ? msg : settle_strerror(err),
		      leader);
}

bool coord_tx_stuck(const struct coord *c, const Settle__V1__TxRecord *tx,
		    uint64_t now)
{
	if (wal_tx_state_final(tx->state))
		return false;
	if (tx->failed > 0)
		return true; /* a branch failed: waits for an operator */
	/* Prepared and waiting for its TM's decision (due 0 by design when
	 * it has an xid): in doubt for long is worth an operator's look. */
	if (tx->state == SETTLE__V1__TX_STATE__XA_PREPARED)
		return now > tx->updated_ms + c->cfg.stuck_after_ms;
	if (tx->due_ms == 0)
		return true; /* nothing will move it: waits for an operator */
	if (tx->state == SETTLE__V1__TX_STATE__ACTIVE)
		return now > tx->deadline_ms + c->cfg.stuck_after_ms;
	return now > tx->created_ms + c->cfg.stuck_after_ms;
}

void coord_query_answer(struct coord *c, struct rpc_call *call, const char *gid,
			bool history, bool brief)
{
	Settle__V1__QueryResponse resp = SETTLE__V1__QUERY_RESPONSE__INIT;
	Settle__V1__TxRecord *tx = NULL;
	Settle__V1__TxInfo *info = NULL;
	MDB_txn *txn;
	int rv;

	rv = store_read_begin(c->store, &txn);
	if (rv != 0) {
		coord_fail(c, call, rv, store_errmsg(c->store));
		return;
	}
	rv = store_tx_get(c->store, txn, gid, &tx);
	if (rv == 0)
		rv = store_tx_info(c->store, txn, tx, !brief || tx->failed > 0,
				   history && !brief, &info);
	store_read_end(txn);
	if (rv != 0) {
		coord_fail(c, call, rv,
			   rv == SETTLE_ENOTFOUND ? "unknown gid"
						  : store_errmsg(c->store));
		goto out;
	}
	info->stuck = info->stuck || coord_tx_stuck(c, tx, settle_now_ms());
	resp.tx = info;
	rpc_call_reply(call, &resp.base);
out:
	if (info != NULL)
		settle__v1__tx_info__free_unpacked(info, NULL);
	if (tx != NULL)
		settle__v1__tx_record__free_unpacked(tx, NULL);
}

/* ---- Waiters: Commit/Rollback and Query with wait ---------------------- */

void coord_answer_decision(struct coord *c, struct rpc_call *call,
			   const char *gid)
{
	Settle__V1__DecisionResponse resp = SETTLE__V1__DECISION_RESPONSE__INIT;
	Settle__V1__TxRecord *tx = NULL;
	int rv;

	rv = store_tx_get(c->store, NULL, gid, &tx);
	if (rv != 0) {
		/* Collected by GC between decision and answer: it ended. */
		coord_fail(c, call, rv, "transaction no longer known");
		return;
	}
	resp.state = tx->state;
	resp.finished = wal_tx_state_final(tx->state);
	/* A TM's decision after an operator's heuristic one hears it. */
	resp.heuristic = tx->heuristic;
	rpc_call_reply(call, &resp.base);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

static void waiter_closed(uv_handle_t *h)
{
	free(h->data);
}

/* The bucket of gid in c->waiter_index (FNV-1a). */
static size_t waiter_bucket(const char *gid)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)gid; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % COORD_WAITER_BUCKETS;
}

/* Out of both lists (O(1): a change used to walk every waiter to find
 * its own, and an unlink to find its predecessor), timer closed, freed. */
static void waiter_unlink(struct coord *c, struct coord_waiter *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		c->waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	if (w->hprev != NULL)
		w->hprev->hnext = w->hnext;
	else
		c->waiter_index[w->bucket] = w->hnext;
	if (w->hnext != NULL)
		w->hnext->hprev = w->hprev;
	if (w->lost)
		c->lost_waiters--;
	uv_timer_stop(&w->timer);
	w->timer.data = w;
	uv_close((uv_handle_t *)&w->timer, waiter_closed);
}

/*
 * Answer a held call of a node that lost leadership: NOT_LEADER naming the
 * new leader, as for any call a follower gets. While no leader is known
 * the call is kept (false), unless give_up: then UNAVAILABLE.
 */
static bool waiter_redirect(struct coord *c, struct coord_waiter *w,
			    bool give_up)
{
	const char *leader = coord_leader_endpoint(c);

	if (leader[0] == '\0' && !give_up)
		return false;
	coord_fail(c, w->call, SETTLE_ENOTLEADER,
		   leader[0] != '\0'
		       ? NULL
		       : "leadership moved and no leader is known "
			 "yet; retry");
	waiter_unlink(c, w);
	return true;
}

void coord_waiter_set_lost(struct coord *c, struct coord_waiter *w)
{
	if (!w->lost) {
		w->lost = true;
		c->lost_waiters++;
	}
}

static void waiter_timeout(uv_timer_t *t)
{
	struct coord_waiter *w = t->data;
	struct coord *c = w->c;

	if (w->lost) {
		waiter_redirect(c, w, true);
		return;
	}
	/* Not an error: the decision is durable, phase 2 goes on (or, for
	 * a query, the transaction is as it is now). */
	if (w->query)
		coord_query_answer(c, w->call, w->gid, w->history, w->brief);
	else
		coord_answer_decision(c, w->call, w->gid);
	waiter_unlink(c, w);
}

struct coord_waiter *coord_waiter_add(struct coord *c, struct rpc_call *call,
				      const char *gid, uint32_t wait_ms)
{
	struct coord_waiter *w = calloc(1, sizeof *w);

	if (w == NULL)
		return NULL;
	w->c = c;
	w->call = call;
	wal_gid_copy(w->gid, gid);
	uv_timer_init(c->loop, &w->timer);
	w->timer.data = w;
	uv_timer_start(&w->timer, waiter_timeout, wait_ms, 0);
	w->next = c->waiters;
	if (w->next != NULL)
		w->next->prev = w;
	c->waiters = w;
	w->bucket = waiter_bucket(w->gid);
	w->hnext = c->waiter_index[w->bucket];
	if (w->hnext != NULL)
		w->hnext->hprev = w;
	c->waiter_index[w->bucket] = w;
	return w;
}

int coord_query_wait(struct coord *c, struct rpc_call *call, const char *gid,
		     bool history, bool brief, uint32_t wait_ms)
{
	struct coord_waiter *w;

	w = coord_waiter_add(c, call, gid,
			     wait_ms > COORD_WAIT_MAX_MS ? COORD_WAIT_MAX_MS
							 : wait_ms);
	if (w == NULL)
		return SETTLE_ENOMEM;
	w->query = true;
	w->history = history;
	w->brief = brief;
	return 0;
}

void coord_waiters_notify(struct coord *c, const Settle__V1__TxRecord *tx)
{
	struct coord_waiter *w;
	bool final = wal_tx_state_final(tx->state);
	/* A query also wakes when the transaction waits for an operator:
	 * waiting on would only hide that from its caller. */
	bool stuck = tx->failed > 0;

	if (!final && !stuck)
		return;
	w = c->waiter_index[waiter_bucket(tx->gid)];
	while (w != NULL) {
		struct coord_waiter *next = w->hnext;

		if (w->lost || strcmp(w->gid, tx->gid) != 0 ||
		    (!final && !w->query)) {
			w = next;
			continue;
		}
		if (w->query) {
			coord_query_answer(c, w->call, w->gid, w->history,
					   w->brief);
		} else {
			Settle__V1__DecisionResponse resp =
			    SETTLE__V1__DECISION_RESPONSE__INIT;

			resp.state = tx->state;
			resp.finished = true;
			resp.heuristic = tx->heuristic;
			rpc_call_reply(w->call, &resp.base);
		}
		waiter_unlink(c, w);
		w = next;
	}
}

void coord_waiters_flush(struct coord *c, int err)
{
	if (err == SETTLE_ENOTLEADER) {
		/* Each keeps its timer: the wait it asked for bounds how
		 * long it may wait for a leader to be named. */
		for (struct coord_waiter *w = c->waiters; w != NULL;
		     w = w->next)
			coord_waiter_set_lost(c, w);
		coord_waiters_redirect(c);
		return;
	}
	while (c->waiters != NULL) {
		struct coord_waiter *w = c->waiters;

		if (w->lost) {
			waiter_redirect(c, w, true);
			continue;
		}
		if (w->query)
			coord_query_answer(c, w->call, w->gid, w->history,
					   w->brief);
		else
			coord_answer_decision(c, w->call, w->gid);
		waiter_unlink(c, w);
	}
}

void coord_waiters_redirect(struct coord *c)
{
	struct coord_waiter *w = c->waiters;

	if (c->lost_waiters == 0 || coord_leader_endpoint(c)[0] == '\0')
		return;
	while (w != NULL) {
		struct coord_waiter *next = w->next;

		if (w->lost)
			waiter_redirect(c, w, false);
		w = next;
	}
}

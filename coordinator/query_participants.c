/*
 * query_participants.c — PARTICIPANTS (settlectl participants): each
 * participant endpoint the leader calls, with its calls and circuit
 * breaker (the --metrics counters, metrics.h) and the branches waiting
 * there (read from the store: every unfinished transaction in phase two
 * or a saga, up to PARTICIPANTS_TXS_MAX of them).
 */
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "dispatch_int.h"
#include "error.h"
#include "metrics.h"
#include "waiters.h"

#define PARTICIPANTS_TXS_MAX 10000

struct eps {
	Settle__V1__ParticipantInfo *v;
	size_t n, cap;
	bool oom;
};

/* The entry of endpoint, added when new; NULL when out of memory. */
static Settle__V1__ParticipantInfo *ep_of(struct eps *e, const char *endpoint)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->v[i].endpoint, endpoint) == 0)
			return &e->v[i];
	if (e->n == e->cap) {
		size_t cap = e->cap != 0 ? e->cap * 2 : 16;
		void *v = realloc(e->v, cap * sizeof *e->v);

		if (v == NULL) {
			e->oom = true;
			return NULL;
		}
		e->v = v;
		e->cap = cap;
	}
	settle__v1__participant_info__init(&e->v[e->n]);
	e->v[e->n].endpoint = strdup(endpoint);
	if (e->v[e->n].endpoint == NULL) {
		e->oom = true;
		return NULL;
	}
	return &e->v[e->n++];
}

/* The leader's counters, endpoint by endpoint ("other" past the 64th). */
static void from_metrics(struct eps *e, const struct coord_metrics *m)
{
	size_t n = atomic_load_explicit((_Atomic size_t *)&m->n_eps,
					memory_order_acquire);

	for (size_t i = 0; i < n; i++) {
		const struct coord_metrics_ep *me = &m->eps[i];
		Settle__V1__ParticipantInfo *p = ep_of(e, me->name);
		uint64_t count = 0, sum = 0;

		if (p == NULL)
			return;
		for (int k = 0; k < COORD_METRICS_CALL_KINDS; k++) {
			p->calls_ok += atomic_load(&me->calls[k][0]);
			p->calls_failure += atomic_load(&me->calls[k][1]);
			p->calls_error += atomic_load(&me->calls[k][2]);
			count += atomic_load(&me->latency[k].count);
			sum += atomic_load(&me->latency[k].sum_us);
		}
		p->deferred = atomic_load(&me->deferred);
		p->breaker = (uint32_t)atomic_load(&me->breaker);
		p->breaker_opens = atomic_load(&me->opens);
		p->mean_call_ms =
		    count != 0 ? (double)sum / (double)count / 1000.0 : 0;
	}
}

/* A branch due a call from the leader (or FAILED, waiting for an
 * operator). */
static bool waiting(int state)
{
	switch (state) {
	case SETTLE__V1__BRANCH_STATE__CONFIRMING:
	case SETTLE__V1__BRANCH_STATE__CANCELLING:
	case SETTLE__V1__BRANCH_STATE__STEP_ACTING:
	case SETTLE__V1__BRANCH_STATE__STEP_COMPENSATING:
		return true;
	default:
		return false;
	}
}

/* Count the branches of transactions in state at their endpoints; false
 * when the budget of transactions ran out. */
static bool count_state(struct coord *c, struct eps *e, int state,
			size_t *budget)
{
	Settle__V1__TxRecord **txs = NULL;
	size_t n = 0;
	bool more = false;

	if (*budget == 0)
		return false;
	if (store_tx_list(c->store, NULL, state, NULL, *budget, NULL, NULL,
			  &txs, &n, &more) != 0)
		return true;
	*budget -= n;
	for (size_t i = 0; i < n && !e->oom; i++) {
		Settle__V1__BranchRecord **bs = NULL;
		size_t nb = 0;

		if (store_branches_list(c->store, NULL, txs[i]->gid, &bs,
					&nb) != 0)
			continue;
		for (size_t j = 0; j < nb; j++) {
			const Settle__V1__BranchRecord *b = bs[j];
			bool failed =
			    b->state == SETTLE__V1__BRANCH_STATE__FAILED;
			Settle__V1__ParticipantInfo *p;

			if (b->endpoint == NULL || b->endpoint[0] == '\0' ||
			    (!failed && !waiting((int)b->state)))
				continue;
			p = ep_of(e, b->endpoint);
			if (p == NULL)
				break;
			p->waiting += !failed;
			p->failed += failed;
		}
		store_branches_free(bs, nb);
	}
	store_txs_free(txs, n);
	return !more;
}

static int by_endpoint(const void *a, const void *b)
{
	return strcmp(((const Settle__V1__ParticipantInfo *)a)->endpoint,
		      ((const Settle__V1__ParticipantInfo *)b)->endpoint);
}

void coord_do_participants(struct coord *c, struct rpc_call *call)
{
	static const int states[] = {
	    SETTLE__V1__TX_STATE__COMMITTING,
	    SETTLE__V1__TX_STATE__ROLLING_BACK,
	    SETTLE__V1__TX_STATE__SAGA_RUNNING,
	    SETTLE__V1__TX_STATE__SAGA_COMPENSATING,
	};
	Settle__V1__ParticipantsResponse resp =
	    SETTLE__V1__PARTICIPANTS_RESPONSE__INIT;
	Settle__V1__ParticipantInfo **ptrs = NULL;
	struct eps e = {0};
	size_t budget = PARTICIPANTS_TXS_MAX;

	from_metrics(&e, &c->metrics);
	for (size_t i = 0; i < sizeof states / sizeof *states; i++)
		resp.partial |= !count_state(c, &e, states[i], &budget);
	if (!e.oom && e.n > 0)
		ptrs = calloc(e.n, sizeof *ptrs);
	if (e.oom || (e.n > 0 && ptrs == NULL)) {
		coord_fail(c, call, SETTLE_ENOMEM, NULL);
		goto out;
	}
	qsort(e.v, e.n, sizeof *e.v, by_endpoint);
	for (size_t i = 0; i < e.n; i++)
		ptrs[i] = &e.v[i];
	resp.n_participants = e.n;
	resp.participants = ptrs;
	rpc_call_reply(call, &resp.base);
out:
	for (size_t i = 0; i < e.n; i++)
		free(e.v[i].endpoint);
	free(e.v);
	free(ptrs);
}

/*
 * metrics.c — counting (the loop thread) and the Prometheus text a scrape
 * reads (any thread); see metrics.h.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "metrics.h"
#include "wal/sm.h"

#define RELAXED memory_order_relaxed

/* Bucket bounds in microseconds; the text says them in seconds. */
static const uint64_t bucket_us[COORD_METRICS_BUCKETS] = {
    1000,   2500,    5000,    10000,   25000,	 50000,	   100000,  250000,
    500000, 1000000, 2500000, 5000000, 10000000, 30000000, 60000000};

static const char *const mode_names[COORD_METRICS_MODES] = {"unknown", "tcc",
							    "saga", "xa"};
static const char *const kind_names[COORD_METRICS_CALL_KINDS] = {
    "confirm", "cancel", "action", "compensate"};
static const char *const outcome_names[COORD_METRICS_OUTCOMES] = {
    "ok", "failure", "error"};

static void add(coord_counter *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, RELAXED);
}

static uint64_t get(const coord_counter *c)
{
	return atomic_load_explicit((coord_counter *)c, RELAXED);
}

int coord_metrics_init(struct coord_metrics *m)
{
	memset(m, 0, sizeof *m);
	m->decided = calloc(COORD_METRICS_DECIDED, sizeof *m->decided);
	if (m->decided == NULL)
		return SETTLE_ENOMEM;
	snprintf(m->eps[COORD_METRICS_ENDPOINTS].name,
		 sizeof m->eps[COORD_METRICS_ENDPOINTS].name, "other");
	return 0;
}

void coord_metrics_close(struct coord_metrics *m)
{
	free(m->decided);
	m->decided = NULL;
}

void coord_metrics_observe(struct coord_hist *h, uint64_t us)
{
	size_t i = 0;

	while (i < COORD_METRICS_BUCKETS && us > bucket_us[i])
		i++;
	add(&h->le[i], 1);
	add(&h->sum_us, us);
	add(&h->count, 1);
}

/* ---- Decision times ---------------------------------------------------------
 * Linear probing keyed by FNV-1a of the gid (never 0). A full table (3/4)
 * is emptied: the decisions in it lose their decision-to-done sample
 * (counted in decided_lost), nothing else. */

static uint64_t gid_key(const char *gid)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (const unsigned char *p = (const unsigned char *)gid; *p; p++)
		h = (h ^ *p) * 0x100000001b3ull;
	return h != 0 ? h : 1;
}

static void decided_put(struct coord_metrics *m, const char *gid, uint64_t ms)
{
	uint64_t key = gid_key(gid);
	size_t mask = COORD_METRICS_DECIDED - 1, i;

	if (m->decided == NULL)
		return;
	if (m->n_decided >= COORD_METRICS_DECIDED / 4 * 3) {
		add(&m->decided_lost, m->n_decided);
		memset(m->decided, 0,
		       COORD_METRICS_DECIDED * sizeof *m->decided);
		m->n_decided = 0;
	}
	for (i = key & mask; m->decided[i].key != 0; i = (i + 1) & mask)
		if (m->decided[i].key == key)
			break;
	m->n_decided += m->decided[i].key == 0;
	m->decided[i].key = key;
	m->decided[i].ms = ms;
}

/* The decision time of gid, taken out of the table; false if unknown. */
static bool decided_take(struct coord_metrics *m, const char *gid, uint64_t *ms)
{
	uint64_t key = gid_key(gid);
	size_t mask = COORD_METRICS_DECIDED - 1, i, j;

	if (m->decided == NULL)
		return false;
	for (i = key & mask; m->decided[i].key != key; i = (i + 1) & mask)
		if (m->decided[i].key == 0)
			return false;
	*ms = m->decided[i].ms;
	/* Backward-shift deletion keeps every probe chain whole. */
	for (j = (i + 1) & mask; m->decided[j].key != 0; j = (j + 1) & mask) {
		size_t home = m->decided[j].key & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->decided[i] = m->decided[j];
			i = j;
		}
	}
	m->decided[i].key = 0;
	m->n_decided--;
	return true;
}

/* ---- Transactions -----------------------------------------------------------
 */

/* Still undecided: the initiator (TCC, XA) or the steps (saga) may go
 * either way. */
static bool is_open(int state)
{
	return state == SETTLE__V1__TX_STATE__ACTIVE ||
	       state == SETTLE__V1__TX_STATE__XA_PREPARED ||
	       state == SETTLE__V1__TX_STATE__SAGA_RUNNING;
}

static uint64_t ms_to_us(uint64_t later, uint64_t earlier)
{
	return later > earlier ? (later - earlier) * 1000 : 0;
}

void coord_metrics_tx(struct coord_metrics *m, const Settle__V1__TxRecord *tx,
		      const struct fsm_was *was)
{
	int mode = tx->mode < COORD_METRICS_MODES ? (int)tx->mode : 0;
	int state = (int)tx->state;
	bool decided =
	    (was->state == 0 || is_open(was->state)) && !is_open(state);

	if (was->state == 0)
		add(&m->begun[mode], 1);
	if (decided)
		coord_metrics_observe(&m->to_decision[mode],
				      ms_to_us(tx->updated_ms, tx->created_ms));
	if (tx->failed > 0 && was->failed == 0)
		add(&m->failed[mode], 1);
	if (wal_tx_state_final(state) && !wal_tx_state_final(was->state)) {
		uint64_t at = tx->updated_ms;

		if (state == SETTLE__V1__TX_STATE__COMMITTED ||
		    state == SETTLE__V1__TX_STATE__SAGA_SUCCEEDED)
			add(&m->committed[mode], 1);
		else
			add(&m->rolled_back[mode], 1);
		/* Decided by this very command: done at once. */
		if (decided || decided_take(m, tx->gid, &at))
			coord_metrics_observe(&m->to_done[mode],
					      ms_to_us(tx->finished_ms != 0
							   ? tx->finished_ms
							   : tx->updated_ms,
						       at));
	} else if (decided) {
		decided_put(m, tx->gid, tx->updated_ms);
	}
}

/* ---- Participant calls ------------------------------------------------------
 */

size_t coord_metrics_endpoint(struct coord_metrics *m, const char *endpoint)
{
	size_t n = atomic_load_explicit(&m->n_eps, RELAXED);

	for (size_t i = 0; i < n; i++)
		if (strcmp(m->eps[i].name, endpoint) == 0)
			return i;
	if (n == COORD_METRICS_ENDPOINTS)
		return COORD_METRICS_ENDPOINTS;
	snprintf(m->eps[n].name, sizeof m->eps[n].name, "%s", endpoint);
	/* The name is whole before a scrape may read it. */
	atomic_store_explicit(&m->n_eps, n + 1, memory_order_release);
	return n;
}

void coord_metrics_call(struct coord_metrics *m, size_t slot, int kind,
			int outcome, uint64_t us)
{
	struct coord_metrics_ep *ep;

	if (slot > COORD_METRICS_ENDPOINTS || kind < 0 ||
	    kind >= COORD_METRICS_CALL_KINDS || outcome < 0 ||
	    outcome >= COORD_METRICS_OUTCOMES)
		return;
	ep = &m->eps[slot];
	add(&ep->calls[kind][outcome], 1);
	coord_metrics_observe(&ep->latency[kind], us);
	if (outcome == 2)
		add(&m->retries, 1);
}

void coord_metrics_snapshot(struct coord_metrics *m, uint64_t index,
			    uint64_t bytes, uint64_t us)
{
	add(&m->snapshots, 1);
	atomic_store_explicit(&m->snapshot_index, index, RELAXED);
	atomic_store_explicit(&m->snapshot_bytes, bytes, RELAXED);
	atomic_store_explicit(&m->snapshot_last_us, us, RELAXED);
}

void coord_metrics_breaker(struct coord_metrics *m, size_t slot, int state,
			   bool opened)
{
	if (slot > COORD_METRICS_ENDPOINTS)
		return;
	atomic_store_explicit(&m->eps[slot].breaker, (uint64_t)state, RELAXED);
	if (opened)
		add(&m->eps[slot].opens, 1);
}

void coord_metrics_deferred(struct coord_metrics *m, size_t slot)
{
	if (slot <= COORD_METRICS_ENDPOINTS)
		add(&m->eps[slot].deferred, 1);
}

void coord_metrics_summarize(const struct coord_metrics *m,
			     struct coord_metrics_summary *out)
{
	memset(out, 0, sizeof *out);
	for (int i = 1; i < COORD_METRICS_MODES; i++) {
		out->begun += get(&m->begun[i]);
		out->committed += get(&m->committed[i]);
		out->rolled_back += get(&m->rolled_back[i]);
		out->failed += get(&m->failed[i]);
		for (size_t b = 0; b <= COORD_METRICS_BUCKETS; b++)
			out->decision[b] += get(&m->to_decision[i].le[b]);
	}
}

uint64_t coord_metrics_bucket_us(size_t i)
{
	return i < COORD_METRICS_BUCKETS ? bucket_us[i] : 0;
}

/* ---- Readiness and health
 * ----------------------------------------------------
 */

int coord_metrics_ready(const struct coord_metrics *m)
{
	return atomic_load_explicit((_Atomic int *)&m->not_ready, RELAXED);
}

const char *coord_metrics_not_ready_text(int why)
{
	switch (why) {
	case COORD_READY:
		return "ready";
	case COORD_NOT_READY_STARTING:
		return "starting";
	case COORD_NOT_READY_STOPPING:
		return "stopping";
	case COORD_NOT_READY_NO_LEADER:
		return "no leader known: not part of a quorum";
	case COORD_NOT_READY_BARRIER:
		return "a new leader not serving yet";
	case COORD_NOT_READY_BEHIND:
		return "applying committed entries";
	case COORD_NOT_READY_NOT_MEMBER:
		return "not a member of the cluster";
	default:
		return "not ready";
	}
}

bool coord_metrics_alive(const struct coord_metrics *m, uint64_t now_ms)
{
	uint64_t beat = get(&m->beat_ms);

	return beat != 0 && now_ms - beat <= COORD_HEALTH_STALL_MS;
}

/* ---- Text -------------------------------------------------------------------
 */

struct text {
	char *buf;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t,
						      const char *fmt, ...)
{
	va_list ap;
	int n;

	if (t->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if ((size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap * 2 + (size_t)n;
		char *b = realloc(t->buf, cap);

		if (b == NULL) {
			t->oom = true;
			return;
		}
		t->buf = b;
		t->cap = cap;
	}
}

static void head(struct text *t, const char *name, const char *type,
		 const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value as the text format wants it: \ " and newline escaped. */
static const char *label(const char *v, char *buf, size_t len)
{
	size_t o = 0;

	for (; *v != '\0' && o + 3 < len; v++) {
		if (*v == '\\' || *v == '"') {
			buf[o++] = '\\';
			buf[o++] = *v;
		} else if (*v == '\n') {
			buf[o++] = '\\';
			buf[o++] = 'n';
		} else {
			buf[o++] = *v;
		}
	}
	buf[o] = '\0';
	return buf;
}

static void hist(struct text *t, const char *name, const char *labels,
		 const struct coord_hist *h)
{
	const char *sep = labels[0] != '\0' ? "," : "";
	uint64_t cum = 0;

	for (size_t i = 0; i < COORD_METRICS_BUCKETS; i++) {
		cum += get(&h->le[i]);
		put(t, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
		    (double)bucket_us[i] / 1e6, (unsigned long long)cum);
	}
	cum += get(&h->le[COORD_METRICS_BUCKETS]);
	put(t, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
	    (unsigned long long)cum);
	if (labels[0] != '\0') {
		put(t, "%s_sum{%s} %.6f\n", name, labels,
		    (double)get(&h->sum_us) / 1e6);
		put(t, "%s_count{%s} %llu\n", name, labels,
		    (unsigned long long)cum);
	} else {
		put(t, "%s_sum %.6f\n", name, (double)get(&h->sum_us) / 1e6);
		put(t, "%s_count %llu\n", name, (unsigned long long)cum);
	}
}

static void per_mode(struct text *t, const char *name, const char *help,
		     const coord_counter *c)
{
	head(t, name, "counter", help);
	for (int i = 1; i < COORD_METRICS_MODES; i++)
		put(t, "%s{mode=\"%s\"} %llu\n", name, mode_names[i],
		    (unsigned long long)get(&c[i]));
}

/* A histogram per transaction mode (hs indexed by mode), one head. */
static void hist_per_mode(struct text *t, const char *name, const char *help,
			  const struct coord_hist *hs)
{
	char l[64];

	head(t, name, "histogram", help);
	for (int i = 1; i < COORD_METRICS_MODES; i++) {
		snprintf(l, sizeof l, "mode=\"%s\"", mode_names[i]);
		hist(t, name, l, &hs[i]);
	}
}

static void gauge(struct text *t, const char *name, const char *help,
		  uint64_t v)
{
	head(t, name, "gauge", help);
	put(t, "%s %llu\n", name, (unsigned long long)v);
}

static void transactions(struct text *t, const struct coord_metrics *m)
{
	per_mode(t, "settle_transactions_begun_total",
		 "Transactions begun, as this node applied them.", m->begun);
	per_mode(t, "settle_transactions_committed_total",
		 "Transactions committed (sagas: succeeded).", m->committed);
	per_mode(t, "settle_transactions_rolled_back_total",
		 "Transactions rolled back (sagas: compensated).",
		 m->rolled_back);
	per_mode(t, "settle_transactions_failed_total",
		 "Transactions that came to wait for an operator (a branch "
		 "FAILED).",
		 m->failed);
	gauge(t, "settle_transactions_open",
	      "Transactions not finished, in the store.", get(&m->open_txs));
	gauge(t, "settle_transactions_stuck",
	      "Transactions an operator must look at (settlectl tx list "
	      "--stuck).",
	      get(&m->stuck_txs));
	hist_per_mode(t, "settle_transaction_decision_seconds",
		      "From begin to the decision (commit or rollback; a "
		      "saga's success or compensation), leader clock.",
		      m->to_decision);
	hist_per_mode(t, "settle_transaction_completion_seconds",
		      "From the decision to every branch done, leader clock.",
		      m->to_done);
	head(t, "settle_transaction_completion_unmeasured_total", "counter",
	     "Decisions whose completion time was not kept (too many "
	     "in flight at once).");
	put(t, "settle_transaction_completion_unmeasured_total %llu\n",
	    (unsigned long long)get(&m->decided_lost));
}

/* One sample of the counter at offset `at` of each of the n endpoints. */
static void per_ep(struct text *t, const struct coord_metrics *m, size_t n,
		   const char *name, const char *type, const char *help,
		   size_t at)
{
	char ep[2 * COORD_METRICS_EP_MAX + 2];

	head(t, name, type, help);
	for (size_t i = 0; i < n; i++) {
		const coord_counter *v =
		    (const coord_counter *)((const char *)&m->eps[i] + at);

		label(m->eps[i].name, ep, sizeof ep);
		put(t, "%s{endpoint=\"%s\"} %llu\n", name, ep,
		    (unsigned long long)get(v));
	}
}

static void calls(struct text *t, const struct coord_metrics *m)
{
	size_t n = atomic_load_explicit((_Atomic size_t *)&m->n_eps,
					memory_order_acquire);
	char ep[2 * COORD_METRICS_EP_MAX + 2], l[2 * COORD_METRICS_EP_MAX + 64];

	head(t, "settle_participant_calls_total", "counter",
	     "Calls to participants by this node as leader, by endpoint, "
	     "kind and outcome (failure: the participant refused; error: no "
	     "answer, retried).");
	for (size_t i = 0; i <= COORD_METRICS_ENDPOINTS; i++) {
		const struct coord_metrics_ep *e = &m->eps[i];

		if (i >= n && i != COORD_METRICS_ENDPOINTS)
			continue;
		label(e->name, ep, sizeof ep);
		for (int k = 0; k < COORD_METRICS_CALL_KINDS; k++)
			for (int o = 0; o < COORD_METRICS_OUTCOMES; o++)
				if (get(&e->calls[k][o]) != 0)
					put(t,
					    "settle_participant_calls_total{"
					    "endpoint=\"%s\",kind=\"%s\","
					    "outcome=\"%s\"} %llu\n",
					    ep, kind_names[k], outcome_names[o],
					    (unsigned long long)get(
						&e->calls[k][o]));
	}
	head(t, "settle_participant_call_seconds", "histogram",
	     "Time from sending a call to its answer or failure.");
	for (size_t i = 0; i <= COORD_METRICS_ENDPOINTS; i++) {
		const struct coord_metrics_ep *e = &m->eps[i];

		if (i >= n && i != COORD_METRICS_ENDPOINTS)
			continue;
		label(e->name, ep, sizeof ep);
		for (int k = 0; k < COORD_METRICS_CALL_KINDS; k++) {
			if (get(&e->latency[k].count) == 0)
				continue;
			snprintf(l, sizeof l, "endpoint=\"%s\",kind=\"%s\"", ep,
				 kind_names[k]);
			hist(t, "settle_participant_call_seconds", l,
			     &e->latency[k]);
		}
	}
	per_ep(t, m, n, "settle_participant_breaker_state", "gauge",
	       "The endpoint's circuit breaker: 0 closed, 1 open (not "
	       "called), 2 half-open (one probe).",
	       offsetof(struct coord_metrics_ep, breaker));
	per_ep(t, m, n, "settle_participant_breaker_opens_total", "counter",
	       "Times the endpoint's circuit breaker opened.",
	       offsetof(struct coord_metrics_ep, opens));
	per_ep(t, m, n, "settle_participant_calls_deferred_total", "counter",
	       "Branches put off without a call while the endpoint's breaker "
	       "was open.",
	       offsetof(struct coord_metrics_ep, deferred));
	head(t, "settle_participant_retries_total", "counter",
	     "Participant calls that got no answer and are to be retried.");
	put(t, "settle_participant_retries_total %llu\n",
	    (unsigned long long)get(&m->retries));
}

static void raft(struct text *t, const struct coord_metrics *m)
{
	static const char *const states[] = {"unavailable", "follower",
					     "candidate", "leader"};
	uint64_t st = get(&m->raft_state);

	gauge(t, "settle_node_id", "This node's raft id.", get(&m->id));
	gauge(t, "settle_raft_term", "The raft term this node is in.",
	      get(&m->term));
	head(t, "settle_raft_state", "gauge",
	     "1 for this node's raft state, 0 for the others.");
	for (uint64_t i = 0; i < 4; i++)
		put(t, "settle_raft_state{state=\"%s\"} %d\n", states[i],
		    st == i);
	gauge(t, "settle_raft_leader_id",
	      "The raft id of the leader this node knows (0: none).",
	      get(&m->leader_id));
	head(t, "settle_raft_commit_seconds", "histogram",
	     "On the leader, from appending an entry to applying it: the "
	     "log's fsync and a majority's.");
	hist(t, "settle_raft_commit_seconds", "", &m->raft_commit);
	head(t, "settle_checkpoint_fsync_seconds", "histogram",
	     "fdatasync of a checkpoint file (snapshots, backups).");
	hist(t, "settle_checkpoint_fsync_seconds", "", &m->ckpt_sync);
	gauge(t, "settle_raft_last_index", "The last index of the raft log.",
	      get(&m->last_index));
	gauge(t, "settle_raft_commit_index",
	      "The highest raft index known committed.", get(&m->commit_index));
	gauge(t, "settle_raft_applied_index",
	      "The highest raft index applied to the store.",
	      get(&m->applied_index));
	gauge(t, "settle_raft_log_entries_since_snapshot",
	      "Raft entries applied after the last snapshot.",
	      get(&m->applied_index) > get(&m->snapshot_index)
		  ? get(&m->applied_index) - get(&m->snapshot_index)
		  : 0);
	head(t, "settle_snapshots_total", "counter",
	     "Snapshots this node took.");
	put(t, "settle_snapshots_total %llu\n",
	    (unsigned long long)get(&m->snapshots));
	gauge(t, "settle_snapshot_bytes", "Bytes of the last snapshot taken.",
	      get(&m->snapshot_bytes));
	head(t, "settle_snapshot_duration_seconds", "gauge",
	     "How long the last snapshot took, begun to written.");
	put(t, "settle_snapshot_duration_seconds %.6f\n",
	    (double)get(&m->snapshot_last_us) / 1e6);
}

int coord_metrics_render(const struct coord_metrics *m, char **out, size_t *len)
{
	struct text t = {.buf = malloc(16384), .cap = 16384};
	int why = coord_metrics_ready(m);

	if (t.buf == NULL)
		return SETTLE_ENOMEM;
	t.buf[0] = '\0';
	transactions(&t, m);
	calls(&t, m);
	raft(&t, m);
	gauge(&t, "settle_store_used_bytes",
	      "Bytes the store (LMDB) takes of its budget.",
	      get(&m->store_used));
	gauge(&t, "settle_store_budget_bytes", "The store's --store-budget.",
	      get(&m->store_budget));
	gauge(&t, "settle_store_map_bytes",
	      "The store's LMDB map: the most its file may grow to.",
	      get(&m->store_map));
	gauge(&t, "settle_store_file_bytes",
	      "The store's data file: pages ever written, free ones too.",
	      get(&m->store_file));
	gauge(&t, "settle_store_disk_free_bytes",
	      "Free space of the file system holding the store.",
	      get(&m->disk_free));
	gauge(&t, "settle_store_refusing",
	      "1 while the leader refuses new transactions: the store is "
	      "near its budget.",
	      get(&m->store_refusing));
	gauge(&t, "settle_ready",
	      "1 when this node is ready (/readyz): a member with a known "
	      "leader, caught up.",
	      why == COORD_READY);
	if (t.oom) {
		free(t.buf);
		return SETTLE_ENOMEM;
	}
	*out = t.buf;
	*len = t.len;
	return 0;
}

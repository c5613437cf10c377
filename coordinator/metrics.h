/*
 * metrics.h — what a node counts for its operators (settled --metrics;
 * docs/OPERATIONS.md, "Metrics and health"): counters and histograms the
 * loop thread adds to as it applies and calls, gauges it sets on its
 * tick, and the text a scrape reads on the HTTP server's thread
 * (metrics_http.c).
 *
 * One writer, one reader: only the loop thread writes, the HTTP thread
 * only reads, every value is a relaxed atomic. A scrape may see a
 * transaction begun and not yet finished, or a histogram's count one
 * ahead of its sum, never a torn value. Counting costs an atomic add.
 *
 * Transactions are counted as this node applies them (every member
 * counts the same), by mode; a restart starts from zero and counts again
 * the log it replays past its snapshot, as a Prometheus counter reset.
 */
#ifndef SETTLE_COORD_METRICS_H
#define SETTLE_COORD_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "settle.pb-c.h"
#include "wal/fsm.h"

/* settle.v1.TxMode: unspecified, TCC, SAGA, XA. */
#define COORD_METRICS_MODES 4
/* Upper bounds of the latency buckets, in seconds (metrics.c), and +Inf. */
#define COORD_METRICS_BUCKETS 15
/* Participant endpoints counted one by one; later ones go to "other". */
#define COORD_METRICS_ENDPOINTS 64
#define COORD_METRICS_EP_MAX	255
/* Confirm, Cancel, Action, Compensate. */
#define COORD_METRICS_CALL_KINDS 4
/* ok, failure (the participant refused), error (transport, timeout). */
#define COORD_METRICS_OUTCOMES 3
/* Decisions remembered for the decision-to-done latency. */
#define COORD_METRICS_DECIDED 16384

typedef _Atomic uint64_t coord_counter;

struct coord_hist {
	coord_counter le[COORD_METRICS_BUCKETS + 1]; /* last: +Inf */
	coord_counter sum_us;
	coord_counter count;
};

struct coord_metrics_ep {
	char name[COORD_METRICS_EP_MAX + 1]; /* written before n_eps grows */
	coord_counter calls[COORD_METRICS_CALL_KINDS][COORD_METRICS_OUTCOMES];
	struct coord_hist latency[COORD_METRICS_CALL_KINDS];
	coord_counter breaker;	/* breaker.h: closed, open, half-open */
	coord_counter opens;	/* times its breaker opened */
	coord_counter deferred; /* branches put off while it was open */
};

/* Why a node is not ready (coord_metrics.not_ready). */
enum coord_not_ready {
	COORD_READY = 0,
	COORD_NOT_READY_STARTING,
	COORD_NOT_READY_STOPPING,
	COORD_NOT_READY_NO_LEADER,
	COORD_NOT_READY_BARRIER, /* a new leader not serving yet */
	COORD_NOT_READY_BEHIND,	 /* committed entries not applied */
	COORD_NOT_READY_NOT_MEMBER,
};

/* The most committed entries a ready node may have left to apply. */
#define COORD_READY_LAG 1000
/* A loop thread silent longer than this fails /healthz. */
#define COORD_HEALTH_STALL_MS 5000

struct coord_metrics {
	/* Transactions, by settle.v1.TxMode. */
	coord_counter begun[COORD_METRICS_MODES];
	coord_counter committed[COORD_METRICS_MODES];
	coord_counter rolled_back[COORD_METRICS_MODES];
	coord_counter failed[COORD_METRICS_MODES]; /* a branch FAILED */
	struct coord_hist to_decision[COORD_METRICS_MODES];
	struct coord_hist to_done[COORD_METRICS_MODES];
	coord_counter decided_lost; /* decisions the table had no room for */

	/* Participant calls by endpoint (this node as leader). */
	struct coord_metrics_ep eps[COORD_METRICS_ENDPOINTS + 1];
	_Atomic size_t n_eps; /* eps[COORD_METRICS_ENDPOINTS]: "other" */
	coord_counter retries;

	/* Raft on the leader: from appending an entry to its apply (the
	 * log's fsync and a majority's), and the node's own fdatasync of a
	 * checkpoint file (snapshots, backups; worker threads). */
	struct coord_hist raft_commit;
	struct coord_hist ckpt_sync;

	/* Gauges, set on the tick. */
	coord_counter id;
	coord_counter term, raft_state, leader_id;
	coord_counter last_index, commit_index, applied_index;
	coord_counter snapshot_index, snapshots, snapshot_bytes;
	coord_counter snapshot_last_us;
	coord_counter store_used, store_budget, store_refusing;
	coord_counter store_map, store_file, disk_free; /* store_usage */
	coord_counter open_txs, stuck_txs;
	coord_counter beat_ms; /* monotonic ms of the loop's last tick */
	_Atomic int not_ready; /* enum coord_not_ready */
	coord_counter behind;  /* commit_index - applied_index */

	/* Loop thread only: decision times by a hash of the gid, for the
	 * decision-to-done latency (open addressing; 0: empty). */
	struct {
		uint64_t key;
		uint64_t ms;
	} * decided;
	size_t n_decided;
	uint64_t counted_at; /* node.c: the last count of stuck ones */
};

/* 0, or SETTLE_ENOMEM. */
int coord_metrics_init(struct coord_metrics *m);
void coord_metrics_close(struct coord_metrics *m);

/* The FSM's hook (apply.c): tx moved from was. */
void coord_metrics_tx(struct coord_metrics *m, const Settle__V1__TxRecord *tx,
		      const struct fsm_was *was);

/* The slot of a participant endpoint (the loop thread, once per
 * endpoint it calls). */
size_t coord_metrics_endpoint(struct coord_metrics *m, const char *endpoint);

/* A participant call of kind (0 confirm, 1 cancel, 2 action, 3
 * compensate) to slot answered with outcome (0 ok, 1 failure, 2 error)
 * after us microseconds. */
void coord_metrics_call(struct coord_metrics *m, size_t slot, int kind,
			int outcome, uint64_t us);

/* A snapshot at index was taken: bytes written in us microseconds. */
void coord_metrics_snapshot(struct coord_metrics *m, uint64_t index,
			    uint64_t bytes, uint64_t us);

/* The breaker of slot is in state now (breaker.h), having just opened. */
void coord_metrics_breaker(struct coord_metrics *m, size_t slot, int state,
			   bool opened);
/* A branch at slot put off without a call: its breaker is open. */
void coord_metrics_deferred(struct coord_metrics *m, size_t slot);

void coord_metrics_observe(struct coord_hist *h, uint64_t us);

/* Every mode together, for STATUS (settlectl top). */
struct coord_metrics_summary {
	uint64_t begun, committed, rolled_back, failed;
	uint64_t decision[COORD_METRICS_BUCKETS + 1]; /* per bucket */
};
void coord_metrics_summarize(const struct coord_metrics *m,
			     struct coord_metrics_summary *out);
/* The upper bound of bucket i in microseconds (0 for +Inf). */
uint64_t coord_metrics_bucket_us(size_t i);

/* The Prometheus text exposition (format 0.0.4) of m, malloc'd into *out
 * (its length in *len): 0 or SETTLE_ENOMEM. Any thread. */
int coord_metrics_render(const struct coord_metrics *m, char **out,
			 size_t *len);

/* Ready (COORD_READY) or why not; health: whether the loop ticked within
 * COORD_HEALTH_STALL_MS of now_ms (monotonic). Any thread. */
int coord_metrics_ready(const struct coord_metrics *m);
const char *coord_metrics_not_ready_text(int why);
bool coord_metrics_alive(const struct coord_metrics *m, uint64_t now_ms);

#endif /* SETTLE_COORD_METRICS_H */

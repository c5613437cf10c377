/*
 * load.h — a TCC load generator for the fault tests: N threads, each with
 * its own libsettle handle, moving money between two real settle-bank
 * processes (begin, register two branches, Try both, commit with wait),
 * and a record of every transaction it attempted, so that the invariants
 * can be checked once the faults stop.
 *
 * The generator chooses every gid itself ("<prefix>-<n>"), so that a
 * transaction whose Begin answer was lost can still be looked up. It never
 * aborts on an error: errors are what faults produce. It stops by itself
 * after max_tx transactions or duration_ms, whichever comes first, or
 * when load_stop() asks.
 *
 * No Criterion here: the threads must not call assertions, and
 * scripts/chaos reuses the same code. Errors are returned.
 */
#ifndef SETTLE_IT_LOAD_H
#define SETTLE_IT_LOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* error.h before settle.h: see settle.h. */
#include "error.h"
#include "settle.h"

struct load_opts {
	const char *cluster; /* endpoint list, copied */
	const char *bank_a;  /* settle-bank endpoints, copied */
	const char *bank_b;
	const char *account_a; /* account names in each bank, copied */
	const char *account_b;
	const char *prefix;	  /* gid prefix, copied; unique per run */
	unsigned threads;	  /* 1..64 */
	size_t max_tx;		  /* bound on transactions attempted */
	uint32_t duration_ms;	  /* bound on time; 0: no time bound */
	int max_amount;		  /* amounts are 1..max_amount */
	uint32_t tx_timeout_ms;	  /* Begin's timeout (deadline) */
	uint32_t commit_wait_ms;  /* Commit's wait for phase two */
	uint32_t retry_budget_ms; /* client retry budget per call */
	/* This many of the threads give up after 500 ms instead and do not
	 * wait for phase two, so that faults leave calls unanswered: the
	 * outcome is then the cluster's to decide (committed, or rolled back
	 * at the deadline). */
	unsigned impatient;
	uint32_t pause_ms; /* pause between transactions of a thread */
};

/* How far a transaction got, as the initiator saw it. */
enum load_stage {
	LOAD_NONE = 0,	    /* slot never used */
	LOAD_BEGIN,	    /* Begin sent, not acknowledged */
	LOAD_BEGUN,	    /* Begin acknowledged */
	LOAD_REGISTERED,    /* both branches acknowledged */
	LOAD_COMMIT_SENT,   /* both Trys succeeded, Commit sent */
	LOAD_ROLLBACK_SENT, /* gave up before Commit: Rollback sent */
};

struct load_tx {
	char gid[64];
	int amount;  /* > 0 */
	bool a_to_b; /* money leaves account_a for account_b, else reverse */
	int stage;   /* enum load_stage */
	int err;     /* last error (SETTLE_E*), 0 if none */
	char errmsg[160];
	/* Commit acknowledged (settle_commit returned 0): the state and
	 * finished flag it answered with. */
	bool commit_acked;
	int acked_state;
	bool acked_finished;
	uint64_t start_ms;	 /* CLOCK_MONOTONIC */
	uint64_t commit_sent_ms; /* CLOCK_MONOTONIC, 0 until sent */
	uint64_t commit_ack_ms;	 /* CLOCK_MONOTONIC, 0 unless acked */
	uint64_t end_ms;	 /* CLOCK_MONOTONIC, when the thread let go */
};

struct load_stats {
	size_t attempted;
	size_t commit_acked;
	size_t commit_failed; /* Commit sent, answer an error */
	size_t rolled_back;   /* gave up before Commit */
	size_t begin_failed;
};

typedef struct load load;

/*
 * Start the threads. o is copied. Returns 0 and *out (free with
 * load_free() after load_join()), SETTLE_EINVAL for bad options,
 * SETTLE_ENOMEM, SETTLE_EIO if a thread cannot be created.
 */
int load_start(const struct load_opts *o, load **out);

/* Ask the threads to stop after their current transaction. Any thread. */
void load_stop(load *l);

/* Wait until every thread has ended (bounded by the options' bounds plus
 * one transaction's worth of client retries). */
void load_join(load *l);

/* Counters so far (any time; racy but monotone while running). */
struct load_stats load_stats(load *l);

/* Monotonic ms of the first Commit acknowledged among those sent after
 * since_ms (so answered by a node alive then), or 0 if none yet. */
uint64_t load_first_ack_after(load *l, uint64_t since_ms);

/* The records, valid until load_free(); *n receives how many slots were
 * used. Call after load_join(). */
const struct load_tx *load_txs(load *l, size_t *n);

void load_free(load *l);

/* CLOCK_MONOTONIC in ms (the clock of the records). */
uint64_t load_mono_ms(void);

#endif /* SETTLE_IT_LOAD_H */

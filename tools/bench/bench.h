/*
 * bench.h — what settle-bench's modes share (bench.c: options, the TCC and
 * saga initiators, the report; bench_xa.c: the XA modes against real
 * PostgreSQL and MariaDB servers). Internal to the tool.
 */
#ifndef SETTLE_TOOLS_BENCH_H
#define SETTLE_TOOLS_BENCH_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

/* error.h before settle.h: see settle.h. */
#include "error.h"
#include "settle.h"
#include "settle_participant.h"

#define BENCH_MAX_BRANCHES 64
/* Action payload of a saga step that must fail. */
#define BENCH_FAIL "bench-fail"

enum bench_mode {
	BENCH_TCC,
	BENCH_SAGA,
	BENCH_XA, /* Settle as the TM of a PostgreSQL and a MariaDB branch */
	BENCH_XA_LOCAL, /* the same branches, the bench as its own TM */
};

struct bench_xa; /* bench_xa.c */

/* Phases of an XA transaction, timed apart. */
enum bench_phase {
	BENCH_PH_BEGIN,	  /* xa: Begin + RegisterBranch x 2 (raft) */
	BENCH_PH_PREPARE, /* both: connect, start, UPDATE, end, prepare */
	BENCH_PH_VOTE,	  /* xa: XA_VOTE x 2 (raft) */
	BENCH_PH_COMMIT,  /* xa: Commit until phase 2 is done; xa-local: the
			     two commits */
	BENCH_PHASES,
};
extern const char *const bench_phase_names[BENCH_PHASES];

struct bench {
	const char *cluster;
	enum bench_mode mode;
	unsigned branches;
	unsigned concurrency;
	unsigned duration_s;
	double rollback_ratio;
	/* tcc: the branches go with the Begin (one raft command) rather
	 * than one REGISTER_BRANCH each. */
	bool declare;
	bool json;
	/* tcc, saga: one loop thread on libsettle's asynchronous client
	 * (bench_async.c) rather than a thread per transaction in flight
	 * on the blocking one. */
	bool async;
	/* --random-gids (tcc, saga): the bench chooses each gid, 32 random
	 * hex digits, as a client with UUIDs would; else the leader does
	 * (its gids come in order). */
	bool random_gids;
	char participant[64]; /* host:port of the in-process participant */
	uint64_t start_us;    /* monotonic */
	uint64_t end_ms;      /* monotonic */
	/* --rate R: open loop. Start k is scheduled at start_us + k / R
	 * seconds whatever came before it, and its latency counts from
	 * then, so a stall shows in full (no coordinated omission). */
	double rate;
	atomic_uint_fast64_t next_start;
	/* --interval S: transactions finished and the slowest of them per
	 * S seconds, to see a run's rate hold or sag and find its stalls. */
	unsigned interval_s;
	size_t nslices;
	struct bench_slice *slices;
	MDB_dbi dbi; /* the participant's business table */
	atomic_uint_fast64_t handler_calls;
	/* XA modes: options (the conninfo strings are never printed). */
	const char *xa_pg, *xa_mariadb;	      /* conninfo */
	const char *xa_pg_rm, *xa_mariadb_rm; /* names on settled (--xa-rm) */
	unsigned xa_rows; /* account rows shared by the workers */
	/* --mode xa: the leader commits the branches from its own sessions
	 * (the initiator's MariaDB session ends first), not the initiator. */
	bool xa_leader_commits;
	/* --tls-cert/--tls-key/--tls-ca: mutual TLS for the client and the
	 * in-process participant (the asynchronous client only); cert NULL:
	 * plaintext. */
	struct settle_tls tls;
	struct bench_xa *xa;
};

struct bench_slice {
	atomic_uint_fast64_t done;
	atomic_uint_fast32_t max_us;
};

struct bench_worker {
	struct bench *b;
	unsigned index; /* 0 .. concurrency - 1 */
	pthread_t thread;
	unsigned seed;
	uint64_t committed;
	uint64_t aborted;
	uint64_t errors;
	uint64_t late;	  /* --rate: starts more than 1 ms behind schedule */
	uint32_t *lat_us; /* one per finished transaction */
	size_t nlat;
	size_t caplat;
	char first_error[256];
	/* XA modes: the worker's own database connections (bench_xa.c). */
	void *pg, *my;
	int64_t my_id;	     /* CONNECTION_ID() of w->my */
	uint64_t xa_seq;     /* transactions begun, for local gids */
	uint64_t connects;   /* MariaDB connections opened */
	uint64_t connect_us; /* time spent opening them */
	/* The last phase-2 report sent without waiting (bench_xa.c): sent
	 * again and waited for as the worker stops. */
	char last_report[SETTLE_GID_BUFSIZE];
	/* Time spent per phase by the committed transactions (see
	 * enum bench_phase), to tell what dominates. */
	uint64_t phase_us[BENCH_PHASES];
};

/* The in-process participant of the tcc and saga modes
 * (bench_participant.c). */
struct bench_participant {
	char dir[64];
	MDB_env *env;
	settle_participant *p;
};

/* Start it listening on listen ("host:port"); b->participant gets the
 * endpoint the coordinator is to call. 0, or -1 (printed). Stop it even
 * after a failed start. */
int bench_participant_start(struct bench *b, struct bench_participant *pt,
			    const char *listen);
void bench_participant_stop(struct bench_participant *pt);

/* Monotonic clock in microseconds. */
uint64_t bench_mono_us(void);

/* Count a transaction that started at t0_us (monotonic) and has just
 * finished: its latency in w, its end in the interval it falls in. */
void bench_record(struct bench_worker *w, uint64_t t0_us);

/* Count an error in w; the first one's text (printf format) is kept. */
void bench_fail(struct bench_worker *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The K branches a TCC transaction declares at Begin: resources
 * "r0".."rK-1" on the participant, each with payload; resource holds
 * their names. */
void bench_decls(const struct bench *b, const uint8_t *payload, size_t len,
		 struct settle_branch_decl *d, char (*resource)[8]);

/* The gid to begin with: NULL (the leader chooses) or, with
 * --random-gids, 32 random hex digits in buf. */
const char *bench_gid(const struct bench *b, char buf[33]);

/* The K ordered steps of a saga on the participant (names "s0".."sK-1"
 * in names); fail: the last step's action fails, so the saga is
 * compensated. */
void bench_saga_steps(const struct bench *b, bool fail,
		      struct settle_saga_step *steps, char (*names)[8]);

/* A thread of the blocking client (bench_sync.c): TCC or saga
 * transactions of w->b until b->end_ms, or w's XA mode (bench_xa.c);
 * arg is w. */
void *bench_sync_worker(void *arg);

/* Run the TCC or saga transactions of w->b on the asynchronous client
 * until b->end_ms, counting them all in w (bench_async.c). */
void bench_async_run(struct bench_worker *w);

/*
 * XA modes (bench_xa.c). Every function prints its own errors to stderr,
 * naming the database by kind and never with its conninfo.
 *
 * bench_xa_setup: check the options, create the account table
 * settle_bench_xa (id, balance) in both databases if needed with rows
 * 1..b->xa_rows, and remember their balances. 0, or -1 (printed).
 * bench_xa_worker: run transactions of w's mode until b->end_ms (closed
 * loop: --rate is refused for the XA modes); w's
 * connections are its own and closed before it returns. c: w's libsettle
 * handle (NULL for BENCH_XA_LOCAL).
 * bench_xa_verify: after the run, whether the balances moved by exactly
 * the committed count on both sides and nothing of ours is left prepared;
 * -1 when they cannot be read. bench_xa_done frees what setup made.
 */
int bench_xa_setup(struct bench *b);
void bench_xa_worker(struct bench_worker *w, settle_client *c);
int bench_xa_verify(struct bench *b, uint64_t committed, bool *ok);
void bench_xa_done(struct bench *b);

#endif /* SETTLE_TOOLS_BENCH_H */

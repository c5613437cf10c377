/*
 * test_faults_util.h — multi-node clusters of real settled processes for
 * the fault tests and scripts/chaos: start N nodes (on loopback, or each in
 * its own network namespace behind a bridge), find the leader, kill, stop,
 * continue and restart nodes, cut a node off from the others; and the
 * invariant checks run once the faults stop.
 *
 * Built on the harness (harness.h): processes die with the test, and
 * failures of the machinery abort the test with a Criterion assertion.
 * Invariant violations are counted and described, not asserted, so that a
 * test can report every one of them before it fails.
 */
#ifndef SETTLE_IT_FAULTS_UTIL_H
#define SETTLE_IT_FAULTS_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "harness.h"
#include "load.h"

#define FU_MAX_NODES 5

struct fu_node {
	struct it_proc *proc;
	int id;		   /* raft id, 1..n */
	int port;	   /* client port; raft listens on port + 1 */
	char host[32];	   /* 127.0.0.1, or the namespace's address */
	char endpoint[64]; /* host:port, for clients */
	char ns[32];	   /* network namespace, "" on loopback */
	char data[512];
	bool paused; /* SIGSTOPped */
};

struct fu_cluster {
	int n;
	struct fu_node nodes[FU_MAX_NODES];
	char endpoints[FU_MAX_NODES * 64]; /* comma-separated */
	bool netns;
	char bridge[16]; /* bridge device in the root namespace */
	char host[32];	 /* root namespace's address on the bridge */
	int tag;	 /* distinguishes this test's devices */
};

/* settled's default election timeout (--election-timeout; heartbeat
 * 100 ms, pre-vote on): the faults that must outlast an election wait a
 * few of these. */
#define FU_ELECTION_TIMEOUT_MS 400

/*
 * Start n (1..FU_MAX_NODES) voters on 127.0.0.1 with extra settled
 * arguments (NULL-terminated, may be NULL), and wait until one of them
 * leads (30 s).
 */
void fu_cluster_start(struct fu_cluster *c, int n, const char *const *extra);
/* Like fu_cluster_start(), and node i also gets the arguments own[i]
 * (own may be NULL, own[i] NULL for none). */
void fu_cluster_start_with(struct fu_cluster *c, int n,
			   const char *const *extra,
			   const char *const *const *own);

/*
 * True when this machine can put nodes in network namespaces (root, `ip
 * netns` works, bridges and veth pairs can be made); why (size len) when
 * not.
 */
bool fu_netns_available(char *why, size_t len);

/*
 * Like fu_cluster_start(), but node i runs in namespace "stl<tag>n<i>" with
 * address 10.77.<tag>.<i> on a veth pair whose other end is on a bridge in
 * the root namespace (address 10.77.<tag>.254, c->host). Clients and
 * banks stay in the root namespace: banks must listen on c->host.
 * fu_cluster_teardown() removes the namespaces and devices.
 */
void fu_cluster_start_netns(struct fu_cluster *c, int n,
			    const char *const *extra);

/* Remove namespaces and devices (netns clusters); safe to call twice. The
 * processes themselves are killed by it_teardown(). */
void fu_cluster_teardown(struct fu_cluster *c);

/*
 * Index (0-based) of the node that leads: a running, not paused node that
 * says role "leader" and has the highest term among those that answer.
 * Waits up to timeout_ms; -1 if none (no assertion). Over TLS when
 * SETTLE_TLS_CERT, _KEY and _CA are set (as for settlectl).
 */
int fu_leader(struct fu_cluster *c, int timeout_ms);

/* Like fu_leader() but ignores node skip (index; -1 for none). */
int fu_leader_except(struct fu_cluster *c, int skip, int timeout_ms);

/* SIGKILL node i; restart it with the same arguments. */
void fu_kill(struct fu_cluster *c, int i);
void fu_restart(struct fu_cluster *c, int i);
/* Hand leadership to node i (CLUSTER_TRANSFER, retried: a loaded target
 * may answer raft's TimeoutNow late) and wait until it leads. */
void fu_transfer_to(struct fu_cluster *c, int i);
/* SIGSTOP / SIGCONT node i. */
void fu_pause(struct fu_cluster *c, int i);
void fu_resume(struct fu_cluster *c, int i);

/* Netns clusters only: drop every packet between node i and the other
 * nodes (clients and banks still reach it), or restore them. */
void fu_isolate(struct fu_cluster *c, int i);
void fu_heal(struct fu_cluster *c, int i);

/* Wait until every running node has applied as far as the furthest one
 * had when this was called, or timeout_ms passes; true if they caught
 * up. */
bool fu_wait_caught_up(struct fu_cluster *c, int timeout_ms);

/* Wait until every running node says its cluster runs at feature level
 * level or above (StatusResponse.cluster_feature_level); false after
 * timeout_ms. */
bool fu_wait_level(struct fu_cluster *c, uint32_t level, int timeout_ms);

/* Fail the test if a node's log holds a sanitizer report. */
void fu_assert_no_sanitizer_reports(const struct fu_cluster *c);

/* ---- Banks ------------------------------------------------------------ */

/* it_bank_start() listening on host (NULL: 127.0.0.1). */
void fu_bank_start(struct it_bank *b, const char *host, const char *name,
		   const char *accounts, const char *const *extra);

/* ---- Invariants --------------------------------------------------------- */

struct fu_books {
	const struct it_bank *bank_a, *bank_b;
	const char *account_a, *account_b;
	long long initial_a, initial_b;
};

/*
 * After the faults stop and the load has ended: wait (until deadline_ms,
 * load_mono_ms() clock) for every transaction the load attempted to be
 * terminal, then check
 *  - every transaction is terminal (COMMITTED or ROLLED_BACK, finished) by
 *    the deadline, none stuck, none lost (a Begin that was acknowledged
 *    must be known to the cluster);
 *  - every acknowledged Commit is COMMITTED with every branch CONFIRMED;
 *    every ROLLED_BACK transaction has every branch CANCELLED;
 *  - each bank applied exactly one Confirm and no Cancel for every branch
 *    of a COMMITTED transaction, and no Confirm and at most one Cancel for
 *    a ROLLED_BACK one (from the banks' logs);
 *  - balances equal the initial ones plus the COMMITTED transfers as the
 *    coordinator reports them; nothing frozen or incoming; the sum is
 *    conserved.
 * Prints a summary and every violation (at most 20 of each kind) to
 * stderr; returns the number of violations.
 */
int fu_check(struct fu_cluster *c, const struct fu_books *books, load *l,
	     uint64_t deadline_ms);

#endif /* SETTLE_IT_FAULTS_UTIL_H */

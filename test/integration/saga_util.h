/*
 * saga_util.h — helpers of the saga integration tests (test_saga_dag.c,
 * test_saga_faults.c): submit a saga and wait on its Query through
 * libsettle (which follows the leader of a cluster), read what each
 * settle-bank applied from its log, restart a bank without a fault knob,
 * and a frame-aware TCP proxy that holds back requests or swallows
 * replies, so that tests can make a participant see late, reordered or
 * repeated calls deterministically.
 *
 * Failures of the machinery and unmet waits abort the test with a
 * Criterion assertion (showing the last record seen); the proxy's thread
 * never asserts.
 */
#ifndef SETTLE_IT_SAGA_UTIL_H
#define SETTLE_IT_SAGA_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* error.h before settle.h: see settle.h. */
#include "error.h"
#include "settle.h"

#include "harness.h"

#define SU_ST(x) SETTLE__V1__BRANCH_STATE__##x
#define SU_TX(x) SETTLE__V1__TX_STATE__##x

/* A client on a comma-separated endpoint list with a retry budget of
 * retry_budget_ms (leader changes are waited out within it). Close with
 * settle_client_close(). */
settle_client *su_client(const char *endpoints, uint32_t retry_budget_ms);

/* One step, written as the tests think of it: payload used for the
 * action and for the compensation (settle-bank's Compensate undoes the
 * amount it is given), dependencies as 0-based step indexes. */
struct su_step {
	const char *endpoint;
	const char *name;
	const char *payload;
	uint32_t deps[4];
	size_t n_deps;
	uint32_t max_attempts;
	uint32_t call_timeout_ms;
	uint32_t retry_base_ms;
	uint32_t retry_max_ms;
};

/* Submit a saga (timeout 60 s) and fail the test unless it is accepted
 * under gid. recovery: SETTLE_SAGA_BACKWARD or SETTLE_SAGA_FORWARD. */
void su_submit(settle_client *c, const char *gid, int recovery, bool dag,
	       const struct su_step *s, size_t n);
/* The same with the saga's timeout (its deadline, BACKWARD) in ms. */
void su_submit_timeout(settle_client *c, const char *gid, int recovery,
		       bool dag, const struct su_step *s, size_t n,
		       uint32_t timeout_ms);

/* Print a Query record with its steps and history to stderr. */
void su_show_tx(const Settle__V1__TxInfo *tx);

/*
 * Poll Query (with history) until pred(tx, arg) holds; returns the record
 * (free with settle_tx_info_free). After timeout_ms the test fails with
 * the last record and the log of show (may be NULL). Query errors (no
 * leader for a while) are waited out.
 */
Settle__V1__TxInfo *su_wait(settle_client *c, const char *gid,
			    bool (*pred)(const Settle__V1__TxInfo *, void *),
			    void *arg, const char *what, int timeout_ms,
			    const struct it_proc *show);

/* Wait until gid is final (SAGA_SUCCEEDED or SAGA_COMPENSATED, finished)
 * and fail unless it ended in state want. */
Settle__V1__TxInfo *su_wait_final(settle_client *c, const char *gid, int want,
				  int timeout_ms, const struct it_proc *show);

/* The step with branch id step (1-based), or fail. */
const Settle__V1__BranchInfo *su_step(const Settle__V1__TxInfo *tx,
				      uint32_t step);
/* Fail unless the step is in state. */
void su_expect_step(const Settle__V1__TxInfo *tx, uint32_t step, int state);

/*
 * Branch ids of the events of kind ("action", "compensate") whose detail
 * starts with prefix ("ok", "failure", ...), in history (seq) order, into
 * ids (at most max); returns how many there were. Also checks that the
 * history's seq numbers increase.
 */
size_t su_events(const Settle__V1__TxInfo *tx, const char *kind,
		 const char *prefix, uint32_t *ids, size_t max);
/* Fail unless each step was compensated at most once and in decreasing
 * order of completion (the "compensate" "ok" events in seq order). */
void su_expect_reverse_completion(const Settle__V1__TxInfo *tx);
/* Seq of the first event of kind about step (0: the saga itself) whose
 * detail starts with prefix; 0 if none. */
uint64_t su_event_seq(const Settle__V1__TxInfo *tx, const char *kind,
		      uint32_t step, const char *prefix);

/*
 * What a bank's log says it applied: settle-bank logs "bank: OP GID/STEP
 * attempt N: RESULT" each time its handler runs (the barrier skips
 * repeats and null compensations before it). Counts the lines of op
 * ("action", "compensate") for gid/step whose RESULT is result (NULL:
 * any).
 */
int su_bank_count(const struct it_bank *b, const char *op, const char *gid,
		  uint32_t step, const char *result);
/* Unix ms of the first such line with result "ok"; -1 if none. */
int64_t su_bank_time(const struct it_bank *b, const char *op, const char *gid,
		     uint32_t step);
/* Lines of the log holding text. */
int su_log_count(const char *path, const char *text);

/* An account's balance; fails if anything is frozen or incoming. */
long long su_balance(const struct it_bank *b, const char *account);

/*
 * Stop the bank (SIGTERM: its delayed calls end unapplied), remove the
 * argument flag from its command line (with the value after it when
 * has_value), and start it again on the same port and data.
 */
void su_bank_restart_without(struct it_bank *b, const char *flag,
			     bool has_value);

/* ---- Proxy --------------------------------------------------------------- */

struct su_proxy;

/* A proxy on a free port of 127.0.0.1 in front of target ("host:port");
 * its thread runs until the test process ends (Criterion runs each test
 * in its own process). Each connection accepted opens one to target; a
 * target that is down closes the accepted one, as a refused connect. */
struct su_proxy *su_proxy_start(const char *target);
/* "127.0.0.1:port": give this to the coordinator as the endpoint. */
const char *su_proxy_endpoint(const struct su_proxy *p);

/*
 * Rules, each for the first `count` requests of method (a settle.v1
 * Method) for gid/step (a BranchRequest body) from now on:
 *   hold: keep the request for hold_ms, forwarding later ones meanwhile
 *         (so it reaches the participant after them);
 *   drop_reply: forward the request but swallow its answer, as a lost
 *         reply (the caller times out).
 */
void su_proxy_hold(struct su_proxy *p, int method, const char *gid,
		   uint32_t step, int count, int hold_ms);
void su_proxy_drop_reply(struct su_proxy *p, int method, const char *gid,
			 uint32_t step, int count);

/* Requests held now (su_proxy_hold), not yet forwarded. */
int su_proxy_held(struct su_proxy *p);
/* Forward every held request now (the poll loop wakes within 50 ms). */
void su_proxy_release(struct su_proxy *p);

/* Requests of method for gid/step forwarded to the participant so far. */
int su_proxy_forwarded(struct su_proxy *p, int method, const char *gid,
		       uint32_t step);
/* The answer code (settle.v1.Code) the participant gave the n-th (0-based,
 * in the order they reached the proxy, held ones included) such request,
 * swallowed or not; -1 while unanswered (or held). The proxy remembers
 * the first 1024 branch requests it sees. */
int su_proxy_answer(struct su_proxy *p, int method, const char *gid,
		    uint32_t step, int n);

#endif /* SETTLE_IT_SAGA_UTIL_H */

/* Helpers for the FSM tests: an FSM over a temporary store, and builders
 * of encoded entries. */
#ifndef SETTLE_TEST_FSM_HELPERS_H
#define SETTLE_TEST_FSM_HELPERS_H

#include "../storage/helpers.h"
#include "wal/entry.h"
#include "wal/fsm.h"

struct ent {
	uint8_t *buf; /* raft_malloc'd */
	size_t len;
};

struct tfsm {
	struct tstore t;
	struct fsm f;
	uint64_t index; /* last index applied through tfsm_apply */
	int changes;	/* on_tx_change calls */
	char last_gid[160];
	int last_state;
	int last_was; /* the state before (fsm_was.state) */
};

void tfsm_open(struct tfsm *t);
void tfsm_close(struct tfsm *t);

/* Apply e at ++t->index (e is not freed), assert success, return the
 * result (free with settle__v1__cmd_result__free_unpacked). */
Settle__V1__CmdResult *tfsm_apply(struct tfsm *t, struct ent e);
/* tfsm_apply, then free e. */
Settle__V1__CmdResult *tfsm_res(struct tfsm *t, struct ent e);
/* Same, return only the result code; frees e. */
int tfsm_code(struct tfsm *t, struct ent e);

void ent_free(struct ent e);
/* Command ids are 16 bytes derived from id. */
struct ent ent_begin(int id, uint64_t time, const char *gid, uint64_t deadline);
/* A TCC begin declaring n branches at endpoint, resources "r1".."rn",
 * each with payload. */
struct ent ent_begin_branches(int id, uint64_t time, const char *gid,
			      uint64_t deadline, size_t n, const char *endpoint,
			      const char *payload);
struct ent ent_register(int id, uint64_t time, const char *gid,
			const char *endpoint, const char *resource,
			const char *payload);
struct ent ent_decide(int id, uint64_t time, const char *gid, int decision,
		      const char *reason, int timeout);
struct ent ent_result(int id, uint64_t time, const char *gid, uint32_t branch,
		      int phase, int outcome, const char *error,
		      uint32_t attempt, uint64_t next_retry);
/* CmdFeatures{level} (its command ids have a pattern of their own). */
struct ent ent_features(int id, uint64_t time, uint32_t level);
/* A saga step's CmdStepResult (step 1-based; attempt left 0). */
struct ent ent_step_result(int id, uint64_t time, const char *gid,
			   uint32_t step, int phase, int outcome,
			   const char *error, uint64_t next_retry);
/* An operator's TX_RETRY / TX_RESOLVE (reason may be NULL). */
struct ent ent_retry(int id, uint64_t time, const char *gid, uint32_t branch,
		     const char *reason);
struct ent ent_resolve(int id, uint64_t time, const char *gid, uint32_t branch,
		       const char *reason);
/* XA (wal/xa.h). xid: wire encoding (may be NULL, xid_len 0); the gid
 * then must be xa_xid_gid() of it. */
struct ent ent_xa_begin(int id, uint64_t time, const char *gid,
			uint64_t deadline, const uint8_t *xid, size_t xid_len);
struct ent ent_xa_register(int id, uint64_t time, const char *gid,
			   const char *rm, uint32_t format_id);
struct ent ent_xa_vote(int id, uint64_t time, const char *gid, uint32_t branch,
		       int vote, const char *error);
struct ent ent_xa_prepare(int id, uint64_t time, const char *gid);
/* CmdDecide COMMIT with one_phase. */
struct ent ent_xa_commit1(int id, uint64_t time, const char *gid);
/* An XA begin declaring RM branches rms[0..n) (n <= 8). */
struct ent ent_xa_begin_rms(int id, uint64_t time, const char *gid,
			    uint64_t deadline, const char *const *rms, size_t n,
			    uint32_t format_id);
/* A one-phase commit carrying votes[i] of branches[i] (n <= 8, error "e"),
 * leaving phase 2 to the initiator for phase2_ms (0: the leader's). */
struct ent ent_xa_commit_votes(int id, uint64_t time, const char *gid,
			       const uint32_t *branches, const int *votes,
			       size_t n, uint32_t phase2_ms);
/* ent_xa_commit1 leaving phase 2 to the initiator for phase2_ms. */
struct ent ent_xa_commit_by_initiator(int id, uint64_t time, const char *gid,
				      uint32_t phase2_ms);
struct ent ent_xa_result(int id, uint64_t time, const char *gid,
			 uint32_t branch, int phase, int outcome, int heuristic,
			 const char *error, uint64_t next_retry);
struct ent ent_xa_forget(int id, uint64_t time, const char *gid);
/* An operator's heuristic decision (reason may be NULL). */
struct ent ent_xa_heuristic(int id, uint64_t time, const char *gid,
			    int decision, const char *reason);
struct ent ent_gc(int id, uint64_t time, uint64_t before, uint32_t limit);
struct ent ent_cmd(const Settle__V1__Command *cmd);
/* e re-encoded with Command.clock_ms = clock and, for a begin,
 * timeout_ms = timeout (e is freed). */
struct ent ent_clocked(struct ent e, uint64_t clock, uint32_t timeout);
/* e re-encoded with Command.request_digest = digest (e is freed). */
struct ent ent_digest(struct ent e, uint64_t digest);

/* Snapshot of the store (raft_free it). */
void tfsm_snapshot(struct tfsm *t, uint8_t **buf, size_t *len);

/* Check every index row matches the tx table: one due row per tx with
 * due_ms != 0, one by_state row per live tx, one finished row per finished
 * tx, and nothing else; the counts per state are the records'. Asserts. */
void tfsm_check_indexes(struct tfsm *t);

/* Rows in the store's table db. */
size_t tfsm_rows(struct tfsm *t, const char *db);

#endif

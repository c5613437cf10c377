/*
 * history.c — the transaction history shared by the store-facing targets.
 */
#include <raft.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "history.h"
#include "wal/entry.h"
#include "xa/xid.h"

#define HISTORY_MAX 64

static struct {
	uint8_t *buf;
	size_t len;
} entries[HISTORY_MAX];
static size_t n_entries;
/* Directories of the open stores, removed when they are closed. */
static struct {
	struct store *s;
	char dir[128];
} open_stores[4];
static int next_id;
static uint64_t clock_ms = 1700000000000ull;

static void add(Settle__V1__Command *c)
{
	uint8_t id[16];

	FUZZ_CHECK(n_entries < HISTORY_MAX, "history too long");
	memset(id, 0x5a, sizeof(id));
	next_id++;
	memcpy(id, &next_id, sizeof(next_id));
	c->cmd_id.data = id;
	c->cmd_id.len = sizeof(id);
	clock_ms += 10;
	c->time_ms = clock_ms;
	FUZZ_CHECK(wal_entry_encode(c, &entries[n_entries].buf,
				    &entries[n_entries].len) == 0,
		   "history entry encode");
	n_entries++;
}

static void begin(const char *gid, uint64_t timeout)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdBegin op = SETTLE__V1__CMD_BEGIN__INIT;

	op.gid = (char *)gid;
	op.deadline_ms = clock_ms + timeout;
	op.mode = SETTLE__V1__TX_MODE__TCC;
	c.op_case = SETTLE__V1__COMMAND__OP_BEGIN;
	c.begin = &op;
	add(&c);
}

static void reg(const char *gid, const char *endpoint, const char *payload)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdRegister op = SETTLE__V1__CMD_REGISTER__INIT;

	op.gid = (char *)gid;
	op.endpoint = (char *)endpoint;
	op.resource = "accounts";
	op.payload.data = (uint8_t *)payload;
	op.payload.len = strlen(payload);
	c.op_case = SETTLE__V1__COMMAND__OP_REGISTER;
	c.register_ = &op;
	add(&c);
}

static void decide(const char *gid, int decision, int timeout)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdDecide op = SETTLE__V1__CMD_DECIDE__INIT;

	op.gid = (char *)gid;
	op.decision = decision;
	op.reason = timeout ? "deadline" : "client";
	op.timeout = timeout;
	c.op_case = SETTLE__V1__COMMAND__OP_DECIDE;
	c.decide = &op;
	add(&c);
}

static void result(const char *gid, uint32_t branch, int phase, int outcome,
		   const char *error)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdBranchResult op = SETTLE__V1__CMD_BRANCH_RESULT__INIT;

	op.gid = (char *)gid;
	op.branch_id = branch;
	op.phase = phase;
	op.outcome = outcome;
	op.error = (char *)error;
	op.attempt = 1;
	op.next_retry_ms =
	    outcome == SETTLE__V1__OUTCOME__OUTCOME_RETRY ? clock_ms + 500 : 0;
	c.op_case = SETTLE__V1__COMMAND__OP_BRANCH_RESULT;
	c.branch_result = &op;
	add(&c);
}

static void gc(uint64_t before, uint32_t limit)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdGc op = SETTLE__V1__CMD_GC__INIT;

	op.finished_before_ms = before;
	op.limit = limit;
	c.op_case = SETTLE__V1__COMMAND__OP_GC;
	c.gc = &op;
	add(&c);
}

/* XA (wal/xa.h): a transaction of mode XA, with a legacy TM's xid when
 * xid is not NULL (then gid must be xa_xid_gid() of it). */
static void xa_begin(const char *gid, uint64_t timeout, const uint8_t *xid,
		     size_t xid_len)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdBegin op = SETTLE__V1__CMD_BEGIN__INIT;

	op.gid = (char *)gid;
	op.deadline_ms = clock_ms + timeout;
	op.mode = SETTLE__V1__TX_MODE__XA;
	op.xid.data = (uint8_t *)xid;
	op.xid.len = xid_len;
	c.op_case = SETTLE__V1__COMMAND__OP_BEGIN;
	c.begin = &op;
	add(&c);
}

static void xa_reg(const char *gid, const char *rm)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdRegister op = SETTLE__V1__CMD_REGISTER__INIT;

	op.gid = (char *)gid;
	op.rm = (char *)rm;
	op.xa_format_id = 0x53544c45;
	c.op_case = SETTLE__V1__COMMAND__OP_REGISTER;
	c.register_ = &op;
	add(&c);
}

static void xa_vote(const char *gid, uint32_t branch, int vote)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdXaVote op = SETTLE__V1__CMD_XA_VOTE__INIT;

	op.gid = (char *)gid;
	op.branch_id = branch;
	op.vote = vote;
	c.op_case = SETTLE__V1__COMMAND__OP_XA_VOTE;
	c.xa_vote = &op;
	add(&c);
}

static void xa_prepare(const char *gid)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdXaPrepare op = SETTLE__V1__CMD_XA_PREPARE__INIT;

	op.gid = (char *)gid;
	c.op_case = SETTLE__V1__COMMAND__OP_XA_PREPARE;
	c.xa_prepare = &op;
	add(&c);
}

static void xa_commit_one_phase(const char *gid)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdDecide op = SETTLE__V1__CMD_DECIDE__INIT;

	op.gid = (char *)gid;
	op.decision = SETTLE__V1__DECISION__DECIDE_COMMIT;
	op.one_phase = 1;
	c.op_case = SETTLE__V1__COMMAND__OP_DECIDE;
	c.decide = &op;
	add(&c);
}

static void xa_result(const char *gid, uint32_t branch, int outcome,
		      int heuristic, const char *error)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdXaResult op = SETTLE__V1__CMD_XA_RESULT__INIT;

	op.gid = (char *)gid;
	op.branch_id = branch;
	op.phase = SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING;
	op.outcome = outcome;
	op.heuristic = heuristic;
	op.error = (char *)error;
	op.attempt = 1;
	c.op_case = SETTLE__V1__COMMAND__OP_XA_RESULT;
	c.xa_result = &op;
	add(&c);
}

static void xa_forget(const char *gid)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdXaForget op = SETTLE__V1__CMD_XA_FORGET__INIT;

	op.gid = (char *)gid;
	c.op_case = SETTLE__V1__COMMAND__OP_XA_FORGET;
	c.xa_forget = &op;
	add(&c);
}

/* An operator's heuristic decision of an in-doubt transaction. */
static void xa_heuristic(const char *gid, int decision, const char *reason)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdXaHeuristic op = SETTLE__V1__CMD_XA_HEURISTIC__INIT;

	op.gid = (char *)gid;
	op.decision = decision;
	op.reason = (char *)reason;
	c.op_case = SETTLE__V1__COMMAND__OP_XA_HEURISTIC;
	c.xa_heuristic = &op;
	add(&c);
}

/* XA transactions in every XA state: committed with a heuristic (and a
 * forgotten one), prepared with and without a legacy TM's xid, a
 * one-phase branch awaited, rolled back by a vote. */
static void build_xa(void)
{
	const int vote_ok = SETTLE__V1__XA_VOTE__VOTE_OK;
	const int ok = SETTLE__V1__OUTCOME__OUTCOME_OK;
	static uint8_t wire[XA_XID_WIRE_MAX], wire2[XA_XID_WIRE_MAX];
	static char lgid[XA_XID_GID_LEN + 1], lgid2[XA_XID_GID_LEN + 1];
	struct xa_xid x;
	size_t len;

	xa_begin("x-committed", 60000, NULL, 0);
	xa_reg("x-committed", "pg");
	xa_reg("x-committed", "my");
	xa_vote("x-committed", 1, vote_ok);
	xa_vote("x-committed", 2, vote_ok);
	xa_prepare("x-committed");
	decide("x-committed", SETTLE__V1__DECISION__DECIDE_COMMIT, 0);
	xa_result("x-committed", 1, ok, SETTLE__V1__HEURISTIC__HEURISTIC_NONE,
		  "");
	xa_result("x-committed", 2, ok, SETTLE__V1__HEURISTIC__HEUR_ROLLBACK,
		  "rolled back outside Settle");

	xa_begin("x-prepared", 60000, NULL, 0);
	xa_reg("x-prepared", "pg");
	xa_vote("x-prepared", 1, SETTLE__V1__XA_VOTE__VOTE_READ_ONLY);
	reg("x-prepared", "127.0.0.1:7103", "account=gina;amount=3");
	xa_prepare("x-prepared");

	FUZZ_CHECK(xa_xid_init(&x, 4660, "legacy-tm-gtrid", 15, "b1", 2) == 0 &&
		       xa_xid_encode(&x, wire, sizeof(wire), &len) == 0 &&
		       xa_xid_gid(&x, lgid) == 0,
		   "history xid");
	xa_begin(lgid, 60000, wire, len);
	reg(lgid, "127.0.0.1:7104", "account=hal;amount=4");
	xa_prepare(lgid);

	/* Its TM gone for good: an operator decided it by hand. */
	FUZZ_CHECK(xa_xid_init(&x, 4660, "legacy-tm-gone", 14, "b1", 2) == 0 &&
		       xa_xid_encode(&x, wire2, sizeof(wire2), &len) == 0 &&
		       xa_xid_gid(&x, lgid2) == 0,
		   "history xid 2");
	xa_begin(lgid2, 60000, wire2, len);
	reg(lgid2, "127.0.0.1:7104", "account=ida;amount=5");
	xa_prepare(lgid2);
	xa_heuristic(lgid2, SETTLE__V1__DECISION__DECIDE_ROLLBACK,
		     "TM decommissioned, ticket 4711");

	xa_begin("x-onephase", 60000, NULL, 0);
	xa_reg("x-onephase", "pg");
	xa_commit_one_phase("x-onephase");

	xa_begin("x-voted-rollback", 60000, NULL, 0);
	xa_reg("x-voted-rollback", "pg");
	xa_reg("x-voted-rollback", "my");
	xa_vote("x-voted-rollback", 2, SETTLE__V1__XA_VOTE__VOTE_ROLLBACK);

	xa_begin("x-forgotten", 60000, NULL, 0);
	xa_reg("x-forgotten", "pg");
	xa_commit_one_phase("x-forgotten");
	xa_vote("x-forgotten", 1, SETTLE__V1__XA_VOTE__ONE_PHASE_UNKNOWN);
	xa_forget("x-forgotten");
}

static void build(void)
{
	const int commit = SETTLE__V1__DECISION__DECIDE_COMMIT;
	const int rollback = SETTLE__V1__DECISION__DECIDE_ROLLBACK;
	const int confirming = SETTLE__V1__BRANCH_STATE__CONFIRMING;
	const int cancelling = SETTLE__V1__BRANCH_STATE__CANCELLING;
	const int ok = SETTLE__V1__OUTCOME__OUTCOME_OK;

	if (n_entries > 0)
		return;
	begin("t-committed", 60000);
	reg("t-committed", "127.0.0.1:7101", "account=alice;amount=-100");
	reg("t-committed", "127.0.0.1:7102", "account=bob;amount=100");
	decide("t-committed", commit, 0);
	result("t-committed", 1, confirming, ok, "");
	result("t-committed", 2, confirming, ok, "");

	begin("t-rolledback", 60000);
	reg("t-rolledback", "[::1]:7101", "account=carol;amount=-5");
	decide("t-rolledback", rollback, 0);
	result("t-rolledback", 1, cancelling, ok, "");

	begin("t-active", 30000);
	reg("t-active", "bank.example:7101", "account=dave;amount=7");

	begin("t-committing", 60000);
	reg("t-committing", "127.0.0.1:7101", "account=erin;amount=-1");
	reg("t-committing", "127.0.0.1:7102", "account=frank;amount=1");
	decide("t-committing", commit, 0);
	result("t-committing", 1, confirming,
	       SETTLE__V1__OUTCOME__OUTCOME_RETRY, "connection refused");
	result("t-committing", 2, confirming,
	       SETTLE__V1__OUTCOME__OUTCOME_FAILURE, "no reservation");

	begin("t-deadline", 5);
	decide("t-deadline", rollback, 1);

	build_xa();

	/* A rejected command: its result is stored too. */
	decide("t-unknown", commit, 0);
	gc(1, 10);
}

size_t history_count(void)
{
	build();
	return n_entries;
}

const uint8_t *history_entry(size_t i, size_t *len)
{
	build();
	*len = entries[i].len;
	return entries[i].buf;
}

struct store *history_store(size_t mapsize, struct fsm *f)
{
	struct store_opts opts = {.mapsize =
				      mapsize != 0 ? mapsize : (64u << 20)};
	struct fsm local;
	struct store *s;
	char dir[128];
	char err[256];

	build();
	if (f == NULL)
		f = &local;
	fuzz_tempdir(dir, sizeof(dir));
	FUZZ_CHECK(store_open(dir, &opts, &s, err, sizeof(err)) == 0,
		   "store_open: %s", err);
	FUZZ_CHECK(fsm_init(f, s) == 0, "fsm_init");
	for (size_t i = 0; i < n_entries; i++) {
		Settle__V1__CmdResult *r = NULL;
		FUZZ_CHECK(fsm_apply(f, i + 1, entries[i].buf, entries[i].len,
				     &r) == 0,
			   "history apply %zu: %s", i, f->errmsg);
		settle__v1__cmd_result__free_unpacked(r, NULL);
	}
	if (f == &local)
		fsm_close(f);
	for (size_t i = 0; i < 4; i++) {
		if (open_stores[i].s == NULL) {
			open_stores[i].s = s;
			memcpy(open_stores[i].dir, dir, sizeof(dir));
			break;
		}
	}
	return s;
}

const char *history_store_dir(const struct store *s)
{
	for (size_t i = 0; i < 4; i++)
		if (open_stores[i].s == s)
			return open_stores[i].dir;
	return NULL;
}

/* After a close and open of the same directory. */
void history_store_reopened(struct store *old, struct store *s)
{
	for (size_t i = 0; i < 4; i++)
		if (open_stores[i].s == old)
			open_stores[i].s = s;
}

void history_store_close(struct store *s, struct fsm *f)
{
	if (f != NULL)
		fsm_close(f);
	store_close(s);
	for (size_t i = 0; i < 4; i++) {
		if (open_stores[i].s == s) {
			fuzz_tempdir_remove(open_stores[i].dir);
			open_stores[i].s = NULL;
		}
	}
}

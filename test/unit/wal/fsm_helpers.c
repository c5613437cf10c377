#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "fsm_helpers.h"

static void on_change(void *data, const Settle__V1__TxRecord *tx,
		      const struct fsm_was *was)
{
	struct tfsm *t = data;
	t->changes++;
	t->last_was = was->state;
	snprintf(t->last_gid, sizeof t->last_gid, "%s", tx->gid);
	t->last_state = tx->state;
}

void tfsm_open(struct tfsm *t)
{
	memset(t, 0, sizeof *t);
	tstore_open(&t->t, 0);
	cr_assert_eq(fsm_init(&t->f, t->t.s), 0);
	t->f.on_tx_change = on_change;
	t->f.data = t;
}

void tfsm_close(struct tfsm *t)
{
	fsm_close(&t->f);
	tstore_close(&t->t);
}

Settle__V1__CmdResult *tfsm_apply(struct tfsm *t, struct ent e)
{
	Settle__V1__CmdResult *r = NULL;
	int rv = fsm_apply(&t->f, ++t->index, e.buf, e.len, &r);
	cr_assert_eq(rv, 0, "apply %llu: %s", (unsigned long long)t->index,
		     t->f.errmsg);
	cr_assert_not_null(r);
	return r;
}

Settle__V1__CmdResult *tfsm_res(struct tfsm *t, struct ent e)
{
	Settle__V1__CmdResult *r = tfsm_apply(t, e);
	ent_free(e);
	return r;
}

int tfsm_code(struct tfsm *t, struct ent e)
{
	Settle__V1__CmdResult *r = tfsm_apply(t, e);
	int code = r->code;
	settle__v1__cmd_result__free_unpacked(r, NULL);
	ent_free(e);
	return code;
}

void ent_free(struct ent e)
{
	raft_free(e.buf);
}

struct ent ent_cmd(const Settle__V1__Command *cmd)
{
	struct ent e;
	cr_assert_eq(wal_entry_encode(cmd, &e.buf, &e.len), 0);
	return e;
}

struct ent ent_clocked(struct ent e, uint64_t clock, uint32_t timeout)
{
	Settle__V1__Command *cmd;
	cr_assert_eq(wal_entry_decode(e.buf, e.len, &cmd), 0);
	cmd->clock_ms = clock;
	if (cmd->op_case == SETTLE__V1__COMMAND__OP_BEGIN)
		cmd->begin->timeout_ms = timeout;
	struct ent out = ent_cmd(cmd);
	settle__v1__command__free_unpacked(cmd, NULL);
	ent_free(e);
	return out;
}

struct ent ent_digest(struct ent e, uint64_t digest)
{
	Settle__V1__Command *c;
	struct ent out;
	cr_assert_eq(wal_entry_decode(e.buf, e.len, &c), 0);
	c->request_digest = digest;
	out = ent_cmd(c);
	settle__v1__command__free_unpacked(c, NULL);
	ent_free(e);
	return out;
}

static void base(Settle__V1__Command *c, uint8_t *idbuf, int id, uint64_t time)
{
	settle__v1__command__init(c);
	memset(idbuf, 0x11, 16);
	memcpy(idbuf, &id, sizeof id);
	c->cmd_id.data = idbuf;
	c->cmd_id.len = 16;
	c->time_ms = time;
}

struct ent ent_begin_branches(int id, uint64_t time, const char *gid,
			      uint64_t deadline, size_t n, const char *endpoint,
			      const char *payload)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdBegin b;
	settle__v1__cmd_begin__init(&b);
	b.gid = (char *)gid;
	b.deadline_ms = deadline;
	b.mode = SETTLE__V1__TX_MODE__TCC;
	Settle__V1__BranchDecl *d = calloc(n + 1, sizeof *d);
	Settle__V1__BranchDecl **dp = calloc(n + 1, sizeof *dp);
	char(*res)[16] = calloc(n + 1, sizeof *res);
	cr_assert(d != NULL && dp != NULL && res != NULL);
	for (size_t i = 0; i < n; i++) {
		settle__v1__branch_decl__init(&d[i]);
		snprintf(res[i], sizeof res[i], "r%zu", i + 1);
		d[i].endpoint = (char *)endpoint;
		d[i].resource = res[i];
		d[i].payload.data = (uint8_t *)payload;
		d[i].payload.len = strlen(payload);
		dp[i] = &d[i];
	}
	b.n_branches = n;
	b.branches = dp;
	c.op_case = SETTLE__V1__COMMAND__OP_BEGIN;
	c.begin = &b;
	struct ent e = ent_cmd(&c);
	free(d);
	free(dp);
	free(res);
	return e;
}

struct ent ent_begin(int id, uint64_t time, const char *gid, uint64_t deadline)
{
	return ent_begin_branches(id, time, gid, deadline, 0, NULL, "");
}

struct ent ent_register(int id, uint64_t time, const char *gid,
			const char *endpoint, const char *resource,
			const char *payload)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdRegister r;
	settle__v1__cmd_register__init(&r);
	r.gid = (char *)gid;
	r.endpoint = (char *)endpoint;
	r.resource = (char *)resource;
	r.payload.data = (uint8_t *)payload;
	r.payload.len = strlen(payload);
	c.op_case = SETTLE__V1__COMMAND__OP_REGISTER;
	c.register_ = &r;
	return ent_cmd(&c);
}

struct ent ent_decide(int id, uint64_t time, const char *gid, int decision,
		      const char *reason, int timeout)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdDecide d;
	settle__v1__cmd_decide__init(&d);
	d.gid = (char *)gid;
	d.decision = decision;
	d.reason = (char *)reason;
	d.timeout = timeout;
	c.op_case = SETTLE__V1__COMMAND__OP_DECIDE;
	c.decide = &d;
	return ent_cmd(&c);
}

struct ent ent_result(int id, uint64_t time, const char *gid, uint32_t branch,
		      int phase, int outcome, const char *error,
		      uint32_t attempt, uint64_t next_retry)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdBranchResult r;
	settle__v1__cmd_branch_result__init(&r);
	r.gid = (char *)gid;
	r.branch_id = branch;
	r.phase = phase;
	r.outcome = outcome;
	r.error = (char *)error;
	r.attempt = attempt;
	r.next_retry_ms = next_retry;
	c.op_case = SETTLE__V1__COMMAND__OP_BRANCH_RESULT;
	c.branch_result = &r;
	return ent_cmd(&c);
}

struct ent ent_features(int id, uint64_t time, uint32_t level)
{
	Settle__V1__Command c;
	Settle__V1__CmdFeatures f = SETTLE__V1__CMD_FEATURES__INIT;
	uint8_t idb[16];
	base(&c, idb, id, time);
	memset(idb, 0x33, sizeof idb);
	memcpy(idb, &id, sizeof id);
	f.level = level;
	c.op_case = SETTLE__V1__COMMAND__OP_FEATURES;
	c.features = &f;
	return ent_cmd(&c);
}

struct ent ent_step_result(int id, uint64_t time, const char *gid,
			   uint32_t step, int phase, int outcome,
			   const char *error, uint64_t next_retry)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdStepResult r;
	settle__v1__cmd_step_result__init(&r);
	r.gid = (char *)gid;
	r.step = step;
	r.phase = phase;
	r.outcome = outcome;
	r.error = (char *)error;
	r.next_retry_ms = next_retry;
	c.op_case = SETTLE__V1__COMMAND__OP_STEP_RESULT;
	c.step_result = &r;
	return ent_cmd(&c);
}

struct ent ent_gc(int id, uint64_t time, uint64_t before, uint32_t limit)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdGc g;
	settle__v1__cmd_gc__init(&g);
	g.finished_before_ms = before;
	g.limit = limit;
	c.op_case = SETTLE__V1__COMMAND__OP_GC;
	c.gc = &g;
	return ent_cmd(&c);
}

struct ent ent_retry(int id, uint64_t time, const char *gid, uint32_t branch,
		     const char *reason)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdRetry r;
	settle__v1__cmd_retry__init(&r);
	r.gid = (char *)gid;
	r.branch_id = branch;
	r.reason = (char *)reason;
	c.op_case = SETTLE__V1__COMMAND__OP_RETRY;
	c.retry = &r;
	return ent_cmd(&c);
}

struct ent ent_resolve(int id, uint64_t time, const char *gid, uint32_t branch,
		       const char *reason)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdResolve r;
	settle__v1__cmd_resolve__init(&r);
	r.gid = (char *)gid;
	r.branch_id = branch;
	r.reason = (char *)reason;
	c.op_case = SETTLE__V1__COMMAND__OP_RESOLVE;
	c.resolve = &r;
	return ent_cmd(&c);
}

/* An XA begin with a legacy TM's xid or with RM branches rms[0..n). */
static struct ent xa_begin(int id, uint64_t time, const char *gid,
			   uint64_t deadline, const uint8_t *xid,
			   size_t xid_len, const char *const *rms, size_t n,
			   uint32_t format_id)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdBegin b;
	settle__v1__cmd_begin__init(&b);
	Settle__V1__BranchDecl d[8], *dp[8];
	cr_assert_leq(n, 8);
	for (size_t i = 0; i < n; i++) {
		settle__v1__branch_decl__init(&d[i]);
		d[i].rm = (char *)rms[i];
		dp[i] = &d[i];
	}
	b.gid = (char *)gid;
	b.deadline_ms = deadline;
	b.mode = SETTLE__V1__TX_MODE__XA;
	b.xid.data = (uint8_t *)xid;
	b.xid.len = xid_len;
	b.n_branches = n;
	b.branches = dp;
	b.xa_format_id = format_id;
	c.op_case = SETTLE__V1__COMMAND__OP_BEGIN;
	c.begin = &b;
	return ent_cmd(&c);
}

struct ent ent_xa_begin(int id, uint64_t time, const char *gid,
			uint64_t deadline, const uint8_t *xid, size_t xid_len)
{
	return xa_begin(id, time, gid, deadline, xid, xid_len, NULL, 0, 0);
}

struct ent ent_xa_begin_rms(int id, uint64_t time, const char *gid,
			    uint64_t deadline, const char *const *rms, size_t n,
			    uint32_t format_id)
{
	return xa_begin(id, time, gid, deadline, NULL, 0, rms, n, format_id);
}

struct ent ent_xa_commit_votes(int id, uint64_t time, const char *gid,
			       const uint32_t *branches, const int *votes,
			       size_t n, uint32_t phase2_ms)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdDecide d;
	settle__v1__cmd_decide__init(&d);
	Settle__V1__XaBranchVote v[8], *vp[8];
	cr_assert_leq(n, 8);
	for (size_t i = 0; i < n; i++) {
		settle__v1__xa_branch_vote__init(&v[i]);
		v[i].branch_id = branches[i];
		v[i].vote = (Settle__V1__XaVote)votes[i];
		v[i].error = "e";
		vp[i] = &v[i];
	}
	d.gid = (char *)gid;
	d.decision = SETTLE__V1__DECISION__DECIDE_COMMIT;
	d.one_phase = 1;
	d.initiator_phase2_ms = phase2_ms;
	d.n_votes = n;
	d.votes = vp;
	c.op_case = SETTLE__V1__COMMAND__OP_DECIDE;
	c.decide = &d;
	return ent_cmd(&c);
}

struct ent ent_xa_register(int id, uint64_t time, const char *gid,
			   const char *rm, uint32_t format_id)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdRegister r;
	settle__v1__cmd_register__init(&r);
	r.gid = (char *)gid;
	r.rm = (char *)rm;
	r.xa_format_id = format_id;
	c.op_case = SETTLE__V1__COMMAND__OP_REGISTER;
	c.register_ = &r;
	return ent_cmd(&c);
}

struct ent ent_xa_vote(int id, uint64_t time, const char *gid, uint32_t branch,
		       int vote, const char *error)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdXaVote v;
	settle__v1__cmd_xa_vote__init(&v);
	v.gid = (char *)gid;
	v.branch_id = branch;
	v.vote = vote;
	v.error = (char *)error;
	c.op_case = SETTLE__V1__COMMAND__OP_XA_VOTE;
	c.xa_vote = &v;
	return ent_cmd(&c);
}

struct ent ent_xa_prepare(int id, uint64_t time, const char *gid)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdXaPrepare p;
	settle__v1__cmd_xa_prepare__init(&p);
	p.gid = (char *)gid;
	c.op_case = SETTLE__V1__COMMAND__OP_XA_PREPARE;
	c.xa_prepare = &p;
	return ent_cmd(&c);
}

struct ent ent_xa_commit1(int id, uint64_t time, const char *gid)
{
	return ent_xa_commit_by_initiator(id, time, gid, 0);
}

struct ent ent_xa_commit_by_initiator(int id, uint64_t time, const char *gid,
				      uint32_t phase2_ms)
{
	return ent_xa_commit_votes(id, time, gid, NULL, NULL, 0, phase2_ms);
}

struct ent ent_xa_result(int id, uint64_t time, const char *gid,
			 uint32_t branch, int phase, int outcome, int heuristic,
			 const char *error, uint64_t next_retry)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdXaResult r;
	settle__v1__cmd_xa_result__init(&r);
	r.gid = (char *)gid;
	r.branch_id = branch;
	r.phase = phase;
	r.outcome = outcome;
	r.heuristic = heuristic;
	r.error = (char *)error;
	r.next_retry_ms = next_retry;
	c.op_case = SETTLE__V1__COMMAND__OP_XA_RESULT;
	c.xa_result = &r;
	return ent_cmd(&c);
}

struct ent ent_xa_forget(int id, uint64_t time, const char *gid)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdXaForget f;
	settle__v1__cmd_xa_forget__init(&f);
	f.gid = (char *)gid;
	c.op_case = SETTLE__V1__COMMAND__OP_XA_FORGET;
	c.xa_forget = &f;
	return ent_cmd(&c);
}

struct ent ent_xa_heuristic(int id, uint64_t time, const char *gid,
			    int decision, const char *reason)
{
	Settle__V1__Command c;
	uint8_t idb[16];
	base(&c, idb, id, time);
	Settle__V1__CmdXaHeuristic h;
	settle__v1__cmd_xa_heuristic__init(&h);
	h.gid = (char *)gid;
	h.decision = decision;
	h.reason = (char *)(reason != NULL ? reason : "");
	c.op_case = SETTLE__V1__COMMAND__OP_XA_HEURISTIC;
	c.xa_heuristic = &h;
	return ent_cmd(&c);
}

void tfsm_snapshot(struct tfsm *t, uint8_t **buf, size_t *len)
{
	cr_assert_eq(store_snapshot(t->t.s, 0, buf, len), 0);
}

static size_t count_rows(MDB_txn *txn, const char *name)
{
	MDB_dbi dbi;
	MDB_stat st;
	cr_assert_eq(mdb_dbi_open(txn, name, 0, &dbi), 0);
	cr_assert_eq(mdb_stat(txn, dbi, &st), 0);
	return st.ms_entries;
}

size_t tfsm_rows(struct tfsm *t, const char *db)
{
	MDB_txn *txn;
	cr_assert_eq(store_read_begin(t->t.s, &txn), 0);
	size_t n = count_rows(txn, db);
	store_read_end(txn);
	return n;
}

static bool has_row(MDB_txn *txn, const char *name, const void *key,
		    size_t klen)
{
	MDB_dbi dbi;
	cr_assert_eq(mdb_dbi_open(txn, name, 0, &dbi), 0);
	MDB_val k = {klen, (void *)key}, v;
	return mdb_get(txn, dbi, &k, &v) == 0;
}

static void be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		p[i] = (uint8_t)v;
}

void tfsm_check_indexes(struct tfsm *t)
{
	MDB_txn *txn;
	cr_assert_eq(store_read_begin(t->t.s, &txn), 0);
	Settle__V1__TxRecord **txs;
	size_t n;
	bool more;
	cr_assert_eq(store_tx_list(t->t.s, txn, 0, NULL, 100000, NULL, NULL,
				   &txs, &n, &more),
		     0);
	size_t due = 0, fin = 0, live = 0;
	uint64_t by_state[32] = {0};
	uint8_t key[200];
	for (size_t i = 0; i < n; i++) {
		size_t g = strlen(txs[i]->gid);
		if (txs[i]->due_ms != 0) {
			due++;
			be64(key, txs[i]->due_ms);
			memcpy(key + 8, txs[i]->gid, g);
			cr_expect(has_row(txn, "due", key, 8 + g),
				  "due row of %s", txs[i]->gid);
		}
		if (txs[i]->finished_ms != 0) {
			fin++;
			be64(key, txs[i]->finished_ms);
			memcpy(key + 8, txs[i]->gid, g);
			cr_expect(has_row(txn, "finished", key, 8 + g));
		}
		key[0] = (uint8_t)txs[i]->state;
		memcpy(key + 1, txs[i]->gid, g);
		/* A by_state row for a live state only; the final ones are
		 * counted (storage/counts.c). */
		bool final = txs[i]->finished_ms != 0;
		cr_expect_eq(has_row(txn, "by_state", key, 1 + g), !final,
			     "by_state row of %s", txs[i]->gid);
		live += !final;
		if (txs[i]->state < 32)
			by_state[txs[i]->state]++;
	}
	cr_expect_eq(count_rows(txn, "due"), due);
	cr_expect_eq(count_rows(txn, "finished"), fin);
	cr_expect_eq(count_rows(txn, "by_state"), live);
	struct store_counts cn;
	cr_assert_eq(store_counts_get(t->t.s, txn, &cn), 0);
	for (int st = 0; st < 32; st++)
		cr_expect_eq(cn.by_state[st], by_state[st], "state %d", st);
	cr_expect_eq(count_rows(txn, "cmds"), count_rows(txn, "cmd_time"));
	store_txs_free(txs, n);
	store_read_end(txn);
}

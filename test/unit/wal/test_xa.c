/* Transactions of mode XA in the FSM (wal/xa.c): the transition tables,
 * every command's effect and refusals, votes, prepare, one- and
 * two-phase commit, rollback and timeouts, phase-2 results and
 * heuristics, forget, an operator's verbs on FAILED RM branches,
 * determinism, at most once per cmd_id, and snapshots of XA state. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "error.h"
#include "fsm_helpers.h"
#include "wal/sm.h"
#include "wal/xa.h"
#include "xa/xid.h"

#define ST(x)	SETTLE__V1__BRANCH_STATE__##x
#define TX(x)	SETTLE__V1__TX_STATE__##x
#define CODE(x) SETTLE__V1__CODE__##x
#define VOTE(x) SETTLE__V1__XA_VOTE__##x
#define HEUR(x) SETTLE__V1__HEURISTIC__##x

#define COMMIT	 SETTLE__V1__DECISION__DECIDE_COMMIT
#define ROLLBACK SETTLE__V1__DECISION__DECIDE_ROLLBACK
#define R_OK	 SETTLE__V1__OUTCOME__OUTCOME_OK
#define R_RETRY	 SETTLE__V1__OUTCOME__OUTCOME_RETRY
#define R_FAIL	 SETTLE__V1__OUTCOME__OUTCOME_FAILURE
#define XCOMMIT	 ST(XA_BRANCH_COMMITTING)
#define XROLL	 ST(XA_BRANCH_ROLLING_BACK)
#define X1PC	 ST(XA_BRANCH_ONE_PHASE)
#define H0	 HEUR(HEURISTIC_NONE)
#define FID	 0x53544c45u
#define DEADLINE 100000
#define G	 "xa-g1"

static struct tfsm F;
static int next_id;
static uint64_t now;

static void setup(void)
{
	tfsm_open(&F);
	next_id = 1;
	now = 1000;
}

static void teardown(void)
{
	tfsm_close(&F);
}

TestSuite(xa, .init = setup, .fini = teardown);

/* ---- Helpers ------------------------------------------------------------ */

static Settle__V1__TxRecord *tx_of(struct tfsm *t, const char *gid)
{
	Settle__V1__TxRecord *tx;
	cr_assert_eq(store_tx_get(t->t.s, NULL, gid, &tx), 0, "tx %s", gid);
	return tx;
}

static Settle__V1__BranchRecord *branch_of(const char *gid, uint32_t id)
{
	Settle__V1__BranchRecord *b;
	cr_assert_eq(store_branch_get(F.t.s, NULL, gid, id, &b), 0);
	return b;
}

static int tx_state(const char *gid)
{
	Settle__V1__TxRecord *tx = tx_of(&F, gid);
	int st = tx->state;
	settle__v1__tx_record__free_unpacked(tx, NULL);
	return st;
}

static int branch_state(const char *gid, uint32_t id)
{
	Settle__V1__BranchRecord *b = branch_of(gid, id);
	int st = b->state;
	settle__v1__branch_record__free_unpacked(b, NULL);
	return st;
}

static int tx_heuristic(const char *gid)
{
	Settle__V1__TxRecord *tx = tx_of(&F, gid);
	int h = tx->heuristic;
	settle__v1__tx_record__free_unpacked(tx, NULL);
	return h;
}

/* Events of gid whose kind is kind (and whose detail holds sub, if not
 * NULL). */
static int events(const char *gid, const char *kind, const char *sub)
{
	Settle__V1__Event **ev;
	size_t n;
	cr_assert_eq(store_events_list(F.t.s, NULL, gid, &ev, &n), 0);
	int k = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(ev[i]->kind, kind) == 0 &&
		    (sub == NULL || strstr(ev[i]->detail, sub) != NULL))
			k++;
	store_events_free(ev, n);
	return k;
}

/* Commands carry `now`, which moves only when a test moves it. */
static int code(struct ent e)
{
	return tfsm_code(&F, e);
}

static Settle__V1__CmdResult *res(struct ent e)
{
	return tfsm_res(&F, e);
}

static void begin(const char *gid)
{
	cr_assert_eq(code(ent_xa_begin(next_id++, now, gid, DEADLINE, NULL, 0)),
		     CODE(OK));
}

static uint32_t reg(const char *gid, const char *rm)
{
	Settle__V1__CmdResult *r =
	    res(ent_xa_register(next_id++, now, gid, rm, FID));
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	uint32_t id = r->branch_id;
	settle__v1__cmd_result__free_unpacked(r, NULL);
	return id;
}

static uint32_t reg_tcc(const char *gid)
{
	Settle__V1__CmdResult *r = res(
	    ent_register(next_id++, now, gid, "127.0.0.1:9000", "acct", "p"));
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	uint32_t id = r->branch_id;
	settle__v1__cmd_result__free_unpacked(r, NULL);
	return id;
}

static int vote(const char *gid, uint32_t b, int v)
{
	return code(ent_xa_vote(next_id++, now, gid, b, v, "rm said so"));
}

static int prepare(const char *gid)
{
	return code(ent_xa_prepare(next_id++, now, gid));
}

static int decide(const char *gid, int d)
{
	return code(ent_decide(next_id++, now, gid, d, "", 0));
}

static int xres(const char *gid, uint32_t b, int phase, int outcome, int h,
		uint64_t next)
{
	return code(ent_xa_result(next_id++, now, gid, b, phase, outcome, h,
				  "rm text", next));
}

/* The wire XID and gid of a legacy TM's transaction. */
static void legacy_xid(uint8_t *wire, size_t *len, char *gid)
{
	struct xa_xid x;
	cr_assert_eq(xa_xid_init(&x, 77, "tm-gtrid", 8, "b1", 2), 0);
	cr_assert_eq(xa_xid_encode(&x, wire, XA_XID_WIRE_MAX, len), 0);
	cr_assert_eq(xa_xid_gid(&x, gid), 0);
}

/* ---- Tables ------------------------------------------------------------- */

static const int tx_states[] = {
    TX(TX_STATE_UNSPECIFIED), TX(ACTIVE),
    TX(COMMITTING),	      TX(COMMITTED),
    TX(ROLLING_BACK),	      TX(ROLLED_BACK),
    TX(XA_PREPARED),	      TX(SAGA_RUNNING),
};

static bool xa_tx_allowed(int f, int t)
{
	switch (f) {
	case TX(TX_STATE_UNSPECIFIED):
		return t == TX(ACTIVE);
	case TX(ACTIVE):
		return t == TX(XA_PREPARED) || t == TX(COMMITTING) ||
		       t == TX(COMMITTED) || t == TX(ROLLING_BACK) ||
		       t == TX(ROLLED_BACK);
	case TX(XA_PREPARED):
		return t == TX(COMMITTING) || t == TX(COMMITTED) ||
		       t == TX(ROLLING_BACK) || t == TX(ROLLED_BACK);
	case TX(COMMITTING):
		return t == TX(COMMITTED) || t == TX(ROLLED_BACK);
	case TX(ROLLING_BACK):
		return t == TX(ROLLED_BACK);
	default:
		return false;
	}
}

Test(xa, tx_table_allows_exactly_the_listed_moves)
{
	size_t n = sizeof tx_states / sizeof tx_states[0];
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int f = tx_states[i], t = tx_states[j];
			cr_expect_eq(wal_xa_tx_can_move(f, t),
				     xa_tx_allowed(f, t), "%s -> %s",
				     wal_tx_state_name(f),
				     wal_tx_state_name(t));
		}
	/* TCC transactions never see XA_PREPARED. */
	cr_expect_not(wal_tx_can_move(TX(ACTIVE), TX(XA_PREPARED)));
	cr_expect_not(wal_tx_can_move(TX(XA_PREPARED), TX(COMMITTING)));
	cr_expect_not(wal_xa_tx_can_move(-1, TX(ACTIVE)));
	cr_expect_not(wal_xa_tx_can_move(TX(ACTIVE), 99));
	cr_expect_str_eq(wal_tx_state_name(TX(XA_PREPARED)), "XA_PREPARED");
	cr_expect_str_eq(wal_tx_state_name(25), "?");
}

static const int br_states[] = {
    ST(BRANCH_STATE_UNSPECIFIED),
    ST(REGISTERED),
    ST(CONFIRMING),
    ST(FAILED),
    ST(XA_BRANCH_ACTIVE),
    ST(XA_BRANCH_PREPARED),
    ST(XA_BRANCH_READ_ONLY),
    ST(XA_BRANCH_COMMITTING),
    ST(XA_BRANCH_COMMITTED),
    ST(XA_BRANCH_ROLLING_BACK),
    ST(XA_BRANCH_ROLLED_BACK),
    ST(XA_BRANCH_ONE_PHASE),
};

static bool rm_allowed(int f, int t)
{
	switch (f) {
	case ST(BRANCH_STATE_UNSPECIFIED):
		return t == ST(XA_BRANCH_ACTIVE);
	case ST(XA_BRANCH_ACTIVE):
		return t == ST(XA_BRANCH_PREPARED) ||
		       t == ST(XA_BRANCH_READ_ONLY) ||
		       t == ST(XA_BRANCH_ROLLED_BACK) ||
		       t == ST(XA_BRANCH_ROLLING_BACK) ||
		       t == ST(XA_BRANCH_ONE_PHASE) ||
		       t == XCOMMIT; /* voted with the commit */
	case ST(XA_BRANCH_PREPARED):
		return t == XCOMMIT || t == XROLL;
	case ST(XA_BRANCH_COMMITTING):
		return t == ST(XA_BRANCH_COMMITTED) || t == ST(FAILED);
	case ST(XA_BRANCH_ROLLING_BACK):
		return t == ST(XA_BRANCH_ROLLED_BACK) || t == ST(FAILED);
	case ST(XA_BRANCH_ONE_PHASE):
		return t == ST(XA_BRANCH_COMMITTED) ||
		       t == ST(XA_BRANCH_ROLLED_BACK);
	default:
		return false;
	}
}

static bool rm_operator_allowed(int f, int t)
{
	return f == ST(FAILED) &&
	       (t == XCOMMIT || t == XROLL || t == ST(XA_BRANCH_COMMITTED) ||
		t == ST(XA_BRANCH_ROLLED_BACK));
}

Test(xa, rm_branch_tables_allow_exactly_the_listed_moves)
{
	size_t n = sizeof br_states / sizeof br_states[0];
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			int f = br_states[i], t = br_states[j];
			cr_expect_eq(wal_xa_branch_can_move(f, t),
				     rm_allowed(f, t), "%s -> %s",
				     wal_branch_state_name(f),
				     wal_branch_state_name(t));
			cr_expect_eq(
			    wal_xa_branch_operator_can_move(f, t),
			    rm_operator_allowed(f, t), "operator %s -> %s",
			    wal_branch_state_name(f), wal_branch_state_name(t));
			/* Participants' tables never take an operator's
			 * move, nor TCC ones an RM state. */
			if (t >= ST(XA_BRANCH_ACTIVE) ||
			    f >= ST(XA_BRANCH_ACTIVE))
				cr_expect_not(wal_branch_can_move(f, t));
		}
	cr_expect_str_eq(wal_branch_state_name(ST(XA_BRANCH_ONE_PHASE)),
			 "XA_BRANCH_ONE_PHASE");
	cr_expect_str_eq(wal_branch_state_name(38), "?");
}

Test(xa, invariants_of_xa_prepared)
{
	Settle__V1__TxRecord tx;
	settle__v1__tx_record__init(&tx);
	tx.gid = "g";
	tx.mode = SETTLE__V1__TX_MODE__XA;
	tx.state = TX(XA_PREPARED);
	tx.deadline_ms = 500;
	tx.next_branch_id = 1;
	tx.due_ms = 500;
	char why[200];
	cr_expect(wal_tx_invariants(&tx, why, sizeof why), "%s", why);
	tx.due_ms = 0;
	cr_expect_not(wal_tx_invariants(&tx, NULL, 0));
	uint8_t xid[8] = {0};
	tx.xid.data = xid;
	tx.xid.len = sizeof xid;
	cr_expect(wal_tx_invariants(&tx, why, sizeof why), "%s", why);
	tx.due_ms = 500;
	cr_expect_not(wal_tx_invariants(&tx, NULL, 0));
	/* XA_PREPARED, xid or a heuristic outside mode XA. */
	tx.due_ms = 0;
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	cr_expect_not(wal_tx_invariants(&tx, NULL, 0));
	tx.state = TX(ACTIVE);
	tx.due_ms = 500;
	cr_expect_not(wal_tx_invariants(&tx, NULL, 0));
	tx.xid.len = 0;
	cr_expect(wal_tx_invariants(&tx, why, sizeof why), "%s", why);
	tx.heuristic = HEUR(HEUR_HAZARD);
	cr_expect_not(wal_tx_invariants(&tx, NULL, 0));
}

/* ---- Names, XIDs, heuristics -------------------------------------------- */

Test(xa, branch_xid_round_trips_and_refuses_foreign_ones)
{
	struct xa_xid x;
	cr_assert_eq(wal_xa_branch_xid(FID, "g-1", 42, &x), 0);
	cr_expect_eq(x.format_id, (int32_t)FID);
	cr_expect_eq(x.gtrid_len, 3);
	cr_expect_eq(memcmp(xa_xid_gtrid(&x), "g-1", 3), 0);
	cr_expect_eq(x.bqual_len, 2);
	cr_expect_eq(memcmp(xa_xid_bqual(&x), "42", 2), 0);
	char gid[WAL_XA_GID_MAX + 1];
	uint32_t id = 0;
	cr_assert_eq(wal_xa_xid_branch(&x, gid, &id), 0);
	cr_expect_str_eq(gid, "g-1");
	cr_expect_eq(id, 42);
	cr_expect_eq(wal_xa_branch_xid(FID, "g", 0, &x), SETTLE_EINVAL);
	cr_expect_eq(wal_xa_branch_xid(1u << 31, "g", 1, &x), SETTLE_EINVAL);
	char long_gid[70];
	memset(long_gid, 'a', 65);
	long_gid[65] = 0;
	cr_expect_eq(wal_xa_branch_xid(FID, long_gid, 1, &x), SETTLE_EINVAL);
	const char *bquals[] = {"0", "01", "1a", "4294967296", "12345678901"};
	for (size_t i = 0; i < 5; i++) {
		cr_assert_eq(
		    xa_xid_init(&x, 1, "g", 1, bquals[i], strlen(bquals[i])),
		    0);
		cr_expect_eq(wal_xa_xid_branch(&x, gid, &id), SETTLE_EINVAL,
			     "%s", bquals[i]);
	}
	cr_assert_eq(xa_xid_init(&x, 1, "a b", 3, "1", 1), 0);
	cr_expect_eq(wal_xa_xid_branch(&x, gid, &id), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_init(&x, 1, "a\0b", 3, "1", 1), 0);
	cr_expect_eq(wal_xa_xid_branch(&x, gid, &id), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_init(&x, 1, "g", 1, "4294967295", 10), 0);
	cr_expect_eq(wal_xa_xid_branch(&x, gid, &id), 0);
	cr_expect_eq(id, UINT32_MAX);
}

Test(xa, heuristics_merge_and_names)
{
	cr_expect_eq(wal_xa_heuristic_merge(H0, H0), H0);
	cr_expect_eq(wal_xa_heuristic_merge(H0, HEUR(HEUR_HAZARD)),
		     HEUR(HEUR_HAZARD));
	cr_expect_eq(wal_xa_heuristic_merge(HEUR(HEUR_HAZARD), H0),
		     HEUR(HEUR_HAZARD));
	cr_expect_eq(
	    wal_xa_heuristic_merge(HEUR(HEUR_HAZARD), HEUR(HEUR_HAZARD)),
	    HEUR(HEUR_HAZARD));
	cr_expect_eq(
	    wal_xa_heuristic_merge(HEUR(HEUR_COMMIT), HEUR(HEUR_ROLLBACK)),
	    HEUR(HEUR_MIXED));
	cr_expect_eq(
	    wal_xa_heuristic_merge(HEUR(HEUR_HAZARD), HEUR(HEUR_ROLLBACK)),
	    HEUR(HEUR_MIXED));
	cr_expect_eq(
	    wal_xa_heuristic_merge(HEUR(HEUR_MIXED), HEUR(HEUR_COMMIT)),
	    HEUR(HEUR_MIXED));
	cr_expect_str_eq(wal_xa_heuristic_name(HEUR(HEUR_MIXED)), "HEUR_MIXED");
	cr_expect_str_eq(wal_xa_vote_name(VOTE(VOTE_READ_ONLY)),
			 "VOTE_READ_ONLY");
	cr_expect_str_eq(wal_xa_vote_name(99), "?");
	cr_expect_eq(wal_xa_rm_validate("pg_1.main-db"), 0);
	cr_expect_eq(wal_xa_rm_validate(""), SETTLE_EINVAL);
	cr_expect_eq(wal_xa_rm_validate(NULL), SETTLE_EINVAL);
	cr_expect_eq(wal_xa_rm_validate("a b"), SETTLE_EINVAL);
	cr_expect_eq(wal_xa_rm_validate("a=b"), SETTLE_EINVAL);
	char rm[70];
	memset(rm, 'r', 64);
	rm[64] = 0;
	cr_expect_eq(wal_xa_rm_validate(rm), 0);
	rm[64] = 'r';
	rm[65] = 0;
	cr_expect_eq(wal_xa_rm_validate(rm), SETTLE_EINVAL);
}

/* ---- Validation --------------------------------------------------------- */

static int validate(Settle__V1__Command *c, char *msg, size_t cap)
{
	static uint8_t id[16] = {4, 2};
	c->cmd_id.data = id;
	c->cmd_id.len = 16;
	c->time_ms = 1;
	return wal_command_validate(c, msg, cap);
}

Test(xa, validation_names_the_field)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdXaVote v = SETTLE__V1__CMD_XA_VOTE__INIT;
	Settle__V1__CmdXaPrepare p = SETTLE__V1__CMD_XA_PREPARE__INIT;
	Settle__V1__CmdXaForget f = SETTLE__V1__CMD_XA_FORGET__INIT;
	Settle__V1__CmdXaResult r = SETTLE__V1__CMD_XA_RESULT__INIT;
	char msg[256], text[WAL_TEXT_MAX + 2];
	memset(text, 'e', sizeof text - 1);
	text[sizeof text - 1] = 0;

	c.op_case = SETTLE__V1__COMMAND__OP_XA_VOTE;
	c.xa_vote = &v;
	v.gid = "g";
	v.vote = VOTE(VOTE_OK);
	cr_expect_eq(validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "branch_id") != NULL, "%s", msg);
	v.branch_id = 1;
	cr_expect_eq(validate(&c, msg, sizeof msg), 0, "%s", msg);
	/* Branch 0 (all) only for the initiator's phase-2 votes. */
	v.branch_id = 0;
	v.vote = VOTE(PHASE2_COMMITTED);
	cr_expect_eq(validate(&c, msg, sizeof msg), 0, "%s", msg);
	v.vote = VOTE(PHASE2_NOT_DONE) + 1;
	cr_expect_eq(validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "vote") != NULL, "%s", msg);
	v.vote = VOTE(VOTE_OK);
	v.branch_id = 1;
	v.error = text;
	cr_expect_eq(validate(&c, msg, sizeof msg), SETTLE_ETOOBIG);
	cr_expect(strstr(msg, "error") != NULL, "%s", msg);
	v.error = "";
	v.gid = "a b";
	cr_expect_eq(validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "gid") != NULL, "%s", msg);

	c.op_case = SETTLE__V1__COMMAND__OP_XA_PREPARE;
	c.xa_prepare = &p;
	cr_expect_eq(validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	p.gid = "g";
	cr_expect_eq(validate(&c, msg, sizeof msg), 0);

	c.op_case = SETTLE__V1__COMMAND__OP_XA_FORGET;
	c.xa_forget = &f;
	cr_expect_eq(validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	f.gid = "g";
	cr_expect_eq(validate(&c, msg, sizeof msg), 0);

	c.op_case = SETTLE__V1__COMMAND__OP_XA_RESULT;
	c.xa_result = &r;
	r.gid = "g";
	r.branch_id = 1;
	r.phase = XCOMMIT;
	r.outcome = R_OK;
	r.heuristic = HEUR(HEUR_MIXED);
	cr_expect_eq(validate(&c, msg, sizeof msg), 0, "%s", msg);
	r.phase = ST(XA_BRANCH_PREPARED);
	cr_expect_eq(validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "phase") != NULL, "%s", msg);
	r.phase = XROLL;
	r.error = text;
	cr_expect_eq(validate(&c, msg, sizeof msg), SETTLE_ETOOBIG);
}

/* ---- Begin and register ------------------------------------------------- */

Test(xa, begin_xa_keeps_mode_and_xid)
{
	begin(G);
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_eq(tx->mode, SETTLE__V1__TX_MODE__XA);
	cr_expect_eq(tx->state, TX(ACTIVE));
	cr_expect_eq(tx->due_ms, DEADLINE);
	cr_expect_eq(tx->xid.len, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);

	uint8_t wire[XA_XID_WIRE_MAX];
	size_t len;
	char gid[XA_XID_GID_LEN + 1];
	legacy_xid(wire, &len, gid);
	cr_assert_eq(
	    code(ent_xa_begin(next_id++, now, gid, DEADLINE, wire, len)),
	    CODE(OK));
	tx = tx_of(&F, gid);
	cr_expect_eq(tx->xid.len, len);
	cr_expect_eq(memcmp(tx->xid.data, wire, len), 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(events(gid, "begin", "mode XA xid 77:"), 1);
}

Test(xa, begin_refuses_bad_xa_arguments)
{
	uint8_t wire[XA_XID_WIRE_MAX];
	size_t len;
	char gid[XA_XID_GID_LEN + 1];
	legacy_xid(wire, &len, gid);
	/* The gid must be the xid's. */
	cr_expect_eq(
	    code(ent_xa_begin(next_id++, now, "other", DEADLINE, wire, len)),
	    CODE(INVALID_ARGUMENT));
	/* An xid that does not decode. */
	cr_expect_eq(
	    code(ent_xa_begin(next_id++, now, gid, DEADLINE, wire, len - 1)),
	    CODE(INVALID_ARGUMENT));
	/* A gid over 64 bytes cannot be a gtrid. */
	char long_gid[70];
	memset(long_gid, 'g', 65);
	long_gid[65] = 0;
	cr_expect_eq(
	    code(ent_xa_begin(next_id++, now, long_gid, DEADLINE, NULL, 0)),
	    CODE(INVALID_ARGUMENT));
	long_gid[64] = 0;
	cr_expect_eq(
	    code(ent_xa_begin(next_id++, now, long_gid, DEADLINE, NULL, 0)),
	    CODE(OK));
	/* An xid on a TCC begin. */
	Settle__V1__Command c;
	settle__v1__command__init(&c);
	uint8_t id[16] = {9, 9, 9};
	c.cmd_id.data = id;
	c.cmd_id.len = 16;
	c.time_ms = now;
	Settle__V1__CmdBegin b;
	settle__v1__cmd_begin__init(&b);
	b.gid = gid;
	b.deadline_ms = DEADLINE;
	b.mode = SETTLE__V1__TX_MODE__TCC;
	b.xid.data = wire;
	b.xid.len = len;
	c.op_case = SETTLE__V1__COMMAND__OP_BEGIN;
	c.begin = &b;
	char msg[200];
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "xid") != NULL, "%s", msg);
}

Test(xa, register_builds_the_branch_xid)
{
	begin(G);
	Settle__V1__CmdResult *r =
	    res(ent_xa_register(next_id++, now, G, "pg", FID));
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->branch_id, 1);
	struct xa_xid want, got;
	cr_assert_eq(xa_xid_init(&want, FID, G, strlen(G), "1", 1), 0);
	cr_assert_eq(xa_xid_decode(r->xid.data, r->xid.len, &got), 0);
	cr_expect(xa_xid_equal(&want, &got));
	settle__v1__cmd_result__free_unpacked(r, NULL);

	Settle__V1__BranchRecord *b = branch_of(G, 1);
	cr_expect_eq(b->state, ST(XA_BRANCH_ACTIVE));
	cr_expect_str_eq(b->rm, "pg");
	cr_expect_str_eq(b->endpoint, "");
	cr_assert_eq(xa_xid_decode(b->xid.data, b->xid.len, &got), 0);
	cr_expect(xa_xid_equal(&want, &got));
	settle__v1__branch_record__free_unpacked(b, NULL);
	char text[XA_XID_TEXT_MAX], detail[XA_XID_TEXT_MAX + 32];
	cr_assert_eq(xa_xid_format(&want, text, sizeof text), 0);
	snprintf(detail, sizeof detail, "rm pg xid %s", text);
	cr_expect_eq(events(G, "register", detail), 1);

	/* A TCC branch joins an XA transaction as well; ids go on. */
	cr_expect_eq(reg_tcc(G), 2);
	cr_expect_eq(reg(G, "my"), 3);
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_eq(tx->branches, 3);
	cr_expect_eq(tx->pending, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	tfsm_check_indexes(&F);
}

Test(xa, register_refusals)
{
	/* Unknown gid, a TCC tx, an XA tx no longer ACTIVE. */
	cr_expect_eq(code(ent_xa_register(next_id++, now, "nope", "pg", FID)),
		     CODE(NOT_FOUND));
	cr_assert_eq(code(ent_begin(next_id++, now, "tcc", DEADLINE)),
		     CODE(OK));
	cr_expect_eq(code(ent_xa_register(next_id++, now, "tcc", "pg", FID)),
		     CODE(WRONG_STATE));
	begin(G);
	cr_assert_eq(decide(G, ROLLBACK), CODE(OK));
	cr_expect_eq(tx_state(G), TX(ROLLED_BACK));
	cr_expect_eq(code(ent_xa_register(next_id++, now, G, "pg", FID)),
		     CODE(WRONG_STATE));
	/* Invalid: rm name, format id, rm with endpoint. */
	begin("g2");
	cr_expect_eq(code(ent_xa_register(next_id++, now, "g2", "p g", FID)),
		     CODE(INVALID_ARGUMENT));
	cr_expect_eq(
	    code(ent_xa_register(next_id++, now, "g2", "pg", 1u << 31)),
	    CODE(INVALID_ARGUMENT));
	Settle__V1__Command c;
	settle__v1__command__init(&c);
	uint8_t id[16] = {7};
	c.cmd_id.data = id;
	c.cmd_id.len = 16;
	c.time_ms = now;
	Settle__V1__CmdRegister r;
	settle__v1__cmd_register__init(&r);
	r.gid = "g2";
	r.rm = "pg";
	r.endpoint = "127.0.0.1:1";
	c.op_case = SETTLE__V1__COMMAND__OP_REGISTER;
	c.register_ = &r;
	cr_expect_eq(wal_command_validate(&c, NULL, 0), SETTLE_EINVAL);
	r.rm = "";
	r.xa_format_id = 5;
	cr_expect_eq(wal_command_validate(&c, NULL, 0), SETTLE_EINVAL);
	r.xa_format_id = 0;
	cr_expect_eq(wal_command_validate(&c, NULL, 0), 0);
	Settle__V1__TxRecord *tx = tx_of(&F, "g2");
	cr_expect_eq(tx->branches, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

/* ---- Votes -------------------------------------------------------------- */

Test(xa, votes_move_the_branch_and_repeat_idempotently)
{
	begin(G);
	uint32_t b1 = reg(G, "pg"), b2 = reg(G, "my");
	Settle__V1__CmdResult *r =
	    res(ent_xa_vote(next_id++, now, G, b1, VOTE(VOTE_OK), ""));
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->branch_state, ST(XA_BRANCH_PREPARED));
	cr_expect_eq(r->state, TX(ACTIVE));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(vote(G, b2, VOTE(VOTE_READ_ONLY)), CODE(OK));
	cr_expect_eq(branch_state(G, b2), ST(XA_BRANCH_READ_ONLY));
	/* The same vote again (another cmd_id): OK, nothing new. */
	int before = events(G, "vote", NULL);
	r = res(ent_xa_vote(next_id++, now, G, b1, VOTE(VOTE_OK), ""));
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->branch_state, ST(XA_BRANCH_PREPARED));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(vote(G, b2, VOTE(VOTE_READ_ONLY)), CODE(OK));
	cr_expect_eq(events(G, "vote", NULL), before);
	/* Another vote on a voted branch: refused. */
	cr_expect_eq(vote(G, b1, VOTE(VOTE_ROLLBACK)), CODE(WRONG_STATE));
	cr_expect_eq(vote(G, b2, VOTE(VOTE_OK)), CODE(WRONG_STATE));
	/* One-phase outcomes need a one-phase branch. */
	cr_expect_eq(vote(G, b1, VOTE(ONE_PHASE_ROLLED_BACK)),
		     CODE(WRONG_STATE));
	cr_expect_eq(branch_state(G, b1), ST(XA_BRANCH_PREPARED));
	/* Unknown branch; a TCC branch has nothing to vote. */
	cr_expect_eq(vote(G, 9, VOTE(VOTE_OK)), CODE(NOT_FOUND));
	uint32_t t = reg_tcc(G);
	cr_expect_eq(vote(G, t, VOTE(VOTE_OK)), CODE(WRONG_STATE));
	cr_expect_eq(vote("nope", 1, VOTE(VOTE_OK)), CODE(NOT_FOUND));
	cr_expect_eq(events(G, "vote", "VOTE_OK"), 1);
	/* Validation: vote 0 and 9. */
	cr_expect_eq(vote(G, b1, 0), CODE(INVALID_ARGUMENT));
	cr_expect_eq(vote(G, b1, 9), CODE(INVALID_ARGUMENT));
	cr_expect_eq(tx_state(G), TX(ACTIVE));
}

Test(xa, rollback_vote_rolls_the_transaction_back)
{
	begin(G);
	uint32_t b1 = reg(G, "pg"), b2 = reg(G, "my"), b3 = reg(G, "ro");
	uint32_t t = reg_tcc(G);
	cr_assert_eq(vote(G, b1, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(vote(G, b3, VOTE(VOTE_READ_ONLY)), CODE(OK));
	Settle__V1__CmdResult *r = res(ent_xa_vote(
	    next_id++, now, G, b2, VOTE(VOTE_ROLLBACK), "deadlock victim"));
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->branch_state, ST(XA_BRANCH_ROLLED_BACK));
	cr_expect_eq(r->state, TX(ROLLING_BACK));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state(G, b1), XROLL);
	cr_expect_eq(branch_state(G, b3), ST(XA_BRANCH_READ_ONLY));
	cr_expect_eq(branch_state(G, t), ST(CANCELLING));
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_str_eq(tx->reason, "branch 2 voted rollback: deadlock "
				     "victim");
	cr_expect_eq(tx->pending, 2);
	cr_expect_eq(tx->due_ms, now);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	/* The rollback vote again: OK. Votes on others: refused. */
	cr_expect_eq(vote(G, b2, VOTE(VOTE_ROLLBACK)), CODE(OK));
	cr_expect_eq(vote(G, b1, VOTE(VOTE_OK)), CODE(WRONG_STATE));
	/* Phase 2 ends it. */
	cr_expect_eq(xres(G, b1, XROLL, R_OK, H0, 0), CODE(OK));
	cr_expect_eq(code(ent_result(next_id++, now, G, t, ST(CANCELLING), R_OK,
				     "", 1, 0)),
		     CODE(OK));
	cr_expect_eq(tx_state(G), TX(ROLLED_BACK));
	cr_expect_eq(branch_state(G, b1), ST(XA_BRANCH_ROLLED_BACK));
	cr_expect_eq(branch_state(G, t), ST(CANCELLED));
	cr_expect_eq(events(G, "rolled_back", NULL), 1);
	/* Preparing a rolled back tx answers its state (the TM's XA_RB*). */
	r = res(ent_xa_prepare(next_id++, now, G));
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->state, TX(ROLLED_BACK));
	cr_expect_not(r->read_only);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	tfsm_check_indexes(&F);
}

/* ---- Prepare ------------------------------------------------------------ */

Test(xa, prepare_needs_every_vote)
{
	begin(G);
	uint32_t b1 = reg(G, "pg"), b2 = reg(G, "my");
	cr_assert_eq(vote(G, b1, VOTE(VOTE_OK)), CODE(OK));
	Settle__V1__CmdResult *r = res(ent_xa_prepare(next_id++, now, G));
	cr_expect_eq(r->code, CODE(WRONG_STATE));
	cr_expect(strstr(r->message, "branch 2 has not voted") != NULL, "%s",
		  r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tx_state(G), TX(ACTIVE));
	cr_assert_eq(vote(G, b2, VOTE(VOTE_OK)), CODE(OK));
	r = res(ent_xa_prepare(next_id++, now, G));
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->state, TX(XA_PREPARED));
	cr_expect_not(r->read_only);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	/* No xid: presumed abort at the deadline. */
	cr_expect_eq(tx->due_ms, DEADLINE);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(events(G, "prepare", NULL), 1);
	/* Again: the same answer. Votes and registers now refused. */
	cr_expect_eq(prepare(G), CODE(OK));
	cr_expect_eq(events(G, "prepare", NULL), 1);
	cr_expect_eq(vote(G, b1, VOTE(VOTE_ROLLBACK)), CODE(WRONG_STATE));
	cr_expect_eq(code(ent_xa_register(next_id++, now, G, "pg", FID)),
		     CODE(WRONG_STATE));
	cr_expect_eq(tx_state(G), TX(XA_PREPARED));
	/* Prepare of a TCC tx, of an unknown one. */
	cr_assert_eq(code(ent_begin(next_id++, now, "tcc", DEADLINE)),
		     CODE(OK));
	cr_expect_eq(prepare("tcc"), CODE(WRONG_STATE));
	cr_expect_eq(prepare("nope"), CODE(NOT_FOUND));
	/* A committing tx cannot be prepared. */
	cr_assert_eq(decide(G, COMMIT), CODE(OK));
	cr_expect_eq(prepare(G), CODE(WRONG_STATE));
	tfsm_check_indexes(&F);
}

Test(xa, read_only_prepare_commits_at_once)
{
	begin(G);
	uint32_t b1 = reg(G, "pg"), b2 = reg(G, "my");
	cr_assert_eq(vote(G, b1, VOTE(VOTE_READ_ONLY)), CODE(OK));
	cr_assert_eq(vote(G, b2, VOTE(VOTE_READ_ONLY)), CODE(OK));
	Settle__V1__CmdResult *r = res(ent_xa_prepare(next_id++, now, G));
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->state, TX(COMMITTED));
	cr_expect(r->read_only);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_eq(tx->finished_ms, now);
	cr_expect_eq(tx->due_ms, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	/* Repeated: read_only again. */
	r = res(ent_xa_prepare(next_id++, now, G));
	cr_expect_eq(r->code, CODE(OK));
	cr_expect(r->read_only);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	/* A TCC branch needs phase 2: not read-only. */
	begin("g2");
	reg_tcc("g2");
	r = res(ent_xa_prepare(next_id++, now, "g2"));
	cr_expect_eq(r->state, TX(XA_PREPARED));
	cr_expect_not(r->read_only);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	/* No branch at all: read-only. */
	begin("g3");
	r = res(ent_xa_prepare(next_id++, now, "g3"));
	cr_expect_eq(r->state, TX(COMMITTED));
	cr_expect(r->read_only);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	tfsm_check_indexes(&F);
}

Test(xa, prepared_with_an_xid_is_in_doubt_and_never_timed_out)
{
	uint8_t wire[XA_XID_WIRE_MAX];
	size_t len;
	char gid[XA_XID_GID_LEN + 1];
	legacy_xid(wire, &len, gid);
	cr_assert_eq(
	    code(ent_xa_begin(next_id++, now, gid, DEADLINE, wire, len)),
	    CODE(OK));
	uint32_t t = reg_tcc(gid);
	cr_assert_eq(prepare(gid), CODE(OK));
	Settle__V1__TxRecord *tx = tx_of(&F, gid);
	cr_expect_eq(tx->state, TX(XA_PREPARED));
	cr_expect_eq(tx->due_ms, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	now = DEADLINE + 10;
	cr_expect_eq(code(ent_decide(next_id++, now, gid, ROLLBACK, "", 1)),
		     CODE(WRONG_STATE));
	cr_expect_eq(tx_state(gid), TX(XA_PREPARED));
	/* The TM decides: commit confirms the TCC branch. */
	cr_expect_eq(decide(gid, COMMIT), CODE(OK));
	cr_expect_eq(branch_state(gid, t), ST(CONFIRMING));
	cr_expect_eq(code(ent_result(next_id++, now, gid, t, ST(CONFIRMING),
				     R_OK, "", 1, 0)),
		     CODE(OK));
	cr_expect_eq(tx_state(gid), TX(COMMITTED));
	tfsm_check_indexes(&F);
}

/* ---- Commit ------------------------------------------------------------- */

Test(xa, two_phase_commit)
{
	begin(G);
	uint32_t b1 = reg(G, "pg"), b2 = reg(G, "my"), b3 = reg(G, "ro");
	cr_assert_eq(vote(G, b1, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(vote(G, b2, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(vote(G, b3, VOTE(VOTE_READ_ONLY)), CODE(OK));
	/* Not prepared, not one phase: refused. */
	Settle__V1__CmdResult *r =
	    res(ent_decide(next_id++, now, G, COMMIT, "", 0));
	cr_expect_eq(r->code, CODE(WRONG_STATE));
	cr_expect(strstr(r->message, "prepare") != NULL, "%s", r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_assert_eq(prepare(G), CODE(OK));
	cr_assert_eq(decide(G, COMMIT), CODE(OK));
	/* Phase 2 remembers the raft index of the decision, so a later
	 * leader knows it did not decide it. */
	uint64_t decided_at = F.index;
	Settle__V1__BranchRecord *br = branch_of(G, b1);
	cr_expect_eq(br->phase2_index, decided_at);
	settle__v1__branch_record__free_unpacked(br, NULL);
	br = branch_of(G, b3);
	cr_expect_eq(br->phase2_index, 0, "a read-only branch has no phase 2");
	settle__v1__branch_record__free_unpacked(br, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_eq(tx->state, TX(COMMITTING));
	cr_expect_eq(tx->pending, 2);
	cr_expect_eq(tx->due_ms, now);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(branch_state(G, b1), XCOMMIT);
	cr_expect_eq(branch_state(G, b2), XCOMMIT);
	cr_expect_eq(branch_state(G, b3), ST(XA_BRANCH_READ_ONLY));
	/* Repeated: OK; the opposite: refused. */
	cr_expect_eq(decide(G, COMMIT), CODE(OK));
	cr_expect_eq(decide(G, ROLLBACK), CODE(WRONG_STATE));
	cr_expect_eq(xres(G, b1, XCOMMIT, R_OK, H0, 0), CODE(OK));
	cr_expect_eq(tx_state(G), TX(COMMITTING));
	br = branch_of(G, b2);
	cr_expect_eq(br->phase2_index, decided_at, "the repeat kept it");
	settle__v1__branch_record__free_unpacked(br, NULL);
	/* A result for another phase is late: ignored. */
	cr_expect_eq(xres(G, b1, XCOMMIT, R_FAIL, H0, 0), CODE(OK));
	cr_expect_eq(xres(G, b2, XROLL, R_OK, H0, 0), CODE(OK));
	cr_expect_eq(branch_state(G, b2), XCOMMIT);
	cr_expect_eq(xres(G, b2, XCOMMIT, R_OK, H0, 0), CODE(OK));
	tx = tx_of(&F, G);
	cr_expect_eq(tx->state, TX(COMMITTED));
	cr_expect_eq(tx->heuristic, H0);
	cr_expect_eq(tx->pending, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(branch_state(G, b1), ST(XA_BRANCH_COMMITTED));
	cr_expect_eq(events(G, "xa_commit", "ok attempt 1"), 2);
	cr_expect_eq(events(G, "committed", NULL), 1);
	cr_expect_eq(xres(G, 9, XCOMMIT, R_OK, H0, 0), CODE(NOT_FOUND));
	tfsm_check_indexes(&F);
}

Test(xa, one_phase_with_every_branch_voted)
{
	begin(G);
	uint32_t b1 = reg(G, "pg"), b2 = reg(G, "my");
	cr_assert_eq(vote(G, b1, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(vote(G, b2, VOTE(VOTE_READ_ONLY)), CODE(OK));
	cr_assert_eq(code(ent_xa_commit1(next_id++, now, G)), CODE(OK));
	cr_expect_eq(tx_state(G), TX(COMMITTING));
	cr_expect_eq(branch_state(G, b1), XCOMMIT);
	cr_expect_eq(branch_state(G, b2), ST(XA_BRANCH_READ_ONLY));
	/* All read-only: committed at once. */
	begin("g2");
	uint32_t r1 = reg("g2", "pg");
	cr_assert_eq(vote("g2", r1, VOTE(VOTE_READ_ONLY)), CODE(OK));
	cr_assert_eq(code(ent_xa_commit1(next_id++, now, "g2")), CODE(OK));
	cr_expect_eq(tx_state("g2"), TX(COMMITTED));
	/* TMONEPHASE of a legacy TM's tx with TCC branches only. */
	begin("g3");
	uint32_t t = reg_tcc("g3");
	cr_assert_eq(code(ent_xa_commit1(next_id++, now, "g3")), CODE(OK));
	cr_expect_eq(branch_state("g3", t), ST(CONFIRMING));
	tfsm_check_indexes(&F);
}

Test(xa, one_phase_lone_unvoted_branch)
{
	begin(G);
	uint32_t b1 = reg(G, "pg"), b2 = reg(G, "ro");
	cr_assert_eq(vote(G, b2, VOTE(VOTE_READ_ONLY)), CODE(OK));
	cr_assert_eq(code(ent_xa_commit1(next_id++, now, G)), CODE(OK));
	cr_expect_eq(branch_state(G, b1), X1PC);
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_eq(tx->state, TX(COMMITTING));
	cr_expect_eq(tx->pending, 1);
	cr_expect_eq(tx->due_ms, now + WAL_XA_ONE_PHASE_GRACE_MS);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	/* The decision is made: rollback refused, repeat OK. */
	cr_expect_eq(decide(G, ROLLBACK), CODE(WRONG_STATE));
	cr_expect_eq(code(ent_xa_commit1(next_id++, now, G)), CODE(OK));
	/* A prepare vote now is refused; the one-phase outcome ends it. */
	cr_expect_eq(vote(G, b1, VOTE(VOTE_OK)), CODE(WRONG_STATE));
	Settle__V1__CmdResult *r = res(
	    ent_xa_vote(next_id++, now, G, b1, VOTE(ONE_PHASE_COMMITTED), ""));
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->branch_state, ST(XA_BRANCH_COMMITTED));
	cr_expect_eq(r->state, TX(COMMITTED));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tx_heuristic(G), H0);
	cr_expect_eq(vote(G, b1, VOTE(ONE_PHASE_COMMITTED)), CODE(OK));
	/* Rolled back by the RM: the tx ends ROLLED_BACK. */
	begin("g2");
	uint32_t c1 = reg("g2", "pg");
	cr_assert_eq(code(ent_xa_commit1(next_id++, now, "g2")), CODE(OK));
	cr_assert_eq(vote("g2", c1, VOTE(ONE_PHASE_ROLLED_BACK)), CODE(OK));
	tx = tx_of(&F, "g2");
	cr_expect_eq(tx->state, TX(ROLLED_BACK));
	cr_expect(strstr(tx->reason, "rolled back") != NULL, "%s", tx->reason);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(branch_state("g2", c1), ST(XA_BRANCH_ROLLED_BACK));
	/* Unknown outcome: committed with a hazard. */
	begin("g3");
	uint32_t d1 = reg("g3", "pg");
	cr_assert_eq(code(ent_xa_commit1(next_id++, now, "g3")), CODE(OK));
	cr_assert_eq(vote("g3", d1, VOTE(ONE_PHASE_UNKNOWN)), CODE(OK));
	cr_expect_eq(tx_state("g3"), TX(COMMITTED));
	cr_expect_eq(tx_heuristic("g3"), HEUR(HEUR_HAZARD));
	Settle__V1__BranchRecord *b = branch_of("g3", d1);
	cr_expect_eq(b->heuristic, HEUR(HEUR_HAZARD));
	settle__v1__branch_record__free_unpacked(b, NULL);
	cr_expect_eq(events("g3", "heuristic", "HEUR_HAZARD"), 1);
	/* The leader gave up waiting: OK + hazard. */
	begin("g4");
	uint32_t e1 = reg("g4", "pg");
	cr_assert_eq(code(ent_xa_commit1(next_id++, now, "g4")), CODE(OK));
	cr_expect_eq(xres("g4", e1, X1PC, R_RETRY, H0, now + 5), CODE(OK));
	cr_expect_eq(tx_state("g4"), TX(COMMITTING));
	cr_expect_eq(xres("g4", e1, X1PC, R_OK, HEUR(HEUR_HAZARD), 0),
		     CODE(OK));
	cr_expect_eq(tx_state("g4"), TX(COMMITTED));
	cr_expect_eq(tx_heuristic("g4"), HEUR(HEUR_HAZARD));
	/* The initiator's late report changes nothing. */
	cr_expect_eq(vote("g4", e1, VOTE(ONE_PHASE_COMMITTED)), CODE(OK));
	cr_expect_eq(vote("g4", e1, VOTE(ONE_PHASE_ROLLED_BACK)),
		     CODE(WRONG_STATE));
	/* A one-phase branch cannot fail. */
	cr_expect_eq(xres("g4", e1, X1PC, R_FAIL, H0, 0),
		     CODE(INVALID_ARGUMENT));
	tfsm_check_indexes(&F);
}

/*
 * Phase 2 by the initiator: the decision leaves the prepared RM branches
 * to the initiator (due only when its time is up), which reports them
 * committed all at once (branch 0) or hands one back (due now); the
 * leader's own commit of such a branch is a normal result, and a late
 * report after it a repeat.
 */
Test(xa, phase_two_by_the_initiator)
{
	begin(G);
	uint32_t b1 = reg(G, "pg"), b2 = reg(G, "my"), b3 = reg(G, "ro");
	cr_assert_eq(vote(G, b1, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(vote(G, b2, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(vote(G, b3, VOTE(VOTE_READ_ONLY)), CODE(OK));
	/* Before the decision there is nothing left to the initiator. */
	cr_expect_eq(
	    code(ent_xa_vote(next_id++, now, G, 0, VOTE(PHASE2_COMMITTED), "")),
	    CODE(WRONG_STATE));
	cr_assert_eq(code(ent_xa_commit_by_initiator(next_id++, now, G, 700)),
		     CODE(OK));
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_eq(tx->state, TX(COMMITTING));
	cr_expect_eq(tx->pending, 2);
	cr_expect_eq(tx->due_ms, now + 700,
		     "due when the initiator's time is up");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	for (uint32_t id = b1; id <= b3; id++) {
		Settle__V1__BranchRecord *br = branch_of(G, id);
		cr_expect_eq(br->initiator_phase2, id != b3, "branch %u", id);
		if (id != b3)
			cr_expect_eq(br->next_retry_ms, now + 700);
		settle__v1__branch_record__free_unpacked(br, NULL);
	}
	cr_expect_eq(events(G, "commit", "by the initiator, 700 ms"), 1);
	/* Not one of them: refused; a prepare vote now: refused. */
	cr_expect_eq(code(ent_xa_vote(next_id++, now, G, b3,
				      VOTE(PHASE2_COMMITTED), "")),
		     CODE(WRONG_STATE));
	cr_expect_eq(vote(G, b1, VOTE(VOTE_OK)), CODE(WRONG_STATE));
	/* Every branch at once: the tx is over. */
	Settle__V1__CmdResult *r = res(
	    ent_xa_vote(next_id++, now + 1, G, 0, VOTE(PHASE2_COMMITTED), ""));
	cr_expect_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->state, TX(COMMITTED));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state(G, b1), ST(XA_BRANCH_COMMITTED));
	cr_expect_eq(branch_state(G, b2), ST(XA_BRANCH_COMMITTED));
	cr_expect_eq(tx_heuristic(G), H0);
	cr_expect_eq(events(G, "vote", "PHASE2_COMMITTED"), 2);
	/* A repeat answers OK and writes nothing. */
	cr_expect_eq(code(ent_xa_vote(next_id++, now + 2, G, 0,
				      VOTE(PHASE2_COMMITTED), "")),
		     CODE(OK));
	cr_expect_eq(events(G, "vote", "PHASE2_COMMITTED"), 2);

	/* One committed by the initiator, one handed back to the leader,
	 * which commits it; the initiator's late report then changes
	 * nothing. */
	begin("g2");
	uint32_t c1 = reg("g2", "pg"), c2 = reg("g2", "my");
	cr_assert_eq(vote("g2", c1, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(vote("g2", c2, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(prepare("g2"), CODE(OK));
	cr_assert_eq(
	    code(ent_xa_commit_by_initiator(next_id++, now, "g2", 5000)),
	    CODE(OK));
	cr_expect_eq(code(ent_xa_vote(next_id++, now + 3, "g2", c1,
				      VOTE(PHASE2_COMMITTED), "")),
		     CODE(OK));
	cr_expect_eq(tx_state("g2"), TX(COMMITTING));
	cr_expect_eq(code(ent_xa_vote(next_id++, now + 4, "g2", c2,
				      VOTE(PHASE2_NOT_DONE), "lost")),
		     CODE(OK));
	tx = tx_of(&F, "g2");
	cr_expect_eq(tx->due_ms, now + 4, "handed back: due now");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(branch_state("g2", c2), XCOMMIT);
	cr_expect_eq(xres("g2", c2, XCOMMIT, R_OK, H0, 0), CODE(OK));
	cr_expect_eq(tx_state("g2"), TX(COMMITTED));
	cr_expect_eq(code(ent_xa_vote(next_id++, now + 5, "g2", 0,
				      VOTE(PHASE2_COMMITTED), "")),
		     CODE(OK));
	cr_expect_eq(code(ent_xa_vote(next_id++, now + 5, "g2", c2,
				      VOTE(PHASE2_NOT_DONE), "")),
		     CODE(OK));
	cr_expect_eq(branch_state("g2", c2), ST(XA_BRANCH_COMMITTED));
	cr_expect_eq(code(ent_xa_vote(next_id++, now + 5, "g2", 9,
				      VOTE(PHASE2_COMMITTED), "")),
		     CODE(NOT_FOUND));

	/* A plain commit leaves nothing to the initiator. */
	begin("g3");
	uint32_t d1 = reg("g3", "pg");
	cr_assert_eq(vote("g3", d1, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(code(ent_xa_commit1(next_id++, now, "g3")), CODE(OK));
	cr_expect_eq(code(ent_xa_vote(next_id++, now, "g3", 0,
				      VOTE(PHASE2_COMMITTED), "")),
		     CODE(WRONG_STATE));
	cr_expect_eq(code(ent_xa_vote(next_id++, now, "g3", d1,
				      VOTE(PHASE2_COMMITTED), "")),
		     CODE(WRONG_STATE));
	tfsm_check_indexes(&F);
}

/*
 * The fast path: RM branches declared at Begin (one command, XIDs as
 * register builds them), and the votes carried by the commit (one
 * command), then the initiator's report.
 */
Test(xa, begin_with_rm_branches_and_commit_with_votes)
{
	static const char *const rms[] = {"pg", "my"};
	uint32_t ids[2] = {1, 2};
	int ok[2] = {VOTE(VOTE_OK), VOTE(VOTE_OK)};
	Settle__V1__CmdResult *r = res(
	    ent_xa_begin_rms(next_id++, now, G, now + DEADLINE, rms, 2, FID));
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->count, 2);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state(G, 1), ST(XA_BRANCH_ACTIVE));
	Settle__V1__BranchRecord *b = branch_of(G, 2);
	cr_expect_str_eq(b->rm, "my");
	struct xa_xid x, want;
	cr_assert_eq(xa_xid_decode(b->xid.data, b->xid.len, &x), 0);
	cr_assert_eq(wal_xa_branch_xid(FID, G, 2, &want), 0);
	cr_expect(xa_xid_equal(&x, &want), "branch 2's XID");
	settle__v1__branch_record__free_unpacked(b, NULL);
	cr_expect_eq(events(G, "register", "rm pg xid"), 1);
	/* A later register takes the next id. */
	cr_expect_eq(reg(G, "ro"), 3);
	cr_assert_eq(vote(G, 3, VOTE(VOTE_READ_ONLY)), CODE(OK));

	/* A vote the state refuses refuses the whole commit: nothing
	 * changes. */
	uint32_t bad_ids[2] = {1, 3};
	int bad[2] = {VOTE(VOTE_OK), VOTE(VOTE_OK)};
	cr_expect_eq(
	    code(ent_xa_commit_votes(next_id++, now, G, bad_ids, bad, 2, 0)),
	    CODE(WRONG_STATE));
	uint32_t unknown[1] = {9};
	cr_expect_eq(
	    code(ent_xa_commit_votes(next_id++, now, G, unknown, ok, 1, 0)),
	    CODE(NOT_FOUND));
	cr_expect_eq(branch_state(G, 1), ST(XA_BRANCH_ACTIVE));
	cr_expect_eq(tx_state(G), TX(ACTIVE));
	cr_expect_eq(events(G, "vote", NULL), 1);

	/* Both votes and the decision in one command. */
	cr_assert_eq(
	    code(ent_xa_commit_votes(next_id++, now, G, ids, ok, 2, 900)),
	    CODE(OK));
	cr_expect_eq(tx_state(G), TX(COMMITTING));
	cr_expect_eq(branch_state(G, 1), XCOMMIT);
	cr_expect_eq(branch_state(G, 2), XCOMMIT);
	cr_expect_eq(events(G, "vote", "VOTE_OK"), 2);
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_eq(tx->due_ms, now + 900);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	/* Its retry: where it stands. */
	cr_expect_eq(
	    code(ent_xa_commit_votes(next_id++, now, G, ids, ok, 2, 900)),
	    CODE(OK));
	cr_expect_eq(
	    code(ent_xa_vote(next_id++, now, G, 0, VOTE(PHASE2_COMMITTED), "")),
	    CODE(OK));
	cr_expect_eq(tx_state(G), TX(COMMITTED));

	/* A rollback vote with the commit rolls back instead. */
	begin("g2");
	cr_assert_eq(code(ent_xa_begin_rms(next_id++, now, "g3", now + DEADLINE,
					   rms, 2, FID)),
		     CODE(OK));
	int mixed[2] = {VOTE(VOTE_OK), VOTE(VOTE_ROLLBACK)};
	r = res(ent_xa_commit_votes(next_id++, now, "g3", ids, mixed, 2, 900));
	cr_expect_eq(r->code, CODE(OK), "%s", r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tx_state("g3"), TX(ROLLING_BACK));
	cr_expect_eq(branch_state("g3", 1), XROLL);
	cr_expect_eq(branch_state("g3", 2), ST(XA_BRANCH_ROLLED_BACK));
	b = branch_of("g3", 1);
	cr_expect_not(b->initiator_phase2, "rolled back by the leader");
	settle__v1__branch_record__free_unpacked(b, NULL);
	/* A TCC begin cannot declare RM branches, nor a legacy TM's. */
	Settle__V1__Command c;
	settle__v1__command__init(&c);
	uint8_t id[16] = {4};
	c.cmd_id.data = id;
	c.cmd_id.len = 16;
	c.time_ms = now;
	Settle__V1__CmdBegin bg;
	settle__v1__cmd_begin__init(&bg);
	Settle__V1__BranchDecl d, *dp = &d;
	settle__v1__branch_decl__init(&d);
	d.rm = "pg";
	bg.gid = "g4";
	bg.deadline_ms = now + 1;
	bg.n_branches = 1;
	bg.branches = &dp;
	c.op_case = SETTLE__V1__COMMAND__OP_BEGIN;
	c.begin = &bg;
	cr_expect_eq(wal_command_validate(&c, NULL, 0), SETTLE_EINVAL);
	bg.mode = SETTLE__V1__TX_MODE__XA;
	cr_expect_eq(wal_command_validate(&c, NULL, 0), 0);
	d.endpoint = "127.0.0.1:9";
	cr_expect_eq(wal_command_validate(&c, NULL, 0), SETTLE_EINVAL);
	d.endpoint = "";
	uint8_t wire[XA_XID_WIRE_MAX];
	size_t wl = 0;
	cr_assert_eq(xa_xid_encode(&want, wire, sizeof wire, &wl), 0);
	bg.xid.data = wire;
	bg.xid.len = wl;
	cr_expect_eq(wal_command_validate(&c, NULL, 0), SETTLE_EINVAL);
	tfsm_check_indexes(&F);
}

Test(xa, one_phase_refused_with_two_unvoted)
{
	begin(G);
	reg(G, "pg");
	reg(G, "my");
	Settle__V1__CmdResult *r = res(ent_xa_commit1(next_id++, now, G));
	cr_expect_eq(r->code, CODE(WRONG_STATE));
	cr_expect(strstr(r->message, "branch 1 has not voted") != NULL, "%s",
		  r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tx_state(G), TX(ACTIVE));
	/* One unvoted with a prepared one, or with a TCC branch: too. */
	cr_assert_eq(vote(G, 1, VOTE(VOTE_OK)), CODE(OK));
	cr_expect_eq(code(ent_xa_commit1(next_id++, now, G)),
		     CODE(WRONG_STATE));
	begin("g2");
	reg("g2", "pg");
	reg_tcc("g2");
	cr_expect_eq(code(ent_xa_commit1(next_id++, now, "g2")),
		     CODE(WRONG_STATE));
	cr_expect_eq(branch_state(G, 2), ST(XA_BRANCH_ACTIVE));
	cr_expect_eq(branch_state("g2", 1), ST(XA_BRANCH_ACTIVE));
	/* one_phase with a rollback is invalid. */
	Settle__V1__Command c;
	settle__v1__command__init(&c);
	uint8_t id[16] = {3};
	c.cmd_id.data = id;
	c.cmd_id.len = 16;
	c.time_ms = now;
	Settle__V1__CmdDecide d;
	settle__v1__cmd_decide__init(&d);
	d.gid = G;
	d.decision = ROLLBACK;
	d.one_phase = 1;
	c.op_case = SETTLE__V1__COMMAND__OP_DECIDE;
	c.decide = &d;
	cr_expect_eq(wal_command_validate(&c, NULL, 0), SETTLE_EINVAL);
	/* So is phase 2 by the initiator, and too long a one. */
	d.one_phase = 0;
	d.initiator_phase2_ms = 100;
	cr_expect_eq(wal_command_validate(&c, NULL, 0), SETTLE_EINVAL);
	d.decision = COMMIT;
	cr_expect_eq(wal_command_validate(&c, NULL, 0), 0);
	d.initiator_phase2_ms = WAL_XA_PHASE2_MAX_MS + 1;
	cr_expect_eq(wal_command_validate(&c, NULL, 0), SETTLE_EINVAL);
}

/* ---- Rollback and timeouts ---------------------------------------------- */

Test(xa, rollback_from_active_and_prepared)
{
	begin(G);
	uint32_t b1 = reg(G, "pg"), b2 = reg(G, "ro"), b3 = reg(G, "my");
	cr_assert_eq(vote(G, b1, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(vote(G, b2, VOTE(VOTE_READ_ONLY)), CODE(OK));
	cr_assert_eq(code(ent_decide(next_id++, now, G, ROLLBACK, "app", 0)),
		     CODE(OK));
	cr_expect_eq(branch_state(G, b1), XROLL);
	cr_expect_eq(branch_state(G, b2), ST(XA_BRANCH_READ_ONLY));
	/* Never voted: rolled back too (NOTA at the RM is fine). */
	cr_expect_eq(branch_state(G, b3), XROLL);
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_eq(tx->state, TX(ROLLING_BACK));
	cr_expect_eq(tx->pending, 2);
	cr_expect_str_eq(tx->reason, "app");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(decide(G, ROLLBACK), CODE(OK));
	cr_expect_eq(decide(G, COMMIT), CODE(WRONG_STATE));
	cr_expect_eq(xres(G, b1, XROLL, R_OK, H0, 0), CODE(OK));
	cr_expect_eq(xres(G, b3, XROLL, R_OK, H0, 0), CODE(OK));
	cr_expect_eq(tx_state(G), TX(ROLLED_BACK));
	cr_expect_eq(events(G, "xa_rollback", NULL), 2);

	begin("g2");
	uint32_t c1 = reg("g2", "pg");
	cr_assert_eq(vote("g2", c1, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(prepare("g2"), CODE(OK));
	cr_assert_eq(decide("g2", ROLLBACK), CODE(OK));
	cr_expect_eq(branch_state("g2", c1), XROLL);
	cr_expect_eq(tx_state("g2"), TX(ROLLING_BACK));
	cr_expect_eq(xres("g2", c1, XROLL, R_OK, H0, 0), CODE(OK));
	cr_expect_eq(tx_state("g2"), TX(ROLLED_BACK));
	tfsm_check_indexes(&F);
}

Test(xa, timeouts_by_state)
{
	begin(G);
	uint32_t b1 = reg(G, "pg");
	cr_expect_eq(code(ent_decide(next_id++, now, G, ROLLBACK, "", 1)),
		     CODE(WRONG_STATE));
	cr_assert_eq(vote(G, b1, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(prepare(G), CODE(OK));
	begin("g2");
	now = DEADLINE;
	/* Past the deadline: ACTIVE and XA_PREPARED without xid roll back. */
	cr_expect_eq(code(ent_decide(next_id++, now, "g2", ROLLBACK, "", 1)),
		     CODE(OK));
	cr_expect_eq(tx_state("g2"), TX(ROLLED_BACK));
	cr_expect_eq(code(ent_decide(next_id++, now, G, ROLLBACK, "", 1)),
		     CODE(OK));
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_eq(tx->state, TX(ROLLING_BACK));
	cr_expect_str_eq(tx->reason, "deadline");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	tfsm_check_indexes(&F);
}

/* ---- Results and heuristics --------------------------------------------- */

Test(xa, result_retry_and_failure)
{
	begin(G);
	uint32_t b1 = reg(G, "pg"), b2 = reg(G, "my");
	cr_assert_eq(vote(G, b1, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(vote(G, b2, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(prepare(G), CODE(OK));
	cr_assert_eq(decide(G, COMMIT), CODE(OK));
	uint64_t t = now;
	cr_expect_eq(xres(G, b1, XCOMMIT, R_RETRY, H0, t + 500), CODE(OK));
	cr_expect_eq(xres(G, b2, XCOMMIT, R_RETRY, H0, t + 300), CODE(OK));
	Settle__V1__BranchRecord *b = branch_of(G, b1);
	cr_expect_eq(b->state, XCOMMIT);
	cr_expect_eq(b->attempts, 1);
	cr_expect_eq(b->next_retry_ms, t + 500);
	cr_expect_str_eq(b->last_error, "rm text");
	settle__v1__branch_record__free_unpacked(b, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_eq(tx->due_ms, t + 300);
	cr_expect_eq(tx->pending, 2);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(xres(G, b2, XCOMMIT, R_FAIL, H0, 0), CODE(OK));
	cr_expect_eq(branch_state(G, b2), ST(FAILED));
	tx = tx_of(&F, G);
	cr_expect_eq(tx->failed, 1);
	cr_expect_eq(tx->pending, 1);
	cr_expect_eq(tx->due_ms, t + 500);
	cr_expect(strstr(tx->reason, "branch 2 failed: rm text") != NULL);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(xres(G, b1, XCOMMIT, R_OK, H0, 0), CODE(OK));
	/* Stuck for an operator: COMMITTING, due 0. */
	tx = tx_of(&F, G);
	cr_expect_eq(tx->state, TX(COMMITTING));
	cr_expect_eq(tx->due_ms, 0);
	cr_expect_eq(tx->pending, 0);
	cr_expect_eq(tx->failed, 1);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(xres(G, b2, XCOMMIT, R_OK, H0, 0), CODE(OK));
	cr_expect_eq(branch_state(G, b2), ST(FAILED));
	/* Validation of results. */
	cr_expect_eq(xres(G, b1, ST(CONFIRMING), R_OK, H0, 0),
		     CODE(INVALID_ARGUMENT));
	cr_expect_eq(xres(G, b1, XCOMMIT, 9, H0, 0), CODE(INVALID_ARGUMENT));
	cr_expect_eq(xres(G, b1, XCOMMIT, R_OK, 5, 0), CODE(INVALID_ARGUMENT));
	cr_expect_eq(xres(G, 0, XCOMMIT, R_OK, H0, 0), CODE(INVALID_ARGUMENT));
	tfsm_check_indexes(&F);
}

static void committing_with(const char *gid, int n)
{
	begin(gid);
	for (int i = 0; i < n; i++) {
		uint32_t b = reg(gid, "pg");
		cr_assert_eq(vote(gid, b, VOTE(VOTE_OK)), CODE(OK));
	}
	cr_assert_eq(prepare(gid), CODE(OK));
	cr_assert_eq(decide(gid, COMMIT), CODE(OK));
}

Test(xa, heuristics_are_recorded_and_aggregated)
{
	committing_with(G, 3);
	cr_expect_eq(xres(G, 1, XCOMMIT, R_OK, HEUR(HEUR_HAZARD), 0), CODE(OK));
	cr_expect_eq(tx_heuristic(G), HEUR(HEUR_HAZARD));
	cr_expect_eq(xres(G, 2, XCOMMIT, R_OK, HEUR(HEUR_HAZARD), 0), CODE(OK));
	cr_expect_eq(tx_heuristic(G), HEUR(HEUR_HAZARD));
	cr_expect_eq(xres(G, 3, XCOMMIT, R_OK, H0, 0), CODE(OK));
	cr_expect_eq(tx_state(G), TX(COMMITTED));
	cr_expect_eq(tx_heuristic(G), HEUR(HEUR_HAZARD));
	Settle__V1__BranchRecord *b = branch_of(G, 1);
	cr_expect_eq(b->heuristic, HEUR(HEUR_HAZARD));
	cr_expect_str_eq(b->last_error, "rm text");
	settle__v1__branch_record__free_unpacked(b, NULL);
	b = branch_of(G, 3);
	cr_expect_eq(b->heuristic, H0);
	cr_expect_str_eq(b->last_error, "");
	settle__v1__branch_record__free_unpacked(b, NULL);
	cr_expect_eq(events(G, "heuristic", "HEUR_HAZARD: rm text"), 2);

	committing_with("g2", 2);
	cr_expect_eq(xres("g2", 1, XCOMMIT, R_OK, HEUR(HEUR_ROLLBACK), 0),
		     CODE(OK));
	cr_expect_eq(tx_heuristic("g2"), HEUR(HEUR_ROLLBACK));
	cr_expect_eq(xres("g2", 2, XCOMMIT, R_OK, HEUR(HEUR_HAZARD), 0),
		     CODE(OK));
	cr_expect_eq(tx_heuristic("g2"), HEUR(HEUR_MIXED));
	b = branch_of("g2", 2);
	cr_expect_eq(b->heuristic, HEUR(HEUR_HAZARD));
	settle__v1__branch_record__free_unpacked(b, NULL);
	tfsm_check_indexes(&F);
}

/* ---- Forget ------------------------------------------------------------- */

Test(xa, forget_clears_a_finished_heuristic)
{
	committing_with(G, 1);
	cr_expect_eq(code(ent_xa_forget(next_id++, now, G)), CODE(WRONG_STATE));
	cr_expect_eq(xres(G, 1, XCOMMIT, R_OK, HEUR(HEUR_ROLLBACK), 0),
		     CODE(OK));
	cr_assert_eq(tx_state(G), TX(COMMITTED));
	Settle__V1__CmdResult *r = res(ent_xa_forget(next_id++, now, G));
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->state, TX(COMMITTED));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tx_heuristic(G), H0);
	Settle__V1__BranchRecord *b = branch_of(G, 1);
	cr_expect_eq(b->heuristic, HEUR(HEUR_ROLLBACK));
	settle__v1__branch_record__free_unpacked(b, NULL);
	cr_expect_eq(events(G, "forget", "HEUR_ROLLBACK"), 1);
	/* Nothing left to forget; unknown gid; a TCC tx. */
	cr_expect_eq(code(ent_xa_forget(next_id++, now, G)), CODE(WRONG_STATE));
	cr_expect_eq(code(ent_xa_forget(next_id++, now, "nope")),
		     CODE(NOT_FOUND));
	cr_assert_eq(code(ent_begin(next_id++, now, "tcc", DEADLINE)),
		     CODE(OK));
	cr_expect_eq(code(ent_xa_forget(next_id++, now, "tcc")),
		     CODE(WRONG_STATE));
	tfsm_check_indexes(&F);
}

/* ---- Operator ----------------------------------------------------------- */

Test(xa, operator_retry_and_resolve_failed_rm_branches)
{
	committing_with(G, 2);
	cr_assert_eq(xres(G, 1, XCOMMIT, R_FAIL, H0, 0), CODE(OK));
	cr_assert_eq(xres(G, 2, XCOMMIT, R_FAIL, H0, 0), CODE(OK));
	cr_assert_eq(branch_state(G, 1), ST(FAILED));
	/* Retry one: back to XA_BRANCH_COMMITTING, due now. */
	Settle__V1__CmdResult *r =
	    res(ent_retry(next_id++, now, G, 1, "db is back"));
	cr_expect_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->count, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state(G, 1), XCOMMIT);
	Settle__V1__TxRecord *tx = tx_of(&F, G);
	cr_expect_eq(tx->failed, 1);
	cr_expect_eq(tx->pending, 1);
	cr_expect_eq(tx->due_ms, now);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	/* A branch in no retriable state: refused. */
	cr_expect_eq(xres(G, 1, XCOMMIT, R_OK, H0, 0), CODE(OK));
	cr_expect_eq(code(ent_retry(next_id++, now, G, 1, "x")),
		     CODE(WRONG_STATE));
	cr_expect_eq(code(ent_resolve(next_id++, now, G, 1, "x")),
		     CODE(WRONG_STATE));
	/* Resolve the other by hand: the tx ends. */
	r = res(ent_resolve(next_id++, now, G, 2, "committed by the DBA"));
	cr_expect_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->branch_state, ST(XA_BRANCH_COMMITTED));
	cr_expect_eq(r->state, TX(COMMITTED));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	tx = tx_of(&F, G);
	cr_expect_str_eq(tx->reason, "resolved by operator: committed by the "
				     "DBA");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(events(G, "resolve", "FAILED -> XA_BRANCH_COMMITTED"), 1);

	/* Rolling back: retry all, then resolve. */
	begin("g2");
	reg("g2", "pg");
	reg_tcc("g2");
	cr_assert_eq(decide("g2", ROLLBACK), CODE(OK));
	cr_assert_eq(xres("g2", 1, XROLL, R_FAIL, H0, 0), CODE(OK));
	cr_assert_eq(code(ent_result(next_id++, now, "g2", 2, ST(CANCELLING),
				     R_FAIL, "no", 1, 0)),
		     CODE(OK));
	tx = tx_of(&F, "g2");
	cr_expect_eq(tx->failed, 2);
	cr_expect_eq(tx->due_ms, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	r = res(ent_retry(next_id++, now, "g2", 0, NULL));
	cr_expect_eq(r->count, 2);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state("g2", 1), XROLL);
	cr_expect_eq(branch_state("g2", 2), ST(CANCELLING));
	cr_assert_eq(xres("g2", 1, XROLL, R_FAIL, H0, 0), CODE(OK));
	cr_assert_eq(code(ent_resolve(next_id++, now, "g2", 1, "gone")),
		     CODE(OK));
	cr_expect_eq(branch_state("g2", 1), ST(XA_BRANCH_ROLLED_BACK));
	cr_expect_eq(tx_state("g2"), TX(ROLLING_BACK));
	cr_assert_eq(code(ent_result(next_id++, now, "g2", 2, ST(CANCELLING),
				     R_OK, "", 2, 0)),
		     CODE(OK));
	cr_expect_eq(tx_state("g2"), TX(ROLLED_BACK));

	/* Undecided (XA_PREPARED) and ACTIVE: nothing to do. */
	begin("g3");
	uint32_t c1 = reg("g3", "pg");
	cr_expect_eq(code(ent_retry(next_id++, now, "g3", 0, NULL)),
		     CODE(WRONG_STATE));
	cr_assert_eq(vote("g3", c1, VOTE(VOTE_OK)), CODE(OK));
	cr_assert_eq(prepare("g3"), CODE(OK));
	cr_expect_eq(code(ent_retry(next_id++, now, "g3", 0, NULL)),
		     CODE(WRONG_STATE));
	cr_expect_eq(code(ent_resolve(next_id++, now, "g3", 1, "x")),
		     CODE(WRONG_STATE));
	cr_expect_eq(tx_state("g3"), TX(XA_PREPARED));
	tfsm_check_indexes(&F);
}

/* ---- Bugs, determinism, at most once ------------------------------------ */

Test(xa, illegal_move_is_a_bug_and_nothing_is_written)
{
	begin(G);
	reg(G, "pg");
	/* Corrupt the RM branch into a TCC state: a rollback would move it
	 * REGISTERED -> CANCELLING, which its RM table refuses. */
	Settle__V1__BranchRecord *b = branch_of(G, 1);
	b->state = ST(REGISTERED);
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(F.t.s, &txn), 0);
	cr_assert_eq(store_branch_put(F.t.s, txn, b), 0);
	cr_assert_eq(store_write_commit(F.t.s, txn), 0);
	settle__v1__branch_record__free_unpacked(b, NULL);
	uint64_t applied;
	cr_assert_eq(store_applied_get(F.t.s, NULL, &applied), 0);
	struct ent e = ent_decide(next_id++, now, G, ROLLBACK, "", 0);
	Settle__V1__CmdResult *r = NULL;
	cr_expect_eq(fsm_apply(&F.f, applied + 1, e.buf, e.len, &r),
		     SETTLE_EINTERNAL);
	cr_expect(strstr(F.f.errmsg, "illegal branch move") != NULL, "%s",
		  F.f.errmsg);
	cr_expect_null(r);
	ent_free(e);
	cr_expect_eq(tx_state(G), TX(ACTIVE));
	cr_expect_eq(branch_state(G, 1), ST(REGISTERED));
	uint64_t after;
	cr_assert_eq(store_applied_get(F.t.s, NULL, &after), 0);
	cr_expect_eq(after, applied);
}

Test(xa, same_cmd_id_applies_once)
{
	begin(G);
	uint32_t b1 = reg(G, "pg");
	struct ent e =
	    ent_xa_vote(500, now, G, b1, VOTE(VOTE_ROLLBACK), "first");
	Settle__V1__CmdResult *r1 = tfsm_apply(&F, e);
	Settle__V1__CmdResult *r2 = tfsm_apply(&F, e);
	ent_free(e);
	cr_expect_eq(r1->code, CODE(OK));
	cr_expect_eq(r2->code, r1->code);
	cr_expect_eq(r2->index, r1->index);
	cr_expect_eq(r2->branch_state, r1->branch_state);
	cr_expect_eq(r2->state, TX(ROLLED_BACK));
	settle__v1__cmd_result__free_unpacked(r1, NULL);
	settle__v1__cmd_result__free_unpacked(r2, NULL);
	cr_expect_eq(events(G, "vote", NULL), 1);
	cr_expect_eq(events(G, "rollback", NULL), 1);
	/* A register retried: one branch, the same XID. */
	begin("g2");
	e = ent_xa_register(600, now, "g2", "pg", FID);
	r1 = tfsm_apply(&F, e);
	r2 = tfsm_apply(&F, e);
	ent_free(e);
	cr_expect_eq(r2->branch_id, r1->branch_id);
	cr_expect_eq(r2->xid.len, r1->xid.len);
	cr_expect_eq(memcmp(r2->xid.data, r1->xid.data, r1->xid.len), 0);
	settle__v1__cmd_result__free_unpacked(r1, NULL);
	settle__v1__cmd_result__free_unpacked(r2, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, "g2");
	cr_expect_eq(tx->branches, 1);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

/* Feed the same XA workload to t (ids and times fixed). */
static void workload(struct tfsm *t)
{
	uint8_t wire[XA_XID_WIRE_MAX];
	size_t len;
	char lgid[XA_XID_GID_LEN + 1];
	legacy_xid(wire, &len, lgid);
	int id = 1;
	uint64_t tm = 1000;
#define APPLY(e) settle__v1__cmd_result__free_unpacked(tfsm_res(t, e), NULL)
	for (int k = 0; k < 6; k++) {
		char gid[32];
		snprintf(gid, sizeof gid, "w-%d", k);
		APPLY(ent_xa_begin(id++, tm++, gid, DEADLINE, NULL, 0));
		APPLY(ent_xa_register(id++, tm++, gid, "pg", FID));
		APPLY(ent_xa_register(id++, tm++, gid, "my", FID));
		APPLY(ent_xa_vote(id++, tm++, gid, 1, VOTE(VOTE_OK), ""));
		APPLY(ent_xa_vote(
		    id++, tm++, gid, 2,
		    k % 3 == 0 ? VOTE(VOTE_ROLLBACK) : VOTE(VOTE_OK), "e"));
		APPLY(ent_xa_prepare(id++, tm++, gid));
		APPLY(ent_decide(id++, tm++, gid, COMMIT, "", 0));
		APPLY(ent_xa_result(id++, tm++, gid, 1, XCOMMIT, R_OK,
				    k % 2 ? HEUR(HEUR_HAZARD) : H0, "x", 0));
		APPLY(ent_xa_result(id++, tm, gid, 2, XCOMMIT, R_RETRY, H0,
				    "busy", tm + 50));
		tm++;
	}
	APPLY(ent_xa_begin(id++, tm++, lgid, DEADLINE, wire, len));
	APPLY(ent_register(id++, tm++, lgid, "127.0.0.1:9", "r", "secret"));
	APPLY(ent_xa_prepare(id++, tm++, lgid));
	APPLY(ent_xa_begin(id++, tm++, "one", DEADLINE, NULL, 0));
	APPLY(ent_xa_register(id++, tm++, "one", "pg", FID));
	APPLY(ent_xa_commit1(id++, tm++, "one"));
	APPLY(ent_xa_forget(id++, tm++, "w-1"));
#undef APPLY
}

Test(xa, two_fsms_fed_the_same_commands_are_identical, .timeout = 60)
{
	struct tfsm other;
	tfsm_open(&other);
	workload(&F);
	workload(&other);
	uint8_t *a, *b;
	size_t alen, blen;
	tfsm_snapshot(&F, &a, &alen);
	tfsm_snapshot(&other, &b, &blen);
	cr_expect_eq(alen, blen);
	cr_expect(alen == blen && memcmp(a, b, alen) == 0);
	raft_free(a);
	raft_free(b);
	tfsm_check_indexes(&F);
	cr_expect_eq(tx_state("w-1"), TX(COMMITTING));
	cr_expect_eq(tx_state("w-0"), TX(ROLLING_BACK));
	cr_expect_eq(tx_state("one"), TX(COMMITTING));
	tfsm_close(&other);
}

/* ---- Snapshots of XA state ---------------------------------------------- */

Test(xa, snapshot_of_xa_state_restores)
{
	workload(&F);
	uint8_t *buf;
	size_t len;
	tfsm_snapshot(&F, &buf, &len);
	struct tfsm other;
	tfsm_open(&other);
	cr_assert_eq(store_restore(other.t.s, buf, len), 0, "%s",
		     store_errmsg(other.t.s));
	raft_free(buf);
	Settle__V1__BranchRecord *b;
	cr_assert_eq(store_branch_get(other.t.s, NULL, "w-1", 1, &b), 0);
	cr_expect_str_eq(b->rm, "pg");
	cr_expect_eq(b->heuristic, HEUR(HEUR_HAZARD));
	cr_expect_gt(b->xid.len, 6);
	settle__v1__branch_record__free_unpacked(b, NULL);
	Settle__V1__TxRecord *tx = tx_of(&other, "w-2");
	cr_expect_eq(tx->mode, SETTLE__V1__TX_MODE__XA);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	tfsm_close(&other);
}

/* Put a corrupted copy of branch 1 of gid into F's store, then check a
 * snapshot of it is refused by restore. */
static void refused_with(void (*corrupt)(Settle__V1__BranchRecord *))
{
	workload(&F);
	Settle__V1__BranchRecord *b = branch_of("w-1", 1);
	Settle__V1__BranchRecord copy = *b; /* b's own fields stay b's */
	corrupt(&copy);
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(F.t.s, &txn), 0);
	cr_assert_eq(store_branch_put(F.t.s, txn, &copy), 0);
	cr_assert_eq(store_write_commit(F.t.s, txn), 0);
	settle__v1__branch_record__free_unpacked(b, NULL);
	uint8_t *buf;
	size_t len;
	tfsm_snapshot(&F, &buf, &len);
	struct tfsm other;
	tfsm_open(&other);
	cr_expect_eq(store_restore(other.t.s, buf, len), SETTLE_EPROTO);
	raft_free(buf);
	tfsm_close(&other);
}

static uint8_t junk[5] = {1, 2, 3, 4, 5};

static void bad_xid(Settle__V1__BranchRecord *b)
{
	b->xid.data = junk;
	b->xid.len = sizeof junk;
}

static void bad_heuristic(Settle__V1__BranchRecord *b)
{
	b->heuristic = 9;
}

static void bad_rm(Settle__V1__BranchRecord *b)
{
	b->rm = "no spaces allowed";
}

static void rm_state_on_tcc(Settle__V1__BranchRecord *b)
{
	b->rm = "";
}

Test(xa, restore_refuses_a_corrupted_xa_branch)
{
	refused_with(bad_xid);
}

Test(xa, restore_refuses_a_bad_heuristic)
{
	refused_with(bad_heuristic);
}

Test(xa, restore_refuses_a_bad_rm_name)
{
	refused_with(bad_rm);
}

Test(xa, restore_refuses_an_xa_state_without_rm)
{
	refused_with(rm_state_on_tcc);
}

/* ---- Random command sequences ------------------------------------------- */

static uint64_t rng = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

/* States seen by check_all(): proof the sequences go everywhere. */
static uint64_t seen_tx, seen_branch;

/* Every stored tx satisfies the invariants, and an unfinished one counts
 * exactly the branches its state says. */
static void check_all(const char *const *gids, size_t n)
{
	for (size_t g = 0; g < n; g++) {
		Settle__V1__TxRecord *tx;
		if (store_tx_get(F.t.s, NULL, gids[g], &tx) != 0)
			continue;
		char why[200];
		cr_assert(wal_tx_invariants(tx, why, sizeof why), "%s", why);
		Settle__V1__BranchRecord **bs;
		size_t nb;
		cr_assert_eq(
		    store_branches_list(F.t.s, NULL, tx->gid, &bs, &nb), 0);
		cr_assert_eq(nb, tx->branches);
		uint32_t pending = 0, failed = 0;
		seen_tx |= (uint64_t)1 << tx->state;
		for (size_t i = 0; i < nb; i++) {
			int st = bs[i]->state;
			seen_branch |= (uint64_t)1 << st;
			pending += st == XCOMMIT || st == XROLL || st == X1PC ||
				   st == ST(CONFIRMING) || st == ST(CANCELLING);
			failed += st == ST(FAILED);
			bool rm = wal_xa_is_rm(bs[i]);
			cr_assert(rm == (bs[i]->xid.len != 0));
			if (tx->state == TX(ACTIVE))
				cr_assert(st == ST(REGISTERED) ||
					  st == ST(XA_BRANCH_ACTIVE) ||
					  st == ST(XA_BRANCH_PREPARED) ||
					  st == ST(XA_BRANCH_READ_ONLY));
		}
		if (tx->state == TX(COMMITTING) ||
		    tx->state == TX(ROLLING_BACK)) {
			cr_assert_eq(tx->pending, pending, "%s", tx->gid);
			cr_assert_eq(tx->failed, failed, "%s", tx->gid);
			cr_assert(pending + failed > 0, "%s", tx->gid);
		} else {
			cr_assert_eq(pending, 0, "%s in %s", tx->gid,
				     wal_tx_state_name(tx->state));
		}
		store_branches_free(bs, nb);
		settle__v1__tx_record__free_unpacked(tx, NULL);
	}
}

Test(xa, random_sequences_never_break_a_table_or_an_invariant, .timeout = 120)
{
	static const int phases[] = {XCOMMIT, XROLL, X1PC};
	static const int outcomes[] = {R_OK, R_OK, R_RETRY, R_FAIL};
	/* A window of 4 gids slides every 40 commands, so that new
	 * transactions keep coming while old ones run to their end. */
	char names[4][16];
	const char *gids[4];
	int ok = 0;
	for (int step = 0; step < 4000; step++) {
		for (int k = 0; k < 4; k++) {
			snprintf(names[k], sizeof names[k], "r%d",
				 step / 40 + k);
			gids[k] = names[k];
		}
		const char *g = gids[rnd(4)];
		uint32_t b = 1 + rnd(3);
		now += rnd(60) ? 1 : DEADLINE / 2;
		struct ent e;
		switch (rnd(13)) {
		case 0:
			if (rnd(2)) {
				static const char *const two[] = {"pg", "my"};
				e = ent_xa_begin_rms(next_id++, now, g,
						     now + DEADLINE, two,
						     1 + rnd(2), FID);
			} else {
				e = ent_xa_begin(next_id++, now, g,
						 now + DEADLINE, NULL, 0);
			}
			break;
		case 1:
		case 2:
			e = ent_xa_register(next_id++, now, g,
					    rnd(2) ? "pg" : "my", FID);
			break;
		case 3:
			e = ent_register(next_id++, now, g, "127.0.0.1:9", "r",
					 "p");
			break;
		case 4:
		case 5:
			/* PHASE2_* votes (7, 8) on one branch or all (0). */
			e = ent_xa_vote(next_id++, now, g, b, 1 + rnd(8), "v");
			break;
		case 6:
			e = ent_xa_prepare(next_id++, now, g);
			break;
		case 7:
			if (rnd(3) == 0) {
				uint32_t vb[2] = {1, 1 + rnd(3)};
				int vv[2] = {1 + (int)rnd(3), 1 + (int)rnd(3)};
				e = ent_xa_commit_votes(next_id++, now, g, vb,
							vv, 1 + rnd(2),
							rnd(2) * 50);
				break;
			}
			e = rnd(3) == 0 ? ent_xa_commit_by_initiator(
					      next_id++, now, g, 1 + rnd(100))
			    : rnd(2) ? ent_xa_commit1(next_id++, now, g)
				     : ent_decide(next_id++, now, g,
						  rnd(2) ? COMMIT : ROLLBACK,
						  "", (int)rnd(2));
			break;
		case 8:
		case 9:
			e = ent_xa_result(next_id++, now, g, b, phases[rnd(3)],
					  outcomes[rnd(4)], (int)rnd(5), "r",
					  now + rnd(100));
			break;
		case 10:
			e = ent_result(next_id++, now, g, b,
				       rnd(2) ? ST(CONFIRMING) : ST(CANCELLING),
				       outcomes[rnd(4)], "r", 0, now + 5);
			break;
		case 11:
			e = rnd(2) ? ent_retry(next_id++, now, g,
					       rnd(2) ? b : 0, "op")
				   : ent_resolve(next_id++, now, g, b, "op");
			break;
		default:
			/* Forget, or an operator's heuristic decision. */
			if (step % 5 == 0)
				e = ent_xa_heuristic(
				    next_id++, now, g,
				    step % 2 ? COMMIT : ROLLBACK, "op");
			else
				e = ent_xa_forget(next_id++, now, g);
			break;
		}
		/* tfsm_code asserts the apply itself never fails: no
		 * illegal move, no broken invariant, whatever the order. */
		ok += code(e) == CODE(OK);
		check_all(gids, 4);
	}
	cr_expect_gt(ok, 500);
	static const int txs[] = {TX(ACTIVE),	    TX(XA_PREPARED),
				  TX(COMMITTING),   TX(COMMITTED),
				  TX(ROLLING_BACK), TX(ROLLED_BACK)};
	for (size_t i = 0; i < sizeof txs / sizeof txs[0]; i++)
		cr_expect(seen_tx & ((uint64_t)1 << txs[i]), "never %s",
			  wal_tx_state_name(txs[i]));
	for (int st = ST(XA_BRANCH_ACTIVE); st <= X1PC; st++)
		cr_expect(seen_branch & ((uint64_t)1 << st), "never %s",
			  wal_branch_state_name(st));
	static const int tcc[] = {ST(REGISTERED), ST(CONFIRMING), ST(CONFIRMED),
				  ST(CANCELLING), ST(CANCELLED),  ST(FAILED)};
	for (size_t i = 0; i < sizeof tcc / sizeof tcc[0]; i++)
		cr_expect(seen_branch & ((uint64_t)1 << tcc[i]), "never %s",
			  wal_branch_state_name(tcc[i]));
	tfsm_check_indexes(&F);
}

/* An operator's heuristic decision of an in-doubt XA transaction
 * (wal/xa.c, xa_heuristic): only XA_PREPARED, commit and rollback with
 * their heuristic remembered, repeats, refusals, what a TM's later
 * Commit / Rollback answers, forget, validation and snapshots. */
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
#define FID	 0x53544c45u
#define DEADLINE 100000
#define WHY	 "TM gone for good, ticket 4711 (alice)"

static struct tfsm F;
static int next_id;
static uint64_t now;
static char gid[XA_XID_GID_LEN + 1];

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

TestSuite(xa_heur, .init = setup, .fini = teardown);

static Settle__V1__TxRecord *tx_of(const char *g)
{
	Settle__V1__TxRecord *tx;
	cr_assert_eq(store_tx_get(F.t.s, NULL, g, &tx), 0, "tx %s", g);
	return tx;
}

static int tx_state(const char *g)
{
	Settle__V1__TxRecord *tx = tx_of(g);
	int st = tx->state;
	settle__v1__tx_record__free_unpacked(tx, NULL);
	return st;
}

static int tx_heuristic(const char *g)
{
	Settle__V1__TxRecord *tx = tx_of(g);
	int h = tx->heuristic;
	settle__v1__tx_record__free_unpacked(tx, NULL);
	return h;
}

static int branch_state(const char *g, uint32_t id)
{
	Settle__V1__BranchRecord *b;
	cr_assert_eq(store_branch_get(F.t.s, NULL, g, id, &b), 0);
	int st = b->state;
	settle__v1__branch_record__free_unpacked(b, NULL);
	return st;
}

static int events(const char *g, const char *kind, const char *sub)
{
	Settle__V1__Event **ev;
	size_t n;
	cr_assert_eq(store_events_list(F.t.s, NULL, g, &ev, &n), 0);
	int k = 0;
	for (size_t i = 0; i < n; i++)
		if (strcmp(ev[i]->kind, kind) == 0 &&
		    (sub == NULL || strstr(ev[i]->detail, sub) != NULL))
			k++;
	store_events_free(ev, n);
	return k;
}

static int code(struct ent e)
{
	return tfsm_code(&F, e);
}

static Settle__V1__CmdResult *res(struct ent e)
{
	return tfsm_res(&F, e);
}

static uint32_t reg_tcc(const char *g)
{
	Settle__V1__CmdResult *r =
	    res(ent_register(next_id++, now, g, "127.0.0.1:9000", "acct", "p"));
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	uint32_t id = r->branch_id;
	settle__v1__cmd_result__free_unpacked(r, NULL);
	return id;
}

/* A legacy TM's transaction with one TCC branch, XA_PREPARED: in doubt. */
static uint32_t prepared_legacy(void)
{
	uint8_t wire[XA_XID_WIRE_MAX];
	size_t len;
	struct xa_xid x;
	cr_assert_eq(xa_xid_init(&x, 77, "tm-gtrid", 8, "b1", 2), 0);
	cr_assert_eq(xa_xid_encode(&x, wire, sizeof wire, &len), 0);
	cr_assert_eq(xa_xid_gid(&x, gid), 0);
	cr_assert_eq(
	    code(ent_xa_begin(next_id++, now, gid, DEADLINE, wire, len)),
	    CODE(OK));
	uint32_t b = reg_tcc(gid);
	cr_assert_eq(code(ent_xa_prepare(next_id++, now, gid)), CODE(OK));
	cr_assert_eq(tx_state(gid), TX(XA_PREPARED));
	return b;
}

static Settle__V1__CmdResult *heur(const char *g, int d)
{
	return res(ent_xa_heuristic(next_id++, now, g, d, WHY));
}

static Settle__V1__CmdResult *tm_decide(const char *g, int d)
{
	return res(ent_decide(next_id++, now, g, d, "", 0));
}

static void confirm(const char *g, uint32_t b, int phase)
{
	cr_assert_eq(
	    code(ent_result(next_id++, now, g, b, phase, R_OK, "", 1, 0)),
	    CODE(OK));
}

Test(xa_heur, commit_of_an_in_doubt_transaction_is_remembered)
{
	uint32_t b = prepared_legacy();
	Settle__V1__CmdResult *r = heur(gid, COMMIT);
	cr_expect_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->state, TX(COMMITTING));
	cr_expect_eq(r->heuristic, HEUR(HEUR_COMMIT));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	/* As the commit decision: the TCC branch is confirmed. */
	cr_expect_eq(branch_state(gid, b), ST(CONFIRMING));
	cr_expect_eq(tx_heuristic(gid), HEUR(HEUR_COMMIT));
	cr_expect_eq(events(gid, "heuristic", "HEUR_COMMIT: operator: " WHY),
		     1);
	cr_expect_eq(events(gid, "commit", NULL), 1);
	confirm(gid, b, ST(CONFIRMING));
	cr_expect_eq(tx_state(gid), TX(COMMITTED));
	cr_expect_eq(tx_heuristic(gid), HEUR(HEUR_COMMIT));

	/* The TM comes back and commits: OK, and it hears the heuristic. */
	r = tm_decide(gid, COMMIT);
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->state, TX(COMMITTED));
	cr_expect_eq(r->heuristic, HEUR(HEUR_COMMIT));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	/* Or rolls back: refused, naming the heuristic, which it carries. */
	r = tm_decide(gid, ROLLBACK);
	cr_expect_eq(r->code, CODE(WRONG_STATE));
	cr_expect_eq(r->state, TX(COMMITTED));
	cr_expect_eq(r->heuristic, HEUR(HEUR_COMMIT));
	cr_expect(strstr(r->message, "HEUR_COMMIT") != NULL, "%s", r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);

	/* xa_forget clears it; then the TM's verbs answer as usual. */
	cr_expect_eq(code(ent_xa_forget(next_id++, now, gid)), CODE(OK));
	cr_expect_eq(tx_heuristic(gid), HEUR(HEURISTIC_NONE));
	r = tm_decide(gid, COMMIT);
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->heuristic, HEUR(HEURISTIC_NONE));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	tfsm_check_indexes(&F);
}

Test(xa_heur, rollback_of_an_in_doubt_transaction_is_remembered)
{
	uint32_t b = prepared_legacy();
	Settle__V1__CmdResult *r = heur(gid, ROLLBACK);
	cr_expect_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->state, TX(ROLLING_BACK));
	cr_expect_eq(r->heuristic, HEUR(HEUR_ROLLBACK));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state(gid, b), ST(CANCELLING));
	Settle__V1__TxRecord *tx = tx_of(gid);
	cr_expect_str_eq(tx->reason, "heuristic rollback by operator: " WHY);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(events(gid, "heuristic", "HEUR_ROLLBACK"), 1);
	confirm(gid, b, ST(CANCELLING));
	cr_expect_eq(tx_state(gid), TX(ROLLED_BACK));

	/* The TM's commit is refused with the heuristic (XA_HEURRB); its
	 * rollback answers OK with it (XA_HEURRB too). */
	r = tm_decide(gid, COMMIT);
	cr_expect_eq(r->code, CODE(WRONG_STATE));
	cr_expect_eq(r->heuristic, HEUR(HEUR_ROLLBACK));
	cr_expect(strstr(r->message, "HEUR_ROLLBACK") != NULL, "%s",
		  r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = tm_decide(gid, ROLLBACK);
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->state, TX(ROLLED_BACK));
	cr_expect_eq(r->heuristic, HEUR(HEUR_ROLLBACK));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	tfsm_check_indexes(&F);
}

Test(xa_heur, the_tm_hears_it_while_phase_two_still_runs)
{
	prepared_legacy();
	Settle__V1__CmdResult *r = heur(gid, COMMIT);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = tm_decide(gid, ROLLBACK);
	cr_expect_eq(r->code, CODE(WRONG_STATE));
	cr_expect_eq(r->state, TX(COMMITTING));
	cr_expect_eq(r->heuristic, HEUR(HEUR_COMMIT));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = tm_decide(gid, COMMIT);
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->state, TX(COMMITTING));
	cr_expect_eq(r->heuristic, HEUR(HEUR_COMMIT));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	/* Not final yet: nothing to forget. */
	cr_expect_eq(code(ent_xa_forget(next_id++, now, gid)),
		     CODE(WRONG_STATE));
}

Test(xa_heur, repeats_answer_ok_the_opposite_is_refused)
{
	prepared_legacy();
	Settle__V1__CmdResult *r = heur(gid, ROLLBACK);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = heur(gid, ROLLBACK);
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->state, TX(ROLLING_BACK));
	cr_expect_eq(r->heuristic, HEUR(HEUR_ROLLBACK));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(events(gid, "heuristic", NULL), 1);
	r = heur(gid, COMMIT);
	cr_expect_eq(r->code, CODE(WRONG_STATE));
	cr_expect(strstr(r->message, "only an XA_PREPARED") != NULL, "%s",
		  r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tx_heuristic(gid), HEUR(HEUR_ROLLBACK));
}

Test(xa_heur, only_an_xa_prepared_transaction)
{
	/* ACTIVE: the TM has not prepared; the deadline decides. */
	cr_assert_eq(
	    code(ent_xa_begin(next_id++, now, "xa-a", DEADLINE, NULL, 0)),
	    CODE(OK));
	cr_expect_eq(
	    code(ent_xa_heuristic(next_id++, now, "xa-a", COMMIT, WHY)),
	    CODE(WRONG_STATE));
	cr_expect_eq(tx_state("xa-a"), TX(ACTIVE));
	/* Decided by its TM already (no heuristic): refused. */
	prepared_legacy();
	Settle__V1__CmdResult *r = tm_decide(gid, COMMIT);
	cr_expect_eq(r->heuristic, HEUR(HEURISTIC_NONE));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(code(ent_xa_heuristic(next_id++, now, gid, COMMIT, WHY)),
		     CODE(WRONG_STATE));
	cr_expect_eq(tx_heuristic(gid), HEUR(HEURISTIC_NONE));
	/* Unknown gid; a TCC transaction. */
	cr_expect_eq(
	    code(ent_xa_heuristic(next_id++, now, "nope", COMMIT, WHY)),
	    CODE(NOT_FOUND));
	cr_assert_eq(code(ent_begin(next_id++, now, "tcc", DEADLINE)),
		     CODE(OK));
	cr_expect_eq(
	    code(ent_xa_heuristic(next_id++, now, "tcc", ROLLBACK, WHY)),
	    CODE(WRONG_STATE));
	cr_expect_eq(tx_state("tcc"), TX(ACTIVE));
	tfsm_check_indexes(&F);
}

Test(xa_heur, a_prepared_transaction_of_settles_own_with_rm_branches)
{
	/* Without an xid (presumed abort by its deadline) an operator may
	 * decide it too: the leader then commits its RM branch. */
	cr_assert_eq(
	    code(ent_xa_begin(next_id++, now, "xa-own", DEADLINE, NULL, 0)),
	    CODE(OK));
	Settle__V1__CmdResult *r =
	    res(ent_xa_register(next_id++, now, "xa-own", "pg", FID));
	uint32_t b = r->branch_id;
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_assert_eq(
	    code(ent_xa_vote(next_id++, now, "xa-own", b, VOTE(VOTE_OK), "")),
	    CODE(OK));
	cr_assert_eq(code(ent_xa_prepare(next_id++, now, "xa-own")), CODE(OK));
	r = heur("xa-own", COMMIT);
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->state, TX(COMMITTING));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state("xa-own", b), ST(XA_BRANCH_COMMITTING));
	/* The RM then rolls it back: the heuristics merge to MIXED. */
	cr_expect_eq(code(ent_xa_result(next_id++, now, "xa-own", b,
					ST(XA_BRANCH_COMMITTING), R_OK,
					HEUR(HEUR_ROLLBACK), "rm", 0)),
		     CODE(OK));
	cr_expect_eq(tx_state("xa-own"), TX(COMMITTED));
	cr_expect_eq(tx_heuristic("xa-own"), HEUR(HEUR_MIXED));
	tfsm_check_indexes(&F);
}

Test(xa_heur, same_cmd_id_applies_once)
{
	prepared_legacy();
	struct ent e = ent_xa_heuristic(500, now, gid, COMMIT, WHY);
	Settle__V1__CmdResult *r = tfsm_apply(&F, e);
	cr_expect_eq(r->code, CODE(OK));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = tfsm_apply(&F, e);
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->heuristic, HEUR(HEUR_COMMIT));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	ent_free(e);
	cr_expect_eq(events(gid, "heuristic", NULL), 1);
}

static int validate(Settle__V1__CmdXaHeuristic *h, char *msg, size_t cap)
{
	static uint8_t id[16] = {4, 2};
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	c.cmd_id.data = id;
	c.cmd_id.len = 16;
	c.time_ms = 1;
	c.op_case = SETTLE__V1__COMMAND__OP_XA_HEURISTIC;
	c.xa_heuristic = h;
	return wal_command_validate(&c, msg, cap);
}

Test(xa_heur, validation_names_the_field)
{
	Settle__V1__CmdXaHeuristic h = SETTLE__V1__CMD_XA_HEURISTIC__INIT;
	char msg[256], big[1100];
	h.gid = "xa-1";
	h.decision = COMMIT;
	h.reason = WHY;
	cr_expect_eq(validate(&h, msg, sizeof msg), 0);
	h.decision = 0;
	cr_expect_eq(validate(&h, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "decision") != NULL, "%s", msg);
	h.decision = 7;
	cr_expect_eq(validate(&h, msg, sizeof msg), SETTLE_EINVAL);
	h.decision = ROLLBACK;
	h.reason = "";
	cr_expect_eq(validate(&h, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "reason") != NULL, "%s", msg);
	memset(big, 'r', sizeof big - 1);
	big[sizeof big - 1] = 0;
	h.reason = big;
	cr_expect_eq(validate(&h, msg, sizeof msg), SETTLE_ETOOBIG);
	h.reason = WHY;
	h.gid = "has space";
	cr_expect_eq(validate(&h, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "gid") != NULL, "%s", msg);
}

Test(xa_heur, snapshot_keeps_the_heuristic)
{
	prepared_legacy();
	Settle__V1__CmdResult *r = heur(gid, COMMIT);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	uint8_t *buf;
	size_t len;
	tfsm_snapshot(&F, &buf, &len);
	struct tfsm g;
	tfsm_open(&g);
	cr_assert_eq(store_restore(g.t.s, buf, len), 0, "%s",
		     store_errmsg(g.t.s));
	raft_free(buf);
	Settle__V1__TxRecord *tx;
	cr_assert_eq(store_tx_get(g.t.s, NULL, gid, &tx), 0);
	cr_expect_eq(tx->heuristic, HEUR(HEUR_COMMIT));
	cr_expect_eq(tx->state, TX(COMMITTING));
	settle__v1__tx_record__free_unpacked(tx, NULL);
	tfsm_close(&g);
}

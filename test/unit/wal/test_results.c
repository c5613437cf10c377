/*
 * CmdResults (many phase-2 answers in one entry) and CmdFeatures (the
 * cluster's feature level). An answer inside a CmdResults must do exactly
 * what the command of its own does; a rejected one must change nothing
 * and must not stop the others; a level this binary cannot apply must
 * stop the apply with nothing written.
 */
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "fsm_helpers.h"

#define C_OK	   SETTLE__V1__CODE__OK
#define C_INVALID  SETTLE__V1__CODE__INVALID_ARGUMENT
#define COMMIT	   SETTLE__V1__DECISION__DECIDE_COMMIT
#define ROLLBACK   SETTLE__V1__DECISION__DECIDE_ROLLBACK
#define CONFIRMING SETTLE__V1__BRANCH_STATE__CONFIRMING
#define CANCELLING SETTLE__V1__BRANCH_STATE__CANCELLING
#define OK	   SETTLE__V1__OUTCOME__OUTCOME_OK
#define RETRY	   SETTLE__V1__OUTCOME__OUTCOME_RETRY
#define FAILURE	   SETTLE__V1__OUTCOME__OUTCOME_FAILURE

static struct tfsm F;

static void setup(void)
{
	tfsm_open(&F);
}

static void teardown(void)
{
	tfsm_close(&F);
}

TestSuite(results, .init = setup, .fini = teardown);

/* A CmdResults entry of n branch answers (and n_steps step answers). */
static struct ent ent_results(int id, uint64_t time,
			      Settle__V1__CmdBranchResult *br, size_t n,
			      Settle__V1__CmdStepResult *sr, size_t n_steps)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdResults r = SETTLE__V1__CMD_RESULTS__INIT;
	Settle__V1__CmdBranchResult *bp[n > 0 ? n : 1];
	Settle__V1__CmdStepResult *sp[n_steps > 0 ? n_steps : 1];
	uint8_t idb[16];

	memset(idb, 0x22, sizeof idb);
	memcpy(idb, &id, sizeof id);
	c.cmd_id.data = idb;
	c.cmd_id.len = sizeof idb;
	c.time_ms = time;
	for (size_t i = 0; i < n; i++)
		bp[i] = &br[i];
	for (size_t i = 0; i < n_steps; i++)
		sp[i] = &sr[i];
	r.branches = bp;
	r.n_branches = n;
	r.steps = sp;
	r.n_steps = n_steps;
	c.op_case = SETTLE__V1__COMMAND__OP_RESULTS;
	c.results = &r;
	return ent_cmd(&c);
}

static Settle__V1__CmdBranchResult answer(const char *gid, uint32_t branch,
					  int phase, int outcome,
					  const char *error)
{
	Settle__V1__CmdBranchResult r = SETTLE__V1__CMD_BRANCH_RESULT__INIT;
	r.gid = (char *)gid;
	r.branch_id = branch;
	r.phase = phase;
	r.outcome = outcome;
	r.error = (char *)error;
	r.attempt = 1;
	return r;
}

static int tx_state(struct tfsm *t, const char *gid)
{
	Settle__V1__TxRecord *tx;
	cr_assert_eq(store_tx_get(t->t.s, NULL, gid, &tx), 0, "tx %s", gid);
	int state = tx->state;
	settle__v1__tx_record__free_unpacked(tx, NULL);
	return state;
}

static int branch_state(struct tfsm *t, const char *gid, uint32_t id)
{
	Settle__V1__BranchRecord *b;
	cr_assert_eq(store_branch_get(t->t.s, NULL, gid, id, &b), 0);
	int state = b->state;
	settle__v1__branch_record__free_unpacked(b, NULL);
	return state;
}

/* Begin gid with 2 declared branches and decide it. */
static void decided(struct tfsm *t, int *id, const char *gid, int decision)
{
	cr_assert_eq(tfsm_code(t, ent_begin_branches((*id)++, 100, gid, 100000,
						     2, "h:1", "p")),
		     C_OK);
	cr_assert_eq(
	    tfsm_code(t, ent_decide((*id)++, 200, gid, decision, "", 0)), C_OK);
}

Test(results, finishes_many_transactions_in_one_entry)
{
	int id = 1;
	const char *gids[] = {"a", "b", "c"};
	for (int i = 0; i < 3; i++)
		decided(&F, &id, gids[i], i == 2 ? ROLLBACK : COMMIT);
	Settle__V1__CmdBranchResult br[6];
	for (int i = 0; i < 3; i++)
		for (uint32_t b = 1; b <= 2; b++)
			br[i * 2 + b - 1] =
			    answer(gids[i], b, i == 2 ? CANCELLING : CONFIRMING,
				   OK, "");
	uint64_t before = F.index;
	int changes = F.changes;
	Settle__V1__CmdResult *r =
	    tfsm_res(&F, ent_results(id++, 300, br, 6, NULL, 0));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->count, 6, "every answer applied");
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(F.index, before + 1, "one entry");
	cr_expect_eq(tx_state(&F, "a"), SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(tx_state(&F, "b"), SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(tx_state(&F, "c"), SETTLE__V1__TX_STATE__ROLLED_BACK);
	cr_expect_eq(branch_state(&F, "c", 2),
		     SETTLE__V1__BRANCH_STATE__CANCELLED);
	cr_expect_eq(F.changes - changes, 6, "the hook once per answer");
	cr_expect_str_eq(F.last_gid, "c");
	cr_expect_eq(F.last_state, SETTLE__V1__TX_STATE__ROLLED_BACK);
	/* The hook says what each answer moved it from. */
	cr_expect_eq(F.last_was, SETTLE__V1__TX_STATE__ROLLING_BACK);
	tfsm_check_indexes(&F);
}

Test(results, a_rejected_answer_changes_nothing_and_the_rest_go_on)
{
	int id = 1;
	decided(&F, &id, "g", COMMIT);
	Settle__V1__CmdBranchResult br[4] = {
	    answer("nosuch", 1, CONFIRMING, OK, ""),
	    answer("g", 0, CONFIRMING, OK, ""), /* invalid: no branch id */
	    answer("g", 1, CONFIRMING, OK, ""),
	    answer("g", 9, CONFIRMING, OK, ""), /* no such branch */
	};
	Settle__V1__CmdResult *r =
	    tfsm_res(&F, ent_results(id++, 300, br, 4, NULL, 0));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->count, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state(&F, "g", 1),
		     SETTLE__V1__BRANCH_STATE__CONFIRMED);
	cr_expect_eq(branch_state(&F, "g", 2), CONFIRMING);
	cr_expect_eq(tx_state(&F, "g"), SETTLE__V1__TX_STATE__COMMITTING);
	cr_expect_eq(store_tx_get(F.t.s, NULL, "nosuch",
				  &(Settle__V1__TxRecord *){NULL}),
		     SETTLE_ENOTFOUND);
	tfsm_check_indexes(&F);
}

/* The same answers as single commands and as one CmdResults end in the
 * same transactions, branches and histories. */
Test(results, same_state_as_single_commands)
{
	struct tfsm G;
	tfsm_open(&G);
	int id = 1, gid_id = 1;
	decided(&F, &id, "x", COMMIT);
	decided(&F, &id, "y", COMMIT);
	decided(&G, &gid_id, "x", COMMIT);
	decided(&G, &gid_id, "y", COMMIT);
	Settle__V1__CmdBranchResult br[4] = {
	    answer("x", 1, CONFIRMING, OK, ""),
	    answer("x", 2, CONFIRMING, RETRY, "UNAVAIL: down"),
	    answer("y", 1, CONFIRMING, FAILURE, "no such account"),
	    answer("y", 2, CONFIRMING, OK, ""),
	};
	br[1].next_retry_ms = 900;
	for (int i = 0; i < 4; i++)
		cr_assert_eq(
		    tfsm_code(&F,
			      ent_result(id++, 300, br[i].gid, br[i].branch_id,
					 br[i].phase, br[i].outcome,
					 br[i].error, 1, br[i].next_retry_ms)),
		    C_OK);
	Settle__V1__CmdResult *r =
	    tfsm_res(&G, ent_results(gid_id++, 300, br, 4, NULL, 0));
	cr_expect_eq(r->count, 4);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	const char *gids[] = {"x", "y"};
	for (int i = 0; i < 2; i++) {
		Settle__V1__TxRecord *a, *b;
		cr_assert_eq(store_tx_get(F.t.s, NULL, gids[i], &a), 0);
		cr_assert_eq(store_tx_get(G.t.s, NULL, gids[i], &b), 0);
		size_t na = settle__v1__tx_record__get_packed_size(a);
		size_t nb = settle__v1__tx_record__get_packed_size(b);
		uint8_t pa[na], pb[nb];
		settle__v1__tx_record__pack(a, pa);
		settle__v1__tx_record__pack(b, pb);
		cr_expect(na == nb && memcmp(pa, pb, na) == 0, "tx %s differs",
			  gids[i]);
		settle__v1__tx_record__free_unpacked(a, NULL);
		settle__v1__tx_record__free_unpacked(b, NULL);
		for (uint32_t k = 1; k <= 2; k++)
			cr_expect_eq(branch_state(&F, gids[i], k),
				     branch_state(&G, gids[i], k));
		Settle__V1__Event **ea, **eb;
		size_t nea, neb;
		cr_assert_eq(store_events_list(F.t.s, NULL, gids[i], &ea, &nea),
			     0);
		cr_assert_eq(store_events_list(G.t.s, NULL, gids[i], &eb, &neb),
			     0);
		cr_expect_eq(nea, neb);
		for (size_t k = 0; k < nea && k < neb; k++)
			cr_expect_str_eq(ea[k]->detail, eb[k]->detail);
		store_events_free(ea, nea);
		store_events_free(eb, neb);
	}
	cr_expect_eq(tx_state(&G, "y"), SETTLE__V1__TX_STATE__COMMITTING);
	tfsm_check_indexes(&G);
	tfsm_close(&G);
}

Test(results, empty_or_oversized_is_refused_whole)
{
	int id = 1;
	decided(&F, &id, "g", COMMIT);
	cr_expect_eq(tfsm_code(&F, ent_results(id++, 300, NULL, 0, NULL, 0)),
		     C_INVALID);
	static Settle__V1__CmdBranchResult many[WAL_RESULTS_MAX + 1];
	for (size_t i = 0; i < WAL_RESULTS_MAX + 1; i++)
		many[i] = answer("g", 1, CONFIRMING, OK, "");
	cr_expect_eq(tfsm_code(&F, ent_results(id++, 300, many,
					       WAL_RESULTS_MAX + 1, NULL, 0)),
		     C_INVALID);
	cr_expect_eq(branch_state(&F, "g", 1), CONFIRMING, "nothing applied");
	/* A step answer for a TCC transaction is rejected on its own. */
	Settle__V1__CmdStepResult st = SETTLE__V1__CMD_STEP_RESULT__INIT;
	st.gid = "g";
	st.step = 1;
	st.phase = SETTLE__V1__SAGA_PHASE__PHASE_ACTION;
	st.outcome = OK;
	Settle__V1__CmdBranchResult one = answer("g", 2, CONFIRMING, OK, "");
	Settle__V1__CmdResult *r =
	    tfsm_res(&F, ent_results(id++, 300, &one, 1, &st, 1));
	cr_expect_eq(r->count, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state(&F, "g", 2),
		     SETTLE__V1__BRANCH_STATE__CONFIRMED);
}

Test(results, feature_level_only_rises)
{
	cr_expect_eq(fsm_level(&F.f), FSM_LEVEL_BASE, "a new store");
	Settle__V1__CmdResult *r = tfsm_res(&F, ent_features(1, 100, 2));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->count, 2);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(fsm_level(&F.f), 2);
	r = tfsm_res(&F, ent_features(2, 100, 1));
	cr_expect_eq(r->count, 2, "never down");
	settle__v1__cmd_result__free_unpacked(r, NULL);
	fsm_forget_level(&F.f);
	cr_expect_eq(fsm_level(&F.f), 2, "kept in the store");
	uint64_t stored;
	cr_assert_eq(store_level_get(F.t.s, NULL, &stored), 0);
	cr_expect_eq(stored, 2);
	cr_expect_eq(tfsm_code(&F, ent_features(3, 100, 0)), C_INVALID);
}

/* A level above this binary's stops the apply with nothing written; in
 * batched mode the open batch goes, and the level it had raised with it. */
Test(results, a_level_above_this_binary_stops_the_apply)
{
	F.f.batched = true;
	Settle__V1__CmdResult *r = tfsm_res(&F, ent_features(1, 100, 2));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(fsm_level(&F.f), 2, "seen inside the open batch");
	struct ent e = ent_features(2, 100, FSM_LEVEL + 1);
	Settle__V1__CmdResult *res = NULL;
	int rv = fsm_apply(&F.f, ++F.index, e.buf, e.len, &res);
	ent_free(e);
	cr_expect_eq(rv, SETTLE_ESTATE);
	cr_expect_null(res);
	cr_expect(strstr(F.f.errmsg, "upgrade it") != NULL, "%s", F.f.errmsg);
	cr_expect_eq(fsm_level(&F.f), FSM_LEVEL_BASE, "the batch was dropped");
	uint64_t applied = 99;
	cr_assert_eq(store_applied_get(F.t.s, NULL, &applied), 0);
	cr_expect_eq(applied, 0);
}

/* ---- CmdBatch: many proposers' commands in one entry ------------------ */

TestSuite(batch, .init = setup, .fini = teardown);

/* One entry holding the commands of entries es[0..n) (not freed). */
static struct ent ent_batch(int id, const struct ent *es, size_t n)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdBatch b = SETTLE__V1__CMD_BATCH__INIT;
	ProtobufCBinaryData cmds[n > 0 ? n : 1];
	uint8_t idb[16];

	memset(idb, 0x44, sizeof idb);
	memcpy(idb, &id, sizeof id);
	c.cmd_id.data = idb;
	c.cmd_id.len = sizeof idb;
	c.time_ms = 1;
	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = es[i].buf;
		cmds[i].len = (size_t)p[0] | (size_t)p[1] << 8 |
			      (size_t)p[2] << 16 | (size_t)p[3] << 24;
		cmds[i].data = es[i].buf + 4;
	}
	b.commands = cmds;
	b.n_commands = n;
	c.op_case = SETTLE__V1__COMMAND__OP_BATCH;
	c.batch = &b;
	return ent_cmd(&c);
}

/* The result stored under the helpers' cmd_id `id`. */
static Settle__V1__CmdResult *stored_result(struct tfsm *t, int id)
{
	uint8_t idb[16];
	Settle__V1__CmdResult *r = NULL;

	memset(idb, 0x11, sizeof idb);
	memcpy(idb, &id, sizeof id);
	cr_assert_eq(store_cmd_get(t->t.s, NULL, idb, &r), 0, "cmd %d", id);
	return r;
}

Test(batch, each_command_applied_under_its_own_cmd_id)
{
	struct ent es[3] = {
	    ent_begin_branches(1, 100, "g1", 100000, 2, "h:1", "p"),
	    ent_begin(2, 100, "g2", 100000),
	    ent_decide(3, 110, "g1", COMMIT, "", 0),
	};
	uint64_t before = F.index;
	int changes = F.changes;
	Settle__V1__CmdResult *r = tfsm_res(&F, ent_batch(10, es, 3));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->count, 3);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(F.index, before + 1, "one entry");
	cr_expect_eq(F.changes - changes, 3, "the hook once per command");
	cr_expect_eq(tx_state(&F, "g1"), SETTLE__V1__TX_STATE__COMMITTING);
	cr_expect_eq(tx_state(&F, "g2"), SETTLE__V1__TX_STATE__ACTIVE);
	r = stored_result(&F, 1);
	cr_expect_eq(r->count, 2, "begin's branches");
	cr_expect_eq(r->index, F.index);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = stored_result(&F, 3);
	cr_expect_eq(r->state, SETTLE__V1__TX_STATE__COMMITTING);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	/* A repeat inside a later batch: answered from its cmd_id, no
	 * second effect; garbage beside it changes nothing. */
	struct ent again[2] = {ent_begin(2, 200, "g2", 100000),
			       ent_begin(4, 200, "g3", 100000)};
	struct ent two[3] = {again[0], again[1], again[1]};
	two[1].buf = (uint8_t *)"\x05\x00\x00\x00\xff\xff\xff\xff\xff\x00";
	two[2] = again[1];
	r = tfsm_res(&F, ent_batch(11, two, 3));
	cr_expect_eq(r->count, 2, "the repeat and g3");
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tx_state(&F, "g3"), SETTLE__V1__TX_STATE__ACTIVE);
	tfsm_check_indexes(&F);
	for (int i = 0; i < 3; i++)
		ent_free(es[i]);
	ent_free(again[0]);
	ent_free(again[1]);
}

/* The same commands in one batch or as entries of their own end in the
 * same transactions. */
Test(batch, same_state_as_entries_of_their_own)
{
	struct tfsm G;
	tfsm_open(&G);
	struct ent es[4] = {
	    ent_begin_branches(1, 100, "x", 100000, 2, "h:1", "p"),
	    ent_decide(2, 110, "x", ROLLBACK, "no", 0),
	    ent_result(3, 120, "x", 1, CANCELLING, OK, "", 1, 0),
	    ent_result(4, 120, "x", 2, CANCELLING, OK, "", 1, 0),
	};
	for (int i = 0; i < 4; i++)
		settle__v1__cmd_result__free_unpacked(tfsm_apply(&F, es[i]),
						      NULL);
	Settle__V1__CmdResult *r = tfsm_res(&G, ent_batch(9, es, 4));
	cr_expect_eq(r->count, 4);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tx_state(&F, "x"), SETTLE__V1__TX_STATE__ROLLED_BACK);
	cr_expect_eq(tx_state(&G, "x"), SETTLE__V1__TX_STATE__ROLLED_BACK);
	Settle__V1__Event **ea, **eb;
	size_t na, nb;
	cr_assert_eq(store_events_list(F.t.s, NULL, "x", &ea, &na), 0);
	cr_assert_eq(store_events_list(G.t.s, NULL, "x", &eb, &nb), 0);
	cr_expect_eq(na, nb);
	for (size_t k = 0; k < na && k < nb; k++) {
		cr_expect_str_eq(ea[k]->kind, eb[k]->kind);
		cr_expect_eq(ea[k]->time_ms, eb[k]->time_ms, "own stamps");
	}
	store_events_free(ea, na);
	store_events_free(eb, nb);
	tfsm_check_indexes(&G);
	for (int i = 0; i < 4; i++)
		ent_free(es[i]);
	tfsm_close(&G);
}

/* The batch's own cmd_id is kept: the same batch at a later index is
 * answered from it (the first index, the same count) and runs nothing. */
Test(batch, the_same_batch_again_is_answered_from_its_cmd_id)
{
	struct ent es[2] = {ent_begin(1, 100, "g1", 100000), {0}};
	es[1].buf = (uint8_t *)"\x05\x00\x00\x00\xff\xff\xff\xff\xff\x00";
	struct ent b = ent_batch(12, es, 2);
	Settle__V1__CmdResult *r = tfsm_apply(&F, b);
	uint64_t first = F.index;
	int changes = F.changes;
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->count, 1, "the begin, not the garbage");
	cr_expect_eq(r->index, first);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = tfsm_apply(&F, b);
	cr_expect_eq(F.index, first + 1, "applied at the next index");
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->count, 1);
	cr_expect_eq(r->index, first, "answered from the first apply");
	cr_expect_eq(F.changes, changes, "no hook the second time");
	settle__v1__cmd_result__free_unpacked(r, NULL);
	tfsm_check_indexes(&F);
	ent_free(b);
	ent_free(es[0]);
}

Test(batch, empty_is_refused_whole)
{
	cr_expect_eq(tfsm_code(&F, ent_batch(1, NULL, 0)), C_INVALID);
}

/* The cluster clock is read once per entry and written once: commands of
 * a batch see it raised by the stamps before them, never lowered, and the
 * highest stamp is what the store keeps. */
Test(batch, the_cluster_clock_moves_with_the_stamps_inside_a_batch)
{
	struct ent es[3] = {
	    ent_clocked(ent_begin(1, 100, "c1", 100000), 7000, 1000),
	    ent_clocked(ent_begin(2, 100, "c2", 100000), 9000, 1000),
	    ent_clocked(ent_begin(3, 100, "c3", 100000), 8000, 1000),
	};
	Settle__V1__CmdResult *r = tfsm_res(&F, ent_batch(20, es, 3));
	uint64_t clock;
	const char *gids[3] = {"c1", "c2", "c3"};
	const uint64_t expires[3] = {8000, 10000, 10000};

	cr_assert_eq(r->code, SETTLE__V1__CODE__OK);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_assert_eq(store_clock_get(F.t.s, NULL, &clock), 0);
	cr_expect_eq(clock, 9000);
	for (int i = 0; i < 3; i++) {
		Settle__V1__TxRecord *tx;
		cr_assert_eq(store_tx_get(F.t.s, NULL, gids[i], &tx), 0);
		cr_expect_eq(tx->expires_clock_ms, expires[i], "%s", gids[i]);
		settle__v1__tx_record__free_unpacked(tx, NULL);
		ent_free(es[i]);
	}
}

/* ---- Command ids that begin with their time (feature level 4) ---------- */

/* A CmdFeatures entry under a given id. */
static struct ent ent_features_id(const uint8_t *id, uint64_t time,
				  uint32_t level)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdFeatures f = SETTLE__V1__CMD_FEATURES__INIT;
	c.cmd_id.data = (uint8_t *)id;
	c.cmd_id.len = 16;
	c.time_ms = time;
	f.level = level;
	c.op_case = SETTLE__V1__COMMAND__OP_FEATURES;
	c.features = &f;
	return ent_cmd(&c);
}

/* An id as settle_cmd_id() makes them: unix ms t in 6 bytes, then n. */
static void timed_id(uint8_t *id, uint64_t t, uint8_t n)
{
	memset(id, 0x44, 16);
	for (int i = 0; i < 6; i++)
		id[i] = (uint8_t)(t >> (40 - 8 * i));
	id[15] = n;
}

/* Below level 4 every id goes to cmds with a cmd_time row, as older
 * releases do; from level 4 (the command raising it included) an id that
 * begins with a time near the command's goes to cmd_ids alone. A retry is
 * answered alike from either table, and the collection forgets both. */
Test(results, timed_cmd_ids_from_level_4)
{
	const uint64_t t = 1796608900000ull;
	uint8_t a[16], b[16], c[16], far[16], plain[16];
	timed_id(a, t, 1);
	timed_id(b, t + 1, 2);
	timed_id(c, t + 2, 3);
	timed_id(far, t - STORE_CMD_SKEW_MS - 1, 4);
	memset(plain, 0xee, sizeof plain);

	Settle__V1__CmdResult *r = tfsm_res(&F, ent_features_id(a, t, 3));
	cr_expect_eq(r->count, 3);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tfsm_rows(&F, "cmds"), 1, "level 3: cmds");
	cr_expect_eq(tfsm_rows(&F, "cmd_time"), 1);
	cr_expect_eq(tfsm_rows(&F, "cmd_ids"), 0);

	r = tfsm_res(&F, ent_features_id(b, t, 4));
	cr_expect_eq(r->count, 4);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tfsm_rows(&F, "cmd_ids"), 1, "raised: cmd_ids");
	cr_expect_eq(tfsm_code(&F, ent_features_id(c, t, 4)), C_OK);
	cr_expect_eq(tfsm_code(&F, ent_features_id(far, t, 4)), C_OK);
	cr_expect_eq(tfsm_code(&F, ent_features_id(plain, t, 4)), C_OK);
	cr_expect_eq(tfsm_rows(&F, "cmd_ids"), 2);
	cr_expect_eq(tfsm_rows(&F, "cmds"), 3, "a, far and plain");
	cr_expect_eq(tfsm_rows(&F, "cmd_time"), 3);

	/* Retries: the stored answers, nothing new written. */
	r = tfsm_res(&F, ent_features_id(a, t + 50, 3));
	cr_expect_eq(r->count, 3, "a's answer, from cmds");
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = tfsm_res(&F, ent_features_id(b, t + 50, 4));
	cr_expect_eq(r->count, 4);
	cr_expect_eq(r->index, 2, "b's answer, from cmd_ids");
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tfsm_rows(&F, "cmd_ids"), 2);
	cr_expect_eq(tfsm_rows(&F, "cmds"), 3);

	/* Collected once the retention has passed their time plus the skew
	 * allowed to a timed id. */
	r = tfsm_res(&F, ent_gc(9, t + 100, t + 10, 100));
	cr_expect_eq(r->deleted_cmds, 3, "a, far and plain");
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tfsm_rows(&F, "cmd_ids"), 2, "b and c stay");
	r = tfsm_res(&F, ent_gc(10, t + 200, t + STORE_CMD_SKEW_MS + 3, 100));
	cr_expect_eq(r->deleted_cmds, 3, "b, c and the first gc's own id");
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tfsm_rows(&F, "cmd_ids"), 0);
	cr_expect_eq(tfsm_rows(&F, "cmds"), 1, "the second gc's own id");
}

/* An operator's verbs in the FSM (wal/operator.c, and saga.c for sagas):
 * CmdRetry and CmdResolve on TCC transactions stuck on a FAILED Confirm
 * or Cancel and on sagas stuck on a FAILED Compensate; the refusals; the
 * transition tables that keep these moves away from participants' results;
 * at most once per cmd_id; determinism. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "error.h"
#include "fsm_helpers.h"
#include "wal/operator.h"
#include "wal/sm.h"

#define ST(x)	SETTLE__V1__BRANCH_STATE__##x
#define TX(x)	SETTLE__V1__TX_STATE__##x
#define CODE(x) SETTLE__V1__CODE__##x

#define COMMIT	 SETTLE__V1__DECISION__DECIDE_COMMIT
#define ROLLBACK SETTLE__V1__DECISION__DECIDE_ROLLBACK
#define R_OK	 SETTLE__V1__OUTCOME__OUTCOME_OK
#define R_RETRY	 SETTLE__V1__OUTCOME__OUTCOME_RETRY
#define R_FAIL	 SETTLE__V1__OUTCOME__OUTCOME_FAILURE
#define ACT	 SETTLE__V1__SAGA_PHASE__PHASE_ACTION
#define COMP	 SETTLE__V1__SAGA_PHASE__PHASE_COMPENSATE
#define DEADLINE 100000

static struct tfsm F;
static int next_id;  /* command ids, one sequence for every kind */
static uint64_t now; /* leader time of the next command */

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

TestSuite(operator, .init = setup, .fini = teardown);

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

/* "kind/branch/detail;" of every event of gid. */
static void history(const char *gid, char *out, size_t len)
{
	Settle__V1__Event **ev;
	size_t n;
	cr_assert_eq(store_events_list(F.t.s, NULL, gid, &ev, &n), 0);
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		size_t used = strlen(out);
		snprintf(out + used, len - used, "%s/%u/%s;", ev[i]->kind,
			 ev[i]->branch_id, ev[i]->detail);
	}
	store_events_free(ev, n);
}

static size_t n_events(const char *gid)
{
	Settle__V1__Event **ev;
	size_t n;
	cr_assert_eq(store_events_list(F.t.s, NULL, gid, &ev, &n), 0);
	store_events_free(ev, n);
	return n;
}

#define EXPECT_IN_HISTORY(gid, text)                                           \
	do {                                                                   \
		char h_[8192];                                                 \
		history(gid, h_, sizeof h_);                                   \
		cr_expect_neq(strstr(h_, text), NULL, "'%s' not in %s", text,  \
			      h_);                                             \
	} while (0)

/* A TCC transaction with nb branches, decided (commit or rollback). */
static void tcc_decided(struct tfsm *t, const char *gid, int nb, bool commit)
{
	cr_assert_eq(tfsm_code(t, ent_begin(next_id++, now++, gid, DEADLINE)),
		     CODE(OK));
	for (int i = 0; i < nb; i++)
		cr_assert_eq(tfsm_code(t, ent_register(next_id++, now++, gid,
						       "h:1", "acct", "PAY")),
			     CODE(OK));
	cr_assert_eq(tfsm_code(t, ent_decide(next_id++, now++, gid,
					     commit ? COMMIT : ROLLBACK,
					     commit ? "" : "user", 0)),
		     CODE(OK));
}

/* A participant's answer for a TCC branch; asserts the apply is OK. */
static void tcc_result(struct tfsm *t, const char *gid, uint32_t branch,
		       bool commit, int outcome, const char *err,
		       uint64_t next_retry)
{
	cr_assert_eq(
	    tfsm_code(t, ent_result(next_id++, now++, gid, branch,
				    commit ? ST(CONFIRMING) : ST(CANCELLING),
				    outcome, err, 0, next_retry)),
	    CODE(OK));
}

/* Two branches; branch 1's Confirm (or Cancel) refused, branch 2's OK:
 * the transaction waits for an operator. */
static void tcc_stuck(struct tfsm *t, const char *gid, bool commit)
{
	tcc_decided(t, gid, 2, commit);
	tcc_result(t, gid, 1, commit, R_FAIL, "account closed", 0);
	tcc_result(t, gid, 2, commit, R_OK, "", 0);
	Settle__V1__TxRecord *tx = tx_of(t, gid);
	cr_assert_eq(tx->state, commit ? TX(COMMITTING) : TX(ROLLING_BACK));
	cr_assert_eq(tx->failed, 1);
	cr_assert_eq(tx->pending, 0);
	cr_assert_eq(tx->due_ms, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

static Settle__V1__CmdResult *retry(const char *gid, uint32_t branch,
				    const char *reason)
{
	return tfsm_res(&F, ent_retry(next_id++, now++, gid, branch, reason));
}

static Settle__V1__CmdResult *resolve(const char *gid, uint32_t branch,
				      const char *reason)
{
	return tfsm_res(&F, ent_resolve(next_id++, now++, gid, branch, reason));
}

/* Saga commands (a prefix of their own in the cmd_id). */
static struct ent saga_ent(struct tfsm *t, const char *gid, size_t n)
{
	(void)t;
	Settle__V1__Command c;
	settle__v1__command__init(&c);
	uint8_t idb[16];
	int id = next_id++;
	memset(idb, 0x44, sizeof idb);
	memcpy(idb, &id, sizeof id);
	c.cmd_id.data = idb;
	c.cmd_id.len = 16;
	c.time_ms = now++;
	Settle__V1__SagaStep st[4], *p[4];
	char names[4][8];
	cr_assert_leq(n, 4);
	for (size_t i = 0; i < n; i++) {
		settle__v1__saga_step__init(&st[i]);
		snprintf(names[i], sizeof names[i], "s%zu", i + 1);
		st[i].name = names[i];
		st[i].endpoint = "h:1";
		st[i].action_payload.data = (uint8_t *)"SECRET-ACT";
		st[i].action_payload.len = 10;
		st[i].compensate_payload.data = (uint8_t *)"SECRET-COMP";
		st[i].compensate_payload.len = 11;
		p[i] = &st[i];
	}
	Settle__V1__CmdSagaBegin b;
	settle__v1__cmd_saga_begin__init(&b);
	b.gid = (char *)gid;
	b.deadline_ms = DEADLINE;
	b.recovery = SETTLE__V1__SAGA_RECOVERY__BACKWARD;
	b.n_steps = n;
	b.steps = p;
	c.op_case = SETTLE__V1__COMMAND__OP_SAGA_BEGIN;
	c.saga_begin = &b;
	return ent_cmd(&c);
}

static void step(struct tfsm *t, const char *gid, uint32_t s, int phase,
		 int outcome, const char *err, uint64_t next_retry)
{
	cr_assert_eq(
	    tfsm_code(t, ent_step_result(next_id++, now++, gid, s, phase,
					 outcome, err, next_retry)),
	    CODE(OK), "step %u result", s);
}

/* Three ordered steps: 1 and 2 done, 3's action fails, 3 compensated,
 * 2's compensation refused: stuck with 1 still to compensate. */
static void saga_stuck(struct tfsm *t, const char *gid)
{
	cr_assert_eq(tfsm_code(t, saga_ent(t, gid, 3)), CODE(OK));
	step(t, gid, 1, ACT, R_OK, "", 0);
	step(t, gid, 2, ACT, R_OK, "", 0);
	step(t, gid, 3, ACT, R_FAIL, "rejected", 0);
	step(t, gid, 3, COMP, R_OK, "", 0);
	step(t, gid, 2, COMP, R_FAIL, "account closed", 0);
	Settle__V1__TxRecord *tx = tx_of(t, gid);
	cr_assert_eq(tx->state, TX(SAGA_COMPENSATING));
	cr_assert_eq(tx->failed, 1);
	cr_assert_eq(tx->due_ms, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

static void expect_steps(const char *gid, int s1, int s2, int s3)
{
	cr_expect_eq(branch_state(gid, 1), s1, "step 1: %s",
		     wal_branch_state_name(branch_state(gid, 1)));
	cr_expect_eq(branch_state(gid, 2), s2, "step 2: %s",
		     wal_branch_state_name(branch_state(gid, 2)));
	cr_expect_eq(branch_state(gid, 3), s3, "step 3: %s",
		     wal_branch_state_name(branch_state(gid, 3)));
}

/* ---- Tables ------------------------------------------------------------- */

Test(operator, moves_out_of_failed_are_in_the_operator_tables_only)
{
	int tcc[] = {ST(CONFIRMING), ST(CANCELLING), ST(CONFIRMED),
		     ST(CANCELLED)};
	for (size_t i = 0; i < sizeof tcc / sizeof tcc[0]; i++) {
		cr_expect(!wal_branch_can_move(ST(FAILED), tcc[i]));
		cr_expect(wal_branch_operator_can_move(ST(FAILED), tcc[i]));
		cr_expect(!wal_step_operator_can_move(ST(FAILED), tcc[i]));
	}
	cr_expect(!wal_step_can_move(ST(FAILED), ST(STEP_COMPENSATING)));
	cr_expect(!wal_step_can_move(ST(FAILED), ST(STEP_COMPENSATED)));
	cr_expect(
	    wal_step_operator_can_move(ST(FAILED), ST(STEP_COMPENSATING)));
	cr_expect(wal_step_operator_can_move(ST(FAILED), ST(STEP_COMPENSATED)));
	/* Nothing else: not out of other states, not to other states. */
	for (int from = 0; from < 32; from++)
		for (int to = -1; to < 32; to++) {
			bool b = wal_branch_operator_can_move(from, to);
			bool s = wal_step_operator_can_move(from, to);
			if (from != ST(FAILED))
				cr_expect(!b && !s, "%d -> %d", from, to);
			if (b)
				cr_expect(to == ST(CONFIRMING) ||
					      to == ST(CANCELLING) ||
					      to == ST(CONFIRMED) ||
					      to == ST(CANCELLED),
					  "FAILED -> %d", to);
			if (s)
				cr_expect(to == ST(STEP_COMPENSATING) ||
					      to == ST(STEP_COMPENSATED),
					  "FAILED -> %d", to);
		}
	cr_expect(!wal_branch_operator_can_move(ST(FAILED), ST(REGISTERED)));
	cr_expect(!wal_step_operator_can_move(ST(FAILED), ST(STEP_ACTING)));
}

Test(operator, a_participant_result_never_moves_a_failed_branch)
{
	tcc_stuck(&F, "g", true);
	/* A late Confirm answer for the FAILED branch is ignored. */
	tcc_result(&F, "g", 1, true, R_OK, "", 0);
	cr_expect_eq(branch_state("g", 1), ST(FAILED));
	cr_expect_eq(tx_state("g"), TX(COMMITTING));
	saga_stuck(&F, "s");
	step(&F, "s", 2, COMP, R_OK, "", 0);
	cr_expect_eq(branch_state("s", 2), ST(FAILED));
}

/* ---- TCC ---------------------------------------------------------------- */

Test(operator, retry_sends_a_failed_confirm_back_and_the_tx_commits)
{
	tcc_stuck(&F, "g", true);
	int changes = F.changes;
	uint64_t at = now;
	Settle__V1__CmdResult *r = retry("g", 1, "account reopened");
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->count, 1);
	cr_expect_eq(r->state, TX(COMMITTING));
	cr_expect_str_eq(r->gid, "g");
	settle__v1__cmd_result__free_unpacked(r, NULL);

	Settle__V1__BranchRecord *b = branch_of("g", 1);
	cr_expect_eq(b->state, ST(CONFIRMING));
	cr_expect_eq(b->attempts, 0);
	cr_expect_eq(b->next_retry_ms, at, "due now");
	cr_expect_str_eq(b->last_error, "account closed");
	settle__v1__branch_record__free_unpacked(b, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->due_ms, at, "the driver finds it due now");
	cr_expect_eq(tx->failed, 0);
	cr_expect_eq(tx->pending, 1);
	cr_expect_str_eq(tx->reason, "retried by operator: account reopened");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	/* The driver hears of it through the change hook. */
	cr_expect_eq(F.changes, changes + 1);
	cr_expect_str_eq(F.last_gid, "g");
	EXPECT_IN_HISTORY("g",
			  "retry/1/FAILED -> CONFIRMING: account reopened;");
	tfsm_check_indexes(&F);

	tcc_result(&F, "g", 1, true, R_OK, "", 0);
	tx = tx_of(&F, "g");
	cr_expect_eq(tx->state, TX(COMMITTED));
	cr_expect_neq(tx->finished_ms, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	tfsm_check_indexes(&F);
}

Test(operator, resolve_a_failed_confirm_and_the_tx_commits)
{
	tcc_stuck(&F, "g", true);
	uint64_t at = now;
	Settle__V1__CmdResult *r =
	    resolve("g", 1, "credited by hand, ticket 42");
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->branch_state, ST(CONFIRMED));
	cr_expect_eq(r->state, TX(COMMITTED));
	cr_expect_eq(r->branch_id, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);

	cr_expect_eq(branch_state("g", 1), ST(CONFIRMED));
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->state, TX(COMMITTED));
	cr_expect_eq(tx->finished_ms, at);
	cr_expect_eq(tx->due_ms, 0);
	cr_expect_eq(tx->failed, 0);
	cr_expect_str_eq(tx->reason,
			 "resolved by operator: credited by hand, ticket 42");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	EXPECT_IN_HISTORY("g", "resolve/1/FAILED -> CONFIRMED: credited by "
			       "hand, ticket 42;committed/0/finished;");
	tfsm_check_indexes(&F);
	struct store_counts c;
	cr_assert_eq(store_counts_get(F.t.s, NULL, &c), 0);
	cr_expect_eq(c.stuck, 0);
}

Test(operator, retry_then_resolve_a_failed_cancel)
{
	tcc_stuck(&F, "r1", false);
	Settle__V1__CmdResult *r = retry("r1", 0, NULL);
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->count, 1);
	cr_expect_eq(r->state, TX(ROLLING_BACK));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state("r1", 1), ST(CANCELLING));
	EXPECT_IN_HISTORY("r1",
			  "retry/1/FAILED -> CANCELLING: " WAL_NO_REASON ";");
	tcc_result(&F, "r1", 1, false, R_OK, "", 0);
	cr_expect_eq(tx_state("r1"), TX(ROLLED_BACK));

	tcc_stuck(&F, "r2", false);
	r = resolve("r2", 1, "nothing was reserved");
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->branch_state, ST(CANCELLED));
	cr_expect_eq(r->state, TX(ROLLED_BACK));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state("r2", 1), ST(CANCELLED));
	EXPECT_IN_HISTORY("r2", "resolve/1/FAILED -> CANCELLED: nothing was "
				"reserved;rolled_back/0/finished;");
	tfsm_check_indexes(&F);
}

Test(operator, retry_again_after_a_second_failure)
{
	tcc_stuck(&F, "g", true);
	Settle__V1__CmdResult *r = retry("g", 1, "try again");
	cr_assert_eq(r->code, CODE(OK));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	tcc_result(&F, "g", 1, true, R_FAIL, "still closed", 0);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->failed, 1);
	cr_expect_eq(tx->due_ms, 0);
	cr_expect_str_eq(tx->reason, "branch 1 failed: still closed");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	r = retry("g", 1, "once more");
	cr_assert_eq(r->code, CODE(OK));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	tcc_result(&F, "g", 1, true, R_OK, "", 0);
	cr_expect_eq(tx_state("g"), TX(COMMITTED));
}

Test(operator, branch_0_retries_every_failed_and_backing_off_branch)
{
	tcc_decided(&F, "g", 4, true);
	tcc_result(&F, "g", 1, true, R_FAIL, "closed", 0);
	tcc_result(&F, "g", 2, true, R_FAIL, "frozen", 0);
	tcc_result(&F, "g", 3, true, R_RETRY, "timeout", 90000);
	tcc_result(&F, "g", 4, true, R_OK, "", 0);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->due_ms, 90000);
	cr_expect_eq(tx->failed, 2);
	settle__v1__tx_record__free_unpacked(tx, NULL);

	uint64_t at = now;
	Settle__V1__CmdResult *r = retry("g", 0, "network fixed");
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->count, 3);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	for (uint32_t i = 1; i <= 3; i++) {
		Settle__V1__BranchRecord *b = branch_of("g", i);
		cr_expect_eq(b->state, ST(CONFIRMING), "branch %u", i);
		cr_expect_eq(b->next_retry_ms, at, "branch %u due now", i);
		settle__v1__branch_record__free_unpacked(b, NULL);
	}
	/* Branch 3 keeps its attempts: only its backoff was skipped. */
	Settle__V1__BranchRecord *b3 = branch_of("g", 3);
	cr_expect_eq(b3->attempts, 1);
	settle__v1__branch_record__free_unpacked(b3, NULL);
	cr_expect_eq(branch_state("g", 4), ST(CONFIRMED));
	tx = tx_of(&F, "g");
	cr_expect_eq(tx->due_ms, at);
	cr_expect_eq(tx->failed, 0);
	cr_expect_eq(tx->pending, 3);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	EXPECT_IN_HISTORY("g", "retry/1/FAILED -> CONFIRMING: network fixed;"
			       "retry/2/FAILED -> CONFIRMING: network fixed;"
			       "retry/3/CONFIRMING, due now: network fixed;");
	tfsm_check_indexes(&F);
	for (uint32_t i = 1; i <= 3; i++)
		tcc_result(&F, "g", i, true, R_OK, "", 0);
	cr_expect_eq(tx_state("g"), TX(COMMITTED));
}

Test(operator, one_branch_of_two_failed_leaves_the_other_stuck)
{
	tcc_decided(&F, "g", 3, true);
	tcc_result(&F, "g", 1, true, R_FAIL, "closed", 0);
	tcc_result(&F, "g", 2, true, R_FAIL, "frozen", 0);
	tcc_result(&F, "g", 3, true, R_RETRY, "timeout", 90000);

	/* Resolving branch 2: branch 1 still FAILED, branch 3 still waits
	 * for its backoff. */
	Settle__V1__CmdResult *r = resolve("g", 2, "unfrozen by hand");
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->state, TX(COMMITTING));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->failed, 1);
	cr_expect_eq(tx->pending, 1);
	cr_expect_eq(tx->due_ms, 90000);
	cr_expect_str_eq(tx->reason, "branch 1 failed: closed");
	settle__v1__tx_record__free_unpacked(tx, NULL);

	/* Retrying branch 1 alone leaves branch 3's backoff as it was. */
	uint64_t at = now;
	r = retry("g", 1, "reopened");
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->count, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__BranchRecord *b3 = branch_of("g", 3);
	cr_expect_eq(b3->next_retry_ms, 90000);
	settle__v1__branch_record__free_unpacked(b3, NULL);
	tx = tx_of(&F, "g");
	cr_expect_eq(tx->due_ms, at);
	cr_expect_eq(tx->failed, 0);
	cr_expect_eq(tx->pending, 2);
	settle__v1__tx_record__free_unpacked(tx, NULL);

	/* A retry of a branch in backoff makes it due now. */
	r = retry("g", 3, "skip the wait");
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->count, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	b3 = branch_of("g", 3);
	cr_expect_lt(b3->next_retry_ms, 90000);
	settle__v1__branch_record__free_unpacked(b3, NULL);
	tcc_result(&F, "g", 1, true, R_OK, "", 0);
	tcc_result(&F, "g", 3, true, R_OK, "", 0);
	cr_expect_eq(tx_state("g"), TX(COMMITTED));
	tfsm_check_indexes(&F);
}

/* ---- Sagas -------------------------------------------------------------- */

Test(operator, resolve_a_failed_compensation_and_the_saga_goes_on)
{
	saga_stuck(&F, "s");
	expect_steps("s", ST(STEP_DONE), ST(FAILED), ST(STEP_COMPENSATED));
	uint64_t at = now;
	Settle__V1__CmdResult *r = resolve("s", 2, "refunded by hand");
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->branch_state, ST(STEP_COMPENSATED));
	cr_expect_eq(r->state, TX(SAGA_COMPENSATING));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	/* Step 1's compensation is next, due now. */
	expect_steps("s", ST(STEP_COMPENSATING), ST(STEP_COMPENSATED),
		     ST(STEP_COMPENSATED));
	Settle__V1__BranchRecord *b = branch_of("s", 1);
	cr_expect_eq(b->next_retry_ms, at);
	settle__v1__branch_record__free_unpacked(b, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, "s");
	cr_expect_eq(tx->due_ms, at);
	cr_expect_eq(tx->failed, 0);
	cr_expect_eq(tx->pending, 1);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	EXPECT_IN_HISTORY(
	    "s", "resolve/2/FAILED -> STEP_COMPENSATED: refunded by hand;");
	tfsm_check_indexes(&F);

	step(&F, "s", 1, COMP, R_OK, "", 0);
	tx = tx_of(&F, "s");
	cr_expect_eq(tx->state, TX(SAGA_COMPENSATED));
	cr_expect_neq(tx->finished_ms, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	tfsm_check_indexes(&F);
}

Test(operator, retry_a_failed_compensation_and_the_saga_compensates)
{
	saga_stuck(&F, "s");
	uint64_t at = now;
	Settle__V1__CmdResult *r = retry("s", 0, "account reopened");
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->count, 1);
	cr_expect_eq(r->state, TX(SAGA_COMPENSATING));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	expect_steps("s", ST(STEP_DONE), ST(STEP_COMPENSATING),
		     ST(STEP_COMPENSATED));
	Settle__V1__BranchRecord *b = branch_of("s", 2);
	cr_expect_eq(b->next_retry_ms, at);
	cr_expect_eq(b->attempts, 0);
	settle__v1__branch_record__free_unpacked(b, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, "s");
	cr_expect_eq(tx->due_ms, at);
	cr_expect_eq(tx->failed, 0);
	cr_expect_eq(tx->pending, 1);
	cr_expect_str_eq(tx->reason, "retried by operator: account reopened");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	EXPECT_IN_HISTORY(
	    "s", "retry/2/FAILED -> STEP_COMPENSATING: account reopened;");

	step(&F, "s", 2, COMP, R_OK, "", 0);
	expect_steps("s", ST(STEP_COMPENSATING), ST(STEP_COMPENSATED),
		     ST(STEP_COMPENSATED));
	step(&F, "s", 1, COMP, R_OK, "", 0);
	cr_expect_eq(tx_state("s"), TX(SAGA_COMPENSATED));
	tfsm_check_indexes(&F);
}

Test(operator, resolving_the_last_failed_compensation_ends_the_saga)
{
	saga_stuck(&F, "s");
	Settle__V1__CmdResult *r = resolve("s", 2, "done by hand");
	cr_assert_eq(r->code, CODE(OK));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	step(&F, "s", 1, COMP, R_FAIL, "gone", 0);
	cr_expect_eq(tx_state("s"), TX(SAGA_COMPENSATING));
	r = resolve("s", 1, "done by hand too");
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->state, TX(SAGA_COMPENSATED));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, "s");
	cr_expect_eq(tx->state, TX(SAGA_COMPENSATED));
	cr_expect_eq(tx->due_ms, 0);
	cr_expect_eq(tx->pending, 0);
	cr_expect_neq(tx->finished_ms, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	EXPECT_IN_HISTORY("s", "resolve/1/FAILED -> STEP_COMPENSATED: done by "
			       "hand too;compensated/0/finished;");
	tfsm_check_indexes(&F);
}

Test(operator, retry_skips_the_backoff_of_a_running_step)
{
	cr_assert_eq(tfsm_code(&F, saga_ent(&F, "s", 2)), CODE(OK));
	step(&F, "s", 1, ACT, R_RETRY, "busy", 50000);
	Settle__V1__TxRecord *tx = tx_of(&F, "s");
	cr_expect_eq(tx->due_ms, 50000);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	uint64_t at = now;
	/* Step 2 is PENDING: nothing to retry there. */
	Settle__V1__CmdResult *r = retry("s", 2, "");
	cr_expect_eq(r->code, CODE(WRONG_STATE));
	cr_expect_str_eq(r->message,
			 "step 2 of s is STEP_PENDING: only a FAILED step or "
			 "one being retried can be retried");
	settle__v1__cmd_result__free_unpacked(r, NULL);
	at = now;
	r = retry("s", 0, "");
	cr_assert_eq(r->code, CODE(OK), "%s", r->message);
	cr_expect_eq(r->count, 1);
	cr_expect_eq(r->state, TX(SAGA_RUNNING));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	tx = tx_of(&F, "s");
	cr_expect_eq(tx->due_ms, at);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	EXPECT_IN_HISTORY("s",
			  "retry/1/STEP_ACTING, due now: " WAL_NO_REASON ";");
	step(&F, "s", 1, ACT, R_OK, "", 0);
	step(&F, "s", 2, ACT, R_OK, "", 0);
	cr_expect_eq(tx_state("s"), TX(SAGA_SUCCEEDED));
}

/* ---- Refusals ----------------------------------------------------------- */

static void expect_refused(struct ent e, int code, const char *msg)
{
	Settle__V1__CmdResult *r = tfsm_res(&F, e);
	cr_expect_eq(r->code, code, "code %d (%s), want %d", r->code,
		     r->message, code);
	if (msg != NULL)
		cr_expect_str_eq(r->message, msg);
	else
		cr_expect_str_neq(r->message, "");
	settle__v1__cmd_result__free_unpacked(r, NULL);
}

Test(operator, refusals_change_nothing)
{
	tcc_stuck(&F, "g", true);
	cr_assert_eq(
	    tfsm_code(&F, ent_begin(next_id++, now++, "act", DEADLINE)),
	    CODE(OK));
	tcc_decided(&F, "done", 1, true);
	tcc_result(&F, "done", 1, true, R_OK, "", 0);
	saga_stuck(&F, "s");
	Settle__V1__TxRecord *before = tx_of(&F, "g");
	size_t events = n_events("g");
	int changes = F.changes;

	expect_refused(ent_retry(next_id++, now++, "nope", 0, "x"),
		       CODE(NOT_FOUND), "transaction nope not found");
	expect_refused(ent_resolve(next_id++, now++, "nope", 1, "x"),
		       CODE(NOT_FOUND), "transaction nope not found");
	expect_refused(ent_retry(next_id++, now++, "done", 0, "x"),
		       CODE(WRONG_STATE),
		       "transaction done is COMMITTED: finished, nothing to "
		       "retry");
	expect_refused(ent_resolve(next_id++, now++, "done", 1, "x"),
		       CODE(WRONG_STATE),
		       "transaction done is COMMITTED: finished, nothing to "
		       "resolve");
	expect_refused(ent_retry(next_id++, now++, "act", 0, "x"),
		       CODE(WRONG_STATE),
		       "transaction act is ACTIVE: not decided yet, nothing "
		       "to retry");
	expect_refused(ent_resolve(next_id++, now++, "g", 2, "x"),
		       CODE(WRONG_STATE),
		       "branch 2 of g is CONFIRMED, not FAILED: only a FAILED "
		       "branch can be resolved");
	expect_refused(ent_retry(next_id++, now++, "g", 2, "x"),
		       CODE(WRONG_STATE),
		       "branch 2 of g is CONFIRMED: only a FAILED branch or "
		       "one being retried can be retried");
	expect_refused(ent_retry(next_id++, now++, "g", 3, "x"),
		       CODE(NOT_FOUND), "branch 3 of g not found");
	expect_refused(ent_resolve(next_id++, now++, "g", 99, "x"),
		       CODE(NOT_FOUND), "branch 99 of g not found");
	expect_refused(ent_resolve(next_id++, now++, "s", 1, "x"),
		       CODE(WRONG_STATE),
		       "step 1 of s is STEP_DONE, not FAILED: only a FAILED "
		       "step can be resolved");
	expect_refused(ent_resolve(next_id++, now++, "s", 4, "x"),
		       CODE(NOT_FOUND), "branch 4 of s not found");

	/* Invalid fields: INVALID_ARGUMENT, whoever proposed them. */
	char *big = malloc(WAL_TEXT_MAX + 2);
	memset(big, 'r', WAL_TEXT_MAX + 1);
	big[WAL_TEXT_MAX + 1] = 0;
	expect_refused(ent_retry(next_id++, now++, "g", 1, big),
		       CODE(INVALID_ARGUMENT), "reason longer than 1024 bytes");
	expect_refused(ent_resolve(next_id++, now++, "g", 1, big),
		       CODE(INVALID_ARGUMENT), "reason longer than 1024 bytes");
	big[WAL_TEXT_MAX] = 0; /* exactly the limit: fine (checked below) */
	expect_refused(ent_resolve(next_id++, now++, "g", 1, ""),
		       CODE(INVALID_ARGUMENT),
		       "reason missing: say who decided and why");
	expect_refused(ent_resolve(next_id++, now++, "g", 1, NULL),
		       CODE(INVALID_ARGUMENT),
		       "reason missing: say who decided and why");
	expect_refused(ent_resolve(next_id++, now++, "g", 0, "x"),
		       CODE(INVALID_ARGUMENT),
		       "branch_id missing: resolve names one FAILED branch");
	expect_refused(ent_retry(next_id++, now++, "bad gid", 0, "x"),
		       CODE(INVALID_ARGUMENT), NULL);

	Settle__V1__TxRecord *after = tx_of(&F, "g");
	cr_expect_eq(after->updated_ms, before->updated_ms);
	cr_expect_eq(after->failed, 1);
	cr_expect_eq(after->next_event_seq, before->next_event_seq);
	cr_expect_eq(n_events("g"), events);
	cr_expect_eq(F.changes, changes, "a refusal reported a change");
	settle__v1__tx_record__free_unpacked(after, NULL);
	settle__v1__tx_record__free_unpacked(before, NULL);
	cr_expect_eq(branch_state("g", 1), ST(FAILED));
	cr_expect_eq(branch_state("s", 2), ST(FAILED));

	/* A reason of exactly 1024 bytes is accepted. */
	Settle__V1__CmdResult *r = resolve("g", 1, big);
	cr_expect_eq(r->code, CODE(OK), "%s", r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	free(big);
	/* Now finished: both verbs refuse it. */
	expect_refused(ent_retry(next_id++, now++, "g", 1, "again"),
		       CODE(WRONG_STATE), NULL);
	tfsm_check_indexes(&F);
}

Test(operator, validation_says_which_field)
{
	char msg[256];
	Settle__V1__CmdRetry rt = SETTLE__V1__CMD_RETRY__INIT;
	Settle__V1__CmdResolve rs = SETTLE__V1__CMD_RESOLVE__INIT;
	rt.gid = "g";
	cr_expect_eq(wal_retry_validate(&rt, msg, sizeof msg), 0);
	rt.gid = "";
	cr_expect_eq(wal_retry_validate(&rt, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect_neq(strstr(msg, "gid"), NULL, "%s", msg);
	rs.gid = "g";
	rs.branch_id = 1;
	rs.reason = "why";
	cr_expect_eq(wal_resolve_validate(&rs, NULL, 0), 0);
	rs.branch_id = 0;
	cr_expect_eq(wal_resolve_validate(&rs, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect_neq(strstr(msg, "branch_id"), NULL, "%s", msg);
}

/* ---- At most once, determinism ----------------------------------------- */

Test(operator, a_repeated_cmd_id_acts_once)
{
	tcc_stuck(&F, "g", true);
	int rid = next_id++;
	Settle__V1__CmdResult *r =
	    tfsm_res(&F, ent_retry(rid, now++, "g", 1, "first"));
	cr_assert_eq(r->code, CODE(OK));
	uint64_t first_index = r->index;
	settle__v1__cmd_result__free_unpacked(r, NULL);
	/* The retried call fails again... */
	tcc_result(&F, "g", 1, true, R_FAIL, "closed again", 0);
	size_t events = n_events("g");
	/* ...and the operator's request delivered again (a lost reply, a
	 * new leader) answers as the first time without acting again. */
	r = tfsm_res(&F, ent_retry(rid, now++, "g", 1, "first"));
	cr_expect_eq(r->code, CODE(OK));
	cr_expect_eq(r->count, 1);
	cr_expect_eq(r->index, first_index);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(branch_state("g", 1), ST(FAILED));
	cr_expect_eq(n_events("g"), events);

	int sid = next_id++;
	r = tfsm_res(&F, ent_resolve(sid, now++, "g", 1, "by hand"));
	cr_assert_eq(r->code, CODE(OK));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	events = n_events("g");
	r = tfsm_res(&F, ent_resolve(sid, now++, "g", 1, "by hand"));
	cr_expect_eq(r->code, CODE(OK), "the stored answer, not WRONG_STATE");
	cr_expect_eq(r->branch_state, ST(CONFIRMED));
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(n_events("g"), events);
}

/* Every verb on every kind, applied to t from a fresh id/time sequence. */
static void workload(struct tfsm *t)
{
	next_id = 1;
	now = 1000;
	tcc_stuck(t, "c1", true);
	cr_assert_eq(tfsm_code(t, ent_retry(next_id++, now++, "c1", 0, "r")),
		     CODE(OK));
	tcc_result(t, "c1", 1, true, R_OK, "", 0);
	tcc_stuck(t, "c2", true);
	cr_assert_eq(tfsm_code(t, ent_resolve(next_id++, now++, "c2", 1, "h")),
		     CODE(OK));
	tcc_stuck(t, "r1", false);
	cr_assert_eq(tfsm_code(t, ent_resolve(next_id++, now++, "r1", 1, "h")),
		     CODE(OK));
	saga_stuck(t, "s1");
	cr_assert_eq(tfsm_code(t, ent_retry(next_id++, now++, "s1", 2, "r")),
		     CODE(OK));
	saga_stuck(t, "s2");
	cr_assert_eq(tfsm_code(t, ent_resolve(next_id++, now++, "s2", 2, "h")),
		     CODE(OK));
	step(t, "s2", 1, COMP, R_OK, "", 0);
	/* Refusals are stored too (under their cmd_id). */
	cr_assert_eq(tfsm_code(t, ent_resolve(next_id++, now++, "s2", 2, "h")),
		     CODE(WRONG_STATE));
	cr_assert_eq(tfsm_code(t, ent_retry(next_id++, now++, "zz", 0, "")),
		     CODE(NOT_FOUND));
}

Test(operator, same_commands_give_identical_snapshots)
{
	struct tfsm g;
	tfsm_open(&g);
	workload(&F);
	workload(&g);
	cr_expect_eq(tx_state("c1"), TX(COMMITTED));
	cr_expect_eq(tx_state("c2"), TX(COMMITTED));
	cr_expect_eq(tx_state("r1"), TX(ROLLED_BACK));
	cr_expect_eq(tx_state("s1"), TX(SAGA_COMPENSATING));
	cr_expect_eq(tx_state("s2"), TX(SAGA_COMPENSATED));
	uint8_t *sa, *sb;
	size_t la, lb;
	tfsm_snapshot(&F, &sa, &la);
	tfsm_snapshot(&g, &sb, &lb);
	cr_assert_eq(la, lb);
	cr_expect_eq(memcmp(sa, sb, la), 0);
	raft_free(sa);
	raft_free(sb);
	cr_expect_eq(F.index, g.index);
	tfsm_check_indexes(&F);
	tfsm_check_indexes(&g);
	tfsm_close(&g);
}

/* The Saga commands of the FSM (wal/saga.c): validation, ordered and DAG
 * sagas, compensation order, retries, forward recovery, late results,
 * determinism. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "error.h"
#include "fsm_helpers.h"
#include "wal/saga.h"
#include "wal/sm.h"

#define C_OK	  SETTLE__V1__CODE__OK
#define R_OK	  SETTLE__V1__OUTCOME__OUTCOME_OK
#define R_RETRY	  SETTLE__V1__OUTCOME__OUTCOME_RETRY
#define R_FAIL	  SETTLE__V1__OUTCOME__OUTCOME_FAILURE
#define ACT	  SETTLE__V1__SAGA_PHASE__PHASE_ACTION
#define COMP	  SETTLE__V1__SAGA_PHASE__PHASE_COMPENSATE
#define BACKWARD  SETTLE__V1__SAGA_RECOVERY__BACKWARD
#define FORWARD	  SETTLE__V1__SAGA_RECOVERY__FORWARD
#define DEADLINE  100000
#define MAX_STEPS 1100

static struct tfsm F;
static int next_id;  /* command ids */
static uint64_t now; /* leader time of the next command */
static int max_att;  /* max_attempts of the steps begun next */

static void setup(void)
{
	tfsm_open(&F);
	next_id = 1;
	now = 1000;
	max_att = 0;
}

static void teardown(void)
{
	tfsm_close(&F);
}

TestSuite(saga, .init = setup, .fini = teardown);

/* Steps of a saga: deps[i] is "" (root / ordered) or "0,2" (indexes). */
struct spec {
	Settle__V1__SagaStep st[MAX_STEPS];
	Settle__V1__SagaStep *p[MAX_STEPS];
	uint32_t deps[MAX_STEPS][8];
	char names[MAX_STEPS][16];
};

static struct spec *spec_new(size_t n, const char *const *deps)
{
	struct spec *s = calloc(1, sizeof *s);
	cr_assert_not_null(s);
	for (size_t i = 0; i < n; i++) {
		Settle__V1__SagaStep *st = &s->st[i];
		settle__v1__saga_step__init(st);
		snprintf(s->names[i], sizeof s->names[i], "s%zu", i);
		st->name = s->names[i];
		st->endpoint = "h:1";
		st->action_payload.data = (uint8_t *)"SECRET-ACT";
		st->action_payload.len = 10;
		st->compensate_payload.data = (uint8_t *)"SECRET-COMP";
		st->compensate_payload.len = 11;
		st->max_attempts = (uint32_t)max_att;
		if (deps != NULL && deps[i] != NULL) {
			const char *c = deps[i];
			while (*c != 0) {
				s->deps[i][st->n_depends_on++] =
				    (uint32_t)strtoul(c, (char **)&c, 10);
				if (*c == ',')
					c++;
			}
			st->depends_on = s->deps[i];
		}
		s->p[i] = st;
	}
	return s;
}

static struct ent saga_ent(const char *gid, int recovery, bool dag,
			   struct spec *s, size_t n)
{
	Settle__V1__Command c;
	settle__v1__command__init(&c);
	uint8_t idb[16];
	int id = next_id++;
	memset(idb, 0x22, sizeof idb);
	memcpy(idb, &id, sizeof id);
	c.cmd_id.data = idb;
	c.cmd_id.len = 16;
	c.time_ms = now++;
	Settle__V1__CmdSagaBegin b;
	settle__v1__cmd_saga_begin__init(&b);
	b.gid = (char *)gid;
	b.deadline_ms = DEADLINE;
	b.recovery = recovery;
	b.dag = dag;
	b.n_steps = n;
	b.steps = s->p;
	c.op_case = SETTLE__V1__COMMAND__OP_SAGA_BEGIN;
	c.saga_begin = &b;
	return ent_cmd(&c);
}

/* Begin a saga of n steps; returns the result code. */
static int begin(const char *gid, int recovery, bool dag, size_t n,
		 const char *const *deps)
{
	struct spec *s = spec_new(n, deps);
	int code = tfsm_code(&F, saga_ent(gid, recovery, dag, s, n));
	free(s);
	return code;
}

static struct ent result_ent(const char *gid, uint32_t step, int phase,
			     int outcome, const char *err, uint64_t next_retry)
{
	return ent_step_result(next_id++, now++, gid, step, phase, outcome, err,
			       next_retry);
}

/* Report one call's outcome (1-based step); asserts OK. */
static void res(const char *gid, uint32_t step, int phase, int outcome,
		const char *err)
{
	cr_assert_eq(
	    tfsm_code(&F, result_ent(gid, step, phase, outcome, err, 0)), C_OK,
	    "result of step %u", step);
}

static Settle__V1__TxRecord *tx_of(const char *gid)
{
	Settle__V1__TxRecord *tx;
	cr_assert_eq(store_tx_get(F.t.s, NULL, gid, &tx), 0, "tx %s", gid);
	return tx;
}

static Settle__V1__BranchRecord *step_of(const char *gid, uint32_t id)
{
	Settle__V1__BranchRecord *b;
	cr_assert_eq(store_branch_get(F.t.s, NULL, gid, id, &b), 0);
	return b;
}

/* The states of the steps, "DONE ACTING PENDING" (without "STEP_"). */
static void states(const char *gid, char *out, size_t len)
{
	Settle__V1__BranchRecord **b;
	size_t n;
	cr_assert_eq(store_branches_list(F.t.s, NULL, gid, &b, &n), 0);
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		const char *name = wal_branch_state_name(b[i]->state);
		if (strncmp(name, "STEP_", 5) == 0)
			name += 5;
		size_t used = strlen(out);
		snprintf(out + used, len - used, "%s%s", i ? " " : "", name);
	}
	store_branches_free(b, n);
}

#define EXPECT_STATES(gid, want)                                               \
	do {                                                                   \
		char got_[512];                                                \
		states(gid, got_, sizeof got_);                                \
		cr_expect_str_eq(got_, want);                                  \
	} while (0)

static int tx_state(const char *gid)
{
	Settle__V1__TxRecord *tx = tx_of(gid);
	int st = tx->state;
	settle__v1__tx_record__free_unpacked(tx, NULL);
	return st;
}

/* All events of gid as "kind/branch/detail;". */
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

/* ------------------------------------------------------------------ */
/* Validation */

static int validate(bool dag, size_t n, const char *const *deps, char *msg)
{
	struct spec *s = spec_new(n, deps);
	int rv = wal_saga_steps_validate(s->p, n, dag, msg, 256);
	free(s);
	return rv;
}

Test(saga, validation_refuses_bad_shapes)
{
	char msg[256];
	cr_expect_eq(validate(false, 0, NULL, msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "at least one step") != NULL);
	cr_expect_eq(validate(false, WAL_MAX_BRANCHES + 1, NULL, msg),
		     SETTLE_ETOOBIG);
	cr_expect_eq(validate(false, WAL_MAX_BRANCHES, NULL, msg), 0);

	const char *fwd[] = {"1", ""};
	cr_expect_eq(validate(true, 2, fwd, msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "earlier step") != NULL, "%s", msg);
	const char *self[] = {"", "1"};
	cr_expect_eq(validate(true, 2, self, msg), SETTLE_EINVAL);
	/* A cycle needs a dependency on a later step: refused. */
	const char *cycle[] = {"", "2", "1"};
	cr_expect_eq(validate(true, 3, cycle, msg), SETTLE_EINVAL);
	const char *dup[] = {"", "0,0"};
	cr_expect_eq(validate(true, 2, dup, msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "twice") != NULL);
	const char *ordered_deps[] = {"", "0"};
	cr_expect_eq(validate(false, 2, ordered_deps, msg), SETTLE_EINVAL);
	cr_expect(strstr(msg, "dag") != NULL);
	const char *fine[] = {"", "0", "0", "1,2"};
	cr_expect_eq(validate(true, 4, fine, msg), 0);

	struct spec *s = spec_new(2, NULL);
	s->st[1].endpoint = "nohost";
	cr_expect_eq(wal_saga_steps_validate(s->p, 2, false, msg, sizeof msg),
		     SETTLE_EINVAL);
	cr_expect(strstr(msg, "step 1: endpoint") != NULL, "%s", msg);
	s->st[1].endpoint = "h:1";
	s->st[1].retry_base_ms = 500;
	s->st[1].retry_max_ms = 100;
	cr_expect_eq(wal_saga_steps_validate(s->p, 2, false, msg, sizeof msg),
		     SETTLE_EINVAL);
	s->st[1].retry_max_ms = 0;
	static uint8_t big[WAL_PAYLOAD_MAX / 2 + 1];
	s->st[0].action_payload.data = big;
	s->st[0].action_payload.len = sizeof big;
	s->st[1].compensate_payload.data = big;
	s->st[1].compensate_payload.len = sizeof big;
	cr_expect_eq(wal_saga_steps_validate(s->p, 2, false, msg, sizeof msg),
		     SETTLE_ETOOBIG);
	cr_expect(strstr(msg, "payloads") != NULL);
	free(s);
}

Test(saga, invalid_commands_are_rejected_noops)
{
	cr_expect_eq(begin("g", BACKWARD, false, 0, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	const char *cycle[] = {"1", "0"};
	cr_expect_eq(begin("g", BACKWARD, true, 2, cycle),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_eq(begin("g", 7, false, 1, NULL),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	Settle__V1__TxRecord *tx;
	cr_expect_eq(store_tx_get(F.t.s, NULL, "g", &tx), SETTLE_ENOTFOUND);
	cr_expect_eq(tfsm_code(&F, result_ent("g", 0, ACT, R_OK, "", 0)),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_eq(tfsm_code(&F, result_ent("g", 1, 9, R_OK, "", 0)),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_eq(tfsm_code(&F, result_ent("g", 1, ACT, R_OK, "", 0)),
		     SETTLE__V1__CODE__NOT_FOUND);
	cr_expect_eq(begin("g", BACKWARD, false, 2, NULL), C_OK);
	cr_expect_eq(begin("g", BACKWARD, false, 2, NULL),
		     SETTLE__V1__CODE__ALREADY_EXISTS);
	cr_expect_eq(tfsm_code(&F, result_ent("g", 3, ACT, R_OK, "", 0)),
		     SETTLE__V1__CODE__NOT_FOUND);
	/* TCC commands do not apply to a saga. */
	cr_expect_eq(
	    tfsm_code(&F, ent_register(next_id++, now++, "g", "h:1", "r", "P")),
	    SETTLE__V1__CODE__WRONG_STATE);
	cr_expect_eq(
	    tfsm_code(&F,
		      ent_decide(next_id++, now++, "g",
				 SETTLE__V1__DECISION__DECIDE_COMMIT, "", 0)),
	    SETTLE__V1__CODE__WRONG_STATE);
	/* Saga results do not apply to a TCC transaction. */
	cr_expect_eq(tfsm_code(&F, ent_begin(next_id++, now++, "t", DEADLINE)),
		     C_OK);
	cr_expect_eq(tfsm_code(&F, result_ent("t", 1, ACT, R_OK, "", 0)),
		     SETTLE__V1__CODE__WRONG_STATE);
	tfsm_check_indexes(&F);
}

/* ------------------------------------------------------------------ */
/* Ordered sagas */

Test(saga, ordered_success)
{
	cr_assert_eq(begin("g", BACKWARD, false, 3, NULL), C_OK);
	Settle__V1__TxRecord *tx = tx_of("g");
	cr_expect_eq(tx->mode, SETTLE__V1__TX_MODE__SAGA);
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__SAGA_RUNNING);
	cr_expect_eq(tx->due_ms, 1000); /* step 1 due at once */
	cr_expect_eq(tx->pending, 1);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	EXPECT_STATES("g", "ACTING PENDING PENDING");
	Settle__V1__BranchRecord *b = step_of("g", 2);
	cr_expect_eq(b->n_depends_on, 1);
	cr_expect_eq(b->depends_on[0], 1);
	cr_expect_str_eq(b->name, "s1");
	cr_expect_eq(b->compensate_payload.len, 11);
	settle__v1__branch_record__free_unpacked(b, NULL);

	/* A result for a step not started yet is ignored. */
	res("g", 2, ACT, R_OK, "");
	EXPECT_STATES("g", "ACTING PENDING PENDING");
	res("g", 1, ACT, R_OK, "");
	EXPECT_STATES("g", "DONE ACTING PENDING");
	tx = tx_of("g");
	cr_expect_eq(tx->due_ms, now - 1); /* step 2 due when 1 ended */
	settle__v1__tx_record__free_unpacked(tx, NULL);
	res("g", 2, ACT, R_OK, "");
	res("g", 3, ACT, R_OK, "");
	EXPECT_STATES("g", "DONE DONE DONE");
	tx = tx_of("g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__SAGA_SUCCEEDED);
	cr_expect_eq(tx->due_ms, 0);
	cr_expect_neq(tx->finished_ms, 0);
	cr_expect_eq(tx->pending, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	b = step_of("g", 3);
	cr_expect_eq(b->completion, 3);
	settle__v1__branch_record__free_unpacked(b, NULL);
	char h[2048];
	history("g", h, sizeof h);
	cr_expect_str_eq(h, "saga/0/3 steps, ordered, backward recovery, "
			    "deadline 100000;action/1/ok attempt 1;"
			    "action/2/ok attempt 1;action/3/ok attempt 1;"
			    "succeeded/0/finished;");
	cr_expect(strstr(h, "SECRET") == NULL);
	tfsm_check_indexes(&F);
}

/* The step (1-based) being compensated, 0 if none; asserts at most one. */
static uint32_t compensating(const char *gid)
{
	Settle__V1__BranchRecord **b;
	size_t n;
	uint32_t which = 0;
	cr_assert_eq(store_branches_list(F.t.s, NULL, gid, &b, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (b[i]->state ==
		    SETTLE__V1__BRANCH_STATE__STEP_COMPENSATING) {
			cr_assert_eq(which, 0, "two compensations at once");
			which = b[i]->branch_id;
		}
	store_branches_free(b, n);
	return which;
}

Test(saga, failure_at_each_position_compensates_in_reverse)
{
	const int n = 4;
	for (int k = 0; k < n; k++) {
		char gid[16];
		snprintf(gid, sizeof gid, "g%d", k);
		cr_assert_eq(begin(gid, BACKWARD, false, (size_t)n, NULL),
			     C_OK);
		for (int i = 0; i < k; i++)
			res(gid, (uint32_t)i + 1, ACT, R_OK, "");
		res(gid, (uint32_t)k + 1, ACT, R_FAIL, "insufficient funds");
		Settle__V1__TxRecord *tx = tx_of(gid);
		cr_expect_eq(tx->state,
			     SETTLE__V1__TX_STATE__SAGA_COMPENSATING);
		cr_expect(strstr(tx->reason, "insufficient funds") != NULL);
		cr_expect_eq(tx->due_ms, now - 1);
		settle__v1__tx_record__free_unpacked(tx, NULL);
		/* The failed step first (a null compensation at its
		 * barrier), then the others backwards. */
		for (int i = k; i >= 0; i--) {
			cr_expect_eq(compensating(gid), (uint32_t)i + 1,
				     "failure at %d", k);
			res(gid, (uint32_t)i + 1, COMP, R_OK, "");
		}
		cr_expect_eq(compensating(gid), 0);
		cr_expect_eq(tx_state(gid),
			     SETTLE__V1__TX_STATE__SAGA_COMPENSATED);
		char want[128] = "";
		for (int i = 0; i < n; i++)
			strcat(want,
			       i > k ? (i ? " SKIPPED" : "SKIPPED")
				     : (i ? " COMPENSATED" : "COMPENSATED"));
		EXPECT_STATES(gid, want);
		Settle__V1__BranchRecord *b = step_of(gid, (uint32_t)k + 1);
		/* The participant's error stays for Query. */
		cr_expect_str_eq(b->last_error, "insufficient funds");
		settle__v1__branch_record__free_unpacked(b, NULL);
	}
	char h[4096];
	history("g2", h, sizeof h);
	cr_expect(strstr(h,
			 "action/3/failure: insufficient funds;"
			 "compensating/0/step 3 (s2) failed: "
			 "insufficient funds;"
			 "compensate/3/ok attempt 1;compensate/2/ok attempt "
			 "1;compensate/1/ok attempt 1;compensated/0/") != NULL,
		  "%s", h);
	tfsm_check_indexes(&F);
}

/* ------------------------------------------------------------------ */
/* DAG sagas */

/*   0 -> {1, 2} -> 3 */
static const char *const diamond[] = {"", "0", "0", "1,2"};

Test(saga, dag_runs_branches_concurrently_and_joins)
{
	cr_assert_eq(begin("d", BACKWARD, true, 4, diamond), C_OK);
	EXPECT_STATES("d", "ACTING PENDING PENDING PENDING");
	res("d", 1, ACT, R_OK, "");
	EXPECT_STATES("d", "DONE ACTING ACTING PENDING");
	Settle__V1__TxRecord *tx = tx_of("d");
	cr_expect_eq(tx->pending, 2);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	res("d", 3, ACT, R_OK, "");
	EXPECT_STATES("d", "DONE ACTING DONE PENDING");
	res("d", 2, ACT, R_OK, "");
	EXPECT_STATES("d", "DONE DONE DONE ACTING");
	res("d", 4, ACT, R_OK, "");
	cr_expect_eq(tx_state("d"), SETTLE__V1__TX_STATE__SAGA_SUCCEEDED);
}

Test(saga, dag_failure_awaits_the_sibling_in_flight)
{
	cr_assert_eq(begin("d", BACKWARD, true, 4, diamond), C_OK);
	res("d", 1, ACT, R_OK, "");
	res("d", 2, ACT, R_FAIL, "out of stock");
	/* Step 3 may be running: nothing is compensated until it ends. */
	EXPECT_STATES("d", "DONE ACTION_FAILED ACTING PENDING");
	cr_expect_eq(compensating("d"), 0);
	Settle__V1__TxRecord *tx = tx_of("d");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__SAGA_COMPENSATING);
	cr_expect_eq(tx->due_ms, now - 1); /* the driver must settle step 3 */
	settle__v1__tx_record__free_unpacked(tx, NULL);
	/* Step 3's call answers OK: it ended after step 2, so it is
	 * compensated first. */
	res("d", 3, ACT, R_OK, "");
	cr_expect_eq(compensating("d"), 3);
	res("d", 3, COMP, R_OK, "");
	cr_expect_eq(compensating("d"), 2);
	res("d", 2, COMP, R_OK, "");
	cr_expect_eq(compensating("d"), 1);
	res("d", 1, COMP, R_OK, "");
	EXPECT_STATES("d", "COMPENSATED COMPENSATED COMPENSATED SKIPPED");
	cr_expect_eq(tx_state("d"), SETTLE__V1__TX_STATE__SAGA_COMPENSATED);
	tfsm_check_indexes(&F);
}

Test(saga, dag_sibling_never_called_is_cut_short)
{
	cr_assert_eq(begin("d", BACKWARD, true, 4, diamond), C_OK);
	res("d", 1, ACT, R_OK, "");
	res("d", 3, ACT, R_OK, "");
	res("d", 2, ACT, R_FAIL, "no");
	/* Already compensating: 2 (ordinal 3), then 3, then 1. */
	cr_expect_eq(compensating("d"), 2);
	res("d", 2, COMP, R_OK, "");
	cr_expect_eq(compensating("d"), 3);
	res("d", 3, COMP, R_OK, "");
	cr_expect_eq(compensating("d"), 1);
	res("d", 1, COMP, R_OK, "");
	cr_expect_eq(tx_state("d"), SETTLE__V1__TX_STATE__SAGA_COMPENSATED);

	/* With a sibling the driver never called: it reports "not called"
	 * (RETRY), the step counts as ended and is compensated (a null
	 * compensation at the participant's barrier). */
	cr_assert_eq(begin("e", BACKWARD, true, 4, diamond), C_OK);
	res("e", 1, ACT, R_OK, "");
	res("e", 2, ACT, R_FAIL, "no");
	res("e", 3, ACT, R_RETRY, "not called");
	EXPECT_STATES("e", "DONE ACTION_FAILED COMPENSATING PENDING");
	cr_expect_eq(compensating("e"), 3);
}

/* ------------------------------------------------------------------ */
/* Retries */

Test(saga, retries_until_max_attempts_then_compensates)
{
	max_att = 3;
	cr_assert_eq(begin("r", BACKWARD, false, 2, NULL), C_OK);
	res("r", 1, ACT, R_OK, "");
	cr_assert_eq(
	    tfsm_code(&F, result_ent("r", 2, ACT, R_RETRY, "busy", 5000)),
	    C_OK);
	Settle__V1__TxRecord *tx = tx_of("r");
	cr_expect_eq(tx->due_ms, 5000);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	Settle__V1__BranchRecord *b = step_of("r", 2);
	cr_expect_eq(b->attempts, 1);
	cr_expect_eq(b->next_retry_ms, 5000);
	cr_expect_str_eq(b->last_error, "busy");
	cr_expect_eq(b->state, SETTLE__V1__BRANCH_STATE__STEP_ACTING);
	settle__v1__branch_record__free_unpacked(b, NULL);
	/* A retry after the deadline: due is the deadline. */
	cr_assert_eq(tfsm_code(&F, result_ent("r", 2, ACT, R_RETRY, "busy",
					      DEADLINE + 5)),
		     C_OK);
	tx = tx_of("r");
	cr_expect_eq(tx->due_ms, DEADLINE);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	res("r", 2, ACT, R_RETRY, "busy");
	b = step_of("r", 2);
	/* Gave up: ended, and as the last one to end, compensated first. */
	cr_expect_eq(b->state, SETTLE__V1__BRANCH_STATE__STEP_COMPENSATING);
	cr_expect_eq(b->completion, 2);
	cr_expect_str_eq(b->last_error, "gave up after 3 attempts: busy");
	settle__v1__branch_record__free_unpacked(b, NULL);
	cr_expect_eq(compensating("r"), 2);
	/* Compensations retry for ever. */
	for (int i = 0; i < 10; i++)
		cr_assert_eq(tfsm_code(&F, result_ent("r", 2, COMP, R_RETRY,
						      "down", 7000 + i)),
			     C_OK);
	tx = tx_of("r");
	cr_expect_eq(tx->due_ms, 7009);
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__SAGA_COMPENSATING);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	b = step_of("r", 2);
	cr_expect_eq(b->attempts, 10);
	settle__v1__branch_record__free_unpacked(b, NULL);
	res("r", 2, COMP, R_OK, "");
	res("r", 1, COMP, R_OK, "");
	cr_expect_eq(tx_state("r"), SETTLE__V1__TX_STATE__SAGA_COMPENSATED);
}

Test(saga, compensation_failure_leaves_the_saga_stuck)
{
	cr_assert_eq(begin("s", BACKWARD, false, 3, NULL), C_OK);
	res("s", 1, ACT, R_OK, "");
	res("s", 2, ACT, R_OK, "");
	res("s", 3, ACT, R_FAIL, "rejected");
	res("s", 3, COMP, R_OK, "");
	res("s", 2, COMP, R_FAIL, "account closed");
	Settle__V1__TxRecord *tx = tx_of("s");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__SAGA_COMPENSATING);
	cr_expect_eq(tx->failed, 1);
	cr_expect_eq(tx->due_ms, 0);
	cr_expect_eq(tx->finished_ms, 0);
	cr_expect_str_eq(tx->reason,
			 "step 2 (s1) compensation failed: account closed");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	/* Step 1 is not compensated before step 2: the order holds. */
	EXPECT_STATES("s", "DONE FAILED COMPENSATED");
	tfsm_check_indexes(&F);
}

/* ------------------------------------------------------------------ */
/* Forward recovery, deadline */

Test(saga, forward_recovery_retries_failures_for_ever)
{
	max_att = 2;
	cr_assert_eq(begin("f", FORWARD, false, 2, NULL), C_OK);
	Settle__V1__TxRecord *tx = tx_of("f");
	cr_expect_eq(tx->due_ms, 1000); /* no deadline in due */
	settle__v1__tx_record__free_unpacked(tx, NULL);
	res("f", 1, ACT, R_OK, "");
	for (int i = 0; i < 6; i++)
		res("f", 2, ACT, i % 2 ? R_RETRY : R_FAIL, "carrier down");
	Settle__V1__BranchRecord *b = step_of("f", 2);
	cr_expect_eq(b->state, SETTLE__V1__BRANCH_STATE__STEP_ACTING);
	cr_expect_eq(b->attempts, 6);
	cr_expect_str_eq(b->last_error, "carrier down");
	settle__v1__branch_record__free_unpacked(b, NULL);
	/* No timeout rollback for a forward saga. */
	now = DEADLINE + 10;
	cr_expect_eq(
	    tfsm_code(&F,
		      ent_decide(next_id++, now++, "f",
				 SETTLE__V1__DECISION__DECIDE_ROLLBACK, "", 1)),
	    SETTLE__V1__CODE__WRONG_STATE);
	res("f", 2, ACT, R_OK, "");
	cr_expect_eq(tx_state("f"), SETTLE__V1__TX_STATE__SAGA_SUCCEEDED);
	char h[4096];
	history("f", h, sizeof h);
	cr_expect(strstr(h, "action/2/failure, retried (forward recovery) "
			    "attempt 1: carrier down;") != NULL,
		  "%s", h);
}

Test(saga, deadline_starts_compensation)
{
	cr_assert_eq(begin("t", BACKWARD, false, 3, NULL), C_OK);
	res("t", 1, ACT, R_OK, "");
	cr_expect_eq(
	    tfsm_code(&F,
		      ent_decide(next_id++, now++, "t",
				 SETTLE__V1__DECISION__DECIDE_ROLLBACK, "", 1)),
	    SETTLE__V1__CODE__WRONG_STATE);
	now = DEADLINE;
	cr_expect_eq(
	    tfsm_code(&F,
		      ent_decide(next_id++, now++, "t",
				 SETTLE__V1__DECISION__DECIDE_ROLLBACK, "", 1)),
	    C_OK);
	Settle__V1__TxRecord *tx = tx_of("t");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__SAGA_COMPENSATING);
	cr_expect_str_eq(tx->reason, "deadline");
	cr_expect_eq(tx->due_ms, DEADLINE);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	/* Repeated: OK, nothing changes. */
	cr_expect_eq(
	    tfsm_code(&F,
		      ent_decide(next_id++, now++, "t",
				 SETTLE__V1__DECISION__DECIDE_ROLLBACK, "", 1)),
	    C_OK);
	EXPECT_STATES("t", "DONE ACTING PENDING");
	res("t", 2, ACT, R_RETRY, "not called");
	cr_expect_eq(compensating("t"), 2);
	res("t", 2, COMP, R_OK, "");
	res("t", 1, COMP, R_OK, "");
	EXPECT_STATES("t", "COMPENSATED COMPENSATED SKIPPED");
	cr_expect_eq(tx_state("t"), SETTLE__V1__TX_STATE__SAGA_COMPENSATED);
	tfsm_check_indexes(&F);
}

/* ------------------------------------------------------------------ */
/* Early calls (feature level 9, wal/saga.h) */

static void set_level(uint32_t level)
{
	cr_assert_eq(tfsm_code(&F, ent_features(next_id++, now++, level)),
		     C_OK);
	cr_assert_eq(fsm_level(&F.f), level);
}

static void roll_back(const char *gid)
{
	now = DEADLINE;
	cr_assert_eq(
	    tfsm_code(&F,
		      ent_decide(next_id++, now++, gid,
				 SETTLE__V1__DECISION__DECIDE_ROLLBACK, "", 1)),
	    C_OK);
}

/* Step 2 was called as soon as step 1 answered, and acted; step 1's
 * result never made it into the log (its leader died). The deadline
 * rolls the saga back: step 2 must be awaited and compensated, before
 * step 1 although it ended first. */
Test(saga, early_step_is_awaited_and_compensated_before_its_dependency)
{
	set_level(FSM_LEVEL_SAGA_EARLY);
	cr_assert_eq(begin("e", BACKWARD, false, 3, NULL), C_OK);
	/* A result for a step still PENDING is ignored. */
	res("e", 2, ACT, R_OK, "");
	EXPECT_STATES("e", "ACTING PENDING PENDING");
	roll_back("e");
	EXPECT_STATES("e", "ACTING ACTING PENDING");
	char h[4096];
	history("e", h, sizeof h);
	cr_expect(strstr(h, "action/2/awaited: may have been called early;") !=
		      NULL,
		  "%s", h);
	cr_expect(strstr(h, "action/3/awaited") == NULL, "%s", h);
	res("e", 2, ACT, R_OK, ""); /* the early call's own answer */
	cr_expect_eq(compensating("e"), 0, "step 1 is still awaited");
	res("e", 1, ACT, R_OK, "");
	Settle__V1__BranchRecord *b1 = step_of("e", 1), *b2 = step_of("e", 2);
	cr_expect_lt(b2->completion, b1->completion);
	settle__v1__branch_record__free_unpacked(b1, NULL);
	settle__v1__branch_record__free_unpacked(b2, NULL);
	cr_expect_eq(compensating("e"), 2, "the dependent step first");
	res("e", 2, COMP, R_OK, "");
	cr_expect_eq(compensating("e"), 1);
	res("e", 1, COMP, R_OK, "");
	EXPECT_STATES("e", "COMPENSATED COMPENSATED SKIPPED");
	cr_expect_eq(tx_state("e"), SETTLE__V1__TX_STATE__SAGA_COMPENSATED);
	tfsm_check_indexes(&F);
}

/* An early step that was never called is reported "not called" and gets
 * a null compensation; a step behind a failed one is not awaited. */
Test(saga, early_step_never_called_and_failure_paths)
{
	set_level(FSM_LEVEL_SAGA_EARLY);
	cr_assert_eq(begin("n", BACKWARD, false, 3, NULL), C_OK);
	res("n", 1, ACT, R_OK, "");
	res("n", 2, ACT, R_FAIL, "no");
	/* Step 3 waited for a failed step: never callable, skipped. */
	EXPECT_STATES("n", "DONE COMPENSATING PENDING");
	res("n", 2, COMP, R_OK, "");
	res("n", 1, COMP, R_OK, "");
	EXPECT_STATES("n", "COMPENSATED COMPENSATED SKIPPED");

	cr_assert_eq(begin("m", BACKWARD, false, 3, NULL), C_OK);
	roll_back("m");
	EXPECT_STATES("m", "ACTING ACTING PENDING");
	res("m", 2, ACT, R_RETRY, "not called");
	res("m", 1, ACT, R_RETRY, "not called");
	cr_expect_eq(compensating("m"), 2);
	res("m", 2, COMP, R_OK, "");
	res("m", 1, COMP, R_OK, "");
	EXPECT_STATES("m", "COMPENSATED COMPENSATED SKIPPED");
	tfsm_check_indexes(&F);
}

/* Step 1 answered OK to a leader that died before recording it (which
 * then called step 2); the next leader's calls time out until step 1 is
 * given up: step 2 may have acted and is awaited too. */
Test(saga, early_step_behind_a_given_up_step_is_awaited)
{
	set_level(FSM_LEVEL_SAGA_EARLY);
	max_att = 2;
	cr_assert_eq(begin("g", BACKWARD, false, 3, NULL), C_OK);
	res("g", 1, ACT, R_RETRY, "timeout");
	EXPECT_STATES("g", "ACTING PENDING PENDING");
	res("g", 1, ACT, R_RETRY, "timeout");
	EXPECT_STATES("g", "ACTION_FAILED ACTING PENDING");
	cr_expect_eq(tx_state("g"), SETTLE__V1__TX_STATE__SAGA_COMPENSATING);
	res("g", 2, ACT, R_OK, "");
	cr_expect_eq(compensating("g"), 2);
	res("g", 2, COMP, R_OK, "");
	res("g", 1, COMP, R_OK, "");
	EXPECT_STATES("g", "COMPENSATED COMPENSATED SKIPPED");
	tfsm_check_indexes(&F);
}

/* DAG: a join whose dependencies are DONE and ACTING is awaited; a step
 * behind the join is not. */
Test(saga, early_dag_join_is_awaited)
{
	static const char *const deps[] = {"", "", "0,1", "2"};
	set_level(FSM_LEVEL_SAGA_EARLY);
	cr_assert_eq(begin("d", BACKWARD, true, 4, deps), C_OK);
	res("d", 1, ACT, R_OK, "");
	roll_back("d");
	EXPECT_STATES("d", "DONE ACTING ACTING PENDING");
	res("d", 3, ACT, R_OK, "");
	res("d", 2, ACT, R_OK, "");
	cr_expect_eq(compensating("d"), 3);
	res("d", 3, COMP, R_OK, "");
	/* 1 and 2 are both free now: highest ordinal first (2 ended last). */
	cr_expect_eq(compensating("d"), 2);
	res("d", 2, COMP, R_OK, "");
	res("d", 1, COMP, R_OK, "");
	EXPECT_STATES("d", "COMPENSATED COMPENSATED COMPENSATED SKIPPED");
	tfsm_check_indexes(&F);
}

/* Level 10: steps called early behind steps called early, up to
 * WAL_SAGA_EARLY_DEPTH PENDING steps ahead of the ACTING one, are
 * awaited; the steps past that depth are not, and are skipped. Each is
 * compensated after the steps that depend on it. */
Test(saga, deep_early_steps_are_awaited_up_to_the_depth)
{
	cr_assert_eq(WAL_SAGA_EARLY_DEPTH, 4);
	set_level(FSM_LEVEL_SAGA_DEEP);
	cr_assert_eq(begin("p", BACKWARD, false, 7, NULL), C_OK);
	roll_back("p");
	EXPECT_STATES("p",
		      "ACTING ACTING ACTING ACTING ACTING PENDING PENDING");
	char h[8192];
	history("p", h, sizeof h);
	cr_expect(strstr(h, "action/5/awaited: may have been called early;") !=
		      NULL,
		  "%s", h);
	cr_expect(strstr(h, "action/6/awaited") == NULL, "%s", h);
	/* The early calls' own answers, in any order; step 5's never went. */
	res("p", 3, ACT, R_OK, "");
	res("p", 5, ACT, R_RETRY, "not called");
	res("p", 4, ACT, R_OK, "");
	res("p", 2, ACT, R_OK, "");
	cr_expect_eq(compensating("p"), 0, "step 1 is still awaited");
	res("p", 1, ACT, R_OK, "");
	for (uint32_t k = 5; k >= 1; k--) {
		cr_expect_eq(compensating("p"), k, "the dependent step first");
		res("p", k, COMP, R_OK, "");
	}
	EXPECT_STATES("p", "COMPENSATED COMPENSATED COMPENSATED COMPENSATED "
			   "COMPENSATED SKIPPED SKIPPED");
	cr_expect_eq(tx_state("p"), SETTLE__V1__TX_STATE__SAGA_COMPENSATED);
	tfsm_check_indexes(&F);
}

/* Level 10: behind a step given up after max_attempts (it may have
 * answered OK to an earlier leader, which called on early), the chain is
 * awaited too; behind a step that failed, nothing is. */
Test(saga, deep_early_steps_behind_a_given_up_or_failed_step)
{
	set_level(FSM_LEVEL_SAGA_DEEP);
	max_att = 2;
	cr_assert_eq(begin("g", BACKWARD, false, 3, NULL), C_OK);
	res("g", 1, ACT, R_RETRY, "timeout");
	res("g", 1, ACT, R_RETRY, "timeout");
	EXPECT_STATES("g", "ACTION_FAILED ACTING ACTING");
	res("g", 3, ACT, R_OK, "");
	res("g", 2, ACT, R_RETRY, "not called");
	cr_expect_eq(compensating("g"), 3);
	res("g", 3, COMP, R_OK, "");
	cr_expect_eq(compensating("g"), 2);
	res("g", 2, COMP, R_OK, "");
	res("g", 1, COMP, R_OK, "");
	EXPECT_STATES("g", "COMPENSATED COMPENSATED COMPENSATED");

	cr_assert_eq(begin("f", BACKWARD, false, 3, NULL), C_OK);
	res("f", 1, ACT, R_OK, "");
	res("f", 2, ACT, R_FAIL, "no");
	EXPECT_STATES("f", "DONE COMPENSATING PENDING");
	res("f", 2, COMP, R_OK, "");
	res("f", 1, COMP, R_OK, "");
	EXPECT_STATES("f", "COMPENSATED COMPENSATED SKIPPED");
	tfsm_check_indexes(&F);
}

/* Level 10, a DAG: a join's depth is one more than its deepest
 * dependency's, so the step behind a join of DONE and ACTING steps is
 * awaited as well (level 9 leaves it PENDING: early_dag_join_is_awaited). */
Test(saga, deep_early_dag_behind_a_join_is_awaited)
{
	static const char *const deps[] = {"", "", "0,1", "2"};
	set_level(FSM_LEVEL_SAGA_DEEP);
	cr_assert_eq(begin("d", BACKWARD, true, 4, deps), C_OK);
	res("d", 1, ACT, R_OK, "");
	roll_back("d");
	EXPECT_STATES("d", "DONE ACTING ACTING ACTING");
	res("d", 4, ACT, R_RETRY, "not called");
	res("d", 3, ACT, R_RETRY, "not called");
	res("d", 2, ACT, R_OK, "");
	cr_expect_eq(compensating("d"), 4);
	res("d", 4, COMP, R_OK, "");
	cr_expect_eq(compensating("d"), 3);
	res("d", 3, COMP, R_OK, "");
	cr_expect_eq(compensating("d"), 2);
	res("d", 2, COMP, R_OK, "");
	res("d", 1, COMP, R_OK, "");
	EXPECT_STATES("d", "COMPENSATED COMPENSATED COMPENSATED COMPENSATED");
	tfsm_check_indexes(&F);
}

/* Below level 9 a saga compensates as it always did: a log written then
 * replays to the same state. */
Test(saga, below_level_9_pending_steps_are_skipped)
{
	set_level(FSM_LEVEL_SAGA_EARLY - 1);
	cr_assert_eq(begin("o", BACKWARD, false, 3, NULL), C_OK);
	roll_back("o");
	EXPECT_STATES("o", "ACTING PENDING PENDING");
	res("o", 1, ACT, R_RETRY, "not called");
	cr_expect_eq(compensating("o"), 1);
	res("o", 1, COMP, R_OK, "");
	EXPECT_STATES("o", "COMPENSATED SKIPPED SKIPPED");
	tfsm_check_indexes(&F);
}

/* ------------------------------------------------------------------ */
/* Duplicates, determinism */

Test(saga, duplicate_and_late_results_are_ignored)
{
	cr_assert_eq(begin("u", BACKWARD, false, 2, NULL), C_OK);
	struct ent e = result_ent("u", 1, ACT, R_OK, "", 0);
	Settle__V1__CmdResult *r = tfsm_apply(&F, e);
	cr_expect_eq(r->code, C_OK);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	char h1[2048], h2[2048];
	history("u", h1, sizeof h1);
	/* The same command again (a client retry), then a different
	 * command with the same outcome (a late duplicate). */
	r = tfsm_apply(&F, e);
	cr_expect_eq(r->code, C_OK);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	ent_free(e);
	res("u", 1, ACT, R_OK, "");
	res("u", 1, ACT, R_FAIL, "late");
	res("u", 1, COMP, R_OK, "");
	history("u", h2, sizeof h2);
	cr_expect_str_eq(h1, h2);
	EXPECT_STATES("u", "DONE ACTING");
	Settle__V1__BranchRecord *b = step_of("u", 1);
	cr_expect_eq(b->completion, 1);
	settle__v1__branch_record__free_unpacked(b, NULL);
}

/* Drive a mixed workload through t. */
static void workload(struct tfsm *t)
{
	struct tfsm save = F;
	if (t != &F)
		F = *t;
	next_id = 1;
	now = 1000;
	max_att = 2;
	cr_assert_eq(begin("a", BACKWARD, true, 4, diamond), C_OK);
	cr_assert_eq(begin("b", FORWARD, false, 3, NULL), C_OK);
	cr_assert_eq(begin("c", BACKWARD, false, 2, NULL), C_OK);
	res("a", 1, ACT, R_OK, "");
	res("b", 1, ACT, R_RETRY, "x");
	res("a", 3, ACT, R_RETRY, "busy");
	res("a", 2, ACT, R_FAIL, "no");
	res("b", 1, ACT, R_OK, "");
	res("a", 3, ACT, R_OK, "");
	res("c", 1, ACT, R_RETRY, "y");
	res("c", 1, ACT, R_RETRY, "y");
	res("a", 3, COMP, R_RETRY, "z");
	res("a", 3, COMP, R_OK, "");
	res("c", 1, COMP, R_FAIL, "stuck");
	if (t != &F) {
		*t = F;
		F = save;
	}
}

Test(saga, same_entries_give_identical_snapshots)
{
	struct tfsm g;
	tfsm_open(&g);
	workload(&F);
	workload(&g);
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
	tfsm_close(&g);
}

Test(saga, snapshot_with_finished_sagas_restores)
{
	struct tfsm g;
	uint8_t *buf;
	size_t len;

	workload(&F);
	cr_assert_eq(begin("ok", BACKWARD, false, 1, NULL), C_OK);
	res("ok", 1, ACT, R_OK, "");
	cr_assert_eq(begin("undone", BACKWARD, false, 1, NULL), C_OK);
	res("undone", 1, ACT, R_FAIL, "no stock");
	res("undone", 1, COMP, R_OK, "");
	Settle__V1__TxRecord *tx = tx_of("undone");
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__SAGA_COMPENSATED);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	tfsm_snapshot(&F, &buf, &len);
	tfsm_open(&g);
	cr_assert_eq(store_restore(g.t.s, buf, len), 0, "%s",
		     store_errmsg(g.t.s));
	raft_free(buf);
	cr_assert_eq(store_tx_get(g.t.s, NULL, "ok", &tx), 0);
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__SAGA_SUCCEEDED);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	struct store_counts cn;
	cr_assert_eq(store_counts_get(g.t.s, NULL, &cn), 0);
	cr_expect_geq(cn.finished, 2);
	tfsm_close(&g);
}

Test(saga, results_after_the_end_are_ignored_and_gc_forgets_the_saga)
{
	cr_assert_eq(begin("z", BACKWARD, false, 2, NULL), C_OK);
	/* A compensation result while running: no step compensates. */
	res("z", 1, COMP, R_FAIL, "bogus");
	EXPECT_STATES("z", "ACTING PENDING");
	res("z", 1, ACT, R_OK, "");
	res("z", 2, ACT, R_OK, "");
	char h1[2048], h2[2048];
	history("z", h1, sizeof h1);
	res("z", 2, ACT, R_FAIL, "late");
	res("z", 1, COMP, R_OK, "");
	cr_expect_eq(
	    tfsm_code(&F,
		      ent_decide(next_id++, now++, "z",
				 SETTLE__V1__DECISION__DECIDE_ROLLBACK, "", 0)),
	    SETTLE__V1__CODE__WRONG_STATE);
	history("z", h2, sizeof h2);
	cr_expect_str_eq(h1, h2);
	cr_expect_eq(tx_state("z"), SETTLE__V1__TX_STATE__SAGA_SUCCEEDED);
	Settle__V1__CmdResult *r =
	    tfsm_res(&F, ent_gc(next_id++, now + 10, now + 5, 100));
	cr_expect_eq(r->deleted, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx;
	cr_expect_eq(store_tx_get(F.t.s, NULL, "z", &tx), SETTLE_ENOTFOUND);
	Settle__V1__BranchRecord *b;
	cr_expect_eq(store_branch_get(F.t.s, NULL, "z", 1, &b),
		     SETTLE_ENOTFOUND);
	tfsm_check_indexes(&F);
}

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "error.h"
#include "fsm_helpers.h"

#define COMMIT	   SETTLE__V1__DECISION__DECIDE_COMMIT
#define ROLLBACK   SETTLE__V1__DECISION__DECIDE_ROLLBACK
#define CONFIRMING SETTLE__V1__BRANCH_STATE__CONFIRMING
#define CANCELLING SETTLE__V1__BRANCH_STATE__CANCELLING
#define R_OK	   SETTLE__V1__OUTCOME__OUTCOME_OK
#define R_RETRY	   SETTLE__V1__OUTCOME__OUTCOME_RETRY
#define R_FAIL	   SETTLE__V1__OUTCOME__OUTCOME_FAILURE
#define C_OK	   SETTLE__V1__CODE__OK

static struct tfsm F;

static void setup(void)
{
	tfsm_open(&F);
}

static void teardown(void)
{
	tfsm_close(&F);
}

TestSuite(fsm, .init = setup, .fini = teardown);

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

static uint64_t applied(struct tfsm *t)
{
	uint64_t i;
	cr_assert_eq(store_applied_get(t->t.s, NULL, &i), 0);
	return i;
}

/* "kind/branch/detail" of every event of gid, joined with ';'. */
static void history(const char *gid, char *out, size_t len)
{
	Settle__V1__Event **ev;
	size_t n;
	cr_assert_eq(store_events_list(F.t.s, NULL, gid, &ev, &n), 0);
	out[0] = 0;
	for (size_t i = 0; i < n; i++) {
		cr_assert_eq(ev[i]->seq, i + 1);
		size_t used = strlen(out);
		snprintf(out + used, len - used, "%s/%u/%s;", ev[i]->kind,
			 ev[i]->branch_id, ev[i]->detail);
	}
	store_events_free(ev, n);
}

/* A tx with nb branches, registered at time 100.., deadline 1000. */
static void tx_with_branches(const char *gid, int nb, int *id)
{
	cr_assert_eq(tfsm_code(&F, ent_begin((*id)++, 100, gid, 1000)), C_OK);
	for (int i = 0; i < nb; i++)
		cr_assert_eq(tfsm_code(&F, ent_register((*id)++, 101, gid,
							"h:1", "acct", "PAY")),
			     C_OK);
}

Test(fsm, begin_creates_active_tx_due_at_deadline)
{
	Settle__V1__CmdResult *r = tfsm_res(&F, ent_begin(1, 100, "g1", 900));
	cr_expect_eq(r->code, C_OK);
	cr_expect_str_eq(r->gid, "g1");
	cr_expect_eq(r->state, SETTLE__V1__TX_STATE__ACTIVE);
	cr_expect_eq(r->deadline_ms, 900);
	cr_expect_eq(r->index, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, "g1");
	cr_expect_eq(tx->created_ms, 100);
	cr_expect_eq(tx->updated_ms, 100);
	cr_expect_eq(tx->due_ms, 900);
	cr_expect_eq(tx->next_branch_id, 1);
	cr_expect_eq(tx->mode, SETTLE__V1__TX_MODE__TCC);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(F.changes, 1);
	cr_expect_str_eq(F.last_gid, "g1");
	cr_expect_eq(applied(&F), 1);
	char h[256];
	history("g1", h, sizeof h);
	cr_expect_str_eq(h, "begin/0/deadline 900;");
	tfsm_check_indexes(&F);
}

/* Level 7: the owner a begin carries is kept with the transaction; an
 * owner longer than WAL_OWNER_MAX is refused by validation. */
Test(fsm, begin_keeps_its_owner)
{
	Settle__V1__Command *cmd;
	struct ent e = ent_begin(1, 100, "g1", 900);
	char why[200], longer[WAL_OWNER_MAX + 2];

	cr_assert_eq(wal_entry_decode(e.buf, e.len, &cmd), 0);
	ent_free(e);
	cmd->begin->owner = "cn:teller";
	cr_assert_eq(tfsm_code(&F, ent_cmd(cmd)), C_OK);
	Settle__V1__TxRecord *tx = tx_of(&F, "g1");
	cr_expect_str_eq(tx->owner, "cn:teller");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	memset(longer, 'a', sizeof longer - 1);
	longer[sizeof longer - 1] = '\0';
	cmd->begin->owner = longer;
	cr_expect_eq(wal_command_validate(cmd, why, sizeof why), SETTLE_EINVAL);
	cmd->begin->owner = NULL; /* not the decoder's to free */
	settle__v1__command__free_unpacked(cmd, NULL);
	/* A begin without one (plaintext, below level 7): none kept. */
	cr_assert_eq(tfsm_code(&F, ent_begin(2, 100, "g2", 900)), C_OK);
	tx = tx_of(&F, "g2");
	cr_expect_str_eq(tx->owner, "");
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

Test(fsm, begin_twice_is_already_exists_without_change)
{
	cr_assert_eq(tfsm_code(&F, ent_begin(1, 100, "g1", 900)), C_OK);
	cr_expect_eq(tfsm_code(&F, ent_begin(2, 150, "g1", 5000)),
		     SETTLE__V1__CODE__ALREADY_EXISTS);
	Settle__V1__TxRecord *tx = tx_of(&F, "g1");
	cr_expect_eq(tx->deadline_ms, 900);
	cr_expect_eq(tx->updated_ms, 100);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(F.changes, 1);
	cr_expect_eq(applied(&F), 2);
}

Test(fsm, same_cmd_id_applies_once_and_answers_the_same)
{
	struct ent e = ent_register(2, 120, "g1", "h:1", "r", "x");
	cr_assert_eq(tfsm_code(&F, ent_begin(1, 100, "g1", 900)), C_OK);
	Settle__V1__CmdResult *r1 = tfsm_apply(&F, e);
	Settle__V1__CmdResult *r2 = tfsm_apply(&F, e);
	cr_expect_eq(r1->code, C_OK);
	cr_expect_eq(r1->branch_id, 1);
	cr_expect_eq(r2->code, r1->code);
	cr_expect_eq(r2->branch_id, 1);
	cr_expect_eq(r2->index, 2, "the index it was first applied at");
	cr_expect_eq(applied(&F), 3);
	Settle__V1__TxRecord *tx = tx_of(&F, "g1");
	cr_expect_eq(tx->branches, 1);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(F.changes, 2);
	/* Even a rejected command's answer is remembered. */
	struct ent bad = ent_begin(1, 100, "g1", 900);
	r2 = (settle__v1__cmd_result__free_unpacked(r2, NULL),
	      tfsm_apply(&F, bad));
	cr_expect_eq(r2->code, C_OK, "cmd 1 was the successful begin");
	cr_expect_eq(r2->index, 1);
	settle__v1__cmd_result__free_unpacked(r1, NULL);
	settle__v1__cmd_result__free_unpacked(r2, NULL);
	ent_free(e);
	ent_free(bad);
}

/* A used cmd_id under another request (issue 11): refused, nothing
 * changes, and the first request's answer stays for its retries. */
Test(fsm, cmd_id_reused_by_another_request_is_refused)
{
	Settle__V1__CmdResult *r;
	char h[1024];

	cr_assert_eq(
	    tfsm_code(&F, ent_digest(ent_begin(1, 100, "g1", 900), 0xb1)),
	    C_OK);
	/* REGISTER_BRANCH under the BEGIN's id: no branch. */
	r = tfsm_res(
	    &F, ent_digest(ent_register(1, 110, "g1", "h:1", "r", "x"), 0xc1));
	cr_expect_eq(r->code, SETTLE__V1__CODE__CMD_ID_REUSED);
	cr_expect_eq(r->branch_id, 0);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, "g1");
	cr_expect_eq(tx->branches, 0);
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ACTIVE);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(applied(&F), 2, "a refused command still advances");
	cr_expect_eq(F.changes, 1);

	/* COMMIT of g2 under g1's COMMIT id: g2 stays ACTIVE. */
	cr_assert_eq(
	    tfsm_code(&F, ent_digest(ent_begin(2, 100, "g2", 900), 0xb2)),
	    C_OK);
	cr_assert_eq(
	    tfsm_code(
		&F, ent_digest(ent_decide(3, 120, "g1", COMMIT, "c", 0), 0xd1)),
	    C_OK);
	cr_expect_eq(
	    tfsm_code(
		&F, ent_digest(ent_decide(3, 121, "g2", COMMIT, "c", 0), 0xd2)),
	    SETTLE__V1__CODE__CMD_ID_REUSED);
	tx = tx_of(&F, "g2");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ACTIVE);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	history("g2", h, sizeof h);
	cr_expect_eq(strstr(h, "commit"), NULL, "g2 history: %s", h);

	/* The true retries still get their first answers. */
	r = tfsm_res(&F, ent_digest(ent_begin(1, 130, "g1", 990), 0xb1));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->index, 1);
	cr_expect_eq(r->deadline_ms, 900);
	cr_expect_eq(r->request_digest, 0xb1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = tfsm_res(
	    &F, ent_digest(ent_decide(3, 131, "g1", COMMIT, "c", 0), 0xd1));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->index, 4);
	settle__v1__cmd_result__free_unpacked(r, NULL);
}

/* Rows and entries from before digests existed carry none: a repeat is
 * then taken as the same request, as it always was, so a store or a log
 * written by the previous version applies and answers as it did. */
Test(fsm, cmd_id_without_digest_is_a_repeat)
{
	Settle__V1__CmdResult *r;

	/* An old row (no digest), a new request under its id. */
	cr_assert_eq(tfsm_code(&F, ent_begin(1, 100, "g1", 900)), C_OK);
	r = tfsm_res(
	    &F, ent_digest(ent_register(1, 110, "g1", "h:1", "r", "x"), 0xc1));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->index, 1, "the old row's answer");
	settle__v1__cmd_result__free_unpacked(r, NULL);
	/* A new row, an old entry (no digest) under its id. */
	cr_assert_eq(
	    tfsm_code(&F, ent_digest(ent_begin(2, 100, "g2", 900), 0xb2)),
	    C_OK);
	r = tfsm_res(&F, ent_register(2, 110, "g2", "h:1", "r", "x"));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->index, 3);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, "g2");
	cr_expect_eq(tx->branches, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

Test(fsm, replayed_index_is_skipped)
{
	struct ent e1 = ent_begin(1, 100, "g1", 900);
	struct ent e2 = ent_begin(2, 100, "g2", 900);
	Settle__V1__CmdResult *r = tfsm_apply(&F, e1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = tfsm_apply(&F, e2);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	uint8_t *before;
	size_t blen;
	tfsm_snapshot(&F, &before, &blen);
	/* Index 1 and 2 again, the same entries: nothing may happen. (Other
	 * bytes there are a divergence: test_diverge.c.) */
	struct ent e[2] = {e1, e2};
	for (uint64_t idx = 1; idx <= 2; idx++) {
		cr_assert_eq(
		    fsm_apply(&F.f, idx, e[idx - 1].buf, e[idx - 1].len, &r),
		    0);
		cr_expect_eq(r->code, C_OK);
		cr_expect_eq(r->index, 2);
		settle__v1__cmd_result__free_unpacked(r, NULL);
		cr_assert_eq(
		    fsm_apply(&F.f, idx, e[idx - 1].buf, e[idx - 1].len, NULL),
		    0);
	}
	ent_free(e1);
	ent_free(e2);
	uint8_t *after;
	size_t alen;
	tfsm_snapshot(&F, &after, &alen);
	cr_assert_eq(alen, blen);
	cr_expect_eq(memcmp(before, after, alen), 0);
	cr_expect_eq(F.changes, 2);
	raft_free(before);
	raft_free(after);
}

Test(fsm, undecodable_and_invalid_entries_are_noops_that_advance)
{
	uint8_t junk[16];
	memset(junk, 0xee, sizeof junk);
	Settle__V1__CmdResult *r;
	cr_assert_eq(fsm_apply(&F.f, 1, junk, sizeof junk, &r), 0);
	cr_expect_eq(r->code, SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_eq(r->index, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_assert_eq(fsm_apply(&F.f, 2, NULL, 0, NULL), 0);
	cr_expect_eq(applied(&F), 2);
	F.index = 2;
	/* Encodes fine, but the gid has a space. */
	r = tfsm_res(&F, ent_begin(1, 100, "bad gid", 900));
	cr_expect_eq(r->code, SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_neq(strstr(r->message, "gid"), NULL, "%s", r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(tfsm_code(&F, ent_gc(2, 100, 10, 0)),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_eq(applied(&F), 4);
	cr_expect_eq(F.changes, 0);
	tfsm_check_indexes(&F);
}

Test(fsm, register_assigns_ids_and_checks_state)
{
	int id = 1;
	tx_with_branches("g", 0, &id);
	for (uint32_t want = 1; want <= 3; want++) {
		Settle__V1__CmdResult *r =
		    tfsm_res(&F, ent_register(id++, 200, "g", "10.0.0.1:80",
					      "acct", "SECRET-PAYLOAD"));
		cr_expect_eq(r->code, C_OK);
		cr_expect_eq(r->branch_id, want);
		settle__v1__cmd_result__free_unpacked(r, NULL);
	}
	Settle__V1__BranchRecord *b = branch_of("g", 2);
	cr_expect_eq(b->state, SETTLE__V1__BRANCH_STATE__REGISTERED);
	cr_expect_str_eq(b->endpoint, "10.0.0.1:80");
	cr_expect_eq(b->payload.len, 14);
	cr_expect_eq(b->updated_ms, 200);
	settle__v1__branch_record__free_unpacked(b, NULL);
	char h[1024];
	history("g", h, sizeof h);
	cr_expect_null(strstr(h, "SECRET"));
	cr_expect_neq(strstr(h, "register/3/10.0.0.1:80 acct;"), NULL, "%s", h);
	cr_expect_eq(
	    tfsm_code(&F, ent_register(id++, 200, "nope", "h:1", "r", "")),
	    SETTLE__V1__CODE__NOT_FOUND);
	cr_assert_eq(tfsm_code(&F, ent_decide(id++, 300, "g", ROLLBACK, "", 0)),
		     C_OK);
	Settle__V1__CmdResult *r =
	    tfsm_res(&F, ent_register(id++, 301, "g", "h:1", "r", ""));
	cr_expect_eq(r->code, SETTLE__V1__CODE__WRONG_STATE);
	cr_expect_neq(strstr(r->message, "ROLLING_BACK"), NULL, "%s",
		      r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);
}

Test(fsm, register_limit_is_too_large, .timeout = 60)
{
	int id = 1;
	tx_with_branches("g", WAL_MAX_BRANCHES, &id);
	cr_expect_eq(
	    tfsm_code(&F, ent_register(id++, 200, "g", "h:1", "r", "")),
	    SETTLE__V1__CODE__TOO_LARGE);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->branches, WAL_MAX_BRANCHES);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

/* Issue 12: a begin that declares its branches creates the tx and all of
 * them in one apply, exactly as a begin and K registers would. */
Test(fsm, begin_with_branches_is_begin_and_registers_in_one)
{
	char h1[1024], h2[1024];
	int id = 10;
	Settle__V1__CmdResult *r = tfsm_res(
	    &F, ent_begin_branches(1, 100, "gd", 1000, 3, "h:1", "SECRET"));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->count, 3, "ids 1..3");
	cr_expect_eq(r->state, SETTLE__V1__TX_STATE__ACTIVE);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(applied(&F), 1);
	cr_expect_eq(F.changes, 1, "one apply, one change");
	Settle__V1__TxRecord *tx = tx_of(&F, "gd");
	cr_expect_eq(tx->branches, 3);
	cr_expect_eq(tx->next_branch_id, 4);
	cr_expect_eq(tx->due_ms, 1000);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	for (uint32_t i = 1; i <= 3; i++) {
		char want[8];
		Settle__V1__BranchRecord *b = branch_of("gd", i);
		snprintf(want, sizeof want, "r%u", i);
		cr_expect_eq(b->state, SETTLE__V1__BRANCH_STATE__REGISTERED);
		cr_expect_str_eq(b->resource, want);
		cr_expect_str_eq(b->endpoint, "h:1");
		cr_expect_eq(b->payload.len, 6);
		cr_expect_eq(memcmp(b->payload.data, "SECRET", 6), 0);
		settle__v1__branch_record__free_unpacked(b, NULL);
	}
	/* The same history as begin + register x 3 (settlectl tx show). */
	cr_assert_eq(tfsm_code(&F, ent_begin(id++, 100, "gr", 1000)), C_OK);
	for (int i = 1; i <= 3; i++) {
		char res[8];
		snprintf(res, sizeof res, "r%d", i);
		cr_assert_eq(tfsm_code(&F, ent_register(id++, 100, "gr", "h:1",
							res, "SECRET")),
			     C_OK);
	}
	history("gd", h1, sizeof h1);
	history("gr", h2, sizeof h2);
	cr_expect_str_eq(h1, h2);
	cr_expect_null(strstr(h1, "SECRET"));
	/* REGISTER_BRANCH goes on from there; commit and results as ever. */
	r = tfsm_res(&F, ent_register(id++, 200, "gd", "h:2", "late", "p"));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->branch_id, 4);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_assert_eq(tfsm_code(&F, ent_decide(id++, 300, "gd", COMMIT, "", 0)),
		     C_OK);
	for (uint32_t i = 1; i <= 4; i++)
		cr_assert_eq(
		    tfsm_code(&F, ent_result(id++, 310, "gd", i, CONFIRMING,
					     R_OK, "", 1, 0)),
		    C_OK);
	tx = tx_of(&F, "gd");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTED);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	tfsm_check_indexes(&F);
}

Test(fsm, begin_with_branches_rolls_back_every_branch)
{
	cr_assert_eq(
	    tfsm_code(&F, ent_begin_branches(1, 100, "g", 1000, 2, "h:1", "p")),
	    C_OK);
	cr_assert_eq(tfsm_code(&F, ent_decide(2, 200, "g", ROLLBACK, "", 0)),
		     C_OK);
	for (uint32_t i = 1; i <= 2; i++) {
		Settle__V1__BranchRecord *b = branch_of("g", i);
		cr_expect_eq(b->state, CANCELLING);
		settle__v1__branch_record__free_unpacked(b, NULL);
	}
	cr_assert_eq(tfsm_code(&F, ent_result(3, 210, "g", 1, CANCELLING, R_OK,
					      "", 1, 0)),
		     C_OK);
	cr_assert_eq(tfsm_code(&F, ent_result(4, 210, "g", 2, CANCELLING, R_OK,
					      "", 1, 0)),
		     C_OK);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ROLLED_BACK);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

/* A retry of the begin gets the first answer (the same ids); another
 * request under its cmd_id, such as other branches, is refused. */
Test(fsm, begin_with_branches_repeat_and_cmd_id_reuse)
{
	Settle__V1__CmdResult *r;
	cr_assert_eq(
	    tfsm_code(&F, ent_digest(ent_begin_branches(1, 100, "g", 1000, 2,
							"h:1", "p"),
				     0xa1)),
	    C_OK);
	r = tfsm_res(
	    &F, ent_digest(ent_begin_branches(1, 150, "g", 1000, 2, "h:1", "p"),
			   0xa1));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->count, 2);
	cr_expect_eq(r->index, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = tfsm_res(&F, ent_digest(ent_begin_branches(1, 160, "g2", 1000, 3,
						       "h:1", "q"),
				    0xa2));
	cr_expect_eq(r->code, SETTLE__V1__CODE__CMD_ID_REUSED);
	cr_expect_eq(r->count, 0);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx;
	cr_expect_eq(store_tx_get(F.t.s, NULL, "g2", &tx), SETTLE_ENOTFOUND);
	tx = tx_of(&F, "g");
	cr_expect_eq(tx->branches, 2);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(F.changes, 1);
}

/* Invalid declarations that reached the log create nothing at all. */
Test(fsm, begin_with_bad_branches_creates_nothing)
{
	Settle__V1__CmdResult *r;
	r = tfsm_res(&F,
		     ent_begin_branches(1, 100, "g", 1000, 2, "no-port", "p"));
	cr_expect_eq(r->code, SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_neq(strstr(r->message, "branches[0].endpoint"), NULL, "%s",
		      r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(
	    tfsm_code(&F, ent_begin_branches(2, 100, "g", 1000,
					     WAL_MAX_BRANCHES + 1, "h:1", "")),
	    SETTLE__V1__CODE__INVALID_ARGUMENT);
	Settle__V1__TxRecord *tx;
	cr_expect_eq(store_tx_get(F.t.s, NULL, "g", &tx), SETTLE_ENOTFOUND);
	Settle__V1__BranchRecord *b;
	cr_expect_eq(store_branch_get(F.t.s, NULL, "g", 1, &b),
		     SETTLE_ENOTFOUND);
	cr_expect_eq(F.changes, 0);
	cr_expect_eq(applied(&F), 2);
	tfsm_check_indexes(&F);
}

Test(fsm, begin_with_all_branches_leaves_no_room, .timeout = 60)
{
	cr_assert_eq(
	    tfsm_code(&F, ent_begin_branches(1, 100, "g", 1000,
					     WAL_MAX_BRANCHES, "h:1", "")),
	    C_OK);
	cr_expect_eq(tfsm_code(&F, ent_register(2, 200, "g", "h:1", "r", "")),
		     SETTLE__V1__CODE__TOO_LARGE);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->branches, WAL_MAX_BRANCHES);
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

Test(fsm, commit_moves_branches_and_is_idempotent)
{
	int id = 1;
	tx_with_branches("g", 2, &id);
	Settle__V1__CmdResult *r =
	    tfsm_res(&F, ent_decide(id++, 500, "g", COMMIT, "", 0));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->state, SETTLE__V1__TX_STATE__COMMITTING);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_expect_eq(tx->due_ms, 500);
	cr_expect_eq(tx->pending, 2);
	cr_expect_eq(tx->updated_ms, 500);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	for (uint32_t i = 1; i <= 2; i++) {
		Settle__V1__BranchRecord *b = branch_of("g", i);
		cr_expect_eq(b->state, CONFIRMING);
		cr_expect_eq(b->attempts, 0);
		cr_expect_eq(b->next_retry_ms, 500);
		settle__v1__branch_record__free_unpacked(b, NULL);
	}
	/* A new Commit request (new cmd id): OK, same state, no write. */
	int changes = F.changes;
	r = tfsm_res(&F, ent_decide(id++, 600, "g", COMMIT, "", 0));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->state, SETTLE__V1__TX_STATE__COMMITTING);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(F.changes, changes);
	r = tfsm_res(&F, ent_decide(id++, 600, "g", ROLLBACK, "", 0));
	cr_expect_eq(r->code, SETTLE__V1__CODE__WRONG_STATE);
	cr_expect_neq(strstr(r->message, "COMMITTING"), NULL);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	tx = tx_of(&F, "g");
	cr_expect_eq(tx->updated_ms, 500);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	char h[512];
	history("g", h, sizeof h);
	cr_expect_str_eq(h, "begin/0/deadline 1000;register/1/h:1 acct;"
			    "register/2/h:1 acct;commit/0/;");
	tfsm_check_indexes(&F);
}

Test(fsm, decision_without_branches_finishes_at_once)
{
	int id = 1;
	tx_with_branches("c", 0, &id);
	cr_expect_eq(F.last_was, 0, "a Begin makes the transaction");
	tx_with_branches("r", 0, &id);
	cr_assert_eq(tfsm_code(&F, ent_decide(id++, 500, "c", COMMIT, "", 0)),
		     C_OK);
	cr_assert_eq(
	    tfsm_code(&F, ent_decide(id++, 510, "r", ROLLBACK, "no stock", 0)),
	    C_OK);
	Settle__V1__TxRecord *tx = tx_of(&F, "c");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(tx->finished_ms, 500);
	cr_expect_eq(tx->due_ms, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	tx = tx_of(&F, "r");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ROLLED_BACK);
	cr_expect_str_eq(tx->reason, "no stock");
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(F.last_state, SETTLE__V1__TX_STATE__ROLLED_BACK);
	cr_expect_eq(F.last_was, SETTLE__V1__TX_STATE__ACTIVE);
	/* Repeating on a finished tx is still OK; the opposite is not. */
	cr_expect_eq(tfsm_code(&F, ent_decide(id++, 600, "c", COMMIT, "", 0)),
		     C_OK);
	cr_expect_eq(tfsm_code(&F, ent_decide(id++, 600, "c", ROLLBACK, "", 0)),
		     SETTLE__V1__CODE__WRONG_STATE);
	cr_expect_eq(tfsm_code(&F, ent_decide(id++, 600, "zz", COMMIT, "", 0)),
		     SETTLE__V1__CODE__NOT_FOUND);
	uint64_t min;
	cr_assert_eq(store_due_min(F.t.s, NULL, &min), 0);
	cr_expect_eq(min, 0);
	tfsm_check_indexes(&F);
}

Test(fsm, timeout_needs_the_deadline)
{
	int id = 1;
	tx_with_branches("g", 1, &id);
	cr_expect_eq(tfsm_code(&F, ent_decide(id++, 999, "g", ROLLBACK, "", 1)),
		     SETTLE__V1__CODE__WRONG_STATE);
	cr_expect_eq(
	    tfsm_code(&F, ent_decide(id++, 1000, "g", ROLLBACK, "", 1)), C_OK);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ROLLING_BACK);
	cr_expect_str_eq(tx->reason, "deadline");
	cr_expect_eq(tx->due_ms, 1000);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	Settle__V1__BranchRecord *b = branch_of("g", 1);
	cr_expect_eq(b->state, CANCELLING);
	settle__v1__branch_record__free_unpacked(b, NULL);
	char h[512];
	history("g", h, sizeof h);
	cr_expect_neq(strstr(h, "rollback/0/deadline;"), NULL, "%s", h);
}

Test(fsm, results_drive_the_tx_to_its_end)
{
	int id = 1;
	tx_with_branches("g", 3, &id);
	cr_assert_eq(tfsm_code(&F, ent_decide(id++, 500, "g", COMMIT, "", 0)),
		     C_OK);
	/* Branch 1 ok, branch 2 retry at 900, branch 3 retry at 700. */
	cr_assert_eq(tfsm_code(&F, ent_result(id++, 510, "g", 1, CONFIRMING,
					      R_OK, "", 1, 0)),
		     C_OK);
	cr_assert_eq(
	    tfsm_code(&F, ent_result(id++, 520, "g", 2, CONFIRMING, R_RETRY,
				     "connection refused", 1, 900)),
	    C_OK);
	cr_assert_eq(tfsm_code(&F, ent_result(id++, 530, "g", 3, CONFIRMING,
					      R_RETRY, "timeout", 1, 700)),
		     C_OK);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_expect_eq(tx->pending, 2);
	cr_expect_eq(tx->due_ms, 700);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	Settle__V1__BranchRecord *b = branch_of("g", 2);
	cr_expect_eq(b->attempts, 1);
	cr_expect_eq(b->next_retry_ms, 900);
	cr_expect_str_eq(b->last_error, "connection refused");
	settle__v1__branch_record__free_unpacked(b, NULL);
	b = branch_of("g", 1);
	cr_expect_eq(b->state, SETTLE__V1__BRANCH_STATE__CONFIRMED);
	settle__v1__branch_record__free_unpacked(b, NULL);
	tfsm_check_indexes(&F);

	/* A late duplicate for branch 1 changes nothing. */
	int changes = F.changes;
	cr_expect_eq(tfsm_code(&F, ent_result(id++, 540, "g", 1, CONFIRMING,
					      R_RETRY, "late", 1, 5000)),
		     C_OK);
	cr_expect_eq(F.changes, changes);
	b = branch_of("g", 1);
	cr_expect_eq(b->state, SETTLE__V1__BRANCH_STATE__CONFIRMED);
	cr_expect_str_eq(b->last_error, "");
	settle__v1__branch_record__free_unpacked(b, NULL);
	/* So does a result for the other phase. */
	cr_expect_eq(tfsm_code(&F, ent_result(id++, 540, "g", 2, CANCELLING,
					      R_OK, "", 1, 0)),
		     C_OK);
	cr_expect_eq(tfsm_code(&F, ent_result(id++, 540, "g", 9, CONFIRMING,
					      R_OK, "", 1, 0)),
		     SETTLE__V1__CODE__NOT_FOUND);

	cr_assert_eq(tfsm_code(&F, ent_result(id++, 710, "g", 3, CONFIRMING,
					      R_OK, "", 2, 0)),
		     C_OK);
	tx = tx_of(&F, "g");
	cr_expect_eq(tx->due_ms, 900);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	Settle__V1__CmdResult *r = tfsm_res(
	    &F, ent_result(id++, 910, "g", 2, CONFIRMING, R_OK, "", 2, 0));
	cr_expect_eq(r->state, SETTLE__V1__TX_STATE__COMMITTED);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	tx = tx_of(&F, "g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(tx->finished_ms, 910);
	cr_expect_eq(tx->due_ms, 0);
	cr_expect_eq(tx->pending, 0);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_expect_eq(F.last_state, SETTLE__V1__TX_STATE__COMMITTED);
	char h[1024];
	history("g", h, sizeof h);
	cr_expect_str_eq(h, "begin/0/deadline 1000;register/1/h:1 acct;"
			    "register/2/h:1 acct;register/3/h:1 acct;"
			    "commit/0/;confirm/1/ok attempt 1;"
			    "confirm/2/retry attempt 1: connection refused;"
			    "confirm/3/retry attempt 1: timeout;"
			    "confirm/3/ok attempt 2;confirm/2/ok attempt 2;"
			    "committed/0/finished;");
	tfsm_check_indexes(&F);
}

Test(fsm, failure_leaves_the_tx_stuck_for_an_operator)
{
	int id = 1;
	tx_with_branches("g", 2, &id);
	cr_assert_eq(
	    tfsm_code(&F, ent_decide(id++, 500, "g", ROLLBACK, "user", 0)),
	    C_OK);
	cr_assert_eq(
	    tfsm_code(&F, ent_result(id++, 510, "g", 1, CANCELLING, R_FAIL,
				     "insufficient funds", 1, 0)),
	    C_OK);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ROLLING_BACK);
	cr_expect_str_eq(tx->reason, "branch 1 failed: insufficient funds");
	cr_expect_eq(tx->due_ms, 500, "branch 2 is still callable");
	cr_expect_eq(tx->failed, 1);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	cr_assert_eq(tfsm_code(&F, ent_result(id++, 520, "g", 2, CANCELLING,
					      R_OK, "", 1, 0)),
		     C_OK);
	tx = tx_of(&F, "g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ROLLING_BACK);
	cr_expect_eq(tx->due_ms, 0);
	cr_expect_eq(tx->pending, 0);
	cr_expect_eq(tx->finished_ms, 0);
	Settle__V1__TxInfo *info;
	cr_assert_eq(store_tx_info(F.t.s, NULL, tx, true, false, &info), 0);
	cr_expect(info->stuck);
	cr_expect_eq(info->branches[0]->state,
		     SETTLE__V1__BRANCH_STATE__FAILED);
	settle__v1__tx_info__free_unpacked(info, NULL);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	struct store_counts c;
	cr_assert_eq(store_counts_get(F.t.s, NULL, &c), 0);
	cr_expect_eq(c.stuck, 1);
	cr_expect_eq(c.active, 1);
	char h[1024];
	history("g", h, sizeof h);
	cr_expect_neq(strstr(h, "cancel/1/failure: insufficient funds;"), NULL,
		      "%s", h);
	tfsm_check_indexes(&F);
}

Test(fsm, illegal_move_is_a_bug_and_nothing_is_written)
{
	int id = 1;
	tx_with_branches("g", 1, &id);
	/* Corrupt the branch behind the FSM's back: CONFIRMED while ACTIVE. */
	Settle__V1__BranchRecord *b = branch_of("g", 1);
	b->state = SETTLE__V1__BRANCH_STATE__CONFIRMED;
	MDB_txn *txn;
	cr_assert_eq(store_write_begin(F.t.s, &txn), 0);
	cr_assert_eq(store_branch_put(F.t.s, txn, b), 0);
	cr_assert_eq(store_write_commit(F.t.s, txn), 0);
	settle__v1__branch_record__free_unpacked(b, NULL);
	uint64_t before = applied(&F);
	struct ent e = ent_decide(id++, 500, "g", COMMIT, "", 0);
	Settle__V1__CmdResult *r = (void *)1;
	cr_expect_eq(fsm_apply(&F.f, before + 1, e.buf, e.len, &r),
		     SETTLE_EINTERNAL);
	cr_expect_null(r);
	cr_expect_neq(strstr(F.f.errmsg, "CONFIRMED -> CONFIRMING"), NULL, "%s",
		      F.f.errmsg);
	cr_expect_eq(applied(&F), before);
	Settle__V1__TxRecord *tx = tx_of(&F, "g");
	cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__ACTIVE);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	ent_free(e);
}

Test(fsm, map_full_fails_the_apply_without_effect)
{
	struct tfsm t;
	memset(&t, 0, sizeof t);
	tstore_open(&t.t, 256 * 1024);
	fsm_init(&t.f, t.t.s);
	cr_assert_eq(tfsm_code(&t, ent_begin(1, 100, "g", 900)), C_OK);
	char *big = malloc(WAL_PAYLOAD_MAX + 1);
	memset(big, 'x', WAL_PAYLOAD_MAX);
	big[WAL_PAYLOAD_MAX] = 0;
	struct ent e = ent_register(2, 100, "g", "h:1", "r", big);
	free(big);
	int rv = fsm_apply(&t.f, 2, e.buf, e.len, NULL);
	cr_expect_eq(rv, SETTLE_EFULL, "%d %s", rv, t.f.errmsg);
	cr_expect_neq(strstr(t.f.errmsg, "MDB_MAP_FULL"), NULL, "%s",
		      t.f.errmsg);
	cr_expect_eq(applied(&t), 1);
	ent_free(e);
	tfsm_close(&t);
}

Test(fsm, gc_deletes_exactly_the_old_finished)
{
	int id = 1;
	char gid[32];
	for (int i = 0; i < 6; i++) {
		snprintf(gid, sizeof gid, "t%d", i);
		cr_assert_eq(tfsm_code(&F, ent_begin(id++, 100, gid, 10000)),
			     C_OK);
		cr_assert_eq(tfsm_code(&F, ent_register(id++, 100, gid, "h:1",
							"r", "p")),
			     C_OK);
		/* t0..t3 finish at 1000+i; t4 stays ROLLING_BACK. */
		if (i < 5)
			cr_assert_eq(tfsm_code(&F, ent_decide(id++, 200, gid,
							      ROLLBACK, "", 0)),
				     C_OK);
		if (i < 4)
			cr_assert_eq(
			    tfsm_code(&F, ent_result(id++, 1000 + (uint64_t)i,
						     gid, 1, CANCELLING, R_OK,
						     "", 1, 0)),
			    C_OK);
	}
	/* finished_before 1002: t0 and t1 (and cmd ids older than 1002). */
	Settle__V1__CmdResult *r = tfsm_res(&F, ent_gc(id++, 5000, 1002, 100));
	cr_expect_eq(r->code, C_OK);
	cr_expect_eq(r->deleted, 2);
	/* 21 commands before the gc; all but the results at 1002, 1003. */
	cr_expect_eq(r->deleted_cmds, 19, "%llu",
		     (unsigned long long)r->deleted_cmds);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	Settle__V1__TxRecord *tx;
	cr_expect_eq(store_tx_get(F.t.s, NULL, "t0", &tx), SETTLE_ENOTFOUND);
	cr_expect_eq(store_tx_get(F.t.s, NULL, "t1", &tx), SETTLE_ENOTFOUND);
	for (int i = 2; i < 6; i++) {
		snprintf(gid, sizeof gid, "t%d", i);
		settle__v1__tx_record__free_unpacked(tx_of(&F, gid), NULL);
	}
	Settle__V1__BranchRecord **br;
	size_t n;
	cr_assert_eq(store_branches_list(F.t.s, NULL, "t0", &br, &n), 0);
	cr_expect_eq(n, 0);
	Settle__V1__Event **ev;
	cr_assert_eq(store_events_list(F.t.s, NULL, "t1", &ev, &n), 0);
	cr_expect_eq(n, 0);
	/* Limit 1 takes the oldest of the rest: t2. */
	r = tfsm_res(&F, ent_gc(id++, 5000, 9999, 1));
	cr_expect_eq(r->deleted, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_expect_eq(store_tx_get(F.t.s, NULL, "t2", &tx), SETTLE_ENOTFOUND);
	struct store_counts c;
	cr_assert_eq(store_counts_get(F.t.s, NULL, &c), 0);
	cr_expect_eq(c.finished, 1);
	cr_expect_eq(c.active, 2);
	tfsm_check_indexes(&F);
}

/* Mostly successes, some retries, a few business failures. */
static int outcome(int r)
{
	return r < 6 ? R_OK : r < 9 ? R_RETRY : R_FAIL;
}

/* A random but reproducible workload over a few gids. */
static struct ent random_entry(unsigned *seed, int *id, uint64_t *now)
{
	char gid[16];
	snprintf(gid, sizeof gid, "r%u", rand_r(seed) % 60);
	*now += (uint64_t)(rand_r(seed) % 50);
	int pick = rand_r(seed) % 100;
	int cid = (rand_r(seed) % 10 == 0 && *id > 1) ? *id - 1 : (*id)++;
	if (pick < 15) /* some declare 1..3 branches (issue 12) */
		return ent_begin_branches(cid, *now, gid, *now + 300,
					  (size_t)(rand_r(seed) % 4), "h:1",
					  "pp");
	if (pick < 40)
		return ent_register(cid, *now, gid, "h:1", "res", "pp");
	if (pick < 55)
		return ent_decide(cid, *now, gid,
				  rand_r(seed) % 2 ? COMMIT : ROLLBACK, "why",
				  rand_r(seed) % 3 == 0);
	if (pick < 97)
		return ent_result(cid, *now, gid, 1 + rand_r(seed) % 4,
				  rand_r(seed) % 2 ? CONFIRMING : CANCELLING,
				  outcome(rand_r(seed) % 10), "err",
				  1 + rand_r(seed) % 5,
				  *now + (uint64_t)(rand_r(seed) % 100));
	return ent_gc(cid, *now, *now - 3000, 3);
}

Test(fsm, two_fsms_fed_the_same_entries_are_identical, .timeout = 120)
{
	struct tfsm g;
	tfsm_open(&g);
	unsigned seed = 12345;
	int id = 1;
	uint64_t now = 1000;
	for (int i = 0; i < 1500; i++) {
		struct ent e = random_entry(&seed, &id, &now);
		Settle__V1__CmdResult *a = tfsm_apply(&F, e);
		Settle__V1__CmdResult *b = tfsm_apply(&g, e);
		cr_assert_eq(a->code, b->code);
		cr_assert_eq(a->state, b->state);
		settle__v1__cmd_result__free_unpacked(a, NULL);
		settle__v1__cmd_result__free_unpacked(b, NULL);
		ent_free(e);
		if (i % 25 == 0)
			tfsm_check_indexes(&F);
	}
	tfsm_check_indexes(&F);
	/* The workload reached the interesting states. */
	struct store_counts c;
	cr_assert_eq(store_counts_get(F.t.s, NULL, &c), 0);
	cr_expect_gt(c.finished, 0);
	cr_expect_gt(c.active, 0);
	cr_expect_gt(c.stuck, 0);
	uint8_t *sa, *sb;
	size_t la, lb;
	tfsm_snapshot(&F, &sa, &la);
	tfsm_snapshot(&g, &sb, &lb);
	cr_assert_eq(la, lb);
	cr_expect_eq(memcmp(sa, sb, la), 0);

	/* Restored into a fresh store: the same bytes, and it goes on
	 * applying the same way. */
	struct tfsm h;
	tfsm_open(&h);
	cr_assert_eq(store_restore(h.t.s, sa, la), 0);
	h.index = F.index;
	uint8_t *sh;
	size_t lh;
	tfsm_snapshot(&h, &sh, &lh);
	cr_assert_eq(lh, la);
	cr_expect_eq(memcmp(sa, sh, la), 0);
	struct ent e = random_entry(&seed, &id, &now);
	cr_expect_eq(tfsm_code(&h, ent_begin(id, now, "after", now + 10)),
		     C_OK);
	ent_free(e);
	raft_free(sa);
	raft_free(sb);
	raft_free(sh);
	tfsm_close(&g);
	tfsm_close(&h);
}

Test(fsm, log_replayed_after_a_restored_snapshot_is_skipped)
{
	unsigned seed = 99;
	int id = 1;
	uint64_t now = 1000;
	struct ent log[200];
	for (int i = 0; i < 200; i++) {
		log[i] = random_entry(&seed, &id, &now);
		Settle__V1__CmdResult *r = tfsm_apply(&F, log[i]);
		settle__v1__cmd_result__free_unpacked(r, NULL);
	}
	uint8_t *snap;
	size_t len;
	cr_assert_eq(store_snapshot(F.t.s, 150, &snap, &len), 0);
	/* Like raft at start: restore the snapshot, replay the whole log. */
	struct tfsm h;
	tfsm_open(&h);
	cr_assert_eq(store_restore(h.t.s, snap, len), 0);
	for (int i = 0; i < 200; i++)
		cr_assert_eq(fsm_apply(&h.f, (uint64_t)i + 1, log[i].buf,
				       log[i].len, NULL),
			     0);
	cr_expect_eq(h.changes, 0, "everything was already applied");
	uint8_t *a, *b;
	size_t la, lb;
	tfsm_snapshot(&F, &a, &la);
	tfsm_snapshot(&h, &b, &lb);
	cr_assert_eq(la, lb);
	cr_expect_eq(memcmp(a, b, la), 0);
	/* The restored store survives a reopen. */
	store_close(h.t.s);
	char msg[128];
	cr_assert_eq(store_open(h.t.dir, NULL, &h.t.s, msg, sizeof msg), 0);
	h.f.store = h.t.s;
	raft_free(b);
	tfsm_snapshot(&h, &b, &lb);
	cr_assert_eq(la, lb);
	cr_expect_eq(memcmp(a, b, la), 0);
	for (int i = 0; i < 200; i++)
		ent_free(log[i]);
	raft_free(snap);
	raft_free(a);
	raft_free(b);
	tfsm_close(&h);
}

/*
 * Unit tests for settlectl's view of XA transactions (tools/ctl/ctl_tx.c
 * and ctl_xa.c): tx show / tx list / --json with mode XA, xids, RM
 * branches and heuristics, and the xa recover / xa forget printers.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ctl_fmt.h"
#include "ctl_xa.h"
#include "xa/xid.h"

#define CAPTURE(buf, call)                                                     \
	do {                                                                   \
		size_t cap_len_;                                               \
		FILE *f = open_memstream(&(buf), &cap_len_);                   \
		cr_assert_not_null(f);                                         \
		call;                                                          \
		fclose(f);                                                     \
	} while (0)

#define NOW 1700000000000ull

static Settle__V1__BranchInfo rm_branch, tcc_branch;
static Settle__V1__BranchInfo *branches[2] = {&rm_branch, &tcc_branch};
static Settle__V1__TxInfo tx;

/* A legacy TM's transaction: one RM branch whose phase 2 met a heuristic
 * rollback, one TCC branch confirmed. */
static void xa_tx(void)
{
	settle__v1__tx_info__init(&tx);
	tx.gid = "xa-00112233445566778899aabbccddeeff00112233";
	tx.mode = SETTLE__V1__TX_MODE__XA;
	tx.state = SETTLE__V1__TX_STATE__COMMITTED;
	tx.created_ms = NOW - 5000;
	tx.finished_ms = NOW - 1000;
	tx.xid = "1:746d2d31:62";
	tx.heuristic = SETTLE__V1__HEURISTIC__HEUR_ROLLBACK;
	settle__v1__branch_info__init(&rm_branch);
	rm_branch.branch_id = 1;
	rm_branch.state = SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTED;
	rm_branch.rm = "pg-main";
	rm_branch.xid = "1398033477:78612d30:31";
	rm_branch.heuristic = SETTLE__V1__HEURISTIC__HEUR_ROLLBACK;
	rm_branch.attempts = 1;
	rm_branch.last_error = "rolled back by the RM\nbefore commit";
	settle__v1__branch_info__init(&tcc_branch);
	tcc_branch.branch_id = 2;
	tcc_branch.state = SETTLE__V1__BRANCH_STATE__CONFIRMED;
	tcc_branch.endpoint = "127.0.0.1:7001";
	tcc_branch.resource = "accounts";
	tx.branches = branches;
	tx.n_branches = 2;
}

Test(ctl_xa, names)
{
	Settle__V1__TxState st;

	cr_expect_str_eq(ctl_mode_name(SETTLE__V1__TX_MODE__XA), "xa");
	cr_expect_str_eq(ctl_tx_state_name(SETTLE__V1__TX_STATE__XA_PREPARED),
			 "xa_prepared");
	cr_assert_eq(ctl_state_parse("XA-Prepared", &st), 0);
	cr_expect_eq(st, SETTLE__V1__TX_STATE__XA_PREPARED);
	cr_expect_str_eq(ctl_branch_state_name(
			     SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE),
			 "xa_one_phase");
	cr_expect_str_eq(
	    ctl_branch_state_name(SETTLE__V1__BRANCH_STATE__XA_BRANCH_ACTIVE),
	    "xa_active");
	cr_expect_str_eq(ctl_branch_state_name(38), "unknown");
	cr_expect_str_eq(ctl_heuristic_name(0), "none");
	cr_expect_str_eq(ctl_heuristic_name(SETTLE__V1__HEURISTIC__HEUR_MIXED),
			 "mixed");
	cr_expect_str_eq(ctl_heuristic_name(9), "unknown");
	cr_expect_str_eq(ctl_heuristic_name(-1), "unknown");
}

Test(ctl_xa, xid_text)
{
	struct xa_xid x;
	uint8_t wire[XA_XID_WIRE_MAX];
	size_t len;
	char buf[300];

	cr_assert_eq(xa_xid_init(&x, 7, "ab", 2, "c", 1), 0);
	cr_assert_eq(xa_xid_encode(&x, wire, sizeof(wire), &len), 0);
	cr_expect_str_eq(ctl_xid_text(wire, len, buf, sizeof(buf)),
			 "7:6162:63");
	cr_expect_str_eq(ctl_xid_text(NULL, 0, buf, sizeof(buf)), "-");
	/* A peer's junk is named, never printed raw. */
	cr_expect_str_eq(ctl_xid_text(wire, len - 1, buf, sizeof(buf)),
			 "(invalid xid of 8 bytes)");
	cr_expect_str_eq(ctl_xid_text((const uint8_t *)"\n\n\n\n\n\n\n", 7, buf,
				      sizeof(buf)),
			 "(invalid xid of 7 bytes)");
}

Test(ctl_xa, show_text)
{
	char *out = NULL;

	xa_tx();
	CAPTURE(out, ctl_print_tx(f, &tx, NOW, false));
	cr_expect_not_null(strstr(out, "mode:      xa\n"), "%s", out);
	cr_expect_not_null(strstr(out, "xid:       1:746d2d31:62\n"), "%s",
			   out);
	cr_expect_not_null(
	    strstr(out, "heuristic: rollback  (a branch did not end as "
			"decided"),
	    "%s", out);
	cr_expect_not_null(
	    strstr(out, "settlectl xa forget "
			"xa-00112233445566778899aabbccddeeff00112233)"),
	    "%s", out);
	cr_expect_not_null(strstr(out, "RM / ENDPOINT"), "%s", out);
	cr_expect_not_null(strstr(out, "XID / RESOURCE"), "%s", out);
	cr_expect_not_null(strstr(out, "HEURISTIC"), "%s", out);
	/* The RM branch: its RM, XID and heuristic on one line, the error
	 * text kept on it. */
	const char *l1 = strstr(out, "\n  1 ");
	cr_assert_not_null(l1, "%s", out);
	const char *eol = strchr(l1 + 1, '\n');
	cr_assert_not_null(eol);
	char line[512];
	snprintf(line, sizeof(line), "%.*s", (int)(eol - l1 - 1), l1 + 1);
	cr_expect_not_null(strstr(line, "xa_committed"), "%s", line);
	cr_expect_not_null(strstr(line, "pg-main"), "%s", line);
	cr_expect_not_null(strstr(line, "1398033477:78612d30:31"), "%s", line);
	cr_expect_not_null(strstr(line, "rollback"), "%s", line);
	cr_expect_not_null(strstr(line, "rolled back by the RM before commit"),
			   "%s", line);
	/* The TCC branch: endpoint and resource in the same columns, no
	 * heuristic. */
	const char *l2 = strstr(out, "\n  2 ");
	cr_assert_not_null(l2, "%s", out);
	cr_expect_not_null(strstr(l2, "confirmed"));
	cr_expect_not_null(strstr(l2, "127.0.0.1:7001"));
	cr_expect_not_null(strstr(l2, "accounts"));
	free(out);

	/* Settle's own XA transaction: no xid line, no heuristic line. */
	tx.xid = "";
	tx.heuristic = 0;
	CAPTURE(out, ctl_print_tx(f, &tx, NOW, false));
	cr_expect_null(strstr(out, "xid:"), "%s", out);
	cr_expect_null(strstr(out, "heuristic:"), "%s", out);
	free(out);
}

/* An operator decided the in-doubt transaction (no branch carries the
 * heuristic): tx show says so instead of "a branch did not end as
 * decided". */
Test(ctl_xa, show_text_of_an_operator_decision)
{
	char *out = NULL;

	xa_tx();
	tx.heuristic = SETTLE__V1__HEURISTIC__HEUR_COMMIT;
	rm_branch.heuristic = SETTLE__V1__HEURISTIC__HEURISTIC_NONE;
	CAPTURE(out, ctl_print_tx(f, &tx, NOW, false));
	cr_expect_not_null(strstr(out, "heuristic: commit  (decided by an "
				       "operator; the TM is told so"),
			   "%s", out);
	cr_expect_null(strstr(out, "did not end as decided"), "%s", out);
	free(out);
}

Test(ctl_xa, show_json)
{
	char *out = NULL;

	xa_tx();
	CAPTURE(out, ctl_print_tx(f, &tx, NOW, true));
	cr_expect_not_null(strstr(out, "\"mode\":\"xa\""), "%s", out);
	cr_expect_not_null(
	    strstr(out, "\"xid\":\"1:746d2d31:62\",\"heuristic\":\"rollback\""),
	    "%s", out);
	cr_expect_not_null(
	    strstr(out,
		   "\"rm\":\"pg-main\",\"xid\":\"1398033477:78612d30:31\","
		   "\"heuristic\":\"rollback\",\"initiator_phase2\":false}"),
	    "%s", out);
	cr_expect_not_null(strstr(out, "\"rm\":\"\",\"xid\":\"\","
				       "\"heuristic\":\"none\","
				       "\"initiator_phase2\":false}"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "\"last_error\":\"rolled back by the "
				       "RM\\nbefore commit\""),
			   "%s", out);
	free(out);

	/* A TCC transaction's JSON is unchanged: no XA keys. */
	tx.mode = SETTLE__V1__TX_MODE__TCC;
	CAPTURE(out, ctl_print_tx(f, &tx, NOW, true));
	cr_expect_null(strstr(out, "\"heuristic\""), "%s", out);
	cr_expect_null(strstr(out, "\"rm\""), "%s", out);
	free(out);
}

Test(ctl_xa, list_shows_heuristics)
{
	Settle__V1__TxInfo plain, *txs[2];
	Settle__V1__ListResponse resp = SETTLE__V1__LIST_RESPONSE__INIT;
	char *out = NULL;

	xa_tx();
	settle__v1__tx_info__init(&plain);
	plain.gid = "tcc-1";
	plain.mode = SETTLE__V1__TX_MODE__TCC;
	plain.state = SETTLE__V1__TX_STATE__ACTIVE;
	plain.created_ms = NOW - 10;
	plain.deadline_ms = NOW + 30000;
	txs[0] = &plain;
	txs[1] = &tx;
	resp.txs = txs;
	resp.n_txs = 2;
	CAPTURE(out, ctl_print_list(f, &resp, NOW, false));
	cr_expect_not_null(strstr(out, "HEURISTIC"), "%s", out);
	const char *l = strstr(out, "\nxa-0011");
	cr_assert_not_null(l, "%s", out);
	cr_expect_not_null(strstr(l, "committed"));
	cr_expect_not_null(strstr(l, "rollback"));
	cr_expect_not_null(strstr(l, "1 confirmed, 1 xa_committed"), "%s", l);
	free(out);

	/* Without heuristics the table keeps its usual columns. */
	resp.n_txs = 1;
	CAPTURE(out, ctl_print_list(f, &resp, NOW, false));
	cr_expect_null(strstr(out, "HEURISTIC"), "%s", out);
	free(out);

	resp.n_txs = 2;
	CAPTURE(out, ctl_print_list(f, &resp, NOW, true));
	cr_expect_not_null(strstr(out, "\"heuristic\":\"rollback\""), "%s",
			   out);
	free(out);
}

Test(ctl_xa, recover_table_and_json)
{
	Settle__V1__XaRecovered r1, r2, *rows[2] = {&r1, &r2};
	Settle__V1__XaRecoverResponse resp =
	    SETTLE__V1__XA_RECOVER_RESPONSE__INIT;
	uint8_t wire[XA_XID_WIRE_MAX];
	struct xa_xid x;
	size_t len;
	char *out = NULL;

	cr_assert_eq(xa_xid_init(&x, 1, "tm-1", 4, "b", 1), 0);
	cr_assert_eq(xa_xid_encode(&x, wire, sizeof(wire), &len), 0);
	settle__v1__xa_recovered__init(&r1);
	r1.gid = "xa-1";
	r1.xid.data = wire;
	r1.xid.len = len;
	r1.state = SETTLE__V1__TX_STATE__XA_PREPARED;
	settle__v1__xa_recovered__init(&r2);
	r2.gid = "xa-2";
	r2.xid.data = wire;
	r2.xid.len = 3; /* junk from a peer */
	r2.state = SETTLE__V1__TX_STATE__COMMITTED;
	r2.heuristic = SETTLE__V1__HEURISTIC__HEUR_HAZARD;
	resp.txs = rows;
	resp.n_txs = 2;
	resp.more = true;

	CAPTURE(out, ctl_print_xa_recover(f, &resp, false));
	cr_expect_str_eq(out,
			 "GID   STATE        HEURISTIC  XID\n"
			 "xa-1  xa_prepared  -          1:746d2d31:62\n"
			 "xa-2  committed    hazard     (invalid xid of 3 "
			 "bytes)\n"
			 "(more follow: raise --limit, or page with --after "
			 "GID)\n");
	free(out);
	CAPTURE(out, ctl_print_xa_recover(f, &resp, true));
	cr_expect_str_eq(
	    out, "{\"txs\":[{\"gid\":\"xa-1\",\"state\":\"xa_prepared\","
		 "\"heuristic\":\"none\",\"xid\":\"1:746d2d31:62\"},"
		 "{\"gid\":\"xa-2\",\"state\":\"committed\",\"heuristic\":"
		 "\"hazard\",\"xid\":\"(invalid xid of 3 bytes)\"}],"
		 "\"more\":true}\n");
	free(out);

	resp.n_txs = 0;
	resp.more = false;
	CAPTURE(out, ctl_print_xa_recover(f, &resp, false));
	cr_expect_str_eq(out, "no XA transaction is prepared or has a "
			      "heuristic to forget\n");
	free(out);
	CAPTURE(out, ctl_print_xa_recover(f, &resp, true));
	cr_expect_str_eq(out, "{\"txs\":[],\"more\":false}\n");
	free(out);
}

Test(ctl_xa, forget_answer)
{
	char *out = NULL;

	CAPTURE(out, ctl_print_xa_forget(f, "xa-2", false));
	cr_expect_str_eq(out, "xa-2: heuristic forgotten (its history keeps "
			      "the record; the branches keep theirs)\n");
	free(out);
	CAPTURE(out, ctl_print_xa_forget(f, "x\"y", true));
	cr_expect_str_eq(out, "{\"gid\":\"x\\\"y\",\"forgotten\":true}\n");
	free(out);
}

/* ---- xa commit / xa rollback GID --reason TEXT -------------------------- */

Test(ctl_xa, decide_check_takes_the_decision_gid_and_reason)
{
	char *ok_c[] = {"xa", "commit", "xa-0011"};
	char *ok_r[] = {"xa", "rollback", "xa-0011"};
	char err[256] = "";
	bool commit = false;

	cr_expect_eq(ctl_xa_decide_check(ok_c, 3, "TM gone (alice)", &commit,
					 err, sizeof(err)),
		     0, "%s", err);
	cr_expect(commit);
	cr_expect_eq(
	    ctl_xa_decide_check(ok_r, 3, "TM gone", &commit, err, sizeof(err)),
	    0);
	cr_expect_not(commit);
}

Test(ctl_xa, decide_check_refuses_what_is_wrong)
{
	char *no_gid[] = {"xa", "commit"};
	char *two[] = {"xa", "rollback", "g1", "g2"};
	char *empty[] = {"xa", "commit", ""};
	char *other[] = {"xa", "abort", "g"};
	char *ok[] = {"xa", "commit", "g"};
	char long_gid[200], long_reason[1100], err[256];
	bool commit = true;

	cr_expect_eq(
	    ctl_xa_decide_check(no_gid, 2, "r", &commit, err, sizeof(err)),
	    SETTLE_EINVAL);
	cr_expect(strstr(err, "exactly one GID") != NULL, "%s", err);
	cr_expect_eq(
	    ctl_xa_decide_check(two, 4, "r", &commit, err, sizeof(err)),
	    SETTLE_EINVAL);
	cr_expect_eq(
	    ctl_xa_decide_check(empty, 3, "r", &commit, err, sizeof(err)),
	    SETTLE_EINVAL);
	cr_expect(strstr(err, "bad gid") != NULL, "%s", err);
	cr_expect_eq(
	    ctl_xa_decide_check(other, 3, "r", &commit, err, sizeof(err)),
	    SETTLE_EINVAL);
	cr_expect(strstr(err, "abort") != NULL, "%s", err);
	/* The reason is required and bounded. */
	cr_expect_eq(
	    ctl_xa_decide_check(ok, 3, NULL, &commit, err, sizeof(err)),
	    SETTLE_EINVAL);
	cr_expect(strstr(err, "--reason") != NULL, "%s", err);
	cr_expect_eq(ctl_xa_decide_check(ok, 3, "", &commit, err, sizeof(err)),
		     SETTLE_EINVAL);
	memset(long_reason, 'r', sizeof(long_reason) - 1);
	long_reason[sizeof(long_reason) - 1] = '\0';
	cr_expect_eq(
	    ctl_xa_decide_check(ok, 3, long_reason, &commit, err, sizeof(err)),
	    SETTLE_EINVAL);
	cr_expect(strstr(err, "longer") != NULL, "%s", err);
	memset(long_gid, 'g', sizeof(long_gid) - 1);
	long_gid[sizeof(long_gid) - 1] = '\0';
	char *lg[] = {"xa", "commit", long_gid};
	cr_expect_eq(ctl_xa_decide_check(lg, 3, "r", &commit, err, sizeof(err)),
		     SETTLE_EINVAL);
	/* Nothing decided on a refusal; a NULL err is fine. */
	cr_expect(commit);
	cr_expect_eq(ctl_xa_decide_check(other, 3, "r", &commit, NULL, 0),
		     SETTLE_EINVAL);
}

Test(ctl_xa, heuristic_codes_are_the_switch_librarys)
{
	cr_expect_str_eq(
	    ctl_xa_heuristic_code(SETTLE__V1__HEURISTIC__HEUR_COMMIT),
	    "XA_HEURCOM");
	cr_expect_str_eq(
	    ctl_xa_heuristic_code(SETTLE__V1__HEURISTIC__HEUR_ROLLBACK),
	    "XA_HEURRB");
	cr_expect_str_eq(
	    ctl_xa_heuristic_code(SETTLE__V1__HEURISTIC__HEUR_MIXED),
	    "XA_HEURMIX");
	cr_expect_str_eq(
	    ctl_xa_heuristic_code(SETTLE__V1__HEURISTIC__HEUR_HAZARD),
	    "XA_HEURHAZ");
	cr_expect_str_eq(
	    ctl_xa_heuristic_code(SETTLE__V1__HEURISTIC__HEURISTIC_NONE),
	    "XA_OK");
	cr_expect_str_eq(ctl_xa_heuristic_code(99), "XA_OK");
}

Test(ctl_xa, heuristic_answer_says_what_the_tm_will_be_told)
{
	char *out = NULL;

	CAPTURE(out, ctl_print_xa_heuristic(
			 f, "xa-0011", SETTLE__V1__TX_STATE__COMMITTING,
			 SETTLE__V1__HEURISTIC__HEUR_COMMIT, false));
	cr_expect(strstr(out, "xa-0011: committing, heuristic commit\n") == out,
		  "%s", out);
	cr_expect(strstr(out, "will get XA_HEURCOM") != NULL, "%s", out);
	cr_expect(strstr(out, "settlectl xa forget xa-0011") != NULL, "%s",
		  out);
	free(out);
	out = NULL;
	CAPTURE(out, ctl_print_xa_heuristic(
			 f, "xa-00\n11", SETTLE__V1__TX_STATE__ROLLED_BACK,
			 SETTLE__V1__HEURISTIC__HEUR_ROLLBACK, true));
	cr_expect_str_eq(out, "{\"gid\":\"xa-00\\n11\",\"state\":"
			      "\"rolled_back\",\"heuristic\":\"rollback\","
			      "\"tm_told\":\"XA_HEURRB\"}\n");
	free(out);
	/* A peer's newline in the gid cannot break the text layout. */
	out = NULL;
	CAPTURE(out, ctl_print_xa_heuristic(
			 f, "a\nb", SETTLE__V1__TX_STATE__ROLLING_BACK,
			 SETTLE__V1__HEURISTIC__HEUR_ROLLBACK, false));
	cr_expect(strstr(out, "a b: rolling_back") == out, "%s", out);
	free(out);
}

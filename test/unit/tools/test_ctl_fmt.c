/*
 * Unit tests for settlectl's parsing and printing (tools/ctl/ctl_fmt.c).
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "ctl_bulk.h"
#include "ctl_fmt.h"
#include "ctl_top.h"

/* Run a printer into a string (caller frees). */
#define CAPTURE(buf, call)                                                     \
	do {                                                                   \
		size_t cap_len_;                                               \
		FILE *f = open_memstream(&(buf), &cap_len_);                   \
		cr_assert_not_null(f);                                         \
		call;                                                          \
		fclose(f);                                                     \
	} while (0)

Test(ctl_duration, units)
{
	uint64_t ms;

	cr_assert_eq(ctl_duration_parse("1500ms", &ms), 0);
	cr_assert_eq(ms, 1500);
	cr_assert_eq(ctl_duration_parse("30s", &ms), 0);
	cr_assert_eq(ms, 30000);
	cr_assert_eq(ctl_duration_parse("5m", &ms), 0);
	cr_assert_eq(ms, 300000);
	cr_assert_eq(ctl_duration_parse("2h", &ms), 0);
	cr_assert_eq(ms, 7200000);
	cr_assert_eq(ctl_duration_parse("1d", &ms), 0);
	cr_assert_eq(ms, 86400000);
	cr_assert_eq(ctl_duration_parse("0s", &ms), 0);
	cr_assert_eq(ms, 0);
}

Test(ctl_duration, rejects)
{
	const char *bad[] = {"",
			     "30",
			     "s",
			     "-5s",
			     "5 s",
			     "5sec",
			     "1.5s",
			     "5ms ",
			     "99999999999999999999ms",
			     "9999999999999999d",
			     "5S",
			     "m5"};
	uint64_t ms = 42;
	size_t i;

	cr_assert_eq(ctl_duration_parse(NULL, &ms), SETTLE_EINVAL);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(ctl_duration_parse(bad[i], &ms), SETTLE_EINVAL,
			     "accepted '%s'", bad[i]);
	cr_assert_eq(ms, 42, "a failed parse must not write the output");
}

Test(ctl_state, names)
{
	Settle__V1__TxState s;

	cr_assert_eq(ctl_state_parse("active", &s), 0);
	cr_assert_eq(s, SETTLE__V1__TX_STATE__ACTIVE);
	cr_assert_eq(ctl_state_parse("ROLLED-BACK", &s), 0);
	cr_assert_eq(s, SETTLE__V1__TX_STATE__ROLLED_BACK);
	cr_assert_eq(ctl_state_parse("rolling_back", &s), 0);
	cr_assert_eq(s, SETTLE__V1__TX_STATE__ROLLING_BACK);
	cr_assert_eq(ctl_state_parse("unspecified", &s), SETTLE_EINVAL);
	cr_assert_eq(ctl_state_parse("done", &s), SETTLE_EINVAL);
	cr_assert_eq(ctl_state_parse("", &s), SETTLE_EINVAL);
	cr_assert_eq(
	    ctl_state_parse("activeactiveactiveactiveactiveactive", &s),
	    SETTLE_EINVAL);
	cr_assert_str_eq(ctl_tx_state_name(99), "unknown");
	cr_assert_str_eq(ctl_branch_state_name(6), "failed");
	cr_assert_str_eq(ctl_branch_state_name(-1), "unknown");
}

Test(ctl_state, saga_names)
{
	Settle__V1__TxState s;

	cr_assert_eq(ctl_state_parse("saga-compensated", &s), 0);
	cr_assert_eq(s, SETTLE__V1__TX_STATE__SAGA_COMPENSATED);
	cr_assert_eq(ctl_state_parse("SAGA_RUNNING", &s), 0);
	cr_assert_eq(s, SETTLE__V1__TX_STATE__SAGA_RUNNING);
	/* The gap between TCC and saga states holds no names. */
	cr_assert_str_eq(ctl_tx_state_name(6), "unknown");
	cr_assert_str_eq(ctl_tx_state_name(19), "unknown");
	cr_assert_str_eq(ctl_tx_state_name(20), "saga_running");
	cr_assert_str_eq(ctl_tx_state_name(23), "saga_compensated");
	cr_assert_str_eq(ctl_tx_state_name(24), "unknown");
	cr_assert_str_eq(ctl_branch_state_name(7), "step_pending");
	cr_assert_str_eq(ctl_branch_state_name(10), "step_action_failed");
	cr_assert_str_eq(ctl_branch_state_name(13), "step_skipped");
	cr_assert_str_eq(ctl_branch_state_name(14), "unknown");
	cr_assert_str_eq(ctl_mode_name(SETTLE__V1__TX_MODE__SAGA), "saga");
	cr_assert_str_eq(ctl_mode_name(0), "unknown");
	cr_assert_str_eq(ctl_recovery_name(1), "forward");
	cr_assert_str_eq(ctl_recovery_name(0), "backward");
	cr_assert_str_eq(ctl_recovery_name(7), "unknown");
}

Test(ctl_operator, branch_ids_and_reasons)
{
	char big[CTL_REASON_MAX + 2];
	uint32_t id = 42;

	cr_assert_eq(ctl_branch_id_parse("1", &id), 0);
	cr_assert_eq(id, 1);
	cr_assert_eq(ctl_branch_id_parse("4294967295", &id), 0);
	cr_assert_eq(id, UINT32_MAX);
	id = 42;
	cr_assert_eq(ctl_branch_id_parse("4294967296", &id), SETTLE_EINVAL);
	cr_assert_eq(ctl_branch_id_parse("0", &id), SETTLE_EINVAL);
	cr_assert_eq(ctl_branch_id_parse("-2", &id), SETTLE_EINVAL);
	cr_assert_eq(ctl_branch_id_parse("2b", &id), SETTLE_EINVAL);
	cr_assert_eq(ctl_branch_id_parse("", &id), SETTLE_EINVAL);
	cr_assert_eq(ctl_branch_id_parse(NULL, &id), SETTLE_EINVAL);
	cr_assert_eq(id, 42, "a failed parse must not write the output");

	memset(big, 'r', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(ctl_reason_check(big, false), SETTLE_EINVAL);
	big[CTL_REASON_MAX] = '\0';
	cr_assert_eq(ctl_reason_check(big, true), 0);
	cr_assert_eq(ctl_reason_check("", false), 0);
	cr_assert_eq(ctl_reason_check(NULL, false), 0);
	cr_assert_eq(ctl_reason_check("", true), SETTLE_EINVAL);
	cr_assert_eq(ctl_reason_check(NULL, true), SETTLE_EINVAL);
}

Test(ctl_operator, retry_and_resolve_answers)
{
	char *out = NULL;

	CAPTURE(out, ctl_print_retry(f, "g-1", 0, 2,
				     SETTLE__V1__TX_STATE__SAGA_COMPENSATING,
				     false));
	cr_assert_str_eq(
	    out, "g-1: 2 branches made due now; state saga_compensating\n");
	free(out);
	CAPTURE(out, ctl_print_retry(f, "g\"1", 3, 1,
				     SETTLE__V1__TX_STATE__COMMITTING, true));
	cr_assert_str_eq(out, "{\"gid\":\"g\\\"1\",\"branch_id\":3,"
			      "\"retried\":1,\"state\":\"committing\"}\n");
	free(out);
	CAPTURE(out,
		ctl_print_resolve(
		    f, "g-1", 2, SETTLE__V1__BRANCH_STATE__STEP_COMPENSATED,
		    SETTLE__V1__TX_STATE__SAGA_COMPENSATED, false));
	cr_assert_str_eq(out, "g-1: branch 2 resolved as step_compensated; "
			      "state saga_compensated\n");
	free(out);
	CAPTURE(out, ctl_print_resolve(
			 f, "g-1", 2, SETTLE__V1__BRANCH_STATE__CANCELLED,
			 SETTLE__V1__TX_STATE__ROLLED_BACK, true));
	cr_assert_str_eq(out, "{\"gid\":\"g-1\",\"branch_id\":2,"
			      "\"branch_state\":\"cancelled\",\"state\":"
			      "\"rolled_back\"}\n");
	free(out);
}

Test(ctl_json, escapes)
{
	char *out = NULL;

	CAPTURE(out, ctl_print_xa_forget(f, "a\"b\\c\n\t\x01z", true));
	cr_assert_str_eq(out, "{\"gid\":\"a\\\"b\\\\c\\n\\t\\u0001z\","
			      "\"forgotten\":true}\n");
	free(out);
	/* Valid UTF-8 passes as it is. */
	CAPTURE(out, ctl_print_xa_forget(f, "caf\xc3\xa9", true));
	cr_assert_str_eq(out, "{\"gid\":\"caf\xc3\xa9\",\"forgotten\":true}\n");
	free(out);
	/* A stray continuation byte, a truncated sequence, an overlong '/':
	 * not UTF-8, so every byte >= 0x80 of the text shows as '?' and the
	 * line is still printed ("\?": "??-" would be a trigraph). */
	CAPTURE(out, ctl_print_xa_forget(f, "\xc3\xa9-\x80-\xe2\x82-\xc0\xaf",
					 true));
	cr_assert_str_eq(out,
			 "{\"gid\":\"?\?-?-?\?-?\?\",\"forgotten\":true}\n");
	free(out);
	CAPTURE(out, ctl_print_xa_forget(f, NULL, true));
	cr_assert_str_eq(out, "{\"gid\":\"\",\"forgotten\":true}\n");
	free(out);
}

Test(ctl_time, format)
{
	char buf[48];

	cr_assert_str_eq(ctl_time_str(0, buf, sizeof(buf)), "-");
	cr_assert_str_eq(ctl_time_str(1700000000123ull, buf, sizeof(buf)),
			 "2023-11-14 22:13:20.123Z");
	cr_assert_str_eq(ctl_span_str(850, buf, sizeof(buf)), "850ms");
	cr_assert_str_eq(ctl_span_str(12000, buf, sizeof(buf)), "12s");
	cr_assert_str_eq(ctl_span_str(303000, buf, sizeof(buf)), "5m03s");
	cr_assert_str_eq(ctl_span_str(7800000, buf, sizeof(buf)), "2h10m");
	cr_assert_str_eq(
	    ctl_span_str(3 * 86400000ull + 4 * 3600000ull, buf, sizeof(buf)),
	    "3d4h");
}

static Settle__V1__StatusResponse leader_status(void)
{
	Settle__V1__StatusResponse st = SETTLE__V1__STATUS_RESPONSE__INIT;
	st.node_id = 1;
	st.role = "leader";
	st.address = "127.0.0.1:7401";
	st.client_endpoint = "127.0.0.1:7400";
	st.leader = "127.0.0.1:7400";
	st.term = 3;
	st.last_index = 120;
	st.applied_index = 119;
	st.active = 2;
	st.stuck = 1;
	st.finished = 40;
	return st;
}

Test(ctl_status, table_and_json)
{
	Settle__V1__StatusResponse st = leader_status();
	struct ctl_node_status nodes[2] = {
	    {"127.0.0.1:7400", 0, NULL, &st},
	    {"127.0.0.1:7402", SETTLE_ECONNECT, "connect: refused", NULL},
	};
	char *out = NULL;

	CAPTURE(out, ctl_print_status(f, nodes, 2, false));
	cr_assert_str_eq(
	    out,
	    "ENDPOINT        NODE  ROLE         TERM  LAST  APPLIED  ACTIVE  "
	    "STUCK  FINISHED  LEADER / ERROR\n"
	    "127.0.0.1:7400  1     leader       3     120   119      2       "
	    "1      40        127.0.0.1:7400\n"
	    "127.0.0.1:7402  -     unreachable  -     -     -        -       "
	    "-      -         connect: refused\n");
	free(out);
	CAPTURE(out, ctl_print_status(f, nodes, 2, true));
	cr_assert_str_eq(
	    out,
	    "{\"nodes\":[{\"endpoint\":\"127.0.0.1:7400\",\"ok\":true,"
	    "\"node_id\":1,\"role\":\"leader\",\"raft_address\":"
	    "\"127.0.0.1:7401\",\"client_endpoint\":\"127.0.0.1:7400\","
	    "\"leader\":\"127.0.0.1:7400\",\"term\":3,\"last_index\":120,"
	    "\"applied_index\":119,\"active\":2,\"stuck\":1,\"finished\":40,"
	    "\"uptime_ms\":0,\"heuristic_txs\":0,\"xa\":{\"calls\":0,"
	    "\"scans\":0,\"recovered_commit\":0,\"recovered_rollback\":0,"
	    "\"heuristic_results\":0},\"store\":{\"used_bytes\":0,"
	    "\"budget_bytes\":0,\"refusing\":false},\"feature_level\":0,"
	    "\"cluster_feature_level\":0,\"clock_offset_ms\":null},{"
	    "\"endpoint\":"
	    "\"127.0.0.1:7402\","
	    "\"ok\":false,\"error\":\"connect: refused\",\"code\":"
	    "\"CONNECT\"}]}\n");
	free(out);
}

/* Under the table: a leader's heuristics and XA counters, a follower's
 * heuristics (its own store), an old leader's counters; a node with
 * neither gets no line. JSON carries them for every node. */
Test(ctl_status, xa_counters_and_heuristics)
{
	Settle__V1__StatusResponse st = leader_status();
	Settle__V1__StatusResponse fol = leader_status();
	Settle__V1__StatusResponse old = leader_status();
	Settle__V1__StatusResponse plain = leader_status();
	struct ctl_node_status nodes[4] = {
	    {"127.0.0.1:7400", 0, NULL, &st},
	    {"127.0.0.1:7410", 0, NULL, &fol},
	    {"127.0.0.1:7420", 0, NULL, &old},
	    {"127.0.0.1:7430", 0, NULL, &plain},
	};
	char *out = NULL;

	st.heuristic_txs = 2;
	st.xa_calls = 17;
	st.xa_scans = 5;
	st.xa_recovered_commit = 1;
	st.xa_recovered_rollback = 3;
	st.xa_heuristic_results = 4;
	fol.node_id = 2;
	fol.role = "follower";
	fol.heuristic_txs = 2;
	old.node_id = 3;
	old.role = "follower";
	old.xa_scans = 1;
	plain.node_id = 4;
	plain.role = "follower";
	CAPTURE(out, ctl_print_status(f, nodes, 4, false));
	cr_assert_str_eq(
	    out,
	    "ENDPOINT        NODE  ROLE      TERM  LAST  APPLIED  ACTIVE  "
	    "STUCK  FINISHED  LEADER / ERROR\n"
	    "127.0.0.1:7400  1     leader    3     120   119      2       "
	    "1      40        127.0.0.1:7400\n"
	    "127.0.0.1:7410  2     follower  3     120   119      2       "
	    "1      40        127.0.0.1:7400\n"
	    "127.0.0.1:7420  3     follower  3     120   119      2       "
	    "1      40        127.0.0.1:7400\n"
	    "127.0.0.1:7430  4     follower  3     120   119      2       "
	    "1      40        127.0.0.1:7400\n"
	    "127.0.0.1:7400: 2 heuristics not forgotten; xa 17 phase-2 calls, "
	    "5 recovery scans (in doubt: 1 committed, 3 rolled back), 4 "
	    "heuristic outcomes\n"
	    "127.0.0.1:7410: 2 heuristics not forgotten\n"
	    "127.0.0.1:7420: xa 0 phase-2 calls, 1 recovery scans (in doubt: 0 "
	    "committed, 0 rolled back), 0 heuristic outcomes\n");
	free(out);
	CAPTURE(out, ctl_print_status(f, nodes, 4, true));
	cr_assert_not_null(
	    strstr(out, "\"uptime_ms\":0,\"heuristic_txs\":2,\"xa\":{\"calls\":"
			"17,\"scans\":5,\"recovered_commit\":1,"
			"\"recovered_rollback\":3,\"heuristic_results\":4},"),
	    "%s", out);
	cr_assert_not_null(
	    strstr(out, "\"node_id\":4,") != NULL
		? strstr(strstr(out, "\"node_id\":4,"),
			 "\"heuristic_txs\":0,\"xa\":{\"calls\":0,\"scans\":0,"
			 "\"recovered_commit\":0,\"recovered_rollback\":0,"
			 "\"heuristic_results\":0},\"store\":{")
		: NULL,
	    "%s", out);
	free(out);
}

/* The store's use against its budget: a line per node that reports one,
 * saying when it refuses new transactions; JSON for every node. */
Test(ctl_status, store_budget)
{
	Settle__V1__StatusResponse st = leader_status();
	Settle__V1__StatusResponse fol = leader_status();
	struct ctl_node_status nodes[2] = {
	    {"127.0.0.1:7400", 0, NULL, &st},
	    {"127.0.0.1:7410", 0, NULL, &fol},
	};
	char *out = NULL;

	st.store_used_bytes = 29u << 20;
	st.store_budget_bytes = 32u << 20;
	st.store_refusing = true;
	fol.node_id = 2;
	fol.role = "follower";
	fol.store_used_bytes = 3u << 19;
	fol.store_budget_bytes = 32u << 20;
	CAPTURE(out, ctl_print_status(f, nodes, 2, false));
	cr_assert_not_null(
	    strstr(out, "\n127.0.0.1:7400: store 29.0 MiB of 32 MiB budget "
			"(91%); refusing new transactions (see "
			"docs/OPERATIONS.md)\n127.0.0.1:7410: store 1.5 MiB of "
			"32 MiB budget (5%)\n"),
	    "%s", out);
	free(out);
	CAPTURE(out, ctl_print_status(f, nodes, 2, true));
	cr_assert_not_null(strstr(out, "\"store\":{\"used_bytes\":30408704,"
				       "\"budget_bytes\":33554432,"
				       "\"refusing\":true},"),
			   "%s", out);
	cr_assert_not_null(strstr(out, "\"store\":{\"used_bytes\":1572864,"
				       "\"budget_bytes\":33554432,"
				       "\"refusing\":false},"),
			   "%s", out);
	free(out);
}

/* Each node's clock offset from the leader: in JSON always (null when
 * unknown), under the table only past noise. */
Test(ctl_status, clock_offsets)
{
	Settle__V1__StatusResponse st = leader_status();
	Settle__V1__StatusResponse ahead = leader_status();
	Settle__V1__StatusResponse behind = leader_status();
	Settle__V1__StatusResponse near = leader_status();
	struct ctl_node_status nodes[4] = {
	    {"127.0.0.1:7400", 0, NULL, &st},
	    {"127.0.0.1:7410", 0, NULL, &ahead},
	    {"127.0.0.1:7420", 0, NULL, &behind},
	    {"127.0.0.1:7430", 0, NULL, &near},
	};
	char *out = NULL;

	st.clock_offset_known = true;
	ahead.role = behind.role = near.role = "follower";
	ahead.clock_offset_known = behind.clock_offset_known = true;
	near.clock_offset_known = true;
	ahead.clock_offset_ms = 600012;
	behind.clock_offset_ms = -250;
	near.clock_offset_ms = 3;
	CAPTURE(out, ctl_print_status(f, nodes, 4, false));
	cr_assert_not_null(strstr(out, "\n127.0.0.1:7410: clock about 600012 "
				       "ms ahead of the leader's\n"
				       "127.0.0.1:7420: clock about 250 ms "
				       "behind the leader's\n"),
			   "%s", out);
	cr_assert_null(strstr(out, "7430: clock"), "%s", out);
	free(out);
	CAPTURE(out, ctl_print_status(f, nodes, 4, true));
	cr_assert_not_null(strstr(out, "\"clock_offset_ms\":600012}"), "%s",
			   out);
	cr_assert_not_null(strstr(out, "\"clock_offset_ms\":-250}"), "%s", out);
	cr_assert_not_null(strstr(out, "\"clock_offset_ms\":0}"), "%s", out);
	free(out);
}

/* A stuck transaction: one branch confirmed, one failed. */
struct fixture_tx {
	Settle__V1__TxInfo tx;
	Settle__V1__BranchInfo b[2];
	Settle__V1__BranchInfo *bp[2];
	Settle__V1__Event e[2];
	Settle__V1__Event *ep[2];
};

static void fixture_tx_init(struct fixture_tx *x)
{
	Settle__V1__TxInfo tx = SETTLE__V1__TX_INFO__INIT;
	Settle__V1__BranchInfo b = SETTLE__V1__BRANCH_INFO__INIT;
	Settle__V1__Event e = SETTLE__V1__EVENT__INIT;

	x->tx = tx;
	x->tx.gid = "tx-\"1\"";
	x->tx.mode = SETTLE__V1__TX_MODE__TCC;
	x->tx.state = SETTLE__V1__TX_STATE__COMMITTING;
	x->tx.created_ms = 1700000000000ull;
	x->tx.deadline_ms = 1700000030000ull;
	x->tx.updated_ms = 1700000001000ull;
	x->tx.reason = "branch 2 confirm failed:\nno account";
	x->tx.stuck = 1;
	x->tx.failed = 1;
	x->b[0] = b;
	x->b[0].branch_id = 1;
	x->b[0].endpoint = "127.0.0.1:9001";
	x->b[0].resource = "alice";
	x->b[0].state = SETTLE__V1__BRANCH_STATE__CONFIRMED;
	x->b[0].attempts = 1;
	x->b[0].updated_ms = 1700000000500ull;
	x->b[1] = b;
	x->b[1].branch_id = 2;
	x->b[1].endpoint = "127.0.0.1:9002";
	x->b[1].resource = "bob";
	x->b[1].state = SETTLE__V1__BRANCH_STATE__FAILED;
	x->b[1].attempts = 3;
	x->b[1].last_error = "FAILURE: no account";
	x->b[1].updated_ms = 1700000001000ull;
	x->bp[0] = &x->b[0];
	x->bp[1] = &x->b[1];
	x->tx.n_branches = 2;
	x->tx.branches = x->bp;
	x->e[0] = e;
	x->e[0].seq = 1;
	x->e[0].time_ms = 1700000000000ull;
	x->e[0].kind = "begin";
	x->e[1] = e;
	x->e[1].seq = 2;
	x->e[1].time_ms = 1700000001000ull;
	x->e[1].kind = "confirm";
	x->e[1].branch_id = 2;
	x->e[1].detail = "FAILURE: no account";
	x->ep[0] = &x->e[0];
	x->ep[1] = &x->e[1];
	x->tx.n_history = 2;
	x->tx.history = x->ep;
}

Test(ctl_list, table_and_json)
{
	struct fixture_tx x;
	Settle__V1__TxInfo *txs[1];
	Settle__V1__ListResponse resp = SETTLE__V1__LIST_RESPONSE__INIT;
	char *out = NULL;

	fixture_tx_init(&x);
	txs[0] = &x.tx;
	resp.n_txs = 1;
	resp.txs = txs;
	resp.more = 1;
	CAPTURE(out, ctl_print_list(f, &resp, 1700000062000ull, false));
	cr_assert_str_eq(
	    out, "GID     STATE       STUCK  AGE    DEADLINE  "
		 "BRANCHES               REASON\n"
		 "tx-\"1\"  committing  STUCK  1m02s  -         "
		 "1 confirmed, 1 failed  branch 2 confirm failed: no account\n"
		 "(more transactions match: raise --limit, or page with "
		 "--after GID)\n");
	free(out);
	/* The list never carries history, even if a server sent some. */
	CAPTURE(out, ctl_print_list(f, &resp, 1700000062000ull, true));
	cr_assert_str_eq(
	    out,
	    "{\"txs\":[{\"gid\":\"tx-\\\"1\\\"\",\"mode\":\"tcc\",\"state\":"
	    "\"committing\",\"stuck\":true,\"failed\":1,"
	    "\"created_ms\":1700000000000,"
	    "\"deadline_ms\":1700000030000,\"updated_ms\":1700000001000,"
	    "\"finished_ms\":0,\"reason\":\"branch 2 confirm failed:\\nno "
	    "account\",\"branches\":[{\"branch_id\":1,\"endpoint\":"
	    "\"127.0.0.1:9001\",\"resource\":\"alice\",\"state\":"
	    "\"confirmed\",\"attempts\":1,\"next_retry_ms\":0,\"updated_ms\":"
	    "1700000000500,\"last_error\":\"\"},{\"branch_id\":2,\"endpoint\":"
	    "\"127.0.0.1:9002\",\"resource\":\"bob\",\"state\":\"failed\","
	    "\"attempts\":3,\"next_retry_ms\":0,\"updated_ms\":1700000001000,"
	    "\"last_error\":\"FAILURE: no account\"}]}],\"more\":true}\n");
	free(out);

	/* An active transaction shows its time left, then how late it is. */
	x.tx.state = SETTLE__V1__TX_STATE__ACTIVE;
	resp.more = 0;
	CAPTURE(out, ctl_print_list(f, &resp, 1700000002000ull, false));
	cr_assert_not_null(strstr(out, "  active  STUCK  2s   28s  "), "%s",
			   out);
	free(out);
	CAPTURE(out, ctl_print_list(f, &resp, 1700000062000ull, false));
	cr_assert_not_null(strstr(out, "passed 32s ago"), "%s", out);
	free(out);

	resp.n_txs = 0;
	CAPTURE(out, ctl_print_list(f, &resp, 0, false));
	cr_assert_str_eq(out, "no matching transactions\n");
	free(out);
}

Test(ctl_show, text)
{
	struct fixture_tx x;
	char *out = NULL;

	fixture_tx_init(&x);
	CAPTURE(out, ctl_print_tx(f, &x.tx, 1700000062000ull, false));
	cr_assert_str_eq(
	    out,
	    "gid:       tx-\"1\"\n"
	    "mode:      tcc\n"
	    "state:     committing  (STUCK: needs an operator, see "
	    "docs/OPERATIONS.md)\n"
	    "failed:    1 branch FAILED, waiting for an operator (settlectl "
	    "tx retry / tx resolve)\n"
	    "created:   2023-11-14 22:13:20.000Z (1m02s ago)\n"
	    "deadline:  2023-11-14 22:13:50.000Z\n"
	    "updated:   2023-11-14 22:13:21.000Z\n"
	    "finished:  -\n"
	    "reason:    branch 2 confirm failed: no account\n"
	    "\n"
	    "branches (2):\n"
	    "  ID  STATE      ENDPOINT        RESOURCE  ATTEMPTS  NEXT RETRY  "
	    "UPDATED                   LAST ERROR\n"
	    "  1   confirmed  127.0.0.1:9001  alice     1         -           "
	    "2023-11-14 22:13:20.500Z  \n"
	    "  2   failed     127.0.0.1:9002  bob       3         -           "
	    "2023-11-14 22:13:21.000Z  FAILURE: no account\n"
	    "\n"
	    "history (2 events):\n"
	    "  SEQ  TIME                      EVENT    BRANCH  DETAIL\n"
	    "  1    2023-11-14 22:13:20.000Z  begin    -       \n"
	    "  2    2023-11-14 22:13:21.000Z  confirm  2       FAILURE: no "
	    "account\n");
	free(out);
}

Test(ctl_show, json_has_history)
{
	struct fixture_tx x;
	char *out = NULL;

	fixture_tx_init(&x);
	CAPTURE(out, ctl_print_tx(f, &x.tx, 0, true));
	cr_assert_not_null(strstr(
	    out, ",\"history\":[{\"seq\":1,\"time_ms\":1700000000000,\"kind\":"
		 "\"begin\",\"branch_id\":0,\"detail\":\"\"},{\"seq\":2,"
		 "\"time_ms\":1700000001000,\"kind\":\"confirm\",\"branch_id\":"
		 "2,\"detail\":\"FAILURE: no account\"}]}}\n"));
	cr_assert_eq(strncmp(out, "{\"tx\":{\"gid\":", 13), 0);
	free(out);
}

Test(ctl_cluster, parse_ids_roles_addresses)
{
	Settle__V1__MemberRole role;
	uint64_t id;

	cr_assert_eq(ctl_node_id_parse("4", &id), 0);
	cr_assert_eq(id, 4);
	cr_assert_eq(ctl_node_id_parse("18446744073709551615", &id), 0);
	cr_assert_eq(id, UINT64_MAX);
	cr_assert_eq(ctl_node_id_parse("0", &id), SETTLE_EINVAL);
	cr_assert_eq(ctl_node_id_parse("-1", &id), SETTLE_EINVAL);
	cr_assert_eq(ctl_node_id_parse("4x", &id), SETTLE_EINVAL);
	cr_assert_eq(ctl_node_id_parse("", &id), SETTLE_EINVAL);
	cr_assert_eq(ctl_node_id_parse("18446744073709551616", &id),
		     SETTLE_EINVAL);

	cr_assert_eq(ctl_role_parse("Voter", &role), 0);
	cr_assert_eq(role, SETTLE__V1__MEMBER_ROLE__ROLE_VOTER);
	cr_assert_eq(ctl_role_parse("standby", &role), 0);
	cr_assert_eq(role, SETTLE__V1__MEMBER_ROLE__ROLE_STANDBY);
	cr_assert_eq(ctl_role_parse("spare", &role), 0);
	cr_assert_eq(ctl_role_parse("leader", &role), SETTLE_EINVAL);
	cr_assert_str_eq(ctl_role_name(99), "unknown");

	cr_assert_eq(ctl_address_check("127.0.0.1:7401"), 0);
	cr_assert_eq(ctl_address_check("node-4.example_net:1"), 0);
	cr_assert_eq(ctl_address_check("[::1]:65535"), 0);
	cr_assert_eq(ctl_address_check("127.0.0.1"), SETTLE_EINVAL);
	cr_assert_eq(ctl_address_check(":7401"), SETTLE_EINVAL);
	cr_assert_eq(ctl_address_check("h:0"), SETTLE_EINVAL);
	cr_assert_eq(ctl_address_check("h:65536"), SETTLE_EINVAL);
	cr_assert_eq(ctl_address_check("h:07"), SETTLE_EINVAL);
	cr_assert_eq(ctl_address_check("h h:7"), SETTLE_EINVAL);
	cr_assert_eq(ctl_address_check("[::1:7"), SETTLE_EINVAL);
	cr_assert_eq(ctl_address_check(NULL), SETTLE_EINVAL);
}

Test(ctl_cluster, members_table_and_json)
{
	Settle__V1__Member a = SETTLE__V1__MEMBER__INIT;
	Settle__V1__Member b = SETTLE__V1__MEMBER__INIT;
	Settle__V1__Member *ms[] = {&a, &b};
	Settle__V1__ClusterMembersResponse r =
	    SETTLE__V1__CLUSTER_MEMBERS_RESPONSE__INIT;
	char *out = NULL;

	a.id = 1;
	a.raft_address = "127.0.0.1:7401";
	a.client_endpoint = "127.0.0.1:7400";
	a.role = SETTLE__V1__MEMBER_ROLE__ROLE_VOTER;
	a.leader = true;
	b.id = 4;
	b.raft_address = "10.0.0.4:7401";
	b.client_endpoint = "";
	b.role = SETTLE__V1__MEMBER_ROLE__ROLE_STANDBY;
	b.added_by = "certificate admin";
	b.added_ms = 1000;
	r.n_members = 2;
	r.members = ms;
	r.leader_id = 1;

	CAPTURE(out, ctl_print_members(f, &r, false));
	cr_assert_not_null(strstr(out, "NODE  ROLE     RAFT ADDRESS"), "%s",
			   out);
	cr_assert_not_null(strstr(out, "1     voter    127.0.0.1:7401  "
				       "127.0.0.1:7400   *"),
			   "%s", out);
	cr_assert_not_null(strstr(out, "4     standby  10.0.0.4:7401   "
				       "(unknown)"),
			   "%s", out);
	cr_assert_not_null(strstr(out, "ADDED BY"), "%s", out);
	cr_assert_not_null(strstr(out, "certificate admin\n"), "%s", out);
	free(out);

	CAPTURE(out, ctl_print_members(f, &r, true));
	cr_assert_str_eq(
	    out, "{\"leader_id\":1,\"members\":["
		 "{\"id\":1,\"role\":\"voter\",\"raft_address\":\"127.0.0.1:"
		 "7401\",\"client_endpoint\":\"127.0.0.1:7400\",\"leader\":"
		 "true},"
		 "{\"id\":4,\"role\":\"standby\",\"raft_address\":\"10.0.0.4:"
		 "7401\",\"client_endpoint\":\"\",\"leader\":false,"
		 "\"added_by\":\"certificate admin\",\"added_ms\":1000}],"
		 "\"removed\":[]}\n");
	free(out);

	/* A removal the members' table recorded: a line under the table. */
	Settle__V1__Member gone = SETTLE__V1__MEMBER__INIT;
	Settle__V1__Member *gones[] = {&gone};

	gone.id = 3;
	gone.raft_address = "127.0.0.1:7405";
	gone.client_endpoint = "127.0.0.1:7404";
	gone.removed_by = "certificate ops";
	gone.removed_ms = 2000;
	r.n_removed = 1;
	r.removed = gones;
	CAPTURE(out, ctl_print_members(f, &r, false));
	cr_assert_not_null(strstr(out, "removed: node 3 (raft 127.0.0.1:7405) "
				       "at "),
			   "%s", out);
	cr_assert_not_null(strstr(out, " by certificate ops\n"), "%s", out);
	free(out);
	CAPTURE(out, ctl_print_members(f, &r, true));
	cr_assert_not_null(
	    strstr(out,
		   "\"removed\":[{\"id\":3,\"role\":\"unknown\","
		   "\"raft_address\":\"127.0.0.1:7405\",\"client_endpoint\""
		   ":\"127.0.0.1:7404\",\"leader\":false,\"removed_by\":"
		   "\"certificate ops\",\"removed_ms\":2000}]}"),
	    "%s", out);
	free(out);
	r.n_removed = 0;
	r.removed = NULL;

	CAPTURE(out, ctl_print_member(f, &a, false));
	cr_assert_str_eq(out, "node 1: voter, raft 127.0.0.1:7401, clients "
			      "127.0.0.1:7400, leader\n");
	free(out);
}

/* A compensated saga: credit-bob took effect (ended first), debit-alice
 * failed for lack of funds; both compensated in reverse order. */
struct fixture_saga {
	Settle__V1__TxInfo tx;
	Settle__V1__BranchInfo b[2];
	Settle__V1__BranchInfo *bp[2];
	uint32_t deps[1];
};

static void fixture_saga_init(struct fixture_saga *x)
{
	Settle__V1__TxInfo tx = SETTLE__V1__TX_INFO__INIT;
	Settle__V1__BranchInfo b = SETTLE__V1__BRANCH_INFO__INIT;

	x->tx = tx;
	x->tx.gid = "saga-1";
	x->tx.mode = SETTLE__V1__TX_MODE__SAGA;
	x->tx.state = SETTLE__V1__TX_STATE__SAGA_COMPENSATED;
	x->tx.recovery = SETTLE__V1__SAGA_RECOVERY__BACKWARD;
	x->tx.created_ms = 1700000000000ull;
	x->tx.deadline_ms = 1700000030000ull;
	x->tx.updated_ms = 1700000001000ull;
	x->tx.finished_ms = 1700000001000ull;
	x->tx.reason = "step 2 failed";
	x->b[0] = b;
	x->b[0].branch_id = 1;
	x->b[0].name = "credit-bob";
	x->b[0].endpoint = "127.0.0.1:9002";
	x->b[0].resource = "credit-bob";
	x->b[0].state = SETTLE__V1__BRANCH_STATE__STEP_COMPENSATED;
	x->b[0].attempts = 1;
	x->b[0].completion = 1;
	x->b[0].completed_ms = 1700000000200ull;
	x->b[1] = b;
	x->b[1].branch_id = 2;
	x->b[1].name = "debit-alice";
	x->b[1].endpoint = "127.0.0.1:9001";
	x->b[1].resource = "debit-alice";
	x->b[1].state = SETTLE__V1__BRANCH_STATE__STEP_COMPENSATED;
	x->b[1].attempts = 1;
	x->b[1].max_attempts = 3;
	x->b[1].last_error = "FAILURE: insufficient funds";
	x->b[1].completion = 2;
	x->b[1].completed_ms = 1700000000400ull;
	x->deps[0] = 1;
	x->b[1].depends_on = x->deps;
	x->b[1].n_depends_on = 1;
	x->bp[0] = &x->b[0];
	x->bp[1] = &x->b[1];
	x->tx.n_branches = 2;
	x->tx.branches = x->bp;
}

Test(ctl_show, saga_steps_table)
{
	struct fixture_saga x;
	char *out = NULL;

	fixture_saga_init(&x);
	CAPTURE(out, ctl_print_tx(f, &x.tx, 1700000062000ull, false));
	cr_assert_str_eq(
	    out,
	    "gid:       saga-1\n"
	    "mode:      saga\n"
	    "recovery:  backward\n"
	    "state:     saga_compensated\n"
	    "created:   2023-11-14 22:13:20.000Z (1m02s ago)\n"
	    "deadline:  2023-11-14 22:13:50.000Z\n"
	    "updated:   2023-11-14 22:13:21.000Z\n"
	    "finished:  2023-11-14 22:13:21.000Z\n"
	    "reason:    step 2 failed\n"
	    "\n"
	    "steps (2):\n"
	    "  ID  NAME         STATE             ATTEMPTS  AFTER  ORDER  "
	    "ENDPOINT        NEXT RETRY  LAST ERROR\n"
	    "  1   credit-bob   step_compensated  1         -      1      "
	    "127.0.0.1:9002  -           \n"
	    "  2   debit-alice  step_compensated  1/3       1      2      "
	    "127.0.0.1:9001  -           FAILURE: insufficient funds\n"
	    "  (ORDER: the order in which actions ended; compensation runs "
	    "in reverse)\n"
	    "\n"
	    "history (0 events):\n");
	free(out);

	/* A step that never ended has no order yet. */
	x.b[1].completion = 0;
	x.b[0].completion = 0;
	x.tx.state = SETTLE__V1__TX_STATE__SAGA_RUNNING;
	CAPTURE(out, ctl_print_tx(f, &x.tx, 1700000062000ull, false));
	cr_assert_not_null(strstr(out, "  1   credit-bob   step_compensated  1"
				       "         -      -      "),
			   "%s", out);
	cr_assert_null(strstr(out, "(ORDER:"), "%s", out);
	free(out);
}

Test(ctl_show, saga_json_has_steps)
{
	struct fixture_saga x;
	char *out = NULL;

	fixture_saga_init(&x);
	CAPTURE(out, ctl_print_tx(f, &x.tx, 0, true));
	cr_assert_not_null(
	    strstr(out, "\"mode\":\"saga\",\"state\":\"saga_compensated\","
			"\"stuck\":false,\"failed\":0,"),
	    "%s", out);
	cr_assert_not_null(strstr(out, "\"recovery\":\"backward\""), "%s", out);
	cr_assert_not_null(
	    strstr(out, "\"last_error\":\"\",\"name\":\"credit-bob\","
			"\"depends_on\":[],\"completion\":1,\"completed_ms\":"
			"1700000000200,\"max_attempts\":0}"),
	    "%s", out);
	cr_assert_not_null(
	    strstr(out, "\"last_error\":\"FAILURE: insufficient funds\","
			"\"name\":\"debit-alice\",\"depends_on\":[1],"
			"\"completion\":2,\"completed_ms\":1700000000400,"
			"\"max_attempts\":3}"),
	    "%s", out);
	free(out);

	/* TCC JSON carries none of the step fields. */
	struct fixture_tx t;
	fixture_tx_init(&t);
	CAPTURE(out, ctl_print_tx(f, &t.tx, 0, true));
	cr_assert_null(strstr(out, "\"completion\""), "%s", out);
	cr_assert_null(strstr(out, "\"recovery\""), "%s", out);
	free(out);
}

Test(ctl_list, saga_states_in_summary)
{
	struct fixture_saga x;
	Settle__V1__TxInfo *txs[1];
	Settle__V1__ListResponse resp = SETTLE__V1__LIST_RESPONSE__INIT;
	char *out = NULL;

	fixture_saga_init(&x);
	x.b[0].state = SETTLE__V1__BRANCH_STATE__STEP_DONE;
	x.b[1].state = 99;
	x.tx.state = SETTLE__V1__TX_STATE__SAGA_RUNNING;
	x.tx.finished_ms = 0;
	txs[0] = &x.tx;
	resp.n_txs = 1;
	resp.txs = txs;
	CAPTURE(out, ctl_print_list(f, &resp, 1700000002000ull, false));
	cr_assert_not_null(strstr(out, "saga_running  -      2s   28s       "
				       "1 step_done, 1 unknown"),
			   "%s", out);
	free(out);
}

Test(ctl_cluster, participants_table_and_json)
{
	Settle__V1__ParticipantInfo a = SETTLE__V1__PARTICIPANT_INFO__INIT;
	Settle__V1__ParticipantInfo *ps[] = {&a};
	Settle__V1__ParticipantsResponse r =
	    SETTLE__V1__PARTICIPANTS_RESPONSE__INIT;
	char *out = NULL;

	a.endpoint = "10.0.0.7:7101";
	a.breaker = 1;
	a.breaker_opens = 2;
	a.calls_ok = 40;
	a.calls_error = 5;
	a.deferred = 3;
	a.waiting = 7;
	a.failed = 1;
	a.mean_call_ms = 1.25;
	r.n_participants = 1;
	r.participants = ps;
	CAPTURE(out, ctl_print_participants(f, &r, false));
	cr_assert_not_null(strstr(out, "ENDPOINT       BREAKER"), "%s", out);
	cr_assert_not_null(strstr(out, "10.0.0.7:7101  open     40  0       "
				       "5       3         7        1      1.2"),
			   "%s", out);
	free(out);
	CAPTURE(out, ctl_print_participants(f, &r, true));
	cr_assert_str_eq(out, "{\"participants\":[{\"endpoint\":\"10.0.0.7:"
			      "7101\",\"breaker\":\"open\",\"breaker_opens\":2,"
			      "\"calls_ok\":40,\"calls_failure\":0,"
			      "\"calls_error\":5,\"deferred\":3,\"waiting\":7,"
			      "\"failed\":1,\"mean_call_ms\":1.25}],"
			      "\"partial\":false}\n");
	free(out);
	/* A mean that is not a number is null, still valid JSON. */
	a.mean_call_ms = NAN;
	CAPTURE(out, ctl_print_participants(f, &r, true));
	cr_assert_not_null(strstr(out, "\"mean_call_ms\":null}"), "%s", out);
	free(out);
	r.n_participants = 0;
	CAPTURE(out, ctl_print_participants(f, &r, false));
	cr_assert_not_null(strstr(out, "no participant"), "%s", out);
	free(out);
}

/* Bulk tx retry picks: whole transactions, or the branches at one
 * endpoint; only what a retry would call again. */
Test(ctl_bulk, retry_picks)
{
	Settle__V1__BranchInfo fl = SETTLE__V1__BRANCH_INFO__INIT,
			       r = SETTLE__V1__BRANCH_INFO__INIT,
			       ok = SETTLE__V1__BRANCH_INFO__INIT,
			       first = SETTLE__V1__BRANCH_INFO__INIT;
	Settle__V1__BranchInfo *b1[] = {&ok, &fl}, *b2[] = {&first, &r};
	Settle__V1__TxInfo t1 = SETTLE__V1__TX_INFO__INIT,
			   t2 = SETTLE__V1__TX_INFO__INIT;
	Settle__V1__TxInfo *txs[] = {&t1, &t2};
	Settle__V1__ListResponse l = SETTLE__V1__LIST_RESPONSE__INIT;
	struct ctl_retry_pick *picks = NULL;
	size_t n = 0, cap = 0;
	char *out = NULL;

	fl.branch_id = 2;
	fl.endpoint = "b:1";
	fl.state = SETTLE__V1__BRANCH_STATE__FAILED;
	fl.last_error = "FAILURE: no";
	r.branch_id = 2;
	r.endpoint = "b:1";
	r.state = SETTLE__V1__BRANCH_STATE__CONFIRMING;
	r.attempts = 3;
	r.last_error = "ECONNECT: refused";
	ok.branch_id = 1;
	ok.endpoint = "a:1";
	ok.state = SETTLE__V1__BRANCH_STATE__CONFIRMED;
	first.branch_id = 1;
	first.endpoint = "a:1";
	first.state = SETTLE__V1__BRANCH_STATE__CONFIRMING;
	first.attempts = 0; /* not tried yet: nothing to retry */
	t1.gid = "g1";
	t1.state = SETTLE__V1__TX_STATE__COMMITTING;
	t1.n_branches = 2;
	t1.branches = b1;
	t2.gid = "g2";
	t2.state = SETTLE__V1__TX_STATE__COMMITTING;
	t2.n_branches = 2;
	t2.branches = b2;
	l.n_txs = 2;
	l.txs = txs;

	cr_assert(ctl_branch_retryable(&fl));
	cr_assert(ctl_branch_retryable(&r));
	cr_assert_not(ctl_branch_retryable(&ok));
	cr_assert_not(ctl_branch_retryable(&first));
	cr_assert_eq(ctl_retry_select(&l, NULL, &picks, &n, &cap), 0);
	cr_assert_eq(n, 2, "whole transactions");
	cr_expect_eq(picks[0].branch_id, 0);
	cr_expect_str_eq(picks[1].gid, "g2");
	n = 0;
	cr_assert_eq(ctl_retry_select(&l, "a:1", &picks, &n, &cap), 0);
	cr_expect_eq(n, 0, "nothing to retry at a:1");
	cr_assert_eq(ctl_retry_select(&l, "b:1", &picks, &n, &cap), 0);
	cr_assert_eq(n, 2);
	cr_expect_eq(picks[0].branch_id, 2);
	cr_expect_str_eq(picks[0].endpoint, "b:1");
	CAPTURE(out, ctl_print_retry_plan(f, picks, n, true, false));
	cr_expect_not_null(strstr(out, "GID  STATE       BRANCH  ENDPOINT"),
			   "%s", out);
	cr_expect_not_null(strstr(out, "ECONNECT: refused"), "%s", out);
	cr_expect_not_null(strstr(out, "would make 2 retries\n"), "%s", out);
	free(out);
	free(picks);
}

/* settlectl top: latency quantiles from two rounds of bucket counts, and
 * the view of a leader's rates. */
Test(ctl_top, quantiles_and_rates)
{
	uint64_t le[] = {1000, 5000, 10000, 0};
	uint64_t before[] = {10, 0, 0, 0}, now[] = {10, 50, 50, 0};
	Settle__V1__StatusResponse s0 = SETTLE__V1__STATUS_RESPONSE__INIT,
				   s1 = SETTLE__V1__STATUS_RESPONSE__INIT;
	struct ctl_node_status n0 = {.endpoint = "h:1", .st = &s0},
			       n1 = {.endpoint = "h:1", .st = &s1},
			       gone = {.endpoint = "h:3", .err = 1};
	struct ctl_node_status r0[] = {n0, gone}, r1[] = {n1, gone};
	struct ctl_top_round a = {.nodes = r0, .n = 2, .mono_ms = 1000},
			     b = {.nodes = r1, .n = 2, .mono_ms = 3000};
	char *out = NULL;

	/* 100 samples this round: 50 in (1, 5] ms, 50 in (5, 10] ms. */
	cr_expect_float_eq(ctl_top_quantile_ms(before, now, le, 4, 0.5), 5.0,
			   1e-9);
	cr_expect_float_eq(ctl_top_quantile_ms(before, now, le, 4, 0.99), 9.9,
			   1e-9);
	cr_expect_float_eq(ctl_top_quantile_ms(now, now, le, 4, 0.5), -1, 1e-9);
	s0.role = s1.role = "leader";
	s0.node_id = s1.node_id = 2;
	s0.txs_committed = 100;
	s1.txs_committed = 300;
	s1.txs_begun = 50;
	s1.stuck = 4;
	s0.n_decision_bucket_counts = s1.n_decision_bucket_counts = 4;
	s1.n_decision_bucket_le_us = 4;
	s0.decision_bucket_counts = before;
	s1.decision_bucket_counts = now;
	s1.decision_bucket_le_us = le;
	CAPTURE(out, ctl_top_render(f, &a, &b));
	cr_expect_not_null(strstr(out, "committed 100/s"), "%s", out);
	cr_expect_not_null(strstr(out, "p50 5.0 ms, p99 9.9 ms"), "%s", out);
	cr_expect_not_null(strstr(out, "h:3       unreachable"), "%s", out);
	cr_expect_not_null(strstr(out, "stuck 4  (settlectl tx list --stuck)"),
			   "%s", out);
	free(out);
	CAPTURE(out, ctl_top_render(f, NULL, &b));
	cr_expect_not_null(strstr(out, "rates from the next round"), "%s", out);
	free(out);
}

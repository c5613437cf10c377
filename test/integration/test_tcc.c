/*
 * TCC end to end with real processes: one settled, two settle-bank
 * participants, settle-transfer and settlectl, plus libsettle for the
 * steps the demo initiator cannot take (a transaction left to its deadline,
 * raw hostile connections).
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* error.h before settle.h: see settle.h. */
#include "error.h"
#include "settle.h"

#include "harness.h"
#include "tcc_util.h"

TestSuite(tcc, .init = it_setup, .fini = it_teardown, .timeout = 90);

Test(tcc, transfer_commits_and_moves_money_once)
{
	struct it_node n;
	struct it_bank a, b;
	char gid[SETTLE_GID_BUFSIZE];
	Settle__V1__TxInfo *tx;

	it_node_start(&n, 1, NULL);
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(&b, "bank-b", "bob=500", NULL);

	cr_assert_eq(
	    it_transfer(&n, &a, "alice", &b, "bob", 100,
			(const char *const[]){"--wait-ms", "10000", NULL}, gid,
			sizeof(gid)),
	    0);
	cr_assert_neq(gid[0], '\0', "settle-transfer printed no gid");
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__COMMITTED, 20000);
	cr_assert_eq(tx->n_branches, 2);
	cr_assert_eq(tx->branches[0]->state,
		     SETTLE__V1__BRANCH_STATE__CONFIRMED);
	cr_assert_eq(tx->branches[1]->state,
		     SETTLE__V1__BRANCH_STATE__CONFIRMED);
	settle_tx_info_free(tx);
	tu_assert_balances(&a, &b, 900, 600);

	/* A second transfer with the same amounts moves money again (each
	 * transaction once), and a pause does not move it a third time. */
	cr_assert_eq(
	    it_transfer(&n, &a, "alice", &b, "bob", 100,
			(const char *const[]){"--wait-ms", "10000", NULL}, gid,
			sizeof(gid)),
	    0);
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__COMMITTED, 20000);
	settle_tx_info_free(tx);
	tu_sleep_ms(500);
	tu_assert_balances(&a, &b, 800, 700);
}

Test(tcc, failed_try_rolls_back_and_restores_balances)
{
	struct it_node n;
	struct it_bank a, b;
	char gid[SETTLE_GID_BUFSIZE];
	Settle__V1__TxInfo *tx;

	it_node_start(&n, 1, NULL);
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(&b, "bank-b", "bob=500", NULL);

	/* More than alice has: her Try fails, the transfer rolls back. */
	cr_assert_eq(
	    it_transfer(&n, &a, "alice", &b, "bob", 5000,
			(const char *const[]){"--wait-ms", "10000", NULL}, gid,
			sizeof(gid)),
	    3);
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__ROLLED_BACK, 20000);
	cr_assert_eq(tx->branches[0]->state,
		     SETTLE__V1__BRANCH_STATE__CANCELLED);
	cr_assert_eq(tx->branches[1]->state,
		     SETTLE__V1__BRANCH_STATE__CANCELLED);
	settle_tx_info_free(tx);
	tu_assert_balances(&a, &b, 1000, 500);

	/* An explicit abort after registering: both Cancels, nothing moves. */
	cr_assert_eq(it_transfer(&n, &a, "alice", &b, "bob", 100,
				 (const char *const[]){"--abort", "--wait-ms",
						       "10000", NULL},
				 gid, sizeof(gid)),
		     0);
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__ROLLED_BACK, 20000);
	settle_tx_info_free(tx);
	tu_assert_balances(&a, &b, 1000, 500);
}

Test(tcc, deadline_rolls_back_and_cancel_reaches_both_banks)
{
	struct it_node n;
	struct it_bank a, b;
	struct it_account x, y;
	Settle__V1__TxInfo *tx;
	char gid[SETTLE_GID_BUFSIZE];
	settle_client *c;
	size_t i, cancels = 0;

	it_node_start(&n, 1, NULL);
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(&b, "bank-b", "bob=500", NULL);
	c = tu_client(&n);

	/* Begin with a 3 s deadline, Try both sides, then walk away. (The
	 * Tries and the reads below must fit in it: 1 s did not, once, on a
	 * busy 2-core machine running ASan builds.) */
	tu_begin_and_try(c, 3000, &a, "alice", &b, "bob", 100, gid);
	x = it_bank_account(&a, "alice");
	y = it_bank_account(&b, "bob");
	cr_assert_eq(x.frozen, 100, "the Try must have reserved the money");
	cr_assert_eq(y.incoming, 100);

	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__ROLLED_BACK, 20000);
	cr_assert_neq(tx->reason[0], '\0', "a deadline rollback says why");
	for (i = 0; i < tx->n_branches; i++)
		cr_assert_eq(tx->branches[i]->state,
			     SETTLE__V1__BRANCH_STATE__CANCELLED);
	for (i = 0; i < tx->n_history; i++)
		if (strstr(tx->history[i]->kind, "cancel"))
			cancels++;
	cr_assert_geq(cancels, 2, "history must show both cancels");
	settle_tx_info_free(tx);
	tu_assert_balances(&a, &b, 1000, 500);
	settle_client_close(c);
}

Test(tcc, retry_answers_are_retried_until_confirmed)
{
	struct it_node n;
	struct it_bank a, b;
	char gid[SETTLE_GID_BUFSIZE];
	Settle__V1__TxInfo *tx;
	uint32_t attempts = 0;
	size_t i;

	it_node_start(&n, 1,
		      (const char *const[]){"--retry-base", "50ms",
					    "--retry-max", "200ms", NULL});
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	/* bob's bank answers RETRY to its first three phase-two calls. */
	it_bank_start(&b, "bank-b", "bob=500",
		      (const char *const[]){"--retry-first", "3", NULL});

	cr_assert_eq(it_transfer(&n, &a, "alice", &b, "bob", 100, NULL, gid,
				 sizeof(gid)),
		     0);
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__COMMITTED, 30000);
	for (i = 0; i < tx->n_branches; i++) {
		cr_assert_eq(tx->branches[i]->state,
			     SETTLE__V1__BRANCH_STATE__CONFIRMED);
		if (tx->branches[i]->attempts > attempts)
			attempts = tx->branches[i]->attempts;
	}
	cr_assert_geq(attempts, 4, "bob's confirm took %u attempts, want >= 4",
		      attempts);
	settle_tx_info_free(tx);
	tu_assert_balances(&a, &b, 900, 600);
}

Test(tcc, failed_confirm_shows_as_stuck_with_its_reason)
{
	struct it_node n;
	struct it_bank a, b;
	char gid[SETTLE_GID_BUFSIZE], *out, *err;
	Settle__V1__TxInfo *tx;

	it_node_start(&n, 1, NULL);
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(&b, "bank-b", "bob=500",
		      (const char *const[]){"--fail-confirm", NULL});

	cr_assert_eq(it_transfer(&n, &a, "alice", &b, "bob", 100, NULL, gid,
				 sizeof(gid)),
		     0);
	tx = tu_wait(&n, gid, tu_is_stuck, 20000);
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTING);
	settle_tx_info_free(tx);

	cr_assert_eq(
	    tu_ctl(&n, &out, &err,
		   (const char *const[]){"tx", "list", "--stuck", NULL}),
	    0, "%s", err);
	cr_assert_not_null(strstr(out, gid), "%s", out);
	cr_assert_not_null(strstr(out, "STUCK"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(
	    tu_ctl(&n, &out, &err,
		   (const char *const[]){"--json", "tx", "show", gid, NULL}),
	    0, "%s", err);
	cr_assert_not_null(strstr(out, "\"stuck\":true"), "%s", out);
	cr_assert_not_null(strstr(out, "\"state\":\"failed\""), "%s", out);
	cr_assert_not_null(strstr(out, "injected failure"),
			   "the participant's reason must be shown: %s", out);
	free(out);
	free(err);
	/* alice's side was confirmed; bob's is waiting for an operator. */
	cr_assert_eq(it_bank_account(&a, "alice").balance, 900);
	cr_assert_eq(it_bank_account(&b, "bob").incoming, 100);
}

Test(tcc, settlectl_bad_input_changes_nothing)
{
	static const char *const bad[][6] = {
	    {"tx", "drop", "x"},
	    {"tx", "list", "--state", "finished"},
	    {"tx", "list", "--older-than", "5"},
	    {"tx", "show"},
	    {"status", "--stuck"},
	    {"tx", "retry"},
	    {"tx", "retry", "--stuck", "--branch", "2"},
	    {"tx", "list", "--yes"},
	    {"status", "--dry-run"},
	    {"tx", "retry", "--stuck", "--participant", "no-port"},
	    {"tx", "retry", "--stuck", "--after", "x"},
	};
	struct it_node n;
	char *out, *err, *before, *after;
	size_t i;

	it_node_start(&n, 1, NULL);
	/* A new leader raises the cluster's feature level with a command of
	 * its own a moment after it starts: wait for it, or that command
	 * moves the log between the two statuses. */
	for (i = 0;; i++) {
		cr_assert_eq(
		    tu_ctl(&n, &before, &err,
			   (const char *const[]){"--json", "status", NULL}),
		    0);
		free(err);
		if (it_json_num(before, "cluster_feature_level") ==
		    it_json_num(before, "feature_level"))
			break;
		cr_assert_lt(i, 100, "the feature level stays below: %s",
			     before);
		free(before);
		usleep(100 * 1000);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(tu_ctl(&n, &out, &err, bad[i]), 2, "case %zu: %s",
			     i, err);
		cr_assert_str_eq(out, "");
		free(out);
		free(err);
	}
	cr_assert_eq(tu_ctl(&n, &after, &err,
			    (const char *const[]){"--json", "status", NULL}),
		     0);
	free(err);
	cr_assert_eq(it_json_num(before, "last_index"),
		     it_json_num(after, "last_index"),
		     "the raft log moved: %s -> %s", before, after);
	free(before);
	free(after);
}

static int raw_connect(int port)
{
	struct sockaddr_in sa = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	cr_assert(fd >= 0);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	return fd;
}

Test(tcc, hostile_clients_do_not_hurt_others)
{
	static const uint8_t garbage[] =
	    "\x00\x00\x00\x10GET / HTTP/1.1\r\n\r\n";
	static const uint8_t oversized[] = {0xff, 0xff, 0xff, 0xf0, 1, 2, 3};
	static const uint8_t half[] = {0x00, 0x00, 0x01, 0x00, 0x0a};
	struct it_node n;
	struct it_bank a, b;
	char gid[SETTLE_GID_BUFSIZE];
	Settle__V1__TxInfo *tx;
	int g, o, h;

	it_node_start(&n, 1, NULL);
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(&b, "bank-b", "bob=500", NULL);

	g = raw_connect(n.port);
	o = raw_connect(n.port);
	h = raw_connect(n.port);
	cr_assert_eq(write(g, garbage, sizeof(garbage) - 1),
		     (ssize_t)sizeof(garbage) - 1);
	cr_assert_eq(write(o, oversized, sizeof(oversized)),
		     (ssize_t)sizeof(oversized));
	/* A frame announced but never finished: must not block others. */
	cr_assert_eq(write(h, half, sizeof(half)), (ssize_t)sizeof(half));

	cr_assert_eq(
	    it_transfer(&n, &a, "alice", &b, "bob", 100,
			(const char *const[]){"--wait-ms", "10000", NULL}, gid,
			sizeof(gid)),
	    0);
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__COMMITTED, 20000);
	settle_tx_info_free(tx);
	tu_assert_balances(&a, &b, 900, 600);
	cr_assert(it_alive(n.proc), "settled died");
	close(g);
	close(o);
	close(h);
	tu_sleep_ms(100);
	cr_assert(it_alive(n.proc), "settled died after the hostile closes");
}

/*
 * Operators act on many stuck transactions at once, and look first:
 * three transfers whose Confirm at bob's bank ran out of retries
 * (--retry-attempts 2, the bank answering RETRY to its first six phase-two
 * calls) are stuck. `tx retry --stuck --participant BOB --dry-run` lists
 * the three and changes nothing; without --yes and without a terminal it
 * refuses; with --yes it retries each and they commit. --dry-run of tx
 * resolve and of cluster verbs says what would happen and changes
 * nothing.
 */
Test(tcc, bulk_retry_looks_first_and_asks)
{
	struct it_node n;
	struct it_bank a, b;
	char gids[3][SETTLE_GID_BUFSIZE], *out, *err;
	Settle__V1__TxInfo *tx;

	it_node_start(&n, 1,
		      (const char *const[]){"--retry-attempts", "2",
					    "--retry-base", "50ms",
					    "--retry-max", "100ms", NULL});
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(&b, "bank-b", "bob=0",
		      (const char *const[]){"--retry-first", "6", NULL});
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(
		    it_transfer(&n, &a, "alice", &b, "bob", 10,
				(const char *const[]){"--wait-ms", "0", NULL},
				gids[i], sizeof(gids[i])),
		    0);
	}
	for (int i = 0; i < 3; i++) {
		tx = tu_wait(&n, gids[i], tu_is_stuck, 20000);
		settle_tx_info_free(tx);
	}

	/* Look first: the three, nothing changed. */
	cr_assert_eq(tu_ctl(&n, &out, &err,
			    (const char *const[]){"tx", "retry", "--stuck",
						  "--participant", b.endpoint,
						  "--dry-run", NULL}),
		     0, "%s", err);
	for (int i = 0; i < 3; i++)
		cr_expect_not_null(strstr(out, gids[i]), "%s", out);
	cr_expect_not_null(strstr(out, "would make 3 retries"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(tu_ctl(&n, &out, &err,
			    (const char *const[]){"--dry-run", "tx", "resolve",
						  gids[0], "--branch", "2",
						  "--reason", "by hand", NULL}),
		     0, "%s", err);
	cr_expect_not_null(strstr(out, "would mark branch 2"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(tu_ctl(&n, &out, &err,
			    (const char *const[]){"--dry-run", "cluster",
						  "remove", "1", NULL}),
		     1, "%s", err);
	cr_expect_not_null(strstr(out, "would be refused: node 1 leads"), "%s",
			   out);
	free(out);
	free(err);
	cr_assert_eq(
	    tu_ctl(&n, &out, &err,
		   (const char *const[]){"--dry-run", "cluster", "add", "2",
					 "127.0.0.1:9", "127.0.0.1:8", NULL}),
	    0, "%s", err);
	cr_expect_not_null(strstr(out, "would add node 2"), "%s", out);
	free(out);
	free(err);
	for (int i = 0; i < 3; i++) {
		tx = tu_wait(&n, gids[i], tu_is_stuck, 1000);
		cr_expect_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTING,
			     "a dry run changed %s", gids[i]);
		settle_tx_info_free(tx);
	}

	/* No terminal to ask, no --yes: refused, nothing done. */
	cr_assert_eq(
	    tu_ctl(&n, &out, &err,
		   (const char *const[]){"tx", "retry", "--stuck",
					 "--participant", b.endpoint, NULL}),
	    2, "%s%s", out, err);
	cr_expect_not_null(strstr(err, "--yes"), "%s", err);
	free(out);
	free(err);
	tx = tu_wait(&n, gids[0], tu_is_stuck, 1000);
	settle_tx_info_free(tx);

	cr_assert_eq(
	    tu_ctl(&n, &out, &err,
		   (const char *const[]){"tx", "retry", "--stuck",
					 "--participant", b.endpoint, "--yes",
					 "--reason", "bank-b is back", NULL}),
	    0, "%s%s", out, err);
	cr_expect_not_null(strstr(out, "3 retries made, 0 refused"), "%s", out);
	free(out);
	free(err);
	for (int i = 0; i < 3; i++) {
		tx = tu_wait_final(&n, gids[i], SETTLE__V1__TX_STATE__COMMITTED,
				   20000);
		settle_tx_info_free(tx);
	}
	tu_assert_balances(&a, &b, 970, 30);
}

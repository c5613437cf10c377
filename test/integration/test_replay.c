/*
 * A data directory written by an earlier release still replays (issue 12):
 * test/fixtures/raft-log-d0da617.tar.gz is the raft log of a one-node
 * cluster of the release before feature levels, with 1,309 finished TCC
 * and saga transactions (test/fixtures/README.md). Today's settled starts
 * on it with no store, applies every old entry into a new store, ends
 * with the same transactions, raises the feature level, commits new work,
 * and restarts on what it wrote.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coord_util.h"
#include "harness.h"
#include "wal/fsm.h"

#define FIXTURE_FINISHED   1309
#define FIXTURE_LAST_INDEX 5238

TestSuite(replay, .init = cu_setup, .fini = it_teardown, .timeout = 180);

static Settle__V1__StatusResponse *status_of(const struct it_node *n)
{
	struct cu_conn c;
	Settle__V1__StatusResponse *st;

	cu_connect(&c, n->endpoint, 5000);
	st = cu_status(&c);
	cu_close(&c);
	return st;
}

/* Wait until n reports what wanted says; the last status. */
static Settle__V1__StatusResponse *
wait_status(const struct it_node *n,
	    bool (*wanted)(const Settle__V1__StatusResponse *), int ms)
{
	for (int waited = 0;; waited += 100) {
		Settle__V1__StatusResponse *st = status_of(n);

		if (wanted(st) || waited >= ms)
			return st;
		settle__v1__status_response__free_unpacked(st, NULL);
		usleep(100 * 1000);
	}
}

static bool replayed(const Settle__V1__StatusResponse *st)
{
	return st->applied_index >= FIXTURE_LAST_INDEX &&
	       st->cluster_feature_level == FSM_LEVEL;
}

/* A transaction with no branch: BEGIN, then COMMIT; its state then. */
static int commit_one(const struct it_node *n)
{
	struct cu_conn c;
	uint8_t id[16];
	char gid[256];
	int state = 0;
	bool finished = false;

	cu_connect(&c, n->endpoint, 5000);
	cu_cmd_id(id);
	cr_assert_eq(cu_begin(&c, id, "", 30000, gid, NULL),
		     SETTLE__V1__CODE__OK);
	cu_cmd_id(id);
	cr_assert_eq(
	    cu_decide(&c, true, id, gid, true, 5000, &state, &finished),
	    SETTLE__V1__CODE__OK);
	cu_close(&c);
	return state;
}

Test(replay, log_of_the_release_before_feature_levels)
{
	char data[600], tarball[600], ids[8] = "1", raft[32];
	struct it_node n;
	char *out = NULL, *err = NULL;

	memset(&n, 0, sizeof(n));
	snprintf(tarball, sizeof(tarball),
		 "%s/test/fixtures/raft-log-d0da617.tar.gz", it_srcdir());
	char *tar[] = {"/bin/tar",	 "xzf", tarball, "-C",
		       (char *)it_dir(), NULL};
	cr_assert_eq(it_run(tar, &out, &err, 30000), 0, "tar: %s", err);
	free(out);
	free(err);
	snprintf(data, sizeof(data), "%s/node1", it_dir());
	snprintf(n.data, sizeof(n.data), "%s", data);
	n.port = it_free_port_pair();
	snprintf(n.endpoint, sizeof(n.endpoint), "127.0.0.1:%d", n.port);
	snprintf(raft, sizeof(raft), "127.0.0.1:%d", n.port + 1);
	/* The log's transactions finished when it was recorded: a retention
	 * of 24 h (the default) lets the GC take them from a day after. */
	char *argv[] = {(char *)it_bin("settled"),
			"--id",
			ids,
			"--data",
			data,
			"--listen",
			n.endpoint,
			"--raft",
			raft,
			"--retention",
			"36500d",
			NULL};
	n.proc = it_spawn("node1", argv);
	it_node_wait_leader(&n, 60000);

	Settle__V1__StatusResponse *st = wait_status(&n, replayed, 30000);
	cr_expect_geq(st->applied_index, FIXTURE_LAST_INDEX);
	cr_expect_eq(st->finished, FIXTURE_FINISHED,
		     "every transaction of the old log, finished");
	cr_expect_eq(st->active, 0);
	cr_expect_eq(st->stuck, 0);
	cr_expect_eq(st->cluster_feature_level, FSM_LEVEL);
	settle__v1__status_response__free_unpacked(st, NULL);

	cr_expect_eq(commit_one(&n), SETTLE__V1__TX_STATE__COMMITTED);

	/* Again on the store this binary wrote, the log's tail replayed. */
	it_stop(n.proc);
	it_restart(n.proc);
	it_node_wait_leader(&n, 60000);
	st = status_of(&n);
	cr_expect_eq(st->finished, FIXTURE_FINISHED + 1);
	cr_expect_eq(st->cluster_feature_level, FSM_LEVEL);
	settle__v1__status_response__free_unpacked(st, NULL);
	cr_expect_eq(commit_one(&n), SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect(!cu_log_has_sanitizer_report(n.proc->log, NULL, 0));
}

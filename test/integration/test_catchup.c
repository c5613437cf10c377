/*
 * A follower that was down while the cluster compacted its log catches up
 * by snapshot, and then holds every transaction: with a tiny snapshot
 * threshold the leader no longer has the entries the follower missed, so
 * raft must send it a snapshot, which the FSM restores into LMDB. raft's
 * own snapshot file is a manifest: the leader sends the checkpoint file it
 * names (coordinator/snapshot.c).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "coord_util.h"
#include "tcc_util.h"

#define N   3
#define TXS 150

struct member {
	int port;
	char endpoint[32];
	char data[512];
	struct it_proc *proc;
};

static struct member m[N];
static char peers[512];

static void member_start(int i)
{
	char ids[8], raft[32], name[16];
	char *argv[] = {(char *)it_bin("settled"),
			"--id",
			ids,
			"--data",
			m[i].data,
			"--listen",
			m[i].endpoint,
			"--raft",
			raft,
			"--peers",
			peers,
			"--snapshot-threshold",
			"32",
			"--snapshot-trailing",
			"8",
			NULL};

	snprintf(ids, sizeof(ids), "%d", i + 1);
	snprintf(raft, sizeof(raft), "127.0.0.1:%d", m[i].port + 1);
	snprintf(name, sizeof(name), "member%d", i + 1);
	m[i].proc = it_spawn(name, argv);
	it_wait_port(m[i].proc, m[i].port, 20000);
}

static Settle__V1__StatusResponse *status_of(int i)
{
	struct cu_conn c;
	Settle__V1__StatusResponse *st;

	cu_connect(&c, m[i].endpoint, 5000);
	st = cu_status(&c);
	cu_close(&c);
	return st;
}

/* Index of the ready leader among the running members, waiting for one. */
static int find_leader(const bool *down)
{
	for (int tries = 0; tries < 200; tries++) {
		for (int i = 0; i < N; i++) {
			Settle__V1__StatusResponse *st;
			bool lead;

			if (down[i])
				continue;
			st = status_of(i);
			lead = strcmp(st->role, "leader") == 0;
			settle__v1__status_response__free_unpacked(st, NULL);
			if (lead)
				return i;
		}
		tu_sleep_ms(100);
	}
	cr_assert_fail("no leader elected in 20 s");
	return -1;
}

static void begin_commit(struct cu_conn *c, const char *gid)
{
	uint8_t id[16];
	int code;

	/* A new leader answers UNAVAILABLE until its barrier is applied. */
	for (int tries = 0;; tries++) {
		cu_cmd_id(id);
		code = cu_begin(c, id, gid, 60000, NULL, NULL);
		if (code != SETTLE__V1__CODE__UNAVAILABLE || tries > 50)
			break;
		tu_sleep_ms(50);
	}
	cr_assert_eq(code, 0, "begin %s: code %d", gid, code);
	cu_cmd_id(id);
	cr_assert_eq(cu_decide(c, true, id, gid, false, 0, NULL, NULL), 0,
		     "commit %s", gid);
}

TestSuite(catchup, .init = cu_setup, .fini = it_teardown, .timeout = 120);

Test(catchup, lagging_follower_is_sent_a_snapshot)
{
	bool down[N] = {false};
	struct cu_conn c;
	char gid[64];
	int leader, lag, next;
	uint64_t target;
	Settle__V1__StatusResponse *st;
	Settle__V1__TxInfo *tx;

	peers[0] = '\0';
	for (int i = 0; i < N; i++) {
		m[i].port = it_free_port_pair();
		snprintf(m[i].endpoint, sizeof(m[i].endpoint), "127.0.0.1:%d",
			 m[i].port);
		snprintf(m[i].data, sizeof(m[i].data), "%s/member%d", it_dir(),
			 i + 1);
		snprintf(peers + strlen(peers), sizeof(peers) - strlen(peers),
			 "%s%d=127.0.0.1:%d=127.0.0.1:%d", i ? "," : "", i + 1,
			 m[i].port + 1, m[i].port);
	}
	for (int i = 0; i < N; i++)
		member_start(i);
	leader = find_leader(down);

	/* Take one follower down, and move the cluster far past it. */
	lag = (leader + 1) % N;
	it_kill(m[lag].proc);
	down[lag] = true;
	cu_connect(&c, m[leader].endpoint, 5000);
	for (int i = 0; i < TXS; i++) {
		snprintf(gid, sizeof(gid), "catchup-%03d", i);
		begin_commit(&c, gid);
	}
	cu_close(&c);
	st = status_of(leader);
	target = st->applied_index;
	settle__v1__status_response__free_unpacked(st, NULL);
	cr_assert_gt(target, 2 * TXS);

	/* Back up: it must reach the leader's applied index, and the only
	 * way there is a snapshot (the entries it missed are compacted). */
	it_restart(m[lag].proc);
	it_wait_port(m[lag].proc, m[lag].port, 20000);
	down[lag] = false;
	for (int tries = 0;; tries++) {
		uint64_t applied;

		st = status_of(lag);
		applied = st->applied_index;
		settle__v1__status_response__free_unpacked(st, NULL);
		if (applied >= target)
			break;
		/* 60 s: if the leader's first InstallSnapshot is lost (the
		 * follower still starting, a loaded machine), raft 0.15
		 * sends the next one only after its 30 s install timeout. */
		cr_assert_lt(tries, 600, "follower stuck at %llu of %llu",
			     (unsigned long long)applied,
			     (unsigned long long)target);
		tu_sleep_ms(100);
	}
	cr_assert(cu_log_has(m[lag].proc->log, "restored snapshot"),
		  "the follower caught up without a snapshot");
	/* raft holds a manifest; the leader sent the checkpoint it names. */
	cr_assert(cu_log_has(m[leader].proc->log, "read from its checkpoint"),
		  "the leader did not read the snapshot from its checkpoint");

	/* Make the caught-up node the only copy that matters: stop the
	 * old leader; the other two elect a leader and every transaction is
	 * there, committed. */
	it_kill(m[leader].proc);
	down[leader] = true;
	next = find_leader(down);
	cu_connect(&c, m[next].endpoint, 5000);
	for (int i = 0; i < TXS; i += 7) {
		int code;

		snprintf(gid, sizeof(gid), "catchup-%03d", i);
		for (int tries = 0;; tries++) {
			code = cu_query(&c, gid, &tx);
			if (code != SETTLE__V1__CODE__UNAVAILABLE || tries > 50)
				break;
			tu_sleep_ms(50);
		}
		cr_assert_eq(code, 0, "query %s: code %d", gid, code);
		cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTED, "%s",
			     gid);
		settle_tx_info_free(tx);
	}
	cu_close(&c);
}

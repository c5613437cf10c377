/*
 * A follower that was down while the cluster compacted its log catches up
 * by snapshot, and then holds every transaction: with a tiny snapshot
 * threshold the leader no longer has the entries the follower missed, so
 * raft must send it a snapshot, which the FSM restores into LMDB. raft's
 * own snapshot file is a manifest: the leader sends the checkpoint file it
 * names (coordinator/snapshot.c).
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "coord_util.h"
#include "tcc_util.h"
#include "wal/fsm.h"

/* What the leader logs once the cluster runs this release's top level
 * (feature level 5, delta snapshots, or above). */
#define LEVEL_STR(x)  #x
#define LEVEL_XSTR(x) LEVEL_STR(x)
#define TOP_LEVEL_LOG "runs at feature level " LEVEL_XSTR(FSM_LEVEL)

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

/* --feature-level for the members, when a test sets it (each test runs
 * in a process of its own). */
static const char *feature_level;

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
			feature_level != NULL ? "--feature-level" : NULL,
			(char *)feature_level,
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

/* Start the three members; returns the leader's index. */
static int cluster_start(bool *down)
{
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
	return find_leader(down);
}

/* Commit n transactions named PREFIX-NNN through the leader; returns its
 * applied index after them. */
static uint64_t commit_many(int leader, const char *prefix, int n)
{
	Settle__V1__StatusResponse *st;
	struct cu_conn c;
	uint64_t applied;
	char gid[64];

	cu_connect(&c, m[leader].endpoint, 5000);
	for (int i = 0; i < n; i++) {
		snprintf(gid, sizeof(gid), "%s-%03d", prefix, i);
		begin_commit(&c, gid);
	}
	cu_close(&c);
	st = status_of(leader);
	applied = st->applied_index;
	settle__v1__status_response__free_unpacked(st, NULL);
	return applied;
}

/* Whether member i has applied target within timeout_ms. */
static bool caught_up(int i, uint64_t target, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 100) {
		Settle__V1__StatusResponse *st = status_of(i);
		uint64_t applied = st->applied_index;

		settle__v1__status_response__free_unpacked(st, NULL);
		if (applied >= target)
			return true;
		tu_sleep_ms(100);
	}
	return false;
}

Test(catchup, lagging_follower_is_sent_a_snapshot)
{
	bool down[N] = {false};
	struct cu_conn c;
	char gid[64];
	int leader, lag, next;
	uint64_t target;
	Settle__V1__TxInfo *tx;

	leader = cluster_start(down);
	/* Snapshots are deltas from feature level 5 on, which needs every
	 * member up to be raised. */
	cr_assert(cu_wait_log(m[leader].proc->log, TOP_LEVEL_LOG, 20000),
		  "the cluster did not reach feature level %d", FSM_LEVEL);

	/* Take one follower down, and move the cluster far past it. */
	lag = (leader + 1) % N;
	it_kill(m[lag].proc);
	down[lag] = true;
	target = commit_many(leader, "catchup", TXS);
	cr_assert_gt(target, 2 * TXS);

	/* Back up: it must reach the leader's applied index, and the only
	 * way there is a snapshot (the entries it missed are compacted). */
	it_restart(m[lag].proc);
	it_wait_port(m[lag].proc, m[lag].port, 20000);
	down[lag] = false;
	/* If the leader's first InstallSnapshot is lost (the follower still
	 * starting, or writing a snapshot of its own), raft 0.15 sends the
	 * next only after the install timeout (5 s for a snapshot this
	 * small, coord_install_timeout_ms()); 60 s leaves a loaded machine
	 * room for several. */
	cr_assert(caught_up(lag, target, 60000), "follower stuck below %llu",
		  (unsigned long long)target);
	cr_assert(cu_log_has(m[lag].proc->log, "restored snapshot"),
		  "the follower caught up without a snapshot");
	/* One machine, one clock: the backlog's old stamps are not a skew. */
	cr_assert_not(cu_log_has(m[lag].proc->log, "clock is about"),
		      "a false clock warning on the follower");
	/* raft holds a manifest; the leader sent the checkpoint it names
	 * and the journal after it (a delta), which the follower restored
	 * and replayed. */
	cr_assert(cu_log_has(m[leader].proc->log,
			     "read from its checkpoint and journal"),
		  "the leader did not read the snapshot from its checkpoint "
		  "and journal");
	cr_assert(cu_log_has(m[lag].proc->log, "bytes of journal"),
		  "the follower did not restore a delta snapshot");

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

/*
 * The leader's checkpoints are gone (a disk error, an operator's mistake)
 * when a follower needs a snapshot: the send fails with a message naming
 * the file, nothing else breaks, and once the leader has taken its next
 * snapshot the follower gets that one. That one is full (a delta would
 * stand on a checkpoint that is gone) and comes within
 * --snapshot-threshold entries, not the paced number: with snapshots
 * staggered by node id the leader's paced next one could lie past every
 * commit of the test. Run under ASan, this is also the
 * test of the failed send's cleanup. raft 0.15 leaves the follower in its
 * snapshot state after a failed snapshot_get (its callback aborts before
 * it looks the follower up) and tries again only after its
 * install-snapshot timeout (5 s here, coord_install_timeout_ms()).
 */
Test(catchup, a_missing_checkpoint_fails_the_send_not_the_leader)
{
	bool down[N] = {false};
	char dir[600], path[1200], report[1024];
	struct dirent *e;
	uint64_t target;
	int leader, lag, removed = 0;
	DIR *d;

	leader = cluster_start(down);
	lag = (leader + 1) % N;
	it_kill(m[lag].proc);
	down[lag] = true;
	commit_many(leader, "gone", TXS);
	/* A snapshot that the last commits started is written by now. */
	tu_sleep_ms(1000);

	snprintf(dir, sizeof(dir), "%s/checkpoints", m[leader].data);
	cr_assert_not_null(d = opendir(dir), "%s", dir);
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, "ckpt-", 5) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		cr_assert_eq(unlink(path), 0, "%s", path);
		removed++;
	}
	closedir(d);
	cr_assert_gt(removed, 0, "the leader had no checkpoint");

	it_restart(m[lag].proc);
	it_wait_port(m[lag].proc, m[lag].port, 20000);
	if (!cu_wait_log(m[leader].proc->log, "No such file", 20000)) {
		it_show_log(m[leader].proc);
		cr_assert_fail("no failed send logged in 20 s");
	}

	cr_assert(cu_log_has(m[leader].proc->log,
			     "the next snapshot, a full one, comes within "
			     "32 entries"),
		  "the failed send did not bring the next snapshot closer");
	/* The leader goes on committing, snapshots again, and the follower
	 * gets the new snapshot. */
	target = commit_many(leader, "after", TXS / 3);
	cr_assert(caught_up(lag, target, 60000), "follower stuck below %llu",
		  (unsigned long long)target);
	cr_assert(cu_log_has(m[lag].proc->log, "restored snapshot"),
		  "the follower caught up without a snapshot");
	it_stop(m[leader].proc);
	cr_assert_not(cu_log_has_sanitizer_report(m[leader].proc->log, report,
						  sizeof(report)),
		      "sanitizer report: %s", report);
}

/* Abort every TCP connection to or from local port PORT (ss -K: root,
 * and a kernel with socket destroy). Whether it could. */
static bool cut_connections(int port)
{
	char cmd[200];

	snprintf(cmd, sizeof(cmd),
		 "ss -K '( sport = :%d or dport = :%d )' >/dev/null 2>&1", port,
		 port);
	return system(cmd) == 0;
}

/* Whether cut_connections() works here: a connection of our own on a free
 * port, cut, must fail its next read. */
static bool can_cut_connections(void)
{
	struct sockaddr_in a = {0};
	socklen_t len = sizeof(a);
	int l, cfd, sfd;
	char b;
	bool ok;

	if (geteuid() != 0)
		return false;
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(l, 0);
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(l, 1), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(cfd, (struct sockaddr *)&a, sizeof(a)), 0);
	sfd = accept(l, NULL, NULL);
	cr_assert_geq(sfd, 0);
	ok = cut_connections(ntohs(a.sin_port)) && recv(cfd, &b, 1, 0) < 0;
	close(cfd);
	close(sfd);
	close(l);
	return ok;
}

/*
 * The follower is still writing a snapshot of its own (held 8 s by
 * killshim, as a disk saturated by other programs can do) when the
 * leader, which compacted its log past it, sends it one. raft 0.15
 * ignores that InstallSnapshot ("already taking or installing snapshot")
 * and the leader sends it again only after its install timeout: 30 s by
 * default, which made a follower killed under load miss the 60 s its
 * test allowed. The node sets it from the snapshot's size (5 s for a
 * small one): the follower catches up in well under 30 s. Only a full
 * snapshot, written within raft's snapshot cycle, keeps a node that busy:
 * the cluster runs at feature level 4. From level 5 a node writes its
 * checkpoints in the background, and raft installs the leader's snapshot
 * at once.
 */
Test(catchup, a_follower_writing_its_own_snapshot_gets_the_leaders_later)
{
	bool down[N] = {false};
	Settle__V1__StatusResponse *st;
	uint64_t target;
	int leader, lag;

	if (!can_cut_connections())
		cr_skip_test("needs root and ss -K (socket destroy) to cut "
			     "connections");
	feature_level = "4";
	leader = cluster_start(down);
	lag = (leader + 1) % N;
	it_kill(m[lag].proc);
	it_preload_killshim(m[lag].proc);
	it_setenv(m[lag].proc, "SETTLE_SLOW_CHECKPOINT_MS=8000");
	/* raft's trace says when it ignores an InstallSnapshot. */
	it_setenv(m[lag].proc, "LIBRAFT_TRACE=1");
	it_restart(m[lag].proc);
	it_wait_port(m[lag].proc, m[lag].port, 20000);
	target = commit_many(leader, "own", 10);
	cr_assert(caught_up(lag, target, 60000), "follower stuck below %llu",
		  (unsigned long long)target);

	/* Past the follower's snapshot threshold: it starts one, held. */
	commit_many(leader, "more", 40);
	cr_assert(cu_wait_log(m[lag].proc->log, "killshim: holding", 10000),
		  "the follower took no snapshot");
	/* Cut off from the leader while the leader compacts its log past
	 * it (raft_uv drops what it cannot send); then it is sent the
	 * leader's snapshot, its own still held. */
	for (int i = 0; i < 15; i++) {
		char prefix[16];

		cr_assert(cut_connections(m[lag].port + 1));
		snprintf(prefix, sizeof(prefix), "past%d", i);
		target = commit_many(leader, prefix, 10);
	}
	cr_assert(caught_up(lag, target, 25000),
		  "follower still below %llu 25 s later",
		  (unsigned long long)target);
	cr_assert(cu_log_has(m[lag].proc->log,
			     "already taking or installing snapshot"),
		  "the leader's snapshot did not come while the follower "
		  "took its own");
	cr_assert(cu_log_has(m[lag].proc->log, "restored snapshot"),
		  "the follower caught up without a snapshot");
	cr_assert_not(cu_log_has(m[lag].proc->log, "clock is about"),
		      "a false clock warning on the follower");
	st = status_of(lag);
	cr_assert_str_eq(st->role, "follower");
	settle__v1__status_response__free_unpacked(st, NULL);
}

/* Member i's TCP connections to or from a raft port, each checked for
 * TCP_NODELAY (borrowed with pidfd_getfd: root, Linux 5.6). Returns how
 * many it saw, -1 if it cannot look; *delayed counts those without. */
static int raft_streams(int i, int *delayed)
{
	char dir[64], path[400], target[64];
	int pidfd, seen = 0;
	struct dirent *e;
	DIR *d;

	*delayed = 0;
	pidfd = (int)syscall(SYS_pidfd_open, m[i].proc->pid, 0);
	if (pidfd < 0)
		return -1;
	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)m[i].proc->pid);
	d = opendir(dir);
	cr_assert_not_null(d, "%s", dir);
	while ((e = readdir(d)) != NULL) {
		struct sockaddr_in me, peer;
		socklen_t len = sizeof(me), plen = sizeof(peer);
		int fd, on = 0, raft = 0;
		socklen_t olen = sizeof(on);
		ssize_t n;

		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strncmp(target, "socket:", 7) != 0)
			continue;
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(e->d_name), 0);
		if (fd < 0) {
			closedir(d);
			close(pidfd);
			return -1;
		}
		if (getsockname(fd, (struct sockaddr *)&me, &len) == 0 &&
		    me.sin_family == AF_INET &&
		    getpeername(fd, (struct sockaddr *)&peer, &plen) == 0) {
			for (int j = 0; j < N; j++)
				raft += ntohs(me.sin_port) == m[j].port + 1 ||
					ntohs(peer.sin_port) == m[j].port + 1;
		}
		if (raft > 0) {
			seen++;
			if (getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on,
				       &olen) != 0 ||
			    !on)
				(*delayed)++;
		}
		close(fd);
	}
	closedir(d);
	close(pidfd);
	return seen;
}

/*
 * raft_uv leaves Nagle's algorithm on, and its connections carry messages
 * one way: a small AppendEntries, or its result, waited up to 40 ms for
 * the ACK of the one before (coordinator/raft_tcp.c). Every raft stream of
 * every member must have TCP_NODELAY.
 */
Test(catchup, raft_streams_send_without_delay)
{
	bool down[N] = {false};
	int leader, delayed, seen;

	leader = cluster_start(down);
	commit_many(leader, "nodelay", 10);
	for (int i = 0; i < N; i++) {
		seen = raft_streams(i, &delayed);
		if (seen < 0)
			cr_skip_test(
			    "cannot borrow a node's sockets (pidfd_getfd: "
			    "%s)",
			    strerror(errno));
		/* The leader has a connection out to each follower and one
		 * in from each; a follower, those with the leader. */
		cr_assert_geq(seen, i == leader ? 4 : 2,
			      "member %d: %d raft streams", i + 1, seen);
		cr_assert_eq(delayed, 0,
			     "member %d: %d of its %d raft streams have "
			     "Nagle on",
			     i + 1, delayed, seen);
	}
}

/* The index of member i's first snapshot, from its log; 0 if none. */
static unsigned long long first_snapshot(int i)
{
	FILE *f = fopen(m[i].proc->log, "r");
	char line[1024];
	unsigned long long at = 0;

	cr_assert_not_null(f, "%s", m[i].proc->log);
	while (at == 0 && fgets(line, sizeof(line), f) != NULL) {
		const char *p = strstr(line, "fsm: snapshot at ");
		char *end;

		if (p == NULL)
			continue;
		at = strtoull(p + 17, &end, 10);
		if (strncmp(end, ": ", 2) != 0 || strstr(end, " bytes") == NULL)
			at = 0; /* not one it took */
	}
	fclose(f);
	return at;
}

/*
 * The members do not snapshot at the same index (node.c): with one
 * threshold all three did, and their snapshots' barriers stalled commits
 * at once. Member i's first comes a quarter of the threshold (32 here)
 * per id later.
 */
Test(catchup, members_snapshot_at_different_indexes)
{
	bool down[N] = {false};
	unsigned long long at[N];
	int leader;

	leader = cluster_start(down);
	commit_many(leader, "stagger", 60);
	for (int i = 0; i < N; i++) {
		for (int waited = 0; (at[i] = first_snapshot(i)) == 0;
		     waited++) {
			cr_assert_lt(waited, 100, "member %d took no snapshot",
				     i + 1);
			tu_sleep_ms(100);
		}
		cr_assert_geq(at[i], 32 + 8 * (unsigned long long)i,
			      "member %d's first snapshot at %llu", i + 1,
			      at[i]);
	}
	/* A follower applies what one AppendEntries brought in one run and
	 * raft checks the threshold after it: a run that crosses two
	 * members' thresholds puts them at the same index (seen: 38, 55,
	 * 55). The first and the last still differ. */
	cr_assert(at[0] <= at[1] && at[1] <= at[2] && at[0] < at[2],
		  "first snapshots at %llu, %llu, %llu", at[0], at[1], at[2]);
}

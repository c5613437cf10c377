/*
 * Durability across restarts of a real settled: a SIGTERM under load stops
 * it cleanly (exit 0, no sanitizer report) and a restart on the same data
 * finds every transaction with its history; a SIGKILL in the middle of
 * concurrent begins and commits loses nothing that was acknowledged.
 *
 * Snapshots are made frequent (--snapshot-threshold) so that restarts also
 * go through snapshot restore and log replay. A SIGKILL while a snapshot's
 * checkpoint is written leaves nothing behind, and a lost store is rebuilt
 * from the checkpoint.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coord_util.h"
#include "harness.h"
#include "tcc_util.h"
#include "wal/fsm.h"

/* What the leader logs once the cluster runs this release's top level
 * (feature level 5, delta snapshots, or above). */
#define LEVEL_STR(x)  #x
#define LEVEL_XSTR(x) LEVEL_STR(x)
#define TOP_LEVEL_LOG "runs at feature level " LEVEL_XSTR(FSM_LEVEL)

TestSuite(coord_restart, .init = cu_setup, .fini = it_teardown, .timeout = 90);

static const char *const node_args[] = {"--snapshot-threshold", "64",
					"--snapshot-trailing", "16", NULL};

/* ---- Load from several threads ------------------------------------------ */

#define MAX_THREADS 8
#define PER_THREAD  50

enum { NONE, BEGUN, COMMITTED };

struct load {
	const char *endpoint;
	char prefix[16];
	int thread;
	int acked[PER_THREAD]; /* NONE, BEGUN or COMMITTED, as answered */
	atomic_int *commits;   /* shared count of acknowledged commits */
};

/* One request; 0 and the decoded answer, or -1 (connection broke or the
 * node answered an error). No Criterion assertion here: this runs off the
 * test's main thread. */
static int load_call(struct cu_conn *c, int method, const ProtobufCMessage *m,
		     const ProtobufCMessageDescriptor *d, void **out)
{
	struct cu_reply r;
	int ok;

	if (cu_call(c, method, m, &r) != 0)
		return -1;
	ok = r.code == 0;
	if (ok && out != NULL) {
		*out = protobuf_c_message_unpack(d, NULL, r.len, r.body);
		ok = *out != NULL;
	}
	cu_reply_free(&r);
	return ok ? 0 : -1;
}

static void *load_run(void *arg)
{
	struct load *l = arg;
	struct cu_conn c;

	cu_connect(&c, l->endpoint, 5000);
	for (int i = 0; i < PER_THREAD; i++) {
		Settle__V1__BeginRequest b = SETTLE__V1__BEGIN_REQUEST__INIT;
		Settle__V1__CommitRequest cm = SETTLE__V1__COMMIT_REQUEST__INIT;
		Settle__V1__DecisionResponse *dr = NULL;
		uint8_t id[16];
		char gid[64];

		snprintf(gid, sizeof(gid), "%s%d-%d", l->prefix, l->thread, i);
		if (settle_cmd_id(id) != 0)
			break;
		b.cmd_id.data = id;
		b.cmd_id.len = 16;
		b.gid = gid;
		b.timeout_ms = 600000;
		if (load_call(&c, SETTLE__V1__METHOD__BEGIN, &b.base, NULL,
			      NULL) != 0)
			break;
		l->acked[i] = BEGUN;
		if (settle_cmd_id(id) != 0)
			break;
		cm.cmd_id.data = id;
		cm.cmd_id.len = 16;
		cm.gid = gid;
		if (load_call(&c, SETTLE__V1__METHOD__COMMIT, &cm.base,
			      &settle__v1__decision_response__descriptor,
			      (void **)&dr) != 0)
			break;
		if (dr->state == SETTLE__V1__TX_STATE__COMMITTED) {
			l->acked[i] = COMMITTED;
			atomic_fetch_add(l->commits, 1);
		}
		settle__v1__decision_response__free_unpacked(dr, NULL);
	}
	cu_close(&c);
	return NULL;
}

static void load_start(struct load *l, pthread_t *th, int threads,
		       const char *endpoint, const char *prefix,
		       atomic_int *commits)
{
	for (int t = 0; t < threads; t++) {
		memset(&l[t], 0, sizeof(l[t]));
		l[t].endpoint = endpoint;
		snprintf(l[t].prefix, sizeof(l[t].prefix), "%s", prefix);
		l[t].thread = t;
		l[t].commits = commits;
		cr_assert_eq(pthread_create(&th[t], NULL, load_run, &l[t]), 0);
	}
}

static void load_join(pthread_t *th, int threads)
{
	for (int t = 0; t < threads; t++)
		pthread_join(th[t], NULL);
}

/* One round of load from 4 threads, gids prefixed TAG<round>, to its
 * end (l keeps what each thread was answered). */
static void load_round(struct load l[4], const char *endpoint, const char *tag,
		       int round, atomic_int *commits)
{
	char prefix[16];
	pthread_t th[4];

	snprintf(prefix, sizeof(prefix), "%s%d", tag, round);
	load_start(l, th, 4, endpoint, prefix, commits);
	load_join(th, 4);
}

static void wait_commits(atomic_int *commits, int want, int timeout_ms)
{
	for (int waited = 0; atomic_load(commits) < want; waited++) {
		cr_assert_lt(waited, timeout_ms, "only %d commits in %d ms",
			     atomic_load(commits), timeout_ms);
		tu_sleep_ms(1);
	}
}

/* Every acknowledged Begin exists, every acknowledged Commit is
 * COMMITTED; returns how many were acknowledged. */
static int check_acked(struct cu_conn *c, const struct load *l, int threads)
{
	int acked = 0;

	for (int t = 0; t < threads; t++) {
		for (int i = 0; i < PER_THREAD; i++) {
			Settle__V1__TxInfo *tx = NULL;
			char gid[64];
			int code;

			snprintf(gid, sizeof(gid), "%s%d-%d", l[t].prefix, t,
				 i);
			code = cu_query(c, gid, &tx);
			if (l[t].acked[i] == NONE) {
				/* Unanswered: it may or may not exist. */
				cr_assert(code == 0 ||
					      code ==
						  SETTLE__V1__CODE__NOT_FOUND,
					  "%s: code %d", gid, code);
			} else {
				acked++;
				cr_assert_eq(code, 0,
					     "%s: acknowledged Begin lost "
					     "(code %d)",
					     gid, code);
				cr_assert_eq(cu_events(tx, "begin"), 1);
			}
			if (l[t].acked[i] == COMMITTED)
				cr_assert_eq(tx->state,
					     SETTLE__V1__TX_STATE__COMMITTED,
					     "%s: acknowledged Commit lost, "
					     "state %d",
					     gid, tx->state);
			if (tx != NULL)
				settle_tx_info_free(tx);
		}
	}
	return acked;
}

/* ---- Tests ----------------------------------------------------------------
 */

struct seen {
	char gid[SETTLE_GID_BUFSIZE];
	int state;
	size_t events;
	char kinds[256];
};

static void remember(struct cu_conn *c, struct seen *s, const char *gid)
{
	Settle__V1__TxInfo *tx;

	snprintf(s->gid, sizeof(s->gid), "%s", gid);
	cr_assert_eq(cu_query(c, gid, &tx), 0);
	s->state = (int)tx->state;
	s->events = tx->n_history;
	s->kinds[0] = '\0';
	for (size_t i = 0; i < tx->n_history; i++)
		snprintf(s->kinds + strlen(s->kinds),
			 sizeof(s->kinds) - strlen(s->kinds), "%s/%u ",
			 tx->history[i]->kind, tx->history[i]->branch_id);
	settle_tx_info_free(tx);
}

Test(coord_restart, sigterm_under_load_then_everything_is_back)
{
	struct it_node n;
	struct it_bank a, b;
	settle_client *sc;
	struct cu_conn c;
	struct seen seen[5];
	struct load l[MAX_THREADS];
	pthread_t th[MAX_THREADS];
	atomic_int commits = 0;
	char gid[SETTLE_GID_BUFSIZE], report[1024];
	int state = 0;
	bool finished = false;

	it_node_start(&n, 1, node_args);
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(&b, "bank-b", "bob=500", NULL);
	sc = tu_client(&n);
	cu_connect(&c, n.endpoint, 5000);

	/* Two transfers committed, one rolled back, one left ACTIVE, and
	 * one committed whose participant is unreachable (phase two open). */
	for (int i = 0; i < 2; i++) {
		tu_begin_and_try(sc, 30000, &a, "alice", &b, "bob", 10, gid);
		cr_assert_eq(settle_commit(sc, gid, 10000, &state, &finished),
			     0);
		cr_assert(finished);
		remember(&c, &seen[i], gid);
	}
	tu_begin_and_try(sc, 30000, &a, "alice", &b, "bob", 10, gid);
	cr_assert_eq(
	    settle_rollback(sc, gid, "changed my mind", 10000, &state, NULL),
	    0);
	cr_assert_eq(state, SETTLE__V1__TX_STATE__ROLLED_BACK);
	remember(&c, &seen[2], gid);
	tu_begin_and_try(sc, 600000, &a, "alice", &b, "bob", 10, gid);
	remember(&c, &seen[3], gid);
	{
		uint8_t id[16];

		cu_cmd_id(id);
		cr_assert_eq(cu_begin(&c, id, "open-one", 600000, NULL, NULL),
			     0);
		cu_cmd_id(id);
		cr_assert_eq(cu_register(&c, id, "open-one", "127.0.0.1:9", "p",
					 1, NULL),
			     0);
		cu_cmd_id(id);
		cr_assert_eq(
		    cu_decide(&c, true, id, "open-one", false, 0, &state, NULL),
		    0);
		remember(&c, &seen[4], "open-one");
	}
	cu_close(&c);
	settle_client_close(sc);

	/* SIGTERM while eight threads begin and commit: raft has several
	 * appends in flight, the case raft 0.15 mishandles at close. */
	load_start(l, th, MAX_THREADS, n.endpoint, "t", &commits);
	wait_commits(&commits, 80, 30000);
	it_stop(n.proc); /* asserts exit status 0 within 10 s */
	load_join(th, MAX_THREADS);
	if (cu_log_has_sanitizer_report(n.proc->log, report, sizeof(report))) {
		it_show_log(n.proc);
		cr_assert_fail("sanitizer report at stop: %s", report);
	}

	it_restart(n.proc);
	it_node_wait_leader(&n, 20000);
	cu_connect(&c, n.endpoint, 5000);
	for (int i = 0; i < 5; i++) {
		struct seen now;

		remember(&c, &now, seen[i].gid);
		/* The open ones may only have moved on (more attempts). */
		if (i == 4) {
			cr_assert_eq(now.state, seen[i].state);
			cr_assert_geq(now.events, seen[i].events);
			continue;
		}
		cr_assert_eq(now.state, seen[i].state, "%s: state %d, was %d",
			     seen[i].gid, now.state, seen[i].state);
		cr_assert_str_eq(now.kinds, seen[i].kinds, "%s: history",
				 seen[i].gid);
	}
	cr_assert_geq(check_acked(&c, l, MAX_THREADS), 80);
	cu_close(&c);

	/* And the restarted node stops cleanly too. */
	it_stop(n.proc);
	cr_assert_not(
	    cu_log_has_sanitizer_report(n.proc->log, report, sizeof(report)),
	    "sanitizer report at second stop: %s", report);
}

Test(coord_restart, sigkill_loses_nothing_acknowledged)
{
	struct it_node n;
	struct cu_conn c;
	struct load l[4];
	pthread_t th[4];
	atomic_int commits = 0;
	int acked;

	it_node_start(&n, 1, node_args);
	load_start(l, th, 4, n.endpoint, "k", &commits);
	/* Kill in the middle: some of the 200 done, requests in flight. */
	wait_commits(&commits, 60, 30000);
	it_kill(n.proc);
	load_join(th, 4);
	cr_assert_lt(atomic_load(&commits), 4 * PER_THREAD,
		     "the load finished before the kill: test too slow");

	it_restart(n.proc);
	it_node_wait_leader(&n, 20000);
	cu_connect(&c, n.endpoint, 5000);
	acked = check_acked(&c, l, 4);
	cr_assert_geq(acked, 60);
	cu_close(&c);
}

/* ---- Checkpoints ----------------------------------------------------------
 *
 * A snapshot's data is a checkpoint file, data/checkpoints/ckpt-INDEX,
 * and raft keeps only a 32-byte manifest of it (coordinator/snapshot.c).
 */

/* What the data directory holds: raft's complete snapshots (their .meta
 * files) with their indexes, the base checkpoint each stands on (its own
 * index for a full one; a delta's manifest names its base) and the
 * largest snapshot file; the checkpoint and journal files, with how many
 * are temporary, how many no snapshot stands on, and how many snapshots
 * miss their checkpoint or journal. */
struct on_disk {
	int snapshots, deltas;
	unsigned long long index[16], base[16];
	long long largest_snapshot;
	int checkpoints, journals, tmp, orphans, missing;
	int orphan_checkpoints; /* of orphans */
};

static unsigned long long le64_at(const unsigned char *p)
{
	unsigned long long v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* The base the snapshot in raft's file path stands on (0: none). */
static unsigned long long snapshot_base(const char *path,
					unsigned long long index, bool *delta)
{
	unsigned char head[64];
	ssize_t got;
	int fd = open(path, O_RDONLY);

	cr_assert_geq(fd, 0, "%s", path);
	got = read(fd, head, sizeof(head));
	close(fd);
	*delta = got == 48 && memcmp(head, "STLSNAPD", 8) == 0;
	if (*delta)
		return le64_at(head + 16);
	return got == 32 && memcmp(head, "STLSNAPM", 8) == 0 ? index : 0;
}

static bool file_exists(const char *dir, const char *prefix,
			unsigned long long i)
{
	char path[800];

	snprintf(path, sizeof(path), "%s/%s%llu", dir, prefix, i);
	return access(path, R_OK) == 0;
}

static void look(const struct it_node *n, struct on_disk *d)
{
	char dir[700], path[1100];
	struct dirent *e;
	struct stat st;
	DIR *dp;

	memset(d, 0, sizeof(*d));
	snprintf(dir, sizeof(dir), "%s/raft", n->data);
	cr_assert_not_null(dp = opendir(dir), "%s", dir);
	while ((e = readdir(dp)) != NULL) {
		unsigned long long t, i, ms;
		int end = 0;
		bool delta;

		if (sscanf(e->d_name, "snapshot-%llu-%llu-%llu%n", &t, &i, &ms,
			   &end) != 3 ||
		    strcmp(e->d_name + end, ".meta") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		snprintf(path + strlen(path), sizeof(path) - strlen(path),
			 ".meta");
		if (access(path, R_OK) != 0)
			continue; /* not complete */
		cr_assert_lt(d->snapshots, 16);
		path[strlen(path) - 5] = '\0';
		d->index[d->snapshots] = i;
		d->base[d->snapshots++] = snapshot_base(path, i, &delta);
		d->deltas += delta;
		cr_assert_eq(stat(path, &st), 0, "%s", path);
		if (st.st_size > d->largest_snapshot)
			d->largest_snapshot = st.st_size;
	}
	closedir(dp);
	snprintf(dir, sizeof(dir), "%s/checkpoints", n->data);
	for (int k = 0; k < d->snapshots; k++)
		d->missing += d->base[k] != 0 &&
			      (!file_exists(dir, "ckpt-", d->base[k]) ||
			       !file_exists(dir, "journal-", d->base[k]));
	cr_assert_not_null(dp = opendir(dir), "%s", dir);
	while ((e = readdir(dp)) != NULL) {
		unsigned long long i;
		int end = 0;
		bool known = false;

		if (sscanf(e->d_name, "ckpt-%llu%n", &i, &end) == 1) {
			if (strcmp(e->d_name + end, ".tmp") == 0) {
				d->tmp++;
				continue;
			}
			d->checkpoints++;
		} else if (sscanf(e->d_name, "journal-%llu%n", &i, &end) == 1)
			d->journals++;
		else
			continue;
		for (int k = 0; k < d->snapshots; k++)
			known = known || d->base[k] == i;
		d->orphans += !known;
		d->orphan_checkpoints += !known && e->d_name[0] == 'c';
	}
	closedir(dp);
}

/* Which of d's snapshots is the newest. */
static int newest(const struct on_disk *d)
{
	int k = 0;

	for (int i = 1; i < d->snapshots; i++)
		if (d->index[i] > d->index[k])
			k = i;
	return k;
}

/* A node with killshim preloaded and SETTLE_KILL_CHECKPOINT=when. */
static void restart_with_killshim(struct it_node *n, const char *when)
{
	char kv[64];

	it_preload_killshim(n->proc);
	snprintf(kv, sizeof(kv), "SETTLE_KILL_CHECKPOINT=%s", when);
	it_setenv(n->proc, kv);
	it_kill(n->proc);
	it_restart(n->proc);
	it_node_wait_leader(n, 20000);
}

/*
 * SIGKILL while the first checkpoint is written, just before its rename
 * (when = "before": a complete temporary file) or just after it ("after":
 * a checkpoint raft never got the manifest of). The restart removes what
 * the crash left, loses nothing acknowledged, and snapshots go on.
 */
static void sigkill_at_checkpoint(const char *when, const char *left)
{
	struct it_node n;
	struct cu_conn c;
	struct load l[4];
	pthread_t th[4];
	atomic_int commits = 0;
	struct on_disk d;

	it_node_start(&n, 1, node_args);
	restart_with_killshim(&n, when);
	load_start(l, th, 4, n.endpoint, "k", &commits);
	for (int waited = 0; it_alive(n.proc); waited += 10) {
		cr_assert_lt(waited, 30000, "no checkpoint written in 30 s");
		tu_sleep_ms(10);
	}
	load_join(th, 4);
	cr_assert(cu_log_has(n.proc->log, "killshim: SIGKILL"),
		  "the node died, but not by killshim");
	look(&n, &d);
	if (strcmp(when, "before") == 0)
		cr_assert_eq(d.tmp, 1,
			     "no temporary checkpoint after the kill");
	else
		cr_assert_eq(d.orphan_checkpoints, 1,
			     "no orphan checkpoint after the kill");

	it_setenv(n.proc, "SETTLE_KILL_CHECKPOINT=");
	it_restart(n.proc);
	it_node_wait_leader(&n, 20000);
	/* What the crash left is removed at start (the node may already be
	 * writing a new checkpoint meanwhile: the files are looked at once
	 * it has stopped, below). */
	cr_assert(cu_log_has(n.proc->log, left),
		  "the restart did not say \"%s\"", left);
	cu_connect(&c, n.endpoint, 5000);
	check_acked(&c, l, 4);
	cu_close(&c);

	/* More load: snapshots are taken and kept as before. */
	commits = 0;
	load_start(l, th, 4, n.endpoint, "m", &commits);
	load_join(th, 4);
	cr_assert_eq(atomic_load(&commits), 4 * PER_THREAD);
	cu_stop_clean(&n);
	cr_assert(cu_log_has(n.proc->log, "checkpoint at") ||
		      cu_log_has(n.proc->log, "wrote the checkpoint"),
		  "no checkpoint after the restart");
	cr_assert(cu_log_has(n.proc->log, "snapshot at"),
		  "no snapshot after the restart");
	look(&n, &d);
	cr_assert_geq(d.snapshots, 1);
	cr_assert_eq(d.missing, 0, "%d snapshots miss their files", d.missing);
	cr_assert_eq(d.tmp + d.orphans, 0, "%d temporary, %d orphan files",
		     d.tmp, d.orphans);
}

Test(coord_restart, sigkill_before_a_checkpoint_is_renamed)
{
	sigkill_at_checkpoint("before", "a write the last run did not finish");
}

Test(coord_restart, sigkill_after_a_checkpoint_is_renamed)
{
	sigkill_at_checkpoint("after", "no snapshot of raft's stands on it");
}

/* Restart the node, whose store is behind raft's last snapshot or gone:
 * it must say it restored the checkpoint. */
static void restart_from_checkpoint(struct it_node *n)
{
	it_restart(n->proc);
	it_node_wait_leader(n, 20000);
	cr_assert(cu_log_has(n->proc->log, "from checkpoint"),
		  "the store was not restored from a checkpoint");
}

/* Wait until the node's log has text (up to ms). */
static bool wait_log(const struct it_node *n, const char *text, int ms)
{
	for (int waited = 0; waited < ms; waited += 50) {
		if (cu_log_has(n->proc->log, text))
			return true;
		usleep(50 * 1000);
	}
	return cu_log_has(n->proc->log, text);
}

/*
 * raft holds manifests only; a store that is lost is rebuilt from the
 * checkpoint a manifest names, then the log after it. From feature level
 * 5 most snapshots are deltas: the checkpoint of the last full one, then
 * the journal of entries after it (wal/journal.h), replayed.
 */
Test(coord_restart, lost_store_is_rebuilt_from_its_checkpoint)
{
	struct it_node n;
	struct cu_conn c;
	struct load l[4];
	pthread_t th[4];
	atomic_int commits = 0;
	struct on_disk d, after;
	char path[700];
	int last;

	it_node_start(&n, 1, node_args);
	cr_assert(wait_log(&n, TOP_LEVEL_LOG, 10000),
		  "the node did not reach feature level %d", FSM_LEVEL);
	load_start(l, th, 4, n.endpoint, "r", &commits);
	load_join(th, 4);
	cr_assert_eq(atomic_load(&commits), 4 * PER_THREAD);
	it_stop(n.proc);
	look(&n, &d);
	cr_assert_geq(d.snapshots, 1, "no snapshot taken");
	cr_assert_leq(d.largest_snapshot, 48,
		      "raft's snapshot files are not manifests: %lld bytes",
		      d.largest_snapshot);
	cr_assert_eq(d.missing, 0);
	cr_assert_eq(d.orphans + d.tmp, 0);
	cr_assert_geq(d.deltas, 1, "no delta snapshot among %d", d.snapshots);

	snprintf(path, sizeof(path), "%s/db/data.mdb", n.data);
	cr_assert_eq(unlink(path), 0, "%s", path);
	snprintf(path, sizeof(path), "%s/db/lock.mdb", n.data);
	unlink(path);
	restart_from_checkpoint(&n);
	cr_assert(cu_log_has(n.proc->log, "and its journal"),
		  "the last snapshot, a delta, was restored without its "
		  "journal");
	cu_connect(&c, n.endpoint, 5000);
	cr_assert_eq(check_acked(&c, l, 4), 4 * PER_THREAD);
	cu_close(&c);

	/* The journal goes on after the restore: the next snapshots are
	 * deltas on the same checkpoint, not a new one. */
	last = newest(&d);
	load_start(l, th, 4, n.endpoint, "s", &commits);
	load_join(th, 4);
	cu_stop_clean(&n);
	cr_assert(!cu_log_has(n.proc->log, "wait for a new checkpoint"),
		  "the journal did not go on after the restore");
	look(&n, &after);
	cr_assert_gt(after.index[newest(&after)], d.index[last],
		     "no snapshot taken after the restore");
	cr_assert_eq(after.base[newest(&after)], d.base[last],
		     "the snapshot after the restore is not a delta on "
		     "checkpoint %llu",
		     d.base[last]);
}

/* Lines of the log at path that hold text. */
static int log_count(const char *path, const char *text)
{
	char line[4096];
	int n = 0;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return 0;
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, text) != NULL;
	fclose(f);
	return n;
}

/*
 * New checkpoints are written in the background once the journal has
 * grown as large as --snapshot-journal allows (1 MiB here, 5,000 small
 * entries; the first comes at the first snapshot), while raft
 * keeps taking deltas on the old one; then the journal after the new one
 * takes over. After such a switch, a lost store is rebuilt from
 * the checkpoint and journal the last snapshot names: nothing
 * acknowledged is missing.
 */
Test(coord_restart, checkpoints_written_in_the_background_take_over)
{
	static const char *const args[] = {"--snapshot-threshold",
					   "64",
					   "--snapshot-trailing",
					   "16",
					   "--snapshot-journal",
					   "1",
					   NULL};
	enum { ROUNDS = 64 };
	struct it_node n;
	struct cu_conn c;
	static struct load l[ROUNDS][4];
	atomic_int commits = 0;
	struct on_disk d;
	char path[700];
	int rounds = 0;

	it_node_start(&n, 1, args);
	cr_assert(wait_log(&n, TOP_LEVEL_LOG, 10000),
		  "the node did not reach feature level %d", FSM_LEVEL);
	do {
		cr_assert_lt(rounds, ROUNDS,
			     "fewer than 2 checkpoints written "
			     "in the background");
		load_round(l[rounds], n.endpoint, "bg", rounds, &commits);
		rounds++;
	} while (log_count(n.proc->log, "written in the background") < 2);
	cr_assert_eq(atomic_load(&commits), rounds * 4 * PER_THREAD);
	/* Deltas stood on the newer checkpoints. */
	cr_assert(cu_wait_log(n.proc->log, "a delta", 5000));
	cu_stop_clean(&n);
	look(&n, &d);
	cr_assert_eq(d.missing, 0);
	cr_assert_eq(d.orphans + d.tmp, 0, "%d orphan, %d temporary files",
		     d.orphans, d.tmp);

	snprintf(path, sizeof(path), "%s/db/data.mdb", n.data);
	cr_assert_eq(unlink(path), 0, "%s", path);
	snprintf(path, sizeof(path), "%s/db/lock.mdb", n.data);
	unlink(path);
	restart_from_checkpoint(&n);
	cu_connect(&c, n.endpoint, 5000);
	for (int r = 0; r < rounds; r++)
		cr_assert_eq(check_acked(&c, l[r], 4), 4 * PER_THREAD,
			     "round %d", r);
	cu_close(&c);
	cu_stop_clean(&n);
}

/* Highest index among raft's snapshots on disk. */
static unsigned long long last_snapshot(const struct on_disk *d)
{
	unsigned long long max = 0;

	for (int i = 0; i < d->snapshots; i++)
		if (d->index[i] > max)
			max = d->index[i];
	return max;
}

/*
 * A store that is behind raft's last snapshot (as LMDB, which runs without
 * fsync, can be after a power loss) is brought forward from the
 * checkpoint: replaced whole, then the log after it replayed. Simulated
 * with a copy of the store taken before more transactions and snapshots.
 */
Test(coord_restart, stale_store_is_brought_forward_from_its_checkpoint)
{
	static const char *const prefixes[] = {"t", "u", "v", "w", "x"};
	struct it_node n;
	struct cu_conn c;
	struct load l1[4], l2[5][4];
	pthread_t th[4];
	atomic_int commits = 0;
	struct on_disk d;
	Settle__V1__StatusResponse *st;
	unsigned long long stale;
	char cmd[2200];
	int rounds = 0;

	it_node_start(&n, 1, node_args);
	load_start(l1, th, 4, n.endpoint, "s", &commits);
	load_join(th, 4);
	it_stop(n.proc);
	snprintf(cmd, sizeof(cmd),
		 "cp --sparse=always %s/db/data.mdb %s/stale.mdb", n.data,
		 n.data);
	cr_assert_eq(system(cmd), 0, "%s", cmd);

	/* Restarted on the same store: it is at the copy's index or past it
	 * (entries after the stop, if any). Commit until raft has a snapshot
	 * past that: how many entries that takes depends on batching. */
	it_restart(n.proc);
	it_node_wait_leader(&n, 20000);
	cu_connect(&c, n.endpoint, 5000);
	st = cu_status(&c);
	stale = st->applied_index;
	settle__v1__status_response__free_unpacked(st, NULL);
	cu_close(&c);
	do {
		cr_assert_lt(rounds, 5, "no snapshot past %llu", stale);
		load_start(l2[rounds], th, 4, n.endpoint, prefixes[rounds],
			   &commits);
		load_join(th, 4);
		rounds++;
		look(&n, &d);
	} while (last_snapshot(&d) <= stale);
	cr_assert_eq(atomic_load(&commits), (1 + rounds) * 4 * PER_THREAD);
	it_stop(n.proc);

	snprintf(cmd, sizeof(cmd),
		 "mv %s/stale.mdb %s/db/data.mdb && rm -f %s/db/lock.mdb",
		 n.data, n.data, n.data);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	restart_from_checkpoint(&n);
	cu_connect(&c, n.endpoint, 5000);
	cr_assert_eq(check_acked(&c, l1, 4), 4 * PER_THREAD);
	for (int r = 0; r < rounds; r++)
		cr_assert_eq(check_acked(&c, l2[r], 4), 4 * PER_THREAD);
	cu_close(&c);
	cu_stop_clean(&n);
}

/* The thread of pid named name ("" if none): its voluntary context
 * switches, or -1. */
static long thread_switches(pid_t pid, const char *name)
{
	char path[128], comm[64], line[128];
	struct dirent *e;
	long switches = -1;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	cr_assert_not_null(d, "%s", path);
	while (switches < 0 && (e = readdir(d)) != NULL) {
		FILE *f;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/comm", (int)pid,
			 e->d_name);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		comm[0] = '\0';
		if (fgets(comm, sizeof(comm), f) != NULL)
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
		if (strcmp(comm, name) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%s/status",
			 (int)pid, e->d_name);
		f = fopen(path, "r");
		cr_assert_not_null(f, "%s", path);
		while (fgets(line, sizeof(line), f) != NULL)
			if (sscanf(line, "voluntary_ctxt_switches: %ld",
				   &switches) == 1)
				break;
		fclose(f);
	}
	closedir(d);
	return switches;
}

/*
 * raft_uv destroys a closed log segment's AIO context on the loop thread
 * (30-55 ms of waiting for an RCU grace period); settled hands that call
 * to its thread "settled-aio" (coordinator/aio_defer.c). Each snapshot
 * closes the open segment: after a few, the thread has run for them.
 */
Test(coord_restart, closed_segments_are_destroyed_off_the_loop)
{
	struct it_node n;
	atomic_int commits = 0;
	static struct load l[20][4];
	long start, after;
	int rounds = 0;

	it_node_start(&n, 1, node_args);
	start = thread_switches(n.proc->pid, "settled-aio");
	cr_assert_geq(start, 0, "settled has no settled-aio thread");
	cr_assert(!cu_wait_log(n.proc->log, "runs on the loop thread", 0));
	do {
		cr_assert_lt(rounds, 20, "no segment closed in 20 rounds");
		load_round(l[rounds], n.endpoint, "aio", rounds, &commits);
		rounds++;
		after = thread_switches(n.proc->pid, "settled-aio");
	} while (after < start + 2);
	cr_assert_eq(atomic_load(&commits), rounds * 4 * PER_THREAD);
	cu_stop_clean(&n);
}

/* SETTLE_AIO_DESTROY_INLINE=1 keeps the call where raft makes it, and the
 * node says so. */
Test(coord_restart, aio_destroy_inline_when_asked)
{
	struct it_node n;
	static const char *const args[] = {"--snapshot-threshold", "64", NULL};

	setenv("SETTLE_AIO_DESTROY_INLINE", "1", 1);
	it_node_start(&n, 1, args);
	unsetenv("SETTLE_AIO_DESTROY_INLINE");
	cr_assert(cu_wait_log(n.proc->log, "runs on the loop thread", 5000));
	cr_assert_lt(thread_switches(n.proc->pid, "settled-aio"), 0);
	cu_stop_clean(&n);
}

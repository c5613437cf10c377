/*
 * killshim.c — preloaded (LD_PRELOAD) into a settled by the crash tests to
 * SIGKILL it at a chosen LMDB write. KILLSHIM_ARM (a real-time signal
 * settled does not use: SIGUSR1 and SIGUSR2 change its log level) arms
 * it: the process then
 * dies just before its SETTLE_KILL_AFTER_PUTS-th mdb_put() from there
 * (default 50). Applies write through an apply batch that commits once per
 * loop iteration, so under load that write is almost always in the middle
 * of a batch, often in the middle of one entry's apply. Before dying it
 * says on stderr how many writes the open write transaction held, so a
 * test can tell where the kill landed. A signal, not a count from start,
 * so that a test picks the node's role (leader or follower) at the time.
 *
 * SETTLE_KILL_CHECKPOINT=before|after kills it instead at its first
 * rename() of a checkpoint file (coordinator/snapshot.c): the checkpoint
 * written and synced under its temporary name, and killed just before the
 * rename or just after it (before raft has the manifest). It says so on
 * stderr first, naming the file.
 *
 * SETTLE_SLOW_CHECKPOINT_MS=N holds every rename() of a checkpoint N ms
 * instead: a snapshot that takes that long, as under a disk another
 * program saturates. It says "killshim: holding" on stderr when it starts
 * to wait.
 *
 * Test-only: nothing in settled knows about it.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <lmdb.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The signal that arms the shim (test_faults.c sends the same). */
#define KILLSHIM_ARM (SIGRTMIN + 4)

typedef int (*put_fn)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *, unsigned);
typedef int (*commit_fn)(MDB_txn *);
typedef int (*rename_fn)(const char *, const char *);

/* settled writes LMDB from its loop thread only: no locking here. */
static put_fn real_put;
static commit_fn real_commit;
static rename_fn real_rename;
static volatile sig_atomic_t armed;
static long after = 50;
static long countdown; /* 0: not counting */
static long puts_uncommitted;

static void init(void)
{
	real_put = (put_fn)dlsym(RTLD_NEXT, "mdb_put");
	real_commit = (commit_fn)dlsym(RTLD_NEXT, "mdb_txn_commit");
	real_rename = (rename_fn)dlsym(RTLD_NEXT, "rename");
}

static void die_saying(const char *what, const char *path)
{
	char msg[600];
	int n =
	    snprintf(msg, sizeof msg, "killshim: SIGKILL %s %s\n", what, path);

	if (n > 0 && write(2, msg, (size_t)n) < 0)
		n = 0;
	raise(SIGKILL);
}

/* Called from the snapshot worker thread; settled renames nothing else
 * under checkpoints/, and one checkpoint is written at a time. */
int rename(const char *from, const char *to)
{
	const char *when = getenv("SETTLE_KILL_CHECKPOINT");
	bool ckpt = strstr(to, "/checkpoints/ckpt-") != NULL;
	int rv;

	if (real_rename == NULL)
		init();
	if (ckpt && when != NULL && strcmp(when, "before") == 0)
		die_saying("before renaming", from);
	if (ckpt && getenv("SETTLE_SLOW_CHECKPOINT_MS") != NULL) {
		long ms = atol(getenv("SETTLE_SLOW_CHECKPOINT_MS"));
		static const char msg[] = "killshim: holding a checkpoint\n";
		struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

		if (write(2, msg, sizeof msg - 1) < 0)
			ts.tv_sec = 0;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	rv = real_rename(from, to);
	if (ckpt && rv == 0 && when != NULL && strcmp(when, "after") == 0)
		die_saying("after renaming to", to);
	return rv;
}

static void on_arm(int sig)
{
	(void)sig;
	armed = 1;
}

__attribute__((constructor)) static void killshim_start(void)
{
	const char *e = getenv("SETTLE_KILL_AFTER_PUTS");
	struct sigaction sa;

	if (e != NULL && atol(e) > 0)
		after = atol(e);
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_arm;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	sigaction(KILLSHIM_ARM, &sa, NULL);
}

int mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data,
	    unsigned flags)
{
	if (real_put == NULL)
		init();
	if (armed) {
		armed = 0;
		countdown = after;
	}
	if (countdown > 0 && --countdown == 0) {
		char msg[160];
		int n = snprintf(msg, sizeof msg,
				 "killshim: SIGKILL at the %ldth write since "
				 "armed, %ld writes of the open transaction "
				 "uncommitted\n",
				 after, puts_uncommitted);

		if (n > 0 && write(2, msg, (size_t)n) < 0)
			n = 0;
		raise(SIGKILL);
	}
	puts_uncommitted++;
	return real_put(txn, dbi, key, data, flags);
}

int mdb_txn_commit(MDB_txn *txn)
{
	if (real_commit == NULL)
		init();
	puts_uncommitted = 0;
	return real_commit(txn);
}

/*
 * harness.h — real processes for the integration and crash tests.
 *
 * Spawns settled, settle-bank and the command-line tools on free ports of
 * 127.0.0.1, waits until they answer, and kills every process it started
 * in it_teardown() (also from an atexit hook, and each child gets
 * PR_SET_PDEATHSIG so a crashed test leaves nothing behind).
 *
 * Binaries are found under $SETTLE_BUILD (set by scripts/test), else the
 * build directory of the running test program (three levels up from
 * BUILD/test/integration/NAME).
 *
 * Every function that fails aborts the current test with a Criterion
 * assertion that says what went wrong and shows the tail of the process's
 * log, so tests read as a list of steps.
 */
#ifndef SETTLE_IT_HARNESS_H
#define SETTLE_IT_HARNESS_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

#define IT_MAX_ARGS 32
#define IT_MAX_ENV  8

struct it_proc {
	char name[32];
	char log[512];
	char *argv[IT_MAX_ARGS + 1]; /* owned copies, for restarts */
	char *env[IT_MAX_ENV + 1];   /* "NAME=value" added at each start */
	pid_t pid;		     /* 0 when not running */
};

/* Create a scratch directory for this test (it_dir()). Call first. */
void it_setup(void);
/* SIGKILL every process still running and remove the scratch directory
 * (kept when SETTLE_KEEP_TEST_DIR is set, for post-mortems). */
void it_teardown(void);
const char *it_dir(void);

/* The build directory the binaries are taken from. */
const char *it_build_dir(void);

/* Absolute path of a built program ("settled", "settlectl", ...). */
const char *it_bin(const char *name);

/* Source tree root: $SETTLE_ROOT, else the configure-time source dir. */
const char *it_srcdir(void);

/* A port p such that p and p+1 are free to bind on 127.0.0.1 right now. */
int it_free_port_pair(void);

/*
 * Start argv[0] (a path; argv NULL-terminated, copied) with stdout and
 * stderr appended to DIR/NAME.log. Returns the process record, owned by
 * the harness.
 */
struct it_proc *it_spawn(const char *name, char *const argv[]);
/* Add "NAME=value" (copied) to p's environment from its next (re)start
 * on; a NAME given again replaces the value. */
void it_setenv(struct it_proc *p, const char *name_value);
/* Start again with the same arguments (after it_kill or it_stop). */
void it_restart(struct it_proc *p);
/* SIGKILL and reap. */
void it_kill(struct it_proc *p);
/* SIGTERM, wait up to 10 s, assert a clean exit (status 0). */
void it_stop(struct it_proc *p);
/* True while the process has not exited (reaps it if it has). */
bool it_alive(struct it_proc *p);
/* Print the last lines of the process's log to stderr. */
void it_show_log(const struct it_proc *p);
/* Every thread's stack and kernel wait of a live process, to stderr. */
void it_show_stacks(const struct it_proc *p);
/* "<libasan path> " when built with ASan, else "": the start of an
 * LD_PRELOAD for settled (libasan must come first). */
void it_asan_preload(char *out, size_t len);
/* Set p's LD_PRELOAD to killshim (test/integration/killshim.c), after
 * libasan when built with it; fails the test if make check did not build
 * it. Takes effect at p's next start. */
void it_preload_killshim(struct it_proc *p);

/* Wait until host:port accepts TCP connections, or fail the test. */
void it_wait_port(struct it_proc *p, int port, int timeout_ms);

/*
 * Run a program to completion; its stdout is returned (malloc'd, NUL
 * terminated) in *out if out is non-NULL, stderr in *err likewise. Returns
 * the exit status (or 128+signal). Fails the test after timeout_ms.
 */
int it_run(char *const argv[], char **out, char **err, int timeout_ms);

/* The number after "key": in out (a program's JSON line, e.g.
 * settle-bench --json); fails the test when the key is missing. */
long long it_json_num(const char *out, const char *key);

/* ---- Settle processes --------------------------------------------------- */

struct it_node {
	struct it_proc *proc;
	int port; /* client port; raft is port + 1 */
	char endpoint[32];
	char data[512];
};

/*
 * Start a one-node settled on free ports with its data in DIR/nodeN, plus
 * extra arguments (NULL-terminated list, may be NULL), and wait until it
 * reports role "leader" (20 s).
 */
void it_node_start(struct it_node *n, int id, const char *const *extra);
/* The same without waiting (a node that settlectl cannot reach, e.g.
 * one that wants TLS). */
void it_node_spawn(struct it_node *n, int id, const char *const *extra);
/* Wait until the node answers STATUS as leader again (after a restart). */
void it_node_wait_leader(struct it_node *n, int timeout_ms);

/* ---- Demo banks (examples/settle-bank) ---------------------------------- */

struct it_bank {
	struct it_proc *proc;
	int port;
	char endpoint[32];
	char data[512];
};

struct it_account {
	long long balance;
	long long frozen;
	long long incoming;
};

/*
 * Start settle-bank serve named NAME with accounts "a=1,b=2" and extra
 * arguments (NULL-terminated, may be NULL); wait until it listens.
 */
void it_bank_start(struct it_bank *b, const char *name, const char *accounts,
		   const char *const *extra);
/* Read one account through `settle-bank balances --json`. */
struct it_account it_bank_account(const struct it_bank *b, const char *account);

/*
 * Run settle-transfer of amount from from:fa to to:ta on the cluster,
 * with extra arguments (NULL-terminated, may be NULL). The gid it printed
 * goes to gid (size gidlen, "" if none). Returns its exit status.
 */
int it_transfer(const struct it_node *n, const struct it_bank *from,
		const char *fa, const struct it_bank *to, const char *ta,
		int amount, const char *const *extra, char *gid, size_t gidlen);

#endif /* SETTLE_IT_HARNESS_H */

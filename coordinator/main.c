/*
 * settled — the Settle coordinator node.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coord.h"
#include "error.h"
#include "log.h"
#include "config_file.h"
#include "log_json.h"
#include "node.h"
#include "coordinator/xa_pool.h"

/*
 * The store maps its file writable (storage/store.c): when the disk under
 * --data is full, the kernel cannot back a page LMDB writes and sends
 * SIGBUS instead of failing a write. Say so, and stop as a failed apply
 * does (exit 70); the raft log replays what was lost after a restart.
 */
static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	static const char msg[] =
	    "settled: SIGBUS: a write into the store's memory map failed; "
	    "the disk under --data is most likely full: free space, then "
	    "restart (the raft log replays what was lost)\n";
	ssize_t n;

	(void)sig;
	(void)si;
	(void)ctx;
	n = write(STDERR_FILENO, msg, sizeof msg - 1);
	(void)n;
	_exit(70);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	static struct coord c; /* large; zeroed */
	char errmsg[2048];
	/* Static: a loop left busy by RM calls abandoned at shutdown
	 * (coordinator/xa_pool.h) cannot be closed, and stays reachable. */
	static uv_loop_t loop;
	/* Static: the configuration points into them for the whole run. */
	static char **all_argv;
	static int all_argc;
	int rv;

	settle_log_init("settled");
	signal(SIGPIPE, SIG_IGN);
	memset(&sa, 0, sizeof sa);
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
	/* --config FILE: its settings first, the command line's after. */
	rv = coord_config_expand(argc, argv, &all_argc, &all_argv, errmsg,
				 sizeof errmsg);
	if (rv != 0) {
		fprintf(stderr, "settled: %s\n", errmsg);
		return 2;
	}
	rv = coord_config_parse(&c.cfg, all_argc, all_argv, errmsg,
				sizeof errmsg);
	if (rv == 1) {
		fputs(errmsg, stdout);
		return 0;
	}
	if (rv != 0) {
		fprintf(stderr, "settled: %s\n", errmsg);
		return 2;
	}
	if (c.cfg.log_json)
		coord_log_json_start(c.cfg.id);
	/* Secure by default: plaintext only when asked for. */
	if (c.cfg.tls_cert[0] == '\0' && !c.cfg.insecure) {
		const char *env = getenv("SETTLE_INSECURE");

		if (env == NULL || strcmp(env, "1") != 0) {
			fprintf(stderr,
				"settled: no certificates: give --tls-cert, "
				"--tls-key and --tls-ca (scripts/make-certs "
				"makes throwaway ones; docs/SECURITY.md), or "
				"--insecure to run with every port in "
				"plaintext\n");
			return 2;
		}
		c.cfg.insecure = true;
	}
	/* RM calls block on libuv's worker pool (coordinator/xa_pool.h) and
	 * raft_uv needs workers too: give the pool room for both, unless the
	 * operator sized it. libuv reads this at the first work queued. */
	if (c.cfg.n_xa_rms > 0 && getenv("UV_THREADPOOL_SIZE") == NULL) {
		char n[16];

		snprintf(n, sizeof n, "%u",
			 COORD_XA_POOL_SPARE +
			     COORD_XA_POOL_PER_RM * c.cfg.n_xa_rms);
		setenv("UV_THREADPOOL_SIZE", n, 0);
	}
	uv_loop_init(&loop);
	rv = coord_start(&c, &loop);
	if (rv != 0) {
		fprintf(stderr, "settled: %s\n", c.errmsg);
		uv_run(&loop, UV_RUN_DEFAULT);
		coord_close(&c);
		uv_loop_close(&loop);
		return 1;
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	coord_close(&c);
	rv = uv_loop_close(&loop);
	if (rv != 0) {
		settle_log(SETTLE_LOG_WARN, "node",
			   "loop closed with handles: %s", uv_strerror(rv));
		settle_log(SETTLE_LOG_INFO, "node", "stopped");
		/* libuv's destructor joins its worker threads, and one may
		 * be blocked on a hung database (coordinator/xa_pool.h):
		 * everything of ours is closed and synced, leave now. */
		fflush(NULL);
		_exit(c.exit_code);
	}
	settle_log(SETTLE_LOG_INFO, "node", "stopped");
	return c.exit_code;
}

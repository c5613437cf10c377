/* Forks from a process whose other threads keep allocating: the situation
 * in which AddressSanitizer's allocator, without test/forksafe.c, leaves the
 * child of fork() waiting for ever on a lock (see the comment there).
 *
 * Two places fork: Criterion's runner, once per test worker, and our own
 * tests when they start settled or a participant. In this program a thread
 * of the runner and a thread of every worker allocate and free without a
 * pause while the main thread forks, so a size-class lock is often held at
 * the instant of fork(). Without the shim the runner hangs at a worker
 * spawn (the watchdog of test/watchdog turns that into a failure with every
 * thread's stack), or a child below fails to reach exec in time. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS	 60 /* Criterion workers forked by the runner */
#define CHILDREN 4  /* forks of /bin/true by each worker */

/* A small quarantine, so that the threads below recycle chunks through the
 * allocator's locks all the time rather than growing without bound. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=8";
}

static atomic_int stop;

extern char **environ;

/* The sizes the child of a fork allocates before exec -- BoxFort's table of
 * fds to close (one byte per fd of RLIMIT_NOFILE), its copy of the
 * environment, the DIR of /proc/self/fd (glibc's 32 KiB buffer), the copy of
 * a path -- so that the locks of exactly those size classes are busy. */
static void *churn(void *arg)
{
	size_t sizes[] = {1024, 32816, 64, 24};
	void *blocks[64];
	unsigned seed = (unsigned)(uintptr_t)arg;
	struct rlimit rl;
	size_t nenv = 0;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 24))
		sizes[0] = (size_t)rl.rlim_cur;
	while (environ[nenv])
		nenv++;
	sizes[2] = (nenv + 3) * sizeof(char *);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		size_t n = sizes[rand_r(&seed) % 4];
		for (int i = 0; i < 64; i++)
			blocks[i] = malloc(n);
		for (int i = 0; i < 64; i++)
			free(blocks[i]);
	}
	return NULL;
}

static pthread_t start_churn(unsigned seed)
{
	pthread_t t;

	if (pthread_create(&t, NULL, churn, (void *)(uintptr_t)seed) != 0)
		abort();
	return t;
}

/* In the runner only: BoxFort marks its workers with BXFI_MAP. */
__attribute__((constructor)) static void churn_in_runner(void)
{
	if (!getenv("BXFI_MAP"))
		pthread_detach(start_churn(1));
}

static int wait_ms(pid_t pid, int *status, int ms)
{
	for (int i = 0; i < ms; i++) {
		pid_t r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		struct timespec ts = {0, 1000000};
		nanosleep(&ts, NULL);
	}
	return -1;
}

ParameterizedTestParameters(forksafe, spawn)
{
	static int ids[WORKERS];
	for (int i = 0; i < WORKERS; i++)
		ids[i] = i;
	return cr_make_param_array(int, ids, WORKERS);
}

ParameterizedTest(int *id, forksafe, spawn, .timeout = 60)
{
	pthread_t t = start_churn((unsigned)*id + 2);

	cr_assert_not_null(getenv("BXFI_MAP"), "not in a Criterion worker");
	for (int i = 0; i < CHILDREN; i++) {
		int status = 0;
		pid_t pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0) {
			/* What our harness does between fork and exec. */
			char *copy = strdup("/bin/true");
			char *argv[] = {copy, NULL};
			execv(copy, argv);
			_exit(127);
		}
		if (wait_ms(pid, &status, 10000) != 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			cr_assert_fail(
			    "child %d of worker %d did not reach exec "
			    "in 10 s: stuck in the allocator",
			    i, *id);
		}
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "child %d of worker %d: status %#x", i, *id, status);
	}
	atomic_store(&stop, 1);
	pthread_join(t, NULL);
}

/*
 * harness.c — real processes for the integration tests; see harness.h.
 */
#include "harness.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define IT_MAX_PROCS 16

static char dir[256];
static struct it_proc procs[IT_MAX_PROCS];
static size_t nprocs;
/* Resolved binaries, by name: tests ask for the same few many times. */
static struct {
	char name[32];
	char path[PATH_MAX];
} bins[8];
static size_t nbins;
static bool atexit_set;

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void kill_all(void)
{
	size_t i;

	for (i = 0; i < nprocs; i++) {
		if (procs[i].pid > 0) {
			kill(procs[i].pid, SIGKILL);
			waitpid(procs[i].pid, NULL, 0);
			procs[i].pid = 0;
		}
	}
}

void it_setup(void)
{
	char tmpl[] = "/tmp/settle-it.XXXXXX";

	if (!atexit_set) {
		atexit(kill_all);
		atexit_set = true;
	}
	/* A test killed half-way must not leave a child writing into a
	 * pipe nobody reads. */
	signal(SIGPIPE, SIG_IGN);
	/* settled and the tools refuse plaintext unless asked (secure by
	 * default): the tests that start them without certificates ask, for
	 * every child, as scripts/cluster --insecure does. */
	setenv("SETTLE_INSECURE", "1", 0);
	cr_assert_not_null(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
	snprintf(dir, sizeof(dir), "%s", tmpl);
}

const char *it_dir(void)
{
	return dir;
}

void it_teardown(void)
{
	size_t i, j;
	char cmd[300];

	kill_all();
	for (i = 0; i < nprocs; i++) {
		for (j = 0; procs[i].argv[j]; j++)
			free(procs[i].argv[j]);
		for (j = 0; procs[i].env[j]; j++)
			free(procs[i].env[j]);
	}
	memset(procs, 0, sizeof(procs));
	nprocs = 0;
	if (dir[0] && getenv("SETTLE_KEEP_TEST_DIR") == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			fprintf(stderr, "harness: could not remove %s\n", dir);
	} else if (dir[0]) {
		fprintf(stderr, "harness: test files kept in %s\n", dir);
	}
	dir[0] = '\0';
}

/* Build directory: $SETTLE_BUILD, else three levels above this program. */
static const char *build_dir(void);
const char *it_build_dir(void)
{
	return build_dir();
}

static const char *build_dir(void)
{
	static char buf[PATH_MAX];
	const char *env = getenv("SETTLE_BUILD");
	ssize_t n;
	int up;

	if (env && *env)
		return env;
	if (buf[0])
		return buf;
	n = readlink("/proc/self/exe", buf, sizeof(buf) - 1);
	cr_assert(n > 0, "readlink /proc/self/exe: %s", strerror(errno));
	buf[n] = '\0';
	/* libtool may run the real binary from a .libs/ subfolder. */
	if (strstr(buf, "/.libs/lt-") || strstr(buf, "/.libs/"))
		*strrchr(buf, '/') = '\0';
	for (up = 0; up < 3; up++) {
		char *slash = strrchr(buf, '/');
		cr_assert_not_null(slash, "cannot find the build directory");
		*slash = '\0';
	}
	return buf;
}

const char *it_bin(const char *name)
{
	static const char *const subdirs[] = {"coordinator", "tools",
					      "examples", "."};
	char path[PATH_MAX];
	size_t i;

	for (i = 0; i < nbins; i++)
		if (strcmp(bins[i].name, name) == 0)
			return bins[i].path;
	for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s/%s", build_dir(),
			 subdirs[i], name);
		if (access(path, X_OK) == 0)
			break;
	}
	cr_assert(i < sizeof(subdirs) / sizeof(subdirs[0]),
		  "%s not found under %s (build it, or set SETTLE_BUILD)", name,
		  build_dir());
	cr_assert(nbins < sizeof(bins) / sizeof(bins[0]));
	snprintf(bins[nbins].name, sizeof(bins[0].name), "%s", name);
	snprintf(bins[nbins].path, sizeof(bins[0].path), "%s", path);
	return bins[nbins++].path;
}

const char *it_srcdir(void)
{
	const char *env = getenv("SETTLE_ROOT");

	if (env && *env)
		return env;
#ifdef IT_SRCDIR
	return IT_SRCDIR;
#else
	cr_assert_fail("set SETTLE_ROOT to the source tree");
	return NULL;
#endif
}

static bool port_free(int port)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1, ok;

	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ok = bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/* The pairs handed out lately: a cluster takes one per node before any
 * node binds it, so the check that a port is free cannot tell two nodes
 * drawn the same pair apart (it happened: "raft configuration: server
 * address already in use"). */
#define PORTS_GIVEN 64
static int given[PORTS_GIVEN];
static unsigned n_given;

static bool port_given(int p)
{
	for (unsigned i = 0; i < PORTS_GIVEN && i < n_given; i++)
		if (given[i] == p)
			return true;
	return false;
}

int it_free_port_pair(void)
{
	static unsigned seed;
	int i, p;

	/* From the kernel: pid and clock XORed can be equal for two tests
	 * started together, which would then race for the same ports. */
	while (seed == 0)
		if (getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
			seed = (unsigned)getpid() * 2654435761u ^
			       (unsigned)mono_ms();
	/* Random even ports in 20000..32766, below the range Linux hands out
	 * to outgoing connections (32768..60999): a port there can be taken
	 * by any connect() between our check and the node's bind. Both ports
	 * are still checked: other tests and services use this range too. */
	for (i = 0; i < 400; i++) {
		p = 20000 + 2 * (int)(rand_r(&seed) % 6384);
		if (port_given(p) || !port_free(p) || !port_free(p + 1))
			continue;
		given[n_given++ % PORTS_GIVEN] = p;
		return p;
	}
	cr_assert_fail("no free port pair found");
	return -1;
}

extern char **environ;

static bool same_name(const char *a, const char *b)
{
	size_t n = strcspn(a, "=");
	return strncmp(a, b, n) == 0 && b[n] == '=';
}

/* The test's environment with p->env over it: built before fork, since
 * the child of a multi-threaded test must not allocate. */
static char **child_env(const struct it_proc *p)
{
	size_t n = 0, k = 0;
	char **envp;

	while (environ[n] != NULL)
		n++;
	envp = calloc(n + IT_MAX_ENV + 1, sizeof(*envp));
	cr_assert_not_null(envp);
	for (size_t i = 0; i < n; i++) {
		bool over = false;
		for (size_t j = 0; p->env[j] != NULL; j++)
			over = over || same_name(p->env[j], environ[i]);
		if (!over)
			envp[k++] = environ[i];
	}
	for (size_t j = 0; p->env[j] != NULL; j++)
		envp[k++] = p->env[j];
	return envp;
}

void it_setenv(struct it_proc *p, const char *name_value)
{
	size_t j;

	for (j = 0; p->env[j] != NULL; j++)
		if (same_name(p->env[j], name_value))
			break;
	cr_assert(j < IT_MAX_ENV, "too many environment variables");
	free(p->env[j]);
	p->env[j] = strdup(name_value);
	cr_assert_not_null(p->env[j]);
}

static pid_t start_child(struct it_proc *p)
{
	pid_t parent = getpid(), pid;
	char **envp = child_env(p);
	int fd;

	fd = open(p->log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	cr_assert(fd >= 0, "open %s: %s", p->log, strerror(errno));
	pid = fork();
	cr_assert(pid >= 0, "fork: %s", strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		/* Die with the test process, whatever kills it. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		dup2(null, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		execve(p->argv[0], p->argv, envp);
		dprintf(2, "harness: exec %s: %s\n", p->argv[0],
			strerror(errno));
		_exit(127);
	}
	close(fd);
	free(envp);
	return pid;
}

struct it_proc *it_spawn(const char *name, char *const argv[])
{
	struct it_proc *p;
	size_t i;

	cr_assert(nprocs < IT_MAX_PROCS, "too many processes");
	p = &procs[nprocs++];
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	snprintf(p->log, sizeof(p->log), "%s/%s.log", dir, name);
	for (i = 0; argv[i]; i++) {
		cr_assert(i < IT_MAX_ARGS, "too many arguments");
		p->argv[i] = strdup(argv[i]);
		cr_assert_not_null(p->argv[i]);
	}
	p->pid = start_child(p);
	return p;
}

void it_restart(struct it_proc *p)
{
	FILE *f;

	cr_assert_eq(p->pid, 0, "%s is still running", p->name);
	f = fopen(p->log, "a");
	if (f) {
		fprintf(f, "==== harness: restart\n");
		fclose(f);
	}
	p->pid = start_child(p);
}

bool it_alive(struct it_proc *p)
{
	int st;

	if (p->pid <= 0)
		return false;
	if (waitpid(p->pid, &st, WNOHANG) == p->pid) {
		p->pid = 0;
		return false;
	}
	return true;
}

void it_kill(struct it_proc *p)
{
	if (p->pid <= 0)
		return;
	kill(p->pid, SIGKILL);
	waitpid(p->pid, NULL, 0);
	p->pid = 0;
}

void it_stop(struct it_proc *p)
{
	uint64_t end = mono_ms() + 10000;
	int st = 0;
	pid_t r;

	cr_assert(p->pid > 0, "%s is not running", p->name);
	kill(p->pid, SIGTERM);
	while ((r = waitpid(p->pid, &st, WNOHANG)) == 0 && mono_ms() < end)
		sleep_ms(20);
	if (r == 0) {
		it_kill(p);
		it_show_log(p);
		cr_assert_fail("%s ignored SIGTERM for 10 s", p->name);
	}
	p->pid = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		it_show_log(p);
		cr_assert_fail("%s did not stop cleanly (status 0x%x)", p->name,
			       st);
	}
}

void it_show_log(const struct it_proc *p)
{
	char cmd[700];

	fprintf(stderr, "---- last lines of %s:\n", p->log);
	snprintf(cmd, sizeof(cmd), "tail -n 30 '%s' >&2", p->log);
	if (system(cmd) != 0)
		fprintf(stderr, "(no log)\n");
}

/* libasan's path and a space, when this test (and so settled) is built
 * with it: a library preloaded into settled must come after it in
 * LD_PRELOAD. "" otherwise. */
void it_asan_preload(char *out, size_t len)
{
	char line[1024];
	FILE *f = fopen("/proc/self/maps", "r");

	out[0] = '\0';
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *p = strchr(line, '/');
		if (p != NULL && strstr(p, "/libasan.so") != NULL) {
			p[strcspn(p, "\n")] = '\0';
			snprintf(out, len, "%s ", p);
			break;
		}
	}
	fclose(f);
}

void it_preload_killshim(struct it_proc *p)
{
	char asan[600], shim[700], kv[1400];
	const char *build = getenv("SETTLE_BUILD");

	snprintf(shim, sizeof(shim), "%s/test/integration/.libs/libkillshim.so",
		 build != NULL ? build : ".");
	cr_assert_eq(access(shim, R_OK), 0, "%s missing (make check builds it)",
		     shim);
	it_asan_preload(asan, sizeof(asan));
	snprintf(kv, sizeof(kv), "LD_PRELOAD=%s%s", asan, shim);
	it_setenv(p, kv);
}

/* Every thread's stack of a process that is alive but not doing what was
 * awaited (eu-stack from elfutils, else gdb), and what its threads wait
 * on in the kernel: a timeout then explains itself. */
void it_show_stacks(const struct it_proc *p)
{
	char cmd[600];

	if (p->pid <= 0)
		return;
	fprintf(stderr, "---- stacks of %s (pid %d):\n", p->name, (int)p->pid);
	snprintf(
	    cmd, sizeof(cmd),
	    "for t in /proc/%d/task/*; do echo \"$t $(cat $t/stat | "
	    "cut -d' ' -f3) wchan=$(cat $t/wchan)\"; done >&2; "
	    "if command -v eu-stack >/dev/null; then "
	    "timeout 30 eu-stack -p %d >&2 2>&1; "
	    "else timeout 60 gdb -q -batch -p %d -ex 'thread apply all bt' "
	    ">&2 2>&1; fi",
	    (int)p->pid, (int)p->pid, (int)p->pid);
	if (system(cmd) != 0)
		fprintf(stderr, "(no stacks)\n");
}

void it_wait_port(struct it_proc *p, int port, int timeout_ms)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	struct sockaddr_in a = {0};

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (;;) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		int ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
		close(fd);
		if (ok)
			return;
		if (!it_alive(p)) {
			it_show_log(p);
			cr_assert_fail("%s exited before listening on %d",
				       p->name, port);
		}
		if (mono_ms() > end) {
			it_show_log(p);
			it_show_stacks(p);
			cr_assert_fail("%s not listening on %d after %d ms",
				       p->name, port, timeout_ms);
		}
		sleep_ms(20);
	}
}

/* Append what fd has to a growing buffer; false at EOF. */
static bool drain(int fd, char **buf, size_t *len, size_t *cap)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof(tmp));

	if (n <= 0)
		return n < 0 && errno == EINTR;
	if (*len + (size_t)n + 1 > *cap) {
		*cap = (*len + (size_t)n + 1) * 2;
		*buf = realloc(*buf, *cap);
		cr_assert_not_null(*buf);
	}
	memcpy(*buf + *len, tmp, (size_t)n);
	*len += (size_t)n;
	(*buf)[*len] = '\0';
	return true;
}

int it_run(char *const argv[], char **out, char **err, int timeout_ms)
{
	int po[2], pe[2], st = 0;
	char *ob = calloc(1, 1), *eb = calloc(1, 1);
	size_t ol = 0, oc = 1, el = 0, ec = 1;
	bool o_open = true, e_open = true;
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	pid_t pid;

	cr_assert(ob && eb);
	cr_assert_eq(pipe2(po, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(pe, O_CLOEXEC), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(null, 0);
		dup2(po[1], 1);
		dup2(pe[1], 2);
		execv(argv[0], argv);
		dprintf(2, "harness: exec %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	while (o_open || e_open) {
		struct pollfd pf[2] = {{po[0], POLLIN, 0}, {pe[0], POLLIN, 0}};
		int left = (int)(end > mono_ms() ? end - mono_ms() : 0);
		if (!o_open)
			pf[0].fd = -1;
		if (!e_open)
			pf[1].fd = -1;
		if (left == 0 || poll(pf, 2, left) == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			cr_assert_fail(
			    "%s did not finish within %d ms; stdout: %s "
			    "stderr: %s",
			    argv[0], timeout_ms, ob, eb);
		}
		if (o_open && pf[0].revents)
			o_open = drain(po[0], &ob, &ol, &oc);
		if (e_open && pf[1].revents)
			e_open = drain(pe[0], &eb, &el, &ec);
	}
	close(po[0]);
	close(pe[0]);
	waitpid(pid, &st, 0);
	if (out)
		*out = ob;
	else
		free(ob);
	if (err)
		*err = eb;
	else
		free(eb);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}

/* ---- Settle processes --------------------------------------------------- */

void it_node_wait_leader(struct it_node *n, int timeout_ms)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	char *argv[] = {(char *)it_bin("settlectl"),
			"--cluster",
			n->endpoint,
			"--timeout",
			"1s",
			"--json",
			"status",
			NULL};
	char last[512] = "";

	/* Through settlectl, as an operator would: the harness itself needs
	 * no client library, so tests may link either libsettle or the core
	 * library without two copies of it. */
	for (;;) {
		char *out = NULL, *err = NULL;
		int rc = it_run(argv, &out, &err, 10000);
		bool leader = rc == 0 && strstr(out, "\"role\":\"leader\"");
		snprintf(last, sizeof(last), "%s%s", out, err);
		free(out);
		free(err);
		/* A leader answering while our process is dead is somebody
		 * else's node on that port. A new leader answers UNAVAILABLE
		 * until its term's barrier is applied: wait until it serves
		 * a read, so tests may send raw requests at once. */
		if (leader && it_alive(n->proc)) {
			char *ready_argv[] = {(char *)it_bin("settlectl"),
					      "--cluster",
					      n->endpoint,
					      "--timeout",
					      "5s",
					      "tx",
					      "list",
					      "--limit",
					      "1",
					      NULL};

			rc = it_run(ready_argv, &out, &err, 10000);
			snprintf(last, sizeof(last), "%s%s", out, err);
			free(out);
			free(err);
			if (rc == 0)
				return;
		}
		if (!it_alive(n->proc)) {
			it_show_log(n->proc);
			cr_assert_fail("settled exited while starting");
		}
		if (mono_ms() > end) {
			it_show_log(n->proc);
			cr_assert_fail(
			    "settled not leader after %d ms (last: %s)",
			    timeout_ms, last);
		}
		sleep_ms(50);
	}
}
void it_node_spawn(struct it_node *n, int id, const char *const *extra)
{
	char *argv[IT_MAX_ARGS + 1];
	char ids[16], raft[32], name[32];
	int i = 0;

	memset(n, 0, sizeof(*n));
	n->port = it_free_port_pair();
	snprintf(n->endpoint, sizeof(n->endpoint), "127.0.0.1:%d", n->port);
	snprintf(raft, sizeof(raft), "127.0.0.1:%d", n->port + 1);
	snprintf(n->data, sizeof(n->data), "%s/node%d", dir, id);
	snprintf(ids, sizeof(ids), "%d", id);
	snprintf(name, sizeof(name), "node%d", id);
	cr_assert_eq(mkdir(n->data, 0755), 0, "mkdir %s: %s", n->data,
		     strerror(errno));
	argv[i++] = (char *)it_bin("settled");
	argv[i++] = "--id";
	argv[i++] = ids;
	argv[i++] = "--data";
	argv[i++] = n->data;
	argv[i++] = "--listen";
	argv[i++] = n->endpoint;
	argv[i++] = "--raft";
	argv[i++] = raft;
	while (extra && *extra && i < IT_MAX_ARGS)
		argv[i++] = (char *)*extra++;
	argv[i] = NULL;
	n->proc = it_spawn(name, argv);
}

void it_node_start(struct it_node *n, int id, const char *const *extra)
{
	it_node_spawn(n, id, extra);
	it_node_wait_leader(n, 20000);
}

/* ---- Demo banks --------------------------------------------------------- */

void it_bank_start(struct it_bank *b, const char *name, const char *accounts,
		   const char *const *extra)
{
	char *argv[IT_MAX_ARGS + 1];
	int i = 0;

	memset(b, 0, sizeof(*b));
	b->port = it_free_port_pair();
	snprintf(b->endpoint, sizeof(b->endpoint), "127.0.0.1:%d", b->port);
	snprintf(b->data, sizeof(b->data), "%s/%s", dir, name);
	argv[i++] = (char *)it_bin("settle-bank");
	argv[i++] = "serve";
	argv[i++] = "--data";
	argv[i++] = b->data;
	argv[i++] = "--listen";
	argv[i++] = b->endpoint;
	argv[i++] = "--accounts";
	argv[i++] = (char *)accounts;
	while (extra && *extra && i < IT_MAX_ARGS)
		argv[i++] = (char *)*extra++;
	argv[i] = NULL;
	b->proc = it_spawn(name, argv);
	it_wait_port(b->proc, b->port, 10000);
}

struct it_account it_bank_account(const struct it_bank *b, const char *account)
{
	char *argv[] = {(char *)it_bin("settle-bank"),
			"balances",
			"--data",
			(char *)b->data,
			"--json",
			NULL};
	struct it_account a = {0};
	char *out = NULL, *err = NULL, key[128];
	const char *p;
	int rc;

	rc = it_run(argv, &out, &err, 10000);
	cr_assert_eq(rc, 0, "settle-bank balances: exit %d: %s", rc, err);
	snprintf(key, sizeof(key), "{\"name\":\"%s\",", account);
	p = strstr(out, key);
	cr_assert_not_null(p, "no account %s in %s", account, out);
	cr_assert_eq(
	    sscanf(p + strlen(key),
		   "\"balance\":%lld,\"frozen\":%lld,\"incoming\":%lld",
		   &a.balance, &a.frozen, &a.incoming),
	    3, "cannot read account %s in %s", account, out);
	free(out);
	free(err);
	return a;
}

int it_transfer(const struct it_node *n, const struct it_bank *from,
		const char *fa, const struct it_bank *to, const char *ta,
		int amount, const char *const *extra, char *gid, size_t gidlen)
{
	char *argv[IT_MAX_ARGS + 1];
	char f[128], t[128], amt[24], *out = NULL, *err = NULL;
	const char *g;
	int i = 0, rc;

	snprintf(f, sizeof(f), "%s:%s", from->endpoint, fa);
	snprintf(t, sizeof(t), "%s:%s", to->endpoint, ta);
	snprintf(amt, sizeof(amt), "%d", amount);
	argv[i++] = (char *)it_bin("settle-transfer");
	argv[i++] = "--cluster";
	argv[i++] = (char *)n->endpoint;
	argv[i++] = "--from";
	argv[i++] = f;
	argv[i++] = "--to";
	argv[i++] = t;
	argv[i++] = "--amount";
	argv[i++] = amt;
	while (extra && *extra && i < IT_MAX_ARGS)
		argv[i++] = (char *)*extra++;
	argv[i] = NULL;
	rc = it_run(argv, &out, &err, 30000);
	if (gid && gidlen) {
		char tmp[256] = "";
		g = strstr(out, "gid: ");
		if (g)
			sscanf(g + 5, "%255s", tmp);
		snprintf(gid, gidlen, "%s", tmp);
	}
	if (rc != 0 && rc != 3)
		fprintf(stderr, "settle-transfer exit %d: %s%s\n", rc, out,
			err);
	free(out);
	free(err);
	return rc;
}

long long it_json_num(const char *out, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), "\"%s\":", key);
	p = strstr(out, k);
	cr_assert_not_null(p, "no %s in %s", key, out);
	return strtoll(p + strlen(k), NULL, 10);
}

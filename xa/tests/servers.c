/*
 * servers.c — start or find the XA test servers (see servers.h).
 */
#include "servers.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

static char xt__dir[256]; /* set when this runner started the servers */

static const char *xt__script(char *buf, size_t cap)
{
	const char *root = getenv("SETTLE_ROOT");

	snprintf(buf, cap, "%s/scripts/xa-servers",
		 root && root[0] ? root : XA_TEST_SRCDIR);
	return buf;
}

/*
 * Run "xa-servers VERB --dir DIR [--watch PID]"; with export set, every
 * KEY=VALUE line of its output goes into our environment.
 */
static int xt__run(const char *verb, const char *dir, bool watch, bool export)
{
	char script[512], cmd[1400], line[1024];
	FILE *f;
	int st;

	if (strchr(dir, '\'') != NULL)
		return -1;
	xt__script(script, sizeof(script));
	if (watch)
		snprintf(cmd, sizeof(cmd), "'%s' %s --dir '%s' --watch %d",
			 script, verb, dir, (int)getpid());
	else
		snprintf(cmd, sizeof(cmd), "'%s' %s --dir '%s'", script, verb,
			 dir);
	f = popen(cmd, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char *eq = strchr(line, '=');
		size_t n = strlen(line);

		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (export && eq != NULL &&
		    strncmp(line, "SETTLE_TEST_", 12) == 0) {
			*eq = '\0';
			setenv(line, eq + 1, 1);
		}
	}
	st = pclose(f);
	if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "xa tests: '%s' failed (exit %d)\n", cmd,
			WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return -1;
	}
	return 0;
}

int xt_servers_setup(void)
{
	const char *pg = getenv("SETTLE_TEST_PG");
	const char *my = getenv("SETTLE_TEST_MARIADB");

	if (pg && pg[0] && my && my[0])
		return 0;
	/* Short and under /tmp: unix socket paths are limited to 107 bytes
	 * and the unprivileged server user must reach the directory. */
	snprintf(xt__dir, sizeof(xt__dir), "/tmp/settle-xa-test.XXXXXX");
	if (mkdtemp(xt__dir) == NULL) {
		perror("xa tests: mkdtemp");
		xt__dir[0] = '\0';
		return -1;
	}
	fprintf(stderr, "xa tests: starting PostgreSQL and MariaDB in %s\n",
		xt__dir);
	if (xt__run("start", xt__dir, true, true) != 0) {
		fprintf(stderr,
			"xa tests: FAILED to start the XA test servers; they "
			"are required (run scripts/install-deps, then "
			"scripts/xa-servers start --dir DIR to see why)\n");
		return -1;
	}
	return 0;
}

void xt_servers_teardown(void)
{
	char cmd[600];

	if (xt__dir[0] == '\0')
		return;
	xt__run("stop", xt__dir, false, false);
	/* The servers ran as another user: rm as ourselves is enough, the
	 * directory is ours. */
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", xt__dir);
	if (system(cmd) != 0)
		fprintf(stderr, "xa tests: could not remove %s\n", xt__dir);
	xt__dir[0] = '\0';
}

/*
 * The value of key in DIR/env, which xa-servers start rewrites: a server
 * restarted by a test may have had to move to another port.
 */
static const char *xt__from_env_file(const char *key)
{
	static char val[1024];
	const char *dir = getenv("SETTLE_TEST_XA_DIR");
	char path[600], line[1100];
	size_t klen = strlen(key);
	const char *found = NULL;
	FILE *f;

	if (dir == NULL || dir[0] == '\0')
		return NULL;
	snprintf(path, sizeof(path), "%s/env", dir);
	f = fopen(path, "r");
	if (f == NULL)
		return NULL;
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);

		if (n > 0 && line[n - 1] == '\n')
			line[n - 1] = '\0';
		if (strncmp(line, key, klen) == 0 && line[klen] == '=') {
			snprintf(val, sizeof(val), "%s", line + klen + 1);
			found = val;
		}
	}
	fclose(f);
	return found;
}

const char *xt_conninfo(enum xa_rm_kind kind)
{
	const char *key =
	    kind == XA_RM_POSTGRESQL ? "SETTLE_TEST_PG" : "SETTLE_TEST_MARIADB";
	const char *v = xt__from_env_file(key);

	if (v == NULL)
		v = getenv(key);

	cr_assert(v != NULL && v[0] != '\0',
		  "the XA test servers' conninfo is not in the environment");
	return v;
}

static const char *xt__xa_dir(void)
{
	const char *dir = getenv("SETTLE_TEST_XA_DIR");

	if (dir == NULL || dir[0] == '\0') {
		fprintf(stderr, "xa tests: SETTLE_TEST_XA_DIR is not set: "
				"cannot restart a server\n");
		return NULL;
	}
	return dir;
}

int xt_servers_start(void)
{
	const char *dir = xt__xa_dir();

	return dir ? xt__run("start", dir, false, false) : -1;
}

/* SIGKILL every process whose parent is pid. */
static void xt__kill_children(pid_t pid)
{
	DIR *d = opendir("/proc");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[300], buf[512], *rp;
		long child, ppid;
		FILE *f;

		child = strtol(e->d_name, &rp, 10);
		if (*rp != '\0' || child <= 1)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/stat", child);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(buf, sizeof(buf), f) != NULL) {
			/* "pid (comm) state ppid": comm may hold spaces. */
			rp = strrchr(buf, ')');
			if (rp != NULL &&
			    sscanf(rp + 1, " %*c %ld", &ppid) == 1 &&
			    ppid == (long)pid)
				kill((pid_t)child, SIGKILL);
		}
		fclose(f);
	}
	closedir(d);
}

int xt_server_kill(enum xa_rm_kind kind)
{
	const char *dir = xt__xa_dir();
	char path[600];
	FILE *f;
	long pid = 0;

	if (dir == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/%s", dir,
		 kind == XA_RM_POSTGRESQL ? "pg/data/postmaster.pid"
					  : "mariadb/mariadbd.pid");
	f = fopen(path, "r");
	if (f == NULL || fscanf(f, "%ld", &pid) != 1 || pid <= 1) {
		fprintf(stderr, "xa tests: no server pid in %s\n", path);
		if (f != NULL)
			fclose(f);
		return -1;
	}
	fclose(f);
	/*
	 * The server and all its children at once, as a machine crash would:
	 * an orphaned PostgreSQL backend can still commit for a moment after
	 * its postmaster died (and each runs in its own process group).
	 * Stopped first, so it starts no new child meanwhile.
	 */
	if (kill((pid_t)pid, SIGSTOP) != 0) {
		perror("xa tests: kill");
		return -1;
	}
	xt__kill_children((pid_t)pid);
	if (kill((pid_t)pid, SIGKILL) != 0) {
		perror("xa tests: kill");
		return -1;
	}
	return 0;
}

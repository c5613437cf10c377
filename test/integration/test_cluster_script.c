/*
 * scripts/cluster as operators and the benchmarks use it: start, status,
 * kill, restart, stop, and its refusals (already running, port taken).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static char cdir[600];
static char script[600];

static void setup(void)
{
	it_setup();
	snprintf(cdir, sizeof(cdir), "%s/cluster", it_dir());
	snprintf(script, sizeof(script), "%s/scripts/cluster", it_srcdir());
}

/* The nodes are the script's children, not ours: stop them through it. */
static void teardown(void)
{
	char *argv[] = {script, "stop", "--dir", cdir, NULL};
	char *out = NULL, *err = NULL;

	it_run(argv, &out, &err, 30000);
	free(out);
	free(err);
	it_teardown();
}

TestSuite(cluster_script, .init = setup, .fini = teardown, .timeout = 90);

static int cluster(char **out, char **err, const char *const *args)
{
	char *argv[IT_MAX_ARGS + 1];
	int i = 0, rc;
	char *o = NULL, *e = NULL;

	argv[i++] = script;
	while (*args && i < IT_MAX_ARGS)
		argv[i++] = (char *)*args++;
	argv[i] = NULL;
	rc = it_run(argv, &o, &e, 60000);
	if (out)
		*out = o;
	else
		free(o);
	if (err)
		*err = e;
	else
		free(e);
	return rc;
}

#define CLUSTER(out, err, ...)                                                 \
	cluster(out, err, (const char *const[]){__VA_ARGS__, NULL})

static char *read_file(const char *path)
{
	static char buf[4096];
	FILE *f = fopen(path, "r");
	size_t n;

	cr_assert_not_null(f, "cannot open %s", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

Test(cluster_script, start_kill_restart_stop)
{
	char port[16], ep[64], path[700], *out, *err;
	int p = it_free_port_pair();

	snprintf(port, sizeof(port), "%d", p);
	snprintf(ep, sizeof(ep), "127.0.0.1:%d\n", p);
	cr_assert_eq(CLUSTER(&out, &err, "start", "--dir", cdir, "--port", port,
			     "--bin", it_build_dir()),
		     0, "%s%s", out, err);
	free(out);
	free(err);
	snprintf(path, sizeof(path), "%s/endpoints", cdir);
	cr_assert_str_eq(read_file(path), ep);

	cr_assert_eq(CLUSTER(&out, &err, "status", "--dir", cdir), 0, "%s",
		     err);
	cr_assert_not_null(strstr(out, "node 1: running"), "%s", out);
	cr_assert_not_null(strstr(out, "leader"), "%s", out);
	free(out);
	free(err);

	/* A second start on a running cluster is refused. */
	cr_assert_eq(CLUSTER(NULL, &err, "start", "--dir", cdir, "--port", port,
			     "--bin", it_build_dir()),
		     1);
	cr_assert_not_null(strstr(err, "already running"), "%s", err);
	free(err);

	cr_assert_eq(CLUSTER(NULL, NULL, "kill", "--dir", cdir, "1"), 0);
	cr_assert_neq(CLUSTER(&out, NULL, "status", "--dir", cdir), 0);
	cr_assert_not_null(strstr(out, "node 1: not running"), "%s", out);
	free(out);

	cr_assert_eq(CLUSTER(&out, &err, "restart", "--dir", cdir, "1"), 0,
		     "%s%s", out, err);
	free(out);
	free(err);
	cr_assert_eq(CLUSTER(&out, NULL, "status", "--dir", cdir), 0);
	cr_assert_not_null(strstr(out, "leader"), "%s", out);
	free(out);

	cr_assert_eq(CLUSTER(&out, NULL, "stop", "--dir", cdir), 0);
	cr_assert_not_null(strstr(out, "stopped"), "%s", out);
	free(out);
	snprintf(path, sizeof(path), "%s/node1.pid", cdir);
	cr_assert_neq(access(path, F_OK), 0, "pid file left behind");
}

Test(cluster_script, refuses_a_taken_port_and_bad_usage)
{
	char port[16], other[700], *err;
	int p = it_free_port_pair();

	snprintf(port, sizeof(port), "%d", p);
	snprintf(other, sizeof(other), "%s/other", it_dir());
	cr_assert_eq(CLUSTER(NULL, NULL, "start", "--dir", cdir, "--port", port,
			     "--bin", it_build_dir()),
		     0);
	cr_assert_eq(CLUSTER(NULL, &err, "start", "--dir", other, "--port",
			     port, "--bin", it_build_dir()),
		     1);
	cr_assert_not_null(strstr(err, "already in use"), "%s", err);
	free(err);

	cr_assert_eq(CLUSTER(NULL, &err, "frobnicate"), 2);
	cr_assert_not_null(strstr(err, "unknown command"), "%s", err);
	free(err);
	cr_assert_eq(
	    CLUSTER(NULL, &err, "start", "--dir", other, "--nodes", "zero"), 1);
	cr_assert_not_null(strstr(err, "--nodes"), "%s", err);
	free(err);
	cr_assert_eq(CLUSTER(NULL, &err, "kill", "--dir", cdir, "7"), 1);
	cr_assert_not_null(strstr(err, "NODE must be"), "%s", err);
	free(err);
}

Test(cluster_script, node_dying_at_start_shows_its_log)
{
	char port[16], *err;

	snprintf(port, sizeof(port), "%d", it_free_port_pair());
	cr_assert_eq(CLUSTER(NULL, &err, "start", "--dir", cdir, "--port", port,
			     "--bin", it_build_dir(), "--", "--no-such-flag"),
		     1);
	cr_assert_not_null(strstr(err, "exited during start"), "%s", err);
	cr_assert_not_null(strstr(err, "no-such-flag"),
			   "the node's own complaint must be shown: %s", err);
	free(err);
}

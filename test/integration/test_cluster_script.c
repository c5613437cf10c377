/*
 * scripts/cluster as operators and the benchmarks use it: start, status,
 * kill, restart, stop, add, remove, and its refusals (already running,
 * port taken).
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "wal/fsm.h"

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

/* Whether a line of the file at path holds text. */
static bool log_has(const char *path, const char *text)
{
	char line[2048];
	bool found = false;
	FILE *f = fopen(path, "r");

	while (f != NULL && !found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, text) != NULL;
	if (f != NULL)
		fclose(f);
	return found;
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
	/* Secure by default: TLS without being asked. */
	snprintf(path, sizeof(path), "%s/node1.args", cdir);
	cr_assert_not_null(strstr(read_file(path), "--tls-cert"));
	cr_assert_null(strstr(read_file(path), "--insecure"));

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

static bool port_free(int port)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	bool ok;

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

/* A base port for n nodes (2n ports) all free now, below the range Linux
 * hands out for outgoing connections, so that no client takes one of
 * them before the node listed later binds it. */
static int free_ports(int n)
{
	for (int tries = 0; tries < 500; tries++) {
		int p = it_free_port_pair(), i;

		if (p + 2 * n >= 32768)
			continue;
		for (i = 2; i < 2 * n && port_free(p + i); i++)
			;
		if (i == 2 * n)
			return p;
	}
	cr_assert_fail("no %d free ports in a row", 2 * n);
	return -1;
}

/* add starts node N+1 with --join and makes it a voter; remove takes a
 * node out (moving leadership away first if it leads) and stops it. */
Test(cluster_script, add_and_remove_nodes)
{
	char port[16], path[700], *out, *err;
	int p = free_ports(3);

	snprintf(port, sizeof(port), "%d", p);
	/* Plaintext, asked for: every node, the added one too. */
	cr_assert_eq(CLUSTER(&out, &err, "start", "--dir", cdir, "--nodes", "2",
			     "--port", port, "--bin", it_build_dir(),
			     "--insecure"),
		     0, "%s%s", out, err);
	free(out);
	free(err);

	cr_assert_eq(CLUSTER(&out, &err, "add", "--dir", cdir), 0, "%s%s", out,
		     err);
	cr_assert_not_null(strstr(out, "node 3 added"), "%s", out);
	free(out);
	free(err);
	snprintf(path, sizeof(path), "%s/node3.args", cdir);
	cr_assert_not_null(strstr(read_file(path), "--insecure"));
	cr_assert_null(strstr(read_file(path), "--tls-cert"));
	snprintf(path, sizeof(path), "%s/endpoints", cdir);
	{
		const char *eps = read_file(path);
		int commas = 0;

		for (const char *c = eps; *c; c++)
			commas += *c == ',';
		cr_assert_eq(commas, 2, "three endpoints expected: %s", eps);
	}

	/* Node 1 bootstrapped the cluster and most likely leads. */
	cr_assert_eq(CLUSTER(&out, &err, "remove", "--dir", cdir, "1"), 0,
		     "%s%s", out, err);
	cr_assert_not_null(strstr(out, "node 1 removed"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(CLUSTER(&out, &err, "status", "--dir", cdir), 0, "%s%s",
		     out, err);
	cr_assert_not_null(strstr(out, "node 1: removed"), "%s", out);
	cr_assert_not_null(strstr(out, "node 3: running"), "%s", out);
	cr_assert_not_null(strstr(out, "leader"), "%s", out);
	free(out);
	free(err);
	cr_assert_eq(CLUSTER(NULL, &err, "restart", "--dir", cdir, "1"), 1);
	cr_assert_not_null(strstr(err, "removed"), "%s", err);
	free(err);
}

/* --tls: certificates made, every node behind TLS, the script's own
 * status (settlectl with DIR/tls.env) sees the leader, a node added later
 * gets a certificate of its own, and a plain settlectl is refused. */
Test(cluster_script, tls_cluster)
{
	char port[16], path[700], ep[64], *out, *err;
	int p = it_free_port_pair();
	char *plain[8];

	snprintf(port, sizeof(port), "%d", p);
	cr_assert_eq(CLUSTER(&out, &err, "start", "--dir", cdir, "--nodes", "2",
			     "--port", port, "--bin", it_build_dir(), "--tls"),
		     0, "%s%s", out, err);
	cr_assert_not_null(strstr(out, "tls.env"), "%s", out);
	free(out);
	free(err);
	snprintf(path, sizeof(path), "%s/node2.args", cdir);
	cr_assert_not_null(strstr(read_file(path), "certs/node2.pem"));
	cr_assert_eq(CLUSTER(&out, &err, "status", "--dir", cdir), 0, "%s",
		     err);
	cr_assert_not_null(strstr(out, "leader"), "%s", out);
	free(out);
	free(err);
	/* The members' table records who adds a node from feature level 8:
	 * wait for the cluster to run at it. */
	char cert[700], key[700], ca[700], *ctl[14];

	snprintf(ep, sizeof(ep), "127.0.0.1:%d", p);
	snprintf(cert, sizeof(cert), "%s/certs/admin.pem", cdir);
	snprintf(key, sizeof(key), "%s/certs/admin.key", cdir);
	snprintf(ca, sizeof(ca), "%s/certs/ca.pem", cdir);
	ctl[0] = (char *)it_bin("settlectl");
	ctl[1] = "--cluster";
	ctl[2] = ep;
	ctl[3] = "--tls-cert";
	ctl[4] = cert;
	ctl[5] = "--tls-key";
	ctl[6] = key;
	ctl[7] = "--tls-ca";
	ctl[8] = ca;
	ctl[9] = "--json";
	ctl[10] = "status";
	ctl[11] = NULL;
	{
		char want[64];
		bool top = false;

		snprintf(want, sizeof(want), "\"cluster_feature_level\":%d",
			 FSM_LEVEL);
		for (int tries = 0; tries < 100 && !top; tries++) {
			if (it_run(ctl, &out, &err, 10000) == 0)
				top = strstr(out, want) != NULL;
			free(out);
			free(err);
			if (!top)
				usleep(100 * 1000);
		}
		cr_assert(top, "the cluster never ran at level %d", FSM_LEVEL);
	}
	cr_assert_eq(CLUSTER(&out, &err, "add", "--dir", cdir), 0, "%s%s", out,
		     err);
	free(out);
	free(err);
	/* settlectl cluster members names the certificate that added it. */
	ctl[9] = "cluster";
	ctl[10] = "members";
	cr_assert_eq(it_run(ctl, &out, &err, 10000), 0, "%s", err);
	cr_assert_not_null(strstr(out, "ADDED BY"), "%s", out);
	cr_assert_not_null(strstr(out, "certificate admin"), "%s", out);
	free(out);
	free(err);
	snprintf(path, sizeof(path), "%s/node3.args", cdir);
	cr_assert_not_null(strstr(read_file(path), "certs/node3.pem"));
	cr_assert_null(strstr(read_file(path), "certs/node1.pem"));
	/* The leader says whose certificate asked for the change. */
	{
		char l1[700], l2[700];

		snprintf(l1, sizeof(l1), "%s/node1.log", cdir);
		snprintf(l2, sizeof(l2), "%s/node2.log", cdir);
		cr_assert(log_has(l1, "addition of node 3 asked by "
				      "certificate admin") ||
			      log_has(l2, "addition of node 3 asked by "
					  "certificate admin"),
			  "no node logged who asked for node 3");
	}
	/* Without the certificate: refused. */
	snprintf(ep, sizeof(ep), "127.0.0.1:%d", p);
	plain[0] = (char *)it_bin("settlectl");
	plain[1] = "--cluster";
	plain[2] = ep;
	plain[3] = "--timeout";
	plain[4] = "1s";
	plain[5] = "status";
	plain[6] = NULL;
	cr_assert_neq(it_run(plain, &out, &err, 10000), 0, "%s", out);
	free(out);
	free(err);
	cr_assert_eq(CLUSTER(&out, NULL, "stop", "--dir", cdir), 0);
	free(out);
}

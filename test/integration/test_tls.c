/*
 * test_tls.c — a real settled with --tls-*: settle-bench (the asynchronous
 * client and an in-process participant) commits through it over mutual
 * TLS, both ways (client -> node, node -> participant); a client with
 * another CA's certificate, or none, commits nothing and the node logs
 * who it refused. Certificates from scripts/make-certs.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coord_util.h"
#include "harness.h"
#include "wal/fsm.h"
#include "settle.h"

TestSuite(tls, .init = cu_setup, .fini = it_teardown, .timeout = 120);

static char certs[600], other[600];

static void make_certs(void)
{
	char *argv[10];
	char *out = NULL, *err = NULL;
	char script[600];

	snprintf(script, sizeof(script), "%s/scripts/make-certs", it_srcdir());
	snprintf(certs, sizeof(certs), "%s/certs", it_dir());
	snprintf(other, sizeof(other), "%s/other", it_dir());
	argv[0] = script;
	argv[1] = certs;
	argv[2] = "node1";
	argv[3] = "bench";
	argv[4] = "teller";
	argv[5] = "admin";
	argv[6] = "nobody";
	argv[7] = "bank";
	argv[8] = NULL;
	cr_assert_eq(it_run(argv, &out, &err, 60000), 0, "%s", err);
	free(out);
	free(err);
	/* Another CA and a client and node it signed: a stranger, and the
	 * certificates a rotation moves to. */
	argv[1] = other;
	argv[2] = "bench";
	argv[3] = "node1";
	argv[4] = NULL;
	cr_assert_eq(it_run(argv, &out, &err, 60000), 0, "%s", err);
	free(out);
	free(err);
}

static void start_tls_node(struct it_node *n, const char *dir, const char *name,
			   const char *extra_flag, const char *extra_value);

static void start_node(struct it_node *n)
{
	start_tls_node(n, certs, "node1", NULL, NULL);
	cr_assert(!cu_wait_log(n->proc->log, "plaintext", 0));
}

/* The PEM files of certificate name in dir (its CA's too). */
struct files {
	char cert[700], key[700], ca[700];
};

static void files_of(struct files *f, const char *dir, const char *name)
{
	snprintf(f->cert, sizeof(f->cert), "%s/%s.pem", dir, name);
	snprintf(f->key, sizeof(f->key), "%s/%s.key", dir, name);
	snprintf(f->ca, sizeof(f->ca), "%s/ca.pem", dir);
}

/* Append --tls-cert/--tls-key/--tls-ca of f to argv at a; the new a. */
static int tls_argv(char **argv, int a, struct files *f)
{
	argv[a++] = "--tls-cert";
	argv[a++] = f->cert;
	argv[a++] = "--tls-key";
	argv[a++] = f->key;
	argv[a++] = "--tls-ca";
	argv[a++] = f->ca;
	return a;
}

/* settle-bench for 2 s, its certificate from dir (NULL: no TLS); its
 * --json line in *out (freed by the caller). */
static int bench(const struct it_node *n, const char *dir, char **out)
{
	struct files f;
	char *argv[20];
	char *err = NULL;
	int a = 0, st;

	argv[a++] = (char *)it_bin("settle-bench");
	argv[a++] = "--cluster";
	argv[a++] = (char *)n->endpoint;
	argv[a++] = "--concurrency";
	argv[a++] = "8";
	argv[a++] = "--duration";
	argv[a++] = "2";
	argv[a++] = "--json";
	if (dir != NULL) {
		files_of(&f, dir, "bench");
		a = tls_argv(argv, a, &f);
	}
	argv[a] = NULL;
	st = it_run(argv, out, &err, 60000);
	if (st != 0)
		fprintf(stderr, "settle-bench: %s\n", err);
	free(err);
	return st;
}

Test(tls, transactions_commit_over_mutual_tls)
{
	struct it_node n;
	char *out = NULL;

	make_certs();
	start_node(&n);
	cr_assert_eq(bench(&n, certs, &out), 0, "%s", out);
	/* Committed means every Confirm reached the participant over TLS
	 * and was answered: the node's client certificate passed its check. */
	cr_assert_gt(it_json_num(out, "committed"), 0, "%s", out);
	cr_assert_eq(it_json_num(out, "errors"), 0, "%s", out);
	free(out);
	cu_stop_clean(&n);
}

Test(tls, a_stranger_and_a_plain_client_commit_nothing)
{
	struct it_node n;
	char *out = NULL;

	make_certs();
	start_node(&n);
	bench(&n, other, &out);
	cr_assert_eq(it_json_num(out, "committed"), 0, "%s", out);
	free(out);
	cr_assert(cu_wait_log(n.proc->log, "TLS: handshake", 5000),
		  "the node did not log the refused certificate");
	cr_assert(
	    cu_wait_log(n.proc->log, "closing connection from 127.0.0.1", 0));
	out = NULL;
	bench(&n, NULL, &out);
	cr_assert_eq(it_json_num(out, "committed"), 0, "%s", out);
	free(out);
	/* And the node still serves the right certificate. */
	out = NULL;
	cr_assert_eq(bench(&n, certs, &out), 0, "%s", out);
	cr_assert_gt(it_json_num(out, "committed"), 0, "%s", out);
	free(out);
	cu_stop_clean(&n);
}

/* settlectl (the blocking client) over TLS: its certificate from the
 * environment, as scripts set it. The harness's wait for a leader is a
 * settlectl status, so starting the node is the first check. */
Test(tls, settlectl_over_tls)
{
	static char cert[700], key[700], ca[700];
	const char *args[] = {"--tls-cert", cert, "--tls-key", key,
			      "--tls-ca",   ca,	  NULL};
	char *argv[9];
	char *out = NULL, *err = NULL;
	struct it_node n;

	make_certs();
	snprintf(cert, sizeof(cert), "%s/node1.pem", certs);
	snprintf(key, sizeof(key), "%s/node1.key", certs);
	snprintf(ca, sizeof(ca), "%s/ca.pem", certs);
	setenv("SETTLE_TLS_CERT", cert, 1);
	setenv("SETTLE_TLS_KEY", key, 1);
	setenv("SETTLE_TLS_CA", ca, 1);
	it_node_start(&n, 1, args);
	unsetenv("SETTLE_TLS_CERT");
	unsetenv("SETTLE_TLS_KEY");
	unsetenv("SETTLE_TLS_CA");
	argv[0] = (char *)it_bin("settlectl");
	argv[1] = "--cluster";
	argv[2] = n.endpoint;
	argv[3] = "--timeout";
	argv[4] = "1s";
	argv[5] = "status";
	argv[6] = NULL;
	cr_assert_neq(it_run(argv, &out, &err, 10000), 0,
		      "a plain settlectl was answered: %s", out);
	free(out);
	free(err);
	/* The bench's certificate is another of the CA's: an operator's. */
	snprintf(cert, sizeof(cert), "%s/bench.pem", certs);
	snprintf(key, sizeof(key), "%s/bench.key", certs);
	argv[6] = "--tls-cert";
	argv[7] = cert;
	argv[8] = NULL;
	cr_assert_eq(it_run(argv, &out, &err, 10000), 2,
		     "--tls-cert alone was not refused as bad usage");
	cr_assert_not_null(strstr(err, "--tls-key"), "%s", err);
	free(out);
	free(err);
	cu_stop_clean(&n);
}

/* A blocking client with certificate NAME of the CA in dir. */
static settle_client *client_in(const struct it_node *n, const char *dir,
				const char *name)
{
	struct files f;
	struct settle_tls tls = {.cert = f.cert, .key = f.key, .ca = f.ca};
	settle_client *c;

	files_of(&f, dir, name);
	cr_assert_eq(settle_client_open(n->endpoint, NULL, &c), 0);
	cr_assert_eq(settle_client_set_tls(c, &tls), 0, "%s",
		     settle_client_errmsg(c));
	return c;
}

/* A Begin through c is answered OK. */
static void begins(settle_client *c)
{
	int rv = settle_begin(c, NULL, 60000, NULL, 0);

	cr_assert_eq(rv, 0, "%d %s", rv, settle_client_errmsg(c));
}

/* The node of the test, started with its TLS files in dir (node NAME). */
static void start_tls_node(struct it_node *n, const char *dir, const char *name,
			   const char *extra_flag, const char *extra_value)
{
	static char cert[700], key[700], ca[700];
	const char *args[] = {"--tls-cert", cert,	 "--tls-key",
			      key,	    "--tls-ca",	 ca,
			      extra_flag,   extra_value, NULL};

	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	it_node_spawn(n, 1, args);
	cr_assert(cu_wait_log(n->proc->log, "is ready", 20000),
		  "the node did not become a ready leader");
}

/*
 * Under TLS --max-open-per-client counts per certificate: two clients on
 * the same address are apart, and the one at its limit is named by its
 * certificate.
 */
Test(tls, open_transactions_are_counted_per_certificate)
{
	struct it_node n;
	settle_client *hog, *teller;
	int rv;

	make_certs();
	start_tls_node(&n, certs, "node1", "--max-open-per-client", "5");
	hog = client_in(&n, certs, "bench");
	teller = client_in(&n, certs, "teller");
	for (int i = 0; i < 5; i++)
		begins(hog);
	rv = settle_begin(hog, NULL, 60000, NULL, 0);
	cr_assert_eq(rv, SETTLE_EEXHAUSTED, "%d %s", rv,
		     settle_client_errmsg(hog));
	cr_assert_not_null(
	    strstr(settle_client_errmsg(hog), "certificate bench"), "%s",
	    settle_client_errmsg(hog));
	/* Another certificate from the same address: its own count. */
	begins(teller);
	settle_client_close(hog);
	settle_client_close(teller);
	cu_stop_clean(&n);
}

static void copy_file(const char *from, const char *to)
{
	char buf[8192];
	FILE *in = fopen(from, "rb"), *out;
	size_t k;

	cr_assert_not_null(in, "%s", from);
	out = fopen(to, "wb");
	cr_assert_not_null(out, "%s", to);
	while ((k = fread(buf, 1, sizeof(buf), in)) > 0)
		cr_assert_eq(fwrite(buf, 1, k, out), k);
	fclose(in);
	cr_assert_eq(fclose(out), 0);
}

/* The node's files at live/ take the certificates of dir. */
static void install(const char *live, const char *dir)
{
	char from[700], to[700];
	static const char *const names[][2] = {
	    {"node1.pem", "node.pem"},
	    {"node1.key", "node.key"},
	    {"ca.pem", "ca.pem"},
	};

	for (size_t i = 0; i < 3; i++) {
		snprintf(from, sizeof(from), "%s/%s", dir, names[i][0]);
		snprintf(to, sizeof(to), "%s/%s", live, names[i][1]);
		copy_file(from, to);
	}
}

/*
 * A rotation: the node's files replaced by those of another CA, then
 * SIGHUP. New connections go by the new files (a client of the old CA is
 * refused, one of the new is served); a connection open before, whose
 * certificate the new CA did not sign, is closed; files that do not load
 * change nothing.
 */
Test(tls, certificates_reload_on_sighup)
{
	static char live[600], cert[700];
	struct it_node n;
	settle_client *before, *old_ca, *new_ca;
	FILE *f;
	int rv;

	make_certs();
	snprintf(live, sizeof(live), "%s/live", it_dir());
	cr_assert_eq(mkdir(live, 0700), 0);
	install(live, certs);
	snprintf(cert, sizeof(cert), "%s/node.pem", live);
	start_tls_node(&n, live, "node", NULL, NULL);
	before = client_in(&n, certs, "teller");
	begins(before);

	install(live, other);
	cr_assert_eq(kill(n.proc->pid, SIGHUP), 0);
	cr_assert(cu_wait_log(n.proc->log, "reloaded", 5000),
		  "no reload in the log");
	old_ca = client_in(&n, certs, "teller");
	rv = settle_begin(old_ca, NULL, 60000, NULL, 0);
	cr_assert_eq(rv, SETTLE_ETLS, "%d %s", rv,
		     settle_client_errmsg(old_ca));
	new_ca = client_in(&n, other, "bench");
	begins(new_ca);
	/* The connection made before the reload is closed: its certificate
	 * is the old CA's, which the node no longer trusts (a rotation that
	 * keeps old clients lists both CAs in the file). */
	cr_assert(
	    cu_wait_log(n.proc->log, "fails the reloaded TLS files", 5000),
	    "the old CA's connection was kept");
	rv = settle_begin(before, NULL, 60000, NULL, 0);
	cr_assert_eq(rv, SETTLE_ETLS, "%d %s", rv,
		     settle_client_errmsg(before));

	/* A broken certificate file: nothing changes, and the log says so. */
	f = fopen(cert, "w");
	cr_assert_not_null(f);
	fputs("not a certificate\n", f);
	fclose(f);
	cr_assert_eq(kill(n.proc->pid, SIGHUP), 0);
	cr_assert(cu_wait_log(n.proc->log, "not reloaded", 5000));
	settle_client_close(new_ca);
	new_ca = client_in(&n, other, "bench");
	begins(new_ca);
	settle_client_close(before);
	settle_client_close(old_ca);
	settle_client_close(new_ca);
	cu_stop_clean(&n);
}

/* settlectl with certificate NAME of the test's CA: its exit status, its
 * stdout in *out (if out) and stderr in *err (freed by the caller). */
static int ctl_as(const struct it_node *n, const char *name, char **out,
		  char **err, const char *const *words)
{
	struct files f;
	char *argv[24], *o = NULL;
	int a = 0, st;

	files_of(&f, certs, name);
	argv[a++] = (char *)it_bin("settlectl");
	argv[a++] = "--cluster";
	argv[a++] = (char *)n->endpoint;
	a = tls_argv(argv, a, &f);
	while (*words != NULL && a < 23)
		argv[a++] = (char *)*words++;
	argv[a] = NULL;
	st = it_run(argv, &o, err, 10000);
	if (out != NULL)
		*out = o;
	else
		free(o);
	return st;
}

/*
 * --roles: an initiator begins but cannot resolve; an observer reads but
 * cannot begin; a certificate not listed can do nothing; an admin can
 * run the operator's verbs. Refusals are PERMISSION_DENIED naming the
 * roles, and change nothing.
 */
Test(tls, roles_from_certificates)
{
	static char roles[700];
	struct it_node n;
	settle_client *teller, *bench;
	char gid[SETTLE_GID_BUFSIZE], *err = NULL, *out = NULL;
	FILE *f;
	int rv;

	make_certs();
	snprintf(roles, sizeof(roles), "%s/roles", it_dir());
	f = fopen(roles, "w");
	cr_assert_not_null(f);
	fputs("peer cn:node1\ninitiator cn:teller\nobserver cn:bench\n"
	      "admin cn:admin\n",
	      f);
	fclose(f);
	start_tls_node(&n, certs, "node1", "--roles", roles);

	teller = client_in(&n, certs, "teller");
	cr_assert_eq(settle_begin(teller, NULL, 60000, gid, sizeof(gid)), 0,
		     "%s", settle_client_errmsg(teller));
	bench = client_in(&n, certs, "bench");
	rv = settle_begin(bench, NULL, 60000, NULL, 0);
	cr_assert_eq(rv, SETTLE_EDENIED, "%d %s", rv,
		     settle_client_errmsg(bench));
	cr_assert_not_null(strstr(settle_client_errmsg(bench), "observer"),
			   "%s", settle_client_errmsg(bench));

	/* The observer reads. */
	cr_assert_eq(ctl_as(&n, "bench", NULL, &err,
			    (const char *const[]){"tx", "show", gid, NULL}),
		     0, "%s", err);
	free(err);
	/* The initiator cannot resolve its own transaction. */
	cr_assert_eq(
	    ctl_as(&n, "teller", NULL, &err,
		   (const char *const[]){"tx", "resolve", gid, "--branch", "1",
					 "--reason", "test", NULL}),
	    1);
	cr_assert_not_null(strstr(err, "PERMISSION_DENIED"), "%s", err);
	cr_assert_not_null(strstr(err, "needs admin"), "%s", err);
	free(err);
	/* Nobody can do anything, not even look. */
	cr_assert_eq(ctl_as(&n, "nobody", NULL, &err,
			    (const char *const[]){"tx", "show", gid, NULL}),
		     1);
	cr_assert_not_null(strstr(err, "no role"), "%s", err);
	free(err);
	/* The admin reaches the verb (the transaction has no branch 1: the
	 * refusal is the coordinator's, not the role check's). */
	ctl_as(&n, "admin", NULL, &err,
	       (const char *const[]){"tx", "resolve", gid, "--branch", "1",
				     "--reason", "test", NULL});
	cr_assert_null(strstr(err, "PERMISSION_DENIED"), "%s", err);
	free(err);
	/* Nothing the refused calls asked for happened. */
	cr_assert_eq(
	    ctl_as(&n, "admin", &out, &err,
		   (const char *const[]){"--json", "tx", "show", gid, NULL}),
	    0, "%s", err);
	cr_assert_not_null(strstr(out, "\"state\":\"active\""), "%s", out);
	cr_assert_null(strstr(out, "resolve"), "%s", out);
	free(out);
	free(err);
	settle_client_close(teller);
	settle_client_close(bench);
	cu_stop_clean(&n);
}

/*
 * --tls-crl: a certificate the CA revoked is refused like a stranger's;
 * the others of the CA are served.
 */
/* scripts/make-certs --revoke certs name: name revoked, certs/crl.pem
 * written. */
static void revoke_cert(const char *name)
{
	char script[600], *argv[5], *out = NULL, *err = NULL;

	snprintf(script, sizeof(script), "%s/scripts/make-certs", it_srcdir());
	argv[0] = script;
	argv[1] = "--revoke";
	argv[2] = certs;
	argv[3] = (char *)name;
	argv[4] = NULL;
	cr_assert_eq(it_run(argv, &out, &err, 60000), 0, "%s", err);
	free(out);
	free(err);
}

Test(tls, a_revoked_certificate_is_refused)
{
	char crl[700];
	struct it_node n;
	settle_client *teller, *bench;
	int rv;

	make_certs();
	revoke_cert("teller");
	snprintf(crl, sizeof(crl), "%s/crl.pem", certs);
	start_tls_node(&n, certs, "node1", "--tls-crl", crl);
	teller = client_in(&n, certs, "teller");
	rv = settle_begin(teller, NULL, 60000, NULL, 0);
	cr_assert_eq(rv, SETTLE_ETLS, "%d %s", rv,
		     settle_client_errmsg(teller));
	cr_assert(cu_wait_log(n.proc->log, "revoked", 5000),
		  "the node did not log the revocation");
	bench = client_in(&n, certs, "bench");
	begins(bench);
	settle_client_close(teller);
	settle_client_close(bench);
	cu_stop_clean(&n);
}

/* Point the environment (which children inherit) at certificate name. */
static void env_as(const char *name)
{
	struct files f;

	files_of(&f, certs, name);
	setenv("SETTLE_TLS_CERT", f.cert, 1);
	setenv("SETTLE_TLS_KEY", f.key, 1);
	setenv("SETTLE_TLS_CA", f.ca, 1);
}

/*
 * A bank that knows the cluster's certificate (SETTLE_TLS_COORDINATORS)
 * takes Try from an initiator and Confirm from the node, but not a
 * Confirm an initiator sends itself.
 */
static void fingerprint_of(const char *name, char *out, size_t len);

Test(tls, a_participant_takes_phase_2_only_from_the_coordinators)
{
	struct it_node n;
	struct it_bank b;
	settle_client *teller;
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	char gid[SETTLE_GID_BUFSIZE];
	int rv;

	char fp[200], coords[210];

	make_certs();
	start_tls_node(&n, certs, "node1", NULL, NULL);
	env_as("bank");
	/* The node named by its certificate's fingerprint (a CN does as
	 * well: scripts/quickstart's banks name node1,node2,node3). */
	fingerprint_of("node1", fp, sizeof(fp));
	snprintf(coords, sizeof(coords), "fp:%s", fp);
	setenv("SETTLE_TLS_COORDINATORS", coords, 1);
	it_bank_start(&b, "bank", "alice=1000,bob=500", NULL);
	unsetenv("SETTLE_TLS_COORDINATORS");
	env_as("teller");
	rv =
	    it_transfer(&n, &b, "alice", &b, "bob", 10, NULL, gid, sizeof(gid));
	cr_assert_eq(rv, 0, "the transfer over TLS failed (%d)", rv);
	cr_assert_eq(it_bank_account(&b, "alice").balance, 990);
	cr_assert_eq(it_bank_account(&b, "bob").balance, 510);

	/* The initiator confirms a branch itself: refused, nothing moves. */
	teller = client_in(&n, certs, "teller");
	req.gid = gid;
	req.branch_id = 1;
	req.payload.data = (uint8_t *)"account=alice;amount=-100";
	req.payload.len = strlen("account=alice;amount=-100");
	rv = settle_client_call_at(
	    teller, b.endpoint, SETTLE__V1__METHOD__CONFIRM, &req.base,
	    &settle__v1__branch_response__descriptor, &resp);
	cr_assert_eq(rv, SETTLE_EDENIED, "%d %s", rv,
		     settle_client_errmsg(teller));
	cr_assert_not_null(strstr(settle_client_errmsg(teller), "coordinators"),
			   "%s", settle_client_errmsg(teller));
	cr_assert_eq(it_bank_account(&b, "alice").balance, 990);
	settle_client_close(teller);
	unsetenv("SETTLE_TLS_CERT");
	unsetenv("SETTLE_TLS_KEY");
	unsetenv("SETTLE_TLS_CA");
	cu_stop_clean(&n);
}

/*
 * 800 connections that never start their TLS handshake: a client with a
 * certificate keeps committing meanwhile, and every one of them is cut
 * off once the frame timeout has passed, logged as such.
 */
Test(tls, silent_connections_do_not_stop_the_node)
{
	enum { SILENT = 800 };
	static int fds[SILENT];
	struct it_node n;
	char *out = NULL;
	int cut = 0;

	make_certs();
	start_tls_node(&n, certs, "node1", "--frame-timeout", "2s");
	for (int i = 0; i < SILENT; i++)
		fds[i] = cu_dial(&n);
	cr_assert_eq(bench(&n, certs, &out), 0, "%s", out);
	cr_assert_gt(it_json_num(out, "committed"), 0, "%s", out);
	cr_assert_eq(it_json_num(out, "errors"), 0, "%s", out);
	free(out);
	for (int i = 0; i < SILENT; i++) {
		cut += cu_closed_within(fds[i], 4000);
		close(fds[i]);
	}
	cr_assert_eq(cut, SILENT, "only %d of %d silent connections cut off",
		     cut, SILENT);
	cr_assert(cu_wait_log(n.proc->log, "TLS handshake not done", 0));
	cu_stop_clean(&n);
}

/*
 * An operator's action under TLS names the certificate that made it in
 * the transaction's history: a transfer whose Confirm fails for good is
 * resolved by the admin, and the resolve event says "by certificate
 * admin".
 */
Test(tls, admin_actions_name_the_certificate)
{
	struct it_node n;
	struct it_bank a, b;
	char gid[SETTLE_GID_BUFSIZE], *out = NULL, *err = NULL;
	int st = 1;

	make_certs();
	start_tls_node(&n, certs, "node1", NULL, NULL);
	env_as("bank");
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(&b, "bank-b", "bob=500",
		      (const char *const[]){"--fail-confirm", NULL});
	env_as("teller");
	cr_assert_eq(it_transfer(&n, &a, "alice", &b, "bob", 100, NULL, gid,
				 sizeof(gid)),
		     0);
	unsetenv("SETTLE_TLS_CERT");
	unsetenv("SETTLE_TLS_KEY");
	unsetenv("SETTLE_TLS_CA");
	/* Bob's Confirm fails for good: the branch waits for an operator. */
	for (int i = 0; i < 100 && st != 0; i++) {
		free(out);
		free(err);
		out = err = NULL;
		ctl_as(
		    &n, "admin", &out, &err,
		    (const char *const[]){"--json", "tx", "show", gid, NULL});
		st = strstr(out, "\"state\":\"failed\"") != NULL ? 0 : 1;
		if (st != 0)
			usleep(100 * 1000);
	}
	cr_assert_eq(st, 0, "no branch failed: %s", out);
	free(out);
	free(err);
	cr_assert_eq(ctl_as(&n, "admin", NULL, &err,
			    (const char *const[]){
				"tx", "resolve", gid, "--branch", "2",
				"--reason", "bob credited by hand", NULL}),
		     0, "%s", err);
	free(err);
	cr_assert_eq(ctl_as(&n, "admin", &out, &err,
			    (const char *const[]){"tx", "show", gid, NULL}),
		     0, "%s", err);
	cr_assert_not_null(
	    strstr(out, "by certificate admin: bob credited by hand"), "%s",
	    out);
	free(out);
	free(err);
	cu_stop_clean(&n);
}

/*
 * A node that dies (SIGKILL: no close_notify) is a lost connection to the
 * blocking client, as on plain TCP, not a TLS failure: the client's next
 * call retries and reaches the node once it is back.
 */
Test(tls, a_node_killed_is_a_lost_connection_not_a_tls_error)
{
	struct it_node n;
	settle_client *teller;

	make_certs();
	start_tls_node(&n, certs, "node1", NULL, NULL);
	teller = client_in(&n, certs, "teller");
	begins(teller);
	it_kill(n.proc);
	it_restart(n.proc);
	begins(teller);
	settle_client_close(teller);
	cu_stop_clean(&n);
}

/* Run argv with SETTLE_INSECURE unset (the harness sets it for every
 * child); its exit status, stderr in *err (freed by the caller). */
static int run_secure(char **argv, char **err)
{
	char *out = NULL;
	int st;

	unsetenv("SETTLE_INSECURE");
	st = it_run(argv, &out, err, 20000);
	setenv("SETTLE_INSECURE", "1", 1);
	free(out);
	return st;
}

/*
 * Secure by default: without certificates settled, settlectl and
 * settle-bench refuse to run (usage exit 2, naming --insecure) unless
 * plaintext is asked for with --insecure (or SETTLE_INSECURE=1); a node
 * run so warns that every port is open; --insecure beside --tls-* is a
 * contradiction, refused.
 */
Test(tls, plaintext_only_when_asked)
{
	static const char *const insecure[] = {"--insecure", NULL};
	char data[700], listen[32], raft[32], *err = NULL;
	char *argv[20];
	struct files f;
	struct it_node n;
	int p = it_free_port_pair();

	make_certs();
	snprintf(data, sizeof(data), "%s/plain", it_dir());
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", p);
	snprintf(raft, sizeof(raft), "127.0.0.1:%d", p + 1);
	argv[0] = (char *)it_bin("settled");
	argv[1] = "--id";
	argv[2] = "1";
	argv[3] = "--data";
	argv[4] = data;
	argv[5] = "--listen";
	argv[6] = listen;
	argv[7] = "--raft";
	argv[8] = raft;
	argv[9] = NULL;
	cr_assert_eq(run_secure(argv, &err), 2, "settled ran without TLS");
	cr_assert_not_null(strstr(err, "--insecure"), "%s", err);
	free(err);
	files_of(&f, certs, "node1");
	argv[9] = "--insecure";
	argv[tls_argv(argv, 10, &f)] = NULL;
	cr_assert_eq(run_secure(argv, &err), 2, "--insecure with --tls-*");
	cr_assert_not_null(strstr(err, "choose one"), "%s", err);
	free(err);

	argv[0] = (char *)it_bin("settlectl");
	argv[1] = "--cluster";
	argv[2] = listen;
	argv[3] = "status";
	argv[4] = NULL;
	cr_assert_eq(run_secure(argv, &err), 2, "settlectl ran without TLS");
	cr_assert_not_null(strstr(err, "--insecure"), "%s", err);
	free(err);
	argv[0] = (char *)it_bin("settle-bench");
	argv[3] = "--duration";
	argv[4] = "1";
	argv[5] = NULL;
	cr_assert_eq(run_secure(argv, &err), 2, "settle-bench ran without TLS");
	cr_assert_not_null(strstr(err, "--insecure"), "%s", err);
	free(err);

	/* Asked for: the node runs in plaintext and says so; the tools with
	 * --insecure reach it. */
	it_node_start(&n, 1, insecure);
	cr_assert(cu_wait_log(n.proc->log, "--insecure: clients connect", 0));
	argv[0] = (char *)it_bin("settlectl");
	argv[2] = n.endpoint;
	argv[3] = "--insecure";
	argv[4] = "status";
	argv[5] = NULL;
	cr_assert_eq(run_secure(argv, &err), 0, "%s", err);
	free(err);
	cu_stop_clean(&n);
}

/* The SHA-256 fingerprint of certificate name, as openssl(1) prints it
 * ("AB:CD:..."), into out. */
static void fingerprint_of(const char *name, char *out, size_t len)
{
	char path[700], *argv[9], *o = NULL, *err = NULL, *eq;

	snprintf(path, sizeof(path), "%s/%s.pem", certs, name);
	argv[0] = "/usr/bin/openssl"; /* it_run does not search PATH */
	argv[1] = "x509";
	argv[2] = "-noout";
	argv[3] = "-fingerprint";
	argv[4] = "-sha256";
	argv[5] = "-in";
	argv[6] = path;
	argv[7] = NULL;
	cr_assert_eq(it_run(argv, &o, &err, 10000), 0, "%s", err);
	eq = strchr(o, '=');
	cr_assert_not_null(eq, "%s", o);
	snprintf(out, len, "%.*s", (int)strcspn(eq + 1, "\n"), eq + 1);
	free(o);
	free(err);
}

/*
 * Grants by fingerprint and by subjectAltName: "nobody" reads because
 * its fingerprint is an observer's, and may not resolve; "teller", not
 * listed, has no role until a grant to the SAN every certificate of
 * scripts/make-certs carries (DNS:localhost) is added and the node
 * reloads the file on SIGHUP.
 */
Test(tls, roles_by_fingerprint_and_subject_alt_name)
{
	static char roles[700];
	char fp[200], gid[SETTLE_GID_BUFSIZE], *err = NULL;
	struct it_node n;
	settle_client *teller;
	FILE *f;
	int rv;

	make_certs();
	fingerprint_of("nobody", fp, sizeof(fp));
	snprintf(roles, sizeof(roles), "%s/roles", it_dir());
	f = fopen(roles, "w");
	cr_assert_not_null(f);
	fprintf(f, "peer cn:node1\nadmin cn:admin\nobserver fp:%s\n", fp);
	fclose(f);
	start_tls_node(&n, certs, "node1", "--roles", roles);

	cr_assert_eq(ctl_as(&n, "nobody", NULL, &err,
			    (const char *const[]){"tx", "list", NULL}),
		     0, "%s", err);
	free(err);
	cr_assert_eq(ctl_as(&n, "nobody", NULL, &err,
			    (const char *const[]){"tx", "retry", "g1", NULL}),
		     1);
	cr_assert_not_null(strstr(err, "has observer"), "%s", err);
	free(err);
	teller = client_in(&n, certs, "teller");
	rv = settle_begin(teller, NULL, 60000, gid, sizeof(gid));
	cr_assert_eq(rv, SETTLE_EDENIED, "%d", rv);
	cr_assert_not_null(strstr(settle_client_errmsg(teller), "no role"),
			   "%s", settle_client_errmsg(teller));

	f = fopen(roles, "a");
	cr_assert_not_null(f);
	fputs("initiator san:localhost\n", f);
	fclose(f);
	kill(n.proc->pid, SIGHUP);
	cr_assert(cu_wait_log(n.proc->log, "roles reloaded", 5000));
	cr_assert_eq(settle_begin(teller, NULL, 60000, gid, sizeof(gid)), 0,
		     "%s", settle_client_errmsg(teller));
	settle_client_close(teller);
	cu_stop_clean(&n);
}

/*
 * A revocation reaches connections already open: "teller" has a
 * connection and has begun over it; its certificate is revoked, the node
 * reloads its files on SIGHUP and closes that connection at once (logged),
 * so teller's next call fails, while "bench" goes on.
 */
Test(tls, a_revocation_closes_open_connections)
{
	char crl[700];
	struct it_node n;
	settle_client *teller, *bench;
	int rv;

	make_certs();
	revoke_cert("nobody"); /* a CRL to start with, teller not in it */
	snprintf(crl, sizeof(crl), "%s/crl.pem", certs);
	start_tls_node(&n, certs, "node1", "--tls-crl", crl);
	teller = client_in(&n, certs, "teller");
	bench = client_in(&n, certs, "bench");
	begins(teller);
	begins(bench);
	revoke_cert("teller");
	kill(n.proc->pid, SIGHUP);
	cr_assert(cu_wait_log(n.proc->log,
			      "fails the reloaded TLS files: certificate "
			      "revoked",
			      5000),
		  "the node kept the revoked certificate's connection");
	rv = settle_begin(teller, NULL, 60000, NULL, 0);
	cr_assert_neq(rv, 0, "a revoked certificate began a transaction");
	begins(bench);
	settle_client_close(teller);
	settle_client_close(bench);
	cu_stop_clean(&n);
}

/* Until the node's cluster runs at the binary's feature level (owners
 * recorded from level 7). */
static void wait_level_7(const struct it_node *n)
{
	char want[64];

	snprintf(want, sizeof want, "\"cluster_feature_level\":%d", FSM_LEVEL);
	for (int tries = 0; tries < 100; tries++) {
		char *out = NULL, *err = NULL;
		bool at = ctl_as(n, "admin", &out, &err,
				 (const char *const[]){"--json", "status",
						       NULL}) == 0 &&
			  strstr(out, want) != NULL;

		free(out);
		free(err);
		if (at)
			return;
		usleep(100 * 1000);
	}
	cr_assert_fail("the cluster never ran at feature level %d", FSM_LEVEL);
}

/*
 * An initiator acts on its own transactions only: "teller" begins; the
 * other initiator "bench" can neither query, register a branch on, roll
 * back nor commit it (PERMISSION_DENIED, the transaction unchanged), nor
 * see it in its list, which holds its own; the observer reads it and the
 * admin may act on it; teller commits it.
 */
Test(tls, an_initiator_acts_on_its_own_transactions_only)
{
	static char roles[700];
	char gid[SETTLE_GID_BUFSIZE], mine[SETTLE_GID_BUFSIZE];
	char *out = NULL, *err = NULL;
	Settle__V1__TxInfo *info = NULL;
	settle_client *teller, *bench;
	struct it_node n;
	bool fin = false;
	int state = 0;
	FILE *f;

	make_certs();
	snprintf(roles, sizeof(roles), "%s/roles", it_dir());
	f = fopen(roles, "w");
	cr_assert_not_null(f);
	fputs("peer cn:node1\ninitiator cn:teller\ninitiator cn:bench\n"
	      "observer cn:nobody\nadmin cn:admin\n",
	      f);
	fclose(f);
	start_tls_node(&n, certs, "node1", "--roles", roles);
	wait_level_7(&n);
	teller = client_in(&n, certs, "teller");
	bench = client_in(&n, certs, "bench");
	cr_assert_eq(settle_begin(teller, NULL, 60000, gid, sizeof(gid)), 0,
		     "%s", settle_client_errmsg(teller));
	cr_assert_eq(settle_begin(bench, NULL, 60000, mine, sizeof(mine)), 0,
		     "%s", settle_client_errmsg(bench));

	cr_assert_eq(settle_query(bench, gid, false, &info), SETTLE_EDENIED);
	cr_assert_not_null(
	    strstr(settle_client_errmsg(bench), "begun by another certificate"),
	    "%s", settle_client_errmsg(bench));
	cr_assert_eq(settle_register_branch(bench, gid, "127.0.0.1:9", "r", "x",
					    1, NULL),
		     SETTLE_EDENIED);
	cr_assert_eq(settle_rollback(bench, gid, "not mine", 0, &state, &fin),
		     SETTLE_EDENIED);
	cr_assert_eq(settle_commit(bench, gid, 0, &state, &fin),
		     SETTLE_EDENIED);
	/* Its own list holds its transaction, not teller's. */
	cr_assert_eq(ctl_as(&n, "bench", &out, &err,
			    (const char *const[]){"tx", "list", NULL}),
		     0, "%s", err);
	cr_assert_not_null(strstr(out, mine), "%s", out);
	cr_assert_null(strstr(out, gid), "%s", out);
	free(out);
	free(err);
	/* The observer reads it, untouched: ACTIVE, no branch. */
	cr_assert_eq(
	    ctl_as(&n, "nobody", &out, &err,
		   (const char *const[]){"--json", "tx", "show", gid, NULL}),
	    0, "%s", err);
	cr_assert_not_null(strstr(out, "\"state\":\"active\""), "%s", out);
	cr_assert_null(strstr(out, "not mine"), "%s", out);
	free(out);
	free(err);
	/* Its owner commits it; the admin could have. */
	cr_assert_eq(settle_query(teller, gid, false, &info), 0, "%s",
		     settle_client_errmsg(teller));
	settle_tx_info_free(info);
	cr_assert_eq(settle_commit(teller, gid, 5000, &state, &fin), 0, "%s",
		     settle_client_errmsg(teller));
	cr_assert_eq(ctl_as(&n, "admin", NULL, &err,
			    (const char *const[]){"tx", "show", mine, NULL}),
		     0, "%s", err);
	free(err);
	settle_client_close(teller);
	settle_client_close(bench);
	cu_stop_clean(&n);
}

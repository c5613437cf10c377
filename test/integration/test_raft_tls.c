/*
 * test_raft_tls.c — raft between real settled processes over mutual TLS
 * (coordinator/raft_tls.c): a 3-node cluster with certificates and roles
 * elects and commits; its raft ports refuse a plaintext sender (and the
 * forged AppendEntries it sends), a client without a certificate, one
 * another CA signed, an expired one, and a certificate the CA signed that
 * does not hold the peer role; a node started with such a certificate is
 * kept out while the others commit; a flood of silent connections on a
 * raft port is cut off by the setup limit and timeout while the cluster
 * commits. Certificates from scripts/make-certs.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "coord_util.h"
#include "harness.h"
#include "settle.h"
#include "test_faults_util.h"

TestSuite(raft_tls, .init = cu_setup, .fini = it_teardown, .timeout = 180);

static char certs[600], other[600], roles[700];
static char files[3][3][700]; /* node i's cert, key, CA */

static void make(const char *dir, const char *days, const char *const *names)
{
	char script[600], *argv[16], *out = NULL, *err = NULL;
	int a = 0;

	snprintf(script, sizeof script, "%s/scripts/make-certs", it_srcdir());
	argv[a++] = script;
	if (days != NULL) {
		argv[a++] = "--days";
		argv[a++] = (char *)days;
	}
	argv[a++] = (char *)dir;
	while (*names != NULL)
		argv[a++] = (char *)*names++;
	argv[a] = NULL;
	cr_assert_eq(it_run(argv, &out, &err, 60000), 0, "%s", err);
	free(out);
	free(err);
}

/* The certificates, the roles file (nodes are peers, "bench" an
 * initiator), and the admin's certificate in the environment for the
 * harness's status calls. */
static void setup_tls(void)
{
	static const char *const ours[] = {"node1", "node2", "node3",
					   "admin", "bench", NULL};
	static const char *const theirs[] = {"node1", NULL};
	static const char *const stale[] = {"stale", NULL};
	static char cert[700], key[700], ca[700];
	FILE *f;

	snprintf(certs, sizeof certs, "%s/certs", it_dir());
	snprintf(other, sizeof other, "%s/other", it_dir());
	make(certs, NULL, ours);
	make(certs, "-1", stale);
	make(other, NULL, theirs);
	snprintf(roles, sizeof roles, "%s/roles", it_dir());
	f = fopen(roles, "w");
	cr_assert_not_null(f);
	fprintf(f, "peer cn:node1\npeer cn:node2\npeer cn:node3\n"
		   "admin cn:admin\ninitiator cn:bench\n");
	fclose(f);
	snprintf(cert, sizeof cert, "%s/admin.pem", certs);
	snprintf(key, sizeof key, "%s/admin.key", certs);
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	setenv("SETTLE_TLS_CERT", cert, 1);
	setenv("SETTLE_TLS_KEY", key, 1);
	setenv("SETTLE_TLS_CA", ca, 1);
}

/* Three nodes over TLS with --roles; node 3 with certificate name3. */
static void start(struct fu_cluster *c, const char *name3,
		  const char *const *extra)
{
	static const char *own[3][9];
	const char *const *ownp[3];

	for (int i = 0; i < 3; i++) {
		char name[16];

		snprintf(name, sizeof name, "node%d", i + 1);
		if (i == 2)
			snprintf(name, sizeof name, "%s", name3);
		snprintf(files[i][0], sizeof files[i][0], "%s/%s.pem", certs,
			 name);
		snprintf(files[i][1], sizeof files[i][1], "%s/%s.key", certs,
			 name);
		snprintf(files[i][2], sizeof files[i][2], "%s/ca.pem", certs);
		own[i][0] = "--tls-cert";
		own[i][1] = files[i][0];
		own[i][2] = "--tls-key";
		own[i][3] = files[i][1];
		own[i][4] = "--tls-ca";
		own[i][5] = files[i][2];
		own[i][6] = "--roles";
		own[i][7] = roles;
		own[i][8] = NULL;
		ownp[i] = own[i];
	}
	fu_cluster_start_with(c, 3, extra, ownp);
}

/* settle-bench for 2 s as "bench": the transactions it committed; none
 * may fail. */
static long long bench(const struct fu_cluster *c)
{
	char cert[700], key[700], ca[700], *argv[20], *out = NULL, *err = NULL;
	long long committed;
	int a = 0;

	snprintf(cert, sizeof cert, "%s/bench.pem", certs);
	snprintf(key, sizeof key, "%s/bench.key", certs);
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	argv[a++] = (char *)it_bin("settle-bench");
	argv[a++] = "--cluster";
	argv[a++] = (char *)c->endpoints;
	argv[a++] = "--concurrency";
	argv[a++] = "8";
	argv[a++] = "--duration";
	argv[a++] = "2";
	argv[a++] = "--json";
	argv[a++] = "--tls-cert";
	argv[a++] = cert;
	argv[a++] = "--tls-key";
	argv[a++] = key;
	argv[a++] = "--tls-ca";
	argv[a++] = ca;
	argv[a] = NULL;
	cr_assert_eq(it_run(argv, &out, &err, 60000), 0, "settle-bench: %s",
		     err);
	committed = it_json_num(out, "committed");
	cr_assert_eq(it_json_num(out, "errors"), 0, "%s", out);
	free(out);
	free(err);
	return committed;
}

/* A blocking TCP connection to node nd's raft port. */
static int dial_raft(const struct fu_node *nd)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)(nd->port + 1)),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {5, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0,
		     "connect to the raft port: %s", strerror(errno));
	return fd;
}

/*
 * Speak raft_tls's setup to nd's raft port as certificate name of dir
 * (name NULL: none): the TLS handshake, then a hello claiming raft id 99.
 * True when the node answered that it accepts (SETTLEOK). Then, if msg,
 * send its len bytes as raft messages and set *closed to whether the node
 * closed the connection within 5 s.
 */
static bool raft_send_as(const struct fu_node *nd, const char *dir,
			 const char *name, const uint8_t *msg, size_t len,
			 bool *closed)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	uint8_t hello[24 + 16] = "SETTLER1";
	char path[700], ans[8];
	bool ok = false;
	SSL *ssl;
	int fd;

	cr_assert_not_null(ctx);
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	/* The node is checked against the cluster's CA: a refusal is the
	 * node's. */
	snprintf(path, sizeof path, "%s/ca.pem", certs);
	cr_assert_eq(SSL_CTX_load_verify_locations(ctx, path, NULL), 1);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (name != NULL) {
		snprintf(path, sizeof path, "%s/%s.pem", dir, name);
		cr_assert_eq(SSL_CTX_use_certificate_chain_file(ctx, path), 1);
		snprintf(path, sizeof path, "%s/%s.key", dir, name);
		cr_assert_eq(
		    SSL_CTX_use_PrivateKey_file(ctx, path, SSL_FILETYPE_PEM),
		    1);
	}
	fd = dial_raft(nd);
	ssl = SSL_new(ctx);
	SSL_set_fd(ssl, fd);
	hello[8] = 99;	/* raft id */
	hello[16] = 16; /* address length */
	memcpy(hello + 24, "127.0.0.1:9", 11);
	/* TLS 1.3: a client learns that the server refused its certificate
	 * at its first read, not at SSL_connect. */
	if (SSL_connect(ssl) == 1 &&
	    SSL_write(ssl, hello, sizeof hello) == (int)sizeof hello &&
	    SSL_read(ssl, ans, sizeof ans) == (int)sizeof ans)
		ok = memcmp(ans, "SETTLEOK", 8) == 0;
	if (ok && msg != NULL) {
		char byte;

		cr_assert_eq(SSL_write(ssl, msg, (int)len), (int)len);
		*closed = SSL_read(ssl, &byte, 1) <= 0;
	}
	ERR_clear_error();
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	return ok;
}

static bool raft_hello(const struct fu_node *nd, const char *dir,
		       const char *name)
{
	return raft_send_as(nd, dir, name, NULL, 0, NULL);
}

static void send_all(int fd, const void *p, size_t n)
{
	cr_assert_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Whether node nd logs text within 5 s. */
static bool refused(const struct fu_node *nd, const char *text)
{
	return cu_wait_log(nd->proc->log, text, 5000);
}

Test(raft_tls, raft_runs_over_mutual_tls_and_plaintext_is_refused)
{
	/* raft_uv's own handshake, then the 64-byte AppendEntries that
	 * crashed raft 0.15 (test_limits): in plaintext, to a TLS port. */
	uint8_t hs[40] = {1}, msg[64] = {0};
	struct fu_cluster c;
	int leader, fd;

	setup_tls();
	start(&c, "node3", NULL);
	cr_assert_gt(bench(&c), 0);
	leader = fu_leader(&c, 10000);
	cr_assert_geq(leader, 0);
	/* A peer's certificate is accepted: the control for the refusals
	 * below. */
	cr_assert(raft_hello(&c.nodes[leader], certs, "node2"),
		  "a peer's certificate was refused");
	for (int i = 0; i < 3; i++)
		cr_assert(!cu_log_has(c.nodes[i].proc->log, "refused:"),
			  "node %d refused a raft connection", i + 1);

	hs[8] = 99;
	hs[16] = 16;
	memcpy(hs + 24, "127.0.0.1:9", 11);
	msg[0] = 1;
	msg[8] = 48;
	msg[16] = 9;
	msg[48] = 1;
	fd = dial_raft(&c.nodes[leader]);
	send_all(fd, hs, sizeof hs);
	send_all(fd, msg, sizeof msg);
	cr_assert(cu_closed_within(fd, 5000), "the connection stayed open");
	close(fd);
	cr_assert(refused(&c.nodes[leader], "raft connection from 127.0.0.1"),
		  "the node did not log the plaintext sender");
	cr_assert(it_alive(c.nodes[leader].proc), "the leader died");

	/* The same message from a peer's certificate, over TLS: it reaches
	 * raft's stream, where the check drops it before raft decodes it. */
	bool closed = false;

	cr_assert(raft_send_as(&c.nodes[leader], certs, "node2", msg,
			       sizeof msg, &closed));
	cr_assert(closed, "the connection stayed open");
	cr_assert(refused(&c.nodes[leader], "dropped a malformed message"));
	cr_assert(it_alive(c.nodes[leader].proc), "the leader died");
	cr_assert_gt(bench(&c), 0);
	fu_assert_no_sanitizer_reports(&c);
}

Test(raft_tls, raft_ports_refuse_strangers_and_non_peers)
{
	struct fu_cluster c;
	struct fu_node *nd;

	setup_tls();
	start(&c, "node3", NULL);
	nd = &c.nodes[0];
	cr_assert(!raft_hello(nd, certs, NULL), "no certificate: accepted");
	cr_assert(refused(nd, "did not return a certificate"));
	usleep(1100 * 1000);
	cr_assert(!raft_hello(nd, other, "node1"),
		  "another CA's certificate: accepted");
	cr_assert(refused(nd, "certificate verify failed"));
	/* One refusal is logged a second: the next is in the log after it. */
	usleep(1100 * 1000);
	cr_assert(!raft_hello(nd, certs, "stale"),
		  "an expired certificate: accepted");
	cr_assert(refused(nd, "certificate has expired"));
	usleep(1100 * 1000);
	cr_assert(!raft_hello(nd, certs, "bench"),
		  "an initiator's certificate: accepted on the raft port");
	cr_assert(refused(nd, "certificate \"bench\" does not hold the peer "
			      "role"));
	cr_assert(raft_hello(nd, certs, "node3"));
	cr_assert_gt(bench(&c), 0);
	fu_assert_no_sanitizer_reports(&c);
}

/* The applied index node i reports (STATUS as the admin). */
static uint64_t applied_of(const struct fu_cluster *c, int i)
{
	struct settle_client_opts co = {.call_timeout_ms = 2000,
					.connect_timeout_ms = 1000,
					.retry_budget_ms = 1};
	struct settle_tls tls = {.cert = getenv("SETTLE_TLS_CERT"),
				 .key = getenv("SETTLE_TLS_KEY"),
				 .ca = getenv("SETTLE_TLS_CA")};
	Settle__V1__StatusResponse *st = NULL;
	settle_client *sc;
	uint64_t applied;

	cr_assert_eq(settle_client_open(c->nodes[i].endpoint, &co, &sc), 0);
	cr_assert_eq(settle_client_set_tls(sc, &tls), 0);
	cr_assert_eq(settle_client_call_at(
			 sc, c->nodes[i].endpoint, SETTLE__V1__METHOD__STATUS,
			 NULL, &settle__v1__status_response__descriptor,
			 (ProtobufCMessage **)&st),
		     0);
	applied = st->applied_index;
	settle__v1__status_response__free_unpacked(st, NULL);
	settle_client_close(sc);
	return applied;
}

/* Node 3 runs with the initiator's certificate: the CA signed it, but it
 * is not a peer's. Nodes 1 and 2 refuse its connections and will not send
 * to it; they elect and commit, and node 3 applies nothing. */
Test(raft_tls, a_node_without_the_peer_role_is_kept_out)
{
	char to3[64];
	struct fu_cluster c;
	int leader;

	setup_tls();
	start(&c, "bench", NULL);
	leader = fu_leader(&c, 10000);
	cr_assert(leader == 0 || leader == 1, "node %d leads", leader + 1);
	cr_assert_gt(bench(&c), 0);
	snprintf(to3, sizeof to3, "raft connection to 127.0.0.1:%d refused",
		 c.nodes[2].port + 1);
	cr_assert(refused(&c.nodes[leader], to3),
		  "the leader sent to a non-peer");
	cr_assert(refused(&c.nodes[leader], "certificate \"bench\" does not "
					    "hold the peer role"));
	/* At most its own bootstrap entry. */
	cr_assert_leq(applied_of(&c, 2), 1, "node 3 applied entries");
	cr_assert_gt(applied_of(&c, leader), 10);
	fu_assert_no_sanitizer_reports(&c);
}

/*
 * 200 connections to the leader's raft port that never start a TLS
 * handshake: past RAFT_TLS_SETUP_MAX (64) in setup the node refuses them
 * at once, and the rest are closed when --frame-timeout (2 s) runs out;
 * meanwhile the cluster commits with no error.
 */
Test(raft_tls, silent_connections_on_a_raft_port_are_cut_off)
{
	static const char *const extra[] = {"--frame-timeout", "2s", NULL};
	struct fu_cluster c;
	int fds[200], leader, closed = 0;

	setup_tls();
	start(&c, "node3", extra);
	leader = fu_leader(&c, 10000);
	cr_assert_geq(leader, 0);
	for (int i = 0; i < 200; i++)
		fds[i] = dial_raft(&c.nodes[leader]);
	cr_assert_gt(bench(&c), 0);
	cr_assert(refused(&c.nodes[leader], "in their handshake already"));
	for (int i = 0; i < 200; i++) {
		closed += cu_closed_within(fds[i], 4000);
		close(fds[i]);
	}
	cr_assert_eq(closed, 200, "%d of 200 silent connections closed",
		     closed);
	cr_assert(refused(&c.nodes[leader], "no TLS handshake and hello"));
	cr_assert(it_alive(c.nodes[leader].proc));
	cr_assert_gt(bench(&c), 0);
	fu_assert_no_sanitizer_reports(&c);
}

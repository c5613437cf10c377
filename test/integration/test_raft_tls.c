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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <poll.h>
#include <pthread.h>
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
	static const char *const ours[] = {"node1", "node2", "node3", "admin",
					   "bench", "hog",   NULL};
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
	fprintf(f,
		"peer cn:node1 id:1\npeer cn:node2 id:2\npeer cn:node3 id:3\n"
		"admin cn:admin\ninitiator cn:bench\ninitiator cn:hog\n");
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

/* A blocking TCP connection to port on loopback; -1 if refused. */
static int dial_port(int port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {5, 0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A blocking TCP connection to node nd's raft port. */
static int dial_raft(const struct fu_node *nd)
{
	int fd = dial_port(nd->port + 1);

	cr_assert(fd >= 0, "connect to the raft port: %s", strerror(errno));
	return fd;
}

/*
 * Speak raft_tls's setup to nd's raft port as certificate name of dir
 * (name NULL: none): the TLS handshake, then a hello claiming raft id 99.
 * True when the node answered that it accepts (SETTLEOK). Then, if msg,
 * send its len bytes as raft messages and set *closed to whether the node
 * closed the connection within 5 s.
 */
/* A TLS 1.3 client context with certificate name of dir (NULL: none),
 * checking the node against the cluster's CA (a refusal is the node's).
 * Cr_assert-free: the attackers' threads use it too; NULL on failure. */
static SSL_CTX *client_ctx(const char *dir, const char *name)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char path[700];
	bool ok;

	if (ctx == NULL)
		return NULL;
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	snprintf(path, sizeof path, "%s/ca.pem", certs);
	ok = SSL_CTX_load_verify_locations(ctx, path, NULL) == 1;
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	if (ok && name != NULL) {
		snprintf(path, sizeof path, "%s/%s.pem", dir, name);
		ok = SSL_CTX_use_certificate_chain_file(ctx, path) == 1;
		snprintf(path, sizeof path, "%s/%s.key", dir, name);
		ok = ok && SSL_CTX_use_PrivateKey_file(ctx, path,
						       SSL_FILETYPE_PEM) == 1;
	}
	if (!ok) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

/* A TLS connection over fd with ctx, handshake done (blocking); NULL when
 * it failed. */
static SSL *tls_on(SSL_CTX *ctx, int fd)
{
	SSL *ssl = SSL_new(ctx);

	if (ssl == NULL)
		return NULL;
	SSL_set_fd(ssl, fd);
	if (SSL_connect(ssl) != 1) {
		ERR_clear_error();
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

static bool raft_send_as(const struct fu_node *nd, const char *dir,
			 const char *name, uint8_t claim, const uint8_t *msg,
			 size_t len, bool *closed)
{
	SSL_CTX *ctx = client_ctx(dir, name);
	uint8_t hello[24 + 16] = "SETTLER1";
	char ans[8];
	bool ok = false;
	SSL *ssl;
	int fd;

	cr_assert_not_null(ctx);
	fd = dial_raft(nd);
	hello[8] = claim; /* raft id */
	hello[16] = 16;	  /* address length */
	memcpy(hello + 24, "127.0.0.1:9", 11);
	/* TLS 1.3: a client learns that the server refused its certificate
	 * at its first read, not at SSL_connect. */
	ssl = tls_on(ctx, fd);
	if (ssl != NULL &&
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
		       const char *name, uint8_t claim)
{
	return raft_send_as(nd, dir, name, claim, NULL, 0, NULL);
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
	cr_assert(raft_hello(&c.nodes[leader], certs, "node2", 2),
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

	cr_assert(raft_send_as(&c.nodes[leader], certs, "node2", 2, msg,
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
	cr_assert(!raft_hello(nd, certs, NULL, 99), "no certificate: accepted");
	cr_assert(refused(nd, "did not return a certificate"));
	usleep(1100 * 1000);
	cr_assert(!raft_hello(nd, other, "node1", 1),
		  "another CA's certificate: accepted");
	cr_assert(refused(nd, "certificate verify failed"));
	/* One refusal is logged a second: the next is in the log after it. */
	usleep(1100 * 1000);
	cr_assert(!raft_hello(nd, certs, "stale", 99),
		  "an expired certificate: accepted");
	cr_assert(refused(nd, "certificate has expired"));
	usleep(1100 * 1000);
	cr_assert(!raft_hello(nd, certs, "bench", 99),
		  "an initiator's certificate: accepted on the raft port");
	cr_assert(refused(nd, "certificate \"bench\" does not hold the peer "
			      "role"));
	cr_assert(raft_hello(nd, certs, "node3", 3));
	/* A peer's certificate claiming another member's raft id. */
	usleep(1100 * 1000);
	cr_assert(!raft_hello(nd, certs, "node3", 2),
		  "node 3's certificate spoke raft as node 2");
	cr_assert(refused(nd, "certificate \"node3\" does not hold the peer "
			      "role for raft id 2"));
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

/* ---- Hostile clients ------------------------------------------------------
 * Threads of this process attack the leader while settle-bench (another
 * certificate) commits: what issue 13 lists, all at once. */

#define IDLE_MAX    1200
#define LORIS_MAX   50
#define PARTIAL_MAX 96

struct attack {
	int client_port, raft_port;
	pid_t leader;
	volatile bool stop;
	SSL_CTX *hog;	   /* an initiator's certificate */
	SSL_CTX *stranger; /* none */
	long opened, handshakes, begins, refused_begins;
	long rss_peak; /* MiB, the leader's RssAnon */
};

static long rss_anon_mib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof line, f) != NULL)
		if (sscanf(line, "RssAnon: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib < 0 ? -1 : kib / 1024;
}

/*
 * An attacker runs on machines of its own, not on the two cores the
 * nodes and the bench share here: its threads run at nice 19 (or
 * SETTLE_HOSTILE_NICE), so that what slows the bench is the nodes' work
 * for the attack, not the attacker's own TLS handshakes taking their CPU.
 * SETTLE_HOSTILE_NICE=0 measures both together (docs/BENCHMARKS.md).
 */
static void attacker_priority(void)
{
	const char *env = getenv("SETTLE_HOSTILE_NICE");
	int nice = env != NULL ? atoi(env) : 19;

	/* Linux: PRIO_PROCESS with a thread id sets that thread alone. */
	if (nice > 0)
		(void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid),
				  nice > 19 ? 19 : nice);
}

static bool closed_now(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char b;

	return poll(&p, 1, 0) == 1 && recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

/* Thousands of idle connections on both ports (a quarter on raft's),
 * each reopened as soon as the node closes it; and 50 slow senders of a
 * TLS ClientHello, one byte a second. */
static void *idlers(void *arg)
{
	static const uint8_t hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
	struct attack *a = arg;
	int fds[IDLE_MAX], loris[LORIS_MAX];
	size_t sent[LORIS_MAX] = {0};
	int tick = 0;

	attacker_priority();
	for (int i = 0; i < IDLE_MAX; i++)
		fds[i] = -1;
	for (int i = 0; i < LORIS_MAX; i++)
		loris[i] = -1;
	while (!a->stop) {
		for (int i = 0; i < IDLE_MAX && !a->stop; i++) {
			if (fds[i] >= 0 && !closed_now(fds[i]))
				continue;
			if (fds[i] >= 0)
				close(fds[i]);
			fds[i] = dial_port(i % 4 == 0 ? a->raft_port
						      : a->client_port);
			a->opened += fds[i] >= 0;
		}
		if (tick++ % 10 == 0) {
			for (int i = 0; i < LORIS_MAX; i++) {
				if (loris[i] >= 0 && closed_now(loris[i])) {
					close(loris[i]);
					loris[i] = -1;
				}
				if (loris[i] < 0) {
					loris[i] = dial_port(a->client_port);
					sent[i] = 0;
				}
				if (loris[i] >= 0 &&
				    send(loris[i], hello + sent[i] % 6, 1,
					 MSG_NOSIGNAL | MSG_DONTWAIT) == 1)
					sent[i]++;
			}
		}
		usleep(100 * 1000);
	}
	for (int i = 0; i < IDLE_MAX; i++)
		if (fds[i] >= 0)
			close(fds[i]);
	for (int i = 0; i < LORIS_MAX; i++)
		if (loris[i] >= 0)
			close(loris[i]);
	return NULL;
}

/* Full handshakes, as fast as they go: with the hog's certificate on the
 * raft port (not a peer), with none on the client port. */
static void *handshakers(void *arg)
{
	struct attack *a = arg;

	attacker_priority();
	for (long k = 0; !a->stop; k++) {
		bool raft = k % 2 == 0;
		int fd = dial_port(raft ? a->raft_port : a->client_port);
		SSL *ssl;

		if (fd < 0) {
			usleep(10 * 1000);
			continue;
		}
		ssl = tls_on(raft ? a->hog : a->stranger, fd);
		a->handshakes += ssl != NULL;
		SSL_free(ssl);
		close(fd);
	}
	return NULL;
}

/* Begins that are never finished, as the hog, on the blocking client. */
static void *hoarder(void *arg)
{
	struct attack *a = arg;
	struct settle_client_opts co = {.call_timeout_ms = 3000,
					.retry_budget_ms = 1};
	char cert[700], key[700], ca[700], ep[32];
	struct settle_tls tls = {.cert = cert, .key = key, .ca = ca};
	settle_client *c;

	attacker_priority();
	snprintf(cert, sizeof cert, "%s/hog.pem", certs);
	snprintf(key, sizeof key, "%s/hog.key", certs);
	snprintf(ca, sizeof ca, "%s/ca.pem", certs);
	snprintf(ep, sizeof ep, "127.0.0.1:%d", a->client_port);
	if (settle_client_open(ep, &co, &c) != 0)
		return NULL;
	if (settle_client_set_tls(c, &tls) != 0) {
		settle_client_close(c);
		return NULL;
	}
	while (!a->stop) {
		int rv = settle_begin(c, NULL, 60000, NULL, 0);

		a->begins += rv == 0;
		__atomic_add_fetch(&a->refused_begins, rv != 0,
				   __ATOMIC_RELAXED);
	}
	settle_client_close(c);
	return NULL;
}

static void *sampler(void *arg)
{
	struct attack *a = arg;

	while (!a->stop) {
		long now = rss_anon_mib(a->leader);

		a->rss_peak = now > a->rss_peak ? now : a->rss_peak;
		usleep(100 * 1000);
	}
	return NULL;
}

/* 96 connections with the hog's certificate each start a 4 MiB frame and
 * send 1 MiB of it, then wait. */
static int partial_frames(struct attack *a, SSL *ssl[PARTIAL_MAX],
			  int fds[PARTIAL_MAX])
{
	static const uint8_t hdr[4] = {0x00, 0x40, 0x00, 0x00};
	static uint8_t part[64 * 1024];
	int sent = 0;

	for (int i = 0; i < PARTIAL_MAX; i++) {
		bool ok;

		fds[i] = dial_port(a->client_port);
		ssl[i] = fds[i] >= 0 ? tls_on(a->hog, fds[i]) : NULL;
		ok = ssl[i] != NULL && SSL_write(ssl[i], hdr, 4) == 4;
		for (int k = 0; ok && k < 16; k++)
			ok = SSL_write(ssl[i], part, sizeof part) ==
			     (int)sizeof part;
		sent += ok;
		ERR_clear_error();
	}
	return sent;
}

/*
 * A 3-node cluster under TLS, its leader attacked at once by: 1,200 idle
 * connections kept open on its client and raft ports, 50 senders of a
 * byte a second, full handshakes in a loop (refused ones on the raft
 * port), 96 connections each holding 1 MiB of a 4 MiB frame, and a client
 * beginning transactions it never finishes. Another client commits
 * throughout with no error, at least a quarter of its unloaded rate (the
 * issue asks half: the test reports the ratio; this floor only catches a
 * collapse), and the leader's anonymous memory grows by less than 192 MiB.
 * SETTLE_HOSTILE_RUNS=N repeats the measure (for docs/BENCHMARKS.md).
 */
Test(raft_tls, hostile_clients_do_not_stop_the_cluster)
{
	static const char *const extra[] = {
	    "--frame-timeout", "3s", "--max-open-per-client", "500", NULL};
	const char *runs_env = getenv("SETTLE_HOSTILE_RUNS");
	int runs = runs_env != NULL ? atoi(runs_env) : 1;
	struct rlimit rl;
	struct fu_cluster c;
	int leader;

	char asan[1024];

	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	/* Under AddressSanitizer freed memory waits in a quarantine (256 MiB)
	 * before reuse: without one a node's memory is what it holds. */
	snprintf(asan, sizeof asan, "%s%squarantine_size_mb=0",
		 getenv("ASAN_OPTIONS") ? getenv("ASAN_OPTIONS") : "",
		 getenv("ASAN_OPTIONS") ? ":" : "");
	setenv("ASAN_OPTIONS", asan, 1);
	setup_tls();
	start(&c, "node3", extra);
	leader = fu_leader(&c, 10000);
	cr_assert_geq(leader, 0);
	for (int run = 0; run < (runs > 0 ? runs : 1); run++) {
		struct attack a = {
		    .client_port = c.nodes[leader].port,
		    .raft_port = c.nodes[leader].port + 1,
		    .leader = c.nodes[leader].proc->pid,
		    .hog = client_ctx(certs, "hog"),
		    .stranger = client_ctx(certs, NULL),
		};
		pthread_t th[4];
		SSL *ssl[PARTIAL_MAX];
		int fds[PARTIAL_MAX], held;
		long long unloaded, loaded;
		long before;

		cr_assert_not_null(a.hog);
		cr_assert_not_null(a.stranger);
		unloaded = bench(&c);
		before = rss_anon_mib(a.leader);
		a.rss_peak = before;
		pthread_create(&th[0], NULL, idlers, &a);
		pthread_create(&th[1], NULL, handshakers, &a);
		pthread_create(&th[2], NULL, hoarder, &a);
		pthread_create(&th[3], NULL, sampler, &a);
		held = partial_frames(&a, ssl, fds);
		loaded = bench(&c);
		/* The hog (at the attackers' low priority) may not have
		 * reached its limit of open transactions within the bench's
		 * 2 s on a slow machine: give it up to 30 s more. */
		for (int i = 0;
		     i < 300 &&
		     __atomic_load_n(&a.refused_begins, __ATOMIC_RELAXED) == 0;
		     i++)
			usleep(100 * 1000);
		a.stop = true;
		for (int i = 0; i < 4; i++)
			pthread_join(th[i], NULL);
		for (int i = 0; i < PARTIAL_MAX; i++) {
			SSL_free(ssl[i]);
			if (fds[i] >= 0)
				close(fds[i]);
		}
		fprintf(stderr,
			"HOSTILE run %d: %lld tx in 2 s unloaded, %lld under "
			"attack (%.2f); leader RssAnon %ld MiB before, %ld at "
			"most; %ld connections opened, %ld handshakes, %d "
			"partial frames sent whole, %ld begins taken and %ld "
			"refused\n",
			run + 1, unloaded, loaded,
			unloaded > 0 ? (double)loaded / (double)unloaded : 0,
			before, a.rss_peak, a.opened, a.handshakes, held,
			a.begins, a.refused_begins);
		SSL_CTX_free(a.hog);
		SSL_CTX_free(a.stranger);
		cr_assert_geq(loaded * 4, unloaded,
			      "%lld committed under attack, %lld without",
			      loaded, unloaded);
		cr_assert_lt(a.rss_peak - before, 192,
			     "the leader's RssAnon grew by %ld MiB",
			     a.rss_peak - before);
		cr_assert_gt(a.refused_begins, 0,
			     "the hog's Begins were never refused");
		for (int i = 0; i < 3; i++)
			cr_assert(it_alive(c.nodes[i].proc), "node %d died",
				  i + 1);
	}
	fu_assert_no_sanitizer_reports(&c);
}

/*
 * Node 3's certificate is revoked while the cluster runs. Once nodes 1
 * and 2 reload their files (SIGHUP), whichever of them talks raft with
 * node 3 (the leader, or both if node 3 leads: followers do not talk to
 * each other) closes that connection at once, and the cluster commits on
 * without node 3.
 */
Test(raft_tls, a_revoked_node_is_cut_off_at_the_reload)
{
	char crl[700], script[600], *argv[5], *out = NULL, *err = NULL;
	const char *extra[3] = {"--tls-crl", crl, NULL};
	struct fu_cluster c;
	uint64_t before;

	setup_tls();
	snprintf(script, sizeof script, "%s/scripts/make-certs", it_srcdir());
	argv[0] = script;
	argv[1] = "--revoke";
	argv[2] = certs;
	argv[3] = "stale"; /* a CRL to start with */
	argv[4] = NULL;
	cr_assert_eq(it_run(argv, &out, &err, 60000), 0, "%s", err);
	free(out);
	free(err);
	snprintf(crl, sizeof crl, "%s/crl.pem", certs);
	start(&c, "node3", extra);
	cr_assert_gt(bench(&c), 0);
	argv[3] = "node3";
	cr_assert_eq(it_run(argv, &out, &err, 60000), 0, "%s", err);
	free(out);
	free(err);
	kill(c.nodes[0].proc->pid, SIGHUP);
	kill(c.nodes[1].proc->pid, SIGHUP);
	bool cut = false;

	for (int tries = 0; tries < 50 && !cut; tries++) {
		for (int i = 0; i < 2; i++)
			cut = cut || cu_log_has(c.nodes[i].proc->log,
						"closed: its certificate fails "
						"the reloaded TLS files: "
						"certificate revoked");
		usleep(100 * 1000);
	}
	cr_assert(cut, "no node closed its raft connection with node 3");
	before = applied_of(&c, 2);
	cr_assert_gt(bench(&c), 0);
	cr_assert_leq(applied_of(&c, 2), before + 2, "node 3 went on applying");
	fu_assert_no_sanitizer_reports(&c);
}

/*
 * settled --metrics (issue 14): a 3-node cluster, each node with its HTTP
 * port. Its /metrics is read with Prometheus' own text parser
 * (test/integration/prom_scrape.py, python3-prometheus-client) and its
 * counts matched against what settle-bench committed; /readyz follows
 * the quorum while /healthz stays up.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "coord_util.h"
#include "harness.h"
#include "tcc_util.h"
#include "test_faults_util.h"

TestSuite(metrics, .init = cu_setup, .fini = it_teardown, .timeout = 240);

static int mport[3];
static char maddr[3][32];

/* A cluster of 3, node i with --metrics 127.0.0.1:mport[i]. */
static void start(struct fu_cluster *c)
{
	static const char *own_args[3][3];
	static const char *const *own[3];

	for (int i = 0; i < 3; i++) {
		mport[i] = it_free_port_pair();
		snprintf(maddr[i], sizeof maddr[i], "127.0.0.1:%d", mport[i]);
		own_args[i][0] = "--metrics";
		own_args[i][1] = maddr[i];
		own_args[i][2] = NULL;
		own[i] = own_args[i];
	}
	fu_cluster_start_with(c, 3, NULL, own);
}

/* The samples at addr's /metrics as prom_scrape.py prints them; NULL
 * when the port did not answer or the text did not parse (why on
 * stderr). */
static char *scrape_at(const char *addr)
{
	char script[600], url[64], *argv[4], *out = NULL, *err = NULL;
	int rv;

	snprintf(script, sizeof script, "%s/test/integration/prom_scrape.py",
		 it_srcdir());
	snprintf(url, sizeof url, "http://%s/metrics", addr);
	argv[0] = "/usr/bin/python3";
	argv[1] = script;
	argv[2] = url;
	argv[3] = NULL;
	rv = it_run(argv, &out, &err, 30000);
	if (rv != 0) {
		fprintf(stderr, "prom_scrape %s: %d: %s\n", url, rv,
			err != NULL ? err : "");
		free(out);
		out = NULL;
	}
	free(err);
	return out;
}

/* Node i's samples. */
static char *scrape(int i)
{
	return scrape_at(maddr[i]);
}

/* The value of the sample line that starts with key ("name{labels}"),
 * -1 when absent. */
static double sample(const char *text, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = text; p != NULL && *p != '\0';) {
		if (strncmp(p, key, n) == 0 && p[n] == ' ')
			return strtod(p + n + 1, NULL);
		p = strchr(p, '\n');
		p = p != NULL ? p + 1 : NULL;
	}
	return -1;
}

/* method path on node i's HTTP port: the status code, the body in
 * body. */
static int http_req(int i, const char *method, const char *path, char *body,
		    size_t len)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)mport[i]),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct timeval tv = {5, 0};
	char req[128], buf[4096];
	size_t got = 0;
	ssize_t r;
	int fd = socket(AF_INET, SOCK_STREAM, 0), status = -1;

	body[0] = '\0';
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	snprintf(req, sizeof req,
		 "%s %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		 method, path);
	if (write(fd, req, strlen(req)) != (ssize_t)strlen(req)) {
		close(fd);
		return -1;
	}
	while (got + 1 < sizeof buf &&
	       (r = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
		got += (size_t)r;
	buf[got] = '\0';
	close(fd);
	if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
		return -1;
	const char *b = strstr(buf, "\r\n\r\n");
	snprintf(body, len, "%s", b != NULL ? b + 4 : "");
	return status;
}

static int http_get(int i, const char *path, char *body, size_t len)
{
	return http_req(i, "GET", path, body, len);
}

/* settle-bench against the cluster: TCC, a fifth rolled back. */
static void bench(const struct fu_cluster *c, long long *committed,
		  long long *rolled_back)
{
	char *argv[16], *out = NULL, *err = NULL;
	int a = 0;

	argv[a++] = (char *)it_bin("settle-bench");
	argv[a++] = "--cluster";
	argv[a++] = (char *)c->endpoints;
	argv[a++] = "--concurrency";
	argv[a++] = "8";
	argv[a++] = "--duration";
	argv[a++] = "2";
	argv[a++] = "--rollback-ratio";
	argv[a++] = "0.2";
	argv[a++] = "--json";
	argv[a] = NULL;
	cr_assert_eq(it_run(argv, &out, &err, 60000), 0, "settle-bench: %s",
		     err);
	*committed = it_json_num(out, "committed");
	*rolled_back = it_json_num(out, "aborted");
	cr_assert_eq(it_json_num(out, "errors"), 0, "%s", out);
	free(out);
	free(err);
}

/*
 * What settle-bench committed and rolled back is what every node's
 * /metrics counts once it has applied the log; the leader's participant
 * calls and latency histograms cover every branch; raft's gauges agree.
 */
/* Scrapes of one node while a load runs: how many, how many parsed, and
 * whether its committed count only grew. */
struct under_load {
	int node;
	volatile bool stop;
	int scrapes, parsed;
	bool monotonic;
};

static void *scraper(void *arg)
{
	struct under_load *u = arg;
	double last = 0;

	while (!u->stop) {
		char *text = scrape(u->node);

		u->scrapes++;
		if (text != NULL) {
			double v = sample(text, "settle_transactions_committed_"
						"total{mode=\"tcc\"}");

			u->parsed++;
			u->monotonic = u->monotonic && v >= last;
			last = v;
			free(text);
		}
		usleep(200 * 1000);
	}
	return NULL;
}

Test(metrics, counts_match_what_the_bench_committed)
{
	struct fu_cluster c;
	long long committed, rolled_back;
	char *text, key[128];
	int leader;
	struct under_load u = {.monotonic = true};
	pthread_t th;

	start(&c);
	leader = fu_leader(&c, 10000);
	cr_assert_geq(leader, 0);
	/* Scraped while it commits too: every scrape parses, counts grow. */
	u.node = leader;
	cr_assert_eq(pthread_create(&th, NULL, scraper, &u), 0);
	bench(&c, &committed, &rolled_back);
	u.stop = true;
	pthread_join(th, NULL);
	cr_expect_geq(u.scrapes, 3, "%d scrapes under load", u.scrapes);
	cr_expect_eq(u.parsed, u.scrapes, "%d of %d scrapes parsed", u.parsed,
		     u.scrapes);
	cr_expect(u.monotonic, "the committed counter went down");
	cr_assert_gt(committed, 0);
	cr_assert_gt(rolled_back, 0);

	text = scrape(leader);
	cr_assert_not_null(text);
	cr_expect_eq(
	    sample(text, "settle_transactions_committed_total{mode=\"tcc\"}"),
	    (double)committed);
	cr_expect_eq(
	    sample(text, "settle_transactions_rolled_back_total{mode=\"tcc\"}"),
	    (double)rolled_back);
	cr_expect_eq(
	    sample(text, "settle_transactions_begun_total{mode=\"tcc\"}"),
	    (double)(committed + rolled_back));
	cr_expect_eq(sample(text, "settle_transactions_begun_total{mode="
				  "\"saga\"}"),
		     0);
	cr_expect_eq(sample(text, "settle_transaction_decision_seconds_count{"
				  "mode=\"tcc\"}"),
		     (double)(committed + rolled_back));
	cr_expect_eq(sample(text, "settle_transaction_decision_seconds_bucket{"
				  "le=\"+Inf\",mode=\"tcc\"}"),
		     (double)(committed + rolled_back));
	cr_expect_gt(sample(text, "settle_transaction_decision_seconds_sum{"
				  "mode=\"tcc\"}"),
		     0);
	cr_expect_eq(sample(text, "settle_transaction_completion_seconds_"
				  "count{mode=\"tcc\"}"),
		     (double)(committed + rolled_back));
	/* Two branches each: every one confirmed or cancelled by the
	 * leader, at least once. */
	double confirms = 0, cancels = 0;

	for (const char *p = strstr(text, "settle_participant_calls_total{");
	     p != NULL; p = strstr(p + 1, "settle_participant_calls_total{")) {
		const char *end = strchr(p, '\n');
		char line[512];

		snprintf(line, sizeof line, "%.*s",
			 (int)(end != NULL ? end - p : (long)strlen(p)), p);
		if (strstr(line, "outcome=\"ok\"") == NULL)
			continue;
		if (strstr(line, "kind=\"confirm\"") != NULL)
			confirms += strtod(strrchr(line, ' ') + 1, NULL);
		if (strstr(line, "kind=\"cancel\"") != NULL)
			cancels += strtod(strrchr(line, ' ') + 1, NULL);
	}
	cr_expect_geq(confirms, 2.0 * (double)committed);
	cr_expect_geq(cancels, 2.0 * (double)rolled_back);
	cr_expect_eq(sample(text, "settle_raft_state{state=\"leader\"}"), 1);
	cr_expect_eq(sample(text, "settle_node_id"), leader + 1);
	cr_expect_eq(sample(text, "settle_raft_leader_id"), leader + 1);
	cr_expect_eq(sample(text, "settle_ready"), 1);
	cr_expect_gt(sample(text, "settle_store_used_bytes"), 0);
	cr_expect_gt(sample(text, "settle_raft_commit_seconds_count"), 0);
	cr_expect_gt(sample(text, "settle_store_map_bytes"), 0);
	cr_expect_gt(sample(text, "settle_store_disk_free_bytes"), 0);
	cr_expect_eq(sample(text, "settle_transactions_stuck"), 0);
	free(text);

	/* settlectl top shows the same from STATUS. */
	{
		char *argv[12], *out = NULL, *err = NULL, want[64];
		int a = 0;

		argv[a++] = (char *)it_bin("settlectl");
		argv[a++] = "--cluster";
		argv[a++] = (char *)c.endpoints;
		argv[a++] = "--insecure";
		argv[a++] = "top";
		argv[a++] = "--iterations";
		argv[a++] = "2";
		argv[a++] = "--interval";
		argv[a++] = "200ms";
		argv[a] = NULL;
		cr_assert_eq(it_run(argv, &out, &err, 30000), 0, "%s", err);
		snprintf(want, sizeof want, "leader node %d: ", leader + 1);
		cr_expect_not_null(strstr(out, want), "%s", out);
		snprintf(want, sizeof want, "%lld committed", committed);
		cr_expect_not_null(strstr(out, want), "%s", out);
		cr_expect_not_null(strstr(out, "committed 0/s"), "%s", out);
		free(out);
		free(err);
	}

	/* Each follower counts the same once it applied as much. */
	for (int i = 0; i < 3; i++) {
		double seen = -1;

		if (i == leader)
			continue;
		snprintf(key, sizeof key,
			 "settle_transactions_committed_total{mode=\"tcc\"}");
		for (int tries = 0; tries < 100 && seen != (double)committed;
		     tries++) {
			text = scrape(i);
			cr_assert_not_null(text);
			seen = sample(text, key);
			if (seen == (double)committed) {
				cr_expect_eq(sample(text,
						    "settle_raft_state{"
						    "state=\"follower\"}"),
					     1);
				cr_expect_eq(
				    sample(text, "settle_raft_leader_id"),
				    leader + 1);
				cr_expect_eq(sample(text, "settle_participant_"
							  "retries_total"),
					     0, "a follower calls nobody");
			}
			free(text);
			if (seen != (double)committed)
				usleep(100 * 1000);
		}
		cr_expect_eq(seen, (double)committed, "node %d counted %.0f",
			     i + 1, seen);
	}
	fu_assert_no_sanitizer_reports(&c);
}

/*
 * /readyz is 200 on every member of a healthy cluster; with two of three
 * nodes killed the survivor has no quorum and says 503 with the reason,
 * while /healthz stays 200 (its loop turns); with one node back it is
 * ready again. Other paths and methods get their clear errors.
 */
Test(metrics, readiness_follows_the_quorum)
{
	struct fu_cluster c;
	char body[512];
	int leader, survivor = -1, status = 0;

	start(&c);
	leader = fu_leader(&c, 10000);
	cr_assert_geq(leader, 0);
	for (int i = 0; i < 3; i++) {
		for (int tries = 0; tries < 100; tries++) {
			status = http_get(i, "/readyz", body, sizeof body);
			if (status == 200)
				break;
			usleep(100 * 1000);
		}
		cr_expect_eq(status, 200, "node %d: %d %s", i + 1, status,
			     body);
		cr_expect_eq(http_get(i, "/healthz", body, sizeof body), 200);
		cr_expect_str_eq(body, "ok\n");
	}
	cr_expect_eq(http_get(0, "/nothing", body, sizeof body), 404);
	cr_expect(strstr(body, "/metrics") != NULL, "%s", body);
	cr_expect_eq(http_req(0, "DELETE", "/metrics", body, sizeof body), 405);

	/* Kill the leader and one follower. */
	for (int i = 0; i < 3; i++)
		if (i != leader && survivor < 0)
			survivor = i;
	for (int i = 0; i < 3; i++)
		if (i != survivor)
			fu_kill(&c, i);
	for (int tries = 0; tries < 150; tries++) {
		status = http_get(survivor, "/readyz", body, sizeof body);
		if (status == 503)
			break;
		usleep(100 * 1000);
	}
	cr_assert_eq(status, 503, "node %d still %d %s", survivor + 1, status,
		     body);
	cr_expect(strstr(body, "no leader") != NULL, "%s", body);
	cr_expect_eq(http_get(survivor, "/healthz", body, sizeof body), 200);
	char *text = scrape(survivor);

	cr_assert_not_null(text);
	cr_expect_eq(sample(text, "settle_ready"), 0);
	cr_expect_eq(sample(text, "settle_raft_state{state=\"leader\"}"), 0);
	free(text);

	/* One back: a quorum again. */
	fu_restart(&c, leader);
	for (int tries = 0; tries < 300; tries++) {
		status = http_get(survivor, "/readyz", body, sizeof body);
		if (status == 200)
			break;
		usleep(100 * 1000);
	}
	cr_expect_eq(status, 200, "node %d: %d %s", survivor + 1, status, body);
	fu_assert_no_sanitizer_reports(&c);
}

/* ---- Participants that fail ------------------------------------------------
 * One node with --metrics, demo banks as participants (real processes). */

TestSuite(participants, .init = it_setup, .fini = it_teardown);

/* settle-transfer of 10 from alice at a to the account at b; its exit
 * status, the gid in gid. */
static int transfer(const struct it_node *n, const struct it_bank *a,
		    const struct it_bank *b, const char *to, char *gid)
{
	return it_transfer(n, a, "alice", b, to, 10,
			   (const char *const[]){"--timeout-ms", "20000", NULL},
			   gid, SETTLE_GID_BUFSIZE);
}

/* The same, not waiting for phase two. */
static int transfer_nowait(const struct it_node *n, const struct it_bank *a,
			   const struct it_bank *b, const char *to, char *gid)
{
	return it_transfer(n, a, "alice", b, to, 10,
			   (const char *const[]){"--timeout-ms", "20000",
						 "--wait-ms", "0", NULL},
			   gid, SETTLE_GID_BUFSIZE);
}

static bool is_rolled_back(const Settle__V1__TxInfo *tx)
{
	return tx->state == SETTLE__V1__TX_STATE__ROLLED_BACK;
}

/* The value of a sample of endpoint ep, -1 when absent. */
static double ep_sample(const char *text, const char *name, const char *ep)
{
	char key[200];

	snprintf(key, sizeof key, "%s{endpoint=\"%s\"}", name, ep);
	return sample(text, key);
}

/*
 * Bob's bank is killed: the rollbacks of transfers to it cannot cancel
 * there, and after 3 calls in a row unanswered its breaker opens (the
 * metrics say so, its branches are put off without calls) while
 * transfers between alice and carol commit as before. Bob's bank back,
 * a probe closes the breaker and the rollbacks end.
 */
Test(participants, a_breaker_opens_on_a_dead_participant_and_closes)
{
	struct it_node n;
	struct it_bank a, b, c;
	char gid[SETTLE_GID_BUFSIZE], stuck[3][SETTLE_GID_BUFSIZE], addr[32];
	char *text;
	int port = it_free_port_pair();
	double state = -1;

	snprintf(addr, sizeof addr, "127.0.0.1:%d", port);
	it_node_start(
	    &n, 1,
	    (const char *const[]){"--metrics", addr, "--breaker-failures", "3",
				  "--breaker-pause", "300ms", "--retry-base",
				  "50ms", "--retry-max", "1s", "--call-timeout",
				  "500ms", NULL});
	it_bank_start(&a, "bank-a", "alice=100000", NULL);
	it_bank_start(&b, "bank-b", "bob=0", NULL);
	it_bank_start(&c, "bank-c", "carol=0", NULL);
	cr_assert_eq(transfer(&n, &a, &c, "carol", gid), 0);
	settle_tx_info_free(
	    tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__COMMITTED, 10000));

	it_kill(b.proc);
	/* Their Try at bob fails: each rolls back, its Cancel at bob goes
	 * unanswered. */
	for (int i = 0; i < 3; i++)
		cr_assert_neq(transfer_nowait(&n, &a, &b, "bob", stuck[i]), 0);
	for (int tries = 0; tries < 100 && state != 1 && state != 2; tries++) {
		text = scrape_at(addr);
		cr_assert_not_null(text);
		state = ep_sample(text, "settle_participant_breaker_state",
				  b.endpoint);
		free(text);
		if (state != 1 && state != 2)
			tu_sleep_ms(100);
	}
	cr_assert(state == 1 || state == 2, "bob's breaker never opened (%g)",
		  state);
	/* Carol's transfers commit meanwhile, each within 2 s. */
	for (int i = 0; i < 5; i++) {
		Settle__V1__TxInfo *tx;

		cr_assert_eq(transfer(&n, &a, &c, "carol", gid), 0);
		tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__COMMITTED,
				   2000);
		settle_tx_info_free(tx);
	}
	tu_sleep_ms(1500);
	text = scrape_at(addr);
	cr_assert_not_null(text);
	cr_expect_geq(ep_sample(text, "settle_participant_breaker_opens_total",
				b.endpoint),
		      1);
	cr_expect_geq(ep_sample(text, "settle_participant_calls_deferred_total",
				b.endpoint),
		      1, "no branch was put off");
	cr_expect_eq(
	    ep_sample(text, "settle_participant_breaker_state", c.endpoint), 0,
	    "carol's breaker stays closed");
	free(text);
	/* settlectl participants says the same, and what waits at bob's. */
	{
		char *out, *err, want[128];
		const char *at;

		cr_assert_eq(
		    tu_ctl(&n, &out, &err,
			   (const char *const[]){"participants", NULL}),
		    0, "%s", err);
		cr_assert_not_null(strstr(out, "BREAKER"), "%s", out);
		free(out);
		free(err);
		cr_assert_eq(tu_ctl(&n, &out, &err,
				    (const char *const[]){
					"--json", "participants", NULL}),
			     0, "%s", err);
		snprintf(want, sizeof want,
			 "{\"endpoint\":\"%s\",\"breaker\":", b.endpoint);
		at = strstr(out, want);
		cr_assert_not_null(at, "%s", out);
		cr_expect(strncmp(at + strlen(want), "\"open\"", 6) == 0 ||
			      strncmp(at + strlen(want), "\"half-open\"", 11) ==
				  0,
			  "%s", out);
		cr_expect_not_null(strstr(at, "\"waiting\":3,"), "%s", out);
		snprintf(want, sizeof want,
			 "{\"endpoint\":\"%s\",\"breaker\":\"closed\"",
			 c.endpoint);
		cr_expect_not_null(strstr(out, want), "%s", out);
		free(out);
		free(err);
	}
	for (int i = 0; i < 3; i++) {
		Settle__V1__TxInfo *tx =
		    tu_wait(&n, stuck[i], tu_is_rolling_back, 5000);
		settle_tx_info_free(tx);
	}

	it_restart(b.proc);
	it_wait_port(b.proc, b.port, 10000);
	for (int i = 0; i < 3; i++) {
		Settle__V1__TxInfo *tx =
		    tu_wait(&n, stuck[i], is_rolled_back, 30000);
		settle_tx_info_free(tx);
	}
	text = scrape_at(addr);
	cr_assert_not_null(text);
	cr_expect_eq(
	    ep_sample(text, "settle_participant_breaker_state", b.endpoint), 0,
	    "closed again");
	free(text);
	/* Six transfers to carol committed; bob's three undone. */
	cr_expect_eq(it_bank_account(&a, "alice").balance, 100000 - 60);
	cr_expect_eq(it_bank_account(&a, "alice").frozen, 0);
	cr_expect_eq(it_bank_account(&c, "carol").balance, 60);
	cr_expect_eq(it_bank_account(&b, "bob").incoming, 0);
}

/*
 * --retry-attempts 3: a Confirm that bob's bank answers RETRY three times
 * gives up; its branch is FAILED and the transaction stuck with the
 * reason; `settlectl tx retry` then commits it (the bank answers OK from
 * its fourth call).
 */
Test(participants, a_spent_retry_budget_leaves_a_stuck_transaction)
{
	struct it_node n;
	struct it_bank a, b;
	char gid[SETTLE_GID_BUFSIZE], *out, *err;
	Settle__V1__TxInfo *tx;

	it_node_start(&n, 1,
		      (const char *const[]){"--retry-attempts", "3",
					    "--retry-base", "50ms",
					    "--retry-max", "100ms", NULL});
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(&b, "bank-b", "bob=0",
		      (const char *const[]){"--retry-first", "3", NULL});
	cr_assert_eq(transfer(&n, &a, &b, "bob", gid), 0);
	tx = tu_wait(&n, gid, tu_is_stuck, 20000);
	cr_assert_eq(tx->state, SETTLE__V1__TX_STATE__COMMITTING);
	settle_tx_info_free(tx);
	cr_assert_eq(
	    tu_ctl(&n, &out, &err,
		   (const char *const[]){"--json", "tx", "show", gid, NULL}),
	    0, "%s", err);
	cr_assert_not_null(strstr(out, "retry budget spent: 3 attempts"), "%s",
			   out);
	cr_assert_not_null(strstr(out, "injected retry"), "%s", out);
	cr_assert_not_null(strstr(out, "\"state\":\"failed\""), "%s", out);
	free(out);
	free(err);

	cr_assert_eq(tu_ctl(&n, &out, &err,
			    (const char *const[]){"tx", "retry", gid, NULL}),
		     0, "%s%s", out, err);
	free(out);
	free(err);
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__COMMITTED, 30000);
	settle_tx_info_free(tx);
	tu_assert_balances(&a, &b, 990, 10);
}

/* ---- systemd ---------------------------------------------------------------
 * settled under a service manager of Type=notify: what it sends to
 * $NOTIFY_SOCKET (the sd_notify protocol: one datagram of NAME=VALUE
 * lines each). */

TestSuite(systemd, .init = it_setup, .fini = it_teardown);

/* The next datagram on fd within ms, in buf; false when none came. */
static bool notify_recv(int fd, char *buf, size_t len, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	ssize_t n;

	if (poll(&p, 1, ms) != 1)
		return false;
	n = recv(fd, buf, len - 1, 0);
	if (n < 0)
		return false;
	buf[n] = '\0';
	return true;
}

/* Wait up to ms for a datagram holding line; false if none did. */
static bool notify_wait(int fd, const char *line, int ms)
{
	uint64_t end = load_mono_ms() + (uint64_t)ms;
	char buf[512];

	while (load_mono_ms() < end)
		if (notify_recv(fd, buf, sizeof buf,
				(int)(end - load_mono_ms())) &&
		    strstr(buf, line) != NULL)
			return true;
	return false;
}

/*
 * A one-node cluster tells its manager READY=1 once it is ready (with its
 * readiness as STATUS), pings the watchdog while it runs (WATCHDOG_USEC
 * set as systemd sets it for WatchdogSec), and says STOPPING=1 at SIGTERM.
 */
Test(systemd, ready_watchdog_and_stopping)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	struct it_node n;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	char path[sizeof a.sun_path];

	cr_assert_geq(fd, 0);
	snprintf(path, sizeof path, "/tmp/settle-notify-%d.sock",
		 (int)getpid());
	unlink(path);
	snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "%s",
		     strerror(errno));
	setenv("NOTIFY_SOCKET", path, 1);
	setenv("WATCHDOG_USEC", "400000", 1);
	it_node_start(&n, 1, NULL);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	cr_expect(notify_wait(fd, "READY=1", 10000), "no READY=1");
	/* A quarter of the watchdog's 400 ms: several in a second. */
	cr_expect(notify_wait(fd, "WATCHDOG=1", 1000), "no watchdog ping");
	cr_expect(notify_wait(fd, "WATCHDOG=1", 1000), "one ping only");
	it_stop(n.proc);
	cr_expect(notify_wait(fd, "STOPPING=1", 5000), "no STOPPING=1");
	close(fd);
	unlink(path);
}

/* ---- Logs -----------------------------------------------------------------
 * settled --log-format json, its level changed at run time, and no branch
 * payload in any line even with every trace on. */

TestSuite(logs, .init = it_setup, .fini = it_teardown);

/* Every line of node's log that is JSON checked with Python's parser:
 * the number of lines that are, or -1 when one does not parse or lacks a
 * field; lines holding needle counted in *hits. */
static int json_lines(const struct it_node *n, const char *needle, int *hits)
{
	char log[600], script[1400], *argv[4], *out = NULL, *err = NULL;
	int rv, lines = -1;

	snprintf(log, sizeof log, "%s.log", n->data);
	snprintf(script, sizeof script,
		 "import json,sys\n"
		 "n=h=0\n"
		 "for line in open(sys.argv[1], encoding='utf-8'):\n"
		 "    if not line.startswith('{'):\n"
		 "        continue\n"
		 "    o=json.loads(line)\n"
		 "    for k in ('time','level','program','node','component',"
		 "'msg'):\n"
		 "        assert k in o, (k, line)\n"
		 "    n+=1\n"
		 "    h+=sys.argv[2] in line\n"
		 "print(n, h)\n");
	argv[0] = "/usr/bin/python3";
	argv[1] = "-c";
	argv[2] = script;
	argv[3] = NULL;
	{
		char *full[6] = {argv[0], argv[1],	  argv[2],
				 log,	  (char *)needle, NULL};

		rv = it_run(full, &out, &err, 30000);
	}
	if (rv == 0 && sscanf(out, "%d %d", &lines, hits) != 2)
		lines = -1;
	if (rv != 0)
		fprintf(stderr, "json check: %s\n", err);
	free(out);
	free(err);
	return lines;
}

/*
 * Lines are JSON objects; SIGUSR1 turns debug and traces on (said in the
 * log), and with them on a transfer to an account whose name appears only
 * in the branches' payloads leaves that name in no line.
 */
Test(logs, json_lines_levels_and_no_payload)
{
	struct it_node n;
	struct it_bank a, b;
	char gid[SETTLE_GID_BUFSIZE];
	int hits = 0, lines;
	Settle__V1__TxInfo *tx;

	it_node_start(&n, 1,
		      (const char *const[]){"--log-format", "json", NULL});
	it_bank_start(&a, "bank-a", "alice=1000", NULL);
	it_bank_start(&b, "bank-b", "zq7payloadacct=0", NULL);
	kill(n.proc->pid, SIGUSR1);
	tu_sleep_ms(300);
	cr_assert_eq(it_transfer(&n, &a, "alice", &b, "zq7payloadacct", 10,
				 NULL, gid, sizeof(gid)),
		     0);
	tx = tu_wait_final(&n, gid, SETTLE__V1__TX_STATE__COMMITTED, 10000);
	settle_tx_info_free(tx);
	kill(n.proc->pid, SIGUSR2);
	tu_sleep_ms(300);
	lines = json_lines(&n, "zq7payloadacct", &hits);
	cr_assert_gt(lines, 5, "too few JSON lines: %d", lines);
	cr_expect_eq(hits, 0, "a payload reached the log %d times", hits);
	cr_expect_gt(json_lines(&n, "log level now DEBUG", &hits), 0);
	cr_expect_eq(hits, 1, "SIGUSR1 not said");
	cr_expect_gt(json_lines(&n, "\"level\":\"debug\"", &hits), 0);
	cr_expect_gt(hits, 0, "no debug line while at debug");
	{
		char field[SETTLE_GID_BUFSIZE + 16];

		snprintf(field, sizeof field, "\"gid\":\"%s\"", gid);
		cr_expect_gt(json_lines(&n, field, &hits), 0);
		cr_expect_gt(hits, 0,
			     "no line with the transaction's gid as a field");
	}
	cr_expect_gt(json_lines(&n, "log level now INFO", &hits), 0);
	cr_expect_eq(hits, 1, "SIGUSR2 not said");
}

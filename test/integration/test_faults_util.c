/*
 * test_faults_util.c — see test_faults_util.h.
 */
#include "test_faults_util.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coord_util.h"

/* In a namespace every node has the port space to itself. */
#define NS_PORT 7000

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Run a shell command; its exit status (-1 if it could not run). */
static int shf(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	st = system(cmd);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

#define SH_OK(...)                                                             \
	do {                                                                   \
		int sh_rc_ = shf(__VA_ARGS__);                                 \
		cr_assert_eq(sh_rc_, 0, "command failed (%d)", sh_rc_);        \
	} while (0)

/* ---- Starting ------------------------------------------------------------ */

static void spawn_node(struct fu_cluster *c, int i, const char *peers,
		       const char *const *extra, const char *const *own)
{
	struct fu_node *nd = &c->nodes[i];
	char *argv[IT_MAX_ARGS + 1];
	char ids[16], raft[64], name[32];
	int k = 0;

	snprintf(ids, sizeof(ids), "%d", nd->id);
	snprintf(raft, sizeof(raft), "%s:%d", nd->host, nd->port + 1);
	snprintf(name, sizeof(name), "node%d", nd->id);
	if (nd->ns[0] != '\0') {
		argv[k++] = "/usr/sbin/ip";
		if (access(argv[0], X_OK) != 0)
			argv[0] = "/sbin/ip";
		argv[k++] = "netns";
		argv[k++] = "exec";
		argv[k++] = nd->ns;
	}
	argv[k++] = (char *)it_bin("settled");
	argv[k++] = "--id";
	argv[k++] = ids;
	argv[k++] = "--data";
	argv[k++] = nd->data;
	argv[k++] = "--listen";
	argv[k++] = nd->endpoint;
	argv[k++] = "--raft";
	argv[k++] = raft;
	if (c->n > 1) {
		argv[k++] = "--peers";
		argv[k++] = (char *)peers;
	}
	while (extra && *extra && k < IT_MAX_ARGS)
		argv[k++] = (char *)*extra++;
	while (own && *own && k < IT_MAX_ARGS)
		argv[k++] = (char *)*own++;
	argv[k] = NULL;
	nd->proc = it_spawn(name, argv);
}

static void start_nodes(struct fu_cluster *c, const char *const *extra,
			const char *const *const *own)
{
	char peers[FU_MAX_NODES * 160] = "";
	char eps[sizeof(c->endpoints)] = "";
	int i;

	for (i = 0; i < c->n; i++) {
		struct fu_node *nd = &c->nodes[i];
		size_t pl = strlen(peers), el = strlen(eps);

		char host[sizeof(nd->host)];

		/* A copy: gcc's -Wrestrict sees both inside *c. */
		memcpy(host, nd->host, sizeof(host));
		snprintf(nd->endpoint, sizeof(nd->endpoint), "%s:%d", host,
			 nd->port);
		snprintf(nd->data, sizeof(nd->data), "%s/node%d", it_dir(),
			 nd->id);
		cr_assert_eq(mkdir(nd->data, 0755), 0, "mkdir %s: %s", nd->data,
			     strerror(errno));
		snprintf(peers + pl, sizeof(peers) - pl, "%s%d=%s:%d=%s",
			 i ? "," : "", nd->id, nd->host, nd->port + 1,
			 nd->endpoint);
		snprintf(eps + el, sizeof(eps) - el, "%s%s", i ? "," : "",
			 nd->endpoint);
	}
	memcpy(c->endpoints, eps, sizeof(eps));
	for (i = 0; i < c->n; i++)
		spawn_node(c, i, peers, extra, own != NULL ? own[i] : NULL);
	if (fu_leader(c, 30000) < 0) {
		for (i = 0; i < c->n; i++)
			it_show_log(c->nodes[i].proc);
		cr_assert_fail("no leader in a %d-node cluster after 30 s",
			       c->n);
	}
}

void fu_cluster_start(struct fu_cluster *c, int n, const char *const *extra)
{
	fu_cluster_start_with(c, n, extra, NULL);
}

void fu_cluster_start_with(struct fu_cluster *c, int n,
			   const char *const *extra,
			   const char *const *const *own)
{
	int i;

	cr_assert(n >= 1 && n <= FU_MAX_NODES);
	memset(c, 0, sizeof(*c));
	c->n = n;
	snprintf(c->host, sizeof(c->host), "127.0.0.1");
	for (i = 0; i < n; i++) {
		c->nodes[i].id = i + 1;
		c->nodes[i].port = it_free_port_pair();
		snprintf(c->nodes[i].host, sizeof(c->nodes[i].host),
			 "127.0.0.1");
	}
	start_nodes(c, extra, own);
}

bool fu_netns_available(char *why, size_t len)
{
	char ns[32];

	if (geteuid() != 0) {
		snprintf(why, len, "network namespaces need root (euid %d)",
			 (int)geteuid());
		return false;
	}
	if (shf("ip netns list >/dev/null 2>&1") != 0) {
		snprintf(why, len,
			 "`ip netns` does not work here (install "
			 "iproute2)");
		return false;
	}
	snprintf(ns, sizeof(ns), "stlprobe%d", (int)getpid());
	if (shf("ip netns add %s >/dev/null 2>&1", ns) != 0) {
		snprintf(why, len, "cannot create a network namespace");
		return false;
	}
	shf("ip netns del %s >/dev/null 2>&1", ns);
	snprintf(ns, sizeof(ns), "stlpb%d", (int)getpid() % 100000);
	if (shf("ip link add %s type bridge >/dev/null 2>&1", ns) != 0) {
		snprintf(why, len, "cannot create a bridge device");
		return false;
	}
	shf("ip link del %s >/dev/null 2>&1", ns);
	return true;
}

void fu_cluster_start_netns(struct fu_cluster *c, int n,
			    const char *const *extra)
{
	int i;

	cr_assert(n >= 1 && n <= FU_MAX_NODES);
	memset(c, 0, sizeof(*c));
	c->n = n;
	c->netns = true;
	/* One /24 per test process, so parallel runs do not collide. */
	c->tag = 1 + (int)(getpid() % 250);
	snprintf(c->bridge, sizeof(c->bridge), "stlbr%d", c->tag);
	snprintf(c->host, sizeof(c->host), "10.77.%d.254", c->tag);
	/* Leftovers of a crashed earlier run with the same tag. */
	fu_cluster_teardown(c);
	c->netns = true;
	SH_OK("ip link add %s type bridge && ip addr add %s/24 dev %s && "
	      "ip link set %s up",
	      c->bridge, c->host, c->bridge, c->bridge);
	for (i = 0; i < n; i++) {
		struct fu_node *nd = &c->nodes[i];

		nd->id = i + 1;
		nd->port = NS_PORT;
		snprintf(nd->ns, sizeof(nd->ns), "stl%dn%d", c->tag, nd->id);
		snprintf(nd->host, sizeof(nd->host), "10.77.%d.%d", c->tag,
			 nd->id);
		SH_OK("ip netns add %s && "
		      "ip link add stl%dv%d type veth peer name stl%dp%d && "
		      "ip link set stl%dp%d netns %s && "
		      "ip link set stl%dv%d master %s && "
		      "ip link set stl%dv%d up && "
		      "ip netns exec %s ip link set lo up && "
		      "ip netns exec %s ip addr add %s/24 dev stl%dp%d && "
		      "ip netns exec %s ip link set stl%dp%d up",
		      nd->ns, c->tag, nd->id, c->tag, nd->id, c->tag, nd->id,
		      nd->ns, c->tag, nd->id, c->bridge, c->tag, nd->id, nd->ns,
		      nd->ns, nd->host, c->tag, nd->id, nd->ns, c->tag, nd->id);
	}
	start_nodes(c, extra, NULL);
}

void fu_cluster_teardown(struct fu_cluster *c)
{
	int i;

	if (!c->netns)
		return;
	for (i = 0; i < FU_MAX_NODES; i++) {
		shf("ip netns del stl%dn%d >/dev/null 2>&1", c->tag, i + 1);
		shf("ip link del stl%dv%d >/dev/null 2>&1", c->tag, i + 1);
	}
	shf("ip link del %s >/dev/null 2>&1", c->bridge);
	c->netns = false;
}

/* ---- Watching ------------------------------------------------------------ */

static settle_client *status_client(const struct fu_cluster *c)
{
	struct settle_client_opts co = {0};
	settle_client *sc;

	co.call_timeout_ms = 700;
	co.connect_timeout_ms = 300;
	co.retry_budget_ms = 1;
	cr_assert_eq(settle_client_open(c->endpoints, &co, &sc), 0);
	/* A cluster under TLS: the certificate settlectl would use. */
	if (getenv("SETTLE_TLS_CERT") != NULL) {
		struct settle_tls tls = {
		    .cert = getenv("SETTLE_TLS_CERT"),
		    .key = getenv("SETTLE_TLS_KEY"),
		    .ca = getenv("SETTLE_TLS_CA"),
		};

		cr_assert_eq(settle_client_set_tls(sc, &tls), 0);
	}
	return sc;
}

static Settle__V1__StatusResponse *node_status(settle_client *sc,
					       const struct fu_node *nd)
{
	Settle__V1__StatusResponse *st = NULL;

	if (settle_client_call_at(sc, nd->endpoint, SETTLE__V1__METHOD__STATUS,
				  NULL,
				  &settle__v1__status_response__descriptor,
				  (ProtobufCMessage **)&st) != 0)
		return NULL;
	return st;
}

int fu_leader_except(struct fu_cluster *c, int skip, int timeout_ms)
{
	uint64_t end = load_mono_ms() + (uint64_t)timeout_ms;
	settle_client *sc = status_client(c);
	int best;

	for (;;) {
		uint64_t best_term = 0;
		int i;

		best = -1;
		for (i = 0; i < c->n; i++) {
			struct fu_node *nd = &c->nodes[i];
			Settle__V1__StatusResponse *st;

			if (i == skip || nd->paused || !it_alive(nd->proc))
				continue;
			st = node_status(sc, nd);
			if (st == NULL)
				continue;
			if (strcmp(st->role, "leader") == 0 &&
			    st->term >= best_term) {
				best = i;
				best_term = st->term;
			}
			settle__v1__status_response__free_unpacked(st, NULL);
		}
		if (best >= 0 || load_mono_ms() > end)
			break;
		sleep_ms(50);
	}
	settle_client_close(sc);
	return best;
}

int fu_leader(struct fu_cluster *c, int timeout_ms)
{
	return fu_leader_except(c, -1, timeout_ms);
}

/* Why a wait for catch-up gave up: every node's applied index against
 * the target, and the log of each node short of it. */
static void show_lag(struct fu_cluster *c, settle_client *sc, uint64_t target)
{
	int i;

	fprintf(stderr, "catch-up: target applied index %llu\n",
		(unsigned long long)target);
	for (i = 0; i < c->n; i++) {
		Settle__V1__StatusResponse *st;
		bool behind = true;

		if (c->nodes[i].paused || !it_alive(c->nodes[i].proc)) {
			fprintf(stderr, "node %d: %s\n", c->nodes[i].id,
				c->nodes[i].paused ? "paused" : "not running");
			continue;
		}
		st = node_status(sc, &c->nodes[i]);
		if (st == NULL) {
			fprintf(stderr, "node %d: no status\n", c->nodes[i].id);
		} else {
			fprintf(stderr,
				"node %d: %s term %llu last %llu applied "
				"%llu\n",
				c->nodes[i].id, st->role,
				(unsigned long long)st->term,
				(unsigned long long)st->last_index,
				(unsigned long long)st->applied_index);
			behind = st->applied_index < target;
			settle__v1__status_response__free_unpacked(st, NULL);
		}
		if (behind)
			it_show_log(c->nodes[i].proc);
	}
}

bool fu_wait_caught_up(struct fu_cluster *c, int timeout_ms)
{
	uint64_t end = load_mono_ms() + (uint64_t)timeout_ms;
	settle_client *sc = status_client(c);
	uint64_t target = 0;
	bool ok = false;

	/* Under load the applied indexes never line up at one instant:
	 * catching up means reaching where the furthest node was when we
	 * started looking. */
	while (!ok && load_mono_ms() <= end) {
		uint64_t lo = UINT64_MAX, hi = 0;
		int i, seen = 0;

		for (i = 0; i < c->n; i++) {
			Settle__V1__StatusResponse *st;

			if (c->nodes[i].paused || !it_alive(c->nodes[i].proc))
				continue;
			st = node_status(sc, &c->nodes[i]);
			if (st == NULL)
				break;
			seen++;
			lo = st->applied_index < lo ? st->applied_index : lo;
			hi = st->applied_index > hi ? st->applied_index : hi;
			settle__v1__status_response__free_unpacked(st, NULL);
		}
		if (target == 0)
			target = hi;
		ok = i == c->n && seen > 0 && target > 0 && lo >= target;
		if (!ok)
			sleep_ms(100);
	}
	if (!ok)
		show_lag(c, sc, target);
	settle_client_close(sc);
	return ok;
}

bool fu_wait_level(struct fu_cluster *c, uint32_t level, int timeout_ms)
{
	uint64_t end = load_mono_ms() + (uint64_t)timeout_ms;
	settle_client *sc = status_client(c);
	bool ok = false;

	while (!ok && load_mono_ms() <= end) {
		int i;

		for (i = 0; i < c->n; i++) {
			Settle__V1__StatusResponse *st;
			bool there;

			if (c->nodes[i].paused || !it_alive(c->nodes[i].proc))
				continue;
			st = node_status(sc, &c->nodes[i]);
			if (st == NULL)
				break;
			there = st->cluster_feature_level >= level;
			settle__v1__status_response__free_unpacked(st, NULL);
			if (!there)
				break;
		}
		ok = i == c->n;
		if (!ok)
			sleep_ms(100);
	}
	settle_client_close(sc);
	return ok;
}

/* ---- Faults -------------------------------------------------------------- */

void fu_kill(struct fu_cluster *c, int i)
{
	struct fu_node *nd = &c->nodes[i];

	/* A stopped process takes SIGKILL too; it must not stay marked. */
	it_kill(nd->proc);
	nd->paused = false;
}

/* Hand leadership to node i (retried: a loaded target may answer raft's
 * TimeoutNow late), and wait until it leads. */
void fu_transfer_to(struct fu_cluster *c, int i)
{
	Settle__V1__ClusterTransferRequest req =
	    SETTLE__V1__CLUSTER_TRANSFER_REQUEST__INIT;
	struct cu_reply r;
	struct cu_conn conn;
	int tries = 0;

	req.id = (uint64_t)c->nodes[i].id;
	while (fu_leader(c, 10000) != i) {
		int l = fu_leader(c, 10000);

		cr_assert(tries++ < 5, "leadership did not move to node %d",
			  i + 1);
		cr_assert_geq(l, 0, "no leader");
		cu_connect(&conn, c->nodes[l].endpoint, 5000);
		cr_assert_eq(cu_call(&conn,
				     SETTLE__V1__METHOD__CLUSTER_TRANSFER,
				     &req.base, &r),
			     0);
		cu_close(&conn);
		fprintf(stderr, "transfer to node %d: code %d %s\n", i + 1,
			r.code, r.msg);
		cu_reply_free(&r);
		sleep_ms(200);
	}
}

void fu_restart(struct fu_cluster *c, int i)
{
	it_restart(c->nodes[i].proc);
}

void fu_pause(struct fu_cluster *c, int i)
{
	cr_assert(c->nodes[i].proc->pid > 0);
	cr_assert_eq(kill(c->nodes[i].proc->pid, SIGSTOP), 0);
	c->nodes[i].paused = true;
}

void fu_resume(struct fu_cluster *c, int i)
{
	cr_assert(c->nodes[i].proc->pid > 0);
	cr_assert_eq(kill(c->nodes[i].proc->pid, SIGCONT), 0);
	c->nodes[i].paused = false;
}

/* Blackhole routes in both directions: the nodes' traffic to each other
 * stops while the bridge address (clients, banks) still answers. */
static void routes(struct fu_cluster *c, int i, const char *verb)
{
	int j;

	cr_assert(c->netns, "partitions need a netns cluster");
	for (j = 0; j < c->n; j++) {
		if (j == i)
			continue;
		SH_OK("ip netns exec %s ip route %s blackhole %s/32",
		      c->nodes[i].ns, verb, c->nodes[j].host);
		SH_OK("ip netns exec %s ip route %s blackhole %s/32",
		      c->nodes[j].ns, verb, c->nodes[i].host);
	}
}

void fu_isolate(struct fu_cluster *c, int i)
{
	routes(c, i, "add");
}

void fu_heal(struct fu_cluster *c, int i)
{
	routes(c, i, "del");
}

void fu_assert_no_sanitizer_reports(const struct fu_cluster *c)
{
	char first[512];
	int i;

	for (i = 0; i < c->n; i++)
		cr_assert(!cu_log_has_sanitizer_report(c->nodes[i].proc->log,
						       first, sizeof(first)),
			  "node %d: %s", c->nodes[i].id, first);
}

/* ---- Banks --------------------------------------------------------------- */

static bool port_open(const char *host, int port)
{
	struct sockaddr_in a = {0};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;

	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, host, &a.sin_addr);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

void fu_bank_start(struct it_bank *b, const char *host, const char *name,
		   const char *accounts, const char *const *extra)
{
	char *argv[IT_MAX_ARGS + 1];
	uint64_t end;
	int i = 0;

	if (host == NULL)
		host = "127.0.0.1";
	memset(b, 0, sizeof(*b));
	b->port = it_free_port_pair();
	snprintf(b->endpoint, sizeof(b->endpoint), "%s:%d", host, b->port);
	snprintf(b->data, sizeof(b->data), "%s/%s", it_dir(), name);
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
	end = load_mono_ms() + 10000;
	while (!port_open(host, b->port)) {
		if (!it_alive(b->proc) || load_mono_ms() > end) {
			it_show_log(b->proc);
			cr_assert_fail("%s not listening on %s", name,
				       b->endpoint);
		}
		sleep_ms(20);
	}
}

/* ---- Invariants ---------------------------------------------------------- */

/* What one bank applied for one transaction, from its log. */
struct effects {
	unsigned confirm, cancel;
};

/*
 * Count the effects each transaction had on a bank: settle-bank logs
 * "bank: confirm GID/BRANCH attempt N: ok" once per business effect (the
 * barrier skips repeats before the handler runs).
 */
static void read_effects(const struct it_bank *b, const char *prefix,
			 struct effects *fx, size_t n)
{
	FILE *f = fopen(b->proc->log, "r");
	char line[1024];
	size_t plen = strlen(prefix);

	cr_assert_not_null(f, "open %s: %s", b->proc->log, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		char op[16], gid[128], res[32];
		unsigned branch, attempt;
		const char *p = strstr(line, " bank: ");
		char *end;
		size_t k;

		if (p == NULL ||
		    sscanf(p + 7, "%15s %127[^/]/%u attempt %u: %31s", op, gid,
			   &branch, &attempt, res) != 5)
			continue;
		if (strcmp(res, "ok") != 0 || strncmp(gid, prefix, plen) != 0 ||
		    gid[plen] != '-')
			continue;
		k = strtoul(gid + plen + 1, &end, 10);
		if (*end != '\0' || k >= n)
			continue;
		if (strcmp(op, "confirm") == 0)
			fx[k].confirm++;
		else if (strcmp(op, "cancel") == 0)
			fx[k].cancel++;
	}
	fclose(f);
}

enum outcome { OUT_UNKNOWN, OUT_ABSENT, OUT_COMMITTED, OUT_ROLLED_BACK };

#define REPORT_MAX 20

struct report {
	int total;
	int kind[8];
};

enum {
	V_NOT_TERMINAL,
	V_LOST_BEGIN,
	V_ACK_NOT_CONFIRMED,
	V_BRANCH_STATE,
	V_EFFECTS,
	V_BALANCE,
	V_STUCK,
};

static void violation(struct report *r, int kind, const char *fmt, ...)
{
	va_list ap;

	r->total++;
	if (r->kind[kind]++ >= REPORT_MAX)
		return;
	fprintf(stderr, "VIOLATION: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

static bool is_terminal(const Settle__V1__TxInfo *tx)
{
	return tx->finished_ms != 0 &&
	       (tx->state == SETTLE__V1__TX_STATE__COMMITTED ||
		tx->state == SETTLE__V1__TX_STATE__ROLLED_BACK);
}

/* Query until terminal or the deadline; the outcome, with the branch
 * states checked. */
static enum outcome settle_one(settle_client *sc, const struct load_tx *t,
			       uint64_t deadline_ms, struct report *r)
{
	Settle__V1__TxInfo *tx = NULL;
	char last[256] = "no answer";
	enum outcome out = OUT_UNKNOWN;
	size_t b;
	int rv;

	for (;;) {
		rv = settle_query(sc, t->gid, false, &tx);
		if (rv == 0 && is_terminal(tx))
			break;
		if (rv == SETTLE_ENOTFOUND) {
			if (t->stage >= LOAD_BEGUN)
				violation(r, V_LOST_BEGIN,
					  "%s: Begin was acknowledged but the "
					  "cluster does not know it",
					  t->gid);
			return OUT_ABSENT;
		}
		if (rv == 0) {
			snprintf(last, sizeof(last),
				 "%s, stuck %d, reason '%s'",
				 settle_tx_state_name(tx->state), tx->stuck,
				 tx->reason);
			settle_tx_info_free(tx);
			tx = NULL;
		} else {
			snprintf(last, sizeof(last), "%s",
				 settle_client_errmsg(sc));
		}
		if (load_mono_ms() > deadline_ms) {
			violation(r, V_NOT_TERMINAL,
				  "%s: not terminal within the bound; last: "
				  "%s (stage %d, commit acked %d)",
				  t->gid, last, t->stage, t->commit_acked);
			return OUT_UNKNOWN;
		}
		sleep_ms(100);
	}
	out = tx->state == SETTLE__V1__TX_STATE__COMMITTED ? OUT_COMMITTED
							   : OUT_ROLLED_BACK;
	if (tx->stuck)
		violation(r, V_STUCK, "%s: terminal but stuck: %s", t->gid,
			  tx->reason);
	for (b = 0; b < tx->n_branches; b++) {
		int want = out == OUT_COMMITTED
			       ? SETTLE__V1__BRANCH_STATE__CONFIRMED
			       : SETTLE__V1__BRANCH_STATE__CANCELLED;
		if ((int)tx->branches[b]->state != want)
			violation(
			    r, V_BRANCH_STATE, "%s is %s but branch %u is %s",
			    t->gid, settle_tx_state_name(tx->state),
			    tx->branches[b]->branch_id,
			    settle_branch_state_name(tx->branches[b]->state));
	}
	if (out == OUT_COMMITTED && t->stage >= LOAD_COMMIT_SENT &&
	    tx->n_branches != 2)
		violation(r, V_BRANCH_STATE, "%s committed with %zu branches",
			  t->gid, tx->n_branches);
	settle_tx_info_free(tx);
	return out;
}

static const char *gid_prefix(load *l)
{
	static char buf[64];
	size_t n;
	const struct load_tx *txs = load_txs(l, &n);
	char *dash;

	if (n == 0)
		return "";
	snprintf(buf, sizeof(buf), "%s", txs[0].gid);
	dash = strrchr(buf, '-');
	if (dash)
		*dash = '\0';
	return buf;
}

int fu_check(struct fu_cluster *c, const struct fu_books *books, load *l,
	     uint64_t deadline_ms)
{
	struct settle_client_opts co = {0};
	struct report r = {0};
	settle_client *sc;
	size_t n, i, committed = 0, rolled = 0, absent = 0, acked = 0;
	const struct load_tx *txs = load_txs(l, &n);
	enum outcome *outs = calloc(n + 1, sizeof(*outs));
	struct effects *fa = calloc(n + 1, sizeof(*fa));
	struct effects *fb = calloc(n + 1, sizeof(*fb));
	long long want_a = books->initial_a, want_b = books->initial_b;
	struct it_account xa, xb;

	cr_assert(outs && fa && fb);
	co.call_timeout_ms = 2000;
	co.connect_timeout_ms = 300;
	co.retry_budget_ms = 3000;
	cr_assert_eq(settle_client_open(c->endpoints, &co, &sc), 0);

	for (i = 0; i < n; i++) {
		const struct load_tx *t = &txs[i];

		if (t->stage == LOAD_NONE)
			continue;
		outs[i] = settle_one(sc, t, deadline_ms, &r);
		if (t->commit_acked) {
			acked++;
			if (outs[i] != OUT_COMMITTED)
				violation(&r, V_ACK_NOT_CONFIRMED,
					  "%s: Commit acknowledged (state %s) "
					  "but the outcome is %s",
					  t->gid,
					  settle_tx_state_name(t->acked_state),
					  outs[i] == OUT_ROLLED_BACK
					      ? "ROLLED_BACK"
					  : outs[i] == OUT_ABSENT ? "absent"
								  : "unknown");
			if (t->acked_state !=
				SETTLE__V1__TX_STATE__COMMITTING &&
			    t->acked_state != SETTLE__V1__TX_STATE__COMMITTED)
				violation(&r, V_ACK_NOT_CONFIRMED,
					  "%s: Commit acknowledged with state "
					  "%s",
					  t->gid,
					  settle_tx_state_name(t->acked_state));
		}
		if (outs[i] == OUT_COMMITTED) {
			committed++;
			want_a += t->a_to_b ? -t->amount : t->amount;
			want_b += t->a_to_b ? t->amount : -t->amount;
		} else if (outs[i] == OUT_ROLLED_BACK) {
			rolled++;
		} else if (outs[i] == OUT_ABSENT) {
			absent++;
		}
	}
	settle_client_close(sc);

	/* Effects as the banks applied them. */
	read_effects(books->bank_a, gid_prefix(l), fa, n);
	read_effects(books->bank_b, gid_prefix(l), fb, n);
	for (i = 0; i < n; i++) {
		struct effects *e[2] = {&fa[i], &fb[i]};
		int k;

		for (k = 0; k < 2; k++) {
			const char *bank = k ? "bank-b" : "bank-a";
			bool bad = false;

			switch (outs[i]) {
			case OUT_COMMITTED:
				bad = e[k]->confirm != 1 || e[k]->cancel != 0;
				break;
			case OUT_ROLLED_BACK:
			case OUT_ABSENT:
				bad = e[k]->confirm != 0 || e[k]->cancel > 1;
				break;
			default:
				break;
			}
			if (bad)
				violation(&r, V_EFFECTS,
					  "%s: %s applied %u confirm(s) and %u "
					  "cancel(s), outcome %d",
					  txs[i].gid, bank, e[k]->confirm,
					  e[k]->cancel, outs[i]);
		}
	}

	xa = it_bank_account(books->bank_a, books->account_a);
	xb = it_bank_account(books->bank_b, books->account_b);
	if (xa.balance != want_a || xb.balance != want_b)
		violation(&r, V_BALANCE,
			  "balances %lld and %lld, want %lld and %lld from the "
			  "committed transfers",
			  xa.balance, xb.balance, want_a, want_b);
	if (xa.frozen || xa.incoming || xb.frozen || xb.incoming)
		violation(&r, V_BALANCE,
			  "left reserved: a frozen %lld incoming %lld, b "
			  "frozen %lld incoming %lld",
			  xa.frozen, xa.incoming, xb.frozen, xb.incoming);
	if (xa.balance + xb.balance != books->initial_a + books->initial_b)
		violation(&r, V_BALANCE, "money not conserved: %lld, want %lld",
			  xa.balance + xb.balance,
			  books->initial_a + books->initial_b);

	fprintf(stderr,
		"check: %zu transactions: %zu committed (%zu acknowledged), "
		"%zu rolled back, %zu never begun; balances %lld + %lld; "
		"%d violation(s)\n",
		n, committed, acked, rolled, absent, xa.balance, xb.balance,
		r.total);
	free(outs);
	free(fa);
	free(fb);
	return r.total;
}

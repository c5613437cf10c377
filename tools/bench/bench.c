/*
 * settle-bench — load generator for a Settle cluster.
 *
 *   settle-bench --cluster ENDPOINTS --mode tcc|saga --branches K
 *                --concurrency C --duration SECONDS [--rollback-ratio R]
 *                [--declare-branches | --register-branches]
 *                [--listen HOST:PORT] [--rate R] [--interval S] [--json]
 *                [--client async|sync] [--random-gids]
 *   settle-bench [--cluster ENDPOINTS] --mode xa|xa-local [--xa-pg CONNINFO]
 *                [--xa-mariadb CONNINFO] [--xa-pg-rm NAME]
 *                [--xa-mariadb-rm NAME] [--xa-rows N] --concurrency C
 *                --duration SECONDS [--json]
 *
 * --listen is where the in-process participant listens (default
 * 127.0.0.1:0, a free port); the coordinator must be able to reach it
 * there, so give a routable host when the cluster is on other machines.
 *
 * C transactions are kept in flight for SECONDS, by default on one thread
 * with libsettle's asynchronous client (bench_async.c: one connection to
 * the leader, one to the participant); --client sync gives each its own
 * thread and blocking handle instead (needed for --register-branches).
 * A TCC transaction is: Begin with K branches on an
 * in-process participant declared (one raft command; --register-branches:
 * Begin, then one REGISTER_BRANCH each), TRY each branch on it, then
 * Commit (or, for a fraction R, Rollback) and wait for phase two to
 * finish, so the latency measured is the whole two-phase commit.
 *
 * --rate R (tcc, saga): open loop. Transaction k is due R/s after the
 * start, k / R seconds in, whether or not the ones before it are done;
 * a free slot takes the next due one and its latency counts from when
 * it was due, so a stall of the cluster shows in every transaction that
 * waited for it (no coordinated omission). --concurrency then bounds the
 * transactions in flight: give enough for R times the latency. Without
 * --rate each slot starts its next transaction when one ends.
 *
 * --random-gids: the bench chooses every gid (32 random hex digits, as a
 * client with UUIDs would) instead of leaving it to the leader, whose
 * gids come in order and fill the store's pages better.
 *
 * --interval S: also print, per S seconds of the run, the transactions
 * that ended in it (per second) and the slowest of them, to see whether a
 * long run holds its rate and when it stalled.
 *
 * --mode saga: each transaction is one SubmitSaga of K ordered steps on
 * the participant, followed by a wait until it is final (a Query the
 * leader holds until then: settle_wait(), settle_async_wait()); for a
 * fraction R the last step's action fails (a business failure), so the
 * saga compensates every step.
 *
 * --mode xa / xa-local: a PostgreSQL and a MariaDB branch per transaction,
 * with Settle as the TM or the bench as its own (bench_xa.c). The
 * conninfo strings come from the options or from $SETTLE_TEST_PG and
 * $SETTLE_TEST_MARIADB (scripts/xa-servers env) and are never printed.
 *
 * The participant (tcc and saga, bench_participant.c) is libsettle's
 * SDK on its own thread, with an LMDB barrier and a small business write
 * per call in a temporary directory (removed at exit).
 *
 * Exit status: 0 the run completed (errors are counted, not fatal), 1 it
 * could not start, not one transaction finished, or (xa modes) the
 * databases do not agree with the count of commits, 2 bad usage.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "settle_participant.h"

#define EXIT_USAGE 2
/* Threads of the blocking client; transactions in flight of the
 * asynchronous one. */
#define MAX_CONCURRENCY	      1024
#define MAX_ASYNC_CONCURRENCY 65536

/* The phases an asynchronous TCC run times (bench_async.c). */
static const char *const tcc_phase_names[BENCH_PHASES] = {
    [BENCH_PH_BEGIN] = "begin",
    [BENCH_PH_PREPARE] = "try",
    [BENCH_PH_COMMIT] = "commit",
};

static const char *const mode_names[] = {
    [BENCH_TCC] = "tcc",
    [BENCH_SAGA] = "saga",
    [BENCH_XA] = "xa",
    [BENCH_XA_LOCAL] = "xa-local",
};

uint64_t bench_mono_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

/* ---- Initiators --------------------------------------------------------- */

void bench_fail(struct bench_worker *w, const char *fmt, ...)
{
	va_list ap;

	w->errors++;
	if (w->first_error[0] != '\0')
		return;
	va_start(ap, fmt);
	vsnprintf(w->first_error, sizeof(w->first_error), fmt, ap);
	va_end(ap);
}

/* Count a transaction that ended at now in its --interval slice. */
static void slice_count(struct bench *b, uint64_t now, uint32_t lat)
{
	struct bench_slice *sl;
	uint_fast32_t m;
	size_t i;

	if (b->slices == NULL || now < b->start_us)
		return;
	i = (size_t)((now - b->start_us) / ((uint64_t)b->interval_s * 1000000));
	if (i >= b->nslices) /* ended after the run's last second */
		i = b->nslices - 1;
	sl = &b->slices[i];
	atomic_fetch_add(&sl->done, 1);
	m = atomic_load(&sl->max_us);
	while (lat > m && !atomic_compare_exchange_weak(&sl->max_us, &m, lat))
		;
}

void bench_record(struct bench_worker *w, uint64_t t0_us)
{
	uint64_t now = bench_mono_us();
	uint64_t us = now > t0_us ? now - t0_us : 0;
	uint32_t lat = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;

	slice_count(w->b, now, lat);
	if (w->nlat == w->caplat) {
		size_t cap = w->caplat ? 2 * w->caplat : 4096;
		uint32_t *n = realloc(w->lat_us, cap * sizeof(*n));
		if (n == NULL)
			return; /* the count stays right; one sample is lost */
		w->lat_us = n;
		w->caplat = cap;
	}
	w->lat_us[w->nlat++] = lat;
}

const char *bench_gid(const struct bench *b, char buf[33])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t r[16];
	size_t got = 0;

	if (!b->random_gids)
		return NULL;
	while (got < sizeof(r)) {
		ssize_t n = getrandom(r + got, sizeof(r) - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(r); i++) {
		buf[2 * i] = hex[r[i] >> 4];
		buf[2 * i + 1] = hex[r[i] & 15];
	}
	buf[32] = 0;
	return buf;
}

void bench_decls(const struct bench *b, const uint8_t *payload, size_t len,
		 struct settle_branch_decl *d, char (*resource)[8])
{
	for (unsigned k = 0; k < b->branches; k++) {
		snprintf(resource[k], sizeof(resource[k]), "r%u", k);
		d[k] = (struct settle_branch_decl){b->participant, resource[k],
						   payload, len};
	}
}

void bench_saga_steps(const struct bench *b, bool fail,
		      struct settle_saga_step *steps, char (*names)[8])
{
	static const char ok_payload[] = "bench-payload-01";
	static const char fail_payload[] = BENCH_FAIL "-payload";

	memset(steps, 0, b->branches * sizeof(*steps));
	for (unsigned k = 0; k < b->branches; k++) {
		const char *p =
		    fail && k + 1 == b->branches ? fail_payload : ok_payload;
		snprintf(names[k], sizeof(names[k]), "s%u", k);
		steps[k].name = names[k];
		steps[k].endpoint = b->participant;
		steps[k].action = p;
		steps[k].action_len = strlen(p);
		steps[k].compensate = p;
		steps[k].compensate_len = strlen(p);
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted samples, in ms. */
static double pct_ms(const uint32_t *s, size_t n, double p)
{
	size_t i;

	if (n == 0)
		return 0;
	i = (size_t)(p * (double)n);
	if (i >= n)
		i = n - 1;
	return s[i] / 1000.0;
}

/* The --interval slices up to the run's end (secs), as JSON or text. */
static void print_slices(const struct bench *b, double secs)
{
	size_t i, n = 0;

	while (n < b->nslices && (double)(n * b->interval_s) < secs)
		n++;
	secs = b->duration_s; /* the last slice holds the stragglers too */
	if (b->json)
		printf(",\"intervals\":[");
	else if (n > 0)
		printf("%8s %10s %10s\n", "from s", "tx/s", "max ms");
	for (i = 0; i < n; i++) {
		const struct bench_slice *sl = &b->slices[i];
		double from = (double)(i * b->interval_s);
		double len =
		    secs - from < b->interval_s ? secs - from : b->interval_s;
		double tps = len > 0 ? (double)atomic_load(&sl->done) / len : 0;
		double max = atomic_load(&sl->max_us) / 1000.0;

		if (b->json)
			printf("%s{\"from_s\":%.0f,\"tps\":%.1f,"
			       "\"max_ms\":%.3f}",
			       i ? "," : "", from, tps, max);
		else
			printf("%8.0f %10.1f %10.3f\n", from, tps, max);
	}
	if (b->json)
		printf("]");
}

static int usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage(const char *fmt, ...)
{
	va_list ap;

	fputs("settle-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(settle-bench --help for usage)\n", stderr);
	return EXIT_USAGE;
}

static const char help[] =
    "usage: settle-bench --cluster ENDPOINTS [--mode tcc|saga] [--branches "
    "K]\n"
    "                    [--concurrency C] [--duration SECONDS]\n"
    "                    [--rollback-ratio R] [--listen HOST:PORT] "
    "[--json]\n"
    "                    [--rate R] [--interval S]\n"
    "                    [--declare-branches | --register-branches]\n"
    "                    [--client async|sync] [--random-gids]\n"
    "                    [--tls-cert FILE --tls-key FILE --tls-ca FILE]\n"
    "                    [--insecure]\n"
    "Defaults: tcc, 2 branches, concurrency 8, 10 s, no rollbacks,\n"
    "participant on 127.0.0.1 with a free port.\n"
    "tcc: the Begin declares the K branches (one raft command); with\n"
    "--register-branches each is a REGISTER_BRANCH of its own (1 + K).\n"
    "saga: K ordered steps; --rollback-ratio R makes the last step of a\n"
    "fraction R fail, so those sagas are compensated.\n"
    "--rate R: open loop, R transactions/s due whatever the latency, each\n"
    "timed from when it was due; --concurrency bounds those in flight.\n"
    "--interval S: the rate and the slowest transaction per S seconds.\n"
    "--client async (default for tcc and saga): C transactions in flight\n"
    "on one thread and connection; sync: C threads, each with a blocking\n"
    "handle (the only way for --register-branches).\n"
    "--random-gids: the bench chooses each gid (32 random hex digits)\n"
    "instead of the leader.\n"
    "--tls-*: mutual TLS with these PEM files for the client and the\n"
    "participant (settled needs its own --tls-*; async client only).\n"
    "--insecure: plaintext, for a cluster run with settled --insecure\n"
    "(also $SETTLE_INSECURE=1); without it or --tls-* the bench refuses.\n"
    "       settle-bench [--cluster ENDPOINTS] --mode xa|xa-local\n"
    "                    [--xa-pg CONNINFO] [--xa-mariadb CONNINFO]\n"
    "                    [--xa-pg-rm NAME] [--xa-mariadb-rm NAME] "
    "[--xa-rows N]\n"
    "                    [--xa-leader-commits]\n"
    "                    [--concurrency C] [--duration SECONDS] [--json]\n"
    "xa: each transaction moves 1 from a PostgreSQL row to a MariaDB row in\n"
    "two XA branches with Settle as the TM (the cluster's settled has\n"
    "--xa-rm NAME=... for both; defaults pg and maria); xa-local: the same\n"
    "branches, the bench as its own TM (no cluster). Conninfo defaults:\n"
    "$SETTLE_TEST_PG, $SETTLE_TEST_MARIADB. --xa-rows N: the workers share\n"
    "N account rows (default one each: no lock waits). xa commits each\n"
    "branch on the worker's own session once the decision is durable\n"
    "(phase 2 by the initiator); --xa-leader-commits leaves phase 2 to the\n"
    "leader, so the worker's MariaDB session must end before its vote.\n";

static bool parse_uint(const char *s, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end || errno || v == 0 || v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"cluster", required_argument, NULL, 'c'},
	    {"mode", required_argument, NULL, 'm'},
	    {"branches", required_argument, NULL, 'b'},
	    {"concurrency", required_argument, NULL, 'n'},
	    {"duration", required_argument, NULL, 'd'},
	    {"rollback-ratio", required_argument, NULL, 'r'},
	    {"listen", required_argument, NULL, 'l'},
	    {"json", no_argument, NULL, 'j'},
	    {"declare-branches", no_argument, NULL, 'D'},
	    {"register-branches", no_argument, NULL, 'G'},
	    {"xa-pg", required_argument, NULL, 'P'},
	    {"xa-mariadb", required_argument, NULL, 'M'},
	    {"xa-pg-rm", required_argument, NULL, 'p'},
	    {"xa-mariadb-rm", required_argument, NULL, 'y'},
	    {"xa-rows", required_argument, NULL, 'R'},
	    {"xa-leader-commits", no_argument, NULL, 'L'},
	    {"rate", required_argument, NULL, 'e'},
	    {"interval", required_argument, NULL, 'i'},
	    {"client", required_argument, NULL, 'C'},
	    {"random-gids", no_argument, NULL, 'g'},
	    {"tls-cert", required_argument, NULL, 'T'},
	    {"tls-key", required_argument, NULL, 'K'},
	    {"tls-ca", required_argument, NULL, 'A'},
	    {"insecure", no_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bench b = {0};
	struct bench_participant pt = {0};
	struct bench_worker *ws;
	const char *listen = "127.0.0.1:0";
	uint64_t t0, committed = 0, aborted = 0, errors = 0, late = 0;
	uint64_t connects = 0, connect_us = 0, phase_us[BENCH_PHASES] = {0};
	unsigned k;
	bool xa, xa_ok = false, xa_checked = true;
	int client = -1;       /* --client: 1 async, 0 sync, -1 not given */
	bool insecure = false; /* --insecure */
	bool tcc_phases;
	unsigned nw;
	uint32_t *all;
	size_t nall = 0;
	double secs, tps;
	unsigned i;
	int ch;
	char *end;

	b.branches = 2;
	b.declare = true;
	b.concurrency = 8;
	b.duration_s = 10;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			b.cluster = optarg;
			break;
		case 'm':
			if (strcmp(optarg, "tcc") == 0)
				b.mode = BENCH_TCC;
			else if (strcmp(optarg, "saga") == 0)
				b.mode = BENCH_SAGA;
			else if (strcmp(optarg, "xa") == 0)
				b.mode = BENCH_XA;
			else if (strcmp(optarg, "xa-local") == 0)
				b.mode = BENCH_XA_LOCAL;
			else
				return usage("unsupported --mode '%s': tcc, "
					     "saga, xa or xa-local",
					     optarg);
			break;
		case 'P':
			b.xa_pg = optarg;
			break;
		case 'M':
			b.xa_mariadb = optarg;
			break;
		case 'p':
			b.xa_pg_rm = optarg;
			break;
		case 'y':
			b.xa_mariadb_rm = optarg;
			break;
		case 'L':
			b.xa_leader_commits = true;
			break;
		case 'R':
			if (!parse_uint(optarg, MAX_CONCURRENCY, &b.xa_rows))
				return usage("bad --xa-rows '%s': 1..1024",
					     optarg);
			break;
		case 'b':
			if (!parse_uint(optarg, BENCH_MAX_BRANCHES,
					&b.branches))
				return usage("bad --branches '%s': 1..64",
					     optarg);
			break;
		case 'n':
			if (!parse_uint(optarg, MAX_ASYNC_CONCURRENCY,
					&b.concurrency))
				return usage("bad --concurrency '%s': 1..65536",
					     optarg);
			break;
		case 'd':
			if (!parse_uint(optarg, 86400, &b.duration_s))
				return usage("bad --duration '%s': whole "
					     "seconds, 1..86400",
					     optarg);
			break;
		case 'r':
			errno = 0;
			b.rollback_ratio = strtod(optarg, &end);
			if (*optarg == '\0' || *end || errno ||
			    !(b.rollback_ratio >= 0 && b.rollback_ratio <= 1))
				return usage("bad --rollback-ratio '%s': 0..1",
					     optarg);
			break;
		case 'e':
			errno = 0;
			b.rate = strtod(optarg, &end);
			if (*optarg == '\0' || *end || errno ||
			    !(b.rate >= 1 && b.rate <= 1e6))
				return usage("bad --rate '%s': transactions "
					     "per second, 1..1000000",
					     optarg);
			break;
		case 'i':
			if (!parse_uint(optarg, 86400, &b.interval_s))
				return usage("bad --interval '%s': whole "
					     "seconds, 1..86400",
					     optarg);
			break;
		case 'l':
			listen = optarg;
			break;
		case 'C':
			if (strcmp(optarg, "async") == 0)
				client = 1;
			else if (strcmp(optarg, "sync") == 0)
				client = 0;
			else
				return usage("bad --client '%s': async or sync",
					     optarg);
			break;
		case 'j':
			b.json = true;
			break;
		case 'D':
		case 'G':
			b.declare = ch == 'D';
			break;
		case 'g':
			b.random_gids = true;
			break;
		case 'T':
			b.tls.cert = optarg;
			break;
		case 'K':
			b.tls.key = optarg;
			break;
		case 'A':
			b.tls.ca = optarg;
			break;
		case 'I':
			insecure = true;
			break;
		case 'h':
			fputs(help, stdout);
			return 0;
		case ':':
			return usage("option '%s' needs a value",
				     argv[optind - 1]);
		default:
			return usage("unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return usage("unexpected argument '%s'", argv[optind]);
	if (b.mode != BENCH_XA_LOCAL && (b.cluster == NULL || !*b.cluster))
		return usage("%s", "--cluster ENDPOINTS is required");
	xa = b.mode == BENCH_XA || b.mode == BENCH_XA_LOCAL;
	if (xa && b.rate > 0)
		return usage("%s", "--rate is for --mode tcc and saga");
	if (client == 1 && (xa || (b.mode == BENCH_TCC && !b.declare)))
		return usage("%s", "--client async runs tcc with declared "
				   "branches and saga");
	b.async = client != 0 && !xa && (b.mode == BENCH_SAGA || b.declare);
	if ((b.tls.cert != NULL) != (b.tls.key != NULL) ||
	    (b.tls.cert != NULL) != (b.tls.ca != NULL))
		return usage("%s", "TLS needs --tls-cert, --tls-key and "
				   "--tls-ca together");
	if (insecure && b.tls.cert != NULL)
		return usage("%s", "--insecure (plaintext) and --tls-*: choose "
				   "one");
	if (b.tls.cert == NULL && b.mode != BENCH_XA_LOCAL && !insecure) {
		const char *env = getenv("SETTLE_INSECURE");

		if (env == NULL || strcmp(env, "1") != 0)
			return usage("%s",
				     "no certificate: give --tls-cert, "
				     "--tls-key and --tls-ca, or --insecure "
				     "(or SETTLE_INSECURE=1) for a cluster in "
				     "plaintext");
	}
	if (insecure)
		fprintf(stderr, "settle-bench: --insecure: plaintext, no "
				"certificate (docs/SECURITY.md)\n");
	if (b.tls.cert != NULL && !b.async)
		return usage("%s", "--tls-* is for the asynchronous client "
				   "(tcc with declared branches, saga)");
	if (!b.async && b.concurrency > MAX_CONCURRENCY)
		return usage("--concurrency %u: at most %u threads (the "
			     "blocking client)",
			     b.concurrency, MAX_CONCURRENCY);
	if (b.interval_s > 0) {
		b.nslices = (b.duration_s + b.interval_s - 1) / b.interval_s;
		b.slices = calloc(b.nslices, sizeof(*b.slices));
		if (b.slices == NULL)
			return 1;
	}
	if (xa) {
		if (b.xa_pg == NULL)
			b.xa_pg = getenv("SETTLE_TEST_PG");
		if (b.xa_mariadb == NULL)
			b.xa_mariadb = getenv("SETTLE_TEST_MARIADB");
		if (b.xa_pg_rm == NULL)
			b.xa_pg_rm = "pg";
		if (b.xa_mariadb_rm == NULL)
			b.xa_mariadb_rm = "maria";
		b.branches = 2;
		if (bench_xa_setup(&b) != 0) {
			bench_xa_done(&b);
			return 1;
		}
	} else if (bench_participant_start(&b, &pt, listen) != 0) {
		bench_participant_stop(&pt);
		return 1;
	}
	/* The asynchronous client is one worker with every transaction. */
	nw = b.async ? 1 : b.concurrency;
	ws = calloc(nw, sizeof(*ws));
	if (ws == NULL) {
		if (xa)
			bench_xa_done(&b);
		else
			bench_participant_stop(&pt);
		return 1;
	}
	t0 = bench_mono_us();
	b.start_us = t0;
	b.end_ms = t0 / 1000 + (uint64_t)b.duration_s * 1000;
	for (i = 0; i < nw; i++) {
		ws[i].b = &b;
		ws[i].index = i;
		ws[i].seed = (unsigned)t0 ^ (i * 2654435761u);
	}
	if (b.async)
		bench_async_run(&ws[0]);
	for (i = 0; !b.async && i < nw; i++) {
		if (pthread_create(&ws[i].thread, NULL, bench_sync_worker,
				   &ws[i]) != 0) {
			fprintf(stderr,
				"settle-bench: pthread_create failed\n");
			nw = i;
			break;
		}
	}
	for (i = 0; !b.async && i < nw; i++)
		pthread_join(ws[i].thread, NULL);
	secs = (double)(bench_mono_us() - t0) / 1e6;

	for (i = 0; i < nw; i++) {
		committed += ws[i].committed;
		aborted += ws[i].aborted;
		errors += ws[i].errors;
		late += ws[i].late;
		nall += ws[i].nlat;
		connects += ws[i].connects;
		connect_us += ws[i].connect_us;
		for (k = 0; k < BENCH_PHASES; k++)
			phase_us[k] += ws[i].phase_us[k];
	}
	/* The asynchronous TCC run times its phases (bench_async.c). */
	tcc_phases = b.async && b.mode == BENCH_TCC && committed + aborted > 0;
	all = malloc((nall ? nall : 1) * sizeof(*all));
	nall = 0;
	for (i = 0; i < nw; i++) {
		if (all && ws[i].nlat) {
			memcpy(all + nall, ws[i].lat_us,
			       ws[i].nlat * sizeof(*all));
			nall += ws[i].nlat;
		}
		if (ws[i].first_error[0])
			fprintf(stderr,
				"settle-bench: thread %u: %" PRIu64
				" error(s), first: %s\n",
				i, ws[i].errors, ws[i].first_error);
	}
	if (all)
		qsort(all, nall, sizeof(*all), cmp_u32);
	tps = secs > 0 ? (double)(committed + aborted) / secs : 0;
	/* The XA modes check the databases: the bench's count of commits
	 * must be what the accounts moved, and nothing left prepared. */
	if (xa && bench_xa_verify(&b, committed, &xa_ok) != 0)
		xa_checked = false;
	if (b.json) {
		printf("{\"mode\":\"%s\",\"branches\":%u,\"concurrency\":%u,"
		       "\"duration_s\":%.3f,\"rollback_ratio\":%.3f,"
		       "\"committed\":%" PRIu64 ",\"aborted\":%" PRIu64
		       ",\"errors\":%" PRIu64 ",\"tps\":%.1f,\"p50_ms\":%.3f,"
		       "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
		       "\"participant_calls\":%" PRIu64 ",\"declared\":%s"
		       ",\"client\":\"%s\"",
		       mode_names[b.mode], b.branches, b.concurrency, secs,
		       b.rollback_ratio, committed, aborted, errors, tps,
		       all ? pct_ms(all, nall, 0.50) : 0,
		       all ? pct_ms(all, nall, 0.99) : 0,
		       all ? pct_ms(all, nall, 0.999) : 0,
		       all && nall ? all[nall - 1] / 1000.0 : 0,
		       (uint64_t)atomic_load(&b.handler_calls),
		       b.mode == BENCH_TCC && b.declare ? "true" : "false",
		       b.async ? "async" : "sync");
		if (xa)
			printf(",\"rows\":%u,\"mariadb_connects\":%" PRIu64
			       ",\"mariadb_connect_ms\":%.3f,"
			       "\"balances_ok\":%s",
			       b.xa_rows, connects,
			       connects ? connect_us / 1000.0 / (double)connects
					: 0,
			       !xa_checked ? "null"
			       : xa_ok	   ? "true"
					   : "false");
		/* Mean time per committed transaction in each phase. */
		for (k = 0; xa && k < BENCH_PHASES; k++)
			printf(",\"%s_ms\":%.3f", bench_phase_names[k],
			       committed
				   ? phase_us[k] / 1000.0 / (double)committed
				   : 0);
		for (k = 0; tcc_phases && k < BENCH_PHASES; k++)
			if (tcc_phase_names[k] != NULL)
				printf(",\"%s_ms\":%.3f", tcc_phase_names[k],
				       phase_us[k] / 1000.0 /
					   (double)(committed + aborted));
		if (b.rate > 0)
			printf(",\"rate\":%.1f,\"late\":%" PRIu64, b.rate,
			       late);
		if (b.slices != NULL)
			print_slices(&b, secs);
		printf("}\n");
	} else {
		printf("%s, %u %s%s, concurrency %u (%s client), %.1f s\n",
		       mode_names[b.mode], b.branches,
		       b.mode == BENCH_SAGA ? "steps" : "branches",
		       b.mode != BENCH_TCC ? ""
		       : b.declare	   ? " (declared at begin)"
					   : " (registered)",
		       b.concurrency, b.async ? "async" : "blocking", secs);
		if (b.rate > 0)
			printf("open loop at %.1f tx/s, latency from each "
			       "one's due time; %" PRIu64
			       " started over 1 ms late\n",
			       b.rate, late);
		printf("%s %" PRIu64 ", %s %" PRIu64 ", errors %" PRIu64 "\n",
		       b.mode == BENCH_SAGA ? "succeeded" : "committed",
		       committed,
		       b.mode == BENCH_SAGA ? "compensated" : "rolled back",
		       aborted, errors);
		if (xa) {
			printf("account rows %u", b.xa_rows);
			if (connects)
				printf(", MariaDB connections %" PRIu64
				       " (mean %.3f ms each)",
				       connects,
				       connect_us / 1000.0 / (double)connects);
			printf(", databases %s\n",
			       !xa_checked ? "not checked"
			       : xa_ok	   ? "agree with the count"
					   : "DISAGREE with the count");
			printf("mean ms per commit:");
			for (k = 0; k < BENCH_PHASES; k++)
				printf(" %s %.3f", bench_phase_names[k],
				       committed ? phase_us[k] / 1000.0 /
						       (double)committed
						 : 0);
			printf("\n");
		}
		if (tcc_phases) {
			printf("mean ms per transaction:");
			for (k = 0; k < BENCH_PHASES; k++)
				if (tcc_phase_names[k] != NULL)
					printf(
					    " %s %.3f", tcc_phase_names[k],
					    phase_us[k] / 1000.0 /
						(double)(committed + aborted));
			printf("\n");
		}
		printf("throughput %.1f tx/s\n", tps);
		printf("latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
		       all ? pct_ms(all, nall, 0.50) : 0,
		       all ? pct_ms(all, nall, 0.99) : 0,
		       all ? pct_ms(all, nall, 0.999) : 0,
		       all && nall ? all[nall - 1] / 1000.0 : 0);
		if (b.slices != NULL)
			print_slices(&b, secs);
	}
	free(all);
	free(b.slices);
	for (i = 0; i < nw; i++)
		free(ws[i].lat_us);
	free(ws);
	if (xa)
		bench_xa_done(&b);
	else
		bench_participant_stop(&pt);
	if (committed + aborted == 0) {
		fprintf(stderr, "settle-bench: no transaction finished\n");
		return 1;
	}
	return xa && !(xa_checked && xa_ok) ? 1 : 0;
}

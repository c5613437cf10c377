/*
 * settle-bank — a demo TCC and Saga participant holding bank accounts in
 * its own LMDB env, built on libsettle's participant SDK and barrier.
 *
 *   settle-bank serve --data DIR --listen HOST:PORT [--accounts a=1,b=2]
 *                     [--confirm-delay-ms N] [--retry-first N] [--fail-confirm]
 *                     [--fail-cancel] [--fail-action] [--fail-compensate]
 *                     [--barrier-retention DURATION]
 *   settle-bank balances --data DIR [--json]
 *
 * Logs carry gids and branch ids only: account names and amounts are
 * personal data.
 */
#include "error.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "settle_participant.h"

#include "bank_ledger.h"
#include "log.h"
#include "tls_env.h"

/* A Confirm or Cancel held back by --confirm-delay-ms. */
struct delayed {
	uv_timer_t timer;
	settle_call *call;
	struct delayed *next;
	struct delayed **prev;
};

struct bank_server {
	struct bank bank;
	uint32_t confirm_delay_ms;
	/* Confirm/Cancel/Action/Compensate calls still to answer RETRY */
	int retry_first;
	bool fail_confirm;
	bool fail_cancel;
	bool fail_action;
	bool fail_compensate;
	settle_participant *part;
	struct delayed *delayed; /* waiting for their timer */
	uv_signal_t sigint;
	uv_signal_t sigterm;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: settle-bank serve --data DIR --listen HOST:PORT "
		   "[--accounts NAME=AMOUNT,...]\n"
		   "                         [--confirm-delay-ms N] "
		   "[--retry-first N] [--fail-confirm]\n"
		   "                         [--fail-cancel] [--fail-action] "
		   "[--fail-compensate]\n"
		   "                         [--barrier-retention DURATION] "
		   "[--insecure]\n"
		   "       settle-bank balances --data DIR [--json]\n"
		   "  DURATION: a number with a unit ms, s, m, h or d "
		   "(default 7d)\n"
		   "  TLS from $SETTLE_TLS_CERT, _KEY, _CA; --insecure (or "
		   "SETTLE_INSECURE=1): plaintext\n");
}

static const char *op_name(int op)
{
	switch (op) {
	case SETTLE_OP_TRY:
		return "try";
	case SETTLE_OP_CONFIRM:
		return "confirm";
	case SETTLE_OP_CANCEL:
		return "cancel";
	case SETTLE_OP_ACTION:
		return "action";
	case SETTLE_OP_COMPENSATE:
		return "compensate";
	}
	return "?";
}

static int on_branch(void *data, const struct settle_branch *b, MDB_txn *txn,
		     char *err, size_t errlen)
{
	struct bank_server *s = data;
	char account[BANK_ACCOUNT_MAX + 1];
	int64_t amount;
	int rv;

	if (b->op != SETTLE_OP_TRY) {
		/* Fault knobs for the tests: a flaky or broken phase two or
		 * saga step (the slow one is on_call_delay). */
		if (s->retry_first > 0) {
			s->retry_first--;
			snprintf(err, errlen, "injected retry");
			return SETTLE_ERETRY;
		}
		if ((s->fail_confirm && b->op == SETTLE_OP_CONFIRM) ||
		    (s->fail_cancel && b->op == SETTLE_OP_CANCEL) ||
		    (s->fail_action && b->op == SETTLE_OP_ACTION) ||
		    (s->fail_compensate && b->op == SETTLE_OP_COMPENSATE)) {
			snprintf(err, errlen, "injected failure");
			return SETTLE_EFAILURE;
		}
	}
	if (bank_payload_parse(b->payload, b->len, account, sizeof(account),
			       &amount) != 0) {
		snprintf(err, errlen, "bad payload");
		return SETTLE_EFAILURE;
	}
	rv = bank_apply(&s->bank, txn, b->op, account, amount, err, errlen);
	settle_log(SETTLE_LOG_INFO, "bank", "%s %s/%u attempt %u: %s",
		   op_name(b->op), b->gid, b->branch_id, b->attempt,
		   rv == 0 ? "ok" : settle_errname(rv));
	return rv;
}

static void delayed_closed(uv_handle_t *h)
{
	free(h);
}

static void delayed_unlink(struct delayed *d)
{
	*d->prev = d->next;
	if (d->next != NULL)
		d->next->prev = d->prev;
	uv_close((uv_handle_t *)&d->timer, delayed_closed);
}

static void on_delay_done(uv_timer_t *t)
{
	struct delayed *d = (struct delayed *)t;
	settle_call *call = d->call;

	delayed_unlink(d);
	/* Only now the barrier row and the effect are written, in one txn:
	 * a coordinator that died meanwhile sends the call again, and
	 * whichever copy commits first makes the other a barrier skip. */
	settle_call_run(call, NULL, NULL);
}

/*
 * --confirm-delay-ms: a slow phase two or saga step, as a stalled database
 * would make it, answered from a timer so that the loop keeps serving
 * meanwhile (other calls, a repeat of this one). Try is never delayed.
 */
static void on_call_delay(void *data, settle_call *call)
{
	struct bank_server *s = data;
	struct delayed *d;

	if (settle_call_branch(call)->op == SETTLE_OP_TRY ||
	    s->confirm_delay_ms == 0) {
		settle_call_run(call, NULL, NULL);
		return;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		settle_call_fail(call, SETTLE_ERETRY, "out of memory");
		return;
	}
	d->call = call;
	uv_timer_init(settle_participant_loop(s->part), &d->timer);
	uv_timer_start(&d->timer, on_delay_done, s->confirm_delay_ms, 0);
	d->next = s->delayed;
	d->prev = &s->delayed;
	if (d->next != NULL)
		d->next->prev = &d->next;
	s->delayed = d;
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct bank_server *s = sig->data;
	settle_log(SETTLE_LOG_INFO, "bank", "signal %d: stopping", signum);
	/* Delayed calls end now, unapplied: the coordinator retries them. */
	while (s->delayed != NULL) {
		struct delayed *d = s->delayed;
		settle_call *call = d->call;
		delayed_unlink(d);
		settle_call_fail(call, SETTLE_ERETRY, "participant stopping");
	}
	settle_participant_close(s->part);
	s->part = NULL;
	uv_close((uv_handle_t *)&s->sigint, NULL);
	uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static int parse_u32(const char *flag, const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX ||
	    s[0] == '-') {
		fprintf(stderr, "settle-bank: %s wants a number, not '%s'\n",
			flag, s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* "90s", "15m", "7d", "250ms", "24h": a duration in ms, > 0. */
static int parse_duration(const char *flag, const char *s, uint64_t *out)
{
	static const struct {
		const char *unit;
		uint64_t ms;
	} units[] = {{"ms", 1},
		     {"s", 1000},
		     {"m", 60000},
		     {"h", 3600000ull},
		     {"d", 86400000ull}};
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == 0 && end != s && s[0] >= '0' && s[0] <= '9' && v > 0) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			if (strcmp(end, units[i].unit) == 0 &&
			    v <= UINT64_MAX / 2 / units[i].ms) {
				*out = v * units[i].ms;
				return 0;
			}
		}
	}
	fprintf(stderr,
		"settle-bank: %s wants a duration like 90s, 12h or 7d, not "
		"'%s'\n",
		flag, s);
	return -1;
}

static int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"data", required_argument, NULL, 'd'},
	    {"listen", required_argument, NULL, 'l'},
	    {"accounts", required_argument, NULL, 'a'},
	    {"confirm-delay-ms", required_argument, NULL, 'D'},
	    {"retry-first", required_argument, NULL, 'R'},
	    {"fail-confirm", no_argument, NULL, 'F'},
	    {"fail-cancel", no_argument, NULL, 'C'},
	    {"fail-action", no_argument, NULL, 'A'},
	    {"fail-compensate", no_argument, NULL, 'P'},
	    {"barrier-retention", required_argument, NULL, 'B'},
	    {"insecure", no_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bank_server s = {0};
	uint64_t retention = 0;
	const char *dir = NULL, *listen = NULL, *accounts = NULL;
	uint32_t retry_first = 0;
	bool insecure = false;
	char err[256];
	int c, rv;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'I':
			insecure = true;
			break;
		case 'd':
			dir = optarg;
			break;
		case 'l':
			listen = optarg;
			break;
		case 'a':
			accounts = optarg;
			break;
		case 'D':
			if (parse_u32("--confirm-delay-ms", optarg,
				      &s.confirm_delay_ms) != 0)
				return 2;
			break;
		case 'R':
			if (parse_u32("--retry-first", optarg, &retry_first) !=
				0 ||
			    retry_first > INT32_MAX)
				return 2;
			break;
		case 'F':
			s.fail_confirm = true;
			break;
		case 'C':
			s.fail_cancel = true;
			break;
		case 'A':
			s.fail_action = true;
			break;
		case 'P':
			s.fail_compensate = true;
			break;
		case 'B':
			if (parse_duration("--barrier-retention", optarg,
					   &retention) != 0)
				return 2;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (dir == NULL || listen == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	s.retry_first = (int)retry_first;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "settle-bank: mkdir %s: %s\n", dir,
			strerror(errno));
		return 1;
	}
	if (bank_open(&s.bank, dir, 0, err, sizeof(err)) != 0) {
		fprintf(stderr, "settle-bank: %s\n", err);
		return 1;
	}
	if (accounts != NULL &&
	    bank_seed(&s.bank, accounts, err, sizeof(err)) != 0) {
		fprintf(stderr, "settle-bank: %s\n", err);
		rv = 1;
		goto out_after_bank;
	}

	struct settle_participant_config cfg = {
	    .listen = listen,
	    .env = s.bank.env,
	    .on_try = on_branch,
	    .on_confirm = on_branch,
	    .on_cancel = on_branch,
	    .on_action = on_branch,
	    .on_compensate = on_branch,
	    .data = &s,
	    .barrier_retention_ms = retention,
	    .on_call_async = on_call_delay,
	};
	uv_loop_t *loop = uv_default_loop();
	rv = settle_participant_init(&cfg, &s.part);
	if (rv != 0) {
		fprintf(stderr, "settle-bank: %s\n", settle_strerror(rv));
		rv = 1;
		goto out_after_bank;
	}
	struct settle_tls tls;
	bool partial = false, have_tls = false;

	if (!insecure)
		have_tls = example_tls_env(&tls, &partial);
	if (!have_tls && !partial &&
	    !example_plaintext_ok("settle-bank", insecure)) {
		settle_participant_close(s.part);
		rv = 2;
		goto out_after_bank;
	}
	if (have_tls && settle_participant_set_tls(s.part, &tls) != 0) {
		fprintf(stderr, "settle-bank: TLS: %s\n",
			settle_participant_errmsg(s.part));
		settle_participant_close(s.part);
		rv = 1;
		goto out_after_bank;
	}
	const char *coords[16];
	char coord_buf[1024];
	size_t n_coords =
	    example_tls_coordinators(coords, 16, coord_buf, sizeof coord_buf);

	if (n_coords > 0 && settle_participant_set_coordinators(
				s.part, coords, n_coords) != 0) {
		fprintf(stderr,
			"settle-bank: SETTLE_TLS_COORDINATORS needs TLS and "
			"names of the nodes' certificates: NAME or cn:NAME "
			"(1..64 bytes), fp:SHA256HEX or san:NAME\n");
		settle_participant_close(s.part);
		rv = 2;
		goto out_after_bank;
	}
	if (partial) {
		fprintf(stderr, "settle-bank: TLS needs SETTLE_TLS_CERT, "
				"SETTLE_TLS_KEY and SETTLE_TLS_CA together\n");
		settle_participant_close(s.part);
		rv = 2;
		goto out_after_bank;
	}
	rv = settle_participant_start(s.part, loop);
	if (rv != 0) {
		fprintf(stderr, "settle-bank: listen %s: %s\n", listen,
			settle_participant_errmsg(s.part));
		settle_participant_close(s.part);
		uv_run(loop, UV_RUN_DEFAULT);
		rv = 1;
		goto out_after_bank;
	}
	uv_signal_init(loop, &s.sigint);
	uv_signal_init(loop, &s.sigterm);
	s.sigint.data = &s;
	s.sigterm.data = &s;
	uv_signal_start(&s.sigint, on_signal, SIGINT);
	uv_signal_start(&s.sigterm, on_signal, SIGTERM);

	/* Tests wait for this line: print the real port (--listen :0). */
	char host[256];
	const char *colon = strrchr(listen, ':');
	snprintf(host, sizeof(host), "%.*s", (int)(colon - listen), listen);
	fprintf(stderr, "settle-bank: listening on %s:%d\n", host,
		settle_participant_port(s.part));
	fflush(stderr);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	rv = 0;

out_after_bank:
	bank_close(&s.bank);
	return rv;
}

struct totals {
	bool json;
	bool first;
	struct bank_account sum;
};

static int print_account(void *data, const struct bank_account *a)
{
	struct totals *t = data;
	if (t->json) {
		/* Names are [A-Za-z0-9_.-]: nothing to escape. */
		printf("%s{\"name\":\"%s\",\"balance\":%" PRId64
		       ",\"frozen\":%" PRId64 ",\"incoming\":%" PRId64 "}",
		       t->first ? "" : ",", a->name, a->balance, a->frozen,
		       a->incoming);
	} else {
		printf("%-20s %14" PRId64 " %14" PRId64 " %14" PRId64 "\n",
		       a->name, a->balance, a->frozen, a->incoming);
	}
	t->first = false;
	t->sum.balance += a->balance;
	t->sum.frozen += a->frozen;
	t->sum.incoming += a->incoming;
	return 0;
}

static int cmd_balances(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"data", required_argument, NULL, 'd'},
	    {"json", no_argument, NULL, 'j'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct totals t = {.first = true};
	const char *dir = NULL;
	struct bank bank;
	MDB_txn *txn;
	char err[256];
	int c, rv;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			dir = optarg;
			break;
		case 'j':
			t.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (dir == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if (bank_open(&bank, dir, 1, err, sizeof(err)) != 0) {
		fprintf(stderr, "settle-bank: %s\n", err);
		return 1;
	}
	rv = mdb_txn_begin(bank.env, NULL, MDB_RDONLY, &txn);
	if (rv != 0) {
		fprintf(stderr, "settle-bank: %s\n", mdb_strerror(rv));
		bank_close(&bank);
		return 1;
	}
	if (t.json)
		printf("{\"accounts\":[");
	else
		printf("%-20s %14s %14s %14s\n", "ACCOUNT", "BALANCE", "FROZEN",
		       "INCOMING");
	rv = bank_each(&bank, txn, print_account, &t);
	if (t.json)
		printf("],\"total\":{\"balance\":%" PRId64
		       ",\"frozen\":%" PRId64 ",\"incoming\":%" PRId64 "}}\n",
		       t.sum.balance, t.sum.frozen, t.sum.incoming);
	else
		printf("%-20s %14" PRId64 " %14" PRId64 " %14" PRId64 "\n",
		       "TOTAL", t.sum.balance, t.sum.frozen, t.sum.incoming);
	mdb_txn_abort(txn);
	bank_close(&bank);
	if (rv != 0) {
		fprintf(stderr, "settle-bank: reading accounts: %s\n",
			settle_strerror(rv));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	settle_log_init("settle-bank");
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(argv[1], "balances") == 0)
		return cmd_balances(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "settle-bank: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}

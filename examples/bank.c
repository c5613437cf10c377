/*
 * settle-bank — a demo TCC participant holding bank accounts in its own
 * LMDB env, built on libsettle's participant SDK and barrier.
 *
 *   settle-bank serve --data DIR --listen HOST:PORT [--accounts a=1,b=2]
 *                     [--confirm-delay-ms N] [--retry-first N] [--fail-confirm]
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
#include <time.h>

#include "settle_participant.h"

#include "bank_ledger.h"
#include "log.h"

struct bank_server {
	struct bank bank;
	uint32_t confirm_delay_ms;
	int retry_first; /* Confirm/Cancel calls still to answer RETRY */
	bool fail_confirm;
	settle_participant *part;
	uv_signal_t sigint;
	uv_signal_t sigterm;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: settle-bank serve --data DIR --listen HOST:PORT "
		   "[--accounts NAME=AMOUNT,...]\n"
		   "                         [--confirm-delay-ms N] "
		   "[--retry-first N] [--fail-confirm]\n"
		   "       settle-bank balances --data DIR [--json]\n");
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int on_branch(void *data, const struct settle_branch *b, MDB_txn *txn,
		     char *err, size_t errlen)
{
	struct bank_server *s = data;
	char account[BANK_ACCOUNT_MAX + 1];
	int64_t amount;
	int rv;

	if (b->op != SETTLE_OP_TRY) {
		/* Fault knobs for the tests: a slow, flaky or broken phase
		 * two. The delay blocks the whole participant, like a
		 * stalled database would. */
		if (s->confirm_delay_ms > 0)
			sleep_ms(s->confirm_delay_ms);
		if (s->retry_first > 0) {
			s->retry_first--;
			snprintf(err, errlen, "injected retry");
			return SETTLE_ERETRY;
		}
		if (s->fail_confirm && b->op == SETTLE_OP_CONFIRM) {
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
		   b->op == SETTLE_OP_TRY	? "try"
		   : b->op == SETTLE_OP_CONFIRM ? "confirm"
						: "cancel",
		   b->gid, b->branch_id, b->attempt,
		   rv == 0 ? "ok" : settle_errname(rv));
	return rv;
}

static void on_signal(uv_signal_t *sig, int signum)
{
	struct bank_server *s = sig->data;
	settle_log(SETTLE_LOG_INFO, "bank", "signal %d: stopping", signum);
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

static int cmd_serve(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"data", required_argument, NULL, 'd'},
	    {"listen", required_argument, NULL, 'l'},
	    {"accounts", required_argument, NULL, 'a'},
	    {"confirm-delay-ms", required_argument, NULL, 'D'},
	    {"retry-first", required_argument, NULL, 'R'},
	    {"fail-confirm", no_argument, NULL, 'F'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct bank_server s = {0};
	const char *dir = NULL, *listen = NULL, *accounts = NULL;
	uint32_t retry_first = 0;
	char err[256];
	int c, rv;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
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
	    .data = &s,
	};
	uv_loop_t *loop = uv_default_loop();
	rv = settle_participant_init(&cfg, &s.part);
	if (rv != 0) {
		fprintf(stderr, "settle-bank: %s\n", settle_strerror(rv));
		rv = 1;
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

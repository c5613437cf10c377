/*
 * settle-transfer — a demo initiator moving money between two settle-bank
 * participants through a Settle cluster.
 *
 * TCC (the default): Begin; RegisterBranch for each side; TRY on each
 * participant; then Commit, or Rollback when a Try failed or --abort was
 * given. Commit and Rollback wait for phase two (--wait-ms, 10 s by
 * default; 0 returns as soon as the decision is durable).
 *
 * Saga (--saga): one SubmitSaga of two steps, a debit at --from and a
 * credit at --to (--credit-first swaps them, --dag runs them at once),
 * then settle_wait() for the outcome (--wait-ms; 0: do not wait).
 *
 * Exit codes: 0 the intended outcome was decided (committed, or rolled
 * back with --abort; a saga succeeded, or was submitted with --wait-ms
 * 0); 1 an error (cluster or participant unreachable, unexpected state, a
 * stuck saga, a wait that ran out); 2 usage; 3 a business failure undone:
 * a Try failed (e.g. insufficient funds) and the transfer was rolled
 * back, or a saga step failed and the saga was compensated.
 */
#include "error.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settle.h"

#include "bank_ledger.h"
#include "log.h"
#include "tls_env.h"

#define RESOURCE "accounts"
/* The coordinator's own default wait; it caps any wait at 60 s. */
#define WAIT_DEFAULT_MS 10000

struct side {
	char endpoint[256];
	char account[BANK_ACCOUNT_MAX + 1];
	char payload[128];
	uint32_t branch_id;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: settle-transfer --cluster HOST:PORT[,...] "
		   "--from EP:ACCOUNT --to EP:ACCOUNT --amount N\n"
		   "                       [--abort] [--wait-ms N] "
		   "[--timeout-ms N]\n"
		   "       settle-transfer --saga [--credit-first | --dag] "
		   "--cluster ... --from ... --to ... --amount N\n"
		   "                       [--wait-ms N] [--timeout-ms N]\n"
		   "  --insecure: plaintext, no certificate (else "
		   "$SETTLE_TLS_CERT, _KEY, _CA\n"
		   "              are required, or SETTLE_INSECURE=1)\n"
		   "  --wait-ms: how long Commit/Rollback wait for phase two, "
		   "or how long to wait\n"
		   "             for a saga's outcome (default 10000; 0: not "
		   "at all)\n"
		   "  --saga: one saga of two steps, debit at --from then "
		   "credit at --to;\n"
		   "          --credit-first: credit, then debit; --dag: both "
		   "at once\n"
		   "  EP is the participant's HOST:PORT, e.g. "
		   "127.0.0.1:7101:alice\n");
}

/* "host:port:account": the account is after the last colon. */
static int parse_side(const char *flag, const char *s, struct side *out)
{
	const char *colon = strrchr(s, ':');
	if (colon == NULL || colon == s ||
	    (size_t)(colon - s) >= sizeof(out->endpoint) ||
	    !bank_account_name_ok(colon + 1, strlen(colon + 1))) {
		fprintf(stderr,
			"settle-transfer: %s wants HOST:PORT:ACCOUNT, not "
			"'%s'\n",
			flag, s);
		return -1;
	}
	snprintf(out->endpoint, sizeof(out->endpoint), "%.*s", (int)(colon - s),
		 s);
	snprintf(out->account, sizeof(out->account), "%s", colon + 1);
	return 0;
}

static int parse_u32(const char *flag, const char *s, uint32_t *out)
{
	char *end;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX ||
	    s[0] == '-') {
		fprintf(stderr,
			"settle-transfer: %s wants a number, not '%s'\n", flag,
			s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

/* TRY on the participant. 0, or the error (text in the client). */
static int call_try(settle_client *c, const char *gid, const struct side *s,
		    uint64_t deadline_ms)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	req.gid = (char *)gid;
	req.branch_id = s->branch_id;
	req.resource = RESOURCE;
	req.payload.data = (uint8_t *)s->payload;
	req.payload.len = strlen(s->payload);
	req.attempt = 1;
	req.deadline_ms = deadline_ms;
	return settle_client_call_at(
	    c, s->endpoint, SETTLE__V1__METHOD__TRY, &req.base,
	    &settle__v1__branch_response__descriptor, NULL);
}

enum saga_order { DEBIT_FIRST, CREDIT_FIRST, CONCURRENT };

/*
 * The transfer as one saga. Each step's compensation payload is its
 * action's: settle-bank's Compensate applies the opposite amount
 * (examples/README.md). Step names say what a step does, never whose
 * account: names reach the coordinator's logs.
 */
static int run_saga(settle_client *c, const struct side *from,
		    const struct side *to, enum saga_order order,
		    uint32_t wait_ms, uint32_t timeout_ms)
{
	struct settle_saga_opts o = {.timeout_ms = timeout_ms,
				     .recovery = SETTLE_SAGA_BACKWARD,
				     .dag = order == CONCURRENT};
	struct settle_saga_step debit = {
	    .name = "debit",
	    .endpoint = from->endpoint,
	    .action = from->payload,
	    .action_len = strlen(from->payload),
	    .compensate = from->payload,
	    .compensate_len = strlen(from->payload),
	};
	struct settle_saga_step credit = {
	    .name = "credit",
	    .endpoint = to->endpoint,
	    .action = to->payload,
	    .action_len = strlen(to->payload),
	    .compensate = to->payload,
	    .compensate_len = strlen(to->payload),
	};
	struct settle_saga_step steps[2];
	char gid[SETTLE_GID_BUFSIZE];
	Settle__V1__TxInfo *tx = NULL;
	int state = 0, rv;
	bool finished = false;

	steps[0] = order == CREDIT_FIRST ? credit : debit;
	steps[1] = order == CREDIT_FIRST ? debit : credit;
	rv = settle_submit_saga(c, NULL, &o, steps, 2, gid, sizeof(gid));
	if (rv != 0) {
		fprintf(stderr, "settle-transfer: %s\n",
			settle_client_errmsg(c));
		return 1;
	}
	printf("gid: %s\n", gid);
	fflush(stdout);
	rv = settle_wait(c, gid, wait_ms, &state, &finished);
	if (rv != 0 && rv != SETTLE_ETIMEOUT && rv != SETTLE_ESTATE) {
		fprintf(stderr, "settle-transfer: %s\n",
			settle_client_errmsg(c));
		return 1;
	}
	printf("state: %s\nfinished: %s\n", settle_tx_state_name(state),
	       finished ? "yes" : "no");
	if (rv == SETTLE_ESTATE || (rv == SETTLE_ETIMEOUT && wait_ms > 0)) {
		/* Stuck, or still running: say why, and where to look. */
		fprintf(stderr, "settle-transfer: %s\n",
			settle_client_errmsg(c));
		return 1;
	}
	if (rv == SETTLE_ETIMEOUT)
		return 0; /* --wait-ms 0: submitted, not waited for */
	if (state == SETTLE__V1__TX_STATE__SAGA_SUCCEEDED)
		return 0;
	if (state != SETTLE__V1__TX_STATE__SAGA_COMPENSATED)
		return 1;
	/* Which step failed and why: the coordinator kept the reason. */
	if (settle_query(c, gid, false, &tx) == 0) {
		fprintf(stderr, "settle-transfer: saga compensated: %s\n",
			tx->reason);
		settle_tx_info_free(tx);
	}
	return 3;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"cluster", required_argument, NULL, 'c'},
	    {"from", required_argument, NULL, 'f'},
	    {"to", required_argument, NULL, 't'},
	    {"amount", required_argument, NULL, 'a'},
	    {"abort", no_argument, NULL, 'A'},
	    {"wait-ms", required_argument, NULL, 'w'},
	    {"timeout-ms", required_argument, NULL, 'T'},
	    {"saga", no_argument, NULL, 'S'},
	    {"credit-first", no_argument, NULL, 'C'},
	    {"dag", no_argument, NULL, 'D'},
	    {"insecure", no_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct side from = {0}, to = {0};
	const char *cluster = NULL;
	uint32_t amount = 0, wait_ms = WAIT_DEFAULT_MS, timeout_ms = 0;
	bool abort_it = false, have_from = false, have_to = false;
	bool saga = false, credit_first = false, dag = false, insecure = false;
	char gid[SETTLE_GID_BUFSIZE];
	char reason[300] = "";
	settle_client *c;
	int state = 0;
	bool finished = false;
	int c_opt, rv;

	settle_log_init("settle-transfer");
	while ((c_opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c_opt) {
		case 'c':
			cluster = optarg;
			break;
		case 'I':
			insecure = true;
			break;
		case 'f':
			if (parse_side("--from", optarg, &from) != 0)
				return 2;
			have_from = true;
			break;
		case 't':
			if (parse_side("--to", optarg, &to) != 0)
				return 2;
			have_to = true;
			break;
		case 'a':
			if (parse_u32("--amount", optarg, &amount) != 0)
				return 2;
			break;
		case 'A':
			abort_it = true;
			break;
		case 'w':
			if (parse_u32("--wait-ms", optarg, &wait_ms) != 0)
				return 2;
			break;
		case 'T':
			if (parse_u32("--timeout-ms", optarg, &timeout_ms) != 0)
				return 2;
			break;
		case 'S':
			saga = true;
			break;
		case 'C':
			credit_first = true;
			break;
		case 'D':
			dag = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (cluster == NULL || !have_from || !have_to || amount == 0 ||
	    optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((credit_first || dag) && !saga) {
		fprintf(stderr, "settle-transfer: --credit-first and --dag "
				"need --saga\n");
		return 2;
	}
	if (saga && (abort_it || (credit_first && dag))) {
		fprintf(stderr, "settle-transfer: --saga takes neither --abort "
				"nor both --credit-first and --dag\n");
		return 2;
	}
	bank_payload_format(from.payload, sizeof(from.payload), from.account,
			    -(int64_t)amount);
	bank_payload_format(to.payload, sizeof(to.payload), to.account,
			    (int64_t)amount);

	rv = settle_client_open(cluster, NULL, &c);
	if (rv != 0) {
		fprintf(stderr, "settle-transfer: --cluster: %s\n",
			settle_strerror(rv));
		return 2;
	}
	if (example_client_tls(c, "settle-transfer", insecure) != 0) {
		settle_client_close(c);
		return 2;
	}
	if (saga) {
		rv = run_saga(c, &from, &to,
			      dag	     ? CONCURRENT
			      : credit_first ? CREDIT_FIRST
					     : DEBIT_FIRST,
			      wait_ms, timeout_ms);
		settle_client_close(c);
		return rv;
	}
	uint64_t deadline = timeout_ms > 0 ? settle_now_ms() + timeout_ms : 0;
	rv = settle_begin(c, NULL, timeout_ms, gid, sizeof(gid));
	if (rv != 0)
		goto fail;
	printf("gid: %s\n", gid);
	fflush(stdout);
	rv = settle_register_branch(c, gid, from.endpoint, RESOURCE,
				    from.payload, strlen(from.payload),
				    &from.branch_id);
	if (rv == 0)
		rv = settle_register_branch(c, gid, to.endpoint, RESOURCE,
					    to.payload, strlen(to.payload),
					    &to.branch_id);
	if (rv != 0) {
		/* The coordinator rolls it back at its deadline anyway;
		 * saying so now frees the registered branches sooner. */
		fprintf(stderr, "settle-transfer: %s\n",
			settle_client_errmsg(c));
		settle_rollback(c, gid, "register failed", 0, NULL, NULL);
		goto fail_quiet;
	}

	bool try_failed = false;
	if (!abort_it) {
		const struct side *sides[2] = {&from, &to};
		for (int i = 0; i < 2 && !try_failed; i++) {
			rv = call_try(c, gid, sides[i], deadline);
			if (rv != 0) {
				try_failed = true;
				snprintf(reason, sizeof(reason),
					 "try branch %u failed: %s",
					 sides[i]->branch_id,
					 settle_client_errmsg(c));
				fprintf(stderr, "settle-transfer: %s\n",
					reason);
			}
		}
	}

	if (abort_it || try_failed) {
		rv = settle_rollback(c, gid, abort_it ? "aborted" : reason,
				     wait_ms, &state, &finished);
		if (rv != 0)
			goto fail;
	} else {
		rv = settle_commit(c, gid, wait_ms, &state, &finished);
		if (rv != 0)
			goto fail;
	}
	printf("state: %s\nfinished: %s\n", settle_tx_state_name(state),
	       finished ? "yes" : "no");
	settle_client_close(c);
	if (try_failed)
		return 3;
	bool want_commit = !abort_it;
	if (want_commit ? (state == SETTLE__V1__TX_STATE__COMMITTING ||
			   state == SETTLE__V1__TX_STATE__COMMITTED)
			: (state == SETTLE__V1__TX_STATE__ROLLING_BACK ||
			   state == SETTLE__V1__TX_STATE__ROLLED_BACK))
		return 0;
	return 1;

fail:
	fprintf(stderr, "settle-transfer: %s\n", settle_client_errmsg(c));
fail_quiet:
	settle_client_close(c);
	return 1;
}

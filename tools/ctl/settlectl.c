/*
 * settlectl — the operator's view of a Settle cluster.
 *
 *   settlectl --cluster ENDPOINTS [--json] status
 *   settlectl --cluster ENDPOINTS [--json] tx list [--state S] [--stuck]
 *             [--older-than DURATION] [--limit N] [--after GID]
 *   settlectl --cluster ENDPOINTS [--json] tx show GID
 *   settlectl --cluster ENDPOINTS [--json] tx retry GID [--branch N]
 *             [--reason TEXT]
 *   settlectl --cluster ENDPOINTS [--json] tx resolve GID --branch N
 *             --reason TEXT
 *   settlectl --cluster ENDPOINTS [--json] xa recover [--limit N]
 *             [--after GID]
 *   settlectl --cluster ENDPOINTS [--json] xa forget GID
 *   settlectl --cluster ENDPOINTS [--json] xa commit|rollback GID
 *             --reason TEXT
 *   settlectl --cluster ENDPOINTS [--json] cluster members
 *   settlectl --cluster ENDPOINTS [--json] cluster add ID RAFT CLIENT
 *             [--role voter|standby|spare]
 *   settlectl --cluster ENDPOINTS [--json] cluster remove ID
 *   settlectl --cluster ENDPOINTS [--json] cluster transfer [ID]
 *   settlectl --cluster ENDPOINTS top | participants | backup DIR
 *   (--dry-run on the verbs that change something; tx retry over filters)
 *
 * This file reads the command line and hands each command to its file:
 * ctl_read.c (status, participants, tx list/show), ctl_tx_ops.c (tx
 * retry/resolve), ctl_xa_cmd.c (xa), ctl_cluster.c (cluster), ctl_admin.c
 * (--dry-run, bulk retry), ctl_watch.c (top), ctl_backup.c (backup).
 *
 * Exit status: 0 done, 1 the cluster could not answer (the error is on
 * stderr), 2 the command line is wrong (nothing was sent).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* error.h before settle.h: see settle.h. */
#include "error.h"
#include "log.h"
#include "settle.h"

#include "ctl_cmd.h"
#include "ctl_fmt.h"
#include "ctl_int.h"
#include "ctl_xa.h"

static const char usage_text[] =
    "usage: settlectl --cluster ENDPOINTS [--json] [--timeout DURATION] "
    "COMMAND\n"
    "\n"
    "commands:\n"
    "  status                   each node: role, term, log indexes, leader,\n"
    "                           transaction counts, heuristics not\n"
    "                           forgotten, XA calls and recovery scans\n"
    "  top                      a live view: each node, the leader's rates\n"
    "                           and decision latency, stuck, participants\n"
    "      --interval D         redraw every D (default 1s)\n"
    "      --iterations N       stop after N rounds (default: never)\n"
    "  backup DIR               an online backup of one node's store into\n"
    "                           DIR (settle-backup-NODE-INDEX.ckpt and a\n"
    "                           .json manifest); seeds a new node with\n"
    "                           settled --join --restore FILE\n"
    "      --node EP            the node to copy (default: the first of\n"
    "                           --cluster)\n"
    "  participants             the participant endpoints the leader calls:\n"
    "                           calls, errors, circuit breaker, branches\n"
    "                           waiting and FAILED there\n"
    "  tx list [filters]        transactions, oldest first\n"
    "      --state S            active, committing, committed, rolling_back,\n"
    "                           rolled_back, saga_running,\n"
    "                           saga_compensating, saga_succeeded,\n"
    "                           saga_compensated, xa_prepared\n"
    "      --stuck              only those waiting for an operator\n"
    "      --older-than D       only those created more than D ago\n"
    "      --limit N            at most N (default: the server's, 1000)\n"
    "      --after GID          continue a listing after this gid\n"
    "  tx show GID              one transaction: branches (a saga's steps,\n"
    "                           their order and errors; an XA branch's RM,\n"
    "                           XID and heuristic) and full history\n"
    "  tx retry GID             call a FAILED branch again (all of them\n"
    "                           without --branch), or make a branch that\n"
    "                           is being retried due now\n"
    "      --branch N           only branch N\n"
    "      --reason TEXT        recorded in the history\n"
    "  tx retry --stuck [--participant EP] [--state S] [--older-than D]\n"
    "                           every transaction the filters select (at\n"
    "                           EP: its branches there only): shows them,\n"
    "                           asks, then retries each\n"
    "      --yes                do not ask (needed without a terminal)\n"
    "  tx resolve GID --branch N --reason TEXT\n"
    "                           the FAILED branch N's phase was done by\n"
    "                           hand: mark it done and let the transaction\n"
    "                           go on (the reason is required)\n"
    "      Both go through the raft log: default --timeout 15s.\n"
    "  xa recover               XA transactions begun by a legacy TM that\n"
    "                           are prepared (in doubt: the TM decides) or\n"
    "                           remember a heuristic outcome\n"
    "      --limit N, --after GID  as for tx list\n"
    "  xa forget GID            clear a heuristic outcome once dealt with\n"
    "                           (docs/XA.md); through the raft log\n"
    "  xa commit GID --reason TEXT, xa rollback GID --reason TEXT\n"
    "                           decide a prepared (in-doubt) XA transaction\n"
    "                           by hand when its TM is gone for good: a\n"
    "                           heuristic decision, remembered and told to\n"
    "                           the TM (XA_HEURCOM / XA_HEURRB) until xa\n"
    "                           forget; through the raft log\n"
    "  cluster members          the raft configuration: each node's role,\n"
    "                           raft address, client endpoint, the leader\n"
    "  cluster add ID RAFT_ADDRESS CLIENT_ENDPOINT\n"
    "                           add a node started with settled --join; it\n"
    "                           catches up, then becomes a voter\n"
    "      --role R             stop at voter (default), standby or spare\n"
    "  cluster remove ID        remove a node (not the leader: transfer\n"
    "                           first); then stop its process\n"
    "  cluster transfer [ID]    hand leadership to node ID (default: any\n"
    "                           voter)\n"
    "  Membership changes go one at a time; each waits until it is done\n"
    "  (default --timeout 60s for add, 15s for remove and transfer).\n"
    "\n"
    "options:\n"
    "  --cluster ENDPOINTS      host:port[,host:port...] of the coordinators\n"
    "                           (default: $SETTLE_CLUSTER)\n"
    "  --json                   machine-readable output\n"
    "  --timeout D              give up after D (default 5s)\n"
    "  --tls-cert F --tls-key F --tls-ca F\n"
    "                           mutual TLS with these PEM files (default:\n"
    "                           $SETTLE_TLS_CERT, $SETTLE_TLS_KEY,\n"
    "                           $SETTLE_TLS_CA)\n"
    "  --insecure               plaintext, no certificate, for a cluster\n"
    "                           run with settled --insecure (default:\n"
    "                           $SETTLE_INSECURE=1); without either a\n"
    "                           certificate is required\n"
    "  --dry-run                with tx retry, tx resolve, xa commit,\n"
    "                           rollback and forget, cluster add, remove\n"
    "                           and transfer: say what would change, and\n"
    "                           change nothing\n"
    "  --help                   this text\n"
    "\n"
    "Durations: 1500ms, 30s, 5m, 2h, 1d.\n"
    "Exit status: 0 ok, 1 the cluster did not answer or refused, 2 bad "
    "usage.\n"
    "See docs/OPERATIONS.md for the runbook.\n";

static int usage_error(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("settlectl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(settlectl --help for usage)\n", stderr);
	return CTL_EXIT_USAGE;
}

int ctl_open_client(const struct ctl_opts *o, settle_client **out)
{
	struct settle_client_opts co = {0};
	int rv;

	co.call_timeout_ms = (uint32_t)o->timeout_ms;
	co.connect_timeout_ms =
	    o->timeout_ms < 1000 ? (uint32_t)o->timeout_ms : 1000;
	co.retry_budget_ms = (uint32_t)o->timeout_ms;
	rv = settle_client_open(o->cluster, &co, out);
	if (rv != 0) {
		fprintf(stderr, "settlectl: bad --cluster '%s': %s\n",
			o->cluster, settle_strerror(rv));
		return rv;
	}
	if (o->tls.cert != NULL) {
		rv = settle_client_set_tls(*out, &o->tls);
		if (rv != 0) {
			fprintf(stderr, "settlectl: TLS: %s\n",
				settle_client_errmsg(*out));
			settle_client_close(*out);
			*out = NULL;
			return rv;
		}
	}
	return 0;
}

static int parse_xa(char **pos, int npos, const struct ctl_opts *o)
{
	const char *sub = npos > 1 ? pos[1] : NULL;

	if (sub == NULL)
		return usage_error("%s", "xa needs a subcommand: recover, "
					 "forget GID, commit GID or rollback "
					 "GID");
	if (strcmp(sub, "commit") == 0 || strcmp(sub, "rollback") == 0) {
		char err[256];
		bool commit;

		if (ctl_xa_decide_check(pos, npos, o->reason, &commit, err,
					sizeof(err)) != 0)
			return usage_error("%s", err);
		if (o->branch != 0)
			return usage_error("xa %s takes no --branch: it "
					   "decides the whole transaction",
					   sub);
		return 0;
	}
	if (strcmp(sub, "recover") == 0) {
		if (npos > 2)
			return usage_error("xa recover takes no argument, got "
					   "'%s' (paging is --limit, --after)",
					   pos[2]);
		return 0;
	}
	if (strcmp(sub, "forget") != 0)
		return usage_error("unknown xa subcommand '%s': recover, "
				   "forget GID, commit GID or rollback GID",
				   sub);
	if (npos != 3)
		return usage_error("%s", "xa forget needs exactly one GID");
	if (pos[2][0] == '\0' || strlen(pos[2]) > SETTLE_GID_MAX)
		return usage_error("bad gid '%s': 1 to 128 bytes", pos[2]);
	return 0;
}

/* Check the words after "tx"; 0 when fine, else the usage exit. */
static int parse_tx(char **pos, int npos, const struct ctl_opts *o)
{
	const char *sub = npos > 1 ? pos[1] : NULL;

	if (sub == NULL)
		return usage_error("%s", "tx needs a subcommand: list, show "
					 "GID, retry GID or resolve GID");
	if (strcmp(sub, "list") == 0) {
		if (npos > 2)
			return usage_error("tx list takes no "
					   "argument, got '%s' (filters "
					   "are options: --state ...)",
					   pos[2]);
		return 0;
	}
	if (strcmp(sub, "show") != 0 && strcmp(sub, "retry") != 0 &&
	    strcmp(sub, "resolve") != 0)
		return usage_error("unknown tx subcommand '%s': list, show "
				   "GID, retry GID or resolve GID",
				   sub);
	/* tx retry over a filter: no GID, a filter instead. */
	if (strcmp(sub, "retry") == 0 && npos == 2) {
		if (!o->stuck && !o->have_state && o->older_than_ms == 0 &&
		    o->participant == NULL)
			return usage_error("%s", "tx retry needs a GID, or "
						 "filters (--stuck, --state, "
						 "--older-than, --participant) "
						 "to retry many");
		if (o->branch != 0)
			return usage_error("%s", "--branch needs a GID; with "
						 "filters, --participant EP "
						 "picks the branches");
		return 0;
	}
	if (npos != 3)
		return usage_error("tx %s needs exactly one GID", sub);
	if (pos[2][0] == '\0' || strlen(pos[2]) > SETTLE_GID_MAX)
		return usage_error("bad gid '%s': 1 to 128 bytes", pos[2]);
	if (strcmp(sub, "resolve") == 0) {
		if (o->branch == 0)
			return usage_error("%s", "tx resolve needs --branch N: "
						 "the FAILED branch whose "
						 "phase was done by hand");
		if (o->reason == NULL || o->reason[0] == '\0')
			return usage_error("%s", "tx resolve needs --reason "
						 "TEXT: who decided and why");
	}
	return 0;
}

/* ---- cluster ------------------------------------------------------------ */

/* A membership change waits for raft: give it more time than a read
 * unless the operator chose. */
int ctl_open_admin(const struct ctl_opts *o, uint64_t default_ms,
		   settle_client **out)
{
	struct ctl_opts a = *o;

	if (!o->have_timeout)
		a.timeout_ms = default_ms;
	return ctl_open_client(&a, out);
}

/* Check the words after "cluster"; 0 when fine, else the usage exit. */
static int parse_cluster(char **pos, int npos, uint64_t *id)
{
	const char *sub = npos > 1 ? pos[1] : NULL;

	*id = 0;
	if (sub == NULL)
		return usage_error("%s", "cluster needs a subcommand: members, "
					 "add, remove or transfer");
	if (strcmp(sub, "members") == 0) {
		if (npos > 2)
			return usage_error("cluster members takes no "
					   "argument, got '%s'",
					   pos[2]);
		return 0;
	}
	if (strcmp(sub, "add") == 0) {
		if (npos != 5)
			return usage_error("%s",
					   "cluster add needs ID "
					   "RAFT_ADDRESS CLIENT_ENDPOINT");
	} else if (strcmp(sub, "remove") == 0) {
		if (npos != 3)
			return usage_error(
			    "%s", "cluster remove needs exactly one ID");
	} else if (strcmp(sub, "transfer") == 0) {
		if (npos > 3)
			return usage_error("%s", "cluster transfer takes at "
						 "most one ID");
		if (npos == 2)
			return 0;
	} else {
		return usage_error("unknown cluster subcommand '%s': members, "
				   "add, remove or transfer",
				   sub);
	}
	if (ctl_node_id_parse(pos[2], id) != 0)
		return usage_error("bad node id '%s': a positive integer",
				   pos[2]);
	if (strcmp(sub, "add") == 0) {
		if (ctl_address_check(pos[3]) != 0)
			return usage_error("bad raft address '%s': give "
					   "host:port with a port 1..65535",
					   pos[3]);
		if (ctl_address_check(pos[4]) != 0)
			return usage_error("bad client endpoint '%s': give "
					   "host:port with a port 1..65535",
					   pos[4]);
	}
	return 0;
}

enum {
	OPT_CLUSTER = 256,
	OPT_JSON,
	OPT_TIMEOUT,
	OPT_STATE,
	OPT_STUCK,
	OPT_OLDER,
	OPT_LIMIT,
	OPT_AFTER,
	OPT_ROLE,
	OPT_BRANCH,
	OPT_REASON,
	OPT_TLS_CERT,
	OPT_TLS_KEY,
	OPT_TLS_CA,
	OPT_INSECURE,
	OPT_DRY_RUN,
	OPT_PARTICIPANT,
	OPT_YES,
	OPT_INTERVAL,
	OPT_ITERATIONS,
	OPT_NODE,
	OPT_HELP,
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
	    {"cluster", required_argument, NULL, OPT_CLUSTER},
	    {"json", no_argument, NULL, OPT_JSON},
	    {"timeout", required_argument, NULL, OPT_TIMEOUT},
	    {"state", required_argument, NULL, OPT_STATE},
	    {"stuck", no_argument, NULL, OPT_STUCK},
	    {"older-than", required_argument, NULL, OPT_OLDER},
	    {"limit", required_argument, NULL, OPT_LIMIT},
	    {"after", required_argument, NULL, OPT_AFTER},
	    {"role", required_argument, NULL, OPT_ROLE},
	    {"branch", required_argument, NULL, OPT_BRANCH},
	    {"reason", required_argument, NULL, OPT_REASON},
	    {"tls-cert", required_argument, NULL, OPT_TLS_CERT},
	    {"tls-key", required_argument, NULL, OPT_TLS_KEY},
	    {"tls-ca", required_argument, NULL, OPT_TLS_CA},
	    {"insecure", no_argument, NULL, OPT_INSECURE},
	    {"dry-run", no_argument, NULL, OPT_DRY_RUN},
	    {"participant", required_argument, NULL, OPT_PARTICIPANT},
	    {"yes", no_argument, NULL, OPT_YES},
	    {"interval", required_argument, NULL, OPT_INTERVAL},
	    {"iterations", required_argument, NULL, OPT_ITERATIONS},
	    {"node", required_argument, NULL, OPT_NODE},
	    {"help", no_argument, NULL, OPT_HELP},
	    {NULL, 0, NULL, 0},
	};
	struct ctl_opts o = {0};
	const char *cmd, *sub;
	uint64_t node_id = 0;
	int ch, npos, rv;
	bool bulk;
	char **pos;

	o.timeout_ms = 5000;
	o.cluster = getenv("SETTLE_CLUSTER");
	o.tls.cert = getenv("SETTLE_TLS_CERT");
	o.tls.key = getenv("SETTLE_TLS_KEY");
	o.tls.ca = getenv("SETTLE_TLS_CA");
	opterr = 0;
	/* Options may come before or after the command words: getopt_long
	 * permutes them, so "settlectl tx list --stuck" works. */
	while ((ch = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
		switch (ch) {
		case OPT_CLUSTER:
			o.cluster = optarg;
			break;
		case OPT_JSON:
			o.json = true;
			break;
		case OPT_TLS_CERT:
			o.tls.cert = optarg;
			o.tls_flags = true;
			break;
		case OPT_TLS_KEY:
			o.tls.key = optarg;
			o.tls_flags = true;
			break;
		case OPT_TLS_CA:
			o.tls.ca = optarg;
			o.tls_flags = true;
			break;
		case OPT_INSECURE:
			o.insecure = true;
			break;
		case OPT_DRY_RUN:
			o.dry_run = true;
			break;
		case OPT_PARTICIPANT:
			if (ctl_address_check(optarg) != 0)
				return usage_error(
				    "bad --participant '%s': give the "
				    "endpoint as host:port",
				    optarg);
			o.participant = optarg;
			break;
		case OPT_YES:
			o.yes = true;
			break;
		case OPT_NODE:
			if (ctl_address_check(optarg) != 0)
				return usage_error("bad --node '%s': give the "
						   "node's client endpoint as "
						   "host:port",
						   optarg);
			o.node = optarg;
			break;
		case OPT_INTERVAL:
			if (ctl_duration_parse(optarg, &o.interval_ms) != 0 ||
			    o.interval_ms < 100 || o.interval_ms > 3600000)
				return usage_error(
				    "bad --interval '%s': give a "
				    "duration from 100ms to 1h",
				    optarg);
			o.top_flag = "--interval";
			break;
		case OPT_ITERATIONS: {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end ||
			    errno || v == 0 || v > 1000000)
				return usage_error("bad --iterations '%s': a "
						   "number from 1",
						   optarg);
			o.iterations = (uint32_t)v;
			o.top_flag = "--iterations";
			break;
		}
		case OPT_TIMEOUT:
			if (ctl_duration_parse(optarg, &o.timeout_ms) != 0 ||
			    o.timeout_ms == 0 || o.timeout_ms > 3600000)
				return usage_error(
				    "bad --timeout '%s': give a duration "
				    "between 1ms and 1h, like 500ms or 10s",
				    optarg);
			o.have_timeout = true;
			break;
		case OPT_ROLE:
			if (ctl_role_parse(optarg, &o.role) != 0)
				return usage_error("bad --role '%s': voter, "
						   "standby or spare",
						   optarg);
			o.have_role = true;
			break;
		case OPT_BRANCH:
			if (ctl_branch_id_parse(optarg, &o.branch) != 0)
				return usage_error(
				    "bad --branch '%s': a branch "
				    "id, from 1",
				    optarg);
			o.op_flag = "--branch";
			break;
		case OPT_REASON:
			if (ctl_reason_check(optarg, false) != 0)
				return usage_error("--reason is longer than %d "
						   "bytes",
						   CTL_REASON_MAX);
			o.reason = optarg;
			o.op_flag = "--reason";
			break;
		case OPT_STATE:
			if (ctl_state_parse(optarg, &o.state) != 0)
				return usage_error(
				    "bad --state '%s': one of active, "
				    "committing, committed, rolling_back, "
				    "rolled_back, saga_running, "
				    "saga_compensating, saga_succeeded, "
				    "saga_compensated, xa_prepared",
				    optarg);
			o.have_state = true;
			o.list_flag = "--state";
			break;
		case OPT_STUCK:
			o.stuck = true;
			o.list_flag = "--stuck";
			break;
		case OPT_OLDER:
			if (ctl_duration_parse(optarg, &o.older_than_ms) != 0)
				return usage_error(
				    "bad --older-than '%s': give a duration "
				    "with a unit, like 1500ms, 30s, 5m, 2h, 1d",
				    optarg);
			o.list_flag = "--older-than";
			break;
		case OPT_LIMIT: {
			char *end;
			unsigned long v;
			errno = 0;
			v = strtoul(optarg, &end, 10);
			if (optarg[0] < '0' || optarg[0] > '9' || *end ||
			    errno || v == 0 || v > 100000)
				return usage_error("bad --limit '%s': give a "
						   "number from 1 to 100000",
						   optarg);
			o.limit = (uint32_t)v;
			o.page_flag = "--limit";
			break;
		}
		case OPT_AFTER:
			o.after = optarg;
			o.page_flag = "--after";
			break;
		case 'h':
		case OPT_HELP:
			fputs(usage_text, stdout);
			return 0;
		case ':':
			return usage_error("option '%s' needs a value",
					   argv[optind - 1]);
		default:
			return usage_error("unknown option '%s'",
					   argv[optind - 1]);
		}
	}
	pos = argv + optind;
	npos = argc - optind;
	if (npos == 0)
		return usage_error("%s", "no command given: status, "
					 "participants, tx ..., xa ... or "
					 "cluster ...");
	cmd = pos[0];
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (strcmp(cmd, "status") != 0 && strcmp(cmd, "tx") != 0 &&
	    strcmp(cmd, "xa") != 0 && strcmp(cmd, "cluster") != 0 &&
	    strcmp(cmd, "participants") != 0 && strcmp(cmd, "top") != 0 &&
	    strcmp(cmd, "backup") != 0)
		return usage_error("unknown command '%s': status, top, "
				   "participants, backup DIR, tx ..., xa ... "
				   "or cluster ...",
				   cmd);
	if (strcmp(cmd, "backup") == 0 && npos != 2)
		return usage_error("%s", "backup needs exactly one DIR");
	if (o.node != NULL && strcmp(cmd, "backup") != 0)
		return usage_error("%s", "--node only applies to 'backup'");
	if (strcmp(cmd, "top") == 0 && o.json)
		return usage_error("%s", "top draws a view: for figures to "
					 "read, status --json or settled "
					 "--metrics");
	if (o.top_flag != NULL && strcmp(cmd, "top") != 0)
		return usage_error("%s only applies to 'top'", o.top_flag);
	if ((strcmp(cmd, "status") == 0 || strcmp(cmd, "participants") == 0 ||
	     strcmp(cmd, "top") == 0) &&
	    npos > 1)
		return usage_error("%s takes no argument, got '%s'", cmd,
				   pos[1]);
	sub = npos > 1 ? pos[1] : NULL;
	if (strcmp(cmd, "tx") == 0) {
		rv = parse_tx(pos, npos, &o);
		if (rv != 0)
			return rv;
	}
	if (strcmp(cmd, "cluster") == 0) {
		rv = parse_cluster(pos, npos, &node_id);
		if (rv != 0)
			return rv;
	}
	if (strcmp(cmd, "xa") == 0) {
		rv = parse_xa(pos, npos, &o);
		if (rv != 0)
			return rv;
	}
	bulk = strcmp(cmd, "tx") == 0 && sub && strcmp(sub, "retry") == 0 &&
	       npos == 2;
	if (o.list_flag &&
	    !(strcmp(cmd, "tx") == 0 && sub && strcmp(sub, "list") == 0) &&
	    !bulk)
		return usage_error("%s only applies to 'tx list' and 'tx "
				   "retry' over filters",
				   o.list_flag);
	if ((o.participant != NULL || o.yes) && !bulk)
		return usage_error("%s only applies to 'tx retry' over "
				   "filters",
				   o.participant != NULL ? "--participant"
							 : "--yes");
	if (o.dry_run &&
	    !(strcmp(cmd, "tx") == 0 && sub &&
	      (strcmp(sub, "retry") == 0 || strcmp(sub, "resolve") == 0)) &&
	    !(strcmp(cmd, "xa") == 0 && sub && strcmp(sub, "recover") != 0) &&
	    !(strcmp(cmd, "cluster") == 0 && sub &&
	      strcmp(sub, "members") != 0))
		return usage_error("%s", "--dry-run only applies to the verbs "
					 "that change something: tx retry, tx "
					 "resolve, xa commit, rollback and "
					 "forget, cluster add, remove and "
					 "transfer");
	/* xa recover pages like tx list, but filters nothing. */
	if (o.page_flag && strcmp(o.page_flag, "--after") == 0 && bulk)
		return usage_error("%s",
				   "--after only applies to 'tx list' and "
				   "'xa recover'");
	if (o.page_flag && !bulk &&
	    !(strcmp(cmd, "tx") == 0 && sub && strcmp(sub, "list") == 0) &&
	    !(strcmp(cmd, "xa") == 0 && sub && strcmp(sub, "recover") == 0))
		return usage_error("%s only applies to 'tx list' and 'xa "
				   "recover'",
				   o.page_flag);
	if (o.op_flag &&
	    !(strcmp(cmd, "tx") == 0 && sub &&
	      (strcmp(sub, "retry") == 0 || strcmp(sub, "resolve") == 0)) &&
	    !(strcmp(cmd, "xa") == 0 && sub &&
	      (strcmp(sub, "commit") == 0 || strcmp(sub, "rollback") == 0)))
		return usage_error("%s only applies to 'tx retry', 'tx "
				   "resolve', 'xa commit' and 'xa rollback'",
				   o.op_flag);
	if (o.have_role &&
	    !(strcmp(cmd, "cluster") == 0 && strcmp(sub, "add") == 0))
		return usage_error("%s",
				   "--role only applies to 'cluster add'");
	if (o.insecure && o.tls_flags)
		return usage_error("%s", "--insecure (plaintext) and --tls-*: "
					 "choose one");
	if (o.insecure) {
		/* Plaintext asked for: the environment's files are not used. */
		o.tls.cert = o.tls.key = o.tls.ca = NULL;
		fprintf(stderr, "settlectl: --insecure: plaintext, no "
				"certificate (docs/SECURITY.md)\n");
	} else if (o.tls.cert == NULL && o.tls.key == NULL &&
		   o.tls.ca == NULL) {
		const char *env = getenv("SETTLE_INSECURE");

		if (env == NULL || strcmp(env, "1") != 0)
			return usage_error(
			    "%s", "no certificate: give --tls-cert, --tls-key "
				  "and --tls-ca (or $SETTLE_TLS_CERT, _KEY, "
				  "_CA), or --insecure (or SETTLE_INSECURE=1) "
				  "for a cluster in plaintext");
	}
	if ((o.tls.cert != NULL) != (o.tls.key != NULL) ||
	    (o.tls.cert != NULL) != (o.tls.ca != NULL))
		return usage_error("%s", "TLS needs --tls-cert, --tls-key and "
					 "--tls-ca together (or "
					 "$SETTLE_TLS_CERT, _KEY, _CA)");
	if (o.cluster == NULL || o.cluster[0] == '\0')
		return usage_error("%s", "no cluster: give --cluster "
					 "host:port[,host:port...] or set "
					 "SETTLE_CLUSTER");

	if (strcmp(cmd, "status") == 0)
		return ctl_cmd_status(&o);
	if (strcmp(cmd, "participants") == 0)
		return ctl_cmd_participants(&o);
	if (strcmp(cmd, "top") == 0)
		return ctl_cmd_top(&o);
	if (strcmp(cmd, "backup") == 0)
		return ctl_cmd_backup(&o, pos[1]);
	if (o.dry_run && strcmp(cmd, "xa") == 0)
		return ctl_cmd_dry_xa(&o, sub, pos[2]);
	if (o.dry_run && strcmp(cmd, "cluster") == 0)
		return ctl_cmd_dry_cluster(&o, sub, node_id,
					   npos > 3 ? pos[3] : NULL,
					   npos > 4 ? pos[4] : NULL);
	if (o.dry_run && !bulk)
		return ctl_cmd_dry_tx(&o, pos[2], strcmp(sub, "resolve") == 0);
	if (bulk)
		return ctl_cmd_tx_retry_bulk(&o);
	if (strcmp(cmd, "xa") == 0) {
		if (strcmp(sub, "recover") == 0)
			return ctl_cmd_xa_recover(&o);
		if (strcmp(sub, "commit") == 0 || strcmp(sub, "rollback") == 0)
			return ctl_cmd_xa_heuristic(&o, pos[2],
						    strcmp(sub, "commit") == 0);
		return ctl_cmd_xa_forget(&o, pos[2]);
	}
	if (strcmp(cmd, "cluster") == 0) {
		if (strcmp(sub, "members") == 0)
			return ctl_cmd_cluster_members(&o);
		if (strcmp(sub, "add") == 0)
			return ctl_cmd_cluster_add(&o, node_id, pos[3], pos[4]);
		if (strcmp(sub, "remove") == 0)
			return ctl_cmd_cluster_remove(&o, node_id);
		return ctl_cmd_cluster_transfer(&o, node_id);
	}
	if (strcmp(sub, "list") == 0)
		return ctl_cmd_tx_list(&o);
	if (strcmp(sub, "retry") == 0)
		return ctl_cmd_tx_retry(&o, pos[2]);
	if (strcmp(sub, "resolve") == 0)
		return ctl_cmd_tx_resolve(&o, pos[2]);
	return ctl_cmd_tx_show(&o, pos[2]);
}

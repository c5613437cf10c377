/*
 * settle-xa-transfer — a demo initiator that moves money between an account
 * table in PostgreSQL and one in MariaDB in one XA transaction, with Settle
 * as the transaction manager (docs/XA.md, "Settle as the TM").
 *
 * The flow, as every XA initiator of Settle does it:
 *   settle_xa_begin (no xid) -> settle_xa_register_rm per database: each
 *   answer is the branch's XID -> on our own connection to that database:
 *   XA start under that XID, the UPDATEs, XA end, XA prepare ->
 *   settle_xa_vote with what prepare answered -> settle_xa_commit with
 *   one_phase (the votes were the prepare): the commit decision is durable
 *   in the cluster, and its leader commits every prepared branch itself,
 *   over its own connections, whatever happens to us afterwards.
 *
 * --phase2-ms N: phase 2 by the initiator (cluster feature level 6). We keep
 * each database session after its prepare, Commit with
 * settle_xa_commit_by_initiator() makes the decision durable, and we
 * commit each branch on the session that prepared it, then report them
 * all with settle_xa_vote(0, PHASE2_COMMITTED). No session has to end
 * before the vote, so MariaDB's wait (below) is skipped; if we die after
 * the decision, the leader commits the branches once N ms have passed.
 *
 * --single KIND: one branch, both accounts in that database: Commit with
 * one_phase answers COMMITTING with the branch XA_BRANCH_ONE_PHASE; we
 * commit it in one phase at the database and report the outcome with
 * settle_xa_vote(ONE_PHASE_*).
 *
 * The table is settle_xa_accounts(name, balance) in each database
 * (--setup creates it and the accounts, --balances reads them). The
 * database connection strings come from $SETTLE_XA_PG and
 * $SETTLE_XA_MARIADB (or --pg / --mariadb, visible to ps): they are never
 * printed, nor are balances except by --balances.
 *
 * Exit codes: 0 the intended outcome (committed; rolled back with --abort
 * or --rollback; a --stop-after step reached with --stop-how exit); 1 an
 * error; 2 usage; 3 a business failure undone (insufficient funds, unknown
 * account: the branch voted rollback and the transaction rolled back).
 */
#include "error.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settle.h"

#include "xa/rm.h"
#include "tls_env.h"
#include "xa/xid.h"

#define PROG		"settle-xa-transfer"
#define TABLE		"settle_xa_accounts"
#define ACCOUNT_MAX	64
#define WAIT_DEFAULT_MS 10000
#define MAX_ACCOUNTS	16

/* Steps after which --stop-after ends the program (tests' fault hooks). */
enum step {
	STEP_NONE,
	STEP_REGISTER, /* branches registered, no work done */
	STEP_WORK,     /* work done in the branches, not ended or prepared */
	STEP_PREPARE,  /* every branch prepared at its database, none voted */
	STEP_VOTE,     /* every branch voted, Commit not sent */
	STEP_COMMIT,   /* Commit answered (sent with wait 0) */
};

static const char *const step_names[] = {"",	    "register", "work",
					 "prepare", "vote",	"commit"};

struct branch {
	enum xa_rm_kind kind;
	const char *rm_name; /* the cluster's name for the database */
	const char *conninfo;
	uint32_t id;
	struct xa_xid xid;
	struct xa_rm *rm;
	enum xa_rm_vote vote;
	char why[300]; /* why this branch votes rollback */
};

struct opts {
	const char *cluster;
	const char *pg_rm, *my_rm;
	const char *pg_conninfo, *my_conninfo;
	enum xa_rm_kind from_kind;
	const char *from_account, *to_account;
	uint32_t amount;
	bool abort_vote, rollback, read_only;
	enum xa_rm_kind single; /* 0: two branches */
	enum step stop_after;
	bool stop_kill;
	uint32_t timeout_ms, wait_ms;
	uint32_t lock_timeout_ms; /* row-lock waits in the branches */
	uint32_t phase2_ms;	  /* > 0: phase 2 by the initiator */
	bool insecure;		  /* --insecure: plaintext */
};

static void usage(FILE *f)
{
	fprintf(
	    f,
	    "usage: " PROG " --cluster HOST:PORT[,...] --amount N\n"
	    "           [--from pg|mariadb] [--from-account A] "
	    "[--to-account B]\n"
	    "           [--single pg|mariadb] [--read-only] [--abort | "
	    "--rollback]\n"
	    "           [--pg-rm NAME] [--mariadb-rm NAME] [--timeout-ms N] "
	    "[--wait-ms N]\n"
	    "           [--lock-timeout-ms N] [--phase2-ms N] [--insecure]\n"
	    "           [--stop-after register|work|prepare|vote|commit "
	    "[--stop-how exit|kill]]\n"
	    "       " PROG " --setup NAME=BALANCE[,...]\n"
	    "       " PROG " --balances NAME[,...]\n"
	    "  Moves N from account A (default alice) in the --from "
	    "database (default pg)\n"
	    "  to account B (default bob) in the other one, in one XA "
	    "transaction.\n"
	    "  --single KIND: one branch, both accounts in that database "
	    "(one-phase commit)\n"
	    "  --read-only: only read both balances (the branches vote "
	    "read-only);\n"
	    "               exit 3 if A's balance does not cover N\n"
	    "  --abort: the last branch votes rollback; --rollback: "
	    "Rollback after the votes\n"
	    "  --lock-timeout-ms: longest wait for a row lock (default 5000): "
	    "transfers in\n"
	    "               opposite directions can deadlock across the two "
	    "databases\n"
	    "  --phase2-ms N: commit the branches ourselves once the "
	    "decision is durable;\n"
	    "               the leader does it if we have not reported "
	    "within N ms\n"
	    "  --pg-rm, --mariadb-rm: the names settled knows the databases "
	    "by (--xa-rm),\n"
	    "               default pg and maria\n"
	    "  --stop-after STEP: exit(0) (or SIGKILL ourselves with "
	    "--stop-how kill) right\n"
	    "               after STEP, for fault tests\n"
	    "  Connections: $SETTLE_XA_PG and $SETTLE_XA_MARIADB (libpq "
	    "conninfo), or --pg\n"
	    "               and --mariadb; --setup and --balances use "
	    "those that are set.\n");
}

static int parse_u32(const char *flag, const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > UINT32_MAX ||
	    s[0] == '-') {
		fprintf(stderr, PROG ": %s wants a number, not '%s'\n", flag,
			s);
		return -1;
	}
	*out = (uint32_t)v;
	return 0;
}

static int parse_kind(const char *flag, const char *s, enum xa_rm_kind *out)
{
	if (strcmp(s, "pg") == 0 || strcmp(s, "postgresql") == 0) {
		*out = XA_RM_POSTGRESQL;
		return 0;
	}
	if (strcmp(s, "mariadb") == 0 || strcmp(s, "maria") == 0) {
		*out = XA_RM_MARIADB;
		return 0;
	}
	fprintf(stderr, PROG ": %s wants pg or mariadb, not '%s'\n", flag, s);
	return -1;
}

/* Account names go into SQL text: letters, digits and '_' only. */
static bool account_ok(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || len > ACCOUNT_MAX)
		return false;
	for (i = 0; i < len; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_')
			return false;
	return true;
}

static const char *kind_name(enum xa_rm_kind k)
{
	return k == XA_RM_POSTGRESQL ? "postgresql" : "mariadb";
}

static enum xa_rm_kind other_kind(enum xa_rm_kind k)
{
	return k == XA_RM_POSTGRESQL ? XA_RM_MARIADB : XA_RM_POSTGRESQL;
}

static const char *conninfo_of(const struct opts *o, enum xa_rm_kind k)
{
	return k == XA_RM_POSTGRESQL ? o->pg_conninfo : o->my_conninfo;
}

/* Open a connection; NULL after saying why (never the conninfo). */
static struct xa_rm *open_rm(enum xa_rm_kind kind, const char *conninfo)
{
	char err[512] = "";
	struct xa_rm *rm = NULL;
	int rv;

	if (conninfo == NULL || conninfo[0] == '\0') {
		fprintf(stderr,
			PROG ": no connection string for %s: set %s or %s\n",
			kind_name(kind),
			kind == XA_RM_POSTGRESQL ? "$SETTLE_XA_PG"
						 : "$SETTLE_XA_MARIADB",
			kind == XA_RM_POSTGRESQL ? "--pg" : "--mariadb");
		return NULL;
	}
	rv = xa_rm_open(kind, conninfo, &rm, err, sizeof(err));
	if (rv != 0) {
		fprintf(stderr, PROG ": connect to %s: %s: %s\n",
			kind_name(kind), settle_strerror(rv), err);
		return NULL;
	}
	return rm;
}

static int exec_sql(struct xa_rm *rm, const char *sql)
{
	int rv = xa_rm_exec(rm, sql);

	if (rv != 0)
		fprintf(stderr, PROG ": %s: %s: %s\n", xa_rm_name(rm),
			settle_strerror(rv), xa_rm_errmsg(rm));
	return rv;
}

static int create_table(struct xa_rm *rm)
{
	return exec_sql(rm, "CREATE TABLE IF NOT EXISTS " TABLE " ("
			    "name VARCHAR(64) PRIMARY KEY, "
			    "balance BIGINT NOT NULL)");
}

/* Split "a,b,c" (or "a=1,b=2") into at most MAX_ACCOUNTS items, checked. */
static int split_accounts(const char *flag, char *list, bool with_balance,
			  char *names[], long long balances[], size_t *n)
{
	char *save = NULL, *item;

	*n = 0;
	for (item = strtok_r(list, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '=');
		char *end;

		if (*n == MAX_ACCOUNTS) {
			fprintf(stderr, PROG ": %s: at most %d accounts\n",
				flag, MAX_ACCOUNTS);
			return -1;
		}
		if (with_balance) {
			if (eq == NULL)
				goto bad;
			*eq = '\0';
			errno = 0;
			balances[*n] = strtoll(eq + 1, &end, 10);
			if (errno != 0 || end == eq + 1 || *end != '\0' ||
			    balances[*n] < 0)
				goto bad;
		} else if (eq != NULL) {
			goto bad;
		}
		if (!account_ok(item, strlen(item)))
			goto bad;
		names[(*n)++] = item;
	}
	if (*n > 0)
		return 0;
bad:
	fprintf(stderr, PROG ": %s wants %s, names of [A-Za-z0-9_]{1,64}\n",
		flag, with_balance ? "NAME=BALANCE[,...]" : "NAME[,...]");
	return -1;
}

/* --setup: the table in each configured database, the accounts that are
 * missing (existing ones keep their balance, so a rerun keeps the books). */
static int run_setup(const struct opts *o, char *list)
{
	char *names[MAX_ACCOUNTS];
	long long bal[MAX_ACCOUNTS];
	enum xa_rm_kind kinds[2] = {XA_RM_POSTGRESQL, XA_RM_MARIADB};
	size_t n, i, k, done = 0;

	if (split_accounts("--setup", list, true, names, bal, &n) != 0)
		return 2;
	for (k = 0; k < 2; k++) {
		const char *ci = conninfo_of(o, kinds[k]);
		struct xa_rm *rm;

		if (ci == NULL || ci[0] == '\0')
			continue;
		rm = open_rm(kinds[k], ci);
		if (rm == NULL || create_table(rm) != 0) {
			xa_rm_close(rm);
			return 1;
		}
		for (i = 0; i < n; i++) {
			char sql[256];
			int64_t have = 0;

			snprintf(sql, sizeof(sql),
				 "SELECT COUNT(*) FROM " TABLE
				 " WHERE name = '%s'",
				 names[i]);
			if (xa_rm_query_int(rm, sql, &have) != 0) {
				fprintf(stderr, PROG ": %s: %s\n",
					kind_name(kinds[k]), xa_rm_errmsg(rm));
				xa_rm_close(rm);
				return 1;
			}
			if (have > 0)
				continue;
			snprintf(sql, sizeof(sql),
				 "INSERT INTO " TABLE
				 " (name, balance) VALUES ('%s', %lld)",
				 names[i], bal[i]);
			if (exec_sql(rm, sql) != 0) {
				xa_rm_close(rm);
				return 1;
			}
		}
		xa_rm_close(rm);
		printf("%s: ready\n", kind_name(kinds[k]));
		done++;
	}
	if (done == 0) {
		fprintf(stderr, PROG ": --setup: set $SETTLE_XA_PG and/or "
				     "$SETTLE_XA_MARIADB\n");
		return 2;
	}
	return 0;
}

/* --balances: "KIND NAME BALANCE" per account found, then "total N". */
static int run_balances(const struct opts *o, char *list)
{
	char *names[MAX_ACCOUNTS];
	enum xa_rm_kind kinds[2] = {XA_RM_POSTGRESQL, XA_RM_MARIADB};
	long long total = 0;
	size_t n, i, k, done = 0;

	if (split_accounts("--balances", list, false, names, NULL, &n) != 0)
		return 2;
	for (k = 0; k < 2; k++) {
		const char *ci = conninfo_of(o, kinds[k]);
		struct xa_rm *rm;

		if (ci == NULL || ci[0] == '\0')
			continue;
		rm = open_rm(kinds[k], ci);
		if (rm == NULL || create_table(rm) != 0) {
			xa_rm_close(rm);
			return 1;
		}
		for (i = 0; i < n; i++) {
			char sql[256];
			int64_t cnt = 0, v = 0;

			snprintf(sql, sizeof(sql),
				 "SELECT COUNT(*) FROM " TABLE
				 " WHERE name = '%s'",
				 names[i]);
			if (xa_rm_query_int(rm, sql, &cnt) != 0)
				goto fail;
			if (cnt == 0)
				continue;
			snprintf(sql, sizeof(sql),
				 "SELECT balance FROM " TABLE
				 " WHERE name = '%s'",
				 names[i]);
			if (xa_rm_query_int(rm, sql, &v) != 0)
				goto fail;
			printf("%s %s %lld\n", kind_name(kinds[k]), names[i],
			       (long long)v);
			total += v;
			continue;
		fail:
			fprintf(stderr, PROG ": %s: %s\n", kind_name(kinds[k]),
				xa_rm_errmsg(rm));
			xa_rm_close(rm);
			return 1;
		}
		xa_rm_close(rm);
		done++;
	}
	if (done == 0) {
		fprintf(stderr, PROG ": --balances: set $SETTLE_XA_PG and/or "
				     "$SETTLE_XA_MARIADB\n");
		return 2;
	}
	printf("total %lld\n", total);
	return 0;
}

/* The fault hook: end here, as a crash or a clean exit would. */
static void maybe_stop(const struct opts *o, enum step reached)
{
	if (o->stop_after != reached)
		return;
	printf("stopped after: %s\n", step_names[reached]);
	fflush(stdout);
	if (o->stop_kill)
		raise(SIGKILL);
	/* No cleanup: prepared branches stay prepared at their databases,
	 * unprepared ones die with our connections. */
	_exit(0);
}

/*
 * Read the account's balance inside the branch into *balance, locking its
 * row when lock is set (a lock is a write to PostgreSQL: the branch would
 * no longer be read-only). 0; 1 (no such account: why is set); -1 on a
 * database error.
 */
static int read_balance(struct branch *b, const char *account, bool lock,
			int64_t *balance)
{
	char sql[256];
	int64_t cnt = 0;
	int rv;

	snprintf(sql, sizeof(sql),
		 "SELECT COUNT(*) FROM " TABLE " WHERE name = '%s'", account);
	rv = xa_rm_query_int(b->rm, sql, &cnt);
	if (rv == 0 && cnt == 0) {
		snprintf(b->why, sizeof(b->why), "no such account");
		return 1;
	}
	if (rv == 0) {
		snprintf(sql, sizeof(sql),
			 "SELECT balance FROM " TABLE " WHERE name = '%s'%s",
			 account, lock ? " FOR UPDATE" : "");
		rv = xa_rm_query_int(b->rm, sql, balance);
	}
	if (rv != 0) {
		fprintf(stderr, PROG ": %s: %s: %s\n", kind_name(b->kind),
			settle_strerror(rv), xa_rm_errmsg(b->rm));
		return -1;
	}
	return 0;
}

static int add_balance(struct branch *b, const char *account, long long d)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
		 "UPDATE " TABLE " SET balance = balance + %lld "
		 "WHERE name = '%s'",
		 d, account);
	return exec_sql(b->rm, sql);
}

/*
 * The branch's work, between XA start and end. 0 done; 1 a business
 * failure (why set: the branch will vote rollback); -1 an error.
 *   debit/credit: accounts to take amount from / give it to (NULL: none)
 */
static int do_work(const struct opts *o, struct branch *b, const char *debit,
		   const char *credit)
{
	int64_t bal = 0;
	int rv;

	if (o->read_only) {
		/* A check only: read, write nothing (the branch then votes
		 * read-only). */
		const char *acct = debit ? debit : credit;

		rv = read_balance(b, acct, false, &bal);
		if (rv == 0 && debit != NULL && bal < (int64_t)o->amount) {
			snprintf(b->why, sizeof(b->why), "insufficient funds");
			rv = 1;
		}
		return rv;
	}
	if (debit != NULL) {
		rv = read_balance(b, debit, true, &bal);
		if (rv != 0)
			return rv;
		if (bal < (int64_t)o->amount) {
			snprintf(b->why, sizeof(b->why), "insufficient funds");
			return 1;
		}
		if (add_balance(b, debit, -(long long)o->amount) != 0)
			return -1;
	}
	if (credit != NULL) {
		rv = read_balance(b, credit, true, &bal);
		if (rv != 0)
			return rv;
		if (add_balance(b, credit, (long long)o->amount) != 0)
			return -1;
	}
	return 0;
}

/*
 * Bound row-lock waits: two transfers in opposite directions lock one row
 * in each database in opposite orders, a deadlock that neither database
 * can see. The waiting statement fails instead, and its transfer rolls
 * back.
 */
static int set_lock_timeout(const struct opts *o, struct branch *b)
{
	char sql[128];

	if (b->kind == XA_RM_POSTGRESQL)
		snprintf(sql, sizeof(sql), "SET lock_timeout = %u",
			 o->lock_timeout_ms);
	else
		snprintf(sql, sizeof(sql),
			 "SET SESSION innodb_lock_wait_timeout = %u",
			 (o->lock_timeout_ms + 999) / 1000);
	return exec_sql(b->rm, sql);
}

static int rm_fail(struct branch *b, const char *verb, int rv)
{
	fprintf(stderr, PROG ": %s %s (branch %u): %s: %s\n", verb,
		kind_name(b->kind), b->id, settle_strerror(rv),
		xa_rm_errmsg(b->rm));
	return -1;
}

static int vote(settle_client *c, const char *gid, struct branch *b, int v,
		const char *why, int *state)
{
	int bstate = 0;
	int rv = settle_xa_vote(c, gid, b->id, v, why, state, &bstate);

	if (rv != 0) {
		fprintf(stderr, PROG ": vote %s on branch %u: %s\n",
			settle_xa_vote_name(v), b->id, settle_client_errmsg(c));
		return -1;
	}
	printf("vote: branch %u %s -> %s\n", b->id, settle_xa_vote_name(v),
	       settle_branch_state_name(bstate));
	return 0;
}

static void print_outcome(int state, bool finished)
{
	printf("state: %s\nfinished: %s\n", settle_tx_state_name(state),
	       finished ? "yes" : "no");
	fflush(stdout);
}

/*
 * One branch, committed in one phase: Commit(one_phase) makes it
 * XA_BRANCH_ONE_PHASE, we commit at the database, and report the outcome.
 */
static int run_single(const struct opts *o, settle_client *c, const char *gid,
		      struct branch *b, bool business_failure)
{
	int state = 0, rv, v;
	bool finished = false;

	if (business_failure || o->abort_vote) {
		rv = xa_rm_rollback(b->rm, &b->xid);
		if (rv != 0)
			return rm_fail(b, "rollback", rv);
		if (vote(c, gid, b, SETTLE__V1__XA_VOTE__VOTE_ROLLBACK,
			 business_failure ? b->why : "aborted by the initiator",
			 &state) != 0)
			return 1;
		rv = settle_wait(c, gid, o->wait_ms, &state, &finished);
		print_outcome(state, finished);
		return business_failure ? 3 : 0;
	}
	rv = settle_xa_commit(c, gid, true, 0, &state, &finished);
	if (rv != 0) {
		/* Not decided for commit (e.g. the deadline passed): nothing
		 * of ours may commit. */
		fprintf(stderr, PROG ": commit: %s\n", settle_client_errmsg(c));
		xa_rm_rollback(b->rm, &b->xid);
		return 1;
	}
	if (state != SETTLE__V1__TX_STATE__COMMITTING) {
		fprintf(stderr,
			PROG ": commit answered %s, not COMMITTING: the "
			     "branch is not ours to commit in one phase\n",
			settle_tx_state_name(state));
		return 1;
	}
	maybe_stop(o, STEP_COMMIT);
	rv = xa_rm_commit(b->rm, &b->xid, true);
	if (rv == 0)
		v = SETTLE__V1__XA_VOTE__ONE_PHASE_COMMITTED;
	else if (rv == XA_RM_EROLLBACK)
		v = SETTLE__V1__XA_VOTE__ONE_PHASE_ROLLED_BACK;
	else
		v = SETTLE__V1__XA_VOTE__ONE_PHASE_UNKNOWN;
	if (rv != 0)
		fprintf(stderr, PROG ": one-phase commit: %s: %s\n",
			settle_strerror(rv), xa_rm_errmsg(b->rm));
	if (vote(c, gid, b, v, rv != 0 ? xa_rm_errmsg(b->rm) : NULL, &state) !=
	    0)
		return 1;
	rv = settle_wait(c, gid, o->wait_ms, &state, &finished);
	print_outcome(state, finished);
	if (rv != 0)
		fprintf(stderr, PROG ": %s\n", settle_client_errmsg(c));
	return state == SETTLE__V1__TX_STATE__COMMITTED ? 0 : 1;
}

/* End every session (a prepared MariaDB branch is then the leader's). */
static void close_all(struct branch *br, size_t nb)
{
	for (size_t i = 0; i < nb; i++) {
		xa_rm_close(br[i].rm);
		br[i].rm = NULL;
	}
}

/*
 * Phase 2 by the initiator, once every branch voted: the decision, then
 * each prepared branch committed on its own session, then one report for
 * all (or, where a commit failed, that branch handed back to the leader).
 * Returns the exit code.
 */
static int commit_by_initiator(const struct opts *o, settle_client *c,
			       const char *gid, struct branch *br, size_t nb)
{
	int state = 0, rv;
	bool finished = false, all = true;
	size_t i;

	rv = settle_xa_commit_by_initiator(c, gid, NULL, 0, o->phase2_ms,
					   &state);
	if (rv == SETTLE_ENOMETHOD) {
		/* A cluster below feature level 6 (an older member, or one
		 * just started): the leader commits, once our sessions have
		 * let go of the branches. */
		close_all(br, nb);
		rv = settle_xa_commit(c, gid, true, o->wait_ms, &state,
				      &finished);
		if (rv != 0) {
			fprintf(stderr, PROG ": commit: %s\n",
				settle_client_errmsg(c));
			return 1;
		}
		maybe_stop(o, STEP_COMMIT);
		print_outcome(state, finished);
		return state == SETTLE__V1__TX_STATE__COMMITTING ||
			       state == SETTLE__V1__TX_STATE__COMMITTED
			   ? 0
			   : 1;
	}
	if (rv != 0) {
		fprintf(stderr, PROG ": commit: %s\n", settle_client_errmsg(c));
		close_all(br, nb);
		return 1;
	}
	maybe_stop(o, STEP_COMMIT);
	if (state == SETTLE__V1__TX_STATE__COMMITTED) {
		/* Nothing was left for phase 2 (every branch read-only). */
		print_outcome(state, true);
		return 0;
	}
	if (state != SETTLE__V1__TX_STATE__COMMITTING) {
		/* Decided otherwise before us (the deadline): the leader
		 * finishes it once our sessions let go. */
		close_all(br, nb);
		print_outcome(state, false);
		return 1;
	}
	for (i = 0; i < nb; i++) {
		if (br[i].rm == NULL)
			continue; /* read-only: nothing to commit */
		rv = xa_rm_commit(br[i].rm, &br[i].xid, false);
		if (rv == 0)
			continue;
		all = false;
		rm_fail(&br[i], "commit", rv);
		xa_rm_close(br[i].rm);
		br[i].rm = NULL;
		if (settle_xa_vote(
			c, gid, br[i].id, SETTLE__V1__XA_VOTE__PHASE2_NOT_DONE,
			"the initiator's commit failed", NULL, NULL) != 0)
			fprintf(stderr, PROG ": hand back: %s\n",
				settle_client_errmsg(c));
	}
	for (i = 0; i < nb && !all; i++)
		if (br[i].rm != NULL &&
		    settle_xa_vote(c, gid, br[i].id,
				   SETTLE__V1__XA_VOTE__PHASE2_COMMITTED, NULL,
				   NULL, NULL) != 0)
			fprintf(stderr, PROG ": report: %s\n",
				settle_client_errmsg(c));
	if (all &&
	    settle_xa_vote(c, gid, 0, SETTLE__V1__XA_VOTE__PHASE2_COMMITTED,
			   NULL, &state, NULL) != 0)
		fprintf(stderr, PROG ": report: %s\n", settle_client_errmsg(c));
	/* Where it ends (the leader commits what we handed back). */
	rv = settle_wait(c, gid, o->wait_ms, &state, &finished);
	if (rv != 0 && rv != SETTLE_ETIMEOUT) {
		fprintf(stderr, PROG ": %s\n", settle_client_errmsg(c));
		return 1;
	}
	print_outcome(state, finished);
	return state == SETTLE__V1__TX_STATE__COMMITTING ||
		       state == SETTLE__V1__TX_STATE__COMMITTED
		   ? 0
		   : 1;
}

static int run_transfer(const struct opts *o)
{
	struct branch br[2];
	size_t nb = o->single ? 1 : 2, i;
	settle_client *c = NULL;
	char gid[SETTLE_GID_BUFSIZE];
	int state = 0, rv, ret = 1;
	bool finished = false, business_failure = false;

	memset(br, 0, sizeof(br));
	if (o->single) {
		br[0].kind = o->single;
	} else {
		br[0].kind = o->from_kind;
		br[1].kind = other_kind(o->from_kind);
	}
	for (i = 0; i < nb; i++) {
		br[i].rm_name =
		    br[i].kind == XA_RM_POSTGRESQL ? o->pg_rm : o->my_rm;
		br[i].conninfo = conninfo_of(o, br[i].kind);
		if (br[i].conninfo == NULL || br[i].conninfo[0] == '\0') {
			fprintf(stderr,
				PROG ": no connection string for %s: set %s\n",
				kind_name(br[i].kind),
				br[i].kind == XA_RM_POSTGRESQL
				    ? "$SETTLE_XA_PG or --pg"
				    : "$SETTLE_XA_MARIADB or --mariadb");
			return 2;
		}
	}
	rv = settle_client_open(o->cluster, NULL, &c);
	if (rv != 0) {
		fprintf(stderr, PROG ": --cluster: %s\n", settle_strerror(rv));
		return 2;
	}
	if (example_client_tls(c, PROG, o->insecure) != 0) {
		settle_client_close(c);
		return 2;
	}
	rv = settle_xa_begin(c, NULL, NULL, 0, false, o->timeout_ms, gid,
			     sizeof(gid), NULL);
	if (rv != 0) {
		fprintf(stderr, PROG ": begin: %s\n", settle_client_errmsg(c));
		goto out;
	}
	printf("gid: %s\n", gid);
	fflush(stdout);

	for (i = 0; i < nb; i++) {
		uint8_t wire[SETTLE_XID_WIRE_MAX];
		char text[XA_XID_TEXT_MAX];
		size_t len = 0;

		rv = settle_xa_register_rm(c, gid, br[i].rm_name, &br[i].id,
					   wire, sizeof(wire), &len);
		if (rv != 0) {
			fprintf(stderr, PROG ": register %s: %s\n",
				br[i].rm_name, settle_client_errmsg(c));
			goto rollback;
		}
		rv = xa_xid_decode(wire, len, &br[i].xid);
		if (rv == 0)
			rv = xa_xid_format(&br[i].xid, text, sizeof(text));
		if (rv != 0) {
			fprintf(stderr,
				PROG ": register %s: the cluster answered an "
				     "undecodable XID (%zu bytes)\n",
				br[i].rm_name, len);
			goto rollback;
		}
		printf("branch: %u rm %s xid %s\n", br[i].id, br[i].rm_name,
		       text);
	}
	fflush(stdout);
	maybe_stop(o, STEP_REGISTER);

	/* The work, each branch on its own connection under its XID. */
	for (i = 0; i < nb; i++) {
		const char *debit = NULL, *credit = NULL;

		br[i].rm = open_rm(br[i].kind, br[i].conninfo);
		if (br[i].rm == NULL || set_lock_timeout(o, &br[i]) != 0)
			goto rollback;
		rv = xa_rm_start(br[i].rm, &br[i].xid);
		if (rv != 0) {
			rm_fail(&br[i], "start", rv);
			goto rollback;
		}
		if (o->single) {
			debit = o->from_account;
			credit = o->to_account;
		} else if (i == 0) {
			debit = o->from_account;
		} else {
			credit = o->to_account;
		}
		rv = do_work(o, &br[i], debit, credit);
		if (rv < 0)
			goto rollback;
		if (rv > 0)
			business_failure = true;
	}
	maybe_stop(o, STEP_WORK);

	if (o->single) {
		ret = run_single(o, c, gid, &br[0], business_failure);
		goto out;
	}

	/* Prepare every branch at its database; a branch whose work failed
	 * (or the last one, with --abort) is rolled back there instead and
	 * votes rollback. */
	for (i = 0; i < nb; i++) {
		bool undo =
		    br[i].why[0] != '\0' || (o->abort_vote && i == nb - 1);

		if (undo) {
			if (br[i].why[0] == '\0')
				snprintf(br[i].why, sizeof(br[i].why),
					 "aborted by the initiator");
			rv = xa_rm_rollback(br[i].rm, &br[i].xid);
			if (rv != 0) {
				rm_fail(&br[i], "rollback", rv);
				goto rollback;
			}
			br[i].vote = XA_RM_VOTE_ROLLBACK;
			continue;
		}
		rv = xa_rm_prepare(br[i].rm, &br[i].xid, &br[i].vote);
		if (rv != 0) {
			/* In doubt at the database (the connection died
			 * mid-prepare, say): a rollback vote makes the
			 * leader roll it back wherever it stands. */
			rm_fail(&br[i], "prepare", rv);
			snprintf(br[i].why, sizeof(br[i].why),
				 "prepare failed: %s", settle_strerror(rv));
			br[i].vote = XA_RM_VOTE_ROLLBACK;
			continue;
		}
		if (br[i].vote == XA_RM_VOTE_ROLLBACK)
			snprintf(br[i].why, sizeof(br[i].why),
				 "the database rolled the branch back: %s",
				 xa_rm_errmsg(br[i].rm));
		/* Phase 2 by the initiator: this session commits it. */
		if (o->phase2_ms > 0 && br[i].vote == XA_RM_VOTE_OK)
			continue;
		/* Done with this connection: MariaDB keeps a prepared branch
		 * attached to the session that prepared it, and nobody else
		 * (the leader) can commit it until that session ends. The
		 * adapter's close also lets MariaDB finish ending the session
		 * before we vote (xa/rm_mariadb.c, XA_MY_DETACH_WAIT_MS). */
		xa_rm_close(br[i].rm);
		br[i].rm = NULL;
	}
	maybe_stop(o, STEP_PREPARE);

	for (i = 0; i < nb; i++) {
		int v = br[i].vote == XA_RM_VOTE_OK
			    ? SETTLE__V1__XA_VOTE__VOTE_OK
			: br[i].vote == XA_RM_VOTE_RDONLY
			    ? SETTLE__V1__XA_VOTE__VOTE_READ_ONLY
			    : SETTLE__V1__XA_VOTE__VOTE_ROLLBACK;

		if (vote(c, gid, &br[i], v,
			 v == SETTLE__V1__XA_VOTE__VOTE_ROLLBACK ? br[i].why
								 : NULL,
			 &state) != 0)
			goto out;
		/* One rollback vote decides: the others need no vote. */
		if (v == SETTLE__V1__XA_VOTE__VOTE_ROLLBACK)
			break;
	}
	if (i < nb) {
		/* Let go of the prepared branches: the leader rolls them
		 * back. */
		close_all(br, nb);
		rv = settle_wait(c, gid, o->wait_ms, &state, &finished);
		print_outcome(state, finished);
		if (rv != 0 && rv != SETTLE_ETIMEOUT) {
			fprintf(stderr, PROG ": %s\n", settle_client_errmsg(c));
			goto out;
		}
		ret = business_failure ? 3 : o->abort_vote ? 0 : 1;
		goto out;
	}
	maybe_stop(o, STEP_VOTE);

	if (o->rollback) {
		close_all(br, nb);
		rv = settle_rollback(c, gid, "rolled back by the initiator",
				     o->wait_ms, &state, &finished);
		if (rv != 0) {
			fprintf(stderr, PROG ": rollback: %s\n",
				settle_client_errmsg(c));
			goto out;
		}
		print_outcome(state, finished);
		ret = 0;
		goto out;
	}
	if (o->phase2_ms > 0) {
		ret = commit_by_initiator(o, c, gid, br, nb);
		goto out;
	}
	rv = settle_xa_commit(c, gid, true,
			      o->stop_after == STEP_COMMIT ? 0 : o->wait_ms,
			      &state, &finished);
	if (rv != 0) {
		fprintf(stderr, PROG ": commit: %s\n", settle_client_errmsg(c));
		goto out;
	}
	maybe_stop(o, STEP_COMMIT);
	print_outcome(state, finished);
	ret = state == SETTLE__V1__TX_STATE__COMMITTING ||
		      state == SETTLE__V1__TX_STATE__COMMITTED
		  ? 0
		  : 1;
	goto out;

rollback:
	/* Our own failure before the votes: say so now rather than let the
	 * deadline find it (the leader rolls back what was prepared). */
	if (settle_rollback(c, gid, "the initiator failed", 0, NULL, NULL) != 0)
		fprintf(stderr, PROG ": rollback: %s\n",
			settle_client_errmsg(c));
	ret = 1;
out:
	for (i = 0; i < nb; i++)
		xa_rm_close(br[i].rm);
	settle_client_close(c);
	return ret;
}

int main(int argc, char **argv)
{
	static const struct option lopts[] = {
	    {"cluster", required_argument, NULL, 'c'},
	    {"amount", required_argument, NULL, 'a'},
	    {"from", required_argument, NULL, 'f'},
	    {"from-account", required_argument, NULL, 'F'},
	    {"to-account", required_argument, NULL, 'T'},
	    {"single", required_argument, NULL, 's'},
	    {"read-only", no_argument, NULL, 'r'},
	    {"abort", no_argument, NULL, 'A'},
	    {"rollback", no_argument, NULL, 'R'},
	    {"pg-rm", required_argument, NULL, 'p'},
	    {"mariadb-rm", required_argument, NULL, 'm'},
	    {"pg", required_argument, NULL, 'P'},
	    {"mariadb", required_argument, NULL, 'M'},
	    {"timeout-ms", required_argument, NULL, 't'},
	    {"wait-ms", required_argument, NULL, 'w'},
	    {"lock-timeout-ms", required_argument, NULL, 'L'},
	    {"phase2-ms", required_argument, NULL, '2'},
	    {"stop-after", required_argument, NULL, 'x'},
	    {"stop-how", required_argument, NULL, 'X'},
	    {"setup", required_argument, NULL, 'S'},
	    {"balances", required_argument, NULL, 'B'},
	    {"insecure", no_argument, NULL, 'I'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	struct opts o = {
	    .pg_rm = "pg",
	    .my_rm = "maria",
	    .from_kind = XA_RM_POSTGRESQL,
	    .from_account = "alice",
	    .to_account = "bob",
	    .wait_ms = WAIT_DEFAULT_MS,
	    .lock_timeout_ms = 5000,
	    .stop_kill = true,
	};
	char *setup = NULL, *balances = NULL;
	const char *stop_how = NULL;
	int opt;
	size_t k;

	o.pg_conninfo = getenv("SETTLE_XA_PG");
	o.my_conninfo = getenv("SETTLE_XA_MARIADB");
	while ((opt = getopt_long(argc, argv, "", lopts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			o.cluster = optarg;
			break;
		case 'I':
			o.insecure = true;
			break;
		case 'a':
			if (parse_u32("--amount", optarg, &o.amount) != 0)
				return 2;
			break;
		case 'f':
			if (parse_kind("--from", optarg, &o.from_kind) != 0)
				return 2;
			break;
		case 'F':
			o.from_account = optarg;
			break;
		case 'T':
			o.to_account = optarg;
			break;
		case 's':
			if (parse_kind("--single", optarg, &o.single) != 0)
				return 2;
			break;
		case 'r':
			o.read_only = true;
			break;
		case 'A':
			o.abort_vote = true;
			break;
		case 'R':
			o.rollback = true;
			break;
		case 'p':
			o.pg_rm = optarg;
			break;
		case 'm':
			o.my_rm = optarg;
			break;
		case 'P':
			o.pg_conninfo = optarg;
			break;
		case 'M':
			o.my_conninfo = optarg;
			break;
		case 't':
			if (parse_u32("--timeout-ms", optarg, &o.timeout_ms) !=
			    0)
				return 2;
			break;
		case '2':
			if (parse_u32("--phase2-ms", optarg, &o.phase2_ms) !=
				0 ||
			    o.phase2_ms == 0 ||
			    o.phase2_ms > SETTLE_XA_PHASE2_MAX_MS) {
				fprintf(stderr,
					PROG ": --phase2-ms must be 1..%d\n",
					SETTLE_XA_PHASE2_MAX_MS);
				return 2;
			}
			break;
		case 'w':
			if (parse_u32("--wait-ms", optarg, &o.wait_ms) != 0)
				return 2;
			break;
		case 'L':
			if (parse_u32("--lock-timeout-ms", optarg,
				      &o.lock_timeout_ms) != 0)
				return 2;
			if (o.lock_timeout_ms == 0) {
				fprintf(stderr, PROG ": --lock-timeout-ms "
						     "must be > 0\n");
				return 2;
			}
			break;
		case 'x':
			for (k = 1;
			     k < sizeof(step_names) / sizeof(*step_names); k++)
				if (strcmp(optarg, step_names[k]) == 0)
					o.stop_after = (enum step)k;
			if (o.stop_after == STEP_NONE) {
				fprintf(stderr,
					PROG ": --stop-after wants register, "
					     "work, prepare, vote or commit\n");
				return 2;
			}
			break;
		case 'X':
			stop_how = optarg;
			break;
		case 'S':
			setup = optarg;
			break;
		case 'B':
			balances = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	if (setup != NULL || balances != NULL) {
		if (setup != NULL && balances != NULL) {
			fprintf(stderr,
				PROG ": --setup or --balances, not both\n");
			return 2;
		}
		return setup ? run_setup(&o, setup)
			     : run_balances(&o, balances);
	}
	if (stop_how != NULL) {
		if (strcmp(stop_how, "exit") == 0)
			o.stop_kill = false;
		else if (strcmp(stop_how, "kill") != 0) {
			fprintf(stderr, PROG ": --stop-how wants exit or "
					     "kill\n");
			return 2;
		}
	}
	if (o.cluster == NULL || (o.amount == 0 && !o.read_only)) {
		usage(stderr);
		return 2;
	}
	if (!account_ok(o.from_account, strlen(o.from_account)) ||
	    !account_ok(o.to_account, strlen(o.to_account))) {
		fprintf(stderr,
			PROG ": account names are [A-Za-z0-9_]{1,64}\n");
		return 2;
	}
	if (o.single && strcmp(o.from_account, o.to_account) == 0) {
		fprintf(stderr, PROG ": --single needs two different "
				     "accounts\n");
		return 2;
	}
	if ((o.abort_vote && o.rollback) ||
	    (o.read_only && (o.single || o.rollback || o.abort_vote))) {
		fprintf(stderr, PROG ": --abort and --rollback exclude each "
				     "other; --read-only takes neither, nor "
				     "--single\n");
		return 2;
	}
	if (o.single && (o.rollback || o.stop_after == STEP_PREPARE ||
			 o.stop_after == STEP_VOTE)) {
		fprintf(stderr, PROG ": --single has no prepare or vote step "
				     "and takes no --rollback\n");
		return 2;
	}
	return run_transfer(&o);
}

/*
 * xa_util.c — helpers of the XA integration tests; see xa_util.h.
 */
#include "xa_util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "coord_util.h"

#define XU_TABLE "settle_xa_accounts"

static char xu__tag[32];
static settle_client *xu__clients[8];
static size_t xu__nclients;

void xu_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void xu_setup(void)
{
	it_setup();
	/* The example reads its connections from the environment, never
	 * from argv (ps would show them). */
	setenv("SETTLE_XA_PG", xt_conninfo(XU_PG), 1);
	setenv("SETTLE_XA_MARIADB", xt_conninfo(XU_MY), 1);
	/* Account names are [A-Za-z0-9_]: the tag becomes part of them. */
	snprintf(xu__tag, sizeof(xu__tag), "t%ld_%d",
		 (long)(time(NULL) % 100000), (int)getpid());
}

void xu_teardown(void)
{
	size_t i;

	for (i = 0; i < xu__nclients; i++)
		settle_client_close(xu__clients[i]);
	xu__nclients = 0;
	it_teardown();
}

const char *xu_tag(void)
{
	return xu__tag;
}

const char *const *xu_node_args(const char *const *extra)
{
	static char pg[1200], my[1200];
	static const char *args[IT_MAX_ARGS];
	size_t i = 0;

	snprintf(pg, sizeof(pg), XU_RM_PG "=pg:%s", xt_conninfo(XU_PG));
	snprintf(my, sizeof(my), XU_RM_MY "=mariadb:%s", xt_conninfo(XU_MY));
	args[i++] = "--xa-rm";
	args[i++] = pg;
	args[i++] = "--xa-rm";
	args[i++] = my;
	args[i++] = "--xa-recover-interval";
	args[i++] = "1s";
	/* A database that is down is retried soon after it is back. */
	args[i++] = "--retry-base";
	args[i++] = "100ms";
	args[i++] = "--retry-max";
	args[i++] = "500ms";
	while (extra && *extra && i < IT_MAX_ARGS - 1)
		args[i++] = *extra++;
	args[i] = NULL;
	return args;
}

void xu_node_start(struct it_node *n, int id, const char *const *extra)
{
	it_node_start(n, id, xu_node_args(extra));
}

struct xa_rm *xu_rm(enum xa_rm_kind kind)
{
	char err[512] = "";
	struct xa_rm *rm = NULL;
	int rv = xa_rm_open(kind, xt_conninfo(kind), &rm, err, sizeof(err));

	/* A test that failed between killing and restarting a server left
	 * it down. */
	if (rv == XA_RM_ETRANSIENT && xt_servers_start() == 0)
		rv = xa_rm_open(kind, xt_conninfo(kind), &rm, err, sizeof(err));
	cr_assert_eq(rv, 0, "connect to %s: %s (%s)",
		     kind == XU_PG ? "postgresql" : "mariadb",
		     settle_strerror(rv), err);
	return rm;
}

static void xu__exec(struct xa_rm *rm, const char *sql)
{
	int rv = xa_rm_exec(rm, sql);

	cr_assert_eq(rv, 0, "%s: %s: %s", xa_rm_name(rm), settle_strerror(rv),
		     xa_rm_errmsg(rm));
}

static void xu__table(struct xa_rm *rm)
{
	xu__exec(rm, "CREATE TABLE IF NOT EXISTS " XU_TABLE " ("
		     "name VARCHAR(64) PRIMARY KEY, balance BIGINT NOT NULL)");
}

void xu_table(enum xa_rm_kind kind)
{
	struct xa_rm *rm = xu_rm(kind);

	xu__table(rm);
	xa_rm_close(rm);
}

void xu_account(enum xa_rm_kind kind, const char *name, int64_t balance)
{
	struct xa_rm *rm = xu_rm(kind);
	char sql[300];

	xu__table(rm);
	snprintf(sql, sizeof(sql), "DELETE FROM " XU_TABLE " WHERE name = '%s'",
		 name);
	xu__exec(rm, sql);
	snprintf(sql, sizeof(sql),
		 "INSERT INTO " XU_TABLE " (name, balance) VALUES ('%s', %lld)",
		 name, (long long)balance);
	xu__exec(rm, sql);
	xa_rm_close(rm);
}

int64_t xu_balance(enum xa_rm_kind kind, const char *name)
{
	struct xa_rm *rm = xu_rm(kind);
	char sql[300];
	int64_t v = -2;
	int rv;

	snprintf(sql, sizeof(sql),
		 "SELECT COALESCE((SELECT balance FROM " XU_TABLE
		 " WHERE name = '%s'), -1)",
		 name);
	rv = xa_rm_query_int(rm, sql, &v);
	cr_assert_eq(rv, 0, "balance: %s", xa_rm_errmsg(rm));
	xa_rm_close(rm);
	return v;
}

size_t xu_in_doubt(enum xa_rm_kind kind, const char *gid)
{
	struct xa_rm *rm = xu_rm(kind);
	struct xa_xid *all = NULL;
	size_t n = 0, i, hits = 0, glen = strlen(gid);
	int rv = xa_rm_recover(rm, XA_RM_ANY_FORMAT, &all, &n);

	cr_assert_eq(rv, 0, "recover at %s: %s", xa_rm_name(rm),
		     xa_rm_errmsg(rm));
	for (i = 0; i < n; i++)
		if (all[i].gtrid_len == glen &&
		    memcmp(xa_xid_gtrid(&all[i]), gid, glen) == 0)
			hits++;
	free(all);
	xa_rm_close(rm);
	return hits;
}

bool xu_prepared(enum xa_rm_kind kind, const struct xa_xid *xid)
{
	struct xa_rm *rm = xu_rm(kind);
	struct xa_xid *all = NULL;
	size_t n = 0, i;
	bool found = false;
	int rv = xa_rm_recover(rm, XA_RM_ANY_FORMAT, &all, &n);

	cr_assert_eq(rv, 0, "recover at %s: %s", xa_rm_name(rm),
		     xa_rm_errmsg(rm));
	for (i = 0; i < n; i++)
		if (xa_xid_equal(&all[i], xid))
			found = true;
	free(all);
	xa_rm_close(rm);
	return found;
}

int xu_transfer(const char *endpoints, const char *const *args, char *gid,
		char **out)
{
	char *argv[IT_MAX_ARGS + 1];
	char *o = NULL, *e = NULL;
	const char *g;
	size_t i = 0;
	int st;

	argv[i++] = (char *)it_bin("settle-xa-transfer");
	argv[i++] = "--cluster";
	argv[i++] = (char *)endpoints;
	while (args && *args && i < IT_MAX_ARGS)
		argv[i++] = (char *)*args++;
	argv[i] = NULL;
	st = it_run(argv, &o, &e, 30000);
	if (gid != NULL) {
		gid[0] = '\0';
		g = strstr(o, "gid: ");
		if (g != NULL)
			sscanf(g + 5, "%128s", gid);
	}
	/* Shown in the test's output, a help when an assertion fails. */
	fprintf(stderr,
		"settle-xa-transfer exit %d\n--- stdout\n%s--- stderr\n%s", st,
		o, e);
	/* Connection strings are never printed. */
	cr_assert(strstr(o, xt_conninfo(XU_PG)) == NULL &&
		      strstr(e, xt_conninfo(XU_PG)) == NULL &&
		      strstr(o, xt_conninfo(XU_MY)) == NULL &&
		      strstr(e, xt_conninfo(XU_MY)) == NULL,
		  "settle-xa-transfer printed a connection string");
	cr_assert(strstr(e, "Sanitizer") == NULL &&
		      strstr(e, "runtime error:") == NULL,
		  "settle-xa-transfer: a sanitizer report (above)");
	free(e);
	if (out != NULL)
		*out = o;
	else
		free(o);
	return st;
}

void xu_transfer_start(struct xu_run *r, const char *endpoints,
		       const char *const *args)
{
	static unsigned seq;
	char *argv[IT_MAX_ARGS + 1];
	size_t i = 0;
	int fd;

	argv[i++] = (char *)it_bin("settle-xa-transfer");
	argv[i++] = "--cluster";
	argv[i++] = (char *)endpoints;
	while (args && *args && i < IT_MAX_ARGS)
		argv[i++] = (char *)*args++;
	argv[i] = NULL;
	snprintf(r->out, sizeof(r->out), "%s/xa-transfer-%u.out", it_dir(),
		 seq++);
	fd = open(r->out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	cr_assert(fd >= 0, "open %s: %s", r->out, strerror(errno));
	r->pid = fork();
	cr_assert(r->pid >= 0, "fork: %s", strerror(errno));
	if (r->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(fd, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fd);
}

int xu_transfer_wait(struct xu_run *r, char *gid, int timeout_ms)
{
	char line[512];
	int st = 0, waited = 0;
	FILE *f;
	pid_t got;

	while ((got = waitpid(r->pid, &st, WNOHANG)) == 0 &&
	       waited < timeout_ms) {
		xu_sleep_ms(20);
		waited += 20;
	}
	if (got == 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
		cr_assert_fail("settle-xa-transfer (%s) still running after %d "
			       "ms",
			       r->out, timeout_ms);
	}
	gid[0] = '\0';
	f = fopen(r->out, "r");
	cr_assert_not_null(f, "%s", r->out);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, "gid: ", 5) == 0)
			sscanf(line + 5, "%128s", gid);
	fclose(f);
	return WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
}

settle_client *xu_client(const char *endpoints)
{
	struct settle_client_opts opts = {.retry_budget_ms = 20000};
	settle_client *c = NULL;

	cr_assert(xu__nclients < sizeof(xu__clients) / sizeof(*xu__clients));
	cr_assert_eq(settle_client_open(endpoints, &opts, &c), 0);
	xu__clients[xu__nclients++] = c;
	return c;
}

Settle__V1__TxInfo *xu_query(settle_client *c, const char *gid)
{
	Settle__V1__TxInfo *tx = NULL;
	int rv = settle_query(c, gid, false, &tx);

	cr_assert_eq(rv, 0, "query %s: %s", gid, settle_client_errmsg(c));
	return tx;
}

const Settle__V1__BranchInfo *xu_branch(const Settle__V1__TxInfo *tx,
					const char *rm)
{
	size_t i;

	for (i = 0; i < tx->n_branches; i++)
		if (tx->branches[i]->rm && strcmp(tx->branches[i]->rm, rm) == 0)
			return tx->branches[i];
	cr_assert_fail("%s has no branch on %s: %s", tx->gid, rm,
		       xu_describe(tx));
	return NULL;
}

const char *xu_describe(const Settle__V1__TxInfo *tx)
{
	static char buf[2048];
	size_t len, i;

	len = (size_t)snprintf(
	    buf, sizeof(buf), "%s %s heuristic %s reason '%s'", tx->gid,
	    settle_tx_state_name(tx->state),
	    settle_heuristic_name(tx->heuristic), tx->reason ? tx->reason : "");
	for (i = 0; i < tx->n_branches && len < sizeof(buf); i++) {
		const Settle__V1__BranchInfo *b = tx->branches[i];

		len += (size_t)snprintf(
		    buf + len, sizeof(buf) - len,
		    "; branch %u rm %s xid %s %s attempts %u heuristic %s "
		    "error '%s'",
		    b->branch_id, b->rm ? b->rm : "", b->xid ? b->xid : "",
		    settle_branch_state_name(b->state), b->attempts,
		    settle_heuristic_name(b->heuristic),
		    b->last_error ? b->last_error : "");
	}
	return buf;
}

static uint64_t xu__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void xu_wait_state(settle_client *c, struct it_proc *p, const char *gid,
		   int state, int timeout_ms)
{
	uint64_t end = xu__now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		Settle__V1__TxInfo *tx = xu_query(c, gid);

		if ((int)tx->state == state) {
			settle_tx_info_free(tx);
			return;
		}
		if (xu__now_ms() > end) {
			char what[2048];

			snprintf(what, sizeof(what), "%s", xu_describe(tx));
			settle_tx_info_free(tx);
			if (p != NULL)
				it_show_log(p);
			cr_assert_fail("%s not %s after %d ms: %s", gid,
				       settle_tx_state_name(state), timeout_ms,
				       what);
		}
		settle_tx_info_free(tx);
		xu_sleep_ms(100);
	}
}

void xu_wait_branch(settle_client *c, struct it_proc *p, const char *gid,
		    const char *rm, int branch_state, uint32_t min_attempts,
		    int timeout_ms)
{
	uint64_t end = xu__now_ms() + (uint64_t)timeout_ms;

	for (;;) {
		Settle__V1__TxInfo *tx = xu_query(c, gid);
		const Settle__V1__BranchInfo *b = xu_branch(tx, rm);

		if ((int)b->state == branch_state &&
		    b->attempts >= min_attempts) {
			settle_tx_info_free(tx);
			return;
		}
		if (xu__now_ms() > end) {
			char what[2048];

			snprintf(what, sizeof(what), "%s", xu_describe(tx));
			settle_tx_info_free(tx);
			if (p != NULL)
				it_show_log(p);
			cr_assert_fail("branch on %s of %s not %s with >= %u "
				       "attempts after %d ms: %s",
				       rm, gid,
				       settle_branch_state_name(branch_state),
				       min_attempts, timeout_ms, what);
		}
		settle_tx_info_free(tx);
		xu_sleep_ms(100);
	}
}

void xu_assert_clean(const struct it_proc *p)
{
	char first[512] = "";

	cr_assert(!cu_log_has_sanitizer_report(p->log, first, sizeof(first)),
		  "%s: %s", p->name, first);
}

struct xu_accounts xu_open_accounts(int64_t pg_balance, int64_t my_balance)
{
	struct xu_accounts a;

	snprintf(a.pg, sizeof(a.pg), "a_%s", xu_tag());
	snprintf(a.my, sizeof(a.my), "b_%s", xu_tag());
	xu_account(XU_PG, a.pg, pg_balance);
	xu_account(XU_MY, a.my, my_balance);
	return a;
}

void xu_expect_balances(const struct xu_accounts *a, int64_t pg, int64_t my)
{
	int64_t p = xu_balance(XU_PG, a->pg), m = xu_balance(XU_MY, a->my);

	cr_assert_eq(p, pg, "PostgreSQL balance %lld, expected %lld",
		     (long long)p, (long long)pg);
	cr_assert_eq(m, my, "MariaDB balance %lld, expected %lld", (long long)m,
		     (long long)my);
}

void xu_expect_nothing_in_doubt(const char *gid)
{
	size_t p = xu_in_doubt(XU_PG, gid), m = xu_in_doubt(XU_MY, gid);

	cr_assert_eq(p, 0, "%zu XIDs of %s still prepared in PostgreSQL", p,
		     gid);
	cr_assert_eq(m, 0, "%zu XIDs of %s still prepared in MariaDB", m, gid);
}

void xu_expect_branch(const Settle__V1__TxInfo *tx, const char *rm, int state)
{
	const Settle__V1__BranchInfo *b = xu_branch(tx, rm);

	cr_assert_eq((int)b->state, state, "branch on %s: %s, expected %s", rm,
		     xu_describe(tx), settle_branch_state_name(state));
}

void xu_transfer_ok(const char *endpoints, const struct xu_accounts *a,
		    bool from_pg, const char *amount, char *gid)
{
	int st = xu_transfer(endpoints,
			     XU_ARGS("--from", from_pg ? "pg" : "mariadb",
				     "--from-account", from_pg ? a->pg : a->my,
				     "--to-account", from_pg ? a->my : a->pg,
				     "--amount", amount),
			     gid, NULL);

	cr_assert_eq(st, 0, "settle-xa-transfer exit %d", st);
	cr_assert(gid[0] != '\0', "settle-xa-transfer printed no gid");
}

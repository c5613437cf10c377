/*
 * xa_util.h — helpers of the XA integration tests (test_xa_tm.c): settled
 * driving the real PostgreSQL and MariaDB test servers (xa/tests/servers.h)
 * as the transaction manager, the demo initiator settle-xa-transfer, and
 * what the tests check at the databases themselves: balances and in-doubt
 * (prepared) XIDs.
 *
 * Every function that fails aborts the current test with a Criterion
 * assertion saying what went wrong, as the harness does.
 */
#ifndef SETTLE_IT_XA_UTIL_H
#define SETTLE_IT_XA_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "error.h"

#include "settle.h"

#include "harness.h"
#include "xa/rm.h"
#include "xa/tests/servers.h"

#define XU_PG XA_RM_POSTGRESQL
#define XU_MY XA_RM_MARIADB

/* The cluster's formatID (settled's default: "STLE"). */
#define XU_FORMAT_ID 0x53544c45

/* The names settled knows the databases by (--xa-rm), as
 * settle-xa-transfer expects them by default. */
#define XU_RM_PG "pg"
#define XU_RM_MY "maria"

/*
 * Per test: the harness's scratch directory, the example's environment
 * ($SETTLE_XA_PG, $SETTLE_XA_MARIADB), and a unique tag for this test's
 * accounts. Call first (from a Criterion .init).
 */
void xu_setup(void);
void xu_teardown(void);
const char *xu_tag(void);

/*
 * The settled arguments of an XA node (NULL-terminated, static storage
 * until the next call): --xa-rm for both servers, a 1 s recovery scan,
 * fast retries; then extra (may be NULL).
 */
const char *const *xu_node_args(const char *const *extra);

/* it_node_start() with xu_node_args(extra). */
void xu_node_start(struct it_node *n, int id, const char *const *extra);

/* A fresh connection to a test server (restarts it if a test left it
 * down). Close with xa_rm_close(). */
struct xa_rm *xu_rm(enum xa_rm_kind kind);

/* The example's table (settle_xa_accounts) in the database of kind. */
void xu_table(enum xa_rm_kind kind);

/* The example's table in the database of kind, with account name at balance in
 * the database of kind (replaced if it exists). */
void xu_account(enum xa_rm_kind kind, const char *name, int64_t balance);

/* An account's balance, read outside any branch; -1 when absent. */
int64_t xu_balance(enum xa_rm_kind kind, const char *name);

/* How many XIDs prepared at the database of kind have gtrid == gid
 * (whatever their formatID): pg_prepared_xacts / XA RECOVER. */
size_t xu_in_doubt(enum xa_rm_kind kind, const char *gid);

/* Is exactly xid prepared at the database of kind? */
bool xu_prepared(enum xa_rm_kind kind, const struct xa_xid *xid);

/*
 * Run settle-xa-transfer against the cluster at endpoints with the
 * arguments args (NULL-terminated; --cluster is added). Its stdout goes to *out
 * when out is not NULL (malloc'd, the caller frees), and the gid it printed to
 * gid
 * ("" if none; gid holds SETTLE_GID_BUFSIZE). Returns its exit status
 * (128 + signal when killed).
 */
int xu_transfer(const char *endpoints, const char *const *args, char *gid,
		char **out);

/* settle-xa-transfer running in the background (xu_transfer_start). */
struct xu_run {
	pid_t pid;
	char out[600]; /* its stdout and stderr */
};

/* Start settle-xa-transfer like xu_transfer(), without waiting. */
void xu_transfer_start(struct xu_run *r, const char *endpoints,
		       const char *const *args);

/* Wait up to timeout_ms for it (fails the test after); its gid to gid
 * ("" if none). Returns its exit status (128 + signal when killed). */
int xu_transfer_wait(struct xu_run *r, char *gid, int timeout_ms);

/* A libsettle handle on the cluster at endpoints (closed by
 * xu_teardown). */
settle_client *xu_client(const char *endpoints);

/* Query gid (no history); the caller frees with settle_tx_info_free(). */
Settle__V1__TxInfo *xu_query(settle_client *c, const char *gid);

/* The branch of tx whose rm is name (fails the test when none). */
const Settle__V1__BranchInfo *xu_branch(const Settle__V1__TxInfo *tx,
					const char *rm);

/*
 * Wait up to timeout_ms until gid is in state; fails the test showing the
 * transaction (state, branches, errors) and the log of the settled
 * process p (may be NULL) otherwise.
 */
void xu_wait_state(settle_client *c, struct it_proc *p, const char *gid,
		   int state, int timeout_ms);

/*
 * Wait up to timeout_ms until the branch on rm of gid is in branch_state
 * with at least min_attempts phase-2 attempts; fails the test otherwise.
 */
void xu_wait_branch(settle_client *c, struct it_proc *p, const char *gid,
		    const char *rm, int branch_state, uint32_t min_attempts,
		    int timeout_ms);

/* Fail the test if settled process p's log holds a sanitizer report. */
void xu_assert_clean(const struct it_proc *p);

/* One line describing tx, for assertion messages (static buffer). */
const char *xu_describe(const Settle__V1__TxInfo *tx);

/* A list of arguments, NULL-terminated, for xu_transfer() and friends. */
#define XU_ARGS(...)                                                           \
	(const char *const[])                                                  \
	{                                                                      \
		__VA_ARGS__, NULL                                              \
	}

/* A test's two accounts: pg in PostgreSQL, my in MariaDB. */
struct xu_accounts {
	char pg[64], my[64];
};

/* Create them (named after xu_tag()) with these balances. */
struct xu_accounts xu_open_accounts(int64_t pg_balance, int64_t my_balance);

/* Fail the test unless the two balances are pg and my. */
void xu_expect_balances(const struct xu_accounts *a, int64_t pg, int64_t my);

/* Fail the test if an XID of gid is still prepared in either database. */
void xu_expect_nothing_in_doubt(const char *gid);

/* Fail the test unless tx's branch on rm is in state. */
void xu_expect_branch(const Settle__V1__TxInfo *tx, const char *rm, int state);

/* The two-branch transfer of amount from a's PostgreSQL account to its
 * MariaDB one (or back), which must commit (exit 0); its gid to gid. */
void xu_transfer_ok(const char *endpoints, const struct xu_accounts *a,
		    bool from_pg, const char *amount, char *gid);

void xu_sleep_ms(int ms);

#endif /* SETTLE_IT_XA_UTIL_H */

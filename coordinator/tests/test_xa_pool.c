/*
 * coordinator/xa_pool.c against the real test servers: jobs answer on the
 * loop thread exactly once, an unreachable RM is transient, cancel and
 * close answer what has not run, and a closed pool lets the loop end.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coordinator/config.h"
#include "coordinator/xa_pool.h"
#include "error.h"
#include "servers.h"
#include "xa/rm.h"
#include "xa/xid.h"

#define FID 0x53544c45

TestSuite(xa_pool, .timeout = 60);

struct answers {
	int n;
	int rv[64];
	size_t n_xids[64];
	char err[64][256];
	bool found; /* recover: the XID we look for was listed */
	struct xa_xid want;
	uv_thread_t loop_thread;
};

static struct answers ans;

static void on_answer(void *data, const struct coord_xa_answer *a)
{
	int i = (int)(intptr_t)data;

	cr_assert(uv_thread_self() == ans.loop_thread,
		  "answer off the loop thread");
	cr_assert(i >= 0 && i < 64);
	cr_assert_eq(ans.rv[i], 1, "job %d answered twice", i);
	ans.rv[i] = a->rv;
	ans.n_xids[i] = a->n_xids;
	cr_assert_not_null(a->errmsg);
	snprintf(ans.err[i], sizeof ans.err[i], "%s", a->errmsg);
	for (size_t k = 0; k < a->n_xids; k++)
		if (xa_xid_equal(&a->xids[k], &ans.want))
			ans.found = true;
	ans.n++;
}

static void config(struct coord_config *cfg, bool dead)
{
	char err[512];
	char spec[1200];

	memset(cfg, 0, sizeof *cfg);
	snprintf(spec, sizeof spec, "pg=pg:%s", xt_conninfo(XA_RM_POSTGRESQL));
	cr_assert_eq(coord_config_add_xa_rm(cfg, spec, "t", err, sizeof err), 0,
		     "%s", err);
	snprintf(spec, sizeof spec, "my=mariadb:%s",
		 xt_conninfo(XA_RM_MARIADB));
	cr_assert_eq(coord_config_add_xa_rm(cfg, spec, "t", err, sizeof err), 0,
		     "%s", err);
	if (dead)
		cr_assert_eq(coord_config_add_xa_rm(
				 cfg,
				 "dead=pg:host=127.0.0.1 port=1 user=x "
				 "password=s3cret",
				 "t", err, sizeof err),
			     0, "%s", err);
}

static void setup(void)
{
	memset(&ans, 0, sizeof ans);
	for (int i = 0; i < 64; i++)
		ans.rv[i] = 1; /* not answered */
	ans.loop_thread = uv_thread_self();
}

Test(xa_pool, many_jobs_on_two_rms_each_answer_once, .init = setup)
{
	static struct coord_config cfg;
	struct coord_xa_pool *p;
	uv_loop_t loop;
	struct xa_xid x;
	char g[32];

	config(&cfg, false);
	uv_loop_init(&loop);
	cr_assert_eq(coord_xa_pool_init(&loop, &cfg, &p), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(g, sizeof g, "pool-%d-%d", (int)getpid(), i);
		cr_assert_eq(xa_xid_init(&x, FID, g, strlen(g), "1", 1), 0);
		cr_assert_eq(coord_xa_pool_submit(p, i % 2 ? "my" : "pg",
						  i % 4 < 2 ? COORD_XA_COMMIT
							    : COORD_XA_ROLLBACK,
						  &x, 0, on_answer,
						  (void *)(intptr_t)i),
			     0);
	}
	cr_expect_eq(ans.n, 0, "answered from inside submit");
	/* One call per XID at a time, whatever the verb. */
	cr_expect_eq(coord_xa_pool_submit(p, "my", COORD_XA_ROLLBACK, &x, 0,
					  on_answer, (void *)(intptr_t)62),
		     SETTLE_EEXISTS);
	cr_expect_eq(coord_xa_pool_pending(p), 40);
	cr_expect_eq(coord_xa_pool_submit(p, "nope", COORD_XA_COMMIT, &x, 0,
					  on_answer, (void *)(intptr_t)63),
		     SETTLE_ENOTFOUND);
	while (ans.n < 40)
		uv_run(&loop, UV_RUN_ONCE);
	/* Nobody prepared those XIDs. */
	for (int i = 0; i < 40; i++)
		cr_expect_eq(ans.rv[i], XA_RM_ENOTA, "job %d: %d", i,
			     ans.rv[i]);
	cr_expect_eq(coord_xa_pool_pending(p), 0);
	coord_xa_pool_close(p);
	cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	cr_expect_eq(uv_loop_close(&loop), 0);
}

Test(xa_pool, recover_lists_a_prepared_xid_and_commit_finishes_it,
     .init = setup)
{
	static struct coord_config cfg;
	struct coord_xa_pool *p;
	struct xa_rm *rm = NULL;
	enum xa_rm_vote vote;
	uv_loop_t loop;
	char g[32], err[512];

	config(&cfg, false);
	snprintf(g, sizeof g, "poolrec-%d", (int)getpid());
	cr_assert_eq(xa_xid_init(&ans.want, FID, g, strlen(g), "1", 1), 0);
	cr_assert_eq(xa_rm_open(XA_RM_MARIADB, xt_conninfo(XA_RM_MARIADB), &rm,
				err, sizeof err),
		     0, "%s", err);
	cr_assert_eq(xa_rm_exec(rm, "CREATE TABLE IF NOT EXISTS pool_t (a INT) "
				    "ENGINE=InnoDB"),
		     0);
	cr_assert_eq(xa_rm_start(rm, &ans.want), 0);
	/* A write: MariaDB answers XA_RBROLLBACK to the commit of a branch
	 * that changed nothing. */
	cr_assert_eq(xa_rm_exec(rm, "INSERT INTO pool_t VALUES (1)"), 0);
	cr_assert_eq(xa_rm_prepare(rm, &ans.want, &vote), 0);
	xa_rm_close(rm); /* MariaDB: detach the prepared branch */

	uv_loop_init(&loop);
	cr_assert_eq(coord_xa_pool_init(&loop, &cfg, &p), 0);
	cr_assert_eq(coord_xa_pool_submit(p, "my", COORD_XA_RECOVER, NULL, FID,
					  on_answer, (void *)(intptr_t)0),
		     0);
	while (ans.n < 1)
		uv_run(&loop, UV_RUN_ONCE);
	cr_expect_eq(ans.rv[0], 0);
	cr_expect(ans.found, "prepared XID not listed (%zu listed)",
		  ans.n_xids[0]);
	cr_assert_eq(coord_xa_pool_submit(p, "my", COORD_XA_COMMIT, &ans.want,
					  0, on_answer, (void *)(intptr_t)1),
		     0);
	while (ans.n < 2)
		uv_run(&loop, UV_RUN_ONCE);
	cr_expect_eq(ans.rv[1], 0, "%d %s", ans.rv[1], ans.err[1]);
	coord_xa_pool_close(p);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
}

Test(xa_pool, unreachable_rm_is_transient_and_cancel_answers_the_queue,
     .init = setup)
{
	static struct coord_config cfg;
	struct coord_xa_pool *p;
	uv_loop_t loop;
	struct xa_xid x;
	int cancelled = 0, transient = 0;

	config(&cfg, true);
	cr_assert_eq(xa_xid_init(&x, FID, "g", 1, "1", 1), 0);
	uv_loop_init(&loop);
	cr_assert_eq(coord_xa_pool_init(&loop, &cfg, &p), 0);
	for (int i = 0; i < 10; i++) {
		char b = (char)('0' + i);

		cr_assert_eq(xa_xid_init(&x, FID, "g", 1, &b, 1), 0);
		cr_assert_eq(coord_xa_pool_submit(p, "dead", COORD_XA_COMMIT,
						  &x, 0, on_answer,
						  (void *)(intptr_t)i),
			     0);
	}
	/* At most COORD_XA_POOL_PER_RM run; the rest wait and are
	 * answered at once by cancel. */
	coord_xa_pool_cancel(p);
	cr_expect_eq(ans.n, 10 - COORD_XA_POOL_PER_RM);
	while (ans.n < 10)
		uv_run(&loop, UV_RUN_ONCE);
	for (int i = 0; i < 10; i++) {
		cancelled += ans.rv[i] == SETTLE_ECANCELED;
		transient += ans.rv[i] == XA_RM_ETRANSIENT;
	}
	cr_expect_eq(cancelled, 10 - COORD_XA_POOL_PER_RM);
	cr_expect_eq(transient, COORD_XA_POOL_PER_RM);
	coord_xa_pool_close(p);
	uv_run(&loop, UV_RUN_DEFAULT);
	uv_loop_close(&loop);
}

Test(xa_pool, close_answers_running_jobs_and_lets_the_loop_end, .init = setup)
{
	static struct coord_config cfg;
	struct coord_xa_pool *p;
	uv_loop_t loop;
	struct xa_xid x;

	config(&cfg, false);
	cr_assert_eq(xa_xid_init(&x, FID, "g", 1, "1", 1), 0);
	uv_loop_init(&loop);
	cr_assert_eq(coord_xa_pool_init(&loop, &cfg, &p), 0);
	for (int i = 0; i < 8; i++) {
		char b = (char)('1' + i);

		cr_assert_eq(xa_xid_init(&x, FID, "g", 1, &b, 1), 0);
		cr_assert_eq(coord_xa_pool_submit(
				 p, i % 2 ? "my" : "pg", COORD_XA_ROLLBACK, &x,
				 0, on_answer, (void *)(intptr_t)i),
			     0);
	}
	coord_xa_pool_close(p);
	cr_expect_eq(ans.n, 8, "close answers everything at once");
	for (int i = 0; i < 8; i++)
		cr_expect_eq(ans.rv[i], SETTLE_ECANCELED);
	/* Running jobs finish on their workers; nothing answers again. */
	cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
	cr_expect_eq(ans.n, 8);
	cr_expect_eq(uv_loop_close(&loop), 0);
}

int main(int argc, char *argv[])
{
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;

	criterion_options.jobs = 1;
	if (criterion_handle_args(argc, argv, true)) {
		if (xt_servers_setup() != 0) {
			fprintf(stderr, "xa pool tests: FAIL: no XA servers\n");
			xt_servers_teardown();
			criterion_finalize(tests);
			return 1;
		}
		result = !criterion_run_all_tests(tests);
		xt_servers_teardown();
	}
	criterion_finalize(tests);
	return result;
}

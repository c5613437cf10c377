/* The participant SDK in-process: a real RPC server on its own thread,
 * called with libsettle's client, handlers inside the barrier. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#include "settle_participant.h"

#include "log.h"

static char dir[64];
static MDB_env *env;
static MDB_dbi data_dbi;
static settle_participant *part;
static settle_client *cli;
static char ep[64];
static atomic_int calls[4]; /* handler runs per op */
static atomic_int null_txn;

/* Add one to counter name in the business table, in the caller's txn. */
static int bump(MDB_txn *txn, const char *name)
{
	MDB_val k = {strlen(name), (void *)name};
	MDB_val v;
	uint64_t n = 0;
	if (mdb_get(txn, data_dbi, &k, &v) == 0)
		memcpy(&n, v.mv_data, sizeof(n));
	n++;
	v.mv_size = sizeof(n);
	v.mv_data = &n;
	return mdb_put(txn, data_dbi, &k, &v, 0) == 0 ? 0 : SETTLE_ERETRY;
}

static uint64_t counter(const char *name)
{
	MDB_txn *txn;
	MDB_val k = {strlen(name), (void *)name};
	MDB_val v;
	uint64_t n = 0;
	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	if (mdb_get(txn, data_dbi, &k, &v) == 0)
		memcpy(&n, v.mv_data, sizeof(n));
	mdb_txn_abort(txn);
	return n;
}

static int handler(void *data, const struct settle_branch *b, MDB_txn *txn,
		   char *err, size_t errlen)
{
	calls[b->op]++;
	if (txn == NULL) {
		null_txn++;
		return 0;
	}
	int rv = bump(txn, b->op == SETTLE_OP_TRY	? "try"
			   : b->op == SETTLE_OP_CONFIRM ? "confirm"
							: "cancel");
	if (b->len == 4 && memcmp(b->payload, "fail", 4) == 0) {
		snprintf(err, errlen, "nope");
		return SETTLE_EFAILURE;
	}
	if (b->len == 5 && memcmp(b->payload, "retry", 5) == 0) {
		snprintf(err, errlen, "later");
		return SETTLE_ERETRY;
	}
	return rv;
}

static void start(bool with_env)
{
	struct settle_participant_config cfg = {
	    .listen = "127.0.0.1:0",
	    .on_try = handler,
	    .on_confirm = handler,
	    .on_cancel = handler,
	};
	MDB_txn *txn;

	strcpy(dir, "/tmp/settle-part-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	cr_assert_eq(mdb_env_create(&env), 0);
	cr_assert_eq(mdb_env_set_maxdbs(env, 4), 0);
	cr_assert_eq(mdb_env_open(env, dir, 0, 0600), 0);
	cr_assert_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, "data", MDB_CREATE, &data_dbi), 0);
	cr_assert_eq(mdb_txn_commit(txn), 0);
	if (with_env)
		cfg.env = env;
	cr_assert_eq(settle_participant_init(&cfg, &part), 0);
	cr_assert_eq(settle_participant_start_thread(part), 0, "%s",
		     settle_participant_errmsg(part));
	cr_assert_gt(settle_participant_port(part), 0);
	snprintf(ep, sizeof(ep), "127.0.0.1:%d", settle_participant_port(part));
	/* The client's cluster list is unused: calls go to ep directly. */
	cr_assert_eq(settle_client_open("127.0.0.1:1", NULL, &cli), 0);
}

static void setup(void)
{
	start(true);
}

static void teardown(void)
{
	char cmd[128];
	settle_client_close(cli);
	settle_participant_close(part);
	mdb_env_close(env);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

TestSuite(participant, .init = setup, .fini = teardown);

static int branch_call(int method, const char *gid, uint32_t branch,
		       const char *payload, uint64_t deadline)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	req.gid = (char *)gid;
	req.branch_id = branch;
	req.resource = "acct";
	req.payload.data = (uint8_t *)payload;
	req.payload.len = payload != NULL ? strlen(payload) : 0;
	req.attempt = 1;
	req.deadline_ms = deadline;
	return settle_client_call_at(cli, ep, method, &req.base,
				     &settle__v1__branch_response__descriptor,
				     NULL);
}

#define TRY	SETTLE__V1__METHOD__TRY
#define CONFIRM SETTLE__V1__METHOD__CONFIRM
#define CANCEL	SETTLE__V1__METHOD__CANCEL

Test(participant, try_confirm_with_repeats_runs_each_once)
{
	cr_assert_eq(branch_call(TRY, "g1", 1, "ok", 0), 0, "%s",
		     settle_client_errmsg(cli));
	cr_assert_eq(branch_call(TRY, "g1", 1, "ok", 0), 0);
	cr_assert_eq(branch_call(CONFIRM, "g1", 1, "ok", 0), 0);
	cr_assert_eq(branch_call(CONFIRM, "g1", 1, "ok", 0), 0);
	cr_expect_eq(calls[SETTLE_OP_TRY], 1);
	cr_expect_eq(calls[SETTLE_OP_CONFIRM], 1);
	cr_expect_eq(counter("try"), 1);
	cr_expect_eq(counter("confirm"), 1);
	/* The opposite decision is a FAILURE, not a silent double effect. */
	cr_expect_eq(branch_call(CANCEL, "g1", 1, "ok", 0), SETTLE_EFAILURE);
	cr_expect_str_eq(settle_client_errmsg(cli),
			 "cancel: FAILURE: cancel: branch already confirmed");
	cr_expect_eq(calls[SETTLE_OP_CANCEL], 0);
}

Test(participant, cancel_before_try_then_try_is_refused)
{
	cr_assert_eq(branch_call(CANCEL, "g2", 4, "ok", 0), 0);
	cr_assert_eq(branch_call(CANCEL, "g2", 4, "ok", 0), 0);
	cr_expect_eq(calls[SETTLE_OP_CANCEL], 0, "null compensation ran");
	cr_expect_eq(branch_call(TRY, "g2", 4, "ok", 0), SETTLE_EREFUSED);
	cr_expect_str_eq(settle_client_errmsg(cli),
			 "try: REFUSED: try after cancel");
	cr_expect_eq(calls[SETTLE_OP_TRY], 0);
	cr_expect_eq(counter("try"), 0);
}

Test(participant, try_then_cancel_runs_the_compensation)
{
	cr_assert_eq(branch_call(TRY, "g3", 1, "ok", 0), 0);
	cr_assert_eq(branch_call(CANCEL, "g3", 1, "ok", 0), 0);
	cr_assert_eq(branch_call(CANCEL, "g3", 1, "ok", 0), 0);
	cr_expect_eq(calls[SETTLE_OP_CANCEL], 1);
	cr_expect_eq(counter("cancel"), 1);
}

Test(participant, handler_failure_and_retry_roll_back_their_txn)
{
	cr_expect_eq(branch_call(TRY, "g4", 1, "fail", 0), SETTLE_EFAILURE);
	cr_expect_str_eq(settle_client_errmsg(cli), "try: FAILURE: nope");
	cr_expect_eq(branch_call(TRY, "g4", 2, "retry", 0), SETTLE_ERETRY);
	cr_expect_str_eq(settle_client_errmsg(cli), "try: RETRY: later");
	/* Neither the effect nor the barrier row survived. */
	cr_expect_eq(counter("try"), 0);
	cr_expect_eq(branch_call(TRY, "g4", 2, "ok", 0), 0);
	cr_expect_eq(counter("try"), 1);
	/* The failed Try left no row: its Cancel is a null compensation. */
	cr_expect_eq(branch_call(CANCEL, "g4", 1, "ok", 0), 0);
	cr_expect_eq(calls[SETTLE_OP_CANCEL], 0);
	/* A Confirm that fails is answered FAILURE and may be repeated. */
	cr_expect_eq(branch_call(CONFIRM, "g4", 2, "fail", 0), SETTLE_EFAILURE);
	cr_expect_eq(branch_call(CONFIRM, "g4", 2, "ok", 0), 0);
	cr_expect_eq(counter("confirm"), 1);
}

Test(participant, expired_try_is_refused)
{
	cr_expect_eq(branch_call(TRY, "g5", 1, "ok", settle_now_ms() - 1000),
		     SETTLE_EREFUSED);
	cr_expect_eq(calls[SETTLE_OP_TRY], 0);
	cr_expect_eq(branch_call(TRY, "g5", 1, "ok", settle_now_ms() + 60000),
		     0);
}

Test(participant, bad_requests_get_clear_errors)
{
	cr_expect_eq(settle_client_call_at(cli, ep, SETTLE__V1__METHOD__COMMIT,
					   NULL, NULL, NULL),
		     SETTLE_ENOMETHOD);
	cr_expect_eq(branch_call(TRY, "", 1, "ok", 0), SETTLE_EINVAL);
	/* An Error message where a BranchRequest belongs: a varint in the
	 * gid string field. */
	Settle__V1__Error e = SETTLE__V1__ERROR__INIT;
	e.code = 3;
	cr_expect_eq(settle_client_call_at(cli, ep, TRY, &e.base, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_str_eq(settle_client_errmsg(cli),
			 "try: INVALID_ARGUMENT: undecodable BranchRequest");
	char big[SETTLE_GID_MAX + 2];
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_expect_eq(branch_call(CONFIRM, big, 1, "ok", 0), SETTLE_EINVAL);
	cr_expect_eq(calls[1] + calls[2] + calls[3], 0);
	/* Still serving. */
	cr_expect_eq(branch_call(TRY, "g6", 1, "ok", 0), 0);
}

Test(participant_noenv, handlers_run_without_txn, .fini = teardown)
{
	start(false);
	cr_expect_eq(branch_call(TRY, "g7", 1, "ok", 0), 0);
	cr_expect_eq(branch_call(TRY, "g7", 1, "ok", 0), 0);
	cr_expect_eq(null_txn, 2, "no barrier: every call runs");
}

Test(participant_config, init_rejects_bad_config)
{
	struct settle_participant_config cfg = {.listen = "127.0.0.1:0"};
	settle_participant *p;
	cr_expect_eq(settle_participant_init(&cfg, &p), SETTLE_EINVAL);
	cfg.on_try = handler;
	cfg.listen = NULL;
	cr_expect_eq(settle_participant_init(&cfg, &p), SETTLE_EINVAL);
	cfg.listen = "nonsense";
	cr_assert_eq(settle_participant_init(&cfg, &p), 0);
	cr_expect_neq(settle_participant_start_thread(p), 0);
	cr_expect_neq(settle_participant_errmsg(p)[0], '\0');
	settle_participant_close(p);
}

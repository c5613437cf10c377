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
#include "xa/xid.h"

static char dir[64];
static MDB_env *env;
static MDB_dbi data_dbi;
static settle_participant *part;
static settle_client *cli;
static char ep[64];
static atomic_int calls[8]; /* handler runs per op */
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
	static const char *const names[] = {
	    [SETTLE_OP_TRY] = "try",
	    [SETTLE_OP_CONFIRM] = "confirm",
	    [SETTLE_OP_CANCEL] = "cancel",
	    [SETTLE_OP_ACTION] = "action",
	    [SETTLE_OP_COMPENSATE] = "compensate",
	};
	int rv = bump(txn, names[b->op]);
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

/* Start with the usual handlers; tweak (may be NULL) adjusts the config. */
static void start_with(bool with_env,
		       void (*tweak)(struct settle_participant_config *cfg))
{
	struct settle_participant_config cfg = {
	    .listen = "127.0.0.1:0",
	    .on_try = handler,
	    .on_confirm = handler,
	    .on_cancel = handler,
	    .on_action = handler,
	    .on_compensate = handler,
	};
	MDB_txn *txn;

	if (tweak != NULL)
		tweak(&cfg);

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

static void start(bool with_env)
{
	start_with(with_env, NULL);
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

#define TRY	   SETTLE__V1__METHOD__TRY
#define CONFIRM	   SETTLE__V1__METHOD__CONFIRM
#define CANCEL	   SETTLE__V1__METHOD__CANCEL
#define ACTION	   SETTLE__V1__METHOD__ACTION
#define COMPENSATE SETTLE__V1__METHOD__COMPENSATE

/* The client names only the TCC methods in its messages: match the tail. */
static void expect_msg_ends(const char *tail)
{
	const char *m = settle_client_errmsg(cli);
	size_t ml = strlen(m), tl = strlen(tail);
	cr_expect(ml >= tl && strcmp(m + ml - tl, tail) == 0,
		  "message '%s' does not end in '%s'", m, tail);
}

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

/* ---- The TM's XID (BranchRequest.xid) -------------------------------- */

static uint8_t seen_xid[512];
static size_t seen_xid_len;
static bool seen_xid_null;

/* Confirm handler that keeps what it was given as the xid. */
static int xid_handler(void *data, const struct settle_branch *b, MDB_txn *txn,
		       char *err, size_t errlen)
{
	seen_xid_len = b->xid_len;
	seen_xid_null = b->xid == NULL;
	if (b->xid_len <= sizeof(seen_xid) && b->xid != NULL)
		memcpy(seen_xid, b->xid, b->xid_len);
	return handler(data, b, txn, err, errlen);
}

static void xid_confirm(struct settle_participant_config *cfg)
{
	cfg->on_confirm = xid_handler;
}

static int xid_call(int method, const char *gid, const uint8_t *xid,
		    size_t xid_len)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;

	req.gid = (char *)gid;
	req.branch_id = 1;
	req.resource = "acct";
	req.payload.data = (uint8_t *)"ok";
	req.payload.len = 2;
	req.attempt = 1;
	req.xid.data = (uint8_t *)xid;
	req.xid.len = xid_len;
	return settle_client_call_at(cli, ep, method, &req.base,
				     &settle__v1__branch_response__descriptor,
				     NULL);
}

Test(participant_xid, confirm_gets_the_tms_xid_byte_for_byte, .fini = teardown)
{
	/* formatID 0x01020304, gtrid "tm-gtrid\0x" (binary), bqual "b7",
	 * in the wire encoding: big-endian formatID, the two lengths. */
	static const uint8_t xid[] = {0x01, 0x02, 0x03, 0x04, 0x0a, 0x02,
				      't',  'm',  '-',	'g',  't',  'r',
				      'i',  'd',  0x00, 'x',  'b',  '7'};
	struct xa_xid x;

	cr_assert_eq(xa_xid_decode(xid, sizeof(xid), &x), 0,
		     "the test's xid is not a valid encoding");
	start_with(true, xid_confirm);
	cr_assert_eq(xid_call(CONFIRM, "gx1", xid, sizeof(xid)), 0, "%s",
		     settle_client_errmsg(cli));
	cr_expect_eq(calls[SETTLE_OP_CONFIRM], 1);
	cr_expect_not(seen_xid_null);
	cr_assert_eq(seen_xid_len, sizeof(xid));
	cr_expect_arr_eq(seen_xid, xid, sizeof(xid));
	cr_expect_eq(counter("confirm"), 1);
}

Test(participant_xid, no_xid_is_empty, .fini = teardown)
{
	start_with(true, xid_confirm);
	seen_xid_len = 99;
	cr_assert_eq(xid_call(CONFIRM, "gx2", NULL, 0), 0, "%s",
		     settle_client_errmsg(cli));
	cr_expect_eq(calls[SETTLE_OP_CONFIRM], 1);
	cr_expect(seen_xid_null, "xid not NULL without an xid");
	cr_expect_eq(seen_xid_len, 0);
}

Test(participant_xid, oversized_or_malformed_xid_is_refused, .fini = teardown)
{
	uint8_t big[SETTLE_XID_WIRE_MAX + 1];
	/* Claims a 64-byte gtrid but carries 3 bytes. */
	static const uint8_t short_xid[] = {0, 0, 0, 1, 64, 1, 'a', 'b', 'c'};

	start_with(true, xid_confirm);
	memset(big, 1, sizeof(big));
	cr_expect_eq(xid_call(CONFIRM, "gx3", big, sizeof(big)), SETTLE_EINVAL);
	expect_msg_ends("INVALID_ARGUMENT: xid is not a valid XID wire "
			"encoding");
	cr_expect_eq(xid_call(CONFIRM, "gx3", short_xid, sizeof(short_xid)),
		     SETTLE_EINVAL);
	expect_msg_ends("INVALID_ARGUMENT: xid is not a valid XID wire "
			"encoding");
	/* Refused before the barrier: no handler ran, nothing written, and
	 * the same branch confirms (once) when the request is well formed. */
	cr_expect_eq(calls[SETTLE_OP_CONFIRM], 0);
	cr_expect_eq(counter("confirm"), 0);
	cr_expect_eq(xid_call(CONFIRM, "gx3", NULL, 0), 0, "%s",
		     settle_client_errmsg(cli));
	cr_expect_eq(counter("confirm"), 1);
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

/* ---- Barrier cleanup --------------------------------------------------- */

/* Rows in one of the barrier's tables. */
static size_t table_rows(const char *name)
{
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_stat st;

	cr_assert_eq(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
	cr_assert_eq(mdb_dbi_open(txn, name, 0, &dbi), 0);
	cr_assert_eq(mdb_stat(txn, dbi, &st), 0);
	mdb_txn_abort(txn);
	return st.ms_entries;
}

static void sleep_ms(unsigned ms)
{
	uv_sleep(ms);
}

static void fast_gc(struct settle_participant_config *cfg)
{
	cfg->barrier_retention_ms = 150;
	cfg->barrier_gc_batch = 2;
	cfg->barrier_gc_interval_ms = 10;
}

Test(participant_gc, old_rows_go_in_batches_business_data_stays,
     .fini = teardown)
{
	char gid[16];
	unsigned waited = 0;

	start_with(true, fast_gc);
	for (int i = 0; i < 5; i++) {
		snprintf(gid, sizeof(gid), "gc%d", i);
		cr_assert_eq(branch_call(TRY, gid, 1, "ok", 0), 0);
		cr_assert_eq(branch_call(CONFIRM, gid, 1, "ok", 0), 0);
	}
	/* 10 rows, well inside the retention: none may go yet. */
	cr_expect_eq(table_rows("settle_barrier"), 10);
	while (table_rows("settle_barrier") != 0) {
		cr_assert_lt(waited, 5000, "%zu rows never collected",
			     table_rows("settle_barrier"));
		sleep_ms(20);
		waited += 20;
	}
	cr_expect_geq(waited, 100, "rows went before their retention");
	cr_expect_eq(table_rows("settle_barrier_time"), 0);
	cr_expect_eq(counter("try"), 5);
	cr_expect_eq(counter("confirm"), 5);
	/* Why the retention must outlast every late call: with the row gone
	 * a repeated Confirm is a first call again. */
	cr_expect_eq(branch_call(CONFIRM, "gc0", 1, "ok", 0), 0);
	cr_expect_eq(counter("confirm"), 6);
}

static void gc_default_retention(struct settle_participant_config *cfg)
{
	cfg->barrier_gc_interval_ms = 10;
}

Test(participant_gc, default_retention_keeps_fresh_rows, .fini = teardown)
{
	start_with(true, gc_default_retention);
	cr_assert_eq(branch_call(TRY, "keep", 1, "ok", 0), 0);
	cr_assert_eq(branch_call(CANCEL, "keep", 1, "ok", 0), 0);
	sleep_ms(200);
	cr_expect_eq(table_rows("settle_barrier"), 2);
	/* So the late Try is still refused. */
	cr_expect_eq(branch_call(TRY, "keep", 1, "ok", 0), SETTLE_EREFUSED);
}

/* ---- Asynchronous handlers --------------------------------------------- */

static atomic_int gate_calls;
static uint32_t gate_delay_ms;

struct held {
	uv_timer_t timer;
	settle_call *call;
};

static void held_closed(uv_handle_t *h)
{
	free(h);
}

static void held_fire(uv_timer_t *t)
{
	struct held *h = (struct held *)t;
	settle_call_run(h->call, NULL, NULL);
	uv_close((uv_handle_t *)&h->timer, held_closed);
}

/* Runs on the participant's thread: holds Confirm/Cancel back by
 * gate_delay_ms, refuses "refuse" payloads without touching the store. */
static void gate(void *data, settle_call *call)
{
	const struct settle_branch *b = settle_call_branch(call);
	struct held *h;

	cr_assert_null(data);
	gate_calls++;
	if (b->len == 6 && memcmp(b->payload, "refuse", 6) == 0) {
		settle_call_fail(call, SETTLE_EFAILURE, "gate says no");
		return;
	}
	if (b->op == SETTLE_OP_TRY || gate_delay_ms == 0) {
		settle_call_run(call, NULL, NULL);
		return;
	}
	h = calloc(1, sizeof(*h));
	cr_assert_not_null(h);
	h->call = call;
	cr_assert_eq(uv_timer_init(settle_participant_loop(part), &h->timer),
		     0);
	cr_assert_eq(uv_timer_start(&h->timer, held_fire, gate_delay_ms, 0), 0);
}

static void with_gate(struct settle_participant_config *cfg)
{
	cfg->on_call_async = gate;
}

struct bg_call {
	uv_thread_t thread;
	int method;
	const char *gid;
	int rv;
	uint64_t took_ms;
};

/* One call from a thread of its own, with its own client handle. */
static void bg_main(void *arg)
{
	struct bg_call *c = arg;
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	settle_client *own;
	uint64_t t0 = settle_mono_ms();

	if (settle_client_open("127.0.0.1:1", NULL, &own) != 0) {
		c->rv = -999;
		return;
	}
	req.gid = (char *)c->gid;
	req.branch_id = 1;
	req.payload.data = (uint8_t *)"ok";
	req.payload.len = 2;
	req.attempt = 1;
	c->rv = settle_client_call_at(own, ep, c->method, &req.base,
				      &settle__v1__branch_response__descriptor,
				      NULL);
	c->took_ms = settle_mono_ms() - t0;
	settle_client_close(own);
}

static void bg_start(struct bg_call *c, int method, const char *gid)
{
	c->method = method;
	c->gid = gid;
	cr_assert_eq(uv_thread_create(&c->thread, bg_main, c), 0);
}

Test(participant_async, delayed_confirm_keeps_the_loop_serving,
     .fini = teardown)
{
	struct bg_call first = {0}, repeat = {0};
	uint64_t t0;

	gate_delay_ms = 400;
	start_with(true, with_gate);
	cr_assert_eq(branch_call(TRY, "a1", 1, "ok", 0), 0);
	bg_start(&first, CONFIRM, "a1");
	sleep_ms(50);
	/* The coordinator's retry while the first copy is held back. */
	bg_start(&repeat, CONFIRM, "a1");
	sleep_ms(50);
	/* Another branch is served at once meanwhile... */
	t0 = settle_mono_ms();
	cr_expect_eq(branch_call(TRY, "a2", 1, "ok", 0), 0);
	cr_expect_lt(settle_mono_ms() - t0, 200, "the delay blocked the loop");
	/* ...and nothing of the delayed Confirm is written yet. */
	cr_expect_eq(counter("confirm"), 0);
	uv_thread_join(&first.thread);
	uv_thread_join(&repeat.thread);
	cr_expect_eq(first.rv, 0);
	cr_expect_eq(repeat.rv, 0);
	cr_expect_geq(first.took_ms, 350);
	/* Both copies answered success; the barrier ran the effect once. */
	cr_expect_eq(calls[SETTLE_OP_CONFIRM], 1);
	cr_expect_eq(counter("confirm"), 1);
	cr_expect_eq(gate_calls, 4);
}

Test(participant_async, gate_failure_writes_nothing, .fini = teardown)
{
	gate_delay_ms = 0;
	start_with(true, with_gate);
	cr_expect_eq(branch_call(TRY, "a3", 1, "refuse", 0), SETTLE_EFAILURE);
	cr_expect_str_eq(settle_client_errmsg(cli),
			 "try: FAILURE: gate says no");
	cr_expect_eq(calls[SETTLE_OP_TRY], 0);
	cr_expect_eq(table_rows("settle_barrier"), 0);
	/* No try row: the Cancel is a null compensation. */
	cr_expect_eq(branch_call(CANCEL, "a3", 1, "ok", 0), 0);
	cr_expect_eq(calls[SETTLE_OP_CANCEL], 0);
	/* The synchronous path behind the gate still works. */
	cr_expect_eq(branch_call(TRY, "a4", 1, "ok", 0), 0);
	cr_expect_eq(counter("try"), 1);
}

Test(participant_async, close_with_a_held_call_writes_nothing)
{
	struct bg_call held = {0};
	char cmd[128];

	gate_delay_ms = 300;
	start_with(true, with_gate);
	cr_assert_eq(branch_call(TRY, "a5", 1, "ok", 0), 0);
	bg_start(&held, CONFIRM, "a5");
	sleep_ms(100);
	settle_client_close(cli);
	/* Returns once the held call completed and its timer closed. */
	settle_participant_close(part);
	uv_thread_join(&held.thread);
	cr_expect_neq(held.rv, 0, "the caller must retry");
	cr_expect_eq(calls[SETTLE_OP_CONFIRM], 0);
	cr_expect_eq(counter("confirm"), 0);
	mdb_env_close(env);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_expect_eq(system(cmd), 0);
}

/* ---- Saga: ACTION and COMPENSATE ---------------------------------------- */

Test(participant, saga_repeats_run_once_and_late_action_is_refused)
{
	cr_assert_eq(branch_call(ACTION, "s1", 1, "ok", 0), 0, "%s",
		     settle_client_errmsg(cli));
	cr_assert_eq(branch_call(ACTION, "s1", 1, "ok", 0), 0);
	cr_expect_eq(calls[SETTLE_OP_ACTION], 1);
	cr_expect_eq(counter("action"), 1);
	cr_assert_eq(branch_call(COMPENSATE, "s1", 1, "ok", 0), 0);
	cr_assert_eq(branch_call(COMPENSATE, "s1", 1, "ok", 0), 0);
	cr_expect_eq(calls[SETTLE_OP_COMPENSATE], 1);
	cr_expect_eq(counter("compensate"), 1);
	/* A copy of the Action delayed in the network arrives last. */
	cr_expect_eq(branch_call(ACTION, "s1", 1, "ok", 0), SETTLE_EREFUSED);
	expect_msg_ends("REFUSED: action after compensate");
	cr_expect_eq(calls[SETTLE_OP_ACTION], 1);
	cr_expect_eq(counter("action"), 1);
	/* Saga calls touched no TCC handler. */
	cr_expect_eq(calls[SETTLE_OP_TRY] + calls[SETTLE_OP_CONFIRM] +
			 calls[SETTLE_OP_CANCEL],
		     0);
}

Test(participant, saga_null_compensation_is_recorded)
{
	cr_assert_eq(branch_call(COMPENSATE, "s2", 3, "ok", 0), 0);
	cr_assert_eq(branch_call(COMPENSATE, "s2", 3, "ok", 0), 0);
	cr_expect_eq(calls[SETTLE_OP_COMPENSATE], 0, "null compensation ran");
	cr_expect_eq(table_rows("settle_barrier"), 1);
	cr_expect_eq(branch_call(ACTION, "s2", 3, "ok", 0), SETTLE_EREFUSED);
	cr_expect_eq(calls[SETTLE_OP_ACTION], 0);
	cr_expect_eq(counter("action"), 0);
	/* Other steps of the saga are unaffected. */
	cr_expect_eq(branch_call(ACTION, "s2", 2, "ok", 0), 0);
	cr_expect_eq(counter("action"), 1);
}

Test(participant, saga_failed_action_leaves_nothing_to_compensate)
{
	cr_expect_eq(branch_call(ACTION, "s3", 1, "fail", 0), SETTLE_EFAILURE);
	expect_msg_ends("FAILURE: nope");
	cr_expect_eq(branch_call(ACTION, "s3", 2, "retry", 0), SETTLE_ERETRY);
	expect_msg_ends("RETRY: later");
	cr_expect_eq(counter("action"), 0);
	cr_expect_eq(table_rows("settle_barrier"), 0);
	/* The coordinator compensates the failed step too: a no-op. */
	cr_expect_eq(branch_call(COMPENSATE, "s3", 1, "ok", 0), 0);
	cr_expect_eq(calls[SETTLE_OP_COMPENSATE], 0);
	/* The transient one is retried and takes effect. */
	cr_expect_eq(branch_call(ACTION, "s3", 2, "ok", 0), 0);
	cr_expect_eq(counter("action"), 1);
	/* A failing compensation rolls back and is retried until it works. */
	cr_expect_eq(branch_call(COMPENSATE, "s3", 2, "retry", 0),
		     SETTLE_ERETRY);
	cr_expect_eq(counter("compensate"), 0);
	cr_expect_eq(branch_call(COMPENSATE, "s3", 2, "ok", 0), 0);
	cr_expect_eq(counter("compensate"), 1);
}

Test(participant, saga_action_past_its_deadline_still_runs)
{
	/* Unlike a Try, nothing is reserved for a waiting initiator: the
	 * barrier alone orders an Action against its Compensate. */
	cr_expect_eq(branch_call(ACTION, "s4", 1, "ok", settle_now_ms() - 1000),
		     0);
	cr_expect_eq(counter("action"), 1);
}

static void tcc_only(struct settle_participant_config *cfg)
{
	cfg->on_action = NULL;
	cfg->on_compensate = NULL;
}

Test(participant_saga, no_saga_handlers_is_unknown_method, .fini = teardown)
{
	start_with(true, tcc_only);
	cr_expect_eq(branch_call(ACTION, "s5", 1, "ok", 0), SETTLE_ENOMETHOD);
	cr_expect_eq(branch_call(COMPENSATE, "s5", 1, "ok", 0),
		     SETTLE_ENOMETHOD);
	cr_expect_eq(table_rows("settle_barrier"), 0);
	cr_expect_eq(branch_call(TRY, "s5", 1, "ok", 0), 0);
}

static void saga_only(struct settle_participant_config *cfg)
{
	cfg->on_try = NULL;
	cfg->on_confirm = NULL;
	cfg->on_cancel = NULL;
}

Test(participant_saga, saga_handlers_alone_are_a_valid_config, .fini = teardown)
{
	start_with(true, saga_only);
	cr_expect_eq(branch_call(TRY, "s6", 1, "ok", 0), SETTLE_ENOMETHOD);
	cr_expect_eq(branch_call(ACTION, "s6", 1, "ok", 0), 0);
	cr_expect_eq(branch_call(COMPENSATE, "s6", 1, "ok", 0), 0);
	cr_expect_eq(counter("action"), 1);
	cr_expect_eq(counter("compensate"), 1);
}

Test(participant_saga, without_env_every_call_runs, .fini = teardown)
{
	start(false);
	cr_expect_eq(branch_call(ACTION, "s7", 1, "ok", 0), 0);
	cr_expect_eq(branch_call(ACTION, "s7", 1, "ok", 0), 0);
	cr_expect_eq(branch_call(COMPENSATE, "s7", 1, "ok", 0), 0);
	cr_expect_eq(null_txn, 3);
}

Test(participant_async, delayed_action_and_its_repeat_run_once,
     .fini = teardown)
{
	struct bg_call first = {0}, repeat = {0};

	gate_delay_ms = 300;
	start_with(true, with_gate);
	bg_start(&first, ACTION, "sa1");
	sleep_ms(50);
	bg_start(&repeat, ACTION, "sa1");
	sleep_ms(50);
	cr_expect_eq(counter("action"), 0, "written before completion");
	uv_thread_join(&first.thread);
	uv_thread_join(&repeat.thread);
	cr_expect_eq(first.rv, 0);
	cr_expect_eq(repeat.rv, 0);
	cr_expect_geq(first.took_ms, 250);
	cr_expect_eq(calls[SETTLE_OP_ACTION], 1);
	cr_expect_eq(counter("action"), 1);
	/* The compensation, held back too, undoes it once. */
	bg_start(&first, COMPENSATE, "sa1");
	bg_start(&repeat, COMPENSATE, "sa1");
	uv_thread_join(&first.thread);
	uv_thread_join(&repeat.thread);
	cr_expect_eq(first.rv, 0);
	cr_expect_eq(repeat.rv, 0);
	cr_expect_eq(calls[SETTLE_OP_COMPENSATE], 1);
	cr_expect_eq(gate_calls, 4);
}

/* A gate that refuses Actions, and lets everything else run now. */
static void refusing_gate(void *data, settle_call *call)
{
	(void)data;
	if (settle_call_branch(call)->op == SETTLE_OP_ACTION)
		settle_call_fail(call, SETTLE_EREFUSED, "closed for today");
	else if (settle_call_branch(call)->op == SETTLE_OP_COMPENSATE)
		settle_call_fail(call, SETTLE_EREFUSED, "not refusable");
	else
		settle_call_run(call, NULL, NULL);
}

static void with_refusing_gate(struct settle_participant_config *cfg)
{
	cfg->on_call_async = refusing_gate;
}

Test(participant_async, gate_may_refuse_an_action_only, .fini = teardown)
{
	start_with(true, with_refusing_gate);
	cr_expect_eq(branch_call(ACTION, "sa2", 1, "ok", 0), SETTLE_EREFUSED);
	expect_msg_ends("REFUSED: closed for today");
	/* REFUSED is no answer for a compensation: it becomes RETRY. */
	cr_expect_eq(branch_call(COMPENSATE, "sa2", 1, "ok", 0), SETTLE_ERETRY);
	cr_expect_eq(table_rows("settle_barrier"), 0);
	cr_expect_eq(calls[SETTLE_OP_ACTION] + calls[SETTLE_OP_COMPENSATE], 0);
}

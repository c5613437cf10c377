/*
 * The FSM in batched mode (the coordinator's): a run of entries goes into
 * one LMDB write transaction, the store's apply batch. Until it commits,
 * the applying thread sees every entry and other threads see none; a
 * replayed entry leaves the batch alone; a failed apply drops all of it,
 * and applying the same entries again (as the raft log does at restart)
 * rebuilds the same state.
 */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "fsm_helpers.h"

#define C_OK   SETTLE__V1__CODE__OK
#define COMMIT SETTLE__V1__DECISION__DECIDE_COMMIT

static struct tfsm F;

static void setup(void)
{
	tfsm_open(&F);
	F.f.batched = true;
}

static void teardown(void)
{
	tfsm_close(&F);
}

TestSuite(batched, .init = setup, .fini = teardown);

struct seen {
	const char *gid;
	int rv;		/* store_tx_get */
	int state;	/* when found */
	uint64_t index; /* applied index */
};

static void *look(void *arg)
{
	struct seen *s = arg;
	Settle__V1__TxRecord *tx = NULL;

	s->rv = store_tx_get(F.t.s, NULL, s->gid, &tx);
	if (tx != NULL) {
		s->state = tx->state;
		settle__v1__tx_record__free_unpacked(tx, NULL);
	}
	if (store_applied_get(F.t.s, NULL, &s->index) != 0)
		s->index = 12345;
	return NULL;
}

/* What another thread (a read txn of its own) sees of gid. */
static struct seen elsewhere(const char *gid)
{
	struct seen s = {gid, -1, 0, 0};
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, look, &s), 0);
	pthread_join(th, NULL);
	return s;
}

static struct seen here(const char *gid)
{
	struct seen s = {gid, -1, 0, 0};

	look(&s);
	return s;
}

Test(batched, a_run_of_entries_is_one_commit)
{
	struct seen s;

	cr_assert_eq(tfsm_code(&F, ent_begin(1, 100, "g1", 90000)), C_OK);
	cr_assert_eq(
	    tfsm_code(&F, ent_register(2, 110, "g1", "127.0.0.1:1", "r", "p")),
	    C_OK);
	cr_assert_eq(tfsm_code(&F, ent_decide(3, 120, "g1", COMMIT, NULL, 0)),
		     C_OK);
	cr_assert_eq(F.changes, 3, "each apply reports its change at once");
	cr_assert(store_batch_open(F.t.s));
	s = here("g1");
	cr_assert_eq(s.rv, 0);
	cr_assert_eq(s.state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_assert_eq(s.index, 3);
	s = elsewhere("g1");
	cr_assert_eq(s.rv, SETTLE_ENOTFOUND, "not committed yet");
	cr_assert_eq(s.index, 0);

	cr_assert_eq(store_batch_commit(F.t.s), 0);
	s = elsewhere("g1");
	cr_assert_eq(s.rv, 0);
	cr_assert_eq(s.state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_assert_eq(s.index, 3);
}

Test(batched, a_replayed_entry_leaves_the_batch_open)
{
	struct ent b1 = ent_begin(1, 100, "g1", 90000);
	Settle__V1__CmdResult *r = NULL;

	settle__v1__cmd_result__free_unpacked(tfsm_apply(&F, b1), NULL);
	cr_assert_eq(store_batch_commit(F.t.s), 0);
	cr_assert_eq(tfsm_code(&F, ent_begin(2, 110, "g2", 90000)), C_OK);
	/* Entry 1 again (a restart's replay): skipped, g2 still pending. */
	cr_assert_eq(fsm_apply(&F.f, 1, b1.buf, b1.len, &r), 0, "%s",
		     F.f.errmsg);
	cr_assert_eq(r->code, C_OK);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	ent_free(b1);
	cr_assert(store_batch_open(F.t.s));
	cr_assert_eq(here("g2").rv, 0);
	cr_assert_eq(store_batch_commit(F.t.s), 0);
	cr_assert_eq(elsewhere("g2").rv, 0);
	cr_assert_eq(elsewhere("g2").index, 2);
}

/* A store too small for a branch's payload: the apply fails (MAP_FULL),
 * and with it every entry of the open batch; the same entries applied
 * again, with room, give the state they would have given. */
Test(batched, a_failed_apply_drops_the_run_and_a_replay_rebuilds_it)
{
	static char big[900u << 10];
	struct ent b = ent_begin(1, 100, "g1", 90000);
	struct ent reg;
	Settle__V1__CmdResult *r = NULL;
	int rv;

	tfsm_close(&F);
	memset(&F, 0, sizeof F);
	tstore_open(&F.t, 512u << 10);
	cr_assert_eq(fsm_init(&F.f, F.t.s), 0);
	F.f.batched = true;
	memset(big, 'x', sizeof big - 1);
	reg = ent_register(2, 110, "g1", "127.0.0.1:1", "r", big);

	cr_assert_eq(fsm_apply(&F.f, 1, b.buf, b.len, &r), 0, "%s", F.f.errmsg);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	r = NULL;
	rv = fsm_apply(&F.f, 2, reg.buf, reg.len, &r);
	cr_assert_eq(rv, SETTLE_EFULL, "%d %s", rv, F.f.errmsg);
	cr_assert_null(r);
	cr_assert_not(store_batch_open(F.t.s));
	cr_assert_eq(here("g1").rv, SETTLE_ENOTFOUND, "the run is gone");
	cr_assert_eq(here("g1").index, 0);

	/* Replayed: entry 1 again applies (nothing of it was kept). */
	cr_assert_eq(fsm_apply(&F.f, 1, b.buf, b.len, &r), 0, "%s", F.f.errmsg);
	cr_assert_eq(r->code, C_OK);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_assert_eq(store_batch_commit(F.t.s), 0);
	cr_assert_eq(elsewhere("g1").rv, 0);
	cr_assert_eq(elsewhere("g1").state, SETTLE__V1__TX_STATE__ACTIVE);
	ent_free(b);
	ent_free(reg);
}

/*
 * The apply batch (store_batch_txn()): one write transaction across many
 * applies. Its owner thread reads through it, other threads see the last
 * commit, and every way of ending it keeps the store whole.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "helpers.h"
#include "storage/store.h"

static struct tstore T;

static void setup(void)
{
	tstore_open(&T, 0);
}

static void teardown(void)
{
	tstore_close(&T);
}

TestSuite(batch, .init = setup, .fini = teardown);

struct read_arg {
	uint64_t index;
	int rv;
};

/* The applied index as another thread sees it: a read txn of its own.
 * (Asserting is left to the test's thread.) */
static void *read_applied(void *arg)
{
	struct read_arg *r = arg;

	r->rv = store_applied_get(T.s, NULL, &r->index);
	return NULL;
}

static uint64_t applied_elsewhere(void)
{
	pthread_t th;
	struct read_arg r = {12345, -1};

	cr_assert_eq(pthread_create(&th, NULL, read_applied, &r), 0);
	pthread_join(th, NULL);
	cr_assert_eq(r.rv, 0);
	return r.index;
}

static uint64_t applied_here(void)
{
	uint64_t v = 12345;

	cr_assert_eq(store_applied_get(T.s, NULL, &v), 0);
	return v;
}

static void batch_put_applied(uint64_t index)
{
	MDB_txn *txn;

	cr_assert_eq(store_batch_txn(T.s, &txn), 0);
	cr_assert_eq(store_applied_put(T.s, txn, index), 0);
}

Test(batch, owner_reads_through_it_others_see_the_last_commit)
{
	MDB_txn *a, *b, *view;

	cr_assert_not(store_batch_open(T.s));
	cr_assert_eq(store_batch_txn(T.s, &a), 0);
	cr_assert_eq(store_batch_txn(T.s, &b), 0);
	cr_assert_eq(a, b, "one batch until it commits");
	cr_assert_eq(store_applied_put(T.s, a, 5), 0);
	cr_assert_eq(applied_here(), 5);
	cr_assert_eq(applied_elsewhere(), 0);
	/* A view on the owner thread is the batch; ending it keeps it. */
	cr_assert_eq(store_read_begin(T.s, &view), 0);
	cr_assert_eq(view, a);
	store_read_end(view);
	cr_assert(store_batch_open(T.s));
	batch_put_applied(6);
	cr_assert_eq(store_batch_commit(T.s), 0);
	cr_assert_not(store_batch_open(T.s));
	cr_assert_eq(applied_elsewhere(), 6);
	cr_assert_eq(applied_here(), 6);
	cr_assert_eq(store_batch_commit(T.s), 0, "none open: nothing to do");
}

Test(batch, a_write_txn_on_the_owner_thread_commits_it_first)
{
	MDB_txn *txn;

	batch_put_applied(9);
	cr_assert_eq(store_write_begin(T.s, &txn), 0);
	cr_assert_not(store_batch_open(T.s));
	cr_assert_eq(applied_elsewhere(), 9);
	cr_assert_eq(store_applied_put(T.s, txn, 10), 0);
	cr_assert_eq(store_write_commit(T.s, txn), 0);
	cr_assert_eq(applied_here(), 10);
}

Test(batch, abort_keeps_nothing_of_it)
{
	batch_put_applied(3);
	cr_assert_eq(store_batch_commit(T.s), 0);
	batch_put_applied(4);
	store_batch_abort(T.s);
	cr_assert_not(store_batch_open(T.s));
	cr_assert_eq(applied_here(), 3);
	cr_assert_eq(applied_elsewhere(), 3);
}

Test(batch, close_commits_an_open_batch)
{
	batch_put_applied(42);
	store_close(T.s);
	cr_assert_eq(store_open(T.dir, NULL, &T.s, NULL, 0), 0);
	cr_assert_eq(applied_here(), 42);
}

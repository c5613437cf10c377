/* The FSM's divergence check: an applied index delivered again with other
 * bytes stops the node (SETTLE_EDIVERGED) instead of being skipped. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "error.h"
#include "fsm_helpers.h"

static struct tfsm F;

static void setup(void)
{
	tfsm_open(&F);
}

static void teardown(void)
{
	tfsm_close(&F);
}

TestSuite(diverge, .init = setup, .fini = teardown);

/* Apply e at index idx, asserting success; e is kept. */
static void apply_at(struct tfsm *t, uint64_t idx, struct ent e)
{
	int rv = fsm_apply(&t->f, idx, e.buf, e.len, NULL);
	cr_assert_eq(rv, 0, "apply %llu: %s", (unsigned long long)idx,
		     t->f.errmsg);
	if (idx > t->index)
		t->index = idx;
}

static void expect_same_store(struct tfsm *t, const uint8_t *before,
			      size_t blen)
{
	uint8_t *now;
	size_t nlen;
	tfsm_snapshot(t, &now, &nlen);
	cr_assert_eq(nlen, blen);
	cr_expect_eq(memcmp(now, before, nlen), 0, "the store changed");
	raft_free(now);
}

Test(diverge, each_apply_records_the_checksum_of_its_bytes)
{
	struct ent e = ent_begin(1, 100, "g1", 900);
	apply_at(&F, 1, e);
	uint64_t sum;
	cr_assert_eq(store_applied_log_get(F.t.s, NULL, 1, &sum), 0);
	cr_expect_eq(sum, fsm_entry_checksum(e.buf, e.len));
	/* Rejected and undecodable entries advance the index: they are
	 * recorded too. */
	uint8_t junk[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	cr_assert_eq(fsm_apply(&F.f, 2, junk, sizeof junk, NULL), 0);
	cr_assert_eq(store_applied_log_get(F.t.s, NULL, 2, &sum), 0);
	cr_expect_eq(sum, fsm_entry_checksum(junk, sizeof junk));
	ent_free(e);
}

Test(diverge, same_bytes_again_are_skipped)
{
	struct ent e = ent_begin(1, 100, "g1", 900);
	apply_at(&F, 1, e);
	uint8_t *before;
	size_t blen;
	tfsm_snapshot(&F, &before, &blen);
	Settle__V1__CmdResult *r;
	cr_assert_eq(fsm_apply(&F.f, 1, e.buf, e.len, &r), 0);
	cr_expect_eq(r->code, SETTLE__V1__CODE__OK);
	cr_expect_eq(r->index, 1);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	expect_same_store(&F, before, blen);
	cr_expect_eq(F.changes, 1);
	raft_free(before);
	ent_free(e);
}

Test(diverge, other_bytes_at_an_applied_index_stop_with_ediverged)
{
	struct ent e1 = ent_begin(1, 100, "g1", 900);
	struct ent e2 = ent_begin(2, 100, "g2", 900);
	apply_at(&F, 1, e1);
	apply_at(&F, 2, e2);
	uint8_t *before;
	size_t blen;
	tfsm_snapshot(&F, &before, &blen);

	/* Another command at index 1, as a new leader's log might hold
	 * after raft 0.15 overwrote an entry this node had applied. */
	struct ent other = ent_begin(3, 100, "g3", 900);
	Settle__V1__CmdResult *r = (void *)1;
	int rv = fsm_apply(&F.f, 1, other.buf, other.len, &r);
	cr_expect_eq(rv, SETTLE_EDIVERGED);
	cr_expect_null(r);
	cr_expect_str_eq(F.f.errmsg,
			 "entry 1 differs from the one applied before: this "
			 "node's state diverged from the cluster; rebuild it "
			 "from a snapshot (docs/OPERATIONS.md)");
	expect_same_store(&F, before, blen);
	cr_expect_eq(F.changes, 2, "no hook for a refused entry");

	/* The same bytes with one padding byte changed are other bytes. */
	uint8_t *copy = malloc(e2.len);
	memcpy(copy, e2.buf, e2.len);
	copy[e2.len - 1] ^= 1;
	cr_expect_eq(fsm_apply(&F.f, 2, copy, e2.len, NULL), SETTLE_EDIVERGED);
	cr_expect_neq(strstr(F.f.errmsg, "entry 2 differs"), NULL, "%s",
		      F.f.errmsg);
	expect_same_store(&F, before, blen);
	free(copy);

	/* The error is local and reaches the wire as INTERNAL. */
	cr_expect_eq(settle_err_to_wire(SETTLE_EDIVERGED),
		     SETTLE__V1__CODE__INTERNAL);
	cr_expect_str_eq(settle_errname(SETTLE_EDIVERGED), "DIVERGED");

	raft_free(before);
	ent_free(e1);
	ent_free(e2);
	ent_free(other);
}

Test(diverge, pruned_indexes_are_skipped_unchecked)
{
	struct ent e[5];
	for (int i = 0; i < 5; i++) {
		char gid[8] = {'g', (char)('0' + i), 0};
		e[i] = ent_begin(i + 1, 100, gid, 900);
		apply_at(&F, (uint64_t)i + 1, e[i]);
	}
	cr_assert_eq(fsm_prune_applied_log(&F.f, 4), 0, "%s", F.f.errmsg);
	uint64_t first;
	cr_assert_eq(store_applied_log_first(F.t.s, NULL, &first), 0);
	cr_expect_eq(first, 4);
	/* Index 2 has no checksum any more: the replay cannot be checked
	 * and is skipped as before; index 4 still is. */
	cr_expect_eq(fsm_apply(&F.f, 2, e[0].buf, e[0].len, NULL), 0);
	cr_expect_eq(fsm_apply(&F.f, 4, e[0].buf, e[0].len, NULL),
		     SETTLE_EDIVERGED);
	cr_expect_eq(fsm_apply(&F.f, 4, e[3].buf, e[3].len, NULL), 0);
	for (int i = 0; i < 5; i++)
		ent_free(e[i]);
}

Test(diverge, the_table_stays_bounded_without_explicit_pruning)
{
	F.f.applied_log_keep = 3;
	for (int i = 0; i < 10; i++) {
		char gid[8] = {'g', (char)('0' + i), 0};
		struct ent e = ent_begin(i + 1, 100, gid, 900);
		apply_at(&F, (uint64_t)i + 1, e);
		ent_free(e);
	}
	/* Applied 10, keeping 3 back: rows 7..10. */
	uint64_t first, sum;
	cr_assert_eq(store_applied_log_first(F.t.s, NULL, &first), 0);
	cr_expect_eq(first, 7);
	cr_expect_eq(store_applied_log_get(F.t.s, NULL, 10, &sum), 0);
}

/*
 * A node rebuilt from the leader's snapshot takes the leader's applied_log
 * with it: the leader's log replays cleanly on it, and only its own old
 * entries would be refused.
 */
Test(diverge, a_restored_snapshot_does_not_trip_the_check)
{
	struct tfsm leader;
	tfsm_open(&leader);
	struct ent mine[3], theirs[6];
	for (int i = 0; i < 3; i++) {
		char gid[8] = {'m', (char)('0' + i), 0};
		mine[i] = ent_begin(100 + i, 100, gid, 900);
		apply_at(&F, (uint64_t)i + 1, mine[i]);
	}
	for (int i = 0; i < 6; i++) {
		char gid[8] = {'t', (char)('0' + i), 0};
		theirs[i] = ent_begin(200 + i, 100, gid, 900);
		apply_at(&leader, (uint64_t)i + 1, theirs[i]);
	}
	uint8_t *snap;
	size_t len;
	tfsm_snapshot(&leader, &snap, &len);
	cr_assert_eq(store_restore(F.t.s, snap, len), 0, "%s",
		     store_errmsg(F.t.s));
	raft_free(snap);
	/* Raft replays what follows the snapshot, or all of it after a
	 * restart with a newer LMDB: every one matches. */
	for (int i = 0; i < 6; i++)
		cr_expect_eq(fsm_apply(&F.f, (uint64_t)i + 1, theirs[i].buf,
				       theirs[i].len, NULL),
			     0, "%s", F.f.errmsg);
	cr_expect_eq(fsm_apply(&F.f, 1, mine[0].buf, mine[0].len, NULL),
		     SETTLE_EDIVERGED);
	/* And it goes on at 7. */
	struct ent next = ent_begin(300, 100, "next", 900);
	cr_expect_eq(fsm_apply(&F.f, 7, next.buf, next.len, NULL), 0);
	ent_free(next);
	for (int i = 0; i < 3; i++)
		ent_free(mine[i]);
	for (int i = 0; i < 6; i++)
		ent_free(theirs[i]);
	tfsm_close(&leader);
}

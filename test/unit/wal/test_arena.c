/* The FSM's arena for protobuf-c unpacks (wal/arena.h). */
#include <stdalign.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "fsm_helpers.h"
#include "wal/arena.h"
#include "wal/entry.h"

static void *alloc(struct wal_arena *a, size_t n)
{
	void *p = a->pb.alloc(a->pb.allocator_data, n);
	cr_assert_not_null(p, "alloc of %zu bytes", n);
	cr_assert_eq((uintptr_t)p % alignof(max_align_t), 0,
		     "%zu bytes misaligned", n);
	return p;
}

static void pb_free(struct wal_arena *a, void *p)
{
	a->pb.free(a->pb.allocator_data, p);
}

/* Blocks are aligned, distinct and writable; a reset gives them back and
 * keeps one block as large as what was asked, at most WAL_ARENA_KEEP. */
Test(arena, blocks_are_aligned_distinct_and_given_back)
{
	struct wal_arena a;
	uint8_t *p[64];

	wal_arena_init(&a);
	for (int round = 0; round < 3; round++) {
		for (size_t i = 0; i < 64; i++) {
			p[i] = alloc(&a, i * 7 + 1);
			memset(p[i], (int)i, i * 7 + 1);
		}
		for (size_t i = 0; i < 64; i++)
			for (size_t k = 0; k < i * 7 + 1; k++)
				cr_assert_eq(p[i][k], (uint8_t)i,
					     "block %zu overwritten", i);
		pb_free(&a, p[3]); /* a no-op until the reset */
		wal_arena_reset(&a);
		cr_assert_eq(a.used, 0);
		cr_assert_null(a.big);
	}
	/* One block larger than any kept: malloc'd, freed at the reset. */
	uint8_t *huge = alloc(&a, WAL_ARENA_KEEP + 1);
	memset(huge, 1, WAL_ARENA_KEEP + 1);
	cr_assert_not_null(a.big);
	wal_arena_reset(&a);
	cr_assert_null(a.big);
	cr_assert_leq(a.cap, WAL_ARENA_KEEP);
	(void)alloc(&a, 0);
	wal_arena_close(&a);
	cr_assert_null(a.buf);
	wal_arena_close(&a); /* twice is fine */
}

/* A command unpacked into the arena is the command protobuf-c's own
 * unpack makes: it packs back to the same bytes, entry after entry, as
 * the arena is reset and reused. */
Test(arena, commands_unpack_alike)
{
	struct wal_arena a;
	static const char pay[] = "account=alice;amount=-100";

	wal_arena_init(&a);
	for (int i = 0; i < 20; i++) {
		char gid[32];
		snprintf(gid, sizeof gid, "arena-%d", i);
		struct ent e =
		    ent_begin_branches(i + 1, 1000 + (uint64_t)i, gid, 999999,
				       (size_t)(i % 5) + 1, "127.0.0.1:9", pay);
		Settle__V1__Command *own = NULL, *in = NULL;
		cr_assert_eq(wal_entry_decode(e.buf, e.len, &own), 0);
		cr_assert_eq(wal_entry_decode_in(e.buf, e.len, &a.pb, &in), 0);
		size_t n = settle__v1__command__get_packed_size(own);
		cr_assert_eq(settle__v1__command__get_packed_size(in), n);
		uint8_t *b1 = malloc(n + 1), *b2 = malloc(n + 1);
		cr_assert(b1 != NULL && b2 != NULL);
		settle__v1__command__pack(own, b1);
		settle__v1__command__pack(in, b2);
		cr_assert_eq(memcmp(b1, b2, n), 0, "entry %d differs", i);
		cr_assert_str_eq(in->begin->gid, gid);
		cr_assert_eq(in->begin->n_branches, (size_t)(i % 5) + 1);
		free(b1);
		free(b2);
		settle__v1__command__free_unpacked(own, NULL);
		wal_arena_reset(&a);
		ent_free(e);
	}
	/* Garbage fails alike, and what it allocated goes at the reset. */
	uint8_t junk[16] = {12, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
	Settle__V1__Command *bad = NULL;
	cr_assert_eq(wal_entry_decode_in(junk, sizeof junk, &a.pb, &bad),
		     SETTLE_EPROTO);
	cr_assert_null(bad);
	wal_arena_close(&a);
}

/*
 * arena.c — the FSM's bump allocator for protobuf-c (arena.h).
 */
#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>

#include "wal/arena.h"

/* A block beyond the kept one: its link, then the caller's bytes. */
struct big {
	struct big *next;
	alignas(max_align_t) unsigned char data[];
};

#define ALIGN (alignof(max_align_t))

/* Under AddressSanitizer every block is malloc'd on its own, so that
 * reads past one are still caught. */
#if defined(__SANITIZE_ADDRESS__) /* gcc */
#define BUMP 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) /* clang */
#define BUMP 0
#endif
#endif
#ifndef BUMP
#define BUMP 1
#endif

static void *arena_alloc(void *data, size_t size)
{
	struct wal_arena *a = data;
	size_t n = (size + ALIGN - 1) & ~(ALIGN - 1);

	if (n < size || n > SIZE_MAX / 2 - sizeof(struct big))
		return NULL; /* no such block, and no overflow below */
	a->wanted = n > SIZE_MAX / 2 - a->wanted ? SIZE_MAX / 2 : a->wanted + n;
	if (BUMP && a->buf != NULL && n <= a->cap - a->used) {
		void *p = a->buf + a->used;
		a->used += n;
		return p;
	}
	size_t want = BUMP ? n : size; /* exact for the sanitizer */
	struct big *b = malloc(sizeof *b + (want > 0 ? want : 1));
	if (b == NULL)
		return NULL;
	b->next = a->big;
	a->big = b;
	return b->data;
}

/* Blocks go back all at once, at the reset. */
static void arena_free(void *data, void *p)
{
	(void)data;
	(void)p;
}

void wal_arena_init(struct wal_arena *a)
{
	*a = (struct wal_arena){0};
	a->pb.alloc = arena_alloc;
	a->pb.free = arena_free;
	a->pb.allocator_data = a;
}

static void free_big(struct wal_arena *a)
{
	while (a->big != NULL) {
		struct big *b = a->big;
		a->big = b->next;
		free(b);
	}
}

void wal_arena_reset(struct wal_arena *a)
{
	free_big(a);
	if (BUMP && a->wanted > a->cap && a->cap < WAL_ARENA_KEEP) {
		size_t cap = a->cap != 0 ? a->cap : 4096;
		while (cap < a->wanted && cap < WAL_ARENA_KEEP)
			cap *= 2;
		/* Aligned for any object: malloc's guarantee. */
		uint8_t *buf = malloc(cap);
		if (buf != NULL) {
			free(a->buf);
			a->buf = buf;
			a->cap = cap;
		}
	}
	a->used = 0;
	a->wanted = 0;
}

void wal_arena_close(struct wal_arena *a)
{
	free_big(a);
	free(a->buf);
	wal_arena_init(a);
}

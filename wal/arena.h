/*
 * arena.h — where the FSM unpacks a command: a bump allocator handed to
 * protobuf-c, so that the dozens of small blocks one command's unpack
 * asks for (every string, bytes field, submessage and array) cost a
 * pointer increment each, and all go back at once with wal_arena_reset()
 * instead of one free() each through protobuf-c's free_unpacked.
 *
 * The arena keeps one block (grown to what the largest command needed,
 * up to WAL_ARENA_KEEP) across resets; what does not fit is malloc'd
 * and freed at the next reset. A message unpacked into an arena must not
 * be freed with free_unpacked, and nothing of it may be used after the
 * reset. One thread at a time.
 */
#ifndef SETTLE_WAL_ARENA_H
#define SETTLE_WAL_ARENA_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* The most an arena keeps between resets: a larger command's unpack
 * goes to malloc'd blocks beyond it. */
#define WAL_ARENA_KEEP ((size_t)1 << 20)

struct wal_arena {
	ProtobufCAllocator pb; /* for protobuf-c: allocator_data is this */
	uint8_t *buf;	       /* the kept block, cap bytes */
	size_t cap, used;
	size_t wanted; /* what was asked since the reset */
	void *big;     /* blocks beyond buf, linked, freed at reset */
};

void wal_arena_init(struct wal_arena *a);
/* Give back everything allocated since the last reset; the kept block
 * grows to what was asked (at most WAL_ARENA_KEEP). */
void wal_arena_reset(struct wal_arena *a);
/* Free everything; the arena is as after init. */
void wal_arena_close(struct wal_arena *a);

#endif /* SETTLE_WAL_ARENA_H */

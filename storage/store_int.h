/*
 * store_int.h — internals shared by the files of storage/. Not a public
 * contract: use store.h.
 */
#ifndef SETTLE_STORE_INT_H
#define SETTLE_STORE_INT_H

#include <stdarg.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "storage/store.h"

/* The named DBs, in snapshot order. */
enum {
	STORE_DB_META,
	STORE_DB_TXS,
	STORE_DB_BRANCHES,
	STORE_DB_HISTORY,
	STORE_DB_DUE,
	STORE_DB_BY_STATE,
	STORE_DB_FINISHED,
	STORE_DB_CMDS,
	STORE_DB_CMD_TIME,
	/* A format 1 snapshot holds the DBs before this one, in order. */
	STORE_DB_APPLIED_LOG,
	STORE_DB_MEMBERS, /* node id -> MemberRecord (storage/members.c) */
	/* A snapshot of format 2 or 3 holds the DBs before this one. */
	STORE_DB_CMD_IDS,
	STORE_DB_N
};

/* DBs in a snapshot of format 1 (before applied_log), and of formats 2 and
 * 3 (before cmd_ids). */
#define STORE__DB_N_V1 STORE_DB_APPLIED_LOG
#define STORE__DB_N_V3 STORE_DB_CMD_IDS

extern const char *const store__db_names[STORE_DB_N];

/* The rows of meta. */
#define STORE__META_APPLIED "applied"
#define STORE__META_VERSION "version"
#define STORE__META_CLOCK   "clock"
#define STORE__META_LEVEL   "level"
/* Format 4: how many transactions each final state holds (they have no
 * by_state row), STORE__FINAL_N u64 BE in store__final_states order. */
#define STORE__META_FINAL "final"
#define STORE__FINAL_N	  4

/* The final states, in the order of the final row's counters. */
extern const int store__final_states[STORE__FINAL_N];

/* The counter of state in the final row, or -1 for a live state. */
static inline int store__final_slot(int state)
{
	for (int i = 0; i < STORE__FINAL_N; i++)
		if (store__final_states[i] == state)
			return i;
	return -1;
}

/* Read the final row into n[] (zeros when absent). */
int store__final_get(struct store *s, MDB_txn *txn, uint64_t n[STORE__FINAL_N]);
/* Add delta to the counter of final state (one of store__final_states). */
int store__final_add(struct store *s, MDB_txn *txn, int state, int64_t delta);
/* Format 3 to 4: by_state rows of final states become the final row. */
int store__final_upgrade(struct store *s, MDB_txn *txn);

/* Longest key we build: due_ms(8) + gid(128) or gid(128) \0 seq(8). */
#define STORE__KEY_MAX 160
#define STORE__GID_MAX 128

struct store {
	MDB_env *env;
	char dir[512]; /* for statvfs: the disk's free space */
	MDB_dbi dbi[STORE_DB_N];
	char errmsg[256];
	/* Written only by store_sync() and store_snapshot_txn(), which may
	 * run on a worker thread while the loop thread fills errmsg. */
	char work_errmsg[256];
	/* The apply batch (store_batch_txn()): a write transaction left open
	 * across entries, and the thread that opened it, which alone reads
	 * through it. */
	MDB_txn *batch;
	pthread_t batch_owner;
};

/* Record "what: mdb_strerror(rc)" and return the mapped SETTLE_E code. */
int store__mdb_fail(struct store *s, int rc, const char *what);
/* Record a formatted message and return err. */
int store__fail(struct store *s, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same into a caller's buffer (for the worker-thread paths). */
int store__fail_buf(char *buf, size_t len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Write meta's version row (STORE_FORMAT_VERSION) in write txn txn. */
int store__version_put(struct store *s, MDB_txn *txn);

/* The events table (storage/history.c): append the packed Event ev (len
 * bytes of protobuf, as formats 1 and 2 stored them) to the history row of
 * gid (glen bytes), stored the way of format 4. */
int store__history_append(struct store *s, MDB_txn *txn, const void *gid,
			  size_t glen, const uint8_t *ev, size_t len);
/* Step through a history row [*p, end): 1 with the next packed event in
 * ev, len and *p past it; 0 at the end; -1 if the row is cut short. */
int store__history_next(const uint8_t **p, const uint8_t *end,
			const uint8_t **ev, size_t *len);
/* Append every row of a format 1 or 2 events table (gid \0 seq -> Event,
 * read through cursor c, in key order) to the history rows in txn. */
int store__history_convert(struct store *s, MDB_txn *txn, MDB_cursor *c);
/* Decode one stored event (format 4, len bytes at p) into a malloc'd
 * Event (settle__v1__event__free_unpacked() frees it). SETTLE_EPROTO if
 * it does not decode, SETTLE_ENOMEM. */
int store__event_decode(const uint8_t *p, size_t len, Settle__V1__Event **out);
/* A format 3 history row (packed Events) as format 4 in a malloc'd *out.
 * SETTLE_EPROTO if an event does not decode, SETTLE_ENOMEM. */
int store__history_chunk_v3(const uint8_t *old, size_t len, uint8_t **out,
			    size_t *out_len);
/* Format 3 to 4: rewrite every history row of txn's store. */
int store__history_upgrade(struct store *s, MDB_txn *txn);

/* Use txn, or open an internal read txn into *own (then *txn_out = it). */
int store__read_txn(struct store *s, MDB_txn *txn, MDB_txn **txn_out,
		    MDB_txn **own);

static inline void store__be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static inline uint64_t store__get_be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = (v << 8) | p[i];
	return v;
}

static inline void store__be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static inline uint32_t store__get_be32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
	       ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

/* FNV-1a 64 (snapshot checksums): h is STORE__FNV_INIT or the hash of the
 * bytes before p, so a stream can be hashed piece by piece. */
#define STORE__FNV_INIT 0xcbf29ce484222325ull
static inline uint64_t store__fnv1a_more(uint64_t h, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

static inline uint64_t store__fnv1a(const uint8_t *p, size_t n)
{
	return store__fnv1a_more(STORE__FNV_INIT, p, n);
}

/* Whether the n bytes at p are a gid as the commands accept them (1..128
 * printable ASCII, no space): what restore checks of every stored gid. */
static inline bool store__gid_ok(const uint8_t *p, size_t n)
{
	if (n == 0 || n > STORE__GID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (p[i] < 0x21 || p[i] > 0x7e)
			return false;
	return true;
}

/* Length of gid or -1 if it cannot be a key (NULL, empty, too long). */
static inline int store__gid_len(const char *gid)
{
	if (gid == NULL)
		return -1;
	size_t n = strnlen(gid, STORE__GID_MAX + 1);
	if (n == 0 || n > STORE__GID_MAX)
		return -1;
	return (int)n;
}

/* Key builders: return the key length. buf is STORE__KEY_MAX bytes. */
size_t store__key_u64_gid(uint8_t *buf, uint64_t v, const char *gid,
			  size_t glen);
size_t store__key_gid_u32(uint8_t *buf, const char *gid, size_t glen,
			  uint32_t v);
size_t store__key_gid_u64(uint8_t *buf, const char *gid, size_t glen,
			  uint64_t v);

/* Varints as protobuf writes them (the history's events use them too):
 * put returns the bytes written, at most 10; get takes one at *p before
 * end, false if it is cut short or longer than 10 bytes. */
static inline size_t store__put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

static inline size_t store__varint_len(uint64_t v)
{
	size_t n = 1;
	while (v >= 0x80) {
		v >>= 7;
		n++;
	}
	return n;
}

static inline bool store__get_varint(const uint8_t **p, const uint8_t *end,
				     uint64_t *v)
{
	*v = 0;
	for (int shift = 0; shift < 64; shift += 7) {
		if (*p == end)
			return false;
		uint8_t b = *(*p)++;
		*v |= (uint64_t)(b & 0x7f) << shift;
		if ((b & 0x80) == 0)
			return true;
	}
	return false;
}

/*
 * codec.c: scan the wire form of a protobuf message for a few varint fields,
 * without unpacking it. vals[f] (f < nvals) gets the last value of field
 * f, as a decoder keeps it; field rep, repeated (packed or not), gets its
 * count in *rep_n and its first value in *rep_first. vals, *rep_n and
 * *rep_first are not cleared first. -1 if the bytes are not a message.
 */
struct store__wire {
	uint64_t *vals;
	size_t nvals;
	uint32_t rep; /* 0: none */
	size_t rep_n;
	uint64_t rep_first;
};
int store__wire_scan(const uint8_t *p, size_t len, struct store__wire *w);

/*
 * codec.c: stored records packed and unpacked. TxRecord and BranchRecord
 * go through a one-pass codec that writes and builds exactly what
 * protobuf-c does (free the result with the generated free_unpacked);
 * every other message through protobuf-c.
 *
 * store__pack_into() packs m into the cap bytes at stack when it fits
 * (stack may be NULL), else into a malloc'd buffer: *buf is stack or is
 * the caller's to free. store__unpack() returns NULL when the bytes do not
 * decode. store__codec_lean() says whether d takes the one-pass path (its
 * fields are all of the kinds it handles).
 */
#define STORE__PACK_STACK 1024 /* a record's stack buffer: most fit */
int store__pack_into(struct store *s, const ProtobufCMessage *m, uint8_t *stack,
		     size_t cap, uint8_t **buf, size_t *len);
ProtobufCMessage *store__unpack(const ProtobufCMessageDescriptor *d,
				const uint8_t *p, size_t len);
/* The same with allocator al (NULL: malloc's): the message and all it
 * holds come from al, and go back with free_unpacked(m, al). */
ProtobufCMessage *store__unpack_in(const ProtobufCMessageDescriptor *d,
				   const uint8_t *p, size_t len,
				   ProtobufCAllocator *al);

/* Memory for what an unpack with allocator al holds: from al, or
 * malloc's when al is NULL (as protobuf-c with a NULL allocator, so that
 * free_unpacked(m, al) matches). */
static inline void *store__al_alloc(ProtobufCAllocator *al, size_t n)
{
	return al != NULL ? al->alloc(al->allocator_data, n) : malloc(n);
}

static inline void store__al_free(ProtobufCAllocator *al, void *p)
{
	if (al != NULL)
		al->free(al->allocator_data, p);
	else
		free(p);
}
bool store__codec_lean(const ProtobufCMessageDescriptor *d);

/* Pack a protobuf-c message into a malloc'd buffer. */
int store__pack(struct store *s, const ProtobufCMessage *m, uint8_t **buf,
		size_t *len);

#endif /* SETTLE_STORE_INT_H */

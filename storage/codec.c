/*
 * codec.c — the two records the FSM reads and writes for every
 * transaction, TxRecord and BranchRecord, packed and unpacked in one pass
 * over their fields.
 *
 * protobuf-c walks a message's descriptor twice to pack it (its size,
 * then its bytes) and twice to unpack it (a scan, then the parse), with a
 * general case for every label and type: about 3,000 instructions per
 * record each way, a fifth of a node's work per transaction. These two
 * records are flat proto3 messages of a few kinds of fields; for them
 * this file writes the very bytes protobuf-c writes (test_codec compares
 * them field by field) and builds the very structure its unpack builds,
 * allocated as it allocates (free it with the generated free_unpacked).
 *
 * Which fields there are comes from the generated descriptor, checked
 * once: a field of a kind not handled here (added later to the .proto)
 * turns this path off for that record, and protobuf-c does the work. So
 * does anything unusual in stored bytes (an unknown field, a field twice,
 * a wire type other than its own): protobuf-c decides what they mean.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "storage/store_int.h"

/* Highest field number handled: the index by number is an array. */
#define LEAN_MAX_FIELD 63

struct lean {
	const ProtobufCMessageDescriptor *d;
	bool ok; /* every field of a kind handled here */
	const ProtobufCFieldDescriptor *by_num[LEAN_MAX_FIELD + 1];
};

static struct lean lean_tx = {.d = &settle__v1__tx_record__descriptor};
static struct lean lean_branch = {.d = &settle__v1__branch_record__descriptor};
static pthread_once_t lean_once = PTHREAD_ONCE_INIT;

static bool field_handled(const ProtobufCFieldDescriptor *f)
{
	if (f->id == 0 || f->id > LEAN_MAX_FIELD ||
	    (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0)
		return false;
	if (f->label == PROTOBUF_C_LABEL_REPEATED) /* packed, as proto3 */
		return f->type == PROTOBUF_C_TYPE_UINT32 &&
		       (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED) != 0;
	if (f->label != PROTOBUF_C_LABEL_NONE)
		return false;
	switch (f->type) {
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_ENUM:
	case PROTOBUF_C_TYPE_BOOL:
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_BYTES:
		return true;
	default:
		return false;
	}
}

static void lean_build(struct lean *l)
{
	l->ok = true;
	for (unsigned i = 0; i < l->d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &l->d->fields[i];
		if (!field_handled(f) || l->by_num[f->id] != NULL) {
			l->ok = false;
			return;
		}
		l->by_num[f->id] = f;
	}
}

static void lean_init(void)
{
	lean_build(&lean_tx);
	lean_build(&lean_branch);
}

static const struct lean *lean_of(const ProtobufCMessageDescriptor *d)
{
	pthread_once(&lean_once, lean_init);
	if (d == lean_tx.d)
		return lean_tx.ok ? &lean_tx : NULL;
	if (d == lean_branch.d)
		return lean_branch.ok ? &lean_branch : NULL;
	return NULL;
}

bool store__codec_lean(const ProtobufCMessageDescriptor *d)
{
	return lean_of(d) != NULL;
}

#define MEMBER(T, m, off)  ((T *)((uint8_t *)(m) + (off)))
#define CMEMBER(T, m, off) ((const T *)((const uint8_t *)(m) + (off)))

/* ---- Packing ------------------------------------------------------------ */

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
	return p + store__put_varint(p, v);
}

static uint8_t *put_tag(uint8_t *p, uint32_t id, unsigned wire)
{
	return put_varint(p, (uint64_t)id << 3 | wire);
}

/* A field's value as the varint protobuf-c writes (an enum or int32 is
 * sign-extended), and whether it is written at all (proto3: not when
 * zero). */
static bool scalar_of(const ProtobufCFieldDescriptor *f, const void *m,
		      uint64_t *v)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_UINT32:
		*v = *CMEMBER(uint32_t, m, f->offset);
		break;
	case PROTOBUF_C_TYPE_ENUM:
		*v = (uint64_t)(int64_t)*CMEMBER(int32_t, m, f->offset);
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*v = *CMEMBER(protobuf_c_boolean, m, f->offset) != 0;
		break;
	default: /* UINT64 */
		*v = *CMEMBER(uint64_t, m, f->offset);
		break;
	}
	return *v != 0;
}

/* The bytes of a STRING or BYTES field: NULL when not written. */
static const uint8_t *blob_of(const ProtobufCFieldDescriptor *f, const void *m,
			      size_t *len)
{
	if (f->type == PROTOBUF_C_TYPE_STRING) {
		const char *s = *CMEMBER(char *, m, f->offset);
		if (s == NULL || s[0] == '\0')
			return NULL;
		*len = strlen(s);
		return (const uint8_t *)s;
	}
	const ProtobufCBinaryData *b =
	    CMEMBER(ProtobufCBinaryData, m, f->offset);
	if (b->len == 0)
		return NULL;
	*len = b->len;
	return b->data;
}

/* At least the packed size of m (each field at its longest), so that
 * lean_pack() needs no checks. */
static size_t lean_bound(const struct lean *l, const void *m)
{
	size_t n = 0;
	for (unsigned i = 0; i < l->d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &l->d->fields[i];
		size_t len;
		if (f->label == PROTOBUF_C_LABEL_REPEATED)
			n += 2 + 10 +
			     5 * *CMEMBER(size_t, m, f->quantifier_offset);
		else if (f->type == PROTOBUF_C_TYPE_STRING ||
			 f->type == PROTOBUF_C_TYPE_BYTES)
			n += 2 + 10 + (blob_of(f, m, &len) != NULL ? len : 0);
		else
			n += 2 + 10;
	}
	return n;
}

static uint8_t *pack_repeated(const ProtobufCFieldDescriptor *f, const void *m,
			      uint8_t *p)
{
	size_t k = *CMEMBER(size_t, m, f->quantifier_offset);
	const uint32_t *v = *CMEMBER(uint32_t *, m, f->offset);
	if (k == 0)
		return p;
	size_t body = 0;
	for (size_t j = 0; j < k; j++)
		body += store__varint_len(v[j]);
	p = put_varint(put_tag(p, f->id, 2), body);
	for (size_t j = 0; j < k; j++)
		p = put_varint(p, v[j]);
	return p;
}

static size_t lean_pack(const struct lean *l, const void *m, uint8_t *out)
{
	uint8_t *p = out;
	for (unsigned i = 0; i < l->d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &l->d->fields[i];
		uint64_t v;
		size_t len;
		const uint8_t *b;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			p = pack_repeated(f, m, p);
		} else if (f->type == PROTOBUF_C_TYPE_STRING ||
			   f->type == PROTOBUF_C_TYPE_BYTES) {
			if ((b = blob_of(f, m, &len)) == NULL)
				continue;
			p = put_varint(put_tag(p, f->id, 2), len);
			memcpy(p, b, len);
			p += len;
		} else if (scalar_of(f, m, &v)) {
			p = put_varint(put_tag(p, f->id, 0), v);
		}
	}
	return (size_t)(p - out);
}

int store__pack_into(struct store *s, const ProtobufCMessage *m, uint8_t *stack,
		     size_t cap, uint8_t **buf, size_t *len)
{
	const struct lean *l = lean_of(m->descriptor);
	size_t n;
	if (l != NULL && m->n_unknown_fields == 0)
		n = lean_bound(l, m);
	else
		n = protobuf_c_message_get_packed_size(m);
	uint8_t *p = stack;
	if (n > cap || stack == NULL) {
		/* malloc(0) may return NULL: one byte for empty messages. */
		p = malloc(n > 0 ? n : 1);
		if (p == NULL)
			return store__fail(s, SETTLE_ENOMEM,
					   "pack %s: out of memory",
					   m->descriptor->short_name);
	}
	if (l != NULL && m->n_unknown_fields == 0)
		n = lean_pack(l, m, p);
	else
		protobuf_c_message_pack(m, p);
	*buf = p;
	*len = n;
	return 0;
}

/* ---- Scanning: the brief reads of read.c ------------------------------- */

static void wire_rep(struct store__wire *w, uint64_t v)
{
	if (w->rep_n++ == 0)
		w->rep_first = v;
}

int store__wire_scan(const uint8_t *p, size_t len, struct store__wire *w)
{
	const uint8_t *end = p + len;
	while (p < end) {
		uint64_t tag, v;
		if (!store__get_varint(&p, end, &tag) || tag >> 3 == 0)
			return -1;
		uint64_t f = tag >> 3;
		switch (tag & 7) {
		case 0: /* varint */
			if (!store__get_varint(&p, end, &v))
				return -1;
			if (w->rep != 0 && f == w->rep)
				wire_rep(w, v);
			else if (f < w->nvals)
				w->vals[f] = v;
			break;
		case 1: /* 64-bit */
			if (end - p < 8)
				return -1;
			p += 8;
			break;
		case 2: /* length-delimited: bytes, strings, packed */
			if (!store__get_varint(&p, end, &v) ||
			    v > (uint64_t)(end - p))
				return -1;
			if (w->rep != 0 && f == w->rep) {
				const uint8_t *q = p;
				uint64_t x;
				while (q < p + v)
					if (!store__get_varint(&q, p + v, &x))
						return -1;
					else
						wire_rep(w, x);
			}
			p += v;
			break;
		case 5: /* 32-bit */
			if (end - p < 4)
				return -1;
			p += 4;
			break;
		default: /* groups: not in our messages */
			return -1;
		}
	}
	return 0;
}

/* ---- Unpacking ---------------------------------------------------------- */

static int set_scalar(const ProtobufCFieldDescriptor *f, void *m, uint64_t v)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_UINT32:
		*MEMBER(uint32_t, m, f->offset) = (uint32_t)v;
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		*MEMBER(int32_t, m, f->offset) = (int32_t)(uint32_t)v;
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		*MEMBER(protobuf_c_boolean, m, f->offset) = v != 0;
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
		*MEMBER(uint64_t, m, f->offset) = v;
		return 0;
	default:
		return -1;
	}
}

static int set_blob(const ProtobufCFieldDescriptor *f, void *m,
		    const uint8_t *b, size_t len, ProtobufCAllocator *al)
{
	if (f->type == PROTOBUF_C_TYPE_STRING) {
		char *s = store__al_alloc(al, len + 1);
		if (s == NULL)
			return -1;
		memcpy(s, b, len);
		s[len] = '\0';
		*MEMBER(char *, m, f->offset) = s;
		return 0;
	}
	if (f->type != PROTOBUF_C_TYPE_BYTES)
		return -1;
	ProtobufCBinaryData *d = MEMBER(ProtobufCBinaryData, m, f->offset);
	d->len = len;
	if (len == 0)
		return 0;
	if ((d->data = store__al_alloc(al, len)) == NULL)
		return -1;
	memcpy(d->data, b, len);
	return 0;
}

/* Append the varints of b (packed) or the one value v to a repeated
 * uint32 field. */
static int add_repeated(const ProtobufCFieldDescriptor *f, void *m,
			const uint8_t *b, size_t len, bool packed, uint64_t v,
			ProtobufCAllocator *al)
{
	size_t *k = MEMBER(size_t, m, f->quantifier_offset);
	uint32_t **arr = MEMBER(uint32_t *, m, f->offset);
	size_t more = 1;
	if (packed) {
		more = 0;
		for (size_t j = 0; j < len; j++)
			more += (b[j] & 0x80) == 0;
		if (len != 0 && (b[len - 1] & 0x80) != 0)
			return -1;
	}
	if (more == 0)
		return 0;
	uint32_t *a = store__al_alloc(al, (*k + more) * sizeof *a);
	if (a == NULL)
		return -1;
	if (*k > 0)
		memcpy(a, *arr, *k * sizeof *a);
	store__al_free(al, *arr);
	*arr = a;
	if (!packed) {
		a[(*k)++] = (uint32_t)v;
		return 0;
	}
	const uint8_t *q = b;
	while (q < b + len) {
		if (!store__get_varint(&q, b + len, &v))
			return -1;
		a[(*k)++] = (uint32_t)v;
	}
	return 0;
}

/* 0: m holds the record; -1: leave the bytes to protobuf-c. */
static int lean_unpack(const struct lean *l, const uint8_t *p, size_t len,
		       void *m, ProtobufCAllocator *al)
{
	const uint8_t *end = p + len;
	uint64_t seen = 0;
	while (p < end) {
		uint64_t tag, v;
		const uint8_t *at = p;
		/* protobuf-c takes tags and lengths of at most 5 bytes. */
		if (!store__get_varint(&p, end, &tag) || p - at > 5 ||
		    (tag >> 3) == 0 || (tag >> 3) > LEAN_MAX_FIELD)
			return -1;
		const ProtobufCFieldDescriptor *f = l->by_num[tag >> 3];
		unsigned wire = tag & 7;
		if (f == NULL)
			return -1; /* unknown: protobuf-c keeps it */
		bool repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
		if (!repeated) {
			if ((seen & (1ull << f->id)) != 0)
				return -1; /* twice: last wins there */
			seen |= 1ull << f->id;
		}
		if (wire == 0) {
			at = p;
			if (!store__get_varint(&p, end, &v))
				return -1;
			/* A bool is true when any of its bits is set, even
			 * one past the 64 a varint holds. */
			for (; f->type == PROTOBUF_C_TYPE_BOOL && at < p; at++)
				v |= *at & 0x7f;
			if (repeated ? add_repeated(f, m, NULL, 0, false, v, al)
				     : set_scalar(f, m, v))
				return -1;
		} else if (wire == 2) {
			at = p;
			if (!store__get_varint(&p, end, &v) || p - at > 5 ||
			    v > (uint64_t)(end - p))
				return -1;
			if (repeated ? add_repeated(f, m, p, v, true, 0, al)
				     : set_blob(f, m, p, v, al))
				return -1;
			p += v;
		} else {
			return -1;
		}
	}
	return 0;
}

ProtobufCMessage *store__unpack(const ProtobufCMessageDescriptor *d,
				const uint8_t *p, size_t len)
{
	return store__unpack_in(d, p, len, NULL);
}

ProtobufCMessage *store__unpack_in(const ProtobufCMessageDescriptor *d,
				   const uint8_t *p, size_t len,
				   ProtobufCAllocator *al)
{
	const struct lean *l = lean_of(d);
	if (l == NULL)
		return protobuf_c_message_unpack(d, al, len, p);
	ProtobufCMessage *m = store__al_alloc(al, d->sizeof_message);
	if (m == NULL)
		return NULL;
	d->message_init(m);
	if (lean_unpack(l, p, len, m, al) == 0)
		return m;
	protobuf_c_message_free_unpacked(m, al);
	return protobuf_c_message_unpack(d, al, len, p);
}

/*
 * test_codec.c — storage/codec.c against protobuf-c: the same bytes
 * packed, the same records unpacked, for every field of TxRecord and
 * BranchRecord alone and all together.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "storage/store_int.h"

static const ProtobufCMessageDescriptor *const records[] = {
    &settle__v1__tx_record__descriptor,
    &settle__v1__branch_record__descriptor,
};

static char strs[64][32];
static uint8_t blob[] = {0, 1, 0xff, 'x'};
static uint32_t reps[] = {1, 300, 70000, 0};

/* A message of d with field `only` (0: every field) set to a value that
 * is not its default; big: the largest values (a negative enum). */
static ProtobufCMessage *filled(const ProtobufCMessageDescriptor *d,
				unsigned only, bool big)
{
	ProtobufCMessage *m = calloc(1, d->sizeof_message);
	cr_assert_not_null(m);
	d->message_init(m);
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		uint8_t *at = (uint8_t *)m + f->offset;
		if (only != 0 && f->id != only)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			*(size_t *)((uint8_t *)m + f->quantifier_offset) =
			    big ? 4 : 1;
			*(uint32_t **)at = reps;
			continue;
		}
		switch (f->type) {
		case PROTOBUF_C_TYPE_UINT32:
			*(uint32_t *)at = big ? UINT32_MAX : f->id * 1000 + 7;
			break;
		case PROTOBUF_C_TYPE_UINT64:
			*(uint64_t *)at =
			    big ? UINT64_MAX : (1ull << 40) + f->id;
			break;
		case PROTOBUF_C_TYPE_ENUM:
			*(int32_t *)at = big ? -2 : 1;
			break;
		case PROTOBUF_C_TYPE_BOOL:
			*(protobuf_c_boolean *)at = 1;
			break;
		case PROTOBUF_C_TYPE_STRING:
			snprintf(strs[f->id], sizeof strs[f->id], "field-%u%s",
				 f->id, big ? " with more text" : "");
			*(char **)at = strs[f->id];
			break;
		case PROTOBUF_C_TYPE_BYTES:
			((ProtobufCBinaryData *)at)->data = blob;
			((ProtobufCBinaryData *)at)->len =
			    big ? sizeof blob : 1;
			break;
		default:
			cr_assert_fail(
			    "field %s: a type the test does not fill", f->name);
		}
	}
	return m;
}

static uint8_t *reference_pack(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *p = malloc(*len + 1);
	cr_assert_not_null(p);
	protobuf_c_message_pack(m, p);
	return p;
}

/* An allocator that knows every block it handed out: a block freed
 * through it must be one of its own, and all must come back. */
static struct {
	void *blocks[256];
	size_t n, allocs;
} track;

static void *track_alloc(void *data, size_t size)
{
	(void)data;
	cr_assert_lt(track.n, 256);
	void *p = malloc(size > 0 ? size : 1);
	cr_assert_not_null(p);
	track.blocks[track.n++] = p;
	track.allocs++;
	return p;
}

static void track_free(void *data, void *p)
{
	(void)data;
	if (p == NULL)
		return; /* protobuf-c frees NULL as free() would */
	for (size_t i = 0; i < track.n; i++)
		if (track.blocks[i] == p) {
			track.blocks[i] = track.blocks[--track.n];
			free(p);
			return;
		}
	cr_assert_fail("freed a block the allocator never gave: %p", p);
}

static ProtobufCAllocator tracker = {track_alloc, track_free, NULL};

/* m packs to the bytes protobuf-c writes, and those unpack to a record
 * protobuf-c packs back to the same bytes, with malloc's memory or all
 * of it from an allocator given (store__unpack_in()). */
static void same_both_ways(const ProtobufCMessage *m, const char *what)
{
	size_t rlen, len;
	uint8_t *ref = reference_pack(m, &rlen);
	uint8_t stack[16], *buf;
	cr_assert_eq(store__pack_into(NULL, m, stack, sizeof stack, &buf, &len),
		     0);
	cr_assert_eq(len, rlen, "%s: %zu bytes, protobuf-c %zu", what, len,
		     rlen);
	cr_assert_eq(memcmp(buf, ref, len), 0, "%s: other bytes", what);
	if (buf != stack)
		free(buf);

	ProtobufCMessage *u = store__unpack(m->descriptor, ref, rlen);
	cr_assert_not_null(u, "%s: does not unpack", what);
	cr_assert_eq(u->n_unknown_fields, 0);
	size_t ulen;
	uint8_t *again = reference_pack(u, &ulen);
	cr_assert_eq(ulen, rlen, "%s: unpacked to another record", what);
	cr_assert_eq(memcmp(again, ref, rlen), 0, "%s: unpacked otherwise",
		     what);
	protobuf_c_message_free_unpacked(u, NULL);
	free(again);

	track.allocs = 0;
	u = store__unpack_in(m->descriptor, ref, rlen, &tracker);
	cr_assert_not_null(u, "%s: does not unpack with an allocator", what);
	cr_assert_gt(track.allocs, 0, "%s: the allocator was not used", what);
	again = reference_pack(u, &ulen);
	cr_assert_eq(ulen, rlen, "%s: unpacked to another record", what);
	cr_assert_eq(memcmp(again, ref, rlen), 0, "%s: unpacked otherwise",
		     what);
	protobuf_c_message_free_unpacked(u, &tracker);
	cr_assert_eq(track.n, 0, "%s: %zu blocks not given back", what,
		     track.n);
	free(again);
	free(ref);
}

Test(codec, both_records_take_the_one_pass_path)
{
	/* A field of a kind codec.c does not handle switches it off for
	 * the record (protobuf-c then does the work): handle it there. */
	for (size_t r = 0; r < sizeof records / sizeof *records; r++)
		cr_expect(store__codec_lean(records[r]), "%s",
			  records[r]->name);
	cr_expect_not(store__codec_lean(&settle__v1__command__descriptor));
}

Test(codec, every_field_packs_and_unpacks_as_protobuf_c)
{
	for (size_t r = 0; r < sizeof records / sizeof *records; r++) {
		const ProtobufCMessageDescriptor *d = records[r];
		char what[128];
		for (int big = 0; big <= 1; big++) {
			for (unsigned i = 0; i <= d->n_fields; i++) {
				unsigned id =
				    i == d->n_fields ? 0 : d->fields[i].id;
				ProtobufCMessage *m = filled(d, id, big);
				snprintf(what, sizeof what, "%s field %u%s",
					 d->short_name, id, big ? " big" : "");
				same_both_ways(m, what);
				free(m);
			}
		}
		/* Nothing set: no bytes at all. */
		ProtobufCMessage *m = filled(d, UINT32_MAX, false);
		same_both_ways(m, d->short_name);
		free(m);
	}
}

/* Every prefix of a record decodes, or fails, as with protobuf-c. */
Test(codec, truncated_records_decode_as_protobuf_c_decodes_them)
{
	for (size_t r = 0; r < sizeof records / sizeof *records; r++) {
		ProtobufCMessage *m = filled(records[r], 0, true);
		size_t len;
		uint8_t *full = reference_pack(m, &len);
		for (size_t n = 0; n < len; n++) {
			uint8_t *cut = malloc(n + 1);
			cr_assert_not_null(cut);
			memcpy(cut, full, n);
			ProtobufCMessage *a = store__unpack(records[r], cut, n);
			ProtobufCMessage *b =
			    protobuf_c_message_unpack(records[r], NULL, n, cut);
			cr_assert_eq(a == NULL, b == NULL,
				     "%s cut at %zu of %zu: %s here, %s there",
				     records[r]->short_name, n, len,
				     a ? "decodes" : "fails",
				     b ? "decodes" : "fails");
			if (a != NULL) {
				size_t la, lb;
				uint8_t *pa = reference_pack(a, &la);
				uint8_t *pb = reference_pack(b, &lb);
				cr_assert_eq(la, lb);
				cr_assert_eq(memcmp(pa, pb, la), 0);
				free(pa);
				free(pb);
				protobuf_c_message_free_unpacked(a, NULL);
				protobuf_c_message_free_unpacked(b, NULL);
			}
			free(cut);
		}
		free(full);
		free(m);
	}
}

/* What the one pass does not take is left to protobuf-c, whose reading
 * of it stands: an unknown field kept, a field twice (the last wins), a
 * field of another wire type. */
Test(codec, unusual_bytes_are_read_by_protobuf_c)
{
	const ProtobufCMessageDescriptor *d =
	    &settle__v1__branch_record__descriptor;
	/* state = 2, then unknown field 60 = 5 */
	const uint8_t unknown[] = {0x30, 2, 0xe0, 0x03, 5};
	Settle__V1__BranchRecord *b = (Settle__V1__BranchRecord *)store__unpack(
	    d, unknown, sizeof unknown);
	cr_assert_not_null(b);
	cr_expect_eq(b->state, 2);
	cr_expect_eq(b->base.n_unknown_fields, 1);
	size_t len;
	uint8_t stack[64], *buf;
	cr_assert_eq(
	    store__pack_into(NULL, &b->base, stack, sizeof stack, &buf, &len),
	    0);
	cr_expect_eq(len, sizeof unknown, "the unknown field is kept");
	cr_expect_eq(memcmp(buf, unknown, len), 0);
	settle__v1__branch_record__free_unpacked(b, NULL);

	/* name = "a", name = "bc": the last */
	const uint8_t twice[] = {0x5a, 1, 'a', 0x5a, 2, 'b', 'c'};
	b = (Settle__V1__BranchRecord *)store__unpack(d, twice, sizeof twice);
	cr_assert_not_null(b);
	cr_expect_str_eq(b->name, "bc");
	settle__v1__branch_record__free_unpacked(b, NULL);

	/* depends_on unpacked: 3 then 4, then packed {5} */
	const uint8_t unpacked[] = {0x68, 3, 0x68, 4, 0x6a, 1, 5};
	b = (Settle__V1__BranchRecord *)store__unpack(d, unpacked,
						      sizeof unpacked);
	cr_assert_not_null(b);
	cr_assert_eq(b->n_depends_on, 3);
	cr_expect_eq(b->depends_on[0], 3);
	cr_expect_eq(b->depends_on[2], 5);
	settle__v1__branch_record__free_unpacked(b, NULL);

	/* Found by review: a tag and a length of more than 5 bytes, which
	 * protobuf-c refuses, and a bool whose only bit is past the 64th,
	 * which it reads as true. */
	const uint8_t long_tag[] = {0x98, 0x80, 0x80, 0x80, 0x80, 0x00, 5};
	const uint8_t long_len[] = {0x0a, 0x81, 0x80, 0x80,
				    0x80, 0x80, 0x00, 0x41};
	const uint8_t high_bool[] = {0xc0, 0x01, 0x80, 0x80, 0x80, 0x80,
				     0x80, 0x80, 0x80, 0x80, 0x80, 0x02};
	const struct {
		const ProtobufCMessageDescriptor *d;
		const uint8_t *p;
		size_t n;
	} odd[] = {
	    {&settle__v1__tx_record__descriptor, long_tag, sizeof long_tag},
	    {&settle__v1__tx_record__descriptor, long_len, sizeof long_len},
	    {d, high_bool, sizeof high_bool},
	};
	for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
		ProtobufCMessage *x =
		    store__unpack(odd[i].d, odd[i].p, odd[i].n);
		ProtobufCMessage *y = protobuf_c_message_unpack(
		    odd[i].d, NULL, odd[i].n, odd[i].p);
		cr_expect_eq(x == NULL, y == NULL, "input %zu", i);
		if (x != NULL && y != NULL) {
			size_t lx, ly;
			uint8_t *px = reference_pack(x, &lx);
			uint8_t *py = reference_pack(y, &ly);
			cr_expect(lx == ly && memcmp(px, py, lx) == 0,
				  "input %zu decoded otherwise", i);
			free(px);
			free(py);
		}
		if (x != NULL)
			protobuf_c_message_free_unpacked(x, NULL);
		if (y != NULL)
			protobuf_c_message_free_unpacked(y, NULL);
	}

	/* state (a varint) as bytes: protobuf-c's verdict */
	const uint8_t wrong[] = {0x32, 1, 2};
	ProtobufCMessage *a = store__unpack(d, wrong, sizeof wrong);
	ProtobufCMessage *r =
	    protobuf_c_message_unpack(d, NULL, sizeof wrong, wrong);
	cr_expect_eq(a == NULL, r == NULL);
	if (a != NULL)
		protobuf_c_message_free_unpacked(a, NULL);
	if (r != NULL)
		protobuf_c_message_free_unpacked(r, NULL);
}

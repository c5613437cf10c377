/*
 * fuzz_record — storage/codec.c against protobuf-c on any bytes: the two
 * records it packs and unpacks in one pass (TxRecord, BranchRecord) are
 * read from the store, which a snapshot from another node fills.
 *
 * Input: [u8 record][record bytes]. Checks: store__unpack() decodes what
 * protobuf-c decodes and refuses what it refuses; the two records decoded
 * pack to the same bytes, with protobuf-c and with store__pack_into(); and
 * what is freed was allocated as protobuf-c allocates (ASan watches the
 * generated free_unpacked).
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "storage/store_int.h"

static const ProtobufCMessageDescriptor *const records[] = {
    &settle__v1__tx_record__descriptor,
    &settle__v1__branch_record__descriptor,
};

static uint8_t *packed(const ProtobufCMessage *m, size_t *len)
{
	*len = protobuf_c_message_get_packed_size(m);
	uint8_t *p = malloc(*len + 1);
	if (p == NULL)
		fuzz_fail("out of memory");
	protobuf_c_message_pack(m, p);
	return p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const ProtobufCMessageDescriptor *d = records[data[0] & 1];
	ProtobufCMessage *a = store__unpack(d, data + 1, size - 1);
	ProtobufCMessage *b =
	    protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
	FUZZ_CHECK((a == NULL) == (b == NULL), "%s: %s here, %s in protobuf-c",
		   d->short_name, a != NULL ? "decodes" : "refused",
		   b != NULL ? "decodes" : "refused");
	if (a != NULL) {
		size_t la, lb, lc;
		uint8_t *pa = packed(a, &la), *pb = packed(b, &lb), *pc;
		FUZZ_CHECK(la == lb && memcmp(pa, pb, la) == 0,
			   "%s: decoded otherwise than by protobuf-c",
			   d->short_name);
		uint8_t stack[64];
		FUZZ_CHECK(store__pack_into(NULL, a, stack, sizeof stack, &pc,
					    &lc) == 0,
			   "pack failed");
		FUZZ_CHECK(lc == la && memcmp(pc, pa, la) == 0,
			   "%s: packed otherwise than by protobuf-c",
			   d->short_name);
		if (pc != stack)
			free(pc);
		free(pa);
		free(pb);
		protobuf_c_message_free_unpacked(a, NULL);
		protobuf_c_message_free_unpacked(b, NULL);
	}
	return 0;
}

static void seed(int which, const ProtobufCMessage *m)
{
	size_t len;
	uint8_t *p = packed(m, &len);
	uint8_t *in = malloc(len + 1);
	if (in == NULL)
		fuzz_fail("out of memory");
	in[0] = (uint8_t)which;
	memcpy(in + 1, p, len);
	fuzz_seed_add(in, len + 1);
	free(in);
	free(p);
}

void fuzz_seeds(void)
{
	Settle__V1__TxRecord tx = SETTLE__V1__TX_RECORD__INIT;
	Settle__V1__BranchRecord br = SETTLE__V1__BRANCH_RECORD__INIT;
	Settle__V1__BranchRecord empty = SETTLE__V1__BRANCH_RECORD__INIT;
	static uint32_t deps[] = {1, 2, 300};

	tx.mode = SETTLE__V1__TX_MODE__SAGA;
	tx.state = SETTLE__V1__TX_STATE__SAGA_RUNNING;
	tx.created_ms = 1700000000000ull;
	tx.deadline_ms = 1700000030000ull;
	tx.reason = "step 2 (debit) failed: insufficient funds";
	tx.branches = 3;
	tx.pending = 1;
	tx.due_ms = 1700000000100ull;
	tx.xid.data = (uint8_t *)"\0\0\0\1\4\2gtrdbq";
	tx.xid.len = 12;
	tx.owner = "CN=initiator";
	tx.expires_clock_ms = 99;
	seed(0, &tx.base);
	br.branch_id = 2;
	br.endpoint = "127.0.0.1:7001";
	br.resource = "accounts";
	br.payload.data = (uint8_t *)"account=bob;amount=10";
	br.payload.len = strlen("account=bob;amount=10");
	br.state = SETTLE__V1__BRANCH_STATE__STEP_ACTING;
	br.n_depends_on = 3;
	br.depends_on = deps;
	br.last_error = "timeout";
	br.initiator_phase2 = 1;
	br.phase2_index = 12345678;
	seed(1, &br.base);
	seed(1, &empty.base);
	/* What review found the first version read otherwise than
	 * protobuf-c: a 6-byte tag, a 6-byte length, a bool set past bit
	 * 63. */
	static const uint8_t odd[][14] = {
	    {0, 0x98, 0x80, 0x80, 0x80, 0x80, 0x00, 5},
	    {0, 0x0a, 0x81, 0x80, 0x80, 0x80, 0x80, 0x00, 0x41},
	    {1, 0xc0, 0x01, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80,
	     0x80, 0x02},
	};
	static const size_t odd_len[] = {8, 9, 13};
	for (size_t i = 0; i < sizeof odd_len / sizeof *odd_len; i++)
		fuzz_seed_add(odd[i], odd_len[i]);
}

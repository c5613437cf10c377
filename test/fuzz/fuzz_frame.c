/*
 * fuzz_frame — the frame decoder every connection runs on bytes from the
 * network (rpc_decoder_feed / rpc_decoder_next).
 *
 * Input: [u8 chunking][u8 max_frame selector][stream bytes]. The stream is
 * decoded twice, fed whole and fed in chunks of pseudo-random sizes; both
 * runs must yield the same frames and end the same way, and every frame
 * taken out must survive a pack/decode round trip unchanged.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "rpc.h"

#define MAX_FRAMES 4096

struct run {
	uint8_t *packed[MAX_FRAMES]; /* each frame re-packed */
	size_t len[MAX_FRAMES];
	size_t n;
	int end; /* 1: wants more bytes, or the sticky error */
};

static void check_frame(const Settle__V1__Frame *f)
{
	/* What the server and client read off a frame: strings must be
	 * NUL-terminated and bodies in bounds. */
	if (f->error != NULL) {
		FUZZ_CHECK(f->error->message != NULL &&
			       f->error->leader != NULL,
			   "error strings missing");
		(void)strlen(f->error->message);
		(void)strlen(f->error->leader);
		(void)settle_err_from_wire((int)f->error->code);
	}
	FUZZ_CHECK(f->body.len == 0 || f->body.data != NULL,
		   "body without data");
	if (f->body.len > 0) {
		volatile uint8_t x =
		    f->body.data[0] ^ f->body.data[f->body.len - 1];
		(void)x;
	}
}

/*
 * Pack f's known fields and decode them again: they must come back packing
 * the same. Unknown fields are left out: protobuf-c accepts a field number
 * 0 spelled as an overlong varint but refuses it once packed plainly, and
 * nothing in Settle re-sends the unknown fields of a frame it received.
 */
static void round_trip(Settle__V1__Frame *f, uint8_t **out, size_t *out_len,
		       uint32_t max_frame)
{
	unsigned unknown = f->base.n_unknown_fields;
	unsigned unknown_err =
	    f->error != NULL ? f->error->base.n_unknown_fields : 0;
	struct rpc_decoder d;
	Settle__V1__Frame *again = NULL;
	uint8_t *buf, *packed2;
	size_t n;
	int rv;

	f->base.n_unknown_fields = 0;
	if (f->error != NULL)
		f->error->base.n_unknown_fields = 0;
	n = settle__v1__frame__get_packed_size(f);
	buf = malloc(4 + n);
	FUZZ_CHECK(buf != NULL, "out of memory");
	settle__v1__frame__pack(f, buf + 4);
	f->base.n_unknown_fields = unknown;
	if (f->error != NULL)
		f->error->base.n_unknown_fields = unknown_err;
	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	rpc_decoder_init(&d, max_frame);
	FUZZ_CHECK(rpc_decoder_feed(&d, buf, 4 + n) == 0, "feed failed");
	rv = rpc_decoder_next(&d, &again);
	/* A frame of defaults only packs to zero bytes, which the decoder
	 * refuses on purpose; one that grew past a small limit is refused
	 * too. */
	if (n == 0 ||
	    n > (max_frame == 0 ? RPC_DEFAULT_MAX_FRAME : max_frame)) {
		FUZZ_CHECK(rv == SETTLE_ETOOBIG, "empty frame accepted: %d",
			   rv);
	} else {
		FUZZ_CHECK(rv == 0, "a decoded frame does not decode again: %d",
			   rv);
		FUZZ_CHECK(settle__v1__frame__get_packed_size(again) == n,
			   "round trip changed the size");
		packed2 = malloc(n);
		FUZZ_CHECK(packed2 != NULL, "out of memory");
		settle__v1__frame__pack(again, packed2);
		FUZZ_CHECK(memcmp(packed2, buf + 4, n) == 0,
			   "round trip changed the frame");
		free(packed2);
		settle__v1__frame__free_unpacked(again, NULL);
	}
	rpc_decoder_close(&d);
	*out = buf;
	*out_len = 4 + n;
}

static void drain(struct rpc_decoder *d, struct run *r, uint32_t max_frame)
{
	for (;;) {
		Settle__V1__Frame *f = NULL;
		int rv = rpc_decoder_next(d, &f);
		if (rv != 0) {
			r->end = rv;
			FUZZ_CHECK(rv == 1 || rv == SETTLE_ETOOBIG ||
				       rv == SETTLE_EPROTO,
				   "unexpected decoder result %d", rv);
			return;
		}
		check_frame(f);
		FUZZ_CHECK(r->n < MAX_FRAMES, "more frames than bytes allow");
		round_trip(f, &r->packed[r->n], &r->len[r->n], max_frame);
		r->n++;
		settle__v1__frame__free_unpacked(f, NULL);
	}
}

static void run_free(struct run *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->packed[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct run whole, chunked;
	struct rpc_decoder d;
	uint32_t max_frame;
	uint32_t x;

	if (size < 2)
		return 0;
	x = data[0] | 0x100u;
	/* Small limits make the TOO_LARGE path reachable. */
	max_frame = data[1] == 0 ? 0 : (uint32_t)data[1] * 16u;
	data += 2;
	size -= 2;

	memset(&whole, 0, sizeof(whole));
	memset(&chunked, 0, sizeof(chunked));
	rpc_decoder_init(&d, max_frame);
	FUZZ_CHECK(rpc_decoder_feed(&d, data, size) == 0 || size == 0,
		   "feed of fresh decoder failed");
	drain(&d, &whole, max_frame);
	/* An error is sticky. */
	if (whole.end < 0)
		FUZZ_CHECK(rpc_decoder_feed(&d, data, size) == whole.end,
			   "error not sticky");
	rpc_decoder_close(&d);

	rpc_decoder_init(&d, max_frame);
	for (size_t off = 0; off < size;) {
		size_t n;
		x = x * 1103515245u + 12345u;
		n = 1 + (x >> 16) % 97;
		if (n > size - off)
			n = size - off;
		if (rpc_decoder_feed(&d, data + off, n) != 0)
			break;
		off += n;
		drain(&d, &chunked, max_frame);
		if (chunked.end < 0)
			break;
	}
	if (size == 0)
		drain(&d, &chunked, max_frame);
	rpc_decoder_close(&d);

	FUZZ_CHECK(whole.n == chunked.n,
		   "chunking changed the frame count: %zu vs %zu", whole.n,
		   chunked.n);
	FUZZ_CHECK(whole.end == chunked.end,
		   "chunking changed the end: %d vs %d", whole.end,
		   chunked.end);
	for (size_t i = 0; i < whole.n; i++)
		FUZZ_CHECK(whole.len[i] == chunked.len[i] &&
			       memcmp(whole.packed[i], chunked.packed[i],
				      whole.len[i]) == 0,
			   "chunking changed frame %zu", i);
	run_free(&whole);
	run_free(&chunked);
	return 0;
}

/* ---- Seeds ----------------------------------------------------------------
 */

static uint8_t stream[8192];
static size_t stream_len;

static void frame(uint64_t id, int method, int response,
		  const ProtobufCMessage *body, int err, const char *msg)
{
	uint8_t *buf;
	size_t len;

	FUZZ_CHECK(
	    rpc_frame_encode(id, method, response, body, err, msg,
			     err == SETTLE_ENOTLEADER ? "10.0.0.2:7001" : NULL,
			     0, &buf, &len) == 0,
	    "seed frame");
	FUZZ_CHECK(stream_len + len <= sizeof(stream), "seed too big");
	memcpy(stream + stream_len, buf, len);
	stream_len += len;
	free(buf);
}

static void flush(uint8_t chunking, uint8_t limit)
{
	uint8_t buf[sizeof(stream) + 2];

	buf[0] = chunking;
	buf[1] = limit;
	memcpy(buf + 2, stream, stream_len);
	fuzz_seed_add(buf, stream_len + 2);
	stream_len = 0;
}

void fuzz_seeds(void)
{
	Settle__V1__BeginRequest begin = SETTLE__V1__BEGIN_REQUEST__INIT;
	Settle__V1__BranchRequest br = SETTLE__V1__BRANCH_REQUEST__INIT;
	Settle__V1__DecisionResponse dr = SETTLE__V1__DECISION_RESPONSE__INIT;
	static uint8_t cmd_id[16] = {1, 2,  3,	4,  5,	6,  7,	8,
				     9, 10, 11, 12, 13, 14, 15, 16};

	begin.cmd_id.data = cmd_id;
	begin.cmd_id.len = sizeof(cmd_id);
	begin.gid = "tx-1";
	begin.timeout_ms = 30000;
	br.gid = "tx-1";
	br.branch_id = 2;
	br.resource = "accounts";
	br.payload.data = (uint8_t *)"account=bob;amount=10";
	br.payload.len = strlen("account=bob;amount=10");
	br.attempt = 3;
	br.deadline_ms = 1700000000000ull;
	dr.state = SETTLE__V1__TX_STATE__COMMITTED;
	dr.finished = 1;

	frame(1, SETTLE__V1__METHOD__BEGIN, 0, &begin.base, 0, NULL);
	flush(0, 0);
	frame(7, SETTLE__V1__METHOD__CONFIRM, 0, &br.base, 0, NULL);
	frame(8, SETTLE__V1__METHOD__COMMIT, 1, &dr.base, 0, NULL);
	frame(9, SETTLE__V1__METHOD__COMMIT, 1, NULL, SETTLE_ENOTLEADER,
	      "not the leader");
	flush(3, 0);
	frame(10, SETTLE__V1__METHOD__TRY, 1, NULL, SETTLE_EREFUSED,
	      "try after cancel");
	flush(200, 4);
	frame(11, SETTLE__V1__METHOD__STATUS, 0, NULL, 0, NULL);
	frame(12, SETTLE__V1__METHOD__CANCEL, 0, &br.base, 0, NULL);
	/* A frame cut short: the decoder must wait for the rest. */
	stream_len -= 5;
	flush(77, 0);
}

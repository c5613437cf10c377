#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rpc.h"

static void encode_begin(uint64_t id, const char *gid, uint8_t **out,
			 size_t *len)
{
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;

	req.gid = (char *)gid;
	req.timeout_ms = 1234;
	cr_assert_eq(rpc_frame_encode(id, SETTLE__V1__METHOD__BEGIN, 0,
				      &req.base, 0, NULL, NULL, 0, out, len),
		     0);
}

static void check_begin(const Settle__V1__Frame *f, uint64_t id,
			const char *gid)
{
	Settle__V1__BeginRequest *req;

	cr_assert_eq(f->id, id);
	cr_assert_eq(f->method, SETTLE__V1__METHOD__BEGIN);
	cr_assert_eq(f->response, 0);
	cr_assert_null(f->error);
	req =
	    settle__v1__begin_request__unpack(NULL, f->body.len, f->body.data);
	cr_assert_not_null(req);
	cr_assert_str_eq(req->gid, gid);
	cr_assert_eq(req->timeout_ms, 1234);
	settle__v1__begin_request__free_unpacked(req, NULL);
}

Test(frame, round_trip)
{
	struct rpc_decoder d;
	Settle__V1__Frame *f;
	uint8_t *buf;
	size_t len;

	encode_begin(42, "gid-1", &buf, &len);
	cr_assert_eq(
	    ((uint32_t)buf[0] << 24 | buf[1] << 16 | buf[2] << 8 | buf[3]),
	    len - 4);
	rpc_decoder_init(&d, 0);
	cr_assert_eq(rpc_decoder_next(&d, &f), 1);
	cr_assert_eq(rpc_decoder_feed(&d, buf, len), 0);
	cr_assert_eq(rpc_decoder_next(&d, &f), 0);
	check_begin(f, 42, "gid-1");
	settle__v1__frame__free_unpacked(f, NULL);
	cr_assert_eq(rpc_decoder_next(&d, &f), 1);
	rpc_decoder_close(&d);
	free(buf);
}

Test(frame, error_reply_round_trip)
{
	struct rpc_decoder d;
	Settle__V1__Frame *f;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(rpc_frame_encode(7, SETTLE__V1__METHOD__COMMIT, 1, NULL,
				      SETTLE_ENOTLEADER, "not me",
				      "10.0.0.2:7000", 0, &buf, &len),
		     0);
	rpc_decoder_init(&d, 0);
	cr_assert_eq(rpc_decoder_feed(&d, buf, len), 0);
	cr_assert_eq(rpc_decoder_next(&d, &f), 0);
	cr_assert_eq(f->id, 7);
	cr_assert_eq(f->response, 1);
	cr_assert_eq(f->body.len, 0);
	cr_assert_not_null(f->error);
	cr_assert_eq(f->error->code, SETTLE__V1__CODE__NOT_LEADER);
	cr_assert_eq(settle_err_from_wire(f->error->code), SETTLE_ENOTLEADER);
	cr_assert_str_eq(f->error->message, "not me");
	cr_assert_str_eq(f->error->leader, "10.0.0.2:7000");
	settle__v1__frame__free_unpacked(f, NULL);
	rpc_decoder_close(&d);
	free(buf);
}

Test(frame, local_error_maps_to_wire_code)
{
	struct rpc_decoder d;
	Settle__V1__Frame *f;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(rpc_frame_encode(1, 1, 1, NULL, SETTLE_ESTORE, NULL, NULL,
				      0, &buf, &len),
		     0);
	rpc_decoder_init(&d, 0);
	cr_assert_eq(rpc_decoder_feed(&d, buf, len), 0);
	cr_assert_eq(rpc_decoder_next(&d, &f), 0);
	cr_assert_eq(f->error->code, SETTLE__V1__CODE__INTERNAL);
	cr_assert_str_eq(f->error->message, "");
	cr_assert_str_eq(f->error->leader, "");
	settle__v1__frame__free_unpacked(f, NULL);
	rpc_decoder_close(&d);
	free(buf);
}

Test(frame, unknown_method_value_survives)
{
	struct rpc_decoder d;
	Settle__V1__Frame *f;
	uint8_t *buf;
	size_t len;

	cr_assert_eq(
	    rpc_frame_encode(3, 999, 0, NULL, 0, NULL, NULL, 0, &buf, &len), 0);
	rpc_decoder_init(&d, 0);
	cr_assert_eq(rpc_decoder_feed(&d, buf, len), 0);
	cr_assert_eq(rpc_decoder_next(&d, &f), 0);
	cr_assert_eq((int)f->method, 999);
	settle__v1__frame__free_unpacked(f, NULL);
	rpc_decoder_close(&d);
	free(buf);
}

Test(frame, byte_by_byte)
{
	struct rpc_decoder d;
	Settle__V1__Frame *f;
	uint8_t *buf;
	size_t len;

	encode_begin(9, "split", &buf, &len);
	rpc_decoder_init(&d, 0);
	for (size_t i = 0; i < len; i++) {
		cr_assert_eq(rpc_decoder_next(&d, &f), 1);
		cr_assert_eq(rpc_decoder_feed(&d, buf + i, 1), 0);
	}
	cr_assert_eq(rpc_decoder_next(&d, &f), 0);
	check_begin(f, 9, "split");
	settle__v1__frame__free_unpacked(f, NULL);
	rpc_decoder_close(&d);
	free(buf);
}

Test(frame, several_frames_in_one_feed)
{
	enum { N = 500 };
	struct rpc_decoder d;
	Settle__V1__Frame *f;
	uint8_t *all = NULL;
	size_t all_len = 0;
	char gid[32];

	for (int i = 0; i < N; i++) {
		uint8_t *buf;
		size_t len;

		snprintf(gid, sizeof(gid), "g%d", i);
		encode_begin((uint64_t)i + 1, gid, &buf, &len);
		all = realloc(all, all_len + len);
		memcpy(all + all_len, buf, len);
		all_len += len;
		free(buf);
	}
	rpc_decoder_init(&d, 0);
	/* Feed in uneven pieces that cut through headers and bodies. */
	for (size_t off = 0; off < all_len;) {
		size_t n = all_len - off < 37 ? all_len - off : 37;
		cr_assert_eq(rpc_decoder_feed(&d, all + off, n), 0);
		off += n;
	}
	for (int i = 0; i < N; i++) {
		snprintf(gid, sizeof(gid), "g%d", i);
		cr_assert_eq(rpc_decoder_next(&d, &f), 0);
		check_begin(f, (uint64_t)i + 1, gid);
		settle__v1__frame__free_unpacked(f, NULL);
	}
	cr_assert_eq(rpc_decoder_next(&d, &f), 1);
	cr_assert_eq(d.len - d.off, 0);
	rpc_decoder_close(&d);
	free(all);
}

Test(frame, oversized_length)
{
	const uint8_t hdr[4] = {0x00, 0x01, 0x00, 0x01}; /* 65537 */
	struct rpc_decoder d;
	Settle__V1__Frame *f;

	rpc_decoder_init(&d, 65536);
	cr_assert_eq(rpc_decoder_feed(&d, hdr, sizeof(hdr)), 0);
	/* Refused from the header alone, before the body arrives. */
	cr_assert_eq(rpc_decoder_next(&d, &f), SETTLE_ETOOBIG);
	cr_assert_eq(rpc_decoder_next(&d, &f), SETTLE_ETOOBIG);
	cr_assert_eq(rpc_decoder_feed(&d, hdr, sizeof(hdr)), SETTLE_ETOOBIG);
	rpc_decoder_close(&d);
}

Test(frame, huge_length_default_limit)
{
	const uint8_t hdr[4] = {0xff, 0xff, 0xff, 0xff};
	struct rpc_decoder d;
	Settle__V1__Frame *f;

	rpc_decoder_init(&d, 0);
	cr_assert_eq(rpc_decoder_feed(&d, hdr, sizeof(hdr)), 0);
	cr_assert_eq(rpc_decoder_next(&d, &f), SETTLE_ETOOBIG);
	rpc_decoder_close(&d);
}

Test(frame, zero_length)
{
	const uint8_t hdr[4] = {0, 0, 0, 0};
	struct rpc_decoder d;
	Settle__V1__Frame *f;

	rpc_decoder_init(&d, 0);
	cr_assert_eq(rpc_decoder_feed(&d, hdr, sizeof(hdr)), 0);
	cr_assert_eq(rpc_decoder_next(&d, &f), SETTLE_ETOOBIG);
	rpc_decoder_close(&d);
}

Test(frame, garbage_bytes)
{
	/* An HTTP request: its first four bytes read as a huge length. */
	const char *http = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
	struct rpc_decoder d;
	Settle__V1__Frame *f;

	rpc_decoder_init(&d, 0);
	cr_assert_eq(rpc_decoder_feed(&d, (const uint8_t *)http, strlen(http)),
		     0);
	cr_assert_eq(rpc_decoder_next(&d, &f), SETTLE_ETOOBIG);
	rpc_decoder_close(&d);
}

Test(frame, invalid_protobuf)
{
	/* Field 1 as a varint that never ends. */
	const uint8_t bad[] = {0, 0, 0, 3, 0x08, 0xff, 0xff};
	/* Field 4 (bytes) claiming 100 bytes in a 3-byte frame. */
	const uint8_t bad2[] = {0, 0, 0, 3, 0x22, 100, 0};
	struct rpc_decoder d;
	Settle__V1__Frame *f;

	rpc_decoder_init(&d, 0);
	cr_assert_eq(rpc_decoder_feed(&d, bad, sizeof(bad)), 0);
	cr_assert_eq(rpc_decoder_next(&d, &f), SETTLE_EPROTO);
	rpc_decoder_close(&d);

	rpc_decoder_init(&d, 0);
	cr_assert_eq(rpc_decoder_feed(&d, bad2, sizeof(bad2)), 0);
	cr_assert_eq(rpc_decoder_next(&d, &f), SETTLE_EPROTO);
	rpc_decoder_close(&d);
}

Test(frame, encode_refuses_oversized)
{
	Settle__V1__RegisterBranchRequest req =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	uint8_t *payload = calloc(1, 2000);
	uint8_t *buf = NULL;
	size_t len = 0;

	req.payload.data = payload;
	req.payload.len = 2000;
	cr_assert_eq(rpc_frame_encode(1, 2, 0, &req.base, 0, NULL, NULL, 1000,
				      &buf, &len),
		     SETTLE_ETOOBIG);
	cr_assert_null(buf);
	/* The limit applies to the whole frame, not only the body. */
	cr_assert_eq(rpc_frame_encode(1, 2, 0, &req.base, 0, NULL, NULL, 2002,
				      &buf, &len),
		     SETTLE_ETOOBIG);
	cr_assert_eq(rpc_frame_encode(1, 2, 0, &req.base, 0, NULL, NULL, 4096,
				      &buf, &len),
		     0);
	free(buf);
	free(payload);
}

/* A frame near the limit fed in small pieces: the buffer must grow by
 * doubling, not by a copy per feed, and come out intact. */
Test(frame, large_frame_in_small_pieces)
{
	Settle__V1__RegisterBranchRequest req =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	Settle__V1__RegisterBranchRequest *got;
	size_t plen = 3u * 1024u * 1024u;
	uint8_t *payload = malloc(plen);
	struct rpc_decoder d;
	Settle__V1__Frame *f;
	uint8_t *buf;
	size_t len;

	for (size_t i = 0; i < plen; i++)
		payload[i] = (uint8_t)(i * 31u);
	req.payload.data = payload;
	req.payload.len = plen;
	req.gid = "big";
	cr_assert_eq(
	    rpc_frame_encode(5, 2, 0, &req.base, 0, NULL, NULL, 0, &buf, &len),
	    0);
	rpc_decoder_init(&d, 0);
	for (size_t off = 0; off < len; off += 1000) {
		size_t n = len - off < 1000 ? len - off : 1000;
		cr_assert_eq(rpc_decoder_feed(&d, buf + off, n), 0);
		if (off + n < len)
			cr_assert_eq(rpc_decoder_next(&d, &f), 1);
	}
	cr_assert_lt(d.cap, 2 * len + 4096);
	cr_assert_eq(rpc_decoder_next(&d, &f), 0);
	got = settle__v1__register_branch_request__unpack(NULL, f->body.len,
							  f->body.data);
	cr_assert_not_null(got);
	cr_assert_eq(got->payload.len, plen);
	cr_assert_eq(memcmp(got->payload.data, payload, plen), 0);
	settle__v1__register_branch_request__free_unpacked(got, NULL);
	settle__v1__frame__free_unpacked(f, NULL);
	rpc_decoder_close(&d);
	free(buf);
	free(payload);
}

/* Random frames interleaved with random feed sizes, checking that the
 * compaction never loses or reorders bytes. */
Test(frame, decoder_stress)
{
	struct rpc_decoder d;
	Settle__V1__Frame *f;
	uint64_t next_out = 1;
	uint64_t next_in = 1;
	uint8_t *pending = NULL;
	size_t pending_len = 0;
	unsigned seed = 12345;

	rpc_decoder_init(&d, 0);
	while (next_out <= 3000) {
		int r = rand_r(&seed) % 3;

		if (r == 0 || pending_len == 0) {
			Settle__V1__RegisterBranchRequest req =
			    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
			uint8_t pl[700];
			uint8_t *buf;
			size_t len;

			memset(pl, (int)next_in, sizeof(pl));
			req.payload.data = pl;
			req.payload.len = (size_t)(rand_r(&seed) % 700);
			cr_assert_eq(rpc_frame_encode(next_in, 2, 0, &req.base,
						      0, NULL, NULL, 0, &buf,
						      &len),
				     0);
			next_in++;
			pending = realloc(pending, pending_len + len);
			memcpy(pending + pending_len, buf, len);
			pending_len += len;
			free(buf);
		} else {
			size_t n = (size_t)rand_r(&seed) % 2000 + 1;
			if (n > pending_len)
				n = pending_len;
			cr_assert_eq(rpc_decoder_feed(&d, pending, n), 0);
			memmove(pending, pending + n, pending_len - n);
			pending_len -= n;
			while (rpc_decoder_next(&d, &f) == 0) {
				cr_assert_eq(f->id, next_out);
				next_out++;
				settle__v1__frame__free_unpacked(f, NULL);
			}
		}
	}
	cr_assert_lt(d.cap, 64 * 1024);
	rpc_decoder_close(&d);
	free(pending);
}

/*
 * frame.c — the wire framing: a 4-byte big-endian length, then one packed
 * settle.v1.Frame. Pure functions, no I/O.
 */
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "rpc.h"

/* Read buffers grow at least this much so small feeds do not realloc. */
#define DECODER_MIN_CAP 4096

static uint32_t frame_limit(uint32_t max_frame)
{
	return max_frame == 0 ? RPC_DEFAULT_MAX_FRAME : max_frame;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

int rpc_frame_encode_body(uint64_t id, int method, int response,
			  const uint8_t *body, size_t body_len, int err,
			  const char *errmsg, const char *leader,
			  uint32_t max_frame, uint8_t **out, size_t *out_len)
{
	Settle__V1__Frame f = SETTLE__V1__FRAME__INIT;
	Settle__V1__Error e = SETTLE__V1__ERROR__INIT;
	uint32_t limit = frame_limit(max_frame);
	uint8_t *buf;
	size_t len;

	if (body_len > limit)
		return SETTLE_ETOOBIG;
	f.id = id;
	f.method = (Settle__V1__Method)method;
	f.response = response != 0;
	f.body.data = (uint8_t *)body;
	f.body.len = body_len;
	if (err != 0) {
		e.code = (Settle__V1__Code)settle_err_to_wire(err);
		e.message = (char *)(errmsg != NULL ? errmsg : "");
		e.leader = (char *)(leader != NULL ? leader : "");
		f.error = &e;
	}
	len = settle__v1__frame__get_packed_size(&f);
	if (len > limit)
		return SETTLE_ETOOBIG;
	buf = malloc(4 + len);
	if (buf == NULL)
		return SETTLE_ENOMEM;
	put_be32(buf, (uint32_t)len);
	settle__v1__frame__pack(&f, buf + 4);
	*out = buf;
	*out_len = 4 + len;
	return 0;
}

int rpc_body_pack(const ProtobufCMessage *msg, uint32_t max_frame,
		  uint8_t **out, size_t *len)
{
	size_t n = msg != NULL ? protobuf_c_message_get_packed_size(msg) : 0;

	*out = NULL;
	*len = 0;
	/* Checked before packing: a hostile caller-provided size must not
	 * make us allocate gigabytes only to refuse them. */
	if (n > frame_limit(max_frame))
		return SETTLE_ETOOBIG;
	if (n == 0)
		return 0;
	*out = malloc(n);
	if (*out == NULL)
		return SETTLE_ENOMEM;
	protobuf_c_message_pack(msg, *out);
	*len = n;
	return 0;
}

int rpc_frame_encode(uint64_t id, int method, int response,
		     const ProtobufCMessage *body, int err, const char *errmsg,
		     const char *leader, uint32_t max_frame, uint8_t **out,
		     size_t *out_len)
{
	uint8_t *body_buf;
	size_t body_len;
	int rv = rpc_body_pack(body, max_frame, &body_buf, &body_len);

	if (rv != 0)
		return rv;
	rv =
	    rpc_frame_encode_body(id, method, response, body_buf, body_len, err,
				  errmsg, leader, max_frame, out, out_len);
	free(body_buf);
	return rv;
}

void rpc_decoder_init(struct rpc_decoder *d, uint32_t max_frame)
{
	memset(d, 0, sizeof(*d));
	d->max_frame = frame_limit(max_frame);
}

void rpc_decoder_close(struct rpc_decoder *d)
{
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = d->off = 0;
}

size_t rpc_decoder_held(const struct rpc_decoder *d)
{
	return d->cap;
}

size_t rpc_decoder_partial(const struct rpc_decoder *d)
{
	return d->len - d->off;
}

void rpc_decoder_trim(struct rpc_decoder *d)
{
	if (d->len != d->off || d->cap <= DECODER_MIN_CAP)
		return;
	free(d->buf);
	d->buf = NULL;
	d->len = d->cap = d->off = 0;
}

/* Make room for n more bytes after len. Consumed bytes are dropped first;
 * the buffer doubles, so feeding a large frame in small pieces costs a
 * linear number of copies. */
static int decoder_reserve(struct rpc_decoder *d, size_t n)
{
	size_t live = d->len - d->off;
	size_t cap;
	uint8_t *p;

	if (d->cap - d->len >= n)
		return 0;
	if (d->off > 0) {
		memmove(d->buf, d->buf + d->off, live);
		d->len = live;
		d->off = 0;
		if (d->cap - d->len >= n)
			return 0;
	}
	cap = d->cap < DECODER_MIN_CAP ? DECODER_MIN_CAP : d->cap;
	while (cap - live < n) {
		if (cap > SIZE_MAX / 2)
			return SETTLE_ENOMEM;
		cap *= 2;
	}
	p = realloc(d->buf, cap);
	if (p == NULL)
		return SETTLE_ENOMEM;
	d->buf = p;
	d->cap = cap;
	return 0;
}

int rpc_decoder_feed(struct rpc_decoder *d, const uint8_t *data, size_t len)
{
	int rv;

	if (d->err != 0)
		return d->err;
	if (len == 0)
		return 0;
	rv = decoder_reserve(d, len);
	if (rv != 0)
		return rv;
	memcpy(d->buf + d->len, data, len);
	d->len += len;
	return 0;
}

int rpc_decoder_next(struct rpc_decoder *d, Settle__V1__Frame **out)
{
	size_t live = d->len - d->off;
	Settle__V1__Frame *f;
	uint32_t n;

	if (d->err != 0)
		return d->err;
	if (live < 4)
		return 1;
	n = get_be32(d->buf + d->off);
	/* An empty Frame is legal protobuf but never a frame we send; a zero
	 * length is more likely a peer speaking another protocol. */
	if (n == 0 || n > d->max_frame) {
		d->err = SETTLE_ETOOBIG;
		return d->err;
	}
	if (live - 4 < n)
		return 1;
	f = settle__v1__frame__unpack(NULL, n, d->buf + d->off + 4);
	if (f == NULL) {
		d->err = SETTLE_EPROTO;
		return d->err;
	}
	d->off += 4 + (size_t)n;
	if (d->off == d->len)
		d->off = d->len = 0;
	*out = f;
	return 0;
}

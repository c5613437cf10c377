/*
 * rpc.h — framed protobuf RPC over libuv streams, server and client side.
 *
 * Wire: a 4-byte big-endian length N, then N bytes of settle.v1.Frame
 * (see proto/settle.proto and docs/PROTOCOL.md). Many requests may be in
 * flight on one connection; responses are matched by Frame.id and may come
 * in any order. Writes queued during one loop iteration are coalesced into
 * one write. A frame longer than max_frame closes the connection.
 *
 * Everything here runs on one uv loop thread; nothing is thread-safe.
 * Streams are created through a small transport seam (rpc_stream_*) so
 * that TLS can wrap them later without touching callers.
 */
#ifndef SETTLE_RPC_H
#define SETTLE_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "settle.pb-c.h"

#define RPC_DEFAULT_MAX_FRAME (4u * 1024u * 1024u)

struct rpc_opts {
	uint32_t max_frame;	/* 0: RPC_DEFAULT_MAX_FRAME */
	uint32_t max_inflight;	/* server: calls in flight per connection before
				   reading pauses; 0: 1024 */
	uint32_t idle_close_ms; /* server: close a connection idle this long;
				   0: never */
	uint32_t max_queued;	/* server: reply bytes queued to one connection
				   before it is dropped as not reading;
				   0: 64 MiB */
	/* Server limits against hostile or broken clients (0: none). */
	uint32_t max_conns;	     /* connections open at once; more are
					closed as soon as accepted */
	uint32_t max_conns_per_addr; /* the same, per source address */
	uint32_t max_partial;	     /* bytes held for frames not yet whole,
					all connections together; the
					connection that would pass it is
					closed */
	uint32_t frame_timeout_ms;   /* a frame begun must be whole within
					this, or its connection is closed
					(a slow sender) */
	/* Server and client: mutual TLS with this context (proto/tls.h;
	 * made for the right side), NULL: plain TCP. Not owned: it must
	 * outlive the server or client. */
	struct rpc_tls *tls;
};

/* ---- Frame codec (pure functions; unit-tested without sockets) ---------- */

/*
 * Encode one frame with its 4-byte length prefix into a buffer allocated
 * with malloc (*out, *out_len; caller frees). body may be NULL (empty).
 * Returns SETTLE_ETOOBIG if the frame would exceed max_frame.
 */
int rpc_frame_encode(uint64_t id, int method, int response,
		     const ProtobufCMessage *body, int err, const char *errmsg,
		     const char *leader, uint32_t max_frame, uint8_t **out,
		     size_t *out_len);

/* Pack msg (NULL: an empty body) into *out (malloc'd; NULL when empty)
 * and *len. SETTLE_ETOOBIG past max_frame (0: the default), checked
 * before anything is allocated; SETTLE_ENOMEM. */
int rpc_body_pack(const ProtobufCMessage *msg, uint32_t max_frame,
		  uint8_t **out, size_t *len);

/* rpc_frame_encode() with the body already packed (body_len bytes; NULL
 * with 0). */
int rpc_frame_encode_body(uint64_t id, int method, int response,
			  const uint8_t *body, size_t body_len, int err,
			  const char *errmsg, const char *leader,
			  uint32_t max_frame, uint8_t **out, size_t *out_len);

/*
 * Incremental decoder: feed bytes as they arrive, take frames out.
 * Unconsumed bytes are buf[off..len). Consumed bytes are only moved out of
 * the way when room is needed, so a buffer full of small frames is never
 * shifted once per frame. Fields are private; use the functions.
 */
struct rpc_decoder {
	uint8_t *buf;
	size_t len;
	size_t cap;
	uint32_t max_frame;
	size_t off; /* start of the unconsumed bytes */
	int err;    /* sticky: after an error every call returns it */
};

/* max_frame 0: RPC_DEFAULT_MAX_FRAME. Allocates nothing. */
void rpc_decoder_init(struct rpc_decoder *d, uint32_t max_frame);
/* Free the buffer; the decoder may be initialized again. */
void rpc_decoder_close(struct rpc_decoder *d);
/* Bytes the decoder holds allocated, and bytes of a frame not yet whole. */
size_t rpc_decoder_held(const struct rpc_decoder *d);
size_t rpc_decoder_partial(const struct rpc_decoder *d);
/* With nothing buffered, give a large buffer back (kept: the minimum). */
void rpc_decoder_trim(struct rpc_decoder *d);
/* Copy bytes in (no reference kept). SETTLE_ENOMEM on allocation failure;
 * the sticky error of an earlier rpc_decoder_next() if there was one. */
int rpc_decoder_feed(struct rpc_decoder *d, const uint8_t *data, size_t len);
/*
 * Take the next complete frame: 0 and *out set (free with
 * settle__v1__frame__free_unpacked(*out, NULL)); 1 if more bytes are
 * needed; SETTLE_ETOOBIG for a length over max_frame; SETTLE_EPROTO for a
 * frame that is not a valid Frame. After an error the stream is unusable.
 */
int rpc_decoder_next(struct rpc_decoder *d, Settle__V1__Frame **out);

/* ---- Server ------------------------------------------------------------- */

struct rpc_server;
struct rpc_call;

/*
 * Who a TLS peer is, from the certificate it presented: its subject CN
 * ("" unless exactly one, printable), its SHA-256 fingerprint (64
 * lowercase hex digits, of the DER), and the DNS names, URIs and e-mail
 * addresses of its subjectAltName (printable ones, up to RPC_PEER_SANS).
 * All empty on a plain connection. The strings live as long as the
 * connection; copy them to keep them.
 */
#define RPC_PEER_SANS 8
struct rpc_peer_id {
	const char *name;
	const char *fingerprint;
	const char *san[RPC_PEER_SANS];
	size_t n_san;
};

/*
 * One way of naming a peer's certificate (peer_match.c): "cn:NAME" (its
 * CN, 1..64 bytes), "fp:HEX" (its SHA-256 fingerprint, colons allowed,
 * any case) or "san:NAME" (one of its SANs, 1..255 bytes).
 */
#define RPC_PEER_CN_MAX	 64
#define RPC_PEER_SAN_MAX 255
enum { RPC_PEER_BY_CN, RPC_PEER_BY_FP, RPC_PEER_BY_SAN };
struct rpc_peer_match {
	int kind; /* RPC_PEER_BY_* */
	char value[RPC_PEER_SAN_MAX + 1];
};
/* Parse s into *out: 0, or -1 if it is none of the three forms. */
int rpc_peer_match_parse(const char *s, struct rpc_peer_match *out);
/* Whether id (a connection's identity) is the certificate m names. */
bool rpc_peer_match_is(const struct rpc_peer_match *m,
		       const struct rpc_peer_id *id);

/*
 * Called once per request frame. The handler owns the call until it answers
 * with exactly one rpc_call_reply() or rpc_call_fail(), at once or later
 * (e.g. after a raft commit). If the connection dies first, the answer is
 * dropped quietly; the call stays valid until answered.
 */
typedef void (*rpc_handler_cb)(void *data, struct rpc_call *call);

/*
 * Listen on "host:port" (IPv4 or [IPv6]:port). port 0 picks a free port;
 * rpc_server_port() tells which. Returns 0 or a SETTLE_E* code with a
 * message in errmsg (size errmsg_len) when errmsg is non-NULL.
 */
int rpc_server_start(uv_loop_t *loop, const char *address,
		     const struct rpc_opts *opts, rpc_handler_cb handler,
		     void *data, struct rpc_server **out, char *errmsg,
		     size_t errmsg_len);
int rpc_server_port(const struct rpc_server *s);
/* From now on accept connections with TLS context t (rpc_opts.tls; a
 * reload of the certificates). Connections open keep their session, but
 * one whose client certificate t's checks now refuse (a CRL that revokes
 * it, a CA no longer trusted, a certificate expired since) is closed at
 * once and logged. t must outlive the server, as the one it replaces must
 * outlive the connections made with it. */
void rpc_server_set_tls(struct rpc_server *s, struct rpc_tls *t);
/* Stop listening, close every connection (replies not yet written are
 * dropped); cb (may be NULL) fires from the loop once all handles are
 * closed, then the server is freed. Calls still unanswered stay valid until
 * answered. If rpc_server_start fails after creating handles, the loop
 * must still run once to release them. */
void rpc_server_close(struct rpc_server *s, void (*cb)(void *data), void *data);

int rpc_call_method(const struct rpc_call *call);
uint64_t rpc_call_id(const struct rpc_call *call);
/* Request body bytes, valid until the call is answered. */
const uint8_t *rpc_call_body(const struct rpc_call *call, size_t *len);
/* Peer address as text, for logs. */
const char *rpc_call_peer(const struct rpc_call *call);
/* The same without its port: the client's source address. */
const char *rpc_call_peer_addr(const struct rpc_call *call);
/* Over TLS, the common name of the certificate the client presented;
 * "" on a plain connection or once the connection has closed. */
const char *rpc_call_peer_name(const struct rpc_call *call);
/* The whole identity of the client's certificate (rpc_peer_id). */
void rpc_call_peer_id(const struct rpc_call *call, struct rpc_peer_id *out);

/*
 * Answer with body (NULL: empty; packed now, no reference kept). Frees the
 * call in every case. Returns 0 when queued; SETTLE_ECLOSED when the
 * connection is gone (answer dropped, nothing to do); SETTLE_ETOOBIG when
 * the body does not fit max_frame (the peer gets a TOO_LARGE error
 * instead); SETTLE_ENOMEM (the connection is closed).
 */
int rpc_call_reply(struct rpc_call *call, const ProtobufCMessage *body);
/* Answer with an error: err is a negative SETTLE_E* code, mapped to the
 * wire code (anything else is sent as INTERNAL); msg and leader may be
 * NULL and are copied. Frees the call. Returns as rpc_call_reply(). */
int rpc_call_fail(struct rpc_call *call, int err, const char *msg,
		  const char *leader);

/* ---- Client ------------------------------------------------------------- */

struct rpc_client;

/*
 * Result of one call. err is 0 and body/len the response body, or a
 * SETTLE_E* code: from the peer's Error (msg and leader from it), or local
 * (SETTLE_ECONNECT, SETTLE_ECLOSED, SETTLE_ETIMEOUT, SETTLE_ECANCELED).
 * All pointers are valid only during the callback.
 */
struct rpc_result {
	int err;
	const char *msg;    /* never NULL; "" when none */
	const char *leader; /* never NULL; "" when none */
	const uint8_t *body;
	size_t len;
};

typedef void (*rpc_reply_cb)(void *data, const struct rpc_result *res);

/*
 * A client for one endpoint "host:port" or "[v6]:port" (numeric, or a name
 * resolved asynchronously; every resolved address is tried in turn). It
 * connects on first call and reconnects on the next call after a failure;
 * calls made while connecting are queued. The endpoint string is copied.
 * Returns SETTLE_EINVAL for a malformed endpoint or port 0, SETTLE_ENOMEM.
 * opts: only max_frame (requests and responses) and tls apply.
 */
int rpc_client_init(uv_loop_t *loop, const char *endpoint,
		    const struct rpc_opts *opts, struct rpc_client **out);
const char *rpc_client_endpoint(const struct rpc_client *c);

/*
 * Send a request (req may be NULL: empty body; packed now, no reference
 * kept). On 0, cb fires exactly once, on the loop thread, never from inside
 * this function. On error cb never fires: SETTLE_ETOOBIG (frame over
 * max_frame), SETTLE_ENOMEM, SETTLE_EINVAL (cb NULL), SETTLE_ECANCELED
 * (client closing). timeout_ms 0 means no timeout; a timed-out call gets
 * SETTLE_ETIMEOUT, and its late answer is ignored. When the connection
 * fails, every pending call gets SETTLE_ECONNECT (never connected) or
 * SETTLE_ECLOSED (lost), with a message naming the endpoint.
 * Calls are written coalesced at the end of the loop iteration.
 */
int rpc_client_call(struct rpc_client *c, int method,
		    const ProtobufCMessage *req, uint32_t timeout_ms,
		    rpc_reply_cb cb, void *data);

/* rpc_client_call() with the request body already packed (len bytes,
 * copied; NULL with 0): a caller that may send it again packs it once. */
int rpc_client_call_body(struct rpc_client *c, int method, const uint8_t *body,
			 size_t len, uint32_t timeout_ms, rpc_reply_cb cb,
			 void *data);

/* Fail every pending call with SETTLE_ECANCELED (their callbacks run
 * before this returns; calls made from them are refused), close the
 * connection and free the client from the loop once its handles are
 * closed. The client must not be used after this. */
void rpc_client_close(struct rpc_client *c);

#endif /* SETTLE_RPC_H */

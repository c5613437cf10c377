/*
 * stream.h — the transport seam under the RPC layer (internal to proto/).
 *
 * An rpc_stream is a byte stream with a write queue over a TCP handle:
 * plain (stream.c), or TLS (tls.h), whose rpc_stream_ops encrypt in write
 * and decrypt before calling on_read, so the server and client never see
 * which one they use.
 *
 * Also here: rpc_tick, a hook that runs once at the end of the current loop
 * iteration (used to coalesce writes), and host:port parsing.
 */
#ifndef SETTLE_RPC_STREAM_H
#define SETTLE_RPC_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

/* Size of the read buffer (one per thread, shared by all streams). */
#define RPC_STREAM_READ_SIZE (64u * 1024u)

struct rpc_stream;
struct rpc_tls_conn;

/* What the owner of a stream hears. Each may close the stream. */
struct rpc_stream_cbs {
	/* len bytes arrived (err 0), or the stream ended: err is
	 * SETTLE_ECLOSED on EOF, another SETTLE_E* code on error, and no
	 * more reads follow. data is valid during the call only. */
	void (*on_read)(struct rpc_stream *s, const uint8_t *data, size_t len,
			int err);
	/* A queued write failed; the owner should close the stream. */
	void (*on_write_error)(struct rpc_stream *s, int err);
	/* The stream is closed and its memory may be freed. */
	void (*on_close)(struct rpc_stream *s);
	/* May be NULL. A write of the owner's bytes completed, so
	 * rpc_stream_pending() fell: an owner that stopped queueing at a
	 * limit may go on. */
	void (*on_written)(struct rpc_stream *s);
};

/* One transport. All return 0 or a SETTLE_E* code. */
struct rpc_stream_ops {
	int (*read_start)(struct rpc_stream *s);
	int (*read_stop)(struct rpc_stream *s);
	/* Write len bytes at buf (kept until rpc_stream__write_done()). */
	int (*write)(struct rpc_stream *s, const uint8_t *buf, size_t len);
	/* May be NULL. Write what goes at once, without blocking: bytes
	 * written, or < 0 when none did (rpc_stream_flush() then falls back
	 * to write, which reports any error). */
	int (*try_write)(struct rpc_stream *s, const uint8_t *buf, size_t len);
	/* Close; rpc_stream__closed() follows from the loop. */
	void (*close)(struct rpc_stream *s);
};

struct rpc_stream {
	const struct rpc_stream_ops *ops;
	const struct rpc_stream_cbs *cbs;
	void *data; /* the owner's */
	uv_tcp_t tcp;
	uv_write_t wreq;
	/* Bytes queued and not yet handed to the transport, and the bytes of
	 * the write in progress; swapped when a write starts. */
	uint8_t *out;
	size_t out_len, out_cap;
	uint8_t *busy;
	size_t busy_len, busy_cap;
	bool writing;
	bool reading;
	bool closing;
	struct rpc_tls_conn *tls; /* TLS state (tls.c); NULL: plain TCP */
};

/*
 * Set up s as a plain TCP stream on loop (the handle is initialised; connect
 * or accept with s->tcp). cbs is not copied and must outlive the stream.
 * Errors: SETTLE_E* mapped from uv_tcp_init. On error nothing needs closing.
 */
int rpc_stream_tcp_init(uv_loop_t *loop, struct rpc_stream *s,
			const struct rpc_stream_cbs *cbs, void *data);

/* Set TCP_NODELAY; call once connected or accepted. */
void rpc_stream_tcp_ready(struct rpc_stream *s);

int rpc_stream_read_start(struct rpc_stream *s);
int rpc_stream_read_stop(struct rpc_stream *s);

/* Append bytes (copied) to the write queue. SETTLE_ENOMEM, SETTLE_ECLOSED. */
int rpc_stream_queue(struct rpc_stream *s, const uint8_t *data, size_t len);
/* Start writing the queue if no write is in progress. Errors reach
 * on_write_error later, or are returned now. */
int rpc_stream_flush(struct rpc_stream *s);
/* Bytes queued or being written. */
size_t rpc_stream_pending(const struct rpc_stream *s);

/* Close (idempotent). on_close fires from the loop; then free buffers is
 * already done and s may be freed. */
void rpc_stream_close(struct rpc_stream *s);

/* Peer address as "ip:port" or "[ip6]:port" into buf; "?" if unknown. */
void rpc_stream_peer(const struct rpc_stream *s, char *buf, size_t len);

/* For transports: report the end of a write / the handle closing. */
void rpc_stream__write_done(struct rpc_stream *s, int status);
void rpc_stream__closed(struct rpc_stream *s);
/* For transports: libuv's alloc_cb handing out the loop thread's read
 * buffer (read_cb must be done with it before returning), and the start
 * of every read_cb: true when the read holds no bytes to take (n 0, the
 * stream closing, or the end or an error, reported to on_read). */
void rpc_stream__alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf);
bool rpc_stream__read_end(struct rpc_stream *s, ssize_t n);

/* ---- End-of-iteration hook ---------------------------------------------
 * Armed from anywhere, cb runs once: in the check phase of this iteration
 * (after I/O callbacks) or the prepare phase of the next (before the loop
 * blocks), whichever comes first. Handles are only active while armed, so
 * an idle tick does not keep the loop alive. */
struct rpc_tick {
	uv_prepare_t prepare;
	uv_check_t check;
	void (*cb)(struct rpc_tick *t);
	void (*close_cb)(struct rpc_tick *t);
	void *data;
	int open;
	bool armed;
	bool closed;
};

/* Always 0 on unix; kept int so a port may fail. */
int rpc_tick_init(uv_loop_t *loop, struct rpc_tick *t,
		  void (*cb)(struct rpc_tick *t), void *data);
void rpc_tick_arm(struct rpc_tick *t);
/* close_cb fires once both handles are closed; then t may be freed. */
void rpc_tick_close(struct rpc_tick *t, void (*close_cb)(struct rpc_tick *t));

/* ---- Addresses --------------------------------------------------------- */

/*
 * Split "host:port" or "[v6]:port" into host (NUL-terminated, at most
 * host_len bytes with the NUL) and port (0..65535). SETTLE_EINVAL when
 * malformed or host does not fit.
 */
int rpc_addr_split(const char *address, char *host, size_t host_len, int *port);

/* Fill sa for a numeric IPv4/IPv6 host. SETTLE_EINVAL if not numeric. */
int rpc_addr_numeric(const char *host, int port, struct sockaddr_storage *sa);

/*
 * Fill sa for "host:port", a name resolved synchronously (uv_getaddrinfo
 * without a callback: for an address to listen on, where the caller wants
 * to know at once). SETTLE_EINVAL with why in errmsg.
 */
int rpc_addr_resolve(uv_loop_t *loop, const char *address,
		     struct sockaddr_storage *sa, char *errmsg,
		     size_t errmsg_len);

#endif /* SETTLE_RPC_STREAM_H */

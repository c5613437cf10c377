/*
 * tls.h — mutual TLS 1.3 under the RPC framing (internal to proto/).
 *
 * An rpc_tls is a configured OpenSSL context: this side's certificate and
 * key, the CA certificates that sign every peer, and optionally a CRL.
 * Both sides present a certificate and verify the other's (a peer without
 * one, or with one the CA did not sign, that expired, or that the CRL
 * revokes, fails the handshake); a client also checks that the server's
 * certificate names the host it dialled (an IP address or DNS name in the
 * subjectAltName).
 *
 * A TLS stream is an rpc_stream (stream.h) whose transport encrypts what
 * the owner writes and decrypts what arrives before on_read: OpenSSL works
 * on memory buffers, and the bytes go over the same uv TCP handle as a
 * plain stream's. Nothing above the stream changes. A handshake that fails
 * ends the stream with SETTLE_ETLS; rpc_stream_tls_error() says why.
 */
#ifndef SETTLE_RPC_TLS_H
#define SETTLE_RPC_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include <uv.h>

#include "stream.h"

struct rpc_tls;

struct rpc_tls_opts {
	const char *cert; /* PEM: this side's certificate (and chain) */
	const char *key;  /* PEM: its private key */
	const char *ca;	  /* PEM: the CA certificate(s) peers must chain to */
	const char *crl;  /* PEM: revoked certificates; NULL: none */
	bool server;	  /* accepts connections (else dials them) */
};

/*
 * Load the files and make the context. 0, or SETTLE_EINVAL (a file that
 * cannot be read or parsed, a key that does not match the certificate)
 * with a message naming the file in errmsg.
 */
int rpc_tls_new(const struct rpc_tls_opts *o, struct rpc_tls **out,
		char *errmsg, size_t errmsg_len);
/* Release the context; streams made with it keep what they need. */
void rpc_tls_free(struct rpc_tls *t);

/*
 * Like rpc_stream_tcp_init(), with TLS over the TCP handle. host: on a
 * client, the host part of the endpoint dialled, which the server's
 * certificate must name; NULL on a server. The handshake starts at
 * rpc_stream_read_start(); writes queued before it ends wait for it.
 */
int rpc_stream_tls_init(uv_loop_t *loop, struct rpc_stream *s,
			const struct rpc_stream_cbs *cbs, void *data,
			struct rpc_tls *t, const char *host);

/*
 * For a blocking client over its own socket (libsettle's conn.c): a new
 * OpenSSL connection object (an SSL *) of client context t, expecting
 * host in the server's certificate; NULL when out of memory or t is a
 * server's. The caller sets its descriptor and frees it (SSL_free).
 */
struct ssl_st *rpc_tls_client_ssl(struct rpc_tls *t, const char *host);
/* Why an OpenSSL call on ssl failed: what, the certificate check's
 * verdict if it failed, and OpenSSL's error queue (emptied), into buf. */
void rpc_tls_why(struct ssl_st *ssl, const char *what, char *buf, size_t len);

/*
 * Whether the certificate the peer of s presented at its handshake still
 * passes t's checks: t's CA and CRL, and the validity dates as of now (t
 * being the context new connections get after a reload). True for a
 * plain stream or one still in its handshake; false with why (size len)
 * otherwise, e.g. "certificate revoked".
 */
bool rpc_stream_tls_still_valid(const struct rpc_stream *s, struct rpc_tls *t,
				char *why, size_t len);

/* Whether the certificate the peer of s presented has expired by now
 * (unix time): false on a plain stream or before the handshake's end. */
bool rpc_stream_tls_expired(const struct rpc_stream *s, time_t now);

/* Whether s is ready for the owner's bytes: a plain stream always, a TLS
 * one once its handshake is done. */
bool rpc_stream_tls_done(const struct rpc_stream *s);
/* Why the handshake of s failed ("" if it did not). */
const char *rpc_stream_tls_error(const struct rpc_stream *s);
/* The peer certificate's subject common name once the handshake is done;
 * "" before, or on a plain stream. */
const char *rpc_stream_peer_name(const struct rpc_stream *s);
struct rpc_peer_id;
/* The peer certificate's identity (rpc.h) once the handshake is done;
 * empty before, or on a plain stream. */
void rpc_stream_peer_id(const struct rpc_stream *s, struct rpc_peer_id *out);

#endif /* SETTLE_RPC_TLS_H */

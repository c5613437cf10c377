/*
 * conn.h — internal: one blocking framed-RPC connection (poll() timeouts,
 * the frame codec of proto/rpc.h). Used by the sync initiator client and by
 * settle_client_call_at(); not installed.
 */
#ifndef SETTLE_CLIENT_CONN_H
#define SETTLE_CLIENT_CONN_H

#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

struct rpc_tls;
struct ssl_st;

struct client_conn {
	int fd; /* -1 when closed */
	/* Mutual TLS over fd when tls is set (settle_client_set_tls()); ssl
	 * is the open connection's. */
	struct rpc_tls *tls;
	struct ssl_st *ssl;
	char endpoint[256];
	struct rpc_decoder dec;
	uint32_t max_frame;
	uint64_t next_id;
};

/* Split "host:port" or "[v6]:port". SETTLE_EINVAL when malformed. */
int client_conn_parse_endpoint(const char *ep, char *host, size_t hostlen,
			       char *port, size_t portlen);

void client_conn_init(struct client_conn *c, uint32_t max_frame);

/*
 * Connect to endpoint (copied) before deadline (settle_mono_ms() clock).
 * Closes any previous connection first. SETTLE_EINVAL (bad endpoint),
 * SETTLE_ECONNECT (refused, unresolvable, timed out), SETTLE_ETLS (the
 * handshake failed, with c->tls); errmsg gets detail.
 */
int client_conn_open(struct client_conn *c, const char *endpoint,
		     uint64_t deadline, char *errmsg, size_t errlen);

void client_conn_close(struct client_conn *c);

/*
 * Send one request and wait for the response with the same id until
 * deadline. Responses to earlier (timed-out) requests are skipped.
 * Returns 0 and *resp (the response Frame, caller frees with
 * settle__v1__frame__free_unpacked(*resp, NULL)), whose error field may
 * carry the server's failure; or a local error: SETTLE_ETIMEOUT,
 * SETTLE_ECLOSED, SETTLE_EIO, SETTLE_EPROTO, SETTLE_ETOOBIG, SETTLE_ENOMEM,
 * SETTLE_ETLS.
 * After a local error the connection is closed.
 */
int client_conn_call(struct client_conn *c, int method,
		     const ProtobufCMessage *req, uint64_t deadline,
		     Settle__V1__Frame **resp);

/*
 * Send req as a request and return without its answer, which the next
 * client_conn_call() on c skips when it comes (a late answer). Errors as
 * for client_conn_call(), for the sending only.
 */
int client_conn_send(struct client_conn *c, int method,
		     const ProtobufCMessage *req, uint64_t deadline);

#endif /* SETTLE_CLIENT_CONN_H */

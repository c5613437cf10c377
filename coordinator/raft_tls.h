/*
 * raft_tls.h — raft's transport over mutual TLS 1.3.
 *
 * canonical/raft's libuv I/O (raft_uv) reads and writes uv streams that a
 * transport hands it; its own TCP transport hands it plain sockets. This
 * one speaks TLS on the network (proto/tls.h, the same contexts as the
 * client port) and hands raft one end of a Unix socket pair: a proxy on
 * the loop thread moves the bytes between the pair's other end and the
 * TLS connection. raft sees a stream like any other and changes nothing.
 *
 * A connection starts with its TLS handshake (each side presents and
 * verifies a certificate the CA signed; the dialler checks that the
 * server's certificate names the address it dialled); then the dialler
 * sends a hello (magic "SETTLER1", its raft id, and its raft address, the
 * same as raft_uv's own handshake says), and the server answers "SETTLEOK"
 * once it accepts the dialler's certificate. Either side refuses a peer
 * whose certificate peer_ok() refuses (settled: the peer role under
 * --roles), logging the address and certificate name. A connection that
 * has not got that far within the setup timeout is closed, and at most
 * RAFT_TLS_SETUP_MAX connections are being set up at once: a handshake
 * flood cannot hold a node's memory.
 *
 * Depends on raft, libuv, proto's TLS streams and the log.
 */
#ifndef SETTLE_RAFT_TLS_H
#define SETTLE_RAFT_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

struct rpc_tls;

/* Connections in their handshake or hello at once, per node. */
#define RAFT_TLS_SETUP_MAX 64
/* The longest raft address a hello may carry (NUL and padding included). */
#define RAFT_TLS_ADDRESS_MAX 256

struct rpc_peer_id;

/* Whether the certificate id (rpc.h: its CN, fingerprint and SANs) may
 * speak raft with this node as raft_id (the id its hello claims, or the
 * one this node dialled). */
typedef bool (*raft_tls_peer_ok_cb)(void *data, const struct rpc_peer_id *id,
				    raft_id raft_id);

struct raft_tls_opts {
	struct rpc_tls *server; /* accepts raft connections */
	struct rpc_tls *client; /* dials them */
	raft_tls_peer_ok_cb peer_ok;
	void *peer_data;
	unsigned setup_timeout_ms; /* handshake and hello; 0: 10 s */
};

/*
 * Fill t as a raft_uv transport over TLS on loop (t->impl is ours). A raft
 * error code (RAFT_NOMEM). Give t to raft_uv_init(); once raft is closed,
 * raft_tls_free() it.
 */
int raft_tls_init(struct raft_uv_transport *t, uv_loop_t *loop,
		  const struct raft_tls_opts *opts);

/* New connections use these contexts (SIGHUP); open ones keep theirs,
 * but one whose peer certificate the new contexts refuse (a CRL revokes
 * it) is closed at once. The old contexts must outlive the connections
 * made with them. */
void raft_tls_set_contexts(struct raft_uv_transport *t, struct rpc_tls *server,
			   struct rpc_tls *client);

/* Release what init allocated; raft must be done with t. */
void raft_tls_free(struct raft_uv_transport *t);

#endif /* SETTLE_RAFT_TLS_H */

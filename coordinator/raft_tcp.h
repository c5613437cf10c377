/*
 * raft_tcp.h — raft_uv's TCP transport with Nagle's algorithm off.
 *
 * raft_uv 0.15's transport leaves TCP_NODELAY unset, and each of its
 * connections carries messages one way: the receiver delays its ACKs and
 * Nagle holds the sender's next small message until the last one is
 * acknowledged, up to 40 ms. raft_tcp_init() makes the usual transport
 * and wraps it so that every stream it hands raft has TCP_NODELAY. Give
 * raft_uv_init() &t->transport. Every message received is checked
 * (raft_check.h) before raft sees it. With TLS options the transport under
 * the wrapping is raft_tls.h's instead of raft_uv's TCP one. Depends on
 * raft, libuv, the log and raft_tls, not on the rest of the node.
 */
#ifndef SETTLE_RAFT_TCP_H
#define SETTLE_RAFT_TCP_H

#include <stdbool.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

struct raft_tcp {
	struct raft_uv_transport transport; /* what raft_uv gets */
	/* The TCP transport's own listen and connect, and raft_uv's accept
	 * callback. */
	int (*listen)(struct raft_uv_transport *, raft_uv_accept_cb);
	int (*connect)(struct raft_uv_transport *, struct raft_uv_connect *,
		       raft_id, const char *, raft_uv_connect_cb);
	raft_uv_accept_cb accept_cb;
	bool tls; /* raft_tls.h's transport under the wrapping */
};

struct raft_tls_opts;
struct rpc_tls;

/* raft_uv_tcp_init(), or raft_tls_init() with tls, wrapped. A raft error
 * code. */
int raft_tcp_init(struct raft_tcp *t, uv_loop_t *loop,
		  const struct raft_tls_opts *tls);

/* Under TLS, new raft connections use these contexts (SIGHUP). */
void raft_tcp_set_tls(struct raft_tcp *t, struct rpc_tls *server,
		      struct rpc_tls *client);

/* raft_uv_tcp_close(). */
void raft_tcp_close(struct raft_tcp *t);

/* Free what the guards of streams raft closed without a read error still
 * hold; call once raft is closed (its loop done with the streams). */
void raft_tcp_forget(void);

#endif /* SETTLE_RAFT_TCP_H */

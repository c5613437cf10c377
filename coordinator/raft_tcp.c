/*
 * raft_tcp.c — raft's TCP transport, with Nagle's algorithm off.
 *
 * raft_uv's TCP transport leaves TCP_NODELAY unset. Its connections carry
 * messages one way (each node sends on the connections it opened and
 * receives on those it accepted), so the receiver has nothing to send
 * back and delays its ACKs, and Nagle holds the sender's next small
 * message until the last one is acknowledged: up to 40 ms (Linux's
 * shortest delayed ACK) on an AppendEntries or its result. That delay was
 * most of a 3-node transaction's latency under load (a p50 of 38 ms at
 * 256 in flight, with no thread of the cluster even half busy). So the
 * transport raft_uv_tcp_init() makes is wrapped: every stream it hands
 * raft, connected or accepted, gets TCP_NODELAY first.
 */
#include <stddef.h>

#include "raft_tcp.h"

/* A connect of raft_uv's, passed on to the TCP transport. */
struct tcp_connect {
	struct raft_uv_connect inner;  /* ours, to the TCP transport */
	struct raft_uv_connect *outer; /* raft_uv's */
	raft_uv_connect_cb cb;	       /* raft_uv's */
};

static struct raft_tcp *raft_tcp_of(struct raft_uv_transport *t)
{
	return (struct raft_tcp *)((char *)t -
				   offsetof(struct raft_tcp, transport));
}

static void no_delay(struct uv_stream_s *stream)
{
	if (stream != NULL && stream->type == UV_TCP)
		(void)uv_tcp_nodelay((uv_tcp_t *)stream, 1);
}

static void tcp_accepted(struct raft_uv_transport *t, raft_id id,
			 const char *address, struct uv_stream_s *stream)
{
	struct raft_tcp *rt = raft_tcp_of(t);

	no_delay(stream);
	rt->accept_cb(t, id, address, stream);
}

static int tcp_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct raft_tcp *rt = raft_tcp_of(t);

	rt->accept_cb = cb;
	return rt->listen(t, tcp_accepted);
}

/* Also called with a failure, and with RAFT_CANCELED at close. */
static void tcp_connected(struct raft_uv_connect *req,
			  struct uv_stream_s *stream, int status)
{
	struct tcp_connect *tc = (struct tcp_connect *)req;
	struct raft_uv_connect *outer = tc->outer;
	raft_uv_connect_cb cb = tc->cb;

	raft_free(tc);
	if (status == 0)
		no_delay(stream);
	cb(outer, stream, status);
}

static int tcp_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
		       raft_id id, const char *address, raft_uv_connect_cb cb)
{
	struct raft_tcp *rt = raft_tcp_of(t);
	struct tcp_connect *tc = raft_malloc(sizeof *tc);
	int rv;

	if (tc == NULL)
		return RAFT_NOMEM;
	tc->outer = req;
	tc->cb = cb;
	rv = rt->connect(t, &tc->inner, id, address, tcp_connected);
	if (rv != 0)
		raft_free(tc);
	return rv;
}

int raft_tcp_init(struct raft_tcp *t, uv_loop_t *loop)
{
	int rv = raft_uv_tcp_init(&t->transport, loop);

	if (rv != 0)
		return rv;
	t->listen = t->transport.listen;
	t->transport.listen = tcp_listen;
	t->connect = t->transport.connect;
	t->transport.connect = tcp_connect;
	return 0;
}

void raft_tcp_close(struct raft_tcp *t)
{
	raft_uv_tcp_close(&t->transport);
}

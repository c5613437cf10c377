/*
 * raft_tcp.c — raft's TCP transport, with Nagle's algorithm off and every
 * message received checked before raft decodes it; over TLS (raft_tls.c)
 * when the node has certificates.
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
 *
 * raft 0.15 also trusts what it receives: one malformed AppendEntries
 * crashes a node (raft_check.h). So every accepted stream is watched: once
 * raft has started reading it, its read callback (a public field of
 * uv_stream_t) is wrapped by a guard that follows the messages in the
 * bytes raft receives, keeps a copy of each header, and checks preamble
 * and header (raft_check.c) before the read that completes them reaches
 * raft. raft sizes each read to the part it expects, so that read holds
 * nothing else. A message that fails is turned into a read error: raft
 * closes the connection (the sender reconnects, as after any network
 * error), and the guard logs it naming the peer.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "raft_check.h"
#include "raft_tcp.h"
#include "raft_tls.h"

/* What a guard knows of one accepted stream. */
struct raft_guard {
	struct raft_guard *next;
	uv_stream_t *stream; /* raft's; it closes and frees it */
	uv_read_cb raft_read;
	/* Where in the current message: the preamble (pre_got < 16), the
	 * header (hdr_got < hlen), or its payload (left bytes). */
	uint8_t pre[RAFT_CHECK_PREAMBLE];
	size_t pre_got;
	uint64_t type, hlen;
	uint8_t *hdr;
	size_t hdr_got;
	uint64_t left;
	char peer[96];
};

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

/* ---- The guard ---------------------------------------------------------- */

/* The streams being watched. One loop thread runs every raft_tcp of a
 * process, so one list serves them all. */
static struct raft_guard *guards;

static struct raft_guard **guard_find(const uv_stream_t *stream)
{
	struct raft_guard **pp = &guards;

	while (*pp != NULL && (*pp)->stream != stream)
		pp = &(*pp)->next;
	return pp;
}

static void guard_free(struct raft_guard *g)
{
	free(g->hdr);
	free(g);
}

/* Follow n bytes of the stream; 0, or -1 with a reason when a message
 * fails its check (the bytes must not reach raft). */
static int guard_follow(struct raft_guard *g, const uint8_t *p, size_t n,
			char *why, size_t whylen)
{
	while (n > 0) {
		size_t k;

		if (g->left > 0) {
			k = n < g->left ? n : (size_t)g->left;
			g->left -= k;
		} else if (g->pre_got < RAFT_CHECK_PREAMBLE) {
			k = RAFT_CHECK_PREAMBLE - g->pre_got;
			k = k < n ? k : n;
			memcpy(g->pre + g->pre_got, p, k);
			g->pre_got += k;
			if (g->pre_got == RAFT_CHECK_PREAMBLE) {
				if (raft_check_preamble(g->pre, &g->type,
							&g->hlen, why,
							whylen) != 0)
					return -1;
				g->hdr = malloc((size_t)g->hlen);
				if (g->hdr == NULL) {
					snprintf(why, whylen, "out of memory");
					return -1;
				}
				g->hdr_got = 0;
			}
		} else {
			uint64_t payload = 0;

			k = (size_t)g->hlen - g->hdr_got;
			k = k < n ? k : n;
			memcpy(g->hdr + g->hdr_got, p, k);
			g->hdr_got += k;
			if (g->hdr_got == g->hlen) {
				if (raft_check_header(g->type, g->hdr,
						      (size_t)g->hlen, &payload,
						      why, whylen) != 0)
					return -1;
				free(g->hdr);
				g->hdr = NULL;
				g->pre_got = 0;
				g->left = payload;
			}
		}
		p += k;
		n -= k;
	}
	return 0;
}

/* raft's read callback, wrapped. */
static void guard_read(uv_stream_t *stream, ssize_t n, const uv_buf_t *buf)
{
	struct raft_guard **pp = guard_find(stream), *g = *pp;
	uv_read_cb raft_read;
	char why[160];

	if (g == NULL)
		return; /* cannot happen: the hook goes with its guard */
	raft_read = g->raft_read;
	if (n < 0) {
		/* The stream ends: raft closes it, the guard goes. */
		*pp = g->next;
		guard_free(g);
		raft_read(stream, n, buf);
		return;
	}
	if (n > 0 && guard_follow(g, (const uint8_t *)buf->base, (size_t)n, why,
				  sizeof why) != 0) {
		settle_log(SETTLE_LOG_WARN, "raft",
			   "dropped a malformed message from %s and closed its "
			   "connection: %s",
			   g->peer, why);
		/* Unread: raft would decode them. Its read error path
		 * closes the stream. */
		uv_read_stop(stream);
		*pp = g->next;
		guard_free(g);
		raft_read(stream, UV_EPROTO, buf);
		return;
	}
	raft_read(stream, n, buf);
}

static void tcp_accepted(struct raft_uv_transport *t, raft_id id,
			 const char *address, struct uv_stream_s *stream)
{
	struct raft_tcp *rt = raft_tcp_of(t);
	struct raft_guard **pp, *g;

	no_delay(stream);
	/* A stream of the same address as one that raft closed without an
	 * error reaching us: that one is gone. */
	pp = guard_find(stream);
	if (*pp != NULL) {
		g = *pp;
		*pp = g->next;
		guard_free(g);
	}
	g = calloc(1, sizeof *g);
	if (g == NULL) {
		/* Unchecked, it must not reach raft. */
		settle_log(SETTLE_LOG_WARN, "raft",
			   "out of memory: closing a connection from node %llu",
			   (unsigned long long)id);
		uv_close((uv_handle_t *)stream, (uv_close_cb)raft_free);
		return;
	}
	rt->accept_cb(t, id, address, stream);
	/* raft reads the stream now, unless it refused it (then it closes
	 * it). */
	if (stream->read_cb == NULL || uv_is_closing((uv_handle_t *)stream)) {
		free(g);
		return;
	}
	snprintf(g->peer, sizeof g->peer, "node %llu (%.64s)",
		 (unsigned long long)id, address);
	g->stream = stream;
	g->raft_read = stream->read_cb;
	stream->read_cb = guard_read;
	g->next = guards;
	guards = g;
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

int raft_tcp_init(struct raft_tcp *t, uv_loop_t *loop,
		  const struct raft_tls_opts *tls)
{
	int rv = tls != NULL ? raft_tls_init(&t->transport, loop, tls)
			     : raft_uv_tcp_init(&t->transport, loop);

	if (rv != 0)
		return rv;
	t->tls = tls != NULL;

	t->listen = t->transport.listen;
	t->transport.listen = tcp_listen;
	t->connect = t->transport.connect;
	t->transport.connect = tcp_connect;
	return 0;
}

void raft_tcp_close(struct raft_tcp *t)
{
	/* raft_uv closes the streams it reads; their guards go with them
	 * (a read error, or below). */
	if (t->tls)
		raft_tls_free(&t->transport);
	else
		raft_uv_tcp_close(&t->transport);
}

void raft_tcp_set_tls(struct raft_tcp *t, struct rpc_tls *server,
		      struct rpc_tls *client)
{
	if (t->tls)
		raft_tls_set_contexts(&t->transport, server, client);
}

void raft_tcp_forget(void)
{
	while (guards != NULL) {
		struct raft_guard *g = guards;

		guards = g->next;
		guard_free(g);
	}
}

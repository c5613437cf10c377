/*
 * raft_tls.c — raft's transport over mutual TLS (raft_tls.h).
 *
 * Each connection is a link: the TLS stream on the network (net) and, once
 * set up, our end of a Unix socket pair (pipe) whose other end raft owns.
 * Bytes raft writes come out of pipe and go into net; bytes net decrypts
 * go into pipe. Each direction stops reading its source when more than
 * LINK_HIGH bytes wait for its sink, and starts again below LINK_LOW, so a
 * slow side holds at most a few MiB per link.
 *
 * A link is closed by link_close() from whichever side ends first; its
 * memory goes when the last of its handles (net, timer, pipe) and its
 * address lookup are done, and only then does an outbound link that never
 * opened report its failure to raft: the connect callback always runs from
 * the loop, never inside raft's own connect call.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "error.h"
#include "log.h"
#include "raft_tls.h"
#include "rpc.h"
#include "stream.h"
#include "tls.h"

#define HELLO_MAGIC "SETTLER1"
#define ACK_MAGIC   "SETTLEOK"
#define MAGIC_LEN   8
/* The hello: magic, raft id, address length (NUL and padding included,
 * a multiple of 8), then the address. Little-endian words. */
#define HELLO_HEAD	 24
#define LINK_HIGH	 (4u << 20)
#define LINK_LOW	 (1u << 20)
#define DEFAULT_SETUP_MS 10000u
/* At most one inbound refusal logged a second, with a count of the
 * others. */
#define WARN_EVERY_MS 1000u
/* How often open links are looked at for a certificate that expired. */
#define SWEEP_EVERY_MS 10000u

enum link_state { L_RESOLVE, L_CONNECT, L_SETUP, L_OPEN, L_CLOSING };

/* Kinds of inbound refusal, each logged at most once a second. */
enum refusal { R_PEER, R_TIMEOUT, R_BUSY, R_KINDS };

struct rt;

struct link {
	struct link *next, *prev;
	struct rt *rt;
	enum link_state state;
	bool outbound;
	bool in_setup; /* counted in rt->n_setup (inbound only) */
	int open;      /* handles and requests still to finish */
	struct rpc_stream net;
	uv_timer_t timer;
	uv_pipe_t pipe;
	bool pipe_open;
	bool pipe_paused; /* not reading pipe: net has too much queued */
	bool net_paused;  /* not reading net: pipe has too much queued */
	uv_connect_t creq;
	uv_getaddrinfo_t gai;
	bool resolving;
	raft_id raft_id; /* the peer's: dialled, or claimed by its hello */
	/* Outbound: raft's request, until its callback has run. */
	struct raft_uv_connect *req;
	raft_uv_connect_cb cb;
	char host[RAFT_TLS_ADDRESS_MAX];
	int port;
	/* The setup bytes: the hello (inbound) or the answer (outbound). */
	uint8_t in[HELLO_HEAD + RAFT_TLS_ADDRESS_MAX];
	size_t in_got, in_need;
	char peer[RAFT_TLS_ADDRESS_MAX + 16]; /* for the log */
};

/* A write into pipe, with its bytes. */
struct pipe_write {
	uv_write_t req;
	struct link *l;
	uint8_t bytes[];
};

struct rt {
	struct raft_uv_transport *transport;
	uv_loop_t *loop;
	struct raft_tls_opts o;
	raft_id id;
	char address[RAFT_TLS_ADDRESS_MAX];
	uv_tcp_t listener;
	bool listener_open;
	uv_timer_t sweep; /* certificates that expired while connected */
	bool sweep_open;
	raft_uv_accept_cb accept_cb;
	struct link *links;
	unsigned n_setup;
	bool closing;
	raft_uv_transport_close_cb close_cb;
	uint64_t last_warn_ms[R_KINDS];
	unsigned suppressed[R_KINDS];
};

static _Thread_local uint8_t pipe_buf[64 * 1024];

static void put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* A warning about a peer, at most one a second: a flood of bad
 * connections must not flood the log too. */
static void rt_warn(struct rt *rt, enum refusal kind, const char *msg)
{
	uint64_t now = settle_mono_ms();

	if (rt->last_warn_ms[kind] != 0 &&
	    now - rt->last_warn_ms[kind] < WARN_EVERY_MS) {
		rt->suppressed[kind]++;
		return;
	}
	if (rt->suppressed[kind] > 0)
		settle_log(SETTLE_LOG_WARN, "raft",
			   "%s (and %u more like it since the last)", msg,
			   rt->suppressed[kind]);
	else
		settle_log(SETTLE_LOG_WARN, "raft", "%s", msg);
	rt->last_warn_ms[kind] = now;
	rt->suppressed[kind] = 0;
}

static void rt_maybe_closed(struct rt *rt)
{
	raft_uv_transport_close_cb cb = rt->close_cb;

	if (!rt->closing || cb == NULL || rt->links != NULL ||
	    rt->listener_open || rt->sweep_open)
		return;
	rt->close_cb = NULL;
	cb(rt->transport);
}

/* ---- A link's end ------------------------------------------------------- */

static void link_unref(struct link *l)
{
	struct rt *rt = l->rt;

	if (--l->open > 0)
		return;
	if (l->prev != NULL)
		l->prev->next = l->next;
	else
		rt->links = l->next;
	if (l->next != NULL)
		l->next->prev = l->prev;
	if (l->in_setup)
		rt->n_setup--;
	if (l->cb != NULL)
		l->cb(l->req, NULL,
		      rt->closing ? RAFT_CANCELED : RAFT_NOCONNECTION);
	free(l);
	rt_maybe_closed(rt);
}

static void link_handle_closed(uv_handle_t *h)
{
	link_unref(h->data);
}

static void link_close(struct link *l)
{
	if (l->state == L_CLOSING)
		return;
	l->state = L_CLOSING;
	if (l->resolving)
		(void)uv_cancel((uv_req_t *)&l->gai);
	uv_close((uv_handle_t *)&l->timer, link_handle_closed);
	if (l->pipe_open)
		uv_close((uv_handle_t *)&l->pipe, link_handle_closed);
	rpc_stream_close(&l->net);
}

/* A link that failed its setup: why. Inbound refusals, which anyone who
 * reaches the port can cause, at most once a second; outbound ones (at
 * most one a second per member, raft's retry delay) all. */
static void link_refuse(struct link *l, enum refusal kind, const char *fmt, ...)
{
	char why[300], msg[700];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof why, fmt, ap);
	va_end(ap);
	snprintf(msg, sizeof msg, "raft connection %s %s refused: %s",
		 l->outbound ? "to" : "from", l->peer, why);
	if (l->outbound)
		settle_log(SETTLE_LOG_WARN, "raft", "%s", msg);
	else
		rt_warn(l->rt, kind, msg);
	link_close(l);
}

static void link_timeout(uv_timer_t *timer)
{
	struct link *l = timer->data;

	link_refuse(l, R_TIMEOUT, "no TLS handshake and hello within %u ms",
		    l->rt->o.setup_timeout_ms);
}

/* ---- Bytes both ways ---------------------------------------------------- */

static void pipe_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	(void)h;
	(void)hint;
	*buf = uv_buf_init((char *)pipe_buf, sizeof pipe_buf);
}

/* What raft wrote, into the TLS stream. */
static void pipe_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct link *l = s->data;

	if (l->state == L_CLOSING || n == 0)
		return;
	if (n < 0) {
		/* raft closed its end. */
		link_close(l);
		return;
	}
	if (rpc_stream_queue(&l->net, (const uint8_t *)buf->base, (size_t)n) !=
		0 ||
	    rpc_stream_flush(&l->net) != 0) {
		link_close(l);
		return;
	}
	if (rpc_stream_pending(&l->net) > LINK_HIGH) {
		uv_read_stop(s);
		l->pipe_paused = true;
	}
}

static void net_written(struct rpc_stream *s)
{
	struct link *l = s->data;

	if (l->pipe_paused && l->state == L_OPEN &&
	    rpc_stream_pending(s) < LINK_LOW) {
		l->pipe_paused = false;
		if (uv_read_start((uv_stream_t *)&l->pipe, pipe_alloc,
				  pipe_read) != 0)
			link_close(l);
	}
}

static void pipe_written(uv_write_t *req, int status)
{
	struct pipe_write *w = (struct pipe_write *)req;
	struct link *l = w->l;

	free(w);
	if (l->state == L_CLOSING)
		return;
	if (status < 0) {
		link_close(l);
		return;
	}
	if (l->net_paused && uv_stream_get_write_queue_size(
				 (uv_stream_t *)&l->pipe) < LINK_LOW) {
		l->net_paused = false;
		if (rpc_stream_read_start(&l->net) != 0)
			link_close(l);
	}
}

/* What net decrypted, into raft's end. */
static void to_raft(struct link *l, const uint8_t *p, size_t n)
{
	uv_stream_t *pipe = (uv_stream_t *)&l->pipe;
	struct pipe_write *w;
	uv_buf_t b;

	if (uv_stream_get_write_queue_size(pipe) == 0) {
		int k;

		b = uv_buf_init((char *)p, (unsigned)n);
		k = uv_try_write(pipe, &b, 1);
		if (k >= 0) {
			p += k;
			n -= (size_t)k;
		} else if (k != UV_EAGAIN) {
			link_close(l);
			return;
		}
		if (n == 0)
			return;
	}
	w = malloc(sizeof *w + n);
	if (w == NULL) {
		link_close(l);
		return;
	}
	w->l = l;
	memcpy(w->bytes, p, n);
	b = uv_buf_init((char *)w->bytes, (unsigned)n);
	if (uv_write(&w->req, pipe, &b, 1, pipe_written) != 0) {
		free(w);
		link_close(l);
		return;
	}
	if (uv_stream_get_write_queue_size(pipe) > LINK_HIGH) {
		l->net_paused = true;
		(void)rpc_stream_read_stop(&l->net);
	}
}

/* ---- Setup --------------------------------------------------------------- */

/* The socket pair: ours read at once, raft's into *theirs. */
static int link_pair(struct link *l, uv_stream_t **theirs)
{
	uv_os_sock_t fds[2];
	uv_pipe_t *p;

	p = raft_malloc(sizeof *p);
	if (p == NULL)
		return -1;
	if (uv_socketpair(SOCK_STREAM, 0, fds, 0, 0) != 0) {
		raft_free(p);
		return -1;
	}
	(void)uv_pipe_init(l->rt->loop, &l->pipe, 0);
	l->pipe.data = l;
	l->pipe_open = true;
	l->open++;
	(void)uv_pipe_init(l->rt->loop, p, 0);
	if (uv_pipe_open(&l->pipe, fds[0]) != 0) {
		close(fds[0]);
		close(fds[1]);
		uv_close((uv_handle_t *)p, (uv_close_cb)raft_free);
		return -1;
	}
	if (uv_pipe_open(p, fds[1]) != 0) {
		close(fds[1]);
		uv_close((uv_handle_t *)p, (uv_close_cb)raft_free);
		return -1;
	}
	if (uv_read_start((uv_stream_t *)&l->pipe, pipe_alloc, pipe_read) !=
	    0) {
		uv_close((uv_handle_t *)p, (uv_close_cb)raft_free);
		return -1;
	}
	*theirs = (uv_stream_t *)p;
	return 0;
}

static bool peer_allowed(struct link *l)
{
	struct rpc_peer_id id;
	const char *name;
	struct rt *rt = l->rt;

	rpc_stream_peer_id(&l->net, &id);
	name = id.name[0] != '\0' ? id.name : id.fingerprint;
	if (rt->o.peer_ok != NULL &&
	    !rt->o.peer_ok(rt->o.peer_data, &id, l->raft_id)) {
		link_refuse(l, R_PEER,
			    "certificate \"%s\" does not hold the peer role "
			    "for raft id %llu (--roles)",
			    name, (unsigned long long)l->raft_id);
		return false;
	}
	return true;
}

/* The link carries raft's bytes from now on. */
static bool link_open(struct link *l, uv_stream_t **theirs)
{
	if (link_pair(l, theirs) != 0) {
		link_refuse(l, R_PEER,
			    "no socket pair for raft: out of descriptors?");
		return false;
	}
	l->state = L_OPEN;
	uv_timer_stop(&l->timer);
	if (l->in_setup) {
		l->in_setup = false;
		l->rt->n_setup--;
	}
	return true;
}

/* Inbound: the whole hello is in; 0 when the link is open. */
static int hello_done(struct link *l)
{
	struct rt *rt = l->rt;
	uint64_t id = get64(l->in + MAGIC_LEN);
	char address[RAFT_TLS_ADDRESS_MAX];
	uv_stream_t *theirs;
	size_t alen = l->in_need - HELLO_HEAD;

	if (memchr(l->in + HELLO_HEAD, '\0', alen) == NULL || id == 0) {
		link_refuse(l, R_PEER, "malformed hello");
		return -1;
	}
	memcpy(address, l->in + HELLO_HEAD, alen);
	l->raft_id = id;
	if (!peer_allowed(l))
		return -1;
	if (rpc_stream_queue(&l->net, (const uint8_t *)ACK_MAGIC, MAGIC_LEN) !=
		0 ||
	    rpc_stream_flush(&l->net) != 0) {
		link_close(l);
		return -1;
	}
	if (!link_open(l, &theirs))
		return -1;
	snprintf(l->peer + strlen(l->peer), sizeof l->peer - strlen(l->peer),
		 " (node %llu)", (unsigned long long)id);
	rt->accept_cb(rt->transport, id, address, theirs);
	return 0;
}

/* Outbound: the answer is in; 0 when the link is open. */
static int answer_done(struct link *l)
{
	raft_uv_connect_cb cb = l->cb;
	uv_stream_t *theirs;

	if (memcmp(l->in, ACK_MAGIC, MAGIC_LEN) != 0) {
		link_refuse(l, R_PEER, "not a Settle raft port over TLS");
		return -1;
	}
	if (!peer_allowed(l) || !link_open(l, &theirs))
		return -1;
	l->cb = NULL;
	cb(l->req, theirs, 0);
	return 0;
}

/* Setup bytes (after the TLS handshake): how many of p's n were taken, or
 * -1 when the link was refused. */
static ssize_t setup_read(struct link *l, const uint8_t *p, size_t n)
{
	size_t k, taken = 0;

	while (l->state == L_SETUP && taken < n) {
		k = l->in_need - l->in_got;
		k = k < n - taken ? k : n - taken;
		memcpy(l->in + l->in_got, p + taken, k);
		l->in_got += k;
		taken += k;
		if (l->in_got < l->in_need)
			break;
		if (l->outbound)
			return answer_done(l) == 0 ? (ssize_t)taken : -1;
		if (l->in_need == HELLO_HEAD) {
			uint64_t alen = get64(l->in + 16);

			if (memcmp(l->in, HELLO_MAGIC, MAGIC_LEN) != 0) {
				link_refuse(l, R_PEER,
					    "not a Settle raft hello");
				return -1;
			}
			if (alen == 0 || alen % 8 != 0 ||
			    alen > RAFT_TLS_ADDRESS_MAX) {
				link_refuse(l, R_PEER,
					    "hello announces an address of "
					    "%llu bytes",
					    (unsigned long long)alen);
				return -1;
			}
			l->in_need = HELLO_HEAD + (size_t)alen;
			continue;
		}
		return hello_done(l) == 0 ? (ssize_t)taken : -1;
	}
	return (ssize_t)taken;
}

static void net_read(struct rpc_stream *s, const uint8_t *data, size_t len,
		     int err)
{
	struct link *l = s->data;
	ssize_t k;

	if (l->state == L_CLOSING)
		return;
	if (err != 0) {
		if (l->state == L_SETUP && err == SETTLE_ETLS)
			link_refuse(l, R_PEER, "%s", rpc_stream_tls_error(s));
		else
			link_close(l);
		return;
	}
	if (l->state == L_SETUP) {
		k = setup_read(l, data, len);
		if (k < 0 || l->state != L_OPEN)
			return;
		data += k;
		len -= (size_t)k;
	}
	if (len > 0 && l->state == L_OPEN)
		to_raft(l, data, len);
}

static void net_write_error(struct rpc_stream *s, int err)
{
	(void)err;
	link_close(s->data);
}

static void net_closed(struct rpc_stream *s)
{
	link_unref(s->data);
}

static const struct rpc_stream_cbs net_cbs = {
    .on_read = net_read,
    .on_write_error = net_write_error,
    .on_close = net_closed,
    .on_written = net_written,
};

/* A new link with its TLS stream and timer (2 handles open), in the list;
 * NULL when out of memory. */
static struct link *link_new(struct rt *rt, bool outbound, const char *host)
{
	struct link *l = calloc(1, sizeof *l);
	struct rpc_tls *ctx = outbound ? rt->o.client : rt->o.server;

	if (l == NULL)
		return NULL;
	if (rpc_stream_tls_init(rt->loop, &l->net, &net_cbs, l, ctx, host) !=
	    0) {
		free(l);
		return NULL;
	}
	l->rt = rt;
	l->outbound = outbound;
	l->open = 2;
	(void)uv_timer_init(rt->loop, &l->timer);
	l->timer.data = l;
	(void)uv_timer_start(&l->timer, link_timeout, rt->o.setup_timeout_ms,
			     0);
	l->next = rt->links;
	if (rt->links != NULL)
		rt->links->prev = l;
	rt->links = l;
	return l;
}

/* TLS starts; the dialler's hello waits in the stream for its end. */
static void link_start(struct link *l)
{
	uint8_t hello[HELLO_HEAD + RAFT_TLS_ADDRESS_MAX];
	struct rt *rt = l->rt;
	size_t alen;

	l->state = L_SETUP;
	rpc_stream_tcp_ready(&l->net);
	if (l->outbound) {
		alen = (strlen(rt->address) + 1 + 7) / 8 * 8;
		memset(hello, 0, sizeof hello);
		memcpy(hello, HELLO_MAGIC, MAGIC_LEN);
		put64(hello + 8, rt->id);
		put64(hello + 16, alen);
		memcpy(hello + HELLO_HEAD, rt->address, strlen(rt->address));
		l->in_need = MAGIC_LEN;
		if (rpc_stream_queue(&l->net, hello, HELLO_HEAD + alen) != 0 ||
		    rpc_stream_flush(&l->net) != 0) {
			link_close(l);
			return;
		}
	} else {
		l->in_need = HELLO_HEAD;
	}
	if (rpc_stream_read_start(&l->net) != 0)
		link_refuse(l, R_PEER, "%s", rpc_stream_tls_error(&l->net));
}

/* ---- Outbound ------------------------------------------------------------ */

static void connected(uv_connect_t *req, int status)
{
	struct link *l = req->data;

	if (l->state == L_CLOSING)
		return;
	if (status < 0) {
		/* A node that is down: raft retries every second; no log. */
		link_close(l);
		return;
	}
	link_start(l);
}

static void link_connect(struct link *l, const struct sockaddr *sa)
{
	l->state = L_CONNECT;
	l->creq.data = l;
	if (uv_tcp_connect(&l->creq, &l->net.tcp, sa, connected) != 0)
		link_close(l);
}

static void resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
	struct link *l = req->data;

	l->resolving = false;
	if (l->state != L_CLOSING) {
		if (status != 0 || res == NULL)
			link_refuse(l, R_PEER, "cannot resolve it: %s",
				    uv_strerror(status));
		else
			link_connect(l, res->ai_addr);
	}
	uv_freeaddrinfo(res);
	link_unref(l);
}

static int tr_connect(struct raft_uv_transport *t, struct raft_uv_connect *req,
		      raft_id id, const char *address, raft_uv_connect_cb cb)
{
	struct rt *rt = t->impl;
	struct sockaddr_storage sa;
	struct addrinfo hints;
	char host[RAFT_TLS_ADDRESS_MAX], port[8];
	struct link *l;
	int p;

	if (rt->closing)
		return RAFT_CANCELED;
	if (rpc_addr_split(address, host, sizeof host, &p) != 0) {
		snprintf(t->errmsg, sizeof t->errmsg,
			 "raft address '%s': want host:port", address);
		return RAFT_NOCONNECTION;
	}
	l = link_new(rt, true, host);
	if (l == NULL)
		return RAFT_NOMEM;
	l->req = req;
	l->cb = cb;
	l->raft_id = id;
	snprintf(l->peer, sizeof l->peer, "%s", address);
	if (rpc_addr_numeric(host, p, &sa) == 0) {
		link_connect(l, (const struct sockaddr *)&sa);
		return 0;
	}
	memset(&hints, 0, sizeof hints);
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	snprintf(port, sizeof port, "%d", p);
	l->state = L_RESOLVE;
	l->gai.data = l;
	l->resolving = true;
	l->open++;
	if (uv_getaddrinfo(rt->loop, &l->gai, resolved, host, port, &hints) !=
	    0) {
		l->resolving = false;
		l->open--;
		link_close(l);
	}
	return 0;
}

/* ---- Inbound ------------------------------------------------------------- */

/* Links whose peer's certificate expired since their handshake: closed,
 * as the peer could not connect again with it. */
static void sweep_expired(uv_timer_t *t)
{
	struct rt *rt = t->data;
	time_t now = time(NULL);

	for (struct link *l = rt->links; l != NULL; l = l->next) {
		if (l->state != L_OPEN || !rpc_stream_tls_expired(&l->net, now))
			continue;
		settle_log(SETTLE_LOG_WARN, "raft",
			   "raft connection %s %s closed: its certificate has "
			   "expired",
			   l->outbound ? "to" : "from", l->peer);
		link_close(l);
	}
}

static void on_connection(uv_stream_t *server, int status)
{
	struct rt *rt = server->data;
	struct link *l;

	if (status < 0 || rt->closing)
		return;
	l = link_new(rt, false, NULL);
	if (l == NULL) {
		/* Take it off the backlog all the same. */
		uv_tcp_t *tmp = malloc(sizeof *tmp);

		if (tmp != NULL) {
			(void)uv_tcp_init(rt->loop, tmp);
			(void)uv_accept(server, (uv_stream_t *)tmp);
			uv_close((uv_handle_t *)tmp, (uv_close_cb)free);
		}
		return;
	}
	if (uv_accept(server, (uv_stream_t *)&l->net.tcp) != 0) {
		link_close(l);
		return;
	}
	rpc_stream_peer(&l->net, l->peer, sizeof l->peer);
	if (rt->n_setup >= RAFT_TLS_SETUP_MAX) {
		link_refuse(l, R_BUSY,
			    "%u connections in their handshake already",
			    rt->n_setup);
		return;
	}
	l->in_setup = true;
	rt->n_setup++;
	link_start(l);
}

static int tr_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
	struct rt *rt = t->impl;
	struct sockaddr_storage sa;
	int rv;

	if (rpc_addr_resolve(rt->loop, rt->address, &sa, t->errmsg,
			     sizeof t->errmsg) != 0)
		return RAFT_INVALID;
	(void)uv_tcp_init(rt->loop, &rt->listener);
	rt->listener.data = rt;
	rt->listener_open = true;
	rv = uv_tcp_bind(&rt->listener, (const struct sockaddr *)&sa, 0);
	if (rv == 0)
		rv =
		    uv_listen((uv_stream_t *)&rt->listener, 128, on_connection);
	if (rv != 0) {
		snprintf(t->errmsg, sizeof t->errmsg, "listen on %s: %s",
			 rt->address, uv_strerror(rv));
		return RAFT_IOERR;
	}
	rt->accept_cb = cb;
	(void)uv_timer_init(rt->loop, &rt->sweep);
	rt->sweep.data = rt;
	rt->sweep_open = true;
	(void)uv_timer_start(&rt->sweep, sweep_expired, SWEEP_EVERY_MS,
			     SWEEP_EVERY_MS);
	uv_unref((uv_handle_t *)&rt->sweep);
	return 0;
}

/* ---- The transport ------------------------------------------------------- */

static int tr_init(struct raft_uv_transport *t, raft_id id, const char *address)
{
	struct rt *rt = t->impl;

	if (strlen(address) + 1 > sizeof rt->address - 8) {
		snprintf(t->errmsg, sizeof t->errmsg,
			 "raft address of %zu bytes: at most %zu",
			 strlen(address), sizeof rt->address - 9);
		return RAFT_NAMETOOLONG;
	}
	rt->id = id;
	snprintf(rt->address, sizeof rt->address, "%s", address);
	return 0;
}

static void listener_closed(uv_handle_t *h)
{
	struct rt *rt = h->data;

	rt->listener_open = false;
	rt_maybe_closed(rt);
}

static void sweep_closed(uv_handle_t *h)
{
	struct rt *rt = h->data;

	rt->sweep_open = false;
	rt_maybe_closed(rt);
}

static void tr_close(struct raft_uv_transport *t, raft_uv_transport_close_cb cb)
{
	struct rt *rt = t->impl;

	rt->closing = true;
	rt->close_cb = cb;
	if (rt->listener_open && !uv_is_closing((uv_handle_t *)&rt->listener))
		uv_close((uv_handle_t *)&rt->listener, listener_closed);
	if (rt->sweep_open && !uv_is_closing((uv_handle_t *)&rt->sweep))
		uv_close((uv_handle_t *)&rt->sweep, sweep_closed);
	for (struct link *l = rt->links; l != NULL; l = l->next)
		link_close(l);
	rt_maybe_closed(rt);
}

int raft_tls_init(struct raft_uv_transport *t, uv_loop_t *loop,
		  const struct raft_tls_opts *opts)
{
	struct rt *rt = calloc(1, sizeof *rt);

	if (rt == NULL)
		return RAFT_NOMEM;
	memset(t, 0, sizeof *t);
	rt->transport = t;
	rt->loop = loop;
	rt->o = *opts;
	if (rt->o.setup_timeout_ms == 0)
		rt->o.setup_timeout_ms = DEFAULT_SETUP_MS;
	t->impl = rt;
	t->init = tr_init;
	t->listen = tr_listen;
	t->connect = tr_connect;
	t->close = tr_close;
	return 0;
}

void raft_tls_set_contexts(struct raft_uv_transport *t, struct rpc_tls *server,
			   struct rpc_tls *client)
{
	struct rt *rt = t->impl;
	char why[160];

	rt->o.server = server;
	rt->o.client = client;
	/* A peer whose certificate the new files refuse (revoked, say) is
	 * cut off now, not at its next reconnection. */
	for (struct link *l = rt->links; l != NULL; l = l->next) {
		if (l->state != L_OPEN ||
		    rpc_stream_tls_still_valid(&l->net,
					       l->outbound ? client : server,
					       why, sizeof why))
			continue;
		settle_log(SETTLE_LOG_WARN, "raft",
			   "raft connection %s %s closed: its certificate "
			   "fails the reloaded TLS files: %s",
			   l->outbound ? "to" : "from", l->peer, why);
		link_close(l);
	}
}

void raft_tls_free(struct raft_uv_transport *t)
{
	struct rt *rt = t->impl;

	if (rt == NULL)
		return;
	/* Links left only if the loop never ran their closes. */
	while (rt->links != NULL) {
		struct link *l = rt->links;

		rt->links = l->next;
		free(l);
	}
	free(rt);
	t->impl = NULL;
}

#include "conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "error.h"
#include "log.h"
#include "tls.h"

int client_conn_parse_endpoint(const char *ep, char *host, size_t hostlen,
			       char *port, size_t portlen)
{
	const char *colon;
	const char *h = ep;
	size_t hl;

	if (ep == NULL || ep[0] == '\0')
		return SETTLE_EINVAL;
	if (ep[0] == '[') {
		const char *close = strchr(ep, ']');
		if (close == NULL || close[1] != ':')
			return SETTLE_EINVAL;
		h = ep + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(ep, ':');
		if (colon == NULL)
			return SETTLE_EINVAL;
		hl = (size_t)(colon - ep);
		/* A bare IPv6 address needs brackets to carry a port. */
		if (memchr(ep, ':', hl) != NULL)
			return SETTLE_EINVAL;
	}
	if (hl == 0 || hl >= hostlen)
		return SETTLE_EINVAL;
	colon++;
	size_t pl = strlen(colon);
	if (pl == 0 || pl >= portlen || strspn(colon, "0123456789") != pl)
		return SETTLE_EINVAL;
	long p = strtol(colon, NULL, 10);
	if (p <= 0 || p > 65535)
		return SETTLE_EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memcpy(port, colon, pl + 1);
	return 0;
}

void client_conn_init(struct client_conn *c, uint32_t max_frame)
{
	struct rpc_tls *tls =
	    c->tls; /* settle_client_set_tls() may come first */

	memset(c, 0, sizeof(*c));
	c->tls = tls;
	c->fd = -1;
	c->max_frame = max_frame != 0 ? max_frame : RPC_DEFAULT_MAX_FRAME;
	c->next_id = 1;
	rpc_decoder_init(&c->dec, c->max_frame);
}

void client_conn_close(struct client_conn *c)
{
	SSL_free(c->ssl);
	c->ssl = NULL;
	ERR_clear_error();
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->endpoint[0] = '\0';
	/* Bytes of a half-read frame belong to the dead stream. */
	rpc_decoder_close(&c->dec);
	rpc_decoder_init(&c->dec, c->max_frame);
}

static int remaining_ms(uint64_t deadline)
{
	uint64_t now = settle_mono_ms();
	if (now >= deadline)
		return 0;
	if (deadline - now > 60 * 60 * 1000)
		return 60 * 60 * 1000;
	return (int)(deadline - now);
}

/* Wait for events on fd until deadline: 1 ready, 0 timed out, <0 error. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	struct pollfd pfd = {.fd = fd, .events = events};
	for (;;) {
		int ms = remaining_ms(deadline);
		if (ms == 0)
			return 0;
		int rv = poll(&pfd, 1, ms);
		if (rv < 0 && errno == EINTR)
			continue;
		if (rv < 0)
			return SETTLE_EIO;
		if (rv == 0)
			return 0;
		return 1;
	}
}

static int connect_one(const struct addrinfo *ai, uint64_t deadline,
		       int *err_no)
{
	int fd = socket(ai->ai_family,
			ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			ai->ai_protocol);
	if (fd < 0) {
		*err_no = errno;
		return -1;
	}
	if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
		if (errno != EINPROGRESS) {
			*err_no = errno;
			goto err_after_socket;
		}
		int rv = wait_fd(fd, POLLOUT, deadline);
		if (rv <= 0) {
			*err_no = rv == 0 ? ETIMEDOUT : EIO;
			goto err_after_socket;
		}
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0 ||
		    soerr != 0) {
			*err_no = soerr != 0 ? soerr : errno;
			goto err_after_socket;
		}
	}
	int one = 1;
	/* One small request at a time: don't let Nagle hold it back. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;

err_after_socket:
	close(fd);
	return -1;
}

/*
 * OpenSSL writes to the socket with write(), without MSG_NOSIGNAL: a peer
 * gone raises SIGPIPE, which would end an application that does not
 * ignore it (the plain path sends with MSG_NOSIGNAL). So SIGPIPE is
 * blocked around each SSL call, and one raised meanwhile is taken.
 */
struct pipe_guard {
	sigset_t old;
	bool pending_before;
};

static void pipe_block(struct pipe_guard *g)
{
	sigset_t set, pend;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pend);
	g->pending_before = sigismember(&pend, SIGPIPE) == 1;
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
	/* A call starts with a clean error queue: an entry left by another
	 * connection must not read as this call's error. */
	ERR_clear_error();
}

static void pipe_unblock(struct pipe_guard *g)
{
	struct timespec zero = {0, 0};
	sigset_t set, pend;

	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	if (!g->pending_before && sigpending(&pend) == 0 &&
	    sigismember(&pend, SIGPIPE) == 1)
		(void)sigtimedwait(&set, NULL, &zero);
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

/* After SSL_* returned r <= 0: wait for what OpenSSL wants of the socket
 * until deadline (0 to call again), or the error it is. */
static int tls_wait(struct client_conn *c, int r, uint64_t deadline)
{
	int rv;

	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		rv = wait_fd(c->fd, POLLIN, deadline);
		break;
	case SSL_ERROR_WANT_WRITE:
		rv = wait_fd(c->fd, POLLOUT, deadline);
		break;
	case SSL_ERROR_ZERO_RETURN:
		return SETTLE_ECLOSED;
	case SSL_ERROR_SYSCALL:
		ERR_clear_error();
		return errno == EINTR ? 0 : SETTLE_ECLOSED;
	default:
		return SETTLE_ETLS;
	}
	if (rv == 0)
		return SETTLE_ETIMEOUT;
	return rv < 0 ? rv : 0;
}

static int tls_handshake(struct client_conn *c, const char *host,
			 uint64_t deadline, char *errmsg, size_t errlen)
{
	int r, rv;

	c->ssl = rpc_tls_client_ssl(c->tls, host);
	if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
		snprintf(errmsg, errlen,
			 "%s: TLS: no connection object (out of memory, or "
			 "not a client's certificate)",
			 host);
		return SETTLE_ENOMEM;
	}
	for (;;) {
		struct pipe_guard g;

		pipe_block(&g);
		r = SSL_connect(c->ssl);
		pipe_unblock(&g);
		if (r == 1)
			break;
		rv = tls_wait(c, r, deadline);
		if (rv == SETTLE_ETLS || rv == SETTLE_ECLOSED) {
			char why[300];

			rpc_tls_why(c->ssl, "handshake", why, sizeof(why));
			snprintf(errmsg, errlen, "%s: TLS %s", host, why);
			return SETTLE_ETLS;
		}
		if (rv != 0) {
			snprintf(errmsg, errlen, "%s: TLS handshake: %s", host,
				 settle_strerror(rv));
			return rv == SETTLE_ETIMEOUT ? SETTLE_ECONNECT : rv;
		}
	}
	return 0;
}

int client_conn_open(struct client_conn *c, const char *endpoint,
		     uint64_t deadline, char *errmsg, size_t errlen)
{
	char host[256];
	char port[16];
	struct addrinfo hints = {0};
	struct addrinfo *res;
	int err_no = 0;

	client_conn_close(c);
	if (client_conn_parse_endpoint(endpoint, host, sizeof(host), port,
				       sizeof(port)) != 0 ||
	    strlen(endpoint) >= sizeof(c->endpoint)) {
		snprintf(errmsg, errlen, "bad endpoint '%s' (want host:port)",
			 endpoint);
		return SETTLE_EINVAL;
	}
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	int rv = getaddrinfo(host, port, &hints, &res);
	if (rv != 0) {
		snprintf(errmsg, errlen, "%s: %s", endpoint, gai_strerror(rv));
		return SETTLE_ECONNECT;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
		c->fd = connect_one(ai, deadline, &err_no);
		if (c->fd >= 0)
			break;
	}
	freeaddrinfo(res);
	if (c->fd < 0) {
		snprintf(errmsg, errlen, "%s: connect: %s", endpoint,
			 strerror(err_no != 0 ? err_no : ECONNREFUSED));
		return SETTLE_ECONNECT;
	}
	if (c->tls != NULL) {
		rv = tls_handshake(c, host, deadline, errmsg, errlen);
		if (rv != 0) {
			client_conn_close(c);
			return rv;
		}
	}
	strcpy(c->endpoint, endpoint);
	return 0;
}

static int send_all(struct client_conn *c, const uint8_t *buf, size_t len,
		    uint64_t deadline)
{
	size_t off = 0;

	while (c->ssl != NULL && off < len) {
		size_t chunk = len - off > INT_MAX ? INT_MAX : len - off;
		struct pipe_guard g;
		int r, rv;

		pipe_block(&g);
		r = SSL_write(c->ssl, buf + off, (int)chunk);
		pipe_unblock(&g);
		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		rv = tls_wait(c, r, deadline);
		if (rv != 0)
			return rv;
	}
	while (off < len) {
		ssize_t n = send(c->fd, buf + off, len - off, MSG_NOSIGNAL);
		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			int rv = wait_fd(c->fd, POLLOUT, deadline);
			if (rv == 0)
				return SETTLE_ETIMEOUT;
			if (rv < 0)
				return rv;
			continue;
		}
		return (errno == EPIPE || errno == ECONNRESET) ? SETTLE_ECLOSED
							       : SETTLE_EIO;
	}
	return 0;
}

/* Next whole frame from the stream, reading as needed until deadline. */
static int recv_frame(struct client_conn *c, uint64_t deadline,
		      Settle__V1__Frame **out)
{
	uint8_t buf[16384];
	for (;;) {
		int rv = rpc_decoder_next(&c->dec, out);
		if (rv <= 0)
			return rv; /* a frame, or a stream error */
		if (c->ssl != NULL) {
			struct pipe_guard g;
			int r;

			pipe_block(&g);
			r = SSL_read(c->ssl, buf, sizeof(buf));
			pipe_unblock(&g);
			rv = r > 0 ? rpc_decoder_feed(&c->dec, buf, (size_t)r)
				   : tls_wait(c, r, deadline);
			if (rv != 0)
				return rv;
			continue;
		}
		ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
		if (n > 0) {
			rv = rpc_decoder_feed(&c->dec, buf, (size_t)n);
			if (rv != 0)
				return rv;
			continue;
		}
		if (n == 0)
			return SETTLE_ECLOSED;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			rv = wait_fd(c->fd, POLLIN, deadline);
			if (rv == 0)
				return SETTLE_ETIMEOUT;
			if (rv < 0)
				return rv;
			continue;
		}
		return errno == ECONNRESET ? SETTLE_ECLOSED : SETTLE_EIO;
	}
}

/* Send req under a new id (*id): 0, or the connection is closed unless
 * nothing was sent. */
static int send_request(struct client_conn *c, int method,
			const ProtobufCMessage *req, uint64_t deadline,
			uint64_t *id)
{
	uint8_t *buf;
	size_t len;
	int rv;

	if (c->fd < 0)
		return SETTLE_ECLOSED;
	*id = c->next_id++;
	rv = rpc_frame_encode(*id, method, 0, req, 0, NULL, NULL, c->max_frame,
			      &buf, &len);
	if (rv != 0)
		return rv; /* nothing sent: the connection stays usable */
	rv = send_all(c, buf, len, deadline);
	free(buf);
	if (rv != 0)
		client_conn_close(c);
	return rv;
}

int client_conn_send(struct client_conn *c, int method,
		     const ProtobufCMessage *req, uint64_t deadline)
{
	uint64_t id;

	return send_request(c, method, req, deadline, &id);
}

int client_conn_call(struct client_conn *c, int method,
		     const ProtobufCMessage *req, uint64_t deadline,
		     Settle__V1__Frame **resp)
{
	uint64_t id;
	int rv = send_request(c, method, req, deadline, &id);

	if (rv != 0)
		return rv;
	for (;;) {
		Settle__V1__Frame *f;
		rv = recv_frame(c, deadline, &f);
		if (rv != 0)
			goto err;
		/* A late answer to a request we gave up on: not ours. */
		if (!f->response || f->id != id) {
			settle__v1__frame__free_unpacked(f, NULL);
			continue;
		}
		*resp = f;
		return 0;
	}
err:
	client_conn_close(c);
	return rv;
}

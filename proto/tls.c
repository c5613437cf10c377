/*
 * tls.c — TLS 1.3 streams with OpenSSL over memory BIOs (tls.h).
 *
 * Bytes read from TCP go into the connection's read BIO; SSL_read hands
 * back the plain bytes for the owner's on_read. What the owner writes goes
 * through SSL_write; the records OpenSSL puts in the write BIO, with those
 * of the handshake, are sent from a ciphertext queue: `out` collects them,
 * `busy` is the uv_write in progress. stream.c keeps at most one owner
 * write in flight (its busy buffer); it is reported done once the records
 * that carry it are written, as a plain stream's would be.
 */
#include "tls.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "error.h"
#include "rpc.h"

struct rpc_tls {
	SSL_CTX *ctx;
	bool server;
};

/* A record buffer that grew past this is released once written. */
#define TLS_KEEP_CAP (1u << 20)

/* Where the owner's write in flight is. */
enum { APP_NONE, APP_WAITING, APP_IN_OUT, APP_IN_BUSY };

struct rpc_tls_conn {
	SSL *ssl;
	BIO *rbio, *wbio; /* owned by ssl */
	bool server;
	bool started; /* a client's ClientHello is out */
	bool done;    /* handshake complete */
	bool failed;  /* handshake failed: nothing more is read */
	int app;      /* APP_* */
	uint8_t *out; /* records not yet handed to uv */
	size_t out_len, out_cap;
	uint8_t *busy; /* records being written */
	size_t busy_len, busy_cap;
	bool writing;
	uv_write_t wreq;
	char error[256];
	char peer_name[128];
	char peer_fp[65];
	/* The subjectAltNames kept (rpc_peer_id), NUL-terminated one after
	 * the other. */
	char peer_sans[512];
	size_t n_sans;
	time_t peer_not_after; /* the certificate's end of validity; 0: none */
};

/* One buffer of decrypted bytes per loop thread (records arrive in the
 * plain streams' read buffer, stream.c). */
static _Thread_local uint8_t plain[RPC_STREAM_READ_SIZE];

/* ---- Context ------------------------------------------------------------- */

/* OpenSSL's error queue as one line into buf (emptied). */
static void ssl_errors(char *buf, size_t len)
{
	unsigned long e;
	size_t at = 0;

	buf[0] = '\0';
	/* The whole queue goes, whatever fits: an entry left behind would
	 * be taken for the next call's error on another connection. */
	while ((e = ERR_get_error()) != 0) {
		char one[200];

		if (at + 2 >= len)
			continue;
		ERR_error_string_n(e, one, sizeof(one));
		at += (size_t)snprintf(buf + at, len - at, "%s%s",
				       at > 0 ? "; " : "", one);
		if (at >= len)
			at = len - 1;
	}
	if (buf[0] == '\0')
		snprintf(buf, len, "no detail from OpenSSL");
}

static int ctx_fail(struct rpc_tls *t, char *errmsg, size_t len,
		    const char *what, const char *file)
{
	char why[400];

	ssl_errors(why, sizeof(why));
	snprintf(errmsg, len, "%s %s: %s", what, file, why);
	SSL_CTX_free(t->ctx);
	free(t);
	return SETTLE_EINVAL;
}

static int load_crl(struct rpc_tls *t, const char *path)
{
	X509_STORE *store = SSL_CTX_get_cert_store(t->ctx);
	X509_LOOKUP *lu = X509_STORE_add_lookup(store, X509_LOOKUP_file());

	if (lu == NULL || X509_load_crl_file(lu, path, X509_FILETYPE_PEM) <= 0)
		return -1;
	X509_STORE_set_flags(store,
			     X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
	return 0;
}

int rpc_tls_new(const struct rpc_tls_opts *o, struct rpc_tls **out,
		char *errmsg, size_t errmsg_len)
{
	struct rpc_tls *t;

	if (o->cert == NULL || o->key == NULL || o->ca == NULL) {
		snprintf(errmsg, errmsg_len,
			 "TLS needs a certificate, its key and a CA");
		return SETTLE_EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return SETTLE_ENOMEM;
	ERR_clear_error();
	t->server = o->server;
	t->ctx =
	    SSL_CTX_new(o->server ? TLS_server_method() : TLS_client_method());
	if (t->ctx == NULL)
		return ctx_fail(t, errmsg, errmsg_len, "TLS", "context");
	if (SSL_CTX_set_min_proto_version(t->ctx, TLS1_3_VERSION) != 1)
		return ctx_fail(t, errmsg, errmsg_len, "TLS", "1.3");
	/* A peer that closes without close_notify (Settle's nodes never send
	 * one; a crashed one cannot) has closed the connection, as on plain
	 * TCP: the framing already tells a cut frame. */
	SSL_CTX_set_options(t->ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* No session tickets: each connection lives long, and a resumed
	 * session would skip the client certificate's check. */
	SSL_CTX_set_num_tickets(t->ctx, 0);
	SSL_CTX_set_session_cache_mode(t->ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(t->ctx, o->cert) != 1)
		return ctx_fail(t, errmsg, errmsg_len, "certificate", o->cert);
	if (SSL_CTX_use_PrivateKey_file(t->ctx, o->key, SSL_FILETYPE_PEM) != 1)
		return ctx_fail(t, errmsg, errmsg_len, "key", o->key);
	if (SSL_CTX_check_private_key(t->ctx) != 1)
		return ctx_fail(t, errmsg, errmsg_len,
				"key does not match the certificate", o->key);
	if (SSL_CTX_load_verify_locations(t->ctx, o->ca, NULL) != 1)
		return ctx_fail(t, errmsg, errmsg_len, "CA", o->ca);
	if (o->crl != NULL && load_crl(t, o->crl) != 0)
		return ctx_fail(t, errmsg, errmsg_len, "CRL", o->crl);
	SSL_CTX_set_verify(
	    t->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
	*out = t;
	return 0;
}

void rpc_tls_free(struct rpc_tls *t)
{
	if (t == NULL)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

/* ---- Records out --------------------------------------------------------- */

static void tls_pump(struct rpc_stream *s);

void rpc_tls_why(SSL *ssl, const char *what, char *buf, size_t len)
{
	char why[200];
	long v = SSL_get_verify_result(ssl);

	ssl_errors(why, sizeof(why));
	if (v != X509_V_OK)
		snprintf(buf, len, "%s: %s (%s)", what,
			 X509_verify_cert_error_string(v), why);
	else
		snprintf(buf, len, "%s: %s", what, why);
}

static void conn_fail(struct rpc_stream *s, const char *what)
{
	struct rpc_tls_conn *c = s->tls;

	rpc_tls_why(c->ssl, what, c->error, sizeof(c->error));
	c->failed = true;
}

static void write_cb(uv_write_t *req, int status)
{
	struct rpc_stream *s = req->data;
	struct rpc_tls_conn *c = s->tls;
	bool app = c->app == APP_IN_BUSY;

	c->writing = false;
	c->busy_len = 0;
	/* As for plain writes (stream.c): one burst does not pin its buffer
	 * for the life of the connection. */
	if (c->busy_cap > TLS_KEEP_CAP) {
		free(c->busy);
		c->busy = NULL;
		c->busy_cap = 0;
	}
	if (app)
		c->app = APP_NONE;
	if (s->closing)
		return;
	if (status < 0) {
		if (app)
			rpc_stream__write_done(s, status);
		else
			s->cbs->on_write_error(s, settle_err_from_uv(status));
		return;
	}
	tls_pump(s);
	if (app)
		rpc_stream__write_done(s, 0);
}

/* Move what OpenSSL wrote into out, and start writing out if nothing is
 * being written. */
static void tls_pump(struct rpc_stream *s)
{
	struct rpc_tls_conn *c = s->tls;
	size_t pending;
	uv_buf_t b;
	int rv;

	while ((pending = BIO_ctrl_pending(c->wbio)) > 0) {
		if (c->out_cap - c->out_len < pending) {
			size_t cap = c->out_len + pending + 4096;
			uint8_t *p = realloc(c->out, cap);

			if (p == NULL) {
				s->cbs->on_write_error(s, SETTLE_ENOMEM);
				return;
			}
			c->out = p;
			c->out_cap = cap;
		}
		int n = BIO_read(c->wbio, c->out + c->out_len, (int)pending);
		if (n <= 0)
			break;
		c->out_len += (size_t)n;
	}
	if (c->writing || c->out_len == 0 || s->closing)
		return;
	uint8_t *p = c->busy;
	size_t cap = c->busy_cap;

	c->busy = c->out;
	c->busy_cap = c->out_cap;
	c->busy_len = c->out_len;
	c->out = p;
	c->out_cap = cap;
	c->out_len = 0;
	if (c->app == APP_IN_OUT)
		c->app = APP_IN_BUSY;
	c->writing = true;
	c->wreq.data = s;
	b = uv_buf_init((char *)c->busy, (unsigned)c->busy_len);
	rv = uv_write(&c->wreq, (uv_stream_t *)&s->tcp, &b, 1, write_cb);
	if (rv != 0) {
		c->writing = false;
		s->cbs->on_write_error(s, settle_err_from_uv(rv));
	}
}

/*
 * The certificate's subject common name into out (len bytes), "" unless
 * it has exactly one, of 1..64 printable UTF-8 bytes: this name decides
 * roles, quotas and who a participant serves, so "admin\0x", a second CN
 * or one cut short must not pass for "admin".
 */
static void peer_cn(X509 *peer, char *out, size_t len)
{
	X509_NAME *name = peer != NULL ? X509_get_subject_name(peer) : NULL;
	unsigned char *utf8 = NULL;
	int i, n;

	out[0] = '\0';
	if (name == NULL)
		return;
	i = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
	if (i < 0 || X509_NAME_get_index_by_NID(name, NID_commonName, i) >= 0)
		return;
	n = ASN1_STRING_to_UTF8(
	    &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
	if (n > 0 && n <= 64 && (size_t)n < len) {
		bool ok = true;

		for (int k = 0; k < n && ok; k++)
			ok = utf8[k] >= 0x20 && utf8[k] != 0x7f;
		if (ok) {
			memcpy(out, utf8, (size_t)n);
			out[n] = '\0';
		}
	}
	OPENSSL_free(utf8);
}

/* The certificate's SHA-256 fingerprint as lowercase hex into out[65]
 * ("" if it cannot be computed). */
static void peer_fingerprint(X509 *peer, char out[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int n = 0;

	out[0] = '\0';
	if (peer == NULL || X509_digest(peer, EVP_sha256(), md, &n) != 1 ||
	    n != 32)
		return;
	for (unsigned int i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* When peer's validity ends (unix time), 0 if it cannot be read. */
static time_t peer_end(X509 *peer)
{
	const ASN1_TIME *t = peer != NULL ? X509_get0_notAfter(peer) : NULL;
	struct tm tm;

	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return 0;
	return timegm(&tm);
}

/* The DNS, URI and e-mail subjectAltNames of peer into c->peer_sans:
 * printable ones that fit, at most RPC_PEER_SANS. */
static void peer_sans(X509 *peer, struct rpc_tls_conn *c)
{
	GENERAL_NAMES *names =
	    peer != NULL
		? X509_get_ext_d2i(peer, NID_subject_alt_name, NULL, NULL)
		: NULL;
	size_t at = 0;

	c->n_sans = 0;
	for (int i = 0;
	     i < sk_GENERAL_NAME_num(names) && c->n_sans < RPC_PEER_SANS; i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		const ASN1_IA5STRING *v;
		const unsigned char *p;
		int len;
		bool ok = true;

		if (g->type == GEN_DNS)
			v = g->d.dNSName;
		else if (g->type == GEN_URI)
			v = g->d.uniformResourceIdentifier;
		else if (g->type == GEN_EMAIL)
			v = g->d.rfc822Name;
		else
			continue;
		p = ASN1_STRING_get0_data(v);
		len = ASN1_STRING_length(v);
		if (len <= 0 || (size_t)len + 1 > sizeof c->peer_sans - at)
			continue;
		for (int k = 0; k < len && ok; k++)
			ok = p[k] > 0x20 && p[k] < 0x7f;
		if (!ok)
			continue;
		memcpy(c->peer_sans + at, p, (size_t)len);
		c->peer_sans[at + (size_t)len] = '\0';
		at += (size_t)len + 1;
		c->n_sans++;
	}
	GENERAL_NAMES_free(names);
}

/* The owner's bytes through SSL_write (a memory BIO takes all of them). */
static int encrypt(struct rpc_stream *s, const uint8_t *buf, size_t len)
{
	struct rpc_tls_conn *c = s->tls;

	while (len > 0) {
		int chunk = len > (1u << 30) ? 1 << 30 : (int)len;
		int n;

		ERR_clear_error();
		n = SSL_write(c->ssl, buf, chunk);

		if (n <= 0) {
			conn_fail(s, "write");
			return SETTLE_EIO;
		}
		buf += n;
		len -= (size_t)n;
	}
	c->app = APP_IN_OUT;
	tls_pump(s);
	return 0;
}

/* ---- Records in ---------------------------------------------------------- */

/* The handshake went on with what arrived: 0 while it goes on or when it
 * is done, -1 when it failed (reported). */
static int handshake(struct rpc_stream *s)
{
	struct rpc_tls_conn *c = s->tls;
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);

	if (r == 1) {
		X509 *peer = SSL_get0_peer_certificate(c->ssl);

		c->done = true;
		peer_cn(peer, c->peer_name, sizeof(c->peer_name));
		peer_fingerprint(peer, c->peer_fp);
		peer_sans(peer, c);
		c->peer_not_after = peer_end(peer);
		tls_pump(s);
		if (c->app == APP_WAITING)
			return encrypt(s, s->busy, s->busy_len) == 0 ? 0 : -1;
		return 0;
	}
	r = SSL_get_error(c->ssl, r);
	if (r == SSL_ERROR_WANT_READ || r == SSL_ERROR_WANT_WRITE) {
		tls_pump(s);
		return 0;
	}
	conn_fail(s, "handshake");
	tls_pump(s); /* the alert, for the peer's log */
	return -1;
}

static void tls_read_cb(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
	struct rpc_stream *s = h->data;
	struct rpc_tls_conn *c = s->tls;
	int r = 0;

	if (c->failed || rpc_stream__read_end(s, n))
		return;
	if (BIO_write(c->rbio, buf->base, (int)n) != (int)n) {
		s->cbs->on_read(s, NULL, 0, SETTLE_ENOMEM);
		return;
	}
	if (!c->done) {
		if (handshake(s) != 0) {
			s->reading = false;
			uv_read_stop(h);
			s->cbs->on_read(s, NULL, 0, SETTLE_ETLS);
			return;
		}
		if (!c->done)
			return;
	}
	ERR_clear_error();
	while (!s->closing && (r = SSL_read(c->ssl, plain, sizeof(plain))) > 0)
		s->cbs->on_read(s, plain, (size_t)r, 0);
	if (s->closing)
		return;
	r = SSL_get_error(c->ssl, r);
	if (r == SSL_ERROR_WANT_READ) {
		tls_pump(s);
		return;
	}
	s->reading = false;
	uv_read_stop(h);
	if (r == SSL_ERROR_ZERO_RETURN) {
		s->cbs->on_read(s, NULL, 0, SETTLE_ECLOSED);
		return;
	}
	conn_fail(s, "read");
	s->cbs->on_read(s, NULL, 0, SETTLE_ETLS);
}

/* ---- Transport ----------------------------------------------------------- */

static int tls_read_start(struct rpc_stream *s)
{
	struct rpc_tls_conn *c = s->tls;
	int rv = settle_err_from_uv(uv_read_start(
	    (uv_stream_t *)&s->tcp, rpc_stream__alloc_cb, tls_read_cb));

	if (rv == 0 && !c->server && !c->started) {
		c->started = true;
		if (handshake(s) != 0)
			return SETTLE_ETLS;
	}
	return rv;
}

static int tls_read_stop(struct rpc_stream *s)
{
	return settle_err_from_uv(uv_read_stop((uv_stream_t *)&s->tcp));
}

static int tls_write(struct rpc_stream *s, const uint8_t *buf, size_t len)
{
	struct rpc_tls_conn *c = s->tls;

	if (c->failed)
		return SETTLE_ETLS;
	if (!c->done) {
		/* stream.c keeps buf (its busy buffer) until write_done. */
		c->app = APP_WAITING;
		return 0;
	}
	return encrypt(s, buf, len);
}

static void tls_close_cb(uv_handle_t *h)
{
	struct rpc_stream *s = h->data;
	struct rpc_tls_conn *c = s->tls;

	SSL_free(c->ssl);
	free(c->out);
	free(c->busy);
	free(c);
	s->tls = NULL;
	rpc_stream__closed(s);
}

static void tls_close(struct rpc_stream *s)
{
	uv_close((uv_handle_t *)&s->tcp, tls_close_cb);
}

static const struct rpc_stream_ops tls_ops = {
    .read_start = tls_read_start,
    .read_stop = tls_read_stop,
    .write = tls_write,
    .try_write = NULL,
    .close = tls_close,
};

/* The client checks that the server's certificate names host. */
static int expect_host(SSL *ssl, const char *host)
{
	unsigned char addr[16];

	if (inet_pton(AF_INET, host, addr) == 1 ||
	    inet_pton(AF_INET6, host, addr) == 1)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
						     host) == 1
			   ? 0
			   : -1;
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	return SSL_set1_host(ssl, host) == 1 ? 0 : -1;
}

SSL *rpc_tls_client_ssl(struct rpc_tls *t, const char *host)
{
	SSL *ssl;

	if (t == NULL || t->server || host == NULL)
		return NULL;
	ssl = SSL_new(t->ctx);
	if (ssl == NULL)
		return NULL;
	SSL_set_connect_state(ssl);
	/* A write that waited for the socket is retried from wherever the
	 * caller's buffer is. */
	SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (expect_host(ssl, host) != 0) {
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

int rpc_stream_tls_init(uv_loop_t *loop, struct rpc_stream *s,
			const struct rpc_stream_cbs *cbs, void *data,
			struct rpc_tls *t, const char *host)
{
	struct rpc_tls_conn *c = calloc(1, sizeof(*c));
	int rv;

	if (c == NULL)
		return SETTLE_ENOMEM;
	c->server = t->server;
	c->ssl = SSL_new(t->ctx);
	c->rbio = BIO_new(BIO_s_mem());
	c->wbio = BIO_new(BIO_s_mem());
	if (c->ssl == NULL || c->rbio == NULL || c->wbio == NULL)
		goto err;
	SSL_set_bio(c->ssl, c->rbio, c->wbio);
	if (t->server)
		SSL_set_accept_state(c->ssl);
	else {
		SSL_set_connect_state(c->ssl);
		if (host == NULL || expect_host(c->ssl, host) != 0)
			goto err_ssl;
	}
	rv = rpc_stream_tcp_init(loop, s, cbs, data);
	if (rv != 0) {
		SSL_free(c->ssl);
		free(c);
		return rv;
	}
	s->ops = &tls_ops;
	s->tls = c;
	return 0;

err:
	BIO_free(c->rbio);
	BIO_free(c->wbio);
	SSL_free(c->ssl);
	free(c);
	return SETTLE_ENOMEM;
err_ssl:
	SSL_free(c->ssl); /* and the BIOs it owns */
	free(c);
	return SETTLE_EINVAL;
}

bool rpc_stream_tls_done(const struct rpc_stream *s)
{
	return s->tls == NULL || s->tls->done;
}

const char *rpc_stream_tls_error(const struct rpc_stream *s)
{
	return s->tls != NULL ? s->tls->error : "";
}

const char *rpc_stream_peer_name(const struct rpc_stream *s)
{
	return s->tls != NULL && s->tls->done ? s->tls->peer_name : "";
}

void rpc_stream_peer_id(const struct rpc_stream *s, struct rpc_peer_id *out)
{
	const struct rpc_tls_conn *c = s->tls;
	const char *p;

	memset(out, 0, sizeof(*out));
	out->name = out->fingerprint = "";
	if (c == NULL || !c->done)
		return;
	out->name = c->peer_name;
	out->fingerprint = c->peer_fp;
	p = c->peer_sans;
	for (size_t i = 0; i < c->n_sans; i++) {
		out->san[out->n_san++] = p;
		p += strlen(p) + 1;
	}
}

bool rpc_stream_tls_still_valid(const struct rpc_stream *s, struct rpc_tls *t,
				char *why, size_t len)
{
	const struct rpc_tls_conn *c = s->tls;
	X509_STORE_CTX *vc;
	X509 *peer;
	bool ok;

	if (c == NULL || !c->done || t == NULL)
		return true;
	peer = SSL_get0_peer_certificate(c->ssl);
	vc = X509_STORE_CTX_new();
	if (peer == NULL || vc == NULL ||
	    X509_STORE_CTX_init(vc, SSL_CTX_get_cert_store(t->ctx), peer,
				SSL_get_peer_cert_chain(c->ssl)) != 1) {
		/* Cannot tell: the connection was verified once; keep it. */
		X509_STORE_CTX_free(vc);
		ERR_clear_error();
		return true;
	}
	/* The checks of the handshake: a server verifies a client's
	 * certificate for client use, a client a server's for server use. */
	X509_STORE_CTX_set_purpose(vc, c->server ? X509_PURPOSE_SSL_CLIENT
						 : X509_PURPOSE_SSL_SERVER);
	ok = X509_verify_cert(vc) == 1;
	if (!ok)
		snprintf(why, len, "%s",
			 X509_verify_cert_error_string(
			     X509_STORE_CTX_get_error(vc)));
	X509_STORE_CTX_free(vc);
	ERR_clear_error();
	return ok;
}

bool rpc_stream_tls_expired(const struct rpc_stream *s, time_t now)
{
	const struct rpc_tls_conn *c = s->tls;

	return c != NULL && c->done && c->peer_not_after != 0 &&
	       now >= c->peer_not_after;
}

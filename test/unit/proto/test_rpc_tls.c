/*
 * test_rpc_tls.c — the RPC server and client over mutual TLS (proto/tls.h),
 * with certificates made for each test by openssl(1): a CA, a server
 * certificate for 127.0.0.1, client certificates signed by it, by another
 * CA, and one expired.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "error.h"
#include "rawpeer.h"
#include "rpc.h"
#include "tls.h"

static char dir[64];

/* Certificates in dir: ca, other (another CA), server (CN node1, IP
 * 127.0.0.1), wrongip (IP 127.0.0.9), client (CN alice), stranger (signed
 * by other), expired (CN old). */
static void make_certs(void)
{
	static const char script[] =
	    "set -e; cd \"$1\"\n"
	    "key() { openssl genpkey -algorithm EC -pkeyopt "
	    "ec_paramgen_curve:P-256 -out $1.key 2>/dev/null; }\n"
	    "ca() { key $1; openssl req -x509 -key $1.key -out $1.pem "
	    "-days 2 -subj /CN=$1 2>/dev/null; }\n"
	    "cert() { key $1; openssl req -new -key $1.key -out $1.csr "
	    "-subj /CN=$2 2>/dev/null; printf '%b\\n' \"$4\" > $1.ext;\n"
	    "  openssl x509 -req -in $1.csr -CA $3.pem -CAkey $3.key "
	    "-CAcreateserial -out $1.pem -days $5 -extfile $1.ext "
	    "2>/dev/null; }\n"
	    "ca ca; ca other\n"
	    "cert server node1 ca subjectAltName=IP:127.0.0.1 2\n"
	    "cert wrongip node9 ca subjectAltName=IP:127.0.0.9 2\n"
	    "cert client alice ca 'extendedKeyUsage=clientAuth\\n"
	    "subjectAltName=DNS:alice.example,URI:spiffe://bank/alice,"
	    "IP:10.1.1.1' 2\n"
	    "cert stranger mallory other extendedKeyUsage=clientAuth 2\n"
	    "cert expired old ca extendedKeyUsage=clientAuth -1\n";
	char cmd[sizeof(script) + 128];
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/settle-tls-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(cmd, sizeof(cmd), "%s/make.sh", dir);
	f = fopen(cmd, "w");
	cr_assert_not_null(f);
	fputs(script, f);
	fclose(f);
	snprintf(cmd, sizeof(cmd), "sh %s/make.sh %s", dir, dir);
	cr_assert_eq(system(cmd), 0, "openssl could not make the certificates");
}

static void remove_certs(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

static struct rpc_tls *tls_of(const char *name, bool server, const char *ca)
{
	char cert[128], key[128], cafile[128], err[512];
	struct rpc_tls_opts o = {.server = server};
	struct rpc_tls *t = NULL;

	snprintf(cert, sizeof(cert), "%s/%s.pem", dir, name);
	snprintf(key, sizeof(key), "%s/%s.key", dir, name);
	snprintf(cafile, sizeof(cafile), "%s/%s.pem", dir, ca);
	o.cert = cert;
	o.key = key;
	o.ca = cafile;
	cr_assert_eq(rpc_tls_new(&o, &t, err, sizeof(err)), 0, "%s", err);
	return t;
}

/* ---- A server that echoes BEGIN and says who called ------------------- */

struct fixture {
	uv_loop_t loop;
	struct rpc_server *srv;
	struct rpc_tls *srv_tls;
	char endpoint[64];
	char caller[128]; /* the last BEGIN's certificate name */
	char caller_fp[65];
	char caller_san[2][64];
	size_t caller_n_san;
	int calls;
	bool closed;
};

static void handler(void *data, struct rpc_call *call)
{
	struct fixture *fx = data;
	const uint8_t *body;
	size_t len;
	Settle__V1__BeginRequest *req;

	body = rpc_call_body(call, &len);
	req = settle__v1__begin_request__unpack(NULL, len, body);
	cr_assert_not_null(req);
	snprintf(fx->caller, sizeof(fx->caller), "%s",
		 rpc_call_peer_name(call));
	struct rpc_peer_id id;

	rpc_call_peer_id(call, &id);
	snprintf(fx->caller_fp, sizeof(fx->caller_fp), "%s", id.fingerprint);
	fx->caller_n_san = id.n_san;
	for (size_t i = 0; i < id.n_san && i < 2; i++)
		snprintf(fx->caller_san[i], sizeof(fx->caller_san[i]), "%s",
			 id.san[i]);
	fx->calls++;
	rpc_call_reply(call, &req->base);
	settle__v1__begin_request__free_unpacked(req, NULL);
}

static void setup_opts(struct fixture *fx, const char *server_cert,
		       uint32_t frame_timeout_ms)
{
	struct rpc_opts opts = {.frame_timeout_ms = frame_timeout_ms};
	char err[256];

	memset(fx, 0, sizeof(*fx));
	make_certs();
	cr_assert_eq(uv_loop_init(&fx->loop), 0);
	if (server_cert != NULL) {
		fx->srv_tls = tls_of(server_cert, true, "ca");
		opts.tls = fx->srv_tls;
	}
	cr_assert_eq(rpc_server_start(&fx->loop, "127.0.0.1:0", &opts, handler,
				      fx, &fx->srv, err, sizeof(err)),
		     0, "%s", err);
	snprintf(fx->endpoint, sizeof(fx->endpoint), "127.0.0.1:%d",
		 rpc_server_port(fx->srv));
}

static void setup(struct fixture *fx, const char *server_cert)
{
	setup_opts(fx, server_cert, 0);
}

static void server_closed(void *data)
{
	((struct fixture *)data)->closed = true;
}

static void teardown(struct fixture *fx)
{
	rpc_server_close(fx->srv, server_closed, fx);
	cr_assert(run_until(&fx->loop, &fx->closed, 2000));
	loop_finish(&fx->loop);
	rpc_tls_free(fx->srv_tls);
	remove_certs();
}

/* ---- Calls ------------------------------------------------------------ */

struct outcome {
	bool done;
	int err;
	char msg[512];
	size_t payload;
};

static void on_reply(void *data, const struct rpc_result *res)
{
	struct outcome *o = data;

	o->done = true;
	o->err = res->err;
	snprintf(o->msg, sizeof(o->msg), "%s",
		 res->msg != NULL ? res->msg : "");
	if (res->err == 0) {
		Settle__V1__BeginRequest *r = settle__v1__begin_request__unpack(
		    NULL, res->len, res->body);
		cr_assert_not_null(r);
		o->payload = r->gid != NULL ? strlen(r->gid) : 0;
		settle__v1__begin_request__free_unpacked(r, NULL);
	}
}

/* n BEGIN calls from a client with the given certificate (NULL: plain
 * TCP), each carrying a gid of size bytes; the outcomes in o. */
static void call(struct fixture *fx, const char *client_cert, int n,
		 size_t size, struct outcome *o)
{
	struct rpc_opts opts = {.max_frame = 8u << 20};
	struct rpc_tls *t = NULL;
	struct rpc_client *c;
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	char *gid = malloc(size + 1);
	bool all = false;

	cr_assert_not_null(gid);
	memset(gid, 'g', size);
	gid[size] = '\0';
	req.gid = gid;
	if (client_cert != NULL) {
		t = tls_of(client_cert, false, "ca");
		opts.tls = t;
	}
	cr_assert_eq(rpc_client_init(&fx->loop, fx->endpoint, &opts, &c), 0);
	for (int i = 0; i < n; i++) {
		memset(&o[i], 0, sizeof(o[i]));
		cr_assert_eq(rpc_client_call(c, SETTLE__V1__METHOD__BEGIN,
					     &req.base, 5000, on_reply, &o[i]),
			     0);
	}
	for (int waited = 0; !all && waited < 100; waited++) {
		run_until(&fx->loop, &o[n - 1].done, 50);
		all = true;
		for (int i = 0; i < n; i++)
			all = all && o[i].done;
	}
	cr_assert(all, "calls not answered");
	rpc_client_close(c);
	run_for(&fx->loop, 50);
	rpc_tls_free(t);
	free(gid);
}

Test(rpc_tls, calls_go_through_and_the_server_knows_the_caller)
{
	struct fixture fx;
	struct outcome o[200];

	setup(&fx, "server");
	call(&fx, "client", 200, 100, o);
	for (int i = 0; i < 200; i++)
		cr_assert_eq(o[i].err, 0, "call %d: %s", i, o[i].msg);
	cr_assert_eq(fx.calls, 200);
	cr_assert_str_eq(fx.caller, "alice");
	/* Its fingerprint, and the SANs roles may name (not its IP). */
	cr_assert_eq(strlen(fx.caller_fp), 64, "%s", fx.caller_fp);
	cr_assert_eq(strspn(fx.caller_fp, "0123456789abcdef"), 64);
	cr_assert_eq(fx.caller_n_san, 2);
	cr_assert_str_eq(fx.caller_san[0], "alice.example");
	cr_assert_str_eq(fx.caller_san[1], "spiffe://bank/alice");
	teardown(&fx);
}

Test(rpc_tls, large_frames_both_ways)
{
	struct fixture fx;
	struct outcome o[8];

	setup(&fx, "server");
	call(&fx, "client", 8, 3u << 20, o);
	for (int i = 0; i < 8; i++) {
		cr_assert_eq(o[i].err, 0, "call %d: %s", i, o[i].msg);
		cr_assert_eq(o[i].payload, 3u << 20);
	}
	teardown(&fx);
}

/* One call from client_cert (NULL: plain) to a server with server_cert
 * (NULL: plain): refused (with err when not 0, and a message holding
 * text when not NULL), and the server ran nothing. */
static void refused(const char *server_cert, const char *client_cert, int err,
		    const char *text)
{
	struct fixture fx;
	struct outcome o[1];

	setup(&fx, server_cert);
	call(&fx, client_cert, 1, 10, o);
	cr_assert_neq(o[0].err, 0, "a call went through");
	if (err != 0)
		cr_assert_eq(o[0].err, err, "%d %s", o[0].err, o[0].msg);
	if (text != NULL)
		cr_assert(strstr(o[0].msg, text) != NULL, "%s", o[0].msg);
	cr_assert_eq(fx.calls, 0, "the server ran a refused call");
	teardown(&fx);
}

Test(rpc_tls, a_certificate_of_another_ca_is_refused)
{
	refused("server", "stranger", SETTLE_ETLS, NULL);
}

Test(rpc_tls, an_expired_certificate_is_refused)
{
	refused("server", "expired", SETTLE_ETLS, NULL);
}

Test(rpc_tls, a_client_without_tls_is_refused)
{
	refused("server", NULL, 0, NULL);
}

Test(rpc_tls, the_client_checks_the_server_names_its_address)
{
	refused("wrongip", "client", SETTLE_ETLS, "mismatch");
}

Test(rpc_tls, a_tls_client_fails_against_a_plain_server)
{
	refused(NULL, "client", 0, NULL);
}

Test(rpc_tls, bad_files_are_named)
{
	char cert[128], key[128], err[512];
	struct rpc_tls_opts o = {.server = true};
	struct rpc_tls *t = NULL;

	make_certs();
	snprintf(cert, sizeof(cert), "%s/server.pem", dir);
	snprintf(key, sizeof(key), "%s/client.key", dir);
	o.cert = cert;
	o.key = key;
	o.ca = "/nonexistent/ca.pem";
	/* Another certificate's key. */
	cr_assert_eq(rpc_tls_new(&o, &t, err, sizeof(err)), SETTLE_EINVAL);
	cr_assert(strstr(err, key) != NULL, "%s", err);
	cr_assert(strstr(err, "mismatch") != NULL, "%s", err);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	cr_assert_eq(rpc_tls_new(&o, &t, err, sizeof(err)), SETTLE_EINVAL);
	cr_assert(strstr(err, "/nonexistent/ca.pem") != NULL, "%s", err);
	cr_assert_null(t);
	remove_certs();
}

/* A connection that never finishes its handshake is closed after the
 * frame timeout, as a slow sender is; one that finished it may then stay
 * idle. */
Test(rpc_tls, a_handshake_never_finished_is_cut_off)
{
	struct fixture fx;
	struct raw r;
	struct outcome o[2];
	struct rpc_opts opts = {.max_frame = 8u << 20};
	struct rpc_tls *t;
	struct rpc_client *c;
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;

	setup_opts(&fx, "server", 200);
	raw_connect(&fx.loop, &r, rpc_server_port(fx.srv));
	cr_assert(run_until(&fx.loop, &r.connected, 2000));
	raw_read_start(&r);
	cr_assert(run_until(&fx.loop, &r.ended, 3000),
		  "a connection with no handshake stayed open");
	raw_close(&r);

	t = tls_of("client", false, "ca");
	opts.tls = t;
	req.gid = "g";
	cr_assert_eq(rpc_client_init(&fx.loop, fx.endpoint, &opts, &c), 0);
	memset(o, 0, sizeof(o));
	cr_assert_eq(rpc_client_call(c, SETTLE__V1__METHOD__BEGIN, &req.base,
				     5000, on_reply, &o[0]),
		     0);
	cr_assert(run_until(&fx.loop, &o[0].done, 3000));
	cr_assert_eq(o[0].err, 0, "%s", o[0].msg);
	run_for(&fx.loop, 600); /* idle past the timeout, handshake done */
	cr_assert_eq(rpc_client_call(c, SETTLE__V1__METHOD__BEGIN, &req.base,
				     5000, on_reply, &o[1]),
		     0);
	cr_assert(run_until(&fx.loop, &o[1].done, 3000));
	cr_assert_eq(o[1].err, 0, "%s", o[1].msg);
	cr_assert_eq(fx.calls, 2);
	rpc_client_close(c);
	run_for(&fx.loop, 50);
	rpc_tls_free(t);
	teardown(&fx);
}

/* A client certificate "name" of the test CA valid for secs seconds from
 * now (openssl(1) here counts in days). */
static void short_cert(const char *name, long secs)
{
	char path[128];
	X509 *ca, *x = X509_new();
	EVP_PKEY *ca_key, *key = EVP_EC_gen("P-256");
	X509_NAME *subject;
	FILE *f;

	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	ca = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	ca_key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
	fclose(f);
	cr_assert(ca != NULL && ca_key != NULL && x != NULL && key != NULL);
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_gmtime_adj(X509_getm_notBefore(x), -60);
	X509_gmtime_adj(X509_getm_notAfter(x), secs);
	subject = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC,
				   (const unsigned char *)name, -1, -1, 0);
	X509_set_issuer_name(x, X509_get_subject_name(ca));
	X509_set_pubkey(x, key);
	cr_assert_gt(X509_sign(x, ca_key, EVP_sha256()), 0);
	snprintf(path, sizeof(path), "%s/%s.pem", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	PEM_write_X509(f, x);
	fclose(f);
	snprintf(path, sizeof(path), "%s/%s.key", dir, name);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	fclose(f);
	X509_free(x);
	X509_free(ca);
	EVP_PKEY_free(key);
	EVP_PKEY_free(ca_key);
}

/* One BEGIN over c: its outcome, waited for up to 5 s. */
static struct outcome one_call(struct fixture *fx, struct rpc_client *c)
{
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	struct outcome o = {0};

	req.gid = "g";
	cr_assert_eq(rpc_client_call(c, SETTLE__V1__METHOD__BEGIN, &req.base,
				     5000, on_reply, &o),
		     0);
	cr_assert(run_until(&fx->loop, &o.done, 6000), "no answer");
	return o;
}

/*
 * A client certificate valid for 3 s more: its calls are served, and once
 * it has expired the server's sweep closes the connection (no reload
 * needed), so the next call fails: reconnecting, the handshake refuses
 * the expired certificate.
 */
Test(rpc_tls, a_certificate_that_expires_while_connected_is_cut_off)
{
	struct rpc_opts opts = {0};
	struct fixture fx;
	struct rpc_client *c;
	struct outcome o;

	/* A frame timeout of 2 s sweeps the connections every 0.5 s. */
	setup_opts(&fx, "server", 2000);
	short_cert("brief", 3);
	opts.tls = tls_of("brief", false, "ca");
	cr_assert_eq(rpc_client_init(&fx.loop, fx.endpoint, &opts, &c), 0);
	o = one_call(&fx, c);
	cr_assert_eq(o.err, 0, "%s", o.msg);
	cr_assert_str_eq(fx.caller, "brief");
	run_for(&fx.loop, 4500);
	o = one_call(&fx, c);
	cr_assert_neq(o.err, 0, "an expired certificate was still served");
	rpc_client_close(c);
	run_for(&fx.loop, 50);
	rpc_tls_free(opts.tls);
	teardown(&fx);
}

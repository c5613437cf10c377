/*
 * coord_util.c — see coord_util.h.
 */
#include "coord_util.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define REPLY_TIMEOUT_S 15
#define FRAME_MAX	(8u * 1024u * 1024u)

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

void cu_setup(void)
{
	uint8_t r = 0;

	it_setup();
	cr_assert_eq(getrandom(&r, 1, 0), 1, "getrandom: %s", strerror(errno));
	for (int i = 0; i < 1 + r % 64; i++)
		it_free_port_pair();
}

static int try_connect(const struct sockaddr_in *sa)
{
	struct timeval tv = {REPLY_TIMEOUT_S, 0};
	int one = 1;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

void cu_connect(struct cu_conn *c, const char *endpoint, int timeout_ms)
{
	struct sockaddr_in sa;
	const char *colon = strrchr(endpoint, ':');
	char host[64];
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;

	memset(c, 0, sizeof(*c));
	c->fd = -1;
	c->next_id = 1;
	snprintf(c->endpoint, sizeof(c->endpoint), "%s", endpoint);
	cr_assert_not_null(colon, "endpoint %s has no port", endpoint);
	snprintf(host, sizeof(host), "%.*s", (int)(colon - endpoint), endpoint);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)atoi(colon + 1));
	cr_assert_eq(inet_pton(AF_INET, host, &sa.sin_addr), 1,
		     "endpoint %s is not numeric IPv4", endpoint);
	for (;;) {
		c->fd = try_connect(&sa);
		if (c->fd >= 0)
			return;
		cr_assert_lt(mono_ms(), end, "connect %s: %s", endpoint,
			     strerror(errno));
		sleep_ms(20);
	}
}

void cu_close(struct cu_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return SETTLE_ECLOSED;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int read_all(int fd, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = recv(fd, p, n, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return SETTLE_ECLOSED;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

/* One whole frame, decoded; NULL when the connection broke. */
static Settle__V1__Frame *read_frame(int fd)
{
	uint8_t hdr[4];
	uint8_t *buf;
	uint32_t n;
	Settle__V1__Frame *f;

	if (read_all(fd, hdr, sizeof(hdr)) != 0)
		return NULL;
	n = (uint32_t)hdr[0] << 24 | (uint32_t)hdr[1] << 16 |
	    (uint32_t)hdr[2] << 8 | hdr[3];
	cr_assert(n > 0 && n <= FRAME_MAX, "frame of %u bytes from the node",
		  n);
	buf = malloc(n);
	cr_assert_not_null(buf);
	if (read_all(fd, buf, n) != 0) {
		free(buf);
		return NULL;
	}
	f = settle__v1__frame__unpack(NULL, n, buf);
	free(buf);
	cr_assert_not_null(f, "the node sent a frame that does not decode");
	return f;
}

int cu_send_frame(struct cu_conn *c, uint64_t id, int method, bool response,
		  const void *body, size_t len)
{
	Settle__V1__Frame f = SETTLE__V1__FRAME__INIT;
	size_t n;
	uint8_t *buf;
	int rv;

	f.id = id;
	f.method = (Settle__V1__Method)method;
	f.response = response;
	f.body.data = (uint8_t *)body;
	f.body.len = len;
	n = settle__v1__frame__get_packed_size(&f);
	buf = malloc(n + 4);
	cr_assert_not_null(buf);
	buf[0] = (uint8_t)(n >> 24);
	buf[1] = (uint8_t)(n >> 16);
	buf[2] = (uint8_t)(n >> 8);
	buf[3] = (uint8_t)n;
	settle__v1__frame__pack(&f, buf + 4);
	rv = write_all(c->fd, buf, n + 4);
	free(buf);
	return rv;
}

int cu_recv(struct cu_conn *c, uint64_t id, struct cu_reply *r)
{
	Settle__V1__Frame *resp = read_frame(c->fd);

	memset(r, 0, sizeof(*r));
	if (resp == NULL)
		return SETTLE_ECLOSED;
	if (!resp->response || resp->id != id) {
		/* Not ours: one call at a time, so never expected. */
		settle__v1__frame__free_unpacked(resp, NULL);
		cr_assert_fail("unexpected frame from %s", c->endpoint);
	}
	if (resp->error != NULL) {
		r->code = (int)resp->error->code;
		snprintf(r->msg, sizeof(r->msg), "%s", resp->error->message);
		snprintf(r->leader, sizeof(r->leader), "%s",
			 resp->error->leader);
	}
	if (resp->body.len > 0) {
		r->body = malloc(resp->body.len);
		cr_assert_not_null(r->body);
		memcpy(r->body, resp->body.data, resp->body.len);
		r->len = resp->body.len;
	}
	settle__v1__frame__free_unpacked(resp, NULL);
	return 0;
}

int cu_call_raw(struct cu_conn *c, int method, const void *body, size_t len,
		struct cu_reply *r)
{
	uint64_t id = c->next_id++;
	int rv;

	memset(r, 0, sizeof(*r));
	rv = cu_send_frame(c, id, method, false, body, len);
	if (rv != 0)
		return rv;
	return cu_recv(c, id, r);
}

int cu_call(struct cu_conn *c, int method, const ProtobufCMessage *req,
	    struct cu_reply *r)
{
	uint8_t *buf = NULL;
	size_t n = 0;
	int rv;

	if (req != NULL) {
		n = protobuf_c_message_get_packed_size(req);
		buf = malloc(n > 0 ? n : 1);
		cr_assert_not_null(buf);
		protobuf_c_message_pack(req, buf);
	}
	rv = cu_call_raw(c, method, buf, n, r);
	free(buf);
	return rv;
}

void cu_reply_free(struct cu_reply *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

void *cu_unpack(const struct cu_reply *r,
		const ProtobufCMessageDescriptor *desc)
{
	ProtobufCMessage *m;

	cr_assert_eq(r->code, 0, "expected OK, got code %d: %s", r->code,
		     r->msg);
	m = protobuf_c_message_unpack(desc, NULL, r->len, r->body);
	cr_assert_not_null(m, "response body is not a %s", desc->name);
	return m;
}

void cu_cmd_id(uint8_t id[16])
{
	cr_assert_eq(settle_cmd_id(id), 0);
}

static int call_ok(struct cu_conn *c, int method, const ProtobufCMessage *req,
		   struct cu_reply *r)
{
	int rv = cu_call(c, method, req, r);

	cr_assert_eq(rv, 0, "%s: connection lost", c->endpoint);
	return r->code;
}

int cu_begin(struct cu_conn *c, const uint8_t id[16], const char *gid,
	     uint32_t timeout_ms, char *gid_out, uint64_t *deadline_ms)
{
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	Settle__V1__BeginResponse *resp;
	struct cu_reply r;
	int code;

	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)(gid != NULL ? gid : "");
	req.timeout_ms = timeout_ms;
	code = call_ok(c, SETTLE__V1__METHOD__BEGIN, &req.base, &r);
	if (code == 0) {
		resp = cu_unpack(&r, &settle__v1__begin_response__descriptor);
		if (gid_out != NULL)
			snprintf(gid_out, SETTLE_GID_BUFSIZE, "%s", resp->gid);
		if (deadline_ms != NULL)
			*deadline_ms = resp->deadline_ms;
		settle__v1__begin_response__free_unpacked(resp, NULL);
	}
	cu_reply_free(&r);
	return code;
}

int cu_register(struct cu_conn *c, const uint8_t id[16], const char *gid,
		const char *endpoint, const void *payload, size_t len,
		uint32_t *branch_id)
{
	Settle__V1__RegisterBranchRequest req =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	Settle__V1__RegisterBranchResponse *resp;
	struct cu_reply r;
	int code;

	req.cmd_id.data = (uint8_t *)id;
	req.cmd_id.len = 16;
	req.gid = (char *)gid;
	req.endpoint = (char *)endpoint;
	req.resource = "accounts";
	req.payload.data = (uint8_t *)payload;
	req.payload.len = len;
	code = call_ok(c, SETTLE__V1__METHOD__REGISTER_BRANCH, &req.base, &r);
	if (code == 0) {
		resp = cu_unpack(
		    &r, &settle__v1__register_branch_response__descriptor);
		if (branch_id != NULL)
			*branch_id = resp->branch_id;
		settle__v1__register_branch_response__free_unpacked(resp, NULL);
	}
	cu_reply_free(&r);
	return code;
}

int cu_decide(struct cu_conn *c, bool commit, const uint8_t id[16],
	      const char *gid, bool wait, uint32_t wait_ms, int *state,
	      bool *finished)
{
	Settle__V1__CommitRequest creq = SETTLE__V1__COMMIT_REQUEST__INIT;
	Settle__V1__RollbackRequest rreq = SETTLE__V1__ROLLBACK_REQUEST__INIT;
	Settle__V1__DecisionResponse *resp;
	struct cu_reply r;
	int code;

	if (commit) {
		creq.cmd_id.data = (uint8_t *)id;
		creq.cmd_id.len = 16;
		creq.gid = (char *)gid;
		creq.wait = wait;
		creq.wait_ms = wait_ms;
		code = call_ok(c, SETTLE__V1__METHOD__COMMIT, &creq.base, &r);
	} else {
		rreq.cmd_id.data = (uint8_t *)id;
		rreq.cmd_id.len = 16;
		rreq.gid = (char *)gid;
		rreq.wait = wait;
		rreq.wait_ms = wait_ms;
		rreq.reason = "test";
		code = call_ok(c, SETTLE__V1__METHOD__ROLLBACK, &rreq.base, &r);
	}
	if (code == 0) {
		resp =
		    cu_unpack(&r, &settle__v1__decision_response__descriptor);
		if (state != NULL)
			*state = (int)resp->state;
		if (finished != NULL)
			*finished = resp->finished;
		settle__v1__decision_response__free_unpacked(resp, NULL);
	}
	cu_reply_free(&r);
	return code;
}

int cu_query(struct cu_conn *c, const char *gid, Settle__V1__TxInfo **tx)
{
	Settle__V1__QueryRequest req = SETTLE__V1__QUERY_REQUEST__INIT;
	Settle__V1__QueryResponse *resp;
	struct cu_reply r;
	int code;

	req.gid = (char *)gid;
	req.history = true;
	code = call_ok(c, SETTLE__V1__METHOD__QUERY, &req.base, &r);
	if (code == 0) {
		resp = cu_unpack(&r, &settle__v1__query_response__descriptor);
		cr_assert_not_null(resp->tx, "query %s: no tx in answer", gid);
		*tx = resp->tx;
		resp->tx = NULL;
		settle__v1__query_response__free_unpacked(resp, NULL);
	}
	cu_reply_free(&r);
	return code;
}

Settle__V1__StatusResponse *cu_status(struct cu_conn *c)
{
	struct cu_reply r;
	Settle__V1__StatusResponse *s;

	cr_assert_eq(call_ok(c, SETTLE__V1__METHOD__STATUS, NULL, &r), 0,
		     "status: %s", r.msg);
	s = cu_unpack(&r, &settle__v1__status_response__descriptor);
	cu_reply_free(&r);
	return s;
}

size_t cu_events(const Settle__V1__TxInfo *tx, const char *kind)
{
	size_t n = 0;

	for (size_t i = 0; i < tx->n_history; i++)
		if (strcmp(tx->history[i]->kind, kind) == 0)
			n++;
	return n;
}

bool cu_log_has(const char *path, const char *text)
{
	char line[2048];
	bool found = false;
	FILE *f = fopen(path, "r");

	if (f == NULL)
		return false;
	while (!found && fgets(line, sizeof(line), f) != NULL)
		found = strstr(line, text) != NULL;
	fclose(f);
	return found;
}

bool cu_wait_log(const char *path, const char *text, int timeout_ms)
{
	for (int waited = 0;; waited += 100) {
		if (cu_log_has(path, text))
			return true;
		if (waited >= timeout_ms)
			return false;
		sleep_ms(100);
	}
}

bool cu_log_has_sanitizer_report(const char *path, char *first, size_t len)
{
	static const char *const marks[] = {
	    "ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
	    "runtime error:", "SUMMARY: ", NULL};
	char line[1024];
	FILE *f = fopen(path, "r");
	bool found = false;

	cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
	while (!found && fgets(line, sizeof(line), f) != NULL) {
		for (int i = 0; marks[i] != NULL; i++) {
			if (strstr(line, marks[i]) != NULL) {
				found = true;
				if (first != NULL)
					snprintf(first, len, "%s", line);
				break;
			}
		}
	}
	fclose(f);
	return found;
}

void cu_stop_clean(struct it_node *n)
{
	char report[1024];

	it_stop(n->proc);
	if (cu_log_has_sanitizer_report(n->proc->log, report, sizeof(report))) {
		it_show_log(n->proc);
		cr_assert_fail("sanitizer report: %s", report);
	}
}

int cu_dial(const struct it_node *n)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)n->port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0, "socket: %s", strerror(errno));
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0,
		     "connect: %s", strerror(errno));
	return fd;
}

/* Whether the node has closed fd (EOF or reset) within ms. */
bool cu_closed_within(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	char b;

	if (poll(&p, 1, ms) <= 0)
		return false;
	return recv(fd, &b, 1, MSG_DONTWAIT) <= 0;
}

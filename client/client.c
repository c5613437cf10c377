/*
 * client.c — the blocking initiator client: leader discovery, retries with
 * one cmd_id per logical call, and the typed initiator calls. Sagas, waiting
 * and the operator verbs are in saga.c; what it shares with the
 * asynchronous client (ids, endpoint lists, requests and their checks) in
 * request.c.
 */
#include "error.h"

#include "settle.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "client_int.h"
#include "conn.h"
#include "tls.h"
#include "log.h"

/* Participants (or nodes) settle_client_call_at() keeps a connection to. */
#define CLIENT_AT_CONNS 8

struct settle_client {
	char *eps_buf;
	const char *eps[CLIENT_MAX_ENDPOINTS];
	size_t n_eps;
	size_t cur; /* endpoint tried when there is no hint */
	char hint[CLIENT_ENDPOINT_MAX]; /* leader named by the last NOT_LEADER,
					   "" none */
	struct settle_client_opts opts;
	struct client_conn conn;
	/* settle_client_call_at()'s connections, kept for the next call to
	 * the same endpoint (an initiator's TRY calls go to a few
	 * participants, over and over); the least recently used goes. */
	struct client_conn at[CLIENT_AT_CONNS];
	uint64_t at_used[CLIENT_AT_CONNS];
	uint64_t at_clock;
	struct rpc_tls *tls; /* settle_client_set_tls(); NULL: plaintext */
	char errmsg[512];
};

int settle_client_open(const char *endpoints,
		       const struct settle_client_opts *opts,
		       settle_client **out)
{
	struct settle_client *c;
	int rv;

	if (endpoints == NULL || out == NULL)
		return SETTLE_EINVAL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return SETTLE_ENOMEM;
	rv = client__endpoints(endpoints, &c->eps_buf, c->eps,
			       CLIENT_MAX_ENDPOINTS, &c->n_eps);
	if (rv != 0) {
		free(c);
		return rv;
	}
	if (opts != NULL)
		c->opts = *opts;
	client__opts_defaults(&c->opts);
	client_conn_init(&c->conn, c->opts.max_frame);
	for (size_t i = 0; i < CLIENT_AT_CONNS; i++)
		client_conn_init(&c->at[i], c->opts.max_frame);
	*out = c;
	return 0;
}

void settle_client_close(settle_client *c)
{
	if (c == NULL)
		return;
	client_conn_close(&c->conn);
	rpc_decoder_close(&c->conn.dec);
	for (size_t i = 0; i < CLIENT_AT_CONNS; i++) {
		client_conn_close(&c->at[i]);
		rpc_decoder_close(&c->at[i].dec);
	}
	free(c->eps_buf);
	rpc_tls_free(c->tls);
	free(c);
}

int settle_client_set_tls(settle_client *c, const struct settle_tls *tls)
{
	int rv;

	if (c == NULL || tls == NULL)
		return SETTLE_EINVAL;
	rv = client__tls_set(&c->tls, tls, false, c->errmsg, sizeof(c->errmsg));
	if (rv != 0)
		return rv;
	/* Connections open now were made without it. */
	client_conn_close(&c->conn);
	c->conn.tls = c->tls;
	for (size_t i = 0; i < CLIENT_AT_CONNS; i++) {
		client_conn_close(&c->at[i]);
		c->at[i].tls = c->tls;
	}
	return 0;
}

void client__errf(settle_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
}

const char *settle_client_errmsg(const settle_client *c)
{
	return c != NULL ? c->errmsg : "";
}

const char *settle_client_endpoint(const settle_client *c)
{
	return c->conn.endpoint;
}

void client__sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

/*
 * One attempt on conn (connected to endpoint or not yet). Fills errmsg and
 * leader (the NOT_LEADER hint) on failure.
 */
static int attempt(struct client_conn *conn, const char *endpoint,
		   const struct settle_client_opts *o, int method,
		   const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *resp_desc,
		   ProtobufCMessage **resp, uint32_t extra_ms, char *errmsg,
		   size_t errlen, char *leader, size_t leaderlen)
{
	const char *op = client__method_name(method);
	Settle__V1__Frame *f;
	char detail[300];
	int rv;

	leader[0] = '\0';
	if (conn->fd < 0 || strcmp(conn->endpoint, endpoint) != 0) {
		uint64_t cdl = settle_mono_ms() + o->connect_timeout_ms;
		rv = client_conn_open(conn, endpoint, cdl, detail,
				      sizeof(detail));
		if (rv != 0) {
			snprintf(errmsg, errlen, "%s: %s", op, detail);
			return rv;
		}
	}
	uint64_t deadline = settle_mono_ms() + o->call_timeout_ms + extra_ms;
	rv = client_conn_call(conn, method, req, deadline, &f);
	if (rv != 0) {
		snprintf(errmsg, errlen, "%s: %s: %s", op, endpoint,
			 settle_strerror(rv));
		return rv;
	}
	if (f->error != NULL && f->error->code != 0) {
		int code = (int)f->error->code;
		rv = settle_err_from_wire(code);
		snprintf(errmsg, errlen, "%s: %s: %s", op,
			 client__code_name(code),
			 f->error->message != NULL && f->error->message[0]
			     ? f->error->message
			     : settle_strerror(rv));
		if (f->error->leader != NULL)
			snprintf(leader, leaderlen, "%s", f->error->leader);
		settle__v1__frame__free_unpacked(f, NULL);
		return rv;
	}
	if (resp_desc != NULL && resp != NULL) {
		*resp = protobuf_c_message_unpack(resp_desc, NULL, f->body.len,
						  f->body.data);
		if (*resp == NULL) {
			snprintf(errmsg, errlen,
				 "%s: %s: undecodable %s response", op,
				 endpoint, resp_desc->name);
			settle__v1__frame__free_unpacked(f, NULL);
			return SETTLE_EPROTO;
		}
	}
	settle__v1__frame__free_unpacked(f, NULL);
	errmsg[0] = '\0';
	return 0;
}

int client__call(settle_client *c, int method, const ProtobufCMessage *req,
		 const ProtobufCMessageDescriptor *resp_desc,
		 ProtobufCMessage **resp, uint32_t extra_ms)
{
	uint64_t budget_end;
	uint32_t backoff = 10;
	unsigned follows = 0;
	unsigned attempts = 0;
	char leader[256];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	if (resp != NULL)
		*resp = NULL;
	budget_end = settle_mono_ms() + c->opts.retry_budget_ms + extra_ms;
	for (;;) {
		const char *target =
		    c->hint[0] != '\0' ? c->hint : c->eps[c->cur];
		char target_copy[256];
		snprintf(target_copy, sizeof(target_copy), "%s", target);
		attempts++;
		rv = attempt(&c->conn, target_copy, &c->opts, method, req,
			     resp_desc, resp, extra_ms, c->errmsg,
			     sizeof(c->errmsg), leader, sizeof(leader));
		if (rv == 0) {
			/* Remember whom to ask first next time. */
			snprintf(c->hint, sizeof(c->hint), "%s", target_copy);
			return 0;
		}
		if (!client__transient(rv))
			return rv;
		settle_tracef("client", "%s attempt %u on %s: %s",
			      client__method_name(method), attempts,
			      target_copy, settle_errname(rv));
		if (rv == SETTLE_ENOTLEADER && leader[0] != '\0' &&
		    strcmp(leader, target_copy) != 0 &&
		    follows < CLIENT_MAX_FOLLOWS) {
			/* A fresh hint: go there at once. */
			follows++;
			snprintf(c->hint, sizeof(c->hint), "%s", leader);
			continue;
		}
		follows = 0;
		/* A failed remembered leader sends us back to the list, at the
		 * node that last answered; otherwise move down the list. */
		if (c->hint[0] != '\0')
			c->hint[0] = '\0';
		else
			c->cur = (c->cur + 1) % c->n_eps;
		if (rv == SETTLE_ENOTLEADER && leader[0] != '\0')
			snprintf(c->hint, sizeof(c->hint), "%s", leader);
		uint64_t now = settle_mono_ms();
		if (now + backoff >= budget_end) {
			size_t n = strlen(c->errmsg);
			snprintf(c->errmsg + n, sizeof(c->errmsg) - n,
				 " (gave up after %u attempts)", attempts);
			return rv;
		}
		/* Jitter keeps many clients from retrying in lockstep. */
		uint32_t jitter = 0;
		if (getrandom(&jitter, sizeof(jitter), GRND_NONBLOCK) < 0)
			jitter = 0;
		client__sleep_ms(backoff / 2 + jitter % (backoff / 2 + 1));
		backoff = backoff * 2 > c->opts.backoff_max_ms
			      ? c->opts.backoff_max_ms
			      : backoff * 2;
	}
}

int settle_client_call(settle_client *c, int method,
		       const ProtobufCMessage *req,
		       const ProtobufCMessageDescriptor *resp_desc,
		       ProtobufCMessage **resp)
{
	return client__call(c, method, req, resp_desc, resp, 0);
}

/* Whether the peer closed conn while it sat unused (it then reads EOF or
 * an error): a call must not be lost on a connection already dead. Bytes
 * waiting are late answers to timed-out calls, skipped by the next call. */
static bool conn_alive(const struct client_conn *conn)
{
	char b;
	ssize_t n = recv(conn->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);

	return n > 0 || (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
}

int client__send(settle_client *c, int method, const ProtobufCMessage *req)
{
	struct client_conn *conn = &c->conn;
	int rv;

	/* Only where the last call was answered, on its connection, still
	 * open: else nobody would hear of a lost request. */
	if (c->hint[0] == '\0' || conn->fd < 0 ||
	    strcmp(conn->endpoint, c->hint) != 0)
		return 1;
	if (!conn_alive(conn)) {
		client_conn_close(conn);
		return 1;
	}
	rv = client_conn_send(conn, method, req,
			      settle_mono_ms() + c->opts.call_timeout_ms);
	if (rv != 0)
		client__errf(c, "%s: %s: %s", client__method_name(method),
			     c->hint, settle_strerror(rv));
	return rv;
}

/* The kept connection to endpoint (open and alive), else a closed slot
 * for attempt() to open: a free one, or the least recently used. */
static struct client_conn *at_conn(settle_client *c, const char *endpoint)
{
	size_t pick = 0;

	for (size_t i = 0; i < CLIENT_AT_CONNS; i++) {
		struct client_conn *k = &c->at[i];

		if (k->fd >= 0 && strcmp(k->endpoint, endpoint) == 0) {
			if (!conn_alive(k))
				client_conn_close(k);
			pick = i;
			goto out;
		}
	}
	for (size_t i = 1; i < CLIENT_AT_CONNS; i++)
		if (c->at[pick].fd >= 0 &&
		    (c->at[i].fd < 0 || c->at_used[i] < c->at_used[pick]))
			pick = i;
	client_conn_close(&c->at[pick]);
out:
	c->at_used[pick] = ++c->at_clock;
	return &c->at[pick];
}

int settle_client_call_at(settle_client *c, const char *endpoint, int method,
			  const ProtobufCMessage *req,
			  const ProtobufCMessageDescriptor *resp_desc,
			  ProtobufCMessage **resp)
{
	struct client_conn *conn;
	char leader[256];

	if (c == NULL || endpoint == NULL)
		return SETTLE_EINVAL;
	if (resp != NULL)
		*resp = NULL;
	conn = at_conn(c, endpoint);
	bool reused = conn->fd >= 0;
	int rv =
	    attempt(conn, endpoint, &c->opts, method, req, resp_desc, resp, 0,
		    c->errmsg, sizeof(c->errmsg), leader, sizeof(leader));
	if (rv == SETTLE_ECLOSED && reused)
		/* The peer closed the kept connection as the call went out
		 * (conn_alive() saw nothing yet): once more on a new one.
		 * Every method is safe to repeat: participants' barrier,
		 * the coordinator's cmd_id. */
		rv = attempt(conn, endpoint, &c->opts, method, req, resp_desc,
			     resp, 0, c->errmsg, sizeof(c->errmsg), leader,
			     sizeof(leader));
	return rv;
}

/* ---- Typed initiator calls ---------------------------------------------- */

int client__check_gid(settle_client *c, const char *op, const char *gid,
		      bool may_be_empty)
{
	return client__gid_check(op, gid, may_be_empty, c->errmsg,
				 sizeof(c->errmsg));
}

int client__new_cmd_id(settle_client *c, const char *op, uint8_t id[16])
{
	int rv = settle_cmd_id(id);
	if (rv != 0)
		snprintf(c->errmsg, sizeof(c->errmsg), "%s: getrandom failed",
			 op);
	return rv;
}

int settle_begin(settle_client *c, const char *gid, uint32_t timeout_ms,
		 char *gid_out, size_t gid_out_len)
{
	return settle_begin_branches(c, gid, timeout_ms, NULL, 0, gid_out,
				     gid_out_len, NULL);
}

int settle_begin_branches(settle_client *c, const char *gid,
			  uint32_t timeout_ms,
			  const struct settle_branch_decl *decls, size_t n,
			  char *gid_out, size_t gid_out_len, uint32_t *ids_out)
{
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	Settle__V1__BeginResponse *resp = NULL;
	Settle__V1__BranchDecl *bd = NULL, **bp = NULL;
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__new_cmd_id(c, "begin", id);
	if (rv != 0)
		return rv;
	rv = client__begin_request(gid, timeout_ms, decls, n, id, &req, &bd,
				   &bp, c->errmsg, sizeof(c->errmsg));
	if (rv != 0)
		goto out;
	rv = client__call(c, SETTLE__V1__METHOD__BEGIN, &req.base,
			  &settle__v1__begin_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		goto out;
	if (gid_out != NULL) {
		const char *g = resp->gid != NULL ? resp->gid : "";
		if (strlen(g) >= gid_out_len) {
			snprintf(c->errmsg, sizeof(c->errmsg),
				 "begin: gid buffer too small for %zu bytes",
				 strlen(g));
			rv = SETTLE_ETOOBIG;
		} else {
			strcpy(gid_out, g);
		}
	}
	if (rv == 0 && n > 0 && resp->n_branch_ids == 0) {
		/* A coordinator older than BEGIN with branches, or a cluster
		 * not yet at feature level 2, began the transaction without
		 * them: register them one by one, as before. */
		const char *g = resp->gid != NULL ? resp->gid : "";
		for (size_t i = 0; rv == 0 && i < n; i++) {
			uint32_t bid;
			rv = settle_register_branch(
			    c, g, decls[i].endpoint, decls[i].resource,
			    decls[i].payload, decls[i].len, &bid);
			if (rv == 0 && ids_out != NULL)
				ids_out[i] = bid;
		}
		settle__v1__begin_response__free_unpacked(resp, NULL);
		goto out;
	}
	if (rv == 0 && resp->n_branch_ids != n) {
		/* Not what was declared: refuse to guess. */
		snprintf(c->errmsg, sizeof(c->errmsg),
			 "begin: %s: the coordinator registered %zu of %zu "
			 "declared branches; roll the transaction back",
			 resp->gid != NULL ? resp->gid : "", resp->n_branch_ids,
			 n);
		rv = SETTLE_EPROTO;
	}
	if (rv == 0 && ids_out != NULL)
		for (size_t i = 0; i < n; i++)
			ids_out[i] = resp->branch_ids[i];
	settle__v1__begin_response__free_unpacked(resp, NULL);
out:
	free(bd);
	free(bp);
	return rv;
}

int settle_register_branch(settle_client *c, const char *gid,
			   const char *endpoint, const char *resource,
			   const void *payload, size_t len, uint32_t *branch_id)
{
	Settle__V1__RegisterBranchRequest req =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	Settle__V1__RegisterBranchResponse *resp = NULL;
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__check_gid(c, "register", gid, false);
	if (rv != 0)
		return rv;
	if (endpoint == NULL || endpoint[0] == '\0' ||
	    (payload == NULL && len != 0)) {
		snprintf(c->errmsg, sizeof(c->errmsg),
			 "register: endpoint is required");
		if (payload == NULL && len != 0)
			snprintf(c->errmsg, sizeof(c->errmsg),
				 "register: payload is NULL with len %zu", len);
		return SETTLE_EINVAL;
	}
	rv = client__new_cmd_id(c, "register", id);
	if (rv != 0)
		return rv;
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.gid = (char *)gid;
	req.endpoint = (char *)endpoint;
	req.resource = (char *)(resource != NULL ? resource : "");
	req.payload.data = (uint8_t *)payload;
	req.payload.len = len;
	rv = client__call(c, SETTLE__V1__METHOD__REGISTER_BRANCH, &req.base,
			  &settle__v1__register_branch_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		return rv;
	if (branch_id != NULL)
		*branch_id = resp->branch_id;
	settle__v1__register_branch_response__free_unpacked(resp, NULL);
	return 0;
}

int client__decide(settle_client *c, int method, const char *gid,
		   const char *reason, bool one_phase, uint32_t wait_ms,
		   int *state, bool *finished, int *heuristic)
{
	Settle__V1__CommitRequest creq = SETTLE__V1__COMMIT_REQUEST__INIT;
	Settle__V1__RollbackRequest rreq = SETTLE__V1__ROLLBACK_REQUEST__INIT;
	Settle__V1__DecisionResponse *resp = NULL;
	const ProtobufCMessage *req;
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__check_gid(c, client__method_name(method), gid, false);
	if (rv == 0)
		rv = client__new_cmd_id(c, client__method_name(method), id);
	if (rv != 0)
		return rv;
	req = client__decide_request(method, gid, reason, one_phase, wait_ms,
				     id, &creq, &rreq);
	rv = client__call(c, method, req,
			  &settle__v1__decision_response__descriptor,
			  (ProtobufCMessage **)&resp, wait_ms);
	if (rv != 0)
		return rv;
	if (state != NULL)
		*state = (int)resp->state;
	if (finished != NULL)
		*finished = resp->finished;
	if (heuristic != NULL)
		*heuristic = (int)resp->heuristic;
	settle__v1__decision_response__free_unpacked(resp, NULL);
	return 0;
}

int settle_commit(settle_client *c, const char *gid, uint32_t wait_ms,
		  int *state, bool *finished)
{
	return client__decide(c, SETTLE__V1__METHOD__COMMIT, gid, NULL, false,
			      wait_ms, state, finished, NULL);
}

int settle_rollback(settle_client *c, const char *gid, const char *reason,
		    uint32_t wait_ms, int *state, bool *finished)
{
	return client__decide(c, SETTLE__V1__METHOD__ROLLBACK, gid, reason,
			      false, wait_ms, state, finished, NULL);
}

int settle_query(settle_client *c, const char *gid, bool history,
		 Settle__V1__TxInfo **out)
{
	return client__query(c, gid, history, 0, out);
}

int client__query(settle_client *c, const char *gid, bool history,
		  uint32_t wait_ms, Settle__V1__TxInfo **out)
{
	Settle__V1__QueryRequest req = SETTLE__V1__QUERY_REQUEST__INIT;
	Settle__V1__QueryResponse *resp = NULL;
	int rv;

	if (c == NULL || out == NULL)
		return SETTLE_EINVAL;
	rv = client__check_gid(c, "query", gid, false);
	if (rv != 0)
		return rv;
	req.gid = (char *)gid;
	req.history = history;
	req.wait_ms = wait_ms;
	/* A wait needs the state (and the branches only when one failed). */
	req.brief = wait_ms > 0 && !history;
	rv = client__call(c, SETTLE__V1__METHOD__QUERY, &req.base,
			  &settle__v1__query_response__descriptor,
			  (ProtobufCMessage **)&resp, wait_ms);
	if (rv != 0)
		return rv;
	if (resp->tx == NULL) {
		snprintf(c->errmsg, sizeof(c->errmsg),
			 "query: response without a transaction");
		settle__v1__query_response__free_unpacked(resp, NULL);
		return SETTLE_EPROTO;
	}
	/* protobuf-c allocates each sub-message on its own: detach it. */
	*out = resp->tx;
	resp->tx = NULL;
	settle__v1__query_response__free_unpacked(resp, NULL);
	return 0;
}

void settle_tx_info_free(Settle__V1__TxInfo *tx)
{
	if (tx != NULL)
		settle__v1__tx_info__free_unpacked(tx, NULL);
}

const char *settle_tx_state_name(int state)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &settle__v1__tx_state__descriptor, state);
	return v != NULL ? v->name : "UNKNOWN";
}

const char *settle_branch_state_name(int state)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &settle__v1__branch_state__descriptor, state);
	return v != NULL ? v->name : "UNKNOWN";
}

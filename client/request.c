/*
 * request.c — what libsettle's blocking client (client.c, saga.c) and
 * asynchronous client (async.c, async_calls.c) share: command ids,
 * endpoint lists and options, the names of methods and error codes, which
 * errors are worth another attempt, and the requests they build and check
 * the same way before anything is sent.
 */
#include "error.h"

#include "settle.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "client_int.h"
#include "conn.h"
#include "tls.h"

int settle_cmd_id(uint8_t out[16])
{
	static uint64_t last;
	struct timespec ts;
	uint64_t v, seen;
	size_t got = 8;

	/* Unix ms in 6 bytes and a count within it in 2, big-endian, then 8
	 * random bytes. The coordinator keeps ids in a B-tree: ids in order
	 * go in at its end, where LMDB fills a page before it starts the
	 * next; random ones each dirtied a page of their own, and ids only
	 * nearly in order split most pages in the middle. The count makes
	 * the ids of this process strictly increasing, threads included. */
	clock_gettime(CLOCK_REALTIME, &ts);
	v = ((uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000) << 16;
	seen = __atomic_load_n(&last, __ATOMIC_RELAXED);
	for (;;) {
		uint64_t next = v > seen ? v : seen + 1;
		if (__atomic_compare_exchange_n(&last, &seen, next, false,
						__ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			v = next;
			break;
		}
	}
	for (int i = 7; i >= 0; i--) {
		out[i] = (uint8_t)v;
		v >>= 8;
	}
	while (got < 16) {
		ssize_t n = getrandom(out + got, 16 - got, 0);
		if (n < 0)
			return SETTLE_EIO;
		got += (size_t)n;
	}
	return 0;
}

int client__endpoints(const char *list, char **buf, const char **eps,
		      size_t max, size_t *n)
{
	char *save = NULL;

	*n = 0;
	*buf = strdup(list);
	if (*buf == NULL)
		return SETTLE_ENOMEM;
	for (char *tok = strtok_r(*buf, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		char host[256], port[16];
		while (*tok == ' ')
			tok++;
		if (*tok == '\0')
			continue;
		if (*n == max || strlen(tok) >= CLIENT_ENDPOINT_MAX ||
		    client_conn_parse_endpoint(tok, host, sizeof(host), port,
					       sizeof(port)) != 0)
			goto bad;
		eps[(*n)++] = tok;
	}
	if (*n > 0)
		return 0;
bad:
	free(*buf);
	*buf = NULL;
	*n = 0;
	return SETTLE_EINVAL;
}

void client__opts_defaults(struct settle_client_opts *o)
{
	if (o->call_timeout_ms == 0)
		o->call_timeout_ms = 5000;
	if (o->connect_timeout_ms == 0)
		o->connect_timeout_ms = 1000;
	if (o->retry_budget_ms == 0)
		o->retry_budget_ms = 10000;
	if (o->backoff_max_ms == 0)
		o->backoff_max_ms = 500;
}

const char *client__method_name(int method)
{
	switch (method) {
	case SETTLE__V1__METHOD__BEGIN:
		return "begin";
	case SETTLE__V1__METHOD__REGISTER_BRANCH:
		return "register";
	case SETTLE__V1__METHOD__COMMIT:
		return "commit";
	case SETTLE__V1__METHOD__ROLLBACK:
		return "rollback";
	case SETTLE__V1__METHOD__QUERY:
		return "query";
	case SETTLE__V1__METHOD__STATUS:
		return "status";
	case SETTLE__V1__METHOD__LIST:
		return "list";
	case SETTLE__V1__METHOD__CONFIRM:
		return "confirm";
	case SETTLE__V1__METHOD__CANCEL:
		return "cancel";
	case SETTLE__V1__METHOD__TRY:
		return "try";
	case SETTLE__V1__METHOD__ACTION:
		return "action";
	case SETTLE__V1__METHOD__COMPENSATE:
		return "compensate";
	case SETTLE__V1__METHOD__SUBMIT_SAGA:
		return "submit saga";
	case SETTLE__V1__METHOD__CLUSTER_ADD:
		return "cluster add";
	case SETTLE__V1__METHOD__CLUSTER_REMOVE:
		return "cluster remove";
	case SETTLE__V1__METHOD__CLUSTER_TRANSFER:
		return "cluster transfer";
	case SETTLE__V1__METHOD__CLUSTER_MEMBERS:
		return "cluster members";
	case SETTLE__V1__METHOD__TX_RETRY:
		return "tx retry";
	case SETTLE__V1__METHOD__TX_RESOLVE:
		return "tx resolve";
	case SETTLE__V1__METHOD__PARTICIPANTS:
		return "participants";
	case SETTLE__V1__METHOD__XA_VOTE:
		return "xa vote";
	case SETTLE__V1__METHOD__XA_PREPARE:
		return "xa prepare";
	case SETTLE__V1__METHOD__XA_RECOVER:
		return "xa recover";
	case SETTLE__V1__METHOD__XA_FORGET:
		return "xa forget";
	case SETTLE__V1__METHOD__XA_HEURISTIC:
		return "xa heuristic";
	}
	return "call";
}

/* "WRONG_STATE" for a wire code, from the generated enum descriptor. */
const char *client__code_name(int code)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &settle__v1__code__descriptor, code);
	return v != NULL ? v->name : "UNKNOWN";
}

const char *client__wire_name(int err)
{
	return client__code_name(settle_err_to_wire(err));
}

bool client__transient(int err)
{
	switch (err) {
	case SETTLE_ECONNECT:
	case SETTLE_ECLOSED:
	case SETTLE_EIO:
	case SETTLE_EUNAVAIL:
	case SETTLE_ENOTLEADER:
	case SETTLE_ETIMEOUT:
		return true;
	}
	return false;
}

int client__gid_check(const char *op, const char *gid, bool may_be_empty,
		      char *err, size_t errlen)
{
	if (gid == NULL || gid[0] == '\0') {
		if (may_be_empty)
			return 0;
		snprintf(err, errlen, "%s: gid is required", op);
		return SETTLE_EINVAL;
	}
	if (strlen(gid) > SETTLE_GID_MAX) {
		snprintf(err, errlen, "%s: gid longer than %d bytes", op,
			 SETTLE_GID_MAX);
		return SETTLE_EINVAL;
	}
	return 0;
}

/* n decls checked and set up in out, pointing at the caller's strings and
 * payloads. */
static int decls_check(const struct settle_branch_decl *d, size_t n,
		       Settle__V1__BranchDecl *out, char *err, size_t errlen)
{
	if (n > SETTLE_MAX_BRANCHES || (n > 0 && d == NULL)) {
		snprintf(err, errlen,
			 "begin: %zu branches (at most %d, decls not NULL)", n,
			 SETTLE_MAX_BRANCHES);
		return SETTLE_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		if (d[i].endpoint == NULL || d[i].endpoint[0] == '\0' ||
		    (d[i].payload == NULL && d[i].len != 0)) {
			snprintf(err, errlen,
				 "begin: branch %zu: endpoint is required and "
				 "payload NULL only with len 0",
				 i);
			return SETTLE_EINVAL;
		}
		settle__v1__branch_decl__init(&out[i]);
		out[i].endpoint = (char *)d[i].endpoint;
		out[i].resource =
		    (char *)(d[i].resource != NULL ? d[i].resource : "");
		out[i].payload.data = (uint8_t *)d[i].payload;
		out[i].payload.len = d[i].len;
	}
	return 0;
}

int client__begin_request(const char *gid, uint32_t timeout_ms,
			  const struct settle_branch_decl *decls, size_t n,
			  const uint8_t cmd_id[16],
			  Settle__V1__BeginRequest *req,
			  Settle__V1__BranchDecl **bd_out,
			  Settle__V1__BranchDecl ***bp_out, char *err,
			  size_t errlen)
{
	Settle__V1__BranchDecl *bd = NULL, **bp = NULL;
	int rv;

	*bd_out = NULL;
	*bp_out = NULL;
	rv = client__gid_check("begin", gid, true, err, errlen);
	if (rv != 0)
		return rv;
	if (n > 0 && n <= SETTLE_MAX_BRANCHES) {
		bd = calloc(n, sizeof(*bd));
		bp = calloc(n, sizeof(*bp));
		if (bd == NULL || bp == NULL) {
			free(bd);
			free(bp);
			snprintf(err, errlen, "begin: out of memory");
			return SETTLE_ENOMEM;
		}
		for (size_t i = 0; i < n; i++)
			bp[i] = &bd[i];
	}
	rv = decls_check(decls, n, bd, err, errlen);
	if (rv != 0) {
		free(bd);
		free(bp);
		return rv;
	}
	settle__v1__begin_request__init(req);
	req->cmd_id.data = (uint8_t *)cmd_id;
	req->cmd_id.len = 16;
	req->gid = (char *)(gid != NULL ? gid : "");
	req->timeout_ms = timeout_ms;
	req->n_branches = n;
	req->branches = bp;
	*bd_out = bd;
	*bp_out = bp;
	return 0;
}

const ProtobufCMessage *client__decide_request(
    int method, const char *gid, const char *reason, bool one_phase,
    uint32_t wait_ms, const uint8_t cmd_id[16], Settle__V1__CommitRequest *creq,
    Settle__V1__RollbackRequest *rreq)
{
	if (method == SETTLE__V1__METHOD__COMMIT) {
		settle__v1__commit_request__init(creq);
		creq->cmd_id.data = (uint8_t *)cmd_id;
		creq->cmd_id.len = 16;
		creq->gid = (char *)gid;
		creq->wait = wait_ms > 0;
		creq->wait_ms = wait_ms;
		creq->one_phase = one_phase;
		return &creq->base;
	}
	settle__v1__rollback_request__init(rreq);
	rreq->cmd_id.data = (uint8_t *)cmd_id;
	rreq->cmd_id.len = 16;
	rreq->gid = (char *)gid;
	rreq->wait = wait_ms > 0;
	rreq->wait_ms = wait_ms;
	rreq->reason = (char *)(reason != NULL ? reason : "");
	return &rreq->base;
}

/* The local checks of one step; the coordinator repeats them. */
static int check_step(const struct settle_saga_step *st, size_t i, bool dag,
		      char *err, size_t errlen)
{
	if (st->endpoint == NULL || st->endpoint[0] == '\0') {
		snprintf(err, errlen,
			 "submit saga: step %zu: endpoint is required", i);
		return SETTLE_EINVAL;
	}
	if (st->name != NULL && strnlen(st->name, SETTLE_SAGA_NAME_MAX + 1) >
				    SETTLE_SAGA_NAME_MAX) {
		snprintf(err, errlen,
			 "submit saga: step %zu: name longer than %d bytes", i,
			 SETTLE_SAGA_NAME_MAX);
		return SETTLE_EINVAL;
	}
	if ((st->action == NULL && st->action_len != 0) ||
	    (st->compensate == NULL && st->compensate_len != 0)) {
		snprintf(err, errlen,
			 "submit saga: step %zu: payload is NULL with a "
			 "length",
			 i);
		return SETTLE_EINVAL;
	}
	if (st->retry_base_ms != 0 && st->retry_max_ms != 0 &&
	    st->retry_base_ms > st->retry_max_ms) {
		snprintf(err, errlen,
			 "submit saga: step %zu: retry_base_ms %u over "
			 "retry_max_ms %u",
			 i, st->retry_base_ms, st->retry_max_ms);
		return SETTLE_EINVAL;
	}
	if (st->n_depends_on == 0)
		return 0;
	if (!dag) {
		snprintf(err, errlen,
			 "submit saga: step %zu: depends_on needs a dag saga "
			 "(ordered steps depend on the previous one)",
			 i);
		return SETTLE_EINVAL;
	}
	if (st->depends_on == NULL) {
		snprintf(err, errlen,
			 "submit saga: step %zu: depends_on is NULL with a "
			 "count",
			 i);
		return SETTLE_EINVAL;
	}
	for (size_t k = 0; k < st->n_depends_on; k++) {
		uint32_t d = st->depends_on[k];
		/* Only earlier steps: the graph cannot have a cycle. */
		if (d >= i) {
			snprintf(err, errlen,
				 "submit saga: step %zu: depends_on %u must "
				 "name an earlier step",
				 i, d);
			return SETTLE_EINVAL;
		}
		for (size_t j = 0; j < k; j++) {
			if (st->depends_on[j] == d) {
				snprintf(err, errlen,
					 "submit saga: step %zu: depends_on "
					 "%u twice",
					 i, d);
				return SETTLE_EINVAL;
			}
		}
	}
	return 0;
}

static int check_saga(const char *gid, const struct settle_saga_opts *o,
		      const struct settle_saga_step *steps, size_t n, char *err,
		      size_t errlen)
{
	int rv = client__gid_check("submit saga", gid, true, err, errlen);

	if (rv != 0)
		return rv;
	if (o->recovery != SETTLE_SAGA_BACKWARD &&
	    o->recovery != SETTLE_SAGA_FORWARD) {
		snprintf(err, errlen,
			 "submit saga: recovery %d is neither "
			 "SETTLE_SAGA_BACKWARD nor SETTLE_SAGA_FORWARD",
			 o->recovery);
		return SETTLE_EINVAL;
	}
	if (n == 0 || steps == NULL) {
		snprintf(err, errlen,
			 "submit saga: a saga needs at least one step");
		return SETTLE_EINVAL;
	}
	if (n > SETTLE_SAGA_MAX_STEPS) {
		snprintf(err, errlen, "submit saga: %zu steps: at most %d", n,
			 SETTLE_SAGA_MAX_STEPS);
		return SETTLE_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		rv = check_step(&steps[i], i, o->dag, err, errlen);
		if (rv != 0)
			return rv;
	}
	return 0;
}

int client__saga_request(const char *gid, const struct settle_saga_opts *opts,
			 const struct settle_saga_step *steps, size_t n,
			 const uint8_t cmd_id[16],
			 Settle__V1__SubmitSagaRequest *req,
			 Settle__V1__SagaStep **wire_out,
			 Settle__V1__SagaStep ***ptrs_out, char *err,
			 size_t errlen)
{
	static const struct settle_saga_opts defaults = {
	    .recovery = SETTLE_SAGA_BACKWARD};
	Settle__V1__SagaStep *wire, **ptrs;
	int rv;

	*wire_out = NULL;
	*ptrs_out = NULL;
	if (opts == NULL)
		opts = &defaults;
	rv = check_saga(gid, opts, steps, n, err, errlen);
	if (rv != 0)
		return rv;
	wire = calloc(n, sizeof(*wire));
	ptrs = calloc(n, sizeof(*ptrs));
	if (wire == NULL || ptrs == NULL) {
		free(wire);
		free(ptrs);
		snprintf(err, errlen, "submit saga: out of memory");
		return SETTLE_ENOMEM;
	}
	/* The request points into the caller's steps: nothing is copied
	 * until protobuf-c packs it. */
	for (size_t i = 0; i < n; i++) {
		const struct settle_saga_step *st = &steps[i];
		Settle__V1__SagaStep *w = &wire[i];

		settle__v1__saga_step__init(w);
		w->name = (char *)(st->name != NULL ? st->name : "");
		w->endpoint = (char *)st->endpoint;
		w->action_payload.data = (uint8_t *)st->action;
		w->action_payload.len = st->action_len;
		w->compensate_payload.data = (uint8_t *)st->compensate;
		w->compensate_payload.len = st->compensate_len;
		w->depends_on = (uint32_t *)st->depends_on;
		w->n_depends_on = st->n_depends_on;
		w->max_attempts = st->max_attempts;
		w->retry_base_ms = st->retry_base_ms;
		w->retry_max_ms = st->retry_max_ms;
		w->call_timeout_ms = st->call_timeout_ms;
		ptrs[i] = w;
	}
	settle__v1__submit_saga_request__init(req);
	req->cmd_id.data = (uint8_t *)cmd_id;
	req->cmd_id.len = 16;
	req->gid = (char *)(gid != NULL ? gid : "");
	req->timeout_ms = opts->timeout_ms;
	req->recovery = (Settle__V1__SagaRecovery)opts->recovery;
	req->dag = opts->dag;
	req->n_steps = n;
	req->steps = ptrs;
	*wire_out = wire;
	*ptrs_out = ptrs;
	return 0;
}

int client__tls_set(struct rpc_tls **slot, const struct settle_tls *tls,
		    bool server, char *errmsg, size_t errmsg_len)
{
	struct rpc_tls_opts o = {
	    .cert = tls->cert,
	    .key = tls->key,
	    .ca = tls->ca,
	    .crl = tls->crl,
	    .server = server,
	};
	struct rpc_tls *t;
	int rv = rpc_tls_new(&o, &t, errmsg, errmsg_len);

	if (rv != 0)
		return rv;
	rpc_tls_free(*slot);
	*slot = t;
	return 0;
}

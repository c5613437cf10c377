/* libsettle's XA calls against a scripted fake coordinator: every field
 * each call sends, one cmd_id per logical call reused when a reply is
 * lost, what is refused locally (nothing sent), how the answers come back
 * and how the coordinator's errors map to SETTLE_E* codes. */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <string.h>

#include "error.h"

#include "settle.h"

#include "fake_server.h"
#include "xa/xid.h"

static struct settle_client_opts fast = {
    .call_timeout_ms = 1000,
    .connect_timeout_ms = 500,
    .retry_budget_ms = 3000,
    .backoff_max_ms = 20,
};

/* The fake drops the connection instead of answering this many requests
 * (a lost reply: the client must retry with the same cmd_id). */
static atomic_int drops;
/* The body of the last request the fake answered, for the test to
 * decode; written by the fake's thread before it replies. */
static uint8_t last_body[8192];
static size_t last_len;

/* cmd_ids of the XA_HEURISTIC requests seen, dropped ones included (the
 * shared fake does not record that method's). */
static uint8_t heur_ids[8][16];
static atomic_int heur_n;

static void *last_as(const ProtobufCMessageDescriptor *d)
{
	void *m = protobuf_c_message_unpack(d, NULL, last_len, last_body);
	cr_assert_not_null(m, "undecodable %s", d->name);
	return m;
}

/* gids that make the fake fail: the wire error behind each code. */
static bool gid_error(const char *gid, int *err, const char **msg)
{
	static const struct {
		const char *gid;
		int err;
		const char *msg;
	} map[] = {
	    {"nf", SETTLE_ENOTFOUND, "unknown gid"},
	    {"ws", SETTLE_ESTATE, "branch 2 has not voted"},
	    {"ex", SETTLE_EEXISTS, "gid taken"},
	    {"inv", SETTLE_EINVAL, "bad vote"},
	    {"big", SETTLE_ETOOBIG, "error over 1024 bytes"},
	};
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		if (gid != NULL && strcmp(gid, map[i].gid) == 0) {
			*err = map[i].err;
			*msg = map[i].msg;
			return true;
		}
	}
	return false;
}

/* An XID as the FSM builds it: gtrid = gid, bqual = branch id. */
static size_t branch_xid(const char *gid, const char *bqual, uint8_t *out)
{
	struct xa_xid x;
	size_t len = 0;

	cr_assert_eq(
	    xa_xid_init(&x, 0x53544c45, gid, strlen(gid), bqual, strlen(bqual)),
	    0);
	cr_assert_eq(xa_xid_encode(&x, out, XA_XID_WIRE_MAX, &len), 0);
	return len;
}

static ProtobufCMessage *answer_begin(const Settle__V1__BeginRequest *q,
				      int *err, const char **msg)
{
	Settle__V1__BeginResponse *r;

	if (gid_error(q->gid, err, msg))
		return NULL;
	if (q->join && q->xid.len > 0 && q->xid.data[6] == 'n') {
		*err = SETTLE_ENOTFOUND;
		*msg = "join: no transaction of that xid";
		return NULL;
	}
	if (q->n_branches > 0 && strcmp(q->gid, "old") == 0) {
		/* A cluster below feature level 6. */
		*err = SETTLE_ENOMETHOD;
		*msg = "RM branches declared at begin needs cluster feature "
		       "level 6";
		return NULL;
	}
	r = malloc(sizeof(*r));
	settle__v1__begin_response__init(r);
	r->gid = strdup(q->xid.len > 0 ? "xa-0123456789abcdef0123456789abcdef"
					 "01234567"
				       : (q->gid[0] ? q->gid : "chosen"));
	r->deadline_ms = 42;
	r->joined = q->join;
	if (q->n_branches > 0) {
		r->n_branch_ids = r->n_xids = q->n_branches;
		r->branch_ids = calloc(q->n_branches, sizeof(uint32_t));
		r->xids = calloc(q->n_branches, sizeof(*r->xids));
		for (size_t i = 0; i < q->n_branches; i++) {
			char bq[16];

			snprintf(bq, sizeof(bq), "%zu", i + 1);
			r->branch_ids[i] = (uint32_t)i + 1;
			r->xids[i].data = malloc(XA_XID_WIRE_MAX);
			r->xids[i].len =
			    branch_xid(r->gid, bq, r->xids[i].data);
		}
	}
	return &r->base;
}

static ProtobufCMessage *
answer_register(const Settle__V1__RegisterBranchRequest *q, int *err,
		const char **msg)
{
	Settle__V1__RegisterBranchResponse *r;

	if (gid_error(q->gid, err, msg))
		return NULL;
	if (strcmp(q->rm, "unknown") == 0) {
		*err = SETTLE_ENOTFOUND;
		*msg = "resource manager unknown is not configured";
		return NULL;
	}
	r = malloc(sizeof(*r));
	settle__v1__register_branch_response__init(r);
	r->branch_id = 3;
	if (strcmp(q->gid, "noxid") != 0) {
		r->xid.data = malloc(XA_XID_WIRE_MAX);
		r->xid.len = branch_xid(q->gid, "3", r->xid.data);
	}
	return &r->base;
}

static ProtobufCMessage *answer_vote(const Settle__V1__XaVoteRequest *q,
				     int *err, const char **msg)
{
	Settle__V1__XaVoteResponse *r;

	if (gid_error(q->gid, err, msg))
		return NULL;
	r = malloc(sizeof(*r));
	settle__v1__xa_vote_response__init(r);
	/* The answer encodes the vote, so the test sees both ways. */
	switch (q->vote) {
	case SETTLE__V1__XA_VOTE__VOTE_OK:
		r->state = SETTLE__V1__TX_STATE__ACTIVE;
		r->branch_state = SETTLE__V1__BRANCH_STATE__XA_BRANCH_PREPARED;
		break;
	case SETTLE__V1__XA_VOTE__VOTE_ROLLBACK:
		r->state = SETTLE__V1__TX_STATE__ROLLING_BACK;
		r->branch_state =
		    SETTLE__V1__BRANCH_STATE__XA_BRANCH_ROLLED_BACK;
		break;
	default:
		r->state = SETTLE__V1__TX_STATE__COMMITTED;
		r->branch_state = SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTED;
		break;
	}
	return &r->base;
}

static ProtobufCMessage *answer_prepare(const Settle__V1__XaPrepareRequest *q,
					int *err, const char **msg)
{
	Settle__V1__XaPrepareResponse *r;

	if (gid_error(q->gid, err, msg))
		return NULL;
	r = malloc(sizeof(*r));
	settle__v1__xa_prepare_response__init(r);
	r->read_only = strcmp(q->gid, "ro") == 0;
	r->state = r->read_only ? SETTLE__V1__TX_STATE__COMMITTED
				: SETTLE__V1__TX_STATE__XA_PREPARED;
	return &r->base;
}

static ProtobufCMessage *answer_commit(const Settle__V1__CommitRequest *q,
				       int *err, const char **msg)
{
	Settle__V1__DecisionResponse *r;

	if (gid_error(q->gid, err, msg))
		return NULL;
	r = malloc(sizeof(*r));
	settle__v1__decision_response__init(r);
	r->state = q->one_phase ? SETTLE__V1__TX_STATE__COMMITTING
				: SETTLE__V1__TX_STATE__COMMITTED;
	r->finished = !q->one_phase;
	if (strcmp(q->gid, "xa-hc") == 0)
		r->heuristic = SETTLE__V1__HEURISTIC__HEUR_COMMIT;
	return &r->base;
}

/* Commit / Rollback of "xa-hc" answer a heuristic commit, of "xa-hr" a
 * heuristic rollback (what the FSM remembers after settle_xa_heuristic). */
static ProtobufCMessage *answer_rollback(const Settle__V1__RollbackRequest *q,
					 int *err, const char **msg)
{
	Settle__V1__DecisionResponse *r;

	if (gid_error(q->gid, err, msg))
		return NULL;
	r = malloc(sizeof(*r));
	settle__v1__decision_response__init(r);
	r->state = SETTLE__V1__TX_STATE__ROLLED_BACK;
	r->finished = true;
	if (strcmp(q->gid, "xa-hr") == 0)
		r->heuristic = SETTLE__V1__HEURISTIC__HEUR_ROLLBACK;
	return &r->base;
}

/* "xa-c" commits heuristically, anything else rolls back as decided. */
static ProtobufCMessage *
answer_heuristic(const Settle__V1__XaHeuristicRequest *q, int *err,
		 const char **msg)
{
	Settle__V1__XaHeuristicResponse *r;

	if (gid_error(q->gid, err, msg))
		return NULL;
	r = malloc(sizeof(*r));
	settle__v1__xa_heuristic_response__init(r);
	if (q->decision == SETTLE__V1__DECISION__DECIDE_COMMIT) {
		r->state = SETTLE__V1__TX_STATE__COMMITTING;
		r->heuristic = SETTLE__V1__HEURISTIC__HEUR_COMMIT;
	} else {
		r->state = SETTLE__V1__TX_STATE__ROLLED_BACK;
		r->heuristic = SETTLE__V1__HEURISTIC__HEUR_ROLLBACK;
	}
	return &r->base;
}

static Settle__V1__XaRecovered *recovered(const char *gid, int state, int heur)
{
	Settle__V1__XaRecovered *e = malloc(sizeof(*e));

	settle__v1__xa_recovered__init(e);
	e->gid = strdup(gid);
	e->xid.data = malloc(XA_XID_WIRE_MAX);
	e->xid.len = branch_xid(gid, "tm-branch", e->xid.data);
	e->state = state;
	e->heuristic = heur;
	return e;
}

/* Pages: "" -> xa-1, xa-2 and more; "xa-2" -> xa-3, the last; "bad" ->
 * an entry with an oversized xid; "many" -> three entries whatever the
 * limit. */
static ProtobufCMessage *answer_recover(const Settle__V1__XaRecoverRequest *q,
					int *err, const char **msg)
{
	Settle__V1__XaRecoverResponse *r;

	if (gid_error(q->after_gid, err, msg))
		return NULL;
	r = malloc(sizeof(*r));
	settle__v1__xa_recover_response__init(r);
	r->txs = malloc(3 * sizeof(*r->txs));
	if (q->after_gid[0] == '\0') {
		r->txs[r->n_txs++] =
		    recovered("xa-1", SETTLE__V1__TX_STATE__XA_PREPARED,
			      SETTLE__V1__HEURISTIC__HEURISTIC_NONE);
		r->txs[r->n_txs++] =
		    recovered("xa-2", SETTLE__V1__TX_STATE__COMMITTED,
			      SETTLE__V1__HEURISTIC__HEUR_HAZARD);
		r->more = true;
	} else if (strcmp(q->after_gid, "xa-2") == 0) {
		r->txs[r->n_txs++] =
		    recovered("xa-3", SETTLE__V1__TX_STATE__ROLLED_BACK,
			      SETTLE__V1__HEURISTIC__HEUR_MIXED);
	} else if (strcmp(q->after_gid, "bad") == 0) {
		Settle__V1__XaRecovered *e =
		    recovered("xa-4", SETTLE__V1__TX_STATE__XA_PREPARED, 0);
		free(e->xid.data);
		e->xid.data = calloc(1, 200);
		e->xid.len = 200;
		r->txs[r->n_txs++] = e;
	} else if (strcmp(q->after_gid, "many") == 0) {
		for (int i = 0; i < 3; i++)
			r->txs[r->n_txs++] = recovered(
			    i == 0 ? "xa-5" : (i == 1 ? "xa-6" : "xa-7"),
			    SETTLE__V1__TX_STATE__XA_PREPARED, 0);
	}
	return &r->base;
}

static bool xa_fake(struct fake_server *s, int n, const Settle__V1__Frame *f,
		    int *err, const char **msg, const char **leader,
		    ProtobufCMessage **body)
{
	ProtobufCMessage *q = NULL;
	const ProtobufCMessageDescriptor *d = NULL;

	(void)s;
	(void)n;
	(void)leader;
	cr_assert(f->body.len <= sizeof(last_body));
	memcpy(last_body, f->body.data, f->body.len);
	last_len = f->body.len;
	if ((int)f->method == SETTLE__V1__METHOD__XA_HEURISTIC) {
		Settle__V1__XaHeuristicRequest *h =
		    settle__v1__xa_heuristic_request__unpack(NULL, f->body.len,
							     f->body.data);
		int i = atomic_load(&heur_n);
		cr_assert_not_null(h);
		if (i < 8 && h->cmd_id.len == 16) {
			memcpy(heur_ids[i], h->cmd_id.data, 16);
			atomic_store(&heur_n, i + 1);
		}
		settle__v1__xa_heuristic_request__free_unpacked(h, NULL);
	}
	if (atomic_load(&drops) > 0) {
		atomic_fetch_sub(&drops, 1);
		return false;
	}
	switch ((int)f->method) {
	case SETTLE__V1__METHOD__BEGIN:
		d = &settle__v1__begin_request__descriptor;
		break;
	case SETTLE__V1__METHOD__REGISTER_BRANCH:
		d = &settle__v1__register_branch_request__descriptor;
		break;
	case SETTLE__V1__METHOD__XA_VOTE:
		d = &settle__v1__xa_vote_request__descriptor;
		break;
	case SETTLE__V1__METHOD__XA_PREPARE:
		d = &settle__v1__xa_prepare_request__descriptor;
		break;
	case SETTLE__V1__METHOD__COMMIT:
		d = &settle__v1__commit_request__descriptor;
		break;
	case SETTLE__V1__METHOD__ROLLBACK:
		d = &settle__v1__rollback_request__descriptor;
		break;
	case SETTLE__V1__METHOD__XA_HEURISTIC:
		d = &settle__v1__xa_heuristic_request__descriptor;
		break;
	case SETTLE__V1__METHOD__XA_RECOVER:
		d = &settle__v1__xa_recover_request__descriptor;
		break;
	case SETTLE__V1__METHOD__XA_FORGET:
		d = &settle__v1__xa_forget_request__descriptor;
		break;
	default:
		*err = SETTLE_ENOMETHOD;
		*msg = "fake: no such method";
		return true;
	}
	q = protobuf_c_message_unpack(d, NULL, f->body.len, f->body.data);
	cr_assert_not_null(q);
	switch ((int)f->method) {
	case SETTLE__V1__METHOD__BEGIN:
		*body = answer_begin((void *)q, err, msg);
		break;
	case SETTLE__V1__METHOD__REGISTER_BRANCH:
		*body = answer_register((void *)q, err, msg);
		break;
	case SETTLE__V1__METHOD__XA_VOTE:
		*body = answer_vote((void *)q, err, msg);
		break;
	case SETTLE__V1__METHOD__XA_PREPARE:
		*body = answer_prepare((void *)q, err, msg);
		break;
	case SETTLE__V1__METHOD__COMMIT:
		*body = answer_commit((void *)q, err, msg);
		break;
	case SETTLE__V1__METHOD__ROLLBACK:
		*body = answer_rollback((void *)q, err, msg);
		break;
	case SETTLE__V1__METHOD__XA_HEURISTIC:
		*body = answer_heuristic((void *)q, err, msg);
		break;
	case SETTLE__V1__METHOD__XA_RECOVER:
		*body = answer_recover((void *)q, err, msg);
		break;
	case SETTLE__V1__METHOD__XA_FORGET: {
		Settle__V1__XaForgetRequest *r = (void *)q;
		if (!gid_error(r->gid, err, msg)) {
			Settle__V1__XaForgetResponse *a = malloc(sizeof(*a));
			settle__v1__xa_forget_response__init(a);
			*body = &a->base;
		}
		break;
	}
	}
	protobuf_c_message_free_unpacked(q, NULL);
	return true;
}

static struct fake_server srv;
static settle_client *cl;

static void xa_setup(void)
{
	atomic_store(&drops, 0);
	atomic_store(&heur_n, 0);
	fake_server_start(&srv, xa_fake, NULL);
	cr_assert_eq(settle_client_open(srv.endpoint, &fast, &cl), 0);
}

static void xa_teardown(void)
{
	settle_client_close(cl);
	fake_server_stop(&srv);
}

TestSuite(xa_client, .init = xa_setup, .fini = xa_teardown, .timeout = 30);

/* The requests since `from` are one logical call: all with the same
 * 16-byte cmd_id, and a different one from request `other` (-1: none). */
static void expect_one_cmd_id(int from, int count, int other)
{
	cr_assert_eq(srv.requests, from + count);
	for (int i = from; i < from + count; i++) {
		cr_assert_eq(srv.cmd_id_lens[i], 16, "request %d", i);
		cr_expect_eq(memcmp(srv.cmd_ids[from], srv.cmd_ids[i], 16), 0,
			     "request %d has another cmd_id", i);
	}
	if (other >= 0)
		cr_expect_neq(memcmp(srv.cmd_ids[from], srv.cmd_ids[other], 16),
			      0);
}

Test(xa_client, begin_own_sends_mode_xa_and_reuses_its_cmd_id)
{
	char gid[SETTLE_GID_BUFSIZE];
	bool joined = true;

	atomic_store(&drops, 1);
	cr_assert_eq(settle_xa_begin(cl, "g-own", NULL, 0, false, 30000, gid,
				     sizeof(gid), &joined),
		     0, "%s", settle_client_errmsg(cl));
	expect_one_cmd_id(0, 2, -1);
	cr_expect_eq(srv.methods[0], SETTLE__V1__METHOD__BEGIN);
	cr_expect_str_eq(gid, "g-own");
	cr_expect_not(joined);
	Settle__V1__BeginRequest *q =
	    last_as(&settle__v1__begin_request__descriptor);
	cr_expect_eq(q->mode, SETTLE__V1__TX_MODE__XA);
	cr_expect_str_eq(q->gid, "g-own");
	cr_expect_eq(q->timeout_ms, 30000);
	cr_expect_eq(q->xid.len, 0);
	cr_expect_not(q->join);
	settle__v1__begin_request__free_unpacked(q, NULL);

	/* The coordinator chooses the gid; a new call, a new cmd_id. */
	cr_assert_eq(settle_xa_begin(cl, NULL, NULL, 0, false, 0, gid,
				     sizeof(gid), NULL),
		     0);
	cr_expect_str_eq(gid, "chosen");
	expect_one_cmd_id(2, 1, 0);
	/* A gid buffer too small: begun all the same, and said so. */
	cr_expect_eq(
	    settle_xa_begin(cl, "g-own", NULL, 0, false, 0, gid, 3, NULL),
	    SETTLE_ETOOBIG);
	cr_expect_eq(srv.requests, 4);
}

Test(xa_client, begin_with_xid_sends_it_unchanged_and_joins)
{
	uint8_t xid[XA_XID_WIRE_MAX];
	size_t len = branch_xid("tm-global-1", "tm-branch", xid);
	char gid[SETTLE_GID_BUFSIZE];
	bool joined = false;

	cr_assert_eq(settle_xa_begin(cl, NULL, xid, len, true, 0, gid,
				     sizeof(gid), &joined),
		     0, "%s", settle_client_errmsg(cl));
	cr_expect(joined);
	cr_expect_eq(strncmp(gid, "xa-", 3), 0);
	Settle__V1__BeginRequest *q =
	    last_as(&settle__v1__begin_request__descriptor);
	cr_expect_eq(q->mode, SETTLE__V1__TX_MODE__XA);
	cr_expect_str_eq(q->gid, "");
	cr_assert_eq(q->xid.len, len);
	cr_expect_eq(memcmp(q->xid.data, xid, len), 0);
	cr_expect(q->join);
	settle__v1__begin_request__free_unpacked(q, NULL);

	/* "" counts as no gid. */
	cr_assert_eq(
	    settle_xa_begin(cl, "", xid, len, false, 0, NULL, 0, &joined), 0);
	cr_expect_not(joined);

	/* Joining an xid the cluster does not know. */
	len = branch_xid("nobody", "b", xid);
	cr_expect_eq(
	    settle_xa_begin(cl, NULL, xid, len, true, 0, NULL, 0, &joined),
	    SETTLE_ENOTFOUND);
	cr_expect_not(joined);
	cr_expect_str_eq(settle_client_errmsg(cl),
			 "begin: NOT_FOUND: join: no transaction of that xid");
}

Test(xa_client, begin_refuses_misuse_locally)
{
	uint8_t xid[XA_XID_WIRE_MAX];
	size_t len = branch_xid("g", "b", xid);
	char g65[66];

	cr_expect_eq(
	    settle_xa_begin(NULL, "g", NULL, 0, false, 0, NULL, 0, NULL),
	    SETTLE_EINVAL);
	cr_expect_eq(
	    settle_xa_begin(cl, "g", xid, len, false, 0, NULL, 0, NULL),
	    SETTLE_EINVAL);
	cr_expect_not_null(strstr(settle_client_errmsg(cl), "not both"));
	cr_expect_eq(
	    settle_xa_begin(cl, NULL, xid, len - 1, false, 0, NULL, 0, NULL),
	    SETTLE_EINVAL);
	cr_expect_not_null(strstr(settle_client_errmsg(cl), "not a valid XID"));
	cr_expect_eq(
	    settle_xa_begin(cl, NULL, NULL, 5, false, 0, NULL, 0, NULL),
	    SETTLE_EINVAL);
	cr_expect_eq(settle_xa_begin(cl, "g", NULL, 0, true, 0, NULL, 0, NULL),
		     SETTLE_EINVAL);
	cr_expect_not_null(strstr(settle_client_errmsg(cl), "join needs"));
	memset(g65, 'g', 65);
	g65[65] = '\0';
	cr_expect_eq(settle_xa_begin(cl, g65, NULL, 0, false, 0, NULL, 0, NULL),
		     SETTLE_EINVAL);
	cr_expect_not_null(strstr(settle_client_errmsg(cl), "64 bytes"));
	/* 64 bytes is fine. */
	g65[64] = '\0';
	cr_expect_eq(settle_xa_begin(cl, g65, NULL, 0, false, 0, NULL, 0, NULL),
		     0);
	cr_expect_eq(srv.requests, 1, "only the valid call was sent");
}

Test(xa_client, register_rm_sends_the_rm_only_and_returns_the_xid)
{
	uint8_t xid[SETTLE_XID_WIRE_MAX], want[XA_XID_WIRE_MAX];
	size_t xid_len = 0, want_len = branch_xid("g-1", "3", want);
	uint32_t bid = 0;

	atomic_store(&drops, 1);
	cr_assert_eq(settle_xa_register_rm(cl, "g-1", "pg-main", &bid, xid,
					   sizeof(xid), &xid_len),
		     0, "%s", settle_client_errmsg(cl));
	expect_one_cmd_id(0, 2, -1);
	cr_expect_eq(srv.methods[0], SETTLE__V1__METHOD__REGISTER_BRANCH);
	cr_expect_eq(bid, 3);
	cr_assert_eq(xid_len, want_len);
	cr_expect_eq(memcmp(xid, want, want_len), 0);
	Settle__V1__RegisterBranchRequest *q =
	    last_as(&settle__v1__register_branch_request__descriptor);
	cr_expect_str_eq(q->gid, "g-1");
	cr_expect_str_eq(q->rm, "pg-main");
	cr_expect_str_eq(q->endpoint, "");
	cr_expect_str_eq(q->resource, "");
	cr_expect_eq(q->payload.len, 0);
	settle__v1__register_branch_request__free_unpacked(q, NULL);

	/* Outputs are optional. */
	cr_expect_eq(
	    settle_xa_register_rm(cl, "g-1", "pg-main", NULL, NULL, 0, NULL),
	    0);
	/* Too small a buffer: registered all the same, the size told. */
	xid_len = 0;
	cr_expect_eq(
	    settle_xa_register_rm(cl, "g-1", "pg-main", &bid, xid, 4, &xid_len),
	    SETTLE_ETOOBIG);
	cr_expect_eq(xid_len, want_len);
	/* An answer without an xid is a protocol error. */
	cr_expect_eq(settle_xa_register_rm(cl, "noxid", "pg-main", &bid, xid,
					   sizeof(xid), &xid_len),
		     SETTLE_EPROTO);
	cr_expect_eq(settle_xa_register_rm(cl, "g-1", "unknown", &bid, xid,
					   sizeof(xid), &xid_len),
		     SETTLE_ENOTFOUND);
	cr_expect_str_eq(settle_client_errmsg(cl),
			 "register: NOT_FOUND: resource manager unknown is "
			 "not configured");
	cr_expect_eq(settle_xa_register_rm(cl, "ws", "pg-main", &bid, xid,
					   sizeof(xid), &xid_len),
		     SETTLE_ESTATE);
	int sent = srv.requests;

	/* Refused locally. */
	char rm65[66];
	memset(rm65, 'r', 65);
	rm65[65] = '\0';
	cr_expect_eq(
	    settle_xa_register_rm(cl, "g-1", "", &bid, xid, 64, &xid_len),
	    SETTLE_EINVAL);
	cr_expect_eq(
	    settle_xa_register_rm(cl, "g-1", NULL, &bid, xid, 64, &xid_len),
	    SETTLE_EINVAL);
	cr_expect_eq(settle_xa_register_rm(cl, "g-1", "pg main", &bid, xid, 64,
					   &xid_len),
		     SETTLE_EINVAL);
	cr_expect_eq(
	    settle_xa_register_rm(cl, "g-1", rm65, &bid, xid, 64, &xid_len),
	    SETTLE_EINVAL);
	cr_expect_eq(
	    settle_xa_register_rm(cl, NULL, "pg", &bid, xid, 64, &xid_len),
	    SETTLE_EINVAL);
	cr_expect_eq(srv.requests, sent);
}

Test(xa_client, vote_sends_every_field_and_maps_the_answer)
{
	int state = 0, bstate = 0;

	atomic_store(&drops, 1);
	cr_assert_eq(settle_xa_vote(cl, "g-1", 2, SETTLE__V1__XA_VOTE__VOTE_OK,
				    NULL, &state, &bstate),
		     0, "%s", settle_client_errmsg(cl));
	expect_one_cmd_id(0, 2, -1);
	cr_expect_eq(srv.methods[0], SETTLE__V1__METHOD__XA_VOTE);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__ACTIVE);
	cr_expect_eq(bstate, SETTLE__V1__BRANCH_STATE__XA_BRANCH_PREPARED);
	Settle__V1__XaVoteRequest *q =
	    last_as(&settle__v1__xa_vote_request__descriptor);
	cr_expect_str_eq(q->gid, "g-1");
	cr_expect_eq(q->branch_id, 2);
	cr_expect_eq(q->vote, SETTLE__V1__XA_VOTE__VOTE_OK);
	cr_expect_str_eq(q->error, "");
	settle__v1__xa_vote_request__free_unpacked(q, NULL);

	cr_assert_eq(settle_xa_vote(cl, "g-1", 1,
				    SETTLE__V1__XA_VOTE__VOTE_ROLLBACK,
				    "deadlock detected", &state, NULL),
		     0);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__ROLLING_BACK);
	expect_one_cmd_id(2, 1, 0);
	q = last_as(&settle__v1__xa_vote_request__descriptor);
	cr_expect_eq(q->vote, SETTLE__V1__XA_VOTE__VOTE_ROLLBACK);
	cr_expect_str_eq(q->error, "deadlock detected");
	settle__v1__xa_vote_request__free_unpacked(q, NULL);

	cr_expect_eq(settle_xa_vote(cl, "ws", 1,
				    SETTLE__V1__XA_VOTE__ONE_PHASE_COMMITTED,
				    NULL, NULL, NULL),
		     SETTLE_ESTATE);
	cr_expect_str_eq(settle_client_errmsg(cl),
			 "xa vote: WRONG_STATE: branch 2 has not voted");
	cr_expect_eq(settle_xa_vote(cl, "nf", 1, SETTLE__V1__XA_VOTE__VOTE_OK,
				    NULL, NULL, NULL),
		     SETTLE_ENOTFOUND);
	cr_expect_eq(settle_xa_vote(cl, "big", 1,
				    SETTLE__V1__XA_VOTE__ONE_PHASE_UNKNOWN, "x",
				    NULL, NULL),
		     SETTLE_ETOOBIG);
	int sent = srv.requests;

	/* Refused locally. */
	char err[1026];
	memset(err, 'e', 1025);
	err[1025] = '\0';
	cr_expect_eq(settle_xa_vote(cl, "g-1", 0, SETTLE__V1__XA_VOTE__VOTE_OK,
				    NULL, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_xa_vote(cl, "g-1", 1, 0, NULL, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_xa_vote(cl, "g-1", 1, 9, NULL, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_str_eq(settle_client_errmsg(cl), "xa vote: unknown vote 9");
	cr_expect_eq(settle_xa_vote(cl, "g-1", 1,
				    SETTLE__V1__XA_VOTE__VOTE_ROLLBACK, err,
				    NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_xa_vote(cl, NULL, 1, SETTLE__V1__XA_VOTE__VOTE_OK,
				    NULL, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(srv.requests, sent);
}

/* RM branches declared at Begin: ids and XIDs from one call; an older
 * cluster (UNIMPLEMENTED, nothing begun) gets a Begin and a REGISTER per
 * branch instead. */
Test(xa_client, begin_with_rm_branches)
{
	struct settle_xa_rm_branch br[2] = {{.rm = "pg"}, {.rm = "maria"}};
	char gid[SETTLE_GID_BUFSIZE];
	uint8_t want[XA_XID_WIRE_MAX];

	cr_assert_eq(
	    settle_xa_begin_rms(cl, "g-7", 3000, br, 2, gid, sizeof(gid)), 0,
	    "%s", settle_client_errmsg(cl));
	cr_assert_eq(srv.requests, 1);
	cr_expect_str_eq(gid, "g-7");
	Settle__V1__BeginRequest *q =
	    last_as(&settle__v1__begin_request__descriptor);
	cr_expect_eq(q->mode, SETTLE__V1__TX_MODE__XA);
	cr_expect_eq(q->timeout_ms, 3000);
	cr_assert_eq(q->n_branches, 2);
	cr_expect_str_eq(q->branches[0]->rm, "pg");
	cr_expect_str_eq(q->branches[1]->rm, "maria");
	cr_expect_str_eq(q->branches[1]->endpoint, "");
	settle__v1__begin_request__free_unpacked(q, NULL);
	for (int i = 0; i < 2; i++) {
		char bq[4];

		snprintf(bq, sizeof(bq), "%d", i + 1);
		cr_expect_eq(br[i].branch_id, (uint32_t)i + 1);
		cr_assert_eq(br[i].xid_len, branch_xid("g-7", bq, want));
		cr_expect_eq(memcmp(br[i].xid, want, br[i].xid_len), 0);
	}

	int before = srv.requests;
	cr_assert_eq(settle_xa_begin_rms(cl, "old", 0, br, 2, NULL, 0), 0, "%s",
		     settle_client_errmsg(cl));
	cr_assert_eq(srv.requests, before + 4, "begin twice, register twice");
	cr_expect_eq(srv.methods[before + 1], SETTLE__V1__METHOD__BEGIN);
	cr_expect_eq(srv.methods[before + 2],
		     SETTLE__V1__METHOD__REGISTER_BRANCH);
	cr_expect_eq(br[1].branch_id, 3, "the fake's REGISTER answer");
	cr_assert_eq(br[1].xid_len, branch_xid("old", "3", want));

	/* Refused locally. */
	before = srv.requests;
	br[1].rm = "no spaces";
	cr_expect_eq(settle_xa_begin_rms(cl, "g-8", 0, br, 2, NULL, 0),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_xa_begin_rms(cl, "g-8", 0, br, 0, NULL, 0),
		     SETTLE_EINVAL);
	cr_expect_eq(srv.requests, before);
}

Test(xa_client, commit_by_initiator_and_its_reports)
{
	int state = 0;

	atomic_store(&drops, 1);
	struct settle_xa_branch_vote votes[2] = {
	    {.branch_id = 1, .vote = SETTLE__V1__XA_VOTE__VOTE_OK},
	    {.branch_id = 2,
	     .vote = SETTLE__V1__XA_VOTE__VOTE_ROLLBACK,
	     .error = "deadlock"},
	};

	cr_assert_eq(
	    settle_xa_commit_by_initiator(cl, "g-1", votes, 2, 5000, &state), 0,
	    "%s", settle_client_errmsg(cl));
	expect_one_cmd_id(0, 2, -1);
	cr_expect_eq(srv.methods[0], SETTLE__V1__METHOD__COMMIT);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	Settle__V1__CommitRequest *q =
	    last_as(&settle__v1__commit_request__descriptor);
	cr_expect_str_eq(q->gid, "g-1");
	cr_expect_eq(q->initiator_phase2_ms, 5000);
	cr_expect(q->one_phase);
	cr_expect_not(q->wait, "answered at once: nothing to wait for");
	cr_assert_eq(q->n_votes, 2);
	cr_expect_eq(q->votes[0]->branch_id, 1);
	cr_expect_eq(q->votes[0]->vote, SETTLE__V1__XA_VOTE__VOTE_OK);
	cr_expect_str_eq(q->votes[0]->error, "");
	cr_expect_eq(q->votes[1]->branch_id, 2);
	cr_expect_eq(q->votes[1]->vote, SETTLE__V1__XA_VOTE__VOTE_ROLLBACK);
	cr_expect_str_eq(q->votes[1]->error, "deadlock");
	settle__v1__commit_request__free_unpacked(q, NULL);

	/* All branches reported at once: branch 0. */
	cr_assert_eq(settle_xa_vote(cl, "g-1", 0,
				    SETTLE__V1__XA_VOTE__PHASE2_COMMITTED, NULL,
				    NULL, NULL),
		     0, "%s", settle_client_errmsg(cl));
	Settle__V1__XaVoteRequest *v =
	    last_as(&settle__v1__xa_vote_request__descriptor);
	cr_expect_eq(v->branch_id, 0);
	cr_expect_eq(v->vote, SETTLE__V1__XA_VOTE__PHASE2_COMMITTED);
	settle__v1__xa_vote_request__free_unpacked(v, NULL);

	/* Refused locally. */
	int sent = srv.requests;
	cr_expect_eq(settle_xa_commit_by_initiator(cl, "g-1", NULL, 0, 0, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_xa_commit_by_initiator(
			 cl, "g-1", NULL, 0, SETTLE_XA_PHASE2_MAX_MS + 1, NULL),
		     SETTLE_EINVAL);
	votes[1].vote = SETTLE__V1__XA_VOTE__PHASE2_COMMITTED;
	cr_expect_eq(
	    settle_xa_commit_by_initiator(cl, "g-1", votes, 2, 100, NULL),
	    SETTLE_EINVAL);
	cr_expect_eq(settle_xa_commit_by_initiator(
			 cl, "g-1", votes, SETTLE_XA_VOTES_MAX + 1, 100, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(
	    settle_xa_commit_by_initiator(cl, NULL, NULL, 0, 100, NULL),
	    SETTLE_EINVAL);
	cr_expect_eq(settle_xa_vote(cl, "g-1", 0,
				    SETTLE__V1__XA_VOTE__ONE_PHASE_COMMITTED,
				    NULL, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(srv.requests, sent);
}

Test(xa_client, prepare_and_commit_one_phase)
{
	int state = 0;
	bool ro = true, fin = true;

	atomic_store(&drops, 1);
	cr_assert_eq(settle_xa_prepare(cl, "g-1", &state, &ro), 0, "%s",
		     settle_client_errmsg(cl));
	expect_one_cmd_id(0, 2, -1);
	cr_expect_eq(srv.methods[0], SETTLE__V1__METHOD__XA_PREPARE);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__XA_PREPARED);
	cr_expect_not(ro);
	Settle__V1__XaPrepareRequest *p =
	    last_as(&settle__v1__xa_prepare_request__descriptor);
	cr_expect_str_eq(p->gid, "g-1");
	settle__v1__xa_prepare_request__free_unpacked(p, NULL);
	cr_assert_eq(settle_xa_prepare(cl, "ro", &state, &ro), 0);
	cr_expect(ro);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(settle_xa_prepare(cl, "ws", NULL, NULL), SETTLE_ESTATE);
	cr_expect_str_eq(settle_client_errmsg(cl),
			 "xa prepare: WRONG_STATE: branch 2 has not voted");

	int before = srv.requests;
	atomic_store(&drops, 1);
	cr_assert_eq(settle_xa_commit(cl, "g-1", true, 250, &state, &fin), 0,
		     "%s", settle_client_errmsg(cl));
	expect_one_cmd_id(before, 2, 0);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_expect_not(fin);
	Settle__V1__CommitRequest *q =
	    last_as(&settle__v1__commit_request__descriptor);
	cr_expect_str_eq(q->gid, "g-1");
	cr_expect(q->one_phase);
	cr_expect(q->wait);
	cr_expect_eq(q->wait_ms, 250);
	settle__v1__commit_request__free_unpacked(q, NULL);

	/* Two-phase from XA_PREPARED, and plain settle_commit(), send no
	 * one_phase. */
	cr_assert_eq(settle_xa_commit(cl, "g-1", false, 0, &state, &fin), 0);
	cr_expect(fin);
	q = last_as(&settle__v1__commit_request__descriptor);
	cr_expect_not(q->one_phase);
	cr_expect_not(q->wait);
	settle__v1__commit_request__free_unpacked(q, NULL);
	cr_assert_eq(settle_commit(cl, "g-1", 0, NULL, NULL), 0);
	q = last_as(&settle__v1__commit_request__descriptor);
	cr_expect_not(q->one_phase);
	settle__v1__commit_request__free_unpacked(q, NULL);
	cr_expect_eq(settle_xa_commit(cl, "ws", true, 0, NULL, NULL),
		     SETTLE_ESTATE);
	cr_expect_eq(settle_xa_commit(cl, NULL, true, 0, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_xa_prepare(cl, "", NULL, NULL), SETTLE_EINVAL);
}

Test(xa_client, recover_pages_by_gid)
{
	struct settle_xa_recovered out[4];
	size_t n = 99;
	bool more = false;
	struct xa_xid x;

	cr_assert_eq(settle_xa_recover(cl, NULL, out, 4, &n, &more), 0, "%s",
		     settle_client_errmsg(cl));
	cr_expect_eq(srv.methods[0], SETTLE__V1__METHOD__XA_RECOVER);
	Settle__V1__XaRecoverRequest *q =
	    last_as(&settle__v1__xa_recover_request__descriptor);
	cr_expect_eq(q->limit, 4);
	cr_expect_str_eq(q->after_gid, "");
	settle__v1__xa_recover_request__free_unpacked(q, NULL);
	cr_assert_eq(n, 2);
	cr_expect(more);
	cr_expect_str_eq(out[0].gid, "xa-1");
	cr_expect_eq(out[0].state, SETTLE__V1__TX_STATE__XA_PREPARED);
	cr_expect_eq(out[0].heuristic, SETTLE__V1__HEURISTIC__HEURISTIC_NONE);
	cr_assert_eq(xa_xid_decode(out[0].xid, out[0].xid_len, &x), 0);
	cr_expect_eq(memcmp(xa_xid_gtrid(&x), "xa-1", 4), 0);
	cr_expect_str_eq(out[1].gid, "xa-2");
	cr_expect_eq(out[1].state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect_eq(out[1].heuristic, SETTLE__V1__HEURISTIC__HEUR_HAZARD);

	cr_assert_eq(settle_xa_recover(cl, out[1].gid, out, 4, &n, NULL), 0);
	q = last_as(&settle__v1__xa_recover_request__descriptor);
	cr_expect_str_eq(q->after_gid, "xa-2");
	settle__v1__xa_recover_request__free_unpacked(q, NULL);
	cr_assert_eq(n, 1);
	cr_expect_str_eq(out[0].gid, "xa-3");
	cr_expect_eq(out[0].heuristic, SETTLE__V1__HEURISTIC__HEUR_MIXED);

	/* More than the room: what fits, and "more". */
	cr_assert_eq(settle_xa_recover(cl, "many", out, 2, &n, &more), 0);
	cr_expect_eq(n, 2);
	cr_expect(more);
	cr_expect_str_eq(out[1].gid, "xa-6");
	/* An entry that cannot be held. */
	cr_expect_eq(settle_xa_recover(cl, "bad", out, 4, &n, &more),
		     SETTLE_EPROTO);
	cr_expect_eq(n, 0);
	cr_expect_eq(settle_xa_recover(cl, "nf", out, 4, &n, &more),
		     SETTLE_ENOTFOUND);
	int sent = srv.requests;
	cr_expect_eq(settle_xa_recover(cl, NULL, NULL, 4, &n, &more),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_xa_recover(cl, NULL, out, 0, &n, &more),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_xa_recover(cl, NULL, out, 4, NULL, &more),
		     SETTLE_EINVAL);
	cr_expect_eq(srv.requests, sent);
	/* Reads carry no cmd_id. */
	cr_expect_eq(srv.cmd_id_lens[0], 0);
}

Test(xa_client, forget_reuses_its_cmd_id_and_maps_errors)
{
	atomic_store(&drops, 1);
	cr_assert_eq(settle_xa_forget(cl, "xa-2"), 0, "%s",
		     settle_client_errmsg(cl));
	expect_one_cmd_id(0, 2, -1);
	cr_expect_eq(srv.methods[0], SETTLE__V1__METHOD__XA_FORGET);
	Settle__V1__XaForgetRequest *q =
	    last_as(&settle__v1__xa_forget_request__descriptor);
	cr_expect_str_eq(q->gid, "xa-2");
	settle__v1__xa_forget_request__free_unpacked(q, NULL);
	cr_expect_eq(settle_xa_forget(cl, "ws"), SETTLE_ESTATE);
	cr_expect_str_eq(settle_client_errmsg(cl),
			 "xa forget: WRONG_STATE: branch 2 has not voted");
	cr_expect_eq(settle_xa_forget(cl, "nf"), SETTLE_ENOTFOUND);
	cr_expect_eq(settle_xa_forget(cl, "inv"), SETTLE_EINVAL);
	cr_expect_eq(settle_xa_forget(cl, ""), SETTLE_EINVAL);
	cr_expect_eq(settle_xa_forget(NULL, "g"), SETTLE_EINVAL);
}

Test(xa_client, begin_maps_exists)
{
	cr_expect_eq(
	    settle_xa_begin(cl, "ex", NULL, 0, false, 0, NULL, 0, NULL),
	    SETTLE_EEXISTS);
	cr_expect_str_eq(settle_client_errmsg(cl),
			 "begin: ALREADY_EXISTS: gid taken");
}

Test(xa_client, names)
{
	cr_expect_str_eq(settle_xa_vote_name(SETTLE__V1__XA_VOTE__VOTE_OK),
			 "VOTE_OK");
	cr_expect_str_eq(
	    settle_xa_vote_name(SETTLE__V1__XA_VOTE__ONE_PHASE_UNKNOWN),
	    "ONE_PHASE_UNKNOWN");
	cr_expect_str_eq(settle_xa_vote_name(99), "UNKNOWN");
	cr_expect_str_eq(settle_xa_vote_name(-1), "UNKNOWN");
	cr_expect_str_eq(
	    settle_heuristic_name(SETTLE__V1__HEURISTIC__HEUR_HAZARD),
	    "HEUR_HAZARD");
	cr_expect_str_eq(
	    settle_heuristic_name(SETTLE__V1__HEURISTIC__HEURISTIC_NONE),
	    "HEURISTIC_NONE");
	cr_expect_str_eq(settle_heuristic_name(5), "UNKNOWN");
	cr_expect_str_eq(
	    settle_tx_state_name(SETTLE__V1__TX_STATE__XA_PREPARED),
	    "XA_PREPARED");
	cr_expect_str_eq(settle_branch_state_name(
			     SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE),
			 "XA_BRANCH_ONE_PHASE");
}

Test(xa_client, heuristic_sends_the_decision_and_reuses_its_cmd_id)
{
	int state = -1, heur = -1;

	atomic_store(&drops, 1);
	cr_assert_eq(settle_xa_heuristic(cl, "xa-c", true, "TM gone (bob)",
					 &state, &heur),
		     0, "%s", settle_client_errmsg(cl));
	cr_assert_eq(srv.requests, 2);
	cr_assert_eq(atomic_load(&heur_n), 2);
	cr_expect_eq(memcmp(heur_ids[0], heur_ids[1], 16), 0,
		     "the retry has another cmd_id");
	cr_expect_eq(srv.methods[0], SETTLE__V1__METHOD__XA_HEURISTIC);
	Settle__V1__XaHeuristicRequest *q =
	    last_as(&settle__v1__xa_heuristic_request__descriptor);
	cr_expect_str_eq(q->gid, "xa-c");
	cr_expect_eq(q->decision, SETTLE__V1__DECISION__DECIDE_COMMIT);
	cr_expect_str_eq(q->reason, "TM gone (bob)");
	settle__v1__xa_heuristic_request__free_unpacked(q, NULL);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTING);
	cr_expect_eq(heur, SETTLE__V1__HEURISTIC__HEUR_COMMIT);

	cr_assert_eq(
	    settle_xa_heuristic(cl, "xa-r", false, "why", &state, NULL), 0);
	cr_assert_eq(atomic_load(&heur_n), 3);
	cr_expect_neq(memcmp(heur_ids[0], heur_ids[2], 16), 0);
	q = last_as(&settle__v1__xa_heuristic_request__descriptor);
	cr_expect_eq(q->decision, SETTLE__V1__DECISION__DECIDE_ROLLBACK);
	settle__v1__xa_heuristic_request__free_unpacked(q, NULL);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__ROLLED_BACK);
	cr_expect_eq(settle_xa_heuristic(cl, "xa-r", false, "why", NULL, NULL),
		     0);
}

Test(xa_client, heuristic_refuses_locally_and_maps_errors)
{
	char big[1100];

	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_expect_eq(settle_xa_heuristic(cl, "g", true, NULL, NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect(strstr(settle_client_errmsg(cl), "reason") != NULL);
	cr_expect_eq(settle_xa_heuristic(cl, "g", true, "", NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_xa_heuristic(cl, "g", false, big, NULL, NULL),
		     SETTLE_ETOOBIG);
	cr_expect_eq(settle_xa_heuristic(cl, "", true, "r", NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_xa_heuristic(NULL, "g", true, "r", NULL, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(srv.requests, 0);
	cr_expect_eq(settle_xa_heuristic(cl, "ws", true, "r", NULL, NULL),
		     SETTLE_ESTATE);
	cr_expect(strstr(settle_client_errmsg(cl), "WRONG_STATE") != NULL, "%s",
		  settle_client_errmsg(cl));
	cr_expect_eq(settle_xa_heuristic(cl, "nf", true, "r", NULL, NULL),
		     SETTLE_ENOTFOUND);
}

Test(xa_client, decide_reports_the_remembered_heuristic)
{
	int state = -1, heur = -1;
	bool finished = false;

	cr_assert_eq(settle_xa_decide(cl, "xa-hc", true, false, NULL, 0, &state,
				      &finished, &heur),
		     0, "%s", settle_client_errmsg(cl));
	cr_expect_eq(srv.methods[0], SETTLE__V1__METHOD__COMMIT);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect(finished);
	cr_expect_eq(heur, SETTLE__V1__HEURISTIC__HEUR_COMMIT);
	cr_assert_eq(settle_xa_decide(cl, "xa-hr", false, false, "tm", 0,
				      &state, NULL, &heur),
		     0);
	cr_expect_eq(srv.methods[1], SETTLE__V1__METHOD__ROLLBACK);
	Settle__V1__RollbackRequest *q =
	    last_as(&settle__v1__rollback_request__descriptor);
	cr_expect_str_eq(q->reason, "tm");
	cr_expect_eq(q->cmd_id.len, 16);
	settle__v1__rollback_request__free_unpacked(q, NULL);
	cr_expect_eq(heur, SETTLE__V1__HEURISTIC__HEUR_ROLLBACK);
	/* No heuristic: NONE. */
	cr_assert_eq(settle_xa_decide(cl, "xa-1", true, true, NULL, 0, &state,
				      NULL, &heur),
		     0);
	cr_expect_eq(heur, SETTLE__V1__HEURISTIC__HEURISTIC_NONE);
	Settle__V1__CommitRequest *c =
	    last_as(&settle__v1__commit_request__descriptor);
	cr_expect(c->one_phase);
	settle__v1__commit_request__free_unpacked(c, NULL);
	cr_expect_eq(
	    settle_xa_decide(cl, "ws", true, false, NULL, 0, NULL, NULL, NULL),
	    SETTLE_ESTATE);
}

/* The blocking initiator client against scripted fake coordinator nodes:
 * leader following, retries with the same cmd_id, error text, budgets. */
#include <pthread.h>

#include <criterion/criterion.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "error.h"

#include "settle.h"

#include "fake_server.h"
#include "log.h"

static struct settle_client_opts fast = {
    .call_timeout_ms = 1000,
    .connect_timeout_ms = 500,
    .retry_budget_ms = 3000,
    .backoff_max_ms = 20,
};

/* Follower: always NOT_LEADER naming the endpoint in s->data. */
static bool follower(struct fake_server *s, int n, const Settle__V1__Frame *f,
		     int *err, const char **msg, const char **leader,
		     ProtobufCMessage **body)
{
	*err = SETTLE_ENOTLEADER;
	*msg = "not the leader";
	*leader = s->data;
	return true;
}

static ProtobufCMessage *begin_resp(const char *gid)
{
	Settle__V1__BeginResponse *r = malloc(sizeof(*r));
	settle__v1__begin_response__init(r);
	r->gid = strdup(gid);
	r->deadline_ms = 42;
	return &r->base;
}

/* Leader that is unavailable once, then loses a reply, then answers. */
static bool flaky_leader(struct fake_server *s, int n,
			 const Settle__V1__Frame *f, int *err, const char **msg,
			 const char **leader, ProtobufCMessage **body)
{
	if (n == 0) {
		*err = SETTLE_EUNAVAIL;
		*msg = "no leader yet";
		return true;
	}
	if (n == 1)
		return false;
	if (f->method == SETTLE__V1__METHOD__BEGIN)
		*body = begin_resp("tx-1");
	return true;
}

Test(client, follows_leader_and_reuses_cmd_id_on_retry)
{
	struct fake_server a, b;
	settle_client *c;
	char gid[SETTLE_GID_BUFSIZE];

	fake_server_start(&b, flaky_leader, NULL);
	fake_server_start(&a, follower, b.endpoint);
	cr_assert_eq(settle_client_open(a.endpoint, &fast, &c), 0);
	cr_assert_eq(settle_begin(c, NULL, 0, gid, sizeof(gid)), 0, "%s",
		     settle_client_errmsg(c));
	cr_expect_str_eq(gid, "tx-1");
	cr_expect_str_eq(settle_client_errmsg(c), "");
	cr_expect_str_eq(settle_client_endpoint(c), b.endpoint);
	cr_assert_eq(b.requests, 3);
	cr_assert_geq(a.requests, 1);
	/* Every attempt of the one logical Begin carried the same cmd_id. */
	for (int i = 0; i < b.requests; i++) {
		cr_assert_eq(b.cmd_id_lens[i], 16);
		cr_expect_eq(memcmp(b.cmd_ids[i], a.cmd_ids[0], 16), 0);
	}
	for (int i = 0; i < a.requests; i++)
		cr_expect_eq(memcmp(a.cmd_ids[i], a.cmd_ids[0], 16), 0);

	/* The next call goes straight to the leader, with a new cmd_id. */
	int a_before = a.requests;
	cr_assert_eq(settle_begin(c, "mine", 0, gid, sizeof(gid)), 0);
	cr_expect_eq(a.requests, a_before);
	cr_assert_eq(b.requests, 4);
	cr_expect_neq(memcmp(b.cmd_ids[3], b.cmd_ids[0], 16), 0);
	settle_client_close(c);
	fake_server_stop(&a);
	fake_server_stop(&b);
}

static bool answer_all(struct fake_server *s, int n, const Settle__V1__Frame *f,
		       int *err, const char **msg, const char **leader,
		       ProtobufCMessage **body)
{
	if (f->method == SETTLE__V1__METHOD__BEGIN) {
		*body = begin_resp("tx-ok");
	} else if (f->method == SETTLE__V1__METHOD__REGISTER_BRANCH) {
		Settle__V1__RegisterBranchResponse *r = malloc(sizeof(*r));
		settle__v1__register_branch_response__init(r);
		r->branch_id = 7;
		*body = &r->base;
	} else if (f->method == SETTLE__V1__METHOD__COMMIT) {
		Settle__V1__CommitRequest *q =
		    settle__v1__commit_request__unpack(NULL, f->body.len,
						       f->body.data);
		cr_assert_not_null(q);
		cr_expect(q->wait);
		cr_expect_eq(q->wait_ms, 250);
		settle__v1__commit_request__free_unpacked(q, NULL);
		Settle__V1__DecisionResponse *r = malloc(sizeof(*r));
		settle__v1__decision_response__init(r);
		r->state = SETTLE__V1__TX_STATE__COMMITTED;
		r->finished = true;
		*body = &r->base;
	} else if (f->method == SETTLE__V1__METHOD__ROLLBACK) {
		*err = SETTLE_ESTATE;
		*msg = "transaction is COMMITTED";
	} else if (f->method == SETTLE__V1__METHOD__QUERY) {
		Settle__V1__QueryResponse *r = malloc(sizeof(*r));
		settle__v1__query_response__init(r);
		r->tx = malloc(sizeof(*r->tx));
		settle__v1__tx_info__init(r->tx);
		r->tx->gid = strdup("tx-ok");
		r->tx->state = SETTLE__V1__TX_STATE__ROLLED_BACK;
		r->tx->reason = strdup("deadline");
		*body = &r->base;
	} else {
		*err = SETTLE_ENOMETHOD;
	}
	return true;
}

Test(client, skips_dead_endpoint_and_runs_every_call)
{
	struct fake_server b;
	settle_client *c;
	char eps[128];
	uint32_t bid = 0;
	int state = 0;
	bool finished = false;
	Settle__V1__TxInfo *tx = NULL;

	fake_server_start(&b, answer_all, NULL);
	/* Port 1 on loopback refuses at once. */
	snprintf(eps, sizeof(eps), "127.0.0.1:1, %s", b.endpoint);
	cr_assert_eq(settle_client_open(eps, &fast, &c), 0);
	cr_assert_eq(settle_register_branch(c, "tx-ok", "127.0.0.1:9", "acct",
					    "x=1", 3, &bid),
		     0, "%s", settle_client_errmsg(c));
	cr_expect_eq(bid, 7);
	cr_assert_eq(settle_commit(c, "tx-ok", 250, &state, &finished), 0);
	cr_expect_eq(state, SETTLE__V1__TX_STATE__COMMITTED);
	cr_expect(finished);

	/* A business error is not retried and reads well. */
	int before = b.requests;
	cr_expect_eq(settle_rollback(c, "tx-ok", "why", 0, NULL, NULL),
		     SETTLE_ESTATE);
	cr_expect_str_eq(settle_client_errmsg(c),
			 "rollback: WRONG_STATE: transaction is COMMITTED");
	cr_expect_eq(b.requests, before + 1);

	cr_assert_eq(settle_query(c, "tx-ok", true, &tx), 0);
	cr_expect_str_eq(tx->gid, "tx-ok");
	cr_expect_str_eq(settle_tx_state_name((int)tx->state), "ROLLED_BACK");
	cr_expect_str_eq(tx->reason, "deadline");
	settle_tx_info_free(tx);

	/* The generic call, to a method the fake does not know. */
	ProtobufCMessage *resp = (ProtobufCMessage *)1;
	cr_expect_eq(
	    settle_client_call(c, SETTLE__V1__METHOD__STATUS, NULL,
			       &settle__v1__status_response__descriptor, &resp),
	    SETTLE_ENOMETHOD);
	cr_expect_null(resp);
	settle_client_close(c);
	fake_server_stop(&b);
}

Test(client, call_at_does_not_follow_the_leader)
{
	struct fake_server a;
	settle_client *c;

	fake_server_start(&a, follower, "127.0.0.1:2");
	cr_assert_eq(settle_client_open("127.0.0.1:1", &fast, &c), 0);
	cr_expect_eq(settle_client_call_at(c, a.endpoint,
					   SETTLE__V1__METHOD__STATUS, NULL,
					   NULL, NULL),
		     SETTLE_ENOTLEADER);
	cr_expect_eq(a.requests, 1);
	cr_expect_str_eq(settle_client_errmsg(c),
			 "status: NOT_LEADER: not the leader");
	settle_client_close(c);
	fake_server_stop(&a);
}

Test(client, gives_up_when_the_budget_is_spent)
{
	struct settle_client_opts o = fast;
	settle_client *c;

	o.retry_budget_ms = 200;
	cr_assert_eq(settle_client_open("127.0.0.1:1,127.0.0.1:2", &o, &c), 0);
	uint64_t t0 = settle_mono_ms();
	cr_expect_eq(settle_commit(c, "g", 0, NULL, NULL), SETTLE_ECONNECT);
	uint64_t took = settle_mono_ms() - t0;
	cr_expect_lt(took, 1500, "took %llu ms", (unsigned long long)took);
	cr_expect_not_null(strstr(settle_client_errmsg(c), "gave up after"),
			   "%s", settle_client_errmsg(c));
	cr_expect_not_null(strstr(settle_client_errmsg(c), "commit: "));
	settle_client_close(c);
}

static bool garbage(struct fake_server *s, int n, const Settle__V1__Frame *f,
		    int *err, const char **msg, const char **leader,
		    ProtobufCMessage **body)
{
	/* An Error message where a BeginResponse belongs: a varint in the
	 * string field 1, which no decoder accepts. */
	Settle__V1__Error *e = malloc(sizeof(*e));
	settle__v1__error__init(e);
	e->code = 3;
	*body = &e->base;
	return true;
}

Test(client, undecodable_response_is_a_protocol_error)
{
	struct fake_server a;
	settle_client *c;
	char gid[8];

	fake_server_start(&a, garbage, NULL);
	cr_assert_eq(settle_client_open(a.endpoint, &fast, &c), 0);
	cr_expect_eq(settle_begin(c, NULL, 0, gid, sizeof(gid)), SETTLE_EPROTO);
	cr_expect_not_null(strstr(settle_client_errmsg(c), "undecodable"));
	settle_client_close(c);
	fake_server_stop(&a);
}

Test(client, rejects_bad_arguments)
{
	settle_client *c;
	const char *bad[] = {"",	",,",  "nohost", "h:",	   "h:abc",
			     "h:99999", ":80", "::1:80", "[::1]80"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_expect_eq(settle_client_open(bad[i], NULL, &c),
			     SETTLE_EINVAL, "%s", bad[i]);
	cr_assert_eq(settle_client_open("[::1]:7000,localhost:7001", NULL, &c),
		     0);
	char big[SETTLE_GID_MAX + 2];
	memset(big, 'g', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_expect_eq(settle_begin(c, big, 0, NULL, 0), SETTLE_EINVAL);
	cr_expect_eq(settle_commit(c, NULL, 0, NULL, NULL), SETTLE_EINVAL);
	cr_expect_str_eq(settle_client_errmsg(c), "commit: gid is required");
	cr_expect_eq(settle_register_branch(c, "g", "h:1", "r", NULL, 5, NULL),
		     SETTLE_EINVAL);
	settle_client_close(c);
	settle_client_close(NULL);
	cr_expect_str_eq(settle_client_errmsg(NULL), "");
}

/* A coordinator that registers declared branches (s->data NULL), one
 * older than them or below feature level 2, which begins without them and
 * takes REGISTER_BRANCH (s->data "old"), or one that answers with fewer
 * ids than declared ("short"). */
static bool begin_branches_node(struct fake_server *s, int n,
				const Settle__V1__Frame *f, int *err,
				const char **msg, const char **leader,
				ProtobufCMessage **body)
{
	(void)err;
	(void)msg;
	(void)leader;
	if (f->method == SETTLE__V1__METHOD__REGISTER_BRANCH) {
		Settle__V1__RegisterBranchRequest *rq =
		    settle__v1__register_branch_request__unpack(
			NULL, f->body.len, f->body.data);
		Settle__V1__RegisterBranchResponse *r = malloc(sizeof(*r));
		cr_assert_not_null(rq);
		cr_expect_str_eq(rq->gid, "tx-d");
		cr_expect_str_eq(rq->endpoint, n == 1 ? "h:1" : "h:2");
		settle__v1__register_branch_request__free_unpacked(rq, NULL);
		settle__v1__register_branch_response__init(r);
		r->branch_id = (uint32_t)n; /* requests 1 and 2 */
		*body = &r->base;
		return true;
	}
	Settle__V1__BeginRequest *q =
	    settle__v1__begin_request__unpack(NULL, f->body.len, f->body.data);
	cr_assert_not_null(q);
	Settle__V1__BeginResponse *r =
	    (Settle__V1__BeginResponse *)begin_resp("tx-d");
	if (s->data == NULL) {
		cr_assert_eq(q->n_branches, 2);
		cr_expect_str_eq(q->branches[0]->endpoint, "h:1");
		cr_expect_str_eq(q->branches[0]->resource, "");
		cr_expect_eq(q->branches[0]->payload.len, 0);
		cr_expect_str_eq(q->branches[1]->resource, "acct");
		cr_expect_eq(q->branches[1]->payload.len, 3);
		r->n_branch_ids = q->n_branches;
		r->branch_ids = calloc(r->n_branch_ids, sizeof(uint32_t));
		for (size_t i = 0; i < r->n_branch_ids; i++)
			r->branch_ids[i] = (uint32_t)(i + 1);
	} else if (strcmp(s->data, "short") == 0) {
		r->n_branch_ids = 1;
		r->branch_ids = calloc(1, sizeof(uint32_t));
		r->branch_ids[0] = 1;
	}
	settle__v1__begin_request__free_unpacked(q, NULL);
	*body = &r->base;
	return true;
}

Test(client, begin_with_branches)
{
	struct fake_server a, old;
	settle_client *c;
	char gid[SETTLE_GID_BUFSIZE];
	uint32_t ids[2] = {0, 0};
	struct settle_branch_decl d[2] = {
	    {.endpoint = "h:1"},
	    {.endpoint = "h:2", .resource = "acct", .payload = "pay", .len = 3},
	};

	fake_server_start(&a, begin_branches_node, NULL);
	cr_assert_eq(settle_client_open(a.endpoint, &fast, &c), 0);
	cr_assert_eq(
	    settle_begin_branches(c, NULL, 0, d, 2, gid, sizeof(gid), ids), 0,
	    "%s", settle_client_errmsg(c));
	cr_expect_str_eq(gid, "tx-d");
	cr_expect_eq(ids[0], 1);
	cr_expect_eq(ids[1], 2);
	/* Checked locally: nothing sent. */
	int sent = a.requests;
	d[1].payload = NULL;
	cr_expect_eq(settle_begin_branches(c, NULL, 0, d, 2, NULL, 0, NULL),
		     SETTLE_EINVAL);
	d[1].payload = "pay";
	d[0].endpoint = NULL;
	cr_expect_eq(settle_begin_branches(c, NULL, 0, d, 2, NULL, 0, NULL),
		     SETTLE_EINVAL);
	cr_expect_neq(strstr(settle_client_errmsg(c), "branch 0"), NULL, "%s",
		      settle_client_errmsg(c));
	d[0].endpoint = "h:1";
	cr_expect_eq(settle_begin_branches(
			 c, NULL, 0, d, SETTLE_MAX_BRANCHES + 1, NULL, 0, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(settle_begin_branches(c, NULL, 0, NULL, 1, NULL, 0, NULL),
		     SETTLE_EINVAL);
	cr_expect_eq(a.requests, sent);
	settle_client_close(c);

	/* An older coordinator (or a cluster below feature level 2) begins
	 * without them: the client registers them, with the same ids. */
	fake_server_start(&old, begin_branches_node, "old");
	cr_assert_eq(settle_client_open(old.endpoint, &fast, &c), 0);
	ids[0] = ids[1] = 0;
	cr_expect_eq(
	    settle_begin_branches(c, NULL, 0, d, 2, gid, sizeof(gid), ids), 0,
	    "%s", settle_client_errmsg(c));
	cr_expect_str_eq(gid, "tx-d");
	cr_expect_eq(ids[0], 1);
	cr_expect_eq(ids[1], 2);
	cr_assert_eq(old.requests, 3);
	cr_expect_eq(old.methods[1], SETTLE__V1__METHOD__REGISTER_BRANCH);
	cr_expect_eq(old.methods[2], SETTLE__V1__METHOD__REGISTER_BRANCH);
	/* Without branches it is the plain Begin. */
	cr_expect_eq(
	    settle_begin_branches(c, NULL, 0, NULL, 0, gid, sizeof(gid), NULL),
	    0);
	settle_client_close(c);
	fake_server_stop(&old);

	/* Another number of ids than declared: said, not guessed. */
	fake_server_start(&old, begin_branches_node, "short");
	cr_assert_eq(settle_client_open(old.endpoint, &fast, &c), 0);
	cr_expect_eq(
	    settle_begin_branches(c, NULL, 0, d, 2, gid, sizeof(gid), ids),
	    SETTLE_EPROTO);
	cr_expect_neq(strstr(settle_client_errmsg(c), "1 of 2"), NULL, "%s",
		      settle_client_errmsg(c));
	settle_client_close(c);
	fake_server_stop(&a);
	fake_server_stop(&old);
}

Test(client, cmd_ids_are_random)
{
	uint8_t a[16], b[16];
	cr_assert_eq(settle_cmd_id(a), 0);
	cr_assert_eq(settle_cmd_id(b), 0);
	cr_expect_neq(memcmp(a, b, 16), 0);
}

int pub_lookup(const char *name);

Test(client, every_internal_error_code_is_public)
{
#define CHECK(name, value, wire, text)                                         \
	cr_expect_eq(pub_lookup(#name), value, "settle.h lacks SETTLE_E" #name);
	SETTLE_ERRNO_MAP(CHECK)
#undef CHECK
}

/* settle_client_call_at() keeps its connection for the next call to the
 * same endpoint, and reopens one the peer closed meanwhile before sending. */
Test(client, call_at_keeps_its_connection)
{
	struct fake_server a;
	settle_client *c;
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;

	fake_server_start(&a, answer_all, NULL);
	cr_assert_eq(settle_client_open(a.endpoint, &fast, &c), 0);
	for (int i = 0; i < 3; i++)
		cr_expect_eq(settle_client_call_at(c, a.endpoint,
						   SETTLE__V1__METHOD__BEGIN,
						   &req.base, NULL, NULL),
			     0, "%s", settle_client_errmsg(c));
	cr_expect_eq(a.requests, 3);
	cr_expect_eq(a.accepts, 1, "one connection for three calls");
	/* The peer closes after its next answer: the call after it must
	 * not be sent into the dead connection. (The pause: the server is
	 * back reading, past its check of the flag for the last answer.) */
	usleep(100 * 1000);
	a.close_after_answer = true;
	cr_expect_eq(settle_client_call_at(c, a.endpoint,
					   SETTLE__V1__METHOD__BEGIN, &req.base,
					   NULL, NULL),
		     0, "%s", settle_client_errmsg(c));
	usleep(100 * 1000); /* the close reaches us */
	a.close_after_answer = false;
	cr_expect_eq(settle_client_call_at(c, a.endpoint,
					   SETTLE__V1__METHOD__BEGIN, &req.base,
					   NULL, NULL),
		     0, "%s", settle_client_errmsg(c));
	cr_expect_eq(a.requests, 5);
	cr_expect_eq(a.accepts, 2);
	settle_client_close(c);
	fake_server_stop(&a);
}

/* cmd ids grow with time (unix ms in their first 6 bytes), so the
 * coordinator's table of them is written at its end; the other 10 bytes
 * are random. */
Test(client, cmd_ids_begin_with_the_time)
{
	uint8_t id[16], prev[16] = {0};
	struct timespec ts;
	int differ = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t now =
	    (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	for (int i = 0; i < 1000; i++) {
		cr_assert_eq(settle_cmd_id(id), 0);
		uint64_t ms = 0;
		for (int k = 0; k < 6; k++)
			ms = ms << 8 | id[k];
		cr_assert(ms >= now && ms < now + 5000, "prefix %llu, now %llu",
			  (unsigned long long)ms, (unsigned long long)now);
		/* Time and count: strictly increasing. */
		cr_assert_gt(memcmp(id, prev, 8), 0, "id %d not after the last",
			     i);
		differ += memcmp(id + 8, prev + 8, 8) != 0;
		memcpy(prev, id, sizeof id);
	}
	cr_expect_eq(differ, 1000, "the random part repeated");
}

#define ID_THREADS 4
#define ID_EACH	   5000

static void *make_ids(void *arg)
{
	uint8_t(*ids)[16] = arg;
	for (int i = 0; i < ID_EACH; i++)
		if (settle_cmd_id(ids[i]) != 0)
			return (void *)1;
	return NULL;
}

static int cmp_prefix(const void *a, const void *b)
{
	return memcmp(a, b, 8);
}

/* Threads drawing ids at once never get the same time and count, and
 * each gets its own in increasing order. */
Test(client, cmd_ids_of_threads_never_share_time_and_count)
{
	static uint8_t ids[ID_THREADS * ID_EACH][16];
	pthread_t t[ID_THREADS];
	for (int i = 0; i < ID_THREADS; i++)
		cr_assert_eq(
		    pthread_create(&t[i], NULL, make_ids, ids[i * ID_EACH]), 0);
	for (int i = 0; i < ID_THREADS; i++) {
		void *rv;
		cr_assert_eq(pthread_join(t[i], &rv), 0);
		cr_assert_null(rv);
		for (int j = 1; j < ID_EACH; j++)
			cr_assert_gt(memcmp(ids[i * ID_EACH + j],
					    ids[i * ID_EACH + j - 1], 8),
				     0);
	}
	qsort(ids, ID_THREADS * ID_EACH, 16, cmp_prefix);
	for (int j = 1; j < ID_THREADS * ID_EACH; j++)
		cr_assert_neq(memcmp(ids[j], ids[j - 1], 8), 0,
			      "two ids with the same time and count");
}

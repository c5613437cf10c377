#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <raft.h>

#include "error.h"
#include "wal/entry.h"

static uint8_t ID[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

static void reg(Settle__V1__Command *c, Settle__V1__CmdRegister *r,
		const char *payload, size_t plen)
{
	settle__v1__command__init(c);
	settle__v1__cmd_register__init(r);
	c->cmd_id.data = ID;
	c->cmd_id.len = 16;
	c->time_ms = 1234;
	r->gid = "gid-1";
	r->endpoint = "127.0.0.1:9000";
	r->resource = "acct";
	r->payload.data = (uint8_t *)payload;
	r->payload.len = plen;
	c->op_case = SETTLE__V1__COMMAND__OP_REGISTER;
	c->register_ = r;
}

Test(entry, size_is_always_a_multiple_of_8_and_round_trips)
{
	char payload[64];
	memset(payload, 'p', sizeof payload);
	for (size_t plen = 0; plen <= sizeof payload; plen++) {
		Settle__V1__Command c;
		Settle__V1__CmdRegister r;
		reg(&c, &r, payload, plen);
		uint8_t *buf;
		size_t len;
		cr_assert_eq(wal_entry_encode(&c, &buf, &len), 0);
		cr_assert_eq(len % 8, 0, "len %zu", len);
		size_t n = settle__v1__command__get_packed_size(&c);
		cr_assert_eq(len, (4 + n + 7) / 8 * 8);
		for (size_t i = 4 + n; i < len; i++)
			cr_assert_eq(buf[i], 0);
		Settle__V1__Command *d;
		cr_assert_eq(wal_entry_decode(buf, len, &d), 0);
		cr_assert_eq(d->op_case, SETTLE__V1__COMMAND__OP_REGISTER);
		cr_expect_eq(d->time_ms, 1234);
		cr_expect_str_eq(d->register_->gid, "gid-1");
		cr_expect_eq(d->register_->payload.len, plen);
		cr_expect_eq(memcmp(d->cmd_id.data, ID, 16), 0);
		settle__v1__command__free_unpacked(d, NULL);
		raft_free(buf);
	}
}

Test(entry, truncation_padding_and_garbage_are_rejected)
{
	Settle__V1__Command c;
	Settle__V1__CmdRegister r;
	reg(&c, &r, "abc", 3);
	uint8_t *buf;
	size_t len;
	cr_assert_eq(wal_entry_encode(&c, &buf, &len), 0);
	Settle__V1__Command *d;
	for (size_t n = 0; n < len; n++)
		cr_expect_eq(wal_entry_decode(buf, n, &d), SETTLE_EPROTO,
			     "truncated to %zu", n);
	cr_expect_eq(wal_entry_decode(NULL, 0, &d), SETTLE_EPROTO);
	uint8_t *big = calloc(1, len + 8);
	memcpy(big, buf, len);
	/* Extra padding beyond the next multiple of 8. */
	cr_expect_eq(wal_entry_decode(big, len + 8, &d), SETTLE_EPROTO);
	size_t n = settle__v1__command__get_packed_size(&c);
	if (4 + n < len) {
		/* Non-zero padding byte. */
		memcpy(big, buf, len);
		big[len - 1] = 1;
		cr_expect_eq(wal_entry_decode(big, len, &d), SETTLE_EPROTO);
	}
	/* A length prefix pointing past the end. */
	memcpy(big, buf, len);
	big[0] = 0xff;
	big[1] = 0xff;
	cr_expect_eq(wal_entry_decode(big, len, &d), SETTLE_EPROTO);
	/* Bytes that are not a Command: a field with a truncated varint. */
	memset(big, 0, len + 8);
	big[0] = 4;
	big[4] = 0x10;
	big[5] = 0xff;
	big[6] = 0xff;
	big[7] = 0xff;
	cr_expect_eq(wal_entry_decode(big, 8, &d), SETTLE_EPROTO);
	/* All 0xff. */
	memset(big, 0xff, len + 8);
	cr_expect_eq(wal_entry_decode(big, len, &d), SETTLE_EPROTO);
	free(big);
	raft_free(buf);
}

Test(entry, random_garbage_never_crashes)
{
	uint8_t buf[64];
	unsigned seed = 7;
	for (int i = 0; i < 20000; i++) {
		size_t len = 8 * (1 + rand_r(&seed) % 8);
		for (size_t j = 0; j < len; j++)
			buf[j] = (uint8_t)rand_r(&seed);
		buf[0] = (uint8_t)(rand_r(&seed) % 60);
		buf[1] = buf[2] = buf[3] = 0;
		Settle__V1__Command *d;
		int rv = wal_entry_decode(buf, len, &d);
		cr_assert(rv == 0 || rv == SETTLE_EPROTO);
		if (rv == 0) {
			(void)wal_command_validate(d, NULL, 0);
			settle__v1__command__free_unpacked(d, NULL);
		}
	}
}

Test(entry, oversized_command_is_refused)
{
	size_t plen = WAL_ENTRY_MAX;
	char *payload = calloc(1, plen);
	Settle__V1__Command c;
	Settle__V1__CmdRegister r;
	reg(&c, &r, payload, plen);
	uint8_t *buf;
	size_t len;
	cr_expect_eq(wal_entry_encode(&c, &buf, &len), SETTLE_ETOOBIG);
	char msg[128];
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_ETOOBIG);
	cr_expect_neq(strstr(msg, "payload"), NULL, "%s", msg);
	free(payload);
}

Test(entry, gid_rules)
{
	char g[200];
	cr_expect_eq(wal_gid_validate("a"), 0);
	cr_expect_eq(wal_gid_validate("order-42/x:y~"), 0);
	cr_expect_eq(wal_gid_validate(""), SETTLE_EINVAL);
	cr_expect_eq(wal_gid_validate(NULL), SETTLE_EINVAL);
	cr_expect_eq(wal_gid_validate("a b"), SETTLE_EINVAL);
	cr_expect_eq(wal_gid_validate("a\tb"), SETTLE_EINVAL);
	cr_expect_eq(wal_gid_validate("caf\xc3\xa9"), SETTLE_EINVAL);
	cr_expect_eq(wal_gid_validate("a\x7f"), SETTLE_EINVAL);
	memset(g, 'x', 128);
	g[128] = 0;
	cr_expect_eq(wal_gid_validate(g), 0);
	g[128] = 'x';
	g[129] = 0;
	cr_expect_eq(wal_gid_validate(g), SETTLE_EINVAL);
}

Test(entry, endpoint_rules)
{
	const char *good[] = {"127.0.0.1:1", "localhost:65535", "a-b.c_d:80",
			      "[::1]:9000", "[fe80::1:2]:7"};
	const char *bad[] = {
	    "",	       "host",	   ":80",     "host:", "host:0", "host:65536",
	    "host:08", "ho st:1",  "host:1x", "[::1]", "[]:80",	 "[::g]:80",
	    "[::1]80", "h:123456", "h/x:80",  "h:-1"};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		cr_expect_eq(wal_endpoint_validate(good[i]), 0, "%s", good[i]);
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		cr_expect_eq(wal_endpoint_validate(bad[i]), SETTLE_EINVAL, "%s",
			     bad[i]);
	char ep[300];
	memset(ep, 'h', 260);
	strcpy(ep + 260, ":80");
	cr_expect_eq(wal_endpoint_validate(ep), SETTLE_EINVAL);
	cr_expect_eq(wal_endpoint_validate(NULL), SETTLE_EINVAL);
}

Test(entry, validate_each_op)
{
	Settle__V1__Command c;
	Settle__V1__CmdRegister r;
	char msg[256];
	reg(&c, &r, "x", 1);
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), 0, "%s", msg);

	c.cmd_id.len = 15;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect_neq(strstr(msg, "cmd_id"), NULL);
	c.cmd_id.len = 16;
	c.time_ms = 0;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	c.time_ms = 1;
	r.gid = "bad gid";
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect_neq(strstr(msg, "gid"), NULL);
	r.gid = "g";
	r.endpoint = "nope";
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	r.endpoint = "h:1";
	char res[300];
	memset(res, 'r', 257);
	res[257] = 0;
	r.resource = res;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_ETOOBIG);
	res[256] = 0;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), 0);
	r.payload.len = WAL_PAYLOAD_MAX + 1;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_ETOOBIG);
	r.payload.len = 1;

	c.op_case = SETTLE__V1__COMMAND__OP__NOT_SET;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);

	Settle__V1__CmdBegin b;
	settle__v1__cmd_begin__init(&b);
	c.op_case = SETTLE__V1__COMMAND__OP_BEGIN;
	c.begin = &b;
	b.gid = "g";
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	b.deadline_ms = 10;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), 0);
	b.mode = 7;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);

	Settle__V1__CmdDecide d;
	settle__v1__cmd_decide__init(&d);
	c.op_case = SETTLE__V1__COMMAND__OP_DECIDE;
	c.decide = &d;
	d.gid = "g";
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	d.decision = SETTLE__V1__DECISION__DECIDE_ROLLBACK;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), 0);
	char longtext[WAL_TEXT_MAX + 2];
	memset(longtext, 'e', sizeof longtext - 1);
	longtext[sizeof longtext - 1] = 0;
	d.reason = longtext;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_ETOOBIG);

	Settle__V1__CmdBranchResult br;
	settle__v1__cmd_branch_result__init(&br);
	c.op_case = SETTLE__V1__COMMAND__OP_BRANCH_RESULT;
	c.branch_result = &br;
	br.gid = "g";
	br.phase = SETTLE__V1__BRANCH_STATE__CONFIRMING;
	br.outcome = SETTLE__V1__OUTCOME__OUTCOME_OK;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	br.branch_id = 1;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), 0);
	br.phase = SETTLE__V1__BRANCH_STATE__REGISTERED;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	br.phase = SETTLE__V1__BRANCH_STATE__CANCELLING;
	br.outcome = 0;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);

	Settle__V1__CmdGc g;
	settle__v1__cmd_gc__init(&g);
	c.op_case = SETTLE__V1__COMMAND__OP_GC;
	c.gc = &g;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	g.limit = 10;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), 0);
	g.limit = WAL_GC_LIMIT_MAX + 1;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
}

/* Branches declared by a begin (issue 12): the limits of REGISTER_BRANCH
 * per branch, TCC only, at most WAL_MAX_BRANCHES, all in one entry. */
Test(entry, begin_branches_rules)
{
	Settle__V1__Command c;
	Settle__V1__CmdRegister r;
	Settle__V1__CmdBegin b;
	Settle__V1__BranchDecl d[2], *dp[2] = {&d[0], &d[1]};
	char msg[256];

	reg(&c, &r, "x", 1);
	settle__v1__cmd_begin__init(&b);
	c.op_case = SETTLE__V1__COMMAND__OP_BEGIN;
	c.begin = &b;
	b.gid = "g";
	b.deadline_ms = 10;
	for (int i = 0; i < 2; i++) {
		settle__v1__branch_decl__init(&d[i]);
		d[i].endpoint = "h:1";
		d[i].resource = "acct";
	}
	b.n_branches = 2;
	b.branches = dp;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), 0, "%s", msg);
	b.mode = SETTLE__V1__TX_MODE__TCC;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), 0, "%s", msg);
	b.mode = SETTLE__V1__TX_MODE__XA;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect_neq(strstr(msg, "branches"), NULL, "%s", msg);
	b.mode = SETTLE__V1__TX_MODE__TCC;

	d[1].endpoint = "nope";
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_EINVAL);
	cr_expect_neq(strstr(msg, "branches[1].endpoint"), NULL, "%s", msg);
	d[1].endpoint = "h:1";
	char res[300];
	memset(res, 'r', 257);
	res[257] = 0;
	d[0].resource = res;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_ETOOBIG);
	cr_expect_neq(strstr(msg, "branches[0].resource"), NULL, "%s", msg);
	d[0].resource = "acct";

	/* One payload at the limit passes; over it, or two big ones that
	 * together are over an entry, do not. */
	uint8_t *big = calloc(1, WAL_PAYLOAD_MAX + 1);
	cr_assert_not_null(big);
	d[0].payload.data = big;
	d[0].payload.len = WAL_PAYLOAD_MAX;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), 0, "%s", msg);
	d[0].payload.len = WAL_PAYLOAD_MAX + 1;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_ETOOBIG);
	cr_expect_neq(strstr(msg, "branches[0].payload"), NULL, "%s", msg);
	d[0].payload.len = WAL_PAYLOAD_MAX / 2 + 1;
	d[1].payload.data = big;
	d[1].payload.len = WAL_PAYLOAD_MAX / 2 + 1;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), 0, "%s", msg);
	d[1].payload.len = WAL_PAYLOAD_MAX;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_ETOOBIG);
	cr_expect_neq(strstr(msg, "entry"), NULL, "%s", msg);
	free(big);
	d[0].payload.len = d[1].payload.len = 0;

	/* More than a transaction may have. */
	size_t n = WAL_MAX_BRANCHES + 1;
	Settle__V1__BranchDecl **many = calloc(n, sizeof *many);
	cr_assert_not_null(many);
	for (size_t i = 0; i < n; i++)
		many[i] = &d[0];
	b.branches = many;
	b.n_branches = WAL_MAX_BRANCHES;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), 0, "%s", msg);
	b.n_branches = n;
	cr_expect_eq(wal_command_validate(&c, msg, sizeof msg), SETTLE_ETOOBIG);
	cr_expect_neq(strstr(msg, "branches"), NULL, "%s", msg);
	free(many);
}

/* The request digest a cmd_id's row keeps (issue 11): a retry that only
 * waits differently is the same request; any change of method, gid or
 * content is another. */
Test(entry, request_digest_rules)
{
	Settle__V1__CommitRequest c = SETTLE__V1__COMMIT_REQUEST__INIT;
	uint8_t other[16] = {9};
	uint64_t d;

	c.cmd_id.data = ID;
	c.cmd_id.len = 16;
	c.gid = "g-a";
	d = wal_request_digest(SETTLE__V1__METHOD__COMMIT, &c.base);
	cr_expect_neq(d, 0);
	c.wait = 1;
	c.wait_ms = 5000;
	cr_expect_eq(wal_request_digest(SETTLE__V1__METHOD__COMMIT, &c.base), d,
		     "wait and wait_ms say how to answer, not what to do");
	c.cmd_id.data = other;
	cr_expect_eq(wal_request_digest(SETTLE__V1__METHOD__COMMIT, &c.base),
		     d);
	cr_expect_eq(c.wait_ms, 5000, "the request is not changed");
	cr_expect_eq(c.cmd_id.data, other);
	c.gid = "g-b";
	cr_expect_neq(wal_request_digest(SETTLE__V1__METHOD__COMMIT, &c.base),
		      d);
	c.gid = "g-a";
	c.one_phase = 1;
	cr_expect_neq(wal_request_digest(SETTLE__V1__METHOD__COMMIT, &c.base),
		      d);
	c.one_phase = 0;
	/* Another method with the same bytes is another request. */
	cr_expect_neq(wal_request_digest(SETTLE__V1__METHOD__ROLLBACK, &c.base),
		      d);

	/* The payload counts; fields in another order on the wire do not. */
	Settle__V1__RegisterBranchRequest r =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	r.cmd_id.data = ID;
	r.cmd_id.len = 16;
	r.gid = "g-a";
	r.endpoint = "h:1";
	r.payload.data = (uint8_t *)"pay-1";
	r.payload.len = 5;
	uint64_t rd =
	    wal_request_digest(SETTLE__V1__METHOD__REGISTER_BRANCH, &r.base);
	r.payload.data = (uint8_t *)"pay-2";
	cr_expect_neq(
	    wal_request_digest(SETTLE__V1__METHOD__REGISTER_BRANCH, &r.base),
	    rd);
	/* gid (2) "g-a", payload (5) "pay-1", endpoint (3) "h:1" */
	static const uint8_t shuffled[] = {0x12, 3,   'g', '-', 'a', 0x2a,
					   5,	 'p', 'a', 'y', '-', '1',
					   0x1a, 3,   'h', ':', '1'};
	Settle__V1__RegisterBranchRequest *u =
	    settle__v1__register_branch_request__unpack(NULL, sizeof shuffled,
							shuffled);
	cr_assert_not_null(u);
	cr_expect_eq(
	    wal_request_digest(SETTLE__V1__METHOD__REGISTER_BRANCH, &u->base),
	    rd);
	settle__v1__register_branch_request__free_unpacked(u, NULL);

	/* A begin's declared branches are part of the request. */
	Settle__V1__BeginRequest bq = SETTLE__V1__BEGIN_REQUEST__INIT;
	Settle__V1__BranchDecl bd = SETTLE__V1__BRANCH_DECL__INIT,
			       *bdp[2] = {&bd, &bd};
	bq.cmd_id.data = ID;
	bq.cmd_id.len = 16;
	bq.gid = "g-a";
	uint64_t none = wal_request_digest(SETTLE__V1__METHOD__BEGIN, &bq.base);
	bd.endpoint = "h:1";
	bd.payload.data = (uint8_t *)"pay-1";
	bd.payload.len = 5;
	bq.branches = bdp;
	bq.n_branches = 1;
	uint64_t one = wal_request_digest(SETTLE__V1__METHOD__BEGIN, &bq.base);
	cr_expect_neq(one, none);
	bq.n_branches = 2;
	cr_expect_neq(wal_request_digest(SETTLE__V1__METHOD__BEGIN, &bq.base),
		      one);
	bq.n_branches = 1;
	bd.payload.data = (uint8_t *)"pay-2";
	cr_expect_neq(wal_request_digest(SETTLE__V1__METHOD__BEGIN, &bq.base),
		      one);
	bd.payload.data = (uint8_t *)"pay-1";
	cr_expect_eq(wal_request_digest(SETTLE__V1__METHOD__BEGIN, &bq.base),
		     one);
}

/* Every request message with a cmd_id fits the digest's copy. */
Test(entry, request_digest_covers_every_request)
{
	const ProtobufCMessageDescriptor *d[] = {
	    &settle__v1__begin_request__descriptor,
	    &settle__v1__register_branch_request__descriptor,
	    &settle__v1__commit_request__descriptor,
	    &settle__v1__rollback_request__descriptor,
	    &settle__v1__submit_saga_request__descriptor,
	    &settle__v1__tx_retry_request__descriptor,
	    &settle__v1__tx_resolve_request__descriptor,
	    &settle__v1__xa_vote_request__descriptor,
	    &settle__v1__xa_prepare_request__descriptor,
	    &settle__v1__xa_forget_request__descriptor,
	    &settle__v1__xa_heuristic_request__descriptor,
	};
	for (size_t i = 0; i < sizeof d / sizeof d[0]; i++) {
		ProtobufCMessage *m = calloc(1, d[i]->sizeof_message);
		cr_assert_not_null(m);
		d[i]->message_init(m);
		cr_expect_neq(wal_request_digest(1, m), 0, "%s", d[i]->name);
		cr_expect_not_null(
		    protobuf_c_message_descriptor_get_field_by_name(d[i],
								    "cmd_id"),
		    "%s", d[i]->name);
		free(m);
	}
}

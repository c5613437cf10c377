/* CmdMember: validation, and apply into the members table through the FSM. */
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "fsm_helpers.h"
#include "wal/members.h"

static struct tfsm T;

static void setup(void)
{
	tfsm_open(&T);
}

static void teardown(void)
{
	tfsm_close(&T);
}

TestSuite(member_apply, .init = setup, .fini = teardown);

static struct ent ent_member_by(int id, uint64_t time, uint64_t node,
				const char *raft, const char *client,
				bool remove, const char *asked_by)
{
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdMember m = SETTLE__V1__CMD_MEMBER__INIT;
	uint8_t idb[16];

	memset(idb, 0x22, sizeof idb);
	memcpy(idb, &id, sizeof id);
	c.cmd_id.data = idb;
	c.cmd_id.len = 16;
	c.time_ms = time;
	m.id = node;
	m.raft_address = (char *)raft;
	m.client_endpoint = (char *)client;
	m.remove = remove;
	m.asked_by = (char *)asked_by;
	c.op_case = SETTLE__V1__COMMAND__OP_MEMBER;
	c.member = &m;
	return ent_cmd(&c);
}

static struct ent ent_member(int id, uint64_t time, uint64_t node,
			     const char *raft, const char *client, bool remove)
{
	return ent_member_by(id, time, node, raft, client, remove, "");
}

Test(member_apply, validate)
{
	Settle__V1__CmdMember m = SETTLE__V1__CMD_MEMBER__INIT;
	char msg[128];

	m.id = 4;
	m.raft_address = "10.0.0.4:7401";
	m.client_endpoint = "[::1]:7400";
	cr_assert_eq(wal_member_validate(&m, msg, sizeof msg), 0);
	m.id = 0;
	cr_assert_eq(wal_member_validate(&m, msg, sizeof msg), SETTLE_EINVAL);
	cr_assert(strstr(msg, "id") != NULL, "%s", msg);
	m.id = 4;
	m.raft_address = "no-port";
	cr_assert_eq(wal_member_validate(&m, msg, sizeof msg), SETTLE_EINVAL);
	cr_assert(strstr(msg, "raft_address") != NULL, "%s", msg);
	m.raft_address = "h:1";
	m.client_endpoint = "h:70000";
	cr_assert_eq(wal_member_validate(&m, msg, sizeof msg), SETTLE_EINVAL);
	cr_assert(strstr(msg, "client_endpoint") != NULL, "%s", msg);
	/* Forgetting a node needs only its id. */
	m.remove = true;
	m.raft_address = "";
	m.client_endpoint = "";
	cr_assert_eq(wal_member_validate(&m, NULL, 0), 0);
	cr_assert_eq(wal_member_validate(NULL, NULL, 0), SETTLE_EINVAL);
}

Test(member_apply, add_replace_remove)
{
	Settle__V1__MemberRecord *m = NULL;
	struct store *s = T.t.s;

	cr_assert_eq(
	    tfsm_code(&T, ent_member(1, 100, 4, "h4:7401", "h4:7400", false)),
	    SETTLE__V1__CODE__OK);
	cr_assert_eq(store_member_get(s, NULL, 4, &m), 0);
	cr_assert_str_eq(m->raft_address, "h4:7401");
	cr_assert_str_eq(m->client_endpoint, "h4:7400");
	cr_assert_eq(m->updated_ms, 100, "stamped with the command's time");
	settle__v1__member_record__free_unpacked(m, NULL);

	cr_assert_eq(
	    tfsm_code(&T, ent_member(2, 200, 4, "h9:7401", "h9:7400", false)),
	    SETTLE__V1__CODE__OK);
	cr_assert_eq(store_member_get(s, NULL, 4, &m), 0);
	cr_assert_str_eq(m->client_endpoint, "h9:7400");
	settle__v1__member_record__free_unpacked(m, NULL);

	cr_assert_eq(tfsm_code(&T, ent_member(3, 300, 4, "", "", true)),
		     SETTLE__V1__CODE__OK);
	cr_assert_eq(store_member_get(s, NULL, 4, &m), SETTLE_ENOTFOUND);
	/* Forgetting twice is fine: the command is idempotent. */
	cr_assert_eq(tfsm_code(&T, ent_member(4, 400, 4, "", "", true)),
		     SETTLE__V1__CODE__OK);
	/* No transaction changed. */
	cr_assert_eq(T.changes, 0);
}

Test(member_apply, invalid_is_a_noop_with_an_error)
{
	Settle__V1__CmdResult *r;
	Settle__V1__MemberRecord **all = NULL;
	size_t n = 9;

	r = tfsm_res(&T, ent_member(1, 100, 0, "h:1", "h:2", false));
	cr_assert_eq(r->code, SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_assert(strstr(r->message, "id") != NULL, "%s", r->message);
	settle__v1__cmd_result__free_unpacked(r, NULL);
	cr_assert_eq(tfsm_code(&T, ent_member(2, 100, 5, "bad", "h:2", false)),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_assert_eq(store_members_list(T.t.s, NULL, &all, &n), 0);
	cr_assert_eq(n, 0);
	/* The applied index moved on all the same. */
	uint64_t applied = 0;
	cr_assert_eq(store_applied_get(T.t.s, NULL, &applied), 0);
	cr_assert_eq(applied, T.index);
}

Test(member_apply, repeated_cmd_id_applies_once)
{
	Settle__V1__MemberRecord *m = NULL;

	cr_assert_eq(tfsm_code(&T, ent_member(7, 100, 4, "a:1", "a:2", false)),
		     SETTLE__V1__CODE__OK);
	cr_assert_eq(tfsm_code(&T, ent_member(8, 200, 4, "", "", true)),
		     SETTLE__V1__CODE__OK);
	/* A retry of the first command (same id, later index) must not
	 * bring the forgotten row back. */
	cr_assert_eq(tfsm_code(&T, ent_member(7, 100, 4, "a:1", "a:2", false)),
		     SETTLE__V1__CODE__OK);
	cr_assert_eq(store_member_get(T.t.s, NULL, 4, &m), SETTLE_ENOTFOUND);
}

/* Feature level 8: the operator's addition records who asked; the
 * directory's own rewrite keeps it; the operator's removal leaves the row
 * as the record of the removal, which is no member any more. */
Test(member_apply, who_added_and_who_removed_a_node)
{
	Settle__V1__MemberRecord *m = NULL, **all = NULL;
	struct store *s = T.t.s;
	size_t n = 0;

	cr_assert_eq(
	    tfsm_code(&T, ent_member_by(1, 100, 4, "h4:7401", "h4:7400", false,
					"certificate admin")),
	    SETTLE__V1__CODE__OK);
	cr_assert_eq(
	    tfsm_code(&T, ent_member(2, 150, 4, "h5:7401", "h5:7400", false)),
	    SETTLE__V1__CODE__OK);
	cr_assert_eq(store_member_get(s, NULL, 4, &m), 0);
	cr_expect_str_eq(m->added_by, "certificate admin");
	cr_expect_eq(m->added_ms, 100);
	cr_expect_str_eq(m->client_endpoint, "h5:7400");
	cr_expect_eq(m->removed_ms, 0);
	settle__v1__member_record__free_unpacked(m, NULL);

	cr_assert_eq(tfsm_code(&T, ent_member_by(3, 300, 4, "", "", true,
						 "certificate ops")),
		     SETTLE__V1__CODE__OK);
	cr_expect_eq(store_member_get(s, NULL, 4, &m), SETTLE_ENOTFOUND,
		     "a removed node is no member");
	cr_assert_eq(store_members_list(s, NULL, &all, &n), 0);
	cr_expect_eq(n, 0);
	store_members_free(all, n);
	cr_assert_eq(store_members_removed(s, NULL, &all, &n), 0);
	cr_assert_eq(n, 1);
	cr_expect_eq(all[0]->id, 4);
	cr_expect_str_eq(all[0]->raft_address, "h5:7401");
	cr_expect_str_eq(all[0]->added_by, "certificate admin");
	cr_expect_str_eq(all[0]->removed_by, "certificate ops");
	cr_expect_eq(all[0]->removed_ms, 300);
	store_members_free(all, n);
	/* Too long a name is refused, nothing changes. */
	char longname[WAL_ASKED_BY_MAX + 2];

	memset(longname, 'x', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	cr_assert_eq(tfsm_code(&T, ent_member_by(4, 400, 5, "h:1", "h:2", false,
						 longname)),
		     SETTLE__V1__CODE__INVALID_ARGUMENT);
	cr_expect_eq(store_member_get(s, NULL, 5, &m), SETTLE_ENOTFOUND);
}

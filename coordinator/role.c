/*
 * role.c — this node's role and the members' client endpoints (role.h).
 */
#include <stdio.h>

#include "coord.h"
#include "role.h"
#include "wal/entry.h"

bool coord_is_leader(struct coord *c)
{
	return c->raft_started && !c->closing &&
	       raft_state(&c->raft) == RAFT_LEADER;
}

bool coord_is_ready(struct coord *c)
{
	return coord_is_leader(c) && c->ready_term == c->raft.current_term;
}

const char *coord_client_of(struct coord *c, uint64_t id, char *buf, size_t len)
{
	const char *ep = coord_config_client_of(&c->cfg, id);
	Settle__V1__MemberRecord *m = NULL;

	if (ep != NULL)
		return ep;
	if (c->store == NULL || store_member_get(c->store, NULL, id, &m) != 0)
		return NULL;
	snprintf(buf, len, "%s", m->client_endpoint);
	settle__v1__member_record__free_unpacked(m, NULL);
	return buf[0] != '\0' ? buf : NULL;
}

const char *coord_leader_endpoint(struct coord *c)
{
	static char buf[WAL_ENDPOINT_MAX + 1];
	raft_id id = 0;
	const char *addr = NULL;
	const char *ep;

	if (!c->raft_started)
		return "";
	raft_leader(&c->raft, &id, &addr);
	if (id == 0)
		return "";
	ep = coord_client_of(c, id, buf, sizeof buf);
	return ep != NULL ? ep : "";
}

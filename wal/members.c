/*
 * members.c — CmdMember: validation and apply into the `members` table.
 */
#include <stdio.h>

#include "error.h"
#include "wal/entry.h"
#include "wal/members.h"

int wal_member_validate(const Settle__V1__CmdMember *m, char *errmsg,
			size_t errmsg_len)
{
	const char *why = NULL;

	if (m == NULL || m->id == 0)
		why = "member id must be > 0";
	else if (!m->remove && wal_endpoint_validate(m->raft_address) != 0)
		why = "member raft_address must be host:port";
	else if (!m->remove && wal_endpoint_validate(m->client_endpoint) != 0)
		why = "member client_endpoint must be host:port";
	if (why == NULL)
		return 0;
	if (errmsg != NULL && errmsg_len > 0)
		snprintf(errmsg, errmsg_len, "%s", why);
	return SETTLE_EINVAL;
}

int wal_member_apply(struct store *s, MDB_txn *txn, uint64_t time_ms,
		     const Settle__V1__CmdMember *m, Settle__V1__CmdResult *res,
		     char *errmsg, size_t errmsg_len)
{
	Settle__V1__MemberRecord rec = SETTLE__V1__MEMBER_RECORD__INIT;
	int rv;

	(void)res; /* nothing to report beyond OK */
	if (m->remove) {
		rv = store_member_delete(s, txn, m->id);
		if (rv == SETTLE_ENOTFOUND)
			return 0; /* forgotten already: a repeat */
	} else {
		rec.id = m->id;
		rec.raft_address = m->raft_address;
		rec.client_endpoint = m->client_endpoint;
		rec.updated_ms = time_ms;
		rv = store_member_put(s, txn, &rec);
	}
	if (rv != 0)
		snprintf(errmsg, errmsg_len, "%s member %llu: %s",
			 m->remove ? "delete" : "put",
			 (unsigned long long)m->id, store_errmsg(s));
	return rv;
}

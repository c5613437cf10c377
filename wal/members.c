/*
 * members.c — CmdMember: validation and apply into the `members` table.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

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
	else if (m->asked_by != NULL && strlen(m->asked_by) > WAL_ASKED_BY_MAX)
		why = "member asked_by is too long";
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
	Settle__V1__MemberRecord *old = NULL;
	bool audited = m->asked_by != NULL && m->asked_by[0] != '\0';
	int rv;

	(void)res; /* nothing to report beyond OK */
	rv = store_member_get_any(s, txn, m->id, &old);
	if (rv == SETTLE_ENOTFOUND)
		rv = 0;
	if (rv != 0)
		goto out;
	if (m->remove && !audited) {
		rv = store_member_delete(s, txn, m->id);
		if (rv == SETTLE_ENOTFOUND)
			rv = 0; /* forgotten already: a repeat */
		goto out;
	}
	rec.id = m->id;
	rec.updated_ms = time_ms;
	if (m->remove) {
		/* The record of the removal: where it served, who added it,
		 * who removed it. */
		rec.raft_address = m->raft_address[0] != '\0' ? m->raft_address
				   : old != NULL ? old->raft_address
						 : "";
		rec.client_endpoint = m->client_endpoint[0] != '\0'
					  ? m->client_endpoint
				      : old != NULL ? old->client_endpoint
						    : "";
		rec.removed_by = m->asked_by;
		rec.removed_ms = time_ms;
	} else {
		rec.raft_address = m->raft_address;
		rec.client_endpoint = m->client_endpoint;
	}
	if (!m->remove && audited) {
		rec.added_by = m->asked_by;
		rec.added_ms = time_ms;
	} else if (old != NULL && old->removed_ms == 0) {
		rec.added_by = old->added_by;
		rec.added_ms = old->added_ms;
	}
	rv = store_member_put(s, txn, &rec);
out:
	if (old != NULL)
		settle__v1__member_record__free_unpacked(old, NULL);
	if (rv != 0)
		snprintf(errmsg, errmsg_len, "%s member %llu: %s",
			 m->remove ? "delete" : "put",
			 (unsigned long long)m->id, store_errmsg(s));
	return rv;
}

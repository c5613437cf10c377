/*
 * members.h — the FSM's part of membership: CmdMember, which records (or
 * forgets) a member's raft address and client endpoint in the store's
 * `members` table on every node.
 *
 * Raft's configuration decides who is a member; this table only tells
 * every node, including one that joined later, where each member serves
 * clients, so that NOT_LEADER answers can name any leader.
 */
#ifndef SETTLE_WAL_MEMBERS_H
#define SETTLE_WAL_MEMBERS_H

#include <stddef.h>
#include <stdint.h>

#include "settle.pb-c.h"
#include "storage/store.h"

/* The longest CmdMember.asked_by: "certificate " and a name, or "client "
 * and an address. */
#define WAL_ASKED_BY_MAX 300

/*
 * Check a CmdMember: id != 0; unless remove, raft_address and
 * client_endpoint are host:port (wal_endpoint_validate); asked_by at most
 * WAL_ASKED_BY_MAX bytes. Returns 0 or SETTLE_EINVAL with a message
 * naming the field in errmsg (may be NULL).
 */
int wal_member_validate(const Settle__V1__CmdMember *m, char *errmsg,
			size_t errmsg_len);

/*
 * Apply a validated CmdMember inside the FSM's write transaction txn:
 * insert or replace the row of m->id (updated_ms = time_ms), or delete it
 * when m->remove (a missing row is not an error: the command is
 * idempotent). With asked_by (feature level 8) an addition records who
 * asked and when (added_by, added_ms; a row rewritten without asked_by
 * keeps them), and a removal keeps the row as the record of the removal
 * (removed_by, removed_ms: store_member_get() no longer finds it, and
 * store_members_removed() lists it). res->code stays OK. Returns 0, or a
 * storage failure (SETTLE_EFULL, SETTLE_ESTORE, SETTLE_ENOMEM) with the reason
 * in errmsg; the caller then aborts the whole apply.
 */
int wal_member_apply(struct store *s, MDB_txn *txn, uint64_t time_ms,
		     const Settle__V1__CmdMember *m, Settle__V1__CmdResult *res,
		     char *errmsg, size_t errmsg_len);

#endif /* SETTLE_WAL_MEMBERS_H */

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

/*
 * Check a CmdMember: id != 0; unless remove, raft_address and
 * client_endpoint are host:port (wal_endpoint_validate). Returns 0 or
 * SETTLE_EINVAL with a message naming the field in errmsg (may be NULL).
 */
int wal_member_validate(const Settle__V1__CmdMember *m, char *errmsg,
			size_t errmsg_len);

/*
 * Apply a validated CmdMember inside the FSM's write transaction txn:
 * insert or replace the row of m->id (updated_ms = time_ms), or delete it
 * when m->remove (a missing row is not an error: the command is
 * idempotent). res->code stays OK. Returns 0, or a storage failure
 * (SETTLE_EFULL, SETTLE_ESTORE, SETTLE_ENOMEM) with the reason in errmsg;
 * the caller then aborts the whole apply.
 */
int wal_member_apply(struct store *s, MDB_txn *txn, uint64_t time_ms,
		     const Settle__V1__CmdMember *m, Settle__V1__CmdResult *res,
		     char *errmsg, size_t errmsg_len);

#endif /* SETTLE_WAL_MEMBERS_H */

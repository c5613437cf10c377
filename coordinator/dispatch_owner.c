/*
 * dispatch_owner.c — who a transaction belongs to (feature level 7).
 *
 * Under TLS a Begin or a saga records the certificate that asked as the
 * transaction's owner ("cn:NAME", or "fp:HEX" for a certificate without a
 * usable CN). Under --roles an initiator that is not an admin may then act
 * on a transaction (register, commit, roll back, vote, prepare, forget)
 * only with that certificate, and read it (query) only if it is its own
 * or it also holds observer; its lists (LIST, XA_RECOVER) hold its own
 * transactions only. A transaction without an owner (begun before level
 * 7, or in plaintext) is anyone's, as before.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "dispatch_int.h"
#include "error.h"
#include "roles.h"
#include "rpc.h"
#include "storage/store.h"
#include "waiters.h"
#include "wal/entry.h"
#include "wal/fsm.h"

void dispatch__owner_of(struct rpc_call *call, char *buf, size_t len)
{
	struct rpc_peer_id id;

	rpc_call_peer_id(call, &id);
	if (id.name[0] != '\0')
		snprintf(buf, len, "cn:%s", id.name);
	else if (id.fingerprint[0] != '\0')
		snprintf(buf, len, "fp:%s", id.fingerprint);
	else
		buf[0] = '\0';
}

const char *dispatch__owner_for_begin(struct coord *c, struct rpc_call *call,
				      char *buf, size_t len)
{
	if (fsm_level(&c->fsm) < FSM_LEVEL_OWNER)
		return "";
	dispatch__owner_of(call, buf, len);
	return buf;
}

const char *dispatch__owner_filter(struct coord *c, struct rpc_call *call,
				   char *buf, size_t len)
{
	struct rpc_peer_id id;
	unsigned roles;

	if (!c->roles_on)
		return NULL;
	rpc_call_peer_id(call, &id);
	roles = coord_roles_of(&c->roles, &id);
	if ((roles & (COORD_ROLE_ADMIN | COORD_ROLE_OBSERVER)) != 0)
		return NULL;
	dispatch__owner_of(call, buf, len);
	return buf;
}

bool dispatch__owns(const char *filter, const char *owner)
{
	return filter == NULL || owner[0] == '\0' || strcmp(owner, filter) == 0;
}

bool dispatch__owner_ok(struct coord *c, struct rpc_call *call, const char *gid,
			bool write)
{
	Settle__V1__TxRecord *tx = NULL;
	struct rpc_peer_id id;
	char me[WAL_OWNER_MAX + 1], msg[300];
	unsigned roles;
	bool ok;

	if (!c->roles_on)
		return true;
	rpc_call_peer_id(call, &id);
	roles = coord_roles_of(&c->roles, &id);
	if ((roles & COORD_ROLE_ADMIN) != 0 ||
	    (!write && (roles & COORD_ROLE_OBSERVER) != 0))
		return true;
	/* Not found (or unreadable): the verb itself answers that. */
	if (store_tx_get(c->store, NULL, gid, &tx) != 0)
		return true;
	dispatch__owner_of(call, me, sizeof me);
	ok = dispatch__owns(me, tx->owner);
	settle__v1__tx_record__free_unpacked(tx, NULL);
	if (!ok) {
		snprintf(msg, sizeof msg,
			 "transaction %.128s was begun by another "
			 "certificate: an initiator acts on its own "
			 "transactions only (settled --roles)",
			 gid);
		coord_fail(c, call, SETTLE_EDENIED, msg);
	}
	return ok;
}

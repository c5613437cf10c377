/*
 * roles.h — who may call what on the client port, from the certificate a
 * client presented under TLS (settled --roles FILE; docs/SECURITY.md).
 *
 * The file has one grant a line: `ROLE cn:NAME` (the certificate whose
 * subject common name is NAME), `ROLE fp:HEX` (the one whose SHA-256
 * fingerprint is HEX, colons allowed) or `ROLE san:NAME` (one with NAME
 * among its DNS, URI or e-mail subjectAltNames) holds ROLE; a certificate
 * holds the roles of every grant it matches; `#` starts a comment. A peer
 * grant may end in `id:N`: that certificate may then speak raft only as
 * raft id N. Roles:
 *   peer         another node: STATUS (feature rounds, a joiner's probe)
 *   initiator    transactions: BEGIN, SUBMIT_SAGA, REGISTER_BRANCH,
 *                COMMIT, ROLLBACK, XA_VOTE, XA_PREPARE, XA_RECOVER,
 *                XA_FORGET, and the reads
 *   observer     the reads: STATUS, QUERY, LIST, CLUSTER_MEMBERS,
 *                PARTICIPANTS
 *   participant  nothing on a coordinator (it is called, it does not call)
 *   admin        everything (settlectl's verbs: TX_RETRY, TX_RESOLVE,
 *                XA_HEURISTIC, CLUSTER_ADD/REMOVE/TRANSFER, BACKUP)
 * A certificate not listed holds no role. Pure functions: no I/O but the
 * file's reading.
 */
#ifndef SETTLE_COORD_ROLES_H
#define SETTLE_COORD_ROLES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rpc.h"

enum {
	COORD_ROLE_PEER = 1u << 0,
	COORD_ROLE_INITIATOR = 1u << 1,
	COORD_ROLE_PARTICIPANT = 1u << 2,
	COORD_ROLE_OBSERVER = 1u << 3,
	COORD_ROLE_ADMIN = 1u << 4,
};

/* The longest certificate name kept (X.509 caps a CN at 64), and the
 * longest subjectAltName a grant may name (rpc.h's peer matchers). */
#define COORD_ROLES_NAME_MAX  RPC_PEER_CN_MAX
#define COORD_ROLES_VALUE_MAX RPC_PEER_SAN_MAX

struct coord_roles {
	struct coord_role_grant *grants;
	size_t n;
};

/*
 * Read path into r (empty first). 0, or SETTLE_EIO (unreadable) /
 * SETTLE_EINVAL (a line that is not `ROLE cn:NAME`) with the file and
 * line in errmsg; r is left empty then.
 */
int coord_roles_load(struct coord_roles *r, const char *path, char *errmsg,
		     size_t errmsg_len);
void coord_roles_free(struct coord_roles *r);

/* The roles (COORD_ROLE_* bits) of the certificate id (rpc.h); 0 if
 * none. */
unsigned coord_roles_of(const struct coord_roles *r,
			const struct rpc_peer_id *id);

/* Whether certificate id may speak raft as raft_id: a peer grant it
 * matches that binds no raft id (`peer cn:NAME`) or binds that one
 * (`peer cn:NAME id:N`). */
bool coord_roles_peer_ok(const struct coord_roles *r,
			 const struct rpc_peer_id *id, uint64_t raft_id);

/* How many peer grants bind no raft id: each lets its certificate speak
 * raft as any member (the node warns at loading). */
size_t coord_roles_unbound_peers(const struct coord_roles *r);

/* The roles that may call method (a settle.v1.Method); 0: none. */
unsigned coord_roles_for_method(int method);

/* "initiator, admin" for a mask, in buf of len bytes; "no role" for 0. */
const char *coord_roles_names(unsigned mask, char *buf, size_t len);

#endif /* SETTLE_COORD_ROLES_H */

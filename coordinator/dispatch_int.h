/*
 * dispatch_int.h — internals shared by dispatch.c (client requests, the
 * proposals they become, the waiters) and dispatch_xa.c (the XA parts of
 * those requests), and query.c (the reads). Not a contract: see
 * dispatch.h.
 */
#ifndef SETTLE_COORD_DISPATCH_INT_H
#define SETTLE_COORD_DISPATCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord.h"
#include "xa/xid.h"

/* ---- query.c: reads, b the request's protobuf body ---- */

void coord_do_query(struct coord *c, struct rpc_call *call, const uint8_t *b,
		    size_t n);
void coord_do_list(struct coord *c, struct rpc_call *call, const uint8_t *b,
		   size_t n);
void coord_do_status(struct coord *c, struct rpc_call *call);
/* PARTICIPANTS: the leader's participant endpoints, their calls and
 * breakers, and the branches waiting at each (query_participants.c). */
void coord_do_participants(struct coord *c, struct rpc_call *call);
/* BACKUP: an online copy of this node's store, in chunks (backup.c). */
void coord_do_backup(struct coord *c, struct rpc_call *call, const uint8_t *b,
		     size_t n);
/* XA_RECOVER: the XA transactions of a legacy TM (begun with an xid) that
 * are XA_PREPARED or final with a heuristic not forgotten, in gid order. */
void coord_do_xa_recover(struct coord *c, struct rpc_call *call,
			 const uint8_t *b, size_t n);

/* ---- dispatch.c ---- */

/*
 * Validate cmd (wal_command_validate), propose it, and answer call once it
 * is applied, as method answers (a Commit/Rollback with wait waits for the
 * end of phase 2, up to wait_ms; 0: the default). gid (copied; may be
 * NULL) names the transaction. cmd is encoded at once and not kept. Every
 * failure answers call with its error.
 */
void dispatch__propose(struct coord *c, struct rpc_call *call, int method,
		       Settle__V1__Command *cmd, const char *gid, bool wait,
		       uint32_t wait_ms);

/* Whether id is a valid cmd_id (16 bytes); false after answering call
 * with INVALID_ARGUMENT. */
/* True when the cluster runs at feature level >= level; else call is
 * answered ENOMETHOD naming what (a member runs an older release). */
/*
 * An operator's reason as the history keeps it: under TLS with the
 * certificate that asked, "by certificate NAME: REASON" (in buf of len
 * bytes); the reason alone on a plain connection. The leader decides the
 * text before proposing, so every node stores the same bytes.
 */
#define DISPATCH_REASON_MAX (WAL_TEXT_MAX + 128)
char *dispatch__signed_reason(struct rpc_call *call, char *reason, char *buf,
			      size_t len);

bool dispatch__level_ok(struct coord *c, struct rpc_call *call, uint32_t level,
			const char *what);
bool dispatch__cmd_id_ok(struct coord *c, struct rpc_call *call,
			 const ProtobufCBinaryData *id);

/* ---- dispatch_owner.c ---- */

/* The caller's identity as a transaction's owner: "cn:NAME", "fp:HEX"
 * (no usable CN), or "" on a plain connection; into buf of len bytes. */
void dispatch__owner_of(struct rpc_call *call, char *buf, size_t len);
/* What a Begin or saga records as its owner: the caller (in buf) once the
 * cluster runs at feature level 7, else "". */
const char *dispatch__owner_for_begin(struct coord *c, struct rpc_call *call,
				      char *buf, size_t len);
/* The owner a caller's lists are limited to (in buf): an initiator under
 * --roles that is neither admin nor observer; NULL for every other. */
const char *dispatch__owner_filter(struct coord *c, struct rpc_call *call,
				   char *buf, size_t len);
/* Whether a transaction of owner passes filter (NULL: all pass; a
 * transaction without an owner passes every filter). */
bool dispatch__owns(const char *filter, const char *owner);
/* Whether the caller may act on gid (write) or read it: always without
 * --roles, for an admin, for an observer reading, for a transaction with
 * no owner or one it does not find; else only its owner. False after
 * answering PERMISSION_DENIED. */
bool dispatch__owner_ok(struct coord *c, struct rpc_call *call, const char *gid,
			bool write);

/* ---- dispatch_xa.c ---- */

/*
 * The XA part of a Begin: checks mode, xid and join; mode XA with an xid
 * derives the gid from it (xa_xid_gid(), as the switch library does, into
 * xgid); a gid of Settle's own is at most 64 bytes. On true, *gid points
 * to req->gid or to xgid and the Begin goes on. False when call has been
 * answered: with the error, or a TMJOIN (nothing to propose) from the
 * leader's applied state.
 */
bool dispatch__xa_begin(struct coord *c, struct rpc_call *call,
			const Settle__V1__BeginRequest *req,
			char xgid[XA_XID_GID_LEN + 1], const char **gid);

/*
 * RegisterBranch: with rm set, the branch must name a resource manager
 * configured on this leader (NOT_FOUND otherwise) and carry no endpoint,
 * resource or payload. True for a TCC branch (rm empty). False after
 * answering call with the error.
 */
bool dispatch__xa_register_ok(struct coord *c, struct rpc_call *call,
			      const Settle__V1__RegisterBranchRequest *req);

/* XA_VOTE, XA_PREPARE, XA_FORGET, XA_HEURISTIC (method): decode body (n
 * bytes) and propose its command; call is answered once it is applied. */
void dispatch__do_xa(struct coord *c, struct rpc_call *call, int method,
		     const uint8_t *body, size_t n);

/* Answer an applied XA_VOTE, XA_PREPARE, XA_FORGET or XA_HEURISTIC
 * (method) of gid from the FSM's result res (code OK). */
void dispatch__xa_reply(struct rpc_call *call, int method, const char *gid,
			const Settle__V1__CmdResult *res);

#endif /* SETTLE_COORD_DISPATCH_INT_H */

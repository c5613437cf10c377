/*
 * dispatch_int.h — internals shared by dispatch.c (client requests, the
 * proposals they become, the waiters) and dispatch_xa.c (the XA parts of
 * those requests). Not a contract: see coord.h.
 */
#ifndef SETTLE_COORD_DISPATCH_INT_H
#define SETTLE_COORD_DISPATCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "coord.h"
#include "xa/xid.h"

/* Longest wait a call may ask the leader for (Commit/Rollback wait_ms,
 * Query wait_ms). */
#define DISPATCH_WAIT_MAX_MS 60000

/* ---- waiters.c ---- */

struct coord_waiter;

/* Hold call until gid is final (a Commit/Rollback's wait) or wait_ms pass;
 * NULL when out of memory (nothing held). */
struct coord_waiter *dispatch__waiter_add(struct coord *c,
					  struct rpc_call *call,
					  const char *gid, uint32_t wait_ms);
/* w's proposal lost leadership: it is answered NOT_LEADER with the new
 * leader once one is known (coord_waiters_redirect()). */
void dispatch__waiter_set_lost(struct coord *c, struct coord_waiter *w);
/* Answer a Commit/Rollback with gid's state as stored now. */
void dispatch__answer_decision(struct coord *c, struct rpc_call *call,
			       const char *gid);

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
bool dispatch__level_ok(struct coord *c, struct rpc_call *call, uint32_t level,
			const char *what);
bool dispatch__cmd_id_ok(struct coord *c, struct rpc_call *call,
			 const ProtobufCBinaryData *id);

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

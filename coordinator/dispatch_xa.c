/*
 * dispatch_xa.c — the XA parts of client requests (docs/XA.md): Begin with
 * an xid or join, RegisterBranch of an RM branch, and XA_VOTE, XA_PREPARE,
 * XA_FORGET. Like the rest of dispatch.c they only check and propose; the
 * FSM (wal/) decides, the driver (xa_drive.c) acts. XA_RECOVER is a read
 * (query.c); Commit's one_phase is one field of the decision (dispatch.c).
 */
#include <stdio.h>
#include <string.h>

#include "coord.h"
#include "dispatch_int.h"
#include "error.h"
#include "log.h"
#include "waiters.h"
#include "wal/entry.h"
#include "wal/sm.h"
#include "wal/xa.h"
#include "xa/xid.h"

/* The gid of an XA transaction is the gtrid of its RM branches' XIDs. */
#define XA_GID_MAX XA_XID_PART_MAX

/*
 * TMJOIN: another thread or process of the TM joins the transaction of an
 * xid. Nothing changes, so nothing is proposed: the leader's applied state
 * answers (NOT_FOUND, WRONG_STATE unless ACTIVE, else joined).
 */
static void begin_join(struct coord *c, struct rpc_call *call, const char *gid,
		       const ProtobufCBinaryData *xid)
{
	Settle__V1__BeginResponse resp = SETTLE__V1__BEGIN_RESPONSE__INIT;
	Settle__V1__TxRecord *tx = NULL;
	char msg[160];
	int rv;

	/* TMJOIN by another certificate than the one that began it. */
	if (!dispatch__owner_ok(c, call, gid, true))
		return;
	rv = store_tx_get(c->store, NULL, gid, &tx);
	if (rv != 0) {
		coord_fail(c, call, rv,
			   rv == SETTLE_ENOTFOUND
			       ? "join: no transaction of that xid"
			       : store_errmsg(c->store));
		return;
	}
	if (tx->mode != SETTLE__V1__TX_MODE__XA || tx->xid.len != xid->len ||
	    memcmp(tx->xid.data, xid->data, xid->len) != 0) {
		/* Only a gid hash collision or a TCC transaction begun under
		 * that very name can get here. */
		snprintf(msg, sizeof msg,
			 "join: %s is not the transaction of that xid", gid);
		coord_fail(c, call, SETTLE_ESTATE, msg);
	} else if (tx->state != SETTLE__V1__TX_STATE__ACTIVE) {
		snprintf(msg, sizeof msg,
			 "join: transaction is %s: only an ACTIVE one can be "
			 "joined",
			 wal_tx_state_name(tx->state));
		coord_fail(c, call, SETTLE_ESTATE, msg);
	} else {
		resp.gid = tx->gid;
		resp.deadline_ms = tx->deadline_ms;
		resp.joined = true;
		rpc_call_reply(call, &resp.base);
	}
	settle__v1__tx_record__free_unpacked(tx, NULL);
}

/*
 * The gid of a Begin: mode XA with an xid derives it from the xid
 * (xa_xid_gid(), as the switch library does); a gid of Settle's own is at
 * most XA_GID_MAX bytes. *gid points to req->gid or to xgid. False after
 * answering the call with the error.
 */
static bool begin_xa_gid(struct coord *c, struct rpc_call *call,
			 const Settle__V1__BeginRequest *req,
			 char xgid[XA_XID_GID_LEN + 1], const char **gid)
{
	bool xa = req->mode == SETTLE__V1__TX_MODE__XA;
	struct xa_xid x;
	int rv;

	*gid = req->gid;
	if (req->mode != SETTLE__V1__TX_MODE__TX_MODE_UNSPECIFIED &&
	    req->mode != SETTLE__V1__TX_MODE__TCC && !xa) {
		coord_fail(c, call, SETTLE_EINVAL,
			   "mode must be TCC or XA (a saga is begun with "
			   "SUBMIT_SAGA)");
		return false;
	}
	if (!xa && (req->xid.len > 0 || req->join)) {
		coord_fail(c, call, SETTLE_EINVAL, "xid and join need mode XA");
		return false;
	}
	if (req->join && req->xid.len == 0) {
		coord_fail(c, call, SETTLE_EINVAL,
			   "join needs the xid of the transaction to join");
		return false;
	}
	if (req->xid.len > 0) {
		if (req->gid[0] != '\0') {
			coord_fail(c, call, SETTLE_EINVAL,
				   "gid must be empty with an xid: the gid is "
				   "derived from the xid");
			return false;
		}
		if (xa_xid_decode(req->xid.data, req->xid.len, &x) != 0) {
			coord_fail(c, call, SETTLE_EINVAL,
				   "xid is not a valid XID wire encoding "
				   "(formatID, lengths 1-64, gtrid, bqual)");
			return false;
		}
		rv = xa_xid_gid(&x, xgid);
		if (rv != 0) {
			coord_fail(c, call, rv, "cannot derive a gid from xid");
			return false;
		}
		*gid = xgid;
	}
	if (xa && strlen(*gid) > XA_GID_MAX) {
		coord_fail(c, call, SETTLE_EINVAL,
			   "the gid of an XA transaction is at most 64 bytes "
			   "(it is the gtrid of its XIDs)");
		return false;
	}
	return true;
}

bool dispatch__xa_begin(struct coord *c, struct rpc_call *call,
			const Settle__V1__BeginRequest *req,
			char xgid[XA_XID_GID_LEN + 1], const char **gid)
{
	if (!begin_xa_gid(c, call, req, xgid, gid))
		return false;
	if (req->join) {
		begin_join(c, call, *gid, &req->xid);
		return false;
	}
	return true;
}

/*
 * An RM branch (rm set) names a resource manager this leader drives; its
 * work happens on the initiator's own RM connection, so it has no
 * endpoint, resource or payload.
 */
bool dispatch__xa_register_ok(struct coord *c, struct rpc_call *call,
			      const Settle__V1__RegisterBranchRequest *req)
{
	char msg[160];
	size_t len = strlen(req->rm);

	if (len == 0)
		return true;
	if (req->endpoint[0] != '\0' || req->resource[0] != '\0' ||
	    req->payload.len > 0) {
		coord_fail(c, call, SETTLE_EINVAL,
			   "an rm branch has no endpoint, resource or payload");
		return false;
	}
	if (len > COORD_XA_RM_NAME_MAX ||
	    strspn(req->rm,
		   "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
		   "0123456789_.-") != len) {
		coord_fail(c, call, SETTLE_EINVAL,
			   "rm must be 1-64 bytes of A-Z a-z 0-9 _ . -");
		return false;
	}
	if (coord_config_xa_rm(&c->cfg, req->rm) == NULL) {
		snprintf(msg, sizeof msg,
			 "resource manager %s is not configured", req->rm);
		coord_fail(c, call, SETTLE_ENOTFOUND, msg);
		return false;
	}
	return true;
}

/*
 * XA_VOTE, XA_PREPARE, XA_FORGET, XA_HEURISTIC (an operator's heuristic
 * decision; wal/ checks it is XA_PREPARED): one command each (wal/ applies
 * them; validation, the reason required, at dispatch__propose()),
 * answered once applied; a retry with the same cmd_id gets the first
 * answer.
 */
void dispatch__do_xa(struct coord *c, struct rpc_call *call, int method,
		     const uint8_t *b, size_t n)
{
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdXaVote vote = SETTLE__V1__CMD_XA_VOTE__INIT;
	Settle__V1__CmdXaPrepare prepare = SETTLE__V1__CMD_XA_PREPARE__INIT;
	Settle__V1__CmdXaForget forget = SETTLE__V1__CMD_XA_FORGET__INIT;
	Settle__V1__CmdXaHeuristic heur = SETTLE__V1__CMD_XA_HEURISTIC__INIT;
	char signed_reason[DISPATCH_REASON_MAX];
	const ProtobufCMessageDescriptor *d;
	ProtobufCMessage *msg;
	ProtobufCBinaryData id;
	const char *gid;

	switch (method) {
	case SETTLE__V1__METHOD__XA_VOTE:
		d = &settle__v1__xa_vote_request__descriptor;
		break;
	case SETTLE__V1__METHOD__XA_PREPARE:
		d = &settle__v1__xa_prepare_request__descriptor;
		break;
	case SETTLE__V1__METHOD__XA_HEURISTIC:
		d = &settle__v1__xa_heuristic_request__descriptor;
		break;
	default:
		d = &settle__v1__xa_forget_request__descriptor;
		break;
	}
	msg = protobuf_c_message_unpack(d, NULL, n, b);
	if (msg == NULL) {
		char text[96];

		snprintf(text, sizeof text, "invalid %s", d->short_name);
		coord_fail(c, call, SETTLE_EINVAL, text);
		return;
	}
	if (method == SETTLE__V1__METHOD__XA_VOTE) {
		Settle__V1__XaVoteRequest *r = (Settle__V1__XaVoteRequest *)msg;

		id = r->cmd_id;
		gid = r->gid;
		vote.gid = r->gid;
		vote.branch_id = r->branch_id;
		vote.vote = r->vote;
		vote.error = r->error;
		/* Only the level-6 votes themselves: a vote out of range is
		 * INVALID_ARGUMENT whatever the level (wal validation). */
		if ((r->vote == SETTLE__V1__XA_VOTE__PHASE2_COMMITTED ||
		     r->vote == SETTLE__V1__XA_VOTE__PHASE2_NOT_DONE) &&
		    !dispatch__level_ok(c, call, FSM_LEVEL_XA_PHASE2,
					"a PHASE2_* vote")) {
			protobuf_c_message_free_unpacked(msg, NULL);
			return;
		}
		cmd.op_case = SETTLE__V1__COMMAND__OP_XA_VOTE;
		cmd.xa_vote = &vote;
	} else if (method == SETTLE__V1__METHOD__XA_PREPARE) {
		Settle__V1__XaPrepareRequest *r =
		    (Settle__V1__XaPrepareRequest *)msg;

		id = r->cmd_id;
		gid = r->gid;
		prepare.gid = r->gid;
		cmd.op_case = SETTLE__V1__COMMAND__OP_XA_PREPARE;
		cmd.xa_prepare = &prepare;
	} else if (method == SETTLE__V1__METHOD__XA_HEURISTIC) {
		Settle__V1__XaHeuristicRequest *r =
		    (Settle__V1__XaHeuristicRequest *)msg;

		id = r->cmd_id;
		gid = r->gid;
		heur.gid = r->gid;
		heur.decision = r->decision;
		heur.reason = dispatch__signed_reason(
		    call, r->reason, signed_reason, sizeof signed_reason);
		cmd.op_case = SETTLE__V1__COMMAND__OP_XA_HEURISTIC;
		cmd.xa_heuristic = &heur;
	} else {
		Settle__V1__XaForgetRequest *r =
		    (Settle__V1__XaForgetRequest *)msg;

		id = r->cmd_id;
		gid = r->gid;
		forget.gid = r->gid;
		cmd.op_case = SETTLE__V1__COMMAND__OP_XA_FORGET;
		cmd.xa_forget = &forget;
	}
	if (dispatch__cmd_id_ok(c, call, &id) &&
	    dispatch__owner_ok(c, call, gid, true)) {
		cmd.cmd_id = id;
		cmd.request_digest = wal_request_digest(method, msg);
		dispatch__propose(c, call, method, &cmd, gid, false, 0);
	}
	protobuf_c_message_free_unpacked(msg, NULL);
}

void dispatch__xa_reply(struct rpc_call *call, int method, const char *gid,
			const Settle__V1__CmdResult *res)
{
	switch (method) {
	case SETTLE__V1__METHOD__XA_VOTE: {
		Settle__V1__XaVoteResponse r =
		    SETTLE__V1__XA_VOTE_RESPONSE__INIT;

		r.state = res->state;
		r.branch_state = res->branch_state;
		rpc_call_reply(call, &r.base);
		break;
	}
	case SETTLE__V1__METHOD__XA_PREPARE: {
		Settle__V1__XaPrepareResponse r =
		    SETTLE__V1__XA_PREPARE_RESPONSE__INIT;

		r.state = res->state;
		r.read_only = res->read_only;
		rpc_call_reply(call, &r.base);
		break;
	}
	case SETTLE__V1__METHOD__XA_FORGET: {
		Settle__V1__XaForgetResponse r =
		    SETTLE__V1__XA_FORGET_RESPONSE__INIT;

		settle_log(SETTLE_LOG_INFO, "xa",
			   "%s: heuristic forgotten by %s", gid,
			   rpc_call_peer(call));
		rpc_call_reply(call, &r.base);
		break;
	}
	case SETTLE__V1__METHOD__XA_HEURISTIC: {
		Settle__V1__XaHeuristicResponse r =
		    SETTLE__V1__XA_HEURISTIC_RESPONSE__INIT;

		/* An operator acted for a missing TM: the log says who. */
		settle_log(SETTLE_LOG_WARN, "xa",
			   "%s: decided heuristically by %s: now %s, "
			   "heuristic %s",
			   gid, rpc_call_peer(call),
			   wal_tx_state_name(res->state),
			   wal_xa_heuristic_name((int)res->heuristic));
		r.state = res->state;
		r.heuristic = res->heuristic;
		rpc_call_reply(call, &r.base);
		break;
	}
	}
}

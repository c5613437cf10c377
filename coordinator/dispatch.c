/*
 * dispatch.c — client requests: decode, check, propose, answer.
 *
 * Requests that change state become one raft command each and are answered
 * once the command is applied, with the result the FSM stored under the
 * request's cmd_id. Reads are answered from LMDB on the leader (query.c);
 * the XA parts of requests are in dispatch_xa.c, the calls held for a
 * transaction to move in waiters.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "budget.h"
#include "clock.h"
#include "coord.h"
#include "dispatch.h"
#include "dispatch_int.h"
#include "error.h"
#include "log.h"
#include "propose.h"
#include "role.h"
#include "waiters.h"
#include "wal/entry.h"
#include "wal/saga.h"
#include "wal/sm.h"
#include "wal/xa.h"
#include "xa/xid.h"

#define WAIT_DEFAULT_MS 10000

/* A request waiting for its command to be applied. */
struct pending {
	struct rpc_call *call;
	int method;
	bool wait;
	uint32_t wait_ms;
	char gid[WAL_GID_MAX + 1];
};

static bool leader_or_fail(struct coord *c, struct rpc_call *call)
{
	if (c->closing) {
		coord_fail(c, call, SETTLE_EUNAVAIL, "node is stopping");
		return false;
	}
	if (!coord_is_leader(c)) {
		coord_fail(c, call, SETTLE_ENOTLEADER, NULL);
		return false;
	}
	if (!coord_is_ready(c)) {
		/* Elected, but its term's barrier is not applied yet (node.c):
		 * the state may still hide earlier decisions. */
		coord_fail(c, call, SETTLE_EUNAVAIL,
			   "new leader not ready yet; retry");
		return false;
	}
	return true;
}

/* ---- Proposals ----------------------------------------------------------- */

/* Whether gid is still open (ACTIVE or XA_PREPARED) in the store. */
static bool tx_open(void *data, const char *gid)
{
	struct coord *c = data;
	Settle__V1__TxRecord *tx = NULL;
	bool open;
	int rv = store_tx_get(c->store, NULL, gid, &tx);

	if (rv != 0)
		return rv != SETTLE_ENOTFOUND; /* a read error: still counted */
	open = tx->state == SETTLE__V1__TX_STATE__ACTIVE ||
	       tx->state == SETTLE__V1__TX_STATE__XA_PREPARED;
	settle__v1__tx_record__free_unpacked(tx, NULL);
	return open;
}

/* Who a client is for --max-open-per-client: the name in its certificate
 * under TLS (clients behind one address are apart, one client on many
 * addresses is one), else its source address. */
static const char *client_key(struct rpc_call *call, char *buf, size_t len)
{
	const char *cn = rpc_call_peer_name(call);

	if (cn[0] == '\0')
		return rpc_call_peer_addr(call);
	snprintf(buf, len, "certificate %s", cn);
	return buf;
}

/* The client's open transactions under --max-open-per-client. */
static bool quota_admits(struct coord *c, struct rpc_call *call)
{
	char key[COORD_QUOTA_KEY_MAX];
	const char *addr = client_key(call, key, sizeof key);
	char msg[300];
	uint32_t open;

	if (coord_quota_allows(&c->quota, addr, &open))
		return true;
	/* At the limit: forget what ended unseen, then look again. */
	coord_quota_sweep(&c->quota, addr, settle_mono_ms(), tx_open, c);
	if (coord_quota_allows(&c->quota, addr, &open))
		return true;
	snprintf(msg, sizeof msg,
		 "client %s has %u transactions begun and not decided, the "
		 "most settled --max-open-per-client allows: finish some "
		 "first",
		 addr, open);
	coord_fail(c, call, SETTLE_EEXHAUSTED, msg);
	return false;
}

/*
 * BEGIN's answer: declared branches got ids 1..count (wal/fsm.c). RM ones
 * (mode XA) have the XIDs register builds; the result carries the last
 * one, whose formatID gives the others (no read of the branches).
 */
static void begun(struct coord *c, struct rpc_call *call,
		  const Settle__V1__CmdResult *res)
{
	Settle__V1__BeginResponse r = SETTLE__V1__BEGIN_RESPONSE__INIT;
	uint32_t ids[WAL_MAX_BRANCHES];
	ProtobufCBinaryData xids[WAL_MAX_BRANCHES];
	uint8_t *wire = NULL;
	struct xa_xid x;

	r.gid = res->gid;
	r.deadline_ms = res->deadline_ms;
	char key[COORD_QUOTA_KEY_MAX];

	coord_quota_begun(&c->quota, res->gid,
			  client_key(call, key, sizeof key));
	r.n_branch_ids =
	    res->count <= WAL_MAX_BRANCHES ? res->count : WAL_MAX_BRANCHES;
	for (size_t i = 0; i < r.n_branch_ids; i++)
		ids[i] = (uint32_t)i + 1;
	r.branch_ids = ids;
	if (r.n_branch_ids > 0 && res->xid.len > 0 &&
	    xa_xid_decode(res->xid.data, res->xid.len, &x) == 0 &&
	    (wire = malloc(r.n_branch_ids * XA_XID_WIRE_MAX)) != NULL) {
		for (size_t i = 0; i < r.n_branch_ids; i++) {
			uint8_t *w = wire + i * XA_XID_WIRE_MAX;
			size_t len;

			if (wal_xa_branch_xid((uint32_t)x.format_id, res->gid,
					      (uint32_t)i + 1, &x) != 0 ||
			    xa_xid_encode(&x, w, XA_XID_WIRE_MAX, &len) != 0)
				break;
			xids[r.n_xids].data = w;
			xids[r.n_xids++].len = len;
		}
		r.xids = xids;
	}
	rpc_call_reply(call, &r.base);
	free(wire);
}

static void proposed(struct coord *c, void *data, int err,
		     const Settle__V1__CmdResult *res)
{
	struct pending *p = data;
	struct rpc_call *call = p->call;

	if (err == SETTLE_ENOTLEADER && !c->closing &&
	    coord_leader_endpoint(c)[0] == '\0') {
		/* Leadership moved before the entry committed (it may still
		 * commit): hold the call until the new leader is known, so
		 * that the client is told where to retry. */
		struct coord_waiter *w = coord_waiter_add(
		    c, call, p->gid,
		    p->wait ? p->wait_ms : 2 * c->cfg.election_timeout_ms);

		if (w != NULL) {
			coord_waiter_set_lost(c, w);
			goto out;
		}
	}
	if (err != 0) {
		coord_fail(c, call, err, NULL);
		goto out;
	}
	if (res->code != SETTLE__V1__CODE__OK) {
		coord_fail(c, call, settle_err_from_wire(res->code),
			   res->message);
		goto out;
	}
	switch (p->method) {
	case SETTLE__V1__METHOD__BEGIN:
		begun(c, call, res);
		break;
	case SETTLE__V1__METHOD__SUBMIT_SAGA: {
		Settle__V1__SubmitSagaResponse r =
		    SETTLE__V1__SUBMIT_SAGA_RESPONSE__INIT;

		r.gid = res->gid;
		r.deadline_ms = res->deadline_ms;
		rpc_call_reply(call, &r.base);
		break;
	}
	case SETTLE__V1__METHOD__REGISTER_BRANCH: {
		Settle__V1__RegisterBranchResponse r =
		    SETTLE__V1__REGISTER_BRANCH_RESPONSE__INIT;

		r.branch_id = res->branch_id;
		r.xid = res->xid; /* rm branches: the XID the FSM built */
		rpc_call_reply(call, &r.base);
		break;
	}
	case SETTLE__V1__METHOD__XA_VOTE:
	case SETTLE__V1__METHOD__XA_PREPARE:
	case SETTLE__V1__METHOD__XA_FORGET:
	case SETTLE__V1__METHOD__XA_HEURISTIC:
		dispatch__xa_reply(call, p->method, p->gid, res);
		break;
	case SETTLE__V1__METHOD__TX_RETRY: {
		Settle__V1__TxRetryResponse r =
		    SETTLE__V1__TX_RETRY_RESPONSE__INIT;

		r.state = res->state;
		r.retried = res->count;
		settle_log(SETTLE_LOG_INFO, "operator",
			   "%s: retry by %s: %u branches due now", p->gid,
			   rpc_call_peer(call), res->count);
		rpc_call_reply(call, &r.base);
		break;
	}
	case SETTLE__V1__METHOD__TX_RESOLVE: {
		Settle__V1__TxResolveResponse r =
		    SETTLE__V1__TX_RESOLVE_RESPONSE__INIT;

		r.state = res->state;
		r.branch_state = res->branch_state;
		settle_log(SETTLE_LOG_INFO, "operator",
			   "%s: branch %u resolved by %s: now %s", p->gid,
			   res->branch_id, rpc_call_peer(call),
			   wal_branch_state_name(res->branch_state));
		rpc_call_reply(call, &r.base);
		break;
	}
	default: {
		/* Commit / Rollback: answer with the state now, which may be
		 * later than the one stored with the result (a retry). */
		Settle__V1__TxRecord *tx = NULL;

		if (p->wait && store_tx_get(c->store, NULL, p->gid, &tx) == 0 &&
		    !wal_tx_state_final(tx->state) && coord_is_ready(c) &&
		    coord_waiter_add(c, call, p->gid, p->wait_ms) != NULL) {
			settle__v1__tx_record__free_unpacked(tx, NULL);
			break;
		}
		if (tx != NULL)
			settle__v1__tx_record__free_unpacked(tx, NULL);
		coord_answer_decision(c, call, p->gid);
		break;
	}
	}
out:
	free(p);
}

void dispatch__propose(struct coord *c, struct rpc_call *call, int method,
		       Settle__V1__Command *cmd, const char *gid, bool wait,
		       uint32_t wait_ms)
{
	char msg[256];
	struct pending *p;
	int rv;

	if (cmd->time_ms == 0)
		cmd->time_ms = coord_wall_now(c);
	/* INVALID_ARGUMENT or TOO_LARGE (a payload over 1 MiB, a reason
	 * over 1 KiB), as validation says: PROTOCOL.md promises both. */
	rv = wal_command_validate(cmd, msg, sizeof msg);
	if (rv != 0) {
		coord_fail(c, call, rv, msg);
		return;
	}
	if (!coord_budget_admit(c, call, cmd))
		return;
	p = calloc(1, sizeof *p);
	if (p == NULL) {
		coord_fail(c, call, SETTLE_ENOMEM, NULL);
		return;
	}
	p->call = call;
	p->method = method;
	p->wait = wait;
	p->wait_ms =
	    wait_ms == 0
		? WAIT_DEFAULT_MS
		: (wait_ms > COORD_WAIT_MAX_MS ? COORD_WAIT_MAX_MS : wait_ms);
	wal_gid_copy(p->gid, gid != NULL ? gid : "");
	rv = coord_propose(c, cmd, proposed, p);
	if (rv != 0) {
		free(p);
		coord_fail(c, call, rv, NULL);
	}
}

bool dispatch__level_ok(struct coord *c, struct rpc_call *call, uint32_t level,
			const char *what)
{
	char text[200];
	uint32_t now = fsm_level(&c->fsm);

	if (now >= level)
		return true;
	snprintf(text, sizeof text,
		 "%s needs cluster feature level %u; the cluster runs at %u "
		 "(a member runs an older release)",
		 what, level, now);
	coord_fail(c, call, SETTLE_ENOMETHOD, text);
	return false;
}

bool dispatch__cmd_id_ok(struct coord *c, struct rpc_call *call,
			 const ProtobufCBinaryData *id)
{
	if (id->len != STORE_CMD_ID_LEN) {
		coord_fail(c, call, SETTLE_EINVAL, "cmd_id must be 16 bytes");
		return false;
	}
	return true;
}

/* v in hex, at least width digits (zero-padded): as "%0*" PRIx64 would,
 * for every transaction without snprintf. Returns the end. */
static char *put_hex(char *p, uint64_t v, int width)
{
	static const char digit[] = "0123456789abcdef";
	int n = 1;

	while (n < 16 && (v >> (4 * n)) != 0)
		n++;
	if (n < width)
		n = width;
	for (int i = n - 1; i >= 0; i--)
		*p++ = i < 16 ? digit[(v >> (4 * i)) & 0xf] : '0';
	return p;
}

/* A gid the coordinator chooses, in hex: unix ms, then a count within it
 * (16 bits) and 48 random bits. The gids of one leader come in order, so the
 * tables keyed by gid grow at their end, where LMDB fills a page before it
 * starts the next; out of order, most pages are split in the middle and
 * stay half full. */
static void new_gid(char *out, size_t len, uint64_t now)
{
	uint8_t r[16];
	uint64_t x, v = coord_stamp(now);
	char buf[40], *p = buf;

	coord_random_id(r);
	memcpy(&x, r, sizeof x);
	p = put_hex(p, v >> 16, 11);
	*p++ = '-';
	p = put_hex(p, v & 0xffff, 4);
	p = put_hex(p, x & (uint64_t)0xffffffffffff, 12);
	size_t n = (size_t)(p - buf) < len ? (size_t)(p - buf) : len - 1;
	memcpy(out, buf, n);
	out[n] = '\0';
}

/*
 * The gid (the caller's, checked, or a new one), the time limit and the
 * deadline of a new transaction. The deadline is for the client to read;
 * the limit is what decides (on the cluster clock, wal/fsm.h). False after
 * answering the call with the error.
 */
static bool new_tx_identity(struct coord *c, struct rpc_call *call,
			    const char *req_gid, uint32_t req_timeout,
			    uint64_t now, char *gid, size_t gid_len,
			    uint64_t *deadline, uint32_t *timeout_ms)
{
	uint32_t timeout =
	    req_timeout != 0 ? req_timeout : c->cfg.default_timeout_ms;

	if (timeout > c->cfg.max_timeout_ms) {
		char msg[96];
		snprintf(msg, sizeof msg, "timeout_ms over the limit of %u",
			 c->cfg.max_timeout_ms);
		coord_fail(c, call, SETTLE_EINVAL, msg);
		return false;
	}
	if (req_gid[0] != '\0') {
		if (wal_gid_validate(req_gid) != 0) {
			coord_fail(
			    c, call, SETTLE_EINVAL,
			    "gid must be 1-128 printable ASCII bytes without "
			    "spaces");
			return false;
		}
		snprintf(gid, gid_len, "%s", req_gid);
	} else {
		new_gid(gid, gid_len, now);
	}
	*deadline = now + timeout;
	*timeout_ms = timeout;
	return true;
}

static void do_begin(struct coord *c, struct rpc_call *call, const uint8_t *b,
		     size_t n)
{
	Settle__V1__BeginRequest *req;
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdBegin op = SETTLE__V1__CMD_BEGIN__INIT;
	char gid[WAL_GID_MAX + 1], xgid[XA_XID_GID_LEN + 1];
	char owner[WAL_OWNER_MAX + 1];
	const char *req_gid;
	uint64_t now = coord_wall_now(c);

	req = settle__v1__begin_request__unpack(NULL, n, b);
	if (req == NULL) {
		coord_fail(c, call, SETTLE_EINVAL, "invalid BeginRequest");
		return;
	}
	if (!dispatch__cmd_id_ok(c, call, &req->cmd_id))
		goto out;
	/* Before the XA checks: a join would answer without looking. */
	if (req->n_branches > 0 &&
	    req->mode != SETTLE__V1__TX_MODE__TX_MODE_UNSPECIFIED &&
	    req->mode != SETTLE__V1__TX_MODE__TCC &&
	    req->mode != SETTLE__V1__TX_MODE__XA) {
		coord_fail(c, call, SETTLE_EINVAL,
			   "branches are declared by TCC and XA transactions "
			   "only (a saga submits steps)");
		goto out;
	}
	if (req->n_branches > 0 && req->mode == SETTLE__V1__TX_MODE__XA) {
		if (!dispatch__level_ok(c, call, FSM_LEVEL_XA_PHASE2,
					"RM branches declared at begin"))
			goto out;
		/* As REGISTER_BRANCH: an RM this leader knows (the rest of
		 * the branch is checked with the command). */
		for (size_t i = 0; i < req->n_branches; i++) {
			const char *rm = req->branches[i]->rm;

			if (rm[0] != '\0' &&
			    coord_config_xa_rm(&c->cfg, rm) == NULL) {
				char msg[128];

				snprintf(msg, sizeof msg,
					 "resource manager %.64s is not "
					 "configured",
					 rm);
				coord_fail(c, call, SETTLE_ENOTFOUND, msg);
				goto out;
			}
		}
	}
	if (!dispatch__xa_begin(c, call, req, xgid, &req_gid))
		goto out;
	if (!quota_admits(c, call))
		goto out;
	if (!new_tx_identity(c, call, req_gid, req->timeout_ms, now, gid,
			     sizeof gid, &op.deadline_ms, &op.timeout_ms))
		goto out;
	op.gid = gid;
	op.owner =
	    (char *)dispatch__owner_for_begin(c, call, owner, sizeof owner);
	op.mode = req->mode == SETTLE__V1__TX_MODE__XA
		      ? SETTLE__V1__TX_MODE__XA
		      : SETTLE__V1__TX_MODE__TCC;
	op.xid = req->xid;
	/* Validated with the command (wal_command_validate). */
	op.n_branches = req->n_branches;
	op.branches = req->branches;
	if (op.mode == SETTLE__V1__TX_MODE__XA && op.n_branches > 0)
		op.xa_format_id = c->cfg.xa_format_id;
	cmd.cmd_id = req->cmd_id;
	cmd.request_digest =
	    wal_request_digest(SETTLE__V1__METHOD__BEGIN, &req->base);
	cmd.time_ms = now;
	cmd.op_case = SETTLE__V1__COMMAND__OP_BEGIN;
	cmd.begin = &op;
	if (op.n_branches > 0 && fsm_level(&c->fsm) < FSM_LEVEL_BATCH) {
		/* Some member may not apply declared branches yet (feature
		 * level 1): begin without them, after checking them as if
		 * they were kept; the answer holds no branch ids and the
		 * client registers them (docs/PROTOCOL.md). */
		char why[256];
		int rv = wal_command_validate(&cmd, why, sizeof why);

		if (rv != 0) {
			coord_fail(c, call, rv, why);
			goto out;
		}
		op.n_branches = 0;
		op.branches = NULL;
	}
	dispatch__propose(c, call, SETTLE__V1__METHOD__BEGIN, &cmd, gid, false,
			  0);
out:
	settle__v1__begin_request__free_unpacked(req, NULL);
}

/* A whole saga in one call: one raft command carries every step. */
static void do_submit_saga(struct coord *c, struct rpc_call *call,
			   const uint8_t *b, size_t n)
{
	Settle__V1__SubmitSagaRequest *req;
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdSagaBegin op = SETTLE__V1__CMD_SAGA_BEGIN__INIT;
	char gid[WAL_GID_MAX + 1], owner[WAL_OWNER_MAX + 1];
	char msg[256];
	uint64_t now = coord_wall_now(c);
	int rv;

	req = settle__v1__submit_saga_request__unpack(NULL, n, b);
	if (req == NULL) {
		coord_fail(c, call, SETTLE_EINVAL, "invalid SubmitSagaRequest");
		return;
	}
	if (!dispatch__cmd_id_ok(c, call, &req->cmd_id))
		goto out;
	rv = wal_saga_steps_validate(req->steps, req->n_steps, req->dag, msg,
				     sizeof msg);
	if (rv != 0) {
		coord_fail(c, call, rv, msg);
		goto out;
	}
	if (!new_tx_identity(c, call, req->gid, req->timeout_ms, now, gid,
			     sizeof gid, &op.deadline_ms, &op.timeout_ms))
		goto out;
	op.gid = gid;
	op.owner =
	    (char *)dispatch__owner_for_begin(c, call, owner, sizeof owner);
	op.recovery = req->recovery;
	op.dag = req->dag;
	op.n_steps = req->n_steps;
	op.steps = req->steps;
	cmd.cmd_id = req->cmd_id;
	cmd.request_digest =
	    wal_request_digest(SETTLE__V1__METHOD__SUBMIT_SAGA, &req->base);
	cmd.time_ms = now;
	cmd.op_case = SETTLE__V1__COMMAND__OP_SAGA_BEGIN;
	cmd.saga_begin = &op;
	dispatch__propose(c, call, SETTLE__V1__METHOD__SUBMIT_SAGA, &cmd, gid,
			  false, 0);
out:
	settle__v1__submit_saga_request__free_unpacked(req, NULL);
}

static void do_register(struct coord *c, struct rpc_call *call,
			const uint8_t *b, size_t n)
{
	Settle__V1__RegisterBranchRequest *req;
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdRegister op = SETTLE__V1__CMD_REGISTER__INIT;

	req = settle__v1__register_branch_request__unpack(NULL, n, b);
	if (req == NULL) {
		coord_fail(c, call, SETTLE_EINVAL,
			   "invalid RegisterBranchRequest");
		return;
	}
	if (!dispatch__cmd_id_ok(c, call, &req->cmd_id) ||
	    !dispatch__owner_ok(c, call, req->gid, true) ||
	    !dispatch__xa_register_ok(c, call, req))
		goto out;
	op.gid = req->gid;
	op.rm = req->rm;
	/* The FSM builds the branch's XID with it: every node the same. */
	if (req->rm[0] != '\0')
		op.xa_format_id = c->cfg.xa_format_id;
	op.endpoint = req->endpoint;
	op.resource = req->resource;
	op.payload = req->payload;
	cmd.cmd_id = req->cmd_id;
	cmd.request_digest =
	    wal_request_digest(SETTLE__V1__METHOD__REGISTER_BRANCH, &req->base);
	cmd.op_case = SETTLE__V1__COMMAND__OP_REGISTER;
	cmd.register_ = &op;
	dispatch__propose(c, call, SETTLE__V1__METHOD__REGISTER_BRANCH, &cmd,
			  req->gid, false, 0);
out:
	settle__v1__register_branch_request__free_unpacked(req, NULL);
}

static void do_decide(struct coord *c, struct rpc_call *call, int method,
		      const uint8_t *b, size_t n)
{
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdDecide op = SETTLE__V1__CMD_DECIDE__INIT;
	ProtobufCMessage *msg;
	ProtobufCBinaryData id;
	const char *gid;
	bool wait;
	uint32_t wait_ms;

	if (method == SETTLE__V1__METHOD__COMMIT) {
		Settle__V1__CommitRequest *r =
		    settle__v1__commit_request__unpack(NULL, n, b);
		if (r == NULL) {
			coord_fail(c, call, SETTLE_EINVAL,
				   "invalid CommitRequest");
			return;
		}
		msg = &r->base;
		id = r->cmd_id;
		gid = r->gid;
		wait = r->wait;
		wait_ms = r->wait_ms;
		op.decision = SETTLE__V1__DECISION__DECIDE_COMMIT;
		op.reason = "client commit";
		op.one_phase = r->one_phase;
		op.initiator_phase2_ms = r->initiator_phase2_ms;
		op.n_votes = r->n_votes;
		op.votes = r->votes;
		if (op.n_votes > 0 &&
		    !dispatch__level_ok(c, call, FSM_LEVEL_XA_PHASE2,
					"votes with a commit")) {
			protobuf_c_message_free_unpacked(msg, NULL);
			return;
		}
		if (op.initiator_phase2_ms > 0) {
			/* Answered at once: phase 2 is the initiator's. */
			wait = false;
			if (!dispatch__level_ok(c, call, FSM_LEVEL_XA_PHASE2,
						"phase 2 by the initiator")) {
				protobuf_c_message_free_unpacked(msg, NULL);
				return;
			}
		}
	} else {
		Settle__V1__RollbackRequest *r =
		    settle__v1__rollback_request__unpack(NULL, n, b);
		if (r == NULL) {
			coord_fail(c, call, SETTLE_EINVAL,
				   "invalid RollbackRequest");
			return;
		}
		msg = &r->base;
		id = r->cmd_id;
		gid = r->gid;
		wait = r->wait;
		wait_ms = r->wait_ms;
		op.decision = SETTLE__V1__DECISION__DECIDE_ROLLBACK;
		op.reason =
		    r->reason[0] != '\0' ? r->reason : "client rollback";
	}
	if (dispatch__cmd_id_ok(c, call, &id) &&
	    dispatch__owner_ok(c, call, gid, true)) {
		op.gid = (char *)gid;
		cmd.cmd_id = id;
		cmd.request_digest = wal_request_digest(method, msg);
		cmd.op_case = SETTLE__V1__COMMAND__OP_DECIDE;
		cmd.decide = &op;
		dispatch__propose(c, call, method, &cmd, gid, wait, wait_ms);
	}
	protobuf_c_message_free_unpacked(msg, NULL);
}

/*
 * TX_RETRY / TX_RESOLVE: an operator unsticks a transaction (wal/operator.h).
 * One command each, answered once applied, so a retried request with the
 * same cmd_id acts at most once.
 */
char *dispatch__signed_reason(struct rpc_call *call, char *reason, char *buf,
			      size_t len)
{
	const char *name = rpc_call_peer_name(call);

	if (name[0] == '\0')
		return reason;
	snprintf(buf, len, "by certificate %s%s%s", name,
		 reason != NULL && reason[0] != '\0' ? ": " : "",
		 reason != NULL ? reason : "");
	return buf;
}

static void do_operator(struct coord *c, struct rpc_call *call, int method,
			const uint8_t *b, size_t n)
{
	char signed_reason[DISPATCH_REASON_MAX];
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdRetry retry = SETTLE__V1__CMD_RETRY__INIT;
	Settle__V1__CmdResolve resolve = SETTLE__V1__CMD_RESOLVE__INIT;
	ProtobufCMessage *msg;
	ProtobufCBinaryData id;
	const char *gid;

	if (method == SETTLE__V1__METHOD__TX_RETRY) {
		Settle__V1__TxRetryRequest *r =
		    settle__v1__tx_retry_request__unpack(NULL, n, b);
		if (r == NULL) {
			coord_fail(c, call, SETTLE_EINVAL,
				   "invalid TxRetryRequest");
			return;
		}
		msg = &r->base;
		id = r->cmd_id;
		gid = r->gid;
		retry.gid = r->gid;
		retry.branch_id = r->branch_id;
		retry.reason = dispatch__signed_reason(
		    call, r->reason, signed_reason, sizeof signed_reason);
		cmd.op_case = SETTLE__V1__COMMAND__OP_RETRY;
		cmd.retry = &retry;
	} else {
		Settle__V1__TxResolveRequest *r =
		    settle__v1__tx_resolve_request__unpack(NULL, n, b);
		if (r == NULL) {
			coord_fail(c, call, SETTLE_EINVAL,
				   "invalid TxResolveRequest");
			return;
		}
		msg = &r->base;
		id = r->cmd_id;
		gid = r->gid;
		resolve.gid = r->gid;
		resolve.branch_id = r->branch_id;
		resolve.reason = dispatch__signed_reason(
		    call, r->reason, signed_reason, sizeof signed_reason);
		cmd.op_case = SETTLE__V1__COMMAND__OP_RESOLVE;
		cmd.resolve = &resolve;
	}
	if (dispatch__cmd_id_ok(c, call, &id)) {
		cmd.cmd_id = id;
		cmd.request_digest = wal_request_digest(method, msg);
		dispatch__propose(c, call, method, &cmd, gid, false, 0);
	}
	protobuf_c_message_free_unpacked(msg, NULL);
}

/* --roles: whether the caller's certificate may call method; answered
 * PERMISSION_DENIED (naming both) when not. */
static bool role_admits(struct coord *c, struct rpc_call *call, int method)
{
	struct rpc_peer_id id;
	const char *name;
	unsigned has, needs;
	char h[80], n[80], msg[400];

	if (!c->roles_on)
		return true;
	rpc_call_peer_id(call, &id);
	/* A certificate without a usable CN is named by its fingerprint. */
	name = id.name[0] != '\0' ? id.name : id.fingerprint;
	has = coord_roles_of(&c->roles, &id);
	needs = coord_roles_for_method(method);
	if ((has & needs) != 0)
		return true;
	snprintf(msg, sizeof msg,
		 "certificate '%s' has %s; this call needs %s (settled "
		 "--roles)",
		 name, coord_roles_names(has, h, sizeof h),
		 needs != 0 ? coord_roles_names(needs, n, sizeof n)
			    : "a role no certificate has");
	coord_fail(c, call, SETTLE_EDENIED, msg);
	return false;
}

void coord_dispatch(void *data, struct rpc_call *call)
{
	struct coord *c = data;
	int method = rpc_call_method(call);
	const uint8_t *body;
	size_t len;

	body = rpc_call_body(call, &len);
	settle_tracef("rpc", "%s: method %d, %zu bytes", rpc_call_peer(call),
		      method, len);
	/* Closed by default: a method no role lists (one added later and
	 * forgotten in roles.c) is refused to every certificate. */
	if (!role_admits(c, call, method))
		return;
	switch (method) {
	case SETTLE__V1__METHOD__STATUS:
		coord_do_status(c, call);
		return;
	case SETTLE__V1__METHOD__BACKUP:
		/* Any node: the operator picks which one's store. */
		coord_do_backup(c, call, body, len);
		return;
	case SETTLE__V1__METHOD__CLUSTER_ADD:
	case SETTLE__V1__METHOD__CLUSTER_REMOVE:
	case SETTLE__V1__METHOD__CLUSTER_TRANSFER:
	case SETTLE__V1__METHOD__CLUSTER_MEMBERS:
		coord_admin_dispatch(c, call, method, body, len);
		return;
	case SETTLE__V1__METHOD__BEGIN:
	case SETTLE__V1__METHOD__SUBMIT_SAGA:
	case SETTLE__V1__METHOD__REGISTER_BRANCH:
	case SETTLE__V1__METHOD__COMMIT:
	case SETTLE__V1__METHOD__ROLLBACK:
	case SETTLE__V1__METHOD__QUERY:
	case SETTLE__V1__METHOD__LIST:
	case SETTLE__V1__METHOD__TX_RETRY:
	case SETTLE__V1__METHOD__TX_RESOLVE:
	case SETTLE__V1__METHOD__XA_VOTE:
	case SETTLE__V1__METHOD__XA_PREPARE:
	case SETTLE__V1__METHOD__XA_RECOVER:
	case SETTLE__V1__METHOD__XA_FORGET:
	case SETTLE__V1__METHOD__XA_HEURISTIC:
	case SETTLE__V1__METHOD__PARTICIPANTS:
		if (!leader_or_fail(c, call))
			return;
		break;
	default:
		coord_fail(c, call, SETTLE_ENOMETHOD,
			   "a coordinator serves BEGIN, SUBMIT_SAGA, "
			   "REGISTER_BRANCH, COMMIT, ROLLBACK, QUERY, STATUS, "
			   "LIST, TX_RETRY, TX_RESOLVE, XA_VOTE, XA_PREPARE, "
			   "XA_RECOVER, XA_FORGET, XA_HEURISTIC, PARTICIPANTS, "
			   "BACKUP and CLUSTER_*");
		return;
	}
	switch (method) {
	case SETTLE__V1__METHOD__BEGIN:
		do_begin(c, call, body, len);
		break;
	case SETTLE__V1__METHOD__SUBMIT_SAGA:
		do_submit_saga(c, call, body, len);
		break;
	case SETTLE__V1__METHOD__REGISTER_BRANCH:
		do_register(c, call, body, len);
		break;
	case SETTLE__V1__METHOD__COMMIT:
	case SETTLE__V1__METHOD__ROLLBACK:
		do_decide(c, call, method, body, len);
		break;
	case SETTLE__V1__METHOD__QUERY:
		coord_do_query(c, call, body, len);
		break;
	case SETTLE__V1__METHOD__LIST:
		coord_do_list(c, call, body, len);
		break;
	case SETTLE__V1__METHOD__TX_RETRY:
	case SETTLE__V1__METHOD__TX_RESOLVE:
		do_operator(c, call, method, body, len);
		break;
	case SETTLE__V1__METHOD__XA_VOTE:
	case SETTLE__V1__METHOD__XA_PREPARE:
	case SETTLE__V1__METHOD__XA_FORGET:
	case SETTLE__V1__METHOD__XA_HEURISTIC:
		dispatch__do_xa(c, call, method, body, len);
		break;
	case SETTLE__V1__METHOD__XA_RECOVER:
		coord_do_xa_recover(c, call, body, len);
		break;
	case SETTLE__V1__METHOD__PARTICIPANTS:
		coord_do_participants(c, call);
		break;
	}
}

/*
 * admin_op.c — the steps of a membership change.
 *
 * A change is an admin_op that walks through steps. Each step starts one
 * asynchronous raft operation (a CmdMember proposal, raft_add,
 * raft_assign, raft_remove, raft_transfer); its callback only records the
 * outcome and wakes the op from a zero timer, so the next step never runs
 * inside one of raft's callbacks. A step that fails answers the operator
 * with what was done and what failed, and ends the op.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_int.h"
#include "error.h"
#include "log.h"
#include "propose.h"
#include "role.h"
#include "wal/members.h"

/* raft 0.15 gives up a promotion when a catch-up round makes no progress
 * for max_catch_up_round_duration (5 s); a node still loading a snapshot
 * may need more than one chance. */
#define PROMOTE_TRIES 3
/* After a transfer's callback, how long to wait to learn the new leader. */
#define TRANSFER_WAIT_MS 3000
#define POLL_MS		 50

void admin__op_free(struct admin_op *op)
{
	if (op->c->admin_op == op)
		op->c->admin_op = NULL;
	free(op);
}

static void op_fail(struct admin_op *op, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void op_fail(struct admin_op *op, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	settle_log(SETTLE_LOG_WARN, "admin", "%s", msg);
	admin__answer_fail(op->c, op->call, err, msg);
	admin__op_free(op);
}

/*
 * Our code for a raft failure. Clients retry UNAVAILABLE, NOT_LEADER and
 * TIMEOUT by themselves; a node that did not catch up gets WRONG_STATE so
 * that the operator hears about it at once instead of after retries.
 */
static int admin_err(int raft_rv)
{
	switch (raft_rv) {
	case RAFT_DUPLICATEID:
	case RAFT_DUPLICATEADDRESS:
		return SETTLE_EEXISTS;
	case RAFT_BADID:
	case RAFT_NOTFOUND:
		return SETTLE_ENOTFOUND;
	case RAFT_BADROLE:
		return SETTLE_EINVAL;
	case RAFT_NOCONNECTION:
		return SETTLE_ESTATE;
	case RAFT_CANTCHANGE:
		return SETTLE_EUNAVAIL;
	}
	return settle_err_from_raft(raft_rv) == SETTLE_ERAFT
		   ? SETTLE_EUNAVAIL
		   : settle_err_from_raft(raft_rv);
}

/* A raft step failed: keep raft's own words for the operator. */
static int step_err(struct admin_op *op, int raft_rv)
{
	op->raft_rv = raft_rv;
	op->err = admin_err(raft_rv);
	snprintf(op->errmsg, sizeof op->errmsg, "%s", raft_strerror(raft_rv));
	return op->err;
}

void admin__advance(struct admin_op *op);

static void timer_closed(uv_handle_t *h)
{
	admin__advance(h->data);
}

static bool transfer_settled(struct admin_op *op)
{
	uint64_t lid = admin__leader_id(op->c);

	return op->c->closing || lid != 0 || settle_mono_ms() >= op->wait_until;
}

static void timer_fired(uv_timer_t *t)
{
	struct admin_op *op = t->data;

	if (op->step == TRANSFER_WAIT && !transfer_settled(op))
		return; /* poll again */
	uv_close((uv_handle_t *)t, timer_closed);
}

/* Run admin__advance() from the loop, outside whatever callback we are in; with
 * repeat_ms, keep polling (TRANSFER_WAIT). */
static void wake(struct admin_op *op, uint64_t repeat_ms)
{
	uv_timer_init(op->c->loop, &op->timer);
	op->timer.data = op;
	uv_timer_start(&op->timer, timer_fired, 0, repeat_ms);
}

static void change_cb(struct raft_change *req, int status)
{
	struct admin_op *op = req->data;

	if (status != 0)
		step_err(op, status);
	wake(op, 0);
}

static void transfer_cb(struct raft_transfer *req)
{
	struct admin_op *op = req->data;

	op->step = TRANSFER_WAIT;
	op->wait_until = settle_mono_ms() + TRANSFER_WAIT_MS;
	wake(op, POLL_MS);
}

static void member_proposed(struct coord *c, void *data, int err,
			    const Settle__V1__CmdResult *res)
{
	struct admin_op *op = data;

	(void)c;
	if (err == 0 && res->code != SETTLE__V1__CODE__OK) {
		err = settle_err_from_wire(res->code);
		if (op->err == 0)
			snprintf(op->errmsg, sizeof op->errmsg, "%s",
				 res->message);
	}
	if (err != 0 && op->err == 0) {
		op->err = err;
		if (op->errmsg[0] == '\0')
			snprintf(op->errmsg, sizeof op->errmsg, "%s",
				 settle_strerror(err));
	}
	if (--op->proposals == 0)
		wake(op, 0);
}

/* Propose CmdMember; counts in op->proposals. */
static int propose_member(struct admin_op *op, uint64_t id, const char *raft,
			  const char *client, bool remove)
{
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdMember m = SETTLE__V1__CMD_MEMBER__INIT;
	int rv;

	m.id = id;
	m.raft_address = (char *)(raft != NULL ? raft : "");
	m.client_endpoint = (char *)(client != NULL ? client : "");
	m.remove = remove;
	/* The operator's own change says who asked, once every member
	 * keeps it alike (feature level 8). */
	if (id == op->id && fsm_level(&op->c->fsm) >= FSM_LEVEL_MEMBER_AUDIT)
		m.asked_by = op->asked_by;
	if (wal_member_validate(&m, NULL, 0) != 0)
		return SETTLE_EINVAL;
	cmd.op_case = SETTLE__V1__COMMAND__OP_MEMBER;
	cmd.member = &m;
	rv = coord_propose(op->c, &cmd, member_proposed, op);
	if (rv == 0)
		op->proposals++;
	return rv;
}

/* Whether the members table already says id is at raft/client. */
static bool recorded(struct coord *c, uint64_t id, const char *raft,
		     const char *client)
{
	Settle__V1__MemberRecord *m = NULL;
	bool same;

	if (store_member_get(c->store, NULL, id, &m) != 0)
		return false;
	same = strcmp(m->raft_address, raft) == 0 &&
	       strcmp(m->client_endpoint, client) == 0;
	settle__v1__member_record__free_unpacked(m, NULL);
	return same;
}

/*
 * Record the new node's endpoints, and those of the members this node
 * knows from --peers that the table lacks: a node that joins later has
 * no --peers of its own and learns every endpoint from the log.
 */
static int add_directory(struct admin_op *op)
{
	struct coord *c = op->c;
	const struct raft_configuration *conf = &c->raft.configuration;
	int rv;

	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		const char *ep = coord_config_client_of(&c->cfg, s->id);

		if (s->id == op->id || ep == NULL ||
		    recorded(c, s->id, s->address, ep))
			continue;
		/* A --peers address the commands refuse (port 0 in tests)
		 * is simply not recorded. */
		rv = propose_member(op, s->id, s->address, ep, false);
		if (rv != 0 && rv != SETTLE_EINVAL)
			return rv;
	}
	/* At level 8 always: the row records who added the node. */
	if (fsm_level(&c->fsm) >= FSM_LEVEL_MEMBER_AUDIT ||
	    !recorded(c, op->id, op->raft, op->client))
		return propose_member(op, op->id, op->raft, op->client, false);
	return 0;
}

/* ---- Steps ------------------------------------------------------------------
 */

static void reply_added(struct admin_op *op)
{
	Settle__V1__ClusterAddResponse resp =
	    SETTLE__V1__CLUSTER_ADD_RESPONSE__INIT;
	Settle__V1__Member m;
	char buf[WAL_ENDPOINT_MAX + 1];
	const struct raft_server *s = admin__server_of(op->c, op->id);

	if (s == NULL) {
		op_fail(op, SETTLE_EUNAVAIL,
			"node %llu left the configuration meanwhile",
			(unsigned long long)op->id);
		return;
	}
	admin__member_of(op->c, s, &m, buf, sizeof buf);
	resp.member = &m;
	settle_log(SETTLE_LOG_INFO, "admin", "node %llu is a %s",
		   (unsigned long long)op->id, admin__role_name(s->role));
	rpc_call_reply(op->call, &resp.base);
	admin__op_free(op);
}

/* What failed during an add, with what stays in place and what to do. */
static void add_failed(struct admin_op *op)
{
	const struct raft_server *s = admin__server_of(op->c, op->id);
	unsigned long long id = (unsigned long long)op->id;

	if (op->step == ADD_RECORDED) {
		op_fail(op, op->err,
			"add node %llu: recording its endpoints: %s", id,
			op->errmsg);
	} else if (s == NULL) {
		op_fail(op, op->err, "add node %llu: raft_add: %s", id,
			op->errmsg);
	} else if (op->raft_rv == RAFT_NOCONNECTION) {
		op_fail(op, op->err,
			"add node %llu: it is a %s but did not catch up with "
			"the leader (%s); check that it runs (settled --join) "
			"and that %s is reachable from the leader, then run "
			"cluster add again, or cluster remove %llu",
			id, admin__role_name(s->role), op->errmsg, s->address,
			id);
	} else {
		op_fail(op, op->err,
			"add node %llu: it is a %s; making it a %s: %s", id,
			admin__role_name(s->role),
			admin__role_name(op->assigning), op->errmsg);
	}
}

static void probe_answered(void *data, const struct rpc_result *res)
{
	struct admin_op *op = data;
	Settle__V1__StatusResponse *st = NULL;

	op->probe_err = res->err;
	if (res->err == 0) {
		st = settle__v1__status_response__unpack(NULL, res->len,
							 res->body);
		if (st == NULL)
			op->probe_err = SETTLE_EPROTO;
	}
	if (st != NULL) {
		op->probe_level = st->feature_level;
		settle__v1__status_response__free_unpacked(st, NULL);
	}
	wake(op, 0);
}

/* Ask the joiner its feature level (features.c): true when the answer
 * will wake the op. */
static bool probe_level(struct admin_op *op)
{
	if (rpc_client_init(op->c->loop, op->client, &op->c->client_opts,
			    &op->probe) != 0) {
		op->probe = NULL;
		return false;
	}
	if (rpc_client_call(op->probe, SETTLE__V1__METHOD__STATUS, NULL, 2000,
			    probe_answered, op) != 0) {
		rpc_client_close(op->probe);
		op->probe = NULL;
		return false;
	}
	return true;
}

/* The joiner's answer: false when it runs below the cluster's feature
 * level, and then the op has failed. */
static bool level_ok(struct admin_op *op)
{
	uint32_t cluster = fsm_level(&op->c->fsm);
	unsigned long long id = (unsigned long long)op->id;

	if (op->probe_err != 0) {
		/* A --join node serves STATUS before it is added; one that
		 * does not answer may be starting. Adding it still keeps
		 * every member's log the same; it stops by itself if it
		 * cannot apply an entry (wal/fsm.h). */
		settle_log(SETTLE_LOG_WARN, "admin",
			   "node %llu at %s did not tell its feature level "
			   "(%s); adding it: it must run a release that "
			   "applies level %u",
			   id, op->client, settle_strerror(op->probe_err),
			   cluster);
		return true;
	}
	if (op->probe_level >= cluster)
		return true;
	op_fail(op, SETTLE_ESTATE,
		"add node %llu: it runs feature level %u (%s) and the "
		"cluster runs at level %u: it could not apply the cluster's "
		"log; upgrade it first (docs/OPERATIONS.md, \"Upgrading a "
		"cluster\")",
		id, op->probe_level,
		op->probe_level == 0 ? "a release older than feature levels"
				     : "--feature-level",
		cluster);
	return false;
}

static void advance_add(struct admin_op *op)
{
	struct coord *c = op->c;
	const struct raft_server *s;
	int rv;

	if (op->err != 0) {
		/* Retry a promotion that timed out: the node may still be
		 * loading a snapshot, and as a standby it keeps receiving. */
		if (op->step == ADD_ROLE && op->raft_rv == RAFT_NOCONNECTION &&
		    op->assigning == RAFT_VOTER && op->tries < PROMOTE_TRIES) {
			settle_log(SETTLE_LOG_INFO, "admin",
				   "node %llu not caught up yet; trying again",
				   (unsigned long long)op->id);
			op->err = 0;
			op->raft_rv = 0;
		} else {
			add_failed(op);
			return;
		}
	}
	for (;;) {
		switch (op->step) {
		case ADD_LEVEL:
			op->step = ADD_LEVEL_ASKED;
			if (probe_level(op))
				return;
			op->probe_err = SETTLE_ECONNECT;
			break;
		case ADD_LEVEL_ASKED:
			if (!level_ok(op))
				return;
			op->step = ADD_DIRECTORY;
			break;
		case ADD_DIRECTORY:
			op->step = ADD_RECORDED;
			rv = add_directory(op);
			if (rv != 0) {
				/* Reported once the proposals made end. */
				op->err = rv;
				snprintf(op->errmsg, sizeof op->errmsg, "%s",
					 settle_strerror(rv));
				if (op->proposals == 0) {
					add_failed(op);
					return;
				}
			}
			if (op->proposals > 0)
				return;
			break;
		case ADD_RECORDED:
			op->step = ADD_RAFT;
			break;
		case ADD_RAFT:
			op->step = ADD_ROLE;
			if (admin__server_of(c, op->id) != NULL)
				break;
			settle_log(SETTLE_LOG_INFO, "admin",
				   "adding node %llu at %s as a spare",
				   (unsigned long long)op->id, op->raft);
			op->change.data = op;
			rv = raft_add(&c->raft, &op->change, op->id, op->raft,
				      change_cb);
			if (rv != 0) {
				op->step = ADD_RAFT;
				step_err(op, rv);
				add_failed(op);
			}
			return;
		case ADD_ROLE:
			s = admin__server_of(c, op->id);
			if (s == NULL) {
				op->err = SETTLE_EUNAVAIL;
				snprintf(op->errmsg, sizeof op->errmsg,
					 "not in the configuration");
				add_failed(op);
				return;
			}
			if (s->role == op->role) {
				op->step = ADD_DONE;
				break;
			}
			/* A spare receives nothing: make it a standby first,
			 * so it is already replicating when raft's catch-up
			 * rounds for the promotion start. */
			op->assigning =
			    op->role == RAFT_VOTER && s->role == RAFT_SPARE
				? RAFT_STANDBY
				: op->role;
			if (op->assigning == RAFT_VOTER)
				op->tries++;
			settle_log(SETTLE_LOG_INFO, "admin",
				   "node %llu: %s -> %s",
				   (unsigned long long)op->id,
				   admin__role_name(s->role),
				   admin__role_name(op->assigning));
			op->change.data = op;
			rv = raft_assign(&c->raft, &op->change, op->id,
					 op->assigning, change_cb);
			if (rv != 0) {
				step_err(op, rv);
				add_failed(op);
			}
			return;
		case ADD_DONE:
			reply_added(op);
			return;
		default:
			op_fail(op, SETTLE_EINTERNAL, "add: bad step %d",
				(int)op->step);
			return;
		}
	}
}

static void advance_remove(struct admin_op *op)
{
	struct coord *c = op->c;
	int rv;

	switch (op->step) {
	case REMOVE_RAFT:
		op->step = REMOVE_FORGET;
		settle_log(SETTLE_LOG_INFO, "admin", "removing node %llu",
			   (unsigned long long)op->id);
		op->change.data = op;
		rv = raft_remove(&c->raft, &op->change, op->id, change_cb);
		if (rv != 0) {
			step_err(op, rv);
			op_fail(op, op->err, "remove node %llu: %s",
				(unsigned long long)op->id, op->errmsg);
		}
		return;
	case REMOVE_FORGET:
		if (op->err != 0) {
			op_fail(op, op->err, "remove node %llu: %s",
				(unsigned long long)op->id, op->errmsg);
			return;
		}
		op->step = REMOVE_DONE;
		/* The row only names endpoints; a stale one is harmless,
		 * so a failure here does not fail the removal. */
		if (propose_member(op, op->id, op->raft, op->client, true) == 0)
			return;
		/* fall through */
	case REMOVE_DONE: {
		Settle__V1__ClusterRemoveResponse resp =
		    SETTLE__V1__CLUSTER_REMOVE_RESPONSE__INIT;

		if (op->err != 0)
			settle_log(SETTLE_LOG_WARN, "admin",
				   "node %llu removed, its members row "
				   "stays: %s",
				   (unsigned long long)op->id, op->errmsg);
		settle_log(SETTLE_LOG_INFO, "admin", "node %llu removed",
			   (unsigned long long)op->id);
		rpc_call_reply(op->call, &resp.base);
		admin__op_free(op);
		return;
	}
	default:
		op_fail(op, SETTLE_EINTERNAL, "remove: bad step %d",
			(int)op->step);
	}
}

void admin__reply_leader(struct admin_op *op, uint64_t lid)
{
	Settle__V1__ClusterTransferResponse resp =
	    SETTLE__V1__CLUSTER_TRANSFER_RESPONSE__INIT;
	char buf[WAL_ENDPOINT_MAX + 1];
	const char *ep = coord_client_of(op->c, lid, buf, sizeof buf);

	resp.leader_id = lid;
	resp.leader = (char *)(ep != NULL ? ep : "");
	rpc_call_reply(op->call, &resp.base);
	admin__op_free(op);
}

static void advance_transfer(struct admin_op *op)
{
	struct coord *c = op->c;
	uint64_t lid;
	int rv;

	if (op->step == TRANSFER_START) {
		if (op->id == 0)
			settle_log(SETTLE_LOG_INFO, "admin",
				   "transferring leadership to any voter");
		else
			settle_log(SETTLE_LOG_INFO, "admin",
				   "transferring leadership to node %llu",
				   (unsigned long long)op->id);
		op->transfer.data = op;
		rv =
		    raft_transfer(&c->raft, &op->transfer, op->id, transfer_cb);
		if (rv == RAFT_NOTFOUND)
			op_fail(op, SETTLE_ESTATE,
				"no other voter to take over leadership");
		else if (rv != 0)
			op_fail(op, admin_err(rv), "transfer: %s",
				raft_strerror(rv));
		return;
	}
	/* TRANSFER_WAIT ended: the transfer happened, failed, or timed out. */
	lid = admin__leader_id(c);
	if (lid == c->cfg.id) {
		op_fail(op, SETTLE_ETIMEOUT,
			"leadership did not move within the election timeout; "
			"node %llu still leads",
			(unsigned long long)lid);
	} else if (lid == 0) {
		op_fail(op, SETTLE_EUNAVAIL,
			"node %llu gave up leadership but no new leader is "
			"known yet; check with cluster members",
			(unsigned long long)c->cfg.id);
	} else if (op->id != 0 && lid != op->id) {
		op_fail(op, SETTLE_ESTATE, "node %llu leads now, not node %llu",
			(unsigned long long)lid, (unsigned long long)op->id);
	} else {
		settle_log(SETTLE_LOG_INFO, "admin", "node %llu leads now",
			   (unsigned long long)lid);
		admin__reply_leader(op, lid);
	}
}

void admin__advance(struct admin_op *op)
{
	if (op->probe != NULL) {
		/* Its answer came: closed here, never from its callback. */
		rpc_client_close(op->probe);
		op->probe = NULL;
	}
	if (op->c->closing) {
		op_fail(op, SETTLE_EUNAVAIL,
			"node is stopping; the membership change may be "
			"incomplete: check with cluster members");
		return;
	}
	switch (op->method) {
	case SETTLE__V1__METHOD__CLUSTER_ADD:
		advance_add(op);
		break;
	case SETTLE__V1__METHOD__CLUSTER_REMOVE:
		advance_remove(op);
		break;
	default:
		advance_transfer(op);
		break;
	}
}

/*
 * admin.c — online membership: checks each request, then hands a change
 * to admin_op.c as an admin_op; answers CLUSTER_MEMBERS itself.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "admin_int.h"
#include "error.h"
#include "log.h"
#include "role.h"
#include "wal/entry.h"

/* ---- Helpers ---------------------------------------------------------------
 */

const struct raft_server *admin__server_of(struct coord *c, uint64_t id)
{
	const struct raft_configuration *conf = &c->raft.configuration;

	for (unsigned i = 0; i < conf->n; i++)
		if (conf->servers[i].id == id)
			return &conf->servers[i];
	return NULL;
}

const char *admin__role_name(int role)
{
	switch (role) {
	case RAFT_VOTER:
		return "voter";
	case RAFT_STANDBY:
		return "standby";
	case RAFT_SPARE:
		return "spare";
	}
	return "unknown";
}

static Settle__V1__MemberRole wire_role(int role)
{
	switch (role) {
	case RAFT_VOTER:
		return SETTLE__V1__MEMBER_ROLE__ROLE_VOTER;
	case RAFT_STANDBY:
		return SETTLE__V1__MEMBER_ROLE__ROLE_STANDBY;
	case RAFT_SPARE:
		return SETTLE__V1__MEMBER_ROLE__ROLE_SPARE;
	}
	return SETTLE__V1__MEMBER_ROLE__MEMBER_ROLE_UNSPECIFIED;
}

uint64_t admin__leader_id(struct coord *c)
{
	raft_id id = 0;
	const char *addr = NULL;

	raft_leader(&c->raft, &id, &addr);
	return id;
}

/* Fill m from server s; buf (len bytes) holds the client endpoint. */
void admin__member_of(struct coord *c, const struct raft_server *s,
		      Settle__V1__Member *m, char *buf, size_t len)
{
	const char *ep = coord_client_of(c, s->id, buf, len);

	settle__v1__member__init(m);
	m->id = s->id;
	m->raft_address = s->address;
	m->client_endpoint = (char *)(ep != NULL ? ep : "");
	m->role = wire_role(s->role);
	m->leader = s->id == admin__leader_id(c);
}

/* Answer with an error; NOT_LEADER carries the leader's endpoint, or
 * becomes UNAVAILABLE when none is known (as in dispatch.c). */
void admin__answer_fail(struct coord *c, struct rpc_call *call, int err,
			const char *msg)
{
	const char *leader = NULL;

	if (err == SETTLE_ENOTLEADER) {
		leader = coord_leader_endpoint(c);
		if (leader[0] == '\0') {
			err = SETTLE_EUNAVAIL;
			if (msg == NULL)
				msg = "no leader yet; retry";
		} else if (msg == NULL) {
			msg = "not the leader; see leader";
		}
	}
	rpc_call_fail(call, err, msg != NULL ? msg : settle_strerror(err),
		      leader);
}

/* ---- Requests
 * ---------------------------------------------------------------- */

static struct admin_op *op_new(struct coord *c, struct rpc_call *call,
			       int method, uint64_t id)
{
	struct admin_op *op = calloc(1, sizeof *op);

	if (op == NULL) {
		admin__answer_fail(c, call, SETTLE_ENOMEM, NULL);
		return NULL;
	}
	op->c = c;
	op->call = call;
	op->method = method;
	op->id = id;
	c->admin_op = op;
	/* Who asked, for the audit: the certificate under TLS. */
	{
		const char *cn = rpc_call_peer_name(call);

		snprintf(op->asked_by, sizeof op->asked_by, "%s %s",
			 cn[0] != '\0' ? "certificate" : "client",
			 cn[0] != '\0' ? cn : rpc_call_peer(call));
		settle_log(
		    SETTLE_LOG_INFO, "admin", "%s of node %llu asked by %s",
		    method == SETTLE__V1__METHOD__CLUSTER_ADD ? "addition"
		    : method == SETTLE__V1__METHOD__CLUSTER_REMOVE
			? "removal"
			: "leadership transfer",
		    (unsigned long long)id, op->asked_by);
	}
	return op;
}

static void do_add(struct coord *c, struct rpc_call *call, const uint8_t *b,
		   size_t n)
{
	Settle__V1__ClusterAddRequest *req;
	const struct raft_configuration *conf = &c->raft.configuration;
	const struct raft_server *s;
	struct admin_op *op;
	char msg[400];
	int role;

	req = settle__v1__cluster_add_request__unpack(NULL, n, b);
	if (req == NULL) {
		admin__answer_fail(c, call, SETTLE_EINVAL,
				   "invalid ClusterAddRequest");
		return;
	}
	switch (req->role) {
	case SETTLE__V1__MEMBER_ROLE__MEMBER_ROLE_UNSPECIFIED:
	case SETTLE__V1__MEMBER_ROLE__ROLE_VOTER:
		role = RAFT_VOTER;
		break;
	case SETTLE__V1__MEMBER_ROLE__ROLE_STANDBY:
		role = RAFT_STANDBY;
		break;
	case SETTLE__V1__MEMBER_ROLE__ROLE_SPARE:
		role = RAFT_SPARE;
		break;
	default:
		admin__answer_fail(c, call, SETTLE_EINVAL, "unknown role");
		goto out;
	}
	if (req->id == 0) {
		admin__answer_fail(c, call, SETTLE_EINVAL,
				   "node id must be > 0");
		goto out;
	}
	if (wal_endpoint_validate(req->raft_address) != 0) {
		snprintf(msg, sizeof msg,
			 "raft address '%.64s' is not host:port",
			 req->raft_address);
		admin__answer_fail(c, call, SETTLE_EINVAL, msg);
		goto out;
	}
	if (wal_endpoint_validate(req->client_endpoint) != 0) {
		snprintf(msg, sizeof msg,
			 "client endpoint '%.64s' is not host:port",
			 req->client_endpoint);
		admin__answer_fail(c, call, SETTLE_EINVAL, msg);
		goto out;
	}
	s = admin__server_of(c, req->id);
	if (s != NULL && strcmp(s->address, req->raft_address) != 0) {
		snprintf(msg, sizeof msg,
			 "node %llu is already a member, at %.64s",
			 (unsigned long long)req->id, s->address);
		admin__answer_fail(c, call, SETTLE_EEXISTS, msg);
		goto out;
	}
	if (s != NULL && s->role == RAFT_VOTER && role != RAFT_VOTER) {
		snprintf(msg, sizeof msg,
			 "node %llu is already a voter; remove it first",
			 (unsigned long long)req->id);
		admin__answer_fail(c, call, SETTLE_EEXISTS, msg);
		goto out;
	}
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *o = &conf->servers[i];
		char buf[WAL_ENDPOINT_MAX + 1];
		const char *ep;

		if (o->id == req->id)
			continue;
		ep = coord_client_of(c, o->id, buf, sizeof buf);
		if (strcmp(o->address, req->raft_address) == 0 ||
		    (ep != NULL && strcmp(ep, req->client_endpoint) == 0)) {
			snprintf(msg, sizeof msg,
				 "node %llu already uses %.64s",
				 (unsigned long long)o->id,
				 strcmp(o->address, req->raft_address) == 0
				     ? o->address
				     : ep);
			admin__answer_fail(c, call, SETTLE_EEXISTS, msg);
			goto out;
		}
	}
	op = op_new(c, call, SETTLE__V1__METHOD__CLUSTER_ADD, req->id);
	if (op == NULL)
		goto out;
	snprintf(op->raft, sizeof op->raft, "%s", req->raft_address);
	snprintf(op->client, sizeof op->client, "%s", req->client_endpoint);
	op->role = role;
	op->step = ADD_LEVEL;
	admin__advance(op);
out:
	settle__v1__cluster_add_request__free_unpacked(req, NULL);
}

static void do_remove(struct coord *c, struct rpc_call *call, const uint8_t *b,
		      size_t n)
{
	Settle__V1__ClusterRemoveRequest *req;
	struct admin_op *op;
	char msg[256];

	req = settle__v1__cluster_remove_request__unpack(NULL, n, b);
	if (req == NULL) {
		admin__answer_fail(c, call, SETTLE_EINVAL,
				   "invalid ClusterRemoveRequest");
		return;
	}
	if (req->id == 0) {
		admin__answer_fail(c, call, SETTLE_EINVAL,
				   "node id must be > 0");
	} else if (admin__server_of(c, req->id) == NULL) {
		snprintf(msg, sizeof msg, "node %llu is not a member",
			 (unsigned long long)req->id);
		admin__answer_fail(c, call, SETTLE_ENOTFOUND, msg);
	} else if (req->id == c->cfg.id) {
		/* The leader cannot commit its own removal and keep
		 * serving; let the operator choose who leads next. */
		snprintf(msg, sizeof msg,
			 "node %llu is the leader: move leadership first "
			 "(cluster transfer), then remove it",
			 (unsigned long long)req->id);
		admin__answer_fail(c, call, SETTLE_ESTATE, msg);
	} else {
		op = op_new(c, call, SETTLE__V1__METHOD__CLUSTER_REMOVE,
			    req->id);
		if (op != NULL) {
			const char *ep = coord_client_of(c, req->id, op->client,
							 sizeof op->client);

			/* Where it served, for the record of its removal. */
			snprintf(op->raft, sizeof op->raft, "%s",
				 admin__server_of(c, req->id)->address);
			if (ep == NULL)
				op->client[0] = '\0';
			else if (ep != op->client)
				snprintf(op->client, sizeof op->client, "%s",
					 ep);
			op->step = REMOVE_RAFT;
			admin__advance(op);
		}
	}
	settle__v1__cluster_remove_request__free_unpacked(req, NULL);
}

static void do_transfer(struct coord *c, struct rpc_call *call,
			const uint8_t *b, size_t n)
{
	Settle__V1__ClusterTransferRequest *req;
	const struct raft_server *s;
	struct admin_op *op;
	char msg[256];

	req = settle__v1__cluster_transfer_request__unpack(NULL, n, b);
	if (req == NULL) {
		admin__answer_fail(c, call, SETTLE_EINVAL,
				   "invalid ClusterTransferRequest");
		return;
	}
	s = req->id != 0 ? admin__server_of(c, req->id) : NULL;
	if (req->id != 0 && s == NULL) {
		snprintf(msg, sizeof msg, "node %llu is not a member",
			 (unsigned long long)req->id);
		admin__answer_fail(c, call, SETTLE_ENOTFOUND, msg);
	} else if (s != NULL && s->role != RAFT_VOTER) {
		snprintf(
		    msg, sizeof msg, "node %llu is a %s; only voters can lead",
		    (unsigned long long)req->id, admin__role_name(s->role));
		admin__answer_fail(c, call, SETTLE_EINVAL, msg);
	} else if (req->id == c->cfg.id) {
		/* Already there: nothing to move. */
		op = op_new(c, call, SETTLE__V1__METHOD__CLUSTER_TRANSFER,
			    req->id);
		if (op != NULL)
			admin__reply_leader(op, c->cfg.id);
	} else {
		op = op_new(c, call, SETTLE__V1__METHOD__CLUSTER_TRANSFER,
			    req->id);
		if (op != NULL) {
			op->step = TRANSFER_START;
			admin__advance(op);
		}
	}
	settle__v1__cluster_transfer_request__free_unpacked(req, NULL);
}

/* The row of id among n rows, NULL if none. */
static const Settle__V1__MemberRecord *
row_of(Settle__V1__MemberRecord *const *rows, size_t n, uint64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (rows[i]->id == id)
			return rows[i];
	return NULL;
}

static void do_members(struct coord *c, struct rpc_call *call)
{
	const struct raft_configuration *conf = &c->raft.configuration;
	Settle__V1__ClusterMembersResponse resp =
	    SETTLE__V1__CLUSTER_MEMBERS_RESPONSE__INIT;
	Settle__V1__Member *ms = NULL, **ptrs = NULL, *gone = NULL,
			   **gone_ptrs = NULL;
	Settle__V1__MemberRecord **rows = NULL, **removed = NULL;
	size_t n_rows = 0, n_removed = 0;
	char(*bufs)[WAL_ENDPOINT_MAX + 1] = NULL;

	/* Who added each member and who removed the former ones: the
	 * store's rows (feature level 8); without them, just the members. */
	if (store_members_list(c->store, NULL, &rows, &n_rows) != 0 ||
	    store_members_removed(c->store, NULL, &removed, &n_removed) != 0)
		settle_log(SETTLE_LOG_WARN, "admin", "members: %s",
			   store_errmsg(c->store));
	if (conf->n > 0) {
		ms = calloc(conf->n, sizeof *ms);
		ptrs = calloc(conf->n, sizeof *ptrs);
		bufs = calloc(conf->n, sizeof *bufs);
		if (ms == NULL || ptrs == NULL || bufs == NULL) {
			admin__answer_fail(c, call, SETTLE_ENOMEM, NULL);
			goto out;
		}
	}
	if (n_removed > 0) {
		gone = calloc(n_removed, sizeof *gone);
		gone_ptrs = calloc(n_removed, sizeof *gone_ptrs);
		if (gone == NULL || gone_ptrs == NULL) {
			admin__answer_fail(c, call, SETTLE_ENOMEM, NULL);
			goto out;
		}
	}
	for (unsigned i = 0; i < conf->n; i++) {
		const Settle__V1__MemberRecord *r =
		    row_of(rows, n_rows, conf->servers[i].id);

		admin__member_of(c, &conf->servers[i], &ms[i], bufs[i],
				 sizeof bufs[i]);
		if (r != NULL) {
			ms[i].added_by = r->added_by;
			ms[i].added_ms = r->added_ms;
		}
		ptrs[i] = &ms[i];
	}
	for (size_t i = 0; i < n_removed; i++) {
		const Settle__V1__MemberRecord *r = removed[i];

		settle__v1__member__init(&gone[i]);
		gone[i].id = r->id;
		gone[i].raft_address = r->raft_address;
		gone[i].client_endpoint = r->client_endpoint;
		gone[i].added_by = r->added_by;
		gone[i].added_ms = r->added_ms;
		gone[i].removed_by = r->removed_by;
		gone[i].removed_ms = r->removed_ms;
		gone_ptrs[i] = &gone[i];
	}
	resp.n_members = conf->n;
	resp.members = ptrs;
	resp.n_removed = n_removed;
	resp.removed = gone_ptrs;
	resp.leader_id = admin__leader_id(c);
	rpc_call_reply(call, &resp.base);
out:
	free(bufs);
	free(ptrs);
	free(ms);
	free(gone_ptrs);
	free(gone);
	store_members_free(rows, n_rows);
	store_members_free(removed, n_removed);
}

void coord_admin_dispatch(struct coord *c, struct rpc_call *call, int method,
			  const uint8_t *body, size_t len)
{
	if (c->closing) {
		admin__answer_fail(c, call, SETTLE_EUNAVAIL,
				   "node is stopping");
		return;
	}
	if (!coord_is_leader(c)) {
		admin__answer_fail(c, call, SETTLE_ENOTLEADER, NULL);
		return;
	}
	if (method == SETTLE__V1__METHOD__CLUSTER_MEMBERS) {
		do_members(c, call);
		return;
	}
	if (!coord_is_ready(c)) {
		/* Its term's barrier is not applied yet (node.c): a change
		 * of the previous leader may still be on its way. */
		admin__answer_fail(c, call, SETTLE_EUNAVAIL,
				   "new leader not ready yet; retry");
		return;
	}
	/* One change at a time: ours, or one raft still has uncommitted
	 * (e.g. left by the previous leader). */
	if (c->admin_op != NULL ||
	    c->raft.configuration_uncommitted_index != 0) {
		char msg[128];

		if (c->admin_op != NULL)
			snprintf(msg, sizeof msg,
				 "a membership change is in progress (%s node "
				 "%llu); retry when it ends",
				 c->admin_op->method ==
					 SETTLE__V1__METHOD__CLUSTER_ADD
				     ? "adding"
				 : c->admin_op->method ==
					 SETTLE__V1__METHOD__CLUSTER_REMOVE
				     ? "removing"
				     : "leadership transfer to",
				 (unsigned long long)c->admin_op->id);
		else
			snprintf(msg, sizeof msg,
				 "a membership change is in progress; retry");
		admin__answer_fail(c, call, SETTLE_EUNAVAIL, msg);
		return;
	}
	switch (method) {
	case SETTLE__V1__METHOD__CLUSTER_ADD:
		do_add(c, call, body, len);
		break;
	case SETTLE__V1__METHOD__CLUSTER_REMOVE:
		do_remove(c, call, body, len);
		break;
	case SETTLE__V1__METHOD__CLUSTER_TRANSFER:
		do_transfer(c, call, body, len);
		break;
	default:
		admin__answer_fail(c, call, SETTLE_ENOMETHOD,
				   "not a cluster method");
		break;
	}
}

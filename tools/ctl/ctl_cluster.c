/*
 * ctl_cluster.c — settlectl cluster members / add / remove / transfer:
 * membership changes through the leader, one at a time.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_cmd.h"
#include "ctl_fmt.h"
#include "ctl_int.h"
#include "log.h"

int ctl_admin_call(const struct ctl_opts *o, uint64_t default_ms, int method,
		   const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *desc,
		   ProtobufCMessage **resp, const char *what)
{
	settle_client *c;
	int rv;

	if (ctl_open_admin(o, default_ms, &c) != 0)
		return CTL_EXIT_USAGE;
	rv = settle_client_call(c, method, req, desc, resp);
	if (rv != 0) {
		fprintf(stderr, "settlectl: %s: %s\n", what,
			settle_client_errmsg(c));
		settle_client_close(c);
		return 1;
	}
	settle_client_close(c);
	return 0;
}

int ctl_cmd_cluster_members(const struct ctl_opts *o)
{
	Settle__V1__ClusterMembersRequest req =
	    SETTLE__V1__CLUSTER_MEMBERS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int rv;

	rv = ctl_admin_call(o, o->timeout_ms,
			    SETTLE__V1__METHOD__CLUSTER_MEMBERS, &req.base,
			    &settle__v1__cluster_members_response__descriptor,
			    &resp, "cluster members");
	if (rv != 0)
		return rv;
	ctl_print_members(stdout, (Settle__V1__ClusterMembersResponse *)resp,
			  o->json);
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

int ctl_cmd_cluster_add(const struct ctl_opts *o, uint64_t id, char *raft,
			char *client)
{
	Settle__V1__ClusterAddRequest req =
	    SETTLE__V1__CLUSTER_ADD_REQUEST__INIT;
	Settle__V1__ClusterAddResponse *r;
	ProtobufCMessage *resp = NULL;
	int rv;

	req.id = id;
	req.raft_address = raft;
	req.client_endpoint = client;
	if (o->have_role)
		req.role = o->role;
	rv =
	    ctl_admin_call(o, 60000, SETTLE__V1__METHOD__CLUSTER_ADD, &req.base,
			   &settle__v1__cluster_add_response__descriptor, &resp,
			   "cluster add");
	if (rv != 0)
		return rv;
	r = (Settle__V1__ClusterAddResponse *)resp;
	if (r->member != NULL) {
		if (!o->json)
			fputs("added ", stdout);
		ctl_print_member(stdout, r->member, o->json);
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

int ctl_cmd_cluster_remove(const struct ctl_opts *o, uint64_t id)
{
	Settle__V1__ClusterRemoveRequest req =
	    SETTLE__V1__CLUSTER_REMOVE_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int rv;

	req.id = id;
	rv = ctl_admin_call(o, 15000, SETTLE__V1__METHOD__CLUSTER_REMOVE,
			    &req.base,
			    &settle__v1__cluster_remove_response__descriptor,
			    &resp, "cluster remove");
	if (rv != 0)
		return rv;
	protobuf_c_message_free_unpacked(resp, NULL);
	if (o->json) {
		json_t *doc = json_object();

		ctl__set_uint(doc, "removed", id);
		ctl__json_print(stdout, doc);
	} else {
		printf("node %" PRIu64 " removed; stop its process now\n", id);
	}
	return 0;
}

int ctl_cmd_cluster_transfer(const struct ctl_opts *o, uint64_t id)
{
	Settle__V1__ClusterTransferRequest req =
	    SETTLE__V1__CLUSTER_TRANSFER_REQUEST__INIT;
	Settle__V1__ClusterTransferResponse *r;
	ProtobufCMessage *resp = NULL;
	int rv;

	req.id = id;
	rv = ctl_admin_call(o, 15000, SETTLE__V1__METHOD__CLUSTER_TRANSFER,
			    &req.base,
			    &settle__v1__cluster_transfer_response__descriptor,
			    &resp, "cluster transfer");
	if (rv != 0)
		return rv;
	r = (Settle__V1__ClusterTransferResponse *)resp;
	if (o->json) {
		json_t *doc = json_object();

		ctl__set_uint(doc, "leader_id", r->leader_id);
		ctl__set_str(doc, "leader", r->leader);
		ctl__json_print(stdout, doc);
	} else {
		printf("node %" PRIu64 " leads now%s%s%s\n", r->leader_id,
		       r->leader[0] ? " (clients: " : "", r->leader,
		       r->leader[0] ? ")" : "");
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

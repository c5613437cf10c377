/*
 * ctl_read.c — settlectl's reading commands: status (every listed node's
 * own view), participants (the leader's), tx list and tx show.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_cmd.h"
#include "ctl_fmt.h"
#include "log.h"

int ctl_cmd_status(const struct ctl_opts *o)
{
	struct ctl_node_status nodes[64];
	char *list, *save = NULL, *ep;
	settle_client *c;
	size_t n = 0, i, ok = 0;
	int rv;

	list = strdup(o->cluster);
	if (list == NULL) {
		fprintf(stderr, "settlectl: out of memory\n");
		return 1;
	}
	if (ctl_open_client(o, &c) != 0) {
		free(list);
		return CTL_EXIT_USAGE;
	}
	/* Ask every listed node itself: the point is to see each one's view,
	 * not only the leader's. */
	for (ep = strtok_r(list, ",", &save); ep && n < 64;
	     ep = strtok_r(NULL, ",", &save)) {
		ProtobufCMessage *resp = NULL;
		Settle__V1__StatusRequest req =
		    SETTLE__V1__STATUS_REQUEST__INIT;

		nodes[n].endpoint = ep;
		nodes[n].st = NULL;
		nodes[n].errmsg = NULL;
		rv = settle_client_call_at(
		    c, ep, SETTLE__V1__METHOD__STATUS, &req.base,
		    &settle__v1__status_response__descriptor, &resp);
		nodes[n].err = rv;
		if (rv == 0) {
			nodes[n].st = (Settle__V1__StatusResponse *)resp;
			ok++;
		} else {
			nodes[n].errmsg = strdup(settle_client_errmsg(c));
		}
		n++;
	}
	ctl_print_status(stdout, nodes, n, o->json);
	for (i = 0; i < n; i++) {
		if (nodes[i].st)
			protobuf_c_message_free_unpacked(
			    (ProtobufCMessage *)nodes[i].st, NULL);
		free((char *)nodes[i].errmsg);
	}
	settle_client_close(c);
	free(list);
	if (ok == 0) {
		fprintf(stderr, "settlectl: no node of %s answered\n",
			o->cluster);
		return 1;
	}
	return 0;
}

int ctl_cmd_tx_list(const struct ctl_opts *o)
{
	Settle__V1__ListRequest req = SETTLE__V1__LIST_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	settle_client *c;
	int rv;

	if (o->have_state)
		req.state = o->state;
	req.stuck_only = o->stuck;
	req.older_than_ms = o->older_than_ms;
	req.limit = o->limit;
	req.after_gid = (char *)(o->after ? o->after : "");
	if (ctl_open_client(o, &c) != 0)
		return CTL_EXIT_USAGE;
	rv = settle_client_call(c, SETTLE__V1__METHOD__LIST, &req.base,
				&settle__v1__list_response__descriptor, &resp);
	if (rv != 0) {
		fprintf(stderr, "settlectl: tx list: %s\n",
			settle_client_errmsg(c));
		settle_client_close(c);
		return 1;
	}
	ctl_print_list(stdout, (Settle__V1__ListResponse *)resp,
		       settle_now_ms(), o->json);
	protobuf_c_message_free_unpacked(resp, NULL);
	settle_client_close(c);
	return 0;
}

int ctl_cmd_tx_show(const struct ctl_opts *o, const char *gid)
{
	Settle__V1__TxInfo *tx = NULL;
	settle_client *c;
	int rv;

	if (ctl_open_client(o, &c) != 0)
		return CTL_EXIT_USAGE;
	rv = settle_query(c, gid, true, &tx);
	if (rv == SETTLE_ENOTFOUND) {
		fprintf(stderr, "settlectl: no transaction with gid '%s'\n",
			gid);
		settle_client_close(c);
		return 1;
	}
	if (rv != 0) {
		fprintf(stderr, "settlectl: tx show: %s\n",
			settle_client_errmsg(c));
		settle_client_close(c);
		return 1;
	}
	ctl_print_tx(stdout, tx, settle_now_ms(), o->json);
	settle_tx_info_free(tx);
	settle_client_close(c);
	return 0;
}

int ctl_cmd_participants(const struct ctl_opts *o)
{
	Settle__V1__ParticipantsRequest req =
	    SETTLE__V1__PARTICIPANTS_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	int rv;

	rv = ctl_admin_call(o, o->timeout_ms, SETTLE__V1__METHOD__PARTICIPANTS,
			    &req.base,
			    &settle__v1__participants_response__descriptor,
			    &resp, "participants");
	if (rv != 0)
		return rv;
	ctl_print_participants(stdout, (Settle__V1__ParticipantsResponse *)resp,
			       o->json);
	protobuf_c_message_free_unpacked(resp, NULL);
	return 0;
}

/*
 * ctl_xa_cmd.c — settlectl xa recover, xa forget GID and xa commit /
 * rollback GID (docs/XA.md); their printers are ctl_xa.c.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_cmd.h"
#include "ctl_fmt.h"
#include "log.h"
#include "ctl_xa.h"

int ctl_cmd_xa_recover(const struct ctl_opts *o)
{
	Settle__V1__XaRecoverRequest req = SETTLE__V1__XA_RECOVER_REQUEST__INIT;
	ProtobufCMessage *resp = NULL;
	settle_client *c;
	int rv;

	req.limit = o->limit;
	req.after_gid = (char *)(o->after ? o->after : "");
	if (ctl_open_client(o, &c) != 0)
		return CTL_EXIT_USAGE;
	rv = settle_client_call(c, SETTLE__V1__METHOD__XA_RECOVER, &req.base,
				&settle__v1__xa_recover_response__descriptor,
				&resp);
	if (rv != 0) {
		fprintf(stderr, "settlectl: %s\n", settle_client_errmsg(c));
		settle_client_close(c);
		return 1;
	}
	ctl_print_xa_recover(stdout, (Settle__V1__XaRecoverResponse *)resp,
			     o->json);
	protobuf_c_message_free_unpacked(resp, NULL);
	settle_client_close(c);
	return 0;
}

int ctl_cmd_xa_forget(const struct ctl_opts *o, const char *gid)
{
	settle_client *c;
	int rv;

	if (ctl_open_admin(o, CTL_OP_TIMEOUT_MS, &c) != 0)
		return CTL_EXIT_USAGE;
	rv = settle_xa_forget(c, gid);
	if (rv != 0) {
		fprintf(stderr, "settlectl: %s\n", settle_client_errmsg(c));
		settle_client_close(c);
		return 1;
	}
	ctl_print_xa_forget(stdout, gid, o->json);
	settle_client_close(c);
	return 0;
}

int ctl_cmd_xa_heuristic(const struct ctl_opts *o, const char *gid, bool commit)
{
	settle_client *c;
	int state = 0, heuristic = 0;
	int rv;

	if (ctl_open_admin(o, CTL_OP_TIMEOUT_MS, &c) != 0)
		return CTL_EXIT_USAGE;
	rv = settle_xa_heuristic(c, gid, commit, o->reason, &state, &heuristic);
	if (rv != 0) {
		fprintf(stderr, "settlectl: %s\n", settle_client_errmsg(c));
		settle_client_close(c);
		return 1;
	}
	ctl_print_xa_heuristic(stdout, gid, state, heuristic, o->json);
	settle_client_close(c);
	return 0;
}

/* Check the words after "xa"; 0 when fine, else the usage exit. */

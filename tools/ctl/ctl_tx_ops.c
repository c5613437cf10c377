/*
 * ctl_tx_ops.c — settlectl tx retry GID and tx resolve GID: the operator's
 * verbs on one stuck transaction, through the raft log (the bulk retry and
 * the dry runs are ctl_admin.c).
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl_cmd.h"
#include "ctl_fmt.h"
#include "log.h"

int ctl_cmd_tx_retry(const struct ctl_opts *o, const char *gid)
{
	settle_client *c;
	uint32_t retried = 0;
	int state = 0, rv;

	if (ctl_open_admin(o, CTL_OP_TIMEOUT_MS, &c) != 0)
		return CTL_EXIT_USAGE;
	rv = settle_tx_retry(c, gid, o->branch, o->reason, &retried, &state);
	if (rv != 0) {
		fprintf(stderr, "settlectl: %s\n", settle_client_errmsg(c));
		settle_client_close(c);
		return 1;
	}
	ctl_print_retry(stdout, gid, o->branch, retried, state, o->json);
	settle_client_close(c);
	return 0;
}

int ctl_cmd_tx_resolve(const struct ctl_opts *o, const char *gid)
{
	settle_client *c;
	int bstate = 0, state = 0, rv;

	if (ctl_open_admin(o, CTL_OP_TIMEOUT_MS, &c) != 0)
		return CTL_EXIT_USAGE;
	rv = settle_tx_resolve(c, gid, o->branch, o->reason, &bstate, &state);
	if (rv != 0) {
		fprintf(stderr, "settlectl: %s\n", settle_client_errmsg(c));
		settle_client_close(c);
		return 1;
	}
	ctl_print_resolve(stdout, gid, o->branch, bstate, state, o->json);
	settle_client_close(c);
	return 0;
}

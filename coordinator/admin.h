/*
 * admin.h — online membership, for the operator (settlectl cluster ...):
 * CLUSTER_ADD, CLUSTER_REMOVE, CLUSTER_TRANSFER and CLUSTER_MEMBERS.
 *
 * Served by the leader only, one change at a time: a change asked for
 * while another is in flight is refused with UNAVAILABLE ("a membership
 * change is in progress"). Adding a node goes in steps, each waiting for
 * the previous one to commit: its endpoints are recorded through the log
 * (CmdMember, so every node can name it as leader), raft adds it as a
 * spare, makes it a standby (it receives the log or a snapshot), then
 * promotes it to voter once it has caught up. A step that fails leaves the
 * steps before it in place; asking for the same add again resumes.
 *
 * Runs on the loop thread, like the rest of the coordinator.
 */
#ifndef SETTLE_COORD_ADMIN_H
#define SETTLE_COORD_ADMIN_H

#include <stddef.h>
#include <stdint.h>

struct coord;
struct rpc_call;

/*
 * Serve one request of method CLUSTER_ADD, CLUSTER_REMOVE,
 * CLUSTER_TRANSFER or CLUSTER_MEMBERS with body (len bytes, valid for the
 * call). The call is answered exactly once, at once (refusals, MEMBERS) or
 * when the change has ended. Errors on the wire: NOT_LEADER (with the
 * leader's endpoint) or UNAVAILABLE when this node does not lead or is
 * stopping; UNAVAILABLE for a change asked of a leader whose term's
 * barrier is not applied yet, and while another change is in flight;
 * INVALID_ARGUMENT for a bad id, address or role; NOT_FOUND for an id that
 * is not a member; ALREADY_EXISTS for an id or address taken by another
 * member; WRONG_STATE to remove the leader itself; TIMEOUT when a transfer
 * did not happen; UNAVAILABLE (raft error text in the message) when a
 * step failed in raft, e.g. a new node that never caught up.
 */
void coord_admin_dispatch(struct coord *c, struct rpc_call *call, int method,
			  const uint8_t *body, size_t len);

#endif /* SETTLE_COORD_ADMIN_H */

/*
 * role.h — what this node is in the cluster right now: leader or not,
 * ready or not, and where the leader and the other members take client
 * calls. Reads of the raft instance and the members table, nothing more:
 * every stage of the node may ask (see coord.h for the stages).
 */
#ifndef SETTLE_COORD_ROLE_H
#define SETTLE_COORD_ROLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct coord;

/* Whether this node is the raft leader right now. */
bool coord_is_leader(struct coord *c);

/* Leader, and the barrier of its current term has been applied: it may
 * answer clients and act on the outside world (node.c). */
bool coord_is_ready(struct coord *c);

/* Client endpoint of the current leader, "" if unknown. */
const char *coord_leader_endpoint(struct coord *c);

/* Client endpoint of member id: --peers, else the members table (nodes
 * added later), in buf of len bytes. NULL when unknown. */
const char *coord_client_of(struct coord *c, uint64_t id, char *buf,
			    size_t len);

#endif /* SETTLE_COORD_ROLE_H */

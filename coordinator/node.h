/*
 * node.h — one coordinator node (node.c): opens the store, raft and the
 * RPC server, assembles the stages (coord.h draws them) on one uv loop,
 * watches leadership, runs the periodic ticks, and stops.
 */
#ifndef SETTLE_COORD_NODE_H
#define SETTLE_COORD_NODE_H

#include <uv.h>

struct coord;

/*
 * Open everything (LMDB, raft, RPC server) and start. On failure returns a
 * SETTLE_E* code with a message in c->errmsg, having released what it
 * acquired. c->cfg must be filled in before.
 */
int coord_start(struct coord *c, uv_loop_t *loop);

/* Begin a clean stop: stop serving, let raft finish the writes it has in
 * flight (bounded), then close raft; the loop ends once every handle is
 * closed. */
void coord_stop(struct coord *c, int exit_code);

/* Release what remains after the loop ended. */
void coord_close(struct coord *c);

/* On node.c's tick (node_metrics.c): the loop's heartbeat, readiness and
 * the gauges of metrics.h from raft and the store; readiness told to
 * systemd (notify.h). */
void coord_node_metrics_tick(struct coord *c);

#endif /* SETTLE_COORD_NODE_H */

/*
 * features.h — the leader's rounds that raise the cluster's feature level
 * (features.c; docs/ARCHITECTURE.md, "Feature levels"). A producer: it
 * asks every member over RPC and proposes the new level.
 */
#ifndef SETTLE_COORD_FEATURES_H
#define SETTLE_COORD_FEATURES_H

struct coord;

/* Called from the node's tick; closed with the driver. */
void coord_features_tick(struct coord *c);
void coord_features_close(struct coord *c);

#endif /* SETTLE_COORD_FEATURES_H */

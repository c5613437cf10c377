/*
 * driver.h — the phase-2 driver (driver.c, driver_call.c, expiry.c, and
 * xa_drive.c for XA resource managers): on the ready leader, it acts on
 * the transactions the apply stage tells it changed and on those the
 * schedule says are due, calls participants, and proposes what they
 * answered (a second producer into the propose stage).
 */
#ifndef SETTLE_COORD_DRIVER_H
#define SETTLE_COORD_DRIVER_H

#include <stdbool.h>

#include "settle.pb-c.h"

struct coord;

int coord_driver_init(struct coord *c);
/* Ready leader or not: start or stop calling participants. */
void coord_driver_set_active(struct coord *c, bool active);
/* A transaction changed (from inside the apply): act on it soon if it is
 * due. */
void coord_driver_notify(struct coord *c, const Settle__V1__TxRecord *tx);
/* Periodic work: due transactions, deadlines, retries, GC, the cluster
 * clock's entries. */
void coord_driver_tick(struct coord *c);
void coord_driver_close(struct coord *c);
/* The node's TLS certificate was reloaded: drop the connections to
 * participants, so that the next calls present the new one (calls in
 * flight are answered CANCELED and retried). */
void coord_driver_tls_changed(struct coord *c);

/* XA as transaction manager (xa_drive.c, docs/XA.md): the phase-2 calls,
 * recovery scans and heuristics of this node since it started; zeros on a
 * node that never led. */
struct coord_xa_stats;
void coord_xa_stats_get(struct coord *c, struct coord_xa_stats *out);

#endif /* SETTLE_COORD_DRIVER_H */

/*
 * notify.h — settled as a systemd service of Type=notify (libsystemd's
 * sd_notify; scripts/systemd/settled@.service): READY=1 once the node is
 * ready as /readyz says (metrics.h: a member with a leader, caught up), or,
 * started with --join, once it serves and waits to be added (it cannot be
 * a member before an operator adds it); STATUS= whenever its readiness
 * changes; WATCHDOG=1 on the tick when the unit sets WatchdogSec (a loop
 * thread that stops turning gets the node restarted); STOPPING=1 at stop.
 * Without $NOTIFY_SOCKET (not under systemd) every call does nothing.
 */
#ifndef SETTLE_COORD_NOTIFY_H
#define SETTLE_COORD_NOTIFY_H

#include <stdbool.h>
#include <stdint.h>

struct coord_notify {
	bool ready_sent;
	int last;	      /* the readiness said last (-1: none) */
	uint64_t watchdog_ms; /* WatchdogSec, 0: none */
	uint64_t pinged_ms;   /* monotonic ms of the last WATCHDOG=1 */
};

void coord_notify_init(struct coord_notify *n);
/* On the node's tick: readiness `why` (enum coord_not_ready, text the
 * matching coord_metrics_not_ready_text), joining with --join. */
void coord_notify_tick(struct coord_notify *n, int why, const char *text,
		       bool joining, uint64_t now_ms);
void coord_notify_stopping(struct coord_notify *n);

#endif /* SETTLE_COORD_NOTIFY_H */

/*
 * notify.c — settled's messages to systemd (notify.h).
 */
#include <systemd/sd-daemon.h>

#include "metrics.h"
#include "notify.h"

void coord_notify_init(struct coord_notify *n)
{
	uint64_t usec = 0;

	n->ready_sent = false;
	n->last = -1;
	n->pinged_ms = 0;
	/* Ping at a quarter of the unit's WatchdogSec. */
	n->watchdog_ms = sd_watchdog_enabled(0, &usec) > 0 ? usec / 4000 : 0;
}

void coord_notify_tick(struct coord_notify *n, int why, const char *text,
		       bool joining, uint64_t now_ms)
{
	if (!n->ready_sent &&
	    (why == COORD_READY ||
	     (joining && why == COORD_NOT_READY_NOT_MEMBER))) {
		sd_notifyf(0, "READY=1\nSTATUS=%s", text);
		n->ready_sent = true;
		n->last = why;
	} else if (why != n->last) {
		sd_notifyf(0, "STATUS=%s", text);
		n->last = why;
	}
	if (n->watchdog_ms != 0 && now_ms - n->pinged_ms >= n->watchdog_ms) {
		sd_notify(0, "WATCHDOG=1");
		n->pinged_ms = now_ms;
	}
}

void coord_notify_stopping(struct coord_notify *n)
{
	(void)n;
	sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

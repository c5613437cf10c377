/*
 * clock.c — the cluster clock the leader stamps into every command, and
 * this node's estimate of its wall clock's offset from the leader's.
 *
 * Deadlines must not depend on which node's wall clock leads, nor on a
 * step of one (NTP, an operator): so a transaction's time limit runs on the
 * cluster clock (wal/fsm.h). Only a ready leader advances it, with its own
 * monotonic clock, from the highest value applied when it became ready; the
 * FSM keeps the highest value applied in the store. While the leader has
 * nothing to propose while some transaction can expire, its driver appends
 * an empty clock command every CLOCK_IDLE_MS (coord_clock_idle() says when;
 * expiry.c proposes it), so that a new leader starts from at most that much
 * behind the old one: a deadline stretches by at most that and one
 * election, never by an offset between clocks.
 *
 * The leader's wall time (coord_wall_now: the stamps of commands, retry
 * times, the driver's "now") is likewise its wall clock when it became
 * ready, or the latest stamp applied if that is later, advanced by its
 * monotonic clock: a step of the wall clock while it leads changes
 * nothing, and a leader behind the one before does not make the retries
 * that one planned wait. It meets the real wall clock again at the next
 * change of leader.
 *
 * The offset estimate is for operators only (status, a warning in the
 * log): each command carries the leader's wall time when it was proposed;
 * a follower applying it reads its own wall clock. The difference is the
 * offset plus the replication delay, which is never negative, so the
 * smallest difference over a window of entries is the closest estimate.
 * Two windows of CLOCK_WINDOW_MS are kept so that a step of either clock
 * shows within two windows.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "clock.h"
#include "coord.h"
#include "error.h"
#include "log.h"
#include "role.h"

#define CLOCK_IDLE_MS	    1000
#define CLOCK_WINDOW_MS	    5000
#define CLOCK_WARN_EVERY_MS 60000
/* Past this offset from the leader the log warns: NTP keeps clocks within
 * milliseconds, so a second means a clock nobody keeps. */
#define CLOCK_WARN_MS 1000

void coord_clock_start(struct coord *c)
{
	struct coord_clock *k = &c->clock;
	uint64_t applied = 0;

	/* Everything committed before this leader's barrier is applied:
	 * the store holds the highest clock any earlier leader stamped. A
	 * read failure only costs the difference, never a rollback. */
	if (store_clock_get(c->store, NULL, &applied) != 0)
		settle_log(SETTLE_LOG_WARN, "clock",
			   "reading the cluster "
			   "clock: %s",
			   store_errmsg(c->store));
	k->base = applied != 0 ? applied : 1;
	k->mono_base = settle_mono_ms();
	/* Wall stamps go on from the latest one applied when this node's
	 * clock is behind it, so that retry times an earlier leader stamped
	 * do not wait for the difference. */
	k->wall_base = settle_now_ms();
	if (k->wall_base < c->fsm.max_time_ms)
		k->wall_base = c->fsm.max_time_ms;
	k->last_propose_mono = k->mono_base;
	k->running = true;
}

void coord_clock_stop(struct coord *c)
{
	c->clock.running = false;
}

uint64_t coord_clock_now(const struct coord *c)
{
	const struct coord_clock *k = &c->clock;

	if (!k->running)
		return 0;
	return k->base + (settle_mono_ms() - k->mono_base);
}

uint64_t coord_wall_now(const struct coord *c)
{
	const struct coord_clock *k = &c->clock;

	if (!k->running)
		return settle_now_ms();
	return k->wall_base + (settle_mono_ms() - k->mono_base);
}

void coord_clock_stamp(struct coord *c, Settle__V1__Command *cmd)
{
	cmd->clock_ms = coord_clock_now(c);
	cmd->wall_ms = settle_now_ms();
	c->clock.last_propose_mono = settle_mono_ms();
}

bool coord_clock_idle(const struct coord *c)
{
	const struct coord_clock *k = &c->clock;

	return k->running && !k->idle_in_flight &&
	       settle_mono_ms() - k->last_propose_mono >= CLOCK_IDLE_MS;
}

void coord_clock_entry(struct coord *c, bool in_flight)
{
	c->clock.idle_in_flight = in_flight;
}

/* Roll the windows forward to now (monotonic ms). */
static void windows_roll(struct coord_clock *k, uint64_t now)
{
	if (now - k->win_start < CLOCK_WINDOW_MS)
		return;
	bool gap = now - k->win_start >= 2 * CLOCK_WINDOW_MS;
	k->win_has[1] = gap ? false : k->win_has[0];
	k->win_min[1] = k->win_min[0];
	k->win_has[0] = false;
	k->win_start = now;
}

static void maybe_warn(struct coord *c, int64_t offset, uint64_t now)
{
	struct coord_clock *k = &c->clock;
	int64_t mag = offset < 0 ? -offset : offset;

	if (mag < CLOCK_WARN_MS ||
	    (k->warned_mono != 0 && now - k->warned_mono < CLOCK_WARN_EVERY_MS))
		return;
	k->warned_mono = now;
	settle_log(SETTLE_LOG_WARN, "clock",
		   "this node's clock is about %" PRId64 " ms %s the "
		   "leader's (warning past %d ms): deadlines do not depend "
		   "on it, but logs and the wall times shown by status and "
		   "query do; check NTP on both",
		   mag, offset > 0 ? "ahead of" : "behind", CLOCK_WARN_MS);
}

void coord_clock_applied(struct coord *c, uint64_t stamp_ms)
{
	struct coord_clock *k = &c->clock;
	uint64_t now = settle_mono_ms();
	int64_t d;

	/* A leader measures nothing against its own stamps. */
	if (stamp_ms == 0 || coord_is_leader(c))
		return;
	d = (int64_t)(settle_now_ms() - stamp_ms);
	windows_roll(k, now);
	if (!k->win_has[0] || d < k->win_min[0]) {
		k->win_min[0] = d;
		k->win_has[0] = true;
	}
	/* Warn only from a whole window: entries applied in a burst after a
	 * restart, a snapshot or a cut (a backlog, stamped seconds ago) are
	 * the only ones in the first, and would read as a clock ahead. */
	int64_t off;
	if (k->win_has[1] && coord_clock_offset(c, &off))
		maybe_warn(c, off, now);
}

bool coord_clock_offset(struct coord *c, int64_t *offset_ms)
{
	struct coord_clock *k = &c->clock;

	if (coord_is_ready(c)) {
		*offset_ms = 0;
		return true;
	}
	windows_roll(k, settle_mono_ms());
	if (!k->win_has[0] && !k->win_has[1])
		return false;
	if (!k->win_has[1])
		*offset_ms = k->win_min[0];
	else if (!k->win_has[0])
		*offset_ms = k->win_min[1];
	else
		*offset_ms = k->win_min[0] < k->win_min[1] ? k->win_min[0]
							   : k->win_min[1];
	return true;
}

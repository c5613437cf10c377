/*
 * clock.h — the cluster clock and this node's offset from the leader
 * (clock.c; docs/ARCHITECTURE.md, "Clocks"). Read by every stage; the
 * clock's own entries, which keep it recent on an idle leader, are
 * proposed by the driver (expiry.c).
 */
#ifndef SETTLE_COORD_CLOCK_H
#define SETTLE_COORD_CLOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "settle.pb-c.h"

struct coord;

/* This node became a ready leader: its cluster clock starts from the
 * highest one applied. */
void coord_clock_start(struct coord *c);
/* No longer a ready leader: stop stamping (clock_ms 0). */
void coord_clock_stop(struct coord *c);
/* The cluster clock now, in ms; 0 when this node is not a ready leader. */
uint64_t coord_clock_now(const struct coord *c);
/* The leader's wall ms (stamps, retry times): the real wall clock unless
 * this node is a ready leader, then the wall clock (or the latest stamp
 * applied, if later) when it became ready advanced by its monotonic
 * clock, so that a step of the wall clock changes nothing. */
uint64_t coord_wall_now(const struct coord *c);
/* Stamp cmd->clock_ms (coord_propose does it for every command). */
void coord_clock_stamp(struct coord *c, Settle__V1__Command *cmd);
/* A ready leader that proposed nothing for a second and has no clock
 * entry in flight: time for one (the driver proposes it and marks it
 * with coord_clock_entry()). */
bool coord_clock_idle(const struct coord *c);
/* A clock entry is in flight (true) or was applied or failed (false). */
void coord_clock_entry(struct coord *c, bool in_flight);
/* A command stamped by the leader at wall time stamp_ms was just applied
 * here (0: none): a sample for the offset estimate; warns in the log
 * when the offset is past a second (at most once a minute). */
void coord_clock_applied(struct coord *c, uint64_t stamp_ms);
/* This node's wall clock minus the leader's, estimated over the last
 * 5-10 s of entries; 0 on the ready leader. False when unknown (no entry
 * applied lately). */
bool coord_clock_offset(struct coord *c, int64_t *offset_ms);

#endif /* SETTLE_COORD_CLOCK_H */

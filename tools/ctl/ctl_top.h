/*
 * ctl_top.h — settlectl top: a live view of a cluster, redrawn every
 * interval from two STATUS rounds (and the leader's PARTICIPANTS): each
 * node's role, term, applied index and readiness; the leader's rates of
 * transactions begun, committed, rolled back and failed; begin-to-decision
 * p50 / p99 over the interval; unfinished and stuck counts; participants
 * with errors or an open breaker. The rendering is pure (this file), the
 * polling is ctl_watch.c.
 */
#ifndef SETTLE_CTL_TOP_H
#define SETTLE_CTL_TOP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ctl_fmt.h"

/* One round: every node's STATUS (NULL where it did not answer) and the
 * leader's PARTICIPANTS (NULL if none), at mono_ms. */
struct ctl_top_round {
	struct ctl_node_status *nodes;
	size_t n;
	const Settle__V1__ParticipantsResponse *parts;
	uint64_t mono_ms;
};

/* The q-quantile (0..1) of the latency buckets' counts `now - before`
 * (per bucket, le_us as in StatusResponse, 0 for +Inf), in milliseconds,
 * interpolated within its bucket; -1 with no samples. */
double ctl_top_quantile_ms(const uint64_t *before, const uint64_t *now,
			   const uint64_t *le_us, size_t n, double q);

/* Draw the view of cur against prev (prev NULL: the first round, no
 * rates yet). */
void ctl_top_render(FILE *f, const struct ctl_top_round *prev,
		    const struct ctl_top_round *cur);

#endif /* SETTLE_CTL_TOP_H */

/*
 * breaker.h — a circuit breaker per participant endpoint (driver_call.c):
 * after `failures` calls in a row that got no answer (timeouts, refused
 * or lost connections; not a participant's refusal, which is an answer)
 * the endpoint's breaker opens and the leader stops calling it for a
 * pause; then one call probes it (half-open): an answer closes the
 * breaker, another failure opens it again for twice the pause, up to
 * max_pause_ms. While it is open, the branches due at that endpoint are
 * put off to the end of the pause without a call (they do not spend an
 * attempt), so a dead participant costs neither timeouts nor connection
 * attempts, and the others are called as before.
 *
 * Pure state machine on a monotonic clock: no I/O, no allocation.
 */
#ifndef SETTLE_COORD_BREAKER_H
#define SETTLE_COORD_BREAKER_H

#include <stdbool.h>
#include <stdint.h>

enum {
	COORD_BREAKER_CLOSED = 0,
	COORD_BREAKER_OPEN = 1,
	COORD_BREAKER_HALF_OPEN = 2,
};

struct coord_breaker_cfg {
	unsigned failures;     /* in a row to open; 0: never opens */
	uint64_t pause_ms;     /* the first pause */
	uint64_t max_pause_ms; /* pauses double up to this */
};

struct coord_breaker {
	int state;
	unsigned fails;	   /* calls in a row without an answer */
	unsigned opens;	   /* opens in a row without an answer between */
	uint64_t until_ms; /* OPEN: when a probe may go */
	bool probing;	   /* HALF_OPEN: the probe is in flight */
};

/* What a result did to the breaker. */
enum {
	COORD_BREAKER_SAME = 0,
	COORD_BREAKER_OPENED,
	COORD_BREAKER_CLOSED_AGAIN,
};

/* Whether a call may go now; an OPEN breaker whose pause is over lets one
 * probe go (HALF_OPEN), and no other call until its result. */
bool coord_breaker_allow(struct coord_breaker *b,
			 const struct coord_breaker_cfg *cfg, uint64_t now_ms);

/* A call's end: answered (any answer, a refusal too) or not. */
int coord_breaker_result(struct coord_breaker *b,
			 const struct coord_breaker_cfg *cfg, bool answered,
			 uint64_t now_ms);

/* The pause of the current or next open (pause_ms doubled per open in a
 * row, at most max_pause_ms). */
uint64_t coord_breaker_pause(const struct coord_breaker *b,
			     const struct coord_breaker_cfg *cfg);

#endif /* SETTLE_COORD_BREAKER_H */

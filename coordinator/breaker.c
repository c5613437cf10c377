/*
 * breaker.c — the participant circuit breaker of breaker.h.
 */
#include "breaker.h"

uint64_t coord_breaker_pause(const struct coord_breaker *b,
			     const struct coord_breaker_cfg *cfg)
{
	uint64_t p = cfg->pause_ms;
	uint64_t max = cfg->max_pause_ms > p ? cfg->max_pause_ms : p;

	for (unsigned i = 1; i < b->opens && p < max; i++)
		p *= 2;
	return p < max ? p : max;
}

bool coord_breaker_allow(struct coord_breaker *b,
			 const struct coord_breaker_cfg *cfg, uint64_t now_ms)
{
	(void)cfg;
	switch (b->state) {
	case COORD_BREAKER_OPEN:
		if (now_ms < b->until_ms)
			return false;
		b->state = COORD_BREAKER_HALF_OPEN;
		b->probing = true;
		return true;
	case COORD_BREAKER_HALF_OPEN:
		if (b->probing)
			return false;
		b->probing = true;
		return true;
	default:
		return true;
	}
}

static void open_now(struct coord_breaker *b,
		     const struct coord_breaker_cfg *cfg, uint64_t now_ms)
{
	b->state = COORD_BREAKER_OPEN;
	b->opens++;
	b->probing = false;
	b->until_ms = now_ms + coord_breaker_pause(b, cfg);
}

int coord_breaker_result(struct coord_breaker *b,
			 const struct coord_breaker_cfg *cfg, bool answered,
			 uint64_t now_ms)
{
	if (answered) {
		bool was = b->state != COORD_BREAKER_CLOSED;

		b->state = COORD_BREAKER_CLOSED;
		b->fails = 0;
		b->opens = 0;
		b->probing = false;
		return was ? COORD_BREAKER_CLOSED_AGAIN : COORD_BREAKER_SAME;
	}
	b->fails++;
	switch (b->state) {
	case COORD_BREAKER_HALF_OPEN:
		/* The probe failed (or a call sent before the open). */
		open_now(b, cfg, now_ms);
		return COORD_BREAKER_OPENED;
	case COORD_BREAKER_OPEN:
		/* Calls sent before it opened, failing late. */
		return COORD_BREAKER_SAME;
	default:
		if (cfg->failures == 0 || b->fails < cfg->failures)
			return COORD_BREAKER_SAME;
		open_now(b, cfg, now_ms);
		return COORD_BREAKER_OPENED;
	}
}

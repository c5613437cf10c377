/*
 * A participant endpoint's circuit breaker (coordinator/breaker.h).
 */
#include <criterion/criterion.h>

#include "coordinator/breaker.h"

static const struct coord_breaker_cfg cfg = {
    .failures = 3, .pause_ms = 1000, .max_pause_ms = 4000};

/* Opens after `failures` unanswered calls in a row; an answer (a refusal
 * too) in between starts the count again. */
Test(breaker, opens_after_failures_in_a_row)
{
	struct coord_breaker b = {0};

	cr_assert(coord_breaker_allow(&b, &cfg, 0));
	cr_expect_eq(coord_breaker_result(&b, &cfg, false, 10),
		     COORD_BREAKER_SAME);
	cr_expect_eq(coord_breaker_result(&b, &cfg, false, 20),
		     COORD_BREAKER_SAME);
	cr_expect_eq(coord_breaker_result(&b, &cfg, true, 30),
		     COORD_BREAKER_SAME, "an answer: closed, count again");
	cr_expect_eq(coord_breaker_result(&b, &cfg, false, 40),
		     COORD_BREAKER_SAME);
	cr_expect_eq(coord_breaker_result(&b, &cfg, false, 50),
		     COORD_BREAKER_SAME);
	cr_expect_eq(coord_breaker_result(&b, &cfg, false, 60),
		     COORD_BREAKER_OPENED);
	cr_expect_eq(b.state, COORD_BREAKER_OPEN);
	cr_expect_eq(b.until_ms, 1060);
	cr_expect_not(coord_breaker_allow(&b, &cfg, 1059));
	/* Late failures of calls sent before it opened change nothing. */
	cr_expect_eq(coord_breaker_result(&b, &cfg, false, 70),
		     COORD_BREAKER_SAME);
	cr_expect_eq(b.until_ms, 1060);
}

/* After the pause one probe goes; its failure opens the breaker for twice
 * the pause (up to the cap), its answer closes it. */
Test(breaker, probes_and_backs_off)
{
	struct coord_breaker b = {0};

	for (int i = 0; i < 3; i++)
		coord_breaker_result(&b, &cfg, false, 0);
	cr_assert_eq(b.state, COORD_BREAKER_OPEN);
	cr_assert(coord_breaker_allow(&b, &cfg, 1000), "the probe");
	cr_expect_eq(b.state, COORD_BREAKER_HALF_OPEN);
	cr_expect_not(coord_breaker_allow(&b, &cfg, 1001), "one probe only");
	cr_expect_eq(coord_breaker_result(&b, &cfg, false, 1500),
		     COORD_BREAKER_OPENED);
	cr_expect_eq(b.until_ms, 3500, "twice the pause");
	cr_assert(coord_breaker_allow(&b, &cfg, 3500));
	coord_breaker_result(&b, &cfg, false, 3600);
	cr_expect_eq(b.until_ms, 7600, "four times");
	cr_assert(coord_breaker_allow(&b, &cfg, 7600));
	coord_breaker_result(&b, &cfg, false, 7700);
	cr_expect_eq(b.until_ms, 11700, "capped at max_pause_ms");
	cr_assert(coord_breaker_allow(&b, &cfg, 11700));
	cr_expect_eq(coord_breaker_result(&b, &cfg, true, 11800),
		     COORD_BREAKER_CLOSED_AGAIN);
	cr_expect_eq(b.state, COORD_BREAKER_CLOSED);
	cr_expect(coord_breaker_allow(&b, &cfg, 11801));
	cr_expect(coord_breaker_allow(&b, &cfg, 11802), "closed: all go");
	/* The next open starts from the first pause again. */
	for (int i = 0; i < 3; i++)
		coord_breaker_result(&b, &cfg, false, 20000);
	cr_expect_eq(b.until_ms, 21000);
}

Test(breaker, zero_failures_never_opens)
{
	const struct coord_breaker_cfg off = {0, 1000, 4000};
	struct coord_breaker b = {0};

	for (int i = 0; i < 100; i++)
		cr_assert_eq(coord_breaker_result(&b, &off, false, i),
			     COORD_BREAKER_SAME);
	cr_expect(coord_breaker_allow(&b, &off, 100));
}

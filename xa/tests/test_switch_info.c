/*
 * test_switch_info.c — the xa_open info string (xa/switch_info.c).
 */
#include <criterion/criterion.h>
#include <string.h>

#include "xa/switch_int.h"

static int parse(const char *s, struct sw_info *in, char *why, size_t len)
{
	return sw_info_parse(s, in, why, len);
}

Test(xa_switch_info, every_key)
{
	struct sw_info in;
	char why[256] = "";

	cr_assert_eq(parse("endpoints=127.0.0.1:7001,[::1]:7002;timeout_ms=5;"
			   "commit_wait_ms=6;call_timeout_ms=7;"
			   "connect_timeout_ms=8;retry_budget_ms=4294967295",
			   &in, why, sizeof(why)),
		     0, "%s", why);
	cr_assert_str_eq(in.endpoints, "127.0.0.1:7001,[::1]:7002");
	cr_assert_eq(in.timeout_ms, 5);
	cr_assert_eq(in.commit_wait_ms, 6);
	cr_assert_eq(in.opts.call_timeout_ms, 7);
	cr_assert_eq(in.opts.connect_timeout_ms, 8);
	cr_assert_eq(in.opts.retry_budget_ms, 4294967295u);
}

Test(xa_switch_info, defaults_and_empty_items)
{
	struct sw_info in;
	char why[256] = "";

	cr_assert_eq(parse(";;endpoints=h:1;;", &in, why, sizeof(why)), 0, "%s",
		     why);
	cr_assert_str_eq(in.endpoints, "h:1");
	cr_assert_eq(in.timeout_ms, 0);
	cr_assert_eq(in.commit_wait_ms, 0);
	cr_assert_eq(in.opts.retry_budget_ms, 0);
}

Test(xa_switch_info, refusals_say_why)
{
	static const struct {
		const char *info;
		const char *why;
	} bad[] = {
	    {"", "no endpoints"},
	    {"timeout_ms=1", "no endpoints"},
	    {"endpoints", "key=value"},
	    {"=1;endpoints=h:1", "key=value"},
	    {"endpoints=", "empty"},
	    {"endpoints=h:1;Timeout_ms=1", "unknown info key \"Timeout_ms\""},
	    {"endpoints=h:1; timeout_ms=1", "unknown"},
	    {"endpoints=h:1;timeout_ms=1;timeout_ms=2", "twice"},
	    {"endpoints=h:1;endpoints=h:2", "twice"},
	    {"endpoints=h:1;retry_budget_ms=99999999999", "not a number"},
	    {"endpoints=h:1;retry_budget_ms=4294967296", "not a number"},
	    {"endpoints=h:1;retry_budget_ms=+1", "not a number"},
	    {"endpoints=h:1;retry_budget_ms=1 ", "not a number"},
	    {"endpoints=h:1;retry_budget_ms=", "not a number"},
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct sw_info in;
		char why[256] = "";

		cr_expect_eq(parse(bad[i].info, &in, why, sizeof(why)),
			     SETTLE_EINVAL, "\"%s\"", bad[i].info);
		cr_expect(strstr(why, bad[i].why) != NULL,
			  "\"%s\": reason \"%s\" lacks \"%s\"", bad[i].info,
			  why, bad[i].why);
	}
}

Test(xa_switch_info, null_and_unterminated)
{
	struct sw_info in;
	char why[64] = "";
	char big[MAXINFOSIZE + 8];

	cr_assert_eq(parse(NULL, &in, why, sizeof(why)), SETTLE_EINVAL);
	/* Exactly MAXINFOSIZE bytes and no NUL inside them: refused
	 * without reading further. */
	memset(big, 'x', sizeof(big));
	memcpy(big, "endpoints=", 10);
	big[sizeof(big) - 1] = '\0';
	cr_assert_eq(parse(big, &in, why, sizeof(why)), SETTLE_EINVAL);
	/* The longest accepted. */
	big[MAXINFOSIZE - 1] = '\0';
	cr_assert_eq(parse(big, &in, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(strlen(in.endpoints), MAXINFOSIZE - 1 - 10);
}

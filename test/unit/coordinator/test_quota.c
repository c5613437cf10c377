/*
 * Open transactions per client (coordinator/quota.h): counted at Begin,
 * released when an applied change ends them, swept when a client is at
 * its limit.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "coordinator/quota.h"

static struct coord_quota q;

static void tx_change(const char *gid, int state)
{
	Settle__V1__TxRecord tx = SETTLE__V1__TX_RECORD__INIT;

	tx.gid = (char *)gid;
	tx.state = (Settle__V1__TxState)state;
	coord_quota_tx(&q, &tx);
}

static bool never_open(void *data, const char *gid)
{
	(void)data;
	return strcmp(gid, "a-keep") == 0;
}

Test(quota, counts_and_releases_per_client)
{
	uint32_t open;

	coord_quota_init(&q, 2);
	cr_assert(coord_quota_allows(&q, "10.0.0.1", &open));
	cr_expect_eq(open, 0);
	coord_quota_begun(&q, "a1", "10.0.0.1");
	coord_quota_begun(&q, "a1", "10.0.0.1"); /* a retry: once */
	coord_quota_begun(&q, "a2", "10.0.0.1");
	coord_quota_begun(&q, "b1", "10.0.0.2");
	cr_expect_not(coord_quota_allows(&q, "10.0.0.1", &open));
	cr_expect_eq(open, 2);
	cr_expect(coord_quota_allows(&q, "10.0.0.2", &open));
	cr_expect_eq(open, 1);
	/* Still undecided: counted. Decided: released. */
	tx_change("a1", SETTLE__V1__TX_STATE__XA_PREPARED);
	cr_expect_not(coord_quota_allows(&q, "10.0.0.1", &open));
	tx_change("a1", SETTLE__V1__TX_STATE__ROLLING_BACK);
	cr_expect(coord_quota_allows(&q, "10.0.0.1", &open));
	cr_expect_eq(open, 1);
	tx_change("a1", SETTLE__V1__TX_STATE__ROLLED_BACK); /* unknown now */
	tx_change("zz", SETTLE__V1__TX_STATE__COMMITTED);
	tx_change("a2", SETTLE__V1__TX_STATE__COMMITTING);
	cr_expect(coord_quota_allows(&q, "10.0.0.1", &open));
	cr_expect_eq(open, 0);
	coord_quota_free(&q);
}

Test(quota, a_client_at_its_limit_is_swept)
{
	uint32_t open;

	coord_quota_init(&q, 3);
	coord_quota_begun(&q, "a-keep", "10.0.0.1");
	coord_quota_begun(&q, "a-gone1", "10.0.0.1");
	coord_quota_begun(&q, "a-gone2", "10.0.0.1");
	coord_quota_begun(&q, "b", "10.0.0.2");
	cr_assert_not(coord_quota_allows(&q, "10.0.0.1", &open));
	coord_quota_sweep(&q, "10.0.0.1", 5000, never_open, NULL);
	cr_expect(coord_quota_allows(&q, "10.0.0.1", &open));
	cr_expect_eq(open, 1);
	/* At the limit again at once: no sweep within a second of the last,
	 * then one. */
	coord_quota_begun(&q, "a-gone3", "10.0.0.1");
	coord_quota_begun(&q, "a-gone4", "10.0.0.1");
	coord_quota_sweep(&q, "10.0.0.1", 5999, never_open, NULL);
	cr_expect_not(coord_quota_allows(&q, "10.0.0.1", &open));
	coord_quota_sweep(&q, "10.0.0.1", 6000, never_open, NULL);
	cr_expect(coord_quota_allows(&q, "10.0.0.1", &open));
	cr_expect_eq(open, 1);
	cr_expect(coord_quota_allows(&q, "10.0.0.2", &open));
	cr_expect_eq(open, 1, "another client's count is untouched");
	/* No limit: nothing counted at all. */
	coord_quota_free(&q);
	coord_quota_init(&q, 0);
	coord_quota_begun(&q, "x", "10.0.0.1");
	cr_expect(coord_quota_allows(&q, "10.0.0.1", &open));
	cr_expect_eq(open, 0);
	coord_quota_free(&q);
}

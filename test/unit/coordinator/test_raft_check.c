/*
 * The checks of raft messages before raft 0.15 decodes them
 * (coordinator/raft_check.h): what a real node sends passes, the 64-byte
 * AppendEntries that crashed raft 0.15 and its kin do not.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "bytes.h"
#include "coordinator/raft_check.h"

/* An AppendEntries header as raft 0.15 encodes it: n entries of sizes
 * sz[i], 8 trailing bytes; its length in *len. */
static void append_header(uint8_t *h, size_t *len, unsigned n,
			  const uint32_t *sz, uint8_t type)
{
	memset(h, 0, 48 + 16 * n);
	settle_put_le64(h, 7);	    /* term */
	settle_put_le64(h + 8, 41); /* previous index */
	settle_put_le64(h + 16, 6); /* previous term */
	settle_put_le64(h + 24, 40);
	settle_put_le64(h + 32, n);
	for (unsigned i = 0; i < n; i++) {
		settle_put_le64(h + 40 + 16 * i, 7);
		h[40 + 16 * i + 8] = type;
		settle_put_le32(h + 40 + 16 * i + 12, sz[i]);
	}
	*len = 48 + 16 * n;
}

Test(raft_check, what_a_node_sends_passes)
{
	uint8_t pre[16], h[128];
	uint32_t sz[3] = {100, 0, 4096};
	uint64_t type, hlen, payload = 99;
	size_t len;
	char why[160];

	append_header(h, &len, 3, sz, 1);
	settle_put_le64(pre, 1);
	settle_put_le64(pre + 8, len);
	cr_assert_eq(raft_check_preamble(pre, &type, &hlen, why, sizeof why), 0,
		     "%s", why);
	cr_expect_eq(type, 1);
	cr_expect_eq(hlen, len);
	cr_assert_eq(raft_check_header(1, h, len, &payload, why, sizeof why), 0,
		     "%s", why);
	cr_expect_eq(payload, 4196);
	/* A heartbeat: no entries. */
	append_header(h, &len, 0, NULL, 1);
	cr_expect_eq(raft_check_header(1, h, len, &payload, why, sizeof why), 0,
		     "%s", why);
	cr_expect_eq(payload, 0);
	/* Fixed-size messages at their sizes. */
	memset(h, 0, sizeof h);
	cr_expect_eq(raft_check_header(2, h, 24, &payload, why, sizeof why), 0);
	cr_expect_eq(raft_check_header(3, h, 40, &payload, why, sizeof why), 0);
	cr_expect_eq(raft_check_header(3, h, 32, &payload, why, sizeof why), 0);
	cr_expect_eq(raft_check_header(4, h, 24, &payload, why, sizeof why), 0);
	cr_expect_eq(raft_check_header(4, h, 16, &payload, why, sizeof why), 0);
	cr_expect_eq(raft_check_header(6, h, 24, &payload, why, sizeof why), 0);
	/* InstallSnapshot: a 20-byte configuration, 1 MiB of snapshot. */
	settle_put_le64(h + 32, 20);
	settle_put_le64(h + 40 + 20, 1 << 20);
	cr_expect_eq(raft_check_header(5, h, 68, &payload, why, sizeof why), 0,
		     "%s", why);
	cr_expect_eq(payload, 1 << 20);
}

Test(raft_check, malformed_messages_are_refused)
{
	uint8_t pre[16], h[128];
	uint32_t sz[1] = {8};
	uint64_t type, hlen, payload;
	size_t len;
	char why[160];

	/* The 64-byte crash: a 48-byte header announcing one entry (it
	 * needs 56), of type 0. */
	append_header(h, &len, 1, sz, 0);
	settle_put_le64(pre, 1);
	settle_put_le64(pre + 8, 48);
	cr_assert_eq(raft_check_preamble(pre, &type, &hlen, why, sizeof why),
		     0);
	cr_expect_eq(raft_check_header(1, h, 48, &payload, why, sizeof why),
		     -1);
	cr_expect(strstr(why, "announces 1 entries") != NULL, "%s", why);
	/* Room for it, but an entry type raft does not know. */
	cr_expect_eq(raft_check_header(1, h, len, &payload, why, sizeof why),
		     -1);
	cr_expect(strstr(why, "type 0") != NULL, "%s", why);
	/* An entry count that overflows 16 * n. */
	append_header(h, &len, 1, sz, 1);
	settle_put_le64(h + 32, UINT64_MAX / 8);
	cr_expect_eq(raft_check_header(1, h, len, &payload, why, sizeof why),
		     -1);
	/* Too short to hold the count. */
	cr_expect_eq(raft_check_header(1, h, 39, &payload, why, sizeof why),
		     -1);
	/* Preambles: unknown types, zero and huge headers. */
	settle_put_le64(pre, 0);
	cr_expect_eq(raft_check_preamble(pre, &type, &hlen, why, sizeof why),
		     -1);
	settle_put_le64(pre, 7);
	cr_expect_eq(raft_check_preamble(pre, &type, &hlen, why, sizeof why),
		     -1);
	settle_put_le64(pre, 1);
	settle_put_le64(pre + 8, 0);
	cr_expect_eq(raft_check_preamble(pre, &type, &hlen, why, sizeof why),
		     -1);
	settle_put_le64(pre + 8, (uint64_t)1 << 60);
	cr_expect_eq(raft_check_preamble(pre, &type, &hlen, why, sizeof why),
		     -1);
	/* Fixed-size messages of the wrong size. */
	cr_expect_eq(raft_check_header(2, h, 8, &payload, why, sizeof why), -1);
	cr_expect_eq(raft_check_header(3, h, 36, &payload, why, sizeof why),
		     -1);
	cr_expect_eq(raft_check_header(4, h, 20, &payload, why, sizeof why),
		     -1);
	cr_expect_eq(raft_check_header(6, h, 1000, &payload, why, sizeof why),
		     -1);
	/* A snapshot whose configuration runs past its header, or too big. */
	memset(h, 0, sizeof h);
	settle_put_le64(h + 32, 1000);
	cr_expect_eq(raft_check_header(5, h, 68, &payload, why, sizeof why),
		     -1);
	settle_put_le64(h + 32, 20);
	settle_put_le64(h + 60, (uint64_t)1 << 50);
	cr_expect_eq(raft_check_header(5, h, 68, &payload, why, sizeof why),
		     -1);
}

/*
 * test_xid.c — the XID codecs: round trips at every size, bounds, and
 * hostile input that must be refused, never accepted as one of ours.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "error.h"
#include "xa/xid.h"

static void fill(uint8_t *p, size_t n, unsigned seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 3));
}

/* Every encoding of x decodes back to x, and only to x. */
static void round_trip(const struct xa_xid *x)
{
	uint8_t wire[XA_XID_WIRE_MAX];
	char text[XA_XID_TEXT_MAX], pg[XA_XID_PG_MAX], my[XA_XID_MY_MAX];
	struct xa_xid y;
	size_t len;

	cr_assert_eq(xa_xid_encode(x, wire, sizeof(wire), &len), 0);
	cr_assert_eq(len, 6u + x->gtrid_len + x->bqual_len);
	cr_assert_eq(xa_xid_decode(wire, len, &y), 0);
	cr_assert(xa_xid_equal(x, &y));

	cr_assert_eq(xa_xid_format(x, text, sizeof(text)), 0);
	cr_assert_eq(xa_xid_parse(text, &y), 0);
	cr_assert(xa_xid_equal(x, &y));

	cr_assert_eq(xa_xid_to_pg_gid(x, pg, sizeof(pg)), 0);
	cr_assert_lt(strlen(pg), 200u, "gid too long for PostgreSQL: %zu",
		     strlen(pg));
	cr_assert_eq(strncmp(pg, "settle:", 7), 0);
	cr_assert_eq(xa_xid_from_pg_gid(pg, &y), 0, "gid %s", pg);
	cr_assert(xa_xid_equal(x, &y));

	cr_assert_eq(xa_xid_to_mysql(x, my, sizeof(my)), 0);
	cr_assert_eq(xa_xid_from_mysql(my, strlen(my), &y), 0, "xid %s", my);
	cr_assert(xa_xid_equal(x, &y));
}

Test(xid, round_trips_at_every_length)
{
	uint8_t g[64], b[64];
	struct xa_xid x;
	size_t gl, bl;

	fill(g, sizeof(g), 1);
	fill(b, sizeof(b), 2);
	for (gl = 1; gl <= 64; gl++)
		for (bl = 1; bl <= 64; bl += (bl < 4 ? 1 : 7)) {
			cr_assert_eq(
			    xa_xid_init(&x, (int64_t)(gl * bl), g, gl, b, bl),
			    0);
			round_trip(&x);
		}
	/* The extremes of formatID and the longest XID. */
	cr_assert_eq(xa_xid_init(&x, 0, g, 64, b, 64), 0);
	round_trip(&x);
	cr_assert_eq(xa_xid_init(&x, INT32_MAX, g, 64, b, 64), 0);
	round_trip(&x);
}

Test(xid, all_bytes_survive)
{
	uint8_t g[64], b[64];
	struct xa_xid x;
	unsigned i;

	for (i = 0; i < 64; i++) {
		g[i] = (uint8_t)(i * 4);
		b[i] = (uint8_t)(i * 4 + 3);
	}
	cr_assert_eq(xa_xid_init(&x, 42, g, 64, b, 64), 0);
	round_trip(&x);
	memset(g, 0, sizeof(g));
	memset(b, 0xff, sizeof(b));
	cr_assert_eq(xa_xid_init(&x, 42, g, 1, b, 1), 0);
	round_trip(&x);
}

Test(xid, known_encodings)
{
	struct xa_xid x;
	char buf[300];
	uint8_t wire[XA_XID_WIRE_MAX];
	size_t len;

	cr_assert_eq(xa_xid_init(&x, 7, "\x01\x02", 2, "\xff", 1), 0);
	cr_assert_eq(xa_xid_to_mysql(&x, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "X'0102',X'ff',7");
	cr_assert_eq(xa_xid_format(&x, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "7:0102:ff");
	cr_assert_eq(xa_xid_to_pg_gid(&x, buf, sizeof(buf)), 0);
	cr_assert_str_eq(buf, "settle:7:AQI:_w");
	cr_assert_eq(xa_xid_encode(&x, wire, sizeof(wire), &len), 0);
	cr_assert_eq(len, 9u);
	cr_assert_eq(memcmp(wire, "\x00\x00\x00\x07\x02\x01\x01\x02\xff", 9),
		     0);
	/* MariaDB may answer in upper case. */
	cr_assert_eq(xa_xid_from_mysql("x'0A0b',X'FF',7", 15, &x), 0);
	cr_assert_eq(x.gtrid_len, 2);
	cr_assert_eq(x.data[0], 0x0a);
	cr_assert_eq(x.data[1], 0x0b);
}

Test(xid, lengths_out_of_range_are_refused)
{
	uint8_t g[65] = {1}, b[65] = {2};
	struct xa_xid x;

	cr_assert_eq(xa_xid_init(&x, 1, g, 0, b, 1), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_init(&x, 1, g, 1, b, 0), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_init(&x, 1, g, 65, b, 1), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_init(&x, 1, g, 1, b, 65), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_init(&x, -1, g, 1, b, 1), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_init(&x, (int64_t)INT32_MAX + 1, g, 1, b, 1),
		     SETTLE_EINVAL);
	cr_assert_eq(xa_xid_init(&x, 1, NULL, 1, b, 1), SETTLE_EINVAL);
	/* A hand-made struct with bad lengths encodes to nothing. */
	memset(&x, 0, sizeof(x));
	x.gtrid_len = 65;
	x.bqual_len = 1;
	{
		char buf[400];
		uint8_t w[400];
		size_t len;

		cr_assert_eq(xa_xid_validate(&x), SETTLE_EINVAL);
		cr_assert_eq(xa_xid_encode(&x, w, sizeof(w), &len),
			     SETTLE_EINVAL);
		cr_assert_eq(xa_xid_to_pg_gid(&x, buf, sizeof(buf)),
			     SETTLE_EINVAL);
		cr_assert_eq(xa_xid_to_mysql(&x, buf, sizeof(buf)),
			     SETTLE_EINVAL);
		cr_assert_eq(xa_xid_format(&x, buf, sizeof(buf)),
			     SETTLE_EINVAL);
	}
}

Test(xid, short_buffers_are_refused)
{
	uint8_t g[64], b[64], w[XA_XID_WIRE_MAX];
	char buf[XA_XID_MY_MAX];
	struct xa_xid x;
	size_t len;

	fill(g, 64, 3);
	fill(b, 64, 4);
	cr_assert_eq(xa_xid_init(&x, 5, g, 64, b, 64), 0);
	cr_assert_eq(xa_xid_encode(&x, w, 133, &len), SETTLE_ETOOBIG);
	cr_assert_eq(xa_xid_to_pg_gid(&x, buf, 100), SETTLE_ETOOBIG);
	cr_assert_eq(xa_xid_to_mysql(&x, buf, 200), SETTLE_ETOOBIG);
	cr_assert_eq(xa_xid_format(&x, buf, 0), SETTLE_ETOOBIG);
	cr_assert_eq(xa_xid_to_mysql(&x, buf, sizeof(buf)), 0);
}

Test(xid, wire_decoding_is_strict)
{
	struct xa_xid x;
	uint8_t w[200];

	memset(w, 0, sizeof(w));
	cr_assert_eq(xa_xid_decode(w, 5, &x), SETTLE_EINVAL);
	w[4] = 1;
	w[5] = 1;
	cr_assert_eq(xa_xid_decode(w, 8, &x), 0);
	cr_assert_eq(xa_xid_decode(w, 7, &x), SETTLE_EINVAL); /* short */
	cr_assert_eq(xa_xid_decode(w, 9, &x), SETTLE_EINVAL); /* trailing */
	w[4] = 0;
	cr_assert_eq(xa_xid_decode(w, 7, &x), SETTLE_EINVAL); /* gtrid 0 */
	w[4] = 65;
	cr_assert_eq(xa_xid_decode(w, 72, &x), SETTLE_EINVAL); /* gtrid 65 */
	w[4] = 1;
	w[0] = 0x80; /* formatID above INT32_MAX */
	cr_assert_eq(xa_xid_decode(w, 8, &x), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_decode(NULL, 8, &x), SETTLE_EINVAL);
}

Test(xid, pg_gids_of_others_are_not_ours)
{
	struct xa_xid x;
	char long_gid[300];

	/* Another TM's gids: not ours, to be left alone. */
	cr_assert_eq(xa_xid_from_pg_gid("foreign-gid", &x), SETTLE_ENOTFOUND);
	cr_assert_eq(xa_xid_from_pg_gid("", &x), SETTLE_ENOTFOUND);
	cr_assert_eq(xa_xid_from_pg_gid("Settle:1:AQ:AQ", &x),
		     SETTLE_ENOTFOUND);
	/* Our prefix, damaged. */
	cr_assert_eq(xa_xid_from_pg_gid("settle:", &x), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_from_pg_gid("settle:1:AQ", &x), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_from_pg_gid("settle:1:AQ:", &x), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_from_pg_gid("settle::AQ:AQ", &x), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_from_pg_gid("settle:01:AQ:AQ", &x),
		     SETTLE_EINVAL); /* leading zero: not canonical */
	cr_assert_eq(xa_xid_from_pg_gid("settle:-1:AQ:AQ", &x), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_from_pg_gid("settle:2147483648:AQ:AQ", &x),
		     SETTLE_EINVAL);
	cr_assert_eq(xa_xid_from_pg_gid("settle:1:AQ==:AQ", &x),
		     SETTLE_EINVAL); /* padding */
	cr_assert_eq(xa_xid_from_pg_gid("settle:1:AR:AQ", &x),
		     SETTLE_EINVAL); /* non-zero unused bits */
	cr_assert_eq(xa_xid_from_pg_gid("settle:1:A:AQ", &x),
		     SETTLE_EINVAL); /* impossible length */
	cr_assert_eq(xa_xid_from_pg_gid("settle:1:A+:AQ", &x),
		     SETTLE_EINVAL); /* not base64url */
	cr_assert_eq(xa_xid_from_pg_gid("settle:1:AQ:AQ:AQ", &x),
		     SETTLE_EINVAL);
	/* 65 bytes of gtrid: 87 characters. */
	memset(long_gid, 'A', sizeof(long_gid));
	memcpy(long_gid, "settle:1:", 9);
	memcpy(long_gid + 9 + 87, ":AQ", 4);
	cr_assert_eq(xa_xid_from_pg_gid(long_gid, &x), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_from_pg_gid("settle:1:AQ:AQ", &x), 0);
	cr_assert_eq(x.format_id, 1);
	cr_assert_eq(x.gtrid_len, 1);
	cr_assert_eq(x.data[0], 1);
}

Test(xid, mysql_xids_are_parsed_strictly)
{
	struct xa_xid x;
	const char *bad[] = {
	    "",
	    "X'',X'01',1",
	    "X'01',X'',1",
	    "X'0',X'01',1",
	    "X'0g',X'01',1",
	    "X'01',X'01'",
	    "X'01',X'01',",
	    "X'01',X'01',-1",
	    "X'01',X'01',1x",
	    "X'01' ,X'01',1",
	    "'01',X'01',1",
	    "X'01,X'01',1",
	    "X'01',X'01',99999999999",
	};
	size_t i;
	char big[400];

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		cr_assert_eq(xa_xid_from_mysql(bad[i], strlen(bad[i]), &x),
			     SETTLE_EINVAL, "accepted %s", bad[i]);
	/* Length limits the input, not a NUL. */
	cr_assert_eq(xa_xid_from_mysql("X'01',X'02',3junk", 13, &x), 0);
	cr_assert_eq(x.format_id, 3);
	/* 65 bytes of gtrid. */
	snprintf(big, sizeof(big), "X'%0130d',X'01',1", 0);
	cr_assert_eq(xa_xid_from_mysql(big, strlen(big), &x), SETTLE_EINVAL);
}

Test(xid, mysql_rows_must_agree_with_their_lengths)
{
	struct xa_xid x;

	cr_assert_eq(
	    xa_xid_from_mysql_row("7", "2", "1", "\x01\x02\xff", 3, &x), 0);
	cr_assert_eq(x.format_id, 7);
	cr_assert_eq(x.bqual_len, 1);
	cr_assert_eq(
	    xa_xid_from_mysql_row("7", "2", "2", "\x01\x02\xff", 3, &x),
	    SETTLE_EINVAL);
	cr_assert_eq(
	    xa_xid_from_mysql_row("7", "0", "3", "\x01\x02\xff", 3, &x),
	    SETTLE_EINVAL);
	cr_assert_eq(
	    xa_xid_from_mysql_row("x", "2", "1", "\x01\x02\xff", 3, &x),
	    SETTLE_EINVAL);
	cr_assert_eq(xa_xid_from_mysql_row(NULL, "2", "1", "ab", 3, &x),
		     SETTLE_EINVAL);
}

Test(xid, text_parse_is_strict)
{
	struct xa_xid x;

	cr_assert_eq(xa_xid_parse("1:01:02", &x), 0);
	cr_assert_eq(xa_xid_parse("1:0:02", &x), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_parse("1:01:", &x), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_parse("1:01:02:03", &x), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_parse("a:01:02", &x), SETTLE_EINVAL);
	cr_assert_eq(xa_xid_parse(NULL, &x), SETTLE_EINVAL);
}

Test(xid, xopen_layout_field_by_field)
{
	struct xa_xopen_xid in, out;
	struct xa_xid x;

	memset(&in, 0x5a, sizeof(in));
	in.formatID = 0x1234;
	in.gtrid_length = 3;
	in.bqual_length = 2;
	memcpy(in.data, "abcde", 5);
	cr_assert_eq(xa_xid_from_xopen(&in, &x), 0);
	cr_assert_eq(x.format_id, 0x1234);
	cr_assert_eq(memcmp(xa_xid_gtrid(&x), "abc", 3), 0);
	cr_assert_eq(memcmp(xa_xid_bqual(&x), "de", 2), 0);
	cr_assert_eq(xa_xid_to_xopen(&x, &out), 0);
	cr_assert_eq(out.formatID, 0x1234);
	cr_assert_eq(out.gtrid_length, 3);
	cr_assert_eq(out.bqual_length, 2);
	cr_assert_eq(memcmp(out.data, "abcde", 5), 0);
	cr_assert_eq(out.data[5], 0, "unused data is zeroed");
	in.formatID = -1; /* the null XID */
	cr_assert_eq(xa_xid_from_xopen(&in, &x), SETTLE_EINVAL);
	in.formatID = 1;
	in.gtrid_length = 100;
	cr_assert_eq(xa_xid_from_xopen(&in, &x), SETTLE_EINVAL);
	in.gtrid_length = 64;
	in.bqual_length = 65;
	cr_assert_eq(xa_xid_from_xopen(&in, &x), SETTLE_EINVAL);
	in.bqual_length = -3;
	cr_assert_eq(xa_xid_from_xopen(&in, &x), SETTLE_EINVAL);
}

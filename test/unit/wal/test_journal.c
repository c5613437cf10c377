/* The journal of applied entries and the delta snapshot forms
 * (wal/journal.h): what is written reads back, and anything cut short,
 * reordered, past the snapshot or altered is refused with a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "error.h"
#include "wal/journal.h"

/* A journal after base with n entries at indexes first, first + 2, ...,
 * entry i holding len_of(i) bytes of (i & 0xff). */
struct jbuf {
	uint8_t p[8192];
	size_t len;
};

static size_t len_of(int i)
{
	return (size_t)(i * 5) % 23; /* 0 included, most not multiples of 8 */
}

static void build(struct jbuf *j, uint64_t base, uint64_t first, int n)
{
	j->len = 0;
	journal_header_put(j->p, base);
	j->len = JOURNAL_HEADER_LEN;
	for (int i = 0; i < n; i++) {
		uint8_t e[32];
		size_t el = len_of(i);

		memset(e, i & 0xff, el);
		journal_record_header_put(j->p + j->len,
					  first + 2 * (uint64_t)i, e, el);
		j->len += JOURNAL_RECORD_HEADER_LEN;
		memcpy(j->p + j->len, e, el);
		j->len += el;
		memset(j->p + j->len, 0, journal_record_pad(el));
		j->len += journal_record_pad(el);
		cr_assert_eq(j->len % 8, 0);
	}
}

/* Read it all up to upto: the number of records, or -1 on a refusal
 * (errmsg set). */
static int read_all(const struct jbuf *j, uint64_t base, uint64_t upto,
		    char *err, size_t errlen)
{
	struct journal_reader r;
	const uint8_t *e;
	uint64_t index, last = base;
	size_t el;
	int n = 0, rv;

	if (journal_read_begin(&r, j->p, j->len, base, err, errlen) != 0)
		return -1;
	while ((rv = journal_read_next(&r, upto, &index, &e, &el, err,
				       errlen)) == 0) {
		cr_assert_gt(index, last);
		cr_assert_eq(el, len_of(n));
		for (size_t k = 0; k < el; k++)
			cr_assert_eq(e[k], n & 0xff);
		last = index;
		n++;
	}
	if (rv != 1) {
		cr_assert_eq(rv, SETTLE_EPROTO);
		cr_assert_neq(err[0], '\0', "a refusal without a reason");
		return -1;
	}
	return n;
}

Test(journal, records_read_back_in_order)
{
	struct jbuf j;
	char err[200] = "";

	build(&j, 100, 101, 40);
	cr_assert_eq(read_all(&j, 100, 1000, err, sizeof err), 40, "%s", err);
	/* An empty journal: the header alone. */
	build(&j, 7, 8, 0);
	cr_assert_eq(j.len, JOURNAL_HEADER_LEN);
	cr_assert_eq(read_all(&j, 7, 7, err, sizeof err), 0, "%s", err);
}

Test(journal, other_base_or_no_header_refused)
{
	struct jbuf j;
	char err[200] = "";

	build(&j, 100, 101, 3);
	cr_expect_eq(read_all(&j, 99, 1000, err, sizeof err), -1);
	cr_expect_neq(strstr(err, "after 100"), NULL, "%s", err);
	j.p[0] ^= 1;
	cr_expect_eq(read_all(&j, 100, 1000, err, sizeof err), -1);
	cr_expect_neq(strstr(err, "not a journal"), NULL, "%s", err);
	cr_expect_eq(journal_read_begin(&(struct journal_reader){0}, j.p, 10,
					100, err, sizeof err),
		     SETTLE_EPROTO);
}

/* Every cut short of the end is refused, but at a record boundary, where
 * the records before read back. */
Test(journal, every_cut_refused_or_at_a_record)
{
	struct jbuf j, cut;
	char err[200];
	size_t ends[16];
	int n_ends = 0;

	build(&j, 10, 11, 10);
	for (size_t at = JOURNAL_HEADER_LEN; at <= j.len;) {
		struct journal_reader r;
		const uint8_t *e;
		uint64_t i;
		size_t el;

		ends[n_ends++] = at;
		if (at == j.len)
			break;
		cr_assert_eq(
		    journal_read_begin(&r, j.p, j.len, 10, err, sizeof err), 0);
		r.at = at;
		r.last = 0;
		cr_assert_eq(
		    journal_read_next(&r, 1000, &i, &e, &el, err, sizeof err),
		    0, "%s", err);
		at = r.at;
	}
	cr_assert_eq(n_ends, 11);
	for (size_t len = JOURNAL_HEADER_LEN; len < j.len; len++) {
		int whole = -1;

		for (int k = 0; k < n_ends; k++)
			if (ends[k] == len)
				whole = k;
		memcpy(cut.p, j.p, len);
		cut.len = len;
		err[0] = '\0';
		cr_expect_eq(read_all(&cut, 10, 1000, err, sizeof err), whole,
			     "cut at %zu", len);
	}
}

Test(journal, flipped_bytes_refused)
{
	struct jbuf j;
	char err[200];

	build(&j, 10, 11, 6);
	for (size_t at = JOURNAL_HEADER_LEN; at < j.len; at++) {
		struct jbuf bad = j;
		int n;

		bad.p[at] ^= 0x40;
		err[0] = '\0';
		n = read_all(&bad, 10, 1000, err, sizeof err);
		cr_expect_eq(n, -1, "flip at %zu read back", at);
	}
}

Test(journal, records_past_the_snapshot_or_out_of_order_refused)
{
	struct jbuf j;
	char err[200] = "";

	/* Indexes 11, 13, 15, 17: a snapshot at 15 must not hold 17. */
	build(&j, 10, 11, 4);
	cr_expect_eq(read_all(&j, 10, 17, err, sizeof err), 4, "%s", err);
	cr_expect_eq(read_all(&j, 10, 15, err, sizeof err), -1);
	cr_expect_neq(strstr(err, "ends at 15"), NULL, "%s", err);
	/* A record at or below the base. */
	build(&j, 11, 11, 2);
	cr_expect_eq(read_all(&j, 11, 100, err, sizeof err), -1);
}

Test(journal, manifest_round_trip_and_refusals)
{
	struct journal_manifest m = {500, 300, 123456, 7890}, got;
	uint8_t b[JOURNAL_MANIFEST_LEN];

	journal_manifest_put(b, &m);
	cr_assert_eq(journal_manifest_get(b, sizeof b, &got), 0);
	cr_expect_eq(got.index, 500);
	cr_expect_eq(got.base, 300);
	cr_expect_eq(got.base_len, 123456);
	cr_expect_eq(got.journal_len, 7890);
	cr_expect_eq(journal_manifest_get(b, sizeof b - 1, &got),
		     SETTLE_EPROTO);
	for (size_t i = 0; i < sizeof b; i++) {
		uint8_t bad[JOURNAL_MANIFEST_LEN];

		memcpy(bad, b, sizeof b);
		bad[i] ^= 1;
		cr_expect_eq(journal_manifest_get(bad, sizeof bad, &got),
			     SETTLE_EPROTO, "flip at %zu", i);
	}
	/* A base at or past the index, a journal shorter than its header. */
	m.base = 500;
	journal_manifest_put(b, &m);
	cr_expect_eq(journal_manifest_get(b, sizeof b, &got), SETTLE_EPROTO);
	m.base = 300;
	m.journal_len = 8;
	journal_manifest_put(b, &m);
	cr_expect_eq(journal_manifest_get(b, sizeof b, &got), SETTLE_EPROTO);
}

Test(journal, sent_delta_round_trip_and_refusals)
{
	uint8_t buf[JOURNAL_SNAPSHOT_HEADER_LEN + 10 + 24];
	const uint8_t *base, *journal;
	size_t base_len, journal_len;
	uint64_t index;

	journal_snapshot_header_put(buf, 77, 10, 24);
	memset(buf + JOURNAL_SNAPSHOT_HEADER_LEN, 'b', 10);
	memset(buf + JOURNAL_SNAPSHOT_HEADER_LEN + 10, 'j', 24);
	cr_assert_eq(journal_snapshot_get(buf, sizeof buf, &index, &base,
					  &base_len, &journal, &journal_len),
		     0);
	cr_expect_eq(index, 77);
	cr_expect_eq(base_len, 10);
	cr_expect_eq(journal_len, 24);
	cr_expect_eq(base[0], 'b');
	cr_expect_eq(journal[0], 'j');
	/* Shorter or longer than announced; a bad header. */
	cr_expect_eq(journal_snapshot_get(buf, sizeof buf - 1, &index, &base,
					  &base_len, &journal, &journal_len),
		     SETTLE_EPROTO);
	journal_snapshot_header_put(buf, 77, 40, 24);
	cr_expect_eq(journal_snapshot_get(buf, sizeof buf, &index, &base,
					  &base_len, &journal, &journal_len),
		     SETTLE_EPROTO);
	journal_snapshot_header_put(buf, 77, 10, 24);
	buf[9] ^= 1;
	cr_expect_eq(journal_snapshot_get(buf, sizeof buf, &index, &base,
					  &base_len, &journal, &journal_len),
		     SETTLE_EPROTO);
}

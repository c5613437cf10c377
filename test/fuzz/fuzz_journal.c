/*
 * fuzz_journal — the journal of applied entries and the delta snapshot
 * forms (wal/journal.h), as a node reads them from its disk at start or
 * from its leader in an InstallSnapshot.
 *
 * Input: anything; the seeds are a journal, a delta snapshot as sent and
 * a delta manifest. Checks:
 *   - reading never crashes nor reads outside the input; every record it
 *     accepts lies inside the input, above the one before and at most the
 *     bound given;
 *   - what is accepted re-encodes to exactly the bytes it was read from
 *     (header, records, padding), so no two inputs read alike;
 *   - a sent delta points inside the input at a base and a journal that
 *     fill it exactly; a manifest that reads re-encodes to itself.
 * (The entries themselves go through the FSM, which fuzz_wal covers.)
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "wal/journal.h"

#define UPTO 5000

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

/* Read data as a journal (its own base) and re-encode what is accepted. */
static void check_journal(const uint8_t *data, size_t size)
{
	struct journal_reader r;
	uint8_t *again;
	const uint8_t *e;
	uint64_t index, last;
	size_t elen, at;
	char err[256];

	if (size < JOURNAL_HEADER_LEN ||
	    journal_read_begin(&r, data, size, le64(data + 8), err,
			       sizeof err) != 0)
		return;
	again = malloc(size);
	FUZZ_CHECK(again != NULL, "out of memory");
	journal_header_put(again, r.base);
	at = JOURNAL_HEADER_LEN;
	last = r.base;
	while (journal_read_next(&r, UPTO, &index, &e, &elen, err,
				 sizeof err) == 0) {
		size_t pad = journal_record_pad(elen);

		FUZZ_CHECK(index > last && index <= UPTO,
			   "index %llu after %llu accepted",
			   (unsigned long long)index, (unsigned long long)last);
		FUZZ_CHECK(e >= data && e + elen <= data + size,
			   "a record outside the input");
		FUZZ_CHECK(at + JOURNAL_RECORD_HEADER_LEN + elen + pad <= size,
			   "records longer than the input");
		journal_record_header_put(again + at, index, e, elen);
		at += JOURNAL_RECORD_HEADER_LEN;
		memcpy(again + at, e, elen);
		memset(again + at + elen, 0, pad);
		at += elen + pad;
		last = index;
	}
	FUZZ_CHECK(at == r.at, "read to %zu, re-encoded to %zu", r.at, at);
	FUZZ_CHECK(memcmp(again, data, at) == 0,
		   "what was read does not re-encode to its bytes");
	free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint8_t *base, *journal;
	size_t base_len, journal_len;
	struct journal_manifest m;
	uint64_t index;

	check_journal(data, size);
	if (journal_snapshot_get(data, size, &index, &base, &base_len, &journal,
				 &journal_len) == 0) {
		FUZZ_CHECK(base == data + JOURNAL_SNAPSHOT_HEADER_LEN &&
			       journal == base + base_len &&
			       journal + journal_len == data + size,
			   "a sent delta that does not fill its input");
		check_journal(journal, journal_len);
	}
	if (journal_manifest_get(data, size, &m) == 0) {
		uint8_t again[JOURNAL_MANIFEST_LEN];

		journal_manifest_put(again, &m);
		FUZZ_CHECK(memcmp(again, data, sizeof again) == 0,
			   "a manifest that does not re-encode to itself");
	}
	return 0;
}

/* A journal after base 100 with entries at 101, 102, 104 and 107. */
static size_t seed_journal(uint8_t *p)
{
	static const uint64_t at[] = {101, 102, 104, 107};
	size_t len = JOURNAL_HEADER_LEN;

	journal_header_put(p, 100);
	for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
		uint8_t e[19];
		size_t elen = 3 + i * 5;

		memset(e, 'a' + (int)i, elen);
		journal_record_header_put(p + len, at[i], e, elen);
		len += JOURNAL_RECORD_HEADER_LEN;
		memcpy(p + len, e, elen);
		memset(p + len + elen, 0, journal_record_pad(elen));
		len += elen + journal_record_pad(elen);
	}
	return len;
}

void fuzz_seeds(void)
{
	uint8_t j[512], sent[1024];
	size_t jlen = seed_journal(j);
	struct journal_manifest m = {107, 100, 4000, jlen};
	uint8_t man[JOURNAL_MANIFEST_LEN];

	fuzz_seed_add(j, jlen);
	journal_snapshot_header_put(sent, 107, 24, jlen);
	memset(sent + JOURNAL_SNAPSHOT_HEADER_LEN, 'B', 24);
	memcpy(sent + JOURNAL_SNAPSHOT_HEADER_LEN + 24, j, jlen);
	fuzz_seed_add(sent, JOURNAL_SNAPSHOT_HEADER_LEN + 24 + jlen);
	journal_manifest_put(man, &m);
	fuzz_seed_add(man, sizeof man);
}

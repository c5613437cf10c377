/*
 * journal.c — the journal of applied entries and the delta snapshot forms
 * (wal/journal.h). Only encoding and checking: the coordinator owns the
 * files and applies what is read.
 */
#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "error.h"
#include "wal/fsm.h"
#include "wal/journal.h"

static const char journal_magic[8] = {'S', 'T', 'L', 'J', 'R', 'N', 'L', '1'};
static const char manifest_magic[8] = {'S', 'T', 'L', 'S', 'N', 'A', 'P', 'D'};
static const char snapshot_magic[8] = {'S', 'T', 'L', 'S', 'N', 'A', 'P', 'J'};

void journal_header_put(uint8_t out[JOURNAL_HEADER_LEN], uint64_t base)
{
	memcpy(out, journal_magic, sizeof journal_magic);
	settle_put_le64(out + 8, base);
}

size_t journal_record_pad(size_t len)
{
	return (8 - len % 8) % 8;
}

/* The record's check: its index and length as well as its bytes. */
static uint64_t record_sum(const uint8_t head[16], const void *buf, size_t len)
{
	uint64_t h = fsm_entry_checksum(head, 16);

	return (h << 1 | h >> 63) ^ fsm_entry_checksum(buf, len);
}

void journal_record_header_put(uint8_t out[JOURNAL_RECORD_HEADER_LEN],
			       uint64_t index, const void *buf, size_t len)
{
	settle_put_le64(out, index);
	settle_put_le32(out + 8, (uint32_t)len);
	settle_put_le32(out + 12, 0);
	settle_put_le64(out + 16, record_sum(out, buf, len));
}

int journal_read_begin(struct journal_reader *r, const uint8_t *p, size_t len,
		       uint64_t base, char *errmsg, size_t errlen)
{
	memset(r, 0, sizeof *r);
	if (p == NULL || len < JOURNAL_HEADER_LEN ||
	    memcmp(p, journal_magic, sizeof journal_magic) != 0) {
		snprintf(errmsg, errlen, "not a journal");
		return SETTLE_EPROTO;
	}
	if (settle_le64(p + 8) != base) {
		snprintf(errmsg, errlen, "journal after %llu, not after %llu",
			 (unsigned long long)settle_le64(p + 8),
			 (unsigned long long)base);
		return SETTLE_EPROTO;
	}
	r->p = p;
	r->len = len;
	r->at = JOURNAL_HEADER_LEN;
	r->base = base;
	r->last = base;
	return 0;
}

int journal_read_next(struct journal_reader *r, uint64_t upto, uint64_t *index,
		      const uint8_t **buf, size_t *len, char *errmsg,
		      size_t errlen)
{
	const uint8_t *h = r->p + r->at;
	size_t left = r->len - r->at, n;
	uint64_t i;

	if (left == 0)
		return 1;
	if (left < JOURNAL_RECORD_HEADER_LEN) {
		snprintf(errmsg, errlen, "record at byte %zu cut short", r->at);
		return SETTLE_EPROTO;
	}
	i = settle_le64(h);
	n = settle_le32(h + 8);
	if (settle_le32(h + 12) != 0 || i <= r->last || i > upto) {
		snprintf(errmsg, errlen,
			 "record at byte %zu: index %llu after %llu (the "
			 "snapshot ends at %llu)",
			 r->at, (unsigned long long)i,
			 (unsigned long long)r->last, (unsigned long long)upto);
		return SETTLE_EPROTO;
	}
	left -= JOURNAL_RECORD_HEADER_LEN;
	if (n > left || journal_record_pad(n) > left - n) {
		snprintf(errmsg, errlen, "record of entry %llu cut short",
			 (unsigned long long)i);
		return SETTLE_EPROTO;
	}
	if (record_sum(h, h + JOURNAL_RECORD_HEADER_LEN, n) !=
	    settle_le64(h + 16)) {
		snprintf(errmsg, errlen, "record of entry %llu: bad checksum",
			 (unsigned long long)i);
		return SETTLE_EPROTO;
	}
	for (size_t k = 0; k < journal_record_pad(n); k++)
		if (h[JOURNAL_RECORD_HEADER_LEN + n + k] != 0) {
			snprintf(errmsg, errlen,
				 "record of entry %llu: bad padding",
				 (unsigned long long)i);
			return SETTLE_EPROTO;
		}
	*index = i;
	*buf = h + JOURNAL_RECORD_HEADER_LEN;
	*len = n;
	r->last = i;
	r->at += JOURNAL_RECORD_HEADER_LEN + n + journal_record_pad(n);
	return 0;
}

void journal_manifest_put(uint8_t out[JOURNAL_MANIFEST_LEN],
			  const struct journal_manifest *m)
{
	memcpy(out, manifest_magic, sizeof manifest_magic);
	settle_put_le64(out + 8, m->index);
	settle_put_le64(out + 16, m->base);
	settle_put_le64(out + 24, m->base_len);
	settle_put_le64(out + 32, m->journal_len);
	settle_put_le64(out + 40, fsm_entry_checksum(out, 40));
}

int journal_manifest_get(const uint8_t *buf, size_t len,
			 struct journal_manifest *m)
{
	if (buf == NULL || len != JOURNAL_MANIFEST_LEN ||
	    memcmp(buf, manifest_magic, sizeof manifest_magic) != 0 ||
	    fsm_entry_checksum(buf, 40) != settle_le64(buf + 40))
		return SETTLE_EPROTO;
	m->index = settle_le64(buf + 8);
	m->base = settle_le64(buf + 16);
	m->base_len = settle_le64(buf + 24);
	m->journal_len = settle_le64(buf + 32);
	if (m->base >= m->index || m->journal_len < JOURNAL_HEADER_LEN)
		return SETTLE_EPROTO;
	return 0;
}

void journal_snapshot_header_put(uint8_t out[JOURNAL_SNAPSHOT_HEADER_LEN],
				 uint64_t index, uint64_t base_len,
				 uint64_t journal_len)
{
	memcpy(out, snapshot_magic, sizeof snapshot_magic);
	settle_put_le64(out + 8, index);
	settle_put_le64(out + 16, base_len);
	settle_put_le64(out + 24, journal_len);
	settle_put_le64(out + 32, fsm_entry_checksum(out, 32));
}

int journal_snapshot_get(const uint8_t *buf, size_t len, uint64_t *index,
			 const uint8_t **base, size_t *base_len,
			 const uint8_t **journal, size_t *journal_len)
{
	uint64_t bl, jl;

	if (buf == NULL || len < JOURNAL_SNAPSHOT_HEADER_LEN ||
	    memcmp(buf, snapshot_magic, sizeof snapshot_magic) != 0 ||
	    fsm_entry_checksum(buf, 32) != settle_le64(buf + 32))
		return SETTLE_EPROTO;
	bl = settle_le64(buf + 16);
	jl = settle_le64(buf + 24);
	len -= JOURNAL_SNAPSHOT_HEADER_LEN;
	if (bl > len || jl != len - bl)
		return SETTLE_EPROTO;
	*index = settle_le64(buf + 8);
	*base = buf + JOURNAL_SNAPSHOT_HEADER_LEN;
	*base_len = (size_t)bl;
	*journal = *base + bl;
	*journal_len = (size_t)jl;
	return 0;
}

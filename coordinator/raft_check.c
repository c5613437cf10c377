/*
 * raft_check.c — checks of raft messages before raft 0.15 decodes them
 * (raft_check.h).
 */
#include "raft_check.h"

#include <stdarg.h>
#include <stdio.h>

#include "bytes.h"

/* Message types of raft 0.15 (raft.h, RAFT_IO_*). */
enum {
	MSG_APPEND = 1,
	MSG_APPEND_RESULT = 2,
	MSG_VOTE = 3,
	MSG_VOTE_RESULT = 4,
	MSG_SNAPSHOT = 5,
	MSG_TIMEOUT_NOW = 6,
};
/* Entry types (RAFT_COMMAND, RAFT_BARRIER, RAFT_CHANGE). */
#define ENTRY_TYPE_MAX 3
/* Fixed-size headers are small; more is not a message of ours. */
#define SMALL_MAX 64

static int bad(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return -1;
}

int raft_check_preamble(const uint8_t pre[RAFT_CHECK_PREAMBLE], uint64_t *type,
			uint64_t *hlen, char *why, size_t whylen)
{
	*type = settle_le64(pre);
	*hlen = settle_le64(pre + 8);
	if (*type < MSG_APPEND || *type > MSG_TIMEOUT_NOW)
		return bad(why, whylen, "unknown message type %llu",
			   (unsigned long long)*type);
	if (*hlen == 0 || *hlen > RAFT_CHECK_HEADER_MAX)
		return bad(why, whylen,
			   "a header of %llu bytes (type %llu) is out of "
			   "bounds",
			   (unsigned long long)*hlen,
			   (unsigned long long)*type);
	return 0;
}

/* AppendEntries: term, previous index and term, commit (32 bytes), the
 * entry count, 16 bytes per entry (term, type, 3 unused, size); raft 0.15
 * sends 8 more bytes than it reads. */
static int check_append(const uint8_t *h, size_t hlen, uint64_t *payload,
			char *why, size_t whylen)
{
	uint64_t n, sum = 0;

	if (hlen < 40)
		return bad(why, whylen,
			   "AppendEntries header of %zu bytes, under 40", hlen);
	n = settle_le64(h + 32);
	if (n > (hlen - 40) / 16 || hlen - 40 - 16 * n > 8)
		return bad(why, whylen,
			   "AppendEntries announces %llu entries in a header "
			   "of %zu bytes",
			   (unsigned long long)n, hlen);
	for (uint64_t i = 0; i < n; i++) {
		const uint8_t *e = h + 40 + 16 * i;

		if (e[8] < 1 || e[8] > ENTRY_TYPE_MAX)
			return bad(why, whylen,
				   "AppendEntries entry %llu has type %u",
				   (unsigned long long)i, e[8]);
		sum += settle_le32(e + 12);
	}
	if (sum > RAFT_CHECK_PAYLOAD_MAX)
		return bad(why, whylen, "AppendEntries of %llu bytes",
			   (unsigned long long)sum);
	*payload = sum;
	return 0;
}

/* InstallSnapshot: term, last index and term, configuration index (32
 * bytes), the configuration's length and bytes, the snapshot's size. */
static int check_snapshot(const uint8_t *h, size_t hlen, uint64_t *payload,
			  char *why, size_t whylen)
{
	uint64_t conf, data;

	if (hlen < 48)
		return bad(why, whylen,
			   "InstallSnapshot header of %zu bytes, under 48",
			   hlen);
	conf = settle_le64(h + 32);
	if (conf > hlen - 48)
		return bad(why, whylen,
			   "InstallSnapshot configuration of %llu bytes in a "
			   "header of %zu",
			   (unsigned long long)conf, hlen);
	data = settle_le64(h + 40 + conf);
	if (data > RAFT_CHECK_PAYLOAD_MAX)
		return bad(why, whylen, "InstallSnapshot of %llu bytes",
			   (unsigned long long)data);
	*payload = data;
	return 0;
}

int raft_check_header(uint64_t type, const uint8_t *h, size_t hlen,
		      uint64_t *payload, char *why, size_t whylen)
{
	*payload = 0;
	switch (type) {
	case MSG_APPEND:
		return check_append(h, hlen, payload, why, whylen);
	case MSG_SNAPSHOT:
		return check_snapshot(h, hlen, payload, why, whylen);
	case MSG_VOTE:
		/* 32 bytes (an older peer) or at least 40 (with flags). */
		if (hlen == 32 || (hlen >= 40 && hlen <= SMALL_MAX))
			return 0;
		break;
	case MSG_VOTE_RESULT:
		if (hlen == 16 || (hlen >= 24 && hlen <= SMALL_MAX))
			return 0;
		break;
	case MSG_APPEND_RESULT:
	case MSG_TIMEOUT_NOW:
		if (hlen >= 24 && hlen <= SMALL_MAX)
			return 0;
		break;
	default:
		break;
	}
	return bad(why, whylen, "a header of %zu bytes for type %llu", hlen,
		   (unsigned long long)type);
}

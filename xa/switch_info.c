/*
 * switch_info.c — the xa_open info string of Settle's switch library.
 *
 * A TM copies the string from its configuration file, so every mistake in
 * it must come back as a clear XAER_INVAL with a reason, never a guess:
 * unknown keys, duplicates and malformed numbers are refused.
 */
#include <stdio.h>
#include <string.h>

#include "xa/switch_int.h"

static int parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;

	if (len == 0 || len > 10)
		return SETTLE_EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SETTLE_EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return SETTLE_EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* The numeric keys, and where each goes; *idx gets the key's index. */
static uint32_t *num_field(struct sw_info *in, const char *key, size_t len,
			   unsigned *idx)
{
	static const struct {
		const char *name;
		size_t off;
	} keys[] = {
	    {"timeout_ms", offsetof(struct sw_info, timeout_ms)},
	    {"commit_wait_ms", offsetof(struct sw_info, commit_wait_ms)},
	    {"call_timeout_ms",
	     offsetof(struct sw_info, opts) +
		 offsetof(struct settle_client_opts, call_timeout_ms)},
	    {"connect_timeout_ms",
	     offsetof(struct sw_info, opts) +
		 offsetof(struct settle_client_opts, connect_timeout_ms)},
	    {"retry_budget_ms",
	     offsetof(struct sw_info, opts) +
		 offsetof(struct settle_client_opts, retry_budget_ms)},
	};

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (strlen(keys[i].name) == len &&
		    memcmp(keys[i].name, key, len) == 0) {
			*idx = (unsigned)i;
			return (uint32_t *)((char *)in + keys[i].off);
		}
	return NULL;
}

int sw_info_parse(const char *info, struct sw_info *out, char *errmsg,
		  size_t errmsg_len)
{
	/* Bit per key seen, to refuse duplicates: endpoints is bit 0, the
	 * numeric key i bit i + 1. */
	unsigned seen = 0;
	const char *p;
	size_t total;

	memset(out, 0, sizeof(*out));
	if (info == NULL) {
		snprintf(errmsg, errmsg_len, "no info string");
		return SETTLE_EINVAL;
	}
	total = strnlen(info, MAXINFOSIZE);
	if (total == MAXINFOSIZE) {
		snprintf(errmsg, errmsg_len,
			 "info string longer than %d characters",
			 MAXINFOSIZE - 1);
		return SETTLE_EINVAL;
	}
	p = info;
	while (p < info + total) {
		const char *end = memchr(p, ';', (size_t)(info + total - p));
		const char *eq;
		size_t len, klen, vlen;

		if (end == NULL)
			end = info + total;
		len = (size_t)(end - p);
		if (len == 0) {
			p = end + 1;
			continue;
		}
		eq = memchr(p, '=', len);
		if (eq == NULL || eq == p) {
			snprintf(errmsg, errmsg_len,
				 "info item \"%.*s\" is not key=value",
				 (int)len, p);
			return SETTLE_EINVAL;
		}
		klen = (size_t)(eq - p);
		vlen = len - klen - 1;
		if (klen == 9 && memcmp(p, "endpoints", 9) == 0) {
			if (seen & 1u)
				goto dup;
			seen |= 1u;
			if (vlen == 0) {
				snprintf(errmsg, errmsg_len,
					 "endpoints is empty");
				return SETTLE_EINVAL;
			}
			memcpy(out->endpoints, eq + 1, vlen);
			out->endpoints[vlen] = '\0';
		} else {
			unsigned idx = 0, bit;
			uint32_t *f = num_field(out, p, klen, &idx);

			if (f == NULL) {
				snprintf(errmsg, errmsg_len,
					 "unknown info key \"%.*s\"", (int)klen,
					 p);
				return SETTLE_EINVAL;
			}
			bit = 2u << idx;
			if (seen & bit)
				goto dup;
			seen |= bit;
			if (parse_u32(eq + 1, vlen, f) != 0) {
				snprintf(errmsg, errmsg_len,
					 "%.*s: \"%.*s\" is not a number of "
					 "0..4294967295",
					 (int)klen, p, (int)vlen, eq + 1);
				return SETTLE_EINVAL;
			}
		}
		p = end + 1;
		continue;
	dup:
		snprintf(errmsg, errmsg_len, "info key \"%.*s\" given twice",
			 (int)klen, p);
		return SETTLE_EINVAL;
	}
	if (!(seen & 1u)) {
		snprintf(errmsg, errmsg_len,
			 "info string names no endpoints "
			 "(endpoints=HOST:PORT,...)");
		return SETTLE_EINVAL;
	}
	return 0;
}

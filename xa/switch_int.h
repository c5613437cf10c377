/*
 * switch_int.h — internals of Settle's XA switch library (xa/switch.c):
 * the xa_open info string and the per-thread sessions.
 */
#ifndef SETTLE_XA_SWITCH_INT_H
#define SETTLE_XA_SWITCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* error.h before settle.h: see settle.h. */
#include "proto/error.h"
#include "client/settle.h"

#include "xa/settle_xa.h"
#include "xa/xid.h"

/* Longest endpoint list kept from the info string. */
#define SW_ENDPOINTS_MAX MAXINFOSIZE
#define SW_ERRMSG_MAX	 512

/*
 * What xa_open's info string says: "key=value" items separated by ';'
 * (empty items ignored; no spaces around keys or '='):
 *   endpoints=HOST:PORT[,HOST:PORT...]  required: the coordinator cluster
 *   timeout_ms=N         deadline of transactions begun by xa_start (0:
 *                        the coordinator's default)
 *   commit_wait_ms=N     xa_commit/xa_rollback wait this long for phase two
 *                        to finish (then heuristics can be reported); 0:
 *                        answer once the decision is durable
 *   call_timeout_ms=N, connect_timeout_ms=N, retry_budget_ms=N
 *                        libsettle's struct settle_client_opts
 * Numbers are decimal, 0..4294967295.
 */
struct sw_info {
	char endpoints[SW_ENDPOINTS_MAX];
	uint32_t timeout_ms;
	uint32_t commit_wait_ms;
	struct settle_client_opts opts;
};

/*
 * Parse info (NUL terminated, shorter than MAXINFOSIZE) into *out.
 * Returns 0 or SETTLE_EINVAL with the reason in errmsg (errmsg_len bytes);
 * never reads past the terminating NUL or MAXINFOSIZE bytes.
 */
int sw_info_parse(const char *info, struct sw_info *out, char *errmsg,
		  size_t errmsg_len);

#endif /* SETTLE_XA_SWITCH_INT_H */

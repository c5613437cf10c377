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

/* One xa_open of one thread (xa/switch.c). */
struct sw_session {
	int rmid;
	settle_client *c;
	struct sw_info info;
	bool assoc_gid_ok; /* assoc_gid names the association */
	char assoc_gid[XA_XID_GID_LEN + 1];
	char scan_after[SETTLE_GID_BUFSIZE]; /* xa_recover's cursor */
	char errmsg[SW_ERRMSG_MAX];
	struct sw_session *next;
};

/* The process's branch and thread states; NULL if the library could not
 * initialize (then every verb fails). */
extern struct xa_assoc *sw_assoc;

/* The calling thread's session on rmid, or NULL when it has not opened
 * it. Initializes the library on first use. */
struct sw_session *sw_session(int rmid);

/* Return rc from verb, with a SETTLE_TRACE=1 line on stderr (verb, rmid,
 * the XID x in text form or "-" when NULL, the code). */
int sw_ret(const char *verb, int rmid, const struct xa_xid *x, int rc);

/* The XA code of libsettle error err, the reason going to s->errmsg
 * ("verb: NAME: the client's message"). */
int sw_fail(struct sw_session *s, const char *verb, int err);

/* The xa_recover entry (xa/switch_recover.c). */
int sw_xa_recover(XID *xids, long count, int rmid, long flags);

#endif /* SETTLE_XA_SWITCH_INT_H */

/*
 * settle_xa_ext.h — what Settle's switch library offers beyond X/Open XA.
 *
 * A legacy transaction manager needs only settle_xa.h and the symbol
 * settle_xa_switch. The application code that runs inside the global
 * transaction needs one more thing: the gid of the Settle transaction the
 * TM's XID names, so that it can register TCC branches in it with
 * libsettle (settle_register_branch()); those branches then receive the
 * XID in BranchRequest.xid. Both functions below are exported by the same
 * library (libsettle_xa, `pkg-config --cflags --libs settle-xa`).
 *
 * C89-compatible, like settle_xa.h.
 */
#ifndef SETTLE_XA_SETTLE_XA_EXT_H
#define SETTLE_XA_SETTLE_XA_EXT_H

#include <stddef.h>

#include "settle_xa.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The gid of the calling thread's current XA transaction on rmid: the
 * thread opened rmid (xa_open) and is associated with a branch (xa_start
 * done, no xa_end yet, or resumed). buf (cap bytes; 44 are enough: "xa-"
 * and 40 hex digits and the NUL) gets it, NUL terminated.
 * Returns 0, or a negative SETTLE_E* code (settle.h): SETTLE_EINVAL (-1)
 * for a NULL buf, SETTLE_ESTATE (-3) when the thread has not opened rmid
 * or is not associated (suspended counts as not associated),
 * SETTLE_ETOOBIG (-9) when cap is too small (buf then holds "").
 */
int settle_xa_current_gid(int rmid, char *buf, size_t cap);

/*
 * One line saying why the calling thread's last verb on rmid failed, e.g.
 * "xa_prepare: coordinator unreachable: ECONNECT: connect 127.0.0.1:7001:
 * Connection refused", or "" after a success. XA return codes say little;
 * a TM's log or an operator wants this. Never NULL; valid until the
 * thread's next verb on rmid. An rmid the thread has not opened gives the
 * reason of its last xa_open failure, if any, else "".
 */
const char *settle_xa_errmsg(int rmid);

#ifdef __cplusplus
}
#endif

#endif /* SETTLE_XA_SETTLE_XA_EXT_H */

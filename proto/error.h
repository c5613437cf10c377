/*
 * error.h — Settle's single error table.
 *
 * Every function in Settle that can fail returns an int: 0 on success, a
 * negative SETTLE_E* code on failure. Codes 1..15 are the wire codes
 * of settle.v1.Code (negated); the rest are local and are mapped to INTERNAL or
 * UNAVAILABLE before they cross the wire. Errors from errno, libuv, LMDB and
 * raft are mapped at the boundary with settle_err_from_*().
 */
#ifndef SETTLE_ERROR_H
#define SETTLE_ERROR_H

#include <stddef.h>

/* X(name, value, wire code, text) */
#define SETTLE_ERRNO_MAP(X)                                                    \
	X(INVAL, -1, 1, "invalid argument")                                    \
	X(NOTFOUND, -2, 2, "not found")                                        \
	X(STATE, -3, 3, "wrong state")                                         \
	X(NOTLEADER, -4, 4, "not the leader")                                  \
	X(UNAVAIL, -5, 5, "unavailable")                                       \
	X(TIMEOUT, -6, 6, "timed out")                                         \
	X(INTERNAL, -7, 7, "internal error")                                   \
	X(NOMETHOD, -8, 8, "unknown method")                                   \
	X(TOOBIG, -9, 9, "too large")                                          \
	X(EXISTS, -10, 10, "already exists")                                   \
	X(FAILURE, -11, 11, "business failure")                                \
	X(RETRY, -12, 12, "transient failure, retry")                          \
	X(REFUSED, -13, 13, "refused")                                         \
	X(EXHAUSTED, -14, 14, "resource exhausted")                            \
	X(REUSED, -15, 15, "cmd_id already used by another request")           \
	X(DENIED, -16, 16, "permission denied")                                \
	X(NOMEM, -100, 7, "out of memory")                                     \
	X(IO, -101, 7, "I/O error")                                            \
	X(PROTO, -102, 1, "protocol error")                                    \
	X(CLOSED, -103, 5, "connection closed")                                \
	X(STORE, -104, 7, "storage error")                                     \
	X(RAFT, -105, 5, "raft error")                                         \
	X(CONNECT, -106, 5, "connection failed")                               \
	X(CANCELED, -107, 5, "canceled")                                       \
	X(FULL, -108, 5, "storage full")                                       \
	X(DIVERGED, -109, 7, "state diverged from the cluster")                \
	X(NOSPACE, -110, 7, "no space left on device")                         \
	X(TLS, -111, 5, "TLS handshake or record failed")

enum {
#define SETTLE__ERR_ENUM(name, value, wire, text) SETTLE_E##name = (value),
	SETTLE_ERRNO_MAP(SETTLE__ERR_ENUM)
#undef SETTLE__ERR_ENUM
};

/* Static text for a code; "unknown error" for anything not in the table. */
const char *settle_strerror(int err);

/* Short symbolic name ("NOTFOUND") for logs and --json output. */
const char *settle_errname(int err);

/* settle.v1.Code value for a Settle error (0 for 0). */
int settle_err_to_wire(int err);

/* Settle error for a settle.v1.Code value received from a peer. */
int settle_err_from_wire(int code);

/* Map a negative libuv error, an LMDB rc and a raft rc. */
int settle_err_from_uv(int uverr);
int settle_err_from_mdb(int rc);
int settle_err_from_raft(int rc);

#endif /* SETTLE_ERROR_H */

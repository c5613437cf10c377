/*
 * entry.h — raft log entries: encoding, decoding and validation of the
 * replicated settle.v1.Command.
 *
 * An entry is a 4-byte little-endian length L, L bytes of packed Command,
 * then zero padding up to a multiple of 8 bytes: canonical/raft 0.15
 * silently drops a segment on restart when an entry's size is not a
 * multiple of 8 (upstream issue #304).
 *
 * Validation is shared by the coordinator (before proposing, to answer the
 * client at once) and by the FSM (an invalid command that reached the log
 * is applied as a no-op whose result is INVALID_ARGUMENT).
 */
#ifndef SETTLE_WAL_ENTRY_H
#define SETTLE_WAL_ENTRY_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "settle.pb-c.h"

#define WAL_CMD_ID_LEN	 16
#define WAL_GID_MAX	 128 /* bytes */
#define WAL_ENDPOINT_MAX 255 /* bytes of "host:port" */
#define WAL_RESOURCE_MAX 256 /* bytes */
#define WAL_PAYLOAD_MAX	 (1u << 20)
#define WAL_TEXT_MAX	 1024  /* reason, error text */
#define WAL_OWNER_MAX	 96    /* CmdBegin.owner: "fp:" + 64 hex */
#define WAL_MAX_BRANCHES 1000  /* per transaction */
#define WAL_GC_LIMIT_MAX 10000 /* CmdGc.limit */
#define WAL_RESULTS_MAX	 1024  /* answers in one CmdResults */
#define WAL_BATCH_MAX	 1024  /* commands in one CmdBatch */
/* Largest entry accepted by wal_entry_decode(). */
#define WAL_ENTRY_MAX ((size_t)WAL_PAYLOAD_MAX + 64 * 1024)

/*
 * Encode cmd into a new buffer allocated with raft_malloc() (*buf, *len):
 * ready for raft_apply(), which takes ownership on success; otherwise free
 * it with raft_free(). *len is a multiple of 8. cmd is not validated here.
 * Returns 0, SETTLE_ENOMEM, or SETTLE_ETOOBIG (over WAL_ENTRY_MAX).
 */
int wal_entry_encode(const Settle__V1__Command *cmd, uint8_t **buf,
		     size_t *len);

/*
 * Decode an entry. Checks the size is a multiple of 8, the length prefix
 * fits, the padding is exactly the zeros needed to reach the next multiple
 * of 8, and the protobuf parses. buf is not kept. *out is owned by the
 * caller: settle__v1__command__free_unpacked(*out, NULL).
 * Returns 0, SETTLE_EPROTO (garbage, truncation) or SETTLE_ENOMEM.
 */
int wal_entry_decode(const void *buf, size_t len, Settle__V1__Command **out);
/* The same, unpacked with allocator in (NULL: protobuf-c's); *out is then
 * freed the way in frees (a wal/arena.h arena: by its reset). */
int wal_entry_decode_in(const void *buf, size_t len, ProtobufCAllocator *in,
			Settle__V1__Command **out);

/* An entry of the packed Command cmd/n (as wal_entry_encode() would make
 * of it unpacked): raft_malloc'd *buf of *len bytes. 0, SETTLE_ENOMEM or
 * SETTLE_ETOOBIG. */
int wal_entry_wrap(const uint8_t *cmd, size_t n, uint8_t **buf, size_t *len);

/*
 * Check a command before it is proposed or applied: cmd_id exactly 16
 * bytes, time_ms != 0, exactly one op set, and per op:
 *   begin:  gid, deadline_ms != 0, mode UNSPECIFIED, TCC or XA; mode XA:
 *           gid <= 64 bytes; xid (mode XA only) decodes (xa_xid_decode)
 *           and gid == xa_xid_gid(xid); branches (not in mode XA): at
 *           most WAL_MAX_BRANCHES, each as a register's endpoint,
 *           resource and payload (messages name "branches[i]."), and the
 *           whole command within WAL_ENTRY_MAX (SETTLE_ETOOBIG)
 *   register: gid, endpoint host:port, resource <= 256 bytes,
 *           payload <= 1 MiB, xa_format_id 0; with rm (an XA RM branch):
 *           wal_xa_register_validate() (wal/xa.h)
 *   decide: gid, decision COMMIT or ROLLBACK, reason <= 1024 bytes,
 *           one_phase with COMMIT only
 *   branch_result: gid, branch_id != 0, phase CONFIRMING or CANCELLING,
 *           outcome OK/RETRY/FAILURE, error <= 1024 bytes
 *   gc:     1 <= limit <= WAL_GC_LIMIT_MAX
 *   results: 1..WAL_RESULTS_MAX answers (each is checked as its own
 *           branch_result / step_result when applied)
 *   features: level != 0
 *   batch:  1..WAL_BATCH_MAX commands (each is decoded and checked as
 *           its own command when applied)
 *   saga_begin, step_result: wal_saga_begin_validate(),
 *           wal_step_result_validate() (wal/saga.h)
 *   retry, resolve: wal_retry_validate(), wal_resolve_validate()
 *           (wal/operator.h)
 *   xa_vote, xa_prepare, xa_result, xa_forget, xa_heuristic:
 *           wal_xa_*_validate() (wal/xa.h)
 * Returns 0, SETTLE_EINVAL, or SETTLE_ETOOBIG for a field over its limit;
 * when errmsg is not NULL it receives a message naming the field (never
 * any payload bytes).
 */
int wal_command_validate(const Settle__V1__Command *cmd, char *errmsg,
			 size_t errmsg_len);

/*
 * The digest of a client request that Command.request_digest carries:
 * FNV-1a 64 of method (4 bytes, big-endian) and req packed by protobuf-c
 * (fields in field-number order, whatever order the client sent them in),
 * leaving out the fields that name the request or say how to answer it
 * rather than what to do: cmd_id, wait and wait_ms. So a retry with the
 * same cmd_id and another wait_ms is the same request; another method,
 * gid, payload, reason or flag is not. Not 0 (0 means "no digest").
 * req is not changed. Deterministic across nodes and versions that pack
 * the same fields. 0 only for a message type over 512 bytes of struct
 * (none of settle.proto's requests).
 */
uint64_t wal_request_digest(int method, const ProtobufCMessage *req);

/*
 * Whether a command whose cmd_id is already stored is a different request
 * than the one stored: both digests known (non-zero) and different. A row
 * or an entry without a digest (written before digests existed, or a
 * coordinator's own command) is taken as the same request, as before.
 */
static inline int wal_cmd_id_reused(uint64_t stored, uint64_t digest)
{
	return stored != 0 && digest != 0 && stored != digest;
}

/* A gid: 1..128 bytes of printable ASCII without spaces (0x21..0x7e).
 * Returns 0 or SETTLE_EINVAL. NULL is invalid. */
int wal_gid_validate(const char *gid);

/*
 * An endpoint "host:port": host is a name or IPv4 address (letters, digits,
 * '.', '-', '_') or a bracketed IPv6 address "[::1]"; port is 1..65535 in
 * decimal. At most WAL_ENDPOINT_MAX bytes. Returns 0 or SETTLE_EINVAL.
 */
int wal_endpoint_validate(const char *endpoint);

/* Copy gid, at most WAL_GID_MAX bytes of it, into dst: for the hot
 * paths, where snprintf's "%s" costs ten times as much. */
static inline void wal_gid_copy(char dst[WAL_GID_MAX + 1], const char *gid)
{
	size_t n = strnlen(gid, WAL_GID_MAX);

	memcpy(dst, gid, n);
	dst[n] = '\0';
}

#endif /* SETTLE_WAL_ENTRY_H */

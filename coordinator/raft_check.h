/*
 * raft_check.h — what a raft message must look like before canonical/raft
 * 0.15 may decode it.
 *
 * raft_uv's receiver trusts the bytes of its peers: an AppendEntries whose
 * batch header names an unknown entry type makes uvDecodeBatchHeader fail
 * with the entry array unset, and uvDecodeMessage then reads it anyway (a
 * 64-byte message crashes any node); a header shorter than the entries it
 * announces is read past its end; a length of 2^60 is allocated. The raft
 * transport (raft_tcp.c) passes every message it receives through these
 * checks first and drops the connection of one that fails them.
 *
 * The wire, per message: a preamble of two little-endian 64-bit words
 * (type 1..6, header length), the header, then a payload whose length the
 * header gives (AppendEntries: the sum of its entries' sizes;
 * InstallSnapshot: the snapshot's size). Pure functions, no I/O.
 */
#ifndef SETTLE_RAFT_CHECK_H
#define SETTLE_RAFT_CHECK_H

#include <stddef.h>
#include <stdint.h>

#define RAFT_CHECK_PREAMBLE 16
/* The longest header accepted: AppendEntries of 2^20 entries. */
#define RAFT_CHECK_HEADER_MAX (48u + 16u * (1u << 20))
/* The longest payload accepted (a snapshot sent whole). */
#define RAFT_CHECK_PAYLOAD_MAX ((uint64_t)1 << 40)

/*
 * The preamble's type and header length (*hlen), checked: 0, or -1 with a
 * reason in why (size whylen).
 */
int raft_check_preamble(const uint8_t pre[RAFT_CHECK_PREAMBLE], uint64_t *type,
			uint64_t *hlen, char *why, size_t whylen);

/*
 * The header of a message of type (hlen bytes at h), checked as raft 0.15
 * will read it; *payload gets the length of the payload that follows. 0,
 * or -1 with a reason in why.
 */
int raft_check_header(uint64_t type, const uint8_t *h, size_t hlen,
		      uint64_t *payload, char *why, size_t whylen);

#endif /* SETTLE_RAFT_CHECK_H */

/*
 * entry.c — raft entry codec and command validation.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <raft.h>

#include "error.h"
#include "wal/entry.h"
#include "wal/members.h"
#include "wal/operator.h"
#include "wal/saga.h"
#include "wal/xa.h"
#include "xa/xid.h"

static size_t round8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* A zeroed entry for a packed Command of n bytes, its length in front
 * (wal/entry.h): *buf and *len set, the Command goes at *buf + 4. */
static int frame(size_t n, uint8_t **buf, size_t *len)
{
	if (4 + n > WAL_ENTRY_MAX)
		return SETTLE_ETOOBIG;
	size_t total = round8(4 + n);
	uint8_t *p = raft_malloc(total);
	if (p == NULL)
		return SETTLE_ENOMEM;
	memset(p, 0, total);
	p[0] = (uint8_t)n;
	p[1] = (uint8_t)(n >> 8);
	p[2] = (uint8_t)(n >> 16);
	p[3] = (uint8_t)(n >> 24);
	*buf = p;
	*len = total;
	return 0;
}

int wal_entry_encode(const Settle__V1__Command *cmd, uint8_t **buf, size_t *len)
{
	size_t n = settle__v1__command__get_packed_size(cmd);
	int rv = frame(n, buf, len);
	if (rv == 0)
		settle__v1__command__pack(cmd, *buf + 4);
	return rv;
}

int wal_entry_wrap(const uint8_t *cmd, size_t n, uint8_t **buf, size_t *len)
{
	int rv = frame(n, buf, len);
	if (rv == 0 && n > 0)
		memcpy(*buf + 4, cmd, n);
	return rv;
}

int wal_entry_decode(const void *buf, size_t len, Settle__V1__Command **out)
{
	return wal_entry_decode_in(buf, len, NULL, out);
}

int wal_entry_decode_in(const void *buf, size_t len, ProtobufCAllocator *in,
			Settle__V1__Command **out)
{
	const uint8_t *p = buf;
	*out = NULL;
	if (p == NULL || len < 8 || len % 8 != 0 || len > round8(WAL_ENTRY_MAX))
		return SETTLE_EPROTO;
	size_t n = (size_t)p[0] | ((size_t)p[1] << 8) | ((size_t)p[2] << 16) |
		   ((size_t)p[3] << 24);
	if (n > len - 4 || round8(4 + n) != len)
		return SETTLE_EPROTO;
	for (size_t i = 4 + n; i < len; i++)
		if (p[i] != 0)
			return SETTLE_EPROTO;
	*out = settle__v1__command__unpack(in, n, p + 4);
	if (*out == NULL)
		return SETTLE_EPROTO;
	return 0;
}

int wal_gid_validate(const char *gid)
{
	if (gid == NULL || gid[0] == 0)
		return SETTLE_EINVAL;
	size_t i;
	for (i = 0; gid[i] != 0; i++) {
		if (i >= WAL_GID_MAX)
			return SETTLE_EINVAL;
		if ((unsigned char)gid[i] < 0x21 ||
		    (unsigned char)gid[i] > 0x7e)
			return SETTLE_EINVAL;
	}
	return 0;
}

static bool host_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '.' || c == '-' || c == '_';
}

static bool hex_or_colon(char c)
{
	return (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') ||
	       (c >= '0' && c <= '9') || c == ':' || c == '.';
}

int wal_endpoint_validate(const char *endpoint)
{
	if (endpoint == NULL)
		return SETTLE_EINVAL;
	size_t len = strnlen(endpoint, WAL_ENDPOINT_MAX + 1);
	if (len == 0 || len > WAL_ENDPOINT_MAX)
		return SETTLE_EINVAL;
	const char *port;
	if (endpoint[0] == '[') {
		const char *close = strchr(endpoint, ']');
		if (close == NULL || close == endpoint + 1 || close[1] != ':')
			return SETTLE_EINVAL;
		for (const char *c = endpoint + 1; c < close; c++)
			if (!hex_or_colon(*c))
				return SETTLE_EINVAL;
		port = close + 2;
	} else {
		const char *colon = strrchr(endpoint, ':');
		if (colon == NULL || colon == endpoint)
			return SETTLE_EINVAL;
		for (const char *c = endpoint; c < colon; c++)
			if (!host_char(*c))
				return SETTLE_EINVAL;
		port = colon + 1;
	}
	if (port[0] == 0 || strlen(port) > 5 || port[0] == '0')
		return SETTLE_EINVAL;
	unsigned long v = 0;
	for (const char *c = port; *c != 0; c++) {
		if (*c < '0' || *c > '9')
			return SETTLE_EINVAL;
		v = v * 10 + (unsigned long)(*c - '0');
	}
	if (v < 1 || v > 65535)
		return SETTLE_EINVAL;
	return 0;
}

static int bad(char *errmsg, size_t errmsg_len, int err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(char *errmsg, size_t errmsg_len, int err, const char *fmt, ...)
{
	if (errmsg != NULL && errmsg_len > 0) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(errmsg, errmsg_len, fmt, ap);
		va_end(ap);
	}
	return err;
}

#define BAD(err, ...) bad(errmsg, errmsg_len, err, __VA_ARGS__)

static int check_gid(const char *gid, char *errmsg, size_t errmsg_len)
{
	if (wal_gid_validate(gid) != 0)
		return BAD(SETTLE_EINVAL,
			   "gid must be 1..%d printable ASCII "
			   "characters without spaces",
			   WAL_GID_MAX);
	return 0;
}

static int check_text(const char *text, const char *field, char *errmsg,
		      size_t errmsg_len)
{
	if (text != NULL && strnlen(text, WAL_TEXT_MAX + 1) > WAL_TEXT_MAX)
		return BAD(SETTLE_ETOOBIG, "%s longer than %d bytes", field,
			   WAL_TEXT_MAX);
	return 0;
}

/* A TCC branch's fields, as REGISTER_BRANCH takes them and as a Begin
 * declares them; field names the branch in messages ("" or
 * "branches[2]."). */
static int check_branch(const char *endpoint, const char *resource,
			size_t payload_len, const char *field, char *errmsg,
			size_t errmsg_len)
{
	if (wal_endpoint_validate(endpoint) != 0)
		return BAD(SETTLE_EINVAL, "%sendpoint must be host:port",
			   field);
	if (resource != NULL &&
	    strnlen(resource, WAL_RESOURCE_MAX + 1) > WAL_RESOURCE_MAX)
		return BAD(SETTLE_ETOOBIG, "%sresource longer than %d bytes",
			   field, WAL_RESOURCE_MAX);
	if (payload_len > WAL_PAYLOAD_MAX)
		return BAD(SETTLE_ETOOBIG,
			   "%spayload of %zu bytes over the %u limit", field,
			   payload_len, WAL_PAYLOAD_MAX);
	return 0;
}

/* One branch a Begin declares: a TCC branch in a TCC Begin, an RM branch
 * in an XA one. field names it in messages. */
static int check_declared(int mode, const Settle__V1__BranchDecl *d,
			  const char *field, char *errmsg, size_t errmsg_len)
{
	if (mode != SETTLE__V1__TX_MODE__XA) {
		if (d->rm != NULL && d->rm[0] != 0)
			return BAD(SETTLE_EINVAL,
				   "%srm is for XA transactions only", field);
		return check_branch(d->endpoint, d->resource, d->payload.len,
				    field, errmsg, errmsg_len);
	}
	if (wal_xa_rm_validate(d->rm) != 0)
		return BAD(SETTLE_EINVAL,
			   "%srm must be 1..%d characters of A-Z a-z "
			   "0-9 _ . - (an XA transaction declares RM "
			   "branches only)",
			   field, WAL_XA_RM_MAX);
	if ((d->endpoint != NULL && d->endpoint[0] != 0) ||
	    (d->resource != NULL && d->resource[0] != 0) || d->payload.len != 0)
		return BAD(SETTLE_EINVAL,
			   "%san RM branch (rm) has no endpoint, "
			   "resource or payload",
			   field);
	return 0;
}

/* The branches a Begin declares: as many as a transaction may have, each
 * as REGISTER_BRANCH checks it (TCC branches in a TCC Begin, RM branches
 * in an XA one), and all in one entry. */
static int check_begin_branches(const Settle__V1__Command *cmd, char *errmsg,
				size_t errmsg_len)
{
	const Settle__V1__CmdBegin *b = cmd->begin;
	char field[40];

	if (b->n_branches == 0)
		return 0;
	if (b->mode == SETTLE__V1__TX_MODE__XA && b->xid.len != 0)
		return BAD(SETTLE_EINVAL,
			   "branches: a legacy TM's transaction (xid) "
			   "registers its branches");
	if (b->xa_format_id > INT32_MAX)
		return BAD(SETTLE_EINVAL, "xa_format_id over 2^31-1");
	if (b->n_branches > WAL_MAX_BRANCHES)
		return BAD(SETTLE_ETOOBIG,
			   "branches: %zu declared, over the limit of %d",
			   b->n_branches, WAL_MAX_BRANCHES);
	for (size_t i = 0; i < b->n_branches; i++) {
		/* Checked without a message first: the branch's name is
		 * formatted only for one that fails. */
		if (check_declared(b->mode, b->branches[i], "", NULL, 0) == 0)
			continue;
		snprintf(field, sizeof field, "branches[%zu].", i);
		return check_declared(b->mode, b->branches[i], field, errmsg,
				      errmsg_len);
	}
	/* Each payload may be within its limit and the sum over one entry's:
	 * refused here rather than by the encoder, with a reason. */
	size_t n = settle__v1__command__get_packed_size(cmd);
	if (4 + n > WAL_ENTRY_MAX)
		return BAD(SETTLE_ETOOBIG,
			   "branches: the begin would be a log entry of %zu "
			   "bytes, over the %zu limit",
			   4 + n, WAL_ENTRY_MAX);
	return 0;
}

int wal_command_validate(const Settle__V1__Command *cmd, char *errmsg,
			 size_t errmsg_len)
{
	if (errmsg != NULL && errmsg_len > 0)
		errmsg[0] = 0;
	if (cmd == NULL)
		return BAD(SETTLE_EINVAL, "no command");
	if (cmd->cmd_id.len != WAL_CMD_ID_LEN)
		return BAD(SETTLE_EINVAL, "cmd_id must be %d bytes, not %zu",
			   WAL_CMD_ID_LEN, cmd->cmd_id.len);
	if (cmd->time_ms == 0)
		return BAD(SETTLE_EINVAL, "time_ms missing");
	int rv;
	switch (cmd->op_case) {
	case SETTLE__V1__COMMAND__OP_BEGIN: {
		const Settle__V1__CmdBegin *b = cmd->begin;
		if ((rv = check_gid(b->gid, errmsg, errmsg_len)) != 0)
			return rv;
		if (b->deadline_ms == 0)
			return BAD(SETTLE_EINVAL, "deadline_ms missing");
		if (strlen(b->owner) > WAL_OWNER_MAX)
			return BAD(SETTLE_EINVAL, "owner longer than %d bytes",
				   WAL_OWNER_MAX);
		if (b->mode != SETTLE__V1__TX_MODE__TX_MODE_UNSPECIFIED &&
		    b->mode != SETTLE__V1__TX_MODE__TCC &&
		    b->mode != SETTLE__V1__TX_MODE__XA)
			return BAD(SETTLE_EINVAL, "unknown mode %d", b->mode);
		if ((rv = check_begin_branches(cmd, errmsg, errmsg_len)) != 0)
			return rv;
		if (b->mode != SETTLE__V1__TX_MODE__XA) {
			if (b->xid.len != 0)
				return BAD(SETTLE_EINVAL,
					   "xid is for mode XA only");
			return 0;
		}
		/* The gid is the gtrid of the RM branches' XIDs. */
		if (strlen(b->gid) > WAL_XA_GID_MAX)
			return BAD(SETTLE_EINVAL,
				   "gid of an XA transaction longer than %d "
				   "bytes",
				   WAL_XA_GID_MAX);
		if (b->xid.len != 0) {
			struct xa_xid x;
			char gid[XA_XID_GID_LEN + 1];
			if (xa_xid_decode(b->xid.data, b->xid.len, &x) != 0)
				return BAD(SETTLE_EINVAL,
					   "xid is not an XID's wire "
					   "encoding");
			/* Every holder of the XID derives the same gid. */
			if (xa_xid_gid(&x, gid) != 0 || strcmp(gid, b->gid))
				return BAD(SETTLE_EINVAL,
					   "gid of an xid's transaction must "
					   "be derived from it (xa_xid_gid)");
		}
		return 0;
	}
	case SETTLE__V1__COMMAND__OP_REGISTER: {
		const Settle__V1__CmdRegister *r = cmd->register_;
		if (r->rm != NULL && r->rm[0] != 0)
			return wal_xa_register_validate(r, errmsg, errmsg_len);
		if ((rv = check_gid(r->gid, errmsg, errmsg_len)) != 0)
			return rv;
		if (r->xa_format_id != 0)
			return BAD(SETTLE_EINVAL, "xa_format_id without rm");
		return check_branch(r->endpoint, r->resource, r->payload.len,
				    "", errmsg, errmsg_len);
	}
	case SETTLE__V1__COMMAND__OP_DECIDE: {
		const Settle__V1__CmdDecide *d = cmd->decide;
		if ((rv = check_gid(d->gid, errmsg, errmsg_len)) != 0)
			return rv;
		if (d->decision != SETTLE__V1__DECISION__DECIDE_COMMIT &&
		    d->decision != SETTLE__V1__DECISION__DECIDE_ROLLBACK)
			return BAD(SETTLE_EINVAL, "unknown decision %d",
				   d->decision);
		if (d->one_phase &&
		    d->decision != SETTLE__V1__DECISION__DECIDE_COMMIT)
			return BAD(SETTLE_EINVAL, "one_phase is for a commit");
		if (d->initiator_phase2_ms != 0 &&
		    d->decision != SETTLE__V1__DECISION__DECIDE_COMMIT)
			return BAD(SETTLE_EINVAL,
				   "initiator_phase2_ms is for a commit");
		if (d->initiator_phase2_ms > WAL_XA_PHASE2_MAX_MS)
			return BAD(
			    SETTLE_EINVAL, "initiator_phase2_ms %u over %u",
			    d->initiator_phase2_ms, WAL_XA_PHASE2_MAX_MS);
		if (d->n_votes != 0 &&
		    d->decision != SETTLE__V1__DECISION__DECIDE_COMMIT)
			return BAD(SETTLE_EINVAL, "votes are for a commit");
		if (d->n_votes > WAL_MAX_BRANCHES)
			return BAD(SETTLE_ETOOBIG, "%zu votes, over %d",
				   d->n_votes, WAL_MAX_BRANCHES);
		for (size_t i = 0; i < d->n_votes; i++) {
			const Settle__V1__XaBranchVote *v = d->votes[i];
			if (v->branch_id == 0)
				return BAD(SETTLE_EINVAL,
					   "votes[%zu].branch_id missing", i);
			if (v->vote < SETTLE__V1__XA_VOTE__VOTE_OK ||
			    v->vote > SETTLE__V1__XA_VOTE__VOTE_ROLLBACK)
				return BAD(SETTLE_EINVAL,
					   "votes[%zu].vote must be VOTE_OK, "
					   "VOTE_READ_ONLY or VOTE_ROLLBACK",
					   i);
			if ((rv = check_text(v->error, "votes[].error", errmsg,
					     errmsg_len)) != 0)
				return rv;
		}
		return check_text(d->reason, "reason", errmsg, errmsg_len);
	}
	case SETTLE__V1__COMMAND__OP_BRANCH_RESULT: {
		const Settle__V1__CmdBranchResult *r = cmd->branch_result;
		if ((rv = check_gid(r->gid, errmsg, errmsg_len)) != 0)
			return rv;
		if (r->branch_id == 0)
			return BAD(SETTLE_EINVAL, "branch_id missing");
		if (r->phase != SETTLE__V1__BRANCH_STATE__CONFIRMING &&
		    r->phase != SETTLE__V1__BRANCH_STATE__CANCELLING)
			return BAD(SETTLE_EINVAL,
				   "phase must be CONFIRMING or CANCELLING");
		if (r->outcome != SETTLE__V1__OUTCOME__OUTCOME_OK &&
		    r->outcome != SETTLE__V1__OUTCOME__OUTCOME_RETRY &&
		    r->outcome != SETTLE__V1__OUTCOME__OUTCOME_FAILURE)
			return BAD(SETTLE_EINVAL, "unknown outcome %d",
				   r->outcome);
		return check_text(r->error, "error", errmsg, errmsg_len);
	}
	case SETTLE__V1__COMMAND__OP_GC:
		if (cmd->gc->limit == 0 || cmd->gc->limit > WAL_GC_LIMIT_MAX)
			return BAD(SETTLE_EINVAL, "gc limit must be 1..%d",
				   WAL_GC_LIMIT_MAX);
		return 0;
	case SETTLE__V1__COMMAND__OP_CLOCK:
		return 0;
	case SETTLE__V1__COMMAND__OP_RESULTS: {
		/* Each answer is checked as its own command when applied. */
		size_t n = cmd->results->n_branches + cmd->results->n_steps;
		if (n == 0 || n > WAL_RESULTS_MAX)
			return BAD(SETTLE_EINVAL,
				   "results must hold 1..%d answers, not %zu",
				   WAL_RESULTS_MAX, n);
		return 0;
	}
	case SETTLE__V1__COMMAND__OP_FEATURES:
		if (cmd->features->level == 0)
			return BAD(SETTLE_EINVAL, "feature level missing");
		return 0;
	case SETTLE__V1__COMMAND__OP_BATCH:
		if (cmd->batch->n_commands == 0 ||
		    cmd->batch->n_commands > WAL_BATCH_MAX)
			return BAD(SETTLE_EINVAL,
				   "batch must hold 1..%d commands, not %zu",
				   WAL_BATCH_MAX, cmd->batch->n_commands);
		return 0;
	case SETTLE__V1__COMMAND__OP_MEMBER:
		return wal_member_validate(cmd->member, errmsg, errmsg_len);
	case SETTLE__V1__COMMAND__OP_SAGA_BEGIN:
		return wal_saga_begin_validate(cmd->saga_begin, errmsg,
					       errmsg_len);
	case SETTLE__V1__COMMAND__OP_STEP_RESULT:
		return wal_step_result_validate(cmd->step_result, errmsg,
						errmsg_len);
	case SETTLE__V1__COMMAND__OP_RETRY:
		return wal_retry_validate(cmd->retry, errmsg, errmsg_len);
	case SETTLE__V1__COMMAND__OP_RESOLVE:
		return wal_resolve_validate(cmd->resolve, errmsg, errmsg_len);
	case SETTLE__V1__COMMAND__OP_XA_VOTE:
		return wal_xa_vote_validate(cmd->xa_vote, errmsg, errmsg_len);
	case SETTLE__V1__COMMAND__OP_XA_PREPARE:
		return wal_xa_prepare_validate(cmd->xa_prepare, errmsg,
					       errmsg_len);
	case SETTLE__V1__COMMAND__OP_XA_RESULT:
		return wal_xa_result_validate(cmd->xa_result, errmsg,
					      errmsg_len);
	case SETTLE__V1__COMMAND__OP_XA_FORGET:
		return wal_xa_forget_validate(cmd->xa_forget, errmsg,
					      errmsg_len);
	case SETTLE__V1__COMMAND__OP_XA_HEURISTIC:
		return wal_xa_heuristic_validate(cmd->xa_heuristic, errmsg,
						 errmsg_len);
	default:
		return BAD(SETTLE_EINVAL, "no operation in command");
	}
}

/* ---- Request digests ---------------------------------------------------- */

#define FNV64_OFFSET 0xcbf29ce484222325ull
#define FNV64_PRIME  0x100000001b3ull

/* A ProtobufCBuffer that hashes what protobuf-c packs into it: the packed
 * request is never held whole (a payload may be 1 MiB). */
struct digest_buffer {
	ProtobufCBuffer base;
	uint64_t h;
};

static void digest_append(ProtobufCBuffer *b, size_t len, const uint8_t *data)
{
	struct digest_buffer *d = (struct digest_buffer *)b;

	for (size_t i = 0; i < len; i++) {
		d->h ^= data[i];
		d->h *= FNV64_PRIME;
	}
}

/* Largest request message wal_request_digest() copies. */
#define DIGEST_MSG_MAX 512

/* Fields that name the request or shape its answer, not its effect. */
static const char *const digest_skip[] = {"cmd_id", "wait", "wait_ms"};

uint64_t wal_request_digest(int method, const ProtobufCMessage *req)
{
	const ProtobufCMessageDescriptor *desc = req->descriptor;
	struct digest_buffer d = {.base = {.append = digest_append},
				  .h = FNV64_OFFSET};
	uint8_t m[4] = {(uint8_t)((uint32_t)method >> 24),
			(uint8_t)((uint32_t)method >> 16),
			(uint8_t)((uint32_t)method >> 8), (uint8_t)method};
	union {
		max_align_t align;
		uint8_t bytes[DIGEST_MSG_MAX];
	} buf;
	uint8_t *copy = buf.bytes;

	/* Request messages are a few dozen bytes (test_entry.c checks). */
	if (desc->sizeof_message > sizeof buf)
		return 0;
	digest_append(&d.base, sizeof m, m);
	/* A shallow copy with the skipped fields at their defaults: packing
	 * only reads, and proto3 leaves default scalars and empty bytes out
	 * of the encoding. */
	memcpy(copy, req, desc->sizeof_message);
	for (size_t i = 0; i < sizeof digest_skip / sizeof digest_skip[0];
	     i++) {
		const ProtobufCFieldDescriptor *f =
		    protobuf_c_message_descriptor_get_field_by_name(
			desc, digest_skip[i]);
		size_t size;

		if (f == NULL || f->label == PROTOBUF_C_LABEL_REPEATED)
			continue;
		switch (f->type) {
		case PROTOBUF_C_TYPE_BYTES:
			size = sizeof(ProtobufCBinaryData);
			break;
		case PROTOBUF_C_TYPE_BOOL:
			size = sizeof(protobuf_c_boolean);
			break;
		case PROTOBUF_C_TYPE_UINT32:
			size = sizeof(uint32_t);
			break;
		default:
			continue; /* no such field of another type today */
		}
		memset(copy + f->offset, 0, size);
	}
	protobuf_c_message_pack_to_buffer((const ProtobufCMessage *)copy,
					  &d.base);
	return d.h != 0 ? d.h : 1;
}

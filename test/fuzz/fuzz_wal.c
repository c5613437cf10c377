/*
 * fuzz_wal — raft log entries, as read back from disk and applied on every
 * node: wal_entry_decode, wal_command_validate and the FSM's apply.
 *
 * Input: one entry, raw or framed here (see LLVMFuzzerTestOneInput).
 * Checks:
 *   - decode + validate never crash; a command that decodes re-encodes to
 *     an entry that decodes to the same command with the same verdict;
 *   - the FSM applies ANY entry without a storage error (garbage is a
 *     no-op whose result is INVALID_ARGUMENT), so one bad entry can never
 *     wedge a node replaying its log;
 *   - the same entry applied again at the next index gives the same result
 *     code (a command is applied at most once), and an entry at an index
 *     already applied is skipped with OK if it is the one applied there,
 *     refused with SETTLE_EDIVERGED otherwise.
 */
#include <raft.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "history.h"
#include "wal/entry.h"

/* A fresh store every so many inputs keeps it small and fast. */
#define RESET_EVERY 2000

static struct store *store;
static struct fsm fsm;
static uint64_t index_;
static unsigned inputs;

static void reset(void)
{
	if (store != NULL)
		history_store_close(store, &fsm);
	store = history_store(0, &fsm);
	index_ = history_count();
	inputs = 0;
}

/* Apply at the next index; 0, or SETTLE_EFULL (the caller resets). */
static int apply(const uint8_t *data, size_t size, int *code,
		 uint64_t *first_index)
{
	Settle__V1__CmdResult *r = NULL;
	int rv = fsm_apply(&fsm, ++index_, data, size, &r);

	if (rv == SETTLE_EFULL)
		return rv;
	FUZZ_CHECK(rv == 0, "fsm_apply failed: %s (%s)", settle_strerror(rv),
		   fsm.errmsg);
	FUZZ_CHECK(r != NULL, "no result");
	*code = (int)r->code;
	*first_index = r->index;
	settle__v1__cmd_result__free_unpacked(r, NULL);
	return 0;
}

static bool has_unknown(const Settle__V1__Command *cmd)
{
	const ProtobufCMessage *op = NULL;

	switch (cmd->op_case) {
	case SETTLE__V1__COMMAND__OP_BEGIN:
		op = &cmd->begin->base;
		break;
	case SETTLE__V1__COMMAND__OP_REGISTER:
		op = &cmd->register_->base;
		break;
	case SETTLE__V1__COMMAND__OP_DECIDE:
		op = &cmd->decide->base;
		break;
	case SETTLE__V1__COMMAND__OP_BRANCH_RESULT:
		op = &cmd->branch_result->base;
		break;
	case SETTLE__V1__COMMAND__OP_GC:
		op = &cmd->gc->base;
		break;
	case SETTLE__V1__COMMAND__OP_RETRY:
		op = &cmd->retry->base;
		break;
	case SETTLE__V1__COMMAND__OP_RESOLVE:
		op = &cmd->resolve->base;
		break;
	case SETTLE__V1__COMMAND__OP_XA_VOTE:
		op = &cmd->xa_vote->base;
		break;
	case SETTLE__V1__COMMAND__OP_XA_PREPARE:
		op = &cmd->xa_prepare->base;
		break;
	case SETTLE__V1__COMMAND__OP_XA_RESULT:
		op = &cmd->xa_result->base;
		break;
	case SETTLE__V1__COMMAND__OP_XA_FORGET:
		op = &cmd->xa_forget->base;
		break;
	case SETTLE__V1__COMMAND__OP_XA_HEURISTIC:
		op = &cmd->xa_heuristic->base;
		break;
	default:
		break;
	}
	return cmd->base.n_unknown_fields != 0 ||
	       (op != NULL && op->n_unknown_fields != 0);
}

static unsigned long n_decoded, n_valid, n_ok;
static void stats(void)
{
	if (getenv("FUZZ_VERBOSE") != NULL)
		fprintf(stderr,
			"fuzz_wal: %lu decoded, %lu valid, %lu applied OK\n",
			n_decoded, n_valid, n_ok);
}

static void check_codec(const uint8_t *data, size_t size, int *decoded)
{
	Settle__V1__Command *cmd = NULL, *again = NULL;
	uint8_t *buf, *buf2;
	size_t len, len2;
	char msg[256];
	int valid, valid2, rv;

	rv = wal_entry_decode(data, size, &cmd);
	FUZZ_CHECK(rv == 0 || rv == SETTLE_EPROTO, "decode: %d", rv);
	*decoded = rv == 0;
	if (rv != 0)
		return;
	n_decoded++;
	msg[0] = '\0';
	valid = wal_command_validate(cmd, msg, sizeof(msg));
	n_valid += valid == 0;
	FUZZ_CHECK(valid == 0 || valid == SETTLE_EINVAL ||
		       valid == SETTLE_ETOOBIG,
		   "validate: %d", valid);
	FUZZ_CHECK(valid == 0 || msg[0] != '\0', "rejected without a reason");
	FUZZ_CHECK(strlen(msg) < sizeof(msg), "reason not terminated");

	/* protobuf-c keeps unknown fields and packs them again, but accepts
	 * field number 0 spelled as an overlong varint that it then refuses
	 * once packed plainly. Nothing re-encodes a Command read from the
	 * log, so the round trip is checked on known fields only. */
	if (has_unknown(cmd)) {
		settle__v1__command__free_unpacked(cmd, NULL);
		return;
	}
	rv = wal_entry_encode(cmd, &buf, &len);
	if (rv == SETTLE_ETOOBIG) {
		settle__v1__command__free_unpacked(cmd, NULL);
		return;
	}
	FUZZ_CHECK(rv == 0, "re-encode: %d", rv);
	FUZZ_CHECK(len % 8 == 0, "entry of %zu bytes", len);
	FUZZ_CHECK(wal_entry_decode(buf, len, &again) == 0,
		   "a re-encoded entry does not decode");
	valid2 = wal_command_validate(again, NULL, 0);
	FUZZ_CHECK(valid == valid2, "verdict changed: %d then %d", valid,
		   valid2);
	FUZZ_CHECK(wal_entry_encode(again, &buf2, &len2) == 0, "second encode");
	FUZZ_CHECK(len == len2 && memcmp(buf, buf2, len) == 0,
		   "encoding is not stable");
	raft_free(buf);
	raft_free(buf2);
	settle__v1__command__free_unpacked(again, NULL);
	settle__v1__command__free_unpacked(cmd, NULL);
}

/* The body form: wrap the protobuf bytes as an entry (length, padding). */
static uint8_t *wrap(const uint8_t *body, size_t n, size_t *len)
{
	size_t total = (4 + n + 7) / 8 * 8;
	uint8_t *p = calloc(1, total);

	FUZZ_CHECK(p != NULL, "out of memory");
	p[0] = (uint8_t)n;
	p[1] = (uint8_t)(n >> 8);
	p[2] = (uint8_t)(n >> 16);
	p[3] = (uint8_t)(n >> 24);
	memcpy(p + 4, body, n);
	*len = total;
	return p;
}

static void one(const uint8_t *data, size_t size);

/*
 * Input: [u8 form][bytes]. Even form: bytes are a raw entry, framing
 * included. Odd form: bytes are the packed Command, framed here, so that
 * mutations spend themselves on the command rather than the framing.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *entry;
	size_t len;

	if (size < 1)
		return 0;
	if ((data[0] & 1) == 0) {
		one(data + 1, size - 1);
		return 0;
	}
	entry = wrap(data + 1, size - 1, &len);
	one(entry, len);
	free(entry);
	return 0;
}

static void one(const uint8_t *data, size_t size)
{
	Settle__V1__CmdResult *r = NULL;
	uint64_t idx1, idx2;
	int decoded, code1, code2;

	if (store == NULL) {
		atexit(stats);
		reset();
	} else if (++inputs > RESET_EVERY) {
		reset();
	}
	check_codec(data, size, &decoded);

	if (apply(data, size, &code1, &idx1) != 0) {
		reset();
		return;
	}
	n_ok += code1 == SETTLE__V1__CODE__OK;
	if (!decoded)
		FUZZ_CHECK(code1 == SETTLE__V1__CODE__INVALID_ARGUMENT,
			   "garbage applied with code %d", code1);
	if (apply(data, size, &code2, &idx2) != 0) {
		reset();
		return;
	}
	FUZZ_CHECK(code1 == code2, "repeat changed the result: %d then %d",
		   code1, code2);
	if (code1 == SETTLE__V1__CODE__OK)
		FUZZ_CHECK(idx1 == idx2, "repeat applied again at %llu",
			   (unsigned long long)idx2);

	/* Replay of an index already applied: skipped when it is the entry
	 * applied there, refused as a divergence otherwise. */
	size_t len0;
	const uint8_t *e0 = history_entry(0, &len0);
	bool same = size == len0 && memcmp(data, e0, size) == 0;
	int rv = fsm_apply(&fsm, 1, data, size, &r);
	if (same) {
		FUZZ_CHECK(rv == 0, "replay failed");
		FUZZ_CHECK(r != NULL && r->code == SETTLE__V1__CODE__OK,
			   "replay not skipped");
		settle__v1__cmd_result__free_unpacked(r, NULL);
	} else {
		FUZZ_CHECK(rv == SETTLE_EDIVERGED && r == NULL,
			   "other bytes at an applied index: %d", rv);
	}
	FUZZ_CHECK(fsm_apply(&fsm, 1, e0, len0, &r) == 0, "replay failed");
	FUZZ_CHECK(r != NULL && r->code == SETTLE__V1__CODE__OK,
		   "replay not skipped");
	settle__v1__cmd_result__free_unpacked(r, NULL);
}

/* Command c as a raw-entry seed (form 0). */
static void command_seed(const Settle__V1__Command *c)
{
	uint8_t buf[2048], *e;
	size_t len;

	FUZZ_CHECK(wal_entry_encode(c, &e, &len) == 0, "seed encode");
	FUZZ_CHECK(len + 1 <= sizeof(buf), "seed too big");
	buf[0] = 0;
	memcpy(buf + 1, e, len);
	fuzz_seed_add(buf, len + 1);
	raft_free(e);
}

/* The operator's verbs on the history's stuck transaction, as seeds. */
static void operator_seeds(void)
{
	static uint8_t id[16] = {0x0e, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdRetry rt = SETTLE__V1__CMD_RETRY__INIT;
	Settle__V1__CmdResolve rs = SETTLE__V1__CMD_RESOLVE__INIT;

	c.cmd_id.data = id;
	c.cmd_id.len = sizeof(id);
	c.time_ms = 1700000200000ull;
	rt.gid = "t-committing";
	rt.reason = "participant fixed";
	c.op_case = SETTLE__V1__COMMAND__OP_RETRY;
	c.retry = &rt;
	command_seed(&c);
	rs.gid = "t-committing";
	rs.branch_id = 2;
	rs.reason = "done by hand";
	c.op_case = SETTLE__V1__COMMAND__OP_RESOLVE;
	c.resolve = &rs;
	command_seed(&c);
}

/* The history's first entries as one batch (the leader's form at feature
 * level 3), so that mutations reach apply_batch(). */
static void batch_seed(void)
{
	static uint8_t id[16] = {0x0b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
	Settle__V1__Command c = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdBatch b = SETTLE__V1__CMD_BATCH__INIT;
	ProtobufCBinaryData cmds[4];
	size_t len, n = history_count() < 4 ? history_count() : 4;

	for (size_t i = 0; i < n; i++) {
		const uint8_t *p = history_entry(i, &len);

		cmds[i].len = (size_t)p[0] | (size_t)p[1] << 8 |
			      (size_t)p[2] << 16 | (size_t)p[3] << 24;
		cmds[i].data = (uint8_t *)p + 4;
	}
	c.cmd_id.data = id;
	c.cmd_id.len = sizeof(id);
	c.time_ms = 1700000300000ull;
	b.commands = cmds;
	b.n_commands = n;
	c.op_case = SETTLE__V1__COMMAND__OP_BATCH;
	c.batch = &b;
	command_seed(&c);
}

void fuzz_seeds(void)
{
	uint8_t buf[1024];

	operator_seeds();
	batch_seed();

	for (size_t i = 0; i < history_count(); i++) {
		size_t len, n;
		const uint8_t *e = history_entry(i, &len);

		FUZZ_CHECK(len + 1 <= sizeof(buf), "seed too big");
		buf[0] = 0;
		memcpy(buf + 1, e, len);
		fuzz_seed_add(buf, len + 1);
		/* The same command unframed. */
		n = (size_t)e[0] | (size_t)e[1] << 8 | (size_t)e[2] << 16 |
		    (size_t)e[3] << 24;
		buf[0] = 1;
		memcpy(buf + 1, e + 4, n);
		fuzz_seed_add(buf, n + 1);
	}
}

/*
 * propose.c — append commands through raft and hand back the FSM's result.
 *
 * The result is read back from LMDB by cmd_id rather than passed through
 * raft's result pointer: canonical/raft 0.15 drops that pointer for entries
 * with no local request (followers, entries of a previous leader), and the
 * stored result is also what a retried command gets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "clock.h"
#include "coord.h"
#include "error.h"
#include "log.h"
#include "metrics.h"
#include "propose.h"
#include "role.h"
#include "wal/entry.h"

/* One command: waiting in the loop turn's batch, or in flight. */
struct pending {
	coord_propose_cb cb;
	void *data;
	uint8_t cmd_id[STORE_CMD_ID_LEN];
	uint64_t digest; /* Command.request_digest */
	uint8_t *bytes;	 /* the packed Command, until proposed */
	size_t len;
};

/* One raft entry: one command, or a CmdBatch of n. */
struct proposal {
	struct raft_apply req;
	struct coord *c;
	uint64_t t_ns; /* appended at (uv_hrtime), for the metrics */
	size_t n;
	struct pending items[];
};

void coord_random_id(uint8_t buf[16])
{
	/* Drawn 4 KiB at a time: one getrandom() per 256 ids instead of one
	 * each (the loop thread only; the bytes are as unpredictable). */
	static uint8_t pool[4096];
	static size_t used = sizeof pool;

	if (used + 16 > sizeof pool) {
		size_t got = 0;

		while (got < sizeof pool) {
			ssize_t n = getrandom(pool + got, sizeof pool - got, 0);
			if (n > 0)
				got += (size_t)n;
		}
		used = 0;
	}
	memcpy(buf, pool + used, 16);
	memset(pool + used, 0, 16);
	used += 16;
}

uint64_t coord_stamp(uint64_t now_ms)
{
	static uint64_t last;
	uint64_t v = now_ms << 16;

	if (v <= last)
		v = last + 1;
	last = v;
	return v;
}

void coord_cmd_id(uint8_t buf[16])
{
	struct timespec ts;
	uint64_t v;

	/* As libsettle's settle_cmd_id(): unix ms first, then a count, so
	 * the ids the leader makes (batches, results) come in order and are
	 * written at the end of the cmd_ids B-tree, whose pages LMDB then
	 * fills before it starts the next, rather than on a random page. */
	coord_random_id(buf);
	clock_gettime(CLOCK_REALTIME, &ts);
	v = coord_stamp((uint64_t)ts.tv_sec * 1000 +
			(uint64_t)ts.tv_nsec / 1000000);
	for (int i = 7; i >= 0; i--) {
		buf[i] = (uint8_t)v;
		v >>= 8;
	}
}

/* Answer one proposer: its result read back by cmd_id, or why not. */
static void answer(struct coord *c, const struct pending *p, int err)
{
	Settle__V1__CmdResult *res = NULL;
	int rv;

	c->proposals--;
	if (err != 0) {
		/* LEADERSHIPLOST: the entry may still commit later; the
		 * client's retry with the same cmd_id is applied once. */
		p->cb(c, p->data, err, NULL);
		return;
	}
	rv = store_cmd_get(c->store, NULL, p->cmd_id, &res);
	if (rv != 0) {
		settle_log(SETTLE_LOG_ERROR, "propose",
			   "no stored result for an applied command: %s",
			   settle_strerror(rv));
		p->cb(c, p->data, SETTLE_EINTERNAL, NULL);
		return;
	}
	if (wal_cmd_id_reused(res->request_digest, p->digest)) {
		/* The FSM refused the command by the same rule; the row holds
		 * the answer to the request that used the id first. */
		Settle__V1__CmdResult refused = SETTLE__V1__CMD_RESULT__INIT;
		char msg[256];

		snprintf(msg, sizeof msg,
			 "cmd_id already used by another request (for gid "
			 "'%s'); nothing changed: a retry must repeat its "
			 "request unchanged, a new request needs a new cmd_id",
			 res->gid != NULL ? res->gid : "");
		refused.code = SETTLE__V1__CODE__CMD_ID_REUSED;
		refused.message = msg;
		refused.index = res->index;
		p->cb(c, p->data, 0, &refused);
	} else {
		p->cb(c, p->data, 0, res);
	}
	settle__v1__cmd_result__free_unpacked(res, NULL);
}

static void applied(struct raft_apply *req, int status, void *result)
{
	struct proposal *p = req->data;
	int err = status != 0 ? settle_err_from_raft(status) : 0;

	(void)result;
	if (status == 0)
		coord_metrics_observe(&p->c->metrics.raft_commit,
				      (uv_hrtime() - p->t_ns) / 1000);
	for (size_t i = 0; i < p->n; i++)
		answer(p->c, &p->items[i], err);
	free(p);
}

/* Append the entry buf/len for the n commands items (moved into the
 * proposal); on failure each is answered with the error. */
static void append(struct coord *c, uint8_t *buf, size_t len,
		   struct pending *items, size_t n)
{
	struct proposal *p = malloc(sizeof *p + n * sizeof p->items[0]);
	struct raft_buffer rb;
	int rv;

	if (p == NULL) {
		raft_free(buf);
		for (size_t i = 0; i < n; i++)
			answer(c, &items[i], SETTLE_ENOMEM);
		return;
	}
	p->c = c;
	p->n = n;
	p->t_ns = uv_hrtime();
	memcpy(p->items, items, n * sizeof items[0]);
	p->req.data = p;
	rb.base = buf;
	rb.len = len;
	/* One buffer per request: 0.15 reports only the first entry's
	 * result for a multi-buffer apply. */
	rv = raft_apply(&c->raft, &p->req, &rb, 1, applied);
	if (rv != 0) {
		raft_free(buf);
		for (size_t i = 0; i < n; i++)
			answer(c, &p->items[i], settle_err_from_raft(rv));
		free(p);
	}
}

/* Propose items[0..n) as one entry: alone, the entry of its own (as
 * below level 3); else a CmdBatch. Frees their bytes. */
static void propose_chunk(struct coord *c, struct pending *items, size_t n)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rv;

	if (n == 1) {
		rv = wal_entry_wrap(items[0].bytes, items[0].len, &buf, &len);
	} else {
		Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
		Settle__V1__CmdBatch op = SETTLE__V1__CMD_BATCH__INIT;
		ProtobufCBinaryData *cmds = malloc(n * sizeof *cmds);
		uint8_t id[STORE_CMD_ID_LEN];

		rv = SETTLE_ENOMEM;
		if (cmds != NULL) {
			for (size_t i = 0; i < n; i++) {
				cmds[i].data = items[i].bytes;
				cmds[i].len = items[i].len;
			}
			coord_cmd_id(id);
			cmd.cmd_id.data = id;
			cmd.cmd_id.len = sizeof id;
			cmd.time_ms = coord_wall_now(c);
			cmd.op_case = SETTLE__V1__COMMAND__OP_BATCH;
			op.commands = cmds;
			op.n_commands = n;
			cmd.batch = &op;
			rv = wal_entry_encode(&cmd, &buf, &len);
			free(cmds);
		}
	}
	for (size_t i = 0; i < n; i++) {
		free(items[i].bytes);
		items[i].bytes = NULL;
	}
	if (rv != 0) {
		for (size_t i = 0; i < n; i++)
			answer(c, &items[i], rv);
		return;
	}
	append(c, buf, len, items, n);
}

void coord_propose_flush(struct coord *c)
{
	struct coord_batch *b = &c->batch;
	struct pending *items = b->items;
	size_t n = b->n, start = 0;

	if (n == 0)
		return;
	/* Taken whole: a proposer answered from here may propose again,
	 * into a new batch. */
	b->items = NULL;
	b->n = b->cap = 0;
	/* Entries of at most WAL_BATCH_MAX commands and WAL_ENTRY_MAX
	 * bytes (each command's tag and length: 8 bytes at most). */
	while (start < n) {
		size_t end = start + 1, bytes = items[start].len + 8;

		while (end < n && end - start < WAL_BATCH_MAX &&
		       64 + bytes + items[end].len + 8 <= WAL_ENTRY_MAX)
			bytes += items[end++].len + 8;
		propose_chunk(c, &items[start], end - start);
		start = end;
	}
	free(items);
}

void coord_propose_drop(struct coord *c, int err)
{
	struct coord_batch *b = &c->batch;
	struct pending *items = b->items;
	size_t n = b->n;

	b->items = NULL;
	b->n = b->cap = 0;
	for (size_t i = 0; i < n; i++) {
		free(items[i].bytes);
		answer(c, &items[i], err);
	}
	free(items);
}

int coord_propose(struct coord *c, Settle__V1__Command *cmd,
		  coord_propose_cb cb, void *data)
{
	struct coord_batch *b = &c->batch;
	struct pending p;
	uint8_t *buf;
	size_t len;
	int rv;

	if (c->closing)
		return SETTLE_EUNAVAIL;
	if (!coord_is_leader(c))
		return SETTLE_ENOTLEADER;
	if (cmd->time_ms == 0)
		cmd->time_ms = coord_wall_now(c);
	coord_clock_stamp(c, cmd);
	if (cmd->cmd_id.len == 0) {
		coord_cmd_id(p.cmd_id);
		cmd->cmd_id.data = p.cmd_id;
		cmd->cmd_id.len = STORE_CMD_ID_LEN;
	} else if (cmd->cmd_id.len == STORE_CMD_ID_LEN) {
		memcpy(p.cmd_id, cmd->cmd_id.data, STORE_CMD_ID_LEN);
	} else {
		return SETTLE_EINVAL;
	}
	p.cb = cb;
	p.data = data;
	p.digest = cmd->request_digest;
	p.bytes = NULL;
	p.len = 0;
	if (fsm_level(&c->fsm) < FSM_LEVEL_PROPOSE_BATCH) {
		/* Some member may not apply a batch: an entry each. */
		rv = wal_entry_encode(cmd, &buf, &len);
		if (rv != 0)
			return rv;
		c->proposals++;
		append(c, buf, len, &p, 1);
		return 0;
	}
	len = settle__v1__command__get_packed_size(cmd);
	if (64 + len + 8 > WAL_ENTRY_MAX)
		return SETTLE_ETOOBIG;
	if (b->n == b->cap) {
		size_t cap = b->cap != 0 ? b->cap * 2 : 64;
		struct pending *items = realloc(b->items, cap * sizeof *items);

		if (items == NULL)
			return SETTLE_ENOMEM;
		b->items = items;
		b->cap = cap;
	}
	p.bytes = malloc(len > 0 ? len : 1);
	if (p.bytes == NULL)
		return SETTLE_ENOMEM;
	settle__v1__command__pack(cmd, p.bytes);
	p.len = len;
	b->items[b->n++] = p;
	c->proposals++;
	return 0;
}

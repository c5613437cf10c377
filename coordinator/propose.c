/*
 * propose.c — append commands through raft and hand back the FSM's result.
 *
 * The result is read back from LMDB by cmd_id rather than passed through
 * raft's result pointer: canonical/raft 0.15 drops that pointer for entries
 * with no local request (followers, entries of a previous leader), and the
 * stored result is also what a retried command gets.
 */
#include <stdio.h>
#include <string.h>
#include <sys/random.h>

#include "coord.h"
#include "error.h"
#include "log.h"
#include "wal/entry.h"

struct proposal {
	struct raft_apply req;
	struct coord *c;
	coord_propose_cb cb;
	void *data;
	uint8_t cmd_id[STORE_CMD_ID_LEN];
	uint64_t digest; /* Command.request_digest */
};

void coord_random_id(uint8_t buf[16])
{
	size_t got = 0;

	while (got < 16) {
		ssize_t n = getrandom(buf + got, 16 - got, 0);
		if (n > 0)
			got += (size_t)n;
	}
}

static void applied(struct raft_apply *req, int status, void *result)
{
	struct proposal *p = req->data;
	struct coord *c = p->c;
	Settle__V1__CmdResult *res = NULL;
	int rv;

	(void)result;
	c->proposals--;
	if (status != 0) {
		/* LEADERSHIPLOST: the entry may still commit later; the
		 * client's retry with the same cmd_id is applied once. */
		p->cb(c, p->data, settle_err_from_raft(status), NULL);
		goto out;
	}
	rv = store_cmd_get(c->store, NULL, p->cmd_id, &res);
	if (rv != 0) {
		settle_log(SETTLE_LOG_ERROR, "propose",
			   "no stored result for an applied command: %s",
			   settle_strerror(rv));
		p->cb(c, p->data, SETTLE_EINTERNAL, NULL);
		goto out;
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
out:
	raft_free(p);
}

int coord_propose(struct coord *c, Settle__V1__Command *cmd,
		  coord_propose_cb cb, void *data)
{
	struct proposal *p;
	struct raft_buffer buf;
	uint8_t *bytes;
	size_t len;
	int rv;

	if (!coord_is_leader(c))
		return SETTLE_ENOTLEADER;
	if (cmd->time_ms == 0)
		cmd->time_ms = coord_wall_now(c);
	coord_clock_stamp(c, cmd);
	p = raft_malloc(sizeof *p);
	if (p == NULL)
		return SETTLE_ENOMEM;
	if (cmd->cmd_id.len == 0) {
		coord_random_id(p->cmd_id);
		cmd->cmd_id.data = p->cmd_id;
		cmd->cmd_id.len = STORE_CMD_ID_LEN;
	} else if (cmd->cmd_id.len == STORE_CMD_ID_LEN) {
		memcpy(p->cmd_id, cmd->cmd_id.data, STORE_CMD_ID_LEN);
	} else {
		raft_free(p);
		return SETTLE_EINVAL;
	}
	rv = wal_entry_encode(cmd, &bytes, &len);
	if (rv != 0) {
		raft_free(p);
		return rv;
	}
	p->digest = cmd->request_digest;
	p->c = c;
	p->cb = cb;
	p->data = data;
	p->req.data = p;
	buf.base = bytes;
	buf.len = len;
	/* One buffer per request: 0.15 reports only the first entry's
	 * result for a multi-buffer apply. Concurrent requests are merged
	 * into one disk write by raft_uv. */
	rv = raft_apply(&c->raft, &p->req, &buf, 1, applied);
	if (rv != 0) {
		raft_free(bytes);
		raft_free(p);
		return settle_err_from_raft(rv);
	}
	c->proposals++;
	return 0;
}

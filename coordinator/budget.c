/*
 * budget.c — the store's budget (settled --store-budget): new work is
 * refused before the store fills, so that apply never meets a full map.
 *
 * Apply cannot fail: an entry that does not fit fails on every node at the
 * same index, and every restart fails there again. So the leader decides,
 * before proposing, from its own measure of the store (store_usage()):
 *  - at BUDGET_HIGH_PCT of the capacity, Begin and SubmitSaga (new
 *    transactions, XA begins included) are refused with RESOURCE_EXHAUSTED;
 *  - at BUDGET_CRIT_PCT, RegisterBranch too (a branch carries up to 1 MiB
 *    of payload);
 *  - decisions, results, phase-2 records, operator verbs and GC always
 *    pass: what was begun finishes, and the last part of the budget is
 *    kept for it. An entry counts twice its size (LMDB copies the pages
 *    it touches and frees the old ones only after the commit, later still
 *    while a snapshot's read view pins them).
 * The capacity is the budget, or less when the disk holding the store has
 * less room than the budget leaves. Followers measure their own store,
 * whose file may differ a little (snapshots pin pages at other moments,
 * a restored snapshot is compact): the reserve above the high-water mark,
 * and the map of twice the budget (node.c), absorb that.
 * A request whose cmd_id was applied already is never refused: it is a
 * retry that proposes nothing new, and its answer must not change.
 */
#include <inttypes.h>
#include <stdio.h>

#include "budget.h"
#include "coord.h"
#include "error.h"
#include "log.h"
#include "role.h"
#include "waiters.h"

#define BUDGET_HIGH_PCT 90
#define BUDGET_CRIT_PCT 95
/* A measure younger than this serves admissions; entries admitted since
 * are added to it. */
#define BUDGET_FRESH_MS 50
/* Followers and idle leaders measure this often (status, the log). */
#define BUDGET_TICK_MS 1000

#define MIB(x) ((unsigned long long)((x) >> 20))

static uint64_t capacity(const struct coord *c, bool *disk)
{
	const struct store_usage *u = &c->budget.u;
	uint64_t cap = c->cfg.store_budget;

	*disk = false;
	if (u->disk_free_bytes != UINT64_MAX &&
	    u->file_bytes + u->disk_free_bytes < cap) {
		cap = u->file_bytes + u->disk_free_bytes;
		*disk = true;
	}
	return cap;
}

static void measure(struct coord *c)
{
	bool disk, was = c->budget.refusing;
	uint64_t cap;

	if (store_usage(c->store, &c->budget.u) != 0) {
		/* Keep the last measure; a store that cannot be read fails
		 * elsewhere too. */
		settle_tracef("budget", "measure: %s", store_errmsg(c->store));
		return;
	}
	c->budget.at_ms = settle_mono_ms();
	c->budget.admitted = 0;
	cap = capacity(c, &disk);
	c->budget.refusing =
	    c->budget.u.used_bytes >= cap / 100 * BUDGET_HIGH_PCT;
	if (c->budget.refusing && !was)
		settle_log(SETTLE_LOG_WARN, "budget",
			   "store at %llu MiB of %llu MiB (%s): new "
			   "transactions are refused until space is freed "
			   "(docs/OPERATIONS.md)",
			   MIB(c->budget.u.used_bytes), MIB(cap),
			   disk ? "the disk is nearly full" : "--store-budget");
	else if (!c->budget.refusing && was)
		settle_log(SETTLE_LOG_INFO, "budget",
			   "store at %llu MiB of %llu MiB: new transactions "
			   "are accepted again",
			   MIB(c->budget.u.used_bytes), MIB(cap));
}

void coord_budget_tick(struct coord *c)
{
	if (c->budget.at_ms == 0 ||
	    settle_mono_ms() - c->budget.at_ms >= BUDGET_TICK_MS)
		measure(c);
}

void coord_budget_status(struct coord *c, uint64_t *used, uint64_t *budget,
			 bool *refusing)
{
	if (c->budget.at_ms == 0)
		measure(c);
	*used = c->budget.u.used_bytes;
	*budget = c->cfg.store_budget;
	*refusing = c->budget.refusing && coord_is_leader(c);
}

/* Whether cmd carries a cmd_id already applied (a retry). */
static bool applied_before(struct coord *c, const Settle__V1__Command *cmd)
{
	Settle__V1__CmdResult *r = NULL;

	if (cmd->cmd_id.len != STORE_CMD_ID_LEN ||
	    store_cmd_get(c->store, NULL, cmd->cmd_id.data, &r) != 0)
		return false;
	settle__v1__cmd_result__free_unpacked(r, NULL);
	return true;
}

bool coord_budget_admit(struct coord *c, struct rpc_call *call,
			const Settle__V1__Command *cmd)
{
	unsigned pct;
	const char *what;
	char msg[320];
	uint64_t cap, need;
	bool disk;

	switch (cmd->op_case) {
	case SETTLE__V1__COMMAND__OP_BEGIN:
	case SETTLE__V1__COMMAND__OP_SAGA_BEGIN:
		pct = BUDGET_HIGH_PCT;
		what = "new transactions are";
		break;
	case SETTLE__V1__COMMAND__OP_REGISTER:
		pct = BUDGET_CRIT_PCT;
		what = "new transactions and branches are";
		break;
	default:
		return true;
	}
	if (c->budget.at_ms == 0 ||
	    settle_mono_ms() - c->budget.at_ms >= BUDGET_FRESH_MS)
		measure(c);
	need = 2 * (uint64_t)protobuf_c_message_get_packed_size(&cmd->base);
	cap = capacity(c, &disk);
	if (c->budget.u.used_bytes + c->budget.admitted + need <=
	    cap / 100 * pct) {
		c->budget.admitted += need;
		return true;
	}
	if (applied_before(c, cmd))
		return true;
	if (disk)
		snprintf(msg, sizeof msg,
			 "disk nearly full: the store holds %llu MiB and its "
			 "disk has %llu MiB free; %s refused until space is "
			 "freed (docs/OPERATIONS.md)",
			 MIB(c->budget.u.used_bytes),
			 MIB(c->budget.u.disk_free_bytes), what);
	else
		snprintf(msg, sizeof msg,
			 "store at %llu MiB of its %llu MiB budget "
			 "(settled --store-budget); %s refused until "
			 "retention frees space or the budget is raised "
			 "(docs/OPERATIONS.md)",
			 MIB(c->budget.u.used_bytes), MIB(cap), what);
	coord_fail(c, call, SETTLE_EEXHAUSTED, msg);
	return false;
}

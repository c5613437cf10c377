/*
 * node_metrics.c — what node.c's tick tells operators (node.h): the
 * loop's heartbeat and the node's readiness (/healthz, /readyz, systemd),
 * and the gauges of metrics.h read from raft and the store. Part of the
 * assembler: it reads every stage.
 */
#include <stdatomic.h>

#include "budget.h"
#include "coord.h"
#include "dispatch.h"
#include "log.h"
#include "metrics.h"
#include "node.h"
#include "notify.h"
#include "role.h"

/* Least time between two counts of open and stuck transactions (each a
 * read of the store; the stuck ones a scan of the unfinished). */
#define METRICS_COUNT_EVERY_MS 5000

static void set(coord_counter *g, uint64_t v)
{
	atomic_store_explicit(g, v, memory_order_relaxed);
}

/* Whether this node is ready (/readyz), or why not; the leader it knows
 * in *leader (0: none). */
static int readiness(struct coord *c, raft_id *leader)
{
	const char *address = NULL;
	bool member = false;

	*leader = 0;
	if (c->closing)
		return COORD_NOT_READY_STOPPING;
	if (!c->raft_started)
		return COORD_NOT_READY_STARTING;
	raft_leader(&c->raft, leader, &address);
	for (unsigned i = 0; i < c->raft.configuration.n; i++)
		member =
		    member || c->raft.configuration.servers[i].id == c->cfg.id;
	if (!member)
		return COORD_NOT_READY_NOT_MEMBER;
	if (*leader == 0)
		return COORD_NOT_READY_NO_LEADER;
	if (coord_is_leader(c) && !coord_is_ready(c))
		return COORD_NOT_READY_BARRIER;
	if (c->raft.commit_index >
	    raft_last_applied(&c->raft) + COORD_READY_LAG)
		return COORD_NOT_READY_BEHIND;
	return COORD_READY;
}

void coord_node_metrics_tick(struct coord *c)
{
	struct coord_metrics *m = &c->metrics;
	uint64_t now = settle_mono_ms(), used = 0, budget = 0;
	bool refusing = false;
	raft_id leader;
	int why = readiness(c, &leader);

	set(&m->beat_ms, now);
	atomic_store_explicit(&m->not_ready, why, memory_order_relaxed);
	coord_notify_tick(&c->notify, why, coord_metrics_not_ready_text(why),
			  c->cfg.join, now);
	if (!c->raft_started)
		return;
	set(&m->term, c->raft.current_term);
	set(&m->raft_state, raft_state(&c->raft));
	set(&m->leader_id, leader);
	set(&m->last_index, raft_last_index(&c->raft));
	set(&m->commit_index, c->raft.commit_index);
	set(&m->applied_index, raft_last_applied(&c->raft));
	coord_budget_status(c, &used, &budget, &refusing);
	set(&m->store_used, used);
	set(&m->store_budget, budget);
	set(&m->store_refusing, refusing);
	/* budget.c's last measure of the store (once a second at most). */
	set(&m->store_map, c->budget.u.map_bytes);
	set(&m->store_file, c->budget.u.file_bytes);
	set(&m->disk_free, c->budget.u.disk_free_bytes == UINT64_MAX
			       ? 0
			       : c->budget.u.disk_free_bytes);
	if (m->counted_at == 0 ||
	    now - m->counted_at >= METRICS_COUNT_EVERY_MS) {
		uint64_t open = 0, finished = 0, stuck;

		m->counted_at = now;
		stuck = coord_stuck_count(c, settle_now_ms(), &open, &finished);
		set(&m->open_txs, open);
		set(&m->stuck_txs, stuck);
	}
}

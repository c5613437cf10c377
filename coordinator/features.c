/*
 * features.c — raising the cluster's feature level (docs/ARCHITECTURE.md,
 * "Feature levels").
 *
 * A node of an older release skips a command kind it does not know as an
 * empty command, so the leader may only send the commands of a level once
 * every member applies them. Every ROUND_EVERY_MS a ready leader whose
 * cluster runs below its own --feature-level asks every other member of
 * the raft configuration for its STATUS. When every one of them answers
 * with at least that level, the configuration has not changed meanwhile
 * and no membership change is under way, it proposes CmdFeatures. A member
 * that does not answer, or answers with a lower level (an older release
 * answers 0: it does not know the field), keeps the cluster where it is;
 * the next round asks again. Joining nodes are checked when they are added
 * (admin_op.c), so the level never runs ahead of a member.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "coord.h"
#include "error.h"
#include "features.h"
#include "log.h"
#include "propose.h"
#include "role.h"
#include "wal/entry.h"
#include "wal/fsm.h"

#define ROUND_EVERY_MS 2000
#define ASK_TIMEOUT_MS 1500

/* One STATUS call of a round. */
struct ask {
	struct coord *c;
	uint64_t round;
	uint64_t id;
};

static void clients_close(struct coord_features *f)
{
	for (unsigned i = 0; i < f->n_clients; i++)
		rpc_client_close(f->clients[i]);
	f->n_clients = 0;
}

static void level_applied(struct coord *c, void *data, int err,
			  const Settle__V1__CmdResult *res)
{
	(void)data;
	c->features.proposing = false;
	if (err != 0)
		settle_log(SETTLE_LOG_WARN, "features",
			   "raising the feature level: %s; the next round "
			   "tries again",
			   settle_strerror(err));
	else
		settle_log(SETTLE_LOG_INFO, "features",
			   "the cluster runs at feature level %u", res->count);
}

/* Every member answered: raise the level if all of them can. */
static void round_end(struct coord *c)
{
	struct coord_features *f = &c->features;
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdFeatures op = SETTLE__V1__CMD_FEATURES__INIT;

	f->running = false;
	if (f->agreed != f->asked || !coord_is_ready(c) || c->closing ||
	    c->raft.configuration_index != f->conf_index ||
	    c->raft.configuration_uncommitted_index != 0 ||
	    c->admin_op != NULL || f->proposing)
		return;
	op.level = f->want;
	cmd.op_case = SETTLE__V1__COMMAND__OP_FEATURES;
	cmd.features = &op;
	if (coord_propose(c, &cmd, level_applied, NULL) == 0)
		f->proposing = true;
}

static void status_answered(void *data, const struct rpc_result *res)
{
	struct ask *a = data;
	struct coord *c = a->c;
	struct coord_features *f = &c->features;
	Settle__V1__StatusResponse *st = NULL;
	uint32_t level = 0;

	if (a->round != f->round || !f->running) {
		free(a);
		return;
	}
	if (res->err == 0)
		st = settle__v1__status_response__unpack(NULL, res->len,
							 res->body);
	if (st != NULL) {
		level = st->feature_level;
		settle__v1__status_response__free_unpacked(st, NULL);
	}
	f->answered++;
	if (level >= f->want) {
		f->agreed++;
	} else if (settle_mono_ms() >= f->warned_ms + 60000) {
		char what[160];

		f->warned_ms = settle_mono_ms();
		if (res->err != 0)
			snprintf(what, sizeof what,
				 "did not tell its feature level (%s)",
				 settle_strerror(res->err));
		else if (level == 0)
			snprintf(what, sizeof what,
				 "runs a release older than feature levels");
		else
			snprintf(what, sizeof what,
				 "runs feature level %u, below %u", level,
				 f->want);
		settle_log(SETTLE_LOG_INFO, "features",
			   "node %llu %s; the cluster stays at level %u",
			   (unsigned long long)a->id, what, fsm_level(&c->fsm));
	}
	free(a);
	if (f->answered == f->asked)
		round_end(c);
}

static void round_start(struct coord *c)
{
	struct coord_features *f = &c->features;
	const struct raft_configuration *conf = &c->raft.configuration;
	char buf[WAL_ENDPOINT_MAX + 1];

	clients_close(f);
	f->round++;
	f->running = true;
	f->asked = f->answered = f->agreed = 0;
	f->want = c->cfg.feature_level;
	f->conf_index = c->raft.configuration_index;
	for (unsigned i = 0; i < conf->n; i++) {
		const struct raft_server *s = &conf->servers[i];
		struct rpc_client *rc;
		struct ask *a;

		if (s->id == c->cfg.id)
			continue;
		f->asked++;
		const char *ep = coord_client_of(c, s->id, buf, sizeof buf);
		a = malloc(sizeof *a);
		if (ep == NULL || a == NULL ||
		    f->n_clients == COORD_MAX_PEERS ||
		    rpc_client_init(c->loop, ep, &c->client_opts, &rc) != 0) {
			/* Counted, never agreed: this round cannot end in a
			 * raise. */
			free(a);
			f->answered++;
			continue;
		}
		f->clients[f->n_clients++] = rc;
		a->c = c;
		a->round = f->round;
		a->id = s->id;
		if (rpc_client_call(rc, SETTLE__V1__METHOD__STATUS, NULL,
				    ASK_TIMEOUT_MS, status_answered, a) != 0) {
			free(a);
			f->answered++;
		}
	}
	if (f->answered == f->asked)
		round_end(c);
}

void coord_features_tick(struct coord *c)
{
	struct coord_features *f = &c->features;
	uint64_t now = settle_mono_ms();

	if (!coord_is_ready(c) || c->closing ||
	    fsm_level(&c->fsm) >= c->cfg.feature_level) {
		if (f->n_clients > 0 && !f->running)
			clients_close(f);
		return;
	}
	if (f->running || f->proposing || now < f->next_ms)
		return;
	f->next_ms = now + ROUND_EVERY_MS;
	round_start(c);
}

void coord_features_close(struct coord *c)
{
	struct coord_features *f = &c->features;

	f->running = false;
	clients_close(f);
}

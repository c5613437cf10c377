/*
 * node.c — lifecycle of a coordinator node (node.h): opens LMDB, the raft
 * instance and the client RPC server and wires the stages of coord.h to
 * them (raft's FSM in apply.c, its snapshots in snapshot.c, requests in
 * dispatch.c); owns the loop's handles (the check that ends each turn, the
 * leadership watch, the tick), signals, and the stop.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "aio_defer.h"
#include "apply.h"
#include "budget.h"
#include "clock.h"
#include "coord.h"
#include "dispatch.h"
#include "driver.h"
#include "error.h"
#include "features.h"
#include "log.h"
#include "metrics.h"
#include "metrics_http.h"
#include "node.h"
#include "notify.h"
#include "propose.h"
#include "raft_tls.h"
#include "role.h"
#include "snapshot.h"
#include "tls.h"
#include "waiters.h"

#define TICK_MS	      50
#define DRAIN_POLL_MS 5
#define DRAIN_MAX_MS  3000
/* Size of raft_uv's log segments (its default is 8 MiB). */
#define RAFT_SEGMENT_SIZE (64u * 1024 * 1024)

static int make_dir(const char *path, char *errmsg, size_t len)
{
	if (mkdir(path, 0700) != 0 && errno != EEXIST) {
		snprintf(errmsg, len, "mkdir %s: %s", path, strerror(errno));
		return SETTLE_EIO;
	}
	return 0;
}

/* End of the I/O callbacks of a turn: what they proposed, in one entry;
 * then the apply batch's commit when it is due. */
static void commit_cb(uv_check_t *h)
{
	struct coord *c = h->data;

	coord_propose_flush(c);
	coord_apply_turn(c, uv_now(c->loop));
}

/* ---- Leadership watch ---------------------------------------------------- */

/*
 * canonical/raft 0.15 lets a new leader commit entries of earlier terms by
 * counting replicas, and appends no entry of its own term when elected
 * (raft paper figure 8, fixed upstream in 0.17.1). An entry of the leader's
 * own term committed by a majority commits everything before it whatever
 * the counting rule did. So a new leader appends a barrier at once, and
 * answers no client and calls no participant until that barrier is
 * applied: nothing outside the cluster can rest on an entry that may later
 * be overwritten.
 */
static void barrier_cb(struct raft_barrier *req, int status)
{
	struct coord *c = req->data;

	c->barrier_pending = false;
	if (c->closing)
		return;
	if (status != 0 || !coord_is_leader(c) ||
	    c->raft.current_term != c->barrier_term) {
		/* Lost or replaced meanwhile: the watch starts again. */
		settle_tracef("raft", "barrier of term %llu: %s",
			      (unsigned long long)c->barrier_term,
			      status != 0 ? raft_strerror(status) : "stale");
		return;
	}
	c->ready_term = c->barrier_term;
	settle_log(SETTLE_LOG_INFO, "raft",
		   "leader of term %llu is ready (barrier at %llu applied)",
		   (unsigned long long)c->ready_term,
		   (unsigned long long)raft_last_applied(&c->raft));
	coord_driver_set_active(c, true);
}

/* Every loop iteration (uv_prepare, as dqlite does): a node that stops
 * leading stops answering and calling participants before it does
 * anything else. */
static void watch_cb(uv_prepare_t *p)
{
	struct coord *c = p->data;
	bool leader = coord_is_leader(c);
	raft_term term = c->raft.current_term;
	int rv;

	/* What timers and closing handles proposed, before the loop waits
	 * for I/O. */
	coord_propose_flush(c);
	if (c->raft_started && !c->closing &&
	    raft_state(&c->raft) == RAFT_UNAVAILABLE) {
		/* raft 0.15 gives up this way when a leader sends an entry
		 * that conflicts with one this node committed: its store may
		 * hold an entry the cluster overwrote (figure 8). Running on
		 * would serve a diverged state. */
		settle_log(SETTLE_LOG_ERROR, "raft",
			   "raft stopped on this node (%s): its state may "
			   "differ from the cluster's; rebuild it as a new "
			   "member (docs/OPERATIONS.md)",
			   raft_errmsg(&c->raft));
		_exit(70);
	}

	if (c->leader && (!leader || term != c->leader_term)) {
		c->leader = false;
		settle_log(SETTLE_LOG_INFO, "raft",
			   "lost leadership of term %llu",
			   (unsigned long long)c->leader_term);
		coord_waiters_flush(c, SETTLE_ENOTLEADER);
		coord_driver_set_active(c, false);
	}
	/* Calls held when leadership moved learn the new leader as soon as
	 * this node does (its first heartbeat). */
	coord_waiters_redirect(c);
	if (leader && !c->leader) {
		c->leader = true;
		c->leader_term = term;
		settle_log(SETTLE_LOG_INFO, "raft",
			   "elected leader of term %llu",
			   (unsigned long long)term);
	}
	if (leader && c->ready_term != term && !c->barrier_pending) {
		c->barrier.data = c;
		c->barrier_term = term;
		rv = raft_barrier(&c->raft, &c->barrier, barrier_cb);
		if (rv == 0)
			c->barrier_pending = true;
		else
			settle_log(SETTLE_LOG_WARN, "raft", "barrier: %s",
				   raft_strerror(rv));
	}
}

/*
 * LMDB runs without fsync, and what the node writes to it sat dirty in the
 * page cache until the kernel's flusher took it 30 s later, in bursts:
 * with 5,000 transactions a second offered to 3 nodes, a 350 ms stall of
 * every commit at the 30th second, the p99 of a 45 s run at 110-210 ms.
 * Writeback started every WRITEBACK_EVERY_MS on libuv's pool takes the
 * same writes as they come: no burst, a p99 of 35 ms in the same run. The
 * raft log is written directly, and the journal and checkpoints start
 * their own writeback as they grow.
 */
#define WRITEBACK_EVERY_MS 1000

static void writeback_work(uv_work_t *w)
{
	struct coord *c = w->data;

	store_writeback_start(c->store);
}

static void writeback_done(uv_work_t *w, int status)
{
	struct coord *c = w->data;

	(void)status;
	c->writeback.busy = false;
}

static void writeback_tick(struct coord *c)
{
	uint64_t now = uv_now(c->loop);

	if (c->writeback.busy || c->closing ||
	    now - c->writeback.at < WRITEBACK_EVERY_MS)
		return;
	c->writeback.at = now;
	c->writeback.work.data = c;
	if (uv_queue_work(c->loop, &c->writeback.work, writeback_work,
			  writeback_done) == 0)
		c->writeback.busy = true;
}

static void tick_cb(uv_timer_t *t)
{
	coord_node_metrics_tick(t->data);
	coord_backup_tick(t->data, settle_mono_ms());
	writeback_tick(t->data);
	coord_budget_tick(t->data);
	coord_driver_tick(t->data);
	coord_features_tick(t->data);
}

/* ---- Shutdown ------------------------------------------------------------ */

static void raft_closed(struct raft *r)
{
	struct coord *c = r->data;

	/* raft_uv may still run callbacks of its own (a log segment's writer
	 * closing late): it is freed once the loop is done, in
	 * coord_close(). */
	c->raft_io_closed = true;
	c->raft_started = false;
	/* Nothing is applied any more. */
	coord_commit_applied(c);
	uv_close((uv_handle_t *)&c->commit, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct coord *c = s->data;

	settle_log(SETTLE_LOG_INFO, "node", "signal %d: stopping", signum);
	coord_stop(c, 0);
}

/*
 * raft 0.15 corrupts its in-memory log when raft_close() cancels two or more
 * appends still being written: each cancelled append truncates the log from
 * its own index, so the second one frees entries the first already freed
 * (upstream issue #338, fixed in 0.17). Under load SIGTERM hit this nearly
 * every time (double free or SEGV inside libraft). So raft is closed only
 * once every entry is on disk, every proposal has its answer and no
 * snapshot is being written; nothing new is proposed meanwhile (closing is
 * set, the server and the driver are stopped). A disk that hangs longer
 * than DRAIN_MAX_MS gets the old behaviour, with a warning.
 */
static bool raft_drained(struct coord *c)
{
	return c->raft.last_stored >= raft_last_index(&c->raft) &&
	       c->proposals == 0 && coord_snapshot_idle(c) &&
	       coord_backup_idle(c);
}

static void drain_cb(uv_timer_t *t)
{
	struct coord *c = t->data;

	if (!raft_drained(c)) {
		if (settle_mono_ms() < c->drain_until)
			return;
		settle_log(SETTLE_LOG_WARN, "node",
			   "closing raft with writes still in flight");
	}
	uv_close((uv_handle_t *)&c->drain, NULL);
	coord_driver_close(c);
	coord_features_close(c);
	raft_close(&c->raft, raft_closed);
}

void coord_stop(struct coord *c, int exit_code)
{
	if (c->closing)
		return;
	c->closing = true;
	c->exit_code = exit_code;
	coord_notify_stopping(&c->notify);
	/* raft's close may cancel log writes in flight: destroy their AIO
	 * contexts synchronously from here on (aio_defer.c). */
	coord_aio_defer_stop();
	coord_propose_drop(c, SETTLE_EUNAVAIL);
	coord_waiters_flush(c, SETTLE_EUNAVAIL);
	/* Stop calling participants now; the driver itself is freed only
	 * once raft has answered its last proposals (drain_cb). */
	coord_driver_set_active(c, false);
	coord_snapshot_stop(c);
	if (c->server != NULL) {
		rpc_server_close(c->server, NULL, NULL);
		c->server = NULL;
	}
	uv_close((uv_handle_t *)&c->tick, NULL);
	uv_close((uv_handle_t *)&c->watch, NULL);
	uv_close((uv_handle_t *)&c->sigterm, NULL);
	uv_close((uv_handle_t *)&c->sigint, NULL);
	uv_close((uv_handle_t *)&c->sighup, NULL);
	uv_close((uv_handle_t *)&c->sigusr[0], NULL);
	uv_close((uv_handle_t *)&c->sigusr[1], NULL);
	if (!c->raft_started) {
		coord_driver_close(c);
		coord_features_close(c);
		return;
	}
	c->drain_until = settle_mono_ms() + DRAIN_MAX_MS;
	uv_timer_init(c->loop, &c->drain);
	c->drain.data = c;
	uv_timer_start(&c->drain, drain_cb, 0, DRAIN_POLL_MS);
}

void coord_close(struct coord *c)
{
	bool raft_ran = c->raft_io_closed; /* and is closed */

	coord_http_stop(c->http);
	c->http = NULL;
	if (c->raft_io_closed) {
		raft_uv_close(&c->io);
		raft_tcp_close(&c->transport);
		c->raft_io_closed = false;
	}
	/* The loop is done with raft's streams. */
	raft_tcp_forget();
	coord_quota_free(&c->quota);
	rpc_tls_free(c->tls_server);
	rpc_tls_free(c->tls_client);
	c->tls_server = c->tls_client = NULL;
	for (size_t i = 0; i < c->n_tls_retired; i++)
		rpc_tls_free(c->tls_retired[i]);
	free(c->tls_retired);
	c->tls_retired = NULL;
	c->n_tls_retired = 0;
	coord_roles_free(&c->roles);
	coord_backup_close(c);
	if (c->store != NULL) {
		coord_commit_applied(c);
		store_sync(c->store);
		if (raft_ran)
			coord_snapshot_close(c);
		coord_journal_stop(c);
		fsm_close(&c->fsm);
		store_close(c->store);
		c->store = NULL;
	}
	coord_metrics_close(&c->metrics);
}

/* ---- Start --------------------------------------------------------------- */

/* Both TLS contexts from the --tls-* files as they are now: one for the
 * client port, one for this node's own calls (other nodes' client ports,
 * participants), with the same certificate. */
static int tls_load(struct coord *c, struct rpc_tls **server,
		    struct rpc_tls **client, char *why, size_t whylen)
{
	struct rpc_tls_opts o = {
	    .cert = c->cfg.tls_cert,
	    .key = c->cfg.tls_key,
	    .ca = c->cfg.tls_ca,
	    .crl = c->cfg.tls_crl[0] != '\0' ? c->cfg.tls_crl : NULL,
	    .server = true,
	};
	int rv = rpc_tls_new(&o, server, why, whylen);

	if (rv != 0)
		return rv;
	o.server = false;
	rv = rpc_tls_new(&o, client, why, whylen);
	if (rv != 0) {
		rpc_tls_free(*server);
		*server = NULL;
	}
	return rv;
}

/* A peer grant without `id:N` lets its certificate speak raft as any
 * member, including to take a living member's place: said once a load. */
static void warn_unbound_peers(const struct coord_roles *r)
{
	size_t n = coord_roles_unbound_peers(r);

	if (n > 0)
		settle_log(SETTLE_LOG_WARN, "node",
			   "%zu peer grant(s) in --roles bind no raft id: "
			   "such a certificate may speak raft as any node; "
			   "end each with id:N (docs/SECURITY.md)",
			   n);
}

/* TLS contexts from --tls-*, or none without the flags, and a warning. */
static int tls_start(struct coord *c)
{
	char why[400];
	int rv;

	if (c->cfg.tls_cert[0] == '\0') {
		settle_log(SETTLE_LOG_WARN, "node",
			   "--insecure: clients connect to %s and peers to "
			   "%s in plaintext, without certificates: anyone "
			   "who reaches them may do anything "
			   "(docs/SECURITY.md)",
			   c->cfg.listen, c->cfg.raft);
		return 0;
	}
	rv = tls_load(c, &c->tls_server, &c->tls_client, why, sizeof why);
	c->client_opts.tls = c->tls_client;
	if (rv != 0) {
		snprintf(c->errmsg, sizeof c->errmsg, "TLS: %s", why);
		return rv;
	}
	if (c->cfg.roles_file[0] == '\0') {
		settle_log(SETTLE_LOG_WARN, "node",
			   "no --roles: every certificate the CA signed may "
			   "call everything (docs/SECURITY.md)");
		return 0;
	}
	rv = coord_roles_load(&c->roles, c->cfg.roles_file, c->errmsg,
			      sizeof c->errmsg);
	c->roles_on = rv == 0;
	if (rv == 0)
		warn_unbound_peers(&c->roles);
	return rv;
}

/* SIGHUP, --roles: the file again; one that does not load changes
 * nothing. */
static void roles_reload(struct coord *c)
{
	struct coord_roles r;
	char why[400];

	if (c->cfg.roles_file[0] == '\0')
		return;
	if (coord_roles_load(&r, c->cfg.roles_file, why, sizeof why) != 0) {
		settle_log(SETTLE_LOG_ERROR, "node",
			   "SIGHUP: roles not reloaded, the node keeps them: "
			   "%s",
			   why);
		return;
	}
	coord_roles_free(&c->roles);
	c->roles = r;
	settle_log(SETTLE_LOG_INFO, "node",
		   "SIGHUP: roles reloaded from %s (%zu certificates)",
		   c->cfg.roles_file, r.n);
	warn_unbound_peers(&c->roles);
}

/*
 * SIGHUP: read the --tls-* files again (a certificate rotated, a new CA or
 * CRL). New connections, accepted or made, use them; those open keep
 * theirs; the driver reconnects to participants. Files that do not load
 * change nothing: the node goes on with the certificates it has and says
 * why.
 */
/* SIGUSR1: log more (up to debug, with traces); SIGUSR2: less (down to
 * errors only). Said at WARN, so that it shows at any level but error. */
static void on_sigusr(uv_signal_t *s, int signum)
{
	int level = settle_log_level() + (signum == SIGUSR1 ? 1 : -1);

	settle_log_set_level(level);
	settle_log(SETTLE_LOG_WARN, "node", "%s: log level now %s",
		   signum == SIGUSR1 ? "SIGUSR1" : "SIGUSR2",
		   settle_log_level_name(settle_log_level()));
}

static void on_sighup(uv_signal_t *s, int signum)
{
	struct coord *c = s->data;
	struct rpc_tls *server, *client, **retired;
	char why[400];

	(void)signum;
	if (!c->closing)
		roles_reload(c);
	if (c->cfg.tls_cert[0] == '\0' || c->closing) {
		settle_log(SETTLE_LOG_INFO, "node",
			   "SIGHUP: no --tls-* files to reload");
		return;
	}
	if (tls_load(c, &server, &client, why, sizeof why) != 0) {
		settle_log(SETTLE_LOG_ERROR, "node",
			   "SIGHUP: TLS files not reloaded, the node keeps "
			   "its certificates: %s",
			   why);
		return;
	}
	retired =
	    realloc(c->tls_retired, (c->n_tls_retired + 2) * sizeof *retired);
	if (retired == NULL) {
		rpc_tls_free(server);
		rpc_tls_free(client);
		settle_log(SETTLE_LOG_ERROR, "node",
			   "SIGHUP: TLS files not reloaded: out of memory");
		return;
	}
	c->tls_retired = retired;
	c->tls_retired[c->n_tls_retired++] = c->tls_server;
	c->tls_retired[c->n_tls_retired++] = c->tls_client;
	c->tls_server = server;
	c->tls_client = client;
	c->client_opts.tls = client;
	if (c->server != NULL)
		rpc_server_set_tls(c->server, server);
	raft_tcp_set_tls(&c->transport, server, client);
	coord_driver_tls_changed(c);
	settle_log(SETTLE_LOG_INFO, "node",
		   "SIGHUP: TLS certificate %s, key and CA %s reloaded",
		   c->cfg.tls_cert, c->cfg.tls_ca);
}

/* The raft port under TLS: a certificate holding the peer role, or any the
 * CA signed without --roles. */
static bool raft_peer_ok(void *data, const struct rpc_peer_id *id,
			 raft_id raft_id)
{
	struct coord *c = data;

	return !c->roles_on || coord_roles_peer_ok(&c->roles, id, raft_id);
}

static int bootstrap(struct coord *c)
{
	struct raft_configuration conf;
	int rv;

	if (c->cfg.join) {
		/* Empty configuration: the leader's raft_add and its log
		 * (or a snapshot) bring everything, membership included. */
		settle_log(SETTLE_LOG_INFO, "raft",
			   "--join: waiting for the leader to add node %llu",
			   (unsigned long long)c->cfg.id);
		return 0;
	}
	raft_configuration_init(&conf);
	for (unsigned i = 0; i < c->cfg.n_peers; i++) {
		rv = raft_configuration_add(&conf, c->cfg.peers[i].id,
					    c->cfg.peers[i].raft, RAFT_VOTER);
		if (rv != 0) {
			raft_configuration_close(&conf);
			snprintf(c->errmsg, sizeof c->errmsg,
				 "raft configuration: %s", raft_strerror(rv));
			return settle_err_from_raft(rv);
		}
	}
	rv = raft_bootstrap(&c->raft, &conf);
	raft_configuration_close(&conf);
	if (rv == RAFT_CANTBOOTSTRAP)
		return 0; /* state exists already: a restart */
	if (rv != 0) {
		snprintf(c->errmsg, sizeof c->errmsg, "raft bootstrap: %s",
			 raft_errmsg(&c->raft));
		return settle_err_from_raft(rv);
	}
	settle_log(SETTLE_LOG_INFO, "raft", "bootstrapped a %u-node cluster",
		   c->cfg.n_peers);
	return 0;
}

int coord_start(struct coord *c, uv_loop_t *loop)
{
	char path[600];
	/* Twice the budget: room for a restore and pinned pages beside the
	 * data, which budget.c keeps under the budget (storage/store.h). */
	struct store_opts sopts = {.mapsize = 2 * c->cfg.store_budget};
	struct rpc_opts limits = {0};
	int rv;

	c->loop = loop;
	c->started_ms = settle_mono_ms();
	coord_quota_init(&c->quota, c->cfg.max_open_per_client);
	rv = coord_metrics_init(&c->metrics);
	if (rv != 0) {
		snprintf(c->errmsg, sizeof c->errmsg, "metrics: %s",
			 settle_strerror(rv));
		return rv;
	}
	c->metrics.id = c->cfg.id;
	coord_notify_init(&c->notify);
	coord_node_metrics_tick(c); /* alive, starting */
	if (c->cfg.metrics[0] != '\0') {
		rv = coord_http_start(c->cfg.metrics, &c->metrics, &c->http,
				      c->errmsg, sizeof c->errmsg);
		if (rv != 0)
			return rv;
		settle_log(SETTLE_LOG_INFO, "node",
			   "metrics and probes on http://%s (/metrics, "
			   "/healthz, /readyz)",
			   c->cfg.metrics);
	}
	rv = tls_start(c);
	if (rv != 0)
		return rv;
	if (!coord_aio_defer_start())
		settle_log(SETTLE_LOG_WARN, "raft",
			   "raft_uv's io_destroy() runs on the loop thread "
			   "(SETTLE_AIO_DESTROY_INLINE=1, or no thread for "
			   "it): each closed log segment stalls the node");

	rv = make_dir(c->cfg.data_dir, c->errmsg, sizeof c->errmsg);
	if (rv != 0)
		return rv;
	snprintf(path, sizeof path, "%s/db", c->cfg.data_dir);
	rv = make_dir(path, c->errmsg, sizeof c->errmsg);
	if (rv != 0)
		return rv;
	rv = store_open(path, &sopts, &c->store, c->errmsg, sizeof c->errmsg);
	if (rv != 0)
		return rv;
	rv = fsm_init(&c->fsm, c->store);
	if (rv != 0) {
		snprintf(c->errmsg, sizeof c->errmsg, "fsm: %s", c->fsm.errmsg);
		goto err_after_store;
	}
	coord_apply_init(c);
	if (c->cfg.restore_file[0] != '\0') {
		rv = coord_backup_restore(c, c->cfg.restore_file, c->errmsg,
					  sizeof c->errmsg);
		if (rv != 0)
			goto err_after_fsm;
	}

	snprintf(path, sizeof path, "%s/raft", c->cfg.data_dir);
	rv = make_dir(path, c->errmsg, sizeof c->errmsg);
	if (rv != 0)
		goto err_after_fsm;
	if (c->tls_server != NULL) {
		struct raft_tls_opts to = {
		    .server = c->tls_server,
		    .client = c->tls_client,
		    .peer_ok = raft_peer_ok,
		    .peer_data = c,
		    .setup_timeout_ms = c->cfg.frame_timeout_ms,
		};

		rv = raft_tcp_init(&c->transport, loop, &to);
	} else {
		rv = raft_tcp_init(&c->transport, loop, NULL);
	}
	if (rv != 0) {
		snprintf(c->errmsg, sizeof c->errmsg, "raft transport: %s",
			 raft_strerror(rv));
		rv = settle_err_from_raft(rv);
		goto err_after_fsm;
	}
	rv = raft_uv_init(&c->io, loop, path, &c->transport.transport);
	if (rv != 0) {
		snprintf(c->errmsg, sizeof c->errmsg, "raft io: %s",
			 c->io.errmsg);
		rv = settle_err_from_raft(rv);
		goto err_after_transport;
	}
	/* raft_uv writes the log through Linux AIO, one context per open
	 * segment, and closes a full segment on the loop thread, where
	 * io_destroy() waits for the context's last writes and an RCU grace
	 * period: 30-60 ms under load here. Larger segments make that rarer
	 * (every 40 s instead of every 5 s at 4,000 transactions/s). */
	raft_uv_set_segment_size(&c->io, RAFT_SEGMENT_SIZE);
	/* raft stores manifests of checkpoints, compressed already. */
	rv = raft_uv_set_snapshot_compression(&c->io, false);
	if (rv != 0) {
		snprintf(c->errmsg, sizeof c->errmsg, "raft io: %s",
			 raft_strerror(rv));
		rv = settle_err_from_raft(rv);
		goto err_after_io;
	}
	/* The FSM's snapshot hooks, checkpoints, and the raft_io wrappers
	 * that swap a checkpoint in for its manifest (snapshot.c). */
	rv = coord_snapshot_init(c);
	if (rv != 0)
		goto err_after_io;
	/* raft_uv 0.15 implements async_work (the snapshot work runs on
	 * libuv's pool and raft_uv's close waits for it) but still says
	 * version 1, and raft_init refuses asynchronous snapshots below 2.
	 * Keep raft_uv's own: a replacement that raft_uv does not track lets
	 * raft_close() finish while a snapshot is being written, and the
	 * snapshot's callback then runs on a freed raft_io. */
	c->io.version = 2;
	rv = raft_init(&c->raft, &c->io, &c->raft_fsm, c->cfg.id, c->cfg.raft);
	if (rv != 0) {
		snprintf(c->errmsg, sizeof c->errmsg, "raft init: %s",
			 raft_errmsg(&c->raft));
		rv = settle_err_from_raft(rv);
		goto err_after_io;
	}
	c->raft.data = c;
	/* From now on raft_closed() closes it. Unreferenced: it must not
	 * keep the loop running once everything else has stopped. */
	uv_check_init(loop, &c->commit);
	c->commit.data = c;
	uv_check_start(&c->commit, commit_cb);
	uv_unref((uv_handle_t *)&c->commit);
	raft_set_snapshot_threshold(&c->raft,
				    coord_snapshot_first_threshold(c));
	raft_set_snapshot_trailing(&c->raft, c->cfg.snapshot_trailing);
	raft_set_election_timeout(&c->raft, c->cfg.election_timeout_ms);
	raft_set_heartbeat_timeout(&c->raft, c->cfg.heartbeat_ms);
	/* A node cut off and back does not depose a healthy leader. */
	raft_set_pre_vote(&c->raft, true);
	raft_set_install_snapshot_timeout(&c->raft,
					  coord_install_timeout_ms(0));
	rv = bootstrap(c);
	if (rv != 0)
		goto err_after_raft;
	rv = raft_start(&c->raft);
	if (rv != 0) {
		/* raft 0.15 leaves its errmsg empty when io->start fails:
		 * the reason is with the io or, for a raft port that is
		 * taken, with the transport. */
		const char *why = raft_errmsg(&c->raft);

		if (why[0] == '\0')
			why = c->io.errmsg;
		if (why[0] == '\0')
			why = c->transport.transport.errmsg;
		if (why[0] == '\0')
			why = raft_strerror(rv);
		snprintf(c->errmsg, sizeof c->errmsg, "raft start on %s: %s",
			 c->cfg.raft, why);
		rv = settle_err_from_raft(rv);
		goto err_after_raft;
	}
	c->raft_started = true;

	rv = coord_driver_init(c);
	if (rv != 0) {
		snprintf(c->errmsg, sizeof c->errmsg, "driver: %s",
			 settle_strerror(rv));
		goto err_after_raft;
	}
	limits.max_conns = c->cfg.max_conns;
	limits.max_conns_per_addr = c->cfg.max_conns_per_addr;
	limits.max_partial = c->cfg.max_partial_bytes;
	limits.frame_timeout_ms = c->cfg.frame_timeout_ms;
	limits.idle_close_ms = c->cfg.idle_timeout_ms;
	limits.tls = c->tls_server;
	rv = rpc_server_start(loop, c->cfg.listen, &limits, coord_dispatch, c,
			      &c->server, c->errmsg, sizeof c->errmsg);
	if (rv != 0)
		goto err_after_driver;

	uv_prepare_init(loop, &c->watch);
	c->watch.data = c;
	uv_prepare_start(&c->watch, watch_cb);
	uv_timer_init(loop, &c->tick);
	c->tick.data = c;
	uv_timer_start(&c->tick, tick_cb, TICK_MS, TICK_MS);
	uv_signal_init(loop, &c->sigterm);
	c->sigterm.data = c;
	uv_signal_start(&c->sigterm, on_signal, SIGTERM);
	uv_signal_init(loop, &c->sigint);
	c->sigint.data = c;
	uv_signal_start(&c->sigint, on_signal, SIGINT);
	uv_signal_init(loop, &c->sighup);
	c->sighup.data = c;
	uv_signal_start(&c->sighup, on_sighup, SIGHUP);
	for (int i = 0; i < 2; i++) {
		uv_signal_init(loop, &c->sigusr[i]);
		c->sigusr[i].data = c;
		uv_signal_start(&c->sigusr[i], on_sigusr,
				i == 0 ? SIGUSR1 : SIGUSR2);
	}
	settle_log(SETTLE_LOG_INFO, "node",
		   "node %llu: clients on %s, raft on %s, data in %s",
		   (unsigned long long)c->cfg.id, c->cfg.listen, c->cfg.raft,
		   c->cfg.data_dir);
	return 0;

err_after_driver:
	coord_driver_close(c);
	coord_features_close(c);
err_after_raft:
	/* raft_close is asynchronous and also closes io and transport (see
	 * raft_closed): the caller runs the loop until it completes, then
	 * calls coord_close(). */
	c->closing = true;
	c->raft_started = true;
	coord_aio_defer_stop();
	raft_close(&c->raft, raft_closed);
	return rv;
err_after_io:
	raft_uv_close(&c->io);
err_after_transport:
	raft_tcp_close(&c->transport);
err_after_fsm:
	fsm_close(&c->fsm);
err_after_store:
	store_close(c->store);
	c->store = NULL;
	return rv;
}

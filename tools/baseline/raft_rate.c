/*
 * settle-raft-rate — canonical/raft's own commit rate, with nothing of
 * Settle around it: the ceiling that Settle's replicated commands are
 * compared with in scripts/bench --compare.
 *
 *   settle-raft-rate --dir DIR --port BASE [--in-flight N]
 *                    [--duration SECONDS] [--warmup SECONDS] [--size BYTES]
 *
 * Forks three processes, each a raft node with its own libuv loop, raft_uv
 * io in DIR/nodeI (fsync'd as raft_uv always does) and raft_uv_tcp
 * transport on 127.0.0.1:BASE+I-1, bootstrapped as one 3-voter cluster:
 * the same shape as three settled processes on one machine. The FSM only
 * counts entries (its snapshot is that count). The node that wins the
 * election keeps N applies of BYTES-byte entries (default 64 and 256) in
 * flight: each apply callback submits the next one. After WARMUP seconds
 * (default 1) it counts the applies that complete in the next SECONDS
 * (default 5) and prints one line:
 *   entries_per_s R in_flight N
 * Then every node is killed; DIR (created if missing) is left to the
 * caller to remove.
 * Exit status: 0 measured, 1 a node failed, leadership moved during the
 * run or no result within WARMUP + SECONDS + 30 s, 2 usage.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#define NODES	      3
#define MAX_IN_FLIGHT 65536
#define TICK_MS	      10

struct rr_opts {
	const char *dir;
	int port;
	unsigned in_flight;
	double duration;
	double warmup;
	size_t size;
};

/* One node's process. Only the leader's load fields are used. */
struct rr_node {
	const struct rr_opts *o;
	int out; /* write end of the pipe to the parent */
	unsigned id;
	uv_loop_t loop;
	struct raft_uv_transport transport;
	struct raft_io io;
	struct raft_fsm fsm;
	struct raft raft;
	uv_timer_t tick;
	uint64_t fsm_count;
	struct raft_apply *reqs;
	int loading;	      /* 1 once the applies run */
	int done;	      /* 1 once the result is reported */
	uint64_t acked;	      /* applies completed with status 0 */
	uint64_t acked_at_0;  /* at the start of the measured window */
	uint64_t t_load, t_0; /* uv_hrtime() of the load start, window start */
};

static pid_t rr_children[NODES];

/* One line to the parent; a line under PIPE_BUF is written atomically. */
static void rr_report(struct rr_node *n, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	int len;

	va_start(ap, fmt);
	len = vsnprintf(line, sizeof line - 1, fmt, ap);
	va_end(ap);
	if (len < 0)
		return;
	if ((size_t)len > sizeof line - 2)
		len = sizeof line - 2;
	line[len++] = '\n';
	if (write(n->out, line, (size_t)len) < 0) {
		/* The parent is gone: nobody to tell. */
	}
}

static int rr_fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf,
			void **result)
{
	struct rr_node *n = fsm->data;

	(void)buf;
	n->fsm_count++;
	*result = NULL;
	return 0;
}

/* The snapshot is the count: raft needs one to trim its log. */
static int rr_fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[],
			   unsigned *n_bufs)
{
	struct rr_node *n = fsm->data;

	*bufs = raft_malloc(sizeof **bufs);
	if (*bufs == NULL)
		return RAFT_NOMEM;
	(*bufs)[0].len = sizeof n->fsm_count;
	(*bufs)[0].base = raft_malloc(sizeof n->fsm_count);
	if ((*bufs)[0].base == NULL) {
		raft_free(*bufs);
		return RAFT_NOMEM;
	}
	memcpy((*bufs)[0].base, &n->fsm_count, sizeof n->fsm_count);
	*n_bufs = 1;
	return 0;
}

/* Owns buf->base (raft's contract for restore). */
static int rr_fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct rr_node *n = fsm->data;

	if (buf->len == sizeof n->fsm_count)
		memcpy(&n->fsm_count, buf->base, sizeof n->fsm_count);
	raft_free(buf->base);
	return 0;
}

static void rr_applied(struct raft_apply *req, int status, void *result);

static int rr_submit(struct rr_node *n, struct raft_apply *req)
{
	struct raft_buffer buf;
	int rv;

	buf.len = n->o->size;
	buf.base = raft_malloc(buf.len);
	if (buf.base == NULL)
		return RAFT_NOMEM;
	memset(buf.base, 'e', buf.len);
	rv = raft_apply(&n->raft, req, &buf, 1, rr_applied);
	if (rv != 0)
		raft_free(buf.base);
	return rv;
}

static void rr_applied(struct raft_apply *req, int status, void *result)
{
	struct rr_node *n = req->data;
	int rv;

	(void)result;
	if (n->done)
		return;
	if (status != 0) {
		rr_report(n, "error: node %u: apply: %s (leadership moved?)",
			  n->id, raft_strerror(status));
		n->done = 1;
		return;
	}
	n->acked++;
	rv = rr_submit(n, req);
	if (rv != 0) {
		rr_report(n, "error: node %u: raft_apply: %s", n->id,
			  raft_strerror(rv));
		n->done = 1;
	}
}

static void rr_tick(uv_timer_t *t)
{
	struct rr_node *n = t->data;
	uint64_t now = uv_hrtime();
	double since;

	if (n->done)
		return;
	if (!n->loading) {
		if (raft_state(&n->raft) != RAFT_LEADER)
			return;
		n->loading = 1;
		n->t_load = now;
		for (unsigned i = 0; i < n->o->in_flight; i++) {
			int rv;

			n->reqs[i].data = n;
			rv = rr_submit(n, &n->reqs[i]);
			if (rv != 0) {
				rr_report(n, "error: node %u: raft_apply: %s",
					  n->id, raft_strerror(rv));
				n->done = 1;
				return;
			}
		}
		return;
	}
	if (n->t_0 == 0) {
		if ((double)(now - n->t_load) / 1e9 >= n->o->warmup) {
			n->t_0 = now;
			n->acked_at_0 = n->acked;
		}
		return;
	}
	since = (double)(now - n->t_0) / 1e9;
	if (since >= n->o->duration) {
		rr_report(n, "entries_per_s %.0f in_flight %u",
			  (double)(n->acked - n->acked_at_0) / since,
			  n->o->in_flight);
		n->done = 1;
	}
}

/* The life of node ID (1-based) in its own process; never returns. */
static void rr_node_run(const struct rr_opts *o, unsigned id, int out)
{
	static struct rr_node n;
	struct raft_configuration conf;
	char dir[4096], addr[64];
	int rv;

	n.o = o;
	n.id = id;
	n.out = out;
	n.reqs = calloc(o->in_flight, sizeof *n.reqs);
	snprintf(dir, sizeof dir, "%s/node%u", o->dir, id);
	snprintf(addr, sizeof addr, "127.0.0.1:%d", o->port + (int)id - 1);
	if (n.reqs == NULL) {
		rr_report(&n, "error: node %u: out of memory", id);
		_exit(1);
	}
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		rr_report(&n, "error: node %u: mkdir %s: %s", id, dir,
			  strerror(errno));
		_exit(1);
	}
	n.fsm.version = 1;
	n.fsm.data = &n;
	n.fsm.apply = rr_fsm_apply;
	n.fsm.snapshot = rr_fsm_snapshot;
	n.fsm.restore = rr_fsm_restore;
	if (uv_loop_init(&n.loop) != 0 ||
	    raft_uv_tcp_init(&n.transport, &n.loop) != 0) {
		rr_report(&n, "error: node %u: libuv/transport init", id);
		_exit(1);
	}
	rv = raft_uv_init(&n.io, &n.loop, dir, &n.transport);
	if (rv != 0) {
		rr_report(&n, "error: node %u: raft_uv_init: %s", id,
			  n.io.errmsg);
		_exit(1);
	}
	rv = raft_init(&n.raft, &n.io, &n.fsm, id, addr);
	if (rv != 0) {
		rr_report(&n, "error: node %u: raft_init: %s", id,
			  raft_errmsg(&n.raft));
		_exit(1);
	}
	raft_configuration_init(&conf);
	for (unsigned i = 1; i <= NODES; i++) {
		char peer[64];

		snprintf(peer, sizeof peer, "127.0.0.1:%d",
			 o->port + (int)i - 1);
		rv = raft_configuration_add(&conf, i, peer, RAFT_VOTER);
		if (rv != 0) {
			rr_report(&n, "error: node %u: configuration: %s", id,
				  raft_strerror(rv));
			_exit(1);
		}
	}
	rv = raft_bootstrap(&n.raft, &conf);
	raft_configuration_close(&conf);
	if (rv != 0) {
		rr_report(&n, "error: node %u: bootstrap: %s", id,
			  raft_errmsg(&n.raft));
		_exit(1);
	}
	rv = raft_start(&n.raft);
	if (rv != 0) {
		rr_report(&n, "error: node %u: raft_start on %s: %s", id, addr,
			  n.transport.errmsg[0] ? n.transport.errmsg
						: raft_strerror(rv));
		_exit(1);
	}
	uv_timer_init(&n.loop, &n.tick);
	n.tick.data = &n;
	uv_timer_start(&n.tick, rr_tick, TICK_MS, TICK_MS);
	uv_run(&n.loop, UV_RUN_DEFAULT);
	_exit(0);
}

static void rr_kill_children(void)
{
	for (int i = 0; i < NODES; i++)
		if (rr_children[i] > 0)
			kill(rr_children[i], SIGKILL);
	for (int i = 0; i < NODES; i++)
		if (rr_children[i] > 0)
			waitpid(rr_children[i], NULL, 0);
}

static void rr_on_alarm(int sig)
{
	static const char msg[] = "settle-raft-rate: no result in time\n";

	(void)sig;
	for (int i = 0; i < NODES; i++)
		if (rr_children[i] > 0)
			kill(rr_children[i], SIGKILL);
	if (write(2, msg, sizeof msg - 1) < 0) {
		/* Nothing left to do. */
	}
	_exit(1);
}

static void rr_usage(void)
{
	fprintf(stderr, "usage: settle-raft-rate --dir DIR --port BASE "
			"[--in-flight N] [--duration SECONDS]\n"
			"       [--warmup SECONDS] [--size BYTES]\n");
}

static int rr_parse(int argc, char **argv, struct rr_opts *o)
{
	static const struct option opts[] = {
	    {"dir", required_argument, NULL, 'd'},
	    {"port", required_argument, NULL, 'p'},
	    {"in-flight", required_argument, NULL, 'n'},
	    {"duration", required_argument, NULL, 't'},
	    {"warmup", required_argument, NULL, 'w'},
	    {"size", required_argument, NULL, 's'},
	    {NULL, 0, NULL, 0},
	};
	long v;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->dir = optarg;
			break;
		case 'p':
			v = strtol(optarg, NULL, 10);
			if (v < 1 || v > 65535 - NODES)
				return -1;
			o->port = (int)v;
			break;
		case 'n':
			v = strtol(optarg, NULL, 10);
			if (v < 1 || v > MAX_IN_FLIGHT)
				return -1;
			o->in_flight = (unsigned)v;
			break;
		case 't':
			o->duration = strtod(optarg, NULL);
			break;
		case 'w':
			o->warmup = strtod(optarg, NULL);
			break;
		case 's':
			v = strtol(optarg, NULL, 10);
			if (v < 1 || v > (1 << 20))
				return -1;
			o->size = (size_t)v;
			break;
		default:
			return -1;
		}
	}
	if (o->dir == NULL || o->port == 0 || optind != argc ||
	    !(o->duration > 0) || !(o->warmup >= 0) || o->duration > 3600 ||
	    o->warmup > 3600)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	struct rr_opts o = {
	    .in_flight = 64, .duration = 5, .warmup = 1, .size = 256};
	char line[256];
	FILE *in;
	int fds[2], rc = 1;

	if (rr_parse(argc, argv, &o) != 0) {
		rr_usage();
		return 2;
	}
	if (mkdir(o.dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "settle-raft-rate: mkdir %s: %s\n", o.dir,
			strerror(errno));
		return 1;
	}
	if (pipe(fds) != 0) {
		perror("settle-raft-rate: pipe");
		return 1;
	}
	for (unsigned i = 0; i < NODES; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("settle-raft-rate: fork");
			rr_kill_children();
			return 1;
		}
		if (pid == 0) {
			/* A node must not outlive the measurement. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			close(fds[0]);
			rr_node_run(&o, i + 1, fds[1]);
		}
		rr_children[i] = pid;
	}
	close(fds[1]);
	signal(SIGALRM, rr_on_alarm);
	alarm((unsigned)(o.warmup + o.duration) + 30);
	in = fdopen(fds[0], "r");
	while (in != NULL && fgets(line, sizeof line, in) != NULL) {
		if (strncmp(line, "entries_per_s ", 14) == 0) {
			fputs(line, stdout);
			rc = 0;
		} else {
			fprintf(stderr, "settle-raft-rate: %s", line);
		}
		break;
	}
	if (in == NULL || rc != 0)
		fprintf(stderr, "settle-raft-rate: no result\n");
	alarm(0);
	rr_kill_children();
	if (in != NULL)
		fclose(in);
	return rc;
}

/*
 * saga_util.c — see saga_util.h.
 */
#include "saga_util.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tcc_util.h"

settle_client *su_client(const char *endpoints, uint32_t retry_budget_ms)
{
	struct settle_client_opts co = {0};
	settle_client *c;

	co.call_timeout_ms = 5000;
	co.connect_timeout_ms = 500;
	co.retry_budget_ms = retry_budget_ms;
	co.backoff_max_ms = 200;
	cr_assert_eq(settle_client_open(endpoints, &co, &c), 0);
	return c;
}

void su_submit(settle_client *c, const char *gid, int recovery, bool dag,
	       const struct su_step *s, size_t n)
{
	su_submit_timeout(c, gid, recovery, dag, s, n, 60000);
}

void su_submit_timeout(settle_client *c, const char *gid, int recovery,
		       bool dag, const struct su_step *s, size_t n,
		       uint32_t timeout_ms)
{
	struct settle_saga_step steps[8];
	struct settle_saga_opts o = {0};
	char got[SETTLE_GID_BUFSIZE];
	int rv;

	cr_assert_leq(n, 8);
	memset(steps, 0, sizeof(steps));
	for (size_t i = 0; i < n; i++) {
		steps[i].name = s[i].name;
		steps[i].endpoint = s[i].endpoint;
		steps[i].action = s[i].payload;
		steps[i].action_len = strlen(s[i].payload);
		steps[i].compensate = s[i].payload;
		steps[i].compensate_len = strlen(s[i].payload);
		steps[i].depends_on = s[i].n_deps > 0 ? s[i].deps : NULL;
		steps[i].n_depends_on = s[i].n_deps;
		steps[i].max_attempts = s[i].max_attempts;
		steps[i].call_timeout_ms = s[i].call_timeout_ms;
		steps[i].retry_base_ms = s[i].retry_base_ms;
		steps[i].retry_max_ms = s[i].retry_max_ms;
	}
	o.timeout_ms = timeout_ms;
	o.recovery = recovery;
	o.dag = dag;
	rv = settle_submit_saga(c, gid, &o, steps, n, got, sizeof(got));
	cr_assert_eq(rv, 0, "submit %s: %s", gid, settle_client_errmsg(c));
	cr_assert_str_eq(got, gid);
}

void su_show_tx(const Settle__V1__TxInfo *tx)
{
	fprintf(stderr, "tx %s state %s finished_ms %llu reason '%s'\n",
		tx->gid, settle_tx_state_name(tx->state),
		(unsigned long long)tx->finished_ms, tx->reason);
	for (size_t i = 0; i < tx->n_branches; i++) {
		const Settle__V1__BranchInfo *b = tx->branches[i];
		fprintf(stderr,
			"  step %u %s attempts %u completion %u at %llu "
			"error '%s'\n",
			b->branch_id, settle_branch_state_name(b->state),
			b->attempts, b->completion,
			(unsigned long long)b->completed_ms, b->last_error);
	}
	for (size_t i = 0; i < tx->n_history; i++)
		fprintf(stderr, "  #%llu %llu %s step %u: %s\n",
			(unsigned long long)tx->history[i]->seq,
			(unsigned long long)tx->history[i]->time_ms,
			tx->history[i]->kind, tx->history[i]->branch_id,
			tx->history[i]->detail);
}

Settle__V1__TxInfo *su_wait(settle_client *c, const char *gid,
			    bool (*pred)(const Settle__V1__TxInfo *, void *),
			    void *arg, const char *what, int timeout_ms,
			    const struct it_proc *show)
{
	Settle__V1__TxInfo *last = NULL;
	char err[256] = "";
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		Settle__V1__TxInfo *tx = NULL;
		int rv = settle_query(c, gid, true, &tx);

		if (rv == 0) {
			if (pred(tx, arg)) {
				if (last != NULL)
					settle_tx_info_free(last);
				return tx;
			}
			if (last != NULL)
				settle_tx_info_free(last);
			last = tx;
		} else {
			snprintf(err, sizeof(err), "%s",
				 settle_client_errmsg(c));
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
		if ((t.tv_sec - t0.tv_sec) * 1000 +
			(t.tv_nsec - t0.tv_nsec) / 1000000 >
		    timeout_ms)
			break;
		tu_sleep_ms(20);
	}
	if (last != NULL)
		su_show_tx(last);
	if (show != NULL)
		it_show_log(show);
	cr_assert_fail("%s: %s not reached in %d ms (last query error '%s')",
		       gid, what, timeout_ms, err);
	return NULL;
}

static bool final_pred(const Settle__V1__TxInfo *tx, void *arg)
{
	(void)arg;
	return (tx->state == SU_TX(SAGA_SUCCEEDED) ||
		tx->state == SU_TX(SAGA_COMPENSATED)) &&
	       tx->finished_ms != 0;
}

Settle__V1__TxInfo *su_wait_final(settle_client *c, const char *gid, int want,
				  int timeout_ms, const struct it_proc *show)
{
	Settle__V1__TxInfo *tx =
	    su_wait(c, gid, final_pred, NULL, "final state", timeout_ms, show);

	if ((int)tx->state != want) {
		su_show_tx(tx);
		cr_assert_fail("%s ended %s, want %s", gid,
			       settle_tx_state_name(tx->state),
			       settle_tx_state_name(want));
	}
	cr_assert_eq(tx->mode, SETTLE__V1__TX_MODE__SAGA);
	return tx;
}

const Settle__V1__BranchInfo *su_step(const Settle__V1__TxInfo *tx,
				      uint32_t step)
{
	for (size_t i = 0; i < tx->n_branches; i++)
		if (tx->branches[i]->branch_id == step)
			return tx->branches[i];
	su_show_tx(tx);
	cr_assert_fail("%s: no step %u in Query", tx->gid, step);
	return NULL;
}

void su_expect_step(const Settle__V1__TxInfo *tx, uint32_t step, int state)
{
	const Settle__V1__BranchInfo *b = su_step(tx, step);

	if ((int)b->state != state) {
		su_show_tx(tx);
		cr_assert_fail("%s step %u is %s, want %s", tx->gid, step,
			       settle_branch_state_name(b->state),
			       settle_branch_state_name(state));
	}
}

size_t su_events(const Settle__V1__TxInfo *tx, const char *kind,
		 const char *prefix, uint32_t *ids, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < tx->n_history; i++) {
		const Settle__V1__Event *e = tx->history[i];

		if (i > 0 && e->seq <= tx->history[i - 1]->seq) {
			su_show_tx(tx);
			cr_assert_fail("%s: history not in seq order", tx->gid);
		}
		if (strcmp(e->kind, kind) != 0 ||
		    strncmp(e->detail, prefix, strlen(prefix)) != 0)
			continue;
		if (n < max)
			ids[n] = e->branch_id;
		n++;
	}
	return n;
}

void su_expect_reverse_completion(const Settle__V1__TxInfo *tx)
{
	uint32_t ids[64];
	size_t n = su_events(tx, "compensate", "ok", ids, 64);

	cr_assert_leq(n, 64);
	for (size_t i = 1; i < n; i++) {
		if (su_step(tx, ids[i])->completion <
		    su_step(tx, ids[i - 1])->completion)
			continue;
		su_show_tx(tx);
		cr_assert_fail("%s: step %u compensated after step %u, but "
			       "completed after it (or compensated twice)",
			       tx->gid, ids[i], ids[i - 1]);
	}
}

uint64_t su_event_seq(const Settle__V1__TxInfo *tx, const char *kind,
		      uint32_t step, const char *prefix)
{
	for (size_t i = 0; i < tx->n_history; i++) {
		const Settle__V1__Event *e = tx->history[i];

		if (e->branch_id == step && strcmp(e->kind, kind) == 0 &&
		    strncmp(e->detail, prefix, strlen(prefix)) == 0)
			return e->seq;
	}
	return 0;
}

/* ---- Bank logs ----------------------------------------------------------- */

/* Parse "2026-01-02T03:04:05.678Z" at the start of line into unix ms. */
static int64_t line_ms(const char *line)
{
	struct tm tm;
	int ms = 0;
	const char *p;

	memset(&tm, 0, sizeof(tm));
	p = strptime(line, "%Y-%m-%dT%H:%M:%S", &tm);
	if (p == NULL || sscanf(p, ".%3dZ", &ms) != 1)
		return -1;
	return (int64_t)timegm(&tm) * 1000 + ms;
}

/* Visit each "bank: OP GID/STEP attempt N: RESULT" line matching. */
static int bank_scan(const struct it_bank *b, const char *op, const char *gid,
		     uint32_t step, const char *result, int64_t *first_ms)
{
	FILE *f = fopen(b->proc->log, "r");
	char line[1024];
	int n = 0;

	cr_assert_not_null(f, "open %s: %s", b->proc->log, strerror(errno));
	if (first_ms != NULL)
		*first_ms = -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		char o[16], g[128], res[32];
		unsigned st, attempt;
		const char *p = strstr(line, " bank: ");

		if (p == NULL ||
		    sscanf(p + 7, "%15s %127[^/]/%u attempt %u: %31s", o, g,
			   &st, &attempt, res) != 5)
			continue;
		if (strcmp(o, op) != 0 || strcmp(g, gid) != 0 || st != step ||
		    (result != NULL && strcmp(res, result) != 0))
			continue;
		if (n == 0 && first_ms != NULL)
			*first_ms = line_ms(line);
		n++;
	}
	fclose(f);
	return n;
}

int su_bank_count(const struct it_bank *b, const char *op, const char *gid,
		  uint32_t step, const char *result)
{
	return bank_scan(b, op, gid, step, result, NULL);
}

int64_t su_bank_time(const struct it_bank *b, const char *op, const char *gid,
		     uint32_t step)
{
	int64_t ms;

	bank_scan(b, op, gid, step, "ok", &ms);
	return ms;
}

int su_log_count(const char *path, const char *text)
{
	FILE *f = fopen(path, "r");
	char line[2048];
	int n = 0;

	cr_assert_not_null(f, "open %s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL)
		n += strstr(line, text) != NULL;
	fclose(f);
	return n;
}

long long su_balance(const struct it_bank *b, const char *account)
{
	struct it_account a = it_bank_account(b, account);

	cr_assert_eq(a.frozen, 0, "%s has %lld frozen", account, a.frozen);
	cr_assert_eq(a.incoming, 0, "%s has %lld incoming", account,
		     a.incoming);
	return a.balance;
}

void su_bank_restart_without(struct it_bank *b, const char *flag,
			     bool has_value)
{
	struct it_proc *p = b->proc;
	int i, drop = has_value ? 2 : 1;

	it_stop(p);
	for (i = 0; p->argv[i] != NULL; i++)
		if (strcmp(p->argv[i], flag) == 0)
			break;
	cr_assert_not_null(p->argv[i], "%s not on %s's command line", flag,
			   p->name);
	for (int k = 0; k < drop; k++) {
		cr_assert_not_null(p->argv[i + k]);
		free(p->argv[i + k]);
	}
	for (; p->argv[i + drop - 1] != NULL; i++)
		p->argv[i] = p->argv[i + drop];
	it_restart(p);
	it_wait_port(p, b->port, 10000);
}

/* ---- Proxy --------------------------------------------------------------- */

#define PX_PAIRS 16
#define PX_RULES 8
#define PX_REQS	 1024
#define PX_HELD	 64

struct px_buf {
	uint8_t *data;
	size_t len, cap;
};

struct px_pair {
	/* sfd -1: free. cfd -1 with sfd open: a connection of our own that
	 * delivers a request whose caller's connection is gone. */
	int cfd, sfd;
	unsigned gen; /* bumped on each reuse */
	struct px_buf up, down;
};

struct px_rule {
	bool drop_reply; /* else hold */
	int method;
	char gid[128];
	uint32_t step;
	int left;
	int hold_ms;
};

/* A request of interest (a branch method) seen going up. */
struct px_req {
	int pair;
	uint64_t id;
	int method;
	char gid[128];
	uint32_t step;
	bool drop_reply;
	bool forwarded;
	int answer; /* -1 until answered */
};

struct px_held {
	int pair;
	unsigned gen;
	uint64_t release_ms;
	uint8_t *frame;
	size_t len;
	int req; /* index in reqs */
};

struct su_proxy {
	pthread_mutex_t mu;
	pthread_t thread;
	int lfd;
	char endpoint[32];
	struct sockaddr_in target;
	struct px_pair pairs[PX_PAIRS];
	struct px_rule rules[PX_RULES];
	size_t n_rules;
	struct px_req reqs[PX_REQS];
	size_t n_reqs;
	struct px_held held[PX_HELD];
	size_t n_held;
	bool release_all; /* su_proxy_release() */
};

static uint64_t px_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void px_write(int fd, const uint8_t *p, size_t n)
{
	while (n > 0 && fd >= 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return; /* the peer is gone: the read side notices */
		p += w;
		n -= (size_t)w;
	}
}

static void px_close(struct px_pair *pr)
{
	if (pr->cfd >= 0)
		close(pr->cfd);
	if (pr->sfd >= 0)
		close(pr->sfd);
	pr->cfd = pr->sfd = -1;
	pr->up.len = pr->down.len = 0;
}

static int px_read(int fd, struct px_buf *b)
{
	uint8_t tmp[16384];
	ssize_t r = recv(fd, tmp, sizeof(tmp), 0);

	if (r <= 0)
		return -1;
	if (b->len + (size_t)r > b->cap) {
		size_t cap = (b->len + (size_t)r) * 2;
		uint8_t *d = realloc(b->data, cap);
		if (d == NULL)
			return -1;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, tmp, (size_t)r);
	b->len += (size_t)r;
	return 0;
}

/* Length of the first complete frame (prefix included), 0 if none yet. */
static size_t px_frame_len(const struct px_buf *b)
{
	uint32_t n;

	if (b->len < 4)
		return 0;
	n = (uint32_t)b->data[0] << 24 | (uint32_t)b->data[1] << 16 |
	    (uint32_t)b->data[2] << 8 | b->data[3];
	return b->len >= 4 + (size_t)n ? 4 + (size_t)n : 0;
}

static bool px_branch_method(int m)
{
	return m == SETTLE__V1__METHOD__ACTION ||
	       m == SETTLE__V1__METHOD__COMPENSATE ||
	       m == SETTLE__V1__METHOD__CONFIRM ||
	       m == SETTLE__V1__METHOD__CANCEL;
}

/* One frame from the coordinator: note it, then forward or hold it. */
static void px_up(struct su_proxy *p, int pi, const uint8_t *f, size_t len)
{
	Settle__V1__Frame *fr = settle__v1__frame__unpack(NULL, len - 4, f + 4);
	Settle__V1__BranchRequest *br = NULL;
	struct px_req *rq = NULL;
	int hold = 0;

	if (fr != NULL && !fr->response && px_branch_method(fr->method))
		br = settle__v1__branch_request__unpack(NULL, fr->body.len,
							fr->body.data);
	if (br != NULL && p->n_reqs < PX_REQS) {
		rq = &p->reqs[p->n_reqs++];
		rq->pair = pi;
		rq->id = fr->id;
		rq->method = fr->method;
		snprintf(rq->gid, sizeof(rq->gid), "%s", br->gid);
		rq->step = br->branch_id;
		rq->answer = -1;
		for (size_t i = 0; i < p->n_rules; i++) {
			struct px_rule *r = &p->rules[i];
			if (r->left <= 0 || r->method != (int)fr->method ||
			    r->step != br->branch_id ||
			    strcmp(r->gid, br->gid) != 0)
				continue;
			r->left--;
			if (r->drop_reply)
				rq->drop_reply = true;
			else
				hold = r->hold_ms;
		}
	}
	if (hold > 0 && p->n_held < PX_HELD) {
		struct px_held *h = &p->held[p->n_held];
		h->frame = malloc(len);
		if (h->frame != NULL) {
			memcpy(h->frame, f, len);
			h->len = len;
			h->pair = pi;
			h->gen = p->pairs[pi].gen;
			h->release_ms = px_now() + (uint64_t)hold;
			h->req = (int)(rq - p->reqs);
			p->n_held++;
			goto out;
		}
	}
	if (rq != NULL)
		rq->forwarded = true;
	px_write(p->pairs[pi].sfd, f, len);
out:
	if (br != NULL)
		settle__v1__branch_request__free_unpacked(br, NULL);
	if (fr != NULL)
		settle__v1__frame__free_unpacked(fr, NULL);
}

/* One frame from the participant: note the answer, forward or swallow. */
static void px_down(struct su_proxy *p, int pi, const uint8_t *f, size_t len)
{
	Settle__V1__Frame *fr = settle__v1__frame__unpack(NULL, len - 4, f + 4);
	bool drop = false;

	if (fr != NULL && fr->response) {
		for (size_t i = 0; i < p->n_reqs; i++) {
			struct px_req *rq = &p->reqs[i];
			if (rq->pair != pi || rq->id != fr->id ||
			    rq->answer != -1 || !rq->forwarded)
				continue;
			rq->answer =
			    fr->error != NULL ? (int)fr->error->code : 0;
			drop = rq->drop_reply;
			break;
		}
	}
	if (!drop)
		px_write(p->pairs[pi].cfd, f, len);
	if (fr != NULL)
		settle__v1__frame__free_unpacked(fr, NULL);
}

static void px_drain(struct su_proxy *p, int pi, bool up)
{
	struct px_pair *pr = &p->pairs[pi];
	struct px_buf *b = up ? &pr->up : &pr->down;
	size_t n;

	while ((n = px_frame_len(b)) > 0) {
		if (up)
			px_up(p, pi, b->data, n);
		else
			px_down(p, pi, b->data, n);
		memmove(b->data, b->data + n, b->len - n);
		b->len -= n;
	}
}

/* Take a free pair slot for cfd/sfd; -1 if none. */
static int px_slot(struct su_proxy *p, int cfd, int sfd)
{
	for (int i = 0; i < PX_PAIRS; i++) {
		struct px_pair *pr = &p->pairs[i];
		if (pr->sfd < 0) {
			pr->cfd = cfd;
			pr->sfd = sfd;
			pr->gen++;
			return i;
		}
	}
	return -1;
}

/* A new connection to the participant, or -1. */
static int px_connect(struct su_proxy *p)
{
	int sfd = socket(AF_INET, SOCK_STREAM, 0), one = 1;

	if (sfd < 0)
		return -1;
	if (connect(sfd, (struct sockaddr *)&p->target, sizeof(p->target)) !=
	    0) {
		close(sfd);
		return -1;
	}
	setsockopt(sfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return sfd;
}

static void px_accept(struct su_proxy *p)
{
	int cfd = accept(p->lfd, NULL, NULL);
	int sfd, one = 1;

	if (cfd < 0)
		return;
	sfd = px_connect(p);
	if (sfd < 0) {
		/* The participant is down: so is the proxied endpoint. */
		close(cfd);
		return;
	}
	setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (px_slot(p, cfd, sfd) < 0) {
		close(cfd);
		close(sfd);
	}
}

static void px_release(struct su_proxy *p, uint64_t now)
{
	for (size_t i = 0; i < p->n_held;) {
		struct px_held *h = &p->held[i];
		if (h->release_ms > now && !p->release_all) {
			i++;
			continue;
		}
		int pi = h->pair;
		if (p->pairs[pi].sfd < 0 || p->pairs[pi].gen != h->gen) {
			/* The caller hung up meanwhile: the network still
			 * delivers the request, on a connection of its own
			 * whose answer nobody reads but us. */
			int sfd = px_connect(p);
			pi = sfd < 0 ? -1 : px_slot(p, -1, sfd);
			if (pi < 0 && sfd >= 0)
				close(sfd);
		}
		if (pi >= 0) {
			p->reqs[h->req].pair = pi;
			p->reqs[h->req].forwarded = true;
			px_write(p->pairs[pi].sfd, h->frame, h->len);
		}
		free(h->frame);
		p->held[i] = p->held[--p->n_held];
	}
	p->release_all = false;
}

static void *px_main(void *arg)
{
	struct su_proxy *p = arg;

	for (;;) {
		struct pollfd fds[1 + 2 * PX_PAIRS];
		int who[1 + 2 * PX_PAIRS];
		int nfds = 0, timeout = 50;
		uint64_t now = px_now();

		pthread_mutex_lock(&p->mu);
		fds[nfds].fd = p->lfd;
		fds[nfds].events = POLLIN;
		who[nfds++] = -1;
		for (int i = 0; i < PX_PAIRS; i++) {
			if (p->pairs[i].sfd < 0)
				continue;
			if (p->pairs[i].cfd >= 0) {
				fds[nfds].fd = p->pairs[i].cfd;
				fds[nfds].events = POLLIN;
				who[nfds++] = 2 * i;
			}
			fds[nfds].fd = p->pairs[i].sfd;
			fds[nfds].events = POLLIN;
			who[nfds++] = 2 * i + 1;
		}
		if (p->release_all)
			timeout = 0;
		for (size_t i = 0; i < p->n_held; i++) {
			int left = p->held[i].release_ms > now
				       ? (int)(p->held[i].release_ms - now)
				       : 0;
			if (left < timeout)
				timeout = left;
		}
		pthread_mutex_unlock(&p->mu);
		if (poll(fds, (nfds_t)nfds, timeout) < 0 && errno != EINTR)
			return NULL;
		pthread_mutex_lock(&p->mu);
		for (int k = 0; k < nfds; k++) {
			int pi = who[k] / 2;
			bool up = who[k] % 2 == 0;

			if (fds[k].revents == 0)
				continue;
			if (who[k] < 0) {
				px_accept(p);
				continue;
			}
			if (p->pairs[pi].sfd < 0)
				continue;
			if (px_read(fds[k].fd, up ? &p->pairs[pi].up
						  : &p->pairs[pi].down) != 0) {
				px_close(&p->pairs[pi]);
				continue;
			}
			px_drain(p, pi, up);
		}
		px_release(p, px_now());
		pthread_mutex_unlock(&p->mu);
	}
	return NULL;
}

struct su_proxy *su_proxy_start(const char *target)
{
	struct su_proxy *p = calloc(1, sizeof(*p));
	struct sockaddr_in a;
	char host[64];
	int port, one = 1;

	cr_assert_not_null(p);
	pthread_mutex_init(&p->mu, NULL);
	for (int i = 0; i < PX_PAIRS; i++)
		p->pairs[i].cfd = p->pairs[i].sfd = -1;
	cr_assert_eq(sscanf(target, "%63[^:]:%d", host, &port), 2,
		     "proxy target %s", target);
	p->target.sin_family = AF_INET;
	p->target.sin_port = htons((uint16_t)port);
	cr_assert_eq(inet_pton(AF_INET, host, &p->target.sin_addr), 1);

	port = it_free_port_pair();
	p->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(p->lfd, 0);
	setsockopt(p->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(p->lfd, (struct sockaddr *)&a, sizeof(a)), 0,
		     "proxy bind %d: %s", port, strerror(errno));
	cr_assert_eq(listen(p->lfd, 16), 0);
	snprintf(p->endpoint, sizeof(p->endpoint), "127.0.0.1:%d", port);
	cr_assert_eq(pthread_create(&p->thread, NULL, px_main, p), 0);
	return p;
}

const char *su_proxy_endpoint(const struct su_proxy *p)
{
	return p->endpoint;
}

static void px_rule(struct su_proxy *p, bool drop, int method, const char *gid,
		    uint32_t step, int count, int hold_ms)
{
	struct px_rule *r;

	pthread_mutex_lock(&p->mu);
	cr_assert_lt(p->n_rules, PX_RULES);
	r = &p->rules[p->n_rules++];
	r->drop_reply = drop;
	r->method = method;
	snprintf(r->gid, sizeof(r->gid), "%s", gid);
	r->step = step;
	r->left = count;
	r->hold_ms = hold_ms;
	pthread_mutex_unlock(&p->mu);
}

void su_proxy_hold(struct su_proxy *p, int method, const char *gid,
		   uint32_t step, int count, int hold_ms)
{
	px_rule(p, false, method, gid, step, count, hold_ms);
}

void su_proxy_drop_reply(struct su_proxy *p, int method, const char *gid,
			 uint32_t step, int count)
{
	px_rule(p, true, method, gid, step, count, 0);
}

int su_proxy_forwarded(struct su_proxy *p, int method, const char *gid,
		       uint32_t step)
{
	int n = 0;

	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->n_reqs; i++) {
		const struct px_req *rq = &p->reqs[i];
		n += rq->forwarded && rq->method == method &&
		     rq->step == step && strcmp(rq->gid, gid) == 0;
	}
	pthread_mutex_unlock(&p->mu);
	return n;
}

int su_proxy_answer(struct su_proxy *p, int method, const char *gid,
		    uint32_t step, int n)
{
	int code = -1;

	pthread_mutex_lock(&p->mu);
	for (size_t i = 0; i < p->n_reqs; i++) {
		const struct px_req *rq = &p->reqs[i];
		if (rq->method != method || rq->step != step ||
		    strcmp(rq->gid, gid) != 0)
			continue;
		if (n-- == 0) {
			code = rq->answer;
			break;
		}
	}
	pthread_mutex_unlock(&p->mu);
	return code;
}

int su_proxy_held(struct su_proxy *p)
{
	int n;

	pthread_mutex_lock(&p->mu);
	n = (int)p->n_held;
	pthread_mutex_unlock(&p->mu);
	return n;
}

void su_proxy_release(struct su_proxy *p)
{
	pthread_mutex_lock(&p->mu);
	p->release_all = true;
	pthread_mutex_unlock(&p->mu);
}

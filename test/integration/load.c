/*
 * load.c — see load.h.
 */
#include "load.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define LOAD_MAX_THREADS 64
#define RESOURCE	 "accounts"

struct load {
	struct load_opts o;
	char *strs[6]; /* owned copies behind o's strings */
	pthread_t threads[LOAD_MAX_THREADS];
	unsigned started;
	struct load_tx *txs;
	atomic_size_t next; /* next free slot */
	atomic_bool stop;
	atomic_uint thread_no;
	uint64_t end_ms; /* 0: no time bound */
	atomic_size_t commit_acked, commit_failed, rolled_back, begin_failed;
};

uint64_t load_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static uint32_t rand_u32(void)
{
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (uint32_t)load_mono_ms() * 2654435761u;
	return r;
}

static void note_err(struct load_tx *t, settle_client *c, int rv)
{
	t->err = rv;
	snprintf(t->errmsg, sizeof(t->errmsg), "%s", settle_client_errmsg(c));
}

/* TRY on the participant, as the initiator of a TCC transaction does. */
static int try_branch(settle_client *c, const char *endpoint, const char *gid,
		      uint32_t branch_id, const char *payload)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;

	req.gid = (char *)gid;
	req.branch_id = branch_id;
	req.resource = RESOURCE;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = strlen(payload);
	req.attempt = 1;
	return settle_client_call_at(
	    c, endpoint, SETTLE__V1__METHOD__TRY, &req.base,
	    &settle__v1__branch_response__descriptor, NULL);
}

/* One transaction from Begin to the Commit answer; the record says how far
 * it got. On any failure before Commit it rolls back (best effort: the
 * deadline rolls it back anyway if that fails too). */
static void run_tx(struct load *l, settle_client *c, struct load_tx *t,
		   bool impatient)
{
	const struct load_opts *o = &l->o;
	const char *from_ep = t->a_to_b ? o->bank_a : o->bank_b;
	const char *to_ep = t->a_to_b ? o->bank_b : o->bank_a;
	const char *from_acc = t->a_to_b ? o->account_a : o->account_b;
	const char *to_acc = t->a_to_b ? o->account_b : o->account_a;
	char pf[128], pt[128];
	uint32_t bf = 0, bt = 0;
	bool finished = false;
	int rv, state = 0;

	snprintf(pf, sizeof(pf), "account=%s;amount=%d", from_acc, -t->amount);
	snprintf(pt, sizeof(pt), "account=%s;amount=%d", to_acc, t->amount);
	t->stage = LOAD_BEGIN;
	rv = settle_begin(c, t->gid, o->tx_timeout_ms, NULL, 0);
	if (rv != 0) {
		note_err(t, c, rv);
		atomic_fetch_add(&l->begin_failed, 1);
		/* It may exist all the same (lost answer): its deadline
		 * rolls it back, with no branch to cancel. */
		return;
	}
	t->stage = LOAD_BEGUN;
	rv = settle_register_branch(c, t->gid, from_ep, RESOURCE, pf,
				    strlen(pf), &bf);
	if (rv == 0)
		rv = settle_register_branch(c, t->gid, to_ep, RESOURCE, pt,
					    strlen(pt), &bt);
	if (rv != 0)
		goto rollback;
	t->stage = LOAD_REGISTERED;
	rv = try_branch(c, from_ep, t->gid, bf, pf);
	if (rv == 0)
		rv = try_branch(c, to_ep, t->gid, bt, pt);
	if (rv != 0)
		goto rollback;
	t->stage = LOAD_COMMIT_SENT;
	__atomic_store_n(&t->commit_sent_ms, load_mono_ms(), __ATOMIC_RELEASE);
	rv = settle_commit(c, t->gid, impatient ? 0 : o->commit_wait_ms, &state,
			   &finished);
	if (rv != 0) {
		note_err(t, c, rv);
		atomic_fetch_add(&l->commit_failed, 1);
		return;
	}
	t->commit_acked = true;
	t->acked_state = state;
	t->acked_finished = finished;
	__atomic_store_n(&t->commit_ack_ms, load_mono_ms(), __ATOMIC_RELEASE);
	atomic_fetch_add(&l->commit_acked, 1);
	return;

rollback:
	note_err(t, c, rv);
	t->stage = LOAD_ROLLBACK_SENT;
	atomic_fetch_add(&l->rolled_back, 1);
	(void)settle_rollback(c, t->gid, "load: step failed", 0, NULL, NULL);
}

static void *thread_main(void *arg)
{
	struct load *l = arg;
	struct settle_client_opts co = {0};
	settle_client *c = NULL;
	unsigned me = atomic_fetch_add(&l->thread_no, 1);

	co.call_timeout_ms = 3000;
	co.connect_timeout_ms = 300;
	co.retry_budget_ms = l->o.retry_budget_ms;
	co.backoff_max_ms = 200;
	if (me < l->o.impatient) {
		co.call_timeout_ms = 1000;
		co.retry_budget_ms = 500;
	}
	if (settle_client_open(l->o.cluster, &co, &c) != 0)
		return NULL;
	while (!atomic_load(&l->stop)) {
		size_t i;
		struct load_tx *t;

		if (l->end_ms != 0 && load_mono_ms() >= l->end_ms)
			break;
		i = atomic_fetch_add(&l->next, 1);
		if (i >= l->o.max_tx) {
			/* Keep next at the bound for load_txs(). */
			atomic_store(&l->next, l->o.max_tx);
			break;
		}
		t = &l->txs[i];
		snprintf(t->gid, sizeof(t->gid), "%s-%zu", l->o.prefix, i);
		t->amount = 1 + (int)(rand_u32() % (uint32_t)l->o.max_amount);
		t->a_to_b = rand_u32() & 1;
		t->start_ms = load_mono_ms();
		run_tx(l, c, t, me < l->o.impatient);
		t->end_ms = load_mono_ms();
		if (l->o.pause_ms)
			sleep_ms(l->o.pause_ms);
	}
	settle_client_close(c);
	return NULL;
}

static char *dup_or_null(const char *s, int *bad)
{
	char *d;

	if (s == NULL || *s == '\0') {
		*bad = 1;
		return NULL;
	}
	d = strdup(s);
	if (d == NULL)
		*bad = 2;
	return d;
}

int load_start(const struct load_opts *o, load **out)
{
	struct load *l;
	int bad = 0;
	unsigned i;

	if (o == NULL || out == NULL || o->threads == 0 ||
	    o->threads > LOAD_MAX_THREADS || o->max_tx == 0 ||
	    o->max_amount <= 0)
		return SETTLE_EINVAL;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		return SETTLE_ENOMEM;
	l->o = *o;
	l->o.cluster = l->strs[0] = dup_or_null(o->cluster, &bad);
	l->o.bank_a = l->strs[1] = dup_or_null(o->bank_a, &bad);
	l->o.bank_b = l->strs[2] = dup_or_null(o->bank_b, &bad);
	l->o.account_a = l->strs[3] = dup_or_null(o->account_a, &bad);
	l->o.account_b = l->strs[4] = dup_or_null(o->account_b, &bad);
	l->o.prefix = l->strs[5] = dup_or_null(o->prefix, &bad);
	if (bad != 0)
		goto err_after_alloc;
	if (strlen(o->prefix) > 40) {
		bad = 1;
		goto err_after_alloc;
	}
	l->txs = calloc(o->max_tx, sizeof(*l->txs));
	if (l->txs == NULL) {
		bad = 2;
		goto err_after_alloc;
	}
	if (o->duration_ms)
		l->end_ms = load_mono_ms() + o->duration_ms;
	for (i = 0; i < o->threads; i++) {
		if (pthread_create(&l->threads[i], NULL, thread_main, l) != 0)
			break;
		l->started++;
	}
	if (l->started < o->threads) {
		load_stop(l);
		load_join(l);
		load_free(l);
		return SETTLE_EIO;
	}
	*out = l;
	return 0;

err_after_alloc:
	load_free(l);
	return bad == 2 ? SETTLE_ENOMEM : SETTLE_EINVAL;
}

void load_stop(load *l)
{
	atomic_store(&l->stop, true);
}

void load_join(load *l)
{
	unsigned i;

	for (i = 0; i < l->started; i++)
		pthread_join(l->threads[i], NULL);
	l->started = 0;
}

struct load_stats load_stats(load *l)
{
	struct load_stats s;
	size_t n = atomic_load(&l->next);

	s.attempted = n > l->o.max_tx ? l->o.max_tx : n;
	s.commit_acked = atomic_load(&l->commit_acked);
	s.commit_failed = atomic_load(&l->commit_failed);
	s.rolled_back = atomic_load(&l->rolled_back);
	s.begin_failed = atomic_load(&l->begin_failed);
	return s;
}

uint64_t load_first_ack_after(load *l, uint64_t since_ms)
{
	size_t i, n = load_stats(l).attempted;
	uint64_t best = 0;

	/* Slots are filled while we read: only the commit times are
	 * shared, each written once with release order. */
	for (i = 0; i < n; i++) {
		uint64_t t =
		    __atomic_load_n(&l->txs[i].commit_ack_ms, __ATOMIC_ACQUIRE);
		if (t >= since_ms && t != 0 && (best == 0 || t < best))
			best = t;
	}
	return best;
}

const struct load_tx *load_txs(load *l, size_t *n)
{
	*n = load_stats(l).attempted;
	return l->txs;
}

void load_free(load *l)
{
	size_t i;

	if (l == NULL)
		return;
	for (i = 0; i < sizeof(l->strs) / sizeof(l->strs[0]); i++)
		free(l->strs[i]);
	free(l->txs);
	free(l);
}

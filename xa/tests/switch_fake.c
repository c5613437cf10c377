/*
 * switch_fake.c — the in-memory coordinator of switch_fake.h.
 */
#include "switch_fake.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "proto/error.h"
#include "proto/rpc.h"
#include "xa/xid.h"

#define S(x) SETTLE__V1__TX_STATE__##x

struct sf_tx *sf_find(struct sf *f, const char *gid)
{
	for (int i = 0; i < f->ntx; i++)
		if (strcmp(f->tx[i].gid, gid) == 0)
			return &f->tx[i];
	return NULL;
}

static struct sf_tx *add_locked(struct sf *f, const uint8_t *xid, size_t len,
				int state)
{
	struct sf_tx *t;
	struct xa_xid x;

	cr_assert(f->ntx < SF_MAX_TX, "fake: too many transactions");
	cr_assert_eq(xa_xid_decode(xid, len, &x), 0);
	t = &f->tx[f->ntx++];
	memset(t, 0, sizeof(*t));
	cr_assert_eq(xa_xid_gid(&x, t->gid), 0);
	memcpy(t->xid, xid, len);
	t->xid_len = len;
	t->state = state;
	return t;
}

static bool final(int st)
{
	return st == S(COMMITTED) || st == S(ROLLED_BACK);
}

/* One request: *err and *body (NULL for an empty one), as the leader. */
/* The history events the switch reads: "prepare" and "commit" (the
 * decision), as the real coordinator records them. */
static void query_history(Settle__V1__TxInfo *tx, const struct sf_tx *t)
{
	const char *kinds[2];
	size_t n = 0;

	if (t->prepared)
		kinds[n++] = "prepare";
	if (t->decided)
		kinds[n++] = "commit";
	tx->history = calloc(2, sizeof(*tx->history));
	for (size_t i = 0; i < n; i++) {
		Settle__V1__Event *e = malloc(sizeof(*e));

		settle__v1__event__init(e);
		e->seq = i + 1;
		e->kind = strdup(kinds[i]);
		e->detail = strdup("");
		tx->history[tx->n_history++] = e;
	}
}

static void handle(struct sf *f, const Settle__V1__Frame *fr, int *err,
		   const char **msg, ProtobufCMessage **body)
{
	const ProtobufCBinaryData *b = &fr->body;
	struct sf_tx *t;

	*err = 0;
	*msg = NULL;
	*body = NULL;
	switch (fr->method) {
	case SETTLE__V1__METHOD__BEGIN: {
		Settle__V1__BeginRequest *r =
		    settle__v1__begin_request__unpack(NULL, b->len, b->data);
		Settle__V1__BeginResponse *o = malloc(sizeof(*o));
		struct xa_xid x;
		char gid[64];

		cr_assert_not_null(r);
		settle__v1__begin_response__init(o);
		cr_assert_eq(r->mode, SETTLE__V1__TX_MODE__XA,
			     "the switch begins mode XA");
		cr_assert_eq(r->gid[0], '\0', "no gid with an xid");
		if (xa_xid_decode(r->xid.data, r->xid.len, &x) != 0) {
			*err = SETTLE_EINVAL;
			goto begin_out;
		}
		xa_xid_gid(&x, gid);
		t = sf_find(f, gid);
		if (t != NULL && !r->join)
			*err = SETTLE_EEXISTS;
		else if (t == NULL && r->join)
			*err = SETTLE_ENOTFOUND;
		else if (t != NULL && t->state != S(ACTIVE))
			*err = SETTLE_ESTATE;
		else if (t == NULL)
			t = add_locked(f, r->xid.data, r->xid.len, S(ACTIVE));
		else
			o->joined = true;
		if (*err == 0)
			o->gid = strdup(t->gid);
	begin_out:
		settle__v1__begin_request__free_unpacked(r, NULL);
		if (*err != 0)
			free(o);
		else
			*body = &o->base;
		return;
	}
	case SETTLE__V1__METHOD__REGISTER_BRANCH: {
		Settle__V1__RegisterBranchRequest *r =
		    settle__v1__register_branch_request__unpack(NULL, b->len,
								b->data);
		Settle__V1__RegisterBranchResponse *o = malloc(sizeof(*o));

		settle__v1__register_branch_response__init(o);
		t = sf_find(f, r->gid);
		if (t == NULL)
			*err = SETTLE_ENOTFOUND;
		else if (t->state != S(ACTIVE))
			*err = SETTLE_ESTATE;
		else
			o->branch_id = (uint32_t)++t->branches;
		settle__v1__register_branch_request__free_unpacked(r, NULL);
		*body = &o->base;
		return;
	}
	case SETTLE__V1__METHOD__XA_PREPARE: {
		Settle__V1__XaPrepareRequest *r =
		    settle__v1__xa_prepare_request__unpack(NULL, b->len,
							   b->data);
		Settle__V1__XaPrepareResponse *o = malloc(sizeof(*o));

		settle__v1__xa_prepare_response__init(o);
		t = sf_find(f, r->gid);
		if (t == NULL) {
			*err = SETTLE_ENOTFOUND;
		} else if (t->state == S(ACTIVE)) {
			/* No branch: nothing for phase two. */
			t->state = t->branches ? S(XA_PREPARED) : S(COMMITTED);
			o->read_only = t->branches == 0;
			t->prepared = true;
		} else if (t->state != S(XA_PREPARED) &&
			   t->state != S(ROLLING_BACK) &&
			   t->state != S(ROLLED_BACK)) {
			*err = SETTLE_ESTATE;
		}
		if (t != NULL)
			o->state = t->state;
		settle__v1__xa_prepare_request__free_unpacked(r, NULL);
		*body = &o->base;
		return;
	}
	case SETTLE__V1__METHOD__COMMIT:
	case SETTLE__V1__METHOD__ROLLBACK: {
		bool commit = fr->method == SETTLE__V1__METHOD__COMMIT;
		Settle__V1__DecisionResponse *o = malloc(sizeof(*o));
		char gid[64] = "";
		bool one_phase = false;

		settle__v1__decision_response__init(o);
		if (commit) {
			Settle__V1__CommitRequest *r =
			    settle__v1__commit_request__unpack(NULL, b->len,
							       b->data);
			snprintf(gid, sizeof(gid), "%s", r->gid);
			one_phase = r->one_phase;
			settle__v1__commit_request__free_unpacked(r, NULL);
		} else {
			Settle__V1__RollbackRequest *r =
			    settle__v1__rollback_request__unpack(NULL, b->len,
								 b->data);
			snprintf(gid, sizeof(gid), "%s", r->gid);
			settle__v1__rollback_request__free_unpacked(r, NULL);
		}
		t = sf_find(f, gid);
		if (t == NULL) {
			*err = SETTLE_ENOTFOUND;
		} else if (commit) {
			if (t->state == S(XA_PREPARED) ||
			    (t->state == S(ACTIVE) && one_phase)) {
				t->state = S(COMMITTED);
				t->decided = true;
			} else if (t->state == S(ACTIVE))
				*err = SETTLE_ESTATE, *msg = "prepare first";
			else if (t->state != S(COMMITTED) &&
				 t->state != S(COMMITTING))
				*err = SETTLE_ESTATE;
		} else {
			if (t->state == S(XA_PREPARED) || t->state == S(ACTIVE))
				t->state = S(ROLLED_BACK);
			else if (t->state != S(ROLLED_BACK) &&
				 t->state != S(ROLLING_BACK))
				*err = SETTLE_ESTATE;
		}
		if (t != NULL) {
			o->state = t->state;
			o->finished = final(t->state);
			o->heuristic = t->heuristic;
		}
		*body = &o->base;
		return;
	}
	case SETTLE__V1__METHOD__XA_HEURISTIC: {
		/* An operator's heuristic decision; phase two is over at
		 * once here (sf_set() shows one still running). */
		Settle__V1__XaHeuristicRequest *r =
		    settle__v1__xa_heuristic_request__unpack(NULL, b->len,
							     b->data);
		Settle__V1__XaHeuristicResponse *o = malloc(sizeof(*o));
		bool commit =
		    r->decision == SETTLE__V1__DECISION__DECIDE_COMMIT;
		int h = commit ? SETTLE__V1__HEURISTIC__HEUR_COMMIT
			       : SETTLE__V1__HEURISTIC__HEUR_ROLLBACK;

		settle__v1__xa_heuristic_response__init(o);
		t = sf_find(f, r->gid);
		if (t == NULL) {
			*err = SETTLE_ENOTFOUND;
		} else if (r->reason == NULL || r->reason[0] == '\0') {
			*err = SETTLE_EINVAL;
		} else if (t->state == S(XA_PREPARED)) {
			t->state = commit ? S(COMMITTED) : S(ROLLED_BACK);
			t->heuristic = h;
		} else if (t->heuristic != h ||
			   t->state !=
			       (commit ? S(COMMITTED) : S(ROLLED_BACK))) {
			*err = SETTLE_ESTATE;
		}
		if (t != NULL) {
			o->state = t->state;
			o->heuristic = t->heuristic;
		}
		settle__v1__xa_heuristic_request__free_unpacked(r, NULL);
		*body = &o->base;
		return;
	}
	case SETTLE__V1__METHOD__XA_RECOVER: {
		Settle__V1__XaRecoverRequest *r =
		    settle__v1__xa_recover_request__unpack(NULL, b->len,
							   b->data);
		Settle__V1__XaRecoverResponse *o = malloc(sizeof(*o));
		uint32_t limit = r->limit ? r->limit : 1000;
		const char *last = r->after_gid;

		settle__v1__xa_recover_response__init(o);
		o->txs = calloc(SF_MAX_TX, sizeof(*o->txs));
		/* In gid order: pick the smallest gid after last, again. */
		for (;;) {
			struct sf_tx *best = NULL;

			for (int i = 0; i < f->ntx; i++) {
				struct sf_tx *c = &f->tx[i];

				if (c->state != S(XA_PREPARED) &&
				    !(final(c->state) && c->heuristic))
					continue;
				if (strcmp(c->gid, last) <= 0)
					continue;
				if (best == NULL ||
				    strcmp(c->gid, best->gid) < 0)
					best = c;
			}
			if (best == NULL)
				break;
			if (o->n_txs == limit) {
				o->more = true;
				break;
			}
			Settle__V1__XaRecovered *e = malloc(sizeof(*e));
			settle__v1__xa_recovered__init(e);
			e->gid = strdup(best->gid);
			e->xid.data = malloc(best->xid_len);
			memcpy(e->xid.data, best->xid, best->xid_len);
			e->xid.len = best->xid_len;
			e->state = best->state;
			e->heuristic = best->heuristic;
			o->txs[o->n_txs++] = e;
			last = best->gid;
		}
		settle__v1__xa_recover_request__free_unpacked(r, NULL);
		*body = &o->base;
		return;
	}
	case SETTLE__V1__METHOD__XA_FORGET: {
		Settle__V1__XaForgetRequest *r =
		    settle__v1__xa_forget_request__unpack(NULL, b->len,
							  b->data);

		t = sf_find(f, r->gid);
		if (t == NULL)
			*err = SETTLE_ENOTFOUND;
		else if (!final(t->state) || t->heuristic == 0)
			*err = SETTLE_ESTATE;
		else
			t->heuristic = 0;
		settle__v1__xa_forget_request__free_unpacked(r, NULL);
		return;
	}
	case SETTLE__V1__METHOD__QUERY: {
		Settle__V1__QueryRequest *r =
		    settle__v1__query_request__unpack(NULL, b->len, b->data);
		Settle__V1__QueryResponse *o = malloc(sizeof(*o));

		settle__v1__query_response__init(o);
		t = sf_find(f, r->gid);
		if (t == NULL) {
			*err = SETTLE_ENOTFOUND;
		} else {
			o->tx = malloc(sizeof(*o->tx));
			settle__v1__tx_info__init(o->tx);
			o->tx->gid = strdup(t->gid);
			o->tx->mode = SETTLE__V1__TX_MODE__XA;
			o->tx->state = t->state;
			o->tx->heuristic = t->heuristic;
			if (r->history)
				query_history(o->tx, t);
		}
		settle__v1__query_request__free_unpacked(r, NULL);
		*body = &o->base;
		return;
	}
	default:
		*err = SETTLE_ENOMETHOD;
		return;
	}
}

/* Bodies are built with malloc/strdup, so the default allocator frees
 * them. */
static void free_body(ProtobufCMessage *m)
{
	if (m != NULL)
		protobuf_c_message_free_unpacked(m, NULL);
}

struct conn_arg {
	struct sf *f;
	int fd;
};

static void *serve_conn(void *arg)
{
	struct conn_arg *ca = arg;
	struct sf *f = ca->f;
	int fd = ca->fd;
	struct rpc_decoder dec;
	uint8_t buf[4096];

	free(ca);
	rpc_decoder_init(&dec, 0);
	while (!f->stop) {
		Settle__V1__Frame *fr;
		int rv = rpc_decoder_next(&dec, &fr);

		if (rv < 0)
			break;
		if (rv == 1) {
			struct pollfd p = {.fd = fd, .events = POLLIN};

			if (poll(&p, 1, 50) <= 0)
				continue;
			ssize_t n = read(fd, buf, sizeof(buf));
			if (n <= 0)
				break;
			rpc_decoder_feed(&dec, buf, (size_t)n);
			continue;
		}
		int err = 0;
		const char *msg = NULL;
		ProtobufCMessage *body = NULL;
		bool drop;

		pthread_mutex_lock(&f->lock);
		if (fr->method < 64)
			f->calls[fr->method]++;
		drop = f->down;
		if (!drop && f->fail_method == (int)fr->method) {
			f->fail_method = -1;
			err = f->fail_err;
			msg = "injected";
		} else if (!drop) {
			handle(f, fr, &err, &msg, &body);
		}
		pthread_mutex_unlock(&f->lock);
		if (drop) {
			settle__v1__frame__free_unpacked(fr, NULL);
			break;
		}
		uint8_t *out;
		size_t len;

		if (err != 0) {
			free_body(body);
			body = NULL;
		}
		rv = rpc_frame_encode(fr->id, (int)fr->method, 1, body, err,
				      msg, NULL, 0, &out, &len);
		cr_assert_eq(rv, 0);
		if (write(fd, out, len) != (ssize_t)len)
			rv = -1;
		free(out);
		free_body(body);
		settle__v1__frame__free_unpacked(fr, NULL);
		if (rv != 0)
			break;
	}
	rpc_decoder_close(&dec);
	close(fd);
	return NULL;
}

static void *sf_main(void *arg)
{
	struct sf *f = arg;

	while (!f->stop) {
		struct pollfd p = {.fd = f->lfd, .events = POLLIN};

		if (poll(&p, 1, 50) <= 0)
			continue;
		int fd = accept(f->lfd, NULL, NULL);
		if (fd < 0)
			continue;
		pthread_mutex_lock(&f->lock);
		bool down = f->down, full = f->nconns == SF_MAX_CONN;
		pthread_mutex_unlock(&f->lock);
		if (down || full) {
			close(fd);
			continue;
		}
		struct conn_arg *ca = malloc(sizeof(*ca));
		cr_assert_not_null(ca);
		ca->f = f;
		ca->fd = fd;
		cr_assert_eq(
		    pthread_create(&f->conns[f->nconns], NULL, serve_conn, ca),
		    0);
		f->nconns++;
	}
	return NULL;
}

void sf_start(struct sf *f)
{
	struct sockaddr_in a = {.sin_family = AF_INET};
	socklen_t al = sizeof(a);

	memset(f, 0, sizeof(*f));
	f->fail_method = -1;
	pthread_mutex_init(&f->lock, NULL);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	f->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(f->lfd >= 0);
	cr_assert_eq(bind(f->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(f->lfd, 16), 0);
	getsockname(f->lfd, (struct sockaddr *)&a, &al);
	f->port = ntohs(a.sin_port);
	snprintf(f->endpoint, sizeof(f->endpoint), "127.0.0.1:%d", f->port);
	cr_assert_eq(pthread_create(&f->thread, NULL, sf_main, f), 0);
}

void sf_stop(struct sf *f)
{
	f->stop = true;
	pthread_join(f->thread, NULL);
	for (int i = 0; i < f->nconns; i++)
		pthread_join(f->conns[i], NULL);
	close(f->lfd);
	pthread_mutex_destroy(&f->lock);
}

void sf_set(struct sf *f, const char *gid, int state, int heuristic)
{
	pthread_mutex_lock(&f->lock);
	struct sf_tx *t = sf_find(f, gid);
	cr_assert_not_null(t, "fake: no transaction %s", gid);
	t->state = state;
	t->heuristic = heuristic;
	/* Committed by a decision (a TM's or an operator's), not by a
	 * read-only prepare. */
	t->decided |= state == SETTLE__V1__TX_STATE__COMMITTING ||
		      state == SETTLE__V1__TX_STATE__COMMITTED;
	pthread_mutex_unlock(&f->lock);
}

int sf_state(struct sf *f, const char *gid)
{
	pthread_mutex_lock(&f->lock);
	struct sf_tx *t = sf_find(f, gid);
	int st = t ? t->state : -1;
	pthread_mutex_unlock(&f->lock);
	return st;
}

int sf_calls(struct sf *f, int method)
{
	pthread_mutex_lock(&f->lock);
	int n = f->calls[method];
	pthread_mutex_unlock(&f->lock);
	return n;
}

void sf_down(struct sf *f, bool down)
{
	pthread_mutex_lock(&f->lock);
	f->down = down;
	pthread_mutex_unlock(&f->lock);
}

void sf_fail_next(struct sf *f, int method, int err)
{
	pthread_mutex_lock(&f->lock);
	f->fail_method = method;
	f->fail_err = err;
	pthread_mutex_unlock(&f->lock);
}

void sf_add(struct sf *f, const uint8_t *xid, size_t len, int state,
	    int heuristic, char *gid)
{
	pthread_mutex_lock(&f->lock);
	struct sf_tx *t = add_locked(f, xid, len, state);
	t->heuristic = heuristic;
	if (gid != NULL)
		strcpy(gid, t->gid);
	pthread_mutex_unlock(&f->lock);
}

/*
 * async_int.h — what the two halves of libsettle's asynchronous client
 * share: async.c moves operations (the pool of connections, attempts,
 * retries, pauses, closing), async_calls.c builds each kind of operation
 * and reads its answer. Internal; everything runs on the handle's loop.
 */
#ifndef SETTLE_CLIENT_ASYNC_INT_H
#define SETTLE_CLIENT_ASYNC_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "client_int.h"
#include "rpc.h"
#include "settle_async.h"

/* Connections kept to endpoints (nodes and participants). */
#define POOL_MAX 64
/* settle_async_wait(): one Query holds at most this long on the leader,
 * and a server that answers at once is polled from 5 ms up to 250 ms. */
#define WAIT_SLICE_MS	   10000
#define WAIT_POLL_FIRST_MS 5
#define WAIT_POLL_MAX_MS   250

enum aop_kind {
	AOP_BEGIN,
	AOP_DECIDE, /* commit, rollback */
	AOP_SAGA,
	AOP_WAIT,
	AOP_CALL,    /* settle_async_call() */
	AOP_CALL_AT, /* settle_async_call_at(): one attempt */
};

struct pool_ent {
	char ep[CLIENT_ENDPOINT_MAX];
	struct rpc_client *rc;
	size_t inflight; /* attempts whose callback has not run */
	uint64_t used;
};

struct aop {
	struct settle_async *a;
	struct aop *prev, *next; /* a->ops */
	struct aop *snext;	 /* a->sleeping */
	enum aop_kind kind;
	int method;
	uint8_t *body; /* the request, packed once */
	size_t len;
	uint32_t extra_ms;   /* server-side wait inside one attempt */
	uint64_t budget_end; /* uv_now(): no new attempt after this */
	uint64_t due;	     /* sleeping: uv_now() of the next attempt */
	uint32_t backoff;
	bool retrying; /* sleeping for a retry's backoff (not a wait's poll) */
	unsigned attempts;
	unsigned follows;
	unsigned gen;	     /* a->gen the attempt went out under */
	struct pool_ent *pe; /* where the attempt went */
	size_t ndecl;	     /* begin: branches declared */
	/* begin on a cluster that began without the branches: they are
	 * registered one by one, as the blocking client does. */
	Settle__V1__BeginRequest *decl; /* the request, unpacked again */
	uint32_t *ids;
	size_t nreg;	    /* registered so far */
	uint64_t wait_end;  /* wait: uv_now() of its end */
	uint32_t wait_poll; /* wait: next polling pause */
	uint64_t asked;	    /* wait: uv_now() the Query went out */
	char gid[SETTLE_GID_BUFSIZE];
	char target[CLIENT_ENDPOINT_MAX]; /* call_at */
	settle_async_cb cb;
	void *data;
};

struct settle_async {
	uv_loop_t *loop;
	struct settle_client_opts opts;
	char *eps_buf;
	const char *eps[CLIENT_MAX_ENDPOINTS];
	size_t n_eps;
	size_t cur; /* endpoint tried when there is no hint */
	char hint[CLIENT_ENDPOINT_MAX]; /* the leader, as last named */
	unsigned gen;			/* bumped when the target moves */
	struct pool_ent *pool[POOL_MAX];
	size_t npool;
	uint64_t clock;
	struct aop *ops; /* under way */
	size_t nops;
	struct aop *sleeping; /* waiting for their next attempt */
	size_t nretrying;     /* of them, retries after a transient error */
	uv_timer_t timer;
	bool timer_open;
	bool closing;
	struct rpc_tls *tls; /* settle_async_set_tls(); NULL: plaintext */
	char errmsg[512];
};

/* A new operation of kind for method with its request packed (req may be
 * NULL: an empty body) in *out: 0, SETTLE_ETOOBIG (text in a->errmsg),
 * SETTLE_ENOMEM. */
int async__op_new(struct settle_async *a, enum aop_kind kind, int method,
		  const ProtobufCMessage *req, settle_async_cb cb, void *data,
		  struct aop **out);

/* Start op (taken in every case): its first attempt goes out, or the code
 * it was refused with (text in a->errmsg; no callback then). */
int async__op_start(struct aop *op);

/* Run op's callback with r (errmsg and gid filled if unset), free op. */
void async__op_finish(struct aop *op, struct settle_async_result *r);

/* async__op_finish() with the error err and its text. */
void async__op_fail(struct aop *op, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Try op again after ms (a wait's poll; a retry's pause is retry()'s). */
void async__op_sleep(struct aop *op, uint32_t ms);

/* Send op's next attempt now; if it cannot go, op fails with why. */
void async__attempt_or_fail(struct aop *op);

/* Why the last call on a was refused (settle_async_errmsg()). */
void async__refuse(struct settle_async *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The answer to op's attempt (res->err is 0), by op's kind. */
void async__done_begin(struct aop *op, const struct rpc_result *res);
void async__done_register(struct aop *op, const struct rpc_result *res);
void async__done_decide(struct aop *op, const struct rpc_result *res);
void async__done_saga(struct aop *op, const struct rpc_result *res);
void async__done_wait(struct aop *op, const struct rpc_result *res);

#endif /* SETTLE_CLIENT_ASYNC_INT_H */

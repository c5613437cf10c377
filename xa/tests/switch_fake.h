/*
 * switch_fake.h — an in-memory coordinator for the switch library's unit
 * tests: a listening thread and one thread per connection (each xa_open
 * makes its own), speaking the real frame codec, with the XA transaction
 * rules of the shared design (BEGIN mode XA with xid / join, REGISTER_BRANCH,
 * XA_PREPARE, COMMIT with one_phase, ROLLBACK, XA_RECOVER paging, XA_FORGET,
 * XA_HEURISTIC, QUERY). Tests reach in to change a transaction's state (an
 * operator, a deadline) or to take the whole node down.
 */
#ifndef SETTLE_XA_TESTS_SWITCH_FAKE_H
#define SETTLE_XA_TESTS_SWITCH_FAKE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SF_MAX_TX   256
#define SF_MAX_CONN 64

struct sf_tx {
	char gid[64];
	uint8_t xid[134];
	size_t xid_len;
	int state;     /* Settle__V1__TxState */
	int heuristic; /* Settle__V1__Heuristic */
	int branches;  /* TCC branches registered */
	bool prepared; /* history: a "prepare" event */
	bool decided;  /* history: a "commit" event */
};

struct sf {
	int lfd;
	int port;
	char endpoint[64];
	pthread_t thread;
	pthread_t conns[SF_MAX_CONN];
	int conn_fds[SF_MAX_CONN];
	int nconns;
	volatile bool stop;
	pthread_mutex_t lock;
	/* Everything below is guarded by lock. */
	bool down;	 /* drop every request without answering */
	int calls[64];	 /* requests seen, by method (< 64) */
	int fail_method; /* answer this method once with fail_err */
	int fail_err;
	struct sf_tx tx[SF_MAX_TX];
	int ntx;
};

/* Start listening on 127.0.0.1 (a free port) and serving. */
void sf_start(struct sf *f);
void sf_stop(struct sf *f);

/* Under the lock: the transaction with gid, or NULL. */
struct sf_tx *sf_find(struct sf *f, const char *gid);

/* Set gid's state and heuristic as an operator or the driver would. */
void sf_set(struct sf *f, const char *gid, int state, int heuristic);
/* State of gid, or -1 when unknown. */
int sf_state(struct sf *f, const char *gid);
/* Number of requests of method seen. */
int sf_calls(struct sf *f, int method);
/* Drop (true) or serve (false) every request from now on. */
void sf_down(struct sf *f, bool down);
/* Answer the next request of method with err (a SETTLE_E* code). */
void sf_fail_next(struct sf *f, int method, int err);
/* Create a transaction for xid (wire) in state, as another process
 * would have. Returns its gid in gid (64 bytes). */
void sf_add(struct sf *f, const uint8_t *xid, size_t len, int state,
	    int heuristic, char *gid);

#endif /* SETTLE_XA_TESTS_SWITCH_FAKE_H */

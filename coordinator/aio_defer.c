/*
 * aio_defer.c — raft_uv's io_destroy() off the loop thread.
 *
 * raft_uv 0.15 writes its log through Linux AIO, one context per open
 * segment, and destroys a segment's context on the loop thread when it
 * closes the segment: at every snapshot (its barrier closes the open
 * segment) and when a segment fills. io_destroy() waits for an RCU grace
 * period, 30-55 ms under load here, and the whole node waits with it: the
 * slowest seconds of an open-loop run were exactly the leader's snapshots
 * (docs/BENCHMARKS.md). raft_uv makes the call through libc's syscall(),
 * so settled defines syscall() itself: io_destroy is handed to a thread of
 * its own and answered 0 at once; every other call goes to libc's.
 *
 * While the node runs, raft_uv closes a segment only once its writes are
 * done (a snapshot's barrier waits for them): no request is in flight on
 * the context, and nothing uses it afterwards. Closing raft is another
 * matter: the writer then cancels requests the kernel may still hold, and
 * only a synchronous io_destroy waits for those before raft frees their
 * buffers. So the node stops deferring when it starts to stop
 * (coord_aio_defer_stop(); a fresh-debian12 run crashed in raft's close
 * without it). The kernel
 * frees what a later io_destroy has not yet freed when the process exits.
 * If the thread cannot be started, or SETTLE_AIO_DESTROY_INLINE=1 is set
 * in the environment, io_destroy runs where it is called, as before.
 *
 * Only settled links this file: the client library and the tests do not
 * define syscall().
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "aio_defer.h"

typedef long (*syscall_fn)(long, ...);

/* Contexts waiting for the thread: a ring, so no allocation per call. */
#define RING 64

static syscall_fn real_syscall; /* libc's, resolved at the first call */

static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool atfork;   /* the fork handlers are registered */
	bool env_read; /* SETTLE_AIO_DESTROY_INLINE looked at */
	bool inline_;  /* ... and set: never defer */
	bool running;  /* the thread is there (in this process) */
	unsigned long ring[RING];
	unsigned head, n;
	unsigned long deferred;	 /* handed to the thread */
	unsigned long destroyed; /* of them, destroyed */
} ad = {
    .mu = PTHREAD_MUTEX_INITIALIZER,
    .cv = PTHREAD_COND_INITIALIZER,
};

static syscall_fn real(void)
{
	syscall_fn f = __atomic_load_n(&real_syscall, __ATOMIC_ACQUIRE);

	if (f == NULL) {
		f = (syscall_fn)dlsym(RTLD_NEXT, "syscall");
		__atomic_store_n(&real_syscall, f, __ATOMIC_RELEASE);
	}
	return f;
}

static void *destroyer(void *arg)
{
	syscall_fn f = real();

	(void)arg;
	pthread_setname_np(pthread_self(), "settled-aio");
	pthread_mutex_lock(&ad.mu);
	for (;;) {
		while (ad.n == 0)
			pthread_cond_wait(&ad.cv, &ad.mu);
		unsigned long ctx = ad.ring[ad.head];

		ad.head = (ad.head + 1) % RING;
		ad.n--;
		pthread_mutex_unlock(&ad.mu);
		f(SYS_io_destroy, ctx);
		pthread_mutex_lock(&ad.mu);
		ad.destroyed++;
		pthread_cond_broadcast(&ad.cv);
	}
	return NULL;
}

/* A forked child has no thread and no contexts of its parent (AIO
 * contexts are not inherited): it starts afresh. */
static void fork_prepare(void)
{
	pthread_mutex_lock(&ad.mu);
}

static void fork_parent(void)
{
	pthread_mutex_unlock(&ad.mu);
}

static void fork_child(void)
{
	pthread_mutex_init(&ad.mu, NULL);
	pthread_cond_init(&ad.cv, NULL);
	ad.env_read = false;
	ad.inline_ = false;
	ad.running = false;
	ad.head = ad.n = 0;
	ad.deferred = ad.destroyed = 0;
}

/* With ad.mu held: whether the thread is there to take a context, started
 * now if need be. */
static bool can_defer(void)
{
	pthread_attr_t attr;
	pthread_t t;

	if (!ad.env_read) {
		const char *v = getenv("SETTLE_AIO_DESTROY_INLINE");

		ad.env_read = true;
		ad.inline_ = v != NULL && strcmp(v, "1") == 0;
	}
	if (ad.inline_ || ad.running)
		return !ad.inline_;
	if (!ad.atfork)
		ad.atfork =
		    pthread_atfork(fork_prepare, fork_parent, fork_child) == 0;
	if (!ad.atfork || pthread_attr_init(&attr) != 0)
		return false;
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	ad.running = pthread_create(&t, &attr, destroyer, NULL) == 0;
	pthread_attr_destroy(&attr);
	return ad.running;
}

/* Hand ctx to the thread; false when it cannot take it (run it here). */
static bool defer(unsigned long ctx)
{
	bool ok;

	pthread_mutex_lock(&ad.mu);
	ok = can_defer() && ad.n < RING;
	if (ok) {
		ad.ring[(ad.head + ad.n) % RING] = ctx;
		ad.n++;
		ad.deferred++;
		pthread_cond_broadcast(&ad.cv);
	}
	pthread_mutex_unlock(&ad.mu);
	return ok;
}

/*
 * libc's syscall() takes the number and up to six arguments, all passed as
 * longs in registers or on the stack; like libc's, this reads six whatever
 * the call passed (the extra ones are ignored by the kernel).
 */
long syscall(long nr, ...)
{
	syscall_fn f = real();
	long a[6];
	va_list ap;

	va_start(ap, nr);
	for (int i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (f == NULL) {
		errno = ENOSYS;
		return -1;
	}
	if (nr == SYS_io_destroy && a[0] != 0 && defer((unsigned long)a[0]))
		return 0;
	return f(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
}

bool coord_aio_defer_start(void)
{
	bool on;

	if (real() == NULL)
		return false;
	pthread_mutex_lock(&ad.mu);
	on = can_defer();
	pthread_mutex_unlock(&ad.mu);
	return on;
}

void coord_aio_defer_stop(void)
{
	pthread_mutex_lock(&ad.mu);
	ad.env_read = true;
	ad.inline_ = true;
	pthread_mutex_unlock(&ad.mu);
}

unsigned long coord_aio_deferred(void)
{
	unsigned long n;

	pthread_mutex_lock(&ad.mu);
	n = ad.deferred;
	pthread_mutex_unlock(&ad.mu);
	return n;
}

void coord_aio_drain(void)
{
	pthread_mutex_lock(&ad.mu);
	while (ad.running && ad.destroyed < ad.deferred)
		pthread_cond_wait(&ad.cv, &ad.mu);
	pthread_mutex_unlock(&ad.mu);
}

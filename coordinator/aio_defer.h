/*
 * aio_defer.h — raft_uv's io_destroy() on a thread of its own
 * (aio_defer.c, which defines syscall() for settled). For tests and
 * status: the calls deferred so far, and a wait for them to be done.
 */
#ifndef SETTLE_COORD_AIO_DEFER_H
#define SETTLE_COORD_AIO_DEFER_H

#include <stdbool.h>

/* Start the thread now (settled does at start, so that a snapshot does
 * not wait for it): true when io_destroy calls go to it, false when they
 * run where they are called (SETTLE_AIO_DESTROY_INLINE=1, or no thread). */
bool coord_aio_defer_start(void);
/* From now on io_destroy runs where it is called (the node is stopping:
 * raft's close may cancel writes still in flight, which only a synchronous
 * io_destroy waits for). */
void coord_aio_defer_stop(void);
/* io_destroy calls handed to the thread since the process started. */
unsigned long coord_aio_deferred(void);
/* Return once every io_destroy handed to the thread has been made. */
void coord_aio_drain(void);

#endif /* SETTLE_COORD_AIO_DEFER_H */

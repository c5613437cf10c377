/*
 * test_aio_defer.c — settled's syscall(): io_destroy handed to a thread,
 * everything else passed to libc's. Real AIO contexts, made and destroyed
 * through the kernel.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "coordinator/aio_defer.h"

static aio_context_t make_ctx(void)
{
	aio_context_t ctx = 0;

	cr_assert_eq(syscall(SYS_io_setup, 8, &ctx), 0, "io_setup: %s",
		     strerror(errno));
	cr_assert_neq(ctx, 0);
	return ctx;
}

/* 0 for a live context, -1/EINVAL once it is destroyed. */
static long poll_ctx(aio_context_t ctx)
{
	struct io_event ev;
	struct timespec zero = {0, 0};

	return syscall(SYS_io_getevents, ctx, 0, 1, &ev, &zero);
}

Test(aio_defer, io_destroy_goes_to_the_thread)
{
	unsigned long before = coord_aio_deferred();
	aio_context_t ctx = make_ctx();

	cr_assert_eq(poll_ctx(ctx), 0, "a live context: %s", strerror(errno));
	cr_assert_eq(syscall(SYS_io_destroy, ctx), 0);
	cr_assert_eq(coord_aio_deferred(), before + 1,
		     "io_destroy was not handed to the thread");
	coord_aio_drain();
	errno = 0;
	cr_assert_eq(poll_ctx(ctx), -1, "the context outlived its destroy");
	cr_assert_eq(errno, EINVAL, "%s", strerror(errno));
}

Test(aio_defer, many_contexts_all_destroyed)
{
	aio_context_t ctx[40];
	unsigned long before = coord_aio_deferred();

	for (int i = 0; i < 40; i++)
		ctx[i] = make_ctx();
	for (int i = 0; i < 40; i++)
		cr_assert_eq(syscall(SYS_io_destroy, ctx[i]), 0);
	cr_assert_eq(coord_aio_deferred(), before + 40);
	coord_aio_drain();
	for (int i = 0; i < 40; i++)
		cr_assert_eq(poll_ctx(ctx[i]), -1, "context %d left", i);
}

Test(aio_defer, inline_when_asked)
{
	unsigned long before;
	aio_context_t ctx;

	/* Read at the first io_destroy of a process: a child of its own. */
	pid_t pid = fork();
	if (pid == 0) {
		setenv("SETTLE_AIO_DESTROY_INLINE", "1", 1);
		before = coord_aio_deferred();
		ctx = make_ctx();
		if (syscall(SYS_io_destroy, ctx) != 0)
			_exit(1);
		if (coord_aio_deferred() != before)
			_exit(2); /* deferred despite the variable */
		if (poll_ctx(ctx) != -1 || errno != EINVAL)
			_exit(3); /* not destroyed when the call returned */
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
}

Test(aio_defer, a_forked_child_defers_too)
{
	aio_context_t ctx = make_ctx();

	/* The parent's thread does not survive fork(): the child starts its
	 * own at its first io_destroy. */
	cr_assert_eq(syscall(SYS_io_destroy, ctx), 0);
	coord_aio_drain();
	pid_t pid = fork();
	if (pid == 0) {
		aio_context_t c2 = 0;

		if (syscall(SYS_io_setup, 8, &c2) != 0)
			_exit(1);
		if (syscall(SYS_io_destroy, c2) != 0)
			_exit(2);
		if (coord_aio_deferred() != 1)
			_exit(3);
		coord_aio_drain();
		if (poll_ctx(c2) != -1)
			_exit(4);
		_exit(0);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child status %d", st);
}

Test(aio_defer, other_calls_reach_the_kernel)
{
	cr_assert_eq(syscall(SYS_getpid), getpid());
	cr_assert_eq(syscall(SYS_gettid), gettid());
	errno = 0;
	cr_assert_eq(syscall(100000), -1);
	cr_assert_eq(errno, ENOSYS);
	/* Six arguments through: a pread of a pipe at an offset fails
	 * ESPIPE, proving the descriptor arrived. */
	int fds[2];
	char buf[4];
	cr_assert_eq(pipe(fds), 0);
	errno = 0;
	cr_assert_eq(syscall(SYS_pread64, fds[0], buf, sizeof buf, 0), -1);
	cr_assert_eq(errno, ESPIPE);
	close(fds[0]);
	close(fds[1]);
}

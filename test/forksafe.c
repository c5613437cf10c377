/* Fork safety of the test programs under AddressSanitizer.
 *
 * Criterion runs every test in a worker process: its runner calls fork()
 * and the child runs a little of BoxFort's code before execve() -- it
 * allocates (the fd table it closes, the new environment, opendir of
 * /proc/self/fd). The runner has other threads alive at that moment
 * (nanomsg's I/O worker, BoxFort's child pump and timeout killer), and so do
 * our integration tests when they fork settled or a participant.
 *
 * glibc's malloc is fork-safe: fork() takes every arena lock first and the
 * child starts with them free. The AddressSanitizer allocator of Debian 12's
 * GCC 12 (libasan 8) is not: it installs no atfork handler (LLVM added one
 * only in December 2023), so when another thread holds one of its size-class
 * locks at the instant of fork(), the child inherits that lock held by a
 * thread that does not exist there, and its first malloc of that class waits
 * for ever (SizeClassAllocator64::GetFromAllocator <- asan_malloc). It shows
 * only on a cold, busy machine, as a suite that hangs.
 *
 * So this file, linked into every test program of the sanitizer build only,
 * replaces the allocation entry points, and an atfork handler marks the
 * child of every fork(). There, until it execs, every allocation comes from
 * a private bump arena (large ones straight from mmap), and free() forgets:
 * the child never enters ASan's allocator, whose locks may be held.
 * Everywhere else the calls go to ASan unchanged. The handler is registered
 * before main, so it runs first among the child handlers (they run in
 * registration order): BoxFort's, registered at its first spawn, already
 * finds it set. vfork() and posix_spawn() run no handlers and need none:
 * their child shares the parent's memory and so its locks' owners. Nothing
 * here is instrumented: it is the allocator's shim.
 * A child that does not exec keeps allocating from the arena; none of ours
 * does that (they exec settled, a participant or a Criterion worker).
 *
 * The regression test is test/unit/test_forksafe.c. */

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <unistd.h>

#define NOSAN __attribute__((no_sanitize("address", "undefined")))

/* AddressSanitizer's own entry points, which libasan exports beside the
 * weak malloc, free, ... this file overrides. */
void *__interceptor_malloc(size_t n);
void *__interceptor_calloc(size_t k, size_t n);
void *__interceptor_realloc(void *p, size_t n);
void __interceptor_free(void *p);
int __interceptor_posix_memalign(void **out, size_t align, size_t n);
void *__interceptor_aligned_alloc(size_t align, size_t n);
void *__interceptor_memalign(size_t align, size_t n);
char *__interceptor_strdup(const char *s);
char *__interceptor_strndup(const char *s, size_t n);
size_t __sanitizer_get_allocated_size(const void *p);

/* Set in the child of fork(); the child is single-threaded, and exec
 * replaces the whole image, so it is never cleared. */
static volatile int in_child;

/* Each block is preceded by its size, for realloc. */
#define ARENA_SIZE (1u << 20)
#define ALIGN	   16
static unsigned char arena[ARENA_SIZE] __attribute__((aligned(ALIGN)));
static size_t arena_used;
/* Blocks too large for the arena, remembered so that realloc can tell them
 * from ASan's chunks; past the table's end the child gets ENOMEM. */
#define BIG_MAX 64
static const void *big[BIG_MAX];
static unsigned nbig;

static NOSAN int in_arena(const void *p)
{
	return (const unsigned char *)p >= arena &&
	       (const unsigned char *)p < arena + ARENA_SIZE;
}

static NOSAN void *child_alloc(size_t n, size_t align)
{
	size_t need, at;
	unsigned char *b;

	if (align < ALIGN)
		align = ALIGN;
	if (n > SIZE_MAX - 2 * align - 4096) {
		errno = ENOMEM;
		return NULL;
	}
	need = n + align;
	at = (arena_used + align - 1) & ~(align - 1);
	if (at + need <= ARENA_SIZE) {
		arena_used = at + need;
		b = arena + at + align;
	} else {
		/* Straight to the kernel: ASan's mmap interceptor is not
		 * needed for memory the child only uses until it execs. */
		long m;

		if (nbig == BIG_MAX) {
			errno = ENOMEM;
			return NULL;
		}
		m = syscall(SYS_mmap, NULL, need, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == -1)
			return NULL;
		b = (unsigned char *)m + align;
		big[nbig++] = b;
	}
	((size_t *)b)[-1] = n;
	return b;
}

/* The usable size of p in the child: the header of a block of its own, or
 * what ASan says of a chunk allocated before the fork. */
static NOSAN size_t child_size(const void *p)
{
	unsigned i;

	if (in_arena(p))
		return ((const size_t *)p)[-1];
	for (i = 0; i < nbig; i++)
		if (big[i] == p)
			return ((const size_t *)p)[-1];
	return __sanitizer_get_allocated_size(p);
}

NOSAN void *malloc(size_t n)
{
	return in_child ? child_alloc(n, ALIGN) : __interceptor_malloc(n);
}

NOSAN void *calloc(size_t k, size_t n)
{
	void *p;

	if (!in_child)
		return __interceptor_calloc(k, n);
	if (n && k > SIZE_MAX / n) {
		errno = ENOMEM;
		return NULL;
	}
	p = child_alloc(k * n, ALIGN);
	if (p)
		memset(p, 0, k * n);
	return p;
}

NOSAN void free(void *p)
{
	if (!in_child)
		__interceptor_free(p);
}

NOSAN void *realloc(void *p, size_t n)
{
	void *q;
	size_t old;

	if (!in_child)
		return __interceptor_realloc(p, n);
	q = child_alloc(n, ALIGN);
	if (q && p) {
		old = child_size(p);
		memcpy(q, p, old < n ? old : n);
	}
	return q;
}

NOSAN int posix_memalign(void **out, size_t align, size_t n)
{
	if (!in_child)
		return __interceptor_posix_memalign(out, align, n);
	*out = child_alloc(n, align);
	return *out ? 0 : ENOMEM;
}

NOSAN void *aligned_alloc(size_t align, size_t n)
{
	return in_child ? child_alloc(n, align)
			: __interceptor_aligned_alloc(align, n);
}

NOSAN void *memalign(size_t align, size_t n)
{
	return in_child ? child_alloc(n, align)
			: __interceptor_memalign(align, n);
}

NOSAN char *strdup(const char *s)
{
	size_t n;
	char *d;

	if (!in_child)
		return __interceptor_strdup(s);
	n = strlen(s) + 1;
	d = child_alloc(n, ALIGN);
	if (d)
		memcpy(d, s, n);
	return d;
}

NOSAN char *strndup(const char *s, size_t max)
{
	size_t n;
	char *d;

	if (!in_child)
		return __interceptor_strndup(s, max);
	n = strnlen(s, max);
	d = child_alloc(n + 1, ALIGN);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static NOSAN void forksafe_child(void)
{
	in_child = 1;
}

__attribute__((constructor(101))) static void forksafe_init(void)
{
	pthread_atfork(NULL, NULL, forksafe_child);
}

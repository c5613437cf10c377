/*
 * test_settle_xa_ext_c89.c — xa/settle_xa_ext.h compiles alone, as C89
 * with -pedantic-errors, like settle_xa.h (test_settle_xa_c89.c). Not a
 * Criterion test: a plain program that only needs to build and run.
 */
#include "xa/settle_xa_ext.h"

/* The signatures, as a TM's application would take their addresses. */
static int (*const current_gid)(int, char *, size_t) = settle_xa_current_gid;
static const char *(*const errmsg)(int) = settle_xa_errmsg;

int main(void)
{
	char buf[64];

	/* No xa_open in this thread: no transaction, and no reason yet. */
	if (current_gid(1, buf, sizeof(buf)) >= 0)
		return 1;
	return errmsg(1)[0] == '\0' ? 0 : 1;
}

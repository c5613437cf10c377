#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

void tstore_open(struct tstore *t, size_t mapsize)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(t->dir, sizeof t->dir, "%s/settle-store-XXXXXX",
		 tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(t->dir));
	struct store_opts o = {.mapsize = mapsize};
	char msg[256];
	int rv = store_open(t->dir, &o, &t->s, msg, sizeof msg);
	cr_assert_eq(rv, 0, "store_open: %s", msg);
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tstore_close(struct tstore *t)
{
	store_close(t->s);
	t->s = NULL;
	nftw(t->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "helpers.h"

/* Directories still open, removed at exit if a failed assertion skipped
 * tstore_close() (each Criterion test is its own process). */
#define MAX_OPEN 16
static char open_dirs[MAX_OPEN][64];
static bool exit_hook;

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw);

static void remove_leftovers(void)
{
	for (int i = 0; i < MAX_OPEN; i++)
		if (open_dirs[i][0] != 0)
			nftw(open_dirs[i], rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void track(const char *dir, bool add)
{
	if (!exit_hook) {
		atexit(remove_leftovers);
		exit_hook = true;
	}
	for (int i = 0; i < MAX_OPEN; i++) {
		if (add && open_dirs[i][0] == 0) {
			snprintf(open_dirs[i], sizeof open_dirs[i], "%s", dir);
			return;
		}
		if (!add && strcmp(open_dirs[i], dir) == 0) {
			open_dirs[i][0] = 0;
			return;
		}
	}
}

void tstore_open(struct tstore *t, size_t mapsize)
{
	const char *tmp = getenv("TMPDIR");
	snprintf(t->dir, sizeof t->dir, "%s/settle-store-XXXXXX",
		 tmp != NULL && strlen(tmp) < 32 ? tmp : "/tmp");
	cr_assert_not_null(mkdtemp(t->dir));
	track(t->dir, true);
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
	track(t->dir, false);
}

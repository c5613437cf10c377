#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void tstore_reseal(uint8_t *buf, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < len - 8; i++) {
		h ^= buf[i];
		h *= 0x100000001b3ull;
	}
	for (int i = 0; i < 8; i++)
		buf[len - 8 + i] = (uint8_t)(h >> (8 * i));
}

static void le32_at(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

uint8_t *tstore_snap_old(const uint8_t *buf, size_t len, uint32_t version,
			 const uint8_t *rows, size_t rows_len, uint64_t nrows,
			 size_t *out_len)
{
	static const uint8_t history[] = "\x07\x00\x00\x00history"
					 "\x00\x00\x00\x00\x00\x00\x00\x00";
	const uint8_t *h = memmem(buf, len, history, sizeof history - 1);
	cr_assert_not_null(h, "a snapshot with an empty history db");
	size_t before = (size_t)(h - buf);
	size_t after = before + sizeof history - 1;
	/* Before format 4 there was no cmd_ids db (the last one). */
	const uint8_t *ids = memmem(buf, len,
				    "\x07\x00\x00\x00"
				    "cmd_ids",
				    11);
	cr_assert_not_null(ids);
	size_t end = (size_t)(ids - buf);
	if (version == 1) {
		const uint8_t *t = memmem(buf, len,
					  "\x0b\x00\x00\x00"
					  "applied_log",
					  15);
		cr_assert_not_null(t);
		end = (size_t)(t - buf);
	}
	uint8_t *out = malloc(len + 18 + rows_len);
	cr_assert_not_null(out);
	size_t n = 0;
	memcpy(out, buf, before);
	n = before;
	memcpy(out + n,
	       "\x06\x00\x00\x00"
	       "events",
	       10);
	n += 10;
	for (int i = 0; i < 8; i++)
		out[n++] = (uint8_t)(nrows >> (8 * i));
	if (rows_len > 0)
		memcpy(out + n, rows, rows_len);
	n += rows_len;
	memcpy(out + n, buf + after, end - after);
	n += end - after;
	n += 8;
	le32_at(out + 8, version);
	le32_at(out + 12, version == 1 ? 9 : 11);
	/* meta's version row: key "version", u32 length 4, BE 4 -> old. */
	uint8_t *ver = memmem(out, before, "version\x04\x00\x00\x00", 11);
	cr_assert_not_null(ver);
	cr_assert_eq(ver[14], 4);
	ver[14] = (uint8_t)version;
	tstore_reseal(out, n);
	*out_len = n;
	return out;
}

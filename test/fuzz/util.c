/*
 * util.c — what every fuzz target links, under either driver: the seed
 * list, fuzz_fail() and temporary directories.
 */
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

struct seed {
	uint8_t *data;
	size_t len;
};

const char *fuzz_input_name = "input";

static struct seed *seeds;
static size_t n_seeds;

void fuzz_seed_add(const void *data, size_t len)
{
	struct seed *grown = realloc(seeds, (n_seeds + 1) * sizeof(*seeds));
	FUZZ_CHECK(grown != NULL, "out of memory for seeds");
	seeds = grown;
	/* One spare byte so that an empty seed still has a buffer. */
	seeds[n_seeds].data = malloc(len + 1);
	FUZZ_CHECK(seeds[n_seeds].data != NULL, "out of memory for seeds");
	if (len > 0)
		memcpy(seeds[n_seeds].data, data, len);
	seeds[n_seeds].len = len;
	n_seeds++;
}

size_t fuzz_seed_count(void)
{
	return n_seeds;
}

const uint8_t *fuzz_seed_get(size_t i, size_t *len)
{
	*len = seeds[i].len;
	return seeds[i].data;
}

void fuzz_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("fuzz: invariant broken: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	fflush(stderr);
	abort();
}

void fuzz_finding(const uint8_t *input, size_t len, const char *fmt, ...)
{
	static const char *seen[16];
	static int n_seen;
	const char *strict = getenv("FUZZ_STRICT");
	const char *dir = getenv("FUZZ_ARTIFACTS");
	char path[512];
	va_list ap;
	FILE *f;
	int i;

	if (strict != NULL && strcmp(strict, "1") == 0) {
		va_start(ap, fmt);
		fputs("fuzz: invariant broken: ", stderr);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
		fflush(stderr);
		abort();
	}
	for (i = 0; i < n_seen; i++)
		if (seen[i] == fmt)
			return;
	if (n_seen < 16)
		seen[n_seen++] = fmt;
	snprintf(path, sizeof(path), "%s/finding-%s.bin",
		 dir != NULL && dir[0] != '\0' ? dir : ".", fuzz_input_name);
	f = fopen(path, "wb");
	if (f != NULL) {
		fwrite(input, 1, len, f);
		fclose(f);
	}
	fputs("fuzz: finding (known, not fatal): ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; input %s saved to %s\n", fuzz_input_name, path);
}

static char temp_dirs[8][128];
static int n_temp_dirs;

static int remove_one(const char *path, const struct stat *st, int flag,
		      struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void remove_temp_dirs(void)
{
	for (int i = 0; i < n_temp_dirs; i++)
		nftw(temp_dirs[i], remove_one, 8, FTW_DEPTH | FTW_PHYS);
}

void fuzz_tempdir_remove(const char *path)
{
	for (int i = 0; i < n_temp_dirs; i++) {
		if (strcmp(temp_dirs[i], path) == 0) {
			nftw(temp_dirs[i], remove_one, 8, FTW_DEPTH | FTW_PHYS);
			memcpy(temp_dirs[i], temp_dirs[n_temp_dirs - 1],
			       sizeof(temp_dirs[0]));
			n_temp_dirs--;
			return;
		}
	}
}

void fuzz_tempdir(char *path, size_t len)
{
	const char *tmp = getenv("TMPDIR");
	static bool registered;

	FUZZ_CHECK(n_temp_dirs < 8, "too many temporary directories");
	snprintf(path, len, "%s/settle-fuzz-XXXXXX",
		 tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	FUZZ_CHECK(mkdtemp(path) != NULL, "mkdtemp %s failed", path);
	if (!registered)
		atexit(remove_temp_dirs);
	registered = true;
	snprintf(temp_dirs[n_temp_dirs++], sizeof(temp_dirs[0]), "%s", path);
}

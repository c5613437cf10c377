/*
 * driver.c — our own fuzz driver: runs a target's LLVMFuzzerTestOneInput()
 * over its seeds, then over mutations of them, deterministically.
 *
 *   fuzz_X [-t SECONDS] [-n INPUTS] [-s SEED] [-i INPUT_NO]
 *          [--write-seeds DIR] [FILE...]
 *
 * With FILEs: run each file once (a reproducer) and stop. -i N: run only
 * mutated input number N of seed S (to replay what a timed run found).
 * Defaults: $FUZZ_SECONDS or 5 seconds, no input limit, $FUZZ_SEED or 1.
 *
 * Input number i is a pure function of (SEED, i): its random generator is
 * seeded from both, so any input of a run can be rebuilt without the
 * inputs before it. When an input crashes (a sanitizer report, an abort
 * from fuzz_fail(), a signal), it is written to
 * $FUZZ_ARTIFACTS (default .)/crash-TARGET-SEED-INPUT.bin first.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

/* Mutants never grow past this: the parsers' own limits are far lower
 * except for payloads, and big inputs only slow the loop down. */
#define MUTANT_MAX (256u * 1024u)

/* The sanitizer runtime's hook, when there is one. */
extern void __sanitizer_set_death_callback(void (*cb)(void))
    __attribute__((weak));

static const char *target = "fuzz";
static char crash_path[512];
static const uint8_t *current;
static size_t current_len;

/* Async-signal-safe: open and write only. */
static void save_current(void)
{
	static volatile sig_atomic_t saved;
	int fd;

	if (saved || current == NULL || crash_path[0] == '\0')
		return;
	saved = 1;
	fd = open(crash_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		return;
	for (size_t off = 0; off < current_len;) {
		ssize_t w = write(fd, current + off, current_len - off);
		if (w <= 0)
			break;
		off += (size_t)w;
	}
	close(fd);
	static const char msg[] = "fuzz: crashing input saved to ";
	(void)!write(2, msg, sizeof(msg) - 1);
	(void)!write(2, crash_path, strlen(crash_path));
	(void)!write(2, "\n", 1);
}

static void on_fatal(int sig)
{
	save_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

static void catch_crashes(void)
{
	static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};

	if (__sanitizer_set_death_callback != NULL)
		__sanitizer_set_death_callback(save_current);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		signal(sigs[i], on_fatal);
}

static void run_one(const uint8_t *data, size_t len, const char *what)
{
	const char *dir = getenv("FUZZ_ARTIFACTS");

	snprintf(crash_path, sizeof(crash_path), "%s/crash-%s-%s.bin",
		 dir != NULL && dir[0] != '\0' ? dir : ".", target, what);
	current = data;
	current_len = len;
	fuzz_input_name = what;
	LLVMFuzzerTestOneInput(data, len);
	current = NULL;
}

/* ---- Deterministic randomness ------------------------------------------ */

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

/* 0..n-1; n > 0. */
static size_t below(uint64_t *s, size_t n)
{
	return (size_t)(splitmix(s) % n);
}

/* ---- Mutations ----------------------------------------------------------- */

struct buf {
	uint8_t *p;
	size_t len;
	size_t cap;
};

static void buf_insert(struct buf *b, size_t at, const uint8_t *src, size_t n)
{
	if (b->len + n > b->cap)
		n = b->cap - b->len;
	memmove(b->p + at + n, b->p + at, b->len - at);
	memcpy(b->p + at, src, n);
	b->len += n;
}

static void buf_delete(struct buf *b, size_t at, size_t n)
{
	memmove(b->p + at, b->p + at + n, b->len - at - n);
	b->len -= n;
}

/* Values that break length checks: empty, one, limits, signed edges. */
static uint32_t interesting32(uint64_t *s, size_t len)
{
	const uint32_t v[] = {
	    0,		 1,	      2,	   7,	       8,     127,
	    128,	 255,	      256,	   4096,       65535, 65536,
	    0x7fffffffu, 0x80000000u, 0xfffffffeu, 0xffffffffu};
	size_t pick = below(s, sizeof(v) / sizeof(v[0]) + 3);

	if (pick < sizeof(v) / sizeof(v[0]))
		return v[pick];
	/* Around the real size: off by one either way. */
	return (uint32_t)len + (uint32_t)(pick - sizeof(v) / sizeof(v[0])) - 1;
}

/* Overwrite a length-like field at a random place: 4 bytes big- or
 * little-endian (our framing, snapshots, entries), 8 bytes little-endian
 * (snapshot counts), or a protobuf varint. */
static void mutate_length(struct buf *b, uint64_t *s)
{
	uint8_t tmp[10];
	uint64_t v = interesting32(s, b->len);
	size_t at, n = 0;

	switch (below(s, 4)) {
	case 0: /* u32 BE */
		for (int i = 0; i < 4; i++)
			tmp[n++] = (uint8_t)(v >> (24 - 8 * i));
		break;
	case 1: /* u32 LE */
		for (int i = 0; i < 4; i++)
			tmp[n++] = (uint8_t)(v >> (8 * i));
		break;
	case 2: /* u64 LE, sometimes huge */
		if (below(s, 4) == 0)
			v |= (uint64_t)v << 32;
		for (int i = 0; i < 8; i++)
			tmp[n++] = (uint8_t)(v >> (8 * i));
		break;
	default: /* varint, sometimes of 64 bits */
		if (below(s, 4) == 0)
			v = ~(uint64_t)0 - below(s, 3);
		do {
			tmp[n++] =
			    (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
			v >>= 7;
		} while (v != 0);
		break;
	}
	if (b->len < n) {
		buf_insert(b, b->len, tmp, n);
		return;
	}
	at = below(s, b->len - n + 1);
	memcpy(b->p + at, tmp, n);
}

static void mutate(struct buf *b, uint64_t *s)
{
	uint8_t rnd[16];
	size_t at, n, from;
	const uint8_t *other;
	size_t other_len;

	switch (below(s, 10)) {
	case 0: /* flip a bit */
		if (b->len > 0) {
			at = below(s, b->len);
			b->p[at] ^= (uint8_t)(1u << below(s, 8));
		}
		break;
	case 1: { /* set a byte to an edge value */
		static const uint8_t edge[] = {0x00, 0x01, 0x7f, 0x80, 0xff,
					       0x08, 0x0a, 0x12, 0x3a, ':'};
		if (b->len > 0)
			b->p[below(s, b->len)] = edge[below(s, sizeof(edge))];
		break;
	}
	case 2: /* add or subtract a little */
		if (b->len > 0) {
			at = below(s, b->len);
			b->p[at] = (uint8_t)(b->p[at] + below(s, 9) - 4);
		}
		break;
	case 3: /* truncate */
		b->len = below(s, b->len + 1);
		break;
	case 4: /* insert random bytes */
		n = 1 + below(s, sizeof(rnd));
		for (size_t i = 0; i < n; i++)
			rnd[i] = (uint8_t)splitmix(s);
		buf_insert(b, below(s, b->len + 1), rnd, n);
		break;
	case 5: /* delete a range */
		if (b->len > 0) {
			at = below(s, b->len);
			buf_delete(b, at, 1 + below(s, b->len - at));
		}
		break;
	case 6: /* duplicate a range somewhere */
		if (b->len > 0 && b->len < b->cap) {
			from = below(s, b->len);
			n = 1 +
			    below(s, b->len - from < 64 ? b->len - from : 64);
			memcpy(rnd, b->p + from, n < 16 ? n : 16);
			buf_insert(b, below(s, b->len + 1), rnd,
				   n < 16 ? n : 16);
		}
		break;
	case 7: /* splice: our prefix, another seed's suffix */
		other = fuzz_seed_get(below(s, fuzz_seed_count()), &other_len);
		at = below(s, b->len + 1);
		from = below(s, other_len + 1);
		b->len = at;
		buf_insert(b, at, other + from, other_len - from);
		break;
	default: /* a length field */
		mutate_length(b, s);
		break;
	}
}

/* Build mutated input number i of seed: a pure function of both. */
static void make_input(struct buf *b, uint64_t seed, uint64_t i)
{
	uint64_t s = seed * 0x2545f4914f6cdd1dull ^ i;
	const uint8_t *base;
	size_t len;
	size_t rounds;

	splitmix(&s);
	base = fuzz_seed_get(below(&s, fuzz_seed_count()), &len);
	b->len = len < b->cap ? len : b->cap;
	memcpy(b->p, base, b->len);
	/* Mostly one or two changes: far from the seed, most inputs stop at
	 * the first check and test little. */
	rounds = 1 + below(&s, 4);
	if (below(&s, 4) == 0)
		rounds += below(&s, 12);
	for (size_t r = 0; r < rounds; r++)
		mutate(b, &s);
}

/* ---- Main ---------------------------------------------------------------- */

static int read_file(const char *path, uint8_t **data, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0;
	uint8_t *p = malloc(cap);

	if (f == NULL || p == NULL) {
		fprintf(stderr, "%s: %s: %s\n", target, path, strerror(errno));
		if (f != NULL)
			fclose(f);
		free(p);
		return -1;
	}
	for (;;) {
		size_t r = fread(p + n, 1, cap - n, f);
		n += r;
		if (n < cap)
			break;
		uint8_t *q = realloc(p, cap * 2);
		if (q == NULL) {
			fclose(f);
			free(p);
			return -1;
		}
		p = q;
		cap *= 2;
	}
	fclose(f);
	*data = p;
	*len = n;
	return 0;
}

static int write_seeds(const char *dir)
{
	char path[600];

	if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
		fprintf(stderr, "%s: mkdir %s: %s\n", target, dir,
			strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < fuzz_seed_count(); i++) {
		size_t len;
		const uint8_t *p = fuzz_seed_get(i, &len);
		FILE *f;

		snprintf(path, sizeof(path), "%s/seed-%03zu", dir, i);
		f = fopen(path, "wb");
		if (f == NULL || fwrite(p, 1, len, f) != len) {
			fprintf(stderr, "%s: %s: %s\n", target, path,
				strerror(errno));
			if (f != NULL)
				fclose(f);
			return 1;
		}
		fclose(f);
	}
	return 0;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: %s [-t SECONDS] [-n INPUTS] [-s SEED] [-i INPUT_NO] "
		"[--write-seeds DIR] [FILE...]\n",
		target);
}

static bool parse_num(const char *s, unsigned long long *out)
{
	char *end;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && s[0] != '-';
}

int main(int argc, char **argv)
{
	const char *env_s = getenv("FUZZ_SECONDS");
	const char *env_seed = getenv("FUZZ_SEED");
	unsigned long long seconds = 5, limit = 0, seed = 1, only = 0;
	bool have_only = false;
	const char *seeds_dir = NULL;
	struct buf b;
	char what[64];
	uint64_t i;
	double start;
	int argi;

	target =
	    strrchr(argv[0], '/') != NULL ? strrchr(argv[0], '/') + 1 : argv[0];
	/* libtool runs us as lt-NAME. */
	if (strncmp(target, "lt-", 3) == 0)
		target += 3;
	if (env_s != NULL && !parse_num(env_s, &seconds)) {
		fprintf(stderr, "%s: bad FUZZ_SECONDS '%s'\n", target, env_s);
		return 2;
	}
	if (env_seed != NULL && !parse_num(env_seed, &seed)) {
		fprintf(stderr, "%s: bad FUZZ_SEED '%s'\n", target, env_seed);
		return 2;
	}
	for (argi = 1; argi < argc && argv[argi][0] == '-'; argi++) {
		const char *a = argv[argi];
		const char *v = argi + 1 < argc ? argv[argi + 1] : NULL;
		unsigned long long *dst = NULL;

		if (strcmp(a, "--write-seeds") == 0 && v != NULL) {
			seeds_dir = v;
			argi++;
			continue;
		}
		if (strcmp(a, "-t") == 0)
			dst = &seconds;
		else if (strcmp(a, "-n") == 0)
			dst = &limit;
		else if (strcmp(a, "-s") == 0)
			dst = &seed;
		else if (strcmp(a, "-i") == 0) {
			dst = &only;
			have_only = true;
		}
		if (dst == NULL || v == NULL || !parse_num(v, dst)) {
			usage();
			return 2;
		}
		argi++;
	}

	fuzz_seeds();
	if (fuzz_seed_count() == 0)
		fuzz_seed_add("", 0);
	if (seeds_dir != NULL)
		return write_seeds(seeds_dir);
	catch_crashes();

	if (argi < argc) {
		int files = argc - argi;
		for (; argi < argc; argi++) {
			uint8_t *data;
			size_t len;
			if (read_file(argv[argi], &data, &len) != 0)
				return 2;
			run_one(data, len, "replay");
			free(data);
		}
		printf("%s: replayed %d file(s): no crash\n", target, files);
		return 0;
	}

	b.cap = MUTANT_MAX;
	for (size_t k = 0; k < fuzz_seed_count(); k++) {
		size_t len;
		(void)fuzz_seed_get(k, &len);
		if (len > b.cap)
			b.cap = len;
	}
	b.cap += 64;
	b.p = malloc(b.cap);
	if (b.p == NULL)
		return 2;

	if (have_only) {
		make_input(&b, seed, only);
		snprintf(what, sizeof(what), "%llu-%llu", seed, only);
		run_one(b.p, b.len, what);
		printf("%s: input %llu of seed %llu (%zu bytes): no crash\n",
		       target, only, seed, b.len);
		free(b.p);
		return 0;
	}

	/* Every seed as it is first: they must pass, or the mutants test
	 * nothing but the first check. */
	for (size_t k = 0; k < fuzz_seed_count(); k++) {
		size_t len;
		const uint8_t *p = fuzz_seed_get(k, &len);
		snprintf(what, sizeof(what), "seed%zu", k);
		memcpy(b.p, p, len);
		run_one(b.p, len, what);
	}
	start = now_s();
	for (i = 0; limit == 0 || i < limit; i++) {
		/* The clock is read every 64 inputs: it is not free. */
		if ((i & 63) == 0 && seconds > 0 &&
		    now_s() - start >= (double)seconds)
			break;
		make_input(&b, seed, i);
		snprintf(what, sizeof(what), "%llu-%llu", seed,
			 (unsigned long long)i);
		run_one(b.p, b.len, what);
	}
	printf("%s: %llu inputs from %zu seeds in %.1f s (seed %llu), no "
	       "crash\n",
	       target, (unsigned long long)i, fuzz_seed_count(),
	       now_s() - start, seed);
	free(b.p);
	return 0;
}

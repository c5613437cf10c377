/*
 * fuzz.h — the contract between a fuzz target and its driver.
 *
 * A target is one file defining LLVMFuzzerTestOneInput(), as libFuzzer
 * expects, plus fuzz_seeds(), which hands valid inputs to the driver with
 * fuzz_seed_add(). Targets run under two drivers:
 *   - test/fuzz/driver.c, ours: a deterministic seeded mutation loop (bit
 *     flips, truncations, insertions, length fields) for N inputs or S
 *     seconds; no clang needed. make check runs every target this way.
 *   - clang -fsanitize=fuzzer (scripts/fuzz, when clang is installed), fed
 *     with the seeds our driver writes out (--write-seeds DIR).
 *
 * A target must never crash, leak or trip a sanitizer on any input; when
 * an invariant it checks breaks it calls fuzz_fail(), which aborts, and
 * the driver saves the input as a reproducer.
 */
#ifndef SETTLE_FUZZ_H
#define SETTLE_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* Run one input; returns 0 (libFuzzer reserves other values). */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Add the target's seeds with fuzz_seed_add(). Called once, first. */
void fuzz_seeds(void);

/* Record a seed (copied). Aborts when out of memory. */
void fuzz_seed_add(const void *data, size_t len);

/* Seeds recorded so far; valid until the next fuzz_seed_add(). */
size_t fuzz_seed_count(void);
const uint8_t *fuzz_seed_get(size_t i, size_t *len);

/* Name of the input running ("SEED-N" of our driver, for -s SEED -i N),
 * for messages and saved files. */
extern const char *fuzz_input_name;

/* Report a broken invariant on stderr and abort. */
_Noreturn void fuzz_fail(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/*
 * A known weakness, already reported, that must not stop the run: the
 * first time each fmt is seen, print it with "finding:" and save the
 * input to $FUZZ_ARTIFACTS (default .)/finding-NAME.bin (fuzz_input_name). With
 * FUZZ_STRICT=1 in the environment it is fuzz_fail() instead.
 */
void fuzz_finding(const uint8_t *input, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define FUZZ_CHECK(cond, ...)                                                  \
	do {                                                                   \
		if (!(cond))                                                   \
			fuzz_fail(__VA_ARGS__);                                \
	} while (0)

/*
 * A fresh directory under $TMPDIR (or /tmp) into path (size len), removed
 * with everything in it at exit. Aborts on failure.
 */
void fuzz_tempdir(char *path, size_t len);

/* Remove a directory from fuzz_tempdir() now, with its content. */
void fuzz_tempdir_remove(const char *path);

#endif /* SETTLE_FUZZ_H */

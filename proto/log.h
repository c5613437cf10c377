/*
 * log.h — logging and tracing shared by every Settle binary.
 *
 * settle_log() writes one line to stderr: time, level, component, message.
 * Callers must never pass a branch payload or anything derived from one:
 * payloads may hold personal or account data.
 *
 * Tracing costs one branch when off: set SETTLE_TRACE=1 to turn it on.
 */
#ifndef SETTLE_LOG_H
#define SETTLE_LOG_H

#include <stdbool.h>
#include <stdint.h>

enum { SETTLE_LOG_ERROR, SETTLE_LOG_WARN, SETTLE_LOG_INFO, SETTLE_LOG_DEBUG };

extern _Atomic bool settle_trace_on;

/* Read SETTLE_TRACE and SETTLE_LOG_LEVEL from the environment; call once. */
void settle_log_init(const char *program);

void settle_log(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define settle_tracef(component, ...)                                          \
	do {                                                                   \
		if (settle_trace_on)                                           \
			settle_log(SETTLE_LOG_DEBUG, component, __VA_ARGS__);  \
	} while (0)

/* The same about one branch of one transaction (branch 0: the whole
 * transaction): the text form starts the message with "GID/BRANCH: ", a
 * sink gets them as fields. */
void settle_log_tx(int level, const char *component, const char *gid,
		   uint32_t branch, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Where lines go instead of stderr's text form (settled --log-format
 * json): msg is the formatted message (at most SETTLE_LOG_MSG_MAX bytes,
 * cut), gid "" when none. Called under stderr's lock, from any thread
 * that logs. NULL: the text form again. */
#define SETTLE_LOG_MSG_MAX 2048
typedef void (*settle_log_sink)(int level, const char *program,
				const char *component, uint64_t time_ms,
				const char *gid, uint32_t branch,
				const char *msg);
void settle_log_set_sink(settle_log_sink sink);

/* The level lines are kept at (SETTLE_LOG_ERROR .. SETTLE_LOG_DEBUG; at
 * DEBUG tracing is on too), changed at run time (settled: SIGUSR1 more,
 * SIGUSR2 less). */
void settle_log_set_level(int level);
int settle_log_level(void);
const char *settle_log_level_name(int level);

#define settle_tracef_tx(component, gid, branch, ...)                          \
	do {                                                                   \
		if (settle_trace_on)                                           \
			settle_log_tx(SETTLE_LOG_DEBUG, component, gid,        \
				      branch, __VA_ARGS__);                    \
	} while (0)

/* Wall clock in unix milliseconds. */
uint64_t settle_now_ms(void);

/* Monotonic clock in milliseconds. */
uint64_t settle_mono_ms(void);

#endif /* SETTLE_LOG_H */

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

extern bool settle_trace_on;

/* Read SETTLE_TRACE and SETTLE_LOG_LEVEL from the environment; call once. */
void settle_log_init(const char *program);

void settle_log(int level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define settle_tracef(component, ...)                                          \
	do {                                                                   \
		if (settle_trace_on)                                           \
			settle_log(SETTLE_LOG_DEBUG, component, __VA_ARGS__);  \
	} while (0)

/* Wall clock in unix milliseconds. */
uint64_t settle_now_ms(void);

/* Monotonic clock in milliseconds. */
uint64_t settle_mono_ms(void);

#endif /* SETTLE_LOG_H */

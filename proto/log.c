#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

_Atomic bool settle_trace_on;
/* Read by every thread that logs, set by the loop's signal handler. */
static _Atomic int log_level = SETTLE_LOG_INFO;
static const char *log_program = "settle";
static _Atomic(settle_log_sink) log_sink;
static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void settle_log_init(const char *program)
{
	const char *t = getenv("SETTLE_TRACE");
	const char *l = getenv("SETTLE_LOG_LEVEL");

	if (program != NULL)
		log_program = program;
	settle_trace_on = t != NULL && t[0] != '\0' && strcmp(t, "0") != 0;
	if (settle_trace_on)
		log_level = SETTLE_LOG_DEBUG;
	if (l != NULL) {
		if (strcmp(l, "error") == 0)
			log_level = SETTLE_LOG_ERROR;
		else if (strcmp(l, "warn") == 0)
			log_level = SETTLE_LOG_WARN;
		else if (strcmp(l, "info") == 0)
			log_level = SETTLE_LOG_INFO;
		else if (strcmp(l, "debug") == 0)
			log_level = SETTLE_LOG_DEBUG;
	}
}

static void vlog(int level, const char *component, const char *gid,
		 uint32_t branch, const char *fmt, va_list ap)
{
	settle_log_sink sink = atomic_load(&log_sink);
	char when[32];
	struct timespec ts;
	struct tm tm;

	if (level > atomic_load(&log_level))
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (sink != NULL) {
		char msg[SETTLE_LOG_MSG_MAX];

		vsnprintf(msg, sizeof msg, fmt, ap);
		flockfile(stderr);
		sink(level, log_program, component,
		     (uint64_t)ts.tv_sec * 1000 +
			 (uint64_t)ts.tv_nsec / 1000000,
		     gid != NULL ? gid : "", branch, msg);
		funlockfile(stderr);
		return;
	}
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s.%03ldZ %s %-5s %s: ", when, ts.tv_nsec / 1000000,
		log_program, level_names[level], component);
	if (gid != NULL && branch != 0)
		fprintf(stderr, "%s/%u: ", gid, branch);
	else if (gid != NULL)
		fprintf(stderr, "%s: ", gid);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
}

void settle_log(int level, const char *component, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, component, NULL, 0, fmt, ap);
	va_end(ap);
}

void settle_log_tx(int level, const char *component, const char *gid,
		   uint32_t branch, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, component, gid, branch, fmt, ap);
	va_end(ap);
}

void settle_log_set_sink(settle_log_sink sink)
{
	atomic_store(&log_sink, sink);
}

void settle_log_set_level(int level)
{
	if (level < SETTLE_LOG_ERROR)
		level = SETTLE_LOG_ERROR;
	if (level > SETTLE_LOG_DEBUG)
		level = SETTLE_LOG_DEBUG;
	atomic_store(&log_level, level);
	settle_trace_on = level == SETTLE_LOG_DEBUG;
}

int settle_log_level(void)
{
	return atomic_load(&log_level);
}

const char *settle_log_level_name(int level)
{
	return level >= SETTLE_LOG_ERROR && level <= SETTLE_LOG_DEBUG
		   ? level_names[level]
		   : "?";
}

uint64_t settle_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t settle_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

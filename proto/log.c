#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool settle_trace_on;
static int log_level = SETTLE_LOG_INFO;
static const char *log_program = "settle";

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

void settle_log(int level, const char *component, const char *fmt, ...)
{
	static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
	char when[32];
	struct timespec ts;
	struct tm tm;
	va_list ap;

	if (level > log_level)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
	flockfile(stderr);
	fprintf(stderr, "%s.%03ldZ %s %-5s %s: ", when, ts.tv_nsec / 1000000,
		log_program, names[level], component);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	funlockfile(stderr);
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

/*
 * log_json.c — the JSON form of settled's log (log_json.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <jansson.h>

#include "log.h"
#include "log_json.h"

static uint64_t json_node;

static void json_sink(int level, const char *program, const char *component,
		      uint64_t time_ms, const char *gid, uint32_t branch,
		      const char *msg)
{
	static const char *const levels[] = {"error", "warn", "info", "debug"};
	time_t secs = (time_t)(time_ms / 1000);
	char when[40], day[32];
	struct tm tm;
	json_t *o;
	char *line;

	gmtime_r(&secs, &tm);
	strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when, sizeof when, "%s.%03uZ", day,
		 (unsigned)(time_ms % 1000));
	o = json_pack("{s:s, s:s, s:s, s:I, s:s}", "time", when, "level",
		      levels[level], "program", program, "node",
		      (json_int_t)json_node, "component", component);
	if (o == NULL)
		return;
	if (gid[0] != '\0') {
		json_object_set_new(o, "gid", json_string(gid));
		if (branch != 0)
			json_object_set_new(o, "branch",
					    json_integer((json_int_t)branch));
	}
	/* Text that is not UTF-8 (a peer's bytes in a message) is kept,
	 * its bad bytes replaced, rather than the line lost. */
	json_t *m = json_string(msg);

	if (m == NULL) {
		char safe[SETTLE_LOG_MSG_MAX];
		size_t i;

		for (i = 0; msg[i] != '\0' && i + 1 < sizeof safe; i++)
			safe[i] = (unsigned char)msg[i] < 0x80 ? msg[i] : '?';
		safe[i] = '\0';
		m = json_string(safe);
	}
	json_object_set_new(o, "msg", m);
	line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (line == NULL)
		return;
	fputs(line, stderr);
	fputc('\n', stderr);
	free(line);
}

void coord_log_json_start(uint64_t node)
{
	json_node = node;
	settle_log_set_sink(json_sink);
}

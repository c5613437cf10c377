/*
 * log_json.h — settled --log-format json: each log line one JSON object
 * (made with jansson, never by hand) with time (RFC 3339, UTC, ms),
 * level, program, node, component, gid and branch when the line is about
 * one (settle_log_tx), and msg. Payloads are never logged, in either form.
 */
#ifndef SETTLE_COORD_LOG_JSON_H
#define SETTLE_COORD_LOG_JSON_H

#include <stdint.h>

/* From now on, this process's log lines are JSON, naming node. */
void coord_log_json_start(uint64_t node);

#endif /* SETTLE_COORD_LOG_JSON_H */

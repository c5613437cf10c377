/*
 * metrics_http.h — settled's HTTP port (--metrics ADDR): GET /metrics (the
 * Prometheus text of metrics.h), /healthz (the loop thread is turning)
 * and /readyz (a member with a known leader, caught up). libmicrohttpd,
 * on a thread of its own that only reads the metrics' atomics: a scrape
 * never waits for the loop, and a stalled loop still gets a 503 out.
 * Plain HTTP: the port serves counts and states, never a payload, a gid
 * or anything a certificate protects (docs/SECURITY.md).
 */
#ifndef SETTLE_COORD_METRICS_HTTP_H
#define SETTLE_COORD_METRICS_HTTP_H

#include <stddef.h>

#include "metrics.h"

struct coord_http;

/* Listen on address ("host:port", numeric) and serve m. 0, or
 * SETTLE_EINVAL / SETTLE_EIO with why in errmsg. */
int coord_http_start(const char *address, const struct coord_metrics *m,
		     struct coord_http **out, char *errmsg, size_t errmsg_len);

/* Stop the thread and close the port; NULL is fine. */
void coord_http_stop(struct coord_http *h);

#endif /* SETTLE_COORD_METRICS_HTTP_H */

/*
 * metrics_http.c — the HTTP port of metrics_http.h on libmicrohttpd.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "error.h"
#include "log.h"
#include "metrics_http.h"
#include "stream.h"

/* Scrapers and probes are few: bound what a stranger can hold. */
#define HTTP_MAX_CONNECTIONS 32
#define HTTP_MAX_PER_ADDRESS 8
#define HTTP_IDLE_TIMEOUT_S  10
#define HTTP_MEMORY_PER_CONN (32 * 1024)

struct coord_http {
	struct MHD_Daemon *d;
	const struct coord_metrics *m;
};

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status,
			     const char *type, char *body, size_t len,
			     enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result rv;

	if (r == NULL) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	rv = MHD_queue_response(conn, status, r);
	MHD_destroy_response(r);
	return rv;
}

/* msg and a newline, as text/plain. */
static enum MHD_Result text(struct MHD_Connection *conn, unsigned status,
			    const char *msg)
{
	char *body = malloc(256);

	if (body == NULL)
		return MHD_NO;
	snprintf(body, 256, "%s\n", msg);
	return reply(conn, status, "text/plain; charset=utf-8", body,
		     strlen(body), MHD_RESPMEM_MUST_FREE);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn,
				  const char *url, const char *method,
				  const char *version, const char *upload,
				  size_t *upload_len, void **state)
{
	struct coord_http *h = cls;
	static int first;

	/* The first call sees the headers only: a body would come next;
	 * none is wanted, and one is refused below. */
	if (*state == NULL) {
		*state = &first;
		return MHD_YES;
	}
	if (*upload_len != 0)
		return text(conn, MHD_HTTP_CONTENT_TOO_LARGE, "no body here");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return text(conn, MHD_HTTP_METHOD_NOT_ALLOWED,
			    "GET or HEAD only");
	if (strcmp(url, "/metrics") == 0) {
		char *body;
		size_t len;

		if (coord_metrics_render(h->m, &body, &len) != 0)
			return text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR,
				    "out of memory");
		return reply(conn, MHD_HTTP_OK,
			     "text/plain; version=0.0.4; charset=utf-8", body,
			     len, MHD_RESPMEM_MUST_FREE);
	}
	if (strcmp(url, "/healthz") == 0) {
		if (coord_metrics_alive(h->m, settle_mono_ms()))
			return text(conn, MHD_HTTP_OK, "ok");
		return text(conn, MHD_HTTP_SERVICE_UNAVAILABLE,
			    "the node's loop thread is stalled");
	}
	if (strcmp(url, "/readyz") == 0) {
		int why = coord_metrics_ready(h->m);

		return text(conn,
			    why == COORD_READY ? MHD_HTTP_OK
					       : MHD_HTTP_SERVICE_UNAVAILABLE,
			    coord_metrics_not_ready_text(why));
	}
	return text(conn, MHD_HTTP_NOT_FOUND,
		    "not found: /metrics, /healthz or /readyz");
}

static void on_error(void *cls, const char *fmt, va_list ap)
{
	char line[300];

	vsnprintf(line, sizeof line, fmt, ap);
	line[strcspn(line, "\n")] = '\0';
	settle_log(SETTLE_LOG_WARN, "metrics", "%s", line);
}

int coord_http_start(const char *address, const struct coord_metrics *m,
		     struct coord_http **out, char *errmsg, size_t errmsg_len)
{
	struct sockaddr_storage sa;
	char host[256];
	int port;
	struct coord_http *h;
	unsigned flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG;

	if (rpc_addr_split(address, host, sizeof host, &port) != 0 ||
	    rpc_addr_numeric(host, port, &sa) != 0) {
		snprintf(errmsg, errmsg_len,
			 "--metrics: '%s' is not a numeric HOST:PORT", address);
		return SETTLE_EINVAL;
	}
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h = calloc(1, sizeof *h);
	if (h == NULL)
		return SETTLE_ENOMEM;
	h->m = m;
	errno = 0;
	h->d = MHD_start_daemon(
	    flags, (uint16_t)port, NULL, NULL, on_request, h,
	    /* First: the options after it log through it. */
	    MHD_OPTION_EXTERNAL_LOGGER, on_error, NULL, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
	    (unsigned)HTTP_MAX_CONNECTIONS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)HTTP_MAX_PER_ADDRESS, MHD_OPTION_CONNECTION_TIMEOUT,
	    (unsigned)HTTP_IDLE_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	    (size_t)HTTP_MEMORY_PER_CONN, MHD_OPTION_END);
	if (h->d == NULL) {
		snprintf(errmsg, errmsg_len,
			 "--metrics: cannot listen on %s%s%s", address,
			 errno != 0 ? ": " : "",
			 errno != 0 ? strerror(errno) : "");
		free(h);
		return SETTLE_EIO;
	}
	*out = h;
	return 0;
}

void coord_http_stop(struct coord_http *h)
{
	if (h == NULL)
		return;
	MHD_stop_daemon(h->d);
	free(h);
}

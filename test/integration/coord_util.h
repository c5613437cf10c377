/*
 * coord_util.h — raw protocol access to one settled node, for the tests of
 * the coordinator's guarantees: frames are written and read by hand over a
 * blocking socket, so a test controls every byte (the cmd_id reused on a
 * retry, a body that is not protobuf, a method the node does not serve)
 * and sees the node's answer unfiltered, with no retry and no leader
 * following.
 *
 * Failures of the test's own machinery (cannot connect, out of memory)
 * abort the test with a Criterion assertion; answers of the node, errors
 * included, are returned for the test to check.
 */
#ifndef SETTLE_IT_COORD_UTIL_H
#define SETTLE_IT_COORD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* error.h before settle.h: see settle.h. */
#include "error.h"
#include "settle.h"

#include "harness.h"

/*
 * Suite init: it_setup(), then draw a random number of port pairs from the
 * harness. The harness seeds its port choice with getpid() ^ time, which
 * two test processes started together can share (adjacent pids XOR
 * adjacent milliseconds); they would then pick the same ports, and one
 * test would talk to the other's node. Skipping ahead a random amount
 * keeps the two sequences apart.
 */
void cu_setup(void);

/* One connection to a node; one call at a time. */
struct cu_conn {
	int fd;
	uint64_t next_id;
	char endpoint[64];
};

/* The node's answer to one request. */
struct cu_reply {
	int code;	  /* settle.v1.Code; 0 (OK) when the call succeeded */
	char msg[512];	  /* Error.message, "" when none */
	char leader[128]; /* Error.leader, "" when none */
	uint8_t *body;	  /* response body (malloc'd, may be NULL) */
	size_t len;
};

/* Connect to "127.0.0.1:port" (fails the test if the node does not
 * accept within timeout_ms). Replies are awaited at most 15 s. */
void cu_connect(struct cu_conn *c, const char *endpoint, int timeout_ms);
void cu_close(struct cu_conn *c);

/*
 * Send one request frame with the given method and body bytes (len may be
 * 0), then read frames until the answer to it. Returns 0 with *r filled
 * (free with cu_reply_free), or SETTLE_ECLOSED when the connection broke
 * (the node died or closed it).
 */
int cu_call_raw(struct cu_conn *c, int method, const void *body, size_t len,
		struct cu_reply *r);

/* The two halves of cu_call_raw(), for calls held by the node: send one
 * frame (response as given: a request has it false), and read the next
 * frame, which must answer id. Both return 0 or SETTLE_ECLOSED. */
int cu_send_frame(struct cu_conn *c, uint64_t id, int method, bool response,
		  const void *body, size_t len);
int cu_recv(struct cu_conn *c, uint64_t id, struct cu_reply *r);

/* cu_call_raw() with req packed as the body (NULL: empty body). */
int cu_call(struct cu_conn *c, int method, const ProtobufCMessage *req,
	    struct cu_reply *r);

void cu_reply_free(struct cu_reply *r);

/* Decode r's body as desc; fails the test if r is an error or the body
 * does not decode. Free with protobuf_c_message_free_unpacked(). */
void *cu_unpack(const struct cu_reply *r,
		const ProtobufCMessageDescriptor *desc);

/* A fresh random cmd_id. */
void cu_cmd_id(uint8_t id[16]);

/* ---- One-call helpers: fail the test unless the node answers OK -------- */

/* Begin (gid NULL or "": the node chooses); the gid goes to gid_out (at
 * least SETTLE_GID_BUFSIZE bytes) and the deadline to *deadline_ms (may be
 * NULL). Returns the wire code; on non-OK the outputs are untouched. */
int cu_begin(struct cu_conn *c, const uint8_t id[16], const char *gid,
	     uint32_t timeout_ms, char *gid_out, uint64_t *deadline_ms);
/* Register a branch; *branch_id set on OK. Returns the wire code. */
int cu_register(struct cu_conn *c, const uint8_t id[16], const char *gid,
		const char *endpoint, const void *payload, size_t len,
		uint32_t *branch_id);
/* Commit (commit true) or Rollback with optional wait; *state and
 * *finished set on OK (either may be NULL). Returns the wire code. */
int cu_decide(struct cu_conn *c, bool commit, const uint8_t id[16],
	      const char *gid, bool wait, uint32_t wait_ms, int *state,
	      bool *finished);
/* Query with history; returns the wire code and on OK *tx (free with
 * settle_tx_info_free). */
int cu_query(struct cu_conn *c, const char *gid, Settle__V1__TxInfo **tx);

/* Status of the node (fails the test unless OK); free with
 * settle__v1__status_response__free_unpacked(). */
Settle__V1__StatusResponse *cu_status(struct cu_conn *c);

/* Number of events of the given kind in tx's history. */
size_t cu_events(const Settle__V1__TxInfo *tx, const char *kind);

/* True if the log file at path has a line holding text (false if the
 * file cannot be opened). */
bool cu_log_has(const char *path, const char *text);

/* A TCP connection to n's client port (fails the test if it cannot). */
int cu_dial(const struct it_node *n);
/* Whether the peer closed fd within ms (0: already). */
bool cu_closed_within(int fd, int ms);
/* Whether text shows in the log at path within timeout_ms (polled every
 * 100 ms). */
bool cu_wait_log(const char *path, const char *text, int timeout_ms);

/* True if the log file at path holds a sanitizer report (ASan, LSan or
 * UBSan); the first such line goes to first (size len) when non-NULL. */
bool cu_log_has_sanitizer_report(const char *path, char *first, size_t len);

/* Stop n's node with SIGTERM: it must exit 0 with no sanitizer report in
 * its log (shown whole when there is one). */
void cu_stop_clean(struct it_node *n);

#endif /* SETTLE_IT_COORD_UTIL_H */

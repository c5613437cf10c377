/*
 * client_int.h — what the initiator files of libsettle share: the blocking
 * client (client.c, saga.c, xa.c), the asynchronous one (async*.c) and
 * what both build on (request.c). Not installed; not part of the API.
 */
#ifndef SETTLE_CLIENT_INT_H
#define SETTLE_CLIENT_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "settle.h"

/* Longest endpoint kept, with its NUL; most endpoints in a list. */
#define CLIENT_ENDPOINT_MAX  256
#define CLIENT_MAX_ENDPOINTS 64
/* NOT_LEADER hints followed at once, without a pause: enough for one
 * stale hint, not a loop. */
#define CLIENT_MAX_FOLLOWS 3

/* Split a comma-separated endpoint list into *buf (malloc'd; eps point
 * into it): 0, SETTLE_EINVAL (empty, malformed, over max), SETTLE_ENOMEM. */
int client__endpoints(const char *list, char **buf, const char **eps,
		      size_t max, size_t *n);

/* Fill the zeros of o with the documented defaults. */
void client__opts_defaults(struct settle_client_opts *o);

/* Whether a call failing with err is worth another attempt. */
bool client__transient(int err);

/* The name of a settle.v1.Code ("WRONG_STATE"; "UNKNOWN" for others). */
const char *client__code_name(int code);

/* The wire name of a SETTLE_E* code ("WRONG_STATE"). */
const char *client__wire_name(int err);

/* The method's name for messages ("begin"). */
const char *client__method_name(int method);
/* A TLS context from the application's files into *slot (the one there
 * freed); server: a participant's. 0, or SETTLE_EINVAL with errmsg. */
struct rpc_tls;
int client__tls_set(struct rpc_tls **slot, const struct settle_tls *tls,
		    bool server, char *errmsg, size_t errmsg_len);

/* Why tx (not final, tx->failed > 0) waits for an operator, into buf. */
void client__stuck_text(const Settle__V1__TxInfo *tx, char *buf, size_t len);

/*
 * The retrying call behind every initiator function (see
 * settle_client_call()); extra_ms lengthens each attempt and the retry
 * budget for calls that wait server-side (Commit wait_ms).
 */
int client__call(settle_client *c, int method, const ProtobufCMessage *req,
		 const ProtobufCMessageDescriptor *resp_desc,
		 ProtobufCMessage **resp, uint32_t extra_ms);

/* Send req once, without waiting for its answer, to the node that answered
 * the handle's last call, on that call's connection if it is still open.
 * 1: no such connection, nothing sent (call instead); 0: sent; < 0: the
 * sending failed and the connection is closed (what reached the node is
 * unknown: call again with the same cmd_id). */
int client__send(settle_client *c, int method, const ProtobufCMessage *req);

/* SETTLE_EINVAL with "OP: gid is required" / "... longer than" in the
 * handle's errmsg for a missing (unless may_be_empty) or too long gid. */
int client__check_gid(settle_client *c, const char *op, const char *gid,
		      bool may_be_empty);

/* The checks of client__check_gid() with the text in err (any handle's,
 * or the asynchronous client's). */
int client__gid_check(const char *op, const char *gid, bool may_be_empty,
		      char *err, size_t errlen);

/* The Begin request of settle_begin_branches(), checked (SETTLE_EINVAL,
 * text in err) and set up in *req pointing at the caller's gid, decls and
 * cmd_id; *bd and *bp are the branch arrays it uses (free both after
 * packing; NULL when n is 0). SETTLE_ENOMEM. */
int client__begin_request(const char *gid, uint32_t timeout_ms,
			  const struct settle_branch_decl *decls, size_t n,
			  const uint8_t cmd_id[16],
			  Settle__V1__BeginRequest *req,
			  Settle__V1__BranchDecl **bd,
			  Settle__V1__BranchDecl ***bp, char *err,
			  size_t errlen);

/* The SubmitSaga request of settle_submit_saga(), checked (SETTLE_EINVAL,
 * text in err) and set up in *req pointing at the caller's steps and
 * cmd_id; *wire and *ptrs are the step arrays it uses (free both after
 * packing). SETTLE_ENOMEM. */
int client__saga_request(const char *gid, const struct settle_saga_opts *opts,
			 const struct settle_saga_step *steps, size_t n,
			 const uint8_t cmd_id[16],
			 Settle__V1__SubmitSagaRequest *req,
			 Settle__V1__SagaStep **wire,
			 Settle__V1__SagaStep ***ptrs, char *err,
			 size_t errlen);

/* A fresh cmd_id; SETTLE_EIO with the reason in errmsg. */
int client__new_cmd_id(settle_client *c, const char *op, uint8_t id[16]);

/* Set the handle's error text, printf-style. */
void client__errf(settle_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The Commit (method COMMIT, with one_phase) or Rollback (reason, may be
 * NULL) request for gid, in *creq or *rreq, pointing at gid, reason and
 * cmd_id: the one returned. */
const ProtobufCMessage *client__decide_request(
    int method, const char *gid, const char *reason, bool one_phase,
    uint32_t wait_ms, const uint8_t cmd_id[16], Settle__V1__CommitRequest *creq,
    Settle__V1__RollbackRequest *rreq);

/* Commit (one_phase: CommitRequest.one_phase, XA) or Rollback (reason,
 * may be NULL) of gid; as settle_commit() / settle_rollback(). heuristic
 * (may be NULL) gets DecisionResponse.heuristic (XA). */
int client__decide(settle_client *c, int method, const char *gid,
		   const char *reason, bool one_phase, uint32_t wait_ms,
		   int *state, bool *finished, int *heuristic);

/* settle_query() with the request's wait_ms (0: answer at once). */
int client__query(settle_client *c, const char *gid, bool history,
		  uint32_t wait_ms, Settle__V1__TxInfo **out);

/* Sleep, restarting after signals. */
void client__sleep_ms(uint32_t ms);

#endif /* SETTLE_CLIENT_INT_H */

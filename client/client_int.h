/*
 * client_int.h — what client.c shares with the other initiator files of
 * libsettle (saga.c, xa.c). Not installed; not part of the API.
 */
#ifndef SETTLE_CLIENT_INT_H
#define SETTLE_CLIENT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "settle.h"

/*
 * The retrying call behind every initiator function (see
 * settle_client_call()); extra_ms lengthens each attempt and the retry
 * budget for calls that wait server-side (Commit wait_ms).
 */
int client__call(settle_client *c, int method, const ProtobufCMessage *req,
		 const ProtobufCMessageDescriptor *resp_desc,
		 ProtobufCMessage **resp, uint32_t extra_ms);

/* SETTLE_EINVAL with "OP: gid is required" / "... longer than" in the
 * handle's errmsg for a missing (unless may_be_empty) or too long gid. */
int client__check_gid(settle_client *c, const char *op, const char *gid,
		      bool may_be_empty);

/* A fresh cmd_id; SETTLE_EIO with the reason in errmsg. */
int client__new_cmd_id(settle_client *c, const char *op, uint8_t id[16]);

/* Set the handle's error text, printf-style. */
void client__errf(settle_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

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

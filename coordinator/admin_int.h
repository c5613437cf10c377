/*
 * admin_int.h — internals shared by admin.c (requests, endpoint
 * directory) and admin_op.c (the steps of a change). Not a contract: see
 * admin.h.
 */
#ifndef SETTLE_COORD_ADMIN_INT_H
#define SETTLE_COORD_ADMIN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "admin.h"
#include "coord.h"
#include "wal/entry.h"
#include "wal/members.h"

enum step {
	ADD_LEVEL,	 /* ask the joiner its feature level */
	ADD_LEVEL_ASKED, /* waiting for its answer */
	ADD_DIRECTORY,	 /* record endpoints through the log */
	ADD_RECORDED,	 /* waiting for those proposals */
	ADD_RAFT,	 /* raft_add: a spare */
	ADD_ROLE,	 /* raft_assign towards the wanted role */
	ADD_DONE,
	REMOVE_RAFT,
	REMOVE_FORGET, /* drop the node's row from the members table */
	REMOVE_DONE,
	TRANSFER_START,
	TRANSFER_WAIT, /* polling until a new leader is known */
};

struct admin_op {
	struct coord *c;
	struct rpc_call *call;
	int method;
	enum step step;
	uint64_t id;
	char raft[WAL_ENDPOINT_MAX + 1];
	char client[WAL_ENDPOINT_MAX + 1];
	/* Who asked: "certificate NAME", or "client ADDR" in plaintext;
	 * recorded with the node's row from feature level 8. */
	char asked_by[WAL_ASKED_BY_MAX + 1];
	int role;	    /* add: the raft role wanted at the end */
	int assigning;	    /* add: the role being assigned, for messages */
	unsigned tries;	    /* add: promotion attempts */
	unsigned proposals; /* CmdMember in flight */
	int err;	    /* first failure of the step in flight */
	int raft_rv;	    /* its raft code, 0 if it was not raft's */
	char errmsg[256];
	uint64_t wait_until; /* monotonic ms: end of TRANSFER_WAIT */
	/* add: the STATUS call to the joiner, and what it said (level 0:
	 * older than feature levels; probe_err: no answer). */
	struct rpc_client *probe;
	int probe_err;
	uint32_t probe_level;
	struct raft_change change;
	struct raft_transfer transfer;
	uv_timer_t timer;
};

/* The change in flight. One coordinator per process, so one slot. */

/* ---- admin.c ---- */
const struct raft_server *admin__server_of(struct coord *c, uint64_t id);
/* "voter", "standby", "spare" for a raft role. */
const char *admin__role_name(int role);
/* Current leader's id, 0 if unknown. */
uint64_t admin__leader_id(struct coord *c);
/* Fill m from server s; buf (len bytes) holds the client endpoint. */
void admin__member_of(struct coord *c, const struct raft_server *s,
		      Settle__V1__Member *m, char *buf, size_t len);
/* Answer call with an error; NOT_LEADER carries the leader's endpoint,
 * or becomes UNAVAILABLE when none is known. */
void admin__answer_fail(struct coord *c, struct rpc_call *call, int err,
			const char *msg);

/* ---- admin_op.c ---- */
/* Run the op's next step (its first one too). */
void admin__advance(struct admin_op *op);
/* Answer a transfer with leader lid, and end the op. */
void admin__reply_leader(struct admin_op *op, uint64_t lid);
/* End the op; its call must have been answered. */
void admin__op_free(struct admin_op *op);

#endif /* SETTLE_COORD_ADMIN_INT_H */

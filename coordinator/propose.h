/*
 * propose.h — the propose stage (propose.c): commands from dispatch, the
 * driver and the node's own producers (the cluster clock's entries, the
 * feature level) are queued during a turn of the loop and appended as one
 * raft entry; each proposer hears its result once the entry is applied.
 */
#ifndef SETTLE_COORD_PROPOSE_H
#define SETTLE_COORD_PROPOSE_H

#include <stddef.h>
#include <stdint.h>

#include "settle.pb-c.h"

struct coord;

/*
 * Called once a proposal is committed and applied (err 0, res the FSM's
 * result, valid only during the call) or failed (err SETTLE_ENOTLEADER when
 * leadership was lost or never held — the entry may still commit, so a
 * client must retry with the same cmd_id; other SETTLE_E* codes).
 */
typedef void (*coord_propose_cb)(struct coord *c, void *data, int err,
				 const Settle__V1__CmdResult *res);

/*
 * Append cmd through raft. cmd->time_ms is stamped with the leader's clock
 * when 0; an empty cmd_id gets 16 random bytes. cmd is encoded at once and
 * not kept. cb fires later, never from inside this call. From feature
 * level 3 the command waits for the end of this turn of the loop
 * (coord_propose_flush()), and the commands of a turn go into one entry
 * (a CmdBatch): one raft round for all of them. Fails at once with
 * SETTLE_ENOTLEADER, SETTLE_EUNAVAIL (stopping), SETTLE_ETOOBIG,
 * SETTLE_EINVAL (cmd_id), SETTLE_ENOMEM.
 */
int coord_propose(struct coord *c, Settle__V1__Command *cmd,
		  coord_propose_cb cb, void *data);
/* Append the commands waiting (node.c: before the loop polls, and after
 * the I/O callbacks of a turn). Their callbacks may run from here. */
void coord_propose_flush(struct coord *c);
/* Answer every waiting command with err instead (stopping). */
void coord_propose_drop(struct coord *c, int err);

/* Fill buf with 16 random bytes (loop thread only). */
void coord_random_id(uint8_t buf[16]);
/* now_ms << 16 plus a count, strictly increasing over the process's
 * calls (past now_ms << 16 only when called more than 2^16 times a ms,
 * or when the clock went back): what the leader's gids and command ids
 * begin with, so that they come in order (loop thread only). */
uint64_t coord_stamp(uint64_t now_ms);
/* A command id the leader makes (a batch's, the driver's results): unix
 * ms in the first 6 bytes and a count in the next 2 (coord_stamp()),
 * big-endian, then random bytes, like libsettle's settle_cmd_id(). */
void coord_cmd_id(uint8_t buf[16]);

#endif /* SETTLE_COORD_PROPOSE_H */

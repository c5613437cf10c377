/*
 * driver_int.h — what the phase-2 driver (driver.c) shares with its XA part
 * (xa_drive.c). Loop thread only.
 */
#ifndef SETTLE_COORD_DRIVER_INT_H
#define SETTLE_COORD_DRIVER_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "breaker.h"
#include "coord.h"
#include "coordinator/xa.h"
#include "wal/entry.h"

#define FLIGHT_BUCKETS 4096

struct coord_xa_pool;

struct flight {
	struct flight *next;
	uint32_t branch_id; /* 0: the transaction itself (deadline) */
	char gid[WAL_GID_MAX + 1];
};

/* A deadline on the cluster clock (expiry.c). */
struct expiry {
	uint64_t at; /* expires_clock_ms */
	char gid[WAL_GID_MAX + 1];
};

struct participant {
	struct participant *next;
	struct rpc_client *client;
	size_t metrics_slot;	      /* its endpoint in metrics.h */
	struct coord_breaker breaker; /* breaker.h */
};

struct coord_driver {
	struct coord *c;
	bool active; /* leader, and the barrier of its term applied */
	uint64_t epoch;
	struct flight *flights[FLIGHT_BUCKETS];
	size_t n_flights;
	struct participant *participants;
	uv_timer_t kick;
	bool kick_armed;
	char (*hot)[WAL_GID_MAX + 1];
	size_t n_hot;
	uint64_t last_gc_ms;
	bool gc_in_flight;
	/* XA: the RM connections (NULL without --xa-rm), the next recovery
	 * scan (0: none planned) and the RMs whose scan is running. */
	struct coord_xa_pool *xa_pool;
	uint64_t xa_next_scan_ms;
	unsigned xa_scans_running;
	struct coord_xa_stats xa_stats;
	/* When this node last became a ready leader: the raft index applied
	 * then (its term's barrier) and the wall clock. A branch whose
	 * phase 2 started at or below that index was decided under an
	 * earlier leader. */
	uint64_t active_since_index;
	uint64_t active_since_ms;
	/* Deadlines on the cluster clock: a min-heap (expiry.c). */
	struct expiry *exp;
	size_t n_exp, cap_exp;
	bool exp_oom; /* the last load missed some */
	/* Answers of participants waiting to go into one CmdResults (at
	 * feature level 2): proposed from the loop's next turn, or at once
	 * when RESULTS_PER_CMD wait. */
	struct op **queue;
	size_t n_queue, cap_queue;
};

/* One call to a participant or RM, or one proposal, in flight. */
struct op {
	struct coord_driver *d;
	uint64_t epoch;
	char gid[WAL_GID_MAX + 1];
	uint32_t branch_id;
	int phase; /* TCC: CONFIRMING or CANCELLING; XA: XA_BRANCH_* */
	uint32_t attempt;
	bool saga;		/* a saga step: phase is a SagaPhase */
	uint32_t retry_base_ms; /* the step's backoff (0: the node's) */
	uint32_t retry_max_ms;
	bool xa_voted_ok;  /* XA: the branch was prepared */
	bool xa_recovery;  /* XA: a recovery scan's commit or rollback */
	bool xa_inherited; /* XA: decided before this leader was ready */
	char rm[COORD_XA_RM_NAME_MAX + 1];
	/* A participant call: its endpoint's metrics slot, its kind
	 * (metrics.h) and when it was sent (uv_hrtime). */
	size_t metrics_slot;
	int metrics_kind;
	uint64_t sent_ns;
	/* The endpoint called (its breaker is found again by it: the
	 * participant may be closed meanwhile, on a TLS reload). Not 0:
	 * no call went, the breaker is open until then (wall ms). */
	char endpoint[WAL_ENDPOINT_MAX + 1];
	uint64_t deferred_until;
	/* The answer to record (TCC: br; saga: sr), error text in err. */
	Settle__V1__CmdBranchResult br;
	Settle__V1__CmdStepResult sr;
	char err[WAL_TEXT_MAX / 2];
};

/* Add (gid, bid) to the in-flight set: false when it is there already (or
 * out of memory), and then nothing may be started for it. */
bool coord_drv_flight_add(struct coord_driver *d, const char *gid,
			  uint32_t bid);
void coord_drv_flight_del(struct coord_driver *d, const char *gid,
			  uint32_t bid);

/* A new op of the current epoch for (gid, bid), or NULL (ENOMEM). */
struct op *coord_drv_op_new(struct coord_driver *d, const char *gid,
			    uint32_t bid);

/* Propose cmd for o; once applied (or failed) o leaves the in-flight set
 * (if its epoch is current) and is freed. */
void coord_drv_propose(struct coord_driver *d, struct op *o,
		       Settle__V1__Command *cmd);

/* Whether tx can still be rolled back by its deadline on the cluster
 * clock: ACTIVE, XA_PREPARED without an xid, a backward saga running;
 * and begun with a cluster expiry. */
bool coord_drv_can_expire(const Settle__V1__TxRecord *tx);
/* Remind the driver of gid at cluster clock `at`. 0 or SETTLE_ENOMEM. */
int coord_drv_expiry_add(struct coord_driver *d, const char *gid, uint64_t at);
/* Take the earliest reminder due at cluster clock now (0: none is) into
 * gid; false when there is none. */
bool coord_drv_expiry_pop(struct coord_driver *d, uint64_t now,
			  char gid[WAL_GID_MAX + 1]);
/* Whether some transaction can still expire (drops the reminders at the
 * top whose transaction moved on). */
bool coord_drv_expiry_pending(struct coord_driver *d);
/* Fill the heap from the store (every transaction that can expire). */
void coord_drv_expiry_load(struct coord_driver *d);
void coord_drv_expiry_clear(struct coord_driver *d);
/* An idle ready leader with deadlines pending appends an empty clock
 * command (clock.c: CLOCK_IDLE_MS), so that the cluster clock in the log
 * stays recent for the next leader. */
void coord_drv_clock_entry(struct coord_driver *d);

/* ---- driver_call.c: calls to participants and their answers ---- */

/* Call branch b of tx (TCC: phase CONFIRMING or CANCELLING) at now, unless
 * a call or proposal of it is in flight already. */
void coord_drv_call_branch(struct coord_driver *d,
			   const Settle__V1__TxRecord *tx,
			   const Settle__V1__BranchRecord *b, int phase,
			   uint64_t now);
/* Call a saga step's ACTION or COMPENSATE (phase is a SagaPhase). */
void coord_drv_call_step(struct coord_driver *d,
			 const Settle__V1__BranchRecord *b, int phase,
			 uint64_t now);
/* A saga step whose action is not called because the saga compensates:
 * its result is recorded as if the call had failed with "not called: the
 * saga is compensating", without calling the participant. */
void coord_drv_step_not_called(struct coord_driver *d,
			       const Settle__V1__BranchRecord *b);
/* Propose the answers queued this turn (one CmdResults per
 * RESULTS_PER_CMD), or drop them (their branches leave the in-flight set
 * and are called again later). */
void coord_drv_queue_flush(struct coord_driver *d);
void coord_drv_queue_drop(struct coord_driver *d);
/* Close the kept participant connections. */
void coord_drv_participants_close(struct coord_driver *d);

/* ---- driver.c ---- */

/* Step `step` of saga gid answered its action OK and its result is
 * queued: call the next step's action if it waits for this one alone,
 * before that result is applied (feature level 9), even while `step`
 * itself is still PENDING in the store, called early, within the depth
 * the FSM awaits (level 10; wal/saga.h, "Early calls"). */
void coord_drv_call_early(struct coord_driver *d, const char *gid,
			  uint32_t step, uint64_t now);

/* Run the driver at the start of the next loop turn (once however often
 * it is asked). */
void coord_drv_kick(struct coord_driver *d);

/* Capped exponential backoff with jitter for attempt (1 = the first);
 * base/max 0: the node's --retry-base / --retry-max. */
uint64_t coord_drv_backoff_ms(const struct coord_config *cfg, uint32_t attempt,
			      uint32_t base_ms, uint32_t max_ms);

#endif /* SETTLE_COORD_DRIVER_INT_H */

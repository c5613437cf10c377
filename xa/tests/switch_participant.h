/*
 * switch_participant.h — a TCC participant for the switch's cluster test
 * that only records what the coordinator sends: for each CONFIRM and
 * CANCEL, the gid and the XID (BranchRequest.xid). It answers OK at once,
 * so Confirm and Cancel always succeed. A listening thread and one thread
 * per connection, on 127.0.0.1 at a free port.
 */
#ifndef SETTLE_XA_TESTS_SWITCH_PARTICIPANT_H
#define SETTLE_XA_TESTS_SWITCH_PARTICIPANT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SP_MAX_SEEN 64
#define SP_MAX_CONN 32

struct sp_call {
	int method; /* Settle__V1__Method: CONFIRM or CANCEL */
	char gid[129];
	uint8_t xid[134];
	size_t xid_len;
};

struct sp {
	int lfd;
	char endpoint[64];
	pthread_t thread;
	pthread_t conns[SP_MAX_CONN];
	int nconns;
	volatile bool stop;
	pthread_mutex_t lock;
	struct sp_call seen[SP_MAX_SEEN]; /* guarded by lock */
	int nseen;
};

void sp_start(struct sp *p);
void sp_stop(struct sp *p);

/*
 * Wait up to timeout_ms for a call of method on gid; true and its XID in
 * xid/len (xid at least 134 bytes) when one came.
 */
bool sp_wait(struct sp *p, int method, const char *gid, uint8_t *xid,
	     size_t *len, int timeout_ms);

#endif /* SETTLE_XA_TESTS_SWITCH_PARTICIPANT_H */

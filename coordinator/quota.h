/*
 * quota.h — open transactions per client, so that one client beginning
 * transactions it never finishes cannot take the node from the others.
 *
 * A client is the name in its TLS certificate, or without TLS its source
 * address (dispatch.c says which). The leader counts the TCC and XA
 * transactions each client began through it that are still open (ACTIVE or
 * XA_PREPARED), and refuses its next Begin at --max-open-per-client. Every node
 * follows the applied changes (coord_quota_tx), so counts fall as transactions
 * end wherever they were begun; a new leader starts from zero (it admits more,
 * never fewer). Sagas are not counted: they run to their end by
 * themselves.
 */
#ifndef SETTLE_COORD_QUOTA_H
#define SETTLE_COORD_QUOTA_H

#include <stdbool.h>
#include <stdint.h>

#include "settle.pb-c.h"

#define COORD_QUOTA_BUCKETS 4096
/* Longest client key kept (longer ones are cut). */
#define COORD_QUOTA_KEY_MAX 96

struct coord_quota {
	uint32_t max; /* 0: no limit */
	struct quota_client *clients[COORD_QUOTA_BUCKETS];
	struct quota_tx *txs[COORD_QUOTA_BUCKETS];
};

void coord_quota_init(struct coord_quota *q, uint32_t max);
void coord_quota_free(struct coord_quota *q);

/* How many transactions client addr has open; whether it may begin one
 * more. */
bool coord_quota_allows(const struct coord_quota *q, const char *addr,
			uint32_t *open);

/* A client's sweeps are at least this far apart. */
#define COORD_QUOTA_SWEEP_EVERY_MS 1000u

/* Release addr's transactions that open(data, gid) says have ended: a
 * Begin answered again after its transaction ended (a retry) is counted
 * but never released by a change. Called when addr reaches the limit; does
 * nothing within COORD_QUOTA_SWEEP_EVERY_MS of addr's last sweep (now_ms:
 * a monotonic clock). */
void coord_quota_sweep(struct coord_quota *q, const char *addr, uint64_t now_ms,
		       bool (*open)(void *data, const char *gid), void *data);

/* gid was begun by addr (a repeat is ignored). */
void coord_quota_begun(struct coord_quota *q, const char *gid,
		       const char *addr);

/* tx changed (applied on this node): counted no more once it is neither
 * ACTIVE nor XA_PREPARED. */
void coord_quota_tx(struct coord_quota *q, const Settle__V1__TxRecord *tx);

#endif /* SETTLE_COORD_QUOTA_H */

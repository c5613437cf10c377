/*
 * quota.c — open transactions per client (quota.h).
 */
#include "quota.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wal/entry.h"

struct quota_client {
	struct quota_client *next;
	uint32_t open;
	uint64_t swept_ms; /* the last sweep, 0: none */
	char addr[COORD_QUOTA_KEY_MAX];
};

struct quota_tx {
	struct quota_tx *next;
	struct quota_client *client;
	char gid[WAL_GID_MAX + 1];
};

static size_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ull;
	return (size_t)(h % COORD_QUOTA_BUCKETS);
}

void coord_quota_init(struct coord_quota *q, uint32_t max)
{
	memset(q, 0, sizeof *q);
	q->max = max;
}

void coord_quota_free(struct coord_quota *q)
{
	for (size_t i = 0; i < COORD_QUOTA_BUCKETS; i++) {
		while (q->txs[i] != NULL) {
			struct quota_tx *t = q->txs[i];

			q->txs[i] = t->next;
			free(t);
		}
		while (q->clients[i] != NULL) {
			struct quota_client *c = q->clients[i];

			q->clients[i] = c->next;
			free(c);
		}
	}
}

static struct quota_client **client_find(const struct coord_quota *q,
					 const char *addr)
{
	struct quota_client **pp =
	    (struct quota_client **)&q->clients[hash(addr)];

	while (*pp != NULL && strcmp((*pp)->addr, addr) != 0)
		pp = &(*pp)->next;
	return pp;
}

static struct quota_tx **tx_find(const struct coord_quota *q, const char *gid)
{
	struct quota_tx **pp = (struct quota_tx **)&q->txs[hash(gid)];

	while (*pp != NULL && strcmp((*pp)->gid, gid) != 0)
		pp = &(*pp)->next;
	return pp;
}

bool coord_quota_allows(const struct coord_quota *q, const char *addr,
			uint32_t *open)
{
	struct quota_client *c = *client_find(q, addr);

	*open = c != NULL ? c->open : 0;
	return q->max == 0 || *open < q->max;
}

void coord_quota_begun(struct coord_quota *q, const char *gid, const char *addr)
{
	struct quota_client **cp, *c;
	struct quota_tx **tp = tx_find(q, gid), *t;

	if (q->max == 0 || *tp != NULL)
		return;
	cp = client_find(q, addr);
	if (*cp == NULL) {
		*cp = calloc(1, sizeof **cp);
		if (*cp == NULL)
			return; /* uncounted: admits more, never fewer */
		snprintf((*cp)->addr, sizeof(*cp)->addr, "%s", addr);
	}
	c = *cp;
	t = calloc(1, sizeof *t);
	if (t == NULL)
		return;
	wal_gid_copy(t->gid, gid);
	t->client = c;
	*tp = t;
	c->open++;
}

/* Drop the entry *tp (its client freed with its last one). */
static void tx_drop(struct coord_quota *q, struct quota_tx **tp)
{
	struct quota_tx *t = *tp;
	struct quota_client **cp;

	*tp = t->next;
	if (--t->client->open == 0) {
		cp = client_find(q, t->client->addr);
		*cp = t->client->next;
		free(t->client);
	}
	free(t);
}

void coord_quota_sweep(struct coord_quota *q, const char *addr, uint64_t now_ms,
		       bool (*open)(void *data, const char *gid), void *data)
{
	struct quota_client *c = *client_find(q, addr);

	/* A sweep reads every transaction the client holds: a client
	 * hammering Begins at its limit gets one a period, not one a Begin
	 * (which made each refusal cost the leader thousands of reads). */
	if (c == NULL || (c->swept_ms != 0 &&
			  now_ms - c->swept_ms < COORD_QUOTA_SWEEP_EVERY_MS))
		return;
	c->swept_ms = now_ms;

	for (size_t i = 0; c != NULL && i < COORD_QUOTA_BUCKETS; i++) {
		struct quota_tx **tp = &q->txs[i];

		while (*tp != NULL) {
			bool last = (*tp)->client == c && c->open == 1;

			if ((*tp)->client == c && !open(data, (*tp)->gid)) {
				tx_drop(q, tp);
				if (last)
					return; /* c is freed */
			} else {
				tp = &(*tp)->next;
			}
		}
	}
}

void coord_quota_tx(struct coord_quota *q, const Settle__V1__TxRecord *tx)
{
	struct quota_tx **tp;

	if (tx->state == SETTLE__V1__TX_STATE__ACTIVE ||
	    tx->state == SETTLE__V1__TX_STATE__XA_PREPARED)
		return;
	tp = tx_find(q, tx->gid);
	if (*tp != NULL)
		tx_drop(q, tp);
}

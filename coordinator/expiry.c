/*
 * expiry.c — the leader's schedule of transaction deadlines, on the
 * cluster clock (clock.c).
 *
 * LMDB's `due` index is keyed by wall time (deadline_ms), which a leader
 * whose clock is ahead would find passed for everything in flight, and
 * one whose clock is behind would find passed for nothing. So deadlines
 * are kept apart: a min-heap of (expires_clock_ms, gid) over the
 * transactions that can still time out, filled from the store when this
 * node becomes a ready leader and on each begin applied while it leads.
 * An entry is only a reminder: when it comes up, the driver reads the
 * transaction and acts on what the store says (a transaction that
 * finished meanwhile is simply dropped), so the heap never needs updating
 * when a transaction moves on.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "coord.h"
#include "coordinator/driver_int.h"
#include "error.h"
#include "log.h"
#include "propose.h"

static void swap(struct expiry *a, struct expiry *b)
{
	struct expiry t = *a;
	*a = *b;
	*b = t;
}

bool coord_drv_can_expire(const Settle__V1__TxRecord *tx)
{
	if (tx->expires_clock_ms == 0)
		return false; /* begun before the cluster clock: `due` */
	switch (tx->state) {
	case SETTLE__V1__TX_STATE__ACTIVE:
		return true;
	case SETTLE__V1__TX_STATE__XA_PREPARED:
		return tx->xid.len == 0; /* with an xid only its TM decides */
	case SETTLE__V1__TX_STATE__SAGA_RUNNING:
		return tx->recovery == SETTLE__V1__SAGA_RECOVERY__BACKWARD;
	default:
		return false;
	}
}

int coord_drv_expiry_add(struct coord_driver *d, const char *gid, uint64_t at)
{
	if (d->n_exp == d->cap_exp) {
		size_t cap = d->cap_exp != 0 ? 2 * d->cap_exp : 256;
		struct expiry *e = realloc(d->exp, cap * sizeof *e);
		if (e == NULL)
			return SETTLE_ENOMEM;
		d->exp = e;
		d->cap_exp = cap;
	}
	size_t i = d->n_exp++;
	d->exp[i].at = at;
	snprintf(d->exp[i].gid, sizeof d->exp[i].gid, "%s", gid);
	while (i > 0 && d->exp[(i - 1) / 2].at > d->exp[i].at) {
		swap(&d->exp[(i - 1) / 2], &d->exp[i]);
		i = (i - 1) / 2;
	}
	return 0;
}

bool coord_drv_expiry_pop(struct coord_driver *d, uint64_t now,
			  char gid[WAL_GID_MAX + 1])
{
	if (d->n_exp == 0 || now == 0 || d->exp[0].at > now)
		return false;
	memcpy(gid, d->exp[0].gid, WAL_GID_MAX + 1);
	d->exp[0] = d->exp[--d->n_exp];
	for (size_t i = 0;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < d->n_exp && d->exp[l].at < d->exp[m].at)
			m = l;
		if (r < d->n_exp && d->exp[r].at < d->exp[m].at)
			m = r;
		if (m == i)
			break;
		swap(&d->exp[m], &d->exp[i]);
		i = m;
	}
	return true;
}

bool coord_drv_expiry_pending(struct coord_driver *d)
{
	char gid[WAL_GID_MAX + 1];
	MDB_txn *txn;

	if (d->n_exp == 0 || store_read_begin(d->c->store, &txn) != 0)
		return d->n_exp != 0;
	/* Drop reminders of transactions that moved on, from the top, so
	 * that a finished one keeps nothing going; below a live one they
	 * wait for their time. */
	while (d->n_exp != 0) {
		Settle__V1__TxRecord *tx = NULL;
		bool live =
		    store_tx_get(d->c->store, txn, d->exp[0].gid, &tx) == 0 &&
		    coord_drv_can_expire(tx) &&
		    tx->expires_clock_ms == d->exp[0].at;

		if (tx != NULL)
			settle__v1__tx_record__free_unpacked(tx, NULL);
		if (live)
			break;
		coord_drv_expiry_pop(d, UINT64_MAX, gid);
	}
	store_read_end(txn);
	return d->n_exp != 0;
}

void coord_drv_expiry_clear(struct coord_driver *d)
{
	free(d->exp);
	d->exp = NULL;
	d->n_exp = 0;
	d->cap_exp = 0;
}

static bool load_one(void *data, const Settle__V1__TxRecord *tx)
{
	struct coord_driver *d = data;

	if (coord_drv_can_expire(tx) &&
	    coord_drv_expiry_add(d, tx->gid, tx->expires_clock_ms) != 0)
		d->exp_oom = true;
	return false; /* keep nothing: the scan only fills the heap */
}

void coord_drv_expiry_load(struct coord_driver *d)
{
	static const int states[] = {
	    SETTLE__V1__TX_STATE__ACTIVE,
	    SETTLE__V1__TX_STATE__XA_PREPARED,
	    SETTLE__V1__TX_STATE__SAGA_RUNNING,
	};
	struct coord *c = d->c;
	MDB_txn *txn;

	coord_drv_expiry_clear(d);
	d->exp_oom = false;
	if (store_read_begin(c->store, &txn) != 0) {
		d->exp_oom = true;
		return;
	}
	for (size_t i = 0; i < sizeof states / sizeof states[0]; i++) {
		Settle__V1__TxRecord **none;
		size_t n;

		if (store_tx_list(c->store, txn, states[i], NULL, 1, load_one,
				  d, &none, &n, NULL) != 0)
			d->exp_oom = true;
		else
			store_txs_free(none, n);
	}
	store_read_end(txn);
	if (d->exp_oom)
		settle_log(SETTLE_LOG_ERROR, "driver",
			   "could not schedule every deadline: the missing "
			   "ones wait for the scan of `due` (wall clock)");
	settle_tracef("driver", "%zu deadlines scheduled", d->n_exp);
}

static void clock_entry_applied(struct coord *c, void *data, int err,
				const Settle__V1__CmdResult *res)
{
	(void)data;
	(void)res;
	coord_clock_entry(c, false);
	if (err != 0)
		settle_tracef("clock", "clock entry: %s", settle_strerror(err));
}

void coord_drv_clock_entry(struct coord_driver *d)
{
	struct coord *c = d->c;
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdClock op = SETTLE__V1__CMD_CLOCK__INIT;

	if (!coord_clock_idle(c) || !coord_drv_expiry_pending(d))
		return;
	cmd.op_case = SETTLE__V1__COMMAND__OP_CLOCK;
	cmd.clock = &op;
	if (coord_propose(c, &cmd, clock_entry_applied, NULL) == 0)
		coord_clock_entry(c, true);
}

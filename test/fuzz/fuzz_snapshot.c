/*
 * fuzz_snapshot — store_restore() on mutated snapshots, as a node installs
 * them from disk at start or from its leader over the network.
 *
 * The store holds a realistic history (history.c) with applied index 0,
 * and the baseline is its snapshot at index 1000. Each input is restored
 * twice: as it is, then with its checksum recomputed, so that mutations
 * reach the structural checks behind the checksum (the seeds hold the
 * baseline plain and compressed, as the coordinator writes it). Checks:
 *   - a rejected snapshot leaves the store exactly as it was (its snapshot
 *     is byte for byte the baseline);
 *   - an accepted one leaves a store that is consistent (every index
 *     agrees with the records: list by state, due timers, counts) and
 *     that opens again after a close.
 * After an accepted restore the baseline is restored again.
 *
 * Strict by default: restore checks every row against its record since the
 * findings of this target were fixed (their inputs are refused in
 * test/unit/storage/test_snapshot_check.c), so a new one fails the run.
 * FUZZ_STRICT=0 in the environment only reports them.
 */
#include <raft.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "history.h"

#define SNAP_INDEX 1000
#define MAX_TXS	   100000

static struct store *store;
static uint8_t *baseline;
static size_t baseline_len;

static void set_applied(uint64_t index)
{
	MDB_txn *txn;

	FUZZ_CHECK(store_write_begin(store, &txn) == 0, "write begin");
	FUZZ_CHECK(store_applied_put(store, txn, index) == 0, "applied put");
	FUZZ_CHECK(store_write_commit(store, txn) == 0, "commit");
}

static void init(void)
{
	if (store != NULL)
		return;
	setenv("FUZZ_STRICT", "1", 0); /* keeps an explicit FUZZ_STRICT=0 */
	store = history_store(0, NULL);
	/* Applied index 0: every snapshot with an index > 0 is installed. */
	set_applied(0);
	FUZZ_CHECK(
	    store_snapshot(store, SNAP_INDEX, &baseline, &baseline_len) == 0,
	    "baseline snapshot");
}

static void check_unchanged(const char *why)
{
	uint8_t *now;
	size_t len;

	FUZZ_CHECK(store_snapshot(store, SNAP_INDEX, &now, &len) == 0,
		   "snapshot after %s: %s", why, store_errmsg(store));
	FUZZ_CHECK(len == baseline_len && memcmp(now, baseline, len) == 0,
		   "the store changed after %s", why);
	raft_free(now);
}

/* The input under test, for findings. */
static const uint8_t *input;
static size_t input_len;

/*
 * Every index must agree with the records it indexes. A disagreement is a
 * finding: fatal by default, reported and passed over with FUZZ_STRICT=0.
 * Returns false after a finding.
 */
static bool check_consistent(void)
{
	Settle__V1__TxRecord **all = NULL, **some = NULL;
	size_t n_all = 0, n_some = 0;
	/* TCC and XA states: the history holds no saga. */
	static const int states[] = {1, 2, 3,
				     4, 5, SETTLE__V1__TX_STATE__XA_PREPARED};
	const size_t n_states = sizeof(states) / sizeof(states[0]);
	size_t tally[32] = {0};
	uint64_t due_min = 0, due;
	struct store_counts counts;
	bool more, ok = false;
	int rv;

	rv = store_tx_list(store, NULL, 0, NULL, MAX_TXS, NULL, NULL, &all,
			   &n_all, &more);
	if (rv != 0) {
		fuzz_finding(input, input_len,
			     "restored store cannot list its txs: %s",
			     store_errmsg(store));
		return false;
	}
	for (size_t i = 0; i < n_all; i++) {
		Settle__V1__TxInfo *info = NULL;
		int st = (int)all[i]->state;

		bool known = false;

		for (size_t k = 0; k < n_states; k++)
			known = known || st == states[k];
		if (!known) {
			fuzz_finding(input, input_len,
				     "restored tx in state %d", st);
			goto out;
		}
		tally[st]++;
		if (all[i]->due_ms != 0 &&
		    (due_min == 0 || all[i]->due_ms < due_min))
			due_min = all[i]->due_ms;
		if (store_tx_info(store, NULL, all[i], true, true, &info) !=
		    0) {
			fuzz_finding(input, input_len,
				     "restored tx has no readable info: %s",
				     store_errmsg(store));
			goto out;
		}
		settle__v1__tx_info__free_unpacked(info, NULL);
	}
	for (size_t k = 0; k < n_states; k++) {
		int st = states[k];

		rv = store_tx_list(store, NULL, st, NULL, MAX_TXS, NULL, NULL,
				   &some, &n_some, &more);
		if (rv != 0) {
			fuzz_finding(input, input_len,
				     "restored store cannot list by state: %s",
				     store_errmsg(store));
			goto out;
		}
		bool same = n_some == tally[st];
		for (size_t i = 0; i < n_some; i++)
			same = same && (int)some[i]->state == st;
		store_txs_free(some, n_some);
		if (!same) {
			fuzz_finding(input, input_len,
				     "restored by_state index disagrees with "
				     "the tx records (state %d)",
				     st);
			goto out;
		}
	}
	FUZZ_CHECK(store_counts_get(store, NULL, &counts) == 0, "counts");
	for (size_t k = 0; k < n_states; k++) {
		int st = states[k];

		if (counts.by_state[st] != tally[st]) {
			fuzz_finding(input, input_len,
				     "restored counts disagree with the tx "
				     "records (state %d)",
				     st);
			goto out;
		}
	}
	FUZZ_CHECK(store_due_min(store, NULL, &due) == 0, "due min");
	if (due != due_min) {
		fuzz_finding(input, input_len,
			     "restored due index disagrees with the tx "
			     "records");
		goto out;
	}
	ok = true;
out:
	store_txs_free(all, n_all);
	return ok;
}

/* Close and open the store again; false (after a finding, with a fresh
 * store from the history) when it does not open. */
static bool reopen(void)
{
	struct store *again;
	char dir[128];
	char err[256];

	snprintf(dir, sizeof(dir), "%s", history_store_dir(store));
	store_close(store);
	if (store_open(dir, NULL, &again, err, sizeof(err)) != 0) {
		fuzz_finding(input, input_len,
			     "a restored store does not open again: %s", err);
		history_store_reopened(store, NULL);
		fuzz_tempdir_remove(dir);
		store = history_store(0, NULL);
		set_applied(0);
		return false;
	}
	history_store_reopened(store, again);
	store = again;
	return true;
}

static void try_restore(const uint8_t *buf, size_t len, const char *what)
{
	uint64_t index, applied;
	int rv = store_restore(store, buf, len);

	if (rv != 0) {
		FUZZ_CHECK(rv == SETTLE_EPROTO || rv == SETTLE_EFULL,
			   "restore of %s: unexpected %d", what, rv);
		FUZZ_CHECK(store_errmsg(store)[0] != '\0',
			   "rejected without a reason");
		check_unchanged("a rejected restore");
		return;
	}
	FUZZ_CHECK(store_snapshot_index(buf, len, &index) == 0,
		   "accepted snapshot has no index");
	FUZZ_CHECK(store_applied_get(store, NULL, &applied) == 0, "applied");
	if (index == 0) {
		/* At or below the applied index: nothing done. */
		FUZZ_CHECK(applied == 0, "applied index moved to %llu",
			   (unsigned long long)applied);
		check_unchanged("a restore at an old index");
		return;
	}
	FUZZ_CHECK(applied == index, "applied %llu after restoring %llu",
		   (unsigned long long)applied, (unsigned long long)index);
	if (check_consistent() && reopen())
		check_consistent();
	/* Back to the baseline. */
	set_applied(0);
	FUZZ_CHECK(store_restore(store, baseline, baseline_len) == 0,
		   "baseline restore: %s", store_errmsg(store));
	set_applied(0);
	check_unchanged("restoring the baseline");
}

static uint64_t fnv1a(const uint8_t *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *fixed;
	uint64_t sum;

	init();
	input = data;
	input_len = size;
	try_restore(data, size, "the input");
	if (size < 8)
		return 0;
	fixed = malloc(size);
	FUZZ_CHECK(fixed != NULL, "out of memory");
	memcpy(fixed, data, size);
	sum = fnv1a(fixed, size - 8);
	for (int i = 0; i < 8; i++)
		fixed[size - 8 + i] = (uint8_t)(sum >> (8 * i));
	if (memcmp(fixed, data, size) != 0) {
		input = fixed;
		try_restore(fixed, size, "the input with its checksum fixed");
	}
	free(fixed);
	return 0;
}

void fuzz_seeds(void)
{
	struct store *empty;
	uint8_t *buf;
	size_t len;
	char dir[128];
	char err[256];

	MDB_txn *txn;

	init();
	fuzz_seed_add(baseline, baseline_len);
	/* The baseline as the coordinator writes it: one LZ4 frame. */
	FUZZ_CHECK(store_read_begin(store, &txn) == 0, "read begin");
	FUZZ_CHECK(store_snapshot_txn(store, txn, SNAP_INDEX,
				      STORE_SNAPSHOT_LZ4, &buf, &len) == 0,
		   "compressed snapshot: %s", store_work_errmsg(store));
	store_read_end(txn);
	fuzz_seed_add(buf, len);
	raft_free(buf);
	fuzz_tempdir(dir, sizeof(dir));
	FUZZ_CHECK(store_open(dir, NULL, &empty, err, sizeof(err)) == 0,
		   "empty store: %s", err);
	FUZZ_CHECK(store_snapshot(empty, 5, &buf, &len) == 0, "empty snapshot");
	fuzz_seed_add(buf, len);
	raft_free(buf);
	store_close(empty);
	fuzz_tempdir_remove(dir);
}

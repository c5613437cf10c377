/*
 * fuzz_branch — a participant's side of the network: the BranchRequest
 * body of TRY / CONFIRM / CANCEL as the participant SDK unpacks and checks
 * it (client/participant.c on_call), the barrier it enters, and the demo
 * bank's payload parser and ledger arithmetic (examples/bank_ledger.c).
 *
 * Input: [u8 op][BranchRequest body]. A request that passes the SDK's
 * checks enters the barrier in a write txn of a real bank env; on RUN the
 * payload is parsed and applied; the txn commits when the effect
 * succeeded, so later inputs meet repeats, cancelled branches and
 * reservations. Checks: the barrier answers RUN/SKIP/REFUSE and never an
 * error for a well-formed request; a parsed payload formats and parses
 * back to itself; no account ever breaks 0 <= frozen <= balance,
 * incoming >= 0.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

#include "settle_participant.h"

#include "bank_ledger.h"
#include "fuzz.h"

#define GC_EVERY 2000

static struct bank bank;
static settle_barrier *barrier;
static unsigned inputs;
static unsigned long n_entered, n_applied;

static void stats(void)
{
	if (getenv("FUZZ_VERBOSE") != NULL)
		fprintf(stderr,
			"fuzz_branch: %lu entered the barrier, %lu "
			"applied\n",
			n_entered, n_applied);
}

static void init(void)
{
	char dir[128];
	char err[256];

	if (barrier != NULL)
		return;
	fuzz_tempdir(dir, sizeof(dir));
	FUZZ_CHECK(bank_open(&bank, dir, 0, err, sizeof(err)) == 0, "bank: %s",
		   err);
	FUZZ_CHECK(bank_seed(&bank, "alice=1000,bob=500,carol=0", err,
			     sizeof(err)) == 0,
		   "seed: %s", err);
	FUZZ_CHECK(settle_barrier_open(bank.env, &barrier) == 0, "barrier");
	atexit(stats);
}

static void check_payload(const uint8_t *p, size_t len, const char *account,
			  int64_t amount)
{
	char buf[160], again[BANK_ACCOUNT_MAX + 1];
	int64_t amount2;
	int n;

	FUZZ_CHECK(bank_account_name_ok(account, strlen(account)),
		   "parsed a bad account name");
	FUZZ_CHECK(amount != 0 && amount >= -BANK_AMOUNT_MAX &&
		       amount <= BANK_AMOUNT_MAX,
		   "parsed amount out of range");
	n = bank_payload_format(buf, sizeof(buf), account, amount);
	FUZZ_CHECK(n > 0, "format failed");
	FUZZ_CHECK(bank_payload_parse((const uint8_t *)buf, (size_t)n, again,
				      sizeof(again), &amount2) == 0,
		   "a formatted payload does not parse");
	FUZZ_CHECK(strcmp(again, account) == 0 && amount2 == amount,
		   "payload round trip changed it");
	(void)p;
	(void)len;
}

static int check_account(void *data, const struct bank_account *a)
{
	(void)data;
	FUZZ_CHECK(a->frozen >= 0 && a->frozen <= a->balance &&
		       a->incoming >= 0,
		   "account broke its invariant: balance %lld frozen %lld "
		   "incoming %lld",
		   (long long)a->balance, (long long)a->frozen,
		   (long long)a->incoming);
	return 0;
}

static void run(int op, const Settle__V1__BranchRequest *req)
{
	char account[BANK_ACCOUNT_MAX + 1];
	char err[256] = "";
	int64_t amount;
	MDB_txn *txn;
	int action = -1;
	int rv;

	FUZZ_CHECK(mdb_txn_begin(bank.env, NULL, 0, &txn) == 0, "txn");
	rv = settle_barrier_enter(barrier, txn, req->gid, req->branch_id, op,
				  &action);
	FUZZ_CHECK(rv == 0, "barrier enter: %s", settle_strerror(rv));
	n_entered++;
	FUZZ_CHECK(action == SETTLE_BARRIER_RUN ||
		       action == SETTLE_BARRIER_SKIP ||
		       action == SETTLE_BARRIER_REFUSE,
		   "barrier action %d", action);
	if (action == SETTLE_BARRIER_REFUSE) {
		mdb_txn_abort(txn);
		return;
	}
	if (action == SETTLE_BARRIER_RUN) {
		if (bank_payload_parse(req->payload.data, req->payload.len,
				       account, sizeof(account),
				       &amount) != 0) {
			mdb_txn_abort(txn);
			return;
		}
		check_payload(req->payload.data, req->payload.len, account,
			      amount);
		rv = bank_apply(&bank, txn, op, account, amount, err,
				sizeof(err));
		FUZZ_CHECK(rv == 0 || rv == SETTLE_EFAILURE, "apply: %d", rv);
		FUZZ_CHECK(rv == 0 || err[0] != '\0', "failure without reason");
		if (rv != 0) {
			mdb_txn_abort(txn);
			return;
		}
	}
	FUZZ_CHECK(mdb_txn_commit(txn) == 0, "commit");
	n_applied += action == SETTLE_BARRIER_RUN;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Settle__V1__BranchRequest *req;
	MDB_txn *txn;
	int op;

	init();
	if (size < 1)
		return 0;
	op = 1 + data[0] % 3; /* enum settle_op */
	req = settle__v1__branch_request__unpack(NULL, size - 1, data + 1);
	if (req == NULL)
		return 0;
	/* The SDK's own checks before the barrier. */
	if (req->gid != NULL && req->gid[0] != '\0' &&
	    strlen(req->gid) <= SETTLE_GID_MAX)
		run(op, req);
	settle__v1__branch_request__free_unpacked(req, NULL);

	if (++inputs % GC_EVERY == 0) {
		size_t removed;
		FUZZ_CHECK(mdb_txn_begin(bank.env, NULL, 0, &txn) == 0, "txn");
		FUZZ_CHECK(settle_barrier_gc(barrier, txn, 0, 0, &removed) == 0,
			   "gc");
		FUZZ_CHECK(mdb_txn_commit(txn) == 0, "gc commit");
	}
	FUZZ_CHECK(mdb_txn_begin(bank.env, NULL, MDB_RDONLY, &txn) == 0,
		   "read txn");
	FUZZ_CHECK(bank_each(&bank, txn, check_account, NULL) == 0, "each");
	mdb_txn_abort(txn);
	return 0;
}

static void seed(int op, const char *gid, uint32_t branch, const char *payload)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	uint8_t buf[512];
	size_t n;

	req.gid = (char *)gid;
	req.branch_id = branch;
	req.resource = "accounts";
	req.payload.data = (uint8_t *)payload;
	req.payload.len = strlen(payload);
	req.attempt = 1;
	req.deadline_ms = 1700000000000ull;
	n = settle__v1__branch_request__get_packed_size(&req);
	FUZZ_CHECK(n + 1 <= sizeof(buf), "seed too big");
	buf[0] = (uint8_t)(op - 1);
	settle__v1__branch_request__pack(&req, buf + 1);
	fuzz_seed_add(buf, n + 1);
}

void fuzz_seeds(void)
{
	seed(SETTLE_OP_TRY, "tx-1", 1, "account=alice;amount=-300");
	seed(SETTLE_OP_TRY, "tx-1", 2, "account=bob;amount=300");
	seed(SETTLE_OP_CONFIRM, "tx-1", 1, "account=alice;amount=-300");
	seed(SETTLE_OP_CONFIRM, "tx-1", 2, "account=bob;amount=300");
	seed(SETTLE_OP_CANCEL, "tx-2", 1, "account=carol;amount=-1");
	seed(SETTLE_OP_TRY, "tx-2", 1,
	     "account=carol;amount=+1000000000000000");
}

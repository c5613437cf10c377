/*
 * fuzz_request — request bodies as settled's dispatch (coordinator/
 * dispatch.c) unpacks and acts on them: the bytes after the method come
 * straight from a client.
 *
 * Input: [u8 method selector][body]. The body is unpacked with the
 * method's descriptor; then, mirroring dispatch.c (which is static inside
 * settled, so its steps are repeated here; keep them in step):
 *   Begin/RegisterBranch/Commit/Rollback: the checks dispatch makes
 *     (cmd_id length, gid, timeout), the Command it builds, and
 *     wal_command_validate(); a command that passes is encoded as a raft
 *     entry, must decode to the same verdict, and is applied through the
 *     FSM to a store holding a realistic history (it must apply without a
 *     storage error);
 *   TxRetry/TxResolve: the same, with the operator's CmdRetry /
 *     CmdResolve (t-committing in the history has a FAILED branch);
 *   Query/List: the reads dispatch makes with the request's fields
 *     (store_tx_get / store_tx_info, store_tx_list with after_gid).
 */
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "fuzz.h"
#include "history.h"
#include "wal/entry.h"

#define RESET_EVERY    2000
#define NOW_MS	       1700000100000ull
#define MAX_TIMEOUT_MS (24u * 3600u * 1000u)

enum {
	M_BEGIN,
	M_REGISTER,
	M_COMMIT,
	M_ROLLBACK,
	M_QUERY,
	M_LIST,
	M_RETRY,
	M_RESOLVE,
	M_N
};

static const ProtobufCMessageDescriptor *descs[M_N] = {
    &settle__v1__begin_request__descriptor,
    &settle__v1__register_branch_request__descriptor,
    &settle__v1__commit_request__descriptor,
    &settle__v1__rollback_request__descriptor,
    &settle__v1__query_request__descriptor,
    &settle__v1__list_request__descriptor,
    &settle__v1__tx_retry_request__descriptor,
    &settle__v1__tx_resolve_request__descriptor,
};

static struct store *store;
static struct fsm fsm;
static uint64_t index_;
static unsigned inputs;

static unsigned long n_unpacked, n_applied, n_read;

static void stats(void)
{
	if (getenv("FUZZ_VERBOSE") != NULL)
		fprintf(stderr,
			"fuzz_request: %lu unpacked, %lu applied, %lu reads\n",
			n_unpacked, n_applied, n_read);
}

static void reset(void)
{
	if (store != NULL)
		history_store_close(store, &fsm);
	store = history_store(0, &fsm);
	index_ = history_count();
	inputs = 0;
}

/* What the coordinator does with a command it built: validate, then (as
 * the raft log and every node's FSM will) encode, decode, apply. */
static void propose(Settle__V1__Command *cmd)
{
	Settle__V1__Command *back = NULL;
	Settle__V1__CmdResult *r = NULL;
	uint8_t *buf;
	size_t len;
	char msg[256] = "";
	int rv;

	cmd->time_ms = NOW_MS;
	if (wal_command_validate(cmd, msg, sizeof(msg)) != 0) {
		FUZZ_CHECK(msg[0] != '\0', "rejected without a reason");
		return;
	}
	rv = wal_entry_encode(cmd, &buf, &len);
	if (rv == SETTLE_ETOOBIG)
		return;
	FUZZ_CHECK(rv == 0, "encode of a valid command: %d", rv);
	FUZZ_CHECK(wal_entry_decode(buf, len, &back) == 0,
		   "a valid command does not decode from its entry");
	FUZZ_CHECK(wal_command_validate(back, msg, sizeof(msg)) == 0,
		   "valid before the log, invalid after: %s", msg);
	settle__v1__command__free_unpacked(back, NULL);
	rv = fsm_apply(&fsm, ++index_, buf, len, &r);
	raft_free(buf);
	if (rv == SETTLE_EFULL) {
		reset();
		return;
	}
	FUZZ_CHECK(rv == 0, "apply of a valid command failed: %s", fsm.errmsg);
	n_applied++;
	FUZZ_CHECK(r->code != SETTLE__V1__CODE__INVALID_ARGUMENT,
		   "validated command applied as invalid: %s",
		   r->message != NULL ? r->message : "");
	settle__v1__cmd_result__free_unpacked(r, NULL);
}

static void do_begin(Settle__V1__BeginRequest *req)
{
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdBegin op = SETTLE__V1__CMD_BEGIN__INIT;
	uint32_t timeout;

	if (req->cmd_id.len != STORE_CMD_ID_LEN)
		return;
	timeout = req->timeout_ms != 0 ? req->timeout_ms : 60000;
	if (timeout > MAX_TIMEOUT_MS)
		return;
	if (req->gid[0] != '\0' && wal_gid_validate(req->gid) != 0)
		return;
	op.gid = req->gid[0] != '\0' ? req->gid : "chosen-by-coordinator";
	op.deadline_ms = NOW_MS + timeout;
	op.mode = SETTLE__V1__TX_MODE__TCC;
	cmd.cmd_id = req->cmd_id;
	cmd.op_case = SETTLE__V1__COMMAND__OP_BEGIN;
	cmd.begin = &op;
	propose(&cmd);
}

static void do_register(Settle__V1__RegisterBranchRequest *req)
{
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdRegister op = SETTLE__V1__CMD_REGISTER__INIT;

	if (req->cmd_id.len != STORE_CMD_ID_LEN)
		return;
	op.gid = req->gid;
	op.endpoint = req->endpoint;
	op.resource = req->resource;
	op.payload = req->payload;
	cmd.cmd_id = req->cmd_id;
	cmd.op_case = SETTLE__V1__COMMAND__OP_REGISTER;
	cmd.register_ = &op;
	propose(&cmd);
}

static void do_decide(ProtobufCBinaryData id, char *gid, int decision,
		      char *reason)
{
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdDecide op = SETTLE__V1__CMD_DECIDE__INIT;

	if (id.len != STORE_CMD_ID_LEN)
		return;
	op.gid = gid;
	op.decision = decision;
	op.reason = reason;
	cmd.cmd_id = id;
	cmd.op_case = SETTLE__V1__COMMAND__OP_DECIDE;
	cmd.decide = &op;
	propose(&cmd);
}

static void do_retry(Settle__V1__TxRetryRequest *req)
{
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdRetry op = SETTLE__V1__CMD_RETRY__INIT;

	if (req->cmd_id.len != STORE_CMD_ID_LEN)
		return;
	op.gid = req->gid;
	op.branch_id = req->branch_id;
	op.reason = req->reason;
	cmd.cmd_id = req->cmd_id;
	cmd.op_case = SETTLE__V1__COMMAND__OP_RETRY;
	cmd.retry = &op;
	propose(&cmd);
}

static void do_resolve(Settle__V1__TxResolveRequest *req)
{
	Settle__V1__Command cmd = SETTLE__V1__COMMAND__INIT;
	Settle__V1__CmdResolve op = SETTLE__V1__CMD_RESOLVE__INIT;

	if (req->cmd_id.len != STORE_CMD_ID_LEN)
		return;
	op.gid = req->gid;
	op.branch_id = req->branch_id;
	op.reason = req->reason;
	cmd.cmd_id = req->cmd_id;
	cmd.op_case = SETTLE__V1__COMMAND__OP_RESOLVE;
	cmd.resolve = &op;
	propose(&cmd);
}

static void do_query(Settle__V1__QueryRequest *req)
{
	Settle__V1__TxRecord *tx = NULL;
	Settle__V1__TxInfo *info = NULL;
	MDB_txn *txn;
	int rv;

	if (wal_gid_validate(req->gid) != 0)
		return;
	FUZZ_CHECK(store_read_begin(store, &txn) == 0, "read begin");
	rv = store_tx_get(store, txn, req->gid, &tx);
	FUZZ_CHECK(rv == 0 || rv == SETTLE_ENOTFOUND, "tx get: %d", rv);
	if (rv == 0) {
		FUZZ_CHECK(store_tx_info(store, txn, tx, true, req->history,
					 &info) == 0,
			   "tx info: %s", store_errmsg(store));
		settle__v1__tx_info__free_unpacked(info, NULL);
		settle__v1__tx_record__free_unpacked(tx, NULL);
	}
	store_read_end(txn);
}

static void do_list(Settle__V1__ListRequest *req)
{
	Settle__V1__TxRecord **txs = NULL;
	size_t count = 0;
	bool more = false;
	MDB_txn *txn;
	size_t limit;
	int rv;

	if (req->state < 0 || req->state > SETTLE__V1__TX_STATE__ROLLED_BACK)
		return;
	limit =
	    req->limit == 0 ? 1000 : (req->limit > 10000 ? 10000 : req->limit);
	FUZZ_CHECK(store_read_begin(store, &txn) == 0, "read begin");
	rv = store_tx_list(store, txn, req->state, req->after_gid, limit, NULL,
			   NULL, &txs, &count, &more);
	FUZZ_CHECK(rv == 0, "list: %s", store_errmsg(store));
	FUZZ_CHECK(count <= limit, "list returned %zu > %zu", count, limit);
	for (size_t i = 0; i < count; i++) {
		Settle__V1__TxInfo *info = NULL;
		FUZZ_CHECK(req->after_gid[0] == '\0' ||
			       strcmp(txs[i]->gid, req->after_gid) > 0,
			   "list went back before after_gid");
		if (req->state != 0)
			FUZZ_CHECK((int)txs[i]->state == (int)req->state,
				   "list by state returned another state");
		FUZZ_CHECK(
		    store_tx_info(store, txn, txs[i], true, false, &info) == 0,
		    "tx info: %s", store_errmsg(store));
		settle__v1__tx_info__free_unpacked(info, NULL);
	}
	store_read_end(txn);
	store_txs_free(txs, count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCMessage *msg;
	int m;

	if (store == NULL) {
		atexit(stats);
		reset();
	} else if (++inputs > RESET_EVERY) {
		reset();
	}
	if (size < 1)
		return 0;
	m = data[0] % M_N;
	msg = protobuf_c_message_unpack(descs[m], NULL, size - 1, data + 1);
	if (msg == NULL)
		return 0;
	n_unpacked++;
	n_read += m == M_QUERY || m == M_LIST;
	switch (m) {
	case M_BEGIN:
		do_begin((Settle__V1__BeginRequest *)msg);
		break;
	case M_REGISTER:
		do_register((Settle__V1__RegisterBranchRequest *)msg);
		break;
	case M_COMMIT: {
		Settle__V1__CommitRequest *r = (Settle__V1__CommitRequest *)msg;
		do_decide(r->cmd_id, r->gid,
			  SETTLE__V1__DECISION__DECIDE_COMMIT, "client commit");
		break;
	}
	case M_ROLLBACK: {
		Settle__V1__RollbackRequest *r =
		    (Settle__V1__RollbackRequest *)msg;
		do_decide(r->cmd_id, r->gid,
			  SETTLE__V1__DECISION__DECIDE_ROLLBACK,
			  r->reason[0] != '\0' ? r->reason : "client rollback");
		break;
	}
	case M_QUERY:
		do_query((Settle__V1__QueryRequest *)msg);
		break;
	case M_RETRY:
		do_retry((Settle__V1__TxRetryRequest *)msg);
		break;
	case M_RESOLVE:
		do_resolve((Settle__V1__TxResolveRequest *)msg);
		break;
	default:
		do_list((Settle__V1__ListRequest *)msg);
		break;
	}
	protobuf_c_message_free_unpacked(msg, NULL);
	return 0;
}

/* ---- Seeds ----------------------------------------------------------------
 */

static void seed(int m, const ProtobufCMessage *msg)
{
	uint8_t buf[1024];
	size_t n = protobuf_c_message_get_packed_size(msg);

	FUZZ_CHECK(n + 1 <= sizeof(buf), "seed too big");
	buf[0] = (uint8_t)m;
	protobuf_c_message_pack(msg, buf + 1);
	fuzz_seed_add(buf, n + 1);
}

void fuzz_seeds(void)
{
	static uint8_t id[16] = {0xc0, 1, 2,  3,  4,  5,  6,  7,
				 8,    9, 10, 11, 12, 13, 14, 15};
	Settle__V1__BeginRequest b = SETTLE__V1__BEGIN_REQUEST__INIT;
	Settle__V1__RegisterBranchRequest r =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	Settle__V1__CommitRequest c = SETTLE__V1__COMMIT_REQUEST__INIT;
	Settle__V1__RollbackRequest rb = SETTLE__V1__ROLLBACK_REQUEST__INIT;
	Settle__V1__QueryRequest q = SETTLE__V1__QUERY_REQUEST__INIT;
	Settle__V1__ListRequest l = SETTLE__V1__LIST_REQUEST__INIT;
	Settle__V1__TxRetryRequest rt = SETTLE__V1__TX_RETRY_REQUEST__INIT;
	Settle__V1__TxResolveRequest rs = SETTLE__V1__TX_RESOLVE_REQUEST__INIT;

	b.cmd_id.data = id;
	b.cmd_id.len = sizeof(id);
	b.gid = "new-tx";
	b.timeout_ms = 30000;
	seed(M_BEGIN, &b.base);
	b.gid = "";
	seed(M_BEGIN, &b.base);

	r.cmd_id.data = id;
	r.cmd_id.len = sizeof(id);
	r.gid = "t-active";
	r.endpoint = "127.0.0.1:7103";
	r.resource = "accounts";
	r.payload.data = (uint8_t *)"account=zoe;amount=3";
	r.payload.len = strlen("account=zoe;amount=3");
	seed(M_REGISTER, &r.base);
	r.endpoint = "[fe80::1]:65535";
	seed(M_REGISTER, &r.base);

	c.cmd_id.data = id;
	c.cmd_id.len = sizeof(id);
	c.gid = "t-active";
	c.wait = 1;
	c.wait_ms = 5000;
	seed(M_COMMIT, &c.base);

	rb.cmd_id.data = id;
	rb.cmd_id.len = sizeof(id);
	rb.gid = "t-committing";
	rb.reason = "operator";
	seed(M_ROLLBACK, &rb.base);

	q.gid = "t-committing";
	q.history = 1;
	seed(M_QUERY, &q.base);

	rt.cmd_id.data = id;
	rt.cmd_id.len = sizeof(id);
	rt.gid = "t-committing";
	rt.reason = "participant fixed";
	seed(M_RETRY, &rt.base);
	rt.branch_id = 2;
	seed(M_RETRY, &rt.base);
	rs.cmd_id.data = id;
	rs.cmd_id.len = sizeof(id);
	rs.gid = "t-committing";
	rs.branch_id = 2;
	rs.reason = "done by hand";
	seed(M_RESOLVE, &rs.base);

	l.state = SETTLE__V1__TX_STATE__COMMITTING;
	l.limit = 2;
	l.after_gid = "t-a";
	seed(M_LIST, &l.base);
	l.state = 0;
	l.stuck_only = 1;
	l.after_gid = "";
	seed(M_LIST, &l.base);
}

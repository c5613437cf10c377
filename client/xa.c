/*
 * xa.c — libsettle's XA calls (settle.h, "XA"): begin, RM branches,
 * votes, prepare, one-phase commit, decisions with their heuristic, an
 * operator's heuristic decision, recover and forget, on client.c's
 * retrying call with one cmd_id per logical call. Only the XID codec of
 * libsettlecore is used here: no database client library is linked.
 */
#include "error.h"

#include "settle.h"

#include <stdio.h>
#include <string.h>

#include "client_int.h"
#include "xa/xid.h"

/* The gid of an XA transaction is the gtrid of its RM branches' XIDs. */
#define XA_GID_MAX XA_XID_PART_MAX
#define XA_RM_MAX  64
#define XA_ERR_MAX 1024

/* Copy a gid answered by the coordinator into the caller's buffer. */
static int copy_gid(settle_client *c, const char *op, const char *g, char *out,
		    size_t cap)
{
	size_t len = strlen(g != NULL ? g : "");

	if (out == NULL)
		return 0;
	if (len >= cap) {
		client__errf(c, "%s: gid buffer too small for %zu bytes", op,
			     len);
		return SETTLE_ETOOBIG;
	}
	memcpy(out, g != NULL ? g : "", len + 1);
	return 0;
}

/* The local checks of settle_xa_begin(); the coordinator repeats them. */
static int check_begin(settle_client *c, const char *gid, const uint8_t *xid,
		       size_t xid_len, bool join)
{
	struct xa_xid x;
	int rv;

	if (xid == NULL && xid_len != 0) {
		client__errf(c, "xa begin: xid is NULL with length %zu",
			     xid_len);
		return SETTLE_EINVAL;
	}
	if (xid == NULL) {
		if (join) {
			client__errf(c, "xa begin: join needs the xid of the "
					"transaction to join");
			return SETTLE_EINVAL;
		}
		rv = client__check_gid(c, "xa begin", gid, true);
		if (rv == 0 && gid != NULL && strlen(gid) > XA_GID_MAX) {
			client__errf(c,
				     "xa begin: gid longer than %d bytes (it "
				     "is the gtrid of the branches' XIDs)",
				     XA_GID_MAX);
			rv = SETTLE_EINVAL;
		}
		return rv;
	}
	if (gid != NULL && gid[0] != '\0') {
		client__errf(c, "xa begin: give a gid or an xid, not both (the "
				"gid is derived from the xid)");
		return SETTLE_EINVAL;
	}
	if (xa_xid_decode(xid, xid_len, &x) != 0) {
		client__errf(c, "xa begin: xid is not a valid XID wire "
				"encoding (formatID, lengths 1-64, gtrid, "
				"bqual)");
		return SETTLE_EINVAL;
	}
	return 0;
}

int settle_xa_begin(settle_client *c, const char *gid, const uint8_t *xid,
		    size_t xid_len, bool join, uint32_t timeout_ms,
		    char *gid_out, size_t gid_out_len, bool *joined)
{
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	Settle__V1__BeginResponse *resp = NULL;
	uint8_t id[16];
	int rv;

	if (joined != NULL)
		*joined = false;
	if (c == NULL)
		return SETTLE_EINVAL;
	rv = check_begin(c, gid, xid, xid_len, join);
	if (rv == 0)
		rv = client__new_cmd_id(c, "xa begin", id);
	if (rv != 0)
		return rv;
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.gid = (char *)(gid != NULL ? gid : "");
	req.timeout_ms = timeout_ms;
	req.mode = SETTLE__V1__TX_MODE__XA;
	req.xid.data = (uint8_t *)xid;
	req.xid.len = xid != NULL ? xid_len : 0;
	req.join = join;
	rv = client__call(c, SETTLE__V1__METHOD__BEGIN, &req.base,
			  &settle__v1__begin_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		return rv;
	if (joined != NULL)
		*joined = resp->joined;
	rv = copy_gid(c, "xa begin", resp->gid, gid_out, gid_out_len);
	settle__v1__begin_response__free_unpacked(resp, NULL);
	return rv;
}

static int check_rm(settle_client *c, const char *rm);

/* An older cluster: begin, then register each branch. */
static int begin_then_register(settle_client *c, const char *gid,
			       uint32_t timeout_ms,
			       struct settle_xa_rm_branch *br, size_t n,
			       char *gid_out, size_t gid_out_len)
{
	char own[SETTLE_GID_BUFSIZE];
	int rv;

	rv = settle_xa_begin(c, gid, NULL, 0, false, timeout_ms, own,
			     sizeof(own), NULL);
	for (size_t i = 0; rv == 0 && i < n; i++)
		rv = settle_xa_register_rm(c, own, br[i].rm, &br[i].branch_id,
					   br[i].xid, sizeof(br[i].xid),
					   &br[i].xid_len);
	if (rv == 0)
		rv = copy_gid(c, "xa begin", own, gid_out, gid_out_len);
	return rv;
}

int settle_xa_begin_rms(settle_client *c, const char *gid, uint32_t timeout_ms,
			struct settle_xa_rm_branch *br, size_t n, char *gid_out,
			size_t gid_out_len)
{
	Settle__V1__BeginRequest req = SETTLE__V1__BEGIN_REQUEST__INIT;
	Settle__V1__BeginResponse *resp = NULL;
	Settle__V1__BranchDecl ds[SETTLE_XA_VOTES_MAX];
	Settle__V1__BranchDecl *dp[SETTLE_XA_VOTES_MAX];
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = check_begin(c, gid, NULL, 0, false);
	if (rv != 0)
		return rv;
	if (n == 0 || n > SETTLE_XA_VOTES_MAX || br == NULL) {
		client__errf(c, "xa begin: 1..%d RM branches",
			     SETTLE_XA_VOTES_MAX);
		return SETTLE_EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		rv = check_rm(c, br[i].rm);
		if (rv != 0)
			return rv;
		settle__v1__branch_decl__init(&ds[i]);
		ds[i].rm = (char *)br[i].rm;
		dp[i] = &ds[i];
	}
	rv = client__new_cmd_id(c, "xa begin", id);
	if (rv != 0)
		return rv;
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.gid = (char *)(gid != NULL ? gid : "");
	req.timeout_ms = timeout_ms;
	req.mode = SETTLE__V1__TX_MODE__XA;
	req.n_branches = n;
	req.branches = dp;
	rv = client__call(c, SETTLE__V1__METHOD__BEGIN, &req.base,
			  &settle__v1__begin_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv == SETTLE_ENOMETHOD)
		/* Nothing was begun: a member runs an older release. */
		return begin_then_register(c, gid, timeout_ms, br, n, gid_out,
					   gid_out_len);
	if (rv != 0)
		return rv;
	if (resp->n_branch_ids != n || resp->n_xids != n) {
		client__errf(c,
			     "xa begin: %zu RM branches declared, %zu ids and "
			     "%zu XIDs answered",
			     n, resp->n_branch_ids, resp->n_xids);
		settle__v1__begin_response__free_unpacked(resp, NULL);
		return SETTLE_EPROTO;
	}
	for (size_t i = 0; i < n; i++) {
		if (resp->xids[i].len > sizeof(br[i].xid)) {
			client__errf(c, "xa begin: XID %zu of %zu bytes", i,
				     resp->xids[i].len);
			settle__v1__begin_response__free_unpacked(resp, NULL);
			return SETTLE_EPROTO;
		}
		br[i].branch_id = resp->branch_ids[i];
		memcpy(br[i].xid, resp->xids[i].data, resp->xids[i].len);
		br[i].xid_len = resp->xids[i].len;
	}
	rv = copy_gid(c, "xa begin", resp->gid, gid_out, gid_out_len);
	settle__v1__begin_response__free_unpacked(resp, NULL);
	return rv;
}

/* An RM name as the coordinators configure them: [A-Za-z0-9_.-]{1,64}. */
static int check_rm(settle_client *c, const char *rm)
{
	static const char ok[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "abcdefghijklmnopqrstuvwxyz0123456789_.-";
	size_t len = rm != NULL ? strnlen(rm, XA_RM_MAX + 1) : 0;

	if (len == 0 || len > XA_RM_MAX || strspn(rm, ok) != len) {
		client__errf(c,
			     "xa register: rm must be 1-%d bytes of "
			     "A-Z a-z 0-9 _ . -",
			     XA_RM_MAX);
		return SETTLE_EINVAL;
	}
	return 0;
}

int settle_xa_register_rm(settle_client *c, const char *gid, const char *rm,
			  uint32_t *branch_id, uint8_t *xid_out, size_t xid_cap,
			  size_t *xid_len)
{
	Settle__V1__RegisterBranchRequest req =
	    SETTLE__V1__REGISTER_BRANCH_REQUEST__INIT;
	Settle__V1__RegisterBranchResponse *resp = NULL;
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__check_gid(c, "xa register", gid, false);
	if (rv == 0)
		rv = check_rm(c, rm);
	if (rv == 0)
		rv = client__new_cmd_id(c, "xa register", id);
	if (rv != 0)
		return rv;
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.gid = (char *)gid;
	req.rm = (char *)rm;
	rv = client__call(c, SETTLE__V1__METHOD__REGISTER_BRANCH, &req.base,
			  &settle__v1__register_branch_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		return rv;
	if (branch_id != NULL)
		*branch_id = resp->branch_id;
	if (xid_len != NULL)
		*xid_len = resp->xid.len;
	if (resp->xid.len == 0) {
		/* A coordinator that answers an RM branch without its XID
		 * leaves the initiator nothing to start the work under. */
		client__errf(c,
			     "xa register: the coordinator answered no xid "
			     "for branch %u",
			     resp->branch_id);
		rv = SETTLE_EPROTO;
	} else if (xid_out != NULL && resp->xid.len > xid_cap) {
		client__errf(c,
			     "xa register: xid buffer of %zu bytes too small "
			     "for %zu (branch %u registered all the same)",
			     xid_cap, resp->xid.len, resp->branch_id);
		rv = SETTLE_ETOOBIG;
	} else if (xid_out != NULL) {
		memcpy(xid_out, resp->xid.data, resp->xid.len);
	}
	settle__v1__register_branch_response__free_unpacked(resp, NULL);
	return rv;
}

/* The request of settle_xa_vote(), checked (SETTLE_EINVAL: nothing to
 * send); id holds its cmd_id. */
static int vote_request(settle_client *c, const char *gid, uint32_t branch_id,
			int vote, const char *error, uint8_t id[16],
			Settle__V1__XaVoteRequest *req)
{
	int rv = client__check_gid(c, "xa vote", gid, false);
	if (rv != 0)
		return rv;
	if (vote < SETTLE__V1__XA_VOTE__VOTE_OK ||
	    vote > SETTLE__V1__XA_VOTE__PHASE2_NOT_DONE) {
		client__errf(c, "xa vote: unknown vote %d", vote);
		return SETTLE_EINVAL;
	}
	if (branch_id == 0 && vote < SETTLE__V1__XA_VOTE__PHASE2_COMMITTED) {
		client__errf(c, "xa vote: a branch id (>= 1) is required (0 "
				"only for PHASE2_* votes)");
		return SETTLE_EINVAL;
	}
	if (error != NULL && strnlen(error, XA_ERR_MAX + 1) > XA_ERR_MAX) {
		client__errf(c, "xa vote: error text longer than %d bytes",
			     XA_ERR_MAX);
		return SETTLE_EINVAL;
	}
	rv = client__new_cmd_id(c, "xa vote", id);
	if (rv != 0)
		return rv;
	settle__v1__xa_vote_request__init(req);
	req->cmd_id.data = id;
	req->cmd_id.len = 16;
	req->gid = (char *)gid;
	req->branch_id = branch_id;
	req->vote = (Settle__V1__XaVote)vote;
	req->error = (char *)(error != NULL ? error : "");
	return 0;
}

int settle_xa_vote(settle_client *c, const char *gid, uint32_t branch_id,
		   int vote, const char *error, int *state, int *branch_state)
{
	Settle__V1__XaVoteRequest req;
	Settle__V1__XaVoteResponse *resp = NULL;
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = vote_request(c, gid, branch_id, vote, error, id, &req);
	if (rv != 0)
		return rv;
	rv = client__call(c, SETTLE__V1__METHOD__XA_VOTE, &req.base,
			  &settle__v1__xa_vote_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		return rv;
	if (state != NULL)
		*state = (int)resp->state;
	if (branch_state != NULL)
		*branch_state = (int)resp->branch_state;
	settle__v1__xa_vote_response__free_unpacked(resp, NULL);
	return 0;
}

int settle_xa_report_committed(settle_client *c, const char *gid)
{
	Settle__V1__XaVoteRequest req;
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = vote_request(c, gid, 0, SETTLE__V1__XA_VOTE__PHASE2_COMMITTED,
			  NULL, id, &req);
	if (rv != 0)
		return rv;
	if (client__send(c, SETTLE__V1__METHOD__XA_VOTE, &req.base) == 0)
		return 0;
	/* No live connection to the node that answered last, or the
	 * sending failed: the report the usual way, waited for (the same
	 * cmd_id: a repeat of a report that got through answers OK). */
	return client__call(c, SETTLE__V1__METHOD__XA_VOTE, &req.base, NULL,
			    NULL, 0);
}

int settle_xa_prepare(settle_client *c, const char *gid, int *state,
		      bool *read_only)
{
	Settle__V1__XaPrepareRequest req = SETTLE__V1__XA_PREPARE_REQUEST__INIT;
	Settle__V1__XaPrepareResponse *resp = NULL;
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__check_gid(c, "xa prepare", gid, false);
	if (rv == 0)
		rv = client__new_cmd_id(c, "xa prepare", id);
	if (rv != 0)
		return rv;
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.gid = (char *)gid;
	rv = client__call(c, SETTLE__V1__METHOD__XA_PREPARE, &req.base,
			  &settle__v1__xa_prepare_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		return rv;
	if (state != NULL)
		*state = (int)resp->state;
	if (read_only != NULL)
		*read_only = resp->read_only;
	settle__v1__xa_prepare_response__free_unpacked(resp, NULL);
	return 0;
}

int settle_xa_commit(settle_client *c, const char *gid, bool one_phase,
		     uint32_t wait_ms, int *state, bool *finished)
{
	return client__decide(c, SETTLE__V1__METHOD__COMMIT, gid, NULL,
			      one_phase, wait_ms, state, finished, NULL);
}

/* The votes a commit carries, checked as settle_xa_vote() checks one, into
 * out / ptrs (n each). */
static int pack_votes(settle_client *c,
		      const struct settle_xa_branch_vote *votes, size_t n,
		      Settle__V1__XaBranchVote *out,
		      Settle__V1__XaBranchVote **ptrs)
{
	for (size_t i = 0; i < n; i++) {
		const struct settle_xa_branch_vote *v = &votes[i];

		if (v->branch_id == 0 ||
		    v->vote < SETTLE__V1__XA_VOTE__VOTE_OK ||
		    v->vote > SETTLE__V1__XA_VOTE__VOTE_ROLLBACK) {
			client__errf(c,
				     "xa commit: vote %zu: a branch id and "
				     "VOTE_OK, VOTE_READ_ONLY or VOTE_ROLLBACK "
				     "are required",
				     i);
			return SETTLE_EINVAL;
		}
		if (v->error != NULL &&
		    strnlen(v->error, XA_ERR_MAX + 1) > XA_ERR_MAX) {
			client__errf(c,
				     "xa commit: vote %zu: error text longer "
				     "than %d bytes",
				     i, XA_ERR_MAX);
			return SETTLE_EINVAL;
		}
		settle__v1__xa_branch_vote__init(&out[i]);
		out[i].branch_id = v->branch_id;
		out[i].vote = (Settle__V1__XaVote)v->vote;
		out[i].error = (char *)(v->error != NULL ? v->error : "");
		ptrs[i] = &out[i];
	}
	return 0;
}

int settle_xa_commit_by_initiator(settle_client *c, const char *gid,
				  const struct settle_xa_branch_vote *votes,
				  size_t n_votes, uint32_t phase2_ms,
				  int *state)
{
	Settle__V1__CommitRequest req = SETTLE__V1__COMMIT_REQUEST__INIT;
	Settle__V1__DecisionResponse *resp = NULL;
	Settle__V1__XaBranchVote vs[SETTLE_XA_VOTES_MAX];
	Settle__V1__XaBranchVote *vp[SETTLE_XA_VOTES_MAX];
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__check_gid(c, "xa commit", gid, false);
	if (rv != 0)
		return rv;
	if (phase2_ms == 0 || phase2_ms > SETTLE_XA_PHASE2_MAX_MS) {
		client__errf(c, "xa commit: phase2_ms must be 1..%d",
			     SETTLE_XA_PHASE2_MAX_MS);
		return SETTLE_EINVAL;
	}
	if (n_votes > SETTLE_XA_VOTES_MAX || (n_votes > 0 && votes == NULL)) {
		client__errf(c, "xa commit: at most %d votes",
			     SETTLE_XA_VOTES_MAX);
		return SETTLE_EINVAL;
	}
	rv = pack_votes(c, votes, n_votes, vs, vp);
	if (rv == 0)
		rv = client__new_cmd_id(c, "xa commit", id);
	if (rv != 0)
		return rv;
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.gid = (char *)gid;
	req.initiator_phase2_ms = phase2_ms;
	req.one_phase = true; /* from ACTIVE too, every branch voted */
	req.n_votes = n_votes;
	req.votes = vp;
	rv = client__call(c, SETTLE__V1__METHOD__COMMIT, &req.base,
			  &settle__v1__decision_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		return rv;
	if (state != NULL)
		*state = (int)resp->state;
	settle__v1__decision_response__free_unpacked(resp, NULL);
	return 0;
}

int settle_xa_decide(settle_client *c, const char *gid, bool commit,
		     bool one_phase, const char *reason, uint32_t wait_ms,
		     int *state, bool *finished, int *heuristic)
{
	return client__decide(
	    c,
	    commit ? SETTLE__V1__METHOD__COMMIT : SETTLE__V1__METHOD__ROLLBACK,
	    gid, reason, one_phase, wait_ms, state, finished, heuristic);
}

int settle_xa_heuristic(settle_client *c, const char *gid, bool commit,
			const char *reason, int *state, int *heuristic)
{
	Settle__V1__XaHeuristicRequest req =
	    SETTLE__V1__XA_HEURISTIC_REQUEST__INIT;
	Settle__V1__XaHeuristicResponse *resp = NULL;
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__check_gid(c, "xa heuristic", gid, false);
	if (rv != 0)
		return rv;
	if (reason == NULL || reason[0] == '\0') {
		client__errf(c, "xa heuristic: a reason is required (who "
				"decides and why)");
		return SETTLE_EINVAL;
	}
	if (strlen(reason) > XA_ERR_MAX) {
		client__errf(c, "xa heuristic: reason longer than %d bytes",
			     XA_ERR_MAX);
		return SETTLE_ETOOBIG;
	}
	rv = client__new_cmd_id(c, "xa heuristic", id);
	if (rv != 0)
		return rv;
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.gid = (char *)gid;
	req.decision = commit ? SETTLE__V1__DECISION__DECIDE_COMMIT
			      : SETTLE__V1__DECISION__DECIDE_ROLLBACK;
	req.reason = (char *)reason;
	rv = client__call(c, SETTLE__V1__METHOD__XA_HEURISTIC, &req.base,
			  &settle__v1__xa_heuristic_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		return rv;
	if (state != NULL)
		*state = (int)resp->state;
	if (heuristic != NULL)
		*heuristic = (int)resp->heuristic;
	settle__v1__xa_heuristic_response__free_unpacked(resp, NULL);
	return 0;
}

/* Copy one recovered transaction; SETTLE_EPROTO for a row no coordinator
 * would send (the caller's fixed-size entry could not hold it). */
static int copy_recovered(settle_client *c, const Settle__V1__XaRecovered *r,
			  struct settle_xa_recovered *out)
{
	size_t len = strlen(r->gid);

	if (len == 0 || len > SETTLE_GID_MAX ||
	    r->xid.len > SETTLE_XID_WIRE_MAX) {
		client__errf(c,
			     "xa recover: malformed entry (gid of %zu "
			     "bytes, xid of %zu)",
			     len, r->xid.len);
		return SETTLE_EPROTO;
	}
	memcpy(out->gid, r->gid, len + 1);
	memcpy(out->xid, r->xid.data, r->xid.len);
	out->xid_len = r->xid.len;
	out->state = (int)r->state;
	out->heuristic = (int)r->heuristic;
	return 0;
}

int settle_xa_recover(settle_client *c, const char *after_gid,
		      struct settle_xa_recovered *out, size_t cap, size_t *n,
		      bool *more)
{
	Settle__V1__XaRecoverRequest req = SETTLE__V1__XA_RECOVER_REQUEST__INIT;
	Settle__V1__XaRecoverResponse *resp = NULL;
	size_t i;
	int rv = 0;

	if (n != NULL)
		*n = 0;
	if (more != NULL)
		*more = false;
	if (c == NULL)
		return SETTLE_EINVAL;
	if (out == NULL || cap == 0 || n == NULL) {
		client__errf(c, "xa recover: no room for the answer");
		return SETTLE_EINVAL;
	}
	rv = client__check_gid(c, "xa recover", after_gid, true);
	if (rv != 0)
		return rv;
	req.limit = cap > UINT32_MAX ? UINT32_MAX : (uint32_t)cap;
	req.after_gid = (char *)(after_gid != NULL ? after_gid : "");
	rv = client__call(c, SETTLE__V1__METHOD__XA_RECOVER, &req.base,
			  &settle__v1__xa_recover_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		return rv;
	for (i = 0; i < resp->n_txs && i < cap; i++) {
		rv = copy_recovered(c, resp->txs[i], &out[i]);
		if (rv != 0)
			break;
	}
	if (rv == 0) {
		*n = i;
		/* A server that sent more than asked: the rest is the next
		 * page, found again by paging after the last gid. */
		if (more != NULL)
			*more = resp->more || resp->n_txs > cap;
	}
	settle__v1__xa_recover_response__free_unpacked(resp, NULL);
	return rv;
}

int settle_xa_forget(settle_client *c, const char *gid)
{
	Settle__V1__XaForgetRequest req = SETTLE__V1__XA_FORGET_REQUEST__INIT;
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__check_gid(c, "xa forget", gid, false);
	if (rv == 0)
		rv = client__new_cmd_id(c, "xa forget", id);
	if (rv != 0)
		return rv;
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.gid = (char *)gid;
	return client__call(c, SETTLE__V1__METHOD__XA_FORGET, &req.base,
			    &settle__v1__xa_forget_response__descriptor, NULL,
			    0);
}

const char *settle_xa_vote_name(int vote)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &settle__v1__xa_vote__descriptor, vote);
	return v != NULL ? v->name : "UNKNOWN";
}

const char *settle_heuristic_name(int heuristic)
{
	const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
	    &settle__v1__heuristic__descriptor, heuristic);
	return v != NULL ? v->name : "UNKNOWN";
}

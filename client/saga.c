/*
 * saga.c — the saga initiator calls (submit, wait for the outcome) and the
 * operator verbs (retry, resolve) of libsettle, on client.c's retrying
 * call.
 */
#include "error.h"

#include "settle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_int.h"
#include "log.h"

/* Polling Query: fast at first (most sagas end within a few calls), then
 * no more than four times a second. */
#define WAIT_POLL_FIRST_MS 5
#define WAIT_POLL_MAX_MS   250
#define WAIT_SLICE_MS	   10000

bool settle_tx_state_final(int state)
{
	switch (state) {
	case SETTLE__V1__TX_STATE__COMMITTED:
	case SETTLE__V1__TX_STATE__ROLLED_BACK:
	case SETTLE__V1__TX_STATE__SAGA_SUCCEEDED:
	case SETTLE__V1__TX_STATE__SAGA_COMPENSATED:
		return true;
	}
	return false;
}

int settle_submit_saga(settle_client *c, const char *gid,
		       const struct settle_saga_opts *opts,
		       const struct settle_saga_step *steps, size_t n,
		       char *gid_out, size_t gid_out_len)
{
	Settle__V1__SubmitSagaRequest req;
	Settle__V1__SubmitSagaResponse *resp = NULL;
	Settle__V1__SagaStep *wire = NULL, **ptrs = NULL;
	char err[512];
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__new_cmd_id(c, "submit saga", id);
	if (rv != 0)
		return rv;
	rv = client__saga_request(gid, opts, steps, n, id, &req, &wire, &ptrs,
				  err, sizeof(err));
	if (rv != 0) {
		client__errf(c, "%s", err);
		return rv;
	}
	rv = client__call(c, SETTLE__V1__METHOD__SUBMIT_SAGA, &req.base,
			  &settle__v1__submit_saga_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		goto out;
	if (gid_out != NULL) {
		const char *g = resp->gid != NULL ? resp->gid : "";
		if (strlen(g) >= gid_out_len) {
			client__errf(c,
				     "submit saga: gid buffer too small for "
				     "%zu bytes",
				     strlen(g));
			rv = SETTLE_ETOOBIG;
		} else {
			memcpy(gid_out, g, strlen(g) + 1);
		}
	}
	settle__v1__submit_saga_response__free_unpacked(resp, NULL);
out:
	free(ptrs);
	free(wire);
	return rv;
}

/* The first FAILED branch, for the stuck message. */
static const Settle__V1__BranchInfo *failed_branch(const Settle__V1__TxInfo *tx)
{
	for (size_t i = 0; i < tx->n_branches; i++)
		if (tx->branches[i]->state == SETTLE__V1__BRANCH_STATE__FAILED)
			return tx->branches[i];
	return NULL;
}

void client__stuck_text(const Settle__V1__TxInfo *tx, char *buf, size_t len)
{
	const Settle__V1__BranchInfo *b = failed_branch(tx);

	if (b == NULL) {
		snprintf(buf, len,
			 "wait: %s is stuck: %u branch(es) FAILED, waiting for "
			 "an operator (settlectl tx show %s)",
			 tx->gid, tx->failed, tx->gid);
		return;
	}
	snprintf(buf, len,
		 "wait: %s is stuck: branch %u%s%s%s FAILED: %s; waiting for "
		 "an operator (settlectl tx show %s)",
		 tx->gid, b->branch_id, b->name[0] ? " (" : "", b->name,
		 b->name[0] ? ")" : "",
		 b->last_error[0] ? b->last_error : "no error text", tx->gid);
}

static void stuck_message(settle_client *c, const Settle__V1__TxInfo *tx)
{
	char buf[512];

	client__stuck_text(tx, buf, sizeof(buf));
	client__errf(c, "%s", buf);
}

int settle_wait(settle_client *c, const char *gid, uint32_t wait_ms, int *state,
		bool *finished)
{
	uint32_t interval = WAIT_POLL_FIRST_MS;
	uint64_t end;
	int rv;

	if (finished != NULL)
		*finished = false;
	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__check_gid(c, "wait", gid, false);
	if (rv != 0)
		return rv;
	end = settle_mono_ms() + wait_ms;
	for (;;) {
		Settle__V1__TxInfo *tx = NULL;
		uint64_t now = settle_mono_ms(), asked;
		/* The leader holds the answer until the transaction is final
		 * or stuck (QueryRequest.wait_ms), in slices that fit a call
		 * timeout. A server that answers at once (older, or the
		 * wait was cut short) falls back to polling below. */
		uint32_t slice = end > now ? (uint32_t)(end - now) : 0;

		if (slice > WAIT_SLICE_MS)
			slice = WAIT_SLICE_MS;
		asked = now;
		rv = client__query(c, gid, false, slice, &tx);
		if (rv != 0)
			return rv;
		if (state != NULL)
			*state = (int)tx->state;
		if (settle_tx_state_final((int)tx->state)) {
			settle_tx_info_free(tx);
			if (finished != NULL)
				*finished = true;
			return 0;
		}
		if (tx->failed > 0) {
			stuck_message(c, tx);
			settle_tx_info_free(tx);
			return SETTLE_ESTATE;
		}
		settle_tx_info_free(tx);
		now = settle_mono_ms();
		if (now >= end) {
			client__errf(c, "wait: %s not final after %u ms", gid,
				     wait_ms);
			return SETTLE_ETIMEOUT;
		}
		if (now - asked >= slice / 2)
			continue; /* the server waited: ask again at once */
		client__sleep_ms(end - now < interval ? (uint32_t)(end - now)
						      : interval);
		interval = interval * 2 > WAIT_POLL_MAX_MS ? WAIT_POLL_MAX_MS
							   : interval * 2;
	}
}

static int check_reason(settle_client *c, const char *op, const char *reason,
			bool required)
{
	if (required && (reason == NULL || reason[0] == '\0')) {
		client__errf(c, "%s: a reason is required (who decided, why)",
			     op);
		return SETTLE_EINVAL;
	}
	if (reason != NULL &&
	    strnlen(reason, SETTLE_REASON_MAX + 1) > SETTLE_REASON_MAX) {
		client__errf(c, "%s: reason longer than %d bytes", op,
			     SETTLE_REASON_MAX);
		return SETTLE_EINVAL;
	}
	return 0;
}

int settle_tx_retry(settle_client *c, const char *gid, uint32_t branch_id,
		    const char *reason, uint32_t *retried, int *state)
{
	Settle__V1__TxRetryRequest req = SETTLE__V1__TX_RETRY_REQUEST__INIT;
	Settle__V1__TxRetryResponse *resp = NULL;
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__check_gid(c, "tx retry", gid, false);
	if (rv == 0)
		rv = check_reason(c, "tx retry", reason, false);
	if (rv == 0)
		rv = client__new_cmd_id(c, "tx retry", id);
	if (rv != 0)
		return rv;
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.gid = (char *)gid;
	req.branch_id = branch_id;
	req.reason = (char *)(reason != NULL ? reason : "");
	rv = client__call(c, SETTLE__V1__METHOD__TX_RETRY, &req.base,
			  &settle__v1__tx_retry_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		return rv;
	if (retried != NULL)
		*retried = resp->retried;
	if (state != NULL)
		*state = (int)resp->state;
	settle__v1__tx_retry_response__free_unpacked(resp, NULL);
	return 0;
}

int settle_tx_resolve(settle_client *c, const char *gid, uint32_t branch_id,
		      const char *reason, int *branch_state, int *state)
{
	Settle__V1__TxResolveRequest req = SETTLE__V1__TX_RESOLVE_REQUEST__INIT;
	Settle__V1__TxResolveResponse *resp = NULL;
	uint8_t id[16];
	int rv;

	if (c == NULL)
		return SETTLE_EINVAL;
	rv = client__check_gid(c, "tx resolve", gid, false);
	if (rv == 0 && branch_id == 0) {
		client__errf(c, "tx resolve: a branch id (>= 1) is required");
		rv = SETTLE_EINVAL;
	}
	if (rv == 0)
		rv = check_reason(c, "tx resolve", reason, true);
	if (rv == 0)
		rv = client__new_cmd_id(c, "tx resolve", id);
	if (rv != 0)
		return rv;
	req.cmd_id.data = id;
	req.cmd_id.len = sizeof(id);
	req.gid = (char *)gid;
	req.branch_id = branch_id;
	req.reason = (char *)reason;
	rv = client__call(c, SETTLE__V1__METHOD__TX_RESOLVE, &req.base,
			  &settle__v1__tx_resolve_response__descriptor,
			  (ProtobufCMessage **)&resp, 0);
	if (rv != 0)
		return rv;
	if (branch_state != NULL)
		*branch_state = (int)resp->branch_state;
	if (state != NULL)
		*state = (int)resp->state;
	settle__v1__tx_resolve_response__free_unpacked(resp, NULL);
	return 0;
}

/*
 * info.c — stored records to the wire TxInfo / BranchInfo.
 *
 * The message is first assembled on the stack with pointers into the
 * records, then packed and unpacked: the caller gets one self-contained
 * message freed with the generated free_unpacked, and the payload can never
 * leak into it because BranchInfo has no field for it.
 */
#include <stdlib.h>

#include "error.h"
#include "storage/store_int.h"
#include "xa/xid.h"

/* The text form of a stored wire XID into text (XA_XID_TEXT_MAX bytes):
 * "" when there is none, or when it does not decode (restore refuses such
 * rows; an empty text beats a crash). */
static char *xid_text(const ProtobufCBinaryData *xid, char *text)
{
	struct xa_xid x;
	text[0] = 0;
	if (xid->len != 0 && xa_xid_decode(xid->data, xid->len, &x) == 0 &&
	    xa_xid_format(&x, text, XA_XID_TEXT_MAX) != 0)
		text[0] = 0;
	return text;
}

/* text: XA_XID_TEXT_MAX bytes that live as long as bi. */
static void fill_branch(Settle__V1__BranchInfo *bi,
			const Settle__V1__BranchRecord *b, char *text)
{
	settle__v1__branch_info__init(bi);
	bi->branch_id = b->branch_id;
	bi->endpoint = b->endpoint;
	/* A saga step has a name instead of a resource: show it there. */
	bi->resource = b->resource != NULL && b->resource[0] != '\0'
			   ? b->resource
			   : (b->name != NULL ? b->name : "");
	bi->state = b->state;
	bi->attempts = b->attempts;
	bi->next_retry_ms = b->next_retry_ms;
	bi->last_error = b->last_error;
	bi->updated_ms = b->updated_ms;
	bi->name = b->name;
	/* Resolved branch ids: an ordered saga's steps list their
	 * predecessor, so the shape shows without knowing the saga kind. */
	bi->n_depends_on = b->n_depends_on;
	bi->depends_on = b->depends_on;
	bi->completion = b->completion;
	bi->completed_ms = b->completed_ms;
	bi->max_attempts = b->max_attempts;
	bi->rm = b->rm;
	bi->xid = xid_text(&b->xid, text);
	bi->heuristic = b->heuristic;
	bi->initiator_phase2 =
	    b->initiator_phase2 &&
	    b->state == SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING;
}

static int roundtrip(struct store *s, const ProtobufCMessage *m,
		     ProtobufCMessage **out)
{
	uint8_t *buf;
	size_t len;
	int rv = store__pack(s, m, &buf, &len);
	if (rv != 0)
		return rv;
	*out = protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
	free(buf);
	if (*out == NULL)
		return store__fail(s, SETTLE_ENOMEM, "info: out of memory");
	return 0;
}

int store_branch_info(const Settle__V1__BranchRecord *b,
		      Settle__V1__BranchInfo **out)
{
	Settle__V1__BranchInfo bi;
	char text[XA_XID_TEXT_MAX];
	fill_branch(&bi, b, text);
	size_t len = settle__v1__branch_info__get_packed_size(&bi);
	uint8_t *buf = malloc(len > 0 ? len : 1);
	if (buf == NULL)
		return SETTLE_ENOMEM;
	settle__v1__branch_info__pack(&bi, buf);
	*out = settle__v1__branch_info__unpack(NULL, len, buf);
	free(buf);
	return *out != NULL ? 0 : SETTLE_ENOMEM;
}

int store_tx_info(struct store *s, MDB_txn *txn, const Settle__V1__TxRecord *tx,
		  bool branches, bool history, Settle__V1__TxInfo **out)
{
	Settle__V1__BranchRecord **brs = NULL;
	Settle__V1__Event **evs = NULL;
	size_t nbr = 0, nev = 0;
	Settle__V1__BranchInfo *bis = NULL, **bptrs = NULL;
	char(*texts)[XA_XID_TEXT_MAX] = NULL;
	char tx_xid[XA_XID_TEXT_MAX];
	int rv = 0;

	if (branches) {
		rv = store_branches_list(s, txn, tx->gid, &brs, &nbr);
		if (rv != 0)
			return rv;
	}
	if (history) {
		rv = store_events_list(s, txn, tx->gid, &evs, &nev);
		if (rv != 0)
			goto out;
	}
	if (nbr > 0) {
		bis = calloc(nbr, sizeof *bis);
		bptrs = calloc(nbr, sizeof *bptrs);
		texts = calloc(nbr, sizeof *texts);
		if (bis == NULL || bptrs == NULL || texts == NULL) {
			rv = store__fail(s, SETTLE_ENOMEM,
					 "info: out of memory");
			goto out;
		}
		for (size_t i = 0; i < nbr; i++) {
			fill_branch(&bis[i], brs[i], texts[i]);
			bptrs[i] = &bis[i];
		}
	}
	Settle__V1__TxInfo info;
	settle__v1__tx_info__init(&info);
	info.gid = tx->gid;
	info.mode = tx->mode;
	info.state = tx->state;
	info.created_ms = tx->created_ms;
	info.deadline_ms = tx->deadline_ms;
	info.updated_ms = tx->updated_ms;
	info.finished_ms = tx->finished_ms;
	info.reason = tx->reason;
	info.recovery = tx->recovery;
	info.failed = tx->failed;
	info.xid = xid_text(&tx->xid, tx_xid);
	info.heuristic = tx->heuristic;
	info.n_branches = nbr;
	info.branches = bptrs;
	info.n_history = nev;
	info.history = evs;
	info.stuck = tx->failed > 0 &&
		     !(tx->state == SETTLE__V1__TX_STATE__COMMITTED ||
		       tx->state == SETTLE__V1__TX_STATE__ROLLED_BACK ||
		       tx->state == SETTLE__V1__TX_STATE__SAGA_SUCCEEDED ||
		       tx->state == SETTLE__V1__TX_STATE__SAGA_COMPENSATED);
	rv = roundtrip(s, &info.base, (ProtobufCMessage **)out);
out:
	free(texts);
	free(bptrs);
	free(bis);
	store_events_free(evs, nev);
	store_branches_free(brs, nbr);
	return rv;
}

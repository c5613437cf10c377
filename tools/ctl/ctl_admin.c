/*
 * ctl_admin.c — settlectl's admin verbs seen before they act: --dry-run of
 * tx retry, tx resolve, xa commit / rollback / forget and cluster add /
 * remove / transfer (each reads what it would change and says so,
 * changing nothing), and tx retry over a filter with its confirmation.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ctl_bulk.h"
#include "ctl_cmd.h"
#include "ctl_fmt.h"
#include "ctl_int.h"

/* Pages of LIST while selecting, and the most retries one command makes. */
#define BULK_PAGE 1000
#define BULK_MAX  100000

static int query(const struct ctl_opts *o, const char *gid,
		 Settle__V1__TxInfo **tx)
{
	settle_client *c;
	int rv;

	if (ctl_open_client(o, &c) != 0)
		return CTL_EXIT_USAGE;
	rv = settle_query(c, gid, false, tx);
	if (rv == SETTLE_ENOTFOUND)
		fprintf(stderr, "settlectl: no transaction with gid '%s'\n",
			gid);
	else if (rv != 0)
		fprintf(stderr, "settlectl: %s\n", settle_client_errmsg(c));
	settle_client_close(c);
	return rv == 0 ? 0 : 1;
}

static const Settle__V1__BranchInfo *branch_of(const Settle__V1__TxInfo *tx,
					       uint32_t id)
{
	for (size_t i = 0; i < tx->n_branches; i++)
		if (tx->branches[i]->branch_id == id)
			return tx->branches[i];
	return NULL;
}

int ctl_cmd_dry_tx(const struct ctl_opts *o, const char *gid, bool resolve)
{
	Settle__V1__TxInfo *tx = NULL;
	const Settle__V1__BranchInfo *b;
	int rv = query(o, gid, &tx);

	if (rv != 0)
		return rv;
	b = o->branch != 0 ? branch_of(tx, o->branch) : NULL;
	if (o->branch != 0 && b == NULL) {
		fprintf(stderr, "settlectl: %s has no branch %u\n", gid,
			o->branch);
		settle_tx_info_free(tx);
		return 1;
	}
	if (resolve) {
		bool can = b->state == SETTLE__V1__BRANCH_STATE__FAILED;

		if (o->json) {
			json_t *doc = json_object();

			ctl__set_bool(doc, "dry_run", true);
			ctl__set_str(doc, "gid", gid);
			ctl__set_uint(doc, "branch_id", o->branch);
			ctl__set_str(doc, "branch_state",
				     ctl_branch_state_name(b->state));
			ctl__set_bool(doc, "would_resolve", can);
			ctl__json_print(stdout, doc);
		} else if (can) {
			printf("would mark branch %u of %s (%s, at %s) done by "
			       "hand, the transaction (%s) going on from "
			       "there, with the reason recorded\n",
			       o->branch, gid, ctl_branch_state_name(b->state),
			       b->endpoint, ctl_tx_state_name(tx->state));
		} else {
			printf("would be refused: branch %u of %s is %s, not "
			       "failed\n",
			       o->branch, gid, ctl_branch_state_name(b->state));
		}
		settle_tx_info_free(tx);
		return can ? 0 : 1;
	}
	/* tx retry: the plan of this one transaction. */
	{
		Settle__V1__ListResponse one = SETTLE__V1__LIST_RESPONSE__INIT;
		Settle__V1__TxInfo *txs[1] = {tx};
		struct ctl_retry_pick *picks = NULL;
		size_t n = 0, cap = 0;

		one.n_txs = 1;
		one.txs = txs;
		if (ctl_retry_select(&one, b != NULL ? b->endpoint : NULL,
				     &picks, &n, &cap) != 0) {
			fprintf(stderr, "settlectl: out of memory\n");
			settle_tx_info_free(tx);
			return 1;
		}
		/* With --branch, that branch only. */
		if (b != NULL) {
			size_t k = 0;

			for (size_t i = 0; i < n; i++)
				if (picks[i].branch_id == o->branch)
					picks[k++] = picks[i];
			n = k;
		}
		ctl_print_retry_plan(stdout, picks, n, true, o->json);
		free(picks);
	}
	settle_tx_info_free(tx);
	return 0;
}

int ctl_cmd_dry_xa(const struct ctl_opts *o, const char *verb, const char *gid)
{
	Settle__V1__TxInfo *tx = NULL;
	bool forget = strcmp(verb, "forget") == 0, can;
	int rv = query(o, gid, &tx);

	if (rv != 0)
		return rv;
	can = forget ? tx->heuristic != SETTLE__V1__HEURISTIC__HEURISTIC_NONE
		     : tx->state == SETTLE__V1__TX_STATE__XA_PREPARED;
	if (o->json) {
		json_t *doc = json_object();

		ctl__set_bool(doc, "dry_run", true);
		ctl__set_str(doc, "gid", gid);
		ctl__set_str(doc, "state", ctl_tx_state_name(tx->state));
		ctl__set_str(doc, "verb", verb);
		ctl__set_bool(doc, "would_act", can);
		ctl__json_print(stdout, doc);
	} else if (forget) {
		printf(can ? "would forget the heuristic outcome (%s) of %s\n"
			   : "would be refused: %s%s has no heuristic "
			     "outcome to forget\n",
		       can ? ctl_heuristic_name(tx->heuristic) : "", gid);
	} else if (can) {
		printf("would %s the in-doubt %s heuristically: remembered "
		       "and told to its TM until xa forget\n",
		       verb, gid);
	} else {
		printf("would be refused: %s is %s, not xa_prepared\n", gid,
		       ctl_tx_state_name(tx->state));
	}
	settle_tx_info_free(tx);
	return can ? 0 : 1;
}

int ctl_cmd_dry_cluster(const struct ctl_opts *o, const char *verb, uint64_t id,
			const char *raft, const char *client)
{
	Settle__V1__ClusterMembersRequest req =
	    SETTLE__V1__CLUSTER_MEMBERS_REQUEST__INIT;
	Settle__V1__ClusterMembersResponse *m;
	const Settle__V1__Member *node = NULL;
	ProtobufCMessage *resp = NULL;
	Settle__V1__MemberRole want =
	    o->have_role ? o->role : SETTLE__V1__MEMBER_ROLE__ROLE_VOTER;
	unsigned voters = 0;
	int rv, ok = 1;

	rv = ctl_admin_call(o, o->timeout_ms,
			    SETTLE__V1__METHOD__CLUSTER_MEMBERS, &req.base,
			    &settle__v1__cluster_members_response__descriptor,
			    &resp, "cluster members");
	if (rv != 0)
		return rv;
	m = (Settle__V1__ClusterMembersResponse *)resp;
	for (size_t i = 0; i < m->n_members; i++) {
		voters +=
		    m->members[i]->role == SETTLE__V1__MEMBER_ROLE__ROLE_VOTER;
		if (m->members[i]->id == id)
			node = m->members[i];
	}
	if (strcmp(verb, "add") == 0) {
		if (node != NULL)
			printf("node %" PRIu64 " is a %s already: would only "
			       "make it a %s\n",
			       id, ctl_role_name(node->role),
			       ctl_role_name(want));
		else
			printf("would add node %" PRIu64 " (raft %s, clients "
			       "%s) as a spare, let it catch up and make it a "
			       "%s: %u voters then\n",
			       id, raft, client, ctl_role_name(want),
			       voters + (want ==
					 SETTLE__V1__MEMBER_ROLE__ROLE_VOTER));
		ok = 0;
	} else if (strcmp(verb, "remove") == 0) {
		if (node == NULL)
			printf("would be refused: node %" PRIu64
			       " is not a member\n",
			       id);
		else if (id == m->leader_id)
			printf("would be refused: node %" PRIu64
			       " leads; move leadership first (cluster "
			       "transfer)\n",
			       id);
		else {
			unsigned left =
			    voters -
			    (node->role == SETTLE__V1__MEMBER_ROLE__ROLE_VOTER);

			printf("would remove node %" PRIu64 " (%s, raft %s): "
			       "%u voter%s left, a majority of %u\n",
			       id, ctl_role_name(node->role),
			       node->raft_address, left, left == 1 ? "" : "s",
			       left / 2 + 1);
			ok = 0;
		}
	} else if (id != 0 && node == NULL) {
		printf("would be refused: node %" PRIu64 " is not a member\n",
		       id);
	} else if (id != 0 &&
		   node->role != SETTLE__V1__MEMBER_ROLE__ROLE_VOTER) {
		printf("would be refused: node %" PRIu64 " is a %s, not a "
		       "voter\n",
		       id, ctl_role_name(node->role));
	} else {
		if (id != 0)
			printf("would hand leadership from node %" PRIu64
			       " to node %" PRIu64 "\n",
			       m->leader_id, id);
		else
			printf("would hand leadership from node %" PRIu64
			       " to the most suitable voter\n",
			       m->leader_id);
		ok = 0;
	}
	protobuf_c_message_free_unpacked(resp, NULL);
	return ok;
}

/* Every pick of the listed transactions that match o's filters. */
static int select_all(const struct ctl_opts *o, settle_client *c,
		      struct ctl_retry_pick **picks, size_t *n)
{
	Settle__V1__ListRequest req = SETTLE__V1__LIST_REQUEST__INIT;
	char after[SETTLE_GID_MAX + 1] = "";
	size_t cap = 0, listed = 0;
	uint32_t limit = o->limit != 0 ? o->limit : BULK_MAX;

	if (o->have_state)
		req.state = o->state;
	req.stuck_only = o->stuck;
	req.older_than_ms = o->older_than_ms;
	for (;;) {
		ProtobufCMessage *resp = NULL;
		Settle__V1__ListResponse *l;
		bool more;

		req.after_gid = after;
		req.limit =
		    limit - listed < BULK_PAGE ? limit - listed : BULK_PAGE;
		if (settle_client_call(c, SETTLE__V1__METHOD__LIST, &req.base,
				       &settle__v1__list_response__descriptor,
				       &resp) != 0) {
			fprintf(stderr, "settlectl: tx list: %s\n",
				settle_client_errmsg(c));
			return 1;
		}
		l = (Settle__V1__ListResponse *)resp;
		if (ctl_retry_select(l, o->participant, picks, n, &cap) != 0) {
			protobuf_c_message_free_unpacked(resp, NULL);
			fprintf(stderr, "settlectl: out of memory\n");
			return 1;
		}
		listed += l->n_txs;
		more = l->more && l->n_txs > 0 && listed < limit;
		if (l->n_txs > 0)
			snprintf(after, sizeof after, "%s",
				 l->txs[l->n_txs - 1]->gid);
		protobuf_c_message_free_unpacked(resp, NULL);
		if (!more)
			return 0;
	}
}

/* The operator's yes: --yes, or "y" typed at a terminal. */
static int confirmed(const struct ctl_opts *o, size_t n)
{
	char line[16];

	if (o->yes)
		return 0;
	if (!isatty(STDIN_FILENO)) {
		fprintf(stderr,
			"settlectl: %zu retries to make and no terminal to "
			"ask: give --yes (or --dry-run to look first)\n",
			n);
		return CTL_EXIT_USAGE;
	}
	fprintf(stderr, "make these %zu retries? [y/N] ", n);
	if (fgets(line, sizeof line, stdin) == NULL ||
	    (strcmp(line, "y\n") != 0 && strcmp(line, "yes\n") != 0)) {
		fprintf(stderr, "settlectl: nothing done\n");
		return 1;
	}
	return 0;
}

int ctl_cmd_tx_retry_bulk(const struct ctl_opts *o)
{
	struct ctl_retry_pick *picks = NULL;
	settle_client *c;
	size_t n = 0, done = 0, refused = 0;
	int rv;

	if (ctl_open_admin(o, CTL_OP_TIMEOUT_MS, &c) != 0)
		return CTL_EXIT_USAGE;
	rv = select_all(o, c, &picks, &n);
	if (rv != 0)
		goto out;
	if (o->dry_run || n == 0) {
		ctl_print_retry_plan(stdout, picks, n, true, o->json);
		goto out;
	}
	if (!o->json)
		ctl_print_retry_plan(stderr, picks, n, false, false);
	rv = confirmed(o, n);
	if (rv != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		uint32_t retried = 0;
		int state = 0;

		if (settle_tx_retry(c, picks[i].gid, picks[i].branch_id,
				    o->reason, &retried, &state) == 0) {
			done++;
			continue;
		}
		refused++;
		fprintf(stderr, "settlectl: %s: %s\n", picks[i].gid,
			settle_client_errmsg(c));
	}
	if (o->json) {
		json_t *doc = json_object();

		ctl__set_uint(doc, "retries", n);
		ctl__set_uint(doc, "done", done);
		ctl__set_uint(doc, "refused", refused);
		ctl__json_print(stdout, doc);
	} else {
		printf("%zu retries made, %zu refused\n", done, refused);
	}
	rv = refused == 0 ? 0 : 1;
out:
	free(picks);
	settle_client_close(c);
	return rv;
}

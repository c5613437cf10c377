/*
 * xa_logic.c — what the leader makes of an RM's answers and of the XIDs an
 * RM holds in doubt. No I/O: the driver (xa_drive.c) calls these and the
 * unit tests check them one case at a time.
 */
#include "coordinator/xa.h"

#include <stdio.h>
#include <string.h>

#include "error.h"
#include "xa/rm.h"

/* XAER-style name of an RM error, for the branch's last_error. */
static const char *rm_error_name(int rv)
{
	switch (rv) {
	case XA_RM_ETRANSIENT:
		return "RMFAIL";
	case XA_RM_ENOTA:
		return "NOTA";
	case XA_RM_EPROTO:
		return "PROTO";
	case XA_RM_EDUPID:
		return "DUPID";
	case XA_RM_EINVAL:
		return "INVAL";
	case XA_RM_EROLLBACK:
		return "RB";
	case XA_RM_ERMERR:
		return "RMERR";
	case SETTLE_ENOMEM:
		return "out of memory";
	}
	return settle_errname(rv);
}

void coord_xa_classify(const struct coord_xa_call *call, int rv,
		       const char *rm_errmsg, uint32_t max_attempts,
		       uint64_t retry_at, Settle__V1__CmdXaResult *out,
		       char *err, size_t errcap)
{
	bool commit =
	    call->phase == SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING;
	const char *text = rm_errmsg != NULL ? rm_errmsg : "";

	out->phase = call->phase;
	out->attempt = call->attempt;
	out->heuristic = SETTLE__V1__HEURISTIC__HEURISTIC_NONE;
	out->next_retry_ms = 0;
	out->error = err;
	err[0] = '\0';

	switch (rv) {
	case 0:
		out->outcome = SETTLE__V1__OUTCOME__OUTCOME_OK;
		return;
	case XA_RM_ENOTA:
		/* Presumed abort: a prepared branch leaves that state only
		 * through our commit or rollback, so NOTA means done. At the
		 * first call of the leader that decided, though, no earlier
		 * call of ours can have done it: somebody else did. */
		out->outcome = SETTLE__V1__OUTCOME__OUTCOME_OK;
		if (call->attempt <= 1 && call->voted_ok && !call->inherited) {
			out->heuristic = SETTLE__V1__HEURISTIC__HEUR_HAZARD;
			snprintf(err, errcap,
				 "unknown to the RM at the first %s: finished "
				 "outside Settle?",
				 commit ? "commit" : "rollback");
		}
		return;
	case XA_RM_EROLLBACK:
		out->outcome = SETTLE__V1__OUTCOME__OUTCOME_OK;
		if (commit) {
			out->heuristic = SETTLE__V1__HEURISTIC__HEUR_ROLLBACK;
			snprintf(err, errcap,
				 "the RM rolled the branch back although "
				 "commit was decided%s%s",
				 text[0] != '\0' ? ": " : "", text);
		}
		return;
	case XA_RM_ETRANSIENT:
		/* The RM is down or the connection died: the decision
		 * stands, try again as long as it takes. */
		out->outcome = SETTLE__V1__OUTCOME__OUTCOME_RETRY;
		out->next_retry_ms = retry_at;
		snprintf(err, errcap, "%s%s%s", rm_error_name(rv),
			 text[0] != '\0' ? ": " : "", text);
		return;
	default:
		/* An RM error we do not understand. A commit decision is
		 * never abandoned, but after max_attempts the branch waits
		 * for an operator (FAILED) instead of retrying unseen. */
		snprintf(err, errcap, "%s%s%s", rm_error_name(rv),
			 text[0] != '\0' ? ": " : "", text);
		if (max_attempts != 0 && call->attempt >= max_attempts) {
			out->outcome = SETTLE__V1__OUTCOME__OUTCOME_FAILURE;
		} else {
			out->outcome = SETTLE__V1__OUTCOME__OUTCOME_RETRY;
			out->next_retry_ms = retry_at;
		}
		return;
	}
}

void coord_xa_one_phase_unknown(Settle__V1__CmdXaResult *out)
{
	out->phase = SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE;
	out->outcome = SETTLE__V1__OUTCOME__OUTCOME_OK;
	out->heuristic = SETTLE__V1__HEURISTIC__HEUR_HAZARD;
	out->error = "the initiator never reported the one-phase outcome";
	out->next_retry_ms = 0;
}

int coord_xa_xid_owner(const struct xa_xid *x, uint32_t format_id,
		       char gid[WAL_GID_MAX + 1], uint32_t *branch_id)
{
	const uint8_t *g = xa_xid_gtrid(x);
	const uint8_t *q = xa_xid_bqual(x);
	uint64_t id = 0;

	if (xa_xid_validate(x) != 0 || (uint32_t)x->format_id != format_id)
		return SETTLE_EINVAL;
	/* The gid rule of wal_gid_validate: printable ASCII, no space. */
	for (size_t i = 0; i < x->gtrid_len; i++)
		if (g[i] < 0x21 || g[i] > 0x7e)
			return SETTLE_EINVAL;
	/* The FSM writes branch ids in canonical decimal: anything else is
	 * not one of ours. */
	if (x->bqual_len > 10 || q[0] == '0')
		return SETTLE_EINVAL;
	for (size_t i = 0; i < x->bqual_len; i++) {
		if (q[i] < '0' || q[i] > '9')
			return SETTLE_EINVAL;
		id = id * 10 + (uint64_t)(q[i] - '0');
	}
	if (id == 0 || id > UINT32_MAX)
		return SETTLE_EINVAL;
	memcpy(gid, g, x->gtrid_len);
	gid[x->gtrid_len] = '\0';
	*branch_id = (uint32_t)id;
	return 0;
}

enum coord_xa_recover_act
coord_xa_recover_decide(const Settle__V1__TxRecord *tx,
			const Settle__V1__BranchRecord *b, const char **why)
{
	if (tx == NULL) {
		*why = "orphan: no transaction in the log (presumed abort)";
		return COORD_XA_REC_ROLLBACK;
	}
	if (tx->mode != SETTLE__V1__TX_MODE__XA) {
		*why = "the gid names a transaction that is not XA";
		return COORD_XA_REC_LEAVE;
	}
	if (b == NULL || b->rm == NULL || b->rm[0] == '\0') {
		*why = "the XID names no RM branch of the transaction";
		return COORD_XA_REC_LEAVE;
	}
	switch ((int)b->state) {
	case SETTLE__V1__BRANCH_STATE__XA_BRANCH_COMMITTING:
	case SETTLE__V1__BRANCH_STATE__XA_BRANCH_ROLLING_BACK:
		*why = "phase 2 of the branch is under way";
		return COORD_XA_REC_LEAVE;
	case SETTLE__V1__BRANCH_STATE__FAILED:
		*why = "the branch is FAILED: the operator decides";
		return COORD_XA_REC_LEAVE;
	case SETTLE__V1__BRANCH_STATE__XA_BRANCH_ONE_PHASE:
		*why = "the initiator commits the branch in one phase";
		return COORD_XA_REC_LEAVE;
	default:
		break;
	}
	switch ((int)tx->state) {
	case SETTLE__V1__TX_STATE__COMMITTING:
	case SETTLE__V1__TX_STATE__COMMITTED:
		*why = "commit was decided";
		return COORD_XA_REC_COMMIT;
	case SETTLE__V1__TX_STATE__ROLLING_BACK:
	case SETTLE__V1__TX_STATE__ROLLED_BACK:
		*why = "rollback was decided";
		return COORD_XA_REC_ROLLBACK;
	default:
		*why = "not decided yet: the deadline or the TM decides";
		return COORD_XA_REC_LEAVE;
	}
}

/* Whether a libpq key=value conninfo names key. */
static bool has_key(const char *conninfo, const char *key)
{
	size_t n = strlen(key);

	for (const char *p = strstr(conninfo, key); p != NULL;
	     p = strstr(p + 1, key)) {
		const char *e = p + n;

		if (p != conninfo && p[-1] != ' ' && p[-1] != '\t')
			continue;
		while (*e == ' ' || *e == '\t')
			e++;
		if (*e == '=')
			return true;
	}
	return false;
}

int coord_xa_conninfo(int kind, const char *conninfo, char *buf, size_t cap)
{
	static const struct {
		const char *key, *value;
	} pg_defaults[] = {
	    {"connect_timeout", "5"},
	    {"keepalives", "1"},
	    {"keepalives_idle", "10"},
	    {"keepalives_interval", "5"},
	    {"keepalives_count", "3"},
	    {"options", "'-c statement_timeout=30000'"},
	};
	size_t len = 0;
	int n;

	/* A URI cannot take keys in front: used as given. */
	if (kind == XA_RM_POSTGRESQL && strncmp(conninfo, "postgres", 8) != 0) {
		for (size_t i = 0;
		     i < sizeof pg_defaults / sizeof pg_defaults[0]; i++) {
			if (has_key(conninfo, pg_defaults[i].key))
				continue;
			n = snprintf(buf + len, cap - len, "%s=%s ",
				     pg_defaults[i].key, pg_defaults[i].value);
			if (n < 0 || (size_t)n >= cap - len)
				return SETTLE_EINVAL;
			len += (size_t)n;
		}
	}
	n = snprintf(buf + len, cap - len, "%s", conninfo);
	if (n < 0 || (size_t)n >= cap - len)
		return SETTLE_EINVAL;
	return 0;
}

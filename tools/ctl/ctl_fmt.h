/*
 * ctl_fmt.h — settlectl's input parsing and output formatting.
 *
 * Pure functions over the settle.v1 messages: no sockets, no clocks except
 * the "now" passed in, so the exact text an operator sees is unit-tested.
 * Every printer writes to a caller-owned FILE and keeps no reference to the
 * messages it prints. Payloads never appear here: the messages that reach
 * settlectl do not carry them. JSON is made with jansson, one document a
 * line, valid whatever a peer sent: a peer's text that is not UTF-8 shows
 * its bytes >= 0x80 as '?'.
 */
#ifndef SETTLE_CTL_FMT_H
#define SETTLE_CTL_FMT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "settle.pb-c.h"

/*
 * Parse a duration "1500ms", "30s", "5m", "2h", "1d" into milliseconds.
 * A unit is required (a bare "30" is ambiguous). Returns 0, or
 * SETTLE_EINVAL for an empty, malformed, negative or overflowing value.
 */
int ctl_duration_parse(const char *text, uint64_t *out_ms);

/*
 * Parse a transaction state name, case-insensitive, '-' or '_' accepted:
 * active, committing, committed, rolling_back, rolled_back, saga_running,
 * saga_compensating, saga_succeeded, saga_compensated, xa_prepared.
 * Returns 0 or SETTLE_EINVAL.
 */
int ctl_state_parse(const char *text, Settle__V1__TxState *out);

/* Lower-case names for display and JSON; "unknown" out of range. */
const char *ctl_tx_state_name(int state);
const char *ctl_branch_state_name(int state);
const char *ctl_mode_name(int mode);
/* "backward", "forward"; "unknown" out of range. */
const char *ctl_recovery_name(int recovery);
/* "none", "hazard", "commit", "rollback", "mixed"; "unknown" else. */
const char *ctl_heuristic_name(int heuristic);

/* Longest --reason (the coordinator's limit, settle.h SETTLE_REASON_MAX). */
#define CTL_REASON_MAX 1024

/* Parse a branch id: a decimal integer 1..2^32-1 with nothing else.
 * Returns 0 or SETTLE_EINVAL. */
int ctl_branch_id_parse(const char *text, uint32_t *out);

/* Check an operator reason: at most CTL_REASON_MAX bytes, and not empty
 * (NULL or "") when required. Returns 0 or SETTLE_EINVAL. */
int ctl_reason_check(const char *text, bool required);

/*
 * Format unix ms as "2024-05-01 12:00:00.123Z" (UTC) into buf; "-" for 0.
 * Returns buf.
 */
char *ctl_time_str(uint64_t ms, char *buf, size_t len);

/*
 * Format a span as a short human duration: "850ms", "12s", "5m03s",
 * "2h10m", "3d4h". Returns buf.
 */
char *ctl_span_str(uint64_t ms, char *buf, size_t len);

/*
 * One node's answer to STATUS, or the error that prevented it. endpoint
 * is the address settlectl asked; err 0 means st is valid.
 */
struct ctl_node_status {
	const char *endpoint;
	int err;
	const char *errmsg;
	const Settle__V1__StatusResponse *st;
};

/*
 * Aligned table or JSON {"nodes":[...]} of the nodes' status. Under the
 * table, a node with transactions whose heuristic is not forgotten or with
 * XA counters (phase-2 calls, recovery scans and the in-doubt XIDs they
 * committed or rolled back, heuristic outcomes) gets a line "ENDPOINT:
 * ..."; JSON always carries heuristic_txs and "xa":{...}. A node that
 * reports its store budget gets a line "ENDPOINT: store U MiB of B MiB
 * budget (P%)", with "; refusing new transactions ..." when it refuses
 * them; JSON carries "store":{"used_bytes","budget_bytes","refusing"}.
 */
void ctl_print_status(FILE *f, const struct ctl_node_status *nodes, size_t n,
		      bool json);

/* Aligned table or JSON {"txs":[...],"more":b} of a LIST answer. */
void ctl_print_list(FILE *f, const Settle__V1__ListResponse *resp,
		    uint64_t now_ms, bool json);

/*
 * One transaction with branches and history, as text or JSON {"tx":{}}.
 * A saga shows its recovery and a steps table (name, state, attempts, the
 * steps each waits for, the order in which actions ended, last error)
 * instead of the branches table; its JSON branches carry name,
 * depends_on, completion, completed_ms and max_attempts. An XA
 * transaction shows its legacy TM's xid and its heuristic (when it has
 * them), and per branch the RM (or a TCC branch's endpoint), the XID text
 * (or resource) and the heuristic; its JSON carries xid and heuristic, and
 * its branches rm, xid and heuristic. tx list adds a HEURISTIC column when
 * a listed transaction has one (JSON: XA transactions carry it always).
 */
void ctl_print_tx(FILE *f, const Settle__V1__TxInfo *tx, uint64_t now_ms,
		  bool json);

/* The answer to tx retry: "GID: N branches made due now; state S", or
 * JSON {"gid":..,"branch_id":N,"retried":N,"state":".."}. */
void ctl_print_retry(FILE *f, const char *gid, uint32_t branch_id,
		     uint32_t retried, int state, bool json);

/* The answer to tx resolve: "GID: branch N resolved as S; state S", or
 * JSON {"gid":..,"branch_id":N,"branch_state":"..","state":".."}. */
void ctl_print_resolve(FILE *f, const char *gid, uint32_t branch_id,
		       int branch_state, int state, bool json);

/* ---- XA (ctl_xa.c) ------------------------------------------------------ */

/*
 * The text form "<formatID>:<hex gtrid>:<hex bqual>" of a wire XID into buf
 * (cap bytes; 300 always suffice); "-" for an empty one and "(invalid xid
 * of N bytes)" for one that does not decode. Returns buf.
 */
const char *ctl_xid_text(const uint8_t *xid, size_t len, char *buf, size_t cap);

/* Aligned table (GID, STATE, HEURISTIC, XID) or JSON
 * {"txs":[{"gid","state","heuristic","xid"}],"more":b} of XA_RECOVER. */
void ctl_print_xa_recover(FILE *f, const Settle__V1__XaRecoverResponse *resp,
			  bool json);

/* The answer to xa forget: "GID: heuristic forgotten ..." or JSON
 * {"gid":..,"forgotten":true}. */
void ctl_print_xa_forget(FILE *f, const char *gid, bool json);

/* ---- cluster membership ------------------------------------------------ */

/* Parse a member role, case-insensitive: voter, standby, spare. Returns 0
 * or SETTLE_EINVAL. */
int ctl_role_parse(const char *text, Settle__V1__MemberRole *out);

/* Lower-case role name; "unknown" out of range. */
const char *ctl_role_name(int role);

/*
 * Parse a node id: a decimal integer from 1 to 2^64-1 with nothing else.
 * Returns 0 or SETTLE_EINVAL.
 */
int ctl_node_id_parse(const char *text, uint64_t *out);

/*
 * Check a "host:port" address as the coordinator will: a host of letters,
 * digits, '.', '-', '_' or a bracketed IPv6 address, and a port 1..65535.
 * Returns 0 or SETTLE_EINVAL. Nothing is resolved.
 */
int ctl_address_check(const char *text);

/* Aligned table or JSON {"leader_id":N,"members":[...]} of the members. */
/* PARTICIPANTS: a table (ENDPOINT, BREAKER, OK, FAILED, ERRORS,
 * DEFERRED, WAITING, STUCK BRANCHES, MEAN MS) or JSON. */
void ctl_print_participants(FILE *f,
			    const Settle__V1__ParticipantsResponse *resp,
			    bool json);
void ctl_print_members(FILE *f, const Settle__V1__ClusterMembersResponse *resp,
		       bool json);

/* One member as "node ID: ROLE, raft ..., clients ..." or JSON
 * {"member":{...}}. */
void ctl_print_member(FILE *f, const Settle__V1__Member *m, bool json);

#endif /* SETTLE_CTL_FMT_H */

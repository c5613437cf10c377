/*
 * ctl_cmd.h — what settlectl's commands share: the parsed command line and
 * the connection to the cluster (settlectl.c), and the commands that live
 * in files of their own (ctl_admin.c: --dry-run of the admin verbs and the
 * bulk tx retry).
 */
#ifndef SETTLE_CTL_CMD_H
#define SETTLE_CTL_CMD_H

#include <stdbool.h>
#include <stdint.h>

/* error.h before settle.h: see settle.h. */
#include "error.h"
#include "settle.h"

#define CTL_EXIT_USAGE 2
/* Admin verbs go through the log like a membership change: more than a
 * read. */
#define CTL_OP_TIMEOUT_MS 15000

struct ctl_opts {
	const char *cluster;
	bool json;
	uint64_t timeout_ms;
	/* tx list */
	bool have_state;
	Settle__V1__TxState state;
	bool stuck;
	uint64_t older_than_ms;
	uint32_t limit;
	const char *after;
	/* which list-only options were given, to refuse them elsewhere:
	 * filters (tx list) and paging (tx list, xa recover) */
	const char *list_flag;
	const char *page_flag;
	bool have_timeout;
	bool have_role;
	Settle__V1__MemberRole role;
	/* tx retry / resolve */
	uint32_t branch;
	const char *reason;
	const char *op_flag;   /* --branch or --reason, refused elsewhere */
	struct settle_tls tls; /* --tls-*, $SETTLE_TLS_*; cert NULL: plain */
	bool tls_flags;	       /* some --tls-* given on the command line */
	bool insecure;	       /* --insecure */
	/* admin verbs: --dry-run (say what would change, change nothing);
	 * bulk tx retry: --participant EP, --yes (no prompt) */
	bool dry_run;
	const char *participant;
	bool yes;
	/* top: --interval, --iterations (0: until interrupted) */
	uint64_t interval_ms;
	uint32_t iterations;
	const char *top_flag; /* --interval or --iterations given */
	/* backup: --node EP (default: the first of --cluster) */
	const char *node;
};

/* A client on o's cluster with o's timeout and TLS (settlectl.c); 0 or an
 * error, said on stderr. */
int ctl_open_client(const struct ctl_opts *o, settle_client **out);
/* The same with default_ms as the timeout unless --timeout was given. */
int ctl_open_admin(const struct ctl_opts *o, uint64_t default_ms,
		   settle_client **out);

/* Commands answer an exit status: 0, 1 (refused, no answer) or 2. */

/* ---- ctl_read.c ---- */
int ctl_cmd_status(const struct ctl_opts *o);
int ctl_cmd_participants(const struct ctl_opts *o);
int ctl_cmd_tx_list(const struct ctl_opts *o);
int ctl_cmd_tx_show(const struct ctl_opts *o, const char *gid);

/* ---- ctl_tx_ops.c ---- */
int ctl_cmd_tx_retry(const struct ctl_opts *o, const char *gid);
int ctl_cmd_tx_resolve(const struct ctl_opts *o, const char *gid);

/* ---- ctl_xa_cmd.c ---- */
int ctl_cmd_xa_recover(const struct ctl_opts *o);
int ctl_cmd_xa_forget(const struct ctl_opts *o, const char *gid);
int ctl_cmd_xa_heuristic(const struct ctl_opts *o, const char *gid,
			 bool commit);

/* ---- ctl_cluster.c ---- */
/* Call method on the leader with a timeout of default_ms unless --timeout
 * was given; *resp on success, the error said on stderr (what names the
 * verb). */
int ctl_admin_call(const struct ctl_opts *o, uint64_t default_ms, int method,
		   const ProtobufCMessage *req,
		   const ProtobufCMessageDescriptor *desc,
		   ProtobufCMessage **resp, const char *what);
int ctl_cmd_cluster_members(const struct ctl_opts *o);
int ctl_cmd_cluster_add(const struct ctl_opts *o, uint64_t id, char *raft,
			char *client);
int ctl_cmd_cluster_remove(const struct ctl_opts *o, uint64_t id);
int ctl_cmd_cluster_transfer(const struct ctl_opts *o, uint64_t id);

/* ---- ctl_admin.c ---- */

/* tx retry over a filter (--stuck, --state, --older-than, --limit,
 * --participant): the plan, a confirmation (--yes, or a terminal's
 * answer), then one TX_RETRY each; --dry-run stops at the plan. */
int ctl_cmd_tx_retry_bulk(const struct ctl_opts *o);
/* --dry-run of tx retry GID and tx resolve GID --branch N. */
int ctl_cmd_dry_tx(const struct ctl_opts *o, const char *gid, bool resolve);
/* --dry-run of cluster add / remove / transfer. */
int ctl_cmd_dry_cluster(const struct ctl_opts *o, const char *verb, uint64_t id,
			const char *raft, const char *client);
/* --dry-run of xa commit / rollback / forget GID. */
int ctl_cmd_dry_xa(const struct ctl_opts *o, const char *verb, const char *gid);

/* ---- ctl_watch.c ---- */

/* settlectl top: the live view (ctl_top.h). */
int ctl_cmd_top(const struct ctl_opts *o);

/* ---- ctl_backup.c ---- */

/* settlectl backup DIR: an online backup of one node's store into DIR. */
int ctl_cmd_backup(const struct ctl_opts *o, const char *dir);

#endif /* SETTLE_CTL_CMD_H */

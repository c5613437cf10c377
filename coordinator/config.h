/*
 * config.h — settled's configuration, from its command line.
 */
#ifndef SETTLE_COORD_CONFIG_H
#define SETTLE_COORD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define COORD_MAX_PEERS 9
#define COORD_ADDR_MAX	128

struct coord_peer {
	uint64_t id;
	char raft[COORD_ADDR_MAX];   /* raft address host:port */
	char client[COORD_ADDR_MAX]; /* client endpoint host:port */
};

/* An XA resource manager the leader drives (settled --xa-rm, docs/XA.md).
 * Every node must configure the same names. The conninfo stays on the
 * node: it never enters the raft log, events or answers. */
#define COORD_XA_RM_MAX	     16
#define COORD_XA_RM_NAME_MAX 64
struct coord_xa_rm_cfg {
	char name[COORD_XA_RM_NAME_MAX + 1]; /* [A-Za-z0-9_.-]{1,64} */
	int kind;			     /* enum xa_rm_kind (xa/rm.h) */
	char conninfo[1024];
};

#define COORD_PATH_MAX 512

struct coord_config {
	uint64_t id;
	char data_dir[512];
	char listen[COORD_ADDR_MAX]; /* client RPC endpoint */
	char raft[COORD_ADDR_MAX];   /* raft address */
	bool join; /* --join: never bootstrap, wait to be added */
	/* --insecure: plaintext, no certificates (else --tls-* is required;
	 * main.c also takes SETTLE_INSECURE=1). */
	bool insecure;
	struct coord_peer peers[COORD_MAX_PEERS];
	unsigned n_peers;	     /* includes this node */
	uint32_t default_timeout_ms; /* Begin without a timeout */
	uint32_t max_timeout_ms;     /* longest timeout a client may ask */
	uint64_t retention_ms;	     /* finished transactions kept this long */
	unsigned snapshot_threshold; /* raft entries between snapshots */
	unsigned snapshot_trailing;  /* raft entries kept after a snapshot */
	/* --snapshot-log: the most bytes of log between two snapshots (raft
	 * 0.15 holds them in memory; coordinator/snapshot_pace.h). */
	size_t snapshot_log_bytes;
	/* --snapshot-journal: the most bytes of journal a delta snapshot
	 * adds to its base before the next snapshot is a full one (0: all
	 * are; coordinator/snapshot_pace.h). */
	uint64_t snapshot_journal_bytes;
	uint32_t call_timeout_ms; /* one Confirm/Cancel call */
	uint32_t retry_base_ms;	  /* first retry delay */
	uint32_t retry_max_ms;	  /* retry delay cap */
	/* --retry-attempts: calls of one branch's Confirm, Cancel or
	 * Compensate before it is FAILED and waits for an operator (0: no
	 * end). */
	uint32_t retry_attempts;
	/* --breaker-failures, --breaker-pause: a participant endpoint's
	 * circuit breaker (breaker.h; 0 failures: none). */
	uint32_t breaker_failures;
	uint32_t breaker_pause_ms;
	uint64_t stuck_after_ms; /* unfinished longer than this is stuck */
	/* --store-budget: the most the LMDB store may take on disk (its
	 * map); new transactions are refused before it is reached. */
	size_t store_budget;
	uint32_t election_timeout_ms; /* raft: randomized in [t, 2t] */
	uint32_t heartbeat_ms;	      /* raft: leader heartbeat */
	/* --feature-level: the highest feature level this node claims and,
	 * leading, raises the cluster to (default FSM_LEVEL; lower only to
	 * act as an older release would, in tests and rehearsals). */
	uint32_t feature_level;
	/* XA: the formatID of the XIDs of this cluster's RM branches (it
	 * tells recovery which in-doubt XIDs are its own), the resource
	 * managers, and how often the leader scans them for in-doubt
	 * branches. */
	uint32_t xa_format_id;
	struct coord_xa_rm_cfg xa_rms[COORD_XA_RM_MAX];
	unsigned n_xa_rms;
	uint32_t xa_recover_interval_ms;
	/* A phase-2 call that keeps failing with an RM error (not a lost
	 * connection) is retried this many times, then the branch goes
	 * FAILED so that an operator sees it (--xa-max-attempts). */
	uint32_t xa_max_attempts;
	/* The client port's limits against hostile or broken clients
	 * (proto/rpc.h, rpc_opts; 0: none): connections at once, per source
	 * address, bytes held for frames not yet whole (all connections),
	 * how long a frame may take to arrive, and how long a connection
	 * with nothing in flight may stay idle. */
	uint32_t max_conns;
	uint32_t max_conns_per_addr;
	uint32_t max_partial_bytes;
	uint32_t frame_timeout_ms;
	uint32_t idle_timeout_ms;
	/* Open (ACTIVE or XA_PREPARED) transactions a client address may
	 * have begun through this leader (coordinator/quota.h; 0: none). */
	uint32_t max_open_per_client;
	/* Mutual TLS (proto/tls.h) on the client port and on this node's
	 * calls to other nodes and to participants: its certificate, key,
	 * the CA that signs every peer, and a CRL; "" when not given (all
	 * three or none; without them the client port is plaintext). */
	char tls_cert[COORD_PATH_MAX];
	char tls_key[COORD_PATH_MAX];
	char tls_ca[COORD_PATH_MAX];
	char tls_crl[COORD_PATH_MAX];
	/* --roles: which certificate may call what (coordinator/roles.h);
	 * "" when not given: every certificate the CA signed may do all. */
	char roles_file[COORD_PATH_MAX];
	/* --metrics: where the HTTP port of /metrics, /healthz and /readyz
	 * listens (metrics_http.h); "" when not given: no such port. */
	char metrics[COORD_ADDR_MAX];
	/* --restore FILE: a backup (settlectl backup) loaded into the empty
	 * store of a node that joins (needs --join). "": none. */
	char restore_file[COORD_PATH_MAX];
	/* --log-format json: log lines as JSON objects (log_json.h). */
	bool log_json;
};

/* Default formatID: "STLE" in ASCII. */
#define COORD_XA_FORMAT_ID_DEFAULT 0x53544c45u

/*
 * Parse argv into cfg (defaults first). On a bad argument returns
 * SETTLE_EINVAL with a one-line message in errmsg; "--help" returns 1 after
 * putting the usage text in errmsg.
 */
int coord_config_parse(struct coord_config *cfg, int argc, char **argv,
		       char *errmsg, size_t errmsg_len);

/* Usage text. */
const char *coord_config_usage(void);

/* Parse a duration: "1500ms", "30s", "5m", "2h", "7d" or bare milliseconds.
 * Returns 0 or SETTLE_EINVAL. */
int coord_parse_duration(const char *s, uint64_t *ms);

/*
 * Add one resource manager from "NAME=KIND:CONNINFO" (KIND pg, postgresql or
 * mariadb) to cfg->xa_rms; the text is copied. where names the source for
 * messages ("--xa-rm", "FILE:LINE"). Errors: SETTLE_EINVAL with a one-line
 * message in errmsg that never quotes the conninfo (it may hold a password):
 * bad name, unknown kind, empty or too long conninfo, a name given twice,
 * more than COORD_XA_RM_MAX.
 */
int coord_config_add_xa_rm(struct coord_config *cfg, const char *spec,
			   const char *where, char *errmsg, size_t errmsg_len);

/*
 * Add the resource managers of a file of "NAME=KIND:CONNINFO" lines (blank
 * lines and lines starting with '#' skipped), so that passwords stay out of
 * argv. The file must be a regular file not readable or writable by others.
 * Errors: SETTLE_EIO (cannot open or read), SETTLE_EINVAL (mode, syntax:
 * the message names the line, never its conninfo).
 */
int coord_config_read_xa_rm_file(struct coord_config *cfg, const char *path,
				 char *errmsg, size_t errmsg_len);

/* "pg" for XA_RM_POSTGRESQL, "mariadb" for XA_RM_MARIADB, "?" else. */
const char *coord_config_xa_kind_name(int kind);

/* The resource manager configured under name, or NULL. */
const struct coord_xa_rm_cfg *coord_config_xa_rm(const struct coord_config *cfg,
						 const char *name);

/* The client endpoint of raft node id, or NULL if unknown. */
const char *coord_config_client_of(const struct coord_config *cfg, uint64_t id);

#endif /* SETTLE_COORD_CONFIG_H */

#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "error.h"
#include "stream.h"
#include "wal/fsm.h"

/* enum xa_rm_kind of xa/rm.h; config.c stays free of the database headers
 * (xa_pool.c checks that the values agree). */
#define KIND_PG	     1
#define KIND_MARIADB 2

static const char usage[] =
    "usage: settled --id N --data DIR --listen HOST:PORT --raft HOST:PORT\n"
    "               [--peers ID=RAFTHOST:PORT=CLIENTHOST:PORT,...]\n"
    "               [--default-timeout DURATION] [--max-timeout DURATION]\n"
    "               [--retention DURATION] [--stuck-after DURATION]\n"
    "               [--call-timeout DURATION] [--retry-base DURATION]\n"
    "               [--retry-max DURATION] [--retry-attempts N]\n"
    "               [--breaker-failures N] [--breaker-pause DURATION]\n"
    "               [--snapshot-threshold N]\n"
    "               [--snapshot-trailing N] [--snapshot-log MIB]\n"
    "               [--snapshot-journal MIB]\n"
    "               [--store-budget MIB] [--join]\n"
    "               [--election-timeout DURATION] [--heartbeat DURATION]\n"
    "               [--feature-level N]\n"
    "               [--xa-rm NAME=pg:CONNINFO|NAME=mariadb:CONNINFO]...\n"
    "               [--xa-rm-file PATH] [--xa-format-id N]\n"
    "               [--xa-recover-interval DURATION] [--xa-max-attempts N]\n"
    "               [--max-connections N] [--max-connections-per-address N]\n"
    "               [--max-partial-frames MIB] [--frame-timeout DURATION]\n"
    "               [--idle-timeout DURATION] [--max-open-per-client N]\n"
    "               [--tls-cert FILE --tls-key FILE --tls-ca FILE]\n"
    "               [--tls-crl FILE] [--roles FILE] | --insecure\n"
    "               [--metrics HOST:PORT] [--log-format text|json]\n"
    "               [--config FILE] [--restore BACKUP --join]\n"
    "\n"
    "Without --peers the node bootstraps a one-voter cluster of itself.\n"
    "--join: join a running cluster instead; start with an empty raft\n"
    "configuration (never bootstrap) and wait until the leader adds this\n"
    "node (settlectl cluster add ID RAFTHOST:PORT CLIENTHOST:PORT). --peers,\n"
    "if given, only tells where the other members serve clients.\n"
    "Durations: 1500ms, 30s, 5m, 2h, 7d or bare milliseconds.\n"
    "--store-budget: disk the store may take (default 4096 MiB, at least\n"
    "8); near it new transactions are refused (docs/OPERATIONS.md).\n"
    "--map-size MIB is its old name.\n"
    "--snapshot-log: the most raft log between two snapshots (default 16\n"
    "MiB); raft holds it in memory until a snapshot lets it go.\n"
    "--snapshot-journal: the most journal of entries a delta snapshot adds\n"
    "to the last full one (default 1024 MiB; 0: every snapshot is full).\n"
    "--xa-rm: an XA resource manager the leader commits, rolls back and\n"
    "recovers (up to 16, same names on every node; docs/XA.md).\n"
    "--xa-rm-file: the same, one NAME=KIND:CONNINFO a line, so passwords\n"
    "stay out of the process list (the file must not be world-readable).\n"
    "--feature-level: claim at most this feature level (1..10, default 10):\n"
    "to behave as a release before feature levels (docs/OPERATIONS.md).\n"
    "Client port limits (0: none): --max-connections (default 4096) and\n"
    "--max-connections-per-address (1024) open at once; more are closed\n"
    "when accepted. --max-partial-frames: MiB held for frames not yet\n"
    "whole, all connections together (default 64). --frame-timeout: a\n"
    "frame begun must arrive whole within it (default 30s). --idle-timeout:\n"
    "close a connection idle that long with nothing in flight (default 0).\n"
    "--max-open-per-client: transactions a client address may have begun\n"
    "and not yet decided (default 50000); more Begins are refused.\n"
    "--tls-cert, --tls-key, --tls-ca: PEM files for mutual TLS 1.3 on the\n"
    "client port, on this node's calls to other nodes and participants,\n"
    "and the raft port (every peer's certificate must chain to the CA);\n"
    "--tls-crl: revoked certificates. A node without them starts only\n"
    "with --insecure (or SETTLE_INSECURE=1 in its environment): then\n"
    "every port is plaintext and open (docs/SECURITY.md).\n"
    "--roles: one `ROLE cn:NAME`, `ROLE fp:SHA256` or `ROLE san:NAME` a\n"
    "line (peer, initiator, participant, observer, admin): what each\n"
    "certificate may call; without it every certificate may call\n"
    "everything.\n"
    "--retry-attempts: calls of a branch's Confirm, Cancel or Compensate\n"
    "before it is FAILED and its transaction waits for an operator (default\n"
    "1000; 0: retried forever). --breaker-failures: calls in a row a\n"
    "participant endpoint leaves unanswered before its circuit breaker\n"
    "opens (default 5; 0: no breaker); --breaker-pause: the first pause\n"
    "before a probe (default 1s, doubling up to --retry-max).\n"
    "--config FILE: any of these flags as `name = value` lines (INI, no\n"
    "--; join and insecure take true or false); the command line's come\n"
    "after and win. The file must not be writable by others.\n"
    "--restore BACKUP: a file of settlectl backup loaded into this new\n"
    "node's empty store before it joins (with --join): it catches up from\n"
    "the backup's index instead of from nothing.\n"
    "--log-format json: one JSON object a log line (time, level, node,\n"
    "component, gid, branch, msg). SIGUSR1 logs more (debug and traces),\n"
    "SIGUSR2 less; SETTLE_LOG_LEVEL=error|warn|info|debug sets the start.\n"
    "--metrics HOST:PORT: plain HTTP for Prometheus (GET /metrics) and\n"
    "probes (/healthz: alive, /readyz: a member with a leader, caught up);\n"
    "it serves counts, never payloads (docs/OPERATIONS.md).\n";

const char *coord_config_usage(void)
{
	return usage;
}

int coord_parse_duration(const char *s, uint64_t *ms)
{
	char *end;
	unsigned long long v;
	uint64_t mul;

	if (s == NULL || *s < '0' || *s > '9')
		return SETTLE_EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0)
		return SETTLE_EINVAL;
	if (*end == '\0' || strcmp(end, "ms") == 0)
		mul = 1;
	else if (strcmp(end, "s") == 0)
		mul = 1000;
	else if (strcmp(end, "m") == 0)
		mul = 60 * 1000;
	else if (strcmp(end, "h") == 0)
		mul = 3600 * 1000;
	else if (strcmp(end, "d") == 0)
		mul = 24 * 3600 * 1000;
	else
		return SETTLE_EINVAL;
	if (v > UINT64_MAX / mul)
		return SETTLE_EINVAL;
	*ms = (uint64_t)v * mul;
	return 0;
}

/* host:port with a numeric port in 1..65535 (port 0 allowed for tests). */
static int check_address(const char *a)
{
	const char *colon = strrchr(a, ':');
	char *end;
	unsigned long port;

	if (colon == NULL || colon == a || strlen(a) >= COORD_ADDR_MAX)
		return SETTLE_EINVAL;
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (errno != 0 || *end != '\0' || end == colon + 1 || port > 65535)
		return SETTLE_EINVAL;
	return 0;
}

static int parse_u64(const char *s, uint64_t *v)
{
	char *end;
	unsigned long long x;

	if (s == NULL || *s < '0' || *s > '9')
		return SETTLE_EINVAL;
	errno = 0;
	x = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return SETTLE_EINVAL;
	*v = x;
	return 0;
}

/* "ID=RAFT=CLIENT,ID=RAFT=CLIENT" */
static int parse_peers(struct coord_config *cfg, const char *arg, char *errmsg,
		       size_t errmsg_len)
{
	char buf[2048];
	char *save = NULL;
	char *item;

	if (strlen(arg) >= sizeof buf) {
		snprintf(errmsg, errmsg_len, "--peers: too long");
		return SETTLE_EINVAL;
	}
	strcpy(buf, arg);
	cfg->n_peers = 0;
	for (item = strtok_r(buf, ",", &save); item != NULL;
	     item = strtok_r(NULL, ",", &save)) {
		struct coord_peer *p;
		char *eq1 = strchr(item, '=');
		char *eq2 = eq1 ? strchr(eq1 + 1, '=') : NULL;

		if (cfg->n_peers == COORD_MAX_PEERS) {
			snprintf(errmsg, errmsg_len,
				 "--peers: at most %d nodes", COORD_MAX_PEERS);
			return SETTLE_EINVAL;
		}
		if (eq1 == NULL || eq2 == NULL) {
			snprintf(errmsg, errmsg_len,
				 "--peers: '%s' is not ID=RAFTADDR=CLIENTADDR",
				 item);
			return SETTLE_EINVAL;
		}
		*eq1 = '\0';
		*eq2 = '\0';
		p = &cfg->peers[cfg->n_peers];
		if (parse_u64(item, &p->id) != 0 || p->id == 0 ||
		    check_address(eq1 + 1) != 0 ||
		    check_address(eq2 + 1) != 0) {
			snprintf(errmsg, errmsg_len,
				 "--peers: bad entry for node '%s'", item);
			return SETTLE_EINVAL;
		}
		for (unsigned i = 0; i < cfg->n_peers; i++) {
			if (cfg->peers[i].id == p->id) {
				snprintf(errmsg, errmsg_len,
					 "--peers: node %s listed twice", item);
				return SETTLE_EINVAL;
			}
		}
		strcpy(p->raft, eq1 + 1);
		strcpy(p->client, eq2 + 1);
		cfg->n_peers++;
	}
	return 0;
}

const char *coord_config_client_of(const struct coord_config *cfg, uint64_t id)
{
	for (unsigned i = 0; i < cfg->n_peers; i++)
		if (cfg->peers[i].id == id)
			return cfg->peers[i].client;
	return NULL;
}

const struct coord_xa_rm_cfg *coord_config_xa_rm(const struct coord_config *cfg,
						 const char *name)
{
	for (unsigned i = 0; i < cfg->n_xa_rms; i++)
		if (strcmp(cfg->xa_rms[i].name, name) == 0)
			return &cfg->xa_rms[i];
	return NULL;
}

const char *coord_config_xa_kind_name(int kind)
{
	switch (kind) {
	case KIND_PG:
		return "pg";
	case KIND_MARIADB:
		return "mariadb";
	}
	return "?";
}

static bool xa_name_ok(const char *s, size_t n)
{
	if (n == 0 || n > COORD_XA_RM_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '_' || ch == '.' ||
		      ch == '-'))
			return false;
	}
	return true;
}

int coord_config_add_xa_rm(struct coord_config *cfg, const char *spec,
			   const char *where, char *errmsg, size_t errmsg_len)
{
	const char *eq = strchr(spec, '=');
	const char *colon;
	struct coord_xa_rm_cfg *rm;
	size_t name_len, kind_len, info_len;
	int kind;

	/* Messages quote the name at most: the rest may hold a password. */
	if (eq == NULL || !xa_name_ok(spec, (size_t)(eq - spec))) {
		snprintf(
		    errmsg, errmsg_len,
		    "%s: expected NAME=pg:CONNINFO or NAME=mariadb:CONNINFO"
		    " with NAME of 1..64 characters A-Z a-z 0-9 _ . -",
		    where);
		return SETTLE_EINVAL;
	}
	name_len = (size_t)(eq - spec);
	colon = strchr(eq + 1, ':');
	kind_len = colon != NULL ? (size_t)(colon - (eq + 1)) : 0;
	if (colon != NULL && kind_len == 2 && strncmp(eq + 1, "pg", 2) == 0)
		kind = KIND_PG;
	else if (colon != NULL && kind_len == 10 &&
		 strncmp(eq + 1, "postgresql", 10) == 0)
		kind = KIND_PG;
	else if (colon != NULL && kind_len == 7 &&
		 strncmp(eq + 1, "mariadb", 7) == 0)
		kind = KIND_MARIADB;
	else {
		snprintf(errmsg, errmsg_len,
			 "%s: resource manager %.*s: the kind must be pg or "
			 "mariadb (NAME=KIND:CONNINFO)",
			 where, (int)name_len, spec);
		return SETTLE_EINVAL;
	}
	info_len = strlen(colon + 1);
	if (info_len == 0 || info_len >= sizeof rm->conninfo) {
		snprintf(errmsg, errmsg_len,
			 "%s: resource manager %.*s: the conninfo must have "
			 "1..%zu bytes",
			 where, (int)name_len, spec, sizeof rm->conninfo - 1);
		return SETTLE_EINVAL;
	}
	for (unsigned i = 0; i < cfg->n_xa_rms; i++) {
		if (strlen(cfg->xa_rms[i].name) == name_len &&
		    strncmp(cfg->xa_rms[i].name, spec, name_len) == 0) {
			snprintf(errmsg, errmsg_len,
				 "%s: resource manager %.*s configured twice",
				 where, (int)name_len, spec);
			return SETTLE_EINVAL;
		}
	}
	if (cfg->n_xa_rms == COORD_XA_RM_MAX) {
		snprintf(errmsg, errmsg_len, "%s: at most %d resource managers",
			 where, COORD_XA_RM_MAX);
		return SETTLE_EINVAL;
	}
	rm = &cfg->xa_rms[cfg->n_xa_rms++];
	memcpy(rm->name, spec, name_len);
	rm->name[name_len] = '\0';
	rm->kind = kind;
	memcpy(rm->conninfo, colon + 1, info_len + 1);
	return 0;
}

/* Strip leading and trailing blanks (and a CR) in place. */
static char *trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t' ||
			 s[n - 1] == '\r' || s[n - 1] == '\n'))
		s[--n] = '\0';
	return s;
}

int coord_config_read_xa_rm_file(struct coord_config *cfg, const char *path,
				 char *errmsg, size_t errmsg_len)
{
	char line[2048], where[600];
	struct stat st;
	unsigned lineno = 0;
	FILE *f;
	int rv = 0;

	f = fopen(path, "r");
	if (f == NULL) {
		snprintf(errmsg, errmsg_len, "--xa-rm-file %s: %s", path,
			 strerror(errno));
		return SETTLE_EIO;
	}
	if (fstat(fileno(f), &st) != 0) {
		snprintf(errmsg, errmsg_len, "--xa-rm-file %s: %s", path,
			 strerror(errno));
		rv = SETTLE_EIO;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(errmsg, errmsg_len,
			 "--xa-rm-file %s: not a regular file", path);
		rv = SETTLE_EINVAL;
		goto out;
	}
	/* It holds passwords: refuse a file others may read or change. */
	if ((st.st_mode & (S_IROTH | S_IWOTH)) != 0) {
		snprintf(errmsg, errmsg_len,
			 "--xa-rm-file %s: readable or writable by others "
			 "(chmod o-rw %s)",
			 path, path);
		rv = SETTLE_EINVAL;
		goto out;
	}
	while (fgets(line, sizeof line, f) != NULL) {
		size_t n = strlen(line);
		char *s;

		lineno++;
		if (n == sizeof line - 1 && line[n - 1] != '\n' && !feof(f)) {
			snprintf(errmsg, errmsg_len,
				 "--xa-rm-file %s:%u: line too long", path,
				 lineno);
			rv = SETTLE_EINVAL;
			goto out;
		}
		s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		snprintf(where, sizeof where, "--xa-rm-file %s:%u", path,
			 lineno);
		rv = coord_config_add_xa_rm(cfg, s, where, errmsg, errmsg_len);
		if (rv != 0)
			goto out;
	}
	if (ferror(f)) {
		snprintf(errmsg, errmsg_len, "--xa-rm-file %s: read error",
			 path);
		rv = SETTLE_EIO;
	}
out:
	fclose(f);
	return rv;
}

static void defaults(struct coord_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->xa_format_id = COORD_XA_FORMAT_ID_DEFAULT;
	cfg->xa_recover_interval_ms = 60 * 1000;
	cfg->xa_max_attempts = 20;
	cfg->max_conns = 4096;
	cfg->max_conns_per_addr = 1024;
	cfg->max_partial_bytes = 64u << 20;
	cfg->frame_timeout_ms = 30 * 1000;
	cfg->idle_timeout_ms = 0;
	cfg->max_open_per_client = 50000;
	cfg->default_timeout_ms = 60 * 1000;
	cfg->max_timeout_ms = 24 * 3600 * 1000;
	cfg->retention_ms = 24ull * 3600 * 1000;
	cfg->snapshot_threshold = 16384;
	cfg->feature_level = FSM_LEVEL;
	cfg->snapshot_trailing = 4096;
	cfg->snapshot_log_bytes = (size_t)16 << 20;
	cfg->snapshot_journal_bytes = (uint64_t)1024 << 20;
	cfg->call_timeout_ms = 5000;
	cfg->retry_base_ms = 200;
	cfg->retry_max_ms = 30 * 1000;
	cfg->retry_attempts = 1000;
	cfg->breaker_failures = 5;
	cfg->breaker_pause_ms = 1000;
	cfg->stuck_after_ms = 5 * 60 * 1000;
	cfg->store_budget = (size_t)4 << 30;
	/* A dead leader is replaced within 0.8 s here (timeouts are drawn
	 * in [t, 2t], plus a pre-vote and a vote round; issue 12 asks 1 s
	 * for the slowest transaction across it); heartbeats at a quarter
	 * of it, and pre-vote, keep a loaded machine from needless
	 * elections (none in 60 s at 4,096 in flight on 3 nodes). */
	cfg->election_timeout_ms = 400;
	cfg->heartbeat_ms = 100;
}

#define NEED_VALUE()                                                           \
	do {                                                                   \
		if (i + 1 >= argc) {                                           \
			snprintf(errmsg, errmsg_len, "%s needs a value", a);   \
			return SETTLE_EINVAL;                                  \
		}                                                              \
		v = argv[++i];                                                 \
	} while (0)

static int set_duration32(const char *a, const char *v, uint32_t *out,
			  char *errmsg, size_t errmsg_len)
{
	uint64_t ms;

	if (coord_parse_duration(v, &ms) != 0 || ms > UINT32_MAX) {
		snprintf(errmsg, errmsg_len, "%s: bad duration '%s'", a, v);
		return SETTLE_EINVAL;
	}
	*out = (uint32_t)ms;
	return 0;
}

int coord_config_parse(struct coord_config *cfg, int argc, char **argv,
		       char *errmsg, size_t errmsg_len)
{
	bool have_peers = false;
	int rv;

	defaults(cfg);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = NULL;
		uint64_t n;

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			snprintf(errmsg, errmsg_len, "%s", usage);
			return 1;
		} else if (strcmp(a, "--id") == 0) {
			NEED_VALUE();
			if (parse_u64(v, &cfg->id) != 0 || cfg->id == 0) {
				snprintf(errmsg, errmsg_len,
					 "--id: '%s' is not a positive integer",
					 v);
				return SETTLE_EINVAL;
			}
		} else if (strcmp(a, "--data") == 0) {
			NEED_VALUE();
			if (strlen(v) >= sizeof cfg->data_dir - 32) {
				snprintf(errmsg, errmsg_len,
					 "--data: too long");
				return SETTLE_EINVAL;
			}
			strcpy(cfg->data_dir, v);
		} else if (strcmp(a, "--listen") == 0 ||
			   strcmp(a, "--raft") == 0) {
			NEED_VALUE();
			if (check_address(v) != 0) {
				snprintf(errmsg, errmsg_len,
					 "%s: '%s' is not HOST:PORT", a, v);
				return SETTLE_EINVAL;
			}
			strcpy(a[2] == 'l' ? cfg->listen : cfg->raft, v);
		} else if (strcmp(a, "--join") == 0) {
			cfg->join = true;
		} else if (strcmp(a, "--insecure") == 0) {
			cfg->insecure = true;
		} else if (strcmp(a, "--peers") == 0) {
			NEED_VALUE();
			rv = parse_peers(cfg, v, errmsg, errmsg_len);
			if (rv != 0)
				return rv;
			have_peers = true;
		} else if (strcmp(a, "--default-timeout") == 0) {
			NEED_VALUE();
			if (set_duration32(a, v, &cfg->default_timeout_ms,
					   errmsg, errmsg_len) != 0)
				return SETTLE_EINVAL;
		} else if (strcmp(a, "--max-timeout") == 0) {
			NEED_VALUE();
			if (set_duration32(a, v, &cfg->max_timeout_ms, errmsg,
					   errmsg_len) != 0)
				return SETTLE_EINVAL;
		} else if (strcmp(a, "--call-timeout") == 0) {
			NEED_VALUE();
			if (set_duration32(a, v, &cfg->call_timeout_ms, errmsg,
					   errmsg_len) != 0)
				return SETTLE_EINVAL;
		} else if (strcmp(a, "--election-timeout") == 0) {
			NEED_VALUE();
			if (set_duration32(a, v, &cfg->election_timeout_ms,
					   errmsg, errmsg_len) != 0)
				return SETTLE_EINVAL;
		} else if (strcmp(a, "--heartbeat") == 0) {
			NEED_VALUE();
			if (set_duration32(a, v, &cfg->heartbeat_ms, errmsg,
					   errmsg_len) != 0)
				return SETTLE_EINVAL;
		} else if (strcmp(a, "--retry-base") == 0) {
			NEED_VALUE();
			if (set_duration32(a, v, &cfg->retry_base_ms, errmsg,
					   errmsg_len) != 0)
				return SETTLE_EINVAL;
		} else if (strcmp(a, "--retry-max") == 0) {
			NEED_VALUE();
			if (set_duration32(a, v, &cfg->retry_max_ms, errmsg,
					   errmsg_len) != 0)
				return SETTLE_EINVAL;
		} else if (strcmp(a, "--retention") == 0 ||
			   strcmp(a, "--stuck-after") == 0) {
			NEED_VALUE();
			if (coord_parse_duration(v, &n) != 0) {
				snprintf(errmsg, errmsg_len,
					 "%s: bad duration '%s'", a, v);
				return SETTLE_EINVAL;
			}
			if (a[2] == 'r')
				cfg->retention_ms = n;
			else
				cfg->stuck_after_ms = n;
		} else if (strcmp(a, "--store-budget") == 0 ||
			   strcmp(a, "--map-size") == 0 ||
			   strcmp(a, "--snapshot-log") == 0 ||
			   strcmp(a, "--snapshot-journal") == 0) {
			/* --map-size was the LMDB map, which the budget now
			 * is: the old name keeps working. */
			bool log = strcmp(a, "--snapshot-log") == 0;
			bool journal = strcmp(a, "--snapshot-journal") == 0;
			uint64_t lo = log ? 1 : journal ? 0 : 8;
			uint64_t hi = log || journal ? 65536 : 1u << 30;
			NEED_VALUE();
			if (parse_u64(v, &n) != 0 || n < lo || n > hi) {
				snprintf(errmsg, errmsg_len,
					 "%s: '%s' is not a size in MiB "
					 "(%llu..%llu)",
					 a, v, (unsigned long long)lo,
					 (unsigned long long)hi);
				return SETTLE_EINVAL;
			}
			if (log)
				cfg->snapshot_log_bytes = (size_t)n << 20;
			else if (journal)
				cfg->snapshot_journal_bytes = n << 20;
			else
				cfg->store_budget = (size_t)n << 20;
		} else if (strcmp(a, "--snapshot-threshold") == 0 ||
			   strcmp(a, "--snapshot-trailing") == 0) {
			NEED_VALUE();
			if (parse_u64(v, &n) != 0 || n == 0 || n > 1u << 30) {
				snprintf(errmsg, errmsg_len,
					 "%s: '%s' is not a positive integer",
					 a, v);
				return SETTLE_EINVAL;
			}
			if (a[11] == 't' && a[12] == 'h')
				cfg->snapshot_threshold = (unsigned)n;
			else
				cfg->snapshot_trailing = (unsigned)n;
		} else if (strcmp(a, "--feature-level") == 0) {
			NEED_VALUE();
			if (parse_u64(v, &n) != 0 || n < FSM_LEVEL_BASE ||
			    n > FSM_LEVEL) {
				snprintf(errmsg, errmsg_len,
					 "%s: '%s' is not a feature level this "
					 "binary has (%d..%d)",
					 a, v, FSM_LEVEL_BASE, FSM_LEVEL);
				return SETTLE_EINVAL;
			}
			cfg->feature_level = (uint32_t)n;
		} else if (strcmp(a, "--xa-rm") == 0) {
			NEED_VALUE();
			rv = coord_config_add_xa_rm(cfg, v, a, errmsg,
						    errmsg_len);
			if (rv != 0)
				return rv;
		} else if (strcmp(a, "--xa-rm-file") == 0) {
			NEED_VALUE();
			rv = coord_config_read_xa_rm_file(cfg, v, errmsg,
							  errmsg_len);
			if (rv != 0)
				return SETTLE_EINVAL;
		} else if (strcmp(a, "--xa-format-id") == 0) {
			NEED_VALUE();
			if (parse_u64(v, &n) != 0 || n > INT32_MAX) {
				snprintf(errmsg, errmsg_len,
					 "--xa-format-id: '%s' is not in "
					 "0..2147483647",
					 v);
				return SETTLE_EINVAL;
			}
			cfg->xa_format_id = (uint32_t)n;
		} else if (strcmp(a, "--xa-recover-interval") == 0) {
			NEED_VALUE();
			if (set_duration32(a, v, &cfg->xa_recover_interval_ms,
					   errmsg, errmsg_len) != 0)
				return SETTLE_EINVAL;
			if (cfg->xa_recover_interval_ms < 100) {
				snprintf(errmsg, errmsg_len,
					 "--xa-recover-interval: at least "
					 "100ms");
				return SETTLE_EINVAL;
			}
		} else if (strcmp(a, "--retry-attempts") == 0 ||
			   strcmp(a, "--breaker-failures") == 0) {
			NEED_VALUE();
			if (parse_u64(v, &n) != 0 || n > 1000000) {
				snprintf(errmsg, errmsg_len,
					 "%s: '%s' is not in 0..1000000", a, v);
				return SETTLE_EINVAL;
			}
			*(strcmp(a, "--retry-attempts") == 0
			      ? &cfg->retry_attempts
			      : &cfg->breaker_failures) = (uint32_t)n;
		} else if (strcmp(a, "--breaker-pause") == 0) {
			NEED_VALUE();
			if (set_duration32(a, v, &cfg->breaker_pause_ms, errmsg,
					   errmsg_len) != 0)
				return SETTLE_EINVAL;
		} else if (strcmp(a, "--xa-max-attempts") == 0) {
			NEED_VALUE();
			if (parse_u64(v, &n) != 0 || n == 0 || n > 1000000) {
				snprintf(errmsg, errmsg_len,
					 "--xa-max-attempts: '%s' is not in "
					 "1..1000000",
					 v);
				return SETTLE_EINVAL;
			}
			cfg->xa_max_attempts = (uint32_t)n;
		} else if (strcmp(a, "--max-connections") == 0 ||
			   strcmp(a, "--max-connections-per-address") == 0) {
			NEED_VALUE();
			if (parse_u64(v, &n) != 0 || n > 1000000) {
				snprintf(errmsg, errmsg_len,
					 "%s: '%s' is not in 0..1000000", a, v);
				return SETTLE_EINVAL;
			}
			*(strcmp(a, "--max-connections") == 0
			      ? &cfg->max_conns
			      : &cfg->max_conns_per_addr) = (uint32_t)n;
		} else if (strncmp(a, "--tls-", 6) == 0 &&
			   (strcmp(a + 6, "cert") == 0 ||
			    strcmp(a + 6, "key") == 0 ||
			    strcmp(a + 6, "ca") == 0 ||
			    strcmp(a + 6, "crl") == 0)) {
			const char *what = a + 6;
			char *dst = strcmp(what, "cert") == 0  ? cfg->tls_cert
				    : strcmp(what, "key") == 0 ? cfg->tls_key
				    : strcmp(what, "ca") == 0  ? cfg->tls_ca
							       : cfg->tls_crl;

			NEED_VALUE();
			if (v[0] == '\0' || strlen(v) >= COORD_PATH_MAX) {
				snprintf(errmsg, errmsg_len,
					 "%s: a file path of 1..%d bytes", a,
					 COORD_PATH_MAX - 1);
				return SETTLE_EINVAL;
			}
			strcpy(dst, v);
		} else if (strcmp(a, "--roles") == 0) {
			NEED_VALUE();
			if (v[0] == '\0' || strlen(v) >= COORD_PATH_MAX) {
				snprintf(errmsg, errmsg_len,
					 "--roles: a file path of 1..%d bytes",
					 COORD_PATH_MAX - 1);
				return SETTLE_EINVAL;
			}
			strcpy(cfg->roles_file, v);
		} else if (strcmp(a, "--restore") == 0) {
			NEED_VALUE();
			if (v[0] == '\0' || strlen(v) >= COORD_PATH_MAX) {
				snprintf(
				    errmsg, errmsg_len,
				    "--restore: a file path of 1..%d bytes",
				    COORD_PATH_MAX - 1);
				return SETTLE_EINVAL;
			}
			strcpy(cfg->restore_file, v);
		} else if (strcmp(a, "--log-format") == 0) {
			NEED_VALUE();
			if (strcmp(v, "json") != 0 && strcmp(v, "text") != 0) {
				snprintf(errmsg, errmsg_len,
					 "--log-format: '%.*s' is not text or "
					 "json",
					 32, v);
				return SETTLE_EINVAL;
			}
			cfg->log_json = strcmp(v, "json") == 0;
		} else if (strcmp(a, "--metrics") == 0) {
			char host[COORD_ADDR_MAX];
			struct sockaddr_storage sa;
			int port;

			NEED_VALUE();
			if (strlen(v) >= COORD_ADDR_MAX ||
			    rpc_addr_split(v, host, sizeof host, &port) != 0 ||
			    port == 0 ||
			    rpc_addr_numeric(host, port, &sa) != 0) {
				snprintf(errmsg, errmsg_len,
					 "--metrics: '%.*s' is not a numeric "
					 "HOST:PORT (e.g. 127.0.0.1:9100)",
					 64, v);
				return SETTLE_EINVAL;
			}
			strcpy(cfg->metrics, v);
		} else if (strcmp(a, "--max-open-per-client") == 0) {
			NEED_VALUE();
			if (parse_u64(v, &n) != 0 || n > 100000000) {
				snprintf(
				    errmsg, errmsg_len,
				    "--max-open-per-client: '%s' is not in "
				    "0..100000000",
				    v);
				return SETTLE_EINVAL;
			}
			cfg->max_open_per_client = (uint32_t)n;
		} else if (strcmp(a, "--max-partial-frames") == 0) {
			NEED_VALUE();
			if (parse_u64(v, &n) != 0 || n > 4095) {
				snprintf(
				    errmsg, errmsg_len,
				    "--max-partial-frames: '%s' MiB is not "
				    "in 0..4095",
				    v);
				return SETTLE_EINVAL;
			}
			cfg->max_partial_bytes = (uint32_t)(n << 20);
		} else if (strcmp(a, "--frame-timeout") == 0) {
			NEED_VALUE();
			if (set_duration32(a, v, &cfg->frame_timeout_ms, errmsg,
					   errmsg_len) != 0)
				return SETTLE_EINVAL;
		} else if (strcmp(a, "--idle-timeout") == 0) {
			NEED_VALUE();
			if (set_duration32(a, v, &cfg->idle_timeout_ms, errmsg,
					   errmsg_len) != 0)
				return SETTLE_EINVAL;
		} else {
			/* "--xa-rm=NAME=pg:password=..." must not be echoed:
			 * quote only what comes before a '='. */
			snprintf(errmsg, errmsg_len,
				 "unknown argument '%.*s' (try --help)",
				 (int)strcspn(a, "="), a);
			return SETTLE_EINVAL;
		}
	}
	if (cfg->id == 0 || cfg->data_dir[0] == '\0' ||
	    cfg->listen[0] == '\0' || cfg->raft[0] == '\0') {
		snprintf(errmsg, errmsg_len,
			 "--id, --data, --listen and --raft are required "
			 "(try --help)");
		return SETTLE_EINVAL;
	}
	if (cfg->retry_base_ms == 0 || cfg->retry_max_ms < cfg->retry_base_ms) {
		snprintf(errmsg, errmsg_len,
			 "--retry-base must be > 0 and <= --retry-max");
		return SETTLE_EINVAL;
	}
	if (cfg->default_timeout_ms == 0 ||
	    cfg->default_timeout_ms > cfg->max_timeout_ms) {
		snprintf(errmsg, errmsg_len,
			 "--default-timeout must be > 0 and <= --max-timeout");
		return SETTLE_EINVAL;
	}
	if (cfg->heartbeat_ms == 0 ||
	    cfg->election_timeout_ms < 2 * cfg->heartbeat_ms) {
		snprintf(
		    errmsg, errmsg_len,
		    "--election-timeout must be at least twice --heartbeat "
		    "(and both > 0)");
		return SETTLE_EINVAL;
	}
	if ((cfg->tls_cert[0] != '\0') != (cfg->tls_key[0] != '\0') ||
	    (cfg->tls_cert[0] != '\0') != (cfg->tls_ca[0] != '\0') ||
	    (cfg->tls_crl[0] != '\0' && cfg->tls_cert[0] == '\0')) {
		snprintf(
		    errmsg, errmsg_len,
		    "TLS needs --tls-cert, --tls-key and --tls-ca together "
		    "(--tls-crl only with them)");
		return SETTLE_EINVAL;
	}
	if (cfg->insecure && cfg->tls_cert[0] != '\0') {
		snprintf(errmsg, errmsg_len,
			 "--insecure (plaintext) and --tls-cert together: "
			 "choose one");
		return SETTLE_EINVAL;
	}
	if (cfg->restore_file[0] != '\0' && !cfg->join) {
		snprintf(errmsg, errmsg_len,
			 "--restore needs --join: a backup seeds a new node "
			 "that joins the cluster it came from (its log "
			 "brings the rest); it cannot start a cluster");
		return SETTLE_EINVAL;
	}
	if (cfg->roles_file[0] != '\0' && cfg->tls_cert[0] == '\0') {
		snprintf(errmsg, errmsg_len,
			 "--roles needs TLS (--tls-cert, --tls-key, --tls-ca): "
			 "roles come from certificates");
		return SETTLE_EINVAL;
	}
	if (!have_peers) {
		cfg->n_peers = 1;
		cfg->peers[0].id = cfg->id;
		strcpy(cfg->peers[0].raft, cfg->raft);
		strcpy(cfg->peers[0].client, cfg->listen);
	} else if (coord_config_client_of(cfg, cfg->id) == NULL && cfg->join &&
		   cfg->n_peers < COORD_MAX_PEERS) {
		/* A joining node's --peers names the members it joins. */
		struct coord_peer *p = &cfg->peers[cfg->n_peers++];

		p->id = cfg->id;
		strcpy(p->raft, cfg->raft);
		strcpy(p->client, cfg->listen);
	} else if (coord_config_client_of(cfg, cfg->id) == NULL) {
		snprintf(errmsg, errmsg_len,
			 "--peers must include this node (--id %llu)",
			 (unsigned long long)cfg->id);
		return SETTLE_EINVAL;
	}
	return 0;
}

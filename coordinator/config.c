#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

static const char usage[] =
    "usage: settled --id N --data DIR --listen HOST:PORT --raft HOST:PORT\n"
    "               [--peers ID=RAFTHOST:PORT=CLIENTHOST:PORT,...]\n"
    "               [--default-timeout DURATION] [--max-timeout DURATION]\n"
    "               [--retention DURATION] [--stuck-after DURATION]\n"
    "               [--call-timeout DURATION] [--retry-base DURATION]\n"
    "               [--retry-max DURATION] [--snapshot-threshold N]\n"
    "               [--snapshot-trailing N] [--map-size MIB] [--join]\n"
    "               [--election-timeout DURATION] [--heartbeat DURATION]\n"
    "\n"
    "Without --peers the node bootstraps a one-voter cluster of itself.\n"
    "--join: join a running cluster instead; start with an empty raft\n"
    "configuration (never bootstrap) and wait until the leader adds this\n"
    "node (settlectl cluster add ID RAFTHOST:PORT CLIENTHOST:PORT). --peers,\n"
    "if given, only tells where the other members serve clients.\n"
    "Durations: 1500ms, 30s, 5m, 2h, 7d or bare milliseconds.\n";

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

static void defaults(struct coord_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
	cfg->xa_format_id = COORD_XA_FORMAT_ID_DEFAULT;
	cfg->xa_recover_interval_ms = 60 * 1000;
	cfg->default_timeout_ms = 60 * 1000;
	cfg->max_timeout_ms = 24 * 3600 * 1000;
	cfg->retention_ms = 24ull * 3600 * 1000;
	cfg->snapshot_threshold = 16384;
	cfg->snapshot_trailing = 4096;
	cfg->call_timeout_ms = 5000;
	cfg->retry_base_ms = 200;
	cfg->retry_max_ms = 30 * 1000;
	cfg->stuck_after_ms = 5 * 60 * 1000;
	cfg->map_size = (size_t)1 << 30;
	/* A dead leader is replaced within about 1.5 s (timeouts are drawn
	 * in [t, 2t], plus a pre-vote and a vote round); heartbeats at a
	 * seventh of it keep a loaded machine from needless elections. */
	cfg->election_timeout_ms = 700;
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
		} else if (strcmp(a, "--snapshot-threshold") == 0 ||
			   strcmp(a, "--snapshot-trailing") == 0 ||
			   strcmp(a, "--map-size") == 0) {
			NEED_VALUE();
			if (parse_u64(v, &n) != 0 || n == 0 || n > 1u << 30) {
				snprintf(errmsg, errmsg_len,
					 "%s: '%s' is not a positive integer",
					 a, v);
				return SETTLE_EINVAL;
			}
			if (strcmp(a, "--map-size") == 0)
				cfg->map_size = (size_t)n << 20;
			else if (a[11] == 't' && a[12] == 'h')
				cfg->snapshot_threshold = (unsigned)n;
			else
				cfg->snapshot_trailing = (unsigned)n;
		} else {
			snprintf(errmsg, errmsg_len,
				 "unknown argument '%s' (try --help)", a);
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

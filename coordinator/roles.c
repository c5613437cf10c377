/*
 * roles.c — certificate names to roles, and methods to the roles that may
 * call them (roles.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "roles.h"
#include "rpc.h"
#include "settle.pb-c.h"

/* What a grant matches (the certificate's CN, its SHA-256 fingerprint,
 * or one of its subjectAltNames), and what it grants. */
struct coord_role_grant {
	struct rpc_peer_match m;
	unsigned roles;
	uint64_t raft_id; /* a peer grant's `id:N`; 0: any raft id */
};

static const struct {
	const char *name;
	unsigned bit;
} role_names[] = {
    {"peer", COORD_ROLE_PEER},
    {"initiator", COORD_ROLE_INITIATOR},
    {"participant", COORD_ROLE_PARTICIPANT},
    {"observer", COORD_ROLE_OBSERVER},
    {"admin", COORD_ROLE_ADMIN},
};

#define NROLES (sizeof role_names / sizeof role_names[0])

static unsigned role_bit(const char *s)
{
	for (size_t i = 0; i < NROLES; i++)
		if (strcmp(role_names[i].name, s) == 0)
			return role_names[i].bit;
	return 0;
}

void coord_roles_free(struct coord_roles *r)
{
	free(r->grants);
	r->grants = NULL;
	r->n = 0;
}

static int grant(struct coord_roles *r, const struct rpc_peer_match *m,
		 unsigned bit, uint64_t raft_id)
{
	struct coord_role_grant *g;

	for (size_t i = 0; i < r->n; i++)
		if (r->grants[i].m.kind == m->kind &&
		    strcmp(r->grants[i].m.value, m->value) == 0) {
			if (raft_id != 0 && r->grants[i].raft_id != 0 &&
			    r->grants[i].raft_id != raft_id)
				return SETTLE_EINVAL;
			r->grants[i].roles |= bit;
			if (raft_id != 0)
				r->grants[i].raft_id = raft_id;
			return 0;
		}
	g = realloc(r->grants, (r->n + 1) * sizeof *g);
	if (g == NULL)
		return SETTLE_ENOMEM;
	r->grants = g;
	g[r->n].m = *m;
	g[r->n].roles = bit;
	g[r->n].raft_id = raft_id;
	r->n++;
	return 0;
}

int coord_roles_load(struct coord_roles *r, const char *path, char *errmsg,
		     size_t errmsg_len)
{
	char line[512], role[32], match[512];
	char idtok[32];
	unsigned lineno = 0;
	FILE *f = fopen(path, "r");
	int rv = 0;

	r->grants = NULL;
	r->n = 0;
	if (f == NULL) {
		snprintf(errmsg, errmsg_len, "--roles %s: %s", path,
			 strerror(errno));
		return SETTLE_EIO;
	}
	while (rv == 0 && fgets(line, sizeof line, f) != NULL) {
		char *hash = strchr(line, '#'), extra[2];
		unsigned bit;
		unsigned long long raft_id = 0;
		struct rpc_peer_match m;
		int k, used = 0;

		lineno++;
		if (strchr(line, '\n') == NULL && !feof(f)) {
			/* Cut by fgets: its tail would read as a line of its
			 * own, a comment's as a grant. */
			snprintf(errmsg, errmsg_len,
				 "--roles %s line %u: longer than %zu bytes",
				 path, lineno, sizeof line - 2);
			rv = SETTLE_EINVAL;
			break;
		}
		if (hash != NULL)
			*hash = '\0';
		k = sscanf(line, "%31s %511s %31s %1s", role, match, idtok,
			   extra);
		if (k <= 0)
			continue; /* blank or a comment */
		bit = k == 2 || k == 3 ? role_bit(role) : 0;
		/* A peer may be bound to its raft id: `peer MATCH id:N`. */
		if (k == 3 &&
		    (bit != COORD_ROLE_PEER ||
		     sscanf(idtok, "id:%llu%n", &raft_id, &used) != 1 ||
		     idtok[used] != '\0' || raft_id == 0))
			bit = 0;
		if (bit == 0 || rpc_peer_match_parse(match, &m) != 0) {
			snprintf(
			    errmsg, errmsg_len,
			    "--roles %s line %u: want ROLE cn:NAME, ROLE "
			    "fp:SHA256-HEX or ROLE san:NAME, ROLE one of "
			    "peer, initiator, participant, observer, admin "
			    "(NAME up to %d bytes, a SAN up to %d), a peer "
			    "optionally followed by id:RAFT-ID",
			    path, lineno, COORD_ROLES_NAME_MAX,
			    COORD_ROLES_VALUE_MAX);
			rv = SETTLE_EINVAL;
			break;
		}
		rv = grant(r, &m, bit, (uint64_t)raft_id);
		if (rv != 0)
			snprintf(errmsg, errmsg_len,
				 rv == SETTLE_EINVAL
				     ? "--roles %s line %u: a certificate "
				       "bound to two raft ids"
				     : "--roles %s line %u: out of memory",
				 path, lineno);
	}
	fclose(f);
	if (rv != 0)
		coord_roles_free(r);
	return rv;
}

unsigned coord_roles_of(const struct coord_roles *r,
			const struct rpc_peer_id *id)
{
	unsigned roles = 0;

	for (size_t i = 0; i < r->n; i++)
		if (rpc_peer_match_is(&r->grants[i].m, id))
			roles |= r->grants[i].roles;
	return roles;
}

#define M(x) SETTLE__V1__METHOD__##x

unsigned coord_roles_for_method(int method)
{
	const unsigned reads =
	    COORD_ROLE_OBSERVER | COORD_ROLE_INITIATOR | COORD_ROLE_ADMIN;

	switch (method) {
	case M(STATUS):
		return reads | COORD_ROLE_PEER;
	case M(QUERY):
	case M(LIST):
	case M(CLUSTER_MEMBERS):
		return reads;
	case M(PARTICIPANTS):
		return COORD_ROLE_OBSERVER | COORD_ROLE_ADMIN;
	case M(BEGIN):
	case M(SUBMIT_SAGA):
	case M(REGISTER_BRANCH):
	case M(COMMIT):
	case M(ROLLBACK):
	case M(XA_VOTE):
	case M(XA_PREPARE):
	case M(XA_RECOVER):
	case M(XA_FORGET):
		return COORD_ROLE_INITIATOR | COORD_ROLE_ADMIN;
	case M(TX_RETRY):
	case M(TX_RESOLVE):
	case M(XA_HEURISTIC):
	case M(CLUSTER_ADD):
	case M(CLUSTER_REMOVE):
	case M(CLUSTER_TRANSFER):
	case M(BACKUP): /* every payload is in it */
		return COORD_ROLE_ADMIN;
	}
	return 0;
}

const char *coord_roles_names(unsigned mask, char *buf, size_t len)
{
	size_t at = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < NROLES && at < len; i++)
		if (mask & role_names[i].bit)
			at += (size_t)snprintf(buf + at, len - at, "%s%s",
					       at > 0 ? ", " : "",
					       role_names[i].name);
	if (buf[0] == '\0')
		snprintf(buf, len, "no role");
	return buf;
}

size_t coord_roles_unbound_peers(const struct coord_roles *r)
{
	size_t n = 0;

	for (size_t i = 0; i < r->n; i++)
		n += (r->grants[i].roles & COORD_ROLE_PEER) != 0 &&
		     r->grants[i].raft_id == 0;
	return n;
}

bool coord_roles_peer_ok(const struct coord_roles *r,
			 const struct rpc_peer_id *id, uint64_t raft_id)
{
	for (size_t i = 0; i < r->n; i++) {
		const struct coord_role_grant *g = &r->grants[i];

		if ((g->roles & COORD_ROLE_PEER) != 0 &&
		    rpc_peer_match_is(&g->m, id) &&
		    (g->raft_id == 0 || g->raft_id == raft_id))
			return true;
	}
	return false;
}

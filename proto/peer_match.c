/*
 * peer_match.c — naming a TLS peer by its certificate (rpc.h): "cn:NAME",
 * "fp:SHA256HEX" or "san:NAME", as settled --roles and the participant
 * SDK's coordinators take them, and matching a connection's identity.
 */
#include <ctype.h>
#include <string.h>

#include "rpc.h"

/* "AB:CD:..." or "abcd...": 32 bytes of hex, colons allowed, into out[65]
 * in lowercase without them; -1 if it is not that. */
static int fingerprint(const char *s, char out[65])
{
	size_t n = 0;

	for (; *s != '\0'; s++) {
		if (*s == ':')
			continue;
		if (n == 64 || !isxdigit((unsigned char)*s))
			return -1;
		out[n++] = (char)tolower((unsigned char)*s);
	}
	out[n] = '\0';
	return n == 64 ? 0 : -1;
}

int rpc_peer_match_parse(const char *s, struct rpc_peer_match *out)
{
	size_t len, max;

	if (strncmp(s, "fp:", 3) == 0) {
		out->kind = RPC_PEER_BY_FP;
		return fingerprint(s + 3, out->value);
	}
	if (strncmp(s, "cn:", 3) == 0) {
		out->kind = RPC_PEER_BY_CN;
		s += 3;
		max = RPC_PEER_CN_MAX;
	} else if (strncmp(s, "san:", 4) == 0) {
		out->kind = RPC_PEER_BY_SAN;
		s += 4;
		max = RPC_PEER_SAN_MAX;
	} else {
		return -1;
	}
	len = strlen(s);
	if (len == 0 || len > max)
		return -1;
	memcpy(out->value, s, len + 1);
	return 0;
}

bool rpc_peer_match_is(const struct rpc_peer_match *m,
		       const struct rpc_peer_id *id)
{
	switch (m->kind) {
	case RPC_PEER_BY_CN:
		return id->name != NULL && strcmp(m->value, id->name) == 0;
	case RPC_PEER_BY_FP:
		return id->fingerprint != NULL &&
		       strcmp(m->value, id->fingerprint) == 0;
	default:
		for (size_t i = 0; i < id->n_san; i++)
			if (strcmp(m->value, id->san[i]) == 0)
				return true;
		return false;
	}
}

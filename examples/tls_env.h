/*
 * tls_env.h — the examples' TLS files from the environment, as settlectl
 * reads them and scripts/cluster --tls writes them (DIR/tls.env):
 * $SETTLE_TLS_CERT, $SETTLE_TLS_KEY, $SETTLE_TLS_CA, and optionally
 * $SETTLE_TLS_CRL.
 */
#ifndef SETTLE_EXAMPLES_TLS_ENV_H
#define SETTLE_EXAMPLES_TLS_ENV_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "settle.h"

/* True with *t filled when the three are set; false when none is. Some
 * but not all: false, and *partial is set. */
static inline bool example_tls_env(struct settle_tls *t, bool *partial)
{
	t->cert = getenv("SETTLE_TLS_CERT");
	t->key = getenv("SETTLE_TLS_KEY");
	t->ca = getenv("SETTLE_TLS_CA");
	t->crl = getenv("SETTLE_TLS_CRL");
	*partial = (t->cert != NULL || t->key != NULL || t->ca != NULL) &&
		   (t->cert == NULL || t->key == NULL || t->ca == NULL);
	return t->cert != NULL && t->key != NULL && t->ca != NULL;
}

/*
 * Whether a program with no TLS files may go on in plaintext: asked for
 * with its --insecure (flag) or SETTLE_INSECURE=1. Secure by default:
 * false after saying why on stderr, prog first.
 */
static inline bool example_plaintext_ok(const char *prog, bool flag)
{
	const char *env = getenv("SETTLE_INSECURE");

	if (flag || (env != NULL && strcmp(env, "1") == 0))
		return true;
	fprintf(stderr,
		"%s: no certificate: set SETTLE_TLS_CERT, SETTLE_TLS_KEY and "
		"SETTLE_TLS_CA, or give --insecure (or SETTLE_INSECURE=1) "
		"for a cluster in plaintext\n",
		prog);
	return false;
}

/*
 * An initiator's handle over TLS with the environment's files, or in
 * plaintext when insecure (the program's --insecure) or SETTLE_INSECURE=1
 * and no files: 0, or 2 (the usage exit) after saying why on stderr, prog
 * first.
 */
static inline int example_client_tls(settle_client *c, const char *prog,
				     bool insecure)
{
	struct settle_tls tls;
	bool partial;

	if (insecure)
		return 0;
	if (!example_tls_env(&tls, &partial) && !partial)
		return example_plaintext_ok(prog, false) ? 0 : 2;
	if (!partial && settle_client_set_tls(c, &tls) != 0) {
		fprintf(stderr, "%s: TLS: %s\n", prog, settle_client_errmsg(c));
		return 2;
	}
	if (partial) {
		fprintf(stderr,
			"%s: TLS needs SETTLE_TLS_CERT, SETTLE_TLS_KEY and "
			"SETTLE_TLS_CA together\n",
			prog);
		return 2;
	}
	return 0;
}

/*
 * $SETTLE_TLS_COORDINATORS, "node1,node2,node3": the certificate names
 * of the cluster's nodes, split into names (at most max, pointing into
 * buf of len bytes). The count, 0 when unset.
 */
static inline size_t example_tls_coordinators(const char **names, size_t max,
					      char *buf, size_t len)
{
	const char *v = getenv("SETTLE_TLS_COORDINATORS");
	size_t n = 0;
	char *save = NULL, *tok;

	if (v == NULL || v[0] == '\0' || strlen(v) >= len)
		return 0;
	strcpy(buf, v);
	for (tok = strtok_r(buf, ",", &save); tok != NULL && n < max;
	     tok = strtok_r(NULL, ",", &save))
		names[n++] = tok;
	return n;
}

#endif /* SETTLE_EXAMPLES_TLS_ENV_H */

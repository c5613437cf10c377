/*
 * tls_env.h — the examples' TLS files from the environment, as settlectl
 * reads them and scripts/cluster --tls writes them (DIR/tls.env):
 * $SETTLE_TLS_CERT, $SETTLE_TLS_KEY, $SETTLE_TLS_CA, and optionally
 * $SETTLE_TLS_CRL.
 */
#ifndef SETTLE_EXAMPLES_TLS_ENV_H
#define SETTLE_EXAMPLES_TLS_ENV_H

#include <stdbool.h>
#include <stdlib.h>

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

#endif /* SETTLE_EXAMPLES_TLS_ENV_H */

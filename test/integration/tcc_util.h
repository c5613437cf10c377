/*
 * tcc_util.h — libsettle-side helpers shared by the TCC integration and
 * crash tests: query and wait for transaction states, drive an initiator
 * by hand, run settlectl. Failures abort the test with a message.
 */
#ifndef SETTLE_IT_TCC_UTIL_H
#define SETTLE_IT_TCC_UTIL_H

#include <stdbool.h>
#include <stdint.h>

/* error.h before settle.h: see settle.h. */
#include "error.h"
#include "settle.h"

#include "harness.h"

void tu_sleep_ms(int ms);

/* A client on the node with short retry budgets (close it yourself). */
settle_client *tu_client(const struct it_node *n);

/* Wait until pred(tx) holds, polling QUERY with history; returns the
 * TxInfo (free with settle_tx_info_free) or fails the test after
 * timeout_ms, showing the last state seen. Connection errors (a node
 * restarting) are waited out. */
Settle__V1__TxInfo *tu_wait(const struct it_node *n, const char *gid,
			    bool (*pred)(const Settle__V1__TxInfo *tx),
			    int timeout_ms);
/* Wait until the transaction is in state and finished. */
Settle__V1__TxInfo *tu_wait_final(const struct it_node *n, const char *gid,
				  int state, int timeout_ms);
bool tu_is_stuck(const Settle__V1__TxInfo *tx);
bool tu_is_rolling_back(const Settle__V1__TxInfo *tx);

/*
 * Begin with timeout_ms, register a branch taking amount from
 * from:fa and one giving it to to:ta (payloads as settle-transfer makes
 * them), TRY both; the gid goes to gid (SETTLE_GID_BUFSIZE bytes).
 */
void tu_begin_and_try(settle_client *c, uint32_t timeout_ms,
		      const struct it_bank *from, const char *fa,
		      const struct it_bank *to, const char *ta, int amount,
		      char *gid);

/* The resource the demo banks serve. */
#define TU_RESOURCE "accounts"

/* TRY branch_id of gid on bank b with payload (as settle-transfer makes
 * it: "account=NAME;amount=N"); fails the test unless it answers OK. */
void tu_try(settle_client *c, const char *gid, uint32_t branch_id,
	    const struct it_bank *b, const char *payload);

/* Money is conserved and nothing stays reserved: alice's balance on bank
 * a and bob's on bank b are as given, nothing frozen or incoming. */
void tu_assert_balances(const struct it_bank *a, const struct it_bank *b,
			long long alice, long long bob);

/* settlectl --cluster NODE args...; returns its exit status. */
int tu_ctl(const struct it_node *n, char **out, char **err,
	   const char *const *args);

#endif /* SETTLE_IT_TCC_UTIL_H */

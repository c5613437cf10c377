/*
 * tcc_util.c — see tcc_util.h.
 */
#include "tcc_util.h"

#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RESOURCE TU_RESOURCE

void tu_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static uint64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

settle_client *tu_client(const struct it_node *n)
{
	struct settle_client_opts co = {0};
	settle_client *c;

	co.call_timeout_ms = 5000;
	co.connect_timeout_ms = 500;
	co.retry_budget_ms = 5000;
	cr_assert_eq(settle_client_open(n->endpoint, &co, &c), 0);
	return c;
}

Settle__V1__TxInfo *tu_wait(const struct it_node *n, const char *gid,
			    bool (*pred)(const Settle__V1__TxInfo *tx),
			    int timeout_ms)
{
	uint64_t end = mono_ms() + (uint64_t)timeout_ms;
	settle_client *c = tu_client(n);
	char last[512] = "nothing";

	for (;;) {
		Settle__V1__TxInfo *tx = NULL;
		int rv = settle_query(c, gid, true, &tx);
		if (rv == 0) {
			if (pred(tx)) {
				settle_client_close(c);
				return tx;
			}
			snprintf(last, sizeof(last),
				 "state %s, finished_ms %llu, stuck %d, "
				 "reason '%s'",
				 settle_tx_state_name(tx->state),
				 (unsigned long long)tx->finished_ms, tx->stuck,
				 tx->reason);
			settle_tx_info_free(tx);
		} else {
			snprintf(last, sizeof(last), "%s",
				 settle_client_errmsg(c));
		}
		if (mono_ms() > end) {
			settle_client_close(c);
			it_show_log(n->proc);
			cr_assert_fail("%s: condition not reached in %d ms; "
				       "last: %s",
				       gid, timeout_ms, last);
		}
		tu_sleep_ms(50);
	}
}

static int want_state;

static bool is_final_in_want(const Settle__V1__TxInfo *tx)
{
	return (int)tx->state == want_state && tx->finished_ms != 0;
}

Settle__V1__TxInfo *tu_wait_final(const struct it_node *n, const char *gid,
				  int state, int timeout_ms)
{
	want_state = state;
	return tu_wait(n, gid, is_final_in_want, timeout_ms);
}

bool tu_is_stuck(const Settle__V1__TxInfo *tx)
{
	return tx->stuck;
}

bool tu_is_rolling_back(const Settle__V1__TxInfo *tx)
{
	return tx->state == SETTLE__V1__TX_STATE__ROLLING_BACK ||
	       tx->state == SETTLE__V1__TX_STATE__ROLLED_BACK;
}

void tu_try(settle_client *c, const char *gid, uint32_t branch_id,
	    const struct it_bank *b, const char *payload)
{
	Settle__V1__BranchRequest req = SETTLE__V1__BRANCH_REQUEST__INIT;
	int rv;

	req.gid = (char *)gid;
	req.branch_id = branch_id;
	req.resource = RESOURCE;
	req.payload.data = (uint8_t *)payload;
	req.payload.len = strlen(payload);
	req.attempt = 1;
	rv = settle_client_call_at(
	    c, b->endpoint, SETTLE__V1__METHOD__TRY, &req.base,
	    &settle__v1__branch_response__descriptor, NULL);
	cr_assert_eq(rv, 0, "try on %s: %s", b->endpoint,
		     settle_client_errmsg(c));
}

void tu_begin_and_try(settle_client *c, uint32_t timeout_ms,
		      const struct it_bank *from, const char *fa,
		      const struct it_bank *to, const char *ta, int amount,
		      char *gid)
{
	char pf[128], pt[128];
	uint32_t bf, bt;
	int rv;

	snprintf(pf, sizeof(pf), "account=%s;amount=%d", fa, -amount);
	snprintf(pt, sizeof(pt), "account=%s;amount=%d", ta, amount);
	rv = settle_begin(c, NULL, timeout_ms, gid, SETTLE_GID_BUFSIZE);
	cr_assert_eq(rv, 0, "begin: %s", settle_client_errmsg(c));
	rv = settle_register_branch(c, gid, from->endpoint, RESOURCE, pf,
				    strlen(pf), &bf);
	cr_assert_eq(rv, 0, "register: %s", settle_client_errmsg(c));
	rv = settle_register_branch(c, gid, to->endpoint, RESOURCE, pt,
				    strlen(pt), &bt);
	cr_assert_eq(rv, 0, "register: %s", settle_client_errmsg(c));
	tu_try(c, gid, bf, from, pf);
	tu_try(c, gid, bt, to, pt);
}

void tu_assert_balances(const struct it_bank *a, const struct it_bank *b,
			long long alice, long long bob)
{
	struct it_account x = it_bank_account(a, "alice");
	struct it_account y = it_bank_account(b, "bob");

	cr_assert_eq(x.balance, alice, "alice has %lld, want %lld", x.balance,
		     alice);
	cr_assert_eq(y.balance, bob, "bob has %lld, want %lld", y.balance, bob);
	cr_assert_eq(x.frozen, 0, "alice still has %lld frozen", x.frozen);
	cr_assert_eq(y.incoming, 0, "bob still has %lld incoming", y.incoming);
}

int tu_ctl(const struct it_node *n, char **out, char **err,
	   const char *const *args)
{
	char *argv[IT_MAX_ARGS + 1];
	int i = 0;

	argv[i++] = (char *)it_bin("settlectl");
	argv[i++] = "--cluster";
	argv[i++] = (char *)n->endpoint;
	while (*args && i < IT_MAX_ARGS)
		argv[i++] = (char *)*args++;
	argv[i] = NULL;
	return it_run(argv, out, err, 30000);
}

/*
 * servers.h — the real PostgreSQL and MariaDB servers of the XA tests.
 *
 * The test runner calls xt_servers_setup() once, before its tests run:
 * with SETTLE_TEST_PG and SETTLE_TEST_MARIADB in the environment it uses
 * those servers; otherwise it starts its own through scripts/xa-servers in a
 * fresh directory (stopped by xt_servers_teardown, or by the script's
 * watcher if the runner dies) and exports the variables, which the test
 * processes inherit.
 */
#ifndef SETTLE_XA_TEST_SERVERS_H
#define SETTLE_XA_TEST_SERVERS_H

#include "xa/rm.h"

/* 0, or -1 after printing why the servers cannot be had. */
int xt_servers_setup(void);
void xt_servers_teardown(void);

/* Conninfo of a server (aborts the test when missing). */
const char *xt_conninfo(enum xa_rm_kind kind);

/* SIGKILL the server of kind; xt_servers_start() starts it again on the
 * same data. 0, or -1 with the reason printed (needs SETTLE_TEST_XA_DIR). */
int xt_server_kill(enum xa_rm_kind kind);
int xt_servers_start(void);

#endif

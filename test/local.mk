# test/: shared test helpers and the suites that span modules (integration,
# crash). Unit suites are declared here too, one program per source folder.

if TESTS_ENABLED
if SANITIZE
# AddressSanitizer's allocator is not fork-safe in GCC 12: test/forksafe.c
# keeps the child of every fork() out of it until exec. Its object is linked
# into every test program as an object, not from an archive, so that it is
# always there to replace ASan's malloc. Built without sanitizers: it is the
# allocator's shim. (The library only gets the object compiled.)
check_LTLIBRARIES += test/libforksafe.la
test_libforksafe_la_SOURCES = test/forksafe.c
test_libforksafe_la_CFLAGS = -std=c11 -Wall -Wextra -g -O1
TEST_LIBS += test/libforksafe_la-forksafe.lo
endif

# Forks under allocation pressure (the shim's regression test).
check_PROGRAMS += test/unit/test_forksafe
test_unit_test_forksafe_SOURCES = test/unit/test_forksafe.c
test_unit_test_forksafe_CFLAGS = $(TEST_CFLAGS)
test_unit_test_forksafe_LDADD = $(TEST_LIBS) -lpthread
TESTS += test/unit/test_forksafe

check_PROGRAMS += test/unit/test_error
test_unit_test_error_SOURCES = test/unit/proto/test_error.c
test_unit_test_error_CFLAGS = $(TEST_CFLAGS)
test_unit_test_error_LDADD = proto/libsettlecore.la $(TEST_LIBS)
TESTS += test/unit/test_error

# The coordinator's guarantees against real settled processes: raw frames
# (coord_util) plus the shared harness and TCC helpers.
COORD_IT = test/integration/harness.c test/integration/harness.h \
	test/integration/tcc_util.c test/integration/tcc_util.h \
	test/integration/coord_util.c test/integration/coord_util.h
COORD_IT_LIBS = client/libsettle.la $(PROTOBUF_C_LIBS) $(TEST_LIBS) -lpthread

check_PROGRAMS += test/integration/test_coord_once
test_integration_test_coord_once_SOURCES = \
	test/integration/test_coord_once.c $(COORD_IT)
test_integration_test_coord_once_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_coord_once_LDADD = $(COORD_IT_LIBS)
TESTS += test/integration/test_coord_once

# A raft log of the release before feature levels replays (issue 12).
check_PROGRAMS += test/integration/test_replay
test_integration_test_replay_SOURCES = \
	test/integration/test_replay.c $(COORD_IT)
test_integration_test_replay_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_replay_LDADD = $(COORD_IT_LIBS)
TESTS += test/integration/test_replay
EXTRA_DIST += test/fixtures/raft-log-d0da617.tar.gz test/fixtures/README.md

check_PROGRAMS += test/integration/test_coord_wait
test_integration_test_coord_wait_SOURCES = \
	test/integration/test_coord_wait.c $(COORD_IT)
test_integration_test_coord_wait_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_coord_wait_LDADD = $(COORD_IT_LIBS)
TESTS += test/integration/test_coord_wait

check_PROGRAMS += test/integration/test_limits
test_integration_test_limits_SOURCES = \
	test/integration/test_limits.c $(COORD_IT)
test_integration_test_limits_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_limits_LDADD = $(COORD_IT_LIBS)
TESTS += test/integration/test_limits

# Mutual TLS on a real settled: settle-bench commits through it, a
# stranger's certificate and a plain client do not.
check_PROGRAMS += test/integration/test_tls
test_integration_test_tls_SOURCES = \
	test/integration/test_tls.c $(COORD_IT)
test_integration_test_tls_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_tls_LDADD = $(COORD_IT_LIBS)
TESTS += test/integration/test_tls

check_PROGRAMS += test/integration/test_coord_restart
test_integration_test_coord_restart_SOURCES = \
	test/integration/test_coord_restart.c $(COORD_IT)
test_integration_test_coord_restart_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_coord_restart_LDADD = $(COORD_IT_LIBS)
TESTS += test/integration/test_coord_restart

# The XA verbs over RPC (Begin mode XA, RM branches, XA_VOTE, XA_PREPARE,
# one-phase Commit, XA_RECOVER, XA_FORGET) on a real settled whose RM is
# unreachable: no database needed.
check_PROGRAMS += test/integration/test_xa_verbs
test_integration_test_xa_verbs_SOURCES = \
	test/integration/test_xa_verbs.c $(COORD_IT)
test_integration_test_xa_verbs_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_xa_verbs_LDADD = $(COORD_IT_LIBS)
TESTS += test/integration/test_xa_verbs

# An operator unsticks transactions (TX_RETRY, TX_RESOLVE) on a real
# settled driving settle-banks that refuse Compensate, Confirm or Cancel.
check_PROGRAMS += test/integration/test_operator
test_integration_test_operator_SOURCES = \
	test/integration/test_operator.c $(COORD_IT)
test_integration_test_operator_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_operator_LDADD = $(COORD_IT_LIBS)
TESTS += test/integration/test_operator

# Fault tests: 3-node clusters under TCC load (load.c) with nodes killed,
# stopped, restarted together or partitioned (network namespaces, as root).
# Also the chaos loop of scripts/chaos (SETTLE_CHAOS_SECONDS).
FAULTS_IT = $(COORD_IT) test/integration/load.c test/integration/load.h \
	test/integration/test_faults_util.c test/integration/test_faults_util.h
# Preloaded into settled by test_faults' kill_mid_batch: SIGKILL at the
# Nth LMDB write (a shared object, hence the -rpath).
check_LTLIBRARIES += test/integration/libkillshim.la
test_integration_libkillshim_la_SOURCES = test/integration/killshim.c
test_integration_libkillshim_la_CFLAGS = -std=c11 -Wall -Wextra -g -O1
test_integration_libkillshim_la_LDFLAGS = -module -shared -avoid-version \
	-rpath $(abs_builddir)/test/integration
test_integration_libkillshim_la_LIBADD = $(LMDB_LIBS) -ldl
# Raft over mutual TLS between real nodes (issue 13).
check_PROGRAMS += test/integration/test_raft_tls
test_integration_test_raft_tls_SOURCES = \
	test/integration/test_raft_tls.c $(FAULTS_IT)
test_integration_test_raft_tls_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client \
	$(SSL_CFLAGS)
test_integration_test_raft_tls_LDADD = $(COORD_IT_LIBS) $(UV_LIBS) $(LMDB_LIBS) -lpthread \
	$(SSL_LIBS)
TESTS += test/integration/test_raft_tls

# settled --metrics: /metrics read with Prometheus' parser, /readyz
# following the quorum (issue 14).
check_PROGRAMS += test/integration/test_metrics
test_integration_test_metrics_SOURCES = \
	test/integration/test_metrics.c $(FAULTS_IT)
test_integration_test_metrics_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_metrics_LDADD = $(COORD_IT_LIBS) $(UV_LIBS) $(LMDB_LIBS)
TESTS += test/integration/test_metrics
EXTRA_DIST += test/integration/prom_scrape.py

check_PROGRAMS += test/integration/test_faults
test_integration_test_faults_SOURCES = test/integration/test_faults.c \
	test/integration/test_faults_bench.c $(FAULTS_IT)
test_integration_test_faults_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_faults_LDADD = $(COORD_IT_LIBS) $(UV_LIBS) $(LMDB_LIBS)
TESTS += test/integration/test_faults
# The store's budget: a small one filled under load on 3 nodes; Begins
# refused, nothing stops, space back by retention or a larger budget.
check_PROGRAMS += test/integration/test_store_budget
test_integration_test_store_budget_SOURCES = \
	test/integration/test_store_budget.c $(FAULTS_IT)
test_integration_test_store_budget_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_store_budget_LDADD = $(COORD_IT_LIBS) $(UV_LIBS) \
	$(LMDB_LIBS)
TESTS += test/integration/test_store_budget
# Clocks decide nothing: nodes under libfaketime, leadership moved to a
# skewed node, the leader's clock stepped, a COMMIT racing the deadline.
check_PROGRAMS += test/integration/test_clock
test_integration_test_clock_SOURCES = test/integration/test_clock.c \
	$(FAULTS_IT)
test_integration_test_clock_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_clock_LDADD = $(COORD_IT_LIBS) $(UV_LIBS) $(LMDB_LIBS)
TESTS += test/integration/test_clock
# Sagas beyond test_saga.c: compensation order at every position, DAG
# branches, forward recovery (test_saga_dag); late and repeated calls
# through a frame-aware proxy, coordinator SIGKILLs and leader failover on a
# 3-node cluster (test_saga_faults).
SAGA_IT = test/integration/saga_util.c test/integration/saga_util.h
check_PROGRAMS += test/integration/test_saga_dag
test_integration_test_saga_dag_SOURCES = \
	test/integration/test_saga_dag.c $(SAGA_IT) $(COORD_IT)
test_integration_test_saga_dag_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_saga_dag_LDADD = $(COORD_IT_LIBS)
TESTS += test/integration/test_saga_dag

check_PROGRAMS += test/integration/test_saga_faults
test_integration_test_saga_faults_SOURCES = \
	test/integration/test_saga_faults.c $(SAGA_IT) $(FAULTS_IT)
test_integration_test_saga_faults_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_saga_faults_LDADD = $(COORD_IT_LIBS) $(UV_LIBS) \
	$(LMDB_LIBS)
TESTS += test/integration/test_saga_faults
endif

# BEGIN with declared branches (issue 12) on 3 nodes with two banks:
# commit, rollback without Try, retries and cmd_id reuse, limits, and a
# leader SIGKILL between BEGIN and COMMIT.
if TESTS_ENABLED
check_PROGRAMS += test/integration/test_begin_branches
test_integration_test_begin_branches_SOURCES = \
	test/integration/test_begin_branches.c $(FAULTS_IT)
test_integration_test_begin_branches_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_begin_branches_LDADD = $(COORD_IT_LIBS) $(UV_LIBS) \
	$(LMDB_LIBS)
TESTS += test/integration/test_begin_branches
endif

# Feature levels (issue 12): a level-1 member holds the cluster back until
# it is upgraded; a level-1 joiner is refused by a level-2 cluster.
if TESTS_ENABLED
check_PROGRAMS += test/integration/test_features
test_integration_test_features_SOURCES = \
	test/integration/test_features.c $(FAULTS_IT)
test_integration_test_features_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_features_LDADD = $(COORD_IT_LIBS) $(UV_LIBS) \
	$(LMDB_LIBS)
TESTS += test/integration/test_features
endif

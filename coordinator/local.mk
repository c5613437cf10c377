# coordinator/: settled, the coordinator node.

bin_PROGRAMS += coordinator/settled
coordinator_settled_SOURCES = \
	coordinator/coord.h \
	coordinator/aio_defer.c coordinator/aio_defer.h \
	coordinator/dispatch.c coordinator/dispatch.h coordinator/dispatch_int.h \
	coordinator/dispatch_xa.c coordinator/dispatch_owner.c \
	coordinator/query.c coordinator/query_participants.c \
	coordinator/backup.c \
	coordinator/admin.c coordinator/admin.h coordinator/admin_int.h \
	coordinator/admin_op.c \
	coordinator/budget.c coordinator/budget.h \
	coordinator/quota.c coordinator/quota.h \
	coordinator/roles.c coordinator/roles.h \
	coordinator/metrics.c coordinator/metrics.h \
	coordinator/breaker.c coordinator/breaker.h \
	coordinator/notify.c coordinator/notify.h \
	coordinator/log_json.c coordinator/log_json.h \
	coordinator/metrics_http.c coordinator/metrics_http.h \
	coordinator/propose.c coordinator/propose.h \
	coordinator/apply.c coordinator/apply.h \
	coordinator/snapshot.c coordinator/snapshot.h coordinator/snapshot_int.h \
	coordinator/snapshot_base.c \
	coordinator/snapshot_journal.c \
	coordinator/snapshot_pace.c coordinator/snapshot_pace.h \
	coordinator/snapshot_send.c \
	coordinator/waiters.c coordinator/waiters.h \
	coordinator/driver.c coordinator/driver.h coordinator/driver_call.c \
	coordinator/driver_int.h coordinator/expiry.c \
	coordinator/xa.h coordinator/xa_logic.c \
	coordinator/xa_pool.c coordinator/xa_pool.h \
	coordinator/xa_drive.c \
	coordinator/role.c coordinator/role.h \
	coordinator/clock.c coordinator/clock.h \
	coordinator/features.c coordinator/features.h \
	coordinator/node.c coordinator/node.h coordinator/node_metrics.c \
	coordinator/raft_tcp.c coordinator/raft_tcp.h \
	coordinator/raft_tls.c coordinator/raft_tls.h \
	coordinator/raft_check.c coordinator/raft_check.h \
	coordinator/config.c coordinator/config.h \
	coordinator/config_file.c coordinator/config_file.h \
	coordinator/main.c
# xa/rm.h: the RM adapters (libpq, libmariadb) the leader drives.
coordinator_settled_CFLAGS = $(AM_CFLAGS) $(PQ_CFLAGS) $(MARIADB_CFLAGS) \
	$(MHD_CFLAGS) $(SYSTEMD_CFLAGS) $(JANSSON_CFLAGS) $(INIH_CFLAGS)
coordinator_settled_LDADD = xa/libsettlexa.la wal/libsettlewal.la \
	storage/libsettlestore.la proto/libsettlecore.la $(RAFT_LIBS) \
	$(UV_LIBS) $(LMDB_LIBS) $(PROTOBUF_C_LIBS) $(PQ_LIBS) $(MARIADB_LIBS) \
	$(MHD_LIBS) $(SYSTEMD_LIBS) $(JANSSON_LIBS) $(INIH_LIBS)

if TESTS_ENABLED
check_PROGRAMS += test/unit/test_coordinator
test_unit_test_coordinator_SOURCES = test/unit/coordinator/test_config.c \
	test/unit/coordinator/test_xa_logic.c \
	test/unit/coordinator/test_raft_check.c \
	test/unit/coordinator/test_quota.c \
	test/unit/coordinator/test_roles.c \
	test/unit/coordinator/test_metrics.c \
	test/unit/coordinator/test_breaker.c \
	test/unit/coordinator/test_config_file.c \
	coordinator/config.c coordinator/xa_logic.c coordinator/snapshot_pace.c \
	coordinator/raft_check.c coordinator/quota.c coordinator/roles.c \
	coordinator/metrics.c coordinator/breaker.c coordinator/config_file.c
test_unit_test_coordinator_CFLAGS = $(TEST_CFLAGS) $(PQ_CFLAGS) \
	$(MARIADB_CFLAGS)
test_unit_test_coordinator_LDADD = wal/libsettlewal.la storage/libsettlestore.la \
	proto/libsettlecore.la $(TEST_LIBS) $(LMDB_LIBS) $(LZ4_LIBS) \
	$(INIH_LIBS)
TESTS += test/unit/test_coordinator
endif

if TESTS_ENABLED
# Its own binary: aio_defer.c defines syscall() for the whole process.
check_PROGRAMS += test/unit/test_aio_defer
test_unit_test_aio_defer_SOURCES = test/unit/coordinator/test_aio_defer.c \
	coordinator/aio_defer.c coordinator/aio_defer.h
test_unit_test_aio_defer_CFLAGS = $(TEST_CFLAGS)
test_unit_test_aio_defer_LDADD = $(TEST_LIBS)
TESTS += test/unit/test_aio_defer
endif

if TESTS_ENABLED
check_PROGRAMS += test/integration/test_catchup
test_integration_test_catchup_SOURCES = test/integration/test_catchup.c \
	test/integration/coord_util.c test/integration/coord_util.h \
	test/integration/harness.c test/integration/harness.h \
	test/integration/tcc_util.c test/integration/tcc_util.h
test_integration_test_catchup_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_catchup_LDADD = client/libsettle.la $(PROTOBUF_C_LIBS) \
	$(TEST_LIBS)
TESTS += test/integration/test_catchup
endif

if TESTS_ENABLED
# The leader as TM of real XA resource managers (PostgreSQL and MariaDB
# started once by the runner via scripts/xa-servers): phase 2, the deadline,
# the recovery scan.
check_PROGRAMS += coordinator/tests/test_xa_leader
coordinator_tests_test_xa_leader_SOURCES = \
	coordinator/tests/test_xa_leader.c \
	test/integration/harness.c test/integration/harness.h \
	xa/tests/servers.c xa/tests/servers.h
coordinator_tests_test_xa_leader_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client \
	-I$(srcdir)/xa/tests -I$(srcdir)/test/integration \
	-DXA_TEST_SRCDIR='"$(abs_top_srcdir)"' -DIT_SRCDIR='"$(abs_top_srcdir)"'
coordinator_tests_test_xa_leader_LDADD = client/libsettle.la \
	xa/libsettlexa.la $(PROTOBUF_C_LIBS) $(TEST_LIBS) -lpthread
EXTRA_coordinator_tests_test_xa_leader_DEPENDENCIES = coordinator/settled
TESTS += coordinator/tests/test_xa_leader
endif

if TESTS_ENABLED
# The RM pool (coordinator/xa_pool.c) on a bare uv loop, against the same
# real servers.
check_PROGRAMS += coordinator/tests/test_xa_pool
coordinator_tests_test_xa_pool_SOURCES = coordinator/tests/test_xa_pool.c \
	coordinator/xa_pool.c coordinator/xa_pool.h coordinator/xa_logic.c \
	coordinator/config.c xa/tests/servers.c xa/tests/servers.h
coordinator_tests_test_xa_pool_CFLAGS = $(TEST_CFLAGS) $(PQ_CFLAGS) \
	$(MARIADB_CFLAGS) -I$(srcdir)/xa/tests \
	-DXA_TEST_SRCDIR='"$(abs_top_srcdir)"'
coordinator_tests_test_xa_pool_LDADD = xa/libsettlexa.la \
	proto/libsettlecore.la $(UV_LIBS) $(TEST_LIBS) -lpthread
TESTS += coordinator/tests/test_xa_pool
endif

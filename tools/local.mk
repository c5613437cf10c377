# tools/: the operator's programs, settlectl (tools/ctl/) and settle-bench
# (tools/bench/); the baselines that
# scripts/bench --compare measures (tools/baseline/); and the integration
# tests that drive these programs.

# settlectl's parsing and printing, shared with its unit test. It needs
# libsettlecore (error names), which each program links once, and jansson
# (its JSON), which each program that links it links too.
noinst_LTLIBRARIES += tools/libctlfmt.la
tools_libctlfmt_la_SOURCES = tools/ctl/ctl_fmt.c tools/ctl/ctl_fmt.h \
	tools/ctl/ctl_tx.c tools/ctl/ctl_xa.c tools/ctl/ctl_xa.h \
	tools/ctl/ctl_bulk.c tools/ctl/ctl_bulk.h tools/ctl/ctl_int.h \
	tools/ctl/ctl_top.c tools/ctl/ctl_top.h
tools_libctlfmt_la_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS)

if TESTS_ENABLED
check_PROGRAMS += test/unit/test_ctl_fmt
test_unit_test_ctl_fmt_SOURCES = test/unit/tools/test_ctl_fmt.c \
	test/unit/tools/test_ctl_xa.c
test_unit_test_ctl_fmt_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/tools/ctl
test_unit_test_ctl_fmt_LDADD = tools/libctlfmt.la proto/libsettlecore.la \
	$(PROTOBUF_C_LIBS) $(JANSSON_LIBS) $(TEST_LIBS)
TESTS += test/unit/test_ctl_fmt

# Integration tests: real processes, found through $(SETTLE_BUILD) or this
# build directory. The harness needs no client library, so each test links
# either libsettle or, for the fake coordinator, the core library.
IT_HARNESS = test/integration/harness.c test/integration/harness.h

check_PROGRAMS += test/integration/test_settlectl
test_integration_test_settlectl_SOURCES = \
	test/integration/test_settlectl.c $(IT_HARNESS)
test_integration_test_settlectl_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
# libsettle (settle_submit_saga) carries libsettlecore (the fake's
# rpc_server): one copy of it, not two.
test_integration_test_settlectl_LDADD = client/libsettle.la $(UV_LIBS) \
	$(PROTOBUF_C_LIBS) $(TEST_LIBS) -lpthread
TESTS += test/integration/test_settlectl

IT_TCC = $(IT_HARNESS) test/integration/tcc_util.c test/integration/tcc_util.h
check_PROGRAMS += test/integration/test_tcc
test_integration_test_tcc_SOURCES = test/integration/test_tcc.c $(IT_TCC)
test_integration_test_tcc_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_tcc_LDADD = client/libsettle.la $(PROTOBUF_C_LIBS) \
	$(TEST_LIBS)
TESTS += test/integration/test_tcc

check_PROGRAMS += test/integration/test_crash
test_integration_test_crash_SOURCES = test/integration/test_crash.c $(IT_TCC)
test_integration_test_crash_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_crash_LDADD = client/libsettle.la $(PROTOBUF_C_LIBS) \
	$(TEST_LIBS)
TESTS += test/integration/test_crash

# The members table and CmdMember (storage/members.c, wal/members.c):
# declared here, beside the membership integration test, so that the
# storage and wal suites' owners are not disturbed.
check_PROGRAMS += test/unit/test_members
test_unit_test_members_SOURCES = \
	test/unit/storage/test_members.c \
	test/unit/wal/test_member_apply.c \
	test/unit/wal/fsm_helpers.c test/unit/wal/fsm_helpers.h \
	test/unit/storage/helpers.c test/unit/storage/helpers.h
test_unit_test_members_CFLAGS = $(TEST_CFLAGS)
test_unit_test_members_LDADD = wal/libsettlewal.la storage/libsettlestore.la \
	proto/libsettlecore.la $(TEST_LIBS)
TESTS += test/unit/test_members

# Online membership on real 3- and 4-node clusters.
check_PROGRAMS += test/integration/test_members
test_integration_test_members_SOURCES = test/integration/test_members.c \
	test/integration/harness.c test/integration/harness.h \
	test/integration/tcc_util.c test/integration/tcc_util.h \
	test/integration/coord_util.c test/integration/coord_util.h
test_integration_test_members_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_members_LDADD = client/libsettle.la $(PROTOBUF_C_LIBS) \
	$(TEST_LIBS) -lpthread
TESTS += test/integration/test_members

# settle-bench --mode xa and xa-local against the real PostgreSQL and
# MariaDB test servers (started by the runner through scripts/xa-servers).
check_PROGRAMS += test/integration/test_bench_xa
test_integration_test_bench_xa_SOURCES = test/integration/test_bench_xa.c \
	$(IT_HARNESS) xa/tests/servers.c xa/tests/servers.h
test_integration_test_bench_xa_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client \
	-DXA_TEST_SRCDIR='"$(abs_top_srcdir)"' -DIT_SRCDIR='"$(abs_top_srcdir)"'
test_integration_test_bench_xa_LDADD = client/libsettle.la xa/libsettlexa.la \
	$(PROTOBUF_C_LIBS) $(TEST_LIBS)
EXTRA_test_integration_test_bench_xa_DEPENDENCIES = \
	tools/settle-bench coordinator/settled
TESTS += test/integration/test_bench_xa

check_PROGRAMS += test/integration/test_cluster_script
test_integration_test_cluster_script_SOURCES = \
	test/integration/test_cluster_script.c $(IT_HARNESS)
test_integration_test_cluster_script_CFLAGS = $(TEST_CFLAGS) \
	-DIT_SRCDIR='"$(abs_top_srcdir)"'
test_integration_test_cluster_script_LDADD = $(TEST_LIBS)
TESTS += test/integration/test_cluster_script
endif

bin_PROGRAMS += tools/settlectl
tools_settlectl_SOURCES = tools/ctl/settlectl.c \
	tools/ctl/ctl_admin.c tools/ctl/ctl_cmd.h \
	tools/ctl/ctl_watch.c tools/ctl/ctl_backup.c tools/ctl/ctl_read.c \
	tools/ctl/ctl_tx_ops.c tools/ctl/ctl_xa_cmd.c tools/ctl/ctl_cluster.c
tools_settlectl_CFLAGS = $(AM_CFLAGS) -I$(srcdir)/client $(JANSSON_CFLAGS)
# libsettle already carries libsettlecore: linking that too would give the
# program two copies of its globals.
tools_settlectl_LDADD = tools/libctlfmt.la client/libsettle.la \
	$(PROTOBUF_C_LIBS) $(JANSSON_LIBS)

bin_PROGRAMS += tools/settle-bench
tools_settle_bench_SOURCES = tools/bench/bench.c \
	tools/bench/bench.h tools/bench/bench_xa.c \
	tools/bench/bench_async.c tools/bench/bench_sync.c \
	tools/bench/bench_participant.c
tools_settle_bench_CFLAGS = $(AM_CFLAGS) -I$(srcdir)/client
# The XA modes drive PostgreSQL and MariaDB themselves (xa/rm.h), as an
# initiator does: a tool may link libpq and libmariadb, libsettle may not.
tools_settle_bench_LDADD = client/libsettle.la xa/libsettlexa.la \
	$(LMDB_LIBS) $(UV_LIBS) $(PROTOBUF_C_LIBS) -lpthread

# tools/baseline: what scripts/bench --compare measures beside Settle in
# the same run. Not installed: they measure this machine, not Settle.

# The disk's 4 KiB write + fdatasync rate.
noinst_PROGRAMS += tools/settle-fsync-rate
tools_settle_fsync_rate_SOURCES = tools/baseline/fsync_rate.c

# canonical/raft's own commit rate on 3 local processes.
noinst_PROGRAMS += tools/settle-raft-rate
tools_settle_raft_rate_SOURCES = tools/baseline/raft_rate.c
tools_settle_raft_rate_LDADD = $(RAFT_LIBS) $(UV_LIBS)

# pgbench scripts of the PostgreSQL rows: plain commit and two-phase.
EXTRA_DIST += tools/baseline/pgbench-commit.sql tools/baseline/pgbench-2pc.sql

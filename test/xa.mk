# test/xa.mk: XA integration tests through the coordinator (PostgreSQL and
# MariaDB driven by settled).

if TESTS_ENABLED
# Settle as the TM of real XA resource managers: settled --xa-rm driving
# the PostgreSQL and MariaDB test servers (started once by the runner via
# scripts/xa-servers; missing servers fail the run), settle-xa-transfer as
# the initiator, coordinator and RM crashes (docs/RELIABILITY.md).
check_PROGRAMS += test/integration/test_xa_tm
test_integration_test_xa_tm_SOURCES = test/integration/test_xa_tm.c \
	test/integration/test_xa_tm_faults.c \
	test/integration/xa_util.c test/integration/xa_util.h \
	test/integration/harness.c test/integration/harness.h \
	test/integration/coord_util.c test/integration/coord_util.h \
	test/integration/load.c test/integration/load.h \
	test/integration/test_faults_util.c \
	test/integration/test_faults_util.h \
	xa/tests/servers.c xa/tests/servers.h
test_integration_test_xa_tm_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client \
	-I$(srcdir)/xa/tests -DXA_TEST_SRCDIR='"$(abs_top_srcdir)"' \
	-DIT_SRCDIR='"$(abs_top_srcdir)"'
test_integration_test_xa_tm_LDADD = client/libsettle.la xa/libsettlexa.la \
	$(PROTOBUF_C_LIBS) $(UV_LIBS) $(LMDB_LIBS) $(TEST_LIBS) -lpthread
EXTRA_test_integration_test_xa_tm_DEPENDENCIES = \
	examples/settle-xa-transfer
TESTS += test/integration/test_xa_tm
endif

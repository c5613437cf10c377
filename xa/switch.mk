# xa/switch.mk: the X/Open xa_switch_t library for legacy TMs.
#
# libsettle_xa.so exports struct xa_switch_t settle_xa_switch (xa/settle_xa.h)
# and two helpers for the application (xa/settle_xa_ext.h); a TM dlopen()s
# it or links it (pkg-config settle-xa). It talks to the coordinators
# through libsettle only: no database client library is linked in.
# Everything else (the assoc state machine, the info parser) stays hidden.
lib_LTLIBRARIES += xa/libsettle_xa.la
include_HEADERS += xa/settle_xa.h xa/settle_xa_ext.h
pkgconfig_DATA += settle-xa.pc
EXTRA_DIST += settle-xa.pc.in
xa_libsettle_xa_la_SOURCES = \
	xa/switch.c xa/switch_info.c xa/switch_recover.c xa/switch_int.h \
	xa/settle_xa.h xa/settle_xa_ext.h \
	xa/assoc.c xa/assoc.h
xa_libsettle_xa_la_CFLAGS = $(AM_CFLAGS)
xa_libsettle_xa_la_LIBADD = client/libsettle.la -lpthread
# -z nodelete: threads keep sessions under a pthread key whose destructor
# lives in the library, so a TM's dlclose() must not unmap it.
xa_libsettle_xa_la_LDFLAGS = -version-info 0:0:0 -Wl,-z,nodelete \
	-export-symbols-regex '^settle_xa_(switch|current_gid|errmsg)$$'

if TESTS_ENABLED
# Every verb, flag and error mapping against a scripted in-memory
# coordinator (xa/tests/switch_fake.c), through the switch as a TM calls it.
check_PROGRAMS += xa/tests/test_switch
xa_tests_test_switch_SOURCES = xa/tests/test_switch.c \
	xa/tests/test_switch_info.c xa/switch_info.c xa/switch_int.h \
	xa/tests/switch_fake.c xa/tests/switch_fake.h
xa_tests_test_switch_CFLAGS = $(TEST_CFLAGS)
xa_tests_test_switch_LDADD = xa/libsettle_xa.la client/libsettle.la \
	$(PROTOBUF_C_LIBS) $(TEST_LIBS) -lpthread
TESTS += xa/tests/test_switch

# settle_xa_ext.h alone, as C89, linked with the library.
check_PROGRAMS += xa/tests/test_settle_xa_ext_c89
xa_tests_test_settle_xa_ext_c89_SOURCES = xa/tests/test_settle_xa_ext_c89.c
xa_tests_test_settle_xa_ext_c89_CFLAGS = -std=c89 -pedantic-errors -Wall \
	-Wextra -Werror
xa_tests_test_settle_xa_ext_c89_LDADD = xa/libsettle_xa.la
TESTS += xa/tests/test_settle_xa_ext_c89

# The issue's test: a TM-like program dlopen()s xa/.libs/libsettle_xa.so and
# drives a real 3-node cluster, with a leader failover between prepare and
# commit and a TM restart before xa_recover.
check_PROGRAMS += xa/tests/test_switch_cluster
xa_tests_test_switch_cluster_SOURCES = xa/tests/test_switch_cluster.c \
	xa/tests/switch_participant.c xa/tests/switch_participant.h \
	test/integration/harness.c test/integration/harness.h \
	test/integration/tcc_util.c test/integration/tcc_util.h \
	test/integration/coord_util.c test/integration/coord_util.h \
	test/integration/load.c test/integration/load.h \
	test/integration/test_faults_util.c test/integration/test_faults_util.h
xa_tests_test_switch_cluster_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client \
	-I$(srcdir)/test/integration
xa_tests_test_switch_cluster_LDADD = client/libsettle.la $(PROTOBUF_C_LIBS) \
	$(UV_LIBS) $(LMDB_LIBS) $(TEST_LIBS) -lpthread -ldl
# dlopen()ed, not linked: build it first; switch_tm is the TM's "another
# process" of the answer table (run by the test, not a test itself).
EXTRA_xa_tests_test_switch_cluster_DEPENDENCIES = xa/libsettle_xa.la \
	xa/tests/switch_tm
TESTS += xa/tests/test_switch_cluster
check_PROGRAMS += xa/tests/switch_tm
xa_tests_switch_tm_SOURCES = xa/tests/switch_tm.c
xa_tests_switch_tm_CFLAGS = $(AM_CFLAGS)
xa_tests_switch_tm_LDADD = xa/libsettle_xa.la
# A plain executable, not a libtool wrapper script: the test execs it.
xa_tests_switch_tm_LDFLAGS = -no-install
endif

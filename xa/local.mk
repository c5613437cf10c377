# xa/: XIDs and their encodings, and the XA resource-manager adapters
# (PostgreSQL through libpq, MariaDB through libmariadb) that the
# coordinator will drive as transaction manager.

noinst_LTLIBRARIES += xa/libsettlexa.la
xa_libsettlexa_la_SOURCES = \
	xa/rm.c xa/rm.h xa/rm_int.h \
	xa/rm_pg.c xa/rm_mariadb.c
xa_libsettlexa_la_CFLAGS = $(AM_CFLAGS) $(PQ_CFLAGS) $(MARIADB_CFLAGS)
xa_libsettlexa_la_LIBADD = proto/libsettlecore.la $(PQ_LIBS) $(MARIADB_LIBS)

# docs/XA.md and scripts/xa-servers ship with docs/ and scripts/.

if TESTS_ENABLED
check_PROGRAMS += xa/tests/test_xid
xa_tests_test_xid_SOURCES = xa/tests/test_xid.c
xa_tests_test_xid_CFLAGS = $(TEST_CFLAGS)
xa_tests_test_xid_LDADD = xa/libsettlexa.la $(TEST_LIBS)
TESTS += xa/tests/test_xid

# Against real PostgreSQL and MariaDB servers, which the test starts with
# scripts/xa-servers unless SETTLE_TEST_PG and SETTLE_TEST_MARIADB name some.
check_PROGRAMS += xa/tests/test_rm
xa_tests_test_rm_SOURCES = xa/tests/test_rm.c \
	xa/tests/servers.c xa/tests/servers.h
xa_tests_test_rm_CFLAGS = $(TEST_CFLAGS) \
	-DXA_TEST_SRCDIR='"$(abs_top_srcdir)"'
xa_tests_test_rm_LDADD = xa/libsettlexa.la $(TEST_LIBS)
TESTS += xa/tests/test_rm
endif

# The X/Open XA header of the switch library (the library itself comes
# later) and the switch's thread/branch state machine.
xa_libsettlexa_la_SOURCES += xa/settle_xa.h xa/assoc.c xa/assoc.h

if TESTS_ENABLED
check_PROGRAMS += xa/tests/test_assoc
xa_tests_test_assoc_SOURCES = xa/tests/test_assoc.c xa/tests/test_settle_xa_h.c
xa_tests_test_assoc_CFLAGS = $(TEST_CFLAGS)
xa_tests_test_assoc_LDADD = xa/libsettlexa.la $(TEST_LIBS) -lpthread
TESTS += xa/tests/test_assoc

# A TM may build with an old compiler: xa/settle_xa.h alone, as C89.
check_PROGRAMS += xa/tests/test_settle_xa_c89
xa_tests_test_settle_xa_c89_SOURCES = xa/tests/test_settle_xa_c89.c
xa_tests_test_settle_xa_c89_CFLAGS = -std=c89 -pedantic-errors -Wall -Wextra -Werror
TESTS += xa/tests/test_settle_xa_c89
endif

# A standalone reproducer of MariaDB losing a prepared branch between the
# end of its session and another session's XA COMMIT (docs/BENCHMARKS.md).
# Built, never run by make check: scripts/xa-mariadb-race runs it.
noinst_PROGRAMS += xa/tests/mariadb_race
xa_tests_mariadb_race_SOURCES = xa/tests/mariadb_race.c
xa_tests_mariadb_race_CFLAGS = $(AM_CFLAGS) $(MARIADB_CFLAGS)
xa_tests_mariadb_race_LDADD = xa/libsettlexa.la $(MARIADB_LIBS) -lpthread

# test/: shared test helpers and the suites that span modules (integration,
# crash). Unit suites are declared here too, one program per source folder.

if TESTS_ENABLED
check_PROGRAMS += test/unit/test_error
test_unit_test_error_SOURCES = test/unit/proto/test_error.c
test_unit_test_error_CFLAGS = $(TEST_CFLAGS)
test_unit_test_error_LDADD = proto/libsettlecore.la $(TEST_LIBS)
TESTS += test/unit/test_error
endif

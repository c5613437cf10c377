# client/tools: operator tools (settlectl, settle-bench) and the integration
# tests that drive real processes.

# settlectl's parsing and printing, shared with its unit test.
noinst_LTLIBRARIES += client/tools/libctlfmt.la
client_tools_libctlfmt_la_SOURCES = client/tools/ctl_fmt.c client/tools/ctl_fmt.h
client_tools_libctlfmt_la_LIBADD = proto/libsettlecore.la

if TESTS_ENABLED
check_PROGRAMS += test/unit/test_ctl_fmt
test_unit_test_ctl_fmt_SOURCES = test/unit/tools/test_ctl_fmt.c
test_unit_test_ctl_fmt_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client/tools
test_unit_test_ctl_fmt_LDADD = client/tools/libctlfmt.la $(TEST_LIBS)
TESTS += test/unit/test_ctl_fmt
endif

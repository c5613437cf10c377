# test/fuzz: fuzz targets for the parsers that face the network or the
# disk. Each target is a libFuzzer-style LLVMFuzzerTestOneInput() in its own
# file, linked here with our own driver (test/fuzz/driver.c: a seeded,
# deterministic mutation loop; no clang needed). make check runs each for
# $FUZZ_SECONDS (default 5) under the build's sanitizers; scripts/fuzz runs
# them longer, and with clang -fsanitize=fuzzer when clang is installed.

# Inputs the targets save when they crash or meet a known finding.
CLEANFILES += crash-fuzz_*.bin finding-*.bin

if TESTS_ENABLED
FUZZ_DRIVER = test/fuzz/driver.c test/fuzz/util.c test/fuzz/fuzz.h
FUZZ_HISTORY = test/fuzz/history.c test/fuzz/history.h
FUZZ_STORE_LIBS = wal/libsettlewal.la storage/libsettlestore.la \
	proto/libsettlecore.la $(RAFT_LIBS) $(LMDB_LIBS) $(PROTOBUF_C_LIBS)

check_PROGRAMS += test/fuzz/fuzz_frame
test_fuzz_fuzz_frame_SOURCES = test/fuzz/fuzz_frame.c $(FUZZ_DRIVER)
test_fuzz_fuzz_frame_LDADD = proto/libsettlecore.la $(PROTOBUF_C_LIBS)
TESTS += test/fuzz/fuzz_frame

check_PROGRAMS += test/fuzz/fuzz_request
test_fuzz_fuzz_request_SOURCES = test/fuzz/fuzz_request.c $(FUZZ_DRIVER) \
	$(FUZZ_HISTORY)
test_fuzz_fuzz_request_LDADD = $(FUZZ_STORE_LIBS)
TESTS += test/fuzz/fuzz_request

check_PROGRAMS += test/fuzz/fuzz_wal
test_fuzz_fuzz_wal_SOURCES = test/fuzz/fuzz_wal.c $(FUZZ_DRIVER) \
	$(FUZZ_HISTORY)
test_fuzz_fuzz_wal_LDADD = $(FUZZ_STORE_LIBS)
TESTS += test/fuzz/fuzz_wal

check_PROGRAMS += test/fuzz/fuzz_journal
test_fuzz_fuzz_journal_SOURCES = test/fuzz/fuzz_journal.c $(FUZZ_DRIVER)
test_fuzz_fuzz_journal_LDADD = $(FUZZ_STORE_LIBS)
TESTS += test/fuzz/fuzz_journal

check_PROGRAMS += test/fuzz/fuzz_record
test_fuzz_fuzz_record_SOURCES = test/fuzz/fuzz_record.c $(FUZZ_DRIVER)
test_fuzz_fuzz_record_LDADD = $(FUZZ_STORE_LIBS)
TESTS += test/fuzz/fuzz_record

check_PROGRAMS += test/fuzz/fuzz_snapshot
test_fuzz_fuzz_snapshot_SOURCES = test/fuzz/fuzz_snapshot.c $(FUZZ_DRIVER) \
	$(FUZZ_HISTORY)
test_fuzz_fuzz_snapshot_LDADD = $(FUZZ_STORE_LIBS)
TESTS += test/fuzz/fuzz_snapshot

# The participant side links libsettle alone: it already holds the core
# library, and a second copy would duplicate its globals.
check_PROGRAMS += test/fuzz/fuzz_branch
test_fuzz_fuzz_branch_SOURCES = test/fuzz/fuzz_branch.c $(FUZZ_DRIVER) \
	examples/bank_ledger.c examples/bank_ledger.h
test_fuzz_fuzz_branch_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/client \
	-I$(srcdir)/examples
test_fuzz_fuzz_branch_LDADD = client/libsettle.la $(LMDB_LIBS) \
	$(PROTOBUF_C_LIBS)
TESTS += test/fuzz/fuzz_branch

check_PROGRAMS += test/fuzz/fuzz_args
test_fuzz_fuzz_args_SOURCES = test/fuzz/fuzz_args.c $(FUZZ_DRIVER) \
	coordinator/config.c
test_fuzz_fuzz_args_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/tools/ctl
test_fuzz_fuzz_args_LDADD = tools/libctlfmt.la proto/libsettlecore.la \
	$(PROTOBUF_C_LIBS) $(JANSSON_LIBS)
TESTS += test/fuzz/fuzz_args
endif

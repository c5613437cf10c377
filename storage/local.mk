# storage: the LMDB store (tables, indexes, applied index, snapshots).
#
# Two convenience libraries, storage/libsettlestore.la (this file) and
# wal/libsettlewal.la (wal/local.mk: entry codec, state tables, FSM). The
# wal library calls into the store, so link them in this order:
#   wal/libsettlewal.la storage/libsettlestore.la proto/libsettlecore.la
# Include the headers as "storage/store.h" and "wal/fsm.h".

noinst_LTLIBRARIES += storage/libsettlestore.la
storage_libsettlestore_la_SOURCES = \
	storage/store.c storage/store.h storage/store_int.h \
	storage/read.c \
	storage/codec.c \
	storage/write.c \
	storage/history.c \
	storage/info.c \
	storage/snapshot.c \
	storage/snapshot_check.c storage/snapshot_check.h \
	storage/applied_log.c \
	storage/members.c \
	storage/cmds.c \
	storage/counts.c
storage_libsettlestore_la_LIBADD = $(LMDB_LIBS) $(PROTOBUF_C_LIBS) $(RAFT_LIBS) \
	$(LZ4_LIBS)

if TESTS_ENABLED
check_PROGRAMS += test/unit/test_storage
test_unit_test_storage_SOURCES = \
	test/unit/storage/test_store.c \
	test/unit/storage/test_batch.c \
	test/unit/storage/test_snapshot.c \
	test/unit/storage/test_snapshot_check.c \
	test/unit/storage/test_applied_log.c \
	test/unit/storage/test_format.c \
	test/unit/storage/test_codec.c \
	test/unit/storage/helpers.c test/unit/storage/helpers.h
test_unit_test_storage_CFLAGS = $(TEST_CFLAGS)
# Snapshots saved by fuzz_snapshot, refused since restore checks every row.
test_unit_test_storage_CPPFLAGS = $(AM_CPPFLAGS) \
	-DSTORE_TEST_DATA='"$(abs_srcdir)/test/unit/storage/data"'
test_unit_test_storage_LDADD = storage/libsettlestore.la \
	proto/libsettlecore.la $(TEST_LIBS)
TESTS += test/unit/test_storage
endif
EXTRA_DIST += test/unit/storage/data/finding-1-21.bin \
	test/unit/storage/data/finding-1-582.bin \
	test/unit/storage/data/finding-1-1779.bin \
	test/unit/storage/data/finding-1-3357.bin \
	test/unit/storage/data/finding-1-13588.bin \
	test/unit/storage/data/finding-1-50543.bin

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
	storage/write.c \
	storage/info.c \
	storage/snapshot.c \
	storage/members.c
storage_libsettlestore_la_LIBADD = $(LMDB_LIBS) $(PROTOBUF_C_LIBS) $(RAFT_LIBS)

if TESTS_ENABLED
check_PROGRAMS += test/unit/test_storage
test_unit_test_storage_SOURCES = \
	test/unit/storage/test_store.c \
	test/unit/storage/test_snapshot.c \
	test/unit/storage/helpers.c test/unit/storage/helpers.h
test_unit_test_storage_CFLAGS = $(TEST_CFLAGS)
test_unit_test_storage_LDADD = storage/libsettlestore.la \
	proto/libsettlecore.la $(TEST_LIBS)
TESTS += test/unit/test_storage
endif

# coordinator/: settled, the coordinator node.

bin_PROGRAMS += coordinator/settled
coordinator_settled_SOURCES = \
	coordinator/config.c coordinator/config.h \
	coordinator/coord.h \
	coordinator/dispatch.c \
	coordinator/driver.c \
	coordinator/main.c \
	coordinator/node.c \
	coordinator/propose.c
coordinator_settled_LDADD = wal/libsettlewal.la storage/libsettlestore.la \
	proto/libsettlecore.la $(RAFT_LIBS) $(UV_LIBS) $(LMDB_LIBS) \
	$(PROTOBUF_C_LIBS)

if TESTS_ENABLED
check_PROGRAMS += test/unit/test_coordinator
test_unit_test_coordinator_SOURCES = test/unit/coordinator/test_config.c \
	coordinator/config.c
test_unit_test_coordinator_CFLAGS = $(TEST_CFLAGS)
test_unit_test_coordinator_LDADD = proto/libsettlecore.la $(TEST_LIBS)
TESTS += test/unit/test_coordinator
endif

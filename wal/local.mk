# wal: the replicated commands (entry codec, validation), the TCC state
# tables and the FSM applying commands into the store.
# Link order: wal/libsettlewal.la storage/libsettlestore.la
# proto/libsettlecore.la (see storage/local.mk).

noinst_LTLIBRARIES += wal/libsettlewal.la
wal_libsettlewal_la_SOURCES = \
	wal/arena.c wal/arena.h \
	wal/entry.c wal/entry.h \
	wal/sm.c wal/sm.h \
	wal/fsm.c wal/fsm.h \
	wal/journal.c wal/journal.h \
	wal/members.c wal/members.h \
	wal/saga.c wal/saga.h wal/fsm_int.h \
	wal/operator.c wal/operator.h \
	wal/xa.c wal/xa.h
wal_libsettlewal_la_LIBADD = $(RAFT_LIBS) $(PROTOBUF_C_LIBS)

if TESTS_ENABLED
check_PROGRAMS += test/unit/test_wal
test_unit_test_wal_SOURCES = \
	test/unit/wal/test_arena.c \
	test/unit/wal/test_entry.c \
	test/unit/wal/test_sm.c \
	test/unit/wal/test_fsm.c \
	test/unit/wal/test_batched.c \
	test/unit/wal/test_results.c \
	test/unit/wal/test_clock.c \
	test/unit/wal/test_diverge.c \
	test/unit/wal/test_journal.c \
	test/unit/wal/test_saga.c \
	test/unit/wal/test_operator.c \
	test/unit/wal/test_xa.c \
	test/unit/wal/test_xa_heur.c \
	test/unit/wal/fsm_helpers.c test/unit/wal/fsm_helpers.h \
	test/unit/storage/helpers.c test/unit/storage/helpers.h
test_unit_test_wal_CFLAGS = $(TEST_CFLAGS)
test_unit_test_wal_LDADD = wal/libsettlewal.la storage/libsettlestore.la \
	proto/libsettlecore.la $(TEST_LIBS)
TESTS += test/unit/test_wal
endif

# The raft paper's figure 8 on raft 0.15, in raft_fixture (no Settle code:
# it pins the library behaviour our mitigation exists for).
if TESTS_ENABLED
check_PROGRAMS += test/unit/test_figure8
test_unit_test_figure8_SOURCES = test/unit/raft/test_figure8.c
test_unit_test_figure8_CFLAGS = $(TEST_CFLAGS)
test_unit_test_figure8_LDADD = $(RAFT_LIBS) $(TEST_LIBS)
TESTS += test/unit/test_figure8
endif

# Sagas end to end: SUBMIT_SAGA on a real settled driving two settle-banks
# (success, business failure compensated, RETRY, coordinator SIGKILL).
if TESTS_ENABLED
check_PROGRAMS += test/integration/test_saga
test_integration_test_saga_SOURCES = \
	test/integration/test_saga.c $(COORD_IT)
test_integration_test_saga_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_integration_test_saga_LDADD = $(COORD_IT_LIBS)
TESTS += test/integration/test_saga
endif

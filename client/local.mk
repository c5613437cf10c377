# client/: libsettle, the installed client library: initiator API with leader
# discovery and retries, participant SDK, barrier.

include_HEADERS += client/settle.h client/settle_participant.h \
	client/settle_async.h
# settle.h includes the generated protocol header: install it next to it.
nodist_include_HEADERS = proto/settle.pb-c.h

lib_LTLIBRARIES += client/libsettle.la
client_libsettle_la_SOURCES = \
	client/settle.h \
	client/conn.c client/conn.h client/request.c \
	client/client.c client/client_int.h \
	client/saga.c \
	client/xa.c \
	client/settle_async.h client/async.c client/async_int.h \
	client/async_calls.c \
	client/settle_participant.h \
	client/barrier.c \
	client/participant.c
client_libsettle_la_LIBADD = proto/libsettlecore.la $(UV_LIBS) $(LMDB_LIBS) \
	$(PROTOBUF_C_LIBS)
client_libsettle_la_LDFLAGS = -version-info 0:0:0

if TESTS_ENABLED
check_PROGRAMS += test/unit/test_client
test_unit_test_client_SOURCES = test/unit/client/test_client.c \
	test/unit/client/test_errors.c test/unit/client/test_saga_client.c \
	test/unit/client/test_xa_client.c test/unit/client/test_async.c \
	test/unit/client/fake_server.c test/unit/client/fake_server.h
test_unit_test_client_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_unit_test_client_LDADD = client/libsettle.la $(UV_LIBS) \
	$(PROTOBUF_C_LIBS) $(TEST_LIBS) -lpthread
TESTS += test/unit/test_client

check_PROGRAMS += test/unit/test_barrier
test_unit_test_barrier_SOURCES = test/unit/client/test_barrier.c
test_unit_test_barrier_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_unit_test_barrier_LDADD = client/libsettle.la $(LMDB_LIBS) $(TEST_LIBS)
TESTS += test/unit/test_barrier

check_PROGRAMS += test/unit/test_participant
test_unit_test_participant_SOURCES = test/unit/client/test_participant.c
test_unit_test_participant_CFLAGS = $(TEST_CFLAGS) -I$(srcdir)/client
test_unit_test_participant_LDADD = client/libsettle.la $(LMDB_LIBS) \
	$(PROTOBUF_C_LIBS) $(UV_LIBS) $(TEST_LIBS)
TESTS += test/unit/test_participant
endif

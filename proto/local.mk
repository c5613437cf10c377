# proto/: the wire protocol (generated protobuf-c code), framing, RPC
# connections, and the small shared basics (errors, logging).

proto/settle.pb-c.c proto/settle.pb-c.h: $(srcdir)/proto/settle.proto
	$(AM_V_GEN)$(MKDIR_P) proto && \
	$(PROTOC_C) --proto_path=$(srcdir)/proto --c_out=proto $(srcdir)/proto/settle.proto

BUILT_SOURCES += proto/settle.pb-c.c proto/settle.pb-c.h
CLEANFILES += proto/settle.pb-c.c proto/settle.pb-c.h
EXTRA_DIST += proto/settle.proto

noinst_LTLIBRARIES += proto/libsettlecore.la
nodist_proto_libsettlecore_la_SOURCES = proto/settle.pb-c.c proto/settle.pb-c.h
proto_libsettlecore_la_SOURCES = \
	proto/bytes.h \
	proto/error.c proto/error.h \
	proto/log.c proto/log.h \
	proto/rpc.h proto/frame.c \
	proto/stream.c proto/stream.h \
	proto/tls.c proto/tls.h proto/peer_match.c \
	proto/rpc_server.c proto/rpc_client.c
# The XID codec lives in xa/ but every layer needs it (the FSM builds RM
# branches' XIDs, the client library derives gids from XIDs).
proto_libsettlecore_la_SOURCES += xa/xid.c xa/xid.h
# The generated code is not ours to lint.
proto_libsettlecore_la_CFLAGS = $(AM_CFLAGS) -Wno-shadow
proto_libsettlecore_la_LIBADD = $(UV_LIBS) $(PROTOBUF_C_LIBS) $(LMDB_LIBS) $(RAFT_LIBS) \
	$(SSL_LIBS)

if TESTS_ENABLED
check_PROGRAMS += test/unit/test_frame
test_unit_test_frame_SOURCES = test/unit/proto/test_frame.c
test_unit_test_frame_CFLAGS = $(TEST_CFLAGS)
test_unit_test_frame_LDADD = proto/libsettlecore.la $(TEST_LIBS)
TESTS += test/unit/test_frame
check_PROGRAMS += test/unit/test_rpc_server
test_unit_test_rpc_server_SOURCES = test/unit/proto/test_rpc_server.c \
	test/unit/proto/rawpeer.h
test_unit_test_rpc_server_CFLAGS = $(TEST_CFLAGS)
test_unit_test_rpc_server_LDADD = proto/libsettlecore.la $(TEST_LIBS)
TESTS += test/unit/test_rpc_server
check_PROGRAMS += test/unit/test_rpc_client
test_unit_test_rpc_client_SOURCES = test/unit/proto/test_rpc_client.c \
	test/unit/proto/rawpeer.h
test_unit_test_rpc_client_CFLAGS = $(TEST_CFLAGS)
test_unit_test_rpc_client_LDADD = proto/libsettlecore.la $(TEST_LIBS)
TESTS += test/unit/test_rpc_client
check_PROGRAMS += test/unit/test_rpc_tls
test_unit_test_rpc_tls_SOURCES = test/unit/proto/test_rpc_tls.c \
	test/unit/proto/rawpeer.h
test_unit_test_rpc_tls_CFLAGS = $(TEST_CFLAGS) $(SSL_CFLAGS)
test_unit_test_rpc_tls_LDADD = proto/libsettlecore.la $(TEST_LIBS) $(SSL_LIBS)
TESTS += test/unit/test_rpc_tls
endif

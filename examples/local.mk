# examples/: demo participants and initiators used by quickstart and tests.

bin_PROGRAMS += examples/settle-bank examples/settle-transfer \
	examples/settle-xa-transfer

examples_settle_bank_SOURCES = examples/bank.c examples/tls_env.h \
	examples/bank_ledger.c examples/bank_ledger.h
examples_settle_bank_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/client
examples_settle_bank_LDADD = client/libsettle.la $(LMDB_LIBS) $(UV_LIBS) \
	$(PROTOBUF_C_LIBS)

examples_settle_transfer_SOURCES = examples/transfer.c examples/tls_env.h \
	examples/bank_ledger.c examples/bank_ledger.h
examples_settle_transfer_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/client
examples_settle_transfer_LDADD = client/libsettle.la $(LMDB_LIBS) \
	$(PROTOBUF_C_LIBS)

# Money between PostgreSQL and MariaDB in one XA transaction with Settle as
# the TM: libsettle for the cluster, the RM adapters for its own branches.
examples_settle_xa_transfer_SOURCES = examples/xa_transfer.c \
	examples/tls_env.h
examples_settle_xa_transfer_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/client
examples_settle_xa_transfer_LDADD = client/libsettle.la xa/libsettlexa.la \
	$(PROTOBUF_C_LIBS)

if TESTS_ENABLED
check_PROGRAMS += test/unit/test_bank
test_unit_test_bank_SOURCES = test/unit/client/test_bank.c \
	examples/bank_ledger.c examples/bank_ledger.h
test_unit_test_bank_CFLAGS = $(TEST_CFLAGS)
test_unit_test_bank_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/client \
	-I$(srcdir)/examples
test_unit_test_bank_LDADD = client/libsettle.la $(LMDB_LIBS) \
	$(PROTOBUF_C_LIBS) $(TEST_LIBS)
TESTS += test/unit/test_bank

# The example programs as real processes against a fake coordinator.
check_PROGRAMS += test/unit/test_examples
test_unit_test_examples_SOURCES = test/unit/client/test_examples.c \
	test/unit/client/fake_server.c test/unit/client/fake_server.h
test_unit_test_examples_CFLAGS = $(TEST_CFLAGS)
test_unit_test_examples_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/client \
	-DSETTLE_TEST_BUILDDIR='"$(abs_top_builddir)"'
test_unit_test_examples_LDADD = client/libsettle.la $(PROTOBUF_C_LIBS) \
	$(TEST_LIBS) -lpthread
EXTRA_test_unit_test_examples_DEPENDENCIES = examples/settle-bank \
	examples/settle-transfer
TESTS += test/unit/test_examples
endif

#include <criterion/criterion.h>
#include <errno.h>
#include <lmdb.h>
#include <raft.h>
#include <uv.h>

#include "error.h"

Test(error, every_code_has_text_name_and_wire_code)
{
#define CHECK(name, value, wire, text)                                         \
	cr_expect_str_eq(settle_strerror(value), text);                        \
	cr_expect_str_eq(settle_errname(value), #name);                        \
	cr_expect_eq(settle_err_to_wire(value), wire);
	SETTLE_ERRNO_MAP(CHECK)
#undef CHECK
	cr_expect_str_eq(settle_strerror(-9999), "unknown error");
	cr_expect_eq(settle_err_to_wire(-9999), 7);
}

Test(error, wire_codes_round_trip)
{
	for (int code = 1; code <= 16; code++)
		cr_expect_eq(settle_err_to_wire(settle_err_from_wire(code)),
			     code);
	cr_expect_eq(settle_err_from_wire(15), SETTLE_EREUSED);
	cr_expect_eq(settle_err_to_wire(SETTLE_EREUSED), 15);
	cr_expect_eq(settle_err_from_wire(16), SETTLE_EDENIED);
	cr_expect_eq(settle_err_to_wire(SETTLE_EDENIED), 16);
	cr_expect_eq(settle_err_from_wire(0), 0);
	cr_expect_eq(settle_err_from_wire(99), SETTLE_EINTERNAL);
	cr_expect_eq(settle_err_from_wire(14), SETTLE_EEXHAUSTED);
	/* Not a wire code: the value of a local error. */
	cr_expect_eq(settle_err_from_wire(17), SETTLE_EINTERNAL);
	cr_expect_eq(settle_err_from_wire(100), SETTLE_EINTERNAL);
}

Test(error, boundary_mappings)
{
	cr_expect_eq(settle_err_from_mdb(MDB_NOTFOUND), SETTLE_ENOTFOUND);
	cr_expect_eq(settle_err_from_mdb(MDB_MAP_FULL), SETTLE_EFULL);
	cr_expect_eq(settle_err_from_raft(RAFT_LEADERSHIPLOST),
		     SETTLE_ENOTLEADER);
	cr_expect_eq(settle_err_from_uv(UV_ECONNREFUSED), SETTLE_ECONNECT);
	cr_expect_eq(settle_err_from_uv(UV_EOF), SETTLE_ECLOSED);
	/* A full disk is named as such, never a generic I/O error. */
	cr_expect_eq(settle_err_from_mdb(ENOSPC), SETTLE_ENOSPACE);
	cr_expect_eq(settle_err_from_uv(UV_ENOSPC), SETTLE_ENOSPACE);
	cr_expect_eq(settle_err_from_raft(RAFT_NOSPACE), SETTLE_ENOSPACE);
	cr_expect_str_eq(settle_errname(settle_err_from_wire(14)), "EXHAUSTED");
}

/*
 * test_settle_xa_h.c — xa/settle_xa.h has the X/Open values and layout.
 *
 * settle_xa.h is included first, before any system header, so this file
 * does not compile unless the header is self-contained.
 */
#include "xa/settle_xa.h"

#include <criterion/criterion.h>
#include <stddef.h>

/* The specification's layout: three longs, then 128 bytes of data. */
_Static_assert(offsetof(XID, formatID) == 0, "formatID first");
_Static_assert(offsetof(XID, gtrid_length) == sizeof(long), "gtrid_length");
_Static_assert(offsetof(XID, bqual_length) == 2 * sizeof(long), "bqual_length");
_Static_assert(offsetof(XID, data) == 3 * sizeof(long), "data");
_Static_assert(sizeof(((XID *)0)->data) == 128, "data is 128 bytes");
_Static_assert(sizeof(XID) == 3 * sizeof(long) + 128, "no padding in XID");

_Static_assert(offsetof(struct xa_switch_t, name) == 0, "name first");
_Static_assert(sizeof(((struct xa_switch_t *)0)->name) == 32, "RMNAMESZ");
_Static_assert(offsetof(struct xa_switch_t, flags) == 32, "flags");
_Static_assert(offsetof(struct xa_switch_t, version) == 32 + sizeof(long),
	       "version");
_Static_assert(offsetof(struct xa_switch_t, xa_open_entry) ==
		   32 + 2 * sizeof(long),
	       "entries follow version");
_Static_assert(offsetof(struct xa_switch_t, xa_complete_entry) ==
		   32 + 2 * sizeof(long) + 9 * sizeof(void (*)(void)),
	       "ten entries in order");

Test(settle_xa_h, layout_on_this_abi)
{
	/* Debian 12 on x86-64/arm64 is LP64: 8-byte long. */
	if (sizeof(long) == 8) {
		cr_assert_eq(sizeof(XID), 152);
		cr_assert_eq(sizeof(struct xa_switch_t), 32 + 16 + 10 * 8);
	}
	cr_assert_eq(offsetof(struct xa_switch_t, xa_start_entry),
		     offsetof(struct xa_switch_t, xa_open_entry) +
			 2 * sizeof(void *));
	cr_assert_eq(offsetof(struct xa_switch_t, xa_rollback_entry),
		     offsetof(struct xa_switch_t, xa_end_entry) +
			 sizeof(void *));
	cr_assert_eq(offsetof(struct xa_switch_t, xa_commit_entry),
		     offsetof(struct xa_switch_t, xa_prepare_entry) +
			 sizeof(void *));
	cr_assert_eq(offsetof(struct xa_switch_t, xa_forget_entry),
		     offsetof(struct xa_switch_t, xa_recover_entry) +
			 sizeof(void *));
}

Test(settle_xa_h, sizes)
{
	cr_assert_eq(XIDDATASIZE, 128);
	cr_assert_eq(MAXGTRIDSIZE, 64);
	cr_assert_eq(MAXBQUALSIZE, 64);
	cr_assert_eq(RMNAMESZ, 32);
	cr_assert_eq(MAXINFOSIZE, 256);
}

Test(settle_xa_h, flags)
{
	cr_assert_eq(TMNOFLAGS, 0L);
	cr_assert_eq(TMREGISTER, 0x1L);
	cr_assert_eq(TMNOMIGRATE, 0x2L);
	cr_assert_eq(TMUSEASYNC, 0x4L);
	cr_assert_eq(TMASYNC, 0x80000000L);
	cr_assert_eq(TMONEPHASE, 0x40000000L);
	cr_assert_eq(TMFAIL, 0x20000000L);
	cr_assert_eq(TMNOWAIT, 0x10000000L);
	cr_assert_eq(TMRESUME, 0x08000000L);
	cr_assert_eq(TMSUCCESS, 0x04000000L);
	cr_assert_eq(TMSUSPEND, 0x02000000L);
	cr_assert_eq(TMSTARTRSCAN, 0x01000000L);
	cr_assert_eq(TMENDRSCAN, 0x00800000L);
	cr_assert_eq(TMMULTIPLE, 0x00400000L);
	cr_assert_eq(TMJOIN, 0x00200000L);
	cr_assert_eq(TMMIGRATE, 0x00100000L);

	/* The verb flags are distinct bits, none shared with the switch's. */
	long all[] = {TMASYNC,	  TMONEPHASE,  TMFAIL,	  TMNOWAIT,
		      TMRESUME,	  TMSUCCESS,   TMSUSPEND, TMSTARTRSCAN,
		      TMENDRSCAN, TMMULTIPLE,  TMJOIN,	  TMMIGRATE,
		      TMREGISTER, TMNOMIGRATE, TMUSEASYNC};
	long seen = 0;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		cr_assert_eq(all[i] & (all[i] - 1), 0, "one bit: %#lx", all[i]);
		cr_assert_eq(seen & all[i], 0, "distinct: %#lx", all[i]);
		seen |= all[i];
	}
}

Test(settle_xa_h, return_codes)
{
	cr_assert_eq(XA_RBBASE, 100);
	cr_assert_eq(XA_RBROLLBACK, 100);
	cr_assert_eq(XA_RBCOMMFAIL, 101);
	cr_assert_eq(XA_RBDEADLOCK, 102);
	cr_assert_eq(XA_RBINTEGRITY, 103);
	cr_assert_eq(XA_RBOTHER, 104);
	cr_assert_eq(XA_RBPROTO, 105);
	cr_assert_eq(XA_RBTIMEOUT, 106);
	cr_assert_eq(XA_RBTRANSIENT, 107);
	cr_assert_eq(XA_RBEND, 107);
	cr_assert_eq(XA_NOMIGRATE, 9);
	cr_assert_eq(XA_HEURHAZ, 8);
	cr_assert_eq(XA_HEURCOM, 7);
	cr_assert_eq(XA_HEURRB, 6);
	cr_assert_eq(XA_HEURMIX, 5);
	cr_assert_eq(XA_RETRY, 4);
	cr_assert_eq(XA_RDONLY, 3);
	cr_assert_eq(XA_OK, 0);
	cr_assert_eq(XAER_ASYNC, -2);
	cr_assert_eq(XAER_RMERR, -3);
	cr_assert_eq(XAER_NOTA, -4);
	cr_assert_eq(XAER_INVAL, -5);
	cr_assert_eq(XAER_PROTO, -6);
	cr_assert_eq(XAER_RMFAIL, -7);
	cr_assert_eq(XAER_DUPID, -8);
	cr_assert_eq(XAER_OUTSIDE, -9);
	cr_assert_eq(TM_JOIN, 2);
	cr_assert_eq(TM_RESUME, 1);
	cr_assert_eq(TM_OK, 0);
	cr_assert_eq(TMER_TMERR, -1);
	cr_assert_eq(TMER_INVAL, -2);
	cr_assert_eq(TMER_PROTO, -3);
}

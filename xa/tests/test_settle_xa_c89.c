/*
 * test_settle_xa_c89.c — xa/settle_xa.h compiles alone, as C89 with
 * -pedantic-errors, the way an old TM's build would include it. Not a
 * Criterion test: a plain program, so that nothing else is included.
 */
#include "xa/settle_xa.h"

/* Every entry point of the switch, with the specification's signature. */
static int sw_info(char *info, int rmid, long flags)
{
	return info == 0 && rmid == 0 && flags == 0 ? XA_OK : XAER_INVAL;
}

static int sw_xid(XID *xid, int rmid, long flags)
{
	return xid != 0 && rmid == 0 && flags == 0 ? XA_OK : XAER_INVAL;
}

static int sw_recover(XID *xids, long count, int rmid, long flags)
{
	return xids != 0 && count > 0 && rmid == 0 && flags == 0 ? 0
								 : XAER_INVAL;
}

static int sw_complete(int *handle, int *retval, int rmid, long flags)
{
	return handle != 0 && retval != 0 && rmid == 0 && flags == 0
		   ? XA_OK
		   : XAER_INVAL;
}

static struct xa_switch_t sw = {
    "settle-c89", TMNOMIGRATE, 0,      sw_info,	   sw_info, sw_xid,	sw_xid,
    sw_xid,	  sw_xid,      sw_xid, sw_recover, sw_xid,  sw_complete};

int main(void)
{
	XID x;
	int h = 0, r = 0;

	x.formatID = 1;
	x.gtrid_length = 1;
	x.bqual_length = 1;
	x.data[0] = 'g';
	x.data[1] = 'b';
	if (sw.xa_open_entry(0, 0, TMNOFLAGS) != XA_OK ||
	    sw.xa_close_entry(0, 0, TMNOFLAGS) != XA_OK ||
	    sw.xa_start_entry(&x, 0, 0) != XA_OK ||
	    sw.xa_end_entry(&x, 0, 0) != XA_OK ||
	    sw.xa_rollback_entry(&x, 0, 0) != XA_OK ||
	    sw.xa_prepare_entry(&x, 0, 0) != XA_OK ||
	    sw.xa_commit_entry(&x, 0, 0) != XA_OK ||
	    sw.xa_recover_entry(&x, 1, 0, 0) != 0 ||
	    sw.xa_forget_entry(&x, 0, 0) != XA_OK ||
	    sw.xa_complete_entry(&h, &r, 0, 0) != XA_OK)
		return 1;
	if (sizeof(x.data) != XIDDATASIZE || sizeof(sw.name) != RMNAMESZ)
		return 1;
	return 0;
}

/*
 * settle_xa.h — the X/Open XA interface of Settle as a resource manager.
 *
 * A legacy transaction manager (a TP monitor, an application server) loads
 * Settle's switch library and drives it through struct xa_switch_t. This
 * header gives the XA types, flags and return codes with the values of the
 * X/Open "Distributed Transaction Processing: The XA Specification" (1991),
 * chapter 4 and appendix A, so that a TM built against its own xa.h and
 * Settle agree bit for bit. It is self-contained (C89-compatible, no other
 * header needed) so that a TM's build can include it alone.
 *
 * Do not include this header together with another product's xa.h: both
 * define XID and struct xa_switch_t.
 */
#ifndef SETTLE_XA_SETTLE_XA_H
#define SETTLE_XA_SETTLE_XA_H

#ifdef __cplusplus
extern "C" {
#endif

/* Transaction branch identification. */
#define XIDDATASIZE  128 /* bytes in data: gtrid then bqual */
#define MAXGTRIDSIZE 64	 /* largest gtrid */
#define MAXBQUALSIZE 64	 /* largest bqual */

/*
 * An XID: gtrid_length bytes of global transaction id followed by
 * bqual_length bytes of branch qualifier in data. formatID -1 is the null
 * XID. The fields are `long` as the specification says, so the layout (and
 * sizeof) depends on the ABI: Settle converts it field by field
 * (xa_xid_from_xopen() in xa/xid.h), never as raw memory.
 */
struct xid_t {
	long formatID;	   /* format identifier; -1: null XID */
	long gtrid_length; /* 1..64 */
	long bqual_length; /* 1..64 */
	char data[XIDDATASIZE];
};
typedef struct xid_t XID;

/* Resource manager switch. */
#define RMNAMESZ    32	/* name, with its terminating NUL */
#define MAXINFOSIZE 256 /* xa_info string of xa_open/xa_close, with NUL */

struct xa_switch_t {
	char name[RMNAMESZ]; /* resource manager name */
	long flags;	     /* TMREGISTER, TMNOMIGRATE, TMUSEASYNC or 0 */
	long version;	     /* must be 0 */
	int (*xa_open_entry)(char *xa_info, int rmid, long flags);
	int (*xa_close_entry)(char *xa_info, int rmid, long flags);
	int (*xa_start_entry)(XID *xid, int rmid, long flags);
	int (*xa_end_entry)(XID *xid, int rmid, long flags);
	int (*xa_rollback_entry)(XID *xid, int rmid, long flags);
	int (*xa_prepare_entry)(XID *xid, int rmid, long flags);
	int (*xa_commit_entry)(XID *xid, int rmid, long flags);
	int (*xa_recover_entry)(XID *xids, long count, int rmid, long flags);
	int (*xa_forget_entry)(XID *xid, int rmid, long flags);
	int (*xa_complete_entry)(int *handle, int *retval, int rmid,
				 long flags);
};

/* Flags: in xa_switch_t.flags (first three) and in the verbs' flags. */
#define TMNOFLAGS    0x00000000L /* no flags */
#define TMREGISTER   0x00000001L /* switch: RM dynamically registers (ax_reg) */
#define TMNOMIGRATE  0x00000002L /* switch: no association migration */
#define TMUSEASYNC   0x00000004L /* switch: RM supports asynchronous verbs */
#define TMASYNC	     0x80000000L /* perform the verb asynchronously */
#define TMONEPHASE   0x40000000L /* xa_commit: one-phase commit */
#define TMFAIL	     0x20000000L /* xa_end: dissociate, mark rollback-only */
#define TMNOWAIT     0x10000000L /* return XA_RETRY instead of blocking */
#define TMRESUME     0x08000000L /* xa_start: resume a suspended association */
#define TMSUCCESS    0x04000000L /* xa_end: dissociate, work is complete */
#define TMSUSPEND    0x02000000L /* xa_end: suspend the association */
#define TMSTARTRSCAN 0x01000000L /* xa_recover: start a scan */
#define TMENDRSCAN   0x00800000L /* xa_recover: end a scan */
#define TMMULTIPLE   0x00400000L /* xa_complete: wait for any operation */
#define TMJOIN	     0x00200000L /* xa_start: join an existing branch */
#define TMMIGRATE    0x00100000L /* xa_end: the association may migrate */

/* ax_reg() return values (dynamic registration; Settle does not use it). */
#define TM_JOIN	   2
#define TM_RESUME  1
#define TM_OK	   0
#define TMER_TMERR (-1)
#define TMER_INVAL (-2)
#define TMER_PROTO (-3)

/* Return codes: the branch was rolled back (XA_RBBASE..XA_RBEND). */
#define XA_RBBASE      100
#define XA_RBROLLBACK  XA_RBBASE       /* unspecified reason */
#define XA_RBCOMMFAIL  (XA_RBBASE + 1) /* communication failure */
#define XA_RBDEADLOCK  (XA_RBBASE + 2) /* deadlock detected */
#define XA_RBINTEGRITY (XA_RBBASE + 3) /* integrity violation */
#define XA_RBOTHER     (XA_RBBASE + 4) /* other reason */
#define XA_RBPROTO     (XA_RBBASE + 5) /* protocol error in the RM */
#define XA_RBTIMEOUT   (XA_RBBASE + 6) /* the branch took too long */
#define XA_RBTRANSIENT (XA_RBBASE + 7) /* may retry the global transaction */
#define XA_RBEND       XA_RBTRANSIENT  /* last rollback code */

#define XA_NOMIGRATE 9	  /* resumption must occur where suspension did */
#define XA_HEURHAZ   8	  /* the branch may have been heuristically completed */
#define XA_HEURCOM   7	  /* the branch was heuristically committed */
#define XA_HEURRB    6	  /* the branch was heuristically rolled back */
#define XA_HEURMIX   5	  /* partly committed, partly rolled back */
#define XA_RETRY     4	  /* nothing done; the verb may be reissued */
#define XA_RDONLY    3	  /* read-only branch, already committed */
#define XA_OK	     0	  /* normal execution */
#define XAER_ASYNC   (-2) /* an asynchronous operation is outstanding */
#define XAER_RMERR   (-3) /* resource manager error in the branch */
#define XAER_NOTA    (-4) /* the XID is not valid (not known) */
#define XAER_INVAL   (-5) /* invalid arguments */
#define XAER_PROTO   (-6) /* verb called in an improper context */
#define XAER_RMFAIL  (-7) /* resource manager unavailable */
#define XAER_DUPID   (-8) /* the XID already exists */
#define XAER_OUTSIDE (-9) /* the RM is doing work outside a global tx */

/*
 * Settle's switch, defined by libsettle_xa (`pkg-config --libs settle-xa`,
 * or dlopen() libsettle_xa.so.0 and dlsym() "settle_xa_switch"). Its name
 * is "settle", its flags TMNOMIGRATE, its version 0. xa_open's info string
 * names the coordinator cluster, e.g.
 * "endpoints=10.0.0.1:7001,10.0.0.2:7001;timeout_ms=60000" (docs/XA.md).
 * settle_xa_ext.h adds what the application needs inside a transaction.
 */
extern struct xa_switch_t settle_xa_switch;

#ifdef __cplusplus
}
#endif

#endif /* SETTLE_XA_SETTLE_XA_H */

/*
 * xid.h — the X/Open XID and its encodings.
 *
 * An XID names one branch of a global transaction: a format identifier,
 * a global transaction id (gtrid) and a branch qualifier (bqual) of 1..64
 * bytes each. Settle passes XIDs through unchanged, byte for byte, so every
 * encoding here is reversible and canonical: one XID has exactly one
 * encoding, and decoding rejects anything else.
 *
 * struct xa_xid is Settle's own fixed-width form. It is always read and
 * written field by field: the X/Open struct uses `long`, whose size differs
 * between ABIs, so it is never copied or sent as raw memory.
 *
 * Encodings:
 *   wire/log   4-byte big-endian formatID, 1-byte gtrid length, 1-byte
 *              bqual length, gtrid bytes, bqual bytes (6..134 bytes).
 *   text       "<formatID>:<hex gtrid>:<hex bqual>", for logs and operators.
 *   PostgreSQL "settle:<formatID>:<b64 gtrid>:<b64 bqual>", base64url
 *              without padding, at most 191 characters: PREPARE TRANSACTION
 *              takes a gid shorter than 200 bytes, which hex of two 64-byte
 *              parts (256 characters) would not fit.
 *   MariaDB    "X'<hex gtrid>',X'<hex bqual>',<formatID>", the xid of XA
 *              START/END/PREPARE/COMMIT/ROLLBACK; XA RECOVER rows (formatID,
 *              gtrid_length, bqual_length, raw data) are parsed back.
 *
 * All functions return 0 or a negative SETTLE_E* code (proto/error.h) and
 * never read or write past the sizes they are given.
 */
#ifndef SETTLE_XA_XID_H
#define SETTLE_XA_XID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XA_XID_PART_MAX 64  /* max gtrid or bqual length, per X/Open */
#define XA_XID_DATA_MAX 128 /* gtrid + bqual */
#define XA_XID_WIRE_MAX (6 + XA_XID_DATA_MAX)
#define XA_XID_TEXT_MAX (10 + 1 + 128 + 1 + 128 + 1)
#define XA_XID_PG_MAX	200 /* PostgreSQL GIDSIZE, with the NUL */
#define XA_XID_MY_MAX	(2 + 128 + 2 + 2 + 128 + 2 + 10 + 1)

/* Settle's prefix of every PostgreSQL gid it generates. */
#define XA_XID_PG_PREFIX "settle:"

struct xa_xid {
	int32_t format_id; /* 0..INT32_MAX; -1 (the null XID) is refused */
	uint8_t gtrid_len; /* 1..64 */
	uint8_t bqual_len; /* 1..64 */
	uint8_t data[XA_XID_DATA_MAX]; /* gtrid then bqual; the rest zero */
};

/*
 * The X/Open XA layout (xa.h of the XA specification), for the switch
 * library: only ever converted field by field with the two functions below.
 */
struct xa_xopen_xid {
	long formatID;
	long gtrid_length;
	long bqual_length;
	char data[XA_XID_DATA_MAX];
};

/*
 * Build an XID from its parts. The bytes are copied; no reference is kept.
 * Errors: SETTLE_EINVAL when format_id is outside 0..INT32_MAX or a length is
 * outside 1..64 (x is then left zeroed).
 */
int xa_xid_init(struct xa_xid *x, int64_t format_id, const void *gtrid,
		size_t gtrid_len, const void *bqual, size_t bqual_len);

/* 0 when x is a valid XID, else SETTLE_EINVAL. */
int xa_xid_validate(const struct xa_xid *x);

/* True when both XIDs have the same formatID, gtrid and bqual. */
bool xa_xid_equal(const struct xa_xid *a, const struct xa_xid *b);

/* Pointers into x->data. */
const uint8_t *xa_xid_gtrid(const struct xa_xid *x);
const uint8_t *xa_xid_bqual(const struct xa_xid *x);

/*
 * Wire/log encoding into buf (cap bytes); *len gets the size written.
 * Errors: SETTLE_EINVAL for an invalid XID, SETTLE_ETOOBIG when cap is short
 * (XA_XID_WIRE_MAX is always enough).
 */
int xa_xid_encode(const struct xa_xid *x, uint8_t *buf, size_t cap,
		  size_t *len);

/*
 * The gid of the Settle transaction a legacy TM's XID names (BeginRequest
 * .xid): "xa-" and 40 lower-case hex digits, the first 20 bytes of the
 * SHA-256 of the XID's wire encoding. The coordinator and the switch
 * library both derive it, so any process that holds the XID finds the
 * transaction. out must hold XA_XID_GID_LEN + 1 bytes.
 * Errors: SETTLE_EINVAL for an invalid XID, SETTLE_EINTERNAL if OpenSSL
 * fails.
 */
#define XA_XID_GID_LEN 43
int xa_xid_gid(const struct xa_xid *x, char out[XA_XID_GID_LEN + 1]);

/*
 * Decode exactly len bytes of the wire/log encoding.
 * Errors: SETTLE_EINVAL for a short, long or invalid encoding.
 */
int xa_xid_decode(const uint8_t *buf, size_t len, struct xa_xid *x);

/*
 * Text form "<formatID>:<hex gtrid>:<hex bqual>" (lower-case hex), NUL
 * terminated. Errors: SETTLE_EINVAL, SETTLE_ETOOBIG (XA_XID_TEXT_MAX is
 * enough).
 */
int xa_xid_format(const struct xa_xid *x, char *buf, size_t cap);

/* Parse the text form; upper-case hex is accepted. Errors: SETTLE_EINVAL. */
int xa_xid_parse(const char *s, struct xa_xid *x);

/*
 * PostgreSQL gid "settle:<formatID>:<b64url gtrid>:<b64url bqual>".
 * Errors: SETTLE_EINVAL, SETTLE_ETOOBIG (XA_XID_PG_MAX is enough).
 */
int xa_xid_to_pg_gid(const struct xa_xid *x, char *buf, size_t cap);

/*
 * Parse a gid read from pg_prepared_xacts.
 * Errors: SETTLE_ENOTFOUND when the gid is not one of ours (no "settle:"
 * prefix: another transaction manager's, to be left alone), SETTLE_EINVAL
 * when it has our prefix but is not a canonical encoding.
 */
int xa_xid_from_pg_gid(const char *gid, struct xa_xid *x);

/*
 * MariaDB xid "X'<hex>',X'<hex>',<formatID>", NUL terminated: hex only, so
 * it is safe to place in SQL as is. Errors: SETTLE_EINVAL, SETTLE_ETOOBIG
 * (XA_XID_MY_MAX is enough).
 */
int xa_xid_to_mysql(const struct xa_xid *x, char *buf, size_t cap);

/*
 * Parse what xa_xid_to_mysql writes (len bytes, not necessarily NUL
 * terminated); upper- or lower-case hex. (MariaDB's XA RECOVER FORMAT='SQL'
 * is not always this form: it quotes printable XIDs and omits formatID 1.)
 * Errors: SETTLE_EINVAL.
 */
int xa_xid_from_mysql(const char *s, size_t len, struct xa_xid *x);

/*
 * Parse a row of plain XA RECOVER: formatID, gtrid_length and bqual_length as
 * decimal text, data as raw bytes (data_len of them, which must equal the
 * two lengths added). Errors: SETTLE_EINVAL.
 */
int xa_xid_from_mysql_row(const char *format_id, const char *gtrid_len,
			  const char *bqual_len, const void *data,
			  size_t data_len, struct xa_xid *x);

/*
 * Field-by-field conversion from and to the X/Open layout.
 * Errors: SETTLE_EINVAL for lengths or formatID out of range (the null XID,
 * formatID -1, included).
 */
int xa_xid_from_xopen(const struct xa_xopen_xid *in, struct xa_xid *x);
int xa_xid_to_xopen(const struct xa_xid *x, struct xa_xopen_xid *out);

#endif /* SETTLE_XA_XID_H */

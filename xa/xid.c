/*
 * xid.c — XID validation and its encodings. Every decoder is strict: it
 * accepts only what the matching encoder writes (hex case aside), so a
 * foreign or damaged identifier is never mistaken for one of ours.
 */
#include "xa/xid.h"

#include <string.h>

#include <openssl/evp.h>

#include "error.h"

static const char xa__hex[] = "0123456789abcdef";
static const char xa__b64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int xa_xid_init(struct xa_xid *x, int64_t format_id, const void *gtrid,
		size_t gtrid_len, const void *bqual, size_t bqual_len)
{
	memset(x, 0, sizeof(*x));
	if (format_id < 0 || format_id > INT32_MAX)
		return SETTLE_EINVAL;
	if (gtrid == NULL || bqual == NULL)
		return SETTLE_EINVAL;
	if (gtrid_len < 1 || gtrid_len > XA_XID_PART_MAX)
		return SETTLE_EINVAL;
	if (bqual_len < 1 || bqual_len > XA_XID_PART_MAX)
		return SETTLE_EINVAL;
	x->format_id = (int32_t)format_id;
	x->gtrid_len = (uint8_t)gtrid_len;
	x->bqual_len = (uint8_t)bqual_len;
	memcpy(x->data, gtrid, gtrid_len);
	memcpy(x->data + gtrid_len, bqual, bqual_len);
	return 0;
}

int xa_xid_validate(const struct xa_xid *x)
{
	if (x == NULL || x->format_id < 0)
		return SETTLE_EINVAL;
	if (x->gtrid_len < 1 || x->gtrid_len > XA_XID_PART_MAX)
		return SETTLE_EINVAL;
	if (x->bqual_len < 1 || x->bqual_len > XA_XID_PART_MAX)
		return SETTLE_EINVAL;
	return 0;
}

bool xa_xid_equal(const struct xa_xid *a, const struct xa_xid *b)
{
	/* Only the used bytes: data past gtrid+bqual is not part of the XID. */
	return a->format_id == b->format_id && a->gtrid_len == b->gtrid_len &&
	       a->bqual_len == b->bqual_len &&
	       memcmp(a->data, b->data, (size_t)a->gtrid_len + a->bqual_len) ==
		   0;
}

const uint8_t *xa_xid_gtrid(const struct xa_xid *x)
{
	return x->data;
}

const uint8_t *xa_xid_bqual(const struct xa_xid *x)
{
	return x->data + x->gtrid_len;
}

int xa_xid_encode(const struct xa_xid *x, uint8_t *buf, size_t cap, size_t *len)
{
	size_t n;
	uint32_t f;

	if (xa_xid_validate(x) != 0)
		return SETTLE_EINVAL;
	n = 6 + (size_t)x->gtrid_len + x->bqual_len;
	if (cap < n)
		return SETTLE_ETOOBIG;
	f = (uint32_t)x->format_id;
	buf[0] = (uint8_t)(f >> 24);
	buf[1] = (uint8_t)(f >> 16);
	buf[2] = (uint8_t)(f >> 8);
	buf[3] = (uint8_t)f;
	buf[4] = x->gtrid_len;
	buf[5] = x->bqual_len;
	memcpy(buf + 6, x->data, n - 6);
	*len = n;
	return 0;
}

int xa_xid_decode(const uint8_t *buf, size_t len, struct xa_xid *x)
{
	uint32_t f;
	size_t g, b;

	memset(x, 0, sizeof(*x));
	if (buf == NULL || len < 6)
		return SETTLE_EINVAL;
	f = (uint32_t)buf[0] << 24 | (uint32_t)buf[1] << 16 |
	    (uint32_t)buf[2] << 8 | buf[3];
	g = buf[4];
	b = buf[5];
	if (len != 6 + g + b)
		return SETTLE_EINVAL;
	if (f > INT32_MAX)
		return SETTLE_EINVAL;
	return xa_xid_init(x, f, buf + 6, g, buf + 6 + g, b);
}

/* Hex of n bytes at dst (2n chars, no NUL). */
static void xa__hex_put(char *dst, const uint8_t *src, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		dst[2 * i] = xa__hex[src[i] >> 4];
		dst[2 * i + 1] = xa__hex[src[i] & 15];
	}
}

static int xa__hex_val(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Decode n hex chars (n even, 2..128) into dst; *out gets n/2. */
static int xa__hex_get(const char *s, size_t n, uint8_t *dst, size_t *out)
{
	size_t i;

	if (n == 0 || n % 2 != 0 || n > 2 * XA_XID_PART_MAX)
		return SETTLE_EINVAL;
	for (i = 0; i < n; i += 2) {
		int hi = xa__hex_val(s[i]), lo = xa__hex_val(s[i + 1]);

		if (hi < 0 || lo < 0)
			return SETTLE_EINVAL;
		dst[i / 2] = (uint8_t)(hi << 4 | lo);
	}
	*out = n / 2;
	return 0;
}

/* Decimal formatID of n chars: digits only, no leading zero, <= INT32_MAX. */
static int xa__fid_get(const char *s, size_t n, int64_t *out)
{
	int64_t v = 0;
	size_t i;

	if (n == 0 || n > 10 || (n > 1 && s[0] == '0'))
		return SETTLE_EINVAL;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return SETTLE_EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	if (v > INT32_MAX)
		return SETTLE_EINVAL;
	*out = v;
	return 0;
}

/* Position of c in s[0..n), or n. */
static size_t xa__find(const char *s, size_t n, char c)
{
	size_t i;

	for (i = 0; i < n && s[i] != c; i++)
		;
	return i;
}

/* Append "<sep><hex>" style pieces through a cursor, checking room. */
struct xa__out {
	char *buf;
	size_t cap;
	size_t len;
	int err;
};

static void xa__put(struct xa__out *o, const char *s, size_t n)
{
	if (o->err != 0)
		return;
	if (o->cap - o->len <= n) {
		o->err = SETTLE_ETOOBIG;
		return;
	}
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static void xa__put_str(struct xa__out *o, const char *s)
{
	xa__put(o, s, strlen(s));
}

static void xa__put_hex(struct xa__out *o, const uint8_t *p, size_t n)
{
	char tmp[2 * XA_XID_PART_MAX];

	xa__hex_put(tmp, p, n);
	xa__put(o, tmp, 2 * n);
}

static void xa__put_fid(struct xa__out *o, int32_t f)
{
	char tmp[12];
	size_t i = sizeof(tmp);
	uint32_t v = (uint32_t)f;

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	xa__put(o, tmp + i, sizeof(tmp) - i);
}

static int xa__out_begin(struct xa__out *o, char *buf, size_t cap)
{
	o->buf = buf;
	o->cap = cap;
	o->len = 0;
	o->err = 0;
	if (buf == NULL || cap == 0)
		return SETTLE_ETOOBIG;
	buf[0] = '\0';
	return 0;
}

int xa_xid_format(const struct xa_xid *x, char *buf, size_t cap)
{
	struct xa__out o;
	int rv;

	if (xa_xid_validate(x) != 0)
		return SETTLE_EINVAL;
	rv = xa__out_begin(&o, buf, cap);
	if (rv != 0)
		return rv;
	xa__put_fid(&o, x->format_id);
	xa__put_str(&o, ":");
	xa__put_hex(&o, xa_xid_gtrid(x), x->gtrid_len);
	xa__put_str(&o, ":");
	xa__put_hex(&o, xa_xid_bqual(x), x->bqual_len);
	return o.err;
}

/*
 * Split s[0..n) at the two separators sep into three fields and decode them
 * as formatID, gtrid and bqual with the given part decoder.
 */
typedef int (*xa__part_fn)(const char *s, size_t n, uint8_t *dst, size_t *out);

static int xa__parse3(const char *s, size_t n, xa__part_fn part,
		      struct xa_xid *x)
{
	uint8_t g[XA_XID_PART_MAX], b[XA_XID_PART_MAX];
	size_t i1, i2, gl, bl;
	int64_t f;

	memset(x, 0, sizeof(*x));
	i1 = xa__find(s, n, ':');
	if (i1 == n)
		return SETTLE_EINVAL;
	i2 = i1 + 1 + xa__find(s + i1 + 1, n - i1 - 1, ':');
	if (i2 >= n)
		return SETTLE_EINVAL;
	if (xa__fid_get(s, i1, &f) != 0)
		return SETTLE_EINVAL;
	if (part(s + i1 + 1, i2 - i1 - 1, g, &gl) != 0)
		return SETTLE_EINVAL;
	if (part(s + i2 + 1, n - i2 - 1, b, &bl) != 0)
		return SETTLE_EINVAL;
	return xa_xid_init(x, f, g, gl, b, bl);
}

int xa_xid_parse(const char *s, struct xa_xid *x)
{
	if (s == NULL) {
		memset(x, 0, sizeof(*x));
		return SETTLE_EINVAL;
	}
	return xa__parse3(s, strlen(s), xa__hex_get, x);
}

/* base64url without padding of n bytes into o. */
static void xa__put_b64(struct xa__out *o, const uint8_t *p, size_t n)
{
	char tmp[88];
	size_t i, k = 0;

	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v =
		    (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		tmp[k++] = xa__b64[v >> 18];
		tmp[k++] = xa__b64[(v >> 12) & 63];
		tmp[k++] = xa__b64[(v >> 6) & 63];
		tmp[k++] = xa__b64[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)p[i] << 16;

		tmp[k++] = xa__b64[v >> 18];
		tmp[k++] = xa__b64[(v >> 12) & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;

		tmp[k++] = xa__b64[v >> 18];
		tmp[k++] = xa__b64[(v >> 12) & 63];
		tmp[k++] = xa__b64[(v >> 6) & 63];
	}
	xa__put(o, tmp, k);
}

static int xa__b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * Strict base64url decoding: no padding, and the unused low bits of the last
 * character must be zero, so each byte string has exactly one encoding.
 */
static int xa__b64_get(const char *s, size_t n, uint8_t *dst, size_t *out)
{
	size_t i, k = 0, rem = n % 4;
	uint32_t v = 0;
	int bits = 0;

	if (n == 0 || rem == 1 || n > 86)
		return SETTLE_EINVAL;
	for (i = 0; i < n; i++) {
		int c = xa__b64_val(s[i]);

		if (c < 0)
			return SETTLE_EINVAL;
		v = v << 6 | (uint32_t)c;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dst[k++] = (uint8_t)(v >> bits);
			v &= (1u << bits) - 1;
		}
	}
	if (v != 0)
		return SETTLE_EINVAL;
	if (k < 1 || k > XA_XID_PART_MAX)
		return SETTLE_EINVAL;
	*out = k;
	return 0;
}

int xa_xid_to_pg_gid(const struct xa_xid *x, char *buf, size_t cap)
{
	struct xa__out o;
	int rv;

	if (xa_xid_validate(x) != 0)
		return SETTLE_EINVAL;
	rv = xa__out_begin(&o, buf, cap);
	if (rv != 0)
		return rv;
	xa__put_str(&o, XA_XID_PG_PREFIX);
	xa__put_fid(&o, x->format_id);
	xa__put_str(&o, ":");
	xa__put_b64(&o, xa_xid_gtrid(x), x->gtrid_len);
	xa__put_str(&o, ":");
	xa__put_b64(&o, xa_xid_bqual(x), x->bqual_len);
	return o.err;
}

int xa_xid_from_pg_gid(const char *gid, struct xa_xid *x)
{
	size_t plen = strlen(XA_XID_PG_PREFIX), n;

	memset(x, 0, sizeof(*x));
	if (gid == NULL)
		return SETTLE_EINVAL;
	if (strncmp(gid, XA_XID_PG_PREFIX, plen) != 0)
		return SETTLE_ENOTFOUND;
	n = strlen(gid);
	if (n >= XA_XID_PG_MAX)
		return SETTLE_EINVAL;
	return xa__parse3(gid + plen, n - plen, xa__b64_get, x);
}

int xa_xid_to_mysql(const struct xa_xid *x, char *buf, size_t cap)
{
	struct xa__out o;
	int rv;

	if (xa_xid_validate(x) != 0)
		return SETTLE_EINVAL;
	rv = xa__out_begin(&o, buf, cap);
	if (rv != 0)
		return rv;
	xa__put_str(&o, "X'");
	xa__put_hex(&o, xa_xid_gtrid(x), x->gtrid_len);
	xa__put_str(&o, "',X'");
	xa__put_hex(&o, xa_xid_bqual(x), x->bqual_len);
	xa__put_str(&o, "',");
	xa__put_fid(&o, x->format_id);
	return o.err;
}

/* Read "X'<hex>'" at s[*pos..n) into dst; advances *pos. */
static int xa__my_part(const char *s, size_t n, size_t *pos, uint8_t *dst,
		       size_t *out)
{
	size_t p = *pos, end;

	if (n - p < 3 || (s[p] != 'X' && s[p] != 'x') || s[p + 1] != '\'')
		return SETTLE_EINVAL;
	p += 2;
	end = p + xa__find(s + p, n - p, '\'');
	if (end == n)
		return SETTLE_EINVAL;
	if (xa__hex_get(s + p, end - p, dst, out) != 0)
		return SETTLE_EINVAL;
	*pos = end + 1;
	return 0;
}

int xa_xid_from_mysql(const char *s, size_t len, struct xa_xid *x)
{
	uint8_t g[XA_XID_PART_MAX], b[XA_XID_PART_MAX];
	size_t pos = 0, gl, bl;
	int64_t f;

	memset(x, 0, sizeof(*x));
	if (s == NULL)
		return SETTLE_EINVAL;
	if (xa__my_part(s, len, &pos, g, &gl) != 0)
		return SETTLE_EINVAL;
	if (pos >= len || s[pos++] != ',')
		return SETTLE_EINVAL;
	if (xa__my_part(s, len, &pos, b, &bl) != 0)
		return SETTLE_EINVAL;
	if (pos >= len || s[pos++] != ',')
		return SETTLE_EINVAL;
	if (xa__fid_get(s + pos, len - pos, &f) != 0)
		return SETTLE_EINVAL;
	return xa_xid_init(x, f, g, gl, b, bl);
}

int xa_xid_from_mysql_row(const char *format_id, const char *gtrid_len,
			  const char *bqual_len, const void *data,
			  size_t data_len, struct xa_xid *x)
{
	int64_t f, g, b;
	const uint8_t *d = data;

	memset(x, 0, sizeof(*x));
	if (format_id == NULL || gtrid_len == NULL || bqual_len == NULL ||
	    data == NULL)
		return SETTLE_EINVAL;
	if (xa__fid_get(format_id, strlen(format_id), &f) != 0 ||
	    xa__fid_get(gtrid_len, strlen(gtrid_len), &g) != 0 ||
	    xa__fid_get(bqual_len, strlen(bqual_len), &b) != 0)
		return SETTLE_EINVAL;
	if (g < 1 || g > XA_XID_PART_MAX || b < 1 || b > XA_XID_PART_MAX ||
	    (size_t)(g + b) != data_len)
		return SETTLE_EINVAL;
	return xa_xid_init(x, f, d, (size_t)g, d + g, (size_t)b);
}

int xa_xid_from_xopen(const struct xa_xopen_xid *in, struct xa_xid *x)
{
	memset(x, 0, sizeof(*x));
	if (in == NULL)
		return SETTLE_EINVAL;
	if (in->gtrid_length < 1 || in->gtrid_length > XA_XID_PART_MAX ||
	    in->bqual_length < 1 || in->bqual_length > XA_XID_PART_MAX)
		return SETTLE_EINVAL;
	return xa_xid_init(x, in->formatID, in->data, (size_t)in->gtrid_length,
			   in->data + in->gtrid_length,
			   (size_t)in->bqual_length);
}

int xa_xid_to_xopen(const struct xa_xid *x, struct xa_xopen_xid *out)
{
	if (xa_xid_validate(x) != 0)
		return SETTLE_EINVAL;
	memset(out, 0, sizeof(*out));
	out->formatID = x->format_id;
	out->gtrid_length = x->gtrid_len;
	out->bqual_length = x->bqual_len;
	memcpy(out->data, x->data, (size_t)x->gtrid_len + x->bqual_len);
	return 0;
}

int xa_xid_gid(const struct xa_xid *x, char out[XA_XID_GID_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t wire[XA_XID_WIRE_MAX];
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;
	size_t len;
	int rv = xa_xid_encode(x, wire, sizeof wire, &len);

	if (rv != 0)
		return rv;
	if (EVP_Digest(wire, len, md, &md_len, EVP_sha256(), NULL) != 1 ||
	    md_len < 20)
		return SETTLE_EINTERNAL;
	memcpy(out, "xa-", 3);
	for (size_t i = 0; i < 20; i++) {
		out[3 + 2 * i] = hex[md[i] >> 4];
		out[4 + 2 * i] = hex[md[i] & 15];
	}
	out[XA_XID_GID_LEN] = '\0';
	return 0;
}

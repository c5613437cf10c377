/*
 * ctl_int.h — what settlectl's printers share (ctl_fmt.c, ctl_tx.c, ...):
 * aligned tables, one-line text and JSON documents. Not part of
 * ctl_fmt.h's contract.
 */
#ifndef SETTLE_CTL_INT_H
#define SETTLE_CTL_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#define CTL_TABLE_MAX_COLS 10

/* Cells are copied; a table is printed once and freed. */
struct table {
	size_t ncols;
	size_t nrows;
	size_t cap;
	char **cells; /* nrows * ncols */
	size_t width[CTL_TABLE_MAX_COLS];
};

/* An empty table of ncols (<= CTL_TABLE_MAX_COLS) columns. */
void ctl__table_init(struct table *t, size_t ncols);
/* Add one row of ncols strings (NULL prints as ""), copied; a row that
 * cannot be allocated is dropped whole. */
void ctl__table_row(struct table *t, const char *const *cols);
/* Print each row after indent, columns two spaces apart; the last column
 * is not padded. */
void ctl__table_print(FILE *f, struct table *t, const char *indent);
void ctl__table_free(struct table *t);

/* s (NULL: "") copied into buf with control characters as spaces, so a
 * peer's text cannot break the layout. Returns buf. */
const char *ctl__one_line(const char *s, char *buf, size_t len);

/*
 * JSON: every document settlectl prints is a jansson tree, printed by
 * ctl__json_print. A value that cannot be made (out of memory) leaves its
 * key out; nothing else is lost.
 */

/* s (NULL: "") as a JSON string. A peer's text need not be UTF-8, which
 * json_string() refuses: then a copy with every byte >= 0x80 as '?'. */
json_t *ctl__json_text(const char *s);
/* o[key] = s, v or b. jansson's integers are signed: a uint64 past
 * INT64_MAX would print negative. */
void ctl__set_str(json_t *o, const char *key, const char *s);
void ctl__set_uint(json_t *o, const char *key, uint64_t v);
void ctl__set_bool(json_t *o, const char *key, bool b);
/* Print doc compact, keys in the order they were set, and a newline;
 * takes doc's reference. */
void ctl__json_print(FILE *f, json_t *doc);

#endif /* SETTLE_CTL_INT_H */

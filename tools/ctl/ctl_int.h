/*
 * ctl_int.h — what settlectl's printers share (ctl_fmt.c, ctl_tx.c): aligned
 * tables and one-line text. Not part of ctl_fmt.h's contract.
 */
#ifndef SETTLE_CTL_INT_H
#define SETTLE_CTL_INT_H

#include <stddef.h>
#include <stdio.h>

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

#endif /* SETTLE_CTL_INT_H */

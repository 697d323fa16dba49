/*
 * A table of text cells: compare builds each table once and prints it for
 * a terminal or writes it into the JSON results, which the HTML report
 * shows as it is.  On no memory a table loses rows, never crashes.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include "compare/compare.h"
#include "report/jsonw.h"

#define TEXT_WIDTH 100   /* notes wrap here, as the text report does */

struct cmp_table *cmp_table_new(const char *title, size_t n_cols)
{
	struct cmp_table *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->col = calloc(n_cols, sizeof(*t->col));
	t->numeric = calloc(n_cols, 1);
	if (!t->col || !t->numeric) {
		free(t->col);
		free(t->numeric);
		free(t);
		return NULL;
	}
	t->n_cols = n_cols;
	snprintf(t->title, sizeof(t->title), "%s", title);
	return t;
}

void cmp_table_col(struct cmp_table *t, size_t c, const char *name, int numeric)
{
	if (!t || c >= t->n_cols)
		return;
	free((char *)t->col[c]);
	t->col[c] = strdup(name);
	t->numeric[c] = (unsigned char)numeric;
}

size_t cmp_table_row(struct cmp_table *t)
{
	if (!t)
		return (size_t)-1;
	char **n = realloc(t->cell, (t->n_rows + 1) * t->n_cols * sizeof(*n));
	if (!n)
		return (size_t)-1;
	t->cell = n;
	unsigned char *sp = realloc(t->span, t->n_rows + 1);
	if (!sp)
		return (size_t)-1;
	t->span = sp;
	sp[t->n_rows] = 0;
	memset(n + t->n_rows * t->n_cols, 0, t->n_cols * sizeof(*n));
	return t->n_rows++;
}

void cmp_table_set(struct cmp_table *t, size_t row, size_t col, const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	if (!t || row >= t->n_rows || col >= t->n_cols)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	char **c = &t->cell[row * t->n_cols + col];
	free(*c);
	*c = strdup(buf);
}

void cmp_table_free(struct cmp_table *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->n_cols; i++)
		free((char *)t->col[i]);
	for (size_t i = 0; i < t->n_rows * t->n_cols; i++)
		free(t->cell[i]);
	free(t->col);
	free(t->cell);
	free(t->span);
	free(t->numeric);
	free(t);
}

static const char *cell(const struct cmp_table *t, size_t row, size_t col)
{
	const char *s = t->cell[row * t->n_cols + col];
	return s ? s : "-";
}

void cmp_print_wrapped(FILE *f, const char *s)
{
	size_t col = 0;
	while (*s) {
		size_t w = strcspn(s, " ");
		if (col && col + 1 + w > TEXT_WIDTH) {
			fputc('\n', f);
			col = 0;
		} else if (col) {
			fputc(' ', f);
			col++;
		}
		fwrite(s, 1, w, f);
		col += w;
		s += w;
		while (*s == ' ')
			s++;
	}
	if (col)
		fputc('\n', f);
}

void cmp_table_print(const struct cmp_table *t, FILE *f)
{
	if (!t)
		return;
	size_t *w = calloc(t->n_cols, sizeof(*w));
	if (!w)
		return;
	for (size_t c = 0; c < t->n_cols; c++) {
		w[c] = t->col[c] ? strlen(t->col[c]) : 0;
		for (size_t r = 0; r < t->n_rows; r++)
			if (!(t->span[r] && c >= 1) && strlen(cell(t, r, c)) > w[c])
				w[c] = strlen(cell(t, r, c));
	}
	if (t->title[0])
		fprintf(f, "%s\n", t->title);
	for (size_t r = 0; r <= t->n_rows; r++) {
		if (r && t->span[r - 1]) {
			fprintf(f, "%-*s  %s\n", (int)w[0], cell(t, r - 1, 0), cell(t, r - 1, 1));
			continue;
		}
		for (size_t c = 0; c < t->n_cols; c++) {
			const char *s = r == 0 ? (t->col[c] ? t->col[c] : "") : cell(t, r - 1, c);
			int last = c + 1 == t->n_cols;
			if (t->numeric[c])
				fprintf(f, "%s%*s", c ? "  " : "", (int)w[c], s);
			else
				fprintf(f, "%s%-*s", c ? "  " : "", last ? 0 : (int)w[c], s);
		}
		fputc('\n', f);
	}
	if (t->note[0])
		cmp_print_wrapped(f, t->note);
	free(w);
}

void cmp_json_str(FILE *f, const char *s)
{
	fputc('"', f);
	mt_jw_escape(f, s, strlen(s), MT_JW_HTML_SAFE);   /* the results may sit in an HTML page */
	fputc('"', f);
}

void cmp_table_json(const struct cmp_table *t, FILE *f)
{
	fputs("{\"title\":", f);
	cmp_json_str(f, t->title);
	fputs(",\"note\":", f);
	cmp_json_str(f, t->note);
	fputs(",\"columns\":[", f);
	for (size_t c = 0; c < t->n_cols; c++) {
		fputs(c ? "," : "", f);
		cmp_json_str(f, t->col[c] ? t->col[c] : "");
	}
	fputs("],\"rows\":[", f);
	for (size_t r = 0; r < t->n_rows; r++) {
		fputs(r ? ",[" : "[", f);
		for (size_t c = 0; c < t->n_cols; c++) {
			fputs(c ? "," : "", f);
			cmp_json_str(f, cell(t, r, c));
		}
		fputc(']', f);
	}
	fputs("]}", f);
}

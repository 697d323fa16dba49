/*
 * Streaming JSON writer (jsonw.h).  Output errors are not checked per
 * call: stdio keeps the stream's error flag, and mt_jw_finish() reads it
 * once, like jemalloc's emitter does with its sticky flag.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include "report/jsonw.h"

void mt_jw_init(struct mt_jw *w, FILE *f, int flags)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->flags = flags;
}

/*
 * Length of the valid UTF-8 sequence at s[0..len), or 0 when s[0] does
 * not start one (stray continuation, overlong form, surrogate, beyond
 * U+10FFFF, cut short).
 */
static size_t utf8_len(const unsigned char *s, size_t len)
{
	unsigned char b = s[0], lo = 0x80, hi = 0xbf;
	size_t n;
	if (b < 0x80)
		return 1;
	if (b >= 0xc2 && b <= 0xdf)
		n = 2;
	else if (b >= 0xe0 && b <= 0xef)
		n = 3;
	else if (b >= 0xf0 && b <= 0xf4)
		n = 4;
	else
		return 0;
	/* the second byte's range rules out overlong forms, surrogates and > U+10FFFF */
	if (b == 0xe0)
		lo = 0xa0;
	else if (b == 0xed)
		hi = 0x9f;
	else if (b == 0xf0)
		lo = 0x90;
	else if (b == 0xf4)
		hi = 0x8f;
	if (len < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (s[i] < 0x80 || s[i] > 0xbf)
			return 0;
	return n;
}

/* The escape for byte c (ASCII), or NULL when it is written as it is. */
static const char *ascii_escape(unsigned char c, int flags, char buf[8])
{
	switch (c) {
	case '"':  return "\\\"";
	case '\\': return "\\\\";
	case '\n': return "\\n";
	case '\r': return "\\r";
	case '\t': return "\\t";
	case '\b': return "\\b";
	case '\f': return "\\f";
	}
	if (c < 0x20 || ((flags & MT_JW_HTML_SAFE) && (c == '<' || c == '>' || c == '&'))) {
		snprintf(buf, 8, "\\u%04x", c);
		return buf;
	}
	return NULL;
}

void mt_jw_escape(FILE *f, const char *str, size_t len, int flags)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t run = 0, i = 0;   /* s[i - run .. i) is waiting to be written as it is */
	char buf[8];
	while (i < len) {
		const char *esc = NULL;
		size_t n = 1;
		if (s[i] < 0x80) {
			esc = ascii_escape(s[i], flags, buf);
		} else if (!(n = utf8_len(s + i, len - i))) {
			esc = "\\ufffd";
			n = 1;
		} else if ((flags & MT_JW_HTML_SAFE) && n == 3 && s[i] == 0xe2 && s[i + 1] == 0x80 &&
		           (s[i + 2] == 0xa8 || s[i + 2] == 0xa9)) {
			esc = s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";  /* line breaks to old JavaScript */
		}
		if (!esc) {
			run += n;
			i += n;
			continue;
		}
		fwrite(s + i - run, 1, run, f);
		fputs(esc, f);
		run = 0;
		i += n;
	}
	fwrite(s + i - run, 1, run, f);
}

/* Separator, indentation and key before a member; 0 to go on, -1 on misuse. */
static int member(struct mt_jw *w, const char *key)
{
	if (w->err || w->depth < 0 || w->depth > MT_JW_DEPTH_MAX)
		return -1;
	int in_obj = w->depth > 0 && w->is_obj[w->depth];
	if ((key != NULL) != in_obj || (w->depth == 0 && w->has_items[0])) {
		w->err = -EINVAL;
		return -1;
	}
	if (w->has_items[w->depth])
		fputc(',', w->f);
	w->has_items[w->depth] = 1;
	if (w->depth > 0) {   /* a one-line container separates with ", ", others with a newline */
		if (w->line_depth && w->line_depth <= w->depth)
			fputc(' ', w->f);
		else
			fprintf(w->f, "\n%*s", 2 * w->depth, "");
	}
	if (key) {
		fputc('"', w->f);
		mt_jw_escape(w->f, key, strlen(key), w->flags);
		fputs("\": ", w->f);
	}
	return 0;
}

static void open_container(struct mt_jw *w, const char *key, int line, int is_obj)
{
	if (member(w, key))
		return;
	if (w->depth >= MT_JW_DEPTH_MAX) {
		w->err = -EINVAL;
		return;
	}
	fputc(is_obj ? '{' : '[', w->f);
	w->depth++;
	w->is_obj[w->depth] = (unsigned char)is_obj;
	w->has_items[w->depth] = 0;
	if (line && !w->line_depth)
		w->line_depth = w->depth;
}

void mt_jw_obj(struct mt_jw *w, const char *key, int line)
{
	open_container(w, key, line, 1);
}

void mt_jw_arr(struct mt_jw *w, const char *key, int line)
{
	open_container(w, key, line, 0);
}

void mt_jw_end(struct mt_jw *w)
{
	if (w->err)
		return;
	if (w->depth == 0) {
		w->err = -EINVAL;
		return;
	}
	int inline_here = w->line_depth && w->line_depth <= w->depth;
	if (w->has_items[w->depth])
		fprintf(w->f, inline_here ? " " : "\n%*s", 2 * (w->depth - 1), "");
	fputc(w->is_obj[w->depth] ? '}' : ']', w->f);
	if (w->line_depth == w->depth)
		w->line_depth = 0;
	w->depth--;
}

void mt_jw_strn(struct mt_jw *w, const char *key, const char *s, size_t len)
{
	if (member(w, key))
		return;
	fputc('"', w->f);
	mt_jw_escape(w->f, s, len, w->flags);
	fputc('"', w->f);
}

void mt_jw_str(struct mt_jw *w, const char *key, const char *s)
{
	if (!s)
		mt_jw_null(w, key);
	else
		mt_jw_strn(w, key, s, strlen(s));
}

void mt_jw_u64(struct mt_jw *w, const char *key, uint64_t v)
{
	if (!member(w, key))
		fprintf(w->f, "%" PRIu64, v);
}

void mt_jw_i64(struct mt_jw *w, const char *key, int64_t v)
{
	if (!member(w, key))
		fprintf(w->f, "%" PRId64, v);
}

/*
 * %.15g round-trips what the analysis computes closely enough and never
 * prints 0.1 as 0.10000000000000001.  The C locale is assumed: memtriage
 * never calls setlocale(), so the decimal point is '.'.
 */
void mt_jw_dbl(struct mt_jw *w, const char *key, double v)
{
	if (!isfinite(v)) {
		mt_jw_null(w, key);
		return;
	}
	if (!member(w, key))
		fprintf(w->f, "%.15g", v);
}

void mt_jw_bool(struct mt_jw *w, const char *key, int v)
{
	if (!member(w, key))
		fputs(v ? "true" : "false", w->f);
}

void mt_jw_null(struct mt_jw *w, const char *key)
{
	if (!member(w, key))
		fputs("null", w->f);
}

int mt_jw_finish(struct mt_jw *w)
{
	if (!w->err && (w->depth || !w->has_items[0]))
		w->err = -EINVAL;
	fputc('\n', w->f);
	if ((fflush(w->f) || ferror(w->f)) && !w->err)
		w->err = errno ? -errno : -EIO;
	return w->err;
}

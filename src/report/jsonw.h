/*
 * A small streaming JSON writer for reporters (json.c, and the HTML
 * report that embeds the same document).  It writes as it goes, keeps no
 * tree, and always produces valid JSON text from any input:
 *  - strings are escaped (quote, backslash, control characters), and
 *    bytes that are not valid UTF-8 become U+FFFD, one per bad byte;
 *  - a double that is NaN or infinite is written as null;
 *  - a NULL string is written as null.
 *
 * Layout: each member of an object or array goes on its own line,
 * indented by depth, except inside a container opened with `line` set:
 * that container and everything in it stay on one line (a table row:
 * a stack, a frame, a timeline point), which keeps big documents small
 * and still readable with grep.
 *
 * Usage:
 *     struct mt_jw w;
 *     mt_jw_init(&w, out, 0);
 *     mt_jw_obj(&w, NULL, 0);          // the document
 *     mt_jw_u64(&w, "version", 1);
 *     mt_jw_arr(&w, "list", 1);        // one line: "list": [1, 2]
 *     mt_jw_u64(&w, NULL, 1); mt_jw_u64(&w, NULL, 2);
 *     mt_jw_end(&w);
 *     mt_jw_end(&w);
 *     rc = mt_jw_finish(&w);           // 0 or -errno
 *
 * Keys are given inside objects and must be NULL inside arrays and at
 * the top; a misuse (key where none belongs, unbalanced end, nesting
 * beyond MT_JW_DEPTH_MAX) sets the sticky error -EINVAL and further calls
 * write nothing.  Keys are escaped like strings; callers pass literals.
 *
 * Not thread-safe; one struct per document.  Allocates nothing.
 */
#ifndef MT_REPORT_JSONW_H
#define MT_REPORT_JSONW_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define MT_JW_DEPTH_MAX 32      /* nesting of objects and arrays */

/* Flags of mt_jw_init. */
#define MT_JW_HTML_SAFE 1       /* also escape <, >, & and U+2028/U+2029, so the text can sit
                                   inside an HTML <script> element and be read as JavaScript */

struct mt_jw {
	FILE *f;
	int flags;
	int err;                            /* sticky: 0 or a negative errno-style code */
	int depth;                          /* open containers */
	int line_depth;                     /* depth of the outermost one-line container; 0: none */
	unsigned char is_obj[MT_JW_DEPTH_MAX + 1];
	unsigned char has_items[MT_JW_DEPTH_MAX + 1];  /* a member was written already */
};

/* Starts a document on f (borrowed); flags: 0 or MT_JW_HTML_SAFE. */
void mt_jw_init(struct mt_jw *w, FILE *f, int flags);

/* Opens an object / array as member `key` (NULL in an array or at the top);
   line: 1 to keep it on one line. */
void mt_jw_obj(struct mt_jw *w, const char *key, int line);
void mt_jw_arr(struct mt_jw *w, const char *key, int line);
/* Closes the innermost open object or array. */
void mt_jw_end(struct mt_jw *w);

/* Members.  str: NULL -> null.  dbl: NaN or infinite -> null. */
void mt_jw_str(struct mt_jw *w, const char *key, const char *s);
/* The first len bytes of s (which may hold NUL bytes: escaped as \u0000). */
void mt_jw_strn(struct mt_jw *w, const char *key, const char *s, size_t len);
void mt_jw_u64(struct mt_jw *w, const char *key, uint64_t v);
void mt_jw_i64(struct mt_jw *w, const char *key, int64_t v);
void mt_jw_dbl(struct mt_jw *w, const char *key, double v);
void mt_jw_bool(struct mt_jw *w, const char *key, int v);
void mt_jw_null(struct mt_jw *w, const char *key);

/*
 * Writes s[0..len) to f as the body of a JSON string (no quotes),
 * escaped as above; flags as mt_jw_init's.  For callers that build
 * strings themselves (an HTML attribute, a JavaScript literal).
 */
void mt_jw_escape(FILE *f, const char *s, size_t len, int flags);

/*
 * Ends the document: a newline, a flush; returns 0, the sticky error, or
 * -EIO/-errno when the stream failed.  Containers still open are an
 * error (-EINVAL).
 */
int mt_jw_finish(struct mt_jw *w);

#endif

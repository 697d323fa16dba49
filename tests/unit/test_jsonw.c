/*
 * JSON writer tests (src/report/jsonw.c): exact output for escaping
 * (quotes, control characters, invalid UTF-8 -> U+FFFD, HTML-safe mode),
 * numbers (NaN and infinities -> null, 64-bit extremes), layout (one-line
 * containers) and misuse (a sticky -EINVAL, never broken output).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE  /* open_memstream; the build defines it too */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/jsonw.h"

/* Output captured in memory. */
struct cap {
	FILE *f;
	char *buf;
	size_t len;
};

static void cap_open(struct cap *c)
{
	c->buf = NULL;
	c->len = 0;
	c->f = open_memstream(&c->buf, &c->len);
	assert_non_null(c->f);
}

/* Closes the stream; the text stays in c->buf (freed by the caller). */
static const char *cap_close(struct cap *c)
{
	fclose(c->f);
	return c->buf;
}

/* s[0..len) escaped as a string body with flags. */
static char *escaped(const char *s, size_t len, int flags)
{
	struct cap c;
	cap_open(&c);
	mt_jw_escape(c.f, s, len, flags);
	cap_close(&c);
	return c.buf;
}

static void expect_escape(const char *in, size_t len, int flags, const char *want)
{
	char *got = escaped(in, len, flags);
	assert_string_equal(got, want);
	free(got);
}

static void test_escape_ascii(void **state)
{
	(void)state;
	expect_escape("plain text", 10, 0, "plain text");
	expect_escape("a\"b\\c", 5, 0, "a\\\"b\\\\c");
	expect_escape("\n\r\t\b\f", 5, 0, "\\n\\r\\t\\b\\f");
	expect_escape("\x01\x1f\x7f", 3, 0, "\\u0001\\u001f\x7f");   /* DEL is legal JSON */
	expect_escape("a\0b", 3, 0, "a\\u0000b");                     /* embedded NUL */
	expect_escape("</script>&", 10, 0, "</script>&");
	expect_escape("</script>&", 10, MT_JW_HTML_SAFE, "\\u003c/script\\u003e\\u0026");
}

static void test_escape_utf8(void **state)
{
	(void)state;
	/* valid: 2, 3 and 4 bytes, kept as they are */
	expect_escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, 0, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	/* stray continuation, bad lead bytes, a lead cut short by ASCII or by the end */
	expect_escape("a\x80z", 3, 0, "a\\ufffdz");
	expect_escape("\xff\xfe\xc0\xc1\xf5", 5, 0, "\\ufffd\\ufffd\\ufffd\\ufffd\\ufffd");
	expect_escape("\xc3(", 2, 0, "\\ufffd(");
	expect_escape("\xe2\x82", 2, 0, "\\ufffd\\ufffd");
	/* overlong forms, a surrogate, beyond U+10FFFF */
	expect_escape("\xe0\x80\xaf", 3, 0, "\\ufffd\\ufffd\\ufffd");
	expect_escape("\xed\xa0\x80", 3, 0, "\\ufffd\\ufffd\\ufffd");
	expect_escape("\xf4\x90\x80\x80", 4, 0, "\\ufffd\\ufffd\\ufffd\\ufffd");
	/* the largest valid ones */
	expect_escape("\xed\x9f\xbf\xf4\x8f\xbf\xbf", 7, 0, "\xed\x9f\xbf\xf4\x8f\xbf\xbf");
	/* U+2028 and U+2029 end a line in old JavaScript: escaped only when HTML-safe */
	expect_escape("\xe2\x80\xa8\xe2\x80\xa9", 6, 0, "\xe2\x80\xa8\xe2\x80\xa9");
	expect_escape("\xe2\x80\xa8\xe2\x80\xa9", 6, MT_JW_HTML_SAFE, "\\u2028\\u2029");
}

static void test_document(void **state)
{
	struct mt_jw w;
	struct cap c;
	(void)state;
	cap_open(&c);
	mt_jw_init(&w, c.f, 0);
	mt_jw_obj(&w, NULL, 0);
	mt_jw_str(&w, "s", "x\"y");
	mt_jw_str(&w, "null_str", NULL);
	mt_jw_u64(&w, "u", UINT64_MAX);
	mt_jw_i64(&w, "i", INT64_MIN);
	mt_jw_dbl(&w, "d", 0.1);
	mt_jw_dbl(&w, "nan", NAN);
	mt_jw_dbl(&w, "inf", -INFINITY);
	mt_jw_bool(&w, "t", 1);
	mt_jw_arr(&w, "row", 1);
	mt_jw_u64(&w, NULL, 1);
	mt_jw_obj(&w, NULL, 0);     /* inside a one-line array: stays on the line */
	mt_jw_null(&w, "n");
	mt_jw_end(&w);
	mt_jw_end(&w);
	mt_jw_arr(&w, "empty", 0);
	mt_jw_end(&w);
	mt_jw_end(&w);
	assert_int_equal(mt_jw_finish(&w), 0);
	cap_close(&c);
	assert_string_equal(c.buf,
		"{\n"
		"  \"s\": \"x\\\"y\",\n"
		"  \"null_str\": null,\n"
		"  \"u\": 18446744073709551615,\n"
		"  \"i\": -9223372036854775808,\n"
		"  \"d\": 0.1,\n"
		"  \"nan\": null,\n"
		"  \"inf\": null,\n"
		"  \"t\": true,\n"
		"  \"row\": [ 1, { \"n\": null } ],\n"
		"  \"empty\": []\n"
		"}\n");
	free(c.buf);
}

/* Each misuse sets -EINVAL; what was written up to it stays, nothing after. */
static void expect_misuse(void (*misuse)(struct mt_jw *))
{
	struct mt_jw w;
	struct cap c;
	cap_open(&c);
	mt_jw_init(&w, c.f, 0);
	misuse(&w);
	mt_jw_u64(&w, "after", 1);
	assert_int_equal(mt_jw_finish(&w), -EINVAL);
	cap_close(&c);
	assert_null(strstr(c.buf, "after"));
	free(c.buf);
}

static void key_in_array(struct mt_jw *w)
{
	mt_jw_arr(w, NULL, 0);
	mt_jw_u64(w, "k", 1);
}

static void no_key_in_object(struct mt_jw *w)
{
	mt_jw_obj(w, NULL, 0);
	mt_jw_u64(w, NULL, 1);
}

static void end_too_often(struct mt_jw *w)
{
	mt_jw_obj(w, NULL, 0);
	mt_jw_end(w);
	mt_jw_end(w);
}

static void too_deep(struct mt_jw *w)
{
	mt_jw_arr(w, NULL, 0);
	for (int i = 0; i < MT_JW_DEPTH_MAX + 2; i++)
		mt_jw_arr(w, NULL, 0);
}

static void two_documents(struct mt_jw *w)
{
	mt_jw_u64(w, NULL, 1);
	mt_jw_u64(w, NULL, 2);
}

static void test_misuse(void **state)
{
	(void)state;
	expect_misuse(key_in_array);
	expect_misuse(no_key_in_object);
	expect_misuse(end_too_often);
	expect_misuse(too_deep);
	expect_misuse(two_documents);

	struct mt_jw w;   /* a container left open */
	struct cap c;
	cap_open(&c);
	mt_jw_init(&w, c.f, 0);
	mt_jw_obj(&w, NULL, 0);
	assert_int_equal(mt_jw_finish(&w), -EINVAL);
	free((char *)cap_close(&c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape_ascii),
		cmocka_unit_test(test_escape_utf8),
		cmocka_unit_test(test_document),
		cmocka_unit_test(test_misuse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

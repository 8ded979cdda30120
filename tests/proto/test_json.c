/*  Unit tests of pp_json: msgpack object -> JSON text. */
#include "pp_json.h"
#include "test_util.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static tpack_t tp;
static pp_json_buf_t out;
static msgpack_zone zone;

static int setup(void **state)
{
    (void)state;
    tp_begin(&tp);
    pp_json_buf_init(&out);
    return msgpack_zone_init(&zone, 4096) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    tp_end(&tp);
    pp_json_buf_release(&out);
    msgpack_zone_destroy(&zone);
    return 0;
}

static void reset(void)
{
    msgpack_sbuffer_clear(&tp.sb);
}

/*  Converts what was packed, with the given limits. */
static pp_json_status_t convert_lim(size_t max_depth, size_t max_bytes)
{
    msgpack_object obj;
    size_t off = 0;
    msgpack_zone_clear(&zone);
    assert_int_equal(msgpack_unpack(tp.sb.data, tp.sb.size, &off, &zone, &obj),
                     MSGPACK_UNPACK_SUCCESS);
    out.len = 0;
    const char *detail = NULL;
    pp_json_status_t st = pp_json_append(&out, &obj, max_depth, max_bytes, &detail);
    assert_non_null(detail);
    assert_int_equal(pp_json_buf_terminate(&out), 0);
    return st;
}

static void expect_json(const char *want)
{
    pp_json_status_t st = convert_lim(16, 1 << 20);
    if (st != PP_JSON_OK) print_error("status %s\n", pp_json_status_name(st));
    assert_int_equal(st, PP_JSON_OK);
    assert_string_equal(out.data, want);
    assert_int_equal(out.len, strlen(want));
}

static void test_escaping(void **state)
{
    (void)state;
    reset();
    tp_strn(&tp, "q\"b\\s/\b\f\n\r\t\x01\x1f\x7f", 14);
    expect_json("\"q\\\"b\\\\s/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\"");
    reset();
    tp_strn(&tp, "nul\0byte", 8);
    expect_json("\"nul\\u0000byte\"");
    reset();
    tp_str(&tp, "");
    expect_json("\"\"");
    /* keys are escaped the same way */
    reset();
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "k\"\n");
    tp_str(&tp, "v");
    expect_json("{\"k\\\"\\n\":\"v\"}");
}

static void test_unicode_passthrough(void **state)
{
    (void)state;
    const char *s = "h\xc3\xa9llo \xe7\x94\xa8\xe6\x88\xb7 \xf0\x9f\x98\x80 \xef\xbf\xbf "
                    "\xf4\x8f\xbf\xbf \xe2\x80\xa8";
    reset();
    tp_str(&tp, s);
    char want[128];
    snprintf(want, sizeof want, "\"%s\"", s);
    expect_json(want);
    assert_true(pp_utf8_valid(s, strlen(s)));
}

static void test_bad_utf8(void **state)
{
    (void)state;
    const char *bad[] = {"\xc3\x28",
                         "\xc0\x80",
                         "\xc1\xbf",
                         "\xe0\x9f\xbf",
                         "\xed\xbf\xbf",
                         "\xf0\x8f\xbf\xbf",
                         "\xf4\x90\x80\x80",
                         "\xf5\x80\x80\x80",
                         "\xe2\x82",
                         "\x80",
                         "\xfe",
                         "a\xf0\x9f\x98"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_false(pp_utf8_valid(bad[i], strlen(bad[i])));
        reset();
        tp_str(&tp, bad[i]);
        assert_int_equal(convert_lim(16, 1 << 20), PP_JSON_BAD_UTF8);
    }
    assert_true(pp_utf8_valid("", 0));
    assert_true(pp_utf8_valid("a\0b", 3));
}

static void test_integers(void **state)
{
    (void)state;
    reset();
    msgpack_pack_array(&tp.pk, 8);
    msgpack_pack_uint64(&tp.pk, UINT64_MAX);
    msgpack_pack_int64(&tp.pk, INT64_MAX);
    msgpack_pack_int64(&tp.pk, INT64_MIN);
    msgpack_pack_int(&tp.pk, -1);
    msgpack_pack_int(&tp.pk, 0);
    msgpack_pack_int(&tp.pk, -32);
    msgpack_pack_uint64(&tp.pk, 9007199254740993ull); /* 2^53 + 1, kept exact */
    msgpack_pack_int(&tp.pk, 127);
    expect_json("[18446744073709551615,9223372036854775807,-9223372036854775808,-1,0,-32,"
                "9007199254740993,127]");
    char buf[24];
    assert_int_equal(pp_json_i64(buf, INT64_MIN), 20);
    assert_memory_equal(buf, "-9223372036854775808", 20);
    assert_int_equal(pp_json_u64(buf, 0), 1);
    assert_memory_equal(buf, "0", 1);
}

static void test_floats(void **state)
{
    (void)state;
    reset();
    msgpack_pack_array(&tp.pk, 10);
    msgpack_pack_double(&tp.pk, 1.0);
    msgpack_pack_double(&tp.pk, 0.1);
    msgpack_pack_double(&tp.pk, -2.5);
    msgpack_pack_double(&tp.pk, 1e300);
    msgpack_pack_double(&tp.pk, -0.0);
    msgpack_pack_double(&tp.pk, 1e16);
    msgpack_pack_double(&tp.pk, 5e-324);
    msgpack_pack_double(&tp.pk, 1.0 / 3.0);
    msgpack_pack_float(&tp.pk, 0.1f);
    msgpack_pack_float(&tp.pk, 3.0f);
    expect_json("[1.0,0.1,-2.5,1e+300,-0.0,1e+16,4.94065645841247e-324,"
                "0.3333333333333333,0.1,3.0]");
}

static void test_float_round_trip(void **state)
{
    (void)state;
    /* doubles from random bit patterns read back to the same value */
    uint64_t x = 88172645463325252ull;
    int checked = 0;
    for (int i = 0; i < 20000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        double d;
        memcpy(&d, &x, sizeof d);
        if (!isfinite(d)) continue;
        reset();
        msgpack_pack_double(&tp.pk, d);
        assert_int_equal(convert_lim(1, 64), PP_JSON_OK);
        assert_true(strtod(out.data, NULL) == d);
        assert_true(strchr(out.data, '.') || strchr(out.data, 'e'));
        checked++;
    }
    assert_true(checked > 10000);
}

static void test_nonfinite(void **state)
{
    (void)state;
    double v[] = {NAN, -NAN, INFINITY, -INFINITY};
    for (int i = 0; i < 4; i++) {
        reset();
        msgpack_pack_double(&tp.pk, v[i]);
        assert_int_equal(convert_lim(16, 1 << 20), PP_JSON_BAD_NUMBER);
        reset();
        msgpack_pack_float(&tp.pk, (float)v[i]);
        assert_int_equal(convert_lim(16, 1 << 20), PP_JSON_BAD_NUMBER);
    }
}

static void test_scalars_and_containers(void **state)
{
    (void)state;
    reset();
    msgpack_pack_map(&tp.pk, 5);
    tp_str(&tp, "n");
    msgpack_pack_nil(&tp.pk);
    tp_str(&tp, "t");
    msgpack_pack_true(&tp.pk);
    tp_str(&tp, "f");
    msgpack_pack_false(&tp.pk);
    tp_str(&tp, "a");
    msgpack_pack_array(&tp.pk, 0);
    tp_str(&tp, "m");
    msgpack_pack_map(&tp.pk, 1);
    tp_str(&tp, "x");
    msgpack_pack_array(&tp.pk, 2);
    msgpack_pack_map(&tp.pk, 0);
    msgpack_pack_int(&tp.pk, 1);
    expect_json("{\"n\":null,\"t\":true,\"f\":false,\"a\":[],\"m\":{\"x\":[{},1]}}");
}

static void test_refused(void **state)
{
    (void)state;
    reset();
    tp_bin(&tp, "x", 1);
    assert_int_equal(convert_lim(16, 1 << 20), PP_JSON_BAD_VALUE);
    reset();
    msgpack_pack_ext_with_body(&tp.pk, "x", 1, 3);
    assert_int_equal(convert_lim(16, 1 << 20), PP_JSON_BAD_VALUE);
    reset();
    msgpack_pack_map(&tp.pk, 1);
    msgpack_pack_int(&tp.pk, 1);
    msgpack_pack_int(&tp.pk, 1);
    assert_int_equal(convert_lim(16, 1 << 20), PP_JSON_BAD_KEY);
    reset();
    msgpack_pack_map(&tp.pk, 1);
    tp_bin(&tp, "k", 1);
    msgpack_pack_int(&tp.pk, 1);
    assert_int_equal(convert_lim(16, 1 << 20), PP_JSON_BAD_KEY);
    reset();
    msgpack_pack_map(&tp.pk, 1);
    tp_strn(&tp, "a\0b", 3);
    msgpack_pack_int(&tp.pk, 1);
    assert_int_equal(convert_lim(16, 1 << 20), PP_JSON_BAD_KEY);
}

static void test_depth(void **state)
{
    (void)state;
    reset();
    for (int i = 0; i < 5; i++)
        msgpack_pack_array(&tp.pk, 1);
    msgpack_pack_int(&tp.pk, 1);
    assert_int_equal(convert_lim(5, 1 << 20), PP_JSON_OK);
    assert_string_equal(out.data, "[[[[[1]]]]]");
    assert_int_equal(convert_lim(4, 1 << 20), PP_JSON_TOO_DEEP);
    assert_int_equal(convert_lim(0, 1 << 20), PP_JSON_TOO_DEEP);
    /* scalars have no depth */
    reset();
    msgpack_pack_int(&tp.pk, 1);
    assert_int_equal(convert_lim(0, 1 << 20), PP_JSON_OK);
}

static void test_max_bytes(void **state)
{
    (void)state;
    reset();
    msgpack_pack_array(&tp.pk, 2);
    tp_str(&tp, "abc");
    msgpack_pack_int(&tp.pk, 12345); /* ["abc",12345] = 13 bytes */
    assert_int_equal(convert_lim(16, 13), PP_JSON_OK);
    assert_int_equal(out.len, 13);
    for (size_t lim = 0; lim < 13; lim++)
        assert_int_equal(convert_lim(16, lim), PP_JSON_TOO_LARGE);
    /* escapes count: "\u0001" is 6 bytes for 1 */
    reset();
    tp_strn(&tp, "\x01\x01", 2);
    assert_int_equal(convert_lim(16, 14), PP_JSON_OK);
    assert_int_equal(convert_lim(16, 13), PP_JSON_TOO_LARGE);
}

/*  Random msgpack trees: whatever pp_json accepts, jansson must parse, and strings, ints
    and nesting must survive. */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next_rand(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}

static void pack_random(int depth)
{
    int kind = (int)(next_rand() % (depth < 4 ? 9 : 6));
    char s[12];
    size_t n;
    switch (kind) {
    case 0:
        msgpack_pack_nil(&tp.pk);
        break;
    case 1:
        (next_rand() & 1) ? msgpack_pack_true(&tp.pk) : msgpack_pack_false(&tp.pk);
        break;
    case 2:
        msgpack_pack_int64(&tp.pk, (int64_t)next_rand());
        break;
    case 3:
        msgpack_pack_double(&tp.pk, (double)(int64_t)next_rand() / 1e6);
        break;
    case 4:
    case 5:
        n = next_rand() % sizeof s;
        for (size_t i = 0; i < n; i++)
            s[i] = (char)(next_rand() % 128); /* ASCII incl. controls, quotes, NUL */
        tp_strn(&tp, s, n);
        break;
    case 6:
    case 7:
        n = next_rand() % 4;
        msgpack_pack_array(&tp.pk, n);
        for (size_t i = 0; i < n; i++)
            pack_random(depth + 1);
        break;
    default:
        n = next_rand() % 4;
        msgpack_pack_map(&tp.pk, n);
        for (size_t i = 0; i < n; i++) {
            snprintf(s, sizeof s, "k%zu", i);
            tp_str(&tp, s);
            pack_random(depth + 1);
        }
    }
}

static void test_random_trees_parse(void **state)
{
    (void)state;
    for (int i = 0; i < 3000; i++) {
        reset();
        pack_random(0);
        assert_int_equal(convert_lim(16, 1 << 20), PP_JSON_OK);
        json_error_t err;
        json_t *j = json_loadb(out.data, out.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
        if (!j) print_error("jansson: %s in %s\n", err.text, out.data);
        assert_non_null(j);
        json_decref(j);
    }
}

static void test_append_string(void **state)
{
    (void)state;
    out.len = 0;
    assert_int_equal(pp_json_append_string(&out, "a\"b", 3), PP_JSON_OK);
    assert_int_equal(pp_json_append_string(&out, "\xff", 1), PP_JSON_BAD_UTF8);
    assert_int_equal(pp_json_buf_terminate(&out), 0);
    assert_string_equal(out.data, "\"a\\\"b\"");
    assert_string_equal(pp_json_status_name(PP_JSON_BAD_UTF8), "bad_utf8");
    assert_string_equal(pp_json_status_name(PP_JSON_TOO_DEEP), "too_deep");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escaping),      cmocka_unit_test(test_unicode_passthrough),
        cmocka_unit_test(test_bad_utf8),      cmocka_unit_test(test_integers),
        cmocka_unit_test(test_floats),        cmocka_unit_test(test_float_round_trip),
        cmocka_unit_test(test_nonfinite),     cmocka_unit_test(test_scalars_and_containers),
        cmocka_unit_test(test_refused),       cmocka_unit_test(test_depth),
        cmocka_unit_test(test_max_bytes),     cmocka_unit_test(test_random_trees_parse),
        cmocka_unit_test(test_append_string),
    };
    return cmocka_run_group_tests_name("proto_json", tests, setup, teardown);
}

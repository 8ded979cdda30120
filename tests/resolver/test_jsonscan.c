/*  Unit tests of pp_jsonscan: what strict JSON text is accepted and refused (RFC 8259, with
    jansson's limits on surrogates and depth), the types and spans of values, the member
    walk and key comparison through escapes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "pp_jsonscan.h"

static pp_str_t S(const char *s)
{
    return (pp_str_t){s, strlen(s)};
}

static void test_accepts(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        pp_jsonscan_type_t type;
    } ok[] = {
        {"{}", PP_JSONSCAN_OBJECT},
        {" \t\r\n{ } \n", PP_JSONSCAN_OBJECT},
        {"[]", PP_JSONSCAN_ARRAY},
        {"[1,[2,{\"a\":[]}],\"x\"]", PP_JSONSCAN_ARRAY},
        {"\"\"", PP_JSONSCAN_STRING},
        {"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0000 \\u00e9 \\ud83d\\ude00\"",
         PP_JSONSCAN_STRING},
        {"\"caf\xc3\xa9 \xe7\x94\xa8 \xf0\x9f\x98\x80\"", PP_JSONSCAN_STRING},
        {"0", PP_JSONSCAN_INTEGER},
        {"-0", PP_JSONSCAN_INTEGER},
        {"18446744073709551615", PP_JSONSCAN_INTEGER},
        {"-9223372036854775808", PP_JSONSCAN_INTEGER},
        {"123456789012345678901234567890", PP_JSONSCAN_INTEGER},
        {"0.5", PP_JSONSCAN_REAL},
        {"1e5", PP_JSONSCAN_REAL},
        {"-1.25E-3", PP_JSONSCAN_REAL},
        {"1e+2", PP_JSONSCAN_REAL},
        {"true", PP_JSONSCAN_TRUE},
        {"false", PP_JSONSCAN_FALSE},
        {"null", PP_JSONSCAN_NULL},
        {"{\"a\":1,\"a\":2}", PP_JSONSCAN_OBJECT}, /* duplicates are JSON */
        {"{\"k\\u0000\":\"v\"}", PP_JSONSCAN_OBJECT},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        pp_jsonscan_value_t v;
        if (pp_jsonscan_check(S(ok[i].text), &v) != 0) fail_msg("refused: %s", ok[i].text);
        assert_int_equal(v.type, ok[i].type);
    }
    pp_jsonscan_value_t v;
    assert_int_equal(pp_jsonscan_check(S("  [1, 2] \n"), &v), 0);
    assert_int_equal(v.text.len, 6); /* the value without the whitespace around it */
    assert_memory_equal(v.text.ptr, "[1, 2]", 6);
}

static void test_refuses(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        " ",
        "{",
        "}",
        "[",
        "{\"a\"}",
        "{\"a\":}",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "{,}",
        "[1,]",
        "[,1]",
        "[1 2]",
        "{1:2}",
        "{'a':1}",
        "[] []",
        "{}x",
        "01",
        "-01",
        "1.",
        ".5",
        "+1",
        "-",
        "1e",
        "1e+",
        "0x10",
        "NaN",
        "Infinity",
        "-Infinity",
        "tru",
        "nul",
        "True",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"\\ud800\"",
        "\"\\ud800x\"",
        "\"\\ud800\\u0041\"",
        "\"\\udc00\"",
        "\"a\tb\"",
        "\"a\nb\"",
        "\"\xff\"",
        "\"\xc3\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        pp_jsonscan_value_t v;
        if (pp_jsonscan_check(S(bad[i]), &v) == 0) fail_msg("accepted: %s", bad[i]);
    }
    /* a raw NUL byte is a control character: refused inside a string and outside */
    pp_jsonscan_value_t v;
    assert_int_equal(pp_jsonscan_check((pp_str_t){"\"a\0b\"", 5}, &v), -1);
    assert_int_equal(pp_jsonscan_check((pp_str_t){"{}\0", 3}, &v), -1);
}

static char *s_nested(size_t depth)
{
    char *s = malloc(2 * depth + 1);
    memset(s, '[', depth);
    memset(s + depth, ']', depth);
    s[2 * depth] = '\0';
    return s;
}

static void test_depth(void **state)
{
    (void)state;
    pp_jsonscan_value_t v;
    char *s = s_nested(PP_JSONSCAN_MAX_DEPTH);
    assert_int_equal(pp_jsonscan_check(S(s), &v), 0);
    free(s);
    s = s_nested(PP_JSONSCAN_MAX_DEPTH + 1);
    assert_int_equal(pp_jsonscan_check(S(s), &v), -1);
    free(s);
    /* a million levels cost no C stack (refused at the limit) */
    s = s_nested(1000000);
    assert_int_equal(pp_jsonscan_check(S(s), &v), -1);
    free(s);
}

static void test_members(void **state)
{
    (void)state;
    const char *text = "{ \"a\" : 1 , \"b\\u0000\":{\"x\":[1,\"]}\"]}, \"c\":\"}\" ,\"d\":-2.5e3,"
                       "\"e\":null}";
    pp_jsonscan_value_t v, val;
    assert_int_equal(pp_jsonscan_check(S(text), &v), 0);
    pp_jsonscan_iter_t it;
    pp_str_t key;
    pp_jsonscan_members(&v, &it);
    static const struct {
        const char *key, *val;
        pp_jsonscan_type_t type;
    } want[] = {
        {"\"a\"", "1", PP_JSONSCAN_INTEGER},
        {"\"b\\u0000\"", "{\"x\":[1,\"]}\"]}", PP_JSONSCAN_OBJECT},
        {"\"c\"", "\"}\"", PP_JSONSCAN_STRING},
        {"\"d\"", "-2.5e3", PP_JSONSCAN_REAL},
        {"\"e\"", "null", PP_JSONSCAN_NULL},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_true(pp_jsonscan_next(&it, &key, &val));
        assert_int_equal(key.len, strlen(want[i].key));
        assert_memory_equal(key.ptr, want[i].key, key.len);
        assert_int_equal(val.text.len, strlen(want[i].val));
        assert_memory_equal(val.text.ptr, want[i].val, val.text.len);
        assert_int_equal(val.type, want[i].type);
    }
    assert_false(pp_jsonscan_next(&it, &key, &val));
    /* members of an inner object */
    assert_int_equal(pp_jsonscan_check(S("{\"o\":{\"p\":true}}"), &v), 0);
    pp_jsonscan_members(&v, &it);
    assert_true(pp_jsonscan_next(&it, &key, &val));
    pp_jsonscan_iter_t in;
    pp_jsonscan_members(&val, &in);
    assert_true(pp_jsonscan_next(&in, &key, &val));
    assert_true(pp_jsonscan_key_is(key, "p"));
    assert_int_equal(val.type, PP_JSONSCAN_TRUE);
    assert_false(pp_jsonscan_next(&in, &key, &val));
    assert_int_equal(pp_jsonscan_check(S("{}"), &v), 0);
    pp_jsonscan_members(&v, &it);
    assert_false(pp_jsonscan_next(&it, &key, &val));
}

static void test_key_is(void **state)
{
    (void)state;
    assert_true(pp_jsonscan_key_is(S("\"aps\""), "aps"));
    assert_true(pp_jsonscan_key_is(S("\"\\u0061ps\""), "aps"));
    assert_true(pp_jsonscan_key_is(S("\"a\\/b\""), "a/b"));
    assert_true(pp_jsonscan_key_is(S("\"\""), ""));
    assert_false(pp_jsonscan_key_is(S("\"aps\""), "ap"));
    assert_false(pp_jsonscan_key_is(S("\"ap\""), "aps"));
    assert_false(pp_jsonscan_key_is(S("\"aps\\u0000\""), "aps"));
    assert_false(pp_jsonscan_key_is(S("\"\\u00e1ps\""), "aps"));
    assert_false(pp_jsonscan_key_is(S("\"Aps\""), "aps"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accepts), cmocka_unit_test(test_refuses),
        cmocka_unit_test(test_depth),   cmocka_unit_test(test_members),
        cmocka_unit_test(test_key_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

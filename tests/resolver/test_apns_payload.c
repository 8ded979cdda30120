/*  Unit tests of pp_apns_payload: passthrough, built aps, background, push types, limits.
    Results are compared as parsed JSON (jansson) so key order does not matter, except where
    jansson cannot hold the data (NUL in a key, integers above 2^63-1): those are compared
    byte for byte, also when the data is written by the broker's own writer (pp_json). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "pp_apns_payload.h"
#include "pp_json.h"

static pp_str_t S(const char *s)
{
    return (pp_str_t){s, strlen(s)};
}

/*  Builds and checks the payload equals want (JSON text). */
static void s_expect(const char *data, const char *pt, int prio, const char *want,
                     const char *want_type, int want_prio)
{
    pp_apns_payload_t p;
    const char *why = NULL;
    assert_int_equal(pp_apns_payload_build(S(data), S(pt), prio, &p, &why), 0);
    json_t *got = json_loads(p.json, 0, NULL);
    json_t *exp = json_loads(want, 0, NULL);
    assert_non_null(got);
    assert_non_null(exp);
    if (!json_equal(got, exp)) fail_msg("payload %s, want %s", p.json, want);
    assert_string_equal(p.push_type, want_type);
    assert_int_equal(p.priority, want_prio);
    json_decref(got);
    json_decref(exp);
    pp_apns_payload_clear(&p);
    assert_null(p.json);
}

static void test_passthrough(void **state)
{
    (void)state;
    const char *data = "{\"aps\":{\"alert\":\"hi\",\"badge\":3},\"k\":1}";
    pp_apns_payload_t p;
    const char *why;
    assert_int_equal(pp_apns_payload_build(S(data), S(""), 0, &p, &why), 0);
    assert_int_equal(p.len, strlen(data));
    assert_memory_equal(p.json, data, p.len); /* byte for byte */
    assert_string_equal(p.push_type, "alert");
    pp_apns_payload_clear(&p);
    s_expect("{\"aps\":{\"content-available\":1},\"x\":2}", "", 0,
             "{\"aps\":{\"content-available\":1},\"x\":2}", "background", 5);
    assert_int_equal(pp_apns_payload_build(S("{\"aps\":\"str\"}"), S(""), 0, &p, &why), -1);
    assert_string_equal(why, "bad_aps");
}

static void test_built(void **state)
{
    (void)state;
    s_expect("{\"alert\":\"Hello\",\"badge\":2,\"sound\":\"default\",\"room\":\"r1\"}", "", 0,
             "{\"aps\":{\"alert\":\"Hello\",\"badge\":2,\"sound\":\"default\"},\"room\":\"r1\"}",
             "alert", 0);
    s_expect("{\"alert\":{\"title\":\"T\",\"body\":\"B\"},\"x\":[1,2]}", "", 10,
             "{\"aps\":{\"alert\":{\"title\":\"T\",\"body\":\"B\"}},\"x\":[1,2]}", "alert", 10);
    s_expect("{\"title\":\"T\",\"body\":\"B\",\"id\":7}", "", 0,
             "{\"aps\":{\"alert\":{\"title\":\"T\",\"body\":\"B\"}},\"id\":7}", "alert", 0);
    s_expect("{\"body\":\"only\"}", "", 0, "{\"aps\":{\"alert\":{\"body\":\"only\"}}}", "alert", 0);
    /* badge only is shown (alert push type); a non-integer badge is a custom key */
    s_expect("{\"badge\":5}", "", 0, "{\"aps\":{\"badge\":5}}", "alert", 0);
    s_expect("{\"badge\":\"5\"}", "", 0, "{\"aps\":{\"content-available\":1},\"badge\":\"5\"}",
             "background", 5);
    /* alert of the wrong type stays a custom key, title/body used instead */
    s_expect("{\"alert\":3,\"title\":\"T\"}", "", 0,
             "{\"aps\":{\"alert\":{\"title\":\"T\"}},\"alert\":3}", "alert", 0);
    s_expect("\"just text\"", "", 0, "{\"aps\":{\"alert\":\"just text\"}}", "alert", 0);
}

static void test_background(void **state)
{
    (void)state;
    s_expect("{\"sync\":true,\"n\":1}", "", 10,
             "{\"aps\":{\"content-available\":1},\"sync\":true,\"n\":1}", "background", 5);
    s_expect("{}", "", 0, "{\"aps\":{\"content-available\":1}}", "background", 5);
    s_expect("[1,2]", "", 0, "{\"aps\":{\"content-available\":1},\"data\":[1,2]}", "background", 5);
    /* the option wins for the push type */
    s_expect("{\"alert\":\"x\"}", "voip", 10, "{\"aps\":{\"alert\":\"x\"}}", "voip", 10);
    s_expect("{\"alert\":\"x\"}", "background", 10, "{\"aps\":{\"alert\":\"x\"}}", "background", 5);
}

/*  Builds and checks the payload is exactly want. */
static void s_exact(pp_str_t data, const char *want, const char *want_type)
{
    pp_apns_payload_t p;
    const char *why = "";
    if (pp_apns_payload_build(data, S(""), 0, &p, &why) != 0)
        fail_msg("refused (%s): %.*s", why, (int)data.len, data.ptr);
    if (p.len != strlen(want) || memcmp(p.json, want, p.len) != 0)
        fail_msg("payload %s, want %s", p.json, want);
    assert_int_equal(p.json[p.len], '\0');
    assert_string_equal(p.push_type, want_type);
    pp_apns_payload_clear(&p);
}

/*  NUL in strings and in keys (\u0000, as the broker writes it) reaches the payload. */
static void test_nul(void **state)
{
    (void)state;
    s_exact(S("{\"alert\":\"a\\u0000b\",\"k\\u0000ey\":\"v\\u0000\"}"),
            "{\"aps\":{\"alert\":\"a\\u0000b\"},\"k\\u0000ey\":\"v\\u0000\"}", "alert");
    s_exact(
        S("{\"title\":\"\\u0000\",\"body\":\"b\\u0000\",\"\\u0000\":{\"\\u0000\":[\"\\u0000\"]}}"),
        "{\"aps\":{\"alert\":{\"title\":\"\\u0000\",\"body\":\"b\\u0000\"}},"
        "\"\\u0000\":{\"\\u0000\":[\"\\u0000\"]}}",
        "alert");
    const char *aps = "{\"aps\":{\"alert\":\"x\\u0000\"},\"n\\u0000\":\"\\u0000\"}";
    s_exact(S(aps), aps, "alert"); /* with aps: byte for byte */
    s_exact(S("\"\\u0000\""), "{\"aps\":{\"alert\":\"\\u0000\"}}", "alert");
    /* a key that only looks like "alert" before its NUL stays a custom key */
    s_exact(S("{\"alert\\u0000\":\"x\"}"),
            "{\"aps\":{\"content-available\":1},\"alert\\u0000\":\"x\"}", "background");
}

/*  2^63, 2^64-1 and -2^63, as a badge and as custom values, reach the payload exactly. */
static void test_big_integers(void **state)
{
    (void)state;
    s_exact(
        S("{\"badge\":9223372036854775808,\"u\":18446744073709551615,"
          "\"i\":-9223372036854775808,\"a\":[18446744073709551615,{\"x\":9223372036854775808}]}"),
        "{\"aps\":{\"badge\":9223372036854775808},\"u\":18446744073709551615,"
        "\"i\":-9223372036854775808,\"a\":[18446744073709551615,{\"x\":9223372036854775808}]}",
        "alert");
    s_exact(S("{\"badge\":18446744073709551615}"), "{\"aps\":{\"badge\":18446744073709551615}}",
            "alert");
    s_exact(S("{\"badge\":-9223372036854775808}"), "{\"aps\":{\"badge\":-9223372036854775808}}",
            "alert");
    const char *aps = "{\"aps\":{\"badge\":18446744073709551615},\"i\":-9223372036854775808}";
    s_exact(S(aps), aps, "alert");
    s_exact(S("18446744073709551615"),
            "{\"aps\":{\"content-available\":1},\"data\":18446744073709551615}", "background");
    /* a float is not an integer badge; its text is kept as written */
    s_exact(S("{\"badge\":1.0,\"f\":1e400}"),
            "{\"aps\":{\"content-available\":1},\"badge\":1.0,\"f\":1e400}", "background");
}

static void s_pack_str(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/*  The broker's writer (pp_json, msgpack -> JSON) and the payload builder agree: data with
    NUL in strings, 2^63, 2^64-1 and -2^63 goes from msgpack to the APNs payload intact. */
static void test_from_broker_writer(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    s_pack_str(&pk, "alert", 5);
    s_pack_str(&pk, "a\0b", 3);
    s_pack_str(&pk, "badge", 5);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    s_pack_str(&pk, "two63", 5);
    msgpack_pack_uint64(&pk, (uint64_t)1 << 63);
    s_pack_str(&pk, "min", 3);
    msgpack_pack_int64(&pk, INT64_MIN);
    s_pack_str(&pk, "s", 1);
    s_pack_str(&pk, "\0\0", 2);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, sb.data, sb.size, NULL), MSGPACK_UNPACK_SUCCESS);
    pp_json_buf_t json;
    pp_json_buf_init(&json);
    assert_int_equal(pp_json_append(&json, &u.data, 16, 65536, NULL), PP_JSON_OK);
    const char *written = "{\"alert\":\"a\\u0000b\",\"badge\":18446744073709551615,"
                          "\"two63\":9223372036854775808,\"min\":-9223372036854775808,"
                          "\"s\":\"\\u0000\\u0000\"}";
    assert_int_equal(json.len, strlen(written));
    assert_memory_equal(json.data, written, json.len);
    s_exact((pp_str_t){json.data, json.len},
            "{\"aps\":{\"alert\":\"a\\u0000b\",\"badge\":18446744073709551615},"
            "\"two63\":9223372036854775808,\"min\":-9223372036854775808,\"s\":\"\\u0000\\u0000\"}",
            "alert");
    pp_json_buf_release(&json);
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&sb);
}

/*  Duplicate keys: the last alert counts and every copy leaves; custom duplicates pass. Keys
    are compared decoded ("\u0061lert" is "alert"). */
static void test_duplicates_and_escaped_keys(void **state)
{
    (void)state;
    s_exact(S("{\"alert\":\"a\",\"x\":1,\"alert\":\"b\",\"x\":2}"),
            "{\"aps\":{\"alert\":\"b\"},\"x\":1,\"x\":2}", "alert");
    /* the last badge is not an integer: none moves, both stay */
    s_exact(S("{\"badge\":1,\"badge\":\"x\"}"),
            "{\"aps\":{\"content-available\":1},\"badge\":1,\"badge\":\"x\"}", "background");
    s_exact(S("{\"\\u0061lert\":\"hi\",\"\\u0062ody\":\"b\"}"),
            "{\"aps\":{\"alert\":\"hi\"},\"\\u0062ody\":\"b\"}", "alert");
    const char *aps = "{\"\\u0061ps\":{\"content-available\":1}}";
    pp_apns_payload_t p;
    const char *why;
    assert_int_equal(pp_apns_payload_build(S(aps), S(""), 0, &p, &why), 0);
    assert_string_equal(p.json, aps);
    assert_string_equal(p.push_type, "background");
    pp_apns_payload_clear(&p);
    /* whitespace in the data: members are taken as written, inside values too */
    s_exact(S(" { \"alert\" : \"x\" , \"k\" : [ 1 , 2 ] } "),
            "{\"aps\":{\"alert\":\"x\"},\"k\":[ 1 , 2 ]}", "alert");
}

static char *s_data_of_size(size_t payload_len)
{
    /* {"aps":{"alert":"xxx"}} is 20 bytes + n */
    size_t n = payload_len - 20;
    char *s = malloc(payload_len + 1);
    strcpy(s, "{\"aps\":{\"alert\":\"");
    memset(s + 17, 'x', n);
    strcpy(s + 17 + n, "\"}}");
    assert_int_equal(strlen(s), payload_len);
    return s;
}

static void test_limits(void **state)
{
    (void)state;
    pp_apns_payload_t p;
    const char *why;
    char *d = s_data_of_size(4096);
    assert_int_equal(pp_apns_payload_build(S(d), S(""), 0, &p, &why), 0);
    assert_int_equal(p.len, 4096);
    pp_apns_payload_clear(&p);
    free(d);
    d = s_data_of_size(4097);
    assert_int_equal(pp_apns_payload_build(S(d), S(""), 0, &p, &why), -1);
    assert_string_equal(why, "too_large");
    assert_null(p.json);
    assert_int_equal(pp_apns_payload_build(S(d), S("voip"), 0, &p, &why), 0);
    pp_apns_payload_clear(&p);
    free(d);
    d = s_data_of_size(5121);
    assert_int_equal(pp_apns_payload_build(S(d), S("voip"), 0, &p, &why), -1);
    assert_string_equal(why, "too_large");
    free(d);
    assert_int_equal(pp_apns_payload_build(S("{bad"), S(""), 0, &p, &why), -1);
    assert_string_equal(why, "bad_json");
    assert_int_equal(pp_apns_payload_build(S("{}"), S("Alert!"), 0, &p, &why), -1);
    assert_string_equal(why, "bad_push_type");
    assert_int_equal(pp_apns_payload_limit(S("voip")), 5120);
    assert_int_equal(pp_apns_payload_limit(S("alert")), 4096);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passthrough),
        cmocka_unit_test(test_built),
        cmocka_unit_test(test_background),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_nul),
        cmocka_unit_test(test_big_integers),
        cmocka_unit_test(test_from_broker_writer),
        cmocka_unit_test(test_duplicates_and_escaped_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

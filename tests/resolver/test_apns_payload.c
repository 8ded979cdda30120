/*  Unit tests of pp_apns_payload: passthrough, built aps, background, push types, limits.
    Results are compared as parsed JSON (jansson) so key order does not matter. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <jansson.h>

#include "pp_apns_payload.h"

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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

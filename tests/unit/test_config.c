/* pp_config: defaults, type and range errors that name the key, unknown keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pp_config.h"

#include <string.h>

static pp_config_t *s_load(const char *text)
{
    char err[256];
    pp_config_t *c = pp_config_from_string(text, err, sizeof err);
    assert_non_null(c);
    return c;
}

static void test_defaults_and_values(void **state)
{
    (void)state;
    pp_config_t *c = s_load("{\"resolver\": {\"redis\": {\"port\": 7000, \"host\": \"h\"},"
                            " \"on\": true}}");
    assert_int_equal(pp_config_int(c, "resolver.redis.port", 6379, 1, 65535), 7000);
    assert_string_equal(pp_config_str(c, "resolver.redis.host", "x"), "h");
    assert_int_equal(pp_config_int(c, "resolver.redis.db", 3, 0, 15), 3);
    assert_true(pp_config_bool(c, "resolver.on", false));
    const char *const sections[] = {"", "resolver", NULL};
    pp_config_check_unknown(c, sections);
    assert_true(pp_config_ok(c));
    pp_config_destroy(&c);
    assert_null(c);
}

static void test_wrong_type_names_key(void **state)
{
    (void)state;
    pp_config_t *c = s_load("{\"broker\": {\"hwm\": \"lots\"}}");
    assert_int_equal(pp_config_int(c, "broker.hwm", 1000, 1, 1000000), 1000);
    assert_false(pp_config_ok(c));
    assert_non_null(strstr(pp_config_error(c), "broker.hwm"));
    pp_config_destroy(&c);
}

static void test_out_of_range(void **state)
{
    (void)state;
    pp_config_t *c = s_load("{\"broker\": {\"hwm\": 0}}");
    pp_config_int(c, "broker.hwm", 1000, 1, 1000000);
    assert_non_null(strstr(pp_config_error(c), "out of range"));
    pp_config_destroy(&c);
}

static void test_unknown_key(void **state)
{
    (void)state;
    pp_config_t *c = s_load("{\"broker\": {\"hwm\": 5, \"hmw\": 6}, \"resolver\": {\"x\": 1}}");
    pp_config_int(c, "broker.hwm", 1000, 1, 1000000);
    const char *const sections[] = {"", "broker", NULL};
    pp_config_check_unknown(c, sections);
    assert_false(pp_config_ok(c));
    assert_non_null(strstr(pp_config_error(c), "broker.hmw"));
    pp_config_destroy(&c);
}

static void test_enum_and_override(void **state)
{
    (void)state;
    pp_config_t *c = s_load("{\"resolver\": {\"env\": \"staging\"}}");
    const char *const envs[] = {"sandbox", "production", NULL};
    pp_config_set_str(c, "resolver.env", "sandbox");
    assert_int_equal(pp_config_enum(c, "resolver.env", "production", envs), 0);
    assert_true(pp_config_ok(c));
    pp_config_set_str(c, "resolver.env", "staging");
    pp_config_enum(c, "resolver.env", "production", envs);
    assert_non_null(strstr(pp_config_error(c), "not one of"));
    pp_config_destroy(&c);
}

static void test_bad_json(void **state)
{
    (void)state;
    char err[256];
    assert_null(pp_config_from_string("{\"a\": ", err, sizeof err));
    assert_non_null(strstr(err, "config"));
    assert_null(pp_config_from_string("[1]", err, sizeof err));
    assert_null(pp_config_load("/nonexistent/pushpipe.json", err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_values), cmocka_unit_test(test_wrong_type_names_key),
        cmocka_unit_test(test_out_of_range),        cmocka_unit_test(test_unknown_key),
        cmocka_unit_test(test_enum_and_override),   cmocka_unit_test(test_bad_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

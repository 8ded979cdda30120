/*  Unit tests of pp_user_rule: focus values, environments, token and id checks, verdicts. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "pp_user_rule.h"

static pp_str_t S(const char *s)
{
    return (pp_str_t){s, strlen(s)};
}

#define TOKEN64 "0123456789abcdef0123456789ABCDEF0123456789abcdef0123456789abcdef"

static void test_focus(void **state)
{
    (void)state;
    const char *yes[] = {"1", "true", "TRUE", "True", "yes", "YES", "on", "On"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++)
        assert_true(pp_user_focus_is_true(S(yes[i])));
    const char *no[] = {"", "0", "false", "no", "off", "2", "truee", " true", "tru", "y"};
    for (size_t i = 0; i < sizeof no / sizeof *no; i++)
        assert_false(pp_user_focus_is_true(S(no[i])));
}

static void test_env(void **state)
{
    (void)state;
    bool d;
    assert_int_equal(pp_user_env(S("develop"), PP_ENV_PRODUCTION, &d), PP_ENV_SANDBOX);
    assert_false(d);
    assert_int_equal(pp_user_env(S("produce"), PP_ENV_SANDBOX, &d), PP_ENV_PRODUCTION);
    assert_false(d);
    assert_int_equal(pp_user_env(S(""), PP_ENV_PRODUCTION, &d), PP_ENV_PRODUCTION);
    assert_true(d);
    assert_int_equal(pp_user_env(S("Develop"), PP_ENV_SANDBOX, &d), PP_ENV_SANDBOX);
    assert_true(d);
    assert_int_equal(pp_user_env(S("beta"), PP_ENV_PRODUCTION, &d), PP_ENV_PRODUCTION);
    assert_true(d);
}

static void test_token(void **state)
{
    (void)state;
    assert_true(pp_user_token_valid(S(TOKEN64), 16, 200));
    assert_true(pp_user_token_valid(S("0123456789abcdef"), 16, 200));
    assert_false(pp_user_token_valid(S("0123456789abcde"), 16, 200));
    assert_false(pp_user_token_valid(S("0123456789abcdeg"), 16, 200));
    assert_false(pp_user_token_valid(S("<0123456789abcdef>"), 16, 200));
    char big[202];
    memset(big, 'a', 201);
    big[201] = 0;
    assert_false(pp_user_token_valid(S(big), 16, 200));
    big[200] = 0;
    assert_true(pp_user_token_valid(S(big), 16, 200));
}

static void test_ids(void **state)
{
    (void)state;
    assert_true(pp_user_id_valid(S("42"), 256));
    assert_true(pp_user_id_valid(S("user-\xc3\xa9"), 256));
    assert_false(pp_user_id_valid(S(""), 256));
    assert_false(pp_user_id_valid(S("a/b"), 256));
    assert_false(pp_user_id_valid(S("a+"), 256));
    assert_false(pp_user_id_valid(S("#"), 256));
    assert_false(pp_user_id_valid(S("a\nb"), 256));
    assert_false(pp_user_id_valid(S("\xff\xfe"), 256));
    assert_false(pp_user_id_valid(S("\xc0\xaf"), 256));        /* overlong '/' */
    assert_false(pp_user_id_valid(S("\xed\xa0\x80"), 256));    /* surrogate */
    assert_false(pp_user_id_valid(S("\xe2\x82"), 256));        /* truncated */
    assert_true(pp_user_id_valid(S("\xf0\x9f\x98\x80"), 256)); /* emoji */
    assert_false(pp_user_id_valid(S("abcdef"), 5));
    assert_true(pp_user_ident_valid(S("com.example.app")));
    assert_false(pp_user_ident_valid(S("com example")));
    assert_false(pp_user_ident_valid(S("")));
    /* the bound is proto/pp_limits.h's, shared with the broker and the APNs sender */
    char ident[PP_IDENT_MAX_LEN + 2];
    memset(ident, 'a', sizeof ident);
    assert_true(pp_user_ident_valid((pp_str_t){ident, PP_IDENT_MAX_LEN}));
    assert_false(pp_user_ident_valid((pp_str_t){ident, PP_IDENT_MAX_LEN + 1}));
    char id[PP_ID_MAX_LEN + 1];
    memset(id, 'u', sizeof id);
    assert_true(pp_user_id_valid((pp_str_t){id, PP_ID_MAX_LEN}, PP_ID_MAX_LEN));
    assert_false(pp_user_id_valid((pp_str_t){id, PP_ID_MAX_LEN + 1}, PP_ID_MAX_LEN));
}

static void test_decide(void **state)
{
    (void)state;
    pp_user_rule_cfg_t cfg;
    pp_user_rule_cfg_init(&cfg);
    pp_user_decision_t d;
    pp_user_fields_t f = {S(TOKEN64), S("com.a"), S("develop"), S("0")};
    pp_user_decide(&cfg, &f, &d);
    assert_int_equal(d.verdict, PP_USER_APNS);
    assert_int_equal(d.env, PP_ENV_SANDBOX);
    assert_false(d.env_defaulted);
    assert_int_equal(d.ident.len, 5);

    f.focus = S("TRUE");
    pp_user_decide(&cfg, &f, &d);
    assert_int_equal(d.verdict, PP_USER_FOCUSED);

    f.focus = S("");
    f.version = S("");
    pp_user_decide(&cfg, &f, &d);
    assert_int_equal(d.verdict, PP_USER_APNS);
    assert_int_equal(d.env, PP_ENV_PRODUCTION);
    assert_true(d.env_defaulted);

    f.token = S("");
    pp_user_decide(&cfg, &f, &d);
    assert_int_equal(d.verdict, PP_USER_NO_TOKEN);

    f.token = S("zz");
    pp_user_decide(&cfg, &f, &d);
    assert_int_equal(d.verdict, PP_USER_BAD_TOKEN);

    f.token = S(TOKEN64);
    f.ident = S("");
    pp_user_decide(&cfg, &f, &d);
    assert_int_equal(d.verdict, PP_USER_NO_IDENT);
    cfg.default_ident = S("com.default");
    pp_user_decide(&cfg, &f, &d);
    assert_int_equal(d.verdict, PP_USER_APNS);
    assert_true(d.ident_defaulted);
    assert_memory_equal(d.ident.ptr, "com.default", 11);

    f.ident = S("bad ident");
    pp_user_decide(&cfg, &f, &d);
    assert_int_equal(d.verdict, PP_USER_BAD_IDENT);

    pp_user_fields_t empty = {S(""), S(""), S(""), S("")};
    pp_user_decide(&cfg, &empty, &d);
    assert_int_equal(d.verdict, PP_USER_NO_TOKEN);
    assert_string_equal(pp_user_verdict_name(PP_USER_BAD_TOKEN), "invalid_token");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_focus), cmocka_unit_test(test_env),    cmocka_unit_test(test_token),
        cmocka_unit_test(test_ids),   cmocka_unit_test(test_decide),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

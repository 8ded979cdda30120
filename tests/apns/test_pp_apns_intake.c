/*  pp_apns_intake's pure checks: a job's headers from the job and its app (defaults,
    background priority, topic suffixes), the fields that make a bad job, the payload
    limits that refuse every target, and which targets can be sent. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pp_apns_intake.h"
#include "pp_limits.h"

#include <string.h>

static pp_str_t s_str(const char *s)
{
    return (pp_str_t){s, strlen(s)};
}

static pp_apns_app_t s_app(const char *topic)
{
    pp_apns_app_t app = {0};
    app.ident = (char *)"com.example.app";
    app.topic = (char *)topic;
    app.default_push_type = (char *)"alert";
    app.default_priority = 10;
    return app;
}

static pp_apns_job_t s_job(const char *push_type, int priority, const char *payload)
{
    pp_apns_job_t job = {0};
    job.msg_id = s_str("m1");
    job.ident = s_str("com.example.app");
    job.env = PP_ENV_PRODUCTION;
    job.payload = s_str(payload);
    job.push_type = s_str(push_type);
    job.priority = priority;
    job.expiration = -1;
    return job;
}

/* The verdict for job on app; with OK, *h holds the headers. */
static pp_apns_job_verdict_t s_check(const pp_apns_job_t *job, const char *topic,
                                     pp_apns_headers_t *h, const char **why)
{
    pp_apns_app_t app = s_app(topic);
    *why = NULL;
    return pp_apns_intake_headers(job, &app, h, why);
}

static void test_defaults(void **state)
{
    (void)state;
    pp_apns_headers_t h;
    const char *why;
    pp_apns_job_t job = s_job("", 0, "{\"aps\":{}}");
    assert_int_equal(s_check(&job, "com.example.app", &h, &why), PP_APNS_JOB_OK);
    assert_string_equal(h.push_type, "alert");
    assert_int_equal(h.priority, 10);
    assert_string_equal(h.topic, "com.example.app");
    job = s_job("alert", 1, "{}");
    assert_int_equal(s_check(&job, "com.example.app", &h, &why), PP_APNS_JOB_OK);
    assert_int_equal(h.priority, 1);
}

static void test_background_is_priority_5(void **state)
{
    (void)state;
    pp_apns_headers_t h;
    const char *why;
    pp_apns_job_t job = s_job("background", 10, "{}");
    assert_int_equal(s_check(&job, "com.example.app", &h, &why), PP_APNS_JOB_OK);
    assert_string_equal(h.push_type, "background");
    assert_int_equal(h.priority, 5);
    /* background sets 5 before the check: the job's priority is not looked at; for any
       other push type a priority other than 10, 5 or 1 is a bad job */
    job = s_job("background", 7, "{}");
    assert_int_equal(s_check(&job, "com.example.app", &h, &why), PP_APNS_JOB_OK);
    job = s_job("alert", 7, "{}");
    assert_int_equal(s_check(&job, "com.example.app", &h, &why), PP_APNS_JOB_BAD);
    assert_string_equal(why, "bad_field:headers");
}

static void test_topic_suffixes(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        {"voip", "com.example.app", "com.example.app.voip"},
        {"voip", "com.example.app.voip", "com.example.app.voip"}, /* configured with it */
        {"complication", "com.example.app", "com.example.app.complication"},
        {"liveactivity", "com.example.app", "com.example.app.push-type.liveactivity"},
        {"fileprovider", "com.example.app", "com.example.app.pushkit.fileprovider"},
        {"pushtotalk", "com.example.app", "com.example.app.voip-ptt"},
        {"location", "com.example.app", "com.example.app"},
        {"mdm", "com.example.app", "com.example.app"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pp_apns_headers_t h;
        const char *why;
        pp_apns_job_t job = s_job(cases[i][0], 0, "{}");
        assert_int_equal(s_check(&job, cases[i][1], &h, &why), PP_APNS_JOB_OK);
        assert_string_equal(h.push_type, cases[i][0]);
        assert_string_equal(h.topic, cases[i][2]);
    }
}

static void test_bad_fields(void **state)
{
    (void)state;
    pp_apns_headers_t h;
    const char *why;
    pp_apns_job_t job = s_job("Alert", 0, "{}"); /* push types are lower-case words */
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_BAD);
    assert_string_equal(why, "bad_field:push_type");
    job = s_job("abcdefghijklmnopqrstuvwxyzabcdefg", 0, "{}"); /* 33 letters */
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_BAD);
    assert_string_equal(why, "bad_field:push_type");

    char long_id[130];
    memset(long_id, 'c', sizeof long_id - 1);
    long_id[sizeof long_id - 1] = '\0';
    job = s_job("", 0, "{}");
    job.collapse_id = (pp_str_t){long_id, 65};
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_BAD);
    assert_string_equal(why, "bad_field:headers");
    job.collapse_id = (pp_str_t){long_id, 64};
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_OK);

    job = s_job("", 0, "{}");
    job.msg_id = (pp_str_t){long_id, 129};
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_BAD);
    job.msg_id = (pp_str_t){long_id, 128};
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_OK);

    job = s_job("", 0, "{}");
    job.env = 2;
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_BAD);
    assert_string_equal(why, "bad_field:headers");
}

static void test_payload_limits(void **state)
{
    (void)state;
    static char big[5122];
    memset(big, ' ', sizeof big - 1);
    pp_apns_headers_t h;
    const char *why;
    pp_apns_job_t job = s_job("alert", 0, "");
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_REFUSED);
    assert_string_equal(why, "PayloadEmpty");
    job.payload = (pp_str_t){big, 4096};
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_OK);
    job.payload = (pp_str_t){big, 4097};
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_REFUSED);
    assert_string_equal(why, "PayloadTooLarge");
    job = s_job("voip", 0, "");
    job.payload = (pp_str_t){big, 5120};
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_OK);
    job.payload = (pp_str_t){big, 5121};
    assert_int_equal(s_check(&job, "t", &h, &why), PP_APNS_JOB_REFUSED);
    assert_string_equal(why, "PayloadTooLarge");
}

static void test_targets(void **state)
{
    (void)state;
    static char hex[PP_TOKEN_MAX_LEN + 2], uid[202];
    memset(hex, 'a', sizeof hex - 1);
    memset(uid, '7', sizeof uid - 1);
    pp_apns_target_t t = {s_str("42"), s_str("0123456789abcdefABCDEF")};
    assert_true(pp_apns_intake_target_ok(&t));
    t.token = (pp_str_t){hex, PP_TOKEN_MAX_LEN};
    assert_true(pp_apns_intake_target_ok(&t));
    t.token = (pp_str_t){hex, PP_TOKEN_MAX_LEN + 1};
    assert_false(pp_apns_intake_target_ok(&t));
    t.token = s_str("");
    assert_false(pp_apns_intake_target_ok(&t));
    t.token = s_str("0123g5");
    assert_false(pp_apns_intake_target_ok(&t));
    t.token = s_str("abcd");
    t.uid = s_str("");
    assert_false(pp_apns_intake_target_ok(&t));
    t.uid = (pp_str_t){uid, 200};
    assert_true(pp_apns_intake_target_ok(&t));
    t.uid = (pp_str_t){uid, 201};
    assert_false(pp_apns_intake_target_ok(&t));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),       cmocka_unit_test(test_background_is_priority_5),
        cmocka_unit_test(test_topic_suffixes), cmocka_unit_test(test_bad_fields),
        cmocka_unit_test(test_payload_limits), cmocka_unit_test(test_targets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*  pp_payload_cache: a message equal in data, push type option and priority option to the
    one before reuses its payload; any difference builds again; data that makes no payload
    is refused every time (not remembered); unusually large data is built but not
    remembered. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pp_payload_cache.h"

#include <stdlib.h>
#include <string.h>

static pp_resolve_job_t s_job(const char *data, const char *push_type, int priority)
{
    pp_resolve_job_t job;
    memset(&job, 0, sizeof job);
    pp_opts_init(&job.opts);
    job.data_json = (pp_str_t){data, strlen(data)};
    job.opts.apns_push_type = (pp_str_t){push_type, strlen(push_type)};
    job.opts.apns_priority = priority;
    return job;
}

static void test_reuse(void **state)
{
    (void)state;
    pp_payload_cache_t *c = pp_payload_cache_new();
    assert_non_null(c);
    const char *why = NULL;
    /* two buffers with the same bytes: equal by content, not by pointer */
    char a[] = "{\"alert\":\"hi\"}", b[] = "{\"alert\":\"hi\"}";
    pp_resolve_job_t ja = s_job(a, "", 0), jb = s_job(b, "", 0);
    const pp_apns_payload_t *p = pp_payload_cache_get(c, &ja, &why);
    assert_non_null(p);
    assert_string_equal(p->push_type, "alert");
    assert_int_equal(pp_payload_cache_builds(c), 1);
    assert_ptr_equal(pp_payload_cache_get(c, &jb, &why), p);
    assert_int_equal(pp_payload_cache_builds(c), 1);
    assert_string_equal(p->push_type, "alert");
    pp_payload_cache_destroy(&c);
    assert_null(c);
    pp_payload_cache_destroy(&c);
}

static void test_any_difference_builds(void **state)
{
    (void)state;
    pp_payload_cache_t *c = pp_payload_cache_new();
    const char *why = NULL;
    pp_resolve_job_t j = s_job("{\"alert\":\"hi\"}", "", 0);
    assert_non_null(pp_payload_cache_get(c, &j, &why));
    uint64_t builds = 1;
    /* other data */
    j = s_job("{\"alert\":\"ho\"}", "", 0);
    const pp_apns_payload_t *p = pp_payload_cache_get(c, &j, &why);
    assert_int_equal(pp_payload_cache_builds(c), ++builds);
    assert_non_null(strstr(p->json, "ho"));
    /* other push type option */
    j = s_job("{\"alert\":\"ho\"}", "voip", 0);
    p = pp_payload_cache_get(c, &j, &why);
    assert_int_equal(pp_payload_cache_builds(c), ++builds);
    assert_string_equal(p->push_type, "voip");
    /* other priority option */
    j = s_job("{\"alert\":\"ho\"}", "voip", 5);
    p = pp_payload_cache_get(c, &j, &why);
    assert_int_equal(pp_payload_cache_builds(c), ++builds);
    assert_int_equal(p->priority, 5);
    /* and back: the one before is not kept (one entry) */
    j = s_job("{\"alert\":\"ho\"}", "voip", 0);
    assert_non_null(pp_payload_cache_get(c, &j, &why));
    assert_int_equal(pp_payload_cache_builds(c), ++builds);
    /* empty data (not a JSON text: refused) is compared by its length too */
    j = s_job("", "", 0);
    assert_null(pp_payload_cache_get(c, &j, &why));
    assert_int_equal(pp_payload_cache_builds(c), ++builds);
    pp_payload_cache_destroy(&c);
}

static void test_refused_every_time(void **state)
{
    (void)state;
    pp_payload_cache_t *c = pp_payload_cache_new();
    const char *why = NULL;
    pp_resolve_job_t j = s_job("{\"alert\":", "", 0);
    assert_null(pp_payload_cache_get(c, &j, &why));
    assert_string_equal(why, "bad_json");
    why = NULL;
    assert_null(pp_payload_cache_get(c, &j, &why));
    assert_string_equal(why, "bad_json");
    assert_int_equal(pp_payload_cache_builds(c), 2);
    /* a refusal also forgets the payload before it */
    pp_resolve_job_t good = s_job("\"hello\"", "", 0);
    assert_non_null(pp_payload_cache_get(c, &good, &why));
    assert_null(pp_payload_cache_get(c, &j, &why));
    assert_non_null(pp_payload_cache_get(c, &good, &why));
    assert_int_equal(pp_payload_cache_builds(c), 5);
    /* too large for Apple */
    static char big[6000];
    memset(big, 'x', sizeof big - 1);
    big[0] = '"';
    big[sizeof big - 2] = '"';
    j = s_job(big, "", 0);
    assert_null(pp_payload_cache_get(c, &j, &why));
    assert_string_equal(why, "too_large");
    pp_payload_cache_destroy(&c);
}

/*  Data over twice the voip limit that still makes a payload (JSON white space is not
    copied into it): built every time, never remembered. */
static void test_large_data_not_remembered(void **state)
{
    (void)state;
    enum { N = 2 * PP_APNS_MAX_PAYLOAD_VOIP + 100 };
    char *data = malloc(N + 1);
    assert_non_null(data);
    memset(data, ' ', N);
    memcpy(data, "{\"alert\":\"hi\"", 13);
    data[N - 1] = '}';
    data[N] = '\0';
    pp_payload_cache_t *c = pp_payload_cache_new();
    const char *why = NULL;
    pp_resolve_job_t j = s_job(data, "", 0);
    assert_non_null(pp_payload_cache_get(c, &j, &why));
    assert_non_null(pp_payload_cache_get(c, &j, &why));
    assert_int_equal(pp_payload_cache_builds(c), 2);
    /* data of the usual size is remembered */
    data[39] = '}';
    data[40] = '\0';
    j = s_job(data, "", 0);
    assert_non_null(pp_payload_cache_get(c, &j, &why));
    assert_non_null(pp_payload_cache_get(c, &j, &why));
    assert_int_equal(pp_payload_cache_builds(c), 3);
    pp_payload_cache_destroy(&c);
    free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse),
        cmocka_unit_test(test_any_difference_builds),
        cmocka_unit_test(test_refused_every_time),
        cmocka_unit_test(test_large_data_not_remembered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*  pp_pubq: ranges of topics over one shared job, order, retries at the head, the bound,
    and reference counting (leaks and double frees show under -DPP_SANITIZE=ON). */
#include "pp_pubq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

/* An MQTT job with n topics "t/<i>" in a zmq message. */
static void s_job_msg(zmq_msg_t *msg, size_t n, int qos, const char *payload)
{
    char(*names)[32] = calloc(n ? n : 1, 32);
    pp_str_t *topics = calloc(n ? n : 1, sizeof *topics);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], 32, "t/%zu", i);
        topics[i] = (pp_str_t){names[i], strlen(names[i])};
    }
    pp_mqtt_job_t job = {
        PP_STR("0123456789abcdef0123456789abcdef"), qos, {payload, strlen(payload)}, 1, n, topics};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(pp_mqtt_job_encode(&job, &sb), 0);
    zmq_msg_init_size(msg, sb.size);
    memcpy(zmq_msg_data(msg), sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    free(names);
    free(topics);
}

static pp_pubjob_t *s_job(size_t n, int qos, const char *payload)
{
    zmq_msg_t msg;
    s_job_msg(&msg, n, qos, payload);
    const char *why = NULL;
    pp_pubjob_t *job = pp_pubjob_new(&msg, &why);
    zmq_msg_close(&msg);
    assert_non_null(job);
    return job;
}

static bool s_topic_is(const pp_pub_t *pub, const char *want)
{
    pp_str_t t = pp_pub_topic(pub);
    return t.len == strlen(want) && memcmp(t.ptr, want, t.len) == 0;
}

static void test_one_job_many_topics(void **state)
{
    (void)state;
    pp_pubq_t *q = pp_pubq_new(100);
    pp_pubq_push_job(q, s_job(5, -1, "{\"a\":1}"));
    assert_int_equal(pp_pubq_len(q), 5);
    for (int i = 0; i < 5; i++) {
        pp_pub_t pub;
        assert_true(pp_pubq_pop(q, &pub));
        char want[16];
        snprintf(want, sizeof want, "t/%d", i);
        assert_true(s_topic_is(&pub, want));
        pp_str_t p = pp_pub_payload(&pub);
        assert_int_equal(p.len, 7);
        assert_memory_equal(p.ptr, "{\"a\":1}", 7);
        assert_int_equal(pp_pub_qos(&pub, 1), 1); /* -1: the default */
        assert_int_equal(pp_pub_qos(&pub, 0), 0);
        pp_pub_release(&pub);
        assert_null(pub.job);
    }
    pp_pub_t none;
    assert_false(pp_pubq_pop(q, &none));
    assert_int_equal(pp_pubq_len(q), 0);
    pp_pubq_destroy(&q);
    assert_null(q);
}

static void test_payload_shared_not_copied(void **state)
{
    (void)state;
    pp_pubq_t *q = pp_pubq_new(100);
    pp_pubq_push_job(q, s_job(3, 0, "{}"));
    pp_pub_t a, b, c;
    assert_true(pp_pubq_pop(q, &a));
    assert_true(pp_pubq_pop(q, &b));
    assert_true(pp_pubq_pop(q, &c));
    assert_ptr_equal(a.job, b.job);
    assert_ptr_equal(pp_pub_payload(&a).ptr, pp_pub_payload(&c).ptr);
    assert_int_equal(pp_pub_qos(&a, 1), 0);
    /* Released out of order: the job lives until the last one. */
    pp_pub_release(&b);
    pp_pub_release(&a);
    assert_memory_equal(pp_pub_payload(&c).ptr, "{}", 2);
    pp_pub_release(&c);
    pp_pubq_destroy(&q);
}

static void test_push_front_goes_first(void **state)
{
    (void)state;
    pp_pubq_t *q = pp_pubq_new(100);
    pp_pubq_push_job(q, s_job(3, 1, "{}"));
    pp_pubq_push_job(q, s_job(2, 1, "{\"second\":1}"));
    pp_pub_t first, second;
    assert_true(pp_pubq_pop(q, &first));
    assert_true(pp_pubq_pop(q, &second));
    assert_true(s_topic_is(&second, "t/1"));
    second.attempts = 3;
    pp_pubq_push_front(q, &second);
    assert_null(second.job);
    pp_pubq_push_front(q, &first);
    assert_int_equal(pp_pubq_len(q), 5);
    const char *order[] = {"t/0", "t/1", "t/2", "t/0", "t/1"};
    const uint32_t attempts[] = {0, 3, 0, 0, 0};
    for (int i = 0; i < 5; i++) {
        pp_pub_t pub;
        assert_true(pp_pubq_pop(q, &pub));
        assert_true(s_topic_is(&pub, order[i]));
        assert_int_equal(pub.attempts, attempts[i]);
        pp_pub_release(&pub);
    }
    pp_pubq_destroy(&q);
}

/* A suspect goes to the tail and keeps its history (attempts, first try, suspect flag). */
static void test_push_back_goes_last(void **state)
{
    (void)state;
    pp_pubq_t *q = pp_pubq_new(100);
    pp_pubq_push_job(q, s_job(2, 1, "{}"));
    pp_pub_t first;
    assert_true(pp_pubq_pop(q, &first));
    first.attempts = 4;
    first.first_ms = 1234;
    first.suspect = true;
    pp_pubq_push_back(q, &first);
    assert_null(first.job);
    pp_pubq_push_job(q, s_job(1, 1, "{\"later\":1}"));
    assert_int_equal(pp_pubq_len(q), 3);
    pp_pub_t a, b, c;
    assert_true(pp_pubq_pop(q, &a));
    assert_true(s_topic_is(&a, "t/1"));
    assert_false(a.suspect);
    assert_int_equal(a.first_ms, 0);
    assert_true(pp_pubq_pop(q, &b));
    assert_true(s_topic_is(&b, "t/0"));
    assert_true(b.suspect);
    assert_int_equal(b.attempts, 4);
    assert_int_equal(b.first_ms, 1234);
    assert_true(pp_pubq_pop(q, &c));
    assert_false(c.suspect);
    pp_pub_release(&a);
    pp_pub_release(&b);
    pp_pub_release(&c);
    pp_pubq_destroy(&q);
}

static void test_bound_and_growth(void **state)
{
    (void)state;
    pp_pubq_t *q = pp_pubq_new(250);
    int jobs = 0;
    while (!pp_pubq_full(q)) {
        pp_pubq_push_job(q, s_job(3, 1, "{}"));
        jobs++;
    }
    /* Full at the first job that reaches the bound; the job is taken whole. */
    assert_int_equal(jobs, 84);
    assert_int_equal(pp_pubq_len(q), 252);
    pp_pub_t pub, other;
    assert_true(pp_pubq_pop(q, &pub));
    assert_true(pp_pubq_pop(q, &other));
    pp_pub_release(&other);
    assert_true(pp_pubq_full(q)); /* 250 left */
    assert_true(pp_pubq_pop(q, &other));
    assert_false(pp_pubq_full(q)); /* 249 */
    pp_pubq_push_front(q, &other);
    for (int i = 0; i < 100; i++) { /* the ring wraps and grows under retries */
        pp_pub_t r;
        assert_true(pp_pubq_pop(q, &r));
        pp_pubq_push_front(q, &r);
    }
    assert_int_equal(pp_pubq_len(q), 250);
    pp_pubq_push_front(q, &pub);
    pp_pubq_destroy(&q); /* releases what is left, including partial ranges */
}

static void test_bad_jobs(void **state)
{
    (void)state;
    const char *why = NULL;
    zmq_msg_t msg;
    zmq_msg_init_size(&msg, 5);
    memcpy(zmq_msg_data(&msg), "\x93\x01\x02\x03\x04", 5);
    assert_null(pp_pubjob_new(&msg, &why));
    assert_non_null(why);
    zmq_msg_close(&msg);

    /* A job with no topics is refused (the encoder refuses it, so it is packed here). */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 7);
    msgpack_pack_int(&pk, 3);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "id", 2);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_str_with_body(&pk, "{}", 2);
    msgpack_pack_uint64(&pk, 1);
    msgpack_pack_array(&pk, 0);
    zmq_msg_init_size(&msg, sb.size);
    memcpy(zmq_msg_data(&msg), sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    why = NULL;
    pp_pubjob_t *job = pp_pubjob_new(&msg, &why);
    zmq_msg_close(&msg);
    if (job) { /* only if the decoder itself refused empty lists would this be skipped */
        pp_pubjob_unref(&job);
        fail_msg("a job without topics was accepted");
    }
    assert_non_null(why);
}

/* The done callback fires once, with the last reference: only when every publish of the
   job, popped, retried at the head or still queued, has been released. */
static int s_done_calls;
static uint64_t s_done_seq;
static void s_on_done(void *ctx, uint64_t seq)
{
    assert_ptr_equal(ctx, &s_done_calls);
    s_done_calls++;
    s_done_seq = seq;
}

static void test_done_when_all_publishes_finished(void **state)
{
    (void)state;
    s_done_calls = 0;
    pp_pubq_t *q = pp_pubq_new(100);
    pp_pubjob_t *job = s_job(3, 1, "{}");
    pp_pubjob_on_done(job, s_on_done, &s_done_calls, 42);
    pp_pubq_push_job(q, job);
    pp_pub_t a, b, c;
    assert_true(pp_pubq_pop(q, &a));
    assert_true(pp_pubq_pop(q, &b));
    pp_pub_release(&a);
    assert_int_equal(s_done_calls, 0); /* two publishes still open */
    pp_pubq_push_front(q, &b);         /* a retry keeps the job open */
    assert_true(pp_pubq_pop(q, &b));
    assert_true(pp_pubq_pop(q, &c));
    pp_pub_release(&c);
    assert_int_equal(s_done_calls, 0);
    pp_pub_release(&b);
    assert_int_equal(s_done_calls, 1);
    assert_int_equal(s_done_seq, 42);
    assert_int_equal(pp_pubq_len(q), 0);

    /* Destroying a queue that still holds the job also ends it: the caller decides, in its
       callback, whether that counts (the sender ignores it at shutdown). */
    s_done_calls = 0;
    job = s_job(2, 1, "{}");
    pp_pubjob_on_done(job, s_on_done, &s_done_calls, 7);
    pp_pubq_push_job(q, job);
    pp_pubq_destroy(&q);
    assert_int_equal(s_done_calls, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_job_many_topics),
        cmocka_unit_test(test_payload_shared_not_copied),
        cmocka_unit_test(test_push_front_goes_first),
        cmocka_unit_test(test_push_back_goes_last),
        cmocka_unit_test(test_bound_and_growth),
        cmocka_unit_test(test_bad_jobs),
        cmocka_unit_test(test_done_when_all_publishes_finished),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* The internal job frames: every kind round-trips, and every malformed frame is refused
   with a reason instead of crashing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pp_job.h"

#include <stdlib.h>
#include <string.h>

static bool s_eq(pp_str_t s, const char *c)
{
    return s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0;
}

static void test_resolve_round_trip(void **state)
{
    (void)state;
    pp_str_t ids[] = {PP_STR("1"), PP_STR("22"), PP_STR("abc")};
    pp_resolve_job_t in = {0};
    in.msg_id = PP_STR("00112233445566778899aabbccddeeff");
    in.push_type = 2;
    in.ids = ids;
    in.n_ids = 3;
    in.data_json = PP_STR("{\"alert\":\"hi\"}");
    in.received_us = 1790000000123456ull;
    pp_opts_init(&in.opts);
    in.opts.client_id = PP_STR("client-7");
    in.opts.channels = PP_CH_MQTT;
    in.opts.apns_priority = 5;
    in.opts.apns_expiration = 0;
    in.opts.mqtt_qos = 2;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(pp_resolve_job_encode(&in, &sb), 0);
    assert_int_equal(pp_job_peek_kind(sb.data, sb.size), PP_JOB_RESOLVE);
    pp_str_t peeked;
    assert_int_equal(pp_job_peek_msg_id(sb.data, sb.size, &peeked), 0);
    assert_true(s_eq(peeked, "00112233445566778899aabbccddeeff"));
    /* cut inside the id: not an id */
    assert_int_equal(pp_job_peek_msg_id(sb.data, 20, &peeked), -1);

    pp_resolve_job_t out;
    const char *why = NULL;
    assert_int_equal(pp_resolve_job_decode(sb.data, sb.size, &out, &why), 0);
    assert_true(s_eq(out.msg_id, "00112233445566778899aabbccddeeff"));
    assert_int_equal(out.push_type, 2);
    assert_int_equal(out.n_ids, 3);
    assert_true(s_eq(out.ids[2], "abc"));
    assert_true(s_eq(out.data_json, "{\"alert\":\"hi\"}"));
    assert_int_equal(out.received_us, 1790000000123456ull);
    assert_true(s_eq(out.opts.client_id, "client-7"));
    assert_int_equal(out.opts.channels, PP_CH_MQTT);
    assert_int_equal(out.opts.apns_priority, 5);
    assert_int_equal(out.opts.apns_expiration, 0);
    assert_int_equal(out.opts.mqtt_qos, 2);
    assert_int_equal(out.opts.apns_push_type.len, 0);
    pp_resolve_job_clear(&out);
    msgpack_sbuffer_destroy(&sb);
}

static void test_apns_round_trip(void **state)
{
    (void)state;
    pp_apns_target_t t[] = {{PP_STR("7"), PP_STR("aabbcc")}, {PP_STR("8"), PP_STR("ddeeff")}};
    pp_apns_job_t in = {0};
    in.msg_id = PP_STR("m1");
    in.ident = PP_STR("com.example.app");
    in.env = PP_ENV_SANDBOX;
    in.payload = PP_STR("{\"aps\":{\"alert\":\"x\"}}");
    in.push_type = PP_STR("alert");
    in.priority = 10;
    in.expiration = -1;
    in.received_us = 5;
    in.targets = t;
    in.n_targets = 2;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(pp_apns_job_encode(&in, &sb), 0);
    assert_int_equal(pp_job_peek_kind(sb.data, sb.size), PP_JOB_APNS);
    pp_apns_job_t out;
    const char *why;
    assert_int_equal(pp_apns_job_decode(sb.data, sb.size, &out, &why), 0);
    assert_true(s_eq(out.ident, "com.example.app"));
    assert_int_equal(out.env, PP_ENV_SANDBOX);
    assert_int_equal(out.priority, 10);
    assert_int_equal(out.expiration, -1);
    assert_int_equal(out.n_targets, 2);
    assert_true(s_eq(out.targets[1].uid, "8"));
    assert_true(s_eq(out.targets[1].token, "ddeeff"));
    pp_apns_job_clear(&out);
    /* The wrong decoder refuses it. */
    pp_mqtt_job_t m;
    assert_int_equal(pp_mqtt_job_decode(sb.data, sb.size, &m, &why), -1);
    assert_string_equal(why, "bad_kind");
    msgpack_sbuffer_destroy(&sb);
}

static void test_mqtt_round_trip(void **state)
{
    (void)state;
    pp_str_t topics[] = {PP_STR("push/user/1"), PP_STR("push/user/2")};
    pp_mqtt_job_t in = {PP_STR("m2"), 1, PP_STR("{}"), 9, 2, topics};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(pp_mqtt_job_encode(&in, &sb), 0);
    pp_mqtt_job_t out;
    const char *why;
    assert_int_equal(pp_mqtt_job_decode(sb.data, sb.size, &out, &why), 0);
    assert_int_equal(out.qos, 1);
    assert_int_equal(out.n_topics, 2);
    assert_true(s_eq(out.topics[0], "push/user/1"));
    pp_mqtt_job_clear(&out);
    msgpack_sbuffer_destroy(&sb);
}

static void test_encode_limits(void **state)
{
    (void)state;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pp_mqtt_job_t none = {PP_STR("m"), 1, PP_STR("{}"), 0, 0, NULL};
    assert_int_equal(pp_mqtt_job_encode(&none, &sb), -1);
    pp_str_t one[] = {PP_STR("t")};
    pp_mqtt_job_t badqos = {PP_STR("m"), 3, PP_STR("{}"), 0, 1, one};
    assert_int_equal(pp_mqtt_job_encode(&badqos, &sb), -1);
    msgpack_sbuffer_destroy(&sb);
}

/* Every prefix of a valid frame, and every single-byte corruption of it, must decode
   cleanly or fail with a reason: never crash, never leak. */
static void test_truncations_and_corruptions(void **state)
{
    (void)state;
    pp_apns_target_t t[] = {{PP_STR("7"), PP_STR("aabbcc")}};
    pp_apns_job_t in = {
        PP_STR("m1"), PP_STR("id"), 1, PP_STR("{}"), PP_STR("alert"), 10, -1, PP_STR(""), 5, 1, t};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(pp_apns_job_encode(&in, &sb), 0);
    const char *why;
    pp_apns_job_t out;
    for (size_t n = 0; n < sb.size; n++) {
        assert_int_equal(pp_apns_job_decode(sb.data, n, &out, &why), -1);
        assert_non_null(why);
    }
    char *copy = malloc(sb.size + 1);
    for (size_t i = 0; i < sb.size; i++) {
        for (int b = 0; b < 256; b += 17) {
            memcpy(copy, sb.data, sb.size);
            copy[i] = (char)b;
            if (pp_apns_job_decode(copy, sb.size, &out, &why) == 0) pp_apns_job_clear(&out);
        }
    }
    memcpy(copy, sb.data, sb.size);
    copy[sb.size] = 0;
    assert_int_equal(pp_apns_job_decode(copy, sb.size + 1, &out, &why), -1);
    assert_string_equal(why, "trailing_bytes");
    free(copy);
    msgpack_sbuffer_destroy(&sb);
}

static void test_peek_kind_rejects_garbage(void **state)
{
    (void)state;
    assert_int_equal(pp_job_peek_kind("", 0), 0);
    assert_int_equal(pp_job_peek_kind("\x93\x07", 2), 0);
    assert_int_equal(pp_job_peek_kind("\x81\x01", 2), 0);
    assert_int_equal(pp_job_peek_kind("\x93\x03", 2), PP_JOB_MQTT);
    pp_str_t id;
    assert_int_equal(pp_job_peek_msg_id("\x93\x03\x01\xa2"
                                        "ab",
                                        6, &id),
                     0);
    assert_int_equal(id.len, 2);
    assert_int_equal(pp_job_peek_msg_id("\x93\x03\x01\x05", 4, &id), -1);
    assert_int_equal(pp_job_peek_msg_id("\x93\x03\x01\xd9\x09"
                                        "ab",
                                        7, &id),
                     -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resolve_round_trip),
        cmocka_unit_test(test_apns_round_trip),
        cmocka_unit_test(test_mqtt_round_trip),
        cmocka_unit_test(test_encode_limits),
        cmocka_unit_test(test_truncations_and_corruptions),
        cmocka_unit_test(test_peek_kind_rejects_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*  libpushpipe without a broker: addresses, input checks, settings, and timeouts against
    ports where nobody listens. What reaches a broker is checked byte for byte by the
    integration tests (test_c_client.py). */
#include "pushpipe.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/*  A port nobody listens on: the tests set it from the environment (a free port the
    test script found); 1 is a fallback that is never open on 127.0.0.1 for us. */
static char s_absent[64] = "tcp://127.0.0.1:1";

static void test_new_bad_addresses(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "127.0.0.1:5560",
                         "tcp://",
                         "tcp://host",
                         "tcp://host:",
                         "tcp://host:x",
                         "tcp://host:0",
                         "tcp://host:65530",
                         "udp://host:5560",
                         "ipc://"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pp_client_t *c = pp_client_new(bad[i], 0);
        if (c) fail_msg("address '%s' was accepted", bad[i]);
    }
    assert_null(pp_client_new(NULL, 0));
    assert_null(pp_client_new("tcp://h:5560", 4));
}

static void test_endpoints(void **state)
{
    (void)state;
    pp_client_t *c = pp_client_new("tcp://push.example:5560", 0);
    assert_non_null(c);
    assert_string_equal(pp_client_endpoint(c), "tcp://push.example:5560");
    pp_client_destroy(&c);
    assert_null(c);
    c = pp_client_new("tcp://push.example:5560", PP_CLIENT_ACK);
    assert_string_equal(pp_client_endpoint(c), "tcp://push.example:5561");
    pp_client_destroy(&c);
    c = pp_client_new("ipc:///run/pushpipe", PP_CLIENT_ACK);
    assert_string_equal(pp_client_endpoint(c), "ipc:///run/pushpipe-submit");
    pp_client_destroy(&c);
    pp_client_destroy(&c); /* NULL is fine */
    pp_client_destroy(NULL);
}

/*  Broker lists: comma-separated in pp_client_new (blanks ignored), an array in
    pp_client_new_multi; the limits of pushpipe.h; the default retries. */
static void test_broker_lists(void **state)
{
    (void)state;
    pp_client_t *c = pp_client_new(" tcp://a:5560 ,\ttcp://b:5570", PP_CLIENT_ACK);
    assert_non_null(c);
    assert_int_equal(pp_client_broker_count(c), 2);
    assert_string_equal(pp_client_broker(c), "tcp://a:5560");
    assert_string_equal(pp_client_endpoint(c), "tcp://a:5561");
    assert_int_equal(pp_client_resends(c), 0);
    assert_string_equal(pp_client_message_id(c), "");
    assert_int_equal(pp_client_set_retries(c, -1), -1);
    assert_int_equal(pp_client_set_retries(c, PP_CLIENT_MAX_RETRIES + 1), -1);
    assert_int_equal(pp_client_set_retries(c, PP_CLIENT_MAX_RETRIES), 0);
    pp_client_destroy(&c);

    const char *two[] = {"tcp://a:5560", "ipc:///run/pp"};
    c = pp_client_new_multi(two, 2, 0);
    assert_non_null(c);
    assert_int_equal(pp_client_broker_count(c), 2);
    assert_string_equal(pp_client_endpoint(c), "tcp://a:5560");
    pp_client_destroy(&c);

    const char *bad[] = {"tcp://a:5560,",  "tcp://a:5560,,tcp://b:5560", ",tcp://a:5560",
                         "tcp://a:5560, ", "tcp://a:5560,tcp://a:5560",  "tcp://a:5560,nonsense"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        if (pp_client_new(bad[i], 0)) fail_msg("list '%s' was accepted", bad[i]);
    const char *dup[] = {"tcp://a:5560", "tcp://a:5560"};
    assert_null(pp_client_new_multi(dup, 2, 0));
    const char *comma[] = {"tcp://a:5560,tcp://b:5560"};
    assert_null(pp_client_new_multi(comma, 1, 0));
    const char *with_null[] = {"tcp://a:5560", NULL};
    assert_null(pp_client_new_multi(with_null, 2, 0));
    assert_null(pp_client_new_multi(two, 0, 0));
    assert_null(pp_client_new_multi(NULL, 1, 0));

    /* PP_CLIENT_MAX_BROKERS is fine, one more is not; an address may not be too long */
    char list[(PP_CLIENT_MAX_BROKERS + 1) * 24] = "";
    for (int i = 0; i <= PP_CLIENT_MAX_BROKERS; i++) {
        char one[24];
        snprintf(one, sizeof one, "%stcp://h:%d", i ? "," : "", 5560 + 10 * i);
        if (i == PP_CLIENT_MAX_BROKERS) {
            c = pp_client_new(list, 0);
            assert_non_null(c);
            assert_int_equal(pp_client_broker_count(c), PP_CLIENT_MAX_BROKERS);
            pp_client_destroy(&c);
        }
        strcat(list, one);
    }
    assert_null(pp_client_new(list, 0));
    char longest[PP_CLIENT_MAX_ADDRESS_LEN + 2];
    memset(longest, 'h', sizeof longest);
    memcpy(longest, "tcp://", 6);
    memcpy(longest + PP_CLIENT_MAX_ADDRESS_LEN - 5, ":5560", 6);
    assert_non_null(c = pp_client_new(longest, 0));
    pp_client_destroy(&c);
    memset(longest, 'h', sizeof longest);
    memcpy(longest, "tcp://", 6);
    memcpy(longest + PP_CLIENT_MAX_ADDRESS_LEN - 4, ":5560", 6);
    assert_null(pp_client_new(longest, 0));
}

/*  With a resend possible every acknowledged push carries a client id: the caller's, or
    a generated "pp-" + 16 hex digits, new for each push. With one broker and the
    default retries (0) nothing is added. */
static void test_generated_ids(void **state)
{
    (void)state;
    char two[160];
    snprintf(two, sizeof two, "%s,%s", s_absent, "tcp://127.0.0.1:2");
    pp_client_t *c = pp_client_new(two, PP_CLIENT_ACK);
    assert_non_null(c);
    pp_client_set_timeout(c, 50);
    pp_client_set_linger(c, 0);
    assert_int_equal(pp_client_push_user(c, "9", "{}", NULL, NULL), -1);
    assert_int_equal(pp_client_status(c), PP_CLIENT_E_TIMEOUT);
    assert_non_null(strstr(pp_client_error(c), "2 attempts over 2 brokers"));
    assert_int_equal(pp_client_resends(c), 1);
    char first[64];
    snprintf(first, sizeof first, "%s", pp_client_message_id(c));
    assert_int_equal(strlen(first), 19);
    assert_memory_equal(first, "pp-", 3);
    assert_int_equal(strspn(first + 3, "0123456789abcdef"), 16);
    assert_int_equal(pp_client_push_user(c, "9", "{}", NULL, NULL), -1);
    assert_string_not_equal(pp_client_message_id(c), first);
    pp_push_options_t o = {0};
    o.id = "mine-1";
    assert_int_equal(pp_client_push_user(c, "9", "{}", &o, NULL), -1);
    assert_string_equal(pp_client_message_id(c), "mine-1");
    /* an input error is not resent */
    uint64_t resends = pp_client_resends(c);
    assert_int_equal(pp_client_push_user(c, "9", "[1]", NULL, NULL), -1);
    assert_int_equal(pp_client_status(c), PP_CLIENT_E_INPUT);
    assert_int_equal(pp_client_resends(c), resends);
    pp_client_destroy(&c);

    c = pp_client_new(s_absent, PP_CLIENT_ACK);
    pp_client_set_timeout(c, 50);
    pp_client_set_linger(c, 0);
    assert_int_equal(pp_client_push_user(c, "9", "{}", NULL, NULL), -1);
    assert_string_equal(pp_client_message_id(c), "");
    assert_int_equal(pp_client_resends(c), 0);
    assert_int_equal(pp_client_set_retries(c, 2), 0);
    assert_int_equal(pp_client_push_user(c, "9", "{}", NULL, NULL), -1);
    assert_int_equal(pp_client_resends(c), 2);
    assert_memory_equal(pp_client_message_id(c), "pp-", 3);
    pp_client_destroy(&c);

    /* fire-and-forget never resends, so never adds an id */
    c = pp_client_new(two, 0);
    pp_client_set_timeout(c, 50);
    pp_client_set_linger(c, 0);
    assert_int_equal(pp_client_push_user(c, "9", "{}", NULL, NULL), -1);
    assert_int_equal(pp_client_status(c), PP_CLIENT_E_TIMEOUT); /* immediate: nobody is up */
    assert_string_equal(pp_client_message_id(c), "");
    pp_client_destroy(&c);
}

/*  Each bad input fails with PP_CLIENT_E_INPUT and a message containing `want`. */
static void expect_input_error(pp_client_t *c, int rc, const char *want)
{
    assert_int_equal(rc, -1);
    assert_int_equal(pp_client_status(c), PP_CLIENT_E_INPUT);
    if (!strstr(pp_client_error(c), want))
        fail_msg("error '%s' does not contain '%s'", pp_client_error(c), want);
}

static void test_bad_data(void **state)
{
    (void)state;
    pp_client_t *c = pp_client_new(s_absent, 0);
    pp_client_result_t r;
    expect_input_error(c, pp_client_push_group(c, "7", "[1,2]", NULL, &r),
                       "must be a JSON object, got an array");
    expect_input_error(c, pp_client_push_group(c, "7", "\"hi\"", NULL, &r), "got a string");
    expect_input_error(c, pp_client_push_group(c, "7", "42", NULL, &r), "got a number");
    expect_input_error(c, pp_client_push_group(c, "7", "null", NULL, &r), "got null");
    expect_input_error(c, pp_client_push_group(c, "7", "{\"a\":", NULL, &r), "bad JSON");
    expect_input_error(c, pp_client_push_group(c, "7", "{\"a\":1} x", NULL, &r), "bad JSON");
    expect_input_error(c, pp_client_push_group(c, "7", "{\"a\":1,\"a\":2}", NULL, &r), "duplicate");
    expect_input_error(c, pp_client_push_group(c, "7", "", NULL, &r), "bad JSON");
    expect_input_error(c, pp_client_push_group(c, "7", NULL, NULL, &r), "no data");
    assert_false(r.accepted);
    assert_string_equal(r.reason, "");
    pp_client_destroy(&c);
}

static void test_bad_ids(void **state)
{
    (void)state;
    pp_client_t *c = pp_client_new(s_absent, 0);
    const char *two[] = {"1", ""};
    const char *bad_utf8[] = {"\xff\xfe"};
    expect_input_error(c, pp_client_push_group(c, "", "{}", NULL, NULL), "empty");
    expect_input_error(c, pp_client_push_group(c, NULL, "{}", NULL, NULL), "empty");
    expect_input_error(c, pp_client_push_users(c, two, 0, "{}", NULL, NULL), "no user id");
    expect_input_error(c, pp_client_push_users(c, NULL, 3, "{}", NULL, NULL), "no user id");
    expect_input_error(c, pp_client_push_users(c, two, 2, "{}", NULL, NULL), "id 2 is empty");
    expect_input_error(c, pp_client_push_users(c, bad_utf8, 1, "{}", NULL, NULL), "UTF-8");
    expect_input_error(c, pp_client_push(c, 4, two, 1, "{}", NULL, NULL), "push type");
    expect_input_error(c, pp_client_push(c, PP_PUSH_USER, two, 2, "{}", NULL, NULL),
                       "exactly one id");
    pp_client_destroy(&c);
}

static void test_bad_raw(void **state)
{
    (void)state;
    pp_client_t *c = pp_client_new(s_absent, 0);
    const char *id[] = {"9"};
    expect_input_error(c, pp_client_push_raw(c, 3, id, 1, "\x91\x01", 2, NULL, NULL),
                       "must be a msgpack map");
    expect_input_error(c, pp_client_push_raw(c, 3, id, 1, "\x81\xa1", 2, NULL, NULL),
                       "not valid msgpack");
    expect_input_error(c, pp_client_push_raw(c, 3, id, 1, "\x80\xc0", 2, NULL, NULL),
                       "after the map");
    expect_input_error(c, pp_client_push_raw(c, 3, id, 1, NULL, 0, NULL, NULL), "no data");
    pp_client_destroy(&c);
}

static void test_bad_options(void **state)
{
    (void)state;
    pp_client_t *c = pp_client_new(s_absent, 0);
    pp_push_options_t o;
#define CASE(stmt, want)                                                                           \
    do {                                                                                           \
        memset(&o, 0, sizeof o);                                                                   \
        stmt;                                                                                      \
        expect_input_error(c, pp_client_push_user(c, "9", "{}", &o, NULL), want);                  \
    } while (0)
    CASE(o.channels = "sms", "channels");
    CASE(o.apns_priority = 7, "apns_priority");
    CASE((o.has_mqtt_qos = true, o.mqtt_qos = 3), "mqtt_qos");
    CASE((o.has_mqtt_qos = true, o.mqtt_qos = -1), "mqtt_qos");
    CASE((o.has_ttl = true, o.ttl = -5), "ttl");
    CASE((o.has_apns_expiration = true, o.apns_expiration = -1), "apns_expiration");
    CASE((o.has_ttl = true, o.has_apns_expiration = true), "exclusive");
    CASE(o.id = "", "option id is empty");
    CASE(o.id = "has space", "printable ASCII");
    CASE(o.id = "0123456789012345678901234567890123456789012345678901234567890123456789",
         "printable ASCII");
    CASE(o.apns_push_type = "shout", "apns_push_type");
    CASE(o.apns_collapse_id = "a\nb", "control");
    CASE(o.apns_collapse_id = "0123456789012345678901234567890123456789012345678901234567890123"
                              "4",
         "longer than 64");
#undef CASE
    pp_client_destroy(&c);
}

static void test_settings(void **state)
{
    (void)state;
    pp_client_t *c = pp_client_new(s_absent, 0);
    assert_int_equal(pp_client_set_timeout(c, -1), -1);
    assert_int_equal(pp_client_set_linger(c, -2), -1);
    assert_int_equal(pp_client_set_sndhwm(c, -1), -1);
    assert_int_equal(pp_client_set_curve(c, "short", "short", "short"), -1);
    assert_non_null(strstr(pp_client_error(c), "Z85"));
    /* a valid Z85 key pair (libzmq's test vectors) */
    const char *pub = "Yne@$w-vo<fVvi]a<NY6T1ed:M$fCG*[IaLV{hID";
    const char *sec = "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%cs";
    assert_int_equal(pp_client_set_curve(c, pub, pub, "D:)Q[IlAW!ahhC2ac:9*A}h:p?([4%wOTJ%JR%c~"),
                     -1);
    assert_int_equal(pp_client_set_curve(c, pub, pub, sec), 0);
    assert_int_equal(pp_client_set_sndhwm(c, 10), 0);
    assert_int_equal(pp_client_set_immediate(c, true), 0);
    assert_int_equal(pp_client_connect(c), 0);
    assert_int_equal(pp_client_connect(c), 0);
    /* what must precede the connection is refused after it */
    assert_int_equal(pp_client_set_sndhwm(c, 10), -1);
    assert_non_null(strstr(pp_client_error(c), "before connecting"));
    assert_int_equal(pp_client_set_immediate(c, false), -1);
    assert_int_equal(pp_client_set_curve(c, pub, pub, sec), -1);
    /* timeout and linger can change at any time */
    assert_int_equal(pp_client_set_timeout(c, 100), 0);
    assert_int_equal(pp_client_set_linger(c, 0), 0);
    pp_client_destroy(&c);
}

static void test_fire_timeout_without_broker(void **state)
{
    (void)state;
    pp_client_t *c = pp_client_new(s_absent, 0);
    pp_client_set_immediate(c, true);
    pp_client_set_timeout(c, 200);
    pp_client_set_linger(c, 0);
    pp_client_result_t r;
    assert_int_equal(pp_client_push_group(c, "7", "{\"a\":1}", NULL, &r), -1);
    assert_int_equal(pp_client_status(c), PP_CLIENT_E_TIMEOUT);
    assert_non_null(strstr(pp_client_error(c), "timeout"));
    assert_false(r.accepted);
    /* timeout 0: do not wait at all */
    pp_client_set_timeout(c, 0);
    assert_int_equal(pp_client_push_group(c, "7", "{\"a\":1}", NULL, &r), -1);
    assert_int_equal(pp_client_status(c), PP_CLIENT_E_TIMEOUT);
    assert_non_null(strstr(pp_client_error(c), "would block"));
    pp_client_destroy(&c);
}

static void test_fire_queue_full_without_broker(void **state)
{
    (void)state;
    /* Without immediate, pushes queue for the broker until the HWM, then time out. */
    pp_client_t *c = pp_client_new(s_absent, 0);
    pp_client_set_sndhwm(c, 5);
    pp_client_set_timeout(c, 100);
    pp_client_set_linger(c, 0);
    int sent = 0;
    for (int i = 0; i < 100 && pp_client_push_user(c, "9", "{}", NULL, NULL) == 0; i++)
        sent++;
    assert_true(sent >= 1);
    assert_true(sent < 100);
    assert_int_equal(pp_client_status(c), PP_CLIENT_E_TIMEOUT);
    pp_client_destroy(&c);
}

static void test_ack_timeout_without_broker(void **state)
{
    (void)state;
    pp_client_t *c = pp_client_new(s_absent, PP_CLIENT_ACK);
    pp_client_set_timeout(c, 200);
    pp_client_set_linger(c, 0);
    pp_client_result_t r;
    for (int i = 0; i < 2; i++) { /* twice: the socket is rebuilt after a timeout */
        assert_int_equal(pp_client_push_user(c, "9", "{\"a\":1}", NULL, &r), -1);
        assert_int_equal(pp_client_status(c), PP_CLIENT_E_TIMEOUT);
        assert_non_null(strstr(pp_client_error(c), "timeout"));
        assert_false(r.accepted);
        assert_string_equal(r.reason, "");
    }
    pp_client_destroy(&c);
}

int main(void)
{
    const char *absent = getenv("PP_ABSENT_BROKER");
    if (absent && strlen(absent) < sizeof s_absent) strcpy(s_absent, absent);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_bad_addresses),
        cmocka_unit_test(test_endpoints),
        cmocka_unit_test(test_broker_lists),
        cmocka_unit_test(test_generated_ids),
        cmocka_unit_test(test_bad_data),
        cmocka_unit_test(test_bad_ids),
        cmocka_unit_test(test_bad_raw),
        cmocka_unit_test(test_bad_options),
        cmocka_unit_test(test_settings),
        cmocka_unit_test(test_fire_timeout_without_broker),
        cmocka_unit_test(test_fire_queue_full_without_broker),
        cmocka_unit_test(test_ack_timeout_without_broker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

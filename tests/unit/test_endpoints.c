/* pp_endpoints: one address gives every socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pp_endpoints.h"

static void test_tcp(void **state)
{
    (void)state;
    char ep[128];
    assert_int_equal(pp_endpoint("tcp://10.1.2.3:5560", PP_EP_INTAKE, ep, sizeof ep), 0);
    assert_string_equal(ep, "tcp://10.1.2.3:5560");
    assert_int_equal(pp_endpoint("tcp://broker:5560", PP_EP_MQTT_OUT, ep, sizeof ep), 0);
    assert_string_equal(ep, "tcp://broker:5566");
    assert_int_equal(pp_endpoint("tcp://[::1]:7000", PP_EP_RESOLVE, ep, sizeof ep), 0);
    assert_string_equal(ep, "tcp://[::1]:7002");
}

static void test_ipc(void **state)
{
    (void)state;
    char ep[128];
    assert_int_equal(pp_endpoint("ipc:///run/pp", PP_EP_APNS_IN, ep, sizeof ep), 0);
    assert_string_equal(ep, "ipc:///run/pp-apns_in");
}

static void test_bad(void **state)
{
    (void)state;
    char ep[16];
    assert_int_equal(pp_endpoint("udp://x:1", PP_EP_INTAKE, ep, sizeof ep), -1);
    assert_int_equal(pp_endpoint("tcp://x", PP_EP_INTAKE, ep, sizeof ep), -1);
    assert_int_equal(pp_endpoint("tcp://x:65533", PP_EP_INTAKE, ep, sizeof ep), -1);
    assert_int_equal(pp_endpoint("tcp://x:abc", PP_EP_INTAKE, ep, sizeof ep), -1);
    assert_int_equal(pp_endpoint("tcp://a-very-long-host-name:5560", PP_EP_INTAKE, ep, sizeof ep),
                     -1);
    assert_int_equal(pp_endpoint(NULL, PP_EP_INTAKE, ep, sizeof ep), -1);
    assert_string_equal(pp_endpoint_name(PP_EP_APNS_OUT), "apns_out");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tcp),
        cmocka_unit_test(test_ipc),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

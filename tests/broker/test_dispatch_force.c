/*  pp_dispatch_enqueue_force and pp_dispatch_new_rcvhwm, the two additions the broker made
    to the hub side of the link: forced jobs go past the bounds (an output already read is
    never dropped), plain enqueues still fail while full, and the receive HWM is checked. */
#include "pp_dispatch.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

static void s_job(zmq_msg_t *m, const char *text)
{
    zmq_msg_init_size(m, strlen(text));
    memcpy(zmq_msg_data(m), text, strlen(text));
}

static void test_force_passes_bounds(void **state)
{
    (void)state;
    pp_dispatch_t *d = pp_dispatch_new("apns", "tcp://127.0.0.1:*", NULL, NULL, 0, 0, 2, 1 << 20);
    assert_non_null(d);
    zmq_msg_t m;
    s_job(&m, "one");
    assert_int_equal(pp_dispatch_enqueue(d, &m), 0);
    assert_int_equal(zmq_msg_size(&m), 0); /* moved */
    zmq_msg_close(&m);
    s_job(&m, "two");
    assert_int_equal(pp_dispatch_enqueue(d, &m), 0);
    zmq_msg_close(&m);
    assert_true(pp_dispatch_full(d));
    s_job(&m, "three");
    assert_int_equal(pp_dispatch_enqueue(d, &m), -1);
    assert_int_equal(zmq_msg_size(&m), 5); /* untouched when refused */
    assert_int_equal(pp_dispatch_enqueue_force(d, &m), 0);
    assert_int_equal(zmq_msg_size(&m), 0);
    zmq_msg_close(&m);
    assert_int_equal(pp_dispatch_pending(d), 3);
    assert_int_equal(pp_dispatch_pending_bytes(d), 3 + 3 + 5);
    assert_true(pp_dispatch_full(d));
    pp_dispatch_destroy(&d);
    assert_null(d);
}

static void test_rcvhwm_checked(void **state)
{
    (void)state;
    assert_null(
        pp_dispatch_new_rcvhwm("resolve", "tcp://127.0.0.1:*", NULL, NULL, 0, 0, 10, 1000, 0));
    pp_dispatch_t *d =
        pp_dispatch_new_rcvhwm("resolve", "tcp://127.0.0.1:*", NULL, NULL, 0, 0, 10, 1000, 20);
    assert_non_null(d);
    int hwm = 0;
    size_t len = sizeof hwm;
    assert_int_equal(zmq_getsockopt(pp_dispatch_socket(d), ZMQ_RCVHWM, &hwm, &len), 0);
    assert_int_equal(hwm, 20);
    pp_dispatch_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_force_passes_bounds),
        cmocka_unit_test(test_rcvhwm_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

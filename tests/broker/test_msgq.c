/*  Unit tests of pp_msgq: FIFO order, both bounds, moves without copies, and flushing to a
    real PUSH socket that says EAGAIN when its peer's queue is full. */
#include "pp_msgq.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#include <cmocka.h>

static void s_msg(zmq_msg_t *m, const char *text)
{
    assert_int_equal(zmq_msg_init_size(m, strlen(text)), 0);
    memcpy(zmq_msg_data(m), text, strlen(text));
}

static void test_fifo_order(void **state)
{
    (void)state;
    pp_msgq_t *q = pp_msgq_new(4, 1000);
    assert_non_null(q);
    const char *words[] = {"one", "two", "three"};
    for (int i = 0; i < 3; i++) {
        zmq_msg_t m;
        s_msg(&m, words[i]);
        assert_int_equal(pp_msgq_push(q, &m), 0);
        assert_int_equal(zmq_msg_size(&m), 0); /* moved, not copied */
        zmq_msg_close(&m);
    }
    assert_int_equal(pp_msgq_size(q), 3);
    assert_int_equal(pp_msgq_bytes(q), 3 + 3 + 5);
    for (int i = 0; i < 3; i++) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        assert_int_equal(pp_msgq_pop(q, &m), 0);
        assert_int_equal(zmq_msg_size(&m), strlen(words[i]));
        assert_memory_equal(zmq_msg_data(&m), words[i], strlen(words[i]));
        zmq_msg_close(&m);
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    assert_int_equal(pp_msgq_pop(q, &m), -1);
    assert_int_equal(pp_msgq_size(q), 0);
    assert_int_equal(pp_msgq_bytes(q), 0);
    zmq_msg_close(&m);
    pp_msgq_destroy(&q);
    assert_null(q);
}

static void test_message_bound(void **state)
{
    (void)state;
    pp_msgq_t *q = pp_msgq_new(2, 1 << 20);
    zmq_msg_t m;
    for (int i = 0; i < 2; i++) {
        s_msg(&m, "x");
        assert_true(pp_msgq_has_room(q));
        assert_int_equal(pp_msgq_push(q, &m), 0);
        zmq_msg_close(&m);
    }
    assert_false(pp_msgq_has_room(q));
    s_msg(&m, "refused");
    assert_int_equal(pp_msgq_push(q, &m), -1);
    assert_int_equal(zmq_msg_size(&m), 7); /* left untouched */
    zmq_msg_close(&m);
    /* wrap around the ring: pop one, push one, order kept */
    zmq_msg_init(&m);
    assert_int_equal(pp_msgq_pop(q, &m), 0);
    zmq_msg_close(&m);
    s_msg(&m, "z");
    assert_int_equal(pp_msgq_push(q, &m), 0);
    zmq_msg_close(&m);
    zmq_msg_init(&m);
    assert_int_equal(pp_msgq_pop(q, &m), 0);
    assert_memory_equal(zmq_msg_data(&m), "x", 1);
    assert_int_equal(pp_msgq_pop(q, &m), 0);
    assert_memory_equal(zmq_msg_data(&m), "z", 1);
    zmq_msg_close(&m);
    pp_msgq_destroy(&q); /* empty */
}

static void test_byte_bound(void **state)
{
    (void)state;
    pp_msgq_t *q = pp_msgq_new(100, 10);
    zmq_msg_t m;
    s_msg(&m, "123456");
    assert_int_equal(pp_msgq_push(q, &m), 0);
    zmq_msg_close(&m);
    assert_true(pp_msgq_has_room(q)); /* 6 < 10 */
    s_msg(&m, "123456");
    assert_int_equal(pp_msgq_push(q, &m), 0); /* may pass the bound by one message */
    zmq_msg_close(&m);
    assert_int_equal(pp_msgq_bytes(q), 12);
    assert_false(pp_msgq_has_room(q));
    s_msg(&m, "1");
    assert_int_equal(pp_msgq_push(q, &m), -1);
    zmq_msg_close(&m);
    /* destroy closes what is held (ASan sees a leak otherwise) */
    pp_msgq_destroy(&q);
}

static void test_big_message_alone(void **state)
{
    (void)state;
    pp_msgq_t *q = pp_msgq_new(10, 4);
    zmq_msg_t m;
    s_msg(&m, "larger than the byte bound");
    assert_int_equal(pp_msgq_push(q, &m), 0);
    zmq_msg_close(&m);
    assert_false(pp_msgq_has_room(q));
    pp_msgq_destroy(&q);
}

static void test_bad_limits(void **state)
{
    (void)state;
    assert_null(pp_msgq_new(0, 10));
    assert_null(pp_msgq_new(10, 0));
}

static void test_flush_until_eagain(void **state)
{
    (void)state;
    void *ctx = zmq_ctx_new();
    void *push = zmq_socket(ctx, ZMQ_PUSH);
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    int hwm = 5, zero = 0;
    zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(pull, ZMQ_LINGER, &zero, sizeof zero);
    assert_int_equal(zmq_bind(pull, "inproc://msgq"), 0);
    assert_int_equal(zmq_connect(push, "inproc://msgq"), 0);

    enum { N = 50 };
    pp_msgq_t *q = pp_msgq_new(N, 1 << 20);
    for (int i = 0; i < N; i++) {
        char text[16];
        snprintf(text, sizeof text, "m%d", i);
        zmq_msg_t m;
        s_msg(&m, text);
        assert_int_equal(pp_msgq_push(q, &m), 0);
        zmq_msg_close(&m);
    }
    /* the pipe holds at most the two HWMs (inproc adds them up): EAGAIN before N */
    int sent = pp_msgq_flush(q, push);
    assert_true(sent > 0 && sent < N);
    assert_int_equal(pp_msgq_size(q), N - sent);
    int got = 0;
    for (;;) {
        char buf[16];
        int n = zmq_recv(pull, buf, sizeof buf - 1, ZMQ_DONTWAIT);
        if (n < 0) {
            int more = pp_msgq_flush(q, push);
            assert_true(more >= 0);
            if (more == 0 && pp_msgq_size(q) == 0) break;
            continue;
        }
        buf[n] = '\0';
        char want[16];
        snprintf(want, sizeof want, "m%d", got);
        assert_string_equal(buf, want); /* in order, nothing lost */
        got++;
    }
    assert_int_equal(got, N);
    pp_msgq_destroy(&q);
    zmq_close(push);
    zmq_close(pull);
    zmq_ctx_term(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fifo_order), cmocka_unit_test(test_message_bound),
        cmocka_unit_test(test_byte_bound), cmocka_unit_test(test_big_message_alone),
        cmocka_unit_test(test_bad_limits), cmocka_unit_test(test_flush_until_eagain),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

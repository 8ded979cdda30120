/*  pp_retryq: due order, ties in insertion order, pop_due respects time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pp_retryq.h"

#include <stdlib.h>

static void test_order(void **state)
{
    (void)state;
    pp_retryq_t *q = pp_retryq_new();
    assert_non_null(q);
    assert_int_equal(pp_retryq_next_due(q), UINT64_MAX);
    assert_null(pp_retryq_pop(q));
    int items[6];
    uint64_t due[6] = {50, 10, 30, 10, 70, 20};
    for (int i = 0; i < 6; i++)
        assert_int_equal(pp_retryq_push(q, due[i], &items[i]), 0);
    assert_int_equal(pp_retryq_size(q), 6);
    assert_int_equal(pp_retryq_next_due(q), 10);
    assert_null(pp_retryq_pop_due(q, 9));
    assert_ptr_equal(pp_retryq_pop_due(q, 10), &items[1]); /* ties: first pushed first */
    assert_ptr_equal(pp_retryq_pop_due(q, 10), &items[3]);
    assert_null(pp_retryq_pop_due(q, 19));
    assert_ptr_equal(pp_retryq_pop_due(q, 100), &items[5]);
    assert_ptr_equal(pp_retryq_pop_due(q, 100), &items[2]);
    assert_ptr_equal(pp_retryq_pop_due(q, 100), &items[0]);
    assert_ptr_equal(pp_retryq_pop_due(q, 100), &items[4]);
    assert_null(pp_retryq_pop_due(q, 100));
    assert_int_equal(pp_retryq_size(q), 0);
    pp_retryq_destroy(&q);
    assert_null(q);
}

static void test_many_random(void **state)
{
    (void)state;
    pp_retryq_t *q = pp_retryq_new();
    enum { N = 20000 };
    static uint64_t due[N];
    srand(7);
    for (int i = 0; i < N; i++) {
        due[i] = (uint64_t)(rand() % 1000);
        assert_int_equal(pp_retryq_push(q, due[i], &due[i]), 0);
    }
    uint64_t last = 0;
    for (int i = 0; i < N; i++) {
        uint64_t *p = pp_retryq_pop(q);
        assert_non_null(p);
        assert_true(*p >= last);
        last = *p;
    }
    assert_null(pp_retryq_pop(q));
    pp_retryq_destroy(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),
        cmocka_unit_test(test_many_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

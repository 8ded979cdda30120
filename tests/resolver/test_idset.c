/*  Unit tests of pp_idset: membership, growth, the size bound. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "pp_idset.h"

static void test_idset(void **state)
{
    (void)state;
    pp_idset_t *s = pp_idset_new(50000);
    char id[32];
    for (int i = 0; i < 50000; i++) {
        int n = snprintf(id, sizeof id, "u%d", i);
        assert_int_equal(pp_idset_add(s, id, (size_t)n), 1);
    }
    assert_int_equal(pp_idset_size(s), 50000);
    for (int i = 0; i < 50000; i++) {
        int n = snprintf(id, sizeof id, "u%d", i);
        assert_true(pp_idset_has(s, id, (size_t)n));
        assert_int_equal(pp_idset_add(s, id, (size_t)n), 0);
    }
    assert_false(pp_idset_has(s, "u50000", 6));
    assert_int_equal(pp_idset_add(s, "u50000", 6), -1); /* full */
    pp_idset_reset(s);
    assert_int_equal(pp_idset_size(s), 0);
    assert_false(pp_idset_has(s, "u1", 2));
    assert_int_equal(pp_idset_add(s, "", 0), 1);
    pp_idset_destroy(&s);
    assert_null(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_idset)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}

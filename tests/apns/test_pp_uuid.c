/*  pp_uuid: canonical v4 form, variant bits, no repeats. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pp_uuid.h"

#include <stdlib.h>
#include <string.h>

static int s_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static void test_form(void **state)
{
    (void)state;
    char u[PP_UUID_LEN + 1];
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(pp_uuid_v4(u), 0);
        assert_int_equal(strlen(u), PP_UUID_LEN);
        assert_true(pp_uuid_is_v4(u, strlen(u)));
        assert_int_equal(u[14], '4');
        assert_non_null(strchr("89ab", u[19]));
        for (int k = 0; k < PP_UUID_LEN; k++)
            assert_true(u[k] == '-' || (u[k] >= '0' && u[k] <= '9') ||
                        (u[k] >= 'a' && u[k] <= 'f'));
    }
}

static void test_is_v4(void **state)
{
    (void)state;
    assert_true(pp_uuid_is_v4("123e4567-e89b-42d3-a456-426614174000", 36));
    assert_false(pp_uuid_is_v4("123e4567-e89b-12d3-a456-426614174000", 36)); /* v1 */
    assert_false(pp_uuid_is_v4("123e4567-e89b-42d3-c456-426614174000", 36)); /* variant */
    assert_false(pp_uuid_is_v4("123e4567e89b-42d3-a456-426614174000-", 36));
    assert_false(pp_uuid_is_v4("123e4567-e89b-42d3-a456-42661417400", 35));
    assert_false(pp_uuid_is_v4("123e4567-e89b-42d3-a456-42661417400g", 36));
}

static void test_unique(void **state)
{
    (void)state;
    enum { N = 50000 };
    char(*u)[PP_UUID_LEN + 1] = malloc(N * sizeof *u);
    assert_non_null(u);
    for (int i = 0; i < N; i++)
        assert_int_equal(pp_uuid_v4(u[i]), 0);
    qsort(u, N, sizeof *u, s_cmp);
    for (int i = 1; i < N; i++)
        assert_int_not_equal(strcmp(u[i - 1], u[i]), 0);
    free(u);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form),
        cmocka_unit_test(test_is_v4),
        cmocka_unit_test(test_unique),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

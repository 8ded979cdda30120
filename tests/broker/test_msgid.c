/*  Unit tests of pp_msgid: ids are well-formed, unique, and carry the instance id. */
#include "pp_msgid.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

static void test_well_formed(void **state)
{
    (void)state;
    pp_msgid_t *g = pp_msgid_new(NULL);
    assert_non_null(g);
    char id[PP_MSGID_LEN + 1];
    memset(id, 'x', sizeof id);
    pp_msgid_next(g, id);
    assert_int_equal(strlen(id), PP_MSGID_LEN);
    assert_true(pp_msgid_valid(id, strlen(id)));
    char prefix[17];
    snprintf(prefix, sizeof prefix, "%016llx", (unsigned long long)pp_msgid_instance(g));
    assert_memory_equal(id, prefix, 16);
    pp_msgid_destroy(&g);
    assert_null(g);
}

static int s_cmp(const void *a, const void *b)
{
    return memcmp(a, b, PP_MSGID_LEN + 1);
}

static void test_unique_within(void **state)
{
    (void)state;
    enum { N = 100000 };
    char(*ids)[PP_MSGID_LEN + 1] = malloc(N * sizeof *ids);
    assert_non_null(ids);
    pp_msgid_t *g = pp_msgid_new(NULL);
    for (int i = 0; i < N; i++) {
        pp_msgid_next(g, ids[i]);
        assert_true(pp_msgid_valid(ids[i], PP_MSGID_LEN));
    }
    qsort(ids, N, sizeof *ids, s_cmp);
    for (int i = 1; i < N; i++)
        assert_true(memcmp(ids[i - 1], ids[i], PP_MSGID_LEN) != 0);
    pp_msgid_destroy(&g);
    free(ids);
}

static void test_unique_across_instances(void **state)
{
    (void)state;
    /* Two generators started in the same microsecond differ by their random instance. */
    pp_msgid_t *a = pp_msgid_new(NULL);
    pp_msgid_t *b = pp_msgid_new(NULL);
    assert_true(pp_msgid_instance(a) != pp_msgid_instance(b));
    char ia[PP_MSGID_LEN + 1], ib[PP_MSGID_LEN + 1];
    pp_msgid_next(a, ia);
    pp_msgid_next(b, ib);
    assert_string_not_equal(ia, ib);
    pp_msgid_destroy(&a);
    pp_msgid_destroy(&b);
}

static void test_configured_instance(void **state)
{
    (void)state;
    uint64_t inst = 0;
    assert_int_equal(pp_msgid_parse_instance("00000000deadBEEF", &inst), 0);
    assert_true(inst == 0xdeadbeefULL);
    assert_int_equal(pp_msgid_parse_instance("7", &inst), 0);
    assert_true(inst == 7);
    assert_int_equal(pp_msgid_parse_instance("", &inst), -1);
    assert_int_equal(pp_msgid_parse_instance("00000000000000001", &inst), -1);
    assert_int_equal(pp_msgid_parse_instance("12g4", &inst), -1);
    assert_int_equal(pp_msgid_parse_instance(NULL, &inst), -1);

    uint64_t fixed = 0x0123456789abcdefULL;
    pp_msgid_t *g = pp_msgid_new(&fixed);
    char first[PP_MSGID_LEN + 1], second[PP_MSGID_LEN + 1];
    pp_msgid_next(g, first);
    pp_msgid_next(g, second);
    assert_memory_equal(first, "0123456789abcdef", 16);
    /* the counter goes up by one per id */
    unsigned long long c1 = strtoull(first + 16, NULL, 16);
    unsigned long long c2 = strtoull(second + 16, NULL, 16);
    assert_true(c2 == c1 + 1);
    pp_msgid_destroy(&g);
}

static void test_counter_seeded_from_clock(void **state)
{
    (void)state;
    uint64_t fixed = 1;
    pp_msgid_t *g = pp_msgid_new(&fixed);
    char id[PP_MSGID_LEN + 1];
    pp_msgid_next(g, id);
    unsigned long long c = strtoull(id + 16, NULL, 16);
    /* later than 2020-01-01 in microseconds: a restarted broker on the same instance id
       does not start again from 0 */
    assert_true(c > 1577836800000000ULL);
    pp_msgid_destroy(&g);
}

static void test_valid(void **state)
{
    (void)state;
    assert_true(pp_msgid_valid("0123456789abcdef0123456789abcdef", 32));
    assert_false(pp_msgid_valid("0123456789abcdef0123456789abcde", 31));
    assert_false(pp_msgid_valid("0123456789ABCDEF0123456789abcdef", 32));
    assert_false(pp_msgid_valid("0123456789abcdef0123456789abcdeg", 32));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_well_formed),
        cmocka_unit_test(test_unique_within),
        cmocka_unit_test(test_unique_across_instances),
        cmocka_unit_test(test_configured_instance),
        cmocka_unit_test(test_counter_seeded_from_clock),
        cmocka_unit_test(test_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

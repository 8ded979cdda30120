/*  pp_apns_dns: IP literals answered at once, names through the thread and the descriptor,
    abandoned lookups freed by their thread, bad hosts refused. (The hanging DNS itself is
    tested black-box by test_apns_dns.py.) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pp_apns_dns.h"

#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void test_literal(void **state)
{
    (void)state;
    char err[128];
    pp_apns_dns_t *d = pp_apns_dns_start("127.0.0.1", 443, err, sizeof err);
    assert_non_null(d);
    assert_int_equal(pp_apns_dns_running(), 0); /* no thread for a literal */
    struct addrinfo *res = NULL;
    int rc = -1;
    assert_int_equal(pp_apns_dns_result(d, &res, &rc), 1);
    assert_int_equal(rc, 0);
    assert_non_null(res);
    assert_int_equal(res->ai_family, AF_INET);
    freeaddrinfo(res);
    pp_apns_dns_destroy(&d);
    assert_null(d);
}

static void test_name(void **state)
{
    (void)state;
    char err[128];
    pp_apns_dns_t *d = pp_apns_dns_start("localhost", 443, err, sizeof err);
    assert_non_null(d);
    struct pollfd p = {pp_apns_dns_fd(d), POLLIN, 0};
    assert_int_equal(poll(&p, 1, 5000), 1); /* the descriptor says when */
    struct addrinfo *res = NULL;
    int rc = -1;
    assert_int_equal(pp_apns_dns_result(d, &res, &rc), 1);
    assert_int_equal(rc, 0);
    assert_non_null(res);
    freeaddrinfo(res);
    assert_int_equal(poll(&p, 1, 0), 0); /* drained */
    pp_apns_dns_destroy(&d);
    for (int i = 0; i < 500 && pp_apns_dns_running() > 0; i++)
        usleep(10000);
    assert_int_equal(pp_apns_dns_running(), 0);
}

static void test_abandon(void **state)
{
    (void)state;
    char err[128];
    for (int i = 0; i < 20; i++) {
        pp_apns_dns_t *d = pp_apns_dns_start("localhost", 443, err, sizeof err);
        assert_non_null(d);
        pp_apns_dns_destroy(&d); /* usually still running: its thread frees it */
    }
    for (int i = 0; i < 500 && pp_apns_dns_running() > 0; i++)
        usleep(10000);
    assert_int_equal(pp_apns_dns_running(), 0);
}

static void test_bad(void **state)
{
    (void)state;
    char err[128], longname[300];
    assert_null(pp_apns_dns_start("", 443, err, sizeof err));
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    assert_null(pp_apns_dns_start(longname, 443, err, sizeof err));
    /* A name that does not exist: done, no address, getaddrinfo's error. */
    pp_apns_dns_t *d = pp_apns_dns_start("no-such-host.invalid", 443, err, sizeof err);
    assert_non_null(d);
    struct pollfd p = {pp_apns_dns_fd(d), POLLIN, 0};
    if (poll(&p, 1, 15000) == 1) {
        struct addrinfo *res = NULL;
        int rc = 0;
        assert_int_equal(pp_apns_dns_result(d, &res, &rc), 1);
        assert_null(res);
        assert_int_not_equal(rc, 0);
    }
    pp_apns_dns_destroy(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_abandon),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

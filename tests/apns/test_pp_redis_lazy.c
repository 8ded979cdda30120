/*  pp_redis_lazy: no Redis configured gives no connection; a refused connect is counted
    once and not tried again for the retry time; drop allows the next connect at once; a
    connection is made on first use and kept. The "server" is a local socket: bound but not
    listening (refuses), or listening (the TCP handshake completes in the backlog, and a
    connection without password or db sends no command). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pp_redis_lazy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

/* A TCP socket on 127.0.0.1 and a free port; listening or not. Returns the fd. */
static int s_socket(bool listening, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    if (listening) assert_int_equal(listen(fd, 8), 0);
    return fd;
}

static pp_apns_redis_opts_t s_opts(int port)
{
    pp_apns_redis_opts_t o = {.enabled = true, .port = port, .timeout_ms = 500};
    snprintf(o.host, sizeof o.host, "127.0.0.1");
    return o;
}

static void test_not_configured(void **state)
{
    (void)state;
    pp_metrics_t *m = pp_metrics_new("test");
    pp_metric_t *errors = pp_metrics_counter(m, "errors_total", "errors", NULL);
    pp_redis_lazy_t *r = pp_redis_lazy_new(NULL, "test_redis_down", errors);
    assert_non_null(r);
    assert_false(pp_redis_lazy_enabled(r));
    assert_null(pp_redis_lazy_get(r, NULL));
    pp_redis_lazy_drop(r, 0); /* nothing open: harmless */
    assert_null(pp_redis_lazy_get(r, "queued=1"));
    assert_int_equal(pp_metric_get(errors), 0);
    pp_redis_lazy_destroy(&r);
    assert_null(r);
    pp_redis_lazy_destroy(&r); /* twice: harmless */
    pp_metrics_destroy(&m);
}

static void test_refused_waits(void **state)
{
    (void)state;
    int port = 0;
    int fd = s_socket(false, &port); /* bound, not listening: connects are refused */
    pp_metrics_t *m = pp_metrics_new("test");
    pp_metric_t *errors = pp_metrics_counter(m, "errors_total", "errors", NULL);
    pp_apns_redis_opts_t o = s_opts(port);
    pp_redis_lazy_t *r = pp_redis_lazy_new(&o, "test_redis_down", errors);
    assert_true(pp_redis_lazy_enabled(r));
    assert_null(pp_redis_lazy_get(r, "queued=3"));
    assert_int_equal(pp_metric_get(errors), 1);
    /* within the retry time: no new attempt, nothing counted */
    for (int i = 0; i < 5; i++)
        assert_null(pp_redis_lazy_get(r, NULL));
    assert_int_equal(pp_metric_get(errors), 1);
    /* drop(0) lets the next get try at once (and fail again: still refused) */
    pp_redis_lazy_drop(r, 0);
    assert_null(pp_redis_lazy_get(r, NULL));
    assert_int_equal(pp_metric_get(errors), 2);
    pp_redis_lazy_destroy(&r);
    pp_metrics_destroy(&m);
    close(fd);
}

static void test_connects_once_and_keeps(void **state)
{
    (void)state;
    int port = 0;
    int fd = s_socket(true, &port);
    pp_apns_redis_opts_t o = s_opts(port);
    pp_redis_lazy_t *r = pp_redis_lazy_new(&o, "test_redis_down", NULL); /* no counter */
    redisContext *c = pp_redis_lazy_get(r, NULL);
    assert_non_null(c);
    assert_ptr_equal(pp_redis_lazy_get(r, NULL), c); /* kept */
    /* dropped with a retry time: no connection until it has passed */
    pp_redis_lazy_drop(r, 60000);
    assert_null(pp_redis_lazy_get(r, NULL));
    /* dropped without one: connects again at once */
    pp_redis_lazy_drop(r, 0);
    assert_non_null(pp_redis_lazy_get(r, NULL));
    pp_redis_lazy_destroy(&r);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_not_configured),
        cmocka_unit_test(test_refused_waits),
        cmocka_unit_test(test_connects_once_and_keeps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

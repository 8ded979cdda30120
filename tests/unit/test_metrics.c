/* pp_metrics: counters, gauges, rendering, and the HTTP endpoint on a real socket. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pp_metrics.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void test_render(void **state)
{
    (void)state;
    pp_metrics_t *m = pp_metrics_new("unit");
    pp_metric_t *a = pp_metrics_counter(m, "rejected_total", "Frames rejected", "reason=\"x\"");
    pp_metric_t *b = pp_metrics_counter(m, "rejected_total", "Frames rejected", "reason=\"y\"");
    pp_metric_t *g = pp_metrics_gauge(m, "queue_depth", "Depth", NULL);
    assert_ptr_equal(a, pp_metrics_counter(m, "rejected_total", "Frames rejected", "reason=\"x\""));
    pp_metric_add(a, 3);
    pp_metric_inc(b);
    pp_metric_set(g, 42);
    char *text = pp_metrics_render(m);
    assert_non_null(strstr(text, "# TYPE pushpipe_rejected_total counter"));
    assert_non_null(strstr(text, "pushpipe_rejected_total{proc=\"unit\",reason=\"x\"} 3\n"));
    assert_non_null(strstr(text, "pushpipe_rejected_total{proc=\"unit\",reason=\"y\"} 1\n"));
    assert_non_null(strstr(text, "pushpipe_queue_depth{proc=\"unit\"} 42\n"));
    /* HELP/TYPE appear once per name. */
    char *first = strstr(text, "# TYPE pushpipe_rejected_total");
    assert_null(strstr(first + 1, "# TYPE pushpipe_rejected_total"));
    free(text);
    assert_int_equal(pp_metrics_value(m, "rejected_total", "reason=\"x\""), 3);
    assert_int_equal(pp_metrics_value(m, "nope", NULL), -1);
    pp_metrics_destroy(&m);
    assert_null(m);
}

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static void test_http(void **state)
{
    (void)state;
    pp_metrics_t *m = pp_metrics_new("unit");
    pp_metric_add(pp_metrics_counter(m, "sent_total", "Sent", NULL), 7);
    int port = s_free_port();
    assert_int_equal(pp_metrics_serve(m, "127.0.0.1", port), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char req[] = "GET /metrics HTTP/1.0\r\n\r\n";
    assert_int_equal(write(fd, req, sizeof req - 1), (ssize_t)(sizeof req - 1));
    char buf[8192];
    size_t got = 0;
    ssize_t n;
    while ((n = read(fd, buf + got, sizeof buf - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    close(fd);
    assert_non_null(strstr(buf, "200 OK"));
    assert_non_null(strstr(buf, "pushpipe_sent_total{proc=\"unit\"} 7"));
    /* A port that is taken fails cleanly. */
    pp_metrics_t *m2 = pp_metrics_new("unit2");
    assert_int_equal(pp_metrics_serve(m2, "127.0.0.1", port), -1);
    pp_metrics_destroy(&m2);
    pp_metrics_destroy(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render),
        cmocka_unit_test(test_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

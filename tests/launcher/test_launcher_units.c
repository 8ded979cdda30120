/*  The launcher's pure parts: the plan read from config (stage names, ports, limits), the
    Prometheus text parser, and the HTTP scrape against a real pp_metrics server. */
#include "pp_metrics.h"
#include "pp_plan.h"
#include "pp_scrape.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static pp_config_t *s_config(const char *text)
{
    char err[256];
    pp_config_t *c = pp_config_from_string(text, err, sizeof err);
    assert_non_null(c);
    return c;
}

static void test_plan_defaults(void **state)
{
    (void)state;
    pp_config_t *c = s_config("{}");
    static pp_plan_t plan;
    pp_plan_read(c, &plan);
    assert_true(pp_config_ok(c));
    assert_int_equal(plan.n_stages, 5);
    const char *names[] = {"broker", "resolver-1", "resolver-2", "apns-sender-1", "mqtt-sender-1"};
    for (int i = 0; i < 5; i++) {
        assert_string_equal(plan.stages[i].name, names[i]);
        assert_int_equal(plan.stages[i].metrics_port, 9601 + i);
    }
    assert_int_equal(plan.launcher_metrics_port, 9600);
    assert_string_equal(plan.stages[3].program, "pushpipe-apns-sender");
    assert_string_equal(plan.stages[3].section, "apns_sender");
    assert_int_equal(plan.restart_backoff_ms, 500);
    pp_config_destroy(&c);
}

static void test_plan_slots_stay(void **state)
{
    (void)state;
    /* Without a broker on this host, the resolvers keep their ports. */
    pp_config_t *c =
        s_config("{\"launcher\": {\"broker\": false, \"resolvers\": 3, "
                 "\"apns_senders\": 0, \"mqtt_senders\": 2, \"metrics_base_port\": 7000}}");
    static pp_plan_t plan;
    pp_plan_read(c, &plan);
    assert_true(pp_config_ok(c));
    assert_int_equal(plan.n_stages, 5);
    assert_string_equal(plan.stages[0].name, "resolver-1");
    assert_int_equal(plan.stages[0].metrics_port, 7002);
    assert_string_equal(plan.stages[4].name, "mqtt-sender-2");
    assert_int_equal(plan.stages[4].metrics_port, 7006);
    pp_config_destroy(&c);
}

static void s_plan_error(const char *json, const char *needle)
{
    pp_config_t *c = s_config(json);
    static pp_plan_t plan;
    pp_plan_read(c, &plan);
    assert_false(pp_config_ok(c));
    if (!strstr(pp_config_error(c), needle))
        fail_msg("\"%s\" lacks \"%s\"", pp_config_error(c), needle);
    pp_config_destroy(&c);
}

static void test_plan_errors(void **state)
{
    (void)state;
    s_plan_error("{\"launcher\": {\"resolvers\": 99}}", "launcher.resolvers");
    s_plan_error("{\"launcher\": {\"resolvers\": -1}}", "launcher.resolvers");
    s_plan_error("{\"launcher\": {\"metrics_base_port\": 65533}}", "launcher.metrics_base_port");
    s_plan_error("{\"launcher\": {\"restart_backoff_ms\": 0}}", "launcher.restart_backoff_ms");
    s_plan_error("{\"launcher\": {\"restart_backoff_ms\": 1000, \"restart_backoff_max_ms\": 10}}",
                 "launcher.restart_backoff_max_ms");
    s_plan_error("{\"launcher\": {\"broker\": false, \"resolvers\": 0, \"apns_senders\": 0, "
                 "\"mqtt_senders\": 0}}",
                 "nothing to run");
    s_plan_error("{\"launcher\": {\"bin_dir\": 5}}", "launcher.bin_dir");
}

static void test_prom_parse(void **state)
{
    (void)state;
    const char *text = "# HELP pushpipe_rejected_total Client frames rejected\n"
                       "# TYPE pushpipe_rejected_total counter\n"
                       "pushpipe_rejected_total{proc=\"broker\",reason=\"bad_utf8\"} 3\n"
                       "pushpipe_rejected_total{proc=\"broker\",reason=\"a}b \\\"q\\\"\"} 4\r\n"
                       "pushpipe_accepted_total{proc=\"broker\"} 1e3\n"
                       "pushpipe_up 1 1700000000000\n"
                       "garbage line\n"
                       "pushpipe_broken{proc=\"x\" 5\n"
                       "pushpipe_nonum{proc=\"x\"} abc\n"
                       "\n";
    pp_prom_t *p = pp_prom_parse(text);
    assert_int_equal(pp_prom_size(p), 4);
    assert_int_equal(pp_prom_skipped(p), 3);
    int found = 0;
    assert_true(pp_prom_sum(p, "pushpipe_rejected_total", NULL, &found) == 7.0);
    assert_true(found);
    assert_true(pp_prom_sum(p, "pushpipe_rejected_total", "reason=\"bad_utf8\"", NULL) == 3.0);
    assert_true(pp_prom_sum(p, "pushpipe_accepted_total", NULL, NULL) == 1000.0);
    assert_true(pp_prom_sum(p, "pushpipe_up", NULL, NULL) == 1.0);
    assert_true(pp_prom_sum(p, "pushpipe_missing", NULL, &found) == 0.0);
    assert_false(found);
    assert_string_equal(pp_prom_name(p, 0), "pushpipe_rejected_total");
    assert_string_equal(pp_prom_name(p, 1), "pushpipe_accepted_total");
    assert_string_equal(pp_prom_name(p, 2), "pushpipe_up");
    assert_null(pp_prom_name(p, 3));
    pp_prom_destroy(&p);
    assert_null(p);
    p = pp_prom_parse(NULL);
    assert_int_equal(pp_prom_size(p), 0);
    pp_prom_destroy(&p);
}

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static void test_scrape_real_server(void **state)
{
    (void)state;
    pp_metrics_t *m = pp_metrics_new("unit");
    pp_metric_add(pp_metrics_counter(m, "things_total", "Things", "kind=\"a\""), 5);
    pp_metric_add(pp_metrics_counter(m, "things_total", "Things", "kind=\"b\""), 2);
    int port = s_free_port();
    assert_int_equal(pp_metrics_serve(m, "127.0.0.1", port), 0);
    char err[128] = "";
    char *body = pp_scrape_get("127.0.0.1", port, 2000, 1 << 20, err, sizeof err);
    if (!body) fail_msg("scrape failed: %s", err);
    pp_prom_t *p = pp_prom_parse(body);
    assert_true(pp_prom_sum(p, "pushpipe_things_total", "proc=\"unit\"", NULL) == 7.0);
    pp_prom_destroy(&p);
    free(body);
    /* A limit below the body's size is an error, not a truncated read. */
    assert_null(pp_scrape_get("127.0.0.1", port, 2000, 10, err, sizeof err));
    assert_non_null(strstr(err, "over"));
    pp_metrics_destroy(&m);
    /* Nobody listening any more. */
    assert_null(pp_scrape_get("127.0.0.1", port, 500, 1 << 20, err, sizeof err));
    assert_non_null(strstr(err, "refused"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_defaults),      cmocka_unit_test(test_plan_slots_stay),
        cmocka_unit_test(test_plan_errors),        cmocka_unit_test(test_prom_parse),
        cmocka_unit_test(test_scrape_real_server),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

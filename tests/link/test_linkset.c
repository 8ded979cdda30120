/* pp_linkset: one link per hub over real sockets, three pp_dispatch hubs on tcp loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pp_dispatch.h"
#include "pp_linkset.h"
#include "pp_linkset_config.h"
#include "pp_log.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define HUBS 3
#define PER_HUB 400
#define WINDOW 300 /* 3 windows held at once: more than the table's first 256 slots */
#define HB 100

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

/*  One hub: its dispatcher and the outputs it got, by job (body "h<hub>-<job>"). */
typedef struct {
    int index;
    pp_dispatch_t *d;
    int outputs[PER_HUB];
    int total, foreign;
} s_hub_t;

static bool s_on_output(void *ctx, zmq_msg_t *body)
{
    s_hub_t *h = ctx;
    char tmp[32] = {0};
    memcpy(tmp, zmq_msg_data(body), zmq_msg_size(body) < 31 ? zmq_msg_size(body) : 31);
    int hub = -1, id = -1;
    sscanf(tmp, "h%d-%d", &hub, &id);
    if (hub != h->index || id < 0 || id >= PER_HUB)
        h->foreign++; // another hub's job's output: the bug pp_linkset exists to prevent
    else
        h->outputs[id]++;
    h->total++;
    return true;
}

static void s_run_hubs(s_hub_t *hubs, int n)
{
    for (int i = 0; i < n; i++) {
        pp_dispatch_on_readable(hubs[i].d);
        pp_dispatch_tick(hubs[i].d, pp_mono_ms());
    }
}

static void s_poll(s_hub_t *hubs, int n, pp_linkset_t *ls, int ms)
{
    zmq_pollitem_t items[HUBS + PP_LINKSET_MAX];
    for (int i = 0; i < n; i++)
        items[i] = (zmq_pollitem_t){pp_dispatch_socket(hubs[i].d), 0, ZMQ_POLLIN, 0};
    size_t k = pp_linkset_poll_items(ls, items + n, ZMQ_POLLIN);
    zmq_poll(items, n + (int)k, ms);
}

static int64_t s_metric(pp_metrics_t *m, const char *name, const char *labels)
{
    return pp_metrics_value(m, name, labels);
}

/*  Three hubs, one set: every hub's jobs arrive (several windows held at once, so the
    handle table grows), each output lands on its job's hub, each ack on its link; a
    handle acked twice is counted and acks nothing else. */
static void test_three_hubs(void **state)
{
    (void)state;
    pp_metrics_t *hm = pp_metrics_new("hubs"), *wm = pp_metrics_new("worker");
    s_hub_t hubs[HUBS];
    char eps[HUBS][64];
    const char *ep_ptrs[HUBS];
    for (int i = 0; i < HUBS; i++) {
        memset(&hubs[i], 0, sizeof hubs[i]);
        hubs[i].index = i;
        snprintf(eps[i], sizeof eps[i], "tcp://127.0.0.1:%d", s_free_port());
        ep_ptrs[i] = eps[i];
        char pool[16];
        snprintf(pool, sizeof pool, "h%d", i);
        hubs[i].d = pp_dispatch_new(pool, eps[i], NULL, hm, HB, 0, 10000, 1 << 24);
        assert_non_null(hubs[i].d);
        pp_dispatch_set_output(hubs[i].d, s_on_output, &hubs[i]);
        for (int j = 0; j < PER_HUB; j++) {
            char body[32];
            int len = snprintf(body, sizeof body, "h%d-%d", i, j);
            zmq_msg_t m;
            zmq_msg_init_size(&m, (size_t)len);
            memcpy(zmq_msg_data(&m), body, (size_t)len);
            assert_int_equal(pp_dispatch_enqueue(hubs[i].d, &m), 0);
            zmq_msg_close(&m);
        }
    }
    pp_linkset_t *ls = pp_linkset_new(ep_ptrs, HUBS, NULL, wm, WINDOW, HB, 0);
    assert_non_null(ls);
    assert_int_equal(pp_linkset_size(ls), HUBS);

    // Phase 1: hold every job the windows allow (3 x WINDOW), acking none.
    static uint64_t held[HUBS * WINDOW];
    static int held_hub[HUBS * WINDOW], held_id[HUBS * WINDOW];
    int n = 0, first_seen[HUBS] = {-1, -1, -1};
    uint64_t end = pp_mono_ms() + 10000;
    while (n < HUBS * WINDOW && pp_mono_ms() < end) {
        s_poll(hubs, HUBS, ls, 5);
        s_run_hubs(hubs, HUBS);
        uint64_t job;
        zmq_msg_t body;
        zmq_msg_init(&body);
        while (n < HUBS * WINDOW && pp_linkset_recv(ls, &job, &body) == 1) {
            int hub = -1, id = -1;
            char tmp[32] = {0}; // bodies are not NUL-terminated
            memcpy(tmp, zmq_msg_data(&body), zmq_msg_size(&body) < 31 ? zmq_msg_size(&body) : 31);
            sscanf(tmp, "h%d-%d", &hub, &id);
            assert_true(hub >= 0 && hub < HUBS);
            assert_int_equal(pp_linkset_job_link(ls, job), hub);
            if (first_seen[hub] < 0) first_seen[hub] = n;
            held[n] = job;
            held_hub[n] = hub;
            held_id[n] = id;
            n++;
        }
        zmq_msg_close(&body);
        pp_linkset_tick(ls);
    }
    assert_int_equal(n, HUBS * WINDOW);
    assert_int_equal(pp_linkset_held(ls), HUBS * WINDOW);
    for (int i = 0; i < HUBS; i++)
        assert_true(first_seen[i] >= 0);

    // Phase 2: one output per held job, then its ack; then the rest of the work likewise.
    for (int k = 0; k < n; k++) {
        zmq_msg_t out;
        char body[32];
        int len = snprintf(body, sizeof body, "h%d-%d", held_hub[k], held_id[k]);
        zmq_msg_init_size(&out, (size_t)len);
        memcpy(zmq_msg_data(&out), body, (size_t)len);
        assert_int_equal(pp_linkset_send(ls, held[k], &out), 0);
        zmq_msg_close(&out);
        pp_linkset_ack(ls, held[k]);
    }
    // A handle acked twice: counted, and it acks no other job (held stays as it is).
    pp_linkset_ack(ls, held[0]);
    assert_int_equal(s_metric(wm, "link_worker_bad_handles_total", "kind=\"unknown\""), 1);
    assert_int_equal(pp_linkset_held(ls), 0);
    zmq_msg_t junk;
    zmq_msg_init(&junk);
    assert_int_equal(pp_linkset_send(ls, held[0], &junk), -1);
    zmq_msg_close(&junk);
    assert_null(pp_linkset_job_socket(ls, held[0]));

    // Phase 3: the rest, acked as they come, with an output carrying the job's id.
    int done = n;
    end = pp_mono_ms() + 10000;
    while (pp_mono_ms() < end) {
        s_poll(hubs, HUBS, ls, 5);
        s_run_hubs(hubs, HUBS);
        uint64_t job;
        zmq_msg_t body;
        zmq_msg_init(&body);
        while (pp_linkset_recv(ls, &job, &body) == 1) {
            zmq_msg_t out;
            zmq_msg_init(&out);
            zmq_msg_copy(&out, &body);
            assert_int_equal(pp_linkset_send(ls, job, &out), 0);
            zmq_msg_close(&out);
            pp_linkset_ack(ls, job);
            done++;
        }
        zmq_msg_close(&body);
        pp_linkset_tick(ls);
        bool idle = true;
        for (int i = 0; i < HUBS; i++)
            idle = idle && pp_dispatch_in_flight(hubs[i].d) == 0 &&
                   pp_dispatch_pending(hubs[i].d) == 0 && hubs[i].total == PER_HUB;
        if (idle) break;
    }
    assert_int_equal(done, HUBS * PER_HUB);
    for (int i = 0; i < HUBS; i++) {
        char l[32];
        snprintf(l, sizeof l, "pool=\"h%d\"", i);
        assert_int_equal(hubs[i].total, PER_HUB); // one output per job of its own, no other
        assert_int_equal(hubs[i].foreign, 0);
        for (int j = 0; j < PER_HUB; j++)
            assert_int_equal(hubs[i].outputs[j], 1);
        assert_int_equal(s_metric(hm, "link_acks_total", l), PER_HUB);
        assert_int_equal(s_metric(hm, "link_unknown_acks_total", l), 0);
        snprintf(l, sizeof l, "hub=\"%d\"", i);
        assert_int_equal(s_metric(wm, "link_worker_hub_jobs_total", l), PER_HUB);
    }
    assert_int_equal(s_metric(wm, "link_worker_jobs_total", NULL), HUBS * PER_HUB);
    assert_int_equal(s_metric(wm, "link_worker_bad_handles_total", "kind=\"table_full\""), 0);
    pp_linkset_destroy(&ls);
    assert_null(ls);
    for (int i = 0; i < HUBS; i++)
        pp_dispatch_destroy(&hubs[i].d);
    pp_metrics_destroy(&hm);
    pp_metrics_destroy(&wm);
}

/*  One endpoint: the handle is the hub's seq and the set adds no metric of its own. */
static void test_one_hub(void **state)
{
    (void)state;
    pp_metrics_t *hm = pp_metrics_new("hub"), *wm = pp_metrics_new("worker");
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", s_free_port());
    pp_dispatch_t *d = pp_dispatch_new("one", ep, NULL, hm, HB, 0, 1000, 1 << 20);
    zmq_msg_t m;
    zmq_msg_init_size(&m, 3);
    memcpy(zmq_msg_data(&m), "job", 3);
    assert_int_equal(pp_dispatch_enqueue(d, &m), 0);
    zmq_msg_close(&m);
    const char *eps[1] = {ep};
    pp_linkset_t *ls = pp_linkset_new(eps, 1, NULL, wm, 4, HB, 0);
    assert_non_null(ls);
    uint64_t job = 0;
    int got = 0;
    uint64_t end = pp_mono_ms() + 5000;
    while (!got && pp_mono_ms() < end) {
        zmq_pollitem_t items[2] = {{pp_dispatch_socket(d), 0, ZMQ_POLLIN, 0}};
        pp_linkset_poll_items(ls, items + 1, ZMQ_POLLIN);
        zmq_poll(items, 2, 5);
        pp_dispatch_on_readable(d);
        pp_dispatch_tick(d, pp_mono_ms());
        zmq_msg_t body;
        zmq_msg_init(&body);
        got = pp_linkset_recv(ls, &job, &body) == 1;
        zmq_msg_close(&body);
        pp_linkset_tick(ls);
    }
    assert_true(got);
    assert_true(job > 0xffffffffu); // the hub's seq (wall clock based), not a table handle
    assert_int_equal(pp_linkset_job_link(ls, job), 0);
    pp_linkset_ack(ls, job);
    end = pp_mono_ms() + 5000;
    while (pp_dispatch_in_flight(d) > 0 && pp_mono_ms() < end) {
        pp_linkset_tick(ls);
        zmq_pollitem_t it = {pp_dispatch_socket(d), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 5);
        pp_dispatch_on_readable(d);
        pp_dispatch_tick(d, pp_mono_ms());
    }
    assert_int_equal(s_metric(hm, "link_acks_total", "pool=\"one\""), 1);
    assert_int_equal(s_metric(wm, "link_worker_hub_jobs_total", "hub=\"0\""), -1);
    assert_int_equal(s_metric(wm, "link_worker_bad_handles_total", "kind=\"unknown\""), -1);
    pp_linkset_destroy(&ls);
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&hm);
    pp_metrics_destroy(&wm);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    const char *eps[PP_LINKSET_MAX + 1];
    for (int i = 0; i <= PP_LINKSET_MAX; i++)
        eps[i] = "tcp://127.0.0.1:1";
    assert_null(pp_linkset_new(eps, 0, NULL, NULL, 4, HB, 0));
    assert_null(pp_linkset_new(eps, PP_LINKSET_MAX + 1, NULL, NULL, 4, HB, 0));
    assert_null(pp_linkset_new(eps, 1, NULL, NULL, 0, HB, 0));
    const char *bad[2] = {"tcp://127.0.0.1:1", "nonsense"};
    assert_null(pp_linkset_new(bad, 2, NULL, NULL, 4, HB, 0));
    pp_linkset_destroy(NULL);
}

/*  The link keys every worker reads the same way: one endpoint of its hub per broker, the
    section's window (with the stage's default, checked against PP_LINK_MAX_WINDOW), the
    top-level heartbeat; and no set when a broker address gave no endpoint. */
static void test_config(void **state)
{
    (void)state;
    char err[256];
    pp_config_t *c = pp_config_from_string(
        "{\"heartbeat_ms\": 250, \"mqtt_sender\": {\"link\": {\"window\": 7}}}", err, sizeof err);
    assert_non_null(c);
    const char *brokers[2] = {"tcp://127.0.0.1:5560", "tcp://10.0.0.2:6000"};
    pp_linkset_config_t lc;
    pp_linkset_config_read(c, &lc, "mqtt_sender", PP_EP_MQTT_OUT, brokers, 2, 64);
    assert_true(pp_config_ok(c));
    assert_int_equal(lc.n, 2);
    assert_int_equal(lc.n_brokers, 2);
    char want[256];
    pp_endpoint(brokers[1], PP_EP_MQTT_OUT, want, sizeof want);
    assert_string_equal(lc.endpoint[1], want);
    assert_int_equal(lc.window, 7);
    assert_int_equal(lc.heartbeat_ms, 250);
    assert_int_equal(lc.sndhwm, 0);
    pp_linkset_config_read(c, &lc, "resolver", PP_EP_RESOLVE, brokers, 1, 1024);
    assert_int_equal(lc.window, 1024); /* the stage's default */
    pp_config_destroy(&c);

    c = pp_config_from_string("{\"resolver\": {\"link\": {\"window\": 100001}}}", err, sizeof err);
    pp_linkset_config_read(c, &lc, "resolver", PP_EP_RESOLVE, brokers, 1, 1024);
    assert_false(pp_config_ok(c)); /* over PP_LINK_MAX_WINDOW */
    assert_non_null(strstr(pp_config_error(c), "resolver.link.window"));
    pp_config_destroy(&c);

    c = pp_config_from_string("{}", err, sizeof err);
    const char *bad[2] = {"tcp://127.0.0.1:5560", "nonsense"};
    pp_linkset_config_read(c, &lc, "resolver", PP_EP_RESOLVE, bad, 2, 1024);
    assert_int_equal(lc.n, 1);
    assert_null(pp_linkset_config_open(&lc, NULL, NULL)); /* one broker short */
    pp_linkset_config_read(c, &lc, "resolver", PP_EP_RESOLVE, bad, 1, 1024);
    pp_linkset_t *ls = pp_linkset_config_open(&lc, NULL, NULL);
    assert_non_null(ls);
    assert_int_equal(pp_linkset_size(ls), 1);
    pp_linkset_destroy(&ls);
    pp_config_destroy(&c);
}

int main(void)
{
    pp_log_init("test-linkset", PP_LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_hubs),
        cmocka_unit_test(test_one_hub),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

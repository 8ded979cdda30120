/*  pp-bench-link [N] [WINDOW]: N (default 1,000,000) 16-byte jobs from a hub to one worker
    over tcp loopback, first as raw PUSH->PULL (the baseline, lossy when a worker dies), then
    through pp_dispatch -> pp_link with credit and batched acks (every job acked before the
    clock stops). Prints both rates and their ratio. Not a test: numbers vary by machine. */
#include "pp_dispatch.h"
#include "pp_link.h"
#include "pp_log.h"

#include <czmq.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY 16

static long s_n = 1000000;
static uint32_t s_window = 1000;
static char s_ep[64];

static void *s_pusher(void *arg)
{
    (void)arg;
    zsock_t *push = zsock_new(ZMQ_PUSH);
    zsock_set_sndhwm(push, 1000);
    zsock_set_linger(push, 5000);
    zsock_connect(push, "%s", s_ep);
    void *raw = zsock_resolve(push);
    char body[BODY] = "job-0123456789ab";
    for (long i = 0; i < s_n; i++)
        zmq_send(raw, body, BODY, 0);
    zsock_destroy(&push);
    return NULL;
}

static double s_push_pull(void)
{
    zsock_t *pull = zsock_new(ZMQ_PULL);
    zsock_set_rcvhwm(pull, 1000);
    int port = zsock_bind(pull, "tcp://127.0.0.1:*");
    snprintf(s_ep, sizeof s_ep, "tcp://127.0.0.1:%d", port);
    void *raw = zsock_resolve(pull);
    pthread_t t;
    char buf[64];
    pthread_create(&t, NULL, s_pusher, NULL);
    zmq_recv(raw, buf, sizeof buf, 0); // the clock starts at the first job, as below
    uint64_t start = pp_mono_us();
    for (long i = 1; i < s_n; i++)
        zmq_recv(raw, buf, sizeof buf, 0);
    uint64_t us = pp_mono_us() - start;
    pthread_join(t, NULL);
    zsock_destroy(&pull);
    return (double)s_n * 1e6 / (double)us;
}

static void *s_worker(void *arg)
{
    (void)arg;
    pp_link_t *l = pp_link_new(s_ep, NULL, NULL, s_window, 1000, 0);
    zmq_msg_t body;
    zmq_msg_init(&body);
    long got = 0;
    int timeout = 1000;
    while (got < s_n) {
        zmq_pollitem_t it = {pp_link_socket(l), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, timeout);
        uint64_t seq;
        while (pp_link_recv(l, &seq, &body) == 1) {
            pp_link_ack(l, seq);
            got++;
        }
        timeout = pp_link_tick(l);
    }
    zmq_msg_close(&body);
    pp_link_destroy(&l); // flushes the last acks
    return NULL;
}

static double s_link(void)
{
    snprintf(s_ep, sizeof s_ep, "tcp://127.0.0.1:%d", 20000 + (int)(pp_mono_us() % 30000));
    pp_dispatch_t *d = pp_dispatch_new("bench", s_ep, NULL, NULL, 1000, 0, 10000, 1 << 24);
    if (!d) return 0;
    pthread_t t;
    pthread_create(&t, NULL, s_worker, NULL);
    // Wait for the worker's credit before starting the clock.
    while (pp_dispatch_credit(d) == 0) {
        zmq_pollitem_t it = {pp_dispatch_socket(d), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 100);
        pp_dispatch_on_readable(d);
    }
    uint64_t start = pp_mono_us();
    long queued = 0;
    while (queued < s_n || pp_dispatch_pending(d) > 0 || pp_dispatch_in_flight(d) > 0) {
        while (queued < s_n && !pp_dispatch_full(d)) {
            zmq_msg_t m;
            zmq_msg_init_size(&m, BODY);
            memcpy(zmq_msg_data(&m), "job-0123456789ab", BODY);
            pp_dispatch_enqueue(d, &m);
            zmq_msg_close(&m);
            queued++;
        }
        pp_dispatch_pump(d);
        zmq_pollitem_t it = {pp_dispatch_socket(d), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 100);
        pp_dispatch_on_readable(d);
    }
    uint64_t us = pp_mono_us() - start;
    pthread_join(t, NULL);
    pp_dispatch_destroy(&d);
    return (double)s_n * 1e6 / (double)us;
}

int main(int argc, char **argv)
{
    pp_log_init("bench-link", PP_LOG_WARN);
    if (argc > 1) s_n = atol(argv[1]);
    if (argc > 2) s_window = (uint32_t)atoi(argv[2]);
    if (s_n < 1 || s_window < 1) {
        fprintf(stderr, "usage: pp-bench-link [N] [WINDOW]\n");
        return 2;
    }
    double raw = s_push_pull();
    double link = s_link();
    printf("jobs=%ld body=%d window=%u\n", s_n, BODY, s_window);
    printf("push_pull_rate=%.0f msg/s (baseline, no acks)\n", raw);
    printf("link_rate=%.0f jobs/s (credit + acks, every job acked)\n", link);
    printf("ratio=%.2f (link / push_pull)\n", raw > 0 ? link / raw : 0.0);
    return link > 0 ? 0 : 1;
}

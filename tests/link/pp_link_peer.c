/*  pp-link-peer: one side of the link as a process, for tests/link/test_link_python.py
    (which proves tests/lib/pp_link.py against the C side) and for kill -9 tests.

      pp-link-peer worker ENDPOINT WINDOW HEARTBEAT_MS [DELAY_US]
          acks every job after DELAY_US; on SIGTERM stops gracefully and prints
          "worker_jobs=N".
      pp-link-peer hub ENDPOINT NJOBS HEARTBEAT_MS TIMEOUT_S
          serves NJOBS jobs (bodies "job-<i>:" padded to 40 bytes) until all are acked or
          TIMEOUT_S passes; prints the counters and exits 0 only if all were acked.
*/
#include "pp_dispatch.h"
#include "pp_link.h"
#include "pp_log.h"

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t s_stop;

static void s_on_signal(int sig)
{
    (void)sig;
    s_stop = 1;
}

static int s_worker(const char *ep, uint32_t window, uint32_t hb, useconds_t delay)
{
    pp_link_t *l = pp_link_new(ep, NULL, NULL, window, hb, 0);
    if (!l) return 2;
    printf("ready\n");
    fflush(stdout);
    long jobs = 0;
    int timeout = 10;
    zmq_msg_t body;
    zmq_msg_init(&body);
    uint64_t stop_deadline = 0;
    while (true) {
        if (s_stop && !stop_deadline) {
            pp_link_pause(l, true);
            stop_deadline = pp_mono_ms() + 2000;
        }
        if (stop_deadline && (pp_link_held(l) == 0 || pp_mono_ms() > stop_deadline)) break;
        zmq_pollitem_t it = {pp_link_socket(l), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, timeout < 50 ? timeout : 50);
        uint64_t seq;
        while (pp_link_recv(l, &seq, &body) == 1) {
            if (delay) usleep(delay);
            pp_link_ack(l, seq);
            jobs++;
        }
        timeout = pp_link_tick(l);
    }
    zmq_msg_close(&body);
    pp_link_destroy(&l);
    printf("worker_jobs=%ld\n", jobs);
    return 0;
}

static int s_hub(const char *ep, int njobs, uint32_t hb, int timeout_s)
{
    pp_metrics_t *m = pp_metrics_new("peer");
    pp_dispatch_t *d = pp_dispatch_new("peer", ep, NULL, m, hb, 0, (size_t)njobs + 1, 1 << 30);
    if (!d) return 2;
    for (int i = 0; i < njobs; i++) {
        char b[64];
        int n = snprintf(b, sizeof b, "job-%d:", i);
        memset(b + n, 'x', 40 - (size_t)n);
        zmq_msg_t msg;
        zmq_msg_init_size(&msg, 40);
        memcpy(zmq_msg_data(&msg), b, 40);
        pp_dispatch_enqueue(d, &msg);
        zmq_msg_close(&msg);
    }
    printf("ready\n");
    fflush(stdout);
    uint64_t end = pp_mono_ms() + (uint64_t)timeout_s * 1000;
    const char *l = "pool=\"peer\"";
    while (!s_stop && pp_mono_ms() < end && pp_metrics_value(m, "link_acks_total", l) < njobs) {
        int t = pp_dispatch_tick(d, pp_mono_ms());
        zmq_pollitem_t it = {pp_dispatch_socket(d), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, t);
        pp_dispatch_on_readable(d);
    }
    long acked = (long)pp_metrics_value(m, "link_acks_total", l);
    printf("acked=%ld sent=%ld requeued=%ld deaths=%ld pending=%zu in_flight=%zu\n", acked,
           (long)pp_metrics_value(m, "link_jobs_sent_total", l),
           (long)pp_metrics_value(m, "link_requeued_total", l),
           (long)pp_metrics_value(m, "link_worker_deaths_total", l), pp_dispatch_pending(d),
           pp_dispatch_in_flight(d));
    bool all = acked == njobs && pp_dispatch_pending(d) == 0 && pp_dispatch_in_flight(d) == 0;
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&m);
    return all ? 0 : 1;
}

int main(int argc, char **argv)
{
    pp_log_init("link-peer", PP_LOG_INFO);
    zsys_handler_set(NULL);
    signal(SIGTERM, s_on_signal);
    signal(SIGINT, s_on_signal);
    int rc = 2;
    if (argc >= 5 && strcmp(argv[1], "worker") == 0)
        rc = s_worker(argv[2], (uint32_t)atoi(argv[3]), (uint32_t)atoi(argv[4]),
                      argc > 5 ? (useconds_t)atoi(argv[5]) : 0);
    else if (argc == 6 && strcmp(argv[1], "hub") == 0)
        rc = s_hub(argv[2], atoi(argv[3]), (uint32_t)atoi(argv[4]), atoi(argv[5]));
    else
        fprintf(stderr, "usage: pp-link-peer worker EP WINDOW HB_MS [DELAY_US] | "
                        "hub EP NJOBS HB_MS TIMEOUT_S\n");
    fflush(stdout);
    return rc;
}

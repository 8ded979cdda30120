/*  bench_client: libpushpipe's fire-and-forget cost against raw libzmq, in one run.

    Baseline: zmq_send of one pre-encoded client frame over PUSH -> PULL (tcp loopback),
    the floor any client pays. Measured: pp_client_push_group with the same data as JSON
    text, which also parses the JSON (jansson), packs msgpack and checks the options.
    Both send N messages to a PULL drained by a thread in this process and are timed from
    the first send until the receiver has counted all N. Prints both rates and the ratio.

    usage: bench_client [N]   (default 200000)
*/
#include "pushpipe.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static const char *s_json = "{\"alert\":\"You have a new message\",\"badge\":3,"
                            "\"sound\":\"default\",\"from\":{\"id\":12345,\"name\":\"Ann\"}}";

typedef struct {
    void *pull;
    long n;
} s_rx_t;

static void *s_drain(void *arg)
{
    s_rx_t *rx = arg;
    zmq_msg_t m;
    zmq_msg_init(&m);
    for (long i = 0; i < rx->n; i++)
        if (zmq_msg_recv(&m, rx->pull, 0) < 0) break;
    zmq_msg_close(&m);
    return NULL;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*  Runs one round against a fresh PULL on base; send() pushes one message. */
static double s_round(void *ctx, int base, long n, int (*send)(void *, long), void *arg)
{
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", base);
    void *pull = zmq_socket(ctx, ZMQ_PULL);
    int hwm = 100000;
    zmq_setsockopt(pull, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(pull, ep) != 0) {
        fprintf(stderr, "bind %s: %s\n", ep, zmq_strerror(zmq_errno()));
        exit(1);
    }
    s_rx_t rx = {pull, n};
    pthread_t th;
    pthread_create(&th, NULL, s_drain, &rx);
    double t0 = s_now();
    for (long i = 0; i < n; i++)
        if (send(arg, i) != 0) {
            fprintf(stderr, "send failed at %ld\n", i);
            exit(1);
        }
    pthread_join(th, NULL);
    double dt = s_now() - t0;
    zmq_close(pull);
    return (double)n / dt;
}

typedef struct {
    void *push;
    const void *frame;
    size_t len;
} s_raw_t;

static int s_send_raw(void *arg, long i)
{
    (void)i;
    s_raw_t *r = arg;
    return zmq_send(r->push, r->frame, r->len, 0) < 0 ? -1 : 0;
}

static int s_send_lib(void *arg, long i)
{
    (void)i;
    return pp_client_push_group(arg, "7", s_json, NULL, NULL);
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 200000;
    int base = 30000 + (int)(getpid() % 20000);
    char addr[64];
    snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", base);
    void *ctx = zmq_ctx_new();

    /* The baseline frame: what libpushpipe sends for the same push, captured once from
       a PULL so that both rounds move identical bytes. */
    char cap_ep[64];
    snprintf(cap_ep, sizeof cap_ep, "tcp://127.0.0.1:%d", base + 2);
    void *cap = zmq_socket(ctx, ZMQ_PULL);
    zmq_bind(cap, cap_ep);
    pp_client_t *capc = pp_client_new(cap_ep, 0);
    if (pp_client_push_group(capc, "7", s_json, NULL, NULL) != 0) {
        fprintf(stderr, "%s\n", pp_client_error(capc));
        return 1;
    }
    zmq_msg_t frame;
    zmq_msg_init(&frame);
    zmq_msg_recv(&frame, cap, 0);
    zmq_close(cap);
    pp_client_destroy(&capc);
    pp_client_t *c = pp_client_new(addr, 0);
    pp_client_set_sndhwm(c, 100000);

    void *push = zmq_socket(ctx, ZMQ_PUSH);
    int hwm = 100000;
    zmq_setsockopt(push, ZMQ_SNDHWM, &hwm, sizeof hwm);
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", base + 1);
    zmq_connect(push, ep);
    s_raw_t raw = {push, zmq_msg_data(&frame), zmq_msg_size(&frame)};
    double raw_rate = s_round(ctx, base + 1, n, s_send_raw, &raw);
    double lib_rate = s_round(ctx, base, n, s_send_lib, c);

    printf("frame_bytes=%zu n=%ld raw_zmq_send=%.0f/s libpushpipe=%.0f/s ratio=%.2f\n", raw.len, n,
           raw_rate, lib_rate, lib_rate / raw_rate);
    zmq_msg_close(&frame);
    int zero = 0;
    zmq_setsockopt(push, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(push);
    pp_client_set_linger(c, 0);
    pp_client_destroy(&c);
    zmq_ctx_term(ctx);
    return 0;
}

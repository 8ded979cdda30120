/*  pp-bench-broker: the broker's intake rate against raw libzmq, in the same run.

    Client threads PUSH typical frames ([3, user id, a 200-byte data map]) and one sink
    PULL counts what arrives:
      raw     clients -> sink PULL bound here (tcp loopback): the ceiling of one hop
      broker  clients -> broker intake -> validation, stamping, RESOLVE job -> sink PULL
              connected to the broker's resolve endpoint
      forward clients -> broker mqtt_in -> kind check, zero-copy move -> sink PULL on
              mqtt_out, with MQTT jobs of the size of the RESOLVE jobs (two hops, no
              decoding: the ceiling of any broker on this machine)
    Prints frames/s of each and the ratio broker/raw. The broker must be running (see
    bench/broker/run.sh) and nobody else may be connected to its resolve endpoint.
*/
#include "pp_endpoints.h"
#include "pp_job.h"
#include "pp_log.h"

#include <getopt.h>
#include <msgpack.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

typedef struct {
    void *ctx;
    const char *endpoint;
    long frames;
    const msgpack_sbuffer *frame;
} s_client_t;

static void s_pack_str(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

/*  A typical type-3 frame: one user, a data map of about 200 bytes. */
static void s_build_frame(msgpack_sbuffer *out)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int(&pk, 3);
    s_pack_str(&pk, "user-0012345678");
    msgpack_pack_map(&pk, 6);
    s_pack_str(&pk, "title");
    s_pack_str(&pk, "New message from Alice");
    s_pack_str(&pk, "body");
    s_pack_str(&pk, "Are we still on for lunch tomorrow at noon? Let me know by tonight.");
    s_pack_str(&pk, "badge");
    msgpack_pack_int(&pk, 3);
    s_pack_str(&pk, "sound");
    s_pack_str(&pk, "default");
    s_pack_str(&pk, "thread");
    s_pack_str(&pk, "conversation-98765");
    s_pack_str(&pk, "meta");
    msgpack_pack_map(&pk, 2);
    s_pack_str(&pk, "sender");
    s_pack_str(&pk, "alice@example.com");
    s_pack_str(&pk, "sent_at");
    msgpack_pack_int64(&pk, 1795770000123LL);
}

static void *s_client(void *arg)
{
    s_client_t *c = arg;
    void *push = zmq_socket(c->ctx, ZMQ_PUSH);
    int linger = 5000, timeout = 5000; /* no broker: give up instead of hanging */
    zmq_setsockopt(push, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(push, ZMQ_SNDTIMEO, &timeout, sizeof timeout);
    zmq_connect(push, c->endpoint);
    for (long i = 0; i < c->frames; i++)
        if (zmq_send(push, c->frame->data, c->frame->size, 0) < 0) break;
    zmq_close(push);
    return NULL;
}

/*  Runs `threads` clients against endpoint while sink counts `total` messages. Returns
    frames/s, or 0 if the sink saw fewer than total within idle_ms of silence. */
static double s_run(void *ctx, void *sink, const char *endpoint, int threads, long total,
                    const msgpack_sbuffer *frame, long *got_out)
{
    pthread_t tid[64];
    s_client_t cl[64];
    int timeout = 3000;
    zmq_setsockopt(sink, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    uint64_t start = pp_mono_us();
    for (int t = 0; t < threads; t++) {
        cl[t] = (s_client_t){ctx, endpoint, total / threads + (t < total % threads), frame};
        pthread_create(&tid[t], NULL, s_client, &cl[t]);
    }
    zmq_msg_t m;
    zmq_msg_init(&m);
    long got = 0;
    while (got < total && zmq_msg_recv(&m, sink, 0) >= 0)
        got++;
    uint64_t elapsed = pp_mono_us() - start;
    zmq_msg_close(&m);
    for (int t = 0; t < threads; t++)
        pthread_join(tid[t], NULL);
    *got_out = got;
    return got == total ? (double)total * 1e6 / (double)elapsed : 0.0;
}

static double s_raw(void *ctx, int threads, long total, const msgpack_sbuffer *frame)
{
    void *sink = zmq_socket(ctx, ZMQ_PULL);
    zmq_bind(sink, "tcp://127.0.0.1:*");
    char ep[256];
    size_t len = sizeof ep;
    zmq_getsockopt(sink, ZMQ_LAST_ENDPOINT, ep, &len);
    long got;
    double rate = s_run(ctx, sink, ep, threads, total, frame, &got);
    if (rate == 0) fprintf(stderr, "raw: only %ld of %ld frames arrived\n", got, total);
    zmq_close(sink);
    return rate;
}

/*  An MQTT job about as large as the RESOLVE job the broker makes of the frame. */
static void s_build_job(msgpack_sbuffer *out, size_t size)
{
    char payload[1024];
    size_t n = size > 120 ? size - 120 : 16;
    n = n < sizeof payload ? n : sizeof payload;
    memset(payload, 'x', n);
    pp_str_t topics[1] = {PP_STR("pushpipe/user/user-0012345678")};
    pp_mqtt_job_t job = {.msg_id = PP_STR("0123456789abcdef0123456789abcdef"),
                         .qos = 1,
                         .payload = {payload, n},
                         .received_us = 1795770000123456ULL,
                         .n_topics = 1,
                         .topics = topics};
    pp_mqtt_job_encode(&job, out);
}

static double s_broker(void *ctx, const char *broker, pp_ep_t in, pp_ep_t out, int threads,
                       long total, const msgpack_sbuffer *frame)
{
    char intake[256], resolve[256];
    if (pp_endpoint(broker, in, intake, sizeof intake) ||
        pp_endpoint(broker, out, resolve, sizeof resolve)) {
        fprintf(stderr, "bad broker address %s\n", broker);
        return 0;
    }
    void *sink = zmq_socket(ctx, ZMQ_PULL);
    zmq_connect(sink, resolve);
    /* let the connection complete: the broker's PUSH queues only to completed peers, and
       anything it holds before then waits in its FIFO (not lost, but not what we time) */
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    long got;
    double rate = s_run(ctx, sink, intake, threads, total, frame, &got);
    if (rate == 0)
        fprintf(stderr, "broker: only %ld of %ld frames arrived (rejected? see its metrics)\n", got,
                total);
    zmq_close(sink);
    return rate;
}

int main(int argc, char **argv)
{
    const char *broker = PP_DEFAULT_BROKER_ADDRESS;
    int threads = 2, rounds = 3;
    const char *mode = "all"; /* or raw, broker, forward: one path alone, for profiling */
    long total = 1000000;
    static const struct option opts[] = {
        {"broker", required_argument, NULL, 'b'}, {"threads", required_argument, NULL, 't'},
        {"frames", required_argument, NULL, 'n'}, {"rounds", required_argument, NULL, 'r'},
        {"mode", required_argument, NULL, 'm'},   {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "b:t:n:r:m:", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            broker = optarg;
            break;
        case 't':
            threads = atoi(optarg);
            break;
        case 'n':
            total = atol(optarg);
            break;
        case 'r':
            rounds = atoi(optarg);
            break;
        case 'm':
            mode = optarg;
            break;
        default:
            fprintf(stderr, "usage: pp-bench-broker [--broker ADDR] [--threads N] "
                            "[--frames N] [--rounds N] [--mode all|raw|broker|forward]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || total < threads || rounds < 1) {
        fprintf(stderr, "pp-bench-broker: bad arguments\n");
        return 2;
    }
    msgpack_sbuffer frame;
    msgpack_sbuffer_init(&frame);
    s_build_frame(&frame);
    void *ctx = zmq_ctx_new();
    printf("frame: %zu bytes, %ld frames per run, %d client threads, %d rounds\n", frame.size,
           total, threads, rounds);
    /* Best of the rounds for each, interleaved so both see the same machine load. */
    msgpack_sbuffer job;
    msgpack_sbuffer_init(&job);
    s_build_job(&job, frame.size + 110);
    double best_raw = 0, best_broker = 0, best_fwd = 0;
    for (int r = 0; r < rounds; r++) {
        bool all = strcmp(mode, "all") == 0;
        double raw = all || !strcmp(mode, "raw") ? s_raw(ctx, threads, total, &frame) : 0;
        double brk =
            all || !strcmp(mode, "broker")
                ? s_broker(ctx, broker, PP_EP_INTAKE, PP_EP_RESOLVE, threads, total, &frame)
                : 0;
        double fwd =
            all || !strcmp(mode, "forward")
                ? s_broker(ctx, broker, PP_EP_MQTT_IN, PP_EP_MQTT_OUT, threads, total, &job)
                : 0;
        printf("round %d: raw %.0f, broker %.0f, forward %.0f frames/s\n", r + 1, raw, brk, fwd);
        best_raw = raw > best_raw ? raw : best_raw;
        best_broker = brk > best_broker ? brk : best_broker;
        best_fwd = fwd > best_fwd ? fwd : best_fwd;
    }
    printf("broker forward mqtt_in->mqtt_out (%zu-byte jobs): %.0f frames/s (ratio %.2f)\n",
           job.size, best_fwd, best_raw > 0 ? best_fwd / best_raw : 0.0);
    msgpack_sbuffer_destroy(&job);
    printf("raw libzmq PUSH->PULL (tcp loopback): %.0f frames/s\n", best_raw);
    printf("broker intake->resolve:               %.0f frames/s\n", best_broker);
    printf("ratio broker/raw: %.2f\n", best_raw > 0 ? best_broker / best_raw : 0.0);
    zmq_ctx_term(ctx);
    msgpack_sbuffer_destroy(&frame);
    return best_broker > 0 || best_raw > 0 || best_fwd > 0 ? 0 : 1;
}

/*  pp-bench-broker: the broker's intake rate against raw libzmq, in the same run.

    Client threads PUSH typical frames ([3, user id, a 200-byte data map]) and one sink
    counts what arrives:
      raw      clients -> sink PULL bound here (tcp loopback): the ceiling of one hop
      broker   clients -> broker intake -> validation, stamping, RESOLVE job -> the resolve
               pool -> sink: a link worker (common/pp_link.h, window --window) connected to
               the broker's resolve endpoint, acking every job
      ack      clients -> broker submit (acknowledged: DEALERs with up to 500 frames
               awaiting their verdict each) -> resolve pool -> link sink; counts frames
               answered "accepted" and received by the sink (a frame answered
               "overloaded" is sent again, as a client should). With broker.durability
               "jetstream" the verdict waits for JetStream (bench/broker/durable.sh).
      pipeline clients -> broker intake -> resolve pool -> a resolver thread (link worker)
               that sends each RESOLVE job's bytes back as one MQTT-kind output ("O") and
               acks it -> kind check, move to the mqtt pool -> sink link worker on mqtt_out
               acking every job (the whole hub path of the broker)
    Prints frames/s of each and the ratio to raw. The broker must be running (see
    bench/broker/run.sh) and nobody else may be connected to its endpoints.
*/
#include "pp_link.h"

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
#include <czmq.h>
#include <zmq.h>

static uint32_t s_window = 1000;
static long s_overloaded; /* ack: "overloaded" answers over all runs (frames sent again) */

typedef struct {
    void *ctx;
    const char *endpoint;
    long frames;
    const msgpack_sbuffer *frame;
    bool ack;        /* acknowledged: a DEALER on submit, replies counted */
    long accepted;   /* ack: replies {"ok": true} */
    long overloaded; /* ack: "overloaded" answers, each frame sent again */
} s_client_t;

#define S_ACK_WINDOW 500

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

/*  An acknowledged client: keeps up to S_ACK_WINDOW frames awaiting their verdict. A
    reply is a msgpack map whose first key is "ok" then true (0xc3) or false. A frame
    answered "overloaded" (the resolve queue is full: docs/broker.md) is sent again, as
    the protocol tells clients to do, so the rate is that of frames accepted under
    backpressure; any other refusal counts as a failure of the run. */
static void s_ack_client(s_client_t *c)
{
    void *d = zmq_socket(c->ctx, ZMQ_DEALER);
    int linger = 0, hwm = 100000;
    zmq_setsockopt(d, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(d, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(d, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_connect(d, c->endpoint);
    long in_flight = 0, refused = 0;
    uint8_t buf[512];
    while (c->accepted + refused < c->frames) {
        while (in_flight < S_ACK_WINDOW && c->accepted + refused + in_flight < c->frames &&
               zmq_send(d, c->frame->data, c->frame->size, ZMQ_DONTWAIT) >= 0)
            in_flight++;
        zmq_pollitem_t it = {d, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, 5000) <= 0) break; /* no broker: give up */
        int n;
        while ((n = zmq_recv(d, buf, sizeof buf, ZMQ_DONTWAIT)) >= 0) {
            in_flight--;
            size_t len = n < (int)sizeof buf ? (size_t)n : sizeof buf;
            if (n >= 5 && buf[0] == 0x82 && buf[1] == 0xa2 && buf[4] == 0xc3)
                c->accepted++;
            else if (memmem(buf, len, "overloaded", 10))
                c->overloaded++;     /* not counted: it goes out again */
            else if (refused++ == 0) /* the first refusal: say why */
                fprintf(stderr, "ack: a refusal: %.*s\n", (int)len, (char *)buf);
        }
    }
    zmq_close(d);
}

static void *s_client(void *arg)
{
    s_client_t *c = arg;
    if (c->ack) {
        s_ack_client(c);
        return NULL;
    }
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

static void s_start_clients(pthread_t *tid, s_client_t *cl, void *ctx, const char *endpoint,
                            int threads, long total, const msgpack_sbuffer *frame, bool ack)
{
    for (int t = 0; t < threads; t++) {
        cl[t] =
            (s_client_t){ctx, endpoint, total / threads + (t < total % threads), frame, ack, 0, 0};
        pthread_create(&tid[t], NULL, s_client, &cl[t]);
    }
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
    s_start_clients(tid, cl, ctx, endpoint, threads, total, frame, false);
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

/*  Receives and acks jobs on a link until `total` arrived or 3 s passed without one.
    Returns the count. */
static long s_link_count(pp_link_t *l, long total)
{
    zmq_msg_t body;
    zmq_msg_init(&body);
    long got = 0;
    uint64_t last = pp_mono_ms();
    while (got < total && pp_mono_ms() - last < 3000) {
        zmq_pollitem_t it = {pp_link_socket(l), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, pp_link_tick(l));
        uint64_t seq;
        while (pp_link_recv(l, &seq, &body) == 1) {
            pp_link_ack(l, seq);
            got++;
            last = pp_mono_ms();
        }
    }
    pp_link_tick(l); /* flush the last acks */
    zmq_msg_close(&body);
    return got;
}

/*  Waits until the link has been given a job or ms passed: the worker's credit must reach
    the broker before the clock starts, or the first jobs wait in the pool. */
static void s_settle(pp_link_t *l, int ms)
{
    uint64_t end = pp_mono_ms() + (uint64_t)ms;
    while (pp_mono_ms() < end) {
        zmq_pollitem_t it = {pp_link_socket(l), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, 10);
        pp_link_tick(l);
    }
}

/*  Clients -> broker intake; a link worker on `out` counts. With a resolver (pipeline),
    another link worker on resolve turns each RESOLVE job into an MQTT-kind output. */
typedef struct {
    const char *endpoint;
    long total;
    volatile int stop;
    long done;
} s_resolver_t;

static void *s_resolver(void *arg)
{
    s_resolver_t *r = arg;
    pp_link_t *l = pp_link_new(r->endpoint, NULL, NULL, s_window, 0, 0);
    if (!l) return NULL;
    zmq_msg_t body, out;
    zmq_msg_init(&body);
    zmq_msg_init(&out);
    while (!r->stop && r->done < r->total) {
        zmq_pollitem_t it = {pp_link_socket(l), 0, ZMQ_POLLIN, 0};
        zmq_poll(&it, 1, pp_link_tick(l));
        uint64_t seq;
        while (pp_link_recv(l, &seq, &body) == 1) {
            /* The RESOLVE job's bytes with the kind byte (after the array header) set to
               MQTT: the broker only peeks at the kind, so its size is that of a real job. */
            zmq_msg_init_size(&out, zmq_msg_size(&body));
            memcpy(zmq_msg_data(&out), zmq_msg_data(&body), zmq_msg_size(&body));
            ((uint8_t *)zmq_msg_data(&out))[1] = PP_JOB_MQTT;
            while (pp_link_send(l, &out) != 0 && !r->stop) {
                zmq_pollitem_t w = {pp_link_socket(l), 0, ZMQ_POLLOUT, 0};
                zmq_poll(&w, 1, pp_link_tick(l));
            }
            zmq_msg_close(&out);
            pp_link_ack(l, seq);
            r->done++;
        }
    }
    pp_link_tick(l);
    zmq_msg_close(&body);
    pp_link_destroy(&l);
    return NULL;
}

static double s_broker(void *ctx, const char *broker, bool pipeline, bool ack, int threads,
                       long total, const msgpack_sbuffer *frame)
{
    char intake[256], resolve[256], mqtt_out[256];
    if (pp_endpoint(broker, ack ? PP_EP_SUBMIT : PP_EP_INTAKE, intake, sizeof intake) ||
        pp_endpoint(broker, PP_EP_RESOLVE, resolve, sizeof resolve) ||
        pp_endpoint(broker, PP_EP_MQTT_OUT, mqtt_out, sizeof mqtt_out)) {
        fprintf(stderr, "bad broker address %s\n", broker);
        return 0;
    }
    pp_link_t *sink = pp_link_new(pipeline ? mqtt_out : resolve, NULL, NULL, s_window, 0, 0);
    if (!sink) return 0;
    s_resolver_t res = {resolve, total, 0, 0};
    pthread_t rt;
    if (pipeline) pthread_create(&rt, NULL, s_resolver, &res);
    s_settle(sink, 300);
    pthread_t tid[64];
    s_client_t cl[64];
    uint64_t start = pp_mono_us();
    s_start_clients(tid, cl, ctx, intake, threads, total, frame, ack);
    long got = s_link_count(sink, total);
    long accepted = 0, overloaded = 0;
    for (int t = 0; t < threads; t++) {
        pthread_join(tid[t], NULL);
        accepted += cl[t].accepted;
        overloaded += cl[t].overloaded;
    }
    if (ack && overloaded) s_overloaded += overloaded;
    uint64_t elapsed = pp_mono_us() - start;
    if (ack && accepted != total) {
        fprintf(stderr, "ack: only %ld of %ld frames accepted\n", accepted, total);
        got = 0;
    }
    if (pipeline) {
        res.stop = 1;
        pthread_join(rt, NULL);
    }
    pp_link_destroy(&sink);
    if (got != total) {
        fprintf(stderr, "%s: only %ld of %ld jobs arrived (rejected? see its metrics)\n",
                pipeline ? "pipeline" : "broker", got, total);
        return 0;
    }
    return (double)total * 1e6 / (double)elapsed;
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

int main(int argc, char **argv)
{
    const char *broker = PP_DEFAULT_BROKER_ADDRESS;
    int threads = 2, rounds = 3;
    const char *mode = "all"; /* or raw, broker, forward: one path alone, for profiling */
    long total = 1000000;
    static const struct option opts[] = {{"broker", required_argument, NULL, 'b'},
                                         {"threads", required_argument, NULL, 't'},
                                         {"frames", required_argument, NULL, 'n'},
                                         {"rounds", required_argument, NULL, 'r'},
                                         {"mode", required_argument, NULL, 'm'},
                                         {"window", required_argument, NULL, 'w'},
                                         {NULL, 0, NULL, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "b:t:n:r:m:w:", opts, NULL)) != -1) {
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
        case 'w':
            s_window = (uint32_t)atol(optarg);
            break;
        default:
            fprintf(stderr, "usage: pp-bench-broker [--broker ADDR] [--threads N] "
                            "[--frames N] [--rounds N] [--mode all|raw|broker|ack|pipeline] "
                            "[--window N]\n");
            return 2;
        }
    }
    if (threads < 1 || threads > 64 || total < threads || rounds < 1 || s_window < 1 ||
        s_window > PP_LINK_MAX_WINDOW) {
        fprintf(stderr, "pp-bench-broker: bad arguments\n");
        return 2;
    }
    pp_log_init("pp-bench-broker", PP_LOG_WARN); /* no link_connected line per run */
    msgpack_sbuffer frame;
    msgpack_sbuffer_init(&frame);
    s_build_frame(&frame);
    void *ctx = zmq_ctx_new();
    printf("frame: %zu bytes, %ld frames per run, %d client threads, %d rounds, window %u\n",
           frame.size, total, threads, rounds, s_window);
    /* Best of the rounds for each, interleaved so both see the same machine load. */
    double best_raw = 0, best_broker = 0, best_fwd = 0, best_ack = 0;
    for (int r = 0; r < rounds; r++) {
        bool all = strcmp(mode, "all") == 0;
        double raw = all || !strcmp(mode, "raw") ? s_raw(ctx, threads, total, &frame) : 0;
        double brk = all || !strcmp(mode, "broker")
                         ? s_broker(ctx, broker, false, false, threads, total, &frame)
                         : 0;
        double ack = all || !strcmp(mode, "ack")
                         ? s_broker(ctx, broker, false, true, threads, total, &frame)
                         : 0;
        double fwd = all || !strcmp(mode, "pipeline")
                         ? s_broker(ctx, broker, true, false, threads, total, &frame)
                         : 0;
        printf("round %d: raw %.0f, broker %.0f, ack %.0f, pipeline %.0f frames/s\n", r + 1, raw,
               brk, ack, fwd);
        fflush(stdout);
        best_raw = raw > best_raw ? raw : best_raw;
        best_broker = brk > best_broker ? brk : best_broker;
        best_fwd = fwd > best_fwd ? fwd : best_fwd;
        best_ack = ack > best_ack ? ack : best_ack;
    }
    printf("raw libzmq PUSH->PULL (tcp loopback):            %.0f frames/s\n", best_raw);
    printf("broker intake->resolve pool->link sink (acked):  %.0f frames/s\n", best_broker);
    printf("ack submit->verdict, resolve pool->link sink:    %.0f frames/s (%ld answers "
           "\"overloaded\", sent again)\n",
           best_ack, s_overloaded);
    printf("pipeline intake->resolver->mqtt pool->link sink: %.0f frames/s\n", best_fwd);
    printf("ratio broker/raw: %.2f\n", best_raw > 0 ? best_broker / best_raw : 0.0);
    printf("ratio pipeline/raw: %.2f\n", best_raw > 0 ? best_fwd / best_raw : 0.0);
    zmq_ctx_term(ctx);
    msgpack_sbuffer_destroy(&frame);
    return best_broker > 0 || best_raw > 0 || best_fwd > 0 || best_ack > 0 ? 0 : 1;
}

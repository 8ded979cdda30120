/*  pp-bench-mqtt: publishes per second through one pushpipe-mqtt-sender into mosquitto,
    against a plain paho MQTTAsync publisher of the same messages with the same window,
    measured in the same run. A subscriber (in this process) confirms receipt of every
    message; a round ends when it has them all. This program plays the broker's hub of the
    mqtt pool (broker/pp_dispatch.c compiled in): jobs go to the sender on its credit and
    each round also waits for every job's ack before the next, as the broker would.

    The limit publisher runs in its own process (this program re-executed with
    --limit-publisher), as the sender does, so that neither shares paho's threads with the
    subscriber. Rounds alternate between the two; the medians are compared.

    Usage (see run.sh, which starts mosquitto and the sender):
      pp-bench-mqtt --uri tcp://127.0.0.1:PORT --broker tcp://127.0.0.1:BASE
                    [--count N] [--qos Q] [--window W] [--topics-per-job K]
                    [--payload BYTES] [--rounds R]
*/
#include "pp_dispatch.h"
#include "pp_endpoints.h"
#include "pp_job.h"
#include "pp_log.h"

#include <MQTTAsync.h>
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

typedef struct {
    const char *uri;
    const char *broker;
    long count;
    int qos;
    int window;
    int per_job;
    int payload;
    int rounds;
    int round; /* limit publisher only */
} opts_t;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static char *s_payload(int bytes)
{
    /* A JSON object of about the requested size. */
    char *p = malloc((size_t)bytes + 64);
    int n = snprintf(p, (size_t)bytes + 64, "{\"title\":\"bench\",\"body\":\"");
    while (n < bytes - 2)
        p[n++] = 'x';
    p[n++] = '"';
    p[n++] = '}';
    p[n] = '\0';
    return p;
}

static void s_topic(char *out, size_t len, int round, const char *who, long job, int k)
{
    snprintf(out, len, "ppbench/%d/%s/%ld/%d", round, who, job, k);
}

/* ---- MQTT helpers --------------------------------------------------------------- */

static atomic_int s_connected, s_failed_connect;

static void s_on_conn_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)ctx, (void)r;
    atomic_store(&s_connected, 1);
}

static void s_on_conn_fail(void *ctx, MQTTAsync_failureData *r)
{
    (void)ctx;
    fprintf(stderr, "pp-bench-mqtt: connect failed: %d\n", r ? r->code : -1);
    atomic_store(&s_failed_connect, 1);
}

static MQTTAsync s_connect(const char *uri, const char *id, int window,
                           MQTTAsync_messageArrived *arrived)
{
    MQTTAsync c;
    if (MQTTAsync_create(&c, uri, id, MQTTCLIENT_PERSISTENCE_NONE, NULL) != MQTTASYNC_SUCCESS)
        exit(2);
    if (arrived) MQTTAsync_setCallbacks(c, NULL, NULL, arrived, NULL);
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    co.keepAliveInterval = 30;
    co.cleansession = 1;
    co.maxInflight = window;
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.onSuccess = s_on_conn_ok;
    co.onFailure = s_on_conn_fail;
    atomic_store(&s_connected, 0);
    if (MQTTAsync_connect(c, &co) != MQTTASYNC_SUCCESS) exit(2);
    for (int i = 0; i < 1000 && !atomic_load(&s_connected); i++) {
        if (atomic_load(&s_failed_connect)) exit(2);
        s_sleep_ms(10);
    }
    if (!atomic_load(&s_connected)) {
        fprintf(stderr, "pp-bench-mqtt: cannot connect to %s\n", uri);
        exit(2);
    }
    return c;
}

/* ---- the limit: a plain MQTTAsync publisher, in its own process ------------------- */

static pthread_mutex_t s_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t s_cv = PTHREAD_COND_INITIALIZER;
static long s_outstanding, s_acked, s_nacked;

static void s_pub_done(int ok)
{
    pthread_mutex_lock(&s_mu);
    s_outstanding--;
    if (ok)
        s_acked++;
    else
        s_nacked++;
    pthread_cond_signal(&s_cv);
    pthread_mutex_unlock(&s_mu);
}

static void s_on_pub_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)ctx, (void)r;
    s_pub_done(1);
}

static void s_on_pub_fail(void *ctx, MQTTAsync_failureData *r)
{
    (void)ctx, (void)r;
    s_pub_done(0);
}

static int s_limit_publisher(const opts_t *o)
{
    char id[64];
    snprintf(id, sizeof id, "ppbench-limit-%d", (int)getpid());
    MQTTAsync c = s_connect(o->uri, id, o->window, NULL);
    char *payload = s_payload(o->payload);
    int plen = (int)strlen(payload);
    printf("ready\n");
    fflush(stdout);
    char line[16];
    if (!fgets(line, sizeof line, stdin)) return 2;
    long jobs = o->count / o->per_job;
    char topic[128];
    for (long j = 0; j < jobs; j++)
        for (int k = 0; k < o->per_job; k++) {
            pthread_mutex_lock(&s_mu);
            while (s_outstanding >= o->window)
                pthread_cond_wait(&s_cv, &s_mu);
            s_outstanding++;
            pthread_mutex_unlock(&s_mu);
            s_topic(topic, sizeof topic, o->round, "limit", j, k);
            MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
            ro.onSuccess = s_on_pub_ok;
            ro.onFailure = s_on_pub_fail;
            int rc;
            while ((rc = MQTTAsync_send(c, topic, plen, payload, o->qos, 0, &ro)) ==
                   MQTTASYNC_NO_MORE_MSGIDS)
                s_sleep_ms(1);
            if (rc != MQTTASYNC_SUCCESS) s_pub_done(0);
        }
    pthread_mutex_lock(&s_mu);
    while (s_outstanding > 0)
        pthread_cond_wait(&s_cv, &s_mu);
    pthread_mutex_unlock(&s_mu);
    printf("done acked=%ld failed=%ld\n", s_acked, s_nacked);
    fflush(stdout);
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = 1000;
    MQTTAsync_disconnect(c, &d);
    s_sleep_ms(100);
    MQTTAsync_destroy(&c);
    free(payload);
    return 0;
}

/* ---- the subscriber ------------------------------------------------------------- */

static atomic_int s_round;
static atomic_long s_received;
static atomic_int s_subscribed;

static int s_on_message(void *ctx, char *topic, int tlen, MQTTAsync_message *m)
{
    (void)ctx, (void)tlen;
    /* ppbench/<round>/...: only the current round counts. */
    if (strncmp(topic, "ppbench/", 8) == 0 && atoi(topic + 8) == atomic_load(&s_round))
        atomic_fetch_add(&s_received, 1);
    MQTTAsync_freeMessage(&m);
    MQTTAsync_free(topic);
    return 1;
}

static void s_on_sub_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)ctx, (void)r;
    atomic_store(&s_subscribed, 1);
}

static int s_wait_received(long want, double timeout_s)
{
    double until = s_now() + timeout_s;
    while (atomic_load(&s_received) < want) {
        if (s_now() > until) return -1;
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
    }
    return 0;
}

/* ---- one round of each ---------------------------------------------------------- */

static double s_round_limit(const opts_t *o, int round, const char *self)
{
    int to_child[2], from_child[2];
    if (pipe(to_child) || pipe(from_child)) exit(2);
    char a_round[16], a_count[32], a_qos[8], a_window[16], a_per[16], a_payload[16];
    snprintf(a_round, sizeof a_round, "%d", round);
    snprintf(a_count, sizeof a_count, "%ld", o->count);
    snprintf(a_qos, sizeof a_qos, "%d", o->qos);
    snprintf(a_window, sizeof a_window, "%d", o->window);
    snprintf(a_per, sizeof a_per, "%d", o->per_job);
    snprintf(a_payload, sizeof a_payload, "%d", o->payload);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(to_child[0], 0);
        dup2(from_child[1], 1);
        close(to_child[1]);
        close(from_child[0]);
        execl(self, self, "--limit-publisher", "--uri", o->uri, "--round", a_round, "--count",
              a_count, "--qos", a_qos, "--window", a_window, "--topics-per-job", a_per, "--payload",
              a_payload, (char *)NULL);
        _exit(127);
    }
    close(to_child[0]);
    close(from_child[1]);
    FILE *in = fdopen(from_child[0], "r");
    char line[128];
    if (!fgets(line, sizeof line, in) || strncmp(line, "ready", 5) != 0) {
        fprintf(stderr, "pp-bench-mqtt: limit publisher did not start\n");
        exit(2);
    }
    atomic_store(&s_received, 0);
    atomic_store(&s_round, round);
    double t0 = s_now();
    if (write(to_child[1], "go\n", 3) != 3) exit(2);
    int rc = s_wait_received(o->count, 120);
    double t1 = s_now();
    if (rc != 0)
        fprintf(stderr, "pp-bench-mqtt: limit round %d: only %ld of %ld received\n", round,
                atomic_load(&s_received), o->count);
    if (fgets(line, sizeof line, in) && strncmp(line, "done", 4) == 0 && !strstr(line, "failed=0"))
        fprintf(stderr, "pp-bench-mqtt: limit round %d: %s", round, line);
    fclose(in);
    close(to_child[1]);
    waitpid(pid, NULL, 0);
    return rc == 0 ? (double)o->count / (t1 - t0) : 0.0;
}

typedef struct {
    pp_dispatch_t *hub;
    zmq_msg_t *jobs;
    long n_jobs;
} feed_t;

static void s_encode_jobs(const opts_t *o, int round, const char *payload, feed_t *f)
{
    f->n_jobs = o->count / o->per_job;
    f->jobs = calloc((size_t)f->n_jobs, sizeof *f->jobs);
    char(*names)[128] = calloc((size_t)o->per_job, 128);
    pp_str_t *topics = calloc((size_t)o->per_job, sizeof *topics);
    for (long j = 0; j < f->n_jobs; j++) {
        for (int k = 0; k < o->per_job; k++) {
            s_topic(names[k], 128, round, "pp", j, k);
            topics[k] = (pp_str_t){names[k], strlen(names[k])};
        }
        pp_mqtt_job_t job = {PP_STR("0123456789abcdef0123456789abcdef"),
                             o->qos,
                             {payload, strlen(payload)},
                             0,
                             (size_t)o->per_job,
                             topics};
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        if (pp_mqtt_job_encode(&job, &sb) != 0) exit(2);
        zmq_msg_init_size(&f->jobs[j], sb.size);
        memcpy(zmq_msg_data(&f->jobs[j]), sb.data, sb.size);
        msgpack_sbuffer_destroy(&sb);
    }
    free(names);
    free(topics);
}

static double s_round_sender(const opts_t *o, int round, feed_t *f, const char *payload)
{
    s_encode_jobs(o, round, payload, f);
    atomic_store(&s_received, 0);
    atomic_store(&s_round, round);
    double t0 = s_now();
    /* Play the broker's hub: feed the dispatcher as its pending FIFO has room, serve the
       sender's credit and acks, until the subscriber has every message. */
    long next = 0;
    int rc = 0;
    void *sock = pp_dispatch_socket(f->hub);
    while (atomic_load(&s_received) < o->count) {
        if (s_now() - t0 > 120) {
            rc = -1;
            break;
        }
        /* Read first: between rounds nothing served the socket, and the sender's
           heartbeats queued there must count before the tick judges it silent. 1 ms, not
           the tick's timeout: the subscriber's progress (paho's thread) does not wake this
           poll. */
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, next == 0 ? 0 : 1) > 0) pp_dispatch_on_readable(f->hub);
        while (next < f->n_jobs && !pp_dispatch_full(f->hub))
            if (pp_dispatch_enqueue(f->hub, &f->jobs[next]) == 0) next++;
        pp_dispatch_pump(f->hub);
        pp_dispatch_tick(f->hub, pp_mono_ms());
    }
    double t1 = s_now();
    /* Every job acked by the sender before the next round (its acks trail the publishes). */
    while (rc == 0 && pp_dispatch_in_flight(f->hub) > 0 && s_now() - t1 < 10) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 5) > 0) pp_dispatch_on_readable(f->hub);
        pp_dispatch_tick(f->hub, pp_mono_ms());
    }
    if (rc != 0)
        fprintf(stderr, "pp-bench-mqtt: sender round %d: only %ld of %ld received\n", round,
                atomic_load(&s_received), o->count);
    for (long j = 0; j < f->n_jobs; j++)
        zmq_msg_close(&f->jobs[j]);
    free(f->jobs);
    return rc == 0 ? (double)o->count / (t1 - t0) : 0.0;
}

static int s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double s_median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, s_cmp);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(int argc, char **argv)
{
    opts_t o = {"tcp://127.0.0.1:1883", "tcp://127.0.0.1:5560", 100000, 1, 1000, 10, 100, 3, 0};
    bool limit_mode = false;
    static const struct option longopts[] = {{"uri", required_argument, NULL, 'u'},
                                             {"broker", required_argument, NULL, 'b'},
                                             {"count", required_argument, NULL, 'n'},
                                             {"qos", required_argument, NULL, 'q'},
                                             {"window", required_argument, NULL, 'w'},
                                             {"topics-per-job", required_argument, NULL, 'k'},
                                             {"payload", required_argument, NULL, 'p'},
                                             {"rounds", required_argument, NULL, 'r'},
                                             {"round", required_argument, NULL, 'R'},
                                             {"limit-publisher", no_argument, NULL, 'L'},
                                             {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u':
            o.uri = optarg;
            break;
        case 'b':
            o.broker = optarg;
            break;
        case 'n':
            o.count = atol(optarg);
            break;
        case 'q':
            o.qos = atoi(optarg);
            break;
        case 'w':
            o.window = atoi(optarg);
            break;
        case 'k':
            o.per_job = atoi(optarg);
            break;
        case 'p':
            o.payload = atoi(optarg);
            break;
        case 'r':
            o.rounds = atoi(optarg);
            break;
        case 'R':
            o.round = atoi(optarg);
            break;
        case 'L':
            limit_mode = true;
            break;
        default:
            return 2;
        }
    }
    if (o.count < 1 || o.qos < 0 || o.qos > 2 || o.window < 1 || o.per_job < 1 || o.payload < 16 ||
        o.rounds < 1 || o.rounds > 50) {
        fprintf(stderr, "pp-bench-mqtt: bad arguments\n");
        return 2;
    }
    o.count -= o.count % o.per_job;
    if (limit_mode) return s_limit_publisher(&o);
    signal(SIGPIPE, SIG_IGN);

    char self[4096];
    ssize_t sl = readlink("/proc/self/exe", self, sizeof self - 1);
    if (sl <= 0) return 2;
    self[sl] = '\0';

    char endpoint[256];
    if (pp_endpoint(o.broker, PP_EP_MQTT_OUT, endpoint, sizeof endpoint) != 0) return 2;
    /* The broker's end: the hub of the mqtt pool (broker/pp_dispatch.c, compiled in),
       bound on mqtt_out. Its pending FIFO is the broker's bound; the sender's credit is
       what moves jobs. */
    pp_log_init("bench-mqtt", PP_LOG_WARN);
    feed_t f = {pp_dispatch_new("mqtt", endpoint, NULL, NULL, 1000, 0, 10000, 64u << 20), NULL, 0};
    if (!f.hub) {
        fprintf(stderr, "pp-bench-mqtt: cannot bind the hub on %s\n", endpoint);
        return 2;
    }

    char id[64];
    snprintf(id, sizeof id, "ppbench-sub-%d", (int)getpid());
    MQTTAsync sub = s_connect(o.uri, id, 65535, s_on_message);
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = s_on_sub_ok;
    MQTTAsync_subscribe(sub, "ppbench/#", o.qos, &ro);
    for (int i = 0; i < 500 && !atomic_load(&s_subscribed); i++)
        s_sleep_ms(10);
    if (!atomic_load(&s_subscribed)) {
        fprintf(stderr, "pp-bench-mqtt: subscribe failed\n");
        return 2;
    }

    char *payload = s_payload(o.payload);
    /* Warm-up: one job through the sender proves the whole path is connected. */
    opts_t warm = o;
    warm.count = 1;
    warm.per_job = 1;
    feed_t wf = f;
    if (s_round_sender(&warm, 1, &wf, payload) <= 0) {
        fprintf(stderr,
                "pp-bench-mqtt: the sender did not deliver the warm-up job (is "
                "pushpipe-mqtt-sender running with --broker %s?)\n",
                o.broker);
        return 2;
    }

    double *lim = calloc((size_t)o.rounds, sizeof *lim);
    double *snd = calloc((size_t)o.rounds, sizeof *snd);
    for (int r = 0; r < o.rounds; r++) {
        lim[r] = s_round_limit(&o, 10 + 2 * r, self);
        snd[r] = s_round_sender(&o, 11 + 2 * r, &f, payload);
        printf("  round %d: limit %.0f msg/s, sender %.0f msg/s\n", r + 1, lim[r], snd[r]);
        fflush(stdout);
    }
    double ml = s_median(lim, o.rounds), ms = s_median(snd, o.rounds);
    double ratio = ml > 0 ? ms / ml : 0;
    printf("qos=%d messages=%ld window=%d topics_per_job=%d payload=%dB rounds=%d\n", o.qos,
           o.count, o.window, o.per_job, o.payload, o.rounds);
    printf("  limit (plain paho MQTTAsync, same window): %.0f msg/s\n", ml);
    printf("  through pushpipe-mqtt-sender:              %.0f msg/s\n", ms);
    printf("  ratio: %.2f (target >= 0.80) %s\n", ratio, ratio >= 0.8 ? "ok" : "BELOW TARGET");

    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnect(sub, &d);
    s_sleep_ms(100);
    MQTTAsync_destroy(&sub);
    printf("  hub: jobs still in flight=%zu pending=%zu workers=%zu\n",
           pp_dispatch_in_flight(f.hub), pp_dispatch_pending(f.hub), pp_dispatch_workers(f.hub));
    pp_dispatch_destroy(&f.hub);
    free(payload);
    free(lim);
    free(snd);
    return 0;
}

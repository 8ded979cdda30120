/*  bench_resolver: the benchmark's driver. Plays the broker for one pushpipe-resolver
    with the broker's own hub side of the link (broker/pp_dispatch.h, bound on the resolve
    endpoint base+2 as in common/pp_endpoints.h): RESOLVE jobs go out on credit, the
    resolver's APNS and MQTT jobs come back as outputs (counted by pp_dispatch_set_output)
    and every RESOLVE job is acked. Also fills Redis with users and groups (hiredis,
    pipelined).

      bench_resolver populate --redis-port P --users N --group NAME:SIZE ...
      bench_resolver single   --broker tcp://127.0.0.1:BASE --users N --messages M
      bench_resolver group    --broker tcp://127.0.0.1:BASE --group NAME:SIZE

    Users are "%012d" (the keys redis-benchmark's __rand_int__ makes), each with a token,
    so every lookup yields one APNs target. single/group print "users=... seconds=...
    users_per_s=..." once every expected target has come back in APNS jobs.
*/
#include "pp_dispatch.h"
#include "pp_endpoints.h"
#include "pp_log.h"
#include "pp_job.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_token(long i, char *out)
{
    /* 64 hex characters, distinct per user */
    snprintf(out, 65, "%016lx%016lx%016lx%016lx", (unsigned long)i * 2654435761UL, (unsigned long)i,
             ~(unsigned long)i, (unsigned long)i ^ 0x5a5a5a5aUL);
}

static void s_reply_check(redisContext *c, long n)
{
    for (long i = 0; i < n; i++) {
        void *r = NULL;
        if (redisGetReply(c, &r) != REDIS_OK) {
            fprintf(stderr, "redis: %s\n", c->errstr);
            exit(1);
        }
        freeReplyObject(r);
    }
}

static int s_populate(int port, long users, int n_groups, char **groups)
{
    redisContext *c = redisConnect("127.0.0.1", port);
    if (!c || c->err) {
        fprintf(stderr, "cannot connect to redis on %d\n", port);
        return 1;
    }
    char uid[24], tok[80];
    long pending = 0;
    for (long i = 0; i < users; i++) {
        snprintf(uid, sizeof uid, "%012ld", i);
        s_token(i, tok);
        redisAppendCommand(c, "HSET User:%s app_token %s app_ident com.bench app_version produce",
                           uid, tok);
        if (++pending == 1000) {
            s_reply_check(c, pending);
            pending = 0;
        }
    }
    for (int g = 0; g < n_groups; g++) {
        char name[128];
        long size = 0;
        if (sscanf(groups[g], "%127[^:]:%ld", name, &size) != 2) return 1;
        redisAppendCommand(c, "DEL GroupAppleUser:%s", name);
        pending++;
        for (long i = 0; i < size; i += 1000) {
            /* SADD with up to 1000 members per command */
            const char *argv[1002];
            size_t lens[1002];
            static char ids[1000][24];
            argv[0] = "SADD";
            lens[0] = 4;
            char key[160];
            snprintf(key, sizeof key, "GroupAppleUser:%s", name);
            argv[1] = key;
            lens[1] = strlen(key);
            int k = 0;
            for (long j = i; j < size && j < i + 1000; j++, k++) {
                snprintf(ids[k], sizeof ids[k], "%012ld", j);
                argv[2 + k] = ids[k];
                lens[2 + k] = 12;
            }
            redisAppendCommandArgv(c, 2 + k, argv, lens);
            if (++pending >= 50) {
                s_reply_check(c, pending);
                pending = 0;
            }
        }
    }
    s_reply_check(c, pending);
    redisFree(c);
    return 0;
}

/*  The broker's side: the hub of the resolve pool (broker/pp_dispatch.h) on base+2. The
    resolver's APNS and MQTT jobs come back as outputs over the same link. */
typedef struct {
    pp_dispatch_t *d;
    long targets; /* APNs targets in the APNS jobs received */
    long outputs;
} s_broker_t;

/*  Output function: counts the APNs targets of APNS jobs (MQTT jobs are just counted). */
static bool s_output(void *ctx, zmq_msg_t *body)
{
    s_broker_t *b = ctx;
    b->outputs++;
    pp_apns_job_t job;
    const char *why;
    const uint8_t *p = zmq_msg_data(body);
    /* [kind, version, ...]: a fixarray whose first element is the kind */
    if (zmq_msg_size(body) > 1 && p[1] == PP_JOB_APNS &&
        pp_apns_job_decode(p, zmq_msg_size(body), &job, &why) == 0) {
        b->targets += (long)job.n_targets;
        pp_apns_job_clear(&job);
    }
    return true;
}

static void s_bind(s_broker_t *b, const char *base)
{
    char ep[256];
    memset(b, 0, sizeof *b);
    if (pp_endpoint(base, PP_EP_RESOLVE, ep, sizeof ep) != 0 ||
        !(b->d = pp_dispatch_new("resolve", ep, NULL, NULL, 1000, 0, 100000, 1u << 30))) {
        fprintf(stderr, "cannot bind %s\n", ep);
        exit(1);
    }
    pp_dispatch_set_output(b->d, s_output, b);
}

static void s_close(s_broker_t *b)
{
    pp_dispatch_destroy(&b->d);
}

/*  Runs the hub for up to timeout_ms (less when something arrives); returns the number of
    APNs targets received meanwhile. */
static long s_drain(s_broker_t *b, int timeout_ms)
{
    long before = b->targets;
    int t = pp_dispatch_tick(b->d, pp_mono_ms());
    zmq_pollitem_t it = {pp_dispatch_socket(b->d), 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, t < timeout_ms ? t : timeout_ms) > 0) pp_dispatch_on_readable(b->d);
    pp_dispatch_pump(b->d);
    return b->targets - before;
}

static int s_send_resolve(s_broker_t *b, msgpack_sbuffer *sb, long seq, int type, pp_str_t id)
{
    char msg_id[40];
    snprintf(msg_id, sizeof msg_id, "%032lx", seq);
    pp_resolve_job_t job;
    memset(&job, 0, sizeof job);
    job.msg_id = PP_STR_C(msg_id);
    job.push_type = (uint8_t)type;
    job.n_ids = 1;
    job.ids = &id;
    job.data_json = PP_STR("{\"alert\":\"bench\"}");
    pp_opts_init(&job.opts);
    msgpack_sbuffer_clear(sb);
    if (pp_resolve_job_encode(&job, sb) != 0) return -1;
    if (pp_dispatch_full(b->d)) return 1;
    zmq_msg_t msg;
    zmq_msg_init_size(&msg, sb->size);
    memcpy(zmq_msg_data(&msg), sb->data, sb->size);
    if (pp_dispatch_enqueue(b->d, &msg) != 0) {
        zmq_msg_close(&msg);
        return 1;
    }
    return 0;
}

/*  One single-user message through, so that the resolver is connected (it has granted
    credit) and its Redis connection is open before timing starts. */
static int s_warm_up(s_broker_t *b, msgpack_sbuffer *sb)
{
    double deadline = s_now() + 10;
    while (pp_dispatch_workers(b->d) == 0 && s_now() < deadline)
        s_drain(b, 50);
    s_send_resolve(b, sb, 0, 3, PP_STR("000000000000"));
    long got = 0;
    while (got < 1 && s_now() < deadline)
        got += s_drain(b, 100);
    if (got < 1) fprintf(stderr, "no reply from the resolver\n");
    return got < 1 ? -1 : 0;
}

static void s_report(const char *what, long users, double secs)
{
    printf("%s users=%ld seconds=%.3f users_per_s=%.0f\n", what, users, secs, (double)users / secs);
}

static int s_single(const char *base, long users, long messages)
{
    s_broker_t b;
    s_bind(&b, base);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (s_warm_up(&b, &sb) != 0) return 1;
    long got = 0;
    srand(42);
    got = 0;
    long sent = 0;
    double t0 = s_now();
    char uid[24];
    while (got < messages) {
        /* keep a few windows' worth pending: the hub sends as credit comes back */
        while (sent < messages && pp_dispatch_pending(b.d) < 2048) {
            snprintf(uid, sizeof uid, "%012ld", (long)rand() % users);
            if (s_send_resolve(&b, &sb, sent + 1, 3, PP_STR_C(uid)) != 0) break;
            sent++;
        }
        got += s_drain(&b, 100);
        if (s_now() - t0 > 300) {
            fprintf(stderr, "timeout: %ld of %ld\n", got, messages);
            return 1;
        }
    }
    s_report("single", got, s_now() - t0);
    while (pp_dispatch_in_flight(b.d) > 0 && s_now() - t0 < 300) /* the last acks */
        s_drain(&b, 100);
    fprintf(stderr, "single: outputs=%ld in_flight=%zu pending=%zu\n", b.outputs,
            pp_dispatch_in_flight(b.d), pp_dispatch_pending(b.d));
    msgpack_sbuffer_destroy(&sb);
    s_close(&b);
    return 0;
}

static int s_group(const char *base, const char *spec)
{
    char name[128];
    long size = 0;
    if (sscanf(spec, "%127[^:]:%ld", name, &size) != 2) return 1;
    s_broker_t b;
    s_bind(&b, base);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    if (s_warm_up(&b, &sb) != 0) return 1;
    long got = 0;
    double t0 = s_now();
    s_send_resolve(&b, &sb, 1, 1, PP_STR_C(name));
    while (got < size) {
        got += s_drain(&b, 1000);
        if (s_now() - t0 > 600) {
            fprintf(stderr, "timeout: %ld of %ld\n", got, size);
            return 1;
        }
    }
    char what[160];
    snprintf(what, sizeof what, "group:%s", name);
    s_report(what, got, s_now() - t0);
    msgpack_sbuffer_destroy(&sb);
    s_close(&b);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: see the comment at the top of bench_resolver.c\n");
        return 2;
    }
    const char *mode = argv[1], *broker = "tcp://127.0.0.1:5560";
    int port = 6379, n_groups = 0;
    long users = 0, messages = 0;
    char *groups[16];
    for (int i = 2; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--broker"))
            broker = argv[i + 1];
        else if (!strcmp(argv[i], "--redis-port"))
            port = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--users"))
            users = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--messages"))
            messages = atol(argv[i + 1]);
        else if (!strcmp(argv[i], "--group") && n_groups < 16)
            groups[n_groups++] = argv[i + 1];
    }
    if (!strcmp(mode, "populate")) return s_populate(port, users, n_groups, groups);
    if (!strcmp(mode, "single")) return s_single(broker, users, messages);
    if (!strcmp(mode, "group") && n_groups == 1) return s_group(broker, groups[0]);
    fprintf(stderr, "bad arguments\n");
    return 2;
}

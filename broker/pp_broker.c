/*  pushpipe-broker: intake, validation, stamping, and the hub between stages (see pp_broker.h). */
#include "pp_broker.h"
#include "pp_dispatch.h"
#include "pp_durable.h"
#include "pp_endpoints.h"
#include "pp_job.h"
#include "pp_limits.h"
#include "pp_log.h"
#include "pp_msgid.h"
#include "pp_proc.h"
#include "pp_reply.h"

#include <czmq.h>
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Messages read from one client input per loop turn: large enough that zmq_poll's cost is
    spread over many frames, small enough that no input starves the others. */
#define S_BATCH 512
/*  Longest wait in zmq_poll: signals may land on a thread of libmicrohttpd's rather than
    interrupt our poll, so the loop looks at the stop flag at least this often. */
#define S_POLL_MS 100

/*  Rejection reasons beyond pp_frame's. */
enum {
    S_REASON_OVERLOADED = PP_FRAME_REASON_COUNT,
    S_REASON_STOPPING,
    S_REASON_INTERNAL,
    S_REASON_UNAVAILABLE, /* durability on: the store did not confirm */
    S_REASON_COUNT
};
/*  s_accept_frame: published to the durable store, the verdict comes later. */
enum { S_DEFERRED = S_REASON_COUNT + 1 };

/*  Why an output from a resolver was dropped (bad_job_total{reason}). */
enum { S_BAD_NOT_A_JOB, S_BAD_WRONG_KIND, S_BAD_COUNT };
static const char *s_bad_names[S_BAD_COUNT] = {"not_a_job", "wrong_kind"};

typedef struct {
    pp_metric_t *received[PP_EP_COUNT];
    pp_metric_t *accepted;
    pp_metric_t *rejected[S_REASON_COUNT];
    pp_metric_t *duplicates;
    pp_metric_t *forwarded[PP_STAGE_COUNT];
    pp_metric_t *queue_depth[PP_STAGE_COUNT];
    pp_metric_t *queue_bytes[PP_STAGE_COUNT];
    pp_metric_t *queue_full[PP_STAGE_COUNT];
    pp_metric_t *enqueue_errors[PP_STAGE_COUNT];
    pp_metric_t *dropped_at_exit[PP_STAGE_COUNT];
    pp_metric_t *bad_job[S_BAD_COUNT];
    pp_metric_t *recv_errors;
    pp_metric_t *replies_dropped;
} s_metrics_t;

struct pp_broker_t {
    pp_broker_config_t cfg;
    zsock_t *sock[PP_EP_SUBMIT + 1];     /* the client sockets: intake (PULL), submit (ROUTER) */
    void *raw[PP_EP_SUBMIT + 1];         /* zsock_resolve() of each, for the raw libzmq hot path */
    pp_dispatch_t *pool[PP_STAGE_COUNT]; /* resolve, apns, mqtt: link hubs (ROUTER) */
    bool was_full[PP_STAGE_COUNT];
    bool reading_resolve; /* false while the apns or mqtt pool is full */
    pp_frame_decoder_t *decoder;
    pp_msgid_t *ids;
    msgpack_sbuffer job;   /* reused for every RESOLVE job: no per-frame allocation */
    msgpack_sbuffer reply; /* reused for every submit reply */
    zmq_msg_t in;          /* reused for every message read */
    zmq_msg_t part[3];     /* submit: identity, then up to two more parts */
    pp_ratelimit_t reject_rl, job_rl, error_rl;
    pp_ratelimit_t full_rl[PP_STAGE_COUNT]; /* a pool at its bound flaps full/not full */
    bool intake_open;
    pp_durable_t *durable; /* NULL unless broker.durability is "jetstream" */
    s_metrics_t m;
    /*  Per-message counts are tallied here and added to the metrics once per loop turn:
        three atomic increments per frame showed in profiles of the hot path. */
    struct {
        uint64_t received[PP_EP_COUNT];
        uint64_t accepted;
        uint64_t forwarded[PP_STAGE_COUNT];
    } tally;
};

static const pp_ep_t s_stage_ep[PP_STAGE_COUNT] = {PP_EP_RESOLVE, PP_EP_APNS_OUT, PP_EP_MQTT_OUT};

static const char *s_reason_name(int reason)
{
    if (reason == S_REASON_OVERLOADED) return "overloaded";
    if (reason == S_REASON_STOPPING) return "stopping";
    if (reason == S_REASON_INTERNAL) return "internal";
    if (reason == S_REASON_UNAVAILABLE) return "unavailable";
    return pp_frame_reason_name((pp_frame_reason_t)reason);
}

/* ---------------------------------------------------------------- metrics */

static void s_register_per_label(pp_metrics_t *r, pp_metric_t **out, int n, const char *name,
                                 const char *help, const char *label, bool gauge,
                                 const char *(*label_of)(int))
{
    for (int i = 0; i < n; i++) {
        const char *v = label_of(i);
        if (!v) continue;
        char labels[96];
        snprintf(labels, sizeof labels, "%s=\"%s\"", label, v);
        out[i] = gauge ? pp_metrics_gauge(r, name, help, labels)
                       : pp_metrics_counter(r, name, help, labels);
    }
}

static const char *s_stage_label(int i)
{
    return pp_stage_name(i);
}

static const char *s_bad_label(int i)
{
    return s_bad_names[i];
}

static const char *s_input_label(int i)
{
    return i == PP_EP_INTAKE || i == PP_EP_SUBMIT ? pp_endpoint_name((pp_ep_t)i) : NULL;
}

static const char *s_reason_label(int i)
{
    return i == PP_FRAME_OK ? NULL : s_reason_name(i);
}

static void s_register_metrics(pp_metrics_t *r, s_metrics_t *m)
{
    s_register_per_label(r, m->received, PP_EP_COUNT, "received_total",
                         "Client messages read, per input endpoint", "endpoint", false,
                         s_input_label);
    m->accepted = pp_metrics_counter(r, "accepted_total",
                                     "Client frames accepted and stamped with an id", NULL);
    s_register_per_label(r, m->rejected, S_REASON_COUNT, "rejected_total",
                         "Client frames rejected, per reason", "reason", false, s_reason_label);
    m->duplicates = pp_metrics_counter(r, "duplicates_removed_total",
                                       "Duplicate user ids removed from type 2 frames", NULL);
    s_register_per_label(r, m->forwarded, PP_STAGE_COUNT, "forwarded_total",
                         "Jobs handed to a worker pool (its pending queue)", "stage", false,
                         s_stage_label);
    s_register_per_label(r, m->queue_depth, PP_STAGE_COUNT, "queue_depth",
                         "Jobs pending in the pool, not yet sent to a worker", "stage", true,
                         s_stage_label);
    s_register_per_label(r, m->queue_bytes, PP_STAGE_COUNT, "queue_bytes",
                         "Bytes pending in the pool, not yet sent to a worker", "stage", true,
                         s_stage_label);
    s_register_per_label(r, m->queue_full, PP_STAGE_COUNT, "queue_full_total",
                         "Times the pool's pending queue filled up and its inputs were paused",
                         "stage", false, s_stage_label);
    s_register_per_label(r, m->enqueue_errors, PP_STAGE_COUNT, "enqueue_errors_total",
                         "Jobs dropped because the pool could not take them (out of memory)",
                         "stage", false, s_stage_label);
    s_register_per_label(r, m->dropped_at_exit, PP_STAGE_COUNT, "dropped_at_exit_total",
                         "Jobs pending or unacknowledged when the drain time ran out", "stage",
                         false, s_stage_label);
    s_register_per_label(r, m->bad_job, S_BAD_COUNT, "bad_job_total",
                         "Outputs from resolvers dropped: not a job, or not an APNS/MQTT job",
                         "reason", false, s_bad_label);
    m->recv_errors =
        pp_metrics_counter(r, "recv_errors_total", "Socket receive errors other than EAGAIN", NULL);
    m->replies_dropped =
        pp_metrics_counter(r, "replies_dropped_total",
                           "Submit replies not sent: client gone or its reply queue at HWM", NULL);
}

/* ---------------------------------------------------------------- sockets */

static int s_setopt_int(void *raw, int opt, int value)
{
    return zmq_setsockopt(raw, opt, &value, sizeof value);
}

static int s_set_options(pp_broker_t *b, pp_ep_t ep, void *raw)
{
    int rc = 0;
    rc |= s_setopt_int(raw, ZMQ_SNDHWM, b->cfg.hwm);
    rc |= s_setopt_int(raw, ZMQ_RCVHWM, b->cfg.hwm);
    /* What the client sockets hold at close is not ours yet (not accepted, or a reply). */
    rc |= s_setopt_int(raw, ZMQ_LINGER, 0);
    if (ep == PP_EP_SUBMIT) {
        /* EHOSTUNREACH/EAGAIN instead of a silent drop, so lost replies are counted. */
        rc |= s_setopt_int(raw, ZMQ_ROUTER_MANDATORY, 1);
    }
    /* Frames somewhat over the limit still arrive, to be counted as too_large; a peer
       sending far more is disconnected by libzmq before it costs memory. */
    int64_t max = (int64_t)b->cfg.limits.max_frame_bytes * 2 + 4096;
    rc |= zmq_setsockopt(raw, ZMQ_MAXMSGSIZE, &max, sizeof max);
    return rc ? -1 : 0;
}

static int s_open(pp_broker_t *b, pp_ep_t ep, int type, pp_curve_t *curve)
{
    char addr[512];
    if (pp_endpoint(b->cfg.bind, ep, addr, sizeof addr) != 0) {
        pp_error("bind_failed", "endpoint=%s error=\"bad address\"", pp_endpoint_name(ep));
        return -1;
    }
    b->sock[ep] = zsock_new(type);
    if (!b->sock[ep]) {
        pp_error("socket_failed", "endpoint=%s error=\"%s\"", pp_endpoint_name(ep),
                 zmq_strerror(errno));
        return -1;
    }
    void *raw = zsock_resolve(b->sock[ep]);
    b->raw[ep] = raw;
    /* Intake and submit take pushes: client application keys only. */
    if (s_set_options(b, ep, raw) != 0 || pp_curve_apply_role(curve, raw, PP_ROLE_CLIENTS) != 0) {
        pp_error("socket_options_failed", "endpoint=%s error=\"%s\"", pp_endpoint_name(ep),
                 zmq_strerror(errno));
        return -1;
    }
    if (zmq_bind(raw, addr) != 0) {
        pp_error("bind_failed", "endpoint=%s address=%s error=\"%s\"", pp_endpoint_name(ep), addr,
                 zmq_strerror(errno));
        return -1;
    }
    pp_info("bound", "endpoint=%s address=%s", pp_endpoint_name(ep), addr);
    return 0;
}

static bool s_on_output(void *ctx, zmq_msg_t *body);

static int s_open_pool(pp_broker_t *b, pp_stage_t s, pp_curve_t *curve, pp_metrics_t *metrics)
{
    char addr[512];
    if (pp_endpoint(b->cfg.bind, s_stage_ep[s], addr, sizeof addr) != 0) {
        pp_error("bind_failed", "endpoint=%s error=\"bad address\"",
                 pp_endpoint_name(s_stage_ep[s]));
        return -1;
    }
    /* The resolvers' outputs wait in the resolve socket's receive pipes while the apns or
       mqtt pool is full: bound them by broker.hwm (per resolver) rather than pp_dispatch's
       generous default, so that backpressure reaches the resolvers soon. */
    int rcvhwm = s == PP_STAGE_RESOLVE ? b->cfg.hwm : PP_DISPATCH_DEFAULT_RCVHWM;
    b->pool[s] = pp_dispatch_new_rcvhwm(pp_stage_name(s), addr, curve, metrics, b->cfg.heartbeat_ms,
                                        b->cfg.timeout_ms, b->cfg.queue_msgs[s],
                                        b->cfg.queue_bytes[s], rcvhwm);
    if (!b->pool[s]) return -1; /* pp_dispatch logged why */
    pp_dispatch_set_max_workers_per_key(b->pool[s], b->cfg.max_workers_per_key);
    pp_info("bound", "endpoint=%s address=%s pool=%s", pp_endpoint_name(s_stage_ep[s]), addr,
            pp_stage_name(s));
    return 0;
}

static int s_open_all(pp_broker_t *b, pp_curve_t *curve, pp_metrics_t *metrics)
{
    if (s_open(b, PP_EP_INTAKE, ZMQ_PULL, curve) != 0) return -1;
    if (s_open(b, PP_EP_SUBMIT, ZMQ_ROUTER, curve) != 0) return -1;
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        if (s_open_pool(b, (pp_stage_t)s, curve, metrics) != 0) return -1;
    /* Resolvers send their APNS and MQTT jobs back over their link as outputs. */
    pp_dispatch_set_output(b->pool[PP_STAGE_RESOLVE], s_on_output, b);
    return 0;
}

static void s_close(pp_broker_t *b, pp_ep_t ep)
{
    zsock_destroy(&b->sock[ep]);
    b->raw[ep] = NULL;
}

static int s_new_state(pp_broker_t *b)
{
    b->decoder = pp_frame_decoder_new(&b->cfg.limits);
    b->ids = pp_msgid_new(b->cfg.have_instance ? &b->cfg.instance : NULL);
    if (!b->decoder || !b->ids) return -1;
    msgpack_sbuffer_init(&b->job);
    msgpack_sbuffer_init(&b->reply);
    zmq_msg_init(&b->in);
    for (int i = 0; i < 3; i++)
        zmq_msg_init(&b->part[i]);
    uint32_t burst = (uint32_t)b->cfg.log_rejects_per_s;
    b->reject_rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(1000, burst);
    b->job_rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(1000, burst);
    b->error_rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(1000, 10);
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        b->full_rl[s] = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 1);
    return 0;
}

static void s_reply_route(pp_broker_t *b, const pp_durable_route_t *route, int reason,
                          const char *id, const char *detail);
static int s_to_pool(pp_broker_t *b, pp_stage_t s, zmq_msg_t *msg, bool force);

/*  pp_durable's verdict on a published frame. */
static void s_on_verdict(void *ctx, const pp_durable_route_t *route, bool ok, const char *msg_id,
                         const char *error)
{
    pp_broker_t *b = ctx;
    if (ok) b->tally.accepted++;
    if (!ok) pp_metric_inc(b->m.rejected[S_REASON_UNAVAILABLE]);
    if (route)
        s_reply_route(b, route, ok ? PP_FRAME_OK : S_REASON_UNAVAILABLE, msg_id,
                      error ? error : "");
}

/*  pp_durable hands a stored RESOLVE job to run: into the resolve pool, even when full
    (fetching pauses while it is, so the overshoot is one fetch batch at most). */
static int s_on_stored(void *ctx, const void *job, size_t len)
{
    pp_broker_t *b = ctx;
    zmq_msg_t m;
    if (zmq_msg_init_size(&m, len) != 0) return -1;
    memcpy(zmq_msg_data(&m), job, len);
    int rc = s_to_pool(b, PP_STAGE_RESOLVE, &m, true);
    zmq_msg_close(&m);
    return rc;
}

/*  A worker acknowledged a job: with durability, one unit of its message is done. */
static void s_on_acked(void *ctx, const zmq_msg_t *job)
{
    pp_broker_t *b = ctx;
    if (b->durable)
        pp_durable_done(b->durable, zmq_msg_data((zmq_msg_t *)job), zmq_msg_size((zmq_msg_t *)job));
}

static int s_open_durable(pp_broker_t *b, pp_metrics_t *metrics)
{
    if (!b->cfg.durable) return 0;
    pp_durable_callbacks_t cb = {.reply = s_on_verdict, .run = s_on_stored};
    char err[512];
    b->durable = pp_durable_new(&b->cfg.js, &cb, b, metrics, err, sizeof err);
    if (!b->durable) {
        pp_error("durability_unavailable", "servers=%s stream=%s error=\"%s\"",
                 b->cfg.js.servers[0], b->cfg.js.stream, err);
        return -1;
    }
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        pp_dispatch_set_acked(b->pool[s], s_on_acked, b);
    pp_info("durability",
            "mode=jetstream servers=%zu stream=%s consumer=%s replicas=%d "
            "ack_wait_ms=%d",
            b->cfg.js.n_servers, b->cfg.js.stream, b->cfg.js.durable, b->cfg.js.replicas,
            b->cfg.js.ack_wait_ms);
    return 0;
}

pp_broker_t *pp_broker_new(const pp_broker_config_t *cfg, pp_curve_t *curve, pp_metrics_t *metrics)
{
    pp_broker_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->cfg = *cfg;
    b->reading_resolve = true;
    s_register_metrics(metrics, &b->m);
    if (s_new_state(b) != 0) {
        pp_error("broker_init_failed", "error=\"out of memory or no random bytes\"");
        pp_broker_destroy(&b);
        return NULL;
    }
    if (s_open_all(b, curve, metrics) != 0 || s_open_durable(b, metrics) != 0) {
        pp_broker_destroy(&b);
        return NULL;
    }
    b->intake_open = true;
    pp_info("broker_ready", "bind=%s instance=%016llx hwm=%d drain_ms=%d heartbeat_ms=%u",
            b->cfg.bind, (unsigned long long)pp_msgid_instance(b->ids), b->cfg.hwm, b->cfg.drain_ms,
            b->cfg.heartbeat_ms);
    return b;
}

void pp_broker_destroy(pp_broker_t **p)
{
    if (!p || !*p) return;
    pp_broker_t *b = *p;
    for (int ep = 0; ep <= PP_EP_SUBMIT; ep++)
        if (b->sock[ep]) s_close(b, (pp_ep_t)ep);
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        pp_dispatch_destroy(&b->pool[s]);
    pp_durable_destroy(&b->durable);
    pp_frame_decoder_destroy(&b->decoder);
    pp_msgid_destroy(&b->ids);
    msgpack_sbuffer_destroy(&b->job);
    msgpack_sbuffer_destroy(&b->reply);
    zmq_msg_close(&b->in);
    for (int i = 0; i < 3; i++)
        zmq_msg_close(&b->part[i]);
    free(b);
    *p = NULL;
}

/* ---------------------------------------------------------------- pools */

static void s_log_error(pp_broker_t *b, const char *event, const char *where)
{
    uint32_t suppressed;
    if (pp_ratelimit_allow(&b->error_rl, &suppressed))
        pp_error(event, "where=%s error=\"%s\" suppressed=%u", where, zmq_strerror(errno),
                 suppressed);
}

/*  Hands *msg to the stage's pool (moved, so *msg is left empty). force: ignore the pool's
    bounds (an output already read must not be dropped); otherwise the caller checked that
    the pool is not full. */
static int s_to_pool(pp_broker_t *b, pp_stage_t s, zmq_msg_t *msg, bool force)
{
    int rc =
        force ? pp_dispatch_enqueue_force(b->pool[s], msg) : pp_dispatch_enqueue(b->pool[s], msg);
    if (rc == 0) {
        b->tally.forwarded[s]++;
        return 0;
    }
    /* Out of memory (or, not reached, a caller that did not check): counted, not asserted. */
    errno = ENOMEM;
    pp_metric_inc(b->m.enqueue_errors[s]);
    s_log_error(b, "enqueue_failed", pp_stage_name(s));
    zmq_msg_close(msg);
    zmq_msg_init(msg);
    return -1;
}

static void s_bad_job(pp_broker_t *b, int why, size_t size)
{
    pp_metric_inc(b->m.bad_job[why]);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&b->job_rl, &suppressed))
        pp_warn("bad_job", "from=resolve reason=%s size=%zu suppressed=%u", s_bad_names[why], size,
                suppressed);
}

/*  pp_dispatch output function of the resolve pool: one APNS or MQTT job from a resolver,
    moved into the pool its kind names even when that pool is full (it was read; its
    RESOLVE job will be acknowledged after it). Returns false once the target is full, so
    that the dispatcher stops reading resolvers (backpressure). */
static bool s_on_output(void *ctx, zmq_msg_t *body)
{
    pp_broker_t *b = ctx;
    size_t size = zmq_msg_size(body);
    int kind = pp_job_peek_kind(zmq_msg_data(body), size);
    pp_stage_t s;
    if (kind == PP_JOB_APNS) {
        s = PP_STAGE_APNS;
    } else if (kind == PP_JOB_MQTT) {
        s = PP_STAGE_MQTT;
    } else {
        s_bad_job(b, kind == 0 ? S_BAD_NOT_A_JOB : S_BAD_WRONG_KIND, size);
        return true;
    }
    if (b->durable) pp_durable_output(b->durable, zmq_msg_data(body), size);
    s_to_pool(b, s, body, true);
    return !pp_dispatch_full(b->pool[s]);
}

/* ---------------------------------------------------------------- client frames */

static void s_log_reject(pp_broker_t *b, pp_ep_t ep, int reason, const char *detail, size_t size)
{
    uint32_t suppressed;
    if (!pp_ratelimit_allow(&b->reject_rl, &suppressed)) return;
    char quoted[200];
    pp_log_quote(detail, strlen(detail), 150, quoted, sizeof quoted);
    pp_warn("frame_rejected", "endpoint=%s reason=%s detail=%s size=%zu suppressed=%u",
            pp_endpoint_name(ep), s_reason_name(reason), quoted, size, suppressed);
}

static void s_reject(pp_broker_t *b, pp_ep_t ep, int reason, const char *detail, size_t size)
{
    pp_metric_inc(b->m.rejected[reason]);
    s_log_reject(b, ep, reason, detail, size);
}

/*  Encodes the decoded frame as a RESOLVE job into b->job and hands it to the resolve pool
    (the caller checked that it is not full). Returns 0 once the job is queued, or -1 if
    it could not be built or queued (out of memory): then nothing is queued. */
static int s_send_resolve(pp_broker_t *b, const pp_frame_t *frame, const char *id,
                          uint64_t received_us)
{
    pp_resolve_job_t job = {.msg_id = {id, PP_MSGID_LEN},
                            .push_type = frame->push_type,
                            .n_ids = frame->n_ids,
                            .ids = frame->ids,
                            .data_json = frame->data_json,
                            .received_us = received_us,
                            .opts = frame->opts};
    msgpack_sbuffer_clear(&b->job);
    if (pp_resolve_job_encode(&job, &b->job) != 0) return -1;
    if (b->durable) return 0; /* published by the caller, queued when it comes back */
    zmq_msg_t out;
    if (zmq_msg_init_size(&out, b->job.size) != 0) return -1;
    memcpy(zmq_msg_data(&out), b->job.data, b->job.size);
    int rc = s_to_pool(b, PP_STAGE_RESOLVE, &out, false);
    zmq_msg_close(&out); /* empty after s_to_pool; closing an empty message is free */
    return rc;
}

/*  Durability on: hands the RESOLVE job in b->job to the store, under the client's
    message id when it gave one (so that its resend to another broker is recognised by
    JetStream), else in a batch. Returns pp_durable_accept's result. */
static int s_publish_resolve(pp_broker_t *b, const pp_frame_t *frame, const char *id,
                             const pp_durable_route_t *route)
{
    char dedup[80];
    if (frame->opts.client_id.len == 0)
        return pp_durable_accept(b->durable, b->job.data, b->job.size, id, NULL, route);
    snprintf(dedup, sizeof dedup, "c:%.*s", (int)frame->opts.client_id.len,
             frame->opts.client_id.ptr);
    return pp_durable_accept(b->durable, b->job.data, b->job.size, id, dedup, route);
}

static void s_copy_cid(const pp_frame_t *frame, pp_durable_route_t *route)
{
    size_t n = frame->opts.client_id.len;
    if (n >= sizeof route->cid) n = 0; /* not reached: pp_frame bounds client ids */
    if (n) memcpy(route->cid, frame->opts.client_id.ptr, n);
    route->cid[n] = '\0';
    route->cid_len = n;
}

/*  The client's message id of a frame that is refused before its turn, for the reply. */
static void s_frame_cid(pp_broker_t *b, const void *buf, size_t len, pp_durable_route_t *route)
{
    pp_frame_t frame;
    const char *detail = "";
    if (pp_frame_decode(b->decoder, buf, len, (int64_t)(pp_wall_us() / 1000000), &frame, &detail) ==
        PP_FRAME_OK)
        s_copy_cid(&frame, route);
}

/*  Validates and stamps one client frame and sends its RESOLVE job (with durability:
    publishes it, route saying where the verdict goes, NULL for fire-and-forget). Returns
    PP_FRAME_OK with the id in `id`, S_DEFERRED when the verdict comes later, or a reason
    with *detail set (and counted, logged). */
static int s_accept_frame(pp_broker_t *b, pp_ep_t ep, const void *buf, size_t len,
                          char id[PP_MSGID_LEN + 1], const char **detail, pp_durable_route_t *route)
{
    uint64_t now_us = pp_wall_us();
    pp_frame_t frame;
    *detail = "";
    pp_frame_reason_t reason =
        pp_frame_decode(b->decoder, buf, len, (int64_t)(now_us / 1000000), &frame, detail);
    if (reason == PP_FRAME_OK && route) s_copy_cid(&frame, route);
    if (reason != PP_FRAME_OK) {
        if (!*detail) *detail = "";
        s_reject(b, ep, reason, *detail, len);
        return reason;
    }
    pp_msgid_next(b->ids, id);
    if (s_send_resolve(b, &frame, id, now_us) != 0) {
        /* Never "accepted" for a job that is not queued: the client must resend. */
        *detail = "the job could not be queued (out of memory)";
        s_reject(b, ep, S_REASON_INTERNAL, *detail, len);
        return S_REASON_INTERNAL;
    }
    if (frame.duplicates_removed) pp_metric_add(b->m.duplicates, frame.duplicates_removed);
    if (b->durable) {
        int rc = s_publish_resolve(b, &frame, id, route);
        if (rc == PP_DURABLE_TOO_LARGE) {
            *detail = "the job is larger than one message of the durable store";
            s_reject(b, ep, PP_FRAME_TOO_LARGE, *detail, len);
            return PP_FRAME_TOO_LARGE;
        }
        if (rc != 0) {
            *detail = "the durable store did not take the message";
            s_reject(b, ep, S_REASON_UNAVAILABLE, *detail, len);
            return S_REASON_UNAVAILABLE;
        }
        return S_DEFERRED;
    }
    b->tally.accepted++;
    return PP_FRAME_OK;
}

/*  Reads and throws away the rest of a multi-part message. Returns the parts discarded. */
static size_t s_discard_rest(pp_broker_t *b, void *raw)
{
    size_t n = 0;
    zmq_msg_t junk;
    zmq_msg_init(&junk);
    int more = 1;
    while (more && zmq_msg_recv(&junk, raw, ZMQ_DONTWAIT) >= 0) {
        n++;
        more = zmq_msg_more(&junk);
    }
    zmq_msg_close(&junk);
    (void)b;
    return n;
}

/*  Reads one message; returns 1 if one arrived, 0 if none is waiting (or the read was
    interrupted), -1 on another error (counted). */
static int s_recv(pp_broker_t *b, void *raw, zmq_msg_t *msg)
{
    if (zmq_msg_recv(msg, raw, ZMQ_DONTWAIT) >= 0) return 1;
    if (errno == EAGAIN || errno == EINTR) return 0;
    pp_metric_inc(b->m.recv_errors);
    s_log_error(b, "recv_failed", "socket");
    return -1;
}

/*  Room for one more client frame: in the resolve pool, or with durability in the
    store's publish window (the resolve pool then fills from the store). */
static bool s_can_take(pp_broker_t *b)
{
    return b->durable ? pp_durable_can_accept(b->durable)
                      : !pp_dispatch_full(b->pool[PP_STAGE_RESOLVE]);
}

static void s_on_intake(pp_broker_t *b)
{
    void *raw = b->raw[PP_EP_INTAKE];
    for (int i = 0; i < S_BATCH && s_can_take(b); i++) {
        if (s_recv(b, raw, &b->in) <= 0) return;
        b->tally.received[PP_EP_INTAKE]++;
        size_t size = zmq_msg_size(&b->in);
        if (zmq_msg_more(&b->in)) {
            s_discard_rest(b, raw);
            s_reject(b, PP_EP_INTAKE, PP_FRAME_MULTIPART, "more than one ZMQ frame", size);
            continue;
        }
        char id[PP_MSGID_LEN + 1];
        const char *detail;
        s_accept_frame(b, PP_EP_INTAKE, zmq_msg_data(&b->in), size, id, &detail, NULL);
    }
}

/* ---------------------------------------------------------------- acknowledged submit */

static void s_send_reply(pp_broker_t *b, bool delimiter)
{
    void *raw = b->raw[PP_EP_SUBMIT];
    /* The identity goes first; with ZMQ_ROUTER_MANDATORY an unknown or full peer fails
       here, before anything is queued. */
    if (zmq_msg_send(&b->part[0], raw, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        pp_metric_inc(b->m.replies_dropped);
        return;
    }
    if (delimiter && zmq_send(raw, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        pp_metric_inc(b->m.replies_dropped);
        return;
    }
    if (zmq_send(raw, b->reply.data, b->reply.size, ZMQ_DONTWAIT) < 0)
        pp_metric_inc(b->m.replies_dropped);
}

static void s_reply(pp_broker_t *b, bool delimiter, int reason, const char *id, const char *detail,
                    const char *cid, size_t cid_len)
{
    msgpack_sbuffer_clear(&b->reply);
    int rc =
        reason == PP_FRAME_OK
            ? pp_reply_encode_ok_cid(id, PP_MSGID_LEN, cid, cid_len, &b->reply)
            : pp_reply_encode_error_cid(s_reason_name(reason), detail, cid, cid_len, &b->reply);
    if (rc != 0) {
        pp_metric_inc(b->m.replies_dropped);
        return;
    }
    s_send_reply(b, delimiter);
}

/*  Reads the parts of one submit request into b->part[0..2]. Returns the number of parts
    (more than 3 are read and dropped), or 0 if none was waiting. */
static size_t s_recv_request(pp_broker_t *b)
{
    void *raw = b->raw[PP_EP_SUBMIT];
    if (s_recv(b, raw, &b->part[0]) <= 0) return 0;
    size_t n = 1;
    while (n < 3 && zmq_msg_more(&b->part[n - 1])) {
        if (s_recv(b, raw, &b->part[n]) <= 0)
            return n; /* parts of one message arrive together; not reached */
        n++;
    }
    if (zmq_msg_more(&b->part[n - 1])) n += s_discard_rest(b, raw);
    return n;
}

/*  One request: [identity][frame] or [identity][empty][frame] (REQ). Anything longer is
    a multi-part frame and rejected as such. */
static void s_on_request(pp_broker_t *b, size_t parts)
{
    bool delimiter = parts >= 3 && zmq_msg_size(&b->part[1]) == 0;
    size_t body = delimiter ? 2 : 1;
    zmq_msg_t *frame = &b->part[body];
    size_t size = parts > body ? zmq_msg_size(frame) : 0;
    char id[PP_MSGID_LEN + 1] = "";
    const char *detail = "";
    int reason;
    pp_durable_route_t route = {.delimiter = delimiter};
    route.identity_len = zmq_msg_size(&b->part[0]);
    if (route.identity_len > sizeof route.identity) route.identity_len = 0;
    memcpy(route.identity, zmq_msg_data(&b->part[0]), route.identity_len);
    if (parts < 2) {
        reason = PP_FRAME_TRUNCATED; /* an identity alone: the client sent no frame */
        detail = "no frame";
        s_reject(b, PP_EP_SUBMIT, reason, detail, 0);
    } else if (parts > body + 1) {
        reason = PP_FRAME_MULTIPART;
        detail = "more than one ZMQ frame";
        s_reject(b, PP_EP_SUBMIT, reason, detail, size);
    } else if (!b->intake_open || !s_can_take(b)) {
        reason = !b->intake_open ? S_REASON_STOPPING : S_REASON_OVERLOADED;
        detail = !b->intake_open ? "the broker is shutting down"
                 : b->durable    ? "the durable store's publish window is full"
                                 : "the resolve pool's queue is full";
        s_reject(b, PP_EP_SUBMIT, reason, detail, size);
        /* With durability, earlier verdicts may still be pending: this refusal can
           overtake them, so it names the frame (the client's id) when it has one. */
        if (b->durable) s_frame_cid(b, zmq_msg_data(frame), size, &route);
    } else {
        reason = s_accept_frame(b, PP_EP_SUBMIT, zmq_msg_data(frame), size, id, &detail, &route);
    }
    if (reason != S_DEFERRED) s_reply(b, delimiter, reason, id, detail, route.cid, route.cid_len);
}

/*  A verdict that comes later (durability): the reply goes to the route's identity. */
static void s_reply_route(pp_broker_t *b, const pp_durable_route_t *route, int reason,
                          const char *id, const char *detail)
{
    zmq_msg_close(&b->part[0]);
    if (zmq_msg_init_size(&b->part[0], route->identity_len) != 0) {
        zmq_msg_init(&b->part[0]);
        pp_metric_inc(b->m.replies_dropped);
        return;
    }
    memcpy(zmq_msg_data(&b->part[0]), route->identity, route->identity_len);
    s_reply(b, route->delimiter, reason, id, detail, route->cid, route->cid_len);
}

static void s_on_submit(pp_broker_t *b)
{
    for (int i = 0; i < S_BATCH; i++) {
        size_t parts = s_recv_request(b);
        if (parts == 0) return;
        b->tally.received[PP_EP_SUBMIT]++;
        s_on_request(b, parts);
    }
}

/* ---------------------------------------------------------------- loop */

enum { S_IN_INTAKE = -1, S_IN_SUBMIT = -2, S_IN_DURABLE = -3 };

typedef struct {
    zmq_pollitem_t items[PP_EP_COUNT + 1];
    int what[PP_EP_COUNT + 1]; /* a pp_stage_t (its pool's socket), or S_IN_* */
    int n;
} s_pollset_t;

static void s_want(s_pollset_t *ps, void *raw, int what)
{
    ps->items[ps->n] = (zmq_pollitem_t){raw, 0, ZMQ_POLLIN, 0};
    ps->what[ps->n] = what;
    ps->n++;
}

/*  Inputs are polled only while the pool they feed has room: that is how backpressure
    reaches the peers. Intake feeds the resolve pool; the resolve pool's socket carries the
    resolvers' outputs, which feed the apns and mqtt pools, so it is not read while either
    of those is full (its workers' pp_link_send then meets the high-water mark). The apns
    and mqtt sockets carry only credit, acks and heartbeats: always read. */
static void s_build_pollset(pp_broker_t *b, s_pollset_t *ps)
{
    ps->n = 0;
    if (b->sock[PP_EP_INTAKE] && b->intake_open && s_can_take(b))
        s_want(ps, b->raw[PP_EP_INTAKE], S_IN_INTAKE);
    /* submit stays readable when the resolve pool is full ("overloaded") or while draining
       ("stopping") */
    if (b->sock[PP_EP_SUBMIT]) s_want(ps, b->raw[PP_EP_SUBMIT], S_IN_SUBMIT);
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        if (s != PP_STAGE_RESOLVE || b->reading_resolve)
            s_want(ps, pp_dispatch_socket(b->pool[s]), s);
    if (b->durable) {
        ps->items[ps->n] = (zmq_pollitem_t){NULL, pp_durable_fd(b->durable), ZMQ_POLLIN, 0};
        ps->what[ps->n++] = S_IN_DURABLE;
    }
}

/*  Starts or stops reading the resolvers' outputs as the apns and mqtt pools fill and
    empty. The dispatcher is told, so that resolvers we do not hear are not declared dead. */
static void s_update_reading(pp_broker_t *b)
{
    bool reading =
        !pp_dispatch_full(b->pool[PP_STAGE_APNS]) && !pp_dispatch_full(b->pool[PP_STAGE_MQTT]);
    if (reading == b->reading_resolve) return;
    b->reading_resolve = reading;
    pp_dispatch_set_reading(b->pool[PP_STAGE_RESOLVE], reading);
}

/*  Counts each time a pool's queue fills up. The log line is limited per stage: under a
    steady overload the queue flips between full and one-below-full on every loop turn. */
static void s_note_full(pp_broker_t *b, pp_stage_t s)
{
    pp_metric_inc(b->m.queue_full[s]);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&b->full_rl[s], &suppressed))
        pp_warn("queue_full", "stage=%s messages=%zu bytes=%zu in_flight=%zu suppressed=%u",
                pp_stage_name(s), pp_dispatch_pending(b->pool[s]),
                pp_dispatch_pending_bytes(b->pool[s]), pp_dispatch_in_flight(b->pool[s]),
                suppressed);
}

static void s_publish_tally(pp_broker_t *b)
{
    for (int ep = 0; ep < PP_EP_COUNT; ep++)
        if (b->tally.received[ep]) pp_metric_add(b->m.received[ep], b->tally.received[ep]);
    if (b->tally.accepted) pp_metric_add(b->m.accepted, b->tally.accepted);
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        if (b->tally.forwarded[s]) pp_metric_add(b->m.forwarded[s], b->tally.forwarded[s]);
    memset(&b->tally, 0, sizeof b->tally);
}

static void s_update_gauges(pp_broker_t *b)
{
    s_publish_tally(b);
    for (int s = 0; s < PP_STAGE_COUNT; s++) {
        pp_metric_set(b->m.queue_depth[s], (int64_t)pp_dispatch_pending(b->pool[s]));
        pp_metric_set(b->m.queue_bytes[s], (int64_t)pp_dispatch_pending_bytes(b->pool[s]));
        bool full = pp_dispatch_full(b->pool[s]);
        if (full && !b->was_full[s]) s_note_full(b, (pp_stage_t)s);
        b->was_full[s] = full;
    }
}

/*  One turn: housekeeping of the pools (timeouts, heartbeats, sends), poll, read what is
    readable (the sender pools first: their credit and acks make room), hand what was read to
    the workers. Returns the number of ready sockets, or -1 on a fatal error. */
static int s_turn(pp_broker_t *b, long timeout_ms)
{
    s_update_reading(b);
    uint64_t now = pp_mono_ms();
    for (int s = 0; s < PP_STAGE_COUNT; s++) {
        int t = pp_dispatch_tick(b->pool[s], now);
        if (t < timeout_ms) timeout_ms = t;
    }
    if (b->durable) {
        /* Stored jobs are taken while the resolve pool has room and we are not stopping. */
        pp_durable_set_fetching(b->durable,
                                b->intake_open && !pp_dispatch_full(b->pool[PP_STAGE_RESOLVE]));
        int t = pp_durable_tick(b->durable, now);
        if (t < timeout_ms) timeout_ms = t;
    }
    s_pollset_t ps;
    s_build_pollset(b, &ps);
    int rc = zmq_poll(ps.items, ps.n, timeout_ms);
    if (rc < 0) {
        if (errno == EINTR) return 0;
        pp_error("poll_failed", "error=\"%s\"", zmq_strerror(errno));
        return -1;
    }
    for (int pass = 0; pass < 2 && rc > 0; pass++) {
        for (int i = 0; i < ps.n; i++) {
            if (!(ps.items[i].revents & ZMQ_POLLIN)) continue;
            int w = ps.what[i];
            bool pool = w >= 0;
            if (pass == 0 && pool && w != PP_STAGE_RESOLVE) pp_dispatch_on_readable(b->pool[w]);
            if (pass == 1 && w == PP_STAGE_RESOLVE && b->reading_resolve)
                pp_dispatch_on_readable(b->pool[w]);
            if (pass == 1 && w == S_IN_INTAKE) s_on_intake(b);
            if (pass == 1 && w == S_IN_SUBMIT) s_on_submit(b);
            if (pass == 1 && w == S_IN_DURABLE) pp_durable_on_readable(b->durable);
        }
        if (pass == 0) s_update_reading(b); /* the pumps of acked pools may have made room */
    }
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        pp_dispatch_pump(b->pool[s]);
    if (b->durable) pp_durable_flush(b->durable); /* what this turn accepted goes out now */
    s_update_gauges(b);
    return rc;
}

int pp_broker_run(pp_broker_t *b)
{
    while (!pp_proc_stopping())
        if (s_turn(b, S_POLL_MS) < 0) return -1;
    return 0;
}

/* ---------------------------------------------------------------- drain */

/*  Nothing pending and nothing unacknowledged in any pool. A resolver sends a job's
    outputs before its ack on the same socket, so an empty resolve pool also means that
    every output of every RESOLVE job has been read. */
static bool s_all_done(pp_broker_t *b)
{
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        if (pp_dispatch_pending(b->pool[s]) > 0 || pp_dispatch_in_flight(b->pool[s]) > 0)
            return false;
    /* every client that waits for a verdict has it */
    return !b->durable || pp_durable_publishing(b->durable) == 0;
}

static void s_stop_intake(pp_broker_t *b)
{
    /* Closing intake (linger 0) stops new frames at once; frames libzmq had read for us
       but we had not yet taken are dropped with the socket, as a client's unacknowledged
       PUSH allows. submit stays open and answers "stopping", so that an acknowledged
       client knows at once to retry elsewhere. */
    s_close(b, PP_EP_INTAKE);
    b->intake_open = false;
}

/*  Collects message ids for the drain_incomplete record: up to S_LEFT_IDS per log line. */
#define S_LEFT_IDS 16
typedef struct {
    const char *stage;
    char line[S_LEFT_IDS * (PP_MSGID_LEN + 1) + 1];
    size_t used, n;
} s_left_t;

static void s_left_flush(s_left_t *l)
{
    if (l->n) pp_warn("drain_left_ids", "stage=%s ids=%s", l->stage, l->line);
    l->used = l->n = 0;
    l->line[0] = '\0';
}

static void s_left_one(void *ctx, const zmq_msg_t *job)
{
    s_left_t *l = ctx;
    pp_str_t id;
    if (pp_job_peek_msg_id(zmq_msg_data((zmq_msg_t *)job), zmq_msg_size((zmq_msg_t *)job), &id) !=
            0 ||
        id.len > PP_MSGID_LEN)
        id = PP_STR("?");
    l->used += (size_t)snprintf(l->line + l->used, sizeof l->line - l->used, "%s%.*s",
                                l->n ? "," : "", (int)id.len, id.ptr);
    if (++l->n == S_LEFT_IDS) s_left_flush(l);
}

/*  Every job a stop leaves behind is logged by message id: never dropped silently. */
static void s_log_left_ids(pp_broker_t *b, pp_stage_t s)
{
    s_left_t l = {.stage = pp_stage_name(s)};
    pp_dispatch_each_job(b->pool[s], s_left_one, &l);
    s_left_flush(&l);
}

static void s_count_left(pp_broker_t *b)
{
    if (b->durable) {
        /* Nothing is dropped: what is unfinished goes back to the stream for the next
           broker, which runs those messages again (at-least-once). */
        for (int s = 0; s < PP_STAGE_COUNT; s++)
            if (pp_dispatch_pending(b->pool[s]) + pp_dispatch_in_flight(b->pool[s]) > 0)
                pp_info("drain_incomplete", "stage=%s pending=%zu in_flight=%zu kept=stream",
                        pp_stage_name(s), pp_dispatch_pending(b->pool[s]),
                        pp_dispatch_in_flight(b->pool[s]));
        pp_durable_give_back(b->durable);
        return;
    }
    for (int s = 0; s < PP_STAGE_COUNT; s++) {
        size_t pending = pp_dispatch_pending(b->pool[s]);
        size_t in_flight = pp_dispatch_in_flight(b->pool[s]);
        if (pending + in_flight == 0) continue;
        pp_metric_add(b->m.dropped_at_exit[s], pending + in_flight);
        pp_warn("drain_incomplete", "stage=%s dropped=%zu pending=%zu in_flight=%zu",
                pp_stage_name(s), pending + in_flight, pending, in_flight);
        s_log_left_ids(b, (pp_stage_t)s);
    }
}

void pp_broker_drain(pp_broker_t *b)
{
    uint64_t start = pp_mono_ms();
    uint64_t deadline = start + (uint64_t)b->cfg.drain_ms;
    pp_info(
        "draining",
        "drain_ms=%d pending_resolve=%zu in_flight_resolve=%zu pending_apns=%zu "
        "in_flight_apns=%zu pending_mqtt=%zu in_flight_mqtt=%zu",
        b->cfg.drain_ms, pp_dispatch_pending(b->pool[PP_STAGE_RESOLVE]),
        pp_dispatch_in_flight(b->pool[PP_STAGE_RESOLVE]),
        pp_dispatch_pending(b->pool[PP_STAGE_APNS]), pp_dispatch_in_flight(b->pool[PP_STAGE_APNS]),
        pp_dispatch_pending(b->pool[PP_STAGE_MQTT]), pp_dispatch_in_flight(b->pool[PP_STAGE_MQTT]));
    s_stop_intake(b);
    uint64_t now = start;
    while (now < deadline && !s_all_done(b)) {
        uint64_t left = deadline - now;
        if (s_turn(b, (long)(left < 50 ? left : 50)) < 0) break;
        now = pp_mono_ms();
    }
    s_publish_tally(b);
    s_count_left(b);
    pp_info("drained", "elapsed_ms=%llu", (unsigned long long)(pp_mono_ms() - start));
}

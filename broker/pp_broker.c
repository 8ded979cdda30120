#include "pp_broker.h"
#include "pp_endpoints.h"
#include "pp_job.h"
#include "pp_log.h"
#include "pp_msgid.h"
#include "pp_msgq.h"
#include "pp_proc.h"
#include "pp_reply.h"

#include <czmq.h>
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Messages read from one input per loop turn: large enough that zmq_poll's cost is spread
    over many frames, small enough that no input starves the others. */
#define S_BATCH 512
/*  Longest wait in zmq_poll: signals may land on a thread of libmicrohttpd's rather than
    interrupt our poll, so the loop looks at the stop flag at least this often. */
#define S_POLL_MS 100
/*  During the drain, how long apns_in/mqtt_in must stay quiet (with every FIFO empty)
    before the broker stops early. */
#define S_QUIET_MS 200

/*  Rejection reasons beyond pp_frame's. */
enum { S_REASON_OVERLOADED = PP_FRAME_REASON_COUNT, S_REASON_INTERNAL, S_REASON_COUNT };

typedef struct {
    pp_metric_t *received[PP_EP_COUNT];
    pp_metric_t *accepted;
    pp_metric_t *rejected[S_REASON_COUNT];
    pp_metric_t *duplicates;
    pp_metric_t *forwarded[PP_STAGE_COUNT];
    pp_metric_t *queued[PP_STAGE_COUNT];
    pp_metric_t *queue_depth[PP_STAGE_COUNT];
    pp_metric_t *queue_bytes[PP_STAGE_COUNT];
    pp_metric_t *queue_full[PP_STAGE_COUNT];
    pp_metric_t *send_errors[PP_STAGE_COUNT];
    pp_metric_t *dropped_at_exit[PP_STAGE_COUNT];
    pp_metric_t *bad_job[PP_STAGE_COUNT];
    pp_metric_t *recv_errors;
    pp_metric_t *replies_dropped;
} s_metrics_t;

struct pp_broker_t {
    pp_broker_config_t cfg;
    zsock_t *sock[PP_EP_COUNT];
    void *raw[PP_EP_COUNT]; /* zsock_resolve() of each, for the raw libzmq hot path */
    pp_msgq_t *q[PP_STAGE_COUNT];
    bool was_full[PP_STAGE_COUNT];
    pp_frame_decoder_t *decoder;
    pp_msgid_t *ids;
    msgpack_sbuffer job;   /* reused for every RESOLVE job: no per-frame allocation */
    msgpack_sbuffer reply; /* reused for every submit reply */
    zmq_msg_t in;          /* reused for every message read */
    zmq_msg_t part[3];     /* submit: identity, then up to two more parts */
    pp_ratelimit_t reject_rl, job_rl, error_rl;
    pp_ratelimit_t full_rl[PP_STAGE_COUNT]; /* a FIFO at its bound flaps full/not full */
    bool intake_open;
    uint64_t last_input_ms; /* last message on apns_in/mqtt_in (drain) */
    s_metrics_t m;
    /*  Per-message counts are tallied here and added to the metrics once per loop turn:
        three atomic increments per frame showed in profiles of the hot path. */
    struct {
        uint64_t received[PP_EP_COUNT];
        uint64_t accepted;
        uint64_t forwarded[PP_STAGE_COUNT];
        uint64_t queued[PP_STAGE_COUNT];
    } tally;
};

static const char *s_stage_names[PP_STAGE_COUNT] = {"resolve", "apns", "mqtt"};
static const pp_ep_t s_stage_out[PP_STAGE_COUNT] = {PP_EP_RESOLVE, PP_EP_APNS_OUT, PP_EP_MQTT_OUT};

const char *pp_stage_name(pp_stage_t stage)
{
    return stage < PP_STAGE_COUNT ? s_stage_names[stage] : "unknown";
}

static const char *s_reason_name(int reason)
{
    if (reason == S_REASON_OVERLOADED) return "overloaded";
    if (reason == S_REASON_INTERNAL) return "internal";
    return pp_frame_reason_name((pp_frame_reason_t)reason);
}

/* ---------------------------------------------------------------- configuration */

static size_t s_cfg_size(pp_config_t *c, const char *key, size_t def, long long min, long long max)
{
    return (size_t)pp_config_int(c, key, (long long)def, min, max);
}

static void s_read_limits(pp_config_t *c, pp_frame_limits_t *l)
{
    *l = pp_frame_limits_default();
    l->max_frame_bytes =
        s_cfg_size(c, "broker.limits.max_frame_bytes", l->max_frame_bytes, 16, 16 << 20);
    l->max_depth = s_cfg_size(c, "broker.limits.max_depth", l->max_depth, 1, 256);
    l->max_ids = s_cfg_size(c, "broker.limits.max_ids", l->max_ids, 1, PP_JOB_MAX_IDS);
    l->max_id_len = s_cfg_size(c, "broker.limits.max_id_len", l->max_id_len, 1, 4096);
    l->max_json_bytes =
        s_cfg_size(c, "broker.limits.max_json_bytes", l->max_json_bytes, 16, 64 << 20);
}

static void s_read_queues(pp_config_t *c, pp_broker_config_t *cfg)
{
    for (int s = 0; s < PP_STAGE_COUNT; s++) {
        char key[96];
        snprintf(key, sizeof key, "broker.queue.%s.max_messages", s_stage_names[s]);
        cfg->queue_msgs[s] = s_cfg_size(c, key, 100000, 1, 100000000);
        snprintf(key, sizeof key, "broker.queue.%s.max_bytes", s_stage_names[s]);
        cfg->queue_bytes[s] = s_cfg_size(c, key, 64 << 20, 1, 1LL << 40);
    }
}

static void s_read_bind(pp_config_t *c, pp_broker_config_t *cfg)
{
    cfg->bind = pp_config_str(c, "broker.bind", PP_DEFAULT_BROKER_ADDRESS);
    char probe[256];
    if (pp_endpoint(cfg->bind, PP_EP_MQTT_OUT, probe, sizeof probe) != 0)
        pp_config_fail(c, "broker.bind",
                       "\"%s\" is not tcp://HOST:PORT (PORT+6 <= 65535) or ipc:///PATH", cfg->bind);
}

static void s_read_instance(pp_config_t *c, pp_broker_config_t *cfg)
{
    const char *text = pp_config_str(c, "broker.instance_id", NULL);
    cfg->have_instance = false;
    if (!text) return;
    if (pp_msgid_parse_instance(text, &cfg->instance) != 0)
        pp_config_fail(c, "broker.instance_id", "\"%s\" is not 1 to 16 hex digits", text);
    else
        cfg->have_instance = true;
}

void pp_broker_config_read(pp_config_t *c, pp_broker_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    s_read_bind(c, cfg);
    s_read_instance(c, cfg);
    cfg->hwm = (int)pp_config_int(c, "broker.hwm", 1000, 1, 10000000);
    cfg->drain_ms = (int)pp_config_int(c, "broker.drain_ms", 5000, 0, 3600000);
    cfg->log_rejects_per_s = (int)pp_config_int(c, "broker.log_rejects_per_s", 10, 0, 100000);
    s_read_limits(c, &cfg->limits);
    s_read_queues(c, cfg);
    /* Shared files carry the clients' address; the broker binds from broker.bind. Read it
       so that the unknown-key check accepts it. */
    (void)pp_config_str(c, "broker_address", NULL);
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
    return s_stage_names[i];
}

static const char *s_forwarding_stage_label(int i)
{
    return i == PP_STAGE_RESOLVE ? NULL : s_stage_names[i];
}

static const char *s_input_label(int i)
{
    switch (i) {
    case PP_EP_INTAKE:
    case PP_EP_SUBMIT:
    case PP_EP_APNS_IN:
    case PP_EP_MQTT_IN:
        return pp_endpoint_name((pp_ep_t)i);
    default:
        return NULL;
    }
}

static const char *s_reason_label(int i)
{
    return i == PP_FRAME_OK ? NULL : s_reason_name(i);
}

static void s_register_metrics(pp_metrics_t *r, s_metrics_t *m)
{
    s_register_per_label(r, m->received, PP_EP_COUNT, "received_total",
                         "Messages read, per input endpoint", "endpoint", false, s_input_label);
    m->accepted = pp_metrics_counter(r, "accepted_total",
                                     "Client frames accepted and stamped with an id", NULL);
    s_register_per_label(r, m->rejected, S_REASON_COUNT, "rejected_total",
                         "Client frames rejected, per reason", "reason", false, s_reason_label);
    m->duplicates = pp_metrics_counter(r, "duplicates_removed_total",
                                       "Duplicate user ids removed from type 2 frames", NULL);
    s_register_per_label(r, m->forwarded, PP_STAGE_COUNT, "forwarded_total",
                         "Jobs handed to an output socket", "stage", false, s_stage_label);
    s_register_per_label(r, m->queued, PP_STAGE_COUNT, "queued_total",
                         "Jobs the output socket would not take at once, held in the FIFO", "stage",
                         false, s_stage_label);
    s_register_per_label(r, m->queue_depth, PP_STAGE_COUNT, "queue_depth",
                         "Jobs held in the output's FIFO", "stage", true, s_stage_label);
    s_register_per_label(r, m->queue_bytes, PP_STAGE_COUNT, "queue_bytes",
                         "Bytes held in the output's FIFO", "stage", true, s_stage_label);
    s_register_per_label(r, m->queue_full, PP_STAGE_COUNT, "queue_full_total",
                         "Times the output's FIFO filled up and its inputs were paused", "stage",
                         false, s_stage_label);
    s_register_per_label(r, m->send_errors, PP_STAGE_COUNT, "send_errors_total",
                         "Jobs dropped on an output socket error other than EAGAIN", "stage", false,
                         s_stage_label);
    s_register_per_label(r, m->dropped_at_exit, PP_STAGE_COUNT, "dropped_at_exit_total",
                         "Jobs still in the FIFO when the drain time ran out", "stage", false,
                         s_stage_label);
    s_register_per_label(r, m->bad_job, PP_STAGE_COUNT, "bad_job_total",
                         "Jobs from resolvers dropped: wrong kind, not a job, or multipart",
                         "stage", false, s_forwarding_stage_label);
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
    /* Inputs hold nothing worth keeping at close; outputs get the drain time left when the
       broker stops (pp_broker_drain). */
    rc |= s_setopt_int(raw, ZMQ_LINGER, 0);
    if (ep == PP_EP_RESOLVE || ep == PP_EP_APNS_OUT || ep == PP_EP_MQTT_OUT) {
        /* Queue only to peers whose connection is complete: with no peer the send says
           EAGAIN and the job waits in our FIFO, which a disconnect cannot destroy. */
        rc |= s_setopt_int(raw, ZMQ_IMMEDIATE, 1);
    }
    if (ep == PP_EP_SUBMIT) {
        /* EHOSTUNREACH/EAGAIN instead of a silent drop, so lost replies are counted. */
        rc |= s_setopt_int(raw, ZMQ_ROUTER_MANDATORY, 1);
    }
    if (ep == PP_EP_INTAKE || ep == PP_EP_SUBMIT) {
        /* Frames somewhat over the limit still arrive, to be counted as too_large; a peer
           sending far more is disconnected by libzmq before it costs memory. */
        int64_t max = (int64_t)b->cfg.limits.max_frame_bytes * 2 + 4096;
        rc |= zmq_setsockopt(raw, ZMQ_MAXMSGSIZE, &max, sizeof max);
    }
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
    if (s_set_options(b, ep, raw) != 0 || pp_curve_apply(curve, raw) != 0) {
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

static int s_open_all(pp_broker_t *b, pp_curve_t *curve)
{
    static const int types[PP_EP_COUNT] = {ZMQ_PULL, ZMQ_ROUTER, ZMQ_PUSH, ZMQ_PULL,
                                           ZMQ_PULL, ZMQ_PUSH,   ZMQ_PUSH};
    for (int ep = 0; ep < PP_EP_COUNT; ep++)
        if (s_open(b, (pp_ep_t)ep, types[ep], curve) != 0) return -1;
    return 0;
}

static void s_close(pp_broker_t *b, pp_ep_t ep)
{
    zsock_destroy(&b->sock[ep]);
    b->raw[ep] = NULL;
}

static int s_new_state(pp_broker_t *b)
{
    for (int s = 0; s < PP_STAGE_COUNT; s++) {
        b->q[s] = pp_msgq_new(b->cfg.queue_msgs[s], b->cfg.queue_bytes[s]);
        if (!b->q[s]) return -1;
    }
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

pp_broker_t *pp_broker_new(const pp_broker_config_t *cfg, pp_curve_t *curve, pp_metrics_t *metrics)
{
    pp_broker_t *b = calloc(1, sizeof *b);
    if (!b) return NULL;
    b->cfg = *cfg;
    s_register_metrics(metrics, &b->m);
    if (s_new_state(b) != 0) {
        pp_error("broker_init_failed", "error=\"out of memory or no random bytes\"");
        pp_broker_destroy(&b);
        return NULL;
    }
    if (s_open_all(b, curve) != 0) {
        pp_broker_destroy(&b);
        return NULL;
    }
    b->intake_open = true;
    pp_info("broker_ready", "bind=%s instance=%016llx hwm=%d drain_ms=%d", b->cfg.bind,
            (unsigned long long)pp_msgid_instance(b->ids), b->cfg.hwm, b->cfg.drain_ms);
    return b;
}

void pp_broker_destroy(pp_broker_t **p)
{
    if (!p || !*p) return;
    pp_broker_t *b = *p;
    for (int ep = 0; ep < PP_EP_COUNT; ep++)
        if (b->sock[ep]) s_close(b, (pp_ep_t)ep);
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        pp_msgq_destroy(&b->q[s]);
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

/* ---------------------------------------------------------------- outputs */

static void s_log_error(pp_broker_t *b, const char *event, const char *where)
{
    uint32_t suppressed;
    if (pp_ratelimit_allow(&b->error_rl, &suppressed))
        pp_error(event, "where=%s error=\"%s\" suppressed=%u", where, zmq_strerror(errno),
                 suppressed);
}

/*  Hands *msg to the stage's output: straight to the socket when nothing waits before it,
    else (or on EAGAIN) to the FIFO. The caller made sure the FIFO has room. *msg is left
    empty. */
static void s_output(pp_broker_t *b, pp_stage_t s, zmq_msg_t *msg)
{
    if (pp_msgq_size(b->q[s]) == 0) {
        if (zmq_msg_send(msg, b->raw[s_stage_out[s]], ZMQ_DONTWAIT) >= 0) {
            b->tally.forwarded[s]++;
            return;
        }
        if (errno != EAGAIN && errno != EINTR) {
            pp_metric_inc(b->m.send_errors[s]);
            s_log_error(b, "send_failed", s_stage_names[s]);
            zmq_msg_close(msg);
            zmq_msg_init(msg);
            return;
        }
    }
    if (pp_msgq_push(b->q[s], msg) == 0) {
        b->tally.queued[s]++;
        return;
    }
    /* Not reached while callers check for room first; counted rather than asserted. */
    pp_metric_inc(b->m.send_errors[s]);
    zmq_msg_close(msg);
    zmq_msg_init(msg);
}

static void s_flush(pp_broker_t *b, pp_stage_t s)
{
    int n = pp_msgq_flush(b->q[s], b->raw[s_stage_out[s]]);
    if (n > 0) {
        b->tally.forwarded[s] += (uint64_t)n;
    } else if (n < 0) {
        /* The head cannot be sent for a reason other than EAGAIN: drop it so that one bad
           message does not wedge the output. */
        zmq_msg_t dead;
        zmq_msg_init(&dead);
        pp_msgq_pop(b->q[s], &dead);
        zmq_msg_close(&dead);
        pp_metric_inc(b->m.send_errors[s]);
        s_log_error(b, "send_failed", s_stage_names[s]);
    }
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

/*  Encodes the decoded frame as a RESOLVE job into b->job and sends it on. Returns 0, or
    -1 if the job could not be built (nothing sent). */
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
    zmq_msg_t out;
    if (zmq_msg_init_size(&out, b->job.size) != 0) return -1;
    memcpy(zmq_msg_data(&out), b->job.data, b->job.size);
    s_output(b, PP_STAGE_RESOLVE, &out);
    zmq_msg_close(&out); /* empty after s_output; closing an empty message is free */
    return 0;
}

/*  Validates and stamps one client frame and sends its RESOLVE job. Returns PP_FRAME_OK
    with the id in `id`, or a reason with *detail set (and counted, logged). */
static int s_accept_frame(pp_broker_t *b, pp_ep_t ep, const void *buf, size_t len,
                          char id[PP_MSGID_LEN + 1], const char **detail)
{
    uint64_t now_us = pp_wall_us();
    pp_frame_t frame;
    *detail = "";
    pp_frame_reason_t reason =
        pp_frame_decode(b->decoder, buf, len, (int64_t)(now_us / 1000000), &frame, detail);
    if (reason != PP_FRAME_OK) {
        if (!*detail) *detail = "";
        s_reject(b, ep, reason, *detail, len);
        return reason;
    }
    pp_msgid_next(b->ids, id);
    if (s_send_resolve(b, &frame, id, now_us) != 0) {
        *detail = "the job could not be encoded";
        s_reject(b, ep, S_REASON_INTERNAL, *detail, len);
        return S_REASON_INTERNAL;
    }
    b->tally.accepted++;
    if (frame.duplicates_removed) pp_metric_add(b->m.duplicates, frame.duplicates_removed);
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

static void s_on_intake(pp_broker_t *b)
{
    void *raw = b->raw[PP_EP_INTAKE];
    for (int i = 0; i < S_BATCH && pp_msgq_has_room(b->q[PP_STAGE_RESOLVE]); i++) {
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
        s_accept_frame(b, PP_EP_INTAKE, zmq_msg_data(&b->in), size, id, &detail);
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

static void s_reply(pp_broker_t *b, bool delimiter, int reason, const char *id, const char *detail)
{
    msgpack_sbuffer_clear(&b->reply);
    int rc = reason == PP_FRAME_OK
                 ? pp_reply_encode_ok(id, PP_MSGID_LEN, &b->reply)
                 : pp_reply_encode_error(s_reason_name(reason), detail, &b->reply);
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
    if (parts < 2) {
        reason = PP_FRAME_TRUNCATED; /* an identity alone: the client sent no frame */
        detail = "no frame";
        s_reject(b, PP_EP_SUBMIT, reason, detail, 0);
    } else if (parts > body + 1) {
        reason = PP_FRAME_MULTIPART;
        detail = "more than one ZMQ frame";
        s_reject(b, PP_EP_SUBMIT, reason, detail, size);
    } else if (!pp_msgq_has_room(b->q[PP_STAGE_RESOLVE])) {
        reason = S_REASON_OVERLOADED;
        detail = "the resolver queue is full";
        s_reject(b, PP_EP_SUBMIT, reason, detail, size);
    } else {
        reason = s_accept_frame(b, PP_EP_SUBMIT, zmq_msg_data(frame), size, id, &detail);
    }
    s_reply(b, delimiter, reason, id, detail);
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

/* ---------------------------------------------------------------- jobs from resolvers */

static void s_bad_job(pp_broker_t *b, pp_stage_t s, const char *why, size_t size)
{
    pp_metric_inc(b->m.bad_job[s]);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&b->job_rl, &suppressed))
        pp_warn("bad_job", "stage=%s reason=%s size=%zu suppressed=%u", s_stage_names[s], why, size,
                suppressed);
}

/*  Moves jobs of the stage's kind from its input to its output, zero-copy. */
static void s_on_jobs(pp_broker_t *b, pp_ep_t in, pp_stage_t s, int kind)
{
    void *raw = b->raw[in];
    for (int i = 0; i < S_BATCH && pp_msgq_has_room(b->q[s]); i++) {
        if (s_recv(b, raw, &b->in) <= 0) return;
        b->tally.received[in]++;
        if (i == 0) b->last_input_ms = pp_mono_ms(); /* for the drain; a batch lasts < 1 ms */
        size_t size = zmq_msg_size(&b->in);
        if (zmq_msg_more(&b->in)) {
            s_discard_rest(b, raw);
            s_bad_job(b, s, "multipart", size);
            continue;
        }
        int got = pp_job_peek_kind(zmq_msg_data(&b->in), size);
        if (got != kind) {
            s_bad_job(b, s, got == 0 ? "not_a_job" : "wrong_kind", size);
            continue;
        }
        s_output(b, s, &b->in);
    }
}

/* ---------------------------------------------------------------- loop */

typedef struct {
    zmq_pollitem_t items[PP_EP_COUNT];
    pp_ep_t ep[PP_EP_COUNT];
    int n;
} s_pollset_t;

static void s_want(s_pollset_t *ps, pp_broker_t *b, pp_ep_t ep, short events)
{
    ps->items[ps->n] = (zmq_pollitem_t){b->raw[ep], 0, events, 0};
    ps->ep[ps->n] = ep;
    ps->n++;
}

/*  Inputs are polled only while the FIFO of the output they feed has room: that is how
    backpressure reaches the peers. Outputs are polled for POLLOUT only while their FIFO
    holds something. */
static void s_build_pollset(pp_broker_t *b, s_pollset_t *ps)
{
    ps->n = 0;
    if (b->intake_open) {
        if (pp_msgq_has_room(b->q[PP_STAGE_RESOLVE])) s_want(ps, b, PP_EP_INTAKE, ZMQ_POLLIN);
        /* submit stays readable when the resolve FIFO is full: it answers "overloaded" */
        s_want(ps, b, PP_EP_SUBMIT, ZMQ_POLLIN);
    }
    if (pp_msgq_has_room(b->q[PP_STAGE_APNS])) s_want(ps, b, PP_EP_APNS_IN, ZMQ_POLLIN);
    if (pp_msgq_has_room(b->q[PP_STAGE_MQTT])) s_want(ps, b, PP_EP_MQTT_IN, ZMQ_POLLIN);
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        if (pp_msgq_size(b->q[s]) > 0) s_want(ps, b, s_stage_out[s], ZMQ_POLLOUT);
}

static void s_dispatch_input(pp_broker_t *b, pp_ep_t ep)
{
    switch (ep) {
    case PP_EP_INTAKE:
        s_on_intake(b);
        break;
    case PP_EP_SUBMIT:
        s_on_submit(b);
        break;
    case PP_EP_APNS_IN:
        s_on_jobs(b, ep, PP_STAGE_APNS, PP_JOB_APNS);
        break;
    case PP_EP_MQTT_IN:
        s_on_jobs(b, ep, PP_STAGE_MQTT, PP_JOB_MQTT);
        break;
    default:
        break;
    }
}

/*  Counts each time a FIFO fills up. The log line is limited per stage: under a steady
    overload the FIFO flips between full and one-below-full on every loop turn. */
static void s_note_full(pp_broker_t *b, pp_stage_t s)
{
    pp_metric_inc(b->m.queue_full[s]);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&b->full_rl[s], &suppressed))
        pp_warn("queue_full", "stage=%s messages=%zu bytes=%zu suppressed=%u", s_stage_names[s],
                pp_msgq_size(b->q[s]), pp_msgq_bytes(b->q[s]), suppressed);
}

static void s_publish_tally(pp_broker_t *b)
{
    for (int ep = 0; ep < PP_EP_COUNT; ep++)
        if (b->tally.received[ep]) pp_metric_add(b->m.received[ep], b->tally.received[ep]);
    if (b->tally.accepted) pp_metric_add(b->m.accepted, b->tally.accepted);
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        if (b->tally.forwarded[s]) pp_metric_add(b->m.forwarded[s], b->tally.forwarded[s]);
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        if (b->tally.queued[s]) pp_metric_add(b->m.queued[s], b->tally.queued[s]);
    memset(&b->tally, 0, sizeof b->tally);
}

static void s_update_gauges(pp_broker_t *b)
{
    s_publish_tally(b);
    for (int s = 0; s < PP_STAGE_COUNT; s++) {
        pp_metric_set(b->m.queue_depth[s], (int64_t)pp_msgq_size(b->q[s]));
        pp_metric_set(b->m.queue_bytes[s], (int64_t)pp_msgq_bytes(b->q[s]));
        bool full = !pp_msgq_has_room(b->q[s]);
        if (full && !b->was_full[s]) s_note_full(b, (pp_stage_t)s);
        b->was_full[s] = full;
    }
}

/*  One turn: poll, flush writable outputs first (that makes room), then read inputs.
    Returns the number of ready sockets, or -1 on a fatal error. */
static int s_turn(pp_broker_t *b, long timeout_ms)
{
    s_pollset_t ps;
    s_build_pollset(b, &ps);
    int rc = zmq_poll(ps.items, ps.n, timeout_ms);
    if (rc < 0) {
        if (errno == EINTR) return 0;
        pp_error("poll_failed", "error=\"%s\"", zmq_strerror(errno));
        return -1;
    }
    for (int i = 0; i < ps.n && rc > 0; i++) {
        if (ps.items[i].revents & ZMQ_POLLOUT) {
            for (int s = 0; s < PP_STAGE_COUNT; s++)
                if (s_stage_out[s] == ps.ep[i]) s_flush(b, (pp_stage_t)s);
        }
    }
    for (int i = 0; i < ps.n && rc > 0; i++)
        if (ps.items[i].revents & ZMQ_POLLIN) s_dispatch_input(b, ps.ep[i]);
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

static bool s_all_empty(pp_broker_t *b)
{
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        if (pp_msgq_size(b->q[s]) > 0) return false;
    return true;
}

static void s_stop_intake(pp_broker_t *b)
{
    /* Closing (linger 0) stops new frames at once; frames libzmq had read for us but we
       had not yet taken are dropped with the socket, as a client's unacknowledged PUSH
       allows. A submit client sees no reply and may retry elsewhere. */
    s_close(b, PP_EP_INTAKE);
    s_close(b, PP_EP_SUBMIT);
    b->intake_open = false;
}

static void s_set_linger(pp_broker_t *b, int linger_ms)
{
    for (int s = 0; s < PP_STAGE_COUNT; s++)
        s_setopt_int(b->raw[s_stage_out[s]], ZMQ_LINGER, linger_ms);
}

static void s_count_left(pp_broker_t *b)
{
    for (int s = 0; s < PP_STAGE_COUNT; s++) {
        size_t left = pp_msgq_size(b->q[s]);
        if (left == 0) continue;
        pp_metric_add(b->m.dropped_at_exit[s], left);
        pp_warn("drain_incomplete", "stage=%s dropped=%zu", s_stage_names[s], left);
    }
}

void pp_broker_drain(pp_broker_t *b)
{
    uint64_t start = pp_mono_ms();
    uint64_t deadline = start + (uint64_t)b->cfg.drain_ms;
    pp_info("draining", "drain_ms=%d held_resolve=%zu held_apns=%zu held_mqtt=%zu", b->cfg.drain_ms,
            pp_msgq_size(b->q[PP_STAGE_RESOLVE]), pp_msgq_size(b->q[PP_STAGE_APNS]),
            pp_msgq_size(b->q[PP_STAGE_MQTT]));
    s_stop_intake(b);
    b->last_input_ms = start;
    uint64_t now = start;
    while (now < deadline) {
        if (s_all_empty(b) && now - b->last_input_ms >= S_QUIET_MS) break;
        uint64_t left = deadline - now;
        if (s_turn(b, (long)(left < 50 ? left : 50)) < 0) break;
        now = pp_mono_ms();
    }
    now = pp_mono_ms();
    int linger = now < deadline ? (int)(deadline - now) : 0;
    s_set_linger(b, linger);
    s_count_left(b);
    pp_info("drained", "elapsed_ms=%llu linger_ms=%d", (unsigned long long)(now - start), linger);
}

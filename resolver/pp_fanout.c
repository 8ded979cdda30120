#include "pp_fanout.h"
#include "pp_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Open (ident, env) batches at once; a message rarely spans more than a few apps. When a
    new pair arrives and all are in use, every open batch is sent first. */
#define S_MAX_OPEN 16

/*  A growable byte arena holding copied strings; items refer to it by offset because it
    may move when it grows. */
typedef struct {
    char *buf;
    size_t used, cap;
} s_arena_t;

typedef struct {
    size_t off, len;
} s_ref_t;

typedef struct {
    bool open;
    int env;
    s_ref_t ident; /* in the arena */
    s_ref_t *refs; /* 2 per target: uid, token */
    size_t n;
    s_arena_t arena;
} s_apns_batch_t;

struct pp_fanout_t {
    pp_fanout_cfg_t cfg;
    pp_fanout_send_fn *send;
    void *ctx;
    const pp_resolve_job_t *job;
    const pp_apns_payload_t *payload;
    s_apns_batch_t apns[S_MAX_OPEN];
    s_ref_t *topic_refs;
    size_t n_topics;
    s_arena_t topic_arena;
    pp_apns_target_t *targets; /* scratch for encoding, max_targets */
    pp_str_t *topics;          /* scratch for encoding, max_topics */
    msgpack_sbuffer sbuf;
    pp_ratelimit_t rl;
    pp_metric_t *m_apns_jobs, *m_mqtt_jobs, *m_topics, *m_encode_failed;
    pp_metric_t *m_targets[2];
};

pp_fanout_t *pp_fanout_new(const pp_fanout_cfg_t *cfg, pp_metrics_t *m, pp_fanout_send_fn *send,
                           void *ctx)
{
    pp_fanout_t *f = calloc(1, sizeof *f);
    if (!f) return NULL;
    f->cfg = *cfg;
    f->send = send;
    f->ctx = ctx;
    f->targets = calloc(cfg->max_targets, sizeof *f->targets);
    f->topics = calloc(cfg->max_topics, sizeof *f->topics);
    f->topic_refs = calloc(cfg->max_topics, sizeof *f->topic_refs);
    for (int i = 0; i < S_MAX_OPEN; i++)
        f->apns[i].refs = calloc(cfg->max_targets * 2, sizeof *f->apns[i].refs);
    bool ok = f->targets && f->topics && f->topic_refs;
    for (int i = 0; i < S_MAX_OPEN; i++)
        ok = ok && f->apns[i].refs;
    if (!ok) {
        pp_fanout_destroy(&f);
        return NULL;
    }
    msgpack_sbuffer_init(&f->sbuf);
    f->rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 5);
    f->m_apns_jobs = pp_metrics_counter(m, "apns_jobs_total", "APNS jobs sent", NULL);
    f->m_mqtt_jobs = pp_metrics_counter(m, "mqtt_jobs_total", "MQTT jobs sent", NULL);
    f->m_topics = pp_metrics_counter(m, "mqtt_topics_total", "MQTT topics in jobs sent", NULL);
    f->m_encode_failed =
        pp_metrics_counter(m, "encode_failed_total", "Jobs that could not be encoded", NULL);
    f->m_targets[PP_ENV_SANDBOX] =
        pp_metrics_counter(m, "apns_targets_total", "APNs targets in jobs sent", "env=\"sandbox\"");
    f->m_targets[PP_ENV_PRODUCTION] = pp_metrics_counter(
        m, "apns_targets_total", "APNs targets in jobs sent", "env=\"production\"");
    return f;
}

void pp_fanout_destroy(pp_fanout_t **p)
{
    if (!p || !*p) return;
    pp_fanout_t *f = *p;
    for (int i = 0; i < S_MAX_OPEN; i++) {
        free(f->apns[i].refs);
        free(f->apns[i].arena.buf);
    }
    free(f->topic_arena.buf);
    free(f->topic_refs);
    free(f->targets);
    free(f->topics);
    msgpack_sbuffer_destroy(&f->sbuf);
    free(f);
    *p = NULL;
}

/*  Appends the concatenation of up to three pieces; returns its reference or len SIZE_MAX
    on allocation failure. */
static s_ref_t s_arena_put(s_arena_t *a, pp_str_t p1, pp_str_t p2, pp_str_t p3)
{
    size_t len = p1.len + p2.len + p3.len;
    if (a->used + len > a->cap) {
        size_t cap = a->cap ? a->cap : 4096;
        while (cap < a->used + len)
            cap *= 2;
        char *buf = realloc(a->buf, cap);
        if (!buf) return (s_ref_t){0, SIZE_MAX};
        a->buf = buf;
        a->cap = cap;
    }
    s_ref_t ref = {a->used, len};
    memcpy(a->buf + a->used, p1.ptr, p1.len);
    memcpy(a->buf + a->used + p1.len, p2.ptr, p2.len);
    memcpy(a->buf + a->used + p1.len + p2.len, p3.ptr, p3.len);
    a->used += len;
    return ref;
}

static pp_str_t s_arena_str(const s_arena_t *a, s_ref_t ref)
{
    return (pp_str_t){a->buf + ref.off, ref.len};
}

/*  Keeps the arena from holding on to a huge buffer after an unusual message. */
static void s_arena_reset(s_arena_t *a)
{
    a->used = 0;
    if (a->cap > (1u << 20)) {
        free(a->buf);
        a->buf = NULL;
        a->cap = 0;
    }
}

void pp_fanout_begin(pp_fanout_t *f, const pp_resolve_job_t *job, const pp_apns_payload_t *payload)
{
    f->job = job;
    f->payload = payload;
}

static void s_encode_failed(pp_fanout_t *f, const char *kind)
{
    pp_metric_inc(f->m_encode_failed);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&f->rl, &suppressed)) {
        char q[80];
        pp_error("job_encode_failed", "kind=%s msg_id=%s suppressed=%u", kind,
                 pp_log_quote(f->job->msg_id.ptr, f->job->msg_id.len, 64, q, sizeof q), suppressed);
    }
}

static int s_send_apns(pp_fanout_t *f, s_apns_batch_t *b)
{
    if (!b->open) return 0;
    const pp_resolve_job_t *job = f->job;
    pp_apns_job_t aj;
    memset(&aj, 0, sizeof aj);
    aj.msg_id = job->msg_id;
    aj.ident = s_arena_str(&b->arena, b->ident);
    aj.env = (uint8_t)b->env;
    aj.payload = (pp_str_t){f->payload->json, f->payload->len};
    aj.push_type = PP_STR_C(f->payload->push_type);
    aj.priority = f->payload->priority;
    aj.expiration = job->opts.apns_expiration;
    aj.collapse_id = job->opts.apns_collapse_id;
    aj.received_us = job->received_us;
    aj.n_targets = b->n;
    aj.targets = f->targets;
    for (size_t i = 0; i < b->n; i++) {
        f->targets[i].uid = s_arena_str(&b->arena, b->refs[2 * i]);
        f->targets[i].token = s_arena_str(&b->arena, b->refs[2 * i + 1]);
    }
    size_t n = b->n;
    int env = b->env;
    b->open = false;
    b->n = 0;
    msgpack_sbuffer_clear(&f->sbuf);
    int enc = pp_apns_job_encode(&aj, &f->sbuf);
    s_arena_reset(&b->arena); /* after encoding: aj points into the arena */
    if (enc != 0) {
        s_encode_failed(f, "apns");
        return -1;
    }
    if (f->send(f->ctx, PP_JOB_APNS, f->sbuf.data, f->sbuf.size) != 0) return -1;
    pp_metric_inc(f->m_apns_jobs);
    pp_metric_add(f->m_targets[env == PP_ENV_SANDBOX ? 0 : 1], n);
    return 0;
}

static s_apns_batch_t *s_batch_for(pp_fanout_t *f, pp_str_t ident, int env, int *rc)
{
    s_apns_batch_t *free_slot = NULL;
    for (int i = 0; i < S_MAX_OPEN; i++) {
        s_apns_batch_t *b = &f->apns[i];
        if (!b->open) {
            if (!free_slot) free_slot = b;
            continue;
        }
        pp_str_t bi = s_arena_str(&b->arena, b->ident);
        if (b->env == env && bi.len == ident.len && memcmp(bi.ptr, ident.ptr, ident.len) == 0)
            return b;
    }
    if (!free_slot) {
        for (int i = 0; i < S_MAX_OPEN; i++)
            *rc |= s_send_apns(f, &f->apns[i]);
        free_slot = &f->apns[0];
    }
    free_slot->ident = s_arena_put(&free_slot->arena, ident, PP_STR(""), PP_STR(""));
    if (free_slot->ident.len == SIZE_MAX) return NULL;
    free_slot->open = true;
    free_slot->env = env;
    free_slot->n = 0;
    return free_slot;
}

int pp_fanout_apns(pp_fanout_t *f, pp_str_t ident, int env, pp_str_t uid, pp_str_t token)
{
    if (!f->payload) return -1;
    int rc = 0;
    s_apns_batch_t *b = s_batch_for(f, ident, env, &rc);
    if (!b) return -1;
    s_ref_t u = s_arena_put(&b->arena, uid, PP_STR(""), PP_STR(""));
    s_ref_t t = s_arena_put(&b->arena, token, PP_STR(""), PP_STR(""));
    if (u.len == SIZE_MAX || t.len == SIZE_MAX) return -1;
    b->refs[2 * b->n] = u;
    b->refs[2 * b->n + 1] = t;
    b->n++;
    if (b->n >= f->cfg.max_targets) rc |= s_send_apns(f, b);
    return rc ? -1 : 0;
}

int pp_fanout_flush_mqtt(pp_fanout_t *f)
{
    if (f->n_topics == 0) return 0;
    const pp_resolve_job_t *job = f->job;
    pp_mqtt_job_t mj;
    memset(&mj, 0, sizeof mj);
    mj.msg_id = job->msg_id;
    mj.qos = job->opts.mqtt_qos;
    mj.payload = job->data_json;
    mj.received_us = job->received_us;
    mj.n_topics = f->n_topics;
    mj.topics = f->topics;
    for (size_t i = 0; i < f->n_topics; i++)
        f->topics[i] = s_arena_str(&f->topic_arena, f->topic_refs[i]);
    size_t n = f->n_topics;
    f->n_topics = 0;
    msgpack_sbuffer_clear(&f->sbuf);
    int enc = pp_mqtt_job_encode(&mj, &f->sbuf);
    s_arena_reset(&f->topic_arena); /* after encoding: mj points into the arena */
    if (enc != 0) {
        s_encode_failed(f, "mqtt");
        return -1;
    }
    if (f->send(f->ctx, PP_JOB_MQTT, f->sbuf.data, f->sbuf.size) != 0) return -1;
    pp_metric_inc(f->m_mqtt_jobs);
    pp_metric_add(f->m_topics, n);
    return 0;
}

int pp_fanout_topic(pp_fanout_t *f, const char *kind, pp_str_t id)
{
    char mid[16];
    int n = snprintf(mid, sizeof mid, "/%s/", kind);
    if (n <= 0 || (size_t)n >= sizeof mid) return -1;
    s_ref_t ref =
        s_arena_put(&f->topic_arena, PP_STR_C(f->cfg.mqtt_prefix), (pp_str_t){mid, (size_t)n}, id);
    if (ref.len == SIZE_MAX) return -1;
    f->topic_refs[f->n_topics++] = ref;
    if (f->n_topics >= f->cfg.max_topics) return pp_fanout_flush_mqtt(f);
    return 0;
}

int pp_fanout_flush(pp_fanout_t *f)
{
    int rc = 0;
    for (int i = 0; i < S_MAX_OPEN; i++)
        rc |= s_send_apns(f, &f->apns[i]);
    rc |= pp_fanout_flush_mqtt(f);
    f->job = NULL;
    f->payload = NULL;
    return rc ? -1 : 0;
}

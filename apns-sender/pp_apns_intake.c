#include "pp_apns_intake.h"

#include "pp_apns_notif.h"
#include "pp_limits.h"
#include "pp_log.h"
#include "pp_uuid.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/* Jobs started per pp_apns_intake_start: the loop's other work (answers, timers) waits for
   no more than this many jobs' worth of notifications. */
#define S_JOB_BATCH 64

typedef struct {
    uint64_t seq;
    zmq_msg_t body;
} s_waiting_t;

struct pp_apns_intake_t {
    pp_apns_intake_cfg_t cfg;
    pp_metrics_t *m;
    pp_linkset_t *link; /* NULL once left: jobs finished after that are not acked */
    s_waiting_t *stash; /* a ring of stash_cap */
    size_t stash_head, stash_n;
    pp_metric_t *jobs, *bad_job, *acked, *not_configured, *unknown_ident;
};

static pp_ratelimit_t s_rl_job = PP_RATELIMIT_INIT(10000, 10);
static pp_ratelimit_t s_rl_link = PP_RATELIMIT_INIT(10000, 5);

pp_apns_intake_t *pp_apns_intake_new(const pp_apns_intake_cfg_t *cfg, pp_metrics_t *m)
{
    pp_apns_intake_t *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->cfg = *cfg;
    in->m = m;
    in->link = cfg->links;
    in->stash = calloc(cfg->stash_cap ? cfg->stash_cap : 1, sizeof *in->stash);
    if (!in->stash) {
        free(in);
        return NULL;
    }
    in->unknown_ident = pp_metrics_counter(
        m, "unknown_ident_total", "Notifications for an app ident with no credentials", NULL);
    in->not_configured = pp_metrics_counter(m, "not_configured_total",
                                            "Notifications not sent: no APNs app configured", NULL);
    in->bad_job = pp_metrics_counter(m, "bad_job_total", "Jobs that could not be decoded", NULL);
    in->jobs = pp_metrics_counter(m, "jobs_total", "APNS jobs received", NULL);
    in->acked =
        pp_metrics_counter(m, "jobs_acked_total",
                           "Jobs acknowledged to the broker (every notification finished)", NULL);
    return in;
}

void pp_apns_intake_destroy(pp_apns_intake_t **p)
{
    if (!p || !*p) return;
    pp_apns_intake_t *in = *p;
    for (; in->stash_n > 0; in->stash_n--) {
        zmq_msg_close(&in->stash[in->stash_head].body);
        in->stash_head = (in->stash_head + 1) % in->cfg.stash_cap;
    }
    free(in->stash);
    free(in);
    *p = NULL;
}

size_t pp_apns_intake_waiting(const pp_apns_intake_t *in)
{
    return in->stash_n;
}

void pp_apns_intake_leave(pp_apns_intake_t *in)
{
    in->link = NULL;
}

/* ---- checks (pure) ---------------------------------------------------------------- */

bool pp_apns_intake_target_ok(const pp_apns_target_t *t)
{
    if (t->uid.len == 0 || t->uid.len > 200) return false;
    if (t->token.len == 0 || t->token.len > PP_TOKEN_MAX_LEN) return false;
    for (size_t i = 0; i < t->token.len; i++) {
        char c = t->token.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            return false;
    }
    return true;
}

static bool s_word_ok(const pp_str_t *t, size_t max)
{
    if (t->len == 0 || t->len > max) return false;
    for (size_t i = 0; i < t->len; i++)
        if (t->ptr[i] < 'a' || t->ptr[i] > 'z') return false;
    return true;
}

static const char *s_topic_suffix(const char *push_type)
{
    static const char *const map[][2] = {{"voip", ".voip"},
                                         {"complication", ".complication"},
                                         {"liveactivity", ".push-type.liveactivity"},
                                         {"fileprovider", ".pushkit.fileprovider"},
                                         {"pushtotalk", ".voip-ptt"},
                                         {NULL, NULL}};
    for (int i = 0; map[i][0]; i++)
        if (!strcmp(map[i][0], push_type)) return map[i][1];
    return "";
}

pp_apns_job_verdict_t pp_apns_intake_headers(const pp_apns_job_t *job, const pp_apns_app_t *app,
                                             pp_apns_headers_t *h, const char **why)
{
    if (job->push_type.len && !s_word_ok(&job->push_type, 32)) {
        *why = "bad_field:push_type";
        return PP_APNS_JOB_BAD;
    }
    snprintf(h->push_type, sizeof h->push_type, "%.*s", (int)job->push_type.len,
             job->push_type.ptr);
    if (!h->push_type[0]) snprintf(h->push_type, sizeof h->push_type, "%s", app->default_push_type);
    h->priority = job->priority ? job->priority : app->default_priority;
    if (!strcmp(h->push_type, "background"))
        h->priority = 5; /* Apple rejects background pushes of any other priority */
    if ((h->priority != 10 && h->priority != 5 && h->priority != 1) || job->collapse_id.len > 64 ||
        job->env > PP_ENV_PRODUCTION || job->msg_id.len > 128) {
        *why = "bad_field:headers";
        return PP_APNS_JOB_BAD;
    }
    size_t max_payload = strcmp(h->push_type, "voip") ? 4096 : 5120;
    if (job->payload.len == 0 || job->payload.len > max_payload) {
        *why = job->payload.len ? "PayloadTooLarge" : "PayloadEmpty";
        return PP_APNS_JOB_REFUSED;
    }
    const char *suffix = s_topic_suffix(h->push_type);
    size_t tl = strlen(app->topic), sl = strlen(suffix);
    if (sl && tl >= sl && !strcmp(app->topic + tl - sl, suffix))
        suffix = ""; /* the configured topic already has it */
    snprintf(h->topic, sizeof h->topic, "%s%s", app->topic, suffix);
    return PP_APNS_JOB_OK;
}

/* ---- jobs ------------------------------------------------------------------------- */

static void s_bad_job(pp_apns_intake_t *in, const char *why)
{
    pp_metric_inc(in->bad_job);
    uint32_t suppressed = 0;
    if (pp_ratelimit_allow(&s_rl_job, &suppressed))
        pp_warn("bad_job", "why=%s suppressed=%u", why, suppressed);
}

/*  The job is finished (every notification delivered or given up for good): tell the
    broker, which then forgets it. Once left (link NULL) it is not acked, so that the
    broker sends it to another sender. */
static void s_job_done(void *owner, uint64_t seq)
{
    pp_apns_intake_t *in = owner;
    if (!in->link) return;
    pp_linkset_ack(in->link, seq);
    pp_metric_inc(in->acked);
}

static void s_job_targets(pp_apns_intake_t *in, const pp_apns_job_t *job, pp_apns_msg_t *msg,
                          pp_h2pool_t *pool)
{
    for (size_t i = 0; i < job->n_targets; i++) {
        const pp_apns_target_t *t = &job->targets[i];
        if (!pp_apns_intake_target_ok(t)) {
            pp_apns_notif_rejected(in->m, "bad_token_format", 1);
            continue;
        }
        pp_apns_notif_t *n =
            pp_apns_notif_new(msg, t->uid.ptr, t->uid.len, t->token.ptr, t->token.len);
        if (!n) {
            pp_apns_notif_rejected(in->m, "out_of_memory", job->n_targets - i);
            break;
        }
        pp_uuid_v4(n->apns_id);
        if (pp_log_enabled(PP_LOG_DEBUG)) {
            char q[120];
            pp_debug("notif", "msg_id=%s apns_id=%s uid=%s", msg->msg_id, n->apns_id,
                     pp_log_quote(n->uid, strlen(n->uid), 64, q, sizeof q));
        }
        (*in->cfg.pending)++;
        pp_h2pool_push(pool, n);
    }
}

/*  The app of a decoded job, or NULL when it has none (counted and logged). */
static pp_apns_app_t *s_app(pp_apns_intake_t *in, const pp_apns_job_t *job)
{
    if (pp_apns_apps_count(in->cfg.apps) == 0) {
        pp_metric_add(in->not_configured, job->n_targets);
        return NULL;
    }
    pp_apns_app_t *app = pp_apns_apps_find(in->cfg.apps, job->ident.ptr, job->ident.len);
    if (!app) {
        pp_metric_add(in->unknown_ident, job->n_targets);
        uint32_t suppressed = 0;
        if (pp_ratelimit_allow(&s_rl_job, &suppressed)) {
            char q[120];
            pp_warn("unknown_ident", "ident=%s targets=%zu suppressed=%u",
                    pp_log_quote(job->ident.ptr, job->ident.len, 64, q, sizeof q), job->n_targets,
                    suppressed);
        }
    }
    return app;
}

/*  Queues one notification per valid target of a checked job on its pool; the message's
    last reference (ours, released after every target has its notification) acks it. */
static void s_job_send(pp_apns_intake_t *in, uint64_t seq, const pp_apns_job_t *job,
                       pp_apns_app_t *app, const pp_apns_headers_t *h)
{
    pp_h2pool_t *pool = in->cfg.pool(in->cfg.owner, app, job->env);
    pp_apns_msg_t *msg = pool
                             ? pp_apns_msg_new(app, job->env, job->msg_id.ptr, job->msg_id.len,
                                               h->topic, h->push_type, h->priority, job->expiration,
                                               job->collapse_id.ptr, job->collapse_id.len,
                                               job->payload.ptr, job->payload.len, job->received_us)
                             : NULL;
    if (!msg) {
        pp_apns_notif_rejected(in->m, pool ? "out_of_memory" : "too_many_pools", job->n_targets);
        s_job_done(in, seq);
        return;
    }
    pp_apns_msg_on_done(msg, s_job_done, in, seq);
    s_job_targets(in, job, msg, pool);
    pp_apns_msg_release(&msg);
}

/*  Starts job seq: one notification per valid target, queued on its pool. The job is
    acked when its last notification is finished (s_job_done through the message's
    reference count), or at once when nothing of it is to be sent. */
static void s_job(pp_apns_intake_t *in, uint64_t seq, const void *data, size_t len)
{
    pp_metric_inc(in->jobs);
    pp_apns_job_t job;
    const char *why = "bad_job";
    if (pp_apns_job_decode(data, len, &job, &why) != 0) {
        s_bad_job(in, why);
        s_job_done(in, seq);
        return;
    }
    pp_apns_app_t *app = s_app(in, &job);
    pp_apns_headers_t h;
    pp_apns_job_verdict_t v = PP_APNS_JOB_OK;
    if (app) v = pp_apns_intake_headers(&job, app, &h, &why);
    if (app && v == PP_APNS_JOB_OK) {
        s_job_send(in, seq, &job, app, &h);
    } else {
        if (v == PP_APNS_JOB_BAD) s_bad_job(in, why);
        if (v == PP_APNS_JOB_REFUSED) pp_apns_notif_rejected(in->m, why, job.n_targets);
        s_job_done(in, seq);
    }
    pp_apns_job_clear(&job);
}

void pp_apns_intake_read(pp_apns_intake_t *in)
{
    for (;;) {
        s_waiting_t *st = NULL;
        zmq_msg_t tmp;
        if (in->stash_n < in->cfg.stash_cap) {
            st = &in->stash[(in->stash_head + in->stash_n) % in->cfg.stash_cap];
            zmq_msg_init(&st->body);
        } else {
            zmq_msg_init(&tmp); /* a hub sending far beyond its credit: start it now */
        }
        uint64_t seq = 0;
        int rc = pp_linkset_recv(in->link, &seq, st ? &st->body : &tmp);
        if (rc != 1) {
            zmq_msg_close(st ? &st->body : &tmp);
            uint32_t suppressed = 0;
            if (rc < 0 && pp_ratelimit_allow(&s_rl_link, &suppressed))
                pp_warn("link_recv_failed", "error=\"%s\" suppressed=%u", zmq_strerror(errno),
                        suppressed);
            return;
        }
        if (st) {
            st->seq = seq;
            in->stash_n++;
        } else {
            s_job(in, seq, zmq_msg_data(&tmp), zmq_msg_size(&tmp));
            zmq_msg_close(&tmp);
        }
    }
}

void pp_apns_intake_start(pp_apns_intake_t *in)
{
    for (int i = 0; i < S_JOB_BATCH && in->stash_n > 0 && *in->cfg.pending < in->cfg.max_pending;
         i++) {
        s_waiting_t *st = &in->stash[in->stash_head];
        s_job(in, st->seq, zmq_msg_data(&st->body), zmq_msg_size(&st->body));
        zmq_msg_close(&st->body);
        in->stash_head = (in->stash_head + 1) % in->cfg.stash_cap;
        in->stash_n--;
    }
}

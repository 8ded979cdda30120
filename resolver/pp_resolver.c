#include "pp_resolver.h"
#include "pp_idset.h"
#include "pp_log.h"
#include "pp_payload_cache.h"
#include "pp_proc.h"
#include "pp_user_lookup.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

/*  Reasons a recipient gets less than the rule would give (skipped_total{reason=...}). */
typedef enum {
    SK_BAD_ID = 0,    /* id in the job not usable (empty, too long, not UTF-8, '/', ...) */
    SK_INVALID_TOKEN, /* app_token not hex of sane length */
    SK_NO_IDENT,      /* token without app_ident and no default_ident */
    SK_BAD_IDENT,     /* app_ident not printable ASCII or too long */
    SK_NOT_ELIGIBLE,  /* channels "apns" and the user is not eligible for APNs */
    SK_PAYLOAD,       /* eligible for APNs but the message has no usable APNs payload */
    SK_DUPLICATE,     /* id given twice in a list, or returned twice by SSCAN */
    SK_COUNT
} s_skip_t;

static const char *s_skip_names[SK_COUNT] = {
    "bad_id", "invalid_token", "no_ident", "bad_ident", "not_eligible", "payload", "duplicate"};

static const char *s_type_names[4] = {"unknown", "group", "users", "user"};

/*  One received message and what belongs to it while it is resolved. */
typedef struct {
    pp_resolve_job_t job;
    bool decoded;
    size_t first, n; /* its users' place among the ids and fields of a lookup shared with
                        other messages (a round, or r->ids) */
    uint64_t seq;    /* its job handle (pp_linkset), acked once all its outputs are sent */
} s_msg_t;

struct pp_resolver_t {
    pp_resolver_cfg_t cfg;
    pp_userdb_t *db;
    pp_linkset_t *link;    /* one link per broker */
    uint64_t out_job;      /* handle of the message in hand: its outputs go to its broker */
    uint64_t last_tick_ms; /* last pp_linkset_tick from inside a long loop */
    bool send_failed;      /* an output of the message in hand was dropped: do not ack it */
    pp_fanout_t *fanout;
    pp_idset_t *seen;
    pp_user_lookup_t *lookup; /* HMGETs: each, batch, and the rounds of small messages */
    pp_payload_cache_t *payloads;
    zmq_msg_t *frames; /* 2 halves of message_batch job bodies received at once */
    s_msg_t *msgs;     /* their decoded jobs */
    /* A round of small messages received together is the messages of one half (its tag);
       at most two in flight: while the replies of one are handled, the next is already
       with Redis, and the link brings the following jobs meanwhile. */
    size_t half_msgs[2]; /* how many messages the half's round holds */
    pp_str_t *ids;       /* scratch: the valid ids of the message or of a scan page */
    size_t ids_cap;
    uint64_t stop_at_ms; /* when SIGTERM was first seen while busy, 0 before */
    /* the message in hand */
    const pp_resolve_job_t *job;
    const pp_apns_payload_t *payload; /* its APNs payload (in r->payloads), or NULL: none */
    pp_ratelimit_t rl_job, rl_token, rl_msg;
    pp_metric_t *m_messages[4], *m_bad_jobs, *m_skipped[SK_COUNT], *m_invalid_token;
    pp_metric_t *m_env_defaulted, *m_ident_defaulted, *m_too_large, *m_payload_bad;
    pp_metric_t *m_abandoned, *m_dropped[2], *m_scan_restarts, *m_dedupe_full, *m_eligible;
    pp_metric_t *m_mqtt_users, *m_unacked, *m_blocked;
};

static void s_register(pp_resolver_t *r, pp_metrics_t *m)
{
    char labels[64];
    for (int t = 1; t <= 3; t++) {
        snprintf(labels, sizeof labels, "type=\"%s\"", s_type_names[t]);
        r->m_messages[t] = pp_metrics_counter(m, "messages_total", "RESOLVE jobs resolved", labels);
    }
    r->m_messages[0] = NULL;
    for (int k = 0; k < SK_COUNT; k++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", s_skip_names[k]);
        r->m_skipped[k] =
            pp_metrics_counter(m, "skipped_total", "Recipients skipped, by reason", labels);
    }
    r->m_bad_jobs =
        pp_metrics_counter(m, "bad_jobs_total", "RESOLVE frames that failed to decode", NULL);
    r->m_invalid_token = pp_metrics_counter(
        m, "invalid_token_total", "app_token values that are not hex of sane length", NULL);
    r->m_env_defaulted =
        pp_metrics_counter(m, "environment_defaulted_total",
                           "APNs targets whose app_version was neither develop nor produce", NULL);
    r->m_ident_defaulted = pp_metrics_counter(
        m, "ident_defaulted_total", "APNs targets sent with resolver.default_ident", NULL);
    r->m_too_large = pp_metrics_counter(m, "payload_too_large_total",
                                        "Messages whose APNs payload is over Apple's limit", NULL);
    r->m_payload_bad = pp_metrics_counter(m, "payload_invalid_total",
                                          "Messages whose data cannot make an APNs payload", NULL);
    r->m_abandoned = pp_metrics_counter(m, "messages_abandoned_total",
                                        "Messages given up at shutdown while Redis was down", NULL);
    r->m_dropped[0] =
        pp_metrics_counter(m, "jobs_dropped_total", "Jobs not sent at shutdown", "kind=\"apns\"");
    r->m_dropped[1] =
        pp_metrics_counter(m, "jobs_dropped_total", "Jobs not sent at shutdown", "kind=\"mqtt\"");
    r->m_scan_restarts = pp_metrics_counter(m, "scan_restarts_total",
                                            "Group scans restarted after Redis came back", NULL);
    r->m_dedupe_full = pp_metrics_counter(
        m, "scan_dedupe_full_total", "Streamed groups too large to remember every member", NULL);
    r->m_eligible =
        pp_metrics_counter(m, "apns_eligible_total", "Users the rule sends to APNs", NULL);
    r->m_mqtt_users =
        pp_metrics_counter(m, "mqtt_users_total", "Users the rule sends to MQTT", NULL);
    r->m_blocked =
        pp_metrics_counter(m, "outputs_blocked_total",
                           "Outputs that had to wait for the broker to read (backpressure)", NULL);
    r->m_unacked = pp_metrics_counter(
        m, "messages_unacked_total",
        "Messages left unacknowledged at shutdown (the broker sends them to another resolver)",
        NULL);
}

static int s_reserve_ids(pp_resolver_t *r, size_t n)
{
    if (n <= r->ids_cap) return 0;
    pp_str_t *ids = realloc(r->ids, n * sizeof *ids);
    if (!ids) return -1;
    r->ids = ids;
    r->ids_cap = n;
    return 0;
}

static int s_send(void *ctx, int kind, const void *buf, size_t len);
static void s_redis_idle(void *ctx);
static bool s_give_up(void *ctx);

pp_resolver_t *pp_resolver_new(const pp_resolver_config_t *config, pp_metrics_t *metrics,
                               pp_userdb_t *db, pp_linkset_t *link)
{
    const pp_resolver_cfg_t *cfg = &config->resolver;
    pp_resolver_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->cfg = *cfg;
    r->db = db;
    r->link = link;
    r->rl_job = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 5);
    r->rl_token = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 5);
    r->rl_msg = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 10);
    s_register(r, metrics);
    pp_userdb_set_idle(db, s_redis_idle, r);
    r->fanout = pp_fanout_new(&cfg->fanout, metrics, s_send, r);
    r->seen = pp_idset_new(cfg->scan_dedupe_max);
    r->lookup = pp_user_lookup_new(db, cfg->pipeline, s_give_up, s_redis_idle, r);
    r->payloads = pp_payload_cache_new();
    r->frames = calloc(2 * cfg->message_batch, sizeof *r->frames);
    r->msgs = calloc(2 * cfg->message_batch, sizeof *r->msgs);
    if (!r->fanout || !r->seen || !r->lookup || !r->payloads || !r->frames || !r->msgs ||
        s_reserve_ids(r, cfg->pipeline) != 0) {
        pp_resolver_destroy(&r);
        return NULL;
    }
    for (size_t i = 0; i < 2 * cfg->message_batch; i++)
        zmq_msg_init(&r->frames[i]);
    return r;
}

void pp_resolver_destroy(pp_resolver_t **p)
{
    if (!p || !*p) return;
    pp_resolver_t *r = *p;
    if (r->db) pp_userdb_set_idle(r->db, NULL, NULL); /* the db outlives us */
    pp_fanout_destroy(&r->fanout);
    pp_idset_destroy(&r->seen);
    pp_user_lookup_destroy(&r->lookup);
    pp_payload_cache_destroy(&r->payloads);
    if (r->frames)
        for (size_t i = 0; i < 2 * r->cfg.message_batch; i++)
            zmq_msg_close(&r->frames[i]);
    free(r->frames);
    free(r->msgs);
    free(r->ids);
    free(r);
    *p = NULL;
}

/*  True once stopping and the drain time since the stop is over. */
static bool s_past_drain(pp_resolver_t *r)
{
    if (!pp_proc_stopping()) return false;
    uint64_t now = pp_mono_ms();
    if (!r->stop_at_ms) r->stop_at_ms = now;
    return now - r->stop_at_ms >= (uint64_t)r->cfg.drain_ms;
}

/*  Keeps the link alive from inside loops that can run long (a million-member group takes
    seconds, Redis may be down for minutes, the broker may not read): heartbeats, acks and
    credit go out, or the broker would declare this resolver dead after 3 heartbeats and
    give its messages to another resolver (duplicates). Cheap when not due. */
static void s_tick(pp_resolver_t *r)
{
    uint64_t now = pp_mono_ms();
    if (now - r->last_tick_ms < 50) return;
    r->last_tick_ms = now;
    pp_linkset_tick(r->link);
}

/*  The userdb's idle callback: runs between Redis round trips and every 50 ms while a
    reply is awaited, so a slow Redis (each round trip near command_timeout_ms) cannot keep
    the link silent past the broker's timeout. */
static void s_redis_idle(void *ctx)
{
    s_tick(ctx);
}

/*  Called at least every 50 ms while waiting for Redis. */
static bool s_give_up(void *ctx)
{
    pp_resolver_t *r = ctx;
    s_tick(r);
    return s_past_drain(r);
}

/*  Hands one job as an output to the link the message in hand came from (its broker
    counts the message's outputs; another broker would not know it). pp_linkset_send never
    blocks: while the broker is not reading (its sender pool is full: backpressure) the job
    is kept here and retried when the socket is writable, ticking the links meanwhile;
    gives up only once stopping and past the drain time (the message is then not
    acknowledged: redone elsewhere). */
static int s_send(void *ctx, int kind, const void *buf, size_t len)
{
    pp_resolver_t *r = ctx;
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, len) != 0) {
        r->send_failed = true;
        return -1;
    }
    memcpy(zmq_msg_data(&msg), buf, len);
    int err = 0;
    bool blocked = false;
    for (;;) {
        if (pp_linkset_send(r->link, r->out_job, &msg) == 0) {
            zmq_msg_close(&msg);
            s_tick(r);
            return 0;
        }
        err = errno;
        if (err != EAGAIN && err != EINTR) break;
        if (!blocked) pp_metric_inc(r->m_blocked);
        blocked = true;
        if (s_past_drain(r)) break;
        int t = pp_linkset_tick(r->link);
        r->last_tick_ms = pp_mono_ms();
        zmq_pollitem_t it = {pp_linkset_job_socket(r->link, r->out_job), 0, ZMQ_POLLOUT, 0};
        if (!it.socket) break; /* not a handle of ours: cannot happen, never loop on it */
        zmq_poll(&it, 1, t < 100 ? t : 100);
    }
    zmq_msg_close(&msg);
    r->send_failed = true;
    pp_metric_inc(r->m_dropped[kind == PP_JOB_APNS ? 0 : 1]);
    pp_error("job_dropped", "kind=%s bytes=%zu error=\"%s\"", kind == PP_JOB_APNS ? "apns" : "mqtt",
             len, zmq_strerror(err));
    return -1;
}

static void s_skip(pp_resolver_t *r, s_skip_t why, pp_str_t uid)
{
    pp_metric_inc(r->m_skipped[why]);
    if (why == SK_INVALID_TOKEN) pp_metric_inc(r->m_invalid_token);
    if (why == SK_INVALID_TOKEN || why == SK_BAD_ID || why == SK_BAD_IDENT || why == SK_NO_IDENT) {
        uint32_t suppressed;
        if (pp_ratelimit_allow(&r->rl_token, &suppressed)) {
            char q[96], m[80];
            pp_warn("recipient_skipped", "reason=%s uid=%s msg_id=%s suppressed=%u",
                    s_skip_names[why], pp_log_quote(uid.ptr, uid.len, 64, q, sizeof q),
                    pp_log_quote(r->job->msg_id.ptr, r->job->msg_id.len, 40, m, sizeof m),
                    suppressed);
        }
    }
}

/*  Applies the rule to one looked-up user. In a group, users not sent to APNs get nothing
    more: the group publish covers them. */
static void s_apply(pp_resolver_t *r, pp_str_t uid, const pp_user_fields_t *f, bool group)
{
    pp_user_decision_t d;
    pp_user_decide(&r->cfg.rule, f, &d);
    bool mqtt_ch = r->job->opts.channels & PP_CH_MQTT;
    if (d.verdict == PP_USER_APNS) {
        pp_metric_inc(r->m_eligible);
        if (!r->payload) {
            s_skip(r, SK_PAYLOAD, uid);
            return;
        }
        if (d.env_defaulted) pp_metric_inc(r->m_env_defaulted);
        if (d.ident_defaulted) pp_metric_inc(r->m_ident_defaulted);
        pp_fanout_apns(r->fanout, d.ident, d.env, uid, f->token);
        return;
    }
    if (d.verdict == PP_USER_BAD_TOKEN)
        s_skip(r, SK_INVALID_TOKEN, uid);
    else if (d.verdict == PP_USER_NO_IDENT)
        s_skip(r, SK_NO_IDENT, uid);
    else if (d.verdict == PP_USER_BAD_IDENT)
        s_skip(r, SK_BAD_IDENT, uid);
    if (!mqtt_ch) {
        s_skip(r, SK_NOT_ELIGIBLE, uid);
        return;
    }
    if (!group) {
        pp_metric_inc(r->m_mqtt_users);
        pp_fanout_topic(r->fanout, "user", uid);
    }
}

static void s_apply_user(void *ctx, pp_str_t uid, const pp_user_fields_t *f)
{
    s_apply(ctx, uid, f, false);
}

static void s_apply_member(void *ctx, pp_str_t uid, const pp_user_fields_t *f)
{
    s_apply(ctx, uid, f, true);
}

/*  Looks up and applies the rule to n users (members of a group or not), in order; a Redis
    failure repeats from the first round not handled. Returns 0, or -1 when abandoned at
    shutdown. */
static int s_lookup_users(pp_resolver_t *r, const pp_str_t *ids, size_t n, bool group)
{
    return pp_user_lookup_each(r->lookup, ids, n, group ? s_apply_member : s_apply_user, r);
}

/*  Repeats a Redis call until it succeeds or the resolver gives up at shutdown. */
#define S_RETRY(r, call)                                                                           \
    while ((call) != 0)                                                                            \
        if (pp_userdb_recover((r)->db, s_give_up, (r)) != 0) return -1

/*  Streams a large group with SSCAN. Members already handled are remembered (pp_idset) so
    that duplicates from SSCAN and pages seen again after a restarted scan are skipped. After
    a reconnect the cursor may mean nothing to the server (a restarted Redis hashes
    differently), so the scan starts over from 0 and relies on that memory. */
static int s_scan_group(pp_resolver_t *r, pp_str_t gid)
{
    char cursor[32] = "0";
    bool dedupe = true;
    uint64_t session = pp_userdb_session(r->db);
    pp_idset_reset(r->seen);
    bool done = false;
    while (!done) {
        const pp_str_t *members;
        size_t n;
        if (pp_userdb_session(r->db) != session) {
            session = pp_userdb_session(r->db);
            if (dedupe && strcmp(cursor, "0") != 0) {
                pp_metric_inc(r->m_scan_restarts);
                pp_info("scan_restarted", "reason=redis_reconnected seen=%zu",
                        pp_idset_size(r->seen));
                strcpy(cursor, "0");
            }
        }
        if (pp_userdb_group_scan(r->db, gid, cursor, r->cfg.scan_count, &members, &n) != 0) {
            if (pp_userdb_recover(r->db, s_give_up, r) != 0) return -1;
            continue;
        }
        if (s_reserve_ids(r, n) != 0) return -1;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
            int added = dedupe ? pp_idset_add(r->seen, members[i].ptr, members[i].len) : 1;
            if (added == 0) {
                s_skip(r, SK_DUPLICATE, members[i]);
                continue;
            }
            if (added < 0) {
                dedupe = false;
                pp_metric_inc(r->m_dedupe_full);
                pp_warn("scan_dedupe_full", "members=%zu", pp_idset_size(r->seen));
            }
            r->ids[k++] = members[i];
        }
        done = strcmp(cursor, "0") == 0;
        s_tick(r);
        if (s_lookup_users(r, r->ids, k, true) != 0) return -1;
    }
    pp_idset_reset(r->seen);
    return 0;
}

static int s_group(pp_resolver_t *r)
{
    pp_str_t gid = r->job->ids[0];
    const pp_resolve_job_t *job = r->job;
    if (!pp_user_id_valid(gid, PP_ID_MAX_LEN)) {
        s_skip(r, SK_BAD_ID, gid);
        return 0;
    }
    if (job->opts.channels & PP_CH_MQTT) {
        pp_fanout_topic(r->fanout, "group", gid);
        pp_fanout_flush_mqtt(r->fanout); /* before a possibly long member lookup */
    }
    if (!(job->opts.channels & PP_CH_APNS) || !r->payload)
        return 0; /* nothing to look up: no APNs for this message */
    long long size = 0;
    S_RETRY(r, pp_userdb_group_size(r->db, gid, &size));
    if (size <= 0) return 0; /* no such group (or not a set: counted by the userdb) */
    if (size > (long long)r->cfg.scan_threshold) return s_scan_group(r, gid);
    const pp_str_t *members;
    size_t n;
    S_RETRY(r, pp_userdb_group_members(r->db, gid, &members, &n));
    return s_lookup_users(r, members, n, true);
}

/*  Writes the valid ids of a type 2/3 job into out (room for job->n_ids), each once: the
    broker de-duplicates lists, doing it again here is cheap and means a list with
    duplicates (an older broker, a bug) still gives each user one push. Returns the count. */
static size_t s_prepare_ids(pp_resolver_t *r, const pp_resolve_job_t *job, pp_str_t *out)
{
    bool dedupe = job->n_ids > 1;
    if (dedupe) pp_idset_reset(r->seen);
    size_t n = 0;
    for (size_t i = 0; i < job->n_ids; i++) {
        pp_str_t id = job->ids[i];
        if (!pp_user_id_valid(id, PP_ID_MAX_LEN)) {
            s_skip(r, SK_BAD_ID, id);
            continue;
        }
        if (dedupe && pp_idset_add(r->seen, id.ptr, id.len) == 0) {
            s_skip(r, SK_DUPLICATE, id);
            continue;
        }
        out[n++] = id;
    }
    if (dedupe) pp_idset_reset(r->seen);
    return n;
}

/*  Types 2 and 3: every valid id by the rule (channels "mqtt": user topics, no lookups). */
static int s_users(pp_resolver_t *r)
{
    const pp_resolve_job_t *job = r->job;
    if (s_reserve_ids(r, job->n_ids) != 0) return -1;
    size_t n = s_prepare_ids(r, job, r->ids);
    if (job->opts.channels == PP_CH_MQTT) {
        for (size_t i = 0; i < n; i++) {
            pp_metric_inc(r->m_mqtt_users);
            pp_fanout_topic(r->fanout, "user", r->ids[i]);
        }
        return 0;
    }
    return s_lookup_users(r, r->ids, n, false);
}

static void s_bad_job(pp_resolver_t *r, const char *why, size_t len)
{
    pp_metric_inc(r->m_bad_jobs);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&r->rl_job, &suppressed))
        pp_warn("bad_resolve_job", "reason=%s bytes=%zu suppressed=%u", why, len, suppressed);
}

/*  Finds the message's APNs payload (r->payload) when it may use APNs: reused from the
    message before when built from the same data and options (pp_payload_cache); a message
    whose data makes none is counted and logged. */
static void s_payload(pp_resolver_t *r)
{
    const pp_resolve_job_t *job = r->job;
    r->payload = NULL;
    if (!(job->opts.channels & PP_CH_APNS)) return;
    const char *why = NULL;
    r->payload = pp_payload_cache_get(r->payloads, job, &why);
    if (r->payload) return;
    pp_metric_inc(strcmp(why, "too_large") == 0 ? r->m_too_large : r->m_payload_bad);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&r->rl_msg, &suppressed)) {
        char m[80];
        pp_warn("apns_payload_rejected", "reason=%s msg_id=%s data_bytes=%zu suppressed=%u", why,
                pp_log_quote(job->msg_id.ptr, job->msg_id.len, 40, m, sizeof m), job->data_json.len,
                suppressed);
    }
}

static void s_decode(pp_resolver_t *r, s_msg_t *m, const void *buf, size_t len)
{
    const char *why = "bad_frame";
    m->decoded = pp_resolve_job_decode(buf, len, &m->job, &why) == 0;
    if (!m->decoded) s_bad_job(r, why ? why : "bad_frame", len);
}

/*  Starts resolving m: the APNs payload (once per message) and the fan-out. */
static void s_msg_begin(pp_resolver_t *r, s_msg_t *m)
{
    r->job = &m->job;
    r->out_job = m->seq;
    r->send_failed = false;
    pp_metric_inc(r->m_messages[m->job.push_type]);
    s_payload(r);
    pp_fanout_begin(r->fanout, &m->job, r->payload);
}

/*  Ends m: sends what is batched (even when abandoned: what was resolved goes out), then
    acknowledges the RESOLVE job, only when every output was handed to the link. One socket
    keeps order, so the broker sees the outputs before the ack. A message abandoned at
    shutdown, or with an output dropped, stays unacknowledged: the broker re-sends it to
    another resolver when this one says bye (at-least-once; what went out goes out again). */
static void s_msg_end(pp_resolver_t *r, s_msg_t *m, int rc)
{
    const pp_resolve_job_t *job = &m->job;
    pp_fanout_flush(r->fanout);
    char q[80];
    if (rc != 0) {
        pp_metric_inc(r->m_abandoned);
        pp_error("message_abandoned", "msg_id=%s reason=redis_unavailable_at_shutdown acked=false",
                 pp_log_quote(job->msg_id.ptr, job->msg_id.len, 40, q, sizeof q));
    } else if (r->send_failed) {
        pp_error("message_not_acked", "msg_id=%s reason=output_not_sent",
                 pp_log_quote(job->msg_id.ptr, job->msg_id.len, 40, q, sizeof q));
    } else {
        pp_linkset_ack(r->link, m->seq);
        if (pp_log_enabled(PP_LOG_DEBUG))
            pp_debug("message_resolved", "msg_id=%s type=%s ids=%zu",
                     pp_log_quote(job->msg_id.ptr, job->msg_id.len, 40, q, sizeof q),
                     s_type_names[job->push_type], job->n_ids);
    }
    r->job = NULL;
}

/*  Small type 2/3 messages that need lookups are looked up together with their
    neighbours: one pipelined round for many single-user messages. */
static bool s_batchable(const pp_resolver_t *r, const pp_resolve_job_t *job)
{
    return job->push_type != 1 && job->opts.channels != PP_CH_MQTT && job->n_ids <= r->cfg.pipeline;
}

/*  Applies the user rule to every user of msgs[0..n), whose ids and looked-up fields
    start at ids[m->first] and fields[m->first] (rc: the lookup's result, nonzero when it
    failed); jobs that did not decode are acked in order, like in s_resolve_all. */
static void s_apply_msgs(pp_resolver_t *r, s_msg_t *msgs, size_t n, const pp_str_t *ids,
                         const pp_user_fields_t *fields, int rc)
{
    for (size_t k = 0; k < n; k++) {
        s_msg_t *m = &msgs[k];
        if (!m->decoded) {
            pp_linkset_ack(r->link, m->seq);
            continue;
        }
        s_msg_begin(r, m);
        for (size_t u = 0; rc == 0 && u < m->n; u++)
            s_apply(r, ids[m->first + u], &fields[m->first + u], false);
        s_msg_end(r, m, rc);
    }
}

/*  Resolves msgs[i..] that can share one pipelined lookup; returns the index after them. */
static size_t s_resolve_together(pp_resolver_t *r, s_msg_t *msgs, size_t i, size_t n)
{
    size_t total = 0, j = i;
    for (; j < n; j++) {
        s_msg_t *m = &msgs[j];
        if (!m->decoded) continue;
        if (!s_batchable(r, &m->job) || total + m->job.n_ids > r->cfg.pipeline) break;
        r->job = &m->job; /* for the skip log lines */
        m->first = total;
        m->n = s_prepare_ids(r, &m->job, r->ids + total);
        total += m->n;
    }
    const pp_user_fields_t *fields = NULL;
    int rc = pp_user_lookup_batch(r->lookup, r->ids, total, &fields);
    s_apply_msgs(r, msgs + i, j - i, r->ids, fields, rc);
    return j;
}

/*  Resolves decoded messages in order and acknowledges each when done (a job that does not
    decode is acknowledged at once: no resolver could do better with it). */
static void s_resolve_all(pp_resolver_t *r, s_msg_t *msgs, size_t n)
{
    for (size_t i = 0; i < n;) {
        s_msg_t *m = &msgs[i];
        s_tick(r);
        if (!m->decoded) {
            pp_linkset_ack(r->link, m->seq);
            i++;
        } else if (s_batchable(r, &m->job)) {
            i = s_resolve_together(r, msgs, i, n);
        } else {
            s_msg_begin(r, m);
            s_msg_end(r, m, m->job.push_type == 1 ? s_group(r) : s_users(r));
            i++;
        }
    }
}

/*  Receives up to message_batch jobs without waiting into frames[] / msgs[].seq (one half).
    Returns how many. */
static size_t s_receive(pp_resolver_t *r, s_msg_t *msgs, zmq_msg_t *frames)
{
    size_t n = 0;
    while (n < r->cfg.message_batch) {
        memset(&msgs[n], 0, sizeof msgs[n]);
        int rc = pp_linkset_recv(r->link, &msgs[n].seq, &frames[n]);
        if (rc == 1) {
            n++;
            continue;
        }
        if (rc < 0) {
            uint32_t suppressed;
            if (pp_ratelimit_allow(&r->rl_job, &suppressed))
                pp_warn("link_recv_failed", "error=\"%s\" suppressed=%u", zmq_strerror(errno),
                        suppressed);
        }
        break;
    }
    return n;
}

/*  Frees the decoded jobs and bodies of n messages now (not at the next receive). */
static void s_release(s_msg_t *msgs, zmq_msg_t *frames, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (msgs[i].decoded) pp_resolve_job_clear(&msgs[i].job);
        msgs[i].decoded = false;
        zmq_msg_close(&frames[i]);
        zmq_msg_init(&frames[i]);
    }
}

/*  Starts a round of the n messages just received into half h when all of them are small
    type 2/3 messages whose users fit one pipelined HMGET: their users are sent to Redis now
    and read later (s_round_finish). Returns false, with nothing started, otherwise. */
static bool s_round_start(pp_resolver_t *r, unsigned h, size_t n)
{
    s_msg_t *msgs = r->msgs + h * r->cfg.message_batch;
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (!msgs[i].decoded) continue;
        if (!s_batchable(r, &msgs[i].job)) return false;
        total += msgs[i].job.n_ids;
    }
    if (total > r->cfg.pipeline) return false;
    pp_str_t *ids = pp_user_lookup_round_ids(r->lookup);
    size_t n_ids = 0;
    for (size_t i = 0; i < n; i++) {
        s_msg_t *m = &msgs[i];
        if (!m->decoded) continue;
        r->job = &m->job; /* for the skip log lines */
        m->first = n_ids;
        m->n = s_prepare_ids(r, &m->job, ids + n_ids);
        n_ids += m->n;
    }
    r->job = NULL;
    r->half_msgs[h] = n;
    pp_user_lookup_round_start(r->lookup, h, n_ids);
    return true;
}

/*  Reads the oldest round's replies (pp_user_lookup_round_finish), resolves its messages
    in order, acks each and frees them. Returns 0, or -1 when Redis was given up at
    shutdown (its messages are then left unacknowledged). */
static int s_round_finish(pp_resolver_t *r)
{
    pp_user_round_t rd;
    int rc = pp_user_lookup_round_finish(r->lookup, &rd);
    s_msg_t *msgs = r->msgs + rd.tag * r->cfg.message_batch;
    s_apply_msgs(r, msgs, r->half_msgs[rd.tag], rd.ids, rd.fields, rc);
    s_release(msgs, r->frames + rd.tag * r->cfg.message_batch, r->half_msgs[rd.tag]);
    pp_linkset_tick(r->link); /* the acks (and so new credit) go out while Redis works */
    r->last_tick_ms = pp_mono_ms();
    return rc;
}

/*  Waits up to max_ms for jobs (not at all while a round is in flight), then resolves and
    acknowledges every job received. Small messages received together become one pipelined
    round that is read only after the next round was sent (or when no job is waiting):
    Redis, the resolver and the broker work at the same time instead of in turn. */
static void s_step(pp_resolver_t *r, int max_ms)
{
    int t = pp_linkset_tick(r->link);
    r->last_tick_ms = pp_mono_ms();
    size_t rounds = pp_user_lookup_rounds(r->lookup);
    if (rounds > 0) t = 0;
    zmq_pollitem_t it[PP_LINKSET_MAX];
    int n_it = (int)pp_linkset_poll_items(r->link, it, ZMQ_POLLIN);
    size_t n = 0;
    unsigned h = rounds > 0 ? pp_user_lookup_round_tag(r->lookup) ^ 1u : 0;
    s_msg_t *msgs = r->msgs + h * r->cfg.message_batch;
    zmq_msg_t *frames = r->frames + h * r->cfg.message_batch;
    if (zmq_poll(it, n_it, t < max_ms ? t : max_ms) > 0) /* only link sockets: one is readable */
        n = s_receive(r, msgs, frames);
    if (n == 0) {
        if (rounds > 0) s_round_finish(r);
        return;
    }
    for (size_t i = 0; i < n; i++)
        s_decode(r, &msgs[i], zmq_msg_data(&frames[i]), zmq_msg_size(&frames[i]));
    if (s_round_start(r, h, n)) {
        if (pp_user_lookup_rounds(r->lookup) == 2) s_round_finish(r);
        return;
    }
    /* group lookups and SSCAN need the connection to themselves */
    while (pp_user_lookup_rounds(r->lookup) > 0)
        s_round_finish(r);
    s_resolve_all(r, msgs, n);
    s_release(msgs, frames, n);
    pp_linkset_tick(r->link); /* the acks go out now */
}

int pp_resolver_run(pp_resolver_t *r)
{
    while (!pp_proc_stopping())
        s_step(r, 200);
    return 0;
}

void pp_resolver_drain(pp_resolver_t *r)
{
    /* Stopping: no new credit; finish what is held or still arrives on credit already
       granted, bounded by drain_ms. What is left is re-sent by the broker at our "B". */
    pp_linkset_pause(r->link, true);
    while (pp_linkset_held(r->link) > 0 && !s_past_drain(r))
        s_step(r, 50);
    /* past the drain time: read them or leave them unacked */
    while (pp_user_lookup_rounds(r->lookup) > 0)
        s_round_finish(r);
    uint32_t left = pp_linkset_held(r->link);
    pp_metric_add(r->m_unacked, left);
    pp_info("drained", "unacked=%u", left);
}

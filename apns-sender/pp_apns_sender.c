#include "pp_apns_sender.h"

#include "pp_apns_apps.h"
#include "pp_apns_classify.h"
#include "pp_apns_dns.h"
#include "pp_apns_intake.h"
#include "pp_apns_keepalive.h"
#include "pp_apns_notif.h"
#include "pp_curve.h"
#include "pp_h2pool.h"
#include "pp_jwt_share.h"
#include "pp_linkset.h"
#include "pp_proc.h"
#include "pp_retryq.h"
#include "pp_token_gc.h"

#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MAX_POOLS 2048
#define S_MAX_POLL 4096
/* Request timeouts in a row, with no answer between, after which a connection is replaced:
   one can be a slow request, three is a connection that no longer answers. */
#define S_TIMEOUTS_TO_REPLACE 3

struct pp_apns_sender_t {
    pp_metrics_t *m;
    pp_apns_apps_t *apps;
    pp_jwt_share_t *jwt;
    pp_token_gc_t *gc;
    pp_retryq_t *retryq;
    pp_apns_intake_t *intake; /* jobs in: taken from the link, turned into notifications */
    pp_linkset_t *link;       /* one link per broker (borrowed); NULL once left: jobs finished after
                                 that are not acked */
    pp_apns_hostport_t hosts[2];
    pp_h2pool_t *pools[S_MAX_POOLS];
    size_t n_pools;
    /* settings */
    int max_attempts;
    uint32_t retry_base_ms, retry_max_ms;
    size_t max_pending;
    uint32_t drain_ms;
    uint32_t ping_interval_ms, timeout_ms, reconnect_min_ms, reconnect_max_ms;
    uint32_t request_timeout_ms;
    uint32_t window, heartbeat_ms;
    int max_resends;
    /* state */
    size_t pending; /* notifications alive: queued, in flight or waiting for a retry (the
                       intake adds those it queues) */
    bool paused;    /* no new credit to the hub (backpressure or stopping) */
    bool warn_no_redis;
    bool failed;             /* the loop hit a fatal error: no drain */
    int link_ms;             /* until the link's next timer (pp_linkset_tick) */
    uint64_t drain_deadline; /* 0 until the drain starts */
    /* metrics */
    pp_metric_t *sent, *resent, *delivered[2], *expired;
    pp_metric_t *connections, *reconnects, *goaways, *in_flight, *pending_g;
    pp_metric_t *exhausted, *dropped_on_exit, *pauses;
    pp_metric_t *timeouts[2], *replaced_timeouts, *replaced_no_streams; /* request deadlines */
};

static pp_ratelimit_t s_rl_resp = PP_RATELIMIT_INIT(10000, 20);

/* ---- configuration ---------------------------------------------------------------- */

static void s_metrics(pp_apns_sender_t *s)
{
    pp_metrics_t *m = s->m;
    s->sent = pp_metrics_counter(m, "sent_total", "Requests sent to APNs (each attempt)", NULL);
    s->resent = pp_metrics_counter(m, "resent_total",
                                   "Requests sent again because APNs did not process them "
                                   "(REFUSED_STREAM, GOAWAY, connection lost)",
                                   NULL);
    s->delivered[0] = pp_metrics_counter(m, "delivered_total", "Notifications accepted by APNs",
                                         "env=\"sandbox\"");
    s->delivered[1] = pp_metrics_counter(m, "delivered_total", "Notifications accepted by APNs",
                                         "env=\"production\"");
    s->expired = pp_metrics_counter(m, "expired_total",
                                    "Notifications dropped: their expiration passed before APNs "
                                    "accepted them",
                                    NULL);
    s->connections = pp_metrics_gauge(m, "connections", "HTTP/2 connections ready", NULL);
    s->reconnects = pp_metrics_counter(m, "reconnects_total", "Connections made again", NULL);
    s->goaways = pp_metrics_counter(m, "goaways_total", "GOAWAY frames received", NULL);
    s->in_flight = pp_metrics_gauge(m, "in_flight", "Requests on open streams", NULL);
    s->pending_g = pp_metrics_gauge(m, "pending", "Notifications held by the sender", NULL);
    s->exhausted =
        pp_metrics_counter(m, "retry_exhausted_total",
                           "Notifications dropped after apns_sender.retry.max_attempts", NULL);
    s->dropped_on_exit = pp_metrics_counter(
        m, "dropped_on_exit_total",
        "Notifications still held when the drain time ran out (their jobs are not acked: the "
        "broker sends them to another sender)",
        NULL);
    s->pauses = pp_metrics_counter(m, "link_paused_total",
                                   "Times max_pending stopped the credit to the broker", NULL);
    const char *th = "Notifications past apns_sender.request_timeout_ms: on a stream (reset, "
                     "retried) or waiting in a stuck queue (retried)";
    s->timeouts[0] = pp_metrics_counter(m, "request_timeouts_total", th, "stage=\"stream\"");
    s->timeouts[1] = pp_metrics_counter(m, "request_timeouts_total", th, "stage=\"queue\"");
    const char *rh = "Connections closed and replaced: request timeouts in a row, or no stream "
                     "allowed (SETTINGS_MAX_CONCURRENT_STREAMS 0)";
    s->replaced_timeouts = pp_metrics_counter(m, "conn_replaced_total", rh, "reason=\"timeouts\"");
    s->replaced_no_streams =
        pp_metrics_counter(m, "conn_replaced_total", rh, "reason=\"no_streams\"");
}

static void s_keepalive(void *arg);
static pp_h2pool_t *s_pool(void *owner, pp_apns_app_t *app, int env);

/*  Room for the window twice over: after a hub restart ("W") jobs of the old hub are still
    held while the new one fills the window again. */
static pp_apns_intake_t *s_intake_new(pp_apns_sender_t *s, pp_linkset_t *links)
{
    pp_apns_intake_cfg_t ic = {
        links, s->apps, &s->pending, s->max_pending, 2 * (size_t)s->window + 64, s_pool, s};
    return pp_apns_intake_new(&ic, s->m);
}

pp_apns_sender_t *pp_apns_sender_new(pp_apns_sender_config_t *cfg, pp_metrics_t *metrics,
                                     pp_linkset_t *links)
{
    pp_apns_sender_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    /* Backoff jitter comes from rand(): seed it per process so that several senders that
       lost the same server do not come back in step. */
    srand((unsigned)getpid() ^ (unsigned)pp_wall_us());
    s->m = metrics;
    s->apps = cfg->apps;
    cfg->apps = NULL;
    memcpy(s->hosts, cfg->hosts, sizeof s->hosts);
    s->max_attempts = cfg->max_attempts;
    s->retry_base_ms = cfg->retry_base_ms;
    s->retry_max_ms = cfg->retry_max_ms;
    s->max_pending = cfg->max_pending;
    s->drain_ms = cfg->drain_ms;
    s->ping_interval_ms = cfg->ping_interval_ms;
    s->timeout_ms = cfg->timeout_ms;
    s->request_timeout_ms = cfg->request_timeout_ms;
    s->reconnect_min_ms = cfg->reconnect_min_ms;
    s->reconnect_max_ms = cfg->reconnect_max_ms;
    s->window = cfg->link.window;
    s->heartbeat_ms = cfg->link.heartbeat_ms;
    s->max_resends = cfg->max_resends;
    s_metrics(s);
    pp_apns_dns_metrics(s->m);
    s->jwt = pp_jwt_share_new(&cfg->redis, &cfg->jwt, s->m);
    s->gc = pp_token_gc_new(&cfg->redis, cfg->remove_invalid_tokens, cfg->invalid_token_list,
                            cfg->user_key_prefix, s->m);
    s->retryq = pp_retryq_new();
    s->intake = s_intake_new(s, links);
    /* The most common labelled series exist from the start (at 0), so that dashboards and
       alerts see them before the first event; others appear when they first happen. */
    pp_metrics_counter(s->m, "invalid_token_total", "Device tokens APNs called invalid",
                       "reason=\"Unregistered\"");
    pp_metrics_counter(s->m, "rejected_total", "Notifications APNs refused (not retried)",
                       "reason=\"BadTopic\"");
    pp_metrics_counter(s->m, "retried_total", "Notifications retried after an answer",
                       "status=\"429\"");
    if (!s->jwt || !s->gc || !s->retryq || !s->apps || !s->intake) {
        pp_apns_sender_destroy(&s);
        return NULL;
    }
    if (cfg->remove_invalid_tokens && !cfg->redis.enabled)
        pp_warn("invalid_tokens_not_removed", "why=no_redis_configured");
    s->link = links;
    /* Long h2 work (TLS handshakes, host lookups) ticks the link through this hook. */
    pp_apns_keepalive_set(s_keepalive, s);
    for (size_t i = 0; i < pp_linkset_size(links); i++)
        pp_info("broker_connected", "endpoint=%s apps=%zu window=%u heartbeat_ms=%u",
                pp_linkset_endpoint(links, i), pp_apns_apps_count(s->apps), s->window,
                s->heartbeat_ms);
    return s;
}

/* ---- helpers ---------------------------------------------------------------------- */

static int64_t s_wall_s(void)
{
    return (int64_t)(pp_wall_us() / 1000000);
}

static void s_count(pp_apns_sender_t *s, const char *name, const char *help, const char *key,
                    const char *value, uint64_t n)
{
    char labels[128];
    snprintf(labels, sizeof labels, "%s=\"%s\"", key, value);
    pp_metric_add(pp_metrics_counter(s->m, name, help, labels), n);
}

static void s_free(pp_apns_sender_t *s, pp_apns_notif_t **n)
{
    pp_apns_notif_destroy(n);
    s->pending--;
}

/* ---- answers ---------------------------------------------------------------------- */

static uint64_t s_retry_delay(pp_apns_sender_t *s, int attempts)
{
    uint64_t d = s->retry_base_ms;
    for (int i = 1; i < attempts && d < s->retry_max_ms; i++)
        d *= 2;
    if (d > s->retry_max_ms) d = s->retry_max_ms;
    return d / 2 + (uint64_t)(rand() % (int)(d / 2 + 1)); /* jitter: 50-100% */
}

static void s_retry(pp_apns_sender_t *s, pp_apns_notif_t *n, int status, uint64_t min_delay_ms)
{
    const pp_apns_msg_t *m = n->msg;
    n->attempts++;
    if (m->expiration == 0) {
        /* apns-expiration 0: "now or never". APNs answered, so the attempt happened;
           trying again later would deliver something that asked not to be stored. */
        pp_metric_inc(s->expired);
        pp_debug("notif_expired", "apns_id=%s msg_id=%s why=deliver_once", n->apns_id, m->msg_id);
        s_free(s, &n);
        return;
    }
    if (n->attempts >= s->max_attempts) {
        pp_metric_inc(s->exhausted);
        pp_apns_notif_rejected(s->m, "retries_exhausted", 1);
        pp_warn("notif_gave_up", "apns_id=%s msg_id=%s attempts=%d status=%d", n->apns_id,
                m->msg_id, n->attempts, status);
        s_free(s, &n);
        return;
    }
    uint64_t delay = s_retry_delay(s, n->attempts);
    if (delay < min_delay_ms) delay = min_delay_ms;
    if (m->expiration > 0 && (pp_wall_us() / 1000 + delay) / 1000 > (uint64_t)m->expiration) {
        pp_metric_inc(s->expired);
        pp_debug("notif_expired", "apns_id=%s msg_id=%s why=retry_after_expiration", n->apns_id,
                 m->msg_id);
        s_free(s, &n);
        return;
    }
    char st[8];
    snprintf(st, sizeof st, status ? "%d" : "timeout", status);
    s_count(s, "retried_total", "Notifications retried after an answer", "status", st, 1);
    if (pp_retryq_push(s->retryq, pp_mono_ms() + delay, n) != 0) s_free(s, &n);
}

static void s_parse_body(const char *body, size_t len, char *reason, size_t rlen, int64_t *ts)
{
    snprintf(reason, rlen, "%s", "");
    *ts = 0;
    if (len == 0) return;
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!j) return;
    json_t *r = json_object_get(j, "reason");
    if (json_is_string(r)) snprintf(reason, rlen, "%s", json_string_value(r));
    json_t *t = json_object_get(j, "timestamp");
    if (json_is_integer(t)) *ts = json_integer_value(t);
    json_decref(j);
}

static void s_on_response(void *owner, pp_h2pool_t *pool, pp_apns_notif_t *n, int status,
                          const char *body, size_t body_len)
{
    (void)pool;
    pp_apns_sender_t *s = owner;
    const pp_apns_msg_t *m = n->msg;
    char reason_raw[96] = "";
    int64_t ts = 0;
    if (status != 200) s_parse_body(body, body_len, reason_raw, sizeof reason_raw, &ts);
    const char *reason = pp_apns_reason_label(status, reason_raw);
    int64_t wait_ms = 0;
    switch (pp_apns_classify(status, reason_raw, m->app->cred != NULL)) {
    case PP_APNS_DELIVERED:
        pp_metric_inc(s->delivered[m->env ? 1 : 0]);
        s_free(s, &n);
        return;
    case PP_APNS_DROP_TOKEN:
        s_count(s, "invalid_token_total", "Device tokens APNs called invalid", "reason", reason, 1);
        pp_token_gc_add(s->gc, n->uid, n->token, reason, m->app->ident, m->env, m->msg_id, ts);
        s_free(s, &n);
        return;
    case PP_APNS_REFRESH_JWT:
        wait_ms = pp_jwt_share_on_expired(s->jwt, m->app->cred, n->jwt_iat, s_wall_s());
        s_retry(s, n, status, (uint64_t)wait_ms);
        return;
    case PP_APNS_REPLACE_JWT:
        wait_ms = pp_jwt_share_on_invalid(s->jwt, m->app->cred, n->jwt_iat, s_wall_s());
        s_retry(s, n, status, (uint64_t)wait_ms);
        return;
    case PP_APNS_RETRY:
        s_retry(s, n, status, 0);
        return;
    case PP_APNS_REJECT:
        break;
    }
    pp_apns_notif_rejected(s->m, reason, 1);
    uint32_t suppressed = 0;
    if (pp_ratelimit_allow(&s_rl_resp, &suppressed)) {
        char q[120];
        pp_warn("notif_rejected", "status=%d reason=%s ident=%s apns_id=%s msg_id=%s suppressed=%u",
                status, pp_log_quote(reason_raw, strlen(reason_raw), 60, q, sizeof q),
                m->app->ident, n->apns_id, m->msg_id, suppressed);
    }
    s_free(s, &n);
}

static void s_on_drop(void *owner, pp_h2pool_t *pool, pp_apns_notif_t *n, const char *why)
{
    (void)pool;
    pp_apns_sender_t *s = owner;
    if (!strcmp(why, "expired"))
        pp_metric_inc(s->expired);
    else
        pp_apns_notif_rejected(s->m, why, 1);
    pp_debug("notif_dropped", "apns_id=%s why=%s", n->apns_id, why);
    s_free(s, &n);
}

static pp_ratelimit_t s_rl_timeout = PP_RATELIMIT_INIT(10000, 20);

/*  n missed its deadline (see pp_h2pool.h). On a stream it was an attempt (APNs may have
    it), so it counts against retry.max_attempts and expiration 0 ends it; in the queue it
    was never sent. Either way it is retried after a backoff, on whatever connection is
    healthy then, never past its apns-expiration; what is given up is counted, and its job
    acked as usual, so nothing is held for ever. */
static void s_on_timeout(void *owner, pp_h2pool_t *pool, pp_apns_notif_t *n, const char *stage,
                         uint64_t waited_ms)
{
    pp_apns_sender_t *s = owner;
    const pp_apns_msg_t *m = n->msg;
    bool sent = !strcmp(stage, "stream");
    pp_metric_inc(s->timeouts[sent ? 0 : 1]);
    uint32_t suppressed = 0;
    if (pp_ratelimit_allow(&s_rl_timeout, &suppressed))
        pp_warn("request_timeout",
                "pool=%s stage=%s apns_id=%s msg_id=%s waited_ms=%llu timeout_ms=%u attempts=%u "
                "suppressed=%u",
                pp_h2pool_label(pool), stage, n->apns_id, m->msg_id, (unsigned long long)waited_ms,
                s->request_timeout_ms, n->attempts + (sent ? 1 : 0), suppressed);
    if (sent) {
        s_retry(s, n, 0, 0); /* status 0: no answer */
        return;
    }
    uint64_t delay = s_retry_delay(s, 1);
    if (m->expiration > 0 && (pp_wall_us() / 1000 + delay) / 1000 > (uint64_t)m->expiration) {
        pp_metric_inc(s->expired);
        pp_debug("notif_expired", "apns_id=%s msg_id=%s why=queued_past_expiration", n->apns_id,
                 m->msg_id);
        s_free(s, &n);
        return;
    }
    if (pp_retryq_push(s->retryq, pp_mono_ms() + delay, n) != 0) s_free(s, &n);
}

static const pp_h2pool_callbacks_t s_pool_cb = {s_on_response, s_on_drop, s_on_timeout};

/*  The pool of app in env, made on first use (the intake's pool function). */
static pp_h2pool_t *s_pool(void *owner, pp_apns_app_t *app, int env)
{
    pp_apns_sender_t *s = owner;
    if (app->pools[env]) return app->pools[env];
    if (s->n_pools >= S_MAX_POOLS) return NULL;
    pp_h2pool_config_t pc = {app,
                             env,
                             s->hosts[env].host,
                             s->hosts[env].port,
                             app->connections,
                             s->ping_interval_ms,
                             s->timeout_ms,
                             s->request_timeout_ms,
                             S_TIMEOUTS_TO_REPLACE,
                             s->reconnect_min_ms,
                             s->reconnect_max_ms,
                             (uint16_t)s->max_resends,
                             s->sent,
                             s->resent,
                             s->reconnects,
                             s->goaways,
                             s->replaced_timeouts,
                             s->replaced_no_streams};
    app->pools[env] = pp_h2pool_new(&pc, &s_pool_cb, s);
    if (app->pools[env]) s->pools[s->n_pools++] = app->pools[env];
    return app->pools[env];
}

/*  Backpressure towards the broker: at max_pending no more credit, so the hub keeps the
    jobs (or gives them to other senders); credit again once a quarter of max_pending has
    drained and no job waits in the intake (hysteresis: not one grant per notification). */
static void s_backpressure(pp_apns_sender_t *s, bool stopping)
{
    bool full = s->pending >= s->max_pending;
    bool low =
        s->pending <= s->max_pending - s->max_pending / 4 && pp_apns_intake_waiting(s->intake) == 0;
    if (!s->paused && (full || stopping)) {
        s->paused = true;
        pp_linkset_pause(s->link, true);
        if (!stopping) {
            pp_metric_inc(s->pauses);
            pp_debug("link_paused", "pending=%zu held=%u", s->pending, pp_linkset_held(s->link));
        }
    } else if (s->paused && !stopping && low) {
        s->paused = false;
        pp_linkset_pause(s->link, false);
        pp_debug("link_resumed", "pending=%zu held=%u", s->pending, pp_linkset_held(s->link));
    }
}

static void s_keepalive(void *arg)
{
    pp_apns_sender_t *s = arg;
    if (s->link) pp_linkset_tick(s->link);
}

/*  Stops acking (jobs finished after this are left to the broker) and drops the link,
    which the caller owns and destroys: its "B" has the hub send what we did not ack to
    other senders at once. */
static void s_leave_link(pp_apns_sender_t *s)
{
    pp_apns_keepalive_set(NULL, NULL);
    if (s->intake) pp_apns_intake_leave(s->intake);
    s->link = NULL;
}

static void s_update_gauges(pp_apns_sender_t *s)
{
    size_t conns = 0, flight = 0;
    for (size_t i = 0; i < s->n_pools; i++) {
        conns += pp_h2pool_ready_connections(s->pools[i]);
        flight += pp_h2pool_in_flight(s->pools[i]);
    }
    pp_metric_set(s->connections, (int64_t)conns);
    pp_metric_set(s->in_flight, (int64_t)flight);
    pp_metric_set(s->pending_g, (int64_t)s->pending);
}

static void s_ensure_tokens(pp_apns_sender_t *s, int64_t now_s)
{
    for (size_t i = 0; i < pp_apns_apps_cred_count(s->apps); i++)
        pp_jwt_share_ensure(s->jwt, pp_apns_apps_cred_at(s->apps, i), now_s);
}

static void s_due_retries(pp_apns_sender_t *s, uint64_t now)
{
    pp_apns_notif_t *n;
    while ((n = pp_retryq_pop_due(s->retryq, now)) != NULL) {
        pp_h2pool_t *pool = s_pool(s, n->msg->app, n->msg->env);
        if (pool)
            pp_h2pool_push(pool, n);
        else
            s_free(s, &n);
    }
}

static int s_poll_timeout(pp_apns_sender_t *s, uint64_t now, uint64_t drain_deadline, int link_ms)
{
    uint64_t t = now + (uint64_t)link_ms;
    uint64_t r = pp_retryq_next_due(s->retryq);
    if (r < t) t = r;
    for (size_t i = 0; i < s->n_pools; i++) {
        uint64_t x = pp_h2pool_next_timer(s->pools[i]);
        if (x < t) t = x;
    }
    if (drain_deadline && drain_deadline < t) t = drain_deadline;
    if (pp_apns_intake_waiting(s->intake) > 0 && s->pending < s->max_pending)
        t = now; /* jobs left to start */
    return t <= now ? 0 : (int)(t - now);
}

/*  One turn: wait for the link, the connections and the earliest timer, then do what is
    due. Returns 0, or -1 when zmq_poll failed. */
static int s_turn(pp_apns_sender_t *s, uint64_t now)
{
    static zmq_pollitem_t items[S_MAX_POLL];
    s_ensure_tokens(s, s_wall_s());
    /* ZMQ_POLLIN always: the hubs' heartbeats and "W" come here too */
    size_t n = pp_linkset_poll_items(s->link, items, ZMQ_POLLIN);
    size_t offs[S_MAX_POOLS + 1];
    for (size_t i = 0; i < s->n_pools; i++) {
        offs[i] = n;
        n += pp_h2pool_fill_poll(s->pools[i], items + n, S_MAX_POLL - n);
    }
    offs[s->n_pools] = n;
    /* The intake below may add pools (a job for an app or environment not seen yet): only
       those polled have items. */
    size_t polled = s->n_pools;
    int rc = zmq_poll(items, (int)n, s_poll_timeout(s, now, s->drain_deadline, s->link_ms));
    if (rc < 0 && zmq_errno() != EINTR) {
        pp_error("poll_failed", "error=\"%s\"", zmq_strerror(zmq_errno()));
        s->failed = true;
        return -1;
    }
    now = pp_mono_ms();
    /* Read every turn, not only on POLLIN: it costs one EAGAIN and the hub's control
       messages (heartbeats, "W") are handled whatever the poll said. */
    pp_apns_intake_read(s->intake);
    pp_apns_intake_start(s->intake);
    for (size_t i = 0; rc > 0 && i < polled; i++)
        pp_h2pool_on_poll(s->pools[i], items + offs[i], offs[i + 1] - offs[i], now);
    s_due_retries(s, now);
    int64_t wall = s_wall_s();
    for (size_t i = 0; i < s->n_pools; i++)
        pp_h2pool_run(s->pools[i], now, wall);
    pp_token_gc_flush(s->gc);
    s_backpressure(s, s->drain_deadline != 0);
    s->link_ms = pp_linkset_tick(s->link); /* acks of this turn, credit, heartbeat */
    s_update_gauges(s);
    return 0;
}

int pp_apns_sender_run(pp_apns_sender_t *s)
{
    if (pp_apns_apps_count(s->apps) == 0)
        pp_warn("no_apns_credentials",
                "msg=\"no APNs credentials configured\" apps=0 effect=\"notifications are "
                "counted in not_configured_total and dropped\"");
    s->link_ms = pp_linkset_tick(s->link);
    while (!pp_proc_stopping())
        if (s_turn(s, pp_mono_ms()) != 0) return -1;
    return 0;
}

/*  Notifications alive, or jobs read and not started (pp_linkset_drain). */
static bool s_busy(void *ctx)
{
    pp_apns_sender_t *s = ctx;
    return s->pending > 0 || pp_apns_intake_waiting(s->intake) > 0;
}

/*  A turn of the drain: s_turn bounds its wait by s->drain_deadline itself. */
static int s_drain_turn(void *ctx, uint64_t now, uint64_t deadline)
{
    (void)deadline;
    return s_turn(ctx, now);
}

void pp_apns_sender_drain(pp_apns_sender_t *s)
{
    if (!s->link) return;
    if (!s->failed) {
        /* No new credit; jobs already granted still come and are done (or, when the drain
           time runs out, left unacked for the hub to send elsewhere). */
        s->drain_deadline = pp_mono_ms() + s->drain_ms + 1;
        s_backpressure(s, true);
        pp_info("draining", "pending=%zu jobs_held=%u drain_ms=%u", s->pending,
                pp_linkset_held(s->link), s->drain_ms);
        pp_linkset_drain(s->link, s->drain_deadline, s_busy, s_drain_turn, s);
    }
    uint32_t unacked = pp_linkset_held(s->link);
    if (s->pending || unacked) {
        pp_metric_add(s->dropped_on_exit, s->pending);
        pp_warn("drain_incomplete",
                "dropped=%zu jobs_not_acked=%u effect=\"the broker sends "
                "those jobs to another sender\"",
                s->pending, unacked);
    }
    pp_token_gc_flush(s->gc);
    pp_info("drained", "pending=%zu jobs_not_acked=%u", s->pending, unacked);
    s_leave_link(s);
}

void pp_apns_sender_destroy(pp_apns_sender_t **p)
{
    if (!p || !*p) return;
    pp_apns_sender_t *s = *p;
    if (s->link) s_leave_link(s); /* first: what is destroyed below is not acked */
    for (size_t i = 0; i < s->n_pools; i++)
        pp_h2pool_destroy(&s->pools[i]);
    if (s->retryq) {
        pp_apns_notif_t *n;
        while ((n = pp_retryq_pop(s->retryq)) != NULL)
            pp_apns_notif_destroy(&n);
    }
    pp_retryq_destroy(&s->retryq);
    pp_token_gc_destroy(&s->gc);
    pp_jwt_share_destroy(&s->jwt);
    pp_apns_intake_destroy(&s->intake); /* after the pools: their notifications end jobs */
    pp_apns_apps_destroy(&s->apps);
    free(s);
    *p = NULL;
}

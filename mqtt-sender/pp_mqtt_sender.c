#include "pp_mqtt_sender.h"
#include "pp_link.h"
#include "pp_log.h"
#include "pp_proc.h"
#include "pp_pubq.h"

#include <MQTTAsync.h>
#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define S_READ_BATCH 256
#define S_MAX_TOPIC 65535          /* MQTT's string limit */
#define S_PAHO_DOWN_GRACE_MS 10000 /* paho said "disconnected" but no lost event yet */
#define S_SINGLE_FILE_MAX 64       /* after a loss, this many re-queued publishes go one by one */
#define S_SWEEP_MS 250             /* how often publishes in flight are checked for deadline */

typedef struct {
    pp_pub_t pub;
    uint32_t gen; /* bumped at each use, so a late completion of an earlier use is seen */
    bool used;
    uint64_t seq; /* send order, to re-queue in order */
    bool solo;    /* sent alone: nothing else was in flight while it was */
} s_slot_t;

typedef enum { S_IDLE, S_CONNECTING, S_CONNECTED } s_state_t;

enum { F_BAD_TOPIC, F_REJECTED, F_ATTEMPTS, F_DEADLINE, F_SHUTDOWN, F_COUNT };
static const char *const s_fail_reasons[F_COUNT] = {"bad_topic", "rejected", "attempts_exhausted",
                                                    "deadline", "shutdown"};
enum { C_BAD_CREDENTIALS, C_NOT_AUTHORIZED, C_REFUSED, C_UNREACHABLE, C_COUNT };
static const char *const s_conn_reasons[C_COUNT] = {"bad_credentials", "not_authorized", "refused",
                                                    "unreachable"};

struct pp_mqtt_sender_t {
    pp_mqtt_sender_config_t cfg;
    pp_metrics_t *metrics;
    pp_linkset_t *link; /* one link per broker (borrowed); NULL once left: jobs freed after
                           that are not acked */
    bool failed;        /* the loop hit a fatal error: no drain */
    pp_mqtt_conn_t *conn;
    pp_pubq_t *q;

    s_slot_t *slots;
    uint32_t *free_stack;
    size_t n_free;
    uint64_t send_seq;

    s_state_t state;
    bool ever_tried;
    bool paho_down; /* paho refused a publish as disconnected; waiting for its lost event */
    uint64_t paho_down_ms;
    uint64_t connect_started_ms;
    uint64_t next_connect_ms;
    int backoff_ms;
    bool retry_soon; /* paho refused for a moment (no msg id, buffer): try again shortly */
    bool disconnected;
    /* Poison isolation. A publish the MQTT broker answers by dropping the connection takes
       down everything in flight with it. After a loss, the re-queued publishes are sent one
       at a time (single_file of them), so the one that breaks the connection again is alone
       in flight: it becomes a suspect, goes to the back of the buffer and is only ever sent
       alone, while the rest flows at the full window. solo: a publish sent alone is in
       flight, send nothing else. */
    size_t single_file;
    bool solo;
    uint64_t next_sweep_ms;

    char *topic_buf;
    uint64_t publishes_taken; /* topics of all jobs taken: each ends acked or failed */

    pp_metric_t *m_jobs, *m_jobs_acked, *m_published, *m_acked, *m_retried, *m_reconnects, *m_stale;
    pp_metric_t *m_failed[F_COUNT], *m_connfail[C_COUNT];
    pp_metric_t *g_in_flight, *g_buffered, *g_connected;
    pp_ratelimit_t rl_bad_job, rl_bad_topic, rl_connect, rl_link;
};

/* ---- setup ----------------------------------------------------------------------- */

static void s_metrics(pp_mqtt_sender_t *s)
{
    pp_metrics_t *m = s->metrics;
    s->m_jobs = pp_metrics_counter(m, "jobs_total", "MQTT jobs taken from the broker", NULL);
    s->m_jobs_acked = pp_metrics_counter(
        m, "jobs_acked_total",
        "jobs acknowledged to the broker (every publish finished, or the job undecodable)", NULL);
    s->m_published =
        pp_metrics_counter(m, "published_total", "publishes handed to the MQTT client", NULL);
    s->m_acked = pp_metrics_counter(
        m, "acknowledged_total",
        "publishes acknowledged by the MQTT broker (QoS 0: written to the socket)", NULL);
    s->m_retried = pp_metrics_counter(
        m, "retried_total", "publishes queued again after a failure or a lost connection", NULL);
    s->m_reconnects =
        pp_metrics_counter(m, "reconnects_total", "connection attempts after the first one", NULL);
    s->m_stale = pp_metrics_counter(
        m, "stale_completions_total",
        "completions for publishes already re-queued after a lost connection", NULL);
    char labels[64];
    for (int i = 0; i < F_COUNT; i++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", s_fail_reasons[i]);
        s->m_failed[i] =
            pp_metrics_counter(m, "failed_total", "publishes given up, by reason", labels);
    }
    for (int i = 0; i < C_COUNT; i++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", s_conn_reasons[i]);
        s->m_connfail[i] = pp_metrics_counter(m, "connect_failures_total",
                                              "failed MQTT connection attempts", labels);
    }
    s->g_in_flight = pp_metrics_gauge(m, "in_flight", "publishes awaiting completion", NULL);
    s->g_buffered = pp_metrics_gauge(m, "buffered", "publishes waiting to be sent", NULL);
    s->g_connected = pp_metrics_gauge(m, "mqtt_connected", "1 while connected to MQTT", NULL);
}

pp_mqtt_sender_t *pp_mqtt_sender_new(const pp_mqtt_sender_config_t *cfg, pp_metrics_t *metrics,
                                     pp_linkset_t *links, char *err, size_t errlen)
{
    pp_mqtt_sender_t *s = calloc(1, sizeof *s);
    if (!s) abort();
    s->cfg = *cfg;
    s->cfg.mqtt.client_id = s->cfg.client_id; /* the copy's own */
    s->metrics = metrics;
    s->rl_bad_job = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 10);
    s->rl_bad_topic = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 10);
    s->rl_connect = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 5);
    s->rl_link = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 5);
    s->backoff_ms = cfg->reconnect_min_ms;
    s_metrics(s);

    s->slots = calloc((size_t)cfg->window, sizeof *s->slots);
    s->free_stack = calloc((size_t)cfg->window, sizeof *s->free_stack);
    s->topic_buf = malloc(S_MAX_TOPIC + 1);
    if (!s->slots || !s->free_stack || !s->topic_buf) abort();
    for (int i = cfg->window - 1; i >= 0; i--)
        s->free_stack[s->n_free++] = (uint32_t)i;
    s->q = pp_pubq_new(cfg->buffer_max);

    s->conn = pp_mqtt_conn_new(&s->cfg.mqtt, err, errlen);
    if (!s->conn) {
        pp_mqtt_sender_destroy(&s);
        return NULL;
    }
    s->link = links;
    return s;
}

void pp_mqtt_sender_destroy(pp_mqtt_sender_t **p)
{
    if (!p || !*p) return;
    pp_mqtt_sender_t *s = *p;
    /* First, so that the jobs still held are not acked as they are freed below (the caller
       destroys the links: "B" tells the hubs to send them to another sender now). */
    s->link = NULL;
    pp_mqtt_conn_destroy(&s->conn);
    for (int i = 0; s->slots && i < s->cfg.window; i++)
        if (s->slots[i].used) pp_pub_release(&s->slots[i].pub);
    pp_pubq_destroy(&s->q);
    free(s->slots);
    free(s->free_stack);
    free(s->topic_buf);
    free(s);
    *p = NULL;
}

/* ---- helpers ----------------------------------------------------------------------- */

static size_t s_in_flight(const pp_mqtt_sender_t *s)
{
    return (size_t)s->cfg.window - s->n_free;
}

static void s_msg_id(const pp_pub_t *pub, char *out, size_t outlen)
{
    pp_str_t id = pp_pubjob_job(pub->job)->msg_id;
    pp_log_quote(id.ptr, id.len, 64, out, outlen);
}

static void s_fail(pp_mqtt_sender_t *s, pp_pub_t *pub, int reason, const char *detail)
{
    pp_metric_inc(s->m_failed[reason]);
    char id[160], topic[160];
    s_msg_id(pub, id, sizeof id);
    pp_str_t t = pp_pub_topic(pub);
    pp_log_quote(t.ptr, t.len, 100, topic, sizeof topic);
    uint32_t suppressed = 0;
    if (reason == F_ATTEMPTS || reason == F_DEADLINE) {
        /* Given up on purpose, within the limits configured: its job is acked when the
           release below drops the last reference, so it is not stranded. */
        uint64_t age = pub->first_ms ? pp_mono_ms() - pub->first_ms : 0;
        pp_warn("publish_failed",
                "job=%s topic=%s reason=%s attempts=%u age_ms=%llu suspect=%d detail=\"%s\"", id,
                topic, s_fail_reasons[reason], pub->attempts, (unsigned long long)age,
                (int)pub->suspect, detail);
    } else if (reason != F_BAD_TOPIC || pp_ratelimit_allow(&s->rl_bad_topic, &suppressed))
        pp_error("publish_failed", "msg_id=%s topic=%s reason=%s detail=\"%s\" suppressed=%u", id,
                 topic, s_fail_reasons[reason], detail, suppressed);
    pp_pub_release(pub);
}

/* Topic names for PUBLISH: 1..65535 bytes, no NUL, no wildcards (paho checks UTF-8). */
static bool s_topic_ok(pp_str_t t)
{
    if (t.len == 0 || t.len > S_MAX_TOPIC) return false;
    for (size_t i = 0; i < t.len; i++) {
        char c = t.ptr[i];
        if (c == '\0' || c == '+' || c == '#') return false;
    }
    return true;
}

static void s_schedule_connect(pp_mqtt_sender_t *s, uint64_t now)
{
    /* +-20% jitter, so that several senders do not reconnect in step. */
    int span = s->backoff_ms / 5;
    int jitter = span > 0 ? (int)(random() % (2 * span + 1)) - span : 0;
    s->next_connect_ms = now + (uint64_t)(s->backoff_ms + jitter);
    s->backoff_ms =
        s->backoff_ms * 2 > s->cfg.reconnect_max_ms ? s->cfg.reconnect_max_ms : s->backoff_ms * 2;
    s->state = S_IDLE;
    pp_metric_set(s->g_connected, 0);
}

/* Every publish in flight goes back to the head of the buffer, oldest first. */
static int s_cmp_seq_desc(const void *a, const void *b)
{
    const s_slot_t *x = *(s_slot_t *const *)a, *y = *(s_slot_t *const *)b;
    return x->seq < y->seq ? 1 : x->seq > y->seq ? -1 : 0;
}

static void s_free_slot(pp_mqtt_sender_t *s, s_slot_t *slot)
{
    slot->used = false;
    s->free_stack[s->n_free++] = (uint32_t)(slot - s->slots);
}

/* The reason a publish that has been tried must be given up now, or -1. attempts counts
   every hand-over to the MQTT client, so a publish is sent at most max_attempts times. */
static int s_spent(const pp_mqtt_sender_t *s, const pp_pub_t *pub, uint64_t now)
{
    if (pub->attempts >= (uint32_t)s->cfg.max_attempts) return F_ATTEMPTS;
    if (pub->first_ms && now - pub->first_ms >= (uint64_t)s->cfg.publish_timeout_ms)
        return F_DEADLINE;
    return -1;
}

/* Takes the publish out of its slot (a late completion for it is then stale). */
static pp_pub_t s_take_slot(pp_mqtt_sender_t *s, s_slot_t *slot, bool *solo)
{
    pp_pub_t pub = slot->pub;
    memset(&slot->pub, 0, sizeof slot->pub);
    *solo = slot->solo;
    if (slot->solo) s->solo = false;
    slot->solo = false;
    s_free_slot(s, slot);
    return pub;
}

/* A publish that did not complete (paho failed it, or the connection went): given up if it
   is out of attempts or time, else re-queued. One that was alone in flight is the likely
   cause of the loss: a suspect, sent after the waiting work and only alone. Any other goes
   back to the head, and the next sends go one at a time until the culprit is found.
   Returns true if re-queued. */
static bool s_retry(pp_mqtt_sender_t *s, pp_pub_t *pub, bool solo, uint64_t now, const char *detail)
{
    int why = s_spent(s, pub, now);
    if (why >= 0) {
        s_fail(s, pub, why, detail);
        return false;
    }
    pp_metric_inc(s->m_retried);
    if (solo) {
        pub->suspect = true;
        pp_pubq_push_back(s->q, pub);
    } else {
        pp_pubq_push_front(s->q, pub);
        if (s->single_file < S_SINGLE_FILE_MAX) s->single_file++;
    }
    return true;
}

static size_t s_requeue_in_flight(pp_mqtt_sender_t *s)
{
    size_t n = 0, requeued = 0;
    uint64_t now = pp_mono_ms();
    s_slot_t **used = malloc((size_t)s->cfg.window * sizeof *used);
    if (!used) abort();
    for (int i = 0; i < s->cfg.window; i++)
        if (s->slots[i].used) used[n++] = &s->slots[i];
    qsort(used, n, sizeof *used, s_cmp_seq_desc);
    for (size_t i = 0; i < n; i++) {
        bool solo = false;
        pp_pub_t pub = s_take_slot(s, used[i], &solo);
        requeued += s_retry(s, &pub, solo, now, "connection lost");
    }
    free(used);
    return requeued;
}

/* Publishes in flight past their deadline (an MQTT broker that never acknowledges) are
   given up where they stand; paho's late completion for one is then stale. */
static void s_sweep_in_flight(pp_mqtt_sender_t *s, uint64_t now)
{
    if (now < s->next_sweep_ms || s_in_flight(s) == 0) return;
    s->next_sweep_ms = now + S_SWEEP_MS;
    for (int i = 0; i < s->cfg.window; i++) {
        s_slot_t *slot = &s->slots[i];
        if (!slot->used || !slot->pub.first_ms ||
            now - slot->pub.first_ms < (uint64_t)s->cfg.publish_timeout_ms)
            continue;
        bool solo = false;
        pp_pub_t pub = s_take_slot(s, slot, &solo);
        s_fail(s, &pub, F_DEADLINE, "not acknowledged in time");
    }
}

/* ---- MQTT side ------------------------------------------------------------------- */

static void s_connect(pp_mqtt_sender_t *s, uint64_t now)
{
    if (s->ever_tried) pp_metric_inc(s->m_reconnects);
    s->ever_tried = true;
    int rc = pp_mqtt_conn_connect(s->conn);
    if (rc != MQTTASYNC_SUCCESS) {
        pp_error("mqtt_connect_failed", "uri=%s code=%d error=\"%s\"", s->cfg.mqtt.uri, rc,
                 pp_mqtt_conn_strerror(rc));
        pp_metric_inc(s->m_connfail[C_UNREACHABLE]);
        s_schedule_connect(s, now);
        return;
    }
    s->state = S_CONNECTING;
    s->connect_started_ms = now;
    pp_debug("mqtt_connecting", "uri=%s", s->cfg.mqtt.uri);
}

static void s_publish_some(pp_mqtt_sender_t *s)
{
    s->retry_soon = false;
    if (s->state != S_CONNECTED || s->paho_down) return;
    uint64_t now = pp_mono_ms();
    while (s->n_free > 0 && !s->solo) {
        pp_pub_t pub;
        if (!pp_pubq_pop(s->q, &pub)) break;
        int why = pub.attempts > 0 ? s_spent(s, &pub, now) : -1;
        if (why >= 0) {
            s_fail(s, &pub, why, "waited in the buffer");
            continue;
        }
        /* Alone: wait until what is in flight has ended, then send nothing else with it. */
        bool alone = pub.suspect || s->single_file > 0;
        if (alone && s_in_flight(s) > 0) {
            pp_pubq_push_front(s->q, &pub);
            break;
        }
        pp_str_t topic = pp_pub_topic(&pub);
        if (!s_topic_ok(topic)) {
            s_fail(s, &pub, F_BAD_TOPIC, "empty, too long, NUL or wildcard");
            continue;
        }
        memcpy(s->topic_buf, topic.ptr, topic.len);
        s->topic_buf[topic.len] = '\0';
        pp_str_t payload = pp_pub_payload(&pub);
        int qos = pp_pub_qos(&pub, s->cfg.qos);

        uint32_t idx = s->free_stack[s->n_free - 1];
        s_slot_t *slot = &s->slots[idx];
        uint32_t gen = slot->gen + 1;
        uint64_t ticket = ((uint64_t)gen << 24) | idx;
        int rc = pp_mqtt_conn_publish(s->conn, s->topic_buf, payload.ptr, payload.len, qos, ticket);
        if (rc == MQTTASYNC_SUCCESS) {
            s->n_free--;
            slot->gen = gen;
            slot->used = true;
            slot->seq = ++s->send_seq;
            slot->solo = alone;
            pub.attempts++;
            if (!pub.first_ms) pub.first_ms = now ? now : 1;
            slot->pub = pub;
            pp_metric_inc(s->m_published);
            if (alone) {
                s->solo = true;
                if (!pub.suspect && s->single_file > 0) s->single_file--;
            }
            continue;
        }
        switch (rc) {
        case MQTTASYNC_DISCONNECTED:
            /* paho saw the connection go before we did; its lost event follows. */
            pp_pubq_push_front(s->q, &pub);
            s->paho_down = true;
            s->paho_down_ms = pp_mono_ms();
            return;
        case MQTTASYNC_NO_MORE_MSGIDS:
        case MQTTASYNC_MAX_BUFFERED_MESSAGES:
            pp_pubq_push_front(s->q, &pub);
            s->retry_soon = true;
            return;
        case MQTTASYNC_BAD_UTF8_STRING:
            s_fail(s, &pub, F_BAD_TOPIC, "not UTF-8");
            break;
        default:
            s_fail(s, &pub, F_REJECTED, pp_mqtt_conn_strerror(rc));
            break;
        }
    }
}

static s_slot_t *s_slot_for(pp_mqtt_sender_t *s, uint64_t ticket)
{
    uint64_t idx = ticket & 0xffffff;
    uint32_t gen = (uint32_t)(ticket >> 24);
    if (idx >= (uint64_t)s->cfg.window) return NULL;
    s_slot_t *slot = &s->slots[idx];
    return slot->used && slot->gen == gen ? slot : NULL;
}

static int s_connfail_reason(int code)
{
    switch (code) {
    case 4:
        return C_BAD_CREDENTIALS;
    case 5:
        return C_NOT_AUTHORIZED;
    case 1:
    case 2:
    case 3:
        return C_REFUSED;
    default:
        return C_UNREACHABLE;
    }
}

static void s_on_event(pp_mqtt_sender_t *s, const pp_mqtt_ev_t *ev, uint64_t now)
{
    char text[200];
    switch (ev->type) {
    case PP_MQTT_EV_PUB_OK: {
        s_slot_t *slot = s_slot_for(s, ev->ticket);
        if (!slot) {
            pp_metric_inc(s->m_stale);
            return;
        }
        pp_metric_inc(s->m_acked);
        bool solo = false;
        pp_pub_t pub = s_take_slot(s, slot, &solo);
        pp_pub_release(&pub);
        return;
    }
    case PP_MQTT_EV_PUB_FAILED: {
        s_slot_t *slot = s_slot_for(s, ev->ticket);
        if (!slot) {
            pp_metric_inc(s->m_stale);
            return;
        }
        bool solo = false;
        pp_pub_t pub = s_take_slot(s, slot, &solo);
        s_retry(s, &pub, solo, now, pp_mqtt_conn_strerror(ev->code));
        return;
    }
    case PP_MQTT_EV_CONNECTED:
        s->state = S_CONNECTED;
        s->paho_down = false;
        s->backoff_ms = s->cfg.reconnect_min_ms;
        pp_metric_set(s->g_connected, 1);
        pp_info("mqtt_connected", "uri=%s client_id=%s buffered=%zu", s->cfg.mqtt.uri,
                s->cfg.mqtt.client_id, pp_pubq_len(s->q));
        return;
    case PP_MQTT_EV_CONNECT_FAILED: {
        int reason = s_connfail_reason(ev->code);
        pp_metric_inc(s->m_connfail[reason]);
        s_schedule_connect(s, now);
        uint32_t suppressed = 0;
        if (pp_ratelimit_allow(&s->rl_connect, &suppressed)) {
            pp_log_quote(ev->text, strlen(ev->text), 90, text, sizeof text);
            pp_warn("mqtt_connect_failed",
                    "uri=%s reason=%s code=%d error=\"%s\" detail=%s retry_in_ms=%llu "
                    "suppressed=%u",
                    s->cfg.mqtt.uri, s_conn_reasons[reason], ev->code,
                    pp_mqtt_conn_strerror(ev->code), text,
                    (unsigned long long)(s->next_connect_ms - now), suppressed);
        }
        return;
    }
    case PP_MQTT_EV_LOST: {
        if (s->state != S_CONNECTED) return;
        size_t n = s_requeue_in_flight(s);
        s->paho_down = false;
        s_schedule_connect(s, now);
        pp_log_quote(ev->text, strlen(ev->text), 90, text, sizeof text);
        pp_warn("mqtt_connection_lost", "uri=%s cause=%s requeued=%zu buffered=%zu",
                s->cfg.mqtt.uri, text, n, pp_pubq_len(s->q));
        return;
    }
    case PP_MQTT_EV_DISCONNECTED:
        s->disconnected = true;
        return;
    }
}

static void s_take_events(pp_mqtt_sender_t *s)
{
    const pp_mqtt_ev_t *evs;
    size_t n = pp_mqtt_conn_take(s->conn, &evs);
    uint64_t now = pp_mono_ms();
    for (size_t i = 0; i < n; i++)
        s_on_event(s, &evs[i], now);
}

/* Watchdogs for callbacks that never come: a connect paho never concludes, or a
   connection paho reports down (to publishes) without a lost event. */
static void s_watchdogs(pp_mqtt_sender_t *s, uint64_t now)
{
    uint64_t connect_limit = (uint64_t)s->cfg.mqtt.connect_timeout_s * 1000 + 5000;
    if (s->state == S_CONNECTING && now - s->connect_started_ms > connect_limit) {
        pp_warn("mqtt_connect_timeout", "uri=%s", s->cfg.mqtt.uri);
        pp_metric_inc(s->m_connfail[C_UNREACHABLE]);
        s_schedule_connect(s, now);
    }
    if (s->state == S_CONNECTED && s->paho_down && now - s->paho_down_ms > S_PAHO_DOWN_GRACE_MS) {
        size_t n = s_requeue_in_flight(s);
        s->paho_down = false;
        pp_warn("mqtt_connection_lost", "uri=%s cause=no_lost_event requeued=%zu", s->cfg.mqtt.uri,
                n);
        s_schedule_connect(s, now);
    }
}

/* ---- ZMQ side -------------------------------------------------------------------- */

static void s_bad_job(pp_mqtt_sender_t *s, const char *why, size_t size)
{
    char labels[96];
    snprintf(labels, sizeof labels, "reason=\"%s\"", why);
    pp_metric_inc(
        pp_metrics_counter(s->metrics, "bad_job_total", "jobs that could not be decoded", labels));
    uint32_t suppressed = 0;
    if (pp_ratelimit_allow(&s->rl_bad_job, &suppressed))
        pp_warn("bad_job", "reason=%s bytes=%zu suppressed=%u", why, size, suppressed);
}

/* The last publish of a job finished (acknowledged by MQTT, written for QoS 0, or failed
   for good): the job is done, so the hub may forget it. After the link is closed (shutdown)
   the jobs still held are freed unfinished and must not be acked. */
static void s_job_done(void *ctx, uint64_t seq)
{
    pp_mqtt_sender_t *s = ctx;
    if (!s->link) return;
    pp_linkset_ack(s->link, seq);
    pp_metric_inc(s->m_jobs_acked);
}

/* Takes every job the hub sent (bounded per call so MQTT events are not starved). Credit
   bounds what arrives, so this reads even when the buffer is full: pausing the link is
   what stops the flow (a job held in the socket would be held from other senders too). */
static void s_read_jobs(pp_mqtt_sender_t *s)
{
    for (int i = 0; i < S_READ_BATCH; i++) {
        uint64_t seq = 0;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        int rc = pp_linkset_recv(s->link, &seq, &msg);
        if (rc <= 0) {
            zmq_msg_close(&msg);
            int e = errno;
            uint32_t suppressed = 0;
            if (rc < 0 && e != EINTR && pp_ratelimit_allow(&s->rl_link, &suppressed))
                pp_error("link_recv_failed", "error=\"%s\" suppressed=%u", zmq_strerror(e),
                         suppressed);
            return;
        }
        size_t size = zmq_msg_size(&msg);
        /* A job that cannot be decoded here cannot be decoded by another sender either:
           counted and acked at once, not redone. */
        if (size > s->cfg.max_job_bytes) {
            zmq_msg_close(&msg);
            s_bad_job(s, "too_large", size);
            s_job_done(s, seq);
            continue;
        }
        const char *why = "bad_job";
        pp_pubjob_t *job = pp_pubjob_new(&msg, &why);
        zmq_msg_close(&msg);
        if (!job) {
            s_bad_job(s, why ? why : "bad_job", size);
            s_job_done(s, seq);
            continue;
        }
        pp_metric_inc(s->m_jobs);
        pp_pubjob_on_done(job, s_job_done, s, seq);
        s->publishes_taken += pp_pubjob_job(job)->n_topics;
        pp_pubq_push_job(s->q, job);
    }
}

/* Backpressure: no new credit while the buffer is full or when stopping. Credit already
   granted may still bring up to a window of jobs, which the buffer takes (overshoot). */
static void s_update_pause(pp_mqtt_sender_t *s, bool draining)
{
    pp_linkset_pause(s->link, draining || pp_pubq_full(s->q));
}

/* ---- the loop -------------------------------------------------------------------- */

/* While the window is full and work is waiting, wake once per batch of completions (an
   eighth of the window): fewer wake-ups and fuller refills. Otherwise wake at each event. */
static size_t s_wake_batch(const pp_mqtt_sender_t *s)
{
    size_t batch = (size_t)s->cfg.window / 8;
    if (batch > 1 && s->state == S_CONNECTED && !s->paho_down && pp_pubq_len(s->q) > 0 &&
        s->n_free < batch)
        return batch;
    return 1;
}

static long s_timeout(pp_mqtt_sender_t *s, uint64_t now, bool draining, uint64_t deadline,
                      size_t wake)
{
    long t = 1000;
    if (s->retry_soon || wake > 1)
        t = 5; /* a batch that does not fill up (a stalled connection) still gets seen */
    if (s->state == S_IDLE) t = s->next_connect_ms > now ? (long)(s->next_connect_ms - now) : 0;
    if (draining && deadline > now && (long)(deadline - now) < t) t = (long)(deadline - now);
    return t > 1000 ? 1000 : t;
}

static void s_update_gauges(pp_mqtt_sender_t *s)
{
    pp_metric_set(s->g_in_flight, (int64_t)s_in_flight(s));
    pp_metric_set(s->g_buffered, (int64_t)pp_pubq_len(s->q));
}

static void s_disconnect(pp_mqtt_sender_t *s)
{
    if (s->state != S_CONNECTED) return;
    if (pp_mqtt_conn_disconnect(s->conn, 1000) != MQTTASYNC_SUCCESS) return;
    uint64_t until = pp_mono_ms() + 2000;
    zmq_pollitem_t item = {NULL, pp_mqtt_conn_fd(s->conn), ZMQ_POLLIN, 0};
    while (!s->disconnected && pp_mono_ms() < until) {
        zmq_poll(&item, 1, 100);
        s_take_events(s);
    }
    pp_metric_set(s->g_connected, 0);
}

/*  One turn of the loop: connect when due, publish, tick the link, wait for MQTT events
    and jobs. Returns 0, or -1 when zmq_poll failed. */
static int s_turn(pp_mqtt_sender_t *s, uint64_t now, bool draining, uint64_t deadline)
{
    if (s->state == S_IDLE && now >= s->next_connect_ms) s_connect(s, now);
    s_watchdogs(s, now);
    s_sweep_in_flight(s, now);
    s_publish_some(s);
    s_update_gauges(s);
    s_update_pause(s, draining);
    /* Acks, credit and heartbeats go out here, every turn: even while MQTT is down or
       the buffer is full, or the hub would declare this sender dead. */
    long link_ms = pp_linkset_tick(s->link);

    zmq_pollitem_t items[1 + PP_LINKSET_MAX] = {{NULL, pp_mqtt_conn_fd(s->conn), ZMQ_POLLIN, 0}};
    int n_items = 1 + (int)pp_linkset_poll_items(s->link, items + 1, ZMQ_POLLIN);
    size_t wake = s_wake_batch(s);
    pp_mqtt_conn_set_wake(s->conn, wake);
    long t = s_timeout(s, now, draining, deadline, wake);
    int rc = zmq_poll(items, n_items, t < link_ms ? t : link_ms);
    if (rc < 0 && errno != EINTR) {
        pp_error("poll_failed", "error=\"%s\"", zmq_strerror(errno));
        s->failed = true;
        return -1;
    }
    if (rc < 0) return 0;
    if (rc == 0 || (items[0].revents & ZMQ_POLLIN)) s_take_events(s);
    bool jobs = false;
    for (int i = 1; i < n_items; i++)
        jobs = jobs || (items[i].revents & ZMQ_POLLIN);
    if (jobs) s_read_jobs(s);
    return 0;
}

int pp_mqtt_sender_run(pp_mqtt_sender_t *s)
{
    s->next_connect_ms = pp_mono_ms();
    while (!pp_proc_stopping())
        if (s_turn(s, pp_mono_ms(), false, 0) != 0) return -1;
    return 0;
}

/*  Publishes buffered or in flight (pp_linkset_drain). */
static bool s_busy(void *ctx)
{
    pp_mqtt_sender_t *s = ctx;
    return pp_pubq_len(s->q) > 0 || s_in_flight(s) > 0;
}

static int s_drain_turn(void *ctx, uint64_t now, uint64_t deadline)
{
    return s_turn(ctx, now, true, deadline);
}

void pp_mqtt_sender_drain(pp_mqtt_sender_t *s)
{
    if (!s->link) return;
    if (!s->failed) {
        /* No more credit; jobs already granted still arrive and are done. What is not
           finished by the deadline is not acked: pp_linkset_destroy's "B" has the hub
           send it to another sender at once. */
        uint64_t deadline = pp_mono_ms() + (uint64_t)s->cfg.drain_ms;
        pp_info("draining", "buffered=%zu in_flight=%zu jobs_held=%u drain_ms=%d",
                pp_pubq_len(s->q), s_in_flight(s), pp_linkset_held(s->link), s->cfg.drain_ms);
        pp_linkset_drain(s->link, deadline, s_busy, s_drain_turn, s);
    }

    s_take_events(s);
    size_t left = pp_pubq_len(s->q) + s_in_flight(s);
    if (left > 0) {
        pp_metric_add(s->m_failed[F_SHUTDOWN], left);
        pp_error("drain_incomplete",
                 "undelivered=%zu buffered=%zu in_flight=%zu jobs_returned_to_hub=%u", left,
                 pp_pubq_len(s->q), s_in_flight(s), pp_linkset_held(s->link));
    }
    s_disconnect(s);
    s_update_gauges(s);
    int64_t failed = 0;
    for (int i = 0; i < F_COUNT; i++)
        failed += pp_metric_get(s->m_failed[i]);
    pp_linkset_tick(s->link); /* acks of what finished during the disconnect */
    pp_info("drained",
            "jobs=%lld jobs_acked=%lld publishes_taken=%llu published=%lld acknowledged=%lld "
            "failed=%lld undelivered=%zu",
            (long long)pp_metric_get(s->m_jobs), (long long)pp_metric_get(s->m_jobs_acked),
            (unsigned long long)s->publishes_taken, (long long)pp_metric_get(s->m_published),
            (long long)pp_metric_get(s->m_acked), (long long)failed, left);
    s->link = NULL; /* left: nothing is acked after this */
}

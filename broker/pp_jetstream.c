/*  pp_jetstream: see pp_jetstream.h. Everything durable is JetStream's (Raft replication,
    publish acks, Nats-Msg-Id de-duplication, redelivery of unacknowledged messages);
    this file only moves events between NATS's threads and the broker's loop. */
#include "pp_jetstream.h"
#include "pp_log.h"
#include "pp_proc.h"

#include <errno.h>
#include <inttypes.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define S_SEQ_HEADER "Pp-Seq"

struct pp_js_msg_t {
    natsMsg *nm;
};

typedef struct {
    uint64_t seq;
    uint64_t token;
    uint64_t sent_ms;
    bool live;
} s_pub_t;

struct pp_jetstream_t {
    pp_jetstream_cfg_t cfg;
    natsOptions *opts;
    natsConnection *nc;
    jsCtx *js;
    natsSubscription *sub;
    pthread_t fetcher;
    bool fetcher_started;
    atomic_bool running, fetching;
    atomic_size_t buffered; /* PP_JS_MSG events queued, not taken */

    pthread_mutex_t lock; /* guards q */
    pp_js_event_t *q;
    size_t q_head, q_len, q_cap;
    int efd;

    /* owner's thread only: the publish window, indexed by seq % cap */
    s_pub_t *ring;
    size_t ring_cap;
    uint64_t next_seq, oldest_seq;
    size_t live;

    pp_metric_t *published, *publish_failed, *duplicates, *fetched, *acked, *naked;
    pp_metric_t *fetch_errors, *connected;
    pp_ratelimit_t rl;
};

void pp_jetstream_cfg_default(pp_jetstream_cfg_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->servers[0] = "nats://127.0.0.1:4222";
    cfg->n_servers = 1;
    cfg->stream = "PUSHPIPE";
    cfg->subject = "pushpipe.accepted";
    cfg->durable = "pushpipe-brokers";
    cfg->replicas = 1;
    cfg->ack_wait_ms = 30000;
    cfg->dedup_window_ms = 120000;
    cfg->max_pending = 1024; /* batches: up to 1024 x batch_max frames awaiting their ack */
    cfg->publish_timeout_ms = 10000;
    cfg->fetch_batch = 256;
    cfg->max_buffered = 2048;
    cfg->max_ack_pending = 200000;
    cfg->connect_timeout_ms = 2000;
    cfg->batch_max = 256;
    cfg->batch_bytes = 256 * 1024;
}

/* ---------------------------------------------------------------- event queue */

static void s_wake(pp_jetstream_t *js)
{
    uint64_t one = 1;
    ssize_t n = write(js->efd, &one, sizeof one);
    (void)n; /* EAGAIN: the counter is already non-zero, the owner will wake anyway */
}

/*  Appends ev (any thread). Grows the queue; on allocation failure the event is dropped:
    a lost PUBACK turns into a publish timeout, a lost MSG is redelivered by JetStream. */
static void s_push(pp_jetstream_t *js, const pp_js_event_t *ev)
{
    pthread_mutex_lock(&js->lock);
    if (js->q_len == js->q_cap) {
        size_t ncap = js->q_cap ? js->q_cap * 2 : 1024;
        pp_js_event_t *n = malloc(ncap * sizeof *n);
        if (!n) {
            pthread_mutex_unlock(&js->lock);
            if (ev->kind == PP_JS_MSG) {
                natsMsg_Destroy(ev->msg->nm);
                free(ev->msg);
            }
            return;
        }
        for (size_t i = 0; i < js->q_len; i++)
            n[i] = js->q[(js->q_head + i) % js->q_cap];
        free(js->q);
        js->q = n;
        js->q_cap = ncap;
        js->q_head = 0;
    }
    js->q[(js->q_head + js->q_len) % js->q_cap] = *ev;
    bool was_empty = js->q_len++ == 0;
    pthread_mutex_unlock(&js->lock);
    if (was_empty) s_wake(js); /* the owner drains the queue to empty before it waits */
}

static bool s_pop(pp_jetstream_t *js, pp_js_event_t *ev)
{
    pthread_mutex_lock(&js->lock);
    bool got = js->q_len > 0;
    if (got) {
        *ev = js->q[js->q_head];
        js->q_head = (js->q_head + 1) % js->q_cap;
        js->q_len--;
    }
    pthread_mutex_unlock(&js->lock);
    return got;
}

/* ---------------------------------------------------------------- NATS's threads */

static void s_on_puback(jsCtx *jctx, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)jctx;
    pp_jetstream_t *js = closure;
    const char *seqtext = NULL;
    uint64_t seq = 0;
    bool have_seq = natsMsgHeader_Get(msg, S_SEQ_HEADER, &seqtext) == NATS_OK && seqtext;
    if (have_seq) seq = strtoull(seqtext, NULL, 10);
    /* With an ack handler set, the published message is ours to destroy (nats.c js.c
       _handleAsyncReply); before this every stored batch leaked. */
    natsMsg_Destroy(msg);
    if (!have_seq) return;
    pp_js_event_t ev = {.kind = PP_JS_PUBACK, .token = seq};
    if (pae) {
        snprintf(ev.error, sizeof ev.error, "%s%s%s", natsStatus_GetText(pae->Err),
                 pae->ErrText ? ": " : "", pae->ErrText ? pae->ErrText : "");
    } else {
        ev.ok = true;
        ev.duplicate = pa && pa->Duplicate;
    }
    s_push(js, &ev); /* .token holds the seq until pp_jetstream_next maps it */
}

static void s_on_disconnected(natsConnection *nc, void *closure)
{
    (void)nc;
    pp_jetstream_t *js = closure;
    pp_metric_set(js->connected, 0);
    pp_warn("nats_disconnected", "servers=%zu", js->cfg.n_servers);
}

static void s_on_reconnected(natsConnection *nc, void *closure)
{
    pp_jetstream_t *js = closure;
    char url[256] = "";
    natsConnection_GetConnectedUrl(nc, url, sizeof url);
    pp_metric_set(js->connected, 1);
    pp_info("nats_reconnected", "url=%s", url);
}

static uint64_t s_deliveries(natsMsg *nm)
{
    jsMsgMetaData *meta = NULL;
    uint64_t n = 1;
    if (natsMsg_GetMetaData(&meta, nm) == NATS_OK && meta) {
        n = meta->NumDelivered;
        jsMsgMetaData_Destroy(meta);
    }
    return n;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void s_take_batch(pp_jetstream_t *js, natsMsgList *list)
{
    for (int i = 0; i < list->Count; i++) {
        pp_js_msg_t *m = malloc(sizeof *m);
        if (!m) continue; /* left in the list: destroyed unacknowledged, redelivered */
        m->nm = list->Msgs[i];
        list->Msgs[i] = NULL;
        pp_js_event_t ev = {.kind = PP_JS_MSG,
                            .msg = m,
                            .data = natsMsg_GetData(m->nm),
                            .len = (size_t)natsMsg_GetDataLength(m->nm),
                            .deliveries = s_deliveries(m->nm)};
        atomic_fetch_add(&js->buffered, 1);
        s_push(js, &ev);
    }
    pp_metric_add(js->fetched, (uint64_t)list->Count);
}

/*  The fetch thread: pulls while the owner wants more and has room. A fetch waits at
    most 200 ms, so that a stop or a pause is seen quickly. */
static void *s_fetch_loop(void *arg)
{
    pp_jetstream_t *js = arg;
    while (atomic_load(&js->running)) {
        size_t room = (size_t)js->cfg.max_buffered > atomic_load(&js->buffered)
                          ? (size_t)js->cfg.max_buffered - atomic_load(&js->buffered)
                          : 0;
        if (!atomic_load(&js->fetching) || room == 0) {
            s_sleep_ms(2);
            continue;
        }
        int batch = (size_t)js->cfg.fetch_batch < room ? js->cfg.fetch_batch : (int)room;
        natsMsgList list = {0};
        jsErrCode jerr = 0;
        natsStatus s = natsSubscription_Fetch(&list, js->sub, batch, 200, &jerr);
        if (s == NATS_OK) {
            s_take_batch(js, &list);
        } else if (s != NATS_TIMEOUT) {
            pp_metric_inc(js->fetch_errors);
            uint32_t suppressed;
            if (pp_ratelimit_allow(&js->rl, &suppressed))
                pp_warn("js_fetch_failed", "error=\"%s\" code=%d suppressed=%u",
                        natsStatus_GetText(s), (int)jerr, suppressed);
            s_sleep_ms(100);
        }
        natsMsgList_Destroy(&list);
    }
    return NULL;
}

/* ---------------------------------------------------------------- set-up */

static int s_fail(char *err, size_t errlen, const char *what, natsStatus s, jsErrCode jerr)
{
    const char *last = nats_GetLastError(NULL);
    snprintf(err, errlen, "%s: %s (jetstream code %d)%s%s", what, natsStatus_GetText(s), (int)jerr,
             last ? ": " : "", last ? last : "");
    return -1;
}

static int s_connect(pp_jetstream_t *js, char *err, size_t errlen)
{
    natsStatus s = natsOptions_Create(&js->opts);
    if (s == NATS_OK) s = natsOptions_SetServers(js->opts, js->cfg.servers, (int)js->cfg.n_servers);
    if (s == NATS_OK) s = natsOptions_SetTimeout(js->opts, js->cfg.connect_timeout_ms);
    if (s == NATS_OK) s = natsOptions_SetMaxReconnect(js->opts, -1); /* forever */
    if (s == NATS_OK) s = natsOptions_SetReconnectWait(js->opts, 100);
    if (s == NATS_OK) s = natsOptions_SetName(js->opts, "pushpipe-broker");
    if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(js->opts, s_on_disconnected, js);
    if (s == NATS_OK) s = natsOptions_SetReconnectedCB(js->opts, s_on_reconnected, js);
    if (s != NATS_OK) return s_fail(err, errlen, "nats options", s, 0);
    /* A few tries: a connect can fail on a transient error (a poll interrupted by a
       signal shows as an I/O error), and a server being started next to us may not listen
       yet. Unreachable after three connect timeouts: the caller gives up (exit 1). */
    uint64_t until = pp_mono_ms() + 3 * (uint64_t)js->cfg.connect_timeout_ms;
    for (int attempt = 1;; attempt++) {
        s = natsConnection_Connect(&js->nc, js->opts);
        if (s == NATS_OK) break;
        if (pp_mono_ms() >= until) return s_fail(err, errlen, "cannot connect to NATS", s, 0);
        pp_warn("nats_connect_retry", "attempt=%d error=\"%s\"", attempt, natsStatus_GetText(s));
        s_sleep_ms(200);
    }
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.Wait = js->cfg.connect_timeout_ms;
    jo.PublishAsync.MaxPending = js->cfg.max_pending + 64;
    jo.PublishAsync.AckHandler = s_on_puback;
    jo.PublishAsync.AckHandlerClosure = js;
    s = natsConnection_JetStream(&js->js, js->nc, &jo);
    if (s != NATS_OK) return s_fail(err, errlen, "jetstream context", s, 0);
    pp_metric_set(js->connected, 1);
    return 0;
}

/*  Uses the stream as it is when it exists (its replicas and limits are the operator's
    to change, with the nats CLI); else creates it. */
static int s_ensure_stream(pp_jetstream_t *js, char *err, size_t errlen)
{
    jsStreamInfo *si = NULL;
    jsErrCode jerr = 0;
    natsStatus s = js_GetStreamInfo(&si, js->js, js->cfg.stream, NULL, &jerr);
    if (s == NATS_OK) {
        pp_info("js_stream", "stream=%s created=false replicas=%" PRId64 " messages=%" PRIu64,
                js->cfg.stream, (int64_t)si->Config->Replicas, si->State.Msgs);
        jsStreamInfo_Destroy(si);
        return 0;
    }
    if (s != NATS_NOT_FOUND) return s_fail(err, errlen, "stream info", s, jerr);
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    const char *subjects[1] = {js->cfg.subject};
    sc.Name = js->cfg.stream;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Retention = js_WorkQueuePolicy; /* a message leaves the stream once acknowledged */
    sc.Storage = js->cfg.memory ? js_MemoryStorage : js_FileStorage;
    sc.Replicas = js->cfg.replicas;
    sc.Duplicates = (int64_t)js->cfg.dedup_window_ms * 1000000;
    s = js_AddStream(&si, js->js, &sc, NULL, &jerr);
    if (s != NATS_OK) return s_fail(err, errlen, "cannot create the stream", s, jerr);
    pp_info("js_stream", "stream=%s created=true replicas=%d storage=%s", js->cfg.stream,
            js->cfg.replicas, js->cfg.memory ? "memory" : "file");
    jsStreamInfo_Destroy(si);
    return 0;
}

static int s_subscribe(pp_jetstream_t *js, char *err, size_t errlen)
{
    jsSubOptions so;
    jsSubOptions_Init(&so);
    so.Stream = js->cfg.stream;
    so.Config.Durable = js->cfg.durable;
    so.Config.AckPolicy = js_AckExplicit;
    so.Config.AckWait = (int64_t)js->cfg.ack_wait_ms * 1000000;
    so.Config.MaxAckPending = js->cfg.max_ack_pending;
    so.Config.MaxDeliver = -1; /* never give a message up: at-least-once */
    jsErrCode jerr = 0;
    natsStatus s =
        js_PullSubscribe(&js->sub, js->js, js->cfg.subject, js->cfg.durable, NULL, &so, &jerr);
    if (s != NATS_OK) return s_fail(err, errlen, "cannot bind the durable consumer", s, jerr);
    return 0;
}

/*  The stream and the consumer. A JetStream cluster that has just started has no leader
    for a few seconds and answers with timeouts: retried for up to 15 s, each failure
    logged, before the broker gives up (exit 1; its supervisor starts it again). */
static int s_set_up(pp_jetstream_t *js, char *err, size_t errlen)
{
    uint64_t until = pp_mono_ms() + 15000;
    for (int attempt = 1;; attempt++) {
        if (s_ensure_stream(js, err, errlen) == 0 && s_subscribe(js, err, errlen) == 0) return 0;
        if (pp_mono_ms() >= until) return -1;
        pp_warn("js_setup_retry", "attempt=%d error=\"%s\"", attempt, err);
        s_sleep_ms(500);
    }
}

static void s_register_metrics(pp_jetstream_t *js, pp_metrics_t *m)
{
    js->published =
        pp_metrics_counter(m, "js_published_total", "messages stored in JetStream", NULL);
    js->publish_failed =
        pp_metrics_counter(m, "js_publish_failed_total",
                           "publishes JetStream did not confirm (error or timeout)", NULL);
    js->duplicates = pp_metrics_counter(
        m, "js_duplicates_total", "publishes JetStream had already (Nats-Msg-Id window)", NULL);
    js->fetched =
        pp_metrics_counter(m, "js_fetched_total", "messages fetched from JetStream", NULL);
    js->acked = pp_metrics_counter(m, "js_acked_total", "messages finished and acknowledged", NULL);
    js->naked = pp_metrics_counter(m, "js_naked_total",
                                   "messages given back for another broker (stop)", NULL);
    js->fetch_errors = pp_metrics_counter(m, "js_fetch_errors_total", "failed fetches", NULL);
    js->connected = pp_metrics_gauge(m, "js_connected", "1 while connected to NATS", NULL);
}

pp_jetstream_t *pp_jetstream_new(const pp_jetstream_cfg_t *cfg, pp_metrics_t *metrics, char *err,
                                 size_t errlen)
{
    pp_jetstream_t *js = calloc(1, sizeof *js);
    if (!js) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    js->cfg = *cfg;
    js->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    js->ring_cap = (size_t)cfg->max_pending;
    js->ring = calloc(js->ring_cap, sizeof *js->ring);
    pthread_mutex_init(&js->lock, NULL);
    js->rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(1000, 5);
    s_register_metrics(js, metrics);
    atomic_init(&js->running, true);
    atomic_init(&js->fetching, false);
    atomic_init(&js->buffered, 0);
    if (js->efd < 0 || !js->ring) {
        snprintf(err, errlen, "out of memory or file descriptors");
        pp_jetstream_destroy(&js);
        return NULL;
    }
    if (s_connect(js, err, errlen) != 0 || s_set_up(js, err, errlen) != 0) {
        pp_jetstream_destroy(&js);
        return NULL;
    }
    if (pthread_create(&js->fetcher, NULL, s_fetch_loop, js) != 0) {
        snprintf(err, errlen, "cannot start the fetch thread");
        pp_jetstream_destroy(&js);
        return NULL;
    }
    js->fetcher_started = true;
    return js;
}

void pp_jetstream_destroy(pp_jetstream_t **p)
{
    if (!p || !*p) return;
    pp_jetstream_t *js = *p;
    atomic_store(&js->running, false);
    if (js->fetcher_started) pthread_join(js->fetcher, NULL);
    /* Fetched, never taken: give back at once rather than after ack_wait. */
    pp_js_event_t ev;
    while (s_pop(js, &ev))
        if (ev.kind == PP_JS_MSG) pp_jetstream_nak(js, &ev.msg);
    if (js->js) {
        /* Publish acks still on their way would call s_on_puback on freed memory. */
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = 2000;
        if (js_PublishAsyncComplete(js->js, &po) != NATS_OK) {
            /* Unanswered: they stay in the stream or were never stored; either way the
               client was not told "accepted" for them by us. Free NATS's copies. */
            natsMsgList pending = {0};
            if (js_PublishAsyncGetPendingList(&pending, js->js) == NATS_OK)
                natsMsgList_Destroy(&pending);
        }
    }
    if (js->nc) natsConnection_Flush(js->nc); /* the naks and acks go out before closing */
    if (js->sub) natsSubscription_Destroy(js->sub);
    if (js->nc) natsConnection_Close(js->nc);
    if (js->js) jsCtx_Destroy(js->js);
    if (js->nc) natsConnection_Destroy(js->nc);
    if (js->opts) natsOptions_Destroy(js->opts);
    /* The library's own threads (callbacks, flushers) end before our state goes: one
       durable store per process, so closing the library here is ours to do. */
    if (js->nc) nats_CloseAndWait(2000);
    pthread_mutex_destroy(&js->lock);
    if (js->efd >= 0) close(js->efd);
    free(js->q);
    free(js->ring);
    free(js);
    *p = NULL;
}

/* ---------------------------------------------------------------- owner's thread */

int pp_jetstream_fd(pp_jetstream_t *js)
{
    return js->efd;
}

bool pp_jetstream_can_publish(pp_jetstream_t *js)
{
    return !js->ring[js->next_seq % js->ring_cap].live;
}

int pp_jetstream_publish(pp_jetstream_t *js, const void *data, size_t len, const char *dedup_id,
                         uint64_t token)
{
    if (!pp_jetstream_can_publish(js)) return -1;
    uint64_t seq = js->next_seq;
    natsMsg *m = NULL;
    char seqtext[24];
    snprintf(seqtext, sizeof seqtext, "%" PRIu64, seq);
    natsStatus s = natsMsg_Create(&m, js->cfg.subject, NULL, data, (int)len);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, "Nats-Msg-Id", dedup_id);
    if (s == NATS_OK) s = natsMsgHeader_Set(m, S_SEQ_HEADER, seqtext);
    if (s == NATS_OK) s = js_PublishMsgAsync(js->js, &m, NULL);
    natsMsg_Destroy(m); /* NULL when NATS took it */
    if (s != NATS_OK) {
        pp_metric_inc(js->publish_failed);
        return -1;
    }
    js->ring[seq % js->ring_cap] =
        (s_pub_t){.seq = seq, .token = token, .sent_ms = pp_mono_ms(), .live = true};
    js->next_seq++;
    js->live++;
    return 0;
}

/*  A PUBACK event carries the publish's seq; returns false when that publish has already
    been answered (timed out before the ack came). */
static bool s_resolve_puback(pp_jetstream_t *js, pp_js_event_t *ev)
{
    s_pub_t *p = &js->ring[ev->token % js->ring_cap];
    if (!p->live || p->seq != ev->token) return false;
    p->live = false;
    js->live--;
    ev->token = p->token;
    if (!ev->ok) {
        pp_metric_inc(js->publish_failed);
    } else {
        pp_metric_inc(js->published);
        if (ev->duplicate) pp_metric_inc(js->duplicates);
    }
    return true;
}

bool pp_jetstream_next(pp_jetstream_t *js, pp_js_event_t *ev)
{
    for (bool cleared = false;; cleared = true) {
        while (s_pop(js, ev)) {
            if (ev->kind == PP_JS_MSG) {
                atomic_fetch_sub(&js->buffered, 1);
                return true;
            }
            if (s_resolve_puback(js, ev)) return true;
        }
        /* Empty. Reset the wake-up once, then look once more: an event pushed after that
           look finds the queue empty and writes the eventfd again, so none is left
           behind unannounced. (Resetting after the last look would lose it.) */
        if (cleared) return false;
        uint64_t drained;
        ssize_t n = read(js->efd, &drained, sizeof drained);
        (void)n;
    }
}

void pp_jetstream_set_fetching(pp_jetstream_t *js, bool on)
{
    atomic_store(&js->fetching, on);
}

void pp_jetstream_tick(pp_jetstream_t *js, uint64_t now_ms)
{
    while (js->oldest_seq < js->next_seq) {
        s_pub_t *p = &js->ring[js->oldest_seq % js->ring_cap];
        if (p->live && p->seq == js->oldest_seq) {
            if (now_ms - p->sent_ms < (uint64_t)js->cfg.publish_timeout_ms) break;
            pp_js_event_t ev = {.kind = PP_JS_PUBACK, .token = p->seq};
            snprintf(ev.error, sizeof ev.error, "no publish ack within %d ms",
                     js->cfg.publish_timeout_ms);
            s_push(js, &ev);     /* answered as a failure; a late ack is ignored */
            p->sent_ms = now_ms; /* not queued twice before the owner takes it */
            break;
        }
        js->oldest_seq++;
    }
}

void pp_jetstream_ack(pp_jetstream_t *js, pp_js_msg_t **m)
{
    if (!m || !*m) return;
    natsMsg_Ack((*m)->nm, NULL);
    pp_metric_inc(js->acked);
    natsMsg_Destroy((*m)->nm);
    free(*m);
    *m = NULL;
}

void pp_jetstream_nak(pp_jetstream_t *js, pp_js_msg_t **m)
{
    if (!m || !*m) return;
    natsMsg_Nak((*m)->nm, NULL);
    pp_metric_inc(js->naked);
    natsMsg_Destroy((*m)->nm);
    free(*m);
    *m = NULL;
}

void pp_jetstream_release(pp_jetstream_t *js, pp_js_msg_t **m)
{
    (void)js;
    if (!m || !*m) return;
    natsMsg_Destroy((*m)->nm);
    free(*m);
    *m = NULL;
}

void pp_jetstream_touch(pp_jetstream_t *js, pp_js_msg_t *m)
{
    (void)js;
    if (m) natsMsg_InProgress(m->nm, NULL);
}

size_t pp_jetstream_pending(pp_jetstream_t *js)
{
    return js->live;
}

size_t pp_jetstream_max_payload(pp_jetstream_t *js)
{
    int64_t n = natsConnection_GetMaxPayload(js->nc);
    return n > 0 ? (size_t)n : 0;
}

/*  pp_durable: see pp_durable.h.

    Stored messages are batches: "PPB1" then, per accepted frame, a 4-byte big-endian
    length and the frame's RESOLVE job. Batching is what lets a 2-core host store over a
    hundred thousand acknowledged frames a second: a publish, its ack, a fetch and an ack
    cost about the same for 200 bytes as for 50 KB. A frame with a client message id is
    stored alone, under that id (Nats-Msg-Id "c:<id>"), so that the client's resend to
    another broker is recognised; batches go under "b:<first broker msg_id>". */
#include "pp_durable.h"
#include "pp_job.h"
#include "pp_log.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ID_MAX 64 /* a broker msg_id is 32 hex characters; room for a longer one */
#define S_MAGIC "PPB1"
#define S_MAGIC_LEN 4
/*  Message ids per "given back" log line. */
#define S_IDS_PER_LINE 16

/*  One publish (a batch) awaiting its ack, by token % cap. Its frames' verdict records
    are packed in `items` (flags, identity length, identity, msg_id length, msg_id: about
    45 bytes for a typical acknowledged client rather than a 300-byte struct), since every
    slot keeps its buffer for the next batch. */
typedef struct {
    uint64_t token;
    bool live;
    uint8_t *items;
    size_t used, cap;
    size_t n;
} s_pub_t;

enum { S_ITEM_ROUTE = 1, S_ITEM_DELIMITER = 2 };

/*  One stored message being run: the JetStream deliveries that carry it (usually one;
    two when JetStream redelivered it while this broker was still at work), its frames'
    msg_ids (the ledger's keys) and its open units. poisoned: a frame of it could not be
    queued, so at the end it is given back (NAK) for a full rerun, not acknowledged. */
typedef struct s_batch {
    struct s_batch *prev, *next;
    pp_js_msg_t **msgs;
    size_t n_msgs;
    char (*ids)[S_ID_MAX + 1];
    size_t n_ids;
    int64_t open;
    bool poisoned;
} s_batch_t;

struct pp_durable_t {
    pp_jetstream_t *js;
    pp_durable_callbacks_t cb;
    void *ctx;
    s_pub_t *pubs;
    size_t cap;
    uint64_t next_token;
    /* the batch being filled: its frames in buf, their items in pubs[next_token % cap] */
    uint8_t *buf;
    size_t len, buf_cap;
    int batch_max;
    size_t batch_bytes;
    zhashx_t *ledger;   /* msg_id -> s_batch_t (several keys, one batch) */
    s_batch_t *running; /* every batch being run, for touch and give-back */
    size_t n_running;
    int touch_ms;
    uint64_t last_touch_ms;
    pp_metric_t *accepted, *refused, *unstored, *runs, *redelivered, *finished;
    pp_metric_t *unfinished, *orphans, *given_back, *batches;
    pp_ratelimit_t rl;
};

static void s_register_metrics(pp_durable_t *d, pp_metrics_t *m)
{
    d->accepted = pp_metrics_counter(m, "durable_accepted_total",
                                     "frames stored in JetStream before the verdict", NULL);
    d->refused = pp_metrics_counter(m, "durable_refused_total",
                                    "acknowledged frames refused: the store did not confirm", NULL);
    d->unstored = pp_metrics_counter(
        m, "durable_unstored_total",
        "fire-and-forget frames the store did not confirm (never accepted; logged)", NULL);
    d->batches = pp_metrics_counter(m, "durable_batches_total", "stored messages published", NULL);
    d->runs = pp_metrics_counter(m, "durable_runs_total", "stored messages taken to run", NULL);
    d->redelivered = pp_metrics_counter(
        m, "durable_redelivered_total",
        "stored messages run again (a broker died or gave them back: duplicates possible)", NULL);
    d->finished = pp_metrics_counter(m, "durable_finished_total",
                                     "stored messages finished and acknowledged", NULL);
    d->unfinished = pp_metrics_gauge(m, "durable_unfinished", "stored messages being run", NULL);
    d->orphans = pp_metrics_counter(m, "durable_orphan_units_total",
                                    "job acks or outputs of no message being run", NULL);
    d->given_back = pp_metrics_counter(m, "durable_given_back_total",
                                       "unfinished stored messages given back at stop", NULL);
}

pp_durable_t *pp_durable_new(const pp_jetstream_cfg_t *cfg, const pp_durable_callbacks_t *cb,
                             void *ctx, pp_metrics_t *metrics, char *err, size_t errlen)
{
    pp_durable_t *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    d->cb = *cb;
    d->ctx = ctx;
    d->cap = (size_t)cfg->max_pending;
    d->pubs = calloc(d->cap, sizeof *d->pubs);
    d->ledger = zhashx_new();
    d->batch_max = cfg->batch_max > 0 ? cfg->batch_max : 1;
    d->touch_ms = cfg->ack_wait_ms / 3 > 0 ? cfg->ack_wait_ms / 3 : 1;
    d->last_touch_ms = pp_mono_ms();
    d->rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(1000, 10);
    s_register_metrics(d, metrics);
    if (!d->pubs || !d->ledger) {
        snprintf(err, errlen, "out of memory");
        pp_durable_destroy(&d);
        return NULL;
    }
    d->js = pp_jetstream_new(cfg, metrics, err, errlen);
    if (!d->js) {
        pp_durable_destroy(&d);
        return NULL;
    }
    size_t maxp = pp_jetstream_max_payload(d->js);
    d->batch_bytes = cfg->batch_bytes < maxp ? cfg->batch_bytes : maxp;
    return d;
}

static void s_batch_free(s_batch_t *b)
{
    free(b->msgs);
    free(b->ids);
    free(b);
}

void pp_durable_destroy(pp_durable_t **p)
{
    if (!p || !*p) return;
    pp_durable_t *d = *p;
    /* Normally nothing runs (pp_durable_give_back did its work). What is left is
       released: JetStream redelivers it after ack_wait. */
    while (d->running) {
        s_batch_t *b = d->running;
        d->running = b->next;
        for (size_t i = 0; i < b->n_msgs; i++)
            pp_jetstream_release(d->js, &b->msgs[i]);
        s_batch_free(b);
    }
    zhashx_destroy(&d->ledger);
    pp_jetstream_destroy(&d->js);
    for (size_t i = 0; d->pubs && i < d->cap; i++)
        free(d->pubs[i].items);
    free(d->pubs);
    free(d->buf);
    free(d);
    *p = NULL;
}

int pp_durable_fd(pp_durable_t *d)
{
    return pp_jetstream_fd(d->js);
}

/* ---------------------------------------------------------------- intake */

static s_pub_t *s_filling(pp_durable_t *d)
{
    return &d->pubs[d->next_token % d->cap];
}

bool pp_durable_can_accept(pp_durable_t *d)
{
    return pp_jetstream_can_publish(d->js) && !s_filling(d)->live;
}

/*  Reads the record at *at of p->items into route (when it has one) and msg_id. */
static bool s_next_item(const s_pub_t *p, size_t *at, pp_durable_route_t *route,
                        char msg_id[S_ID_MAX + 1])
{
    const uint8_t *b = p->items + *at;
    uint8_t flags = b[0];
    size_t idlen = b[1];
    route->identity_len = idlen;
    route->delimiter = flags & S_ITEM_DELIMITER;
    memcpy(route->identity, b + 2, idlen);
    size_t mlen = b[2 + idlen];
    memcpy(msg_id, b + 3 + idlen, mlen);
    msg_id[mlen] = '\0';
    size_t clen = b[3 + idlen + mlen];
    memcpy(route->cid, b + 4 + idlen + mlen, clen);
    route->cid[clen] = '\0';
    route->cid_len = clen;
    *at += 4 + idlen + mlen + clen;
    return flags & S_ITEM_ROUTE;
}

static void s_verdict(pp_durable_t *d, s_pub_t *p, bool ok, const char *error)
{
    uint32_t suppressed;
    bool log = !ok && pp_ratelimit_allow(&d->rl, &suppressed);
    char first[S_ID_MAX + 1] = "";
    size_t at = 0;
    for (size_t i = 0; i < p->n; i++) {
        pp_durable_route_t route;
        char msg_id[S_ID_MAX + 1];
        bool has_route = s_next_item(p, &at, &route, msg_id);
        if (i == 0) memcpy(first, msg_id, sizeof first);
        if (ok)
            pp_metric_inc(d->accepted);
        else
            pp_metric_inc(has_route ? d->refused : d->unstored);
        d->cb.reply(d->ctx, has_route ? &route : NULL, ok, msg_id, error);
    }
    if (log)
        pp_warn("durable_store_failed", "frames=%zu first_msg_id=%s error=\"%s\" suppressed=%u",
                p->n, first, error, suppressed);
    p->n = p->used = 0;
}

static int s_append(pp_durable_t *d, const void *job, size_t len)
{
    size_t need = d->len + (d->len ? 0 : S_MAGIC_LEN) + 4 + len;
    if (need > d->buf_cap) {
        size_t ncap = d->buf_cap ? d->buf_cap : 64 * 1024;
        while (ncap < need)
            ncap *= 2;
        uint8_t *n = realloc(d->buf, ncap);
        if (!n) return -1;
        d->buf = n;
        d->buf_cap = ncap;
    }
    if (d->len == 0) {
        memcpy(d->buf, S_MAGIC, S_MAGIC_LEN);
        d->len = S_MAGIC_LEN;
    }
    uint8_t *at = d->buf + d->len;
    at[0] = (uint8_t)(len >> 24);
    at[1] = (uint8_t)(len >> 16);
    at[2] = (uint8_t)(len >> 8);
    at[3] = (uint8_t)len;
    memcpy(at + 4, job, len);
    d->len += 4 + len;
    return 0;
}

static int s_add_item(s_pub_t *p, const char *msg_id, const pp_durable_route_t *route)
{
    size_t idlen = route ? route->identity_len : 0;
    size_t clen = route ? route->cid_len : 0;
    size_t mlen = strlen(msg_id);
    if (mlen > S_ID_MAX || idlen > 255 || clen >= sizeof route->cid) return -1;
    size_t need = p->used + 4 + idlen + mlen + clen;
    if (need > p->cap) {
        size_t ncap = p->cap ? p->cap * 2 : 4096;
        while (ncap < need)
            ncap *= 2;
        uint8_t *n = realloc(p->items, ncap);
        if (!n) return -1;
        p->items = n;
        p->cap = ncap;
    }
    uint8_t *b = p->items + p->used;
    b[0] =
        (uint8_t)((route ? S_ITEM_ROUTE : 0) | (route && route->delimiter ? S_ITEM_DELIMITER : 0));
    b[1] = (uint8_t)idlen;
    if (idlen) memcpy(b + 2, route->identity, idlen);
    b[2 + idlen] = (uint8_t)mlen;
    memcpy(b + 3 + idlen, msg_id, mlen);
    b[3 + idlen + mlen] = (uint8_t)clen;
    if (clen) memcpy(b + 4 + idlen + mlen, route->cid, clen);
    p->used = need;
    p->n++;
    return 0;
}

/*  The msg_id of the first frame of p (the batch's de-duplication name). */
static void s_first_id(const s_pub_t *p, char out[S_ID_MAX + 1])
{
    pp_durable_route_t route;
    size_t at = 0;
    s_next_item(p, &at, &route, out);
}

void pp_durable_flush(pp_durable_t *d)
{
    s_pub_t *p = s_filling(d);
    if (p->n == 0) return;
    char first[S_ID_MAX + 1], dedup[S_ID_MAX + 8];
    s_first_id(p, first);
    snprintf(dedup, sizeof dedup, "b:%s", first);
    uint64_t token = d->next_token;
    int rc = pp_jetstream_publish(d->js, d->buf, d->len, dedup, token);
    d->len = 0;
    if (rc != 0) {
        s_verdict(d, p, false, "the store refused the publish");
        return;
    }
    p->token = token;
    p->live = true;
    d->next_token++;
    pp_metric_inc(d->batches);
}

/*  A frame with its own de-duplication id is stored alone under it. */
static int s_publish_alone(pp_durable_t *d, const void *job, size_t len, const char *msg_id,
                           const char *dedup_id, const pp_durable_route_t *route)
{
    pp_durable_flush(d);
    if (!pp_durable_can_accept(d)) return -1;
    s_pub_t *p = s_filling(d);
    if (s_append(d, job, len) != 0 || s_add_item(p, msg_id, route) != 0) {
        d->len = 0;
        p->n = p->used = 0;
        return -1;
    }
    uint64_t token = d->next_token;
    int rc = pp_jetstream_publish(d->js, d->buf, d->len, dedup_id, token);
    d->len = 0;
    if (rc != 0) {
        p->n = p->used = 0;
        return -1;
    }
    p->token = token;
    p->live = true;
    d->next_token++;
    pp_metric_inc(d->batches);
    return 0;
}

int pp_durable_accept(pp_durable_t *d, const void *job, size_t len, const char *msg_id,
                      const char *dedup_id, const pp_durable_route_t *route)
{
    if (len + S_MAGIC_LEN + 4 > d->batch_bytes) return PP_DURABLE_TOO_LARGE;
    if (!pp_durable_can_accept(d)) return -1;
    if (dedup_id) return s_publish_alone(d, job, len, msg_id, dedup_id, route);
    if (d->len + 4 + len > d->batch_bytes) pp_durable_flush(d);
    if (!pp_durable_can_accept(d)) return -1;
    s_pub_t *p = s_filling(d);
    size_t before = d->len, used = p->used, n = p->n;
    if (s_append(d, job, len) != 0 || s_add_item(p, msg_id, route) != 0) {
        d->len = before;
        p->used = used;
        p->n = n;
        return -1;
    }
    if ((int)p->n >= d->batch_max) pp_durable_flush(d);
    return 0;
}

static void s_on_verdict(pp_durable_t *d, const pp_js_event_t *ev)
{
    s_pub_t *p = &d->pubs[ev->token % d->cap];
    if (!p->live || p->token != ev->token) return;
    p->live = false;
    s_verdict(d, p, ev->ok, ev->error);
}

/* ---------------------------------------------------------------- run */

static s_batch_t *s_lookup(pp_durable_t *d, const void *job, size_t len, char *key)
{
    pp_str_t id;
    key[0] = '\0';
    if (pp_job_peek_msg_id(job, len, &id) != 0 || id.len == 0 || id.len > S_ID_MAX) return NULL;
    memcpy(key, id.ptr, id.len);
    key[id.len] = '\0';
    return zhashx_lookup(d->ledger, key);
}

static int s_attach(s_batch_t *b, pp_js_msg_t *m)
{
    pp_js_msg_t **n = realloc(b->msgs, (b->n_msgs + 1) * sizeof *n);
    if (!n) return -1;
    b->msgs = n;
    b->msgs[b->n_msgs++] = m;
    return 0;
}

/*  Calls fn on each job of a stored batch; returns the number of jobs, or -1 when the
    batch is malformed (then fn was called on none). */
static int s_each_job(const uint8_t *p, size_t len,
                      void (*fn)(pp_durable_t *, s_batch_t *, const uint8_t *, size_t),
                      pp_durable_t *d, s_batch_t *b)
{
    if (len < S_MAGIC_LEN || memcmp(p, S_MAGIC, S_MAGIC_LEN) != 0) return -1;
    for (int pass = 0; pass < 2; pass++) { /* check everything first, then call */
        int n = 0;
        size_t at = S_MAGIC_LEN;
        while (at < len) {
            if (len - at < 4) return -1;
            size_t jl =
                (size_t)p[at] << 24 | (size_t)p[at + 1] << 16 | (size_t)p[at + 2] << 8 | p[at + 3];
            at += 4;
            if (jl == 0 || jl > len - at) return -1;
            if (pass == 1) fn(d, b, p + at, jl);
            at += jl;
            n++;
        }
        if (pass == 1) return n;
    }
    return -1;
}

static void s_run_one(pp_durable_t *d, s_batch_t *b, const uint8_t *job, size_t len)
{
    char key[S_ID_MAX + 1];
    if (pp_job_peek_kind(job, len) != PP_JOB_RESOLVE || s_lookup(d, job, len, key) || !key[0]) {
        pp_metric_inc(d->orphans); /* not a RESOLVE job, or a msg_id already running */
        return;
    }
    if (zhashx_insert(d->ledger, key, b) != 0) {
        b->poisoned = true;
        return;
    }
    memcpy(b->ids[b->n_ids++], key, sizeof key);
    b->open++;
    if (d->cb.run(d->ctx, job, len) != 0) {
        b->open--;
        b->poisoned = true;
    }
}

static void s_link(pp_durable_t *d, s_batch_t *b)
{
    b->next = d->running;
    if (d->running) d->running->prev = b;
    d->running = b;
    d->n_running++;
}

static void s_unlink(pp_durable_t *d, s_batch_t *b)
{
    if (b->prev) b->prev->next = b->next;
    if (b->next) b->next->prev = b->prev;
    if (d->running == b) d->running = b->next;
    d->n_running--;
}

static void s_finish(pp_durable_t *d, s_batch_t *b)
{
    for (size_t i = 0; i < b->n_ids; i++)
        zhashx_delete(d->ledger, b->ids[i]);
    for (size_t i = 0; i < b->n_msgs; i++) {
        if (b->poisoned)
            pp_jetstream_nak(d->js, &b->msgs[i]);
        else
            pp_jetstream_ack(d->js, &b->msgs[i]);
    }
    s_unlink(d, b);
    s_batch_free(b);
    pp_metric_inc(d->finished);
    pp_metric_set(d->unfinished, (int64_t)d->n_running);
}

/*  A stored batch arrived. Already running here (JetStream redelivered it before our
    in-progress notice reached it): the delivery joins the running batch, nothing runs
    twice. */
static void s_on_stored(pp_durable_t *d, pp_js_event_t *ev)
{
    const uint8_t *p = ev->data;
    char key[S_ID_MAX + 1];
    s_batch_t *running = ev->len > S_MAGIC_LEN + 4
                             ? s_lookup(d, p + S_MAGIC_LEN + 4, ev->len - S_MAGIC_LEN - 4, key)
                             : NULL;
    if (running) {
        if (s_attach(running, ev->msg) != 0) pp_jetstream_release(d->js, &ev->msg);
        return;
    }
    s_batch_t *b = calloc(1, sizeof *b);
    size_t max_jobs = ev->len / 5 + 1;
    if (b) b->ids = malloc(max_jobs * sizeof *b->ids);
    if (!b || !b->ids || s_attach(b, ev->msg) != 0) {
        if (b) s_batch_free(b);
        pp_jetstream_nak(d->js, &ev->msg); /* out of memory: someone else runs it */
        return;
    }
    s_link(d, b);
    b->open = 1; /* held while its jobs are queued: a job acked at once must not end it */
    if (s_each_job(p, ev->len, s_run_one, d, b) < 0) {
        pp_metric_inc(d->orphans);
        pp_warn("durable_bad_message", "size=%zu effect=\"acknowledged away\"", ev->len);
    }
    pp_metric_inc(d->runs);
    if (ev->deliveries > 1) pp_metric_inc(d->redelivered);
    if (--b->open == 0) s_finish(d, b);
}

void pp_durable_on_readable(pp_durable_t *d)
{
    pp_js_event_t ev;
    for (int i = 0; i < 4096 && pp_jetstream_next(d->js, &ev); i++) {
        if (ev.kind == PP_JS_PUBACK)
            s_on_verdict(d, &ev);
        else
            s_on_stored(d, &ev);
    }
    pp_metric_set(d->unfinished, (int64_t)d->n_running);
}

void pp_durable_output(pp_durable_t *d, const void *job, size_t len)
{
    char key[S_ID_MAX + 1];
    s_batch_t *b = s_lookup(d, job, len, key);
    if (b)
        b->open++;
    else
        pp_metric_inc(d->orphans);
}

void pp_durable_done(pp_durable_t *d, const void *job, size_t len)
{
    char key[S_ID_MAX + 1];
    s_batch_t *b = s_lookup(d, job, len, key);
    if (!b) {
        pp_metric_inc(d->orphans);
        return;
    }
    if (--b->open == 0) s_finish(d, b);
}

void pp_durable_set_fetching(pp_durable_t *d, bool on)
{
    pp_jetstream_set_fetching(d->js, on);
}

int pp_durable_tick(pp_durable_t *d, uint64_t now_ms)
{
    pp_jetstream_tick(d->js, now_ms);
    if (now_ms - d->last_touch_ms >= (uint64_t)d->touch_ms) {
        d->last_touch_ms = now_ms;
        for (s_batch_t *b = d->running; b; b = b->next)
            for (size_t i = 0; i < b->n_msgs; i++)
                pp_jetstream_touch(d->js, b->msgs[i]);
    }
    return 50; /* publish timeouts are checked at this granularity */
}

size_t pp_durable_unfinished(pp_durable_t *d)
{
    return d->n_running;
}

size_t pp_durable_publishing(pp_durable_t *d)
{
    return pp_jetstream_pending(d->js) + (s_filling(d)->n ? 1 : 0);
}

void pp_durable_give_back(pp_durable_t *d)
{
    size_t batches = d->n_running, frames = 0;
    if (batches == 0) return;
    char line[S_IDS_PER_LINE * (S_ID_MAX + 1) + 1];
    size_t used = 0, in_line = 0;
    while (d->running) {
        s_batch_t *b = d->running;
        for (size_t i = 0; i < b->n_ids; i++, frames++) {
            used += (size_t)snprintf(line + used, sizeof line - used, "%s%s", in_line ? "," : "",
                                     b->ids[i]);
            if (++in_line == S_IDS_PER_LINE) {
                pp_info("durable_given_back_ids", "ids=%s", line);
                used = in_line = 0;
            }
            zhashx_delete(d->ledger, b->ids[i]);
        }
        for (size_t i = 0; i < b->n_msgs; i++)
            pp_jetstream_nak(d->js, &b->msgs[i]);
        s_unlink(d, b);
        s_batch_free(b);
    }
    if (in_line) pp_info("durable_given_back_ids", "ids=%s", line);
    pp_metric_add(d->given_back, batches);
    pp_metric_set(d->unfinished, 0);
    pp_warn("durable_given_back",
            "messages=%zu stored=%zu effect=\"in the stream for the next broker\"", frames,
            batches);
}

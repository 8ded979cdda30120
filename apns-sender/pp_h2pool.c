#include "pp_h2pool.h"

#include "pp_log.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_CONNS 64

typedef struct {
    pp_h2conn_t *c;
    uint64_t next_connect_ms;
    uint64_t no_streams_ms; /* since when it allows no stream while work waits; 0 = not */
    unsigned fails;
    unsigned addr_index;
    bool ever_opened;
} s_slot_t;

/*  A queued notification and when it entered the queue. */
typedef struct {
    pp_apns_notif_t *n;
    uint64_t queued_ms;
} s_entry_t;

struct pp_h2pool_t {
    pp_h2pool_config_t cfg;
    char host[256];
    char authority[300];
    char label[280];
    const pp_h2pool_callbacks_t *cb;
    void *owner;
    s_slot_t slots[S_MAX_CONNS];
    int n_slots;
    bool active; /* used at least once: keep the connections open from now on */
    /* The queue: a ring (push at either end, pop at the front), cap a power of two. */
    s_entry_t *q;
    size_t q_head, queued, q_cap;
    uint64_t q_oldest_ms;  /* at most the oldest queued_ms (a lower bound; exact after a scan) */
    uint64_t last_sent_ms; /* the last submission: the queue is stuck only when none for long */
    int64_t expiry_scan_s; /* wall second of the last scan for expired entries */
    int poll_slot[S_MAX_CONNS];
    int n_poll;
    unsigned rr; /* round-robin start for dispatch */
};

static void s_on_ready(void *owner, pp_h2conn_t *c);
static void s_on_response(void *owner, pp_h2conn_t *c, void *req, int status, const char *body,
                          size_t body_len);
static void s_on_unsent(void *owner, pp_h2conn_t *c, void *req, uint32_t error_code);
static void s_on_goaway(void *owner, pp_h2conn_t *c, uint32_t error_code, const char *reason);

static void s_on_timeout(void *owner, pp_h2conn_t *c, void *req, uint64_t waited_ms);

static const pp_h2conn_callbacks_t s_conn_cb = {s_on_ready, s_on_response, s_on_unsent, s_on_goaway,
                                                s_on_timeout};

pp_h2pool_t *pp_h2pool_new(const pp_h2pool_config_t *cfg, const pp_h2pool_callbacks_t *cb,
                           void *owner)
{
    pp_h2pool_t *pool = calloc(1, sizeof *pool);
    if (!pool) return NULL;
    pool->cfg = *cfg;
    snprintf(pool->host, sizeof pool->host, "%s", cfg->host);
    pool->cfg.host = pool->host;
    if (cfg->port == 443)
        snprintf(pool->authority, sizeof pool->authority, "%s", cfg->host);
    else
        snprintf(pool->authority, sizeof pool->authority, "%s:%d", cfg->host, cfg->port);
    snprintf(pool->label, sizeof pool->label, "%s/%s", cfg->app->ident,
             cfg->env ? "production" : "sandbox");
    pool->n_slots = cfg->connections < 1             ? 1
                    : cfg->connections > S_MAX_CONNS ? S_MAX_CONNS
                                                     : cfg->connections;
    pool->cb = cb;
    pool->owner = owner;
    return pool;
}

void pp_h2pool_destroy(pp_h2pool_t **p)
{
    if (!p || !*p) return;
    pp_h2pool_t *pool = *p;
    pp_h2pool_close_all(pool); /* requests come back to the queue */
    for (int i = 0; i < pool->n_slots; i++)
        pp_h2conn_destroy(&pool->slots[i].c);
    for (size_t k = 0; k < pool->queued; k++)
        pp_apns_notif_destroy(&pool->q[(pool->q_head + k) & (pool->q_cap - 1)].n);
    free(pool->q);
    free(pool);
    *p = NULL;
}

static bool s_expired(const pp_apns_notif_t *n, int64_t now_wall_s)
{
    return n->msg->expiration > 0 && now_wall_s > n->msg->expiration;
}

/*  Room for one more entry: doubles the ring (unwrapping it). -1 when out of memory. */
static int s_q_room(pp_h2pool_t *pool)
{
    if (pool->queued < pool->q_cap) return 0;
    size_t cap = pool->q_cap ? pool->q_cap * 2 : 256;
    s_entry_t *q = malloc(cap * sizeof *q);
    if (!q) return -1;
    for (size_t k = 0; k < pool->queued; k++)
        q[k] = pool->q[(pool->q_head + k) & (pool->q_cap - 1)];
    free(pool->q);
    pool->q = q;
    pool->q_cap = cap;
    pool->q_head = 0;
    return 0;
}

static void s_q_insert(pp_h2pool_t *pool, pp_apns_notif_t *n, uint64_t queued_ms, bool front)
{
    pool->active = true;
    if (s_expired(n, (int64_t)(pp_wall_us() / 1000000))) {
        /* Already past its apns-expiration (say, it waited for credit in the broker): no
           need to hold it, or its job, until a stream frees up. */
        pool->cb->on_drop(pool->owner, pool, n, "expired");
        return;
    }
    if (s_q_room(pool) != 0) {
        pool->cb->on_drop(pool->owner, pool, n, "out_of_memory");
        return;
    }
    if (pool->queued == 0 || queued_ms < pool->q_oldest_ms) pool->q_oldest_ms = queued_ms;
    size_t mask = pool->q_cap - 1;
    if (front) {
        pool->q_head = (pool->q_head + mask) & mask;
        pool->q[pool->q_head] = (s_entry_t){n, queued_ms};
    } else {
        pool->q[(pool->q_head + pool->queued) & mask] = (s_entry_t){n, queued_ms};
    }
    pool->queued++;
}

void pp_h2pool_push(pp_h2pool_t *pool, pp_apns_notif_t *n)
{
    s_q_insert(pool, n, pp_mono_ms(), false);
}

void pp_h2pool_push_front(pp_h2pool_t *pool, pp_apns_notif_t *n)
{
    s_q_insert(pool, n, pp_mono_ms(), true);
}

static s_entry_t s_pop(pp_h2pool_t *pool)
{
    s_entry_t e = pool->q[pool->q_head];
    pool->q_head = (pool->q_head + 1) & (pool->q_cap - 1);
    pool->queued--;
    return e;
}

const char *pp_h2pool_label(const pp_h2pool_t *pool)
{
    return pool->label;
}

size_t pp_h2pool_queued(const pp_h2pool_t *pool)
{
    return pool->queued;
}

size_t pp_h2pool_in_flight(const pp_h2pool_t *pool)
{
    size_t n = 0;
    for (int i = 0; i < pool->n_slots; i++)
        if (pool->slots[i].c) n += pp_h2conn_in_flight(pool->slots[i].c);
    return n;
}

size_t pp_h2pool_ready_connections(const pp_h2pool_t *pool)
{
    size_t n = 0;
    for (int i = 0; i < pool->n_slots; i++)
        if (pool->slots[i].c && pp_h2conn_state(pool->slots[i].c) == PP_H2_READY) n++;
    return n;
}

size_t pp_h2pool_stream_limit(const pp_h2pool_t *pool)
{
    size_t n = 0;
    for (int i = 0; i < pool->n_slots; i++)
        if (pool->slots[i].c && pp_h2conn_state(pool->slots[i].c) == PP_H2_READY)
            n += pp_h2conn_max_streams(pool->slots[i].c);
    return n;
}

/* ---- connection callbacks --------------------------------------------------------- */

static void s_on_ready(void *owner, pp_h2conn_t *c)
{
    (void)owner, (void)c;
}

static void s_on_response(void *owner, pp_h2conn_t *c, void *req, int status, const char *body,
                          size_t body_len)
{
    (void)c;
    pp_h2pool_t *pool = owner;
    pool->cb->on_response(pool->owner, pool, req, status, body, body_len);
}

static void s_on_unsent(void *owner, pp_h2conn_t *c, void *req, uint32_t error_code)
{
    (void)c;
    pp_h2pool_t *pool = owner;
    pp_apns_notif_t *n = req;
    pp_metric_inc(pool->cfg.resent);
    if (++n->resends > pool->cfg.max_resends) {
        pool->cb->on_drop(pool->owner, pool, n, "too_many_resends");
        return;
    }
    pp_debug("notif_resend", "pool=%s apns_id=%s error_code=%u", pool->label, n->apns_id,
             error_code);
    pp_h2pool_push_front(pool, n);
}

static void s_on_goaway(void *owner, pp_h2conn_t *c, uint32_t error_code, const char *reason)
{
    (void)c, (void)error_code, (void)reason;
    pp_h2pool_t *pool = owner;
    pp_metric_inc(pool->cfg.goaways);
}

static void s_on_timeout(void *owner, pp_h2conn_t *c, void *req, uint64_t waited_ms)
{
    (void)c;
    pp_h2pool_t *pool = owner;
    pool->cb->on_timeout(pool->owner, pool, req, "stream", waited_ms);
}

/* ---- requests --------------------------------------------------------------------- */

#define S_NV(name, value, vlen)                                                                    \
    ((nghttp2_nv){(uint8_t *)(name), (uint8_t *)(value), sizeof(name) - 1, (vlen),                 \
                  NGHTTP2_NV_FLAG_NO_COPY_NAME})

static int s_submit(pp_h2pool_t *pool, pp_h2conn_t *c, pp_apns_notif_t *n)
{
    const pp_apns_msg_t *m = n->msg;
    char path[300];
    int plen = snprintf(path, sizeof path, "/3/device/%s", n->token);
    if (plen < 0 || (size_t)plen >= sizeof path) return -1;
    char auth[PP_JWT_MAX + 8];
    nghttp2_nv nva[12];
    size_t k = 0;
    nva[k++] = S_NV(":method", "POST", 4);
    nva[k++] = S_NV(":scheme", "https", 5);
    nva[k++] = S_NV(":authority", pool->authority, strlen(pool->authority));
    nva[k++] = S_NV(":path", path, (size_t)plen);
    /* Paths and apns-ids differ for every request: indexing them in HPACK's dynamic table
       would only evict the headers that do repeat (topic, authorization, ...). */
    nva[k - 1].flags |= NGHTTP2_NV_FLAG_NO_INDEX;
    nva[k++] = S_NV("apns-topic", m->topic, strlen(m->topic));
    nva[k++] = S_NV("apns-push-type", m->push_type, strlen(m->push_type));
    nva[k++] = S_NV("apns-priority", m->priority, strlen(m->priority));
    if (m->expiry[0]) nva[k++] = S_NV("apns-expiration", m->expiry, strlen(m->expiry));
    if (m->collapse_id[0])
        nva[k++] = S_NV("apns-collapse-id", m->collapse_id, strlen(m->collapse_id));
    nva[k++] = S_NV("apns-id", n->apns_id, PP_UUID_LEN);
    nva[k - 1].flags |= NGHTTP2_NV_FLAG_NO_INDEX;
    if (m->app->auth == PP_APNS_AUTH_TOKEN) {
        pp_apns_cred_t *cred = m->app->cred;
        int alen = snprintf(auth, sizeof auth, "bearer %s", cred->token);
        nva[k++] = S_NV("authorization", auth, (size_t)alen);
        n->jwt_iat = cred->iat;
    }
    nva[k++] = S_NV("content-type", "application/json", 16);
    return pp_h2conn_submit(c, nva, k, m->payload, m->payload_len, n);
}

/*  Hands queued notifications to connections with room. Round robin one request at a
    time, so that several connections share the load; first over the connections without a
    timeout streak, then (when those are full) over the others. */
static void s_dispatch_to(pp_h2pool_t *pool, int64_t now_wall_s, uint64_t now_ms, bool suspects)
{
    size_t caps[S_MAX_CONNS];
    size_t total = 0;
    for (int i = 0; i < pool->n_slots; i++) {
        pp_h2conn_t *c = pool->slots[i].c;
        caps[i] = c && (pp_h2conn_timeout_streak(c) > 0) == suspects ? pp_h2conn_capacity(c) : 0;
        total += caps[i];
    }
    while (total > 0 && pool->queued > 0) {
        int i = (int)(pool->rr++ % (unsigned)pool->n_slots);
        if (caps[i] == 0) continue;
        s_entry_t e = s_pop(pool);
        if (s_expired(e.n, now_wall_s)) {
            pool->cb->on_drop(pool->owner, pool, e.n, "expired");
            continue;
        }
        if (s_submit(pool, pool->slots[i].c, e.n) != 0) {
            s_q_insert(pool, e.n, e.queued_ms, true); /* its wait goes on */
            total -= caps[i];
            caps[i] = 0;
            continue;
        }
        pp_metric_inc(pool->cfg.sent);
        pool->last_sent_ms = now_ms;
        caps[i]--;
        total--;
    }
}

static void s_dispatch(pp_h2pool_t *pool, int64_t now_wall_s, uint64_t now_ms)
{
    if (pool->queued == 0) return;
    if (pool->cfg.app->auth == PP_APNS_AUTH_TOKEN && !pool->cfg.app->cred->token[0])
        return; /* no provider token yet (signing failed): keep them queued */
    s_dispatch_to(pool, now_wall_s, now_ms, false);
    s_dispatch_to(pool, now_wall_s, now_ms, true);
}

/* ---- deadlines -------------------------------------------------------------------- */

/*  Drops the queued notifications whose apns-expiration passed, wherever they are in the
    queue, once per wall-clock second (expirations are in seconds): they must not wait for
    a stream, holding their jobs, behind a stuck connection. */
static void s_drop_expired(pp_h2pool_t *pool, int64_t now_wall_s)
{
    if (pool->queued == 0 || now_wall_s == pool->expiry_scan_s) return;
    pool->expiry_scan_s = now_wall_s;
    size_t mask = pool->q_cap - 1, n = pool->queued, kept = 0;
    pp_apns_notif_t **gone = malloc(n * sizeof *gone);
    size_t n_gone = 0;
    for (size_t k = 0; k < n; k++) {
        s_entry_t e = pool->q[(pool->q_head + k) & mask];
        if (gone && s_expired(e.n, now_wall_s))
            gone[n_gone++] = e.n;
        else
            pool->q[(pool->q_head + kept++) & mask] = e;
    }
    pool->queued = kept;
    /* Callbacks last: the owner may push into this pool from them. */
    for (size_t k = 0; k < n_gone; k++)
        pool->cb->on_drop(pool->owner, pool, gone[k], "expired");
    free(gone);
}

/*  When the queue's wait is next worth checking: its oldest entry's deadline, but not
    before the pool has sent nothing for request_timeout_ms (a queue that drains is not
    stuck). UINT64_MAX when empty or without deadlines. */
static uint64_t s_queue_deadline(const pp_h2pool_t *pool)
{
    if (pool->queued == 0 || !pool->cfg.request_timeout_ms) return UINT64_MAX;
    uint64_t from = pool->q_oldest_ms > pool->last_sent_ms ? pool->q_oldest_ms : pool->last_sent_ms;
    return from + pool->cfg.request_timeout_ms;
}

/*  Hands back every entry that waited request_timeout_ms, keeping the others in order.
    Runs only when the pool is stuck (see s_queue_deadline), so a full scan is fine; it
    also makes q_oldest_ms exact again. */
static void s_expire_queue(pp_h2pool_t *pool, uint64_t now_ms)
{
    if (s_queue_deadline(pool) > now_ms) return;
    size_t mask = pool->q_cap - 1, n = pool->queued, kept = 0;
    uint64_t oldest = UINT64_MAX;
    s_entry_t *late = malloc(n * sizeof *late);
    size_t n_late = 0;
    for (size_t k = 0; k < n; k++) {
        s_entry_t e = pool->q[(pool->q_head + k) & mask];
        if (late && e.queued_ms + pool->cfg.request_timeout_ms <= now_ms) {
            late[n_late++] = e;
            continue;
        }
        if (e.queued_ms < oldest) oldest = e.queued_ms;
        pool->q[(pool->q_head + kept++) & mask] = e;
    }
    pool->queued = kept;
    pool->q_oldest_ms = oldest;
    /* Callbacks last: the owner may push into this pool from them. */
    for (size_t k = 0; k < n_late; k++)
        pool->cb->on_timeout(pool->owner, pool, late[k].n, "queue", now_ms - late[k].queued_ms);
    free(late);
}

/*  A READY connection that allows no stream at all (SETTINGS_MAX_CONCURRENT_STREAMS 0) is
    useless: once it has been so for request_timeout_ms, it is replaced when notifications
    wait (they may wait in the retry queue in between: the clock runs on regardless). */
static void s_check_no_streams(pp_h2pool_t *pool, s_slot_t *s, uint64_t now_ms)
{
    pp_h2conn_t *c = s->c;
    bool useless = pool->cfg.request_timeout_ms && pp_h2conn_state(c) == PP_H2_READY &&
                   pp_h2conn_settings_received(c) && pp_h2conn_max_streams(c) == 0 &&
                   pp_h2conn_in_flight(c) == 0;
    if (!useless) {
        s->no_streams_ms = 0;
        return;
    }
    if (!s->no_streams_ms) s->no_streams_ms = now_ms ? now_ms : 1;
    if (pool->queued == 0 || now_ms - s->no_streams_ms < pool->cfg.request_timeout_ms) return;
    pp_warn("conn_no_streams", "pool=%s waited_ms=%llu queued=%zu effect=\"connection replaced\"",
            pool->label, (unsigned long long)(now_ms - s->no_streams_ms), pool->queued);
    s->no_streams_ms = 0;
    pp_h2conn_close(c, "no_streams");
}

/* ---- connections ------------------------------------------------------------------ */

static uint64_t s_backoff_ms(const pp_h2pool_t *pool, unsigned fails)
{
    if (fails == 0) return 0;
    uint64_t d = pool->cfg.reconnect_min_ms;
    for (unsigned i = 1; i < fails && d < pool->cfg.reconnect_max_ms; i++)
        d *= 2;
    if (d > pool->cfg.reconnect_max_ms) d = pool->cfg.reconnect_max_ms;
    /* Jitter (50-100%) so that many senders do not reconnect in step. */
    return d / 2 + (uint64_t)(rand() % (int)(d / 2 + 1));
}

static void s_reap(pp_h2pool_t *pool, s_slot_t *s, uint64_t now_ms)
{
    const char *why = pp_h2conn_close_reason(s->c);
    if (!strcmp(why, "timeouts")) pp_metric_inc(pool->cfg.replaced_timeouts);
    if (!strcmp(why, "no_streams")) pp_metric_inc(pool->cfg.replaced_no_streams);
    s->no_streams_ms = 0;
    bool healthy = pp_h2conn_had_response(s->c);
    s->fails = healthy ? 0 : s->fails + 1;
    if (!healthy) s->addr_index++; /* try the host's next address */
    s->next_connect_ms = now_ms + s_backoff_ms(pool, s->fails);
    pp_info("conn_lost", "pool=%s reason=%s fails=%u reconnect_in_ms=%llu", pool->label,
            pp_h2conn_close_reason(s->c), s->fails,
            (unsigned long long)(s->next_connect_ms - now_ms));
    pp_h2conn_destroy(&s->c);
}

static void s_connect(pp_h2pool_t *pool, int i, uint64_t now_ms)
{
    s_slot_t *s = &pool->slots[i];
    char label[300];
    snprintf(label, sizeof label, "%s#%d", pool->label, i);
    pp_h2conn_config_t cc = {pool->host,
                             pool->cfg.port,
                             pool->cfg.app->ssl_ctx,
                             s->addr_index,
                             pool->cfg.ping_interval_ms,
                             pool->cfg.timeout_ms,
                             pool->cfg.request_timeout_ms,
                             pool->cfg.max_timeouts,
                             label};
    if (s->ever_opened) pp_metric_inc(pool->cfg.reconnects);
    s->ever_opened = true;
    s->c = pp_h2conn_new(&cc, &s_conn_cb, pool);
    if (!s->c) {
        s->fails++;
        s->addr_index++;
        s->next_connect_ms = now_ms + s_backoff_ms(pool, s->fails);
    }
}

void pp_h2pool_run(pp_h2pool_t *pool, uint64_t now_ms, int64_t now_wall_s)
{
    for (int i = 0; i < pool->n_slots; i++) {
        s_slot_t *s = &pool->slots[i];
        if (s->c) {
            pp_h2conn_tick(s->c, now_ms);
            if (pp_h2conn_state(s->c) != PP_H2_CLOSED) s_check_no_streams(pool, s, now_ms);
            if (pp_h2conn_state(s->c) == PP_H2_CLOSED) s_reap(pool, s, now_ms);
        }
        if (!s->c && pool->active && now_ms >= s->next_connect_ms) s_connect(pool, i, now_ms);
    }
    s_drop_expired(pool, now_wall_s);
    s_dispatch(pool, now_wall_s, now_ms);
    s_expire_queue(pool, now_ms);
    for (int i = 0; i < pool->n_slots; i++) {
        s_slot_t *s = &pool->slots[i];
        if (s->c) {
            pp_h2conn_flush(s->c);
            if (pp_h2conn_state(s->c) == PP_H2_CLOSED) s_reap(pool, s, now_ms);
        }
    }
}

uint64_t pp_h2pool_next_timer(const pp_h2pool_t *pool)
{
    uint64_t t = UINT64_MAX;
    for (int i = 0; i < pool->n_slots; i++) {
        const s_slot_t *s = &pool->slots[i];
        uint64_t x = s->c ? pp_h2conn_next_timer(s->c) : (pool->active ? s->next_connect_ms : t);
        if (x < t) t = x;
        if (s->c && s->no_streams_ms && pool->queued > 0 &&
            s->no_streams_ms + pool->cfg.request_timeout_ms < t)
            t = s->no_streams_ms + pool->cfg.request_timeout_ms;
    }
    uint64_t q = s_queue_deadline(pool);
    return q < t ? q : t;
}

size_t pp_h2pool_fill_poll(pp_h2pool_t *pool, zmq_pollitem_t *items, size_t max)
{
    size_t k = 0;
    for (int i = 0; i < pool->n_slots && k < max; i++) {
        s_slot_t *s = &pool->slots[i];
        if (!s->c || pp_h2conn_fd(s->c) < 0) continue;
        items[k].socket = NULL;
        items[k].fd = pp_h2conn_fd(s->c);
        /* zmq_poll has its own flag values, not poll(2)'s. */
        short ev = pp_h2conn_events(s->c);
        items[k].events =
            (short)(((ev & POLLIN) ? ZMQ_POLLIN : 0) | ((ev & POLLOUT) ? ZMQ_POLLOUT : 0));
        items[k].revents = 0;
        pool->poll_slot[k] = i;
        k++;
    }
    pool->n_poll = (int)k;
    return k;
}

void pp_h2pool_on_poll(pp_h2pool_t *pool, const zmq_pollitem_t *items, size_t n, uint64_t now_ms)
{
    for (size_t k = 0; k < n && (int)k < pool->n_poll; k++) {
        s_slot_t *s = &pool->slots[pool->poll_slot[k]];
        short r = items[k].revents;
        if (r && s->c)
            pp_h2conn_on_io(s->c,
                            (short)(((r & ZMQ_POLLIN) ? POLLIN : 0) |
                                    ((r & ZMQ_POLLOUT) ? POLLOUT : 0) |
                                    ((r & ZMQ_POLLERR) ? POLLERR : 0)),
                            now_ms);
    }
}

void pp_h2pool_close_all(pp_h2pool_t *pool)
{
    for (int i = 0; i < pool->n_slots; i++)
        if (pool->slots[i].c) pp_h2conn_close(pool->slots[i].c, "shutdown");
}

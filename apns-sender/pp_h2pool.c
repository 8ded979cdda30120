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
    unsigned fails;
    unsigned addr_index;
    bool ever_opened;
} s_slot_t;

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
    pp_apns_notif_t *head, *tail;
    size_t queued;
    int poll_slot[S_MAX_CONNS];
    int n_poll;
    unsigned rr; /* round-robin start for dispatch */
};

static void s_on_ready(void *owner, pp_h2conn_t *c);
static void s_on_response(void *owner, pp_h2conn_t *c, void *req, int status, const char *body,
                          size_t body_len);
static void s_on_unsent(void *owner, pp_h2conn_t *c, void *req, uint32_t error_code);
static void s_on_goaway(void *owner, pp_h2conn_t *c, uint32_t error_code, const char *reason);

static const pp_h2conn_callbacks_t s_conn_cb = {s_on_ready, s_on_response, s_on_unsent,
                                                s_on_goaway};

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
    while (pool->head) {
        pp_apns_notif_t *n = pool->head;
        pool->head = n->next;
        pp_apns_notif_destroy(&n);
    }
    free(pool);
    *p = NULL;
}

void pp_h2pool_push(pp_h2pool_t *pool, pp_apns_notif_t *n)
{
    n->next = NULL;
    if (pool->tail)
        pool->tail->next = n;
    else
        pool->head = n;
    pool->tail = n;
    pool->queued++;
    pool->active = true;
}

void pp_h2pool_push_front(pp_h2pool_t *pool, pp_apns_notif_t *n)
{
    n->next = pool->head;
    pool->head = n;
    if (!pool->tail) pool->tail = n;
    pool->queued++;
    pool->active = true;
}

static pp_apns_notif_t *s_pop(pp_h2pool_t *pool)
{
    pp_apns_notif_t *n = pool->head;
    if (!n) return NULL;
    pool->head = n->next;
    if (!pool->head) pool->tail = NULL;
    pool->queued--;
    n->next = NULL;
    return n;
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

static bool s_expired(const pp_apns_notif_t *n, int64_t now_wall_s)
{
    return n->msg->expiration > 0 && now_wall_s > n->msg->expiration;
}

static void s_dispatch(pp_h2pool_t *pool, int64_t now_wall_s)
{
    if (!pool->head) return;
    if (pool->cfg.app->auth == PP_APNS_AUTH_TOKEN && !pool->cfg.app->cred->token[0])
        return; /* no provider token yet (signing failed): keep them queued */
    size_t caps[S_MAX_CONNS];
    size_t total = 0;
    for (int i = 0; i < pool->n_slots; i++) {
        caps[i] = pool->slots[i].c ? pp_h2conn_capacity(pool->slots[i].c) : 0;
        total += caps[i];
    }
    /* Round robin one request at a time, so that several connections share the load. */
    while (total > 0 && pool->head) {
        int i = (int)(pool->rr++ % (unsigned)pool->n_slots);
        if (caps[i] == 0) continue;
        pp_apns_notif_t *n = s_pop(pool);
        if (s_expired(n, now_wall_s)) {
            pool->cb->on_drop(pool->owner, pool, n, "expired");
            continue;
        }
        if (s_submit(pool, pool->slots[i].c, n) != 0) {
            pp_h2pool_push_front(pool, n);
            total -= caps[i];
            caps[i] = 0;
            continue;
        }
        pp_metric_inc(pool->cfg.sent);
        caps[i]--;
        total--;
    }
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
            if (pp_h2conn_state(s->c) == PP_H2_CLOSED) s_reap(pool, s, now_ms);
        }
        if (!s->c && pool->active && now_ms >= s->next_connect_ms) s_connect(pool, i, now_ms);
    }
    s_dispatch(pool, now_wall_s);
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
    }
    return t;
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

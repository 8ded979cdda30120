/*  pp_dispatch: hub side of the credit-based link (docs/link-protocol.md). */
#include "pp_dispatch.h"

#include "pp_log.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

/*  Most messages read per pp_dispatch_on_readable call, so that one chatty pool cannot
    starve the broker's other sockets; zmq_poll reports the socket readable again. */
#define S_MAX_READS 4096
/*  Most jobs sent to one worker before the pump moves on to the next (fairness vs. the
    cost of walking the worker list per job). */
#define S_BATCH 64
/*  A "K" message carries at most this many jobs and bytes of entries (12-byte header +
    body each); a job too big to share a batch goes alone as "J" (zero-copy). Jobs are
    batched because the cost of the link is per ZMQ frame (I/O thread and both ends), not
    per byte: copying small bodies into one frame is cheaper than a frame each. */
#define S_K_MAX_JOBS 64
#define S_K_MAX_BYTES 65536
_Static_assert(S_K_MAX_JOBS <= PP_LINK_BATCH_MAX_JOBS, "a batch the workers take");

enum {
    BAD_COMMAND_SIZE,
    BAD_UNKNOWN_COMMAND,
    BAD_CREDIT_FRAME,
    BAD_ACK_FRAME,
    BAD_HEARTBEAT_FRAME,
    BAD_TOO_MANY_WORKERS,
    BAD_CREDIT_OVERFLOW,
    BAD_OUTPUT_FRAME,
    BAD_OUTPUT_UNREGISTERED,
    BAD_WORKERS_PER_KEY,
    BAD_COUNT
};
static const char *s_bad_names[BAD_COUNT] = {
    "command_size",        "unknown_command",  "credit_frame",    "ack_frame",
    "heartbeat_frame",     "too_many_workers", "credit_overflow", "output_frame",
    "output_unregistered", "workers_per_key"};

/*  Longest User-Id kept per worker: our ZAP handler sets the 40-character Z85 key. A longer
    one (another handler) is cut, so keys sharing a 64-byte prefix would share a cap. */
#define S_USER_MAX 64

/*  One job sent and not yet acknowledged. Slots of a worker are kept in the order sent, so
    their seqs increase and an ack finds its slot by binary search (acks may come out of
    order; acknowledged slots stay as holes until the oldest one is acknowledged). */
typedef struct {
    uint64_t seq;
    bool live;
    zmq_msg_t msg;
} s_slot_t;

typedef struct {
    uint8_t id[256];
    size_t id_len;
    char user[S_USER_MAX + 1]; /* the connection's User-Id ("" without CURVE) */
    uint32_t credit;
    uint64_t last_heard;
    uint64_t last_sent;
    s_slot_t *ring; // hand-written ring: no per-job malloc, seq lookup by binary search
    size_t cap, head, len, live;
} s_worker_t;

struct pp_dispatch_t {
    char pool[32];
    zsock_t *sock;
    void *raw;
    pp_metrics_t *metrics;
    pp_metrics_t *own_metrics;
    uint32_t heartbeat_ms, timeout_ms;
    size_t max_msgs, max_bytes;
    // Pending FIFO, a ring that also takes pushes at the front (requeues): a plain FIFO cannot.
    zmq_msg_t *pend;
    size_t pend_cap, pend_head, pend_len, pend_bytes;
    s_worker_t **workers;
    size_t nworkers, workers_cap, rr;
    size_t in_flight;
    uint64_t credit;
    uint64_t next_seq;
    pp_ratelimit_t rl;
    pp_dispatch_output_fn *output_fn;
    void *output_ctx;
    pp_dispatch_acked_fn *acked_fn;
    void *acked_ctx;
    uint32_t max_per_key; // 0: no cap
    zhashx_t *per_key;    // User-Id -> workers registered with it (as uintptr_t)
    bool not_reading;
    bool stop_reading; // set by the output function for the current on_readable call
    pp_metric_t *m_outputs;
    pp_metric_t *m_sent, *m_acks, *m_requeued, *m_deaths, *m_unknown_acks, *m_moved_acks;
    pp_metric_t *m_workers, *m_pending, *m_in_flight;
    pp_metric_t *m_bad[BAD_COUNT];
};

// ---------------------------------------------------------------- pending FIFO

static int s_pend_grow(pp_dispatch_t *d)
{
    size_t ncap = d->pend_cap ? d->pend_cap * 2 : 1024;
    zmq_msg_t *n = malloc(ncap * sizeof *n);
    if (!n) return -1;
    for (size_t i = 0; i < d->pend_len; i++) {
        zmq_msg_init(&n[i]);
        zmq_msg_move(&n[i], &d->pend[(d->pend_head + i) % d->pend_cap]);
    }
    free(d->pend);
    d->pend = n;
    d->pend_cap = ncap;
    d->pend_head = 0;
    return 0;
}

static int s_pend_push(pp_dispatch_t *d, zmq_msg_t *msg, bool front)
{
    if (d->pend_len == d->pend_cap && s_pend_grow(d) != 0) return -1;
    size_t at;
    if (front) {
        d->pend_head = (d->pend_head + d->pend_cap - 1) % d->pend_cap;
        at = d->pend_head;
    } else {
        at = (d->pend_head + d->pend_len) % d->pend_cap;
    }
    zmq_msg_init(&d->pend[at]);
    zmq_msg_move(&d->pend[at], msg);
    d->pend_len++;
    d->pend_bytes += zmq_msg_size(&d->pend[at]);
    return 0;
}

static zmq_msg_t *s_pend_front(pp_dispatch_t *d)
{
    return d->pend_len ? &d->pend[d->pend_head] : NULL;
}

static void s_pend_drop_front(pp_dispatch_t *d)
{
    zmq_msg_t *m = &d->pend[d->pend_head];
    d->pend_bytes -= zmq_msg_size(m);
    zmq_msg_close(m);
    d->pend_head = (d->pend_head + 1) % d->pend_cap;
    d->pend_len--;
}

// ---------------------------------------------------------------- in-flight ring

static s_slot_t *s_slot(s_worker_t *w, size_t i)
{
    return &w->ring[(w->head + i) % w->cap];
}

/*  Makes room for `more` slots: compacts the holes away when at most half the slots are
    live, else doubles (until they fit). */
static int s_ring_room(s_worker_t *w, size_t more)
{
    if (w->len + more <= w->cap) return 0;
    size_t ncap = w->cap == 0 ? 64 : (w->live * 2 <= w->cap ? w->cap : w->cap * 2);
    while (ncap < w->live + more)
        ncap *= 2;
    s_slot_t *n = malloc(ncap * sizeof *n);
    if (!n) return -1;
    size_t j = 0;
    for (size_t i = 0; i < w->len; i++) {
        s_slot_t *s = s_slot(w, i);
        if (!s->live) continue;
        n[j].seq = s->seq;
        n[j].live = true;
        zmq_msg_init(&n[j].msg);
        zmq_msg_move(&n[j].msg, &s->msg);
        zmq_msg_close(&s->msg);
        j++;
    }
    free(w->ring);
    w->ring = n;
    w->cap = ncap;
    w->head = 0;
    w->len = j;
    return 0;
}

/*  Finds the live slot of seq, or NULL. */
static s_slot_t *s_ring_find(s_worker_t *w, uint64_t seq)
{
    // Jobs of a batch have consecutive seqs and acks come mostly in order: try the slot
    // seq's distance from the oldest one points at before searching.
    if (w->len > 0 && seq >= s_slot(w, 0)->seq && seq - s_slot(w, 0)->seq < w->len) {
        s_slot_t *s = s_slot(w, (size_t)(seq - s_slot(w, 0)->seq));
        if (s->seq == seq) return s->live ? s : NULL;
    }
    size_t lo = 0, hi = w->len;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        s_slot_t *s = s_slot(w, mid);
        if (s->seq == seq) return s->live ? s : NULL;
        if (s->seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

static void s_ring_release(s_worker_t *w, s_slot_t *s)
{
    zmq_msg_close(&s->msg);
    s->live = false;
    w->live--;
    while (w->len > 0 && !s_slot(w, 0)->live) {
        w->head = (w->head + 1) % w->cap;
        w->len--;
    }
}

// ---------------------------------------------------------------- workers

static char *s_hex(const s_worker_t *w, char *out, size_t outlen)
{
    size_t n = w->id_len < (outlen - 1) / 2 ? w->id_len : (outlen - 1) / 2;
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", w->id[i]);
    out[2 * n] = '\0';
    return out;
}

static s_worker_t *s_worker_find(pp_dispatch_t *d, const void *id, size_t len, size_t *index)
{
    // A linear scan: pools have a handful to a few dozen workers, and acks come in batches.
    for (size_t i = 0; i < d->nworkers; i++) {
        s_worker_t *w = d->workers[i];
        if (w->id_len == len && memcmp(w->id, id, len) == 0) {
            if (index) *index = i;
            return w;
        }
    }
    return NULL;
}

static void s_gauges(pp_dispatch_t *d)
{
    pp_metric_set(d->m_workers, (int64_t)d->nworkers);
    pp_metric_set(d->m_pending, (int64_t)d->pend_len);
    pp_metric_set(d->m_in_flight, (int64_t)d->in_flight);
}

/*  Workers registered under user (a User-Id), after adding delta (+1, -1, or 0 to read).
    Workers without a User-Id (CURVE off) are not counted. */
static size_t s_key_count(pp_dispatch_t *d, const char *user, int delta)
{
    if (!user[0]) return 0;
    if (!d->per_key && !(d->per_key = zhashx_new())) return 0;
    size_t n = (size_t)(uintptr_t)zhashx_lookup(d->per_key, user);
    if (delta < 0 && n > 0) n--;
    if (delta > 0) n++;
    if (delta == 0) return n;
    if (n == 0)
        zhashx_delete(d->per_key, user);
    else if (zhashx_lookup(d->per_key, user))
        zhashx_update(d->per_key, user, (void *)(uintptr_t)n);
    else
        zhashx_insert(d->per_key, user, (void *)(uintptr_t)n);
    return n;
}

/*  Puts the worker's unacknowledged jobs back at the front of the pending FIFO, oldest
    first, and forgets it. */
static void s_worker_forget(pp_dispatch_t *d, size_t index, const char *why)
{
    s_worker_t *w = d->workers[index];
    size_t requeued = 0;
    for (size_t i = w->len; i-- > 0;) {
        s_slot_t *s = s_slot(w, i);
        if (!s->live) continue;
        if (s_pend_push(d, &s->msg, true) == 0) requeued++;
        zmq_msg_close(&s->msg);
    }
    d->in_flight -= w->live;
    d->credit -= w->credit;
    pp_metric_add(d->m_requeued, requeued);
    char hex[40];
    if (strcmp(why, "left") == 0)
        pp_info("link_worker_left", "pool=%s worker=%s requeued=%zu", d->pool,
                s_hex(w, hex, sizeof hex), requeued);
    else
        pp_warn("link_worker_dead", "pool=%s worker=%s reason=%s requeued=%zu", d->pool,
                s_hex(w, hex, sizeof hex), why, requeued);
    if (strcmp(why, "left") != 0) pp_metric_inc(d->m_deaths);
    s_key_count(d, w->user, -1);
    free(w->ring);
    free(w);
    d->workers[index] = d->workers[--d->nworkers];
    s_gauges(d);
}

static s_worker_t *s_worker_add(pp_dispatch_t *d, const void *id, size_t len, const char *user,
                                const char *name, uint64_t now)
{
    if (d->nworkers == d->workers_cap) {
        size_t ncap = d->workers_cap ? d->workers_cap * 2 : 8;
        s_worker_t **n = realloc(d->workers, ncap * sizeof *n);
        if (!n) return NULL;
        d->workers = n;
        d->workers_cap = ncap;
    }
    s_worker_t *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    memcpy(w->id, id, len);
    w->id_len = len;
    snprintf(w->user, sizeof w->user, "%s", user ? user : "");
    w->last_heard = now;
    w->last_sent = now;
    d->workers[d->nworkers++] = w;
    size_t of_key = s_key_count(d, w->user, +1);
    char hex[40], q[S_USER_MAX + 8], qn[S_USER_MAX + 8];
    pp_info("link_worker_joined",
            "pool=%s worker=%s user=%s key_name=%s workers=%zu workers_of_user=%zu", d->pool,
            s_hex(w, hex, sizeof hex),
            pp_log_quote(w->user, strlen(w->user), S_USER_MAX, q, sizeof q),
            pp_log_quote(name, strlen(name), S_USER_MAX, qn, sizeof qn), d->nworkers, of_key);
    s_gauges(d);
    return w;
}

// ---------------------------------------------------------------- lifecycle

/*  The CURVE role whose keys may connect to a pool: the broker's pools are named after
    their stage. Any other name (tests, benches) lets any allowed key in. */
static pp_role_t s_role_of_pool(const char *pool)
{
    if (strcmp(pool, "resolve") == 0) return PP_ROLE_RESOLVERS;
    if (strcmp(pool, "apns") == 0) return PP_ROLE_APNS_SENDERS;
    if (strcmp(pool, "mqtt") == 0) return PP_ROLE_MQTT_SENDERS;
    return PP_ROLE_ANY;
}

pp_dispatch_t *pp_dispatch_new(const char *pool_name, const char *endpoint, pp_curve_t *curve,
                               pp_metrics_t *metrics, uint32_t heartbeat_ms, uint32_t timeout_ms,
                               size_t max_msgs, size_t max_bytes)
{
    return pp_dispatch_new_rcvhwm(pool_name, endpoint, curve, metrics, heartbeat_ms, timeout_ms,
                                  max_msgs, max_bytes, PP_DISPATCH_DEFAULT_RCVHWM);
}

pp_dispatch_t *pp_dispatch_new_rcvhwm(const char *pool_name, const char *endpoint,
                                      pp_curve_t *curve, pp_metrics_t *metrics,
                                      uint32_t heartbeat_ms, uint32_t timeout_ms, size_t max_msgs,
                                      size_t max_bytes, int rcvhwm)
{
    if (!pool_name || !endpoint || max_msgs == 0 || max_bytes == 0 || rcvhwm < 1) {
        pp_error("link_dispatch_invalid", "pool=%s", pool_name ? pool_name : "-");
        return NULL;
    }
    pp_dispatch_t *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    snprintf(d->pool, sizeof d->pool, "%s", pool_name);
    d->heartbeat_ms = heartbeat_ms ? heartbeat_ms : PP_LINK_DEFAULT_HEARTBEAT_MS;
    d->timeout_ms = timeout_ms ? timeout_ms : 3 * d->heartbeat_ms;
    d->max_msgs = max_msgs;
    d->max_bytes = max_bytes;
    // Sequence numbers start at the wall clock in microseconds times 4096, so a restarted
    // hub never reuses the old one's seqs (unless it sent over 4096 jobs per microsecond),
    // and a late ack for an old job cannot acknowledge a new one by mistake.
    d->next_seq = pp_wall_us() << 12;
    d->rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 10);
    if (!metrics) metrics = d->own_metrics = pp_metrics_new("dispatch");
    d->metrics = metrics;
    char l[96];
    snprintf(l, sizeof l, "pool=\"%s\"", d->pool);
    d->m_sent = pp_metrics_counter(metrics, "link_jobs_sent_total", "Jobs sent to workers", l);
    d->m_outputs = pp_metrics_counter(metrics, "link_outputs_total",
                                      "Outputs (jobs for other pools) received from workers", l);
    d->m_acks = pp_metrics_counter(metrics, "link_acks_total", "Jobs acknowledged by workers", l);
    d->m_requeued = pp_metrics_counter(metrics, "link_requeued_total",
                                       "Unacknowledged jobs of lost workers sent again", l);
    d->m_deaths = pp_metrics_counter(metrics, "link_worker_deaths_total",
                                     "Workers declared dead (timeout or unreachable)", l);
    d->m_unknown_acks = pp_metrics_counter(metrics, "link_unknown_acks_total",
                                           "Acks for jobs the worker does not hold", l);
    d->m_moved_acks = pp_metrics_counter(
        metrics, "link_acks_other_id_total",
        "Acks taken for jobs sent to another routing id (a worker that reconnected)", l);
    d->m_workers = pp_metrics_gauge(metrics, "link_workers", "Workers known", l);
    d->m_pending = pp_metrics_gauge(metrics, "link_pending", "Jobs waiting for credit", l);
    d->m_in_flight = pp_metrics_gauge(metrics, "link_in_flight", "Jobs sent, not acked", l);
    for (int k = 0; k < BAD_COUNT; k++) {
        char kl[128];
        snprintf(kl, sizeof kl, "pool=\"%s\",kind=\"%s\"", d->pool, s_bad_names[k]);
        d->m_bad[k] = pp_metrics_counter(metrics, "link_bad_messages_total",
                                         "Malformed messages from workers", kl);
    }
    d->sock = zsock_new(ZMQ_ROUTER);
    if (!d->sock) goto fail;
    d->raw = zsock_resolve(d->sock);
    zsock_set_router_mandatory(d->sock, 1);
    // Credit bounds what is queued per worker; the HWMs only guard against a misbehaving one.
    zsock_set_sndhwm(d->sock, 2 * PP_LINK_MAX_WINDOW);
    // Set before the bind: libzmq copies a listener's options when it binds.
    zsock_set_rcvhwm(d->sock, rcvhwm);
    zsock_set_linger(d->sock, 0);
    if (pp_curve_apply_role(curve, d->raw, s_role_of_pool(d->pool)) != 0) goto fail;
    // A hub restarted in the same process (tests, a reload) finds its old socket still
    // closing in libzmq's I/O thread for a moment: retry EADDRINUSE for up to a second.
    int rc = zsock_bind(d->sock, "%s", endpoint);
    for (int i = 0; rc < 0 && errno == EADDRINUSE && i < 20; i++) {
        zclock_sleep(50);
        rc = zsock_bind(d->sock, "%s", endpoint);
    }
    if (rc < 0) {
        pp_error("link_bind_failed", "pool=%s endpoint=%s error=\"%s\"", d->pool, endpoint,
                 zmq_strerror(errno));
        goto fail;
    }
    pp_info("link_dispatch_started", "pool=%s endpoint=%s heartbeat_ms=%u timeout_ms=%u", d->pool,
            endpoint, d->heartbeat_ms, d->timeout_ms);
    s_gauges(d);
    return d;
fail:
    pp_dispatch_destroy(&d);
    return NULL;
}

void pp_dispatch_destroy(pp_dispatch_t **p)
{
    if (!p || !*p) return;
    pp_dispatch_t *d = *p;
    zsock_destroy(&d->sock);
    for (size_t i = 0; i < d->nworkers; i++) {
        s_worker_t *w = d->workers[i];
        for (size_t j = 0; j < w->len; j++) {
            s_slot_t *s = s_slot(w, j);
            if (s->live) zmq_msg_close(&s->msg);
        }
        free(w->ring);
        free(w);
    }
    free(d->workers);
    zhashx_destroy(&d->per_key);
    while (d->pend_len)
        s_pend_drop_front(d);
    free(d->pend);
    pp_metrics_destroy(&d->own_metrics);
    free(d);
    *p = NULL;
}

void *pp_dispatch_socket(pp_dispatch_t *d)
{
    return d->raw;
}

// ---------------------------------------------------------------- enqueue and send

bool pp_dispatch_full(const pp_dispatch_t *d)
{
    return d->pend_len >= d->max_msgs || d->pend_bytes >= d->max_bytes;
}

int pp_dispatch_enqueue(pp_dispatch_t *d, zmq_msg_t *job)
{
    if (pp_dispatch_full(d) || s_pend_push(d, job, false) != 0) return -1;
    pp_metric_set(d->m_pending, (int64_t)d->pend_len);
    return 0;
}

int pp_dispatch_enqueue_force(pp_dispatch_t *d, zmq_msg_t *job)
{
    if (s_pend_push(d, job, false) != 0) return -1;
    pp_metric_set(d->m_pending, (int64_t)d->pend_len);
    return 0;
}

/*  Moves the head of the pending FIFO into w's next in-flight slot (room made before). */
static void s_take_front(pp_dispatch_t *d, s_worker_t *w, uint64_t seq, uint64_t now)
{
    zmq_msg_t *job = s_pend_front(d);
    s_slot_t *s = &w->ring[(w->head + w->len) % w->cap];
    s->seq = seq;
    s->live = true;
    zmq_msg_init(&s->msg);
    zmq_msg_move(&s->msg, job);
    w->len++;
    w->live++;
    d->pend_bytes -= zmq_msg_size(&s->msg);
    zmq_msg_close(job);
    d->pend_head = (d->pend_head + 1) % d->pend_cap;
    d->pend_len--;
    w->credit--;
    d->credit--;
    d->in_flight++;
    w->last_sent = now;
}

/*  How many jobs from the head of the pending FIFO fit one "K" for w (at most max), and
    the size of that frame in *bytes. */
static size_t s_batch_count(pp_dispatch_t *d, size_t max, size_t *bytes)
{
    size_t n = 0, total = 0;
    while (n < max && n < d->pend_len) {
        size_t sz = zmq_msg_size(&d->pend[(d->pend_head + n) % d->pend_cap]);
        if (total + PP_LINK_BATCH_ENTRY + sz > S_K_MAX_BYTES) break;
        total += PP_LINK_BATCH_ENTRY + sz;
        n++;
    }
    *bytes = total;
    return n;
}

/*  Sends the head of the pending FIFO to w: up to max jobs in one "K" when more than one
    fits, else the head alone as "J". Returns the number of jobs sent (> 0), or -1 with
    errno (EAGAIN, EHOSTUNREACH, ...) and the jobs still pending. */
static int s_send_jobs(pp_dispatch_t *d, s_worker_t *w, size_t max, uint64_t now)
{
    size_t bytes = 0;
    size_t n = s_batch_count(d, max, &bytes);
    if (n == 0) n = 1; // a job too big for a batch goes alone as "J"
    if (s_ring_room(w, n) != 0) {
        errno = ENOMEM;
        return -1;
    }
    uint64_t seq = d->next_seq;
    zmq_msg_t payload;
    if (n == 1) {
        zmq_msg_init(&payload);
        zmq_msg_copy(&payload, s_pend_front(d)); // refcounted over 33 bytes, not a byte copy
    } else {
        if (zmq_msg_init_size(&payload, bytes) != 0) {
            errno = ENOMEM;
            return -1;
        }
        uint8_t *p = zmq_msg_data(&payload);
        for (size_t i = 0; i < n; i++) {
            zmq_msg_t *job = &d->pend[(d->pend_head + i) % d->pend_cap];
            size_t sz = zmq_msg_size(job);
            pp_link_put_u64(p, seq + i);
            pp_link_put_u32(p + 8, (uint32_t)sz);
            if (sz) memcpy(p + PP_LINK_BATCH_ENTRY, zmq_msg_data(job), sz);
            p += PP_LINK_BATCH_ENTRY + sz;
        }
    }
    uint8_t seqb[8];
    pp_link_put_u64(seqb, seq);
    // ROUTER_MANDATORY: the routing frame fails with EHOSTUNREACH for a gone peer and
    // EAGAIN at its HWM; once it is taken, the rest of the message is too.
    int rc = zmq_send(d->raw, w->id, w->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    char cmd = n == 1 ? PP_LINK_JOB : PP_LINK_BATCH;
    if (rc >= 0) rc = zmq_send(d->raw, &cmd, 1, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (rc >= 0 && n == 1) rc = zmq_send(d->raw, seqb, 8, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    if (rc < 0 || zmq_msg_send(&payload, d->raw, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&payload);
        errno = e;
        return -1;
    }
    d->next_seq += n;
    for (size_t i = 0; i < n; i++)
        s_take_front(d, w, seq + i, now);
    return (int)n;
}

size_t pp_dispatch_pump(pp_dispatch_t *d)
{
    size_t sent = 0, idle = 0;
    uint64_t now = pp_mono_ms();
    // idle counts workers visited in a row that took nothing; a whole round of them ends.
    while (d->pend_len > 0 && d->credit > 0 && d->nworkers > 0 && idle < d->nworkers) {
        if (d->rr >= d->nworkers) d->rr = 0;
        s_worker_t *w = d->workers[d->rr];
        size_t n = 0;
        while (n < S_BATCH && w->credit > 0 && d->pend_len > 0) {
            size_t max = S_BATCH - n < w->credit ? S_BATCH - n : w->credit;
            int k = s_send_jobs(d, w, max < S_K_MAX_JOBS ? max : S_K_MAX_JOBS, now);
            if (k < 0) break;
            n += (size_t)k;
        }
        if (n == 0 && w->credit > 0 && d->pend_len > 0 && errno == EHOSTUNREACH) {
            s_worker_forget(d, d->rr, "unreachable");
            idle = 0;
            continue; // another worker now sits at d->rr
        }
        sent += n;
        idle = n ? 0 : idle + 1;
        d->rr++;
    }
    if (sent) {
        pp_metric_add(d->m_sent, sent);
        s_gauges(d);
    }
    return sent;
}

// ---------------------------------------------------------------- worker messages

/*  The User-Id of the connection a message came on (f: its frames, nf of them), or "":
    libzmq attaches the ZAP handler's answer to every frame read from that connection (the
    ROUTER's routing id frame included); without CURVE there is none. */
static const char *s_user(zmq_msg_t *f, size_t nf)
{
    const char *u = zmq_msg_gets(&f[0], "User-Id");
    if (!u && nf > 1) u = zmq_msg_gets(&f[1], "User-Id");
    return u ? u : "";
}

/*  f: the message's frames (routing id first), nframes of them. */
static void s_bad(pp_dispatch_t *d, int kind, zmq_msg_t *f, size_t nframes)
{
    pp_metric_inc(d->m_bad[kind]);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&d->rl, &suppressed)) {
        s_worker_t tmp;
        tmp.id_len = zmq_msg_size(&f[0]) > 255 ? 255 : zmq_msg_size(&f[0]);
        memcpy(tmp.id, zmq_msg_data(&f[0]), tmp.id_len);
        const char *user = s_user(f, nframes < 4 ? nframes : 4);
        char hex[40], q[S_USER_MAX + 8];
        pp_warn("link_bad_message", "pool=%s worker=%s user=%s kind=%s frames=%zu suppressed=%u",
                d->pool, s_hex(&tmp, hex, sizeof hex),
                pp_log_quote(user, strlen(user), S_USER_MAX, q, sizeof q), s_bad_names[kind],
                nframes, suppressed);
    }
}

static void s_send_who(pp_dispatch_t *d, const zmq_msg_t *id)
{
    // Failures do not matter: the worker asks again with its next heartbeat.
    char cmd = PP_LINK_WHO;
    if (zmq_send(d->raw, zmq_msg_data((zmq_msg_t *)id), zmq_msg_size(id),
                 ZMQ_SNDMORE | ZMQ_DONTWAIT) >= 0)
        zmq_send(d->raw, &cmd, 1, ZMQ_DONTWAIT);
}

/*  Sends w a heartbeat ("H"), with our heartbeat_ms when greeting (a worker just
    registered: it checks that its own is the same). Returns 0, or -1 with errno. */
static int s_send_heartbeat(pp_dispatch_t *d, s_worker_t *w, bool greeting, uint64_t now)
{
    char cmd = PP_LINK_HEARTBEAT;
    uint8_t hb[4];
    pp_link_put_u32(hb, d->heartbeat_ms);
    if (zmq_send(d->raw, w->id, w->id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) return -1;
    // Once the routing frame is taken, the rest of the message is too.
    zmq_send(d->raw, &cmd, 1, ZMQ_DONTWAIT | (greeting ? ZMQ_SNDMORE : 0));
    if (greeting) zmq_send(d->raw, hb, sizeof hb, ZMQ_DONTWAIT);
    w->last_sent = now;
    return 0;
}

/*  A link of key user asks to register while the key is at its cap. One of the key's
    workers may be a connection that is gone: a worker that reconnected under a new routing
    id (pp_link opens a socket per connection) leaves its old entry until the next
    heartbeat finds it unreachable or its timeout, and would be refused meanwhile. Each of
    the key's workers not sent anything for S_PROBE_GAP_MS gets a heartbeat now, and one
    that libzmq says is gone (EHOSTUNREACH under ROUTER_MANDATORY) is forgotten (its jobs
    requeued, as at its timeout). The gap bounds what a key that keeps sending "R" at its
    cap can make the hub send: one heartbeat per worker of its own per gap. */
#define S_PROBE_GAP_MS 50
static void s_forget_gone_of_key(pp_dispatch_t *d, const char *user, uint64_t now)
{
    for (size_t i = 0; i < d->nworkers;) {
        s_worker_t *w = d->workers[i];
        if (strcmp(w->user, user) == 0 && now >= w->last_sent + S_PROBE_GAP_MS &&
            s_send_heartbeat(d, w, false, now) != 0 && errno == EHOSTUNREACH) {
            s_worker_forget(d, i, "unreachable");
            continue;
        }
        i++;
    }
}

/*  Finds the live slot of seq in any worker but skip (NULL: any), with its worker. */
static s_slot_t *s_find_elsewhere(pp_dispatch_t *d, const s_worker_t *skip, uint64_t seq,
                                  s_worker_t **owner)
{
    for (size_t i = 0; i < d->nworkers; i++) {
        s_worker_t *o = d->workers[i];
        if (o == skip || o->live == 0) continue;
        s_slot_t *s = s_ring_find(o, seq);
        if (s) {
            *owner = o;
            return s;
        }
    }
    return NULL;
}

/*  Acks from worker w (NULL: a routing id we do not know). A seq w does not hold is looked
    for in the other workers: a worker whose connection broke comes back on a new socket
    with a new routing id (common/pp_link.c, s_open) and acks, from there, jobs it received
    under its old id, which we still count in flight there until that id is declared dead.
    Seqs are unique in this hub (one counter for all workers, never reused), so a seq names
    one job whoever acks it, and taking the ack spares a duplicate. Workers of a pool are
    trusted alike (the same CURVE role, common/pp_zap.h), so a worker acking a job it was
    not sent is not a hole we open. An ack found nowhere (the old id was declared dead and
    its jobs requeued meanwhile, a hub restart, a duplicate ack) is counted in
    link_unknown_acks_total when it comes from a known worker: that job is (or was) done
    again elsewhere, which at-least-once allows. */
static void s_on_acks(pp_dispatch_t *d, s_worker_t *w, const uint8_t *b, size_t n)
{
    size_t ok = 0, moved = 0, unknown = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t seq = pp_link_get_u64(b + 8 * i);
        s_worker_t *owner = w;
        s_slot_t *s = w ? s_ring_find(w, seq) : NULL;
        if (!s && (s = s_find_elsewhere(d, w, seq, &owner)) != NULL) moved++;
        if (!s) {
            unknown++;
            continue;
        }
        if (d->acked_fn) d->acked_fn(d->acked_ctx, &s->msg);
        s_ring_release(owner, s);
        ok++;
    }
    d->in_flight -= ok;
    pp_metric_add(d->m_acks, ok);
    pp_metric_add(d->m_moved_acks, moved);
    if (unknown && w) {
        // Normal after a hub restart (acks for the old hub's jobs) or after a worker's
        // reconnect (its old id's jobs were requeued first); a bug or hostile if not.
        pp_metric_add(d->m_unknown_acks, unknown);
        uint32_t suppressed;
        char hex[40];
        if (pp_ratelimit_allow(&d->rl, &suppressed))
            pp_info("link_unknown_acks", "pool=%s worker=%s count=%zu suppressed=%u", d->pool,
                    s_hex(w, hex, sizeof hex), unknown, suppressed);
    }
    if (moved) {
        uint32_t suppressed;
        char hex[40];
        if (pp_ratelimit_allow(&d->rl, &suppressed))
            pp_info("link_acks_other_id", "pool=%s worker=%s count=%zu suppressed=%u", d->pool,
                    w ? s_hex(w, hex, sizeof hex) : "unknown", moved, suppressed);
    }
}

/*  f[0] routing id, f[1] command, f[2] argument if any; nf frames in all. */
static void s_handle(pp_dispatch_t *d, zmq_msg_t *f, size_t nf, uint64_t now)
{
    if (nf < 2 || zmq_msg_size(&f[1]) != 1) {
        s_bad(d, BAD_COMMAND_SIZE, f, nf);
        return;
    }
    char cmd = *(const char *)zmq_msg_data(&f[1]);
    switch (cmd) {
    case PP_LINK_CREDIT:
        if (nf != 3 || zmq_msg_size(&f[2]) != 4) {
            s_bad(d, BAD_CREDIT_FRAME, f, nf);
            return;
        }
        break;
    case PP_LINK_ACKS:
        if (nf != 3 || zmq_msg_size(&f[2]) == 0 || zmq_msg_size(&f[2]) % 8 != 0 ||
            zmq_msg_size(&f[2]) / 8 > PP_LINK_MAX_ACKS) {
            s_bad(d, BAD_ACK_FRAME, f, nf);
            return;
        }
        break;
    case PP_LINK_OUTPUT:
        if (!d->output_fn) {
            s_bad(d, BAD_UNKNOWN_COMMAND, f, nf);
            return;
        }
        if (nf != 3) {
            s_bad(d, BAD_OUTPUT_FRAME, f, nf);
            return;
        }
        break;
    case PP_LINK_HEARTBEAT:
    case PP_LINK_BYE:
    case PP_LINK_NUDGE:
        if (nf != 2) {
            s_bad(d, BAD_HEARTBEAT_FRAME, f, nf);
            return;
        }
        break;
    default: {
        s_bad(d, BAD_UNKNOWN_COMMAND, f, nf);
        return;
    }
    }
    size_t index = 0;
    s_worker_t *w = s_worker_find(d, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), &index);
    if (cmd == PP_LINK_OUTPUT) {
        if (!w) {
            // Outputs are jobs for other pools: only a registered worker may inject them.
            // Before issue 11 they were forwarded from anyone (the case meant was a worker
            // whose hub restarted while it held a job); that let any key that reached this
            // socket inject APNS and MQTT jobs. The "W" makes a real worker register again;
            // the output of the job it held is lost, as the job itself was with the old hub
            // (a durable broker redoes it from its ledger).
            s_bad(d, BAD_OUTPUT_UNREGISTERED, f, nf);
            s_send_who(d, &f[0]);
            return;
        }
        pp_metric_inc(d->m_outputs);
        if (!d->output_fn(d->output_ctx, &f[2])) d->stop_reading = true;
    }
    if (!w) {
        if (cmd == PP_LINK_BYE) return;
        if (cmd != PP_LINK_CREDIT) {
            // Acks are taken by seq even from an unknown id (a reconnected worker whose "R"
            // did not come first): the jobs are done, and redoing them helps nobody.
            if (cmd == PP_LINK_ACKS)
                s_on_acks(d, NULL, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]) / 8);
            s_send_who(d, &f[0]);
            return;
        }
        if (d->nworkers >= PP_DISPATCH_MAX_WORKERS || zmq_msg_size(&f[0]) > 255) {
            s_bad(d, BAD_TOO_MANY_WORKERS, f, nf);
            return;
        }
        // One key may not fill the pool: past the cap its links stay unregistered (no jobs,
        // no outputs taken; each "R" they send again is refused and counted again).
        const char *user = s_user(f, nf);
        if (d->max_per_key && s_key_count(d, user, 0) >= d->max_per_key)
            s_forget_gone_of_key(d, user, now); /* a reconnect must not count twice */
        if (d->max_per_key && s_key_count(d, user, 0) >= d->max_per_key) {
            s_bad(d, BAD_WORKERS_PER_KEY, f, nf);
            return;
        }
        // The certificate's name, from our ZAP handler's metadata (common/pp_zap.h): for logs.
        const char *name = zmq_msg_gets(&f[1], "X-Key-Name");
        w = s_worker_add(d, zmq_msg_data(&f[0]), zmq_msg_size(&f[0]), user, name ? name : "", now);
        if (!w) return;
        // Our heartbeat, before any job: a worker with another one stops (a config error).
        // Not sent (at the HWM): that worker is not checked, as with a hub before issue 13.
        s_send_heartbeat(d, w, true, now);
    }
    w->last_heard = now;
    if (cmd == PP_LINK_CREDIT) {
        uint32_t add = pp_link_get_u32(zmq_msg_data(&f[2]));
        uint64_t total = (uint64_t)w->credit + add;
        if (total > PP_LINK_MAX_WINDOW) {
            s_bad(d, BAD_CREDIT_OVERFLOW, f, nf);
            total = PP_LINK_MAX_WINDOW;
        }
        d->credit += total - w->credit;
        w->credit = (uint32_t)total;
    } else if (cmd == PP_LINK_ACKS) {
        s_on_acks(d, w, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]) / 8);
    } else if (cmd == PP_LINK_BYE) {
        s_worker_forget(d, index, "left");
    } else if (cmd == PP_LINK_NUDGE) {
        // The worker holds jobs of a "K" its owner has not taken yet, and its socket has
        // nothing to make its poll wake up: answer at once (failures do not matter, the
        // next heartbeat wakes it too).
        s_send_heartbeat(d, w, false, now);
    }
}

void pp_dispatch_on_readable(pp_dispatch_t *d)
{
    uint64_t now = pp_mono_ms();
    d->stop_reading = false;
    for (int n = 0; n < S_MAX_READS && !d->stop_reading; n++) {
        // Routing id, command, argument, and one more: frames past the fourth are read and
        // dropped; total still counts them, so a message too long is bad in s_handle.
        zmq_msg_t f[4];
        size_t total = 0;
        int nf = pp_link_wire_recv(d->raw, f, 4, &total);
        if (nf < 0) break;
        s_handle(d, f, total > 4 ? total : (size_t)nf, now);
        for (int i = 0; i < nf; i++)
            zmq_msg_close(&f[i]);
    }
    s_gauges(d);
    pp_dispatch_pump(d);
}

// ---------------------------------------------------------------- housekeeping

int pp_dispatch_tick(pp_dispatch_t *d, uint64_t now_ms)
{
    uint64_t next = d->heartbeat_ms;
    for (size_t i = 0; i < d->nworkers;) {
        s_worker_t *w = d->workers[i];
        uint64_t heard = now_ms > w->last_heard ? now_ms - w->last_heard : 0;
        if (d->not_reading) heard = 0; // silence we cause is not death
        if (heard >= d->timeout_ms) {
            s_worker_forget(d, i, "timeout");
            continue;
        }
        if (d->timeout_ms - heard < next) next = d->timeout_ms - heard;
        uint64_t since = now_ms > w->last_sent ? now_ms - w->last_sent : 0;
        if (since >= d->heartbeat_ms) {
            if (s_send_heartbeat(d, w, false, now_ms) != 0 && errno == EHOSTUNREACH) {
                s_worker_forget(d, i, "unreachable");
                continue;
            }
        } else if (d->heartbeat_ms - since < next) {
            next = d->heartbeat_ms - since;
        }
        i++;
    }
    pp_dispatch_pump(d);
    return next < 1 ? 1 : (int)next;
}

void pp_dispatch_each_job(pp_dispatch_t *d, pp_dispatch_job_fn *fn, void *ctx)
{
    for (size_t i = 0; i < d->pend_len; i++)
        fn(ctx, &d->pend[(d->pend_head + i) % d->pend_cap]);
    for (size_t k = 0; k < d->nworkers; k++) {
        s_worker_t *w = d->workers[k];
        for (size_t i = 0; i < w->len; i++)
            if (s_slot(w, i)->live) fn(ctx, &s_slot(w, i)->msg);
    }
}

void pp_dispatch_set_acked(pp_dispatch_t *d, pp_dispatch_acked_fn *fn, void *ctx)
{
    d->acked_fn = fn;
    d->acked_ctx = ctx;
}

void pp_dispatch_set_max_workers_per_key(pp_dispatch_t *d, uint32_t max)
{
    d->max_per_key = max;
}

void pp_dispatch_set_output(pp_dispatch_t *d, pp_dispatch_output_fn *fn, void *ctx)
{
    d->output_fn = fn;
    d->output_ctx = ctx;
}

void pp_dispatch_set_reading(pp_dispatch_t *d, bool reading)
{
    if (reading && d->not_reading) {
        uint64_t now = pp_mono_ms();
        for (size_t i = 0; i < d->nworkers; i++)
            d->workers[i]->last_heard = now;
    }
    d->not_reading = !reading;
}

size_t pp_dispatch_requeue_all(pp_dispatch_t *d)
{
    size_t n = d->in_flight;
    while (d->nworkers)
        s_worker_forget(d, d->nworkers - 1, "left");
    return n;
}

size_t pp_dispatch_pending(const pp_dispatch_t *d)
{
    return d->pend_len;
}

size_t pp_dispatch_pending_bytes(const pp_dispatch_t *d)
{
    return d->pend_bytes;
}

size_t pp_dispatch_in_flight(const pp_dispatch_t *d)
{
    return d->in_flight;
}

size_t pp_dispatch_workers(const pp_dispatch_t *d)
{
    return d->nworkers;
}

uint64_t pp_dispatch_credit(const pp_dispatch_t *d)
{
    return d->credit;
}

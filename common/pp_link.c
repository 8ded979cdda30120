/*  pp_link: worker side of the credit-based link (docs/link-protocol.md). */
#include "pp_link.h"

#include "pp_log.h"

#include <czmq.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

/*  Acks per "A" message at most; a full batch is sent at once. */
#define S_ACK_BATCH 1024
/*  Control messages handled per pp_link_recv call before it returns 0. */
#define S_MAX_CONTROL 1000

/*  Most jobs accepted in one "K" (the hub sends at most 64); more is a bad batch. */
#define S_K_MAX_JOBS 4096
#define S_K_ENTRY 12

enum { BAD_COMMAND, BAD_JOB_FRAME, BAD_OVER_CREDIT, BAD_BATCH_FRAME, BAD_COUNT };
static const char *s_bad_names[BAD_COUNT] = {"unknown_command", "job_frame", "over_credit",
                                             "batch_frame"};

struct pp_link_t {
    zsock_t *sock;
    void *raw;
    uint32_t window, heartbeat_ms;
    uint32_t held, credit;
    bool paused;
    uint64_t last_sent;
    uint64_t last_reset; // when we last answered a "W"
    uint8_t acks[8 * S_ACK_BATCH];
    size_t nacks;
    // The "K" being handed out job by job: its frame and the offset of the next entry.
    zmq_msg_t batch;
    size_t batch_off, batch_left;
    bool nudged; // "N" sent for the current batch's leftovers
    pp_ratelimit_t rl;
    pp_metrics_t *own_metrics;
    pp_metric_t *m_jobs, *m_resets, *m_dropped;
    pp_metric_t *m_bad[BAD_COUNT];
};

static void s_bad(pp_link_t *l, int kind, size_t nframes)
{
    pp_metric_inc(l->m_bad[kind]);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&l->rl, &suppressed))
        pp_warn("link_bad_message", "side=worker kind=%s frames=%zu suppressed=%u",
                s_bad_names[kind], nframes, suppressed);
}

static int s_send_cmd(pp_link_t *l, char cmd, const void *arg, size_t len)
{
    if (zmq_send(l->raw, &cmd, 1, ZMQ_DONTWAIT | (arg ? ZMQ_SNDMORE : 0)) < 0) return -1;
    // A DEALER takes the rest of a message once it took the first frame.
    if (arg && zmq_send(l->raw, arg, len, ZMQ_DONTWAIT) < 0) return -1;
    l->last_sent = pp_mono_ms();
    return 0;
}

static void s_flush_acks(pp_link_t *l)
{
    if (l->nacks == 0) return;
    if (s_send_cmd(l, 'A', l->acks, 8 * l->nacks) == 0) {
        l->nacks = 0;
        return;
    }
    if (l->nacks == S_ACK_BATCH) {
        // The socket is at its HWM (hub gone for long): an ack not sent only means the
        // job is done again elsewhere, which at-least-once allows.
        pp_metric_add(l->m_dropped, l->nacks);
        l->nacks = 0;
    }
}

static void s_grant(pp_link_t *l, bool force)
{
    if (l->paused) return;
    uint32_t used = l->held + l->credit;
    uint32_t free = used < l->window ? l->window - used : 0;
    uint32_t quarter = l->window / 4 ? l->window / 4 : 1;
    if (free == 0 || (!force && free < quarter)) return;
    uint8_t b[4] = {(uint8_t)(free >> 24), (uint8_t)(free >> 16), (uint8_t)(free >> 8),
                    (uint8_t)free};
    if (s_send_cmd(l, 'R', b, 4) == 0) l->credit += free;
}

pp_link_t *pp_link_new(const char *endpoint, pp_curve_t *curve, pp_metrics_t *metrics,
                       uint32_t window, uint32_t heartbeat_ms)
{
    if (!endpoint || window == 0 || window > PP_LINK_MAX_WINDOW) {
        pp_error("link_invalid", "window=%u max=%u", window, PP_LINK_MAX_WINDOW);
        return NULL;
    }
    pp_link_t *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    l->window = window;
    l->heartbeat_ms = heartbeat_ms ? heartbeat_ms : PP_LINK_DEFAULT_HEARTBEAT_MS;
    l->rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 10);
    zmq_msg_init(&l->batch);
    if (!metrics) metrics = l->own_metrics = pp_metrics_new("link");
    l->m_jobs = pp_metrics_counter(metrics, "link_worker_jobs_total", "Jobs received", NULL);
    l->m_resets = pp_metrics_counter(metrics, "link_worker_hub_resets_total",
                                     "Hub did not know us (restarted): credit granted again", NULL);
    l->m_dropped = pp_metrics_counter(metrics, "link_worker_acks_dropped_total",
                                      "Acks not sent (socket full); those jobs are redone", NULL);
    for (int k = 0; k < BAD_COUNT; k++) {
        char kl[64];
        snprintf(kl, sizeof kl, "kind=\"%s\"", s_bad_names[k]);
        l->m_bad[k] = pp_metrics_counter(metrics, "link_worker_bad_messages_total",
                                         "Malformed messages from the hub", kl);
    }
    l->sock = zsock_new(ZMQ_DEALER);
    if (!l->sock) goto fail;
    l->raw = zsock_resolve(l->sock);
    // A fresh random routing id per link: a restarted worker is a new worker to the hub.
    // The first byte is not 0, which ZMQ reserves for ids the ROUTER makes up.
    uint8_t id[9] = {'w'};
    if (getrandom(id + 1, 8, 0) != 8) {
        uint64_t v = pp_mono_us() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)l;
        memcpy(id + 1, &v, 8);
    }
    zmq_setsockopt(l->raw, ZMQ_ROUTING_ID, id, sizeof id);
    // The window bounds what the hub sends us; HWMs only bound a misbehaving hub.
    zsock_set_rcvhwm(l->sock, (int)(2 * window + 1000));
    zsock_set_sndhwm(l->sock, 10000);
    zsock_set_linger(l->sock, (int)(l->heartbeat_ms < 2000 ? l->heartbeat_ms : 2000));
    if (pp_curve_apply(curve, l->raw) != 0) goto fail;
    if (zsock_connect(l->sock, "%s", endpoint) < 0) {
        pp_error("link_connect_failed", "endpoint=%s error=\"%s\"", endpoint, zmq_strerror(errno));
        goto fail;
    }
    s_grant(l, true);
    pp_info("link_connected", "endpoint=%s window=%u heartbeat_ms=%u", endpoint, window,
            l->heartbeat_ms);
    return l;
fail:
    pp_link_destroy(&l);
    return NULL;
}

void pp_link_destroy(pp_link_t **p)
{
    if (!p || !*p) return;
    pp_link_t *l = *p;
    if (l->raw) {
        s_flush_acks(l);
        s_send_cmd(l, 'B', NULL, 0);
    }
    zsock_destroy(&l->sock);
    zmq_msg_close(&l->batch);
    pp_metrics_destroy(&l->own_metrics);
    free(l);
    *p = NULL;
}

void *pp_link_socket(pp_link_t *l)
{
    return l->raw;
}

static uint64_t s_get_be64(const uint8_t *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | b[i];
    return v;
}

static uint32_t s_get_be32(const uint8_t *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/*  Checks a "K" frame: 1..S_K_MAX_JOBS entries of [seq u64][len u32][len bytes] filling it
    exactly. Returns the number of entries, 0 if malformed. */
static size_t s_batch_check(const uint8_t *p, size_t size)
{
    size_t n = 0, off = 0;
    while (off < size) {
        if (size - off < S_K_ENTRY || n == S_K_MAX_JOBS) return 0;
        uint32_t len = s_get_be32(p + off + 8);
        if (len > size - off - S_K_ENTRY) return 0;
        off += S_K_ENTRY + len;
        n++;
    }
    return n;
}

/*  Hands out the next job of the current "K" (copied into *body: small bodies, and a copy
    is cheap next to a ZMQ message). */
static void s_batch_next(pp_link_t *l, uint64_t *seq, zmq_msg_t *body)
{
    const uint8_t *p = (const uint8_t *)zmq_msg_data(&l->batch) + l->batch_off;
    uint32_t len = s_get_be32(p + 8);
    *seq = s_get_be64(p);
    zmq_msg_close(body);
    if (zmq_msg_init_size(body, len) == 0) {
        if (len) memcpy(zmq_msg_data(body), p + S_K_ENTRY, len);
    } else {
        zmq_msg_init(body); // out of memory: an empty body, which the owner rejects as bad
    }
    l->batch_off += S_K_ENTRY + len;
    if (--l->batch_left == 0) {
        zmq_msg_close(&l->batch);
        zmq_msg_init(&l->batch);
        l->batch_off = 0;
        l->nudged = false;
    }
}

/*  Counts n jobs received: held, credit used (a job beyond credit is still done: the hub
    holds it for us). */
static void s_received(pp_link_t *l, size_t n, size_t frames)
{
    l->held += (uint32_t)n;
    pp_metric_add(l->m_jobs, n);
    if (l->credit >= n) {
        l->credit -= (uint32_t)n;
    } else {
        l->credit = 0;
        s_bad(l, BAD_OVER_CREDIT, frames);
    }
}

int pp_link_recv(pp_link_t *l, uint64_t *seq, zmq_msg_t *body)
{
    if (l->batch_left) {
        s_batch_next(l, seq, body);
        return 1;
    }
    for (int n = 0; n < S_MAX_CONTROL; n++) {
        zmq_msg_t f[3];
        zmq_msg_init(&f[0]);
        if (zmq_msg_recv(&f[0], l->raw, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(&f[0]);
            if (e == EAGAIN) return 0;
            errno = e;
            return -1;
        }
        size_t nf = 1, total = 1;
        bool more = zmq_msg_more(&f[0]);
        while (more) {
            zmq_msg_t *into = &f[nf < 3 ? nf : 2];
            if (nf >= 3) zmq_msg_close(into);
            zmq_msg_init(into);
            if (zmq_msg_recv(into, l->raw, 0) < 0) {
                zmq_msg_close(into);
                break;
            }
            more = zmq_msg_more(into);
            if (nf < 3) nf++;
            total++;
        }
        char cmd = zmq_msg_size(&f[0]) == 1 ? *(const char *)zmq_msg_data(&f[0]) : 0;
        int got = 0;
        if (cmd == 'J') {
            if (total == 3 && zmq_msg_size(&f[1]) == 8) {
                *seq = s_get_be64(zmq_msg_data(&f[1]));
                zmq_msg_move(body, &f[2]);
                s_received(l, 1, total);
                got = 1;
            } else {
                s_bad(l, BAD_JOB_FRAME, total);
            }
        } else if (cmd == 'K') {
            size_t k = total == 2 ? s_batch_check(zmq_msg_data(&f[1]), zmq_msg_size(&f[1])) : 0;
            if (k) {
                zmq_msg_move(&l->batch, &f[1]);
                l->batch_off = 0;
                l->batch_left = k;
                l->nudged = false;
                s_received(l, k, total);
                s_batch_next(l, seq, body);
                got = 1;
            } else {
                s_bad(l, BAD_BATCH_FRAME, total);
            }
        } else if (cmd == 'W' && total == 1) {
            // The hub does not know us (it restarted, or declared us dead): our old credit
            // is gone with it. Several messages queued while it was away each draw a "W" in
            // a burst; answering each would grant the window several times over, so a "W"
            // within a heartbeat of the last one answered is ignored (if that was wrong, our
            // next heartbeat draws another "W").
            uint64_t now = pp_mono_ms();
            if (l->last_reset == 0 || now - l->last_reset >= l->heartbeat_ms) {
                l->last_reset = now;
                pp_metric_inc(l->m_resets);
                pp_info("link_hub_reset", "held=%u credit_lost=%u", l->held, l->credit);
                l->credit = 0;
                s_grant(l, true);
            }
        } else if (!(cmd == 'H' && total == 1)) {
            s_bad(l, BAD_COMMAND, total);
        }
        for (size_t i = 0; i < nf; i++)
            zmq_msg_close(&f[i]);
        if (got) return 1;
    }
    return 0;
}

int pp_link_send(pp_link_t *l, zmq_msg_t *body)
{
    char cmd = 'O';
    if (zmq_send(l->raw, &cmd, 1, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) return -1;
    // Once a DEALER took the first frame of a message it takes the rest.
    if (zmq_msg_send(body, l->raw, ZMQ_DONTWAIT) < 0) return -1;
    l->last_sent = pp_mono_ms();
    return 0;
}

void pp_link_ack(pp_link_t *l, uint64_t seq)
{
    uint8_t *b = l->acks + 8 * l->nacks;
    for (int i = 7; i >= 0; i--, seq >>= 8)
        b[i] = (uint8_t)seq;
    l->nacks++;
    if (l->held > 0) l->held--;
    if (l->nacks == S_ACK_BATCH) s_flush_acks(l);
}

int pp_link_tick(pp_link_t *l)
{
    s_flush_acks(l);
    s_grant(l, false);
    uint64_t now = pp_mono_ms();
    if (l->batch_left && !l->nudged) {
        // Jobs of a "K" are waiting here, not in the socket, so the owner's poll would not
        // wake for them: ask the hub for a heartbeat ("N"), which makes the socket readable.
        if (s_send_cmd(l, 'N', NULL, 0) == 0) l->nudged = true;
    }
    uint64_t since = now - l->last_sent;
    if (since >= l->heartbeat_ms) {
        if (s_send_cmd(l, 'H', NULL, 0) != 0)
            l->last_sent = now; // at the HWM: try again a heartbeat later, not in a loop
        since = 0;
    }
    uint64_t next = l->heartbeat_ms - since;
    return next < 1 ? 1 : (int)next;
}

void pp_link_pause(pp_link_t *l, bool paused)
{
    l->paused = paused;
}

uint32_t pp_link_held(const pp_link_t *l)
{
    return l->held;
}

uint32_t pp_link_credit(const pp_link_t *l)
{
    return l->credit;
}

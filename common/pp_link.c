/*  pp_link: worker side of the credit-based link (docs/link-protocol.md). */
#include "pp_link.h"

#include "pp_log.h"
#include "pp_proc.h"

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

_Static_assert(S_ACK_BATCH <= PP_LINK_MAX_ACKS, "an ack batch the hub takes");

/*  A connection attempt that failed is retried after S_RETRY_MIN_MS, doubling up to
    S_RETRY_MAX_MS (libzmq's own default is 100 ms, constant). */
#define S_RETRY_MIN_MS 100
#define S_RETRY_MAX_MS 500
/*  While a connection is being made, pp_link_tick asks to be called this often, so that the
    owner's poll does not sleep a whole heartbeat on a link that is not up yet. */
#define S_CONNECTING_MS 50
/*  Monitor events handled per call; the monitor of one DEALER produces a few per connection. */
#define S_MAX_EVENTS 64

/*  The state of the current connection, as the socket monitor reports it. */
enum { CONN_CONNECTING, CONN_UP, CONN_DOWN };

enum { BAD_COMMAND, BAD_JOB_FRAME, BAD_OVER_CREDIT, BAD_BATCH_FRAME, BAD_COUNT };
static const char *s_bad_names[BAD_COUNT] = {"unknown_command", "job_frame", "over_credit",
                                             "batch_frame"};

struct pp_link_t {
    zsock_t *sock;
    void *raw;
    // One socket per connection (see s_open): its monitor, and what the monitor said.
    zsock_t *mon;
    int conn;
    bool was_up;        // the current socket's connection completed its handshake once
    uint64_t retry_at;  // CONN_DOWN: when to open the next socket
    uint32_t retry_ms;  // the wait after the next failed attempt
    char endpoint[256]; // where to connect; kept for the sockets opened after a disconnect
    // Acks of jobs handed out up to ack_floor are not sent: outputs of those jobs went on a
    // connection that was lost, so they may be lost too (see s_open).
    uint64_t last_seq;  // the seq last handed out to the owner
    uint64_t ack_floor; // 0: none
    bool outputs_sent;  // an "O" went out on the current socket
    uint32_t window, heartbeat_ms;
    int sndhwm;
    uint32_t hub_heartbeat_ms; // as the hub stated it; 0: unknown
    bool config_error;         // the hub's heartbeat is not ours: no more work (see .h)
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
    pp_metric_t *m_jobs, *m_resets, *m_dropped, *m_reconnects, *m_withheld;
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

static int s_send_cmd(pp_link_t *l, pp_link_cmd_t command, const void *arg, size_t len)
{
    char cmd = (char)command;
    if (zmq_send(l->raw, &cmd, 1, ZMQ_DONTWAIT | (arg ? ZMQ_SNDMORE : 0)) < 0) return -1;
    // A DEALER takes the rest of a message once it took the first frame.
    if (arg && zmq_send(l->raw, arg, len, ZMQ_DONTWAIT) < 0) return -1;
    l->last_sent = pp_mono_ms();
    return 0;
}

static void s_flush_acks(pp_link_t *l)
{
    if (l->nacks == 0) return;
    if (s_send_cmd(l, PP_LINK_ACKS, l->acks, 8 * l->nacks) == 0) {
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
    if (l->paused || l->config_error) return;
    uint32_t used = l->held + l->credit;
    uint32_t free = used < l->window ? l->window - used : 0;
    uint32_t quarter = l->window / 4 ? l->window / 4 : 1;
    /* force (a new socket, or the hub's "W"): an "R" goes out even with nothing to grant,
       because it is what registers us; the hub drops outputs from an unregistered id,
       and a worker holding a full window must not lose the outputs of what it holds. */
    if (!force && (free == 0 || free < quarter)) return;
    uint8_t b[4];
    pp_link_put_u32(b, free);
    if (s_send_cmd(l, PP_LINK_CREDIT, b, 4) == 0) l->credit += free;
}

/*  Closes the current socket and its monitor, if any. linger_ms: how long libzmq may keep
    sending what is queued (0 after a disconnect: nothing queued there may arrive late). */
static void s_close_sock(pp_link_t *l, int linger_ms)
{
    if (l->sock) {
        zmq_socket_monitor(l->raw, NULL, 0);
        zsock_set_linger(l->sock, linger_ms);
    }
    zsock_destroy(&l->mon);
    zsock_destroy(&l->sock);
    l->raw = NULL;
}

/*  Copies onto the new socket the options an owner may have changed on the old one with
    zmq_setsockopt(pp_link_socket(l), ...), and the CURVE keys, so that a reconnect needs
    neither the owner nor its pp_curve_t. */
static void s_copy_options(void *from, void *to)
{
    static const int ints[] = {ZMQ_SNDHWM, ZMQ_RCVHWM, ZMQ_SNDBUF, ZMQ_RCVBUF};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        int v;
        size_t len = sizeof v;
        if (zmq_getsockopt(from, ints[i], &v, &len) == 0) zmq_setsockopt(to, ints[i], &v, len);
    }
    int mech = 0;
    size_t len = sizeof mech;
    if (zmq_getsockopt(from, ZMQ_MECHANISM, &mech, &len) != 0 || mech != ZMQ_CURVE) return;
    static const int keys[] = {ZMQ_CURVE_SERVERKEY, ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        uint8_t k[32];
        size_t kl = sizeof k;
        if (zmq_getsockopt(from, keys[i], k, &kl) == 0) zmq_setsockopt(to, keys[i], k, kl);
    }
}

/*  Opens a DEALER for one connection to the hub, with a fresh random routing id, and
    connects it; on success it replaces the current socket (closed with linger 0) and the
    credit view starts again: the hub knows the new id as a new worker, holding no credit
    and no job of ours, so we grant it the free part of the window at once.

    Why a new socket per connection: libzmq reconnects a DEALER by itself, under the same
    routing id, and a message caught in the ROUTER's pipe or in TCP buffers when the
    connection broke is lost without a trace. Under the same id the hub would count those
    jobs in flight for us for good (we keep heartbeating, so it never times us out), and the
    credit it used for them would be missing from our window for good. With a new id, the
    old one falls silent: the hub declares it dead (unreachable at its next send, or unheard
    for the timeout) and requeues what it still counts in flight there, and the new id gets
    work at once. Automatic reconnection is off (ZMQ_RECONNECT_IVL -1): a libzmq reconnect
    of the old socket would deliver what it still queued after a gap, e.g. an ack whose
    job's outputs were in that gap.

    Jobs we hold from the old connection stay valid: their acks go on the new socket and
    the hub accepts them by seq while it still counts the job in flight for the old id.
    Except: if outputs ("O") went out on the old socket, some may be lost while the ack of
    their job would arrive; as pp_link does not know which job an output belongs to, no ack
    of a job handed out so far is sent (ack_floor; link_worker_acks_withheld_total) and the
    hub redoes those jobs after the old id's death: duplicates, never a loss. Options are
    copied from the socket being replaced; the first one gets curve. Returns 0, or -1 with
    a logged error (then the current socket, if any, is left as it is). */
static int s_open(pp_link_t *l, pp_curve_t *curve)
{
    zsock_t *sock = zsock_new(ZMQ_DEALER);
    if (!sock) return -1;
    void *raw = zsock_resolve(sock);
    // A fresh random routing id per connection: a reconnected or restarted worker is a new
    // worker to the hub. The first byte is not 0, which ZMQ reserves for ids the ROUTER
    // makes up.
    uint8_t id[9] = {'w'};
    if (getrandom(id + 1, 8, 0) != 8) {
        uint64_t v = pp_mono_us() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)l;
        memcpy(id + 1, &v, 8);
    }
    zmq_setsockopt(raw, ZMQ_ROUTING_ID, id, sizeof id);
    int off = -1;
    zmq_setsockopt(raw, ZMQ_RECONNECT_IVL, &off, sizeof off);
    // A connect that hangs (SYN unanswered) gives up within the link's own timeout and is
    // tried again. No ZMTP heartbeats: a hub that does not read us (backpressure) does not
    // read their PINGs either, and that silence is not death (docs/link-protocol.md).
    int dead = 3 * (int)l->heartbeat_ms;
    zmq_setsockopt(raw, ZMQ_CONNECT_TIMEOUT, &dead, sizeof dead);
    if (l->raw) {
        s_copy_options(l->raw, raw);
    } else {
        // The window bounds what the hub sends us; HWMs only bound a misbehaving hub.
        zsock_set_rcvhwm(sock, (int)(2 * l->window + 1000));
        zsock_set_sndhwm(sock, l->sndhwm);
        if (pp_curve_apply(curve, raw) != 0) goto fail;
    }
    char mon_ep[64];
    // One name per socket in the process: a closed monitor's endpoint may linger a moment,
    // and a link freed and made again can get the same address.
    static uint32_t s_monitors;
    snprintf(mon_ep, sizeof mon_ep, "inproc://pp-link-%d-%u", (int)getpid(),
             __atomic_fetch_add(&s_monitors, 1, __ATOMIC_RELAXED));
    zsock_t *mon = NULL;
    /* A signal (the SIGTERM of a stop that comes while we start) interrupts libzmq's
       command to its I/O thread: EINTR is tried again, it is no failure. */
    int rc;
    do {
        rc = zmq_socket_monitor(raw, mon_ep,
                                ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                                    ZMQ_EVENT_CLOSED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
    } while (rc != 0 && errno == EINTR);
    if (rc == 0) mon = zsock_new(ZMQ_PAIR);
    if (mon) {
        do {
            rc = zsock_connect(mon, "%s", mon_ep);
        } while (rc < 0 && errno == EINTR);
    }
    if (rc != 0 || !mon) {
        pp_error("link_monitor_failed", "error=\"%s\"", zmq_strerror(errno));
        zmq_socket_monitor(raw, NULL, 0);
        zsock_destroy(&mon);
        goto fail;
    }
    do {
        rc = zsock_connect(sock, "%s", l->endpoint);
    } while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        pp_error("link_connect_failed", "endpoint=%s error=\"%s\"", l->endpoint,
                 zmq_strerror(errno));
        zmq_socket_monitor(raw, NULL, 0);
        zsock_destroy(&mon);
        goto fail;
    }
    bool reopen = l->sock != NULL;
    if (reopen) {
        if (l->outputs_sent && l->last_seq > l->ack_floor) l->ack_floor = l->last_seq;
        if (l->outputs_sent && l->nacks) {
            pp_metric_add(l->m_withheld, l->nacks);
            l->nacks = 0;
        }
        s_close_sock(l, 0);
    }
    l->sock = sock;
    l->raw = raw;
    l->mon = mon;
    l->conn = CONN_CONNECTING;
    l->was_up = false;
    l->outputs_sent = false;
    l->nudged = false;
    l->credit = 0;
    l->last_sent = pp_mono_ms();
    s_grant(l, true);
    // Acks queued for jobs held across the reconnect (none withheld): the hub takes them by
    // seq from the new id.
    s_flush_acks(l);
    return 0;
fail:
    zsock_set_linger(sock, 0);
    zsock_destroy(&sock);
    return -1;
}

/*  Reads the monitor: notes the connection up (its handshake done) or down (lost, refused,
    timed out, handshake failed: the socket never reconnects by itself). */
static void s_watch(pp_link_t *l, uint64_t now)
{
    if (!l->mon) return;
    void *m = zsock_resolve(l->mon);
    for (int n = 0; n < S_MAX_EVENTS; n++) {
        zmq_msg_t f;
        zmq_msg_init(&f);
        if (zmq_msg_recv(&f, m, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&f);
            return;
        }
        uint16_t ev = 0;
        if (zmq_msg_size(&f) == 6) memcpy(&ev, zmq_msg_data(&f), 2);
        while (zmq_msg_more(&f)) { // the endpoint frame
            zmq_msg_close(&f);
            zmq_msg_init(&f);
            if (zmq_msg_recv(&f, m, 0) < 0) break;
        }
        zmq_msg_close(&f);
        if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
            l->conn = CONN_UP;
            l->was_up = true;
            l->retry_ms = S_RETRY_MIN_MS;
        } else if (l->conn != CONN_DOWN && ev != 0) {
            // A lost connection is replaced at once (a fast reconnect is the point); a failed
            // attempt is retried with a backoff.
            l->conn = CONN_DOWN;
            l->retry_at = l->was_up ? now : now + l->retry_ms;
            if (!l->was_up)
                l->retry_ms = l->retry_ms * 2 < S_RETRY_MAX_MS ? l->retry_ms * 2 : S_RETRY_MAX_MS;
            if (l->was_up)
                pp_warn("link_disconnected",
                        "endpoint=%s held=%u credit_lost=%u outputs_at_risk=%s", l->endpoint,
                        l->held, l->credit, l->outputs_sent ? "yes" : "no");
        }
    }
}

pp_link_t *pp_link_new(const char *endpoint, pp_curve_t *curve, pp_metrics_t *metrics,
                       uint32_t window, uint32_t heartbeat_ms, int sndhwm)
{
    if (!endpoint || window == 0 || window > PP_LINK_MAX_WINDOW || sndhwm < 0 ||
        strlen(endpoint) >= sizeof((pp_link_t *)0)->endpoint) {
        pp_error("link_invalid", "window=%u max=%u sndhwm=%d", window, PP_LINK_MAX_WINDOW, sndhwm);
        return NULL;
    }
    pp_link_t *l = calloc(1, sizeof *l);
    if (!l) return NULL;
    snprintf(l->endpoint, sizeof l->endpoint, "%s", endpoint);
    l->window = window;
    l->heartbeat_ms = heartbeat_ms ? heartbeat_ms : PP_LINK_DEFAULT_HEARTBEAT_MS;
    l->sndhwm = sndhwm ? sndhwm : PP_LINK_DEFAULT_SNDHWM;
    l->retry_ms = S_RETRY_MIN_MS;
    l->rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 10);
    zmq_msg_init(&l->batch);
    if (!metrics) metrics = l->own_metrics = pp_metrics_new("link");
    l->m_jobs = pp_metrics_counter(metrics, "link_worker_jobs_total", "Jobs received", NULL);
    l->m_resets = pp_metrics_counter(metrics, "link_worker_hub_resets_total",
                                     "Hub did not know us (restarted): credit granted again", NULL);
    l->m_dropped = pp_metrics_counter(metrics, "link_worker_acks_dropped_total",
                                      "Acks not sent (socket full); those jobs are redone", NULL);
    l->m_reconnects = pp_metrics_counter(
        metrics, "link_worker_reconnects_total",
        "Connections to the hub lost and replaced by a new socket with a new routing id", NULL);
    l->m_withheld = pp_metrics_counter(
        metrics, "link_worker_acks_withheld_total",
        "Acks not sent after a lost connection that carried outputs; those jobs are redone", NULL);
    for (int k = 0; k < BAD_COUNT; k++) {
        char kl[64];
        snprintf(kl, sizeof kl, "kind=\"%s\"", s_bad_names[k]);
        l->m_bad[k] = pp_metrics_counter(metrics, "link_worker_bad_messages_total",
                                         "Malformed messages from the hub", kl);
    }
    if (s_open(l, curve) != 0) goto fail;
    pp_info("link_connected", "endpoint=%s window=%u heartbeat_ms=%u send_hwm=%d", endpoint, window,
            l->heartbeat_ms, l->sndhwm);
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
        s_send_cmd(l, PP_LINK_BYE, NULL, 0);
    }
    s_close_sock(l, (int)(l->heartbeat_ms < 2000 ? l->heartbeat_ms : 2000));
    zmq_msg_close(&l->batch);
    pp_metrics_destroy(&l->own_metrics);
    free(l);
    *p = NULL;
}

void *pp_link_socket(pp_link_t *l)
{
    return l->raw;
}

/*  Checks a "K" frame: 1..PP_LINK_BATCH_MAX_JOBS entries of [seq u64][len u32][len bytes] filling
   it exactly. Returns the number of entries, 0 if malformed. */
static size_t s_batch_check(const uint8_t *p, size_t size)
{
    size_t n = 0, off = 0;
    while (off < size) {
        if (size - off < PP_LINK_BATCH_ENTRY || n == PP_LINK_BATCH_MAX_JOBS) return 0;
        uint32_t len = pp_link_get_u32(p + off + 8);
        if (len > size - off - PP_LINK_BATCH_ENTRY) return 0;
        off += PP_LINK_BATCH_ENTRY + len;
        n++;
    }
    return n;
}

/*  Notes seq handed out to the owner (for ack_floor). A seq at or below the floor comes
    from a hub that numbers afresh (restarted, its clock set back): the floor, meant for the
    old numbering, would withhold every ack of the new one, so it is dropped. */
static void s_handed_out(pp_link_t *l, uint64_t seq)
{
    if (l->ack_floor && seq <= l->ack_floor) l->ack_floor = 0;
    l->last_seq = seq; // a hub hands jobs out in the order of their seqs
}

/*  Hands out the next job of the current "K" (copied into *body: small bodies, and a copy
    is cheap next to a ZMQ message). */
static void s_batch_next(pp_link_t *l, uint64_t *seq, zmq_msg_t *body)
{
    const uint8_t *p = (const uint8_t *)zmq_msg_data(&l->batch) + l->batch_off;
    uint32_t len = pp_link_get_u32(p + 8);
    *seq = pp_link_get_u64(p);
    zmq_msg_close(body);
    if (zmq_msg_init_size(body, len) == 0) {
        if (len) memcpy(zmq_msg_data(body), p + PP_LINK_BATCH_ENTRY, len);
    } else {
        zmq_msg_init(body); // out of memory: an empty body, which the owner rejects as bad
    }
    l->batch_off += PP_LINK_BATCH_ENTRY + len;
    s_handed_out(l, *seq);
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

/*  The hub's "W": it does not know us (it restarted, or declared us dead), so our old
    credit is gone with it. Several messages queued while it was away each draw a "W" in a
    burst; answering each would grant the window several times over, so a "W" within a
    heartbeat of the last one answered is ignored (if that was wrong, our next heartbeat
    draws another "W"). */
static void s_on_who(pp_link_t *l)
{
    uint64_t now = pp_mono_ms();
    if (l->last_reset == 0 || now - l->last_reset >= l->heartbeat_ms) {
        l->last_reset = now;
        pp_metric_inc(l->m_resets);
        pp_info("link_hub_reset", "held=%u credit_lost=%u", l->held, l->credit);
        l->credit = 0;
        s_grant(l, true);
    }
}

/*  The hub's "H" with its heartbeat (sent to each worker it registers): both ends time
    each other out by the heartbeat, so one that differs is a config error (see .h). */
static void s_on_hub_heartbeat(pp_link_t *l, uint32_t hub_ms)
{
    l->hub_heartbeat_ms = hub_ms;
    if (hub_ms == l->heartbeat_ms || l->config_error) return;
    l->config_error = true;
    pp_error("link_heartbeat_mismatch",
             "endpoint=%s heartbeat_ms=%u hub_heartbeat_ms=%u error=\"config: heartbeat_ms: %u "
             "differs from the broker's %u; give every process the same top-level "
             "heartbeat_ms\"",
             l->endpoint, l->heartbeat_ms, hub_ms, l->heartbeat_ms, hub_ms);
    pp_proc_request_stop();
}

/*  One message from the hub: f[0] the command, then up to two of its frames (as
    pp_link_wire_recv keeps them), total frames in all. Returns 1 with the next job in *seq
    and *body, else 0. */
static int s_on_message(pp_link_t *l, zmq_msg_t *f, size_t total, uint64_t *seq, zmq_msg_t *body)
{
    char cmd = zmq_msg_size(&f[0]) == 1 ? *(const char *)zmq_msg_data(&f[0]) : 0;
    if ((cmd == PP_LINK_JOB || cmd == PP_LINK_BATCH) && l->config_error)
        return 0; // no work from a hub we disagree with: it redoes the job after our "B"
    if (cmd == PP_LINK_JOB) {
        if (total != 3 || zmq_msg_size(&f[1]) != 8) {
            s_bad(l, BAD_JOB_FRAME, total);
            return 0;
        }
        *seq = pp_link_get_u64(zmq_msg_data(&f[1]));
        s_handed_out(l, *seq);
        zmq_msg_move(body, &f[2]);
        s_received(l, 1, total);
        return 1;
    }
    if (cmd == PP_LINK_BATCH) {
        size_t k = total == 2 ? s_batch_check(zmq_msg_data(&f[1]), zmq_msg_size(&f[1])) : 0;
        if (!k) {
            s_bad(l, BAD_BATCH_FRAME, total);
            return 0;
        }
        zmq_msg_move(&l->batch, &f[1]);
        l->batch_off = 0;
        l->batch_left = k;
        l->nudged = false;
        s_received(l, k, total);
        s_batch_next(l, seq, body);
        return 1;
    }
    if (cmd == PP_LINK_WHO && total == 1)
        s_on_who(l);
    else if (cmd == PP_LINK_HEARTBEAT && total == 2 && zmq_msg_size(&f[1]) == 4)
        s_on_hub_heartbeat(l, pp_link_get_u32(zmq_msg_data(&f[1])));
    else if (!(cmd == PP_LINK_HEARTBEAT && total == 1))
        s_bad(l, BAD_COMMAND, total);
    return 0;
}

int pp_link_recv(pp_link_t *l, uint64_t *seq, zmq_msg_t *body)
{
    if (l->batch_left) {
        s_batch_next(l, seq, body);
        return 1;
    }
    for (int n = 0; n < S_MAX_CONTROL; n++) {
        zmq_msg_t f[3];
        size_t total = 0;
        int nf = pp_link_wire_recv(l->raw, f, 3, &total);
        if (nf < 0) return errno == EAGAIN ? 0 : -1;
        int got = s_on_message(l, f, total, seq, body);
        for (int i = 0; i < nf; i++)
            zmq_msg_close(&f[i]);
        if (got) return 1;
    }
    return 0;
}

int pp_link_send(pp_link_t *l, zmq_msg_t *body)
{
    char cmd = PP_LINK_OUTPUT;
    if (zmq_send(l->raw, &cmd, 1, ZMQ_DONTWAIT | ZMQ_SNDMORE) < 0) return -1;
    // Once a DEALER took the first frame of a message it takes the rest.
    if (zmq_msg_send(body, l->raw, ZMQ_DONTWAIT) < 0) return -1;
    l->last_sent = pp_mono_ms();
    l->outputs_sent = true;
    return 0;
}

void pp_link_ack(pp_link_t *l, uint64_t seq)
{
    if (l->held > 0) l->held--;
    if (l->ack_floor && seq <= l->ack_floor) {
        // Its outputs may have been lost with an old connection: the hub redoes it.
        pp_metric_inc(l->m_withheld);
        return;
    }
    uint8_t *b = l->acks + 8 * l->nacks;
    for (int i = 7; i >= 0; i--, seq >>= 8)
        b[i] = (uint8_t)seq;
    l->nacks++;
    if (l->nacks == S_ACK_BATCH) s_flush_acks(l);
}

int pp_link_tick(pp_link_t *l)
{
    uint64_t now = pp_mono_ms();
    s_watch(l, now);
    if (l->conn == CONN_DOWN) {
        if (now < l->retry_at) {
            uint64_t wait = l->retry_at - now;
            return wait < l->heartbeat_ms ? (int)wait : (int)l->heartbeat_ms;
        }
        bool lost = l->was_up;
        if (s_open(l, NULL) != 0) {
            l->retry_at = now + l->retry_ms; // s_open logged why
            return (int)l->retry_ms;
        }
        if (lost) {
            pp_metric_inc(l->m_reconnects);
            pp_info("link_reconnecting", "endpoint=%s held=%u granted=%u ack_floor=%llu",
                    l->endpoint, l->held, l->credit, (unsigned long long)l->ack_floor);
        }
    }
    s_flush_acks(l);
    s_grant(l, false);
    if (l->batch_left && !l->nudged) {
        // Jobs of a "K" are waiting here, not in the socket, so the owner's poll would not
        // wake for them: ask the hub for a heartbeat ("N"), which makes the socket readable.
        if (s_send_cmd(l, PP_LINK_NUDGE, NULL, 0) == 0) l->nudged = true;
    }
    uint64_t since = now - l->last_sent;
    if (since >= l->heartbeat_ms) {
        if (s_send_cmd(l, PP_LINK_HEARTBEAT, NULL, 0) != 0)
            l->last_sent = now; // at the HWM: try again a heartbeat later, not in a loop
        since = 0;
    }
    uint64_t next = l->heartbeat_ms - since;
    if (l->conn == CONN_CONNECTING && next > S_CONNECTING_MS) next = S_CONNECTING_MS;
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

bool pp_link_config_error(const pp_link_t *l)
{
    return l->config_error;
}

uint32_t pp_link_hub_heartbeat_ms(const pp_link_t *l)
{
    return l->hub_heartbeat_ms;
}

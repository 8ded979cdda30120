/* pp_link + pp_dispatch: the credit-based link over real ZMQ sockets on tcp loopback. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "pp_dispatch.h"
#include "pp_link.h"
#include "pp_log.h"
#include "pp_proc.h"

#include <arpa/inet.h>
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NJOBS 200
#define HB 100

static int s_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    close(fd);
    return ntohs(sa.sin_port);
}

static void s_endpoint(char *ep, size_t n)
{
    snprintf(ep, n, "tcp://127.0.0.1:%d", s_free_port());
}

/*  One simulated worker: its link, whether it acks, and which job ids it acked. */
typedef struct {
    pp_link_t *link;
    bool ack;     // ack each job as soon as it arrives
    bool ticking; // calls pp_link_tick (heartbeats, credit); false = hung
    int received;
    int acked;
    uint64_t held_seqs[NJOBS];
    int nheld;
} s_worker_t;

/*  done[i] counts acks of job i (by body), got[i] deliveries of job i. */
static int s_done[NJOBS], s_got[NJOBS];

static void s_enqueue(pp_dispatch_t *d, int n, size_t pad)
{
    for (int i = 0; i < n; i++) {
        char body[256];
        int len = snprintf(body, sizeof body, "job-%d:", i);
        memset(body + len, 'x', pad);
        zmq_msg_t m;
        zmq_msg_init_size(&m, (size_t)len + pad);
        memcpy(zmq_msg_data(&m), body, (size_t)len + pad);
        assert_int_equal(pp_dispatch_enqueue(d, &m), 0);
        zmq_msg_close(&m);
    }
}

static int s_job_id(zmq_msg_t *body)
{
    char tmp[32] = {0};
    size_t n = zmq_msg_size(body) < 31 ? zmq_msg_size(body) : 31;
    memcpy(tmp, zmq_msg_data(body), n);
    int id = -1;
    sscanf(tmp, "job-%d:", &id);
    return id;
}

/*  Runs hub and workers in this thread for up to ms, or until stop() is true. */
static void s_run(pp_dispatch_t *d, s_worker_t *w, int nw, int ms, bool (*stop)(void *), void *arg)
{
    uint64_t end = pp_mono_ms() + (uint64_t)ms;
    while (pp_mono_ms() < end && !(stop && stop(arg))) {
        zmq_pollitem_t items[8];
        int n = 0;
        if (d) items[n++] = (zmq_pollitem_t){pp_dispatch_socket(d), 0, ZMQ_POLLIN, 0};
        for (int i = 0; i < nw; i++)
            if (w[i].link)
                items[n++] = (zmq_pollitem_t){pp_link_socket(w[i].link), 0, ZMQ_POLLIN, 0};
        zmq_poll(items, n, 5);
        if (d) {
            pp_dispatch_on_readable(d);
            pp_dispatch_tick(d, pp_mono_ms());
        }
        for (int i = 0; i < nw; i++) {
            if (!w[i].link) continue;
            uint64_t seq;
            zmq_msg_t body;
            zmq_msg_init(&body);
            while (pp_link_recv(w[i].link, &seq, &body) == 1) {
                int id = s_job_id(&body);
                assert_true(id >= 0 && id < NJOBS);
                s_got[id]++;
                w[i].received++;
                if (w[i].ack) {
                    pp_link_ack(w[i].link, seq);
                    s_done[id]++;
                    w[i].acked++;
                } else if (w[i].nheld < NJOBS) {
                    w[i].held_seqs[w[i].nheld++] = seq;
                }
            }
            zmq_msg_close(&body);
            if (w[i].ticking) pp_link_tick(w[i].link);
        }
    }
}

static void s_reset(void)
{
    memset(s_done, 0, sizeof s_done);
    memset(s_got, 0, sizeof s_got);
}

static bool s_all_acked(void *arg)
{
    pp_dispatch_t *d = arg;
    return pp_dispatch_pending(d) == 0 && pp_dispatch_in_flight(d) == 0;
}

static int64_t s_metric(pp_metrics_t *m, const char *name, const char *labels)
{
    return pp_metrics_value(m, name, labels);
}

#define POOL "pool=\"test\""

static bool s_workers_two(void *arg)
{
    return pp_dispatch_workers(arg) == 2;
}

static bool s_has_credit(void *arg)
{
    return pp_dispatch_credit(arg) > 0;
}

static bool s_config_error(void *arg)
{
    return pp_link_config_error(arg);
}

static void test_flow(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_metrics_t *m = pp_metrics_new("t");
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, m, HB, 0, 1000, 1 << 20);
    assert_non_null(d);
    s_worker_t w = {.link = pp_link_new(ep, NULL, NULL, 16, HB, 0), .ack = true, .ticking = true};
    assert_non_null(w.link);
    s_enqueue(d, NJOBS, 40); // bodies over 33 bytes: refcounted copies
    s_run(d, &w, 1, 5000, s_all_acked, d);
    assert_int_equal(w.received, NJOBS);
    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(s_done[i], 1);
    s_run(d, &w, 1, 50, NULL, NULL); // let the last acks land
    assert_int_equal(pp_dispatch_in_flight(d), 0);
    assert_int_equal(s_metric(m, "link_jobs_sent_total", POOL), NJOBS);
    assert_int_equal(s_metric(m, "link_acks_total", POOL), NJOBS);
    assert_int_equal(s_metric(m, "link_requeued_total", POOL), 0);
    assert_int_equal(pp_dispatch_workers(d), 1);
    pp_link_destroy(&w.link);
    assert_null(w.link);
    // "B": the hub forgets the worker at once, without counting a death.
    s_run(d, NULL, 0, 200, NULL, NULL);
    assert_int_equal(pp_dispatch_workers(d), 0);
    assert_int_equal(s_metric(m, "link_worker_deaths_total", POOL), 0);
    pp_dispatch_destroy(&d);
    assert_null(d);
    pp_metrics_destroy(&m);
}

static void test_credit_limits(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, NULL, HB, 0, 1000, 1 << 20);
    s_worker_t w = {.link = pp_link_new(ep, NULL, NULL, 5, HB, 0), .ack = false, .ticking = true};
    s_enqueue(d, 50, 0);
    s_run(d, &w, 1, 300, NULL, NULL);
    assert_int_equal(w.received, 5);
    assert_int_equal(pp_link_held(w.link), 5);
    assert_int_equal(pp_link_credit(w.link), 0);
    assert_int_equal(pp_dispatch_in_flight(d), 5);
    assert_int_equal(pp_dispatch_pending(d), 45);
    // Acking frees the window: the rest flows, still at most 5 held at a time.
    for (int i = 0; i < w.nheld; i++)
        pp_link_ack(w.link, w.held_seqs[i]);
    w.nheld = 0;
    w.ack = true;
    s_run(d, &w, 1, 5000, s_all_acked, d);
    assert_int_equal(w.received, 50);
    assert_int_equal(pp_dispatch_pending(d), 0);
    pp_link_destroy(&w.link);
    pp_dispatch_destroy(&d);
}

/*  Acks out of order, with the oldest job held throughout: the hub's per-worker ring keeps
    holes and compacts them, and every ack finds its job. */
static void test_out_of_order_acks(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_metrics_t *m = pp_metrics_new("t");
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, m, HB, 0, 1000, 1 << 20);
    s_worker_t w = {.link = pp_link_new(ep, NULL, NULL, 9, HB, 0), .ack = false, .ticking = true};
    s_enqueue(d, NJOBS, 40);
    uint64_t first = 0;
    uint64_t end = pp_mono_ms() + 10000;
    while (pp_mono_ms() < end && pp_dispatch_pending(d) > 0) {
        s_run(d, &w, 1, 20, NULL, NULL);
        // Hold the very first job; ack the rest newest first.
        int from = 0;
        if (first == 0 && w.nheld > 0) {
            first = w.held_seqs[0];
            from = 1;
        }
        for (int i = w.nheld - 1; i >= from; i--)
            pp_link_ack(w.link, w.held_seqs[i]);
        w.nheld = 0;
        pp_link_tick(w.link);
    }
    s_run(d, &w, 1, 100, NULL, NULL);
    assert_int_equal(w.received, NJOBS);
    assert_int_equal(pp_dispatch_in_flight(d), 1);
    assert_int_equal(s_metric(m, "link_acks_total", POOL), NJOBS - 1);
    pp_link_ack(w.link, first);
    pp_link_ack(w.link, first); // a second ack of the same job is an unknown ack
    pp_link_tick(w.link);
    s_run(d, &w, 1, 100, NULL, NULL);
    assert_int_equal(pp_dispatch_in_flight(d), 0);
    assert_int_equal(s_metric(m, "link_acks_total", POOL), NJOBS);
    assert_int_equal(s_metric(m, "link_unknown_acks_total", POOL), 1);
    pp_link_destroy(&w.link);
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&m);
}

static void test_two_workers_share(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, NULL, HB, 0, 1000, 1 << 20);
    s_worker_t w[2] = {
        {.link = pp_link_new(ep, NULL, NULL, 4, HB, 0), .ack = true, .ticking = true},
        {.link = pp_link_new(ep, NULL, NULL, 4, HB, 0), .ack = true, .ticking = true}};
    s_run(d, w, 2, 2000, s_workers_two, d);
    assert_int_equal(pp_dispatch_workers(d), 2);
    s_enqueue(d, NJOBS, 0);
    s_run(d, w, 2, 5000, s_all_acked, d);
    assert_int_equal(w[0].received + w[1].received, NJOBS);
    assert_true(w[0].received > 0);
    assert_true(w[1].received > 0);
    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(s_done[i], 1);
    pp_link_destroy(&w[0].link);
    pp_link_destroy(&w[1].link);
    pp_dispatch_destroy(&d);
}

/*  A worker that hangs (no acks, no heartbeats) loses nothing: after the timeout its jobs go
    to the other worker, and every job is acked exactly once. */
static void test_hung_worker_requeued(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_metrics_t *m = pp_metrics_new("t");
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, m, HB, 3 * HB, 1000, 1 << 20);
    s_worker_t w[2] = {
        {.link = pp_link_new(ep, NULL, NULL, 10, HB, 0), .ack = false, .ticking = false},
        {.link = pp_link_new(ep, NULL, NULL, 10, HB, 0), .ack = true, .ticking = true}};
    s_run(d, w, 2, 2000, s_workers_two, d);
    assert_int_equal(pp_dispatch_workers(d), 2);
    s_enqueue(d, NJOBS, 40);
    s_run(d, w, 2, 10000, s_all_acked, d);
    assert_int_equal(w[0].received, 10); // its whole window, never acked
    int dups = 0;
    for (int i = 0; i < NJOBS; i++) {
        assert_int_equal(s_done[i], 1); // acked exactly once, by worker 1
        dups += s_got[i] - 1;
    }
    assert_int_equal(dups, 10); // the hung worker's ten, done again by worker 1
    assert_int_equal(w[1].acked, NJOBS);
    assert_int_equal(s_metric(m, "link_requeued_total", POOL), 10);
    assert_int_equal(s_metric(m, "link_worker_deaths_total", POOL), 1);
    assert_int_equal(pp_dispatch_workers(d), 1);
    pp_link_destroy(&w[0].link);
    pp_link_destroy(&w[1].link);
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&m);
}

/*  A worker destroyed while holding jobs (graceful or not) says "B": its jobs are requeued
    at once, not after the timeout (which here is far longer than the test waits). */
static void test_destroyed_worker_requeued(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_metrics_t *m = pp_metrics_new("t");
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, m, HB, 60000, 1000, 1 << 20);
    s_worker_t w[2] = {
        {.link = pp_link_new(ep, NULL, NULL, 7, HB, 0), .ack = false, .ticking = true},
        {.link = NULL, .ack = true, .ticking = true}};
    s_enqueue(d, 20, 0);
    s_run(d, w, 1, 300, NULL, NULL);
    assert_int_equal(w[0].received, 7);
    pp_link_destroy(&w[0].link);
    w[1].link = pp_link_new(ep, NULL, NULL, 7, HB, 0);
    s_run(d, w, 2, 3000, s_all_acked, d);
    assert_int_equal(w[1].acked, 20);
    for (int i = 0; i < 20; i++)
        assert_int_equal(s_done[i], 1);
    assert_int_equal(s_metric(m, "link_requeued_total", POOL), 7);
    assert_int_equal(s_metric(m, "link_worker_deaths_total", POOL), 0);
    pp_link_destroy(&w[1].link);
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&m);
}

/*  The hub restarts on the same endpoint: the worker sees its connection drop and comes back
    on a new socket with a new routing id (or, had it not noticed, its heartbeat would draw
    "W"), grants its free window again, and acks of the old hub's jobs are counted as
    unknown, not errors. */
static void test_hub_restart(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_metrics_t *wm = pp_metrics_new("w");
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, NULL, HB, 0, 1000, 1 << 20);
    s_worker_t w = {.link = pp_link_new(ep, NULL, wm, 8, HB, 0), .ack = false, .ticking = true};
    s_enqueue(d, 3, 0);
    s_run(d, &w, 1, 300, NULL, NULL);
    assert_int_equal(w.received, 3);
    assert_int_equal(pp_link_credit(w.link), 5);
    pp_dispatch_destroy(&d);
    pp_metrics_t *m = pp_metrics_new("t");
    d = pp_dispatch_new("test", ep, NULL, m, HB, 0, 1000, 1 << 20);
    assert_non_null(d);
    s_run(d, &w, 1, 3000, s_has_credit, d);
    assert_int_equal(pp_metrics_value(wm, "link_worker_hub_resets_total", NULL) +
                         pp_metrics_value(wm, "link_worker_reconnects_total", NULL),
                     1);
    assert_int_equal(pp_dispatch_workers(d), 1);
    assert_int_equal(pp_dispatch_credit(d), 5); // 8 - 3 still held from the old hub
    // The old jobs are finished now: their acks mean nothing to the new hub.
    for (int i = 0; i < w.nheld; i++)
        pp_link_ack(w.link, w.held_seqs[i]);
    w.ack = true;
    s_enqueue(d, 10, 0);
    s_run(d, &w, 1, 3000, s_all_acked, d);
    s_run(d, &w, 1, 100, NULL, NULL);
    assert_int_equal(w.received, 13);
    assert_int_equal(s_metric(m, "link_unknown_acks_total", POOL), 3);
    assert_int_equal(s_metric(m, "link_acks_total", POOL), 10);
    pp_link_destroy(&w.link);
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&m);
    pp_metrics_destroy(&wm);
}

static void s_raw_send(void *sock, int nframes, const char **frames, const size_t *lens)
{
    for (int i = 0; i < nframes; i++)
        assert_true(zmq_send(sock, frames[i], lens[i], i < nframes - 1 ? ZMQ_SNDMORE : 0) >= 0);
}

#define BAD(kind) "pool=\"test\",kind=\"" kind "\""

static void test_bad_messages(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_metrics_t *m = pp_metrics_new("t");
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, m, HB, 0, 1000, 1 << 20);
    zsock_t *raw = zsock_new(ZMQ_DEALER);
    zsock_set_linger(raw, 0);
    assert_int_equal(zsock_connect(raw, "%s", ep), 0);
    void *r = zsock_resolve(raw);
    const char *f[6] = {"H", "", "R", "RR", "A", "H"};
    size_t l1[1] = {1};
    s_raw_send(r, 1, (const char *[]){"X"}, l1);                          // unknown command
    s_raw_send(r, 1, (const char *[]){""}, (size_t[]){0});                // empty command
    s_raw_send(r, 1, (const char *[]){"RR"}, (size_t[]){2});              // two-byte command
    s_raw_send(r, 1, (const char *[]){"R"}, l1);                          // credit missing
    s_raw_send(r, 2, (const char *[]){"R", "abc"}, (size_t[]){1, 3});     // short credit
    s_raw_send(r, 2, (const char *[]){"A", "1234567"}, (size_t[]){1, 7}); // short ack
    s_raw_send(r, 2, (const char *[]){"A", ""}, (size_t[]){1, 0});        // empty ack
    s_raw_send(r, 2, (const char *[]){"H", "x"}, (size_t[]){1, 1});       // extra frame
    s_raw_send(r, 6, f, (size_t[]){1, 0, 1, 2, 1, 1});                    // "H" + 5 frames
    s_run(d, NULL, 0, 200, NULL, NULL);
    assert_int_equal(s_metric(m, "link_bad_messages_total", BAD("unknown_command")), 1);
    assert_int_equal(s_metric(m, "link_bad_messages_total", BAD("command_size")), 2);
    assert_int_equal(s_metric(m, "link_bad_messages_total", BAD("credit_frame")), 2);
    assert_int_equal(s_metric(m, "link_bad_messages_total", BAD("ack_frame")), 2);
    assert_int_equal(s_metric(m, "link_bad_messages_total", BAD("heartbeat_frame")), 2);
    assert_int_equal(pp_dispatch_workers(d), 0);
    // An "A" from an unknown peer draws "W".
    s_raw_send(r, 2, (const char *[]){"A", "\0\0\0\0\0\0\0\1"}, (size_t[]){1, 8});
    s_run(d, NULL, 0, 100, NULL, NULL);
    char buf[8];
    assert_int_equal(zmq_recv(r, buf, sizeof buf, ZMQ_DONTWAIT), 1);
    assert_int_equal(buf[0], 'W');
    // Valid credit (clamped when absurd), then an ack for a seq it was never sent.
    s_raw_send(r, 2, (const char *[]){"R", "\xff\xff\xff\xff"}, (size_t[]){1, 4});
    s_raw_send(r, 2, (const char *[]){"A", "\0\0\0\0\0\0\0\1"}, (size_t[]){1, 8});
    s_run(d, NULL, 0, 100, NULL, NULL);
    assert_int_equal(pp_dispatch_workers(d), 1);
    assert_int_equal(pp_dispatch_credit(d), PP_LINK_MAX_WINDOW);
    assert_int_equal(s_metric(m, "link_bad_messages_total", BAD("credit_overflow")), 1);
    assert_int_equal(s_metric(m, "link_unknown_acks_total", POOL), 1);
    zsock_destroy(&raw);
    // The hub keeps serving a real worker (the raw peer is gone: unreachable, forgotten).
    s_worker_t w = {.link = pp_link_new(ep, NULL, NULL, 8, HB, 0), .ack = true, .ticking = true};
    s_enqueue(d, 30, 0);
    s_run(d, &w, 1, 5000, s_all_acked, d);
    assert_int_equal(w.acked, 30);
    pp_link_destroy(&w.link);
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&m);
}

// ---------------------------------------------------------------- a raw hub

#define RAW_HUB_WINDOW 4

/*  A raw hub: a ROUTER playing the broker, so that the worker's side of the wire is
    checked byte by byte. The cmocka setup binds it on a free port, starts the worker under
    test (a pp_link with window RAW_HUB_WINDOW, its own metrics) there and takes the link's
    registration ("R" + credit), which gives the worker's routing id; the teardown destroys
    the link, then the hub. Only the tests of this file use one (tests/link/test_linkset.c
    uses real pp_dispatch hubs), so the fixture lives here. */
typedef struct {
    zsock_t *router;
    void *sock;       // router's libzmq socket
    char ep[64];      // where it is bound
    char id[256];     // the worker's routing id,
    size_t idlen;     // idlen bytes of it
    uint32_t credit;  // the credit of the worker's "R"
    pp_link_t *link;  // the worker under test
    pp_metrics_t *wm; // its metrics
} s_raw_hub_t;

static int s_raw_hub_setup(void **state)
{
    s_raw_hub_t *h = calloc(1, sizeof *h);
    assert_non_null(h);
    s_endpoint(h->ep, sizeof h->ep);
    h->router = zsock_new(ZMQ_ROUTER);
    zsock_set_linger(h->router, 0);
    assert_true(zsock_bind(h->router, "%s", h->ep) >= 0);
    h->sock = zsock_resolve(h->router);
    h->wm = pp_metrics_new("w");
    h->link = pp_link_new(h->ep, NULL, h->wm, RAW_HUB_WINDOW, HB, 0);
    char cmd[8];
    uint8_t credit[8];
    int idlen = zmq_recv(h->sock, h->id, sizeof h->id, 0);
    assert_true(idlen > 0);
    h->idlen = (size_t)idlen;
    assert_int_equal(zmq_recv(h->sock, cmd, sizeof cmd, 0), 1);
    assert_int_equal(cmd[0], 'R');
    assert_int_equal(zmq_recv(h->sock, credit, sizeof credit, 0), 4);
    h->credit = (uint32_t)credit[0] << 24 | (uint32_t)credit[1] << 16 | (uint32_t)credit[2] << 8 |
                credit[3];
    *state = h;
    return 0;
}

static int s_raw_hub_teardown(void **state)
{
    s_raw_hub_t *h = *state;
    pp_link_destroy(&h->link);
    zsock_destroy(&h->router);
    pp_metrics_destroy(&h->wm);
    free(h);
    *state = NULL;
    return 0;
}

/*  Sends one message of nframes frames to the worker (its routing id goes first). */
static void s_raw_hub_send(s_raw_hub_t *h, int nframes, const char **frames, const size_t *lens)
{
    assert_true(zmq_send(h->sock, h->id, h->idlen, ZMQ_SNDMORE) >= 0);
    s_raw_send(h->sock, nframes, frames, lens);
}

/*  A hub that sends garbage is counted by the worker, which goes on. */
static void test_worker_bad_messages(void **state)
{
    s_raw_hub_t *h = *state;
    pp_link_t *l = h->link;
    pp_metrics_t *wm = h->wm;
    assert_int_equal(h->credit, 4);
    s_raw_hub_send(h, 1, (const char *[]){"Q"}, (size_t[]){1});
    s_raw_hub_send(h, 3, (const char *[]){"J", "123", "body"}, (size_t[]){1, 3, 4}); // short seq
    s_raw_hub_send(h, 3, (const char *[]){"J", "\0\0\0\0\0\0\0\7", "good"}, (size_t[]){1, 8, 4});
    uint64_t seq = 0;
    zmq_msg_t body;
    zmq_msg_init(&body);
    int got = 0;
    for (int i = 0; i < 200 && !got; i++) {
        zmq_poll(&(zmq_pollitem_t){pp_link_socket(l), 0, ZMQ_POLLIN, 0}, 1, 10);
        got = pp_link_recv(l, &seq, &body);
    }
    assert_int_equal(got, 1);
    assert_int_equal(seq, 7);
    assert_int_equal(zmq_msg_size(&body), 4);
    assert_memory_equal(zmq_msg_data(&body), "good", 4);
    assert_int_equal(
        pp_metrics_value(wm, "link_worker_bad_messages_total", "kind=\"unknown_command\""), 1);
    assert_int_equal(pp_metrics_value(wm, "link_worker_bad_messages_total", "kind=\"job_frame\""),
                     1);
    zmq_msg_close(&body);
}

static void test_pending_bound(void **state)
{
    (void)state;
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, NULL, HB, 0, 10, 1 << 20);
    zmq_msg_t m;
    int ok = 0;
    for (int i = 0; i < 20; i++) {
        zmq_msg_init_size(&m, 30);
        memset(zmq_msg_data(&m), 'a', 30);
        if (pp_dispatch_enqueue(d, &m) == 0)
            ok++;
        else
            assert_int_equal(zmq_msg_size(&m), 30); // untouched on failure
        zmq_msg_close(&m);
    }
    assert_int_equal(ok, 10);
    assert_true(pp_dispatch_full(d));
    pp_dispatch_destroy(&d);
    // The byte bound: 30-byte jobs under a 100-byte bound, the last one may pass it.
    d = pp_dispatch_new("test", ep, NULL, NULL, HB, 0, 1000, 100);
    ok = 0;
    for (int i = 0; i < 20; i++) {
        zmq_msg_init_size(&m, 30);
        if (pp_dispatch_enqueue(d, &m) == 0) ok++;
        zmq_msg_close(&m);
    }
    assert_int_equal(ok, 4);
    assert_int_equal(pp_dispatch_pending_bytes(d), 120);
    assert_true(pp_dispatch_full(d));
    // Numbered jobs (so s_run can count them); a worker drains them; then there is room.
    s_reset();
    s_worker_t w = {.link = pp_link_new(ep, NULL, NULL, 8, HB, 0), .ack = true, .ticking = true};
    pp_dispatch_destroy(&d);
    d = pp_dispatch_new("test", ep, NULL, NULL, HB, 0, 1000, 100);
    s_enqueue(d, 3, 30);
    assert_true(pp_dispatch_full(d));
    s_run(d, &w, 1, 3000, s_all_acked, d);
    assert_false(pp_dispatch_full(d));
    assert_int_equal(w.acked, 3);
    pp_link_destroy(&w.link);
    pp_dispatch_destroy(&d);
}

/*  Outputs: a worker sends two outputs per job, then acks it. The hub hands every output to
    the output function, and always before the job's ack (one socket keeps order). */
typedef struct {
    pp_dispatch_t *d;
    int outputs[NJOBS];
    int out_of_order; // outputs seen for a job already acked
    int total;
} s_outputs_t;

static bool s_on_output(void *ctx, zmq_msg_t *body)
{
    s_outputs_t *o = ctx;
    int id = s_job_id(body);
    assert_true(id >= 0 && id < NJOBS);
    o->outputs[id]++;
    o->total++;
    if (s_done[id]) o->out_of_order++;
    return true;
}

static bool s_all_outputs(void *arg)
{
    s_outputs_t *o = arg;
    return o->total == 2 * NJOBS && pp_dispatch_in_flight(o->d) == 0 &&
           pp_dispatch_pending(o->d) == 0;
}

static void test_outputs_before_ack(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_metrics_t *m = pp_metrics_new("t");
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, m, HB, 0, 1000, 1 << 20);
    s_outputs_t o = {.d = d};
    pp_dispatch_set_output(d, s_on_output, &o);
    pp_link_t *l = pp_link_new(ep, NULL, NULL, 8, HB, 0);
    s_enqueue(d, NJOBS, 40);
    uint64_t end = pp_mono_ms() + 5000;
    while (pp_mono_ms() < end && !s_all_outputs(&o)) {
        zmq_pollitem_t items[2] = {{pp_dispatch_socket(d), 0, ZMQ_POLLIN, 0},
                                   {pp_link_socket(l), 0, ZMQ_POLLIN, 0}};
        zmq_poll(items, 2, 5);
        // The hub's side first, so that the acks it reads are checked against outputs.
        pp_dispatch_on_readable(d);
        pp_dispatch_tick(d, pp_mono_ms());
        uint64_t seq;
        zmq_msg_t body;
        zmq_msg_init(&body);
        while (pp_link_recv(l, &seq, &body) == 1) {
            for (int k = 0; k < 2; k++) {
                zmq_msg_t out;
                zmq_msg_init(&out);
                zmq_msg_copy(&out, &body);
                assert_int_equal(pp_link_send(l, &out), 0);
                zmq_msg_close(&out);
            }
            pp_link_ack(l, seq);
            pp_link_tick(l); // flush the ack right behind the outputs
        }
        zmq_msg_close(&body);
        pp_link_tick(l);
        // Mark acked jobs once the hub has processed their acks.
        if (pp_dispatch_in_flight(d) == 0)
            for (int i = 0; i < NJOBS; i++)
                if (o.outputs[i] == 2) s_done[i] = 1;
    }
    assert_int_equal(o.total, 2 * NJOBS);
    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(o.outputs[i], 2);
    assert_int_equal(o.out_of_order, 0);
    assert_int_equal(s_metric(m, "link_outputs_total", POOL), 2 * NJOBS);
    assert_int_equal(s_metric(m, "link_acks_total", POOL), NJOBS);
    pp_link_destroy(&l);
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&m);
}

/*  While the owner is not reading the hub socket (backpressure), silent workers are not
    declared dead; once reading resumes they are heard again. */
static void test_not_reading_is_not_death(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_metrics_t *m = pp_metrics_new("t");
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, m, HB, 3 * HB, 1000, 1 << 20);
    s_worker_t w = {.link = pp_link_new(ep, NULL, NULL, 4, HB, 0), .ack = true, .ticking = true};
    s_run(d, &w, 1, 2000, s_has_credit, d);
    assert_int_equal(pp_dispatch_workers(d), 1);
    pp_dispatch_set_reading(d, false);
    uint64_t end = pp_mono_ms() + 6 * HB;
    while (pp_mono_ms() < end) { // the hub ticks but never reads
        pp_dispatch_tick(d, pp_mono_ms());
        pp_link_tick(w.link);
        usleep(10000);
    }
    assert_int_equal(pp_dispatch_workers(d), 1);
    assert_int_equal(s_metric(m, "link_worker_deaths_total", POOL), 0);
    pp_dispatch_set_reading(d, true);
    s_run(d, &w, 1, 2 * HB, NULL, NULL);
    assert_int_equal(pp_dispatch_workers(d), 1);
    assert_int_equal(s_metric(m, "link_worker_deaths_total", POOL), 0);
    pp_link_destroy(&w.link);
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&m);
}

// ---------------------------------------------------------------- batches ("K")

/*  Receives one whole message from a raw socket (waiting up to a second) into f[], at most
    max frames kept. Returns the number of frames, 0 on timeout. */
static int s_raw_recv(void *sock, zmq_msg_t *f, int max)
{
    if (zmq_poll(&(zmq_pollitem_t){sock, 0, ZMQ_POLLIN, 0}, 1, 1000) <= 0) return 0;
    int n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t tmp;
        zmq_msg_init(&tmp);
        assert_true(zmq_msg_recv(&tmp, sock, 0) >= 0);
        more = zmq_msg_more(&tmp);
        if (n < max) {
            zmq_msg_init(&f[n]);
            zmq_msg_move(&f[n], &tmp);
        }
        zmq_msg_close(&tmp);
        n++;
    }
    return n;
}

/*  Reads the hub's greeting to a worker it just registered: "H" + its heartbeat_ms (u32),
    before any job. */
static void s_raw_greeting(void *sock, uint32_t heartbeat_ms)
{
    zmq_msg_t f[2];
    assert_int_equal(s_raw_recv(sock, f, 2), 2);
    assert_int_equal(zmq_msg_size(&f[0]), 1);
    assert_int_equal(*(char *)zmq_msg_data(&f[0]), 'H');
    assert_int_equal(zmq_msg_size(&f[1]), 4);
    assert_int_equal(pp_link_get_u32(zmq_msg_data(&f[1])), heartbeat_ms);
    zmq_msg_close(&f[0]);
    zmq_msg_close(&f[1]);
}

static uint64_t s_be(const uint8_t *b, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | b[i];
    return v;
}

/*  The hub batches jobs for a worker with credit into "K" messages (at most 64 jobs each),
    sends a job too big for a batch alone as "J", and one "A" acknowledges them all. A raw
    DEALER plays the worker so the wire format itself is checked. */
static void test_batch_wire(void **state)
{
    (void)state;
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_metrics_t *m = pp_metrics_new("t");
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, m, HB, 0, 1000, 1 << 20);
    zsock_t *raw = zsock_new(ZMQ_DEALER);
    zsock_set_linger(raw, 0);
    assert_int_equal(zsock_connect(raw, "%s", ep), 0);
    void *r = zsock_resolve(raw);
    s_raw_send(r, 2, (const char *[]){"R", "\0\0\0\x80"}, (size_t[]){1, 4}); // credit 128
    s_run(d, NULL, 0, 100, s_has_credit, d);
    assert_int_equal(pp_dispatch_credit(d), 128);
    s_raw_greeting(r, HB);
    s_enqueue(d, 100, 0);
    zmq_msg_t big;
    zmq_msg_init_size(&big, 70000); // over the 64 KiB batch limit: goes alone as "J"
    memset(zmq_msg_data(&big), 'b', 70000);
    assert_int_equal(pp_dispatch_enqueue(d, &big), 0);
    zmq_msg_close(&big);
    pp_dispatch_pump(d);
    uint8_t acks[8 * 101];
    int nacks = 0, expect_id = 0, sizes[3] = {64, 36, 0};
    uint64_t first = 0;
    for (int msg = 0; msg < 3; msg++) {
        zmq_msg_t f[4];
        int nf = s_raw_recv(r, f, 4);
        if (msg < 2) {
            // "K" + one frame of [seq u64][len u32][body] entries.
            assert_int_equal(nf, 2);
            assert_int_equal(*(char *)zmq_msg_data(&f[0]), 'K');
            const uint8_t *p = zmq_msg_data(&f[1]);
            size_t off = 0, size = zmq_msg_size(&f[1]);
            int entries = 0;
            while (off < size) {
                assert_true(size - off >= 12);
                uint64_t seq = s_be(p + off, 8);
                size_t len = s_be(p + off + 8, 4);
                assert_true(len <= size - off - 12);
                if (first == 0) first = seq;
                assert_int_equal(seq, first + (uint64_t)nacks); // consecutive seqs
                char want[32];
                snprintf(want, sizeof want, "job-%d:", expect_id++);
                assert_int_equal(len, strlen(want));
                assert_memory_equal(p + off + 12, want, len);
                memcpy(acks + 8 * nacks++, p + off, 8);
                off += 12 + len;
                entries++;
            }
            assert_int_equal(entries, sizes[msg]);
        } else {
            assert_int_equal(nf, 3);
            assert_int_equal(*(char *)zmq_msg_data(&f[0]), 'J');
            assert_int_equal(s_be(zmq_msg_data(&f[1]), 8), first + 100);
            assert_int_equal(zmq_msg_size(&f[2]), 70000);
            memcpy(acks + 8 * nacks++, zmq_msg_data(&f[1]), 8);
        }
        for (int i = 0; i < nf && i < 4; i++)
            zmq_msg_close(&f[i]);
    }
    assert_int_equal(pp_dispatch_in_flight(d), 101);
    assert_int_equal(s_metric(m, "link_jobs_sent_total", POOL), 101);
    s_raw_send(r, 2, (const char *[]){"A", (const char *)acks}, (size_t[]){1, 8 * 101});
    // "N" (the worker holds batched jobs its owner has not taken) draws an immediate "H".
    s_raw_send(r, 1, (const char *[]){"N"}, (size_t[]){1});
    s_raw_send(r, 2, (const char *[]){"N", "x"}, (size_t[]){1, 1}); // extra frame
    s_run(d, NULL, 0, 50, NULL, NULL);
    zmq_msg_t f[2];
    assert_int_equal(s_raw_recv(r, f, 2), 1);
    assert_int_equal(*(char *)zmq_msg_data(&f[0]), 'H');
    zmq_msg_close(&f[0]);
    assert_int_equal(pp_dispatch_in_flight(d), 0);
    assert_int_equal(s_metric(m, "link_acks_total", POOL), 101);
    assert_int_equal(s_metric(m, "link_unknown_acks_total", POOL), 0);
    assert_int_equal(s_metric(m, "link_bad_messages_total", BAD("heartbeat_frame")), 1);
    zsock_destroy(&raw);
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&m);
}

/*  A worker that dies holding a batch, part of it not even handed to its owner yet, loses
    nothing: all of the batch goes to another worker, and every job is acked exactly once. */
static void test_batch_requeued(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_metrics_t *m = pp_metrics_new("t");
    pp_metrics_t *wm = pp_metrics_new("w");
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, m, HB, 60000, 1000, 1 << 20);
    pp_link_t *dying = pp_link_new(ep, NULL, wm, 50, HB, 0);
    s_enqueue(d, NJOBS, 40);
    // Take ten jobs of its first batch, ack none.
    int taken = 0;
    zmq_msg_t body;
    zmq_msg_init(&body);
    for (int i = 0; i < 300 && taken < 10; i++) {
        zmq_poll((zmq_pollitem_t[]){{pp_dispatch_socket(d), 0, ZMQ_POLLIN, 0},
                                    {pp_link_socket(dying), 0, ZMQ_POLLIN, 0}},
                 2, 10);
        pp_dispatch_on_readable(d);
        uint64_t seq;
        while (taken < 10 && pp_link_recv(dying, &seq, &body) == 1) {
            int id = s_job_id(&body);
            assert_true(id >= 0 && id < NJOBS);
            s_got[id]++;
            taken++;
        }
    }
    zmq_msg_close(&body);
    assert_int_equal(taken, 10);
    assert_int_equal(pp_dispatch_in_flight(d), 50); // its whole window went as one batch
    assert_int_equal(pp_link_held(dying), 50);      // received, ten handed out
    assert_int_equal(pp_metrics_value(wm, "link_worker_jobs_total", NULL), 50);
    pp_link_destroy(&dying); // "B": requeued at once
    s_worker_t w = {.link = pp_link_new(ep, NULL, NULL, 16, HB, 0), .ack = true, .ticking = true};
    s_run(d, &w, 1, 5000, s_all_acked, d);
    assert_int_equal(w.acked, NJOBS);
    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(s_done[i], 1);
    assert_int_equal(s_metric(m, "link_requeued_total", POOL), 50);
    assert_int_equal(s_metric(m, "link_acks_total", POOL), NJOBS);
    pp_link_destroy(&w.link);
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&m);
    pp_metrics_destroy(&wm);
}

/*  An owner that takes one job per poll wake-up (as the resolver does, up to its batch)
    still gets every job of a batch promptly: the jobs left in pp_link make the worker ask
    the hub for a heartbeat ("N"), which wakes the poll. The heartbeat here is 5 s, so
    waiting for the regular one would blow the 3 s budget. */
static void test_batch_leftovers_wake(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, NULL, 5000, 0, 1000, 1 << 20);
    pp_link_t *l = pp_link_new(ep, NULL, NULL, 100, 5000, 0);
    s_enqueue(d, NJOBS, 0);
    int acked = 0;
    zmq_msg_t body;
    zmq_msg_init(&body);
    uint64_t end = pp_mono_ms() + 3000;
    while (acked < NJOBS && pp_mono_ms() < end) {
        pp_link_tick(l);
        zmq_pollitem_t it[2] = {{pp_dispatch_socket(d), 0, ZMQ_POLLIN, 0},
                                {pp_link_socket(l), 0, ZMQ_POLLIN, 0}};
        zmq_poll(it, 2, 20);
        pp_dispatch_on_readable(d);
        uint64_t seq;
        if ((it[1].revents & ZMQ_POLLIN) && pp_link_recv(l, &seq, &body) == 1) {
            int id = s_job_id(&body);
            assert_true(id >= 0 && id < NJOBS);
            s_done[id]++;
            pp_link_ack(l, seq);
            acked++;
        }
    }
    zmq_msg_close(&body);
    assert_int_equal(acked, NJOBS);
    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(s_done[i], 1);
    pp_link_destroy(&l);
    pp_dispatch_destroy(&d);
}

/*  Acks are taken by seq from whichever routing id sends them: a worker that reconnected
    with a new id (common/pp_link.c) acks, from there, jobs the hub still counts in flight
    for its old id. Raw DEALERs play the old id (a), the new one (b), and one the hub does
    not know (c, which is also asked "W"); an ack found nowhere is unknown; the old id's
    last job is requeued when the old id is found gone, and goes to the new one. */
static void test_acks_from_new_id(void **state)
{
    (void)state;
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_metrics_t *m = pp_metrics_new("t");
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, m, HB, 0, 1000, 1 << 20);
    zsock_t *raw[3];
    void *r[3];
    for (int i = 0; i < 3; i++) {
        raw[i] = zsock_new(ZMQ_DEALER);
        zsock_set_linger(raw[i], 0);
        assert_int_equal(zsock_connect(raw[i], "%s", ep), 0);
        r[i] = zsock_resolve(raw[i]);
    }
    s_raw_send(r[0], 2, (const char *[]){"R", "\0\0\0\5"}, (size_t[]){1, 4});
    s_run(d, NULL, 0, 100, s_has_credit, d);
    s_raw_greeting(r[0], HB);
    s_enqueue(d, 5, 0);
    pp_dispatch_pump(d);
    zmq_msg_t f[2];
    assert_int_equal(s_raw_recv(r[0], f, 2), 2);
    assert_int_equal(*(char *)zmq_msg_data(&f[0]), 'K');
    assert_int_equal(zmq_msg_size(&f[1]), 5 * (12 + strlen("job-0:")));
    uint8_t seqs[5][8];
    for (int i = 0; i < 5; i++)
        memcpy(seqs[i], (uint8_t *)zmq_msg_data(&f[1]) + i * (12 + strlen("job-0:")), 8);
    zmq_msg_close(&f[0]);
    zmq_msg_close(&f[1]);
    assert_int_equal(pp_dispatch_in_flight(d), 5);
    // The new id registers with credit 1 and acks three of the old id's jobs.
    s_raw_send(r[1], 2, (const char *[]){"R", "\0\0\0\1"}, (size_t[]){1, 4});
    s_raw_send(r[1], 2, (const char *[]){"A", (const char *)seqs[0]}, (size_t[]){1, 24});
    s_run(d, NULL, 0, 100, NULL, NULL);
    s_raw_greeting(r[1], HB);
    assert_int_equal(pp_dispatch_workers(d), 2);
    assert_int_equal(pp_dispatch_in_flight(d), 2);
    assert_int_equal(s_metric(m, "link_acks_other_id_total", POOL), 3);
    assert_int_equal(s_metric(m, "link_acks_total", POOL), 3);
    // An unknown id's ack is taken too (and draws "W"); an ack of a job acked already is
    // unknown.
    s_raw_send(r[2], 2, (const char *[]){"A", (const char *)seqs[3]}, (size_t[]){1, 8});
    s_raw_send(r[1], 2, (const char *[]){"A", (const char *)seqs[0]}, (size_t[]){1, 8});
    s_run(d, NULL, 0, 100, NULL, NULL);
    assert_int_equal(pp_dispatch_in_flight(d), 1);
    assert_int_equal(s_metric(m, "link_acks_other_id_total", POOL), 4);
    assert_int_equal(s_metric(m, "link_unknown_acks_total", POOL), 1);
    char buf[8];
    assert_int_equal(zmq_recv(r[2], buf, sizeof buf, ZMQ_DONTWAIT), 1);
    assert_int_equal(buf[0], 'W');
    // The old id is gone: the hub finds it unreachable (or unheard) and requeues its last
    // job, which goes to the new id's credit. The new id heartbeats meanwhile.
    zsock_destroy(&raw[0]);
    for (int k = 0; k < 8; k++) {
        s_raw_send(r[1], 1, (const char *[]){"H"}, (size_t[]){1});
        s_run(d, NULL, 0, HB / 2, NULL, NULL);
    }
    assert_int_equal(pp_dispatch_workers(d), 1);
    assert_int_equal(s_metric(m, "link_requeued_total", POOL), 1);
    zmq_msg_t g[3];
    int nf = 0;
    for (int tries = 0; tries < 10; tries++) { // heartbeats ("H") may come first
        nf = s_raw_recv(r[1], g, 3);
        assert_true(nf > 0);
        bool job = *(char *)zmq_msg_data(&g[0]) == 'J';
        if (job) break;
        for (int i = 0; i < nf && i < 3; i++)
            zmq_msg_close(&g[i]);
    }
    assert_int_equal(nf, 3);
    assert_int_equal(*(char *)zmq_msg_data(&g[0]), 'J');
    assert_int_equal(zmq_msg_size(&g[2]), strlen("job-4:"));
    assert_memory_equal(zmq_msg_data(&g[2]), "job-4:", strlen("job-4:"));
    for (int i = 0; i < 3; i++)
        zmq_msg_close(&g[i]);
    zsock_destroy(&raw[1]);
    zsock_destroy(&raw[2]);
    pp_dispatch_destroy(&d);
    pp_metrics_destroy(&m);
}

/*  Malformed "K" messages from a raw hub are counted (batch_frame) and dropped whole; the
    worker goes on and hands out a good batch's jobs in order. */
static void test_worker_bad_batch(void **state)
{
    s_raw_hub_t *h = *state;
    pp_link_t *l = h->link;
    pp_metrics_t *wm = h->wm;
    const char *e1 = "\0\0\0\0\0\0\0\1\0\0\0\x0a"
                     "abcd";                                    // length 10, 4 bytes there
    const char *e2 = "\0\0\0\0\0\0\0\1\0\0\0\0";                // a good empty entry
    static uint8_t many[12 * 4097];                             // 4097 entries: over the limit
    s_raw_hub_send(h, 1, (const char *[]){"K"}, (size_t[]){1}); // no frame
    s_raw_hub_send(h, 2, (const char *[]){"K", ""}, (size_t[]){1, 0});          // empty
    s_raw_hub_send(h, 2, (const char *[]){"K", e2}, (size_t[]){1, 5});          // short header
    s_raw_hub_send(h, 2, (const char *[]){"K", e1}, (size_t[]){1, 16});         // len past end
    s_raw_hub_send(h, 2, (const char *[]){"K", e2}, (size_t[]){1, 13});         // trailing byte
    s_raw_hub_send(h, 3, (const char *[]){"K", e2, "x"}, (size_t[]){1, 12, 1}); // 2 frames
    s_raw_hub_send(h, 2, (const char *[]){"K", (const char *)many}, (size_t[]){1, sizeof many});
    // A good batch: seqs 7, 8, 9 with bodies "a", "bb", "".
    const char good[] = "\0\0\0\0\0\0\0\7\0\0\0\1"
                        "a"
                        "\0\0\0\0\0\0\0\x08\0\0\0\2"
                        "bb"
                        "\0\0\0\0\0\0\0\x09\0\0\0\0";
    s_raw_hub_send(h, 2, (const char *[]){"K", good}, (size_t[]){1, sizeof good - 1});
    // Two more jobs on a credit of one: the second is over credit, still handed out.
    const char two[] = "\0\0\0\0\0\0\0\x0a\0\0\0\1"
                       "c"
                       "\0\0\0\0\0\0\0\x0b\0\0\0\1"
                       "d";
    s_raw_hub_send(h, 2, (const char *[]){"K", two}, (size_t[]){1, sizeof two - 1});
    uint64_t seqs[5];
    const char *bodies[5] = {"a", "bb", "", "c", "d"};
    zmq_msg_t body;
    zmq_msg_init(&body);
    int got = 0;
    for (int i = 0; i < 300 && got < 5; i++) {
        zmq_poll(&(zmq_pollitem_t){pp_link_socket(l), 0, ZMQ_POLLIN, 0}, 1, 10);
        while (got < 5 && pp_link_recv(l, &seqs[got], &body) == 1) {
            assert_int_equal(zmq_msg_size(&body), strlen(bodies[got]));
            assert_memory_equal(zmq_msg_data(&body), bodies[got], strlen(bodies[got]));
            got++;
            if (got == 3) {
                assert_int_equal(pp_link_held(l), 3);
                assert_int_equal(pp_link_credit(l), 1);
            }
        }
    }
    assert_int_equal(got, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(seqs[i], 7 + (uint64_t)i);
    assert_int_equal(pp_link_held(l), 5);
    assert_int_equal(pp_link_credit(l), 0);
    assert_int_equal(pp_metrics_value(wm, "link_worker_bad_messages_total", "kind=\"batch_frame\""),
                     7);
    assert_int_equal(pp_metrics_value(wm, "link_worker_bad_messages_total", "kind=\"over_credit\""),
                     1);
    assert_int_equal(pp_metrics_value(wm, "link_worker_jobs_total", NULL), 5);
    zmq_msg_close(&body);
}

/*  The hub states its heartbeat to each worker it registers; a worker with another one
    takes no job, says it is a config error and asks the process to stop, and what the hub
    sent it goes to a worker that agrees once it is gone. */
static void test_heartbeat_mismatch(void **state)
{
    (void)state;
    s_reset();
    char ep[64];
    s_endpoint(ep, sizeof ep);
    pp_dispatch_t *d = pp_dispatch_new("test", ep, NULL, NULL, HB, 0, 1000, 1 << 20);
    s_enqueue(d, 20, 0);
    s_worker_t w[2] = {
        {.link = pp_link_new(ep, NULL, NULL, 8, 2 * HB, 0), .ack = true, .ticking = true},
        {.link = NULL, .ack = true, .ticking = true}};
    assert_false(pp_proc_stopping());
    s_run(d, w, 1, 2000, s_config_error, w[0].link);
    assert_true(pp_link_config_error(w[0].link));
    assert_int_equal(pp_link_hub_heartbeat_ms(w[0].link), HB);
    assert_true(pp_proc_stopping());
    assert_int_equal(w[0].received, 0);
    assert_int_equal(pp_link_credit(w[0].link), 8); // granted before it knew; no more after
    pp_link_destroy(&w[0].link);                    // "B": the hub requeues what it sent
    w[1].link = pp_link_new(ep, NULL, NULL, 8, HB, 0);
    s_run(d, w, 2, 5000, s_all_acked, d);
    assert_int_equal(w[1].acked, 20);
    assert_false(pp_link_config_error(w[1].link));
    assert_int_equal(pp_link_hub_heartbeat_ms(w[1].link), HB);
    pp_link_destroy(&w[1].link);
    pp_dispatch_destroy(&d);
}

static void test_bad_args(void **state)
{
    (void)state;
    assert_null(pp_link_new("tcp://127.0.0.1:1", NULL, NULL, 0, HB, 0));
    assert_null(pp_link_new("nonsense", NULL, NULL, 4, HB, 0));
    assert_null(pp_dispatch_new("test", "nonsense", NULL, NULL, HB, 0, 10, 10));
    assert_null(pp_dispatch_new("test", "tcp://127.0.0.1:0", NULL, NULL, HB, 0, 0, 10));
}

int main(void)
{
    pp_log_init("test_link", PP_LOG_WARN);
    zsys_init();
    zsys_set_linger(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_flow),
        cmocka_unit_test(test_credit_limits),
        cmocka_unit_test(test_out_of_order_acks),
        cmocka_unit_test(test_two_workers_share),
        cmocka_unit_test(test_hung_worker_requeued),
        cmocka_unit_test(test_destroyed_worker_requeued),
        cmocka_unit_test(test_hub_restart),
        cmocka_unit_test(test_bad_messages),
        cmocka_unit_test_setup_teardown(test_worker_bad_messages, s_raw_hub_setup,
                                        s_raw_hub_teardown),
        cmocka_unit_test(test_pending_bound),
        cmocka_unit_test(test_outputs_before_ack),
        cmocka_unit_test(test_not_reading_is_not_death),
        cmocka_unit_test(test_batch_wire),
        cmocka_unit_test(test_batch_requeued),
        cmocka_unit_test(test_batch_leftovers_wake),
        cmocka_unit_test_setup_teardown(test_worker_bad_batch, s_raw_hub_setup, s_raw_hub_teardown),
        cmocka_unit_test(test_acks_from_new_id),
        cmocka_unit_test(test_heartbeat_mismatch),
        cmocka_unit_test(test_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

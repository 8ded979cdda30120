/*  pp_link: the worker side of the acknowledged, credit-based link to the broker's hub
    (broker/pp_dispatch.h; wire format in docs/link-protocol.md).

    A worker (resolver, apns-sender, mqtt-sender) connects one DEALER to its pool's hub
    endpoint. It holds at most `window` jobs it has not acknowledged: it grants the hub
    credit for the free part of the window ("R"), receives jobs ("J" + seq + body, or many
    in one "K"; the letters and limits are in common/pp_link_wire.h) and
    acknowledges each finished job with pp_link_ack (sent in batches as "A"). What it holds
    unacknowledged when it dies is sent again by the hub to another worker, so a job may be
    done twice (at-least-once): make job handling idempotent or tolerate duplicates.

    Typical loop (one thread; not thread-safe):
        poll pp_link_socket(l) for ZMQ_POLLIN with timeout pp_link_tick(l)
        while (pp_link_recv(l, &seq, &body) == 1) { start the job; }
        for each finished job: pp_link_ack(l, seq)
        pp_link_tick(l)     // flushes acks, grants credit, heartbeats
    Graceful stop: pp_link_pause(l, true), keep receiving and finishing jobs until
    pp_link_held(l) == 0 (bounded by your drain time), then pp_link_destroy.

    Reconnects: each connection to the hub has its own socket and routing id. When the
    connection is lost (reset, refused, the hub restarted), pp_link_tick opens a new socket
    with a new routing id and grants the free part of the window again, so whatever was in
    transit when the connection broke cannot stay counted against us at the hub (it
    requeues what it sent the old id once that id is found gone). Jobs held from the old
    connection stay valid: ack them as usual. So pp_link_socket may return another handle
    after pp_link_tick: read it before each poll, never keep it.

    Metrics (optional registry): link_worker_jobs_total, link_worker_hub_resets_total,
    link_worker_acks_dropped_total, link_worker_reconnects_total,
    link_worker_acks_withheld_total, link_worker_bad_messages_total{kind}.
*/
#ifndef PP_LINK_H
#define PP_LINK_H

#include "pp_curve.h"
#include "pp_link_wire.h"
#include "pp_metrics.h"

#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

typedef struct pp_link_t pp_link_t;

/*  The send high-water mark pp_link_new takes for sndhwm 0: the window bounds what the hub
    sends us, and acks, credit and heartbeats are few; a worker whose outputs are large
    (the resolver's) gives a lower one. */
#define PP_LINK_DEFAULT_SNDHWM 10000

/*  Creates a DEALER with a random routing id (czmq; curve applied when not NULL; the link
    keeps no pointer to curve), connects it to endpoint (at most 255 characters) and grants
    the hub `window` credit (1..PP_LINK_MAX_WINDOW, common/pp_link_wire.h). heartbeat_ms 0
    means PP_LINK_DEFAULT_HEARTBEAT_MS; it must match the hub's (see pp_link_config_error).
    sndhwm is the socket's ZMQ_SNDHWM in messages (0: PP_LINK_DEFAULT_SNDHWM), set before
    the first connection and kept by every socket the link opens after a reconnect: it
    bounds the outputs (pp_link_send) queued while the hub does not read. metrics may be
    NULL. Returns NULL with a logged error on a bad argument or endpoint. A hub not there
    yet is no error: the link tries again (100 ms, doubling up to 500 ms) from
    pp_link_tick. */
pp_link_t *pp_link_new(const char *endpoint, pp_curve_t *curve, pp_metrics_t *metrics,
                       uint32_t window, uint32_t heartbeat_ms, int sndhwm);

/*  Flushes pending acks, tells the hub "B" (bye: send the jobs I did not ack to others, now
    rather than after the timeout), closes the socket with a bounded linger (heartbeat_ms,
    at most 2 s); nulls *p. Jobs held and not acked are redone by another worker. */
void pp_link_destroy(pp_link_t **p);

/*  The raw libzmq DEALER handle of the current connection, for zmq_poll with ZMQ_POLLIN.
    It changes when pp_link_tick replaces a lost connection: fetch it again for each poll.
    ZMQ_SNDHWM, ZMQ_RCVHWM, ZMQ_SNDBUF and ZMQ_RCVBUF set on it are carried over to the
    next socket; but give the send HWM to pp_link_new instead: set here it may come after
    the first connection, and libzmq may apply a changed HWM late to a pipe in use. */
void *pp_link_socket(pp_link_t *l);

/*  Never blocks. Handles the hub's control messages (H, W; bad ones are counted and
    dropped; an "H" stating a heartbeat other than ours, see pp_link_config_error) and
    returns 1 with the next job's seq and body (moved into *body, which must be
    initialised; its old content is closed), 0 when no job is waiting, -1 on a socket error
    (errno set). */
int pp_link_recv(pp_link_t *l, uint64_t *seq, zmq_msg_t *body);

/*  Sends one output to the hub ("O" + body), e.g. the APNS and MQTT jobs a resolver makes
    of the RESOLVE job it holds; the hub routes it to the pool its kind names. Never blocks:
    returns 0 with body moved (left empty), or -1 with errno EAGAIN when the socket is at its
    high-water mark (the hub is not reading: backpressure); then poll pp_link_socket for
    ZMQ_POLLOUT, keep calling pp_link_tick, and try again. Send all of a job's outputs
    before acking it: one socket keeps their order, so the hub never sees the ack of a job
    without all its outputs, and a worker killed half-way has its job redone
    (at-least-once). If the connection is lost, outputs sent on it may be lost with it:
    then no ack of a job pp_link_recv returned before the loss is sent (counted in
    link_worker_acks_withheld_total) and the hub redoes those jobs. */
int pp_link_send(pp_link_t *l, zmq_msg_t *body);

/*  Marks job seq done: queues its ack (flushed by pp_link_tick, or at once when the batch
    is full) and frees one slot of the window. Ack each received job exactly once. */
void pp_link_ack(pp_link_t *l, uint64_t seq);

/*  Replaces a lost connection (see Reconnects above; counted in
    link_worker_reconnects_total, failed attempts retried with a backoff), sends queued
    acks, grants credit when at least a quarter of the window (and at least one slot) is
    free and not paused, and a heartbeat when nothing was sent for heartbeat_ms. Call after
    each batch of recv/ack and at least as often as asked: a lost connection is noticed
    here, so at worst a heartbeat late. Returns the ms until it needs calling again
    (>= 1; at most 50 while a connection is being made). */
int pp_link_tick(pp_link_t *l);

/*  While paused no new credit is granted (backpressure, or stopping). Credit already
    granted stays: jobs may still arrive. Unpausing grants at the next tick. */
void pp_link_pause(pp_link_t *l, bool paused);

/*  Jobs received and not yet acked. */
uint32_t pp_link_held(const pp_link_t *l);

/*  Credit granted to the hub and not yet used by a job (as far as this side knows). */
uint32_t pp_link_credit(const pp_link_t *l);

/*  True once the hub stated a heartbeat other than ours (it does so to each worker it
    registers, before any job): a configuration error, as both ends time each other out by
    it. Then the link has logged it (link_heartbeat_mismatch, naming heartbeat_ms and both
    values), asked the process to stop (pp_proc_request_stop) and takes no more work: it
    grants no credit and drops jobs still coming from that hub, unacked (the hub sends them
    to other workers). The owner stops as on a signal and exits 2. A hub that states no
    heartbeat (before issue 13) is not checked. */
bool pp_link_config_error(const pp_link_t *l);

/*  The heartbeat the hub of the current or last connection stated, 0 while unknown. */
uint32_t pp_link_hub_heartbeat_ms(const pp_link_t *l);

#endif

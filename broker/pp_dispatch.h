/*  pp_dispatch: the hub side of the acknowledged, credit-based link to one worker pool
    (resolve, apns or mqtt). See docs/link-protocol.md for the wire format.

    The dispatcher owns one ROUTER socket (bound, ZMQ_ROUTER_MANDATORY). Workers connect
    DEALERs (common/pp_link.h), grant credit with "R", and acknowledge finished jobs with
    "A" (the letters and shared limits: common/pp_link_wire.h). The dispatcher keeps a bounded FIFO
   of pending jobs; it sends a job only to a worker that has credit, and keeps every sent job (a
   refcounted zmq_msg_copy, not a byte copy) until that worker acknowledges it. A worker unheard for
   timeout_ms, or one the socket says is gone, is forgotten and its unacknowledged jobs go back to
   the front of the pending FIFO, so a worker killed with kill -9 loses nothing: delivery is
    at-least-once (a job can reach a second worker if the first died after doing it).

    Typical loop (one thread; not thread-safe):
        poll pp_dispatch_socket(d) for ZMQ_POLLIN with timeout pp_dispatch_tick(d, now)
        if readable: pp_dispatch_on_readable(d)
        read inputs that feed the pool while !pp_dispatch_full(d), pp_dispatch_enqueue(...)
        pp_dispatch_pump(d)

    Acks are taken by seq from any worker of the pool: a worker whose connection broke comes
    back with a new routing id (common/pp_link.h) and acks from there the jobs the hub still
    counts for its old id (link_acks_other_id_total); that old id is declared dead like any
    other (unreachable, or unheard for timeout_ms) and what it still holds is requeued.

    With CURVE (curve given to pp_dispatch_new), the socket admits only keys of the pool's
    role (pool "resolve": resolvers, "apns": apns-senders, "mqtt": mqtt-senders, any other
    name: any allowed key; common/pp_zap.h), and the hub knows each worker's key (User-Id):
    pp_dispatch_set_max_workers_per_key caps the workers one key may register. Outputs ("O")
    are taken only from registered workers.

    Metrics (label pool="<pool_name>"): link_jobs_sent_total, link_acks_total,
    link_acks_other_id_total, link_requeued_total, link_worker_deaths_total,
    link_unknown_acks_total,
    link_bad_messages_total{kind} (kinds include output_unregistered and workers_per_key,
    below), and gauges link_workers, link_pending, link_in_flight.
*/
#ifndef PP_DISPATCH_H
#define PP_DISPATCH_H

#include "pp_curve.h"
#include "pp_link_wire.h"
#include "pp_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef struct pp_dispatch_t pp_dispatch_t;

/*  The wire, the heartbeat default and the most credit one worker may hold
    (PP_LINK_MAX_WINDOW: more is counted as kind="credit_overflow" and clamped) are in
    common/pp_link_wire.h, shared with the workers' side. */
/*  Most workers per pool; further unknown routing ids are refused (kind="too_many_workers"). */
#define PP_DISPATCH_MAX_WORKERS 1024u
/*  The broker's default for broker.link.max_workers_per_key. */
#define PP_DISPATCH_DEFAULT_MAX_WORKERS_PER_KEY 64u

/*  Creates the ROUTER (czmq, curve applied when curve is not NULL), binds it to endpoint and
    starts an empty pool. pool_name ("resolve", "apns", "mqtt") labels metrics and logs.
    metrics may be NULL (a private registry is used). heartbeat_ms 0 means
    PP_LINK_DEFAULT_HEARTBEAT_MS; the hub states it to every worker it registers ("H" +
    heartbeat_ms, before any job), and a worker with another one stops (pp_link.h).
    timeout_ms 0 means 3 x heartbeat_ms. The pending FIFO takes at most max_msgs messages
    and about max_bytes bytes (both >= 1). Returns NULL, with a logged error, if the bind
    fails or an argument is invalid. */
pp_dispatch_t *pp_dispatch_new(const char *pool_name, const char *endpoint, pp_curve_t *curve,
                               pp_metrics_t *metrics, uint32_t heartbeat_ms, uint32_t timeout_ms,
                               size_t max_msgs, size_t max_bytes);

/*  Receive high-water mark of pp_dispatch_new's socket, per worker: generous, since a
    worker's messages are credit, acks and heartbeats, which the hub reads at once. */
#define PP_DISPATCH_DEFAULT_RCVHWM 100000

/*  pp_dispatch_new with the socket's ZMQ_RCVHWM (per worker, >= 1) given: a pool whose
    workers send outputs ("O") and whose owner stops reading it for backpressure bounds the
    outputs waiting in libzmq's receive pipes with it (the broker's resolve pool uses
    broker.hwm), so that the workers' pp_link_send meets EAGAIN soon. */
pp_dispatch_t *pp_dispatch_new_rcvhwm(const char *pool_name, const char *endpoint,
                                      pp_curve_t *curve, pp_metrics_t *metrics,
                                      uint32_t heartbeat_ms, uint32_t timeout_ms, size_t max_msgs,
                                      size_t max_bytes, int rcvhwm);

/*  Closes the socket (linger 0: unacknowledged jobs are the caller's to count as lost or
    not; they are still in pending/in-flight), frees every held message; nulls *p. */
void pp_dispatch_destroy(pp_dispatch_t **p);

/*  The raw libzmq ROUTER handle, for zmq_poll with ZMQ_POLLIN. */
void *pp_dispatch_socket(pp_dispatch_t *d);

/*  Moves *job (one frame: the job's bytes, passed to the worker unchanged) to the back of the
    pending FIFO and leaves *job empty. Returns 0, or -1 with *job untouched when the FIFO is
    full (see pp_dispatch_full): the caller then stops reading the inputs feeding this pool. */
int pp_dispatch_enqueue(pp_dispatch_t *d, zmq_msg_t *job);

/*  Like pp_dispatch_enqueue but ignores the bounds: for a job that was already read and must
    not be dropped (a resolver's output, whose RESOLVE job will be acknowledged once the
    output is read). The caller stops reading its source once pp_dispatch_full says so, which
    keeps the overshoot to the messages of one read. Returns 0 with *job moved, or -1 (out of
    memory) with *job untouched. */
int pp_dispatch_enqueue_force(pp_dispatch_t *d, zmq_msg_t *job);

/*  True when pp_dispatch_enqueue would fail: max_msgs pending, or max_bytes reached. Jobs
    requeued from dead workers may take the FIFO past its bounds (they are never dropped). */
bool pp_dispatch_full(const pp_dispatch_t *d);

/*  Reads every message waiting on the socket without blocking (R, A, H; anything else is
    counted as bad and dropped), then sends what the new credit allows (pp_dispatch_pump). */
void pp_dispatch_on_readable(pp_dispatch_t *d);

/*  Sends pending jobs, oldest first, round-robin to workers with credit, never blocking. A
    job the socket will not take now stays pending. Returns the number of jobs sent. */
size_t pp_dispatch_pump(pp_dispatch_t *d);

/*  Housekeeping; call at least as often as it asks. now_ms is pp_mono_ms(). Declares dead
    (requeueing their in-flight jobs) the workers unheard for timeout_ms, sends "H" to
    workers not sent anything for heartbeat_ms, and pumps. Returns the ms until it needs
    calling again (>= 1). */
int pp_dispatch_tick(pp_dispatch_t *d, uint64_t now_ms);

/*  Calls fn with the body of every job the hub holds: pending ones, then those in
    flight (sent, not acknowledged). For the broker's record of what a stop leaves. */
typedef void pp_dispatch_job_fn(void *ctx, const zmq_msg_t *job);
void pp_dispatch_each_job(pp_dispatch_t *d, pp_dispatch_job_fn *fn, void *ctx);

/*  Called with the body of each job a worker acknowledges, just before the hub lets it
    go (once per job, whichever routing id acks it). The broker's durability ledger
    (pp_durable) counts what is finished with it. */
typedef void pp_dispatch_acked_fn(void *ctx, const zmq_msg_t *job);
void pp_dispatch_set_acked(pp_dispatch_t *d, pp_dispatch_acked_fn *fn, void *ctx);

/*  Most workers (routing ids) one key may have registered at once, by the User-Id of their
    connection (set by the broker's ZAP handler: the client's CURVE key). A worker's "R"
    beyond it is refused: not registered, counted as kind="workers_per_key", logged
    (rate-limited) with the key, so one key cannot take every slot of a pool. 0 (the
    default): no cap. Workers without a User-Id (CURVE off) are never capped. A worker that
    reconnects counts twice until its old routing id is declared dead. */
void pp_dispatch_set_max_workers_per_key(pp_dispatch_t *d, uint32_t max);

/*  Outputs: a worker may send results back over its link ("O" + body; see pp_link_send),
    e.g. a resolver's APNS and MQTT jobs. Each one is handed to fn, which may move *body
    (zmq_msg_move) or leave it to be closed. fn returns true to keep reading, false to stop
    this pp_dispatch_on_readable call after this message (its target is full). Without an
    output function, "O" is counted as an unknown command. An "O" from a routing id that is
    not a registered worker (never sent "R", refused by the per-key cap, declared dead, or
    from before a hub restart) is dropped, counted as kind="output_unregistered", logged
    (rate-limited) and answered with "W" so that a real worker registers again. */
typedef bool(pp_dispatch_output_fn)(void *ctx, zmq_msg_t *body);
void pp_dispatch_set_output(pp_dispatch_t *d, pp_dispatch_output_fn *fn, void *ctx);

/*  Tells the dispatcher whether its owner is reading the socket. While it is not
    (backpressure: the pools this pool's outputs go to are full), workers cannot be heard,
    so none is declared dead for silence; when reading resumes every worker's clock starts
    again. Heartbeats to workers go on. */
void pp_dispatch_set_reading(pp_dispatch_t *d, bool reading);

/*  Forgets every worker and requeues all in-flight jobs to the front of the pending FIFO,
    e.g. before a bounded drain with a fresh set of workers. Returns the number requeued. */
size_t pp_dispatch_requeue_all(pp_dispatch_t *d);

size_t pp_dispatch_pending(const pp_dispatch_t *d);
size_t pp_dispatch_pending_bytes(const pp_dispatch_t *d);
size_t pp_dispatch_in_flight(const pp_dispatch_t *d);
size_t pp_dispatch_workers(const pp_dispatch_t *d);
/*  Credit left summed over workers: jobs the pool would take now. */
uint64_t pp_dispatch_credit(const pp_dispatch_t *d);

#endif

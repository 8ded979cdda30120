/*  pp_linkset: one pp_link (common/pp_link.h) per broker, used as one link by a worker.

    A pipeline may run several brokers (active-active: "broker_address" lists them,
    pp_proc_broker_addresses). A worker (resolver, apns-sender, mqtt-sender) connects one
    link to the same hub (pool) of each broker and takes work from all of them, so adding
    a broker is starting one more process: every worker starts serving it at its next start.

    Every link is a full pp_link of its own: its own window (each broker may give this
    worker up to `window` jobs), credit, heartbeats, reconnects and pause. The set adds:
    - poll items for all links (pp_linkset_poll_items) and a receive that takes the next
      job from any link, round-robin over the links that have one (no broker starves);
    - a job handle: pp_linkset_recv returns a 64-bit handle instead of the hub's seq; it
      remembers which link (broker) the job came from. pp_linkset_ack acks the job on that
      link, and pp_linkset_send sends an output of that job on that link: a broker counts a
      job's outputs against its own message (its durability ledger, broker/pp_durable.h),
      so an output sent to another broker would be lost to the first and unknown to the
      second. The same link also keeps the order "outputs, then ack" (pp_link_send).
    With one endpoint the set is a thin wrapper: the handle is the hub's seq itself and
    every verb is the pp_link verb on the one link (same wire traffic, same metrics).

    Typical loop (one thread; not thread-safe):
        n = pp_linkset_poll_items(ls, items, ZMQ_POLLIN)   // before each poll: sockets change
        zmq_poll(items, n + mine, pp_linkset_tick(ls))
        while (pp_linkset_recv(ls, &job, &body) == 1) { start the job; }
        for each output of a job: pp_linkset_send(ls, job, &out)
        for each finished job: pp_linkset_ack(ls, job)
        pp_linkset_tick(ls)

    Metrics (optional registry): the links' own (link_worker_*_total, summed over links, as
    they share names), and with two or more links link_worker_hub_jobs_total{hub="I"} (jobs
    received from the I-th endpoint, 0-based) and link_worker_bad_handles_total{kind}:
    kind "unknown" (an ack or output of a handle the set does not know: acked twice, or
    never received) and "table_full" (see pp_linkset_recv).
*/
#ifndef PP_LINKSET_H
#define PP_LINKSET_H

#include "pp_link.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef struct pp_linkset_t pp_linkset_t;

/*  Most links in one set (one per broker; common/pp_proc.h PP_PROC_MAX_BROKERS). */
#define PP_LINKSET_MAX 16

/*  Creates one pp_link per endpoint (1..PP_LINKSET_MAX endpoints, each at most 255
    characters, e.g. every broker's PP_EP_RESOLVE endpoint), each with the given curve,
    metrics, window, heartbeat_ms and send HWM (see pp_link_new; sndhwm 0: the default).
    Returns NULL with a logged error when an argument is bad or any link cannot be made. A
    broker not up yet is no error: its link keeps trying, and the others work meanwhile. */
pp_linkset_t *pp_linkset_new(const char *const *endpoints, size_t n, pp_curve_t *curve,
                             pp_metrics_t *metrics, uint32_t window, uint32_t heartbeat_ms,
                             int sndhwm);

/*  Destroys every link (each flushes its acks and says "B", so each broker sends the jobs
    not acked to other workers now); nulls *p. */
void pp_linkset_destroy(pp_linkset_t **p);

/*  Number of links (endpoints). */
size_t pp_linkset_size(const pp_linkset_t *ls);

/*  The i-th link (i < size), e.g. for its counters or socket. The set still owns it. */
pp_link_t *pp_linkset_link(pp_linkset_t *ls, size_t i);

/*  The i-th endpoint as given to pp_linkset_new (for logs). */
const char *pp_linkset_endpoint(const pp_linkset_t *ls, size_t i);

/*  Fills items[0..size) with each link's current socket and the given events (revents 0)
    and returns size. Sockets change when a link reconnects (pp_link_socket): call before
    every poll. */
size_t pp_linkset_poll_items(pp_linkset_t *ls, zmq_pollitem_t *items, short events);

/*  Never blocks. Returns 1 with the next job's handle and body (moved into *body, which
    must be initialised; its old content is closed) from the first link after the one that
    gave the last job that has one; 0 when no link has a job waiting; -1 (errno set) when
    none had a job and a link's socket failed. Also returns 0 (counted in
    link_worker_bad_handles_total{kind="table_full"}, logged) in the unlikely case that the
    set cannot remember one more job: far more held than the windows allow, from hubs
    sending beyond their credit. */
int pp_linkset_recv(pp_linkset_t *ls, uint64_t *job, zmq_msg_t *body);

/*  Sends one output of job (a handle from pp_linkset_recv, not yet acked) to the broker the
    job came from, as pp_link_send does: 0 with body moved, or -1 with errno EAGAIN at the
    high-water mark (then poll pp_linkset_job_socket for ZMQ_POLLOUT, keep ticking, retry),
    or -1 with errno EINVAL for a handle the set does not know (counted as "unknown"). Send all of a
    job's outputs before acking it. */
int pp_linkset_send(pp_linkset_t *ls, uint64_t job, zmq_msg_t *body);

/*  The current socket of the link job came from (to wait for ZMQ_POLLOUT after EAGAIN), or
    NULL for a handle the set does not know. Fetch it again after each tick. */
void *pp_linkset_job_socket(pp_linkset_t *ls, uint64_t job);

/*  The index of the link job came from, or -1 for a handle the set does not know. */
int pp_linkset_job_link(const pp_linkset_t *ls, uint64_t job);

/*  Marks job done: pp_link_ack on the link it came from. Ack each received job exactly
    once: a handle acked twice (or never received) is counted and ignored when the set
    has two or more links (with one, pp_link counts it as the hub's unknown ack). */
void pp_linkset_ack(pp_linkset_t *ls, uint64_t job);

/*  Ticks every link (pp_link_tick: reconnects, acks, credit, heartbeats) and returns the
    smallest of their waits in ms (>= 1). */
int pp_linkset_tick(pp_linkset_t *ls);

/*  Pauses (no new credit) or unpauses every link. */
void pp_linkset_pause(pp_linkset_t *ls, bool paused);

/*  Jobs received and not yet acked, over all links. */
uint32_t pp_linkset_held(const pp_linkset_t *ls);

/*  Credit granted and not yet used, over all links. */
uint32_t pp_linkset_credit(const pp_linkset_t *ls);

/*  True when any link's hub stated a heartbeat other than ours (pp_link_config_error): the
    process was asked to stop, and its main exits 2. */
bool pp_linkset_config_error(const pp_linkset_t *ls);

/*  A worker's work in hand besides the jobs the set counts (notifications or publishes
    queued or in flight, jobs read but not started): true while there is some. */
typedef bool(pp_linkset_busy_fn)(void *ctx);

/*  One turn of the worker's loop: read the links, work, ack, pp_linkset_tick. Waits at
    most until deadline (pp_mono_ms). Returns 0, or -1 on a fatal error. */
typedef int(pp_linkset_turn_fn)(void *ctx, uint64_t now, uint64_t deadline);

/*  The senders' drain at stop, one for all: pauses every link (no new credit; jobs on
    credit already granted still arrive, and turn takes and does them), then runs turn
    until nothing is in hand (no job held, pp_linkset_held, and busy(ctx) false), until
    deadline (pp_mono_ms) has come, or until turn returns -1. Returns the jobs still held.
    Those are not lost: the caller stops acking and destroys the set, whose "B" has each
    broker put them back in its queue for another worker at once (as it does, after its
    timeout, for a worker that died). The turn must keep the links paused. */
uint32_t pp_linkset_drain(pp_linkset_t *ls, uint64_t deadline, pp_linkset_busy_fn *busy,
                          pp_linkset_turn_fn *turn, void *ctx);

#endif

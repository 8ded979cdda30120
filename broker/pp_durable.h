/*  pp_durable: "accepted means durable" for the broker (broker.durability "jetstream").

    Intake: pp_durable_accept publishes a frame's RESOLVE job to JetStream
    (pp_jetstream) instead of queueing it; the client's verdict waits for the publish ack
    and comes back through the reply callback: ok ("accepted", also when JetStream had it
    already under the same Nats-Msg-Id: a client's resend), or not (the store did not
    confirm: "unavailable", the client retries). A fire-and-forget frame has no route and
    no reply; when its publish fails it is counted and logged, never "accepted".

    Run: the stored jobs come back from the shared durable consumer (this broker's share
    of them, and those a dead or stopping broker left) and go to the run callback, which
    queues them to the resolve pool. The ledger follows each message: one open unit for
    its RESOLVE job plus one per output the resolvers sent for it (pp_durable_output), each
    closed when a worker acknowledges that job (pp_durable_done). When none is open the
    message is acknowledged in JetStream and leaves the stream. While it is open the broker
    tells JetStream it is still at work every ack_wait/3; if the broker dies, JetStream
    gives it to another broker after ack_wait and it runs again (at-least-once: such
    redeliveries are counted in durable_redelivered_total).

    Stop: pp_durable_give_back returns every unfinished message to the stream at once
    (NAK) for the next broker, and logs how many and their message ids.
*/
#ifndef PP_DURABLE_H
#define PP_DURABLE_H

#include "pp_jetstream.h"
#include "pp_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pp_durable_t pp_durable_t;

/*  Where an acknowledged client waits for its verdict. */
typedef struct {
    uint8_t identity[255]; /* the ROUTER routing id */
    size_t identity_len;
    bool delimiter; /* a REQ client: an empty part before the reply */
    char cid[72];   /* the client's message id, echoed in the reply ("" when none) */
    size_t cid_len;
} pp_durable_route_t;

typedef struct {
    /* The verdict on a published frame; route NULL for fire-and-forget. msg_id: the
       broker's id. */
    void (*reply)(void *ctx, const pp_durable_route_t *route, bool ok, const char *msg_id,
                  const char *error);
    /* A stored RESOLVE job to run. Returns 0 once queued, -1 if it could not be. */
    int (*run)(void *ctx, const void *job, size_t len);
} pp_durable_callbacks_t;

pp_durable_t *pp_durable_new(const pp_jetstream_cfg_t *cfg, const pp_durable_callbacks_t *cb,
                             void *ctx, pp_metrics_t *metrics, char *err, size_t errlen);
void pp_durable_destroy(pp_durable_t **p);

int pp_durable_fd(pp_durable_t *d);

/*  True when one more frame can be published now (the publish window has room). */
bool pp_durable_can_accept(pp_durable_t *d);

/*  Takes the RESOLVE job of an accepted frame into the batch being filled (published when
    full, or at pp_durable_flush). dedup_id: NULL, or the client's own message id made
    into a Nats-Msg-Id: then the frame is stored alone under it. route: NULL for
    fire-and-forget. Returns 0 (the verdict follows), PP_DURABLE_TOO_LARGE (the job does
    not fit in one stored message: refuse it as too large), or -1 (nothing taken: the
    window is full or out of memory). */
#define PP_DURABLE_TOO_LARGE (-2)
int pp_durable_accept(pp_durable_t *d, const void *job, size_t len, const char *msg_id,
                      const char *dedup_id, const pp_durable_route_t *route);

/*  Publishes the batch being filled, if any. The broker calls it once per loop turn, so
    a verdict waits at most one turn plus JetStream's round trip. */
void pp_durable_flush(pp_durable_t *d);

/*  Takes what the fd announced: verdicts and stored jobs. */
void pp_durable_on_readable(pp_durable_t *d);

/*  A resolver sent this output job (APNS or MQTT) for a message: one more open unit. */
void pp_durable_output(pp_durable_t *d, const void *job, size_t len);

/*  A worker acknowledged this job (RESOLVE, APNS or MQTT): one unit closed. */
void pp_durable_done(pp_durable_t *d, const void *job, size_t len);

/*  Pauses or resumes taking stored jobs (the resolve pool is full, or the broker stops). */
void pp_durable_set_fetching(pp_durable_t *d, bool on);

/*  Keeps JetStream informed and times out publishes. Returns ms until it wants a call. */
int pp_durable_tick(pp_durable_t *d, uint64_t now_ms);

/*  Messages taken and not finished; publishes awaiting their ack. */
size_t pp_durable_unfinished(pp_durable_t *d);
size_t pp_durable_publishing(pp_durable_t *d);

/*  Gives every unfinished message back to the stream (for another broker or the next
    run) and logs their count and ids. */
void pp_durable_give_back(pp_durable_t *d);

#endif

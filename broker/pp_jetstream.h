/*  pp_jetstream: the broker's durable store, a NATS JetStream stream used as a work queue.

    Accepted messages are published to one replicated stream (work-queue retention, file
    storage, `replicas` copies kept by JetStream's own Raft: nothing here replicates or
    votes). Every broker reads the same stream through one shared durable pull consumer,
    so a message is run by one broker at a time and, when that broker dies without
    acknowledging it, JetStream hands it to another after ack_wait_ms.

    Threads: NATS calls the publish-ack handler on its own thread and a fetch thread of
    ours pulls batches; both only append events to a locked queue and write an eventfd.
    The owner's loop polls pp_jetstream_fd() and takes events with pp_jetstream_next():
    all state beyond that queue lives on the owner's thread.

    publish: pp_jetstream_publish hands one message to NATS without waiting (at most
    `max_pending` unacknowledged at once: the caller checks pp_jetstream_can_publish).
    Each publish carries a caller token that comes back in its PP_JS_PUBACK event, with ok
    (stored, `duplicate` when JetStream's Nats-Msg-Id window had it already) or an error.
    A publish that gets no answer within publish_timeout_ms comes back as an error.

    fetch: while fetching is on and fewer than `max_buffered` fetched messages wait in the
    queue, the fetch thread pulls up to `fetch_batch` at a time. Each PP_JS_MSG event
    holds a pp_js_msg_t that the owner must finish exactly once: pp_jetstream_ack (done:
    removed from the stream), pp_jetstream_nak (give it back now, for another broker) or
    pp_jetstream_release (forget it; JetStream redelivers after ack_wait_ms).
    pp_jetstream_touch tells JetStream that work on it goes on (resets ack_wait).

    Counters: js_published_total, js_publish_failed_total, js_duplicates_total,
    js_fetched_total, js_acked_total, js_naked_total, js_fetch_errors_total,
    js_connected (gauge).
*/
#ifndef PP_JETSTREAM_H
#define PP_JETSTREAM_H

#include "pp_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PP_JS_MAX_SERVERS 16

typedef struct {
    const char *servers[PP_JS_MAX_SERVERS]; /* nats://host:port */
    size_t n_servers;
    const char *stream;  /* "PUSHPIPE" */
    const char *subject; /* "pushpipe.accepted" */
    const char *durable; /* the shared consumer: "pushpipe-brokers" */
    int replicas;        /* 1..5 copies of each message */
    bool memory;         /* memory storage (tests, benchmarks) instead of file */
    int ack_wait_ms;     /* a message unacknowledged this long goes to another broker */
    int dedup_window_ms; /* Nats-Msg-Id de-duplication window */
    int max_pending;     /* publishes awaiting their ack */
    int publish_timeout_ms;
    int fetch_batch;
    int max_buffered;    /* fetched, not yet taken by the owner */
    int max_ack_pending; /* consumer: delivered, unacknowledged, over every broker */
    int connect_timeout_ms;
    int batch_max;      /* accepted frames per stored message (pp_durable) */
    size_t batch_bytes; /* bytes per stored message, below the server's max_payload */
} pp_jetstream_cfg_t;

typedef struct pp_jetstream_t pp_jetstream_t;
typedef struct pp_js_msg_t pp_js_msg_t;

typedef enum { PP_JS_PUBACK = 1, PP_JS_MSG } pp_js_event_kind_t;

typedef struct {
    pp_js_event_kind_t kind;
    /* PP_JS_PUBACK */
    uint64_t token;
    bool ok;
    bool duplicate;
    char error[96];
    /* PP_JS_MSG */
    pp_js_msg_t *msg;
    const void *data; /* the message's bytes, valid until it is finished */
    size_t len;
    uint64_t deliveries; /* 1 the first time; more after a broker died or gave it back */
} pp_js_event_t;

/*  Fills cfg with the defaults (one local server, R1, file storage). */
void pp_jetstream_cfg_default(pp_jetstream_cfg_t *cfg);

/*  Connects, creates the stream and the consumer if missing (an existing stream is used
    as it is), starts the fetch thread (fetching off until pp_jetstream_set_fetching).
    Returns NULL with err filled when NATS cannot be reached or JetStream refuses. */
pp_jetstream_t *pp_jetstream_new(const pp_jetstream_cfg_t *cfg, pp_metrics_t *metrics, char *err,
                                 size_t errlen);

/*  Stops the fetch thread, releases (for redelivery) what was fetched and not taken,
    closes the connection. Messages the owner still holds must be finished before. */
void pp_jetstream_destroy(pp_jetstream_t **p);

/*  Readable when events wait. */
int pp_jetstream_fd(pp_jetstream_t *js);

bool pp_jetstream_can_publish(pp_jetstream_t *js);

/*  Publishes data with Nats-Msg-Id dedup_id. Returns 0 (its PP_JS_PUBACK event follows),
    or -1 when the window is full or NATS refused at once (nothing published). */
int pp_jetstream_publish(pp_jetstream_t *js, const void *data, size_t len, const char *dedup_id,
                         uint64_t token);

/*  Takes the next event; false when none waits. Call until false after the fd is readable. */
bool pp_jetstream_next(pp_jetstream_t *js, pp_js_event_t *ev);

void pp_jetstream_set_fetching(pp_jetstream_t *js, bool on);

/*  Publish-ack timeouts. Call every few tens of ms. */
void pp_jetstream_tick(pp_jetstream_t *js, uint64_t now_ms);

void pp_jetstream_ack(pp_jetstream_t *js, pp_js_msg_t **m);
void pp_jetstream_nak(pp_jetstream_t *js, pp_js_msg_t **m);
void pp_jetstream_release(pp_jetstream_t *js, pp_js_msg_t **m);
void pp_jetstream_touch(pp_jetstream_t *js, pp_js_msg_t *m);

/*  Publishes awaiting their ack. */
size_t pp_jetstream_pending(pp_jetstream_t *js);

/*  The largest message the server takes (its max_payload). */
size_t pp_jetstream_max_payload(pp_jetstream_t *js);

#endif

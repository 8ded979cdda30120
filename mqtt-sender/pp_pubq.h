/*  pp_pubq: the mqtt-sender's bounded buffer of pending publishes.

    A job carries one payload for many topics; it is kept once, as received (the ZMQ
    message and its zero-copy decode), in a reference-counted pp_pubjob_t. The queue holds
    ranges of topic indexes into such jobs, so a job of 10,000 topics costs one queue entry
    and the payload is never copied per topic. A publish taken off the queue (pp_pub_t)
    holds its own reference to the job until it is released or put back.

    Single-threaded: the sender's loop is the only user (paho copies topic and payload in
    MQTTAsync_sendMessage, so no reference crosses into paho's threads).
*/
#ifndef PP_PUBQ_H
#define PP_PUBQ_H

#include "pp_job.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef struct pp_pubjob_t pp_pubjob_t;

/*  Takes the content of msg (msg is left empty) and decodes it as an MQTT job. Returns
    the job with one reference, or NULL with a short reason in *why ("bad_field:qos",
    "no_topics", ...); on failure msg's content is released. */
pp_pubjob_t *pp_pubjob_new(zmq_msg_t *msg, const char **why);

/*  The decoded job (fields point into the kept message). */
const pp_mqtt_job_t *pp_pubjob_job(const pp_pubjob_t *job);

/*  Called once, with the last reference, when every publish of the job is finished
    (acknowledged, or failed for good): the mqtt-sender acknowledges the job to the broker's
    hub there. */
typedef void(pp_pubjob_done_fn)(void *ctx, uint64_t seq);

/*  Sets the job's done callback and the link seq it is called with. */
void pp_pubjob_on_done(pp_pubjob_t *job, pp_pubjob_done_fn *fn, void *ctx, uint64_t seq);

void pp_pubjob_ref(pp_pubjob_t *job);
/*  Drops one reference; with the last one calls the done callback (if set) and frees the
    job. Nulls *p. */
void pp_pubjob_unref(pp_pubjob_t **p);

/*  One publish: a topic of a job, with how many times it has been tried. */
typedef struct {
    pp_pubjob_t *job;  /* one reference, owned by whoever holds the pp_pub_t */
    uint32_t topic;    /* index into the job's topics */
    uint32_t attempts; /* times handed to the MQTT client so far */
    uint64_t first_ms; /* monotonic ms of the first attempt; 0: not tried yet */
    bool suspect;      /* it broke a connection while alone in flight: sent alone */
} pp_pub_t;

/*  Releases the publish's reference and clears it. */
void pp_pub_release(pp_pub_t *pub);
pp_str_t pp_pub_topic(const pp_pub_t *pub);
pp_str_t pp_pub_payload(const pp_pub_t *pub);
/*  The job's QoS, or def when the job leaves it to the sender (-1). */
int pp_pub_qos(const pp_pub_t *pub, int def);

typedef struct pp_pubq_t pp_pubq_t;

/*  A queue that reports full at max publishes. */
pp_pubq_t *pp_pubq_new(size_t max);
/*  Releases every queued publish. */
void pp_pubq_destroy(pp_pubq_t **p);

/*  Appends all topics of job, taking over the caller's reference. A job is taken whole
    even if it overshoots max (the caller checks pp_pubq_full before reading a job, so
    the overshoot is at most one job). A job without topics is released. */
void pp_pubq_push_job(pp_pubq_t *q, pp_pubjob_t *job);

/*  Puts a publish back at the head (a retry goes before newer work), taking over its
    reference; *pub is cleared. */
void pp_pubq_push_front(pp_pubq_t *q, pp_pub_t *pub);

/*  Puts a publish back at the tail (a suspect goes after the work that waits), taking over
    its reference; *pub is cleared. */
void pp_pubq_push_back(pp_pubq_t *q, pp_pub_t *pub);

/*  Takes the oldest publish. Returns false when empty. */
bool pp_pubq_pop(pp_pubq_t *q, pp_pub_t *out);

/*  Number of publishes queued. */
size_t pp_pubq_len(const pp_pubq_t *q);
bool pp_pubq_full(const pp_pubq_t *q);

#endif

/*  pp_fanout: turns one message's recipients into as few APNS and MQTT jobs as possible.

    APNs targets that share (ident, environment) go into one APNS job with the message's
    single payload, at most max_targets per job; MQTT topics go into one MQTT job with the
    message's data as payload, at most max_topics per job. A full batch is encoded
    (pp_apns_job_encode / pp_mqtt_job_encode) and handed to the send callback at once, so a
    million recipients never sit in memory together. The payload is referenced, never
    copied per recipient; uids and tokens are copied into the batch (their Redis replies
    are freed before the batch is sent).
*/
#ifndef PP_FANOUT_H
#define PP_FANOUT_H

#include "pp_apns_payload.h"
#include "pp_job.h"
#include "pp_metrics.h"

#include <stddef.h>

/*  Sends one encoded job of the given kind (PP_JOB_APNS or PP_JOB_MQTT). Returns 0, or -1
    when the job could not be sent (the callback counts and logs that). */
typedef int(pp_fanout_send_fn)(void *ctx, int kind, const void *buf, size_t len);

typedef struct {
    size_t max_targets;      /* APNs targets per APNS job */
    size_t max_topics;       /* topics per MQTT job */
    const char *mqtt_prefix; /* topics are <prefix>/user/<uid> and <prefix>/group/<gid> */
} pp_fanout_cfg_t;

typedef struct pp_fanout_t pp_fanout_t;

pp_fanout_t *pp_fanout_new(const pp_fanout_cfg_t *cfg, pp_metrics_t *metrics,
                           pp_fanout_send_fn *send, void *ctx);
void pp_fanout_destroy(pp_fanout_t **p);

/*  Starts a message. job and payload (NULL: the message has no APNs payload) must stay
    valid until pp_fanout_flush() returned. */
void pp_fanout_begin(pp_fanout_t *f, const pp_resolve_job_t *job, const pp_apns_payload_t *payload);

/*  Adds one APNs target. Sends the (ident, env) batch when it is full. Returns 0, or -1 if
    a job could not be sent or there is no payload. */
int pp_fanout_apns(pp_fanout_t *f, pp_str_t ident, int env, pp_str_t uid, pp_str_t token);

/*  Adds the topic <prefix>/<kind>/<id> (kind "user" or "group"). Sends the MQTT batch when
    it is full. Returns 0 or -1. */
int pp_fanout_topic(pp_fanout_t *f, const char *kind, pp_str_t id);

/*  Sends the open MQTT batch now (the group topic goes out before a long member lookup). */
int pp_fanout_flush_mqtt(pp_fanout_t *f);

/*  Sends every open batch; ends the message. Returns 0, or -1 if any job failed. */
int pp_fanout_flush(pp_fanout_t *f);

#endif

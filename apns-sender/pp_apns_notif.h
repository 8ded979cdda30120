/*  pp_apns_notif: one notification to one device, and the message it shares with the
    other targets of its job.

    A job carries one payload for many [uid, token] targets; the payload and headers are
    copied once into a reference-counted pp_apns_msg_t, and each target becomes a small
    pp_apns_notif_t pointing at it. The notification is the unit that is queued, sent on a
    stream, retried, and finally freed (which drops its reference on the message).

    The message also stands for the job towards the broker: when its last reference goes
    (every notification of the job delivered or given up, and the creator's reference
    released), its done callback runs once with the job's link seq, which acknowledges the
    job (pp_link_ack). A notification destroyed while the sender is closing still calls it;
    the sender ignores it then (the job is not acked, so the broker sends it again).
*/
#ifndef PP_APNS_NOTIF_H
#define PP_APNS_NOTIF_H

#include "pp_apns_apps.h"
#include "pp_metrics.h"
#include "pp_uuid.h"

#include <stddef.h>
#include <stdint.h>

typedef void(pp_apns_msg_done_fn)(void *owner, uint64_t seq);

typedef struct {
    int refs;
    pp_apns_msg_done_fn *done; /* NULL: nobody waits for the job */
    void *done_owner;
    uint64_t seq; /* the job's link seq */
    pp_apns_app_t *app;
    uint8_t env;
    int64_t expiration; /* UNIX seconds; 0 = deliver once; -1 = none */
    uint64_t received_us;
    char *msg_id;
    char *topic; /* with the push type's suffix */
    char *push_type;
    char priority[4];  /* "10", "5", "1" */
    char expiry[24];   /* header value, "" = no header */
    char *collapse_id; /* "" = no header */
    char *payload;
    size_t payload_len;
} pp_apns_msg_t;

typedef struct pp_apns_notif_t {
    struct pp_apns_notif_t *next; /* in a pool's queue */
    pp_apns_msg_t *msg;
    uint16_t attempts; /* answers that asked for a retry (429, 5xx, expired JWT) */
    uint16_t resends;  /* times it came back unprocessed (refused, GOAWAY, lost conn) */
    int64_t jwt_iat;   /* iat of the token it was last sent with */
    char apns_id[PP_UUID_LEN + 1];
    char *uid;
    char *token;
    size_t token_len;
    char data[]; /* uid and token */
} pp_apns_notif_t;

/*  Makes a message from the job's fields (copied). refs starts at 1: the caller's, dropped
    with pp_apns_msg_release once every target has its notification (so that a
    notification finished early cannot end the job before its siblings exist). NULL if out
    of memory. */
pp_apns_msg_t *pp_apns_msg_new(pp_apns_app_t *app, uint8_t env, const char *msg_id,
                               size_t msg_id_len, const char *topic, const char *push_type,
                               int priority, int64_t expiration, const char *collapse_id,
                               size_t collapse_len, const char *payload, size_t payload_len,
                               uint64_t received_us);
/*  Sets the callback run (once) when the last reference goes, with seq. */
void pp_apns_msg_on_done(pp_apns_msg_t *m, pp_apns_msg_done_fn *done, void *owner, uint64_t seq);
/*  Drops the caller's reference; with the last one, runs the done callback and frees the
    message. Nulls *p. */
void pp_apns_msg_release(pp_apns_msg_t **p);

/*  A notification for one target of msg (takes a reference). NULL if out of memory. */
pp_apns_notif_t *pp_apns_notif_new(pp_apns_msg_t *msg, const char *uid, size_t uid_len,
                                   const char *token, size_t token_len);
/*  Frees the notification and drops its reference on the message (see
    pp_apns_msg_release). */
void pp_apns_notif_destroy(pp_apns_notif_t **p);

/*  Counts n notifications given up for good in m's rejected_total{reason}: refused by
    APNs, or never sent (a bad target, out of memory, ...). */
void pp_apns_notif_rejected(pp_metrics_t *m, const char *reason, uint64_t n);

#endif

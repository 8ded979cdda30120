/*  pp_apns_intake: the apns-sender's job intake. Takes APNS jobs from the brokers' links,
    keeps those it cannot start yet, decodes and checks each one, and turns its [uid, token]
    targets into notifications queued on the app's connection pool; acks each job on the
    link it came from once its last notification is finished.

    Backpressure: a job starts only while fewer than max_pending notifications are alive
    (the owner's count, shared: intake adds one per notification it queues, the owner takes
    one off per notification it frees). Jobs that arrive meanwhile wait as their raw bytes
    (a job's notifications cost far more memory than its body), in arrival order, at most
    stash_cap of them (the link's window bounds what a hub sends); a hub sending beyond
    that has its job started at once.

    A job is acked at once, counted, when nothing of it is to be sent: it does not decode
    or has a field no resolver writes (bad_job_total, a rate-limited "bad_job" line), no app
    is configured (not_configured_total, per target), its ident has no app
    (unknown_ident_total, per target, "unknown_ident"), or every target is refused
    (rejected_total{reason}: PayloadEmpty, PayloadTooLarge, bad_token_format,
    out_of_memory, too_many_pools). Also jobs_total (received) and jobs_acked_total.
*/
#ifndef PP_APNS_INTAKE_H
#define PP_APNS_INTAKE_H

#include "pp_apns_apps.h"
#include "pp_h2pool.h"
#include "pp_job.h"
#include "pp_linkset.h"
#include "pp_metrics.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct pp_apns_intake_t pp_apns_intake_t;

/*  The pool that sends app's notifications in env, made on first use; NULL when no more
    pools can be made. */
typedef pp_h2pool_t *(pp_apns_intake_pool_fn)(void *owner, pp_apns_app_t *app, int env);

typedef struct {
    pp_linkset_t *links;  /* the brokers' links (borrowed) */
    pp_apns_apps_t *apps; /* borrowed */
    size_t *pending;      /* the owner's count of notifications alive (borrowed) */
    size_t max_pending;   /* no job starts while *pending is at this */
    size_t stash_cap;     /* most jobs kept waiting */
    pp_apns_intake_pool_fn *pool;
    void *owner; /* pool's first argument */
} pp_apns_intake_cfg_t;

/*  Creates the intake and registers its counters in m. NULL when out of memory. */
pp_apns_intake_t *pp_apns_intake_new(const pp_apns_intake_cfg_t *cfg, pp_metrics_t *m);
/*  Frees the waiting jobs (not acked: the hubs send them again elsewhere). Nulls *p. */
void pp_apns_intake_destroy(pp_apns_intake_t **p);

/*  Receives everything the hubs sent (their control messages are handled inside the
    links, so the sockets are read even while no job starts) into the waiting jobs. */
void pp_apns_intake_read(pp_apns_intake_t *in);

/*  Starts waiting jobs in arrival order while *pending is below max_pending (so it stays
    within max_pending plus one job's targets), a bounded batch per call. */
void pp_apns_intake_start(pp_apns_intake_t *in);

/*  How many jobs wait to be started. */
size_t pp_apns_intake_waiting(const pp_apns_intake_t *in);

/*  Stops acking: jobs finished after this are left to the brokers, which send them to
    other senders once the links are destroyed. */
void pp_apns_intake_leave(pp_apns_intake_t *in);

/*  What a job's notifications are sent with. */
typedef struct {
    char push_type[40]; /* apns-push-type: the job's, else the app's default */
    int priority;       /* apns-priority: the job's, else the app's; 5 for background */
    char topic[256];    /* apns-topic: the app's, with the push type's suffix (.voip, ...) */
} pp_apns_headers_t;

typedef enum {
    PP_APNS_JOB_OK = 0, /* *h is filled */
    PP_APNS_JOB_BAD,    /* a field no resolver writes: *why is "bad_field:push_type" or
                           "bad_field:headers" (priority, collapse id, env, msg id) */
    PP_APNS_JOB_REFUSED /* every target refused: *why is "PayloadEmpty" or "PayloadTooLarge"
                           (4096 bytes, 5120 for voip) */
} pp_apns_job_verdict_t;

/*  Checks a decoded job against its app and works out its headers. Pure: no counters. */
pp_apns_job_verdict_t pp_apns_intake_headers(const pp_apns_job_t *job, const pp_apns_app_t *app,
                                             pp_apns_headers_t *h, const char **why);

/*  True when a target can be sent: a hex token of 1..PP_TOKEN_MAX_LEN characters (Apple
    does not promise 64) and a uid of 1..200 bytes. */
bool pp_apns_intake_target_ok(const pp_apns_target_t *t);

#endif

/*  pp_resolver: the resolver's loop. Reads RESOLVE jobs from the broker, looks the
    recipients up in Redis (pp_userdb), applies the user rule (pp_user_rule), builds the
    APNs payload once (pp_apns_payload) and emits APNS and MQTT jobs (pp_fanout).

    One message at a time, to completion: while Redis is unavailable the message in hand
    is kept and retried from where it stopped, and no new RESOLVE job is read (they wait in
    ZMQ, or go to other resolvers). See docs/resolver.md for the rules.
*/
#ifndef PP_RESOLVER_H
#define PP_RESOLVER_H

#include "pp_fanout.h"
#include "pp_metrics.h"
#include "pp_user_rule.h"
#include "pp_userdb.h"

#include <stddef.h>

typedef struct {
    pp_user_rule_cfg_t rule;
    pp_fanout_cfg_t fanout;
    size_t pipeline;        /* users per pipelined HMGET round */
    size_t message_batch;   /* most RESOLVE jobs taken from the socket at once */
    size_t scan_threshold;  /* groups larger than this are streamed with SSCAN */
    size_t scan_count;      /* SSCAN COUNT */
    size_t scan_dedupe_max; /* most members remembered per streamed group */
    int drain_ms;           /* after SIGTERM: longest wait to finish the message in hand */
} pp_resolver_cfg_t;

typedef struct pp_resolver_t pp_resolver_t;

/*  Creates the resolver on three connected raw libzmq sockets: pull (RESOLVE jobs in),
    apns_push and mqtt_push (jobs out). It does not own the sockets or db. */
pp_resolver_t *pp_resolver_new(const pp_resolver_cfg_t *cfg, pp_metrics_t *metrics, pp_userdb_t *db,
                               void *pull, void *apns_push, void *mqtt_push);
void pp_resolver_destroy(pp_resolver_t **p);

/*  Runs until pp_proc_stopping(); finishes the message in hand (within drain_ms) first. */
void pp_resolver_run(pp_resolver_t *r);

/*  Resolves one RESOLVE frame (decode, lookups, jobs out). Returns 0, or -1 when the frame
    was bad or the message had to be abandoned (stopping while Redis was down). */
int pp_resolver_handle(pp_resolver_t *r, const void *buf, size_t len);

#endif

/*  pp_resolver: the resolver's loop. Receives RESOLVE jobs from the brokers over the
    acknowledged links (common/pp_linkset.h: one pp_link per broker), looks the recipients up in
   Redis (pp_userdb), applies the user rule (pp_user_rule), builds the APNs payload once
   (pp_apns_payload) and sends the APNS and MQTT jobs it makes back over the link the job came from,
   as outputs (pp_fanout, pp_linkset_send: a broker counts a message's outputs itself). A RESOLVE
   job is acknowledged only after every one of its outputs was handed to the link, so a resolver
   killed at any point has its unacknowledged messages redone by another resolver (at-least-once:
   outputs already sent may be sent twice).

    One message at a time, to completion: while Redis is unavailable the message in hand
    is kept (not acknowledged) and retried from where it stopped. The link is ticked
    (heartbeats, acks, credit) in every loop that can run long, so the broker never
    declares a busy resolver dead. See docs/resolver.md for the rules.
*/
#ifndef PP_RESOLVER_H
#define PP_RESOLVER_H

#include "pp_fanout.h"
#include "pp_linkset.h"
#include "pp_metrics.h"
#include "pp_user_rule.h"
#include "pp_userdb.h"

#include <stddef.h>

typedef struct {
    pp_user_rule_cfg_t rule;
    pp_fanout_cfg_t fanout;
    size_t pipeline;        /* users per pipelined HMGET round */
    size_t message_batch;   /* most RESOLVE jobs taken from the link at once (<= window) */
    size_t scan_threshold;  /* groups larger than this are streamed with SSCAN */
    size_t scan_count;      /* SSCAN COUNT */
    size_t scan_dedupe_max; /* most members remembered per streamed group */
    int drain_ms;           /* after SIGTERM: longest wait to finish the message in hand */
} pp_resolver_cfg_t;

typedef struct pp_resolver_t pp_resolver_t;

/*  Creates the resolver on connected links to the brokers' resolve endpoints (RESOLVE jobs
    in, APNS and MQTT jobs out as outputs, each on the link its job came from). It does not
    own the links or db. */
pp_resolver_t *pp_resolver_new(const pp_resolver_cfg_t *cfg, pp_metrics_t *metrics, pp_userdb_t *db,
                               pp_linkset_t *links);
void pp_resolver_destroy(pp_resolver_t **p);

/*  Runs until pp_proc_stopping(). Then pauses the links (no new credit) and finishes and
    acknowledges the messages it holds or still receives, until it holds none or drain_ms
    is over; what is left unacknowledged is re-sent by the broker to other resolvers once
    the caller destroys the links. */
void pp_resolver_run(pp_resolver_t *r);

#endif

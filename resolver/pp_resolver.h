/*  pp_resolver: the resolver's loop. Receives RESOLVE jobs from the brokers over the
    acknowledged links (common/pp_linkset.h: one pp_link per broker), looks the recipients up in
   Redis (pp_userdb), applies the user rule (pp_user_rule), builds the APNs payload once
   (pp_apns_payload) and sends the APNS and MQTT jobs it makes back over the link the job came from,
   as outputs (pp_fanout, pp_linkset_send: a broker counts a message's outputs itself). A RESOLVE
   job is acknowledged only after every one of its outputs was handed to the link, so a resolver
   killed at any point has its unacknowledged messages redone by another resolver (at-least-once:
   outputs already sent may be sent twice).

    Jobs are taken in batches (up to message_batch at once, at most the link's window):
    small messages received together become one pipelined Redis round, and up to two
    rounds are in flight, the next one sent before the previous one is read, so Redis, the
    resolver and the broker work at the same time. Messages to a group, MQTT-only messages
    and messages with more users than one round (pipeline) are resolved one at a time, to
    completion. Each message is acknowledged once all its outputs are handed to the link. While
   Redis is unavailable the messages in hand are kept (not acknowledged) and retried from where they
   stopped. The link is ticked (heartbeats, acks, credit) in every loop that can run long, so the
   broker never declares a busy resolver dead. See docs/resolver.md for the rules.
*/
#ifndef PP_RESOLVER_H
#define PP_RESOLVER_H

#include "pp_linkset.h"
#include "pp_metrics.h"
#include "pp_resolver_config.h"
#include "pp_userdb.h"

#include <stddef.h>

typedef struct pp_resolver_t pp_resolver_t;

/*  Creates the resolver on cfg (read by pp_resolver_config_read; it uses cfg->resolver) and
    on connected links to the brokers' resolve endpoints (RESOLVE jobs in, APNS and MQTT
    jobs out as outputs, each on the link its job came from). It does not own the links or
    db. */
pp_resolver_t *pp_resolver_new(const pp_resolver_config_t *cfg, pp_metrics_t *metrics,
                               pp_userdb_t *db, pp_linkset_t *links);
void pp_resolver_destroy(pp_resolver_t **p);

/*  Runs until pp_proc_stopping(). Returns 0. */
int pp_resolver_run(pp_resolver_t *r);

/*  Pauses the links (no new credit) and finishes and acknowledges the messages it holds or
    still receives, until it holds none or drain_ms is over (counted in
    messages_unacked_total and logged, "drained"); what is left unacknowledged is re-sent by the
   broker to other resolvers once the caller destroys the links. */
void pp_resolver_drain(pp_resolver_t *r);

#endif

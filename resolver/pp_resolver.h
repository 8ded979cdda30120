/*  pp_resolver: the resolver's loop and wiring. Receives RESOLVE jobs from the brokers over
    the acknowledged links (common/pp_linkset.h: one pp_link per broker), looks the
    recipients up in Redis (pp_userdb, in HMGET rounds: pp_user_lookup), applies the user
    rule (pp_user_rule), takes the message's APNs payload (pp_apns_payload, reused from the
    message before when built from the same data: pp_payload_cache) and sends the APNS and
    MQTT jobs it makes back over the link the job came from, as outputs (pp_fanout,
    pp_linkset_send: a broker counts a message's outputs itself). A RESOLVE job is
    acknowledged only after every one of its outputs was handed to the link, so a resolver
    killed at any point has its unacknowledged messages redone by another resolver
    (at-least-once: outputs already sent may be sent twice).

    Jobs are taken in batches: up to message_batch at once without waiting (at most the
    link's window). A batch of only small messages (types 2 and 3 needing lookups, all
    their users within one round of `pipeline`) becomes one pipelined HMGET round, sent at
    once and read only after the next batch's round was sent (or when no job waits): up to
    two rounds in flight, so Redis, the resolver and the broker work at the same time. Any
    other batch first finishes the rounds in flight, then is resolved in order: neighbouring
    small messages share one round (waited for); a group (SCARD, then SMEMBERS, or SSCAN
    page by page), a channels-mqtt message (no lookup) or a list longer than a round (rounds
    with the next one in flight) is resolved alone, to completion. However they were looked
    up, messages are resolved and acknowledged one after the other, in the order received:
    each as soon as all its outputs are handed to the link; a job that does not decode at
    once. While Redis is unavailable the messages in hand are kept (not acknowledged) and
    retried from where they stopped; one given up at shutdown, or one whose output could
    not be sent, stays unacknowledged. The link is ticked (heartbeats, acks, credit) in
    every loop that can run long, so the broker never declares a busy resolver dead. See
    docs/resolver.md for the rules.
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
    messages_unacked_total and logged, "drained"); what is left unacknowledged is re-sent by
    the broker to other resolvers once the caller destroys the links. */
void pp_resolver_drain(pp_resolver_t *r);

#endif

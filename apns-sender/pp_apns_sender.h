/*  pp_apns_sender: the apns-sender's loop and wiring. Takes APNS jobs from the brokers'
    links and turns each [uid, token] target into a notification (pp_apns_intake), delivers
    them over the apps' HTTP/2 connection pools (made here, on first use); handles the
    answers (delivered, invalid token, retry with backoff, rejected: pp_apns_classify), the
    retry queue, provider tokens (pp_jwt_share), invalid tokens (pp_token_gc), backpressure
    towards the brokers (max_pending), and the drain on stop.

    One thread: zmq_poll waits on the ZMQ socket and every connection's socket at once,
    with a timeout set by the earliest timer (retries, reconnects, PINGs).
*/
#ifndef PP_APNS_SENDER_H
#define PP_APNS_SENDER_H

#include "pp_apns_sender_config.h"
#include "pp_linkset.h"
#include "pp_metrics.h"

typedef struct pp_apns_sender_t pp_apns_sender_t;

/*  Creates the sender on cfg (read by pp_apns_sender_config_read and checked with
    pp_proc_ready), taking over its apps table (cfg->apps becomes NULL), on connected links
    to the brokers' apns_out hubs; metrics and links are borrowed. Returns NULL only when
    out of memory. */
pp_apns_sender_t *pp_apns_sender_new(pp_apns_sender_config_t *cfg, pp_metrics_t *metrics,
                                     pp_linkset_t *links);
/*  Frees everything; what it still held is not acked. Nulls *p. */
void pp_apns_sender_destroy(pp_apns_sender_t **p);

/*  Runs until SIGTERM/SIGINT (pp_proc_stopping). Returns 0, or -1 on a fatal error (the
    poll failed). */
int pp_apns_sender_run(pp_apns_sender_t *s);

/*  Drains with pp_linkset_drain, as the mqtt-sender does: pauses the links (no new credit)
    and finishes what it holds or still receives on credit already granted, until no job is
    held and no notification is alive, for at most apns_sender.drain_ms (not at all after a
    fatal error);
    counts and logs what was left (dropped_on_exit_total, drain_incomplete). Then leaves the
    links: nothing is acked after this, and destroying the links ("B") has the hubs send
    what was not acked to other senders. */
void pp_apns_sender_drain(pp_apns_sender_t *s);

#endif

/*  pp_mqtt_sender: the mqtt-sender's loop. Takes MQTT jobs from the mqtt_out hub of every
    broker over acknowledged, credit-based links (common/pp_linkset.h: one pp_link per
    broker, each job acked on the link it came from) and publishes each job's
    payload to each of its topics over one long-lived MQTT connection (pp_mqtt_conn), with
    many publishes in flight.

    Accounting: every publish taken from a job ends exactly once, as acknowledged (QoS 1/2:
    the MQTT broker's PUBACK/PUBCOMP; QoS 0: written to the socket) or as failed with a
    counted, logged reason. Publishes in flight when the connection breaks go back to the
    head of the buffer and are published again after the reconnect (at least once).
    A job is acked to the hub when the last of its publishes has ended (a job that cannot
    be decoded: at once), so what this process holds when it dies is sent by the hub to
    another sender. When the buffer holds buffer_max publishes, the link is paused (no new
    credit), so the hub keeps the work or gives it to another sender.
*/
#ifndef PP_MQTT_SENDER_H
#define PP_MQTT_SENDER_H

#include "pp_linkset.h"
#include "pp_metrics.h"
#include "pp_mqtt_sender_config.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct pp_mqtt_sender_t pp_mqtt_sender_t;

/*  Creates the sender on cfg (read by pp_mqtt_sender_config_read; copied) and on connected
    links to the brokers' mqtt_out hubs, and the MQTT client (not yet connected); metrics
    and links are borrowed. Returns NULL with a reason in err. */
pp_mqtt_sender_t *pp_mqtt_sender_new(const pp_mqtt_sender_config_t *cfg, pp_metrics_t *metrics,
                                     pp_linkset_t *links, char *err, size_t errlen);
/*  Frees everything; what it still held is not acked. Nulls *p. */
void pp_mqtt_sender_destroy(pp_mqtt_sender_t **p);

/*  Runs until pp_proc_stopping(). Returns 0, or -1 on a fatal error (the poll failed). */
int pp_mqtt_sender_run(pp_mqtt_sender_t *s);

/*  Drains with pp_linkset_drain, as the apns-sender does: pauses the links and finishes and
    acks what it holds or still receives on credit already granted, until no job is held
    and nothing is buffered or in flight, for at most drain_ms (not at all after a fatal
    error); then disconnects. Publishes that could not be delivered before the
    drain deadline are counted as failed_total{reason="shutdown"} and logged
    (drain_incomplete); their jobs are not acked. Then leaves the links: nothing is acked
    after this, and destroying the links ("B") has the hubs send those jobs to another
    sender. */
void pp_mqtt_sender_drain(pp_mqtt_sender_t *s);

#endif

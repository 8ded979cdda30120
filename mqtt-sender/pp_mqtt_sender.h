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

#include "pp_curve.h"
#include "pp_linkset.h"
#include "pp_metrics.h"
#include "pp_mqtt_conn.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char link_endpoint[PP_LINKSET_MAX][256]; /* each broker's mqtt_out hub */
    size_t n_links;                          /* 1..PP_LINKSET_MAX */
    int link_window;       /* jobs held unacknowledged at most (credit), per link */
    int link_heartbeat_ms; /* must match the hub's */
    pp_mqtt_conn_opts_t mqtt;
    int qos;           /* default QoS for jobs that leave it open */
    int window;        /* publishes in flight at most */
    size_t buffer_max; /* publishes buffered before the link is paused */
    int drain_ms;      /* bounded wait for acknowledgements at stop */
    int reconnect_min_ms, reconnect_max_ms;
    int max_attempts;       /* a publish is handed to the MQTT client at most this often (>= 1) */
    int publish_timeout_ms; /* from a publish's first attempt: past it, given up */
    size_t max_job_bytes;
} pp_mqtt_sender_cfg_t;

typedef struct pp_mqtt_sender_t pp_mqtt_sender_t;

/*  Creates the links to the hubs (connected, credit granted) and the MQTT client (not yet
   connected); metrics and curve are borrowed. Returns NULL with a reason in err. */
pp_mqtt_sender_t *pp_mqtt_sender_new(const pp_mqtt_sender_cfg_t *cfg, pp_metrics_t *metrics,
                                     pp_curve_t *curve, char *err, size_t errlen);
void pp_mqtt_sender_destroy(pp_mqtt_sender_t **p);

/*  Runs until pp_proc_stopping(), then drains (pauses the link, finishes and acks what it
    holds, at most drain_ms) and disconnects. Returns 0, or the number of publishes that
    could not be delivered before the drain deadline (counted as
    failed_total{reason="shutdown"} and logged); their jobs are not acked, so the hub sends
    them to another sender once pp_mqtt_sender_destroy closes the link. */
size_t pp_mqtt_sender_run(pp_mqtt_sender_t *s);

#endif

/*  pp_mqtt_sender_config: the mqtt_sender section of the config, read and checked in one
    place (docs/mqtt-sender.md lists the keys).
*/
#ifndef PP_MQTT_SENDER_CONFIG_H
#define PP_MQTT_SENDER_CONFIG_H

#include "pp_config.h"
#include "pp_linkset_config.h"
#include "pp_mqtt_conn.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    pp_linkset_config_t link; /* each broker's mqtt_out hub, window (credit), heartbeat */
    pp_mqtt_conn_opts_t mqtt; /* strings live as long as the configuration, but client_id */
    char client_id[160];      /* mqtt.client_id points here */
    int qos;                  /* default QoS for jobs that leave it open */
    int window;               /* publishes in flight at most */
    size_t buffer_max;        /* publishes buffered before the link is paused */
    int drain_ms;             /* bounded wait for acknowledgements at stop */
    int reconnect_min_ms, reconnect_max_ms;
    int max_attempts;       /* a publish is handed to the MQTT client at most this often (>= 1) */
    int publish_timeout_ms; /* from a publish's first attempt: past it, given up */
    size_t max_job_bytes;
} pp_mqtt_sender_config_t;

/*  Reads the mqtt_sender section (except metrics_port/metrics_address, which pp_proc_ready
    reads) into *cfg, and the mqtt_out endpoint of each of the n_brokers broker addresses
    (pp_proc_broker_addresses). Without mqtt_sender.client_id the client id is made unique
    per process (host, pid, random). Problems are recorded in config (pp_config_fail)
    naming the key; check with pp_proc_ready. */
void pp_mqtt_sender_config_read(pp_config_t *config, pp_mqtt_sender_config_t *cfg,
                                const char *const *brokers, size_t n_brokers);

#endif

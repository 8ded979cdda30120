/*  pp_apns_sender_config: the apns_sender section of the config, read and checked in one
    place (docs/apns-sender.md lists the keys). Besides the settings it holds the apps table
    (apns_sender.apps: credentials and TLS contexts, pp_apns_apps.h), since a bad app is a
    configuration error that must stop the process before it connects anything.
*/
#ifndef PP_APNS_SENDER_CONFIG_H
#define PP_APNS_SENDER_CONFIG_H

#include "pp_apns_apps.h"
#include "pp_apns_redis.h"
#include "pp_config.h"
#include "pp_jwt_share.h"
#include "pp_linkset_config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char host[256];
    int port;
} pp_apns_hostport_t;

typedef struct {
    pp_linkset_config_t link;    /* each broker's apns_out hub, window, heartbeat */
    pp_apns_hostport_t hosts[2]; /* APNs per environment: sandbox, production */
    pp_apns_apps_t *apps;        /* owned until pp_apns_sender_new takes it */
    int max_attempts;            /* retry.max_attempts */
    uint32_t retry_base_ms, retry_max_ms;
    size_t max_pending; /* notifications held before the link is paused */
    uint32_t drain_ms;
    uint32_t ping_interval_ms, timeout_ms, reconnect_min_ms, reconnect_max_ms;
    uint32_t request_timeout_ms; /* every request's deadline */
    int max_resends;             /* sends of one request APNs did not process */
    pp_jwt_timing_t jwt;
    pp_apns_redis_opts_t redis;
    bool remove_invalid_tokens;
    const char *invalid_token_list; /* strings live as long as the configuration */
    const char *user_key_prefix;
} pp_apns_sender_config_t;

/*  Reads the apns_sender section (except metrics_port/metrics_address, which pp_proc_ready
    reads) into *cfg, the apps table included, and the apns_out endpoint of each of the
    n_brokers broker addresses (pp_proc_broker_addresses). Problems are recorded in config
    (pp_config_fail) naming the key; check with pp_proc_ready. Free what it holds with
    pp_apns_sender_config_clear (pp_apns_sender_new takes the apps table over). */
void pp_apns_sender_config_read(pp_config_t *config, pp_apns_sender_config_t *cfg,
                                const char *const *brokers, size_t n_brokers);

/*  Frees the apps table if it is still held. */
void pp_apns_sender_config_clear(pp_apns_sender_config_t *cfg);

#endif

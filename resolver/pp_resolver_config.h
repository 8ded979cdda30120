/*  pp_resolver_config: the resolver section of the config, read and checked in one place
    (docs/resolver.md lists the keys).
*/
#ifndef PP_RESOLVER_CONFIG_H
#define PP_RESOLVER_CONFIG_H

#include "pp_config.h"
#include "pp_fanout.h"
#include "pp_linkset_config.h"
#include "pp_user_rule.h"
#include "pp_userdb.h"

#include <stddef.h>
#include <stdint.h>

/*  The loop's settings (pp_resolver.c). */
typedef struct {
    pp_user_rule_cfg_t rule;
    pp_fanout_cfg_t fanout;
    size_t pipeline;        /* users per pipelined HMGET round */
    size_t message_batch;   /* most RESOLVE jobs taken from the link at once (<= window) */
    size_t scan_threshold;  /* groups larger than this are streamed with SSCAN */
    size_t scan_count;      /* SSCAN COUNT */
    size_t scan_dedupe_max; /* most members remembered per streamed group */
    int drain_ms;           /* after SIGTERM: longest wait to finish the messages in hand */
} pp_resolver_cfg_t;

typedef struct {
    pp_resolver_cfg_t resolver;
    pp_userdb_cfg_t redis;    /* resolver.redis.* */
    pp_linkset_config_t link; /* each broker's resolve hub, window, heartbeat, send HWM
                                 (resolver.link.send_hwm, in messages) */
} pp_resolver_config_t;

/*  Reads the resolver section (except metrics_port/metrics_address, which pp_proc_ready
    reads) into *cfg, and the resolve endpoint of each of the n_brokers broker addresses
    (pp_proc_broker_addresses). Problems are recorded in config (pp_config_fail) naming the
    key; check with pp_proc_ready. Strings live as long as the configuration. */
void pp_resolver_config_read(pp_config_t *config, pp_resolver_config_t *cfg,
                             const char *const *brokers, size_t n_brokers);

#endif

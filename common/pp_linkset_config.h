/*  pp_linkset_config: the link keys every worker has, read one way, and the set of links
    they describe opened one way.

        pp_linkset_config_t lc;
        pp_linkset_config_read(config, &lc, "apns_sender", PP_EP_APNS_OUT, brokers, n, 256);
        ...  // after pp_proc_ready
        pp_linkset_t *links = pp_linkset_config_open(&lc, curve, metrics);

    Keys: "<section>.link.window" (jobs held unacknowledged per link, 1..PP_LINK_MAX_WINDOW,
    the stage's own default) and the top-level "heartbeat_ms" (pp_link_heartbeat_read).
    The endpoints are each broker address's hub of the stage (pp_endpoint). The resolver
    also sets sndhwm from its own key; the senders leave it 0 (pp_link's default).
*/
#ifndef PP_LINKSET_CONFIG_H
#define PP_LINKSET_CONFIG_H

#include "pp_config.h"
#include "pp_curve.h"
#include "pp_endpoints.h"
#include "pp_linkset.h"
#include "pp_metrics.h"

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char endpoint[PP_LINKSET_MAX][256]; /* each broker's hub of this stage */
    size_t n;                           /* endpoints made (as many as brokers when valid) */
    size_t n_brokers;                   /* broker addresses given */
    uint32_t window;                    /* <section>.link.window */
    uint32_t heartbeat_ms;              /* top-level heartbeat_ms; must match the hubs' */
    int sndhwm;                         /* ZMQ_SNDHWM of the links; 0: pp_link's default */
} pp_linkset_config_t;

/*  Fills *out from the config: one endpoint of hub `which` per broker address (a bad
    address was already recorded as a config error by pp_proc_broker_addresses and is left
    out), "<section>.link.window" with default_window, the heartbeat. Errors are recorded in
    c (pp_proc_ready reports them). */
void pp_linkset_config_read(pp_config_t *c, pp_linkset_config_t *out, const char *section,
                            pp_ep_t which, const char *const *brokers, size_t n_brokers,
                            uint32_t default_window);

/*  Opens one link per endpoint (pp_linkset_new; each link logs its link_connected line).
    NULL when an endpoint could not be made from its broker address (the config was then
    refused already) or the set cannot be made (logged by pp_linkset_new). */
pp_linkset_t *pp_linkset_config_open(const pp_linkset_config_t *lc, pp_curve_t *curve,
                                     pp_metrics_t *metrics);

#endif

#include "pp_linkset_config.h"
#include "pp_link_wire.h"

#include <stdio.h>
#include <string.h>

void pp_linkset_config_read(pp_config_t *c, pp_linkset_config_t *out, const char *section,
                            pp_ep_t which, const char *const *brokers, size_t n_brokers,
                            uint32_t default_window)
{
    memset(out, 0, sizeof *out);
    out->n_brokers = n_brokers;
    for (size_t i = 0; i < n_brokers && i < PP_LINKSET_MAX; i++) /* one link per broker */
        if (pp_endpoint(brokers[i], which, out->endpoint[out->n], sizeof out->endpoint[0]) == 0)
            out->n++; /* else pp_proc_broker_addresses recorded the error */
    char key[128];
    snprintf(key, sizeof key, "%s.link.window", section);
    out->window = (uint32_t)pp_config_int(c, key, default_window, 1, (int64_t)PP_LINK_MAX_WINDOW);
    out->heartbeat_ms = pp_link_heartbeat_read(c, section);
}

pp_linkset_t *pp_linkset_config_open(const pp_linkset_config_t *lc, pp_curve_t *curve,
                                     pp_metrics_t *metrics)
{
    if (lc->n == 0 || lc->n != lc->n_brokers) return NULL;
    const char *eps[PP_LINKSET_MAX];
    for (size_t i = 0; i < lc->n; i++)
        eps[i] = lc->endpoint[i];
    return pp_linkset_new(eps, lc->n, curve, metrics, lc->window, lc->heartbeat_ms, lc->sndhwm);
}

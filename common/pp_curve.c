#include "pp_curve.h"

#include <stdlib.h>

/* Placeholder until CURVE lands (issue 6): reads the switch and refuses to run with it on,
   so that nobody believes traffic is protected when it is not. */
struct pp_curve_t {
    bool enabled;
    bool server;
};

pp_curve_t *pp_curve_new(pp_config_t *config, bool server)
{
    pp_curve_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->server = server;
    c->enabled = pp_config_bool(config, "curve.enabled", false);
    if (c->enabled)
        pp_config_fail(config, "curve.enabled", "CURVE is not implemented yet");
    return c;
}

void pp_curve_destroy(pp_curve_t **p)
{
    if (p && *p) {
        free(*p);
        *p = NULL;
    }
}

bool pp_curve_enabled(const pp_curve_t *c)
{
    return c && c->enabled;
}

int pp_curve_apply(pp_curve_t *c, void *zmq_socket)
{
    (void)c, (void)zmq_socket;
    return 0;
}

#include "pp_apns_keepalive.h"

#include <stddef.h>

static pp_apns_keepalive_fn *s_fn;
static void *s_arg;

void pp_apns_keepalive_set(pp_apns_keepalive_fn *fn, void *arg)
{
    s_fn = fn;
    s_arg = arg;
}

void pp_apns_keepalive(void)
{
    if (s_fn) s_fn(s_arg);
}

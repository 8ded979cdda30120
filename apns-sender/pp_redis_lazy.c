#include "pp_redis_lazy.h"

#include "pp_log.h"

#include <stdio.h>
#include <stdlib.h>

/* After a failed connect: long enough that a Redis that is down does not cost the loop a
   connect timeout on every turn, short enough that it is used soon after it is back. */
#define S_RETRY_CONNECT_MS 5000

struct pp_redis_lazy_t {
    pp_apns_redis_opts_t opts;
    char event[64];
    pp_metric_t *errors;
    redisContext *rc;
    uint64_t next_connect_ms;
};

pp_redis_lazy_t *pp_redis_lazy_new(const pp_apns_redis_opts_t *opts, const char *event,
                                   pp_metric_t *errors)
{
    pp_redis_lazy_t *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    if (opts) r->opts = *opts;
    snprintf(r->event, sizeof r->event, "%s", event ? event : "redis_down");
    r->errors = errors;
    return r;
}

void pp_redis_lazy_destroy(pp_redis_lazy_t **p)
{
    if (!p || !*p) return;
    if ((*p)->rc) redisFree((*p)->rc);
    free(*p);
    *p = NULL;
}

bool pp_redis_lazy_enabled(const pp_redis_lazy_t *r)
{
    return r->opts.enabled;
}

redisContext *pp_redis_lazy_get(pp_redis_lazy_t *r, const char *detail)
{
    if (!r->opts.enabled) return NULL;
    if (r->rc) return r->rc;
    uint64_t now = pp_mono_ms();
    if (now < r->next_connect_ms) return NULL;
    char err[256];
    r->rc = pp_apns_redis_connect(&r->opts, err, sizeof err);
    if (!r->rc) {
        r->next_connect_ms = now + S_RETRY_CONNECT_MS;
        if (r->errors) pp_metric_inc(r->errors);
        bool more = detail && detail[0];
        pp_warn(r->event, "error=\"%s\"%s%s", err, more ? " " : "", more ? detail : "");
    }
    return r->rc;
}

void pp_redis_lazy_drop(pp_redis_lazy_t *r, uint32_t retry_ms)
{
    if (r->rc) redisFree(r->rc);
    r->rc = NULL;
    r->next_connect_ms = pp_mono_ms() + retry_ms;
}

/*  pp_redis_lazy: one blocking Redis connection (hiredis) made when first needed and made
    again after a failure, for the apns-sender's side tasks that use Redis now and then
    (pp_jwt_share, pp_token_gc). Not the resolver's: its Redis is on the hot path and has
    its own recovery (resolver/pp_userdb.h).

    Connecting goes through pp_apns_redis_connect: apns_sender.redis.timeout_ms bounds the
    connect and each command, and the broker link is ticked around each step
    (pp_apns_keepalive). A connect that fails is counted in the owner's error counter,
    logged once as "<event> error=..." and not tried again for 5 s, so a Redis that is down
    costs the send loop one bounded wait per 5 s, not one per call.
*/
#ifndef PP_REDIS_LAZY_H
#define PP_REDIS_LAZY_H

#include "pp_apns_redis.h"
#include "pp_metrics.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct pp_redis_lazy_t pp_redis_lazy_t;

/*  A connection to the Redis of opts (copied; NULL or not enabled: none, every get gives
    NULL). Nothing is connected yet. event names the log line of a failed connect (e.g.
    "jwt_share_redis_down"); errors (borrowed, may be NULL) counts failed connects. NULL
    only when out of memory. */
pp_redis_lazy_t *pp_redis_lazy_new(const pp_apns_redis_opts_t *opts, const char *event,
                                   pp_metric_t *errors);
/*  Closes the connection if one is open; nulls *p. */
void pp_redis_lazy_destroy(pp_redis_lazy_t **p);

/*  True when Redis is configured (apns_sender.redis.host set). */
bool pp_redis_lazy_enabled(const pp_redis_lazy_t *r);

/*  The open connection, or a new one. NULL when Redis is not configured, while the 5 s
    after a failed connect run, or when this connect failed (counted and logged; detail,
    NULL or "", is added to the log line, e.g. "queued=12"). The connection stays the
    owner's to use until it calls pp_redis_lazy_drop. */
redisContext *pp_redis_lazy_get(pp_redis_lazy_t *r, const char *detail);

/*  Closes the connection after a failure on it (I/O error, timeout): the next get connects
    again, at the earliest retry_ms from now (0: at once). */
void pp_redis_lazy_drop(pp_redis_lazy_t *r, uint32_t retry_ms);

#endif

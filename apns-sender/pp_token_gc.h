/*  pp_token_gc: what happens to a device token APNs calls invalid (410 Unregistered or
    ExpiredToken, 400 BadDeviceToken or DeviceTokenNotForTopic).

    Each one is an event: a log line event=invalid_token, the counter
    invalid_token_total{reason}, and, when apns_sender.invalid_token_list is set, an RPUSH
    of a JSON object {uid, token, reason, ident, env, msg_id, timestamp} onto that Redis
    list for other systems. When apns_sender.remove_invalid_tokens is on (default), the
    token is also removed from the user: HDEL User:<uid> app_token, but only while the
    field still holds that very token (a Lua script does the compare and the delete
    atomically), so a token registered again meanwhile stays.

    Events are queued (at most 100000; beyond that they are counted and dropped) and sent to
    Redis in one pipeline per flush, so a burst of invalid tokens costs one round trip.
    With Redis down they wait, and the connection is retried every few seconds.
*/
#ifndef PP_TOKEN_GC_H
#define PP_TOKEN_GC_H

#include "pp_apns_redis.h"
#include "pp_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pp_token_gc_t pp_token_gc_t;

/*  redis: NULL or not enabled = log and count only. list: "" for none. */
pp_token_gc_t *pp_token_gc_new(const pp_apns_redis_opts_t *redis, bool remove, const char *list,
                               const char *user_prefix, pp_metrics_t *m);
void pp_token_gc_destroy(pp_token_gc_t **p);

/*  Records one invalid token (strings are copied). reason is APNs's reason string;
    timestamp_ms is the 410 body's timestamp or 0. */
void pp_token_gc_add(pp_token_gc_t *gc, const char *uid, const char *token, const char *reason,
                     const char *ident, int env, const char *msg_id, int64_t timestamp_ms);

/*  Sends the queued work to Redis (if any and Redis is reachable). */
void pp_token_gc_flush(pp_token_gc_t *gc);

size_t pp_token_gc_pending(const pp_token_gc_t *gc);

#endif

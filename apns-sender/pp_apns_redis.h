/*  pp_apns_redis: the apns-sender's Redis settings (apns_sender.redis.*) and the connect
    step of pp_redis_lazy (pp_jwt_share and pp_token_gc each keep their own connection).

      host        "" (default): no Redis; tokens are not shared, invalid tokens not removed
      port        6379
      password    ""
      db          0
      timeout_ms  500, for connecting and for each command: a slow Redis must not stall
                  the send loop for long
*/
#ifndef PP_APNS_REDIS_H
#define PP_APNS_REDIS_H

#include "pp_config.h"

#include <hiredis/hiredis.h>
#include <stdbool.h>

typedef struct {
    bool enabled;
    char host[256];
    int port;
    char password[256];
    int db;
    int timeout_ms;
} pp_apns_redis_opts_t;

void pp_apns_redis_opts_read(pp_config_t *cfg, pp_apns_redis_opts_t *o);

/*  Connects (with the timeouts), authenticates and selects the db. NULL with the reason in
    err on failure. */
redisContext *pp_apns_redis_connect(const pp_apns_redis_opts_t *o, char *err, size_t errlen);

#endif

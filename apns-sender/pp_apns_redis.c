#include "pp_apns_redis.h"

#include "pp_apns_keepalive.h"

#include <stdio.h>
#include <string.h>

void pp_apns_redis_opts_read(pp_config_t *cfg, pp_apns_redis_opts_t *o)
{
    memset(o, 0, sizeof *o);
    snprintf(o->host, sizeof o->host, "%s", pp_config_str(cfg, "apns_sender.redis.host", ""));
    o->port = (int)pp_config_int(cfg, "apns_sender.redis.port", 6379, 1, 65535);
    snprintf(o->password, sizeof o->password, "%s",
             pp_config_str(cfg, "apns_sender.redis.password", ""));
    o->db = (int)pp_config_int(cfg, "apns_sender.redis.db", 0, 0, 1000);
    o->timeout_ms = (int)pp_config_int(cfg, "apns_sender.redis.timeout_ms", 500, 10, 60000);
    o->enabled = o->host[0] != '\0';
}

static int s_ok_reply(redisContext *rc, redisReply *r, char *err, size_t errlen, const char *what)
{
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "%s: %s", what, r ? r->str : rc->errstr);
        if (r) freeReplyObject(r);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

redisContext *pp_apns_redis_connect(const pp_apns_redis_opts_t *o, char *err, size_t errlen)
{
    struct timeval tv = {o->timeout_ms / 1000, (o->timeout_ms % 1000) * 1000};
    /* Each step below may block up to timeout_ms: keep the broker link alive between. */
    pp_apns_keepalive();
    redisContext *rc = redisConnectWithTimeout(o->host, o->port, tv);
    pp_apns_keepalive();
    if (!rc || rc->err) {
        snprintf(err, errlen, "connect %s:%d: %s", o->host, o->port, rc ? rc->errstr : "oom");
        if (rc) redisFree(rc);
        return NULL;
    }
    redisSetTimeout(rc, tv);
    if (o->password[0] &&
        s_ok_reply(rc, redisCommand(rc, "AUTH %s", o->password), err, errlen, "AUTH") != 0) {
        redisFree(rc);
        return NULL;
    }
    pp_apns_keepalive();
    if (o->db && s_ok_reply(rc, redisCommand(rc, "SELECT %d", o->db), err, errlen, "SELECT") != 0) {
        redisFree(rc);
        return NULL;
    }
    pp_apns_keepalive();
    return rc;
}

#include "pp_apns_sender_config.h"

#include "pp_endpoints.h"
#include "pp_link.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void s_hostport(pp_config_t *cfg, const char *key, const char *def, pp_apns_hostport_t *out)
{
    const char *v = pp_config_str(cfg, key, def);
    const char *colon = strrchr(v, ':');
    char *end = NULL;
    long port = colon ? strtol(colon + 1, &end, 10) : 443;
    size_t hlen = colon ? (size_t)(colon - v) : strlen(v);
    if (v[0] == '[' && colon && colon > v && colon[-1] == ']') { /* [v6]:port */
        v++;
        hlen -= 2;
    }
    if ((colon && (!end || *end || port < 1 || port > 65535)) || hlen == 0 ||
        hlen >= sizeof out->host) {
        pp_config_fail(cfg, key, "\"%s\" is not HOST:PORT", pp_config_str(cfg, key, def));
        return;
    }
    memcpy(out->host, v, hlen);
    out->host[hlen] = '\0';
    out->port = (int)port;
}

void pp_apns_sender_config_read(pp_config_t *c, pp_apns_sender_config_t *cfg,
                                const char *const *brokers, size_t n_brokers)
{
    memset(cfg, 0, sizeof *cfg);
    pp_linkset_config_read(c, &cfg->link, "apns_sender", PP_EP_APNS_OUT, brokers, n_brokers, 256);
    s_hostport(c, "apns_sender.hosts.sandbox", "api.sandbox.push.apple.com:443", &cfg->hosts[0]);
    s_hostport(c, "apns_sender.hosts.production", "api.push.apple.com:443", &cfg->hosts[1]);
    const char *ca_file = pp_config_str(c, "apns_sender.ca_file", "");
    cfg->apps = pp_apns_apps_new(c, ca_file);
    cfg->max_attempts = (int)pp_config_int(c, "apns_sender.retry.max_attempts", 5, 1, 100);
    cfg->retry_base_ms = (uint32_t)pp_config_int(c, "apns_sender.retry.base_ms", 1000, 1, 3600000);
    cfg->retry_max_ms = (uint32_t)pp_config_int(c, "apns_sender.retry.max_ms", 60000, 1, 86400000);
    cfg->max_pending = (size_t)pp_config_int(c, "apns_sender.max_pending", 100000, 1, 100000000);
    cfg->drain_ms = (uint32_t)pp_config_int(c, "apns_sender.drain_ms", 10000, 0, 3600000);
    cfg->ping_interval_ms =
        (uint32_t)pp_config_int(c, "apns_sender.ping_interval_s", 60, 0, 86400) * 1000;
    cfg->timeout_ms = (uint32_t)pp_config_int(c, "apns_sender.timeout_ms", 10000, 100, 600000);
    /* Every request's deadline: without one, a stream the server never answers holds its
       notification, and so its job and a slot of the link's window, forever. */
    cfg->request_timeout_ms =
        (uint32_t)pp_config_int(c, "apns_sender.request_timeout_ms", 5000, 100, 3600000);
    cfg->reconnect_min_ms =
        (uint32_t)pp_config_int(c, "apns_sender.reconnect_min_ms", 500, 10, 600000);
    cfg->reconnect_max_ms =
        (uint32_t)pp_config_int(c, "apns_sender.reconnect_max_ms", 30000, 10, 3600000);
    cfg->max_resends = (int)pp_config_int(c, "apns_sender.max_resends", 10, 1, 1000);
    pp_jwt_timing_t *jt = &cfg->jwt;
    jt->renew_s = pp_config_int(c, "apns_sender.jwt.renew_s", 3000, 1, 3600);
    jt->min_renew_s = pp_config_int(c, "apns_sender.jwt.min_renew_s", 1200, 0, 3600);
    jt->max_age_s = pp_config_int(c, "apns_sender.jwt.max_age_s", 3300, 1, 3600);
    jt->refused_resign_s = pp_config_int(c, "apns_sender.jwt.refused_resign_s", 60, 1, 3600);
    if (jt->min_renew_s > jt->renew_s || jt->renew_s > jt->max_age_s)
        pp_config_fail(c, "apns_sender.jwt", "need min_renew_s <= renew_s <= max_age_s");
    pp_apns_redis_opts_read(c, &cfg->redis);
    cfg->remove_invalid_tokens = pp_config_bool(c, "apns_sender.remove_invalid_tokens", true);
    cfg->invalid_token_list = pp_config_str(c, "apns_sender.invalid_token_list", "");
    cfg->user_key_prefix = pp_config_str(c, "apns_sender.user_key_prefix", "User:");
}

void pp_apns_sender_config_clear(pp_apns_sender_config_t *cfg)
{
    pp_apns_apps_destroy(&cfg->apps);
}

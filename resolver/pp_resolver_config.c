#include "pp_resolver_config.h"

#include "pp_endpoints.h"
#include "pp_limits.h"
#include "pp_link.h"

#include <string.h>

static void s_read_redis(pp_config_t *c, pp_userdb_cfg_t *db)
{
    db->host = pp_config_str(c, "resolver.redis.host", "127.0.0.1");
    db->port = (int)pp_config_int(c, "resolver.redis.port", 6379, 1, 65535);
    db->unix_socket = pp_config_str(c, "resolver.redis.unix_socket", "");
    db->password = pp_config_str(c, "resolver.redis.password", "");
    db->db = (int)pp_config_int(c, "resolver.redis.db", 0, 0, 1000000);
    db->connect_timeout_ms =
        (int)pp_config_int(c, "resolver.redis.connect_timeout_ms", 1000, 1, 600000);
    db->command_timeout_ms =
        (int)pp_config_int(c, "resolver.redis.command_timeout_ms", 2000, 1, 600000);
    db->backoff_max_ms = (int)pp_config_int(c, "resolver.redis.backoff_max_ms", 2000, 50, 60000);
    db->pipeline = (size_t)pp_config_int(c, "resolver.redis.pipeline", 256, 1, 100000);
}

/*  The prefix becomes the first topic levels: no wildcards, no NUL, valid UTF-8. */
static void s_check_prefix(pp_config_t *c, const char *prefix)
{
    size_t len = strlen(prefix);
    if (len == 0 || len > 200 || strpbrk(prefix, "+#") || !pp_utf8_valid(prefix, len) ||
        prefix[len - 1] == '/')
        pp_config_fail(c, "resolver.mqtt_prefix",
                       "\"%s\" is not a topic prefix (1..200 bytes, no '+', '#', no trailing '/')",
                       prefix);
}

void pp_resolver_config_read(pp_config_t *c, pp_resolver_config_t *cfg, const char *const *brokers,
                             size_t n_brokers)
{
    memset(cfg, 0, sizeof *cfg);
    pp_linkset_config_read(c, &cfg->link, "resolver", PP_EP_RESOLVE, brokers, n_brokers, 1024);
    pp_resolver_cfg_t *rc = &cfg->resolver;
    pp_user_rule_cfg_init(&rc->rule);
    static const char *const envs[] = {"sandbox", "production", NULL};
    rc->rule.default_env =
        pp_config_enum(c, "resolver.default_environment", "production", envs) == 0
            ? PP_ENV_SANDBOX
            : PP_ENV_PRODUCTION;
    const char *ident = pp_config_str(c, "resolver.default_ident", "");
    rc->rule.default_ident = PP_STR_C(ident);
    if (ident[0] && !pp_user_ident_valid(rc->rule.default_ident))
        pp_config_fail(c, "resolver.default_ident", "not a bundle id (printable ASCII)");
    /* No longer than the APNs sender carries (proto/pp_limits.h). */
    rc->rule.token_min =
        (size_t)pp_config_int(c, "resolver.token_min_len", 16, 1, PP_TOKEN_MAX_LEN);
    rc->rule.token_max =
        (size_t)pp_config_int(c, "resolver.token_max_len", PP_TOKEN_MAX_LEN, 1, PP_TOKEN_MAX_LEN);
    if (rc->rule.token_min > rc->rule.token_max)
        pp_config_fail(c, "resolver.token_min_len", "greater than resolver.token_max_len");
    rc->fanout.mqtt_prefix = pp_config_str(c, "resolver.mqtt_prefix", "push");
    s_check_prefix(c, rc->fanout.mqtt_prefix);
    rc->fanout.max_targets =
        (size_t)pp_config_int(c, "resolver.batch.max_targets", 500, 1, PP_JOB_MAX_TARGETS);
    rc->fanout.max_topics =
        (size_t)pp_config_int(c, "resolver.batch.max_topics", 500, 1, PP_JOB_MAX_TOPICS);
    rc->scan_threshold =
        (size_t)pp_config_int(c, "resolver.group_scan_threshold", 5000, 0, 100000000);
    rc->scan_count = (size_t)pp_config_int(c, "resolver.scan_count", 1000, 1, 1000000);
    rc->scan_dedupe_max =
        (size_t)pp_config_int(c, "resolver.scan_dedupe_max", 2000000, 0, 1000000000);
    rc->message_batch = (size_t)pp_config_int(c, "resolver.message_batch", 256, 1, 100000);
    rc->drain_ms = (int)pp_config_int(c, "resolver.drain_timeout_ms", 5000, 0, 600000);
    /* A send HWM of its own (pp_link's default is 10000 messages): outputs can be APNS jobs
       of 500 targets (~50 KB), so while the broker does not read that could hold 500 MB. */
    cfg->link.sndhwm = (int)pp_config_int(c, "resolver.link.send_hwm", 1000, 16, 1000000);
    /* A batch is taken from the jobs held; a smaller window would silently cap it. */
    if (rc->message_batch > cfg->link.window)
        pp_config_fail(c, "resolver.message_batch",
                       "%zu is greater than resolver.link.window (%u): the window bounds the "
                       "RESOLVE jobs held at once",
                       rc->message_batch, cfg->link.window);
    s_read_redis(c, &cfg->redis);
    rc->pipeline = cfg->redis.pipeline;
}

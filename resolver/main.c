/*  pushpipe-resolver: one acknowledged link (common/pp_link.h) to the resolve endpoint of
    each broker in broker_address (common/pp_linkset.h): RESOLVE jobs in, Redis lookups,
    APNS and MQTT jobs out over the link the job came from (outputs, routed by that broker
    by kind), each RESOLVE job acknowledged after all its outputs. Any number of resolvers
    run side by side: a broker deals each RESOLVE job to one of them and re-sends what a
    dead resolver held. See docs/resolver.md.
*/
#include "pp_curve.h"
#include "pp_endpoints.h"
#include "pp_linkset.h"
#include "pp_proc.h"
#include "pp_resolver.h"
#include "pp_user_rule.h"
#include "pp_userdb.h"

#include <stdio.h>
#include <string.h>

#define S_DEFAULT_METRICS_PORT 9610

typedef struct {
    pp_resolver_cfg_t rc;
    pp_userdb_cfg_t db;
    uint32_t window, heartbeat_ms;
    int send_hwm;
} s_config_t;

static const char *s_usage = "Reads the \"resolver\" section of the config (docs/resolver.md).\n";

static int s_no_options(pp_proc_t *proc, int val, const char *arg, void *ctx)
{
    (void)proc, (void)val, (void)arg, (void)ctx;
    return -1;
}

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

static void s_read_config(pp_config_t *c, s_config_t *cfg)
{
    pp_resolver_cfg_t *rc = &cfg->rc;
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
    cfg->window = (uint32_t)pp_config_int(c, "resolver.link.window", 1024, 1, PP_LINK_MAX_WINDOW);
    cfg->heartbeat_ms = (uint32_t)pp_config_int(c, "resolver.link.heartbeat_ms", 1000, 10, 60000);
    cfg->send_hwm = (int)pp_config_int(c, "resolver.link.send_hwm", 1000, 16, 1000000);
    /* A batch is taken from the jobs held; a smaller window would silently cap it. */
    if (rc->message_batch > cfg->window)
        pp_config_fail(c, "resolver.message_batch",
                       "%zu is greater than resolver.link.window (%u): the window bounds the "
                       "RESOLVE jobs held at once",
                       rc->message_batch, cfg->window);
    s_read_redis(c, &cfg->db);
    rc->pipeline = cfg->db.pipeline;
}

int main(int argc, char **argv)
{
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    pp_proc_t *proc =
        pp_proc_new("resolver", "resolver", s_usage, argc, argv, none, s_no_options, NULL);
    pp_config_t *c = pp_proc_config(proc);
    s_config_t cfg;
    memset(&cfg, 0, sizeof cfg);
    s_read_config(c, &cfg);
    const char *brokers[PP_LINKSET_MAX];
    size_t n_brokers = pp_proc_broker_addresses(proc, brokers, PP_LINKSET_MAX);
    pp_curve_t *curve = pp_curve_new(c, false);
    if (!curve || pp_proc_ready(proc, S_DEFAULT_METRICS_PORT) != 0) {
        pp_curve_destroy(&curve);
        pp_proc_destroy(&proc);
        return 2;
    }
    pp_metrics_t *m = pp_proc_metrics(proc);
    int rc = 1;
    /* One link per broker (pp_proc checked the addresses and their count). */
    char eps[PP_LINKSET_MAX][256];
    const char *ep_ptrs[PP_LINKSET_MAX];
    size_t n_eps = 0;
    for (size_t i = 0; i < n_brokers && i < PP_LINKSET_MAX; i++)
        if (pp_endpoint(brokers[i], PP_EP_RESOLVE, eps[n_eps], sizeof eps[n_eps]) == 0) {
            ep_ptrs[n_eps] = eps[n_eps];
            n_eps++;
        }
    pp_linkset_t *link = NULL;
    if (n_eps == n_brokers)
        link = pp_linkset_new(ep_ptrs, n_eps, curve, m, cfg.window, cfg.heartbeat_ms);
    if (link) {
        /* pp_link sets a send HWM of 10000 messages; outputs can be APNS jobs of 500
           targets (~50 KB), so while the broker does not read that could hold 500 MB.
           libzmq applies a changed HWM to the existing pipe, but the I/O thread may have
           read the link's first "R" under the old low-water mark (no "activate write" for
           it): a new HWM of 1 could then block the link for good. The config minimum of 16
           leaves room for that (asked of pp_link: take the HWM before connecting). */
        int hwm = cfg.send_hwm;
        for (size_t i = 0; i < pp_linkset_size(link); i++) {
            zmq_setsockopt(pp_link_socket(pp_linkset_link(link, i)), ZMQ_SNDHWM, &hwm, sizeof hwm);
            pp_info("connected", "endpoint=%s role=resolve send_hwm=%d", eps[i], hwm);
        }
    }
    pp_userdb_t *db = pp_userdb_new(&cfg.db, m);
    pp_resolver_t *r = NULL;
    if (link && db) r = pp_resolver_new(&cfg.rc, m, db, link);
    if (r) {
        pp_resolver_run(r);
        rc = 0;
    }
    pp_resolver_destroy(&r);
    pp_userdb_destroy(&db);
    /* Flushes acks and says "B": the broker re-sends at once whatever we did not ack.
       Queued outputs get a linger of heartbeat_ms (at most 2 s) to reach the broker. */
    pp_linkset_destroy(&link);
    pp_curve_destroy(&curve);
    pp_info("stopped", "rc=%d", rc);
    pp_proc_destroy(&proc);
    return rc;
}

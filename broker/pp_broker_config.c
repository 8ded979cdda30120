/*  pushpipe-broker's configuration (see pp_broker_config.h). */
#include "pp_broker_config.h"
#include "pp_curve.h"
#include "pp_dispatch.h"
#include "pp_endpoints.h"
#include "pp_job.h"
#include "pp_limits.h"
#include "pp_link_wire.h"
#include "pp_msgid.h"
#include "pp_proc.h"

#include <stdio.h>
#include <string.h>

static const char *s_stage_names[PP_STAGE_COUNT] = {"resolve", "apns", "mqtt"};

const char *pp_stage_name(pp_stage_t stage)
{
    return stage < PP_STAGE_COUNT ? s_stage_names[stage] : "unknown";
}

/* ---------------------------------------------------------------- configuration */

static size_t s_cfg_size(pp_config_t *c, const char *key, size_t def, long long min, long long max)
{
    return (size_t)pp_config_int(c, key, (long long)def, min, max);
}

static void s_read_limits(pp_config_t *c, pp_frame_limits_t *l)
{
    *l = pp_frame_limits_default();
    l->max_frame_bytes =
        s_cfg_size(c, "broker.limits.max_frame_bytes", l->max_frame_bytes, 16, 16 << 20);
    /* pp_frame cannot check deeper nesting than its own limit. */
    l->max_depth =
        s_cfg_size(c, "broker.limits.max_depth", l->max_depth, 1, PP_FRAME_MAX_DEPTH_LIMIT);
    l->max_ids = s_cfg_size(c, "broker.limits.max_ids", l->max_ids, 1, PP_JOB_MAX_IDS);
    /* No looser than what the resolver and the senders carry (proto/pp_limits.h). */
    l->max_id_len = s_cfg_size(c, "broker.limits.max_id_len", l->max_id_len, 1, PP_ID_MAX_LEN);
    l->max_json_bytes =
        s_cfg_size(c, "broker.limits.max_json_bytes", l->max_json_bytes, 16, 64 << 20);
}

static void s_read_queues(pp_config_t *c, pp_broker_config_t *cfg)
{
    for (int s = 0; s < PP_STAGE_COUNT; s++) {
        char key[96];
        snprintf(key, sizeof key, "broker.queue.%s.max_messages", pp_stage_name(s));
        cfg->queue_msgs[s] = s_cfg_size(c, key, 100000, 1, 100000000);
        snprintf(key, sizeof key, "broker.queue.%s.max_bytes", pp_stage_name(s));
        cfg->queue_bytes[s] = s_cfg_size(c, key, 64 << 20, 1, 1LL << 40);
    }
}

static void s_read_bind(pp_config_t *c, pp_broker_config_t *cfg, const char *default_bind)
{
    cfg->bind =
        pp_config_str(c, "broker.bind", default_bind ? default_bind : PP_DEFAULT_BROKER_ADDRESS);
    char probe[256];
    if (pp_endpoint(cfg->bind, PP_EP_MQTT_OUT, probe, sizeof probe) != 0)
        pp_config_fail(c, "broker.bind",
                       "\"%s\" is not tcp://HOST:PORT (PORT+6 <= 65535) or ipc:///PATH", cfg->bind);
    else /* beyond loopback only with CURVE on, or "insecure_bind": true (docs/security.md) */
        pp_curve_check_bind(c, "broker.bind", cfg->bind);
}

static void s_read_instance(pp_config_t *c, pp_broker_config_t *cfg)
{
    const char *text = pp_config_str(c, "broker.instance_id", NULL);
    cfg->have_instance = false;
    if (!text) return;
    if (pp_msgid_parse_instance(text, &cfg->instance) != 0)
        pp_config_fail(c, "broker.instance_id", "\"%s\" is not 1 to 16 hex digits", text);
    else
        cfg->have_instance = true;
}

/*  broker.jetstream.servers: "nats://a:4222,nats://b:4222" or an array of such strings. */
static void s_read_servers(pp_config_t *c, pp_broker_config_t *cfg)
{
    pp_jetstream_cfg_t *js = &cfg->js;
    static const char key[] = "broker.jetstream.servers";
    json_t *v = pp_config_json(c, key);
    if (!v) return;
    js->n_servers = 0;
    if (json_is_string(v)) {
        snprintf(cfg->servers_text, sizeof cfg->servers_text, "%s", json_string_value(v));
        char *text = cfg->servers_text;
        for (char *save = NULL, *t = strtok_r(text, ",", &save);
             t && js->n_servers < PP_JS_MAX_SERVERS; t = strtok_r(NULL, ",", &save))
            js->servers[js->n_servers++] = t;
    } else if (json_is_array(v) && json_array_size(v) <= PP_JS_MAX_SERVERS) {
        for (size_t i = 0; i < json_array_size(v); i++) {
            const char *s = json_string_value(json_array_get(v, i));
            if (!s) break;
            js->servers[js->n_servers++] = s;
        }
    }
    if (js->n_servers == 0)
        pp_config_fail(c, key,
                       "expected 1 to %d nats:// URLs (a string, comma-separated, or "
                       "an array of strings)",
                       PP_JS_MAX_SERVERS);
    for (size_t i = 0; i < js->n_servers; i++)
        if (strncmp(js->servers[i], "nats://", 7) != 0 && strncmp(js->servers[i], "tls://", 6))
            pp_config_fail(c, key, "\"%s\" is not a nats:// or tls:// URL", js->servers[i]);
}

static void s_read_jetstream(pp_config_t *c, pp_broker_config_t *cfg)
{
    static const char *const modes[] = {"none", "jetstream", NULL};
    cfg->durable = pp_config_enum(c, "broker.durability", "none", modes) == 1;
    pp_jetstream_cfg_t *js = &cfg->js;
    pp_jetstream_cfg_default(js);
    s_read_servers(c, cfg);
    js->stream = pp_config_str(c, "broker.jetstream.stream", js->stream);
    js->subject = pp_config_str(c, "broker.jetstream.subject", js->subject);
    js->durable = pp_config_str(c, "broker.jetstream.consumer", js->durable);
    js->replicas = (int)pp_config_int(c, "broker.jetstream.replicas", js->replicas, 1, 5);
    js->memory = pp_config_bool(c, "broker.jetstream.memory_storage", false);
    js->ack_wait_ms =
        (int)pp_config_int(c, "broker.jetstream.ack_wait_ms", js->ack_wait_ms, 1000, 3600000);
    js->dedup_window_ms = (int)pp_config_int(c, "broker.jetstream.dedup_window_ms",
                                             js->dedup_window_ms, 1000, 86400000);
    js->max_pending =
        (int)pp_config_int(c, "broker.jetstream.max_pending", js->max_pending, 1, 1000000);
    js->publish_timeout_ms = (int)pp_config_int(c, "broker.jetstream.publish_timeout_ms",
                                                js->publish_timeout_ms, 100, 600000);
    js->fetch_batch =
        (int)pp_config_int(c, "broker.jetstream.fetch_batch", js->fetch_batch, 1, 10000);
    js->max_buffered =
        (int)pp_config_int(c, "broker.jetstream.max_buffered", js->max_buffered, 1, 1000000);
    js->max_ack_pending = (int)pp_config_int(c, "broker.jetstream.max_ack_pending",
                                             js->max_ack_pending, 1, 100000000);
    js->connect_timeout_ms = (int)pp_config_int(c, "broker.jetstream.connect_timeout_ms",
                                                js->connect_timeout_ms, 100, 600000);
    js->batch_max = (int)pp_config_int(c, "broker.jetstream.batch_max", js->batch_max, 1, 100000);
    js->batch_bytes = (size_t)pp_config_int(c, "broker.jetstream.batch_bytes",
                                            (long long)js->batch_bytes, 1024, 64 << 20);
}

void pp_broker_config_read(pp_config_t *c, pp_broker_config_t *cfg, const char *default_bind)
{
    memset(cfg, 0, sizeof *cfg);
    s_read_bind(c, cfg, default_bind);
    s_read_instance(c, cfg);
    cfg->hwm = (int)pp_config_int(c, "broker.hwm", 1000, 1, 10000000);
    cfg->drain_ms =
        (int)pp_config_int(c, "broker.drain_ms", PP_DEFAULT_BROKER_DRAIN_MS, 0, 3600000);
    cfg->log_rejects_per_s = (int)pp_config_int(c, "broker.log_rejects_per_s", 10, 0, 100000);
    cfg->heartbeat_ms = pp_link_heartbeat_read(c, "broker"); /* top-level, every process */
    /* 0: three heartbeats (pp_dispatch's default). */
    cfg->timeout_ms = (uint32_t)pp_config_int(c, "broker.link.timeout_ms", 0, 0, 600000);
    if (cfg->timeout_ms && cfg->timeout_ms <= cfg->heartbeat_ms)
        pp_config_fail(c, "broker.link.timeout_ms", "%u must exceed heartbeat_ms (%u)",
                       cfg->timeout_ms, cfg->heartbeat_ms);
    /* Workers one CURVE key may register per pool (docs/security.md); 0 turns the cap off. */
    cfg->max_workers_per_key = (uint32_t)pp_config_int(c, "broker.link.max_workers_per_key",
                                                       PP_DISPATCH_DEFAULT_MAX_WORKERS_PER_KEY, 0,
                                                       PP_DISPATCH_MAX_WORKERS);
    s_read_limits(c, &cfg->limits);
    s_read_queues(c, cfg);
    s_read_jetstream(c, cfg);
}

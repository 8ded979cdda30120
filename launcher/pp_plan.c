#include "pp_plan.h"
#include "pp_endpoints.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const struct {
    const char *program, *folder, *section, *stem;
} s_kinds[] = {
    [PP_STAGE_BROKER] = {"pushpipe-broker", "broker", "broker", "broker"},
    [PP_STAGE_RESOLVER] = {"pushpipe-resolver", "resolver", "resolver", "resolver"},
    [PP_STAGE_APNS] = {"pushpipe-apns-sender", "apns-sender", "apns_sender", "apns-sender"},
    [PP_STAGE_MQTT] = {"pushpipe-mqtt-sender", "mqtt-sender", "mqtt_sender", "mqtt-sender"},
};

static void s_add(pp_plan_t *plan, pp_stage_kind_t kind, int instance, int single, int port)
{
    pp_stage_t *s = &plan->stages[plan->n_stages++];
    s->kind = kind;
    s->instance = instance;
    s->program = s_kinds[kind].program;
    s->folder = s_kinds[kind].folder;
    s->section = s_kinds[kind].section;
    if (single)
        snprintf(s->name, sizeof s->name, "%s", s_kinds[kind].stem);
    else
        snprintf(s->name, sizeof s->name, "%s-%d", s_kinds[kind].stem, instance);
    s->metrics_port = port;
}

void pp_plan_read(pp_config_t *config, pp_plan_t *plan)
{
    memset(plan, 0, sizeof *plan);
    bool broker = pp_config_bool(config, "launcher.broker", true);
    int resolvers = (int)pp_config_int(config, "launcher.resolvers", 2, 0, PP_PLAN_MAX_RESOLVERS);
    int apns = (int)pp_config_int(config, "launcher.apns_senders", 1, 0, PP_PLAN_MAX_SENDERS);
    int mqtt = (int)pp_config_int(config, "launcher.mqtt_senders", 1, 0, PP_PLAN_MAX_SENDERS);
    plan->bin_dir = pp_config_str(config, "launcher.bin_dir", "");
    int slots = 1 + resolvers + apns + mqtt;
    int base = (int)pp_config_int(config, "launcher.metrics_base_port", 9600, 0, 65535 - slots);
    plan->launcher_metrics_port =
        (int)pp_config_int(config, "launcher.metrics_port", base, 0, 65535);
    plan->restart_backoff_ms =
        (int)pp_config_int(config, "launcher.restart_backoff_ms", 500, 10, 600000);
    plan->restart_backoff_max_ms = (int)pp_config_int(config, "launcher.restart_backoff_max_ms",
                                                      30000, plan->restart_backoff_ms, 3600000);
    plan->stable_ms = (int)pp_config_int(config, "launcher.stable_ms", 10000, 0, 3600000);
    plan->stop_timeout_ms =
        (int)pp_config_int(config, "launcher.stop_timeout_ms", 10000, 100, 600000);
    /* The broker must finish its drain before the launcher gives up on it, or the stop
       kills it with accepted work still held. */
    long long drain =
        pp_config_int(config, "broker.drain_ms", PP_DEFAULT_BROKER_DRAIN_MS, 0, 3600000);
    if (broker && plan->stop_timeout_ms <= drain)
        pp_config_fail(config, "launcher.stop_timeout_ms",
                       "%d must exceed broker.drain_ms (%lld): the broker drains first",
                       plan->stop_timeout_ms, drain);

    int slot = 1;
    if (broker) s_add(plan, PP_STAGE_BROKER, 1, 1, base ? base + slot : 0);
    slot++;
    for (int i = 1; i <= resolvers; i++, slot++)
        s_add(plan, PP_STAGE_RESOLVER, i, 0, base ? base + slot : 0);
    for (int i = 1; i <= apns; i++, slot++)
        s_add(plan, PP_STAGE_APNS, i, 0, base ? base + slot : 0);
    for (int i = 1; i <= mqtt; i++, slot++)
        s_add(plan, PP_STAGE_MQTT, i, 0, base ? base + slot : 0);
    if (plan->n_stages == 0)
        pp_config_fail(config, "launcher", "nothing to run (no broker, resolvers or senders)");
}

static bool s_executable(const char *path)
{
    return access(path, X_OK) == 0;
}

int pp_plan_program_path(const pp_plan_t *plan, const pp_stage_t *stage, const char *self_dir,
                         char *out, size_t outlen)
{
    if (plan->bin_dir && *plan->bin_dir) {
        snprintf(out, outlen, "%s/%s", plan->bin_dir, stage->program);
        return s_executable(out) ? 0 : -1;
    }
    char build[4096];
    snprintf(build, sizeof build, "%s/../%s/%s", self_dir, stage->folder, stage->program);
    snprintf(out, outlen, "%s/%s", self_dir, stage->program);
    if (s_executable(out)) return 0;
    if (s_executable(build)) {
        snprintf(out, outlen, "%s", build);
        return 0;
    }
    return -1;
}

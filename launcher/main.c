/*  pushpipe: the launcher. `pushpipe [run]` runs the whole pipeline on this host from one
    config file and supervises it; `pushpipe status` shows every stage's main counters.
    See docs/operations.md. */
#include "pp_curve.h"
#include "pp_endpoints.h"
#include "pp_plan.h"
#include "pp_proc.h"
#include "pp_scrape.h"
#include "pp_supervisor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_USAGE                                                                                    \
    "usage: pushpipe [run] [options]     run the pipeline (broker, resolvers, senders)\n"          \
    "       pushpipe status [--config FILE] [--all] [--timeout-ms N]\n"                            \
    "                                     every stage's main counters (exit 1 if one is down)\n"

/* ---- run -------------------------------------------------------------------------------- */

/*  The flags that every stage must get as the launcher got them. pp_proc parses the same
    argv for the launcher itself; this only copies the values through. */
typedef struct {
    const char *config, *broker, *log_level;
} s_passthrough_t;

static void s_scan_flags(int argc, char **argv, s_passthrough_t *out)
{
    static const char *const names[] = {"--config", "--broker", "--log-level"};
    const char **slots[] = {&out->config, &out->broker, &out->log_level};
    for (int i = 1; i < argc; i++) {
        for (int k = 0; k < 3; k++) {
            size_t len = strlen(names[k]);
            if (strcmp(argv[i], names[k]) == 0 && i + 1 < argc)
                *slots[k] = argv[i + 1];
            else if (strncmp(argv[i], names[k], len) == 0 && argv[i][len] == '=')
                *slots[k] = argv[i] + len + 1;
        }
    }
}

static void s_self_dir(char *out, size_t outlen)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0) {
        snprintf(out, outlen, ".");
        return;
    }
    exe[n] = '\0';
    char *slash = strrchr(exe, '/');
    if (slash) *slash = '\0';
    snprintf(out, outlen, "%s", exe);
}

static void s_banner(const char *broker, const pp_plan_t *plan, const char *config_path)
{
    char intake[256] = "", submit[256] = "";
    pp_endpoint(broker, PP_EP_INTAKE, intake, sizeof intake);
    pp_endpoint(broker, PP_EP_SUBMIT, submit, sizeof submit);
    printf("pushpipe: pipeline running (launcher pid %d)\n", (int)getpid());
    printf("  send pushes to  %s  (PUSH, fire-and-forget)\n", intake);
    printf("                  %s  (DEALER/REQ, acknowledged)\n", submit);
    printf("  metrics         launcher http://127.0.0.1:%d/metrics\n", plan->launcher_metrics_port);
    for (size_t i = 0; i < plan->n_stages; i++)
        printf("                  %-14s http://127.0.0.1:%d/metrics\n", plan->stages[i].name,
               plan->stages[i].metrics_port);
    printf("  status          pushpipe status%s%s\n", config_path ? " --config " : "",
           config_path ? config_path : "");
    fflush(stdout);
}

/*  The broker binds broker.bind (default tcp://127.0.0.1:5560), not broker_address. On one
    host the launcher makes it bind where the others will connect, unless the config says
    where: an IPv4 address stays, localhost becomes 127.0.0.1, and a host name becomes all
    interfaces (logged), since ZeroMQ binds interfaces, not names. */
static void s_broker_bind(pp_config_t *config, const char *broker, pp_plan_t *plan)
{
    if (pp_config_json(config, "broker.bind") || strncmp(broker, "tcp://", 6) != 0) return;
    const char *host = broker + 6;
    const char *colon = strrchr(host, ':');
    if (!colon || host[0] == '[') return;
    if (colon - host > 200 || strlen(colon) > 8) return;
    char name[208];
    snprintf(name, sizeof name, "%.*s", (int)(colon - host), host);
    const char *bind_host = name;
    struct in_addr ignored;
    if (strcmp(name, "localhost") == 0)
        bind_host = "127.0.0.1";
    else if (strcmp(name, "*") != 0 && inet_pton(AF_INET, name, &ignored) != 1) {
        bind_host = "0.0.0.0";
        pp_info("broker_bind_all", "broker_address=%s bind=tcp://0.0.0.0%s", broker, colon);
    }
    for (size_t i = 0; i < plan->n_stages; i++) {
        if (plan->stages[i].kind != PP_STAGE_BROKER) continue;
        snprintf(plan->stages[i].extra[0], sizeof plan->stages[i].extra[0], "--bind");
        snprintf(plan->stages[i].extra[1], sizeof plan->stages[i].extra[1], "tcp://%s%s", bind_host,
                 colon);
    }
}

/*  The binding rule (docs/security.md: beyond loopback only with CURVE on or
    "insecure_bind": true), checked here as well as in the broker, so that `pushpipe` exits 2
    before it starts any stage instead of restarting a broker that always refuses. The
    broker binds the --bind the launcher gives it (derived from broker_address), else
    broker.bind, else broker_address. Without a broker stage it only reads insecure_bind. */
static void s_check_bind(pp_config_t *config, const char *broker, const pp_plan_t *plan)
{
    const char *bind = NULL, *key = "broker.bind";
    for (size_t i = 0; i < plan->n_stages && !bind; i++) {
        if (plan->stages[i].kind != PP_STAGE_BROKER) continue;
        if (plan->stages[i].extra[1][0]) {
            bind = plan->stages[i].extra[1];
            key = "broker_address";
        } else
            bind = pp_config_str(config, "broker.bind", broker);
    }
    pp_curve_check_bind(config, key, bind);
}

/*  Finds every stage's program; a missing one is a config error on launcher.bin_dir. */
static char **s_programs(pp_config_t *config, const pp_plan_t *plan)
{
    char self[PATH_MAX];
    s_self_dir(self, sizeof self);
    char **paths = calloc(plan->n_stages + 1, sizeof *paths);
    if (!paths) abort();
    for (size_t i = 0; i < plan->n_stages; i++) {
        char path[PATH_MAX + 64];
        if (pp_plan_program_path(plan, &plan->stages[i], self, path, sizeof path) != 0)
            pp_config_fail(config, "launcher.bin_dir",
                           "%s not found or not executable (looked at %s; build it, or set "
                           "launcher.bin_dir)",
                           plan->stages[i].program, path);
        paths[i] = strdup(path);
        if (!paths[i]) abort();
    }
    return paths;
}

/*  The launcher's own counters on its "stopped" line (pp_proc_exit). */
static const char *const s_stopped_counters[] = {"stage_restarts_total", NULL};

static int s_run(int argc, char **argv)
{
    s_passthrough_t pass = {0};
    s_scan_flags(argc, argv, &pass);
    pp_proc_t *proc = pp_proc_new("launcher", "launcher", S_USAGE, argc, argv, NULL, NULL, NULL);
    pp_config_t *config = pp_proc_config(proc);
    const char *broker = pp_proc_broker_address(proc);
    static pp_plan_t plan; /* large; lives for the whole run */
    pp_plan_read(config, &plan);
    s_broker_bind(config, broker, &plan);
    s_check_bind(config, broker, &plan);
    char **paths = s_programs(config, &plan);
    if (pp_proc_ready(proc, plan.launcher_metrics_port) != 0) {
        for (size_t i = 0; i < plan.n_stages; i++)
            free(paths[i]);
        free(paths);
        pp_proc_destroy(&proc);
        return 2;
    }
    char config_abs[PATH_MAX] = "";
    if (pass.config && !realpath(pass.config, config_abs))
        snprintf(config_abs, sizeof config_abs, "%s", pass.config);
    const char *common[8];
    int k = 0;
    if (pass.config) {
        common[k++] = "--config";
        common[k++] = config_abs;
    }
    if (pass.broker) {
        common[k++] = "--broker";
        common[k++] = pass.broker;
    }
    if (pass.log_level) {
        common[k++] = "--log-level";
        common[k++] = pass.log_level;
    }
    common[k] = NULL;

    pp_supervisor_t *sup = pp_supervisor_new(&plan, paths, common, pp_proc_metrics(proc));
    int rc = 0;
    if (pp_supervisor_start(sup) != 0)
        rc = 1;
    else {
        pp_info("pipeline_started", "broker=%s stages=%zu", broker, plan.n_stages);
        pp_proc_running(proc);
        s_banner(broker, &plan, pass.config ? config_abs : NULL);
    }
    while (rc == 0 && !pp_proc_stopping()) {
        if (pp_supervisor_tick(sup) == 2) rc = 2;
        struct timespec ts = {0, 50 * 1000000L}; /* EINTR on a signal ends it early */
        nanosleep(&ts, NULL);
    }
    pp_info("stopping", "reason=%s", rc == 0 ? "signal" : "stage_failed");
    pp_supervisor_stop(sup);
    pp_supervisor_destroy(&sup);
    for (size_t i = 0; i < plan.n_stages; i++)
        free(paths[i]);
    free(paths);
    return pp_proc_exit(&proc, rc, s_stopped_counters);
}

/* ---- status ----------------------------------------------------------------------------- */

/*  The counters `pushpipe status` shows by default, per kind of stage: full names; the
    column shows them without the "pushpipe_" prefix and "_total" suffix. Names that a
    stage does not export are left out; a stage exporting none of them shows its non-zero
    counters instead. */
static const char *const s_main_broker[] = {
    "pushpipe_received_total",    "pushpipe_accepted_total",
    "pushpipe_rejected_total",    "pushpipe_forwarded_total",
    "pushpipe_queue_depth",       "pushpipe_queue_full_total",
    "pushpipe_send_errors_total", NULL};
static const char *const s_main_resolver[] = {
    "pushpipe_messages_total",     "pushpipe_users_looked_up_total",
    "pushpipe_apns_jobs_total",    "pushpipe_mqtt_jobs_total",
    "pushpipe_skipped_total",      "pushpipe_redis_up",
    "pushpipe_redis_errors_total", NULL};
static const char *const s_main_apns[] = {
    "pushpipe_jobs_total",     "pushpipe_sent_total",    "pushpipe_delivered_total",
    "pushpipe_rejected_total", "pushpipe_retried_total", "pushpipe_not_configured_total",
    "pushpipe_connections",    "pushpipe_pending",       NULL};
static const char *const s_main_mqtt[] = {"pushpipe_jobs_total",
                                          "pushpipe_published_total",
                                          "pushpipe_acknowledged_total",
                                          "pushpipe_failed_total",
                                          "pushpipe_buffered",
                                          "pushpipe_mqtt_connected",
                                          NULL};

static const char *const *s_main_counters(pp_stage_kind_t kind)
{
    switch (kind) {
    case PP_STAGE_BROKER:
        return s_main_broker;
    case PP_STAGE_RESOLVER:
        return s_main_resolver;
    case PP_STAGE_APNS:
        return s_main_apns;
    case PP_STAGE_MQTT:
        return s_main_mqtt;
    }
    return s_main_broker;
}

static void s_short_name(const char *name, char *out, size_t outlen)
{
    if (strncmp(name, "pushpipe_", 9) == 0) name += 9;
    snprintf(out, outlen, "%s", name);
    size_t len = strlen(out);
    if (len > 6 && strcmp(out + len - 6, "_total") == 0) out[len - 6] = '\0';
}

static void s_append(char *line, size_t linelen, const char *name, double v)
{
    char shortname[128], item[192];
    s_short_name(name, shortname, sizeof shortname);
    snprintf(item, sizeof item, "%s%s=%.15g", *line ? " " : "", shortname, v);
    strncat(line, item, linelen - strlen(line) - 1);
}

static void s_counters(const pp_prom_t *prom, pp_stage_kind_t kind, bool all, char *line,
                       size_t linelen)
{
    line[0] = '\0';
    if (!all) {
        for (const char *const *n = s_main_counters(kind); *n; n++) {
            int found = 0;
            double v = pp_prom_sum(prom, *n, NULL, &found);
            if (found) s_append(line, linelen, *n, v);
        }
        if (*line) return;
    }
    const char *name;
    for (size_t i = 0; (name = pp_prom_name(prom, i)); i++) {
        double v = pp_prom_sum(prom, name, NULL, NULL);
        bool counter = strlen(name) > 6 && strcmp(name + strlen(name) - 6, "_total") == 0;
        if (all || (counter && v != 0)) s_append(line, linelen, name, v);
    }
}

static const char *s_metrics_host(pp_config_t *config, const char *section)
{
    char key[96];
    snprintf(key, sizeof key, "%s.metrics_address", section);
    const char *host = pp_config_str(config, key, "127.0.0.1");
    if (strcmp(host, "0.0.0.0") == 0 || strcmp(host, "") == 0) return "127.0.0.1";
    if (strcmp(host, "::") == 0) return "::1";
    return host;
}

static int s_status(int argc, char **argv)
{
    const char *config_path = NULL;
    bool all = false;
    int timeout_ms = 1000;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config_path = argv[i] + 9;
        else if (strcmp(argv[i], "--all") == 0)
            all = true;
        else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
            timeout_ms = atoi(argv[++i]);
        else if (strcmp(argv[i], "--help") == 0) {
            printf("%s", S_USAGE);
            return 0;
        } else {
            fprintf(stderr, "pushpipe status: unexpected argument: %s\n%s", argv[i], S_USAGE);
            return 2;
        }
    }
    if (timeout_ms < 10 || timeout_ms > 60000) timeout_ms = 1000;
    char err[512];
    pp_config_t *config = pp_config_load(config_path, err, sizeof err);
    if (!config) {
        fprintf(stderr, "pushpipe status: %s\n", err);
        return 2;
    }
    static pp_plan_t plan;
    pp_plan_read(config, &plan);
    if (!pp_config_ok(config)) {
        fprintf(stderr, "pushpipe status: %s\n", pp_config_error(config));
        pp_config_destroy(&config);
        return 2;
    }
    const size_t max = 8u << 20;
    pp_prom_t *launcher = NULL;
    char *text = plan.launcher_metrics_port
                     ? pp_scrape_get(s_metrics_host(config, "launcher"), plan.launcher_metrics_port,
                                     timeout_ms, max, err, sizeof err)
                     : NULL;
    printf("%-15s %-6s %-5s %-8s %-8s %s\n", "STAGE", "PORT", "STATE", "PID", "RESTARTS",
           "COUNTERS");
    if (text) {
        launcher = pp_prom_parse(text);
        free(text);
        char summary[96];
        snprintf(summary, sizeof summary, "stages_up=%.0f/%zu restarts=%.0f",
                 pp_prom_sum(launcher, "pushpipe_stage_up", NULL, NULL), plan.n_stages,
                 pp_prom_sum(launcher, "pushpipe_stage_restarts_total", NULL, NULL));
        printf("%-15s %-6d %-5s %-8s %-8s %s\n", "launcher", plan.launcher_metrics_port, "up", "-",
               "-", summary);
    } else {
        char why[600];
        snprintf(why, sizeof why, "(%s)", plan.launcher_metrics_port ? err : "metrics off");
        printf("%-15s %-6d %-5s %-8s %-8s %s\n", "launcher", plan.launcher_metrics_port, "down",
               "-", "-", why);
    }
    int down = 0;
    for (size_t i = 0; i < plan.n_stages; i++) {
        const pp_stage_t *st = &plan.stages[i];
        char label[64], pid[24] = "-", restarts[24] = "-", line[2048] = "";
        snprintf(label, sizeof label, "stage=\"%s\"", st->name);
        int found = 0;
        if (launcher) {
            double v = pp_prom_sum(launcher, "pushpipe_stage_pid", label, &found);
            if (found && v > 0) snprintf(pid, sizeof pid, "%.0f", v);
            v = pp_prom_sum(launcher, "pushpipe_stage_restarts_total", label, &found);
            if (found) snprintf(restarts, sizeof restarts, "%.0f", v);
        }
        const char *state = "off";
        if (st->metrics_port) {
            text = pp_scrape_get(s_metrics_host(config, st->section), st->metrics_port, timeout_ms,
                                 max, err, sizeof err);
            if (text) {
                pp_prom_t *prom = pp_prom_parse(text);
                free(text);
                s_counters(prom, st->kind, all, line, sizeof line);
                /* It answers but is not ready: still starting, or draining after a stop. */
                int has_ready = 0;
                double ready = pp_prom_sum(prom, "pushpipe_ready", NULL, &has_ready);
                state = has_ready && ready == 0 ? "wait" : "up";
                pp_prom_destroy(&prom);
            } else {
                state = "down";
                snprintf(line, sizeof line, "(%s)", err);
                down++;
            }
        }
        printf("%-15s %-6d %-5s %-8s %-8s %s\n", st->name, st->metrics_port, state, pid, restarts,
               line);
    }
    pp_prom_destroy(&launcher);
    pp_config_destroy(&config);
    return down ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "run") == 0)) {
        bool status = strcmp(argv[1], "status") == 0;
        argv[1] = argv[0];
        return status ? s_status(argc - 1, argv + 1) : s_run(argc - 1, argv + 1);
    }
    if (argc > 1 && strcmp(argv[1], "help") == 0) {
        printf("%s", S_USAGE);
        return 0;
    }
    return s_run(argc, argv);
}

#include "pp_proc.h"
#include "pp_endpoints.h"
#include "pp_link_wire.h"

#include <czmq.h>
#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>

#ifndef PUSHPIPE_VERSION
#define PUSHPIPE_VERSION "0.1.0"
#endif

struct pp_proc_t {
    char *name;
    char *section;
    pp_config_t *config;
    pp_metrics_t *metrics;
    /* broker_address, parsed once (pp_proc_broker_addresses) */
    bool brokers_read;
    size_t n_brokers;
    char *brokers[PP_PROC_MAX_BROKERS];
    uint64_t start_ms;  /* pp_mono_ms at pp_proc_new, for the "stopped" line's uptime */
    pp_metric_t *ready; /* pushpipe_ready */
};

static volatile sig_atomic_t s_stop = 0;
/* The ready gauge of the live proc, so that a stop signal turns it to 0 at once (an atomic
   store: async-signal-safe), not only when the loop gets round to it. */
static _Atomic(pp_metric_t *) s_ready = NULL;

static void s_mark_stopping(void)
{
    s_stop = 1;
    pp_metric_t *ready = atomic_load(&s_ready);
    if (ready) pp_metric_set(ready, 0);
}

static void s_on_signal(int sig)
{
    (void)sig;
    s_mark_stopping();
}

bool pp_proc_stopping(void)
{
    return s_stop != 0;
}

void pp_proc_request_stop(void)
{
    s_mark_stopping();
}

static void s_install_signals(void)
{
    /* czmq would install its own SIGINT/SIGTERM handler on first use; ours does the same
       job for every loop, czmq-based or not. */
    zsys_handler_set(NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR and loops see the flag */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

static void s_usage(const char *name, const char *usage)
{
    printf("usage: pushpipe-%s [options]\n"
           "  --config FILE       the JSON configuration (see docs/config.md)\n"
           "  --broker ADDR       the broker's address (default %s)\n"
           "  --log-level LEVEL   debug, info, warn or error (default info)\n"
           "  --metrics-port N    serve Prometheus metrics on this port (0: off)\n"
           "  --help, --version\n%s",
           name, PP_DEFAULT_BROKER_ADDRESS, usage ? usage : "");
}

enum { OPT_CONFIG = 900, OPT_BROKER, OPT_LOG_LEVEL, OPT_METRICS_PORT, OPT_HELP, OPT_VERSION };

static struct option *s_options(const struct option *extra)
{
    static const struct option common[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"broker", required_argument, NULL, OPT_BROKER},
        {"log-level", required_argument, NULL, OPT_LOG_LEVEL},
        {"metrics-port", required_argument, NULL, OPT_METRICS_PORT},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
    };
    size_t n_extra = 0;
    while (extra && extra[n_extra].name)
        n_extra++;
    size_t n_common = sizeof common / sizeof common[0];
    struct option *all = calloc(n_common + n_extra + 1, sizeof *all);
    if (!all) abort();
    memcpy(all, common, sizeof common);
    if (n_extra) memcpy(all + n_common, extra, n_extra * sizeof *all);
    return all;
}

typedef struct {
    const char *config;
    const char *broker;
    const char *log_level;
    long metrics_port;
} s_common_t;

static int s_parse(pp_proc_t *proc, const char *usage, int argc, char **argv,
                   const struct option *extra, pp_proc_option_fn *fn, void *ctx, s_common_t *common,
                   char ***deferred, int *n_deferred)
{
    struct option *opts = s_options(extra);
    int rc = 0, c;
    optind = 1;
    while (rc == 0 && (c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case OPT_CONFIG:
            common->config = optarg;
            break;
        case OPT_BROKER:
            common->broker = optarg;
            break;
        case OPT_LOG_LEVEL:
            common->log_level = optarg;
            break;
        case OPT_METRICS_PORT: {
            char *end = NULL;
            common->metrics_port = strtol(optarg, &end, 10);
            if (!end || *end || common->metrics_port < 0 || common->metrics_port > 65535) {
                fprintf(stderr, "pushpipe-%s: --metrics-port: not a port: %s\n", proc->name,
                        optarg);
                rc = 2;
            }
            break;
        }
        case OPT_HELP:
            s_usage(proc->name, usage);
            exit(0);
        case OPT_VERSION:
            printf("pushpipe-%s %s\n", proc->name, PUSHPIPE_VERSION);
            exit(0);
        case '?':
            rc = 2;
            break;
        default:
            /* Program options are applied after the config is loaded, so they win. */
            (*deferred)[(*n_deferred)++] = (char *)(intptr_t)c;
            (*deferred)[(*n_deferred)++] = optarg;
            break;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "pushpipe-%s: unexpected argument: %s\n", proc->name, argv[optind]);
        rc = 2;
    }
    free(opts);
    (void)fn, (void)ctx;
    return rc;
}

pp_proc_t *pp_proc_new(const char *name, const char *section, const char *usage, int argc,
                       char **argv, const struct option *extra, pp_proc_option_fn *fn, void *ctx)
{
    pp_proc_t *proc = calloc(1, sizeof *proc);
    if (!proc) abort();
    proc->name = strdup(name);
    proc->section = strdup(section);
    pp_log_init(name, PP_LOG_INFO);

    s_common_t common = {NULL, NULL, NULL, -1};
    char **deferred = calloc((size_t)argc * 2 + 2, sizeof *deferred);
    int n_deferred = 0;
    if (s_parse(proc, usage, argc, argv, extra, fn, ctx, &common, &deferred, &n_deferred)) exit(2);

    char err[512];
    proc->config = pp_config_load(common.config, err, sizeof err);
    if (!proc->config) {
        fprintf(stderr, "pushpipe-%s: %s\n", name, err);
        exit(2);
    }
    if (common.broker) pp_config_set_str(proc->config, "broker_address", common.broker);
    if (common.log_level) pp_config_set_str(proc->config, "log_level", common.log_level);
    if (common.metrics_port >= 0) {
        char key[128];
        snprintf(key, sizeof key, "%s.metrics_port", section);
        pp_config_set_int(proc->config, key, common.metrics_port);
    }
    for (int i = 0; i < n_deferred; i += 2) {
        if (fn(proc, (int)(intptr_t)deferred[i], deferred[i + 1], ctx) != 0) exit(2);
    }
    free(deferred);

    const char *level_text = pp_config_str(proc->config, "log_level", "info");
    pp_log_level_t level;
    if (pp_log_level_parse(level_text, &level) != 0)
        pp_config_fail(proc->config, "log_level", "\"%s\" is not one of: debug, info, warn, error",
                       level_text);
    else
        pp_log_init(name, level);

    s_install_signals();
    proc->metrics = pp_metrics_new(name);
    proc->start_ms = pp_mono_ms();
    proc->ready = pp_metrics_gauge(proc->metrics, "ready",
                                   "1 from the end of start-up (every series registered, work "
                                   "taken) until a stop is asked for",
                                   NULL);
    atomic_store(&s_ready, proc->ready);
    return proc;
}

void pp_proc_running(pp_proc_t *proc)
{
    pp_metric_set(proc->ready, 1);
    /* A signal between the store above and here would be undone by it: look again. */
    if (s_stop) pp_metric_set(proc->ready, 0);
}

int pp_proc_exit(pp_proc_t **p, int rc, const char *const *counters)
{
    pp_proc_t *proc = *p;
    char fields[1024];
    size_t used = (size_t)snprintf(fields, sizeof fields, "exit=%d uptime_s=%.1f", rc,
                                   (double)(pp_mono_ms() - proc->start_ms) / 1000.0);
    for (size_t i = 0; counters && counters[i] && used < sizeof fields; i++) {
        int64_t v = pp_metrics_sum(proc->metrics, counters[i]);
        if (v >= 0) /* not registered: the stage did not get that far */
            used += (size_t)snprintf(fields + used, sizeof fields - used, " %s=%lld", counters[i],
                                     (long long)v);
    }
    pp_proc_destroy(p);
    pp_info("stopped", "%s", fields);
    return rc;
}

void pp_proc_destroy(pp_proc_t **p)
{
    if (!p || !*p) return;
    pp_proc_t *proc = *p;
    atomic_store(&s_ready, NULL);
    pp_metrics_destroy(&proc->metrics);
    pp_config_destroy(&proc->config);
    for (size_t i = 0; i < proc->n_brokers; i++)
        free(proc->brokers[i]);
    free(proc->name);
    free(proc->section);
    free(proc);
    *p = NULL;
}

pp_config_t *pp_proc_config(pp_proc_t *proc)
{
    return proc->config;
}

pp_metrics_t *pp_proc_metrics(pp_proc_t *proc)
{
    return proc->metrics;
}

const char *pp_proc_name(pp_proc_t *proc)
{
    return proc->name;
}

/*  Adds one entry of broker_address (len bytes at text, blanks around it trimmed) after
    checking it: not empty, at most 255 characters, a valid base address, not a duplicate,
    not beyond PP_PROC_MAX_BROKERS. Problems are config errors; the entry is then left out. */
static void s_add_broker(pp_proc_t *proc, const char *text, size_t len)
{
    while (len && (*text == ' ' || *text == '\t')) {
        text++;
        len--;
    }
    while (len && (text[len - 1] == ' ' || text[len - 1] == '\t'))
        len--;
    pp_config_t *c = proc->config;
    if (len == 0) {
        pp_config_fail(c, "broker_address", "an empty address in the list");
        return;
    }
    if (len > 255) {
        pp_config_fail(c, "broker_address", "an address longer than 255 characters");
        return;
    }
    if (proc->n_brokers == PP_PROC_MAX_BROKERS) {
        pp_config_fail(c, "broker_address", "more than %d addresses", PP_PROC_MAX_BROKERS);
        return;
    }
    char *addr = strndup(text, len);
    if (!addr) abort();
    char probe[256];
    if (pp_endpoint(addr, PP_EP_INTAKE, probe, sizeof probe) != 0 ||
        pp_endpoint(addr, PP_EP_MQTT_OUT, probe, sizeof probe) != 0) {
        pp_config_fail(c, "broker_address",
                       "\"%s\" is not tcp://HOST:PORT (PORT+6 <= 65535) or ipc:///PATH", addr);
        free(addr);
        return;
    }
    for (size_t i = 0; i < proc->n_brokers; i++) {
        if (strcmp(proc->brokers[i], addr) == 0) {
            pp_config_fail(c, "broker_address", "\"%s\" is listed twice", addr);
            free(addr);
            return;
        }
    }
    proc->brokers[proc->n_brokers++] = addr;
}

/*  Reads broker_address once: a string (one address or a comma-separated list) or a JSON
    array of strings. */
static void s_read_brokers(pp_proc_t *proc)
{
    if (proc->brokers_read) return;
    proc->brokers_read = true;
    pp_config_t *c = proc->config;
    json_t *v = pp_config_json(c, "broker_address");
    if (v && json_is_array(v)) {
        if (json_array_size(v) == 0) pp_config_fail(c, "broker_address", "an empty list");
        if (json_array_size(v) > PP_PROC_MAX_BROKERS)
            pp_config_fail(c, "broker_address", "more than %d addresses", PP_PROC_MAX_BROKERS);
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
        {
            if (i >= PP_PROC_MAX_BROKERS) break;
            if (!json_is_string(e)) {
                pp_config_fail(c, "broker_address", "entry %zu is not a string", i);
                continue;
            }
            s_add_broker(proc, json_string_value(e), json_string_length(e));
        }
    } else {
        const char *text = pp_config_str(c, "broker_address", PP_DEFAULT_BROKER_ADDRESS);
        for (const char *p = text;;) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            s_add_broker(proc, p, len);
            if (!comma) break;
            p = comma + 1;
        }
    }
}

size_t pp_proc_broker_addresses(pp_proc_t *proc, const char **out, size_t max)
{
    s_read_brokers(proc);
    for (size_t i = 0; i < proc->n_brokers && i < max; i++)
        out[i] = proc->brokers[i];
    return proc->n_brokers;
}

const char *pp_proc_broker_address(pp_proc_t *proc)
{
    const char *first = PP_DEFAULT_BROKER_ADDRESS;
    /* On a bad config the error is recorded; the default keeps callers' derivations sane
       until pp_proc_ready reports it. */
    pp_proc_broker_addresses(proc, &first, 1);
    return first;
}

int pp_proc_ready(pp_proc_t *proc, int default_metrics_port)
{
    char key[128];
    snprintf(key, sizeof key, "%s.metrics_port", proc->section);
    int port = (int)pp_config_int(proc->config, key, default_metrics_port, 0, 65535);
    snprintf(key, sizeof key, "%s.metrics_address", proc->section);
    const char *maddr = pp_config_str(proc->config, key, "127.0.0.1");
    /* Every process shares the config file, so every one accepts (and checks) the links'
       top-level heartbeat, also those without a link (the launcher). */
    (void)pp_link_heartbeat_read(proc->config, NULL);
    const char *const sections[] = {"", proc->section, NULL};
    pp_config_check_unknown(proc->config, sections);
    if (!pp_config_ok(proc->config)) {
        fprintf(stderr, "pushpipe-%s: %s\n", proc->name, pp_config_error(proc->config));
        pp_error("config_invalid", "error=\"%s\"", pp_config_error(proc->config));
        return 2;
    }
    if (pp_metrics_serve(proc->metrics, maddr, port) != 0) return 2;
    pp_info("started", "version=%s pid=%d", PUSHPIPE_VERSION, (int)getpid());
    return 0;
}

/*  pushpipe-mqtt-sender: publishes MQTT jobs from the broker to an MQTT broker.
    See docs/mqtt-sender.md. The skeleton only; the work is in pp_mqtt_sender.c, the keys
    in pp_mqtt_sender_config.c. */
#include "pp_curve.h"
#include "pp_linkset.h"
#include "pp_mqtt_sender.h"
#include "pp_mqtt_sender_config.h"
#include "pp_proc.h"

#include <stdio.h>

#define S_SECTION "mqtt_sender"
#define S_DEFAULT_METRICS_PORT 9630

enum { OPT_URI = 1000 };

static const struct option s_options[] = {
    {"uri", required_argument, NULL, OPT_URI},
    {NULL, 0, NULL, 0},
};

static const char s_usage[] = "  --uri URI           the MQTT broker (mqtt_sender.uri; "
                              "default tcp://127.0.0.1:1883)\n";

static int s_option(pp_proc_t *proc, int val, const char *arg, void *ctx)
{
    (void)ctx;
    if (val == OPT_URI) {
        pp_config_set_str(pp_proc_config(proc), S_SECTION ".uri", arg);
        return 0;
    }
    return -1;
}

/*  The stage's own counters on its "stopped" line (pp_proc_exit). */
static const char *const s_stopped_counters[] = {"jobs_total", "published_total", "failed_total",
                                                 NULL};

int main(int argc, char **argv)
{
    pp_proc_t *proc =
        pp_proc_new("mqtt-sender", S_SECTION, s_usage, argc, argv, s_options, s_option, NULL);
    pp_config_t *config = pp_proc_config(proc);
    const char *brokers[PP_LINKSET_MAX];
    size_t n_brokers = pp_proc_broker_addresses(proc, brokers, PP_LINKSET_MAX);
    pp_mqtt_sender_config_t cfg;
    pp_mqtt_sender_config_read(config, &cfg, brokers, n_brokers);
    pp_curve_t *curve = pp_curve_new(config, false);
    if (!curve || pp_proc_ready(proc, S_DEFAULT_METRICS_PORT) != 0) {
        pp_curve_destroy(&curve);
        pp_proc_destroy(&proc);
        return 2;
    }
    pp_linkset_t *link = pp_linkset_config_open(&cfg.link, curve, pp_proc_metrics(proc));
    char err[320] = "";
    pp_mqtt_sender_t *s = NULL;
    if (!link)
        snprintf(err, sizeof err, "cannot connect the link to %s%s",
                 cfg.link.n ? cfg.link.endpoint[0] : "",
                 cfg.link.n > 1 ? " (or another broker)" : "");
    else
        s = pp_mqtt_sender_new(&cfg, pp_proc_metrics(proc), link, err, sizeof err);
    int rc = 1;
    if (!s && pp_proc_stopping()) {
        rc = 0; /* a stop asked for while starting (its signal may have failed a call) */
    } else if (!s) {
        /* The MQTT client could not be made (bad options paho refuses): a config error. */
        fprintf(stderr, "pushpipe-mqtt-sender: %s\n", err);
        pp_error("start_failed", "error=\"%s\"", err);
        rc = 2;
    } else {
        pp_info("sender_started",
                "link=%s links=%zu link_window=%u uri=%s client_id=%s window=%d buffer_max=%zu "
                "qos=%d max_attempts=%d publish_timeout_ms=%d",
                cfg.link.endpoint[0], cfg.link.n, cfg.link.window, cfg.mqtt.uri, cfg.mqtt.client_id,
                cfg.window, cfg.buffer_max, cfg.qos, cfg.max_attempts, cfg.publish_timeout_ms);
        pp_proc_running(proc);
        rc = pp_mqtt_sender_run(s) == 0 ? 0 : 1;
        pp_mqtt_sender_drain(s);
    }
    if (link && pp_linkset_config_error(link)) rc = 2; /* a broker's heartbeat is not ours */
    /* Flushes the acks and says "B": the hubs send what was not acked to other senders. */
    pp_linkset_destroy(&link);
    pp_mqtt_sender_destroy(&s);
    pp_curve_destroy(&curve);
    return pp_proc_exit(&proc, rc, s_stopped_counters);
}

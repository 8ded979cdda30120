/*  pushpipe-broker: intake, validation, stamping, and the hub between stages.
    The skeleton only; the work is in pp_broker.c. */
#include "pp_broker.h"
#include "pp_curve.h"
#include "pp_proc.h"

#include <stdio.h>
#include <stdlib.h>

enum { OPT_BIND = 1000 };

static const struct option s_options[] = {
    {"bind", required_argument, NULL, OPT_BIND},
    {NULL, 0, NULL, 0},
};

static const char s_usage[] =
    "  --bind ADDR         base address of the broker's sockets (sets broker.bind,\n"
    "                      default: broker_address, else tcp://127.0.0.1:5560;\n"
    "                      deployments use tcp://0.0.0.0:5560)\n";

static int s_option(pp_proc_t *proc, int val, const char *arg, void *ctx)
{
    (void)ctx;
    if (val == OPT_BIND) {
        pp_config_set_str(pp_proc_config(proc), "broker.bind", arg);
        return 0;
    }
    return -1;
}

/*  The stage's own counters on its "stopped" line (pp_proc_exit). */
static const char *const s_stopped_counters[] = {"accepted_total", "durable_accepted_total",
                                                 "replies_dropped_total", NULL};

int main(int argc, char **argv)
{
    pp_proc_t *proc =
        pp_proc_new("broker", "broker", s_usage, argc, argv, s_options, s_option, NULL);
    pp_config_t *config = pp_proc_config(proc);
    pp_broker_config_t cfg;
    pp_broker_config_read(config, &cfg, pp_proc_broker_address(proc));
    pp_curve_t *curve = pp_curve_new(config, true);
    /* Count CURVE handshakes on every socket; must precede the first pp_curve_apply. */
    if (curve) pp_curve_set_metrics(curve, pp_proc_metrics(proc));
    if (!curve || pp_proc_ready(proc, 9600) != 0) {
        pp_curve_destroy(&curve);
        pp_proc_destroy(&proc);
        return 2;
    }
    pp_broker_t *broker = pp_broker_new(&cfg, curve, pp_proc_metrics(proc));
    int rc = 1;
    if (broker) {
        pp_proc_running(proc);
        rc = pp_broker_run(broker) == 0 ? 0 : 1;
        pp_broker_drain(broker);
        pp_broker_destroy(&broker);
    } else if (pp_proc_stopping()) {
        rc = 0; /* a stop asked for while starting (its signal may have failed a call) */
    }
    pp_curve_destroy(&curve);
    return pp_proc_exit(&proc, rc, s_stopped_counters);
}

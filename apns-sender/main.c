/*  pushpipe-apns-sender: delivers APNS jobs from the broker to Apple (see
    docs/apns-sender.md). The skeleton only; the work is in pp_apns_sender.c. */
#include "pp_apns_sender.h"
#include "pp_apns_sender_config.h"
#include "pp_curve.h"
#include "pp_linkset.h"
#include "pp_proc.h"

#include <stddef.h>

/*  The stage's own counters on its "stopped" line (pp_proc_exit). */
static const char *const s_stopped_counters[] = {"jobs_total", "delivered_total", "rejected_total",
                                                 "expired_total", NULL};

int main(int argc, char **argv)
{
    pp_proc_t *proc = pp_proc_new("apns-sender", "apns_sender", NULL, argc, argv, NULL, NULL, NULL);
    pp_config_t *config = pp_proc_config(proc);
    const char *brokers[PP_LINKSET_MAX];
    size_t n_brokers = pp_proc_broker_addresses(proc, brokers, PP_LINKSET_MAX);
    pp_apns_sender_config_t cfg;
    pp_apns_sender_config_read(config, &cfg, brokers, n_brokers);
    pp_curve_t *curve = pp_curve_new(config, false);
    if (!curve || pp_proc_ready(proc, 9620) != 0) {
        pp_apns_sender_config_clear(&cfg);
        pp_curve_destroy(&curve);
        pp_proc_destroy(&proc);
        return 2;
    }
    pp_linkset_t *link = pp_linkset_config_open(&cfg.link, curve, pp_proc_metrics(proc));
    pp_apns_sender_t *sender = link ? pp_apns_sender_new(&cfg, pp_proc_metrics(proc), link) : NULL;
    int rc = 1;
    if (sender) {
        pp_proc_running(proc);
        rc = pp_apns_sender_run(sender) == 0 ? 0 : 1;
        pp_apns_sender_drain(sender);
    } else if (pp_proc_stopping()) {
        rc = 0; /* a stop asked for while starting (its signal may have failed a call) */
    }
    if (link && pp_linkset_config_error(link)) rc = 2; /* a broker's heartbeat is not ours */
    /* Flushes the acks and says "B": the hubs send what was not acked to other senders. */
    pp_linkset_destroy(&link);
    pp_apns_sender_destroy(&sender);
    pp_apns_sender_config_clear(&cfg);
    pp_curve_destroy(&curve);
    return pp_proc_exit(&proc, rc, s_stopped_counters);
}

/*  pushpipe-resolver: one acknowledged link (common/pp_link.h) to the resolve endpoint of
    each broker in broker_address (common/pp_linkset.h): RESOLVE jobs in, Redis lookups,
    APNS and MQTT jobs out over the link the job came from (outputs, routed by that broker
    by kind), each RESOLVE job acknowledged after all its outputs. Any number of resolvers
    run side by side: a broker deals each RESOLVE job to one of them and re-sends what a
    dead resolver held. See docs/resolver.md. The skeleton only; the work is in
    pp_resolver.c, the keys in pp_resolver_config.c.
*/
#include "pp_curve.h"
#include "pp_linkset.h"
#include "pp_proc.h"
#include "pp_resolver.h"
#include "pp_resolver_config.h"
#include "pp_userdb.h"

#include <stdio.h>

#define S_DEFAULT_METRICS_PORT 9610

static const char *s_usage = "Reads the \"resolver\" section of the config (docs/resolver.md).\n";

static int s_no_options(pp_proc_t *proc, int val, const char *arg, void *ctx)
{
    (void)proc, (void)val, (void)arg, (void)ctx;
    return -1;
}

/*  The stage's own counters on its "stopped" line (pp_proc_exit). */
static const char *const s_stopped_counters[] = {"messages_total", "apns_jobs_total",
                                                 "mqtt_jobs_total", "jobs_dropped_total", NULL};

int main(int argc, char **argv)
{
    static const struct option none[] = {{NULL, 0, NULL, 0}};
    pp_proc_t *proc =
        pp_proc_new("resolver", "resolver", s_usage, argc, argv, none, s_no_options, NULL);
    pp_config_t *config = pp_proc_config(proc);
    const char *brokers[PP_LINKSET_MAX];
    size_t n_brokers = pp_proc_broker_addresses(proc, brokers, PP_LINKSET_MAX);
    pp_resolver_config_t cfg;
    pp_resolver_config_read(config, &cfg, brokers, n_brokers);
    pp_curve_t *curve = pp_curve_new(config, false);
    if (!curve || pp_proc_ready(proc, S_DEFAULT_METRICS_PORT) != 0) {
        pp_curve_destroy(&curve);
        pp_proc_destroy(&proc);
        return 2;
    }
    pp_metrics_t *m = pp_proc_metrics(proc);
    pp_linkset_t *link = pp_linkset_config_open(&cfg.link, curve, m);
    pp_userdb_t *db = pp_userdb_new(&cfg.redis, m);
    pp_resolver_t *r = link && db ? pp_resolver_new(&cfg, m, db, link) : NULL;
    int rc = 1;
    if (r) {
        pp_proc_running(proc);
        rc = pp_resolver_run(r) == 0 ? 0 : 1;
        pp_resolver_drain(r);
    } else if (pp_proc_stopping()) {
        rc = 0; /* a stop asked for while starting (its signal may have failed a call) */
    }
    if (link && pp_linkset_config_error(link)) rc = 2; /* a broker's heartbeat is not ours */
    /* Flushes acks and says "B": the broker re-sends at once whatever we did not ack.
       Queued outputs get a linger of heartbeat_ms (at most 2 s) to reach the broker. */
    pp_linkset_destroy(&link);
    pp_resolver_destroy(&r);
    pp_userdb_destroy(&db);
    pp_curve_destroy(&curve);
    return pp_proc_exit(&proc, rc, s_stopped_counters);
}

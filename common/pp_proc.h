/*  pp_proc: the skeleton every pushpipe process shares: config, loop, metrics, stop.

    Every main.c has this shape (stage foo; docs/DEVELOPING.md, "Anatomy of a stage"):
        pp_proc_t *proc = pp_proc_new("foo", "foo", usage, argc, argv, my_options,
                                      my_option_cb, me);  // exits 2: bad flags or file
        pp_config_t *config = pp_proc_config(proc);
        size_t n = pp_proc_broker_addresses(proc, brokers, PP_LINKSET_MAX);
        pp_foo_config_t cfg;
        pp_foo_config_read(config, &cfg, brokers, n);   // foo/pp_foo_config.c: every key
        pp_curve_t *curve = pp_curve_new(config, false); // true in the broker
        if (!curve || pp_proc_ready(proc, default_metrics_port) != 0) { // keys, metrics
            pp_curve_destroy(&curve);
            pp_proc_destroy(&proc);
            return 2;
        }
        pp_linkset_t *link = pp_linkset_new(...);       // workers; the broker binds in _new
        pp_foo_t *foo = link ? pp_foo_new(&cfg, pp_proc_metrics(proc), link) : NULL;
        int rc = 1;
        if (foo) {
            pp_proc_running(proc);              // pushpipe_ready 1
            rc = pp_foo_run(foo) == 0 ? 0 : 1;  // until pp_proc_stopping()
            pp_foo_drain(foo);                  // bounded; the senders' is pp_linkset_drain
        } else if (pp_proc_stopping()) {
            rc = 0;                             // a stop during start-up is a clean stop
        }
        if (link && pp_linkset_config_error(link)) rc = 2; // a hub's heartbeat differs
        pp_linkset_destroy(&link);              // acks flushed, "B": the rest goes elsewhere
        pp_foo_destroy(&foo);
        pp_curve_destroy(&curve);
        return pp_proc_exit(&proc, rc, counters); // the "stopped" line

    Common flags: --config FILE, --broker ADDR[,ADDR...] (sets "broker_address"), --log-level L,
    --metrics-port N (sets "<section>.metrics_port"), --help, --version.
    SIGINT and SIGTERM set the stop flag; blocking calls return EINTR so loops notice.
*/
#ifndef PP_PROC_H
#define PP_PROC_H

#include "pp_config.h"
#include "pp_log.h"
#include "pp_metrics.h"

#include <getopt.h>
#include <stdbool.h>

typedef struct pp_proc_t pp_proc_t;

/*  Extra options of one program: a getopt_long table (terminated by a zero entry; use
    `val` values >= 1000) and a callback that applies one. The callback returns 0, or -1
    after printing an error (the process then exits 2). */
typedef int(pp_proc_option_fn)(pp_proc_t *proc, int val, const char *arg, void *arg_ctx);

/*  section is the program's config section ("broker", "resolver", ...), usage the extra
    lines of --help. */
pp_proc_t *pp_proc_new(const char *name, const char *section, const char *usage, int argc,
                       char **argv, const struct option *extra, pp_proc_option_fn *fn, void *ctx);
void pp_proc_destroy(pp_proc_t **p);

/*  Start-up is over: every series the stage has is registered and it takes work, so the
    gauge pushpipe_ready turns 1 (a scrape, a readiness probe or a test that sees 1 sees
    every series). It turns 0 again the moment SIGTERM/SIGINT arrives or a stop is asked
    for (pp_proc_request_stop), before the drain. */
void pp_proc_running(pp_proc_t *proc);

/*  The last line of every process after a start, the same in all:
        event=stopped exit=<rc> uptime_s=<since pp_proc_new> <counter>=<value> ...
    with the value of each of the stage's own counters named in counters (a name without
    the prefix, summed over its labels; NULL-terminated; counters may be NULL; one not
    registered is left out). Destroys proc (nulls *p) and returns rc, so main ends with
    `return pp_proc_exit(&proc, rc, counters);`. */
int pp_proc_exit(pp_proc_t **p, int rc, const char *const *counters);

pp_config_t *pp_proc_config(pp_proc_t *proc);
pp_metrics_t *pp_proc_metrics(pp_proc_t *proc);
const char *pp_proc_name(pp_proc_t *proc);

/*  Most brokers one process may be given in "broker_address". */
#define PP_PROC_MAX_BROKERS 16

/*  The broker addresses from config/flags: "broker_address" is one address, a
    comma-separated list of them ("tcp://a:5560,tcp://b:5560"; blanks around entries are
    ignored), or a JSON array of 1..PP_PROC_MAX_BROKERS address strings; --broker takes
    the same string forms. Default PP_DEFAULT_BROKER_ADDRESS. Each entry must be
    tcp://HOST:PORT (PORT+6 <= 65535) or ipc:///PATH, and no entry may appear twice; a
    problem is recorded as a config error on "broker_address" (pp_proc_ready then fails)
    and the addresses that were valid are still returned. Writes up to max pointers (they
    live as long as proc) into out and returns how many addresses there are (at least 1
    when the config is valid; may exceed max). Workers hold one link per address
    (common/pp_linkset.h). */
size_t pp_proc_broker_addresses(pp_proc_t *proc, const char **out, size_t max);

/*  The first of pp_proc_broker_addresses: the address a broker binds by default
    (broker.bind) and the one single-broker tools use. */
const char *pp_proc_broker_address(pp_proc_t *proc);

/*  Checks the config (unknown keys in the program's section and the top level; the
    top-level keys every process accepts, e.g. "heartbeat_ms" of common/pp_link_wire.h,
    are read here if the program did not), starts
    the metrics server on "<section>.metrics_port" (default given by the program, 0 = off)
    and logs "started". Returns 0, or prints the error and returns 2 (the exit code for
    bad configuration). */
int pp_proc_ready(pp_proc_t *proc, int default_metrics_port);

/*  True once SIGINT or SIGTERM arrived. */
bool pp_proc_stopping(void);
/*  Asks the process to stop, as a signal would (tests, fatal conditions). */
void pp_proc_request_stop(void);

#endif

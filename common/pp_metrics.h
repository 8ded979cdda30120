/*  pp_metrics: counters and gauges of one process, served as Prometheus text over HTTP.

    Every process registers what it counts at start, bumps values from its loop (any
    thread: values are atomic), and serves them on one port with pp_metrics_serve().
    Names get the prefix "pushpipe_" and every series carries the label proc="<name>".
*/
#ifndef PP_METRICS_H
#define PP_METRICS_H

#include <stdint.h>
#include <stddef.h>

typedef struct pp_metrics_t pp_metrics_t;
typedef struct pp_metric_t pp_metric_t;

/*  Creates an empty registry for the process named proc. */
pp_metrics_t *pp_metrics_new(const char *proc);

/*  Stops the HTTP server if running and frees everything; nulls *p. */
void pp_metrics_destroy(pp_metrics_t **p);

/*  Registers a counter (only goes up) or a gauge. name is snake_case without the prefix;
    labels is NULL or a Prometheus label list without braces, e.g. "reason=\"bad_utf8\"".
    Registering the same name and labels twice returns the same metric. Never NULL. */
pp_metric_t *pp_metrics_counter(pp_metrics_t *m, const char *name, const char *help,
                                const char *labels);
pp_metric_t *pp_metrics_gauge(pp_metrics_t *m, const char *name, const char *help,
                              const char *labels);

void pp_metric_add(pp_metric_t *metric, uint64_t n);
void pp_metric_inc(pp_metric_t *metric);
void pp_metric_set(pp_metric_t *metric, int64_t value);
int64_t pp_metric_get(const pp_metric_t *metric);

/*  Returns the whole registry in Prometheus text exposition format (version 0.0.4).
    The caller frees the string. */
char *pp_metrics_render(pp_metrics_t *m);

/*  Looks a series up by name and labels (as registered); returns its value or -1.
    Meant for tests and for `pushpipe status`. */
int64_t pp_metrics_value(pp_metrics_t *m, const char *name, const char *labels);

/*  The sum of every series of name, whatever its labels; -1 when there is none (for the
    "stopped" line, pp_proc_exit). */
int64_t pp_metrics_sum(pp_metrics_t *m, const char *name);

/*  Serves GET /metrics (and /) on bind_addr:port in a thread of libmicrohttpd's.
    port 0 serves nothing and succeeds. Returns 0, or -1 with a logged error. */
int pp_metrics_serve(pp_metrics_t *m, const char *bind_addr, int port);

#endif

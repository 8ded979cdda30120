/*  pp_scrape: reads another process's Prometheus metrics (for `pushpipe status`).

    pp_scrape_get() is a minimal HTTP/1.0 GET, hand-written on purpose: libmicrohttpd only
    serves, and libcurl would be a new dependency for one request to a local port. The
    parser reads the text exposition format that pp_metrics writes: comment lines, and
    `name{labels} value` or `name value` lines.
*/
#ifndef PP_SCRAPE_H
#define PP_SCRAPE_H

#include <stddef.h>

/*  Fetches http://host:port/metrics within timeout_ms. Returns the body (caller frees), or
    NULL with a short reason in err ("connection refused", "HTTP 404", ...). Bodies over
    max_bytes are an error. */
char *pp_scrape_get(const char *host, int port, int timeout_ms, size_t max_bytes, char *err,
                    size_t errlen);

typedef struct pp_prom_t pp_prom_t;

/*  Parses exposition text; malformed lines are skipped and counted. Never NULL. */
pp_prom_t *pp_prom_parse(const char *text);
void pp_prom_destroy(pp_prom_t **p);

/*  Number of series read, and of lines skipped as malformed. */
size_t pp_prom_size(const pp_prom_t *p);
size_t pp_prom_skipped(const pp_prom_t *p);

/*  Sum of the series named name (full name, e.g. "pushpipe_broker_accepted_total") whose
    label text contains label_part (NULL: all). found (may be NULL) is set to whether any
    series matched. */
double pp_prom_sum(const pp_prom_t *p, const char *name, const char *label_part, int *found);

/*  The i-th distinct series name (in order of first appearance), for listing everything;
    NULL past the end. */
const char *pp_prom_name(const pp_prom_t *p, size_t i);

#endif

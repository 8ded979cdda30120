/*  pp_apns_dns: one host name lookup that does not block the caller's loop.

    getaddrinfo blocks for as long as the DNS takes: with a resolver that does not answer,
    seconds per attempt (resolv.conf timeout x attempts x servers). Run on the sender's
    loop, that stopped the link's heartbeats and the broker declared the sender dead. So a
    lookup runs getaddrinfo in a detached thread of its own; the caller polls
    pp_apns_dns_fd() (readable once the answer is in) and takes the answer with
    pp_apns_dns_result(). A caller that stops waiting (its connect timeout passed)
    destroys the lookup at once; the thread, which cannot be interrupted inside
    getaddrinfo, frees what is left when it returns. Numeric hosts (IP literals) are
    answered at once, without a thread.

    At most PP_APNS_DNS_MAX_RUNNING lookups run at a time (a DNS that never answers must not
    grow threads without bound while connections keep retrying); a start beyond that fails.
    The thread blocks every signal (they are the loop's) and never logs.
*/
#ifndef PP_APNS_DNS_H
#define PP_APNS_DNS_H

#include "pp_metrics.h"

#include <netdb.h>
#include <stddef.h>

#define PP_APNS_DNS_MAX_RUNNING 32

typedef struct pp_apns_dns_t pp_apns_dns_t;

/*  Starts looking host up (TCP, any family) for port. Returns NULL with the reason in err
    if host is empty or longer than 255 bytes, too many lookups run, or no thread could be
    made. */
pp_apns_dns_t *pp_apns_dns_start(const char *host, int port, char *err, size_t errlen);

/*  Abandons a lookup still running (its thread frees it when getaddrinfo returns) or frees
    a finished one, with any answer not taken. Nulls *p. */
void pp_apns_dns_destroy(pp_apns_dns_t **p);

/*  A descriptor that becomes readable (POLLIN) when the answer is in. */
int pp_apns_dns_fd(const pp_apns_dns_t *d);

/*  0 while the lookup runs. Once it is done: 1, with *res the addresses (the caller's, for
    freeaddrinfo) or NULL and *gai_rc getaddrinfo's error. The answer is handed out once. */
int pp_apns_dns_result(pp_apns_dns_t *d, struct addrinfo **res, int *gai_rc);

/*  Lookups whose thread has not returned yet (abandoned ones included). */
int pp_apns_dns_running(void);

/*  Registers the lookup counters in m (dns_lookups_total{result}); call once at start from
    the loop's thread. Without it nothing is counted. */
void pp_apns_dns_metrics(pp_metrics_t *m);

/*  Counts one lookup's outcome: "ok", "failed", "timeout" (the caller gave up), "busy". */
void pp_apns_dns_count(const char *result);

#endif

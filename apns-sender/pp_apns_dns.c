#include "pp_apns_dns.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

struct pp_apns_dns_t {
    pthread_mutex_t mu; /* guards done, abandoned, rc, res */
    bool done, abandoned;
    int efd; /* eventfd: written once, when done (unless abandoned) */
    char host[256];
    char port[16];
    int rc;
    struct addrinfo *res;
};

static atomic_int s_running;
static pp_metric_t *s_counters[4]; /* ok, failed, timeout, busy */
static const char *const s_results[4] = {"ok", "failed", "timeout", "busy"};

void pp_apns_dns_metrics(pp_metrics_t *m)
{
    for (int i = 0; i < 4; i++) {
        char labels[32];
        snprintf(labels, sizeof labels, "result=\"%s\"", s_results[i]);
        s_counters[i] = pp_metrics_counter(
            m, "dns_lookups_total",
            "Host name lookups of APNs connections: ok, failed, timeout (took longer than "
            "timeout_ms; the connection gave up), busy (too many running)",
            labels);
    }
}

void pp_apns_dns_count(const char *result)
{
    for (int i = 0; i < 4; i++)
        if (!strcmp(result, s_results[i]) && s_counters[i]) pp_metric_inc(s_counters[i]);
}

int pp_apns_dns_running(void)
{
    return atomic_load(&s_running);
}

static void s_free(pp_apns_dns_t *d)
{
    if (d->res) freeaddrinfo(d->res);
    if (d->efd >= 0) close(d->efd);
    pthread_mutex_destroy(&d->mu);
    free(d);
}

/*  Marks d done with (rc, res) and wakes the owner; frees d if the owner left. */
static void s_finish(pp_apns_dns_t *d, int rc, struct addrinfo *res)
{
    pthread_mutex_lock(&d->mu);
    d->rc = rc;
    d->res = res;
    d->done = true;
    bool gone = d->abandoned;
    if (!gone) {
        uint64_t one = 1;
        ssize_t w = write(d->efd, &one, sizeof one);
        (void)w; /* an eventfd write of 1 cannot fail short of overflow */
    }
    pthread_mutex_unlock(&d->mu);
    if (gone) s_free(d);
}

static struct addrinfo s_hints(int flags)
{
    struct addrinfo h;
    memset(&h, 0, sizeof h);
    h.ai_family = AF_UNSPEC;
    h.ai_socktype = SOCK_STREAM;
    h.ai_flags = flags;
    return h;
}

static void *s_thread(void *arg)
{
    pp_apns_dns_t *d = arg;
    struct addrinfo hints = s_hints(0), *res = NULL;
    int rc = getaddrinfo(d->host, d->port, &hints, &res);
    if (rc != 0) res = NULL;
    s_finish(d, rc, res);
    atomic_fetch_sub(&s_running, 1);
    return NULL;
}

pp_apns_dns_t *pp_apns_dns_start(const char *host, int port, char *err, size_t errlen)
{
    size_t hl = host ? strlen(host) : 0;
    if (hl == 0 || hl > 255) {
        snprintf(err, errlen, "host name empty or longer than 255 bytes");
        return NULL;
    }
    pp_apns_dns_t *d = calloc(1, sizeof *d);
    if (!d) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&d->mu, NULL);
    memcpy(d->host, host, hl + 1);
    snprintf(d->port, sizeof d->port, "%d", port);
    d->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (d->efd < 0) {
        snprintf(err, errlen, "eventfd: %s", strerror(errno));
        s_free(d);
        return NULL;
    }
    /* An IP literal needs no DNS: answer now, on the caller's thread. */
    struct addrinfo hints = s_hints(AI_NUMERICHOST), *res = NULL;
    if (getaddrinfo(d->host, d->port, &hints, &res) == 0 && res) {
        s_finish(d, 0, res);
        return d;
    }
    if (atomic_fetch_add(&s_running, 1) >= PP_APNS_DNS_MAX_RUNNING) {
        atomic_fetch_sub(&s_running, 1);
        snprintf(err, errlen, "%d lookups already running", PP_APNS_DNS_MAX_RUNNING);
        s_free(d);
        return NULL;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 256 * 1024);
    /* The thread inherits the mask: every signal stays with the loop's thread, whose
       handlers (SIGTERM: drain) must run there. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    pthread_t t;
    int rc = pthread_create(&t, &attr, s_thread, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        atomic_fetch_sub(&s_running, 1);
        snprintf(err, errlen, "pthread_create: %s", strerror(rc));
        s_free(d);
        return NULL;
    }
    return d;
}

void pp_apns_dns_destroy(pp_apns_dns_t **p)
{
    if (!p || !*p) return;
    pp_apns_dns_t *d = *p;
    *p = NULL;
    pthread_mutex_lock(&d->mu);
    bool done = d->done;
    if (!done) d->abandoned = true; /* the thread frees it */
    pthread_mutex_unlock(&d->mu);
    if (done) s_free(d);
}

int pp_apns_dns_fd(const pp_apns_dns_t *d)
{
    return d->efd;
}

int pp_apns_dns_result(pp_apns_dns_t *d, struct addrinfo **res, int *gai_rc)
{
    pthread_mutex_lock(&d->mu);
    int done = d->done;
    if (done) {
        *res = d->res;
        *gai_rc = d->rc;
        d->res = NULL;
        uint64_t v;
        ssize_t r = read(d->efd, &v, sizeof v); /* drained: no more POLLIN */
        (void)r;
    }
    pthread_mutex_unlock(&d->mu);
    return done ? 1 : 0;
}

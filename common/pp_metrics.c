#include "pp_metrics.h"
#include "pp_log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pp_metric_t {
    char *name;
    char *help;
    char *labels;
    bool gauge;
    _Atomic int64_t value;
    pp_metric_t *next;
};

struct pp_metrics_t {
    char *proc;
    pthread_mutex_t lock; /* guards the list; values are atomics */
    pp_metric_t *head, *tail;
    struct MHD_Daemon *daemon;
};

pp_metrics_t *pp_metrics_new(const char *proc)
{
    pp_metrics_t *m = calloc(1, sizeof *m);
    if (!m) abort();
    m->proc = strdup(proc);
    pthread_mutex_init(&m->lock, NULL);
    return m;
}

void pp_metrics_destroy(pp_metrics_t **p)
{
    if (!p || !*p) return;
    pp_metrics_t *m = *p;
    if (m->daemon) MHD_stop_daemon(m->daemon);
    for (pp_metric_t *it = m->head; it;) {
        pp_metric_t *next = it->next;
        free(it->name);
        free(it->help);
        free(it->labels);
        free(it);
        it = next;
    }
    pthread_mutex_destroy(&m->lock);
    free(m->proc);
    free(m);
    *p = NULL;
}

static bool s_same(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

static pp_metric_t *s_find(pp_metrics_t *m, const char *name, const char *labels)
{
    for (pp_metric_t *it = m->head; it; it = it->next)
        if (strcmp(it->name, name) == 0 && s_same(it->labels, labels)) return it;
    return NULL;
}

static pp_metric_t *s_register(pp_metrics_t *m, const char *name, const char *help,
                               const char *labels, bool gauge)
{
    pthread_mutex_lock(&m->lock);
    pp_metric_t *it = s_find(m, name, labels);
    if (!it) {
        it = calloc(1, sizeof *it);
        if (!it) abort();
        it->name = strdup(name);
        it->help = strdup(help ? help : name);
        it->labels = labels && *labels ? strdup(labels) : NULL;
        it->gauge = gauge;
        /* Appended at the tail so that series of one name stay together when they are
           registered together, which keeps HELP/TYPE lines single in the common case. */
        if (m->tail)
            m->tail->next = it;
        else
            m->head = it;
        m->tail = it;
    }
    pthread_mutex_unlock(&m->lock);
    return it;
}

pp_metric_t *pp_metrics_counter(pp_metrics_t *m, const char *name, const char *help,
                                const char *labels)
{
    return s_register(m, name, help, labels, false);
}

pp_metric_t *pp_metrics_gauge(pp_metrics_t *m, const char *name, const char *help,
                              const char *labels)
{
    return s_register(m, name, help, labels, true);
}

void pp_metric_add(pp_metric_t *metric, uint64_t n)
{
    atomic_fetch_add_explicit(&metric->value, (int64_t)n, memory_order_relaxed);
}

void pp_metric_inc(pp_metric_t *metric)
{
    atomic_fetch_add_explicit(&metric->value, 1, memory_order_relaxed);
}

void pp_metric_set(pp_metric_t *metric, int64_t value)
{
    atomic_store_explicit(&metric->value, value, memory_order_relaxed);
}

int64_t pp_metric_get(const pp_metric_t *metric)
{
    return atomic_load_explicit(&((pp_metric_t *)metric)->value, memory_order_relaxed);
}

int64_t pp_metrics_value(pp_metrics_t *m, const char *name, const char *labels)
{
    pthread_mutex_lock(&m->lock);
    pp_metric_t *it = s_find(m, name, labels);
    int64_t v = it ? pp_metric_get(it) : -1;
    pthread_mutex_unlock(&m->lock);
    return v;
}

int64_t pp_metrics_sum(pp_metrics_t *m, const char *name)
{
    int64_t sum = -1;
    pthread_mutex_lock(&m->lock);
    for (pp_metric_t *it = m->head; it; it = it->next)
        if (strcmp(it->name, name) == 0) sum = (sum < 0 ? 0 : sum) + pp_metric_get(it);
    pthread_mutex_unlock(&m->lock);
    return sum;
}

typedef struct {
    char *buf;
    size_t len, cap;
} s_text_t;

static void s_append(s_text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_append(s_text_t *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) return;
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        t->cap = t->cap * 2 + (size_t)n;
        t->buf = realloc(t->buf, t->cap);
        if (!t->buf) abort();
    }
}

static bool s_seen_before(pp_metrics_t *m, pp_metric_t *until, const char *name)
{
    for (pp_metric_t *it = m->head; it && it != until; it = it->next)
        if (strcmp(it->name, name) == 0) return true;
    return false;
}

char *pp_metrics_render(pp_metrics_t *m)
{
    s_text_t t = {malloc(4096), 0, 4096};
    if (!t.buf) abort();
    t.buf[0] = '\0';
    pthread_mutex_lock(&m->lock);
    for (pp_metric_t *it = m->head; it; it = it->next) {
        if (s_seen_before(m, it, it->name)) continue;
        s_append(&t, "# HELP pushpipe_%s %s\n# TYPE pushpipe_%s %s\n", it->name, it->help, it->name,
                 it->gauge ? "gauge" : "counter");
        for (pp_metric_t *s = it; s; s = s->next) {
            if (strcmp(s->name, it->name) != 0) continue;
            s_append(&t, "pushpipe_%s{proc=\"%s\"%s%s} %lld\n", s->name, m->proc,
                     s->labels ? "," : "", s->labels ? s->labels : "", (long long)pp_metric_get(s));
        }
    }
    pthread_mutex_unlock(&m->lock);
    return t.buf;
}

static enum MHD_Result s_handle(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_size, void **state)
{
    (void)version, (void)upload, (void)upload_size, (void)state;
    pp_metrics_t *m = cls;
    struct MHD_Response *resp;
    unsigned status = MHD_HTTP_OK;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        static const char msg[] = "method not allowed\n";
        resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_METHOD_NOT_ALLOWED;
    } else if (strcmp(url, "/metrics") == 0 || strcmp(url, "/") == 0) {
        char *text = pp_metrics_render(m);
        resp = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
        MHD_add_response_header(resp, "Content-Type", "text/plain; version=0.0.4");
    } else {
        static const char msg[] = "not found; try /metrics\n";
        resp = MHD_create_response_from_buffer(sizeof msg - 1, (void *)msg, MHD_RESPMEM_PERSISTENT);
        status = MHD_HTTP_NOT_FOUND;
    }
    enum MHD_Result r = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return r;
}

int pp_metrics_serve(pp_metrics_t *m, const char *bind_addr, int port)
{
    if (port <= 0) return 0;
    if (port > 65535) {
        pp_error("metrics_failed", "reason=bad_port port=%d", port);
        return -1;
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    const char *addr = bind_addr && *bind_addr ? bind_addr : "127.0.0.1";
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        pp_error("metrics_failed", "reason=bad_address address=%s", addr);
        return -1;
    }
    m->daemon =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
                         NULL, s_handle, m, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)64, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
    if (!m->daemon) {
        pp_error("metrics_failed", "reason=bind address=%s port=%d", addr, port);
        return -1;
    }
    pp_info("metrics_listening", "address=%s port=%d path=/metrics", addr, port);
    return 0;
}

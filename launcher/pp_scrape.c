#include "pp_scrape.h"

#include <errno.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static int s_connect(const char *host, int port, int timeout_ms, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    int rc = getaddrinfo(host, service, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "%s", gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) continue;
        /* On Linux SO_SNDTIMEO also bounds connect(). */
        struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            snprintf(err, errlen, "%s", errno == EINPROGRESS ? "timeout" : strerror(errno));
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(res);
    return fd;
}

char *pp_scrape_get(const char *host, int port, int timeout_ms, size_t max_bytes, char *err,
                    size_t errlen)
{
    int fd = s_connect(host, port, timeout_ms, err, errlen);
    if (fd < 0) return NULL;
    char req[256];
    int n =
        snprintf(req, sizeof req,
                 "GET /metrics HTTP/1.0\r\nHost: %s:%d\r\nConnection: close\r\n\r\n", host, port);
    if (n < 0 || (size_t)n >= sizeof req || send(fd, req, (size_t)n, MSG_NOSIGNAL) != n) {
        snprintf(err, errlen, "send failed");
        close(fd);
        return NULL;
    }
    size_t cap = 65536, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    while (true) {
        if (len == cap) {
            if (cap >= max_bytes + 4096) {
                snprintf(err, errlen, "response over %zu bytes", max_bytes);
                goto fail;
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                snprintf(err, errlen, "out of memory");
                goto fail;
            }
            buf = nb;
        }
        ssize_t got = recv(fd, buf + len, cap - len, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) {
            snprintf(err, errlen, "%s", errno == EAGAIN ? "timeout" : strerror(errno));
            goto fail;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    close(fd);
    buf[len] = '\0';
    int status = 0;
    if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1) {
        snprintf(err, errlen, "not an HTTP response");
        free(buf);
        return NULL;
    }
    if (status != 200) {
        snprintf(err, errlen, "HTTP %d", status);
        free(buf);
        return NULL;
    }
    char *body = strstr(buf, "\r\n\r\n");
    if (!body) {
        snprintf(err, errlen, "truncated response");
        free(buf);
        return NULL;
    }
    body += 4;
    if (strlen(body) > max_bytes) {
        snprintf(err, errlen, "response over %zu bytes", max_bytes);
        free(buf);
        return NULL;
    }
    memmove(buf, body, strlen(body) + 1);
    return buf;
fail:
    close(fd);
    free(buf);
    return NULL;
}

/* ---- exposition text ------------------------------------------------------------------- */

typedef struct {
    char *name;
    char *labels; /* without braces; "" when none */
    double value;
} s_series_t;

struct pp_prom_t {
    s_series_t *series;
    size_t n, cap;
    size_t skipped;
};

static void s_add(pp_prom_t *p, const char *name, size_t name_len, const char *labels,
                  size_t labels_len, double value)
{
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 64;
        s_series_t *ns = realloc(p->series, cap * sizeof *ns);
        if (!ns) abort();
        p->series = ns;
        p->cap = cap;
    }
    s_series_t *s = &p->series[p->n++];
    s->name = strndup(name, name_len);
    s->labels = strndup(labels, labels_len);
    if (!s->name || !s->labels) abort();
    s->value = value;
}

/*  One sample line: name, optional {labels} (label values may hold '}' inside quotes),
    space, value, optional timestamp. Returns 0, or -1 if malformed. */
static int s_line(pp_prom_t *p, const char *line, size_t len)
{
    size_t i = 0;
    while (i < len &&
           (line[i] == '_' || line[i] == ':' || (line[i] >= 'a' && line[i] <= 'z') ||
            (line[i] >= 'A' && line[i] <= 'Z') || (i && line[i] >= '0' && line[i] <= '9')))
        i++;
    if (i == 0) return -1;
    size_t name_len = i;
    const char *labels = "";
    size_t labels_len = 0;
    if (i < len && line[i] == '{') {
        size_t start = ++i;
        bool quoted = false;
        while (i < len && (quoted || line[i] != '}')) {
            if (quoted && line[i] == '\\')
                i++;
            else if (line[i] == '"')
                quoted = !quoted;
            i++;
        }
        if (i >= len) return -1;
        labels = line + start;
        labels_len = i - start;
        i++;
    }
    if (i >= len || line[i] != ' ') return -1;
    char num[64];
    size_t nlen = 0;
    i++;
    while (i < len && line[i] != ' ' && nlen < sizeof num - 1)
        num[nlen++] = line[i++];
    num[nlen] = '\0';
    char *end = NULL;
    double v = strtod(num, &end);
    if (nlen == 0 || !end || *end) return -1;
    s_add(p, line, name_len, labels, labels_len, v);
    return 0;
}

pp_prom_t *pp_prom_parse(const char *text)
{
    pp_prom_t *p = calloc(1, sizeof *p);
    if (!p) abort();
    const char *at = text ? text : "";
    while (*at) {
        const char *nl = strchr(at, '\n');
        size_t len = nl ? (size_t)(nl - at) : strlen(at);
        if (len && at[len - 1] == '\r') len--;
        if (len && at[0] != '#' && s_line(p, at, len) != 0) p->skipped++;
        at += nl ? (size_t)(nl - at) + 1 : len;
    }
    return p;
}

void pp_prom_destroy(pp_prom_t **pp)
{
    if (!pp || !*pp) return;
    pp_prom_t *p = *pp;
    for (size_t i = 0; i < p->n; i++) {
        free(p->series[i].name);
        free(p->series[i].labels);
    }
    free(p->series);
    free(p);
    *pp = NULL;
}

size_t pp_prom_size(const pp_prom_t *p)
{
    return p->n;
}

size_t pp_prom_skipped(const pp_prom_t *p)
{
    return p->skipped;
}

double pp_prom_sum(const pp_prom_t *p, const char *name, const char *label_part, int *found)
{
    double sum = 0;
    int any = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (strcmp(p->series[i].name, name) != 0) continue;
        if (label_part && !strstr(p->series[i].labels, label_part)) continue;
        sum += p->series[i].value;
        any = 1;
    }
    if (found) *found = any;
    return sum;
}

const char *pp_prom_name(const pp_prom_t *p, size_t i)
{
    size_t distinct = 0;
    for (size_t k = 0; k < p->n; k++) {
        bool seen = false;
        for (size_t j = 0; j < k && !seen; j++)
            seen = strcmp(p->series[j].name, p->series[k].name) == 0;
        if (seen) continue;
        if (distinct == i) return p->series[k].name;
        distinct++;
    }
    return NULL;
}

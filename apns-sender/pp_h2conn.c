#include "pp_h2conn.h"

#include "pp_apns_dns.h"
#include "pp_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct s_stream_t {
    struct s_stream_t *prev, *next;
    void *req; /* NULL once reset after its deadline (the owner has it back) */
    const uint8_t *body;
    size_t body_len, body_off;
    int32_t id;
    int status;
    uint64_t submitted_ms, deadline_ms;
    size_t resp_len;
    char *resp; /* error body, allocated when one arrives (200s have none) */
} s_stream_t;

/*  A list of streams, oldest first: every request gets the same timeout, so the head has
    the earliest deadline. */
typedef struct {
    s_stream_t *head, *tail;
    size_t n;
} s_list_t;

struct pp_h2conn_t {
    pp_h2conn_state_t state;
    int fd;
    SSL *ssl;
    nghttp2_session *h2;
    const pp_h2conn_callbacks_t *cb;
    void *owner;
    char host[256];
    char label[160];
    pp_apns_dns_t *dns; /* while RESOLVING */
    SSL_CTX *ssl_ctx;
    int port;
    unsigned addr_index;
    uint32_t ping_interval_ms, timeout_ms, request_timeout_ms, max_timeouts;
    uint64_t started_ms, last_activity_ms, ping_sent_ms, goaway_ms;
    bool settings_received, had_response, tls_want_write;
    s_list_t streams;   /* open requests, waiting for an answer */
    s_list_t cancelled; /* reset after their deadline, until nghttp2 closes them */
    uint32_t timeout_streak;
    uint8_t *wbuf; /* bytes from nghttp2 that SSL_write has not taken yet */
    size_t wlen, woff, wcap;
    char close_reason[48];
};

static pp_ratelimit_t s_rl_io = PP_RATELIMIT_INIT(10000, 20);

static void s_log_io(const char *event, const pp_h2conn_t *c, const char *detail)
{
    uint32_t suppressed = 0;
    if (pp_ratelimit_allow(&s_rl_io, &suppressed))
        pp_warn(event, "conn=%s detail=\"%s\" suppressed=%u", c->label, detail, suppressed);
}

/* ---- streams ---------------------------------------------------------------------- */

static void s_list_append(s_list_t *l, s_stream_t *s)
{
    s->next = NULL;
    s->prev = l->tail;
    if (l->tail)
        l->tail->next = s;
    else
        l->head = s;
    l->tail = s;
    l->n++;
}

static void s_list_unlink(s_list_t *l, s_stream_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        l->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        l->tail = s->prev;
    s->prev = s->next = NULL;
    l->n--;
}

/*  Streams open on the wire, answered or not: what counts against the server's limit. */
static size_t s_open_streams(const pp_h2conn_t *c)
{
    return c->streams.n + c->cancelled.n;
}

/* ---- nghttp2 callbacks ------------------------------------------------------------ */

static int s_on_header(nghttp2_session *h2, const nghttp2_frame *frame, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *user)
{
    (void)flags, (void)user;
    if (frame->hd.type != NGHTTP2_HEADERS || namelen != 7 || memcmp(name, ":status", 7) != 0)
        return 0;
    s_stream_t *s = nghttp2_session_get_stream_user_data(h2, frame->hd.stream_id);
    if (!s || valuelen != 3) return 0;
    int st = 0;
    for (size_t i = 0; i < 3; i++) {
        if (value[i] < '0' || value[i] > '9') return 0;
        st = st * 10 + (value[i] - '0');
    }
    s->status = st;
    return 0;
}

static int s_on_data_chunk(nghttp2_session *h2, uint8_t flags, int32_t stream_id,
                           const uint8_t *data, size_t len, void *user)
{
    (void)flags, (void)user;
    s_stream_t *s = nghttp2_session_get_stream_user_data(h2, stream_id);
    if (!s) return 0;
    /* Error bodies are small JSON; keep at most PP_H2_MAX_BODY - 1 bytes of them. */
    if (!s->resp && !(s->resp = malloc(PP_H2_MAX_BODY))) return 0;
    size_t room = PP_H2_MAX_BODY - 1 - s->resp_len;
    size_t n = len < room ? len : room;
    memcpy(s->resp + s->resp_len, data, n);
    s->resp_len += n;
    s->resp[s->resp_len] = '\0';
    return 0;
}

static int s_on_stream_close(nghttp2_session *h2, int32_t stream_id, uint32_t error_code,
                             void *user)
{
    pp_h2conn_t *c = user;
    s_stream_t *s = nghttp2_session_get_stream_user_data(h2, stream_id);
    if (!s) return 0;
    nghttp2_session_set_stream_user_data(h2, stream_id, NULL);
    if (!s->req) { /* reset after its deadline: the owner already has the request back */
        s_list_unlink(&c->cancelled, s);
        free(s->resp);
        free(s);
        return 0;
    }
    s_list_unlink(&c->streams, s);
    if (s->status > 0) {
        c->had_response = true;
        c->timeout_streak = 0;
        c->cb->on_response(c->owner, c, s->req, s->status, s->resp ? s->resp : "", s->resp_len);
    } else {
        c->cb->on_unsent(c->owner, c, s->req, error_code);
    }
    free(s->resp);
    free(s);
    return 0;
}

static void s_goaway_reason(const nghttp2_goaway *ga, char *out, size_t outlen)
{
    pp_log_quote(ga->opaque_data, ga->opaque_data_len, 120, out, outlen);
}

static int s_on_frame_recv(nghttp2_session *h2, const nghttp2_frame *frame, void *user)
{
    (void)h2;
    pp_h2conn_t *c = user;
    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) break;
        c->settings_received = true;
        for (size_t i = 0; i < frame->settings.niv; i++)
            if (frame->settings.iv[i].settings_id == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS)
                pp_info("max_streams", "conn=%s value=%u open=%zu", c->label,
                        frame->settings.iv[i].value, c->streams.n);
        break;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) c->ping_sent_ms = 0;
        break;
    case NGHTTP2_GOAWAY: {
        char reason[160];
        s_goaway_reason(&frame->goaway, reason, sizeof reason);
        pp_info("goaway", "conn=%s last_stream_id=%d error_code=%u reason=%s open=%zu", c->label,
                frame->goaway.last_stream_id, frame->goaway.error_code, reason, c->streams.n);
        if (c->state == PP_H2_READY) {
            c->state = PP_H2_GOING_AWAY;
            c->goaway_ms = pp_mono_ms();
        }
        if (c->cb->on_goaway) c->cb->on_goaway(c->owner, c, frame->goaway.error_code, reason);
        break;
    }
    default:
        break;
    }
    return 0;
}

static ssize_t s_read_body(nghttp2_session *h2, int32_t stream_id, uint8_t *buf, size_t length,
                           uint32_t *data_flags, nghttp2_data_source *source, void *user)
{
    (void)h2, (void)stream_id, (void)user;
    s_stream_t *s = source->ptr;
    if (!s->req) { /* reset after its deadline: its body may be gone, send no more of it */
        *data_flags |= NGHTTP2_DATA_FLAG_EOF;
        return 0;
    }
    size_t n = s->body_len - s->body_off;
    if (n > length) n = length;
    memcpy(buf, s->body + s->body_off, n);
    s->body_off += n;
    if (s->body_off == s->body_len) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* ---- closing ---------------------------------------------------------------------- */

void pp_h2conn_close(pp_h2conn_t *c, const char *reason)
{
    if (c->state == PP_H2_CLOSED) return;
    c->state = PP_H2_CLOSED;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", reason);
    /* nghttp2_session_del frees streams without callbacks, so end our requests first. */
    while (c->streams.head) {
        s_stream_t *s = c->streams.head;
        s_list_unlink(&c->streams, s);
        c->cb->on_unsent(c->owner, c, s->req, NGHTTP2_CANCEL);
        free(s->resp);
        free(s);
    }
    while (c->cancelled.head) {
        s_stream_t *s = c->cancelled.head;
        s_list_unlink(&c->cancelled, s);
        free(s->resp);
        free(s);
    }
    pp_apns_dns_destroy(&c->dns); /* a lookup still running finishes on its own */
    if (c->h2) {
        nghttp2_session_del(c->h2);
        c->h2 = NULL;
    }
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    pp_info("conn_closed", "conn=%s reason=%s", c->label, reason);
}

/* ---- connecting ------------------------------------------------------------------- */

/*  Connects a non-blocking socket to the addr_index-th address of res (rotating through
    them on failures). Returns 0 with c->fd set, or -1 (logged). */
static int s_socket_connect(pp_h2conn_t *c, struct addrinfo *res)
{
    unsigned n = 0;
    for (struct addrinfo *a = res; a; a = a->ai_next)
        n++;
    struct addrinfo *a = res;
    for (unsigned i = 0; i < c->addr_index % n; i++)
        a = a->ai_next;
    int fd = socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) {
        s_log_io("socket_failed", c, strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int rc = connect(fd, a->ai_addr, a->ai_addrlen);
    if (rc != 0 && errno != EINPROGRESS) {
        s_log_io("connect_failed", c, strerror(errno));
        close(fd);
        return -1;
    }
    c->fd = fd;
    return 0;
}

/*  The lookup is done: connect and set TLS up (CONNECTING), or close. The connect and
    handshake get their own timeout_ms from now. */
static void s_resolved(pp_h2conn_t *c)
{
    struct addrinfo *res = NULL;
    int rc = 0;
    if (!pp_apns_dns_result(c->dns, &res, &rc)) return; /* still running */
    pp_apns_dns_destroy(&c->dns);
    if (!res) {
        pp_apns_dns_count("failed");
        s_log_io("resolve_failed", c, rc ? gai_strerror(rc) : "no address");
        pp_h2conn_close(c, "resolve");
        return;
    }
    pp_apns_dns_count("ok");
    rc = s_socket_connect(c, res);
    freeaddrinfo(res);
    if (rc != 0) {
        pp_h2conn_close(c, "connect");
        return;
    }
    c->state = PP_H2_CONNECTING;
    c->started_ms = c->last_activity_ms = pp_mono_ms();
    c->ssl = SSL_new(c->ssl_ctx);
    if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
        pp_h2conn_close(c, "ssl_new");
        return;
    }
    SSL_set_mode(c->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    /* Verify the name the server proves: an IP literal against the certificate's IP
       addresses, a DNS name against its DNS names (and send it as SNI). */
    X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
    unsigned char ipbuf[16];
    if (inet_pton(AF_INET, c->host, ipbuf) == 1 || inet_pton(AF_INET6, c->host, ipbuf) == 1) {
        X509_VERIFY_PARAM_set1_ip_asc(vp, c->host);
    } else {
        SSL_set_tlsext_host_name(c->ssl, c->host);
        SSL_set1_host(c->ssl, c->host);
    }
    SSL_set_connect_state(c->ssl);
    pp_debug("conn_connecting", "conn=%s", c->label);
}

pp_h2conn_t *pp_h2conn_new(const pp_h2conn_config_t *cfg, const pp_h2conn_callbacks_t *cb,
                           void *owner)
{
    pp_h2conn_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->fd = -1;
    c->cb = cb;
    c->owner = owner;
    snprintf(c->host, sizeof c->host, "%s", cfg->host);
    snprintf(c->label, sizeof c->label, "%s", cfg->label ? cfg->label : cfg->host);
    c->ssl_ctx = cfg->ssl_ctx;
    c->port = cfg->port;
    c->addr_index = cfg->addr_index;
    c->ping_interval_ms = cfg->ping_interval_ms;
    c->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : 10000;
    c->request_timeout_ms = cfg->request_timeout_ms;
    c->max_timeouts = cfg->max_timeouts;
    c->started_ms = c->last_activity_ms = pp_mono_ms();
    c->state = PP_H2_RESOLVING;
    char err[128];
    c->dns = pp_apns_dns_start(c->host, c->port, err, sizeof err);
    if (!c->dns) {
        pp_apns_dns_count(pp_apns_dns_running() >= PP_APNS_DNS_MAX_RUNNING ? "busy" : "failed");
        s_log_io("resolve_failed", c, err);
        free(c);
        return NULL;
    }
    /* An IP literal is answered at once: connect now, and fail now as before. */
    s_resolved(c);
    if (c->state == PP_H2_CLOSED) {
        pp_h2conn_destroy(&c);
        return NULL;
    }
    if (c->state == PP_H2_RESOLVING) pp_debug("conn_resolving", "conn=%s", c->label);
    return c;
}

static int s_session_new(pp_h2conn_t *c)
{
    nghttp2_session_callbacks *cbs;
    if (nghttp2_session_callbacks_new(&cbs) != 0) return -1;
    nghttp2_session_callbacks_set_on_header_callback(cbs, s_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, s_on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, s_on_stream_close);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, s_on_frame_recv);
    int rc = nghttp2_session_client_new(&c->h2, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rc != 0) return -1;
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20}};
    if (nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, iv, 2) != 0) return -1;
    /* Responses of all streams share the connection window: widen it so that a burst of
       answers is never held up waiting for our WINDOW_UPDATE. */
    nghttp2_session_set_local_window_size(c->h2, NGHTTP2_FLAG_NONE, 0, 1 << 24);
    return 0;
}

static void s_handshake(pp_h2conn_t *c)
{
    ERR_clear_error();
    int rc = SSL_do_handshake(c->ssl);
    if (rc != 1) {
        int err = SSL_get_error(c->ssl, rc);
        if (err == SSL_ERROR_WANT_READ) {
            c->tls_want_write = false;
            return;
        }
        if (err == SSL_ERROR_WANT_WRITE) {
            c->tls_want_write = true;
            return;
        }
        char detail[200];
        long vr = SSL_get_verify_result(c->ssl);
        snprintf(detail, sizeof detail, "%s verify=%s",
                 ERR_reason_error_string(ERR_peek_last_error()) ?: "closed",
                 X509_verify_cert_error_string(vr));
        s_log_io("tls_handshake_failed", c, detail);
        pp_h2conn_close(c, "tls_handshake");
        return;
    }
    c->tls_want_write = false;
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alpn_len);
    if (alpn_len != 2 || memcmp(alpn, "h2", 2) != 0) {
        s_log_io("alpn_not_h2", c, "server did not select h2");
        pp_h2conn_close(c, "alpn");
        return;
    }
    if (s_session_new(c) != 0) {
        pp_h2conn_close(c, "nghttp2_init");
        return;
    }
    c->state = PP_H2_READY;
    c->last_activity_ms = pp_mono_ms();
    pp_info("conn_ready", "conn=%s tls=%s", c->label, SSL_get_version(c->ssl));
    if (c->cb->on_ready) c->cb->on_ready(c->owner, c);
    pp_h2conn_flush(c);
}

static void s_connected(pp_h2conn_t *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0) {
        s_log_io("connect_failed", c, strerror(err ? err : errno));
        pp_h2conn_close(c, "connect");
        return;
    }
    c->state = PP_H2_HANDSHAKE;
    s_handshake(c);
}

/* ---- reading and writing ---------------------------------------------------------- */

static void s_read(pp_h2conn_t *c)
{
    uint8_t buf[32768];
    for (;;) {
        ERR_clear_error();
        int n = SSL_read(c->ssl, buf, sizeof buf);
        if (n <= 0) {
            int err = SSL_get_error(c->ssl, n);
            if (err == SSL_ERROR_WANT_READ) return;
            if (err == SSL_ERROR_WANT_WRITE) {
                c->tls_want_write = true;
                return;
            }
            pp_h2conn_close(c, err == SSL_ERROR_ZERO_RETURN ? "eof" : "read_error");
            return;
        }
        c->last_activity_ms = pp_mono_ms();
        ssize_t rc = nghttp2_session_mem_recv(c->h2, buf, (size_t)n);
        if (rc < 0) {
            s_log_io("h2_protocol_error", c, nghttp2_strerror((int)rc));
            pp_h2conn_close(c, "h2_error");
            return;
        }
        if (c->state == PP_H2_CLOSED) return;
    }
}

/*  A write failed: before the connection is given up, takes in what the server had
    already sent. A server that answers, sends GOAWAY and closes while our later requests
    are still unread makes its kernel reset the connection, and a write can see that reset
    before we have read the answers and the GOAWAY that sit in our receive queue (the
    kernel keeps them readable). Without this, every answered stream of the connection
    counts as unanswered and is sent again: a duplicate push for each. */
static void s_read_before_close(pp_h2conn_t *c)
{
    s_log_io("write_error", c, "reading what the server sent before it closed");
    /* Never reached from inside s_read: flushing is not done from nghttp2's callbacks. */
    s_read(c);
}

static int s_wbuf_append(pp_h2conn_t *c, const uint8_t *data, size_t len)
{
    if (c->wlen + len > c->wcap) {
        size_t cap = c->wcap ? c->wcap : 65536;
        while (cap < c->wlen + len)
            cap *= 2;
        uint8_t *b = realloc(c->wbuf, cap);
        if (!b) return -1;
        c->wbuf = b;
        c->wcap = cap;
    }
    memcpy(c->wbuf + c->wlen, data, len);
    c->wlen += len;
    return 0;
}

void pp_h2conn_flush(pp_h2conn_t *c)
{
    if (c->state != PP_H2_READY && c->state != PP_H2_GOING_AWAY) return;
    for (;;) {
        if (c->woff == c->wlen) {
            c->woff = c->wlen = 0;
            /* Gather up to 64 KiB of frames so that each SSL_write makes full records. */
            while (c->wlen < 65536) {
                const uint8_t *data;
                ssize_t n = nghttp2_session_mem_send(c->h2, &data);
                if (n < 0) {
                    s_log_io("h2_send_error", c, nghttp2_strerror((int)n));
                    pp_h2conn_close(c, "h2_error");
                    return;
                }
                if (n == 0) break;
                if (s_wbuf_append(c, data, (size_t)n) != 0) {
                    pp_h2conn_close(c, "out_of_memory");
                    return;
                }
            }
            if (c->wlen == 0) break;
        }
        ERR_clear_error();
        int n = SSL_write(c->ssl, c->wbuf + c->woff, (int)(c->wlen - c->woff));
        if (n <= 0) {
            int err = SSL_get_error(c->ssl, n);
            if (err == SSL_ERROR_WANT_WRITE || err == SSL_ERROR_WANT_READ) {
                c->tls_want_write = (err == SSL_ERROR_WANT_WRITE);
                return;
            }
            s_read_before_close(c);
            if (c->state != PP_H2_CLOSED) pp_h2conn_close(c, "write_error");
            return;
        }
        c->tls_want_write = false;
        c->woff += (size_t)n;
    }
    if (!nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2))
        pp_h2conn_close(c, c->state == PP_H2_GOING_AWAY ? "goaway" : "h2_done");
    else if (c->state == PP_H2_GOING_AWAY && s_open_streams(c) == 0)
        pp_h2conn_close(c, "goaway");
}

void pp_h2conn_on_io(pp_h2conn_t *c, short revents, uint64_t now_ms)
{
    (void)now_ms;
    switch (c->state) {
    case PP_H2_RESOLVING:
        if (revents & (POLLIN | POLLERR)) s_resolved(c);
        return;
    case PP_H2_CONNECTING:
        if (revents & (POLLOUT | POLLERR | POLLHUP)) s_connected(c);
        return;
    case PP_H2_HANDSHAKE:
        if (revents & (POLLIN | POLLOUT | POLLERR | POLLHUP)) s_handshake(c);
        return;
    case PP_H2_READY:
    case PP_H2_GOING_AWAY:
        if (revents & (POLLIN | POLLERR | POLLHUP)) s_read(c);
        if (c->state != PP_H2_CLOSED) pp_h2conn_flush(c);
        return;
    case PP_H2_CLOSED:
        return;
    }
}

/* ---- timers ----------------------------------------------------------------------- */

/*  Resets every request past its deadline (RST_STREAM CANCEL: the server may drop it and
    free the slot) and hands it back to the owner; then, after max_timeouts in a row with no
    answer in between, gives up on the connection. All expired requests are handed back
    before the connection closes, so that they end as timeouts (an attempt) and not as
    unsent. Returns false if the connection closed. */
static bool s_expire_requests(pp_h2conn_t *c, uint64_t now_ms)
{
    bool any = false;
    while (c->streams.head && c->streams.head->deadline_ms <= now_ms) {
        s_stream_t *s = c->streams.head;
        s_list_unlink(&c->streams, s);
        void *req = s->req;
        s->req = NULL;
        s->body = NULL;
        s_list_append(&c->cancelled, s);
        /* Kept (in cancelled) until nghttp2 closes the stream: its data source points at
           it. Should the reset fail (out of memory), it is freed with the connection. */
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, s->id, NGHTTP2_CANCEL);
        c->timeout_streak++;
        any = true;
        /* The owner logs the timeout with the notification's ids; this is the stream's. */
        pp_debug("stream_reset", "conn=%s stream=%d waited_ms=%llu streak=%u open=%zu", c->label,
                 s->id, (unsigned long long)(now_ms - s->submitted_ms), c->timeout_streak,
                 c->streams.n);
        c->cb->on_timeout(c->owner, c, req, now_ms - s->submitted_ms);
    }
    if (!any) return true;
    if (c->max_timeouts && c->timeout_streak >= c->max_timeouts) {
        pp_warn("conn_timeouts", "conn=%s streak=%u open=%zu effect=\"connection replaced\"",
                c->label, c->timeout_streak, c->streams.n);
        pp_h2conn_close(c, "timeouts");
        return false;
    }
    pp_h2conn_flush(c);
    return c->state != PP_H2_CLOSED;
}

void pp_h2conn_tick(pp_h2conn_t *c, uint64_t now_ms)
{
    switch (c->state) {
    case PP_H2_RESOLVING:
        s_resolved(c); /* in case the wakeup was missed */
        if (c->state == PP_H2_RESOLVING && now_ms - c->started_ms >= c->timeout_ms) {
            /* The thread goes on inside getaddrinfo (it cannot be interrupted) and frees
               its lookup when it returns; the loop has not waited for it. */
            pp_apns_dns_count("timeout");
            pp_warn("resolve_timeout", "conn=%s host=%s waited_ms=%llu running=%d", c->label,
                    c->host, (unsigned long long)(now_ms - c->started_ms), pp_apns_dns_running());
            pp_h2conn_close(c, "resolve_timeout");
        }
        return;
    case PP_H2_CONNECTING:
    case PP_H2_HANDSHAKE:
        if (now_ms - c->started_ms >= c->timeout_ms) {
            s_log_io("connect_timeout", c, "no TLS session in time");
            pp_h2conn_close(c, "connect_timeout");
        }
        return;
    case PP_H2_READY:
    case PP_H2_GOING_AWAY:
        if (!s_expire_requests(c, now_ms)) return;
        if (c->ping_sent_ms && now_ms - c->ping_sent_ms >= c->timeout_ms) {
            s_log_io("ping_timeout", c, "no PING answer");
            pp_h2conn_close(c, "ping_timeout");
            return;
        }
        /* A server that sent GOAWAY but keeps streams open for long: give up on them (they
           are sent again elsewhere) rather than hold them forever. */
        if (c->state == PP_H2_GOING_AWAY && now_ms - c->goaway_ms >= 6 * (uint64_t)c->timeout_ms) {
            pp_h2conn_close(c, "goaway_timeout");
            return;
        }
        if (c->ping_interval_ms && !c->ping_sent_ms &&
            now_ms - c->last_activity_ms >= c->ping_interval_ms) {
            if (nghttp2_submit_ping(c->h2, NGHTTP2_FLAG_NONE, NULL) == 0) {
                c->ping_sent_ms = now_ms ? now_ms : 1;
                pp_debug("ping_sent", "conn=%s", c->label);
                pp_h2conn_flush(c);
            }
        }
        return;
    case PP_H2_CLOSED:
        return;
    }
}

uint64_t pp_h2conn_next_timer(const pp_h2conn_t *c)
{
    switch (c->state) {
    case PP_H2_RESOLVING:
    case PP_H2_CONNECTING:
    case PP_H2_HANDSHAKE:
        return c->started_ms + c->timeout_ms;
    case PP_H2_READY:
    case PP_H2_GOING_AWAY: {
        uint64_t t = UINT64_MAX;
        if (c->ping_sent_ms)
            t = c->ping_sent_ms + c->timeout_ms;
        else if (c->ping_interval_ms)
            t = c->last_activity_ms + c->ping_interval_ms;
        if (c->state == PP_H2_GOING_AWAY && c->goaway_ms + 6 * (uint64_t)c->timeout_ms < t)
            t = c->goaway_ms + 6 * (uint64_t)c->timeout_ms;
        if (c->streams.head && c->streams.head->deadline_ms < t) t = c->streams.head->deadline_ms;
        return t;
    }
    case PP_H2_CLOSED:
        break;
    }
    return UINT64_MAX;
}

/* ---- accessors and requests ------------------------------------------------------- */

pp_h2conn_state_t pp_h2conn_state(const pp_h2conn_t *c)
{
    return c->state;
}

int pp_h2conn_fd(const pp_h2conn_t *c)
{
    if (c->state == PP_H2_RESOLVING && c->dns) return pp_apns_dns_fd(c->dns);
    return c->fd;
}

short pp_h2conn_events(const pp_h2conn_t *c)
{
    switch (c->state) {
    case PP_H2_RESOLVING:
        return POLLIN;
    case PP_H2_CONNECTING:
        return POLLOUT;
    case PP_H2_HANDSHAKE:
        return c->tls_want_write ? POLLOUT : POLLIN;
    case PP_H2_READY:
    case PP_H2_GOING_AWAY: {
        short ev = POLLIN;
        if (c->tls_want_write || c->woff < c->wlen) ev |= POLLOUT;
        return ev;
    }
    case PP_H2_CLOSED:
        break;
    }
    return 0;
}

uint32_t pp_h2conn_max_streams(const pp_h2conn_t *c)
{
    if (!c->h2 || !c->settings_received) return 0;
    return nghttp2_session_get_remote_settings(c->h2, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
}

size_t pp_h2conn_capacity(const pp_h2conn_t *c)
{
    if (c->state != PP_H2_READY || !c->settings_received ||
        !nghttp2_session_check_request_allowed(c->h2))
        return 0;
    size_t max = pp_h2conn_max_streams(c);
    if (max > 100000)
        max = 100000; /* "unlimited" servers: still keep a sane bound per connection */
    size_t open = s_open_streams(c);
    return open < max ? max - open : 0;
}

size_t pp_h2conn_in_flight(const pp_h2conn_t *c)
{
    return c->streams.n;
}

bool pp_h2conn_settings_received(const pp_h2conn_t *c)
{
    return c->settings_received;
}

uint32_t pp_h2conn_timeout_streak(const pp_h2conn_t *c)
{
    return c->timeout_streak;
}

bool pp_h2conn_had_response(const pp_h2conn_t *c)
{
    return c->had_response;
}

const char *pp_h2conn_close_reason(const pp_h2conn_t *c)
{
    return c->close_reason;
}

int pp_h2conn_submit(pp_h2conn_t *c, const nghttp2_nv *nva, size_t nvlen, const void *body,
                     size_t body_len, void *req)
{
    if (c->state != PP_H2_READY) return -1;
    s_stream_t *s = malloc(sizeof *s);
    if (!s) return -1;
    memset(s, 0, sizeof *s);
    s->req = req;
    s->body = body;
    s->body_len = body_len;
    nghttp2_data_provider dp;
    dp.source.ptr = s;
    dp.read_callback = s_read_body;
    int32_t id = nghttp2_submit_request(c->h2, NULL, nva, nvlen, &dp, s);
    if (id < 0) {
        free(s);
        return -1;
    }
    s->id = id;
    s->submitted_ms = pp_mono_ms();
    s->deadline_ms = c->request_timeout_ms ? s->submitted_ms + c->request_timeout_ms : UINT64_MAX;
    s_list_append(&c->streams, s);
    return 0;
}

void pp_h2conn_destroy(pp_h2conn_t **p)
{
    if (!p || !*p) return;
    pp_h2conn_t *c = *p;
    pp_h2conn_close(c, "destroyed");
    free(c->wbuf);
    free(c);
    *p = NULL;
}

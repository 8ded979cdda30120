#include "ats_server.h"
#include "pp_log.h"
#include "pp_proc.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF (256 * 1024)
#define OUT_CHUNK (128 * 1024)
#define MAX_CONNS 4096
#define MAX_EVENTS 256
#define GOAWAY_GRACE_MS 10000 /* after GOAWAY, a connection is closed at the latest then */
#define BODY_KEEP (ATS_PAYLOAD_MAX_VOIP + 1)

enum { TAG_LISTEN = 1, TAG_WAKE, TAG_CONN };

typedef struct s_conn s_conn_t;

typedef struct s_stream {
    int32_t id;
    s_conn_t *conn;
    struct s_stream *prev, *next;   /* the connection's streams */
    struct s_stream *dprev, *dnext; /* the delay queue, or the held list */
    bool delayed, held, done, answered;
    uint64_t due_ms;
    uint64_t received_us;
    ats_request_t req;
    char resp[192];
    size_t resp_len, resp_off;
} s_stream_t;

struct s_conn {
    int tag; /* TAG_CONN, first: epoll data points here */
    ats_server_t *srv;
    int fd;
    SSL *ssl;
    nghttp2_session *h2;
    uint64_t id;
    bool handshaken, want_out, dirty, ramp_pending, goaway;
    bool zero_stuck; /* zero_streams: SETTINGS_MAX_CONCURRENT_STREAMS 0 for good */
    int32_t goaway_last;
    uint64_t goaway_ms;
    ats_conn_auth_t auth;
    uint8_t *out;
    size_t out_len, out_off, out_cap;
    s_stream_t *streams;
    s_conn_t *prev, *next;
};

struct ats_server_t {
    const ats_server_config_t *cfg;
    ats_state_t *state;
    SSL_CTX *ctx;
    int listen_fd, ep, port;
    int listen_tag, wake_tag;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    s_conn_t *conns;
    size_t n_conns;
    uint64_t next_conn_id;
    s_stream_t *dhead, *dtail; /* delayed requests, by due time */
    s_stream_t *hhead;         /* requests held unanswered by never_answer */
    uint8_t *rbuf;
    pp_ratelimit_t rl;
};

static void s_log_ssl(const char *event, s_conn_t *c)
{
    uint32_t suppressed;
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "none";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    ERR_clear_error();
    if (pp_ratelimit_allow(&c->srv->rl, &suppressed)) {
        char q[300];
        pp_warn(event, "conn=%llu error=%s suppressed=%u", (unsigned long long)c->id,
                pp_log_quote(buf, strlen(buf), 200, q, sizeof q), suppressed);
    }
}

/* ---- streams and the delay queue --------------------------------------------------- */

static void s_held_unlink(ats_server_t *srv, s_stream_t *st)
{
    if (st->dprev)
        st->dprev->dnext = st->dnext;
    else
        srv->hhead = st->dnext;
    if (st->dnext) st->dnext->dprev = st->dprev;
    st->dprev = st->dnext = NULL;
    st->held = false;
}

/*  never_answer: the request stays open, unanswered and unrecorded, until the client
    resets it or its connection closes. */
static void s_hold(ats_server_t *srv, s_stream_t *st)
{
    st->dprev = NULL;
    st->dnext = srv->hhead;
    if (srv->hhead) srv->hhead->dprev = st;
    srv->hhead = st;
    st->held = true;
    ats_state_held(srv->state);
}

static void s_delay_unlink(ats_server_t *srv, s_stream_t *st)
{
    if (st->held) {
        s_held_unlink(srv, st);
        return;
    }
    if (!st->delayed) return;
    if (st->dprev)
        st->dprev->dnext = st->dnext;
    else
        srv->dhead = st->dnext;
    if (st->dnext)
        st->dnext->dprev = st->dprev;
    else
        srv->dtail = st->dprev;
    st->dprev = st->dnext = NULL;
    st->delayed = false;
}

/*  Keeps the queue sorted by due time; the delay rarely changes, so the new entry almost
    always goes last. */
static void s_delay_insert(ats_server_t *srv, s_stream_t *st)
{
    s_stream_t *after = srv->dtail;
    while (after && after->due_ms > st->due_ms)
        after = after->dprev;
    st->dprev = after;
    st->dnext = after ? after->dnext : srv->dhead;
    if (st->dnext)
        st->dnext->dprev = st;
    else
        srv->dtail = st;
    if (after)
        after->dnext = st;
    else
        srv->dhead = st;
    st->delayed = true;
}

static void s_stream_free(s_stream_t *st)
{
    s_conn_t *c = st->conn;
    s_delay_unlink(c->srv, st);
    if (st->prev)
        st->prev->next = st->next;
    else
        c->streams = st->next;
    if (st->next) st->next->prev = st->prev;
    for (int i = 0; i < ATS_H_COUNT; i++)
        free(st->req.hdr[i]);
    free(st->req.body);
    free(st);
}

/* ---- connections ------------------------------------------------------------------- */

static void s_want_out(s_conn_t *c, bool on)
{
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(c->srv->ep, EPOLL_CTL_MOD, c->fd, &ev);
    c->want_out = on;
}

static void s_conn_close(s_conn_t *c, bool graceful)
{
    ats_server_t *srv = c->srv;
    pp_debug("conn_closed", "conn=%llu graceful=%d", (unsigned long long)c->id, graceful);
    if (c->h2) nghttp2_session_del(c->h2); /* frees nghttp2's streams without callbacks */
    while (c->streams)
        s_stream_free(c->streams);
    if (graceful && c->handshaken)
        SSL_shutdown(c->ssl); /* one close_notify attempt; the socket closes regardless */
    SSL_free(c->ssl);
    ERR_clear_error();
    epoll_ctl(srv->ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    ats_conn_auth_clear(&c->auth);
    free(c->out);
    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    srv->n_conns--;
    ats_state_conn_closed(srv->state);
    free(c);
}

static int s_flush(s_conn_t *c)
{
    if (!c->h2) return 0;
    for (;;) {
        if (c->out_off == c->out_len) {
            c->out_off = c->out_len = 0;
            while (c->out_len < OUT_CHUNK) {
                const uint8_t *data;
                ssize_t n = nghttp2_session_mem_send(c->h2, &data);
                if (n < 0) return -1;
                if (n == 0) break;
                if (c->out_len + (size_t)n > c->out_cap) {
                    size_t cap = c->out_cap * 2 > c->out_len + (size_t)n ? c->out_cap * 2
                                                                         : c->out_len + (size_t)n;
                    uint8_t *grown = realloc(c->out, cap);
                    if (!grown) abort();
                    c->out = grown;
                    c->out_cap = cap;
                }
                memcpy(c->out + c->out_len, data, (size_t)n);
                c->out_len += (size_t)n;
            }
            if (c->out_len == 0) break;
        }
        ERR_clear_error();
        int w = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
        if (w > 0) {
            c->out_off += (size_t)w;
            continue;
        }
        int e = SSL_get_error(c->ssl, w);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            s_want_out(c, true);
            return 0;
        }
        return -1;
    }
    s_want_out(c, false);
    return 0;
}

/*  A connection is done when nghttp2 wants nothing more (GOAWAY exchanged and no stream
    left) and every byte went out. */
static bool s_conn_finished(s_conn_t *c)
{
    return c->h2 && !nghttp2_session_want_read(c->h2) && !nghttp2_session_want_write(c->h2) &&
           c->out_off == c->out_len;
}

static void s_submit_max_streams(s_conn_t *c, uint32_t n)
{
    nghttp2_settings_entry iv = {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, n};
    nghttp2_submit_settings(c->h2, NGHTTP2_FLAG_NONE, &iv, 1);
    c->dirty = true;
}

static void s_goaway(s_conn_t *c, int32_t last, uint32_t code, const char *reason)
{
    if (c->goaway || !c->h2) return;
    char opaque[96];
    int n = snprintf(opaque, sizeof opaque, "{\"reason\":\"%s\"}", reason);
    nghttp2_submit_goaway(c->h2, NGHTTP2_FLAG_NONE, last, code, (const uint8_t *)opaque, (size_t)n);
    c->goaway = true;
    c->goaway_last = last;
    c->goaway_ms = pp_mono_ms();
    c->dirty = true;
    ats_state_goaway_sent(c->srv->state);
    pp_info("goaway_sent", "conn=%llu last_stream_id=%d error_code=%u reason=%s",
            (unsigned long long)c->id, last, code, reason);
}

/* ---- requests ---------------------------------------------------------------------- */

static ssize_t s_read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                           uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
    (void)session, (void)stream_id, (void)user_data;
    s_stream_t *st = source->ptr;
    size_t n = st->resp_len - st->resp_off;
    if (n > length) n = length;
    memcpy(buf, st->resp + st->resp_off, n);
    st->resp_off += n;
    if (st->resp_off == st->resp_len) *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static ats_record_t *s_record(s_conn_t *c, s_stream_t *st, const ats_verdict_t *v,
                              const char *apns_id)
{
    const ats_request_t *q = &st->req;
    ats_record_t *r =
        ats_record_new(v->token, v->token_len, v->topic, v->topic_len, q->hdr[ATS_H_PUSH_TYPE],
                       q->hdr[ATS_H_COLLAPSE_ID], apns_id, q->body, q->body_len,
                       c->auth.cert_ok ? c->auth.cert_cn : NULL);
    r->auth = v->auth;
    r->priority = v->priority;
    r->has_expiration = v->has_expiration;
    r->expiration = v->expiration;
    r->jwt_iat = v->jwt_iat;
    r->received_us = st->received_us;
    r->connection = c->id;
    return r;
}

static void s_respond(s_conn_t *c, s_stream_t *st, const ats_decision_t *d, const char *apns_id)
{
    char status[4];
    snprintf(status, sizeof status, "%d", d->out_status);
    st->answered = true;
    nghttp2_nv nva[3] = {
        {(uint8_t *)":status", (uint8_t *)status, 7, strlen(status), NGHTTP2_NV_FLAG_NO_COPY_NAME},
        {(uint8_t *)"apns-id", (uint8_t *)apns_id, 7, strlen(apns_id),
         NGHTTP2_NV_FLAG_NO_COPY_NAME},
        {(uint8_t *)"content-type", (uint8_t *)"application/json", 12, 16,
         NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE},
    };
    if (d->out_status == 200) {
        nghttp2_submit_response(c->h2, st->id, nva, 2, NULL);
        return;
    }
    int n;
    if (d->out_timestamp >= 0)
        n = snprintf(st->resp, sizeof st->resp, "{\"reason\":\"%s\",\"timestamp\":%lld}",
                     d->out_reason, (long long)d->out_timestamp);
    else
        n = snprintf(st->resp, sizeof st->resp, "{\"reason\":\"%s\"}", d->out_reason);
    st->resp_len = (size_t)n < sizeof st->resp ? (size_t)n : sizeof st->resp - 1;
    st->resp_off = 0;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = s_read_body};
    nghttp2_submit_response(c->h2, st->id, nva, 3, &prd);
}

static void s_process(s_conn_t *c, s_stream_t *st)
{
    ats_server_t *srv = c->srv;
    c->dirty = true;
    if (c->goaway && st->id > c->goaway_last) {
        /* Above the GOAWAY's last-stream-id: not processed, the client must retry. */
        st->answered = true;
        nghttp2_submit_rst_stream(c->h2, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_REFUSED_STREAM);
        return;
    }
    ats_verdict_t v;
    ats_check_request(&srv->cfg->check, &c->auth, &st->req, (int64_t)(pp_wall_us() / 1000000), &v);
    char apns_id[37];
    if (v.apns_id_ok)
        memcpy(apns_id, st->req.hdr[ATS_H_APNS_ID], 37);
    else
        ats_uuid_generate(apns_id);
    char token[201] = "";
    ats_decision_t d;
    memset(&d, 0, sizeof d);
    d.status = v.status;
    d.reason = v.reason;
    d.token_auth = strcmp(v.auth, "token") == 0;
    d.jwt_new = v.jwt_new;
    d.jwt_iat = v.jwt_iat;
    if (v.token && v.token_len < sizeof token) {
        memcpy(token, v.token, v.token_len);
        token[v.token_len] = 0;
        d.token = token;
    }
    if (v.status == 200) d.record = s_record(c, st, &v, apns_id);
    ats_state_decide(srv->state, &d);
    free(d.record); /* NULL when the state kept it */
    if (d.out_status == 429 && strcmp(d.out_reason, "TooManyProviderTokenUpdates") == 0)
        ats_conn_auth_clear(&c->auth); /* not adopted: verify it again next time */
    if (d.out_status != 200 && pp_log_enabled(PP_LOG_DEBUG))
        pp_debug("request_rejected", "conn=%llu stream=%d status=%d reason=%s",
                 (unsigned long long)c->id, st->id, d.out_status, d.out_reason);
    s_respond(c, st, &d, apns_id);
    if (d.out_status == 200 && d.token_auth && c->ramp_pending) {
        c->ramp_pending = false;
        s_submit_max_streams(c, srv->cfg->max_concurrent_streams);
    }
    if (d.goaway) s_goaway(c, st->id, d.goaway_code, d.goaway_reason);
}

static void s_request_done(s_conn_t *c, s_stream_t *st)
{
    int delay = ats_state_delay_ms(c->srv->state);
    if (delay < 0) {
        s_hold(c->srv, st);
        return;
    }
    if (delay == 0) {
        s_process(c, st);
        return;
    }
    st->due_ms = pp_mono_ms() + (uint64_t)delay;
    s_delay_insert(c->srv, st);
}

/* ---- nghttp2 callbacks ------------------------------------------------------------- */

static int s_on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    s_conn_t *c = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    s_stream_t *st = calloc(1, sizeof *st);
    if (!st) return NGHTTP2_ERR_CALLBACK_FAILURE;
    st->id = frame->hd.stream_id;
    st->conn = c;
    st->received_us = pp_wall_us();
    st->next = c->streams;
    if (c->streams) c->streams->prev = st;
    c->streams = st;
    nghttp2_session_set_stream_user_data(session, st->id, st);
    return 0;
}

static int s_on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                       size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                       void *user_data)
{
    (void)flags, (void)user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
    s_stream_t *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    int i = ats_header_index(name, namelen);
    if (!st || i < 0) return 0;
    ats_request_t *q = &st->req;
    if (q->hdr[i]) {
        q->duplicate = true;
        return 0;
    }
    bool over = valuelen > ATS_HDR_MAX;
    size_t keep = over ? 0 : valuelen;
    q->hdr[i] = malloc(keep + 1);
    if (!q->hdr[i]) return NGHTTP2_ERR_CALLBACK_FAILURE;
    memcpy(q->hdr[i], value, keep);
    q->hdr[i][keep] = 0;
    q->len[i] = valuelen;
    q->oversize[i] = over;
    return 0;
}

static int s_on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
                           const uint8_t *data, size_t len, void *user_data)
{
    (void)flags, (void)user_data;
    s_stream_t *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (!st) return 0;
    ats_request_t *q = &st->req;
    q->body_total += len;
    if (q->body_len < BODY_KEEP) {
        size_t take = BODY_KEEP - q->body_len < len ? BODY_KEEP - q->body_len : len;
        if (!q->body) {
            q->body = malloc(BODY_KEEP);
            if (!q->body) return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        memcpy(q->body + q->body_len, data, take);
        q->body_len += take;
    }
    return 0;
}

static int s_on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    s_conn_t *c = user_data;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    s_stream_t *st = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (st && !st->done) {
        st->done = true;
        s_request_done(c, st);
    }
    return 0;
}

static int s_on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
                             void *user_data)
{
    s_conn_t *c = user_data;
    s_stream_t *st = nghttp2_session_get_stream_user_data(session, stream_id);
    if (st && st->done && !st->answered && error_code != NGHTTP2_NO_ERROR)
        ats_state_client_reset(c->srv->state, error_code);
    if (st) s_stream_free(st);
    return 0;
}

/* ---- TLS --------------------------------------------------------------------------- */

static int s_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                         const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl, (void)arg;
    static const unsigned char h2[] = {2, 'h', '2'};
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, h2, sizeof h2, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* APNs speaks HTTP/2 only */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

static SSL_CTX *s_tls_context(const ats_server_config_t *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->cert_file) != 1) {
        pp_error("tls_cert_failed", "file=%s", cfg->cert_file);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->key_file, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1) {
        pp_error("tls_key_failed", "file=%s", cfg->key_file);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, s_alpn_select, NULL);
    static const unsigned char sid_ctx[] = "pp-apns-testserver";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    if (cfg->client_ca_file) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca_file);
        if (!names || SSL_CTX_load_verify_locations(ctx, cfg->client_ca_file, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            pp_error("tls_client_ca_failed", "file=%s", cfg->client_ca_file);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        /* Asked for, not required: without one, the connection must use token auth. A
           certificate that does not verify fails the handshake. */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
fail:
    ERR_print_errors_fp(stderr);
    SSL_CTX_free(ctx);
    return NULL;
}

static void s_peer_cert(s_conn_t *c)
{
    X509 *peer = SSL_get1_peer_certificate(c->ssl);
    if (!peer) return;
    if (SSL_get_verify_result(c->ssl) == X509_V_OK) {
        X509_NAME *subj = X509_get_subject_name(peer);
        c->auth.cert_ok = true;
        if (X509_NAME_get_text_by_NID(subj, NID_commonName, c->auth.cert_cn,
                                      sizeof c->auth.cert_cn) < 0)
            c->auth.cert_cn[0] = 0;
        /* Apple's certificates carry the bundle id in UID; ours may have only a CN. */
        if (X509_NAME_get_text_by_NID(subj, NID_userId, c->auth.cert_topic,
                                      sizeof c->auth.cert_topic) < 0)
            snprintf(c->auth.cert_topic, sizeof c->auth.cert_topic, "%s", c->auth.cert_cn);
    }
    X509_free(peer);
}

/*  Returns 1 when the handshake completed and the HTTP/2 session is set up, 0 when it
    needs more I/O, -1 on failure. */
static int s_handshake(s_conn_t *c)
{
    ERR_clear_error();
    int r = SSL_do_handshake(c->ssl);
    if (r != 1) {
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            s_want_out(c, false);
            return 0;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            s_want_out(c, true);
            return 0;
        }
        s_log_ssl("tls_handshake_failed", c);
        return -1;
    }
    c->handshaken = true;
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;
    SSL_get0_alpn_selected(c->ssl, &alpn, &alen);
    if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
        s_log_ssl("tls_no_h2", c);
        return -1;
    }
    s_peer_cert(c);
    ats_server_t *srv = c->srv;
    if (nghttp2_session_server_new2(&c->h2, srv->cbs, c, srv->opt) != 0) return -1;
    c->zero_stuck = ats_state_zero_streams(srv->state);
    c->ramp_pending =
        srv->cfg->check.jwt_key && !c->auth.cert_ok && srv->cfg->stream_ramp && !c->zero_stuck;
    s_submit_max_streams(c, c->zero_stuck     ? 0
                            : c->ramp_pending ? 1
                                              : srv->cfg->max_concurrent_streams);
    pp_debug("conn_ready", "conn=%llu cert=%d", (unsigned long long)c->id, c->auth.cert_ok);
    return 1;
}

/* ---- the loop ---------------------------------------------------------------------- */

static int s_read(s_conn_t *c)
{
    for (;;) {
        ERR_clear_error();
        int r = SSL_read(c->ssl, c->srv->rbuf, READ_BUF);
        if (r > 0) {
            if (nghttp2_session_mem_recv(c->h2, c->srv->rbuf, (size_t)r) < 0) return -1;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) return 0;
        if (e == SSL_ERROR_WANT_WRITE) {
            s_want_out(c, true);
            return 0;
        }
        if (e == SSL_ERROR_SSL) s_log_ssl("tls_read_failed", c);
        return -1; /* peer closed, reset or broke TLS */
    }
}

static void s_on_conn(s_conn_t *c, uint32_t events)
{
    if ((events & (EPOLLERR | EPOLLHUP)) && !(events & EPOLLIN)) {
        s_conn_close(c, false);
        return;
    }
    if (!c->handshaken) {
        int r = s_handshake(c);
        if (r < 0) {
            s_conn_close(c, false);
            return;
        }
        if (r == 0) return;
    }
    /* Write first: a handshake's SETTINGS, or what EPOLLOUT was waiting for. */
    if (s_flush(c) < 0 || s_read(c) < 0 || s_flush(c) < 0) {
        s_conn_close(c, false);
        return;
    }
    c->dirty = false;
    if (s_conn_finished(c)) s_conn_close(c, true);
}

static void s_accept(ats_server_t *srv)
{
    for (;;) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                uint32_t suppressed;
                if (pp_ratelimit_allow(&srv->rl, &suppressed))
                    pp_warn("accept_failed", "errno=%d suppressed=%u", errno, suppressed);
            }
            return;
        }
        if (srv->n_conns >= MAX_CONNS) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        s_conn_t *c = calloc(1, sizeof *c);
        if (!c) abort();
        c->tag = TAG_CONN;
        c->srv = srv;
        c->fd = fd;
        c->id = ++srv->next_conn_id;
        c->ssl = SSL_new(srv->ctx);
        if (!c->ssl) abort();
        SSL_set_fd(c->ssl, fd);
        SSL_set_accept_state(c->ssl);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        epoll_ctl(srv->ep, EPOLL_CTL_ADD, fd, &ev);
        c->next = srv->conns;
        if (srv->conns) srv->conns->prev = c;
        srv->conns = c;
        srv->n_conns++;
        ats_state_conn_opened(srv->state);
    }
}

static void s_flush_dirty(ats_server_t *srv)
{
    uint64_t now = pp_mono_ms();
    s_conn_t *next;
    for (s_conn_t *c = srv->conns; c; c = next) {
        next = c->next;
        if (c->dirty) {
            c->dirty = false;
            if (s_flush(c) < 0) {
                s_conn_close(c, false);
                continue;
            }
        }
        if (s_conn_finished(c) || (c->goaway && now - c->goaway_ms > GOAWAY_GRACE_MS))
            s_conn_close(c, true);
    }
}

static void s_run_timers(ats_server_t *srv)
{
    uint64_t now = pp_mono_ms();
    while (srv->dhead && srv->dhead->due_ms <= now) {
        s_stream_t *st = srv->dhead;
        s_delay_unlink(srv, st);
        s_process(st->conn, st);
    }
}

static void s_take_actions(ats_server_t *srv)
{
    ats_actions_t a;
    ats_state_take_actions(srv->state, &a);
    if (a.drop_connections) {
        pp_info("connections_dropped", "count=%zu", srv->n_conns);
        while (srv->conns)
            s_conn_close(srv->conns, false);
    }
    for (s_conn_t *c = srv->conns; c; c = c->next) {
        if (!c->h2) continue;
        if (a.zero_streams && !c->zero_stuck) {
            c->zero_stuck = true;
            c->ramp_pending = false;
            s_submit_max_streams(c, 0);
        }
        if (a.max_concurrent_streams >= 0 && !c->zero_stuck) {
            c->ramp_pending = false;
            s_submit_max_streams(c, (uint32_t)a.max_concurrent_streams);
        }
        if (a.goaway_now)
            s_goaway(c, nghttp2_session_get_last_proc_stream_id(c->h2), a.goaway_code,
                     a.goaway_reason);
    }
    if (a.zero_streams) pp_info("zero_streams_sent", "connections=%zu", srv->n_conns);
    if (a.max_concurrent_streams >= 0)
        pp_info("max_concurrent_streams_sent", "value=%lld connections=%zu",
                (long long)a.max_concurrent_streams, srv->n_conns);
}

static int s_timeout_ms(ats_server_t *srv)
{
    int t = 200; /* also bounds how late a stop request is seen */
    if (srv->dhead) {
        uint64_t now = pp_mono_ms();
        uint64_t due = srv->dhead->due_ms;
        int d = due <= now ? 0 : (int)(due - now);
        if (d < t) t = d;
    }
    return t;
}

int ats_server_run(ats_server_t *srv)
{
    struct epoll_event evs[MAX_EVENTS];
    while (!pp_proc_stopping()) {
        int n = epoll_wait(srv->ep, evs, MAX_EVENTS, s_timeout_ms(srv));
        if (n < 0) {
            if (errno == EINTR) continue;
            pp_error("epoll_failed", "errno=%d", errno);
            return -1;
        }
        bool wake = false;
        for (int i = 0; i < n; i++) {
            int tag = *(int *)evs[i].data.ptr;
            if (tag == TAG_LISTEN)
                s_accept(srv);
            else if (tag == TAG_WAKE)
                wake = true;
            else
                s_on_conn(evs[i].data.ptr, evs[i].events);
        }
        if (wake) s_take_actions(srv);
        s_run_timers(srv);
        s_flush_dirty(srv);
    }
    return 0;
}

/* ---- setup ------------------------------------------------------------------------- */

static int s_listen(ats_server_t *srv, const char *addr, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (addr && inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        pp_error("bind_failed", "reason=bad_address address=%s", addr);
        close(fd);
        return -1;
    }
    socklen_t sl = sizeof sa;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 1024) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &sl) != 0) {
        pp_error("bind_failed", "port=%d errno=%d", port, errno);
        close(fd);
        return -1;
    }
    srv->listen_fd = fd;
    srv->port = ntohs(sa.sin_port);
    return 0;
}

ats_server_t *ats_server_new(const ats_server_config_t *cfg, ats_state_t *state)
{
    ats_server_t *srv = calloc(1, sizeof *srv);
    if (!srv) abort();
    srv->cfg = cfg;
    srv->state = state;
    srv->listen_fd = srv->ep = -1;
    srv->listen_tag = TAG_LISTEN;
    srv->wake_tag = TAG_WAKE;
    srv->rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 5);
    srv->rbuf = malloc(READ_BUF);
    if (!srv->rbuf) abort();
    srv->ctx = s_tls_context(cfg);
    if (!srv->ctx || s_listen(srv, cfg->listen_addr, cfg->port) != 0) goto fail;
    srv->ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &srv->listen_tag};
    struct epoll_event wev = {.events = EPOLLIN, .data.ptr = &srv->wake_tag};
    if (srv->ep < 0 || epoll_ctl(srv->ep, EPOLL_CTL_ADD, srv->listen_fd, &ev) != 0 ||
        epoll_ctl(srv->ep, EPOLL_CTL_ADD, ats_state_wake_fd(state), &wev) != 0) {
        pp_error("epoll_failed", "errno=%d", errno);
        goto fail;
    }
    nghttp2_session_callbacks_new(&srv->cbs);
    nghttp2_session_callbacks_set_on_begin_headers_callback(srv->cbs, s_on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(srv->cbs, s_on_header);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(srv->cbs, s_on_data_chunk);
    nghttp2_session_callbacks_set_on_frame_recv_callback(srv->cbs, s_on_frame_recv);
    nghttp2_session_callbacks_set_on_stream_close_callback(srv->cbs, s_on_stream_close);
    nghttp2_option_new(&srv->opt);
    return srv;
fail:
    ats_server_destroy(&srv);
    return NULL;
}

void ats_server_destroy(ats_server_t **p)
{
    if (!p || !*p) return;
    ats_server_t *srv = *p;
    while (srv->conns)
        s_conn_close(srv->conns, true);
    if (srv->cbs) nghttp2_session_callbacks_del(srv->cbs);
    if (srv->opt) nghttp2_option_del(srv->opt);
    if (srv->ep >= 0) close(srv->ep);
    if (srv->listen_fd >= 0) close(srv->listen_fd);
    SSL_CTX_free(srv->ctx);
    free(srv->rbuf);
    free(srv);
    *p = NULL;
}

int ats_server_port(ats_server_t *srv)
{
    return srv->port;
}

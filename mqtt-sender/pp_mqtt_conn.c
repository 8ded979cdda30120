#include "pp_mqtt_conn.h"

#include <MQTTAsync.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct {
    pp_mqtt_ev_t *v;
    size_t n, cap;
} s_evvec_t;

struct pp_mqtt_conn_t {
    MQTTAsync client;
    int id; /* slot in the registry below */
    int efd;
    pthread_mutex_t mu; /* guards pending and signalled */
    s_evvec_t pending, taken;
    bool signalled;
    size_t wake_at; /* signal once this many events wait */
    bool tls;
    /* paho keeps pointers to username and password, so they live here. */
    char *username, *password, *ca_file, *cert_file, *key_file;
    pp_mqtt_conn_opts_t opts;
};

/*  paho hands a callback only the context pointer given with the call. A publish's context
    must name its ticket (to recognise late completions), so it cannot also be a pointer
    to the connection: the context is an integer, (registry slot + 1) << 56 | ticket, and
    the connection is found in this small registry. The registry lock also makes
    destroy safe against a callback still running on paho's thread. */
#define S_MAX_CONNS 16
static pthread_mutex_t s_reg_mu = PTHREAD_MUTEX_INITIALIZER;
static pp_mqtt_conn_t *s_reg[S_MAX_CONNS];
static pthread_once_t s_init_once = PTHREAD_ONCE_INIT;

static void s_global_init(void)
{
    MQTTAsync_init_options init = MQTTAsync_init_options_initializer;
    init.do_openssl_init = 1;
    MQTTAsync_global_init(&init);
}

static void *s_ctx(const pp_mqtt_conn_t *c, uint64_t ticket)
{
    return (void *)(uintptr_t)(((uint64_t)(c->id + 1) << 56) | (ticket & PP_MQTT_TICKET_MAX));
}

/* Called with s_reg_mu held. */
static pp_mqtt_conn_t *s_lookup(void *ctx, uint64_t *ticket)
{
    uint64_t v = (uint64_t)(uintptr_t)ctx;
    int id = (int)(v >> 56) - 1;
    if (ticket) *ticket = v & PP_MQTT_TICKET_MAX;
    if (id < 0 || id >= S_MAX_CONNS) return NULL;
    return s_reg[id];
}

static void s_copy_text(char *out, size_t outlen, const char *text)
{
    if (!text) text = "";
    snprintf(out, outlen, "%s", text);
}

static void s_push(void *ctx, pp_mqtt_ev_type_t type, int code, const char *text)
{
    pthread_mutex_lock(&s_reg_mu);
    uint64_t ticket = 0;
    pp_mqtt_conn_t *c = s_lookup(ctx, &ticket);
    if (!c) {
        pthread_mutex_unlock(&s_reg_mu);
        return;
    }
    pthread_mutex_lock(&c->mu);
    s_evvec_t *q = &c->pending;
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 256;
        pp_mqtt_ev_t *v = realloc(q->v, cap * sizeof *v);
        if (!v) abort();
        q->v = v;
        q->cap = cap;
    }
    pp_mqtt_ev_t *ev = &q->v[q->n++];
    ev->type = type;
    ev->code = code;
    ev->ticket = ticket;
    if (text || type == PP_MQTT_EV_CONNECT_FAILED || type == PP_MQTT_EV_LOST)
        s_copy_text(ev->text, sizeof ev->text, text);
    else
        ev->text[0] = '\0';
    bool wake = !c->signalled && (q->n >= c->wake_at ||
                                  (type != PP_MQTT_EV_PUB_OK && type != PP_MQTT_EV_PUB_FAILED));
    if (wake) c->signalled = true;
    pthread_mutex_unlock(&c->mu);
    if (wake) {
        /* Only the first event of a batch costs a syscall. */
        uint64_t one = 1;
        ssize_t rc = write(c->efd, &one, sizeof one);
        (void)rc; /* the counter cannot overflow at one write per batch */
    }
    pthread_mutex_unlock(&s_reg_mu);
}

static void s_on_pub_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    s_push(ctx, PP_MQTT_EV_PUB_OK, 0, NULL);
}

static void s_on_pub_fail(void *ctx, MQTTAsync_failureData *r)
{
    s_push(ctx, PP_MQTT_EV_PUB_FAILED, r ? r->code : MQTTASYNC_FAILURE, NULL);
}

static void s_on_connect_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    s_push(ctx, PP_MQTT_EV_CONNECTED, 0, NULL);
}

static void s_on_connect_fail(void *ctx, MQTTAsync_failureData *r)
{
    s_push(ctx, PP_MQTT_EV_CONNECT_FAILED, r ? r->code : MQTTASYNC_FAILURE,
           r && r->message ? r->message : NULL);
}

static void s_on_lost(void *ctx, char *cause)
{
    s_push(ctx, PP_MQTT_EV_LOST, 0, cause);
}

static void s_on_disc_ok(void *ctx, MQTTAsync_successData *r)
{
    (void)r;
    s_push(ctx, PP_MQTT_EV_DISCONNECTED, 0, NULL);
}

static void s_on_disc_fail(void *ctx, MQTTAsync_failureData *r)
{
    s_push(ctx, PP_MQTT_EV_DISCONNECTED, r ? r->code : MQTTASYNC_FAILURE, NULL);
}

/* paho insists on a message callback; the sender never subscribes. */
static int s_on_message(void *ctx, char *topic, int topic_len, MQTTAsync_message *msg)
{
    (void)ctx, (void)topic_len;
    MQTTAsync_freeMessage(&msg);
    MQTTAsync_free(topic);
    return 1;
}

static char *s_dup(const char *s)
{
    if (!s || !*s) return NULL;
    char *d = strdup(s);
    if (!d) abort();
    return d;
}

static bool s_is_tls(const char *uri)
{
    return strncmp(uri, "ssl://", 6) == 0 || strncmp(uri, "mqtts://", 8) == 0;
}

static bool s_is_plain(const char *uri)
{
    return strncmp(uri, "tcp://", 6) == 0 || strncmp(uri, "mqtt://", 7) == 0;
}

pp_mqtt_conn_t *pp_mqtt_conn_new(const pp_mqtt_conn_opts_t *opts, char *err, size_t errlen)
{
    if (!s_is_tls(opts->uri) && !s_is_plain(opts->uri)) {
        snprintf(err, errlen, "uri must start with tcp://, mqtt://, ssl:// or mqtts://");
        return NULL;
    }
    pthread_once(&s_init_once, s_global_init);
    pp_mqtt_conn_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->opts = *opts;
    c->tls = s_is_tls(opts->uri);
    c->username = s_dup(opts->username);
    c->password = s_dup(opts->password);
    c->ca_file = s_dup(opts->ca_file);
    c->cert_file = s_dup(opts->cert_file);
    c->key_file = s_dup(opts->key_file);
    pthread_mutex_init(&c->mu, NULL);
    c->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    c->id = -1;
    c->wake_at = 1;
    if (c->efd < 0) {
        snprintf(err, errlen, "eventfd failed");
        pp_mqtt_conn_destroy(&c);
        return NULL;
    }
    pthread_mutex_lock(&s_reg_mu);
    for (int i = 0; i < S_MAX_CONNS; i++)
        if (!s_reg[i]) {
            s_reg[i] = c;
            c->id = i;
            break;
        }
    pthread_mutex_unlock(&s_reg_mu);
    if (c->id < 0) {
        snprintf(err, errlen, "too many MQTT connections in one process");
        pp_mqtt_conn_destroy(&c);
        return NULL;
    }
    int rc =
        MQTTAsync_create(&c->client, opts->uri, opts->client_id, MQTTCLIENT_PERSISTENCE_NONE, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "MQTTAsync_create: %s", pp_mqtt_conn_strerror(rc));
        c->client = NULL;
        pp_mqtt_conn_destroy(&c);
        return NULL;
    }
    rc = MQTTAsync_setCallbacks(c->client, s_ctx(c, 0), s_on_lost, s_on_message, NULL);
    if (rc != MQTTASYNC_SUCCESS) {
        snprintf(err, errlen, "MQTTAsync_setCallbacks: %s", pp_mqtt_conn_strerror(rc));
        pp_mqtt_conn_destroy(&c);
        return NULL;
    }
    return c;
}

void pp_mqtt_conn_destroy(pp_mqtt_conn_t **p)
{
    if (!p || !*p) return;
    pp_mqtt_conn_t *c = *p;
    if (c->client) MQTTAsync_destroy(&c->client);
    pthread_mutex_lock(&s_reg_mu);
    if (c->id >= 0) s_reg[c->id] = NULL;
    pthread_mutex_unlock(&s_reg_mu);
    if (c->efd >= 0) close(c->efd);
    pthread_mutex_destroy(&c->mu);
    free(c->pending.v);
    free(c->taken.v);
    free(c->username);
    free(c->password);
    free(c->ca_file);
    free(c->cert_file);
    free(c->key_file);
    free(c);
    *p = NULL;
}

int pp_mqtt_conn_fd(const pp_mqtt_conn_t *c)
{
    return c->efd;
}

int pp_mqtt_conn_connect(pp_mqtt_conn_t *c)
{
    MQTTAsync_connectOptions co = MQTTAsync_connectOptions_initializer;
    MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
    co.keepAliveInterval = c->opts.keepalive_s;
    co.cleansession = c->opts.clean_session ? 1 : 0;
    co.maxInflight = c->opts.max_inflight;
    co.username = c->username;
    co.password = c->password;
    co.connectTimeout = c->opts.connect_timeout_s;
    co.retryInterval = 0;      /* no in-session resend: the sender resends after reconnects */
    co.automaticReconnect = 0; /* the sender reconnects with its own backoff */
    co.MQTTVersion = MQTTVERSION_3_1_1;
    co.onSuccess = s_on_connect_ok;
    co.onFailure = s_on_connect_fail;
    co.context = s_ctx(c, 0);
    if (c->tls) {
        ssl.trustStore = c->ca_file;
        ssl.keyStore = c->cert_file;
        ssl.privateKey = c->key_file;
        ssl.enableServerCertAuth = c->opts.tls_verify ? 1 : 0;
        ssl.verify = c->opts.tls_verify ? 1 : 0;
        co.ssl = &ssl;
    }
    return MQTTAsync_connect(c->client, &co);
}

int pp_mqtt_conn_publish(pp_mqtt_conn_t *c, const char *topic, const void *payload, size_t len,
                         int qos, uint64_t ticket)
{
    MQTTAsync_responseOptions ro = MQTTAsync_responseOptions_initializer;
    ro.onSuccess = s_on_pub_ok;
    ro.onFailure = s_on_pub_fail;
    ro.context = s_ctx(c, ticket);
    return MQTTAsync_send(c->client, topic, (int)len, payload, qos, 0, &ro);
}

int pp_mqtt_conn_disconnect(pp_mqtt_conn_t *c, int timeout_ms)
{
    MQTTAsync_disconnectOptions d = MQTTAsync_disconnectOptions_initializer;
    d.timeout = timeout_ms;
    d.onSuccess = s_on_disc_ok;
    d.onFailure = s_on_disc_fail;
    d.context = s_ctx(c, 0);
    return MQTTAsync_disconnect(c->client, &d);
}

void pp_mqtt_conn_set_wake(pp_mqtt_conn_t *c, size_t threshold)
{
    pthread_mutex_lock(&c->mu);
    c->wake_at = threshold ? threshold : 1;
    bool wake = !c->signalled && c->pending.n >= c->wake_at;
    if (wake) c->signalled = true;
    pthread_mutex_unlock(&c->mu);
    if (wake) {
        uint64_t one = 1;
        ssize_t rc = write(c->efd, &one, sizeof one);
        (void)rc;
    }
}

size_t pp_mqtt_conn_take(pp_mqtt_conn_t *c, const pp_mqtt_ev_t **events)
{
    /* Clear the fd before swapping: an event pushed after the swap writes again, so no
       wake-up is lost. */
    uint64_t n;
    ssize_t rc = read(c->efd, &n, sizeof n);
    (void)rc; /* EAGAIN when nothing was signalled */
    pthread_mutex_lock(&c->mu);
    s_evvec_t t = c->taken;
    c->taken = c->pending;
    t.n = 0;
    c->pending = t;
    c->signalled = false;
    pthread_mutex_unlock(&c->mu);
    *events = c->taken.v;
    return c->taken.n;
}

const char *pp_mqtt_conn_strerror(int code)
{
    if (code > 0 && code <= 5) {
        static const char *const connack[] = {"",
                                              "unacceptable protocol version",
                                              "identifier rejected",
                                              "server unavailable",
                                              "bad user name or password",
                                              "not authorized"};
        return connack[code];
    }
    const char *s = MQTTAsync_strerror(code);
    return s ? s : "unknown error";
}

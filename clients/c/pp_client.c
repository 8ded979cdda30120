/*  pp_client: libpushpipe's client object (see pushpipe.h).

    Raw libzmq with a private context rather than czmq: the library must be usable from
    any program with only libzmq, msgpack-c and jansson, and czmq's zsys global state
    (signal handlers, shared context) is not something a library should impose on its
    host. The broker's address is turned into the intake/submit endpoints by
    common/pp_endpoints.c, compiled into the library so users need no ppcommon.

    Several brokers: fire-and-forget connects one PUSH to all of them (ZMQ's round robin
    over connected pipes does the spreading, ZMQ_IMMEDIATE keeps a dead broker's share
    out of its queue); acknowledged mode talks to one at a time and moves on to the next
    on a timeout, resending the same frame bytes, which carry a client message id so that
    JetStream-backed brokers store the push once.
*/
#include "pushpipe.h"

#include "pp_client_frame.h"
#include "pp_endpoints.h"
#include "pp_reply.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define PP_Z85_KEY_LEN 40
/*  "pp-" and 16 hex digits: far inside the broker's 64-byte id limit, and 64 random bits
    make a collision inside JetStream's duplicate window (minutes) negligible. */
#define PP_GEN_ID_PREFIX "pp-"
#define PP_GEN_ID_HEX 16
#define PP_MSG_ID_MAX 64 /* the broker's limit on the "id" option */

typedef struct {
    char address[PP_CLIENT_MAX_ADDRESS_LEN + 1];
    char endpoint[PP_CLIENT_MAX_ADDRESS_LEN + 32]; /* the address plus a role suffix */
} s_broker_t;

struct pp_client_t {
    void *ctx;
    void *sock;
    s_broker_t brokers[PP_CLIENT_MAX_BROKERS];
    size_t n_brokers;
    size_t current; /* acknowledged mode: the broker the next attempt goes to */
    int retries;    /* -1: the default, n_brokers - 1 */
    uint64_t resends;
    char msg_id[PP_MSG_ID_MAX + 1]; /* the client id of the last push, "" for none */
    bool ack;
    bool connected;
    int timeout_ms;
    int linger_ms;
    int sndhwm;
    bool immediate;
    bool curve;
    char server_public[PP_Z85_KEY_LEN + 1];
    char client_public[PP_Z85_KEY_LEN + 1];
    char client_secret[PP_Z85_KEY_LEN + 1];
    msgpack_sbuffer data;  /* the push's data as msgpack, reused */
    msgpack_sbuffer frame; /* the whole client frame, reused */
    char error[512];
    pp_client_status_t status;
};

static int s_fail_as(pp_client_t *c, pp_client_status_t status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_fail_as(pp_client_t *c, pp_client_status_t status, const char *fmt, ...)
{
    c->status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->error, sizeof c->error, fmt, ap);
    va_end(ap);
    return -1;
}

#define s_fail(c, ...) s_fail_as((c), PP_CLIENT_E_INPUT, __VA_ARGS__)
#define s_fail_net(c, ...) s_fail_as((c), PP_CLIENT_E_TRANSPORT, __VA_ARGS__)

/*  For checks that already wrote their message into c->error. */
static int s_input_failed(pp_client_t *c)
{
    c->status = PP_CLIENT_E_INPUT;
    return -1;
}

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*  Adds the address of len bytes at text (not NUL-terminated) to c's list. Returns 0, or
    -1 if it is empty, too long, not an address, a duplicate, or the list is full. */
static int s_add_broker(pp_client_t *c, const char *text, size_t len)
{
    if (len == 0 || len > PP_CLIENT_MAX_ADDRESS_LEN || c->n_brokers >= PP_CLIENT_MAX_BROKERS)
        return -1;
    s_broker_t *b = &c->brokers[c->n_brokers];
    memcpy(b->address, text, len);
    b->address[len] = '\0';
    if (strlen(b->address) != len || strchr(b->address, ',')) return -1;
    if (pp_endpoint(b->address, c->ack ? PP_EP_SUBMIT : PP_EP_INTAKE, b->endpoint,
                    sizeof b->endpoint) != 0)
        return -1;
    for (size_t i = 0; i < c->n_brokers; i++)
        if (strcmp(c->brokers[i].address, b->address) == 0) return -1;
    c->n_brokers++;
    return 0;
}

static pp_client_t *s_new(int flags)
{
    if ((flags & ~PP_CLIENT_ACK) != 0) return NULL;
    pp_client_t *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->ack = (flags & PP_CLIENT_ACK) != 0;
    c->timeout_ms = PP_CLIENT_DEFAULT_TIMEOUT_MS;
    c->linger_ms = PP_CLIENT_DEFAULT_LINGER_MS;
    c->sndhwm = PP_CLIENT_DEFAULT_SNDHWM;
    c->retries = -1;
    msgpack_sbuffer_init(&c->data);
    msgpack_sbuffer_init(&c->frame);
    return c;
}

static bool s_blank(char ch)
{
    return ch == ' ' || ch == '\t';
}

pp_client_t *pp_client_new(const char *broker_address, int flags)
{
    if (!broker_address) return NULL;
    pp_client_t *c = s_new(flags);
    if (!c) return NULL;
    const char *p = broker_address;
    for (;;) {
        const char *comma = strchr(p, ',');
        const char *end = comma ? comma : p + strlen(p);
        const char *a = p, *z = end;
        while (a < z && s_blank(*a))
            a++;
        while (z > a && s_blank(z[-1]))
            z--;
        if (s_add_broker(c, a, (size_t)(z - a)) != 0) {
            pp_client_destroy(&c);
            return NULL;
        }
        if (!comma) break;
        p = comma + 1;
    }
    return c;
}

pp_client_t *pp_client_new_multi(const char *const *broker_addresses, size_t n, int flags)
{
    if (!broker_addresses || n == 0 || n > PP_CLIENT_MAX_BROKERS) return NULL;
    pp_client_t *c = s_new(flags);
    if (!c) return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *a = broker_addresses[i];
        if (!a || s_add_broker(c, a, strnlen(a, PP_CLIENT_MAX_ADDRESS_LEN + 1)) != 0) {
            pp_client_destroy(&c);
            return NULL;
        }
    }
    return c;
}

static void s_close_socket(pp_client_t *c, int linger_ms)
{
    if (c->sock) {
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
        zmq_close(c->sock);
        c->sock = NULL;
    }
    c->connected = false;
}

void pp_client_destroy(pp_client_t **p)
{
    if (!p || !*p) return;
    pp_client_t *c = *p;
    s_close_socket(c, c->linger_ms);
    if (c->ctx) {
        /*  Blocks until queued pushes are out or the linger time is over. */
        while (zmq_ctx_term(c->ctx) != 0 && errno == EINTR) {
        }
    }
    msgpack_sbuffer_destroy(&c->data);
    msgpack_sbuffer_destroy(&c->frame);
    /*  The secret key should not outlive the client in freed memory. */
    memset(c->client_secret, 0, sizeof c->client_secret);
    free(c);
    *p = NULL;
}

const char *pp_client_endpoint(const pp_client_t *c)
{
    return c && c->n_brokers ? c->brokers[c->current].endpoint : "";
}

size_t pp_client_broker_count(const pp_client_t *c)
{
    return c ? c->n_brokers : 0;
}

const char *pp_client_broker(const pp_client_t *c)
{
    return c && c->n_brokers ? c->brokers[c->current].address : "";
}

/*  The resends an acknowledged push may make. */
static int s_retries(const pp_client_t *c)
{
    if (!c->ack) return 0;
    return c->retries >= 0 ? c->retries : (int)c->n_brokers - 1;
}

int pp_client_set_retries(pp_client_t *c, int n)
{
    if (!c) return -1;
    if (n < 0 || n > PP_CLIENT_MAX_RETRIES)
        return s_fail(c, "retries must be 0..%d", PP_CLIENT_MAX_RETRIES);
    c->retries = n;
    return 0;
}

uint64_t pp_client_resends(const pp_client_t *c)
{
    return c ? c->resends : 0;
}

const char *pp_client_message_id(const pp_client_t *c)
{
    return c ? c->msg_id : "";
}

pp_client_status_t pp_client_status(const pp_client_t *c)
{
    return c ? c->status : PP_CLIENT_E_INPUT;
}

const char *pp_client_error(const pp_client_t *c)
{
    return c ? c->error : "no client";
}

int pp_client_set_timeout(pp_client_t *c, int ms)
{
    if (!c || ms < 0) return c ? s_fail(c, "timeout must be >= 0 ms") : -1;
    c->timeout_ms = ms;
    return 0;
}

int pp_client_set_linger(pp_client_t *c, int ms)
{
    if (!c || ms < -1) return c ? s_fail(c, "linger must be >= -1 ms") : -1;
    c->linger_ms = ms;
    if (c->sock) zmq_setsockopt(c->sock, ZMQ_LINGER, &ms, sizeof ms);
    return 0;
}

int pp_client_set_sndhwm(pp_client_t *c, int hwm)
{
    if (!c) return -1;
    if (c->connected) return s_fail(c, "send HWM must be set before connecting");
    if (hwm < 0) return s_fail(c, "send HWM must be >= 0");
    c->sndhwm = hwm;
    return 0;
}

int pp_client_set_immediate(pp_client_t *c, bool on)
{
    if (!c) return -1;
    if (c->connected) return s_fail(c, "immediate must be set before connecting");
    c->immediate = on;
    return 0;
}

static int s_copy_key(pp_client_t *c, const char *what, const char *z85, char *out)
{
    uint8_t bin[32];
    if (!z85 || strlen(z85) != PP_Z85_KEY_LEN || !zmq_z85_decode(bin, z85))
        return s_fail(c, "%s must be %d characters of Z85", what, PP_Z85_KEY_LEN);
    memcpy(out, z85, PP_Z85_KEY_LEN + 1);
    return 0;
}

int pp_client_set_curve(pp_client_t *c, const char *server_public_z85,
                        const char *client_public_z85, const char *client_secret_z85)
{
    if (!c) return -1;
    if (c->connected) return s_fail(c, "CURVE keys must be set before connecting");
    if (!zmq_has("curve")) return s_fail(c, "this libzmq has no CURVE support");
    if (s_copy_key(c, "server public key", server_public_z85, c->server_public) != 0 ||
        s_copy_key(c, "client public key", client_public_z85, c->client_public) != 0 ||
        s_copy_key(c, "client secret key", client_secret_z85, c->client_secret) != 0)
        return -1;
    c->curve = true;
    return 0;
}

static int s_setopt(pp_client_t *c, int opt, const void *v, size_t len, const char *name)
{
    if (zmq_setsockopt(c->sock, opt, v, len) != 0)
        return s_fail_net(c, "cannot set %s: %s", name, zmq_strerror(errno));
    return 0;
}

/*  The broker is the CURVE server; this client sets the server's public key and its
    own key pair (libzmq's ZMQ_CURVE_SERVER stays 0). */
static int s_apply_curve(pp_client_t *c)
{
    if (s_setopt(c, ZMQ_CURVE_SERVERKEY, c->server_public, PP_Z85_KEY_LEN, "CURVE server key") !=
            0 ||
        s_setopt(c, ZMQ_CURVE_PUBLICKEY, c->client_public, PP_Z85_KEY_LEN, "CURVE public key") !=
            0 ||
        s_setopt(c, ZMQ_CURVE_SECRETKEY, c->client_secret, PP_Z85_KEY_LEN, "CURVE secret key") != 0)
        return -1;
    return 0;
}

/*  64 random bits from the kernel's generator. Should it fail (very old kernel,
    seccomp), clock, pid and a counter through a 64-bit mixer still give values that
    differ between calls and processes, which is all the callers need. */
static uint64_t s_random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t)sizeof v) return v;
    static uint64_t counter;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    v = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    v ^= (uint64_t)getpid() << 32;
    v += __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 0x9e3779b97f4a7c15u;
    v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9u;
    v = (v ^ (v >> 27)) * 0x94d049bb133111ebu;
    return v ^ (v >> 31);
}

/*  Fills out with "pp-" and PP_GEN_ID_HEX random hex digits. */
static void s_generate_id(char *out, size_t outlen)
{
    snprintf(out, outlen, PP_GEN_ID_PREFIX "%0*llx", PP_GEN_ID_HEX,
             (unsigned long long)s_random_u64());
}

static int s_open_socket(pp_client_t *c)
{
    if (!c->ctx && !(c->ctx = zmq_ctx_new()))
        return s_fail_net(c, "cannot create ZMQ context: %s", zmq_strerror(errno));
    c->sock = zmq_socket(c->ctx, c->ack ? ZMQ_DEALER : ZMQ_PUSH);
    if (!c->sock) return s_fail_net(c, "cannot create ZMQ socket: %s", zmq_strerror(errno));
    /*  With several brokers a PUSH must not queue for one that is down (a connecting PUSH
        keeps a pipe, and fills it, for a peer it has never reached or has lost): only
        completed connections take part in the round robin. */
    int imm = !c->ack && (c->immediate || c->n_brokers > 1);
    if (s_setopt(c, ZMQ_LINGER, &c->linger_ms, sizeof c->linger_ms, "linger") != 0 ||
        s_setopt(c, ZMQ_SNDHWM, &c->sndhwm, sizeof c->sndhwm, "send HWM") != 0 ||
        s_setopt(c, ZMQ_IMMEDIATE, &imm, sizeof imm, "immediate") != 0)
        goto fail;
    if (c->curve && s_apply_curve(c) != 0) goto fail;
    /*  Acknowledged: one broker at a time, so that an answer can only come from the
        broker the frame went to. Fire-and-forget: all of them. */
    size_t n = c->ack ? 1 : c->n_brokers;
    size_t start = c->ack ? c->current : s_random_u64() % c->n_brokers;
    for (size_t i = 0; i < n; i++) {
        /*  Fire-and-forget connects in a random rotation: a short-lived client sends
            before all its connections are up, to the first that completes, and would
            otherwise always favour the first broker listed. */
        const char *ep = c->brokers[(start + i) % c->n_brokers].endpoint;
        if (zmq_connect(c->sock, ep) != 0) {
            s_fail_net(c, "cannot connect to %s: %s", ep, zmq_strerror(errno));
            goto fail;
        }
    }
    c->connected = true;
    return 0;
fail:
    s_close_socket(c, 0);
    return -1;
}

int pp_client_connect(pp_client_t *c)
{
    if (!c) return -1;
    return c->connected ? 0 : s_open_socket(c);
}

/*  Sends one part, waiting at most until deadline_ms (monotonic). A signal does not cut
    the wait short: the remaining time is waited again. */
static int s_send(pp_client_t *c, const void *buf, size_t len, int more, int64_t deadline_ms)
{
    for (;;) {
        int64_t left = deadline_ms - s_now_ms();
        int wait = left > 0 ? (left > 2000000000 ? 2000000000 : (int)left) : 0;
        int flags = more ? ZMQ_SNDMORE : 0;
        if (wait == 0)
            flags |= ZMQ_DONTWAIT;
        else
            zmq_setsockopt(c->sock, ZMQ_SNDTIMEO, &wait, sizeof wait);
        if (zmq_send(c->sock, buf, len, flags) >= 0) return 0;
        if (errno == EINTR) continue;
        if (errno == EAGAIN)
            return s_fail_as(c, PP_CLIENT_E_TIMEOUT,
                             c->timeout_ms == 0 ? "would block: the send queue is full"
                                                : "timeout: the broker did not take the "
                                                  "push in time");
        return s_fail_net(c, "send failed: %s", zmq_strerror(errno));
    }
}

/*  Receives one whole reply message (its first two parts kept, the rest counted) and
    decodes it. Returns 0, -1 with the error set, or 1 if interrupted before any part. */
static int s_recv_reply(pp_client_t *c, pp_client_result_t *result)
{
    zmq_msg_t parts[2];
    size_t n = 0, total = 0;
    int more = 1;
    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(&m);
            for (size_t i = 0; i < n; i++)
                zmq_msg_close(&parts[i]);
            if (e == EINTR && total == 0) return 1; /* nothing taken yet: poll again */
            s_close_socket(c, 0);
            return s_fail_net(c, "receive failed: %s", zmq_strerror(e));
        }
        more = zmq_msg_more(&m);
        total++;
        if (n < 2)
            parts[n++] = m;
        else
            zmq_msg_close(&m);
    }
    int rc = 0;
    pp_reply_t reply;
    if (total != 2 || zmq_msg_size(&parts[0]) != 0 ||
        pp_reply_decode(zmq_msg_data(&parts[1]), zmq_msg_size(&parts[1]), &reply) != 0) {
        /*  Whatever sent this does not speak our protocol, and what comes next cannot be
            trusted to answer this push: start over with a fresh connection. */
        s_close_socket(c, 0);
        rc = s_fail_net(c, "malformed reply from the broker (%zu parts)", total);
    } else if (reply.ok) {
        if (result) {
            result->accepted = true;
            memcpy(result->msg_id, reply.id, sizeof result->msg_id);
        }
    } else {
        if (result) {
            memcpy(result->reason, reply.reason, sizeof result->reason);
            memcpy(result->detail, reply.detail, sizeof result->detail);
        }
        rc = s_fail_as(c, PP_CLIENT_E_REJECTED, "rejected %s: %s", reply.reason, reply.detail);
    }
    for (size_t i = 0; i < n; i++)
        zmq_msg_close(&parts[i]);
    return rc;
}

static int s_wait_reply(pp_client_t *c, int64_t deadline_ms, pp_client_result_t *result)
{
    for (;;) {
        int64_t left = deadline_ms - s_now_ms();
        if (left < 0) left = 0;
        zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
        int n = zmq_poll(&item, 1, (long)left);
        if (n < 0 && errno != EINTR) {
            s_close_socket(c, 0);
            return s_fail_net(c, "poll failed: %s", zmq_strerror(errno));
        }
        if (n > 0) {
            int rc = s_recv_reply(c, result);
            if (rc <= 0) return rc;
        }
        if (n == 0 && left == 0) {
            /*  The verdict may still come, and a DEALER would hand it to the next push.
                Closing the socket drops it (the zguide's Lazy Pirate). The push itself
                may or may not have been accepted. */
            s_close_socket(c, 0);
            return s_fail_as(c, PP_CLIENT_E_TIMEOUT,
                             "timeout: no answer from the broker within %d ms", c->timeout_ms);
        }
    }
}

/*  One acknowledged attempt: the frame to the current broker, and its verdict. */
static int s_ack_once(pp_client_t *c, pp_client_result_t *result)
{
    if (!c->connected && s_open_socket(c) != 0) return -1;
    int64_t deadline = s_now_ms() + c->timeout_ms;
    /*  [empty delimiter, frame]: what a REQ socket sends, so the broker's ROUTER can
        answer REQ and DEALER clients the same way. */
    if (s_send(c, "", 0, 1, deadline) != 0) return -1;
    /*  Once the first part is queued the rest of the message cannot block. */
    if (s_send(c, c->frame.data, c->frame.size, 0, deadline) != 0) {
        s_close_socket(c, 0);
        return -1;
    }
    return s_wait_reply(c, deadline, result);
}

/*  Acknowledged push with failover: after a timeout or a transport failure the socket is
    closed (Lazy Pirate: a late verdict must not answer a later push) and the same frame
    bytes go to the next broker. A verdict, accepted or rejected, ends it: a rejection is
    about the frame, and another broker would say the same. */
static int s_ack_push(pp_client_t *c, pp_client_result_t *result)
{
    int attempts = 1 + s_retries(c);
    for (int i = 0; i < attempts; i++) {
        if (i > 0) c->resends++;
        if (s_ack_once(c, result) == 0) return 0;
        if (c->status == PP_CLIENT_E_REJECTED || c->status == PP_CLIENT_E_INPUT) return -1;
        /*  The next attempt, or the next push, starts at the next broker. */
        s_close_socket(c, 0);
        c->current = (c->current + 1) % c->n_brokers;
    }
    if (attempts > 1) {
        /*  Appended in place, cut short if the message is already long. */
        size_t used = strlen(c->error);
        snprintf(c->error + used, sizeof c->error - used, " (%d attempts over %zu broker%s)",
                 attempts, c->n_brokers, c->n_brokers == 1 ? "" : "s");
    }
    return -1;
}

static int s_send_frame(pp_client_t *c, pp_client_result_t *result)
{
    if (c->ack) return s_ack_push(c, result);
    if (!c->connected && s_open_socket(c) != 0) return -1;
    return s_send(c, c->frame.data, c->frame.size, 0, s_now_ms() + c->timeout_ms);
}

static int s_push(pp_client_t *c, int push_type, const char *const *ids, size_t n_ids,
                  const void *data, size_t len, const pp_push_options_t *opts,
                  pp_client_result_t *result)
{
    c->frame.size = 0;
    c->msg_id[0] = '\0';
    /*  A push that may be resent needs a client id, or a broker that got the first send
        and a broker that got the resend would store it as two messages. */
    pp_push_options_t with_id;
    if (s_retries(c) > 0 && (!opts || !opts->id)) {
        if (opts)
            with_id = *opts;
        else
            memset(&with_id, 0, sizeof with_id);
        s_generate_id(c->msg_id, sizeof c->msg_id);
        with_id.id = c->msg_id;
        opts = &with_id;
    } else if (opts && opts->id) {
        snprintf(c->msg_id, sizeof c->msg_id, "%s", opts->id);
    }
    if (pp_client_frame_encode(push_type, ids, n_ids, data, len, opts, &c->frame, c->error,
                               sizeof c->error) != 0)
        return s_input_failed(c);
    if (s_send_frame(c, result) != 0) return -1;
    c->error[0] = '\0';
    c->status = PP_CLIENT_OK;
    return 0;
}

static int s_begin(pp_client_t *c, pp_client_result_t *result)
{
    if (result) memset(result, 0, sizeof *result);
    if (!c) return -1;
    c->error[0] = '\0';
    c->status = PP_CLIENT_OK;
    return 0;
}

static int s_push_json(pp_client_t *c, int push_type, const char *const *ids, size_t n_ids,
                       const char *data_json, const pp_push_options_t *opts,
                       pp_client_result_t *result)
{
    if (s_begin(c, result) != 0) return -1;
    c->data.size = 0;
    if (pp_client_json_to_msgpack(data_json, &c->data, c->error, sizeof c->error) != 0)
        return s_input_failed(c);
    return s_push(c, push_type, ids, n_ids, c->data.data, c->data.size, opts, result);
}

int pp_client_push(pp_client_t *c, int push_type, const char *const *ids, size_t n_ids,
                   const char *data_json, const pp_push_options_t *opts, pp_client_result_t *result)
{
    return s_push_json(c, push_type, ids, n_ids, data_json, opts, result);
}

int pp_client_push_group(pp_client_t *c, const char *gid, const char *data_json,
                         const pp_push_options_t *opts, pp_client_result_t *result)
{
    return s_push_json(c, PP_PUSH_GROUP, &gid, 1, data_json, opts, result);
}

int pp_client_push_users(pp_client_t *c, const char *const *uids, size_t n, const char *data_json,
                         const pp_push_options_t *opts, pp_client_result_t *result)
{
    return s_push_json(c, PP_PUSH_USERS, uids, n, data_json, opts, result);
}

int pp_client_push_user(pp_client_t *c, const char *uid, const char *data_json,
                        const pp_push_options_t *opts, pp_client_result_t *result)
{
    return s_push_json(c, PP_PUSH_USER, &uid, 1, data_json, opts, result);
}

int pp_client_push_raw(pp_client_t *c, int push_type, const char *const *ids, size_t n_ids,
                       const void *data_msgpack, size_t len, const pp_push_options_t *opts,
                       pp_client_result_t *result)
{
    if (s_begin(c, result) != 0) return -1;
    if (pp_client_check_map(data_msgpack, len, c->error, sizeof c->error) != 0)
        return s_input_failed(c);
    return s_push(c, push_type, ids, n_ids, data_msgpack, len, opts, result);
}

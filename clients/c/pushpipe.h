/*  libpushpipe: send push notifications to a pushpipe broker.

    A client knows only the broker's address, e.g. "tcp://push.internal:5560" (the
    broker's base port), or the addresses of several brokers that run side by side
    ("tcp://a:5560,tcp://b:5560"; see "Several brokers" below). It sends one client frame
    per push, as the seed's clients did: a msgpack array [push_type, push_id, data] or
    [push_type, push_id, data, options].

    Two modes:
      - fire-and-forget (flags 0): a PUSH socket to the broker's intake (base port + 0).
        A push returns once the message is queued; nothing says whether the broker
        accepted it. Queued messages survive a broker restart (up to the send high-water
        mark) and are flushed on pp_client_destroy for up to the linger time.
      - acknowledged (PP_CLIENT_ACK): a DEALER socket to the broker's submit endpoint
        (base port + 1, REQ-compatible framing). Each push waits for the broker's verdict:
        accepted with the message id it was given, or rejected with a reason.

    Several brokers (active-active):
      - fire-and-forget: one PUSH socket connected to every broker's intake; ZMQ hands
        the pushes round-robin to the brokers that are connected. ZMQ_IMMEDIATE is always
        on with several brokers, so nothing is queued for a broker that is down: its
        share goes to the others once its connection has dropped.
      - acknowledged: each push goes to one broker (the first listed, then whichever
        answered last). Without an answer within the timeout the socket is closed and
        reopened to the next broker, and the same frame is sent again, up to the retries
        (pp_client_set_retries, default: each broker once). So that a resend cannot run
        twice, a push that may be resent always carries a client message id: the
        caller's (opts->id) or one the library makes up, "pp-" and 16 random hex digits.
        Brokers with durability "jetstream" store a message once per client id.

    Data is JSON text holding one object; the library converts it to a msgpack map.
    Every call returns 0 on success or -1 on failure, with a readable message in
    pp_client_error(). A client is not thread-safe: use one per thread, like a ZMQ socket.

    The socket is created and connected on the first push (or pp_client_connect), so
    settings that must precede the connection (HWM, CURVE keys) can be made in between.

    Build: pkg-config --cflags --libs pushpipe (add --static for libpushpipe.a).
*/
#ifndef PUSHPIPE_H
#define PUSHPIPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) && defined(PUSHPIPE_BUILDING)
#define PUSHPIPE_EXPORT __attribute__((visibility("default")))
#else
#define PUSHPIPE_EXPORT
#endif

#define PUSHPIPE_VERSION_MAJOR 0
#define PUSHPIPE_VERSION_MINOR 1
#define PUSHPIPE_VERSION_PATCH 0

/*  pp_client_new flags. */
#define PP_CLIENT_ACK 1 /* acknowledged mode: wait for the broker's verdict */

/*  Push types of the client frame (the seed's numbers). */
#define PP_PUSH_GROUP 1
#define PP_PUSH_USERS 2
#define PP_PUSH_USER 3

/*  Defaults. */
#define PP_CLIENT_DEFAULT_TIMEOUT_MS 5000
#define PP_CLIENT_DEFAULT_LINGER_MS 2000
#define PP_CLIENT_DEFAULT_SNDHWM 1000

/*  Limits of a broker list. */
#define PP_CLIENT_MAX_BROKERS 16      /* addresses in one client */
#define PP_CLIENT_MAX_ADDRESS_LEN 255 /* bytes of one address */
#define PP_CLIENT_MAX_RETRIES 100     /* pp_client_set_retries */

/*  Options of one push. A zero-initialised struct means "no options" (the frame then has
    three elements). Strings may be NULL (not given). */
typedef struct {
    const char *id;               /* client's message id, for tracing */
    const char *channels;         /* "all", "apns" or "mqtt" */
    const char *apns_push_type;   /* apns-push-type: "alert", "background", ... */
    const char *apns_collapse_id; /* at most 64 bytes */
    int apns_priority;            /* 10, 5 or 1; 0 = not given */
    bool has_apns_expiration;     /* apns_expiration is given ... */
    int64_t apns_expiration;      /* ... absolute UNIX seconds, 0 = deliver once */
    bool has_ttl;                 /* ttl is given (exclusive with apns_expiration) ... */
    int64_t ttl;                  /* ... seconds from now, turned into an expiration */
    bool has_mqtt_qos;            /* mqtt_qos is given ... */
    int mqtt_qos;                 /* ... 0, 1 or 2 */
} pp_push_options_t;

/*  What the broker said about an acknowledged push. In fire-and-forget mode, and when a
    push fails before the broker answers, accepted is false and reason is empty. */
typedef struct {
    bool accepted;
    char msg_id[64];  /* the broker's message id, when accepted */
    char reason[64];  /* e.g. "bad_data", "overloaded", when rejected */
    char detail[256]; /* a short explanation from the broker, may be empty */
} pp_client_result_t;

typedef struct pp_client_t pp_client_t;

/*  Creates a client for the broker at broker_address ("tcp://host:port", the broker's
    base port, or "ipc:///path"), or for several brokers: addresses separated by commas
    (blanks around them are ignored), at most PP_CLIENT_MAX_BROKERS, each at most
    PP_CLIENT_MAX_ADDRESS_LEN bytes, no address twice. flags: 0 or PP_CLIENT_ACK.
    Returns NULL if an address is not of that form, the list breaks a limit, or on
    allocation failure. Does not connect yet. */
PUSHPIPE_EXPORT pp_client_t *pp_client_new(const char *broker_address, int flags);

/*  The same with the n addresses as an array (none may contain a comma). n >= 1. */
PUSHPIPE_EXPORT pp_client_t *pp_client_new_multi(const char *const *broker_addresses, size_t n,
                                                 int flags);

/*  How many brokers the client knows (1 for a single address). */
PUSHPIPE_EXPORT size_t pp_client_broker_count(const pp_client_t *c);

/*  Acknowledged mode: the address of the broker that answered the last push, or that the
    next one goes to first (after a failed push: the broker after the last one tried).
    Fire-and-forget: the first address. */
PUSHPIPE_EXPORT const char *pp_client_broker(const pp_client_t *c);

/*  Acknowledged mode: how many times a push is sent again, each time to the next broker
    in the list, after a timeout or a malformed answer (never after a rejection). Default
    pp_client_broker_count() - 1, i.e. each broker once; 0 to 1 broker keeps the old
    behaviour: no resend, and no generated client id. With one broker and n > 0 the
    resends go to that broker, over a new connection. Each attempt has the whole timeout,
    so a push can take (n + 1) * timeout. Returns 0, or -1 if n is outside
    0..PP_CLIENT_MAX_RETRIES. */
PUSHPIPE_EXPORT int pp_client_set_retries(pp_client_t *c, int n);

/*  How many resends this client has made since it was created (acknowledged mode). */
PUSHPIPE_EXPORT uint64_t pp_client_resends(const pp_client_t *c);

/*  The client message id the last push carried: the caller's opts->id, the one the
    library generated for a push that may be resent, or "" when it had none. */
PUSHPIPE_EXPORT const char *pp_client_message_id(const pp_client_t *c);

/*  Closes the socket, waiting up to the linger time for queued pushes to go out, and
    sets *p to NULL. NULL and *p == NULL are fine. */
PUSHPIPE_EXPORT void pp_client_destroy(pp_client_t **p);

/*  The endpoint this client sends to (intake or submit), e.g. "tcp://host:5561"; with
    several brokers, that of pp_client_broker(). */
PUSHPIPE_EXPORT const char *pp_client_endpoint(const pp_client_t *c);

/*  Time a push may take: in acknowledged mode, sending plus waiting for the verdict (per
    broker tried, see pp_client_set_retries); in
    fire-and-forget mode, waiting for room in the send queue. 0 means do not wait at all.
    Default 5000 ms. Returns 0, or -1 if ms < 0. */
PUSHPIPE_EXPORT int pp_client_set_timeout(pp_client_t *c, int ms);

/*  How long pp_client_destroy waits for queued pushes (default 2000 ms; -1 = forever,
    which can hang if the broker is gone). Returns 0, or -1 if ms < -1. */
PUSHPIPE_EXPORT int pp_client_set_linger(pp_client_t *c, int ms);

/*  Most messages queued towards the broker (ZMQ_SNDHWM, default 1000). Before the
    connection only; returns -1 after it or if hwm < 0. */
PUSHPIPE_EXPORT int pp_client_set_sndhwm(pp_client_t *c, int hwm);

/*  Fire-and-forget: when true, pushes are queued only while a connection to the broker
    is up (ZMQ_IMMEDIATE), so a push to an absent broker fails with "timeout" instead of
    waiting in the queue for it. Default false; always on with several brokers. Before
    the connection only. */
PUSHPIPE_EXPORT int pp_client_set_immediate(pp_client_t *c, bool on);

/*  CurveZMQ: the broker's public key and this client's key pair, each 40 characters of
    Z85 (as in a czmq certificate). Before the connection only. Returns -1 if a key is
    malformed or libzmq lacks CURVE support. */
PUSHPIPE_EXPORT int pp_client_set_curve(pp_client_t *c, const char *server_public_z85,
                                        const char *client_public_z85,
                                        const char *client_secret_z85);

/*  Creates the socket and connects it now (otherwise the first push does). Connecting
    does not wait for the broker to be up. Returns 0 or -1. */
PUSHPIPE_EXPORT int pp_client_connect(pp_client_t *c);

/*  Pushes data_json (one JSON object) to the members of group gid. opts may be NULL.
    result may be NULL; if given it is always filled. Returns 0 when queued
    (fire-and-forget) or accepted (acknowledged); -1 on a local error, a timeout, or a
    rejection (then result->reason holds the broker's reason). */
PUSHPIPE_EXPORT int pp_client_push_group(pp_client_t *c, const char *gid, const char *data_json,
                                         const pp_push_options_t *opts, pp_client_result_t *result);

/*  Same, to the n users in uids (n >= 1). */
PUSHPIPE_EXPORT int pp_client_push_users(pp_client_t *c, const char *const *uids, size_t n,
                                         const char *data_json, const pp_push_options_t *opts,
                                         pp_client_result_t *result);

/*  Same, to one user. */
PUSHPIPE_EXPORT int pp_client_push_user(pp_client_t *c, const char *uid, const char *data_json,
                                        const pp_push_options_t *opts, pp_client_result_t *result);

/*  The general form: push_type PP_PUSH_GROUP or PP_PUSH_USER take n_ids == 1,
    PP_PUSH_USERS n_ids >= 1. data_msgpack is the data already packed as one msgpack
    map (len bytes), for callers that have msgpack at hand; it is checked to be exactly
    one map and sent as is. */
PUSHPIPE_EXPORT int pp_client_push_raw(pp_client_t *c, int push_type, const char *const *ids,
                                       size_t n_ids, const void *data_msgpack, size_t len,
                                       const pp_push_options_t *opts, pp_client_result_t *result);

/*  Like the three above, with the push type as an argument (PP_PUSH_GROUP and
    PP_PUSH_USER take n_ids == 1). */
PUSHPIPE_EXPORT int pp_client_push(pp_client_t *c, int push_type, const char *const *ids,
                                   size_t n_ids, const char *data_json,
                                   const pp_push_options_t *opts, pp_client_result_t *result);

/*  What kind of failure the last call had, for callers that react differently. */
typedef enum {
    PP_CLIENT_OK = 0,
    PP_CLIENT_E_INPUT,     /* bad arguments, data or options: retrying will not help */
    PP_CLIENT_E_TIMEOUT,   /* the broker did not take or answer the push in time */
    PP_CLIENT_E_REJECTED,  /* the broker refused the push; result->reason says why */
    PP_CLIENT_E_TRANSPORT, /* socket error or a malformed reply */
} pp_client_status_t;

PUSHPIPE_EXPORT pp_client_status_t pp_client_status(const pp_client_t *c);

/*  The message of the last failure, e.g. "timeout", "data is not a JSON object",
    "rejected bad_data: data is not a map". Empty after a success. */
PUSHPIPE_EXPORT const char *pp_client_error(const pp_client_t *c);

#ifdef __cplusplus
}
#endif

#endif

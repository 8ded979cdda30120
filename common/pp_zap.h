/*  pp_zap: the broker's ZAP handler (RFC 27/ZAP): which CURVE key may use which socket.

    Every broker socket has a ZAP domain naming a role (pp_zap_domain): intake and submit
    "pushpipe-clients", resolve "pushpipe-resolvers", the apns pool "pushpipe-apns-senders",
    the mqtt pool "pushpipe-mqtt-senders". libzmq asks the handler about every CURVE
    handshake, with the socket's domain and the client's public key; the handler accepts a
    key only if a certificate with it lies in that role's directory, and then sets the
    connection's User-Id to the key (Z85, 40 characters) and the ZAP metadata property
    "X-Key-Name" to the certificate's "name" (pushpipe-keygen writes it), both readable with
    zmq_msg_gets() on every message of that connection.

    Why not czmq's zauth: its CURVE check (czmq 4.2, s_authenticate_curve) looks the key up
    in one certificate store for every domain and answers an empty User-Id, so it can tell
    neither roles apart nor one key from another. (Nor czmq's zcertstore for the
    directories: it reads subdirectories too, and asserts, aborting the process, when two
    files hold the same key.) Like zauth, the handler looks at each role's directory on
    every handshake and reloads it when it changed, so adding or removing a key needs no
    restart.

    Layout of allow_dir (docs/security.md):
      roles on:  allow_dir/clients/, allow_dir/resolvers/, allow_dir/apns-senders/,
                 allow_dir/mqtt-senders/ (as soon as one of them exists; a missing one
                 refuses every key for its role; certificates directly in allow_dir are
                 ignored)
      roles off: certificates directly in allow_dir, every key allowed on every socket
                 (the layout before roles; logged as a warn at start)

    The handler is an actor bound to inproc://zeromq.zap.01 in czmq's context: one per
    process, and only sockets of that context (zsock_new*) see it. Requests that are not
    CURVE (NULL, PLAIN), malformed, or for a domain not listed here are refused.
*/
#ifndef PP_ZAP_H
#define PP_ZAP_H

#include "pp_metrics.h"

#include <stdbool.h>

typedef enum {
    PP_ROLE_CLIENTS = 0,
    PP_ROLE_RESOLVERS,
    PP_ROLE_APNS_SENDERS,
    PP_ROLE_MQTT_SENDERS,
    PP_ROLE_COUNT,
    /*  Any key allowed in any role (domain "pushpipe"): for tests and sockets that are not
        the broker's; the broker gives each of its sockets a role. */
    PP_ROLE_ANY = PP_ROLE_COUNT
} pp_role_t;

/*  "clients", "resolvers", "apns-senders", "mqtt-senders" (the directory names), "any". */
const char *pp_role_name(pp_role_t role);

/*  The ZAP domain of a role: "pushpipe-clients", ..., "pushpipe" for PP_ROLE_ANY. */
const char *pp_zap_domain(pp_role_t role);

typedef struct pp_zap_t pp_zap_t;

/*  Starts the handler. role_dirs[r] is the directory of role r's certificates, or NULL
    (that role refuses every key); the same directory may serve several roles. metrics may
    be NULL; else pushpipe_curve_zap_total{role,result="ok|refused"} is counted. Returns
    NULL with a logged error when the actor cannot start or the endpoint is taken (another
    ZAP handler, e.g. zauth, in this context). */
pp_zap_t *pp_zap_new(const char *const role_dirs[PP_ROLE_COUNT], pp_metrics_t *metrics);
void pp_zap_destroy(pp_zap_t **p);

#endif

/*  pp_curve: CurveZMQ on the broker's sockets, off by default (see docs/security.md).

    The broker is the CURVE server on all its sockets; every other process (clients,
    resolvers, senders) is a CURVE client with its own key pair. When on, the broker runs
    its ZAP handler (common/pp_zap.h) over the allowed public certificates, one directory
    per role (clients, resolvers, apns-senders, mqtt-senders) under allow_dir, gives each
    socket the ZAP domain of its role and sets ZAP enforcement, so an unknown key, or a key
    on a socket of a role it does not have, is refused (fails closed). A flat allow_dir
    (no role subdirectories) lets every key in it use every socket, as before roles; the
    broker warns about it at start (curve_roles_off).

    Config, top-level section "curve":
      enabled             false
      secret_cert         path of this process's certificate, as written by pushpipe-keygen
                          (the file with "_secret"): the broker's or the client's own
      server_secret_cert  the broker's own secret certificate when one config file serves the
                          broker and its clients on one host (the broker reads this one first;
                          clients never read it)
      server_public       path of the broker's public certificate (clients only)
      allow_dir           directory of allowed client public certificates (broker only),
                          with a subdirectory per role; reloaded when it changes, so adding
                          a key needs no restart

    Relative paths are relative to the process's working directory. Every problem with
    these keys (missing, unreadable, not a certificate, a public file where the secret one
    is needed) is a config error naming the key, so the process exits 2 before binding.

    Sockets must be created in czmq's context (zsock_new*) for the ZAP handler to see them.
    Call pp_curve_apply_role() (or pp_curve_apply()) on each socket before bind or connect.
    One server pp_curve_t per process: the ZAP handler is bound to a fixed inproc endpoint.
*/
#ifndef PP_CURVE_H
#define PP_CURVE_H

#include "pp_config.h"
#include "pp_metrics.h"
#include "pp_zap.h"

#include <stdbool.h>
#include <stddef.h>

/*  The ZAP domain of pp_curve_apply() in a server (any role); the broker's sockets use
    pp_zap_domain(role) instead ("pushpipe-clients", ...). */
#define PP_CURVE_ZAP_DOMAIN "pushpipe"

typedef struct pp_curve_t pp_curve_t;

/*  Reads the "curve" section. server: true in the broker. Config errors go to the config
    (pp_config_fail); returns NULL only on allocation failure. */
pp_curve_t *pp_curve_new(pp_config_t *config, bool server);
void pp_curve_destroy(pp_curve_t **p);

bool pp_curve_enabled(const pp_curve_t *c);

/*  Sets the socket's CURVE options (no-op when off). zmq_socket is a raw libzmq handle
    (zsock_resolve() of a zsock_t). In the server, the first call starts the zauth actor.
    Returns 0, or -1 with a logged error. */
int pp_curve_apply(pp_curve_t *c, void *zmq_socket);

/*  Like pp_curve_apply; in the server the socket lets in only keys of role (its ZAP domain
    is pp_zap_domain(role)), and every message it receives carries the sender's key as
    User-Id (zmq_msg_gets). PP_ROLE_ANY: any key of any role. Same in a client. */
int pp_curve_apply_role(pp_curve_t *c, void *zmq_socket, pp_role_t role);

/*  True in a CURVE server whose allow_dir has role subdirectories (false: flat, every
    allowed key in every role). */
bool pp_curve_roles(const pp_curve_t *c);

/*  This process's public key in Z85 (40 characters), or NULL when off. For logs. */
const char *pp_curve_public_key(const pp_curve_t *c);

/*  Optional (server): counts CURVE handshakes on every socket applied after this call,
    as pushpipe_curve_handshakes_total{result="ok|refused|failed"}, and logs refused ones
    (rate-limited); the ZAP handler counts pushpipe_curve_zap_total{role,result}. Call before
    the first pp_curve_apply. No-op when off or in a client. */
void pp_curve_set_metrics(pp_curve_t *c, pp_metrics_t *metrics);

/* ---- security rules shared by every process (docs/security.md) ------------------------- */

/*  True for endpoints that only this host can reach: ipc://, inproc://, and tcp:// on
    127.0.0.0/8, [::1] or localhost. Everything else (0.0.0.0, *, another address, a host
    or interface name) is not loopback. */
bool pp_endpoint_is_loopback(const char *endpoint);

/*  The binding rule: binding endpoint (set by config key `key`) on a non-loopback address
    while curve.enabled is false is a config error naming both keys, unless the top-level
    "insecure_bind" is true; then one warn line (event=insecure_bind) is logged, at every
    start. Always reads "insecure_bind", so it is never an unknown key; endpoint may be
    NULL (nothing bound by this process) to do only that. */
void pp_curve_check_bind(pp_config_t *config, const char *key, const char *endpoint);

/*  Secret key files (CURVE _secret certificates, APNs .p8 keys) must not be readable by
    group or others, as ssh insists for its keys. Returns 0 when path is fine or cannot be
    stat()ed (the loader then reports why it cannot read it), -1 with a message ("permissions
    0644 for PATH are too open: ...") in err when it is too open. */
int pp_secret_file_check(const char *path, char *err, size_t errlen);

#endif

/*  pp_curve: CurveZMQ on the broker's sockets, off by default (see docs/security.md).

    The broker is the CURVE server on all its sockets; every other process (clients,
    resolvers, senders) is a CURVE client with its own key pair. When on, the broker runs
    czmq's zauth with a directory of allowed public certificates and sets ZAP enforcement,
    so an unknown key is refused (fails closed).

    Config, top-level section "curve":
      enabled         false
      secret_cert     path of this process's certificate, as written by pushpipe-keygen
                      (the file with "_secret"): the broker's or the client's own
      server_public   path of the broker's public certificate (clients only)
      allow_dir       directory of allowed client public certificates (broker only)

    Sockets must be created in czmq's context (zsock_new*) for zauth to see them. Call
    pp_curve_apply() on each socket before bind or connect.
*/
#ifndef PP_CURVE_H
#define PP_CURVE_H

#include "pp_config.h"

#include <stdbool.h>

typedef struct pp_curve_t pp_curve_t;

/*  Reads the "curve" section. server: true in the broker. Config errors go to the config
    (pp_config_fail); returns NULL only on allocation failure. */
pp_curve_t *pp_curve_new(pp_config_t *config, bool server);
void pp_curve_destroy(pp_curve_t **p);

bool pp_curve_enabled(const pp_curve_t *c);

/*  Sets the socket's CURVE options (no-op when off). zmq_socket is a raw libzmq handle
    (zsock_resolve() of a zsock_t). Returns 0, or -1 with a logged error. */
int pp_curve_apply(pp_curve_t *c, void *zmq_socket);

#endif

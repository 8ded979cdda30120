/*  pp_broker: the broker's sockets and its one-thread loop.

    Sockets (per common/pp_endpoints.h, all bound from broker.bind): PULL intake, ROUTER
    submit, and three link hubs (broker/pp_dispatch.h, docs/link-protocol.md): resolve,
    apns_out, mqtt_out. Client frames from intake/submit are validated (pp_frame), stamped
    with a message id (pp_msgid) and the receive time, and queued to the resolve pool as
    RESOLVE jobs. Resolvers send their APNS and MQTT jobs back over their link as outputs
    ("O"); each is checked by kind and moved, not copied, to the apns or mqtt pool. Every
    job stays with the broker until a worker acknowledges it, so a worker killed with
    kill -9 loses nothing: its jobs go to another worker.

    Nothing blocks: one thread polls every socket. Each pool's pending queue is bounded;
    while the resolve pool is full, intake is not read and submits are answered
    "overloaded"; while the apns or mqtt pool is full, the resolvers' outputs are not read
    (backpressure up to the resolvers, and so to resolution). docs/broker.md describes each
    buffer and what happens when it is full.
*/
#ifndef PP_BROKER_H
#define PP_BROKER_H

#include "pp_broker_config.h"
#include "pp_config.h"
#include "pp_curve.h"
#include "pp_frame.h"
#include "pp_jetstream.h"
#include "pp_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pp_broker_t pp_broker_t;

/*  Creates the sockets and pools (CURVE applied from curve, which must outlive the broker),
    binds them and registers the metrics. Returns NULL with a logged error if a socket
    cannot be bound. */
pp_broker_t *pp_broker_new(const pp_broker_config_t *cfg, pp_curve_t *curve, pp_metrics_t *metrics);

/*  Closes the sockets (linger 0) and frees everything still held (pp_broker_drain counted
    it); nulls *p. */
void pp_broker_destroy(pp_broker_t **p);

/*  Runs the loop until pp_proc_stopping(). Returns 0, or -1 on a fatal ZMQ error. */
int pp_broker_run(pp_broker_t *b);

/*  Stops intake (closes intake; submit answers "stopping"), then keeps dispatching what the
    pools hold and what resolvers still send, for at most drain_ms; ends early when no pool
    has anything pending or unacknowledged. Counts and logs what was left
    (dropped_at_exit_total, drain_incomplete). */
void pp_broker_drain(pp_broker_t *b);

#endif

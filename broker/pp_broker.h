/*  pp_broker: the broker's sockets and its one-thread loop.

    Sockets (per common/pp_endpoints.h, all bound from broker.bind): PULL intake,
    ROUTER submit, PUSH resolve, PULL apns_in, PULL mqtt_in, PUSH apns_out, PUSH mqtt_out.
    Client frames from intake/submit are validated (pp_frame), stamped with a message id
    (pp_msgid) and the receive time, and sent to resolvers as RESOLVE jobs; jobs from
    resolvers on apns_in/mqtt_in are checked by kind and moved, not copied, to
    apns_out/mqtt_out.

    Nothing blocks: one thread polls every socket and sends with ZMQ_DONTWAIT. Each output
    (resolve, apns, mqtt) has a bounded FIFO (pp_msgq) for what its socket will not take;
    while an output's FIFO is full, the inputs that feed only that output are not read, so
    backpressure reaches the senders through ZMQ's high-water marks, and the other flows go
    on. Acknowledged submits are answered "overloaded" while the resolve FIFO is full.
    docs/broker.md describes each buffer and what happens when it is full.
*/
#ifndef PP_BROKER_H
#define PP_BROKER_H

#include "pp_config.h"
#include "pp_curve.h"
#include "pp_frame.h"
#include "pp_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  The outputs, each with its FIFO; also the `stage` label of the metrics. */
typedef enum { PP_STAGE_RESOLVE = 0, PP_STAGE_APNS, PP_STAGE_MQTT, PP_STAGE_COUNT } pp_stage_t;

const char *pp_stage_name(pp_stage_t stage);

typedef struct {
    const char *bind; /* base address; lives as long as the configuration */
    int hwm;          /* ZMQ_SNDHWM/ZMQ_RCVHWM of every socket */
    int drain_ms;     /* longest forwarding after SIGTERM */
    int log_rejects_per_s;
    bool have_instance;
    uint64_t instance;
    pp_frame_limits_t limits;
    size_t queue_msgs[PP_STAGE_COUNT];
    size_t queue_bytes[PP_STAGE_COUNT];
} pp_broker_config_t;

/*  Reads the "broker" section (except metrics_port/metrics_address, which pp_proc_ready
    reads) into *cfg. Problems are recorded in config (pp_config_fail) naming the key. */
void pp_broker_config_read(pp_config_t *config, pp_broker_config_t *cfg);

typedef struct pp_broker_t pp_broker_t;

/*  Creates the sockets (CURVE applied from curve, which must outlive the broker), binds
    them and registers the metrics. Returns NULL with a logged error if a socket cannot be
    bound. */
pp_broker_t *pp_broker_new(const pp_broker_config_t *cfg, pp_curve_t *curve, pp_metrics_t *metrics);

/*  Closes the sockets (with the linger set by pp_broker_drain, or 0) and frees everything
    still held; nulls *p. */
void pp_broker_destroy(pp_broker_t **p);

/*  Runs the loop until pp_proc_stopping(). Returns 0, or -1 on a fatal ZMQ error. */
int pp_broker_run(pp_broker_t *b);

/*  Stops intake (closes intake and submit), then keeps forwarding what the broker holds
    and what resolvers still send on apns_in/mqtt_in, for at most drain_ms; ends early when
    every FIFO is empty and the resolver inputs have been quiet for a short while. Sets each
    output's linger to the drain time left, and counts what could not be forwarded. */
void pp_broker_drain(pp_broker_t *b);

#endif

/*  pp_broker_config: the broker's configuration, the "broker" section of the one JSON
    file (docs/broker.md lists every key), read and checked here so that pp_broker.c holds
    only the sockets and the loop, like the other stages' pp_<stage>_config.c. Every
    problem is recorded on the pp_config_t naming its key; pp_proc_ready then exits 2.
*/
#ifndef PP_BROKER_CONFIG_H
#define PP_BROKER_CONFIG_H

#include "pp_config.h"
#include "pp_frame.h"
#include "pp_jetstream.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  The worker pools; also the `stage` label of the metrics. */
typedef enum { PP_STAGE_RESOLVE = 0, PP_STAGE_APNS, PP_STAGE_MQTT, PP_STAGE_COUNT } pp_stage_t;

const char *pp_stage_name(pp_stage_t stage);

typedef struct {
    const char *bind;      /* base address; lives as long as the configuration */
    int hwm;               /* ZMQ_SNDHWM/ZMQ_RCVHWM of intake and submit */
    int drain_ms;          /* longest dispatching after SIGTERM */
    uint32_t heartbeat_ms; /* the links' heartbeat (workers must use the same) */
    uint32_t timeout_ms;   /* a worker unheard this long is dead; 0: 3 x heartbeat_ms */
    /* broker.link.max_workers_per_key: workers one CURVE key may register per pool */
    uint32_t max_workers_per_key;
    int log_rejects_per_s;
    bool have_instance;
    uint64_t instance;
    pp_frame_limits_t limits;
    size_t queue_msgs[PP_STAGE_COUNT];
    size_t queue_bytes[PP_STAGE_COUNT];
    bool durable;            /* broker.durability "jetstream": accepted means stored */
    pp_jetstream_cfg_t js;   /* broker.jetstream.* */
    char servers_text[2048]; /* a comma-separated servers string, split into js.servers */
} pp_broker_config_t;

/*  Reads the "broker" section (except metrics_port/metrics_address, which pp_proc_ready
    reads) into *cfg. broker.bind defaults to default_bind (the process's broker_address,
    pp_proc_broker_address), or PP_DEFAULT_BROKER_ADDRESS when NULL. Problems are recorded
    in config (pp_config_fail) naming the key. */
void pp_broker_config_read(pp_config_t *config, pp_broker_config_t *cfg, const char *default_bind);

#endif

/*  pp_endpoints: every socket of the broker from its one address.

    A process joins the pipeline knowing only the broker's address, e.g.
    "tcp://broker.internal:5560". The broker's sockets sit on consecutive ports from there
    (for ipc:// addresses, on paths with a suffix), in this fixed order:

      offset  role       broker socket  peer                 carries
      +0      intake     PULL (bind)    client PUSH          client frames, fire-and-forget
      +1      submit     ROUTER (bind)  client DEALER/REQ    client frames, acknowledged
      +2      resolve    PUSH (bind)    resolver PULL        RESOLVE jobs
      +3      apns_in    PULL (bind)    resolver PUSH        APNS jobs from resolvers
      +4      mqtt_in    PULL (bind)    resolver PUSH        MQTT jobs from resolvers
      +5      apns_out   PUSH (bind)    apns-sender PULL     APNS jobs to senders
      +6      mqtt_out   PUSH (bind)    mqtt-sender PULL     MQTT jobs to senders

    The broker binds "tcp://<bind host>:<port>"; the others connect to the same ports on the
    broker's host.
*/
#ifndef PP_ENDPOINTS_H
#define PP_ENDPOINTS_H

#include <stddef.h>

typedef enum {
    PP_EP_INTAKE = 0,
    PP_EP_SUBMIT,
    PP_EP_RESOLVE,
    PP_EP_APNS_IN,
    PP_EP_MQTT_IN,
    PP_EP_APNS_OUT,
    PP_EP_MQTT_OUT,
    PP_EP_COUNT
} pp_ep_t;

#define PP_DEFAULT_BROKER_ADDRESS "tcp://127.0.0.1:5560"

/*  Writes the endpoint for role `which` derived from base ("tcp://host:port" or
    "ipc:///path") into out. Returns 0, or -1 if base is not of that form. */
int pp_endpoint(const char *base, pp_ep_t which, char *out, size_t outlen);

/*  The role's name as used in logs, metrics and the table above. */
const char *pp_endpoint_name(pp_ep_t which);

#endif

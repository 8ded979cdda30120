/*  pp_endpoints: every socket of the broker from its one address.

    A process joins the pipeline knowing only the broker's address, e.g.
    "tcp://broker.internal:5560". The broker's sockets sit on consecutive ports from there
    (for ipc:// addresses, on paths with a suffix), in this fixed order:

      offset  role       broker socket   peer                 carries
      +0      intake     PULL (bind)     client PUSH          client frames, fire-and-forget
      +1      submit     ROUTER (bind)   client DEALER/REQ    client frames, acknowledged
      +2      resolve    ROUTER (bind)   resolver pp_link     RESOLVE jobs (link hub, "J");
                                                              the resolvers' APNS and MQTT
                                                              jobs come back on it ("O")
      +3      apns_in    reserved        -                    unused (was APNS jobs from
                                                              resolvers; now "O" on resolve)
      +4      mqtt_in    reserved        -                    unused (likewise for MQTT)
      +5      apns_out   ROUTER (bind)   apns-sender pp_link  APNS jobs to senders (link hub)
      +6      mqtt_out   ROUTER (bind)   mqtt-sender pp_link  MQTT jobs to senders (link hub)

    The link hubs (broker/pp_dispatch.h) and workers (common/pp_link.h) speak the
    acknowledged, credit-based protocol of docs/link-protocol.md. apns_in and mqtt_in keep
    their enum values so that the port layout does not shift; nothing binds them.

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
/* broker.drain_ms when the config does not set it; the launcher checks its stop timeout
   against the same value. */
#define PP_DEFAULT_BROKER_DRAIN_MS 5000

/*  Writes the endpoint for role `which` derived from base ("tcp://host:port" or
    "ipc:///path") into out. Returns 0, or -1 if base is not of that form. */
int pp_endpoint(const char *base, pp_ep_t which, char *out, size_t outlen);

/*  The role's name as used in logs, metrics and the table above. */
const char *pp_endpoint_name(pp_ep_t which);

#endif

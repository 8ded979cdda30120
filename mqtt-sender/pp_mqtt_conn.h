/*  pp_mqtt_conn: one MQTT connection (paho's MQTTAsync), its callbacks turned into events
    for the sender's ZMQ loop.

    paho runs its callbacks on its own threads. Each callback only appends an event to a
    mutex-protected queue and, when the queue was empty, writes to an eventfd; the loop
    watches that fd in zmq_poll (which accepts raw fds) and takes the events in a batch.
    Nothing in a callback blocks or touches the loop's state.

    Publishes are identified by a caller-chosen 56-bit ticket, passed to paho as the
    callback context, so a completion names exactly the publish it belongs to even when it
    arrives late (for example after the connection was lost and the caller already
    re-queued the publish): the caller compares tickets and ignores stale ones.

    No paho persistence (MQTTCLIENT_PERSISTENCE_NONE) and no automatic reconnect: the
    sender keeps its own table of unacknowledged publishes and decides when to reconnect.
*/
#ifndef PP_MQTT_CONN_H
#define PP_MQTT_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pp_mqtt_conn_t pp_mqtt_conn_t;

typedef struct {
    const char *uri;       /* tcp://, ssl://, mqtt://, mqtts:// */
    const char *client_id; /* must be unique per connection on the broker */
    const char *username;  /* NULL or "": none */
    const char *password;  /* NULL or "": none */
    const char *ca_file;   /* TLS: trusted CAs (PEM); NULL: system store */
    const char *cert_file; /* TLS: client certificate (PEM), optional */
    const char *key_file;  /* TLS: client key (PEM), optional */
    bool tls_verify;       /* TLS: verify the server's certificate and host name */
    int keepalive_s;
    bool clean_session;
    int connect_timeout_s;
    int max_inflight; /* paho's maxInflight: the sender's window */
} pp_mqtt_conn_opts_t;

typedef enum {
    PP_MQTT_EV_CONNECTED = 1,
    PP_MQTT_EV_CONNECT_FAILED, /* code: paho code or CONNACK return code; text */
    PP_MQTT_EV_LOST,           /* text: paho's cause, if any */
    PP_MQTT_EV_PUB_OK,         /* ticket */
    PP_MQTT_EV_PUB_FAILED,     /* ticket, code */
    PP_MQTT_EV_DISCONNECTED,   /* our own disconnect completed (or failed) */
} pp_mqtt_ev_type_t;

typedef struct {
    pp_mqtt_ev_type_t type;
    int code;
    uint64_t ticket;
    char text[96]; /* connect/lost events only; printable via pp_log_quote */
} pp_mqtt_ev_t;

#define PP_MQTT_TICKET_MAX ((UINT64_C(1) << 56) - 1)

/*  Creates the paho client (no connection yet). Returns NULL with a reason in err (bad URI,
    TLS requested but unsupported, too many connections in this process). */
pp_mqtt_conn_t *pp_mqtt_conn_new(const pp_mqtt_conn_opts_t *opts, char *err, size_t errlen);

/*  Destroys the paho client; no callback runs afterwards. Nulls *p. */
void pp_mqtt_conn_destroy(pp_mqtt_conn_t **p);

/*  The fd that becomes readable when events are waiting (for zmq_poll). */
int pp_mqtt_conn_fd(const pp_mqtt_conn_t *c);

/*  Starts connecting; the outcome arrives as CONNECTED or CONNECT_FAILED. Returns 0, or a
    paho error code if the attempt could not even start. */
int pp_mqtt_conn_connect(pp_mqtt_conn_t *c);

/*  Hands one publish to paho (which copies topic and payload). topic must be
    NUL-terminated. The outcome arrives as PUB_OK or PUB_FAILED with this ticket. Returns 0,
    or paho's error code (MQTTASYNC_DISCONNECTED, MQTTASYNC_BAD_UTF8_STRING, ...), in which
    case no event follows. */
int pp_mqtt_conn_publish(pp_mqtt_conn_t *c, const char *topic, const void *payload, size_t len,
                         int qos, uint64_t ticket);

/*  Starts a clean MQTT disconnect, giving paho timeout_ms to finish; a DISCONNECTED event
    follows. Returns 0, or paho's error code (e.g. not connected). */
int pp_mqtt_conn_disconnect(pp_mqtt_conn_t *c, int timeout_ms);

/*  How many events must be waiting before the fd is signalled (at least 1; connection
    events always signal). A loop that is waiting for free window slots asks for a batch, so
    it wakes once per batch of completions rather than once per completion. */
void pp_mqtt_conn_set_wake(pp_mqtt_conn_t *c, size_t threshold);

/*  Takes every waiting event. *events stays valid until the next call. Returns the
    count. */
size_t pp_mqtt_conn_take(pp_mqtt_conn_t *c, const pp_mqtt_ev_t **events);

/*  paho's text for an error code. */
const char *pp_mqtt_conn_strerror(int code);

#endif

/*  pp_h2conn: one TLS + HTTP/2 client connection (OpenSSL + nghttp2), non-blocking.

    The owner's loop polls pp_h2conn_fd() for pp_h2conn_events() and calls
    pp_h2conn_on_io() with what happened, pp_h2conn_flush() after submitting requests,
    and pp_h2conn_tick() now and then (connect timeout, idle PING, PING timeout).

    Life: pp_h2conn_new() starts looking the host up (pp_apns_dns: in a thread, so that a
    DNS that does not answer never blocks the loop; the state is RESOLVING, polled through
    the lookup's descriptor, and given up after timeout_ms: "resolve_timeout"); then a
    non-blocking TCP connect; then the TLS handshake (TLS
    1.2+, ALPN "h2", server verified by the SSL_CTX's CA store and the host name, SNI);
    then READY. nghttp2 does the framing through nghttp2_session_mem_recv/mem_send; this
    module moves the bytes between it and SSL_read/SSL_write.

    Requests are POSTs with a body that the caller keeps alive until the request ends. Each
    request ends exactly once, by one of the callbacks:
      on_response  the server answered (status, body up to 512 bytes);
      on_unsent    the server did not process it: REFUSED_STREAM (for instance after
                   SETTINGS_MAX_CONCURRENT_STREAMS was lowered), cut by GOAWAY (stream id
                   above last-stream-id), or the connection closed before an answer. The
                   owner sends it again.
      on_timeout   no answer within request_timeout_ms of its submission (the server holds
                   the stream, or a zero flow-control window keeps its body from going
                   out): the stream is reset with RST_STREAM(CANCEL) and forgotten; the
                   server may or may not have processed it. After max_timeouts of them in
                   a row with no answer in between, the connection closes ("timeouts").
    After GOAWAY the connection takes no new requests; it closes once its streams are done.
    When the state becomes PP_H2_CLOSED every request has ended; destroy it.
*/
#ifndef PP_H2CONN_H
#define PP_H2CONN_H

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pp_h2conn_t pp_h2conn_t;

typedef enum {
    PP_H2_RESOLVING = 0, /* host name lookup in progress (no socket yet) */
    PP_H2_CONNECTING,    /* TCP connect in progress */
    PP_H2_HANDSHAKE,     /* TLS handshake */
    PP_H2_READY,         /* taking requests */
    PP_H2_GOING_AWAY,    /* GOAWAY received: finishing its streams, no new ones */
    PP_H2_CLOSED
} pp_h2conn_state_t;

#define PP_H2_MAX_BODY 512

typedef struct {
    void (*on_ready)(void *owner, pp_h2conn_t *c);
    void (*on_response)(void *owner, pp_h2conn_t *c, void *req, int status, const char *body,
                        size_t body_len);
    void (*on_unsent)(void *owner, pp_h2conn_t *c, void *req, uint32_t error_code);
    void (*on_goaway)(void *owner, pp_h2conn_t *c, uint32_t error_code, const char *reason);
    void (*on_timeout)(void *owner, pp_h2conn_t *c, void *req, uint64_t waited_ms);
} pp_h2conn_callbacks_t;

typedef struct {
    const char *host; /* DNS name or IP literal; also SNI and the name verified */
    int port;
    SSL_CTX *ssl_ctx;            /* with the CA store, the client certificate if any, ALPN h2 */
    unsigned addr_index;         /* which of the host's addresses to try (rotates on failure) */
    uint32_t ping_interval_ms;   /* idle time before an HTTP/2 PING; 0 = never */
    uint32_t timeout_ms;         /* lookup; connect + handshake; PING answer (each) */
    uint32_t request_timeout_ms; /* submission to answer; 0 = no deadline */
    uint32_t max_timeouts;       /* timeouts in a row that close the connection; 0 = never */
    const char *label;           /* for logs, e.g. "com.example.app/production#0" */
} pp_h2conn_config_t;

/*  Starts resolving and connecting. Returns NULL if the lookup cannot be started, or an IP
    literal host cannot be connected to at once (logged); the owner retries later with
    backoff. A lookup that fails or times out later closes the connection instead. */
pp_h2conn_t *pp_h2conn_new(const pp_h2conn_config_t *cfg, const pp_h2conn_callbacks_t *cb,
                           void *owner);

/*  Closes (if not yet closed: every open request ends with on_unsent) and frees. */
void pp_h2conn_destroy(pp_h2conn_t **p);

pp_h2conn_state_t pp_h2conn_state(const pp_h2conn_t *c);
/*  The descriptor to poll: the socket, or while RESOLVING the lookup's (POLLIN when the
    answer is in); -1 once closed. */
int pp_h2conn_fd(const pp_h2conn_t *c);
/*  POLLIN and/or POLLOUT, what the connection waits for now. */
short pp_h2conn_events(const pp_h2conn_t *c);
/*  Handles readiness of the socket (revents from poll). */
void pp_h2conn_on_io(pp_h2conn_t *c, short revents, uint64_t now_ms);
/*  Writes what nghttp2 has queued, as far as the socket takes it. */
void pp_h2conn_flush(pp_h2conn_t *c);
/*  Timers: lookup and connect timeouts, PING when idle, PING timeout, request deadlines. */
void pp_h2conn_tick(pp_h2conn_t *c, uint64_t now_ms);
/*  The next time tick() has something to do, or UINT64_MAX. */
uint64_t pp_h2conn_next_timer(const pp_h2conn_t *c);

/*  How many more requests may be submitted now: the server's
    SETTINGS_MAX_CONCURRENT_STREAMS minus the open streams; 0 unless READY, and 0 until the
    server's first SETTINGS arrives (a server that allows 0 streams would refuse a request
    sent before them, and each such refusal costs the notification one of its resends). */
size_t pp_h2conn_capacity(const pp_h2conn_t *c);
/*  Requests waiting for an answer (not those reset after their deadline). */
size_t pp_h2conn_in_flight(const pp_h2conn_t *c);
/*  True once the server's first SETTINGS frame arrived. */
bool pp_h2conn_settings_received(const pp_h2conn_t *c);
/*  Request timeouts since the last answer on this connection. */
uint32_t pp_h2conn_timeout_streak(const pp_h2conn_t *c);
/*  The server's current SETTINGS_MAX_CONCURRENT_STREAMS (0 before its SETTINGS). */
uint32_t pp_h2conn_max_streams(const pp_h2conn_t *c);
/*  True once a response arrived on this connection (used to reset reconnect backoff). */
bool pp_h2conn_had_response(const pp_h2conn_t *c);
/*  Why it closed ("eof", "goaway", "tls_error", ...), or "" while open. */
const char *pp_h2conn_close_reason(const pp_h2conn_t *c);

/*  Submits a POST with the given headers (copied) and body (borrowed until the request
    ends). Returns 0, or -1 if the connection is not READY or nghttp2 refused it; the
    request then has not started and no callback will come for it. */
int pp_h2conn_submit(pp_h2conn_t *c, const nghttp2_nv *nva, size_t nvlen, const void *body,
                     size_t body_len, void *req);

/*  Ends the connection now: every open request ends with on_unsent. */
void pp_h2conn_close(pp_h2conn_t *c, const char *reason);

#endif

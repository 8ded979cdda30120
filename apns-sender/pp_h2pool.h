/*  pp_h2pool: the connections of one (app, environment) and the notifications waiting for
    a stream on them.

    Notifications are queued (FIFO; ones that come back unprocessed go to the front) and
    handed to the READY connections as far as each one's server-given stream limit allows.
    The pool opens its `connections` connections when it is first used and keeps them open;
    a connection that closes is replaced after a backoff that grows with each connection
    that ended without a single answer (never a tight loop), and is 0 after a healthy one
    (say, closed by GOAWAY). Its requests that were not answered come back to the queue.

    Deadlines (request_timeout_ms): a request unanswered that long after it went out on a
    stream is reset and handed to the owner (on_timeout, stage "stream"); a connection with
    max_timeouts of those in a row and no answer between is closed and replaced
    (conn_replaced{reason="timeouts"}). A notification that waits in the queue that long
    while the pool sends nothing at all (no connection, SETTINGS_MAX_CONCURRENT_STREAMS 0,
    every stream taken) is handed to the owner too (stage "queue"); a queue that drains, if
    slowly, is not stuck. A READY connection that allows no stream at all while
    notifications wait is closed and replaced after request_timeout_ms
    (conn_replaced{reason="no_streams"}). New requests go to connections without a timeout
    streak first, so that a retry does not land on the connection that just failed it.

    The owner's loop: pp_h2pool_fill_poll() / zmq_poll / pp_h2pool_on_poll(), then
    pp_h2pool_run() (timers, reconnects, dispatch, writes).
*/
#ifndef PP_H2POOL_H
#define PP_H2POOL_H

#include "pp_apns_notif.h"
#include "pp_h2conn.h"
#include "pp_metrics.h"

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

typedef struct {
    /* An answer for n; the owner now owns n. */
    void (*on_response)(void *owner, pp_h2pool_t *pool, pp_apns_notif_t *n, int status,
                        const char *body, size_t body_len);
    /* n cannot be sent: why is "expired", "too_many_resends" or "out_of_memory"; the
       owner now owns n. */
    void (*on_drop)(void *owner, pp_h2pool_t *pool, pp_apns_notif_t *n, const char *why);
    /* n missed its deadline: stage "stream" (it was sent, its stream was reset: APNs may
       have it) or "queue" (never sent); waited_ms since it was sent or queued. The owner
       now owns n. */
    void (*on_timeout)(void *owner, pp_h2pool_t *pool, pp_apns_notif_t *n, const char *stage,
                       uint64_t waited_ms);
} pp_h2pool_callbacks_t;

typedef struct {
    pp_apns_app_t *app;
    int env;          /* PP_ENV_* */
    const char *host; /* of this environment */
    int port;
    int connections;
    uint32_t ping_interval_ms;
    uint32_t timeout_ms;
    uint32_t request_timeout_ms; /* see above; 0 = no deadlines */
    uint32_t max_timeouts;       /* stream timeouts in a row that replace a connection */
    uint32_t reconnect_min_ms, reconnect_max_ms;
    uint16_t max_resends; /* unprocessed returns before a notification is dropped */
    pp_metric_t *sent, *resent, *reconnects, *goaways; /* shared counters */
    pp_metric_t *replaced_timeouts, *replaced_no_streams;
} pp_h2pool_config_t;

pp_h2pool_t *pp_h2pool_new(const pp_h2pool_config_t *cfg, const pp_h2pool_callbacks_t *cb,
                           void *owner);
/*  Closes the connections; queued and unanswered notifications are freed (the owner
    counts them before, with pp_h2pool_queued/in_flight). */
void pp_h2pool_destroy(pp_h2pool_t **p);

void pp_h2pool_push(pp_h2pool_t *pool, pp_apns_notif_t *n);
void pp_h2pool_push_front(pp_h2pool_t *pool, pp_apns_notif_t *n);

size_t pp_h2pool_queued(const pp_h2pool_t *pool);
/*  "<ident>/<sandbox|production>", for logs. */
const char *pp_h2pool_label(const pp_h2pool_t *pool);
size_t pp_h2pool_in_flight(const pp_h2pool_t *pool);
size_t pp_h2pool_ready_connections(const pp_h2pool_t *pool);
/*  Sum of the READY connections' current SETTINGS_MAX_CONCURRENT_STREAMS (for logs). */
size_t pp_h2pool_stream_limit(const pp_h2pool_t *pool);

/*  Writes one poll item per open connection into items (room for max); returns how many. */
size_t pp_h2pool_fill_poll(pp_h2pool_t *pool, zmq_pollitem_t *items, size_t max);
/*  Handles the revents of the items that fill_poll wrote. */
void pp_h2pool_on_poll(pp_h2pool_t *pool, const zmq_pollitem_t *items, size_t n, uint64_t now_ms);
/*  Timers, closed connections, reconnects, dispatch of queued notifications, writes. */
void pp_h2pool_run(pp_h2pool_t *pool, uint64_t now_ms, int64_t now_wall_s);
/*  When run() next has a timer to serve (connection timers, request and queue deadlines,
    reconnects), or UINT64_MAX. */
uint64_t pp_h2pool_next_timer(const pp_h2pool_t *pool);

/*  Ends all connections now (their requests come back to the queue); used on shutdown. */
void pp_h2pool_close_all(pp_h2pool_t *pool);

#endif

/*  pp_userdb: the resolver's access to the old service's Redis data (hiredis, blocking).

        SCARD    GroupAppleUser:<gid>             size of a group
        SMEMBERS GroupAppleUser:<gid>             small groups, one reply
        SSCAN    GroupAppleUser:<gid> c COUNT k   large groups, page by page
        HMGET    User:<uid> app_token app_ident app_version app_focus   (pipelined)

    Every call either succeeds (returns 0) or reports that Redis is unavailable (returns -1:
    connection refused or lost, timeout, LOADING and other transient error replies); the
    connection is then dropped and the caller calls pp_userdb_recover() and repeats the same
    call, which is safe because every call only reads. Replies of the wrong shape are not
    failures: they are counted in bad_reply_total{kind=...}, logged (rate-limited) and read
    as "nothing there" (no members, no user fields), so one bad key never stalls the stream.
    Not every failure surfaces at once: a call made while HMGET rounds are in flight fails.

    Calls block, but never in one wait for longer than 50 ms: between Redis round trips and
    every 50 ms while a reply is awaited the idle callback (pp_userdb_set_idle) runs, so a
    caller on a heartbeat link keeps it alive however slow Redis is. A call fails with a
    timeout after command_timeout_ms without progress (no byte written or read).

    Members returned are checked (strings, at most PP_ID_MAX_LEN bytes, valid UTF-8, usable
    as an MQTT topic level); bad ones are dropped and counted. Returned strings point into
    replies the userdb keeps: group members until the next group call, user fields until the
    next pp_userdb_users() call.
*/
#ifndef PP_USERDB_H
#define PP_USERDB_H

#include "pp_job.h"
#include "pp_metrics.h"
#include "pp_user_rule.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    const char *host;        /* "127.0.0.1" */
    int port;                /* 6379 */
    const char *unix_socket; /* NULL or "": use host and port */
    const char *password;    /* NULL or "": no AUTH */
    int db;                  /* SELECT when not 0 */
    int connect_timeout_ms;
    int command_timeout_ms; /* longest wait without progress (no byte written or read) */
    int backoff_max_ms;     /* cap of the exponential backoff between attempts */
    size_t pipeline;        /* most commands sent in one pipelined round */
} pp_userdb_cfg_t;

typedef struct pp_userdb_t pp_userdb_t;

/*  Gives back true when the caller wants to stop waiting for Redis. */
typedef bool(pp_userdb_give_up_fn)(void *ctx);

/*  Called while a call waits for Redis (see above). It must not call the userdb. */
typedef void(pp_userdb_idle_fn)(void *ctx);

/*  Creates the userdb; does not connect yet. The strings in cfg must outlive it. */
pp_userdb_t *pp_userdb_new(const pp_userdb_cfg_t *cfg, pp_metrics_t *metrics);
void pp_userdb_destroy(pp_userdb_t **p);

/*  Sets the idle callback (fn NULL: none, the default). The userdb knows nothing of the
    link: the resolver passes a function that ticks it. */
void pp_userdb_set_idle(pp_userdb_t *db, pp_userdb_idle_fn *fn, void *ctx);

/*  True while a connection is open. */
bool pp_userdb_connected(const pp_userdb_t *db);

/*  Number of connections opened so far: a change tells a caller that state held by the
    server (an SSCAN cursor) may be gone. */
uint64_t pp_userdb_session(const pp_userdb_t *db);

/*  Waits for Redis: sleeps the current backoff (0 the first time; then 50 ms doubling up to
    backoff_max_ms), connects (AUTH, SELECT), and repeats until connected or give_up() says
    stop (checked at least every 50 ms). Returns 0 when connected, -1 when it gave up. */
int pp_userdb_recover(pp_userdb_t *db, pp_userdb_give_up_fn *give_up, void *ctx);

/*  HMGETs the n users (n <= cfg.pipeline; ids already checked with pp_user_id_valid) in one
    pipelined round and fills out[0..n-1].
    Users without a hash get empty fields. Returns 0, or -1 when Redis is unavailable. */
int pp_userdb_users(pp_userdb_t *db, const pp_str_t *uids, size_t n, pp_user_fields_t *out);

/*  The same in two halves, so that Redis works on the next round while the caller handles
    this one: _send queues a round of n users (1..cfg.pipeline; at most two rounds in
    flight), _recv reads the oldest round's replies into out (its *n_out entries; uids are
    that round's ids, for log lines). Fields stay valid until two more rounds were read.
    On -1 every round in flight is lost: recover, then send again from the first round whose
    replies were not handled. */
int pp_userdb_users_send(pp_userdb_t *db, const pp_str_t *uids, size_t n);
int pp_userdb_users_recv(pp_userdb_t *db, const pp_str_t *uids, pp_user_fields_t *out,
                         size_t *n_out);
size_t pp_userdb_users_in_flight(const pp_userdb_t *db);

/*  SCARD of the group's set into *count (0 for a missing key or a key of another type).
    Returns 0 or -1. */
int pp_userdb_group_size(pp_userdb_t *db, pp_str_t gid, long long *count);

/*  SMEMBERS of the group: *members / *n receive its valid members. Returns 0 or -1. */
int pp_userdb_group_members(pp_userdb_t *db, pp_str_t gid, const pp_str_t **members, size_t *n);

/*  One SSCAN step from *cursor (a decimal string, "0" to start) with COUNT count: fills
    *members / *n and writes the next cursor into *cursor ("0" when the scan is complete).
    Returns 0 or -1 (cursor unchanged). */
int pp_userdb_group_scan(pp_userdb_t *db, pp_str_t gid, char cursor[32], size_t count,
                         const pp_str_t **members, size_t *n);

#endif

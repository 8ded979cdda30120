#include "pp_userdb.h"
#include "pp_log.h"

#include <hiredis/hiredis.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { S_BACKOFF_FIRST_MS = 50, S_SLICE_MS = 50 };

/*  Longest single blocking wait (poll, or a socket call after poll said ready, bounded by
    the socket timeout) before the idle callback runs again. Well below the smallest link
    heartbeat that matters (the hub's timeout is 3 heartbeats). */
enum { S_WAIT_SLICE_MS = 50 };

/*  Shapes of reply that count as bad data (bad_reply_total{kind=...}). */
typedef enum {
    K_WRONGTYPE = 0, /* WRONGTYPE: the key holds another type */
    K_NIL,           /* nil where an array was expected */
    K_BAD_ARITY,     /* an array of the wrong length */
    K_BAD_TYPE,      /* an element of the wrong type (not a string) */
    K_HUGE_MEMBER,   /* member longer than PP_ID_MAX_LEN */
    K_BAD_UTF8,      /* member bytes that are not UTF-8 */
    K_BAD_ID,        /* member not usable as an id ('/', '+', '#', control characters) */
    K_BAD_CURSOR,    /* SSCAN cursor that is not a decimal number */
    K_COUNT
} s_kind_t;

static const char *s_kind_names[K_COUNT] = {"wrongtype",   "nil",      "bad_arity", "bad_type",
                                            "huge_member", "bad_utf8", "bad_id",    "bad_cursor"};

struct pp_userdb_t {
    pp_userdb_cfg_t cfg;
    redisContext *c;
    bool unsent; /* commands appended to hiredis' output buffer and not all written yet */
    pp_userdb_idle_fn *idle;
    void *idle_ctx;
    bool ever_connected;
    uint64_t session;
    bool failed_since_connect; /* a failure happened: the next connect is a reconnect */
    int backoff_ms;
    char *out; /* a pipelined round of HMGETs in RESP */
    size_t out_cap;
    /* HMGET rounds: at most two in flight (sent, replies not read yet); the replies of a
       round read are kept in its slot until that slot is used again two rounds later. */
    redisReply **slot_replies[2];
    size_t slot_n[2];
    size_t flight_n[2]; /* sizes of the rounds in flight, oldest first */
    size_t in_flight;
    unsigned next_slot;
    redisReply *group_reply;
    pp_str_t *members;
    size_t members_cap;
    pp_ratelimit_t rl_err;
    pp_ratelimit_t rl_bad;
    pp_metric_t *m_bad[K_COUNT];
    pp_metric_t *m_errors;
    pp_metric_t *m_reconnects;
    pp_metric_t *m_up;
    pp_metric_t *m_looked_up;
    pp_metric_t *m_commands;
};

static void s_register(pp_userdb_t *db, pp_metrics_t *m)
{
    for (int k = 0; k < K_COUNT; k++) {
        char labels[64];
        snprintf(labels, sizeof labels, "kind=\"%s\"", s_kind_names[k]);
        db->m_bad[k] = pp_metrics_counter(m, "bad_reply_total",
                                          "Redis replies of an unexpected shape", labels);
    }
    db->m_errors = pp_metrics_counter(
        m, "redis_errors_total", "Redis failures (connect, I/O, timeout, transient error)", NULL);
    db->m_reconnects =
        pp_metrics_counter(m, "redis_reconnects_total", "Reconnections after a failure", NULL);
    db->m_up = pp_metrics_gauge(m, "redis_up", "1 while connected to Redis", NULL);
    db->m_looked_up =
        pp_metrics_counter(m, "users_looked_up_total", "Users looked up with HMGET", NULL);
    db->m_commands = pp_metrics_counter(m, "redis_commands_total", "Redis commands answered", NULL);
}

pp_userdb_t *pp_userdb_new(const pp_userdb_cfg_t *cfg, pp_metrics_t *metrics)
{
    pp_userdb_t *db = calloc(1, sizeof *db);
    if (!db) return NULL;
    db->cfg = *cfg;
    if (db->cfg.pipeline == 0) db->cfg.pipeline = 1;
    db->slot_replies[0] = calloc(db->cfg.pipeline, sizeof(redisReply *));
    db->slot_replies[1] = calloc(db->cfg.pipeline, sizeof(redisReply *));
    /* per command: 40 bytes of RESP around the key, the key, and the field names */
    db->out_cap = db->cfg.pipeline * (128 + PP_ID_MAX_LEN);
    db->out = malloc(db->out_cap);
    if (!db->slot_replies[0] || !db->slot_replies[1] || !db->out) {
        free(db->slot_replies[0]);
        free(db->slot_replies[1]);
        free(db->out);
        free(db);
        return NULL;
    }
    db->rl_err = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 5);
    db->rl_bad = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 10);
    s_register(db, metrics);
    return db;
}

static void s_free_slot(pp_userdb_t *db, unsigned slot)
{
    for (size_t i = 0; i < db->slot_n[slot]; i++)
        freeReplyObject(db->slot_replies[slot][i]);
    db->slot_n[slot] = 0;
}

static void s_free_user_replies(pp_userdb_t *db)
{
    s_free_slot(db, 0);
    s_free_slot(db, 1);
    db->in_flight = 0;
}

static void s_free_group_reply(pp_userdb_t *db)
{
    if (db->group_reply) freeReplyObject(db->group_reply);
    db->group_reply = NULL;
}

static void s_disconnect(pp_userdb_t *db)
{
    db->in_flight = 0; /* their replies will never come */
    db->unsent = false;
    if (db->c) redisFree(db->c);
    db->c = NULL;
    pp_metric_set(db->m_up, 0);
}

void pp_userdb_destroy(pp_userdb_t **p)
{
    if (!p || !*p) return;
    pp_userdb_t *db = *p;
    s_free_user_replies(db);
    s_free_group_reply(db);
    s_disconnect(db);
    free(db->slot_replies[0]);
    free(db->slot_replies[1]);
    free(db->out);
    free(db->members);
    free(db);
    *p = NULL;
}

bool pp_userdb_connected(const pp_userdb_t *db)
{
    return db->c != NULL;
}

/*  Records a failure: count, rate-limited log, drop the connection, grow the backoff. */
static int s_fail(pp_userdb_t *db, const char *what, const char *detail)
{
    pp_metric_inc(db->m_errors);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&db->rl_err, &suppressed)) {
        char q[160];
        pp_warn("redis_error", "op=%s error=%s suppressed=%u", what,
                pp_log_quote(detail, strlen(detail), 120, q, sizeof q), suppressed);
    }
    s_disconnect(db);
    db->failed_since_connect = true;
    if (db->backoff_ms == 0)
        db->backoff_ms = S_BACKOFF_FIRST_MS;
    else if (db->backoff_ms < db->cfg.backoff_max_ms)
        db->backoff_ms = db->backoff_ms * 2 > db->cfg.backoff_max_ms ? db->cfg.backoff_max_ms
                                                                     : db->backoff_ms * 2;
    return -1;
}

static int s_io_fail(pp_userdb_t *db, const char *what)
{
    const char *detail = db->c && db->c->err ? db->c->errstr : "connection lost";
    char copy[128];
    snprintf(copy, sizeof copy, "%s", detail);
    return s_fail(db, what, copy);
}

/*  A call succeeded: Redis is healthy again. */
static void s_ok(pp_userdb_t *db, size_t commands)
{
    db->backoff_ms = 0;
    pp_metric_add(db->m_commands, commands);
}

static void s_bad(pp_userdb_t *db, s_kind_t kind, const char *key, pp_str_t id)
{
    pp_metric_inc(db->m_bad[kind]);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&db->rl_bad, &suppressed)) {
        char q[96];
        pp_warn("redis_bad_reply", "kind=%s key=%s:%s suppressed=%u", s_kind_names[kind], key,
                pp_log_quote(id.ptr, id.len, 64, q, sizeof q), suppressed);
    }
}

static void s_sleep_ms(int ms)
{
    /* A signal ends the sleep early (EINTR) so the caller sees its stop flag sooner. */
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

void pp_userdb_set_idle(pp_userdb_t *db, pp_userdb_idle_fn *fn, void *ctx)
{
    db->idle = fn;
    db->idle_ctx = ctx;
}

static void s_idle(pp_userdb_t *db)
{
    if (db->idle) db->idle(db->idle_ctx);
}

/*  Waits up to S_WAIT_SLICE_MS for the socket to be ready for events. Returns 1 when ready
    (or in error/hung up: the next read or write reports it), 0 when not (or interrupted). */
static int s_poll(pp_userdb_t *db, short events)
{
    struct pollfd p = {.fd = db->c->fd, .events = events, .revents = 0};
    int rc = poll(&p, 1, S_WAIT_SLICE_MS);
    return rc > 0 ? 1 : 0; /* -1 is EINTR (or a bad fd, which the read then reports) */
}

/*  The next reply, read the way redisGetReply reads it (write out every command appended,
    then read until the reader has a whole reply) but never blocking longer than one slice:
    between slices the idle callback runs (the resolver ticks its link there), and the wait
    is given up after command_timeout_ms without progress (no byte written or read), as the
    socket timeout alone did before. Only public hiredis calls are used (redisBufferWrite,
    redisBufferRead, redisGetReplyFromReader): a partly read reply stays in hiredis' reader
    between slices. Not done instead: a socket timeout of one slice with redisGetReply
    retried, because a timed out read sets the context's error for good (hiredis: a context
    with an error cannot be used again), so the reply in progress would be lost.
    Returns the reply (the caller frees it), or NULL with the connection dropped. */
static redisReply *s_get_reply(pp_userdb_t *db, const char *what)
{
    uint64_t last_progress = 0; /* 0 until the reply has to be waited for */
    for (;;) {
        void *r = NULL;
        if (redisGetReplyFromReader(db->c, &r) != REDIS_OK) {
            s_io_fail(db, what);
            return NULL;
        }
        if (r) return r; /* already read (the replies of a pipelined round): no wait */
        if (last_progress == 0) {
            s_idle(db); /* a round trip begins: between round trips the link is ticked */
            last_progress = pp_mono_ms();
        }
        bool ready;
        if (db->unsent) {
            ready = s_poll(db, POLLOUT) > 0;
            int done = 0;
            if (ready && redisBufferWrite(db->c, &done) != REDIS_OK) {
                s_io_fail(db, what);
                return NULL;
            }
            db->unsent = !done;
        } else {
            ready = s_poll(db, POLLIN) > 0;
            if (ready && redisBufferRead(db->c) != REDIS_OK) {
                s_io_fail(db, what);
                return NULL;
            }
        }
        uint64_t now = pp_mono_ms();
        if (ready) {
            last_progress = now;
            continue;
        }
        s_idle(db);
        if (now - last_progress >= (uint64_t)db->cfg.command_timeout_ms) {
            s_fail(db, what, "timeout");
            return NULL;
        }
    }
}

/*  Appends one command (printf-like, as redisCommand) and reads its reply. */
static redisReply *s_command(pp_userdb_t *db, const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAppendCommand(db->c, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        s_io_fail(db, what);
        return NULL;
    }
    db->unsent = true;
    return s_get_reply(db, what);
}

/*  Sends one command and checks its reply is a status "OK" (AUTH, SELECT). */
static int s_setup_command(pp_userdb_t *db, const char *what, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int sent = redisvAppendCommand(db->c, fmt, ap);
    va_end(ap);
    if (sent != REDIS_OK) return s_io_fail(db, what);
    db->unsent = true;
    redisReply *r = s_get_reply(db, what);
    if (!r) return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR)
        rc = s_fail(db, what, r->str);
    else if (r->type != REDIS_REPLY_STATUS)
        rc = s_fail(db, what, "unexpected reply");
    freeReplyObject(r);
    return rc;
}

static struct timeval s_tv(int ms)
{
    return (struct timeval){ms / 1000, (ms % 1000) * 1000};
}

static int s_connect(pp_userdb_t *db)
{
    const pp_userdb_cfg_t *cfg = &db->cfg;
    struct timeval ct = s_tv(cfg->connect_timeout_ms);
    bool unix_sock = cfg->unix_socket && cfg->unix_socket[0];
    db->c = unix_sock ? redisConnectUnixWithTimeout(cfg->unix_socket, ct)
                      : redisConnectWithTimeout(cfg->host, cfg->port, ct);
    if (!db->c) return s_fail(db, "connect", "out of memory");
    if (db->c->err) return s_io_fail(db, "connect");
    /* A backstop: s_get_reply only reads or writes once poll said the socket is ready, so
       no socket call should wait; if one does, it waits at most one slice. */
    int io_ms =
        cfg->command_timeout_ms < S_WAIT_SLICE_MS ? cfg->command_timeout_ms : S_WAIT_SLICE_MS;
    if (redisSetTimeout(db->c, s_tv(io_ms)) != REDIS_OK) return s_io_fail(db, "connect");
    if (cfg->password && cfg->password[0] &&
        s_setup_command(db, "auth", "AUTH %s", cfg->password) != 0)
        return -1;
    if (cfg->db != 0 && s_setup_command(db, "select", "SELECT %d", cfg->db) != 0) return -1;
    pp_metric_set(db->m_up, 1);
    if (db->ever_connected && db->failed_since_connect) pp_metric_inc(db->m_reconnects);
    pp_info(db->ever_connected ? "redis_reconnected" : "redis_connected", "where=%s:%d",
            unix_sock ? cfg->unix_socket : cfg->host, unix_sock ? 0 : cfg->port);
    db->ever_connected = true;
    db->failed_since_connect = false;
    db->session++;
    return 0;
}

uint64_t pp_userdb_session(const pp_userdb_t *db)
{
    return db->session;
}

int pp_userdb_recover(pp_userdb_t *db, pp_userdb_give_up_fn *give_up, void *ctx)
{
    while (!db->c) {
        for (int slept = 0; slept < db->backoff_ms; slept += S_SLICE_MS) {
            if (give_up(ctx)) return -1;
            s_sleep_ms(db->backoff_ms - slept < S_SLICE_MS ? db->backoff_ms - slept : S_SLICE_MS);
        }
        if (give_up(ctx)) return -1;
        s_connect(db);
    }
    return 0;
}

/*  Error replies: WRONGTYPE is bad data (counted, read as empty); every other error
    (LOADING, BUSY, NOAUTH after a restart, ...) is treated as Redis being unavailable.
    Returns 1 for bad data, -1 for unavailable. */
static int s_error_reply(pp_userdb_t *db, const redisReply *r, const char *what, const char *key,
                         pp_str_t id)
{
    if (strncmp(r->str, "WRONGTYPE", 9) == 0) {
        s_bad(db, K_WRONGTYPE, key, id);
        return 1;
    }
    return s_fail(db, what, r->str);
}

static pp_str_t s_field(pp_userdb_t *db, const redisReply *e, pp_str_t uid)
{
    if (e->type == REDIS_REPLY_STRING) return (pp_str_t){e->str, e->len};
    if (e->type != REDIS_REPLY_NIL) s_bad(db, K_BAD_TYPE, "User", uid);
    return (pp_str_t){"", 0};
}

/*  Reads one HMGET reply into *f. Returns 0, or -1 for a transient error reply. */
static int s_user_reply(pp_userdb_t *db, const redisReply *r, pp_str_t uid, pp_user_fields_t *f)
{
    memset(f, 0, sizeof *f);
    f->token = f->ident = f->version = f->focus = (pp_str_t){"", 0};
    if (r->type == REDIS_REPLY_ERROR)
        return s_error_reply(db, r, "hmget", "User", uid) > 0 ? 0 : -1;
    if (r->type != REDIS_REPLY_ARRAY) {
        s_bad(db, r->type == REDIS_REPLY_NIL ? K_NIL : K_BAD_TYPE, "User", uid);
        return 0;
    }
    if (r->elements != 4) {
        s_bad(db, K_BAD_ARITY, "User", uid);
        return 0;
    }
    f->token = s_field(db, r->element[0], uid);
    f->ident = s_field(db, r->element[1], uid);
    f->version = s_field(db, r->element[2], uid);
    f->focus = s_field(db, r->element[3], uid);
    return 0;
}

int pp_userdb_users_send(pp_userdb_t *db, const pp_str_t *uids, size_t n)
{
    if (!db->c) return -1;
    if (n > db->cfg.pipeline || db->in_flight >= 2 || n == 0) /* a caller's bug */
        return s_fail(db, "hmget", "bad round size or too many rounds in flight");
    /* The round is written in RESP by hand and handed to hiredis in one
       redisAppendFormattedCommand: hiredis' own formatting (printf-like or argv) builds a
       growing string per argument and cost a third of the resolver's CPU time. */
    static const char tail[] = "\r\n$9\r\napp_token\r\n$9\r\napp_ident\r\n$11\r\napp_version"
                               "\r\n$9\r\napp_focus\r\n";
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = uids[i].len < PP_ID_MAX_LEN ? uids[i].len : PP_ID_MAX_LEN;
        int head = snprintf(db->out + used, db->out_cap - used,
                            "*6\r\n$5\r\nHMGET\r\n$%zu\r\nUser:", len + 5);
        used += (size_t)head;
        memcpy(db->out + used, uids[i].ptr, len);
        used += len;
        memcpy(db->out + used, tail, sizeof tail - 1);
        used += sizeof tail - 1;
    }
    if (redisAppendFormattedCommand(db->c, db->out, used) != REDIS_OK)
        return s_io_fail(db, "hmget");
    db->unsent = true;
    db->flight_n[db->in_flight++] = n;
    return 0;
}

size_t pp_userdb_users_in_flight(const pp_userdb_t *db)
{
    return db->in_flight;
}

int pp_userdb_users_recv(pp_userdb_t *db, const pp_str_t *uids, pp_user_fields_t *out,
                         size_t *n_out)
{
    *n_out = 0;
    if (!db->c) return -1;
    if (db->in_flight == 0) return s_fail(db, "hmget", "no round in flight"); /* a caller's bug */
    size_t n = db->flight_n[0];
    unsigned slot = db->next_slot;
    s_free_slot(db, slot);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = s_get_reply(db, "hmget");
        if (!r) {
            s_free_user_replies(db);
            return -1;
        }
        db->slot_replies[slot][db->slot_n[slot]++] = r;
    }
    db->flight_n[0] = db->flight_n[1];
    db->in_flight--;
    db->next_slot ^= 1u;
    for (size_t i = 0; i < n; i++) {
        if (s_user_reply(db, db->slot_replies[slot][i], uids[i], &out[i]) != 0) {
            s_free_user_replies(db);
            return -1;
        }
    }
    s_ok(db, n);
    pp_metric_add(db->m_looked_up, n);
    *n_out = n;
    return 0;
}

/*  A one-shot command while HMGET rounds are in flight would read their replies as its
    own: a caller's bug, but one that must not mix up users. Drop the connection instead. */
static int s_check_idle(pp_userdb_t *db, const char *what)
{
    if (db->in_flight == 0) return 0;
    return s_fail(db, what, "called with HMGET rounds in flight");
}

int pp_userdb_users(pp_userdb_t *db, const pp_str_t *uids, size_t n, pp_user_fields_t *out)
{
    if (!db->c || s_check_idle(db, "hmget") != 0) return -1;
    size_t got;
    if (pp_userdb_users_send(db, uids, n) != 0) return -1;
    return pp_userdb_users_recv(db, uids, out, &got);
}

int pp_userdb_group_size(pp_userdb_t *db, pp_str_t gid, long long *count)
{
    *count = 0;
    if (!db->c || s_check_idle(db, "scard") != 0) return -1;
    redisReply *r = s_command(db, "scard", "SCARD GroupAppleUser:%b", gid.ptr, gid.len);
    if (!r) return -1;
    int rc = 0;
    if (r->type == REDIS_REPLY_INTEGER)
        *count = r->integer;
    else if (r->type == REDIS_REPLY_ERROR)
        rc = s_error_reply(db, r, "scard", "GroupAppleUser", gid) > 0 ? 0 : -1;
    else
        s_bad(db, K_BAD_TYPE, "GroupAppleUser", gid);
    freeReplyObject(r);
    if (rc == 0) s_ok(db, 1);
    return rc;
}

/*  Checks one member; returns true when it may be used. */
static bool s_member_ok(pp_userdb_t *db, const redisReply *e, pp_str_t gid)
{
    if (e->type != REDIS_REPLY_STRING) {
        s_bad(db, K_BAD_TYPE, "GroupAppleUser", gid);
        return false;
    }
    pp_str_t id = {e->str, e->len};
    if (id.len > PP_ID_MAX_LEN) {
        s_bad(db, K_HUGE_MEMBER, "GroupAppleUser", gid);
        return false;
    }
    if (!pp_utf8_valid(id.ptr, id.len)) {
        s_bad(db, K_BAD_UTF8, "GroupAppleUser", gid);
        return false;
    }
    if (!pp_user_id_valid(id, PP_ID_MAX_LEN)) {
        s_bad(db, K_BAD_ID, "GroupAppleUser", gid);
        return false;
    }
    return true;
}

/*  Fills db->members with the valid members of the array reply arr. */
static int s_collect_members(pp_userdb_t *db, const redisReply *arr, pp_str_t gid, size_t *n)
{
    *n = 0;
    if (arr->elements > db->members_cap) {
        pp_str_t *m = realloc(db->members, arr->elements * sizeof *m);
        if (!m) return -1;
        db->members = m;
        db->members_cap = arr->elements;
    }
    for (size_t i = 0; i < arr->elements; i++) {
        const redisReply *e = arr->element[i];
        if (s_member_ok(db, e, gid)) db->members[(*n)++] = (pp_str_t){e->str, e->len};
    }
    return 0;
}

int pp_userdb_group_members(pp_userdb_t *db, pp_str_t gid, const pp_str_t **members, size_t *n)
{
    s_free_group_reply(db);
    *members = db->members;
    *n = 0;
    if (!db->c || s_check_idle(db, "smembers") != 0) return -1;
    redisReply *r = s_command(db, "smembers", "SMEMBERS GroupAppleUser:%b", gid.ptr, gid.len);
    if (!r) return -1;
    db->group_reply = r;
    if (r->type == REDIS_REPLY_ERROR) {
        int bad = s_error_reply(db, r, "smembers", "GroupAppleUser", gid);
        s_free_group_reply(db);
        if (bad < 0) return -1;
    } else if (r->type != REDIS_REPLY_ARRAY) {
        s_bad(db, r->type == REDIS_REPLY_NIL ? K_NIL : K_BAD_TYPE, "GroupAppleUser", gid);
    } else if (s_collect_members(db, r, gid, n) != 0) {
        s_free_group_reply(db);
        return s_fail(db, "smembers", "out of memory");
    }
    *members = db->members;
    s_ok(db, 1);
    return 0;
}

/*  True when s is 1..20 decimal digits (an SSCAN cursor). */
static bool s_cursor_ok(const redisReply *e)
{
    if (e->type != REDIS_REPLY_STRING || e->len == 0 || e->len > 20) return false;
    for (size_t i = 0; i < e->len; i++)
        if (e->str[i] < '0' || e->str[i] > '9') return false;
    return true;
}

int pp_userdb_group_scan(pp_userdb_t *db, pp_str_t gid, char cursor[32], size_t count,
                         const pp_str_t **members, size_t *n)
{
    s_free_group_reply(db);
    *members = db->members;
    *n = 0;
    if (!db->c || s_check_idle(db, "sscan") != 0) return -1;
    char count_text[24]; /* hiredis' format has no %zu */
    snprintf(count_text, sizeof count_text, "%zu", count);
    redisReply *r = s_command(db, "sscan", "SSCAN GroupAppleUser:%b %s COUNT %s", gid.ptr, gid.len,
                              cursor, count_text);
    if (!r) return -1;
    db->group_reply = r;
    if (r->type == REDIS_REPLY_ERROR) {
        int bad = s_error_reply(db, r, "sscan", "GroupAppleUser", gid);
        s_free_group_reply(db);
        if (bad < 0) return -1;
        strcpy(cursor, "0");
    } else if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
               r->element[1]->type != REDIS_REPLY_ARRAY) {
        s_bad(db, r->type == REDIS_REPLY_NIL ? K_NIL : K_BAD_ARITY, "GroupAppleUser", gid);
        strcpy(cursor, "0"); /* cannot go on without a cursor: end the scan */
    } else if (!s_cursor_ok(r->element[0])) {
        s_bad(db, K_BAD_CURSOR, "GroupAppleUser", gid);
        strcpy(cursor, "0");
    } else {
        if (s_collect_members(db, r->element[1], gid, n) != 0) {
            s_free_group_reply(db);
            return s_fail(db, "sscan", "out of memory");
        }
        memcpy(cursor, r->element[0]->str, r->element[0]->len);
        cursor[r->element[0]->len] = '\0';
    }
    *members = db->members;
    s_ok(db, 1);
    return 0;
}

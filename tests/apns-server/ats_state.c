#include "ats_state.h"
#include "pp_log.h"

#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define MAX_DISTINCT_IAT 4096
#define MAX_TOKEN_RULES 100000

struct ats_state_t {
    pthread_mutex_t lock;
    int wake_fd;
    char *env;
    size_t max_records;

    ats_record_t **records;
    size_t n_records, cap_records;

    /* rules */
    json_t *token_rules; /* lowercase token -> {"status","reason","timestamp"} */
    int64_t throttle_left;
    int throttle_status;
    char throttle_reason[64];
    int64_t goaway_after; /* -1: off */
    uint32_t goaway_code;
    char goaway_reason[64];
    int delay_ms;
    bool never_answer, zero_streams;
    bool expire_jwt_once;

    ats_actions_t actions;

    /* counters */
    uint64_t requests, accepted, records_dropped, connections, connections_open, goaways;
    uint64_t jwt_verified;
    uint64_t held, client_resets, client_cancels;
    uint64_t status[600];
    json_t *rejected; /* reason -> count */
    int64_t iats[MAX_DISTINCT_IAT];
    size_t n_iats;
    uint64_t token_updates;
    int64_t min_token_interval_s;
    int64_t team_iat; /* the team's current token, -1 before the first */
    uint64_t team_iat_since_us;
};

static void s_clear_actions(ats_actions_t *a)
{
    memset(a, 0, sizeof *a);
    a->max_concurrent_streams = -1;
}

static void s_clear_rules(ats_state_t *s)
{
    json_object_clear(s->token_rules);
    s->throttle_left = 0;
    s->goaway_after = -1;
    s->delay_ms = 0;
    s->never_answer = s->zero_streams = false;
    s->expire_jwt_once = false;
}

ats_state_t *ats_state_new(const char *env, size_t max_records)
{
    ats_state_t *s = calloc(1, sizeof *s);
    if (!s) abort();
    pthread_mutex_init(&s->lock, NULL);
    s->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->env = strdup(env);
    s->max_records = max_records;
    s->token_rules = json_object();
    s->rejected = json_object();
    if (s->wake_fd < 0 || !s->env || !s->token_rules || !s->rejected) abort();
    s_clear_rules(s);
    s_clear_actions(&s->actions);
    s->team_iat = -1;
    return s;
}

static void s_free_records(ats_state_t *s)
{
    for (size_t i = 0; i < s->n_records; i++)
        free(s->records[i]);
    free(s->records);
    s->records = NULL;
    s->n_records = s->cap_records = 0;
}

void ats_state_destroy(ats_state_t **p)
{
    if (!p || !*p) return;
    ats_state_t *s = *p;
    s_free_records(s);
    json_decref(s->token_rules);
    json_decref(s->rejected);
    close(s->wake_fd);
    free(s->env);
    pthread_mutex_destroy(&s->lock);
    free(s);
    *p = NULL;
}

int ats_state_wake_fd(ats_state_t *s)
{
    return s->wake_fd;
}

static char *s_pack(char **at, const char *src, size_t len)
{
    if (!src) return NULL;
    char *dst = *at;
    memcpy(dst, src, len);
    dst[len] = 0;
    *at += len + 1;
    return dst;
}

ats_record_t *ats_record_new(const char *token, size_t token_len, const char *topic,
                             size_t topic_len, const char *push_type, const char *collapse_id,
                             const char *apns_id, const char *payload, size_t payload_len,
                             const char *cert_cn)
{
    size_t lp = push_type ? strlen(push_type) : 0, lc = collapse_id ? strlen(collapse_id) : 0;
    size_t la = apns_id ? strlen(apns_id) : 0, ln = cert_cn ? strlen(cert_cn) : 0;
    size_t total =
        sizeof(ats_record_t) + token_len + topic_len + lp + lc + la + payload_len + ln + 7;
    ats_record_t *r = calloc(1, total);
    if (!r) abort();
    char *at = (char *)(r + 1);
    r->token = s_pack(&at, token, token_len);
    r->topic = s_pack(&at, topic, topic_len);
    r->push_type = s_pack(&at, push_type, lp);
    r->collapse_id = s_pack(&at, collapse_id, lc);
    r->apns_id = s_pack(&at, apns_id, la);
    r->payload = s_pack(&at, payload, payload_len);
    r->cert_cn = s_pack(&at, cert_cn, ln);
    r->jwt_iat = -1;
    return r;
}

static void s_count_reject(ats_state_t *s, const char *reason)
{
    json_t *n = json_object_get(s->rejected, reason);
    if (n)
        json_integer_set(n, json_integer_value(n) + 1);
    else
        json_object_set_new(s->rejected, reason, json_integer(1));
}

void ats_state_set_min_token_interval(ats_state_t *s, int64_t seconds)
{
    pthread_mutex_lock(&s->lock);
    s->min_token_interval_s = seconds;
    pthread_mutex_unlock(&s->lock);
}

/*  A token change for the team: allowed, or too soon after the last one. */
static bool s_token_update_ok(ats_state_t *s, int64_t iat)
{
    if (iat == s->team_iat) return true;
    uint64_t now = pp_wall_us();
    if (s->team_iat >= 0 && s->min_token_interval_s > 0 &&
        now - s->team_iat_since_us < (uint64_t)s->min_token_interval_s * 1000000u)
        return false;
    if (s->team_iat >= 0) s->token_updates++;
    s->team_iat = iat;
    s->team_iat_since_us = now;
    return true;
}

static void s_note_iat(ats_state_t *s, int64_t iat)
{
    s->jwt_verified++;
    for (size_t i = 0; i < s->n_iats; i++)
        if (s->iats[i] == iat) return;
    if (s->n_iats < MAX_DISTINCT_IAT) s->iats[s->n_iats++] = iat;
}

/*  Token rules, then throttle, override a request the static checks passed. */
static bool s_apply_overrides(ats_state_t *s, ats_decision_t *d)
{
    if (d->token_auth && s->expire_jwt_once) {
        s->expire_jwt_once = false;
        d->out_status = 403;
        snprintf(d->out_reason, sizeof d->out_reason, "ExpiredProviderToken");
        return true;
    }
    if (d->token && json_object_size(s->token_rules) > 0) {
        char key[256];
        size_t n = strlen(d->token);
        if (n < sizeof key) {
            for (size_t i = 0; i <= n; i++)
                key[i] = (char)tolower((unsigned char)d->token[i]);
            json_t *rule = json_object_get(s->token_rules, key);
            if (rule) {
                d->out_status = (int)json_integer_value(json_object_get(rule, "status"));
                snprintf(d->out_reason, sizeof d->out_reason, "%s",
                         json_string_value(json_object_get(rule, "reason")));
                json_t *ts = json_object_get(rule, "timestamp");
                if (ts) d->out_timestamp = json_integer_value(ts);
                return true;
            }
        }
    }
    if (s->throttle_left > 0) {
        s->throttle_left--;
        d->out_status = s->throttle_status;
        snprintf(d->out_reason, sizeof d->out_reason, "%s", s->throttle_reason);
        return true;
    }
    return false;
}

void ats_state_decide(ats_state_t *s, ats_decision_t *d)
{
    d->out_status = d->status;
    d->out_reason[0] = 0;
    d->out_timestamp = -1;
    d->goaway = false;
    if (d->reason) snprintf(d->out_reason, sizeof d->out_reason, "%s", d->reason);

    pthread_mutex_lock(&s->lock);
    s->requests++;
    if (d->jwt_new) {
        s_note_iat(s, d->jwt_iat);
        if (!s_token_update_ok(s, d->jwt_iat)) { /* auth comes before later checks */
            d->status = 429;
            d->out_status = 429;
            snprintf(d->out_reason, sizeof d->out_reason, "TooManyProviderTokenUpdates");
        }
    }
    if (d->status == 200 && !s_apply_overrides(s, d)) {
        s->accepted++;
        ats_record_t *r = d->record;
        d->record = NULL;
        if (s->n_records >= s->max_records) {
            s->records_dropped++;
            free(r);
        } else {
            if (s->n_records == s->cap_records) {
                size_t cap = s->cap_records ? s->cap_records * 2 : 1024;
                ats_record_t **grown = realloc(s->records, cap * sizeof *grown);
                if (!grown) abort();
                s->records = grown;
                s->cap_records = cap;
            }
            r->env = s->env;
            s->records[s->n_records++] = r;
        }
    }
    if (d->out_status != 200) s_count_reject(s, d->out_reason);
    if (d->out_status >= 100 && d->out_status < 600) s->status[d->out_status]++;
    if (s->goaway_after > 0 && --s->goaway_after == 0) {
        s->goaway_after = -1;
        d->goaway = true;
        d->goaway_code = s->goaway_code;
        snprintf(d->goaway_reason, sizeof d->goaway_reason, "%s", s->goaway_reason);
    }
    pthread_mutex_unlock(&s->lock);
}

int ats_state_delay_ms(ats_state_t *s)
{
    pthread_mutex_lock(&s->lock);
    int ms = s->never_answer ? -1 : s->delay_ms;
    pthread_mutex_unlock(&s->lock);
    return ms;
}

bool ats_state_zero_streams(ats_state_t *s)
{
    pthread_mutex_lock(&s->lock);
    bool z = s->zero_streams;
    pthread_mutex_unlock(&s->lock);
    return z;
}

void ats_state_held(ats_state_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->held++;
    pthread_mutex_unlock(&s->lock);
}

void ats_state_client_reset(ats_state_t *s, uint32_t error_code)
{
    pthread_mutex_lock(&s->lock);
    s->client_resets++;
    if (error_code == 8) s->client_cancels++; /* CANCEL (RFC 9113 section 7) */
    pthread_mutex_unlock(&s->lock);
}

void ats_state_conn_opened(ats_state_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->connections++;
    s->connections_open++;
    pthread_mutex_unlock(&s->lock);
}

void ats_state_conn_closed(ats_state_t *s)
{
    pthread_mutex_lock(&s->lock);
    if (s->connections_open) s->connections_open--;
    pthread_mutex_unlock(&s->lock);
}

void ats_state_goaway_sent(ats_state_t *s)
{
    pthread_mutex_lock(&s->lock);
    s->goaways++;
    pthread_mutex_unlock(&s->lock);
}

void ats_state_take_actions(ats_state_t *s, ats_actions_t *a)
{
    uint64_t v;
    /* Draining the eventfd; EAGAIN just means nobody woke us. */
    if (read(s->wake_fd, &v, sizeof v) < 0) {
    }
    pthread_mutex_lock(&s->lock);
    *a = s->actions;
    s_clear_actions(&s->actions);
    pthread_mutex_unlock(&s->lock);
}

static void s_wake(ats_state_t *s)
{
    uint64_t one = 1;
    if (write(s->wake_fd, &one, sizeof one) < 0) {
        /* The counter can only overflow after 2^64 wakes; nothing to do. */
    }
}

/* ---- rules ------------------------------------------------------------------------- */

static bool s_reason_ok(const char *r)
{
    size_t n = r ? strlen(r) : 0;
    if (n == 0 || n > 63) return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)r[i]) && r[i] != '_') return false;
    return true;
}

static const char *s_default_reason(int status)
{
    switch (status) {
    case 400:
        return "BadDeviceToken";
    case 403:
        return "Forbidden";
    case 410:
        return "Unregistered";
    case 429:
        return "TooManyRequests";
    case 500:
        return "InternalServerError";
    case 503:
        return "ServiceUnavailable";
    default:
        return "InternalServerError";
    }
}

static int s_err(char *err, size_t errlen, const char *msg)
{
    snprintf(err, errlen, "%s", msg);
    return -1;
}

/*  Reads {"status","reason"} of a token or throttle rule. */
static int s_status_reason(json_t *o, int def_status, int *status, const char **reason, char *err,
                           size_t errlen)
{
    json_t *st = json_object_get(o, "status"), *re = json_object_get(o, "reason");
    *status = def_status;
    if (st) {
        if (!json_is_integer(st) || json_integer_value(st) < 400 || json_integer_value(st) > 599)
            return s_err(err, errlen, "status must be an integer 400..599");
        *status = (int)json_integer_value(st);
    }
    *reason = s_default_reason(*status);
    if (re) {
        if (!s_reason_ok(json_string_value(re)))
            return s_err(err, errlen, "reason must be 1..63 letters, digits or _");
        *reason = json_string_value(re);
    }
    return 0;
}

static int s_check_rules(json_t *rules, char *err, size_t errlen)
{
    static const char *const known[] = {"tokens",
                                        "throttle",
                                        "goaway_after",
                                        "goaway_error_code",
                                        "goaway_reason",
                                        "goaway_now",
                                        "delay_ms",
                                        "expire_jwt_once",
                                        "max_concurrent_streams",
                                        "drop_connections",
                                        "never_answer",
                                        "zero_streams",
                                        NULL};
    if (!json_is_object(rules)) return s_err(err, errlen, "rules must be a JSON object");
    const char *key;
    json_t *val;
    json_object_foreach(rules, key, val)
    {
        bool ok = false;
        for (const char *const *k = known; *k; k++)
            ok = ok || strcmp(*k, key) == 0;
        if (!ok) {
            snprintf(err, errlen, "unknown rule: %.64s", key);
            return -1;
        }
    }
    int status;
    const char *reason;
    json_t *tokens = json_object_get(rules, "tokens");
    if (tokens) {
        if (!json_is_object(tokens) || json_object_size(tokens) > MAX_TOKEN_RULES)
            return s_err(err, errlen, "tokens must be an object of at most 100000 tokens");
        json_object_foreach(tokens, key, val)
        {
            if (!json_is_object(val) || strlen(key) == 0 || strlen(key) > 200)
                return s_err(err, errlen, "tokens: each token maps to an object");
            if (s_status_reason(val, 410, &status, &reason, err, errlen)) return -1;
            json_t *ts = json_object_get(val, "timestamp");
            if (ts && !json_is_integer(ts))
                return s_err(err, errlen, "tokens: timestamp must be an integer (ms)");
        }
    }
    json_t *th = json_object_get(rules, "throttle");
    if (th) {
        json_t *count = json_object_get(th, "count");
        if (!json_is_object(th) || !json_is_integer(count) || json_integer_value(count) < 0)
            return s_err(err, errlen, "throttle needs an integer count >= 0");
        if (s_status_reason(th, 429, &status, &reason, err, errlen)) return -1;
    }
    json_t *g = json_object_get(rules, "goaway_after");
    if (g && (!json_is_integer(g) || json_integer_value(g) < 1))
        return s_err(err, errlen, "goaway_after must be an integer >= 1");
    g = json_object_get(rules, "goaway_error_code");
    if (g &&
        (!json_is_integer(g) || json_integer_value(g) < 0 || json_integer_value(g) > 0xffffffffLL))
        return s_err(err, errlen, "goaway_error_code must be an HTTP/2 error code");
    g = json_object_get(rules, "goaway_reason");
    if (g && !s_reason_ok(json_string_value(g)))
        return s_err(err, errlen, "goaway_reason must be 1..63 letters, digits or _");
    json_t *d = json_object_get(rules, "delay_ms");
    if (d && (!json_is_integer(d) || json_integer_value(d) < 0 || json_integer_value(d) > 600000))
        return s_err(err, errlen, "delay_ms must be an integer 0..600000");
    json_t *m = json_object_get(rules, "max_concurrent_streams");
    if (m &&
        (!json_is_integer(m) || json_integer_value(m) < 0 || json_integer_value(m) > 0x7fffffffLL))
        return s_err(err, errlen, "max_concurrent_streams must be an integer >= 0");
    static const char *const flags[] = {"expire_jwt_once", "drop_connections", "goaway_now",
                                        "never_answer",    "zero_streams",     NULL};
    for (const char *const *f = flags; *f; f++) {
        json_t *b = json_object_get(rules, *f);
        if (b && !json_is_boolean(b)) {
            snprintf(err, errlen, "%s must be true or false", *f);
            return -1;
        }
    }
    return 0;
}

int ats_state_apply_rules(ats_state_t *s, json_t *rules, char *err, size_t errlen)
{
    if (s_check_rules(rules, err, errlen)) return -1;
    int status;
    const char *reason;
    bool wake = false;
    pthread_mutex_lock(&s->lock);
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(rules, "tokens"), key, val)
    {
        s_status_reason(val, 410, &status, &reason, err, errlen);
        json_t *r = json_pack("{s:i, s:s}", "status", status, "reason", reason);
        json_t *ts = json_object_get(val, "timestamp");
        if (ts) json_object_set(r, "timestamp", ts);
        char lower[256];
        size_t n = strlen(key);
        for (size_t i = 0; i <= n; i++)
            lower[i] = (char)tolower((unsigned char)key[i]);
        json_object_set_new(s->token_rules, lower, r);
    }
    json_t *th = json_object_get(rules, "throttle");
    if (th) {
        s_status_reason(th, 429, &status, &reason, err, errlen);
        s->throttle_left = json_integer_value(json_object_get(th, "count"));
        s->throttle_status = status;
        snprintf(s->throttle_reason, sizeof s->throttle_reason, "%s", reason);
    }
    json_t *code = json_object_get(rules, "goaway_error_code");
    json_t *greason = json_object_get(rules, "goaway_reason");
    uint32_t gcode = code ? (uint32_t)json_integer_value(code) : 0;
    const char *gtext = greason ? json_string_value(greason) : "Shutdown";
    if (json_object_get(rules, "goaway_after")) {
        s->goaway_after = json_integer_value(json_object_get(rules, "goaway_after"));
        s->goaway_code = gcode;
        snprintf(s->goaway_reason, sizeof s->goaway_reason, "%s", gtext);
    }
    if (json_is_true(json_object_get(rules, "goaway_now"))) {
        s->actions.goaway_now = true;
        s->actions.goaway_code = gcode;
        snprintf(s->actions.goaway_reason, sizeof s->actions.goaway_reason, "%s", gtext);
        wake = true;
    }
    if (json_object_get(rules, "delay_ms"))
        s->delay_ms = (int)json_integer_value(json_object_get(rules, "delay_ms"));
    if (json_object_get(rules, "expire_jwt_once"))
        s->expire_jwt_once = json_is_true(json_object_get(rules, "expire_jwt_once"));
    if (json_object_get(rules, "max_concurrent_streams")) {
        s->actions.max_concurrent_streams =
            json_integer_value(json_object_get(rules, "max_concurrent_streams"));
        wake = true;
    }
    if (json_object_get(rules, "never_answer"))
        s->never_answer = json_is_true(json_object_get(rules, "never_answer"));
    if (json_object_get(rules, "zero_streams")) {
        s->zero_streams = json_is_true(json_object_get(rules, "zero_streams"));
        if (s->zero_streams) {
            s->actions.zero_streams = true;
            wake = true;
        }
    }
    if (json_is_true(json_object_get(rules, "drop_connections"))) {
        s->actions.drop_connections = true;
        wake = true;
    }
    pthread_mutex_unlock(&s->lock);
    if (wake) s_wake(s);
    return 0;
}

void ats_state_reset(ats_state_t *s)
{
    pthread_mutex_lock(&s->lock);
    s_free_records(s);
    s_clear_rules(s);
    s->requests = s->accepted = s->records_dropped = s->goaways = s->jwt_verified = 0;
    s->held = s->client_resets = s->client_cancels = 0;
    s->connections = s->connections_open; /* those still open count as seen */
    memset(s->status, 0, sizeof s->status);
    json_object_clear(s->rejected);
    s->n_iats = 0;
    s->token_updates = 0;
    s->team_iat = -1;
    pthread_mutex_unlock(&s->lock);
}

/* ---- reports ----------------------------------------------------------------------- */

static json_t *s_str_or_null(const char *v)
{
    return v ? json_string(v) : json_null();
}

static json_t *s_record_json(const ats_record_t *r)
{
    json_t *o = json_object();
    json_object_set_new(o, "token", json_string(r->token));
    json_object_set_new(o, "topic", json_string(r->topic));
    json_object_set_new(o, "push_type", s_str_or_null(r->push_type));
    json_object_set_new(o, "priority", json_integer(r->priority));
    json_object_set_new(o, "expiration",
                        r->has_expiration ? json_integer(r->expiration) : json_null());
    json_object_set_new(o, "collapse_id", s_str_or_null(r->collapse_id));
    json_object_set_new(o, "apns_id", s_str_or_null(r->apns_id));
    json_object_set_new(o, "payload", json_string(r->payload));
    json_object_set_new(o, "env", json_string(r->env));
    json_object_set_new(o, "auth", json_string(r->auth));
    json_object_set_new(o, "cert_cn", s_str_or_null(r->cert_cn));
    json_object_set_new(o, "jwt_iat", r->jwt_iat >= 0 ? json_integer(r->jwt_iat) : json_null());
    json_object_set_new(o, "received_us", json_integer((json_int_t)r->received_us));
    json_object_set_new(o, "connection", json_integer((json_int_t)r->connection));
    return o;
}

char *ats_state_accepted_json(ats_state_t *s, size_t since, size_t limit)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&s->lock);
    for (size_t i = since; i < s->n_records && i - since < limit; i++)
        json_array_append_new(arr, s_record_json(s->records[i]));
    pthread_mutex_unlock(&s->lock);
    char *text = json_dumps(arr, JSON_COMPACT);
    json_decref(arr);
    return text;
}

char *ats_state_count_json(ats_state_t *s)
{
    pthread_mutex_lock(&s->lock);
    json_t *o = json_pack("{s:I, s:I}", "count", (json_int_t)s->n_records, "accepted",
                          (json_int_t)s->accepted);
    pthread_mutex_unlock(&s->lock);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

char *ats_state_stats_json(ats_state_t *s)
{
    json_t *o = json_object();
    pthread_mutex_lock(&s->lock);
    json_object_set_new(o, "env", json_string(s->env));
    json_object_set_new(o, "requests", json_integer((json_int_t)s->requests));
    json_object_set_new(o, "accepted", json_integer((json_int_t)s->accepted));
    json_object_set_new(o, "records", json_integer((json_int_t)s->n_records));
    json_object_set_new(o, "records_dropped", json_integer((json_int_t)s->records_dropped));
    json_object_set_new(o, "rejected", json_deep_copy(s->rejected));
    json_object_set_new(o, "connections", json_integer((json_int_t)s->connections));
    json_object_set_new(o, "connections_open", json_integer((json_int_t)s->connections_open));
    json_object_set_new(o, "goaways_sent", json_integer((json_int_t)s->goaways));
    json_object_set_new(o, "jwt_verified", json_integer((json_int_t)s->jwt_verified));
    json_object_set_new(o, "jwt_distinct_iat", json_integer((json_int_t)s->n_iats));
    json_object_set_new(o, "jwt_team_updates", json_integer((json_int_t)s->token_updates));
    json_object_set_new(o, "held", json_integer((json_int_t)s->held));
    json_object_set_new(o, "client_resets", json_integer((json_int_t)s->client_resets));
    json_object_set_new(o, "client_cancels", json_integer((json_int_t)s->client_cancels));
    json_t *st = json_object();
    for (int i = 100; i < 600; i++) {
        if (s->status[i]) {
            char k[8];
            snprintf(k, sizeof k, "%d", i);
            json_object_set_new(st, k, json_integer((json_int_t)s->status[i]));
        }
    }
    json_object_set_new(o, "status", st);
    pthread_mutex_unlock(&s->lock);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return text;
}

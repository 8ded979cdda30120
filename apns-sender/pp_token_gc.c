#include "pp_token_gc.h"

#include "pp_apns_keepalive.h"
#include "pp_log.h"
#include "pp_redis_lazy.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_QUEUE 100000

typedef struct s_item_t {
    struct s_item_t *next;
    char *key; /* User:<uid> */
    char *token;
    char *event; /* JSON for the list, or NULL */
} s_item_t;

struct pp_token_gc_t {
    pp_redis_lazy_t *redis;
    bool remove;
    char list[256];
    char prefix[64];
    s_item_t *head, *tail;
    size_t n;
    pp_metric_t *removed, *kept, *dropped, *errors, *pushed;
};

/*  Deletes the field only while it still holds the token that APNs rejected. */
static const char s_script[] = "if redis.call('HGET', KEYS[1], 'app_token') == ARGV[1] then\n"
                               "  return redis.call('HDEL', KEYS[1], 'app_token')\n"
                               "end\n"
                               "return 0\n";

pp_token_gc_t *pp_token_gc_new(const pp_apns_redis_opts_t *redis, bool remove, const char *list,
                               const char *user_prefix, pp_metrics_t *m)
{
    pp_token_gc_t *gc = calloc(1, sizeof *gc);
    if (!gc) return NULL;
    gc->remove = remove;
    snprintf(gc->list, sizeof gc->list, "%s", list ? list : "");
    snprintf(gc->prefix, sizeof gc->prefix, "%s", user_prefix ? user_prefix : "User:");
    gc->removed = pp_metrics_counter(m, "tokens_removed_total",
                                     "Invalid device tokens removed from Redis", NULL);
    gc->kept =
        pp_metrics_counter(m, "tokens_kept_total",
                           "Invalid tokens not removed: the user holds another token now", NULL);
    gc->dropped = pp_metrics_counter(m, "token_gc_dropped_total",
                                     "Invalid-token events dropped (queue full)", NULL);
    gc->errors = pp_metrics_counter(m, "token_gc_errors_total",
                                    "Redis failures while handling invalid tokens", NULL);
    gc->pushed = pp_metrics_counter(m, "invalid_token_events_total",
                                    "Invalid-token events pushed to the Redis list", NULL);
    gc->redis = pp_redis_lazy_new(redis, "token_gc_redis_down", gc->errors);
    if (!gc->redis) pp_token_gc_destroy(&gc);
    return gc;
}

static void s_item_free(s_item_t *it)
{
    free(it->key);
    free(it->token);
    free(it->event);
    free(it);
}

void pp_token_gc_destroy(pp_token_gc_t **p)
{
    if (!p || !*p) return;
    pp_token_gc_t *gc = *p;
    while (gc->head) {
        s_item_t *it = gc->head;
        gc->head = it->next;
        s_item_free(it);
    }
    pp_redis_lazy_destroy(&gc->redis);
    free(gc);
    *p = NULL;
}

void pp_token_gc_add(pp_token_gc_t *gc, const char *uid, const char *token, const char *reason,
                     const char *ident, int env, const char *msg_id, int64_t timestamp_ms)
{
    char quid[160], qtok[16], qmsg[120];
    pp_info("invalid_token", "uid=%s token=%s reason=%s ident=%s env=%s msg_id=%s timestamp=%lld",
            pp_log_quote(uid, strlen(uid), 64, quid, sizeof quid),
            pp_log_token_prefix(token, strlen(token), qtok, sizeof qtok), reason, ident,
            env ? "production" : "sandbox",
            pp_log_quote(msg_id, strlen(msg_id), 64, qmsg, sizeof qmsg), (long long)timestamp_ms);
    if (!pp_redis_lazy_enabled(gc->redis) || (!gc->remove && !gc->list[0])) return;
    if (gc->n >= S_MAX_QUEUE) {
        pp_metric_inc(gc->dropped);
        return;
    }
    s_item_t *it = calloc(1, sizeof *it);
    if (!it) return;
    size_t klen = strlen(gc->prefix) + strlen(uid) + 1;
    it->key = malloc(klen);
    it->token = strdup(token);
    if (it->key) snprintf(it->key, klen, "%s%s", gc->prefix, uid);
    if (gc->list[0]) {
        json_t *j =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "uid", uid, "token", token, "reason",
                      reason, "ident", ident, "env", env ? "production" : "sandbox", "msg_id",
                      msg_id, "timestamp", (json_int_t)timestamp_ms);
        it->event = j ? json_dumps(j, JSON_COMPACT) : NULL;
        json_decref(j);
    }
    if (!it->key || !it->token) {
        s_item_free(it);
        return;
    }
    if (gc->tail)
        gc->tail->next = it;
    else
        gc->head = it;
    gc->tail = it;
    gc->n++;
}

void pp_token_gc_flush(pp_token_gc_t *gc)
{
    if (!gc->head) return;
    char detail[32];
    snprintf(detail, sizeof detail, "queued=%zu", gc->n);
    redisContext *rc = pp_redis_lazy_get(gc->redis, detail);
    if (!rc) return;
    /* One pipeline for the batch: append everything, then read every reply. */
    size_t batch = 0;
    for (s_item_t *it = gc->head; it && batch < 1000; it = it->next, batch++) {
        if (gc->remove) {
            redisAppendCommand(rc, "EVAL %s 1 %s %s", s_script, it->key, it->token);
        }
        if (it->event) {
            redisAppendCommand(rc, "RPUSH %s %s", gc->list, it->event);
        }
    }
    bool failed = false;
    for (size_t i = 0; i < batch; i++) {
        s_item_t *it = gc->head;
        for (int k = 0; k < 2 && !failed; k++) {
            if (k == 0 && !gc->remove) continue;
            if (k == 1 && !it->event) continue;
            redisReply *r = NULL;
            pp_apns_keepalive(); /* each reply may block up to the Redis timeout */
            if (redisGetReply(rc, (void **)&r) != REDIS_OK || !r) {
                failed = true;
                break;
            }
            if (r->type == REDIS_REPLY_ERROR) {
                pp_metric_inc(gc->errors);
                pp_warn("token_gc_error", "error=\"%s\"", r->str);
            } else if (k == 0 && r->type == REDIS_REPLY_INTEGER) {
                pp_metric_inc(r->integer > 0 ? gc->removed : gc->kept);
                if (r->integer == 0)
                    pp_info("invalid_token_kept", "key=%s why=token_changed", it->key);
            } else if (k == 1) {
                pp_metric_inc(gc->pushed);
            }
            freeReplyObject(r);
        }
        if (failed) break;
        gc->head = it->next;
        if (!gc->head) gc->tail = NULL;
        gc->n--;
        s_item_free(it);
    }
    if (failed) {
        /* What was not confirmed stays queued; the script and RPUSH are safe to repeat
           except that a repeated RPUSH may duplicate an event (at-least-once). */
        pp_metric_inc(gc->errors);
        pp_warn("token_gc_redis_failed", "error=\"%s\" queued=%zu", rc->errstr, gc->n);
        pp_redis_lazy_drop(gc->redis, 1000);
    }
}

size_t pp_token_gc_pending(const pp_token_gc_t *gc)
{
    return gc->n;
}

#include "pp_jwt_share.h"

#include "pp_apns_keepalive.h"
#include "pp_log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pp_jwt_share_t {
    pp_apns_redis_opts_t redis;
    redisContext *rc;
    uint64_t next_connect_ms;
    pp_jwt_timing_t t;
    pp_metric_t *minted, *adopted, *errors;
};

/*  KEYS[1] the hash; ARGV: candidate iat, candidate token, replace-if-stored-iat-<=, ttl.
    Keeps a stored token newer than the threshold; otherwise stores the candidate. Returns
    {iat, token, 1 if the candidate was stored}. */
static const char s_script[] =
    "local cur = redis.call('HMGET', KEYS[1], 'iat', 'token')\n"
    "if cur[1] and cur[2] and tonumber(cur[1]) and tonumber(cur[1]) > tonumber(ARGV[3]) then\n"
    "  return {cur[1], cur[2], 0}\n"
    "end\n"
    "redis.call('HSET', KEYS[1], 'iat', ARGV[1], 'token', ARGV[2])\n"
    "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))\n"
    "return {ARGV[1], ARGV[2], 1}\n";

pp_jwt_share_t *pp_jwt_share_new(const pp_apns_redis_opts_t *redis, const pp_jwt_timing_t *t,
                                 pp_metrics_t *m)
{
    pp_jwt_share_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (redis) s->redis = *redis;
    s->t = *t;
    s->minted = pp_metrics_counter(m, "jwt_minted_total", "Provider tokens signed and used", NULL);
    s->adopted = pp_metrics_counter(m, "jwt_adopted_total",
                                    "Provider tokens taken from another sender via Redis", NULL);
    s->errors = pp_metrics_counter(m, "jwt_share_errors_total",
                                   "Redis failures while sharing provider tokens", NULL);
    return s;
}

void pp_jwt_share_destroy(pp_jwt_share_t **p)
{
    if (!p || !*p) return;
    if ((*p)->rc) redisFree((*p)->rc);
    free(*p);
    *p = NULL;
}

static redisContext *s_conn(pp_jwt_share_t *s)
{
    if (!s->redis.enabled) return NULL;
    if (s->rc) return s->rc;
    uint64_t now = pp_mono_ms();
    if (now < s->next_connect_ms) return NULL;
    char err[256];
    s->rc = pp_apns_redis_connect(&s->redis, err, sizeof err);
    if (!s->rc) {
        s->next_connect_ms = now + 5000;
        pp_metric_inc(s->errors);
        pp_warn("jwt_share_redis_down", "error=\"%s\"", err);
    }
    return s->rc;
}

/*  Offers our candidate to Redis. Returns 1 if it was stored, 0 if another one was adopted
    (copied into cred), -1 on a Redis problem. */
static int s_share(pp_jwt_share_t *s, pp_apns_cred_t *cred, const char *cand, int64_t cand_iat,
                   int64_t threshold, int64_t now_s)
{
    redisContext *rc = s_conn(s);
    if (!rc) return -1;
    char key[200], iat_s[24], thr_s[24], ttl_s[24];
    snprintf(key, sizeof key, "pushpipe:apns:jwt:%s:%s", pp_jwt_signer_team(cred->signer),
             pp_jwt_signer_key_id(cred->signer));
    snprintf(iat_s, sizeof iat_s, "%lld", (long long)cand_iat);
    snprintf(thr_s, sizeof thr_s, "%lld", (long long)threshold);
    snprintf(ttl_s, sizeof ttl_s, "%lld", (long long)(s->t.max_age_s > 0 ? s->t.max_age_s : 1));
    pp_apns_keepalive(); /* the command may block up to the Redis timeout */
    redisReply *r =
        redisCommand(rc, "EVAL %s 1 %s %s %s %s %s", s_script, key, iat_s, cand, thr_s, ttl_s);
    pp_apns_keepalive();
    int rc_out = -1;
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[2]->type == REDIS_REPLY_INTEGER) {
        char *end = NULL;
        long long iat = strtoll(r->element[0]->str, &end, 10);
        size_t tlen = r->element[1]->len;
        bool sane = end && *end == '\0' && tlen > 0 && tlen < sizeof cred->token &&
                    iat > now_s - s->t.max_age_s && iat <= now_s + 300;
        if (r->element[2]->integer == 1) {
            rc_out = 1;
        } else if (sane) {
            memcpy(cred->token, r->element[1]->str, tlen);
            cred->token[tlen] = '\0';
            cred->iat = iat;
            rc_out = 0;
        } else {
            pp_warn("jwt_share_bad_value", "key=%s", key);
        }
    } else {
        pp_warn("jwt_share_failed", "key=%s error=\"%s\"", key,
                r && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
        if (!r || rc->err) {
            redisFree(s->rc);
            s->rc = NULL;
        }
    }
    if (r) freeReplyObject(r);
    if (rc_out < 0) pp_metric_inc(s->errors);
    return rc_out;
}

static int s_renew(pp_jwt_share_t *s, pp_apns_cred_t *cred, int64_t now_s)
{
    char cand[PP_JWT_MAX];
    if (pp_jwt_sign(cred->signer, now_s, cand, sizeof cand) < 0) {
        pp_error("jwt_sign_failed", "team=%s kid=%s", pp_jwt_signer_team(cred->signer),
                 pp_jwt_signer_key_id(cred->signer));
        return -1;
    }
    /* Replace a shared token only if it is due for renewal, and never keep the one that
       was just rejected. */
    int64_t threshold = now_s - s->t.renew_s;
    if (cred->token[0] && cred->renew_at && cred->iat > threshold) threshold = cred->iat;
    int shared = s_share(s, cred, cand, now_s, threshold, now_s);
    cred->renew_at = 0;
    if (shared == 0) {
        pp_metric_inc(s->adopted);
        pp_info("jwt_adopted", "team=%s kid=%s iat=%lld", pp_jwt_signer_team(cred->signer),
                pp_jwt_signer_key_id(cred->signer), (long long)cred->iat);
        return 0;
    }
    snprintf(cred->token, sizeof cred->token, "%s", cand);
    cred->iat = now_s;
    pp_metric_inc(s->minted);
    pp_info("jwt_minted", "team=%s kid=%s iat=%lld shared=%s", pp_jwt_signer_team(cred->signer),
            pp_jwt_signer_key_id(cred->signer), (long long)now_s,
            shared == 1 ? "yes" : (s->redis.enabled ? "redis_failed" : "no"));
    return 0;
}

int pp_jwt_share_ensure(pp_jwt_share_t *s, pp_apns_cred_t *cred, int64_t now_s)
{
    int64_t age = now_s - cred->iat;
    bool due = !cred->token[0] || age >= s->t.renew_s || age < -300 ||
               (cred->renew_at && now_s >= cred->renew_at);
    if (!due) return 0;
    return s_renew(s, cred, now_s);
}

int64_t pp_jwt_share_on_expired(pp_jwt_share_t *s, pp_apns_cred_t *cred, int64_t rejected_iat,
                                int64_t now_s)
{
    if (cred->iat > rejected_iat && cred->token[0])
        return 0; /* renewed since that request went out */
    int64_t age = now_s - cred->iat;
    if (age >= s->t.min_renew_s || age >= s->t.max_age_s) {
        cred->renew_at = now_s;
        return 0;
    }
    cred->renew_at = cred->iat + s->t.min_renew_s;
    pp_warn("jwt_expired_early", "team=%s kid=%s iat=%lld age_s=%lld renew_in_s=%lld",
            pp_jwt_signer_team(cred->signer), pp_jwt_signer_key_id(cred->signer),
            (long long)cred->iat, (long long)age, (long long)(cred->renew_at - now_s));
    return (cred->renew_at - now_s) * 1000;
}

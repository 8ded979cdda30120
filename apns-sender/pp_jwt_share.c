#include "pp_jwt_share.h"

#include "pp_apns_keepalive.h"
#include "pp_log.h"
#include "pp_redis_lazy.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A shared token's iat may be this far ahead of our clock (another host's clock). */
#define S_SKEW_S 60
/* Script calls per renewal: offer, then replace what failed verification (twice at most:
   the value may have changed between our read and our replace). */
#define S_MAX_ROUNDS 3

/*  What we remember per (team, key) beyond pp_apns_cred_t (whose layout is shared with
    other modules): when a token Apple refused last made us re-sign, and whether the
    coming renewal must replace the rejected token in Redis. */
typedef struct {
    const pp_apns_cred_t *cred;
    int64_t refused_resign_s; /* 0: never */
} s_slot_t;

struct pp_jwt_share_t {
    pp_redis_lazy_t *redis;
    pp_jwt_timing_t t;
    pp_metrics_t *m;
    pp_metric_t *minted, *adopted, *errors, *refused_resigns;
    s_slot_t *slots;
    size_t n_slots;
};

/*  KEYS[1] the hash. ARGV: 1 candidate iat, 2 candidate token, 3 keep a stored token whose
    iat is above this, 4 ttl, 5 SHA-1 (hex) of a stored token to replace whatever its iat
    ("" none), 6 a non-hash type to replace ("" none).
    Replaces a missing key, a stale token, the token named by ARGV[5] (compare-and-set: a
    value another sender has put there meanwhile is returned, not overwritten) and a key of
    the type named in ARGV[6]; otherwise returns what is stored for the caller to verify.
    Returns {iat, token, 1} when the candidate was stored, {iat, token, 0} with the stored
    one, {"", type, 2} when the key is not a hash. */
static const char s_script[] =
    "local t = redis.call('TYPE', KEYS[1]).ok\n"
    "if t ~= 'none' and t ~= 'hash' then\n"
    "  if t ~= ARGV[6] then return {'', t, 2} end\n"
    "elseif t == 'hash' then\n"
    "  local cur = redis.call('HMGET', KEYS[1], 'iat', 'token')\n"
    "  local named = ARGV[5] ~= '' and cur[2] and redis.sha1hex(cur[2]) == ARGV[5]\n"
    "  if not named and cur[1] and cur[2] and tonumber(cur[1]) and\n"
    "     tonumber(cur[1]) > tonumber(ARGV[3]) then\n"
    "    return {cur[1], cur[2], 0}\n"
    "  end\n"
    "end\n"
    "redis.call('DEL', KEYS[1])\n"
    "redis.call('HSET', KEYS[1], 'iat', ARGV[1], 'token', ARGV[2])\n"
    "redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))\n"
    "return {ARGV[1], ARGV[2], 1}\n";

pp_jwt_share_t *pp_jwt_share_new(const pp_apns_redis_opts_t *redis, const pp_jwt_timing_t *t,
                                 pp_metrics_t *m)
{
    pp_jwt_share_t *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    s->t = *t;
    s->m = m;
    s->minted = pp_metrics_counter(m, "jwt_minted_total", "Provider tokens signed and used", NULL);
    s->adopted = pp_metrics_counter(m, "jwt_adopted_total",
                                    "Provider tokens taken from another sender via Redis", NULL);
    s->errors = pp_metrics_counter(m, "jwt_share_errors_total",
                                   "Redis failures while sharing provider tokens", NULL);
    s->refused_resigns =
        pp_metrics_counter(m, "jwt_refused_resigns_total",
                           "Tokens signed again because APNs answered InvalidProviderToken", NULL);
    /* The label most worth alerting on exists from the start. */
    pp_metrics_counter(m, "jwt_share_rejected_total",
                       "Shared provider tokens refused: they fail verification with our key",
                       "reason=\"signature\"");
    s->redis = pp_redis_lazy_new(redis, "jwt_share_redis_down", s->errors);
    if (!s->redis) pp_jwt_share_destroy(&s);
    return s;
}

void pp_jwt_share_destroy(pp_jwt_share_t **p)
{
    if (!p || !*p) return;
    pp_redis_lazy_destroy(&(*p)->redis);
    free((*p)->slots);
    free(*p);
    *p = NULL;
}

static s_slot_t *s_slot(pp_jwt_share_t *s, const pp_apns_cred_t *cred)
{
    for (size_t i = 0; i < s->n_slots; i++)
        if (s->slots[i].cred == cred) return &s->slots[i];
    s_slot_t *n = realloc(s->slots, (s->n_slots + 1) * sizeof *n);
    if (!n) return NULL;
    s->slots = n;
    s->slots[s->n_slots] = (s_slot_t){cred, 0};
    return &s->slots[s->n_slots++];
}

static void s_sha1_hex(const char *data, size_t len, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (EVP_Digest(data, len, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen != 20) return;
    for (unsigned i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void s_key(const pp_apns_cred_t *cred, char *key, size_t len)
{
    snprintf(key, len, "pushpipe:apns:jwt:%s:%s", pp_jwt_signer_team(cred->signer),
             pp_jwt_signer_key_id(cred->signer));
}

/*  What a share round found in Redis. */
typedef struct {
    int code;         /* 1 stored ours, 0 found another (token, iat_field), 2 wrong type, -1 */
    char *token;      /* code 0: the stored value (malloc'd, any length); code 2: the type */
    size_t token_len; /* its length */
    char iat_field[24];
} s_found_t;

/*  One run of the script (see s_script). Returns the outcome in f (f->token to be freed). */
static void s_share(pp_jwt_share_t *s, const pp_apns_cred_t *cred, const char *cand,
                    int64_t cand_iat, int64_t threshold, const char *replace_sha1,
                    const char *replace_type, s_found_t *f)
{
    memset(f, 0, sizeof *f);
    f->code = -1;
    redisContext *rc = pp_redis_lazy_get(s->redis, NULL);
    if (!rc) return;
    char key[200], iat_s[24], thr_s[24], ttl_s[24];
    s_key(cred, key, sizeof key);
    snprintf(iat_s, sizeof iat_s, "%lld", (long long)cand_iat);
    snprintf(thr_s, sizeof thr_s, "%lld", (long long)threshold);
    snprintf(ttl_s, sizeof ttl_s, "%lld", (long long)(s->t.max_age_s > 0 ? s->t.max_age_s : 1));
    const char *argv[] = {"EVAL", s_script, "1",   key,          iat_s,
                          cand,   thr_s,    ttl_s, replace_sha1, replace_type};
    size_t argl[10];
    for (int i = 0; i < 10; i++)
        argl[i] = strlen(argv[i]);
    pp_apns_keepalive(); /* the command may block up to the Redis timeout */
    redisReply *r = redisCommandArgv(rc, 10, argv, argl);
    pp_apns_keepalive();
    if (r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING &&
        r->element[2]->type == REDIS_REPLY_INTEGER && r->element[2]->integer >= 0 &&
        r->element[2]->integer <= 2) {
        f->code = (int)r->element[2]->integer;
        snprintf(f->iat_field, sizeof f->iat_field, "%.*s", (int)r->element[0]->len,
                 r->element[0]->str);
        f->token_len = r->element[1]->len;
        f->token = malloc(f->token_len + 1);
        if (f->token) {
            memcpy(f->token, r->element[1]->str, f->token_len);
            f->token[f->token_len] = '\0';
        } else {
            f->code = -1;
        }
    } else {
        pp_warn("jwt_share_failed", "key=%s error=\"%s\"", key,
                r && r->type == REDIS_REPLY_ERROR ? r->str : rc->errstr);
        if (!r || rc->err) pp_redis_lazy_drop(s->redis, 0);
    }
    if (r) freeReplyObject(r);
    if (f->code < 0) pp_metric_inc(s->errors);
}

static void s_rejected(pp_jwt_share_t *s, const pp_apns_cred_t *cred, const char *reason,
                       const char *value, size_t len)
{
    char labels[64], key[200], sha[41];
    snprintf(labels, sizeof labels, "reason=\"%s\"", reason);
    pp_metric_inc(pp_metrics_counter(
        s->m, "jwt_share_rejected_total",
        "Shared provider tokens refused: they fail verification with our key", labels));
    s_key(cred, key, sizeof key);
    s_sha1_hex(value, len, sha);
    /* Not the value itself: a token is a credential; its digest is enough to correlate. */
    pp_warn("jwt_share_rejected", "key=%s reason=%s len=%zu sha1=%.12s effect=replaced_by_ours",
            key, reason, len, sha);
}

/*  Checks a stored token found by the script: it must verify with our key, and the hash's
    iat must be the token's own (the script decides freshness on the hash's field). Returns
    NULL and the iat, or the rejection reason. */
static const char *s_check_found(pp_jwt_share_t *s, pp_apns_cred_t *cred, const s_found_t *f,
                                 int64_t now_s, int64_t *iat)
{
    const char *why =
        pp_jwt_verify(cred->signer, f->token, f->token_len, now_s, s->t.max_age_s, S_SKEW_S, iat);
    if (why) return why;
    char *end = NULL;
    long long field = strtoll(f->iat_field, &end, 10);
    if (!end || *end || end == f->iat_field || field != *iat) return "iat";
    return NULL;
}

/*  Signs a candidate and offers it (see s_script); adopts a stored token only if it
    verifies, otherwise replaces it in Redis (compare-and-set) and uses ours. */
static int s_renew(pp_jwt_share_t *s, pp_apns_cred_t *cred, int64_t now_s)
{
    char cand[PP_JWT_MAX];
    if (pp_jwt_sign(cred->signer, now_s, cand, sizeof cand) < 0) {
        pp_error("jwt_sign_failed", "team=%s kid=%s", pp_jwt_signer_team(cred->signer),
                 pp_jwt_signer_key_id(cred->signer));
        return -1;
    }
    /* Replace a shared token only if it is due for renewal, and never keep the one that
       was just rejected (by iat, and by value: it may have been re-stored with a newer
       iat field). */
    int64_t threshold = now_s - s->t.renew_s;
    char replace_sha1[41] = "", replace_type[32] = "";
    if (cred->token[0] && cred->renew_at) {
        if (cred->iat > threshold) threshold = cred->iat;
        s_sha1_hex(cred->token, strlen(cred->token), replace_sha1);
    }
    const char *shared = pp_redis_lazy_enabled(s->redis) ? "redis_failed" : "no";
    for (int round = 0; round < S_MAX_ROUNDS && pp_redis_lazy_enabled(s->redis); round++) {
        s_found_t f;
        s_share(s, cred, cand, now_s, threshold, replace_sha1, replace_type, &f);
        if (f.code < 0) break;
        if (f.code == 1) {
            shared = "yes";
            free(f.token);
            break;
        }
        if (f.code == 2) { /* not a hash at all: replace it if it still has that type */
            s_rejected(s, cred, "wrong_type", f.token, f.token_len);
            snprintf(replace_type, sizeof replace_type, "%s", f.token);
            free(f.token);
            shared = "gave_up";
            continue;
        }
        int64_t iat = 0;
        const char *why = s_check_found(s, cred, &f, now_s, &iat);
        if (!why) {
            memcpy(cred->token, f.token, f.token_len + 1); /* < PP_JWT_MAX: verified */
            cred->iat = iat;
            cred->renew_at = 0;
            free(f.token);
            pp_metric_inc(s->adopted);
            pp_info("jwt_adopted", "team=%s kid=%s iat=%lld", pp_jwt_signer_team(cred->signer),
                    pp_jwt_signer_key_id(cred->signer), (long long)cred->iat);
            return 0;
        }
        s_rejected(s, cred, why, f.token, f.token_len);
        s_sha1_hex(f.token, f.token_len, replace_sha1);
        free(f.token);
        shared = "gave_up"; /* unless the next round stores ours */
    }
    cred->renew_at = 0;
    snprintf(cred->token, sizeof cred->token, "%s", cand);
    cred->iat = now_s;
    pp_metric_inc(s->minted);
    pp_info("jwt_minted", "team=%s kid=%s iat=%lld shared=%s", pp_jwt_signer_team(cred->signer),
            pp_jwt_signer_key_id(cred->signer), (long long)now_s, shared);
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

int64_t pp_jwt_share_on_invalid(pp_jwt_share_t *s, pp_apns_cred_t *cred, int64_t rejected_iat,
                                int64_t now_s)
{
    if (cred->token[0] && cred->iat != rejected_iat)
        return 0;       /* another token since that request went out: try it */
    if (cred->renew_at) /* a renewal of this token is already scheduled: wait for it */
        return cred->renew_at > now_s ? (cred->renew_at - now_s) * 1000 + 1000 : 0;
    s_slot_t *slot = s_slot(s, cred);
    if (!slot) return s->t.refused_resign_s * 1000;
    int64_t at = now_s;
    if (slot->refused_resign_s && slot->refused_resign_s + s->t.refused_resign_s > now_s)
        at = slot->refused_resign_s + s->t.refused_resign_s;
    slot->refused_resign_s = at;
    cred->renew_at = at; /* ensure() then re-signs and replaces the token in Redis */
    pp_metric_inc(s->refused_resigns);
    pp_warn("jwt_refused", "team=%s kid=%s iat=%lld effect=resign resign_in_s=%lld",
            pp_jwt_signer_team(cred->signer), pp_jwt_signer_key_id(cred->signer),
            (long long)rejected_iat, (long long)(at - now_s));
    /* A second past the renewal: the retry must go out with the new token. */
    return at > now_s ? (at - now_s) * 1000 + 1000 : 0;
}

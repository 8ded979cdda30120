#include "ats_check.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define JWT_MAX 4096

static const struct {
    const char *name;
    size_t len;
} s_headers[ATS_H_COUNT] = {
    [ATS_H_METHOD] = {":method", 7},
    [ATS_H_PATH] = {":path", 5},
    [ATS_H_AUTHORIZATION] = {"authorization", 13},
    [ATS_H_TOPIC] = {"apns-topic", 10},
    [ATS_H_PUSH_TYPE] = {"apns-push-type", 14},
    [ATS_H_PRIORITY] = {"apns-priority", 13},
    [ATS_H_EXPIRATION] = {"apns-expiration", 15},
    [ATS_H_COLLAPSE_ID] = {"apns-collapse-id", 16},
    [ATS_H_APNS_ID] = {"apns-id", 7},
};

int ats_header_index(const uint8_t *name, size_t len)
{
    for (int i = 0; i < ATS_H_COUNT; i++)
        if (s_headers[i].len == len && memcmp(s_headers[i].name, name, len) == 0) return i;
    return -1;
}

/*  Push types and the topic suffix Apple requires for them. */
static const struct {
    const char *type;
    const char *suffix;
} s_push_types[] = {
    {"alert", NULL},
    {"background", NULL},
    {"location", NULL},
    {"voip", ".voip"},
    {"complication", ".complication"},
    {"fileprovider", ".pushkit.fileprovider"},
    {"mdm", NULL},
    {"liveactivity", ".push-type.liveactivity"},
    {"pushtotalk", ".voip-ptt"},
    {"widgets", NULL},
    {"controls", NULL},
};

static bool s_is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool ats_uuid_valid(const char *text, size_t len)
{
    if (!text || len != 36) return false;
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (text[i] != '-') return false;
        } else if (!s_is_hex(text[i]))
            return false;
    }
    return true;
}

void ats_uuid_generate(char out[37])
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) {
        /* The DRBG failing is not something a test server can fix; fall back to rand(),
           the id only needs to be unique-ish. */
        for (size_t i = 0; i < sizeof b; i++)
            b[i] = (unsigned char)rand();
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

void ats_conn_auth_clear(ats_conn_auth_t *auth)
{
    free(auth->jwt_ok);
    auth->jwt_ok = NULL;
    auth->jwt_ok_len = 0;
}

/*  base64url without padding (RFC 7515) to bytes. OpenSSL's EVP_DecodeBlock only knows
    the standard alphabet with padding, so the text is translated first. Returns the
    decoded length or -1. */
static int s_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap)
{
    if (len == 0 || len % 4 == 1 || len > JWT_MAX) return -1;
    char tmp[JWT_MAX + 4];
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return -1;
        tmp[i] = c;
    }
    size_t pad = (4 - len % 4) % 4;
    for (size_t i = 0; i < pad; i++)
        tmp[len + i] = '=';
    size_t full = len + pad;
    if (full / 4 * 3 > outcap) return -1;
    int n = EVP_DecodeBlock(out, (const unsigned char *)tmp, (int)full);
    if (n < 0) return -1;
    return n - (int)pad;
}

static json_t *s_b64url_json(const char *in, size_t len)
{
    unsigned char buf[JWT_MAX];
    int n = s_b64url_decode(in, len, buf, sizeof buf);
    if (n <= 0) return NULL;
    json_t *j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/*  ES256 signature check: JWT carries raw r||s, OpenSSL verifies DER, so r and s go
    through ECDSA_SIG. */
static bool s_es256_ok(EVP_PKEY *key, const char *signed_part, size_t signed_len,
                       const unsigned char rs[64])
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(rs, 32, NULL), *s = BN_bin2bn(rs + 32, 32, NULL);
    bool ok = false;
    if (!sig || !r || !s) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(sig);
        return false;
    }
    ECDSA_SIG_set0(sig, r, s); /* sig owns r and s now */
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(sig, &der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    if (der_len > 0 && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
        EVP_DigestVerify(md, der, (size_t)der_len, (const unsigned char *)signed_part,
                         signed_len) == 1)
        ok = true;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    return ok;
}

const char *ats_jwt_verify(const ats_check_config_t *cfg, const char *jwt, size_t len,
                           int64_t now_s, int64_t *iat)
{
    const char *bad = "InvalidProviderToken";
    if (len == 0 || len > JWT_MAX) return bad;
    const char *dot1 = memchr(jwt, '.', len);
    if (!dot1) return bad;
    const char *dot2 = memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - jwt));
    if (!dot2 || memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - jwt))) return bad;
    const char *end = jwt + len;

    json_t *hdr = s_b64url_json(jwt, (size_t)(dot1 - jwt));
    json_t *claims = s_b64url_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    const char *reason = bad;
    unsigned char rs[JWT_MAX];
    int rs_len = s_b64url_decode(dot2 + 1, (size_t)(end - dot2 - 1), rs, sizeof rs);
    if (!hdr || !claims || rs_len != 64) goto done;
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    const char *kid = json_string_value(json_object_get(hdr, "kid"));
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    json_t *jiat = json_object_get(claims, "iat");
    if (!alg || strcmp(alg, "ES256") != 0 || !kid || !iss || !json_is_integer(jiat)) goto done;
    if (cfg->key_id && strcmp(kid, cfg->key_id) != 0) goto done;
    if (cfg->team_id && strcmp(iss, cfg->team_id) != 0) goto done;
    if (!s_es256_ok(cfg->jwt_key, jwt, (size_t)(dot2 - jwt), rs)) goto done;
    int64_t t = (int64_t)json_integer_value(jiat);
    /* A token from the future is as wrong as a forged one (clock skew of a minute allowed). */
    if (t > now_s + 60) goto done;
    *iat = t;
    reason = (now_s - t > cfg->jwt_max_age_s) ? "ExpiredProviderToken" : NULL;
done:
    json_decref(hdr);
    json_decref(claims);
    return reason;
}

static void s_fail(ats_verdict_t *v, int status, const char *reason)
{
    v->status = status;
    v->reason = reason;
}

/*  Path and device token. Returns false after setting the verdict. */
static bool s_check_path(const ats_request_t *req, ats_verdict_t *v)
{
    const char *p = req->hdr[ATS_H_PATH];
    size_t len = req->len[ATS_H_PATH];
    static const char prefix[] = "/3/device/";
    const size_t plen = sizeof prefix - 1;
    if (!p || req->oversize[ATS_H_PATH]) {
        s_fail(v, 404, "BadPath");
        return false;
    }
    if ((len == plen && memcmp(p, prefix, plen) == 0) ||
        (len == plen - 1 && memcmp(p, prefix, plen - 1) == 0)) {
        s_fail(v, 400, "MissingDeviceToken");
        return false;
    }
    if (len < plen || memcmp(p, prefix, plen) != 0) {
        s_fail(v, 404, "BadPath");
        return false;
    }
    const char *tok = p + plen;
    size_t tlen = len - plen;
    bool ok = tlen >= 16 && tlen <= 200 && tlen % 2 == 0;
    for (size_t i = 0; ok && i < tlen; i++)
        ok = s_is_hex(tok[i]);
    if (!ok) {
        s_fail(v, 400, "BadDeviceToken");
        return false;
    }
    v->token = tok;
    v->token_len = tlen;
    return true;
}

static bool s_check_auth(const ats_check_config_t *cfg, ats_conn_auth_t *auth,
                         const ats_request_t *req, int64_t now_s, ats_verdict_t *v)
{
    if (auth->cert_ok) {
        v->auth = "cert";
        return true;
    }
    if (!cfg->jwt_key) {
        if (cfg->cert_auth) {
            /* Certificate auth configured but no certificate on this connection. */
            s_fail(v, 403, "MissingProviderToken");
            return false;
        }
        v->auth = "none";
        return true;
    }
    v->auth = "token";
    const char *a = req->hdr[ATS_H_AUTHORIZATION];
    if (!a) {
        s_fail(v, 403, "MissingProviderToken");
        return false;
    }
    size_t alen = req->len[ATS_H_AUTHORIZATION];
    if (req->oversize[ATS_H_AUTHORIZATION] || alen < 8 || strncasecmp(a, "bearer ", 7) != 0) {
        s_fail(v, 403, "InvalidProviderToken");
        return false;
    }
    const char *jwt = a + 7;
    size_t jlen = alen - 7;
    if (auth->jwt_ok && auth->jwt_ok_len == jlen && memcmp(auth->jwt_ok, jwt, jlen) == 0) {
        v->jwt_iat = auth->jwt_ok_iat;
        if (now_s - auth->jwt_ok_iat > cfg->jwt_max_age_s) {
            s_fail(v, 403, "ExpiredProviderToken");
            return false;
        }
        return true;
    }
    int64_t iat = -1;
    const char *reason = ats_jwt_verify(cfg, jwt, jlen, now_s, &iat);
    if (reason) {
        v->jwt_iat = iat;
        s_fail(v, 403, reason);
        return false;
    }
    ats_conn_auth_clear(auth);
    auth->jwt_ok = malloc(jlen);
    if (auth->jwt_ok) {
        memcpy(auth->jwt_ok, jwt, jlen);
        auth->jwt_ok_len = jlen;
        auth->jwt_ok_iat = iat;
    }
    v->jwt_iat = iat;
    v->jwt_new = true;
    return true;
}

static bool s_topic_chars_ok(const char *t, size_t len)
{
    if (len == 0 || len > 255) return false;
    for (size_t i = 0; i < len; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == '_'))
            return false;
    }
    return true;
}

static bool s_topic_allowed(const ats_check_config_t *cfg, const ats_conn_auth_t *auth,
                            const char *base, size_t len)
{
    if (!cfg->topics && !auth->cert_ok) return true; /* no list: any topic */
    if (auth->cert_ok && strlen(auth->cert_topic) == len &&
        memcmp(auth->cert_topic, base, len) == 0)
        return true;
    for (char **t = cfg->topics; t && *t; t++)
        if (strlen(*t) == len && memcmp(*t, base, len) == 0) return true;
    return false;
}

/*  Topic and push type, which depend on each other through the topic suffix. */
static bool s_check_topic(const ats_check_config_t *cfg, const ats_conn_auth_t *auth,
                          const ats_request_t *req, ats_verdict_t *v, size_t *payload_max)
{
    const char *pt = req->hdr[ATS_H_PUSH_TYPE];
    const char *suffix = NULL;
    if (pt) {
        size_t i, n = sizeof s_push_types / sizeof s_push_types[0];
        for (i = 0; i < n; i++)
            if (strcmp(pt, s_push_types[i].type) == 0 &&
                strlen(s_push_types[i].type) == req->len[ATS_H_PUSH_TYPE])
                break;
        if (i == n) {
            s_fail(v, 400, "InvalidPushType");
            return false;
        }
        suffix = s_push_types[i].suffix;
        if (strcmp(pt, "voip") == 0) *payload_max = ATS_PAYLOAD_MAX_VOIP;
    }
    const char *topic = req->hdr[ATS_H_TOPIC];
    size_t tlen = req->len[ATS_H_TOPIC];
    if (!topic) {
        if (!auth->cert_ok || !auth->cert_topic[0]) {
            s_fail(v, 400, "MissingTopic");
            return false;
        }
        topic = auth->cert_topic; /* Apple: the certificate's topic is the default */
        tlen = strlen(topic);
    }
    if (req->oversize[ATS_H_TOPIC] || !s_topic_chars_ok(topic, tlen)) {
        s_fail(v, 400, "BadTopic");
        return false;
    }
    size_t base_len = tlen;
    if (suffix) {
        size_t slen = strlen(suffix);
        if (tlen <= slen || memcmp(topic + tlen - slen, suffix, slen) != 0) {
            s_fail(v, 400, "DeviceTokenNotForTopic");
            return false;
        }
        base_len = tlen - slen;
    }
    if (!s_topic_allowed(cfg, auth, topic, base_len)) {
        s_fail(v, 400, "TopicDisallowed");
        return false;
    }
    v->topic = topic;
    v->topic_len = tlen;
    return true;
}

static bool s_check_fields(const ats_request_t *req, ats_verdict_t *v)
{
    const char *pr = req->hdr[ATS_H_PRIORITY];
    v->priority = 10;
    if (pr) {
        if (strcmp(pr, "10") == 0)
            v->priority = 10;
        else if (strcmp(pr, "5") == 0)
            v->priority = 5;
        else if (strcmp(pr, "1") == 0)
            v->priority = 1;
        else {
            s_fail(v, 400, "BadPriority");
            return false;
        }
    }
    const char *pt = req->hdr[ATS_H_PUSH_TYPE];
    if (pt && strcmp(pt, "background") == 0 && v->priority != 5) {
        s_fail(v, 400, "BadPriority");
        return false;
    }
    const char *ex = req->hdr[ATS_H_EXPIRATION];
    if (ex) {
        size_t n = req->len[ATS_H_EXPIRATION];
        bool ok = n >= 1 && n <= 18; /* fits int64 with no overflow check needed */
        int64_t val = 0;
        for (size_t i = 0; ok && i < n; i++) {
            ok = ex[i] >= '0' && ex[i] <= '9';
            val = val * 10 + (ex[i] - '0');
        }
        if (!ok) {
            s_fail(v, 400, "BadExpirationDate");
            return false;
        }
        v->has_expiration = true;
        v->expiration = val;
    }
    if (req->hdr[ATS_H_COLLAPSE_ID] &&
        (req->oversize[ATS_H_COLLAPSE_ID] || req->len[ATS_H_COLLAPSE_ID] > 64)) {
        s_fail(v, 400, "BadCollapseId");
        return false;
    }
    return true;
}

static bool s_check_payload(const ats_request_t *req, size_t payload_max, ats_verdict_t *v)
{
    if (req->body_total == 0) {
        s_fail(v, 400, "PayloadEmpty");
        return false;
    }
    if (req->body_total > payload_max) {
        s_fail(v, 413, "PayloadTooLarge");
        return false;
    }
    json_t *j = json_loadb(req->body, req->body_len, 0, NULL);
    bool ok = j && json_is_object(j) && json_is_object(json_object_get(j, "aps"));
    json_decref(j);
    if (!ok) {
        s_fail(v, 400, "BadPayload");
        return false;
    }
    return true;
}

void ats_check_request(const ats_check_config_t *cfg, ats_conn_auth_t *auth,
                       const ats_request_t *req, int64_t now_s, ats_verdict_t *v)
{
    memset(v, 0, sizeof *v);
    v->status = 200;
    v->auth = "none";
    v->jwt_iat = -1;
    v->priority = 10;
    size_t payload_max = ATS_PAYLOAD_MAX;
    if (req->duplicate) {
        s_fail(v, 400, "DuplicateHeaders");
        return;
    }
    const char *m = req->hdr[ATS_H_METHOD];
    if (!m || strcmp(m, "POST") != 0) {
        s_fail(v, 405, "MethodNotAllowed");
        return;
    }
    if (!s_check_path(req, v)) return;
    if (req->hdr[ATS_H_APNS_ID]) {
        if (!ats_uuid_valid(req->hdr[ATS_H_APNS_ID], req->len[ATS_H_APNS_ID])) {
            s_fail(v, 400, "BadMessageId");
            return;
        }
        v->apns_id_ok = true;
    }
    if (!s_check_auth(cfg, auth, req, now_s, v)) return;
    if (!s_check_topic(cfg, auth, req, v, &payload_max)) return;
    if (!s_check_fields(req, v)) return;
    s_check_payload(req, payload_max, v);
}

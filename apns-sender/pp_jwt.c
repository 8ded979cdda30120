#include "pp_jwt.h"

#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct pp_jwt_signer_t {
    EVP_PKEY *key;
    char team[65];
    char kid[65];
    char header_b64[160]; /* base64url of the header, which never changes */
};

static int s_id_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

pp_jwt_signer_t *pp_jwt_signer_new(const char *p8_path, const char *team_id, const char *key_id,
                                   char *err, size_t errlen)
{
    if (!s_id_ok(team_id) || !s_id_ok(key_id)) {
        snprintf(err, errlen, "team_id and key_id must be 1-64 characters of [A-Za-z0-9._-]");
        return NULL;
    }
    FILE *f = fopen(p8_path, "r");
    if (!f) {
        snprintf(err, errlen, "cannot open key file %s", p8_path);
        return NULL;
    }
    EVP_PKEY *key = PEM_read_PrivateKey(f, NULL, NULL, NULL);
    fclose(f);
    if (!key) {
        snprintf(err, errlen, "%s is not a PEM private key", p8_path);
        return NULL;
    }
    char group[64] = "";
    size_t glen = 0;
    if (EVP_PKEY_get_base_id(key) != EVP_PKEY_EC ||
        !EVP_PKEY_get_utf8_string_param(key, "group", group, sizeof group, &glen) ||
        strcmp(group, "prime256v1") != 0) {
        snprintf(err, errlen, "%s is not a P-256 (prime256v1) EC key", p8_path);
        EVP_PKEY_free(key);
        return NULL;
    }
    pp_jwt_signer_t *s = calloc(1, sizeof *s);
    if (!s) {
        EVP_PKEY_free(key);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    s->key = key;
    snprintf(s->team, sizeof s->team, "%s", team_id);
    snprintf(s->kid, sizeof s->kid, "%s", key_id);
    char header[128];
    int hn = snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"kid\":\"%s\"}", key_id);
    pp_base64url_encode(header, (size_t)hn, s->header_b64, sizeof s->header_b64);
    return s;
}

void pp_jwt_signer_destroy(pp_jwt_signer_t **p)
{
    if (!p || !*p) return;
    EVP_PKEY_free((*p)->key);
    free(*p);
    *p = NULL;
}

const char *pp_jwt_signer_team(const pp_jwt_signer_t *s)
{
    return s->team;
}

const char *pp_jwt_signer_key_id(const pp_jwt_signer_t *s)
{
    return s->kid;
}

/*  DER ECDSA-Sig-Value -> raw r||s, each left-padded to 32 bytes. */
static int s_der_to_raw(const unsigned char *der, size_t len, unsigned char raw[64])
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)len);
    if (!sig) return -1;
    const BIGNUM *r = NULL, *s = NULL;
    ECDSA_SIG_get0(sig, &r, &s);
    int rc = (BN_bn2binpad(r, raw, 32) == 32 && BN_bn2binpad(s, raw + 32, 32) == 32) ? 0 : -1;
    ECDSA_SIG_free(sig);
    return rc;
}

int pp_jwt_sign(pp_jwt_signer_t *s, int64_t iat, char *out, size_t outlen)
{
    char claims[160], claims_b64[224];
    int cn =
        snprintf(claims, sizeof claims, "{\"iss\":\"%s\",\"iat\":%lld}", s->team, (long long)iat);
    if (pp_base64url_encode(claims, (size_t)cn, claims_b64, sizeof claims_b64) < 0) return -1;
    int n = snprintf(out, outlen, "%s.%s", s->header_b64, claims_b64);
    if (n < 0 || (size_t)n + 1 + 87 > outlen) /* room for '.' and 86 signature characters */
        return -1;

    unsigned char der[80], raw[64];
    size_t der_len = sizeof der;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, s->key) == 1 &&
             EVP_DigestSign(md, der, &der_len, (const unsigned char *)out, (size_t)n) == 1;
    EVP_MD_CTX_free(md);
    if (!ok || s_der_to_raw(der, der_len, raw) != 0) return -1;
    out[n++] = '.';
    int sn = pp_base64url_encode(raw, sizeof raw, out + n, outlen - (size_t)n);
    if (sn < 0) return -1;
    return n + sn;
}

/*  base64url -> JSON object, or NULL. Parts are bounded by PP_JWT_MAX by the caller. */
static json_t *s_b64_json(const char *in, size_t len)
{
    unsigned char buf[PP_JWT_MAX];
    int n = pp_base64url_decode(in, len, buf, sizeof buf);
    if (n <= 0) return NULL;
    json_t *j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (j && !json_is_object(j)) {
        json_decref(j);
        j = NULL;
    }
    return j;
}

/*  raw r||s -> DER, then EVP_DigestVerify with the public half of our key (an EVP_PKEY
    holding a private key verifies too). */
static int s_sig_ok(EVP_PKEY *key, const char *signed_part, size_t signed_len,
                    const unsigned char raw[64])
{
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *sv = BN_bin2bn(raw + 32, 32, NULL);
    if (!sig || !r || !sv || ECDSA_SIG_set0(sig, r, sv) != 1) {
        BN_free(r);
        BN_free(sv);
        ECDSA_SIG_free(sig);
        return 0;
    }
    unsigned char *der = NULL;
    int der_len = i2d_ECDSA_SIG(sig, &der);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = der_len > 0 && md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) == 1 &&
             EVP_DigestVerify(md, der, (size_t)der_len, (const unsigned char *)signed_part,
                              signed_len) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    return ok;
}

const char *pp_jwt_verify(pp_jwt_signer_t *s, const char *token, size_t len, int64_t now_s,
                          int64_t max_age_s, int64_t skew_s, int64_t *iat)
{
    if (!token || len == 0 || len >= PP_JWT_MAX) return "malformed";
    const char *end = token + len;
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', (size_t)(end - d1 - 1)) : NULL;
    if (!d2 || memchr(d2 + 1, '.', (size_t)(end - d2 - 1))) return "malformed";
    unsigned char raw[PP_JWT_MAX];
    int rn = pp_base64url_decode(d2 + 1, (size_t)(end - d2 - 1), raw, sizeof raw);
    json_t *hdr = s_b64_json(token, (size_t)(d1 - token));
    json_t *claims = s_b64_json(d1 + 1, (size_t)(d2 - d1 - 1));
    const char *why = NULL;
    const char *alg = json_string_value(json_object_get(hdr, "alg"));
    const char *kid = json_string_value(json_object_get(hdr, "kid"));
    const char *iss = json_string_value(json_object_get(claims, "iss"));
    json_t *jiat = json_object_get(claims, "iat");
    if (!hdr || !claims || rn != 64)
        why = "malformed";
    else if (!alg || strcmp(alg, "ES256") != 0)
        why = "alg";
    else if (!kid || strcmp(kid, s->kid) != 0)
        why = "kid";
    else if (!iss || strcmp(iss, s->team) != 0)
        why = "iss";
    else if (!json_is_integer(jiat) || json_integer_value(jiat) > now_s + skew_s ||
             json_integer_value(jiat) < now_s - max_age_s)
        why = "iat";
    else if (!s_sig_ok(s->key, token, (size_t)(d2 - token), raw))
        why = "signature"; /* last: the costly check, and the one a forgery fails */
    if (!why && iat) *iat = (int64_t)json_integer_value(jiat);
    json_decref(hdr);
    json_decref(claims);
    return why;
}

int pp_base64url_encode(const void *in, size_t len, char *out, size_t outlen)
{
    /* EVP_EncodeBlock does standard base64 with padding; translate to the URL alphabet
       and drop the padding rather than hand-writing the encoder. */
    size_t need = 4 * ((len + 2) / 3) + 1;
    if (need > outlen || len > 0x3fffffff) return -1;
    int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
    while (n > 0 && out[n - 1] == '=')
        n--;
    for (int i = 0; i < n; i++) {
        if (out[i] == '+')
            out[i] = '-';
        else if (out[i] == '/')
            out[i] = '_';
    }
    out[n] = '\0';
    return n;
}

int pp_base64url_decode(const char *in, size_t len, unsigned char *out, size_t outlen)
{
    if (len % 4 == 1 || len > 0x3ffffff0) return -1;
    size_t padded = (len + 3) / 4 * 4;
    char *tmp = malloc(padded + 1);
    if (!tmp) return -1;
    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '-')
            c = '+';
        else if (c == '_')
            c = '/';
        else if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))) {
            free(tmp);
            return -1;
        }
        tmp[i] = c;
    }
    for (size_t i = len; i < padded; i++)
        tmp[i] = '=';
    size_t n = padded / 4 * 3 - (padded - len);
    unsigned char *buf = malloc(padded / 4 * 3 + 1);
    int rc = -1;
    if (buf && n <= outlen && EVP_DecodeBlock(buf, (unsigned char *)tmp, (int)padded) >= 0) {
        memcpy(out, buf, n);
        rc = (int)n;
    }
    free(buf);
    free(tmp);
    return rc;
}

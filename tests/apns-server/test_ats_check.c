/*  Unit tests of ats_check: Apple's rule book on requests built in memory, and ES256 JWTs
    signed here with a fresh P-256 key. */
#include "ats_check.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

static EVP_PKEY *s_key;
static const char *TOKEN64 = "abababababababababababababababababababababababababababababababab";

static void s_b64url(const unsigned char *in, size_t len, char *out)
{
    static const char al[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < len) v |= in[i + 2];
        out[o++] = al[(v >> 18) & 63];
        out[o++] = al[(v >> 12) & 63];
        if (i + 1 < len) out[o++] = al[(v >> 6) & 63];
        if (i + 2 < len) out[o++] = al[v & 63];
    }
    out[o] = 0;
}

/*  Signs header.claims with s_key and returns the JWT (static buffer). */
static const char *s_jwt(const char *alg, const char *kid, const char *iss, long long iat)
{
    static char jwt[1024];
    char hdr[128], claims[128];
    snprintf(hdr, sizeof hdr, "{\"alg\":\"%s\",\"kid\":\"%s\"}", alg, kid);
    snprintf(claims, sizeof claims, "{\"iss\":\"%s\",\"iat\":%lld}", iss, iat);
    char h64[256], c64[256];
    s_b64url((const unsigned char *)hdr, strlen(hdr), h64);
    s_b64url((const unsigned char *)claims, strlen(claims), c64);
    char input[600];
    snprintf(input, sizeof input, "%s.%s", h64, c64);
    unsigned char der[128];
    size_t der_len = sizeof der;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, s_key), 1);
    assert_int_equal(EVP_DigestSign(md, der, &der_len, (unsigned char *)input, strlen(input)), 1);
    EVP_MD_CTX_free(md);
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    unsigned char rs[64];
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), rs, 32);
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), rs + 32, 32);
    ECDSA_SIG_free(sig);
    char s64[128];
    s_b64url(rs, 64, s64);
    snprintf(jwt, sizeof jwt, "%s.%s", input, s64);
    return jwt;
}

static ats_check_config_t s_cfg(void)
{
    static char *topics[] = {"com.example.app", NULL};
    ats_check_config_t cfg = {.jwt_key = s_key,
                              .team_id = "TEAM123456",
                              .key_id = "TESTKEY01",
                              .jwt_max_age_s = 3600,
                              .topics = topics};
    return cfg;
}

static void s_set(ats_request_t *q, int i, const char *v)
{
    free(q->hdr[i]);
    q->hdr[i] = v ? strdup(v) : NULL;
    q->len[i] = v ? strlen(v) : 0;
}

static void s_body(ats_request_t *q, const char *b)
{
    free(q->body);
    q->body = strdup(b);
    q->body_len = q->body_total = strlen(b);
}

static ats_request_t s_good(long long now)
{
    ats_request_t q;
    memset(&q, 0, sizeof q);
    s_set(&q, ATS_H_METHOD, "POST");
    char path[300];
    snprintf(path, sizeof path, "/3/device/%s", TOKEN64);
    s_set(&q, ATS_H_PATH, path);
    char auth[1100];
    snprintf(auth, sizeof auth, "bearer %s", s_jwt("ES256", "TESTKEY01", "TEAM123456", now));
    s_set(&q, ATS_H_AUTHORIZATION, auth);
    s_set(&q, ATS_H_TOPIC, "com.example.app");
    s_set(&q, ATS_H_PUSH_TYPE, "alert");
    s_body(&q, "{\"aps\":{\"alert\":\"hi\"}}");
    return q;
}

static void s_free(ats_request_t *q)
{
    for (int i = 0; i < ATS_H_COUNT; i++)
        free(q->hdr[i]);
    free(q->body);
}

static const char *s_reason(ats_request_t *q, long long now)
{
    ats_check_config_t cfg = s_cfg();
    ats_conn_auth_t auth;
    memset(&auth, 0, sizeof auth);
    ats_verdict_t v;
    ats_check_request(&cfg, &auth, q, now, &v);
    ats_conn_auth_clear(&auth);
    return v.reason ? v.reason : "OK";
}

static void test_uuid(void **state)
{
    (void)state;
    assert_true(ats_uuid_valid("123e4567-e89b-12d3-a456-426614174000", 36));
    assert_true(ats_uuid_valid("123E4567-E89B-12D3-A456-426614174000", 36));
    assert_false(ats_uuid_valid("123e4567e89b-12d3-a456-426614174000-", 36));
    assert_false(ats_uuid_valid("123e4567-e89b-12d3-a456-42661417400g", 36));
    assert_false(ats_uuid_valid("123e4567-e89b-12d3-a456-4266141740", 34));
    char u[37];
    ats_uuid_generate(u);
    assert_true(ats_uuid_valid(u, strlen(u)));
    assert_int_equal(u[14], '4');
}

static void test_headers(void **state)
{
    (void)state;
    assert_int_equal(ats_header_index((const uint8_t *)"apns-topic", 10), ATS_H_TOPIC);
    assert_int_equal(ats_header_index((const uint8_t *)":path", 5), ATS_H_PATH);
    assert_int_equal(ats_header_index((const uint8_t *)"apns-topi", 9), -1);
    assert_int_equal(ats_header_index((const uint8_t *)"user-agent", 10), -1);
}

static void test_jwt(void **state)
{
    (void)state;
    ats_check_config_t cfg = s_cfg();
    long long now = (long long)time(NULL);
    int64_t iat = 0;
    const char *j = s_jwt("ES256", "TESTKEY01", "TEAM123456", now - 10);
    assert_null(ats_jwt_verify(&cfg, j, strlen(j), now, &iat));
    assert_int_equal(iat, now - 10);
    j = s_jwt("ES256", "TESTKEY01", "TEAM123456", now - 3601);
    assert_string_equal(ats_jwt_verify(&cfg, j, strlen(j), now, &iat), "ExpiredProviderToken");
    j = s_jwt("ES256", "OTHERKEY", "TEAM123456", now);
    assert_string_equal(ats_jwt_verify(&cfg, j, strlen(j), now, &iat), "InvalidProviderToken");
    j = s_jwt("ES256", "TESTKEY01", "OTHERTEAM", now);
    assert_string_equal(ats_jwt_verify(&cfg, j, strlen(j), now, &iat), "InvalidProviderToken");
    j = s_jwt("ES384", "TESTKEY01", "TEAM123456", now);
    assert_string_equal(ats_jwt_verify(&cfg, j, strlen(j), now, &iat), "InvalidProviderToken");
    j = s_jwt("ES256", "TESTKEY01", "TEAM123456", now + 3600); /* from the future */
    assert_string_equal(ats_jwt_verify(&cfg, j, strlen(j), now, &iat), "InvalidProviderToken");
    /* A flipped bit anywhere breaks it; so do truncation and junk. */
    char bad[1024];
    j = s_jwt("ES256", "TESTKEY01", "TEAM123456", now);
    size_t n = strlen(j);
    for (size_t i = 0; i + 1 < n; i += 7) { /* the last char holds padding bits */
        memcpy(bad, j, n + 1);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        if (strcmp(bad, j) != 0) assert_non_null(ats_jwt_verify(&cfg, bad, n, now, &iat));
    }
    for (size_t cut = 0; cut < n; cut += 5)
        assert_non_null(ats_jwt_verify(&cfg, j, cut, now, &iat));
    static const char *const junk[] = {
        "", ".", "..", "a.b.c", "a.b.c.d", "====.====.====", "eyJhbGciOiJFUzI1NiJ9..", NULL};
    for (const char *const *s = junk; *s; s++)
        assert_string_equal(ats_jwt_verify(&cfg, *s, strlen(*s), now, &iat),
                            "InvalidProviderToken");
}

static void test_request(void **state)
{
    (void)state;
    long long now = (long long)time(NULL);
    ats_request_t q = s_good(now);
    assert_string_equal(s_reason(&q, now), "OK");

    char path[300];
    static const struct {
        size_t len;
        const char *want;
    } lens[] = {{14, "BadDeviceToken"},
                {16, "OK"},
                {17, "BadDeviceToken"},
                {200, "OK"},
                {202, "BadDeviceToken"}};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        snprintf(path, sizeof path, "/3/device/%.*s", (int)lens[i].len,
                 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789abc"
                 "def0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789a"
                 "bcdef0123456789abcdef0123456789abcdef0123456789abcdef");
        s_set(&q, ATS_H_PATH, path);
        assert_string_equal(s_reason(&q, now), lens[i].want);
    }
    s_set(&q, ATS_H_PATH, "/3/device");
    assert_string_equal(s_reason(&q, now), "MissingDeviceToken");
    s_set(&q, ATS_H_PATH, "/");
    assert_string_equal(s_reason(&q, now), "BadPath");
    s_free(&q);

    q = s_good(now);
    q.duplicate = true;
    assert_string_equal(s_reason(&q, now), "DuplicateHeaders");
    s_free(&q);

    static const struct {
        int h;
        const char *value;
        const char *want;
    } cases[] = {
        {ATS_H_METHOD, "GET", "MethodNotAllowed"},
        {ATS_H_TOPIC, NULL, "MissingTopic"},
        {ATS_H_TOPIC, "com.example.other", "TopicDisallowed"},
        {ATS_H_TOPIC, "", "BadTopic"},
        {ATS_H_PUSH_TYPE, "alerts", "InvalidPushType"},
        {ATS_H_PUSH_TYPE, "", "InvalidPushType"},
        {ATS_H_PUSH_TYPE, "voip", "DeviceTokenNotForTopic"},
        {ATS_H_PUSH_TYPE, "background", "BadPriority"},
        {ATS_H_PUSH_TYPE, NULL, "OK"},
        {ATS_H_PRIORITY, "5", "OK"},
        {ATS_H_PRIORITY, "1", "OK"},
        {ATS_H_PRIORITY, "10 ", "BadPriority"},
        {ATS_H_PRIORITY, "0", "BadPriority"},
        {ATS_H_EXPIRATION, "0", "OK"},
        {ATS_H_EXPIRATION, "-1", "BadExpirationDate"},
        {ATS_H_EXPIRATION, "", "BadExpirationDate"},
        {ATS_H_EXPIRATION, "99999999999999999999", "BadExpirationDate"},
        {ATS_H_COLLAPSE_ID, "1234567890123456789012345678901234567890123456789012345678901234",
         "OK"},
        {ATS_H_COLLAPSE_ID, "12345678901234567890123456789012345678901234567890123456789012345",
         "BadCollapseId"},
        {ATS_H_APNS_ID, "123e4567-e89b-12d3-a456-426614174000", "OK"},
        {ATS_H_APNS_ID, "", "BadMessageId"},
        {ATS_H_AUTHORIZATION, NULL, "MissingProviderToken"},
        {ATS_H_AUTHORIZATION, "bearer", "InvalidProviderToken"},
        {ATS_H_AUTHORIZATION, "basic abc", "InvalidProviderToken"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        q = s_good(now);
        s_set(&q, cases[i].h, cases[i].value);
        const char *got = s_reason(&q, now);
        if (strcmp(got, cases[i].want) != 0)
            fail_msg("case %zu (%s): got %s, want %s", i, cases[i].value ? cases[i].value : "-",
                     got, cases[i].want);
        s_free(&q);
    }

    q = s_good(now);
    s_set(&q, ATS_H_PUSH_TYPE, "voip");
    s_set(&q, ATS_H_TOPIC, "com.example.app.voip");
    char big[6000];
    memset(big, ' ', sizeof big);
    memcpy(big, "{\"aps\":{}}", 10);
    big[5120] = 0;
    s_body(&q, big);
    assert_string_equal(s_reason(&q, now), "OK");
    q.body_total = 5121;
    assert_string_equal(s_reason(&q, now), "PayloadTooLarge");
    s_set(&q, ATS_H_PUSH_TYPE, "alert");
    s_set(&q, ATS_H_TOPIC, "com.example.app");
    big[4097] = 0;
    s_body(&q, big);
    assert_string_equal(s_reason(&q, now), "PayloadTooLarge");
    s_body(&q, "");
    assert_string_equal(s_reason(&q, now), "PayloadEmpty");
    s_body(&q, "{\"aps\":1}");
    assert_string_equal(s_reason(&q, now), "BadPayload");
    s_body(&q, "{\"aps\":{}} x");
    assert_string_equal(s_reason(&q, now), "BadPayload");
    s_free(&q);
}

static void test_jwt_cache(void **state)
{
    (void)state;
    long long now = (long long)time(NULL);
    ats_check_config_t cfg = s_cfg();
    ats_conn_auth_t auth;
    memset(&auth, 0, sizeof auth);
    ats_request_t q = s_good(now - 100);
    ats_verdict_t v;
    ats_check_request(&cfg, &auth, &q, now, &v);
    assert_int_equal(v.status, 200);
    assert_true(v.jwt_new);
    ats_check_request(&cfg, &auth, &q, now, &v);
    assert_int_equal(v.status, 200);
    assert_false(v.jwt_new); /* verified once per connection */
    /* The cached token still ages out. */
    ats_check_request(&cfg, &auth, &q, now + 3600, &v);
    assert_string_equal(v.reason, "ExpiredProviderToken");
    ats_conn_auth_clear(&auth);
    s_free(&q);
}

static void test_cert_auth(void **state)
{
    (void)state;
    long long now = (long long)time(NULL);
    ats_check_config_t cfg = s_cfg();
    cfg.cert_auth = true;
    ats_conn_auth_t auth;
    memset(&auth, 0, sizeof auth);
    auth.cert_ok = true;
    strcpy(auth.cert_cn, "com.example.certapp");
    strcpy(auth.cert_topic, "com.example.certapp");
    ats_request_t q = s_good(now);
    s_set(&q, ATS_H_AUTHORIZATION, NULL);
    s_set(&q, ATS_H_TOPIC, NULL);
    ats_verdict_t v;
    ats_check_request(&cfg, &auth, &q, now, &v);
    assert_int_equal(v.status, 200);
    assert_string_equal(v.auth, "cert");
    assert_int_equal(v.topic_len, strlen("com.example.certapp"));
    s_set(&q, ATS_H_TOPIC, "com.example.app"); /* from --topics */
    ats_check_request(&cfg, &auth, &q, now, &v);
    assert_int_equal(v.status, 200);
    auth.cert_ok = false;
    cfg.jwt_key = NULL;
    ats_check_request(&cfg, &auth, &q, now, &v);
    assert_string_equal(v.reason, "MissingProviderToken");
    s_free(&q);
}

int main(void)
{
    s_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uuid),      cmocka_unit_test(test_headers),
        cmocka_unit_test(test_jwt),       cmocka_unit_test(test_request),
        cmocka_unit_test(test_jwt_cache), cmocka_unit_test(test_cert_auth),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    EVP_PKEY_free(s_key);
    return rc;
}

/*  pp_jwt: tokens verify with OpenSSL against the public key; base64url round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "pp_jwt.h"

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char s_p8[256];

static EVP_PKEY *s_make_key(const char *curve, const char *path)
{
    EVP_PKEY *key = EVP_EC_gen(curve);
    FILE *f = fopen(path, "w");
    PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
    fclose(f);
    return key;
}

static int s_setup(void **state)
{
    snprintf(s_p8, sizeof s_p8, "/tmp/pp-jwt-test-%d.p8", (int)getpid());
    *state = s_make_key("P-256", s_p8);
    return 0;
}

static int s_teardown(void **state)
{
    EVP_PKEY_free(*state);
    unlink(s_p8);
    return 0;
}

static void test_base64url(void **state)
{
    (void)state;
    char out[64];
    unsigned char back[64];
    /* RFC 4648 test vectors, in the URL alphabet without padding. */
    assert_int_equal(pp_base64url_encode("f", 1, out, sizeof out), 2);
    assert_string_equal(out, "Zg");
    assert_int_equal(pp_base64url_encode("foob", 4, out, sizeof out), 6);
    assert_string_equal(out, "Zm9vYg");
    assert_int_equal(pp_base64url_encode("foobar", 6, out, sizeof out), 8);
    assert_string_equal(out, "Zm9vYmFy");
    const unsigned char bin[] = {0xfb, 0xff, 0xfe};
    assert_int_equal(pp_base64url_encode(bin, 3, out, sizeof out), 4);
    assert_string_equal(out, "-__-");
    assert_int_equal(pp_base64url_decode("-__-", 4, back, sizeof back), 3);
    assert_memory_equal(back, bin, 3);
    assert_int_equal(pp_base64url_decode("Zm9vYg", 6, back, sizeof back), 4);
    assert_memory_equal(back, "foob", 4);
    assert_int_equal(pp_base64url_decode("Zm9v+g", 6, back, sizeof back), -1); /* '+' */
    assert_int_equal(pp_base64url_decode("Zm9vY", 5, back, sizeof back), -1);  /* length */
    assert_int_equal(pp_base64url_encode("foobar", 6, out, 8), -1);            /* too small */
    for (size_t n = 0; n < 40; n++) {
        unsigned char in[40];
        for (size_t i = 0; i < n; i++)
            in[i] = (unsigned char)(i * 37 + n);
        int e = pp_base64url_encode(in, n, out, sizeof out);
        assert_true(e >= 0);
        assert_null(strchr(out, '='));
        assert_int_equal(pp_base64url_decode(out, (size_t)e, back, sizeof back), (int)n);
        assert_memory_equal(back, in, n);
    }
}

static void test_sign_verifies(void **state)
{
    EVP_PKEY *key = *state;
    char err[256];
    pp_jwt_signer_t *s = pp_jwt_signer_new(s_p8, "TEAM123456", "KEY1", err, sizeof err);
    assert_non_null(s);
    char jwt[PP_JWT_MAX];
    int n = pp_jwt_sign(s, 1700000000, jwt, sizeof jwt);
    assert_true(n > 0);
    assert_int_equal((int)strlen(jwt), n);

    char *dot1 = strchr(jwt, '.');
    char *dot2 = strrchr(jwt, '.');
    assert_non_null(dot1);
    assert_true(dot2 > dot1);
    unsigned char buf[256];
    int hl = pp_base64url_decode(jwt, (size_t)(dot1 - jwt), buf, sizeof buf);
    assert_true(hl > 0);
    buf[hl] = 0;
    assert_string_equal((char *)buf, "{\"alg\":\"ES256\",\"kid\":\"KEY1\"}");
    int cl = pp_base64url_decode(dot1 + 1, (size_t)(dot2 - dot1 - 1), buf, sizeof buf);
    assert_true(cl > 0);
    buf[cl] = 0;
    assert_string_equal((char *)buf, "{\"iss\":\"TEAM123456\",\"iat\":1700000000}");

    /* The signature is raw r||s: convert back to DER and verify with OpenSSL. */
    unsigned char raw[80];
    assert_int_equal(pp_base64url_decode(dot2 + 1, strlen(dot2 + 1), raw, sizeof raw), 64);
    ECDSA_SIG *sig = ECDSA_SIG_new();
    ECDSA_SIG_set0(sig, BN_bin2bn(raw, 32, NULL), BN_bin2bn(raw + 32, 32, NULL));
    unsigned char *der = NULL;
    int dl = i2d_ECDSA_SIG(sig, &der);
    assert_true(dl > 0);
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_equal(
        EVP_DigestVerify(md, der, (size_t)dl, (unsigned char *)jwt, (size_t)(dot2 - jwt)), 1);
    /* A changed claim must not verify. */
    jwt[(dot1 - jwt) + 3] ^= 1;
    EVP_MD_CTX_reset(md);
    assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key), 1);
    assert_int_not_equal(
        EVP_DigestVerify(md, der, (size_t)dl, (unsigned char *)jwt, (size_t)(dot2 - jwt)), 1);
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ECDSA_SIG_free(sig);
    assert_int_equal(pp_jwt_sign(s, 1700000000, jwt, 100), -1); /* too small */
    pp_jwt_signer_destroy(&s);
    assert_null(s);
}

static void test_bad_keys(void **state)
{
    (void)state;
    char err[256];
    assert_null(pp_jwt_signer_new("/nonexistent.p8", "T", "K", err, sizeof err));
    assert_non_null(strstr(err, "cannot open"));
    assert_null(pp_jwt_signer_new(s_p8, "", "K", err, sizeof err));
    assert_null(pp_jwt_signer_new(s_p8, "T\"}", "K", err, sizeof err));
    char p384[256];
    snprintf(p384, sizeof p384, "/tmp/pp-jwt-test-%d-384.p8", (int)getpid());
    EVP_PKEY *k = s_make_key("P-384", p384);
    assert_null(pp_jwt_signer_new(p384, "T", "K", err, sizeof err));
    assert_non_null(strstr(err, "P-256"));
    EVP_PKEY_free(k);
    unlink(p384);
}

/*  pp_jwt_verify: our own tokens pass; another key's, another team's or kid's, a stale or
    future one, a changed byte and garbage fail, each with its reason. */
static void test_verify(void **state)
{
    (void)state;
    char err[256], other_p8[280];
    const int64_t now = 1700000000;
    pp_jwt_signer_t *s = pp_jwt_signer_new(s_p8, "TEAM123456", "KEY1", err, sizeof err);
    assert_non_null(s);
    char jwt[PP_JWT_MAX];
    int n = pp_jwt_sign(s, now, jwt, sizeof jwt);
    int64_t iat = 0;
    assert_null(pp_jwt_verify(s, jwt, (size_t)n, now + 10, 3300, 60, &iat));
    assert_int_equal(iat, now);
    assert_string_equal(pp_jwt_verify(s, jwt, (size_t)n, now + 3301, 3300, 60, &iat), "iat");
    assert_string_equal(pp_jwt_verify(s, jwt, (size_t)n, now - 61, 3300, 60, &iat), "iat");

    /* Same team and kid, another key: only the signature tells. */
    snprintf(other_p8, sizeof other_p8, "%s.other", s_p8);
    EVP_PKEY_free(s_make_key("P-256", other_p8));
    pp_jwt_signer_t *o = pp_jwt_signer_new(other_p8, "TEAM123456", "KEY1", err, sizeof err);
    assert_non_null(o);
    char forged[PP_JWT_MAX];
    int fn = pp_jwt_sign(o, now, forged, sizeof forged);
    assert_string_equal(pp_jwt_verify(s, forged, (size_t)fn, now, 3300, 60, &iat), "signature");
    assert_null(pp_jwt_verify(o, forged, (size_t)fn, now, 3300, 60, &iat));
    pp_jwt_signer_destroy(&o);
    o = pp_jwt_signer_new(other_p8, "OTHERTEAM", "KEY1", err, sizeof err);
    fn = pp_jwt_sign(o, now, forged, sizeof forged);
    assert_string_equal(pp_jwt_verify(s, forged, (size_t)fn, now, 3300, 60, &iat), "iss");
    pp_jwt_signer_destroy(&o);
    o = pp_jwt_signer_new(other_p8, "TEAM123456", "KEY2", err, sizeof err);
    fn = pp_jwt_sign(o, now, forged, sizeof forged);
    assert_string_equal(pp_jwt_verify(s, forged, (size_t)fn, now, 3300, 60, &iat), "kid");
    pp_jwt_signer_destroy(&o);
    unlink(other_p8);

    /* One changed character of the claims (still valid base64url) breaks the signature. */
    char bad[PP_JWT_MAX];
    memcpy(bad, jwt, (size_t)n + 1);
    char *last = strrchr(bad, '.');
    last[-2] = last[-2] == 'A' ? 'B' : 'A';
    const char *why = pp_jwt_verify(s, bad, (size_t)n, now, 3300, 60, &iat);
    assert_non_null(why);
    const char *const junk[] = {"", "garbage", "a.b", "a.b.c", "a.b.c.d", "..", NULL};
    for (int i = 0; junk[i]; i++)
        assert_string_equal(pp_jwt_verify(s, junk[i], strlen(junk[i]), now, 3300, 60, &iat),
                            "malformed");
    /* A well-formed token with alg none. */
    char hdr[64], tok[PP_JWT_MAX];
    const char *none = "{\"alg\":\"none\",\"kid\":\"KEY1\"}";
    pp_base64url_encode(none, strlen(none), hdr, sizeof hdr);
    snprintf(tok, sizeof tok, "%s%s", hdr, strchr(jwt, '.'));
    assert_string_equal(pp_jwt_verify(s, tok, strlen(tok), now, 3300, 60, &iat), "alg");
    pp_jwt_signer_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64url),
        cmocka_unit_test_setup_teardown(test_sign_verifies, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_keys, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_verify, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/*  pp_jwt: ES256 provider tokens for APNs token authentication (OpenSSL).

    A token is header.claims.signature, each part base64url without padding:
      header  {"alg":"ES256","kid":"<key id>"}
      claims  {"iss":"<team id>","iat":<UNIX seconds>}
      signature  ECDSA P-256 over SHA-256 of "header.claims", as raw r||s (64 bytes):
                 OpenSSL produces DER, which JWT (RFC 7518 3.4) does not accept.
    The key is the team's .p8 file (PKCS#8 PEM, P-256).
*/
#ifndef PP_JWT_H
#define PP_JWT_H

#include <stddef.h>
#include <stdint.h>

typedef struct pp_jwt_signer_t pp_jwt_signer_t;

/*  Room for any token we make (team and key ids are limited to 64 bytes each). */
#define PP_JWT_MAX 512

/*  Loads the P-256 private key from p8_path for (team_id, key_id). Returns NULL with the
    reason in err if the file is unreadable, not a key, not P-256, or an id is empty, longer
    than 64 bytes or holds characters other than [A-Za-z0-9._-]. */
pp_jwt_signer_t *pp_jwt_signer_new(const char *p8_path, const char *team_id, const char *key_id,
                                   char *err, size_t errlen);
void pp_jwt_signer_destroy(pp_jwt_signer_t **p);

const char *pp_jwt_signer_team(const pp_jwt_signer_t *s);
const char *pp_jwt_signer_key_id(const pp_jwt_signer_t *s);

/*  Signs a token with the given iat into out (NUL-terminated). Returns its length, or -1
    if signing failed or out is too small. */
int pp_jwt_sign(pp_jwt_signer_t *s, int64_t iat, char *out, size_t outlen);

/*  Checks that token (len bytes) is one of ours: header.claims.signature, base64url, header
    {"alg":"ES256","kid":<our key id>}, claims {"iss":<our team id>,"iat":<integer>} with iat
    at most max_age_s old and at most skew_s ahead of now_s, and an ES256 signature (raw r||s)
    that the public half of our key verifies. Used before adopting a token another sender
    shared: one that Apple would refuse must not reach the wire. Returns NULL and sets *iat
    if it passes, else a short reason usable as a metric label: "malformed", "alg", "kid",
    "iss", "iat" or "signature". */
const char *pp_jwt_verify(pp_jwt_signer_t *s, const char *token, size_t len, int64_t now_s,
                          int64_t max_age_s, int64_t skew_s, int64_t *iat);

/*  base64url without padding (RFC 4648 section 5). Encode returns the length written
    (out NUL-terminated) or -1 if out is too small; decode returns the decoded length or
    -1 on a character outside the alphabet, a bad length, or out too small. */
int pp_base64url_encode(const void *in, size_t len, char *out, size_t outlen);
int pp_base64url_decode(const char *in, size_t len, unsigned char *out, size_t outlen);

#endif

/*  ats_check: what the APNs test server checks in one request, as Apple does.

    Pure functions over one parsed request (headers and body) and the connection's auth
    context; no I/O, no shared state, so the whole rule book can be unit-tested. The
    verdict gives Apple's status and reason ("BadDeviceToken", ...) or 200, and the fields
    the server records for an accepted notification.
*/
#ifndef ATS_CHECK_H
#define ATS_CHECK_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  The request headers the server looks at; any other header is ignored. */
enum {
    ATS_H_METHOD,
    ATS_H_PATH,
    ATS_H_AUTHORIZATION,
    ATS_H_TOPIC,
    ATS_H_PUSH_TYPE,
    ATS_H_PRIORITY,
    ATS_H_EXPIRATION,
    ATS_H_COLLAPSE_ID,
    ATS_H_APNS_ID,
    ATS_H_COUNT
};

/*  Longest header value kept; a longer one is marked oversize and fails its check. */
#define ATS_HDR_MAX 8192
/*  Payload limits (bytes): Apple's 4 KB, 5 KB for VoIP. */
#define ATS_PAYLOAD_MAX 4096
#define ATS_PAYLOAD_MAX_VOIP 5120

typedef struct {
    char *hdr[ATS_H_COUNT]; /* NUL-terminated copies, NULL when absent */
    size_t len[ATS_H_COUNT];
    bool oversize[ATS_H_COUNT];
    bool duplicate; /* one of ours came twice */
    char *body;     /* the first body_len bytes (at most ATS_PAYLOAD_MAX_VOIP + 1) */
    size_t body_len;
    size_t body_total; /* every byte received, kept or not */
} ats_request_t;

/*  What a server instance checks against. topics is NULL or a NULL-terminated list. */
typedef struct {
    EVP_PKEY *jwt_key; /* NULL: token auth off */
    const char *team_id;
    const char *key_id;
    int64_t jwt_max_age_s;
    bool cert_auth; /* --client-ca given */
    char **topics;
} ats_check_config_t;

/*  Per connection: the verified client certificate, and the last JWT that verified (so a
    connection that reuses its token, as Apple asks, costs one ECDSA verify, not one per
    request). */
typedef struct {
    bool cert_ok;
    char cert_cn[256];
    char cert_topic[256]; /* the cert's UID if present, else its CN */
    char *jwt_ok;
    size_t jwt_ok_len;
    int64_t jwt_ok_iat;
} ats_conn_auth_t;

typedef struct {
    int status;         /* 200 or Apple's error status */
    const char *reason; /* NULL on 200 */
    const char *auth;   /* "token", "cert" or "none" */
    int64_t jwt_iat;    /* -1 without token auth */
    bool jwt_new;       /* the JWT was verified now (not taken from the cache) */
    int priority;
    bool has_expiration;
    int64_t expiration;
    const char *token; /* points into the request's path */
    size_t token_len;
    const char *topic; /* the header's, or the cert's topic when the header is absent */
    size_t topic_len;
    bool apns_id_ok; /* the request carried a valid apns-id */
} ats_verdict_t;

/*  Returns the ATS_H_* index of a (lowercase, as HTTP/2 requires) header name, or -1. */
int ats_header_index(const uint8_t *name, size_t len);

/*  Checks a complete request in Apple's order: duplicate headers, method, path and
    device token, apns-id, authentication, push type, topic, priority, expiration,
    collapse id, payload. now_s is the wall clock in seconds. May update auth's JWT cache. */
void ats_check_request(const ats_check_config_t *cfg, ats_conn_auth_t *auth,
                       const ats_request_t *req, int64_t now_s, ats_verdict_t *v);

/*  Verifies an ES256 JWT (header.claims.signature, base64url, raw r||s signature) against
    cfg. Returns NULL when valid, with *iat set, or Apple's reason: "InvalidProviderToken"
    or "ExpiredProviderToken". */
const char *ats_jwt_verify(const ats_check_config_t *cfg, const char *jwt, size_t len,
                           int64_t now_s, int64_t *iat);

/*  Frees the JWT cache of a connection's auth context. */
void ats_conn_auth_clear(ats_conn_auth_t *auth);

/*  True if text is a canonical UUID (8-4-4-4-12 hex digits). */
bool ats_uuid_valid(const char *text, size_t len);

/*  Writes a random version-4 UUID (36 characters and a NUL) into out. */
void ats_uuid_generate(char out[37]);

#endif

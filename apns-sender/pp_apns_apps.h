/*  pp_apns_apps: the APNs apps of this sender (config section apns_sender.apps).

    apps is a map ident -> app:
      topic              bundle id (apns-topic); default: the ident
      auth               "token" (default) or "certificate"
      team_id, key_id    token auth: the developer team and the key's id
      key_file           token auth: the .p8 key; certificate auth: the client key (PEM)
      cert_file          certificate auth: the client certificate chain (PEM)
      default_push_type  when a job has none (default "alert")
      default_priority   when a job has none: 10 (default), 5 or 1
      connections        connections per environment (default 1, at most 64)

    Apps of one (team, key) share one provider token (pp_apns_cred_t). Every app has an
    SSL_CTX: one shared by all token apps, one per certificate app (its client certificate).
    Problems are reported to the config (pp_config_fail), naming the key.
*/
#ifndef PP_APNS_APPS_H
#define PP_APNS_APPS_H

#include "pp_config.h"
#include "pp_jwt.h"

#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { PP_APNS_AUTH_TOKEN = 0, PP_APNS_AUTH_CERT = 1 } pp_apns_auth_t;

/*  The provider token of one (team, key), shared by its apps and renewed by pp_jwt_share. */
typedef struct {
    pp_jwt_signer_t *signer;
    char token[PP_JWT_MAX]; /* "" until the first one is made */
    int64_t iat;            /* its issue time, UNIX seconds */
    int64_t renew_at;       /* renew once the wall clock reaches this (0: by age only) */
} pp_apns_cred_t;

typedef struct pp_h2pool_t pp_h2pool_t;

typedef struct {
    char *ident;
    char *topic;
    pp_apns_auth_t auth;
    pp_apns_cred_t *cred; /* token auth */
    SSL_CTX *ssl_ctx;
    char *default_push_type;
    int default_priority;
    int connections;
    pp_h2pool_t *pools[2]; /* per environment, made when first needed (owned by the sender) */
} pp_apns_app_t;

typedef struct pp_apns_apps_t pp_apns_apps_t;

/*  Reads apns_sender.apps. ca_file: the CA bundle that verifies APNs servers, or NULL/""
    for the system's. Returns the table (possibly empty); errors go to the config. */
pp_apns_apps_t *pp_apns_apps_new(pp_config_t *cfg, const char *ca_file);
void pp_apns_apps_destroy(pp_apns_apps_t **p);

size_t pp_apns_apps_count(const pp_apns_apps_t *apps);
pp_apns_app_t *pp_apns_apps_at(pp_apns_apps_t *apps, size_t i);
/*  The app of ident (len bytes, not NUL-terminated), or NULL. */
pp_apns_app_t *pp_apns_apps_find(pp_apns_apps_t *apps, const char *ident, size_t len);

size_t pp_apns_apps_cred_count(const pp_apns_apps_t *apps);
pp_apns_cred_t *pp_apns_apps_cred_at(pp_apns_apps_t *apps, size_t i);

/*  An SSL_CTX for APNs: TLS 1.2+, ALPN h2, peer verification with ca_file (or system CAs),
    and the client certificate when cert_file is given. NULL with err on failure. */
SSL_CTX *pp_apns_ssl_ctx_new(const char *ca_file, const char *cert_file, const char *key_file,
                             char *err, size_t errlen);

#endif

#include "pp_apns_apps.h"
#include "pp_curve.h"
#include "pp_limits.h"

#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_APPS 1000

struct pp_apns_apps_t {
    pp_apns_app_t *apps;
    size_t n;
    pp_apns_cred_t **creds;
    size_t n_creds;
    SSL_CTX *token_ctx; /* shared by every token app */
};

SSL_CTX *pp_apns_ssl_ctx_new(const char *ca_file, const char *cert_file, const char *key_file,
                             char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        snprintf(err, errlen, "SSL_CTX_new failed");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    static const unsigned char alpn[] = {2, 'h', '2'};
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn);
    int ok = (ca_file && *ca_file) ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                                   : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
        snprintf(err, errlen, "cannot load CA file %s", ca_file ? ca_file : "(system)");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (cert_file && *cert_file) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
            snprintf(err, errlen, "cannot load certificate %s", cert_file);
            SSL_CTX_free(ctx);
            return NULL;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, key_file ? key_file : "", SSL_FILETYPE_PEM) != 1 ||
            SSL_CTX_check_private_key(ctx) != 1) {
            snprintf(err, errlen, "cannot load key %s for %s", key_file ? key_file : "", cert_file);
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    ERR_clear_error();
    return ctx;
}

static const char *s_str(pp_config_t *cfg, json_t *app, const char *ident, const char *key,
                         const char *def)
{
    json_t *v = json_object_get(app, key);
    if (!v) return def;
    if (!json_is_string(v)) {
        pp_config_fail(cfg, "apns_sender.apps", "%s.%s: must be a string", ident, key);
        return def;
    }
    return json_string_value(v);
}

static long long s_int(pp_config_t *cfg, json_t *app, const char *ident, const char *key,
                       long long def, long long min, long long max)
{
    json_t *v = json_object_get(app, key);
    if (!v) return def;
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max) {
        pp_config_fail(cfg, "apns_sender.apps", "%s.%s: must be an integer in %lld..%lld", ident,
                       key, min, max);
        return def;
    }
    return json_integer_value(v);
}

static pp_apns_cred_t *s_cred(pp_apns_apps_t *apps, pp_config_t *cfg, const char *ident,
                              const char *team, const char *kid, const char *p8)
{
    for (size_t i = 0; i < apps->n_creds; i++) {
        pp_jwt_signer_t *s = apps->creds[i]->signer;
        if (!strcmp(pp_jwt_signer_team(s), team) && !strcmp(pp_jwt_signer_key_id(s), kid))
            return apps->creds[i];
    }
    char err[640];
    if (pp_secret_file_check(p8, err, sizeof err) != 0) { /* docs/security.md, key files */
        pp_config_fail(cfg, "apns_sender.apps", "%s.key_file: %s", ident, err);
        return NULL;
    }
    pp_jwt_signer_t *signer = pp_jwt_signer_new(p8, team, kid, err, sizeof err);
    if (!signer) {
        pp_config_fail(cfg, "apns_sender.apps", "%s: %s", ident, err);
        return NULL;
    }
    pp_apns_cred_t *cred = calloc(1, sizeof *cred);
    pp_apns_cred_t **creds = realloc(apps->creds, (apps->n_creds + 1) * sizeof *creds);
    if (!cred || !creds) {
        free(cred);
        pp_jwt_signer_destroy(&signer);
        pp_config_fail(cfg, "apns_sender.apps", "out of memory");
        return NULL;
    }
    apps->creds = creds;
    cred->signer = signer;
    apps->creds[apps->n_creds++] = cred;
    return cred;
}

static bool s_known_push_type(const char *t)
{
    static const char *const types[] = {"alert",        "background",   "location", "voip",
                                        "complication", "fileprovider", "mdm",      "liveactivity",
                                        "pushtotalk",   "widgets",      "controls", NULL};
    for (int i = 0; types[i]; i++)
        if (!strcmp(types[i], t)) return true;
    return false;
}

static void s_app(pp_apns_apps_t *apps, pp_config_t *cfg, const char *ident, json_t *j,
                  const char *ca_file)
{
    if (!json_is_object(j)) {
        pp_config_fail(cfg, "apns_sender.apps", "%s: must be an object", ident);
        return;
    }
    static const char *const keys[] = {
        "topic",       "auth",      "team_id",           "key_id",
        "key_file",    "cert_file", "default_push_type", "default_priority",
        "connections", NULL};
    const char *k;
    json_t *v;
    json_object_foreach(j, k, v)
    {
        bool known = false;
        for (int i = 0; keys[i]; i++)
            known = known || !strcmp(keys[i], k);
        if (!known) pp_config_fail(cfg, "apns_sender.apps", "%s.%s: unknown key", ident, k);
    }
    if (strlen(ident) == 0 || strlen(ident) > PP_IDENT_MAX_LEN) {
        pp_config_fail(cfg, "apns_sender.apps", "ident must be 1-%d bytes", PP_IDENT_MAX_LEN);
        return;
    }
    pp_apns_app_t *a = &apps->apps[apps->n];
    memset(a, 0, sizeof *a);
    const char *topic = s_str(cfg, j, ident, "topic", ident);
    const char *auth = s_str(cfg, j, ident, "auth", "token");
    const char *push_type = s_str(cfg, j, ident, "default_push_type", "alert");
    int prio = (int)s_int(cfg, j, ident, "default_priority", 10, 1, 10);
    int conns = (int)s_int(cfg, j, ident, "connections", 1, 1, 64);
    const char *key_file = s_str(cfg, j, ident, "key_file", "");
    if (prio != 10 && prio != 5 && prio != 1)
        pp_config_fail(cfg, "apns_sender.apps", "%s.default_priority: must be 10, 5 or 1", ident);
    if (!s_known_push_type(push_type))
        pp_config_fail(cfg, "apns_sender.apps", "%s.default_push_type: unknown push type \"%s\"",
                       ident, push_type);
    if (strlen(topic) == 0 || strlen(topic) > 200)
        pp_config_fail(cfg, "apns_sender.apps", "%s.topic: must be 1-200 bytes", ident);
    char err[300];
    if (!strcmp(auth, "token")) {
        a->auth = PP_APNS_AUTH_TOKEN;
        const char *team = s_str(cfg, j, ident, "team_id", "");
        const char *kid = s_str(cfg, j, ident, "key_id", "");
        if (!*team || !*kid || !*key_file) {
            pp_config_fail(cfg, "apns_sender.apps",
                           "%s: token auth needs team_id, key_id and key_file", ident);
            return;
        }
        a->cred = s_cred(apps, cfg, ident, team, kid, key_file);
        if (!a->cred) return;
        if (!apps->token_ctx) {
            apps->token_ctx = pp_apns_ssl_ctx_new(ca_file, NULL, NULL, err, sizeof err);
            if (!apps->token_ctx) {
                pp_config_fail(cfg, "apns_sender.ca_file", "%s", err);
                return;
            }
        }
        SSL_CTX_up_ref(apps->token_ctx);
        a->ssl_ctx = apps->token_ctx;
    } else if (!strcmp(auth, "certificate")) {
        a->auth = PP_APNS_AUTH_CERT;
        const char *cert = s_str(cfg, j, ident, "cert_file", "");
        if (!*cert || !*key_file) {
            pp_config_fail(cfg, "apns_sender.apps",
                           "%s: certificate auth needs cert_file and key_file", ident);
            return;
        }
        a->ssl_ctx = pp_apns_ssl_ctx_new(ca_file, cert, key_file, err, sizeof err);
        if (!a->ssl_ctx) {
            pp_config_fail(cfg, "apns_sender.apps", "%s: %s", ident, err);
            return;
        }
    } else {
        pp_config_fail(cfg, "apns_sender.apps", "%s.auth: must be \"token\" or \"certificate\"",
                       ident);
        return;
    }
    a->ident = strdup(ident);
    a->topic = strdup(topic);
    a->default_push_type = strdup(push_type);
    a->default_priority = prio;
    a->connections = conns;
    apps->n++;
}

pp_apns_apps_t *pp_apns_apps_new(pp_config_t *cfg, const char *ca_file)
{
    pp_apns_apps_t *apps = calloc(1, sizeof *apps);
    if (!apps) return NULL;
    json_t *j = pp_config_json(cfg, "apns_sender.apps");
    if (!j) return apps;
    if (!json_is_object(j)) {
        pp_config_fail(cfg, "apns_sender.apps", "must be an object ident -> app");
        return apps;
    }
    size_t n = json_object_size(j);
    if (n > S_MAX_APPS) {
        pp_config_fail(cfg, "apns_sender.apps", "at most %d apps", S_MAX_APPS);
        return apps;
    }
    apps->apps = calloc(n ? n : 1, sizeof *apps->apps);
    if (!apps->apps) return apps;
    const char *ident;
    json_t *v;
    json_object_foreach(j, ident, v) s_app(apps, cfg, ident, v, ca_file);
    return apps;
}

void pp_apns_apps_destroy(pp_apns_apps_t **p)
{
    if (!p || !*p) return;
    pp_apns_apps_t *apps = *p;
    for (size_t i = 0; i < apps->n; i++) {
        pp_apns_app_t *a = &apps->apps[i];
        SSL_CTX_free(a->ssl_ctx);
        free(a->ident);
        free(a->topic);
        free(a->default_push_type);
    }
    for (size_t i = 0; i < apps->n_creds; i++) {
        pp_jwt_signer_destroy(&apps->creds[i]->signer);
        free(apps->creds[i]);
    }
    SSL_CTX_free(apps->token_ctx);
    free(apps->creds);
    free(apps->apps);
    free(apps);
    *p = NULL;
}

size_t pp_apns_apps_count(const pp_apns_apps_t *apps)
{
    return apps->n;
}

pp_apns_app_t *pp_apns_apps_at(pp_apns_apps_t *apps, size_t i)
{
    return i < apps->n ? &apps->apps[i] : NULL;
}

pp_apns_app_t *pp_apns_apps_find(pp_apns_apps_t *apps, const char *ident, size_t len)
{
    /* A linear scan: deployments have a handful of apps, and jobs carry hundreds of
       targets each, so this is not on the per-notification path. */
    for (size_t i = 0; i < apps->n; i++)
        if (strlen(apps->apps[i].ident) == len && !memcmp(apps->apps[i].ident, ident, len))
            return &apps->apps[i];
    return NULL;
}

size_t pp_apns_apps_cred_count(const pp_apns_apps_t *apps)
{
    return apps->n_creds;
}

pp_apns_cred_t *pp_apns_apps_cred_at(pp_apns_apps_t *apps, size_t i)
{
    return i < apps->n_creds ? apps->creds[i] : NULL;
}

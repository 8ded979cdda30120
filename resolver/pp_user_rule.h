/*  pp_user_rule: the old service's rule that decides, from one user's Redis fields, whether
    the user is pushed over APNs (and to which app and environment) or over MQTT.

    Pure functions: no I/O, no allocation. The fields come from
    `HMGET User:<uid> app_token app_ident app_version app_focus` (see docs/resolver.md).
*/
#ifndef PP_USER_RULE_H
#define PP_USER_RULE_H

#include "pp_job.h"
#include "pp_json.h"   /* pp_utf8_valid */
#include "pp_limits.h" /* PP_ID_MAX_LEN, PP_TOKEN_MAX_LEN, PP_IDENT_MAX_LEN */

#include <stdbool.h>
#include <stddef.h>

/*  One user's fields; an empty string stands for a missing field (nil). */
typedef struct {
    pp_str_t token;
    pp_str_t ident;
    pp_str_t version;
    pp_str_t focus;
} pp_user_fields_t;

typedef enum {
    PP_USER_APNS = 0,  /* push over APNs */
    PP_USER_NO_TOKEN,  /* no app_token (non-iOS user or no hash): MQTT */
    PP_USER_FOCUSED,   /* app in the foreground: MQTT */
    PP_USER_BAD_TOKEN, /* app_token is not hex of sane length: MQTT, counted */
    PP_USER_NO_IDENT,  /* token but no app_ident and no default ident: MQTT, counted */
    PP_USER_BAD_IDENT, /* app_ident too long or not printable ASCII: MQTT, counted */
} pp_user_verdict_t;

typedef struct {
    int default_env;        /* PP_ENV_*, for app_version other than develop/produce */
    pp_str_t default_ident; /* used when app_ident is empty; empty = none */
    size_t token_min;       /* token length bounds, in hex characters */
    size_t token_max;
} pp_user_rule_cfg_t;

typedef struct {
    pp_user_verdict_t verdict;
    int env;              /* PP_ENV_*, meaningful for PP_USER_APNS */
    bool env_defaulted;   /* app_version was neither develop nor produce */
    bool ident_defaulted; /* default_ident stood in for an empty app_ident */
    pp_str_t ident;       /* the app ident to use (points into fields or cfg) */
} pp_user_decision_t;

/*  Fills cfg with the defaults: production, no default ident, tokens of 16..PP_TOKEN_MAX_LEN
    hex. */
void pp_user_rule_cfg_init(pp_user_rule_cfg_t *cfg);

/*  True when app_focus says the app is in the foreground: "1", "true", "yes" or "on",
    compared without regard to case. Anything else (including empty) is false. */
bool pp_user_focus_is_true(pp_str_t focus);

/*  The APNs environment for app_version: "develop" -> sandbox, "produce" -> production,
    anything else (or empty) -> def with *defaulted set. */
int pp_user_env(pp_str_t version, int def, bool *defaulted);

/*  True when token is only hex digits (either case) and min <= length <= max. */
bool pp_user_token_valid(pp_str_t token, size_t min, size_t max);

/*  True when ident is 1..PP_IDENT_MAX_LEN printable ASCII characters without spaces. */
bool pp_user_ident_valid(pp_str_t ident);

/*  True when id can name a user or group: 1..max bytes of valid UTF-8 without NUL, control
    characters, '/', '+' or '#' (it becomes an MQTT topic level and part of a Redis key). */
bool pp_user_id_valid(pp_str_t id, size_t max);

/*  Applies the rule to one user's fields. */
void pp_user_decide(const pp_user_rule_cfg_t *cfg, const pp_user_fields_t *f,
                    pp_user_decision_t *out);

/*  Short name of a verdict for counters and logs ("apns", "no_token", ...). */
const char *pp_user_verdict_name(pp_user_verdict_t v);

#endif

#include "pp_user_rule.h"

#include <string.h>
#include <strings.h>

void pp_user_rule_cfg_init(pp_user_rule_cfg_t *cfg)
{
    cfg->default_env = PP_ENV_PRODUCTION;
    cfg->default_ident = (pp_str_t){"", 0};
    cfg->token_min = 16;
    cfg->token_max = PP_TOKEN_MAX_LEN;
}

static bool s_eq_nocase(pp_str_t s, const char *lit)
{
    size_t n = strlen(lit);
    return s.len == n && strncasecmp(s.ptr, lit, n) == 0;
}

bool pp_user_focus_is_true(pp_str_t focus)
{
    return s_eq_nocase(focus, "1") || s_eq_nocase(focus, "true") || s_eq_nocase(focus, "yes") ||
           s_eq_nocase(focus, "on");
}

int pp_user_env(pp_str_t version, int def, bool *defaulted)
{
    *defaulted = false;
    if (version.len == 7 && memcmp(version.ptr, "develop", 7) == 0) return PP_ENV_SANDBOX;
    if (version.len == 7 && memcmp(version.ptr, "produce", 7) == 0) return PP_ENV_PRODUCTION;
    *defaulted = true;
    return def;
}

bool pp_user_token_valid(pp_str_t token, size_t min, size_t max)
{
    if (token.len < min || token.len > max) return false;
    for (size_t i = 0; i < token.len; i++) {
        char c = token.ptr[i];
        bool hex = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
        if (!hex) return false;
    }
    return true;
}

bool pp_user_ident_valid(pp_str_t ident)
{
    if (ident.len == 0 || ident.len > PP_IDENT_MAX_LEN) return false;
    for (size_t i = 0; i < ident.len; i++) {
        unsigned char c = (unsigned char)ident.ptr[i];
        if (c <= 0x20 || c >= 0x7f) return false;
    }
    return true;
}

bool pp_user_id_valid(pp_str_t id, size_t max)
{
    if (id.len == 0 || id.len > max) return false;
    for (size_t i = 0; i < id.len; i++) {
        unsigned char c = (unsigned char)id.ptr[i];
        if (c < 0x20 || c == 0x7f || c == '/' || c == '+' || c == '#') return false;
    }
    return pp_utf8_valid(id.ptr, id.len);
}

void pp_user_decide(const pp_user_rule_cfg_t *cfg, const pp_user_fields_t *f,
                    pp_user_decision_t *out)
{
    memset(out, 0, sizeof *out);
    out->env = cfg->default_env;
    if (f->token.len == 0) {
        out->verdict = PP_USER_NO_TOKEN;
        return;
    }
    if (pp_user_focus_is_true(f->focus)) {
        out->verdict = PP_USER_FOCUSED;
        return;
    }
    if (!pp_user_token_valid(f->token, cfg->token_min, cfg->token_max)) {
        out->verdict = PP_USER_BAD_TOKEN;
        return;
    }
    out->ident = f->ident;
    if (f->ident.len == 0) {
        if (cfg->default_ident.len == 0) {
            out->verdict = PP_USER_NO_IDENT;
            return;
        }
        out->ident = cfg->default_ident;
        out->ident_defaulted = true;
    }
    if (!pp_user_ident_valid(out->ident)) {
        out->verdict = PP_USER_BAD_IDENT;
        return;
    }
    out->env = pp_user_env(f->version, cfg->default_env, &out->env_defaulted);
    out->verdict = PP_USER_APNS;
}

const char *pp_user_verdict_name(pp_user_verdict_t v)
{
    switch (v) {
    case PP_USER_APNS:
        return "apns";
    case PP_USER_NO_TOKEN:
        return "no_token";
    case PP_USER_FOCUSED:
        return "focused";
    case PP_USER_BAD_TOKEN:
        return "invalid_token";
    case PP_USER_NO_IDENT:
        return "no_ident";
    case PP_USER_BAD_IDENT:
        return "bad_ident";
    }
    return "unknown";
}

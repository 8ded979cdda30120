#include "pp_apns_payload.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

size_t pp_apns_payload_limit(pp_str_t push_type)
{
    if (push_type.len == 4 && memcmp(push_type.ptr, "voip", 4) == 0)
        return PP_APNS_MAX_PAYLOAD_VOIP;
    return PP_APNS_MAX_PAYLOAD;
}

void pp_apns_payload_clear(pp_apns_payload_t *p)
{
    if (!p) return;
    free(p->json);
    memset(p, 0, sizeof *p);
}

/*  Moves data[key] into aps[key] when accept() likes it. Returns true when moved. */
static bool s_move(json_t *data, json_t *aps, const char *key, int (*accept)(const json_t *))
{
    json_t *v = json_object_get(data, key);
    if (!v || !accept(v)) return false;
    json_object_set(aps, key, v);
    json_object_del(data, key);
    return true;
}

static int s_is_str_or_obj(const json_t *v)
{
    return json_is_string(v) || json_is_object(v);
}

static int s_is_int(const json_t *v)
{
    return json_is_integer(v);
}

/*  Builds the alert from "title"/"body" when data has no usable "alert". */
static bool s_title_body(json_t *data, json_t *aps)
{
    json_t *title = json_object_get(data, "title");
    json_t *body = json_object_get(data, "body");
    bool t = json_is_string(title), b = json_is_string(body);
    if (!t && !b) return false;
    json_t *alert = json_object();
    if (t) json_object_set(alert, "title", title);
    if (b) json_object_set(alert, "body", body);
    json_object_set_new(aps, "alert", alert);
    if (t) json_object_del(data, "title");
    if (b) json_object_del(data, "body");
    return true;
}

/*  Returns the payload object built from an object without "aps" (data is consumed).
    Sets *background when nothing is shown. */
static json_t *s_build_from_object(json_t *data, bool *background)
{
    json_t *aps = json_object();
    bool shown = s_move(data, aps, "alert", s_is_str_or_obj);
    if (!shown) shown = s_title_body(data, aps);
    shown = s_move(data, aps, "badge", s_is_int) || shown;
    shown = s_move(data, aps, "sound", s_is_str_or_obj) || shown;
    if (!shown) json_object_set_new(aps, "content-available", json_integer(1));
    *background = !shown;
    json_t *out = json_object();
    json_object_set_new(out, "aps", aps); /* first key: easier to read in logs */
    json_object_update(out, data);
    return out;
}

/*  True when aps holds content-available and nothing to show. */
static bool s_aps_is_background(json_t *aps)
{
    return json_object_get(aps, "content-available") && !json_object_get(aps, "alert") &&
           !json_object_get(aps, "badge") && !json_object_get(aps, "sound");
}

static int s_fail(pp_apns_payload_t *out, const char **why, const char *reason)
{
    pp_apns_payload_clear(out);
    *why = reason;
    return -1;
}

static bool s_push_type_ok(pp_str_t t)
{
    if (t.len == 0 || t.len >= sizeof((pp_apns_payload_t *)0)->push_type) return false;
    for (size_t i = 0; i < t.len; i++)
        if (!((t.ptr[i] >= 'a' && t.ptr[i] <= 'z') || t.ptr[i] == '-' || t.ptr[i] == '_'))
            return false;
    return true;
}

int pp_apns_payload_build(pp_str_t data_json, pp_str_t push_type_opt, int priority_opt,
                          pp_apns_payload_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (push_type_opt.len && !s_push_type_ok(push_type_opt))
        return s_fail(out, why, "bad_push_type");
    json_error_t err;
    json_t *data = json_loadb(data_json.ptr, data_json.len, JSON_DECODE_ANY, &err);
    if (!data) return s_fail(out, why, "bad_json");
    json_t *aps = json_is_object(data) ? json_object_get(data, "aps") : NULL;
    if (aps) {
        if (!json_is_object(aps)) {
            json_decref(data);
            return s_fail(out, why, "bad_aps");
        }
        out->background = s_aps_is_background(aps);
        json_decref(data);
        out->json = malloc(data_json.len + 1);
        if (!out->json) return s_fail(out, why, "no_memory");
        memcpy(out->json, data_json.ptr, data_json.len);
        out->json[data_json.len] = '\0';
        out->len = data_json.len;
    } else {
        json_t *payload;
        if (json_is_object(data)) {
            payload = s_build_from_object(data, &out->background);
        } else if (json_is_string(data)) {
            payload = json_pack("{s:{s:O}}", "aps", "alert", data);
        } else {
            payload = json_pack("{s:{s:i},s:O}", "aps", "content-available", 1, "data", data);
            out->background = true;
        }
        json_decref(data);
        out->json = payload ? json_dumps(payload, JSON_COMPACT) : NULL;
        json_decref(payload);
        if (!out->json) return s_fail(out, why, "no_memory");
        out->len = strlen(out->json);
    }
    const char *type = out->background ? "background" : "alert";
    if (push_type_opt.len) {
        memcpy(out->push_type, push_type_opt.ptr, push_type_opt.len);
        out->push_type[push_type_opt.len] = '\0';
    } else {
        strcpy(out->push_type, type);
    }
    bool bg_type = strcmp(out->push_type, "background") == 0;
    out->priority = bg_type ? 5 : priority_opt;
    if (out->len > pp_apns_payload_limit(PP_STR_C(out->push_type)))
        return s_fail(out, why, "too_large");
    return 0;
}

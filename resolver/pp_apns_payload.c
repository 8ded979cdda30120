#include "pp_apns_payload.h"
#include "pp_jsonscan.h"

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

/*  The keys of data the rule reads, in the order aps is written. */
enum { K_ALERT, K_TITLE, K_BODY, K_BADGE, K_SOUND, K_APS, K_COUNT };
static const char *const s_keys[K_COUNT] = {"alert", "title", "body", "badge", "sound", "aps"};

/*  The last member of each of those keys (JSON parsers that keep one value of a duplicate
    key keep the last, as jansson did here before), and which of them move into aps. */
typedef struct {
    pp_jsonscan_value_t val[K_COUNT];
    bool has[K_COUNT];
    bool moved[K_COUNT];
} s_members_t;

static int s_key_index(pp_str_t key)
{
    for (int k = 0; k < K_COUNT; k++)
        if (pp_jsonscan_key_is(key, s_keys[k])) return k;
    return -1;
}

static void s_find(const pp_jsonscan_value_t *obj, s_members_t *m)
{
    memset(m, 0, sizeof *m);
    pp_jsonscan_iter_t it;
    pp_str_t key;
    pp_jsonscan_value_t val;
    pp_jsonscan_members(obj, &it);
    while (pp_jsonscan_next(&it, &key, &val)) {
        int k = s_key_index(key);
        if (k < 0) continue;
        m->val[k] = val;
        m->has[k] = true;
    }
}

static bool s_is(const s_members_t *m, int k, pp_jsonscan_type_t a, pp_jsonscan_type_t b)
{
    return m->has[k] && (m->val[k].type == a || m->val[k].type == b);
}

/*  An output buffer sized for the worst case before writing (the caller's bound). */
typedef struct {
    char *p;
    size_t len;
} s_out_t;

static void s_put(s_out_t *o, const char *s, size_t n)
{
    memcpy(o->p + o->len, s, n);
    o->len += n;
}

static void s_puts(s_out_t *o, const char *s)
{
    s_put(o, s, strlen(s));
}

static void s_put_member(s_out_t *o, bool *first, const char *key, pp_str_t val)
{
    if (!*first) s_puts(o, ",");
    *first = false;
    s_puts(o, key);
    s_put(o, val.ptr, val.len);
}

/*  Writes aps from data's members into o, marks what moved. Returns true when something is
    shown (alert, badge or sound); else writes content-available. */
static bool s_write_aps(s_out_t *o, s_members_t *m)
{
    bool first = true;
    s_puts(o, "{\"aps\":{");
    if (s_is(m, K_ALERT, PP_JSONSCAN_STRING, PP_JSONSCAN_OBJECT)) {
        s_put_member(o, &first, "\"alert\":", m->val[K_ALERT].text);
        m->moved[K_ALERT] = true;
    } else {
        bool t = s_is(m, K_TITLE, PP_JSONSCAN_STRING, PP_JSONSCAN_STRING);
        bool b = s_is(m, K_BODY, PP_JSONSCAN_STRING, PP_JSONSCAN_STRING);
        if (t || b) {
            s_puts(o, "\"alert\":{");
            bool in = true;
            if (t) s_put_member(o, &in, "\"title\":", m->val[K_TITLE].text);
            if (b) s_put_member(o, &in, "\"body\":", m->val[K_BODY].text);
            s_puts(o, "}");
            first = false;
            m->moved[K_TITLE] = t;
            m->moved[K_BODY] = b;
        }
    }
    if (s_is(m, K_BADGE, PP_JSONSCAN_INTEGER, PP_JSONSCAN_INTEGER)) {
        s_put_member(o, &first, "\"badge\":", m->val[K_BADGE].text);
        m->moved[K_BADGE] = true;
    }
    if (s_is(m, K_SOUND, PP_JSONSCAN_STRING, PP_JSONSCAN_OBJECT)) {
        s_put_member(o, &first, "\"sound\":", m->val[K_SOUND].text);
        m->moved[K_SOUND] = true;
    }
    bool shown = !first;
    if (!shown) s_puts(o, "\"content-available\":1");
    s_puts(o, "}");
    return shown;
}

/*  The payload of an object without "aps": aps first (easier to read in logs), then every
    member that did not move into aps, as written and in order (duplicates of a custom key
    pass through, as the broker passes them; every member of a moved key leaves). */
static void s_build_from_object(s_out_t *o, const pp_jsonscan_value_t *obj, bool *background)
{
    s_members_t m;
    s_find(obj, &m);
    *background = !s_write_aps(o, &m);
    pp_jsonscan_iter_t it;
    pp_str_t key;
    pp_jsonscan_value_t val;
    pp_jsonscan_members(obj, &it);
    while (pp_jsonscan_next(&it, &key, &val)) {
        int k = s_key_index(key);
        if (k >= 0 && m.moved[k]) continue;
        s_puts(o, ",");
        s_put(o, key.ptr, key.len);
        s_puts(o, ":");
        s_put(o, val.text.ptr, val.text.len);
    }
    s_puts(o, "}");
}

/*  True when aps holds content-available and nothing to show. */
static bool s_aps_is_background(const pp_jsonscan_value_t *aps)
{
    s_members_t m;
    s_find(aps, &m);
    bool ca = false;
    pp_jsonscan_iter_t it;
    pp_str_t key;
    pp_jsonscan_value_t val;
    pp_jsonscan_members(aps, &it);
    while (!ca && pp_jsonscan_next(&it, &key, &val))
        ca = pp_jsonscan_key_is(key, "content-available");
    return ca && !m.has[K_ALERT] && !m.has[K_BADGE] && !m.has[K_SOUND];
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

/*  Most bytes the built payload adds to data's: the aps keys and braces (a moved key is
    written as a plain name, never longer than the key as written). */
#define S_OVERHEAD 128

/*  Fills out->json and out->background from the checked data v. Returns 0 or a reason. */
static const char *s_render(pp_str_t data, const pp_jsonscan_value_t *v, pp_apns_payload_t *out)
{
    s_members_t m = {0};
    if (v->type == PP_JSONSCAN_OBJECT) s_find(v, &m);
    if (m.has[K_APS]) {
        if (m.val[K_APS].type != PP_JSONSCAN_OBJECT) return "bad_aps";
        out->background = s_aps_is_background(&m.val[K_APS]);
        out->json = malloc(data.len + 1);
        if (!out->json) return "no_memory";
        memcpy(out->json, data.ptr, data.len); /* as it is, byte for byte */
        out->len = data.len;
        out->json[out->len] = '\0';
        return NULL;
    }
    s_out_t o = {malloc(v->text.len + S_OVERHEAD), 0};
    if (!o.p) return "no_memory";
    if (v->type == PP_JSONSCAN_OBJECT) {
        s_build_from_object(&o, v, &out->background);
    } else if (v->type == PP_JSONSCAN_STRING) {
        s_puts(&o, "{\"aps\":{\"alert\":");
        s_put(&o, v->text.ptr, v->text.len);
        s_puts(&o, "}}");
    } else {
        s_puts(&o, "{\"aps\":{\"content-available\":1},\"data\":");
        s_put(&o, v->text.ptr, v->text.len);
        s_puts(&o, "}");
        out->background = true;
    }
    o.p[o.len] = '\0';
    out->json = o.p;
    out->len = o.len;
    return NULL;
}

int pp_apns_payload_build(pp_str_t data_json, pp_str_t push_type_opt, int priority_opt,
                          pp_apns_payload_t *out, const char **why)
{
    memset(out, 0, sizeof *out);
    if (push_type_opt.len && !s_push_type_ok(push_type_opt))
        return s_fail(out, why, "bad_push_type");
    pp_jsonscan_value_t v;
    if (pp_jsonscan_check(data_json, &v) != 0) return s_fail(out, why, "bad_json");
    const char *bad = s_render(data_json, &v, out);
    if (bad) return s_fail(out, why, bad);
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

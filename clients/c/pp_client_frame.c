#include "pp_client_frame.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define PP_COLLAPSE_ID_MAX 64 /* APNs limit on apns-collapse-id */
#define PP_CLIENT_ID_MAX 64   /* the broker's limit on the "id" option */

/*  The broker's rules (proto/pp_frame.c), repeated here because a fire-and-forget push
    that breaks them is dropped without a word: better to fail in the caller's hands. */
static const char *const s_apns_push_types[] = {
    "alert",        "background", "location",     "voip",       "complication",
    "fileprovider", "mdm",        "liveactivity", "pushtotalk",
};

static int s_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int s_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return -1;
}

/*  UTF-8 check through jansson, which validates strings it is given, rather than a
    hand-written decoder. */
static bool s_valid_utf8(const char *s, size_t len)
{
    json_t *j = json_stringn(s, len);
    if (!j) return false;
    json_decref(j);
    return true;
}

static int s_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    if (msgpack_pack_str(pk, len) != 0) return -1;
    return msgpack_pack_str_body(pk, s, len);
}

static int s_pack_json(msgpack_packer *pk, const json_t *j);

static int s_pack_object(msgpack_packer *pk, const json_t *j)
{
    if (msgpack_pack_map(pk, json_object_size(j)) != 0) return -1;
    const char *key;
    json_t *val;
    /*  jansson keeps object keys in insertion order (since 2.8), so the map comes out in
        the order the caller wrote it. */
    json_object_foreach((json_t *)j, key, val)
    {
        if (s_pack_str(pk, key, strlen(key)) != 0 || s_pack_json(pk, val) != 0) return -1;
    }
    return 0;
}

static int s_pack_json(msgpack_packer *pk, const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return s_pack_object(pk, j);
    case JSON_ARRAY: {
        size_t n = json_array_size(j);
        if (msgpack_pack_array(pk, n) != 0) return -1;
        for (size_t i = 0; i < n; i++)
            if (s_pack_json(pk, json_array_get(j, i)) != 0) return -1;
        return 0;
    }
    case JSON_STRING:
        return s_pack_str(pk, json_string_value(j), json_string_length(j));
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, (int64_t)json_integer_value(j));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(j));
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    }
    return -1;
}

static const char *s_json_type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

int pp_client_json_to_msgpack(const char *json, msgpack_sbuffer *out, char *err, size_t errlen)
{
    if (!json) return s_err(err, errlen, "no data given");
    json_error_t jerr;
    /*  Duplicate keys would reach the broker as a map with two equal keys; refuse them
        here where the caller can see why. JSON_DECODE_ANY so that a scalar gets the clear
        "not an object" message below instead of a parse error. */
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (!root)
        return s_err(err, errlen, "bad JSON data at line %d column %d: %s", jerr.line, jerr.column,
                     jerr.text);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = s_err(err, errlen, "data must be a JSON object, got %s", s_json_type_name(root));
    } else {
        msgpack_packer pk;
        msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
        if (s_pack_object(&pk, root) != 0) rc = s_err(err, errlen, "out of memory packing data");
    }
    json_decref(root);
    return rc;
}

int pp_client_check_map(const void *buf, size_t len, char *err, size_t errlen)
{
    if (!buf || len == 0) return s_err(err, errlen, "no data given");
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&u, buf, len, &off);
    int rc = 0;
    if (r != MSGPACK_UNPACK_SUCCESS)
        rc = s_err(err, errlen, "data is not valid msgpack");
    else if (u.data.type != MSGPACK_OBJECT_MAP)
        rc = s_err(err, errlen, "data must be a msgpack map");
    else if (off != len)
        rc = s_err(err, errlen, "data has %zu bytes after the map", len - off);
    msgpack_unpacked_destroy(&u);
    return rc;
}

static int s_check_str_opt(const char *name, const char *v, char *err, size_t errlen)
{
    if (!v) return 0;
    if (!*v) return s_err(err, errlen, "option %s is empty", name);
    if (!s_valid_utf8(v, strlen(v)))
        return s_err(err, errlen, "option %s is not valid UTF-8", name);
    return 0;
}

static bool s_printable_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f) return false;
    return true;
}

static bool s_has_control(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f) return true;
    return false;
}

static bool s_known_push_type(const char *v)
{
    for (size_t i = 0; i < sizeof s_apns_push_types / sizeof *s_apns_push_types; i++)
        if (strcmp(v, s_apns_push_types[i]) == 0) return true;
    return false;
}

int pp_client_check_options(const pp_push_options_t *o, char *err, size_t errlen)
{
    if (!o) return 0;
    if (s_check_str_opt("id", o->id, err, errlen) != 0 ||
        s_check_str_opt("apns_push_type", o->apns_push_type, err, errlen) != 0 ||
        s_check_str_opt("apns_collapse_id", o->apns_collapse_id, err, errlen) != 0)
        return -1;
    if (o->id && (strlen(o->id) > PP_CLIENT_ID_MAX || !s_printable_ascii(o->id)))
        return s_err(err, errlen, "option id must be 1 to %d printable ASCII characters, no spaces",
                     PP_CLIENT_ID_MAX);
    if (o->apns_push_type && !s_known_push_type(o->apns_push_type))
        return s_err(err, errlen,
                     "option apns_push_type must be one of alert, background, location, voip, "
                     "complication, fileprovider, mdm, liveactivity, pushtotalk");
    if (o->apns_collapse_id && s_has_control(o->apns_collapse_id))
        return s_err(err, errlen, "option apns_collapse_id has control characters");
    if (o->channels && strcmp(o->channels, "all") != 0 && strcmp(o->channels, "apns") != 0 &&
        strcmp(o->channels, "mqtt") != 0)
        return s_err(err, errlen, "option channels must be all, apns or mqtt");
    if (o->apns_collapse_id && strlen(o->apns_collapse_id) > PP_COLLAPSE_ID_MAX)
        return s_err(err, errlen, "option apns_collapse_id is longer than %d bytes",
                     PP_COLLAPSE_ID_MAX);
    if (o->apns_priority != 0 && o->apns_priority != 10 && o->apns_priority != 5 &&
        o->apns_priority != 1)
        return s_err(err, errlen, "option apns_priority must be 10, 5 or 1");
    if (o->has_apns_expiration && o->has_ttl)
        return s_err(err, errlen, "options apns_expiration and ttl are exclusive");
    if (o->has_apns_expiration && o->apns_expiration < 0)
        return s_err(err, errlen, "option apns_expiration must be >= 0");
    if (o->has_ttl && o->ttl < 0) return s_err(err, errlen, "option ttl must be >= 0");
    if (o->has_mqtt_qos && (o->mqtt_qos < 0 || o->mqtt_qos > 2))
        return s_err(err, errlen, "option mqtt_qos must be 0, 1 or 2");
    return 0;
}

static size_t s_count_options(const pp_push_options_t *o)
{
    if (!o) return 0;
    return (o->id != NULL) + (o->channels != NULL) + (o->apns_push_type != NULL) +
           (o->apns_collapse_id != NULL) + (o->apns_priority != 0) + o->has_apns_expiration +
           o->has_ttl + o->has_mqtt_qos;
}

static int s_pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    return v ? (s_pack_str(pk, k, strlen(k)) || s_pack_str(pk, v, strlen(v))) : 0;
}

static int s_pack_kv_int(msgpack_packer *pk, bool given, const char *k, int64_t v)
{
    return given ? (s_pack_str(pk, k, strlen(k)) || msgpack_pack_int64(pk, v)) : 0;
}

static int s_pack_options(msgpack_packer *pk, const pp_push_options_t *o, size_t n)
{
    /*  A fixed key order makes frames byte-for-byte predictable (tests compare them). */
    if (msgpack_pack_map(pk, n) != 0 || s_pack_kv_str(pk, "id", o->id) ||
        s_pack_kv_str(pk, "channels", o->channels) ||
        s_pack_kv_str(pk, "apns_push_type", o->apns_push_type) ||
        s_pack_kv_int(pk, o->apns_priority != 0, "apns_priority", o->apns_priority) ||
        s_pack_kv_int(pk, o->has_apns_expiration, "apns_expiration", o->apns_expiration) ||
        s_pack_kv_int(pk, o->has_ttl, "ttl", o->ttl) ||
        s_pack_kv_str(pk, "apns_collapse_id", o->apns_collapse_id) ||
        s_pack_kv_int(pk, o->has_mqtt_qos, "mqtt_qos", o->mqtt_qos))
        return -1;
    return 0;
}

static int s_check_ids(int push_type, const char *const *ids, size_t n_ids, char *err,
                       size_t errlen)
{
    if (push_type != PP_PUSH_GROUP && push_type != PP_PUSH_USERS && push_type != PP_PUSH_USER)
        return s_err(err, errlen, "push type must be 1 (group), 2 (users) or 3 (user)");
    if (!ids || n_ids == 0)
        return s_err(err, errlen, "no %s id given", push_type == PP_PUSH_GROUP ? "group" : "user");
    if (push_type != PP_PUSH_USERS && n_ids != 1)
        return s_err(err, errlen, "push type %d takes exactly one id", push_type);
    for (size_t i = 0; i < n_ids; i++) {
        if (!ids[i] || !ids[i][0]) return s_err(err, errlen, "id %zu is empty", i + 1);
        if (!s_valid_utf8(ids[i], strlen(ids[i])))
            return s_err(err, errlen, "id %zu is not valid UTF-8", i + 1);
    }
    return 0;
}

int pp_client_frame_encode(int push_type, const char *const *ids, size_t n_ids, const void *data,
                           size_t data_len, const pp_push_options_t *opts, msgpack_sbuffer *out,
                           char *err, size_t errlen)
{
    if (s_check_ids(push_type, ids, n_ids, err, errlen) != 0 ||
        pp_client_check_options(opts, err, errlen) != 0)
        return -1;
    size_t n_opts = s_count_options(opts);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    int rc = msgpack_pack_array(&pk, n_opts ? 4 : 3) || msgpack_pack_int(&pk, push_type);
    if (!rc && push_type == PP_PUSH_USERS) {
        rc = msgpack_pack_array(&pk, n_ids);
        for (size_t i = 0; !rc && i < n_ids; i++)
            rc = s_pack_str(&pk, ids[i], strlen(ids[i]));
    } else if (!rc) {
        rc = s_pack_str(&pk, ids[0], strlen(ids[0]));
    }
    if (!rc) rc = msgpack_sbuffer_write(out, data, data_len);
    if (!rc && n_opts) rc = s_pack_options(&pk, opts, n_opts);
    return rc ? s_err(err, errlen, "out of memory building the frame") : 0;
}

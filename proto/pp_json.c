/*  pp_json: strict msgpack object -> JSON text. See pp_json.h. */
#include "pp_json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pp_json_buf_init(pp_json_buf_t *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void pp_json_buf_release(pp_json_buf_t *b)
{
    free(b->data);
    pp_json_buf_init(b);
}

int pp_json_buf_reserve(pp_json_buf_t *b, size_t extra)
{
    if (extra <= b->cap - b->len) return 0;
    if (extra > SIZE_MAX / 2 - b->len) return -1;
    size_t want = b->len + extra;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < want)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return -1;
    b->data = data;
    b->cap = cap;
    return 0;
}

int pp_json_buf_terminate(pp_json_buf_t *b)
{
    if (pp_json_buf_reserve(b, 1) != 0) return -1;
    b->data[b->len] = '\0';
    return 0;
}

/*  Length of the well-formed UTF-8 sequence starting at s (lead byte >= 0x80), or 0.
    Follows Table 3-7 of the Unicode standard, which excludes overlong forms,
    surrogates and code points above U+10FFFF. Hand-written: none of the installed
    libraries exposes a validator for a bare byte range (jansson validates only while
    parsing JSON text). */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xBF;
    size_t k;
    if (c >= 0xC2 && c <= 0xDF) {
        k = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        k = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        k = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else {
        return 0;
    }
    if (n < k || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < k; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return k;
}

bool pp_utf8_valid(const void *s, size_t len)
{
    const unsigned char *p = s;
    size_t i = 0;
    while (i < len) {
        if (p[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(p + i, len - i);
        if (!k) return false;
        i += k;
    }
    return true;
}

size_t pp_json_u64(char *out, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        out[i] = tmp[n - 1 - i];
    return n;
}

size_t pp_json_i64(char *out, int64_t v)
{
    if (v >= 0) return pp_json_u64(out, (uint64_t)v);
    out[0] = '-';
    /* -(v + 1) + 1 avoids overflowing on INT64_MIN */
    return 1 + pp_json_u64(out + 1, (uint64_t)(-(v + 1)) + 1u);
}

/*  Writes "s" with escapes into b, which has room for 6 * n + 2 more bytes. */
static bool put_escaped(pp_json_buf_t *b, const unsigned char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    char *o = b->data + b->len;
    *o++ = '"';
    size_t i = 0;
    while (i < n) {
        unsigned char c = s[i];
        if (c >= 0x20 && c < 0x80 && c != '"' && c != '\\') {
            *o++ = (char)c;
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t k = utf8_seq(s + i, n - i);
            if (!k) return false;
            memcpy(o, s + i, k);
            o += k;
            i += k;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            *o++ = 'u';
            *o++ = '0';
            *o++ = '0';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
        i++;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    return true;
}

pp_json_status_t pp_json_append_string(pp_json_buf_t *out, const char *s, size_t len)
{
    if (len > (SIZE_MAX - 2) / 6 || pp_json_buf_reserve(out, 6 * len + 2) != 0)
        return PP_JSON_NO_MEMORY;
    size_t before = out->len;
    if (!put_escaped(out, (const unsigned char *)s, len)) {
        out->len = before;
        return PP_JSON_BAD_UTF8;
    }
    return PP_JSON_OK;
}

/*  Shortest of %.15g..%.17g (or %.6g..%.9g for float32) that reads back to the same
    value, so 0.1 is written "0.1" and every double still round-trips. A '.0' is added
    when the text would otherwise read as an integer. The processes never call
    setlocale(), so the decimal point is '.'. */
static size_t format_float(char *out, size_t outlen, double v, bool f32)
{
    int n = 0;
    if (f32) {
        for (int prec = 6; prec <= 9; prec++) {
            n = snprintf(out, outlen, "%.*g", prec, v);
            if (strtof(out, NULL) == (float)v) break;
        }
    } else {
        for (int prec = 15; prec <= 17; prec++) {
            n = snprintf(out, outlen, "%.*g", prec, v);
            if (strtod(out, NULL) == v) break;
        }
    }
    if (!memchr(out, '.', (size_t)n) && !memchr(out, 'e', (size_t)n)) {
        out[n++] = '.';
        out[n++] = '0';
    }
    return (size_t)n;
}

typedef struct {
    pp_json_buf_t *out;
    size_t max_depth;
    size_t max_bytes;
    const char *detail;
} conv_t;

/*  Appends n raw bytes, honouring max_bytes. */
static pp_json_status_t put_raw(conv_t *c, const char *s, size_t n)
{
    if (n > c->max_bytes - c->out->len) {
        c->detail = "data as JSON exceeds max_json_bytes";
        return PP_JSON_TOO_LARGE;
    }
    if (pp_json_buf_reserve(c->out, n) != 0) {
        c->detail = "out of memory";
        return PP_JSON_NO_MEMORY;
    }
    memcpy(c->out->data + c->out->len, s, n);
    c->out->len += n;
    return PP_JSON_OK;
}

static pp_json_status_t put_str(conv_t *c, const char *s, size_t n, bool key)
{
    /* Escaping never shrinks the text: fail early on the lower bound. */
    if (n > c->max_bytes - c->out->len || c->max_bytes - c->out->len - n < 2) {
        c->detail = "data as JSON exceeds max_json_bytes";
        return PP_JSON_TOO_LARGE;
    }
    pp_json_status_t st = pp_json_append_string(c->out, s, n);
    if (st == PP_JSON_BAD_UTF8) {
        c->detail = key ? "a map key is not valid UTF-8" : "a string is not valid UTF-8";
    } else if (st == PP_JSON_NO_MEMORY) {
        c->detail = "out of memory";
    } else if (c->out->len > c->max_bytes) {
        c->detail = "data as JSON exceeds max_json_bytes";
        return PP_JSON_TOO_LARGE;
    }
    return st;
}

static pp_json_status_t put_value(conv_t *c, const msgpack_object *o, size_t depth);

static pp_json_status_t put_array(conv_t *c, const msgpack_object_array *a, size_t depth)
{
    pp_json_status_t st = put_raw(c, "[", 1);
    for (uint32_t i = 0; st == PP_JSON_OK && i < a->size; i++) {
        if (i) st = put_raw(c, ",", 1);
        if (st == PP_JSON_OK) st = put_value(c, &a->ptr[i], depth);
    }
    return st == PP_JSON_OK ? put_raw(c, "]", 1) : st;
}

static pp_json_status_t put_map(conv_t *c, const msgpack_object_map *m, size_t depth)
{
    pp_json_status_t st = put_raw(c, "{", 1);
    for (uint32_t i = 0; st == PP_JSON_OK && i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            c->detail = k->type == MSGPACK_OBJECT_BIN ? "a map key is bin, not str"
                                                      : "a map key is not a string";
            return PP_JSON_BAD_KEY;
        }
        /* Valid JSON, but jansson (which later stages parse data with) cannot hold a
           NUL in an object key. */
        if (k->via.str.size && memchr(k->via.str.ptr, '\0', k->via.str.size)) {
            c->detail = "a map key contains a NUL byte";
            return PP_JSON_BAD_KEY;
        }
        if (i) st = put_raw(c, ",", 1);
        if (st == PP_JSON_OK) st = put_str(c, k->via.str.ptr, k->via.str.size, true);
        if (st == PP_JSON_OK) st = put_raw(c, ":", 1);
        if (st == PP_JSON_OK) st = put_value(c, &m->ptr[i].val, depth);
    }
    return st == PP_JSON_OK ? put_raw(c, "}", 1) : st;
}

/*  depth: the number of arrays and maps that enclose o. */
static pp_json_status_t put_value(conv_t *c, const msgpack_object *o, size_t depth)
{
    char num[40];
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return put_raw(c, "null", 4);
    case MSGPACK_OBJECT_BOOLEAN:
        return o->via.boolean ? put_raw(c, "true", 4) : put_raw(c, "false", 5);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return put_raw(c, num, pp_json_u64(num, o->via.u64));
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return put_raw(c, num, pp_json_i64(num, o->via.i64));
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (!isfinite(o->via.f64)) {
            c->detail = isnan(o->via.f64) ? "a float is NaN" : "a float is infinite";
            return PP_JSON_BAD_NUMBER;
        }
        return put_raw(
            c, num, format_float(num, sizeof num, o->via.f64, o->type == MSGPACK_OBJECT_FLOAT32));
    case MSGPACK_OBJECT_STR:
        return put_str(c, o->via.str.ptr, o->via.str.size, false);
    case MSGPACK_OBJECT_ARRAY:
    case MSGPACK_OBJECT_MAP:
        /* Checked before descending, so hostile nesting cannot exhaust the C stack. */
        if (depth >= c->max_depth) {
            c->detail = "data nests deeper than max_depth";
            return PP_JSON_TOO_DEEP;
        }
        return o->type == MSGPACK_OBJECT_ARRAY ? put_array(c, &o->via.array, depth + 1)
                                               : put_map(c, &o->via.map, depth + 1);
    case MSGPACK_OBJECT_BIN:
        c->detail = "a value is bin (binary data has no JSON form)";
        return PP_JSON_BAD_VALUE;
    case MSGPACK_OBJECT_EXT:
        c->detail = "a value is ext (extension types have no JSON form)";
        return PP_JSON_BAD_VALUE;
    }
    c->detail = "a value of unknown msgpack type";
    return PP_JSON_BAD_VALUE;
}

pp_json_status_t pp_json_append(pp_json_buf_t *out, const msgpack_object *obj, size_t max_depth,
                                size_t max_bytes, const char **detail)
{
    conv_t c = {out, max_depth, max_bytes, NULL};
    pp_json_status_t st;
    if (out->len > max_bytes) {
        c.detail = "data as JSON exceeds max_json_bytes";
        st = PP_JSON_TOO_LARGE;
    } else {
        st = put_value(&c, obj, 0);
    }
    if (detail) *detail = st == PP_JSON_OK ? "" : c.detail;
    return st;
}

const char *pp_json_status_name(pp_json_status_t status)
{
    switch (status) {
    case PP_JSON_OK:
        return "ok";
    case PP_JSON_BAD_KEY:
        return "bad_key";
    case PP_JSON_BAD_VALUE:
        return "bad_value";
    case PP_JSON_BAD_NUMBER:
        return "bad_number";
    case PP_JSON_BAD_UTF8:
        return "bad_utf8";
    case PP_JSON_TOO_DEEP:
        return "too_deep";
    case PP_JSON_TOO_LARGE:
        return "too_large";
    case PP_JSON_NO_MEMORY:
        return "no_memory";
    }
    return "unknown";
}

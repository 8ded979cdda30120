/*  pp_jsonscan: strict JSON text checks and member walks on spans. See pp_jsonscan.h. */
#include "pp_jsonscan.h"
#include "pp_json.h"

#include <string.h>

static const char *s_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

static int s_hex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/*  The code unit of the 4 hex digits at p (p + 4 <= end), or -1. */
static long s_u4(const char *p, const char *end)
{
    if (end - p < 4) return -1;
    long v = 0;
    for (int i = 0; i < 4; i++) {
        int d = s_hex(p[i]);
        if (d < 0) return -1;
        v = v * 16 + d;
    }
    return v;
}

/*  After the escape starting at p (the backslash), or NULL. A high surrogate must be
    followed by an escaped low one; a lone low surrogate is refused (as jansson does: such
    text has no Unicode reading). */
static const char *s_escape(const char *p, const char *end)
{
    if (end - p < 2) return NULL;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
    case 'b':
    case 'f':
    case 'n':
    case 'r':
    case 't':
        return p + 2;
    case 'u':
        break;
    default:
        return NULL;
    }
    long u = s_u4(p + 2, end);
    if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF)) return NULL;
    if (u < 0xD800 || u > 0xDBFF) return p + 6;
    if (end - p < 12 || p[6] != '\\' || p[7] != 'u') return NULL;
    long lo = s_u4(p + 8, end);
    return lo >= 0xDC00 && lo <= 0xDFFF ? p + 12 : NULL;
}

/*  After the string starting at p (its opening quote), or NULL. */
static const char *s_string(const char *p, const char *end)
{
    p++;
    while (p < end) {
        unsigned char c = (unsigned char)*p;
        if (c == '"') return p + 1;
        if (c < 0x20) return NULL;
        if (c == '\\') {
            p = s_escape(p, end);
            if (!p) return NULL;
        } else if (c < 0x80) {
            p++;
        } else {
            /* a run of non-ASCII bytes is made of whole sequences when it is valid */
            const char *q = p;
            while (q < end && (unsigned char)*q >= 0x80)
                q++;
            if (!pp_utf8_valid(p, (size_t)(q - p))) return NULL;
            p = q;
        }
    }
    return NULL;
}

static const char *s_digits(const char *p, const char *end)
{
    const char *q = p;
    while (q < end && *q >= '0' && *q <= '9')
        q++;
    return q > p ? q : NULL;
}

/*  After the number starting at p, or NULL; *type INTEGER or REAL. */
static const char *s_number(const char *p, const char *end, pp_jsonscan_type_t *type)
{
    *type = PP_JSONSCAN_INTEGER;
    if (p < end && *p == '-') p++;
    if (p < end && *p == '0')
        p++; /* no leading zeros: "01" ends the number after the 0, and fails after */
    else if (!(p = s_digits(p, end)))
        return NULL;
    if (p < end && *p == '.') {
        *type = PP_JSONSCAN_REAL;
        if (!(p = s_digits(p + 1, end))) return NULL;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *type = PP_JSONSCAN_REAL;
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (!(p = s_digits(p, end))) return NULL;
    }
    return p;
}

static const char *s_word(const char *p, const char *end, const char *w)
{
    size_t n = strlen(w);
    return (size_t)(end - p) >= n && memcmp(p, w, n) == 0 ? p + n : NULL;
}

/*  After the scalar value at p (not an object or array), or NULL; sets *type. */
static const char *s_scalar(const char *p, const char *end, pp_jsonscan_type_t *type)
{
    switch (*p) {
    case '"':
        *type = PP_JSONSCAN_STRING;
        return s_string(p, end);
    case 't':
        *type = PP_JSONSCAN_TRUE;
        return s_word(p, end, "true");
    case 'f':
        *type = PP_JSONSCAN_FALSE;
        return s_word(p, end, "false");
    case 'n':
        *type = PP_JSONSCAN_NULL;
        return s_word(p, end, "null");
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9')) return s_number(p, end, type);
        return NULL;
    }
}

int pp_jsonscan_check(pp_str_t text, pp_jsonscan_value_t *out)
{
    /* An explicit stack of the open containers ('{' or '['): hostile nesting costs no C
       stack. */
    char open[PP_JSONSCAN_MAX_DEPTH];
    size_t depth = 0;
    const char *p = s_ws(text.ptr, text.ptr + text.len), *end = text.ptr + text.len;
    const char *start = p;
    pp_jsonscan_type_t type = PP_JSONSCAN_NULL, first = PP_JSONSCAN_NULL;
    bool want_key = false; /* inside an object, before a member */
    for (;;) {
        /* at a value (or, with want_key, a key) */
        if (p >= end) return -1;
        if (want_key) {
            if (*p != '"' || !(p = s_string(p, end))) return -1;
            p = s_ws(p, end);
            if (p >= end || *p != ':') return -1;
            p = s_ws(p + 1, end);
            want_key = false;
            continue;
        }
        if (*p == '{' || *p == '[') {
            if (depth == PP_JSONSCAN_MAX_DEPTH) return -1;
            type = *p == '{' ? PP_JSONSCAN_OBJECT : PP_JSONSCAN_ARRAY;
            open[depth++] = *p;
            p = s_ws(p + 1, end);
            if (p < end && *p == (type == PP_JSONSCAN_OBJECT ? '}' : ']')) {
                depth--;
                p++;
            } else {
                want_key = type == PP_JSONSCAN_OBJECT;
                if (depth == 1) first = type;
                continue;
            }
        } else if (!(p = s_scalar(p, end, &type))) {
            return -1;
        }
        if (depth == 0 && first == PP_JSONSCAN_NULL) first = type;
        /* after a value: close containers, or go on to the next element */
        for (;;) {
            p = s_ws(p, end);
            if (depth == 0) break;
            if (p >= end) return -1;
            char close = open[depth - 1] == '{' ? '}' : ']';
            if (*p == close) {
                depth--;
                p++;
                continue;
            }
            if (*p != ',') return -1;
            p = s_ws(p + 1, end);
            want_key = open[depth - 1] == '{';
            break;
        }
        if (depth == 0) break;
    }
    if (p != end) return -1;
    const char *last = end;
    while (last > start &&
           (last[-1] == ' ' || last[-1] == '\t' || last[-1] == '\n' || last[-1] == '\r'))
        last--;
    out->type = first;
    out->text = (pp_str_t){start, (size_t)(last - start)};
    return 0;
}

/*  After the checked value at p (any type). */
static const char *s_skip(const char *p, const char *end, pp_jsonscan_type_t *type)
{
    if (*p != '{' && *p != '[') return s_scalar(p, end, type);
    *type = *p == '{' ? PP_JSONSCAN_OBJECT : PP_JSONSCAN_ARRAY;
    size_t depth = 0;
    while (p < end) {
        char c = *p;
        if (c == '"') {
            p = s_string(p, end);
            continue;
        }
        p++;
        if (c == '{' || c == '[') depth++;
        if ((c == '}' || c == ']') && --depth == 0) return p;
    }
    return p;
}

void pp_jsonscan_members(const pp_jsonscan_value_t *object, pp_jsonscan_iter_t *it)
{
    it->p = object->text.ptr + 1; /* after '{' */
    it->end = object->text.ptr + object->text.len - 1;
}

bool pp_jsonscan_next(pp_jsonscan_iter_t *it, pp_str_t *key, pp_jsonscan_value_t *value)
{
    const char *p = s_ws(it->p, it->end), *end = it->end;
    if (p < end && *p == ',') p = s_ws(p + 1, end);
    if (p >= end || *p != '"') return false;
    const char *k = p;
    p = s_string(p, end);
    *key = (pp_str_t){k, (size_t)(p - k)};
    p = s_ws(p, end);
    p = s_ws(p + 1, end); /* ':' */
    const char *v = p;
    p = s_skip(p, end, &value->type);
    value->text = (pp_str_t){v, (size_t)(p - v)};
    it->p = p;
    return true;
}

bool pp_jsonscan_key_is(pp_str_t key, const char *name)
{
    const char *p = key.ptr + 1, *end = key.ptr + key.len - 1;
    for (; p < end; name++) {
        char c = *p;
        if (c == '\\') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *e = strchr(from, p[1]);
            if (e && p[1]) {
                c = to[e - from];
                p += 2;
            } else {
                long u = s_u4(p + 2, end);
                if (u < 1 || u > 0x7F) return false; /* not in an ASCII name */
                c = (char)u;
                p += 6;
            }
        } else {
            p++;
        }
        if (*name == '\0' || c != *name) return false;
    }
    return *name == '\0';
}

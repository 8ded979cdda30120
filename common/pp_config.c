#include "pp_config.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PP_CONFIG_MAX_READ 512

struct pp_config_t {
    json_t *root;
    char error[512];
    bool failed;
    char *read[PP_CONFIG_MAX_READ]; /* paths read so far, for the unknown-key check */
    size_t n_read;
};

static pp_config_t *s_new(json_t *root)
{
    pp_config_t *c = calloc(1, sizeof *c);
    if (!c) abort();
    c->root = root;
    return c;
}

pp_config_t *pp_config_load(const char *path, char *err, size_t errlen)
{
    if (!path) return s_new(json_object());
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        snprintf(err, errlen, "config: %s: line %d: %s", path, je.line, je.text);
        return NULL;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "config: %s: the top level must be a JSON object", path);
        json_decref(root);
        return NULL;
    }
    return s_new(root);
}

pp_config_t *pp_config_from_string(const char *text, char *err, size_t errlen)
{
    json_error_t je;
    json_t *root = json_loads(text, JSON_REJECT_DUPLICATES, &je);
    if (!root || !json_is_object(root)) {
        snprintf(err, errlen, "config: line %d: %s", je.line,
                 root ? "the top level must be a JSON object" : je.text);
        json_decref(root);
        return NULL;
    }
    return s_new(root);
}

void pp_config_destroy(pp_config_t **p)
{
    if (!p || !*p) return;
    pp_config_t *c = *p;
    json_decref(c->root);
    for (size_t i = 0; i < c->n_read; i++)
        free(c->read[i]);
    free(c);
    *p = NULL;
}

void pp_config_fail(pp_config_t *c, const char *path, const char *fmt, ...)
{
    if (c->failed) return;
    c->failed = true;
    int n = snprintf(c->error, sizeof c->error, "config: %s: ", path);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof c->error)
        vsnprintf(c->error + n, sizeof c->error - (size_t)n, fmt, ap);
    va_end(ap);
}

bool pp_config_ok(const pp_config_t *c)
{
    return !c->failed;
}

const char *pp_config_error(const pp_config_t *c)
{
    return c->failed ? c->error : NULL;
}

static void s_mark(pp_config_t *c, const char *path)
{
    for (size_t i = 0; i < c->n_read; i++)
        if (strcmp(c->read[i], path) == 0) return;
    if (c->n_read < PP_CONFIG_MAX_READ) c->read[c->n_read++] = strdup(path);
}

static bool s_was_read(pp_config_t *c, const char *path)
{
    size_t plen = strlen(path);
    for (size_t i = 0; i < c->n_read; i++) {
        const char *r = c->read[i];
        /* A key counts as read if it, an ancestor (pp_config_json) or a descendant
           (a getter below it) was read. */
        size_t rlen = strlen(r);
        if (strcmp(r, path) == 0) return true;
        if (rlen < plen && strncmp(r, path, rlen) == 0 && path[rlen] == '.') return true;
        if (plen < rlen && strncmp(r, path, plen) == 0 && r[plen] == '.') return true;
    }
    return false;
}

/*  Walks the dotted path; returns the value or NULL if any part is missing. A part that
    exists but is not an object is an error. */
static json_t *s_lookup(pp_config_t *c, const char *path)
{
    s_mark(c, path);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *node = c->root;
    char *save = NULL;
    for (char *part = strtok_r(buf, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
        if (!json_is_object(node)) {
            pp_config_fail(c, path, "a parent of this key is not an object");
            return NULL;
        }
        node = json_object_get(node, part);
        if (!node) return NULL;
    }
    return json_is_null(node) ? NULL : node;
}

/*  Creates the objects along path and sets the leaf. */
static void s_set(pp_config_t *c, const char *path, json_t *value)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    json_t *node = c->root;
    char *save = NULL;
    char *part = strtok_r(buf, ".", &save);
    while (part) {
        char *next = strtok_r(NULL, ".", &save);
        if (!next) {
            json_object_set_new(node, part, value);
            return;
        }
        json_t *child = json_object_get(node, part);
        if (!json_is_object(child)) {
            child = json_object();
            json_object_set_new(node, part, child);
        }
        node = child;
        part = next;
    }
    json_decref(value);
}

void pp_config_set_str(pp_config_t *c, const char *path, const char *value)
{
    s_set(c, path, json_string(value));
}

void pp_config_set_int(pp_config_t *c, const char *path, long long value)
{
    s_set(c, path, json_integer(value));
}

long long pp_config_int(pp_config_t *c, const char *path, long long def, long long min,
                        long long max)
{
    json_t *v = s_lookup(c, path);
    if (!v) return def;
    if (!json_is_integer(v)) {
        pp_config_fail(c, path, "expected an integer in [%lld, %lld]", min, max);
        return def;
    }
    long long n = json_integer_value(v);
    if (n < min || n > max) {
        pp_config_fail(c, path, "%lld is out of range [%lld, %lld]", n, min, max);
        return def;
    }
    return n;
}

double pp_config_double(pp_config_t *c, const char *path, double def, double min, double max)
{
    json_t *v = s_lookup(c, path);
    if (!v) return def;
    if (!json_is_number(v)) {
        pp_config_fail(c, path, "expected a number in [%g, %g]", min, max);
        return def;
    }
    double d = json_number_value(v);
    if (!(d >= min && d <= max)) {
        pp_config_fail(c, path, "%g is out of range [%g, %g]", d, min, max);
        return def;
    }
    return d;
}

bool pp_config_bool(pp_config_t *c, const char *path, bool def)
{
    json_t *v = s_lookup(c, path);
    if (!v) return def;
    if (!json_is_boolean(v)) {
        pp_config_fail(c, path, "expected true or false");
        return def;
    }
    return json_is_true(v);
}

const char *pp_config_str(pp_config_t *c, const char *path, const char *def)
{
    json_t *v = s_lookup(c, path);
    if (!v) return def;
    if (!json_is_string(v)) {
        pp_config_fail(c, path, "expected a string");
        return def;
    }
    return json_string_value(v);
}

int pp_config_enum(pp_config_t *c, const char *path, const char *def, const char *const *choices)
{
    const char *s = pp_config_str(c, path, def);
    for (int i = 0; choices[i]; i++)
        if (s && strcmp(s, choices[i]) == 0) return i;
    char list[256] = "";
    for (int i = 0; choices[i]; i++) {
        strncat(list, i ? ", " : "", sizeof list - strlen(list) - 1);
        strncat(list, choices[i], sizeof list - strlen(list) - 1);
    }
    pp_config_fail(c, path, "\"%s\" is not one of: %s", s ? s : "", list);
    for (int i = 0; choices[i]; i++)
        if (def && strcmp(def, choices[i]) == 0) return i;
    return 0;
}

json_t *pp_config_json(pp_config_t *c, const char *path)
{
    return s_lookup(c, path);
}

static void s_check_object(pp_config_t *c, json_t *obj, const char *prefix)
{
    const char *key;
    json_t *value;
    json_object_foreach(obj, key, value)
    {
        char path[256];
        if (*prefix)
            snprintf(path, sizeof path, "%s.%s", prefix, key);
        else
            snprintf(path, sizeof path, "%s", key);
        if (!s_was_read(c, path)) {
            pp_config_fail(c, path, "unknown key (misspelt, or not for this program?)");
            return;
        }
        if (json_is_object(value)) s_check_object(c, value, path);
    }
}

void pp_config_check_unknown(pp_config_t *c, const char *const *sections)
{
    for (int i = 0; sections[i]; i++) {
        if (!*sections[i]) {
            /* Top-level scalars only: sections are other programs' business. */
            const char *key;
            json_t *value;
            json_object_foreach(c->root, key, value)
            {
                if (!json_is_object(value) && !s_was_read(c, key))
                    pp_config_fail(c, key, "unknown key (misspelt?)");
            }
            continue;
        }
        json_t *sec = json_object_get(c->root, sections[i]);
        if (!sec) continue;
        if (!json_is_object(sec)) {
            pp_config_fail(c, sections[i], "expected an object");
            continue;
        }
        s_check_object(c, sec, sections[i]);
    }
}

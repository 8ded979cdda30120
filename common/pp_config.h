/*  pp_config: the one JSON file that configures every pushpipe process (jansson).

    Each program reads its own section ("broker", "resolver", "apns_sender",
    "mqtt_sender", "launcher") plus the shared top-level keys ("broker_address",
    "log_level", "heartbeat_ms", "curve"). Keys are looked up by dotted path from the root, e.g.
    "resolver.redis.port". A missing key takes the default given by the caller; a key of the
    wrong type or out of range records an error that names the key, and the first such error
    is kept. After reading everything, pp_config_check_unknown() turns keys that nobody read
    in the program's sections into errors, so a typo is never silently ignored.
    Programs print pp_config_error() and exit 2 before binding anything.

    Keys may also be set from the command line with pp_config_set_*; those win over the file.
*/
#ifndef PP_CONFIG_H
#define PP_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

typedef struct pp_config_t pp_config_t;

/*  Loads path (NULL: an empty configuration, every key at its default). Returns NULL on
    an unreadable file or bad JSON, with the reason in err. */
pp_config_t *pp_config_load(const char *path, char *err, size_t errlen);

/*  Creates a configuration from JSON text (tests). */
pp_config_t *pp_config_from_string(const char *text, char *err, size_t errlen);

void pp_config_destroy(pp_config_t **p);

/*  Getters. Each marks the key as read. */
long long pp_config_int(pp_config_t *c, const char *path, long long def, long long min,
                        long long max);
double pp_config_double(pp_config_t *c, const char *path, double def, double min, double max);
bool pp_config_bool(pp_config_t *c, const char *path, bool def);
/*  Returned string lives as long as the configuration. */
const char *pp_config_str(pp_config_t *c, const char *path, const char *def);
/*  A string that must be one of the NULL-terminated choices; returns its index. */
int pp_config_enum(pp_config_t *c, const char *path, const char *def, const char *const *choices);
/*  The raw JSON value (borrowed; NULL when missing), marked read with all it holds.
    Use for maps such as the APNs apps table, and check it yourself; report problems with
    pp_config_fail(). */
json_t *pp_config_json(pp_config_t *c, const char *path);

/*  Command-line overrides, applied before the getters run. */
void pp_config_set_str(pp_config_t *c, const char *path, const char *value);
void pp_config_set_int(pp_config_t *c, const char *path, long long value);

/*  Records an error about a key (kept only if it is the first). */
void pp_config_fail(pp_config_t *c, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*  Turns every key under the given top-level sections (NULL-terminated list; "" stands for
    the top-level keys themselves) that no getter read into an error "unknown key". */
void pp_config_check_unknown(pp_config_t *c, const char *const *sections);

bool pp_config_ok(const pp_config_t *c);
/*  "config: <path>: <problem>", or NULL when all is well. */
const char *pp_config_error(const pp_config_t *c);

#endif

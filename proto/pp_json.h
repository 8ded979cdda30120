/*  pp_json: strict msgpack object -> JSON text, for the data map of client frames.

    The conversion accepts exactly what JSON can say: nil, booleans, integers (the full
    int64 and uint64 ranges, written in decimal), finite floats (written so that they
    read back to the same double, and always with a '.' or an exponent so that 1.0 stays
    a float), str holding valid UTF-8, arrays, and maps whose keys are str without NUL
    bytes (JSON allows them, jansson, which later stages parse data with, does not). bin and ext
    have no JSON equivalent and are refused, as are NaN and the infinities.

    jansson (installed) builds a json_t tree and then dumps it; converting straight from
    the msgpack_object tree into one reused buffer avoids an allocation per value on the
    broker's hot path, and lets the size and depth limits stop the work early.
*/
#ifndef PP_JSON_H
#define PP_JSON_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

/*  A growable text buffer. Embed it and start it zeroed (or with pp_json_buf_init);
    pp_json_buf_release frees its memory. data is not NUL-terminated unless
    pp_json_buf_terminate was called. */
typedef struct {
    char *data;
    size_t len;
    size_t cap;
} pp_json_buf_t;

void pp_json_buf_init(pp_json_buf_t *b);
void pp_json_buf_release(pp_json_buf_t *b);

/*  Makes room for extra more bytes after len. Returns 0, or -1 if out of memory. */
int pp_json_buf_reserve(pp_json_buf_t *b, size_t extra);

/*  Writes a NUL after the text (not counted in len). Returns 0, or -1 if out of memory. */
int pp_json_buf_terminate(pp_json_buf_t *b);

typedef enum {
    PP_JSON_OK = 0,
    PP_JSON_BAD_KEY,    /* a map key that is not a str, or holds a NUL byte */
    PP_JSON_BAD_VALUE,  /* bin or ext */
    PP_JSON_BAD_NUMBER, /* NaN or +-Infinity */
    PP_JSON_BAD_UTF8,   /* a str (key or value) that is not valid UTF-8 */
    PP_JSON_TOO_DEEP,   /* more than max_depth nested arrays/maps */
    PP_JSON_TOO_LARGE,  /* the text would exceed max_bytes */
    PP_JSON_NO_MEMORY
} pp_json_status_t;

/*  Appends the JSON text of obj to out. The outermost array or map counts as depth 1;
    depth is checked before descending, so the C stack used is bounded by max_depth.
    The work stops as soon as the text would pass max_bytes. On failure out holds a
    partial text, to be discarded by the caller. On failure *detail (if detail is not NULL) receives
   a short static string such as "a value is bin". */
pp_json_status_t pp_json_append(pp_json_buf_t *out, const msgpack_object *obj, size_t max_depth,
                                size_t max_bytes, const char **detail);

/*  Appends s (len bytes) as a quoted, escaped JSON string. Returns PP_JSON_OK,
    PP_JSON_BAD_UTF8 if s is not valid UTF-8, or PP_JSON_NO_MEMORY. */
pp_json_status_t pp_json_append_string(pp_json_buf_t *out, const char *s, size_t len);

/*  True if s is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing
    above U+10FFFF). NUL bytes are valid UTF-8; callers that mind them check themselves. */
bool pp_utf8_valid(const void *s, size_t len);

/*  Writes the decimal form of v (or of -v for the negative case) into out, which must hold
    at least 21 bytes; returns the length (no NUL written). Used for ids as well. */
size_t pp_json_u64(char *out, uint64_t v);
size_t pp_json_i64(char *out, int64_t v);

/*  Stable snake_case name of a status, e.g. "bad_utf8". */
const char *pp_json_status_name(pp_json_status_t status);

#endif

/*  pp_jsonscan: checks JSON text (RFC 8259, strictly) and walks the members of an object,
    without building values: every value is a typed span of the text it came from.

    The APNs payload is assembled from spans of the message's data (pp_apns_payload), so
    whatever the broker writes reaches Apple exactly as written: integers of any size (the
    broker writes the full int64 and uint64 ranges), strings and keys holding \u0000, and
    floats keep their text. A tree library (jansson) cannot hold integers above 2^63-1 nor a
    NUL in a key, and re-serialising would change the text.

    Accepted: one value with optional whitespace around; strings of valid UTF-8 without raw
    control characters, escapes \" \\ \/ \b \f \n \r \t \uXXXX with surrogates only in
    pairs; numbers in the JSON grammar (no leading zeros, '+', '.5', NaN); true, false,
    null; nesting up to PP_JSONSCAN_MAX_DEPTH (jansson's limit). Duplicate keys are allowed
    (JSON does not forbid them; the broker passes them through).
*/
#ifndef PP_JSONSCAN_H
#define PP_JSONSCAN_H

#include "pp_job.h"

#include <stdbool.h>
#include <stddef.h>

#define PP_JSONSCAN_MAX_DEPTH 2048

typedef enum {
    PP_JSONSCAN_OBJECT = 1,
    PP_JSONSCAN_ARRAY,
    PP_JSONSCAN_STRING,
    PP_JSONSCAN_INTEGER, /* a number without fraction or exponent, of any size */
    PP_JSONSCAN_REAL,
    PP_JSONSCAN_TRUE,
    PP_JSONSCAN_FALSE,
    PP_JSONSCAN_NULL
} pp_jsonscan_type_t;

/*  One value: its type and its text (a string with its quotes, as written). */
typedef struct {
    pp_jsonscan_type_t type;
    pp_str_t text;
} pp_jsonscan_value_t;

/*  Checks that text is exactly one JSON value and fills *out (its text without the
    surrounding whitespace). Returns 0, or -1 when it is not JSON or nests deeper than
    PP_JSONSCAN_MAX_DEPTH. Bounded stack; linear time. */
int pp_jsonscan_check(pp_str_t text, pp_jsonscan_value_t *out);

/*  Walks the members of an object that pp_jsonscan_check accepted (the value itself or any
    object inside it), in the order of the text. */
typedef struct {
    const char *p, *end;
} pp_jsonscan_iter_t;

void pp_jsonscan_members(const pp_jsonscan_value_t *object, pp_jsonscan_iter_t *it);

/*  The next member: *key is the key as written (quotes and escapes included), *value its
    value. Returns false after the last member. Only for checked text. */
bool pp_jsonscan_next(pp_jsonscan_iter_t *it, pp_str_t *key, pp_jsonscan_value_t *value);

/*  True when key (a string as written, quotes included) decodes to name, a NUL-terminated
    ASCII string: "\u0061ps" is "aps". */
bool pp_jsonscan_key_is(pp_str_t key, const char *name);

#endif

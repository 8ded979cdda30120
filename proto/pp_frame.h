/*  pp_frame: strict decoding of client frames, the seed's contract.

    A client frame is one ZMQ frame holding a msgpack array
        [push_type, push_id, data]            or
        [push_type, push_id, data, options]
    push_type 1: push_id is a group id; 2: an array of user ids; 3: one user id.
    Ids are integers or strings (str, or bin holding valid UTF-8 from old Python clients)
    and are normalised to their decimal/string form, so 42 and "42" are the same id.
    data is a map, converted to JSON (UTF-8). options is a map, see proto/PROTOCOL.md.

    The decoder owns its buffers and reuses them: a decoded pp_frame_t is valid until the
    next call on the same decoder. Nothing here asserts on input; every problem is a
    pp_frame_reason_t with a short detail string.
*/
#ifndef PP_FRAME_H
#define PP_FRAME_H

#include "pp_job.h"

#include <stddef.h>
#include <stdint.h>

/*  Limits; pp_frame_limits_default() gives the documented defaults. */
typedef struct {
    size_t max_frame_bytes; /* default 65536 */
    size_t max_depth;       /* nesting of data, default 16 */
    size_t max_ids;         /* users in a type-2 list, default 10000 */
    size_t max_id_len;      /* bytes of one id, default 64 */
    size_t max_json_bytes;  /* data rendered as JSON, default 65536 */
} pp_frame_limits_t;

pp_frame_limits_t pp_frame_limits_default(void);

/*  Largest max_depth a decoder honours (larger values are lowered to it). msgpack-c's C
    unpacker holds at most 32 nested containers, and the frame's outer array takes one. */
#define PP_FRAME_MAX_DEPTH_LIMIT 31

/*  Every reason a frame is rejected for. Names (pp_frame_reason_name) are stable: they are
    the `reason` label of the rejected counter, the reason in acknowledged replies and in
    logs. */
typedef enum {
    PP_FRAME_OK = 0,
    PP_FRAME_NOT_MSGPACK,    /* "not_msgpack": not parseable as msgpack at all */
    PP_FRAME_TRUNCATED,      /* "truncated": ends in the middle of a value */
    PP_FRAME_TRAILING_BYTES, /* "trailing_bytes": bytes after the array */
    PP_FRAME_NOT_ARRAY,      /* "not_array" */
    PP_FRAME_BAD_ARITY,      /* "bad_arity": array not of 3 or 4 elements */
    PP_FRAME_BAD_PUSH_TYPE,  /* "bad_push_type": not the integer 1, 2 or 3 */
    PP_FRAME_BAD_PUSH_ID,    /* "bad_push_id": wrong type, empty, nested, ... */
    PP_FRAME_ID_TOO_LONG,    /* "id_too_long" */
    PP_FRAME_TOO_MANY_IDS,   /* "too_many_ids" */
    PP_FRAME_BAD_DATA,       /* "bad_data": data is not a map */
    PP_FRAME_BAD_KEY,        /* "bad_key": a map key that is not a string */
    PP_FRAME_BAD_VALUE,      /* "bad_value": bin or ext where JSON has no equivalent */
    PP_FRAME_BAD_NUMBER,     /* "bad_number": NaN or Infinity */
    PP_FRAME_BAD_UTF8,       /* "bad_utf8" */
    PP_FRAME_TOO_DEEP,       /* "too_deep" */
    PP_FRAME_TOO_LARGE,      /* "too_large": frame or JSON over the limit */
    PP_FRAME_BAD_OPTIONS,    /* "bad_options": options not a map, unknown key, bad value */
    PP_FRAME_MULTIPART,      /* "multipart": more than one ZMQ frame (set by the broker) */
    PP_FRAME_REASON_COUNT
} pp_frame_reason_t;

const char *pp_frame_reason_name(pp_frame_reason_t reason);

/*  A decoded, validated client frame. ids are normalised strings, de-duplicated for
    type 2 in first-seen order. */
typedef struct {
    uint8_t push_type;
    size_t n_ids;
    pp_str_t *ids;
    pp_str_t data_json;
    pp_opts_t opts;
    size_t duplicates_removed;
} pp_frame_t;

typedef struct pp_frame_decoder_t pp_frame_decoder_t;

pp_frame_decoder_t *pp_frame_decoder_new(const pp_frame_limits_t *limits);
void pp_frame_decoder_destroy(pp_frame_decoder_t **p);

/*  Decodes and validates buf. Returns PP_FRAME_OK and fills *frame, or a reason with a
    short, log-safe detail in *detail (static or decoder-owned; e.g. "push_id is a float").
    now_s (UNIX seconds) turns a relative "ttl" option into an absolute expiration. */
pp_frame_reason_t pp_frame_decode(pp_frame_decoder_t *d, const void *buf, size_t len, int64_t now_s,
                                  pp_frame_t *frame, const char **detail);

#endif

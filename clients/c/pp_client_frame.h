/*  pp_client_frame: builds client frames for libpushpipe (internal, not installed).

    Turns a push (type, ids, data, options) into the one-frame msgpack array the broker's
    pp_frame decoder reads, checking on the client side what the caller can get wrong
    (empty ids, bad UTF-8, JSON that is not an object, option values out of range) so
    that a fire-and-forget push fails loudly here rather than silently at the broker.
*/
#ifndef PP_CLIENT_FRAME_H
#define PP_CLIENT_FRAME_H

#include "pushpipe.h"

#include <msgpack.h>

/*  Converts JSON text holding one object into one msgpack map appended to out.
    Returns 0, or -1 with a message in err. */
int pp_client_json_to_msgpack(const char *json, msgpack_sbuffer *out, char *err, size_t errlen);

/*  Checks that buf holds exactly one msgpack map. Returns 0 or -1 with a message. */
int pp_client_check_map(const void *buf, size_t len, char *err, size_t errlen);

/*  Checks opts (NULL is fine). Returns 0 or -1 with a message. */
int pp_client_check_options(const pp_push_options_t *opts, char *err, size_t errlen);

/*  Appends the client frame [push_type, push_id, data(, options)] to out; data is one
    msgpack map (already checked). Returns 0 or -1 with a message in err. */
int pp_client_frame_encode(int push_type, const char *const *ids, size_t n_ids, const void *data,
                           size_t data_len, const pp_push_options_t *opts, msgpack_sbuffer *out,
                           char *err, size_t errlen);

#endif

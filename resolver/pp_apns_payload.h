/*  pp_apns_payload: builds the one APNs payload of a message from its data.

    Built once per message and shared by every recipient. The rule (docs/resolver.md):
    - data is an object with an "aps" key: the data is the payload, byte for byte ("aps"
      must be an object).
    - data is an object without "aps": "aps" is built from
        alert  <- data["alert"] (string or object), else {"title","body"} from data["title"]
                  and/or data["body"] (strings); those keys leave the top level;
        badge  <- data["badge"] (integer), sound <- data["sound"] (string or object);
      every other key stays as a custom top-level key. With no alert, badge or sound the
      push is a background push: aps = {"content-available": 1}.
    - data is a string: aps = {"alert": data}. Any other JSON value: a background push with
      the value under the custom key "data".
    Push type: the message's apns_push_type option when given, else "background" for a
    background push and "alert" otherwise (with "aps" given: background when aps holds only
    content-available). Priority: 5 for background pushes (Apple requires it), else the
    message's apns_priority option, else 0 (the sender's default, 10).
    Size limit: 4096 bytes, 5120 for push type voip.

    Every JSON text is accepted (pp_jsonscan), and the payload is assembled from spans of
    the data as written, never parsed into numbers or C strings: integers of any size
    (2^64-1, -2^63), \u0000 in strings and keys, and every other value reach Apple exactly
    as the broker wrote them. When a key the rule reads (alert, badge, ...) is given twice,
    the last one counts and every copy of a key moved into aps leaves the top level; other
    duplicate keys pass through.
*/
#ifndef PP_APNS_PAYLOAD_H
#define PP_APNS_PAYLOAD_H

#include "pp_job.h"

#include <stdbool.h>
#include <stddef.h>

#define PP_APNS_MAX_PAYLOAD 4096
#define PP_APNS_MAX_PAYLOAD_VOIP 5120

typedef struct {
    char *json; /* owned, NUL-terminated; NULL after clear */
    size_t len;
    char push_type[32]; /* apns-push-type */
    int priority;       /* apns-priority, 0 = sender's default */
    bool background;    /* built as a background push */
} pp_apns_payload_t;

/*  Builds the payload for data_json (the message's data as JSON text) and the message's
    options push_type_opt (empty: decide) and priority_opt (0: not given). Returns 0, or -1
    with *why one of "bad_json", "bad_aps", "bad_push_type", "too_large", "no_memory" and
    out cleared. On success the caller calls pp_apns_payload_clear(). */
int pp_apns_payload_build(pp_str_t data_json, pp_str_t push_type_opt, int priority_opt,
                          pp_apns_payload_t *out, const char **why);

/*  Frees the payload's JSON text and zeroes out. Safe on a cleared payload. */
void pp_apns_payload_clear(pp_apns_payload_t *p);

/*  Apple's size limit for a push type: 5120 for "voip", else 4096. */
size_t pp_apns_payload_limit(pp_str_t push_type);

#endif

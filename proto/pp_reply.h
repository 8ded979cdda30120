/*  pp_reply: the broker's answer to an acknowledged submit (ROUTER endpoint).

    One msgpack map:
        {"ok": true,  "id": "<msg_id>"}
        {"ok": false, "reason": "<pp_frame_reason_name or broker reason>", "detail": "..."}
    Broker reasons besides the frame reasons: "overloaded" (its resolver queue is full),
    "stopping" (shutting down).
*/
#ifndef PP_REPLY_H
#define PP_REPLY_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

int pp_reply_encode_ok(const char *msg_id, size_t msg_id_len, msgpack_sbuffer *out);
int pp_reply_encode_error(const char *reason, const char *detail, msgpack_sbuffer *out);

typedef struct {
    bool ok;
    char id[64];
    char reason[64];
    char detail[256];
} pp_reply_t;

/*  Returns 0 and fills *reply, or -1 if buf is not a reply. */
int pp_reply_decode(const void *buf, size_t len, pp_reply_t *reply);

#endif

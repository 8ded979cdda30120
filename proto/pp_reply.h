/*  pp_reply: the broker's answer to an acknowledged submit (ROUTER endpoint).

    One msgpack map:
        {"ok": true,  "id": "<msg_id>"}
        {"ok": false, "reason": "<pp_frame_reason_name or broker reason>", "detail": "..."}
    plus "cid": "<client message id>" when the frame carried one (option "id"). With the
    broker's durability on, verdicts wait for the store, so replies to pipelined submits
    on one connection can come back out of order: "cid" is how a pipelining client tells
    them apart.
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
/*  The same with the client's message id echoed as "cid" (cid_len 0: none). */
int pp_reply_encode_ok_cid(const char *msg_id, size_t msg_id_len, const char *cid, size_t cid_len,
                           msgpack_sbuffer *out);
int pp_reply_encode_error_cid(const char *reason, const char *detail, const char *cid,
                              size_t cid_len, msgpack_sbuffer *out);

typedef struct {
    bool ok;
    char id[64];
    char reason[64];
    char detail[256];
    char cid[72]; /* the client message id, "" when the reply has none */
} pp_reply_t;

/*  Returns 0 and fills *reply, or -1 if buf is not a reply. */
int pp_reply_decode(const void *buf, size_t len, pp_reply_t *reply);

#endif

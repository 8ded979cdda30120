/*  pp_reply: encode and decode the broker's answer to an acknowledged submit.

    The decoder runs in clients (libpushpipe) on bytes that come from the network, so it
    is strict and bounded: one msgpack map, nothing after it, string keys, "ok" a bool,
    "id" (when ok) or "reason" (when not) a non-empty string that fits pp_reply_t. Keys it
    does not know are skipped so that a newer broker may add fields. It never asserts.
*/
#include "pp_reply.h"
#include "pp_mpscan.h"

#include <stdint.h>
#include <string.h>

/*  A reply is a few dozen bytes; anything this large is not one, and refusing it keeps
    msgpack's zone allocation bounded on hostile input. */
#define PP_REPLY_MAX_BYTES 4096

static int s_pack_str(msgpack_packer *pk, const char *s, size_t len)
{
    if (msgpack_pack_str(pk, len) != 0) return -1;
    return msgpack_pack_str_body(pk, s, len);
}

int pp_reply_encode_ok(const char *msg_id, size_t msg_id_len, msgpack_sbuffer *out)
{
    return pp_reply_encode_ok_cid(msg_id, msg_id_len, NULL, 0, out);
}

static bool s_cid_ok(const char *cid, size_t cid_len)
{
    return cid_len == 0 || (cid && cid_len < sizeof(((pp_reply_t *)0)->cid));
}

int pp_reply_encode_ok_cid(const char *msg_id, size_t msg_id_len, const char *cid, size_t cid_len,
                           msgpack_sbuffer *out)
{
    if (!msg_id || !out || msg_id_len == 0 || msg_id_len >= sizeof(((pp_reply_t *)0)->id) ||
        !s_cid_ok(cid, cid_len))
        return -1;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, cid_len ? 3 : 2) != 0 || s_pack_str(&pk, "ok", 2) != 0 ||
        msgpack_pack_true(&pk) != 0 || s_pack_str(&pk, "id", 2) != 0 ||
        s_pack_str(&pk, msg_id, msg_id_len) != 0)
        return -1;
    if (cid_len && (s_pack_str(&pk, "cid", 3) != 0 || s_pack_str(&pk, cid, cid_len) != 0))
        return -1;
    return 0;
}

int pp_reply_encode_error(const char *reason, const char *detail, msgpack_sbuffer *out)
{
    return pp_reply_encode_error_cid(reason, detail, NULL, 0, out);
}

int pp_reply_encode_error_cid(const char *reason, const char *detail, const char *cid,
                              size_t cid_len, msgpack_sbuffer *out)
{
    if (!reason || !out || !s_cid_ok(cid, cid_len)) return -1;
    size_t rlen = strlen(reason);
    if (rlen == 0 || rlen >= sizeof(((pp_reply_t *)0)->reason)) return -1;
    if (!detail) detail = "";
    /*  The decoder keeps at most 255 bytes of detail; cutting here keeps replies small
        even when a caller passes a long message. Cut on a UTF-8 boundary so the reply
        stays valid text. */
    size_t dlen = strlen(detail);
    size_t dmax = sizeof(((pp_reply_t *)0)->detail) - 1;
    if (dlen > dmax) {
        dlen = dmax;
        while (dlen > 0 && ((unsigned char)detail[dlen] & 0xC0) == 0x80)
            dlen--;
    }
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    if (msgpack_pack_map(&pk, cid_len ? 4 : 3) != 0 || s_pack_str(&pk, "ok", 2) != 0 ||
        msgpack_pack_false(&pk) != 0 || s_pack_str(&pk, "reason", 6) != 0 ||
        s_pack_str(&pk, reason, rlen) != 0 || s_pack_str(&pk, "detail", 6) != 0 ||
        s_pack_str(&pk, detail, dlen) != 0)
        return -1;
    if (cid_len && (s_pack_str(&pk, "cid", 3) != 0 || s_pack_str(&pk, cid, cid_len) != 0))
        return -1;
    return 0;
}

static bool s_key_is(const msgpack_object_str *key, const char *name)
{
    size_t n = strlen(name);
    return key->size == n && memcmp(key->ptr, name, n) == 0;
}

/*  Copies a str value into out (outlen bytes incl. terminator). A string that does not
    fit, or holds a NUL that would silently cut it, is refused. */
static int s_copy_str(const msgpack_object *v, char *out, size_t outlen)
{
    if (v->type != MSGPACK_OBJECT_STR) return -1;
    size_t n = v->via.str.size;
    if (n >= outlen || (n > 0 && memchr(v->via.str.ptr, '\0', n))) return -1;
    memcpy(out, v->via.str.ptr, n);
    out[n] = '\0';
    return 0;
}

/*  detail is informational: a long one is cut (on a UTF-8 boundary) rather than making
    the whole reply unreadable. */
static int s_copy_detail(const msgpack_object *v, char *out, size_t outlen)
{
    if (v->type != MSGPACK_OBJECT_STR) return -1;
    size_t n = v->via.str.size;
    if (n > 0 && memchr(v->via.str.ptr, '\0', n)) return -1;
    if (n >= outlen) {
        n = outlen - 1;
        while (n > 0 && ((unsigned char)v->via.str.ptr[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, v->via.str.ptr, n);
    out[n] = '\0';
    return 0;
}

static int s_decode_map(const msgpack_object *root, pp_reply_t *reply)
{
    if (root->type != MSGPACK_OBJECT_MAP) return -1;
    bool have_ok = false, have_id = false, have_reason = false, have_detail = false;
    const msgpack_object_map *map = &root->via.map;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *k = &map->ptr[i].key;
        const msgpack_object *v = &map->ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR) return -1;
        if (s_key_is(&k->via.str, "ok")) {
            if (have_ok || v->type != MSGPACK_OBJECT_BOOLEAN) return -1;
            reply->ok = v->via.boolean;
            have_ok = true;
        } else if (s_key_is(&k->via.str, "id")) {
            if (have_id || s_copy_str(v, reply->id, sizeof reply->id) != 0) return -1;
            have_id = true;
        } else if (s_key_is(&k->via.str, "reason")) {
            if (have_reason || s_copy_str(v, reply->reason, sizeof reply->reason) != 0) return -1;
            have_reason = true;
        } else if (s_key_is(&k->via.str, "cid")) {
            if (reply->cid[0] || s_copy_str(v, reply->cid, sizeof reply->cid) != 0) return -1;
        } else if (s_key_is(&k->via.str, "detail")) {
            if (have_detail || s_copy_detail(v, reply->detail, sizeof reply->detail) != 0)
                return -1;
            have_detail = true;
        }
    }
    if (!have_ok) return -1;
    if (reply->ok) return have_id && reply->id[0] ? 0 : -1;
    return have_reason && reply->reason[0] ? 0 : -1;
}

/*  Replies nest no deeper than this (checked by pp_mpscan before msgpack-c sees them). */
#define PP_REPLY_MAX_DEPTH 8

int pp_reply_decode(const void *buf, size_t len, pp_reply_t *reply)
{
    if (!reply) return -1;
    memset(reply, 0, sizeof *reply);
    if (!buf || len == 0 || len > PP_REPLY_MAX_BYTES ||
        pp_mpscan(buf, len, PP_REPLY_MAX_DEPTH, NULL) != PP_MPSCAN_OK)
        return -1;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next(&u, buf, len, &off) == MSGPACK_UNPACK_SUCCESS && off == len)
        rc = s_decode_map(&u.data, reply);
    msgpack_unpacked_destroy(&u);
    if (rc != 0) memset(reply, 0, sizeof *reply);
    return rc;
}

/*  libFuzzer target: pp_frame_decode on arbitrary bytes, with two decoders (default limits
    and tiny ones so that every limit is reached often). Besides the sanitizers' checks it
    asserts the decoder's promises on every accepted frame: ids non-empty, within
    max_id_len, valid UTF-8, free of the forbidden bytes and unique; data_json a JSON
    object (parsed back with jansson) within max_json_bytes and NUL-terminated; and the
    same input decoded twice gives the same answer.
    The pair broker -> resolver: every accepted frame is encoded as the broker encodes its
    RESOLVE job, decoded as the resolver decodes it, and its data given to the resolver's
    APNs payload builder (resolver/pp_apns_payload.h), which must accept it (or find it
    over Apple's size limit, or find an "aps" that is not an object) and build a payload that is a
   JSON object with an "aps" object, read back by pp_jsonscan and by jansson. Build:
   scripts/fuzz.sh. */
#include "pp_apns_payload.h"
#include "pp_frame.h"
#include "pp_job.h"
#include "pp_json.h"
#include "pp_jsonscan.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz_frame: check failed at line %d: %s\n", __LINE__, #cond);         \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void check_frame(const pp_frame_limits_t *lim, const pp_frame_t *f)
{
    CHECK(f->push_type >= 1 && f->push_type <= 3);
    CHECK(f->n_ids >= 1 && f->ids);
    CHECK(f->push_type == 2 || f->n_ids == 1);
    CHECK(f->n_ids + f->duplicates_removed <= lim->max_ids || f->push_type != 2);
    for (size_t i = 0; i < f->n_ids; i++) {
        const pp_str_t *id = &f->ids[i];
        CHECK(id->len >= 1 && id->len <= lim->max_id_len);
        CHECK(pp_utf8_valid(id->ptr, id->len));
        for (size_t k = 0; k < id->len; k++) {
            unsigned char c = (unsigned char)id->ptr[k];
            CHECK(c > 0x20 && c != 0x7f && c != '/' && c != '+' && c != '#');
        }
        if (f->n_ids <= 64)
            for (size_t j = 0; j < i; j++)
                CHECK(f->ids[j].len != id->len || memcmp(f->ids[j].ptr, id->ptr, id->len));
    }
    CHECK(f->data_json.len <= lim->max_json_bytes);
    CHECK(f->data_json.ptr[f->data_json.len] == '\0');
    json_error_t err;
    json_t *j = json_loadb(f->data_json.ptr, f->data_json.len,
                           JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    CHECK(j && json_is_object(j));
    json_decref(j);
    CHECK(f->opts.channels >= 1 && f->opts.channels <= 3);
    CHECK(f->opts.mqtt_qos >= -1 && f->opts.mqtt_qos <= 2);
    CHECK(f->opts.apns_expiration >= -1);
}

/*  The payload is one JSON object holding an "aps" object. */
static void check_payload(const pp_apns_payload_t *p)
{
    pp_jsonscan_value_t v, val;
    CHECK(pp_jsonscan_check((pp_str_t){p->json, p->len}, &v) == 0);
    CHECK(v.type == PP_JSONSCAN_OBJECT);
    pp_jsonscan_iter_t it;
    pp_str_t key;
    bool aps = false;
    pp_jsonscan_members(&v, &it);
    while (pp_jsonscan_next(&it, &key, &val))
        if (pp_jsonscan_key_is(key, "aps")) aps = val.type == PP_JSONSCAN_OBJECT;
    CHECK(aps);
    json_error_t err;
    json_t *j = json_loadb(p->json, p->len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &err);
    CHECK(j && json_is_object(j) && json_is_object(json_object_get(j, "aps")));
    json_decref(j);
    CHECK(p->priority == 0 || p->priority == 5 || p->priority == 10 || p->priority == 1);
}

/*  What the broker accepted, the resolver can carry: RESOLVE job encode (broker) and decode
    (resolver), then the APNs payload from its data. */
static void check_resolver_takes(const pp_frame_t *f)
{
    pp_resolve_job_t job = {.msg_id = {"0123456789abcdef0123456789abcdef", 32},
                            .push_type = f->push_type,
                            .n_ids = f->n_ids,
                            .ids = f->ids,
                            .data_json = f->data_json,
                            .received_us = 1800000000000000ull,
                            .opts = f->opts};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK(pp_resolve_job_encode(&job, &sb) == 0);
    pp_resolve_job_t got;
    const char *why = NULL;
    CHECK(pp_resolve_job_decode(sb.data, sb.size, &got, &why) == 0);
    CHECK(got.data_json.len == f->data_json.len &&
          memcmp(got.data_json.ptr, f->data_json.ptr, f->data_json.len) == 0);
    pp_apns_payload_t p;
    why = NULL;
    int rc = pp_apns_payload_build(got.data_json, got.opts.apns_push_type, got.opts.apns_priority,
                                   &p, &why);
    if (rc != 0) {
        /* over Apple's limit, or data whose "aps" is not an object (the payload rule: no
           APNs for it, MQTT still delivers it), read independently with jansson */
        CHECK(p.json == NULL);
        if (strcmp(why, "bad_aps") == 0) {
            json_t *j = json_loadb(got.data_json.ptr, got.data_json.len,
                                   JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, NULL);
            json_t *aps = json_object_get(j, "aps");
            CHECK(aps && !json_is_object(aps));
            json_decref(j);
        } else {
            CHECK(strcmp(why, "too_large") == 0);
        }
    } else {
        CHECK(p.len <= pp_apns_payload_limit(PP_STR_C(p.push_type)));
        check_payload(&p);
        pp_apns_payload_clear(&p);
    }
    pp_resolve_job_clear(&got);
    msgpack_sbuffer_destroy(&sb);
}

/*  Differential check against msgpack-c on the structural verdicts. Skipped when the
    decoder says truncated, too_deep or too_large: those are the inputs on which msgpack-c
    may allocate count * 24 bytes up front (the reason the decoder scans first), which
    libFuzzer would report as a crash of its own. */
static void check_against_msgpack(pp_frame_reason_t r, const uint8_t *data, size_t size)
{
    if (r == PP_FRAME_TRUNCATED || r == PP_FRAME_TOO_DEEP || r == PP_FRAME_TOO_LARGE) return;
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    msgpack_unpack_return ret = msgpack_unpack_next(&u, (const char *)data, size, &off);
    if (r == PP_FRAME_NOT_MSGPACK)
        CHECK(ret == MSGPACK_UNPACK_PARSE_ERROR);
    else if (r == PP_FRAME_TRAILING_BYTES)
        CHECK(ret == MSGPACK_UNPACK_SUCCESS && off < size);
    else
        CHECK(ret == MSGPACK_UNPACK_SUCCESS && off == size);
    msgpack_unpacked_destroy(&u);
}

static void run(pp_frame_decoder_t *d, const pp_frame_limits_t *lim, const uint8_t *data,
                size_t size)
{
    pp_frame_t f;
    const char *detail = NULL;
    pp_frame_reason_t r = pp_frame_decode(d, data, size, 1800000000, &f, &detail);
    CHECK(r < PP_FRAME_REASON_COUNT && r != PP_FRAME_MULTIPART);
    CHECK(detail != NULL && strlen(detail) < 256);
    if (r == PP_FRAME_OK) {
        check_frame(lim, &f);
        check_resolver_takes(&f);
    } else
        CHECK(f.n_ids == 0);
    check_against_msgpack(r, data, size);
    size_t n = f.n_ids, json_len = f.data_json.len;
    pp_frame_reason_t again = pp_frame_decode(d, data, size, 1800000000, &f, &detail);
    CHECK(again == r && f.n_ids == n && f.data_json.len == json_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static pp_frame_decoder_t *normal, *tiny;
    static pp_frame_limits_t normal_lim, tiny_lim;
    if (!normal) {
        normal_lim = pp_frame_limits_default();
        normal = pp_frame_decoder_new(&normal_lim);
        tiny_lim = (pp_frame_limits_t){.max_frame_bytes = 512,
                                       .max_depth = 3,
                                       .max_ids = 4,
                                       .max_id_len = 6,
                                       .max_json_bytes = 48};
        tiny = pp_frame_decoder_new(&tiny_lim);
        CHECK(normal && tiny);
    }
    run(normal, &normal_lim, data, size);
    run(tiny, &tiny_lim, data, size);
    return 0;
}

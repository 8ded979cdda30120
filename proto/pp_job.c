#include "pp_job.h"
#include "pp_mpscan.h"

#include <stdlib.h>
#include <string.h>

/* Internal job frames. The layout is positional (arrays, not maps) because these frames
   cross the hub at hundreds of thousands per second: positional fields are smaller and
   cheaper to pack and check. The version element lets a later format coexist. */

#define RESOLVE_ARITY 8
#define APNS_ARITY 12
#define MQTT_ARITY 7

void pp_opts_init(pp_opts_t *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->channels = PP_CH_ALL;
    opts->apns_expiration = -1;
    opts->mqtt_qos = -1;
}

/* ---- encoding ---------------------------------------------------------------------- */

static void s_pack_str(msgpack_packer *pk, pp_str_t s)
{
    msgpack_pack_str(pk, s.len);
    if (s.len) msgpack_pack_str_body(pk, s.ptr, s.len);
}

static void s_pack_head(msgpack_packer *pk, int kind, size_t arity)
{
    msgpack_pack_array(pk, arity);
    msgpack_pack_int(pk, kind);
    msgpack_pack_int(pk, PP_JOB_VERSION);
}

static void s_pack_opts(msgpack_packer *pk, const pp_opts_t *o)
{
    msgpack_pack_map(pk, 7);
    s_pack_str(pk, PP_STR("id"));
    s_pack_str(pk, o->client_id);
    s_pack_str(pk, PP_STR("ch"));
    msgpack_pack_uint8(pk, o->channels);
    s_pack_str(pk, PP_STR("pt"));
    s_pack_str(pk, o->apns_push_type);
    s_pack_str(pk, PP_STR("pr"));
    msgpack_pack_int(pk, o->apns_priority);
    s_pack_str(pk, PP_STR("ex"));
    msgpack_pack_int64(pk, o->apns_expiration);
    s_pack_str(pk, PP_STR("ci"));
    s_pack_str(pk, o->apns_collapse_id);
    s_pack_str(pk, PP_STR("qos"));
    msgpack_pack_int(pk, o->mqtt_qos);
}

int pp_resolve_job_encode(const pp_resolve_job_t *job, msgpack_sbuffer *out)
{
    if (job->n_ids == 0 || job->n_ids > PP_JOB_MAX_IDS || job->push_type < 1 || job->push_type > 3)
        return -1;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    s_pack_head(&pk, PP_JOB_RESOLVE, RESOLVE_ARITY);
    s_pack_str(&pk, job->msg_id);
    msgpack_pack_uint8(&pk, job->push_type);
    msgpack_pack_array(&pk, job->n_ids);
    for (size_t i = 0; i < job->n_ids; i++)
        s_pack_str(&pk, job->ids[i]);
    s_pack_str(&pk, job->data_json);
    msgpack_pack_uint64(&pk, job->received_us);
    s_pack_opts(&pk, &job->opts);
    return 0;
}

int pp_apns_job_encode(const pp_apns_job_t *job, msgpack_sbuffer *out)
{
    if (job->n_targets == 0 || job->n_targets > PP_JOB_MAX_TARGETS || job->env > 1) return -1;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    s_pack_head(&pk, PP_JOB_APNS, APNS_ARITY);
    s_pack_str(&pk, job->msg_id);
    s_pack_str(&pk, job->ident);
    msgpack_pack_uint8(&pk, job->env);
    s_pack_str(&pk, job->payload);
    s_pack_str(&pk, job->push_type);
    msgpack_pack_int(&pk, job->priority);
    msgpack_pack_int64(&pk, job->expiration);
    s_pack_str(&pk, job->collapse_id);
    msgpack_pack_uint64(&pk, job->received_us);
    msgpack_pack_array(&pk, job->n_targets);
    for (size_t i = 0; i < job->n_targets; i++) {
        msgpack_pack_array(&pk, 2);
        s_pack_str(&pk, job->targets[i].uid);
        s_pack_str(&pk, job->targets[i].token);
    }
    return 0;
}

int pp_mqtt_job_encode(const pp_mqtt_job_t *job, msgpack_sbuffer *out)
{
    if (job->n_topics == 0 || job->n_topics > PP_JOB_MAX_TOPICS || job->qos < -1 || job->qos > 2)
        return -1;
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    s_pack_head(&pk, PP_JOB_MQTT, MQTT_ARITY);
    s_pack_str(&pk, job->msg_id);
    msgpack_pack_int(&pk, job->qos);
    s_pack_str(&pk, job->payload);
    msgpack_pack_uint64(&pk, job->received_us);
    msgpack_pack_array(&pk, job->n_topics);
    for (size_t i = 0; i < job->n_topics; i++)
        s_pack_str(&pk, job->topics[i]);
    return 0;
}

/* ---- decoding ---------------------------------------------------------------------- */

/* A decode walks one msgpack_object tree. msgpack-c's unpacker points str bodies into the
   input buffer, so the pp_str_t results are zero-copy; only the tree itself lives in the
   zone, which is freed before returning. */

typedef struct {
    msgpack_unpacked up;
    const msgpack_object *f; /* the top array's elements */
    size_t n;
} s_frame_t;

static int s_open(const void *buf, size_t len, int kind, size_t arity, s_frame_t *fr,
                  const char **why)
{
    /* Jobs nest 3 deep (job, targets, pair); anything else is not a job. */
    switch (pp_mpscan(buf, len, 3, NULL)) {
    case PP_MPSCAN_OK:
        break;
    case PP_MPSCAN_TRAILING:
        *why = "trailing_bytes";
        return -1;
    case PP_MPSCAN_TOO_DEEP:
        *why = "too_deep";
        return -1;
    default:
        *why = "not_msgpack";
        return -1;
    }
    msgpack_unpacked_init(&fr->up);
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack_next(&fr->up, buf, len, &off);
    if (r != MSGPACK_UNPACK_SUCCESS) {
        *why = "not_msgpack";
        goto fail;
    }
    if (off != len) {
        *why = "trailing_bytes";
        goto fail;
    }
    const msgpack_object *o = &fr->up.data;
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 2) {
        *why = "not_array";
        goto fail;
    }
    fr->f = o->via.array.ptr;
    fr->n = o->via.array.size;
    if (fr->f[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER || fr->f[0].via.u64 != (uint64_t)kind) {
        *why = "bad_kind";
        goto fail;
    }
    if (fr->f[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER || fr->f[1].via.u64 != PP_JOB_VERSION) {
        *why = "bad_version";
        goto fail;
    }
    if (fr->n != arity) {
        *why = "bad_arity";
        goto fail;
    }
    return 0;
fail:
    msgpack_unpacked_destroy(&fr->up);
    return -1;
}

static bool s_str(const msgpack_object *o, pp_str_t *out)
{
    if (o->type != MSGPACK_OBJECT_STR) return false;
    out->ptr = o->via.str.ptr;
    out->len = o->via.str.size;
    return true;
}

static bool s_int(const msgpack_object *o, int64_t min, int64_t max, int64_t *out)
{
    int64_t v;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > (uint64_t)INT64_MAX) return false;
        v = (int64_t)o->via.u64;
    } else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        v = o->via.i64;
    } else {
        return false;
    }
    if (v < min || v > max) return false;
    *out = v;
    return true;
}

static bool s_u64(const msgpack_object *o, uint64_t *out)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER) return false;
    *out = o->via.u64;
    return true;
}

/* Reads an array of strings into a freshly allocated pp_str_t array. */
static bool s_str_array(const msgpack_object *o, size_t max, pp_str_t **out, size_t *n)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 || o->via.array.size > max)
        return false;
    pp_str_t *arr = malloc(o->via.array.size * sizeof *arr);
    if (!arr) return false;
    for (size_t i = 0; i < o->via.array.size; i++) {
        if (!s_str(&o->via.array.ptr[i], &arr[i])) {
            free(arr);
            return false;
        }
    }
    *out = arr;
    *n = o->via.array.size;
    return true;
}

static bool s_opts(const msgpack_object *o, pp_opts_t *opts)
{
    pp_opts_init(opts);
    if (o->type != MSGPACK_OBJECT_MAP) return false;
    for (size_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        pp_str_t k;
        int64_t v;
        if (!s_str(&kv->key, &k)) return false;
#define KEY(lit) (k.len == sizeof(lit) - 1 && memcmp(k.ptr, lit, k.len) == 0)
        if (KEY("id")) {
            if (!s_str(&kv->val, &opts->client_id)) return false;
        } else if (KEY("ch")) {
            if (!s_int(&kv->val, 1, 3, &v)) return false;
            opts->channels = (uint8_t)v;
        } else if (KEY("pt")) {
            if (!s_str(&kv->val, &opts->apns_push_type)) return false;
        } else if (KEY("pr")) {
            if (!s_int(&kv->val, 0, 10, &v)) return false;
            opts->apns_priority = (int)v;
        } else if (KEY("ex")) {
            if (!s_int(&kv->val, -1, INT64_MAX, &opts->apns_expiration)) return false;
        } else if (KEY("ci")) {
            if (!s_str(&kv->val, &opts->apns_collapse_id)) return false;
        } else if (KEY("qos")) {
            if (!s_int(&kv->val, -1, 2, &v)) return false;
            opts->mqtt_qos = (int)v;
        }
        /* Unknown keys are skipped: a newer broker may add options that an older
           resolver can ignore safely. */
#undef KEY
    }
    return true;
}

int pp_resolve_job_decode(const void *buf, size_t len, pp_resolve_job_t *job, const char **why)
{
    s_frame_t fr;
    memset(job, 0, sizeof *job);
    if (s_open(buf, len, PP_JOB_RESOLVE, RESOLVE_ARITY, &fr, why) != 0) return -1;
    const msgpack_object *f = fr.f;
    int64_t type = 0;
    *why = NULL;
    if (!s_str(&f[2], &job->msg_id))
        *why = "bad_field:msg_id";
    else if (!s_int(&f[3], 1, 3, &type))
        *why = "bad_field:push_type";
    else if (!s_str(&f[5], &job->data_json))
        *why = "bad_field:data_json";
    else if (!s_u64(&f[6], &job->received_us))
        *why = "bad_field:received_us";
    else if (!s_opts(&f[7], &job->opts))
        *why = "bad_field:opts";
    else if (!s_str_array(&f[4], PP_JOB_MAX_IDS, &job->ids, &job->n_ids))
        *why = "bad_field:ids";
    else if (type != 2 && job->n_ids != 1) {
        *why = "bad_field:ids";
        free(job->ids);
        job->ids = NULL;
    }
    msgpack_unpacked_destroy(&fr.up);
    if (*why) return -1;
    job->push_type = (uint8_t)type;
    return 0;
}

static bool s_targets(const msgpack_object *o, pp_apns_job_t *job)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size == 0 ||
        o->via.array.size > PP_JOB_MAX_TARGETS)
        return false;
    size_t n = o->via.array.size;
    pp_apns_target_t *t = malloc(n * sizeof *t);
    if (!t) return false;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *pair = &o->via.array.ptr[i];
        if (pair->type != MSGPACK_OBJECT_ARRAY || pair->via.array.size != 2 ||
            !s_str(&pair->via.array.ptr[0], &t[i].uid) ||
            !s_str(&pair->via.array.ptr[1], &t[i].token) || t[i].token.len == 0) {
            free(t);
            return false;
        }
    }
    job->targets = t;
    job->n_targets = n;
    return true;
}

int pp_apns_job_decode(const void *buf, size_t len, pp_apns_job_t *job, const char **why)
{
    s_frame_t fr;
    memset(job, 0, sizeof *job);
    if (s_open(buf, len, PP_JOB_APNS, APNS_ARITY, &fr, why) != 0) return -1;
    const msgpack_object *f = fr.f;
    int64_t env = 0, prio = 0;
    *why = NULL;
    if (!s_str(&f[2], &job->msg_id))
        *why = "bad_field:msg_id";
    else if (!s_str(&f[3], &job->ident))
        *why = "bad_field:ident";
    else if (!s_int(&f[4], 0, 1, &env))
        *why = "bad_field:env";
    else if (!s_str(&f[5], &job->payload))
        *why = "bad_field:payload";
    else if (!s_str(&f[6], &job->push_type))
        *why = "bad_field:push_type";
    else if (!s_int(&f[7], 0, 10, &prio))
        *why = "bad_field:priority";
    else if (!s_int(&f[8], -1, INT64_MAX, &job->expiration))
        *why = "bad_field:expiration";
    else if (!s_str(&f[9], &job->collapse_id))
        *why = "bad_field:collapse_id";
    else if (!s_u64(&f[10], &job->received_us))
        *why = "bad_field:received_us";
    else if (!s_targets(&f[11], job))
        *why = "bad_field:targets";
    msgpack_unpacked_destroy(&fr.up);
    if (*why) return -1;
    job->env = (uint8_t)env;
    job->priority = (int)prio;
    return 0;
}

int pp_mqtt_job_decode(const void *buf, size_t len, pp_mqtt_job_t *job, const char **why)
{
    s_frame_t fr;
    memset(job, 0, sizeof *job);
    if (s_open(buf, len, PP_JOB_MQTT, MQTT_ARITY, &fr, why) != 0) return -1;
    const msgpack_object *f = fr.f;
    int64_t qos = 0;
    *why = NULL;
    if (!s_str(&f[2], &job->msg_id))
        *why = "bad_field:msg_id";
    else if (!s_int(&f[3], -1, 2, &qos))
        *why = "bad_field:qos";
    else if (!s_str(&f[4], &job->payload))
        *why = "bad_field:payload";
    else if (!s_u64(&f[5], &job->received_us))
        *why = "bad_field:received_us";
    else if (!s_str_array(&f[6], PP_JOB_MAX_TOPICS, &job->topics, &job->n_topics))
        *why = "bad_field:topics";
    msgpack_unpacked_destroy(&fr.up);
    if (*why) return -1;
    job->qos = (int)qos;
    return 0;
}

int pp_job_peek_kind(const void *buf, size_t len)
{
    /* Only the first bytes are read: the hub checks the kind of every job it forwards
       without paying for a full decode. fixarray (0x90-0x9f) or array16 (0xdc), then a
       positive fixint kind. */
    const unsigned char *p = buf;
    if (len < 2) return 0;
    size_t at;
    if (p[0] >= 0x90 && p[0] <= 0x9f)
        at = 1;
    else if (p[0] == 0xdc && len >= 4)
        at = 3;
    else
        return 0;
    if (p[at] >= PP_JOB_RESOLVE && p[at] <= PP_JOB_MQTT) return p[at];
    return 0;
}

int pp_job_peek_msg_id(const void *buf, size_t len, pp_str_t *id)
{
    const unsigned char *p = buf;
    if (pp_job_peek_kind(buf, len) == 0) return -1;
    size_t at = p[0] == 0xdc ? 3 : 1;
    at += 2; /* kind and version: positive fixints */
    if (at >= len || p[at - 1] > 0x7f) return -1;
    size_t n, data;
    if (p[at] >= 0xa0 && p[at] <= 0xbf) {
        n = p[at] & 0x1f;
        data = at + 1;
    } else if (p[at] == 0xd9 && at + 1 < len) {
        n = p[at + 1];
        data = at + 2;
    } else if (p[at] == 0xda && at + 2 < len) {
        n = (size_t)p[at + 1] << 8 | p[at + 2];
        data = at + 3;
    } else {
        return -1;
    }
    if (data + n > len) return -1;
    *id = (pp_str_t){(const char *)p + data, n};
    return 0;
}

void pp_resolve_job_clear(pp_resolve_job_t *job)
{
    free(job->ids);
    job->ids = NULL;
    job->n_ids = 0;
}

void pp_apns_job_clear(pp_apns_job_t *job)
{
    free(job->targets);
    job->targets = NULL;
    job->n_targets = 0;
}

void pp_mqtt_job_clear(pp_mqtt_job_t *job)
{
    free(job->topics);
    job->topics = NULL;
    job->n_topics = 0;
}

/*  pp_frame: strict decoding of client frames. See pp_frame.h and PROTOCOL.md.

    Decoding runs in three steps:
      1. pp_mpscan() walks the raw bytes once, without building anything, and
         rejects frames that are not msgpack, truncated, followed by trailing bytes, or
         nested deeper than the limit. It exists because msgpack-c's unpacker, given a
         container header, allocates count * 24 bytes before it has seen a single element
         (a 5-byte frame could ask for gigabytes), and because it reports nesting beyond
         its fixed 32-level stack as a plain parse error. After the scan, every container
         count is known to fit in the bytes that are left, and the nesting fits.
      2. msgpack_unpack() (msgpack-c) builds the object tree in a zone that the decoder
         keeps and clears, so the common case allocates nothing.
      3. The tree is checked element by element; data is rendered by pp_json into a
         reused buffer, ids are copied into a reused arena.
*/
#include "pp_frame.h"
#include "pp_json.h"
#include "pp_mpscan.h"
#include "pp_log.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/*  The first zone chunk. Big enough that a frame with a few hundred values needs no
    allocation; bigger frames get extra chunks that the next decode frees. */
#define ZONE_CHUNK 16384
/*  Longest text of an integer id: "-9223372036854775808" or "18446744073709551615". */
#define INT_ID_MAX 20
#define OPT_STR_MAX 64

struct pp_frame_decoder_t {
    pp_frame_limits_t lim;
    msgpack_zone zone;
    pp_json_buf_t json;
    pp_str_t *ids; /* normalised ids of the last frame */
    size_t ids_cap;
    char *idtext; /* their bytes */
    size_t idtext_cap;
    uint32_t *set; /* open-addressing hash set for de-duplication: index + 1, 0 = empty */
    size_t set_cap;
    uint64_t seed; /* per-decoder hash seed, so clients cannot pre-compute collisions */
    char client_id[OPT_STR_MAX + 1];
    char collapse_id[OPT_STR_MAX + 1];
    char detail[192];
};

pp_frame_limits_t pp_frame_limits_default(void)
{
    pp_frame_limits_t l = {
        .max_frame_bytes = 65536,
        .max_depth = 16,
        .max_ids = 10000,
        .max_id_len = 64,
        .max_json_bytes = 65536,
    };
    return l;
}

static const char *const reason_names[PP_FRAME_REASON_COUNT] = {
    [PP_FRAME_OK] = "ok",
    [PP_FRAME_NOT_MSGPACK] = "not_msgpack",
    [PP_FRAME_TRUNCATED] = "truncated",
    [PP_FRAME_TRAILING_BYTES] = "trailing_bytes",
    [PP_FRAME_NOT_ARRAY] = "not_array",
    [PP_FRAME_BAD_ARITY] = "bad_arity",
    [PP_FRAME_BAD_PUSH_TYPE] = "bad_push_type",
    [PP_FRAME_BAD_PUSH_ID] = "bad_push_id",
    [PP_FRAME_ID_TOO_LONG] = "id_too_long",
    [PP_FRAME_TOO_MANY_IDS] = "too_many_ids",
    [PP_FRAME_BAD_DATA] = "bad_data",
    [PP_FRAME_BAD_KEY] = "bad_key",
    [PP_FRAME_BAD_VALUE] = "bad_value",
    [PP_FRAME_BAD_NUMBER] = "bad_number",
    [PP_FRAME_BAD_UTF8] = "bad_utf8",
    [PP_FRAME_TOO_DEEP] = "too_deep",
    [PP_FRAME_TOO_LARGE] = "too_large",
    [PP_FRAME_BAD_OPTIONS] = "bad_options",
    [PP_FRAME_MULTIPART] = "multipart",
};

const char *pp_frame_reason_name(pp_frame_reason_t reason)
{
    if ((unsigned)reason >= PP_FRAME_REASON_COUNT) return "unknown";
    return reason_names[reason];
}

pp_frame_decoder_t *pp_frame_decoder_new(const pp_frame_limits_t *limits)
{
    pp_frame_decoder_t *d = calloc(1, sizeof *d);
    if (!d) return NULL;
    d->lim = limits ? *limits : pp_frame_limits_default();
    if (d->lim.max_depth > PP_FRAME_MAX_DEPTH_LIMIT) d->lim.max_depth = PP_FRAME_MAX_DEPTH_LIMIT;
    if (d->lim.max_ids > PP_JOB_MAX_IDS) d->lim.max_ids = PP_JOB_MAX_IDS;
    if (!msgpack_zone_init(&d->zone, ZONE_CHUNK)) {
        free(d);
        return NULL;
    }
    pp_json_buf_init(&d->json);
    /* Room for the common case up front, so that the first frames allocate nothing. */
    d->ids_cap = 64;
    d->idtext_cap = 4096;
    d->ids = malloc(d->ids_cap * sizeof *d->ids);
    d->idtext = malloc(d->idtext_cap);
    if (!d->ids || !d->idtext || pp_json_buf_reserve(&d->json, 4096) != 0) {
        pp_frame_decoder_destroy(&d);
        return NULL;
    }
    if (getrandom(&d->seed, sizeof d->seed, GRND_NONBLOCK) != (ssize_t)sizeof d->seed)
        d->seed = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)d;
    return d;
}

void pp_frame_decoder_destroy(pp_frame_decoder_t **p)
{
    if (!p || !*p) return;
    pp_frame_decoder_t *d = *p;
    msgpack_zone_destroy(&d->zone);
    pp_json_buf_release(&d->json);
    free(d->ids);
    free(d->idtext);
    free(d->set);
    free(d);
    *p = NULL;
}

/* ---- step 1: structure scan (pp_mpscan) ------------------------------------------ */

static pp_frame_reason_t scan_structure(const unsigned char *p, size_t len, size_t max_levels,
                                        const char **detail)
{
    switch (pp_mpscan(p, len, max_levels, detail)) {
    case PP_MPSCAN_OK:
        return PP_FRAME_OK;
    case PP_MPSCAN_TRUNCATED:
        return PP_FRAME_TRUNCATED;
    case PP_MPSCAN_TOO_DEEP:
        return PP_FRAME_TOO_DEEP;
    case PP_MPSCAN_TRAILING:
        return PP_FRAME_TRAILING_BYTES;
    default:
        return PP_FRAME_NOT_MSGPACK;
    }
}

/* ---- step 3: ids -------------------------------------------------------------------- */

static const char *type_name(msgpack_object_type t)
{
    switch (t) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "a bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "an integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "a float";
    case MSGPACK_OBJECT_STR:
        return "a str";
    case MSGPACK_OBJECT_ARRAY:
        return "an array";
    case MSGPACK_OBJECT_MAP:
        return "a map";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_EXT:
        return "ext";
    }
    return "unknown";
}

/*  Ids become parts of Redis keys ("User:<id>") and MQTT topics ("<prefix>/user/<id>"):
    refuse what would change a topic's levels ('/'), act as a wildcard ('+', '#'), or
    make keys and logs ambiguous (ASCII controls and space, DEL, C1 controls U+0080..
    U+009F, which MQTT also advises against). Runs after UTF-8 validation. */
static bool id_bytes_allowed(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c <= 0x20 || c == 0x7f || c == '/' || c == '+' || c == '#') return false;
        if (c == 0xc2 && i + 1 < n && s[i + 1] <= 0x9f) return false;
    }
    return true;
}

static void set_detail(pp_frame_decoder_t *d, const char **detail, const char *fmt, const char *arg)
{
    snprintf(d->detail, sizeof d->detail, fmt, arg);
    *detail = d->detail;
}

/*  Normalises one scalar id into the arena at *used (which has room for it). what is
    "push_id" or "an element of push_id" for the detail. */
static pp_frame_reason_t take_id(pp_frame_decoder_t *d, const msgpack_object *o, const char *what,
                                 size_t *used, pp_str_t *id, const char **detail)
{
    char *out = d->idtext + *used;
    const char *s;
    size_t n;
    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        n = pp_json_u64(out, o->via.u64);
        break;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        n = pp_json_i64(out, o->via.i64);
        break;
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN: /* old Python clients: bytes that hold UTF-8 text */
        s = o->type == MSGPACK_OBJECT_STR ? o->via.str.ptr : o->via.bin.ptr;
        n = o->type == MSGPACK_OBJECT_STR ? o->via.str.size : o->via.bin.size;
        if (n == 0) {
            set_detail(d, detail, "%s is an empty string", what);
            return PP_FRAME_BAD_PUSH_ID;
        }
        if (n > d->lim.max_id_len) break;
        if (!pp_utf8_valid(s, n)) {
            set_detail(d, detail, "%s is not valid UTF-8", what);
            return PP_FRAME_BAD_UTF8;
        }
        if (!id_bytes_allowed((const unsigned char *)s, n)) {
            set_detail(d, detail, "%s holds a space, control character, '/', '+' or '#'", what);
            return PP_FRAME_BAD_PUSH_ID;
        }
        memcpy(out, s, n);
        break;
    default:
        snprintf(d->detail, sizeof d->detail, "%s is %s", what, type_name(o->type));
        *detail = d->detail;
        return PP_FRAME_BAD_PUSH_ID;
    }
    if (n > d->lim.max_id_len) {
        snprintf(d->detail, sizeof d->detail, "%s is longer than %zu bytes", what,
                 d->lim.max_id_len);
        *detail = d->detail;
        return PP_FRAME_ID_TOO_LONG;
    }
    id->ptr = out;
    id->len = n;
    *used += n;
    return PP_FRAME_OK;
}

/*  Makes room for n ids whose text takes at most text bytes. */
static int reserve_ids(pp_frame_decoder_t *d, size_t n, size_t text)
{
    if (n > d->ids_cap) {
        pp_str_t *ids = realloc(d->ids, n * sizeof *ids);
        if (!ids) return -1;
        d->ids = ids;
        d->ids_cap = n;
    }
    if (text > d->idtext_cap) {
        size_t cap = d->idtext_cap ? d->idtext_cap : 256;
        while (cap < text)
            cap *= 2;
        char *t = realloc(d->idtext, cap);
        if (!t) return -1;
        d->idtext = t;
        d->idtext_cap = cap;
    }
    return 0;
}

/*  Upper bound of the normalised text of the ids in v[0..n). */
static size_t id_text_bound(const pp_frame_decoder_t *d, const msgpack_object *v, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        /* Strings too long are refused before they are copied; integers are written
           out before their length is checked. */
        size_t s = INT_ID_MAX;
        if (v[i].type == MSGPACK_OBJECT_STR)
            s = v[i].via.str.size <= d->lim.max_id_len ? v[i].via.str.size : 0;
        else if (v[i].type == MSGPACK_OBJECT_BIN)
            s = v[i].via.bin.size <= d->lim.max_id_len ? v[i].via.bin.size : 0;
        total += s;
    }
    return total;
}

/*  Seeded multiply-xorshift hash. Not cryptographic; the random seed is what keeps a
    client from sending 10,000 ids that all land in one bucket. */
static uint64_t id_hash(uint64_t seed, const char *s, size_t n)
{
    uint64_t h = seed ^ (n * 0x9e3779b97f4a7c15u);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdu;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xc4ceb9fe1a85ec53u;
    h ^= h >> 29;
    h *= 0xff51afd7ed558ccdu;
    return h ^ (h >> 32);
}

/*  Removes repeated ids from d->ids[0..*n) in place, first occurrence kept, in O(n)
    expected time. Returns the number removed, or -1 if out of memory. */
static long dedup_ids(pp_frame_decoder_t *d, size_t *n)
{
    size_t cap = 16;
    while (cap < 2 * *n)
        cap *= 2;
    if (cap > d->set_cap) {
        uint32_t *set = realloc(d->set, cap * sizeof *set);
        if (!set) return -1;
        d->set = set;
        d->set_cap = cap;
    }
    memset(d->set, 0, cap * sizeof *d->set);
    size_t kept = 0;
    for (size_t i = 0; i < *n; i++) {
        pp_str_t id = d->ids[i];
        size_t slot = (size_t)id_hash(d->seed, id.ptr, id.len) & (cap - 1);
        bool dup = false;
        while (d->set[slot]) {
            const pp_str_t *o = &d->ids[d->set[slot] - 1];
            if (o->len == id.len && memcmp(o->ptr, id.ptr, id.len) == 0) {
                dup = true;
                break;
            }
            slot = (slot + 1) & (cap - 1);
        }
        if (dup) continue;
        d->ids[kept] = id;
        d->set[slot] = (uint32_t)(kept + 1);
        kept++;
    }
    long removed = (long)(*n - kept);
    *n = kept;
    return removed;
}

static pp_frame_reason_t take_ids(pp_frame_decoder_t *d, uint8_t push_type, const msgpack_object *o,
                                  pp_frame_t *frame, const char **detail)
{
    const msgpack_object *v = o;
    size_t n = 1;
    const char *what = "push_id";
    if (push_type == 2) {
        if (o->type != MSGPACK_OBJECT_ARRAY) {
            snprintf(d->detail, sizeof d->detail,
                     "push_id is %s; push_type 2 takes an array of user ids", type_name(o->type));
            *detail = d->detail;
            return PP_FRAME_BAD_PUSH_ID;
        }
        v = o->via.array.ptr;
        n = o->via.array.size;
        what = "an element of push_id";
        if (n == 0) {
            *detail = "push_id is an empty array";
            return PP_FRAME_BAD_PUSH_ID;
        }
        if (n > d->lim.max_ids) {
            snprintf(d->detail, sizeof d->detail, "push_id holds %zu ids, more than %zu", n,
                     d->lim.max_ids);
            *detail = d->detail;
            return PP_FRAME_TOO_MANY_IDS;
        }
    } else if (o->type == MSGPACK_OBJECT_ARRAY) {
        snprintf(d->detail, sizeof d->detail, "push_id is an array; push_type %d takes one id",
                 push_type);
        *detail = d->detail;
        return PP_FRAME_BAD_PUSH_ID;
    }
    if (reserve_ids(d, n, id_text_bound(d, v, n)) != 0) {
        *detail = "out of memory";
        return PP_FRAME_TOO_LARGE;
    }
    size_t used = 0;
    for (size_t i = 0; i < n; i++) {
        pp_frame_reason_t r = take_id(d, &v[i], what, &used, &d->ids[i], detail);
        if (r != PP_FRAME_OK) return r;
    }
    if (n > 1) {
        long removed = dedup_ids(d, &n);
        if (removed < 0) {
            *detail = "out of memory";
            return PP_FRAME_TOO_LARGE;
        }
        frame->duplicates_removed = (size_t)removed;
    }
    frame->ids = d->ids;
    frame->n_ids = n;
    return PP_FRAME_OK;
}

/* ---- step 3: data ------------------------------------------------------------------- */

static pp_frame_reason_t take_data(pp_frame_decoder_t *d, const msgpack_object *o,
                                   pp_frame_t *frame, const char **detail)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        set_detail(d, detail, "data is %s, not a map", type_name(o->type));
        return PP_FRAME_BAD_DATA;
    }
    d->json.len = 0;
    pp_json_status_t st =
        pp_json_append(&d->json, o, d->lim.max_depth, d->lim.max_json_bytes, detail);
    switch (st) {
    case PP_JSON_OK:
        break;
    case PP_JSON_BAD_KEY:
        return PP_FRAME_BAD_KEY;
    case PP_JSON_BAD_VALUE:
        return PP_FRAME_BAD_VALUE;
    case PP_JSON_BAD_NUMBER:
        return PP_FRAME_BAD_NUMBER;
    case PP_JSON_BAD_UTF8:
        return PP_FRAME_BAD_UTF8;
    case PP_JSON_TOO_DEEP:
        return PP_FRAME_TOO_DEEP;
    case PP_JSON_TOO_LARGE:
    case PP_JSON_NO_MEMORY:
        return PP_FRAME_TOO_LARGE;
    }
    if (pp_json_buf_terminate(&d->json) != 0) {
        *detail = "out of memory";
        return PP_FRAME_TOO_LARGE;
    }
    frame->data_json.ptr = d->json.data;
    frame->data_json.len = d->json.len;
    return PP_FRAME_OK;
}

/* ---- step 3: options ---------------------------------------------------------------- */

static bool key_is(const msgpack_object *k, const char *name, size_t len)
{
    return k->via.str.size == len && memcmp(k->via.str.ptr, name, len) == 0;
}

static bool str_is(const msgpack_object *v, const char *s)
{
    size_t n = strlen(s);
    return v->via.str.size == n && memcmp(v->via.str.ptr, s, n) == 0;
}

/*  A msgpack integer that fits int64_t. */
static bool get_int(const msgpack_object *v, int64_t *out)
{
    if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER && v->via.u64 <= INT64_MAX) {
        *out = (int64_t)v->via.u64;
        return true;
    }
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = v->via.i64;
        return true;
    }
    return false;
}

static const char *const apns_push_types[] = {
    "alert",        "background", "location",     "voip",       "complication",
    "fileprovider", "mdm",        "liveactivity", "pushtotalk",
};

enum {
    OPT_ID = 1 << 0,
    OPT_CHANNELS = 1 << 1,
    OPT_PUSH_TYPE = 1 << 2,
    OPT_PRIORITY = 1 << 3,
    OPT_EXPIRATION = 1 << 4,
    OPT_TTL = 1 << 5,
    OPT_COLLAPSE = 1 << 6,
    OPT_QOS = 1 << 7,
};

/*  Copies a short option string into dst (OPT_STR_MAX + 1 bytes) if every byte passes:
    printable ASCII without space for the client's id (it appears in logs and traces),
    valid UTF-8 without control characters for the collapse id (an HTTP/2 header). */
static bool take_opt_str(const msgpack_object *v, bool ascii_only, char *dst, pp_str_t *out)
{
    if (v->type != MSGPACK_OBJECT_STR || v->via.str.size == 0 || v->via.str.size > OPT_STR_MAX)
        return false;
    const unsigned char *s = (const unsigned char *)v->via.str.ptr;
    size_t n = v->via.str.size;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] == 0x7f || (ascii_only && (s[i] == 0x20 || s[i] > 0x7f)))
            return false;
    }
    if (!ascii_only && !pp_utf8_valid(s, n)) return false;
    memcpy(dst, s, n);
    dst[n] = '\0';
    out->ptr = dst;
    out->len = n;
    return true;
}

/*  Applies one option. Returns NULL, or the static detail of what is wrong. */
static const char *take_opt(pp_frame_decoder_t *d, const msgpack_object *k, const msgpack_object *v,
                            int64_t now_s, unsigned *seen, pp_opts_t *opts)
{
    int64_t x;
    unsigned bit;
    const char *bad = NULL;
    if (key_is(k, "id", 2)) {
        bit = OPT_ID;
        if (!take_opt_str(v, true, d->client_id, &opts->client_id))
            bad = "option id must be a str of 1 to 64 printable ASCII characters, no spaces";
    } else if (key_is(k, "channels", 8)) {
        bit = OPT_CHANNELS;
        if (v->type == MSGPACK_OBJECT_STR && str_is(v, "all"))
            opts->channels = PP_CH_ALL;
        else if (v->type == MSGPACK_OBJECT_STR && str_is(v, "apns"))
            opts->channels = PP_CH_APNS;
        else if (v->type == MSGPACK_OBJECT_STR && str_is(v, "mqtt"))
            opts->channels = PP_CH_MQTT;
        else
            bad = "option channels must be \"all\", \"apns\" or \"mqtt\"";
    } else if (key_is(k, "apns_push_type", 14)) {
        bit = OPT_PUSH_TYPE;
        bad = "option apns_push_type must be one of alert, background, location, voip, "
              "complication, fileprovider, mdm, liveactivity, pushtotalk";
        for (size_t i = 0;
             v->type == MSGPACK_OBJECT_STR && i < sizeof apns_push_types / sizeof *apns_push_types;
             i++) {
            if (str_is(v, apns_push_types[i])) {
                opts->apns_push_type = (pp_str_t){apns_push_types[i], v->via.str.size};
                bad = NULL;
                break;
            }
        }
    } else if (key_is(k, "apns_priority", 13)) {
        bit = OPT_PRIORITY;
        if (get_int(v, &x) && (x == 10 || x == 5 || x == 1))
            opts->apns_priority = (int)x;
        else
            bad = "option apns_priority must be the integer 10, 5 or 1";
    } else if (key_is(k, "apns_expiration", 15)) {
        bit = OPT_EXPIRATION;
        if (get_int(v, &x) && x >= 0)
            opts->apns_expiration = x;
        else
            bad = "option apns_expiration must be an integer >= 0 (UNIX seconds)";
    } else if (key_is(k, "ttl", 3)) {
        bit = OPT_TTL;
        /* ttl 0 keeps APNs' meaning of expiration 0: try once, do not store. */
        if (get_int(v, &x) && x >= 0 && (now_s <= 0 || x <= INT64_MAX - now_s))
            opts->apns_expiration = x == 0 ? 0 : now_s + x;
        else
            bad = "option ttl must be an integer >= 0 (seconds)";
    } else if (key_is(k, "apns_collapse_id", 16)) {
        bit = OPT_COLLAPSE;
        if (!take_opt_str(v, false, d->collapse_id, &opts->apns_collapse_id))
            bad = "option apns_collapse_id must be a str of 1 to 64 bytes of UTF-8 without "
                  "control characters";
    } else if (key_is(k, "mqtt_qos", 8)) {
        bit = OPT_QOS;
        if (get_int(v, &x) && x >= 0 && x <= 2)
            opts->mqtt_qos = (int)x;
        else
            bad = "option mqtt_qos must be the integer 0, 1 or 2";
    } else {
        char q[80];
        pp_log_quote(k->via.str.ptr, k->via.str.size, 40, q, sizeof q);
        snprintf(d->detail, sizeof d->detail, "unknown option %s", q);
        return d->detail;
    }
    if (bad) return bad;
    if (*seen & bit) {
        char q[80];
        pp_log_quote(k->via.str.ptr, k->via.str.size, 40, q, sizeof q);
        snprintf(d->detail, sizeof d->detail, "option %s is given twice", q);
        return d->detail;
    }
    *seen |= bit;
    if ((*seen & (OPT_TTL | OPT_EXPIRATION)) == (OPT_TTL | OPT_EXPIRATION))
        return "options ttl and apns_expiration exclude each other";
    return NULL;
}

static pp_frame_reason_t take_opts(pp_frame_decoder_t *d, const msgpack_object *o, int64_t now_s,
                                   pp_opts_t *opts, const char **detail)
{
    if (o->type != MSGPACK_OBJECT_MAP) {
        set_detail(d, detail, "options is %s, not a map", type_name(o->type));
        return PP_FRAME_BAD_OPTIONS;
    }
    unsigned seen = 0;
    for (uint32_t i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) {
            set_detail(d, detail, "an option key is %s, not a str", type_name(k->type));
            return PP_FRAME_BAD_OPTIONS;
        }
        const char *bad = take_opt(d, k, &o->via.map.ptr[i].val, now_s, &seen, opts);
        if (bad) {
            *detail = bad;
            return PP_FRAME_BAD_OPTIONS;
        }
    }
    return PP_FRAME_OK;
}

/* ---- the decoder -------------------------------------------------------------------- */

pp_frame_reason_t pp_frame_decode(pp_frame_decoder_t *d, const void *buf, size_t len, int64_t now_s,
                                  pp_frame_t *frame, const char **detail)
{
    const char *dummy;
    if (!detail) detail = &dummy;
    *detail = "";
    memset(frame, 0, sizeof *frame);
    pp_opts_init(&frame->opts);

    if (len > d->lim.max_frame_bytes) {
        snprintf(d->detail, sizeof d->detail, "frame of %zu bytes exceeds max_frame_bytes %zu", len,
                 d->lim.max_frame_bytes);
        *detail = d->detail;
        return PP_FRAME_TOO_LARGE;
    }
    pp_frame_reason_t r = scan_structure(buf, len, d->lim.max_depth + 1, detail);
    if (r != PP_FRAME_OK) return r;

    msgpack_zone_clear(&d->zone);
    msgpack_object root;
    size_t off = 0;
    switch (msgpack_unpack(buf, len, &off, &d->zone, &root)) {
    case MSGPACK_UNPACK_SUCCESS:
        break;
    /* The scan has ruled these out; kept so that a disagreement is a reject, not a crash. */
    case MSGPACK_UNPACK_EXTRA_BYTES:
        *detail = "bytes follow the frame's array";
        return PP_FRAME_TRAILING_BYTES;
    case MSGPACK_UNPACK_CONTINUE:
        *detail = "frame ends in the middle of a value";
        return PP_FRAME_TRUNCATED;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        *detail = "out of memory";
        return PP_FRAME_TOO_LARGE;
    default:
        *detail = "not msgpack";
        return PP_FRAME_NOT_MSGPACK;
    }

    if (root.type != MSGPACK_OBJECT_ARRAY) {
        set_detail(d, detail, "frame is %s, not an array", type_name(root.type));
        return PP_FRAME_NOT_ARRAY;
    }
    const msgpack_object_array *a = &root.via.array;
    if (a->size != 3 && a->size != 4) {
        snprintf(d->detail, sizeof d->detail, "frame array has %" PRIu32 " elements, not 3 or 4",
                 a->size);
        *detail = d->detail;
        return PP_FRAME_BAD_ARITY;
    }
    const msgpack_object *t = &a->ptr[0];
    if (t->type != MSGPACK_OBJECT_POSITIVE_INTEGER || t->via.u64 < 1 || t->via.u64 > 3) {
        if (t->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
            t->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            *detail = "push_type must be 1, 2 or 3";
        else
            set_detail(d, detail, "push_type is %s, not the integer 1, 2 or 3", type_name(t->type));
        return PP_FRAME_BAD_PUSH_TYPE;
    }
    frame->push_type = (uint8_t)t->via.u64;

    r = take_ids(d, frame->push_type, &a->ptr[1], frame, detail);
    if (r == PP_FRAME_OK) r = take_data(d, &a->ptr[2], frame, detail);
    if (r == PP_FRAME_OK && a->size == 4) r = take_opts(d, &a->ptr[3], now_s, &frame->opts, detail);
    if (r != PP_FRAME_OK) {
        /* A rejected frame exposes nothing half-filled. */
        memset(frame, 0, sizeof *frame);
        pp_opts_init(&frame->opts);
        return r;
    }
    return PP_FRAME_OK;
}

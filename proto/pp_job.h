/*  pp_job: the internal frames that move between pipeline stages (see proto/JOBS.md).

    Every job is one ZMQ frame holding one msgpack array whose first two elements are the
    kind and the format version:

      RESOLVE  [1, 1, msg_id, push_type, ids, data_json, received_us, opts]
               broker -> resolver. ids: array of id strings (1 for types 1 and 3, the
               de-duplicated list for type 2). opts: map of normalised options (below).
      APNS     [2, 1, msg_id, ident, env, payload, push_type, priority, expiration,
                collapse_id, received_us, targets]
               resolver -> broker -> apns-sender. One payload for many devices:
               targets is an array of [uid, token] pairs that share ident and env.
      MQTT     [3, 1, msg_id, qos, payload, received_us, topics]
               resolver -> broker -> mqtt-sender. One payload for many topics.

    Strings are msgpack str. Decoding is strict (kinds, versions, arity, types, limits)
    and zero-copy: a decoded job's pp_str_t fields point into the frame it was decoded
    from, which must outlive the job. Encoding appends to a msgpack_sbuffer.
*/
#ifndef PP_JOB_H
#define PP_JOB_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef struct {
    const char *ptr;
    size_t len;
} pp_str_t;

#define PP_STR(lit) ((pp_str_t){(lit), sizeof(lit) - 1})
#define PP_STR_C(cstr) ((pp_str_t){(cstr), strlen(cstr)})

typedef enum { PP_JOB_RESOLVE = 1, PP_JOB_APNS = 2, PP_JOB_MQTT = 3 } pp_job_kind_t;
#define PP_JOB_VERSION 1

/*  Which channels a message may use (client option "channels"). */
enum { PP_CH_APNS = 1, PP_CH_MQTT = 2, PP_CH_ALL = 3 };
/*  APNs environment of a device. */
enum { PP_ENV_SANDBOX = 0, PP_ENV_PRODUCTION = 1 };

/*  Largest values the decoder accepts inside jobs (a job comes from our own stages, but a
    bug or a hostile peer on the network must not take a process down). */
#define PP_JOB_MAX_IDS 1000000
#define PP_JOB_MAX_TARGETS 100000
#define PP_JOB_MAX_TOPICS 100000

/*  Normalised client options carried by RESOLVE. Unset fields: empty string, 0 or -1 as
    noted. */
typedef struct {
    pp_str_t client_id;        /* client's message id for tracing, or empty */
    uint8_t channels;          /* PP_CH_*, PP_CH_ALL when not given */
    pp_str_t apns_push_type;   /* "alert", "background", ... or empty (resolver decides) */
    int apns_priority;         /* 10, 5, 1, or 0 = not given */
    int64_t apns_expiration;   /* absolute UNIX seconds; 0 = deliver once; -1 = not given */
    pp_str_t apns_collapse_id; /* at most 64 bytes, or empty */
    int mqtt_qos;              /* 0, 1, 2, or -1 = sender's default */
} pp_opts_t;

void pp_opts_init(pp_opts_t *opts);

typedef struct {
    pp_str_t msg_id;
    uint8_t push_type; /* 1 group, 2 users, 3 user */
    size_t n_ids;
    pp_str_t *ids; /* owned array (the strings point into the frame) */
    pp_str_t data_json;
    uint64_t received_us; /* broker's wall clock at acceptance, UNIX microseconds */
    pp_opts_t opts;
} pp_resolve_job_t;

typedef struct {
    pp_str_t uid;
    pp_str_t token;
} pp_apns_target_t;

typedef struct {
    pp_str_t msg_id;
    pp_str_t ident;     /* app_ident: selects the app's credentials in the sender */
    uint8_t env;        /* PP_ENV_* */
    pp_str_t payload;   /* the final APNs JSON payload, with "aps" */
    pp_str_t push_type; /* apns-push-type */
    int priority;       /* apns-priority, 0 = app default */
    int64_t expiration; /* apns-expiration, -1 = none */
    pp_str_t collapse_id;
    uint64_t received_us;
    size_t n_targets;
    pp_apns_target_t *targets;
} pp_apns_job_t;

typedef struct {
    pp_str_t msg_id;
    int qos; /* -1 = sender's default */
    pp_str_t payload;
    uint64_t received_us;
    size_t n_topics;
    pp_str_t *topics;
} pp_mqtt_job_t;

/*  Returns the kind of the job in buf (its first element), or 0 if it is not a job. */
int pp_job_peek_kind(const void *buf, size_t len);

/*  The msg_id of a job (any kind) without a full decode: *id points into buf. Returns 0,
    or -1 when buf does not start like a job with a string msg_id. */
int pp_job_peek_msg_id(const void *buf, size_t len, pp_str_t *id);

/*  Encoders: append one job to out. Return 0, or -1 if a field breaks a limit. */
int pp_resolve_job_encode(const pp_resolve_job_t *job, msgpack_sbuffer *out);
int pp_apns_job_encode(const pp_apns_job_t *job, msgpack_sbuffer *out);
int pp_mqtt_job_encode(const pp_mqtt_job_t *job, msgpack_sbuffer *out);

/*  Decoders: fill *job from buf. Return 0, or -1 with a short reason in *why (a static
    string such as "bad_kind", "bad_arity", "bad_field:ids"). On success the caller must
    call the matching _clear() to free the arrays; on failure nothing needs freeing. */
int pp_resolve_job_decode(const void *buf, size_t len, pp_resolve_job_t *job, const char **why);
int pp_apns_job_decode(const void *buf, size_t len, pp_apns_job_t *job, const char **why);
int pp_mqtt_job_decode(const void *buf, size_t len, pp_mqtt_job_t *job, const char **why);

void pp_resolve_job_clear(pp_resolve_job_t *job);
void pp_apns_job_clear(pp_apns_job_t *job);
void pp_mqtt_job_clear(pp_mqtt_job_t *job);

#endif

/*  ats_state: what the APNs test server shares between its event loop and its control
    API: the accepted notifications, the fault-injection rules, the counters.

    Everything sits behind one mutex; the event loop takes it once per request
    (ats_state_decide). The control thread changes rules and queues actions for open
    connections (new SETTINGS, drop, GOAWAY), then wakes the loop through an eventfd.
*/
#ifndef ATS_STATE_H
#define ATS_STATE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct ats_state_t ats_state_t;

/*  One accepted notification. Strings are NUL-terminated, NULL when the header was absent. */
typedef struct {
    const char *token, *topic, *push_type, *collapse_id, *apns_id, *payload, *cert_cn;
    const char *auth; /* static string */
    const char *env;  /* the server's, set when stored */
    int priority;
    bool has_expiration;
    int64_t expiration;
    int64_t jwt_iat; /* -1 without token auth */
    uint64_t received_us;
    uint64_t connection;
} ats_record_t;

/*  The request as the loop saw it, and what the state decides. */
typedef struct {
    /* in */
    int status;         /* the static checks' verdict: 200 or an error */
    const char *reason; /* NULL on 200 */
    bool token_auth;    /* request authenticated (or tried to) with a JWT */
    const char *token;  /* device token, NUL-terminated, NULL if the path was bad */
    bool jwt_new;       /* a newly verified JWT */
    int64_t jwt_iat;
    ats_record_t *record; /* built by the caller when status is 200; taken if accepted */
    /* out */
    int out_status;
    char out_reason[64];
    int64_t out_timestamp; /* -1: none; else the 410 body's "timestamp" */
    bool goaway;           /* send GOAWAY after this request */
    uint32_t goaway_code;
    char goaway_reason[64];
} ats_decision_t;

/*  Actions the control API asks of the loop, taken all at once. */
typedef struct {
    int64_t max_concurrent_streams; /* -1: none */
    bool zero_streams;              /* every open connection goes to 0 streams for good */
    bool drop_connections;
    bool goaway_now;
    uint32_t goaway_code;
    char goaway_reason[64];
} ats_actions_t;

/*  env is recorded with each notification; max_records bounds memory (later accepted
    notifications are counted but not kept). */
ats_state_t *ats_state_new(const char *env, size_t max_records);
void ats_state_destroy(ats_state_t **p);

/*  The eventfd the loop polls; readable when actions are pending. */
int ats_state_wake_fd(ats_state_t *s);

/*  Packs a record into one allocation (free with free()). NULL strings stay NULL. */
ats_record_t *ats_record_new(const char *token, size_t token_len, const char *topic,
                             size_t topic_len, const char *push_type, const char *collapse_id,
                             const char *apns_id, const char *payload, size_t payload_len,
                             const char *cert_cn);

/*  Apple's TooManyProviderTokenUpdates: a newly verified JWT whose iat differs from the
    team's current one, less than seconds after the last change, is refused with 429.
    0 (the default) turns the check off. */
void ats_state_set_min_token_interval(ats_state_t *s, int64_t seconds);

/*  Applies the rules and counters to one finished request (see ats_decision_t). */
void ats_state_decide(ats_state_t *s, ats_decision_t *d);

/*  The response delay in ms now in force, or -1 while "never_answer" is on (requests that
    complete then are held unanswered for the life of their stream). */
int ats_state_delay_ms(ats_state_t *s);

/*  True while "zero_streams" is on: a new connection starts with
    SETTINGS_MAX_CONCURRENT_STREAMS 0 and keeps it for its whole life. */
bool ats_state_zero_streams(ats_state_t *s);

/*  Connection bookkeeping and GOAWAY counting from the loop. */
void ats_state_conn_opened(ats_state_t *s);
void ats_state_conn_closed(ats_state_t *s);
void ats_state_goaway_sent(ats_state_t *s);
/*  A request held by never_answer; a stream the client reset (RST_STREAM) before it was
    answered, with the error code. For /stats. */
void ats_state_held(ats_state_t *s);
void ats_state_client_reset(ats_state_t *s, uint32_t error_code);

/*  Takes the pending actions (and clears them). */
void ats_state_take_actions(ats_state_t *s, ats_actions_t *a);

/*  Control API. POST /rules: applies a rule object; returns 0, or -1 with err set and
    nothing applied. */
int ats_state_apply_rules(ats_state_t *s, json_t *rules, char *err, size_t errlen);
void ats_state_reset(ats_state_t *s);
/*  JSON texts for GET /accepted (from index since, at most limit), /accepted/count and
    /stats. The caller frees them. */
char *ats_state_accepted_json(ats_state_t *s, size_t since, size_t limit);
char *ats_state_count_json(ats_state_t *s);
char *ats_state_stats_json(ats_state_t *s);

#endif

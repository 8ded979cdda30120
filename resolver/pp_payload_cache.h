/*  pp_payload_cache: the APNs payload of the last message, kept for the next ones.

    A payload depends only on the message's data, its apns_push_type option and its
    apns_priority option (pp_apns_payload_build): a message equal in those three to the one
    the payload was built for reuses it, byte for byte. Single-user messages of one
    campaign carry the same data, and building the payload (a jansson parse and dump) was
    the largest cost of a single-user message. One entry: messages are resolved one after
    the other, and a campaign's come together.

    What a payload was built from is remembered only when it is not unusually large (data
    up to twice the voip limit, a push type option that fits the payload's): the copy would
    cost more than it saves, and its buffer would stay allocated. A message that makes no
    payload is not remembered either (the next one like it is built, and refused, again).
*/
#ifndef PP_PAYLOAD_CACHE_H
#define PP_PAYLOAD_CACHE_H

#include "pp_apns_payload.h"
#include "pp_job.h"

#include <stdint.h>

typedef struct pp_payload_cache_t pp_payload_cache_t;

/*  An empty cache. NULL when out of memory. */
pp_payload_cache_t *pp_payload_cache_new(void);
/*  Frees the payload and what it was built from. Nulls *p. */
void pp_payload_cache_destroy(pp_payload_cache_t **p);

/*  The APNs payload of job: the kept one when job's data and options equal what it was
    built from, else a new one built from them. Valid until the next call or destroy.
    NULL with *why (pp_apns_payload_build's reasons: "too_large", "bad_json", ...) when
    job's data makes no payload. */
const pp_apns_payload_t *pp_payload_cache_get(pp_payload_cache_t *c, const pp_resolve_job_t *job,
                                              const char **why);

/*  How many payloads were built (every get that did not reuse one): for tests and
    benchmarks. */
uint64_t pp_payload_cache_builds(const pp_payload_cache_t *c);

#endif

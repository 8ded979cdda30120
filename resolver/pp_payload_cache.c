#include "pp_payload_cache.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct pp_payload_cache_t {
    pp_apns_payload_t payload;
    bool valid; /* payload was built from the fields below */
    char *data;
    size_t data_len, data_cap;
    char push_type[32];
    size_t push_type_len;
    int priority;
    uint64_t builds;
};

pp_payload_cache_t *pp_payload_cache_new(void)
{
    return calloc(1, sizeof(pp_payload_cache_t));
}

void pp_payload_cache_destroy(pp_payload_cache_t **p)
{
    if (!p || !*p) return;
    pp_apns_payload_clear(&(*p)->payload);
    free((*p)->data);
    free(*p);
    *p = NULL;
}

uint64_t pp_payload_cache_builds(const pp_payload_cache_t *c)
{
    return c->builds;
}

static bool s_same(const pp_payload_cache_t *c, const pp_resolve_job_t *job)
{
    pp_str_t pt = job->opts.apns_push_type;
    return c->valid && c->data_len == job->data_json.len && c->push_type_len == pt.len &&
           c->priority == job->opts.apns_priority &&
           (pt.len == 0 || memcmp(c->push_type, pt.ptr, pt.len) == 0) &&
           (job->data_json.len == 0 ||
            memcmp(c->data, job->data_json.ptr, job->data_json.len) == 0);
}

/*  Remembers what the payload was built from (not when unusually large: see the header). */
static void s_remember(pp_payload_cache_t *c, const pp_resolve_job_t *job)
{
    pp_str_t pt = job->opts.apns_push_type;
    size_t len = job->data_json.len;
    if (pt.len > sizeof c->push_type || len > 2 * PP_APNS_MAX_PAYLOAD_VOIP) return;
    if (len > c->data_cap) {
        char *buf = realloc(c->data, len);
        if (!buf) return;
        c->data = buf;
        c->data_cap = len;
    }
    if (len) memcpy(c->data, job->data_json.ptr, len);
    c->data_len = len;
    if (pt.len) memcpy(c->push_type, pt.ptr, pt.len);
    c->push_type_len = pt.len;
    c->priority = job->opts.apns_priority;
    c->valid = true;
}

const pp_apns_payload_t *pp_payload_cache_get(pp_payload_cache_t *c, const pp_resolve_job_t *job,
                                              const char **why)
{
    if (s_same(c, job)) return &c->payload;
    c->valid = false;
    pp_apns_payload_clear(&c->payload);
    c->builds++;
    if (pp_apns_payload_build(job->data_json, job->opts.apns_push_type, job->opts.apns_priority,
                              &c->payload, why) != 0)
        return NULL;
    s_remember(c, job);
    return &c->payload;
}

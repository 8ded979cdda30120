#include "pp_pubq.h"

#include <stdlib.h>
#include <string.h>

struct pp_pubjob_t {
    uint32_t refs;
    zmq_msg_t msg; /* the received frame: job's strings point into it */
    pp_mqtt_job_t job;
    pp_pubjob_done_fn *done;
    void *done_ctx;
    uint64_t seq;
};

pp_pubjob_t *pp_pubjob_new(zmq_msg_t *msg, const char **why)
{
    pp_pubjob_t *job = calloc(1, sizeof *job);
    if (!job) abort();
    zmq_msg_init(&job->msg);
    zmq_msg_move(&job->msg, msg);
    if (pp_mqtt_job_decode(zmq_msg_data(&job->msg), zmq_msg_size(&job->msg), &job->job, why) != 0) {
        zmq_msg_close(&job->msg);
        free(job);
        return NULL;
    }
    if (job->job.n_topics == 0) {
        *why = "no_topics";
        pp_mqtt_job_clear(&job->job);
        zmq_msg_close(&job->msg);
        free(job);
        return NULL;
    }
    job->refs = 1;
    return job;
}

const pp_mqtt_job_t *pp_pubjob_job(const pp_pubjob_t *job)
{
    return &job->job;
}

void pp_pubjob_on_done(pp_pubjob_t *job, pp_pubjob_done_fn *fn, void *ctx, uint64_t seq)
{
    job->done = fn;
    job->done_ctx = ctx;
    job->seq = seq;
}

void pp_pubjob_ref(pp_pubjob_t *job)
{
    job->refs++;
}

void pp_pubjob_unref(pp_pubjob_t **p)
{
    if (!p || !*p) return;
    pp_pubjob_t *job = *p;
    *p = NULL;
    if (--job->refs > 0) return;
    if (job->done) job->done(job->done_ctx, job->seq);
    pp_mqtt_job_clear(&job->job);
    zmq_msg_close(&job->msg);
    free(job);
}

void pp_pub_release(pp_pub_t *pub)
{
    pp_pubjob_unref(&pub->job);
    pub->topic = 0;
    pub->attempts = 0;
    pub->first_ms = 0;
    pub->suspect = false;
}

pp_str_t pp_pub_topic(const pp_pub_t *pub)
{
    return pub->job->job.topics[pub->topic];
}

pp_str_t pp_pub_payload(const pp_pub_t *pub)
{
    return pub->job->job.payload;
}

int pp_pub_qos(const pp_pub_t *pub, int def)
{
    int qos = pub->job->job.qos;
    return qos < 0 ? def : qos;
}

/* ---- the queue: a ring of topic ranges -------------------------------------------- */

typedef struct {
    pp_pubjob_t *job; /* one reference per range */
    uint32_t next, end;
    uint32_t attempts; /* a single re-queued publish keeps its history; jobs: 0 */
    uint64_t first_ms;
    bool suspect;
} s_range_t;

struct pp_pubq_t {
    s_range_t *ring;
    size_t cap, head, count; /* ranges */
    size_t len;              /* publishes */
    size_t max;
};

pp_pubq_t *pp_pubq_new(size_t max)
{
    pp_pubq_t *q = calloc(1, sizeof *q);
    if (!q) abort();
    q->cap = 64;
    q->ring = calloc(q->cap, sizeof *q->ring);
    if (!q->ring) abort();
    q->max = max;
    return q;
}

void pp_pubq_destroy(pp_pubq_t **p)
{
    if (!p || !*p) return;
    pp_pubq_t *q = *p;
    for (size_t i = 0; i < q->count; i++)
        pp_pubjob_unref(&q->ring[(q->head + i) % q->cap].job);
    free(q->ring);
    free(q);
    *p = NULL;
}

static void s_grow(pp_pubq_t *q)
{
    if (q->count < q->cap) return;
    size_t cap = q->cap * 2;
    s_range_t *ring = calloc(cap, sizeof *ring);
    if (!ring) abort();
    for (size_t i = 0; i < q->count; i++)
        ring[i] = q->ring[(q->head + i) % q->cap];
    free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
}

void pp_pubq_push_job(pp_pubq_t *q, pp_pubjob_t *job)
{
    size_t n = job->job.n_topics;
    if (n == 0) {
        pp_pubjob_unref(&job);
        return;
    }
    s_grow(q);
    q->ring[(q->head + q->count) % q->cap] = (s_range_t){job, 0, (uint32_t)n, 0, 0, false};
    q->count++;
    q->len += n;
}

void pp_pubq_push_front(pp_pubq_t *q, pp_pub_t *pub)
{
    s_grow(q);
    q->head = (q->head + q->cap - 1) % q->cap;
    q->ring[q->head] = (s_range_t){pub->job,      pub->topic + 0, pub->topic + 1,
                                   pub->attempts, pub->first_ms,  pub->suspect};
    q->count++;
    q->len++;
    memset(pub, 0, sizeof *pub);
}

void pp_pubq_push_back(pp_pubq_t *q, pp_pub_t *pub)
{
    s_grow(q);
    q->ring[(q->head + q->count) % q->cap] = (s_range_t){
        pub->job, pub->topic + 0, pub->topic + 1, pub->attempts, pub->first_ms, pub->suspect};
    q->count++;
    q->len++;
    memset(pub, 0, sizeof *pub);
}

bool pp_pubq_pop(pp_pubq_t *q, pp_pub_t *out)
{
    if (q->count == 0) return false;
    s_range_t *r = &q->ring[q->head];
    out->topic = r->next++;
    out->attempts = r->attempts;
    out->first_ms = r->first_ms;
    out->suspect = r->suspect;
    q->len--;
    if (r->next == r->end) {
        /* The range's reference passes to the publish. */
        out->job = r->job;
        r->job = NULL;
        q->head = (q->head + 1) % q->cap;
        q->count--;
    } else {
        out->job = r->job;
        pp_pubjob_ref(out->job);
    }
    return true;
}

size_t pp_pubq_len(const pp_pubq_t *q)
{
    return q->len;
}

bool pp_pubq_full(const pp_pubq_t *q)
{
    return q->len >= q->max;
}

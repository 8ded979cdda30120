/*  pp_linkset: one pp_link per broker, used as one (see pp_linkset.h). */
#include "pp_linkset.h"

#include "pp_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Handles of a set of two or more links: (generation << 32) | slot index into a table of
    the jobs held. A hub's seqs use all 64 bits (broker/pp_dispatch.c starts them at the
    wall clock in µs << 12), so the link cannot be tagged into the seq itself, and two hubs'
    seqs may collide. The generation changes each time a slot is freed, so a stale handle
    (acked twice) never acks the job that took its slot since. */
typedef struct {
    uint64_t seq;
    uint32_t gen;
    uint32_t next_free; /* while free: the next free slot, S_NONE at the end */
    uint8_t link;
    bool used;
} s_slot_t;

#define S_NONE UINT32_MAX
/*  Slots per link at most: a link holds at most its window (pp_link grants no more), more
    only from a hub sending beyond credit; this bounds the table's memory in that case. */
#define S_SLOTS_PER_WINDOW 4
#define S_SLOTS_SLACK 1024u

enum { BAD_UNKNOWN, BAD_TABLE_FULL, BAD_COUNT };

struct pp_linkset_t {
    pp_link_t *links[PP_LINKSET_MAX];
    char *endpoints[PP_LINKSET_MAX];
    size_t n;
    size_t next; /* the link pp_linkset_recv tries first */
    s_slot_t *slots;
    uint32_t cap, max_slots, free_head;
    pp_ratelimit_t rl;
    pp_metrics_t *own_metrics;
    pp_metric_t *m_hub_jobs[PP_LINKSET_MAX];
    pp_metric_t *m_bad[BAD_COUNT];
};

static const char *s_bad_names[BAD_COUNT] = {"unknown", "table_full"};

static void s_bad(pp_linkset_t *ls, int kind, uint64_t job)
{
    pp_metric_inc(ls->m_bad[kind]);
    uint32_t suppressed;
    if (pp_ratelimit_allow(&ls->rl, &suppressed))
        pp_warn("linkset_bad_handle", "kind=%s handle=%llu held=%u suppressed=%u",
                s_bad_names[kind], (unsigned long long)job, pp_linkset_held(ls), suppressed);
}

pp_linkset_t *pp_linkset_new(const char *const *endpoints, size_t n, pp_curve_t *curve,
                             pp_metrics_t *metrics, uint32_t window, uint32_t heartbeat_ms,
                             int sndhwm)
{
    if (!endpoints || n == 0 || n > PP_LINKSET_MAX || window == 0 || window > PP_LINK_MAX_WINDOW) {
        pp_error("linkset_invalid", "links=%zu max=%d window=%u", n, PP_LINKSET_MAX, window);
        return NULL;
    }
    pp_linkset_t *ls = calloc(1, sizeof *ls);
    if (!ls) return NULL;
    ls->rl = (pp_ratelimit_t)PP_RATELIMIT_INIT(10000, 10);
    ls->free_head = S_NONE;
    ls->max_slots = (uint32_t)n * (S_SLOTS_PER_WINDOW * window + S_SLOTS_SLACK);
    if (!metrics) metrics = ls->own_metrics = pp_metrics_new("link");
    for (size_t i = 0; i < n; i++) {
        if (!endpoints[i] || !(ls->endpoints[i] = strdup(endpoints[i]))) goto fail;
        ls->links[i] = pp_link_new(endpoints[i], curve, metrics, window, heartbeat_ms, sndhwm);
        if (!ls->links[i]) goto fail;
        ls->n = i + 1;
    }
    if (n > 1) {
        for (size_t i = 0; i < n; i++) {
            char label[32];
            snprintf(label, sizeof label, "hub=\"%zu\"", i);
            ls->m_hub_jobs[i] = pp_metrics_counter(metrics, "link_worker_hub_jobs_total",
                                                   "Jobs received, by broker (index in "
                                                   "broker_address)",
                                                   label);
        }
        for (int k = 0; k < BAD_COUNT; k++) {
            char label[32];
            snprintf(label, sizeof label, "kind=\"%s\"", s_bad_names[k]);
            ls->m_bad[k] = pp_metrics_counter(
                metrics, "link_worker_bad_handles_total",
                "Job handles the link set could not take: unknown (acked twice) or table full",
                label);
        }
        pp_info("linkset_ready", "links=%zu window_per_link=%u", n, window);
    }
    return ls;
fail:
    pp_error("linkset_failed", "endpoint=%s", endpoints[ls->n] ? endpoints[ls->n] : "(null)");
    pp_linkset_destroy(&ls);
    return NULL;
}

void pp_linkset_destroy(pp_linkset_t **p)
{
    if (!p || !*p) return;
    pp_linkset_t *ls = *p;
    for (size_t i = 0; i < PP_LINKSET_MAX; i++) {
        pp_link_destroy(&ls->links[i]);
        free(ls->endpoints[i]);
    }
    free(ls->slots);
    pp_metrics_destroy(&ls->own_metrics);
    free(ls);
    *p = NULL;
}

size_t pp_linkset_size(const pp_linkset_t *ls)
{
    return ls->n;
}

pp_link_t *pp_linkset_link(pp_linkset_t *ls, size_t i)
{
    return i < ls->n ? ls->links[i] : NULL;
}

const char *pp_linkset_endpoint(const pp_linkset_t *ls, size_t i)
{
    return i < ls->n ? ls->endpoints[i] : NULL;
}

size_t pp_linkset_poll_items(pp_linkset_t *ls, zmq_pollitem_t *items, short events)
{
    for (size_t i = 0; i < ls->n; i++)
        items[i] = (zmq_pollitem_t){pp_link_socket(ls->links[i]), 0, events, 0};
    return ls->n;
}

/*  Makes sure one slot is free (growing the table by doubling, up to max_slots). Returns
    false when it cannot. */
static bool s_reserve(pp_linkset_t *ls)
{
    if (ls->free_head != S_NONE) return true;
    if (ls->cap >= ls->max_slots) return false;
    uint32_t cap = ls->cap ? ls->cap * 2 : 256;
    if (cap > ls->max_slots) cap = ls->max_slots;
    s_slot_t *slots = realloc(ls->slots, (size_t)cap * sizeof *slots);
    if (!slots) return false;
    // New slots go on the (empty) free list in index order: lowest first, a compact table.
    for (uint32_t i = ls->cap; i < cap; i++)
        slots[i] = (s_slot_t){.gen = 1, .next_free = i + 1 < cap ? i + 1 : S_NONE};
    ls->free_head = ls->cap;
    ls->slots = slots;
    ls->cap = cap;
    return true;
}

/*  The slot of a live handle, or NULL. */
static s_slot_t *s_find(const pp_linkset_t *ls, uint64_t job)
{
    uint32_t idx = (uint32_t)job, gen = (uint32_t)(job >> 32);
    if (idx >= ls->cap) return NULL;
    s_slot_t *s = &ls->slots[idx];
    return s->used && s->gen == gen ? s : NULL;
}

int pp_linkset_recv(pp_linkset_t *ls, uint64_t *job, zmq_msg_t *body)
{
    if (ls->n == 1) return pp_link_recv(ls->links[0], job, body);
    if (!s_reserve(ls)) {
        s_bad(ls, BAD_TABLE_FULL, 0);
        return 0;
    }
    int err = 0;
    for (size_t k = 0; k < ls->n; k++) {
        size_t i = (ls->next + k) % ls->n;
        uint64_t seq;
        int rc = pp_link_recv(ls->links[i], &seq, body);
        if (rc < 0) err = errno;
        if (rc != 1) continue;
        uint32_t idx = ls->free_head;
        s_slot_t *s = &ls->slots[idx];
        ls->free_head = s->next_free;
        s->seq = seq;
        s->link = (uint8_t)i;
        s->used = true;
        *job = (uint64_t)s->gen << 32 | idx;
        pp_metric_inc(ls->m_hub_jobs[i]);
        ls->next = (i + 1) % ls->n; // the next job from the next link that has one
        return 1;
    }
    if (err) {
        errno = err;
        return -1;
    }
    return 0;
}

int pp_linkset_send(pp_linkset_t *ls, uint64_t job, zmq_msg_t *body)
{
    if (ls->n == 1) return pp_link_send(ls->links[0], body);
    s_slot_t *s = s_find(ls, job);
    if (!s) {
        s_bad(ls, BAD_UNKNOWN, job);
        errno = EINVAL;
        return -1;
    }
    return pp_link_send(ls->links[s->link], body);
}

void *pp_linkset_job_socket(pp_linkset_t *ls, uint64_t job)
{
    if (ls->n == 1) return pp_link_socket(ls->links[0]);
    s_slot_t *s = s_find(ls, job);
    return s ? pp_link_socket(ls->links[s->link]) : NULL;
}

int pp_linkset_job_link(const pp_linkset_t *ls, uint64_t job)
{
    if (ls->n == 1) return 0;
    s_slot_t *s = s_find(ls, job);
    return s ? s->link : -1;
}

void pp_linkset_ack(pp_linkset_t *ls, uint64_t job)
{
    if (ls->n == 1) {
        pp_link_ack(ls->links[0], job);
        return;
    }
    s_slot_t *s = s_find(ls, job);
    if (!s) {
        s_bad(ls, BAD_UNKNOWN, job);
        return;
    }
    pp_link_ack(ls->links[s->link], s->seq);
    uint32_t idx = (uint32_t)job;
    s->used = false;
    s->gen = s->gen + 1 ? s->gen + 1 : 1; // never 0 after a wrap: handles stay nonzero
    s->next_free = ls->free_head;
    ls->free_head = idx;
}

int pp_linkset_tick(pp_linkset_t *ls)
{
    int least = 0;
    for (size_t i = 0; i < ls->n; i++) {
        int t = pp_link_tick(ls->links[i]);
        if (i == 0 || t < least) least = t;
    }
    return least < 1 ? 1 : least;
}

void pp_linkset_pause(pp_linkset_t *ls, bool paused)
{
    for (size_t i = 0; i < ls->n; i++)
        pp_link_pause(ls->links[i], paused);
}

uint32_t pp_linkset_held(const pp_linkset_t *ls)
{
    uint32_t n = 0;
    for (size_t i = 0; i < ls->n; i++)
        n += pp_link_held(ls->links[i]);
    return n;
}

uint32_t pp_linkset_credit(const pp_linkset_t *ls)
{
    uint32_t n = 0;
    for (size_t i = 0; i < ls->n; i++)
        n += pp_link_credit(ls->links[i]);
    return n;
}

bool pp_linkset_config_error(const pp_linkset_t *ls)
{
    for (size_t i = 0; i < ls->n; i++)
        if (pp_link_config_error(ls->links[i])) return true;
    return false;
}

uint32_t pp_linkset_drain(pp_linkset_t *ls, uint64_t deadline, pp_linkset_busy_fn *busy,
                          pp_linkset_turn_fn *turn, void *ctx)
{
    pp_linkset_pause(ls, true);
    for (;;) {
        uint64_t now = pp_mono_ms();
        if ((pp_linkset_held(ls) == 0 && !busy(ctx)) || now >= deadline) break;
        if (turn(ctx, now, deadline) != 0) break;
    }
    return pp_linkset_held(ls);
}

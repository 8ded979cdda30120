#include "pp_retryq.h"

#include <stdlib.h>

typedef struct {
    uint64_t due;
    uint64_t seq;
    void *item;
} s_entry_t;

struct pp_retryq_t {
    s_entry_t *heap;
    size_t n, cap;
    uint64_t seq;
};

pp_retryq_t *pp_retryq_new(void)
{
    return calloc(1, sizeof(pp_retryq_t));
}

void pp_retryq_destroy(pp_retryq_t **p)
{
    if (!p || !*p) return;
    free((*p)->heap);
    free(*p);
    *p = NULL;
}

static int s_less(const s_entry_t *a, const s_entry_t *b)
{
    return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

int pp_retryq_push(pp_retryq_t *q, uint64_t due_ms, void *item)
{
    if (q->n == q->cap) {
        size_t cap = q->cap ? q->cap * 2 : 64;
        s_entry_t *h = realloc(q->heap, cap * sizeof *h);
        if (!h) return -1;
        q->heap = h;
        q->cap = cap;
    }
    size_t i = q->n++;
    s_entry_t e = {due_ms, q->seq++, item};
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_less(&e, &q->heap[parent])) break;
        q->heap[i] = q->heap[parent];
        i = parent;
    }
    q->heap[i] = e;
    return 0;
}

void *pp_retryq_pop(pp_retryq_t *q)
{
    if (q->n == 0) return NULL;
    void *item = q->heap[0].item;
    s_entry_t last = q->heap[--q->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const s_entry_t *best = &last;
        if (l < q->n && s_less(&q->heap[l], best)) {
            m = l;
            best = &q->heap[l];
        }
        if (r < q->n && s_less(&q->heap[r], best)) m = r;
        if (m == i) break;
        q->heap[i] = q->heap[m];
        i = m;
    }
    if (q->n > 0) q->heap[i] = last;
    return item;
}

void *pp_retryq_pop_due(pp_retryq_t *q, uint64_t now_ms)
{
    if (q->n == 0 || q->heap[0].due > now_ms) return NULL;
    return pp_retryq_pop(q);
}

uint64_t pp_retryq_next_due(const pp_retryq_t *q)
{
    return q->n ? q->heap[0].due : UINT64_MAX;
}

size_t pp_retryq_size(const pp_retryq_t *q)
{
    return q->n;
}

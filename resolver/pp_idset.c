#include "pp_idset.h"

#include <stdlib.h>
#include <string.h>

struct pp_idset_t {
    uint64_t *slots; /* 0 = empty; a hash of 0 is stored as 1 */
    size_t cap;      /* power of two, or 0 */
    size_t size;
    size_t max_ids;
};

/*  FNV-1a, 64 bits, hand-written: none of the project's libraries exports a plain byte
    hash; a keyed hash is not needed because the ids are ours (Redis set members). */
static uint64_t s_hash(const void *id, size_t len)
{
    const unsigned char *p = id;
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    /* Final mix so that the low bits used for the slot index depend on every byte. */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h ? h : 1;
}

pp_idset_t *pp_idset_new(size_t max_ids)
{
    pp_idset_t *s = calloc(1, sizeof *s);
    if (s) s->max_ids = max_ids;
    return s;
}

void pp_idset_destroy(pp_idset_t **p)
{
    if (!p || !*p) return;
    free((*p)->slots);
    free(*p);
    *p = NULL;
}

void pp_idset_reset(pp_idset_t *s)
{
    free(s->slots);
    s->slots = NULL;
    s->cap = 0;
    s->size = 0;
}

static size_t s_find(const uint64_t *slots, size_t cap, uint64_t h)
{
    size_t i = (size_t)h & (cap - 1);
    while (slots[i] && slots[i] != h)
        i = (i + 1) & (cap - 1);
    return i;
}

static int s_grow(pp_idset_t *s)
{
    size_t cap = s->cap ? s->cap * 2 : 1024;
    uint64_t *slots = calloc(cap, sizeof *slots);
    if (!slots) return -1;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i]) slots[s_find(slots, cap, s->slots[i])] = s->slots[i];
    free(s->slots);
    s->slots = slots;
    s->cap = cap;
    return 0;
}

bool pp_idset_has(const pp_idset_t *s, const void *id, size_t len)
{
    if (!s->cap) return false;
    uint64_t h = s_hash(id, len);
    return s->slots[s_find(s->slots, s->cap, h)] == h;
}

int pp_idset_add(pp_idset_t *s, const void *id, size_t len)
{
    uint64_t h = s_hash(id, len);
    if (s->cap) {
        size_t i = s_find(s->slots, s->cap, h);
        if (s->slots[i] == h) return 0;
    }
    if (s->size >= s->max_ids) return -1;
    if ((s->size + 1) * 2 > s->cap && s_grow(s) != 0) return -1;
    s->slots[s_find(s->slots, s->cap, h)] = h;
    s->size++;
    return 1;
}

size_t pp_idset_size(const pp_idset_t *s)
{
    return s->size;
}

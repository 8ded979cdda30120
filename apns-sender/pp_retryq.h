/*  pp_retryq: items waiting for a moment (retries after 429/5xx, backoff), ordered by the
    time they are due. A binary min-heap: push and pop in O(log n), the next due time in
    O(1), so the loop can sleep exactly until then. Items with the same due time come out
    in the order they went in (a sequence number breaks ties).
*/
#ifndef PP_RETRYQ_H
#define PP_RETRYQ_H

#include <stddef.h>
#include <stdint.h>

typedef struct pp_retryq_t pp_retryq_t;

pp_retryq_t *pp_retryq_new(void);
/*  Frees the queue, not the items (pop them first if they own memory). */
void pp_retryq_destroy(pp_retryq_t **p);

/*  Adds item, due at due_ms (any monotonic clock in ms). Returns 0, or -1 when out of
    memory (the item is then not queued). */
int pp_retryq_push(pp_retryq_t *q, uint64_t due_ms, void *item);

/*  Removes and returns the earliest item if it is due at or before now_ms, else NULL. */
void *pp_retryq_pop_due(pp_retryq_t *q, uint64_t now_ms);

/*  Removes and returns the earliest item whatever its due time, or NULL when empty. */
void *pp_retryq_pop(pp_retryq_t *q);

/*  The earliest due time, or UINT64_MAX when empty. */
uint64_t pp_retryq_next_due(const pp_retryq_t *q);

size_t pp_retryq_size(const pp_retryq_t *q);

#endif

/*  pp_idset: a set of ids remembered as 64-bit hashes, to skip ids already handled while a
    large group is streamed with SSCAN (SSCAN may return a member twice, and a scan restarted
    after Redis came back returns members already handled).

    8 bytes per slot, at most half full: about 16 bytes per id. Two different ids with the
    same 64-bit hash would make the second one skipped; with a million ids the chance is
    about 3e-8. The set refuses to grow past max_ids (returns -1) so memory stays bounded.
*/
#ifndef PP_IDSET_H
#define PP_IDSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pp_idset_t pp_idset_t;

/*  Creates an empty set that will hold at most max_ids ids. */
pp_idset_t *pp_idset_new(size_t max_ids);
void pp_idset_destroy(pp_idset_t **p);

/*  Empties the set and gives back its memory (between messages). */
void pp_idset_reset(pp_idset_t *s);

/*  True when the id is in the set. */
bool pp_idset_has(const pp_idset_t *s, const void *id, size_t len);

/*  Adds the id. Returns 1 when added, 0 when it was there, -1 when full or out of memory. */
int pp_idset_add(pp_idset_t *s, const void *id, size_t len);

size_t pp_idset_size(const pp_idset_t *s);

#endif

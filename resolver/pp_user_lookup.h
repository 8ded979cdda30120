/*  pp_user_lookup: the resolver's user lookups, as pipelined HMGET rounds on pp_userdb,
    repeated while Redis is away.

    Three ways, one connection (never two at once: rounds in flight must be finished before
    each or batch is used):
    - each: any number of users, in rounds of at most `pipeline`, with the next round
      already sent while one is handled (two in flight), each user handed to a callback in
      order. Groups and long lists.
    - batch: up to `pipeline` users in one round, waited for. Small messages looked up
      together.
    - rounds: up to two rounds started and finished by the caller, so that the caller does
      other work (receives, resolves, acks) while Redis answers. Small messages received
      together, batch after batch.

    When Redis fails, pp_userdb_recover waits for it (ticking through the idle callback set
    on the userdb and give_up) and what was in flight is sent again in order; users whose
    replies were handled are not looked up again. A lookup fails (-1) only when give_up
    said stop (shutdown, past the drain time).
*/
#ifndef PP_USER_LOOKUP_H
#define PP_USER_LOOKUP_H

#include "pp_user_rule.h"
#include "pp_userdb.h"

#include <stddef.h>

typedef struct pp_user_lookup_t pp_user_lookup_t;

/*  Called between rounds, to keep the caller's link alive. */
typedef void(pp_user_lookup_tick_fn)(void *ctx);

/*  Gets one looked-up user (fields valid during the call). */
typedef void(pp_user_lookup_fn)(void *ctx, pp_str_t uid, const pp_user_fields_t *f);

/*  Lookups on db (borrowed) in rounds of at most pipeline users; give_up is handed to
    pp_userdb_recover, tick runs between the rounds of each; both get ctx. NULL when out of
    memory. */
pp_user_lookup_t *pp_user_lookup_new(pp_userdb_t *db, size_t pipeline,
                                     pp_userdb_give_up_fn *give_up, pp_user_lookup_tick_fn *tick,
                                     void *ctx);
void pp_user_lookup_destroy(pp_user_lookup_t **p);

/*  Looks up ids[0..n) (checked with pp_user_id_valid) and calls fn(arg, ...) for each in
    order. Returns 0, or -1 when given up (the users not handed to fn yet are not). */
int pp_user_lookup_each(pp_user_lookup_t *lk, const pp_str_t *ids, size_t n, pp_user_lookup_fn *fn,
                        void *arg);

/*  Looks up ids[0..n) (n <= pipeline) in one round; *fields receives their fields, in
    order, valid until the next lookup. Returns 0, or -1 when given up. */
int pp_user_lookup_batch(pp_user_lookup_t *lk, const pp_str_t *ids, size_t n,
                         const pp_user_fields_t **fields);

/*  Room for the ids of the next round (pipeline entries), to fill and then start; NULL
    while two rounds are in flight. */
pp_str_t *pp_user_lookup_round_ids(pp_user_lookup_t *lk);

/*  Starts the round of the first n ids written to pp_user_lookup_round_ids (their strings
    must stay valid until it is finished): sent to Redis now, read by _round_finish. tag is
    the caller's name for the round (e.g. where its messages are). A send that fails is
    repeated by _round_finish after Redis is back. */
void pp_user_lookup_round_start(pp_user_lookup_t *lk, unsigned tag, size_t n);

/*  Rounds started and not finished (0, 1 or 2). */
size_t pp_user_lookup_rounds(const pp_user_lookup_t *lk);

/*  The tag of the oldest round in flight (only while there is one). */
unsigned pp_user_lookup_round_tag(const pp_user_lookup_t *lk);

/*  The oldest round, read by pp_user_lookup_round_finish. */
typedef struct {
    unsigned tag;
    const pp_str_t *ids;            /* as started; valid until the next round starts */
    size_t n_ids;                   /* n given to start */
    const pp_user_fields_t *fields; /* ids[i]'s fields (unless -1), valid until the next lookup */
} pp_user_round_t;

/*  Reads the oldest round's replies into *out (only while a round is in flight), sending
    again first, in order, every round lost with a connection; the round is then finished.
    Returns 0, or -1 when given up (out->fields then meaningless; out->tag, ids and n_ids
    are still the round's). */
int pp_user_lookup_round_finish(pp_user_lookup_t *lk, pp_user_round_t *out);

#endif

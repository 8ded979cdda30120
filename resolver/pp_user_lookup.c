#include "pp_user_lookup.h"

#include <stdbool.h>
#include <stdlib.h>

typedef struct {
    unsigned tag;
    pp_str_t *ids; /* one of lk->round_ids */
    size_t n_ids;
    bool sent; /* sent to Redis, replies not read yet */
} s_round_t;

struct pp_user_lookup_t {
    pp_userdb_t *db;
    size_t pipeline;
    pp_userdb_give_up_fn *give_up;
    pp_user_lookup_tick_fn *tick;
    void *ctx;
    pp_user_fields_t *fields; /* pipeline entries: the replies of the round read last */
    pp_str_t *round_ids[2];   /* pipeline entries each: the ids of up to two rounds */
    s_round_t rounds[2];      /* in flight, oldest first */
    size_t n_rounds;
};

pp_user_lookup_t *pp_user_lookup_new(pp_userdb_t *db, size_t pipeline,
                                     pp_userdb_give_up_fn *give_up, pp_user_lookup_tick_fn *tick,
                                     void *ctx)
{
    pp_user_lookup_t *lk = calloc(1, sizeof *lk);
    if (!lk) return NULL;
    lk->db = db;
    lk->pipeline = pipeline ? pipeline : 1;
    lk->give_up = give_up;
    lk->tick = tick;
    lk->ctx = ctx;
    lk->fields = calloc(lk->pipeline, sizeof *lk->fields);
    lk->round_ids[0] = calloc(lk->pipeline, sizeof *lk->round_ids[0]);
    lk->round_ids[1] = calloc(lk->pipeline, sizeof *lk->round_ids[1]);
    if (!lk->fields || !lk->round_ids[0] || !lk->round_ids[1]) pp_user_lookup_destroy(&lk);
    return lk;
}

void pp_user_lookup_destroy(pp_user_lookup_t **p)
{
    if (!p || !*p) return;
    free((*p)->fields);
    free((*p)->round_ids[0]);
    free((*p)->round_ids[1]);
    free(*p);
    *p = NULL;
}

static int s_recover(pp_user_lookup_t *lk)
{
    return pp_userdb_recover(lk->db, lk->give_up, lk->ctx);
}

int pp_user_lookup_each(pp_user_lookup_t *lk, const pp_str_t *ids, size_t n, pp_user_lookup_fn *fn,
                        void *arg)
{
    size_t sent = 0, done = 0;
    while (done < n) {
        int rc = 0;
        while (rc == 0 && sent < n && pp_userdb_users_in_flight(lk->db) < 2) {
            size_t k = n - sent < lk->pipeline ? n - sent : lk->pipeline;
            rc = pp_userdb_users_send(lk->db, ids + sent, k);
            sent += rc == 0 ? k : 0;
        }
        size_t k = 0;
        if (rc == 0) rc = pp_userdb_users_recv(lk->db, ids + done, lk->fields, &k);
        if (rc != 0) {
            if (s_recover(lk) != 0) return -1;
            sent = done; /* the rounds in flight were lost with the connection */
            continue;
        }
        for (size_t i = 0; i < k; i++)
            fn(arg, ids[done + i], &lk->fields[i]);
        done += k;
        if (lk->tick) lk->tick(lk->ctx);
    }
    return 0;
}

int pp_user_lookup_batch(pp_user_lookup_t *lk, const pp_str_t *ids, size_t n,
                         const pp_user_fields_t **fields)
{
    *fields = lk->fields;
    while (n && pp_userdb_users(lk->db, ids, n, lk->fields) != 0)
        if (s_recover(lk) != 0) return -1;
    return 0;
}

pp_str_t *pp_user_lookup_round_ids(pp_user_lookup_t *lk)
{
    if (lk->n_rounds == 2) return NULL;
    if (lk->n_rounds == 0) return lk->round_ids[0];
    return lk->rounds[0].ids == lk->round_ids[0] ? lk->round_ids[1] : lk->round_ids[0];
}

void pp_user_lookup_round_start(pp_user_lookup_t *lk, unsigned tag, size_t n)
{
    pp_str_t *ids = pp_user_lookup_round_ids(lk);
    if (!ids) return; /* not allowed: two in flight */
    s_round_t *rd = &lk->rounds[lk->n_rounds++];
    rd->tag = tag;
    rd->ids = ids;
    rd->n_ids = n;
    /* A failed send drops the connection: _round_finish recovers and sends again. */
    rd->sent = n == 0 || pp_userdb_users_send(lk->db, ids, n) == 0;
}

size_t pp_user_lookup_rounds(const pp_user_lookup_t *lk)
{
    return lk->n_rounds;
}

unsigned pp_user_lookup_round_tag(const pp_user_lookup_t *lk)
{
    return lk->rounds[0].tag;
}

/*  Sends, in order, every round in flight that is not with Redis. Returns 0 or -1. */
static int s_send_again(pp_user_lookup_t *lk)
{
    for (size_t i = 0; i < lk->n_rounds; i++) {
        s_round_t *o = &lk->rounds[i];
        if (o->sent) continue;
        if (pp_userdb_users_send(lk->db, o->ids, o->n_ids) != 0) return -1;
        o->sent = true;
    }
    return 0;
}

int pp_user_lookup_round_finish(pp_user_lookup_t *lk, pp_user_round_t *out)
{
    s_round_t *rd = &lk->rounds[0];
    int rc = 0;
    size_t got = 0;
    while (rd->n_ids > 0) {
        if (s_send_again(lk) == 0 && pp_userdb_users_recv(lk->db, rd->ids, lk->fields, &got) == 0)
            break;
        if (s_recover(lk) != 0) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < lk->n_rounds; i++) /* in flight on the lost connection */
            lk->rounds[i].sent = lk->rounds[i].n_ids == 0;
    }
    *out = (pp_user_round_t){rd->tag, rd->ids, rd->n_ids, lk->fields};
    lk->rounds[0] = lk->rounds[1];
    lk->n_rounds--;
    return rc;
}

#include "pp_msgq.h"

#include <errno.h>
#include <stdlib.h>

/*  A ring of zmq_msg_t allocated once at full size: pushing and popping never allocate,
    which keeps the broker's hot path free of malloc. zlist/zlistx from czmq would allocate
    a node per message and hold pointers, not the messages themselves. */
struct pp_msgq_t {
    zmq_msg_t *ring;
    size_t cap;
    size_t head;
    size_t count;
    size_t bytes;
    size_t max_bytes;
};

pp_msgq_t *pp_msgq_new(size_t max_msgs, size_t max_bytes)
{
    if (max_msgs == 0 || max_bytes == 0) return NULL;
    pp_msgq_t *q = calloc(1, sizeof *q);
    if (!q) return NULL;
    q->ring = calloc(max_msgs, sizeof *q->ring);
    if (!q->ring) {
        free(q);
        return NULL;
    }
    q->cap = max_msgs;
    q->max_bytes = max_bytes;
    return q;
}

void pp_msgq_destroy(pp_msgq_t **p)
{
    if (!p || !*p) return;
    pp_msgq_t *q = *p;
    for (size_t i = 0; i < q->count; i++)
        zmq_msg_close(&q->ring[(q->head + i) % q->cap]);
    free(q->ring);
    free(q);
    *p = NULL;
}

bool pp_msgq_has_room(const pp_msgq_t *q)
{
    return q->count < q->cap && q->bytes < q->max_bytes;
}

size_t pp_msgq_size(const pp_msgq_t *q)
{
    return q->count;
}

size_t pp_msgq_bytes(const pp_msgq_t *q)
{
    return q->bytes;
}

int pp_msgq_push(pp_msgq_t *q, zmq_msg_t *msg)
{
    if (!pp_msgq_has_room(q)) return -1;
    zmq_msg_t *slot = &q->ring[(q->head + q->count) % q->cap];
    zmq_msg_init(slot);
    zmq_msg_move(slot, msg);
    q->bytes += zmq_msg_size(slot);
    q->count++;
    return 0;
}

static void s_drop_head(pp_msgq_t *q, size_t size)
{
    q->bytes -= size;
    q->head = (q->head + 1) % q->cap;
    q->count--;
}

int pp_msgq_pop(pp_msgq_t *q, zmq_msg_t *msg)
{
    if (q->count == 0) return -1;
    zmq_msg_t *slot = &q->ring[q->head];
    size_t size = zmq_msg_size(slot);
    zmq_msg_move(msg, slot);
    zmq_msg_close(slot);
    s_drop_head(q, size);
    return 0;
}

int pp_msgq_flush(pp_msgq_t *q, void *socket)
{
    int sent = 0;
    while (q->count > 0) {
        zmq_msg_t *slot = &q->ring[q->head];
        size_t size = zmq_msg_size(slot);
        /* On success zmq_msg_send leaves the slot empty (no close needed); on failure the
           message stays where it is. */
        if (zmq_msg_send(slot, socket, ZMQ_DONTWAIT) < 0) {
            if (errno == EAGAIN || errno == EINTR) return sent;
            return -1;
        }
        s_drop_head(q, size);
        sent++;
    }
    return sent;
}

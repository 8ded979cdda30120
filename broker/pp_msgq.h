/*  pp_msgq: a bounded FIFO of ZMQ messages in front of one PUSH socket.

    The broker never blocks on a send. What a PUSH socket will not take now (EAGAIN: no
    peer, or every peer's queue at its high-water mark) goes into this FIFO, and the FIFO
    is flushed, in order, when the socket becomes writable again. The FIFO is bounded by a
    number of messages and a number of bytes; the broker checks pp_msgq_has_room() before
    it reads an input that feeds this output, and stops reading that input while there is
    no room, so pushes never fail in normal use. The byte bound may be passed by the last
    message pushed (at most one message's size), so that a message bigger than max_bytes
    does not wedge the flow for ever.

    Messages are moved in and out (zmq_msg_move), never copied. Not thread-safe.
*/
#ifndef PP_MSGQ_H
#define PP_MSGQ_H

#include <stdbool.h>
#include <stddef.h>
#include <zmq.h>

typedef struct pp_msgq_t pp_msgq_t;

/*  Creates an empty FIFO holding at most max_msgs messages (>= 1) and about max_bytes
    bytes (>= 1). Returns NULL on allocation failure or zero limits. */
pp_msgq_t *pp_msgq_new(size_t max_msgs, size_t max_bytes);

/*  Closes every held message and frees the FIFO; nulls *p. */
void pp_msgq_destroy(pp_msgq_t **p);

/*  True if one more message may be pushed: fewer than max_msgs held and fewer than
    max_bytes bytes. */
bool pp_msgq_has_room(const pp_msgq_t *q);

size_t pp_msgq_size(const pp_msgq_t *q);
size_t pp_msgq_bytes(const pp_msgq_t *q);

/*  Moves *msg to the tail (*msg is left empty, ready to close or reuse). Returns 0, or -1
    with *msg untouched when there is no room. */
int pp_msgq_push(pp_msgq_t *q, zmq_msg_t *msg);

/*  Moves the head into *msg (which must be initialised; its old content is closed).
    Returns 0, or -1 if the FIFO is empty. */
int pp_msgq_pop(pp_msgq_t *q, zmq_msg_t *msg);

/*  Sends held messages on socket with ZMQ_DONTWAIT, in order, until the FIFO is empty or
    the socket says EAGAIN. Returns the number sent, or -1 (errno set) on another error,
    in which case the message that failed stays at the head. */
int pp_msgq_flush(pp_msgq_t *q, void *socket);

#endif

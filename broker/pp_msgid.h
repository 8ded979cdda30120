/*  pp_msgid: message ids unique across brokers, without coordination.

    An id is 32 lowercase hex characters: a 64-bit instance id (random from getrandom(),
    or configured with broker.instance_id) followed by a 64-bit counter seeded from the
    wall clock in microseconds and incremented for every id. Two brokers collide only if
    they draw the same random instance id (1 in 2^64); one broker restarted on the same
    configured instance id does not reuse ids unless it issued more than one id per
    microsecond of downtime on average, which its intake cannot do.
*/
#ifndef PP_MSGID_H
#define PP_MSGID_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PP_MSGID_LEN 32

typedef struct pp_msgid_t pp_msgid_t;

/*  Parses a configured instance id: 1 to 16 hex digits. Returns 0, or -1 if text is not
    of that form. */
int pp_msgid_parse_instance(const char *text, uint64_t *instance);

/*  Creates a generator. instance NULL draws a random instance id with getrandom();
    returns NULL only if the kernel gives no random bytes. */
pp_msgid_t *pp_msgid_new(const uint64_t *instance);
void pp_msgid_destroy(pp_msgid_t **p);

/*  The generator's instance id (for the "started" log line). */
uint64_t pp_msgid_instance(const pp_msgid_t *g);

/*  Writes the next id into out: PP_MSGID_LEN hex characters and a terminating NUL. */
void pp_msgid_next(pp_msgid_t *g, char out[PP_MSGID_LEN + 1]);

/*  True if text (len bytes) has the form of an id. */
bool pp_msgid_valid(const char *text, size_t len);

#endif

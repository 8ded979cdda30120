/*  pp_uuid: random (version 4) UUIDs for the apns-id header.

    Apple echoes apns-id in its response and in its own logs, so each notification gets
    one that we log next to the msg_id. An apns-id needs to be unique, not secret, and the
    sender makes tens of thousands per second: the bits come from xoshiro256** (per
    thread), seeded from OpenSSL's RAND_bytes; RAND_bytes per UUID cost a few percent of
    the sender's CPU in the benchmark.
*/
#ifndef PP_UUID_H
#define PP_UUID_H

#define PP_UUID_LEN 36 /* canonical text form, without the terminating NUL */

/*  Writes a fresh random UUID in canonical lower-case form
    ("xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx", y in 8..b) into out, NUL-terminated.
    Returns 0, or -1 if the random generator failed (out then holds an empty string). */
int pp_uuid_v4(char out[PP_UUID_LEN + 1]);

/*  True if text (len bytes) is a canonical UUID of version 4, variant 10xx. */
int pp_uuid_is_v4(const char *text, unsigned long len);

#endif

/*  pp_mpscan: checks that bytes hold one well-formed msgpack value, before msgpack-c sees
    them.

    msgpack-c's unpacker, given a container header, allocates count * 24 bytes before it has
    seen a single element, so a 5-byte input claiming 2^32 elements makes it ask for ~100 GB;
    and it reports nesting beyond its fixed 32-level stack as a plain parse error. It has no
    option to limit either. This walk reads the raw bytes once, iteratively, allocating
    nothing, and guarantees afterwards that every container's count fits in the bytes left
    and that nesting fits the given limit. Every decoder of outside input (client frames,
    jobs, replies) runs it first. Hand-written because no Debian library offers this check.
*/
#ifndef PP_MPSCAN_H
#define PP_MPSCAN_H

#include <stddef.h>

/*  Deepest nesting pp_mpscan can check (msgpack-c itself holds 32 levels). */
#define PP_MPSCAN_MAX_LEVELS 32

typedef enum {
    PP_MPSCAN_OK = 0,
    PP_MPSCAN_TRUNCATED, /* ends in the middle of a value, or a count exceeds what is left */
    PP_MPSCAN_INVALID,   /* byte 0xc1, never used in msgpack */
    PP_MPSCAN_TOO_DEEP,  /* containers nest deeper than max_levels */
    PP_MPSCAN_TRAILING,  /* bytes follow the value */
} pp_mpscan_result_t;

/*  Walks the one msgpack value that must span exactly buf[0..len). max_levels is the
    deepest container nesting allowed, the outermost container being level 1 (clamped to
    PP_MPSCAN_MAX_LEVELS); empty containers count. *detail (may be NULL) receives a short,
    static, log-safe explanation when the result is not OK. */
pp_mpscan_result_t pp_mpscan(const void *buf, size_t len, size_t max_levels, const char **detail);

#endif

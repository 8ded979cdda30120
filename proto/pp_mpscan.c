#include "pp_mpscan.h"

#include <stdbool.h>
#include <stdint.h>

/*  Reads an n-byte big-endian unsigned integer at p[*pos], if there are n bytes. */
static bool s_read_be(const unsigned char *p, size_t len, size_t *pos, size_t n, uint64_t *v)
{
    if (n > len - *pos) return false;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = (x << 8) | p[*pos + i];
    *pos += n;
    *v = x;
    return true;
}

/*  Decodes the header byte c (and its length bytes): either a container of *items values,
    or a scalar whose remaining *skip bytes follow. Returns false on a cut header or 0xc1
    (*invalid set). */
static bool s_header(const unsigned char *p, size_t len, size_t *pos, unsigned char c,
                     bool *container, uint64_t *items, uint64_t *skip, bool *invalid)
{
    uint64_t n = 0;
    *container = false, *items = 0, *skip = 0, *invalid = false;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) return true;
    if (c <= 0x8f) return *container = true, *items = 2u * (c & 0x0fu), true;
    if (c <= 0x9f) return *container = true, *items = c & 0x0fu, true;
    if (c <= 0xbf) return *skip = c & 0x1fu, true;
    switch (c) {
    case 0xc1:
        *invalid = true;
        return false;
    case 0xc4:
    case 0xd9:
        return s_read_be(p, len, pos, 1, skip); /* bin8, str8 */
    case 0xc5:
    case 0xda:
        return s_read_be(p, len, pos, 2, skip);
    case 0xc6:
    case 0xdb:
        return s_read_be(p, len, pos, 4, skip);
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext 8/16/32: length, then a type byte */
        if (!s_read_be(p, len, pos, (size_t)1 << (c - 0xc7), skip)) return false;
        return ++*skip, true;
    case 0xca:
        return *skip = 4, true; /* float 32/64 */
    case 0xcb:
        return *skip = 8, true;
    case 0xd4:
    case 0xd5:
    case 0xd6:
    case 0xd7:
    case 0xd8: /* fixext 1..16 + type byte */
        return *skip = (1u << (c - 0xd4)) + 1, true;
    case 0xdc:
    case 0xdd: /* array 16/32 */
        *container = true;
        return s_read_be(p, len, pos, c == 0xdc ? 2 : 4, items);
    case 0xde:
    case 0xdf: /* map 16/32 */
        *container = true;
        if (!s_read_be(p, len, pos, c == 0xde ? 2 : 4, &n)) return false;
        return *items = 2 * n, true;
    default: /* 0xcc..0xd3: uint/int 8..64 */
        return *skip = 1u << ((c - 0xcc) & 3), true;
    }
}

pp_mpscan_result_t pp_mpscan(const void *buf, size_t len, size_t max_levels, const char **detail)
{
    static const char *const cut = "input ends in the middle of a value";
    const char *unused;
    if (!detail) detail = &unused;
    if (max_levels > PP_MPSCAN_MAX_LEVELS) max_levels = PP_MPSCAN_MAX_LEVELS;
    const unsigned char *p = buf;
    uint64_t left[PP_MPSCAN_MAX_LEVELS + 1]; /* values still to read at each level */
    size_t top = 0, pos = 0;
    left[0] = 1;
    for (;;) {
        while (left[top] == 0) {
            if (top == 0) goto done;
            top--;
        }
        if (pos >= len) {
            *detail = len ? cut : "input is empty";
            return PP_MPSCAN_TRUNCATED;
        }
        unsigned char c = p[pos++];
        left[top]--;
        bool container, invalid;
        uint64_t items, skip;
        if (!s_header(p, len, &pos, c, &container, &items, &skip, &invalid)) {
            *detail = invalid ? "byte 0xc1 is never used in msgpack" : cut;
            return invalid ? PP_MPSCAN_INVALID : PP_MPSCAN_TRUNCATED;
        }
        if (!container) {
            if (skip > len - pos) {
                *detail = cut;
                return PP_MPSCAN_TRUNCATED;
            }
            pos += skip;
            continue;
        }
        /* Empty containers count too: msgpack-c's stack limit applies to them as well. */
        if (top + 1 > max_levels) {
            *detail = "containers nest deeper than allowed";
            return PP_MPSCAN_TOO_DEEP;
        }
        if (items == 0) continue;
        /* Every value takes at least one byte: a bigger count can only be a cut input. */
        if (items > len - pos) {
            *detail = "an array or map claims more elements than the input holds";
            return PP_MPSCAN_TRUNCATED;
        }
        left[++top] = items;
    }
done:
    if (pos < len) {
        *detail = "bytes follow the value";
        return PP_MPSCAN_TRAILING;
    }
    return PP_MPSCAN_OK;
}
